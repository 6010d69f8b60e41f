//! forklift-sim on a real kube-apiserver: the objects plan-gen writes for demo-world VMs (the real
//! pipeline: ovirt-sim, ovirt-dump, owner-group, plan-gen), applied with server-side apply, are
//! validated and migrated as Forklift would.

#[path = "kubebed/mod.rs"]
mod kubebed;
mod pipeline;
mod support;

use kubebed::{apply, forklift};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    Event, PersistentVolume, PersistentVolumeClaim, Pod, ResourceQuota,
};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const URL: &str = "https://engine.example.com/ovirt-engine/api";

/// The tests share one API server: the 1,000-VM sizing test loads it for minutes, so it runs
/// alone (write), the others side by side (read), and no timing of theirs suffers from it.
static SHARE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());
const MAP: &str = "tests/fixtures/demo-networks.map";

/// plan-gen's objects for the named demo VMs, in namespace `ns`, targets in `ns` too.
fn objects_for(ns: &str, vms: &[&str]) -> Vec<Value> {
    let (code, objects, _) = preflighted(ns, vms, &[], &|_| {});
    assert_eq!(code, 0, "plan-gen left VMs out");
    objects
}

/// plan-gen run with `extra` arguments over the named demo VMs (the real pipeline up to it):
/// its exit status, its objects (Plans targeting `ns`) and its --report findings.
fn preflighted(
    ns: &str,
    vms: &[&str],
    extra: &[&str],
    edit: &dyn Fn(&mut Value),
) -> (i32, Vec<Value>, Vec<Value>) {
    let records = std::fs::read_to_string(pipeline::demo_records()).unwrap();
    let chosen: String = records
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| vms.contains(&v["name"].as_str().unwrap_or_default()))
        .map(|mut v| {
            edit(&mut v);
            format!("{v}\n")
        })
        .collect();
    let owned = pipeline::run(env!("CARGO_BIN_EXE_owner-group"), &[], chosen.as_bytes());
    assert!(
        owned.status.success(),
        "owner-group: {}",
        pipeline::stderr(&owned)
    );
    let mut args = vec!["--map-file", MAP];
    args.extend_from_slice(extra);
    plan_gen_run(ns, &owned.stdout, &args)
}

/// plan-gen over owner-group's records `owned` with `args` (maps and flags), its objects in `ns`
/// and every Plan's target in `ns` too: its exit status (0, or 1 when the preflight left VMs
/// out: their Plans are written all the same), its objects and its --report findings.
fn plan_gen_run(ns: &str, owned: &[u8], args: &[&str]) -> (i32, Vec<Value>, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.jsonl");
    let mut all = vec!["--url", URL, "--namespace", ns, "--with-secret"];
    all.extend_from_slice(&["--user", "admin@internal", "--insecure-skip-verify"]);
    all.extend_from_slice(&["--report", report.to_str().unwrap()]);
    all.extend_from_slice(args);
    let out = pipeline::run_with_env(
        env!("CARGO_BIN_EXE_plan-gen"),
        &all,
        owned,
        &[("OVIRT_PASSWORD", "ovirt-sim-demo")],
    );
    let code = pipeline::code(&out);
    assert!(
        matches!(code, 0 | 1),
        "plan-gen: {}",
        pipeline::stderr(&out)
    );
    let mut objects = pipeline::lines(&out);
    for o in &mut objects {
        if o["kind"] == "Plan" {
            o["spec"]["targetNamespace"] = Value::from(ns);
        }
    }
    let findings = std::fs::read_to_string(&report)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (code, objects, findings)
}

/// plan-gen's objects for owner-group's records `owned` (see `plan_gen_run`); `maps` gives the
/// network and storage maps.
fn plan_gen_objects(ns: &str, owned: &[u8], maps: &[&str]) -> Vec<Value> {
    plan_gen_run(ns, owned, maps).1
}

fn plans(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o["kind"] == "Plan")
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

async fn get(client: &kube::Client, kind: &str, ns: &str, name: &str) -> Value {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &forklift(kind));
    serde_json::to_value(api.get(name).await.unwrap()).unwrap()
}

/// Where an unfinished Plan stands: its conditions, and each VM's phase and pipeline reasons.
fn unfinished(plan: &Value) -> String {
    let list = |v: &Value, f: &dyn Fn(&Value) -> String| -> Vec<String> {
        v.as_array().into_iter().flatten().map(f).collect()
    };
    let conditions = list(&plan["status"]["conditions"], &|c| {
        format!("{}={} {}", c["type"], c["status"], c["message"])
    });
    let vms = list(&plan["status"]["migration"]["vms"], &|vm| {
        let reasons = list(&vm["pipeline"], &|s| {
            format!("{}:{}", s["name"], s["reason"])
        });
        format!("{} {} [{}]", vm["name"], vm["phase"], reasons.join(", "))
    });
    format!(
        "{}: conditions {conditions:?}, VMs {vms:?}",
        plan["metadata"]["name"]
    )
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    vm_condition(&obj["status"], kind)
}

/// A condition of a `status.migration.vms[]` entry (its conditions are at its top level).
fn vm_condition<'a>(vm: &'a Value, kind: &str) -> Option<&'a Value> {
    vm["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind && c["status"] == "True")
}

/// Polls `kind ns/name` until `check` holds, at most `secs` seconds; returns the object.
async fn wait_for(
    client: &kube::Client,
    kind: &str,
    ns: &str,
    name: &str,
    secs: u64,
    check: impl Fn(&Value) -> bool,
) -> Value {
    // A watch, not a poll: every state the object passes through is checked, however short.
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &forklift(kind));
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut states = std::pin::pin!(watcher(api, config).default_backoff().applied_objects());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut last = Value::Null;
    loop {
        let next = tokio::time::timeout_at(deadline, states.next()).await;
        let Ok(next) = next else {
            panic!(
                "{kind} {ns}/{name}: condition not reached in {secs}s; status: {}",
                last["status"]
            );
        };
        let obj = match next {
            Some(Ok(obj)) => obj,
            Some(Err(_)) => continue, // the backoff retries
            None => panic!("{kind} {ns}/{name}: the watch ended"),
        };
        last = serde_json::to_value(obj).unwrap();
        if check(&last) {
            return last;
        }
    }
}

/// Whether a Plan's status shows a VM's DiskTransfer running and not yet complete.
fn transfer_midway(plan: &Value) -> bool {
    let vms = plan["status"]["migration"]["vms"]
        .as_array()
        .into_iter()
        .flatten();
    vms.flat_map(|vm| vm["pipeline"].as_array().into_iter().flatten())
        .any(|step| {
            let progress = &step["progress"];
            step["name"] == "DiskTransfer"
                && step["phase"] == "Running"
                && progress["completed"].as_i64() < progress["total"].as_i64()
        })
}

async fn start_migration(client: &kube::Client, ns: &str, plan: &str, name: &str) {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &forklift("Migration"));
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Migration",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"plan": {"name": plan, "namespace": ns}},
    }))
    .unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
}

fn world() -> std::path::PathBuf {
    pipeline::world_path()
}

fn sim(ns: &str, extra: &[&str]) -> kubebed::ForkliftSim {
    let mut args = vec!["--namespace", ns, "--events", "--status-interval", "300ms"];
    args.extend_from_slice(extra);
    kubebed::ForkliftSim::start(kubebed::Testbed::shared(), &world(), &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_gen_objects_become_ready_and_a_migration_succeeds_within_max_vm_inflight() {
    let _share = SHARE.read().await;
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("fsim-ok").await;
    let client = bed.client().await;
    let vms = ["rdu-web-01", "rdu-app-01", "rdu-mq-02", "grafana"];
    let objects = objects_for(&ns, &vms);
    let _sim = sim(
        &ns,
        &[
            "--max-vm-inflight",
            "2",
            "--bandwidth",
            "1Gbit/s",
            "--time-scale",
            "200",
        ],
    );
    for o in &objects {
        apply(&client, o).await;
    }
    let provider = wait_for(&client, "Provider", &ns, "ovirt", 120, |o| {
        condition(o, "Ready").is_some()
    })
    .await;
    assert_eq!(provider["status"]["phase"], "Ready");
    for kind in ["NetworkMap", "StorageMap"] {
        let map = wait_for(&client, kind, &ns, "ovirt-host", 120, |o| {
            condition(o, "Ready").is_some()
        })
        .await;
        assert!(!map["status"]["references"].as_array().unwrap().is_empty());
    }
    let plan_names = plans(&objects);
    assert!(!plan_names.is_empty());
    for plan in &plan_names {
        let p = wait_for(&client, "Plan", &ns, plan, 120, |o| {
            condition(o, "Ready").is_some()
        })
        .await;
        assert_eq!(condition(&p, "Ready").unwrap()["category"], "Required");
        assert_eq!(
            p["status"]["observedGeneration"],
            p["metadata"]["generation"]
        );
    }
    // Every status forklift-sim writes on the Plans, through a watch opened before the
    // Migrations exist: a poll could miss a transfer's middle on a busy machine.
    let plan_api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &forklift("Plan"));
    let mut updates = std::pin::pin!(
        watcher(plan_api, watcher::Config::default())
            .default_backoff()
            .applied_objects()
    );
    for plan in &plan_names {
        start_migration(&client, &ns, plan, &format!("{plan}-1")).await;
    }
    let (mut saw_partial, mut ended) = (false, std::collections::BTreeSet::new());
    let is_over =
        |p: &Value| condition(p, "Succeeded").is_some() || condition(p, "Failed").is_some();
    // A hang guard, not a timing check: the migrations take about 5 s (20-25 s for the whole
    // test beside two busy loops and a disk writer). One fresh-clone run (2026-12-02, beside
    // release builds) saw two of the plans finished after 120 s and the others not; 20 runs (17
    // beside two busy loops and a disk writer) did not repeat it, and its cause is not known. So
    // that a watch gone quiet cannot stand in for plans that do not end, the unfinished plans are
    // also read after 5 s without an event; on a timeout their VM phases and wait reasons are
    // shown, so the next one says where it stood.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while ended.len() < plan_names.len() {
        if tokio::time::Instant::now() >= deadline {
            let mut stood = Vec::new();
            for plan in plan_names.iter().filter(|p| !ended.contains(*p)) {
                stood.push(unfinished(&get(&client, "Plan", &ns, plan).await));
            }
            panic!(
                "plans not finished in 300 s; finished: {ended:?}; {}",
                stood.join("; ")
            );
        }
        let quiet = tokio::time::Instant::now() + Duration::from_secs(5);
        let Ok(next) = tokio::time::timeout_at(quiet.min(deadline), updates.next()).await else {
            for plan in &plan_names {
                if !ended.contains(plan) && is_over(&get(&client, "Plan", &ns, plan).await) {
                    ended.insert(plan.clone());
                }
            }
            continue;
        };
        let Some(Ok(p)) = next else { continue };
        let p = serde_json::to_value(p).unwrap();
        saw_partial |= transfer_midway(&p);
        if is_over(&p) {
            ended.insert(p["metadata"]["name"].as_str().unwrap().to_string());
        }
    }
    for plan in &plan_names {
        let done = get(&client, "Plan", &ns, plan).await;
        assert!(
            condition(&done, "Succeeded").is_some(),
            "{}",
            done["status"]
        );
        assert!(condition(&done, "Executing").is_none());
        for vm in done["status"]["migration"]["vms"].as_array().unwrap() {
            assert_eq!(vm["phase"], "Completed");
            assert!(vm_condition(vm, "Succeeded").is_some(), "{vm}");
            let steps: Vec<&str> = vm["pipeline"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["name"].as_str().unwrap())
                .collect();
            assert_eq!(
                steps,
                ["Initialize", "DiskTransfer", "VirtualMachineCreation"]
            );
            let transfer = &vm["pipeline"][1];
            assert_eq!(transfer["annotations"]["unit"], "MB");
            assert_eq!(
                transfer["progress"]["completed"],
                transfer["progress"]["total"]
            );
            // One task per disk, named by disk id, total = provisioned size in MiB.
            let world_vm = pipeline::world()["vms"]
                .as_array()
                .unwrap()
                .iter()
                .find(|w| w["id"] == vm["id"])
                .unwrap();
            let disks = pipeline::by_id("disks");
            let expected: Vec<(String, i64)> = world_vm["disk_attachments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    let d = disks[a["disk"].as_str().unwrap()];
                    (
                        d["id"].as_str().unwrap().to_string(),
                        (d["provisioned_size"].as_u64().unwrap() / (1024 * 1024)) as i64,
                    )
                })
                .collect();
            let tasks: Vec<(String, i64)> = transfer["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    (
                        t["name"].as_str().unwrap().to_string(),
                        t["progress"]["total"].as_i64().unwrap(),
                    )
                })
                .collect();
            assert_eq!(tasks, expected);
            // The target VM exists.
            let vm_api: Api<DynamicObject> = Api::namespaced_with(
                client.clone(),
                &ns,
                &ApiResource::from_gvk(&GroupVersionKind::gvk(
                    "kubevirt.io",
                    "v1",
                    "VirtualMachine",
                )),
            );
            let target = vm["newName"].as_str().unwrap();
            let created = vm_api.get(target).await.unwrap();
            assert_eq!(
                created.metadata.labels.unwrap()["vmID"],
                vm["id"].as_str().unwrap()
            );
        }
        let m = wait_for(&client, "Migration", &ns, &format!("{plan}-1"), 120, |o| {
            condition(o, "Succeeded").is_some()
        })
        .await;
        assert!(m["status"]["completed"].is_string());
    }
    assert!(saw_partial, "never saw a DiskTransfer in progress");
    // max_vm_inflight: from the events, never more than 2 VMs running at once.
    let events = _sim.events();
    let mut running = 0i64;
    let mut peak = 0i64;
    for e in &events {
        match e["event"].as_str() {
            Some("vm_started") => {
                running += 1;
                assert!(e["inflight"].as_u64().unwrap() <= 2, "{e}");
            }
            Some("vm_finished") => running -= 1,
            _ => {}
        }
        peak = peak.max(running);
    }
    assert!(peak <= 2, "peak {peak}");
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "vm_finished")
            .count(),
        vms.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmapped_network_blocks_the_plan_with_vm_networks_not_mapped() {
    let _share = SHARE.read().await;
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("fsim-unmapped").await;
    let client = bed.client().await;
    let mut objects = objects_for(&ns, &["rdu-web-01"]);
    // Drop every network from the map: the VM's NIC network is no longer mapped.
    for o in &mut objects {
        if o["kind"] == "NetworkMap" {
            o["spec"]["map"] = json!([]);
        }
    }
    let _sim = sim(&ns, &[]);
    for o in &objects {
        apply(&client, o).await;
    }
    let plan = &plans(&objects)[0];
    let p = wait_for(&client, "Plan", &ns, plan, 120, |o| {
        condition(o, "VMNetworksNotMapped").is_some()
    })
    .await;
    let c = condition(&p, "VMNetworksNotMapped").unwrap();
    assert_eq!(c["category"], "Critical");
    // v2.12.5 pkg/controller/plan/validation.go:764-771: Reason NotValid.
    assert_eq!(c["reason"], "NotValid");
    assert!(
        c["items"][0].as_str().unwrap().contains("rdu-web-01"),
        "{c}"
    );
    assert!(condition(&p, "Ready").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_failure_fails_the_plan_and_a_second_migration_retries_only_that_vm() {
    let _share = SHARE.read().await;
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("fsim-fail").await;
    let client = bed.client().await;
    // Both VMs have the same owners, so they share one plan.
    let mut objects = objects_for(&ns, &["rdu-web-03", "rdu-web-02"]);
    let plan_names = plans(&objects);
    assert_eq!(plan_names.len(), 1, "{objects:?}");
    for o in &mut objects {
        if o["kind"] == "Plan" {
            o["metadata"]["annotations"]["forklift-sim.liftkit.io/fail-vms"] =
                Value::from("rdu-web-02");
        }
    }
    let sim = sim(&ns, &["--time-scale", "2000"]);
    for o in &objects {
        apply(&client, o).await;
    }
    let plan = &plan_names[0];
    wait_for(&client, "Plan", &ns, plan, 120, |o| {
        condition(o, "Ready").is_some()
    })
    .await;
    start_migration(&client, &ns, plan, "first").await;
    let p = wait_for(&client, "Plan", &ns, plan, 60, |o| {
        condition(o, "Failed").is_some() || condition(o, "Succeeded").is_some()
    })
    .await;
    assert!(condition(&p, "Failed").is_some(), "{}", p["status"]);
    let vms = p["status"]["migration"]["vms"].as_array().unwrap();
    let by_name = |n: &str| vms.iter().find(|v| v["name"] == n).unwrap().clone();
    let failed = by_name("rdu-web-02");
    assert!(vm_condition(&failed, "Failed").is_some(), "{failed}");
    assert_eq!(failed["error"]["phase"], "CopyDisks");
    let transfer = &failed["pipeline"][1];
    let (done, total) = (
        transfer["progress"]["completed"].as_i64().unwrap(),
        transfer["progress"]["total"].as_i64().unwrap(),
    );
    assert!(done > 0 && done < total, "failed midway: {transfer}");
    assert!(vm_condition(&by_name("rdu-web-03"), "Succeeded").is_some());
    wait_for(&client, "Migration", &ns, "first", 120, |o| {
        condition(o, "Failed").is_some()
    })
    .await;

    let before = sim.events().len();
    start_migration(&client, &ns, plan, "second").await;
    let p = wait_for(&client, "Plan", &ns, plan, 60, |o| {
        condition(o, "Succeeded").is_some()
            && o["status"]["migration"]["history"].as_array().map(Vec::len) == Some(2)
    })
    .await;
    assert!(condition(&p, "Failed").is_none());
    wait_for(&client, "Migration", &ns, "second", 120, |o| {
        condition(o, "Succeeded").is_some()
    })
    .await;
    let started: Vec<String> = sim.events()[before..]
        .iter()
        .filter(|e| e["event"] == "vm_started")
        .map(|e| e["vm_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(started, ["rdu-web-02"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_listed_in_spec_cancel_is_canceled_and_the_others_finish() {
    let _share = SHARE.read().await;
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("fsim-cancel").await;
    let client = bed.client().await;
    let objects = objects_for(&ns, &["rdu-web-03", "rdu-web-02"]);
    let plan = &plans(&objects)[0];
    // One VM at a time and a slow link (the first VM copies for ~15 s of real time): the second
    // VM waits long enough to be canceled, however slowly this test reacts.
    let _sim = sim(
        &ns,
        &[
            "--max-vm-inflight",
            "1",
            "--bandwidth",
            "1Gbit/s",
            "--time-scale",
            "30",
        ],
    );
    for o in &objects {
        apply(&client, o).await;
    }
    wait_for(&client, "Plan", &ns, plan, 120, |o| {
        condition(o, "Ready").is_some()
    })
    .await;
    start_migration(&client, &ns, plan, "run").await;
    let p = wait_for(&client, "Plan", &ns, plan, 120, |o| {
        o["status"]["migration"]["vms"]
            .as_array()
            .is_some_and(|v| v.len() == 2)
    })
    .await;
    let waiting = p["status"]["migration"]["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["started"].is_null())
        .expect("one VM waits for a slot")
        .clone();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &forklift("Migration"));
    api.patch(
        "run",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"spec": {"cancel": [{"id": waiting["id"], "name": waiting["name"]}]}}),
        ),
    )
    .await
    .unwrap();
    let p = wait_for(&client, "Plan", &ns, plan, 120, |o| {
        condition(o, "Succeeded").is_some() || condition(o, "Failed").is_some()
    })
    .await;
    let vms = p["status"]["migration"]["vms"].as_array().unwrap();
    let canceled = vms.iter().find(|v| v["id"] == waiting["id"]).unwrap();
    assert!(vm_condition(canceled, "Canceled").is_some(), "{canceled}");
    assert_eq!(canceled["phase"], "Completed");
    let other = vms.iter().find(|v| v["id"] != waiting["id"]).unwrap();
    assert!(vm_condition(other, "Succeeded").is_some(), "{other}");
    // One VM succeeded: the plan Succeeded (Forklift's rule).
    assert!(condition(&p, "Succeeded").is_some());
}

/// The DiskTransfer step of a `status.migration.vms[]` entry.
fn transfer_step(vm: &Value) -> &Value {
    vm["pipeline"]
        .as_array()
        .and_then(|p| p.iter().find(|s| s["name"] == "DiskTransfer"))
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_forklift_sim_resumes_the_migration_where_its_status_left_it() {
    let _share = SHARE.read().await;
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("fsim-restart").await;
    let client = bed.client().await;
    // Both VMs share one plan; one at a time on a slow link, so the second is mid-transfer
    // when the first has finished.
    let objects = objects_for(&ns, &["rdu-web-03", "rdu-web-02"]);
    let plan = &plans(&objects)[0];
    let args = [
        "--max-vm-inflight",
        "1",
        "--bandwidth",
        "1Gbit/s",
        "--time-scale",
        "100",
    ];
    let mut first = sim(&ns, &args);
    for o in &objects {
        apply(&client, o).await;
    }
    wait_for(&client, "Plan", &ns, plan, 120, |o| {
        condition(o, "Ready").is_some()
    })
    .await;
    start_migration(&client, &ns, plan, "run").await;
    wait_for(&client, "Plan", &ns, plan, 90, |o| {
        let vms = o["status"]["migration"]["vms"].as_array();
        let done = vms.is_some_and(|v| v.iter().any(|v| vm_condition(v, "Succeeded").is_some()));
        let midway = vms.is_some_and(|v| {
            v.iter().any(|v| {
                let p = &transfer_step(v)["progress"];
                p["completed"].as_i64() > Some(0) && p["completed"].as_i64() < p["total"].as_i64()
            })
        });
        done && midway
    })
    .await;
    first.stop(); // SIGKILL: nothing is flushed on the way out
    // What the new process finds: the status the killed one last wrote.
    let before = get(&client, "Plan", &ns, plan).await;
    let before_vms = before["status"]["migration"]["vms"]
        .as_array()
        .unwrap()
        .clone();
    let finished_before: Vec<&Value> = before_vms
        .iter()
        .filter(|v| vm_condition(v, "Succeeded").is_some())
        .collect();
    let midway = before_vms
        .iter()
        .find(|v| vm_condition(v, "Succeeded").is_none())
        .expect("one VM still migrating")
        .clone();
    let midway_done = transfer_step(&midway)["progress"]["completed"]
        .as_i64()
        .unwrap();
    assert!(midway_done > 0, "{midway}");

    let second = sim(&ns, &args);
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = loop {
        let p = get(&client, "Plan", &ns, plan).await;
        let now_vm = p["status"]["migration"]["vms"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["id"] == midway["id"]))
            .cloned()
            .unwrap_or_default();
        // Resumed from the status, not from zero: the transfer never goes back.
        if let Some(done) = transfer_step(&now_vm)["progress"]["completed"].as_i64() {
            assert!(
                done >= midway_done,
                "transfer restarted: {done} < {midway_done} MB"
            );
        }
        if condition(&p, "Succeeded").is_some() || condition(&p, "Failed").is_some() {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "plan did not finish: {}",
            p["status"]
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    };
    assert!(
        condition(&done, "Succeeded").is_some(),
        "{}",
        done["status"]
    );
    assert!(condition(&done, "Failed").is_none());
    // The same execution went on: one history entry, the Migration Succeeded.
    assert_eq!(
        done["status"]["migration"]["history"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        done["status"]["migration"]["started"],
        before["status"]["migration"]["started"]
    );
    let m = wait_for(&client, "Migration", &ns, "run", 120, |o| {
        condition(o, "Succeeded").is_some()
    })
    .await;
    assert_eq!(m["status"]["vms"].as_array().unwrap().len(), 2);
    let after_vms = done["status"]["migration"]["vms"].as_array().unwrap();
    for vm in after_vms {
        assert!(vm_condition(vm, "Succeeded").is_some(), "{vm}");
        let transfer = transfer_step(vm);
        assert_eq!(
            transfer["progress"]["completed"],
            transfer["progress"]["total"]
        );
        let target = vm["newName"].as_str().unwrap();
        let vm_api: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            &ns,
            &ApiResource::from_gvk(&GroupVersionKind::gvk(
                "kubevirt.io",
                "v1",
                "VirtualMachine",
            )),
        );
        vm_api.get(target).await.unwrap();
    }
    // The VM finished before the restart is kept as it was; the one midway kept its start.
    for old in &finished_before {
        let now_vm = after_vms.iter().find(|v| v["id"] == old["id"]).unwrap();
        assert_eq!(&now_vm, old);
    }
    let resumed = after_vms.iter().find(|v| v["id"] == midway["id"]).unwrap();
    assert_eq!(resumed["started"], midway["started"]);
    assert_eq!(
        transfer_step(resumed)["started"],
        transfer_step(&midway)["started"]
    );
    // The new process started no execution and no VM the old one had started, and finished
    // only the VM that was unfinished.
    let events = second.events();
    let names = |kind: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["event"] == kind)
            .map(|e| e["vm_name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert!(
        events.iter().all(|e| e["event"] != "migration_started"),
        "{events:?}"
    );
    assert!(names("vm_started").is_empty(), "{events:?}");
    assert_eq!(names("vm_finished"), [midway["name"].as_str().unwrap()]);
    let first_started: Vec<String> = first
        .events()
        .iter()
        .filter(|e| e["event"] == "vm_started")
        .map(|e| e["vm_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(first_started.len(), 2, "{:?}", first.events());
}

// ---- What Forklift creates in the target namespace (volume populators, KubeVirt) ----------------

const MIB: u64 = 1024 * 1024;

/// Forklift v2.12.5's size for a populator PVC, written out from
/// pkg/controller/plan/util/utils.go `CalculateSpaceWithOverhead` with the defaults of
/// pkg/settings/migration.go (FILESYSTEM_OVERHEAD 10 percent, BLOCK_OVERHEAD 0): the provisioned
/// size rounded up to a MiB, then Filesystem: ceil(aligned / (1 - 10/100)) in float64; Block: as is.
fn forklift_populator_bytes(provisioned: u64, block: bool) -> u64 {
    let aligned = provisioned.div_ceil(MIB) * MIB;
    if block {
        aligned
    } else {
        (aligned as f64 / (1.0 - 10.0 / 100.0)).ceil() as u64
    }
}

/// KubeVirt v1.9.0's requests for a virt-launcher's compute container, written out from
/// pkg/hypervisor/kvm/hypervisorbackend.go `GetMemoryOverhead` and
/// pkg/virt-controller/services/renderresources.go (`WithMemoryRequests`, `WithMemoryOverhead`,
/// `WithoutDedicatedCPU` with cpuAllocationRatio 10) for a VM Forklift builds (memory.guest only,
/// so no page-table term; no TPM): CPU in millicores, memory in bytes.
fn kubevirt_launcher_requests(vcpus: u64, guest: u64) -> (u64, u64) {
    let overhead_mib = 25 + 100 + 25 + 40 + 30 + 8 * vcpus + 8 + 32;
    (vcpus * 1000 / 10, guest + overhead_mib * MIB)
}

/// A Kubernetes quantity as a number (bytes, or millicores with `milli`).
fn quantity(text: &str, milli: bool) -> u64 {
    let (number, unit) = text.split_at(
        text.find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(text.len()),
    );
    let factor: f64 = match unit {
        "" => 1.0,
        "m" => 0.001,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "Ki" => 1024.0,
        "Mi" => MIB as f64,
        "Gi" => (1u64 << 30) as f64,
        other => panic!("unit {other} in {text}"),
    };
    let value = number.parse::<f64>().unwrap() * factor;
    if milli {
        (value * 1000.0).round() as u64
    } else {
        value.round() as u64
    }
}

async fn list<K>(client: &kube::Client, ns: &str) -> Vec<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    api.list(&Default::default()).await.unwrap().items
}

fn request_bytes(pvc: &PersistentVolumeClaim) -> u64 {
    let q = &pvc
        .spec
        .as_ref()
        .unwrap()
        .resources
        .as_ref()
        .unwrap()
        .requests
        .as_ref()
        .unwrap()["storage"];
    quantity(&q.0, false)
}

fn label<'a>(meta: &'a kube::core::ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

/// The StorageMap sends the disks of `storage_domain` (a demo world name) to `class`.
fn map_storage_domain(objects: &mut [Value], storage_domain: &str, class: &str) {
    for o in objects.iter_mut().filter(|o| o["kind"] == "StorageMap") {
        for pair in o["spec"]["map"].as_array_mut().unwrap() {
            let name = pair["source"]["name"].as_str().unwrap_or_default();
            if name.rsplit('/').next() == Some(storage_domain) {
                pair["destination"]["storageClass"] = Value::from(class);
            }
        }
    }
}

/// Polls until `check` holds on the plan, at most `secs`; returns the plan.
async fn plan_until(
    client: &kube::Client,
    ns: &str,
    plan: &str,
    secs: u64,
    check: impl Fn(&Value) -> bool,
) -> Value {
    wait_for(client, "Plan", ns, plan, secs, check).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_migration_creates_populator_pvcs_sized_as_forklift_and_ends_with_bound_pvs_and_launchers()
 {
    let _share = SHARE.read().await;
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("fsim-pop").await;
    let client = bed.client().await;
    // rdu-web-03's disks are on data-nfs-rdu (sent to the Block class), rdu-web-02's on
    // data-nfs-rdu-02 (the Filesystem class). Both VMs share one plan.
    let mut objects = objects_for(&ns, &["rdu-web-03", "rdu-web-02"]);
    map_storage_domain(&mut objects, "data-nfs-rdu", "ceph-rbd-block");
    let plan = plans(&objects)[0].clone();
    let _sim = sim(&ns, &["--bandwidth", "1Gbit/s", "--time-scale", "150"]);
    for o in &objects {
        apply(&client, o).await;
    }
    plan_until(&client, &ns, &plan, 120, |o| {
        condition(o, "Ready").is_some()
    })
    .await;
    start_migration(&client, &ns, &plan, "run").await;

    // The world's disks, by id: provisioned size and whether their class is Block.
    let world = pipeline::world();
    let sds = pipeline::by_id("storage_domains");
    let disks = pipeline::by_id("disks");
    let expected = |disk_id: &str| {
        let d = disks[disk_id];
        let sd = sds[d["storage_domain"].as_str().unwrap()]["name"]
            .as_str()
            .unwrap();
        let block = sd == "data-nfs-rdu";
        (
            forklift_populator_bytes(d["provisioned_size"].as_u64().unwrap(), block),
            block,
        )
    };

    // CDI's StorageProfiles, as its capabilities table (CDI v1.66.0
    // pkg/storagecapabilities/storagecapabilities.go) has them first: Trident ontap-nas
    // ReadWriteMany/Filesystem, Ceph RBD ReadWriteMany/Block. Forklift takes the first set.
    let profiles: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk(&GroupVersionKind::gvk(
            "cdi.kubevirt.io",
            "v1beta1",
            "StorageProfile",
        )),
    );
    for (class, mode) in [("trident-nfs", "Filesystem"), ("ceph-rbd-block", "Block")] {
        let first =
            profiles.get(class).await.unwrap().data["status"]["claimPropertySets"][0].clone();
        assert_eq!(
            first,
            json!({"accessModes": ["ReadWriteMany"], "volumeMode": mode}),
            "{class}"
        );
    }

    // While the disks are copied: each target PVC has Forklift's size, names its
    // OvirtVolumePopulator, and its prime PVC and populator pod exist with the same request.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen_primes = std::collections::HashSet::new();
    let mut seen_consumers = std::collections::HashSet::new();
    loop {
        let pvcs: Vec<PersistentVolumeClaim> = list(&client, &ns).await;
        let pods: Vec<Pod> = list(&client, &ns).await;
        for pvc in pvcs
            .iter()
            .filter(|p| p.spec.as_ref().unwrap().data_source_ref.is_some())
        {
            let disk = label(&pvc.metadata, "diskID").unwrap();
            let (bytes, block) = expected(disk);
            assert_eq!(request_bytes(pvc), bytes, "PVC of disk {disk}");
            let spec = pvc.spec.as_ref().unwrap();
            assert_eq!(
                spec.volume_mode.as_deref(),
                Some(if block { "Block" } else { "Filesystem" })
            );
            assert_eq!(
                spec.data_source_ref.as_ref().unwrap().kind,
                "OvirtVolumePopulator"
            );
            let uid = pvc.metadata.uid.clone().unwrap();
            if let Some(prime) = pvcs
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(&format!("prime-{uid}")))
            {
                assert_eq!(request_bytes(prime), bytes);
                assert_eq!(
                    prime.spec.as_ref().unwrap().storage_class_name,
                    spec.storage_class_name
                );
                assert_eq!(prime.spec.as_ref().unwrap().volume_mode, spec.volume_mode);
                let pod = pods
                    .iter()
                    .find(|p| p.metadata.name.as_deref() == Some(&format!("populate-{uid}")));
                if let Some(pod) = pod {
                    // Forklift v2.12.4+ (pkg/settings/populator.go): 100m / 512Mi requested.
                    let requests = pod.spec.as_ref().unwrap().containers[0]
                        .resources
                        .as_ref()
                        .unwrap()
                        .requests
                        .clone()
                        .unwrap();
                    assert_eq!(quantity(&requests["cpu"].0, true), 100);
                    assert_eq!(quantity(&requests["memory"].0, false), 512 * MIB);
                    seen_primes.insert(uid);
                }
            }
        }
        // Forklift's PVC consumer pod (kubevirt.go createPodToBindPVCs) waits, Pending, for the
        // PVCs it mounts, with the VIRT_V2V_CONTAINER_REQUESTS_* defaults: 1 CPU, 1Gi.
        for consumer in pods
            .iter()
            .filter(|p| label(&p.metadata, "forklift.app") == Some("consumer"))
        {
            let requests = consumer.spec.as_ref().unwrap().containers[0]
                .resources
                .as_ref()
                .unwrap()
                .requests
                .clone()
                .unwrap();
            assert_eq!(quantity(&requests["cpu"].0, true), 1000);
            assert_eq!(quantity(&requests["memory"].0, false), 1024 * MIB);
            seen_consumers.insert(consumer.metadata.name.clone().unwrap());
        }
        if seen_primes.len() >= 2 && !seen_consumers.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never saw prime PVCs with their pods ({seen_primes:?}) and a consumer pod"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let done = plan_until(&client, &ns, &plan, 180, |o| {
        condition(o, "Succeeded").is_some() || condition(o, "Failed").is_some()
    })
    .await;
    assert!(
        condition(&done, "Succeeded").is_some(),
        "{}",
        done["status"]
    );

    // Afterwards: one PVC per disk of the two VMs, Bound to a PV whose claimRef is that PVC;
    // no prime PVC, populator pod or OvirtVolumePopulator is left. (The populator deletes a prime
    // PVC once the PV binder has bound the PVC, which is when Forklift counts the disk done: the
    // last prime PVC may outlive the plan's success by a moment.)
    let deadline = Instant::now() + Duration::from_secs(30);
    let pvcs = loop {
        let pvcs: Vec<PersistentVolumeClaim> = list(&client, &ns).await;
        if pvcs
            .iter()
            .all(|p| !p.metadata.name.as_deref().unwrap().starts_with("prime-"))
        {
            break pvcs;
        }
        assert!(
            Instant::now() < deadline,
            "prime PVCs left: {:?}",
            pvcs.iter().map(|p| &p.metadata.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let pvs: Vec<PersistentVolume> = Api::all(client.clone())
        .list(&Default::default())
        .await
        .unwrap()
        .items;
    let vm_disks: Vec<String> = world["vms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["name"] == "rdu-web-03" || v["name"] == "rdu-web-02")
        .flat_map(|v| {
            v["disk_attachments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["disk"].as_str().unwrap().to_string())
        })
        .collect();
    let mut found = Vec::new();
    for pvc in &pvcs {
        let name = pvc.metadata.name.clone().unwrap();
        assert!(!name.starts_with("prime-"), "prime PVC {name} left behind");
        let disk = label(&pvc.metadata, "diskID").unwrap().to_string();
        assert_eq!(request_bytes(pvc), expected(&disk).0);
        assert_eq!(
            pvc.status.as_ref().unwrap().phase.as_deref(),
            Some("Bound"),
            "{name}"
        );
        let volume = pvc.spec.as_ref().unwrap().volume_name.clone().unwrap();
        let pv = pvs
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(&volume))
            .unwrap();
        let claim = pv.spec.as_ref().unwrap().claim_ref.as_ref().unwrap();
        assert_eq!(claim.uid, pvc.metadata.uid, "PV {volume} bound to {name}");
        assert_eq!(
            pv.metadata.annotations.as_ref().unwrap()["forklift.konveyor.io/populated-from"]
                .split('/')
                .next(),
            Some(ns.as_str())
        );
        // The VirtualMachine owns it.
        assert_eq!(
            pvc.metadata.owner_references.as_ref().unwrap()[0].kind,
            "VirtualMachine"
        );
        found.push(disk);
    }
    found.sort();
    let mut wanted = vm_disks.clone();
    wanted.sort();
    assert_eq!(found, wanted);
    loop {
        let pods: Vec<Pod> = list(&client, &ns).await;
        let left = pods.iter().any(|p| {
            let name = p.metadata.name.as_deref().unwrap();
            name.starts_with("populate-") || seen_consumers.contains(name)
        });
        if !left {
            break;
        }
        assert!(Instant::now() < deadline, "populator or consumer pods left");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let crs: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns,
        &ApiResource::from_gvk(&GroupVersionKind::gvk(
            "forklift.konveyor.io",
            "v1beta1",
            "OvirtVolumePopulator",
        )),
    );
    assert!(
        crs.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "OvirtVolumePopulators left"
    );

    // Each VM runs: its VMI is Running and its virt-launcher pod requests what KubeVirt asks.
    let vmis: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns,
        &ApiResource::from_gvk(&GroupVersionKind::gvk(
            "kubevirt.io",
            "v1",
            "VirtualMachineInstance",
        )),
    );
    for vm_name in ["rdu-web-03", "rdu-web-02"] {
        let w = world["vms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == vm_name)
            .unwrap();
        let cpu = &w["cpu"];
        let vcpus = ["sockets", "cores", "threads"]
            .iter()
            .map(|k| cpu[k].as_u64().unwrap())
            .product::<u64>();
        let (cpu_milli, memory) = kubevirt_launcher_requests(vcpus, w["memory"].as_u64().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        let launcher = loop {
            let pods: Vec<Pod> = list(&client, &ns).await;
            let vmi = vmis.get_opt(vm_name).await.unwrap();
            let running = vmi
                .as_ref()
                .is_some_and(|v| v.data["status"]["phase"] == "Running");
            let pod = pods
                .into_iter()
                .find(|p| label(&p.metadata, "vm.kubevirt.io/name") == Some(vm_name));
            if running && let Some(pod) = pod {
                break pod;
            }
            assert!(
                Instant::now() < deadline,
                "{vm_name}: no running VMI with its launcher"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let compute = &launcher.spec.as_ref().unwrap().containers[0];
        let requests = compute
            .resources
            .as_ref()
            .unwrap()
            .requests
            .clone()
            .unwrap();
        assert_eq!(
            quantity(&requests["cpu"].0, true),
            cpu_milli,
            "{vm_name} cpu"
        );
        assert_eq!(
            quantity(&requests["memory"].0, false),
            memory,
            "{vm_name} memory"
        );
        assert_eq!(
            launcher.status.as_ref().unwrap().phase.as_deref(),
            Some("Running")
        );
    }
}

/// Events of `reason` in a namespace.
async fn events(client: &kube::Client, ns: &str, reason: &str) -> Vec<Event> {
    let all: Vec<Event> = list(client, ns).await;
    all.into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_storage_pool_leaves_the_prime_pvc_pending_with_provisioning_failed() {
    let _share = SHARE.read().await;
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("fsim-full").await;
    let client = bed.client().await;
    let objects = objects_for(&ns, &["rdu-web-01"]);
    let plan = plans(&objects)[0].clone();
    // rdu-web-01's one disk is 50 GiB: its PVC and prime PVC need 55.56 GiB each; the pool has 40.
    let _sim = sim(
        &ns,
        &[
            "--time-scale",
            "200",
            "--storage-capacity",
            "trident-nfs=40GiB",
        ],
    );
    for o in &objects {
        apply(&client, o).await;
    }
    plan_until(&client, &ns, &plan, 120, |o| {
        condition(o, "Ready").is_some()
    })
    .await;
    start_migration(&client, &ns, &plan, "run").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let failed = loop {
        let found = events(&client, &ns, "ProvisioningFailed").await;
        if let Some(e) = found.into_iter().next() {
            break e;
        }
        assert!(Instant::now() < deadline, "no ProvisioningFailed event");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(failed.type_.as_deref(), Some("Warning"));
    let message = failed.message.clone().unwrap();
    assert!(message.contains("\"trident-nfs\""), "{message}");
    let request = forklift_populator_bytes(50 * 1024 * MIB, false);
    assert!(
        message.contains(&format!("short by {} bytes", request - 40 * 1024 * MIB)),
        "{message}"
    );
    assert!(
        failed
            .involved_object
            .name
            .as_deref()
            .unwrap()
            .starts_with("prime-"),
        "{failed:?}"
    );
    // The VM waits in CopyDisks: the prime PVC Pending, its populator pod unscheduled, nothing
    // copied, for as long as the pool stays full.
    plan_until(&client, &ns, &plan, 120, |o| {
        o["status"]["migration"]["vms"][0]["phase"] == "CopyDisks"
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let p = get(&client, "Plan", &ns, &plan).await;
    let vm = &p["status"]["migration"]["vms"][0];
    assert_eq!(vm["phase"], "CopyDisks", "{vm}");
    assert!(vm_condition(vm, "Failed").is_none(), "{vm}");
    assert_eq!(transfer_step(vm)["progress"]["completed"], 0, "{vm}");
    let pods: Vec<Pod> = list(&client, &ns).await;
    let populator = pods
        .iter()
        .find(|p| p.metadata.name.as_deref().unwrap().starts_with("populate-"))
        .unwrap();
    assert_eq!(
        populator.status.as_ref().unwrap().phase.as_deref(),
        Some("Pending")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_refusals_fail_the_vm_or_record_the_populators_event_with_the_api_servers_message()
{
    let _share = SHARE.read().await;
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("fsim-quota").await;
    let client = bed.client().await;
    // Populator pods without requests (Forklift before v2.12.4), a quota on requests.cpu: the
    // consumer pod has requests and is admitted, the populator pod is refused.
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "cpu", "namespace": ns},
        "spec": {"hard": {"requests.cpu": "4"}},
    }))
    .unwrap();
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while quotas
        .get("cpu")
        .await
        .unwrap()
        .status
        .and_then(|s| s.hard)
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the quota controller never filled the quota's status"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let objects = objects_for(&ns, &["rdu-web-01"]);
    let plan = plans(&objects)[0].clone();
    let _sim = sim(
        &ns,
        &[
            "--time-scale",
            "200",
            "--populator-container-requests-cpu",
            "",
            "--populator-container-limits-cpu",
            "",
        ],
    );
    for o in &objects {
        apply(&client, o).await;
    }
    plan_until(&client, &ns, &plan, 120, |o| {
        condition(o, "Ready").is_some()
    })
    .await;
    start_migration(&client, &ns, &plan, "run").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let refused = loop {
        if let Some(e) = events(&client, &ns, "PopulatorCreationError")
            .await
            .into_iter()
            .next()
        {
            break e;
        }
        assert!(Instant::now() < deadline, "no PopulatorCreationError event");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let message = refused.message.unwrap();
    assert!(
        message.starts_with("Failed to create populator pod: pods \"populate-"),
        "{message}"
    );
    assert!(message.contains("must specify requests.cpu"), "{message}");

    // A storage quota below the first PVC: Forklift's plan controller is refused; the VM fails
    // with the API server's message as its error.
    let ns2 = bed.namespace("fsim-quota2").await;
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "storage", "namespace": ns2},
        "spec": {"hard": {"requests.storage": "10Gi"}},
    }))
    .unwrap();
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns2);
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    while quotas
        .get("storage")
        .await
        .unwrap()
        .status
        .and_then(|s| s.hard)
        .is_none()
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let objects = objects_for(&ns2, &["rdu-web-01"]);
    let plan = plans(&objects)[0].clone();
    let _sim2 = sim(&ns2, &["--time-scale", "200"]);
    for o in &objects {
        apply(&client, o).await;
    }
    plan_until(&client, &ns2, &plan, 120, |o| {
        condition(o, "Ready").is_some()
    })
    .await;
    start_migration(&client, &ns2, &plan, "run").await;
    let p = plan_until(&client, &ns2, &plan, 60, |o| {
        condition(o, "Failed").is_some()
    })
    .await;
    let vm = &p["status"]["migration"]["vms"][0];
    assert_eq!(vm["error"]["phase"], "CreateDataVolumes", "{vm}");
    let reason = vm["error"]["reasons"][0].as_str().unwrap();
    assert!(reason.starts_with("persistentvolumeclaims \""), "{reason}");
    assert!(
        reason.contains("is forbidden: exceeded quota: storage"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_quota_below_the_copy_peak_refuses_the_prime_pvc_and_the_vm_waits() {
    let _share = SHARE.read().await;
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("fsim-peak").await;
    let client = bed.client().await;
    // rdu-web-01's one 50 GiB disk: its PVC fits, its prime PVC (the same size) does not.
    let pvc_bytes = forklift_populator_bytes(50 * 1024 * MIB, false);
    let hard = 2 * pvc_bytes - 1024 * MIB;
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "storage", "namespace": ns},
        "spec": {"hard": {"requests.storage": hard.to_string()}},
    }))
    .unwrap();
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    while quotas
        .get("storage")
        .await
        .unwrap()
        .status
        .and_then(|s| s.hard)
        .is_none()
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let objects = objects_for(&ns, &["rdu-web-01"]);
    let plan = plans(&objects)[0].clone();
    let _sim = sim(&ns, &["--time-scale", "200"]);
    for o in &objects {
        apply(&client, o).await;
    }
    plan_until(&client, &ns, &plan, 120, |o| {
        condition(o, "Ready").is_some()
    })
    .await;
    start_migration(&client, &ns, &plan, "run").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let refused = loop {
        if let Some(e) = events(&client, &ns, "PopulatorPVCCreationError")
            .await
            .into_iter()
            .next()
        {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "no PopulatorPVCCreationError event"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    // The populator controller's Event on the PVC, with the API server's message.
    let message = refused.message.unwrap();
    assert!(
        message.starts_with("Failed to create populator PVC: persistentvolumeclaims \"prime-"),
        "{message}"
    );
    assert!(message.contains("exceeded quota: storage"), "{message}");
    assert_eq!(
        refused.involved_object.kind.as_deref(),
        Some("PersistentVolumeClaim")
    );
    // As upstream, the pod made before the prime PVC stays, unschedulable, and the VM waits.
    plan_until(&client, &ns, &plan, 120, |o| {
        o["status"]["migration"]["vms"][0]["phase"] == "CopyDisks"
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let p = get(&client, "Plan", &ns, &plan).await;
    let vm = &p["status"]["migration"]["vms"][0];
    assert_eq!(vm["phase"], "CopyDisks", "{vm}");
    assert!(vm_condition(vm, "Failed").is_none(), "{vm}");
    let pods: Vec<Pod> = list(&client, &ns).await;
    let populator = pods
        .iter()
        .find(|p| p.metadata.name.as_deref().unwrap().starts_with("populate-"))
        .unwrap();
    let status = populator.status.as_ref().unwrap();
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    let scheduled = status
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "PodScheduled")
        .unwrap();
    assert!(
        scheduled
            .message
            .as_deref()
            .unwrap()
            .contains("persistentvolumeclaim \"prime-"),
        "{scheduled:?}"
    );
}

// ---------------------------------------------- capacity-calc against the PVCs forklift-sim makes

/// A world's VMs through the pipeline: the world file, owner-group's records of its VMs.
struct Lab {
    world: std::path::PathBuf,
    owned: Vec<u8>,
    _dir: Option<tempfile::TempDir>,
}

/// A generated world (`ovirt-sim --generate N --seed S`), exported by ovirt-dump over TLS and
/// annotated by owner-group.
fn generated_lab(vms: usize, seed: u64) -> Lab {
    let g = pipeline::generated(vms, seed);
    Lab {
        world: g.world,
        owned: g.owned,
        _dir: Some(g.dir),
    }
}

/// CDI v1.66.0's PVC for a DataVolume requesting `request` bytes (Forklift v2.12.5 ovirt
/// builder.go `DataVolumes`: max(provisioned, actual)), written out from pkg/util/util.go
/// `GetRequiredSpace` with the CDIConfig default overhead 0.06: Filesystem
/// ceil(align_1MiB(request) * 1.06) in float64; Block the request.
fn cdi_datavolume_pvc_bytes(request: u64, block: bool) -> u64 {
    if block {
        request
    } else {
        (request.div_ceil(MIB) as f64 * MIB as f64 * 1.06).ceil() as u64
    }
}

/// The PVC size of every image disk of the VMs planned, by disk id, read from the world file:
/// on the populator path `forklift_populator_bytes` of its provisioned size, on the warm path
/// `cdi_datavolume_pvc_bytes` of max(provisioned, actual); Block for the storage domains in
/// `block`.
fn world_pvc_bytes(
    world: &Value,
    planned: &std::collections::HashSet<String>,
    block: &[String],
    warm: bool,
) -> std::collections::BTreeMap<String, u64> {
    let index = |kind: &str| -> std::collections::HashMap<String, Value> {
        world[kind]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (o["id"].as_str().unwrap().to_string(), o.clone()))
            .collect()
    };
    let (disks, sds) = (index("disks"), index("storage_domains"));
    let mut out = std::collections::BTreeMap::new();
    for vm in world["vms"].as_array().unwrap() {
        if !planned.contains(vm["id"].as_str().unwrap()) {
            continue;
        }
        for a in vm["disk_attachments"].as_array().unwrap() {
            let d = &disks[a["disk"].as_str().unwrap()];
            if d["storage_type"] == "lun" {
                continue;
            }
            let sd = sds[d["storage_domain"].as_str().unwrap()]["name"]
                .as_str()
                .unwrap();
            let is_block = block.iter().any(|b| b == sd);
            let provisioned = d["provisioned_size"].as_u64().unwrap();
            let bytes = if warm {
                let actual = d["actual_size"].as_u64().unwrap();
                cdi_datavolume_pvc_bytes(provisioned.max(actual), is_block)
            } else {
                forklift_populator_bytes(provisioned, is_block)
            };
            out.insert(d["id"].as_str().unwrap().to_string(), bytes);
        }
    }
    out
}

/// capacity-calc's PVC bytes per disk (`--by vm,disk`) of the records `owned`.
fn capacity_calc_pvc_bytes(
    owned: &[u8],
    storage: &[String],
    warm: bool,
) -> std::collections::BTreeMap<String, u64> {
    let mut args = vec!["--by", "vm,disk", "--volume-mode", "ceph-rbd-block=Block"];
    if warm {
        args.push("--warm");
    }
    for rule in storage {
        args.extend(["--storage-map", rule.as_str()]);
    }
    let out = pipeline::run(env!("CARGO_BIN_EXE_capacity-calc"), &args, owned);
    assert_eq!(pipeline::code(&out), 0, "{}", pipeline::stderr(&out));
    let mut bytes = std::collections::BTreeMap::new();
    for row in pipeline::lines(&out).iter().filter(|r| r["total"] != true) {
        let disk = row["disk"].as_str().unwrap();
        if disk == "(none)" || row["lun_disks"] != 0 {
            continue;
        }
        // One class holds the disk (every class has a column, the others 0).
        let classes = row["pvc_bytes"].as_object().unwrap();
        let held: Vec<u64> = classes
            .values()
            .filter_map(Value::as_u64)
            .filter(|b| *b > 0)
            .collect();
        assert_eq!(held.len(), 1, "{row}");
        let value = held[0];
        assert_eq!(row["pvc_total_bytes"], value, "{row}");
        // A shared disk comes once per VM holding it, with the same size.
        if let Some(old) = bytes.insert(disk.to_string(), value) {
            assert_eq!(old, value, "{row}");
        }
    }
    bytes
}

/// Every disk's PVC forklift-sim created in `ns`, by disk id: a populator PVC (a dataSourceRef,
/// the disk in its diskID label) or a DataVolume's PVC (the disk in Forklift's disk-source
/// annotation); prime and scratch PVCs have neither.
async fn sim_pvc_bytes(client: &kube::Client, ns: &str) -> std::collections::BTreeMap<String, u64> {
    let pvcs: Vec<PersistentVolumeClaim> = list(client, ns).await;
    let mut bytes = std::collections::BTreeMap::new();
    for pvc in &pvcs {
        let populated = pvc.spec.as_ref().unwrap().data_source_ref.is_some();
        let source = pvc
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("forklift.konveyor.io/disk-source"));
        // A direct LUN's claim (annotated `lun`, Forklift v2.12.5 builder.go
        // `LunPersistentVolumeClaims`) holds no copy: capacity-calc counts it apart (lun_bytes).
        let lun = pvc
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("lun"));
        let disk = match (populated, source) {
            _ if lun => continue,
            (true, _) => label(&pvc.metadata, "diskID").unwrap(),
            (false, Some(disk)) => disk.as_str(),
            (false, None) => continue,
        };
        if let Some(old) = bytes.insert(disk.to_string(), request_bytes(pvc)) {
            assert_eq!(old, request_bytes(pvc), "two PVCs of disk {disk} differ");
        }
    }
    bytes
}

/// Issue 11's done-when: for every image disk of the planned VMs, the PVC forklift-sim creates
/// (cold: as Forklift v2.12.5 builder.go `persistentVolumeClaimWithSourceRef` sizes it; warm: the
/// PVC CDI v1.66.0 makes for Forklift's DataVolume), capacity-calc's figure and the formula
/// written out in this file are the same number of bytes, for a Filesystem class and a Block
/// class. The pools are empty, so every VM stops at its Pending PVCs and nothing is copied: only
/// sizes are compared.
async fn pvcs_match_capacity_calc(
    lab: &Lab,
    network_map: &[&str],
    block: &[String],
    secs: u64,
    warm: bool,
) {
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("fsim-size").await;
    let client = bed.client().await;
    let mut storage: Vec<String> = block
        .iter()
        .map(|b| format!("{b}=ceph-rbd-block"))
        .collect();
    storage.push("*=trident-nfs".into());
    let mut maps: Vec<&str> = network_map.to_vec();
    for rule in &storage {
        maps.extend(["--storage-map", rule.as_str()]);
    }
    if warm {
        maps.push("--warm");
    }
    let objects = plan_gen_objects(&ns, &lab.owned, &maps);
    let planned: std::collections::HashSet<String> = objects
        .iter()
        .filter(|o| o["kind"] == "Plan")
        .flat_map(|p| p["spec"]["vms"].as_array().unwrap().iter())
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    let records: String = String::from_utf8(lab.owned.clone())
        .unwrap()
        .lines()
        .filter(|l| {
            planned.contains(
                serde_json::from_str::<Value>(l).unwrap()["id"]
                    .as_str()
                    .unwrap(),
            )
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let world: Value = serde_json::from_slice(&std::fs::read(&lab.world).unwrap()).unwrap();
    let expected = world_pvc_bytes(&world, &planned, block, warm);
    assert!(
        expected.len() > planned.len() / 2,
        "{} disks",
        expected.len()
    );
    assert_eq!(
        capacity_calc_pvc_bytes(records.as_bytes(), &storage, warm),
        expected
    );

    let mut args = vec!["--namespace", ns.as_str(), "--status-interval", "1s"];
    args.extend(["--max-vm-inflight", "100000"]);
    args.extend([
        "--storage-capacity",
        "trident-nfs=0",
        "--storage-capacity",
        "ceph-rbd-block=0",
    ]);
    // An earlier run of the same world left its LUN disks' volumes (Forklift deletes none).
    kubebed::delete_lun_volumes(&client, &planned).await;
    let _sim = kubebed::ForkliftSim::start(bed, &lab.world, &args);
    for o in &objects {
        apply(&client, o).await;
    }
    // Every plan Ready first, under one deadline: once migrations run, each of forklift-sim's
    // ticks also creates their PVCs, and a plan validated late would wait behind them.
    let deadline = Instant::now() + Duration::from_secs(secs);
    for plan in plans(&objects) {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_secs()
            .max(1);
        plan_until(&client, &ns, &plan, left, |o| {
            condition(o, "Ready").is_some()
        })
        .await;
    }
    for plan in plans(&objects) {
        start_migration(&client, &ns, &plan, &format!("{plan}-run")).await;
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut got = sim_pvc_bytes(&client, &ns).await;
    while got.len() < expected.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(2)).await;
        got = sim_pvc_bytes(&client, &ns).await;
    }
    let missing = expected.keys().filter(|d| !got.contains_key(*d)).count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} disks have no PVC after {secs} s",
        expected.len()
    );
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_demo_disk_gets_the_pvc_capacity_calc_sizes_in_both_volume_modes() {
    let _share = SHARE.read().await;
    let lab = Lab {
        world: pipeline::world_path(),
        owned: pipeline::owned(pipeline::demo_records()),
        _dir: None,
    };
    // data-nfs-rdu's disks to the Block class, the other domains' to the Filesystem class.
    let network = ["--map-file", MAP];
    pvcs_match_capacity_calc(&lab, &network, &["data-nfs-rdu".to_string()], 180, false).await;
}

/// Both paths, one after the other (each in its own namespace, with its own forklift-sim).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_disk_of_a_1000_vm_world_gets_the_pvc_capacity_calc_sizes_cold_and_warm() {
    let _share = SHARE.write().await;
    let lab = generated_lab(1000, 11);
    let world: Value = serde_json::from_slice(&std::fs::read(&lab.world).unwrap()).unwrap();
    // Every other storage domain (by name) to the Block class.
    let mut domains: Vec<String> = world["storage_domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    domains.sort();
    let block: Vec<String> = domains.into_iter().step_by(2).collect();
    let network = ["--network-map", "*=multus:vm-networks/default"];
    // A pass takes about 160 s on two quiet cores (forklift-sim creates each VM's objects one
    // request at a time); 900 s leaves room for a machine shared with other work.
    pvcs_match_capacity_calc(&lab, &network, &block, 900, false).await;
    pvcs_match_capacity_calc(&lab, &network, &block, 900, true).await;
}

/// The plan conditions Forklift sets on a VM's account (pkg/controller/plan/validation.go
/// `validateVM`), as opposed to those about the plan's references.
const VM_CONDITIONS: &[&str] = &[
    "VMCriticalConcerns",
    "VMDuplicateNADMappings",
    "VMMultiplePodNetworkMappings",
    "VMNetworksNotMapped",
    "VMStorageNotMapped",
    "VMStorageNotSupported",
    "InvalidDiskSizes",
    "MacConflicts",
    "VMAlreadyExists",
];

/// The condition Forklift refuses a VM with for one of plan-gen's Critical findings: a Critical
/// oVirt concern is VMCriticalConcerns (validation.go `aggregateCriticalConcerns`), a plan
/// condition is itself; liftkit's own findings (liftkit.*) are no Forklift condition.
fn forklift_condition(finding: &Value) -> Option<String> {
    let id = finding["concern_id"].as_str().unwrap();
    if finding["category"] != "Critical" || id.starts_with("liftkit.") {
        return None;
    }
    Some(if id.starts_with("ovirt.") {
        "VMCriticalConcerns".to_string()
    } else {
        id.to_string()
    })
}

/// plan-gen's preflight and forklift-sim agree at each Forklift version: each demo VM in a plan of
/// its own (--include-blocked --max-vms-per-plan 1), a plan whose VM the preflight passes is Ready
/// on forklift-sim running the same version, and one it refuses is refused with the conditions
/// the preflight names, no more, no fewer. The VMs cover a clean VM, Critical concerns, two NICs on
/// one NAD (refused at 2.12 only), a LUN disk and warnings only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_and_forklift_sim_agree_on_what_each_version_refuses() {
    let _share = SHARE.read().await;
    let vms = [
        "rdu-web-01",
        "rdu-batch-03",
        "locked-disk-vm",
        "broken-snap-vm",
        "legacy-illegal-disk",
        "san-lun-db01",
        "usb-license-dongle",
        "ora-rac-node1",
    ];
    let bed = kubebed::Testbed::shared();
    let client = bed.client().await;
    let mut refused_by = std::collections::BTreeMap::new();
    for version in ["2.12", "main"] {
        let ns = bed
            .namespace(&format!("fsim-agree-{}", version.replace('.', "-")))
            .await;
        let extra = [
            "--include-blocked",
            "--max-vms-per-plan",
            "1",
            "--forklift-version",
            version,
        ];
        let (_, objects, findings) = preflighted(&ns, &vms, &extra, &|_| {});
        let _sim = sim(&ns, &["--forklift-version", version]);
        for o in &objects {
            apply(&client, o).await;
        }
        for plan in objects.iter().filter(|o| o["kind"] == "Plan") {
            let name = plan["metadata"]["name"].as_str().unwrap();
            let vm_id = plan["spec"]["vms"][0]["id"].as_str().unwrap();
            let vm_name = plan["spec"]["vms"][0]["name"].as_str().unwrap().to_string();
            let expected: std::collections::BTreeSet<String> = findings
                .iter()
                .filter(|f| f["vm_id"] == vm_id)
                .filter_map(forklift_condition)
                .collect();
            let settled = |p: &Value| {
                let conditions = p["status"]["conditions"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let waiting = conditions
                    .iter()
                    .any(|c| c["type"].as_str().unwrap().ends_with("NotReady"));
                !waiting
                    && (condition(p, "Ready").is_some()
                        || VM_CONDITIONS.iter().any(|k| condition(p, k).is_some()))
            };
            let p = wait_for(&client, "Plan", &ns, name, 60, settled).await;
            let got: std::collections::BTreeSet<String> = VM_CONDITIONS
                .iter()
                .filter(|k| condition(&p, k).is_some_and(|c| c["category"] == "Critical"))
                .map(|k| k.to_string())
                .collect();
            assert_eq!(
                got, expected,
                "{version}: {vm_name}: forklift-sim {got:?}, preflight {expected:?}"
            );
            assert_eq!(
                condition(&p, "Ready").is_some(),
                expected.is_empty(),
                "{version}: {vm_name}"
            );
            refused_by.insert((version, vm_name), expected);
        }
    }
    // What the versions differ by on these VMs: two NICs on one NAD.
    let nad =
        |v: &str, vm: &str| refused_by[&(v, vm.to_string())].contains("VMDuplicateNADMappings");
    assert!(nad("2.12", "rdu-batch-03") && !nad("main", "rdu-batch-03"));
    assert!(refused_by[&("main", "rdu-batch-03".to_string())].is_empty());
    assert!(refused_by[&("main", "broken-snap-vm".to_string())].contains("VMCriticalConcerns"));
    assert!(refused_by[&("2.12", "rdu-web-01".to_string())].is_empty());
}

/// Forklift's MacConflicts on forklift-sim: a VirtualMachine already in the cluster with a VM's
/// MAC refuses the plan (v2.12.5 pkg/controller/plan/adapter/base/mac_conflicts.go:89), with
/// Forklift's message (validation.go:1221-1236).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mac_a_cluster_vm_already_has_is_mac_conflicts() {
    let _share = SHARE.read().await;
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("fsim-mac").await;
    let client = bed.client().await;
    let objects = objects_for(&ns, &["rdu-web-01"]);
    let plan = &plans(&objects)[0];
    let macs: Value = serde_json::from_str(
        objects.iter().find(|o| o["kind"] == "Plan").unwrap()["metadata"]["annotations"]
            ["liftkit.io/vm-macs"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let mac = macs.as_object().unwrap().values().next().unwrap()[0]
        .as_str()
        .unwrap()
        .to_string();
    let squatter = json!({
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
        "metadata": {"name": "squatter", "namespace": ns},
        "spec": {"runStrategy": "Halted", "template": {"spec": {"domain": {"devices": {
            "interfaces": [{"name": "default", "macAddress": mac}]}}}}}
    });
    apply(&client, &squatter).await;
    let _sim = sim(&ns, &[]);
    for o in &objects {
        apply(&client, o).await;
    }
    let p = wait_for(&client, "Plan", &ns, plan, 60, |o| {
        condition(o, "MacConflicts").is_some()
    })
    .await;
    let c = condition(&p, "MacConflicts").unwrap();
    assert_eq!(c["category"], "Critical");
    assert!(
        c["message"].as_str().unwrap().contains(&format!(
            "MACs {mac} conflict with destination VM {ns}/squatter"
        )),
        "{c}"
    );
    assert!(condition(&p, "Ready").is_none());
}

/// An engine older than 4.5.2.1: the preflight (from the records' engine_version) and forklift-sim
/// (from the world's engine) both refuse a VM with a direct LUN, VMStorageNotSupported
/// (pkg/controller/plan/adapter/ovirt/validator.go:175 DirectStorage), and pass the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_engine_refuses_direct_luns_in_the_preflight_and_on_forklift_sim_alike() {
    let _share = SHARE.read().await;
    let old = "4.4.10.7-1.el8";
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("fsim-old-engine").await;
    let client = bed.client().await;
    let vms = ["san-lun-db01", "rdu-web-01"];
    let extra = ["--include-blocked", "--max-vms-per-plan", "1"];
    let (_, objects, findings) = preflighted(&ns, &vms, &extra, &|r| {
        r["engine_version"] = Value::from(old);
    });
    let dir = tempfile::tempdir().unwrap();
    let world_path = dir.path().join("world.json");
    let mut world: Value =
        serde_json::from_str(&std::fs::read_to_string(world()).unwrap()).unwrap();
    world["engine"]["version"] = Value::from(old);
    std::fs::write(&world_path, world.to_string()).unwrap();
    let args = ["--namespace", ns.as_str(), "--status-interval", "300ms"];
    let _sim = kubebed::ForkliftSim::start(bed, &world_path, &args);
    for o in &objects {
        apply(&client, o).await;
    }
    for plan in objects.iter().filter(|o| o["kind"] == "Plan") {
        let name = plan["metadata"]["name"].as_str().unwrap();
        let vm = &plan["spec"]["vms"][0];
        let refused_offline = findings
            .iter()
            .any(|f| f["vm_id"] == vm["id"] && f["concern_id"] == "VMStorageNotSupported");
        let p = wait_for(&client, "Plan", &ns, name, 60, |p| {
            condition(p, "Ready").is_some() || condition(p, "VMStorageNotSupported").is_some()
        })
        .await;
        assert_eq!(
            condition(&p, "VMStorageNotSupported").is_some(),
            refused_offline,
            "{}",
            vm["name"]
        );
        assert_eq!(
            refused_offline,
            vm["name"] == "san-lun-db01",
            "{}",
            vm["name"]
        );
    }
}
