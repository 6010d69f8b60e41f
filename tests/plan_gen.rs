//! plan-gen as a user runs it: Forklift objects valid against Forklift's CRDs (and the Secret
//! against Kubernetes'), the offline preflight with Forklift's concern ids, plan splitting and
//! target names, credentials handled with care, one-line errors with documented exit codes.

mod manifests;

use manifests::{Schemas, fixture, jsonl, kinds, yaml};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Output, Stdio};

const PLAN_GEN: &str = env!("CARGO_BIN_EXE_plan-gen");
const RECORDS: &str = "tests/fixtures/manifests/records.jsonl";
const BLOCKERS: &str = "tests/fixtures/manifests/blockers.jsonl";
const URL: &str = "https://engine.example.com/ovirt-engine/api";
const PASSWORD: &str = "s3cret-Pa55word";
const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";

/// The mapping every fixture VM needs.
const MAPS: &[&str] = &[
    "--network-map",
    "ovirtmgmt=pod",
    "--network-map",
    "DC1/vlan201=multus:team/vlan-a",
    "--network-map",
    "vlan202=multus:team/vlan-a",
    "--network-map",
    "display=ignored",
    "--storage-map",
    "nfs-data=ceph-rbd:Block:RWX",
    "--storage-map",
    "*=standard",
];

fn plan_gen_env(args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(PLAN_GEN);
    cmd.args(["--url", URL, "--namespace", "rhv-migration"])
        .args(args);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .env_remove("OVIRT_PASSWORD")
        .env("NO_COLOR", "1");
    cmd.envs(env.iter().copied());
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run plan-gen");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn plan_gen(args: &[&str]) -> Output {
    plan_gen_env(args, None, &[])
}

fn with_maps(extra: &[&str]) -> Vec<String> {
    MAPS.iter().chain(extra).map(|s| s.to_string()).collect()
}

fn run_maps(extra: &[&str]) -> Output {
    let args = with_maps(extra);
    plan_gen(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Objects of a run that may exit 0 or 1 (VMs left out), never anything else.
fn objects(out: &Output) -> Vec<Value> {
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "plan-gen failed: {:?}\n{}",
        out.status,
        stderr(out)
    );
    jsonl(&out.stdout)
}

fn assert_fails(out: &Output, code: i32) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("plan-gen: "), "{err}");
    assert!(out.stdout.is_empty(), "nothing on stdout after an error");
    last.to_string()
}

/// An error before any record is read: exactly one line on stderr.
fn assert_fails_one_line(out: &Output, code: i32) -> String {
    let line = assert_fails(out, code);
    assert_eq!(
        stderr(out).lines().count(),
        1,
        "one line on stderr, got: {}",
        stderr(out)
    );
    line
}

fn read_jsonl(path: &str) -> Vec<Value> {
    jsonl(&std::fs::read(fixture(path)).unwrap())
}

fn plans(objects: &[Value]) -> Vec<Value> {
    kinds(objects, "Plan")
}

/// (vm name, concern id) of a report.
fn report_pairs(report: &[Value]) -> BTreeSet<(String, String)> {
    report
        .iter()
        .map(|f| {
            (
                f["vm_name"].as_str().unwrap().to_string(),
                f["concern_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn every_object_matches_its_crd_or_kubernetes_schema() {
    let schemas = Schemas::load();
    for extra in [
        &[RECORDS][..],
        &[BLOCKERS],
        &[
            RECORDS,
            BLOCKERS,
            "--warm",
            "--include-blocked",
            "--max-vms-per-plan",
            "2",
        ],
    ] {
        let objects = objects(&run_maps(extra));
        schemas.check_all(&objects);
        assert!(!plans(&objects).is_empty());
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, CA).unwrap();
    let out = plan_gen_env(
        &with_maps(&[
            "--with-secret",
            "--user",
            "admin@internal",
            "--ca-file",
            ca.to_str().unwrap(),
            RECORDS,
        ])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        None,
        &[("OVIRT_PASSWORD", PASSWORD)],
    );
    let objects = objects(&out);
    schemas.check_all(&objects);
    assert_eq!(kinds(&objects, "Secret").len(), 1);
}

#[test]
fn providers_maps_and_plans_reference_each_other() {
    let objects = objects(&run_maps(&[RECORDS]));
    let providers = kinds(&objects, "Provider");
    let source = providers
        .iter()
        .find(|p| p["spec"]["type"] == "ovirt")
        .unwrap();
    assert_eq!(source["spec"]["url"], URL);
    assert_eq!(source["spec"]["secret"]["name"], "ovirt-credentials");
    let host = providers
        .iter()
        .find(|p| p["metadata"]["name"] == "host")
        .unwrap();
    assert_eq!(host["spec"]["type"], "openshift");
    assert!(host["spec"].get("url").is_none_or(|u| u == ""));
    for object in &objects {
        assert_eq!(object["metadata"]["namespace"], "rhv-migration");
    }
    let network_map = &kinds(&objects, "NetworkMap")[0];
    let storage_map = &kinds(&objects, "StorageMap")[0];
    for plan in plans(&objects) {
        let spec = &plan["spec"];
        assert_eq!(
            spec["provider"]["source"]["name"],
            source["metadata"]["name"]
        );
        assert_eq!(spec["provider"]["destination"]["name"], "host");
        assert_eq!(
            spec["map"]["network"]["name"],
            network_map["metadata"]["name"]
        );
        assert_eq!(
            spec["map"]["storage"]["name"],
            storage_map["metadata"]["name"]
        );
        assert_eq!(spec["type"], "cold");
    }
    // Sources by oVirt id, and only those the planned VMs use.
    let planned: BTreeSet<&str> = BTreeSet::from(["web01", "web02"]);
    let records = read_jsonl(RECORDS);
    let mut want_networks = BTreeSet::new();
    let mut want_domains = BTreeSet::new();
    for r in records
        .iter()
        .filter(|r| planned.contains(r["name"].as_str().unwrap()))
    {
        for nic in r["nics"].as_array().unwrap() {
            want_networks.insert(nic["network"]["id"].as_str().unwrap().to_string());
        }
        for disk in r["disks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["storage_type"] != "lun")
        {
            want_domains.insert(disk["storage_domain"]["id"].as_str().unwrap().to_string());
        }
    }
    let ids = |map: &Value| -> BTreeSet<String> {
        map["spec"]["map"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["source"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(network_map), want_networks);
    assert_eq!(ids(storage_map), want_domains);
    assert_eq!(network_map["spec"]["map"][0]["destination"]["type"], "pod");
    assert_eq!(
        storage_map["spec"]["map"][0]["destination"]["storageClass"],
        "ceph-rbd"
    );
    assert_eq!(
        storage_map["spec"]["map"][0]["destination"]["volumeMode"],
        "Block"
    );
    assert_eq!(
        storage_map["spec"]["map"][0]["destination"]["accessMode"],
        "ReadWriteMany"
    );
}

#[test]
fn preflight_flags_forklift_concerns_and_leaves_critical_vms_out() {
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("findings.jsonl");
    let out = run_maps(&["--report", report_path.to_str().unwrap(), RECORDS]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a VM was left out: {}",
        stderr(&out)
    );
    let report = jsonl(&std::fs::read(&report_path).unwrap());
    // DB_01 in the fixture: a locked disk on ide, HA, HA reservation, RHEL 6, an invalid name.
    let expected: BTreeSet<(String, String)> = [
        "ovirt.disk.illegal_or_locked_status",
        "ovirt.disk.interface_type.unsupported",
        "ovirt.ha.enabled",
        "ovirt.ha.reservation.enabled",
        "ovirt.os.unsupported",
        "ovirt.name.invalid",
    ]
    .iter()
    .map(|id| ("DB_01".to_string(), id.to_string()))
    .collect();
    assert_eq!(report_pairs(&report), expected);
    for finding in &report {
        for field in [
            "vm_id",
            "vm_name",
            "target_namespace",
            "concern_id",
            "category",
            "label",
            "assessment",
        ] {
            assert!(finding[field].is_string(), "{field} in {finding}");
        }
        let critical = finding["concern_id"] == "ovirt.disk.illegal_or_locked_status";
        assert_eq!(
            finding["category"],
            if critical { "Critical" } else { "Warning" },
            "{finding}"
        );
        assert_eq!(finding["left_out"], true);
    }
    let err = stderr(&out);
    assert!(
        err.contains("ovirt.disk.illegal_or_locked_status") && err.contains("DB_01"),
        "{err}"
    );
    let names: Vec<String> = plans(&jsonl(&out.stdout))
        .iter()
        .flat_map(|p| {
            p["spec"]["vms"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(names, ["web01", "web02"]);

    // --include-blocked keeps it, and then all is planned: exit 0.
    let out = run_maps(&["--include-blocked", RECORDS]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plans = plans(&jsonl(&out.stdout));
    let db = plans
        .iter()
        .find(|p| p["spec"]["targetNamespace"] == "dba")
        .unwrap();
    assert_eq!(db["spec"]["vms"][0]["name"], "DB_01");
    assert_eq!(db["spec"]["vms"][0]["targetName"], "db-01");
}

#[test]
fn plan_level_blockers_use_forklift_condition_names() {
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("findings.jsonl");
    let out = run_maps(&["--report", report_path.to_str().unwrap(), BLOCKERS]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = jsonl(&std::fs::read(&report_path).unwrap());
    let pairs = report_pairs(&report);
    for (vm, id) in [
        ("two-pod", "VMMultiplePodNetworkMappings"),
        ("two-nad", "VMDuplicateNADMappings"),
        ("mac-a", "liftkit.nic.mac_conflict"),
        ("mac-b", "liftkit.nic.mac_conflict"),
        ("Web.Server_01", "ovirt.name.invalid"),
    ] {
        assert!(
            pairs.contains(&(vm.to_string(), id.to_string())),
            "{vm} {id} missing from {pairs:?}"
        );
    }
    // A NIC mapped to `ignored` is dropped, so its MAC conflicts with nothing.
    assert!(
        !pairs.iter().any(|(vm, _)| vm == "ignored-nic"),
        "{pairs:?}"
    );
    let left_out: BTreeSet<&str> = report
        .iter()
        .filter(|f| f["left_out"] == true)
        .map(|f| f["vm_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        left_out,
        BTreeSet::from(["mac-a", "mac-b", "two-nad", "two-pod"])
    );
    let planned: BTreeSet<String> = plans(&jsonl(&out.stdout))
        .iter()
        .flat_map(|p| {
            p["spec"]["vms"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(planned.len(), 6);
}

#[test]
fn target_names_are_valid_unique_and_only_set_when_needed() {
    let objects = objects(&run_maps(&[BLOCKERS, "--max-vms-per-plan", "2"]));
    let mut target_names = BTreeSet::new();
    for plan in plans(&objects) {
        for vm in plan["spec"]["vms"].as_array().unwrap() {
            let name = vm["name"].as_str().unwrap();
            let target = match vm.get("targetName") {
                Some(t) => t.as_str().unwrap().to_string(),
                None => {
                    assert!(manifests::is_label(name), "{name} needs a targetName");
                    name.to_string()
                }
            };
            assert!(manifests::is_label(&target), "{target}");
            assert!(
                target_names.insert(target.clone()),
                "target name {target} used twice"
            );
        }
    }
    assert!(target_names.contains("web-server-01"));
    assert_eq!(
        target_names
            .iter()
            .filter(|t| t.starts_with("web-server-01"))
            .count(),
        2
    );
    assert_eq!(
        target_names.iter().filter(|t| t.starts_with("dup")).count(),
        2
    );
}

#[test]
fn plans_split_by_count_and_size_deterministically() {
    let records = read_jsonl(BLOCKERS);
    let disk_bytes: BTreeMap<String, u64> = records
        .iter()
        .map(|r| {
            let bytes = r["disks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    d["provisioned_bytes"]
                        .as_u64()
                        .unwrap()
                        .max(d["actual_bytes"].as_u64().unwrap())
                })
                .sum();
            (r["id"].as_str().unwrap().to_string(), bytes)
        })
        .collect();
    let limit: u64 = 500 << 30;
    for args in [
        &["--max-vms-per-plan", "4"][..],
        &["--max-size-per-plan", "500GiB"],
        &["--max-size-per-plan", "500GiB", "--max-vms-per-plan", "2"],
    ] {
        let mut all = vec![BLOCKERS];
        all.extend_from_slice(args);
        let plans = plans(&objects(&run_maps(&all)));
        assert!(plans.len() > 1, "{args:?} should split");
        let mut seen = Vec::new();
        for (i, plan) in plans.iter().enumerate() {
            assert_eq!(plan["metadata"]["name"], format!("plan-team-{}", i + 1));
            let vms = plan["spec"]["vms"].as_array().unwrap();
            let total: u64 = vms
                .iter()
                .map(|v| disk_bytes[v["id"].as_str().unwrap()])
                .sum();
            let annotations = &plan["metadata"]["annotations"];
            assert_eq!(
                annotations["liftkit.io/total-disk-bytes"],
                total.to_string()
            );
            assert_eq!(annotations["liftkit.io/vm-count"], vms.len().to_string());
            if args.contains(&"--max-size-per-plan") {
                assert!(
                    total <= limit || vms.len() == 1,
                    "plan {i} holds {total} bytes"
                );
            }
            if let Some(pos) = args.iter().position(|a| *a == "--max-vms-per-plan") {
                assert!(vms.len() <= args[pos + 1].parse().unwrap());
            }
            seen.extend(vms.iter().map(|v| v["id"].as_str().unwrap().to_string()));
        }
        let unique: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "a VM in two plans");
        assert_eq!(seen.len(), 6);
    }
}

#[test]
fn unmapped_networks_and_storage_stop_with_the_list_and_exit_78() {
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("findings.jsonl");
    let out = plan_gen(&[
        "--network-map",
        "ovirtmgmt=pod",
        "--storage-map",
        "nfs-data=standard",
        "--include-blocked",
        "--report",
        report_path.to_str().unwrap(),
        RECORDS,
    ]);
    let line = assert_fails(&out, 78);
    assert!(
        line.contains("DC1/vlan201") && line.contains("iscsi-fast") && line.contains("DB_01"),
        "{line}"
    );
    let pairs = report_pairs(&jsonl(&std::fs::read(&report_path).unwrap()));
    assert!(
        pairs.contains(&("DB_01".into(), "VMNetworksNotMapped".into())),
        "{pairs:?}"
    );
    assert!(
        pairs.contains(&("DB_01".into(), "VMStorageNotMapped".into())),
        "{pairs:?}"
    );
}

#[test]
fn a_bad_mapping_spec_exits_2_with_one_line() {
    let line = assert_fails_one_line(
        &plan_gen(&["--network-map", "ovirtmgmt=multus:bad", RECORDS]),
        2,
    );
    assert!(line.contains("--network-map"), "{line}");
    let line = assert_fails_one_line(
        &plan_gen(&["--storage-map", "nfs-data=ceph:Sideways", RECORDS]),
        2,
    );
    assert!(line.contains("--storage-map"), "{line}");
}

#[test]
fn a_malformed_record_exits_65_naming_the_line() {
    let mut input = std::fs::read(fixture(RECORDS)).unwrap();
    input.extend_from_slice(b"not json\n");
    let args = with_maps(&[]);
    let out = plan_gen_env(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        Some(&input),
        &[],
    );
    let line = assert_fails_one_line(&out, 65);
    assert!(line.starts_with("plan-gen: stdin:4: "), "{line}");
    let no_namespace = br#"{"schema": 1, "id": "x", "name": "lonely"}"#;
    let out = plan_gen_env(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        Some(no_namespace),
        &[],
    );
    let line = assert_fails_one_line(&out, 65);
    assert!(
        line.contains("stdin:1: VM lonely has no target_namespace"),
        "{line}"
    );
}

#[test]
fn missing_password_exits_78_with_one_line() {
    let line = assert_fails_one_line(
        &run_maps(&[
            "--with-secret",
            "--user",
            "admin@internal",
            "--insecure-skip-verify",
            RECORDS,
        ]),
        78,
    );
    assert!(line.contains("OVIRT_PASSWORD"), "{line}");
}

#[test]
fn the_secret_file_is_0600_and_the_password_never_reaches_stderr() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, CA).unwrap();
    let out_path = dir.path().join("forklift.yaml");
    let args = with_maps(&[
        "--with-secret",
        "--user",
        "admin@internal",
        "--password-file",
        password_file.to_str().unwrap(),
        "--ca-file",
        ca.to_str().unwrap(),
        "--format",
        "yaml",
        "-o",
        out_path.to_str().unwrap(),
        "-vvv",
        RECORDS,
    ]);
    let out = plan_gen(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!stderr(&out).contains(PASSWORD), "password on stderr");
    let mode = std::fs::metadata(&out_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let written = yaml(&std::fs::read(&out_path).unwrap());
    let secret = &kinds(&written, "Secret")[0];
    let data = &secret["stringData"];
    assert_eq!(data["user"], "admin@internal");
    assert_eq!(data["password"], PASSWORD);
    assert_eq!(data["ca.crt"], CA);
    assert_eq!(data["url"], URL);
    let provider = kinds(&written, "Provider")
        .into_iter()
        .find(|p| p["spec"]["type"] == "ovirt")
        .unwrap();
    assert_eq!(
        provider["spec"]["secret"]["name"],
        secret["metadata"]["name"]
    );

    // insecureSkipVerify instead of a CA; a failed run (bad mapping) says nothing of the password.
    let args = with_maps(&[
        "--with-secret",
        "--user",
        "admin@internal",
        "--insecure-skip-verify",
        RECORDS,
    ]);
    let out = plan_gen_env(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
        &[("OVIRT_PASSWORD", PASSWORD)],
    );
    let secret = &kinds(&objects(&out), "Secret")[0];
    assert_eq!(secret["stringData"]["insecureSkipVerify"], "true");
    assert!(secret["stringData"].get("ca.crt").is_none());
    assert!(!stderr(&out).contains(PASSWORD));
    let out = plan_gen_env(
        &[
            "--with-secret",
            "--user",
            "u",
            "--insecure-skip-verify",
            "--network-map",
            "x=nowhere",
            RECORDS,
        ],
        None,
        &[("OVIRT_PASSWORD", PASSWORD)],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains(PASSWORD));
}

#[test]
fn output_is_deterministic_and_independent_of_input_order() {
    let first = run_maps(&[RECORDS, BLOCKERS, "--max-vms-per-plan", "3"]);
    let second = run_maps(&[RECORDS, BLOCKERS, "--max-vms-per-plan", "3"]);
    assert_eq!(first.stdout, second.stdout);
    assert_eq!(first.stderr, second.stderr);
    let mut lines: Vec<String> = [RECORDS, BLOCKERS]
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(fixture(p))
                .unwrap()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    lines.reverse();
    let args = with_maps(&["--max-vms-per-plan", "3"]);
    let reversed = plan_gen_env(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        Some(format!("{}\n", lines.join("\n")).as_bytes()),
        &[],
    );
    assert_eq!(first.stdout, reversed.stdout);
}

#[test]
fn yaml_output_reads_back_as_the_same_objects() {
    let json = objects(&run_maps(&[RECORDS, BLOCKERS, "--warm"]));
    let out = run_maps(&[RECORDS, BLOCKERS, "--warm", "--format", "yaml"]);
    assert_eq!(yaml(&out.stdout), json);
    assert!(plans(&json).iter().all(|p| p["spec"]["type"] == "warm"));
}

#[test]
fn plan_name_template_names_plans() {
    let objects = objects(&run_maps(&[
        RECORDS,
        "--plan-name-template",
        "{provider}-to-{namespace}",
    ]));
    let names: Vec<String> = plans(&objects)
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["ovirt-to-alice"]);
    let line = assert_fails_one_line(&run_maps(&[RECORDS, "--plan-name-template", "all-vms"]), 2);
    assert!(line.contains("{namespace}"), "{line}");
}

#[test]
fn the_schemas_catch_what_an_api_server_would_reject() {
    let schemas = Schemas::load();
    let objects = objects(&run_maps(&[RECORDS]));
    let plan = plans(&objects)[0].clone();
    let mut typo = plan.clone();
    typo["spec"]["vm"] = typo["spec"]["vms"].take();
    assert!(
        !schemas.errors(&typo).is_empty(),
        "unknown field and missing vms accepted"
    );
    let mut wrong_type = plan.clone();
    wrong_type["spec"]["type"] = Value::from("hot");
    assert!(
        !schemas.errors(&wrong_type).is_empty(),
        "type outside the enum accepted"
    );
    let mut bad_map = kinds(&objects, "NetworkMap")[0].clone();
    bad_map["spec"]["map"][0]["destination"]["type"] = Value::from("bridge");
    assert!(
        !schemas.errors(&bad_map).is_empty(),
        "network destination outside the enum accepted"
    );
    let mut bad_meta = plan;
    bad_meta["metadata"]["labels"]["x"] = Value::from(1);
    assert!(
        !schemas.errors(&bad_meta).is_empty(),
        "a numeric label accepted"
    );
}

// ---- The demo world and generated worlds, through the real pipeline ----

mod pipeline;
mod support;

fn demo_owned() -> &'static [u8] {
    static OWNED: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    OWNED.get_or_init(|| pipeline::owned(pipeline::demo_records()))
}

/// A generated world (`ovirt-sim --generate N --seed S`) exported and annotated, and the world.
fn generated(vms: usize, seed: u64) -> (Vec<u8>, Value) {
    let g = pipeline::generated(vms, seed);
    let world = serde_json::from_str(&std::fs::read_to_string(&g.world).unwrap()).unwrap();
    (g.owned, world)
}

const DEMO_MAP: &str = "tests/fixtures/demo-networks.map";

/// What Forklift's oVirt policies raise on a world's VMs, read straight from the world file:
/// (vm id, concern id), plus liftkit.disk.shared where Forklift is silent. Written from the rego
/// files (kubev2v/forklift validation/policies/io/konveyor/forklift/ovirt/, identical at v2.12.5
/// and d42511bb, so the same at every version), over the world's field names, with the engine's
/// defaults the simulator applies (affinity `migratable`, resume behaviour `auto_resume`).
fn world_concerns(world: &Value) -> BTreeSet<(String, String)> {
    let index = |kind: &str| -> BTreeMap<String, Value> {
        world[kind]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (o["id"].as_str().unwrap().to_string(), o.clone()))
            .collect()
    };
    let (clusters, disks, profiles) = (index("clusters"), index("disks"), index("vnic_profiles"));
    let truthy = |v: &Value| v.as_bool() == Some(true);
    let non_empty = |v: &Value| {
        v.as_array().is_some_and(|a| !a.is_empty()) || v.as_str().is_some_and(|s| !s.is_empty())
    };
    // name.rego:20-21: `^(([A-Za-z0-9][-A-Za-z0-9.]*)?[A-Za-z0-9])?$`, fewer than 64 characters.
    let name_ok = |n: &str| {
        let b = n.as_bytes();
        b.len() < 64
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
            && b.first().is_none_or(u8::is_ascii_alphanumeric)
            && b.last().is_none_or(u8::is_ascii_alphanumeric)
    };
    let mut out = BTreeSet::new();
    for vm in world["vms"].as_array().unwrap() {
        let mut hit = |id: &str| {
            out.insert((vm["id"].as_str().unwrap().to_string(), id.to_string()));
        };
        let attachments = vm["disk_attachments"].as_array().unwrap();
        let vm_disks: Vec<&Value> = attachments
            .iter()
            .map(|a| &disks[a["disk"].as_str().unwrap()])
            .collect();
        // disk_size.rego:16-19: non-LUN disks only; its LUN branch reads a path the inventory
        // never serves (a LUN of size 0 is the plan condition InvalidDiskSizes instead).
        if vm_disks
            .iter()
            .any(|d| d["storage_type"] != "lun" && d["provisioned_size"].as_u64() == Some(0))
        {
            hit("ovirt.disk.capacity.invalid");
        }
        if vm_disks.iter().any(|d| {
            ["illegal", "locked"]
                .iter()
                .any(|s| d["status"].as_str().unwrap_or("").contains(s))
        }) {
            hit("ovirt.disk.illegal_or_locked_status");
        }
        if vm_disks
            .iter()
            .any(|d| d["storage_type"] != "image" && d["storage_type"] != "lun")
        {
            hit("ovirt.disk.storage_type.unsupported");
        }
        if truthy(&vm["has_illegal_images"]) {
            hit("ovirt.disk.illegal_images.detected");
        }
        if attachments.len() > 165 {
            hit("ovirt.disk.count.exceeds.limit");
        }
        let supported_disk = |i: &str| {
            ["sata", "virtio_scsi", "virtio"]
                .iter()
                .any(|s| i.contains(s))
        };
        if attachments
            .iter()
            .any(|a| !supported_disk(a["interface"].as_str().unwrap_or("")))
        {
            hit("ovirt.disk.interface_type.unsupported");
        }
        // shared_disk.rego never fires: the collector reads `sharable`, ovirt-sim (like the
        // engine) sends `shareable` (container/ovirt/resource.go:664). liftkit says so itself.
        if vm_disks.iter().any(|d| truthy(&d["shareable"])) {
            hit("liftkit.disk.shared");
        }
        if attachments
            .iter()
            .any(|a| truthy(&a["uses_scsi_reservation"]))
        {
            hit("ovirt.disk.scsi_reservation.enabled");
        }
        let nics = vm["nics"].as_array().unwrap();
        let supported_nic = |i: &str| ["e1000", "rtl8139", "virtio"].iter().any(|s| i.contains(s));
        if nics
            .iter()
            .any(|n| !supported_nic(n["interface"].as_str().unwrap_or("")))
        {
            hit("ovirt.nic.interface_type.unsupported");
        }
        if nics.iter().any(|n| {
            n["interface"]
                .as_str()
                .unwrap_or("")
                .contains("pci_passthrough")
        }) {
            hit("ovirt.nic.pci_passthrough.detected");
        }
        if nics.iter().any(|n| n["plugged"] == false) {
            hit("ovirt.nic.unplugged.detected");
        }
        let nic_profiles: Vec<&Value> = nics
            .iter()
            .filter_map(|n| n["vnic_profile"].as_str())
            .map(|p| &profiles[p])
            .collect();
        for (field, id) in [
            ("custom_properties", "ovirt.nic.custom_properties.detected"),
            ("network_filter", "ovirt.nic.network_filter.detected"),
            ("qos", "ovirt.nic.qos.detected"),
        ] {
            if nic_profiles.iter().any(|p| non_empty(&p[field])) {
                hit(id);
            }
        }
        if nic_profiles.iter().any(|p| truthy(&p["port_mirroring"])) {
            hit("ovirt.nic.port_mirroring.detected");
        }
        if !name_ok(vm["name"].as_str().unwrap()) {
            hit("ovirt.name.invalid");
        }
        // vm_status.rego:14: `up|down`, unanchored (powering_up passes).
        let status = vm["status"].as_str().unwrap_or("");
        if !status.contains("up") && !status.contains("down") {
            hit("ovirt.vm.status_invalid");
        }
        let os = vm["os_type"].as_str().unwrap_or("");
        if os.contains("rhel_6") {
            hit("ovirt.os.unsupported");
        }
        if os.contains("windows_2022") || os.contains("windows_11") {
            hit("ovirt.tpm.required_by_os");
        }
        if vm["bios_type"] == "q35_secure_boot" {
            hit("ovirt.secure_boot.detected");
        }
        if truthy(&vm["boot_menu"]) {
            hit("ovirt.bios.boot_menu.enabled");
        }
        if non_empty(&vm["custom_cpu_model"]) {
            hit("ovirt.cpu.custom_model.detected");
        }
        let policy = vm["cpu_pinning_policy"].as_str().unwrap_or("");
        if policy.contains("resize_and_pin_numa") || policy.contains("isolate_threads") {
            hit("ovirt.cpu.pinning_policy.unsupported");
        }
        if vm["cpu_shares"].as_u64().unwrap_or(0) > 0 {
            hit("ovirt.cpu.shares.defined");
        }
        if non_empty(&vm["vcpu_pins"]) {
            hit("ovirt.cpu.tuning.detected");
        }
        if non_empty(&vm["custom_properties"]) {
            hit("ovirt.vm.custom_properties.detected");
        }
        if truthy(&vm["high_availability"]["enabled"]) {
            hit("ovirt.ha.enabled");
        }
        let cluster = &clusters[vm["cluster"].as_str().unwrap()];
        if truthy(&cluster["ha_reservation"]) {
            hit("ovirt.ha.reservation.enabled");
        }
        if truthy(&cluster["ksm"]) {
            hit("ovirt.cluster.ksm_enabled");
        }
        if non_empty(&vm["host_devices"]) {
            hit("ovirt.host_devices.mapped");
        }
        if vm["snapshots"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| truthy(&s["persist_memorystate"]))
        {
            hit("ovirt.snapshot.online_memory.detected");
        }
        // The engine reports `migratable` unless the VM is pinned; the rule wants the whole word.
        let affinity = vm["placement_policy"]["affinity"]
            .as_str()
            .unwrap_or("migratable");
        if affinity
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|w| w == "migratable")
        {
            hit("ovirt.placement_policy.affinity_set");
        }
        if truthy(&vm["usb"]) {
            hit("ovirt.usb.enabled");
        }
        if non_empty(&vm["watchdogs"]) {
            hit("ovirt.watchdog.enabled");
        }
        if truthy(&vm["memory_policy"]["ballooning"]) {
            hit("ovirt.memory.ballooning.enabled");
        }
        if vm["display_type"] == "spice" {
            hit("ovirt.display_type.spice.enabled");
        }
        if vm["io_threads"].as_u64().unwrap_or(0) > 1 {
            hit("ovirt.iothreads.configured");
        }
        if vm["storage_error_resume_behaviour"]
            .as_str()
            .is_some_and(|b| b != "auto_resume")
        {
            hit("ovirt.storage.resume_behavior.unsupported");
        }
    }
    out
}

/// Every oVirt concern Forklift v2.12.5 raises, with its category and where the rego sets it
/// (validation/policies/io/konveyor/forklift/ovirt/FILE:LINE, the `"category"` line), read from
/// Forklift's source, not from plan-gen: the expectation for categories and for which VMs are left
/// out.
const FORKLIFT_CONCERNS: &[(&str, &str, &str)] = &[
    (
        "ovirt.bios.boot_menu.enabled",
        "Warning",
        "bios_boot_menu.rego:15",
    ),
    ("ovirt.cluster.ksm_enabled", "Warning", "ksm.rego:15"),
    (
        "ovirt.cpu.custom_model.detected",
        "Warning",
        "cpu_custom_model.rego:15",
    ),
    (
        "ovirt.cpu.pinning_policy.unsupported",
        "Warning",
        "cpu_policy.rego:16",
    ),
    ("ovirt.cpu.shares.defined", "Warning", "cpu_shares.rego:15"),
    ("ovirt.cpu.tuning.detected", "Warning", "cpu_tune.rego:15"),
    (
        "ovirt.disk.capacity.invalid",
        "Critical",
        "disk_size.rego:37",
    ),
    (
        "ovirt.disk.count.exceeds.limit",
        "Warning",
        "disk_count.rego:16",
    ),
    (
        "ovirt.disk.illegal_images.detected",
        "Critical",
        "illegal_images.rego:15",
    ),
    (
        "ovirt.disk.illegal_or_locked_status",
        "Critical",
        "disk_status.rego:14",
    ),
    (
        "ovirt.disk.interface_type.unsupported",
        "Warning",
        "disk_interface_type.rego:19",
    ),
    (
        "ovirt.disk.scsi_reservation.enabled",
        "Warning",
        "scsi_reservation.rego:14",
    ),
    (
        "ovirt.disk.shared.detected",
        "Warning",
        "shared_disk.rego:14",
    ),
    (
        "ovirt.disk.storage_type.unsupported",
        "Critical",
        "disk_storage_type.rego:19",
    ),
    (
        "ovirt.display_type.spice.enabled",
        "Information",
        "display_type.rego:15",
    ),
    ("ovirt.ha.enabled", "Warning", "ha.rego:15"),
    (
        "ovirt.ha.reservation.enabled",
        "Warning",
        "ha_reservation.rego:15",
    ),
    (
        "ovirt.host_devices.mapped",
        "Warning",
        "host_devices.rego:15",
    ),
    (
        "ovirt.iothreads.configured",
        "Information",
        "io_threads.rego:15",
    ),
    (
        "ovirt.memory.ballooning.enabled",
        "Information",
        "ballooned_memory.rego:15",
    ),
    ("ovirt.name.invalid", "Warning", "name.rego:30"),
    (
        "ovirt.nic.custom_properties.detected",
        "Warning",
        "nic_custom_properties.rego:15",
    ),
    (
        "ovirt.nic.interface_type.unsupported",
        "Warning",
        "nic_interface_type.rego:19",
    ),
    (
        "ovirt.nic.network_filter.detected",
        "Warning",
        "nic_network_filter.rego:14",
    ),
    (
        "ovirt.nic.pci_passthrough.detected",
        "Warning",
        "nic_pci_passthrough.rego:14",
    ),
    (
        "ovirt.nic.port_mirroring.detected",
        "Warning",
        "nic_port_mirroring.rego:14",
    ),
    ("ovirt.nic.qos.detected", "Warning", "nic_qos.rego:14"),
    (
        "ovirt.nic.unplugged.detected",
        "Warning",
        "nic_plugged.rego:14",
    ),
    ("ovirt.numa.tuning.detected", "Warning", "numa_tune.rego:15"),
    ("ovirt.os.unsupported", "Warning", "vm_os.rego:15"),
    (
        "ovirt.placement_policy.affinity_set",
        "Warning",
        "placement_policy.rego:15",
    ),
    (
        "ovirt.secure_boot.detected",
        "Warning",
        "secure_boot.rego:15",
    ),
    (
        "ovirt.snapshot.online_memory.detected",
        "Warning",
        "online_snapshot.rego:14",
    ),
    (
        "ovirt.storage.resume_behavior.unsupported",
        "Information",
        "storage_error_resume_behaviour.rego:15",
    ),
    ("ovirt.tpm.required_by_os", "Warning", "tpm.rego:15"),
    ("ovirt.usb.enabled", "Warning", "usb.rego:15"),
    (
        "ovirt.vm.custom_properties.detected",
        "Warning",
        "custom_properties.rego:15",
    ),
    ("ovirt.vm.status_invalid", "Warning", "vm_status.rego:22"),
    ("ovirt.watchdog.enabled", "Warning", "watchdog.rego:15"),
];

/// The plan blockers plan-gen reports, all Critical in Forklift v2.12.5
/// (pkg/controller/plan/validation.go, the `Category: api.CategoryCritical` line of each condition).
const FORKLIFT_BLOCKERS: &[(&str, &str)] = &[
    ("VMNetworksNotMapped", "validation.go:768"),
    ("VMStorageNotMapped", "validation.go:776"),
    ("VMStorageNotSupported", "validation.go:784"),
    ("VMMultiplePodNetworkMappings", "validation.go:800"),
    ("VMDuplicateNADMappings", "validation.go:808"),
    ("InvalidDiskSizes", "validation.go:915"),
    ("MacConflicts", "validation.go:923"),
];

/// liftkit's own findings where Forklift is silent, with their categories.
const LIFTKIT_OWN: &[(&str, &str)] = &[
    ("liftkit.disk.shared", "Warning"),
    ("liftkit.nic.mac_conflict", "Critical"),
];

/// A finding about the VM itself (a rego concern, or liftkit's shared-disk warning), not a plan
/// condition.
fn is_vm_concern(id: &str) -> bool {
    id.starts_with("ovirt.") || id == "liftkit.disk.shared"
}

/// The category Forklift gives `concern_id`; panics on an id Forklift does not have.
fn forklift_category(concern_id: &str) -> &'static str {
    if let Some((_, category, _)) = FORKLIFT_CONCERNS.iter().find(|(id, ..)| *id == concern_id) {
        return category;
    }
    if FORKLIFT_BLOCKERS.iter().any(|(id, _)| *id == concern_id) {
        return "Critical";
    }
    if let Some((_, category)) = LIFTKIT_OWN.iter().find(|(id, _)| *id == concern_id) {
        return category;
    }
    panic!("{concern_id}: not a concern or plan blocker of Forklift v2.12.5")
}

/// The plan blockers Forklift `version` would report for the world's VMs with a mapping file of
/// `network SRC=DST` lines: (vm id, condition type), and liftkit's MAC check among them.
/// VMDuplicateNADMappings only at 2.12 (v2.12.5 pkg/controller/plan/adapter/base/network.go:82;
/// removed on main by c73ed3093); InvalidDiskSizes for a LUN or disk of size 0
/// (pkg/controller/plan/adapter/ovirt/validator.go:32); a NIC without a vNIC profile is
/// VMNetworksNotMapped (validator.go:130).
fn world_plan_blockers(world: &Value, map_file: &str, version: &str) -> BTreeSet<(String, String)> {
    let index = |kind: &str| -> BTreeMap<String, Value> {
        world[kind]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (o["id"].as_str().unwrap().to_string(), o.clone()))
            .collect()
    };
    let (dcs, networks, profiles, disks) = (
        index("data_centers"),
        index("networks"),
        index("vnic_profiles"),
        index("disks"),
    );
    let mut rules: BTreeMap<String, String> = BTreeMap::new();
    for line in std::fs::read_to_string(fixture(map_file)).unwrap().lines() {
        if let Some(rule) = line.trim().strip_prefix("network ") {
            let (src, dst) = rule.split_once('=').unwrap();
            rules.insert(src.trim().to_string(), dst.trim().to_string());
        }
    }
    let destination = |network: &Value| -> Option<String> {
        let name = network["name"].as_str().unwrap();
        let dc = dcs[network["data_center"].as_str().unwrap()]["name"]
            .as_str()
            .unwrap();
        [
            network["id"].as_str().unwrap().to_string(),
            format!("{dc}/{name}"),
            name.to_string(),
            "*".to_string(),
        ]
        .iter()
        .find_map(|key| rules.get(key).cloned())
    };
    let mut out = BTreeSet::new();
    let mut macs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for vm in world["vms"].as_array().unwrap() {
        let id = vm["id"].as_str().unwrap().to_string();
        let dests: Vec<Option<String>> = vm["nics"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n["vnic_profile"].as_str())
            .map(|p| destination(&networks[profiles[p]["network"].as_str().unwrap()]))
            .collect();
        let profileless = vm["nics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["vnic_profile"].as_str().is_none());
        if dests.iter().any(Option::is_none) || profileless {
            out.insert((id.clone(), "VMNetworksNotMapped".to_string()));
        }
        if dests.iter().filter(|d| d.as_deref() == Some("pod")).count() > 1 {
            out.insert((id.clone(), "VMMultiplePodNetworkMappings".to_string()));
        }
        let multus: Vec<&String> = dests
            .iter()
            .flatten()
            .filter(|d| d.starts_with("multus:"))
            .collect();
        if version == "2.12" && multus.iter().collect::<BTreeSet<_>>().len() < multus.len() {
            out.insert((id.clone(), "VMDuplicateNADMappings".to_string()));
        }
        let zero_sized = vm["disk_attachments"].as_array().unwrap().iter().any(|a| {
            let d = &disks[a["disk"].as_str().unwrap()];
            let size = if d["storage_type"] == "lun" {
                &d["lun_size"]
            } else {
                &d["provisioned_size"]
            };
            size.as_u64().unwrap_or(0) == 0
        });
        if zero_sized {
            out.insert((id.clone(), "InvalidDiskSizes".to_string()));
        }
        for nic in vm["nics"].as_array().unwrap() {
            let ignored = nic["vnic_profile"]
                .as_str()
                .and_then(|p| destination(&networks[profiles[p]["network"].as_str().unwrap()]))
                .is_some_and(|d| d == "ignored");
            if !ignored {
                macs.entry(nic["mac"].as_str().unwrap().to_ascii_lowercase())
                    .or_default()
                    .insert(id.clone());
            }
        }
    }
    for users in macs.values().filter(|u| u.len() > 1) {
        for id in users {
            out.insert((id.clone(), "liftkit.nic.mac_conflict".to_string()));
        }
    }
    out
}

/// WORLD.md's table of deliberately flagged demo VMs.
const WORLD_MD_FLAGGED: &[(&str, &str)] = &[
    ("ora-rac-node1", "liftkit.disk.shared"),
    ("ora-rac-node2", "liftkit.disk.shared"),
    ("san-lun-db01", "ovirt.disk.storage_type.unsupported"),
    ("broken-snap-vm", "ovirt.disk.illegal_images.detected"),
    ("legacy-illegal-disk", "ovirt.disk.illegal_or_locked_status"),
    ("locked-disk-vm", "ovirt.disk.illegal_or_locked_status"),
    ("usb-license-dongle", "ovirt.usb.enabled"),
    ("legacy-e1000-app", "ovirt.nic.interface_type.unsupported"),
    ("old-rtl8139-box", "ovirt.nic.interface_type.unsupported"),
    ("dpdk-router-01", "ovirt.nic.pci_passthrough.detected"),
    ("watchdog-app-01", "ovirt.watchdog.enabled"),
    ("gpu-render-01", "ovirt.host_devices.mapped"),
    ("memsnap-vm", "ovirt.snapshot.online_memory.detected"),
    ("pinned-latency-01", "ovirt.cpu.tuning.detected"),
    ("custom-cpu-vm", "ovirt.cpu.custom_model.detected"),
    ("ha-db-primary", "ovirt.ha.enabled"),
    ("spice-desktop-01", "ovirt.display_type.spice.enabled"),
    ("custom-props-vm", "ovirt.vm.custom_properties.detected"),
    ("pinned-host-vm", "ovirt.placement_policy.affinity_set"),
    ("secureboot-win2022", "ovirt.secure_boot.detected"),
    ("port-mirror-ids", "ovirt.nic.port_mirroring.detected"),
    ("filtered-nic-vm", "ovirt.nic.network_filter.detected"),
    ("bootmenu-vm", "ovirt.bios.boot_menu.enabled"),
    ("cpu-shares-vm", "ovirt.cpu.shares.defined"),
    ("unplugged-nic-vm", "ovirt.nic.unplugged.detected"),
    ("scsi-reservation-vm", "ovirt.disk.scsi_reservation.enabled"),
    (
        "kill-on-error-vm",
        "ovirt.storage.resume_behavior.unsupported",
    ),
    ("iothreads-vm", "ovirt.iothreads.configured"),
    ("ballooned-vm", "ovirt.memory.ballooning.enabled"),
    ("ba_shared_vm_1", "ovirt.name.invalid"),
    ("Win2019-AD01", "ovirt.name.invalid"),
];

/// Rows of WORLD.md's table that Forklift's own rules do not raise, so neither does plan-gen:
/// a LUN disk is a supported storage type (disk_storage_type.rego accepts `image` and `lun`);
/// e1000 and rtl8139 are supported NIC models (nic_interface_type.rego); the placement rule fires
/// on `migratable`, not on `pinned` (placement_policy.rego matches `\bmigratable\b`); capitals
/// pass name.rego's pattern (line 20).
const NOT_RAISED_BY_FORKLIFT: &[(&str, &str)] = &[
    ("Win2019-AD01", "ovirt.name.invalid"),
    ("san-lun-db01", "ovirt.disk.storage_type.unsupported"),
    ("legacy-e1000-app", "ovirt.nic.interface_type.unsupported"),
    ("old-rtl8139-box", "ovirt.nic.interface_type.unsupported"),
    ("pinned-host-vm", "ovirt.placement_policy.affinity_set"),
];

fn run_demo(extra: &[&str]) -> (Output, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.jsonl");
    let mut args = vec![
        "--url",
        URL,
        "--namespace",
        "rhv-migration",
        "--map-file",
        DEMO_MAP,
        "--report",
        report.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut cmd = Command::new(PLAN_GEN);
    cmd.args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(demo_owned()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = jsonl(&std::fs::read(&report).unwrap_or_default());
    (out, report)
}

/// The Forklift versions plan-gen knows, as `--forklift-version` takes them.
const VERSIONS: [&str; 2] = ["2.12", "main"];

#[test]
fn demo_world_preflight_raises_exactly_forklifts_concerns() {
    for version in VERSIONS {
        demo_concerns_at(version);
    }
}

fn demo_concerns_at(version: &str) {
    let world = pipeline::world();
    let (out, report) = run_demo(&["--forklift-version", version]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "demo VMs are left out: {}",
        stderr(&out)
    );
    let names: BTreeMap<String, String> = world["vms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|vm| {
            (
                vm["id"].as_str().unwrap().to_string(),
                vm["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let raised: BTreeSet<(String, String)> = report
        .iter()
        .filter(|f| is_vm_concern(f["concern_id"].as_str().unwrap()))
        .map(|f| {
            (
                f["vm_id"].as_str().unwrap().to_string(),
                f["concern_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = world_concerns(world);
    let show = |set: &BTreeSet<(String, String)>| -> Vec<String> {
        set.iter()
            .map(|(id, c)| format!("{} {c}", names[id]))
            .collect()
    };
    let missing: BTreeSet<(String, String)> = expected.difference(&raised).cloned().collect();
    let extra: BTreeSet<(String, String)> = raised.difference(&expected).cloned().collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{version}: concerns differ from what the world file implies: not raised {:?}, raised but not implied {:?}",
        show(&missing),
        show(&extra)
    );

    // Every row of WORLD.md's table is raised, except where Forklift's rules say otherwise.
    let by_name: BTreeSet<(String, String)> = raised
        .iter()
        .map(|(id, c)| (names[id].clone(), c.clone()))
        .collect();
    for (vm, concern) in WORLD_MD_FLAGGED {
        let row = (vm.to_string(), concern.to_string());
        if NOT_RAISED_BY_FORKLIFT.contains(&(vm, concern)) {
            assert!(
                !by_name.contains(&row),
                "{vm} {concern} is raised after all: update NOT_RAISED_BY_FORKLIFT"
            );
        } else {
            assert!(
                by_name.contains(&row),
                "WORLD.md flags {vm} with {concern}; plan-gen did not"
            );
        }
    }
    // Categories are Forklift's.
    for finding in &report {
        let want = forklift_category(finding["concern_id"].as_str().unwrap());
        assert_eq!(finding["category"], want, "{finding}");
    }
}

/// The VMs Forklift `version` would block (a Critical concern, or a plan blocker with DEMO_MAP),
/// and those liftkit's MAC check leaves out, by id.
fn world_left_out(world: &Value, version: &str) -> BTreeSet<String> {
    let critical_rules: BTreeSet<&str> = FORKLIFT_CONCERNS
        .iter()
        .filter(|(_, category, _)| *category == "Critical")
        .map(|(id, ..)| *id)
        .collect();
    let mut blocked: BTreeSet<String> = world_plan_blockers(world, DEMO_MAP, version)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    blocked.extend(
        world_concerns(world)
            .into_iter()
            .filter(|(_, c)| critical_rules.contains(c.as_str()))
            .map(|(id, _)| id),
    );
    blocked
}

/// plan-gen's rules table is Forklift's: the same concern ids, each with Forklift's category.
#[test]
fn the_rules_table_is_forklifts() {
    let ours: BTreeSet<(&str, &str)> = plan_gen::concerns::known()
        .map(|(id, category)| (id, category.as_str()))
        .collect();
    let forklifts: BTreeSet<(&str, &str)> = FORKLIFT_CONCERNS
        .iter()
        .map(|(id, category, _)| (*id, *category))
        .collect();
    assert_eq!(ours, forklifts);
}

#[test]
fn demo_world_plan_blockers_and_left_out_vms_are_forklifts() {
    for version in VERSIONS {
        demo_blockers_at(version);
    }
    // The versions differ on the demo lab by VMDuplicateNADMappings alone: VMs main migrates.
    let world = pipeline::world();
    let only_2_12: BTreeSet<String> = world_left_out(world, "2.12")
        .difference(&world_left_out(world, "main"))
        .cloned()
        .collect();
    let nad: BTreeSet<String> = world_plan_blockers(world, DEMO_MAP, "2.12")
        .into_iter()
        .filter(|(_, c)| c == "VMDuplicateNADMappings")
        .map(|(id, _)| id)
        .collect();
    assert!(
        !only_2_12.is_empty() && only_2_12.is_subset(&nad),
        "{only_2_12:?}"
    );
}

fn demo_blockers_at(version: &str) {
    let world = pipeline::world();
    let (out, report) = run_demo(&["--forklift-version", version]);
    let raised: BTreeSet<(String, String)> = report
        .iter()
        .filter(|f| !is_vm_concern(f["concern_id"].as_str().unwrap()))
        .map(|f| {
            (
                f["vm_id"].as_str().unwrap().to_string(),
                f["concern_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        raised,
        world_plan_blockers(world, DEMO_MAP, version),
        "{version}"
    );

    // Left out: exactly the VMs with a Critical finding; every other VM is in exactly one plan.
    let blocked = world_left_out(world, version);
    let planned: Vec<String> = plans(&jsonl(&out.stdout))
        .iter()
        .flat_map(|p| {
            p["spec"]["vms"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let planned_set: BTreeSet<String> = planned.iter().cloned().collect();
    assert_eq!(planned.len(), planned_set.len(), "a VM in two plans");
    let all: BTreeSet<String> = world["vms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        planned_set,
        all.difference(&blocked).cloned().collect::<BTreeSet<_>>()
    );
    let left_out: BTreeSet<String> = report
        .iter()
        .filter(|f| f["left_out"] == true)
        .map(|f| f["vm_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left_out, blocked);
}

#[test]
fn demo_world_objects_match_their_schemas_in_both_formats() {
    let schemas = Schemas::load();
    let (out, _) = run_demo(&["--max-size-per-plan", "2TiB", "--max-vms-per-plan", "5"]);
    let objects = jsonl(&out.stdout);
    schemas.check_all(&objects);
    // One plan per target namespace of the planned VMs, split where they are too big.
    let namespaces: BTreeSet<String> = plans(&objects)
        .iter()
        .map(|p| p["spec"]["targetNamespace"].as_str().unwrap().to_string())
        .collect();
    // The namespaces of the VMs not left out: every one gets a plan, no other does.
    let left_out = world_left_out(pipeline::world(), "2.12");
    let expected: BTreeSet<String> = pipeline::world_namespaces()
        .into_iter()
        .filter(|(vm, _)| !left_out.contains(vm))
        .map(|(_, ns)| ns)
        .collect();
    assert_eq!(namespaces, expected);
    for plan in plans(&objects) {
        let vms = plan["spec"]["vms"].as_array().unwrap();
        assert!(vms.len() <= 5);
        let bytes: u64 = plan["metadata"]["annotations"]["liftkit.io/total-disk-bytes"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            bytes <= 2 << 40 || vms.len() == 1,
            "{}",
            plan["metadata"]["name"]
        );
    }
    let (yaml_out, _) = run_demo(&[
        "--max-size-per-plan",
        "2TiB",
        "--max-vms-per-plan",
        "5",
        "--format",
        "yaml",
    ]);
    assert_eq!(yaml(&yaml_out.stdout), objects);
}

#[test]
fn generated_worlds_give_valid_objects_and_forklifts_concerns() {
    let schemas = Schemas::load();
    for (vms, seed) in [(150, 1), (400, 42)] {
        let (records, world) = generated(vms, seed);
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("report.jsonl");
        let args = [
            "--network-map",
            "*=multus:vm-networks/default",
            "--storage-map",
            "*=standard",
            "--include-blocked",
            "--max-vms-per-plan",
            "20",
            "--report",
            report.to_str().unwrap(),
        ];
        let out = plan_gen_env(&args, Some(&records), &[]);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
        let objects = jsonl(&out.stdout);
        schemas.check_all(&objects);
        let planned: usize = plans(&objects)
            .iter()
            .map(|p| p["spec"]["vms"].as_array().unwrap().len())
            .sum();
        assert_eq!(planned, vms, "--include-blocked plans every VM");
        let raised: BTreeSet<(String, String)> = jsonl(&std::fs::read(&report).unwrap())
            .iter()
            .filter(|f| is_vm_concern(f["concern_id"].as_str().unwrap()))
            .map(|f| {
                (
                    f["vm_id"].as_str().unwrap().to_string(),
                    f["concern_id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let expected = world_concerns(&world);
        let missing: Vec<_> = expected.difference(&raised).collect();
        let extra: Vec<_> = raised.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "seed {seed}: not raised {missing:?}, not implied {extra:?}"
        );
    }
}

#[test]
fn a_vm_given_twice_exits_65_naming_both_lines() {
    let mut input = std::fs::read(fixture(RECORDS)).unwrap();
    let first_line: Vec<u8> = input.split(|b| *b == b'\n').next().unwrap().to_vec();
    input.extend_from_slice(&first_line);
    input.push(b'\n');
    let args = with_maps(&[]);
    let out = plan_gen_env(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        Some(&input),
        &[],
    );
    let line = assert_fails_one_line(&out, 65);
    assert!(
        line.contains("stdin:4") && line.contains("stdin:1") && line.contains("DuplicateVM"),
        "{line}"
    );
}

#[test]
fn an_access_mode_forklift_lacks_is_a_usage_error() {
    let line = assert_fails_one_line(
        &plan_gen(&["--storage-map", "*=ceph:Block:RWOP", RECORDS]),
        2,
    );
    assert!(line.contains("ReadWriteOncePod"), "{line}");
}

/// plan-gen's preflight on the demo's `records` (VMs left out: exit 1): its VMStorageNotSupported
/// findings.
fn storage_not_supported(records: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.jsonl");
    let out = plan_gen_env(
        &[
            "--map-file",
            DEMO_MAP,
            "--report",
            report_path.to_str().unwrap(),
        ],
        Some(records.as_bytes()),
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    jsonl(&std::fs::read(&report_path).unwrap())
        .into_iter()
        .filter(|f| f["concern_id"] == "VMStorageNotSupported")
        .collect()
}

fn vm_names(findings: &[Value]) -> BTreeSet<String> {
    findings
        .iter()
        .map(|f| f["vm_name"].as_str().unwrap().to_string())
        .collect()
}

/// VMStorageNotSupported: Forklift migrates direct LUN disks from oVirt engine 4.5.2.1 on. The
/// demo engine (4.5.6) is recent enough; the same records from a 4.4 engine flag exactly the VMs
/// with a LUN disk, counted from the world file.
#[test]
fn direct_lun_disks_on_an_old_engine_are_vm_storage_not_supported() {
    let world = pipeline::world();
    let engine_version = world["engine"]["version"].as_str().unwrap();
    let disks: BTreeMap<&str, &Value> = world["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["id"].as_str().unwrap(), d))
        .collect();
    let with_lun: BTreeSet<String> = world["vms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|vm| {
            vm["disk_attachments"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| disks[a["disk"].as_str().unwrap()]["storage_type"] == "lun")
        })
        .map(|vm| vm["name"].as_str().unwrap().to_string())
        .collect();
    assert!(!with_lun.is_empty(), "the demo world has a LUN VM");

    let records: Vec<Value> = jsonl(demo_owned());
    assert!(
        records
            .iter()
            .all(|r| r["engine_version"] == engine_version),
        "ovirt-dump writes the engine's version into every record"
    );
    let (_, report) = run_demo(&[]);
    assert!(
        report
            .iter()
            .all(|f| f["concern_id"] != "VMStorageNotSupported"),
        "engine {engine_version} migrates direct LUNs"
    );

    let old: String = records
        .into_iter()
        .map(|mut r| {
            r["engine_version"] = Value::from("4.4.10.7-1.el8");
            format!("{r}\n")
        })
        .collect();
    let flagged = storage_not_supported(&old);
    assert_eq!(vm_names(&flagged), with_lun);
    for f in &flagged {
        assert_eq!(f["category"], "Critical", "{f}");
        assert_eq!(f["left_out"], true, "{f}");
        assert!(
            f["assessment"].as_str().unwrap().contains("4.4.10.7-1.el8"),
            "{f}"
        );
    }

    // Records from before engine_version: the same VMs get a Warning (they are not left out).
    let unknown: String = jsonl(demo_owned())
        .into_iter()
        .map(|mut r| {
            r.as_object_mut().unwrap().remove("engine_version");
            format!("{r}\n")
        })
        .collect();
    let warned = storage_not_supported(&unknown);
    assert_eq!(vm_names(&warned), with_lun);
    for f in &warned {
        assert_eq!(f["category"], "Warning", "{f}");
        assert_eq!(f["left_out"], false, "{f}");
        assert!(
            f["assessment"]
                .as_str()
                .unwrap()
                .contains("no engine_version"),
            "{f}"
        );
    }
}

/// A concern on most VMs is grouped below the rare ones ("on N of M VMs", N and M counted from
/// the world file: the engine reports affinity `migratable` for every VM not pinned), and
/// `--hide ID` drops it from stderr but never from --report; an id no finding can have is exit 2.
#[test]
fn common_concerns_are_grouped_and_hide_drops_them_from_stderr_only() {
    let world = pipeline::world();
    let affinity = "ovirt.placement_policy.affinity_set";
    let (out, report) = run_demo(&[]);
    let err = stderr(&out);
    let total = jsonl(demo_owned()).len();
    let migratable = world_concerns(world)
        .iter()
        .filter(|(_, c)| c == affinity)
        .count();
    assert!(migratable * 2 > total, "{migratable} of {total}");
    let lines: Vec<&str> = err.lines().collect();
    let grouped = lines
        .iter()
        .position(|l| l.trim() == "on most VMs:")
        .unwrap_or_else(|| panic!("no group in {err}"));
    assert!(
        lines[grouped + 1].contains(&format!(
            "{affinity} (Placement policy affinity): on {migratable} of {total} VMs"
        )),
        "{err}"
    );
    // The rare concerns come first.
    let rare = lines
        .iter()
        .position(|l| l.contains("ovirt.usb.enabled"))
        .unwrap();
    assert!(rare < grouped, "{err}");
    let in_report = |r: &[Value]| r.iter().filter(|f| f["concern_id"] == affinity).count();
    assert_eq!(in_report(&report), migratable);

    let (out, report) = run_demo(&["--hide", affinity]);
    let err = stderr(&out);
    assert!(!err.contains(&format!("{affinity} (")), "{err}");
    assert!(
        err.contains(&format!(
            "({migratable} finding(s) of {affinity} hidden by --hide"
        )),
        "{err}"
    );
    assert_eq!(
        in_report(&report),
        migratable,
        "--report keeps hidden concerns"
    );

    let line = assert_fails_one_line(&plan_gen(&["--hide", "ovirt.no.such", RECORDS]), 2);
    assert!(
        line.contains("ovirt.no.such") && line.contains(affinity),
        "{line}"
    );
}
