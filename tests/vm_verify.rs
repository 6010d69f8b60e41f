//! vm-verify on the real test bed (issue 16): a live run of demo VMs through plan-run and
//! forklift-sim (playing Forklift v2.12.5 and KubeVirt v1.9.0, with the world's after-move faults),
//! then vm-verify against the cluster and a DNS server of the test's own. Every expectation comes
//! from the world file (tests/worlds/demo.json, `after_move`), ip-budget's allocations, or a fault
//! the test makes itself on the cluster, never from vm-verify's code.

#[path = "kubebed/mod.rs"]
mod kubebed;
mod pipeline;
mod support;

use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, UdpSocket};
use std::path::{Path, PathBuf};

/// The demo VMs moved: the five with an after-move fault, one whose migration fails
/// (rdu-web-03, --fail-vm), and clean ones of each kind (two NICs, the pod network, EFI, a VM
/// that was down, one without a guest agent at the source, a direct LUN disk).
const VMS: &[&str] = &[
    "rdu-web-01",
    "elk-es-01",
    "rdu-web-03",
    "rdu-web-04",
    "nexus-repo",
    "rdu-app-02",
    "jenkins-agent-02",
    "rdu-cache-01",
    "tlv2-web-01",
    "tlv2-db-01",
    "secureboot-win2022",
    "Win2019-AD01",
    "san-lun-db01",
];
const FAILED_MIGRATION: &str = "rdu-web-03";
const MAP: &str = "tests/fixtures/demo-networks.map";
const URL: &str = "https://engine.example.com/ovirt-engine/api";

fn world_vm(name: &str) -> &'static Value {
    pipeline::world()["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in the demo world"))
}

/// The check each planted fault must fail, as WORLD.md defines `after_move`.
fn planted_failures() -> BTreeSet<(String, String)> {
    VMS.iter()
        .filter_map(|name| {
            pipeline::after_move_check(world_vm(name)).map(|c| (name.to_string(), c.to_string()))
        })
        .collect()
}

fn tool(bin: &str, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> std::process::Output {
    let mut all = vec![("NO_COLOR", "1")];
    all.extend_from_slice(env);
    pipeline::run_with_env(bin, args, stdin, &all)
}

/// owner-group's records of the VMs moved.
fn records() -> Vec<u8> {
    let owned = pipeline::owned(pipeline::demo_records());
    let text = String::from_utf8(owned).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        if VMS.contains(&record["name"].as_str().unwrap_or_default()) {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert_eq!(out.lines().count(), VMS.len(), "records of {VMS:?}");
    out.into_bytes()
}

/// A test bed run of the VMs: manifests, forklift-sim, plan-run.
struct Moved {
    dir: tempfile::TempDir,
    records: PathBuf,
    allocations: PathBuf,
    forklift_ns: String,
    _sim: kubebed::ForkliftSim,
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

async fn move_vms(bed: &'static kubebed::Testbed) -> Moved {
    let dir = tempfile::tempdir().unwrap();
    let records = write(dir.path(), "records.jsonl", &records());
    let r = records.to_str().unwrap();
    // TLV2's vlan400 moves to a new subnet: its NICs get new addresses (DHCP reservations).
    let out = tool(
        env!("CARGO_BIN_EXE_ip-budget"),
        &[
            "--allocate",
            "--map-file",
            MAP,
            "--subnet",
            "vm-networks/tlv-apps=10.20.0.0/24",
            "--reserve",
            "10.20.0.1",
            r,
        ],
        b"",
        &[],
    );
    assert_eq!(
        pipeline::code(&out),
        0,
        "ip-budget: {}",
        pipeline::stderr(&out)
    );
    let allocations = write(dir.path(), "allocations.jsonl", &out.stdout);
    let out = tool(
        env!("CARGO_BIN_EXE_rbac-gen"),
        &["--strip-domain", r],
        b"",
        &[],
    );
    assert_eq!(
        pipeline::code(&out),
        0,
        "rbac-gen: {}",
        pipeline::stderr(&out)
    );
    let rbac = write(dir.path(), "rbac.jsonl", &out.stdout);
    let forklift_ns = bed.namespace("mtv").await;
    let out = tool(
        env!("CARGO_BIN_EXE_plan-gen"),
        &[
            "--url",
            URL,
            "--namespace",
            &forklift_ns,
            "--map-file",
            MAP,
            "--with-secret",
            "--user",
            "admin@internal",
            "--insecure-skip-verify",
            "-q",
            r,
        ],
        b"",
        &[("OVIRT_PASSWORD", "ovirt-sim-demo")],
    );
    assert!(
        matches!(pipeline::code(&out), 0 | 1),
        "plan-gen: {}",
        pipeline::stderr(&out)
    );
    let plans = write(dir.path(), "plans.jsonl", &out.stdout);
    let sim = kubebed::ForkliftSim::start(
        bed,
        &pipeline::world_path(),
        &[
            "--namespace",
            &forklift_ns,
            "--time-scale",
            "1200",
            "--status-interval",
            "300ms",
            "--dhcp",
            allocations.to_str().unwrap(),
            "--fail-vm",
            FAILED_MIGRATION,
        ],
    );
    let kubeconfig = bed.kubeconfig.to_str().unwrap().to_string();
    let (rbac, plans) = (
        rbac.to_str().unwrap().to_string(),
        plans.to_str().unwrap().to_string(),
    );
    let out = tokio::task::spawn_blocking(move || {
        tool(
            env!("CARGO_BIN_EXE_plan-run"),
            &["--ready-timeout", "120s", &rbac, &plans],
            b"",
            &[("KUBECONFIG", &kubeconfig)],
        )
    })
    .await
    .unwrap();
    let events = pipeline::lines(&out);
    let succeeded = events
        .iter()
        .filter(|e| e["event"] == "vm-succeeded")
        .count();
    assert_eq!(
        succeeded,
        VMS.len() - 1,
        "plan-run: {}",
        pipeline::stderr(&out)
    );
    booted(bed).await;
    Moved {
        dir,
        records,
        allocations,
        forklift_ns,
        _sim: sim,
    }
}

/// Waits until every moved VM the world says boots with its agent has a VirtualMachineInstance
/// Running with AgentConnected (named as Forklift names it: the source name lowercased), so the
/// tests' short --boot-timeout, which the planted no-boot VMs wait out in full, measures
/// vm-verify and not how fast a loaded machine plays KubeVirt.
async fn booted(bed: &'static kubebed::Testbed) {
    let api: Api<DynamicObject> =
        Api::all_with(bed.client().await, &kubevirt("VirtualMachineInstance"));
    // The VMs that ran on the source (Forklift keeps a VM's power state) and boot; of those,
    // the ones whose source agent reported (guest_os) and whose agent still runs.
    let expected: BTreeMap<String, bool> = VMS
        .iter()
        .filter(|n| **n != FAILED_MIGRATION)
        .map(|n| world_vm(n))
        .filter(|vm| vm["status"] == "up" && vm["after_move"]["boots"] != false)
        .map(|vm| {
            let agent = vm["guest_os"].is_object() && vm["after_move"]["guest_agent"] != false;
            (vm["name"].as_str().unwrap().to_lowercase(), agent)
        })
        .collect();
    assert!(expected.values().any(|a| *a), "{expected:?}");
    let up = |vmi: &DynamicObject| {
        let agent = vmi.data["status"]["conditions"]
            .as_array()
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "AgentConnected" && c["status"] == "True")
            });
        let name = vmi.metadata.name.clone().unwrap_or_default();
        vmi.data["status"]["phase"] == "Running" && (agent || expected.get(&name) == Some(&false))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        let list = api.list(&Default::default()).await.unwrap();
        let running: BTreeSet<String> = list
            .items
            .iter()
            .filter(|v| up(v))
            .filter_map(|v| v.metadata.name.clone())
            .collect();
        let missing: Vec<&String> = expected.keys().filter(|n| !running.contains(*n)).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not Running with their agent after 180 s: {missing:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// A name's answers: A and AAAA records.
type Zone = BTreeMap<String, Vec<IpAddr>>;

/// The DNS as the network team left it: each VM's FQDN answers its planned addresses (the
/// allocation's new ones for an allocated MAC, else what the source's agent reported, link-local
/// aside), except a VM the world marks `dns_stale`, whose FQDN still answers its old ones.
fn zone(allocations: &Path) -> Zone {
    let mut planned: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
    for line in std::fs::read_to_string(allocations).unwrap().lines() {
        let a: Value = serde_json::from_str(line).unwrap();
        let ips = ["new_ipv4", "new_ipv6"]
            .iter()
            .filter_map(|k| a[*k].as_str());
        planned.insert(
            a["mac"].as_str().unwrap().to_string(),
            ips.map(|t| t.parse().unwrap()).collect(),
        );
    }
    let mut zone = Zone::new();
    for name in VMS {
        let vm = world_vm(name);
        let Some(fqdn) = vm["fqdn"].as_str() else {
            continue;
        };
        let stale = vm["after_move"]["dns_stale"] == true;
        let mut answers = Vec::new();
        for nic in vm["nics"].as_array().unwrap() {
            let mac = nic["mac"].as_str().unwrap();
            match planned.get(mac) {
                Some(new) if !stale => answers.extend(new.iter().copied()),
                _ => answers.extend(
                    nic["reported_ips"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|ip| ip["address"].as_str().unwrap().parse::<IpAddr>().unwrap())
                        .filter(|ip| !ip.to_string().starts_with("fe80")),
                ),
            }
        }
        zone.insert(format!("{fqdn}."), answers);
    }
    zone
}

/// A tiny authoritative DNS server on 127.0.0.1 (UDP, a port of its own) answering A and AAAA
/// from `zone`, NXDOMAIN for other names; it stops with the test process.
fn dns_server(zone: Zone) -> std::net::SocketAddr {
    use hickory_proto::op::{Message, MessageType, ResponseCode};
    use hickory_proto::rr::rdata::{A, AAAA};
    use hickory_proto::rr::{RData, Record, RecordType};
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut answer = Message::response(query.metadata.id, query.metadata.op_code);
            answer.metadata.message_type = MessageType::Response;
            answer.metadata.authoritative = true;
            answer.metadata.recursion_desired = query.metadata.recursion_desired;
            let mut known = false;
            for q in &query.queries {
                answer.add_query(q.clone());
                let name = q.name().to_ascii().to_lowercase();
                let Some(ips) = zone.get(&name) else { continue };
                known = true;
                for ip in ips {
                    let rdata = match (ip, q.query_type()) {
                        (IpAddr::V4(v4), RecordType::A) => RData::A(A(*v4)),
                        (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(*v6)),
                        _ => continue,
                    };
                    answer.add_answer(Record::from_rdata(q.name().clone(), 60, rdata));
                }
            }
            if !known {
                answer.metadata.response_code = ResponseCode::NXDomain;
            }
            if let Ok(bytes) = answer.to_vec() {
                let _ = socket.send_to(&bytes, peer);
            }
        }
    });
    address
}

fn vm_verify(moved: &Moved, extra: &[&str], stdin: &[u8]) -> (i32, Vec<Value>, String) {
    let kubeconfig = kubebed::Testbed::shared()
        .kubeconfig
        .to_str()
        .unwrap()
        .to_string();
    let mut args = vec![
        "--kubeconfig",
        kubeconfig.as_str(),
        "-n",
        &moved.forklift_ns,
    ];
    args.extend_from_slice(extra);
    let out = tool(env!("CARGO_BIN_EXE_vm-verify"), &args, stdin, &[]);
    let code = pipeline::code(&out);
    assert!(
        matches!(code, 0 | 1),
        "vm-verify: {}",
        pipeline::stderr(&out)
    );
    (code, pipeline::lines(&out), pipeline::stderr(&out))
}

fn failed(findings: &[Value]) -> BTreeSet<(String, String)> {
    findings
        .iter()
        .filter(|f| f["ok"] == false)
        .map(|f| {
            (
                f["vm"].as_str().unwrap().to_string(),
                f["check"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn finding<'a>(findings: &'a [Value], vm: &str, check: &str) -> &'a Value {
    findings
        .iter()
        .find(|f| f["vm"] == vm && f["check"] == check)
        .unwrap_or_else(|| panic!("no {check} finding for {vm}: {findings:?}"))
}

/// The done-when of issue 16's vm-verify half: after a live run on the test bed, vm-verify passes
/// the VMs that should pass and names each planted failure, checked against the world file; then
/// each configuration check fails on a VM the test breaks on the cluster itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_verify_names_each_planted_fault_and_passes_the_rest() {
    let bed = kubebed::Testbed::shared();
    let moved = move_vms(bed).await;
    let dns = dns_server(zone(&moved.allocations));
    let (r, a) = (
        moved.records.to_str().unwrap(),
        moved.allocations.to_str().unwrap(),
    );
    let dns_arg = dns.to_string();
    let common = [
        "--allocations",
        a,
        "--dns-server",
        &dns_arg,
        "--boot-timeout",
        "20s",
        r,
    ];
    let mut args = vec!["--all"];
    args.extend_from_slice(&common);
    let (code, findings, err) = vm_verify(&moved, &args, b"");
    assert_eq!(code, 1, "{err}");
    let mut expected = planted_failures();
    assert_eq!(expected.len(), 5, "the demo plants five after-move faults");
    expected.insert((FAILED_MIGRATION.to_string(), "migrated".to_string()));
    assert_eq!(failed(&findings), expected, "{err}");
    // Every VM got its checks; the clean ones passed all of them (the set above is exact).
    for name in VMS {
        assert!(
            findings.iter().any(|f| f["vm"] == *name),
            "{name} unchecked"
        );
    }
    lun_disk_as_forklift(&moved, &findings).await;
    // Positive cases of each check, on VMs chosen from the world file.
    for check in [
        "exists",
        "run-strategy",
        "cpu",
        "memory",
        "firmware",
        "disks",
        "nics",
        "macs",
        "networks",
    ] {
        assert_eq!(
            finding(&findings, "rdu-web-01", check)["ok"],
            true,
            "{check}"
        );
    }
    for check in ["running", "guest-agent", "guest-os", "addresses", "dns"] {
        assert_eq!(
            finding(&findings, "rdu-web-01", check)["ok"],
            true,
            "{check}"
        );
    }
    // The guest OS is the one the source's agent reported (world guest_os.distribution).
    let os = world_vm("rdu-web-01")["guest_os"]["distribution"]
        .as_str()
        .unwrap();
    assert!(
        finding(&findings, "rdu-web-01", "guest-os")["actual"]
            .as_str()
            .unwrap()
            .contains(os)
    );
    // Firmware: bios_type q35_secure_boot boots EFI (Forklift v2.12.5 builder.go mapFirmware:
    // q35_ovmf and q35_secure_boot -> EFI, secure boot off); the cluster's q35_sea_bios -> BIOS.
    assert_eq!(
        world_vm("secureboot-win2022")["bios_type"],
        "q35_secure_boot"
    );
    let efi = finding(&findings, "secureboot-win2022", "firmware");
    assert_eq!(
        (efi["ok"].clone(), efi["actual"].clone()),
        (json!(true), json!("efi"))
    );
    assert_eq!(
        finding(&findings, "rdu-web-01", "firmware")["actual"],
        "bios"
    );
    // A VM that was down stays halted and gets no guest checks.
    assert_eq!(world_vm("rdu-app-02")["status"], "down");
    assert!(
        findings
            .iter()
            .all(|f| !(f["vm"] == "rdu-app-02" && f["check"] == "running"))
    );
    // TLV2's NIC moved subnets as ip-budget planned.
    let tlv = finding(&findings, "tlv2-web-01", "addresses");
    assert!(
        tlv["message"]
            .as_str()
            .unwrap()
            .contains("changed as planned"),
        "{tlv}"
    );
    let kept = finding(&findings, "rdu-web-01", "addresses");
    assert!(kept["message"].as_str().unwrap().contains("kept"), "{kept}");
    // The planted address is named, with the source's as the expectation.
    let wrong = finding(&findings, "jenkins-agent-02", "addresses");
    let planted = world_vm("jenkins-agent-02")["after_move"]["addresses"]
        .as_object()
        .unwrap();
    let (mac, ips) = planted.iter().next().unwrap();
    assert_eq!(wrong["actual"][mac], json!(ips), "{wrong}");
    // The missing NIC is named by its MAC.
    let missing = world_vm("rdu-cache-01")["after_move"]["missing_nics"][0]
        .as_str()
        .unwrap();
    assert!(
        finding(&findings, "rdu-cache-01", "nics")["message"]
            .as_str()
            .unwrap()
            .contains(missing)
    );
    // Stale DNS names the old address the world's agent reported.
    let old = world_vm("tlv2-web-01")["nics"][0]["reported_ips"][0]["address"]
        .as_str()
        .unwrap();
    assert!(
        finding(&findings, "tlv2-web-01", "dns")["message"]
            .as_str()
            .unwrap()
            .contains(old)
    );

    // Without --all, only the failures; as a table, one line each under a header.
    let (_, only_failed, _) = vm_verify(&moved, &common, b"");
    assert_eq!(only_failed.len(), expected.len());
    let mut table = vec!["--format", "table"];
    table.extend_from_slice(&common);
    let out = tool(
        env!("CARGO_BIN_EXE_vm-verify"),
        &[
            &[
                "--kubeconfig",
                bed.kubeconfig.to_str().unwrap(),
                "-n",
                &moved.forklift_ns,
            ][..],
            &table,
        ]
        .concat(),
        b"",
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), expected.len() + 1, "{text}");
    assert!(text.starts_with("VM"), "{text}");

    break_and_check(&moved, &common, &findings).await;
    let _ = &moved.dir;
}

/// A number the engine's JSON gives as a string (or a number).
fn engine_number(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|t| t.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The logical unit of LUN disk `disk_id` as the engine (ovirt-sim on the demo world) serves it
/// under `lun_storage`, which Forklift's inventory collects (v2.12.5
/// pkg/controller/provider/container/ovirt/resource.go `LogicalUnit.ApplyTo`: id as LunID,
/// address, port, target, lun_mapping, size).
async fn engine_logical_unit(disk_id: &str) -> Value {
    let sim = support::Sim::start(&[]);
    let disk: Value = sim
        .client()
        .get(format!("{}/disks/{disk_id}", sim.url))
        .basic_auth(&sim.user, Some(&sim.password))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    disk["lun_storage"]["logical_units"]["logical_unit"][0].clone()
}

/// san-lun-db01's direct LUN disk on the target as Forklift v2.12.5 leaves it, written out from
/// pkg/controller/plan/adapter/ovirt/builder.go `LunPersistentVolumes` and
/// `LunPersistentVolumeClaims` (created by kubevirt.go `createLunDisks` in CreateDataVolumes) with
/// the world's disk and the engine's logical unit: a PersistentVolume and a claim, both named
/// after the disk, the claim Bound to that volume by the cluster's PV binder; the VM's LUN volume
/// uses that claim (builder.go `mapDisks`: claimName = the disk id). vm-verify passing all of the
/// VM's checks (the caller's exact set of failures) covers its running and its disk size.
async fn lun_disk_as_forklift(moved: &Moved, findings: &[Value]) {
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
    let name = "san-lun-db01";
    let vm = world_vm(name);
    let disks = pipeline::by_id("disks");
    let attachment = vm["disk_attachments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| disks[a["disk"].as_str().unwrap()]["storage_type"] == "lun")
        .unwrap();
    let disk_id = attachment["disk"].as_str().unwrap();
    let lun_size = disks[disk_id]["lun_size"].as_u64().unwrap();
    let unit = engine_logical_unit(disk_id).await;
    assert_eq!(engine_number(&unit["size"]), lun_size, "{unit}");
    // resource.NewQuantity(size, BinarySI): 500 GiB is "500Gi".
    const GIB: u64 = 1 << 30;
    assert_eq!(lun_size % GIB, 0);
    let quantity = format!("{}Gi", lun_size / GIB);
    let (namespace, target) = landed(findings, name);
    let client = kubebed::Testbed::shared().client().await;
    // The plan holding the VM and its one Migration: the `plan` and `migration` labels' uids.
    let plans: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &moved.forklift_ns,
        &kubebed::forklift("Plan"),
    );
    let plan = plans
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|p| {
            p.data["spec"]["vms"]
                .as_array()
                .is_some_and(|v| v.iter().any(|v| v["id"] == vm["id"]))
        })
        .unwrap();
    let migrations: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &moved.forklift_ns,
        &kubebed::forklift("Migration"),
    );
    let ours: Vec<DynamicObject> = migrations
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|m| m.data["spec"]["plan"]["name"] == plan.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(ours.len(), 1, "one Migration of the LUN VM's plan");
    let (plan_uid, migration_uid) = (
        plan.metadata.uid.clone().unwrap(),
        ours[0].metadata.uid.clone().unwrap(),
    );
    let volume_label = format!("{name}-{}", attachment["id"].as_str().unwrap());
    let annotations = json!({"forklift.konveyor.io/disk-source": disk_id, "lun": "true"});

    let pv = Api::<PersistentVolume>::all(client.clone())
        .get(disk_id)
        .await
        .unwrap();
    let pv = serde_json::to_value(pv).unwrap();
    assert_eq!(
        pv["metadata"]["labels"],
        json!({"volume": volume_label, "vmID": vm["id"], "plan": plan_uid,
            "migration": migration_uid})
    );
    // Forklift's annotations, and the PV binder's mark: kube-controller-manager bound it.
    let mut bound = annotations.clone();
    bound["pv.kubernetes.io/bound-by-controller"] = json!("yes");
    assert_eq!(pv["metadata"]["annotations"], bound);
    let spec = &pv["spec"];
    // An address on the unit: iSCSI, portal address:port, the unit's target and LUN mapping
    // (and the API server's default interface, `default`).
    let portal = format!(
        "{}:{}",
        unit["address"].as_str().unwrap(),
        engine_number(&unit["port"])
    );
    assert_eq!(
        spec["iscsi"],
        json!({"targetPortal": portal, "iqn": unit["target"],
            "lun": engine_number(&unit["lun_mapping"]), "iscsiInterface": "default"}),
        "{spec}"
    );
    assert_eq!(spec["capacity"], json!({"storage": quantity}));
    assert_eq!(spec["accessModes"], json!(["ReadWriteMany"]));
    assert_eq!(spec["volumeMode"], "Block");
    assert!(spec["storageClassName"].is_null(), "{spec}");
    // Forklift sets no reclaim policy: the API server's default for a PV made by hand.
    assert_eq!(spec["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(pv["status"]["phase"], "Bound", "{pv}");
    assert_eq!(
        (&spec["claimRef"]["namespace"], &spec["claimRef"]["name"]),
        (&json!(namespace), &json!(disk_id))
    );

    let pvc = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &namespace)
        .get(disk_id)
        .await
        .unwrap();
    let pvc = serde_json::to_value(pvc).unwrap();
    assert_eq!(
        pvc["metadata"]["labels"],
        json!({"vmID": vm["id"], "plan": plan_uid, "migration": migration_uid})
    );
    let pvc_annotations = pvc["metadata"]["annotations"].as_object().unwrap();
    for (k, v) in annotations.as_object().unwrap() {
        assert_eq!(pvc_annotations.get(k), Some(v), "{pvc}");
    }
    let spec = &pvc["spec"];
    assert_eq!(spec["accessModes"], json!(["ReadWriteMany"]));
    assert_eq!(
        spec["selector"],
        json!({"matchLabels": {"volume": volume_label}})
    );
    assert_eq!(spec["storageClassName"], "");
    assert_eq!(spec["volumeMode"], "Block");
    assert_eq!(spec["resources"]["requests"], json!({"storage": quantity}));
    assert_eq!(spec["volumeName"], disk_id);
    assert_eq!(pvc["status"]["phase"], "Bound", "{pvc}");
    assert_eq!(pvc["status"]["capacity"], json!({"storage": quantity}));

    let vms = vm_api(&namespace).await;
    let target_vm = vms.get(&target).await.unwrap();
    let volumes = target_vm.data["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        volumes
            .contains(&json!({"name": disk_id, "persistentVolumeClaim": {"claimName": disk_id}})),
        "{volumes:?}"
    );
    for check in ["running", "disks"] {
        assert_eq!(finding(findings, name, check)["ok"], true, "{check}");
    }
}

/// A KubeVirt kind's API resource (kubevirt.io/v1).
fn kubevirt(kind: &str) -> kube::api::ApiResource {
    kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk("kubevirt.io", "v1", kind))
}

async fn vm_api(ns: &str) -> Api<DynamicObject> {
    let client = kubebed::Testbed::shared().client().await;
    Api::namespaced_with(client, ns, &kubevirt("VirtualMachine"))
}

/// Where a VM landed: its namespace and VirtualMachine name (the Plan status's, as vm-verify
/// found them).
fn landed(findings: &[Value], vm: &str) -> (String, String) {
    let f = finding(findings, vm, "exists");
    (
        f["namespace"].as_str().unwrap().into(),
        f["target"].as_str().unwrap().into(),
    )
}

/// The test's own faults on the cluster (what a Forklift bug or a hand edit leaves), each named
/// by the check that must fail; then --start.
async fn break_and_check(moved: &Moved, common: &[&str], before: &[Value]) {
    let name = "rdu-web-01";
    let (namespace, target) = landed(before, name);
    let vms = vm_api(&namespace).await;
    let mut vm = vms.get(&target).await.unwrap();
    // A disk on a PVC smaller than the source disk.
    let client = kubebed::Testbed::shared().client().await;
    let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        Api::namespaced(client, &namespace);
    let tiny = serde_json::from_value(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "tiny"}, "spec": {"accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}}}}))
    .unwrap();
    pvcs.create(&PostParams::default(), &tiny).await.unwrap();
    let spec = &mut vm.data["spec"]["template"]["spec"];
    let cores = spec["domain"]["cpu"]["cores"].as_u64().unwrap();
    spec["domain"]["cpu"]["cores"] = json!(cores + 1);
    spec["domain"]["memory"]["guest"] = json!("1Gi");
    spec["domain"]["firmware"]["bootloader"] = json!({"efi": {"secureBoot": false}});
    let network = spec["networks"][0]["name"].clone();
    spec["networks"][0] =
        json!({"name": network, "multus": {"networkName": "vm-networks/elsewhere"}});
    spec["volumes"][0]["persistentVolumeClaim"]["claimName"] = json!("tiny");
    vms.replace(&target, &PostParams::default(), &vm)
        .await
        .unwrap();
    // Another VM's NIC with a MAC not its source's.
    let (ns2, db) = landed(before, "tlv2-db-01");
    let other = vm_api(&ns2).await;
    let mut vm = other.get(&db).await.unwrap();
    vm.data["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"][0]["macAddress"] =
        json!("02:00:00:00:00:01");
    other
        .replace(&db, &PostParams::default(), &vm)
        .await
        .unwrap();
    // Another VM deleted, and a third halted.
    let (ns3, ad) = landed(before, "Win2019-AD01");
    vm_api(&ns3)
        .await
        .delete(&ad, &Default::default())
        .await
        .unwrap();
    let (ns4, web4) = landed(before, "rdu-web-04");
    let halt = json!({"spec": {"runStrategy": "Halted"}});
    vm_api(&ns4)
        .await
        .patch(&web4, &PatchParams::default(), &Patch::Merge(&halt))
        .await
        .unwrap();
    let (_, findings, err) = vm_verify(moved, common, b"");
    let got = failed(&findings);
    for check in ["cpu", "memory", "firmware", "networks", "disks"] {
        assert!(
            got.contains(&(name.to_string(), check.to_string())),
            "{check}: {got:?} {err}"
        );
    }
    for (vm, check) in [
        ("tlv2-db-01", "macs"),
        ("Win2019-AD01", "exists"),
        ("rdu-web-04", "run-strategy"),
    ] {
        assert!(
            got.contains(&(vm.to_string(), check.to_string())),
            "{vm} {check}: {got:?}"
        );
    }
    let memory = finding(&findings, name, "memory");
    assert_eq!(memory["expected"], world_vm(name)["memory"], "{memory}");
    assert_eq!(memory["actual"], json!(1u64 << 30), "{memory}");
    let cpu = finding(&findings, name, "cpu");
    assert_eq!(
        cpu["expected"]["cores"],
        world_vm(name)["cpu"]["cores"],
        "{cpu}"
    );

    // --start starts the halted VM; it boots (forklift-sim's KubeVirt) within the timeout.
    let mut args = vec!["--start", "--all"];
    args.extend(common.iter().map(|a| if *a == "20s" { "120s" } else { *a }));
    let (_, findings, err) = vm_verify(moved, &args, b"");
    let started = finding(&findings, "rdu-web-04", "run-strategy");
    assert_eq!(started["ok"], true, "{started} {err}");
    assert!(
        started["message"].as_str().unwrap().contains("started"),
        "{started}"
    );
    assert_eq!(
        finding(&findings, "rdu-web-04", "running")["ok"],
        true,
        "{err}"
    );
}

#[test]
fn vm_verify_refuses_bad_input_with_the_tables_codes() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.yaml");
    let out = tool(
        env!("CARGO_BIN_EXE_vm-verify"),
        &["--kubeconfig", missing.to_str().unwrap()],
        b"",
        &[],
    );
    pipeline::assert_fails(&out, 78, "vm-verify: ");
    let out = tool(
        env!("CARGO_BIN_EXE_vm-verify"),
        &["--dns-server", "dns.example"],
        b"",
        &[],
    );
    assert_eq!(pipeline::code(&out), 2);
    let out = tool(
        env!("CARGO_BIN_EXE_vm-verify"),
        &[],
        b"{\"kind\": \"Namespace\"}\n",
        &[],
    );
    pipeline::assert_fails(&out, 65, "vm-verify: stdin:1: expected a VM record");
}
