//! The plan validator's per-VM checks that liftkit reproduces (Forklift's plan controller,
//! `pkg/controller/plan/validation.go` `validateVM` with the oVirt adapter's
//! `pkg/controller/plan/adapter/ovirt/validator.go`): which condition a VM gets, with Forklift's
//! type, category and message, at each known version. plan-gen applies them offline, forklift-sim
//! on the plans it validates, plan-run (MAC conflicts) against the cluster.

use super::ForkliftVersion;
use super::concerns::Category;
use crate::record::{Disk, Nic, VmRecord};

/// A plan condition a VM can get: Forklift's type, category and message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Condition {
    pub kind: &'static str,
    pub category: Category,
    pub message: &'static str,
}

// The lines cited are the condition's `Type:` line in validation.go at v2.12.5 (and at d42511bb
// where it differs); every one of them is api.CategoryCritical.

/// v2.12.5 validation.go:765, d42511bb:765.
pub const NETWORKS_NOT_MAPPED: Condition = Condition {
    kind: "VMNetworksNotMapped",
    category: Category::Critical,
    message: "VM has unmapped networks.",
};
/// v2.12.5 validation.go:773, d42511bb:773.
pub const STORAGE_NOT_MAPPED: Condition = Condition {
    kind: "VMStorageNotMapped",
    category: Category::Critical,
    message: "VM has unmapped storage.",
};
/// v2.12.5 validation.go:781, d42511bb:781.
pub const STORAGE_NOT_SUPPORTED: Condition = Condition {
    kind: "VMStorageNotSupported",
    category: Category::Critical,
    message: "VM has unsupported storage. Migration of Direct LUN/FC from oVirt is supported as from version 4.5.2.1",
};
/// v2.12.5 validation.go:797, d42511bb:797.
pub const MULTIPLE_POD: Condition = Condition {
    kind: "VMMultiplePodNetworkMappings",
    category: Category::Critical,
    message: "VM has more than one interface mapped to the pod network.",
};
/// v2.12.5 validation.go:805; gone at d42511bb (c73ed3093).
pub const DUPLICATE_NAD: Condition = Condition {
    kind: "VMDuplicateNADMappings",
    category: Category::Critical,
    message: "Multiple VM NICs mapped to the same Multus NAD. Add additional NetworkMap entries with different destination NADs for the same source network.",
};
/// v2.12.5 validation.go:912, d42511bb:904.
pub const INVALID_DISK_SIZES: Condition = Condition {
    kind: "InvalidDiskSizes",
    category: Category::Critical,
    message: "VM has disks with invalid sizes.",
};
/// v2.12.5 validation.go:920, d42511bb:912 (the message is built per VM, see [`mac_conflicts`]).
pub const MAC_CONFLICTS: Condition = Condition {
    kind: "MacConflicts",
    category: Category::Critical,
    message: "",
};
/// v2.12.5 validation.go:951, d42511bb:943: any Critical concern of a VM (items `ref (label)`,
/// `aggregateCriticalConcerns`).
pub const CRITICAL_CONCERNS: Condition = Condition {
    kind: "VMCriticalConcerns",
    category: Category::Critical,
    message: "One or more VMs in the plan have critical concerns that block migration.",
};

/// The network a NIC's vNIC profile belongs to, the id the validator looks up
/// (validator.go `NetworksMapped`, `NICNetworkRefs`: `nic.Profile.Network`). A NIC without a
/// profile has none: the empty id is in no map's references, so the VM is VMNetworksNotMapped.
pub fn nic_network(nic: &Nic) -> Option<&str> {
    nic.vnic_profile.as_ref()?;
    nic.network.as_ref().map(|n| n.id.as_str())
}

/// Whether Forklift migrates direct LUN disks from an engine reporting `full_version`: the oVirt
/// validator's `canImportDirectDisksFromProvider` (validator.go:197, the same at both versions):
/// major*1000 + minor*100 + build*10 + revision >= 4521, the parts as the collector's
/// `parseVersion` (container/ovirt/collector.go:155) cuts them: split at `.`, build = the third
/// part up to a `-`, revision = what follows that `-`, else the fourth part up to a `-`, else 0.
/// `None` where Forklift fails instead (fewer than three parts, or a part not a number).
pub fn supports_direct_lun(full_version: &str) -> Option<bool> {
    let parts: Vec<&str> = full_version.split('.').collect();
    if parts.len() < 3 {
        return None;
    }
    let (build, revision) = match parts[2].split_once('-') {
        Some((build, rest)) => (build, rest),
        None if parts.len() > 3 => (parts[2], parts[3].split('-').next().unwrap_or_default()),
        None => (parts[2], "0"),
    };
    let number = |s: &str| s.parse::<i64>().ok();
    let value = number(parts[0])? * 1000
        + number(parts[1])? * 100
        + number(build)? * 10
        + number(revision)?;
    Some(value >= 4521)
}

/// One NetworkMap entry's destination, as `api.DestinationNetwork` holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination<'a> {
    /// `pod`, `multus` or `ignored`.
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// What Forklift `version` says of one VM's NICs, given per NIC the destinations of the map
/// entries whose source id is the NIC's network (`FindAllMappingsForNICRef`; none when unmapped).
/// Returns (several NICs on the pod network, two NICs on one NAD).
///
/// v2.12.5 `adapter/base/network.go:82` `ValidateNetworkDuplicates`: per NIC, `AllocateNetwork`
/// (line 67) takes the first non-Multus destination, else the first NAD this VM has not used yet
/// (`NADPool.Allocate`, line 49); a NIC with destinations but none left is a duplicate NAD.
/// d42511bb `network.go:124` `ValidatePodNetworkDuplicates`: only the pod count; `Allocate`
/// (line 88) hands out a source's single NAD again and again.
pub fn network_duplicates(version: ForkliftVersion, nics: &[Vec<Destination>]) -> (bool, bool) {
    let mut used: Vec<String> = Vec::new();
    let (mut pods, mut nad_dup) = (0, false);
    for pairs in nics {
        if pairs.is_empty() {
            continue;
        }
        let chosen = if let Some(other) = pairs.iter().find(|p| p.kind != "multus") {
            Some(*other)
        } else if !version.rejects_duplicate_nads() && pairs.len() == 1 {
            Some(pairs[0])
        } else {
            let key = |p: &Destination| {
                if p.namespace.is_empty() {
                    p.name.to_string()
                } else {
                    format!("{}/{}", p.namespace, p.name)
                }
            };
            let free = pairs.iter().find(|p| !used.contains(&key(p)));
            if let Some(p) = free {
                used.push(key(p));
            }
            free.copied()
        };
        match chosen {
            Some(p) if p.kind == "pod" => pods += 1,
            Some(_) => {}
            None => nad_dup = version.rejects_duplicate_nads(),
        }
    }
    (pods > 1, nad_dup)
}

/// The disks the oVirt validator finds of invalid size (validator.go:32 `InvalidDiskSizes`, the
/// same at both versions): a LUN with a logical unit of size <= 0, any other disk with a
/// provisioned size <= 0 (0 when the engine left it out). The record holds the sum of a LUN's
/// units (`lun_size_bytes`), so a LUN is caught when that sum is 0.
pub fn invalid_disk_sizes(vm: &VmRecord) -> Vec<&Disk> {
    vm.disks()
        .iter()
        .filter(|d| {
            if d.is_lun() {
                d.lun_size_bytes == Some(0)
            } else {
                d.provisioned_bytes.unwrap_or(0) == 0
            }
        })
        .collect()
}

/// Annotation on each Plan: per VM id, the MAC addresses of its NICs (a JSON object of lists), so
/// that plan-run can repeat Forklift's MacConflicts check against the cluster before it starts
/// the plan. Every NIC counts, as in validator.go:78 (`MacConflicts` takes all of `vm.NICs`).
pub const VM_MACS_ANNOTATION: &str = "liftkit.io/vm-macs";

/// A MAC address a source VM shares with a VM already in the destination cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacConflict {
    pub mac: String,
    /// `namespace/name` of the destination VM.
    pub destination_vm: String,
}

/// Forklift's MAC check (`adapter/base/mac_conflicts.go:89` `CheckMacConflicts`, the same at
/// both versions): the source VM's MACs against the interfaces of every VirtualMachine in the
/// destination cluster (`spec.template.spec.domain.devices.interfaces[].macAddress`), compared
/// exactly as strings; empty MACs are skipped. `destination` is (namespace/name, MACs).
pub fn mac_conflicts(
    source_macs: &[&str],
    destination: &[(String, Vec<String>)],
) -> Vec<MacConflict> {
    let mut owner: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for (vm, macs) in destination {
        for mac in macs.iter().filter(|m| !m.is_empty()) {
            owner.insert(mac, vm);
        }
    }
    source_macs
        .iter()
        .filter(|m| !m.is_empty())
        .filter_map(|m| {
            owner.get(m).map(|vm| MacConflict {
                mac: m.to_string(),
                destination_vm: vm.to_string(),
            })
        })
        .collect()
}

/// The MACs of a KubeVirt VirtualMachine (its JSON) as `mac_conflicts` reads a destination VM:
/// `spec.template.spec.domain.devices.interfaces[].macAddress`, "" for an interface without one.
pub fn virtual_machine_macs(vm: &serde_json::Value) -> Vec<String> {
    vm["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["macAddress"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The MacConflicts message part for one VM, as validation.go builds it (v2.12.5 lines
/// 1221-1236): `VM <ref> has MAC address conflicts: MACs <a, b> conflict with destination VM <ns/name>`.
pub fn mac_conflicts_message(vm_ref: &str, conflicts: &[MacConflict]) -> String {
    let mut by_vm: Vec<(&str, Vec<&str>)> = Vec::new();
    for c in conflicts {
        match by_vm.iter_mut().find(|(vm, _)| *vm == c.destination_vm) {
            Some((_, macs)) => macs.push(&c.mac),
            None => by_vm.push((&c.destination_vm, vec![&c.mac])),
        }
    }
    let details: Vec<String> = by_vm
        .iter()
        .map(|(vm, macs)| format!("MACs {} conflict with destination VM {vm}", macs.join(", ")))
        .collect();
    format!(
        "VM {vm_ref} has MAC address conflicts: {}",
        details.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ForkliftVersion::{Main, V2_12};

    fn d<'a>(kind: &'a str, name: &'a str) -> Destination<'a> {
        Destination {
            kind,
            namespace: if kind == "multus" { "ns" } else { "" },
            name,
        }
    }

    #[test]
    fn duplicate_nads_per_version() {
        // Two NICs, one entry each, the same NAD: v2.12.5 finds no free NAD for the second.
        let same = vec![vec![d("multus", "a")], vec![d("multus", "a")]];
        assert_eq!(network_duplicates(V2_12, &same), (false, true));
        assert_eq!(network_duplicates(Main, &same), (false, false));
        // Two entries for one source (a NAD pool): each NIC gets its own.
        let pool = vec![vec![d("multus", "a"), d("multus", "b")]; 2];
        assert_eq!(network_duplicates(V2_12, &pool), (false, false));
        // Pod twice is refused by both; an unmapped NIC counts for nothing.
        let pods = vec![vec![d("pod", "")], vec![d("pod", "")], vec![]];
        assert_eq!(network_duplicates(V2_12, &pods), (true, false));
        assert_eq!(network_duplicates(Main, &pods), (true, false));
        let ignored = vec![vec![d("ignored", "")], vec![d("ignored", "")]];
        assert_eq!(network_duplicates(V2_12, &ignored), (false, false));
    }

    #[test]
    fn engine_versions_as_forklift_computes_them() {
        for (version, expected) in [
            ("4.5.6-1.el8", Some(true)),              // build 6, revision 1: 4561
            ("4.5.2.1", Some(true)),                  // 4521
            ("4.5.2.1-1.el8", Some(true)),            // revision "1-1" cut at '-': 4521
            ("4.5.10", Some(true)),                   // 4600
            ("4.5.2", Some(false)),                   // revision 0: 4520
            ("4.5.2.0.5", Some(false)),               // 4520
            ("4.4.10.7-0.0.master.el8", Some(false)), // 4507
            ("4.4.13.0", Some(true)),                 // 4530: the formula, not the version order
            ("4.10", None),                           // parseVersion indexes a third part
            ("master", None),
            ("", None),
        ] {
            assert_eq!(supports_direct_lun(version), expected, "{version}");
        }
    }

    #[test]
    fn macs_compare_exactly() {
        let cluster = vec![(
            "ns/vm1".to_string(),
            vec!["56:6f:00:00:00:01".to_string(), String::new()],
        )];
        assert_eq!(mac_conflicts(&["56:6f:00:00:00:01", ""], &cluster).len(), 1);
        assert!(mac_conflicts(&["56:6F:00:00:00:01"], &cluster).is_empty());
        let message = mac_conflicts_message(
            "id:x name:'v'",
            &mac_conflicts(&["56:6f:00:00:00:01"], &cluster),
        );
        assert_eq!(
            message,
            "VM id:x name:'v' has MAC address conflicts: MACs 56:6f:00:00:00:01 conflict with destination VM ns/vm1"
        );
    }
}
