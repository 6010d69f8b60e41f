//! The VM record (schema 1): one self-contained JSON object per VM, as ovirt-dump writes it and every
//! later tool reads it. Names are resolved, sizes are bytes, times are RFC 3339. A field the engine
//! did not report is absent, never invented. Unknown fields are kept (`extra`), so records written by
//! a newer tool pass through an older one untouched. Documented in man/liftkit-vm-record.5.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use serde_with::skip_serializing_none;
use std::borrow::Cow;

/// The version of the record layout; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VmRecord {
    pub schema: u32,
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub comment: Option<String>,
    /// The version of the engine the record was exported from (`4.5.6-1.el8`): some of
    /// Forklift's checks depend on it.
    pub engine_version: Option<String>,

    // Placement.
    pub data_center: Option<NamedRef>,
    pub cluster: Option<Cluster>,
    pub host: Option<NamedRef>,
    pub template: Option<NamedRef>,
    pub tags: Option<Vec<String>>,
    pub fqdn: Option<String>,

    // State and activity.
    pub status: Option<String>,
    pub status_detail: Option<String>,
    pub stop_reason: Option<String>,
    pub creation_time: Option<String>,
    pub start_time: Option<String>,
    pub stop_time: Option<String>,
    pub statistics: Option<Statistics>,

    // Sizing.
    #[serde(rename = "type")]
    pub vm_type: Option<String>,
    #[serde(default, deserialize_with = "crate::size::field::memory_bytes")]
    pub memory_bytes: Option<u64>,
    #[serde(
        default,
        deserialize_with = "crate::size::field::memory_guaranteed_bytes"
    )]
    pub memory_guaranteed_bytes: Option<u64>,
    #[serde(default, deserialize_with = "crate::size::field::memory_max_bytes")]
    pub memory_max_bytes: Option<u64>,
    pub memory_ballooning: Option<bool>,
    pub cpu: Option<Cpu>,
    pub os_type: Option<String>,
    pub guest_os: Option<GuestOs>,
    pub bios_type: Option<String>,
    pub bios_boot_menu: Option<bool>,
    pub origin: Option<String>,
    pub stateless: Option<bool>,
    pub delete_protected: Option<bool>,

    // What Forklift's oVirt validation reads.
    pub high_availability: Option<bool>,
    pub high_availability_priority: Option<i64>,
    pub usb_enabled: Option<bool>,
    pub display_type: Option<String>,
    pub io_threads: Option<u32>,
    pub storage_error_resume_behaviour: Option<String>,
    pub placement_policy: Option<PlacementPolicy>,
    pub custom_properties: Option<Vec<NameValue>>,
    pub has_illegal_images: Option<bool>,
    pub tpm_enabled: Option<bool>,
    pub watchdogs: Option<Vec<Watchdog>>,
    pub host_devices: Option<Vec<String>>,
    pub snapshots: Option<Vec<Snapshot>>,

    // Devices and permissions.
    pub disks: Option<Vec<Disk>>,
    pub nics: Option<Vec<Nic>>,
    pub permissions: Option<Vec<Permission>>,

    // Added by owner-group.
    pub owners: Option<Vec<Owner>>,
    pub target_namespace: Option<String>,

    /// Fields this version does not know, kept as they came.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedRef {
    pub id: String,
    pub name: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    pub id: String,
    pub name: Option<String>,
    pub ha_reservation: Option<bool>,
    pub ksm_enabled: Option<bool>,
    pub bios_type: Option<String>,
    pub cpu_type: Option<String>,
    pub version: Option<String>,
}

/// What the engine reports of use (GET /vms/{id}/statistics), where it reports it.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Statistics {
    pub elapsed_time_seconds: Option<u64>,
    pub cpu_total_percent: Option<f64>,
    pub cpu_guest_percent: Option<f64>,
    pub memory_installed_bytes: Option<u64>,
    pub memory_used_bytes: Option<u64>,
    pub network_total_percent: Option<f64>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    pub sockets: Option<u32>,
    pub cores: Option<u32>,
    pub threads: Option<u32>,
    pub shares: Option<u32>,
    pub custom_model: Option<String>,
    pub pinning_policy: Option<String>,
    /// vCPU pinning (cpu_tune.vcpu_pins): `vcpu` to a host CPU set.
    pub pinning: Option<Vec<CpuPin>>,
}

impl Cpu {
    /// vCPUs: sockets x cores x threads, each defaulting to 1 when the engine left it out (at
    /// most u32::MAX: a record may say anything, and no product may overflow).
    pub fn vcpus(&self) -> u32 {
        self.sockets
            .unwrap_or(1)
            .saturating_mul(self.cores.unwrap_or(1))
            .saturating_mul(self.threads.unwrap_or(1))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuPin {
    pub vcpu: u32,
    pub cpu_set: String,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestOs {
    pub architecture: Option<String>,
    pub codename: Option<String>,
    pub distribution: Option<String>,
    pub family: Option<String>,
    pub kernel: Option<String>,
    pub version: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementPolicy {
    pub affinity: Option<String>,
    pub hosts: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watchdog {
    pub model: Option<String>,
    pub action: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub snapshot_type: Option<String>,
    pub persist_memory: Option<bool>,
    pub date: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    pub attachment_id: String,
    pub disk_id: Option<String>,
    pub alias: Option<String>,
    pub interface: Option<String>,
    pub bootable: Option<bool>,
    pub active: Option<bool>,
    pub read_only: Option<bool>,
    pub uses_scsi_reservation: Option<bool>,
    pub logical_name: Option<String>,
    pub shareable: Option<bool>,
    pub status: Option<String>,
    pub format: Option<String>,
    pub sparse: Option<bool>,
    /// image, lun, cinder, managed_block_storage.
    pub storage_type: Option<String>,
    pub content_type: Option<String>,
    #[serde(default, deserialize_with = "crate::size::field::provisioned_bytes")]
    pub provisioned_bytes: Option<u64>,
    #[serde(default, deserialize_with = "crate::size::field::actual_bytes")]
    pub actual_bytes: Option<u64>,
    pub storage_domain: Option<NamedRef>,
    /// For LUN disks: the size of the logical unit(s).
    #[serde(default, deserialize_with = "crate::size::field::lun_size_bytes")]
    pub lun_size_bytes: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Disk {
    pub fn is_lun(&self) -> bool {
        self.storage_type.as_deref() == Some("lun")
    }

    /// The bytes Forklift copies of an image disk (`footprint::copied_bytes`).
    pub fn copied_bytes(&self) -> u64 {
        crate::footprint::copied_bytes(self.provisioned_bytes, self.actual_bytes)
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Nic {
    pub id: String,
    pub name: Option<String>,
    pub mac: Option<String>,
    pub interface: Option<String>,
    pub plugged: Option<bool>,
    pub linked: Option<bool>,
    pub vnic_profile: Option<VnicProfile>,
    pub network: Option<Network>,
    /// Guest-reported addresses (empty when the guest agent reported none).
    #[serde(default)]
    pub ipv4: Vec<String>,
    #[serde(default)]
    pub ipv6: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VnicProfile {
    pub id: String,
    pub name: Option<String>,
    pub pass_through: Option<bool>,
    pub port_mirroring: Option<bool>,
    pub network_filter: Option<String>,
    pub qos: Option<String>,
    pub custom_properties: Option<Vec<NameValue>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: Option<String>,
    pub vlan: Option<u32>,
    pub data_center: Option<NamedRef>,
    /// Forklift's name for it: `<data center>/<network>`.
    pub path: Option<String>,
}

/// Where an inherited permission was granted; absent when it is on the VM itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InheritedFrom {
    Cluster,
    DataCenter,
    System,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    pub id: String,
    pub role: NamedRef,
    pub user: Option<User>,
    pub group: Option<Group>,
    pub inherited_from: Option<InheritedFrom>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    /// The login name without the authz profile (`alice`).
    pub principal: Option<String>,
    /// `<principal>@<authz profile>` (`alice@example.com-authz`).
    pub user_name: Option<String>,
    pub domain: Option<String>,
    pub name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub domain: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerKind {
    User,
    Group,
}

/// An owner as owner-group decides it: a user or group holding an ownership role on the VM itself.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Owner {
    pub kind: OwnerKind,
    /// The name without its domain (`alice`, `dba-team`): what namespaces are named after.
    pub name: String,
    /// The full oVirt principal (`alice@example.com`, a group's `name`), for user mapping.
    pub principal: String,
    pub domain: Option<String>,
    pub roles: Vec<String>,
}

impl VmRecord {
    /// Checks what every tool relies on: the schema version.
    pub fn check_schema(&self) -> Result<(), String> {
        check_schema(self.schema, &self.name)
    }

    pub fn disks(&self) -> &[Disk] {
        self.disks.as_deref().unwrap_or(&[])
    }

    pub fn nics(&self) -> &[Nic] {
        self.nics.as_deref().unwrap_or(&[])
    }

    /// The namespace owner-group gave the VM, checked for what every later tool needs: there is
    /// one, and it is a valid namespace name (an RFC 1123 label). The error names the VM; the
    /// caller adds where the record came from.
    pub fn checked_target_namespace(&self) -> Result<&str, String> {
        match self.target_namespace.as_deref() {
            None => Err(format!(
                "VM {} has no target_namespace (run owner-group first)",
                self.name
            )),
            Some(ns) if !crate::names::is_rfc1123_label(ns) => Err(format!(
                "VM {}: target_namespace {ns:?} is not a valid namespace name",
                self.name
            )),
            Some(ns) => Ok(ns),
        }
    }

    /// What Forklift copies of the VM: [`Disk::copied_bytes`] of every disk but the LUNs (they are
    /// attached, not copied), summed without overflow (`size::sum_bytes`).
    pub fn copied_bytes(&self) -> u64 {
        let disks = self.disks().iter().filter(|d| !d.is_lun());
        crate::size::sum_bytes(disks.map(Disk::copied_bytes))
    }

    pub fn permissions(&self) -> &[Permission] {
        self.permissions.as_deref().unwrap_or(&[])
    }

    pub fn vcpus(&self) -> u32 {
        self.cpu.as_ref().map(Cpu::vcpus).unwrap_or(1)
    }
}

/// Reads a line as a VM record, with an error that says what it was instead.
pub fn parse_vm_record(value: Value) -> Result<VmRecord, String> {
    let looks_like_vm =
        value.is_object() && value.get("schema").is_some() && value.get("id").is_some();
    if !looks_like_vm {
        let shown: String = value.to_string().chars().take(60).collect();
        return Err(format!(
            "expected a VM record (with schema, id, name), found {shown}"
        ));
    }
    let record: VmRecord =
        serde_json::from_value(value).map_err(|e| format!("not a valid VM record: {e}"))?;
    record.check_schema()?;
    Ok(record)
}

fn check_schema(schema: u32, name: &str) -> Result<(), String> {
    if schema != SCHEMA_VERSION {
        return Err(format!(
            "VM record {name} has schema {schema}, this tool reads schema {SCHEMA_VERSION}"
        ));
    }
    Ok(())
}

/// A partial view of a VM record: the fields one tool reads, borrowed from the line where they
/// need no unescaping. Decoding a view skips every other field without building it, which is what
/// lets the streaming tools run at the speed of the parser rather than of the allocator.
pub trait VmView {
    fn schema(&self) -> u32;
    fn name(&self) -> &str;
}

/// Decodes a VM record line into the view `T`, with the errors [`parse_vm_record`] gives (the
/// line's other fields are not checked, they pass through a tool untouched, except for liftkit's
/// one rule on keys: no object names a key twice, see [`crate::jsonl::parse_value`]).
pub fn parse_vm_view<'a, T: Deserialize<'a> + VmView>(line: &'a str) -> Result<T, String> {
    let typed = if line.starts_with('{') {
        crate::jsonl::from_str_strict::<T>(line)
    } else {
        Err(serde::de::Error::custom("not an object"))
    };
    match typed {
        Ok(view) => {
            check_schema(view.schema(), view.name())?;
            Ok(view)
        }
        // Only on bad lines: find out what the line is to say so.
        Err(typed_error) => {
            let value: Value =
                serde_json::from_str(line).map_err(|e| crate::jsonl::describe_json_error(&e))?;
            parse_vm_record(value)?;
            Err(format!(
                "not a valid VM record: {}",
                crate::jsonl::describe_json_error(&typed_error)
            ))
        }
    }
}

/// Whether a field is in a record at all (even as `null`): `#[serde(default)] field: Present`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Present(pub bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer)?;
        Ok(Present(true))
    }
}

/// `{"id", "name"}` as a view.
#[derive(Debug, Clone, Deserialize)]
pub struct RefView<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
}

impl RefView<'_> {
    /// The name, or the id when the engine gave no name.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// A permission as a view (see [`Permission`]).
#[derive(Debug, Clone, Deserialize)]
pub struct PermissionView<'a> {
    #[serde(borrow)]
    pub role: RefView<'a>,
    #[serde(borrow, default)]
    pub user: Option<UserView<'a>>,
    #[serde(borrow, default)]
    pub group: Option<GroupView<'a>>,
    #[serde(default)]
    pub inherited_from: Option<InheritedFrom>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UserView<'a> {
    #[serde(borrow, default)]
    pub principal: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub user_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub domain: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub email: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GroupView<'a> {
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub domain: Option<Cow<'a, str>>,
}

/// A plan-gen preflight finding (its `--report`), as owner-notice and report read it. plan-gen
/// writes every field; `vm_id` and `vm_name` default to empty for a reader that needs only one.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Finding {
    #[serde(default)]
    pub vm_id: String,
    #[serde(default)]
    pub vm_name: String,
    #[serde(default)]
    pub target_namespace: Option<String>,
    pub concern_id: String,
    pub category: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub assessment: Option<String>,
    #[serde(default)]
    pub left_out: bool,
}

/// An ip-budget `--allocate` record: one NIC's old and new addresses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Allocation {
    pub vm_id: String,
    #[serde(default)]
    pub nic: Option<String>,
    #[serde(default)]
    pub mac: Option<String>,
    #[serde(default)]
    pub source_network: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub old_ipv4: Vec<String>,
    #[serde(default)]
    pub old_ipv6: Vec<String>,
    #[serde(default)]
    pub new_ipv4: Option<String>,
    #[serde(default)]
    pub new_ipv6: Option<String>,
    #[serde(default)]
    pub changed: bool,
    #[serde(default)]
    pub fqdn: Option<String>,
}

/// A vm-verify finding: one check of one migrated VM.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Check {
    pub vm: String,
    pub check: String,
    pub ok: bool,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub expected: Option<Value>,
    #[serde(default)]
    pub actual: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let line = json!({"schema": 1, "id": "x", "name": "vm1", "future_field": {"a": [1]},
                          "nics": [{"id": "n1", "ipv4": [], "ipv6": [], "future_nic_field": true}]});
        let record = parse_vm_record(line.clone()).unwrap();
        let back = serde_json::to_value(&record).unwrap();
        assert_eq!(back["future_field"], line["future_field"]);
        assert_eq!(back["nics"][0]["future_nic_field"], true);
    }

    #[test]
    fn absent_fields_stay_absent() {
        let record = parse_vm_record(json!({"schema": 1, "id": "x", "name": "vm1"})).unwrap();
        let back = serde_json::to_value(&record).unwrap();
        assert_eq!(back, json!({"schema": 1, "id": "x", "name": "vm1"}));
    }

    #[test]
    fn other_objects_are_rejected_with_a_reason() {
        let err = parse_vm_record(json!({"kind": "Namespace"})).unwrap_err();
        assert!(err.starts_with("expected a VM record"), "{err}");
        let err = parse_vm_record(json!({"schema": 2, "id": "x", "name": "n"})).unwrap_err();
        assert!(err.contains("schema 2"), "{err}");
    }

    #[test]
    fn report_records_decode_with_their_defaults() {
        let finding: Finding = serde_json::from_value(json!({"vm_id": "v1", "vm_name": "db",
            "target_namespace": "ns", "concern_id": "VMNetworksNotMapped", "category": "Critical",
            "label": "l", "assessment": "a", "left_out": true, "newer": 1}))
        .unwrap();
        assert_eq!(finding.vm_id, "v1");
        assert!(finding.left_out);
        let bare: Finding = serde_json::from_value(
            json!({"vm_name": "db", "concern_id": "c", "category": "Warning"}),
        )
        .unwrap();
        assert_eq!(
            (bare.vm_id.as_str(), bare.left_out, bare.label),
            ("", false, None)
        );
        let allocation: Allocation = serde_json::from_value(json!({"vm_id": "v1",
            "old_ipv4": ["10.0.0.5"], "new_ipv4": "10.10.0.60", "new_ipv6": null, "changed": true}))
        .unwrap();
        assert_eq!(allocation.old_ipv4, ["10.0.0.5"]);
        assert_eq!(allocation.new_ipv6, None);
        assert!(serde_json::from_value::<Allocation>(json!({"nic": "eth0"})).is_err());
        let check: Check =
            serde_json::from_value(json!({"vm": "db", "check": "dns", "ok": false, "actual": [1]}))
                .unwrap();
        assert_eq!((check.ok, check.actual), (false, Some(json!([1]))));
        assert!(serde_json::from_value::<Check>(json!({"vm": "db", "check": "dns"})).is_err());
    }

    #[test]
    fn a_vm_copies_its_image_disks_not_its_luns() {
        let record: VmRecord = serde_json::from_value(json!({"schema": 1, "id": "v", "name": "n",
            "disks": [
                {"attachment_id": "a1", "provisioned_bytes": 10, "actual_bytes": 4},
                {"attachment_id": "a2", "provisioned_bytes": 3, "actual_bytes": 7},
                {"attachment_id": "a3", "storage_type": "lun", "lun_size_bytes": 1000}]}))
        .unwrap();
        // max(10, 4) + max(3, 7); the LUN is not copied.
        assert_eq!(record.copied_bytes(), 17);
    }

    #[test]
    fn a_target_namespace_must_be_there_and_a_namespace_name() {
        let mut record: VmRecord =
            serde_json::from_value(json!({"schema": 1, "id": "v", "name": "db"})).unwrap();
        assert_eq!(
            record.checked_target_namespace().unwrap_err(),
            "VM db has no target_namespace (run owner-group first)"
        );
        record.target_namespace = Some("Team_A".into());
        assert_eq!(
            record.checked_target_namespace().unwrap_err(),
            "VM db: target_namespace \"Team_A\" is not a valid namespace name"
        );
        record.target_namespace = Some("team-a".into());
        assert_eq!(record.checked_target_namespace(), Ok("team-a"));
    }
}
