//! Warm migrations on the real test bed (issue 11's DataVolume path, issue 15 part 3): the PVCs
//! and scratch PVCs forklift-sim creates, playing Forklift v2.12.5 and CDI v1.66.0, against
//! capacity-calc --warm and against Forklift's and CDI's formulas written out here; and a warm
//! plan's precopies and cutover at the Migration's `spec.cutover`.

#[path = "kubebed/mod.rs"]
mod kubebed;
mod pipeline;
mod support;

use kubebed::{apply, forklift};

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

const URL: &str = "https://engine.example.com/ovirt-engine/api";
const MAP: &str = "tests/fixtures/demo-networks.map";
const MIB: u64 = 1 << 20;

/// CDI v1.66.0's PVC for a DataVolume requesting `request` bytes, written out from
/// pkg/controller/datavolume/util.go `renderPvcSpecVolumeSize` → pkg/controller/common/util.go
/// `InflateSizeWithOverhead` → pkg/util/util.go `GetRequiredSpace` with the CDIConfig default
/// overhead 0.06 (pkg/common/common.go `DefaultGlobalOverhead`): Filesystem
/// ceil(align_1MiB(request) * 1.06) in float64; Block the request.
fn cdi_pvc_bytes(request: u64, block: bool) -> u64 {
    if block {
        request
    } else {
        (request.div_ceil(MIB) as f64 * MIB as f64 * 1.06).ceil() as u64
    }
}

/// CDI v1.66.0 pkg/controller/util.go `createScratchPersistentVolumeClaim` for that PVC (request
/// `pvc`): usable = round_down(ceil(pvc / (1 + o_pvc)), 1 MiB) (`GetUsableSpace`, o_pvc 0 for
/// Block), then ceil(align_1MiB(usable) * 1.06) (`GetRequiredSpace`, the scratch PVC being
/// Filesystem), rounded up to 1 MiB.
fn cdi_scratch_bytes(pvc: u64, block: bool) -> u64 {
    let o_pvc = if block { 0.0 } else { 0.06 };
    let usable = (pvc as f64 / (1.0 + o_pvc)).ceil() as u64 / MIB * MIB;
    let required = (usable.div_ceil(MIB) as f64 * MIB as f64 * 1.06).ceil() as u64;
    required.div_ceil(MIB) * MIB
}

fn data_volumes() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "cdi.kubevirt.io",
        "v1beta1",
        "DataVolume",
    ))
}

/// A map file: the demo's networks, every storage domain to `class`.
fn map_file(dir: &std::path::Path, class: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(MAP).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("storage "))
        .map(str::to_string)
        .collect();
    lines.push(format!("storage *={class}"));
    let path = dir.join(format!("{class}.map"));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// plan-gen --warm's objects for `records` (owner-group's output) in `forklift_ns`; each Plan's
/// target namespace becomes `target(original)`.
fn warm_objects(
    records: &[u8],
    forklift_ns: &str,
    map: &std::path::Path,
    target: &dyn Fn(&str) -> String,
) -> Vec<Value> {
    plan_objects(records, forklift_ns, map, true, target)
}

/// plan-gen's objects (`--warm` when `warm`), as `warm_objects` describes.
fn plan_objects(
    records: &[u8],
    forklift_ns: &str,
    map: &std::path::Path,
    warm: bool,
    target: &dyn Fn(&str) -> String,
) -> Vec<Value> {
    let mut args = vec![
        "--url",
        URL,
        "--namespace",
        forklift_ns,
        "--map-file",
        map.to_str().unwrap(),
        "--with-secret",
        "--user",
        "admin@internal",
        "--insecure-skip-verify",
        "-q",
    ];
    if warm {
        args.push("--warm");
    }
    let out = pipeline::run_with_env(
        env!("CARGO_BIN_EXE_plan-gen"),
        &args,
        records,
        &[("OVIRT_PASSWORD", "ovirt-sim-demo")],
    );
    assert!(
        matches!(pipeline::code(&out), 0 | 1),
        "plan-gen: {}",
        pipeline::stderr(&out)
    );
    let mut objects = pipeline::lines(&out);
    for o in objects.iter_mut().filter(|o| o["kind"] == "Plan") {
        assert_eq!(o["spec"]["type"], if warm { "warm" } else { "cold" }, "{o}");
        let original = o["spec"]["targetNamespace"].as_str().unwrap().to_string();
        o["spec"]["targetNamespace"] = Value::from(target(&original));
    }
    objects
}

/// A Migration of `plan` whose cutover is at `cutover` (RFC 3339).
async fn start_migration(client: &kube::Client, ns: &str, plan: &str, cutover: &str) {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &forklift("Migration"));
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Migration",
        "metadata": {"name": format!("{plan}-run"), "namespace": ns},
        "spec": {"plan": {"name": plan, "namespace": ns}, "cutover": cutover},
    }))
    .unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
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
    q.0.parse()
        .unwrap_or_else(|_| panic!("{}: not plain bytes", q.0))
}

/// The world's image disks of the VMs with these ids: (VM id, disk id, max(provisioned, actual)).
fn world_disks(vm_ids: &HashSet<String>) -> Vec<(String, String, u64)> {
    let world = pipeline::world();
    let disks = pipeline::by_id("disks");
    let mut out = Vec::new();
    for vm in world["vms"].as_array().unwrap() {
        let id = vm["id"].as_str().unwrap();
        if !vm_ids.contains(id) {
            continue;
        }
        for a in vm["disk_attachments"].as_array().unwrap() {
            let d = disks[a["disk"].as_str().unwrap()];
            if d["storage_type"] != "image" {
                continue;
            }
            // Forklift v2.12.5 adapter/ovirt/builder.go `DataVolumes`: max(provisioned, actual).
            let size = d["provisioned_size"]
                .as_u64()
                .unwrap()
                .max(d["actual_size"].as_u64().unwrap_or(0));
            out.push((id.to_string(), d["id"].as_str().unwrap().to_string(), size));
        }
    }
    out
}

/// capacity-calc --warm --quota for `records` in `class` (Block per its StorageProfile when
/// `block`), every VM in flight at once: its records by namespace.
fn capacity(records: &[u8], class: &str, block: bool) -> BTreeMap<String, Value> {
    let rule = format!("*={class}");
    let mode = format!("{class}=Block");
    let mut args = vec![
        "--warm",
        "--quota",
        "--storage-map",
        &rule,
        "--max-vm-inflight",
        "1000",
    ];
    if block {
        args.extend(["--volume-mode", &mode]);
    }
    let out = pipeline::run(env!("CARGO_BIN_EXE_capacity-calc"), &args, records);
    assert_eq!(
        pipeline::code(&out),
        0,
        "capacity-calc: {}",
        pipeline::stderr(&out)
    );
    pipeline::lines(&out)
        .into_iter()
        .map(|r| (r["namespace"].as_str().unwrap().to_string(), r))
        .collect()
}

/// Runs the demo lab's warm plans with every storage domain mapped to `class` until every disk's
/// PVC and scratch PVC exist (the link too slow for any copy to end), then compares.
async fn warm_pvcs_match(class: &str, block: bool) {
    let bed = kubebed::Testbed::shared();
    let client = bed.client().await;
    let forklift_ns = bed.namespace("mtv-w").await;
    let tag = bed.unique_name("w");
    let dir = tempfile::tempdir().unwrap();
    let owned = pipeline::owned(pipeline::demo_records());
    let target = |ns: &str| format!("{ns}-{tag}");
    let objects = warm_objects(&owned, &forklift_ns, &map_file(dir.path(), class), &target);
    // capacity-calc on exactly the VMs the plans hold.
    let planned: HashSet<String> = objects
        .iter()
        .filter(|o| o["kind"] == "Plan")
        .flat_map(|p| p["spec"]["vms"].as_array().unwrap().clone())
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    let records: String = String::from_utf8(owned.clone())
        .unwrap()
        .lines()
        .filter(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            planned.contains(v["id"].as_str().unwrap_or_default())
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let quotas = capacity(records.as_bytes(), class, block);
    let disks = world_disks(&planned);
    assert!(disks.len() > 100, "{} disks planned", disks.len());
    // The other volume mode's run left the LUN disks' volumes (Forklift deletes none).
    kubebed::delete_lun_volumes(&client, &planned).await;

    let _sim = kubebed::ForkliftSim::start(
        bed,
        &pipeline::world_path(),
        &[
            "--namespace",
            &forklift_ns,
            "--bandwidth",
            "1Mbit/s",
            "--per-vm-overhead",
            "1s",
            "--max-vm-inflight",
            "1000",
            "--status-interval",
            "1s",
        ],
    );
    for o in &objects {
        apply(&client, o).await;
    }
    let plans: Vec<String> = objects
        .iter()
        .filter(|o| o["kind"] == "Plan")
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    for plan in &plans {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &forklift_ns, &forklift("Plan"));
        let deadline = Instant::now() + Duration::from_secs(120);
        while !api.get(plan).await.unwrap().data["status"]["conditions"]
            .as_array()
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        {
            assert!(Instant::now() < deadline, "plan {plan} not Ready");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        start_migration(&client, &forklift_ns, plan, "2099-01-01T00:00:00Z").await;
    }

    // Every planned disk's PVC (found by Forklift's disk-source annotation) and its scratch PVC.
    let targets: HashSet<String> = objects
        .iter()
        .filter(|o| o["kind"] == "Plan")
        .map(|o| o["spec"]["targetNamespace"].as_str().unwrap().to_string())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(600);
    let pvcs = loop {
        let mut all = Vec::new();
        for ns in &targets {
            let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
            all.extend(api.list(&Default::default()).await.unwrap().items);
        }
        let scratches = all
            .iter()
            .filter(|p| p.metadata.name.as_deref().unwrap().ends_with("-scratch"))
            .count();
        if all.len() >= 2 * disks.len() && scratches == disks.len() {
            break all;
        }
        assert!(
            Instant::now() < deadline,
            "{} PVCs ({scratches} scratch) of {} disks after 600 s",
            all.len(),
            disks.len()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    compare(&pvcs, &disks, &quotas, &target, class, block);
}

/// Each disk's PVC and scratch PVC against CDI's formulas, and each namespace's sums against
/// capacity-calc's pvc_bytes and peak_pvc_bytes for the class.
fn compare(
    pvcs: &[PersistentVolumeClaim],
    disks: &[(String, String, u64)],
    quotas: &BTreeMap<String, Value>,
    target: &dyn Fn(&str) -> String,
    class: &str,
    block: bool,
) {
    let by_name: BTreeMap<(String, String), &PersistentVolumeClaim> = pvcs
        .iter()
        .map(|p| {
            (
                (
                    p.metadata.namespace.clone().unwrap(),
                    p.metadata.name.clone().unwrap(),
                ),
                p,
            )
        })
        .collect();
    let mut sums: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (vm, disk, size) in disks {
        let pvc = pvcs
            .iter()
            .find(|p| {
                let a = p.metadata.annotations.as_ref();
                a.and_then(|a| a.get("forklift.konveyor.io/disk-source")) == Some(disk)
                    && p.metadata.labels.as_ref().and_then(|l| l.get("vmID")) == Some(vm)
            })
            .unwrap_or_else(|| panic!("no PVC for disk {disk}"));
        let spec = pvc.spec.as_ref().unwrap();
        assert_eq!(spec.storage_class_name.as_deref(), Some(class));
        assert_eq!(
            spec.volume_mode.as_deref(),
            Some(if block { "Block" } else { "Filesystem" })
        );
        let bytes = request_bytes(pvc);
        assert_eq!(bytes, cdi_pvc_bytes(*size, block), "PVC of disk {disk}");
        let ns = pvc.metadata.namespace.clone().unwrap();
        let name = format!("{}-scratch", pvc.metadata.name.as_deref().unwrap());
        let scratch = by_name
            .get(&(ns.clone(), name.clone()))
            .unwrap_or_else(|| panic!("no scratch PVC {ns}/{name}"));
        let scratch_bytes = request_bytes(scratch);
        assert_eq!(scratch_bytes, cdi_scratch_bytes(bytes, block), "{name}");
        assert_eq!(
            scratch.spec.as_ref().unwrap().storage_class_name.as_deref(),
            Some(class)
        );
        let sum = sums.entry(ns).or_default();
        sum.0 += bytes;
        sum.1 += bytes + scratch_bytes;
    }
    for (ns, record) in quotas {
        let (steady, peak) = sums.get(&target(ns)).copied().unwrap_or_default();
        assert_eq!(record["copy_path"], "datavolume-warm", "{record}");
        assert_eq!(
            record["pvc_bytes"][class].as_u64(),
            Some(steady),
            "{ns}: {record}"
        );
        assert_eq!(
            record["peak_pvc_bytes"][class].as_u64(),
            Some(peak),
            "{ns}: {record}"
        );
    }
    assert_eq!(
        quotas.len(),
        sums.len(),
        "namespaces: capacity-calc {:?}, cluster {:?}",
        quotas.keys().collect::<Vec<_>>(),
        sums.keys().collect::<Vec<_>>()
    );
}

/// Issue 11, done-when: capacity-calc's PVC bytes equal, byte for byte, the requests of the PVCs
/// forklift-sim created, for every disk of the demo lab on the warm path, in a Filesystem class
/// (trident-nfs) and a Block class (ceph-rbd-block); the scratch PVCs as CDI sizes them and as
/// capacity-calc's peak counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_pvcs_and_scratch_pvcs_match_capacity_calc_and_cdi_in_both_volume_modes() {
    warm_pvcs_match("trident-nfs", false).await;
    warm_pvcs_match("ceph-rbd-block", true).await;
}

/// Issue 15 part 3: a warm plan precopies every PRECOPY_INTERVAL until the Migration's
/// spec.cutover, then cuts over (the Cutover step starts at or after spec.cutover) and the VM
/// succeeds; DataVolumes and importer pods are gone afterwards, the PVCs belong to the VM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_plan_precopies_until_its_cutover_and_the_vm_succeeds() {
    let bed = kubebed::Testbed::shared();
    let client = bed.client().await;
    let ns = bed.namespace("warm-t").await;
    let (sim, plan, cutover) = start_warm_plan(&client, &ns, "rdu-web-02").await;
    let (vm, seen) = watch_warm_vm(&client, &ns, &plan).await;
    assert!(
        seen.successes_before_cutover >= 2,
        "only {} precopies before the cutover",
        seen.successes_before_cutover
    );
    assert!(
        seen.paused,
        "no DataVolume was ever Paused between checkpoints"
    );
    assert!(seen.checkpoint_pods, "no importer pod of a checkpoint seen");
    let step = |name: &str| {
        vm["pipeline"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} step: {vm}"))
    };
    // forklift-sim's clock (--clock-start plus simulated time) stands for Forklift's
    // time.Now(): the cutover begins once that clock reaches spec.cutover (Forklift v2.12.5
    // migration.go `(*Migration).execute`, CopyingPaused, `!Spec.Cutover.After(time.Now())`).
    let cut = sim
        .events()
        .into_iter()
        .find(|e| e["event"] == "vm_cutover")
        .expect("no vm_cutover event");
    let cutover_started: jiff::Timestamp = cut["sim_time"].as_str().unwrap().parse().unwrap();
    assert!(
        cutover_started >= cutover,
        "cutover at {cutover_started} (simulated), before {cutover}"
    );
    assert!(step("Cutover")["started"].is_string());
    assert_eq!(step("Cutover")["phase"], "Completed");
    let warm = &vm["warm"];
    let precopies = warm["precopies"].as_array().unwrap();
    assert!(precopies.len() >= 3, "{warm}");
    assert!(
        precopies
            .iter()
            .all(|p| p["snapshot"].is_string() && p["end"].is_string()),
        "{warm}"
    );
    assert_eq!(
        warm["successes"].as_u64().unwrap() as usize,
        precopies.len() - 1,
        "{warm}"
    );

    let finished: Vec<Value> = sim
        .events()
        .into_iter()
        .filter(|e| e["event"] == "vm_finished")
        .collect();
    eprintln!(
        "warm: {warm}\nvm_finished: {}",
        finished.first().cloned().unwrap_or_default()
    );
    assert_eq!(finished.len(), 1, "{finished:?}");
    assert_eq!(finished[0]["result"], "Succeeded");
    assert_eq!(
        finished[0]["precopies"].as_u64().unwrap() as usize,
        precopies.len()
    );
    assert!(
        finished[0]["downtime_secs"].as_f64().unwrap() > 0.0,
        "{}",
        finished[0]
    );
    assert_cleaned_up(&client, &ns).await;
}

/// plan-gen --warm's objects for one demo VM in `ns` (its target namespace too), applied, with
/// forklift-sim running at 600 simulated seconds per real second (a precopy every 6 s) from a
/// clock set to now, and a Migration with no cutover; once the VM has had two precopies, its
/// cutover is set one simulated hour after the latest event of forklift-sim's clock (set by
/// the plan's progress, not by real time: a loaded machine slows the precopies, whose cluster
/// work passes in real time, 600 times over). Returns the simulator, the plan's name and the
/// cutover time (simulated clock).
async fn start_warm_plan(
    client: &kube::Client,
    ns: &str,
    vm: &str,
) -> (kubebed::ForkliftSim, String, jiff::Timestamp) {
    let bed = kubebed::Testbed::shared();
    let dir = tempfile::tempdir().unwrap();
    let chosen: String = std::fs::read_to_string(pipeline::demo_records())
        .unwrap()
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).unwrap()["name"] == vm)
        .map(|l| format!("{l}\n"))
        .collect();
    let one = dir.path().join("one.jsonl");
    std::fs::write(&one, chosen).unwrap();
    let owned = pipeline::owned(&one);
    let same = |_: &str| ns.to_string();
    let objects = warm_objects(&owned, ns, &map_file(dir.path(), "trident-nfs"), &same);
    let plan = objects
        .iter()
        .find(|o| o["kind"] == "Plan")
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .unwrap();
    let clock_start = jiff::Timestamp::now();
    let clock_text = clock_start.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let sim = kubebed::ForkliftSim::start(
        bed,
        &pipeline::world_path(),
        &[
            "--namespace",
            ns,
            "--events",
            "--clock-start",
            &clock_text,
            "--time-scale",
            "600",
            "--precopy-interval",
            "60m",
            "--warm-change-rate",
            "2",
            "--status-interval",
            "300ms",
        ],
    );
    for o in &objects {
        apply(client, o).await;
    }
    let plans: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &forklift("Plan"));
    let ready = |p: &DynamicObject| {
        p.data["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    while !ready(&plans.get(&plan).await.unwrap()) {
        assert!(Instant::now() < deadline, "plan not Ready");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    start_migration(client, ns, &plan, "2099-01-01T00:00:00Z").await;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let p = plans.get(&plan).await.unwrap();
        let vm = &p.data["status"]["migration"]["vms"][0];
        if vm["warm"]["successes"].as_u64().unwrap_or(0) >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not two precopies in 180 s: {vm}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let latest = sim
        .events()
        .iter()
        .filter_map(|e| e["sim_time"].as_str()?.parse::<jiff::Timestamp>().ok())
        .max()
        .expect("no forklift-sim event");
    let cutover = latest + jiff::SignedDuration::from_secs(3600);
    let cutover_text = cutover.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let migrations: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &forklift("Migration"));
    migrations
        .patch(
            &format!("{plan}-run"),
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"cutover": cutover_text}})),
        )
        .await
        .unwrap();
    (sim, plan, cutover_text.parse().unwrap())
}

/// What the test saw of a warm VM while it ran.
#[derive(Default)]
struct Seen {
    successes_before_cutover: u64,
    paused: bool,
    checkpoint_pods: bool,
}

/// Every state the Plans, DataVolumes, Pods and PVCs of `ns` pass through, tagged with the kind,
/// through watches opened now: a poll could miss a short-lived pod or phase at any machine speed.
fn watch_namespace(
    client: &kube::Client,
    ns: &str,
) -> impl futures::Stream<Item = (&'static str, Value)> + Unpin {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let kinds = [
        ("Plan", forklift("Plan")),
        ("DataVolume", data_volumes()),
        ("Pod", ApiResource::erase::<Pod>(&())),
        (
            "PersistentVolumeClaim",
            ApiResource::erase::<PersistentVolumeClaim>(&()),
        ),
    ];
    futures::stream::select_all(kinds.map(|(kind, ar)| {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .filter_map(
                move |o| async move { o.ok().map(|o| (kind, serde_json::to_value(o).unwrap())) },
            )
            .boxed()
    }))
}

/// The next watched object, or a panic naming `what` was not reached by `deadline`.
async fn next_watched(
    events: &mut (impl futures::Stream<Item = (&'static str, Value)> + Unpin),
    deadline: tokio::time::Instant,
    what: &str,
) -> (&'static str, Value) {
    use futures::StreamExt;
    tokio::time::timeout_at(deadline, events.next())
        .await
        .unwrap_or_else(|_| panic!("{what}"))
        .expect("the watches ended")
}

/// Watches the plan until its one VM is done; returns the VM's status and what was seen.
async fn watch_warm_vm(client: &kube::Client, ns: &str, plan: &str) -> (Value, Seen) {
    let mut events = watch_namespace(client, ns);
    let mut seen = Seen::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    let mut vm = Value::Null;
    loop {
        let what = format!("VM not done in 240 s: {vm}");
        let (kind, o) = next_watched(&mut events, deadline, &what).await;
        match kind {
            "DataVolume" => seen.paused |= o["status"]["phase"] == "Paused",
            "Pod" => {
                let name = o["metadata"]["name"].as_str().unwrap();
                seen.checkpoint_pods |= name.contains("-checkpoint-");
            }
            "Plan" if o["metadata"]["name"] == plan => {
                vm = o["status"]["migration"]["vms"][0].clone();
                let cutover_begun = vm["pipeline"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|s| s["name"] == "Cutover" && s["started"].is_string());
                if !cutover_begun {
                    seen.successes_before_cutover = vm["warm"]["successes"].as_u64().unwrap_or(0);
                }
                let done = vm["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["status"] == "True");
                if let Some(c) = done {
                    assert_eq!(c["type"], "Succeeded", "{vm}");
                    return (vm, seen);
                }
            }
            _ => {}
        }
    }
}

/// After the success: no DataVolume, importer pod or scratch PVC is left; the PVCs are owned by
/// the VirtualMachine (kubevirt.go `EnsureVM`, then `DeleteDataVolumes`, `deleteImporterPods`).
async fn assert_cleaned_up(client: &kube::Client, ns: &str) {
    let dvs: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &data_volumes());
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left_dvs = dvs.list(&Default::default()).await.unwrap().items.len();
        let importers = pods
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|p| p.metadata.name.as_deref().unwrap().starts_with("importer-"))
            .count();
        let claims = pvcs.list(&Default::default()).await.unwrap().items;
        let scratch = claims
            .iter()
            .filter(|p| p.metadata.name.as_deref().unwrap().ends_with("-scratch"))
            .count();
        let owned_by_vm = claims.iter().all(|p| {
            p.metadata
                .owner_references
                .as_ref()
                .is_some_and(|o| o.len() == 1 && o[0].kind == "VirtualMachine")
        });
        if left_dvs == 0 && importers == 0 && scratch == 0 && owned_by_vm && !claims.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left: {left_dvs} DataVolumes, {importers} importer pods, {scratch} scratch PVCs; PVCs owned by the VM: {owned_by_vm}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A cold plan whose destination Provider is a remote cluster (an openshift Provider with a URL)
/// takes the DataVolume path too (Forklift v2.12.5 adapter/ovirt/builder.go
/// `SupportsVolumePopulators` false): DataVolumes asking for immediate binding without CDI's
/// populators switched off and without checkpoints, one importer pod per PVC and no scratch PVC
/// (a raw download needs none: CDI v1.66.0 import-controller.go `requiresScratchSpace`), PVCs
/// sized as CDI sizes them, and the VM succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_plan_to_a_remote_cluster_imports_through_datavolumes_without_scratch() {
    let bed = kubebed::Testbed::shared();
    let client = bed.client().await;
    let ns = bed.namespace("remote").await;
    let dir = tempfile::tempdir().unwrap();
    let chosen: String = std::fs::read_to_string(pipeline::demo_records())
        .unwrap()
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).unwrap()["name"] == "rdu-web-02")
        .map(|l| format!("{l}\n"))
        .collect();
    let one = dir.path().join("one.jsonl");
    std::fs::write(&one, chosen).unwrap();
    let same = |_: &str| ns.clone();
    let map = map_file(dir.path(), "trident-nfs");
    let mut objects = plan_objects(&pipeline::owned(&one), &ns, &map, false, &same);
    // The destination becomes a remote cluster: a URL and a token Secret.
    let remote = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "remote-cluster", "namespace": ns},
        "stringData": {"token": "remote-token"}});
    for o in objects
        .iter_mut()
        .filter(|o| o["kind"] == "Provider" && o["spec"]["type"] == "openshift")
    {
        o["spec"]["url"] = Value::from("https://api.remote.example.com:6443");
        o["spec"]["secret"] = json!({"name": "remote-cluster", "namespace": ns});
    }
    objects.insert(0, remote);
    let plan = objects
        .iter()
        .find(|o| o["kind"] == "Plan")
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .unwrap();
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
        ],
    );
    for o in &objects {
        apply(&client, o).await;
    }
    let plans: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &forklift("Plan"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !plans.get(&plan).await.unwrap().data["status"]["conditions"]
        .as_array()
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
    {
        assert!(Instant::now() < deadline, "plan not Ready");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let migrations: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &forklift("Migration"));
    let migration: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Migration",
        "metadata": {"name": "run", "namespace": ns},
        "spec": {"plan": {"name": plan, "namespace": ns}},
    }))
    .unwrap();
    migrations
        .create(&PostParams::default(), &migration)
        .await
        .unwrap();
    let seen = watch_remote(&client, &ns, &plan).await;
    let disks = world_disks(&seen.vm_ids);
    assert!(!disks.is_empty());
    for (_, disk, size) in &disks {
        let bytes = seen.pvc_bytes.get(disk).copied();
        assert_eq!(
            bytes,
            Some(cdi_pvc_bytes(*size, false)),
            "PVC of disk {disk}"
        );
    }
    assert!(
        seen.importers.iter().all(|p| !p.contains("-checkpoint-")),
        "{:?}",
        seen.importers
    );
    assert_eq!(seen.importers.len(), disks.len(), "{:?}", seen.importers);
    assert!(!seen.scratch, "a scratch PVC on a cold import");
    assert_cleaned_up(&client, &ns).await;
}

/// What the remote-destination test saw.
#[derive(Default)]
struct SeenRemote {
    vm_ids: HashSet<String>,
    /// PVC request per disk (the disk-source annotation).
    pvc_bytes: BTreeMap<String, u64>,
    importers: HashSet<String>,
    scratch: bool,
}

/// Watches until the plan's VMs are done (all Succeeded), checking each DataVolume's annotations.
async fn watch_remote(client: &kube::Client, ns: &str, plan: &str) -> SeenRemote {
    let mut events = watch_namespace(client, ns);
    let mut seen = SeenRemote::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let mut status = Value::Null;
    loop {
        let what = format!("not done in 180 s: {status}");
        let (kind, o) = next_watched(&mut events, deadline, &what).await;
        let name = o["metadata"]["name"].as_str().unwrap().to_string();
        let annotation = |key: &str| {
            o["metadata"]["annotations"][key]
                .as_str()
                .map(str::to_string)
        };
        match kind {
            "DataVolume" => {
                // kubevirt.go `dataVolumes`: not warm, remote: immediate binding, populators not
                // switched off, no checkpoints.
                assert_eq!(
                    annotation("cdi.kubevirt.io/storage.bind.immediate.requested").as_deref(),
                    Some("true")
                );
                assert!(
                    annotation("cdi.kubevirt.io/storage.usePopulator").is_none(),
                    "{}",
                    o["metadata"]
                );
                assert!(o["spec"]["checkpoints"].is_null(), "{}", o["spec"]);
            }
            "Pod" if name.starts_with("importer-") => {
                seen.importers.insert(name);
            }
            "PersistentVolumeClaim" => {
                seen.scratch |= name.ends_with("-scratch");
                // CDI notes its importer pod on the PVC (AnnImportPod), even once the pod is gone.
                if let Some(pod) = annotation("cdi.kubevirt.io/storage.import.importPodName") {
                    seen.importers.insert(pod);
                }
                if let Some(disk) = annotation("forklift.konveyor.io/disk-source") {
                    let pvc: PersistentVolumeClaim = serde_json::from_value(o).unwrap();
                    seen.pvc_bytes.insert(disk, request_bytes(&pvc));
                }
            }
            "Plan" if name == plan => {
                status = o["status"].clone();
                if let Some(ids) = all_succeeded(&status) {
                    seen.vm_ids = ids;
                    return seen;
                }
            }
            _ => {}
        }
    }
}

/// The ids of the plan's VMs once every one is done, each asserted Succeeded; None before.
fn all_succeeded(status: &Value) -> Option<HashSet<String>> {
    let vms = status["migration"]["vms"].as_array()?;
    let done = |vm: &Value| {
        vm["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["status"] == "True")
    };
    if vms.is_empty() || !vms.iter().all(done) {
        return None;
    }
    let mut ids = HashSet::new();
    for vm in vms {
        let ok = vm["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Succeeded");
        assert!(ok, "{vm}");
        ids.insert(vm["id"].as_str().unwrap().to_string());
    }
    Some(ids)
}

/// The demo world's image disks of the VM named `name`: (actual_size, provisioned_size), the
/// allocated bytes the guest's changes are counted on and the disk's size.
fn world_vm_disks(name: &str) -> Vec<(u64, u64)> {
    let disks = pipeline::by_id("disks");
    let vm = pipeline::world()["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap();
    vm["disk_attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| disks[a["disk"].as_str().unwrap()])
        .filter(|d| d["storage_type"] == "image")
        .map(|d| {
            let total = d["provisioned_size"].as_u64().unwrap();
            (d["actual_size"].as_u64().unwrap_or(total), total)
        })
        .collect()
}

/// A warm cutover's downtime, written out (issue 15 part 3): the guest rewrites `c` % of each
/// disk's allocated bytes an hour (forklift-sim --warm-change-rate), so `p` seconds after the
/// last snapshot a disk holds min(allocated × c / 100 × p / 3600, size) bytes not yet copied; the
/// cutover copies them with the VM off at `rate` bytes/s, then the VM is created: half of the
/// 60 s per-VM overhead (common::linkmodel, forklift-sim's default split).
fn expected_downtime(disks: &[(u64, u64)], c: f64, p: f64, rate: f64) -> f64 {
    let left: f64 = disks
        .iter()
        .map(|&(used, total)| (used as f64 * c / 100.0 * p / 3600.0).min(total as f64))
        .sum();
    left / rate + 30.0
}

/// One demo VM's warm objects and owner-group record in `dir` (plan-gen --warm in `ns`, its
/// target namespace too): (objects file, records file, plan name).
fn one_warm_plan(dir: &std::path::Path, vm: &str, ns: &str) -> (String, String, String) {
    let chosen: String = std::fs::read_to_string(pipeline::demo_records())
        .unwrap()
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).unwrap()["name"] == vm)
        .map(|l| format!("{l}\n"))
        .collect();
    let one = dir.join("one.jsonl");
    std::fs::write(&one, chosen).unwrap();
    let owned = pipeline::owned(&one);
    let records = dir.join("owned.jsonl");
    std::fs::write(&records, &owned).unwrap();
    let same = |_: &str| ns.to_string();
    let objects = warm_objects(&owned, ns, &map_file(dir, "trident-nfs"), &same);
    let plan = objects
        .iter()
        .find(|o| o["kind"] == "Plan")
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .unwrap();
    let path = dir.join("objects.jsonl");
    let text: String = objects.iter().map(|o| format!("{o}\n")).collect();
    std::fs::write(&path, text).unwrap();
    let s = |p: std::path::PathBuf| p.to_str().unwrap().to_string();
    (s(path), s(records), plan)
}

/// `plan-run --simulate` on one warm plan (rdu-web-02): its precopies run before the window,
/// the cutover is placed at the window's opening, and both the downtime plan-run forecasts and
/// the one its simulation gives agree with the closed form. The run starts at 20:00 UTC, the VM
/// takes its initial snapshot after Initialize (half the 60 s overhead: 20:00:30) and the
/// precopy interval is 59 min 30 s, so at the 21:00 cutover exactly one interval of changes is
/// left, as the forecast assumes.
#[test]
fn simulated_warm_cutover_is_in_the_window_with_the_closed_form_downtime() {
    let dir = tempfile::tempdir().unwrap();
    let (objects, records, plan) = one_warm_plan(dir.path(), "rdu-web-02", "mtv");
    let args = [
        "--simulate",
        "--bandwidth",
        "1Gbit/s",
        "--per-vm-overhead",
        "60s",
        "--warm-change-rate",
        "2",
        "--precopy-interval",
        "3570s",
        "--start",
        "2026-12-01T20:00:00Z",
        "--window",
        "21:00-23:00",
        "--records",
        &records,
        &objects,
    ];
    let out = pipeline::run_with_env(env!("CARGO_BIN_EXE_plan-run"), &args, b"", &[("TZ", "UTC")]);
    assert_eq!(pipeline::code(&out), 0, "{}", pipeline::stderr(&out));
    let events = pipeline::lines(&out);
    let expected = expected_downtime(&world_vm_disks("rdu-web-02"), 2.0, 3570.0, 125e6);
    let started = events.iter().find(|e| e["event"] == "started").unwrap();
    assert_eq!(
        started["time"], "2026-12-01T20:00:00Z",
        "precopies start before the window"
    );
    let cut = events.iter().find(|e| e["event"] == "cutover").unwrap();
    assert_eq!(cut["plan"], plan.as_str());
    assert_eq!(cut["cutover"], "2026-12-01T21:00:00Z", "{cut}");
    assert_eq!(cut["fits"], true, "{cut}");
    let forecast = cut["downtime_secs"].as_f64().unwrap();
    assert!(
        (forecast - expected).abs() < 0.002,
        "forecast {forecast}, by hand {expected}"
    );
    let vm = events
        .iter()
        .find(|e| e["event"] == "vm-succeeded")
        .unwrap();
    assert_eq!(vm["cutover"], "2026-12-01T21:00:00Z", "{vm}");
    assert_eq!(vm["precopies"], 1, "{vm}");
    let simulated = vm["downtime_secs"].as_f64().unwrap();
    eprintln!("downtime: by hand {expected:.3} s, forecast {forecast} s, simulated {simulated} s");
    assert!(
        (simulated - expected).abs() < 0.002,
        "simulated {simulated}, by hand {expected}"
    );

    let mut table_args = args.to_vec();
    table_args.extend(["--format", "table"]);
    let out = pipeline::run_with_env(
        env!("CARGO_BIN_EXE_plan-run"),
        &table_args,
        b"",
        &[("TZ", "UTC")],
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("DOWNTIME") || text.contains("downtime"),
        "{text}"
    );
    assert!(text.contains("2026-12-01T21:00:00Z"), "{text}");
}

/// Issue 15 part 3, live: plan-run starts a warm plan's Migration at once (the precopies run
/// before the window opens) with `spec.cutover` at the window's opening; forklift-sim (its clock
/// 600 times as fast from now, standing for Forklift's time.Now()) precopies until then and cuts
/// over inside the window; plan-run's `cutover` event forecasts the closed-form downtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_run_places_a_warm_cutover_in_the_window_and_forklift_sim_keeps_it() {
    warm_cutover_in_the_window("warm-win", false).await;
}

/// The same with the plan's Migration already running, without a cutover (started by hand, or
/// by a plan-run that was stopped): plan-run attaches to it and patches its `spec.cutover`,
/// which Forklift v2.12.5 allows (the validating webhook checks only that the user may create
/// VirtualMachines in the target namespace) and honours (the Migration is read again at each
/// reconcile, controller.go `activeMigration`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_run_patches_the_cutover_onto_a_running_warm_migration() {
    warm_cutover_in_the_window("warm-patch", true).await;
}

/// A Migration `<plan>-1` of `plan` without a cutover, once the plan is Ready.
async fn start_migration_without_cutover(
    client: &kube::Client,
    ns: &str,
    objects: &str,
    plan: &str,
) {
    for line in std::fs::read_to_string(objects).unwrap().lines() {
        apply(client, &serde_json::from_str(line).unwrap()).await;
    }
    let plans: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &forklift("Plan"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !plans.get(plan).await.unwrap().data["status"]["conditions"]
        .as_array()
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
    {
        assert!(Instant::now() < deadline, "plan not Ready");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &forklift("Migration"));
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Migration",
        "metadata": {"name": format!("{plan}-1"), "namespace": ns},
        "spec": {"plan": {"name": plan, "namespace": ns}},
    }))
    .unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
}

/// Runs plan-run with a window four hours ahead on one warm plan (its Migration started
/// beforehand without a cutover when `precreate`) and checks the cutover, as the tests above say.
async fn warm_cutover_in_the_window(prefix: &str, precreate: bool) {
    let bed = kubebed::Testbed::shared();
    let client = bed.client().await;
    let ns = bed.namespace(prefix).await;
    let dir = tempfile::tempdir().unwrap();
    let (objects, records, plan) = one_warm_plan(dir.path(), "rdu-web-02", &ns);
    let clock_start = jiff::Timestamp::now();
    // The window opens on the first whole minute six hours from now (UTC), 36 s away on
    // forklift-sim's clock, and lasts eight hours. (The cluster's own latency, the importer pods
    // of each checkpoint, passes in real time and so counts 600 times over: a precopy takes
    // tens of simulated minutes on a quiet machine, and a CI run on a loaded one saw a precopy
    // take 20 s, three and a half simulated hours. What the test holds to is the order of
    // events below, which no slowness changes.)
    let opens =
        jiff::Timestamp::from_second((clock_start.as_second() + 21_600 + 59) / 60 * 60).unwrap();
    let closes = opens + jiff::SignedDuration::from_secs(8 * 3600);
    let hm = |t: jiff::Timestamp| t.strftime("%H:%M").to_string();
    let window = format!("{}-{}", hm(opens), hm(closes));
    let sim = kubebed::ForkliftSim::start(
        bed,
        &pipeline::world_path(),
        &[
            "--namespace",
            &ns,
            "--events",
            "--clock-start",
            &clock_start.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "--time-scale",
            "600",
            "--bandwidth",
            "1Gbit/s",
            "--precopy-interval",
            "10m",
            "--warm-change-rate",
            "2",
            "--tick",
            "20ms",
            "--status-interval",
            "300ms",
        ],
    );
    if precreate {
        start_migration_without_cutover(&client, &ns, &objects, &plan).await;
    }
    let kubeconfig = bed.kubeconfig.to_str().unwrap().to_string();
    let args = vec![
        "--kubeconfig".to_string(),
        kubeconfig,
        "--window".into(),
        window.clone(),
        "--bandwidth".into(),
        "1Gbit/s".into(),
        "--warm-change-rate".into(),
        "2".into(),
        "--precopy-interval".into(),
        "10m".into(),
        "--ready-timeout".into(),
        "300s".into(),
        "--records".into(),
        records,
        objects,
    ];
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        pipeline::run_with_env(env!("CARGO_BIN_EXE_plan-run"), &args, b"", &[("TZ", "UTC")])
    })
    .await
    .unwrap();
    assert_eq!(pipeline::code(&out), 0, "{}", pipeline::stderr(&out));
    let events = pipeline::lines(&out);
    let cut = events
        .iter()
        .find(|e| e["event"] == "cutover")
        .expect("no cutover event");
    let at: jiff::Timestamp = cut["cutover"].as_str().unwrap().parse().unwrap();
    assert_eq!(at, opens, "{cut}");
    assert_eq!(cut["fits"], true);
    assert_eq!(
        cut["patched"].as_bool().unwrap_or(false),
        precreate,
        "{cut}"
    );
    let first = events
        .iter()
        .find(|e| e["event"] == "started" || e["event"] == "attached")
        .unwrap();
    assert_eq!(
        first["event"],
        if precreate { "attached" } else { "started" }
    );
    let expected = expected_downtime(&world_vm_disks("rdu-web-02"), 2.0, 600.0, 125e6);
    let forecast = cut["downtime_secs"].as_f64().unwrap();
    assert!(
        (forecast - expected).abs() < 0.002,
        "forecast {forecast}, by hand {expected}"
    );
    let finished = events
        .iter()
        .find(|e| e["event"] == "plan-finished")
        .unwrap();
    assert_eq!(finished["outcome"], "Succeeded", "{finished}");

    // The Migration plan-run made carries that cutover.
    let migrations: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &forklift("Migration"));
    let m = migrations.get(&format!("{plan}-1")).await.unwrap();
    let spec_cutover: jiff::Timestamp =
        m.data["spec"]["cutover"].as_str().unwrap().parse().unwrap();
    assert!(
        opens <= spec_cutover && spec_cutover < closes,
        "{spec_cutover} not in {window}"
    );

    // forklift-sim's clock: precopies before the window, the cutover (source off) inside it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let sim_events = loop {
        let events = sim.events();
        if events.iter().any(|e| e["event"] == "vm_finished") || Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let sim_time = |e: &Value| {
        e["sim_time"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
    };
    let precopied: Vec<jiff::Timestamp> = sim_events
        .iter()
        .filter(|e| e["event"] == "vm_precopied")
        .map(sim_time)
        .collect();
    // The first copy ends before the window opens, and copies go on until it opens: Forklift
    // looks at spec.cutover only in CopyingPaused (v2.12.5 pkg/controller/plan/migration.go
    // `execute`, phase CopyingPaused), so a precopy under way when the window opens ends first
    // and the cutover follows at once. At most one copy ends after the opening, none after the
    // cutover.
    assert!(
        precopied.iter().any(|t| *t < opens),
        "copies ended at {precopied:?}, the window opens at {opens}"
    );
    let off = sim_events
        .iter()
        .find(|e| e["event"] == "vm_cutover")
        .map(sim_time)
        .expect("no vm_cutover");
    let late: Vec<_> = precopied.iter().filter(|t| **t >= opens).collect();
    assert!(
        late.len() <= 1 && precopied.iter().all(|t| *t <= off),
        "copies ended at {precopied:?}: after the opening {opens} only one may, before the cutover {off}"
    );
    // The cutover starts at spec.cutover (the opening), or at the end of the copy under way
    // then, at forklift-sim's next tick: never before, and no later than an hour of simulated
    // time (6 s of real time, for a tick held up on a loaded machine). Whether that is before
    // the window closes depends on how long that copy took, and its importer pods run in real
    // time, 600 times over (a CI run on a machine loaded by builds saw one take over a minute,
    // ten simulated hours); so the close is checked only for plan-run's spec.cutover, above.
    assert!(
        opens <= off,
        "cut over at {off}, before the window {window}"
    );
    let ready = late.first().map_or(opens, |end| **end);
    assert!(
        off.duration_since(ready) <= jiff::SignedDuration::from_secs(3600),
        "cut over at {off}, the copy under way at the opening {opens} ended at {ready}"
    );
    let vm = sim_events
        .iter()
        .find(|e| e["event"] == "vm_finished")
        .unwrap();
    assert_eq!(vm["result"], "Succeeded", "{vm}");
    eprintln!(
        "live: {} precopies before {opens}, cutover at {off} (simulated), downtime {} s simulated, forecast {forecast} s",
        precopied.len(),
        vm["downtime_secs"]
    );
}
