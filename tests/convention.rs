//! The one convention of every tool under tools/, read from what a user reads, its `--help`:
//! `-o/--output` names a FILE (a format name there is exit 2 with a hint), `--format` is the
//! format (jsonl by default); tools that reach an engine declare OVIRT_URL, OVIRT_USER and
//! OVIRT_CA, tools that reach a cluster take --kubeconfig, --context and -n/--namespace; every tool
//! writes its completions (`completions SHELL`), its help lists the exit codes (130 among them)
//! and ends with examples. A new tool under tools/ is checked as soon as it has a binary.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every directory under tools/, with its binary next to ovirt-dump's.
fn tools() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_ovirt-dump"))
        .parent()
        .unwrap();
    let mut tools: Vec<(String, PathBuf)> = std::fs::read_dir(root.join("tools"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .map(|name| (name.clone(), bin_dir.join(&name)))
        .collect();
    tools.sort();
    assert!(tools.len() >= 9, "{tools:?}");
    tools
}

/// Runs `bin args` without the variables the convention is about, so defaults show as such.
fn run(bin: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin)
        .args(args)
        .env_remove("OVIRT_URL")
        .env_remove("OVIRT_USER")
        .env_remove("OVIRT_CA")
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .env("COLUMNS", "200")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (is it a [[bin]] of the root package?)",
                bin.display()
            )
        });
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The line of `help` that documents `flag` (like `--output <FILE>`), if any.
fn flag_line<'a>(help: &'a str, flag: &str) -> Option<&'a str> {
    help.lines().find(|l| {
        let l = l.trim_start();
        l.starts_with(flag)
            || l.starts_with(&format!("-{}, {flag}", &flag[2..3]))
            || l.split(", ")
                .nth(1)
                .is_some_and(|rest| rest.starts_with(flag))
    })
}

fn depends_on(tool: &str, krate: &str) -> bool {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tools/{tool}/Cargo.toml"));
    let text = std::fs::read_to_string(manifest).unwrap();
    text.lines()
        .any(|l| l.starts_with(&format!("{krate}.")) || l.starts_with(&format!("{krate} =")))
}

#[test]
fn every_tool_follows_the_convention() {
    let mut failures = Vec::new();
    for (tool, bin) in tools() {
        let (code, help, stderr) = run(&bin, &["--help"]);
        assert_eq!(code, 0, "{tool} --help: {stderr}");
        let mut fail = |what: String| failures.push(format!("{tool}: {what}"));

        // -o/--output is a file, never a format.
        if let Some(line) = flag_line(&help, "--output") {
            // owner-notice writes one file per owner: its -o names the directory they go in
            // (or the CSV file), still never a format.
            let dir_ok = tool == "owner-notice" && line.contains("-o, --output <FILE|DIR>");
            if !line.contains("-o, --output <FILE>") && !dir_ok {
                fail(format!("--output is not `-o, --output <FILE>`: {line:?}"));
            }
            let (code, _, err) = run(&bin, &["-o", "yaml"]);
            if code != 2 || !err.contains("--format") {
                fail(format!("-o yaml: exit {code}, no hint at --format: {err}"));
            }
        }
        // --format is the format, JSON lines by default where records are written.
        if let Some(line) = flag_line(&help, "--format")
            && !line.contains("--format <FORMAT>")
        {
            fail(format!("--format is not `--format <FORMAT>`: {line:?}"));
        }
        if help.contains("[possible values: jsonl") && flag_line(&help, "--format").is_none() {
            fail("a format choice under another name than --format".into());
        }
        // One name for one input across tools: plan-run's events are --events, vm-verify's
        // findings --verify, wherever a tool reads them (owner-notice and report both do).
        for (flag, meaning) in [
            ("--events", "plan-run's events"),
            ("--verify", "vm-verify's"),
        ] {
            // The meaning is on the flag's line (short help) or the next (long help).
            if let Some(line) = flag_line(&help, &format!("{flag} <")) {
                let next = help.split(line).nth(1).and_then(|r| r.lines().nth(1));
                let text = format!("{line} {}", next.unwrap_or_default());
                if !text.contains(meaning) {
                    fail(format!("{flag} is not {meaning}: {text:?}"));
                }
            } else if ["owner-notice", "report"].contains(&tool.as_str()) {
                fail(format!("no {flag} <FILE>"));
            }
        }
        for other in ["--schedule <", "--after <"] {
            if help.contains(other) {
                fail(format!(
                    "{other}FILE> names an input that is --events or --verify"
                ));
            }
        }
        // Engine tools read the OVIRT_* variables.
        if flag_line(&help, "--url").is_some() || depends_on(&tool, "reqwest") {
            for (flag, var) in [
                ("--url", "OVIRT_URL"),
                ("--user", "OVIRT_USER"),
                ("--ca-file", "OVIRT_CA"),
            ] {
                let env = format!("[env: {var}=");
                if !flag_line(&help, flag).is_some_and(|l| l.contains(&env)) && !help.contains(&env)
                {
                    fail(format!("{flag} does not declare {var}"));
                }
            }
        }
        // Cluster tools take kubectl's flags.
        if depends_on(&tool, "kube") {
            for flag in [
                "--kubeconfig <FILE>",
                "--context <NAME>",
                "-n, --namespace <NAMESPACE>",
            ] {
                if !help.contains(flag) {
                    fail(format!("no `{flag}`"));
                }
            }
        }
        // The exit codes, 130 among them; examples last.
        if !help.contains("130  interrupted (SIGINT, Ctrl-C)") {
            fail("no exit code 130 in --help".into());
        }
        let examples = help.rsplit_once("\nExamples:\n").map(|(_, e)| e.trim_end());
        match examples {
            Some(text)
                if text
                    .lines()
                    .map(str::trim_start)
                    .filter(|l| !l.starts_with('#') && l.contains(&format!("{tool} ")))
                    .count()
                    >= 2 => {}
            _ => fail("--help does not end with two or more examples".into()),
        }
        // Completions for the three shells.
        if !help.contains("completions") {
            fail("--help lists no completions subcommand".into());
        }
        for shell in ["bash", "zsh", "fish"] {
            let (code, script, err) = run(&bin, &["completions", shell]);
            if code != 0 || !script.contains(&tool) {
                fail(format!("completions {shell}: exit {code}: {err}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The engine's variables are read, not only declared: ovirt-dump against the simulator with
/// nothing but OVIRT_URL, OVIRT_USER, OVIRT_PASSWORD and OVIRT_CA (the simulator's own CA, which
/// no system store trusts).
#[test]
fn ovirt_dump_takes_the_engine_from_the_environment() {
    let sim = support::Sim::start(&["--tls"]);
    let ca = sim.ca_file.as_ref().unwrap().to_str().unwrap().to_string();
    let env = [
        ("OVIRT_URL", sim.url.as_str()),
        ("OVIRT_USER", sim.user.as_str()),
        ("OVIRT_PASSWORD", sim.password.as_str()),
        ("OVIRT_CA", ca.as_str()),
    ];
    let out = support::run(env!("CARGO_BIN_EXE_ovirt-dump"), &[], &env, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // tests/worlds/demo.json holds 124 VMs.
    assert_eq!(out.stdout.lines().count(), 124);

    // Without OVIRT_CA the simulator's certificate is not trusted: exit 77.
    let out = support::run(env!("CARGO_BIN_EXE_ovirt-dump"), &[], &env[..3], None);
    assert_eq!(out.code, 77, "{}", out.stderr);

    // A URL without /ovirt-engine/api: a hint naming the API URL, not a bare 404.
    let origin = sim.url.trim_end_matches("/ovirt-engine/api").to_string();
    let out = support::run(
        env!("CARGO_BIN_EXE_ovirt-dump"),
        &["--url", &origin],
        &env,
        None,
    );
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains(&format!("{origin}/ovirt-engine/api")),
        "{}",
        out.stderr
    );
}

/// Two plans as plan-gen writes them (namespace m, 1 TB and 2 TB of disks, one VM each).
fn two_plans(dir: &Path) -> PathBuf {
    let plan = |name: &str, bytes: &str, vm: &str| {
        format!(
            "{}\n",
            serde_json::json!({"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Plan",
                "metadata": {"name": name, "namespace": "m",
                             "annotations": {"liftkit.io/total-disk-bytes": bytes}},
                "spec": {"vms": [{"id": vm, "name": vm}]}})
        )
    };
    let path = dir.join("plans.jsonl");
    let text = plan("p1", "1000000000000", "v1") + &plan("p2", "2000000000000", "v2");
    std::fs::write(&path, text).unwrap();
    path
}

/// plan-run --simulate --format table: one row per plan, its VMs, size (binary units) and times.
#[test]
fn plan_run_shows_the_simulated_schedule_as_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let plans = two_plans(dir.path());
    let bin = Path::new(env!("CARGO_BIN_EXE_plan-run"));
    let args = [
        "--simulate",
        "--bandwidth",
        "1GB/s",
        "--start",
        "2026-11-27T22:00:00Z",
        "--format",
        "table",
        plans.to_str().unwrap(),
    ];
    let (code, table, err) = run(bin, &args);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        [
            "PLAN",
            "NAMESPACE",
            "VMS",
            "SIZE",
            "START",
            "END",
            "DURATION"
        ],
        "{table}"
    );
    assert_eq!(lines.len(), 3, "{table}");
    // 2e12 bytes = 1.82 TiB, 1e12 = 931.32 GiB (binary units, two decimals: common::size).
    let p2 = lines.iter().find(|l| l[0] == "p2").unwrap();
    assert_eq!(p2[1..5], ["m", "1", "1.82", "TiB"], "{table}");
    let p1 = lines.iter().find(|l| l[0] == "p1").unwrap();
    assert_eq!(p1[1..5], ["m", "1", "931.32", "GiB"], "{table}");
    assert!(p2[5].starts_with("2026-11-27T22:00:00Z"), "{table}");

    // The table is of a simulation only.
    let (code, _, err) = run(bin, &["--format", "table", plans.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
}

/// plan-run takes kubectl's --kubeconfig and --context: an unreadable file or an unknown context
/// is a configuration error (78) naming it; a known context is used (its server, unreachable
/// here, makes it exit 69).
#[test]
fn plan_run_uses_the_kubeconfig_and_context_given() {
    let dir = tempfile::tempdir().unwrap();
    let plans = two_plans(dir.path());
    let plans = plans.to_str().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_plan-run"));
    let missing = dir.path().join("no-such-kubeconfig");
    let (code, _, err) = run(bin, &["--kubeconfig", missing.to_str().unwrap(), plans]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("no-such-kubeconfig"), "{err}");

    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\ncurrent-context: lab\n\
         clusters:\n- name: lab\n  cluster:\n    server: https://127.0.0.1:9\n\
         users:\n- name: lab\n  user:\n    token: t\n\
         contexts:\n- name: lab\n  context:\n    cluster: lab\n    user: lab\n",
    )
    .unwrap();
    let kubeconfig = kubeconfig.to_str().unwrap();
    let (code, _, err) = run(
        bin,
        &["--kubeconfig", kubeconfig, "--context", "other", plans],
    );
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("other"), "{err}");
    let (code, _, err) = run(
        bin,
        &["--kubeconfig", kubeconfig, "--context", "lab", plans],
    );
    assert_eq!(code, 69, "{err}");
    assert!(err.contains("127.0.0.1:9"), "{err}");
}

/// owner-group --summary --format table: the summary records as rows (namespace, VM count), the
/// VM records themselves only as JSON lines.
#[test]
fn owner_group_summary_as_a_table() {
    let sim = support::Sim::start(&[]);
    let env = [("OVIRT_PASSWORD", sim.password.as_str())];
    let dump = support::run(
        env!("CARGO_BIN_EXE_ovirt-dump"),
        &["--url", &sim.url, "--user", &sim.user],
        &env,
        None,
    );
    assert_eq!(dump.code, 0, "{}", dump.stderr);
    let og = env!("CARGO_BIN_EXE_owner-group");
    let records = support::run(og, &["--summary"], &[], Some(&dump.stdout));
    let table = support::run(
        og,
        &["--summary", "--format", "table"],
        &[],
        Some(&dump.stdout),
    );
    assert_eq!(table.code, 0, "{}", table.stderr);
    let rows: Vec<Vec<&str>> = table
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][..3], ["NAMESPACE", "VMS", "OWNER_USERS"]);
    let summaries: Vec<serde_json::Value> = records
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), summaries.len() + 1);
    for (row, summary) in rows[1..].iter().zip(&summaries) {
        assert_eq!(row[0], summary["namespace"]);
        assert_eq!(row[1], summary["vm_count"].to_string());
    }
    let out = support::run(og, &["--format", "table"], &[], Some(&dump.stdout));
    assert_eq!(out.code, 2, "{}", out.stderr);
}
