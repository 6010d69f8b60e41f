//! The kube-testbed (tests/kube-testbed: a real kube-apiserver and etcd) from Rust tests: started
//! once per test binary, stopped and its directory removed when the test process exits (test
//! files declare `mod support;` too); forklift-sim runs as a child killed on drop; each test gets
//! its own namespace.
//!
//! ```ignore
//! #[path = "kubebed/mod.rs"] mod kubebed;
//! let bed = kubebed::Testbed::shared();
//! let ns = bed.namespace("my-test");                     // created, unique
//! let sim = kubebed::ForkliftSim::start(bed, &world, &["--time-scale", "600"]);
//! let client = bed.client().await;                       // kube::Client as admin
//! ```
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

pub struct Testbed {
    /// The test bed's directory (kubeconfigs, testbed.env, logs).
    pub dir: PathBuf,
    /// Admin kubeconfig (`system:masters`).
    pub kubeconfig: PathBuf,
    /// `https://127.0.0.1:PORT`
    pub url: String,
    pub admin_token: String,
    /// testbed.env as key/value pairs.
    pub env: Vec<(String, String)>,
    _temp: tempfile::TempDir,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

impl Testbed {
    /// Starts the test bed once per test binary (the watchdog stops it when this process exits).
    pub fn shared() -> &'static Testbed {
        static BED: OnceLock<Testbed> = OnceLock::new();
        BED.get_or_init(Testbed::start)
    }

    /// start.sh builds the binaries first when they are not cached (about 15 minutes on two
    /// cores): slow, but a test never skips for want of them. A failure panics with start.sh's
    /// own one-line error.
    fn start() -> Testbed {
        use std::io::Write;
        let temp = tempfile::Builder::new()
            .prefix("kubebed-")
            .tempdir()
            .expect("temp dir");
        // The bed lives in a static, never dropped: once this process has exited, stop it (the
        // watchdog below does too; stop.sh is safe twice) and remove its directory (etcd data,
        // a CA key, tokens).
        crate::support::remove_at_exit(
            temp.path(),
            Some(&repo().join("tests/kube-testbed/stop.sh")),
        );
        let mut child = Command::new(repo().join("tests/kube-testbed/start.sh"))
            .arg(temp.path())
            .env("KUBE_TESTBED_WATCH_PID", std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run tests/kube-testbed/start.sh");
        // Its log (a build's progress, too) goes on to our stderr as it comes; the last line,
        // the error of a failed start, goes into the panic message.
        let stderr = child.stderr.take().unwrap();
        let log = std::thread::spawn(move || {
            let mut last = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(std::io::stderr(), "{line}");
                if !line.trim().is_empty() {
                    last = line;
                }
            }
            last
        });
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout)
            .expect("read start.sh's stdout");
        let status = child.wait().expect("wait for start.sh");
        let last = log.join().unwrap_or_default();
        assert!(
            status.success(),
            "tests/kube-testbed/start.sh failed ({status}): {last}"
        );
        let kubeconfig = PathBuf::from(stdout.trim());
        let env: Vec<(String, String)> = std::fs::read_to_string(temp.path().join("testbed.env"))
            .expect("testbed.env")
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let get = |key: &str| {
            env.iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        Testbed {
            dir: temp.path().to_path_buf(),
            kubeconfig,
            url: get("KUBE_TESTBED_URL"),
            admin_token: get("KUBE_TESTBED_TOKEN_ADMIN"),
            env,
            _temp: temp,
        }
    }

    /// The kubeconfig of a test user (`alice`, `bob`, `carol`, `dave`): a token, no bindings.
    pub fn user_kubeconfig(&self, user: &str) -> PathBuf {
        self.dir.join(format!("kubeconfig-{user}"))
    }

    /// A kube client as admin.
    pub async fn client(&self) -> kube::Client {
        self.client_for(&self.kubeconfig).await
    }

    pub async fn client_for(&self, kubeconfig: &Path) -> kube::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let raw = kube::config::Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(raw, &Default::default())
            .await
            .expect("kubeconfig");
        kube::Client::try_from(config).expect("client")
    }

    /// Restarts the API server alone (same URL, credentials and data); returns once it is ready.
    pub fn restart_apiserver(&self) {
        let status = Command::new(repo().join("tests/kube-testbed/restart-apiserver.sh"))
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .expect("run restart-apiserver.sh");
        assert!(status.success(), "restart-apiserver.sh failed");
    }

    /// A unique namespace name starting with `prefix` (not created: see [`Testbed::namespace`]).
    pub fn unique_name(&self, prefix: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        format!(
            "{prefix}-{}-{}",
            std::process::id() % 100_000,
            N.fetch_add(1, Ordering::SeqCst)
        )
    }

    /// Creates a unique namespace and returns its name.
    pub async fn namespace(&self, prefix: &str) -> String {
        use k8s_openapi::api::core::v1::Namespace;
        let name = self.unique_name(prefix);
        let api: kube::Api<Namespace> = kube::Api::all(self.client().await);
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}
        }))
        .unwrap();
        api.create(&Default::default(), &ns)
            .await
            .expect("create namespace");
        name
    }
}

/// A running forklift-sim, killed on drop. Its stdout (`--events` lines) is collected.
pub struct ForkliftSim {
    child: Child,
    events: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl ForkliftSim {
    pub fn start(bed: &Testbed, world: &Path, extra_args: &[&str]) -> ForkliftSim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_forklift-sim"))
            .arg("--world")
            .arg(world)
            .args(extra_args)
            .env("KUBECONFIG", &bed.kubeconfig)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start forklift-sim");
        let events = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        ForkliftSim { child, events }
    }

    /// The `--events` lines so far.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.events.lock().unwrap().clone()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ForkliftSim {
    fn drop(&mut self) {
        self.stop();
    }
}

// ------------------------------------------------------------- objects on the test bed

/// A Forklift kind (forklift.konveyor.io/v1beta1).
pub fn forklift(kind: &str) -> kube::api::ApiResource {
    kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        "forklift.konveyor.io",
        "v1beta1",
        kind,
    ))
}

/// The resource of an object written as JSON (its apiVersion and kind).
pub fn resource_of(obj: &serde_json::Value) -> kube::api::ApiResource {
    let api_version = obj["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        group,
        version,
        obj["kind"].as_str().unwrap(),
    ))
}

/// Server-side apply of a namespaced object, as `kubectl apply --server-side` does.
pub async fn apply(client: &kube::Client, obj: &serde_json::Value) {
    use kube::api::{Api, DynamicObject, Patch, PatchParams};
    let ar = resource_of(obj);
    let ns = obj["metadata"]["namespace"].as_str().unwrap();
    let name = obj["metadata"]["name"].as_str().unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    api.patch(name, &PatchParams::apply("liftkit"), &Patch::Apply(obj))
        .await
        .unwrap_or_else(|e| panic!("apply {} {ns}/{name}: {e}", ar.kind));
}

/// Deletes the PersistentVolumes Forklift made for the direct LUN disks (annotated `lun`) of the
/// VMs `vm_ids`, with the claims bound to them, and waits until they are gone. Forklift v2.12.5
/// names such a volume after its disk and never deletes it (builder.go `LunPersistentVolumes`;
/// nothing in migration.go `cleanup`), so migrating the same VM again on this test bed is refused
/// with AlreadyExists, as on a real cluster, until an admin removes it: a test that moves the same
/// world twice does so in between. (pv-protection keeps a volume while it is Bound: its claim goes
/// first.)
pub async fn delete_lun_volumes(client: &kube::Client, vm_ids: &std::collections::HashSet<String>) {
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
    let api: kube::Api<PersistentVolume> = kube::Api::all(client.clone());
    let ours = |pv: &PersistentVolume| {
        let meta = &pv.metadata;
        let lun = meta
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("lun"));
        let vm = meta.labels.as_ref().and_then(|l| l.get("vmID"));
        lun && vm.is_some_and(|v| vm_ids.contains(v))
    };
    // Deletes are repeated every round: a call lost to a loaded API server must not leave a
    // Bound volume behind (the binder releases a volume only once its claim is gone).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        let list = api.list(&Default::default()).await.expect("list PVs");
        let left: Vec<&PersistentVolume> = list.items.iter().filter(|pv| ours(pv)).collect();
        if left.is_empty() {
            return;
        }
        let mut states = Vec::new();
        for pv in &left {
            let name = pv.metadata.name.clone().unwrap_or_default();
            let mut state = format!(
                "{name}: phase {:?}, finalizers {:?}, deleting {}",
                pv.status.as_ref().and_then(|s| s.phase.as_ref()),
                pv.metadata.finalizers,
                pv.metadata.deletion_timestamp.is_some()
            );
            if let Some(claim) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
                let ns = claim.namespace.clone().unwrap_or_default();
                let claims: kube::Api<PersistentVolumeClaim> =
                    kube::Api::namespaced(client.clone(), &ns);
                let claim_name = claim.name.clone().unwrap_or_default();
                let deleted = claims.delete(&claim_name, &Default::default()).await;
                state += &format!(", claim {ns}/{claim_name}: {:?}", deleted.err());
            }
            if pv.metadata.deletion_timestamp.is_none()
                && let Err(e) = api.delete(&name, &Default::default()).await
            {
                state += &format!(", delete: {e}");
            }
            states.push(state);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "LUN volumes not gone after 180 s: {states:?}; kube-controller-manager: {}",
            controller_manager_state()
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Whether the shared test bed's kube-controller-manager runs, with its log's last lines: what a
/// test waiting on a controller (PV binding, quotas, garbage collection) says when it times out.
pub fn controller_manager_state() -> String {
    let dir = &Testbed::shared().dir;
    let pid = std::fs::read_to_string(dir.join("kube-controller-manager.pid")).unwrap_or_default();
    let alive = !pid.trim().is_empty()
        && Command::new("kill")
            .args(["-0", pid.trim()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    let log = std::fs::read_to_string(dir.join("kube-controller-manager.log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(5).collect();
    format!("pid {} alive {alive}; last log lines {tail:?}", pid.trim())
}
