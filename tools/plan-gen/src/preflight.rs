//! The offline preflight: Forklift's oVirt concerns on each VM, and the plan blockers Forklift
//! reports (unmapped networks and storage, several NICs on the pod network, two NICs on one network
//! attachment, MAC addresses used twice). Decides which VMs go into plans.

use crate::Input;
use crate::concerns::{self, Category};
use common::mapping::{Mappings, NetworkTarget, SourceObject, StorageTarget};
use common::record::VmRecord;
use common::{Error, Result};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One preflight finding, as the report writes it (one JSON line each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub vm_id: String,
    pub vm_name: String,
    pub target_namespace: String,
    /// Forklift's concern id (`ovirt.disk.illegal_or_locked_status`) or plan condition type
    /// (`VMNetworksNotMapped`).
    pub concern_id: String,
    pub category: Category,
    pub label: String,
    pub assessment: String,
    /// The VM is not in any plan because of a Critical finding.
    pub left_out: bool,
}

/// A VM that goes into a plan.
pub struct Vm {
    pub record: VmRecord,
    pub namespace: String,
    /// What its disks need on the target: per non-LUN disk, the larger of provisioned and actual
    /// size (Forklift's DataVolume request).
    pub disk_bytes: u64,
}

/// A network or storage domain the planned VMs use.
pub struct Used<D> {
    pub name: Option<String>,
    /// `DC/name (id)`, for people.
    pub display: String,
    pub destination: Option<D>,
    pub vms: BTreeSet<String>,
}

pub struct Checked {
    pub total: usize,
    pub vms: Vec<Vm>,
    pub findings: Vec<Finding>,
    pub left_out: BTreeSet<String>,
    pub networks: BTreeMap<String, Used<NetworkTarget>>,
    pub storage: BTreeMap<String, Used<StorageTarget>>,
}

pub const NETWORKS_NOT_MAPPED: &str = "VMNetworksNotMapped";
pub const STORAGE_NOT_MAPPED: &str = "VMStorageNotMapped";
pub const STORAGE_NOT_SUPPORTED: &str = "VMStorageNotSupported";
pub const MULTIPLE_POD: &str = "VMMultiplePodNetworkMappings";
pub const DUPLICATE_NAD: &str = "VMDuplicateNADMappings";
pub const MAC_CONFLICTS: &str = "MacConflicts";

/// The first engine version whose direct LUN disks Forklift migrates.
const DIRECT_LUN_SINCE: [u32; 4] = [4, 5, 2, 1];

/// Whether an engine of `version` (`4.5.6-1.el8`, `4.4.10.7`) is at least 4.5.2.1; `None` when the
/// version does not start with a number.
pub fn supports_direct_lun(version: &str) -> Option<bool> {
    let numeric: String = version
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let parts: Vec<u32> = numeric
        .split('.')
        .map_while(|p| p.parse::<u32>().ok())
        .collect();
    if parts.is_empty() {
        return None;
    }
    let mut padded = [0u32; 4];
    for (slot, part) in padded.iter_mut().zip(&parts) {
        *slot = *part;
    }
    // Parts beyond the fourth only matter when the first four are equal, and then it is newer.
    Some(padded >= DIRECT_LUN_SINCE)
}

/// Rejects input that names one VM twice (Forklift's DuplicateVM would block the plan).
pub fn reject_duplicates(records: &[Input]) -> Result<()> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for input in records {
        if let Some(first) = seen.insert(&input.record.id, &input.location) {
            return Err(Error::data(format!(
                "{}: VM {} ({}) appears twice (also at {first}); Forklift would report DuplicateVM",
                input.location, input.record.name, input.record.id
            )));
        }
    }
    Ok(())
}

struct VmNetworks {
    /// (network id, destination) per NIC with a network; None when unmapped.
    nics: Vec<(String, Option<NetworkTarget>, Option<String>)>,
    storage: Vec<(String, Option<StorageTarget>)>,
}

pub fn check(mut records: Vec<Input>, maps: &Mappings, include_blocked: bool) -> Checked {
    // Sorted by namespace, name and id: findings, plans and maps do not depend on input order.
    records.sort_by(|a, b| {
        let key = |i: &Input| {
            (
                i.record.target_namespace.clone(),
                i.record.name.clone(),
                i.record.id.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    let total = records.len();
    let mut findings: Vec<Finding> = Vec::new();
    let mut networks: BTreeMap<String, Used<NetworkTarget>> = BTreeMap::new();
    let mut storage: BTreeMap<String, Used<StorageTarget>> = BTreeMap::new();
    let mut resolved: Vec<VmNetworks> = Vec::new();

    for input in &records {
        let vm = &input.record;
        let namespace = vm.target_namespace.clone().unwrap_or_default();
        let finding = |id: &str, category: Category, label: &str, assessment: String| Finding {
            vm_id: vm.id.clone(),
            vm_name: vm.name.clone(),
            target_namespace: namespace.clone(),
            concern_id: id.to_string(),
            category,
            label: label.to_string(),
            assessment,
            left_out: false,
        };
        for concern in concerns::evaluate(vm) {
            findings.push(finding(
                concern.id,
                concern.category,
                concern.label,
                concern.assessment,
            ));
        }

        let luns = vm.disks().iter().filter(|d| d.is_lun()).count();
        let version = vm.engine_version.as_deref();
        match version.and_then(supports_direct_lun) {
            _ if luns == 0 => {}
            Some(true) => {}
            Some(false) => findings.push(finding(
                STORAGE_NOT_SUPPORTED,
                Category::Critical,
                "Direct LUN disks need a newer engine",
                format!(
                    "{luns} direct LUN disk(s); Forklift migrates them from oVirt engine 4.5.2.1 on, this engine is {}",
                    version.unwrap_or_default()
                ),
            )),
            // Not known: the record predates engine_version, or the version does not parse.
            None => findings.push(finding(
                STORAGE_NOT_SUPPORTED,
                Category::Warning,
                "Direct LUN disks: engine version unknown",
                format!(
                    "{luns} direct LUN disk(s); Forklift migrates them from oVirt engine 4.5.2.1 on, and the record gives no engine version it can be checked against ({}): export it again with ovirt-dump",
                    version.map_or("no engine_version".to_string(), |v| format!("{v:?}"))
                ),
            )),
        }

        let mut mine = VmNetworks {
            nics: Vec::new(),
            storage: Vec::new(),
        };
        for nic in vm.nics() {
            let Some(network) = &nic.network else {
                continue;
            };
            let dc = network.data_center.as_ref().and_then(|d| d.name.as_deref());
            let object = SourceObject {
                id: Some(&network.id),
                data_center: dc,
                name: network.name.as_deref(),
            };
            let destination = maps.network.lookup(&object).map(|r| r.destination.clone());
            let display = describe(dc, network.name.as_deref(), &network.id);
            networks.entry(network.id.clone()).or_insert_with(|| Used {
                name: network.name.clone(),
                display,
                destination: destination.clone(),
                vms: BTreeSet::new(),
            });
            mine.nics.push((
                network.id.clone(),
                destination,
                nic.mac.as_ref().map(|m| m.to_ascii_lowercase()),
            ));
        }
        let vm_dc = vm.data_center.as_ref().and_then(|d| d.name.as_deref());
        for disk in vm.disks() {
            // LUN disks are not copied: they need no storage mapping.
            if disk.is_lun() {
                continue;
            }
            let Some(domain) = &disk.storage_domain else {
                continue;
            };
            let object = SourceObject {
                id: Some(&domain.id),
                data_center: vm_dc,
                name: domain.name.as_deref(),
            };
            let destination = maps.storage.lookup(&object).map(|r| r.destination.clone());
            let display = describe(vm_dc, domain.name.as_deref(), &domain.id);
            storage.entry(domain.id.clone()).or_insert_with(|| Used {
                name: domain.name.clone(),
                display,
                destination: destination.clone(),
                vms: BTreeSet::new(),
            });
            mine.storage.push((domain.id.clone(), destination));
        }

        let unmapped_nets: BTreeSet<&str> = mine
            .nics
            .iter()
            .filter(|n| n.1.is_none())
            .map(|n| networks[&n.0].display.as_str())
            .collect();
        if !unmapped_nets.is_empty() {
            let list = unmapped_nets.into_iter().collect::<Vec<_>>().join(", ");
            findings.push(finding(
                NETWORKS_NOT_MAPPED,
                Category::Critical,
                "Networks not mapped",
                format!("no --network-map rule covers {list}"),
            ));
        }
        let unmapped_storage: BTreeSet<&str> = mine
            .storage
            .iter()
            .filter(|s| s.1.is_none())
            .map(|s| storage[&s.0].display.as_str())
            .collect();
        if !unmapped_storage.is_empty() {
            let list = unmapped_storage.into_iter().collect::<Vec<_>>().join(", ");
            findings.push(finding(
                STORAGE_NOT_MAPPED,
                Category::Critical,
                "Storage not mapped",
                format!("no --storage-map rule covers {list}"),
            ));
        }
        let pods = mine
            .nics
            .iter()
            .filter(|n| n.1 == Some(NetworkTarget::Pod))
            .count();
        if pods > 1 {
            findings.push(finding(
                MULTIPLE_POD,
                Category::Critical,
                "Several NICs on the pod network",
                format!("{pods} NICs map to the pod network; at most one may"),
            ));
        }
        let mut nads: BTreeMap<String, usize> = BTreeMap::new();
        for (_, destination, _) in &mine.nics {
            if let Some(NetworkTarget::Multus { namespace, name }) = destination {
                *nads.entry(format!("{namespace}/{name}")).or_default() += 1;
            }
        }
        let shared: Vec<String> = nads
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(nad, n)| format!("{nad} ({n} NICs)"))
            .collect();
        if !shared.is_empty() {
            findings.push(finding(
                DUPLICATE_NAD,
                Category::Critical,
                "Several NICs on one network attachment",
                format!(
                    "NICs share the network attachment {}; the VM would not boot",
                    shared.join(", ")
                ),
            ));
        }
        resolved.push(mine);
    }

    // MAC addresses kept by the target VMs must be unique (NICs mapped to `ignored` are dropped).
    let mut macs: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, mine) in resolved.iter().enumerate() {
        for (_, destination, mac) in &mine.nics {
            if let Some(mac) = mac
                && destination.as_ref() != Some(&NetworkTarget::Ignored)
            {
                macs.entry(mac.as_str()).or_default().push(index);
            }
        }
    }
    let mut conflicts: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for (mac, users) in &macs {
        if users.len() > 1 {
            for &user in users {
                conflicts.entry(user).or_default().insert(mac.to_string());
            }
        }
    }
    for (index, macs) in conflicts {
        let vm = &records[index].record;
        let mac_list: Vec<&str> = macs.iter().map(String::as_str).collect();
        let others: BTreeSet<&str> = macs
            .iter()
            .flat_map(|m| self_excluded(&resolved, &records, m, index))
            .collect();
        let with = if others.is_empty() {
            "another NIC of this VM".to_string()
        } else {
            others.into_iter().collect::<Vec<_>>().join(", ")
        };
        findings.push(Finding {
            vm_id: vm.id.clone(),
            vm_name: vm.name.clone(),
            target_namespace: vm.target_namespace.clone().unwrap_or_default(),
            concern_id: MAC_CONFLICTS.to_string(),
            category: Category::Critical,
            label: "MAC address used twice".to_string(),
            assessment: format!("MAC {} is also used by {with}", mac_list.join(", ")),
            left_out: false,
        });
    }

    // Left out: a Critical finding other than an unmapped source (which stops the run instead).
    let blocking = |f: &Finding| {
        f.category == Category::Critical
            && f.concern_id != NETWORKS_NOT_MAPPED
            && f.concern_id != STORAGE_NOT_MAPPED
    };
    let left_out: BTreeSet<String> = if include_blocked {
        BTreeSet::new()
    } else {
        findings
            .iter()
            .filter(|f| blocking(f))
            .map(|f| f.vm_id.clone())
            .collect()
    };
    for finding in &mut findings {
        finding.left_out = left_out.contains(&finding.vm_id);
    }
    findings.sort_by(|a, b| {
        (
            &a.target_namespace,
            &a.vm_name,
            &a.vm_id,
            a.category,
            &a.concern_id,
        )
            .cmp(&(
                &b.target_namespace,
                &b.vm_name,
                &b.vm_id,
                b.category,
                &b.concern_id,
            ))
    });

    let mut vms = Vec::new();
    for (input, mine) in records.into_iter().zip(resolved) {
        if left_out.contains(&input.record.id) {
            continue;
        }
        for (id, _, _) in &mine.nics {
            if let Some(used) = networks.get_mut(id) {
                used.vms.insert(input.record.name.clone());
            }
        }
        for (id, _) in &mine.storage {
            if let Some(used) = storage.get_mut(id) {
                used.vms.insert(input.record.name.clone());
            }
        }
        let disk_bytes = input
            .record
            .disks()
            .iter()
            .filter(|d| !d.is_lun())
            .map(common::record::Disk::copied_bytes);
        let disk_bytes = common::size::sum_bytes(disk_bytes);
        let namespace = input.record.target_namespace.clone().unwrap_or_default();
        vms.push(Vm {
            record: input.record,
            namespace,
            disk_bytes,
        });
    }
    // Only what planned VMs use goes into the maps.
    networks.retain(|_, used| !used.vms.is_empty());
    storage.retain(|_, used| !used.vms.is_empty());
    Checked {
        total,
        vms,
        findings,
        left_out,
        networks,
        storage,
    }
}

/// The names of the other VMs using `mac`.
fn self_excluded<'a>(
    resolved: &[VmNetworks],
    records: &'a [Input],
    mac: &str,
    me: usize,
) -> Vec<&'a str> {
    resolved
        .iter()
        .enumerate()
        .filter(|(i, r)| *i != me && r.nics.iter().any(|n| n.2.as_deref() == Some(mac)))
        .map(|(i, _)| records[i].record.name.as_str())
        .collect()
}

fn describe(dc: Option<&str>, name: Option<&str>, id: &str) -> String {
    match (dc, name) {
        (Some(dc), Some(name)) => format!("{dc}/{name} ({id})"),
        (None, Some(name)) => format!("{name} ({id})"),
        _ => id.to_string(),
    }
}

/// A concern's label and the (name, id) of the VMs it was raised on.
type ConcernVms<'a> = (&'a str, BTreeSet<(&'a str, &'a str)>);

/// The readable report for stderr: a summary line, one line per concern (how many VMs, which),
/// the VMs left out with their Critical findings, and with `detail` every finding.
pub fn render(checked: &Checked, detail: bool) -> String {
    let vms_with: BTreeSet<&str> = checked.findings.iter().map(|f| f.vm_id.as_str()).collect();
    let mut text = format!(
        "plan-gen: preflight of {} VM(s): {} finding(s) on {} VM(s)",
        checked.total,
        checked.findings.len(),
        vms_with.len()
    );
    if checked.left_out.is_empty() {
        text.push('\n');
    } else {
        text.push_str(&format!(
            "; {} VM(s) left out for Critical findings (--include-blocked keeps them)\n",
            checked.left_out.len()
        ));
    }
    let mut by_concern: BTreeMap<(Category, &str), ConcernVms> = BTreeMap::new();
    for f in &checked.findings {
        let entry = by_concern
            .entry((f.category, f.concern_id.as_str()))
            .or_insert((f.label.as_str(), BTreeSet::new()));
        entry.1.insert((f.vm_name.as_str(), f.vm_id.as_str()));
    }
    for ((category, id), (label, vms)) in &by_concern {
        let shown: Vec<&str> = vms.iter().take(5).map(|(name, _)| *name).collect();
        let more = if vms.len() > 5 {
            format!(" and {} more", vms.len() - 5)
        } else {
            String::new()
        };
        text.push_str(&format!(
            "  {:<11} {id} ({label}): {} VM(s): {}{more}\n",
            category.as_str(),
            vms.len(),
            shown.join(", ")
        ));
    }
    let mut left_out: BTreeMap<(&str, &str, &str), Vec<String>> = BTreeMap::new();
    for f in checked
        .findings
        .iter()
        .filter(|f| f.left_out && f.category == Category::Critical)
    {
        left_out
            .entry((
                f.target_namespace.as_str(),
                f.vm_name.as_str(),
                f.vm_id.as_str(),
            ))
            .or_default()
            .push(format!("{}: {}", f.concern_id, f.assessment));
    }
    if !left_out.is_empty() {
        text.push_str("  left out:\n");
        for ((namespace, name, id), reasons) in &left_out {
            text.push_str(&format!(
                "    {namespace}/{name} ({id}): {}\n",
                reasons.join("; ")
            ));
        }
    }
    if detail {
        for f in &checked.findings {
            text.push_str(&format!(
                "  {}/{} ({}): {} {}: {}: {}{}\n",
                f.target_namespace,
                f.vm_name,
                f.vm_id,
                f.category.as_str(),
                f.concern_id,
                f.label,
                f.assessment,
                if f.left_out { " [left out]" } else { "" }
            ));
        }
    }
    text
}

/// The one-line error when planned VMs use networks or storage that no rule maps.
pub fn unmapped_error(checked: &Checked) -> Option<String> {
    let list = |kind: &str, items: Vec<(&String, &BTreeSet<String>)>| -> Vec<String> {
        items
            .into_iter()
            .map(|(display, vms)| {
                let shown: Vec<&str> = vms.iter().take(5).map(String::as_str).collect();
                let more = if vms.len() > 5 {
                    format!(" and {} more", vms.len() - 5)
                } else {
                    String::new()
                };
                format!("{kind} {display} used by {}{more}", shown.join(", "))
            })
            .collect()
    };
    let nets: Vec<_> = checked
        .networks
        .values()
        .filter(|u| u.destination.is_none())
        .map(|u| (&u.display, &u.vms))
        .collect();
    let sds: Vec<_> = checked
        .storage
        .values()
        .filter(|u| u.destination.is_none())
        .map(|u| (&u.display, &u.vms))
        .collect();
    if nets.is_empty() && sds.is_empty() {
        return None;
    }
    let (n, s) = (nets.len(), sds.len());
    let mut parts = list("network", nets);
    parts.extend(list("storage domain", sds));
    Some(format!(
        "{n} network(s) and {s} storage domain(s) are not mapped (add --network-map/--storage-map rules): {}",
        parts.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::supports_direct_lun;

    #[test]
    fn engine_versions_compare_by_number() {
        for (version, expected) in [
            ("4.5.6-1.el8", Some(true)),
            ("4.5.2.1", Some(true)),
            ("4.5.2.1-1.el8", Some(true)),
            ("4.5.10", Some(true)),
            ("4.10", Some(true)),
            ("5.0", Some(true)),
            ("4.5.2", Some(false)),
            ("4.5.2.0.5", Some(false)),
            ("4.4.10.7-0.0.master.el8", Some(false)),
            ("4.3", Some(false)),
            ("master", None),
            ("", None),
        ] {
            assert_eq!(supports_direct_lun(version), expected, "{version}");
        }
    }
}
