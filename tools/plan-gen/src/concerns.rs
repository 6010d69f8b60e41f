//! Forklift's oVirt validation concerns, offline: each rule reads the VM record fields that hold
//! what Forklift's policy reads from its inventory, and raises the same concern id and category.
//! A field the record lacks never raises a concern (the engine did not report it).

use common::names::is_rfc1123_label;
use common::record::VmRecord;
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

/// One concern raised on a VM: Forklift's id and category, a label, and what it means here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concern {
    pub id: &'static str,
    pub category: Category,
    pub label: &'static str,
    pub assessment: String,
}

type Check = fn(&VmRecord) -> Option<String>;

/// (concern id, category, label, check): the check gives the assessment when the concern applies.
const RULES: &[(&str, Category, &str, Check)] = &[
    (
        "ovirt.disk.capacity.invalid",
        Category::Critical,
        "Disk with an invalid size",
        disk_capacity,
    ),
    (
        "ovirt.disk.illegal_or_locked_status",
        Category::Critical,
        "Disk in illegal or locked status",
        disk_status,
    ),
    (
        "ovirt.disk.storage_type.unsupported",
        Category::Critical,
        "Unsupported disk storage type",
        disk_storage_type,
    ),
    (
        "ovirt.disk.illegal_images.detected",
        Category::Critical,
        "Illegal disk images",
        illegal_images,
    ),
    (
        "ovirt.disk.count.exceeds.limit",
        Category::Warning,
        "Too many disks",
        disk_count,
    ),
    (
        "ovirt.disk.interface_type.unsupported",
        Category::Warning,
        "Unsupported disk interface",
        disk_interface,
    ),
    (
        "ovirt.disk.shared.detected",
        Category::Warning,
        "Shared disk",
        shared_disk,
    ),
    (
        "ovirt.disk.scsi_reservation.enabled",
        Category::Warning,
        "SCSI reservation enabled",
        scsi_reservation,
    ),
    (
        "ovirt.nic.interface_type.unsupported",
        Category::Warning,
        "Unsupported NIC interface",
        nic_interface,
    ),
    (
        "ovirt.nic.pci_passthrough.detected",
        Category::Warning,
        "PCI passthrough NIC",
        nic_passthrough,
    ),
    (
        "ovirt.nic.unplugged.detected",
        Category::Warning,
        "Unplugged NIC",
        nic_unplugged,
    ),
    (
        "ovirt.nic.custom_properties.detected",
        Category::Warning,
        "vNIC profile custom properties",
        nic_custom_props,
    ),
    (
        "ovirt.nic.network_filter.detected",
        Category::Warning,
        "vNIC profile network filter",
        nic_network_filter,
    ),
    (
        "ovirt.nic.port_mirroring.detected",
        Category::Warning,
        "vNIC profile port mirroring",
        nic_port_mirroring,
    ),
    (
        "ovirt.nic.qos.detected",
        Category::Warning,
        "vNIC profile QoS",
        nic_qos,
    ),
    (
        "ovirt.name.invalid",
        Category::Warning,
        "VM name is not a valid DNS-1123 label",
        name_invalid,
    ),
    (
        "ovirt.vm.status_invalid",
        Category::Warning,
        "VM neither up nor down",
        vm_status,
    ),
    (
        "ovirt.os.unsupported",
        Category::Warning,
        "Unsupported guest OS",
        os_unsupported,
    ),
    (
        "ovirt.tpm.required_by_os",
        Category::Warning,
        "Guest OS needs a TPM",
        tpm_required,
    ),
    (
        "ovirt.secure_boot.detected",
        Category::Warning,
        "Secure Boot firmware",
        secure_boot,
    ),
    (
        "ovirt.bios.boot_menu.enabled",
        Category::Warning,
        "BIOS boot menu enabled",
        boot_menu,
    ),
    (
        "ovirt.cpu.custom_model.detected",
        Category::Warning,
        "Custom CPU model",
        cpu_custom_model,
    ),
    (
        "ovirt.cpu.pinning_policy.unsupported",
        Category::Warning,
        "Unsupported CPU pinning policy",
        cpu_policy,
    ),
    (
        "ovirt.cpu.shares.defined",
        Category::Warning,
        "CPU shares set",
        cpu_shares,
    ),
    (
        "ovirt.cpu.tuning.detected",
        Category::Warning,
        "vCPU pinning",
        cpu_tune,
    ),
    (
        "ovirt.numa.tuning.detected",
        Category::Warning,
        "NUMA tuning",
        numa_tune,
    ),
    (
        "ovirt.vm.custom_properties.detected",
        Category::Warning,
        "VM custom properties",
        vm_custom_props,
    ),
    (
        "ovirt.ha.enabled",
        Category::Warning,
        "High availability enabled",
        ha,
    ),
    (
        "ovirt.ha.reservation.enabled",
        Category::Warning,
        "Cluster HA reservation",
        ha_reservation,
    ),
    (
        "ovirt.cluster.ksm_enabled",
        Category::Warning,
        "Cluster KSM enabled",
        ksm,
    ),
    (
        "ovirt.host_devices.mapped",
        Category::Warning,
        "Host devices attached",
        host_devices,
    ),
    (
        "ovirt.snapshot.online_memory.detected",
        Category::Warning,
        "Snapshot with memory",
        online_snapshot,
    ),
    (
        "ovirt.placement_policy.affinity_set",
        Category::Warning,
        "Migratable placement policy",
        placement_policy,
    ),
    ("ovirt.usb.enabled", Category::Warning, "USB enabled", usb),
    (
        "ovirt.watchdog.enabled",
        Category::Warning,
        "Watchdog device",
        watchdog,
    ),
    (
        "ovirt.memory.ballooning.enabled",
        Category::Information,
        "Memory ballooning",
        ballooning,
    ),
    (
        "ovirt.display_type.spice.enabled",
        Category::Information,
        "SPICE display",
        spice,
    ),
    (
        "ovirt.iothreads.configured",
        Category::Information,
        "I/O threads",
        io_threads,
    ),
    (
        "ovirt.storage.resume_behavior.unsupported",
        Category::Information,
        "Storage error resume behaviour",
        resume,
    ),
];

/// Every concern id this preflight knows, with its category (the order of Forklift's table).
pub fn known() -> impl Iterator<Item = (&'static str, Category)> {
    RULES.iter().map(|(id, category, _, _)| (*id, *category))
}

/// The concerns Forklift would raise on `vm`, in table order.
pub fn evaluate(vm: &VmRecord) -> Vec<Concern> {
    RULES
        .iter()
        .filter_map(|(id, category, label, check)| {
            check(vm).map(|assessment| Concern {
                id,
                category: *category,
                label,
                assessment,
            })
        })
        .collect()
}

fn disk_name(disk: &common::record::Disk) -> &str {
    disk.alias
        .as_deref()
        .or(disk.disk_id.as_deref())
        .unwrap_or(&disk.attachment_id)
}

fn nic_name(nic: &common::record::Nic) -> &str {
    nic.name.as_deref().unwrap_or(&nic.id)
}

/// Names the disks for which `pred` holds, or None when there are none.
fn disks_where(vm: &VmRecord, pred: impl Fn(&common::record::Disk) -> bool) -> Option<String> {
    let hits: Vec<&str> = vm
        .disks()
        .iter()
        .filter(|d| pred(d))
        .map(disk_name)
        .collect();
    (!hits.is_empty()).then(|| hits.join(", "))
}

fn nics_where(vm: &VmRecord, pred: impl Fn(&common::record::Nic) -> bool) -> Option<String> {
    let hits: Vec<&str> = vm.nics().iter().filter(|n| pred(n)).map(nic_name).collect();
    (!hits.is_empty()).then(|| hits.join(", "))
}

fn non_empty(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}

fn disk_capacity(vm: &VmRecord) -> Option<String> {
    // LUN disks are sized by their logical unit, image disks by their provisioned size (MTV-4180).
    disks_where(vm, |d| if d.is_lun() { d.lun_size_bytes == Some(0) } else { d.provisioned_bytes == Some(0) })
        .map(|d| format!("disk {d} reports a size of 0; its target volume cannot be sized, the VM is not migrated"))
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
    disks_where(vm, |d| d.storage_type.as_deref().is_some_and(|t| t != "image" && t != "lun")).map(|d| {
        format!("disk {d} is neither an image nor a LUN (e.g. cinder or managed block); the VM is not migrated")
    })
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
    let supported = |i: &str| {
        ["sata", "virtio_scsi", "virtio"]
            .iter()
            .any(|s| i.contains(s))
    };
    disks_where(vm, |d| {
        d.interface.as_deref().is_some_and(|i| !supported(i))
    })
    .map(|d| format!("disk {d} uses an interface KubeVirt lacks; it will be attached as virtio"))
}

fn shared_disk(vm: &VmRecord) -> Option<String> {
    disks_where(vm, |d| d.shareable == Some(true))
        .map(|d| format!("disk {d} is shareable; it is migrated with this VM only once"))
}

fn scsi_reservation(vm: &VmRecord) -> Option<String> {
    disks_where(vm, |d| d.uses_scsi_reservation == Some(true)).map(|d| {
        format!("disk {d} uses SCSI reservation, which needs setting up again on the target")
    })
}

fn nic_interface(vm: &VmRecord) -> Option<String> {
    let supported = |i: &str| ["e1000", "rtl8139", "virtio"].iter().any(|s| i.contains(s));
    nics_where(vm, |n| {
        n.interface.as_deref().is_some_and(|i| !supported(i))
    })
    .map(|n| format!("NIC {n} uses an interface KubeVirt lacks; it will be a virtio NIC"))
}

fn nic_passthrough(vm: &VmRecord) -> Option<String> {
    nics_where(vm, |n| n.interface.as_deref() == Some("pci_passthrough")).map(|n| {
        format!("NIC {n} is a PCI passthrough device, which needs SR-IOV set up on the target")
    })
}

fn nic_unplugged(vm: &VmRecord) -> Option<String> {
    nics_where(vm, |n| n.plugged == Some(false))
        .map(|n| format!("NIC {n} is unplugged; KubeVirt has no unplugged interfaces"))
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

fn name_invalid(vm: &VmRecord) -> Option<String> {
    (!is_rfc1123_label(&vm.name)).then(|| {
        format!(
            "{:?} is not a DNS-1123 label of at most 63 characters; the target VM is renamed",
            vm.name
        )
    })
}

fn vm_status(vm: &VmRecord) -> Option<String> {
    let status = vm.status.as_deref()?;
    (status != "up" && status != "down")
        .then(|| format!("the VM is {status}; it should be up or down to migrate"))
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

fn numa_tune(_vm: &VmRecord) -> Option<String> {
    // Forklift's collector always sets numaNodeAffinity to [], so this concern never fires there.
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
    has_word(affinity, "migratable")
        .then(|| "the VM live-migrates; on the target that needs ReadWriteMany storage and live migration".into())
}

/// `word` occurs in `text` with a word boundary (regex `\b`) on both sides.
fn has_word(text: &str, word: &str) -> bool {
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
    let behaviour = vm.storage_error_resume_behaviour.as_deref()?;
    (behaviour != "auto_resume")
        .then(|| format!("storage error resume behaviour {behaviour} is not migrated"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::record::{Cluster, Disk, Nic, PlacementPolicy, VnicProfile};

    fn ids(vm: &VmRecord) -> Vec<&'static str> {
        evaluate(vm).iter().map(|c| c.id).collect()
    }

    #[test]
    fn a_plain_vm_raises_nothing() {
        let vm = VmRecord {
            schema: 1,
            id: "x".into(),
            name: "web01".into(),
            status: Some("up".into()),
            ..Default::default()
        };
        assert!(evaluate(&vm).is_empty());
    }

    #[test]
    fn disk_rules() {
        let disk = |status: &str, storage: &str, size: u64, interface: &str| Disk {
            attachment_id: "a".into(),
            alias: Some("d".into()),
            status: Some(status.into()),
            storage_type: Some(storage.into()),
            provisioned_bytes: Some(size),
            lun_size_bytes: Some(size),
            interface: Some(interface.into()),
            ..Default::default()
        };
        let mut vm = VmRecord {
            schema: 1,
            id: "x".into(),
            name: "v".into(),
            ..Default::default()
        };
        vm.disks = Some(vec![disk("locked", "image", 0, "ide")]);
        assert_eq!(
            ids(&vm),
            [
                "ovirt.disk.capacity.invalid",
                "ovirt.disk.illegal_or_locked_status",
                "ovirt.disk.interface_type.unsupported"
            ]
        );
        vm.disks = Some(vec![
            disk("ok", "lun", 1, "virtio_scsi"),
            disk("ok", "cinder", 1, "sata"),
        ]);
        assert_eq!(ids(&vm), ["ovirt.disk.storage_type.unsupported"]);
        vm.disks = Some(vec![disk("ok", "image", 1, "virtio"); 166]);
        assert_eq!(ids(&vm), ["ovirt.disk.count.exceeds.limit"]);
    }

    #[test]
    fn nic_and_vm_rules() {
        let mut vm = VmRecord {
            schema: 1,
            id: "x".into(),
            name: "Web_01".into(),
            ..Default::default()
        };
        vm.nics = Some(vec![Nic {
            id: "n".into(),
            interface: Some("pci_passthrough".into()),
            plugged: Some(false),
            vnic_profile: Some(VnicProfile {
                id: "p".into(),
                qos: Some("gold".into()),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        vm.cluster = Some(Cluster {
            id: "c".into(),
            ksm_enabled: Some(true),
            ..Default::default()
        });
        vm.placement_policy = Some(PlacementPolicy {
            affinity: Some("user_migratable".into()),
            hosts: None,
        });
        vm.os_type = Some("windows_2022".into());
        assert_eq!(
            ids(&vm),
            [
                "ovirt.nic.interface_type.unsupported",
                "ovirt.nic.pci_passthrough.detected",
                "ovirt.nic.unplugged.detected",
                "ovirt.nic.qos.detected",
                "ovirt.name.invalid",
                "ovirt.tpm.required_by_os",
                "ovirt.cluster.ksm_enabled",
            ]
        );
        vm.placement_policy = Some(PlacementPolicy {
            affinity: Some("migratable".into()),
            hosts: None,
        });
        assert!(ids(&vm).contains(&"ovirt.placement_policy.affinity_set"));
    }

    #[test]
    fn word_boundaries() {
        assert!(has_word("migratable", "migratable"));
        assert!(has_word("a migratable b", "migratable"));
        assert!(!has_word("user_migratable", "migratable"));
        assert!(!has_word("migratables", "migratable"));
    }

    #[test]
    fn table_has_every_forklift_concern() {
        assert_eq!(known().count(), 39);
        assert_eq!(known().filter(|(_, c)| *c == Category::Critical).count(), 4);
    }
}
