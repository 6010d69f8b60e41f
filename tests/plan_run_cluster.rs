//! plan-run in the cluster, on a real kube-apiserver (tests/kube-testbed) with forklift-sim: the
//! objects --print-job writes, applied as the admin, give the Job's ServiceAccount what plan-run
//! does and nothing else (SubjectAccessReviews against a list written out here); plan-run runs as
//! that ServiceAccount with a pod's environment (token and CA files, service host and port); and
//! one plan-run per plan set holds a Lease, which a second one waits for or is refused, and which
//! a killed holder loses after its duration.

#[path = "kubebed/mod.rs"]
mod kubebed;
mod pipeline;
mod support;

use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PLAN_RUN: &str = env!("CARGO_BIN_EXE_plan-run");
const URL: &str = "https://engine.example.com/ovirt-engine/api";
const MAP: &str = "tests/fixtures/demo-networks.map";

/// rbac-gen's and plan-gen's output for the demo world (Forklift objects in `ns`), cut to the
/// first `plans` plans, their VMs landing in `ns`.
struct Manifests {
    dir: tempfile::TempDir,
    rbac: PathBuf,
    forklift: PathBuf,
}

fn manifests(ns: &str, plans: usize) -> Manifests {
    let owned = pipeline::owned(pipeline::demo_records());
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
        &owned,
    );
    assert!(out.status.success(), "rbac-gen: {}", pipeline::stderr(&out));
    let all = dir.path().join("all.jsonl");
    let out = pipeline::run_with_env(
        env!("CARGO_BIN_EXE_plan-gen"),
        &[
            "--url",
            URL,
            "--namespace",
            ns,
            "--map-file",
            &repo().join(MAP).to_string_lossy(),
            "--with-secret",
            "--user",
            "admin@internal",
            "--insecure-skip-verify",
            "-q",
            "-o",
            all.to_str().unwrap(),
        ],
        &owned,
        &[("OVIRT_PASSWORD", "ovirt-sim-demo")],
    );
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "plan-gen: {}",
        pipeline::stderr(&out)
    );
    let mut kept = 0;
    let objects: Vec<Value> = pipeline::read_lines(&all)
        .into_iter()
        .filter_map(|mut o| {
            if o["kind"] == "Plan" {
                kept += 1;
                if kept > plans {
                    return None;
                }
                o["spec"]["targetNamespace"] = Value::from(ns);
            }
            Some(o)
        })
        .collect();
    let text: String = objects.iter().map(|o| format!("{o}\n")).collect();
    std::fs::write(&forklift, text).unwrap();
    Manifests {
        dir,
        rbac,
        forklift,
    }
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn plan_names(path: &Path) -> Vec<String> {
    pipeline::read_lines(path)
        .into_iter()
        .filter(|o| o["kind"] == "Plan")
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

fn sim(ns: &str, time_scale: &str) -> kubebed::ForkliftSim {
    kubebed::ForkliftSim::start(
        kubebed::Testbed::shared(),
        &pipeline::world_path(),
        &[
            "--namespace",
            ns,
            "--time-scale",
            time_scale,
            "--status-interval",
            "300ms",
        ],
    )
}

fn dynamic(client: &kube::Client, obj: &Value) -> kube::Api<kube::api::DynamicObject> {
    let ar = kubebed::resource_of(obj);
    match obj["metadata"]["namespace"].as_str() {
        Some(ns) => kube::Api::namespaced_with(client.clone(), ns, &ar),
        None => kube::Api::all_with(client.clone(), &ar),
    }
}

/// Server-side apply as the admin, cluster-scoped objects too.
async fn apply_all(client: &kube::Client, objects: &[Value]) {
    use kube::api::{Patch, PatchParams};
    for obj in objects {
        let name = obj["metadata"]["name"].as_str().unwrap();
        dynamic(client, obj)
            .patch(
                name,
                &PatchParams::apply("test-admin").force(),
                &Patch::Apply(obj),
            )
            .await
            .unwrap_or_else(|e| panic!("apply {} {name}: {e}", obj["kind"]));
    }
}

async fn migrations(ns: &str) -> Vec<Value> {
    let client = kubebed::Testbed::shared().client().await;
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(client, ns, &kubebed::forklift("Migration"));
    api.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|m| serde_json::to_value(m).unwrap())
        .collect()
}

async fn leases(ns: &str) -> Vec<Value> {
    let client = kubebed::Testbed::shared().client().await;
    let api: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(client, ns);
    api.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|l| serde_json::to_value(l).unwrap())
        .collect()
}

/// Migrations per plan: every plan ran exactly once.
fn assert_one_migration_each(list: &[Value], plans: &[String]) {
    let mut per_plan = std::collections::BTreeMap::<String, usize>::new();
    for m in list {
        *per_plan
            .entry(m["spec"]["plan"]["name"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let expected: std::collections::BTreeMap<String, usize> =
        plans.iter().map(|p| (p.clone(), 1)).collect();
    assert_eq!(per_plan, expected, "Migrations per plan");
}

/// A plan-run in the background: its events on a channel, its stderr collected.
struct Running {
    child: Child,
    events: std::sync::mpsc::Receiver<Value>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    /// The stderr reader, which ends with the pipe.
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd
            .env("NO_COLOR", "1")
            .env("TZ", "UTC")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, events) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                eprintln!("[plan-run] {line}");
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Running {
            child,
            events,
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_event(&self, kind: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = self
                .events
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {kind} event within {secs}s: {}", self.stderr()));
            if e["event"] == kind {
                return e;
            }
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit: the exit code and every event line not yet read.
    fn finish(mut self, secs: u64) -> (i32, Vec<Value>, String) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("plan-run still running after {secs}s: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        // Both readers end with their pipes: every line is in.
        let rest: Vec<Value> = self.events.iter().collect();
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        (status.code().unwrap_or(-1), rest, self.stderr())
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

fn with_kubeconfig(args: &[&str]) -> Command {
    let mut cmd = Command::new(PLAN_RUN);
    cmd.args(args)
        .env("KUBECONFIG", &kubebed::Testbed::shared().kubeconfig);
    cmd
}

fn of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

// ------------------------------------------------------------------ --print-job

/// `plan-run --print-job --format yaml`, read back with an independent YAML parser.
fn print_job(m: &Manifests, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "--print-job",
        "--format",
        "yaml",
        "--job-image",
        "example.test/liftkit:1",
    ];
    args.extend_from_slice(extra);
    let rbac = m.rbac.to_str().unwrap().to_string();
    let forklift = m.forklift.to_str().unwrap().to_string();
    args.extend([rbac.as_str(), forklift.as_str()]);
    let out = pipeline::run(PLAN_RUN, &args, b"");
    assert_eq!(pipeline::code(&out), 0, "{}", pipeline::stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .collect()
}

fn the<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} expected");
    found[0]
}

/// One access a SubjectAccessReview asks about: verb, group, resource, namespace, name.
type Access = (String, String, String, Option<String>, Option<String>);

fn access(verb: &str, group: &str, resource: &str, ns: Option<&str>, name: Option<&str>) -> Access {
    (
        verb.to_string(),
        group.to_string(),
        resource.to_string(),
        ns.map(str::to_string),
        name.map(str::to_string),
    )
}

/// The resource of a kind in the demo manifests, written out (not kube's pluraliser).
fn plural(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "Namespace" => ("", "namespaces"),
        "Secret" => ("", "secrets"),
        "ResourceQuota" => ("", "resourcequotas"),
        "LimitRange" => ("", "limitranges"),
        "Role" => ("rbac.authorization.k8s.io", "roles"),
        "RoleBinding" => ("rbac.authorization.k8s.io", "rolebindings"),
        "Provider" => ("forklift.konveyor.io", "providers"),
        "NetworkMap" => ("forklift.konveyor.io", "networkmaps"),
        "StorageMap" => ("forklift.konveyor.io", "storagemaps"),
        "Plan" => ("forklift.konveyor.io", "plans"),
        other => panic!("the demo manifests hold no {other}"),
    }
}

/// What plan-run does with these manifests, written out from its documented behaviour: apply
/// (server-side apply: create and patch, by name) every input object, with escalate on the Roles
/// and bind on the roles the RoleBindings name; watch Plans and Migrations and create, read and
/// cancel (patch) Migrations in the plans' namespace; its Lease; Events in the target namespace;
/// and cluster-wide the reads of the Forklift version and of the VMs' MACs.
fn expected_accesses(inputs: &[Value], ns: &str, lease: &str) -> Vec<Access> {
    let mut out = Vec::new();
    for o in inputs {
        let (group, resource) = plural(o["kind"].as_str().unwrap());
        let on = o["metadata"]["namespace"].as_str();
        let name = o["metadata"]["name"].as_str();
        out.push(access("create", group, resource, on, name));
        out.push(access("patch", group, resource, on, name));
        if o["kind"] == "Role" {
            out.push(access("escalate", group, resource, on, name));
        }
        if o["kind"] == "RoleBinding" {
            let role = if o["roleRef"]["kind"] == "Role" {
                "roles"
            } else {
                "clusterroles"
            };
            out.push(access(
                "bind",
                group,
                role,
                on,
                o["roleRef"]["name"].as_str(),
            ));
        }
    }
    let f = "forklift.konveyor.io";
    for verb in ["list", "watch"] {
        out.push(access(verb, f, "plans", Some(ns), None));
        out.push(access(verb, "", "events", Some(ns), None));
    }
    for verb in ["create", "get", "list", "patch", "watch"] {
        out.push(access(verb, f, "migrations", Some(ns), None));
    }
    out.push(access(
        "create",
        "coordination.k8s.io",
        "leases",
        Some(ns),
        None,
    ));
    out.push(access(
        "get",
        "coordination.k8s.io",
        "leases",
        Some(ns),
        Some(lease),
    ));
    out.push(access(
        "update",
        "coordination.k8s.io",
        "leases",
        Some(ns),
        Some(lease),
    ));
    out.push(access(
        "list",
        "operators.coreos.com",
        "clusterserviceversions",
        None,
        None,
    ));
    out.push(access("list", f, "forkliftcontrollers", None, None));
    out.push(access(
        "get",
        "apps",
        "deployments",
        None,
        Some("forklift-controller"),
    ));
    out.push(access("list", "kubevirt.io", "virtualmachines", None, None));
    out
}

/// Asks the API server, as the admin, whether the ServiceAccount may do `what`.
async fn allowed(client: &kube::Client, ns: &str, sa: &str, what: &Access) -> bool {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
    };
    let (verb, group, resource, on, name) = what;
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r.to_string(), Some(s.to_string())),
        None => (resource.clone(), None),
    };
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!("system:serviceaccount:{ns}:{sa}")),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated".into(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.clone()),
                group: Some(group.clone()),
                resource: Some(resource),
                subresource,
                namespace: on.clone(),
                name: name.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: kube::Api<SubjectAccessReview> = kube::Api::all(client.clone());
    let answer = api.create(&Default::default(), &review).await.unwrap();
    answer.status.is_some_and(|s| s.allowed)
}

/// A token for the ServiceAccount (TokenRequest, as the kubelet asks for a pod's).
async fn token(client: &kube::Client, ns: &str, sa: &str) -> String {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    let api: kube::Api<ServiceAccount> = kube::Api::namespaced(client.clone(), ns);
    let request = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                         "spec": {"expirationSeconds": 3600}});
    let answer: TokenRequest = api
        .create_subresource("token", sa, &Default::default(), &request)
        .await
        .unwrap();
    answer.status.unwrap().token.unwrap()
}

/// plan-run as a pod runs it: no kubeconfig, KUBERNETES_SERVICE_HOST/PORT, and the token, CA and
/// namespace files where kube's Config::incluster reads them (a fixed path, no override), placed
/// there in a private mount namespace (`unshare`: a user namespace mapping this user to root and
/// a mount namespace; the host's /var/run is untouched).
fn in_cluster(dir: &Path, ns: &str, token: &str, args: &[String]) -> Command {
    let bed = kubebed::Testbed::shared();
    let secrets = dir.join("run/secrets/kubernetes.io/serviceaccount");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("token"), token).unwrap();
    std::fs::copy(
        bed.env
            .iter()
            .find(|(k, _)| k == "KUBE_TESTBED_CA")
            .unwrap()
            .1
            .clone(),
        secrets.join("ca.crt"),
    )
    .unwrap();
    std::fs::write(secrets.join("namespace"), ns).unwrap();
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let (host, port) = bed
        .url
        .strip_prefix("https://")
        .and_then(|a| a.rsplit_once(':'))
        .unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg("mount --bind \"$0\" /var/run && exec \"$@\"")
        .arg(dir.join("run"))
        .arg(PLAN_RUN)
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", &home)
        .env("KUBERNETES_SERVICE_HOST", host)
        .env("KUBERNETES_SERVICE_PORT", port);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_job_runs_plan_run_with_what_it_needs_and_nothing_else() {
    let bed = kubebed::Testbed::shared();
    let client = bed.client().await;
    let ns = bed.namespace("job").await;
    let m = manifests(&ns, 2);
    let objects = print_job(&m, &["--max-running-plans", "2", "--lease-duration", "5s"]);
    let sa = the(&objects, "ServiceAccount")["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        the(&objects, "ServiceAccount")["metadata"]["namespace"],
        ns.as_str()
    );
    let job = the(&objects, "Job");
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], sa.as_str());
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "example.test/liftkit:1");
    let secret = the(&objects, "Secret");
    let mounted = pod["volumes"][0]["secret"]["secretName"].as_str().unwrap();
    assert_eq!(secret["metadata"]["name"], mounted);
    // The Secret holds the input, object for object.
    let inputs: Vec<Value> = pipeline::read_lines(&m.rbac)
        .into_iter()
        .chain(pipeline::read_lines(&m.forklift))
        .collect();
    let held: Vec<Value> = secret["stringData"]["objects.jsonl"]
        .as_str()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(held, inputs);
    apply_all(&client, &objects).await;

    // plan-run runs as the ServiceAccount, with the Job's own arguments, to the end: every call
    // it made was allowed (a 403 would have ended it with 77).
    let _sim = sim(&ns, "1200");
    let mut args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let manifests = m.dir.path().join("held.jsonl");
    std::fs::write(
        &manifests,
        secret["stringData"]["objects.jsonl"].as_str().unwrap(),
    )
    .unwrap();
    let last = args.last_mut().unwrap();
    assert!(last.ends_with("objects.jsonl"), "{args:?}");
    *last = manifests.to_str().unwrap().to_string();
    let token = token(&client, &ns, &sa).await;
    let pod_dir = m.dir.path().join("pod");
    let run = Running::spawn(in_cluster(&pod_dir, &ns, &token, &args));
    let (code, events, stderr) = tokio::task::spawn_blocking(move || run.finish(240))
        .await
        .unwrap();
    assert_eq!(code, 0, "{stderr}");
    let plans = plan_names(&m.forklift);
    assert_eq!(of(&events, "plan-finished").len(), plans.len(), "{stderr}");
    assert_one_migration_each(&migrations(&ns).await, &plans);
    // Its Lease, released at the exit: the one Lease in the namespace, held by nobody.
    let found = leases(&ns).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let lease = found[0]["metadata"]["name"].as_str().unwrap().to_string();
    assert!(found[0]["spec"]["holderIdentity"].is_null(), "{}", found[0]);

    // Everything plan-run does is allowed...
    for what in expected_accesses(&inputs, &ns, &lease) {
        assert!(allowed(&client, &ns, &sa, &what).await, "denied: {what:?}");
    }
    // ... and the roles grant nothing else: every verb of every rule is on that list.
    let expected: BTreeSet<Access> = expected_accesses(&inputs, &ns, &lease)
        .into_iter()
        .collect();
    for role in objects
        .iter()
        .filter(|o| o["kind"] == "Role" || o["kind"] == "ClusterRole")
    {
        let on = role["metadata"]["namespace"].as_str();
        for rule in role["rules"].as_array().unwrap() {
            let names: Vec<Option<&str>> = match rule["resourceNames"].as_array() {
                Some(names) => names.iter().map(|n| n.as_str()).collect(),
                None => vec![None],
            };
            for verb in rule["verbs"].as_array().unwrap() {
                for name in &names {
                    let what = access(
                        verb.as_str().unwrap(),
                        rule["apiGroups"][0].as_str().unwrap(),
                        rule["resources"][0].as_str().unwrap(),
                        on,
                        *name,
                    );
                    assert!(expected.contains(&what), "granted beyond need: {what:?}");
                }
            }
        }
    }
    // A sample of what it must not do.
    let owner_ns = inputs.iter().find(|o| o["kind"] == "Role").unwrap()["metadata"]["namespace"]
        .as_str()
        .unwrap()
        .to_string();
    let plan = plans[0].as_str();
    let denied = [
        access("delete", "", "namespaces", None, Some(&ns)),
        access("create", "", "namespaces", None, Some("not-in-the-input")),
        access("get", "", "secrets", Some("default"), None),
        access("list", "", "secrets", Some(&ns), None),
        access("create", "", "pods/exec", Some(&ns), Some("any")),
        access("create", "", "pods", Some(&ns), None),
        access(
            "delete",
            "forklift.konveyor.io",
            "plans",
            Some(&ns),
            Some(plan),
        ),
        access(
            "patch",
            "forklift.konveyor.io",
            "plans",
            Some(&ns),
            Some("not-in-the-input"),
        ),
        access(
            "delete",
            "forklift.konveyor.io",
            "migrations",
            Some(&ns),
            None,
        ),
        access(
            "update",
            "coordination.k8s.io",
            "leases",
            Some(&ns),
            Some("another-lease"),
        ),
        access(
            "create",
            "rbac.authorization.k8s.io",
            "roles",
            Some(&ns),
            Some("liftkit-owner"),
        ),
        access(
            "create",
            "kubevirt.io",
            "virtualmachines",
            Some(&owner_ns),
            Some("vm"),
        ),
        access(
            "list",
            "forklift.konveyor.io",
            "plans",
            Some("default"),
            None,
        ),
        access(
            "create",
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            None,
            Some("x"),
        ),
    ];
    for what in denied {
        assert!(
            !allowed(&client, &ns, &sa, &what).await,
            "allowed: {what:?}"
        );
    }
}

// ------------------------------------------------------------------ the Lease

/// What plan-run names a holder: this machine's host name and the process id.
fn holder(pid: u32) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    format!("{}/{pid}", host.trim())
}

async fn the_lease(ns: &str) -> Value {
    let found = leases(ns).await;
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_plan_run_is_refused_naming_the_holder_or_waits_until_it_lets_go() {
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("lease-wait").await;
    let m = manifests(&ns, 3);
    let _sim = sim(&ns, "50");
    let input = m.forklift.to_str().unwrap().to_string();
    let args = [
        "--max-running-plans",
        "1",
        "--ready-timeout",
        "300s",
        "--lease-duration",
        "30s",
        input.as_str(),
    ];
    // The first holds its Lease for 300 s: the third can take over early only by a release,
    // never by the Lease running out, however slow the machine.
    let mut first_args = args.to_vec();
    first_args[5] = "300s";
    let first = Running::spawn(with_kubeconfig(&first_args));
    first.wait_event("started", 90);
    let lease = the_lease(&ns).await;
    assert_eq!(
        lease["spec"]["holderIdentity"],
        holder(first.pid()).as_str()
    );
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 300);

    // A second one is refused at once, naming the holder, having applied nothing.
    let second = Running::spawn(with_kubeconfig(&args));
    let (code, events, stderr) = tokio::task::spawn_blocking(move || second.finish(30))
        .await
        .unwrap();
    assert_eq!(code, 69, "{stderr}");
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("held by {}", holder(first.pid())))
            && stderr.contains("--wait-for-lease"),
        "{stderr}"
    );

    // A third waits for it...
    let mut waiting: Vec<&str> = args.to_vec();
    waiting.push("--wait-for-lease");
    let third = Running::spawn(with_kubeconfig(&waiting));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !third.stderr().contains("waiting") {
        assert!(Instant::now() < deadline, "not waiting: {}", third.stderr());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        third.events.try_recv().is_err(),
        "the third ran while the first held the Lease"
    );
    // ... until the first, stopped by SIGTERM (as a Job's pod is), gives the Lease up: long
    // before the 300 s it would take to run out.
    first.signal("TERM");
    let (code, _, stderr) = tokio::task::spawn_blocking(move || first.finish(30))
        .await
        .unwrap();
    assert_eq!(code, 143, "{stderr}");
    let let_go = Instant::now();
    let lease = the_lease(&ns).await;
    assert!(
        lease["spec"]["holderIdentity"].is_null(),
        "not released: {lease}"
    );
    let third = tokio::task::spawn_blocking(move || {
        // Its first event: it applies once it holds the Lease.
        third.wait_event("applied", 120);
        third
    })
    .await
    .unwrap();
    eprintln!(
        "the third took over {:?} after the first let go",
        let_go.elapsed()
    );
    assert!(let_go.elapsed() < Duration::from_secs(120));
    let third_pid = third.pid();
    let (code, _, stderr) = tokio::task::spawn_blocking(move || third.finish(300))
        .await
        .unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert_one_migration_each(&migrations(&ns).await, &plan_names(&m.forklift));
    let lease = the_lease(&ns).await;
    assert!(lease["spec"]["holderIdentity"].is_null(), "{lease}");
    // Two changes of holder: the first to nobody is a release, nobody to the third a transition,
    // as client-go counts them (every acquisition by another identity).
    assert_eq!(
        lease["spec"]["leaseTransitions"], 1,
        "{lease} (third: {third_pid})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_loses_the_lease_after_its_duration_and_the_next_resumes() {
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("lease-kill").await;
    let m = manifests(&ns, 2);
    let _sim = sim(&ns, "50");
    let input = m.forklift.to_str().unwrap().to_string();
    let args = [
        "--max-running-plans",
        "1",
        "--ready-timeout",
        "300s",
        "--lease-duration",
        "4s",
        "--wait-for-lease",
        input.as_str(),
    ];
    let mut first = Running::spawn(with_kubeconfig(&args));
    first.wait_event("started", 90);
    let first_pid = first.pid();
    first.child.kill().unwrap(); // SIGKILL: no release
    first.child.wait().unwrap();
    let killed = Instant::now();
    let lease = the_lease(&ns).await;
    assert_eq!(lease["spec"]["holderIdentity"], holder(first_pid).as_str());

    let next = Running::spawn(with_kubeconfig(&args));
    let next = tokio::task::spawn_blocking(move || {
        next.wait_event("applied", 60);
        next
    })
    .await
    .unwrap();
    let waited = killed.elapsed();
    eprintln!("the next one took over {waited:?} after the kill");
    // The killed holder's Lease ran out at its last renewal plus its duration: the next one took
    // it then or later (as client-go, on its own clock: this machine's), and not long after (it
    // looks again every 4/3 s; 120 s tells "never" apart on a loaded machine).
    let micro = |v: &Value| -> jiff::Timestamp { v.as_str().unwrap().parse().unwrap() };
    let expiry = micro(&lease["spec"]["renewTime"])
        + jiff::SignedDuration::from_secs(lease["spec"]["leaseDurationSeconds"].as_i64().unwrap());
    let taken = the_lease(&ns).await;
    let acquired = micro(&taken["spec"]["acquireTime"]);
    assert_eq!(taken["spec"]["holderIdentity"], holder(next.pid()).as_str());
    assert!(
        acquired >= expiry,
        "acquired {acquired}, the killed holder's Lease ran to {expiry}: {lease}"
    );
    assert!(
        waited < Duration::from_secs(120),
        "took the Lease {waited:?} after the kill"
    );
    assert!(
        next.stderr()
            .contains(&format!("held by {}", holder(first_pid))),
        "{}",
        next.stderr()
    );
    let (code, _, stderr) = tokio::task::spawn_blocking(move || next.finish(300))
        .await
        .unwrap();
    assert_eq!(code, 0, "{stderr}");
    // It resumed from the cluster's state: the first's Migration followed, none created twice.
    assert_one_migration_each(&migrations(&ns).await, &plan_names(&m.forklift));
    let lease = the_lease(&ns).await;
    assert!(lease["spec"]["holderIdentity"].is_null(), "{lease}");
    assert_eq!(lease["spec"]["leaseTransitions"], 1, "{lease}");
}

// ------------------------------------------------------------------ the terminal

/// On a terminal (a pseudo-terminal from util-linux's `script`, events to a file): the status
/// line, a bar per plan, the failed plan's bar marked failed, and a summary naming the failed VM
/// with the flag that retries it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_a_failed_plan_reads_as_failed_and_the_summary_names_its_vm() {
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("terminal").await;
    let m = manifests(&ns, 2);
    let plans: Vec<Value> = pipeline::read_lines(&m.forklift)
        .into_iter()
        .filter(|o| o["kind"] == "Plan")
        .collect();
    let victim = plans[0]["spec"]["vms"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let _sim = kubebed::ForkliftSim::start(
        bed,
        &pipeline::world_path(),
        &[
            "--namespace",
            &ns,
            "--time-scale",
            "300",
            "--status-interval",
            "300ms",
            "--fail-vm",
            &victim,
        ],
    );
    let events = m.dir.path().join("events.jsonl");
    let command = format!(
        "exec '{PLAN_RUN}' --ready-timeout 60s --max-running-plans 1 '{}' > '{}'",
        m.forklift.display(),
        events.display()
    );
    let kubeconfig = bed.kubeconfig.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("script")
            .args(["--quiet", "--return", "--command", &command, "/dev/null"])
            .env("KUBECONFIG", kubeconfig)
            .env("NO_COLOR", "1")
            .env("TZ", "UTC")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{screen}");
    let failed_plan = format!("{ns}/{}", plans[0]["metadata"]["name"].as_str().unwrap());
    assert!(screen.contains(" running · "), "no status line: {screen}");
    assert!(screen.contains(" done"), "{screen}");
    // The failed plan's bar: its name, and the outcome marked, not a full bar reading done.
    let bar = screen
        .split(['\r', '\n'])
        .rfind(|l| l.contains(&failed_plan) && l.contains('['))
        .unwrap_or_else(|| panic!("no bar for {failed_plan}: {screen}"));
    eprintln!("the failed plan's bar: {bar}");
    assert!(bar.contains("✗ FAILED"), "{bar}");
    assert!(
        screen.contains(" ETA "),
        "no rate and ETA on the bars: {screen}"
    );
    // The summary names the VM and the flag.
    let summary = screen
        .split(['\r', '\n'])
        .find(|l| l.contains("did not migrate"))
        .unwrap_or_else(|| panic!("no summary of failed VMs: {screen}"));
    assert!(summary.contains("--retry-failed"), "{summary}");
    assert!(
        screen.split(['\r', '\n']).any(|l| l
            .trim_start()
            .starts_with(&format!("{failed_plan}: {victim} ("))),
        "{screen}"
    );
    // stdout stayed data: events only.
    assert!(!pipeline::read_lines(&events).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_run_whose_lease_is_taken_over_stops() {
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("lease-lost").await;
    let m = manifests(&ns, 2);
    let _sim = sim(&ns, "50");
    let input = m.forklift.to_str().unwrap().to_string();
    let args = [
        "--max-running-plans",
        "1",
        "--ready-timeout",
        "300s",
        "--lease-duration",
        "3s",
        input.as_str(),
    ];
    let first = Running::spawn(with_kubeconfig(&args));
    first.wait_event("started", 90);
    // Another holder writes itself into the Lease (as a plan-run that found it run out would).
    let client = bed.client().await;
    let api: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(client, &ns);
    let name = the_lease(&ns).await["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let patch = json!({"spec": {"holderIdentity": "intruder/1",
                                "renewTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(jiff::Timestamp::now())}});
    api.patch(
        &name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .unwrap();
    let stopped = Instant::now();
    let (code, _, stderr) = tokio::task::spawn_blocking(move || first.finish(120))
        .await
        .unwrap();
    assert_eq!(code, 69, "{stderr}");
    assert!(
        stderr.contains("lost (taken over by intruder/1)"),
        "{stderr}"
    );
    // It renews every second: it noticed within a few (60 s on a loaded machine; its plans, at
    // x50, would run for minutes more had it not noticed).
    assert!(
        stopped.elapsed() < Duration::from_secs(60),
        "{:?}",
        stopped.elapsed()
    );
    // And left the Lease to its new holder.
    assert_eq!(the_lease(&ns).await["spec"]["holderIdentity"], "intruder/1");
}
