//! owner-group on the demo world (owners and namespaces checked against the world file), on small
//! fixtures (pass-through, options, errors), and property tests of the namespace naming rule.

mod pipeline;
mod support;

use common::record::OwnerKind;
use owner_group::{OwnerSetKey, assign_names};
use pipeline::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};

const OG: &str = env!("CARGO_BIN_EXE_owner-group");

#[test]
fn demo_world_owners_and_namespaces_match_the_world_file() {
    let out = run(OG, &[demo_records().to_str().unwrap()], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let expected_owners = world_owners();
    let expected_ns = world_namespaces();
    let records = lines(&out);
    assert_eq!(records.len(), world()["vms"].as_array().unwrap().len());
    for r in &records {
        let id = r["id"].as_str().unwrap();
        let got: Vec<(String, String, String)> = r["owners"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["kind"].as_str().unwrap().into(),
                    o["principal"].as_str().unwrap().into(),
                    o["name"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(got, expected_owners[id], "owners of {}", r["name"]);
        assert_eq!(
            r["target_namespace"],
            expected_ns[id].as_str(),
            "namespace of {}",
            r["name"]
        );
        // Pass-through: everything ovirt-dump wrote is still there.
        assert!(r["disks"].is_array() && r["permissions"].is_array() && r["schema"] == 1);
    }
    let unowned = expected_ns.values().filter(|n| *n == "unowned").count();
    assert!(
        stderr(&out).contains(&format!("{unowned} VMs without owners")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn demo_world_summary_has_one_record_per_namespace() {
    let out = run(OG, &["--summary", demo_records().to_str().unwrap()], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (vm, ns) in world_namespaces() {
        expected.entry(ns).or_default().insert(vm);
    }
    let got: BTreeMap<String, BTreeSet<String>> = lines(&out)
        .iter()
        .map(|s| {
            assert_eq!(
                s["vm_count"].as_u64().unwrap() as usize,
                s["vm_ids"].as_array().unwrap().len()
            );
            (
                s["namespace"].as_str().unwrap().to_string(),
                s["vm_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn fixture_owners_exclusions_unowned_and_pass_through() {
    let small = fixture("small.jsonl");
    let out = run(OG, &[small.to_str().unwrap()], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = lines(&out);
    assert_eq!(r[0]["target_namespace"], "alice-ns");
    assert_eq!(
        r[0]["future_field"],
        serde_json::json!({"kept": [1, 2]}),
        "unknown fields pass through"
    );
    assert_eq!(
        r[1]["target_namespace"], "bob-dba-ns",
        "a user and a group together"
    );
    assert_eq!(
        r[2]["target_namespace"], "unowned",
        "inherited permissions never count"
    );
    assert_eq!(r[2]["owners"], serde_json::json!([]));

    let out = run(
        OG,
        &[
            "--exclude",
            "bob",
            "--unowned",
            "drop",
            "--name-template",
            "vm-{owners}",
            small.to_str().unwrap(),
        ],
        b"",
    );
    let r = lines(&out);
    assert_eq!(r.len(), 2, "{}", stderr(&out));
    assert_eq!(r[0]["target_namespace"], "vm-alice");
    assert_eq!(r[1]["target_namespace"], "vm-dba");
    assert!(
        stderr(&out).contains("1 VMs without owners (dropped)"),
        "{}",
        stderr(&out)
    );

    let out = run(
        OG,
        &["--owner-role", "UserRole", "-"],
        &std::fs::read(&small).unwrap(),
    );
    let r = lines(&out);
    assert_eq!(r[0]["target_namespace"], "unowned");
    assert_eq!(
        r[1]["target_namespace"], "dba-ns",
        "stdin is read twice through a spool file"
    );
}

#[test]
fn errors_are_one_line_with_exit_codes_and_no_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.jsonl");
    let o = out_file.to_str().unwrap();
    let good = std::fs::read_to_string(fixture("small.jsonl")).unwrap();
    let first = good.lines().next().unwrap();
    let bad = format!("{first}\n{{\"schema\": 1,\n");
    assert_fails(
        &run(OG, &["-o", o], bad.as_bytes()),
        65,
        "owner-group: stdin:2: not valid JSON",
    );
    let not_vm = format!("{first}\n{{\"kind\":\"Namespace\"}}\n");
    assert_fails(
        &run(OG, &["-o", o], not_vm.as_bytes()),
        65,
        "owner-group: stdin:2: expected a VM record",
    );
    assert!(!out_file.exists(), "nothing half-written");
    assert_fails(
        &run(OG, &["--name-template", "ns"], b""),
        2,
        "owner-group: --name-template \"ns\": must contain {owners}",
    );
    assert_fails(
        &run(OG, &["--unowned", "Bad_Name"], b""),
        2,
        "owner-group: --unowned",
    );
    assert_fails(
        &run(OG, &["/nonexistent/x.jsonl"], b""),
        66,
        "owner-group: /nonexistent/x.jsonl",
    );
}

fn key(owners: &[(bool, &str)]) -> OwnerSetKey {
    let mut k: OwnerSetKey = owners
        .iter()
        .map(|(g, p)| {
            (
                if *g {
                    OwnerKind::Group
                } else {
                    OwnerKind::User
                },
                p.to_string(),
            )
        })
        .collect();
    k.sort();
    k.dedup();
    k
}

fn sets_of(keys: &[OwnerSetKey]) -> BTreeMap<OwnerSetKey, Vec<String>> {
    keys.iter()
        .map(|k| {
            (
                k.clone(),
                k.iter()
                    .map(|(_, p)| common::names::short_principal(p).to_string())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn collisions_get_hash_suffixes_and_plain_names_stay_plain() {
    let keys = vec![
        key(&[
            (false, "alice@example.com-authz"),
            (false, "bob@example.com-authz"),
        ]),
        key(&[(false, "alice@internal")]),
        key(&[(false, "alice@example.com-authz")]),
        key(&[(false, "a-b@x")]),
        key(&[(false, "a@x"), (false, "b@x")]),
        key(&[(false, "Carol@x")]),
        key(&[(false, "unowned@x")]),
    ];
    let names = assign_names(&sets_of(&keys), "{owners}-ns", Some("unowned")).unwrap();
    assert_eq!(names[&keys[0]], "alice-bob-ns");
    assert!(names[&keys[1]].starts_with("alice-ns-") && names[&keys[2]].starts_with("alice-ns-"));
    assert_ne!(names[&keys[1]], names[&keys[2]]);
    assert!(names[&keys[3]].starts_with("a-b-ns-") && names[&keys[4]].starts_with("a-b-ns-"));
    assert!(
        names[&keys[5]].starts_with("carol-ns-"),
        "sanitised names always get the hash"
    );
    assert_eq!(names[&keys[6]], "unowned-ns");
    let names = assign_names(&sets_of(&keys[6..]), "{owners}", Some("unowned")).unwrap();
    assert!(
        names[&keys[6]].starts_with("unowned-"),
        "never the unowned namespace"
    );
}

fn owner_strategy() -> impl Strategy<Value = (bool, String)> {
    (
        any::<bool>(),
        "[a-zA-Z][a-zA-Z0-9._-]{0,40}",
        prop_oneof!["@example.com-authz", "@internal", ""],
    )
        .prop_map(|(g, n, d)| {
            if g {
                (true, format!("example.com/Groups/{n}"))
            } else {
                (false, format!("{n}{d}"))
            }
        })
}

/// A namespace name Kubernetes accepts: a DNS-1123 label, at most 63 characters of
/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?` (k8s.io/apimachinery pkg/util/validation/validation.go,
/// dns1123LabelFmt and DNS1123LabelMaxLength), written out here rather than taken from common.
fn is_dns1123_label(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=63).contains(&name.len())
        && name.chars().all(|c| alnum(c) || c == '-')
        && name.starts_with(alnum)
        && name.ends_with(alnum)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn namespace_names_are_valid_unique_and_order_independent(
        raw in proptest::collection::vec(proptest::collection::vec(owner_strategy(), 1..4), 1..25),
        shuffle_seed in any::<u64>(),
    ) {
        let keys: Vec<OwnerSetKey> = raw
            .iter()
            .map(|set| key(&set.iter().map(|(g, p)| (*g, p.as_str())).collect::<Vec<_>>()))
            .collect();
        let names = assign_names(&sets_of(&keys), "{owners}-ns", Some("unowned")).unwrap();
        let mut seen: HashMap<&String, &OwnerSetKey> = HashMap::new();
        for (k, name) in &names {
            prop_assert!(is_dns1123_label(name), "{name}");
            prop_assert!(name != "unowned");
            if let Some(other) = seen.insert(name, k) {
                prop_assert!(false, "{name} for {k:?} and {other:?}");
            }
        }
        // Another order of the same owner sets gives the same names.
        let mut shuffled = keys.clone();
        let n = shuffled.len();
        for i in 0..n {
            let j = ((shuffle_seed.wrapping_mul(i as u64 + 7)) % n as u64) as usize;
            shuffled.swap(i, j);
        }
        let again = assign_names(&sets_of(&shuffled), "{owners}-ns", Some("unowned")).unwrap();
        prop_assert_eq!(names, again);
    }
}

#[test]
fn demo_world_names_do_not_depend_on_record_order() {
    let text = std::fs::read_to_string(demo_records()).unwrap();
    let by_id = |input: &str| -> BTreeMap<String, String> {
        let out = run(OG, &[], input.as_bytes());
        lines(&out)
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().into(),
                    r["target_namespace"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let mut reversed: Vec<&str> = text.lines().collect();
    reversed.reverse();
    assert_eq!(by_id(&text), by_id(&(reversed.join("\n") + "\n")));
}

#[test]
fn records_pass_through_byte_for_byte_and_a_second_run_replaces_its_fields() {
    let input = std::fs::read_to_string(demo_records()).unwrap();
    let first = run(OG, &[], input.as_bytes());
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let first_text = String::from_utf8(first.stdout.clone()).unwrap();
    let originals: Vec<&str> = input.lines().filter(|l| !l.trim().is_empty()).collect();
    let annotated: Vec<&str> = first_text.lines().collect();
    assert_eq!(annotated.len(), originals.len());
    for (before, after) in originals.iter().zip(&annotated) {
        // Everything the record had comes first, unchanged, then the two added fields.
        let body = before.trim().strip_suffix('}').unwrap();
        assert!(
            after.starts_with(body) && after[body.len()..].starts_with(",\"owners\":"),
            "record not passed through as it came: {}",
            &before[..80]
        );
    }

    // Run again on its own output (say, with another template): the two fields are replaced in
    // place, never duplicated, and every other field is unchanged.
    let second = run(
        OG,
        &["--name-template", "p-{owners}"],
        first_text.as_bytes(),
    );
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    let second_text = String::from_utf8(second.stdout.clone()).unwrap();
    for (a, b) in first_text.lines().zip(second_text.lines()) {
        assert_eq!(
            b.matches("\"owners\":").count(),
            1,
            "owners duplicated: {b}"
        );
        assert_eq!(b.matches("\"target_namespace\":").count(), 1);
        let mut a: serde_json::Value = serde_json::from_str(a).unwrap();
        let mut b: serde_json::Value = serde_json::from_str(b).unwrap();
        let ns_a = a["target_namespace"].as_str().unwrap().to_string();
        let ns_b = b["target_namespace"].as_str().unwrap().to_string();
        if ns_a == "unowned" {
            assert_eq!(ns_b, "unowned");
        } else {
            assert_eq!(ns_b, format!("p-{}", ns_a.strip_suffix("-ns").unwrap()));
        }
        a.as_object_mut().unwrap().remove("target_namespace");
        b.as_object_mut().unwrap().remove("target_namespace");
        assert_eq!(a, b);
    }
}

/// The first pass decodes records on several threads (common::parallel): the output must be the
/// same, byte for byte, whatever their number.
#[test]
fn output_does_not_depend_on_the_number_of_threads() {
    let input = std::fs::read_to_string(demo_records()).unwrap().repeat(50);
    let mut outputs = Vec::new();
    for threads in ["1", "3"] {
        let out = run_with_env(OG, &[], input.as_bytes(), &[("LIFTKIT_THREADS", threads)]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        outputs.push(out.stdout);
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(
        outputs[0].iter().filter(|b| **b == b'\n').count(),
        50 * world()["vms"].as_array().unwrap().len()
    );
}

/// owner-group reads its input twice: an input that can be read only once (a FIFO, bash's
/// `<(...)`) is copied first, and gives what the file gives.
#[test]
fn inputs_that_read_once_give_what_the_file_gives() {
    let records = demo_records();
    let from_file = run(OG, &[records.to_str().unwrap()], b"");
    assert_eq!(code(&from_file), 0, "{}", stderr(&from_file));
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("records.fifo");
    let script = r#"mkfifo "$3" && { cat "$2" > "$3" & } && "$1" "$3" && "$1" <(cat "$2")"#;
    let out = std::process::Command::new("bash")
        .args(["-c", script, "bash", OG])
        .arg(records)
        .arg(&fifo)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        out.stdout,
        [from_file.stdout.clone(), from_file.stdout].concat()
    );
}

/// The longest line the tools read in production: 256 MiB (common::parallel's MAX_LINE_BYTES;
/// its unit tests lower it to 4 MiB). Runs owner-group on `first`, `pad` bytes of `a` and `end`,
/// streamed to its stdin from a small buffer so that this test never holds the line; returns the
/// exit code, stdout's lines and bytes (counted, not kept), and stderr.
fn owner_group_on_a_long_line(first: &[u8], pad: usize, end: &[u8]) -> (i32, usize, u64, String) {
    use std::io::{BufRead, Read, Write};
    let mut child = std::process::Command::new(OG)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (first, end) = (first.to_vec(), end.to_vec());
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'a'; 1 << 20];
        let mut write = |bytes: &[u8]| match stdin.write_all(bytes) {
            Ok(()) => true,
            // Refusing the line, the tool stops reading: a closed pipe is its right.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => false,
            Err(e) => panic!("owner-group stdin: {e}"),
        };
        let (mut open, mut left) = (write(&first), pad);
        while open && left > 0 {
            let n = left.min(chunk.len());
            open = write(&chunk[..n]);
            left -= n;
        }
        if open {
            write(&end);
        }
    });
    let mut err_pipe = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err_pipe.read_to_string(&mut text);
        text
    });
    let (mut lines, mut bytes) = (0, 0);
    let mut out = std::io::BufReader::with_capacity(1 << 20, child.stdout.take().unwrap());
    loop {
        let buf = out.fill_buf().unwrap();
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        lines += buf.iter().filter(|b| **b == b'\n').count();
        bytes += n as u64;
        out.consume(n);
    }
    writer.join().unwrap();
    let status = child.wait().unwrap();
    (
        status.code().unwrap_or(-1),
        lines,
        bytes,
        err_reader.join().unwrap(),
    )
}

#[test]
fn a_line_of_256_mib_is_read_and_a_longer_one_refused() {
    const MAX_LINE_BYTES: usize = 256 << 20;
    let text = std::fs::read_to_string(fixture("small.jsonl")).unwrap();
    let record = text.lines().next().unwrap();
    // The record with a field it does not know, a long string (passed through, as every unknown
    // field is), making the line exactly the limit long, newline not counted.
    let first = format!("{},\"padding\":\"", record.strip_suffix('}').unwrap());
    let end = b"\"}\n";
    let pad = MAX_LINE_BYTES - first.len() - (end.len() - 1);
    let (code, lines, bytes, err) = owner_group_on_a_long_line(first.as_bytes(), pad, end);
    assert_eq!((code, lines), (0, 1), "{err}");
    assert!(bytes > MAX_LINE_BYTES as u64, "{bytes} bytes out");
    // Past the limit by more than one read (64 KiB) with no newline: exit 65, naming the line.
    let (code, lines, _, err) =
        owner_group_on_a_long_line(first.as_bytes(), MAX_LINE_BYTES + (128 << 10), end);
    assert_eq!((code, lines), (65, 0), "{err}");
    assert_eq!(err, "owner-group: stdin:1: line is longer than 256 MiB\n");
}
