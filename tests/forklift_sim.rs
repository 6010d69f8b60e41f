//! forklift-sim on a real kube-apiserver: the objects plan-gen writes for demo-world VMs (the real
//! pipeline: ovirt-sim, ovirt-dump, owner-group, plan-gen), applied with server-side apply, are
//! validated and migrated as Forklift would.

#[path = "kubebed/mod.rs"]
mod kubebed;
mod pipeline;
mod support;

use futures::StreamExt;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const URL: &str = "https://engine.example.com/ovirt-engine/api";
const MAP: &str = "tests/fixtures/demo-networks.map";

fn forklift(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "forklift.konveyor.io",
        "v1beta1",
        kind,
    ))
}

fn resource_of(obj: &Value) -> ApiResource {
    let (group, version) = match obj["apiVersion"].as_str().unwrap().split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (
            String::new(),
            obj["apiVersion"].as_str().unwrap().to_string(),
        ),
    };
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        &group,
        &version,
        obj["kind"].as_str().unwrap(),
    ))
}

async fn apply(client: &kube::Client, obj: &Value) {
    let ar = resource_of(obj);
    let ns = obj["metadata"]["namespace"].as_str().unwrap();
    let name = obj["metadata"]["name"].as_str().unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    api.patch(name, &PatchParams::apply("liftkit"), &Patch::Apply(obj))
        .await
        .unwrap_or_else(|e| panic!("apply {} {ns}/{name}: {e}", ar.kind));
}

/// plan-gen's objects for the named demo VMs, in namespace `ns`, targets in `ns` too.
fn objects_for(ns: &str, vms: &[&str]) -> Vec<Value> {
    let records = std::fs::read_to_string(pipeline::demo_records()).unwrap();
    let chosen: String = records
        .lines()
        .filter(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            vms.contains(&v["name"].as_str().unwrap_or_default())
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let owned = pipeline::run(env!("CARGO_BIN_EXE_owner-group"), &[], chosen.as_bytes());
    assert!(
        owned.status.success(),
        "owner-group: {}",
        pipeline::stderr(&owned)
    );
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_plan-gen"));
    cmd.args([
        "--url",
        URL,
        "--namespace",
        ns,
        "--map-file",
        MAP,
        "--with-secret",
    ])
    .args(["--user", "admin@internal", "--insecure-skip-verify"])
    .current_dir(env!("CARGO_MANIFEST_DIR"))
    .env("OVIRT_PASSWORD", "ovirt-sim-demo")
    .env_remove("RUST_LOG")
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&owned.stdout)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "plan-gen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut objects: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for o in &mut objects {
        if o["kind"] == "Plan" {
            o["spec"]["targetNamespace"] = Value::from(ns);
        }
    }
    objects
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
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let obj = get(client, kind, ns, name).await;
        if check(&obj) {
            return obj;
        }
        assert!(
            Instant::now() < deadline,
            "{kind} {ns}/{name}: condition not reached in {secs}s; status: {}",
            obj["status"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
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
    let provider = wait_for(&client, "Provider", &ns, "ovirt", 30, |o| {
        condition(o, "Ready").is_some()
    })
    .await;
    assert_eq!(provider["status"]["phase"], "Ready");
    for kind in ["NetworkMap", "StorageMap"] {
        let map = wait_for(&client, kind, &ns, "ovirt-host", 30, |o| {
            condition(o, "Ready").is_some()
        })
        .await;
        assert!(!map["status"]["references"].as_array().unwrap().is_empty());
    }
    let plan_names = plans(&objects);
    assert!(!plan_names.is_empty());
    for plan in &plan_names {
        let p = wait_for(&client, "Plan", &ns, plan, 30, |o| {
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
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while ended.len() < plan_names.len() {
        let next = tokio::time::timeout_at(deadline, updates.next())
            .await
            .unwrap_or_else(|_| panic!("plans not finished in 120 s; finished: {ended:?}"));
        let Some(Ok(p)) = next else { continue };
        let p = serde_json::to_value(p).unwrap();
        saw_partial |= transfer_midway(&p);
        if condition(&p, "Succeeded").is_some() || condition(&p, "Failed").is_some() {
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
        let m = wait_for(&client, "Migration", &ns, &format!("{plan}-1"), 10, |o| {
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
    let p = wait_for(&client, "Plan", &ns, plan, 30, |o| {
        condition(o, "VMNetworksNotMapped").is_some()
    })
    .await;
    let c = condition(&p, "VMNetworksNotMapped").unwrap();
    assert_eq!(c["category"], "Critical");
    assert_eq!(c["reason"], "NotMapped");
    assert!(
        c["items"][0].as_str().unwrap().contains("rdu-web-01"),
        "{c}"
    );
    assert!(condition(&p, "Ready").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_failure_fails_the_plan_and_a_second_migration_retries_only_that_vm() {
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
    wait_for(&client, "Plan", &ns, plan, 30, |o| {
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
    wait_for(&client, "Migration", &ns, "first", 10, |o| {
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
    wait_for(&client, "Migration", &ns, "second", 10, |o| {
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
    let bed = kubebed::Testbed::shared();
    let ns = bed.namespace("fsim-cancel").await;
    let client = bed.client().await;
    let objects = objects_for(&ns, &["rdu-web-03", "rdu-web-02"]);
    let plan = &plans(&objects)[0];
    // One VM at a time and a slow link: the second VM waits long enough to be canceled.
    let _sim = sim(
        &ns,
        &[
            "--max-vm-inflight",
            "1",
            "--bandwidth",
            "1Gbit/s",
            "--time-scale",
            "100",
        ],
    );
    for o in &objects {
        apply(&client, o).await;
    }
    wait_for(&client, "Plan", &ns, plan, 30, |o| {
        condition(o, "Ready").is_some()
    })
    .await;
    start_migration(&client, &ns, plan, "run").await;
    let p = wait_for(&client, "Plan", &ns, plan, 30, |o| {
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
        "200",
    ];
    let mut first = sim(&ns, &args);
    for o in &objects {
        apply(&client, o).await;
    }
    wait_for(&client, "Plan", &ns, plan, 30, |o| {
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
    let m = wait_for(&client, "Migration", &ns, "run", 10, |o| {
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
