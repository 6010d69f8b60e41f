//! The real pipeline for the planning tools' tests: the engine simulator (tests/support, the shared
//! helper; test files declare `mod support;` next to `mod pipeline;`) serving the demo world over
//! TLS, ovirt-dump exporting it to a temporary file (once per test binary), and helpers to run the
//! tools and to read the world file as plain JSON (expectations never go through tool code).
#![allow(dead_code)]

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub fn world_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/worlds/demo.json")
}

pub fn world() -> &'static Value {
    static WORLD: OnceLock<Value> = OnceLock::new();
    WORLD.get_or_init(|| {
        serde_json::from_str(&std::fs::read_to_string(world_path()).unwrap()).unwrap()
    })
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/planning")
        .join(name)
}

/// The demo world exported by ovirt-dump (run once per test binary), as a file of VM records.
pub fn demo_records() -> &'static Path {
    static RECORDS: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = RECORDS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        // Held in a static, never dropped: removed when the test process exits.
        crate::support::remove_at_exit(dir.path(), None);
        let sim = crate::support::Sim::start(&["--tls"]);
        let path = dir.path().join("demo.jsonl");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ovirt-dump"));
        cmd.args(["--url", &sim.url, "--user", &sim.user])
            .env("OVIRT_PASSWORD", &sim.password);
        if let Some(ca) = &sim.ca_file {
            cmd.arg("--ca-file").arg(ca);
        }
        let out = cmd
            .arg("-o")
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .expect("run ovirt-dump");
        assert!(
            out.status.success(),
            "ovirt-dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        drop(sim);
        (dir, path)
    });
    path
}

/// A generated world (`ovirt-sim --generate N --seed S`), exported by ovirt-dump over TLS and
/// annotated by owner-group: the world file (in `dir`) and owner-group's records.
pub struct Generated {
    pub dir: tempfile::TempDir,
    pub world: PathBuf,
    pub owned: Vec<u8>,
}

pub fn generated(vms: usize, seed: u64) -> Generated {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world.json");
    let (n, s) = (vms.to_string(), seed.to_string());
    let out = run(
        env!("CARGO_BIN_EXE_ovirt-sim"),
        &[
            "--generate",
            &n,
            "--seed",
            &s,
            "--write-world",
            world.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "ovirt-sim --write-world: {}", stderr(&out));
    let sim = crate::support::Sim::start(&["--world", world.to_str().unwrap(), "--tls"]);
    let records = dir.path().join("records.jsonl");
    let mut args = vec!["--url", &sim.url, "--user", &sim.user, "-o"];
    args.push(records.to_str().unwrap());
    let ca = sim
        .ca_file
        .as_ref()
        .map(|c| c.to_str().unwrap().to_string());
    if let Some(ca) = &ca {
        args.extend(["--ca-file", ca.as_str()]);
    }
    let out = run_with_env(
        env!("CARGO_BIN_EXE_ovirt-dump"),
        &args,
        b"",
        &[("OVIRT_PASSWORD", &sim.password)],
    );
    assert_eq!(code(&out), 0, "ovirt-dump: {}", stderr(&out));
    drop(sim);
    Generated {
        owned: owned(&records),
        world,
        dir,
    }
}

/// Runs a tool with `args`, `stdin` fed in.
pub fn run(bin: &str, args: &[&str], stdin: &[u8]) -> Output {
    run_with_env(bin, args, stdin, &[])
}

/// Runs a tool with `args`, `stdin` fed in and `env` set.
pub fn run_with_env(bin: &str, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(bin)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e}"));
    let mut input = child.stdin.take().unwrap();
    // A tool that stops at a bad line stops reading too: a closed pipe is its right.
    if let Err(e) = input.write_all(stdin) {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe,
            "{bin}: stdin: {e}"
        );
    }
    drop(input);
    child.wait_with_output().unwrap()
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// Asserts a failure: the exit code, and one stderr line starting with `prefix`.
pub fn assert_fails(out: &Output, expected: i32, prefix: &str) {
    let err = stderr(out);
    assert_eq!(code(out), expected, "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(err.starts_with(prefix), "expected {prefix:?}, got {err:?}");
}

/// The world's objects of one kind, by id.
pub fn by_id(kind: &str) -> std::collections::HashMap<String, &'static Value> {
    world()[kind]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["id"].as_str().unwrap().to_string(), o))
        .collect()
}

pub const OWNER_ROLES: &[&str] = &[
    "UserVmManager",
    "UserRole",
    "PowerUserRole",
    "UserVmRunTimeManager",
    "UserInstanceManager",
];

/// Owners per VM id straight from the world: (kind, full principal, short name), sorted.
pub fn world_owners() -> std::collections::HashMap<String, Vec<(String, String, String)>> {
    let users = by_id("users");
    let groups = by_id("groups");
    let mut owners: std::collections::HashMap<String, Vec<(String, String, String)>> =
        Default::default();
    for vm in world()["vms"].as_array().unwrap() {
        owners.insert(vm["id"].as_str().unwrap().into(), Vec::new());
    }
    for p in world()["permissions"].as_array().unwrap() {
        if p["object"]["type"] != "vm" || !OWNER_ROLES.contains(&p["role"].as_str().unwrap()) {
            continue;
        }
        let vm = p["object"]["id"].as_str().unwrap().to_string();
        let owner = if let Some(u) = p["user"].as_str() {
            let u = users[u];
            (
                "user".to_string(),
                u["user_name"].as_str().unwrap().to_string(),
                u["principal"].as_str().unwrap().to_string(),
            )
        } else {
            let g = groups[p["group"].as_str().unwrap()];
            let name = g["name"].as_str().unwrap();
            (
                "group".to_string(),
                name.to_string(),
                name.rsplit('/').next().unwrap().to_string(),
            )
        };
        let list = owners.get_mut(&vm).unwrap();
        if !list.contains(&owner) {
            list.push(owner);
        }
    }
    for list in owners.values_mut() {
        list.sort();
    }
    owners
}

/// The namespace each VM should get with the default template, straight from the world.
pub fn world_namespaces() -> std::collections::HashMap<String, String> {
    world_owners()
        .into_iter()
        .map(|(vm, owners)| {
            let ns = if owners.is_empty() {
                "unowned".to_string()
            } else {
                let mut names: Vec<&str> = owners.iter().map(|o| o.2.as_str()).collect();
                names.sort();
                format!("{}-ns", names.join("-"))
            };
            (vm, ns)
        })
        .collect()
}

/// owner-group's output for VM records (a file): the records plan-gen and rbac-gen read.
pub fn owned(records: &Path) -> Vec<u8> {
    let out = run(
        env!("CARGO_BIN_EXE_owner-group"),
        &[records.to_str().unwrap()],
        b"",
    );
    assert!(out.status.success(), "owner-group: {}", stderr(&out));
    out.stdout
}

/// The vm-verify check a VM's planted after-the-move fault must fail, as tests/ovirt-sim/WORLD.md
/// defines `after_move` (None: the VM has no fault and passes every check).
pub fn after_move_check(vm: &Value) -> Option<&'static str> {
    let after = &vm["after_move"];
    if after["boots"] == false {
        Some("running")
    } else if after["guest_agent"] == false {
        Some("guest-agent")
    } else if after["addresses"].is_object() {
        Some("addresses")
    } else if after["missing_nics"].is_array() {
        Some("nics")
    } else if after["dns_stale"] == true {
        Some("dns")
    } else {
        None
    }
}

/// A JSON-lines file as values (blank lines skipped); a missing file or a bad line panics with
/// the path.
pub fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}
