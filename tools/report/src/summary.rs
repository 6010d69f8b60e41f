//! The summary section: how many VMs, owners, namespaces and disk bytes the migration moves, and
//! which VMs are left out and why (not selected, blocked by the preflight, failed in the run).

use crate::inputs::{Finding, Vm};
use common::size::human_bytes;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Serialize)]
pub struct Summary {
    pub vms: usize,
    /// None when the records carry no owners (not passed through owner-group).
    pub owners: Option<usize>,
    pub namespaces: Option<usize>,
    pub disks: usize,
    pub disk_bytes: String,
    pub inventory: Option<usize>,
    /// Reasons with their VM counts, most VMs first.
    pub reasons: Vec<Reason>,
    pub left_out: Vec<LeftOut>,
}

#[derive(Debug, Serialize)]
pub struct Reason {
    pub why: String,
    pub vms: usize,
    /// `namespace/vm` (with the detail, if any), the first NAMES_SHOWN.
    pub names: Vec<String>,
    pub more: usize,
}

/// VM names listed per reason before "and N more".
const NAMES_SHOWN: usize = 40;

#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct LeftOut {
    pub vm: String,
    pub namespace: String,
    pub why: String,
    pub detail: String,
}

pub const NOT_SELECTED: &str = "not selected (in the inventory, not in --vms)";
pub const BLOCKED: &str = "blocked by the preflight (Critical finding)";
pub const FAILED: &str = "failed in the migration";

/// `vms` are the records moved (`--vms`, or the inventory when only it is given); `inventory` the
/// full export; `failed` the VMs a live run reported failed (name, namespace, error).
pub fn build(
    vms: &[Vm],
    inventory: Option<&[Vm]>,
    findings: &[Finding],
    failed: &[(String, String, String)],
) -> Summary {
    let owners: Option<BTreeSet<&str>> = vms.iter().try_fold(BTreeSet::new(), |mut set, vm| {
        set.extend(vm.owners.as_ref()?.iter().map(|o| o.principal.as_str()));
        Some(set)
    });
    let namespaces: BTreeSet<&str> = vms
        .iter()
        .filter_map(|vm| vm.target_namespace.as_deref())
        .collect();
    // A shared disk (one disk id on several VMs) is moved once.
    let mut disks: BTreeMap<&str, u64> = BTreeMap::new();
    for disk in vms.iter().flat_map(|vm| vm.disks.iter().flatten()) {
        let id = disk.disk_id.as_deref().or(disk.attachment_id.as_deref());
        let bytes = disk.provisioned_bytes.or(disk.lun_size_bytes).unwrap_or(0);
        disks.insert(id.unwrap_or(""), bytes);
    }
    let mut left_out = Vec::new();
    if let Some(inventory) = inventory {
        let chosen: BTreeSet<&str> = vms.iter().map(|vm| vm.id.as_str()).collect();
        for vm in inventory
            .iter()
            .filter(|vm| !chosen.contains(vm.id.as_str()))
        {
            left_out.push(LeftOut {
                vm: vm.name.clone(),
                namespace: vm.target_namespace.clone().unwrap_or_default(),
                why: NOT_SELECTED.into(),
                detail: String::new(),
            });
        }
    }
    left_out.extend(blocked(findings));
    for (vm, namespace, error) in failed {
        left_out.push(LeftOut {
            vm: vm.clone(),
            namespace: namespace.clone(),
            why: FAILED.into(),
            detail: error.clone(),
        });
    }
    left_out.sort();
    Summary {
        vms: vms.len(),
        owners: owners.map(|o| o.len()),
        namespaces: (!namespaces.is_empty()).then_some(namespaces.len()),
        disks: disks.len(),
        disk_bytes: human_bytes(disks.values().sum()),
        inventory: inventory.map(<[Vm]>::len),
        reasons: reasons(&left_out),
        left_out,
    }
}

/// VMs plan-gen left out, each once, with the Critical concerns that blocked it.
fn blocked(findings: &[Finding]) -> Vec<LeftOut> {
    let mut by_vm: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for f in findings.iter().filter(|f| f.left_out) {
        let key = (
            f.vm_name.as_str(),
            f.target_namespace.as_deref().unwrap_or(""),
        );
        let concerns = by_vm.entry(key).or_default();
        if f.category == "Critical" && !concerns.contains(&f.concern_id.as_str()) {
            concerns.push(&f.concern_id);
        }
    }
    by_vm
        .into_iter()
        .map(|((vm, namespace), concerns)| LeftOut {
            vm: vm.into(),
            namespace: namespace.into(),
            why: BLOCKED.into(),
            detail: concerns.join(", "),
        })
        .collect()
}

fn reasons(left_out: &[LeftOut]) -> Vec<Reason> {
    let mut by_why: BTreeMap<&str, Vec<&LeftOut>> = BTreeMap::new();
    for l in left_out {
        by_why.entry(&l.why).or_default().push(l);
    }
    let mut reasons: Vec<Reason> = by_why
        .into_iter()
        .map(|(why, vms)| Reason {
            why: why.into(),
            vms: vms.len(),
            more: vms.len().saturating_sub(NAMES_SHOWN),
            names: vms.iter().take(NAMES_SHOWN).map(|l| name(l)).collect(),
        })
        .collect();
    reasons.sort_by(|a, b| b.vms.cmp(&a.vms).then(a.why.cmp(&b.why)));
    reasons
}

fn name(l: &LeftOut) -> String {
    let vm = if l.namespace.is_empty() {
        l.vm.clone()
    } else {
        format!("{}/{}", l.namespace, l.vm)
    };
    if l.detail.is_empty() {
        vm
    } else {
        format!("{vm} ({})", l.detail)
    }
}
