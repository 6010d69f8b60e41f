//! plan-gen's preflight, rule by rule, for every Forklift version it knows: one VM record per case,
//! each the plain record below with exactly one change, and the findings Forklift would give it at
//! that version, written from Forklift's code (kubev2v/forklift at tag v2.12.5 and at main
//! d42511bb; the rego files are identical at both): `R` = validation/policies/io/konveyor/
//! forklift/ovirt/, `V` = pkg/controller/plan/adapter/ovirt/validator.go, `N` =
//! pkg/controller/plan/adapter/base/network.go, `C` = pkg/controller/provider/container/ovirt/
//! resource.go (the collector, which stores Go zero values for fields the engine leaves out).

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

const PLAN_GEN: &str = env!("CARGO_BIN_EXE_plan-gen");

/// A VM that raises nothing at any version: every field a rule reads is present with a value no
/// rule fires on (affinity `pinned`: `migratable` would raise placement_policy.rego).
fn plain(index: usize) -> Value {
    json!({
        "schema": 1, "id": format!("7b000000-0000-4000-8000-{index:012}"), "name": format!("vm-{index}"),
        "engine_version": "4.5.6-1.el8",
        "data_center": {"id": "dc1", "name": "DC1"},
        "cluster": {"id": "c1", "name": "C1", "ha_reservation": false, "ksm_enabled": false},
        "status": "up", "os_type": "rhel_8x64", "bios_type": "q35_ovmf", "bios_boot_menu": false,
        "memory_bytes": 2147483648_u64, "memory_ballooning": false, "display_type": "vnc",
        "io_threads": 1, "storage_error_resume_behaviour": "auto_resume",
        "high_availability": false, "usb_enabled": false, "has_illegal_images": false,
        "placement_policy": {"affinity": "pinned"},
        "cpu": {"sockets": 1, "cores": 2, "threads": 1, "shares": 0, "pinning_policy": "none"},
        "custom_properties": [], "watchdogs": [], "host_devices": [], "snapshots": [],
        "disks": [disk(index, 0)],
        "nics": [nic(index, 0, "net-a")],
        "target_namespace": "team"
    })
}

fn disk(vm: usize, n: usize) -> Value {
    json!({"attachment_id": format!("att-{vm}-{n}"), "disk_id": format!("disk-{vm}-{n}"),
           "alias": format!("disk{n}"), "interface": "virtio_scsi", "uses_scsi_reservation": false,
           "shareable": false, "status": "ok", "storage_type": "image",
           "provisioned_bytes": 10737418240_u64, "actual_bytes": 1073741824_u64,
           "storage_domain": {"id": "5d000000-0000-4000-8000-000000000001", "name": "nfs-data"}})
}

fn nic(vm: usize, n: usize, network: &str) -> Value {
    json!({"id": format!("nic-{vm}-{n}"), "name": format!("nic{n}"),
           "mac": format!("56:6f:00:00:{vm:02x}:{n:02x}"), "interface": "virtio", "plugged": true,
           "vnic_profile": {"id": format!("p-{network}"), "name": network, "port_mirroring": false,
                            "network_filter": "", "qos": "", "custom_properties": []},
           "network": {"id": format!("4e000000-0000-4000-8000-00000000{}", &network[4..]),
                       "name": network, "data_center": {"id": "dc1", "name": "DC1"}},
           "ipv4": [], "ipv6": []})
}

/// The networks of the cases and where they go: two networks onto one NAD, one onto another, one
/// onto the pod network (ids end in the network's letter, see `nic`).
const MAPS: &[&str] = &[
    "--network-map",
    "DC1/net-a=multus:team/nad-a",
    "--network-map",
    "DC1/net-b=multus:team/nad-a",
    "--network-map",
    "DC1/net-c=multus:team/nad-c",
    "--network-map",
    "DC1/net-p=pod",
    "--storage-map",
    "*=standard",
];

type Change = fn(&mut Value, usize);

/// One case: what changes, the findings at 2.12 and at main, and why (where Forklift says so).
struct Case {
    change: &'static str,
    apply: Change,
    at_2_12: &'static [&'static str],
    at_main: &'static [&'static str],
    why: &'static str,
}

const fn same(
    change: &'static str,
    apply: Change,
    ids: &'static [&'static str],
    why: &'static str,
) -> Case {
    Case {
        change,
        apply,
        at_2_12: ids,
        at_main: ids,
        why,
    }
}

fn remove(record: &mut Value, path: &[&str]) {
    let (last, parents) = path.split_last().unwrap();
    let mut at = record;
    for key in parents {
        at = if let Ok(i) = key.parse::<usize>() {
            &mut at[i]
        } else {
            &mut at[*key]
        };
    }
    at.as_object_mut().unwrap().remove(*last);
}

const NONE: &[&str] = &[];

fn cases() -> Vec<Case> {
    vec![
        same("nothing", |_, _| {}, NONE, "the plain record"),
        // disk_size.rego:16-19 (non-LUN provisionedSize <= 0) and V:32 InvalidDiskSizes (line 46).
        same(
            "disk provisioned 0",
            |r, _| r["disks"][0]["provisioned_bytes"] = json!(0),
            &["InvalidDiskSizes", "ovirt.disk.capacity.invalid"],
            "R disk_size.rego:18, V:46",
        ),
        same(
            "disk provisioned missing",
            |r, _| remove(r, &["disks", "0", "provisioned_bytes"]),
            &["InvalidDiskSizes", "ovirt.disk.capacity.invalid"],
            "C Disk.ApplyTo int64(\"\") = 0",
        ),
        same(
            "disk provisioned 1",
            |r, _| r["disks"][0]["provisioned_bytes"] = json!(1),
            NONE,
            "R disk_size.rego:18",
        ),
        // A LUN of size 0: the rego's LUN branch reads disk.lun, which the inventory names lunStorage
        // (web/ovirt/disk.go:148), so only the validator's InvalidDiskSizes (V:41-44) fires.
        same(
            "LUN of size 0",
            |r, _| {
                r["disks"][0] = json!({"attachment_id": "l", "alias": "lun0", "interface": "virtio_scsi", "status": "ok", "storage_type": "lun", "lun_size_bytes": 0, "uses_scsi_reservation": false});
            },
            &["InvalidDiskSizes"],
            "V:42 isLunMissingSize; R disk_size.rego:26 never matches",
        ),
        same(
            "LUN of size 1 GiB",
            |r, _| {
                r["disks"][0] = json!({"attachment_id": "l", "alias": "lun0", "interface": "virtio_scsi", "status": "ok", "storage_type": "lun", "lun_size_bytes": 1073741824_u64, "uses_scsi_reservation": false});
            },
            NONE,
            "R disk_storage_type.rego:12 accepts lun",
        ),
        same(
            "disk illegal",
            |r, _| r["disks"][0]["status"] = json!("illegal"),
            &["ovirt.disk.illegal_or_locked_status"],
            "R disk_status.rego:7",
        ),
        same(
            "disk locked",
            |r, _| r["disks"][0]["status"] = json!("locked"),
            &["ovirt.disk.illegal_or_locked_status"],
            "R disk_status.rego:7",
        ),
        same(
            "disk status missing",
            |r, _| remove(r, &["disks", "0", "status"]),
            NONE,
            "R disk_status.rego:7 on \"\"",
        ),
        same(
            "disk cinder",
            |r, _| r["disks"][0]["storage_type"] = json!("cinder"),
            &["ovirt.disk.storage_type.unsupported"],
            "R disk_storage_type.rego:16",
        ),
        // A missing storage type is "" (C Disk.ApplyTo): neither image nor lun.
        same(
            "disk storage type missing",
            |r, _| remove(r, &["disks", "0", "storage_type"]),
            &["ovirt.disk.storage_type.unsupported"],
            "R disk_storage_type.rego:16",
        ),
        same(
            "illegal images",
            |r, _| r["has_illegal_images"] = json!(true),
            &["ovirt.disk.illegal_images.detected"],
            "R illegal_images.rego:8",
        ),
        same(
            "166 disks",
            |r, i| r["disks"] = (0..166).map(|n| disk(i, n)).collect(),
            &["ovirt.disk.count.exceeds.limit"],
            "R disk_count.rego:9 (> 165)",
        ),
        same(
            "165 disks",
            |r, i| r["disks"] = (0..165).map(|n| disk(i, n)).collect(),
            NONE,
            "R disk_count.rego:9",
        ),
        same(
            "disk on ide",
            |r, _| r["disks"][0]["interface"] = json!("ide"),
            &["ovirt.disk.interface_type.unsupported"],
            "R disk_interface_type.rego:7",
        ),
        same(
            "disk interface missing",
            |r, _| remove(r, &["disks", "0", "interface"]),
            &["ovirt.disk.interface_type.unsupported"],
            "R disk_interface_type.rego:7 on \"\"",
        ),
        same(
            "disk on sata",
            |r, _| r["disks"][0]["interface"] = json!("sata"),
            NONE,
            "R disk_interface_type.rego:7",
        ),
        // shared_disk.rego:7 reads disk.shared, filled from the engine's `sharable` (C:664) while
        // the API sends `shareable`: Forklift never raises it; liftkit warns under its own id.
        same(
            "shareable disk",
            |r, _| r["disks"][0]["shareable"] = json!(true),
            &["liftkit.disk.shared"],
            "C:664 Sharable `json:\"sharable\"`",
        ),
        same(
            "SCSI reservation",
            |r, _| r["disks"][0]["uses_scsi_reservation"] = json!(true),
            &["ovirt.disk.scsi_reservation.enabled"],
            "R scsi_reservation.rego:7",
        ),
        same(
            "NIC spapr_vlan",
            |r, _| r["nics"][0]["interface"] = json!("spapr_vlan"),
            &["ovirt.nic.interface_type.unsupported"],
            "R nic_interface_type.rego:7",
        ),
        same(
            "NIC interface missing",
            |r, _| remove(r, &["nics", "0", "interface"]),
            &["ovirt.nic.interface_type.unsupported"],
            "R nic_interface_type.rego:7 on \"\"",
        ),
        same(
            "NIC e1000e",
            |r, _| r["nics"][0]["interface"] = json!("e1000e"),
            NONE,
            "R nic_interface_type.rego:7 unanchored",
        ),
        same(
            "NIC pci_passthrough",
            |r, _| r["nics"][0]["interface"] = json!("pci_passthrough"),
            &[
                "ovirt.nic.interface_type.unsupported",
                "ovirt.nic.pci_passthrough.detected",
            ],
            "R nic_interface_type.rego:7, nic_pci_passthrough.rego:7",
        ),
        same(
            "NIC unplugged",
            |r, _| r["nics"][0]["plugged"] = json!(false),
            &["ovirt.nic.unplugged.detected"],
            "R nic_plugged.rego:7",
        ),
        same(
            "NIC plugged missing",
            |r, _| remove(r, &["nics", "0", "plugged"]),
            &["ovirt.nic.unplugged.detected"],
            "C addNICs bool(\"\") = false",
        ),
        same(
            "profile custom properties",
            |r, _| {
                r["nics"][0]["vnic_profile"]["custom_properties"] =
                    json!([{"name": "x", "value": "1"}])
            },
            &["ovirt.nic.custom_properties.detected"],
            "R nic_custom_properties.rego:8",
        ),
        same(
            "profile network filter",
            |r, _| r["nics"][0]["vnic_profile"]["network_filter"] = json!("vdsm-no-mac-spoofing"),
            &["ovirt.nic.network_filter.detected"],
            "R nic_network_filter.rego:7",
        ),
        same(
            "profile port mirroring",
            |r, _| r["nics"][0]["vnic_profile"]["port_mirroring"] = json!(true),
            &["ovirt.nic.port_mirroring.detected"],
            "R nic_port_mirroring.rego:7",
        ),
        same(
            "profile QoS",
            |r, _| r["nics"][0]["vnic_profile"]["qos"] = json!("gold"),
            &["ovirt.nic.qos.detected"],
            "R nic_qos.rego:7",
        ),
        same(
            "name with _",
            |r, i| r["name"] = json!(format!("vm_{i}")),
            &["ovirt.name.invalid"],
            "R name.rego:20",
        ),
        same(
            "name with capitals and a dot",
            |r, i| r["name"] = json!(format!("Vm.{i}")),
            NONE,
            "R name.rego:20 allows A-Z and .",
        ),
        same(
            "name of 64 characters",
            |r, i| r["name"] = json!(format!("{:a<64}", format!("v{i}-"))),
            &["ovirt.name.invalid"],
            "R name.rego:21 (< 64)",
        ),
        same(
            "name of 63 characters",
            |r, i| r["name"] = json!(format!("{:a<63}", format!("v{i}-"))),
            NONE,
            "R name.rego:21",
        ),
        same(
            "status paused",
            |r, _| r["status"] = json!("paused"),
            &["ovirt.vm.status_invalid"],
            "R vm_status.rego:14",
        ),
        same(
            "status missing",
            |r, _| remove(r, &["status"]),
            &["ovirt.vm.status_invalid"],
            "R vm_status.rego:10 is_string(\"\")",
        ),
        same(
            "status powering_up",
            |r, _| r["status"] = json!("powering_up"),
            NONE,
            "R vm_status.rego:14 unanchored",
        ),
        same(
            "OS rhel_6x64",
            |r, _| r["os_type"] = json!("rhel_6x64"),
            &["ovirt.os.unsupported"],
            "R vm_os.rego:8",
        ),
        same(
            "OS windows_2022",
            |r, _| r["os_type"] = json!("windows_2022"),
            &["ovirt.tpm.required_by_os"],
            "R tpm.rego:8",
        ),
        same(
            "OS windows_2019x64",
            |r, _| r["os_type"] = json!("windows_2019x64"),
            NONE,
            "R tpm.rego:8",
        ),
        same(
            "secure boot",
            |r, _| r["bios_type"] = json!("q35_secure_boot"),
            &["ovirt.secure_boot.detected"],
            "R secure_boot.rego:8",
        ),
        same(
            "boot menu",
            |r, _| r["bios_boot_menu"] = json!(true),
            &["ovirt.bios.boot_menu.enabled"],
            "R bios_boot_menu.rego:8",
        ),
        same(
            "custom CPU model",
            |r, _| r["cpu"]["custom_model"] = json!("Haswell-noTSX"),
            &["ovirt.cpu.custom_model.detected"],
            "R cpu_custom_model.rego:8",
        ),
        same(
            "pinning policy resize_and_pin_numa",
            |r, _| r["cpu"]["pinning_policy"] = json!("resize_and_pin_numa"),
            &["ovirt.cpu.pinning_policy.unsupported"],
            "R cpu_policy.rego:9",
        ),
        same(
            "pinning policy manual",
            |r, _| r["cpu"]["pinning_policy"] = json!("manual"),
            NONE,
            "R cpu_policy.rego:9",
        ),
        same(
            "CPU shares",
            |r, _| r["cpu"]["shares"] = json!(1024),
            &["ovirt.cpu.shares.defined"],
            "R cpu_shares.rego:8",
        ),
        same(
            "vCPU pins",
            |r, _| r["cpu"]["pinning"] = json!([{"vcpu": 0, "cpu_set": "2"}]),
            &["ovirt.cpu.tuning.detected"],
            "R cpu_tune.rego:8",
        ),
        same(
            "VM custom properties",
            |r, _| r["custom_properties"] = json!([{"name": "sap_agent", "value": "true"}]),
            &["ovirt.vm.custom_properties.detected"],
            "R custom_properties.rego:8",
        ),
        same(
            "HA",
            |r, _| r["high_availability"] = json!(true),
            &["ovirt.ha.enabled"],
            "R ha.rego:8",
        ),
        same(
            "cluster HA reservation",
            |r, _| r["cluster"]["ha_reservation"] = json!(true),
            &["ovirt.ha.reservation.enabled"],
            "R ha_reservation.rego:8",
        ),
        same(
            "cluster KSM",
            |r, _| r["cluster"]["ksm_enabled"] = json!(true),
            &["ovirt.cluster.ksm_enabled"],
            "R ksm.rego:8",
        ),
        same(
            "host device",
            |r, _| r["host_devices"] = json!(["pci_0000_3b_00_0"]),
            &["ovirt.host_devices.mapped"],
            "R host_devices.rego:8",
        ),
        same(
            "memory snapshot",
            |r, _| r["snapshots"] = json!([{"id": "s1", "persist_memory": true}]),
            &["ovirt.snapshot.online_memory.detected"],
            "R online_snapshot.rego:7",
        ),
        same(
            "disk-only snapshot",
            |r, _| r["snapshots"] = json!([{"id": "s1", "persist_memory": false}]),
            NONE,
            "R online_snapshot.rego:7",
        ),
        same(
            "affinity migratable",
            |r, _| r["placement_policy"]["affinity"] = json!("migratable"),
            &["ovirt.placement_policy.affinity_set"],
            "R placement_policy.rego:8",
        ),
        same(
            "affinity user_migratable",
            |r, _| r["placement_policy"]["affinity"] = json!("user_migratable"),
            NONE,
            "R placement_policy.rego:8 \\b",
        ),
        same(
            "USB",
            |r, _| r["usb_enabled"] = json!(true),
            &["ovirt.usb.enabled"],
            "R usb.rego:8",
        ),
        same(
            "watchdog",
            |r, _| r["watchdogs"] = json!([{"model": "i6300esb", "action": "reset"}]),
            &["ovirt.watchdog.enabled"],
            "R watchdog.rego:8",
        ),
        same(
            "ballooning",
            |r, _| r["memory_ballooning"] = json!(true),
            &["ovirt.memory.ballooning.enabled"],
            "R ballooned_memory.rego:8",
        ),
        same(
            "SPICE",
            |r, _| r["display_type"] = json!("spice"),
            &["ovirt.display_type.spice.enabled"],
            "R display_type.rego:8",
        ),
        same(
            "2 I/O threads",
            |r, _| r["io_threads"] = json!(2),
            &["ovirt.iothreads.configured"],
            "R io_threads.rego:8 (> 1)",
        ),
        same(
            "resume kill",
            |r, _| r["storage_error_resume_behaviour"] = json!("kill"),
            &["ovirt.storage.resume_behavior.unsupported"],
            "R storage_error_resume_behaviour.rego:8",
        ),
        same(
            "resume missing",
            |r, _| remove(r, &["storage_error_resume_behaviour"]),
            &["ovirt.storage.resume_behavior.unsupported"],
            "R storage_error_resume_behaviour.rego:8 on \"\"",
        ),
        // V:118 NetworksMapped looks up nic.Profile.Network: "" without a profile, in no map.
        same(
            "NIC without a vNIC profile",
            |r, _| {
                remove(r, &["nics", "0", "vnic_profile"]);
                remove(r, &["nics", "0", "network"]);
            },
            &["VMNetworksNotMapped"],
            "V:130",
        ),
        Case {
            change: "second NIC on another network to the same NAD",
            apply: |r, i| r["nics"].as_array_mut().unwrap().push(nic(i, 1, "net-b")),
            at_2_12: &["VMDuplicateNADMappings"],
            at_main: NONE,
            why: "v2.12.5 N:82 ValidateNetworkDuplicates (NADPool line 49 has no NAD left); main N:124 counts pod NICs only",
        },
        same(
            "second NIC on another NAD",
            |r, i| r["nics"].as_array_mut().unwrap().push(nic(i, 1, "net-c")),
            NONE,
            "N:82 / N:124",
        ),
        same(
            "two NICs on the pod network",
            |r, i| {
                r["nics"] = json!([nic(i, 0, "net-p"), nic(i, 1, "net-p")]);
            },
            &["VMMultiplePodNetworkMappings"],
            "v2.12.5 N:104, main N:124",
        ),
        same(
            "a LUN on engine 4.4",
            |r, _| {
                r["engine_version"] = json!("4.4.10.7");
                r["disks"].as_array_mut().unwrap().push(json!({"attachment_id": "l", "alias": "lun0", "interface": "virtio_scsi", "status": "ok", "storage_type": "lun", "lun_size_bytes": 1073741824_u64, "uses_scsi_reservation": false}));
            },
            &["VMStorageNotSupported"],
            "V:175 DirectStorage, V:223 minVersion 4521",
        ),
        // V:221 adds the parts (major*1000 + minor*100 + build*10 + revision): 4.4.13.0 is 4530.
        same(
            "a LUN on engine 4.4.13.0",
            |r, _| {
                r["engine_version"] = json!("4.4.13.0");
                r["disks"].as_array_mut().unwrap().push(json!({"attachment_id": "l", "alias": "lun0", "interface": "virtio_scsi", "status": "ok", "storage_type": "lun", "lun_size_bytes": 1073741824_u64, "uses_scsi_reservation": false}));
            },
            NONE,
            "V:221, container/ovirt/collector.go:155 parseVersion",
        ),
    ]
}

/// (vm id → concern ids) from a plan-gen run over `records` at `version`.
fn findings(
    records: &[Value],
    version: &str,
) -> (i32, BTreeMap<String, BTreeSet<String>>, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.jsonl");
    let mut cmd = Command::new(PLAN_GEN);
    cmd.args([
        "--url",
        "https://engine.example.com/ovirt-engine/api",
        "--forklift-version",
        version,
    ])
    .args(MAPS)
    .arg("--report")
    .arg(&report)
    .env_remove("RUST_LOG")
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    for record in records {
        writeln!(input, "{record}").unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "plan-gen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = std::fs::read_to_string(&report)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut by_vm: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &lines {
        by_vm
            .entry(f["vm_id"].as_str().unwrap().to_string())
            .or_default()
            .insert(f["concern_id"].as_str().unwrap().to_string());
    }
    (code, by_vm, lines)
}

fn records(cases: &[Case]) -> Vec<Value> {
    cases
        .iter()
        .enumerate()
        .map(|(i, case)| {
            let mut record = plain(i);
            (case.apply)(&mut record, i);
            record
        })
        .collect()
}

#[test]
fn every_rule_at_every_version_raises_what_forklift_raises() {
    let cases = cases();
    let records = records(&cases);
    for version in ["2.12", "main"] {
        let (_, by_vm, _) = findings(&records, version);
        let mut wrong = Vec::new();
        for (case, record) in cases.iter().zip(&records) {
            let expected: BTreeSet<String> = if version == "2.12" {
                case.at_2_12
            } else {
                case.at_main
            }
            .iter()
            .map(|s| s.to_string())
            .collect();
            let got = by_vm
                .get(record["id"].as_str().unwrap())
                .cloned()
                .unwrap_or_default();
            if got != expected {
                wrong.push(format!(
                    "{version}: {}: expected {expected:?} ({}), got {got:?}",
                    case.change, case.why
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}

/// Two input VMs with one MAC: liftkit's own check (Forklift's MacConflicts compares with VMs in
/// the cluster, pkg/controller/plan/adapter/base/mac_conflicts.go:89), Critical on both.
#[test]
fn a_mac_two_input_vms_share_is_liftkits_own_finding() {
    let mut a = plain(900);
    let mut b = plain(901);
    b["nics"][0]["mac"] = a["nics"][0]["mac"].clone();
    a["name"] = json!("mac-a");
    let (code, by_vm, lines) = findings(&[a, b], "2.12");
    assert_eq!(code, 1);
    for ids in by_vm.values() {
        assert_eq!(
            ids,
            &BTreeSet::from(["liftkit.nic.mac_conflict".to_string()])
        );
    }
    assert_eq!(by_vm.len(), 2);
    assert!(
        lines
            .iter()
            .all(|f| f["left_out"] == true && f["category"] == "Critical")
    );
}

/// Labels are Forklift's own words (the rego's "label" line), so liftkit and the Forklift UI agree.
#[test]
fn labels_are_forklifts() {
    let cases = cases();
    let records = records(&cases);
    let (_, _, lines) = findings(&records, "2.12");
    let label = |id: &str| -> Option<String> {
        lines
            .iter()
            .find(|f| f["concern_id"] == id)
            .map(|f| f["label"].as_str().unwrap().to_string())
    };
    for (id, forklift) in [
        (
            "ovirt.disk.scsi_reservation.enabled",
            "Shared disk detected",
        ), // scsi_reservation.rego:15
        ("ovirt.name.invalid", "Invalid VM Name"), // name.rego:31
        (
            "ovirt.vm.status_invalid",
            "VM has a status condition that may prevent successful migration",
        ), // vm_status.rego:23
        (
            "ovirt.disk.count.exceeds.limit",
            "VM has 166 disks, which exceeds the limit of 165",
        ), // disk_count.rego:17
        ("InvalidDiskSizes", "VM has disks with invalid sizes."), // validation.go:916
        (
            "VMDuplicateNADMappings",
            "Multiple VM NICs mapped to the same Multus NAD. Add additional NetworkMap entries with different destination NADs for the same source network.",
        ), // validation.go:809
    ] {
        assert_eq!(label(id).as_deref(), Some(forklift), "{id}");
    }
}

/// A field the engine left out is said to be missing.
#[test]
fn missing_fields_are_named() {
    let cases = cases();
    let records = records(&cases);
    let (_, _, lines) = findings(&records, "2.12");
    for (change, needle) in [
        ("status missing", "reported no status"),
        (
            "resume missing",
            "reported no storage_error_resume_behaviour",
        ),
        ("NIC plugged missing", "reported no plugged"),
        ("disk provisioned missing", "reported no provisioned_size"),
    ] {
        let index = cases.iter().position(|c| c.change == change).unwrap();
        let id = records[index]["id"].as_str().unwrap();
        assert!(
            lines
                .iter()
                .any(|f| f["vm_id"] == id && f["assessment"].as_str().unwrap().contains(needle)),
            "{change}: no finding says {needle:?}"
        );
    }
}

#[test]
fn an_unknown_version_is_a_usage_error_listing_the_known_ones() {
    let out = Command::new(PLAN_GEN)
        .args([
            "--url",
            "https://e/ovirt-engine/api",
            "--forklift-version",
            "2.11",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2.12") && err.contains("main"), "{err}");
    let help = Command::new(PLAN_GEN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("v2.12.5") && help.contains("d42511bb"),
        "{help}"
    );
}
