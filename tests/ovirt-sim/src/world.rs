//! The world file (tests/ovirt-sim/WORLD.md): serde types, loading and reference checks.
//! Objects refer to each other by id; the index in `crate::index` resolves them once at load.

use common::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct World {
    pub engine: Engine,
    #[serde(default)]
    pub data_centers: Vec<DataCenter>,
    #[serde(default)]
    pub clusters: Vec<Cluster>,
    #[serde(default)]
    pub hosts: Vec<Host>,
    #[serde(default)]
    pub networks: Vec<Network>,
    #[serde(default)]
    pub vnic_profiles: Vec<VnicProfile>,
    #[serde(default)]
    pub storage_domains: Vec<StorageDomain>,
    #[serde(default)]
    pub disks: Vec<Disk>,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub groups: Vec<Group>,
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub permissions: Vec<Permission>,
    #[serde(default)]
    pub vms: Vec<Vm>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Engine {
    pub product: String,
    pub vendor: String,
    pub version: String,
    pub credentials: Vec<Credential>,
    /// The engine's UTC offset for XML dates ("+02:00"); default "+00:00".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utc_offset: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Credential {
    pub user: String,
    pub password: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DataCenter {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub status: String,
    pub version: String,
    #[serde(default)]
    pub local: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Cluster {
    pub id: String,
    pub name: String,
    pub data_center: String,
    pub cpu_type: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bios_type: Option<String>,
    #[serde(default)]
    pub ha_reservation: bool,
    #[serde(default)]
    pub ksm: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Host {
    pub id: String,
    pub name: String,
    pub cluster: String,
    pub address: String,
    pub status: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub data_center: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u32>,
    #[serde(default = "default_mtu")]
    pub mtu: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "default_usages")]
    pub usages: Vec<String>,
}

fn default_mtu() -> u32 {
    1500
}
fn default_usages() -> Vec<String> {
    vec!["vm".into()]
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VnicProfile {
    pub id: String,
    pub name: String,
    pub network: String,
    #[serde(default)]
    pub pass_through: bool,
    #[serde(default)]
    pub port_mirroring: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_properties: Option<Vec<NameValue>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StorageDomain {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub storage_type: String,
    pub data_centers: Vec<String>,
    pub available: u64,
    pub used: u64,
    pub committed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Disk {
    pub id: String,
    pub alias: String,
    pub provisioned_size: u64,
    pub actual_size: u64,
    pub status: String,
    pub format: String,
    pub sparse: bool,
    #[serde(default)]
    pub shareable: bool,
    pub storage_type: String,
    #[serde(default = "default_content_type")]
    pub content_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lun_size: Option<u64>,
}

fn default_content_type() -> String {
    "data".into()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub id: String,
    pub principal: String,
    pub domain: String,
    pub user_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Group {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub domain: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Role {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub administrative: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Tag {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Permission {
    pub id: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub object: PermissionObject,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PermissionObject {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MemoryPolicy {
    pub guaranteed: u64,
    pub max: u64,
    pub ballooning: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CpuTopology {
    pub sockets: u32,
    pub cores: u32,
    pub threads: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VcpuPin {
    pub vcpu: u32,
    pub cpu_set: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct GuestOs {
    pub architecture: String,
    pub codename: String,
    pub distribution: String,
    pub family: String,
    pub kernel: String,
    pub version: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HighAvailability {
    pub enabled: bool,
    pub priority: i32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PlacementPolicy {
    pub affinity: String,
    #[serde(default)]
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Watchdog {
    pub model: String,
    pub action: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    pub id: String,
    pub description: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub persist_memorystate: bool,
    pub date: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Statistics {
    pub elapsed_time: u64,
    pub cpu_total: f64,
    pub cpu_guest: f64,
    pub memory_installed: u64,
    pub memory_used: u64,
    pub network_total: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DiskAttachment {
    pub id: String,
    pub disk: String,
    pub interface: String,
    pub bootable: bool,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub uses_scsi_reservation: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logical_name: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Ip {
    pub address: String,
    pub version: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Nic {
    pub id: String,
    pub name: String,
    pub mac: String,
    pub interface: String,
    #[serde(default = "yes")]
    pub plugged: bool,
    #[serde(default = "yes")]
    pub linked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vnic_profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_ips: Option<Vec<Ip>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Vm {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub cluster: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    pub status: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub memory: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_policy: Option<MemoryPolicy>,
    pub cpu: CpuTopology,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_cpu_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_pinning_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpu_pins: Option<Vec<VcpuPin>>,
    pub os_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bios_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_menu: Option<bool>,
    pub creation_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_os: Option<GuestOs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_availability: Option<HighAvailability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usb: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_threads: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_error_resume_behaviour: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_policy: Option<PlacementPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_properties: Option<Vec<NameValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_illegal_images: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_protected: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stateless: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watchdogs: Vec<Watchdog>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_devices: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<Snapshot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistics: Option<Statistics>,
    #[serde(default)]
    pub disk_attachments: Vec<DiskAttachment>,
    #[serde(default)]
    pub nics: Vec<Nic>,
    /// Faults the test bed plants for after the move (forklift-sim plays them, tests expect
    /// them); the engine knows nothing of them and ovirt-sim serves none of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_move: Option<AfterMove>,
}

/// How a VM fares on the target, where it differs from a clean move (see WORLD.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AfterMove {
    /// `false`: the guest does not boot (its VirtualMachineInstance fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boots: Option<bool>,
    /// `false`: no guest agent connects, though the source had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_agent: Option<bool>,
    /// Per MAC, the addresses the guest comes up with instead of the planned ones.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub addresses: BTreeMap<String, Vec<String>>,
    /// MACs of NICs the migrated VirtualMachine lacks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_nics: Vec<String>,
    /// `true`: DNS still answers the VM's old address for its FQDN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_stale: Option<bool>,
}

impl World {
    /// Reads and checks a world file; errors are one line naming the file.
    pub fn load(path: &Path) -> Result<World> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::no_input(format!("{}: {e}", path.display())))?;
        let world: World = serde_json::from_str(&text)
            .map_err(|e| Error::data(format!("{}: not a world file: {e}", path.display())))?;
        world.validate().map_err(|e| e.context(path.display()))?;
        Ok(world)
    }

    /// Checks that every reference names an object of the right kind and that ids are unique.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Problems::default();
        let ids = self.unique_ids(&mut problems);
        self.check_infrastructure(&ids, &mut problems);
        self.check_permissions(&ids, &mut problems);
        self.check_vms(&ids, &mut problems);
        if self.engine.credentials.is_empty() {
            problems.check(&HashSet::new(), "(none)", "credentials", "engine");
        }
        let mut problems = problems.0;
        if problems.is_empty() {
            Ok(())
        } else {
            let more = if problems.len() > 5 {
                format!(" (and {} more)", problems.len() - 5)
            } else {
                String::new()
            };
            problems.truncate(5);
            Err(Error::data(format!("{}{more}", problems.join("; "))))
        }
    }

    /// The ids of every kind of object, each kind's duplicates a problem.
    fn unique_ids(&self, problems: &mut Problems) -> Ids {
        let mut ids = |it: &mut dyn Iterator<Item = &String>, kind: &str| {
            let mut set = HashSet::new();
            for id in it {
                if !set.insert(id.clone()) {
                    problems.0.push(format!("duplicate {kind} id {id}"));
                }
            }
            set
        };
        let unique = Ids {
            dcs: ids(&mut self.data_centers.iter().map(|x| &x.id), "data center"),
            clusters: ids(&mut self.clusters.iter().map(|x| &x.id), "cluster"),
            hosts: ids(&mut self.hosts.iter().map(|x| &x.id), "host"),
            nets: ids(&mut self.networks.iter().map(|x| &x.id), "network"),
            profiles: ids(
                &mut self.vnic_profiles.iter().map(|x| &x.id),
                "vnic profile",
            ),
            sds: ids(
                &mut self.storage_domains.iter().map(|x| &x.id),
                "storage domain",
            ),
            disks: ids(&mut self.disks.iter().map(|x| &x.id), "disk"),
            users: ids(&mut self.users.iter().map(|x| &x.id), "user"),
            groups: ids(&mut self.groups.iter().map(|x| &x.id), "group"),
            tags: ids(&mut self.tags.iter().map(|x| &x.id), "tag"),
            vms: ids(&mut self.vms.iter().map(|x| &x.id), "vm"),
        };
        ids(&mut self.permissions.iter().map(|x| &x.id), "permission");
        unique
    }

    /// Clusters, hosts, networks, profiles, storage domains and disks name what they belong to.
    fn check_infrastructure(&self, ids: &Ids, problems: &mut Problems) {
        for c in &self.clusters {
            problems.check(
                &ids.dcs,
                &c.data_center,
                "data center",
                &format!("cluster {}", c.name),
            );
        }
        for h in &self.hosts {
            problems.check(
                &ids.clusters,
                &h.cluster,
                "cluster",
                &format!("host {}", h.name),
            );
        }
        for n in &self.networks {
            problems.check(
                &ids.dcs,
                &n.data_center,
                "data center",
                &format!("network {}", n.name),
            );
        }
        for p in &self.vnic_profiles {
            problems.check(
                &ids.nets,
                &p.network,
                "network",
                &format!("vnic profile {}", p.name),
            );
        }
        for s in &self.storage_domains {
            for dc in &s.data_centers {
                problems.check(
                    &ids.dcs,
                    dc,
                    "data center",
                    &format!("storage domain {}", s.name),
                );
            }
        }
        for d in &self.disks {
            if let Some(sd) = &d.storage_domain {
                problems.check(&ids.sds, sd, "storage domain", &format!("disk {}", d.alias));
            }
        }
    }

    /// Each permission names a known role, one principal and an object of a known type.
    fn check_permissions(&self, ids: &Ids, problems: &mut Problems) {
        let predefined: HashSet<&str> = crate::roles::PREDEFINED.iter().map(|r| r.1).collect();
        let world_roles: HashSet<&str> = self.roles.iter().map(|r| r.name.as_str()).collect();
        for p in &self.permissions {
            let owner = format!("permission {}", p.id);
            if !predefined.contains(p.role.as_str()) && !world_roles.contains(p.role.as_str()) {
                problems.check(&HashSet::new(), &p.role, "role", &owner);
            }
            match (&p.user, &p.group) {
                (Some(u), None) => problems.check(&ids.users, u, "user", &owner),
                (None, Some(g)) => problems.check(&ids.groups, g, "group", &owner),
                _ => problems.check(
                    &HashSet::new(),
                    "(needs exactly one of user or group)",
                    "principal",
                    &owner,
                ),
            }
            match (p.object.kind.as_str(), &p.object.id) {
                ("system", _) => {}
                ("data_center", Some(id)) => problems.check(&ids.dcs, id, "data center", &owner),
                ("cluster", Some(id)) => problems.check(&ids.clusters, id, "cluster", &owner),
                ("vm", Some(id)) => problems.check(&ids.vms, id, "vm", &owner),
                (kind, _) => problems.check(
                    &HashSet::new(),
                    kind,
                    "object type (or a missing id)",
                    &owner,
                ),
            }
        }
    }

    /// Each VM names its cluster, host, tags, disks and profiles, and its times parse.
    fn check_vms(&self, ids: &Ids, problems: &mut Problems) {
        for v in &self.vms {
            let owner = format!("vm {}", v.name);
            problems.check(&ids.clusters, &v.cluster, "cluster", &owner);
            if let Some(h) = &v.host {
                problems.check(&ids.hosts, h, "host", &owner);
            }
            for t in &v.tags {
                problems.check(&ids.tags, t, "tag", &owner);
            }
            if let Some(pp) = &v.placement_policy {
                for h in &pp.hosts {
                    problems.check(&ids.hosts, h, "host", &owner);
                }
            }
            for a in &v.disk_attachments {
                problems.check(&ids.disks, &a.disk, "disk", &owner);
            }
            for n in &v.nics {
                if let Some(p) = &n.vnic_profile {
                    problems.check(&ids.profiles, p, "vnic profile", &owner);
                }
            }
            for t in [&Some(v.creation_time.clone()), &v.start_time, &v.stop_time]
                .into_iter()
                .flatten()
            {
                if crate::tree::parse_time(t).is_none() {
                    problems.check(&HashSet::new(), t, "time (want RFC 3339)", &owner);
                }
            }
        }
    }
}

/// The ids of a world's objects, by kind.
struct Ids {
    dcs: HashSet<String>,
    clusters: HashSet<String>,
    hosts: HashSet<String>,
    nets: HashSet<String>,
    profiles: HashSet<String>,
    sds: HashSet<String>,
    disks: HashSet<String>,
    users: HashSet<String>,
    groups: HashSet<String>,
    tags: HashSet<String>,
    vms: HashSet<String>,
}

/// What `World::validate` found wrong, in the order found.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check(&mut self, set: &HashSet<String>, id: &str, what: &str, owner: &str) {
        if !set.contains(id) {
            self.0
                .push(format!("{owner} refers to unknown {what} {id}"));
        }
    }
}
