//! vm-select on the demo world (activity computed from the world file) and on fixtures (criteria,
//! decisions, byte-for-byte output, errors).

mod pipeline;
mod support;

use pipeline::*;
use serde_json::Value;
use std::collections::BTreeSet;

const VS: &str = env!("CARGO_BIN_EXE_vm-select");
const NOW: &str = "2025-06-01T00:00:00Z";
const IN_USE: &[&str] = &[
    "up",
    "powering_up",
    "powering_down",
    "paused",
    "migrating",
    "reboot_in_progress",
    "restoring_state",
    "saving_state",
    "wait_for_launch",
    "not_responding",
    "suspended",
];

/// Days since 1970 of an RFC 3339 UTC time, parsed by hand so the expectation shares no code.
fn epoch_seconds(t: &str) -> i64 {
    let (date, time) = t.split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let hms: Vec<i64> = time
        .trim_end_matches('Z')
        .split(':')
        .map(|x| x.split('.').next().unwrap().parse().unwrap())
        .collect();
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let days = 365 * y + y / 4 - y / 100 + y / 400 + (153 * m + 2) / 5 + d[2] - 1 - 719_468;
    days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2]
}

fn ids(out: &std::process::Output) -> BTreeSet<String> {
    lines(out)
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn demo_world_activity_matches_the_world_file_and_lines_pass_unchanged() {
    let records = demo_records();
    let now = epoch_seconds(NOW);
    let mut active = BTreeSet::new();
    let mut all = BTreeSet::new();
    for vm in world()["vms"].as_array().unwrap() {
        let id = vm["id"].as_str().unwrap().to_string();
        all.insert(id.clone());
        let status = vm["status"].as_str().unwrap();
        let stamp = vm["stop_time"].as_str().or(vm["creation_time"].as_str());
        if IN_USE.contains(&status) || stamp.is_some_and(|t| now - epoch_seconds(t) < 90 * 86_400) {
            active.insert(id);
        }
    }
    let out = run(
        VS,
        &[
            "--active-within",
            "90d",
            "--now",
            NOW,
            records.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(ids(&out), active);
    assert!(
        !active.is_empty() && active.len() < all.len(),
        "the demo world has both kinds"
    );
    let summary = format!("vm-select: {} read, {} selected", all.len(), active.len());
    assert!(stderr(&out).starts_with(&summary), "{}", stderr(&out));

    let inactive = run(
        VS,
        &[
            "--active-within",
            "90d",
            "--inactive",
            "--now",
            NOW,
            records.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(ids(&inactive), all.difference(&active).cloned().collect());

    // Byte for byte: every selected line is a line of the input.
    let input: BTreeSet<String> = std::fs::read_to_string(records)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        assert!(input.contains(line));
    }
}

#[test]
fn demo_world_status_data_center_and_owner() {
    let records = demo_records();
    let clusters = by_id("clusters");
    let dcs = by_id("data_centers");
    let vms = world()["vms"].as_array().unwrap();
    let up: BTreeSet<String> = vms
        .iter()
        .filter(|v| v["status"] == "up")
        .map(|v| v["id"].as_str().unwrap().into())
        .collect();
    let out = run(VS, &["--status", "up", records.to_str().unwrap()], b"");
    assert_eq!(ids(&out), up);
    let rdu_up: BTreeSet<String> = vms
        .iter()
        .filter(|v| {
            v["status"] == "up"
                && dcs[clusters[v["cluster"].as_str().unwrap()]["data_center"]
                    .as_str()
                    .unwrap()]["name"]
                    == "RDU"
        })
        .map(|v| v["id"].as_str().unwrap().into())
        .collect();
    let out = run(
        VS,
        &[
            "--status",
            "up",
            "--data-center",
            "RDU",
            records.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(ids(&out), rdu_up);
    // --owner: a permission of any role on the VM itself naming alice (a user's principal, user
    // name or e-mail; a group's name or its last part), straight from the world's permissions.
    let users = by_id("users");
    let groups = by_id("groups");
    let names_alice = |p: &Value| {
        let user = p["user"].as_str().is_some_and(|u| {
            ["principal", "user_name", "email"]
                .iter()
                .any(|k| users[u][*k] == "alice")
        });
        let group = p["group"].as_str().is_some_and(|g| {
            let name = groups[g]["name"].as_str().unwrap();
            name == "alice" || name.rsplit('/').next() == Some("alice")
        });
        user || group
    };
    let alice: BTreeSet<String> = world()["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["object"]["type"] == "vm" && names_alice(p))
        .map(|p| p["object"]["id"].as_str().unwrap().into())
        .collect();
    assert!(!alice.is_empty());
    let out = run(VS, &["--owner", "alice", records.to_str().unwrap()], b"");
    assert_eq!(ids(&out), alice);
}

#[test]
fn decisions_skip_always_drops_and_keep_always_selects() {
    let dir = tempfile::tempdir().unwrap();
    let decisions = dir.path().join("decisions.csv");
    std::fs::write(
        &decisions,
        "vm,owner,decision\nold-test,alice,keep\nweb01,alice,SKIP\n",
    )
    .unwrap();
    let small = fixture("small.jsonl");
    let args = [
        "--active-within",
        "90d",
        "--now",
        "2025-01-15T00:00:00Z",
        "--decisions",
        decisions.to_str().unwrap(),
        "--explain",
    ];
    let mut all = args.to_vec();
    all.push(small.to_str().unwrap());
    let out = run(VS, &all, b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let names: Vec<String> = lines(&out)
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["db01", "old-test"]);
    let err = stderr(&out);
    // --explain is a table: a header, then one row per dropped VM (vm, id, line, criterion, reason).
    assert!(
        err.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()[..]
                == ["VM", "ID", "LINE", "CRITERION", "REASON"]),
        "{err}"
    );
    assert!(
        err.lines().any(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.len() > 4
                && cells[..2] == ["web01", "11111111-0000-0000-0000-000000000001"]
                && cells[2].contains(':')
                && cells[3] == "decision"
        }),
        "{err}"
    );
    assert!(
        err.contains("3 read, 2 selected (1 kept by decision), 1 dropped (1 decision)"),
        "{err}"
    );
    // The output is the input line itself, unknown fields and key order included.
    let first_in = std::fs::read_to_string(&small)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
        first_in
    );
}

#[test]
fn names_tags_clusters_and_owners() {
    let small = fixture("small.jsonl");
    let s = small.to_str().unwrap();
    let names = |args: &[&str]| -> Vec<String> {
        let mut all = args.to_vec();
        all.push(s);
        lines(&run(VS, &all, b""))
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&["--name", "*01"]), ["web01", "db01"]);
    assert_eq!(names(&["--name-regex", "^old-"]), ["old-test"]);
    assert_eq!(
        names(&["--name", "web*", "--name-regex", "^db"]),
        ["web01", "db01"]
    );
    assert_eq!(names(&["--tag", "web"]), ["web01"]);
    assert_eq!(names(&["--cluster", "prod", "--status", "down"]), ["db01"]);
    assert_eq!(
        names(&["--owner", "alice"]),
        ["web01"],
        "inherited permissions do not count"
    );
    assert_eq!(names(&["--owner", "dba"]), ["db01"]);
    assert_eq!(names(&["--owner", "bob@example.com-authz"]), ["db01"]);
}

#[test]
fn errors_are_one_line_with_exit_codes_and_no_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("sel.jsonl");
    let o = out_file.to_str().unwrap();
    assert_fails(
        &run(VS, &["--active-within", "90x"], b""),
        2,
        "vm-select: --active-within \"90x\": unknown unit",
    );
    assert_fails(
        &run(VS, &["--active-within", "9d", "--now", "yesterday"], b""),
        2,
        "vm-select: --now \"yesterday\"",
    );
    assert_fails(
        &run(VS, &["--name-regex", "(unclosed"], b""),
        2,
        "vm-select: --name-regex \"(unclosed\"",
    );
    let bad_csv = dir.path().join("d.csv");
    std::fs::write(&bad_csv, "vm,decision\nweb01,maybe\n").unwrap();
    assert_fails(
        &run(VS, &["--decisions", bad_csv.to_str().unwrap()], b""),
        65,
        &format!("vm-select: {}:2: decision \"maybe\"", bad_csv.display()),
    );
    let good = std::fs::read_to_string(fixture("small.jsonl")).unwrap();
    let bad = format!(
        "{}\n{{\"schema\":1,\"id\":\"x\"\n",
        good.lines().next().unwrap()
    );
    assert_fails(
        &run(VS, &["-o", o], bad.as_bytes()),
        65,
        "vm-select: stdin:2: not valid JSON",
    );
    assert_fails(
        &run(VS, &["-o", o], b"\n[1,2]\n"),
        65,
        "vm-select: stdin:2: expected a VM record",
    );
    assert!(!out_file.exists(), "nothing half-written");
    assert_fails(
        &run(VS, &["/nonexistent.jsonl"], b""),
        66,
        "vm-select: /nonexistent.jsonl",
    );
}
