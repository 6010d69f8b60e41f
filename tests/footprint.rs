//! Forklift's footprint in the owners' namespaces (issue 11), on the real test bed: a kube-apiserver
//! with kube-controller-manager (quota, GC, PV binding), forklift-sim creating what Forklift v2.12.5
//! creates there, and liftkit's own quotas and LimitRanges in the way.

#[path = "kubebed/mod.rs"]
mod kubebed;
mod pipeline;
mod support;

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, ResourceQuota};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Waits up to `secs` for `check` to give Some.
async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn pvc(name: &str, size: &str) -> PersistentVolumeClaim {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    }))
    .unwrap()
}

/// The refusal's message, or a panic naming what was unexpectedly accepted.
fn refused<T: std::fmt::Debug>(result: Result<T, kube::Error>, what: &str) -> String {
    match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "{what}: {status:?}");
            status.message
        }
        other => panic!("{what}: expected a 403 refusal, got {other:?}"),
    }
}

/// Before the controller manager, the test bed accepted two 112Gi PVCs under a 179Gi quota and a
/// pod without requests under a requests.cpu quota (issue 11). A real cluster refuses both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_bed_enforces_quotas_as_a_cluster_does() {
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("quota").await;
    let client = bed.client().await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
    let quota: ResourceQuota = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "liftkit"},
        "spec": {"hard": {"requests.storage": "179Gi", "requests.cpu": "20"}}
    }))
    .unwrap();
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    // The quota controller fills status.hard and status.used; admission enforces from then on.
    eventually(30, "quota status", || async {
        let q = quotas.get("liftkit").await.ok()?;
        let status = q.status?;
        (status.hard?.len() == 2 && status.used.is_some()).then_some(())
    })
    .await;

    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    pvcs.create(&PostParams::default(), &pvc("first", "112Gi"))
        .await
        .expect("the first 112Gi PVC fits in 179Gi");
    let message = refused(
        pvcs.create(&PostParams::default(), &pvc("second", "112Gi"))
            .await,
        "a second 112Gi PVC",
    );
    assert!(
        message.contains("exceeded quota: liftkit") && message.contains("requests.storage"),
        "{message}"
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "no-requests"},
        "spec": {"containers": [{"name": "c", "image": "example.com/populator:1"}]}
    }))
    .unwrap();
    let message = refused(
        pods.create(&PostParams::default(), &pod).await,
        "a pod without requests",
    );
    assert!(
        message.contains("failed quota: liftkit") && message.contains("requests.cpu"),
        "{message}"
    );

    // Usage is real: deleting the first PVC frees its 112Gi (once its protection finalizer is
    // removed by the PVC protection controller) and the second fits.
    pvcs.delete("first", &Default::default()).await.unwrap();
    eventually(60, "the second PVC after the first is gone", || async {
        pvcs.create(&PostParams::default(), &pvc("second", "112Gi"))
            .await
            .ok()
    })
    .await;
}

/// The garbage collector runs: an object owned by a deleted one goes too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_bed_collects_owned_objects() {
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("gc").await;
    let maps: Api<ConfigMap> = Api::namespaced(bed.client().await, &ns);
    let owner: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}
    }))
    .unwrap();
    let owner = maps.create(&PostParams::default(), &owner).await.unwrap();
    let owned: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "owned", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
            "name": "owner", "uid": owner.metadata.uid.unwrap()}]}
    }))
    .unwrap();
    maps.create(&PostParams::default(), &owned).await.unwrap();
    maps.delete("owner", &Default::default()).await.unwrap();
    eventually(60, "the owned ConfigMap collected", || async {
        match maps.get_opt("owned").await {
            Ok(None) => Some(()),
            _ => None,
        }
    })
    .await;
}

// ------------------------------------------------------------- the pipeline through the footprint

const MAP: &str = "tests/fixtures/demo-networks.map";
const URL: &str = "https://engine.example.com/ovirt-engine/api";

/// A tool's run: exit code, stdout, stderr.
fn tool(bin: &str, args: &[&str], stdin: &[u8]) -> std::process::Output {
    pipeline::run_with_env(bin, args, stdin, &[("NO_COLOR", "1")])
}

/// The demo lab through ovirt-dump and owner-group: the records every planning tool reads.
fn owned() -> &'static [u8] {
    static OWNED: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    OWNED.get_or_init(|| pipeline::owned(pipeline::demo_records()))
}

/// liftkit's manifests for the demo lab: rbac-gen with capacity-calc's quotas, and plan-gen's
/// Forklift objects in `forklift_ns`.
struct Manifests {
    dir: tempfile::TempDir,
    rbac: std::path::PathBuf,
    plans: std::path::PathBuf,
}

fn manifests(forklift_ns: &str, quota_args: &[&str]) -> Manifests {
    let dir = tempfile::tempdir().unwrap();
    let (quotas, rbac, plans) = (
        dir.path().join("quotas.jsonl"),
        dir.path().join("rbac.jsonl"),
        dir.path().join("plans.jsonl"),
    );
    let mut args = vec!["--quota", "--storage-map", "*=trident-nfs"];
    args.extend_from_slice(quota_args);
    let out = tool(env!("CARGO_BIN_EXE_capacity-calc"), &args, owned());
    assert_eq!(
        pipeline::code(&out),
        0,
        "capacity-calc: {}",
        pipeline::stderr(&out)
    );
    std::fs::write(&quotas, &out.stdout).unwrap();
    let out = tool(
        env!("CARGO_BIN_EXE_rbac-gen"),
        &[
            "--strip-domain",
            "--quota",
            quotas.to_str().unwrap(),
            "-o",
            rbac.to_str().unwrap(),
        ],
        owned(),
    );
    assert_eq!(
        pipeline::code(&out),
        0,
        "rbac-gen: {}",
        pipeline::stderr(&out)
    );
    let out = pipeline::run_with_env(
        env!("CARGO_BIN_EXE_plan-gen"),
        &[
            "--url",
            URL,
            "--namespace",
            forklift_ns,
            "--map-file",
            MAP,
            "--with-secret",
            "--user",
            "admin@internal",
            "--insecure-skip-verify",
            "-q",
            "-o",
            plans.to_str().unwrap(),
        ],
        owned(),
        &[("OVIRT_PASSWORD", "ovirt-sim-demo")],
    );
    assert!(
        matches!(pipeline::code(&out), 0 | 1),
        "plan-gen: {}",
        pipeline::stderr(&out)
    );
    Manifests { dir, rbac, plans }
}

/// A Kubernetes quantity in bytes or millicores (the forms quota status uses: plain, m, Ki..Ei,
/// k..E); parsed here, not by k8s-openapi or liftkit.
fn quantity(text: &str) -> f64 {
    let units: [(&str, f64); 14] = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
        ("", 1.0),
    ];
    let (unit, factor) = units.iter().find(|(u, _)| text.ends_with(u)).unwrap();
    let number: f64 = text[..text.len() - unit.len()]
        .parse()
        .unwrap_or_else(|_| panic!("{text}"));
    number * factor
}

/// Samples taken, resources seen used above hard, the highest used/hard per namespace and resource.
type Samples = (
    u64,
    Vec<String>,
    std::collections::BTreeMap<(String, String), f64>,
);

/// Samples every ResourceQuota's status until stopped.
struct QuotaSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<Samples>,
}

impl QuotaSampler {
    fn start(client: kube::Client) -> QuotaSampler {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let api: Api<ResourceQuota> = Api::all(client);
            let (mut samples, mut over, mut peak) =
                (0u64, Vec::new(), std::collections::BTreeMap::new());
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok(list) = api.list(&Default::default()).await {
                    samples += 1;
                    for q in list.items {
                        let ns = q.metadata.namespace.clone().unwrap_or_default();
                        let status = q.status.unwrap_or_default();
                        let (hard, used) = (
                            status.hard.unwrap_or_default(),
                            status.used.unwrap_or_default(),
                        );
                        for (resource, limit) in &hard {
                            let Some(u) = used.get(resource) else {
                                continue;
                            };
                            let (u, h) = (quantity(&u.0), quantity(&limit.0));
                            if u > h {
                                over.push(format!("{ns}: {resource} used {} > hard {}", u, h));
                            }
                            if h > 0.0 {
                                let r =
                                    peak.entry((ns.clone(), resource.clone())).or_insert(0.0f64);
                                *r = r.max(u / h);
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            (samples, over, peak)
        });
        QuotaSampler { stop, task }
    }

    async fn finish(
        self,
    ) -> (
        u64,
        Vec<String>,
        std::collections::BTreeMap<(String, String), f64>,
    ) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.task.await.unwrap()
    }
}

/// Runs plan-run to its end, at most `PLAN_RUN_LIMIT`: a VM that waits for good (a refusal
/// Forklift never retries) fails the test with plan-run's last words, instead of hanging it.
fn plan_run(kubeconfig: &std::path::Path, args: &[&str]) -> std::process::Output {
    const PLAN_RUN_LIMIT: Duration = Duration::from_secs(900);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_plan-run"))
        // The limits the test gives, not --bandwidth auto's.
        .args(["--bandwidth", "fixed"])
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut from: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = from.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + PLAN_RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let Some(status) = status else {
        let tail =
            |b: &[u8]| String::from_utf8_lossy(&b[b.len().saturating_sub(3000)..]).into_owned();
        panic!(
            "plan-run did not finish within {} s; its last events:\n{}\nstderr:\n{}",
            PLAN_RUN_LIMIT.as_secs(),
            tail(&stdout),
            tail(&stderr)
        );
    };
    std::process::Output {
        status,
        stdout,
        stderr,
    }
}

fn events_of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

/// The done-when of issue 11: on the real API server and controller manager, the demo pipeline
/// with rbac-gen's quotas and LimitRanges migrates every planned VM, and no namespace's quota
/// usage is ever above its hard limit (sampled all along).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_migrates_through_liftkit_quotas_without_exceeding_them() {
    let bed = kubebed::Testbed::shared();
    let forklift_ns = bed.namespace("mtv").await;
    let m = manifests(&forklift_ns, &["--headroom", "10%"]);
    let plans: Vec<Value> = pipeline::read_lines(&m.plans)
        .into_iter()
        .filter(|o| o["kind"] == "Plan")
        .collect();
    let vms: usize = plans
        .iter()
        .map(|p| p["spec"]["vms"].as_array().unwrap().len())
        .sum();
    assert!(vms > 50, "the demo plans {vms} VMs");
    let _sim = kubebed::ForkliftSim::start(
        bed,
        &pipeline::world_path(),
        &[
            "--namespace",
            &forklift_ns,
            "--time-scale",
            "1200",
            "--status-interval",
            "300ms",
        ],
    );
    let sampler = QuotaSampler::start(bed.client().await);
    let out = tokio::task::spawn_blocking({
        let (kubeconfig, rbac, plans) = (bed.kubeconfig.clone(), m.rbac.clone(), m.plans.clone());
        move || {
            plan_run(
                &kubeconfig,
                &[
                    "--ready-timeout",
                    "120s",
                    rbac.to_str().unwrap(),
                    plans.to_str().unwrap(),
                ],
            )
        }
    })
    .await
    .unwrap();
    let (samples, over, peak) = sampler.finish().await;
    let err = pipeline::stderr(&out);
    assert_eq!(pipeline::code(&out), 0, "{err}");
    let events = pipeline::lines(&out);
    assert_eq!(events_of(&events, "vm-succeeded").len(), vms, "{err}");
    assert!(
        events_of(&events, "refusal").is_empty(),
        "{:?}",
        events_of(&events, "refusal")
    );
    assert!(over.is_empty(), "quota usage above hard: {over:?}");
    assert!(samples >= 10, "only {samples} quota samples during the run");
    // The quotas were in play, not idle: storage usage came close to its limit somewhere.
    let storage = peak
        .iter()
        .filter(|((_, r), _)| r == "requests.storage")
        .map(|(_, v)| *v)
        .fold(0.0, f64::max);
    assert!(storage > 0.5, "storage quotas barely used: {peak:?}");

    let _ = &m.dir;
}

// ------------------------------------------------------------- refusals plan-run names

const MIB: u64 = 1 << 20;

/// Forklift v2.12.5 pkg/controller/plan/util/utils.go `CalculateSpaceWithOverhead` for a
/// Filesystem volume with the default FILESYSTEM_OVERHEAD 10 (pkg/settings/migration.go): the
/// provisioned size aligned to 1 MiB, divided by 0.9, rounded up.
fn populator_pvc_bytes(provisioned: u64) -> u64 {
    let aligned = provisioned.div_ceil(MIB) * MIB;
    (aligned as f64 / 0.9).ceil() as u64
}

/// The final PVC bytes of a world VM's disks (from tests/worlds/demo.json, read as plain JSON).
fn world_vm_pvc_bytes(name: &str) -> Vec<u64> {
    let world = pipeline::world();
    let vm = world["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap();
    vm["disk_attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let disk = world["disks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["id"] == a["disk"])
                .unwrap();
            populator_pvc_bytes(disk["provisioned_size"].as_u64().unwrap())
        })
        .collect()
}

/// plan-gen's objects with one Plan left, for VM `vm` alone, targeting `target`.
fn one_vm_plan(m: &Manifests, vm: &str, target: &str) -> std::path::PathBuf {
    let mut kept = false;
    let objects: Vec<Value> = pipeline::read_lines(&m.plans)
        .into_iter()
        .filter_map(|mut o| {
            if o["kind"] != "Plan" {
                return Some(o);
            }
            let vms = o["spec"]["vms"].as_array().unwrap().clone();
            let one: Vec<Value> = vms.into_iter().filter(|v| v["name"] == vm).collect();
            if one.is_empty() || kept {
                return None;
            }
            kept = true;
            o["spec"]["vms"] = Value::from(one);
            o["spec"]["targetNamespace"] = Value::from(target);
            o["metadata"]["annotations"]
                .as_object_mut()
                .map(|a| a.remove("liftkit.io/total-disk-bytes"));
            Some(o)
        })
        .collect();
    assert!(kept, "no plan holds {vm}");
    let path = m.dir.path().join(format!("one-{vm}.jsonl"));
    let text: String = objects.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// plan-run in the background; its events as they come.
struct Running {
    child: std::process::Child,
    rx: std::sync::mpsc::Receiver<Value>,
}

impl Running {
    fn start(kubeconfig: &std::path::Path, args: &[&str]) -> Running {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_plan-run"))
            // The limits the test gives, not --bandwidth auto's.
            .args(["--bandwidth", "fixed"])
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(v) = serde_json::from_str(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        Running { child, rx }
    }

    /// The first event of `kind` within `secs`.
    fn wait(&self, kind: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(e) if e["event"] == kind => return e,
                Ok(_) => {}
                Err(e) => panic!("no {kind} event within {secs} s ({e})"),
            }
        }
    }

    /// SIGINT, as Ctrl-C; the exit code and stderr.
    fn interrupt(mut self) -> (i32, String) {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        let mut err = String::new();
        use std::io::Read;
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status.code().unwrap_or(-1), err)
    }
}

async fn set_quota(ns: &str, hard: Value) {
    let client = kubebed::Testbed::shared().client().await;
    let api: Api<ResourceQuota> = Api::namespaced(client, ns);
    let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota",
                       "metadata": {"name": "tight", "namespace": ns}, "spec": {"hard": hard}});
    api.patch(
        "tight",
        &kube::api::PatchParams::apply("footprint-test").force(),
        &kube::api::Patch::Apply(&quota),
    )
    .await
    .unwrap();
    // Enforced once the quota controller has written the new hard limits into the status.
    eventually(60, "quota status", || {
        let api = api.clone();
        let want = hard.clone();
        async move {
            let status = api.get("tight").await.ok()?.status?;
            let got = status.hard?;
            // The limits asked for, by value (the controller may write them in another form).
            want.as_object()?
                .iter()
                .all(|(k, v)| {
                    got.get(k)
                        .is_some_and(|q| quantity(&q.0) == quantity(v.as_str().unwrap_or("")))
                })
                .then_some(())
        }
    })
    .await;
}

/// A storage quota 1 GiB below what a VM's copy needs at its peak: the populator's prime PVC is
/// refused by the API server (its Event, Forklift v2.12.5 lib-volume-populator), the VM waits, and
/// plan-run names the namespace, the PVC and the quota. Canceled, the quota raised, a rerun with
/// --retry-failed migrates it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_quota_below_the_copy_peak_is_named_and_a_retry_after_the_fix_succeeds() {
    let bed = kubebed::Testbed::shared();
    let forklift_ns = bed.namespace("mtv-q").await;
    let target = bed.namespace("tight-q").await;
    let m = manifests(&forklift_ns, &[]);
    let plan = one_vm_plan(&m, "ba_shared_vm_1", &target);
    let steady: u64 = world_vm_pvc_bytes("ba_shared_vm_1").iter().sum();
    // Every disk of the VM is copied at once: its target PVCs plus a prime PVC each.
    let peak = 2 * steady;
    set_quota(
        &target,
        json!({"requests.storage": format!("{}", peak - (1 << 30))}),
    )
    .await;
    let _sim = kubebed::ForkliftSim::start(
        bed,
        &pipeline::world_path(),
        &[
            "--namespace",
            &forklift_ns,
            "--time-scale",
            "600",
            "--status-interval",
            "300ms",
        ],
    );
    let args = [
        "--ready-timeout",
        "120s",
        "--cancel-on-interrupt",
        m.rbac.to_str().unwrap(),
        plan.to_str().unwrap(),
    ];
    let run = Running::start(&bed.kubeconfig, &args);
    let refusal = run.wait("refusal", 180);
    assert_eq!(refusal["target_namespace"], target.as_str(), "{refusal}");
    assert_eq!(refusal["cause"], "quota", "{refusal}");
    let message = refusal["message"].as_str().unwrap();
    assert!(
        message.contains("exceeded quota: tight") && message.contains("requests.storage"),
        "{refusal}"
    );
    assert!(
        refusal["object"]
            .as_str()
            .unwrap()
            .contains("PersistentVolumeClaim/"),
        "{refusal}"
    );
    let (code, err) = run.interrupt();
    assert_eq!(code, 130, "{err}");
    assert!(
        err.contains("exceeded quota: tight"),
        "the summary names the refusal: {err}"
    );

    // The fix: room for the canceled attempt's PVCs and a new copy. Then --retry-failed.
    set_quota(
        &target,
        json!({"requests.storage": format!("{}", 3 * peak)}),
    )
    .await;
    let mut retry = vec!["--retry-failed"];
    retry.extend_from_slice(&args);
    let out = tokio::task::spawn_blocking({
        let kubeconfig = bed.kubeconfig.clone();
        let retry: Vec<String> = retry.iter().map(|s| s.to_string()).collect();
        move || {
            plan_run(
                &kubeconfig,
                &retry.iter().map(String::as_str).collect::<Vec<_>>(),
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(pipeline::code(&out), 0, "{}", pipeline::stderr(&out));
    assert_eq!(events_of(&pipeline::lines(&out), "vm-succeeded").len(), 1);
}

/// A storage class whose pool is exhausted: the PVC stays Pending with ProvisioningFailed and
/// plan-run names it; forklift-sim restarted with a larger pool (the storage team's fix), a rerun
/// attaches to the running migration and finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_storage_pool_is_named_and_the_migration_goes_on_once_space_is_added() {
    let bed = kubebed::Testbed::shared();
    let forklift_ns = bed.namespace("mtv-c").await;
    let target = bed.namespace("full-c").await;
    let m = manifests(&forklift_ns, &[]);
    let plan = one_vm_plan(&m, "ba_shared_vm_1", &target);
    let sim_args = |capacity: &str| -> Vec<String> {
        [
            "--namespace",
            &forklift_ns,
            "--time-scale",
            "600",
            "--status-interval",
            "300ms",
            "--storage-capacity",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("trident-nfs={capacity}")])
        .collect()
    };
    let small = sim_args("20Gi");
    let mut sim = kubebed::ForkliftSim::start(
        bed,
        &pipeline::world_path(),
        &small.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let args = [
        "--ready-timeout",
        "120s",
        m.rbac.to_str().unwrap(),
        plan.to_str().unwrap(),
    ];
    let run = Running::start(&bed.kubeconfig, &args);
    let refusal = run.wait("refusal", 180);
    assert_eq!(refusal["target_namespace"], target.as_str(), "{refusal}");
    assert_eq!(refusal["cause"], "capacity", "{refusal}");
    assert_eq!(refusal["reason"], "ProvisioningFailed", "{refusal}");
    assert!(
        refusal["message"].as_str().unwrap().contains("trident-nfs"),
        "{refusal}"
    );
    let (code, err) = run.interrupt();
    assert_eq!(code, 130, "{err}");

    sim.stop();
    let large = sim_args("10Ti");
    let _sim = kubebed::ForkliftSim::start(
        bed,
        &pipeline::world_path(),
        &large.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let out = tokio::task::spawn_blocking({
        let kubeconfig = bed.kubeconfig.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        move || {
            plan_run(
                &kubeconfig,
                &args.iter().map(String::as_str).collect::<Vec<_>>(),
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(pipeline::code(&out), 0, "{}", pipeline::stderr(&out));
    // The migration went on without plan-run (the cluster holds its state): the rerun follows it
    // to the end or finds it already succeeded.
    let events = pipeline::lines(&out);
    let finished = events_of(&events, "plan-finished");
    let skipped = events_of(&events, "skipped");
    assert!(
        (finished.len() == 1 && finished[0]["outcome"] == "Succeeded")
            || (skipped.len() == 1 && skipped[0]["reason"] == "succeeded in an earlier run"),
        "{events:?}"
    );
}

/// A hand-made quota on requests.cpu and no LimitRange, with a ForkliftController whose populator
/// pods carry no requests (populator_container_requests_cpu/memory emptied; Forklift v2.12.5
/// cmd/populator-controller `buildResources` then sets none): the API server refuses the
/// populator pod ("must specify requests.cpu"), and plan-run names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_quota_without_a_limit_range_refuses_request_less_populator_pods_and_is_named() {
    let bed = kubebed::Testbed::shared();
    let forklift_ns = bed.namespace("mtv-p").await;
    let target = bed.namespace("cpu-p").await;
    let m = manifests(&forklift_ns, &[]);
    let plan = one_vm_plan(&m, "ba_shared_vm_1", &target);
    set_quota(&target, json!({"requests.cpu": "40"})).await;
    let _sim = kubebed::ForkliftSim::start(
        bed,
        &pipeline::world_path(),
        &[
            "--namespace",
            &forklift_ns,
            "--time-scale",
            "600",
            "--status-interval",
            "300ms",
            "--populator-container-requests-cpu",
            "",
            "--populator-container-requests-memory",
            "",
            "--populator-container-limits-cpu",
            "",
            "--populator-container-limits-memory",
            "",
        ],
    );
    let args = [
        "--ready-timeout",
        "120s",
        m.rbac.to_str().unwrap(),
        plan.to_str().unwrap(),
    ];
    let run = Running::start(&bed.kubeconfig, &args);
    let refusal = run.wait("refusal", 180);
    assert_eq!(refusal["cause"], "quota", "{refusal}");
    assert!(
        refusal["object"]
            .as_str()
            .unwrap()
            .contains("PersistentVolumeClaim/"),
        "{refusal}"
    );
    let message = refusal["message"].as_str().unwrap();
    assert!(
        message.contains("failed quota: tight") && message.contains("requests.cpu"),
        "{refusal}"
    );
    let (code, err) = run.interrupt();
    assert_eq!(code, 130, "{err}");
}
