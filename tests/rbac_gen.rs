//! rbac-gen as a user runs it: every object valid against the Kubernetes schemas, owners mapped to
//! subjects, every failure a one-line error with its documented exit code, output that diffs well.

mod manifests;

use manifests::{Schemas, fixture, jsonl, kinds, yaml};
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

const RBAC_GEN: &str = env!("CARGO_BIN_EXE_rbac-gen");
const RECORDS: &str = "tests/fixtures/manifests/records.jsonl";

fn rbac_gen(args: &[&str]) -> Output {
    rbac_gen_stdin(args, None)
}

fn rbac_gen_stdin(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(RBAC_GEN);
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run rbac-gen");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn objects(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "rbac-gen failed: {:?}\n{}",
        out.status,
        stderr(out)
    );
    jsonl(&out.stdout)
}

/// A failed run: the documented exit code and exactly one line on stderr, starting with the tool.
fn assert_fails(out: &Output, code: i32) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got: {err}");
    assert!(lines[0].starts_with("rbac-gen: "), "{err}");
    assert!(out.stdout.is_empty(), "nothing on stdout after an error");
    lines[0].to_string()
}

fn records() -> Vec<Value> {
    jsonl(&std::fs::read(fixture(RECORDS)).unwrap())
}

#[test]
fn every_object_matches_its_kubernetes_schema() {
    let schemas = Schemas::load();
    for extra in [&[][..], &["--namespaced-role"], &["--cluster-role", "edit"]] {
        let mut args = vec![
            "--strip-domain",
            "--quota",
            "tests/fixtures/manifests/quota.jsonl",
            RECORDS,
        ];
        args.extend_from_slice(extra);
        let objects = objects(&rbac_gen(&args));
        schemas.check_all(&objects);
        assert_eq!(kinds(&objects, "ResourceQuota").len(), 2);
        // alice's quota limits compute, dba's only storage.
        let ranges = kinds(&objects, "LimitRange");
        assert_eq!(ranges.len(), 1);
        assert_eq!(ranges[0]["metadata"]["namespace"], "alice");
    }
}

/// Kubernetes refuses a pod that leaves a resource a quota limits unset (quota admission):
/// Forklift v2.12.5's populator pods set requests and limits, but a LimitRange covers any pod that
/// sets none. It is written exactly where the quota limits requests or limits of cpu or memory.
#[test]
fn a_limit_range_exactly_where_a_quota_limits_compute() {
    let namespaces = [
        (
            "storage-only",
            r#"{"requests.storage": "10Gi", "count/pods": "5"}"#,
        ),
        ("requests-cpu", r#"{"requests.cpu": "2"}"#),
        ("bare-memory", r#"{"memory": "4Gi"}"#),
        (
            "limits-memory",
            r#"{"limits.memory": "8Gi", "requests.storage": "1Gi"}"#,
        ),
        ("no-quota", ""),
    ];
    let dir = tempfile::tempdir().unwrap();
    let quota_path = dir.path().join("quota.jsonl");
    let (mut records, mut quotas) = (String::new(), String::new());
    for (i, (namespace, hard)) in namespaces.iter().enumerate() {
        records.push_str(&format!(
            "{{\"schema\": 1, \"id\": \"vm-{i}\", \"name\": \"vm{i}\", \"target_namespace\": \"{namespace}\"}}\n"
        ));
        if !hard.is_empty() {
            quotas.push_str(&format!(
                "{{\"namespace\": \"{namespace}\", \"hard\": {hard}}}\n"
            ));
        }
    }
    std::fs::write(&quota_path, quotas).unwrap();
    let out = rbac_gen_stdin(
        &["--quota", quota_path.to_str().unwrap()],
        Some(records.as_bytes()),
    );
    let objects = objects(&out);
    Schemas::load().check_all(&objects);
    let ranges: std::collections::BTreeMap<String, Value> = kinds(&objects, "LimitRange")
        .into_iter()
        .map(|r| (r["metadata"]["namespace"].as_str().unwrap().to_string(), r))
        .collect();
    assert_eq!(
        ranges.keys().map(String::as_str).collect::<Vec<_>>(),
        ["bare-memory", "limits-memory", "requests-cpu"]
    );
    for (namespace, range) in &ranges {
        assert_eq!(range["metadata"]["name"], "liftkit-defaults");
        let item = &range["spec"]["limits"][0];
        assert_eq!(item["type"], "Container");
        // Forklift v2.12.5 pkg/settings/populator.go: the populator pod's requests and limits.
        assert_eq!(
            item["defaultRequest"],
            serde_json::json!({"cpu": "100m", "memory": "512Mi"})
        );
        let limits = item.get("default");
        if *namespace == "limits-memory" {
            assert_eq!(
                limits,
                Some(&serde_json::json!({"cpu": "1", "memory": "1Gi"}))
            );
        } else {
            assert!(
                limits.is_none(),
                "{namespace}: default limits only where limits are limited"
            );
        }
    }
    // Each LimitRange comes before the quota that needs it.
    let position = |kind: &str| objects.iter().position(|o| o["kind"] == kind).unwrap();
    assert!(position("LimitRange") < position("ResourceQuota"));
}

#[test]
fn one_namespace_per_target_namespace_with_openshift_annotations() {
    let objects = objects(&rbac_gen(&["--strip-domain", RECORDS]));
    let namespaces = kinds(&objects, "Namespace");
    let mut expected: Vec<String> = records()
        .iter()
        .map(|r| r["target_namespace"].as_str().unwrap().to_string())
        .collect();
    expected.sort();
    expected.dedup();
    let names: Vec<&str> = namespaces
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, expected);
    for ns in &namespaces {
        let name = ns["metadata"]["name"].as_str().unwrap();
        let vms = records()
            .iter()
            .filter(|r| r["target_namespace"] == name)
            .count();
        let annotations = &ns["metadata"]["annotations"];
        assert_eq!(
            ns["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "liftkit"
        );
        assert_eq!(annotations["openshift.io/display-name"], name);
        assert!(annotations["openshift.io/requester"].is_string());
        let description = annotations["openshift.io/description"].as_str().unwrap();
        assert!(description.contains(&format!("{vms} VM")), "{description}");
        for owner in records()
            .iter()
            .filter(|r| r["target_namespace"] == name)
            .flat_map(|r| r["owners"].as_array().unwrap().clone())
        {
            assert!(
                description.contains(owner["principal"].as_str().unwrap()),
                "{description}"
            );
        }
    }
}

#[test]
fn owners_become_user_and_group_subjects_bound_to_admin() {
    let objects = objects(&rbac_gen(&["--strip-domain", RECORDS]));
    let bindings = kinds(&objects, "RoleBinding");
    let mut subjects: Vec<(String, String, String)> = bindings
        .iter()
        .map(|b| {
            assert_eq!(b["roleRef"]["kind"], "ClusterRole");
            assert_eq!(b["roleRef"]["name"], "admin");
            let subject = &b["subjects"][0];
            assert_eq!(b["subjects"].as_array().unwrap().len(), 1);
            (
                b["metadata"]["namespace"].as_str().unwrap().to_string(),
                subject["kind"].as_str().unwrap().to_string(),
                subject["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    subjects.sort();
    // Expected from the records: users as User, groups as Group, names without their domain.
    let mut expected = Vec::new();
    for record in records() {
        for owner in record["owners"].as_array().unwrap() {
            let kind = if owner["kind"] == "user" {
                "User"
            } else {
                "Group"
            };
            let principal = owner["principal"].as_str().unwrap();
            let short = principal
                .split('@')
                .next()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap();
            expected.push((
                record["target_namespace"].as_str().unwrap().to_string(),
                kind.to_string(),
                short.to_string(),
            ));
        }
    }
    expected.sort();
    expected.dedup();
    assert_eq!(subjects, expected);
}

#[test]
fn namespaced_role_lets_owners_create_virtual_machines() {
    let objects = objects(&rbac_gen(&["--strip-domain", "--namespaced-role", RECORDS]));
    let roles = kinds(&objects, "Role");
    assert_eq!(roles.len(), kinds(&objects, "Namespace").len());
    for role in &roles {
        let grants = role["rules"].as_array().unwrap().iter().any(|rule| {
            let has = |field: &str, want: &str| {
                rule[field]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v == want || v == "*")
            };
            has("apiGroups", "kubevirt.io")
                && has("resources", "virtualmachines")
                && has("verbs", "create")
        });
        assert!(
            grants,
            "role does not allow creating virtualmachines.kubevirt.io: {role}"
        );
    }
    for binding in kinds(&objects, "RoleBinding") {
        assert_eq!(binding["roleRef"]["kind"], "Role");
        assert_eq!(binding["roleRef"]["name"], roles[0]["metadata"]["name"]);
    }
}

#[test]
fn user_map_names_subjects_and_strip_domain_fills_in() {
    let objects = objects(&rbac_gen(&[
        "--user-map",
        "tests/fixtures/manifests/users.csv",
        "--strip-domain",
        RECORDS,
    ]));
    let mut names: Vec<String> = kinds(&objects, "RoleBinding")
        .iter()
        .map(|b| {
            format!(
                "{}:{}",
                b["subjects"][0]["kind"].as_str().unwrap(),
                b["subjects"][0]["name"].as_str().unwrap()
            )
        })
        .collect();
    names.sort();
    assert_eq!(names, ["Group:ocp-dba", "User:alice.k", "User:bob"]);
    Schemas::load().check_all(&objects);
}

#[test]
fn unmapped_owners_are_all_listed_with_exit_78() {
    let out = rbac_gen(&["--user-map", "tests/fixtures/manifests/users.csv", RECORDS]);
    let line = assert_fails(&out, 78);
    assert!(line.contains("bob@internal-authz"), "{line}");
    assert!(!line.contains("alice@example.com"), "{line}");
    let out = rbac_gen(&[RECORDS]);
    let line = assert_fails(&out, 78);
    for principal in [
        "alice@example.com",
        "bob@internal-authz",
        "example.com/Groups/dba",
    ] {
        assert!(line.contains(principal), "{line}");
    }
}

#[test]
fn skip_unmapped_leaves_them_out_with_exit_1() {
    let out = rbac_gen(&[
        "--user-map",
        "tests/fixtures/manifests/users.csv",
        "--skip-unmapped",
        RECORDS,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("bob@internal-authz"));
    let objects = jsonl(&out.stdout);
    assert!(
        kinds(&objects, "RoleBinding")
            .iter()
            .all(|b| b["subjects"][0]["name"] != "bob")
    );
    assert_eq!(kinds(&objects, "RoleBinding").len(), 2);
}

#[test]
fn a_bad_user_map_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    std::fs::write(&path, "alice@example.com,alice\nbob@internal-authz\n").unwrap();
    let line = assert_fails(
        &rbac_gen(&["--user-map", path.to_str().unwrap(), RECORDS]),
        78,
    );
    assert!(line.contains("users.csv:2:"), "{line}");
}

#[test]
fn a_malformed_record_exits_65_naming_the_line() {
    let mut input = std::fs::read(fixture(RECORDS)).unwrap();
    input.extend_from_slice(b"{\"schema\": 1, \"id\": \n");
    let line = assert_fails(&rbac_gen_stdin(&["--strip-domain"], Some(&input)), 65);
    assert!(line.starts_with("rbac-gen: stdin:4: "), "{line}");
    let line = assert_fails(
        &rbac_gen_stdin(&["--strip-domain"], Some(b"{\"kind\": \"Namespace\"}\n")),
        65,
    );
    assert!(line.contains("stdin:1: expected a VM record"), "{line}");
}

#[test]
fn output_is_deterministic_and_independent_of_input_order() {
    let first = rbac_gen(&["--strip-domain", RECORDS]);
    let second = rbac_gen(&["--strip-domain", RECORDS]);
    assert!(first.status.success());
    assert_eq!(first.stdout, second.stdout);
    let mut lines: Vec<String> = std::fs::read_to_string(fixture(RECORDS))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    lines.reverse();
    let reversed = rbac_gen_stdin(
        &["--strip-domain"],
        Some(format!("{}\n", lines.join("\n")).as_bytes()),
    );
    assert_eq!(first.stdout, reversed.stdout);
}

#[test]
fn yaml_output_reads_back_as_the_same_objects() {
    let args = [
        "--strip-domain",
        "--namespaced-role",
        "--quota",
        "tests/fixtures/manifests/quota.jsonl",
        RECORDS,
    ];
    let json = objects(&rbac_gen(&args));
    let mut yaml_args = args.to_vec();
    yaml_args.extend(["--format", "yaml"]);
    let out = rbac_gen(&yaml_args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(yaml(&out.stdout), json);
}

#[test]
fn output_file_is_written_atomically_with_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rbac.jsonl");
    let out = rbac_gen(&["--strip-domain", "-o", path.to_str().unwrap(), RECORDS]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert_eq!(
        std::fs::read(&path).unwrap(),
        rbac_gen(&["--strip-domain", RECORDS]).stdout
    );
    // A failed run keeps the last good file.
    let out = rbac_gen(&["-o", path.to_str().unwrap(), RECORDS]);
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        rbac_gen(&["--strip-domain", RECORDS]).stdout
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn the_schemas_catch_what_an_api_server_would_reject() {
    let schemas = Schemas::load();
    let objects = objects(&rbac_gen(&[
        "--strip-domain",
        "--quota",
        "tests/fixtures/manifests/quota.jsonl",
        RECORDS,
    ]));
    let mut binding = kinds(&objects, "RoleBinding")[0].clone();
    binding.as_object_mut().unwrap().remove("roleRef");
    assert!(
        !schemas.errors(&binding).is_empty(),
        "a binding without roleRef accepted"
    );
    let mut namespace = kinds(&objects, "Namespace")[0].clone();
    namespace["metadata"]["annotations"]["n"] = Value::from(3);
    assert!(
        !schemas.errors(&namespace).is_empty(),
        "a numeric annotation accepted"
    );
    let mut quota = kinds(&objects, "ResourceQuota")[0].clone();
    quota["spec"]["hardd"] = quota["spec"]["hard"].take();
    assert!(
        !schemas.errors(&quota).is_empty(),
        "an unknown field accepted"
    );
}

// ---- The demo world and a generated world, through the real pipeline ----

mod pipeline;
mod support;

/// capacity-calc's quota records for VM records.
fn quota_records(owned: &[u8], dir: &std::path::Path) -> std::path::PathBuf {
    let out = pipeline::run(
        env!("CARGO_BIN_EXE_capacity-calc"),
        &[
            "--quota",
            "--headroom",
            "20%",
            "--storage-map",
            "*=trident-nfs",
        ],
        owned,
    );
    assert!(
        out.status.success(),
        "capacity-calc: {}",
        pipeline::stderr(&out)
    );
    let path = dir.join("quota.jsonl");
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

#[test]
fn demo_world_namespaces_bindings_and_quotas() {
    let owned = pipeline::owned(pipeline::demo_records());
    let dir = tempfile::tempdir().unwrap();
    let quota = quota_records(&owned, dir.path());
    let out = rbac_gen_stdin(
        &["--strip-domain", "--quota", quota.to_str().unwrap()],
        Some(&owned),
    );
    let objects = objects(&out);
    Schemas::load().check_all(&objects);

    // Namespaces and subjects straight from the world file: owners by role on the VM itself.
    let world_namespaces = pipeline::world_namespaces();
    let world_owners = pipeline::world_owners();
    let mut expected: std::collections::BTreeMap<
        String,
        std::collections::BTreeSet<(String, String)>,
    > = Default::default();
    for (vm, namespace) in &world_namespaces {
        let subjects = expected.entry(namespace.clone()).or_default();
        for (kind, _, short) in &world_owners[vm] {
            subjects.insert((
                if kind == "user" { "User" } else { "Group" }.to_string(),
                short.clone(),
            ));
        }
    }
    let mut got: std::collections::BTreeMap<String, std::collections::BTreeSet<(String, String)>> =
        Default::default();
    for ns in kinds(&objects, "Namespace") {
        got.insert(
            ns["metadata"]["name"].as_str().unwrap().to_string(),
            Default::default(),
        );
    }
    for binding in kinds(&objects, "RoleBinding") {
        let subject = &binding["subjects"][0];
        got.get_mut(binding["metadata"]["namespace"].as_str().unwrap())
            .expect("binding in a written namespace")
            .insert((
                subject["kind"].as_str().unwrap().to_string(),
                subject["name"].as_str().unwrap().to_string(),
            ));
    }
    assert_eq!(got, expected);
    // One quota per namespace, as capacity-calc computed it.
    let quotas = kinds(&objects, "ResourceQuota");
    assert_eq!(quotas.len(), expected.len());
    for record in jsonl(&std::fs::read(&quota).unwrap()) {
        let q = quotas
            .iter()
            .find(|q| q["metadata"]["namespace"] == record["namespace"])
            .unwrap();
        assert_eq!(q["spec"]["hard"], record["hard"]);
        // capacity-calc's quotas limit requests.cpu and requests.memory: a LimitRange with the
        // record's defaults next to each.
        let range = kinds(&objects, "LimitRange")
            .into_iter()
            .find(|r| r["metadata"]["namespace"] == record["namespace"])
            .expect("a LimitRange next to a compute quota");
        assert_eq!(
            range["spec"]["limits"][0]["defaultRequest"],
            record["limit_range"]["default_request"]
        );
    }
    // The same in YAML.
    let out = rbac_gen_stdin(
        &[
            "--strip-domain",
            "--quota",
            quota.to_str().unwrap(),
            "--format",
            "yaml",
        ],
        Some(&owned),
    );
    assert_eq!(yaml(&out.stdout), objects);
}

#[test]
fn a_generated_world_gives_valid_objects() {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world.json");
    let out = Command::new(env!("CARGO_BIN_EXE_ovirt-sim"))
        .args([
            "--generate",
            "300",
            "--seed",
            "11",
            "--write-world",
            world.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sim = support::Sim::start(&["--world", world.to_str().unwrap(), "--tls"]);
    let records = dir.path().join("records.jsonl");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ovirt-dump"));
    cmd.args([
        "--url",
        &sim.url,
        "--user",
        &sim.user,
        "-o",
        records.to_str().unwrap(),
    ])
    .env("OVIRT_PASSWORD", &sim.password);
    if let Some(ca) = &sim.ca_file {
        cmd.arg("--ca-file").arg(ca);
    }
    assert!(cmd.stdin(Stdio::null()).output().unwrap().status.success());
    drop(sim);
    let owned = pipeline::owned(&records);
    let quota = quota_records(&owned, dir.path());
    let schemas = Schemas::load();
    for extra in [&[][..], &["--namespaced-role"]] {
        let mut args = vec!["--strip-domain", "--quota", quota.to_str().unwrap()];
        args.extend_from_slice(extra);
        let objects = objects(&rbac_gen_stdin(&args, Some(&owned)));
        schemas.check_all(&objects);
        assert_eq!(
            kinds(&objects, "Namespace").len(),
            kinds(&objects, "ResourceQuota").len()
        );
    }
}

mod yaml_emitter {
    //! common::k8s writes YAML with its own small emitter: any JSON value must read back the same
    //! through an independent parser.
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e12f64..1e12).prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[a-zA-Z0-9 ._:/@#=+~*&!%'\"-]{0,12}".prop_map(Value::String),
            prop_oneof![
                Just("yes"),
                Just("No"),
                Just("null"),
                Just("~"),
                Just("0x1F"),
                Just("1e3"),
                Just("0o17"),
                Just("2001-12-14"),
                Just("1_000"),
                Just(".inf"),
                Just("- a"),
                Just("? a"),
                Just("a: b"),
                Just(" lead"),
                Just("trail "),
                Just("\u{2028}"),
                Just("\u{85}"),
                Just("\u{feff}x"),
                Just("<<"),
            ]
            .prop_map(|s| Value::String(s.to_string())),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((any::<String>(), inner), 0..5).prop_map(|pairs| {
                    Value::Object(pairs.into_iter().collect::<Map<String, Value>>())
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn any_json_value_reads_back_the_same(value in value()) {
            let text = common::k8s::to_yaml_document(&value);
            let back: Value = serde_norway::from_str(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(&back, &value, "{}", text);
        }
    }
}
