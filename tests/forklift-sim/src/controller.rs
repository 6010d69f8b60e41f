//! The control loop: reflectors keep a view of the cluster; every tick validates what changed,
//! starts, resumes and cancels executions, moves the simulation on, and writes statuses
//! (server-side apply on the status subresource, at a bounded rate per running plan).

mod target;
mod warm;

use crate::conditions::{self, ADVISORY, REQUIRED, WARN, cond, cond_items, durable, stamp};
use crate::footprint::Footprint;
use crate::objects::Stores;
use crate::run::{Outcome, Stage, VmRun, plan_outcome, same_vm};
use crate::validate::{self, Cluster, MapKind, PlanContext, name, namespace, ref_key, uid};
use crate::world::{Lookup, World};
use crate::{
    Args, FAIL_ALWAYS_ANNOTATION, FAIL_VMS_ANNOTATION, FAILED_ONCE_ANNOTATION, FIELD_MANAGER,
};
use common::Result;
use common::linkmodel::LinkModel;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::reflector::Store;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::{Duration, Instant};

fn forklift(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("forklift.konveyor.io", "v1beta1", kind),
        plural,
    )
}

fn reflect(client: &Client, resource: &ApiResource, ns: Option<&str>) -> Store<DynamicObject> {
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    };
    crate::objects::reflect(api, resource.clone(), resource.kind.clone())
}

/// One executing Migration of a plan.
struct Run {
    plan_key: (String, String),
    migration_key: (String, String),
    migration_uid: String,
    provider_key: (String, String),
    started: String,
    completed: Option<String>,
    history: Vec<Value>,
    vms: Vec<VmRun>,
    outcome: Option<Outcome>,
    cancel_reason: Option<&'static str>,
    fail_always: bool,
    fail_names: HashSet<String>,
    failed_once: HashSet<String>,
    last_flush: Option<Instant>,
    force_flush: bool,
    /// Cold to the host cluster: disks go through volume populators.
    populators: bool,
    /// Warm, or to a remote cluster: disks go through CDI DataVolumes. (Neither with
    /// `--footprint vm-only`: the link model alone moves them.)
    datavolumes: bool,
    /// A warm plan: precopies, then a cutover at the Migration's `spec.cutover`.
    warm: bool,
    /// Target storage class by source storage domain id (the plan's StorageMap), read once.
    classes: Option<HashMap<String, String>>,
}

impl Run {
    fn render(&self, initialize_secs: f64) -> Value {
        let mut m = json!({
            "started": self.started,
            "history": self.history,
            "vms": self.vms.iter().map(|v| v.render(initialize_secs)).collect::<Vec<_>>(),
        });
        if let Some(c) = &self.completed {
            m["completed"] = Value::from(c.clone());
        }
        m
    }
}

fn outcome_condition(outcome: Outcome, subject: &str, reason: &str) -> Value {
    let message = match outcome {
        Outcome::Succeeded => format!("The {subject} has SUCCEEDED."),
        Outcome::Failed => format!("The {subject} has FAILED."),
        Outcome::Canceled => format!("The {subject} has been CANCELED."),
    };
    durable(cond(outcome.as_str(), ADVISORY, reason, &message))
}

const EXECUTION_TYPES: [&str; 4] = ["Executing", "Succeeded", "Failed", "Canceled"];

/// The roles forklift-sim plays on the target side besides Forklift's plan controller.
struct Roles {
    cdi: crate::cdi::Cdi,
    provisioner: crate::provisioner::Provisioner,
    populator: crate::populator::Populator,
    cdi_import: crate::cdi_import::CdiImport,
    node: crate::node::NodeRole,
    kubevirt: crate::kubevirt::KubeVirtRole,
}

pub struct Controller {
    client: Client,
    stores: Stores,
    footprint: Footprint,
    roles: Roles,
    args: Args,
    world: World,
    link: LinkModel,
    cluster: Cluster,
    plan_ar: ApiResource,
    migration_ar: ApiResource,
    provider_ar: ApiResource,
    network_map_ar: ApiResource,
    storage_map_ar: ApiResource,
    /// Status we last wrote, by object uid: fresher than the reflectors' view.
    written: HashMap<String, Value>,
    /// Executions, by plan uid.
    runs: HashMap<String, Run>,
    sim_secs: f64,
    last_tick: Instant,
}

pub async fn run(args: Args, world: World) -> Result<()> {
    let client = crate::objects::client().await?;
    let plan_ar = forklift("Plan", "plans");
    let migration_ar = forklift("Migration", "migrations");
    let provider_ar = forklift("Provider", "providers");
    let network_map_ar = forklift("NetworkMap", "networkmaps");
    let storage_map_ar = forklift("StorageMap", "storagemaps");
    let vm_ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachine"),
        "virtualmachines",
    );
    let secrets = crate::objects::reflect(
        match args.namespace.as_deref() {
            Some(ns) => Api::<Secret>::namespaced(client.clone(), ns),
            None => Api::<Secret>::all(client.clone()),
        },
        (),
        "Secret",
    );
    let ns = args.namespace.as_deref();
    let cluster = Cluster {
        providers: reflect(&client, &provider_ar, ns),
        network_maps: reflect(&client, &network_map_ar, ns),
        storage_maps: reflect(&client, &storage_map_ar, ns),
        plans: reflect(&client, &plan_ar, ns),
        migrations: reflect(&client, &migration_ar, ns),
        secrets,
        // Target VMs live in the plans' target namespaces: always cluster-wide.
        virtual_machines: reflect(&client, &vm_ar, None),
    };
    let stores = Stores::start(&client);
    // Nothing is decided on a partial view: a missing Migration would cancel its execution.
    let ready = async {
        let _ = cluster.providers.wait_until_ready().await;
        let _ = cluster.network_maps.wait_until_ready().await;
        let _ = cluster.storage_maps.wait_until_ready().await;
        let _ = cluster.plans.wait_until_ready().await;
        let _ = cluster.migrations.wait_until_ready().await;
        let _ = cluster.secrets.wait_until_ready().await;
        let _ = cluster.virtual_machines.wait_until_ready().await;
        stores.wait_until_ready().await;
    };
    tokio::select! {
        _ = ready => {}
        _ = shutdown() => return Ok(()),
    }
    tracing::info!(
        "forklift-sim: watching; {} VMs in the world",
        world.vms.len()
    );
    if let Some(ns) = args.namespace.as_deref() {
        crate::operator::announce(&client, args.forklift_version, ns).await;
    }
    let link = args.link();
    let tick = Duration::from_secs_f64(args.tick);
    let roles = Roles {
        cdi: crate::cdi::Cdi::new(client.clone()),
        provisioner: crate::provisioner::Provisioner::new(
            client.clone(),
            args.storage_capacity.iter().cloned().collect(),
        ),
        populator: crate::populator::Populator::new(client.clone(), args.populator_resources()),
        cdi_import: crate::cdi_import::CdiImport::new(client.clone()),
        node: crate::node::NodeRole::new(client.clone()),
        kubevirt: crate::kubevirt::KubeVirtRole::new(
            client.clone(),
            args.cpu_allocation_ratio,
            !args.disable_serial_console_log,
            crate::guest::Guests::new(&world, args.dhcp.as_deref())?,
        ),
    };
    let footprint = Footprint::new(
        client.clone(),
        args.filesystem_overhead,
        args.block_overhead,
    );
    let mut controller = Controller {
        client,
        stores,
        footprint,
        roles,
        args,
        world,
        link,
        cluster,
        plan_ar,
        migration_ar,
        provider_ar,
        network_map_ar,
        storage_map_ar,
        written: HashMap::new(),
        runs: HashMap::new(),
        sim_secs: 0.0,
        last_tick: Instant::now(),
    };
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = shutdown();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = interval.tick() => controller.tick().await,
            _ = &mut stop => break,
        }
    }
    Ok(())
}

async fn shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

impl Controller {
    fn status_of(&self, obj: &DynamicObject) -> Value {
        self.written
            .get(uid(obj))
            .cloned()
            .unwrap_or_else(|| obj.data["status"].clone())
    }

    fn is_ready(&self, obj: &DynamicObject) -> bool {
        conditions::is_true(&self.status_of(obj), "Ready")
    }

    fn emit(&self, mut event: Value) {
        if !self.args.events {
            return;
        }
        // An event may carry its own instant on the simulated clock (a VM that finished inside the
        // step); else it happens now.
        let at = event["sim_secs"].as_f64().unwrap_or(self.sim_secs);
        event["time"] = Value::from(conditions::now());
        event["sim_secs"] = Value::from((at * 1000.0).round() / 1000.0);
        event["sim_time"] =
            Value::from(crate::warm::rfc3339(self.args.clock_start_unix_secs() + at));
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{event}");
        let _ = out.flush();
    }

    /// Writes `status` with server-side apply when it differs from what is there.
    async fn write_status(&mut self, ar: &ApiResource, obj: &DynamicObject, status: Value) -> bool {
        if self.status_of(obj) == status {
            return true;
        }
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace(obj), ar);
        let body = json!({
            "apiVersion": ar.api_version, "kind": ar.kind,
            "metadata": {"name": name(obj), "namespace": namespace(obj)},
            "status": status,
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match api
            .patch_status(name(obj), &params, &Patch::Apply(&body))
            .await
        {
            Ok(_) => {
                self.written.insert(uid(obj).to_string(), status);
                true
            }
            Err(e) => {
                tracing::warn!(
                    "{} {}/{}: status update failed: {e}",
                    ar.kind,
                    namespace(obj),
                    name(obj)
                );
                false
            }
        }
    }

    pub async fn tick(&mut self) {
        let now_instant = Instant::now();
        let dt = (now_instant - self.last_tick).as_secs_f64() * self.args.time_scale;
        self.last_tick = now_instant;
        self.sim_secs += dt;
        let now = conditions::now();

        self.validate_providers(&now).await;
        self.validate_maps(&now).await;
        self.manage_runs(&now).await;
        for (key, vi) in self.schedule(&now) {
            self.started(&key, vi).await;
        }
        self.advance(dt, &now).await;
        self.play_roles().await;
        for run in self.runs.values_mut() {
            if run.outcome.is_none() && run.vms.iter().all(|v| v.outcome().is_some()) {
                let outcome = if run.cancel_reason.is_some() {
                    Outcome::Canceled
                } else {
                    plan_outcome(&run.vms)
                };
                run.outcome = Some(outcome);
                run.completed = Some(now.clone());
                run.force_flush = true;
                let reason = run.cancel_reason.unwrap_or("");
                if let Some(last) = run.history.last_mut() {
                    let mut c = outcome_condition(outcome, "plan execution", reason);
                    c["lastTransitionTime"] = Value::from(now.clone());
                    last["conditions"] = json!([c]);
                }
            }
        }
        let finished: Vec<(String, Value)> = self
            .runs
            .iter()
            .filter_map(|(k, r)| {
                r.outcome.map(|o| {
                    // When its last VM finished, on the simulated clock.
                    let at = r
                        .vms
                        .iter()
                        .map(|v| v.finished_sim.unwrap_or(self.sim_secs))
                        .reduce(f64::max)
                        .unwrap_or(self.sim_secs);
                    (
                        k.clone(),
                        json!({"event": "migration_finished", "namespace": r.plan_key.0,
                               "plan": r.plan_key.1, "migration": r.migration_key.1,
                               "result": o.as_str(), "sim_secs": at}),
                    )
                })
            })
            .collect();
        let flushed = self.write_plans(&now).await;
        let unwritten = self.write_migrations(&now, &flushed).await;
        // A finished execution is forgotten only once both the Plan and the Migration say so;
        // else the write is tried again next tick (the API server may be restarting).
        for plan_uid in &unwritten {
            if let Some(run) = self.runs.get_mut(plan_uid) {
                run.force_flush = true;
            }
        }
        for (plan_uid, event) in finished {
            if flushed.contains(&plan_uid) && !unwritten.contains(&plan_uid) {
                self.runs.remove(&plan_uid);
                self.emit(event);
            }
        }
    }

    async fn validate_providers(&mut self, now: &str) {
        for provider in self.cluster.providers.state() {
            let (conds, phase) = validate::provider_conditions(&provider, &self.cluster);
            let previous = self.status_of(&provider);
            let status = json!({
                "conditions": stamp(conds, &previous, now),
                "phase": phase,
                "observedGeneration": provider.metadata.generation.unwrap_or(0),
            });
            let ar = self.provider_ar.clone();
            self.write_status(&ar, &provider, status).await;
        }
    }

    async fn validate_maps(&mut self, now: &str) {
        for (kind, store, ar) in [
            (
                MapKind::Network,
                self.cluster.network_maps.clone(),
                self.network_map_ar.clone(),
            ),
            (
                MapKind::Storage,
                self.cluster.storage_maps.clone(),
                self.storage_map_ar.clone(),
            ),
        ] {
            for map in store.state() {
                let ready = |o: &DynamicObject| self.is_ready(o);
                let (conds, references) =
                    validate::map_status(&map, kind, &self.world, &self.cluster, &ready);
                let previous = self.status_of(&map);
                let status = json!({
                    "conditions": stamp(conds, &previous, now),
                    "references": references,
                    "observedGeneration": map.metadata.generation.unwrap_or(0),
                });
                self.write_status(&ar, &map, status).await;
            }
        }
    }

    fn own_vms(&self, plan: &DynamicObject) -> HashSet<String> {
        let mut own: HashSet<String> = HashSet::new();
        if let Some(run) = self.runs.get(uid(plan)) {
            own.extend(run.vms.iter().map(|v| v.id.clone()));
        }
        let status = self.status_of(plan);
        for vm in status["migration"]["vms"].as_array().into_iter().flatten() {
            if conditions::is_true(vm, "Succeeded")
                && let Some(id) = vm["id"].as_str()
            {
                own.insert(id.to_string());
            }
        }
        own
    }

    fn plan_validation(&self, plan: &DynamicObject) -> Vec<Value> {
        let ready = |o: &DynamicObject| self.is_ready(o);
        let references = |m: &DynamicObject| {
            self.status_of(m)["references"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        };
        let own = self.own_vms(plan);
        let ctx = PlanContext {
            world: &self.world,
            cluster: &self.cluster,
            ready: &ready,
            references: &references,
            own_vms: &own,
            version: self.args.forklift_version,
            mac_scope: self.args.namespace.as_ref().map(|ns| {
                let mut scope: HashSet<String> = self
                    .cluster
                    .plans
                    .state()
                    .iter()
                    .filter_map(|p| {
                        p.data["spec"]["targetNamespace"]
                            .as_str()
                            .map(str::to_string)
                    })
                    .collect();
                scope.insert(ns.clone());
                scope
            }),
        };
        validate::plan_conditions(plan, &ctx)
    }

    fn migrations_of(&self, plan: &DynamicObject) -> Vec<DynamicObject> {
        let mut list: Vec<DynamicObject> = self
            .cluster
            .migrations
            .state()
            .iter()
            .filter(|m| {
                let reference = &m.data["spec"]["plan"];
                ref_key(reference, namespace(m))
                    == (namespace(plan).to_string(), name(plan).to_string())
                    && reference["uid"]
                        .as_str()
                        .is_none_or(|u| u.is_empty() || u == uid(plan))
            })
            .map(|m| (**m).clone())
            .collect();
        list.sort_by(|a, b| {
            (a.metadata.creation_timestamp.as_ref().map(|t| t.0), name(a))
                .cmp(&(b.metadata.creation_timestamp.as_ref().map(|t| t.0), name(b)))
        });
        list
    }

    fn is_terminal(&self, migration: &DynamicObject) -> bool {
        let status = self.status_of(migration);
        ["Succeeded", "Failed", "Canceled"]
            .iter()
            .any(|k| conditions::is_true(&status, k))
    }

    fn snapshot_ref(obj: Option<&DynamicObject>) -> Value {
        match obj {
            Some(o) => json!({"generation": o.metadata.generation.unwrap_or(0), "name": name(o),
                              "namespace": namespace(o), "uid": uid(o)}),
            None => json!({"generation": 0, "name": "", "namespace": "", "uid": ""}),
        }
    }

    fn new_run(&self, plan: &DynamicObject, migration: &DynamicObject, now: &str) -> Run {
        let spec = &plan.data["spec"];
        let ns = namespace(plan);
        let annotations = plan.metadata.annotations.clone().unwrap_or_default();
        let list = |key: &str| -> HashSet<String> {
            annotations
                .get(key)
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut fail_names = list(FAIL_VMS_ANNOTATION);
        fail_names.extend(self.args.fail_vms.iter().cloned());
        let snapshot = |key: &str, store: &Store<DynamicObject>| {
            Self::snapshot_ref(
                validate::find_in(store, &ref_key(&spec["provider"][key], ns)).as_ref(),
            )
        };
        let map_ref = |key: &str, store: &Store<DynamicObject>| {
            Self::snapshot_ref(validate::find_in(store, &ref_key(&spec["map"][key], ns)).as_ref())
        };
        let previous = self.status_of(plan);
        let mut history = previous["migration"]["history"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut executing = cond("Executing", ADVISORY, "Started", "The plan is EXECUTING.");
        executing["lastTransitionTime"] = Value::from(now.to_string());
        history.push(json!({
            "plan": Self::snapshot_ref(Some(plan)),
            "migration": Self::snapshot_ref(Some(migration)),
            "provider": {
                "source": snapshot("source", &self.cluster.providers),
                "destination": snapshot("destination", &self.cluster.providers),
            },
            "map": {
                "network": map_ref("network", &self.cluster.network_maps),
                "storage": map_ref("storage", &self.cluster.storage_maps),
            },
            "conditions": [executing],
        }));
        Run {
            plan_key: (ns.to_string(), name(plan).to_string()),
            migration_key: (
                namespace(migration).to_string(),
                name(migration).to_string(),
            ),
            migration_uid: uid(migration).to_string(),
            provider_key: ref_key(&spec["provider"]["source"], ns),
            started: now.to_string(),
            completed: None,
            history,
            vms: Vec::new(),
            outcome: None,
            cancel_reason: None,
            fail_always: self.args.fail_always
                || annotations
                    .get(FAIL_ALWAYS_ANNOTATION)
                    .is_some_and(|v| v.trim() == "true"),
            fail_names,
            failed_once: list(FAILED_ONCE_ANNOTATION),
            last_flush: None,
            force_flush: true,
            populators: self.args.footprint == crate::Footprint::Full
                && self.plan_uses_populators(plan),
            datavolumes: self.args.footprint == crate::Footprint::Full
                && !self.plan_uses_populators(plan),
            warm: target::is_warm(&plan.data),
            classes: None,
        }
    }

    /// Starts, resumes and cancels executions.
    async fn manage_runs(&mut self, now: &str) {
        let initialize_secs = self.link.initialize_secs();
        let creation_secs = self.link.creation_secs();
        let mut plans: Vec<DynamicObject> = self
            .cluster
            .plans
            .state()
            .iter()
            .map(|p| (**p).clone())
            .collect();
        plans.sort_by(|a, b| (namespace(a), name(a)).cmp(&(namespace(b), name(b))));
        for plan in plans {
            let plan_uid = uid(&plan).to_string();
            let migrations = self.migrations_of(&plan);
            if !self.runs.contains_key(&plan_uid) {
                let status = self.status_of(&plan);
                let spec_vms: Vec<Value> = plan.data["spec"]["vms"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if conditions::is_true(&status, "Executing") {
                    // Resume an execution from the plan's status (forklift-sim restarted).
                    let last = status["migration"]["history"]
                        .as_array()
                        .and_then(|h| h.last())
                        .cloned()
                        .unwrap_or_default();
                    let migration_uid = last["migration"]["uid"].as_str().unwrap_or_default();
                    let migration = migrations.iter().find(|m| uid(m) == migration_uid);
                    let mut run = match migration {
                        Some(m) => self.new_run(&plan, m, now),
                        None => {
                            let placeholder = DynamicObject::new(
                                last["migration"]["name"].as_str().unwrap_or_default(),
                                &self.migration_ar,
                            )
                            .within(last["migration"]["namespace"].as_str().unwrap_or_default());
                            self.new_run(&plan, &placeholder, now)
                        }
                    };
                    run.migration_uid = migration_uid.to_string();
                    run.history = status["migration"]["history"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    run.started = status["migration"]["started"]
                        .as_str()
                        .unwrap_or(now)
                        .to_string();
                    for spec_vm in &spec_vms {
                        let world_vm = match self.world.vm(spec_vm) {
                            Lookup::Found(vm) => Some(vm),
                            _ => None,
                        };
                        let target = validate::target_name(spec_vm, world_vm);
                        let vm_status = status["migration"]["vms"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .find(|s| same_vm(spec_vm, s, &self.world));
                        let mut vm = match vm_status {
                            Some(s) => VmRun::resume(
                                s,
                                spec_vm,
                                world_vm,
                                target,
                                initialize_secs,
                                creation_secs,
                                self.args.time_scale,
                            ),
                            None => VmRun::new(spec_vm, world_vm, target),
                        };
                        if run.warm && vm.warm.is_none() {
                            vm.warm = Some(Default::default());
                        }
                        if vm.in_flight() {
                            vm.fail_at_bytes = self.fail_point(&run, &vm);
                        }
                        if let (Some(s), Some(Outcome::Succeeded)) = (vm_status, vm.outcome())
                            && vm.started.is_some()
                            && s["pipeline"].is_array()
                        {
                            vm.kept = Some(s.clone());
                        }
                        run.vms.push(vm);
                    }
                    // A VM in VirtualMachineCreation gets its target applied again (the last
                    // attempt may have failed transiently; server-side apply makes a repeat
                    // harmless).
                    let resumed_creations: Vec<usize> = (0..run.vms.len())
                        .filter(|&i| matches!(run.vms[i].stage, Stage::Create { .. }))
                        .collect();
                    tracing::info!(
                        "plan {}/{}: resuming its execution",
                        run.plan_key.0,
                        run.plan_key.1
                    );
                    if migration.is_none() {
                        self.cancel_all(&mut run, now, "Deleted");
                    }
                    self.runs.insert(plan_uid.clone(), run);
                    for vi in resumed_creations {
                        self.create_target(&plan_uid, vi, now).await;
                    }
                } else if plan.data["spec"]["archived"] != true {
                    let pending = migrations.iter().find(|m| !self.is_terminal(m));
                    let ready = !conditions::has_blocker(&self.plan_validation(&plan));
                    if let (Some(migration), true) = (pending, ready) {
                        let mut run = self.new_run(&plan, migration, now);
                        for spec_vm in &spec_vms {
                            let Lookup::Found(world_vm) = self.world.vm(spec_vm) else {
                                continue;
                            };
                            let target = validate::target_name(spec_vm, Some(world_vm));
                            let mut vm = VmRun::new(spec_vm, Some(world_vm), target);
                            if run.warm {
                                vm.warm = Some(Default::default());
                            }
                            // Re-runs keep VMs that already succeeded (Forklift's begin()).
                            if let Some(s) = status["migration"]["vms"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .find(|s| same_vm(spec_vm, s, &self.world))
                                && conditions::is_true(s, "Succeeded")
                            {
                                vm.kept = Some(s.clone());
                                vm.stage = Stage::Done(Outcome::Succeeded);
                            }
                            run.vms.push(vm);
                        }
                        // Early, for the disk transfers; retried before each VM's creation.
                        let target_ns = plan.data["spec"]["targetNamespace"]
                            .as_str()
                            .unwrap_or_default();
                        if let Err(e) = self.ensure_namespace(target_ns).await {
                            tracing::warn!("namespace {target_ns}: cannot create it yet: {e}");
                        }
                        self.emit(
                            json!({"event": "migration_started", "namespace": run.plan_key.0,
                            "plan": run.plan_key.1, "migration": run.migration_key.1,
                            "vms": run.vms.iter().filter(|v| v.kept.is_none()).count()}),
                        );
                        tracing::info!(
                            "plan {}/{}: executing migration {}",
                            run.plan_key.0,
                            run.plan_key.1,
                            run.migration_key.1
                        );
                        self.runs.insert(plan_uid.clone(), run);
                    }
                }
            }
            // Cancellation: the Migration deleted, or VMs listed in spec.cancel.
            let Some(mut run) = self.runs.remove(&plan_uid) else {
                continue;
            };
            if run.outcome.is_none() {
                match migrations.iter().find(|m| uid(m) == run.migration_uid) {
                    None => self.cancel_all(&mut run, now, "Deleted"),
                    Some(m) => {
                        let refs: Vec<Value> = m.data["spec"]["cancel"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        let mut victims = Vec::new();
                        for (i, vm) in run.vms.iter().enumerate() {
                            if vm.outcome().is_some() {
                                continue;
                            }
                            let hit = refs.iter().any(|r| {
                                match r["id"].as_str().filter(|s| !s.is_empty()) {
                                    Some(id) => id == vm.id,
                                    None => r["name"].as_str() == Some(vm.name.as_str()),
                                }
                            });
                            if hit {
                                victims.push(i);
                            }
                        }
                        for i in victims {
                            self.cancel_vm(&mut run, i, now).await;
                        }
                    }
                }
            }
            self.runs.insert(plan_uid, run);
        }
    }

    fn cancel_all(&self, run: &mut Run, now: &str, reason: &'static str) {
        run.cancel_reason = Some(reason);
        for vm in run.vms.iter_mut().filter(|v| v.outcome().is_none()) {
            // A target VM already created is left in place (Forklift would clean it up).
            vm.finish(Outcome::Canceled, now, None);
        }
        run.force_flush = true;
    }

    /// Forklift's `Cancel`: the VM Canceled, then `cleanup` of what it made (its VirtualMachine,
    /// its PVCs and prime PVCs, populators, pods and Secrets of this migration).
    async fn cancel_vm(&mut self, run: &mut Run, index: usize, now: &str) {
        let started = run.vms[index].started.is_some();
        if started
            && (run.populators || run.datavolumes || run.vms[index].target_created)
            && let Some(target) = self.target_of(run, &run.vms[index])
        {
            self.footprint.cleanup(&target, false).await;
            if run.datavolumes {
                self.footprint.cleanup_data_volumes(&target, false).await;
            }
        }
        let vm = &mut run.vms[index];
        vm.finish(Outcome::Canceled, now, None);
        run.force_flush = true;
        let event = self.vm_event("vm_finished", run, index);
        self.emit(event);
    }

    fn vm_event(&self, kind: &str, run: &Run, index: usize) -> Value {
        let vm = &run.vms[index];
        let mut e = json!({
            "event": kind, "namespace": run.plan_key.0, "plan": run.plan_key.1,
            "migration": run.migration_key.1, "provider": format!("{}/{}", run.provider_key.0, run.provider_key.1),
            "vm_id": vm.id, "vm_name": vm.name, "disk_bytes": vm.total_bytes() as u64,
        });
        if let Some(o) = vm.outcome() {
            e["result"] = Value::from(o.as_str());
            e["transferred_bytes"] = Value::from(vm.transferred_bytes() as u64);
            let at = vm.finished_sim.unwrap_or(self.sim_secs);
            e["sim_secs"] = Value::from(at);
            e["sim_duration_secs"] =
                Value::from(((at - vm.sim_started_secs) * 1000.0).round() / 1000.0);
            e["cluster_wait_secs"] = Value::from((vm.cluster_wait_secs * 1000.0).round() / 1000.0);
            if let Some(w) = &vm.warm {
                e["precopies"] = Value::from(w.precopies.len());
                if let (Some(cut), Some(made)) = (w.cutover_sim, w.created_sim) {
                    e["downtime_secs"] = Value::from(((made - cut) * 1000.0).round() / 1000.0);
                }
            }
        }
        e
    }

    fn fail_point(&self, run: &Run, vm: &VmRun) -> Option<f64> {
        let named = run.fail_names.contains(&vm.id) || run.fail_names.contains(&vm.name);
        (named && (run.fail_always || !run.failed_once.contains(&vm.id)))
            .then(|| vm.total_bytes() / 2.0)
    }

    /// Starts pending VMs while their source provider has fewer than max_vm_inflight running,
    /// across all executing plans; plans in order of their execution start, VMs in spec order.
    /// Returns the VMs started (run key, index).
    fn schedule(&mut self, now: &str) -> Vec<(String, usize)> {
        let max = self.args.max_vm_inflight as usize;
        let mut inflight: HashMap<(String, String), usize> = HashMap::new();
        for run in self.runs.values() {
            *inflight.entry(run.provider_key.clone()).or_default() +=
                run.vms.iter().filter(|v| v.in_flight()).count();
        }
        let mut keys: Vec<String> = self.runs.keys().cloned().collect();
        keys.sort_by(|a, b| {
            let (ra, rb) = (&self.runs[a], &self.runs[b]);
            (&ra.started, &ra.plan_key).cmp(&(&rb.started, &rb.plan_key))
        });
        let mut events = Vec::new();
        let mut started = Vec::new();
        for key in keys {
            let mut run = self.runs.remove(&key).unwrap();
            if run.outcome.is_none() {
                for i in 0..run.vms.len() {
                    if run.vms[i].stage != Stage::Pending {
                        continue;
                    }
                    let count = inflight.entry(run.provider_key.clone()).or_default();
                    if *count >= max {
                        run.vms[i].wait_reason = Some(format!(
                            "Waiting for an available slot: {max} VMs of the source provider are migrating (max_vm_inflight)."
                        ));
                        continue;
                    }
                    *count += 1;
                    let fail = self.fail_point(&run, &run.vms[i]);
                    let vm = &mut run.vms[i];
                    vm.wait_reason = None;
                    vm.stage = Stage::Initialize {
                        left_secs: self.link.initialize_secs(),
                    };
                    vm.started = Some(now.to_string());
                    vm.step_started[0] = Some(now.to_string());
                    vm.sim_started_secs = self.sim_secs;
                    vm.entered_at = f64::INFINITY;
                    vm.fail_at_bytes = fail;
                    // Warm: CreateInitialSnapshot, the first precopy's snapshot.
                    if let Some(w) = &mut vm.warm {
                        w.snapshot(&vm.id, &run.migration_uid, now, self.sim_secs);
                    }
                    let mut e = self.vm_event("vm_started", &run, i);
                    e["inflight"] = Value::from(*count as u64);
                    e["max_vm_inflight"] = Value::from(max as u64);
                    events.push(e);
                    started.push((key.clone(), i));
                }
            }
            self.runs.insert(key, run);
        }
        for e in events {
            self.emit(e);
        }
        started
    }

    /// Moves the simulation on by `dt` simulated seconds.
    async fn advance(&mut self, dt: f64, now: &str) {
        let due = self.initialize_timers(dt);
        if !due.is_empty() {
            self.allocate(due, now).await;
        }
        self.warm_transitions(now);
        self.write_checkpoints().await;
        let view = self.transfer_view();
        self.move_bytes(dt, &view);
        let (to_create, finished, failed_once, events) = self.transfer_outcomes(dt, now, &view);
        for (key, vi) in to_create {
            self.create_target(&key, vi, now).await;
        }
        for (key, vi) in finished {
            self.clean_up(&key, vi).await;
        }
        for plan_key in failed_once {
            self.record_failed_once(&plan_key).await;
        }
        for (key, vi, kind) in events {
            if let Some(run) = self.runs.get(&key) {
                let event = self.vm_event(kind, run, vi);
                self.emit(event);
            }
        }
        for vm in self.runs.values_mut().flat_map(|r| r.vms.iter_mut()) {
            vm.entered_at = 0.0;
            vm.copy_ended_at = None;
        }
    }

    /// Counts down Initialize; returns the VMs due for their volumes (Forklift's
    /// CreateDataVolumes, done by `allocate`), again after a transient failure's backoff.
    fn initialize_timers(&mut self, dt: f64) -> Vec<(String, usize)> {
        let mut due = Vec::new();
        for (key, run) in &mut self.runs {
            for (vi, vm) in run.vms.iter_mut().enumerate() {
                if let Stage::Initialize { left_secs } = &mut vm.stage {
                    let before = *left_secs;
                    *left_secs -= dt - vm.entered_at.min(dt);
                    if *left_secs <= 0.0 && vm.create_backoff.due() {
                        // Ended inside this step: the copy joins the link then; ended earlier
                        // (a retry after a backoff): once allocated, at the step's end.
                        vm.entered_at = if before > 0.0 { dt + *left_secs } else { dt };
                        due.push((key.clone(), vi));
                    }
                }
            }
        }
        due
    }

    /// Whether a disk's bytes may flow: on the populator path only while its populator pod runs.
    fn flows(
        run: &Run,
        vm: &VmRun,
        disk: &crate::run::DiskRun,
        view: &target::TransferView,
    ) -> bool {
        !(run.populators || run.datavolumes)
            || view
                .flowing
                .contains(&(run.migration_uid.clone(), vm.id.clone(), disk.id.clone()))
    }

    /// Disk transfers: one shared link per source provider, each disk writing to the storage
    /// class its plan's StorageMap gives its storage domain.
    fn move_bytes(&mut self, dt: f64, view: &target::TransferView) {
        let keys: Vec<String> = self.runs.keys().cloned().collect();
        for key in &keys {
            if self.runs[key].classes.is_none() {
                let run = &self.runs[key];
                let classes = run
                    .vms
                    .first()
                    .and_then(|vm| self.target_of(run, vm))
                    .map(|t| t.classes)
                    .unwrap_or_default();
                self.runs.get_mut(key).unwrap().classes = Some(classes);
            }
        }
        let mut providers: Vec<(String, String)> =
            self.runs.values().map(|r| r.provider_key.clone()).collect();
        providers.sort();
        providers.dedup();
        // The step began dt ago on the simulated clock.
        let step_start = self.args.clock_start_unix_secs() + self.sim_secs - dt;
        for provider in providers {
            let mut slots = Vec::new();
            let mut remaining = Vec::new();
            let mut classes: Vec<&str> = Vec::new();
            let mut joins = Vec::new();
            for key in &keys {
                let run = &self.runs[key];
                if run.provider_key != provider {
                    continue;
                }
                for (vi, vm) in run.vms.iter().enumerate() {
                    if !matches!(vm.stage, Stage::Transfer | Stage::Cutover) {
                        continue;
                    }
                    for (di, d) in vm.disks.iter().enumerate() {
                        if d.remaining_bytes > 0.0 && Self::flows(run, vm, d, view) {
                            slots.push((key.clone(), vi, di));
                            remaining.push(d.remaining_bytes);
                            joins.push(vm.entered_at.min(dt));
                            let class = d
                                .storage_domain
                                .as_ref()
                                .and_then(|sd| run.classes.as_ref()?.get(sd));
                            classes.push(class.map_or("", String::as_str));
                        }
                    }
                }
            }
            let step = self
                .link
                .advance_from(&mut remaining, &classes, &joins, step_start, dt);
            for (((key, vi, di), left), ended) in
                slots.into_iter().zip(remaining).zip(step.ended_at)
            {
                let vm = &mut self.runs.get_mut(&key).unwrap().vms[vi];
                vm.disks[di].remaining_bytes = left;
                if let Some(at) = ended {
                    vm.copy_ended_at = Some(vm.copy_ended_at.map_or(at, |t| t.max(at)));
                }
            }
        }
    }

    /// Transfer outcomes and creation timers. A disk's task completes when its bytes are all
    /// there and the cluster says so: on the populator path its PVC Bound (Forklift's
    /// `updatePopulatorCopyProgress`), on the DataVolume path its DataVolume Succeeded or Paused
    /// with the last checkpoint copied (`updateCopyProgress`). A copy done ends a warm precopy
    /// (CopyingPaused) or the cutover, or a cold transfer (then CreateVM). Returns the VMs to
    /// create, the VMs finished (for cleanup), the plans with an injected failure to record, and
    /// the events to emit.
    #[allow(clippy::type_complexity)]
    fn transfer_outcomes(
        &mut self,
        dt: f64,
        now: &str,
        view: &target::TransferView,
    ) -> (
        Vec<(String, usize)>,
        Vec<(String, usize)>,
        Vec<(String, String)>,
        Vec<(String, usize, &'static str)>,
    ) {
        let creation_secs = self.link.creation_secs();
        let warm_timing = self.warm_timing();
        let step_start = self.sim_secs - dt;
        let (mut to_create, mut finished, mut failed_once, mut events) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (key, run) in &mut self.runs {
            for vi in 0..run.vms.len() {
                let vm = &mut run.vms[vi];
                match &mut vm.stage {
                    Stage::Transfer | Stage::Cutover => {
                        let done = Self::copy_landed(
                            run.populators,
                            run.datavolumes,
                            &run.migration_uid,
                            vm,
                            view,
                            dt,
                            now,
                        );
                        if let Some(at) = vm.fail_at_bytes
                            && vm.transferred_bytes() >= at
                        {
                            vm.fail_midway(now);
                            run.force_flush = true;
                            if !run.fail_always {
                                run.failed_once.insert(vm.id.clone());
                                failed_once.push(run.plan_key.clone());
                            }
                            events.push((key.clone(), vi, "vm_finished"));
                        } else if done {
                            let event = warm::copy_done(vm, now, creation_secs, &warm_timing);
                            if let Stage::Create { left_secs } = &mut vm.stage {
                                // The rest of the step after the last byte belongs to Create.
                                *left_secs -= vm.copy_ended_at.map_or(0.0, |at| dt - at);
                                to_create.push((key.clone(), vi));
                            }
                            run.force_flush = true;
                            events.push((key.clone(), vi, event));
                        }
                    }
                    Stage::Create { left_secs } => {
                        let before = *left_secs;
                        *left_secs -= dt;
                        if !vm.target_created && vm.create_backoff.due() {
                            to_create.push((key.clone(), vi));
                        }
                        if *left_secs <= 0.0 && vm.target_created {
                            // Finished inside this step, or (created late) at its start.
                            let into = if before > 0.0 { dt + *left_secs } else { 0.0 };
                            vm.finished_sim = Some(step_start + into);
                            vm.finish(Outcome::Succeeded, now, None);
                            run.force_flush = true;
                            events.push((key.clone(), vi, "vm_finished"));
                            finished.push((key.clone(), vi));
                        }
                    }
                    _ => {}
                }
            }
        }
        (to_create, finished, failed_once, events)
    }

    /// Marks the disks of a copying VM whose copy landed; whether all did. Time no disk of it
    /// flows counts as waiting on the cluster.
    fn copy_landed(
        populators: bool,
        datavolumes: bool,
        migration_uid: &str,
        vm: &mut VmRun,
        view: &target::TransferView,
        dt: f64,
        now: &str,
    ) -> bool {
        // The checkpoints a DataVolume must have copied: one per precopy so far (0 when cold).
        let expected = vm.warm.as_ref().map_or(0, |w| w.precopies.len());
        let mut flowing = false;
        for d in &mut vm.disks {
            let disk_key = (migration_uid.to_string(), vm.id.clone(), d.id.clone());
            let landed = if populators {
                view.bound.contains(&disk_key)
            } else if datavolumes {
                view.copied.get(&disk_key).is_some_and(|n| *n >= expected)
            } else {
                true
            };
            flowing |= d.remaining_bytes > 0.0 && view.flowing.contains(&disk_key);
            if d.remaining_bytes <= 0.0 && landed && d.completed.is_none() {
                d.completed = Some(now.to_string());
            }
        }
        if (populators || datavolumes) && !flowing {
            vm.cluster_wait_secs += dt;
        }
        vm.disks.iter().all(|d| d.completed.is_some())
    }

    /// Creates the target namespace if missing, as Forklift does.
    async fn ensure_namespace(&self, target: &str) -> std::result::Result<(), kube::Error> {
        if target.is_empty() {
            return Ok(());
        }
        let api: Api<Namespace> = Api::all(self.client.clone());
        let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": target}});
        api.patch(
            target,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&body),
        )
        .await
        .map(|_| ())
    }

    async fn record_failed_once(&self, plan_key: &(String, String)) {
        let Some(run) = self.runs.values().find(|r| &r.plan_key == plan_key) else {
            return;
        };
        let mut ids: Vec<&String> = run.failed_once.iter().collect();
        ids.sort();
        let value = ids.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &plan_key.0, &self.plan_ar);
        let patch = json!({"metadata": {"annotations": {FAILED_ONCE_ANNOTATION: value}}});
        if let Err(e) = api
            .patch(&plan_key.1, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            tracing::warn!(
                "plan {}/{}: cannot record the injected failure: {e}",
                plan_key.0,
                plan_key.1
            );
        }
    }

    /// Writes every plan's status; a running plan at most once per --status-interval unless
    /// something finished. Returns the uids of plans with an execution whose status was written.
    async fn write_plans(&mut self, now: &str) -> HashSet<String> {
        let mut flushed = HashSet::new();
        let interval = Duration::from_secs_f64(self.args.status_interval);
        let initialize_secs = self.link.initialize_secs();
        for plan in self.cluster.plans.state() {
            let plan_uid = uid(&plan).to_string();
            let previous = self.status_of(&plan);
            let mut conds = self.plan_validation(&plan);
            let migration;
            if let Some(run) = self.runs.get(&plan_uid) {
                let due = run.force_flush || run.last_flush.is_none_or(|t| t.elapsed() >= interval);
                if !due {
                    continue;
                }
                match run.outcome {
                    None => conds.push(cond(
                        "Executing",
                        ADVISORY,
                        "Started",
                        "The plan is EXECUTING.",
                    )),
                    Some(o) => conds.push(outcome_condition(
                        o,
                        "plan execution",
                        run.cancel_reason.unwrap_or(""),
                    )),
                }
                migration = run.render(initialize_secs);
            } else {
                conds.extend(
                    previous["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|c| EXECUTION_TYPES.iter().any(|t| c["type"] == *t))
                        .cloned(),
                );
                migration = previous["migration"].clone();
            }
            let mut status = json!({
                "conditions": stamp(conds, &previous, now),
                "observedGeneration": plan.metadata.generation.unwrap_or(0),
            });
            if !migration.is_null() {
                status["migration"] = migration;
            }
            let ar = self.plan_ar.clone();
            let ok = self.write_status(&ar, &plan, status).await;
            if ok && let Some(run) = self.runs.get_mut(&plan_uid) {
                run.last_flush = Some(Instant::now());
                run.force_flush = false;
                flushed.insert(plan_uid);
            }
        }
        flushed
    }

    /// Writes the Migrations' statuses; returns the uids of plans whose execution's Migration
    /// could not be written.
    async fn write_migrations(&mut self, now: &str, flushed: &HashSet<String>) -> HashSet<String> {
        let mut unwritten = HashSet::new();
        let initialize_secs = self.link.initialize_secs();
        for migration in self.cluster.migrations.state() {
            if self.is_terminal(&migration) {
                continue;
            }
            let previous = self.status_of(&migration);
            let plan_key = ref_key(&migration.data["spec"]["plan"], namespace(&migration));
            let plan = validate::find_in(&self.cluster.plans, &plan_key);
            let run = plan
                .as_ref()
                .and_then(|p| self.runs.get(uid(p)).map(|r| (uid(p).to_string(), r)))
                .filter(|(_, r)| r.migration_uid == uid(&migration));
            if let Some((plan_uid, _)) = &run
                && !flushed.contains(plan_uid)
            {
                continue;
            }
            let run_uid = run.as_ref().map(|(plan_uid, _)| plan_uid.clone());
            let mut conds = Vec::new();
            match &plan {
                None => conds.push(cond(
                    "PlanNotValid",
                    conditions::CRITICAL,
                    "NotFound",
                    "The associated plan is not valid.",
                )),
                Some(p) if run.is_none() && !self.is_ready(p) => conds.push(cond(
                    "PlanNotReady",
                    conditions::CRITICAL,
                    "NotReady",
                    "The associated plan does not have a Ready condition.",
                )),
                Some(_) => conds.push(cond("Ready", REQUIRED, "", "The migration is ready.")),
            }
            if let Some(p) = &plan {
                let spec_vms = p.data["spec"]["vms"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let unknown: Vec<String> = migration.data["spec"]["cancel"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|r| {
                        !spec_vms
                            .iter()
                            .any(|v| match r["id"].as_str().filter(|s| !s.is_empty()) {
                                Some(id) => same_vm(v, &json!({"id": id}), &self.world),
                                None => v["name"] == r["name"],
                            })
                    })
                    .map(conditions::vm_item)
                    .collect();
                if !unknown.is_empty() {
                    conds.push(cond_items(
                        "VMNotFound",
                        WARN,
                        "NotFound",
                        "VM not found.",
                        unknown,
                    ));
                }
            }
            let mut status =
                json!({"observedGeneration": migration.metadata.generation.unwrap_or(0)});
            if let Some((_, r)) = &run {
                match r.outcome {
                    None => conds.push(cond(
                        "Running",
                        ADVISORY,
                        "Started",
                        "The migration is RUNNING.",
                    )),
                    Some(o) => conds.push(outcome_condition(
                        o,
                        "migration",
                        r.cancel_reason.unwrap_or(""),
                    )),
                }
                let rendered = r.render(initialize_secs);
                status["started"] = Value::from(r.started.clone());
                if let Some(c) = &r.completed {
                    status["completed"] = Value::from(c.clone());
                }
                status["vms"] = rendered["vms"].clone();
            }
            status["conditions"] = Value::from(stamp(conds, &previous, now));
            let ar = self.migration_ar.clone();
            if !self.write_status(&ar, &migration, status).await
                && let Some(plan_uid) = run_uid
            {
                unwritten.insert(plan_uid);
            }
        }
        unwritten
    }
}
