//! The offline preflight: Forklift's oVirt concerns on each VM, and the plan blockers Forklift
//! reports (unmapped networks and storage, several NICs on the pod network, two NICs on one network
//! attachment, MAC addresses used twice). Decides which VMs go into plans.

use crate::Input;
use common::forklift::ForkliftVersion;
use common::forklift::concerns::{self, Category};
use common::forklift::plan;
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

/// liftkit's own id for two input VMs with one MAC address (Forklift's MacConflicts looks only at
/// VMs already in the destination cluster: common::forklift::plan::mac_conflicts).
pub const MAC_DUPLICATE: &str = "liftkit.nic.mac_conflict";

use common::forklift::plan::supports_direct_lun;

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

/// What one VM's NICs and disks resolve to.
struct VmNetworks {
    /// Per NIC with a network: (network id, destination or None when unmapped, MAC lowercased).
    nics: Vec<(String, Option<NetworkTarget>, Option<String>)>,
    /// NICs without a vNIC profile: Forklift's validator finds no network for them.
    profileless: Vec<String>,
    storage: Vec<(String, Option<StorageTarget>)>,
}

/// Builds the findings of one VM.
struct VmFindings<'a> {
    vm: &'a VmRecord,
    namespace: String,
    out: Vec<Finding>,
}

impl VmFindings<'_> {
    fn push(&mut self, id: &str, category: Category, label: &str, assessment: String) {
        self.out.push(Finding {
            vm_id: self.vm.id.clone(),
            vm_name: self.vm.name.clone(),
            target_namespace: self.namespace.clone(),
            concern_id: id.to_string(),
            category,
            label: label.to_string(),
            assessment,
            left_out: false,
        });
    }

    fn condition(&mut self, condition: &plan::Condition, assessment: String) {
        self.push(
            condition.kind,
            condition.category,
            condition.message,
            assessment,
        );
    }
}

/// The sources the VMs use, and what each VM's resolve to.
#[derive(Default)]
struct Sources {
    networks: BTreeMap<String, Used<NetworkTarget>>,
    storage: BTreeMap<String, Used<StorageTarget>>,
}

impl Sources {
    fn resolve(&mut self, vm: &VmRecord, maps: &Mappings) -> VmNetworks {
        let mut mine = VmNetworks {
            nics: Vec::new(),
            profileless: Vec::new(),
            storage: Vec::new(),
        };
        for nic in vm.nics() {
            let (Some(_), Some(network)) = (plan::nic_network(nic), &nic.network) else {
                mine.profileless
                    .push(nic.name.clone().unwrap_or_else(|| nic.id.clone()));
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
            self.networks
                .entry(network.id.clone())
                .or_insert_with(|| Used {
                    name: network.name.clone(),
                    display,
                    destination: destination.clone(),
                    vms: BTreeSet::new(),
                });
            let mac = nic.mac.as_ref().map(|m| m.to_ascii_lowercase());
            mine.nics.push((network.id.clone(), destination, mac));
        }
        let vm_dc = vm.data_center.as_ref().and_then(|d| d.name.as_deref());
        for disk in vm.disks() {
            // LUN disks are not copied: they need no storage mapping (validator.go StorageMapped).
            let Some(domain) = disk.storage_domain.as_ref().filter(|_| !disk.is_lun()) else {
                continue;
            };
            let object = SourceObject {
                id: Some(&domain.id),
                data_center: vm_dc,
                name: domain.name.as_deref(),
            };
            let destination = maps.storage.lookup(&object).map(|r| r.destination.clone());
            let display = describe(vm_dc, domain.name.as_deref(), &domain.id);
            self.storage
                .entry(domain.id.clone())
                .or_insert_with(|| Used {
                    name: domain.name.clone(),
                    display,
                    destination: destination.clone(),
                    vms: BTreeSet::new(),
                });
            mine.storage.push((domain.id.clone(), destination));
        }
        mine
    }
}

/// The Forklift destination of a mapping target (`api.DestinationNetwork`).
fn destination(target: &NetworkTarget) -> plan::Destination<'_> {
    match target {
        NetworkTarget::Pod => plan::Destination {
            kind: "pod",
            namespace: "",
            name: "",
        },
        NetworkTarget::Ignored => plan::Destination {
            kind: "ignored",
            namespace: "",
            name: "",
        },
        NetworkTarget::Multus { namespace, name } => plan::Destination {
            kind: "multus",
            namespace,
            name,
        },
    }
}

/// What one rule of the preflight reads: the VM's findings so far (it adds its own), what its
/// NICs and disks resolve to, the sources seen, and the Forklift version.
type VmCheck = fn(&mut VmFindings, &VmNetworks, &Sources, ForkliftVersion);

/// One rule of the preflight: the plan conditions it reports (none for the concerns, which
/// have their own table) and the check that reproduces Forklift's. Each entry cites where
/// Forklift makes the finding, as `concerns.rs` cites its policies.
struct VmRule {
    reports: &'static [&'static plan::Condition],
    check: VmCheck,
}

/// The per-VM rules: Forklift's concerns, then the plan conditions that depend on the VM alone
/// (common::forklift::plan cites each condition's line at both versions). The findings are
/// sorted afterwards, so this order is only that of `--hide`'s list of ids.
const VM_RULES: &[VmRule] = &[
    // Forklift v2.12.5 validation/policies/io/konveyor/forklift/ovirt/*.rego, one entry each in
    // common::forklift::concerns::RULES.
    VmRule {
        reports: &[],
        check: concerns_of,
    },
    // Forklift v2.12.5 pkg/controller/plan/validation.go:765 (Type: VMNetworksNotMapped).
    VmRule {
        reports: &[&plan::NETWORKS_NOT_MAPPED],
        check: networks_not_mapped,
    },
    // Forklift v2.12.5 validation.go:773 (Type: VMStorageNotMapped); LUN disks are not mapped.
    VmRule {
        reports: &[&plan::STORAGE_NOT_MAPPED],
        check: storage_not_mapped,
    },
    // Forklift v2.12.5 validation.go:781 (Type: VMStorageNotSupported), from the oVirt
    // validator's canImportDirectDisksFromProvider (adapter/ovirt/validator.go:197).
    VmRule {
        reports: &[&plan::STORAGE_NOT_SUPPORTED],
        check: |out, _, _, _| direct_lun(out),
    },
    // Forklift v2.12.5 validation.go:797 and :805 (Types: VMMultiplePodNetworkMappings,
    // VMDuplicateNADMappings), from adapter/base/network.go:82 ValidateNetworkDuplicates.
    VmRule {
        reports: &[&plan::MULTIPLE_POD, &plan::DUPLICATE_NAD],
        check: |out, mine, _, version| network_findings(out, mine, version),
    },
    // Forklift v2.12.5 validation.go:912 (Type: InvalidDiskSizes), from the oVirt validator's
    // InvalidDiskSizes (adapter/ovirt/validator.go:32).
    VmRule {
        reports: &[&plan::INVALID_DISK_SIZES],
        check: invalid_disk_sizes,
    },
];

/// Forklift's per-VM concerns and the plan conditions that depend on the VM alone: every rule
/// of [`VM_RULES`].
fn vm_findings(
    out: &mut VmFindings,
    mine: &VmNetworks,
    sources: &Sources,
    version: ForkliftVersion,
) {
    for rule in VM_RULES {
        (rule.check)(out, mine, sources, version);
    }
}

/// The oVirt concerns Forklift's validation policies raise on the VM.
fn concerns_of(out: &mut VmFindings, _: &VmNetworks, _: &Sources, version: ForkliftVersion) {
    for concern in concerns::evaluate(out.vm, version) {
        out.push(
            concern.id,
            concern.category,
            &concern.label,
            concern.assessment,
        );
    }
}

/// InvalidDiskSizes: a disk of size 0 (`plan::invalid_disk_sizes`).
fn invalid_disk_sizes(out: &mut VmFindings, _: &VmNetworks, _: &Sources, _: ForkliftVersion) {
    let invalid = plan::invalid_disk_sizes(out.vm);
    if invalid.is_empty() {
        return;
    }
    let names: Vec<&str> = invalid
        .iter()
        .map(|d| {
            d.alias
                .as_deref()
                .or(d.disk_id.as_deref())
                .unwrap_or(&d.attachment_id)
        })
        .collect();
    out.condition(
        &plan::INVALID_DISK_SIZES,
        format!(
            "disk {} has a size of 0 (a LUN: its logical unit; else its provisioned size); Forklift's oVirt validator refuses the VM (validator.go InvalidDiskSizes)",
            names.join(", ")
        ),
    );
}

/// VMNetworksNotMapped: a NIC's network no --network-map rule covers, or a NIC without a vNIC
/// profile (no network a map could cover).
fn networks_not_mapped(
    out: &mut VmFindings,
    mine: &VmNetworks,
    sources: &Sources,
    _: ForkliftVersion,
) {
    let unmapped_nets: BTreeSet<&str> = mine
        .nics
        .iter()
        .filter(|n| n.1.is_none())
        .map(|n| sources.networks[&n.0].display.as_str())
        .collect();
    let mut reasons = Vec::new();
    if !unmapped_nets.is_empty() {
        let list = unmapped_nets.into_iter().collect::<Vec<_>>().join(", ");
        reasons.push(format!("no --network-map rule covers {list}"));
    }
    if !mine.profileless.is_empty() {
        reasons.push(format!(
            "NIC {} has no vNIC profile, so no network a map could cover",
            mine.profileless.join(", ")
        ));
    }
    if !reasons.is_empty() {
        out.condition(&plan::NETWORKS_NOT_MAPPED, reasons.join("; "));
    }
}

/// VMStorageNotMapped: a storage domain of the VM's image disks no --storage-map rule covers.
fn storage_not_mapped(
    out: &mut VmFindings,
    mine: &VmNetworks,
    sources: &Sources,
    _: ForkliftVersion,
) {
    let unmapped_storage: BTreeSet<&str> = mine
        .storage
        .iter()
        .filter(|s| s.1.is_none())
        .map(|s| sources.storage[&s.0].display.as_str())
        .collect();
    if !unmapped_storage.is_empty() {
        let list = unmapped_storage.into_iter().collect::<Vec<_>>().join(", ");
        out.condition(
            &plan::STORAGE_NOT_MAPPED,
            format!("no --storage-map rule covers {list}"),
        );
    }
}

/// VMStorageNotSupported: direct LUN disks need engine 4.5.2.1 (validator.go DirectStorage).
fn direct_lun(out: &mut VmFindings) {
    let vm = out.vm;
    // Forklift checks the engine only for LUNs with logical units (validator.go:184-185); the
    // record has lun_size_bytes where the engine reported units with sizes.
    let luns = vm
        .disks()
        .iter()
        .filter(|d| d.is_lun() && d.lun_size_bytes.is_some())
        .count();
    let version = vm.engine_version.as_deref();
    match version.and_then(supports_direct_lun) {
        _ if luns == 0 => {}
        Some(true) => {}
        Some(false) => out.condition(
            &plan::STORAGE_NOT_SUPPORTED,
            format!(
                "{luns} direct LUN disk(s); Forklift migrates them from oVirt engine 4.5.2.1 on, this engine is {}",
                version.unwrap_or_default()
            ),
        ),
        // Not known: the record predates engine_version, or the version does not parse.
        None => out.push(
            plan::STORAGE_NOT_SUPPORTED.kind,
            Category::Warning,
            "Direct LUN disks: engine version unknown",
            format!(
                "{luns} direct LUN disk(s); Forklift migrates them from oVirt engine 4.5.2.1 on, and the record gives no engine version it can be checked against ({}): export it again with ovirt-dump",
                version.map_or("no engine_version".to_string(), |v| format!("{v:?}"))
            ),
        ),
    }
}

/// VMMultiplePodNetworkMappings and (2.12) VMDuplicateNADMappings, as the version computes them.
fn network_findings(out: &mut VmFindings, mine: &VmNetworks, version: ForkliftVersion) {
    let per_nic: Vec<Vec<plan::Destination>> = mine
        .nics
        .iter()
        .map(|(_, target, _)| target.iter().map(destination).collect())
        .collect();
    let (multiple_pod, duplicate_nad) = plan::network_duplicates(version, &per_nic);
    if multiple_pod {
        let pods = per_nic
            .iter()
            .filter(|p| p.first().is_some_and(|d| d.kind == "pod"))
            .count();
        out.condition(
            &plan::MULTIPLE_POD,
            format!("{pods} NICs map to the pod network; at most one may"),
        );
    }
    if duplicate_nad {
        let mut nads: BTreeMap<String, usize> = BTreeMap::new();
        for d in per_nic.iter().flatten().filter(|d| d.kind == "multus") {
            *nads
                .entry(format!("{}/{}", d.namespace, d.name))
                .or_default() += 1;
        }
        let shared: Vec<String> = nads
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(nad, n)| format!("{nad} ({n} NICs)"))
            .collect();
        out.condition(
            &plan::DUPLICATE_NAD,
            format!(
                "NICs share the network attachment {}; Forklift {version} refuses the VM (main allows it)",
                shared.join(", ")
            ),
        );
    }
}

pub fn check(
    mut records: Vec<Input>,
    maps: &Mappings,
    include_blocked: bool,
    version: ForkliftVersion,
) -> Checked {
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
    let mut sources = Sources::default();
    let mut resolved: Vec<VmNetworks> = Vec::new();
    // VMs whose NICs no mapping rule can fix (no vNIC profile): left out, not a stop.
    let mut unmappable: BTreeSet<String> = BTreeSet::new();
    for input in &records {
        let vm = &input.record;
        let mine = sources.resolve(vm, maps);
        let mut out = VmFindings {
            vm,
            namespace: vm.target_namespace.clone().unwrap_or_default(),
            out: Vec::new(),
        };
        vm_findings(&mut out, &mine, &sources, version);
        if !mine.profileless.is_empty() {
            unmappable.insert(vm.id.clone());
        }
        findings.extend(out.out);
        resolved.push(mine);
    }
    findings.extend(mac_duplicates(&records, &resolved));

    // Left out: a Critical finding other than an unmapped source (which stops the run instead).
    let blocking = |f: &Finding| {
        f.category == Category::Critical
            && ((f.concern_id != plan::NETWORKS_NOT_MAPPED.kind
                && f.concern_id != plan::STORAGE_NOT_MAPPED.kind)
                || unmappable.contains(&f.vm_id))
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
    let vms = planned(records, resolved, &left_out, &mut sources);
    let Sources { networks, storage } = sources;
    Checked {
        total,
        vms,
        findings,
        left_out,
        networks,
        storage,
    }
}

/// The VMs that go into plans, recording which of them use each network and storage domain; only
/// what planned VMs use stays (it goes into the maps).
fn planned(
    records: Vec<Input>,
    resolved: Vec<VmNetworks>,
    left_out: &BTreeSet<String>,
    sources: &mut Sources,
) -> Vec<Vm> {
    let mut vms = Vec::new();
    for (input, mine) in records.into_iter().zip(resolved) {
        if left_out.contains(&input.record.id) {
            continue;
        }
        for (id, _, _) in &mine.nics {
            if let Some(used) = sources.networks.get_mut(id) {
                used.vms.insert(input.record.name.clone());
            }
        }
        for (id, _) in &mine.storage {
            if let Some(used) = sources.storage.get_mut(id) {
                used.vms.insert(input.record.name.clone());
            }
        }
        let disk_bytes = input.record.copied_bytes();
        let namespace = input.record.target_namespace.clone().unwrap_or_default();
        vms.push(Vm {
            record: input.record,
            namespace,
            disk_bytes,
        });
    }
    sources.networks.retain(|_, used| !used.vms.is_empty());
    sources.storage.retain(|_, used| !used.vms.is_empty());
    vms
}

/// liftkit.nic.mac_conflict: MAC addresses two input VMs (or two NICs) would both keep on the
/// target (NICs mapped to `ignored` are dropped). Compared without regard to case.
fn mac_duplicates(records: &[Input], resolved: &[VmNetworks]) -> Vec<Finding> {
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
    let mut findings = Vec::new();
    for (index, macs) in conflicts {
        let vm = &records[index].record;
        let mac_list: Vec<&str> = macs.iter().map(String::as_str).collect();
        let others: BTreeSet<&str> = macs
            .iter()
            .flat_map(|m| self_excluded(resolved, records, m, index))
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
            concern_id: MAC_DUPLICATE.to_string(),
            category: Category::Critical,
            label: "MAC address used twice in the input (Forklift compares only with the cluster)"
                .to_string(),
            assessment: format!(
                "MAC {} is also used by {with}; once one of them is migrated, Forklift refuses the other (MacConflicts), and in one plan both would run with one MAC",
                mac_list.join(", ")
            ),
            left_out: false,
        });
    }
    findings
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

/// Every id a finding can have: Forklift's concerns and plan conditions, liftkit's own.
pub fn finding_ids() -> Vec<&'static str> {
    let mut ids: Vec<&str> = concerns::RULES
        .iter()
        .chain(concerns::LIFTKIT_RULES)
        .map(|r| r.id)
        .collect();
    ids.extend(VM_RULES.iter().flat_map(|r| r.reports).map(|c| c.kind));
    ids.push(MAC_DUPLICATE);
    ids
}

/// `--hide` takes ids a finding can have; anything else is a usage error listing them.
pub fn check_hidden(hidden: &[String]) -> Result<()> {
    let known = finding_ids();
    match hidden.iter().find(|h| !known.contains(&h.as_str())) {
        None => Ok(()),
        Some(bad) => Err(Error::usage(format!(
            "--hide {bad:?}: not a concern id; known: {}",
            known.join(", ")
        ))),
    }
}

/// A concern counts as common, and is grouped below the others, when it is on more than half of
/// at least ten VMs: there it is a property of the estate, not news about a VM.
fn is_common(vms: usize, total: usize) -> bool {
    total >= 10 && vms * 2 > total
}

/// The readable report for stderr: a summary line, one line per concern (how many VMs, which),
/// the concerns on most VMs grouped below, the VMs left out with their Critical findings, and with
/// `detail` every finding. Concerns in `hidden` are left out of it all but the counts.
pub fn render(checked: &Checked, detail: bool, hidden: &[String]) -> String {
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
    let shown = |f: &&Finding| !hidden.contains(&f.concern_id);
    let mut by_concern: BTreeMap<(Category, &str), ConcernVms> = BTreeMap::new();
    for f in checked.findings.iter().filter(shown) {
        let entry = by_concern
            .entry((f.category, f.concern_id.as_str()))
            .or_insert((f.label.as_str(), BTreeSet::new()));
        entry.1.insert((f.vm_name.as_str(), f.vm_id.as_str()));
    }
    let (common, rare): (Vec<_>, Vec<_>) = by_concern
        .iter()
        .partition(|(_, (_, vms))| is_common(vms.len(), checked.total));
    for ((category, id), (label, vms)) in rare {
        let names: Vec<&str> = vms.iter().take(5).map(|(name, _)| *name).collect();
        let more = if vms.len() > 5 {
            format!(" and {} more", vms.len() - 5)
        } else {
            String::new()
        };
        text.push_str(&format!(
            "  {:<11} {id} ({label}): {} VM(s): {}{more}\n",
            category.as_str(),
            vms.len(),
            names.join(", ")
        ));
    }
    if !common.is_empty() {
        text.push_str("  on most VMs:\n");
        for ((category, id), (label, vms)) in common {
            text.push_str(&format!(
                "  {:<11} {id} ({label}): on {} of {} VMs\n",
                category.as_str(),
                vms.len(),
                checked.total
            ));
        }
    }
    let hidden_count = checked.findings.iter().filter(|f| !shown(f)).count();
    if hidden_count > 0 {
        text.push_str(&format!(
            "  ({hidden_count} finding(s) of {} hidden by --hide; --report has them)\n",
            hidden.join(", ")
        ));
    }
    // The VMs left out are listed whatever --hide says: that is what the exit status reports.
    text.push_str(&render_left_out(checked));
    if detail {
        for f in checked.findings.iter().filter(shown) {
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

/// The VMs left out, each with its Critical findings.
fn render_left_out(checked: &Checked) -> String {
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
    let mut text = String::new();
    if !left_out.is_empty() {
        text.push_str("  left out:\n");
        for ((namespace, name, id), reasons) in &left_out {
            text.push_str(&format!(
                "    {namespace}/{name} ({id}): {}\n",
                reasons.join("; ")
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
