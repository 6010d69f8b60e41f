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
        ("mac-a", "MacConflicts"),
        ("mac-b", "MacConflicts"),
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
        "--output",
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
    let out = run_maps(&[RECORDS, BLOCKERS, "--warm", "--output", "yaml"]);
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
