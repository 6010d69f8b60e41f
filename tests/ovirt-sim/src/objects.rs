//! The engine's objects: each world object becomes one tree in the engine's member names and
//! order, with its links, actions and refs; `follow` says where each link leads.

use crate::index::{BLANK_TEMPLATE, Index, derived_id, network_filter_id};
use crate::tree::{Node, Obj, collection, decimal, wrap};

pub const API: &str = "/ovirt-engine/api";

/// The logical unit a LUN disk shows under `lun_storage.logical_units` (the world gives only its
/// size): one iSCSI unit on the lab's target portal, its id derived from the disk's. forklift-sim
/// reads the same unit, as Forklift's inventory collects it from the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalUnit {
    pub id: String,
    pub address: &'static str,
    pub port: i64,
    pub target: &'static str,
    pub lun_mapping: i64,
    pub size: u64,
}

/// The logical unit of LUN disk `disk_id` of `size` bytes.
pub fn logical_unit(disk_id: &str, size: u64) -> LogicalUnit {
    LogicalUnit {
        id: derived_id(&format!("lun/{disk_id}")).replace('-', ""),
        address: "192.168.122.10",
        port: 3260,
        target: "iqn.2003-01.org.linux-iscsi.storage:sn.lab",
        lun_mapping: 0,
        size,
    }
}

/// Whose list a permission is shown in: it decides its href, and a VM's list rewrites the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermCtx {
    System,
    Vm(usize),
    Cluster(usize),
    DataCenter(usize),
    User(usize),
    Group(usize),
}

/// One object the API can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ent {
    Vm(usize),
    Disk(usize),
    DiskAttachment(usize, usize),
    Nic(usize, usize),
    ReportedDevice(usize, usize),
    Permission(usize, PermCtx),
    VmStat(usize, usize),
    Watchdog(usize, usize),
    HostDevice(usize, usize),
    Snapshot(usize, usize),
    VmTag(usize, usize),
    Tag(usize),
    Network(usize),
    VnicProfile(usize),
    StorageDomain(usize),
    Cluster(usize),
    DataCenter(usize),
    Host(usize),
    User(usize),
    Group(usize),
    Role(usize),
    Template(usize),
    NetworkFilter(usize),
}

/// Where a link leads: a collection (with its XML names) or one object.
#[derive(Debug, Clone)]
pub enum Followed {
    Many {
        plural: &'static str,
        singular: &'static str,
        items: Vec<Ent>,
    },
    One(Ent),
}

#[derive(Debug, Clone, Copy, Default)]
pub struct BuildOpts {
    pub all_content: bool,
}

/// Top-level collections: (URL segment, XML collection name, element name).
pub const ROOT_COLLECTIONS: &[(&str, &str, &str)] = &[
    ("vms", "vms", "vm"),
    ("disks", "disks", "disk"),
    ("networks", "networks", "network"),
    ("vnicprofiles", "vnic_profiles", "vnic_profile"),
    ("storagedomains", "storage_domains", "storage_domain"),
    ("clusters", "clusters", "cluster"),
    ("datacenters", "data_centers", "data_center"),
    ("hosts", "hosts", "host"),
    ("users", "users", "user"),
    ("groups", "groups", "group"),
    ("roles", "roles", "role"),
    ("tags", "tags", "tag"),
    ("templates", "templates", "template"),
    ("permissions", "permissions", "permission"),
    ("networkfilters", "network_filters", "network_filter"),
];

pub fn root_collection(ix: &Index, segment: &str) -> Option<Followed> {
    let &(_, plural, singular) = ROOT_COLLECTIONS.iter().find(|(s, _, _)| *s == segment)?;
    let w = &ix.world;
    let items: Vec<Ent> = match segment {
        "vms" => (0..w.vms.len()).map(Ent::Vm).collect(),
        "disks" => (0..w.disks.len()).map(Ent::Disk).collect(),
        "networks" => (0..w.networks.len()).map(Ent::Network).collect(),
        "vnicprofiles" => (0..w.vnic_profiles.len()).map(Ent::VnicProfile).collect(),
        "storagedomains" => (0..w.storage_domains.len())
            .map(Ent::StorageDomain)
            .collect(),
        "clusters" => (0..w.clusters.len()).map(Ent::Cluster).collect(),
        "datacenters" => (0..w.data_centers.len()).map(Ent::DataCenter).collect(),
        "hosts" => (0..w.hosts.len()).map(Ent::Host).collect(),
        "users" => (0..w.users.len()).map(Ent::User).collect(),
        "groups" => (0..w.groups.len()).map(Ent::Group).collect(),
        "roles" => (0..ix.roles.len()).map(Ent::Role).collect(),
        "tags" => (0..w.tags.len()).map(Ent::Tag).collect(),
        "templates" => (0..ix.templates.len()).map(Ent::Template).collect(),
        "networkfilters" => (0..ix.network_filters.len())
            .map(Ent::NetworkFilter)
            .collect(),
        "permissions" => ix
            .system_permissions
            .iter()
            .map(|p| Ent::Permission(*p, PermCtx::System))
            .collect(),
        _ => return None,
    };
    Some(Followed::Many {
        plural,
        singular,
        items,
    })
}

/// Link members of each kind, as (member name, element name); the rel is the member name without
/// underscores. Listed in the order a real engine writes the links.
pub fn link_members(ent: &Ent) -> &'static [(&'static str, &'static str)] {
    match ent {
        Ent::Vm(_) => &[
            ("sessions", "session"),
            ("backups", "backup"),
            ("snapshots", "snapshot"),
            ("applications", "application"),
            ("host_devices", "host_device"),
            ("reported_devices", "reported_device"),
            ("cdroms", "cdrom"),
            ("disk_attachments", "disk_attachment"),
            ("affinity_labels", "affinity_label"),
            ("watchdogs", "watchdog"),
            ("graphics_consoles", "graphics_console"),
            ("katello_errata", "katello_erratum"),
            ("permissions", "permission"),
            ("tags", "tag"),
            ("nics", "nic"),
            ("numa_nodes", "vm_numa_node"),
            ("statistics", "statistic"),
        ],
        Ent::Nic(..) => &[
            ("reported_devices", "reported_device"),
            ("network_filter_parameters", "network_filter_parameter"),
            ("statistics", "statistic"),
        ],
        Ent::Disk(_) => &[("permissions", "permission"), ("statistics", "statistic")],
        Ent::Network(_) => &[
            ("network_labels", "network_label"),
            ("permissions", "permission"),
            ("vnic_profiles", "vnic_profile"),
        ],
        Ent::VnicProfile(_) => &[("permissions", "permission")],
        Ent::StorageDomain(_) => &[
            ("disks", "disk"),
            ("disk_profiles", "disk_profile"),
            ("disk_snapshots", "disk_snapshot"),
            ("storage_connections", "storage_connection"),
            ("permissions", "permission"),
            ("templates", "template"),
            ("vms", "vm"),
        ],
        Ent::Cluster(_) => &[
            ("affinity_groups", "affinity_group"),
            ("gluster_hooks", "gluster_hook"),
            ("gluster_volumes", "gluster_volume"),
            ("enabled_features", "cluster_feature"),
            ("external_network_providers", "external_provider"),
            ("cpu_profiles", "cpu_profile"),
            ("network_filters", "network_filter"),
            ("networks", "network"),
            ("permissions", "permission"),
        ],
        Ent::DataCenter(_) => &[
            ("quotas", "quota"),
            ("iscsi_bonds", "iscsi_bond"),
            ("qoss", "qos"),
            ("clusters", "cluster"),
            ("networks", "network"),
            ("storage_domains", "storage_domain"),
            ("permissions", "permission"),
        ],
        Ent::Host(_) => &[
            ("fence_agents", "agent"),
            ("devices", "host_device"),
            ("hooks", "hook"),
            ("nics", "host_nic"),
            ("numa_nodes", "host_numa_node"),
            ("storage", "host_storage"),
            ("network_attachments", "network_attachment"),
            ("affinity_labels", "affinity_label"),
            ("permissions", "permission"),
            ("tags", "tag"),
            ("statistics", "statistic"),
        ],
        Ent::User(_) => &[
            ("ssh_public_keys", "ssh_public_key"),
            ("roles", "role"),
            ("permissions", "permission"),
            ("tags", "tag"),
            ("groups", "group"),
        ],
        Ent::Group(_) => &[
            ("roles", "role"),
            ("permissions", "permission"),
            ("tags", "tag"),
        ],
        Ent::Role(_) => &[("permits", "permit")],
        Ent::Template(_) => &[
            ("permissions", "permission"),
            ("disk_attachments", "disk_attachment"),
            ("nics", "nic"),
            ("tags", "tag"),
        ],
        _ => &[],
    }
}

pub fn rel(member: &str) -> String {
    member.to_lowercase().replace('_', "")
}

fn actions_of(ent: &Ent) -> &'static [&'static str] {
    match ent {
        Ent::Vm(_) => &[
            "detach",
            "export",
            "previewsnapshot",
            "reordermacaddresses",
            "commitsnapshot",
            "thawfilesystems",
            "freezefilesystems",
            "logon",
            "maintenance",
            "cancelmigration",
            "reboot",
            "clone",
            "undosnapshot",
            "ticket",
            "migrate",
            "shutdown",
            "start",
            "stop",
            "suspend",
        ],
        Ent::Nic(..) => &["activate", "deactivate"],
        Ent::Disk(_) => &["reduce", "copy", "export", "move", "sparsify", "refreshlun"],
        Ent::Cluster(_) => &["resetemulatedmachine", "upgrade", "syncallnetworks"],
        Ent::Host(_) => &[
            "refresh",
            "install",
            "activate",
            "deactivate",
            "upgrade",
            "fence",
        ],
        Ent::StorageDomain(_) => &["isattached", "reduceluns", "updateovfstore", "refreshluns"],
        Ent::Snapshot(..) => &["restore"],
        Ent::DiskAttachment(..) => &[],
        _ => &[],
    }
}

fn r(path: &str, id: &str) -> Obj {
    Obj::with_ref(format!("{API}/{path}/{id}"), id)
}

pub fn href(ix: &Index, ent: &Ent) -> String {
    format!("{API}/{}", path_of(ix, ent))
}

/// The object's path under /ovirt-engine/api.
pub fn path_of(ix: &Index, ent: &Ent) -> String {
    let w = &ix.world;
    match *ent {
        Ent::Vm(v) => format!("vms/{}", w.vms[v].id),
        Ent::Disk(d) => format!("disks/{}", w.disks[d].id),
        Ent::DiskAttachment(v, a) => {
            format!(
                "vms/{}/diskattachments/{}",
                w.vms[v].id, w.vms[v].disk_attachments[a].id
            )
        }
        Ent::Nic(v, n) => format!("vms/{}/nics/{}", w.vms[v].id, w.vms[v].nics[n].id),
        Ent::ReportedDevice(v, _) => {
            format!("vms/{}/reporteddevices/{}", w.vms[v].id, id_of(ix, ent))
        }
        Ent::Permission(p, ctx) => {
            let pid = &w.permissions[p].id;
            match ctx {
                PermCtx::System => format!("permissions/{pid}"),
                PermCtx::Vm(v) => format!("vms/{}/permissions/{pid}", w.vms[v].id),
                PermCtx::Cluster(c) => format!("clusters/{}/permissions/{pid}", w.clusters[c].id),
                PermCtx::DataCenter(d) => {
                    format!("datacenters/{}/permissions/{pid}", w.data_centers[d].id)
                }
                PermCtx::User(u) => format!("users/{}/permissions/{pid}", w.users[u].id),
                PermCtx::Group(g) => format!("groups/{}/permissions/{pid}", w.groups[g].id),
            }
        }
        Ent::VmStat(v, _) => format!("vms/{}/statistics/{}", w.vms[v].id, id_of(ix, ent)),
        Ent::Watchdog(v, _) => format!("vms/{}/watchdogs/{}", w.vms[v].id, id_of(ix, ent)),
        Ent::HostDevice(v, _) => format!("vms/{}/hostdevices/{}", w.vms[v].id, id_of(ix, ent)),
        Ent::Snapshot(v, s) => {
            format!("vms/{}/snapshots/{}", w.vms[v].id, w.vms[v].snapshots[s].id)
        }
        Ent::VmTag(v, _) => format!("vms/{}/tags/{}", w.vms[v].id, id_of(ix, ent)),
        Ent::Tag(t) => format!("tags/{}", w.tags[t].id),
        Ent::Network(n) => format!("networks/{}", w.networks[n].id),
        Ent::VnicProfile(p) => format!("vnicprofiles/{}", w.vnic_profiles[p].id),
        Ent::StorageDomain(s) => format!("storagedomains/{}", w.storage_domains[s].id),
        Ent::Cluster(c) => format!("clusters/{}", w.clusters[c].id),
        Ent::DataCenter(d) => format!("datacenters/{}", w.data_centers[d].id),
        Ent::Host(h) => format!("hosts/{}", w.hosts[h].id),
        Ent::User(u) => format!("users/{}", w.users[u].id),
        Ent::Group(g) => format!("groups/{}", w.groups[g].id),
        Ent::Role(r) => format!("roles/{}", ix.roles[r].id),
        Ent::Template(t) => format!("templates/{}", ix.templates[t].id),
        Ent::NetworkFilter(f) => format!("networkfilters/{}", ix.network_filters[f].id),
    }
}

pub fn id_of(ix: &Index, ent: &Ent) -> String {
    let w = &ix.world;
    match *ent {
        Ent::Vm(v) => w.vms[v].id.clone(),
        Ent::Disk(d) => w.disks[d].id.clone(),
        // The engine gives an attachment its disk's id; the world says so explicitly.
        Ent::DiskAttachment(v, a) => w.vms[v].disk_attachments[a].id.clone(),
        Ent::Nic(v, n) => w.vms[v].nics[n].id.clone(),
        Ent::ReportedDevice(v, n) => derived_id(&format!("reported/{}", w.vms[v].nics[n].id)),
        Ent::Permission(p, _) => w.permissions[p].id.clone(),
        Ent::VmStat(v, s) => derived_id(&format!("stat/{}/{}", w.vms[v].id, STATS[s].0)),
        Ent::Watchdog(v, i) => derived_id(&format!("watchdog/{}/{i}", w.vms[v].id)),
        Ent::HostDevice(v, i) => derived_id(&format!(
            "hostdevice/{}/{}",
            w.vms[v].id, w.vms[v].host_devices[i]
        )),
        Ent::Snapshot(v, s) => w.vms[v].snapshots[s].id.clone(),
        Ent::VmTag(v, i) => w.vms[v].tags[i].clone(),
        Ent::Tag(t) => w.tags[t].id.clone(),
        Ent::Network(n) => w.networks[n].id.clone(),
        Ent::VnicProfile(p) => w.vnic_profiles[p].id.clone(),
        Ent::StorageDomain(s) => w.storage_domains[s].id.clone(),
        Ent::Cluster(c) => w.clusters[c].id.clone(),
        Ent::DataCenter(d) => w.data_centers[d].id.clone(),
        Ent::Host(h) => w.hosts[h].id.clone(),
        Ent::User(u) => w.users[u].id.clone(),
        Ent::Group(g) => w.groups[g].id.clone(),
        Ent::Role(r) => ix.roles[r].id.clone(),
        Ent::Template(t) => ix.templates[t].id.clone(),
        Ent::NetworkFilter(f) => ix.network_filters[f].id.clone(),
    }
}

/// The name search matches and sorts on.
pub fn name_of<'a>(ix: &'a Index, ent: &Ent) -> &'a str {
    let w = &ix.world;
    match *ent {
        Ent::Vm(v) => &w.vms[v].name,
        Ent::Disk(d) => &w.disks[d].alias,
        Ent::Network(n) => &w.networks[n].name,
        Ent::VnicProfile(p) => &w.vnic_profiles[p].name,
        Ent::StorageDomain(s) => &w.storage_domains[s].name,
        Ent::Cluster(c) => &w.clusters[c].name,
        Ent::DataCenter(d) => &w.data_centers[d].name,
        Ent::Host(h) => &w.hosts[h].name,
        Ent::User(u) => &w.users[u].principal,
        Ent::Group(g) => &w.groups[g].name,
        Ent::Role(r) => &ix.roles[r].name,
        Ent::Tag(t) => &w.tags[t].name,
        Ent::Template(t) => &ix.templates[t].name,
        Ent::NetworkFilter(f) => &ix.network_filters[f].name,
        _ => "",
    }
}

pub fn status_of<'a>(ix: &'a Index, ent: &Ent) -> Option<&'a str> {
    let w = &ix.world;
    match *ent {
        Ent::Vm(v) => Some(&w.vms[v].status),
        Ent::Disk(d) => Some(&w.disks[d].status),
        Ent::Host(h) => Some(&w.hosts[h].status),
        Ent::DataCenter(d) => Some(&w.data_centers[d].status),
        Ent::StorageDomain(s) => Some(w.storage_domains[s].status.as_deref().unwrap_or("active")),
        _ => None,
    }
}

fn empty(ent: &Ent, member: &str) -> Option<Followed> {
    link_members(ent)
        .iter()
        .find(|(m, _)| *m == member)
        .map(|(m, s)| Followed::Many {
            plural: m,
            singular: s,
            items: Vec::new(),
        })
}

fn many(plural: &'static str, singular: &'static str, items: Vec<Ent>) -> Option<Followed> {
    Some(Followed::Many {
        plural,
        singular,
        items,
    })
}

/// Where `member` of `ent` leads: a link (collection) or a ref (one object). None: no such member.
pub fn follow(ix: &Index, ent: &Ent, member: &str) -> Option<Followed> {
    let w = &ix.world;
    match (*ent, member) {
        (Ent::Vm(v), m) => follow_vm(ix, ent, v, m),
        (Ent::DiskAttachment(v, a), "disk") => {
            one(Ent::Disk(ix.disk[&w.vms[v].disk_attachments[a].disk]))
        }
        (Ent::DiskAttachment(v, _), "vm")
        | (Ent::Nic(v, _), "vm")
        | (Ent::ReportedDevice(v, _), "vm")
        | (Ent::VmStat(v, _), "vm")
        | (Ent::Watchdog(v, _), "vm")
        | (Ent::HostDevice(v, _), "vm")
        | (Ent::Snapshot(v, _), "vm")
        | (Ent::VmTag(v, _), "vm") => one(Ent::Vm(v)),
        (Ent::Nic(v, n), "reported_devices") => many(
            "reported_devices",
            "reported_device",
            if w.vms[v].nics[n].reported_ips.is_some() {
                vec![Ent::ReportedDevice(v, n)]
            } else {
                vec![]
            },
        ),
        (Ent::Nic(v, n), "vnic_profile") => w.vms[v].nics[n]
            .vnic_profile
            .as_ref()
            .and_then(|p| ix.profile.get(p))
            .and_then(|p| one(Ent::VnicProfile(*p))),
        (Ent::Permission(p, ctx), m) => follow_permission(ix, p, ctx, m),
        (Ent::VmTag(v, t), "tag") => ix
            .tag
            .get(&w.vms[v].tags[t])
            .and_then(|t| one(Ent::Tag(*t))),
        (Ent::Disk(d), "storage_domains") => many(
            "storage_domains",
            "storage_domain",
            w.disks[d]
                .storage_domain
                .as_ref()
                .and_then(|s| ix.sd.get(s))
                .map(|s| vec![Ent::StorageDomain(*s)])
                .unwrap_or_default(),
        ),
        (Ent::Network(n), "data_center") => one(Ent::DataCenter(ix.dc[&w.networks[n].data_center])),
        (Ent::Network(n), "vnic_profiles") => many(
            "vnic_profiles",
            "vnic_profile",
            (0..w.vnic_profiles.len())
                .filter(|p| w.vnic_profiles[*p].network == w.networks[n].id)
                .map(Ent::VnicProfile)
                .collect(),
        ),
        (Ent::VnicProfile(p), "network") => {
            one(Ent::Network(ix.network[&w.vnic_profiles[p].network]))
        }
        (Ent::VnicProfile(p), "network_filter") => w.vnic_profiles[p]
            .network_filter
            .as_ref()
            .and_then(|f| ix.network_filter.get(&network_filter_id(f)))
            .and_then(|f| one(Ent::NetworkFilter(*f))),
        (Ent::StorageDomain(s), "data_centers") => many(
            "data_centers",
            "data_center",
            w.storage_domains[s]
                .data_centers
                .iter()
                .map(|d| Ent::DataCenter(ix.dc[d]))
                .collect(),
        ),
        (Ent::StorageDomain(s), "disks") => many(
            "disks",
            "disk",
            (0..w.disks.len())
                .filter(|d| {
                    w.disks[*d].storage_domain.as_deref() == Some(w.storage_domains[s].id.as_str())
                })
                .map(Ent::Disk)
                .collect(),
        ),
        (Ent::Cluster(c), m) => follow_cluster(ix, ent, c, m),
        (Ent::DataCenter(d), m) => follow_data_center(ix, ent, d, m),
        (Ent::Host(h), "cluster") => one(Ent::Cluster(ix.cluster[&w.hosts[h].cluster])),
        (Ent::User(u), "permissions") => many(
            "permissions",
            "permission",
            ix.user_permissions[u]
                .iter()
                .map(|p| Ent::Permission(*p, PermCtx::User(u)))
                .collect(),
        ),
        (Ent::Group(g), "permissions") => many(
            "permissions",
            "permission",
            ix.group_permissions[g]
                .iter()
                .map(|p| Ent::Permission(*p, PermCtx::Group(g)))
                .collect(),
        ),
        (_, m) => empty(ent, m),
    }
}

fn follow_vm(ix: &Index, ent: &Ent, v: usize, m: &str) -> Option<Followed> {
    let w = &ix.world;
    let vm = &w.vms[v];
    match m {
        "disk_attachments" => many(
            "disk_attachments",
            "disk_attachment",
            (0..vm.disk_attachments.len())
                .map(|a| Ent::DiskAttachment(v, a))
                .collect(),
        ),
        "nics" => many(
            "nics",
            "nic",
            (0..vm.nics.len()).map(|n| Ent::Nic(v, n)).collect(),
        ),
        "reported_devices" => many(
            "reported_devices",
            "reported_device",
            (0..vm.nics.len())
                .filter(|n| vm.nics[*n].reported_ips.is_some())
                .map(|n| Ent::ReportedDevice(v, n))
                .collect(),
        ),
        "permissions" => many(
            "permissions",
            "permission",
            ix.vm_permissions[v]
                .iter()
                .map(|p| Ent::Permission(*p, PermCtx::Vm(v)))
                .collect(),
        ),
        "statistics" => many(
            "statistics",
            "statistic",
            (0..STATS.len()).map(|s| Ent::VmStat(v, s)).collect(),
        ),
        "tags" => many(
            "tags",
            "tag",
            (0..vm.tags.len()).map(|t| Ent::VmTag(v, t)).collect(),
        ),
        "watchdogs" => many(
            "watchdogs",
            "watchdog",
            (0..vm.watchdogs.len())
                .map(|i| Ent::Watchdog(v, i))
                .collect(),
        ),
        "host_devices" => many(
            "host_devices",
            "host_device",
            (0..vm.host_devices.len())
                .map(|i| Ent::HostDevice(v, i))
                .collect(),
        ),
        "snapshots" => many(
            "snapshots",
            "snapshot",
            (0..vm.snapshots.len())
                .map(|i| Ent::Snapshot(v, i))
                .collect(),
        ),
        "cluster" => one(Ent::Cluster(ix.cluster[&vm.cluster])),
        "host" => vm
            .host
            .as_ref()
            .and_then(|h| ix.host.get(h))
            .and_then(|h| one(Ent::Host(*h))),
        "template" | "original_template" => {
            let name = vm.template.as_deref().unwrap_or("Blank");
            one(Ent::Template(ix.template_by_name[name]))
        }
        _ => empty(ent, m),
    }
}

fn follow_permission(ix: &Index, p: usize, ctx: PermCtx, m: &str) -> Option<Followed> {
    let w = &ix.world;
    let perm = &w.permissions[p];
    match m {
        "role" => ix
            .role_by_name
            .get(&perm.role)
            .and_then(|r| one(Ent::Role(*r))),
        "user" => perm
            .user
            .as_ref()
            .and_then(|u| ix.user.get(u))
            .and_then(|u| one(Ent::User(*u))),
        "group" => perm
            .group
            .as_ref()
            .and_then(|g| ix.group.get(g))
            .and_then(|g| one(Ent::Group(*g))),
        "vm" => match ctx {
            PermCtx::Vm(v) => one(Ent::Vm(v)),
            _ => perm
                .object
                .id
                .as_ref()
                .and_then(|id| ix.vm.get(id))
                .and_then(|v| one(Ent::Vm(*v))),
        },
        "cluster" if perm.object.kind == "cluster" && !matches!(ctx, PermCtx::Vm(_)) => one(
            Ent::Cluster(ix.cluster[perm.object.id.as_deref().unwrap_or("")]),
        ),
        "data_center" if perm.object.kind == "data_center" && !matches!(ctx, PermCtx::Vm(_)) => {
            one(Ent::DataCenter(
                ix.dc[perm.object.id.as_deref().unwrap_or("")],
            ))
        }
        _ => None,
    }
}

fn follow_data_center(ix: &Index, ent: &Ent, d: usize, m: &str) -> Option<Followed> {
    let w = &ix.world;
    let dc = &w.data_centers[d].id;
    match m {
        "clusters" => many(
            "clusters",
            "cluster",
            (0..w.clusters.len())
                .filter(|c| ix.cluster_dc[*c] == d)
                .map(Ent::Cluster)
                .collect(),
        ),
        "networks" => many(
            "networks",
            "network",
            (0..w.networks.len())
                .filter(|n| &w.networks[*n].data_center == dc)
                .map(Ent::Network)
                .collect(),
        ),
        "storage_domains" => many(
            "storage_domains",
            "storage_domain",
            (0..w.storage_domains.len())
                .filter(|s| w.storage_domains[*s].data_centers.contains(dc))
                .map(Ent::StorageDomain)
                .collect(),
        ),
        "permissions" => many(
            "permissions",
            "permission",
            ix.dc_permissions[d]
                .iter()
                .map(|p| Ent::Permission(*p, PermCtx::DataCenter(d)))
                .collect(),
        ),
        _ => empty(ent, m),
    }
}

fn follow_cluster(ix: &Index, ent: &Ent, c: usize, m: &str) -> Option<Followed> {
    let w = &ix.world;
    match m {
        "data_center" => one(Ent::DataCenter(ix.cluster_dc[c])),
        "permissions" => many(
            "permissions",
            "permission",
            ix.cluster_permissions[c]
                .iter()
                .map(|p| Ent::Permission(*p, PermCtx::Cluster(c)))
                .collect(),
        ),
        "networks" => {
            let dc = &w.data_centers[ix.cluster_dc[c]].id;
            many(
                "networks",
                "network",
                (0..w.networks.len())
                    .filter(|n| &w.networks[*n].data_center == dc)
                    .map(Ent::Network)
                    .collect(),
            )
        }
        _ => empty(ent, m),
    }
}

fn one(e: Ent) -> Option<Followed> {
    Some(Followed::One(e))
}

/// (name, description, kind, type, unit)
pub const STATS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "memory.installed",
        "Total memory configured",
        "gauge",
        "integer",
        "bytes",
    ),
    (
        "memory.used",
        "Memory used (agent)",
        "gauge",
        "integer",
        "bytes",
    ),
    (
        "memory.free",
        "Memory free (agent)",
        "gauge",
        "integer",
        "bytes",
    ),
    (
        "memory.buffered",
        "Memory buffered (agent)",
        "gauge",
        "integer",
        "bytes",
    ),
    (
        "memory.cached",
        "Memory cached (agent)",
        "gauge",
        "integer",
        "bytes",
    ),
    (
        "cpu.current.guest",
        "CPU used by guest",
        "gauge",
        "decimal",
        "percent",
    ),
    (
        "cpu.current.hypervisor",
        "CPU overhead",
        "gauge",
        "decimal",
        "percent",
    ),
    (
        "cpu.current.total",
        "Total CPU used",
        "gauge",
        "decimal",
        "percent",
    ),
    (
        "migration.progress",
        "Migration Progress",
        "gauge",
        "decimal",
        "percent",
    ),
    (
        "network.current.total",
        "Total network used",
        "gauge",
        "decimal",
        "percent",
    ),
    (
        "elapsed.time",
        "Elapsed VM runtime",
        "counter",
        "integer",
        "seconds",
    ),
];

fn stat_value(ix: &Index, v: usize, s: usize) -> String {
    let vm = &ix.world.vms[v];
    let st = vm.statistics.clone().unwrap_or_default();
    let installed = if vm.statistics.is_some() {
        st.memory_installed
    } else {
        vm.memory
    };
    match STATS[s].0 {
        "memory.installed" => installed.to_string(),
        "memory.used" => st.memory_used.to_string(),
        "memory.free" => {
            if vm.statistics.is_some() {
                installed.saturating_sub(st.memory_used).to_string()
            } else {
                "0".into()
            }
        }
        "cpu.current.guest" => decimal(st.cpu_guest),
        "cpu.current.hypervisor" => decimal((st.cpu_total - st.cpu_guest).max(0.0)),
        "cpu.current.total" => decimal(st.cpu_total),
        "network.current.total" => decimal(st.network_total),
        "elapsed.time" => st.elapsed_time.to_string(),
        _ => "0".into(),
    }
}

fn named(ix: &Index, ent: &Ent, name: Option<&str>) -> Obj {
    let mut o = Obj::with_ref(href(ix, ent), id_of(ix, ent));
    let actions = actions_of(ent);
    if !actions.is_empty() {
        let base = href(ix, ent);
        let links: Vec<Node> = actions
            .iter()
            .map(|a| Node::Obj(Obj::link(format!("{base}/{a}"), *a)))
            .collect();
        o.obj("actions", wrap("link", Node::List(links)));
    }
    if let Some(n) = name {
        o.s("name", n);
    }
    o
}

fn add_links(ix: &Index, ent: &Ent, o: &mut Obj) {
    let members = link_members(ent);
    if members.is_empty() {
        return;
    }
    let base = href(ix, ent);
    let links: Vec<Node> = members
        .iter()
        .map(|(m, _)| {
            let rel = rel(m);
            Node::Obj(Obj::link(format!("{base}/{rel}"), rel))
        })
        .collect();
    o.add("link", Node::List(links));
}

fn version_obj(v: &str) -> Obj {
    let mut parts = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    let mut o = Obj::new();
    o.int(
        "major",
        parts.next().and_then(|p| p.parse().ok()).unwrap_or(0),
    );
    o.int(
        "minor",
        parts.next().and_then(|p| p.parse().ok()).unwrap_or(0),
    );
    o
}

fn full_version(v: &str) -> Obj {
    let nums: Vec<i64> = v
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok())
        .collect();
    let mut o = Obj::new();
    o.int("build", nums.get(2).copied().unwrap_or(0));
    o.s("full_version", v);
    o.int("major", nums.first().copied().unwrap_or(0));
    o.int("minor", nums.get(1).copied().unwrap_or(0));
    o.int("revision", nums.get(3).copied().unwrap_or(0));
    o
}

/// The object's tree, without followed links.
pub fn build(ix: &Index, ent: &Ent, opts: BuildOpts) -> Obj {
    match *ent {
        Ent::Vm(v) => build_vm(ix, v, opts),
        Ent::Disk(d) => build_disk(ix, ent, d),
        Ent::DiskAttachment(v, a) => build_disk_attachment(ix, ent, v, a),
        Ent::Nic(v, n) => build_nic(ix, ent, v, n),
        Ent::ReportedDevice(v, n) => build_reported_device(ix, ent, v, n),
        Ent::Permission(p, ctx) => build_permission(ix, ent, p, ctx),
        Ent::VmStat(v, s) => build_vm_stat(ix, ent, v, s),
        Ent::Watchdog(v, i) => build_watchdog(ix, ent, v, i),
        Ent::HostDevice(v, i) => build_host_device(ix, ent, v, i),
        Ent::Snapshot(v, s) => build_snapshot(ix, ent, v, s),
        Ent::VmTag(v, t) => build_vm_tag(ix, ent, v, t),
        Ent::Tag(t) => build_tag(ix, ent, t),
        Ent::Network(n) => build_network(ix, ent, n),
        Ent::VnicProfile(p) => build_vnic_profile(ix, ent, p),
        Ent::StorageDomain(s) => build_storage_domain(ix, ent, s),
        Ent::Cluster(c) => build_cluster(ix, ent, c),
        Ent::DataCenter(d) => build_data_center(ix, ent, d),
        Ent::Host(h) => build_host(ix, ent, h),
        Ent::User(u) => build_user(ix, ent, u),
        Ent::Group(g) => build_group(ix, ent, g),
        Ent::Role(ri) => build_role(ix, ent, ri),
        Ent::Template(t) => build_template(ix, ent, t),
        Ent::NetworkFilter(f) => build_network_filter(ix, ent, f),
    }
}

fn build_disk(ix: &Index, ent: &Ent, d: usize) -> Obj {
    let w = &ix.world;
    let disk = &w.disks[d];
    let mut o = named(ix, ent, Some(&disk.alias));
    o.s("description", "");
    add_links(ix, ent, &mut o);
    o.long("actual_size", disk.actual_size);
    o.s("alias", &disk.alias);
    o.s("backup", "none");
    o.s("content_type", &disk.content_type);
    o.s("format", &disk.format);
    o.s("image_id", derived_id(&format!("image/{}", disk.id)));
    if let Some(lun) = disk.lun_size {
        let lu = logical_unit(&disk.id, lun);
        let mut unit = Obj::with_id(lu.id);
        unit.s("address", lu.address);
        unit.int("lun_mapping", lu.lun_mapping);
        unit.int("port", lu.port);
        unit.long("size", lu.size);
        unit.s("target", lu.target);
        unit.s("vendor_id", "LIO-ORG");
        let mut storage = Obj::new();
        storage.obj(
            "logical_units",
            wrap("logical_unit", Node::List(vec![Node::Obj(unit)])),
        );
        storage.s("type", "iscsi");
        o.obj("lun_storage", storage);
    }
    o.b("propagate_errors", false);
    o.long(
        "provisioned_size",
        if disk.storage_type == "lun" {
            disk.lun_size.unwrap_or(0)
        } else {
            disk.provisioned_size
        },
    );
    if disk.format == "cow" {
        o.s("qcow_version", "qcow2_v3");
    }
    o.b("shareable", disk.shareable);
    o.b("sparse", disk.sparse);
    o.s("status", &disk.status);
    o.s("storage_type", &disk.storage_type);
    if disk.storage_type == "image" {
        o.long("total_size", disk.actual_size);
    }
    o.b("wipe_after_delete", false);
    if let Some(sd) = &disk.storage_domain {
        o.obj(
            "disk_profile",
            r("diskprofiles", &derived_id(&format!("diskprofile/{sd}"))),
        );
        o.obj(
            "storage_domains",
            wrap(
                "storage_domain",
                Node::List(vec![Node::Obj(r("storagedomains", sd))]),
            ),
        );
    }
    o
}

fn build_disk_attachment(ix: &Index, ent: &Ent, v: usize, a: usize) -> Obj {
    let w = &ix.world;
    let att = &w.vms[v].disk_attachments[a];
    let mut o = Obj::with_ref(href(ix, ent), id_of(ix, ent));
    o.b("active", att.active);
    o.b("bootable", att.bootable);
    o.s("interface", &att.interface);
    if let Some(n) = &att.logical_name {
        o.s("logical_name", n);
    }
    o.b("pass_discard", false);
    o.b("read_only", att.read_only);
    o.b("uses_scsi_reservation", att.uses_scsi_reservation);
    o.obj("disk", r("disks", &att.disk));
    o.obj("vm", r("vms", &w.vms[v].id));
    o
}

fn build_nic(ix: &Index, ent: &Ent, v: usize, n: usize) -> Obj {
    let w = &ix.world;
    let nic = &w.vms[v].nics[n];
    let mut o = named(ix, ent, Some(&nic.name));
    add_links(ix, ent, &mut o);
    o.obj("vm", r("vms", &w.vms[v].id));
    o.s("interface", &nic.interface);
    o.b("linked", nic.linked);
    o.obj("mac", wrap("address", Node::Str(nic.mac.clone())));
    o.b("plugged", nic.plugged);
    if let Some(p) = &nic.vnic_profile {
        o.obj("vnic_profile", r("vnicprofiles", p));
    }
    o
}

fn build_reported_device(ix: &Index, ent: &Ent, v: usize, n: usize) -> Obj {
    let w = &ix.world;
    let nic = &w.vms[v].nics[n];
    let mut o = Obj::with_ref(href(ix, ent), id_of(ix, ent));
    o.s("name", format!("eth{n}"));
    o.s("description", "guest reported data");
    let ips: Vec<Node> = nic
        .reported_ips
        .iter()
        .flatten()
        .map(|ip| {
            let mut i = Obj::new();
            i.s("address", &ip.address).s("version", &ip.version);
            Node::Obj(i)
        })
        .collect();
    o.obj("ips", collection("ip", ips));
    o.obj("mac", wrap("address", Node::Str(nic.mac.clone())));
    o.s("type", "network");
    o.obj("vm", r("vms", &w.vms[v].id));
    o
}

fn build_permission(ix: &Index, ent: &Ent, p: usize, ctx: PermCtx) -> Obj {
    let w = &ix.world;
    let perm = &w.permissions[p];
    let mut o = Obj::with_ref(href(ix, ent), id_of(ix, ent));
    let role_id = ix
        .role_by_name
        .get(&perm.role)
        .map(|r| ix.roles[*r].id.clone())
        .unwrap_or_default();
    match ctx {
        PermCtx::Vm(v) => {
            o.obj("vm", r("vms", &w.vms[v].id));
        }
        _ => match (perm.object.kind.as_str(), perm.object.id.as_deref()) {
            ("vm", Some(id)) => {
                o.obj("vm", r("vms", id));
            }
            ("cluster", Some(id)) => {
                o.obj("cluster", r("clusters", id));
            }
            ("data_center", Some(id)) => {
                o.obj("data_center", r("datacenters", id));
            }
            _ => {}
        },
    }
    o.obj("role", r("roles", &role_id));
    if let Some(u) = &perm.user {
        o.obj("user", r("users", u));
    }
    if let Some(g) = &perm.group {
        o.obj("group", r("groups", g));
    }
    o
}

fn build_vm_stat(ix: &Index, ent: &Ent, v: usize, s: usize) -> Obj {
    let w = &ix.world;
    let (name, desc, kind, ty, unit) = STATS[s];
    let mut o = Obj::with_ref(href(ix, ent), id_of(ix, ent));
    o.s("name", name)
        .s("description", desc)
        .s("kind", kind)
        .s("type", ty)
        .s("unit", unit);
    let value = wrap("datum", Node::Dec(stat_value(ix, v, s)));
    o.obj("values", wrap("value", Node::List(vec![Node::Obj(value)])));
    o.obj("vm", r("vms", &w.vms[v].id));
    o
}

fn build_watchdog(ix: &Index, ent: &Ent, v: usize, i: usize) -> Obj {
    let w = &ix.world;
    let wd = &w.vms[v].watchdogs[i];
    let mut o = Obj::with_ref(href(ix, ent), id_of(ix, ent));
    o.s("action", &wd.action).s("model", &wd.model);
    o.obj("vm", r("vms", &w.vms[v].id));
    o
}

fn build_host_device(ix: &Index, ent: &Ent, v: usize, i: usize) -> Obj {
    let w = &ix.world;
    let vm = &w.vms[v];
    let mut o = named(ix, ent, Some(&vm.host_devices[i]));
    o.s("capability", "pci");
    o.s("driver", "vfio-pci");
    o.s("iommu_group", "35");
    o.b("placeholder", false);
    if let Some(h) = &vm.host {
        o.obj("host", r("hosts", h));
    }
    o.obj("vm", r("vms", &vm.id));
    o
}

fn build_snapshot(ix: &Index, ent: &Ent, v: usize, s: usize) -> Obj {
    let w = &ix.world;
    let snap = &w.vms[v].snapshots[s];
    let mut o = named(ix, ent, None);
    o.s("description", &snap.description);
    o.date("date", &snap.date);
    o.b("persist_memorystate", snap.persist_memorystate);
    o.s("snapshot_status", "ok");
    o.s("snapshot_type", &snap.kind);
    o.obj("vm", r("vms", &w.vms[v].id));
    o
}

fn build_vm_tag(ix: &Index, ent: &Ent, v: usize, t: usize) -> Obj {
    let w = &ix.world;
    let tag_id = &w.vms[v].tags[t];
    let mut o = Obj::with_ref(href(ix, ent), tag_id);
    if let Some(i) = ix.tag.get(tag_id) {
        o.s("name", &w.tags[*i].name);
    }
    o.obj("parent", r("tags", BLANK_TEMPLATE));
    o.obj("vm", r("vms", &w.vms[v].id));
    o
}

fn build_tag(ix: &Index, ent: &Ent, t: usize) -> Obj {
    let w = &ix.world;
    let mut o = named(ix, ent, Some(&w.tags[t].name));
    o.s("description", "");
    o.obj("parent", r("tags", BLANK_TEMPLATE));
    o
}

fn build_network(ix: &Index, ent: &Ent, n: usize) -> Obj {
    let w = &ix.world;
    let net = &w.networks[n];
    let mut o = named(ix, ent, Some(&net.name));
    o.s("description", net.description.clone().unwrap_or_default());
    o.s("comment", "");
    add_links(ix, ent, &mut o);
    o.int("mtu", i64::from(net.mtu));
    o.b("required", false);
    o.b("stp", false);
    let usages: Vec<Node> = net.usages.iter().map(|u| Node::Str(u.clone())).collect();
    o.obj("usages", collection("usage", usages));
    o.s("vdsm_name", &net.name);
    if let Some(vlan) = net.vlan {
        o.obj("vlan", Obj::with_id(vlan.to_string()));
    }
    o.obj("data_center", r("datacenters", &net.data_center));
    o
}

fn build_vnic_profile(ix: &Index, ent: &Ent, p: usize) -> Obj {
    let w = &ix.world;
    let prof = &w.vnic_profiles[p];
    let mut o = named(ix, ent, Some(&prof.name));
    add_links(ix, ent, &mut o);
    if let Some(props) = &prof.custom_properties {
        o.obj("custom_properties", custom_properties(props));
    }
    o.b("migratable", false);
    o.obj(
        "pass_through",
        wrap(
            "mode",
            Node::Str(
                if prof.pass_through {
                    "enabled"
                } else {
                    "disabled"
                }
                .into(),
            ),
        ),
    );
    o.b("port_mirroring", prof.port_mirroring);
    o.obj("network", r("networks", &prof.network));
    if let Some(f) = &prof.network_filter {
        o.obj("network_filter", r("networkfilters", &network_filter_id(f)));
    }
    if let Some(q) = &prof.qos {
        let dc = &w.networks[ix.network[&prof.network]].data_center;
        let mut qos = Obj::with_ref(
            format!("{API}/datacenters/{dc}/qoss/{}", derived_id(q)),
            derived_id(q),
        );
        qos.s("name", q);
        o.obj("qos", qos);
    }
    o
}

fn build_storage_domain(ix: &Index, ent: &Ent, s: usize) -> Obj {
    let w = &ix.world;
    let sd = &w.storage_domains[s];
    let mut o = named(ix, ent, Some(&sd.name));
    o.s("description", "").s("comment", "");
    add_links(ix, ent, &mut o);
    o.long("available", sd.available);
    o.b("backup", false);
    o.int("block_size", 512);
    o.long("committed", sd.committed);
    o.int("critical_space_action_blocker", 5);
    o.b("discard_after_delete", false);
    o.s("external_status", "ok");
    o.b(
        "master",
        sd.kind == "data"
            && w.storage_domains
                .iter()
                .position(|x| x.kind == "data" && x.data_centers == sd.data_centers)
                == Some(s),
    );
    let mut st = Obj::new();
    st.s(
        "address",
        format!(
            "nfs-{}.lab.example.com",
            sd.name.to_lowercase().replace('_', "-")
        ),
    );
    st.s("path", format!("/exports/{}", sd.name));
    st.s("type", &sd.storage_type);
    o.obj("storage", st);
    o.s("storage_format", "v5");
    o.b("supports_discard", false);
    o.b("supports_discard_zeroes_data", false);
    o.s("type", &sd.kind);
    o.long("used", sd.used);
    o.int("warning_low_space_indicator", 10);
    o.b("wipe_after_delete", false);
    if let Some(status) = &sd.status {
        o.s("status", status);
    }
    let dcs: Vec<Node> = sd
        .data_centers
        .iter()
        .map(|d| Node::Obj(r("datacenters", d)))
        .collect();
    o.obj("data_centers", collection("data_center", dcs));
    o
}

fn build_cluster(ix: &Index, ent: &Ent, c: usize) -> Obj {
    let w = &ix.world;
    let cl = &w.clusters[c];
    let mut o = named(ix, ent, Some(&cl.name));
    o.s("description", "").s("comment", "");
    add_links(ix, ent, &mut o);
    o.b("ballooning_enabled", true);
    if let Some(b) = &cl.bios_type {
        o.s("bios_type", b);
    }
    let mut cpu = Obj::new();
    cpu.s("architecture", "x86_64").s("type", &cl.cpu_type);
    o.obj("cpu", cpu);
    o.obj(
        "error_handling",
        wrap("on_error", Node::Str("migrate".into())),
    );
    o.s("firewall_type", "firewalld");
    o.b("gluster_service", false);
    o.b("ha_reservation", cl.ha_reservation);
    let mut ksm = Obj::new();
    ksm.b("enabled", cl.ksm).b("merge_across_nodes", true);
    o.obj("ksm", ksm);
    o.s("switch_type", "legacy");
    o.b("threads_as_cores", false);
    o.b("trusted_service", false);
    o.b("tunnel_migration", false);
    o.obj("version", version_obj(&cl.version));
    o.b("virt_service", true);
    o.obj("data_center", r("datacenters", &cl.data_center));
    o
}

fn build_data_center(ix: &Index, ent: &Ent, d: usize) -> Obj {
    let w = &ix.world;
    let dc = &w.data_centers[d];
    let mut o = named(ix, ent, Some(&dc.name));
    if let Some(desc) = &dc.description {
        o.s("description", desc);
    }
    add_links(ix, ent, &mut o);
    o.b("local", dc.local);
    o.s("quota_mode", "disabled");
    o.s("status", &dc.status);
    o.s("storage_format", "v5");
    o.obj(
        "supported_versions",
        wrap(
            "version",
            Node::List(vec![Node::Obj(version_obj(&dc.version))]),
        ),
    );
    o.obj("version", version_obj(&dc.version));
    o.obj("mac_pool", r("macpools", &derived_id("macpool/Default")));
    o
}

fn build_host(ix: &Index, ent: &Ent, h: usize) -> Obj {
    let w = &ix.world;
    let host = &w.hosts[h];
    let mut o = named(ix, ent, Some(&host.name));
    o.s("comment", "");
    add_links(ix, ent, &mut o);
    o.s("address", &host.address);
    let mut cpu = Obj::new();
    cpu.s("name", "Intel Xeon Processor (Skylake)");
    cpu.int("speed", 2100);
    let mut topo = Obj::new();
    topo.int("cores", 16).int("sockets", 2).int("threads", 2);
    cpu.obj("topology", topo);
    o.obj("cpu", cpu);
    o.long("memory", 412_316_860_416);
    o.int("port", 54321);
    o.s("status", &host.status);
    o.s("type", "rhel");
    o.obj("cluster", r("clusters", &host.cluster));
    o
}

fn build_user(ix: &Index, ent: &Ent, u: usize) -> Obj {
    let w = &ix.world;
    let user = &w.users[u];
    let mut o = named(
        ix,
        ent,
        Some(user.name.as_deref().unwrap_or(&user.principal)),
    );
    add_links(ix, ent, &mut o);
    o.s("department", "");
    o.s("domain_entry_id", hex_of(&user.id));
    if let Some(e) = &user.email {
        o.s("email", e);
    }
    if let Some(l) = &user.last_name {
        o.s("last_name", l);
    }
    o.s(
        "namespace",
        user.namespace.clone().unwrap_or_else(|| "*".into()),
    );
    o.s("principal", &user.principal);
    o.s("user_name", &user.user_name);
    let mut dom = r("domains", &derived_id(&format!("domain/{}", user.domain)));
    dom.s("name", &user.domain);
    o.obj("domain", dom);
    o
}

fn build_group(ix: &Index, ent: &Ent, g: usize) -> Obj {
    let w = &ix.world;
    let group = &w.groups[g];
    let mut o = named(ix, ent, Some(&group.name));
    add_links(ix, ent, &mut o);
    o.s("domain_entry_id", hex_of(&group.id));
    if let Some(n) = &group.namespace {
        o.s("namespace", n);
    }
    let mut dom = r("domains", &derived_id(&format!("domain/{}", group.domain)));
    dom.s("name", &group.domain);
    o.obj("domain", dom);
    o
}

fn build_role(ix: &Index, ent: &Ent, ri: usize) -> Obj {
    let role = &ix.roles[ri];
    let mut o = named(ix, ent, Some(&role.name));
    o.s("description", &role.description);
    add_links(ix, ent, &mut o);
    o.b("administrative", role.administrative);
    o.b("mutable", role.mutable);
    o
}

fn build_template(ix: &Index, ent: &Ent, t: usize) -> Obj {
    let mut o = named(ix, ent, Some(&ix.templates[t].name));
    o.s("description", if t == 0 { "Blank template" } else { "" });
    add_links(ix, ent, &mut o);
    o.s("status", "ok");
    o.s("type", "server");
    o
}

fn build_network_filter(ix: &Index, ent: &Ent, f: usize) -> Obj {
    let filter = &ix.network_filters[f];
    let mut o = named(ix, ent, Some(&filter.name));
    // The engine writes -1 for the parts a filter's version lacks.
    let mut version = version_obj(&filter.version);
    version.int("build", -1).int("revision", -1);
    o.obj("version", version);
    o
}

fn hex_of(s: &str) -> String {
    s.bytes().take(24).map(|b| format!("{b:02X}")).collect()
}

fn custom_properties(props: &[crate::world::NameValue]) -> Obj {
    let items: Vec<Node> = props
        .iter()
        .map(|p| {
            let mut o = Obj::new();
            o.s("name", &p.name).s("value", &p.value);
            Node::Obj(o)
        })
        .collect();
    wrap("custom_property", Node::List(items))
}

fn build_vm(ix: &Index, v: usize, opts: BuildOpts) -> Obj {
    let vm = &ix.world.vms[v];
    let ent = Ent::Vm(v);
    let mut o = named(ix, &ent, Some(&vm.name));
    o.s("description", vm.description.clone().unwrap_or_default());
    o.s("comment", vm.comment.clone().unwrap_or_default());
    add_links(ix, &ent, &mut o);

    o.obj("bios", vm_bios(vm));
    if opts.all_content {
        o.obj("console", wrap("enabled", Node::Bool(false)));
    }
    o.obj("cpu", vm_cpu(vm));
    if let Some(p) = &vm.cpu_pinning_policy {
        o.s("cpu_pinning_policy", p);
    }
    o.int("cpu_shares", i64::from(vm.cpu_shares.unwrap_or(0)));
    o.date("creation_time", &vm.creation_time);
    if let Some(m) = &vm.custom_cpu_model {
        o.s("custom_cpu_model", m);
    }
    if let Some(props) = &vm.custom_properties {
        o.obj("custom_properties", custom_properties(props));
    }
    o.b("delete_protected", vm.delete_protected.unwrap_or(false));
    if let Some(d) = &vm.display_type {
        o.obj("display", display(d));
    }
    let ha = vm.high_availability.clone().unwrap_or_default();
    let mut hao = Obj::new();
    hao.b("enabled", ha.enabled)
        .int("priority", i64::from(ha.priority));
    o.obj("high_availability", hao);
    if opts.all_content {
        let mut conf = Obj::new();
        conf.s("data", ovf(ix, v));
        conf.s("type", "ovf");
        o.obj("initialization", wrap("configuration", Node::Obj(conf)));
    }
    // Always there: 0 when IO threads are off.
    o.obj(
        "io",
        wrap("threads", Node::Int(i64::from(vm.io_threads.unwrap_or(0)))),
    );
    o.long("memory", vm.memory);
    if let Some(mp) = &vm.memory_policy {
        let mut m = Obj::new();
        m.b("ballooning", mp.ballooning)
            .long("guaranteed", mp.guaranteed)
            .long("max", mp.max);
        o.obj("memory_policy", m);
    }
    o.int("migration_downtime", -1);
    o.b("multi_queues_enabled", true);
    o.s(
        "origin",
        vm.origin.clone().unwrap_or_else(|| "ovirt".into()),
    );
    o.obj("os", vm_os(vm));
    o.obj("placement_policy", placement_policy(vm));
    if opts.all_content {
        o.b("soundcard_enabled", false);
    }
    o.b("start_paused", false);
    o.b("stateless", vm.stateless.unwrap_or(false));
    o.s(
        "storage_error_resume_behaviour",
        vm.storage_error_resume_behaviour
            .clone()
            .unwrap_or_else(|| "auto_resume".into()),
    );
    o.obj("time_zone", wrap("name", Node::Str("Etc/GMT".into())));
    o.b("tpm_enabled", vm.tpm_enabled.unwrap_or(false));
    o.s("type", &vm.kind);
    o.obj("usb", wrap("enabled", Node::Bool(vm.usb.unwrap_or(false))));
    if opts.all_content {
        o.obj("virtio_scsi", wrap("enabled", Node::Bool(true)));
    }
    o.obj("cluster", r("clusters", &vm.cluster));
    o.obj(
        "cpu_profile",
        r(
            "cpuprofiles",
            &derived_id(&format!("cpuprofile/{}", vm.cluster)),
        ),
    );
    if let Some(f) = &vm.fqdn {
        o.s("fqdn", f);
    }
    if let Some(g) = &vm.guest_os {
        o.obj("guest_operating_system", guest_os(g));
    }
    o.b("has_illegal_images", vm.has_illegal_images.unwrap_or(false));
    o.b("next_run_configuration_exists", false);
    o.b("run_once", false);
    if let Some(t) = &vm.start_time {
        o.date("start_time", t);
    }
    o.s("status", &vm.status);
    if let Some(r) = &vm.stop_reason {
        o.s("stop_reason", r);
    }
    if let Some(t) = &vm.stop_time {
        o.date("stop_time", t);
    }
    if let Some(h) = &vm.host {
        o.obj("host", r("hosts", h));
    }
    let template = vm.template.as_deref().unwrap_or("Blank");
    let tid = &ix.templates[ix.template_by_name[template]].id;
    o.obj("original_template", r("templates", tid));
    o.obj("template", r("templates", tid));
    o
}

fn vm_bios(vm: &crate::world::Vm) -> Obj {
    let mut bios = Obj::new();
    bios.obj(
        "boot_menu",
        wrap("enabled", Node::Bool(vm.boot_menu.unwrap_or(false))),
    );
    bios.s(
        "type",
        vm.bios_type
            .clone()
            .unwrap_or_else(|| "cluster_default".into()),
    );
    bios
}

fn vm_cpu(vm: &crate::world::Vm) -> Obj {
    let mut cpu = Obj::new();
    cpu.s("architecture", "x86_64");
    let mut topo = Obj::new();
    topo.int("cores", i64::from(vm.cpu.cores))
        .int("sockets", i64::from(vm.cpu.sockets))
        .int("threads", i64::from(vm.cpu.threads));
    cpu.obj("topology", topo);
    if let Some(pins) = &vm.vcpu_pins {
        let items: Vec<Node> = pins
            .iter()
            .map(|p| {
                let mut pin = Obj::new();
                pin.s("cpu_set", &p.cpu_set).int("vcpu", i64::from(p.vcpu));
                Node::Obj(pin)
            })
            .collect();
        cpu.obj(
            "cpu_tune",
            wrap("vcpu_pins", Node::Obj(wrap("vcpu_pin", Node::List(items)))),
        );
    }
    cpu
}

fn display(kind: &str) -> Obj {
    let mut display = Obj::new();
    display.b("allow_override", true);
    display.b("copy_paste_enabled", true);
    display.s("disconnect_action", "LOCK_SCREEN");
    display.b("file_transfer_enabled", true);
    display.int("monitors", 1);
    display.b("single_qxl_pci", false);
    display.b("smartcard_enabled", false);
    display.s("type", kind);
    display
}

fn vm_os(vm: &crate::world::Vm) -> Obj {
    let mut os = Obj::new();
    os.obj(
        "boot",
        wrap(
            "devices",
            Node::Obj(wrap("device", Node::List(vec![Node::Str("hd".into())]))),
        ),
    );
    os.s("type", &vm.os_type);
    os
}

/// Always there: `migratable` unless the world pins the VM.
fn placement_policy(vm: &crate::world::Vm) -> Obj {
    let mut p = Obj::new();
    match &vm.placement_policy {
        Some(pp) => {
            p.s("affinity", &pp.affinity);
            if !pp.hosts.is_empty() {
                let hosts: Vec<Node> = pp.hosts.iter().map(|h| Node::Obj(r("hosts", h))).collect();
                p.obj("hosts", wrap("host", Node::List(hosts)));
            }
        }
        None => {
            p.s("affinity", "migratable");
        }
    }
    p
}

fn guest_os(g: &crate::world::GuestOs) -> Obj {
    let mut gos = Obj::new();
    gos.s("architecture", &g.architecture)
        .s("codename", &g.codename)
        .s("distribution", &g.distribution);
    gos.s("family", &g.family);
    gos.obj(
        "kernel",
        wrap("version", Node::Obj(full_version(&g.kernel))),
    );
    // The guest's version has no build/revision, unlike the kernel's.
    let mut version = full_version(&g.version);
    version
        .fields
        .retain(|(n, _)| matches!(*n, "full_version" | "major" | "minor"));
    gos.obj("version", version);
    gos
}

/// A small OVF, as `initialization.configuration.data` carries with all_content.
fn ovf(ix: &Index, v: usize) -> String {
    let vm = &ix.world.vms[v];
    let mut disks = String::new();
    for a in &vm.disk_attachments {
        if let Some(d) = ix.disk.get(&a.disk) {
            let d = &ix.world.disks[*d];
            disks.push_str(&format!(
                "<Disk ovf:diskId=\"{}\" ovf:size=\"{}\" ovf:disk-alias=\"{}\" ovf:disk-interface=\"{}\" ovf:boot=\"{}\"></Disk>",
                d.id,
                d.provisioned_size.div_ceil(1 << 30),
                d.alias,
                a.interface,
                a.bootable
            ));
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ovf:Envelope xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1/\" ovf:version=\"4.1.0.0\"><Section xsi:type=\"ovf:DiskSection_Type\"><Info>List of Virtual Disks</Info>{disks}</Section><Content ovf:id=\"out\" xsi:type=\"ovf:VirtualSystem_Type\"><Name>{}</Name><MinAllocatedMem>{}</MinAllocatedMem><ClusterName>{}</ClusterName></Content></ovf:Envelope>",
        vm.name,
        vm.memory >> 20,
        ix.world.clusters[ix.cluster[&vm.cluster]].name
    )
}

/// GET /ovirt-engine/api
/// The API root; `vm_total_skew` is added to the summary's VM total (see `Faults`).
pub fn api_root(ix: &Index, now_ms: i64, vm_total_skew: i64) -> Obj {
    let w = &ix.world;
    let mut o = Obj::new();
    let mut links = Vec::new();
    for (seg, _, _) in ROOT_COLLECTIONS {
        links.push(Node::Obj(Obj::link(format!("{API}/{seg}"), *seg)));
        if matches!(
            *seg,
            "vms"
                | "disks"
                | "clusters"
                | "datacenters"
                | "hosts"
                | "storagedomains"
                | "templates"
                | "users"
                | "groups"
                | "networks"
        ) {
            links.push(Node::Obj(Obj::link(
                format!("{API}/{seg}?search={{query}}"),
                format!("{seg}/search"),
            )));
        }
    }
    o.add("link", Node::List(links));
    let mut pi = Obj::new();
    pi.s("name", &w.engine.product);
    pi.s("vendor", &w.engine.vendor);
    pi.obj("version", full_version(&w.engine.version));
    o.obj("product_info", pi);
    let mut so = Obj::new();
    so.obj("blank_template", r("templates", BLANK_TEMPLATE));
    so.obj("root_tag", r("tags", BLANK_TEMPLATE));
    o.obj("special_objects", so);
    let count = |active: usize, total: usize| {
        let mut c = Obj::new();
        c.int("active", active as i64).int("total", total as i64);
        c
    };
    let mut summary = Obj::new();
    summary.obj("hosts", count(ix.hosts_up, w.hosts.len()));
    summary.obj(
        "storage_domains",
        count(ix.sds_active, w.storage_domains.len()),
    );
    summary.obj("users", count(w.users.len().min(1), w.users.len()));
    let vm_total = (w.vms.len() as i64 + vm_total_skew).max(0) as usize;
    summary.obj("vms", count(ix.vms_up.min(vm_total), vm_total));
    o.obj("summary", summary);
    o.add("time", Node::Date(now_ms));
    o
}
