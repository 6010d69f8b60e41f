//! Worlds made by code: `demo()`, the lab liftkit is modelled on (checked in as
//! tests/worlds/demo.json), and `generate(n, seed)`, the same kind of estate at any size.
//! Both are deterministic: the same arguments give the same bytes.

use crate::world::*;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The world's "now": times are relative to it, so worlds do not change with the clock.
pub const WORLD_NOW: &str = "2025-06-02T09:00:00Z";
const WORLD_NOW_EPOCH: i64 = 1_748_854_800;
const GIB: u64 = 1 << 30;

pub const ADMIN_PASSWORD: &str = "ovirt-sim-demo";
pub const SERVICE_PASSWORD: &str = "ovirt-sim-svc";

/// The world as the checked-in files hold it: pretty JSON and a final newline.
pub fn to_json(world: &World) -> String {
    let mut s = serde_json::to_string_pretty(world).unwrap_or_default();
    s.push('\n');
    s
}

struct B {
    rng: ChaCha8Rng,
    w: World,
    mac: u32,
    /// Per DC: (cluster indexes, data SD id, vm profile ids by network name)
    dcs: Vec<DcInfo>,
    admin_user: String,
    ldap_users: Vec<String>,
    groups: Vec<String>,
    /// Disk id -> index in `w.disks`, so flagging stays linear in big worlds.
    disk_index: std::collections::HashMap<String, usize>,
}

struct DcInfo {
    clusters: Vec<String>,
    hosts_by_cluster: Vec<Vec<String>>,
    data_sds: Vec<String>,
    /// (network name, profile id) of the ordinary VM profiles.
    profiles: Vec<(String, String)>,
    subnet: u8,
}

fn iso(epoch: i64) -> String {
    (jiff::Timestamp::from_second(epoch).unwrap_or(jiff::Timestamp::UNIX_EPOCH)).to_string()
}

/// (name, description, clusters, (network, VLAN), IPv4 second octet)
/// What a VM's status implies: (host, start time, stop time, stop reason, statistics).
type Activity = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Statistics>,
);

type DcSpec = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, Option<u32>)],
    u8,
);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Owner {
    One,
    Several,
    Group,
    Nobody,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    Up,
    DownLong,
    DownRecent,
    Paused,
}

impl B {
    fn new(seed: u64) -> B {
        B {
            rng: ChaCha8Rng::seed_from_u64(seed),
            w: World::default(),
            mac: 0,
            dcs: Vec::new(),
            admin_user: String::new(),
            ldap_users: Vec::new(),
            groups: Vec::new(),
            disk_index: std::collections::HashMap::new(),
        }
    }

    fn uuid(&mut self) -> String {
        let a: u128 = self.rng.random();
        let a = (a & !(0xf_u128 << 76)) | (0x4_u128 << 76);
        let a = (a & !(0x3_u128 << 62)) | (0x2_u128 << 62);
        let h = format!("{a:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    fn next_mac(&mut self) -> String {
        self.mac += 1;
        let m = self.mac;
        format!(
            "56:6f:1a:{:02x}:{:02x}:{:02x}",
            (m >> 16) & 0xff,
            (m >> 8) & 0xff,
            m & 0xff
        )
    }

    /// Data centers, clusters, hosts, networks, profiles, storage, users, groups and the
    /// admin permissions. `scale` grows clusters, hosts, users and groups with the VM count.
    /// The parts run in a fixed order: ids come from one seeded sequence.
    fn infrastructure(&mut self, vms: usize) {
        self.w.engine = Engine {
            product: "oVirt Engine".into(),
            vendor: "ovirt.org".into(),
            version: "4.5.6".into(),
            credentials: vec![
                Credential {
                    user: "admin@internal".into(),
                    password: ADMIN_PASSWORD.into(),
                },
                Credential {
                    user: "svc-liftkit@internal".into(),
                    password: SERVICE_PASSWORD.into(),
                },
            ],
            utc_offset: Some("+02:00".into()),
        };
        let extra_clusters = vms / 5000;
        let hosts_per_cluster = (vms / 200).clamp(3, 40);
        let dc_specs: [DcSpec; 2] = [
            (
                "RDU",
                "Raleigh lab",
                &["rdu-prod", "rdu-dev"],
                &[
                    ("ovirtmgmt", None),
                    ("vlan201", Some(201)),
                    ("vlan202", Some(202)),
                    ("vlan203", Some(203)),
                    ("OSP_INTERNAL", Some(310)),
                ],
                10,
            ),
            (
                "TLV2",
                "Tel Aviv lab, second room",
                &["tlv2-prod", "tlv2-lab"],
                &[
                    ("ovirtmgmt", None),
                    ("vlan201", Some(201)),
                    ("vlan400", Some(400)),
                    ("OSP_INTERNAL", Some(311)),
                ],
                20,
            ),
        ];
        for spec in dc_specs {
            self.data_center(spec, extra_clusters, hosts_per_cluster);
        }
        self.special_profiles();
        let (admin, svc) = self.users(vms);
        self.ldap_groups(vms);
        self.w.tags = ["production", "pci-dss", "backup-daily", "decommission"]
            .iter()
            .map(|t| Tag {
                id: String::new(),
                name: t.to_string(),
            })
            .collect();
        for i in 0..self.w.tags.len() {
            self.w.tags[i].id = self.uuid();
        }

        self.admin_permissions(admin, svc);
    }

    /// One data center with its clusters (and their hosts), networks (one profile each) and
    /// storage domains.
    fn data_center(&mut self, spec: DcSpec, extra_clusters: usize, hosts_per_cluster: usize) {
        let (dc_name, desc, clusters, nets, subnet) = spec;
        let dc_id = self.uuid();
        self.w.data_centers.push(DataCenter {
            id: dc_id.clone(),
            name: dc_name.into(),
            description: Some(desc.into()),
            status: "up".into(),
            version: "4.7".into(),
            local: false,
        });
        let mut info = DcInfo {
            clusters: Vec::new(),
            hosts_by_cluster: Vec::new(),
            data_sds: Vec::new(),
            profiles: Vec::new(),
            subnet,
        };
        let mut names: Vec<String> = clusters.iter().map(|c| c.to_string()).collect();
        for i in 0..extra_clusters {
            names.push(format!("{}-batch{:02}", dc_name.to_lowercase(), i + 1));
        }
        for (ci, cname) in names.iter().enumerate() {
            let (cid, hosts) = self.cluster(&dc_id, dc_name, ci, cname, hosts_per_cluster);
            info.clusters.push(cid);
            info.hosts_by_cluster.push(hosts);
        }
        for (net, vlan) in nets {
            let profile = self.network(&dc_id, dc_name, net, *vlan);
            info.profiles.push(profile);
        }
        let sd = |b: &mut B, name: String, kind: &str, storage_type: &str| {
            let id = b.uuid();
            b.w.storage_domains.push(StorageDomain {
                id: id.clone(),
                name,
                kind: kind.into(),
                storage_type: storage_type.into(),
                data_centers: vec![dc_id.clone()],
                available: 0,
                used: 0,
                committed: 0,
                status: Some("active".into()),
            });
            id
        };
        let lower = dc_name.to_lowercase();
        let data = sd(self, format!("data-nfs-{lower}"), "data", "nfs");
        info.data_sds.push(data);
        let data2 = sd(self, format!("data-nfs-{lower}-02"), "data", "nfs");
        info.data_sds.push(data2);
        sd(self, format!("iso-{lower}"), "iso", "nfs");
        sd(self, format!("export-{lower}"), "export", "nfs");
        self.dcs.push(info);
    }

    /// A cluster of data center `dc_id` and its hosts (the last host of each DC's second
    /// cluster in maintenance): the cluster's id and its hosts' ids.
    fn cluster(
        &mut self,
        dc_id: &str,
        dc_name: &str,
        ci: usize,
        cname: &str,
        hosts_per_cluster: usize,
    ) -> (String, Vec<String>) {
        let cid = self.uuid();
        self.w.clusters.push(Cluster {
            id: cid.clone(),
            name: cname.to_string(),
            data_center: dc_id.to_string(),
            cpu_type: if ci.is_multiple_of(2) {
                "Intel Skylake Server IBRS SSBD Family"
            } else {
                "Secure Intel Cascadelake Server Family"
            }
            .into(),
            version: "4.7".into(),
            bios_type: Some("q35_sea_bios".into()),
            ha_reservation: false,
            ksm: false,
        });
        let mut hosts = Vec::new();
        for h in 0..hosts_per_cluster {
            let hid = self.uuid();
            let name = format!(
                "{}-hv{:02}.{}.lab.example.com",
                cname,
                h + 1,
                dc_name.to_lowercase()
            );
            self.w.hosts.push(Host {
                id: hid.clone(),
                address: name.clone(),
                name,
                cluster: cid.clone(),
                status: if h == hosts_per_cluster - 1 && ci == 1 {
                    "maintenance"
                } else {
                    "up"
                }
                .into(),
            });
            hosts.push(hid);
        }
        (cid, hosts)
    }

    /// A VM network of data center `dc_id` and its vNIC profile: (network name, profile id).
    fn network(
        &mut self,
        dc_id: &str,
        dc_name: &str,
        net: &str,
        vlan: Option<u32>,
    ) -> (String, String) {
        let nid = self.uuid();
        self.w.networks.push(Network {
            id: nid.clone(),
            name: net.to_string(),
            data_center: dc_id.to_string(),
            vlan,
            mtu: if net == "OSP_INTERNAL" { 9000 } else { 1500 },
            description: Some(if net == "ovirtmgmt" {
                "Management Network".into()
            } else {
                format!("{dc_name} {net}")
            }),
            usages: vec!["vm".into()],
        });
        let pid = self.uuid();
        self.w.vnic_profiles.push(VnicProfile {
            id: pid.clone(),
            name: net.to_string(),
            network: nid.clone(),
            ..VnicProfile::default()
        });
        (net.to_string(), pid)
    }

    /// Special profiles: port mirroring (RDU vlan202), a network filter (RDU vlan203),
    /// pass-through (TLV2 vlan400).
    fn special_profiles(&mut self) {
        let special = [
            (0usize, "vlan202", "vlan202-mirror", 1),
            (0, "vlan203", "vlan203-filtered", 2),
            (1, "vlan400", "vlan400-sriov", 3),
        ];
        for (dc, net, name, kind) in special {
            let dc_id = self.w.data_centers[dc].id.clone();
            let nid = self
                .w
                .networks
                .iter()
                .find(|n| n.name == net && n.data_center == dc_id)
                .map(|n| n.id.clone())
                .unwrap_or_default();
            let id = self.uuid();
            self.w.vnic_profiles.push(VnicProfile {
                id,
                name: name.into(),
                network: nid,
                port_mirroring: kind == 1,
                network_filter: (kind == 2).then(|| "clean-traffic".into()),
                pass_through: kind == 3,
                ..VnicProfile::default()
            });
        }
    }

    /// Users: internal admins, LDAP people. Returns the ids of admin and svc-liftkit.
    fn users(&mut self, vms: usize) -> (String, String) {
        let admin = self.uuid();
        self.w.users.push(User {
            id: admin.clone(),
            principal: "admin".into(),
            domain: "internal-authz".into(),
            user_name: "admin@internal-authz".into(),
            name: Some("admin".into()),
            namespace: Some("*".into()),
            ..User::default()
        });
        let svc = self.uuid();
        self.w.users.push(User {
            id: svc.clone(),
            principal: "svc-liftkit".into(),
            domain: "internal-authz".into(),
            user_name: "svc-liftkit@internal-authz".into(),
            name: Some("svc-liftkit".into()),
            namespace: Some("*".into()),
            ..User::default()
        });
        self.admin_user = admin.clone();
        const FIRST: &[&str] = &[
            "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
            "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
            "yolanda",
        ];
        const LAST: &[&str] = &[
            "Anderson", "Brown", "Cohen", "Davis", "Evans", "Friedman", "Garcia", "Hughes", "Levi",
            "Jones", "Mizrahi", "Nguyen", "Ortiz", "Peretz", "Roberts", "Shapiro", "Taylor",
            "Vega", "Wilson", "Young",
        ];
        let n_users = (vms / 15).clamp(12, 5000);
        for i in 0..n_users {
            let principal = if i < FIRST.len() {
                FIRST[i].to_string()
            } else {
                format!("{}{}", FIRST[i % FIRST.len()], i / FIRST.len())
            };
            let id = self.uuid();
            self.w.users.push(User {
                id: id.clone(),
                principal: principal.clone(),
                domain: "example.com-authz".into(),
                user_name: format!("{principal}@example.com-authz"),
                name: Some(capitalize(FIRST[i % FIRST.len()])),
                last_name: Some(LAST[(i * 7) % LAST.len()].into()),
                email: Some(format!("{principal}@example.com")),
                namespace: Some("DC=example,DC=com".into()),
            });
            self.ldap_users.push(id);
        }
        (admin, svc)
    }

    /// LDAP groups, more of them in bigger worlds.
    fn ldap_groups(&mut self, vms: usize) {
        const GROUPS: &[&str] = &[
            "dba",
            "webops",
            "qa",
            "ml-research",
            "finance-apps",
            "netops",
        ];
        let n_groups = (vms / 200).clamp(GROUPS.len(), 500);
        for i in 0..n_groups {
            let base = GROUPS[i % GROUPS.len()];
            let name = if i < GROUPS.len() {
                base.to_string()
            } else {
                format!("{base}-{}", i / GROUPS.len())
            };
            let id = self.uuid();
            self.w.groups.push(Group {
                id: id.clone(),
                name: format!("example.com/Groups/{name}"),
                namespace: Some("DC=example,DC=com".into()),
                domain: "example.com-authz".into(),
            });
            self.groups.push(id);
        }
    }

    /// Who sees everything: System SuperUsers; and a few admins on clusters and DCs.
    fn admin_permissions(&mut self, admin: String, svc: String) {
        self.permission("SuperUser", Some(admin), None, "system", None);
        self.permission("SuperUser", Some(svc), None, "system", None);
        let grace = self.ldap_users[6].clone();
        let rdu_dev = self.dcs[0].clusters[1].clone();
        self.permission("ClusterAdmin", Some(grace), None, "cluster", Some(rdu_dev));
        let netops = self.groups[5].clone();
        let tlv2 = self.w.data_centers[1].id.clone();
        self.permission(
            "DataCenterAdmin",
            None,
            Some(netops),
            "data_center",
            Some(tlv2),
        );
    }

    fn permission(
        &mut self,
        role: &str,
        user: Option<String>,
        group: Option<String>,
        kind: &str,
        id: Option<String>,
    ) {
        let pid = self.uuid();
        self.w.permissions.push(Permission {
            id: pid,
            role: role.into(),
            user,
            group,
            object: PermissionObject {
                kind: kind.into(),
                id,
            },
        });
    }

    fn disk(&mut self, alias: String, size_gib: u64, sd: Option<String>) -> String {
        let id = self.uuid();
        let sparse = self.rng.random_bool(0.85);
        let used = if sparse {
            self.rng.random_range(0.15..0.8)
        } else {
            1.0
        };
        self.disk_index.insert(id.clone(), self.w.disks.len());
        let provisioned = size_gib * GIB;
        let actual = ((provisioned as f64 * used) as u64 / (1 << 20)) << 20;
        self.w.disks.push(Disk {
            id: id.clone(),
            alias,
            provisioned_size: provisioned,
            actual_size: actual,
            status: "ok".into(),
            format: if sparse { "cow" } else { "raw" }.into(),
            sparse,
            shareable: false,
            storage_type: "image".into(),
            content_type: "data".into(),
            storage_domain: sd,
            lun_size: None,
        });
        id
    }

    /// One ordinary VM of the given kind; flags are added afterwards by the caller.
    fn vm(&mut self, name: &str, dc: usize, status: Status, owner: Owner) -> usize {
        let info = &self.dcs[dc];
        let cluster_pos = self.rng.random_range(0..info.clusters.len());
        let cluster = info.clusters[cluster_pos].clone();
        let hosts = info.hosts_by_cluster[cluster_pos].clone();
        let data_sds = info.data_sds.clone();
        let profiles = info.profiles.clone();
        let subnet = info.subnet;
        let id = self.uuid();
        let windows =
            name.to_lowercase().starts_with("win") || name.contains("-ad") || name.contains("AD0");
        let (os_type, guest) = self.guest_os(windows);
        let mem_gib = *[2u64, 4, 4, 8, 8, 8, 16, 16, 32, 64]
            .choose(&mut self.rng)
            .unwrap_or(&4);
        let cores = *[1u32, 2, 2, 4, 4, 8].choose(&mut self.rng).unwrap_or(&2);
        let sockets = if cores >= 8 && self.rng.random_bool(0.3) {
            2
        } else {
            1
        };
        let created = WORLD_NOW_EPOCH
            - self.rng.random_range(400..2200) * 86_400
            - self.rng.random_range(0..86_400);
        let (host, start, stop, stop_reason, stats) = self.activity(status, mem_gib, &hosts);
        let agent = stats.is_some() && self.rng.random_bool(0.8);
        let lname = name.to_lowercase().replace('_', "-");
        let mut vm = Vm {
            id: id.clone(),
            name: name.into(),
            description: Some(String::new()),
            comment: Some(String::new()),
            cluster,
            host,
            template: Some(if windows { "Win2019-golden" } else { "Blank" }.into())
                .filter(|t| t != "Blank"),
            status: match status {
                Status::Up => "up",
                Status::Paused => "paused",
                _ => "down",
            }
            .into(),
            kind: "server".into(),
            memory: mem_gib * GIB,
            memory_policy: Some(MemoryPolicy {
                guaranteed: mem_gib * GIB,
                max: mem_gib * GIB * 4,
                ballooning: false,
            }),
            cpu: CpuTopology {
                sockets,
                cores,
                threads: 1,
            },
            os_type: os_type.into(),
            creation_time: iso(created),
            start_time: start,
            stop_time: stop,
            stop_reason,
            fqdn: agent.then(|| format!("{lname}.example.com")),
            guest_os: agent.then_some(guest),
            display_type: Some("vnc".into()),
            origin: Some("ovirt".into()),
            statistics: stats,
            ..Vm::default()
        };
        if self.rng.random_bool(0.15) {
            vm.tags.push(
                self.w.tags[self.rng.random_range(0..self.w.tags.len())]
                    .id
                    .clone(),
            );
        }
        self.vm_disks(&mut vm, name, &data_sds, agent);
        self.vm_nics(&mut vm, &profiles, subnet, agent);
        self.w.vms.push(vm);
        let vm_index = self.w.vms.len() - 1;
        self.own(vm_index, owner);
        vm_index
    }

    /// The VM's OS type and what its guest agent reports: Windows for the Windows-looking names,
    /// else one of the Linux distributions at random.
    fn guest_os(&mut self, windows: bool) -> (&'static str, GuestOs) {
        if windows {
            (
                "windows_2019x64",
                GuestOs {
                    architecture: "x86_64".into(),
                    codename: "".into(),
                    distribution: "Windows Server 2019".into(),
                    family: "Windows".into(),
                    kernel: "10.0.17763".into(),
                    version: "10.0".into(),
                },
            )
        } else {
            let choices = [
                (
                    "rhel_8x64",
                    "Red Hat Enterprise Linux",
                    "8.6",
                    "4.18.0-372.9.1.el8.x86_64",
                    "Ootpa",
                ),
                (
                    "rhel_9x64",
                    "Red Hat Enterprise Linux",
                    "9.2",
                    "5.14.0-284.11.1.el9_2.x86_64",
                    "Plow",
                ),
                (
                    "rhel_7x64",
                    "Red Hat Enterprise Linux Server",
                    "7.9",
                    "3.10.0-1160.el7.x86_64",
                    "Maipo",
                ),
                (
                    "other_linux",
                    "CentOS Stream",
                    "8",
                    "4.18.0-448.el8.x86_64",
                    "",
                ),
                (
                    "ubuntu_20_04",
                    "Ubuntu",
                    "20.04",
                    "5.4.0-150-generic",
                    "focal",
                ),
            ];
            let c = *choices.choose(&mut self.rng).unwrap_or(&choices[0]);
            (
                c.0,
                GuestOs {
                    architecture: "x86_64".into(),
                    codename: c.4.into(),
                    distribution: c.1.into(),
                    family: "Linux".into(),
                    kernel: c.3.into(),
                    version: c.2.into(),
                },
            )
        }
    }

    /// Host, start and stop times, stop reason and statistics of a VM in `status`.
    fn activity(&mut self, status: Status, mem_gib: u64, hosts: &[String]) -> Activity {
        match status {
            Status::Up | Status::Paused => {
                let started = WORLD_NOW_EPOCH - self.rng.random_range(3_600..200 * 86_400);
                let used = self.rng.random_range(0.2..0.9);
                let total: f64 = self.rng.random_range(0.0..60.0);
                let stats = Statistics {
                    elapsed_time: (WORLD_NOW_EPOCH - started) as u64,
                    cpu_total: (total * 10.0).round() / 10.0,
                    cpu_guest: (total * 0.9 * 10.0).round() / 10.0,
                    memory_installed: mem_gib * GIB,
                    memory_used: ((mem_gib * GIB) as f64 * used) as u64 / (1 << 20) * (1 << 20),
                    network_total: if status == Status::Paused {
                        0.0
                    } else {
                        self.rng.random_range(0..5) as f64
                    },
                };
                let stopped = started - self.rng.random_range(60..600);
                (
                    hosts.choose(&mut self.rng).cloned(),
                    Some(iso(started)),
                    Some(iso(stopped)),
                    None,
                    Some(stats),
                )
            }
            Status::DownLong => {
                let stopped = WORLD_NOW_EPOCH - self.rng.random_range(370..900) * 86_400;
                (
                    None,
                    None,
                    Some(iso(stopped)),
                    Some("decommission pending".to_string()),
                    None,
                )
            }
            Status::DownRecent => {
                let stopped = WORLD_NOW_EPOCH - self.rng.random_range(1..60) * 86_400;
                (None, None, Some(iso(stopped)), None, None)
            }
        }
    }

    /// Disks: a boot disk and sometimes data disks, on one of the DC's data domains.
    fn vm_disks(&mut self, vm: &mut Vm, name: &str, data_sds: &[String], agent: bool) {
        let n_disks = *[1usize, 1, 1, 1, 2, 2, 3]
            .choose(&mut self.rng)
            .unwrap_or(&1);
        let sd = data_sds.choose(&mut self.rng).cloned();
        for d in 0..n_disks {
            let size = if d == 0 {
                *[30u64, 40, 50, 60, 80].choose(&mut self.rng).unwrap_or(&40)
            } else {
                *[20u64, 40, 50, 60, 80, 100, 120]
                    .choose(&mut self.rng)
                    .unwrap_or(&100)
            };
            let disk = self.disk(format!("{name}_Disk{}", d + 1), size, sd.clone());
            vm.disk_attachments.push(DiskAttachment {
                id: disk.clone(),
                disk,
                interface: if d == 0 || self.rng.random_bool(0.7) {
                    "virtio_scsi"
                } else {
                    "virtio"
                }
                .into(),
                bootable: d == 0,
                active: true,
                read_only: false,
                uses_scsi_reservation: false,
                logical_name: agent.then(|| format!("/dev/sd{}", (b'a' + d as u8) as char)),
            });
        }
    }

    /// NICs: one, sometimes two, on the DC's VM networks (not ovirtmgmt mostly).
    fn vm_nics(&mut self, vm: &mut Vm, profiles: &[(String, String)], subnet: u8, agent: bool) {
        let n_nics = if self.rng.random_bool(0.25) { 2 } else { 1 };
        for n in 0..n_nics {
            let (net, profile) = if self.rng.random_bool(0.1) {
                profiles[0].clone()
            } else {
                profiles[1 + self.rng.random_range(0..profiles.len() - 1)].clone()
            };
            let vlan: u32 = net
                .trim_start_matches("vlan")
                .parse()
                .unwrap_or(if net == "ovirtmgmt" { 1 } else { 31 });
            let ips = agent.then(|| {
                let host_part = self.rng.random_range(2..250u32);
                let third = (vlan % 256) as u8;
                let mut ips = vec![Ip {
                    address: format!("10.{subnet}.{third}.{host_part}"),
                    version: "v4".into(),
                }];
                if self.rng.random_bool(0.3) {
                    ips.push(Ip {
                        address: format!("2620:52:0:{subnet:x}{third:02x}::{host_part:x}"),
                        version: "v6".into(),
                    });
                    ips.push(Ip {
                        address: format!("fe80::546f:1aff:fe00:{host_part:x}"),
                        version: "v6".into(),
                    });
                }
                ips
            });
            let nic_id = self.uuid();
            let mac = self.next_mac();
            vm.nics.push(Nic {
                id: nic_id,
                name: format!("nic{}", n + 1),
                mac,
                interface: "virtio".into(),
                plugged: true,
                linked: true,
                vnic_profile: Some(profile),
                reported_ips: ips,
            });
        }
    }

    fn own(&mut self, vm: usize, owner: Owner) {
        let vm_id = self.w.vms[vm].id.clone();
        match owner {
            Owner::One => {
                let u = self.ldap_users.choose(&mut self.rng).cloned();
                self.permission("UserVmManager", u, None, "vm", Some(vm_id));
            }
            Owner::Several => {
                let users: Vec<String> = self
                    .ldap_users
                    .choose_multiple(&mut self.rng, 2)
                    .cloned()
                    .collect();
                for u in users {
                    self.permission("UserVmManager", Some(u), None, "vm", Some(vm_id.clone()));
                }
            }
            Owner::Group => {
                let g = self.groups.choose(&mut self.rng).cloned();
                self.permission("UserVmManager", None, g, "vm", Some(vm_id));
            }
            Owner::Nobody => {}
        }
    }

    fn random_owner(&mut self) -> Owner {
        match self.rng.random_range(0..100) {
            0..60 => Owner::One,
            60..70 => Owner::Several,
            70..85 => Owner::Group,
            _ => Owner::Nobody,
        }
    }

    fn random_status(&mut self) -> Status {
        match self.rng.random_range(0..100) {
            0..72 => Status::Up,
            72..82 => Status::DownLong,
            82..97 => Status::DownRecent,
            _ => Status::Paused,
        }
    }

    /// Storage domain usage follows the disks placed on them.
    fn finish(mut self) -> World {
        let mut used = vec![0u64; self.w.storage_domains.len()];
        let mut committed = vec![0u64; self.w.storage_domains.len()];
        for d in &self.w.disks {
            if let Some(pos) = d
                .storage_domain
                .as_ref()
                .and_then(|s| self.w.storage_domains.iter().position(|x| &x.id == s))
            {
                used[pos] += d.actual_size;
                committed[pos] += d.provisioned_size;
            }
        }
        for (i, sd) in self.w.storage_domains.iter_mut().enumerate() {
            let base = if sd.kind == "data" {
                200 * GIB
            } else {
                20 * GIB
            };
            sd.used = used[i] + base;
            sd.committed = committed[i];
            // Thin provisioning: capacity is 1.5x the data, at least 2 TiB for data domains.
            let capacity = ((sd.used as f64 * 1.5) as u64).max(if sd.kind == "data" {
                2048 * GIB
            } else {
                500 * GIB
            });
            sd.available = (capacity - sd.used) / GIB * GIB;
        }
        self.w
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// The kinds of trouble Forklift flags; the generator gives a few percent of VMs one of them.
#[derive(Clone, Copy, Debug)]
enum Flag {
    SharedDisk,
    LunDisk,
    IllegalImages,
    IllegalDisk,
    LockedDisk,
    Usb,
    E1000,
    Rtl8139,
    PciPassthrough,
    Watchdog,
    HostDevice,
    MemorySnapshot,
    CpuPinning,
    CustomCpu,
    Ha,
    Spice,
    CustomProperties,
    PinnedPlacement,
    SecureBoot,
    PortMirroring,
    NetworkFilter,
    BootMenu,
    CpuShares,
    UnpluggedNic,
    ScsiReservation,
    KillOnError,
    IoThreads,
    Ballooning,
}

const ALL_FLAGS: &[Flag] = &[
    Flag::SharedDisk,
    Flag::LunDisk,
    Flag::IllegalImages,
    Flag::IllegalDisk,
    Flag::LockedDisk,
    Flag::Usb,
    Flag::E1000,
    Flag::Rtl8139,
    Flag::PciPassthrough,
    Flag::Watchdog,
    Flag::HostDevice,
    Flag::MemorySnapshot,
    Flag::CpuPinning,
    Flag::CustomCpu,
    Flag::Ha,
    Flag::Spice,
    Flag::CustomProperties,
    Flag::PinnedPlacement,
    Flag::SecureBoot,
    Flag::PortMirroring,
    Flag::NetworkFilter,
    Flag::BootMenu,
    Flag::CpuShares,
    Flag::UnpluggedNic,
    Flag::ScsiReservation,
    Flag::KillOnError,
    Flag::IoThreads,
    Flag::Ballooning,
];

impl B {
    fn profile_named(&self, name: &str) -> String {
        self.w
            .vnic_profiles
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.id.clone())
            .unwrap_or_default()
    }

    /// Gives VM `v` the trouble `flag`. SharedDisk needs a partner VM `other`.
    fn flag(&mut self, v: usize, flag: Flag, other: Option<usize>) {
        match flag {
            Flag::SharedDisk => self.shared_disk(v, other),
            Flag::LunDisk => self.lun_disk(v),
            Flag::IllegalImages => self.w.vms[v].has_illegal_images = Some(true),
            Flag::IllegalDisk | Flag::LockedDisk => {
                let boot = self.disk_index[&self.w.vms[v].disk_attachments[0].disk];
                if let Some(d) = self.w.disks.get_mut(boot) {
                    d.status = if matches!(flag, Flag::IllegalDisk) {
                        "illegal"
                    } else {
                        "locked"
                    }
                    .into();
                }
            }
            Flag::Usb => self.w.vms[v].usb = Some(true),
            Flag::E1000 => self.w.vms[v].nics[0].interface = "e1000".into(),
            Flag::Rtl8139 => self.w.vms[v].nics[0].interface = "rtl8139".into(),
            Flag::PciPassthrough => {
                let p = self.profile_named("vlan400-sriov");
                let nic = &mut self.w.vms[v].nics[0];
                nic.interface = "pci_passthrough".into();
                nic.vnic_profile = Some(p);
            }
            Flag::Watchdog => {
                self.w.vms[v].watchdogs.push(Watchdog {
                    model: "i6300esb".into(),
                    action: "reset".into(),
                });
            }
            Flag::HostDevice => self.host_device(v),
            Flag::MemorySnapshot => self.memory_snapshot(v),
            Flag::CpuPinning => self.cpu_pinning(v),
            Flag::CustomCpu => {
                self.w.vms[v].custom_cpu_model = Some("Skylake-Server-noTSX-IBRS".into())
            }
            Flag::Ha => {
                self.w.vms[v].high_availability = Some(HighAvailability {
                    enabled: true,
                    priority: 50,
                })
            }
            Flag::Spice => self.w.vms[v].display_type = Some("spice".into()),
            Flag::CustomProperties => {
                self.w.vms[v].custom_properties = Some(vec![NameValue {
                    name: "sap_agent".into(),
                    value: "true".into(),
                }]);
            }
            Flag::PinnedPlacement => self.pinned_placement(v),
            Flag::SecureBoot => {
                let vm = &mut self.w.vms[v];
                vm.bios_type = Some("q35_secure_boot".into());
                vm.tpm_enabled = Some(true);
            }
            Flag::PortMirroring => {
                let p = self.profile_named("vlan202-mirror");
                self.w.vms[v].nics[0].vnic_profile = Some(p);
            }
            Flag::NetworkFilter => {
                let p = self.profile_named("vlan203-filtered");
                self.w.vms[v].nics[0].vnic_profile = Some(p);
            }
            Flag::BootMenu => self.w.vms[v].boot_menu = Some(true),
            Flag::CpuShares => self.w.vms[v].cpu_shares = Some(1024),
            Flag::UnpluggedNic => {
                let nic = &mut self.w.vms[v].nics[0];
                nic.plugged = false;
                nic.linked = false;
                nic.reported_ips = None;
            }
            Flag::ScsiReservation => self.w.vms[v].disk_attachments[0].uses_scsi_reservation = true,
            Flag::KillOnError => self.w.vms[v].storage_error_resume_behaviour = Some("kill".into()),
            Flag::IoThreads => self.w.vms[v].io_threads = Some(4),
            Flag::Ballooning => {
                if let Some(mp) = self.w.vms[v].memory_policy.as_mut() {
                    mp.ballooning = true;
                }
            }
        }
    }

    /// A 100 GiB raw disk on `v`'s boot domain, attached to `v` and to `other`.
    fn shared_disk(&mut self, v: usize, other: Option<usize>) {
        let Some(o) = other else { return };
        let boot = self.disk_index[&self.w.vms[v].disk_attachments[0].disk];
        let sd = self.w.disks[boot].storage_domain.clone();
        let alias = format!("{}_shared", self.w.vms[v].name);
        let disk = self.disk(alias, 100, sd);
        if let Some(d) = self.w.disks.last_mut() {
            d.shareable = true;
            d.sparse = false;
            d.format = "raw".into();
            d.actual_size = d.provisioned_size;
        }
        for vm in [v, o] {
            self.w.vms[vm].disk_attachments.push(DiskAttachment {
                id: disk.clone(),
                disk: disk.clone(),
                interface: "virtio_scsi".into(),
                bootable: false,
                active: true,
                read_only: false,
                uses_scsi_reservation: false,
                logical_name: None,
            });
        }
    }

    /// A 500 GiB direct LUN attached to `v`.
    fn lun_disk(&mut self, v: usize) {
        let id = self.uuid();
        self.w.disks.push(Disk {
            id: id.clone(),
            alias: format!("{}_lun", self.w.vms[v].name),
            provisioned_size: 0,
            actual_size: 0,
            status: "ok".into(),
            format: "raw".into(),
            sparse: false,
            shareable: false,
            storage_type: "lun".into(),
            content_type: "data".into(),
            storage_domain: None,
            lun_size: Some(500 * GIB),
        });
        self.w.vms[v].disk_attachments.push(DiskAttachment {
            id: id.clone(),
            disk: id,
            interface: "virtio_scsi".into(),
            bootable: false,
            active: true,
            ..DiskAttachment::default()
        });
    }

    /// A PCI host device, the VM pinned to its host when it runs on one.
    fn host_device(&mut self, v: usize) {
        self.w.vms[v].host_devices.push("pci_0000_3b_00_0".into());
        let pin = self.w.vms[v].host.clone();
        if let Some(h) = pin {
            self.w.vms[v].placement_policy = Some(PlacementPolicy {
                affinity: "pinned".into(),
                hosts: vec![h],
            });
        }
    }

    /// A snapshot with memory, 40 days old, besides the active one.
    fn memory_snapshot(&mut self, v: usize) {
        let id = self.uuid();
        let date = iso(WORLD_NOW_EPOCH - 40 * 86_400);
        let active = self.uuid();
        let vm = &mut self.w.vms[v];
        vm.snapshots.push(Snapshot {
            id: active,
            description: "Active VM".into(),
            kind: "active".into(),
            persist_memorystate: false,
            date: iso(WORLD_NOW_EPOCH - 86_400),
        });
        vm.snapshots.push(Snapshot {
            id,
            description: "before kernel upgrade".into(),
            kind: "regular".into(),
            persist_memorystate: true,
            date,
        });
    }

    /// Manual CPU pinning of up to four vCPUs.
    fn cpu_pinning(&mut self, v: usize) {
        let vm = &mut self.w.vms[v];
        vm.cpu_pinning_policy = Some("manual".into());
        let vcpus = vm.cpu.sockets * vm.cpu.cores * vm.cpu.threads;
        vm.vcpu_pins = Some(
            (0..vcpus.min(4))
                .map(|i| VcpuPin {
                    vcpu: i,
                    cpu_set: format!("{}", i + 2),
                })
                .collect(),
        );
    }

    /// Placement pinned to the VM's host, else to its cluster's first host.
    fn pinned_placement(&mut self, v: usize) {
        let host = self.w.vms[v].host.clone().or_else(|| {
            let c = self.w.vms[v].cluster.clone();
            self.w
                .hosts
                .iter()
                .find(|h| h.cluster == c)
                .map(|h| h.id.clone())
        });
        self.w.vms[v].placement_policy = Some(PlacementPolicy {
            affinity: "pinned".into(),
            hosts: host.into_iter().collect(),
        });
    }
}

/// A world of `n` VMs (10 to 100,000 is the useful range) like the demo lab, from `seed`.
pub fn generate(n: usize, seed: u64) -> World {
    let mut b = B::new(seed);
    b.infrastructure(n);
    const ROLES: &[&str] = &[
        "web", "app", "db", "cache", "mq", "build", "ci-agent", "batch", "api", "proxy", "mon",
        "ldap",
    ];
    let mut pending_share: Option<usize> = None;
    for i in 0..n {
        let dc = if b.rng.random_bool(0.55) { 0 } else { 1 };
        let role = ROLES[b.rng.random_range(0..ROLES.len())];
        let dc_name = if dc == 0 { "rdu" } else { "tlv2" };
        // About 3% of names break DNS-1123 (capitals, underscores), like real estates.
        let name = match b.rng.random_range(0..100) {
            0 => format!("{}_{}_{:05}", dc_name, role, i + 1),
            1 => format!(
                "{}-{}-{:05}",
                dc_name.to_uppercase(),
                role.to_uppercase(),
                i + 1
            ),
            2 => format!("Win2019-{}{:05}", capitalize(role), i + 1),
            _ => format!("{dc_name}-{role}-{:05}", i + 1),
        };
        let status = b.random_status();
        let owner = b.random_owner();
        let v = b.vm(&name, dc, status, owner);
        if b.rng.random_bool(0.04) {
            let flag = ALL_FLAGS[b.rng.random_range(0..ALL_FLAGS.len())];
            if let Flag::SharedDisk = flag {
                match pending_share.take() {
                    Some(o) => b.flag(v, flag, Some(o)),
                    None => pending_share = Some(v),
                }
            } else {
                b.flag(v, flag, None);
            }
        }
    }
    b.finish()
}

/// The flagged VMs of the demo lab and the Forklift concern each is there for
/// (tests/ovirt-sim/WORLD.md lists the same).
pub const DEMO_FLAGGED: &[(&str, &str)] = &[
    ("ora-rac-node1", "ovirt.disk.shared.detected"),
    ("ora-rac-node2", "ovirt.disk.shared.detected"),
    ("san-lun-db01", "ovirt.disk.storage_type.unsupported"),
    ("broken-snap-vm", "ovirt.disk.illegal_images.detected"),
    ("legacy-illegal-disk", "ovirt.disk.illegal_or_locked_status"),
    ("locked-disk-vm", "ovirt.disk.illegal_or_locked_status"),
    ("usb-license-dongle", "ovirt.usb.enabled"),
    ("legacy-e1000-app", "ovirt.nic.interface_type.unsupported"),
    ("old-rtl8139-box", "ovirt.nic.interface_type.unsupported"),
    ("dpdk-router-01", "ovirt.nic.pci_passthrough.detected"),
    ("watchdog-app-01", "ovirt.watchdog.enabled"),
    ("gpu-render-01", "ovirt.host_devices.mapped"),
    ("memsnap-vm", "ovirt.snapshot.online_memory.detected"),
    ("pinned-latency-01", "ovirt.cpu.tuning.detected"),
    ("custom-cpu-vm", "ovirt.cpu.custom_model.detected"),
    ("ha-db-primary", "ovirt.ha.enabled"),
    ("spice-desktop-01", "ovirt.display_type.spice.enabled"),
    ("custom-props-vm", "ovirt.vm.custom_properties.detected"),
    ("pinned-host-vm", "ovirt.placement_policy.affinity_set"),
    ("secureboot-win2022", "ovirt.secure_boot.detected"),
    ("port-mirror-ids", "ovirt.nic.port_mirroring.detected"),
    ("filtered-nic-vm", "ovirt.nic.network_filter.detected"),
    ("bootmenu-vm", "ovirt.bios.boot_menu.enabled"),
    ("cpu-shares-vm", "ovirt.cpu.shares.defined"),
    ("unplugged-nic-vm", "ovirt.nic.unplugged.detected"),
    ("scsi-reservation-vm", "ovirt.disk.scsi_reservation.enabled"),
    (
        "kill-on-error-vm",
        "ovirt.storage.resume_behavior.unsupported",
    ),
    ("iothreads-vm", "ovirt.iothreads.configured"),
    ("ballooned-vm", "ovirt.memory.ballooning.enabled"),
    ("ba_shared_vm_1", "ovirt.name.invalid"),
    ("Win2019-AD01", "ovirt.name.invalid"),
];

/// The demo's ordinary VMs in RDU, by team.
const DEMO_RDU: &[&str] = &[
    "rdu-web-01",
    "rdu-web-02",
    "rdu-web-03",
    "rdu-web-04",
    "rdu-app-01",
    "rdu-app-02",
    "rdu-app-03",
    "rdu-db-01",
    "rdu-db-02",
    "rdu-cache-01",
    "rdu-mq-01",
    "rdu-mq-02",
    "jenkins-master",
    "jenkins-agent-01",
    "jenkins-agent-02",
    "jenkins-agent-03",
    "jenkins-agent-04",
    "jenkins-agent-05",
    "gitlab-runner-01",
    "gitlab-runner-02",
    "nexus-repo",
    "sonarqube",
    "grafana",
    "prometheus-01",
    "prometheus-02",
    "elk-es-01",
    "elk-es-02",
    "elk-es-03",
    "elk-kibana",
    "rdu-ldap-01",
    "rdu-ldap-02",
    "rdu-dns-01",
    "rdu-proxy-01",
    "rdu-proxy-02",
    "rdu-batch-01",
    "rdu-batch-02",
    "rdu-batch-03",
    "finance-erp-app",
    "finance-erp-db",
    "finance-reports",
    "hr-portal",
    "wiki",
    "jira",
    "confluence",
    "rdu-bastion",
    "rdu-ntp-01",
    "rdu-smtp-01",
    "qa-selenium-01",
    "qa-selenium-02",
    "qa-perf-01",
    "qa-perf-02",
    "ml-train-01",
    "ml-train-02",
    "ml-notebook",
    "rdu-vault-01",
];

/// The demo's ordinary VMs in TLV2.
const DEMO_TLV: &[&str] = &[
    "tlv2-web-01",
    "tlv2-web-02",
    "tlv2-app-01",
    "tlv2-app-02",
    "tlv2-db-01",
    "tlv2-db-02",
    "tlv2-cache-01",
    "tlv2-mq-01",
    "osp-controller-0",
    "osp-controller-1",
    "osp-controller-2",
    "osp-compute-0",
    "osp-compute-1",
    "osp-undercloud",
    "tlv2-ldap-01",
    "tlv2-dns-01",
    "tlv2-proxy-01",
    "tlv2-batch-01",
    "tlv2-batch-02",
    "lab-sandbox-01",
    "lab-sandbox-02",
    "lab-sandbox-03",
    "lab-sandbox-04",
    "lab-k8s-master-0",
    "lab-k8s-worker-0",
    "lab-k8s-worker-1",
    "lab-k8s-worker-2",
    "tlv2-bastion",
    "tlv2-backup-01",
    "tlv2-monitor-01",
    "tlv2-syslog-01",
    "netops-gns3",
    "netops-netbox",
    "RHEL8_Template_Test",
    "tlv2-legacy-crm",
    "tlv2-legacy-billing",
];

/// The demo's flagged VMs: name, data center, trouble, status.
const DEMO_FLAG_SPECS: &[(&str, usize, Flag, Status)] = &[
    ("ora-rac-node1", 0, Flag::SharedDisk, Status::Up),
    ("ora-rac-node2", 0, Flag::Ha, Status::Up),
    ("san-lun-db01", 0, Flag::LunDisk, Status::Up),
    ("broken-snap-vm", 1, Flag::IllegalImages, Status::DownRecent),
    (
        "legacy-illegal-disk",
        1,
        Flag::IllegalDisk,
        Status::DownLong,
    ),
    ("locked-disk-vm", 0, Flag::LockedDisk, Status::Up),
    ("usb-license-dongle", 1, Flag::Usb, Status::Up),
    ("legacy-e1000-app", 0, Flag::E1000, Status::Up),
    ("old-rtl8139-box", 1, Flag::Rtl8139, Status::DownLong),
    ("dpdk-router-01", 1, Flag::PciPassthrough, Status::Up),
    ("watchdog-app-01", 0, Flag::Watchdog, Status::Up),
    ("gpu-render-01", 0, Flag::HostDevice, Status::Up),
    ("memsnap-vm", 1, Flag::MemorySnapshot, Status::Up),
    ("pinned-latency-01", 0, Flag::CpuPinning, Status::Up),
    ("custom-cpu-vm", 1, Flag::CustomCpu, Status::Up),
    ("ha-db-primary", 0, Flag::Ha, Status::Up),
    ("spice-desktop-01", 1, Flag::Spice, Status::Up),
    ("custom-props-vm", 0, Flag::CustomProperties, Status::Up),
    ("pinned-host-vm", 0, Flag::PinnedPlacement, Status::Up),
    ("secureboot-win2022", 1, Flag::SecureBoot, Status::Up),
    ("port-mirror-ids", 0, Flag::PortMirroring, Status::Up),
    ("filtered-nic-vm", 0, Flag::NetworkFilter, Status::Up),
    ("bootmenu-vm", 1, Flag::BootMenu, Status::DownRecent),
    ("cpu-shares-vm", 0, Flag::CpuShares, Status::Up),
    ("unplugged-nic-vm", 1, Flag::UnpluggedNic, Status::Up),
    ("scsi-reservation-vm", 0, Flag::ScsiReservation, Status::Up),
    ("kill-on-error-vm", 1, Flag::KillOnError, Status::Paused),
    ("iothreads-vm", 0, Flag::IoThreads, Status::Up),
    ("ballooned-vm", 1, Flag::Ballooning, Status::Up),
];

/// The demo lab: RDU and TLV2, ~125 VMs, ~12 TB provisioned, owners of every kind and the
/// flagged VMs of `DEMO_FLAGGED`.
pub fn demo() -> World {
    let mut b = B::new(20_240_611);
    b.infrastructure(125);
    let user = |b: &B, principal: &str| {
        b.w.users
            .iter()
            .find(|u| u.principal == principal)
            .map(|u| u.id.clone())
    };

    // Ordinary VMs, by team.
    for (i, name) in DEMO_RDU.iter().enumerate() {
        let status = if i % 11 == 7 {
            Status::DownLong
        } else if i % 13 == 5 {
            Status::DownRecent
        } else {
            Status::Up
        };
        let owner = match i % 7 {
            0..=3 => Owner::One,
            4 => Owner::Group,
            5 => Owner::Several,
            _ => Owner::Nobody,
        };
        b.vm(name, 0, status, owner);
    }
    for (i, name) in DEMO_TLV.iter().enumerate() {
        let status = match i % 9 {
            3 => Status::DownLong,
            6 => Status::DownRecent,
            _ if i == 20 => Status::Paused,
            _ => Status::Up,
        };
        let owner = match i % 6 {
            0..=2 => Owner::One,
            3 => Owner::Group,
            _ => Owner::Nobody,
        };
        b.vm(name, 1, status, owner);
    }
    // ba_shared_vm_1: alice and bob manage it together.
    let shared = b.vm("ba_shared_vm_1", 0, Status::Up, Owner::Nobody);
    let shared_id = b.w.vms[shared].id.clone();
    for who in ["alice", "bob"] {
        let u = user(&b, who);
        b.permission("UserVmManager", u, None, "vm", Some(shared_id.clone()));
    }
    b.vm("Win2019-AD01", 0, Status::Up, Owner::Group);
    b.vm("win2016-fileserver", 1, Status::DownLong, Owner::Nobody);
    b.vm("old-jboss-01", 0, Status::DownLong, Owner::One);

    // The flagged ones.
    let mut flagged: Vec<(usize, Flag)> = Vec::new();
    for (i, (name, dc, flag, status)) in DEMO_FLAG_SPECS.iter().enumerate() {
        let owner = if i % 3 == 0 { Owner::Group } else { Owner::One };
        let v = b.vm(name, *dc, *status, owner);
        flagged.push((v, *flag));
    }
    let node2 = flagged[1].0;
    for (v, flag) in flagged {
        b.flag(
            v,
            flag,
            if matches!(flag, Flag::SharedDisk) {
                Some(node2)
            } else {
                None
            },
        );
    }
    // Both RAC nodes live in the same cluster, as the shared disk needs.
    let c = b.w.vms[flagged_first(&b.w, "ora-rac-node1")]
        .cluster
        .clone();
    let n2 = flagged_first(&b.w, "ora-rac-node2");
    b.w.vms[n2].cluster = c.clone();
    let host =
        b.w.hosts
            .iter()
            .filter(|h| h.cluster == c)
            .nth(1)
            .map(|h| h.id.clone());
    b.w.vms[n2].host = host;
    plant_after_move_faults(&mut b.w);
    b.finish()
}

/// The demo's after-move faults (`after_move`, WORLD.md), one VM each, for vm-verify to name: a
/// guest that does not boot, one whose agent stays away, one that comes up with another address,
/// a VirtualMachine without its second NIC, and an FQDN DNS still points at the old address.
pub const DEMO_AFTER_MOVE: &[(&str, &str)] = &[
    ("elk-es-01", "does not boot"),
    ("nexus-repo", "no guest agent"),
    ("jenkins-agent-02", "another address"),
    ("rdu-cache-01", "missing NIC"),
    ("tlv2-web-01", "stale DNS"),
];

fn plant_after_move_faults(w: &mut World) {
    for (name, fault) in DEMO_AFTER_MOVE {
        let Some(vm) = w.vms.iter_mut().find(|v| v.name == *name) else {
            continue;
        };
        let mut after = AfterMove::default();
        match *fault {
            "does not boot" => after.boots = Some(false),
            "no guest agent" => after.guest_agent = Some(false),
            "another address" => {
                let mac = vm.nics[0].mac.clone();
                after.addresses.insert(mac, vec!["192.0.2.77".into()]);
            }
            "missing NIC" => after.missing_nics = vec![vm.nics[vm.nics.len() - 1].mac.clone()],
            _ => after.dns_stale = Some(true),
        }
        vm.after_move = Some(after);
    }
}

fn flagged_first(w: &World, name: &str) -> usize {
    w.vms.iter().position(|v| v.name == name).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_valid() {
        let a = to_json(&generate(300, 7));
        assert_eq!(a, to_json(&generate(300, 7)));
        assert_ne!(a, to_json(&generate(300, 8)));
        generate(300, 7).validate().unwrap();
        demo().validate().unwrap();
    }

    #[test]
    fn demo_has_its_flagged_vms() {
        let w = demo();
        for (name, _) in DEMO_FLAGGED {
            assert!(w.vms.iter().any(|v| v.name == *name), "{name}");
        }
        let total: u64 = w
            .disks
            .iter()
            .map(|d| d.provisioned_size + d.lun_size.unwrap_or(0))
            .sum();
        assert!((100..=140).contains(&w.vms.len()), "{} VMs", w.vms.len());
        assert!(
            total > 8_000 * GIB && total < 16_000 * GIB,
            "{} GiB",
            total / GIB
        );
    }
}
