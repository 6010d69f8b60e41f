//! Forklift's oVirt validation concerns, offline. Each rule reads the VM record fields that hold
//! what Forklift's policy reads from its inventory and raises the same concern id, category and
//! label. Rules follow what Forklift does, not what a rule means: a field the engine left out is
//! the Go zero value Forklift's collector stores (and the rules fire on it; the assessment says the
//! field was missing), regular expressions are unanchored where the rego's are.
//!
//! Source: kubev2v/forklift `validation/policies/io/konveyor/forklift/ovirt/*.rego`, identical at
//! tag v2.12.5 and main d42511bb (`git diff v2.12.5 d42511bb -- validation/policies` is empty), so
//! one table serves every known version; the cited line is the rule's test. Inventory fields:
//! `pkg/controller/provider/container/ovirt/resource.go` (`VM.ApplyTo`, `Disk.ApplyTo`), served
//! to the policies as `pkg/controller/provider/web/ovirt/workload.go` `Workload`.

use super::ForkliftVersion;
use crate::record::{Disk, Nic, VmRecord};
use serde::Serialize;

/// A concern's category, as Forklift names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Category {
    Critical,
    Warning,
    Information,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Critical => "Critical",
            Category::Warning => "Warning",
            Category::Information => "Information",
        }
    }
}

/// One concern raised on a VM: its id and category, Forklift's label, and what it means here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concern {
    pub id: &'static str,
    pub category: Category,
    pub label: String,
    pub assessment: String,
}

type Check = fn(&VmRecord) -> Option<String>;

/// One rule: concern id, category, Forklift's label, the rego file and line of its test, check.
pub struct Rule {
    pub id: &'static str,
    pub category: Category,
    pub label: &'static str,
    pub source: &'static str,
    check: Check,
}

const fn rule(
    id: &'static str,
    category: Category,
    label: &'static str,
    source: &'static str,
    check: Check,
) -> Rule {
    Rule {
        id,
        category,
        label,
        source,
        check,
    }
}

use Category::{Critical, Information, Warning};

/// Forklift's 39 oVirt concerns (rules_version 6), in the order of its rules table.
pub const RULES: &[Rule] = &[
    rule(
        "ovirt.disk.capacity.invalid",
        Critical,
        "Disk has an invalid capacity",
        "disk_size.rego:18",
        disk_capacity,
    ),
    rule(
        "ovirt.disk.illegal_or_locked_status",
        Critical,
        "VM has an illegal or locked disk status condition",
        "disk_status.rego:7",
        disk_status,
    ),
    rule(
        "ovirt.disk.storage_type.unsupported",
        Critical,
        "Unsupported disk storage type detected",
        "disk_storage_type.rego:16",
        disk_storage_type,
    ),
    rule(
        "ovirt.disk.illegal_images.detected",
        Critical,
        "Illegal disk images detected",
        "illegal_images.rego:8",
        illegal_images,
    ),
    rule(
        "ovirt.disk.count.exceeds.limit",
        Warning,
        "VM has {disks} disks, which exceeds the limit of 165",
        "disk_count.rego:9",
        disk_count,
    ),
    rule(
        "ovirt.disk.interface_type.unsupported",
        Warning,
        "Unsupported disk interface type detected",
        "disk_interface_type.rego:16",
        disk_interface,
    ),
    rule(
        "ovirt.disk.shared.detected",
        Warning,
        "Shared disk detected",
        "shared_disk.rego:7",
        never_shared,
    ),
    rule(
        "ovirt.disk.scsi_reservation.enabled",
        Warning,
        "Shared disk detected",
        "scsi_reservation.rego:7",
        scsi_reservation,
    ),
    rule(
        "ovirt.nic.interface_type.unsupported",
        Warning,
        "Unsupported NIC interface type detected",
        "nic_interface_type.rego:16",
        nic_interface,
    ),
    rule(
        "ovirt.nic.pci_passthrough.detected",
        Warning,
        "NIC with host device passthrough detected",
        "nic_pci_passthrough.rego:7",
        nic_passthrough,
    ),
    rule(
        "ovirt.nic.unplugged.detected",
        Warning,
        "Unplugged NIC detected",
        "nic_plugged.rego:7",
        nic_unplugged,
    ),
    rule(
        "ovirt.nic.custom_properties.detected",
        Warning,
        "vNIC custom properties detected",
        "nic_custom_properties.rego:8",
        nic_custom_props,
    ),
    rule(
        "ovirt.nic.network_filter.detected",
        Warning,
        "NIC with network filter detected",
        "nic_network_filter.rego:7",
        nic_network_filter,
    ),
    rule(
        "ovirt.nic.port_mirroring.detected",
        Warning,
        "NIC with port mirroring detected",
        "nic_port_mirroring.rego:7",
        nic_port_mirroring,
    ),
    rule(
        "ovirt.nic.qos.detected",
        Warning,
        "NIC with QoS settings detected",
        "nic_qos.rego:7",
        nic_qos,
    ),
    rule(
        "ovirt.name.invalid",
        Warning,
        "Invalid VM Name",
        "name.rego:20",
        name_invalid,
    ),
    rule(
        "ovirt.vm.status_invalid",
        Warning,
        "VM has a status condition that may prevent successful migration",
        "vm_status.rego:14",
        vm_status,
    ),
    rule(
        "ovirt.os.unsupported",
        Warning,
        "Unsupported operating system detected",
        "vm_os.rego:8",
        os_unsupported,
    ),
    rule(
        "ovirt.tpm.required_by_os",
        Warning,
        "TPM detected",
        "tpm.rego:8",
        tpm_required,
    ),
    rule(
        "ovirt.secure_boot.detected",
        Warning,
        "UEFI secure boot detected",
        "secure_boot.rego:8",
        secure_boot,
    ),
    rule(
        "ovirt.bios.boot_menu.enabled",
        Warning,
        "VM has BIOS boot menu enabled",
        "bios_boot_menu.rego:8",
        boot_menu,
    ),
    rule(
        "ovirt.cpu.custom_model.detected",
        Warning,
        "Custom CPU Model detected",
        "cpu_custom_model.rego:8",
        cpu_custom_model,
    ),
    rule(
        "ovirt.cpu.pinning_policy.unsupported",
        Warning,
        "Unsupported CPU pinning policy detected",
        "cpu_policy.rego:9",
        cpu_policy,
    ),
    rule(
        "ovirt.cpu.shares.defined",
        Warning,
        "VM has CPU Shares Defined",
        "cpu_shares.rego:8",
        cpu_shares,
    ),
    rule(
        "ovirt.cpu.tuning.detected",
        Warning,
        "CPU tuning detected",
        "cpu_tune.rego:8",
        cpu_tune,
    ),
    rule(
        "ovirt.numa.tuning.detected",
        Warning,
        "NUMA tuning detected",
        "numa_tune.rego:8",
        never_numa,
    ),
    rule(
        "ovirt.vm.custom_properties.detected",
        Warning,
        "VM custom properties detected",
        "custom_properties.rego:8",
        vm_custom_props,
    ),
    rule(
        "ovirt.ha.enabled",
        Warning,
        "VM configured as HA",
        "ha.rego:8",
        ha,
    ),
    rule(
        "ovirt.ha.reservation.enabled",
        Warning,
        "Cluster has HA reservation",
        "ha_reservation.rego:8",
        ha_reservation,
    ),
    rule(
        "ovirt.cluster.ksm_enabled",
        Warning,
        "Cluster has KSM enabled",
        "ksm.rego:8",
        ksm,
    ),
    rule(
        "ovirt.host_devices.mapped",
        Warning,
        "VM has mapped host devices",
        "host_devices.rego:8",
        host_devices,
    ),
    rule(
        "ovirt.snapshot.online_memory.detected",
        Warning,
        "Online (memory) snapshot detected",
        "online_snapshot.rego:7",
        online_snapshot,
    ),
    rule(
        "ovirt.placement_policy.affinity_set",
        Warning,
        "Placement policy affinity",
        "placement_policy.rego:8",
        placement_policy,
    ),
    rule(
        "ovirt.usb.enabled",
        Warning,
        "USB support enabled",
        "usb.rego:8",
        usb,
    ),
    rule(
        "ovirt.watchdog.enabled",
        Warning,
        "Watchdog detected",
        "watchdog.rego:8",
        watchdog,
    ),
    rule(
        "ovirt.memory.ballooning.enabled",
        Information,
        "VM has memory ballooning enabled",
        "ballooned_memory.rego:8",
        ballooning,
    ),
    rule(
        "ovirt.display_type.spice.enabled",
        Information,
        "VM Display Type",
        "display_type.rego:8",
        spice,
    ),
    rule(
        "ovirt.iothreads.configured",
        Information,
        "IO Threads configuration detected",
        "io_threads.rego:8",
        io_threads,
    ),
    rule(
        "ovirt.storage.resume_behavior.unsupported",
        Information,
        "VM storage error resume behavior",
        "storage_error_resume_behaviour.rego:8",
        resume,
    ),
];

/// liftkit's own concern for a shared disk, which Forklift never flags (see [`never_shared`]).
pub const SHARED_DISK: &str = "liftkit.disk.shared";

/// Concerns liftkit raises where Forklift is silent but the hazard is real.
pub const LIFTKIT_RULES: &[Rule] = &[rule(
    SHARED_DISK,
    Warning,
    "Shared disk (Forklift will not flag it)",
    "liftkit",
    shared_disk,
)];

/// Every concern id of Forklift's table with its category (the order of Forklift's table).
pub fn known() -> impl Iterator<Item = (&'static str, Category)> {
    RULES.iter().map(|r| (r.id, r.category))
}

/// The rule of a concern id (Forklift's or liftkit's).
pub fn rule_of(id: &str) -> Option<&'static Rule> {
    RULES.iter().chain(LIFTKIT_RULES).find(|r| r.id == id)
}

/// The concerns Forklift `version` raises on `vm`, in table order, then liftkit's own.
/// The policies are the same in every known version.
pub fn evaluate(vm: &VmRecord, _version: ForkliftVersion) -> Vec<Concern> {
    RULES
        .iter()
        .chain(LIFTKIT_RULES)
        .filter_map(|r| {
            (r.check)(vm).map(|assessment| Concern {
                id: r.id,
                category: r.category,
                label: r.label.replace("{disks}", &vm.disks().len().to_string()),
                assessment,
            })
        })
        .collect()
}

fn disk_name(disk: &Disk) -> &str {
    disk.alias
        .as_deref()
        .or(disk.disk_id.as_deref())
        .unwrap_or(&disk.attachment_id)
}

fn nic_name(nic: &Nic) -> &str {
    nic.name.as_deref().unwrap_or(&nic.id)
}

/// Names the items for which `pred` holds, or None when there are none.
fn names_where<T>(items: &[T], name: fn(&T) -> &str, pred: impl Fn(&T) -> bool) -> Option<String> {
    let hits: Vec<&str> = items.iter().filter(|i| pred(i)).map(name).collect();
    (!hits.is_empty()).then(|| hits.join(", "))
}

fn disks_where(vm: &VmRecord, pred: impl Fn(&Disk) -> bool) -> Option<String> {
    names_where(vm.disks(), disk_name, pred)
}

fn nics_where(vm: &VmRecord, pred: impl Fn(&Nic) -> bool) -> Option<String> {
    names_where(vm.nics(), nic_name, pred)
}

fn non_empty(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}

/// `what was missing` when some of the items lacked the field, for the assessment.
fn missing_note(missing: Option<String>, field: &str) -> String {
    match missing {
        Some(items) => format!(
            " ({items}: the engine reported no {field}; Forklift stores an empty value and its rule fires on it)"
        ),
        None => String::new(),
    }
}

fn disk_capacity(vm: &VmRecord) -> Option<String> {
    // disk_size.rego:16-19: a non-LUN disk with provisionedSize <= 0 (0 when the engine left it
    // out). The LUN branch (lines 11-14, 25-28) reads `disk.lun.logicalUnits`, a path Forklift's
    // inventory never serves (web/ovirt/disk.go names it `lunStorage`), so it never fires: a LUN
    // of size 0 is the plan condition InvalidDiskSizes instead (plan::invalid_disk_sizes).
    let hit = disks_where(vm, |d| !d.is_lun() && d.provisioned_bytes.unwrap_or(0) == 0)?;
    let missing = disks_where(vm, |d| !d.is_lun() && d.provisioned_bytes.is_none());
    Some(format!(
        "disk {hit} has a provisioned size of 0; its target volume cannot be sized, the VM is not migrated{}",
        missing_note(missing, "provisioned_size")
    ))
}

fn disk_status(vm: &VmRecord) -> Option<String> {
    disks_where(vm, |d| {
        d.status
            .as_deref()
            .is_some_and(|s| s.contains("illegal") || s.contains("locked"))
    })
    .map(|d| format!("disk {d} is illegal or locked; it cannot be copied, the VM is not migrated"))
}

fn disk_storage_type(vm: &VmRecord) -> Option<String> {
    let other = |d: &Disk| !matches!(d.storage_type.as_deref(), Some("image" | "lun"));
    let hit = disks_where(vm, other)?;
    let missing = disks_where(vm, |d| d.storage_type.is_none());
    Some(format!(
        "disk {hit} is neither an image nor a LUN (e.g. cinder or managed block); the VM is not migrated{}",
        missing_note(missing, "storage_type")
    ))
}

fn illegal_images(vm: &VmRecord) -> Option<String> {
    (vm.has_illegal_images == Some(true)).then(|| {
        "the engine reports illegal images (a broken snapshot chain); the VM is not migrated".into()
    })
}

fn disk_count(vm: &VmRecord) -> Option<String> {
    let n = vm.disks().len();
    (n > 165).then(|| format!("{n} disks, more than the 165 a KubeVirt VM can attach"))
}

fn disk_interface(vm: &VmRecord) -> Option<String> {
    // disk_interface_type.rego:7: regex `sata|virtio_scsi|virtio`, unanchored.
    let supported = |i: &str| {
        ["sata", "virtio_scsi", "virtio"]
            .iter()
            .any(|s| i.contains(s))
    };
    let hit = disks_where(vm, |d| !supported(d.interface.as_deref().unwrap_or("")))?;
    let missing = disks_where(vm, |d| d.interface.is_none());
    Some(format!(
        "disk {hit} uses an interface KubeVirt lacks; it will be attached as virtio{}",
        missing_note(missing, "interface")
    ))
}

fn never_shared(_vm: &VmRecord) -> Option<String> {
    // shared_disk.rego:7 reads `disk.shared`, which Forklift's collector fills from the engine key
    // `sharable` (container/ovirt/resource.go, `Disk.Sharable`, `Disk.ApplyTo`) while the API
    // sends `shareable`: Forklift never raises it for oVirt. liftkit.disk.shared says it instead.
    None
}

fn shared_disk(vm: &VmRecord) -> Option<String> {
    disks_where(vm, |d| d.shareable == Some(true)).map(|d| {
        format!(
            "disk {d} is shareable; Forklift will not flag it (its collector reads the engine's \
             `sharable`, the API sends `shareable`), and it copies the disk with every VM that has it"
        )
    })
}

fn scsi_reservation(vm: &VmRecord) -> Option<String> {
    disks_where(vm, |d| d.uses_scsi_reservation == Some(true)).map(|d| {
        format!("disk {d} uses SCSI reservation, which needs setting up again on the target")
    })
}

fn nic_interface(vm: &VmRecord) -> Option<String> {
    // nic_interface_type.rego:7: regex `e1000|rtl8139|virtio`, unanchored.
    let supported = |i: &str| ["e1000", "rtl8139", "virtio"].iter().any(|s| i.contains(s));
    let hit = nics_where(vm, |n| !supported(n.interface.as_deref().unwrap_or("")))?;
    let missing = nics_where(vm, |n| n.interface.is_none());
    Some(format!(
        "NIC {hit} uses an interface KubeVirt lacks; it will be a virtio NIC{}",
        missing_note(missing, "interface")
    ))
}

fn nic_passthrough(vm: &VmRecord) -> Option<String> {
    nics_where(vm, |n| {
        n.interface
            .as_deref()
            .is_some_and(|i| i.contains("pci_passthrough"))
    })
    .map(|n| {
        format!("NIC {n} is a PCI passthrough device, which needs SR-IOV set up on the target")
    })
}

fn nic_unplugged(vm: &VmRecord) -> Option<String> {
    // nic_plugged.rego:7 `plugged == false`: the collector's bool("") is false when it is missing.
    let hit = nics_where(vm, |n| n.plugged != Some(true))?;
    let missing = nics_where(vm, |n| n.plugged.is_none());
    Some(format!(
        "NIC {hit} is unplugged; KubeVirt has no unplugged interfaces{}",
        missing_note(missing, "plugged")
    ))
}

fn nic_custom_props(vm: &VmRecord) -> Option<String> {
    nics_where(vm, |n| {
        n.vnic_profile
            .as_ref()
            .is_some_and(|p| p.custom_properties.as_ref().is_some_and(|c| !c.is_empty()))
    })
    .map(|n| format!("the vNIC profile of NIC {n} has custom properties, which are not migrated"))
}

fn nic_network_filter(vm: &VmRecord) -> Option<String> {
    nics_where(vm, |n| {
        n.vnic_profile
            .as_ref()
            .is_some_and(|p| non_empty(&p.network_filter))
    })
    .map(|n| format!("the vNIC profile of NIC {n} has a network filter, which is not migrated"))
}

fn nic_port_mirroring(vm: &VmRecord) -> Option<String> {
    nics_where(vm, |n| {
        n.vnic_profile
            .as_ref()
            .is_some_and(|p| p.port_mirroring == Some(true))
    })
    .map(|n| format!("the vNIC profile of NIC {n} mirrors ports, which is not migrated"))
}

fn nic_qos(vm: &VmRecord) -> Option<String> {
    nics_where(vm, |n| {
        n.vnic_profile.as_ref().is_some_and(|p| non_empty(&p.qos))
    })
    .map(|n| format!("the vNIC profile of NIC {n} has QoS, which is not migrated"))
}

/// name.rego:20-21: `^(([A-Za-z0-9][-A-Za-z0-9.]*)?[A-Za-z0-9])?$` and fewer than 64 characters:
/// capitals and dots pass, and so does an empty name.
pub fn rego_name_ok(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let chars_ok = name.chars().all(|c| alnum(c) || c == '-' || c == '.');
    let ends_ok =
        name.chars().next().is_none_or(alnum) && name.chars().next_back().is_none_or(alnum);
    chars_ok && ends_ok && name.chars().count() < 64
}

fn name_invalid(vm: &VmRecord) -> Option<String> {
    (!rego_name_ok(&vm.name)).then(|| {
        format!(
            "{:?} has characters other than letters, digits, '-' and '.', does not start and end with a letter or digit, or is 64 characters or longer; the target VM is renamed",
            vm.name
        )
    })
}

fn vm_status(vm: &VmRecord) -> Option<String> {
    // vm_status.rego:14: regex `up|down`, unanchored, so powering_up and powering_down pass.
    match vm.status.as_deref() {
        Some(s) if s.contains("up") || s.contains("down") => None,
        Some(s) => Some(format!("the VM is {s}; it should be up or down to migrate")),
        None => Some(
            "the engine reported no status; Forklift stores an empty one, which is neither up nor down".into(),
        ),
    }
}

fn os_unsupported(vm: &VmRecord) -> Option<String> {
    let os = vm.os_type.as_deref()?;
    os.contains("rhel_6")
        .then(|| format!("guest OS {os} is not supported by OpenShift Virtualization"))
}

fn tpm_required(vm: &VmRecord) -> Option<String> {
    let os = vm.os_type.as_deref()?;
    (os.contains("windows_2022") || os.contains("windows_11"))
        .then(|| format!("guest OS {os} needs a TPM; TPM data is not migrated"))
}

fn secure_boot(vm: &VmRecord) -> Option<String> {
    (vm.bios_type.as_deref() == Some("q35_secure_boot"))
        .then(|| "the VM boots with Secure Boot, which is off on the target".into())
}

fn boot_menu(vm: &VmRecord) -> Option<String> {
    (vm.bios_boot_menu == Some(true))
        .then(|| "the BIOS boot menu is enabled; it is not migrated".into())
}

fn cpu_custom_model(vm: &VmRecord) -> Option<String> {
    let model = vm
        .cpu
        .as_ref()?
        .custom_model
        .as_deref()
        .filter(|m| !m.is_empty())?;
    Some(format!(
        "custom CPU model {model}; target nodes must offer it"
    ))
}

fn cpu_policy(vm: &VmRecord) -> Option<String> {
    let policy = vm.cpu.as_ref()?.pinning_policy.as_deref()?;
    (policy.contains("resize_and_pin_numa") || policy.contains("isolate_threads"))
        .then(|| format!("CPU pinning policy {policy} is not migrated"))
}

fn cpu_shares(vm: &VmRecord) -> Option<String> {
    let shares = vm.cpu.as_ref()?.shares?;
    (shares > 0).then(|| format!("CPU shares {shares} are not migrated"))
}

fn cpu_tune(vm: &VmRecord) -> Option<String> {
    let pins = vm.cpu.as_ref()?.pinning.as_ref()?;
    (!pins.is_empty()).then(|| format!("{} vCPU pin(s) are not migrated", pins.len()))
}

fn never_numa(_vm: &VmRecord) -> Option<String> {
    // The collector always stores numaNodeAffinity as [] (container/ovirt/resource.go,
    // `VM.ApplyTo`), so numa_tune.rego never fires.
    None
}

fn vm_custom_props(vm: &VmRecord) -> Option<String> {
    let props = vm.custom_properties.as_ref()?;
    (!props.is_empty()).then(|| {
        let names: Vec<&str> = props.iter().map(|p| p.name.as_str()).collect();
        format!("custom properties {} are not migrated", names.join(", "))
    })
}

fn ha(vm: &VmRecord) -> Option<String> {
    (vm.high_availability == Some(true))
        .then(|| "the VM is highly available; set a run strategy on the target instead".into())
}

fn ha_reservation(vm: &VmRecord) -> Option<String> {
    (vm.cluster.as_ref()?.ha_reservation == Some(true)).then(|| {
        "the VM's cluster reserves capacity for HA; the target has no such reservation".into()
    })
}

fn ksm(vm: &VmRecord) -> Option<String> {
    (vm.cluster.as_ref()?.ksm_enabled == Some(true))
        .then(|| "the VM's cluster merges memory pages (KSM); plan target memory without it".into())
}

fn host_devices(vm: &VmRecord) -> Option<String> {
    let devices = vm.host_devices.as_ref()?;
    (!devices.is_empty()).then(|| format!("host device(s) {} are not migrated", devices.join(", ")))
}

fn online_snapshot(vm: &VmRecord) -> Option<String> {
    let with_memory = vm
        .snapshots
        .iter()
        .flatten()
        .filter(|s| s.persist_memory == Some(true))
        .count();
    (with_memory > 0)
        .then(|| format!("{with_memory} snapshot(s) hold memory state, which is not migrated"))
}

fn placement_policy(vm: &VmRecord) -> Option<String> {
    let affinity = vm.placement_policy.as_ref()?.affinity.as_deref()?;
    has_word(affinity, "migratable").then(|| {
        "the VM live-migrates; on the target that needs ReadWriteMany storage and live migration"
            .into()
    })
}

/// `word` occurs in `text` with a word boundary (regex `\b`) on both sides.
pub fn has_word(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

fn usb(vm: &VmRecord) -> Option<String> {
    (vm.usb_enabled == Some(true))
        .then(|| "USB support is enabled; USB devices are not migrated".into())
}

fn watchdog(vm: &VmRecord) -> Option<String> {
    let dogs = vm.watchdogs.as_ref()?;
    (!dogs.is_empty()).then(|| "the VM has a watchdog device, which is not migrated".into())
}

fn ballooning(vm: &VmRecord) -> Option<String> {
    (vm.memory_ballooning == Some(true))
        .then(|| "memory ballooning is enabled; KubeVirt does not balloon".into())
}

fn spice(vm: &VmRecord) -> Option<String> {
    (vm.display_type.as_deref() == Some("spice"))
        .then(|| "the SPICE display becomes VNC on the target".into())
}

fn io_threads(vm: &VmRecord) -> Option<String> {
    let threads = vm.io_threads?;
    (threads > 1).then(|| format!("{threads} I/O threads are not migrated"))
}

fn resume(vm: &VmRecord) -> Option<String> {
    match vm.storage_error_resume_behaviour.as_deref() {
        Some("auto_resume") => None,
        Some(b) => Some(format!("storage error resume behaviour {b} is not migrated")),
        None => Some(
            "the engine reported no storage_error_resume_behaviour; Forklift stores an empty one, which is not auto_resume".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_boundaries() {
        assert!(has_word("migratable", "migratable"));
        assert!(has_word("a migratable b", "migratable"));
        assert!(!has_word("user_migratable", "migratable"));
        assert!(!has_word("migratables", "migratable"));
    }

    #[test]
    fn rego_names() {
        for (name, ok) in [
            ("web01", true),
            ("Win2019-AD01", true),
            ("web.example.com", true),
            ("", true),
            ("a", true),
            ("ba_shared_vm_1", false),
            ("-web", false),
            ("web.", false),
            ("web 01", false),
            (&"a".repeat(63), true),
            (&"a".repeat(64), false),
        ] {
            assert_eq!(rego_name_ok(name), ok, "{name}");
        }
    }

    #[test]
    fn the_table_has_forklifts_39_concerns() {
        assert_eq!(known().count(), 39);
        assert_eq!(known().filter(|(_, c)| *c == Critical).count(), 4);
    }
}
