//! The liftkit outputs report reads, each decoded into the few fields its section shows; every
//! other field is ignored, so newer outputs still read.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A VM record (ovirt-dump, vm-select, owner-group): what the summary counts.
#[derive(Debug, Clone, Deserialize)]
pub struct Vm {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub owners: Option<Vec<Owner>>,
    #[serde(default)]
    pub target_namespace: Option<String>,
    #[serde(default)]
    pub disks: Option<Vec<Disk>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Owner {
    pub principal: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Disk {
    #[serde(default)]
    pub disk_id: Option<String>,
    #[serde(default)]
    pub attachment_id: Option<String>,
    #[serde(default)]
    pub provisioned_bytes: Option<u64>,
    #[serde(default)]
    pub lun_size_bytes: Option<u64>,
}

/// A capacity-calc row (`--by ...`, the totals row has `total: true`) or a quota record
/// (`--quota`): both carry the per-class PVC bytes, steady and at the copy peak.
#[derive(Debug, Clone, Deserialize)]
pub struct CapacityRow {
    #[serde(default)]
    pub total: bool,
    #[serde(default)]
    pub pvc_bytes: BTreeMap<String, u64>,
    #[serde(default)]
    pub peak_pvc_bytes: BTreeMap<String, u64>,
    #[serde(default)]
    pub available_bytes: BTreeMap<String, u64>,
    #[serde(default)]
    pub vms: Option<u64>,
    #[serde(default)]
    pub vm_count: Option<u64>,
    /// The group's key columns (namespace, owner, storage_class, ...) among the other fields.
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

/// The key columns capacity-calc's `--by` writes, in its order (capacity-calc's `Key::column`;
/// `vm` and `disk` are its per-VM and per-disk keys).
pub const CAPACITY_KEYS: [&str; 8] = [
    "namespace",
    "owner",
    "data_center",
    "cluster",
    "storage_domain",
    "storage_class",
    "vm",
    "disk",
];

impl CapacityRow {
    /// The group's name: its key columns joined by ` / `.
    pub fn label(&self) -> String {
        let parts: Vec<&str> = CAPACITY_KEYS
            .iter()
            .filter_map(|k| self.rest.get(*k).and_then(Value::as_str))
            .collect();
        if parts.is_empty() {
            "(no key)".into()
        } else {
            parts.join(" / ")
        }
    }
}

/// An ip-budget line: a source-network or target row of the report, or an `--allocate` record.
#[derive(Debug, Clone, Deserialize)]
pub struct AddressRow {
    #[serde(default)]
    pub report: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub subnet: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub reserved: Option<u64>,
    #[serde(default)]
    pub needed: Option<u64>,
    #[serde(default)]
    pub free: Option<u64>,
    #[serde(default)]
    pub shortfall: Option<u64>,
    /// Allocation records only.
    #[serde(default)]
    pub vm: Option<String>,
    #[serde(default)]
    pub changed: Option<bool>,
}

/// plan-gen's findings and vm-verify's checks, as owner-notice reads them too.
pub use common::jsonl::read_all;
pub use common::record::{Check, Finding};

/// plan-run's events, read by plan-run's own reader.
pub use plan_run::events::{Event, read_events};
