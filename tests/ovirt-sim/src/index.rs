//! The world indexed once at load: maps by id, per-VM permission lists (own + inherited), roles,
//! templates and the API summary, so answering never scans more than it must.

use crate::world::World;
use std::collections::HashMap;

pub const BLANK_TEMPLATE: &str = "00000000-0000-0000-0000-000000000000";

/// The engine's predefined network filters (a subset), as (name, minimum version); worlds may use
/// others, which are added after these.
pub const STANDARD_NETWORK_FILTERS: &[(&str, &str)] = &[
    ("vdsm-no-mac-spoofing", "3.2"),
    ("allow-arp", "3.6"),
    ("clean-traffic", "3.6"),
    ("clean-traffic-gateway", "4.2"),
    ("no-ip-spoofing", "3.6"),
    ("no-mac-spoofing", "3.6"),
];

#[derive(Debug, Clone)]
pub struct NetworkFilterInfo {
    pub id: String,
    pub name: String,
    pub version: String,
}

/// A network filter's id: derived from its name, so profiles' refs and /networkfilters agree.
pub fn network_filter_id(name: &str) -> String {
    derived_id(&format!("filter/{name}"))
}

#[derive(Debug, Clone)]
pub struct RoleInfo {
    pub id: String,
    pub name: String,
    pub description: String,
    pub administrative: bool,
    pub mutable: bool,
}

#[derive(Debug, Clone)]
pub struct TemplateInfo {
    pub id: String,
    pub name: String,
}

pub struct Index {
    pub world: World,
    pub vm: HashMap<String, usize>,
    pub disk: HashMap<String, usize>,
    pub cluster: HashMap<String, usize>,
    pub dc: HashMap<String, usize>,
    pub host: HashMap<String, usize>,
    pub network: HashMap<String, usize>,
    pub profile: HashMap<String, usize>,
    pub sd: HashMap<String, usize>,
    pub user: HashMap<String, usize>,
    pub group: HashMap<String, usize>,
    pub tag: HashMap<String, usize>,
    pub roles: Vec<RoleInfo>,
    pub role_by_name: HashMap<String, usize>,
    pub role_by_id: HashMap<String, usize>,
    pub templates: Vec<TemplateInfo>,
    pub template_by_name: HashMap<String, usize>,
    /// The standard network filters, then any other the world's vNIC profiles name.
    pub network_filters: Vec<NetworkFilterInfo>,
    pub network_filter: HashMap<String, usize>,
    /// Permission indexes per VM: its own, its cluster's, its data center's and System's, by id.
    pub vm_permissions: Vec<Vec<usize>>,
    pub system_permissions: Vec<usize>,
    pub cluster_permissions: Vec<Vec<usize>>,
    pub dc_permissions: Vec<Vec<usize>>,
    pub user_permissions: Vec<Vec<usize>>,
    pub group_permissions: Vec<Vec<usize>>,
    /// Cluster index -> data center index.
    pub cluster_dc: Vec<usize>,
    /// VMs using each disk (shared disks have several).
    pub disk_vms: Vec<Vec<usize>>,
    pub vms_up: usize,
    pub hosts_up: usize,
    pub sds_active: usize,
}

fn by_id<T>(items: &[T], id: impl Fn(&T) -> &str) -> HashMap<String, usize> {
    items
        .iter()
        .enumerate()
        .map(|(i, x)| (id(x).to_string(), i))
        .collect()
}

/// A name-based id for objects the world names but does not give ids (templates).
pub fn derived_id(seed: &str) -> String {
    let a = fnv(seed.as_bytes(), 0xcbf2_9ce4_8422_2325);
    let b = fnv(seed.as_bytes(), 0x8422_2325_cbf2_9ce4);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        a as u16,
        (b >> 48) as u16,
        b & 0xffff_ffff_ffff
    )
}

fn fnv(bytes: &[u8], basis: u64) -> u64 {
    let mut h = basis;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Index {
    pub fn new(world: World) -> Index {
        let w = &world;
        let vm = by_id(&w.vms, |x| &x.id);
        let cluster = by_id(&w.clusters, |x| &x.id);
        let dc = by_id(&w.data_centers, |x| &x.id);
        let user = by_id(&w.users, |x| &x.id);
        let group = by_id(&w.groups, |x| &x.id);
        let disk = by_id(&w.disks, |x| &x.id);

        let roles = roles(w);
        let role_by_name = roles
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        let role_by_id = roles
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect();

        let (templates, template_by_name) = templates(w);

        let network_filters = network_filters(w);
        let network_filter = by_id(&network_filters, |x| &x.id);

        let cluster_dc: Vec<usize> = w.clusters.iter().map(|c| dc[&c.data_center]).collect();
        let mut system_permissions = Vec::new();
        let mut cluster_permissions = vec![Vec::new(); w.clusters.len()];
        let mut dc_permissions = vec![Vec::new(); w.data_centers.len()];
        let mut own_vm_permissions = vec![Vec::new(); w.vms.len()];
        let mut user_permissions = vec![Vec::new(); w.users.len()];
        let mut group_permissions = vec![Vec::new(); w.groups.len()];
        // Sorted by permission id, as the engine sorts them; every derived list keeps that order.
        let mut order: Vec<usize> = (0..w.permissions.len()).collect();
        order.sort_by(|a, b| w.permissions[*a].id.cmp(&w.permissions[*b].id));
        for &p in &order {
            let perm = &w.permissions[p];
            let oid = perm.object.id.as_deref().unwrap_or("");
            match perm.object.kind.as_str() {
                "system" => system_permissions.push(p),
                "cluster" => cluster_permissions[cluster[oid]].push(p),
                "data_center" => dc_permissions[dc[oid]].push(p),
                "vm" => own_vm_permissions[vm[oid]].push(p),
                _ => {}
            }
            if let Some(u) = perm.user.as_ref().and_then(|u| user.get(u)) {
                user_permissions[*u].push(p);
            }
            if let Some(g) = perm.group.as_ref().and_then(|g| group.get(g)) {
                group_permissions[*g].push(p);
            }
        }
        let vm_permissions = w
            .vms
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let c = cluster[&v.cluster];
                let mut all: Vec<usize> = own_vm_permissions[i].clone();
                all.extend(&cluster_permissions[c]);
                all.extend(&dc_permissions[cluster_dc[c]]);
                all.extend(&system_permissions);
                all.sort_by(|a, b| w.permissions[*a].id.cmp(&w.permissions[*b].id));
                all
            })
            .collect();
        let disk_vms = disk_vms(w, &disk);
        Index {
            vm,
            disk,
            cluster,
            dc,
            host: by_id(&w.hosts, |x| &x.id),
            network: by_id(&w.networks, |x| &x.id),
            profile: by_id(&w.vnic_profiles, |x| &x.id),
            sd: by_id(&w.storage_domains, |x| &x.id),
            user,
            group,
            tag: by_id(&w.tags, |x| &x.id),
            roles,
            role_by_name,
            role_by_id,
            templates,
            template_by_name,
            network_filters,
            network_filter,
            vm_permissions,
            system_permissions,
            cluster_permissions,
            dc_permissions,
            user_permissions,
            group_permissions,
            cluster_dc,
            disk_vms,
            vms_up: w.vms.iter().filter(|v| v.status == "up").count(),
            hosts_up: w.hosts.iter().filter(|h| h.status == "up").count(),
            sds_active: w
                .storage_domains
                .iter()
                .filter(|s| s.status.as_deref().unwrap_or("active") == "active")
                .count(),
            world,
        }
    }

    pub fn vm_dc(&self, vm: usize) -> usize {
        self.cluster_dc[self.cluster[&self.world.vms[vm].cluster]]
    }
}

/// The engine's predefined roles, then the world's own.
fn roles(w: &World) -> Vec<RoleInfo> {
    let mut roles: Vec<RoleInfo> = crate::roles::PREDEFINED
        .iter()
        .map(|(id, name, description, admin)| RoleInfo {
            id: id.to_string(),
            name: name.to_string(),
            description: description.to_string(),
            administrative: *admin,
            mutable: false,
        })
        .collect();
    for r in &w.roles {
        roles.push(RoleInfo {
            id: r.id.clone(),
            name: r.name.clone(),
            description: String::new(),
            administrative: r.administrative,
            mutable: true,
        });
    }
    roles
}

/// Blank, then every template a VM names, and their index by name.
fn templates(w: &World) -> (Vec<TemplateInfo>, HashMap<String, usize>) {
    let mut templates = vec![TemplateInfo {
        id: BLANK_TEMPLATE.into(),
        name: "Blank".into(),
    }];
    let mut template_by_name = HashMap::from([("Blank".to_string(), 0)]);
    for v in &w.vms {
        if let Some(t) = &v.template
            && !template_by_name.contains_key(t)
        {
            template_by_name.insert(t.clone(), templates.len());
            templates.push(TemplateInfo {
                id: derived_id(&format!("template/{t}")),
                name: t.clone(),
            });
        }
    }

    (templates, template_by_name)
}

/// The engine's standard network filters, then any other a profile names.
fn network_filters(w: &World) -> Vec<NetworkFilterInfo> {
    let mut network_filters: Vec<NetworkFilterInfo> = STANDARD_NETWORK_FILTERS
        .iter()
        .map(|(name, version)| NetworkFilterInfo {
            id: network_filter_id(name),
            name: name.to_string(),
            version: version.to_string(),
        })
        .collect();
    for p in &w.vnic_profiles {
        if let Some(f) = &p.network_filter
            && !network_filters.iter().any(|x| &x.name == f)
        {
            network_filters.push(NetworkFilterInfo {
                id: network_filter_id(f),
                name: f.clone(),
                version: "4.2".into(),
            });
        }
    }
    network_filters
}

/// Per disk, the VMs it is attached to.
fn disk_vms(w: &World, disk: &HashMap<String, usize>) -> Vec<Vec<usize>> {
    let mut disk_vms = vec![Vec::new(); w.disks.len()];
    for (i, v) in w.vms.iter().enumerate() {
        for a in &v.disk_attachments {
            if let Some(d) = disk.get(&a.disk) {
                disk_vms[*d].push(i);
            }
        }
    }
    disk_vms
}
