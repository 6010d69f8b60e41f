//! The engine world file (tests/ovirt-sim/WORLD.md) seen as Forklift's oVirt inventory: VMs with
//! their NICs' networks and disks, networks and storage domains, looked up by id or by name.

use common::forklift::builder::{self, Firmware};
use common::record::{self, VmRecord};
use common::{Error, Result};
use ovirt_sim::objects::LogicalUnit;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Disk {
    pub id: String,
    /// The VM's disk attachment id (Forklift names the PVC after it; oVirt gives it the disk's id).
    pub attachment_id: String,
    pub alias: String,
    pub provisioned_bytes: u64,
    pub actual_bytes: u64,
    pub storage_domain: Option<String>,
    pub lun: bool,
    /// A LUN disk's logical unit as the engine (ovirt-sim) serves it.
    pub logical_unit: Option<LogicalUnit>,
    pub bootable: bool,
}

#[derive(Debug, Clone)]
pub struct WorldVm {
    pub id: String,
    pub name: String,
    /// Network ids of the VM's NICs, one per NIC with a vNIC profile, in NIC order.
    pub nic_networks: Vec<String>,
    /// Per NIC: its MAC and the network of its vNIC profile (None without a profile).
    pub nics: Vec<(String, Option<String>)>,
    /// The VM as Forklift's inventory holds it, in the record model the shared rules read
    /// (common::forklift::concerns): what ovirt-sim serves of it, read as Forklift's collector
    /// reads it (inventory_record).
    pub record: VmRecord,
    pub disks: Vec<Disk>,
    pub cpu: Value,
    pub memory_bytes: u64,
    pub status: String,
    pub os_type: String,
    /// Per NIC (in NIC order): its model (`virtio`, `e1000`, ...) and whether its vNIC profile is
    /// pass-through.
    pub nic_models: Vec<(String, bool)>,
    /// The firmware Forklift gives the VM (common::forklift::builder::firmware).
    pub firmware: Firmware,
    /// What the guest reports once it runs on the target.
    pub guest: Guest,
}

/// The guest as its agent shows it: what the source's agent reported, and the world's after-move
/// faults (tests/ovirt-sim/WORLD.md, `after_move`).
#[derive(Debug, Clone, Default)]
pub struct Guest {
    /// The source's `guest_os` (null: no agent on the source).
    pub os: Value,
    pub fqdn: Option<String>,
    /// Per NIC (in NIC order): the addresses the source's agent reported.
    pub addresses: Vec<Vec<String>>,
    /// `after_move` (null: a clean move).
    pub after_move: Value,
}

impl Guest {
    /// Whether an agent reports from the guest after the move: the source had one, and the world
    /// plants no `guest_agent: false`.
    pub fn has_agent(&self) -> bool {
        self.os.is_object() && self.after_move["guest_agent"] != false
    }

    pub fn boots(&self) -> bool {
        self.after_move["boots"] != false
    }

    /// Whether the VirtualMachine lacks the NIC with `mac`.
    pub fn lacks_nic(&self, mac: &str) -> bool {
        self.after_move["missing_nics"]
            .as_array()
            .is_some_and(|m| m.iter().any(|x| x == mac))
    }

    /// The addresses the world plants for `mac`, if it does.
    pub fn planted_addresses(&self, mac: &str) -> Option<Vec<String>> {
        let list = self.after_move["addresses"][mac].as_array()?;
        Some(
            list.iter()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect(),
        )
    }
}

impl WorldVm {
    /// Disks Forklift copies (LUNs are re-attached, not copied).
    pub fn copied_disks(&self) -> impl Iterator<Item = &Disk> {
        self.disks.iter().filter(|d| !d.lun)
    }

    /// vCPUs as KubeVirt counts them: sockets x cores x threads, each at least 1.
    pub fn vcpus(&self) -> u64 {
        let count = |key: &str| self.cpu[key].as_u64().unwrap_or(1).max(1);
        count("sockets") * count("cores") * count("threads")
    }

    /// Forklift v2.12.5 `adapter/ovirt/builder.go` `mapTpm`: a persistent TPM for these guests.
    pub fn has_tpm(&self) -> bool {
        self.os_type == "windows_2022" || self.os_type == "windows_11"
    }
}

#[derive(Debug, Clone)]
pub struct Named {
    pub id: String,
    pub name: String,
}

/// What a `{id, name}` source reference resolves to.
pub enum Lookup<'a, T> {
    Found(&'a T),
    NotSet,
    NotFound,
    Ambiguous,
}

#[derive(Debug, Default)]
pub struct World {
    /// The engine's `product_info` full version (direct LUN disks need 4.5.2.1).
    pub engine_version: String,
    pub vms: Vec<WorldVm>,
    pub networks: Vec<Named>,
    pub storage_domains: Vec<Named>,
}

fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_default().to_string()
}

impl World {
    pub fn load(path: &Path) -> Result<World> {
        let raw = std::fs::read_to_string(path).map_err(|e| {
            Error::no_input(format!(
                "{}: cannot read the world file: {e}",
                path.display()
            ))
        })?;
        let doc: Value = serde_json::from_str(&raw)
            .map_err(|e| Error::data(format!("{}: not a world file: {e}", path.display())))?;
        Ok(World::from_value(&doc))
    }

    pub fn from_value(doc: &Value) -> World {
        let list = |key: &str| doc[key].as_array().cloned().unwrap_or_default();
        let profiles: HashMap<String, String> = list("vnic_profiles")
            .iter()
            .map(|p| (text(p, "id"), text(p, "network")))
            .collect();
        let disks: HashMap<String, Disk> = list("disks")
            .iter()
            .map(|d| {
                let disk = Disk {
                    id: text(d, "id"),
                    attachment_id: text(d, "id"),
                    alias: text(d, "alias"),
                    provisioned_bytes: d["provisioned_size"].as_u64().unwrap_or(0),
                    actual_bytes: d["actual_size"].as_u64().unwrap_or(0),
                    storage_domain: d["storage_domain"].as_str().map(str::to_string),
                    lun: d["storage_type"] == "lun",
                    logical_unit: d["lun_size"]
                        .as_u64()
                        .map(|size| ovirt_sim::objects::logical_unit(&text(d, "id"), size)),
                    bootable: false,
                };
                (disk.id.clone(), disk)
            })
            .collect();
        let vms = list("vms")
            .iter()
            .map(|vm| WorldVm {
                id: text(vm, "id"),
                name: text(vm, "name"),
                nic_networks: vm["nics"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|nic| profiles.get(nic["vnic_profile"].as_str()?).cloned())
                    .collect(),
                disks: vm["disk_attachments"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| {
                        let mut disk = disks.get(a["disk"].as_str()?)?.clone();
                        if let Some(id) = a["id"].as_str() {
                            disk.attachment_id = id.to_string();
                        }
                        disk.bootable = a["bootable"] == true;
                        Some(disk)
                    })
                    .collect(),
                nics: vm["nics"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|nic| {
                        let network = nic["vnic_profile"].as_str().and_then(|p| profiles.get(p));
                        (text(nic, "mac"), network.cloned())
                    })
                    .collect(),
                nic_models: vm["nics"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|nic| {
                        let profile = by_id(doc, "vnic_profiles", &nic["vnic_profile"]);
                        (text(nic, "interface"), profile["pass_through"] == true)
                    })
                    .collect(),
                firmware: builder::firmware(
                    vm["bios_type"].as_str(),
                    by_id(doc, "clusters", &vm["cluster"])["bios_type"].as_str(),
                ),
                guest: Guest {
                    os: vm["guest_os"].clone(),
                    fqdn: opt_text(&vm["fqdn"]),
                    addresses: vm["nics"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|nic| {
                            let ips = nic["reported_ips"].as_array().into_iter().flatten();
                            ips.filter_map(|ip| opt_text(&ip["address"])).collect()
                        })
                        .collect(),
                    after_move: vm["after_move"].clone(),
                },
                record: inventory_record(doc, vm),
                cpu: vm["cpu"].clone(),
                memory_bytes: vm["memory"].as_u64().unwrap_or(0),
                status: text(vm, "status"),
                os_type: text(vm, "os_type"),
            })
            .collect();
        let named = |key: &str| {
            list(key)
                .iter()
                .map(|o| Named {
                    id: text(o, "id"),
                    name: text(o, "name"),
                })
                .collect()
        };
        World {
            engine_version: text(&doc["engine"], "version"),
            vms,
            networks: named("networks"),
            storage_domains: named("storage_domains"),
        }
    }

    pub fn vm(&self, reference: &Value) -> Lookup<'_, WorldVm> {
        lookup(&self.vms, reference, |v| (&v.id, &v.name))
    }

    pub fn network(&self, reference: &Value) -> Lookup<'_, Named> {
        lookup(&self.networks, reference, |n| (&n.id, &n.name))
    }

    pub fn storage_domain(&self, reference: &Value) -> Lookup<'_, Named> {
        lookup(&self.storage_domains, reference, |n| (&n.id, &n.name))
    }
}

/// The object of `kind` with id `id` in the world, or null.
fn by_id(doc: &Value, kind: &str, id: &Value) -> Value {
    doc[kind]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["id"] == *id && !id.is_null())
        .cloned()
        .unwrap_or(Value::Null)
}

fn opt_text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn name_values(v: &Value) -> Option<Vec<record::NameValue>> {
    serde_json::from_value(v.clone()).ok()
}

/// A VM's disks as Forklift's inventory holds them (see `inventory_record`).
fn inventory_disks(doc: &Value, vm: &Value) -> Vec<record::Disk> {
    let attachments = vm["disk_attachments"].as_array().into_iter().flatten();
    attachments
        .map(|a| {
            let disk = by_id(doc, "disks", &a["disk"]);
            let lun = disk["storage_type"] == "lun";
            record::Disk {
                attachment_id: text(a, "id"),
                disk_id: opt_text(&disk["id"]),
                alias: opt_text(&disk["alias"]),
                interface: opt_text(&a["interface"]),
                uses_scsi_reservation: Some(a["uses_scsi_reservation"].as_bool().unwrap_or(false)),
                status: opt_text(&disk["status"]),
                storage_type: opt_text(&disk["storage_type"]),
                provisioned_bytes: disk["provisioned_size"].as_u64(),
                lun_size_bytes: lun.then(|| disk["lun_size"].as_u64().unwrap_or(0)),
                ..Default::default()
            }
        })
        .collect()
}

/// A VM's NICs with their vNIC profiles and networks (see `inventory_record`).
fn inventory_nics(doc: &Value, vm: &Value) -> Vec<record::Nic> {
    let flag = |v: &Value| Some(v.as_bool().unwrap_or(false));
    let nics = vm["nics"].as_array().into_iter().flatten();
    nics.map(|n| {
        let profile = by_id(doc, "vnic_profiles", &n["vnic_profile"]);
        record::Nic {
            id: text(n, "id"),
            name: opt_text(&n["name"]),
            mac: opt_text(&n["mac"]),
            interface: opt_text(&n["interface"]),
            plugged: Some(n["plugged"].as_bool().unwrap_or(true)),
            vnic_profile: profile.is_object().then(|| record::VnicProfile {
                id: text(&profile, "id"),
                port_mirroring: flag(&profile["port_mirroring"]),
                network_filter: opt_text(&profile["network_filter"]),
                qos: opt_text(&profile["qos"]),
                custom_properties: name_values(&profile["custom_properties"]),
                ..Default::default()
            }),
            network: profile.is_object().then(|| record::Network {
                id: text(&profile, "network"),
                ..Default::default()
            }),
            ..Default::default()
        }
    })
    .collect()
}

/// The fields Forklift's oVirt rules read, from a world VM, with the values ovirt-sim serves for
/// fields the world leaves out (tests/ovirt-sim/src/objects.rs: placement affinity `migratable`,
/// storage_error_resume_behaviour `auto_resume`, booleans false). Forklift's collector keeps the
/// disk's `sharable`, which the engine does not send, so `shareable` is not carried over
/// (v2.12.5 pkg/controller/provider/container/ovirt/resource.go `Disk.ApplyTo`); a LUN disk's
/// size is its logical unit's (`lun_size`).
fn inventory_record(doc: &Value, vm: &Value) -> VmRecord {
    let cluster = by_id(doc, "clusters", &vm["cluster"]);
    let flag = |v: &Value| Some(v.as_bool().unwrap_or(false));
    VmRecord {
        schema: record::SCHEMA_VERSION,
        id: text(vm, "id"),
        name: text(vm, "name"),
        status: opt_text(&vm["status"]),
        os_type: opt_text(&vm["os_type"]),
        bios_type: opt_text(&vm["bios_type"]),
        bios_boot_menu: flag(&vm["boot_menu"]),
        cpu: Some(record::Cpu {
            shares: vm["cpu_shares"].as_u64().map(|s| s as u32),
            custom_model: opt_text(&vm["custom_cpu_model"]),
            pinning_policy: opt_text(&vm["cpu_pinning_policy"]),
            pinning: serde_json::from_value(vm["vcpu_pins"].clone()).ok(),
            ..Default::default()
        }),
        cluster: Some(record::Cluster {
            id: text(&cluster, "id"),
            ha_reservation: flag(&cluster["ha_reservation"]),
            ksm_enabled: flag(&cluster["ksm"]),
            ..Default::default()
        }),
        high_availability: flag(&vm["high_availability"]["enabled"]),
        usb_enabled: flag(&vm["usb"]),
        display_type: opt_text(&vm["display_type"]),
        io_threads: vm["io_threads"].as_u64().map(|t| t as u32),
        storage_error_resume_behaviour: Some(
            opt_text(&vm["storage_error_resume_behaviour"]).unwrap_or_else(|| "auto_resume".into()),
        ),
        placement_policy: Some(record::PlacementPolicy {
            affinity: Some(
                opt_text(&vm["placement_policy"]["affinity"])
                    .unwrap_or_else(|| "migratable".into()),
            ),
            hosts: None,
        }),
        custom_properties: name_values(&vm["custom_properties"]),
        has_illegal_images: flag(&vm["has_illegal_images"]),
        memory_ballooning: flag(&vm["memory_policy"]["ballooning"]),
        watchdogs: serde_json::from_value(vm["watchdogs"].clone()).ok(),
        host_devices: serde_json::from_value(vm["host_devices"].clone()).ok(),
        snapshots: vm["snapshots"].as_array().map(|list| {
            list.iter()
                .map(|s| record::Snapshot {
                    id: text(s, "id"),
                    persist_memory: flag(&s["persist_memorystate"]),
                    ..Default::default()
                })
                .collect()
        }),
        disks: Some(inventory_disks(doc, vm)),
        nics: Some(inventory_nics(doc, vm)),
        ..Default::default()
    }
}

/// Forklift's `ByRef`: the id when given, else the name's last path segment (`RDU/vlan201` is
/// `vlan201`), which must be unique.
fn lookup<'a, T>(
    items: &'a [T],
    reference: &Value,
    key: impl Fn(&T) -> (&String, &String),
) -> Lookup<'a, T> {
    let id = reference["id"].as_str().unwrap_or_default();
    let name = reference["name"].as_str().unwrap_or_default();
    if !id.is_empty() {
        return match items.iter().find(|i| key(i).0 == id) {
            Some(found) => Lookup::Found(found),
            None => Lookup::NotFound,
        };
    }
    if name.is_empty() {
        return Lookup::NotSet;
    }
    let short = name.rsplit('/').next().unwrap_or(name);
    let mut matches = items.iter().filter(|i| key(i).1 == short);
    match (matches.next(), matches.next()) {
        (Some(found), None) => Lookup::Found(found),
        (None, _) => Lookup::NotFound,
        _ => Lookup::Ambiguous,
    }
}
