//! capacity-calc on the demo world: per-namespace and per-class PVC bytes, steady and at the copy
//! peak, on both of Forklift's copy paths and in both volume modes, computed from the world file
//! with Forklift's, CDI's and KubeVirt's formulas written out below (never through capacity-calc's
//! code); and on fixtures (formats, availability, quotas, errors).

mod pipeline;
mod support;

use pipeline::*;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

const CC: &str = env!("CARGO_BIN_EXE_capacity-calc");
const OG: &str = env!("CARGO_BIN_EXE_owner-group");
const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// Forklift v2.12.5 pkg/controller/plan/util/utils.go CalculateSpaceWithOverhead, as
/// adapter/ovirt/builder.go persistentVolumeClaimWithSourceRef applies it to the provisioned size:
/// align up to 1 MiB (DefaultAlignBlockSize); Filesystem: ceil(aligned / (1 - FILESYSTEM_OVERHEAD/100))
/// with FILESYSTEM_OVERHEAD 10 (pkg/settings/migration.go); Block: aligned + BLOCK_OVERHEAD (0).
fn forklift_populator_pvc(provisioned: u64, block: bool) -> u64 {
    let aligned = provisioned.div_ceil(MIB) * MIB;
    if block {
        aligned
    } else {
        (aligned as f64 / (1.0 - 10.0 / 100.0)).ceil() as u64
    }
}

/// CDI v1.66.0 pkg/controller/common/util.go InflateSizeWithOverhead with pkg/util/util.go
/// GetRequiredSpace, for the request Forklift v2.12.5 puts on a DataVolume (builder.go DataVolumes:
/// max(provisioned, actual)): Filesystem ceil(align_1MiB(request) * (1 + overhead)); Block the request.
fn cdi_pvc(request: u64, block: bool, overhead: f64) -> u64 {
    if block {
        request
    } else {
        ((request.div_ceil(MIB) * MIB) as f64 * (1.0 + overhead)).ceil() as u64
    }
}

/// CDI v1.66.0 pkg/controller/util.go createScratchPersistentVolumeClaim: usable =
/// RoundDown(ceil(S / (1 + o_pvc)), 1 MiB) (o_pvc 0 for Block), then RoundUp(ceil(RoundUp(usable,
/// 1 MiB) * (1 + o)), 1 MiB).
fn cdi_scratch(pvc: u64, block: bool, overhead: f64) -> u64 {
    let pvc_overhead = if block { 0.0 } else { overhead };
    let usable = (pvc as f64 / (1.0 + pvc_overhead)).ceil() as u64 / MIB * MIB;
    let required = (usable.div_ceil(MIB) as f64 * MIB as f64 * (1.0 + overhead)).ceil() as u64;
    required.div_ceil(MIB) * MIB
}

/// KubeVirt v1.9.0 pkg/hypervisor/kvm/hypervisorbackend.go GetMemoryOverhead (x86_64, no TPM,
/// shared CPUs) plus the guest and the guest-console-log sidecar's 35M (virt-controller/services
/// serialconsolelog.go): what a virt-launcher pod requests.
fn kubevirt_launcher_memory(guest: u64, vcpus: u64) -> u64 {
    let page_tables = guest.div_ceil(1000) * 1000 / 512;
    let fixed = (25 + 100 + 25 + 40 + 30) * MIB; // monitor, launcher, virtlogd, virtqemud, qemu
    guest + page_tables + fixed + 8 * MIB * vcpus + 8 * MIB + 32 * MIB + 35_000_000
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Path {
    /// Cold to the local cluster.
    Populator,
    /// Cold to another cluster: DataVolumes; CDI's prime PVC while copying.
    RemoteCold,
    /// Warm: DataVolumes; CDI's scratch PVC while copying deltas.
    Warm,
}

/// One VM's need in a namespace, from the world file.
#[derive(Default, Debug, Clone)]
struct VmNeed {
    pvc: BTreeMap<String, u64>,
    copy: BTreeMap<String, u64>,
    disks: u64,
}

#[derive(Default, Debug, PartialEq, Clone)]
struct Expect {
    vms: u64,
    vcpus: u64,
    memory: u64,
    disks: u64,
    luns: u64,
    lun_bytes: u64,
    provisioned: u64,
    used: u64,
    pvc: BTreeMap<String, u64>,
    peak: BTreeMap<String, u64>,
    peak_total: u64,
    /// Not in the report rows: the copy pods of the VMs in flight (checked in quota records).
    copy_pods: u64,
    /// Not in the report rows: VMs in flight that have a disk to copy, one PVC consumer pod each.
    consumer_pods: u64,
}

fn owner_grouped_demo() -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    let out = run(
        OG,
        &[
            "-o",
            file.path().to_str().unwrap(),
            demo_records().to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    file
}

/// The VM ids in the order of a records file (which VM a shared disk is counted with).
fn record_order(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["id"].as_str().unwrap().to_string()
        })
        .collect()
}

const MAPS: [&str; 4] = [
    "--storage-map",
    "*=trident-nfs",
    "--storage-map",
    "RDU/data-nfs-rdu-02=ceph-rbd:Block:ReadWriteMany",
];
/// ceph-rbd's StorageProfile says Block: the populator path reads it from here, not the map.
const PROFILE: [&str; 2] = ["--volume-mode", "ceph-rbd=Block"];

/// The sum of the `n` largest values.
fn largest(mut values: Vec<u64>, n: usize) -> u64 {
    values.sort_unstable_by(|a, b| b.cmp(a));
    values.into_iter().take(n).sum()
}

/// Steady and peak needs per namespace and in total, from the world file.
fn expected_by_namespace(
    order: &[String],
    path: Path,
    inflight: usize,
) -> (BTreeMap<String, Expect>, Expect) {
    let disks = by_id("disks");
    let sds = by_id("storage_domains");
    let clusters = by_id("clusters");
    let dcs = by_id("data_centers");
    let vms = by_id("vms");
    let namespaces = world_namespaces();
    let mut groups: BTreeMap<String, Expect> = BTreeMap::new();
    let mut total = Expect::default();
    let mut needs: BTreeMap<String, Vec<VmNeed>> = BTreeMap::new();
    let mut total_needs: Vec<VmNeed> = Vec::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for id in order {
        let vm = vms[id];
        let ns = namespaces[id].clone();
        let dc = dcs[clusters[vm["cluster"].as_str().unwrap()]["data_center"]
            .as_str()
            .unwrap()]["name"]
            .as_str()
            .unwrap();
        let vcpus = ["sockets", "cores", "threads"]
            .iter()
            .map(|k| vm["cpu"][k].as_u64().unwrap_or(1))
            .product::<u64>();
        let (mut ns_need, mut total_need) = (VmNeed::default(), VmNeed::default());
        for e in [groups.entry(ns.clone()).or_default(), &mut total] {
            e.vms += 1;
            e.vcpus += vcpus;
            e.memory += vm["memory"].as_u64().unwrap();
        }
        for att in vm["disk_attachments"].as_array().unwrap() {
            let disk_id = att["disk"].as_str().unwrap();
            let d = disks[disk_id];
            for (scope, e, need) in [
                (ns.as_str(), groups.get_mut(&ns).unwrap(), &mut ns_need),
                ("", &mut total, &mut total_need),
            ] {
                if !seen.insert((scope.to_string(), disk_id.to_string())) {
                    continue;
                }
                if d["storage_type"] == "lun" {
                    e.luns += 1;
                    e.lun_bytes += d["lun_size"].as_u64().unwrap();
                    continue;
                }
                let prov = d["provisioned_size"].as_u64().unwrap();
                let actual = d["actual_size"].as_u64().unwrap();
                e.disks += 1;
                e.provisioned += prov;
                e.used += actual;
                let sd_name = sds[d["storage_domain"].as_str().unwrap()]["name"]
                    .as_str()
                    .unwrap();
                let block = dc == "RDU" && sd_name == "data-nfs-rdu-02";
                let class = if block { "ceph-rbd" } else { "trident-nfs" };
                let (pvc, copy) = match path {
                    Path::Populator => {
                        let pvc = forklift_populator_pvc(prov, block);
                        (pvc, pvc)
                    }
                    Path::RemoteCold => {
                        let pvc = cdi_pvc(prov.max(actual), block, 0.06);
                        (pvc, pvc)
                    }
                    Path::Warm => {
                        let pvc = cdi_pvc(prov.max(actual), block, 0.06);
                        (pvc, cdi_scratch(pvc, block, 0.06))
                    }
                };
                *e.pvc.entry(class.into()).or_default() += pvc;
                *need.pvc.entry(class.into()).or_default() += pvc;
                *need.copy.entry(class.into()).or_default() += copy;
                need.disks += 1;
            }
        }
        needs.entry(ns).or_default().push(ns_need);
        total_needs.push(total_need);
    }
    for (ns, e) in groups.iter_mut() {
        add_peak(e, &needs[ns], inflight);
    }
    add_peak(&mut total, &total_needs, inflight);
    (groups, total)
}

/// Peak: the PVCs kept plus the copy-time PVCs of the `inflight` largest VMs (per class, the
/// largest in that class).
fn add_peak(e: &mut Expect, needs: &[VmNeed], inflight: usize) {
    for (class, bytes) in &e.pvc {
        let copies = needs
            .iter()
            .map(|n| n.copy.get(class).copied().unwrap_or(0))
            .collect();
        e.peak
            .insert(class.clone(), bytes + largest(copies, inflight));
    }
    let copies = needs.iter().map(|n| n.copy.values().sum()).collect();
    e.peak_total = e.pvc.values().sum::<u64>() + largest(copies, inflight);
    e.copy_pods = largest(needs.iter().map(|n| n.disks).collect(), inflight);
    e.consumer_pods = (needs.iter().filter(|n| n.disks > 0).count() as u64).min(inflight as u64);
}

fn got(row: &Value) -> Expect {
    let n = |k: &str| row[k].as_u64().unwrap_or_else(|| panic!("{k} in {row}"));
    let per_class = |k: &str| -> BTreeMap<String, u64> {
        row[k]
            .as_object()
            .unwrap_or_else(|| panic!("{k} in {row}"))
            .iter()
            .map(|(c, v)| (c.clone(), v.as_u64().unwrap()))
            .filter(|(_, v)| *v > 0)
            .collect()
    };
    let pvc = per_class("pvc_bytes");
    assert_eq!(n("pvc_total_bytes"), pvc.values().sum::<u64>(), "{row}");
    Expect {
        vms: n("vms"),
        vcpus: n("vcpus"),
        memory: n("memory_bytes"),
        disks: n("disks"),
        luns: n("lun_disks"),
        lun_bytes: n("lun_bytes"),
        provisioned: n("provisioned_bytes"),
        used: n("used_bytes"),
        pvc,
        peak: per_class("peak_pvc_bytes"),
        peak_total: n("peak_pvc_total_bytes"),
        copy_pods: 0,
        consumer_pods: 0,
    }
}

/// Runs capacity-calc on the owner-grouped demo and checks every namespace row and the totals.
fn check_demo(extra: &[&str], path: Path, inflight: usize) -> (BTreeMap<String, Expect>, Expect) {
    let grouped = owner_grouped_demo();
    let mut args = MAPS.to_vec();
    args.extend(extra);
    args.push("--totals");
    args.push(grouped.path().to_str().unwrap());
    let out = run(CC, &args, b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rows = lines(&out);
    let (expected, expected_total) =
        expected_by_namespace(&record_order(grouped.path()), path, inflight);
    let (totals, groups): (Vec<&Value>, Vec<&Value>) =
        rows.iter().partition(|r| r["total"] == true);
    assert_eq!(totals.len(), 1);
    let got_groups: BTreeMap<String, Expect> = groups
        .iter()
        .map(|r| (r["namespace"].as_str().unwrap().to_string(), got(r)))
        .collect();
    assert_eq!(
        got_groups.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    let without_pods = |e: &Expect| Expect {
        copy_pods: 0,
        consumer_pods: 0,
        ..e.clone()
    };
    for (ns, e) in &expected {
        assert_eq!(got_groups[ns], without_pods(e), "namespace {ns} ({path:?})");
    }
    assert_eq!(got(totals[0]), without_pods(&expected_total), "{path:?}");
    assert!(
        expected_total.pvc.contains_key("ceph-rbd") && expected_total.luns > 0,
        "the world exercises Block and LUNs"
    );
    (expected, expected_total)
}

#[test]
fn populator_path_matches_forklift_in_both_volume_modes() {
    let (expected, total) = check_demo(&PROFILE, Path::Populator, 20);
    // No namespace has more than 20 VMs: every prime PVC can exist at once.
    for e in expected.values() {
        assert_eq!(e.peak_total, 2 * e.pvc.values().sum::<u64>());
    }
    assert!(
        total.peak_total < 2 * total.pvc.values().sum::<u64>(),
        "124 VMs > 20 in flight"
    );
}

#[test]
fn one_vm_in_flight_peaks_at_the_largest_vm() {
    let (expected, _) = check_demo(
        &["--volume-mode", "ceph-rbd=Block", "--max-vm-inflight", "1"],
        Path::Populator,
        1,
    );
    // A namespace of several VMs peaks at its PVCs plus its largest VM's prime PVCs (checked per
    // namespace above against the world file), below twice its PVCs.
    let between: Vec<&String> = expected
        .iter()
        .filter(|(_, e)| {
            let steady: u64 = e.pvc.values().sum();
            e.vms >= 2 && e.peak_total > steady && e.peak_total < 2 * steady
        })
        .map(|(ns, _)| ns)
        .collect();
    assert!(
        !between.is_empty(),
        "the demo has namespaces of several VMs"
    );
}

#[test]
fn datavolume_paths_match_cdi() {
    // The map's Block is used on a DataVolume; the StorageProfile is not consulted for ceph-rbd.
    check_demo(&["--destination", "remote-cluster"], Path::RemoteCold, 20);
    check_demo(&["--warm"], Path::Warm, 20);
}

#[test]
fn the_storage_map_mode_does_not_size_populator_pvcs() {
    let grouped = owner_grouped_demo();
    let mut args = MAPS.to_vec();
    args.push("--totals");
    args.push(grouped.path().to_str().unwrap());
    let out = run(CC, &args, b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "--storage-map gives ceph-rbd volume mode Block, but Forklift's populator path"
        ),
        "{}",
        stderr(&out)
    );
    let total = lines(&out)
        .into_iter()
        .find(|r| r["total"] == true)
        .unwrap();
    let (_, expected) = expected_by_namespace(&record_order(grouped.path()), Path::Populator, 20);
    // Without --volume-mode, ceph-rbd's profile is taken as Filesystem: more bytes, never fewer.
    assert!(total["pvc_bytes"]["ceph-rbd"].as_u64().unwrap() > expected.pvc["ceph-rbd"]);
}

#[test]
fn demo_world_availability_and_quotas() {
    let grouped = owner_grouped_demo();
    let order = record_order(grouped.path());
    let (expected, total) = expected_by_namespace(&order, Path::Populator, 20);
    let nfs = total.peak["trident-nfs"];
    let input = grouped.path().to_str().unwrap();
    let enough = format!("trident-nfs={nfs}");
    let short = format!("trident-nfs={}", nfs - 1);
    let mut args = [&MAPS[..], &PROFILE[..]].concat();
    args.extend(["--available", &enough, input]);
    assert_eq!(code(&run(CC, &args, b"")), 0);
    let mut args = [&MAPS[..], &PROFILE[..]].concat();
    args.extend(["--available", &short, "--format", "table", input]);
    let out = run(CC, &args, b"");
    assert_eq!(
        code(&out),
        1,
        "a peak above available exits 1: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("storage class trident-nfs: need"),
        "{}",
        stderr(&out)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.lines().last().unwrap().starts_with("TOTAL"),
        "{table}"
    );
    assert!(table.contains("GiB") || table.contains("TiB"));
    assert!(
        table.lines().next().unwrap().contains("PEAK_TRIDENT-NFS"),
        "{table}"
    );

    let mut args = [&MAPS[..], &PROFILE[..]].concat();
    args.extend(["--quota", "--headroom", "20%", input]);
    let out = run(CC, &args, b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let quotas = lines(&out);
    assert_eq!(quotas.len(), expected.len());
    check_quotas(&quotas, &expected, &order);
}

/// The quota records: storage at the peak (plus LUN PVCs), memory for KubeVirt's launcher pods
/// plus the populator pods in flight (Forklift v2.12.5 pkg/settings/populator.go: 512Mi, 100m
/// each) and one PVC consumer pod per VM in flight with a disk (Forklift v2.12.5
/// pkg/controller/plan/kubevirt.go createPodToBindPVCs, VIRT_V2V_CONTAINER_REQUESTS_* defaults in
/// pkg/settings/migration.go: 1Gi, 1000m), one core per vCPU plus the console-log sidecars' 5m,
/// all times 1.2, rounded up.
fn check_quotas(quotas: &[Value], expected: &BTreeMap<String, Expect>, order: &[String]) {
    let vms = by_id("vms");
    let namespaces = world_namespaces();
    let mut launcher: HashMap<String, u64> = HashMap::new();
    for id in order {
        let vm = vms[id];
        let vcpus = ["sockets", "cores", "threads"]
            .iter()
            .map(|k| vm["cpu"][k].as_u64().unwrap_or(1))
            .product::<u64>();
        let memory = kubevirt_launcher_memory(vm["memory"].as_u64().unwrap(), vcpus);
        *launcher.entry(namespaces[id].clone()).or_default() += memory;
    }
    let grow = |x: u64| (x as f64 * 1.2).ceil() as u64;
    let gi = |bytes: u64| format!("{}Gi", grow(bytes).div_ceil(GIB).max(1));
    for q in quotas {
        let ns = q["namespace"].as_str().unwrap();
        let e = &expected[ns];
        let hard = &q["hard"];
        assert_eq!(q["vm_count"], e.vms);
        assert_eq!(q["copy_path"], "populator");
        assert_eq!(
            hard["requests.storage"],
            gi(e.peak_total + e.lun_bytes).as_str(),
            "{q}"
        );
        for (class, bytes) in &e.peak {
            assert_eq!(
                hard[format!("{class}.storageclass.storage.k8s.io/requests.storage")],
                gi(*bytes).as_str(),
                "{q}"
            );
        }
        let in_flight = e.copy_pods;
        assert_eq!(q["copy_pods_in_flight"], in_flight);
        assert_eq!(q["consumer_pods_in_flight"], e.consumer_pods);
        let memory = launcher[ns] + in_flight * 512 * MIB + e.consumer_pods * 1024 * MIB;
        assert_eq!(hard["requests.memory"], gi(memory).as_str(), "{q}");
        let cpu_millis = e.vcpus * 1000 + 5 * e.vms + 100 * in_flight + 1000 * e.consumer_pods;
        assert_eq!(
            hard["requests.cpu"],
            grow(cpu_millis).div_ceil(1000).to_string().as_str(),
            "{q}"
        );
        assert_eq!(
            q["limit_range"]["default_request"],
            serde_json::json!({"cpu": "100m", "memory": "512Mi"})
        );
    }
}

#[test]
fn fixture_groups_by_disk_keys_and_csv() {
    let small = fixture("small.jsonl");
    let out = run(
        CC,
        &[
            "--by",
            "cluster,storage-class",
            "--storage-map",
            "*=nfs-sc",
            "--storage-map",
            "iscsi-data=rbd",
            "--volume-mode",
            "rbd=Block",
            "--format",
            "csv",
            "--totals",
            small.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(
        rows[0],
        "cluster,storage_class,vms,vcpus,memory_bytes,disks,provisioned_bytes,used_bytes,lun_disks,\
         lun_bytes,pvc_total_bytes,peak_pvc_total_bytes,pvc_bytes_nfs-sc,peak_pvc_bytes_nfs-sc,\
         pvc_bytes_rbd,peak_pvc_bytes_rbd",
        "{text}"
    );
    // prod: web01's 10 GiB disk on nfs-sc: ceil(10 GiB / 0.9) = 11930464712, twice at peak.
    assert!(
        rows.contains(&"prod,nfs-sc,1,2,4294967296,1,10737418240,2147483648,0,0,11930464712,23860929424,11930464712,23860929424,0,0"),
        "{text}"
    );
    // db01's 50 GiB disk on rbd, Block by its profile: aligned already, no overhead.
    assert!(
        rows.contains(&"prod,rbd,1,4,8589934592,1,53687091200,53687091200,0,0,53687091200,107374182400,0,0,53687091200,107374182400"),
        "{text}"
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with("prod,(lun),1,4,8589934592,0,0,0,1,107374182400,0,0,")),
        "{text}"
    );
    assert!(rows.last().unwrap().starts_with("TOTAL,TOTAL,3,"), "{text}");
}

#[test]
fn cdi_overhead_per_class_and_forklift_overheads_are_flags() {
    let small = fixture("small.jsonl");
    let small = small.to_str().unwrap();
    let total = |args: &[&str]| -> Value {
        let mut all = vec![
            "--storage-map",
            "*=nfs-sc",
            "--storage-map",
            "iscsi-data=rbd",
            "--totals",
        ];
        all.extend(args);
        all.push(small);
        let out = run(CC, &all, b"");
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        lines(&out)
            .into_iter()
            .find(|r| r["total"] == true)
            .unwrap()
    };
    // web01: 10 GiB provisioned, 2 GiB actual; db01: 50 GiB both.
    let t = total(&[
        "--warm",
        "--cdi-filesystem-overhead",
        "rbd=10%",
        "--cdi-filesystem-overhead",
        "0.08",
    ]);
    assert_eq!(t["pvc_bytes"]["nfs-sc"], cdi_pvc(10 * GIB, false, 0.08));
    assert_eq!(t["pvc_bytes"]["rbd"], cdi_pvc(50 * GIB, false, 0.1));
    assert_eq!(
        t["peak_pvc_bytes"]["rbd"],
        cdi_pvc(50 * GIB, false, 0.1) + cdi_scratch(cdi_pvc(50 * GIB, false, 0.1), false, 0.1)
    );
    let t = total(&[
        "--filesystem-overhead",
        "20",
        "--block-overhead",
        "1Gi",
        "--volume-mode",
        "rbd=Block",
    ]);
    assert_eq!(
        t["pvc_bytes"]["nfs-sc"],
        (10.0 * GIB as f64 / 0.8).ceil() as u64
    );
    assert_eq!(t["pvc_bytes"]["rbd"], 51 * GIB);
}

#[test]
fn errors_are_one_line_with_exit_codes_and_no_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("cap.jsonl");
    let o = out_file.to_str().unwrap();
    assert_fails(
        &run(CC, &["--available", "nfs=40XB"], b""),
        2,
        "capacity-calc: --available \"nfs=40XB\": \"40XB\": unknown unit",
    );
    assert_fails(
        &run(CC, &["--available", "nfs"], b""),
        2,
        "capacity-calc: --available \"nfs\": expected CLASS=SIZE",
    );
    assert_fails(
        &run(CC, &["--storage-map", "nfs"], b""),
        2,
        "capacity-calc: --storage-map \"nfs\": expected SRC=DST",
    );
    assert_fails(
        &run(CC, &["--storage-map", "a=Bad_Class"], b""),
        2,
        "capacity-calc: --storage-map \"a=Bad_Class\": bad storage class",
    );
    for bad in ["120", "10.5", "x"] {
        assert_fails(
            &run(CC, &["--filesystem-overhead", bad], b""),
            2,
            &format!("capacity-calc: --filesystem-overhead \"{bad}\": expected a whole percent"),
        );
    }
    assert_fails(
        &run(CC, &["--cdi-filesystem-overhead", "nfs=100%"], b""),
        2,
        "capacity-calc: --cdi-filesystem-overhead \"nfs=100%\": expected [CLASS=]PERCENT",
    );
    assert_fails(
        &run(CC, &["--volume-mode", "nfs=Blocky"], b""),
        2,
        "capacity-calc: --volume-mode \"nfs=Blocky\": expected CLASS=Block",
    );
    assert_fails(
        &run(CC, &["--block-overhead", "1XB"], b""),
        2,
        "capacity-calc: --block-overhead \"1XB\": unknown unit",
    );
    let maps = dir.path().join("maps.txt");
    std::fs::write(&maps, "storage a=nfs\nstorage b=\n").unwrap();
    assert_fails(
        &run(CC, &["--map-file", maps.to_str().unwrap()], b""),
        2,
        &format!("capacity-calc: {}:2: ", maps.display()),
    );
    let good = std::fs::read_to_string(fixture("small.jsonl")).unwrap();
    let bad = format!("{}\nnot json\n", good.lines().next().unwrap());
    assert_fails(
        &run(CC, &["-o", o], bad.as_bytes()),
        65,
        "capacity-calc: stdin:2: not valid JSON",
    );
    assert_fails(
        &run(CC, &["-o", o], b"{\"id\": 1}\n"),
        65,
        "capacity-calc: stdin:1: expected a VM record",
    );
    // A size no VM has (a unit mistake upstream) is refused, not summed into an overflow.
    let mut huge: serde_json::Value = serde_json::from_str(good.lines().next().unwrap()).unwrap();
    huge["disks"][0]["provisioned_bytes"] = serde_json::json!(u64::MAX);
    let huge = format!("{}\n{huge}\n", good.lines().next().unwrap());
    assert_fails(
        &run(CC, &["-o", o], huge.as_bytes()),
        65,
        "capacity-calc: stdin:2: not a valid VM record: provisioned_bytes 18446744073709551615 is more than",
    );
    assert!(!out_file.exists());
}

/// Records are decoded on several threads (common::parallel): the sums, and which bad line is
/// reported, must not depend on how many.
#[test]
fn results_and_errors_do_not_depend_on_the_number_of_threads() {
    let owned = String::from_utf8(owned(demo_records())).unwrap();
    let copies = 60; // about 25 MiB: many batches
    let mut input = owned.repeat(copies);
    let args = [
        "--by",
        "namespace,storage-class",
        "--storage-map",
        "*=trident-nfs",
        "--format",
        "jsonl",
        "--totals",
    ];
    let mut outputs = Vec::new();
    for threads in ["1", "3"] {
        let out = run_with_env(CC, &args, input.as_bytes(), &[("LIFTKIT_THREADS", threads)]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        outputs.push(out.stdout);
    }
    assert_eq!(
        outputs[0], outputs[1],
        "sums differ between 1 and 3 threads"
    );
    let total = lines_of(&outputs[1])
        .into_iter()
        .find(|r| r["total"] == true)
        .unwrap();
    let vms = world()["vms"].as_array().unwrap().len();
    assert_eq!(total["vms"], (vms * copies) as u64);

    // Two bad lines far apart: the first is the one named, whatever the threads.
    let line_count = input.lines().count();
    let mut lines: Vec<&str> = input.lines().collect();
    lines[line_count / 2] = "{\"schema\": 1, \"id\": \"x\", \"name\": \"bad\", \"disks\": 7}";
    lines[line_count - 3] = "not json";
    input = lines.join("\n");
    for threads in ["1", "3"] {
        let out = run_with_env(CC, &args, input.as_bytes(), &[("LIFTKIT_THREADS", threads)]);
        assert_eq!(code(&out), 65);
        let expected = format!(
            "capacity-calc: stdin:{}: not a valid VM record",
            line_count / 2 + 1
        );
        assert!(stderr(&out).starts_with(&expected), "{}", stderr(&out));
    }
}

fn lines_of(bytes: &[u8]) -> Vec<Value> {
    std::str::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
