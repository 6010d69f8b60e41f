//! From the engine's JSON to VM records: the objects fetched once (networks, profiles, storage
//! domains, clusters, data centers, hosts, users, groups, roles, tags, permissions) and the join of
//! each VM against them. Pure functions over `serde_json::Value`, so they are tested without HTTP.

use crate::wire::{
    self, WireResult, at, boolean, date, decimal, list, non_empty_text, ref_id, text, unsigned,
    unsigned32,
};
use common::record::{
    self, Cpu, CpuPin, Disk, GuestOs, InheritedFrom, NameValue, NamedRef, Nic, Permission,
    PlacementPolicy, Snapshot, Statistics, VmRecord, Watchdog,
};
use common::untrusted;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use tracing::warn;

/// What the VM list's `follow` embeds in every VM.
pub const VM_FOLLOW: &str = "disk_attachments.disk,nics.reported_devices,permissions,statistics,tags,watchdogs,host_devices,snapshots";

/// The objects fetched once and joined locally, by id.
#[derive(Debug, Default)]
pub struct Lookups {
    pub data_centers: HashMap<String, Option<String>>,
    pub clusters: HashMap<String, ClusterInfo>,
    pub hosts: HashMap<String, Option<String>>,
    pub templates: HashMap<String, Option<String>>,
    pub networks: HashMap<String, record::Network>,
    pub vnic_profiles: HashMap<String, ProfileInfo>,
    pub storage_domains: HashMap<String, Option<String>>,
    pub users: HashMap<String, record::User>,
    pub groups: HashMap<String, record::Group>,
    pub roles: HashMap<String, Option<String>>,
    pub tags: HashMap<String, Option<String>>,
    pub network_filters: HashMap<String, Option<String>>,
    pub qos: HashMap<String, Option<String>>,
    pub system_permissions: HashSet<String>,
    pub data_center_permissions: HashMap<String, HashSet<String>>,
    pub cluster_permissions: HashMap<String, HashSet<String>>,
    /// The engine's product_info version, written into every record.
    pub engine_version: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ClusterInfo {
    pub record: record::Cluster,
    pub data_center_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ProfileInfo {
    pub record: record::VnicProfile,
    pub network_id: Option<String>,
    network_filter_id: Option<String>,
    qos_id: Option<String>,
}

/// `id -> name` of a collection (`{"host": [..]}`).
pub fn names(body: &Value, element: &str) -> WireResult<HashMap<String, Option<String>>> {
    let mut out = HashMap::new();
    for item in list(body, "", element)? {
        let id = wire::required_id(item, element)?;
        out.insert(id, text(item, "name")?);
    }
    Ok(out)
}

/// The ids of a permissions collection (top level, or embedded in an object as `permissions`).
pub fn permission_ids(body: &Value, outer: &str) -> WireResult<HashSet<String>> {
    list(body, outer, "permission")?
        .into_iter()
        .map(|p| wire::required_id(p, "permission"))
        .collect()
}

impl Lookups {
    pub fn add_data_centers(&mut self, body: &Value) -> WireResult<()> {
        for dc in list(body, "", "data_center")? {
            let id = wire::required_id(dc, "data_center")?;
            self.data_centers.insert(id.clone(), text(dc, "name")?);
            if at(dc, "permissions").is_some() {
                self.data_center_permissions
                    .insert(id.clone(), permission_ids(dc, "permissions")?);
            }
            // QoS entries, when the engine embedded them (follow=qoss).
            for qos in list(dc, "qoss", "qos")? {
                self.qos
                    .insert(wire::required_id(qos, "qos")?, text(qos, "name")?);
            }
        }
        Ok(())
    }

    /// Data centers whose permissions were not embedded (the engine ignored `follow`).
    pub fn data_centers_without_permissions(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .data_centers
            .keys()
            .filter(|id| !self.data_center_permissions.contains_key(*id))
            .cloned()
            .collect();
        ids.sort();
        ids
    }

    pub fn clusters_without_permissions(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .clusters
            .keys()
            .filter(|id| !self.cluster_permissions.contains_key(*id))
            .cloned()
            .collect();
        ids.sort();
        ids
    }

    /// Call after `add_data_centers`: cluster records carry their data center's name.
    pub fn add_clusters(&mut self, body: &Value) -> WireResult<()> {
        for cluster in list(body, "", "cluster")? {
            let id = wire::required_id(cluster, "cluster")?;
            let version = match (
                text(cluster, "version.major")?,
                text(cluster, "version.minor")?,
            ) {
                (Some(major), Some(minor)) => Some(format!("{major}.{minor}")),
                (Some(major), None) => Some(major),
                _ => None,
            };
            let record = record::Cluster {
                id: id.clone(),
                name: text(cluster, "name")?,
                ha_reservation: boolean(cluster, "ha_reservation")?,
                ksm_enabled: boolean(cluster, "ksm.enabled")?,
                bios_type: text(cluster, "bios_type")?,
                cpu_type: text(cluster, "cpu.type")?,
                version,
            };
            if at(cluster, "permissions").is_some() {
                self.cluster_permissions
                    .insert(id.clone(), permission_ids(cluster, "permissions")?);
            }
            let data_center_id = ref_id(cluster, "data_center")?;
            self.clusters.insert(
                id,
                ClusterInfo {
                    record,
                    data_center_id,
                },
            );
        }
        Ok(())
    }

    /// Call after `add_data_centers`: networks get their `<data center>/<network>` path.
    pub fn add_networks(&mut self, body: &Value) -> WireResult<()> {
        for network in list(body, "", "network")? {
            let id = wire::required_id(network, "network")?;
            let name = text(network, "name")?;
            let data_center = ref_id(network, "data_center")?.map(|dc_id| {
                let dc_name = self.data_centers.get(&dc_id).cloned().flatten();
                NamedRef {
                    id: dc_id,
                    name: dc_name,
                }
            });
            let path = match (&data_center, &name) {
                (Some(NamedRef { name: Some(dc), .. }), Some(net)) => Some(format!("{dc}/{net}")),
                _ => None,
            };
            let vlan = unsigned32(network, "vlan.id")?;
            self.networks.insert(
                id.clone(),
                record::Network {
                    id,
                    name,
                    vlan,
                    data_center,
                    path,
                },
            );
        }
        Ok(())
    }

    pub fn add_vnic_profiles(&mut self, body: &Value) -> WireResult<()> {
        for profile in list(body, "", "vnic_profile")? {
            let id = wire::required_id(profile, "vnic_profile")?;
            let pass_through = text(profile, "pass_through.mode")?
                .map(|mode| mode.eq_ignore_ascii_case("enabled"));
            let record = record::VnicProfile {
                id: id.clone(),
                name: text(profile, "name")?,
                pass_through,
                port_mirroring: boolean(profile, "port_mirroring")?,
                // Names embedded by follow=network_filter,qos; else joined in `resolve_profiles`.
                network_filter: text(profile, "network_filter.name")?,
                qos: text(profile, "qos.name")?,
                custom_properties: name_values(profile, "custom_properties", "custom_property")?,
            };
            let info = ProfileInfo {
                record,
                network_id: ref_id(profile, "network")?,
                network_filter_id: ref_id(profile, "network_filter")?,
                qos_id: ref_id(profile, "qos")?,
            };
            self.vnic_profiles.insert(id, info);
        }
        Ok(())
    }

    /// Names network filters and QoS of the profiles from the lists fetched once.
    pub fn resolve_profiles(&mut self) {
        for info in self.vnic_profiles.values_mut() {
            if info.record.network_filter.is_none()
                && let Some(id) = &info.network_filter_id
            {
                info.record.network_filter = self.network_filters.get(id).cloned().flatten();
            }
            if info.record.qos.is_none()
                && let Some(id) = &info.qos_id
            {
                info.record.qos = self.qos.get(id).cloned().flatten();
            }
        }
    }

    pub fn profiles_need_filter_names(&self) -> bool {
        self.vnic_profiles
            .values()
            .any(|p| p.record.network_filter.is_none() && p.network_filter_id.is_some())
    }

    pub fn profiles_need_qos_names(&self) -> bool {
        self.vnic_profiles
            .values()
            .any(|p| p.record.qos.is_none() && p.qos_id.is_some())
    }

    pub fn add_users(&mut self, body: &Value) -> WireResult<()> {
        for user in list(body, "", "user")? {
            let record = user_record(user)?;
            self.users.insert(record.id.clone(), record);
        }
        Ok(())
    }

    pub fn add_groups(&mut self, body: &Value) -> WireResult<()> {
        for group in list(body, "", "group")? {
            let record = group_record(group)?;
            self.groups.insert(record.id.clone(), record);
        }
        Ok(())
    }

    /// The record of one VM of the VM list, joined with the lookups.
    pub fn vm_record(&self, vm: &Value) -> WireResult<VmRecord> {
        let id = wire::required_id(vm, "vm")?;
        let name = text(vm, "name")?.ok_or_else(|| format!("vm {id} without a name"))?;
        self.vm_fields(vm, id.clone(), name.clone())
            .map_err(|e| format!("vm {name} ({id}): {e}"))
    }

    fn vm_fields(&self, vm: &Value, id: String, name: String) -> WireResult<VmRecord> {
        let cluster_id = ref_id(vm, "cluster")?;
        let cluster_info = cluster_id.as_ref().and_then(|c| self.clusters.get(c));
        let cluster = cluster_id.as_ref().map(|c| match cluster_info {
            Some(info) => info.record.clone(),
            None => record::Cluster {
                id: c.clone(),
                ..Default::default()
            },
        });
        let data_center_id = cluster_info.and_then(|c| c.data_center_id.clone());
        let data_center = data_center_id.as_ref().map(|dc| NamedRef {
            id: dc.clone(),
            name: self.data_centers.get(dc).cloned().flatten(),
        });

        let mut record = VmRecord {
            schema: record::SCHEMA_VERSION,
            id,
            name,
            description: non_empty_text(vm, "description")?,
            comment: non_empty_text(vm, "comment")?,
            engine_version: self.engine_version.clone(),
            data_center,
            cluster,
            host: named(vm, "host", &self.hosts)?,
            template: named(vm, "template", &self.templates)?,
            tags: self.tags_of(vm)?,
            fqdn: non_empty_text(vm, "fqdn")?,
            status: text(vm, "status")?,
            status_detail: non_empty_text(vm, "status_detail")?,
            stop_reason: non_empty_text(vm, "stop_reason")?,
            creation_time: date(vm, "creation_time")?,
            start_time: date(vm, "start_time")?,
            stop_time: date(vm, "stop_time")?,
            statistics: statistics(vm)?,
            vm_type: text(vm, "type")?,
            memory_bytes: unsigned(vm, "memory")?,
            memory_guaranteed_bytes: unsigned(vm, "memory_policy.guaranteed")?,
            memory_max_bytes: unsigned(vm, "memory_policy.max")?,
            memory_ballooning: boolean(vm, "memory_policy.ballooning")?,
            cpu: cpu(vm)?,
            os_type: text(vm, "os.type")?,
            guest_os: guest_os(vm)?,
            bios_type: text(vm, "bios.type")?,
            bios_boot_menu: boolean(vm, "bios.boot_menu.enabled")?,
            origin: text(vm, "origin")?,
            stateless: boolean(vm, "stateless")?,
            delete_protected: boolean(vm, "delete_protected")?,
            high_availability: boolean(vm, "high_availability.enabled")?,
            high_availability_priority: wire::signed(vm, "high_availability.priority")?,
            usb_enabled: boolean(vm, "usb.enabled")?,
            display_type: text(vm, "display.type")?,
            io_threads: unsigned32(vm, "io.threads")?,
            storage_error_resume_behaviour: text(vm, "storage_error_resume_behaviour")?,
            placement_policy: self.placement_policy(vm)?,
            custom_properties: name_values(vm, "custom_properties", "custom_property")?,
            has_illegal_images: boolean(vm, "has_illegal_images")?,
            tpm_enabled: boolean(vm, "tpm_enabled")?,
            watchdogs: watchdogs(vm)?,
            host_devices: host_devices(vm)?,
            snapshots: snapshots(vm)?,
            disks: None,
            nics: None,
            permissions: None,
            owners: None,
            target_namespace: None,
            extra: Map::new(),
        };
        record.disks = Some(self.disks(vm)?);
        record.nics = Some(self.nics(vm)?);
        record.permissions =
            Some(self.permissions(vm, cluster_id.as_deref(), data_center_id.as_deref())?);
        Ok(record)
    }

    fn tags_of(&self, vm: &Value) -> WireResult<Option<Vec<String>>> {
        if at(vm, "tags").is_none() {
            return Ok(None);
        }
        let mut tags = Vec::new();
        for tag in list(vm, "tags", "tag")? {
            let name = match text(tag, "name")? {
                Some(name) => Some(name),
                None => ref_id(tag, "")?.and_then(|id| self.tags.get(&id).cloned().flatten()),
            };
            tags.extend(name);
        }
        Ok(Some(tags))
    }

    fn placement_policy(&self, vm: &Value) -> WireResult<Option<PlacementPolicy>> {
        if at(vm, "placement_policy").is_none() {
            return Ok(None);
        }
        let affinity = text(vm, "placement_policy.affinity")?;
        let hosts = match at(vm, "placement_policy.hosts") {
            None => None,
            Some(_) => {
                let mut names = Vec::new();
                for host in list(vm, "placement_policy.hosts", "host")? {
                    let id = ref_id(host, "")?;
                    // Host names where known, so the record stands alone; the id otherwise.
                    let name = match text(host, "name")? {
                        Some(name) => Some(name),
                        None => id
                            .as_ref()
                            .and_then(|id| self.hosts.get(id).cloned().flatten())
                            .or(id),
                    };
                    names.extend(name);
                }
                Some(names)
            }
        };
        Ok(Some(PlacementPolicy { affinity, hosts }))
    }

    fn disks(&self, vm: &Value) -> WireResult<Vec<Disk>> {
        let mut disks = Vec::new();
        for attachment in list(vm, "disk_attachments", "disk_attachment")? {
            let attachment_id = wire::required_id(attachment, "disk_attachment")?;
            let disk = at(attachment, "disk").cloned().unwrap_or(Value::Null);
            let storage_domain = match list(&disk, "storage_domains", "storage_domain")?.first() {
                Some(sd) => ref_id(sd, "")?.map(|sd_id| {
                    let name = self.storage_domains.get(&sd_id).cloned().flatten();
                    NamedRef { id: sd_id, name }
                }),
                None => None,
            };
            let units = list(&disk, "lun_storage.logical_units", "logical_unit")?;
            let lun_size_bytes = if units.is_empty() {
                None
            } else {
                let mut total: Option<u64> = None;
                for unit in units {
                    if let Some(size) = unsigned(unit, "size")? {
                        total = Some(total.unwrap_or(0).saturating_add(size));
                    }
                }
                total
            };
            disks.push(Disk {
                attachment_id,
                disk_id: ref_id(attachment, "disk")?,
                alias: text(&disk, "alias")?,
                interface: text(attachment, "interface")?,
                bootable: boolean(attachment, "bootable")?,
                active: boolean(attachment, "active")?,
                read_only: boolean(attachment, "read_only")?,
                uses_scsi_reservation: boolean(attachment, "uses_scsi_reservation")?,
                logical_name: non_empty_text(attachment, "logical_name")?,
                shareable: boolean(&disk, "shareable")?,
                status: text(&disk, "status")?,
                format: text(&disk, "format")?,
                sparse: boolean(&disk, "sparse")?,
                storage_type: text(&disk, "storage_type")?,
                content_type: text(&disk, "content_type")?,
                provisioned_bytes: unsigned(&disk, "provisioned_size")?,
                actual_bytes: unsigned(&disk, "actual_size")?,
                storage_domain,
                lun_size_bytes,
                extra: Map::new(),
            });
        }
        Ok(disks)
    }

    fn nics(&self, vm: &Value) -> WireResult<Vec<Nic>> {
        let mut nics = Vec::new();
        for nic in list(vm, "nics", "nic")? {
            let id = wire::required_id(nic, "nic")?;
            let profile_id = ref_id(nic, "vnic_profile")?;
            let profile = profile_id.as_ref().and_then(|p| self.vnic_profiles.get(p));
            let vnic_profile = profile_id.as_ref().map(|p| match profile {
                Some(info) => info.record.clone(),
                None => record::VnicProfile {
                    id: p.clone(),
                    ..Default::default()
                },
            });
            let network = profile.and_then(|p| p.network_id.as_ref()).map(|net| {
                match self.networks.get(net) {
                    Some(network) => network.clone(),
                    None => record::Network {
                        id: net.clone(),
                        ..Default::default()
                    },
                }
            });
            let name = text(nic, "name")?;
            let (ipv4, ipv6, invalid) = reported_addresses(nic)?;
            let mac_text = text(nic, "mac.address")?;
            let mac = mac_text.as_deref().and_then(untrusted::parse_mac);
            let invalid_mac = mac_text.filter(|_| mac.is_none());
            let mut extra = Map::new();
            if !invalid.is_empty() || invalid_mac.is_some() {
                let what = format!(
                    "VM {} NIC {}",
                    untrusted::for_terminal(&text(vm, "name")?.unwrap_or_default()),
                    untrusted::for_terminal(name.as_deref().unwrap_or(&id))
                );
                if !invalid.is_empty() {
                    warn!(
                        "{what}: reported addresses that do not parse, kept in invalid_addresses: {invalid:?}"
                    );
                    extra.insert("invalid_addresses".into(), invalid.into());
                }
                if let Some(bad) = invalid_mac {
                    warn!("{what}: MAC {bad:?} does not parse, kept in invalid_mac");
                    extra.insert("invalid_mac".into(), bad.into());
                }
            }
            nics.push(Nic {
                id,
                name,
                mac,
                interface: text(nic, "interface")?,
                plugged: boolean(nic, "plugged")?,
                linked: boolean(nic, "linked")?,
                vnic_profile,
                network,
                ipv4,
                ipv6,
                extra,
            });
        }
        Ok(nics)
    }

    /// The VM's permissions (its own and the inherited ones, which the engine rewrites to point at
    /// the VM), told apart by permission id.
    fn permissions(
        &self,
        vm: &Value,
        cluster: Option<&str>,
        data_center: Option<&str>,
    ) -> WireResult<Vec<Permission>> {
        let in_set = |map: &HashMap<String, HashSet<String>>, key: Option<&str>, id: &str| {
            key.and_then(|k| map.get(k))
                .is_some_and(|set| set.contains(id))
        };
        let mut permissions = Vec::new();
        for permission in list(vm, "permissions", "permission")? {
            let id = wire::required_id(permission, "permission")?;
            // System first: an engine may list the inherited ones under a cluster or DC as well.
            let inherited_from = if self.system_permissions.contains(&id) {
                Some(InheritedFrom::System)
            } else if in_set(&self.data_center_permissions, data_center, &id) {
                Some(InheritedFrom::DataCenter)
            } else if in_set(&self.cluster_permissions, cluster, &id) {
                Some(InheritedFrom::Cluster)
            } else {
                None
            };
            let role_id = ref_id(permission, "role")?
                .ok_or_else(|| format!("permission {id} without a role"))?;
            let role_name = match text(permission, "role.name")? {
                Some(name) => Some(name),
                None => self.roles.get(&role_id).cloned().flatten(),
            };
            let user = match at(permission, "user") {
                None => None,
                Some(user) => {
                    let user_id = ref_id(user, "")?
                        .ok_or_else(|| format!("permission {id}: user without an id"))?;
                    Some(match self.users.get(&user_id) {
                        Some(known) => known.clone(),
                        None => user_record(user)?,
                    })
                }
            };
            let group = match at(permission, "group") {
                None => None,
                Some(group) => {
                    let group_id = ref_id(group, "")?
                        .ok_or_else(|| format!("permission {id}: group without an id"))?;
                    Some(match self.groups.get(&group_id) {
                        Some(known) => known.clone(),
                        None => group_record(group)?,
                    })
                }
            };
            permissions.push(Permission {
                id,
                role: NamedRef {
                    id: role_id,
                    name: role_name,
                },
                user,
                group,
                inherited_from,
            });
        }
        Ok(permissions)
    }
}

fn named(
    vm: &Value,
    path: &str,
    names: &HashMap<String, Option<String>>,
) -> WireResult<Option<NamedRef>> {
    let Some(id) = ref_id(vm, path)? else {
        return Ok(None);
    };
    let name = match text(vm, &format!("{path}.name"))? {
        Some(name) => Some(name),
        None => names.get(&id).cloned().flatten(),
    };
    Ok(Some(NamedRef { id, name }))
}

fn user_record(user: &Value) -> WireResult<record::User> {
    Ok(record::User {
        id: wire::required_id(user, "user")?,
        principal: text(user, "principal")?,
        user_name: text(user, "user_name")?,
        domain: domain_name(user)?,
        name: non_empty_text(user, "name")?,
        last_name: non_empty_text(user, "last_name")?,
        email: non_empty_text(user, "email")?,
    })
}

fn group_record(group: &Value) -> WireResult<record::Group> {
    Ok(record::Group {
        id: wire::required_id(group, "group")?,
        name: text(group, "name")?,
        namespace: non_empty_text(group, "namespace")?,
        domain: domain_name(group)?,
    })
}

/// `domain` is a reference with a name (`{"id", "href", "name": "internal-authz"}`).
fn domain_name(principal: &Value) -> WireResult<Option<String>> {
    match at(principal, "domain") {
        Some(Value::String(name)) => Ok(Some(name.clone())),
        Some(_) => text(principal, "domain.name"),
        None => Ok(None),
    }
}

fn name_values(value: &Value, outer: &str, inner: &str) -> WireResult<Option<Vec<NameValue>>> {
    if at(value, outer).is_none() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for item in list(value, outer, inner)? {
        let Some(name) = text(item, "name")? else {
            continue;
        };
        out.push(NameValue {
            name,
            value: text(item, "value")?.unwrap_or_default(),
        });
    }
    Ok(Some(out))
}

fn cpu(vm: &Value) -> WireResult<Option<Cpu>> {
    let pins = match at(vm, "cpu.cpu_tune.vcpu_pins") {
        None => None,
        Some(_) => {
            let mut pins = Vec::new();
            for pin in list(vm, "cpu.cpu_tune.vcpu_pins", "vcpu_pin")? {
                let vcpu = unsigned32(pin, "vcpu")?.ok_or("vcpu_pin without vcpu")?;
                pins.push(CpuPin {
                    vcpu,
                    cpu_set: text(pin, "cpu_set")?.unwrap_or_default(),
                });
            }
            Some(pins)
        }
    };
    let cpu = Cpu {
        sockets: unsigned32(vm, "cpu.topology.sockets")?,
        cores: unsigned32(vm, "cpu.topology.cores")?,
        threads: unsigned32(vm, "cpu.topology.threads")?,
        shares: unsigned32(vm, "cpu_shares")?,
        custom_model: non_empty_text(vm, "custom_cpu_model")?,
        pinning_policy: text(vm, "cpu_pinning_policy")?,
        pinning: pins,
    };
    Ok((cpu != Cpu::default()).then_some(cpu))
}

fn guest_os(vm: &Value) -> WireResult<Option<GuestOs>> {
    let Some(guest) = at(vm, "guest_operating_system") else {
        return Ok(None);
    };
    // kernel and version are objects ({"version": {"full_version"}}, {"full_version"}) on the
    // engine; plain text is accepted too.
    let full = |path: &str, nested: &str| -> WireResult<Option<String>> {
        match at(guest, path) {
            Some(Value::Object(_)) => text(guest, nested),
            _ => text(guest, path),
        }
    };
    Ok(Some(GuestOs {
        architecture: text(guest, "architecture")?,
        codename: non_empty_text(guest, "codename")?,
        distribution: text(guest, "distribution")?,
        family: text(guest, "family")?,
        kernel: full("kernel", "kernel.version.full_version")?,
        version: full("version", "version.full_version")?,
    }))
}

fn statistics(vm: &Value) -> WireResult<Option<Statistics>> {
    if at(vm, "statistics").is_none() {
        return Ok(None);
    }
    let mut stats = Statistics::default();
    for statistic in list(vm, "statistics", "statistic")? {
        let Some(name) = text(statistic, "name")? else {
            continue;
        };
        let values = list(statistic, "values", "value")?;
        let Some(first) = values.first() else {
            continue;
        };
        let datum = decimal(first, "datum").map_err(|e| format!("statistic {name}: {e}"))?;
        let Some(datum) = datum else { continue };
        let whole = || (datum >= 0.0).then(|| datum.round() as u64);
        match name.as_str() {
            "elapsed.time" => stats.elapsed_time_seconds = whole(),
            "cpu.current.total" => stats.cpu_total_percent = Some(datum),
            "cpu.current.guest" => stats.cpu_guest_percent = Some(datum),
            "memory.installed" => stats.memory_installed_bytes = whole(),
            "memory.used" => stats.memory_used_bytes = whole(),
            "network.current.total" => stats.network_total_percent = Some(datum),
            _ => {}
        }
    }
    Ok((stats != Statistics::default()).then_some(stats))
}

fn watchdogs(vm: &Value) -> WireResult<Option<Vec<Watchdog>>> {
    if at(vm, "watchdogs").is_none() {
        return Ok(None);
    }
    list(vm, "watchdogs", "watchdog")?
        .into_iter()
        .map(|w| {
            Ok(Watchdog {
                model: text(w, "model")?,
                action: text(w, "action")?,
            })
        })
        .collect::<WireResult<Vec<_>>>()
        .map(Some)
}

fn host_devices(vm: &Value) -> WireResult<Option<Vec<String>>> {
    if at(vm, "host_devices").is_none() {
        return Ok(None);
    }
    let mut names = Vec::new();
    for device in list(vm, "host_devices", "host_device")? {
        names.extend(text(device, "name")?);
    }
    Ok(Some(names))
}

fn snapshots(vm: &Value) -> WireResult<Option<Vec<Snapshot>>> {
    if at(vm, "snapshots").is_none() {
        return Ok(None);
    }
    list(vm, "snapshots", "snapshot")?
        .into_iter()
        .map(|s| {
            Ok(Snapshot {
                id: wire::required_id(s, "snapshot")?,
                description: non_empty_text(s, "description")?,
                snapshot_type: text(s, "snapshot_type")?,
                persist_memory: boolean(s, "persist_memorystate")?,
                date: date(s, "date")?,
            })
        })
        .collect::<WireResult<Vec<_>>>()
        .map(Some)
}

/// The addresses the guest agent reported on a NIC's devices, parsed (the guest may report
/// anything): IPv4 and IPv6 in the engine's order without repeats, written the standard way, and
/// the texts that are no address, as they came.
fn reported_addresses(nic: &Value) -> WireResult<(Vec<String>, Vec<String>, Vec<String>)> {
    let (mut ipv4, mut ipv6, mut invalid) = (Vec::new(), Vec::new(), Vec::new());
    for device in list(nic, "reported_devices", "reported_device")? {
        for ip in list(device, "ips", "ip")? {
            let Some(address) = text(ip, "address")? else {
                continue;
            };
            let family = match untrusted::parse_ip(&address) {
                Some(parsed) if parsed.is_ipv6() => (&mut ipv6, parsed.to_string()),
                Some(parsed) => (&mut ipv4, parsed.to_string()),
                None => (&mut invalid, address),
            };
            let (list, text) = family;
            if !list.contains(&text) {
                list.push(text);
            }
        }
    }
    Ok((ipv4, ipv6, invalid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lookups() -> Lookups {
        let mut lk = Lookups::default();
        lk.add_data_centers(&json!({"data_center": [
            {"name": "Default", "id": "dc1", "href": "/ovirt-engine/api/datacenters/dc1",
             "version": {"major": "4", "minor": "7"},
             "permissions": {"permission": [{"id": "p-dc", "role": {"id": "r2"}, "group": {"id": "g1"}}]}}
        ]}))
        .unwrap();
        // Shaped like MODEL Cluster.java's JSON example.
        lk.add_clusters(&json!({"cluster": [
            {"ballooning_enabled": "false", "cpu": {"architecture": "x86_64", "type": "Intel SandyBridge Family"},
             "ha_reservation": "false", "ksm": {"enabled": "true", "merge_across_nodes": "true"},
             "version": {"major": "4", "minor": "7"},
             "data_center": {"href": "/ovirt-engine/api/datacenters/dc1", "id": "dc1"},
             "name": "Default", "href": "/ovirt-engine/api/clusters/c1", "id": "c1",
             "permissions": {}}
        ]}))
        .unwrap();
        lk.system_permissions =
            permission_ids(&json!({"permission": [{"id": "p-sys"}]}), "").unwrap();
        // Shaped like MODEL Network.java's JSON example.
        lk.add_networks(&json!({"network": [
            {"data_center": {"href": "/ovirt-engine/api/datacenters/dc1", "id": "dc1"}, "mtu": "0",
             "stp": "false", "usages": {"usage": ["vm"]}, "vlan": {"id": "201"},
             "name": "prod", "href": "/ovirt-engine/api/networks/n1", "id": "n1"}
        ]}))
        .unwrap();
        lk.add_vnic_profiles(&json!({"vnic_profile": [
            {"name": "prod", "id": "vp1", "network": {"id": "n1"}, "pass_through": {"mode": "disabled"},
             "port_mirroring": "false", "network_filter": {"id": "nf1"},
             "custom_properties": {"custom_property": [{"name": "queues", "value": "4"}]}}
        ]}))
        .unwrap();
        lk.network_filters = names(
            &json!({"network_filter": [{"name": "vdsm-no-mac-spoofing", "id": "nf1"}]}),
            "network_filter",
        )
        .unwrap();
        lk.resolve_profiles();
        lk.storage_domains = names(
            &json!({"storage_domain": [{"name": "data1", "id": "sd1"}]}),
            "storage_domain",
        )
        .unwrap();
        lk.roles = names(&json!({"role": [{"name": "UserVmManager", "id": "r1"}, {"name": "UserRole", "id": "r2"}]}), "role").unwrap();
        lk.add_users(&json!({"user": [
            {"name": "Alice", "principal": "alice", "user_name": "alice@example.com-authz", "namespace": "*",
             "domain": {"id": "d1", "name": "example.com-authz"}, "domain_entry_id": "x", "id": "u1"}
        ]}))
        .unwrap();
        lk.add_groups(&json!({"group": [{"name": "example.com/Groups/dba", "namespace": "DC=example,DC=com",
                                         "domain": {"id": "d1", "name": "example.com-authz"}, "id": "g1"}]}))
        .unwrap();
        lk
    }

    fn vm(memory: Value, provisioned: Value) -> Value {
        let mut vm = json!({
            "name": "db01", "id": "vm1", "href": "/ovirt-engine/api/vms/vm1",
            "description": "", "status": "up", "type": "server", "memory": memory,
            "memory_policy": {"guaranteed": memory, "ballooning": "true"},
            "cpu": {"architecture": "x86_64", "topology": {"cores": "2", "sockets": "1", "threads": "1"}},
            "cpu_shares": "0", "creation_time": 1490266328973_i64,
            "bios": {"boot_menu": {"enabled": "false"}, "type": "q35_ovmf"},
            "high_availability": {"enabled": "false", "priority": "1"}, "io": {"threads": "1"},
            "os": {"type": "rhel_8x64"}, "usb": {"enabled": "false"},
            "cluster": {"href": "/ovirt-engine/api/clusters/c1", "id": "c1"},
            "host": {"id": "h-unknown"},
            "guest_operating_system": {"architecture": "x86_64", "distribution": "Red Hat Enterprise Linux",
                                       "family": "Linux", "kernel": {"version": {"full_version": "4.18.0"}},
                                       "version": {"full_version": "8.9", "major": "8"}}
        });
        let disks = json!({
            "disk_attachments": {"disk_attachment": [
                {"active": "true", "bootable": "true", "interface": "virtio_scsi", "read_only": "false",
                 "id": "da1", "disk": {"alias": "db01_Disk1", "actual_size": "0", "provisioned_size": provisioned,
                 "format": "cow", "sparse": "true", "shareable": "false", "status": "ok", "storage_type": "image",
                 "storage_domains": {"storage_domain": [{"id": "sd1"}]}, "id": "d1"}},
                {"id": "da2", "interface": "virtio", "disk": {"id": "d2", "storage_type": "lun",
                 "lun_storage": {"logical_units": {"logical_unit": [{"size": "1000"}, {"size": 24}]}}}}
            ]}
        });
        let devices = json!({
            "nics": {"nic": [
                {"name": "nic1", "interface": "virtio", "linked": "true", "plugged": "true",
                 "mac": {"address": "56:6f:85:ae:00:00"}, "vnic_profile": {"id": "vp1"}, "id": "nic1",
                 "reported_devices": {"reported_device": [{"name": "eth0", "type": "network",
                   "ips": {"ip": [{"address": "10.0.0.5", "version": "v4"}, {"address": "fe80::1", "version": "v6"}]}}]}},
                {"name": "nic2", "id": "nic2", "reported_devices": {}}
            ]}
        });
        let access = json!({
            "permissions": {"permission": [
                {"id": "p-own", "role": {"id": "r1"}, "user": {"id": "u1"}, "vm": {"id": "vm1"}},
                {"id": "p-dc", "role": {"id": "r2"}, "group": {"id": "g1"}, "vm": {"id": "vm1"}},
                {"id": "p-sys", "role": {"id": "r2"}, "user": {"id": "u-gone", "href": "/ovirt-engine/api/users/u-gone"}, "vm": {"id": "vm1"}}
            ]},
            "statistics": {"statistic": [
                {"name": "cpu.current.total", "values": {"value": [{"datum": 12.5}]}},
                {"name": "memory.installed", "values": {"value": [{"datum": 4294967296_i64}]}},
                {"name": "elapsed.time", "values": {"value": [{"datum": "1.2E+3"}]}}
            ]},
            "tags": {"tag": [{"name": "prod", "id": "t1"}]}
        });
        let more = json!({
            "snapshots": {"snapshot": [{"id": "s1", "description": "Active VM", "snapshot_type": "active",
                                        "persist_memorystate": "false", "date": 1490266328973_i64}]}
        });
        for part in [disks, devices, access, more] {
            if let (Value::Object(target), Value::Object(source)) = (&mut vm, part) {
                target.extend(source);
            }
        }
        vm
    }

    #[test]
    fn a_vm_maps_to_a_record_with_names_resolved() {
        let lk = lookups();
        let r = lk
            .vm_record(&vm(json!("4294967296"), json!("10737418240")))
            .unwrap();
        assert_eq!(r.schema, 1);
        assert_eq!(r.description, None, "empty description is absent");
        assert_eq!(r.memory_bytes, Some(4294967296));
        assert_eq!(r.memory_guaranteed_bytes, Some(4294967296));
        assert_eq!(r.memory_max_bytes, None);
        assert_eq!(r.memory_ballooning, Some(true));
        assert_eq!(r.cpu.as_ref().unwrap().cores, Some(2));
        assert_eq!(r.cpu.as_ref().unwrap().shares, Some(0));
        assert_eq!(r.creation_time.as_deref(), Some("2017-03-23T10:52:08.973Z"));
        assert_eq!(r.start_time, None);
        assert_eq!(
            r.data_center,
            Some(NamedRef {
                id: "dc1".into(),
                name: Some("Default".into())
            })
        );
        let cluster = r.cluster.as_ref().unwrap();
        assert_eq!(cluster.version.as_deref(), Some("4.7"));
        assert_eq!(cluster.ksm_enabled, Some(true));
        assert_eq!(
            cluster.cpu_type.as_deref(),
            Some("Intel SandyBridge Family")
        );
        assert_eq!(
            r.host,
            Some(NamedRef {
                id: "h-unknown".into(),
                name: None
            }),
            "unknown host: id only"
        );
        assert_eq!(
            r.guest_os.as_ref().unwrap().kernel.as_deref(),
            Some("4.18.0")
        );
        assert_eq!(r.guest_os.as_ref().unwrap().version.as_deref(), Some("8.9"));
        assert_eq!(r.tags, Some(vec!["prod".to_string()]));
        assert_eq!(r.bios_type.as_deref(), Some("q35_ovmf"));
        assert_eq!(r.io_threads, Some(1));

        let disks = r.disks();
        assert_eq!(disks[0].provisioned_bytes, Some(10737418240));
        assert_eq!(disks[0].actual_bytes, Some(0));
        assert_eq!(
            disks[0].storage_domain.as_ref().unwrap().name.as_deref(),
            Some("data1")
        );
        assert_eq!(disks[0].bootable, Some(true));
        assert_eq!(disks[1].lun_size_bytes, Some(1024));
        assert_eq!(disks[1].storage_domain, None);
        assert_eq!(disks[1].bootable, None, "absent stays absent");

        let nics = r.nics();
        assert_eq!(nics[0].mac.as_deref(), Some("56:6f:85:ae:00:00"));
        assert_eq!(nics[0].ipv4, vec!["10.0.0.5"]);
        assert_eq!(nics[0].ipv6, vec!["fe80::1"]);
        let network = nics[0].network.as_ref().unwrap();
        assert_eq!(network.path.as_deref(), Some("Default/prod"));
        assert_eq!(network.vlan, Some(201));
        let profile = nics[0].vnic_profile.as_ref().unwrap();
        assert_eq!(profile.pass_through, Some(false));
        assert_eq!(
            profile.network_filter.as_deref(),
            Some("vdsm-no-mac-spoofing")
        );
        assert_eq!(profile.custom_properties.as_ref().unwrap()[0].value, "4");
        assert_eq!(nics[1].vnic_profile, None, "empty profile");
        assert!(nics[1].ipv4.is_empty());

        let perms = r.permissions();
        assert_eq!(perms[0].inherited_from, None);
        assert_eq!(perms[0].role.name.as_deref(), Some("UserVmManager"));
        assert_eq!(
            perms[0].user.as_ref().unwrap().principal.as_deref(),
            Some("alice")
        );
        assert_eq!(
            perms[0].user.as_ref().unwrap().domain.as_deref(),
            Some("example.com-authz")
        );
        assert_eq!(perms[1].inherited_from, Some(InheritedFrom::DataCenter));
        assert_eq!(
            perms[1].group.as_ref().unwrap().namespace.as_deref(),
            Some("DC=example,DC=com")
        );
        assert_eq!(perms[2].inherited_from, Some(InheritedFrom::System));
        assert_eq!(perms[2].user.as_ref().unwrap().id, "u-gone");

        let stats = r.statistics.as_ref().unwrap();
        assert_eq!(stats.cpu_total_percent, Some(12.5));
        assert_eq!(stats.memory_installed_bytes, Some(4294967296));
        assert_eq!(stats.elapsed_time_seconds, Some(1200));
        assert_eq!(stats.memory_used_bytes, None);
        assert_eq!(r.snapshots.as_ref().unwrap()[0].persist_memory, Some(false));
    }

    #[test]
    fn legacy_numbers_give_the_same_record() {
        // Engines <= 4.2.2 send 64-bit values as JSON numbers (ovirt-web-ui's mock).
        let lk = lookups();
        let new = lk
            .vm_record(&vm(json!("4294967296"), json!("10737418240")))
            .unwrap();
        let old = lk
            .vm_record(&vm(json!(4294967296_i64), json!(10737418240_i64)))
            .unwrap();
        assert_eq!(new, old);
    }

    #[test]
    fn a_bare_vm_has_only_what_the_engine_sent() {
        let lk = Lookups::default();
        let r = lk.vm_record(&json!({"name": "bare", "id": "b1"})).unwrap();
        let value = serde_json::to_value(&r).unwrap();
        assert_eq!(
            value,
            json!({"schema": 1, "id": "b1", "name": "bare", "disks": [], "nics": [], "permissions": []})
        );
    }

    #[test]
    fn a_malformed_vm_names_itself_and_the_field() {
        let lk = lookups();
        let err = lk.vm_record(&vm(json!("much"), json!("1"))).unwrap_err();
        assert!(err.starts_with("vm db01 (vm1): memory:"), "{err}");
        let err = lk.vm_record(&json!({"id": "x"})).unwrap_err();
        assert!(err.contains("without a name"), "{err}");
    }

    #[test]
    fn web_ui_mock_vms_parse() {
        // ovirt-web-ui's 2017 mock: pre-4.2.3 typing, `diskattachments: {}`.
        let mock = json!({"vm": [{"status": "down", "stop_time": 1491921599642_i64, "name": "win1", "id": "123",
            "memory": 1073741824, "memory_policy": {"guaranteed": 1073741824, "max": 4294967296_i64},
            "cpu": {"topology": {"cores": "1", "sockets": "1", "threads": "1"}}, "cpu_shares": "0",
            "stateless": "false", "usb": {"enabled": "false"}, "cluster": {"id": "147"},
            "high_availability": {"enabled": "false", "priority": "1"}, "diskattachments": {}}]});
        let lk = Lookups::default();
        let vms = list(&mock, "", "vm").unwrap();
        let r = lk.vm_record(vms[0]).unwrap();
        assert_eq!(r.memory_max_bytes, Some(4294967296));
        assert_eq!(r.stop_time.as_deref(), Some("2017-04-11T14:39:59.642Z"));
        assert_eq!(r.cluster.as_ref().unwrap().id, "147");
        assert_eq!(r.data_center, None);
    }
}
