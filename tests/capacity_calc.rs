//! capacity-calc on the demo world (per-namespace and per-class bytes computed from the world file)
//! and on fixtures (formats, availability, quotas, errors).

mod pipeline;
mod support;

use pipeline::*;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

const CC: &str = env!("CARGO_BIN_EXE_capacity-calc");
const OG: &str = env!("CARGO_BIN_EXE_owner-group");
const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// PVC bytes as Forklift and CDI size them, written out again here from the documented rule.
fn expected_pvc(bytes: u64, block: bool) -> u64 {
    let request = if block {
        bytes
    } else {
        let aligned = bytes.div_ceil(MIB) * MIB;
        (aligned as f64 / (1.0 - 0.055)).ceil() as u64
    };
    request.div_ceil(GIB) * GIB
}

#[derive(Default, Debug, PartialEq)]
struct Expect {
    vms: u64,
    vcpus: u64,
    memory: u64,
    disks: u64,
    luns: u64,
    provisioned: u64,
    used: u64,
    pvc: BTreeMap<String, u64>,
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

const MAPS: [&str; 4] = [
    "--storage-map",
    "*=trident-nfs",
    "--storage-map",
    "RDU/data-nfs-rdu-02=ceph-rbd:Block:ReadWriteMany",
];

fn expected_by_namespace() -> (BTreeMap<String, Expect>, Expect) {
    let disks = by_id("disks");
    let sds = by_id("storage_domains");
    let clusters = by_id("clusters");
    let dcs = by_id("data_centers");
    let namespaces = world_namespaces();
    let mut groups: BTreeMap<String, Expect> = BTreeMap::new();
    let mut total = Expect::default();
    let mut seen: HashMap2 = HashMap2::default();
    for vm in world()["vms"].as_array().unwrap() {
        let id = vm["id"].as_str().unwrap();
        let ns = namespaces[id].clone();
        let dc = dcs[clusters[vm["cluster"].as_str().unwrap()]["data_center"]
            .as_str()
            .unwrap()]["name"]
            .as_str()
            .unwrap();
        let cpu = &vm["cpu"];
        let vcpus = ["sockets", "cores", "threads"]
            .iter()
            .map(|k| cpu[k].as_u64().unwrap_or(1))
            .product::<u64>();
        for e in [groups.entry(ns.clone()).or_default(), &mut total] {
            e.vms += 1;
            e.vcpus += vcpus;
            e.memory += vm["memory"].as_u64().unwrap();
        }
        for att in vm["disk_attachments"].as_array().unwrap() {
            let disk_id = att["disk"].as_str().unwrap();
            let d = disks[disk_id];
            for (scope, e) in [
                (ns.as_str(), groups.get_mut(&ns).unwrap()),
                ("", &mut total),
            ] {
                if !seen.0.insert((scope.to_string(), disk_id.to_string())) {
                    continue;
                }
                if d["storage_type"] == "lun" {
                    e.luns += 1;
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
                *e.pvc.entry(class.into()).or_default() += expected_pvc(prov.max(actual), block);
            }
        }
    }
    (groups, total)
}

#[derive(Default)]
struct HashMap2(HashSet<(String, String)>);

fn got(row: &Value) -> Expect {
    let n = |k: &str| row[k].as_u64().unwrap_or_else(|| panic!("{k} in {row}"));
    let mut pvc = BTreeMap::new();
    for class in ["trident-nfs", "ceph-rbd"] {
        let v = row[format!("pvc_bytes.{class}")].as_u64().unwrap_or(0);
        if v > 0 {
            pvc.insert(class.to_string(), v);
        }
    }
    assert_eq!(n("pvc_bytes"), pvc.values().sum::<u64>());
    Expect {
        vms: n("vms"),
        vcpus: n("vcpus"),
        memory: n("memory_bytes"),
        disks: n("disks"),
        luns: n("lun_disks"),
        provisioned: n("provisioned_bytes"),
        used: n("used_bytes"),
        pvc,
    }
}

#[test]
fn demo_world_per_namespace_and_per_class_bytes_match_the_world_file() {
    let grouped = owner_grouped_demo();
    let mut args = MAPS.to_vec();
    args.push(grouped.path().to_str().unwrap());
    let out = run(CC, &args, b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rows = lines(&out);
    let (expected, expected_total) = expected_by_namespace();
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
    for (ns, e) in &expected {
        assert_eq!(&got_groups[ns], e, "namespace {ns}");
    }
    assert_eq!(got(totals[0]), expected_total);
    assert!(
        expected_total.pvc.contains_key("ceph-rbd") && expected_total.luns > 0,
        "the world exercises Block and LUNs"
    );
}

#[test]
fn demo_world_availability_and_quotas() {
    let grouped = owner_grouped_demo();
    let (expected, total) = expected_by_namespace();
    let nfs = total.pvc["trident-nfs"];
    let input = grouped.path().to_str().unwrap();
    let enough = format!("trident-nfs={}", nfs);
    let short = format!("trident-nfs={}", nfs - 1);
    let mut args = MAPS.to_vec();
    args.extend(["--available", &enough, input]);
    assert_eq!(code(&run(CC, &args, b"")), 0);
    let mut args = MAPS.to_vec();
    args.extend(["--available", &short, "--format", "table", input]);
    let out = run(CC, &args, b"");
    assert_eq!(
        code(&out),
        1,
        "need above available exits 1: {}",
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

    let mut args = MAPS.to_vec();
    args.extend(["--quota", "--headroom", "20%", input]);
    let out = run(CC, &args, b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let quotas = lines(&out);
    assert_eq!(quotas.len(), expected.len());
    let gi = |bytes: u64| format!("{}Gi", ((bytes as f64 * 1.2).ceil() as u64).div_ceil(GIB));
    for q in &quotas {
        let e = &expected[q["namespace"].as_str().unwrap()];
        let hard = &q["hard"];
        assert_eq!(q["vm_count"], e.vms);
        let storage: u64 = e.pvc.values().sum();
        assert_eq!(hard["requests.storage"], gi(storage).as_str(), "{q}");
        for (class, bytes) in &e.pvc {
            assert_eq!(
                hard[format!("{class}.storageclass.storage.k8s.io/requests.storage")],
                gi(*bytes).as_str(),
                "{q}"
            );
        }
        assert_eq!(
            hard["requests.cpu"],
            ((e.vcpus as f64 * 1.2).ceil() as u64).to_string().as_str()
        );
        assert_eq!(hard["requests.memory"], gi(e.memory).as_str());
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
            "iscsi-data=rbd:Block",
            "--format",
            "csv",
            small.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert!(
        rows[0].starts_with("cluster,storage_class,vms,vcpus,memory_bytes,disks,"),
        "{text}"
    );
    // prod: web01's 10 GiB disk on nfs-sc (10 GiB / 0.945 -> 11 GiB), db01's 50 GiB Block disk on rbd, db01's LUN apart.
    assert!(
        rows.iter().any(|r| r
            .starts_with("prod,nfs-sc,1,2,4294967296,1,10737418240,2147483648,0,0,11811160064,")),
        "{text}"
    );
    assert!(
        rows.iter()
            .any(|r| r
                .starts_with("prod,rbd,1,4,8589934592,1,53687091200,53687091200,0,0,53687091200,")),
        "{text}"
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with("prod,(lun),1,4,8589934592,0,0,0,1,107374182400,0,")),
        "{text}"
    );
    assert!(rows.last().unwrap().starts_with("TOTAL,TOTAL,3,"), "{text}");
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
    assert_fails(
        &run(CC, &["--fs-overhead", "120%"], b""),
        2,
        "capacity-calc: --fs-overhead",
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
        "capacity-calc: stdin:2: VM ",
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
