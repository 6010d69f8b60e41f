//! The target side of an execution: what Forklift's plan controller creates for each VM (through
//! `Footprint`), and the roles forklift-sim plays beside it (CDI's StorageProfiles, the storage
//! provisioner, the populator controller, the node, KubeVirt), driven from the simulation.

use super::{Controller, Run};
use crate::footprint::{StepError, Target};
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

/// Where each disk's populator claim stands, read from the cluster once per tick.
#[derive(Default)]
pub struct TransferView {
    /// Disks whose populator pod is running: their bytes flow.
    pub flowing: HashSet<DiskKey>,
    /// Disks whose claim is Bound: Forklift marks their task Completed.
    pub bound: HashSet<DiskKey>,
    /// Disks whose claim exists.
    pub claimed: HashSet<DiskKey>,
}

fn disk_key(pvc: &PersistentVolumeClaim) -> Option<DiskKey> {
    let labels = pvc.metadata.labels.as_ref()?;
    Some((
        labels.get("migration")?.clone(),
        labels.get("vmID")?.clone(),
        labels.get("diskID")?.clone(),
    ))
}

/// Forklift v2.12.5 `adapter/ovirt/builder.go` `SupportsVolumePopulators`: a cold plan whose
/// destination is the host cluster (an `openshift` Provider without a URL).
pub fn uses_populators(plan: &Value, destination: Option<&Value>) -> bool {
    let warm = plan["spec"]["warm"] == true || plan["spec"]["type"] == "warm";
    let host = destination.is_some_and(|p| {
        p["spec"]["type"] == "openshift" && p["spec"]["url"].as_str().unwrap_or_default().is_empty()
    });
    !warm && host
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
                }
            }
        }
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
            power_on: world_vm.is_some_and(|w| w.status == "up"),
        })
    }

    /// Forklift's PhaseStarted: `cleanup` of what an earlier attempt of a VM that has not
    /// succeeded left (its VirtualMachine; the rest of this migration's, none yet).
    pub(super) async fn started(&mut self, key: &str, vi: usize) {
        let Some(run) = self.runs.get(key) else {
            return;
        };
        if !run.populators {
            return;
        }
        if let Some(target) = self.target_of(run, &run.vms[vi]) {
            self.footprint.cleanup(&target, false).await;
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
            let job = match (run.populators, self.target_of(run, vm), world_vm) {
                (true, Some(target), Some(world_vm)) => Some((target, world_vm)),
                _ => None,
            };
            work.push((key, vi, job));
        }
        let this = &*self;
        let results = futures::future::join_all(work.iter().map(|(_, _, job)| async move {
            let Some((target, world_vm)) = job else {
                return Ok(());
            };
            this.ensure_target_namespace(&target.namespace).await?;
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
        let run = self.runs.get_mut(key).unwrap();
        let vm = &mut run.vms[vi];
        match result {
            Ok(()) => {
                vm.target_created = true;
                vm.create_backoff = Default::default();
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
        if !run.populators {
            return;
        }
        let succeeded = vm.outcome() == Some(Outcome::Succeeded);
        if let Some(target) = self.target_of(run, vm) {
            self.footprint.cleanup(&target, succeeded).await;
        }
    }

    /// Reads the disks' claims and populator pods from the cluster.
    pub(super) fn transfer_view(&self) -> TransferView {
        let mut view = TransferView::default();
        let running: HashSet<(String, String)> = self
            .stores
            .pods
            .state()
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .map(|p| {
                (
                    p.metadata.namespace.clone().unwrap_or_default(),
                    p.metadata.name.clone().unwrap_or_default(),
                )
            })
            .collect();
        for pvc in self.stores.pvcs.state() {
            if populator_ref(&pvc).is_none() {
                continue;
            }
            let Some(key) = disk_key(&pvc) else {
                continue;
            };
            view.claimed.insert(key.clone());
            if pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound") {
                view.bound.insert(key.clone());
            }
            let uid = pvc.metadata.uid.clone().unwrap_or_default();
            let pod = (
                pvc.metadata.namespace.clone().unwrap_or_default(),
                populator::pod_name(&uid),
            );
            if running.contains(&pod) {
                view.flowing.insert(key);
            }
        }
        view
    }

    /// Percent copied and whether done, per disk of the VMs transferring now.
    fn disk_progress(&self) -> HashMap<DiskKey, (i64, bool)> {
        let mut progress = HashMap::new();
        for run in self.runs.values().filter(|r| r.populators) {
            for vm in &run.vms {
                if vm.stage != Stage::Transfer && !matches!(vm.stage, Stage::Create { .. }) {
                    continue;
                }
                for d in &vm.disks {
                    let done = d.remaining_bytes <= 0.0;
                    let percent = if d.total_bytes > 0.0 {
                        (((d.total_bytes - d.remaining_bytes.max(0.0)) / d.total_bytes) * 100.0)
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
    if let Some(uid) = name.strip_prefix("populate-") {
        let done = claims
            .get(uid)
            .and_then(|k| progress.get(k))
            .is_none_or(|p| p.1);
        return if done { Fate::Succeed } else { Fate::Run };
    }
    Fate::Run
}
