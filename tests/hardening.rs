//! Hardening (issue 13), through the real binaries: what the engine, a guest agent or a careless
//! admin can put in front of liftkit. Guest data never reaches a DNS update, a spreadsheet formula
//! or a terminal escape; sizes and times never overflow into a panic; bad flag values are exit 2,
//! bad data exit 65, with the line; system namespaces are never targets. Each test failed before
//! its fix (the reproductions, written out here).
#![cfg(target_os = "linux")]

mod pipeline;
mod support;

use pipeline::{code, run, run_with_env, stderr};
use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const DUMP: &str = env!("CARGO_BIN_EXE_ovirt-dump");
const VS: &str = env!("CARGO_BIN_EXE_vm-select");
const OG: &str = env!("CARGO_BIN_EXE_owner-group");
const CC: &str = env!("CARGO_BIN_EXE_capacity-calc");
const IPB: &str = env!("CARGO_BIN_EXE_ip-budget");
const RBAC: &str = env!("CARGO_BIN_EXE_rbac-gen");
const PG: &str = env!("CARGO_BIN_EXE_plan-gen");

/// The FQDN of the issue: a guest agent reporting it rewrote any record of the zone.
const INJECTED_FQDN: &str = "rdu-web-01.example.com.\nupdate delete example.com. A\nsend\n;";

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

/// A minimal VM record with one NIC on network `vlan202` of data center `DC`.
fn vm(id: &str, name: &str, nic: Value, extra: Value) -> String {
    let mut record = json!({"schema": 1, "id": id, "name": name, "nics": [nic]});
    for (k, v) in extra.as_object().unwrap() {
        record[k] = v.clone();
    }
    format!("{record}\n")
}

fn nic(mac: &str, ipv4: &[&str]) -> Value {
    json!({"id": "n1", "name": "nic1", "mac": mac, "ipv4": ipv4, "ipv6": [],
           "network": {"id": "net1", "name": "vlan202", "data_center": {"id": "dc", "name": "DC"},
                       "path": "DC/vlan202"}})
}

const ALLOCATE: &[&str] = &[
    "--network-map",
    "*=multus:net/vlan202",
    "--subnet",
    "multus:net/vlan202=10.20.2.0/24",
    "--allocate",
];

/// The FQDN through the whole pipeline: the engine simulator serves a world whose first VM
/// reports it (and addresses and a MAC that do not parse); ovirt-dump keeps the text as
/// guest-reported, and ip-budget refuses it, naming the VM, with no nsupdate line from it.
#[test]
fn a_guest_fqdn_cannot_inject_nsupdate_commands() {
    let dir = tempfile::tempdir().unwrap();
    let mut world = support::load_world(&support::demo_world_path());
    let first = &mut world["vms"][0];
    let name = first["name"].as_str().unwrap().to_string();
    first["fqdn"] = json!(INJECTED_FQDN);
    let nic = &mut first["nics"][0];
    let good_ip = nic["reported_ips"][0]["address"].clone();
    nic["mac"] = json!("zz");
    for bad in ["abc", "999.1.1.1"] {
        nic["reported_ips"]
            .as_array_mut()
            .unwrap()
            .push(json!({"address": bad, "version": "v4"}));
    }
    let world_path = write(dir.path(), "world.json", world.to_string());
    let sim = support::Sim::start(&["--tls", "--world", world_path.to_str().unwrap()]);
    let records = dir.path().join("records.jsonl");
    let mut dump = Command::new(DUMP);
    dump.args(["--url", &sim.url, "--user", &sim.user, "-o"])
        .arg(&records)
        .env("OVIRT_PASSWORD", &sim.password)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG");
    if let Some(ca) = &sim.ca_file {
        dump.arg("--ca-file").arg(ca);
    }
    let out = dump.output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Parsed at export: the good address kept, the others and the MAC set aside, with a warning.
    let text = fs::read_to_string(&records).unwrap();
    let record: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["name"] == name.as_str())
        .unwrap();
    let exported = &record["nics"][0];
    assert_eq!(exported["ipv4"], json!([good_ip]));
    assert_eq!(exported["invalid_addresses"], json!(["abc", "999.1.1.1"]));
    assert_eq!(exported["invalid_mac"], "zz");
    assert!(exported.get("mac").is_none(), "{exported}");
    assert_eq!(
        record["fqdn"], INJECTED_FQDN,
        "guest-reported, kept as it came"
    );
    let warnings = stderr(&out);
    assert!(
        warnings.contains(&format!("VM {name} NIC nic1")),
        "{warnings}"
    );

    let mut args = ALLOCATE.to_vec();
    args.extend(["--format", "nsupdate", records.to_str().unwrap()]);
    let out = run(IPB, &args, b"");
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "a refusal is a finding: {err}");
    let changes = stdout(&out);
    assert!(!changes.is_empty(), "the other VMs' changes are written");
    for line in changes.lines() {
        assert!(
            line == "send" || line.starts_with("update add ") || line.starts_with("update delete "),
            "{line}"
        );
        assert_ne!(line, "update delete example.com. A");
        assert!(!line.contains("rdu-web-01.example.com"), "{line}");
    }
    assert!(
        err.lines().any(|l| l.starts_with("ip-budget: refused: ")
            && l.contains(&format!("VM {name} "))
            && l.contains("is not a DNS name")),
        "{err}"
    );
}

#[test]
fn formulas_in_csv_cells_are_neutralised() {
    let dir = tempfile::tempdir().unwrap();
    let records: String = [
        ("v1", "=cmd|' /C calc'!A0"),
        ("v2", "@SUM(1+1)"),
        ("v3", "+1"),
        ("v4", "-1"),
        ("v5", "plain-name"),
    ]
    .iter()
    .map(|(id, name)| vm(id, name, nic("56:6f:1a:2b:00:01", &[]), json!({})))
    .collect();
    let path = write(dir.path(), "r.jsonl", records);
    let mut args = ALLOCATE.to_vec();
    args.extend(["--format", "csv", path.to_str().unwrap()]);
    let out = run(IPB, &args, b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let csv = stdout(&out);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let vm_column = header.iter().position(|h| *h == "vm").unwrap();
    let vms: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(vm_column).unwrap())
        .collect();
    assert_eq!(
        vms,
        [
            "'+1",
            "'-1",
            "'=cmd|' /C calc'!A0",
            "'@SUM(1+1)",
            "plain-name"
        ]
    );
}

#[test]
fn control_characters_never_reach_the_terminal() {
    let name = "web\u{1b}]0;owned\u{7}\u{1b}[2J";
    let record = vm(
        "v1",
        name,
        nic("56:6f:1a:2b:00:01", &[]),
        json!({"status": "down"}),
    );
    let out = run(VS, &["--explain", "--status", "up"], record.as_bytes());
    assert_eq!(code(&out), 0);
    let err = stderr(&out);
    assert!(!err.contains(['\u{1b}', '\u{7}']), "{err:?}");
    assert!(err.contains("web\\u{1b}]0;owned\\u{7}\\u{1b}[2J"), "{err}");
    // An error message naming the VM: escaped too.
    let record = format!(
        "{{\"schema\":2,\"id\":\"v\",\"name\":\"{}\"}}\n",
        "a\\u001b[31m"
    );
    let out = run(OG, &[], record.as_bytes());
    assert_eq!(code(&out), 65);
    assert!(!stderr(&out).contains('\u{1b}'), "{:?}", stderr(&out));
}

#[test]
fn ipv6_budgets_are_exact_and_host_bits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "r.jsonl",
        vm("v1", "a", nic("56:6f:1a:2b:00:01", &[]), json!({})),
    );
    let out = run(
        IPB,
        &[
            "--subnet",
            "vm-networks/other=2001:db8::/63",
            "--reserve",
            "2001:db8::/64",
            path.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "2^64 addresses are free: {}", stderr(&out));
    let rows = stdout(&out);
    let target = rows
        .lines()
        .find(|l| l.contains("\"target\"") && l.contains("2001:db8::/63"));
    let target = target.unwrap_or_else(|| panic!("{rows}"));
    // A /63 holds 2^65 addresses, less the subnet-router anycast address (the network's first);
    // the reserved /64 is its first half, that address aside.
    let size = (1u128 << 65) - 1;
    let reserved = (1u128 << 64) - 1;
    for (key, value) in [
        ("size", size),
        ("reserved", reserved),
        ("free", size - reserved),
        ("shortfall", 0),
    ] {
        assert!(
            target.contains(&format!("\"{key}\":{value}")),
            "{key}: {target}"
        );
    }
    for (cidr, network) in [
        ("2001:db8::/16", "2001::/16"),
        ("10.20.2.5/24", "10.20.2.0/24"),
    ] {
        let subnet = format!("multus:net/a={cidr}");
        let out = run(IPB, &["--subnet", &subnet, path.to_str().unwrap()], b"");
        assert_eq!(code(&out), 2, "{}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("the network is {network}")),
            "{}",
            stderr(&out)
        );
        let out = run(IPB, &["--reserve", cidr, path.to_str().unwrap()], b"");
        assert_eq!(code(&out), 2, "{}", stderr(&out));
    }
}

#[test]
fn invalid_utf8_is_bad_data_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let good = vm("v1", "a", nic("56:6f:1a:2b:00:01", &[]), json!({}));
    // Line 1 blank (skipped, still counted), line 2 Latin-1.
    let bad = b"\n{\"schema\":1,\"id\":\"v2\",\"name\":\"\xff\xfe\"}\n".to_vec();
    let bad = write(dir.path(), "bad.jsonl", &bad);
    let good = write(dir.path(), "good.jsonl", &good);
    let (bad, good) = (bad.to_str().unwrap(), good.to_str().unwrap());
    let engine = "https://engine.example.com/ovirt-engine/api";
    for (tool, extra) in [
        (VS, &[][..]),
        (OG, &[]),
        (CC, &[]),
        (IPB, &[]),
        (RBAC, &[]),
        (PG, &["--url", engine]),
    ] {
        let mut args = extra.to_vec();
        args.push(bad);
        let out = run(tool, &args, b"");
        assert_eq!(code(&out), 65, "{tool}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("bad.jsonl:2: line is not valid UTF-8"),
            "{tool}: {}",
            stderr(&out)
        );
    }
    let latin1 = |name: &str, text: &[u8]| write(dir.path(), name, text);
    let map = latin1("bad.map", b"# r\xe9seaux\nnetwork *=pod\n");
    let decisions = latin1("decisions.csv", b"vm,decision\nd\xe9mo,keep\n");
    let exclude = latin1("exclude.txt", b"admin\nr\xe9mi\n");
    let user_map = latin1("users.csv", b"alice@example.com,alice\nr\xe9mi,remi\n");
    let cases: [(&str, Vec<&str>, &Path, u32); 4] = [
        (CC, vec!["--map-file"], &map, 1),
        (VS, vec!["--decisions"], &decisions, 2),
        (OG, vec!["--exclude-file"], &exclude, 2),
        (RBAC, vec!["--user-map"], &user_map, 2),
    ];
    for (tool, flag, file, line) in cases {
        let mut args = flag.clone();
        args.extend([file.to_str().unwrap(), good]);
        let out = run(tool, &args, b"");
        assert_eq!(code(&out), 65, "{tool} {flag:?}: {}", stderr(&out));
        let named = format!("{}:{line}: line is not valid UTF-8", file.display());
        assert!(stderr(&out).contains(&named), "{tool}: {}", stderr(&out));
    }
}

#[test]
fn vm_select_refuses_a_status_the_engine_never_reports() {
    let record = vm(
        "v1",
        "a",
        nic("56:6f:1a:2b:00:01", &[]),
        json!({"status": "up"}),
    );
    let out = run(VS, &["--status", "bogus"], record.as_bytes());
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("not a VM status"), "{}", stderr(&out));
    let out = run(VS, &["--status", "UP,down"], record.as_bytes());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), record);
}

/// owner-group copies stdin to a spool file to read it twice: a SIGTERM while stdin is still
/// open (the copy under way) removes it, as it removes an output's temporary file.
#[test]
fn owner_group_removes_its_stdin_spool_on_sigterm() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(OG)
        .env("TMPDIR", dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let record = vm("v1", "a", nic("56:6f:1a:2b:00:01", &[]), json!({}));
    stdin.write_all(record.as_bytes()).unwrap();
    stdin.flush().unwrap();
    let start = std::time::Instant::now();
    let spooled = loop {
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        if let Some(name) = names
            .into_iter()
            .find(|n| fs::metadata(dir.path().join(n)).unwrap().len() > 0)
        {
            break name;
        }
        assert!(start.elapsed().as_secs() < 30, "no spool file in TMPDIR");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(
        spooled.starts_with(".owner-group-spool.liftkit-"),
        "{spooled}"
    );
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    drop(stdin);
    assert_eq!(status.code(), Some(143), "{status:?}");
    let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    let _ = run_with_env;
}
