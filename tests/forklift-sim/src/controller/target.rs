//! The target side of an execution: what Forklift's plan controller creates for each VM (through
//! `Footprint`), and the roles forklift-sim plays beside it (CDI's StorageProfiles, the storage
//! provisioner, the populator controller, the node, KubeVirt), driven from the simulation.

use super::{Controller, Run};
use crate::cdi_import::importer_owner;
use crate::footprint::{StepError, StoragePair, Target};
use crate::node::Fate;
use crate::objects::{Scope, has_labels};
use crate::populator::{self, populator_ref};
use crate::run::{Outcome, Stage, VmRun};
use crate::validate::{self, ref_key};
use crate::world::Lookup;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// A disk of a VM of a migration: (migration uid, VM id, disk id).
pub type DiskKey = (String, String, String);

/// Where each disk's claim stands, read from the cluster once per tick.
#[derive(Default)]
pub struct TransferView {
    /// Disks whose populator pod or CDI importer pod is running: their bytes flow.
    pub flowing: HashSet<DiskKey>,
    /// Disks whose populator claim is Bound: Forklift marks their task Completed.
    pub bound: HashSet<DiskKey>,
    /// Disks whose DataVolume copied its last checkpoint (Paused with the PVC's
    /// checkpoint-copied annotation): how many checkpoints it had; `usize::MAX` once Succeeded.
    pub copied: HashMap<DiskKey, usize>,
    /// Disks whose claim exists.
    pub claimed: HashSet<DiskKey>,
}

/// A disk PVC's (migration uid, VM id, disk id): the populator's claims carry the disk in the
/// `diskID` label; a DataVolume's claim has the DataVolume's labels and annotations, the disk in
/// Forklift's disk-source annotation.
fn disk_key(pvc: &PersistentVolumeClaim) -> Option<DiskKey> {
    let labels = pvc.metadata.labels.as_ref()?;
    let disk = labels.get("diskID").or_else(|| {
        pvc.metadata
            .annotations
            .as_ref()?
            .get(crate::footprint::ANN_DISK_SOURCE)
    })?;
    Some((
        labels.get("migration")?.clone(),
        labels.get("vmID")?.clone(),
        disk.clone(),
    ))
}

/// Forklift v2.12.5 `adapter/ovirt/builder.go` `SupportsVolumePopulators`: a cold plan whose
/// destination is the host cluster (an `openshift` Provider without a URL).
pub fn uses_populators(plan: &Value, destination: Option<&Value>) -> bool {
    !is_warm(plan) && destination.is_some_and(is_host)
}

/// Forklift v2.12.5 `pkg/apis/forklift/v1beta1/plan.go` `IsWarm`: `spec.type` warm, or the
/// deprecated `spec.warm`.
pub fn is_warm(plan: &Value) -> bool {
    plan["spec"]["warm"] == true || plan["spec"]["type"] == "warm"
}

/// Forklift v2.12.5 `provider.go` `IsHost`: an `openshift` Provider without a URL.
pub fn is_host(provider: &Value) -> bool {
    provider["spec"]["type"] == "openshift"
        && provider["spec"]["url"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
}

impl Controller {
    /// The namespaces this simulator acts in on the target side (see `Scope`).
    pub(super) fn scope(&self) -> Scope {
        let Some(ns) = &self.args.namespace else {
            return Scope(None);
        };
        let mut set: HashSet<String> = HashSet::from([ns.clone()]);
        for plan in self.cluster.plans.state() {
            if let Some(target) = plan.data["spec"]["targetNamespace"].as_str() {
                set.insert(target.to_string());
            }
        }
        Scope(Some(set))
    }

    /// Whether a plan's executions take the volume populator path.
    pub(super) fn plan_uses_populators(&self, plan: &kube::api::DynamicObject) -> bool {
        let ns = validate::namespace(plan);
        let destination = validate::find_in(
            &self.cluster.providers,
            &ref_key(&plan.data["spec"]["provider"]["destination"], ns),
        );
        uses_populators(&plan.data, destination.as_ref().map(|d| &d.data))
    }

    /// Everything the target side needs to know of one VM of a run.
    pub(super) fn target_of(&self, run: &Run, vm: &VmRun) -> Option<Target> {
        let plan = validate::find_in(&self.cluster.plans, &run.plan_key)?;
        let spec = &plan.data["spec"];
        let ns = validate::namespace(&plan);
        let source = validate::find_in(
            &self.cluster.providers,
            &ref_key(&spec["provider"]["source"], ns),
        );
        let provider_url = source
            .as_ref()
            .and_then(|p| p.data["spec"]["url"].as_str())
            .unwrap_or_default()
            .to_string();
        let secret_key = source
            .as_ref()
            .map(|p| ref_key(&p.data["spec"]["secret"], validate::namespace(p)))
            .unwrap_or_default();
        let provider_secret = self
            .cluster
            .secrets
            .state()
            .into_iter()
            .find(|s| {
                s.metadata.namespace.as_deref() == Some(&secret_key.0)
                    && s.metadata.name.as_deref() == Some(&secret_key.1)
            })
            .and_then(|s| s.data.clone())
            .unwrap_or_default();
        let mut classes = HashMap::new();
        let mut storage_pairs = Vec::new();
        if let Some(map) = validate::find_in(
            &self.cluster.storage_maps,
            &ref_key(&spec["map"]["storage"], ns),
        ) {
            for pair in map.data["spec"]["map"].as_array().into_iter().flatten() {
                if let (Lookup::Found(sd), Some(class)) = (
                    self.world.storage_domain(&pair["source"]),
                    pair["destination"]["storageClass"].as_str(),
                ) {
                    classes.insert(sd.id.clone(), class.to_string());
                    let text = |key: &str| {
                        pair["destination"][key]
                            .as_str()
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                    };
                    storage_pairs.push(StoragePair {
                        storage_domain: sd.id.clone(),
                        class: class.to_string(),
                        volume_mode: text("volumeMode"),
                        access_mode: text("accessMode"),
                    });
                }
            }
        }
        // The NetworkMap's pairs by source network id, in map order (`buildOvirtNICResolver`).
        let mut network_pairs = Vec::new();
        if let Some(map) = validate::find_in(
            &self.cluster.network_maps,
            &ref_key(&spec["map"]["network"], ns),
        ) {
            for pair in map.data["spec"]["map"].as_array().into_iter().flatten() {
                if let Lookup::Found(network) = self.world.network(&pair["source"]) {
                    network_pairs.push((network.id.clone(), pair["destination"].clone()));
                }
            }
        }
        let destination = validate::find_in(
            &self.cluster.providers,
            &ref_key(&spec["provider"]["destination"], ns),
        );
        let world_vm = self.world.vms.iter().find(|w| w.id == vm.id);
        Some(Target {
            namespace: spec["targetNamespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            plan_name: validate::name(&plan).to_string(),
            plan_namespace: ns.to_string(),
            plan_uid: validate::uid(&plan).to_string(),
            migration_uid: run.migration_uid.clone(),
            vm_id: vm.id.clone(),
            vm_name: vm.name.clone(),
            target_name: vm.target_name.clone(),
            service_account: spec["serviceAccount"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            transfer_network: spec["transferNetwork"].clone(),
            provider_url,
            provider_secret,
            classes,
            storage_pairs,
            network_pairs,
            warm: is_warm(&plan.data),
            destination_host: destination.as_ref().is_some_and(|d| is_host(&d.data)),
            power_on: world_vm.is_some_and(|w| w.status == "up"),
        })
    }

    /// Forklift's PhaseStarted: `cleanup` of what an earlier attempt of a VM that has not
    /// succeeded left (its VirtualMachine; the rest of this migration's, none yet).
    pub(super) async fn started(&mut self, key: &str, vi: usize) {
        let Some(run) = self.runs.get(key) else {
            return;
        };
        if !(run.populators || run.datavolumes) {
            return;
        }
        if let Some(target) = self.target_of(run, &run.vms[vi]) {
            self.footprint.cleanup(&target, false).await;
            if run.datavolumes {
                self.footprint.cleanup_data_volumes(&target, false).await;
            }
        }
    }

    /// Forklift's CreateDataVolumes for the populator path (`PopulatorVolumes`, then
    /// `EnsurePopulatorVolumes`) for the VMs due, each VM's requests in Forklift's order, the VMs
    /// side by side (Forklift's reconciles of several plans run concurrently): a refusal fails
    /// the VM with the API server's message as the step error (migration.go:
    /// `step.AddError(err.Error())`); a transient error is retried.
    pub(super) async fn allocate(&mut self, due: Vec<(String, usize)>, now: &str) {
        let mut work = Vec::new();
        for (key, vi) in due {
            let Some(run) = self.runs.get(&key) else {
                continue;
            };
            let vm = &run.vms[vi];
            let world_vm = self.world.vms.iter().find(|w| w.id == vm.id).cloned();
            let on_cluster = run.populators || run.datavolumes;
            let checkpoints = super::warm::initial_checkpoints(vm);
            let job = match (on_cluster, self.target_of(run, vm), world_vm) {
                (true, Some(target), Some(world_vm)) => {
                    Some((target, world_vm, run.populators, checkpoints))
                }
                _ => None,
            };
            work.push((key, vi, job));
        }
        let this = &*self;
        let results = futures::future::join_all(work.iter().map(|(_, _, job)| async move {
            let Some((target, world_vm, populators, checkpoints)) = job else {
                return Ok(());
            };
            this.ensure_target_namespace(&target.namespace).await?;
            if !populators {
                // migration.go CreateDataVolumes: `DataVolumes`, `SetCheckpoints` (warm),
                // `EnsureDataVolumes`.
                return this
                    .footprint
                    .data_volumes(target, world_vm, checkpoints.as_ref())
                    .await;
            }
            let volumes = this.footprint.populator_volumes(target, world_vm).await?;
            this.footprint.consumer_pod(target, &volumes.created).await
        }))
        .await;
        for ((key, vi, _), result) in work.into_iter().zip(results) {
            self.allocated(&key, vi, result, now);
        }
    }

    fn allocated(&mut self, key: &str, vi: usize, result: Result<(), StepError>, now: &str) {
        let run = self.runs.get_mut(key).unwrap();
        let vm = &mut run.vms[vi];
        match result {
            Ok(()) => {
                vm.create_backoff = Default::default();
                vm.step_completed[0] = Some(now.to_string());
                vm.step_started[1] = Some(now.to_string());
                for d in &mut vm.disks {
                    d.started = Some(now.to_string());
                }
                if let Some(w) = &mut vm.warm
                    && run.datavolumes
                {
                    w.checkpoints_written = Some((w.precopies.len(), false));
                }
                vm.stage = Stage::Transfer;
            }
            Err(StepError::Transient(e)) => {
                let delay = vm.create_backoff.failed();
                tracing::info!(
                    "VM {}: creating its volumes: {e}; retrying in {} ms",
                    vm.name,
                    delay.as_millis()
                );
            }
            Err(StepError::Refused(e)) => {
                vm.finish(
                    Outcome::Failed,
                    now,
                    Some(("CreateDataVolumes".to_string(), e)),
                );
                run.force_flush = true;
                let event = self.vm_event("vm_finished", &self.runs[key], vi);
                self.emit(event);
            }
        }
    }

    async fn ensure_target_namespace(&self, ns: &str) -> Result<(), StepError> {
        self.ensure_namespace(ns).await.map_err(StepError::from)
    }

    /// Forklift's CreateVM: `EnsureVM` and the ownership it sets; a refusal fails the VM with the
    /// API server's message, a transient error keeps it in VirtualMachineCreation with backoff.
    pub(super) async fn create_target(&mut self, key: &str, vi: usize, now: &str) {
        let Some(run) = self.runs.get(key) else {
            return;
        };
        let vm = &run.vms[vi];
        let (Some(target), Some(world_vm)) = (
            self.target_of(run, vm),
            self.world.vms.iter().find(|w| w.id == vm.id).cloned(),
        ) else {
            return;
        };
        let result = match self.ensure_target_namespace(&target.namespace).await {
            Ok(()) => self.footprint.ensure_vm(&target, &world_vm).await,
            Err(e) => Err(e),
        };
        if result.is_ok() && run.datavolumes {
            // CreateVM: `DeleteDataVolumes` and `deleteImporterPods` once the VM owns the PVCs.
            self.footprint.delete_data_volumes(&target).await;
        }
        let sim_secs = self.sim_secs;
        let run = self.runs.get_mut(key).unwrap();
        let vm = &mut run.vms[vi];
        match result {
            Ok(()) => {
                vm.target_created = true;
                vm.create_backoff = Default::default();
                if let Some(w) = &mut vm.warm {
                    w.created_sim.get_or_insert(sim_secs);
                }
            }
            Err(StepError::Transient(e)) => {
                let delay = vm.create_backoff.failed();
                tracing::info!(
                    "VirtualMachine {}/{}: {e}; retrying in {} ms (attempt {})",
                    target.namespace,
                    target.target_name,
                    delay.as_millis(),
                    vm.create_backoff.failures + 1
                );
            }
            Err(StepError::Refused(e)) => {
                vm.finish(Outcome::Failed, now, Some(("CreateVM".to_string(), e)));
                run.force_flush = true;
            }
        }
    }

    /// After a VM's outcome: `cleanup` (a success keeps the VM and its PVCs; a cancel does not).
    pub(super) async fn clean_up(&self, key: &str, vi: usize) {
        let Some(run) = self.runs.get(key) else {
            return;
        };
        let vm = &run.vms[vi];
        if !(run.populators || run.datavolumes) {
            return;
        }
        let succeeded = vm.outcome() == Some(Outcome::Succeeded);
        if let Some(target) = self.target_of(run, vm) {
            self.footprint.cleanup(&target, succeeded).await;
            if run.datavolumes {
                self.footprint
                    .cleanup_data_volumes(&target, succeeded)
                    .await;
            }
        }
    }

    /// Reads the disks' claims, DataVolumes and copy pods from the cluster.
    pub(super) fn transfer_view(&self) -> TransferView {
        let mut view = TransferView::default();
        let pods = self.stores.pods.state();
        let running = |p: &&std::sync::Arc<Pod>| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        };
        let running_pods: HashSet<(String, String)> = pods
            .iter()
            .filter(running)
            .map(|p| {
                (
                    p.metadata.namespace.clone().unwrap_or_default(),
                    p.metadata.name.clone().unwrap_or_default(),
                )
            })
            .collect();
        let importing: HashSet<String> = pods
            .iter()
            .filter(running)
            .filter_map(|p| importer_owner(p))
            .collect();
        let claims = crate::objects::by_name(&self.stores.pvcs.state());
        for pvc in claims.values() {
            let Some(key) = disk_key(pvc) else {
                continue;
            };
            let uid = pvc.metadata.uid.clone().unwrap_or_default();
            if populator_ref(pvc).is_none() {
                if importing.contains(&uid) {
                    view.flowing.insert(key);
                }
                continue;
            }
            view.claimed.insert(key.clone());
            if pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound") {
                view.bound.insert(key.clone());
            }
            let pod = (
                pvc.metadata.namespace.clone().unwrap_or_default(),
                populator::pod_name(&uid),
            );
            if running_pods.contains(&pod) {
                view.flowing.insert(key);
            }
        }
        for dv in self.stores.data_volumes.state() {
            let ns = dv.metadata.namespace.clone().unwrap_or_default();
            let name = dv.metadata.name.clone().unwrap_or_default();
            let Some(pvc) = claims.get(&(ns, name)) else {
                continue;
            };
            if let (Some(key), Some(n)) = (disk_key(pvc), dv_copied(&dv, pvc)) {
                view.copied.insert(key, n);
            }
        }
        view
    }

    /// Percent copied and whether done, per disk of the VMs transferring now.
    fn disk_progress(&self) -> HashMap<DiskKey, (i64, bool)> {
        let mut progress = HashMap::new();
        for run in self.runs.values().filter(|r| r.populators || r.datavolumes) {
            for vm in &run.vms {
                if !matches!(
                    vm.stage,
                    Stage::Transfer | Stage::Cutover | Stage::Create { .. }
                ) {
                    continue;
                }
                for d in &vm.disks {
                    let done = d.remaining_bytes <= 0.0;
                    let percent = if d.stage_bytes > 0.0 {
                        (((d.stage_bytes - d.remaining_bytes.max(0.0)) / d.stage_bytes) * 100.0)
                            .floor() as i64
                    } else {
                        100
                    };
                    progress.insert(
                        (run.migration_uid.clone(), vm.id.clone(), d.id.clone()),
                        (percent, done),
                    );
                }
            }
        }
        progress
    }

    /// One pass of every role forklift-sim plays on the target side, side by side as their
    /// controllers run.
    pub(super) async fn play_roles(&mut self) {
        let scope = self.scope();
        let progress = self.disk_progress();
        let percent =
            |pvc: &PersistentVolumeClaim| disk_key(pvc).and_then(|k| progress.get(&k)).map(|p| p.0);
        let claims: HashMap<String, DiskKey> = self
            .stores
            .pvcs
            .state()
            .iter()
            .filter_map(|c| Some((c.metadata.uid.clone()?, disk_key(c)?)))
            .collect();
        let fate = |pod: &Pod| pod_fate(pod, &claims, &progress);
        let roles = &mut self.roles;
        let stores = &self.stores;
        tokio::join!(
            roles.cdi.reconcile(stores),
            roles.provisioner.reconcile(stores, &scope),
            roles.populator.reconcile(stores, &scope, &percent),
            roles.cdi_import.reconcile(stores, &scope, &percent),
            roles.node.reconcile(stores, &scope, &fate),
            roles
                .kubevirt
                .reconcile(&self.cluster.virtual_machines, stores, &scope),
        );
    }
}

/// What the node does with a running pod: a populator pod ends when its disk is copied (one no
/// execution tracks any more, at once); the PVC consumer pod runs `exit 0`; others run on.
fn pod_fate(
    pod: &Pod,
    claims: &HashMap<String, DiskKey>,
    progress: &HashMap<DiskKey, (i64, bool)>,
) -> Fate {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    if has_labels(
        pod.metadata.labels.as_ref(),
        &[("forklift.app", "consumer")],
    ) {
        return Fate::Succeed;
    }
    let copying = name
        .strip_prefix("populate-")
        .map(str::to_string)
        .or_else(|| importer_owner(pod));
    if let Some(uid) = copying {
        let done = claims
            .get(&uid)
            .and_then(|k| progress.get(k))
            .is_none_or(|p| p.1);
        return if done { Fate::Succeed } else { Fate::Run };
    }
    Fate::Run
}

/// What Forklift's `updateCopyProgress` reads of a DataVolume: Succeeded (`usize::MAX`), or
/// Paused with its PVC annotated as having copied the last checkpoint (the checkpoint count).
fn dv_copied(dv: &kube::api::DynamicObject, pvc: &PersistentVolumeClaim) -> Option<usize> {
    let checkpoints = dv.data["spec"]["checkpoints"].as_array();
    match dv.data["status"]["phase"].as_str()? {
        "Succeeded" => Some(usize::MAX),
        "Paused" => {
            let list = checkpoints?;
            let last = list.last()?["current"].as_str()?;
            let key = format!("{}.{last}", crate::cdi_import::ANN_CHECKPOINT_COPIED);
            pvc.metadata
                .annotations
                .as_ref()?
                .contains_key(&key)
                .then_some(list.len())
        }
        _ => None,
    }
}
