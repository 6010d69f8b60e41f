//! plan-run as a user runs it. Offline: --simulate on the demo world's manifests (the real
//! pipeline: ovirt-sim, ovirt-dump, owner-group, rbac-gen, plan-gen) and the one-line errors.
//! Live: a real kube-apiserver (tests/kube-testbed) with forklift-sim playing Forklift.

#[path = "kubebed/mod.rs"]
mod kubebed;
mod pipeline;
mod support;

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const PLAN_RUN: &str = env!("CARGO_BIN_EXE_plan-run");
const URL: &str = "https://engine.example.com/ovirt-engine/api";
const MAP: &str = "tests/fixtures/demo-networks.map";

/// The API server restart test holds this for writing; the other live tests for reading, so that
/// Forklift's stand-in never sees a restart it was not meant to.
static RESTART: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// The demo world through owner-group: annotated VM records.
fn owned() -> &'static [u8] {
    static OWNED: OnceLock<Vec<u8>> = OnceLock::new();
    OWNED.get_or_init(|| {
        let out = pipeline::run(
            env!("CARGO_BIN_EXE_owner-group"),
            &[pipeline::demo_records().to_str().unwrap()],
            b"",
        );
        assert!(
            out.status.success(),
            "owner-group: {}",
            pipeline::stderr(&out)
        );
        out.stdout
    })
}

/// rbac-gen's and plan-gen's output for the demo world, Forklift objects in `namespace`.
struct Manifests {
    _dir: tempfile::TempDir,
    rbac: PathBuf,
    forklift: PathBuf,
}

fn manifests(namespace: &str, plan_gen_args: &[&str]) -> Manifests {
    let dir = tempfile::tempdir().unwrap();
    let rbac = dir.path().join("rbac.jsonl");
    let forklift = dir.path().join("forklift.jsonl");
    let out = pipeline::run(
        env!("CARGO_BIN_EXE_rbac-gen"),
        &[
            "--strip-domain",
            "--namespaced-role",
            "-o",
            rbac.to_str().unwrap(),
        ],
        owned(),
    );
    assert!(out.status.success(), "rbac-gen: {}", pipeline::stderr(&out));
    let mut child = Command::new(env!("CARGO_BIN_EXE_plan-gen"))
        .args([
            "--url",
            URL,
            "--namespace",
            namespace,
            "--map-file",
            MAP,
            "--with-secret",
        ])
        .args(["--user", "admin@internal", "--insecure-skip-verify", "-q"])
        .args(["-o", forklift.to_str().unwrap()])
        .args(plan_gen_args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("OVIRT_PASSWORD", "ovirt-sim-demo")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(owned()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "plan-gen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Manifests {
        _dir: dir,
        rbac,
        forklift,
    }
}

fn write_lines(path: &Path, values: &[Value]) {
    let text: String = values.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// The live tests check scheduling under the limits they give: `--bandwidth fixed` unless they
/// name a --bandwidth (--bandwidth auto, the default, has tests of its own).
fn fixed_unless_named<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    if !args.contains(&"--bandwidth") {
        all.splice(0..0, ["--bandwidth", "fixed"]);
    }
    all
}

fn plan_run(args: &[&str], kubeconfig: Option<&Path>) -> Output {
    let mut cmd = Command::new(PLAN_RUN);
    cmd.args(fixed_unless_named(args))
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match kubeconfig {
        Some(path) => cmd.env("KUBECONFIG", path),
        None => cmd.env("KUBECONFIG", "/nonexistent/kubeconfig"),
    };
    cmd.output().unwrap()
}

fn events(out: &Output) -> Vec<Value> {
    pipeline::lines(out)
}

fn of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

/// Disk bytes per VM id, straight from the world file: its non-LUN disks' provisioned size, or
/// actual size where larger (what plan-gen's liftkit.io/total-disk-bytes documents).
fn world_vm_bytes() -> BTreeMap<String, u64> {
    let disks = pipeline::by_id("disks");
    pipeline::world()["vms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|vm| {
            let bytes = vm["disk_attachments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| disks[a["disk"].as_str().unwrap()])
                .filter(|d| d["storage_type"] != "lun")
                .map(|d| {
                    let size = |k: &str| d[k].as_u64().unwrap_or(0);
                    size("provisioned_size").max(size("actual_size"))
                })
                .sum();
            (vm["id"].as_str().unwrap().to_string(), bytes)
        })
        .collect()
}

/// The Plans among `objects`.
fn plans_of(objects: Vec<Value>) -> Vec<Value> {
    objects
        .into_iter()
        .filter(|o| o["kind"] == "Plan")
        .collect()
}

/// Disk bytes of each plan, by name, from its VMs in the world file.
fn plan_bytes(plans: &[Value]) -> BTreeMap<String, u64> {
    let vm_bytes = world_vm_bytes();
    plans
        .iter()
        .map(|p| {
            let bytes = p["spec"]["vms"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| vm_bytes[v["id"].as_str().unwrap()])
                .sum();
            (p["metadata"]["name"].as_str().unwrap().to_string(), bytes)
        })
        .collect()
}

/// Replays the `started` and `plan-finished` (or `deleted`) events with the plans' sizes and
/// checks at every start: at most `max_running` plans run, and their bytes stay within
/// `max_inflight`, except a plan bigger than that, started alone. Returns the peak bytes in flight.
fn assert_limits_hold(
    events: &[Value],
    bytes: &BTreeMap<String, u64>,
    max_running: Option<usize>,
    max_inflight: Option<u64>,
) -> u64 {
    let mut running: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut starts, mut peak) = (0, 0);
    for e in events {
        let plan = e["plan"].as_str().unwrap_or_default();
        match e["event"].as_str().unwrap_or_default() {
            "started" => {
                starts += 1;
                running.insert(plan, bytes[plan]);
                let inflight: u64 = running.values().sum();
                peak = peak.max(inflight);
                if let Some(max) = max_running {
                    assert!(running.len() <= max, "more than {max} plans running: {e}");
                }
                if let Some(max) = max_inflight {
                    let alone = running.len() == 1 && bytes[plan] > max;
                    assert!(
                        inflight <= max || alone,
                        "{inflight} bytes in flight over --max-inflight {max} at {e}; running: {running:?}"
                    );
                }
            }
            "plan-finished" | "deleted" => {
                running.remove(plan);
            }
            _ => {}
        }
    }
    assert!(starts > 0, "no plan started");
    peak
}

/// An event's `time`.
fn time_of(e: &Value) -> jiff::Timestamp {
    e["time"].as_str().unwrap().parse().unwrap()
}

// ---------------------------------------------------------------- offline

#[test]
fn simulate_the_demo_world_at_10_gbit() {
    let m = manifests("openshift-mtv", &[]);
    let (rbac, forklift) = (m.rbac.to_str().unwrap(), m.forklift.to_str().unwrap());
    let args = [
        "--simulate",
        "--bandwidth",
        "10Gbit/s",
        "--max-running-plans",
        "4",
        "--start",
        "2026-11-27T22:00:00Z",
        rbac,
        forklift,
    ];
    let out = plan_run(&args, None);
    assert_eq!(pipeline::code(&out), 0, "{}", pipeline::stderr(&out));
    let again = plan_run(&args, None);
    assert_eq!(out.stdout, again.stdout, "a simulation is deterministic");

    let events = events(&out);
    let plans = plans_of(pipeline::read_lines(&m.forklift));
    let bytes = plan_bytes(&plans);
    let vm_count: usize = plans
        .iter()
        .map(|p| p["spec"]["vms"].as_array().unwrap().len())
        .sum();
    assert_eq!(of(&events, "started").len(), plans.len());
    assert_eq!(of(&events, "plan-finished").len(), plans.len());
    assert_eq!(of(&events, "vm-succeeded").len(), vm_count);
    let peak = assert_limits_hold(&events, &bytes, Some(4), None);

    // The summary, recomputed from the world file and the events: the plans' bytes; the lower
    // bound, all of them over the link at 10 Gbit/s (1.25e9 bytes/s); the makespan, from --start
    // to the last plan's end; and no plan faster than the link alone.
    const LINK_BYTES_PER_SEC: f64 = 10e9 / 8.0;
    let total: u64 = bytes.values().sum();
    let start: jiff::Timestamp = "2026-11-27T22:00:00Z".parse().unwrap();
    let last_end = of(&events, "plan-finished")
        .iter()
        .map(|e| time_of(e))
        .max()
        .unwrap();
    let summary = of(&events, "simulation")[0];
    assert_eq!(summary["total_bytes"], total, "{summary}");
    assert_eq!(summary["plans"], plans.len(), "{summary}");
    assert_eq!(summary["vms"], vm_count, "{summary}");
    assert_eq!(summary["peak_inflight_bytes"], peak, "{summary}");
    let bound = summary["lower_bound_secs"].as_f64().unwrap();
    assert!(
        (bound - total as f64 / LINK_BYTES_PER_SEC).abs() < 0.01,
        "{summary}"
    );
    let makespan = summary["makespan_secs"].as_f64().unwrap();
    let from_events = (last_end - start).total(jiff::Unit::Second).unwrap();
    assert!(
        (makespan - from_events).abs() <= 1.0,
        "{summary}: last end at {last_end}"
    );
    assert!(makespan >= bound, "{summary}");
    let ratio = summary["ratio"].as_f64().unwrap_or(f64::NAN);
    assert!((ratio - makespan / bound).abs() < 0.01, "{summary}");
    for e in of(&events, "started") {
        let plan = e["plan"].as_str().unwrap();
        let end = of(&events, "plan-finished")
            .into_iter()
            .find(|f| f["plan"] == plan)
            .map(time_of)
            .unwrap();
        let secs = (end - time_of(e)).total(jiff::Unit::Second).unwrap();
        assert!(
            secs + 1.0 >= bytes[plan] as f64 / LINK_BYTES_PER_SEC,
            "{plan}: {} bytes in {secs} s is faster than the link",
            bytes[plan]
        );
    }
    assert!(
        pipeline::stderr(&out).contains("makespan"),
        "{}",
        pipeline::stderr(&out)
    );
    eprintln!("demo world at 10Gbit/s, 4 plans at a time: {summary}");

    // --max-inflight holds in the simulated schedule too, replayed from the events.
    let limit: u64 = 2 << 40;
    let out = plan_run(
        &[
            "--simulate",
            "--bandwidth",
            "10Gbit/s",
            "--max-inflight",
            "2TiB",
            rbac,
            forklift,
        ],
        None,
    );
    assert_eq!(pipeline::code(&out), 0, "{}", pipeline::stderr(&out));
    let events = events_of(&out);
    let peak = assert_limits_hold(&events, &bytes, None, Some(limit));
    assert!(peak > limit / 2, "the limit never mattered: peak {peak}");
    assert_eq!(of(&events, "plan-finished").len(), plans.len());
}

fn events_of(out: &Output) -> Vec<Value> {
    events(out)
}

#[test]
fn simulate_starts_only_inside_the_window() {
    let m = manifests("openshift-mtv", &[]);
    let out = plan_run(
        &[
            "--simulate",
            "--bandwidth",
            "10Gbit/s",
            "--window",
            "22:00-06:00",
            "--max-running-plans",
            "1",
            "--start",
            "2026-11-27T12:00:00Z",
            m.forklift.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(pipeline::code(&out), 0, "{}", pipeline::stderr(&out));
    // Every plan starts, over as many nights as it takes, each start inside the window; the
    // first at 22:00 sharp, when the window first opens after the 12:00 start.
    let events = events(&out);
    let started = of(&events, "started");
    assert_eq!(
        started.len(),
        plans_of(pipeline::read_lines(&m.forklift)).len()
    );
    assert_eq!(started[0]["time"], "2026-11-27T22:00:00Z", "{}", started[0]);
    for e in &started {
        let time = e["time"].as_str().unwrap();
        let hour: u32 = time[11..13].parse().unwrap();
        assert!(
            !(6..22).contains(&hour),
            "started outside 22:00-06:00 (TZ=UTC): {e}"
        );
    }
}

#[test]
fn bad_input_is_one_line_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("objects.jsonl");
    std::fs::write(
        &path,
        "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"a\"}}\n{\"apiVersion\":\n",
    )
    .unwrap();
    let out = plan_run(
        &["--simulate", "--bandwidth", "1GB/s", path.to_str().unwrap()],
        None,
    );
    let prefix = format!("plan-run: {}:2: not valid JSON", path.display());
    pipeline::assert_fails(&out, 65, &prefix);

    let out = plan_run(
        &["--simulate", "--bandwidth", "fast", path.to_str().unwrap()],
        None,
    );
    assert_eq!(pipeline::code(&out), 2, "{}", pipeline::stderr(&out));
    let out = plan_run(&["--window", "22:00", path.to_str().unwrap()], None);
    assert_eq!(pipeline::code(&out), 2, "{}", pipeline::stderr(&out));
}

#[test]
fn an_unreachable_api_server_exits_69() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: x\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n",
    )
    .unwrap();
    let objects = dir.path().join("objects.jsonl");
    std::fs::write(
        &objects,
        "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"a\"}}\n",
    )
    .unwrap();
    let out = plan_run(&[objects.to_str().unwrap()], Some(&kubeconfig));
    pipeline::assert_fails(&out, 69, "plan-run: https://127.0.0.1:1");
}

// ---------------------------------------------------------------- live

/// Plans of `m` restricted to the first `count`, their VMs landing in `target` (a namespace of the
/// test's own, so tests do not collide), plus everything else plan-gen wrote.
fn subset(m: &Manifests, count: usize, target: &str) -> PathBuf {
    let mut kept = 0;
    let objects: Vec<Value> = pipeline::read_lines(&m.forklift)
        .into_iter()
        .filter_map(|mut o| {
            if o["kind"] == "Plan" {
                kept += 1;
                if kept > count {
                    return None;
                }
                o["spec"]["targetNamespace"] = Value::from(target);
            }
            Some(o)
        })
        .collect();
    let path = m.forklift.with_file_name(format!("subset-{count}.jsonl"));
    write_lines(&path, &objects);
    path
}

fn sim(ns: &str, time_scale: &str, extra: &[&str]) -> kubebed::ForkliftSim {
    let mut args = vec![
        "--namespace",
        ns,
        "--time-scale",
        time_scale,
        "--status-interval",
        "300ms",
    ];
    args.extend_from_slice(extra);
    kubebed::ForkliftSim::start(kubebed::Testbed::shared(), &pipeline::world_path(), &args)
}

/// The test bed's API for a Forklift kind in namespace `ns`, as admin.
async fn forklift_api(ns: &str, kind: &str) -> kube::Api<kube::api::DynamicObject> {
    let bed = kubebed::Testbed::shared();
    kube::Api::namespaced_with(
        bed.client().await,
        ns,
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "forklift.konveyor.io",
            "v1beta1",
            kind,
        )),
    )
}

async fn migrations(ns: &str) -> Vec<Value> {
    let api = forklift_api(ns, "Migration").await;
    api.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|m| serde_json::to_value(m).unwrap())
        .collect()
}

fn migrations_per_plan(list: &[Value]) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for m in list {
        *counts
            .entry(m["spec"]["plan"]["name"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_world_migrates_under_forklift_sim_within_max_inflight() {
    let _shared = RESTART.read().await;
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("plan-run-all").await;
    let m = manifests(&ns, &["--max-size-per-plan", "1TiB"]);
    let _sim = sim(&ns, "1200", &[]);
    let limit = "3TiB";
    let args = [
        "--max-inflight",
        limit,
        "--max-running-plans",
        "6",
        "--ready-timeout",
        "300s",
        m.rbac.to_str().unwrap(),
        m.forklift.to_str().unwrap(),
    ];
    let out = tokio::task::spawn_blocking({
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let kubeconfig = bed.kubeconfig.clone();
        move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            plan_run(&args, Some(&kubeconfig))
        }
    })
    .await
    .unwrap();
    let err = pipeline::stderr(&out);
    assert_eq!(pipeline::code(&out), 0, "{err}");
    let events = events(&out);
    let plan_objects = plans_of(pipeline::read_lines(&m.forklift));
    let plans = plan_objects.len();
    let vms: usize = plan_objects
        .iter()
        .map(|p| p["spec"]["vms"].as_array().unwrap().len())
        .sum();
    assert!(of(&events, "applied").len() > plans, "applied events");
    assert_eq!(of(&events, "ready").len(), plans);
    let finished = of(&events, "plan-finished");
    assert_eq!(finished.len(), plans);
    assert!(
        finished.iter().all(|e| e["outcome"] == "Succeeded"),
        "{finished:?}"
    );
    assert_eq!(of(&events, "vm-succeeded").len(), vms);
    assert!(!of(&events, "vm-progress").is_empty());
    // The limits, replayed from the start and finish events with the plans' sizes.
    let bytes = plan_bytes(&plan_objects);
    let peak = assert_limits_hold(&events, &bytes, Some(6), Some(3 << 40));
    assert!(peak > 3 << 39, "the limit never mattered: peak {peak}");
    assert!(err.contains(&format!("{plans} succeeded")), "{err}");

    // A rerun finds everything done: nothing starts, exit 0, one Migration per plan.
    let kubeconfig = bed.kubeconfig.clone();
    let rerun = tokio::task::spawn_blocking(move || plan_run(&args_owned(&m), Some(&kubeconfig)))
        .await
        .unwrap();
    assert_eq!(pipeline::code(&rerun), 0, "{}", pipeline::stderr(&rerun));
    let again = events_of(&rerun);
    assert!(of(&again, "started").is_empty());
    assert_eq!(of(&again, "skipped").len(), plans);
    let counts = migrations_per_plan(&migrations(&ns).await);
    assert_eq!(counts.len(), plans);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
}

fn args_owned(m: &Manifests) -> Vec<&str> {
    vec![
        "--ready-timeout",
        "300s",
        m.rbac.to_str().unwrap(),
        m.forklift.to_str().unwrap(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_vms_are_reported_and_retry_failed_finishes_them() {
    let _shared = RESTART.read().await;
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("plan-run-retry").await;
    let m = manifests(&ns, &[]);
    let input = subset(&m, 2, &ns);
    let plans: Vec<Value> = pipeline::read_lines(&input)
        .into_iter()
        .filter(|o| o["kind"] == "Plan")
        .collect();
    let victim = plans[0]["spec"]["vms"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let _sim = sim(&ns, "1200", &["--fail-vm", &victim]);
    let kubeconfig = bed.kubeconfig.clone();
    let path = input.to_str().unwrap().to_string();
    let run = move |extra: &[&str]| {
        let mut args = vec!["--ready-timeout", "300s", path.as_str()];
        args.extend_from_slice(extra);
        plan_run(&args, Some(&kubeconfig))
    };
    let first = run(&[]);
    assert_eq!(pipeline::code(&first), 1, "{}", pipeline::stderr(&first));
    let events1 = events(&first);
    let failed = of(&events1, "vm-failed");
    assert_eq!(failed.len(), 1, "{events1:?}");
    assert_eq!(failed[0]["vm_name"], victim.as_str());
    assert!(failed[0]["error"].is_string(), "{}", failed[0]);

    // Without --retry-failed the plan stays failed; with it, a second Migration finishes it.
    let second = run(&[]);
    assert_eq!(pipeline::code(&second), 1);
    assert!(of(&events(&second), "started").is_empty());
    let third = run(&["--retry-failed"]);
    assert_eq!(pipeline::code(&third), 0, "{}", pipeline::stderr(&third));
    let events3 = events(&third);
    let started = of(&events3, "started");
    assert_eq!(started.len(), 1);
    assert_eq!(
        started[0]["migration"],
        format!("{}-2", plans[0]["metadata"]["name"].as_str().unwrap())
    );
    assert!(
        of(&events3, "vm-succeeded")
            .iter()
            .any(|e| e["vm_name"] == victim.as_str())
    );
}

/// Starts plan-run in the background; returns it and a channel of its event lines.
fn spawn_plan_run(
    args: &[&str],
    kubeconfig: &Path,
) -> (std::process::Child, std::sync::mpsc::Receiver<Value>) {
    spawn_plan_run_with(args, kubeconfig, Stdio::inherit())
}

fn spawn_plan_run_with(
    args: &[&str],
    kubeconfig: &Path,
    stderr: Stdio,
) -> (std::process::Child, std::sync::mpsc::Receiver<Value>) {
    let mut child = Command::new(PLAN_RUN)
        .args(fixed_unless_named(args))
        .env("KUBECONFIG", kubeconfig)
        .env("NO_COLOR", "1")
        .env("TZ", "UTC")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
    });
    (child, rx)
}

fn wait_event(rx: &std::sync::mpsc::Receiver<Value>, kind: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {kind} event within {secs}s"));
        if e["event"] == kind {
            return e;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_run_and_api_server_restarted_it_finishes_without_a_duplicate() {
    let _exclusive = RESTART.write().await;
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("plan-run-kill").await;
    let m = manifests(&ns, &[]);
    let input = subset(&m, 4, &ns);
    // Slow enough that the run is still going when it is killed.
    let _sim = sim(&ns, "150", &[]);
    let input_s = input.to_str().unwrap();
    // The killed run's Lease runs out 3 s after its last renewal; the next run waits for it (and
    // holds its own for the default 30 s, which the API server's restart does not outlast).
    let args = [
        "--max-running-plans",
        "2",
        "--ready-timeout",
        "300s",
        "--wait-for-lease",
        input_s,
    ];
    let killed_args = [&args[..], &["--lease-duration", "3s"]].concat();

    let (mut child, rx) = spawn_plan_run(&killed_args, &bed.kubeconfig);
    wait_event(&rx, "started", 60);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = migrations_per_plan(&migrations(&ns).await);
    assert!(!before.is_empty());

    // Again; the API server restarts under it once it has attached.
    let (mut child, rx) = spawn_plan_run(&args, &bed.kubeconfig);
    // Once it drives the plans (it attaches to the killed run's Migration, or, when that one
    // finished meanwhile, as it did in a full make test, starts the next plan), the API server
    // restarts under it. Applying, the Lease and the Plans' readiness take minutes on two loaded
    // cores.
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut seen: Vec<Value> = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no attached or started event within 240 s: {seen:?}"));
        let driving = e["event"] == "attached" || e["event"] == "started";
        seen.push(e);
        if driving {
            break;
        }
    }
    tokio::task::spawn_blocking(|| kubebed::Testbed::shared().restart_apiserver())
        .await
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    // Every line plan-run wrote: the reader thread ends at end of output, after the exit.
    let rest: Vec<Value> = seen.into_iter().chain(rx.iter()).collect();
    // plan-run and forklift-sim rode out the restart: plan-run exited by itself, every plan
    // succeeded with every VM, none ran twice, no --retry-failed needed.
    assert_eq!(status.code(), Some(0), "second run: {status:?}");
    let finished: BTreeSet<&str> = of(&rest, "plan-finished")
        .iter()
        .map(|e| e["plan"].as_str().unwrap())
        .collect();
    let skipped = of(&rest, "skipped");
    assert_eq!(
        finished.len() + skipped.len(),
        4,
        "{:?}",
        of(&rest, "plan-finished")
    );
    for e in of(&rest, "plan-finished") {
        assert_eq!(e["outcome"], "Succeeded", "{e}");
        assert_eq!(e["vms_failed"], 0, "{e}");
        assert_eq!(e["vms_canceled"], 0, "{e}");
    }
    assert!(
        of(&rest, "vm-failed").is_empty(),
        "{:?}",
        of(&rest, "vm-failed")
    );
    let counts = migrations_per_plan(&migrations(&ns).await);
    assert_eq!(counts.len(), 4, "{counts:?}");
    assert!(
        counts.values().all(|n| *n == 1),
        "a plan got two Migrations: {counts:?}"
    );
    let plan_objects: Vec<Value> = pipeline::read_lines(&input)
        .into_iter()
        .filter(|o| o["kind"] == "Plan")
        .collect();
    for m in migrations(&ns).await {
        let plan = plan_objects
            .iter()
            .find(|p| p["metadata"]["name"] == m["spec"]["plan"]["name"])
            .unwrap();
        let vms = m["status"]["vms"].as_array().unwrap();
        assert_eq!(vms.len(), plan["spec"]["vms"].as_array().unwrap().len());
        for vm in vms {
            let succeeded = vm["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Succeeded" && c["status"] == "True");
            assert!(succeeded, "{}: {vm}", m["metadata"]["name"]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_access_confirms_owners_and_catches_a_wrong_binding() {
    let _shared = RESTART.read().await;
    let bed = kubebed::Testbed::shared();
    let m = manifests("openshift-mtv", &[]);
    // The test's own copies of rbac-gen's namespaces, so a wrong binding here harms no other test.
    let prefix = bed.unique_name("va");
    let rename = |ns: &str| format!("{prefix}-{ns}");
    let mut objects = pipeline::read_lines(&m.rbac);
    for o in &mut objects {
        if o["kind"] == "Namespace" {
            let name = rename(o["metadata"]["name"].as_str().unwrap());
            o["metadata"]["name"] = Value::from(name);
        } else if let Some(ns) = o["metadata"]["namespace"].as_str() {
            o["metadata"]["namespace"] = Value::from(rename(ns));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let rbac = dir.path().join("rbac.jsonl");
    write_lines(&rbac, &objects);
    let rbac_s = rbac.to_str().unwrap().to_string();
    let kubeconfig = bed.kubeconfig.clone();
    let run = move |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        plan_run(&args, Some(&kubeconfig))
    };
    let r = run.clone();
    let a = rbac_s.clone();
    let applied = tokio::task::spawn_blocking(move || r(vec![a]))
        .await
        .unwrap();
    assert_eq!(
        pipeline::code(&applied),
        0,
        "{}",
        pipeline::stderr(&applied)
    );

    let r = run.clone();
    let a = rbac_s.clone();
    let ok = tokio::task::spawn_blocking(move || r(vec!["--verify-access".into(), a]))
        .await
        .unwrap();
    assert_eq!(pipeline::code(&ok), 0, "{}", pipeline::stderr(&ok));
    let checks = events(&ok);
    assert!(!checks.is_empty());
    assert!(
        checks
            .iter()
            .all(|e| e["event"] == "access" && e["ok"] == true)
    );
    assert!(checks.iter().any(|e| e["allowed"] == true));
    assert!(checks.iter().any(|e| e["allowed"] == false));

    // A binding that puts an owner into a namespace not theirs.
    let binding = objects
        .iter()
        .find(|o| o["kind"] == "RoleBinding" && o["subjects"][0]["kind"] == "User")
        .unwrap()
        .clone();
    let owner = binding["subjects"][0]["name"].as_str().unwrap().to_string();
    let home = binding["metadata"]["namespace"]
        .as_str()
        .unwrap()
        .to_string();
    let other = objects
        .iter()
        .filter(|o| o["kind"] == "Namespace")
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .find(|n| {
            *n != home
                && !objects.iter().any(|b| {
                    b["kind"] == "RoleBinding"
                        && b["metadata"]["namespace"] == n.as_str()
                        && b["subjects"][0]["name"] == owner.as_str()
                })
        })
        .unwrap();
    let mut wrong = binding.clone();
    wrong["metadata"]["namespace"] = Value::from(other.clone());
    wrong["metadata"]["name"] = Value::from("liftkit-wrong-binding");
    let wrong_path = dir.path().join("wrong.jsonl");
    write_lines(&wrong_path, &[wrong]);
    let r = run.clone();
    let w = wrong_path.to_str().unwrap().to_string();
    let applied = tokio::task::spawn_blocking(move || r(vec![w]))
        .await
        .unwrap();
    assert_eq!(
        pipeline::code(&applied),
        0,
        "{}",
        pipeline::stderr(&applied)
    );
    let r = run.clone();
    let a = rbac_s.clone();
    let caught = tokio::task::spawn_blocking(move || r(vec!["--verify-access".into(), a]))
        .await
        .unwrap();
    assert_eq!(pipeline::code(&caught), 1, "{}", pipeline::stderr(&caught));
    let bad: Vec<Value> = events(&caught)
        .into_iter()
        .filter(|e| e["ok"] == false)
        .collect();
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert_eq!(bad[0]["subject"], owner.as_str());
    assert_eq!(bad[0]["namespace"], other.as_str());
    assert!(
        pipeline::stderr(&caught).contains("access mismatch"),
        "{}",
        pipeline::stderr(&caught)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_stores_nothing_and_a_bad_token_exits_77() {
    let _shared = RESTART.read().await;
    let bed = kubebed::Testbed::shared();
    let ns = bed.unique_name("plan-run-dry");
    let m = manifests(&ns, &[]);
    let input = subset(&m, 1, &ns);
    let dir = tempfile::tempdir().unwrap();
    // The namespace itself must exist for a dry run of what goes in it.
    let ns_file = dir.path().join("ns.jsonl");
    write_lines(
        &ns_file,
        &[serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})],
    );
    let kubeconfig = bed.kubeconfig.clone();
    let (n, i) = (ns_file.clone(), input.clone());
    let out = tokio::task::spawn_blocking(move || {
        plan_run(&[n.to_str().unwrap()], Some(&kubeconfig));
        plan_run(&["--dry-run", i.to_str().unwrap()], Some(&kubeconfig))
    })
    .await
    .unwrap();
    assert_eq!(pipeline::code(&out), 0, "{}", pipeline::stderr(&out));
    // Every object went through the server's dry run, and none of them was stored.
    let objects: Vec<Value> = pipeline::read_lines(&input)
        .into_iter()
        .filter(|o| o["kind"] != "Namespace")
        .collect();
    let events = events(&out);
    let applied = of(&events, "applied");
    assert_eq!(applied.len(), objects.len(), "{applied:?}");
    assert!(applied.iter().all(|e| e["dry_run"] == true), "{applied:?}");
    let client = bed.client().await;
    for o in &objects {
        let (group, version) = match o["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", o["apiVersion"].as_str().unwrap()),
        };
        let kind = o["kind"].as_str().unwrap();
        let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
            client.clone(),
            &ns,
            &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
                group, version, kind,
            )),
        );
        let name = o["metadata"]["name"].as_str().unwrap();
        let found = api.get_opt(name).await.unwrap();
        assert!(found.is_none(), "{kind} {ns}/{name} stored by a dry run");
    }
    assert!(migrations(&ns).await.is_empty());

    // alice's kubeconfig, with a token the server does not know.
    let text = std::fs::read_to_string(bed.user_kubeconfig("alice")).unwrap();
    let token = bed
        .env
        .iter()
        .find(|(k, _)| k == "KUBE_TESTBED_TOKEN_ALICE")
        .map(|(_, v)| v.clone())
        .unwrap();
    let bad = dir.path().join("kubeconfig-bad");
    std::fs::write(&bad, text.replace(&token, "not-a-token")).unwrap();
    let out = tokio::task::spawn_blocking(move || plan_run(&[input.to_str().unwrap()], Some(&bad)))
        .await
        .unwrap();
    pipeline::assert_fails(&out, 77, "plan-run: ");
}

// ---------------------------------------------------------------- Ctrl-C

/// A live run sent SIGINT while its first plan migrates under forklift-sim.
struct Interrupted {
    ns: String,
    /// The plans plan-run was given (two; --max-running-plans 1, so one starts).
    plans: Vec<Value>,
    code: Option<i32>,
    stderr: String,
    events: Vec<Value>,
    _sim: kubebed::ForkliftSim,
    _m: Manifests,
}

/// What a test does to a run once the awaited event is seen.
#[derive(Clone, Copy, PartialEq)]
enum MidRun {
    /// `kill -INT` plan-run.
    Interrupt,
    /// Delete the Migration plan-run started, through the API server.
    DeleteMigration,
}

/// Runs plan-run on two plans, one at a time, with forklift-sim's clock set so the first plan's
/// disks take about 20 s of real time; sends `kill -INT` once `signal_after` is seen.
async fn interrupt_mid_migration(prefix: &str, signal_after: &str, extra: &[&str]) -> Interrupted {
    act_mid_migration(prefix, signal_after, extra, MidRun::Interrupt).await
}

/// `interrupt_mid_migration`, doing `action` once `after` is seen; waits for plan-run to end.
async fn act_mid_migration(
    prefix: &str,
    after: &str,
    extra: &[&str],
    action: MidRun,
) -> Interrupted {
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace(prefix).await;
    let m = manifests(&ns, &[]);
    let input = subset(&m, 2, &ns);
    let plans: Vec<Value> = pipeline::read_lines(&input)
        .into_iter()
        .filter(|o| o["kind"] == "Plan")
        .collect();
    assert_eq!(plans.len(), 2);
    let largest: u64 = plans
        .iter()
        .map(|p| {
            p["metadata"]["annotations"]["liftkit.io/total-disk-bytes"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .max()
        .unwrap();
    // 1 Gbit/s is 125 MB/s of simulated time; the largest plan (it starts first) takes ~20 s of
    // real time, so the action lands mid-migration even when the machine is slow to react.
    let time_scale = (largest as f64 / 125e6 / 20.0).max(1.0).to_string();
    let sim = sim(&ns, &time_scale, &["--bandwidth", "1Gbit/s"]);
    let mut args = vec![
        "--max-running-plans",
        "1",
        "--ready-timeout",
        "300s",
        input.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (mut child, rx) = spawn_plan_run_with(&args, &bed.kubeconfig, Stdio::piped());
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr_pipe, &mut text);
        text
    });
    let signal_after = after.to_string();
    let runtime = tokio::runtime::Handle::current();
    let migrations_ns = ns.clone();
    let (child, rx, seen) = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let e: Value = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {signal_after} event within 90s: {seen:?}"));
            let hit = e["event"] == signal_after.as_str();
            seen.push(e);
            if hit {
                break;
            }
        }
        match action {
            MidRun::Interrupt => {
                let status = Command::new("kill")
                    .args(["-INT", &child.id().to_string()])
                    .status()
                    .unwrap();
                assert!(status.success(), "kill -INT");
            }
            MidRun::DeleteMigration => {
                let started = seen.iter().find(|e| e["event"] == "started").unwrap();
                let name = started["migration"].as_str().unwrap().to_string();
                runtime.block_on(delete_migration(&migrations_ns, &name));
            }
        }
        (child, rx, seen)
    })
    .await
    .unwrap();
    let (status, events) = tokio::task::spawn_blocking(move || {
        let mut child = child;
        let patience = if action == MidRun::Interrupt { 30 } else { 90 };
        let deadline = Instant::now() + Duration::from_secs(patience);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("plan-run still running {patience} s after the test's action");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut events = seen;
        events.extend(rx.iter());
        (status, events)
    })
    .await
    .unwrap();
    Interrupted {
        ns,
        plans,
        code: status.code(),
        stderr: stderr.join().unwrap(),
        events,
        _sim: sim,
        _m: m,
    }
}

async fn delete_migration(ns: &str, name: &str) {
    let api = forklift_api(ns, "Migration").await;
    api.delete(name, &Default::default()).await.unwrap();
}

/// Someone deletes the Migration plan-run follows: that plan ends as deleted (it used to be waited
/// for forever), the next one starts, and the run ends with findings (exit 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_migration_ends_its_plan_and_the_run_goes_on() {
    let _shared = RESTART.read().await;
    let run = act_mid_migration("plan-run-del", "vm-progress", &[], MidRun::DeleteMigration).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let started = of(&run.events, "started");
    assert_eq!(started.len(), 2, "{:?}", run.events);
    let deleted = of(&run.events, "deleted");
    assert_eq!(deleted.len(), 1, "{:?}", run.events);
    assert_eq!(deleted[0]["plan"], started[0]["plan"]);
    assert_eq!(
        deleted[0]["object"],
        format!("Migration {}", started[0]["migration"].as_str().unwrap())
    );
    // The other plan ran to its end after the deletion freed its place.
    let finished = of(&run.events, "plan-finished");
    assert_eq!(finished.len(), 1, "{:?}", run.events);
    assert_eq!(finished[0]["plan"], started[1]["plan"]);
    assert_eq!(finished[0]["outcome"], "Succeeded");
    assert!(
        run.stderr.contains("1 deleted") && run.stderr.contains("1 succeeded"),
        "{}",
        run.stderr
    );
}

/// A user who may apply and start plans but not list or watch Plans: plan-run cannot follow them,
/// and says so with exit 77 rather than waiting on a watch that can never succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_plan_watch_ends_the_run_with_exit_77() {
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    let _shared = RESTART.read().await;
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("plan-run-forbid").await;
    let m = manifests(&ns, &[]);
    let input = subset(&m, 1, &ns);
    let client = bed.client().await;
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "apply-without-watch", "namespace": ns},
        "rules": [
            {"apiGroups": ["", "forklift.konveyor.io"],
             "resources": ["secrets", "providers", "networkmaps", "storagemaps", "migrations",
                           "hooks", "hosts"],
             "verbs": ["*"]},
            {"apiGroups": ["forklift.konveyor.io"], "resources": ["plans"],
             "verbs": ["get", "create", "patch", "update"]},
            // Its Lease (taken before anything is applied).
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["*"]},
        ],
    }))
    .unwrap();
    kube::Api::<Role>::namespaced(client.clone(), &ns)
        .create(&Default::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "dave-apply-without-watch", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "apply-without-watch"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "dave"}],
    }))
    .unwrap();
    kube::Api::<RoleBinding>::namespaced(client, &ns)
        .create(&Default::default(), &binding)
        .await
        .unwrap();
    let dave = bed.user_kubeconfig("dave");
    let input_s = input.to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || {
        plan_run(&["--ready-timeout", "120s", &input_s], Some(&dave))
    })
    .await
    .unwrap();
    pipeline::assert_fails(
        &out,
        77,
        &format!("plan-run: watch Plans in namespace {ns}: "),
    );
    assert!(
        pipeline::stderr(&out).contains("forbidden"),
        "{}",
        pipeline::stderr(&out)
    );
    // Applied, but nothing started.
    assert!(of(&events(&out), "applied").len() > 1);
    assert!(migrations(&ns).await.is_empty());
}

fn true_condition(status: &Value, kind: &str) -> bool {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == kind && c["status"] == "True")
}

fn terminal(migration: &Value) -> Option<&'static str> {
    ["Succeeded", "Failed", "Canceled"]
        .into_iter()
        .find(|k| true_condition(&migration["status"], k))
}

/// Polls the namespace's only Migration until it ends; returns it.
async fn wait_migration_end(ns: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let list = migrations(ns).await;
        assert_eq!(list.len(), 1, "{list:?}");
        if terminal(&list[0]).is_some() {
            return list[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "Migration did not end in {secs}s: {}",
            list[0]["status"]
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn plan_object(ns: &str, name: &str) -> Value {
    let api = forklift_api(ns, "Plan").await;
    serde_json::to_value(api.get(name).await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_scheduling_and_leaves_the_running_migration_to_forklift() {
    let _shared = RESTART.read().await;
    // SIGINT right after the first start: before plan-run has waited on anything else.
    let run = interrupt_mid_migration("plan-run-int", "started", &[]).await;
    assert_eq!(run.code, Some(130), "{}", run.stderr);
    assert!(
        run.stderr.contains("1 still running")
            && run.stderr.contains("1 not started")
            && run
                .stderr
                .contains("interrupted, running migrations left to Forklift"),
        "{}",
        run.stderr
    );
    let started = of(&run.events, "started");
    assert_eq!(started.len(), 1, "{:?}", run.events);
    assert!(of(&run.events, "cancel-requested").is_empty());
    assert!(of(&run.events, "plan-finished").is_empty());
    // The Migration runs on, uncanceled, and no other was started.
    let list = migrations(&run.ns).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let migration = &list[0];
    assert_eq!(migration["metadata"]["name"], started[0]["migration"]);
    assert!(migration["spec"]["cancel"].is_null(), "{migration}");
    assert_eq!(terminal(migration), None, "{}", migration["status"]);
    // Forklift (forklift-sim) finishes it.
    let ended = wait_migration_end(&run.ns, 120).await;
    assert_eq!(terminal(&ended), Some("Succeeded"), "{}", ended["status"]);
    assert!(ended["spec"]["cancel"].is_null());
    let plan_name = started[0]["plan"].as_str().unwrap();
    let plan = plan_object(&run.ns, plan_name).await;
    assert!(
        true_condition(&plan["status"], "Succeeded"),
        "{}",
        plan["status"]
    );
    let spec_vms = run
        .plans
        .iter()
        .find(|p| p["metadata"]["name"] == plan_name)
        .unwrap()["spec"]["vms"]
        .as_array()
        .unwrap()
        .len();
    let vms = plan["status"]["migration"]["vms"].as_array().unwrap();
    assert_eq!(vms.len(), spec_vms);
    assert!(
        vms.iter().all(|v| true_condition(v, "Succeeded")),
        "{vms:?}"
    );
    assert_eq!(migrations(&run.ns).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_with_cancel_on_interrupt_cancels_the_unfinished_vms() {
    let _shared = RESTART.read().await;
    let run =
        interrupt_mid_migration("plan-run-intc", "vm-progress", &["--cancel-on-interrupt"]).await;
    assert_eq!(run.code, Some(130), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("interrupted, unfinished VMs of running migrations canceled"),
        "{}",
        run.stderr
    );
    let started = of(&run.events, "started");
    assert_eq!(started.len(), 1, "{:?}", run.events);
    let plan_name = started[0]["plan"].as_str().unwrap();
    let requested = of(&run.events, "cancel-requested");
    assert_eq!(requested.len(), 1, "{:?}", run.events);
    assert_eq!(requested[0]["plan"], plan_name);
    assert_eq!(requested[0]["migration"], started[0]["migration"]);
    let finished_before: BTreeSet<&str> = run
        .events
        .iter()
        .filter(|e| e["event"] == "vm-succeeded")
        .map(|e| e["vm_id"].as_str().unwrap())
        .collect();
    // Every VM not finished when plan-run stopped is in spec.cancel, by id (Forklift's match).
    let spec_vms: Vec<Value> = run
        .plans
        .iter()
        .find(|p| p["metadata"]["name"] == plan_name)
        .unwrap()["spec"]["vms"]
        .as_array()
        .unwrap()
        .clone();
    let ended = wait_migration_end(&run.ns, 120).await;
    let cancel: BTreeSet<&str> = ended["spec"]["cancel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let unfinished: BTreeSet<&str> = spec_vms
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .filter(|id| !finished_before.contains(id))
        .collect();
    assert!(!unfinished.is_empty());
    assert_eq!(cancel, unfinished);
    // Forklift's rules: a VM in spec.cancel ends Canceled; the plan is Canceled when no VM
    // succeeded (Succeeded if one did, Failed if one failed).
    let plan = plan_object(&run.ns, plan_name).await;
    let vms = plan["status"]["migration"]["vms"].as_array().unwrap();
    for vm in vms {
        let id = vm["id"].as_str().unwrap();
        if cancel.contains(id) {
            assert!(true_condition(vm, "Canceled"), "{vm}");
            assert_eq!(vm["phase"], "Completed");
        }
    }
    let expected = if vms.iter().any(|v| true_condition(v, "Failed")) {
        "Failed"
    } else if vms.iter().any(|v| true_condition(v, "Succeeded")) {
        "Succeeded"
    } else {
        "Canceled"
    };
    assert!(
        true_condition(&plan["status"], expected),
        "expected {expected}: {}",
        plan["status"]
    );
    assert_eq!(terminal(&ended), Some(expected), "{}", ended["status"]);
    assert!(!true_condition(&plan["status"], "Executing"));
    // Nothing else started.
    assert_eq!(migrations(&run.ns).await.len(), 1);
}

/// Runs plan-run with a --window that opens hours from now: it applies the plans and waits for
/// them to be Ready, then it is killed (it resumes, as after any kill). Checks that nothing
/// started, from every line it wrote.
fn make_plans_ready(input: &str, plans: usize, kubeconfig: &Path) {
    let hour = (jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .hour()
        + 6)
        % 24;
    let closed = format!("{hour:02}:00-{:02}:00", (hour + 1) % 24);
    // Killed below: its Lease runs out 2 s later (the run that follows waits for it).
    let (mut prep, rx) = spawn_plan_run(
        &[
            "--ready-timeout",
            "300s",
            "--window",
            &closed,
            "--lease-duration",
            "2s",
            input,
        ],
        kubeconfig,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while of(&seen, "ready").len() < plans {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(e) => seen.push(e),
            Err(_) => panic!(
                "{} of {plans} plans ready within 60 s: {seen:?}",
                of(&seen, "ready").len()
            ),
        }
    }
    prep.kill().unwrap();
    prep.wait().unwrap();
    // The rest of its output, to its end (the reader thread stops there).
    seen.extend(rx.iter());
    assert!(
        of(&seen, "started").is_empty(),
        "started outside the window: {seen:?}"
    );
}

/// forklift-sim's `--events` of this run, once `finished` migrations have ended (its reader
/// thread may lag plan-run's).
fn sim_events(sim: &kubebed::ForkliftSim, finished: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = sim.events();
        if of(&events, "migration_finished").len() >= finished {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "forklift-sim reported {} of {finished} migrations finished: {events:?}",
            of(&events, "migration_finished").len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The live schedule on forklift-sim's simulated clock: (makespan, hand-off delays). A hand-off
/// delay is what a start waited after the finish that freed its place (or, for the first
/// `max_running` starts, after the first start): time the simulation, whose scheduler acts at
/// once, does not have.
fn live_schedule(events: &[Value], max_running: usize) -> (f64, f64) {
    let secs = |e: &&Value| e["sim_secs"].as_f64().unwrap();
    let mut starts: Vec<f64> = of(events, "migration_started").iter().map(secs).collect();
    let finishes: Vec<f64> = of(events, "migration_finished").iter().map(secs).collect();
    starts.sort_by(f64::total_cmp);
    let first = starts[0];
    let last = finishes.iter().copied().fold(f64::MIN, f64::max);
    let handoff = starts
        .iter()
        .enumerate()
        .map(|(i, start)| {
            let freed = if i < max_running {
                first
            } else {
                finishes
                    .iter()
                    .copied()
                    .filter(|f| f <= start)
                    .fold(first, f64::max)
            };
            start - freed
        })
        .sum();
    (last - first, handoff)
}

/// `make bench` (part C) and capacity planning use `plan-run --simulate`; this checks it against
/// the real thing: the same plans, run live against forklift-sim on the real API server with time
/// scaled, take the time the simulation says. The live makespan is read on forklift-sim's clock
/// (simulated seconds, from its first Migration start to its last end); on a busy machine the
/// hand-offs (a plan ends, plan-run sees it and starts the next, forklift-sim picks that up) take
/// real time the simulation does not have, so the live run may exceed the simulation by them.
/// The run holds the other live tests off, so they do not slow it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulated_schedule_matches_a_live_run_on_forklift_sim() {
    let _exclusive = RESTART.write().await;
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("plan-run-makespan").await;
    let m = manifests(&ns, &["--max-size-per-plan", "1TiB"]);
    let input = subset(&m, 4, &ns);
    let records = m.forklift.with_file_name("owned.jsonl");
    std::fs::write(&records, owned()).unwrap();
    let (input, records) = (input.to_str().unwrap(), records.to_str().unwrap());
    let plans = plans_of(pipeline::read_lines(Path::new(input))).len();
    assert_eq!(plans, 4);

    let simulated = plan_run(
        &[
            "--simulate",
            "--bandwidth",
            "10Gbit/s",
            "--records",
            records,
            "--max-running-plans",
            "2",
            input,
        ],
        None,
    );
    assert_eq!(
        pipeline::code(&simulated),
        0,
        "{}",
        pipeline::stderr(&simulated)
    );
    let sim_events_offline = events(&simulated);
    let summary = of(&sim_events_offline, "simulation")[0].clone();
    let simulated_secs = summary["makespan_secs"].as_f64().unwrap();

    // About 40 s of real time: a 20 ms tick is then under a simulated second.
    let scale = (simulated_secs / 40.0).max(1.0);
    let scale_arg = format!("{scale:.3}");
    let sim = kubebed::ForkliftSim::start(
        bed,
        &pipeline::world_path(),
        &[
            "--namespace",
            &ns,
            "--time-scale",
            &scale_arg,
            "--bandwidth",
            "10Gbit/s",
            "--tick",
            "20ms",
            "--status-interval",
            "100ms",
            "--events",
            // The link model alone: the cluster's latency, x34, would blur the comparison.
            "--footprint",
            "vm-only",
        ],
    );
    // The simulation starts with every plan ready; live, plan-run starts plans as they become
    // ready, which can change the order. So first every plan becomes ready.
    let kubeconfig = bed.kubeconfig.clone();
    let prep_input = input.to_string();
    tokio::task::spawn_blocking(move || make_plans_ready(&prep_input, plans, &kubeconfig))
        .await
        .unwrap();

    let args = [
        "--max-running-plans",
        "2",
        "--ready-timeout",
        "300s",
        "--wait-for-lease",
        input,
    ];
    let (mut child, rx) = spawn_plan_run(&args, &bed.kubeconfig);
    let live_events = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(240);
        let mut seen = Vec::new();
        while of(&seen, "plan-finished").len() < plans {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "{} of {plans} plans finished within 240 s",
                    of(&seen, "plan-finished").len()
                )
            });
            seen.push(e);
        }
        let status = child.wait().unwrap();
        seen.extend(rx.iter());
        assert!(status.success(), "plan-run: {status}");
        seen
    })
    .await
    .unwrap();
    for e in of(&live_events, "plan-finished") {
        assert_eq!(e["outcome"], "Succeeded", "{e}");
    }
    let forklift_events = tokio::task::spawn_blocking(move || {
        let events = sim_events(&sim, plans);
        drop(sim);
        events
    })
    .await
    .unwrap();
    let (live_secs, handoff_secs) = live_schedule(&forklift_events, 2);

    let describe = |events: &[Value], time: &dyn Fn(&Value) -> f64| -> String {
        events
            .iter()
            .filter(|e| {
                [
                    "started",
                    "plan-finished",
                    "migration_started",
                    "migration_finished",
                ]
                .contains(&e["event"].as_str().unwrap_or(""))
            })
            .map(|e| format!("{:7.0} {} {}\n", time(e), e["event"], e["plan"]))
            .collect()
    };
    let sim_start = time_of(of(&sim_events_offline, "started")[0]);
    let offline = describe(&sim_events_offline, &|e| {
        (time_of(e) - sim_start).total(jiff::Unit::Second).unwrap()
    });
    let live = describe(&forklift_events, &|e| e["sim_secs"].as_f64().unwrap());
    eprintln!(
        "makespan of 4 plans, 2 at a time: simulated {simulated_secs:.0} s, live {live_secs:.0} s \
         (x{scale:.1}) of which {handoff_secs:.0} s hand-offs"
    );
    const TOLERANCE: f64 = 0.08;
    assert!(
        live_secs >= simulated_secs * (1.0 - TOLERANCE)
            && live_secs - handoff_secs <= simulated_secs * (1.0 + TOLERANCE),
        "simulated {simulated_secs:.0} s vs live {live_secs:.0} s ({handoff_secs:.0} s of \
         hand-offs)\nsimulated:\n{offline}live (forklift-sim's clock):\n{live}"
    );
}

/// A schedule worked out by hand, with no link model code: one plan of k VMs and d disks (d no
/// more than the link's contention threshold, 10; k within Forklift's 20 VM slots) starts every VM
/// at once; each spends the per-VM overhead O outside the transfer (half before, half after) and
/// the d transfers share the link evenly, so it carries the plan's B bytes at the full rate R
/// while any is left. The plan takes O + B / R, simulated and live (on forklift-sim's clock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_plan_takes_its_overhead_plus_its_bytes_over_the_link() {
    let _shared = RESTART.read().await;
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("plan-run-closed").await;
    let m = manifests(&ns, &["--max-size-per-plan", "1TiB"]);
    let disks = pipeline::by_id("disks");
    let world_vms = pipeline::by_id("vms");
    // Disks per plan (all of them: forklift-sim copies each), and whether any is a LUN.
    let disks_of = |p: &Value| -> Vec<&Value> {
        p["spec"]["vms"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|v| {
                world_vms[v["id"].as_str().unwrap()]["disk_attachments"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| disks[a["disk"].as_str().unwrap()])
            })
            .collect()
    };
    let plans = plans_of(pipeline::read_lines(&m.forklift));
    let plan = plans
        .iter()
        .filter(|p| p["spec"]["vms"].as_array().unwrap().len() >= 2)
        .find(|p| {
            let d = disks_of(p);
            d.len() <= 10 && d.iter().all(|d| d["storage_type"] == "image")
        })
        .expect("a plan of two or more VMs with at most 10 image disks");
    let name = plan["metadata"]["name"].as_str().unwrap();
    let total: u64 = disks_of(plan)
        .iter()
        .map(|d| d["provisioned_size"].as_u64().unwrap())
        .sum();
    const OVERHEAD_SECS: f64 = 120.0;
    const RATE: f64 = 10e9 / 8.0;
    let expected = OVERHEAD_SECS + total as f64 / RATE;

    // Only that plan, plus the objects it needs.
    let objects: Vec<Value> = pipeline::read_lines(&m.forklift)
        .into_iter()
        .filter(|o| o["kind"] != "Plan" || o["metadata"]["name"] == name)
        .map(|mut o| {
            if o["kind"] == "Plan" {
                o["spec"]["targetNamespace"] = Value::from(ns.as_str());
            }
            o
        })
        .collect();
    let input = m.forklift.with_file_name("one-plan.jsonl");
    write_lines(&input, &objects);
    let records = m.forklift.with_file_name("owned.jsonl");
    std::fs::write(&records, owned()).unwrap();
    let (input, records) = (input.to_str().unwrap(), records.to_str().unwrap());
    let link = ["--bandwidth", "10Gbit/s", "--per-vm-overhead", "120s"];

    let mut args = vec!["--simulate", "--records", records, input];
    args.extend_from_slice(&link);
    let simulated = plan_run(&args, None);
    assert_eq!(
        pipeline::code(&simulated),
        0,
        "{}",
        pipeline::stderr(&simulated)
    );
    let summary = of(&events(&simulated), "simulation")[0].clone();
    let makespan = summary["makespan_secs"].as_f64().unwrap();
    assert!(
        (makespan - expected).abs() <= 0.01,
        "{name}: {total} bytes: simulated {makespan} s, by hand {expected} s"
    );

    // Live: about 15 s of real time.
    let scale = format!("{:.3}", (expected / 15.0).max(1.0));
    let mut sim_args = vec![
        "--namespace",
        ns.as_str(),
        "--time-scale",
        &scale,
        "--tick",
        "20ms",
    ];
    // The link model alone (as the live-vs-simulated test): the cluster's own latency in the
    // populator pipeline would count --time-scale times over.
    sim_args.extend_from_slice(&[
        "--status-interval",
        "100ms",
        "--events",
        "--footprint",
        "vm-only",
    ]);
    sim_args.extend_from_slice(&link);
    let sim = kubebed::ForkliftSim::start(bed, &pipeline::world_path(), &sim_args);
    let kubeconfig = bed.kubeconfig.clone();
    let input_s = input.to_string();
    let out = tokio::task::spawn_blocking(move || {
        plan_run(&["--ready-timeout", "300s", &input_s], Some(&kubeconfig))
    })
    .await
    .unwrap();
    assert_eq!(pipeline::code(&out), 0, "{}", pipeline::stderr(&out));
    let forklift_events = tokio::task::spawn_blocking(move || sim_events(&sim, 1))
        .await
        .unwrap();
    let (live, _) = live_schedule(&forklift_events, 1);
    eprintln!(
        "{name}: {total} bytes: by hand {expected:.1} s, simulated {makespan:.1} s, live {live:.1} s"
    );
    // forklift-sim moves in ticks, but a phase that ends inside one hands the rest of it to the
    // next phase, so a late tick costs nothing (before that fix a loaded machine measured 613.8 s
    // against 523.7 s). The 2% left is for the cluster: the VirtualMachine must exist before the
    // VM is done, and its create has the creation phase (1.7 s of real time here) to return.
    assert!(
        (live - expected).abs() <= expected * 0.02,
        "{name}: {total} bytes: live {live:.1} s on forklift-sim's clock, by hand {expected:.1} s"
    );
}

/// The API of a custom kind in namespace `ns`, as admin.
async fn dynamic_api(
    ns: &str,
    group: &str,
    version: &str,
    kind: &str,
) -> kube::Api<kube::api::DynamicObject> {
    let bed = kubebed::Testbed::shared();
    kube::Api::namespaced_with(
        bed.client().await,
        ns,
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(group, version, kind)),
    )
}

async fn create(api: &kube::Api<kube::api::DynamicObject>, object: Value) {
    let object: kube::api::DynamicObject = serde_json::from_value(object).unwrap();
    api.create(&Default::default(), &object).await.unwrap();
}

/// plan-run reads the Forklift version the cluster runs (here the operator's ClusterServiceVersion,
/// as OLM installs it: forklift-operator.v<version>, spec.version) and warns, before it applies
/// anything, when the manifests were preflighted for another version; for the same one it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_running_another_forklift_version_is_warned_about_before_anything_is_applied() {
    let _shared = RESTART.read().await;
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("plan-run-version").await;
    let csv = dynamic_api(
        &ns,
        "operators.coreos.com",
        "v1alpha1",
        "ClusterServiceVersion",
    )
    .await;
    create(
        &csv,
        json!({"apiVersion": "operators.coreos.com/v1alpha1", "kind": "ClusterServiceVersion",
               "metadata": {"name": "forklift-operator.v2.12.5", "namespace": ns},
               "spec": {"displayName": "Forklift Operator", "version": "2.12.5"}}),
    )
    .await;
    let kubeconfig = bed.kubeconfig.clone();
    for (version, warned) in [("main", true), ("2.12", false)] {
        let m = manifests(&ns, &["--forklift-version", version]);
        let input = subset(&m, 1, &ns);
        let out = plan_run(&["--dry-run", input.to_str().unwrap()], Some(&kubeconfig));
        let err = pipeline::stderr(&out);
        assert_eq!(pipeline::code(&out), 0, "{err}");
        let warning = format!(
            "the cluster runs Forklift 2.12.5 (ClusterServiceVersion {ns}/forklift-operator.v2.12.5), whose rules are liftkit's 2.12; the manifests were preflighted for main"
        );
        assert_eq!(err.contains(&warning), warned, "{version}: {err}");
        // Before anything is applied: the warning is the first line.
        if warned {
            assert!(err.lines().next().unwrap().contains(&warning), "{err}");
        }
    }
}

/// Forklift's MacConflicts, live: a VirtualMachine in the cluster that has a MAC of a plan's VM
/// blocks the plan before plan-run starts it (the MAC from plan-gen's liftkit.io/vm-macs; the
/// check is v2.12.5 pkg/controller/plan/adapter/base/mac_conflicts.go:89, the message
/// validation.go:1221-1236). The MAC is one no demo VM has, so no other test meets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_in_the_cluster_with_a_mac_of_the_plan_blocks_it_before_it_starts() {
    let _shared = RESTART.read().await;
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("plan-run-mac").await;
    let m = manifests(&ns, &[]);
    let input = subset(&m, 1, &ns);
    let mut objects = pipeline::read_lines(&input);
    let plan = objects.iter_mut().find(|o| o["kind"] == "Plan").unwrap();
    let vm_id = plan["spec"]["vms"][0]["id"].as_str().unwrap().to_string();
    let mac = "02:00:00:00:be:ef";
    let mut macs = serde_json::Map::new();
    macs.insert(vm_id.clone(), json!([mac]));
    plan["metadata"]["annotations"]["liftkit.io/vm-macs"] =
        Value::from(Value::Object(macs).to_string());
    write_lines(&input, &objects);
    let vms = dynamic_api(&ns, "kubevirt.io", "v1", "VirtualMachine").await;
    create(
        &vms,
        json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
               "metadata": {"name": "squatter", "namespace": ns},
               "spec": {"runStrategy": "Halted", "template": {"spec": {"domain": {"devices": {
                   "interfaces": [{"name": "default", "macAddress": mac}]}}}}}}),
    )
    .await;
    let _sim = sim(&ns, "1200", &[]);
    let out = plan_run(
        &["--ready-timeout", "60s", input.to_str().unwrap()],
        Some(&bed.kubeconfig),
    );
    assert_eq!(pipeline::code(&out), 1, "{}", pipeline::stderr(&out));
    let events = events(&out);
    let blocked = of(&events, "blocked");
    assert_eq!(blocked.len(), 1, "{events:?}");
    assert_eq!(blocked[0]["conditions"][0]["type"], "MacConflicts");
    let message = blocked[0]["conditions"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("VM id:{vm_id} name:'"))
            && message.contains(&format!(
                "MACs {mac} conflict with destination VM {ns}/squatter"
            )),
        "{message}"
    );
    assert!(of(&events, "started").is_empty());
    assert!(migrations(&ns).await.is_empty());
}

/// forklift-sim says which Forklift it plays as the operator would (at main: a ForkliftController
/// and its forklift-controller Deployment, image tag `latest`); plan-run reads it and warns about
/// manifests preflighted for 2.12.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forklift_sim_at_main_is_read_from_its_controller_deployment() {
    let _shared = RESTART.read().await;
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("plan-run-main").await;
    let _sim = sim(&ns, "1200", &["--forklift-version", "main"]);
    let deployments = dynamic_api(&ns, "apps", "v1", "Deployment").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while deployments
        .get_opt("forklift-controller")
        .await
        .unwrap()
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "forklift-sim wrote no forklift-controller Deployment"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let m = manifests(&ns, &[]);
    let input = subset(&m, 1, &ns);
    let out = plan_run(
        &["--dry-run", input.to_str().unwrap()],
        Some(&bed.kubeconfig),
    );
    let err = pipeline::stderr(&out);
    assert_eq!(pipeline::code(&out), 0, "{err}");
    assert!(
        err.contains(&format!(
            "the cluster runs Forklift latest (Deployment {ns}/forklift-controller image quay.io/kubev2v/forklift-controller:latest), whose rules are liftkit's main; the manifests were preflighted for 2.12"
        )),
        "{err}"
    );
}

/// Each VM's copied disks (non-LUN; the provisioned size, or the actual size where larger), by
/// VM id, straight from the world file.
fn world_vm_disks() -> BTreeMap<String, Vec<u64>> {
    let disks = pipeline::by_id("disks");
    pipeline::world()["vms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|vm| {
            let sizes = vm["disk_attachments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| disks[a["disk"].as_str().unwrap()])
                .filter(|d| d["storage_type"] != "lun")
                .map(|d| {
                    let size = |k: &str| d[k].as_u64().unwrap_or(0);
                    size("provisioned_size").max(size("actual_size"))
                })
                .collect();
            (vm["id"].as_str().unwrap().to_string(), sizes)
        })
        .collect()
}

/// The demo world one VM a plan, simulated with --bandwidth auto on a named link
/// model: (the simulation's events, the disks of each VM planned).
fn simulate_auto(model: &str, extra: &[&str]) -> (Vec<Value>, Vec<Vec<u64>>) {
    let m = manifests("rhv-migration", &["--max-vms-per-plan", "1"]);
    let records = m.forklift.with_file_name("owned.jsonl");
    std::fs::write(&records, owned()).unwrap();
    let mut args = vec![
        "--simulate",
        "--bandwidth",
        "auto",
        "--link-model",
        model,
        "--start",
        "2026-11-27T22:00:00Z",
        "--records",
        records.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push(m.forklift.to_str().unwrap());
    let out = plan_run(&args, None);
    assert_eq!(pipeline::code(&out), 0, "{}", pipeline::stderr(&out));
    let disks = world_vm_disks();
    let planned = plans_of(pipeline::read_lines(&m.forklift))
        .iter()
        .flat_map(|p| p["spec"]["vms"].as_array().unwrap().clone())
        .map(|v| disks[v["id"].as_str().unwrap()].clone())
        .collect();
    (events(&out), planned)
}

/// The honest lower bound of a link without background load or storage caps, by hand: all bytes
/// at the best aggregate, and no less than the longest VM's own copy (its biggest disk at the
/// per-stream cap, its bytes at the best aggregate) plus the per-VM overhead.
fn bound_by_hand(vms: &[Vec<u64>], best_aggregate: f64, stream_cap: f64, overhead: f64) -> f64 {
    let total: u64 = vms.iter().flatten().sum();
    vms.iter()
        .map(|disks| {
            let biggest = disks.iter().copied().max().unwrap_or(0) as f64;
            let bytes = disks.iter().sum::<u64>() as f64;
            overhead + (biggest / stream_cap).max(bytes / best_aggregate)
        })
        .fold(total as f64 / best_aggregate, f64::max)
}

/// Seconds during which more than `most` plans ran, from the `started` and `plan-finished`
/// events, and the makespan (from the first start).
fn time_above(events: &[Value], most: usize) -> (f64, f64) {
    let mut changes: Vec<(jiff::Timestamp, i64)> = events
        .iter()
        .filter_map(|e| match e["event"].as_str() {
            Some("started") => Some((time_of(e), 1)),
            Some("plan-finished") => Some((time_of(e), -1)),
            _ => None,
        })
        .collect();
    changes.sort();
    let (first, last) = (changes[0].0, changes.last().unwrap().0);
    let (mut running, mut above, mut at) = (0i64, 0.0, first);
    for (t, delta) in changes {
        if running > most as i64 {
            above += (t - at).total(jiff::Unit::Second).unwrap();
        }
        running += delta;
        at = t;
    }
    (above, (last - first).total(jiff::Unit::Second).unwrap())
}

/// collapse-1g, as common::linkmodel's table writes it: 1 Gbit/s (125e6 B/s), 50e6 B/s a stream,
/// past 4 streams the aggregate falls as 4/n; 60 s per VM outside the copy. The best aggregate is
/// the whole link (3 streams at the cap would be 150e6). With one VM a plan the controller keeps
/// more than 4 VMs (each 1 to 3 disks) in flight only briefly, while it probes, and the makespan
/// comes within 1.10x of the bound (issue 15's target; counting VMs rather than disk copies it
/// was 1.41x).
#[test]
fn auto_on_a_link_collapsing_past_4_streams_keeps_few_vms_in_flight() {
    let (events, vms) = simulate_auto("collapse-1g", &[]);
    let summary = of(&events, "simulation")[0].clone();
    let bound = bound_by_hand(&vms, 125e6, 50e6, 60.0);
    let reported = summary["lower_bound_secs"].as_f64().unwrap();
    assert!(
        (reported - bound).abs() <= 0.01,
        "bound {reported} s, by hand {bound} s"
    );
    let makespan = summary["makespan_secs"].as_f64().unwrap();
    let (above, span) = time_above(&events, 4);
    eprintln!(
        "collapse-1g: makespan {makespan:.0} s, bound {bound:.0} s, above 4 VMs {above:.0} s"
    );
    assert!(
        above <= 0.10 * span,
        "more than 4 VMs for {above:.0} of {span:.0} s"
    );
    assert!(
        makespan <= 1.10 * bound,
        "makespan {makespan:.0} s, bound {bound:.0} s"
    );
    assert!(summary["adaptive"] == true && summary["peak_disk_limit"].as_u64().unwrap() <= 8);
    let decisions = of(&events, "concurrency");
    assert!(
        decisions.iter().any(|e| e["action"] == "back-off"),
        "it met the contention: {decisions:?}"
    );
    for e in decisions {
        assert!(
            e["rate_bytes_per_sec"].as_f64().unwrap() <= 125e6 + 1.0,
            "{e}"
        );
        assert!(!e["reason"].as_str().unwrap().is_empty(), "{e}");
    }
}

/// clean-10g: 10 Gbit/s (1.25e9 B/s), 400e6 B/s a stream, contention past 16 streams, 60 s per
/// VM: the link is full from 4 streams to 16, and the controller, knowing none of it, comes
/// within 10% of the bound. It still honours --max-running-plans.
#[test]
fn auto_on_a_clean_link_comes_within_10_percent_of_the_bound() {
    let (events, vms) = simulate_auto("clean-10g", &[]);
    let summary = of(&events, "simulation")[0].clone();
    let bound = bound_by_hand(&vms, 1.25e9, 400e6, 60.0);
    let reported = summary["lower_bound_secs"].as_f64().unwrap();
    assert!(
        (reported - bound).abs() <= 0.01,
        "bound {reported} s, by hand {bound} s"
    );
    let makespan = summary["makespan_secs"].as_f64().unwrap();
    assert!(
        makespan <= 1.10 * bound,
        "makespan {makespan:.0} s, bound {bound:.0} s"
    );

    let (events, _) = simulate_auto("clean-10g", &["--max-running-plans", "3"]);
    let (above, _) = time_above(&events, 3);
    assert_eq!(above, 0.0, "never more than 3 plans");
}

/// --bandwidth auto live: the same controller, fed from the Migrations' status, on forklift-sim
/// running each named link model (hidden from plan-run, which is not told it), takes about the
/// time its simulation does, and says what it decided: issue 15's "one live run per model". The
/// sample interval is the simulation's 60 s over the time scale, so both decide at the same
/// simulated instants. Measured on 2026-12-02, two runs each: clean-10g 3.1% and 3.2% apart
/// (x25), collapse-1g 1.9% and 3.0% (x220), storage-25g 5.3% and 0.6% (x46); counting VMs
/// rather than disk copies, collapse-1g had been 53% apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_live_on_forklift_sim_agrees_with_its_simulation() {
    let _exclusive = RESTART.write().await;
    auto_live_on("clean-10g").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_live_on_a_link_collapsing_past_4_streams_agrees_with_its_simulation() {
    let _exclusive = RESTART.write().await;
    auto_live_on("collapse-1g").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_live_on_a_storage_capped_link_agrees_with_its_simulation() {
    let _exclusive = RESTART.write().await;
    auto_live_on("storage-25g").await;
}

async fn auto_live_on(model: &str) {
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace(&format!("plan-run-auto-{model}")).await;
    let m = manifests(&ns, &["--max-vms-per-plan", "1"]);
    let input = subset(&m, 8, &ns);
    let records = m.forklift.with_file_name("owned.jsonl");
    std::fs::write(&records, owned()).unwrap();
    let (input, records) = (input.to_str().unwrap(), records.to_str().unwrap());
    let plans = plans_of(pipeline::read_lines(Path::new(input))).len();
    let simulated = plan_run(
        &[
            "--simulate",
            "--bandwidth",
            "auto",
            "--link-model",
            model,
            "--start",
            "2026-11-27T22:00:00Z",
            "--records",
            records,
            input,
        ],
        None,
    );
    assert_eq!(
        pipeline::code(&simulated),
        0,
        "{}",
        pipeline::stderr(&simulated)
    );
    let offline = events(&simulated);
    let simulated_secs = of(&offline, "simulation")[0]["makespan_secs"]
        .as_f64()
        .unwrap();
    let scale = (simulated_secs / 40.0).max(1.0);
    let scale_arg = format!("{scale:.3}");
    let sample = format!("{:.3}s", 60.0 / scale);
    let sim = kubebed::ForkliftSim::start(
        bed,
        &pipeline::world_path(),
        &[
            "--namespace",
            &ns,
            "--time-scale",
            &scale_arg,
            "--link-model",
            model,
            "--clock-start",
            "2026-11-27T22:00:00Z",
            "--tick",
            "20ms",
            "--status-interval",
            "100ms",
            "--events",
            "--footprint",
            "vm-only",
        ],
    );
    let kubeconfig = bed.kubeconfig.clone();
    let prep_input = input.to_string();
    tokio::task::spawn_blocking(move || make_plans_ready(&prep_input, plans, &kubeconfig))
        .await
        .unwrap();
    // make_plans_ready's killed run holds its Lease for 2 s more: wait for it.
    // The records, as in the simulation: both count the plans' disks from them.
    let args = [
        "--bandwidth",
        "auto",
        "--sample-interval",
        &sample,
        "--ready-timeout",
        "300s",
        "--wait-for-lease",
        "--records",
        records,
        input,
    ];
    let out = {
        let kubeconfig = bed.kubeconfig.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            plan_run(&args, Some(&kubeconfig))
        })
        .await
        .unwrap()
    };
    assert_eq!(pipeline::code(&out), 0, "{}", pipeline::stderr(&out));
    let live_events = events(&out);
    assert_eq!(of(&live_events, "plan-finished").len(), plans);
    assert!(
        !of(&live_events, "concurrency").is_empty(),
        "no decision reported: {live_events:?}"
    );
    let forklift_events = tokio::task::spawn_blocking(move || {
        let events = sim_events(&sim, plans);
        drop(sim);
        events
    })
    .await
    .unwrap();
    let (live_secs, _) = live_schedule(&forklift_events, plans);
    let error = (live_secs - simulated_secs).abs() / simulated_secs;
    eprintln!(
        "auto on {model}, {plans} plans: simulated {simulated_secs:.0} s, live {live_secs:.0} s \
         on forklift-sim's clock (x{scale:.1}): {:.1}% apart",
        error * 100.0
    );
    // Each plan started after the first is started a hand-off late, which the simulation does
    // not have: plan-run's create of the Migration and forklift-sim's next tick, real time that
    // counts x{scale} on forklift-sim's clock. A second of real time each is allowed: two test
    // beds running plan-run's live tests side by side on two cores measured 1.4 s (25% over the
    // simulation in all), one test bed on a loaded machine 0.5 s (9%). The live run is never
    // more than 10% faster.
    let handoffs = (plans - 1) as f64 * scale;
    assert!(
        live_secs >= simulated_secs * 0.90 && live_secs <= simulated_secs * 1.10 + handoffs,
        "simulated {simulated_secs:.0} s, live {live_secs:.0} s ({handoffs:.0} s allowed for \
         hand-offs)"
    );
}

/// Plans whose namespace the input itself creates (a fresh cluster, as `make demo` has): plan-run
/// applies that Namespace before it takes its Lease there (a Lease cannot be created in a
/// namespace that does not exist: 404), applies it once, and runs the plan to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_namespace_of_the_lease_comes_from_the_input_on_a_fresh_cluster() {
    let _shared = RESTART.read().await;
    let bed = kubebed::Testbed::shared();
    let ns = bed.unique_name("plan-run-fresh");
    let target = bed.namespace("plan-run-fresh-vms").await;
    let m = manifests(&ns, &[]);
    let plans = subset(&m, 1, &target);
    let mut objects = vec![
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    ];
    objects.extend(pipeline::read_lines(&plans));
    let input = plans.with_file_name("with-namespace.jsonl");
    write_lines(&input, &objects);
    let _sim = sim(&ns, "1200", &[]);
    let kubeconfig = bed.kubeconfig.clone();
    let out = tokio::task::spawn_blocking(move || {
        plan_run(
            &["--ready-timeout", "120s", input.to_str().unwrap()],
            Some(&kubeconfig),
        )
    })
    .await
    .unwrap();
    assert_eq!(pipeline::code(&out), 0, "{}", pipeline::stderr(&out));
    let events = events(&out);
    let applied = of(&events, "applied");
    assert_eq!(
        applied.len(),
        objects.len(),
        "each object once: {applied:?}"
    );
    assert_eq!(applied[0]["kind"], "Namespace", "{applied:?}");
    assert_eq!(of(&events, "plan-finished").len(), 1, "{events:?}");
    // The Lease was taken in that namespace, and given up at the end.
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(bed.client().await, &ns);
    let list = leases.list(&Default::default()).await.unwrap();
    assert_eq!(list.items.len(), 1, "{:?}", list.items);
    let spec = list.items[0].spec.clone().unwrap_or_default();
    assert_eq!(spec.holder_identity, None, "released: {spec:?}");
}

/// --print-job with --records and a --bandwidth: the Job needs no records (each Plan without the
/// total-disk-bytes annotation carries the bytes the records give, in the Secret), and it keeps
/// the scheduling flags given. The expected bytes are plan-gen's own annotation (a second
/// computation from the same records), removed from the input first.
#[test]
fn the_printed_job_carries_the_records_bytes_and_the_bandwidth() {
    let m = manifests("plan-run-job", &[]);
    let original = pipeline::read_lines(&m.forklift);
    let key = "liftkit.io/total-disk-bytes";
    let stripped: Vec<Value> = original
        .iter()
        .cloned()
        .map(|mut o| {
            if o["kind"] == "Plan" {
                o["metadata"]["annotations"]
                    .as_object_mut()
                    .unwrap()
                    .remove(key)
                    .expect("plan-gen annotates every Plan");
            }
            o
        })
        .collect();
    let input = m.forklift.with_file_name("stripped.jsonl");
    write_lines(&input, &stripped);
    let records = m.forklift.with_file_name("owned.jsonl");
    std::fs::write(&records, owned()).unwrap();
    let args = [
        "--print-job",
        "--bandwidth",
        "1250000000B/s",
        "--records",
        records.to_str().unwrap(),
        input.to_str().unwrap(),
    ];
    let out = plan_run(&args, None);
    assert_eq!(pipeline::code(&out), 0, "{}", pipeline::stderr(&out));
    let objects = events(&out);
    let job = objects.iter().find(|o| o["kind"] == "Job").unwrap();
    let job_args: Vec<&str> = job["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        job_args
            .windows(2)
            .any(|w| w == ["--bandwidth", "1250000000B/s"]),
        "{job_args:?}"
    );
    assert!(!job_args.contains(&"--records"), "{job_args:?}");
    let secret = objects.iter().find(|o| o["kind"] == "Secret").unwrap();
    let held: Vec<Value> = secret["stringData"]["objects.jsonl"]
        .as_str()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let plans = |objects: &[Value]| -> Vec<(String, Value)> {
        objects
            .iter()
            .filter(|o| o["kind"] == "Plan")
            .map(|o| {
                let name = o["metadata"]["name"].as_str().unwrap().to_string();
                (name, o["metadata"]["annotations"][key].clone())
            })
            .collect()
    };
    assert!(!plans(&original).is_empty());
    assert_eq!(plans(&held), plans(&original));
}
