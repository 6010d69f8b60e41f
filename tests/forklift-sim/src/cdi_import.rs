//! Plays CDI v1.66.0's import of DataVolumes with an imageio source and no CDI populator (Forklift
//! sets `usePopulator: "false"` on warm DataVolumes; the test bed registers no CSIDriver, so CDI
//! imports cold ones the same way): the DataVolume controller makes the PVC and keeps the
//! DataVolume's status, the import controller runs importer pods (one per checkpoint of a
//! multi-stage import) with a scratch PVC while one is needed, and the multi-stage annotations
//! move from checkpoint to checkpoint.

use crate::events::{Involved, Recorder, WARNING};
use crate::objects::{Scope, Stores, message};
use crate::retry::Keyed;
use crate::sizing::{self, VolumeMode};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// `pkg/controller/common/util.go` annotations.
pub const ANN_POD_PHASE: &str = "cdi.kubevirt.io/storage.pod.phase";
pub const ANN_IMPORT_POD: &str = "cdi.kubevirt.io/storage.import.importPodName";
pub const ANN_CURRENT_CHECKPOINT: &str = "cdi.kubevirt.io/storage.checkpoint.current";
const ANN_PREVIOUS_CHECKPOINT: &str = "cdi.kubevirt.io/storage.checkpoint.previous";
const ANN_FINAL_CHECKPOINT: &str = "cdi.kubevirt.io/storage.checkpoint.final";
const ANN_CURRENT_POD_ID: &str = "cdi.kubevirt.io/storage.checkpoint.pod.id";
pub const ANN_MULTI_STAGE_DONE: &str = "cdi.kubevirt.io/storage.checkpoint.done";
/// Forklift's `AnnCheckpointsCopied` and CDI's `getCheckpointCopiedKey` prefix.
pub const ANN_CHECKPOINT_COPIED: &str = "cdi.kubevirt.io/storage.checkpoint.copied";
const ANN_REQUIRES_SCRATCH: &str = "cdi.kubevirt.io/storage.import.requiresScratch";
const ANN_SOURCE: &str = "cdi.kubevirt.io/storage.import.source";
const ANN_ENDPOINT: &str = "cdi.kubevirt.io/storage.import.endpoint";
const ANN_SECRET: &str = "cdi.kubevirt.io/storage.import.secretName";
const ANN_CERT_CONFIG_MAP: &str = "cdi.kubevirt.io/storage.import.certConfigMap";
const ANN_DISK_ID: &str = "cdi.kubevirt.io/storage.import.diskId";
const ANN_POD_RESTARTS: &str = "cdi.kubevirt.io/storage.pod.restarts";
const ANN_CONTENT_TYPE: &str = "cdi.kubevirt.io/storage.contentType";
const ANN_PREALLOCATION: &str = "cdi.kubevirt.io/storage.preallocation.requested";
const ANN_CREATED_FOR_DV: &str = "cdi.kubevirt.io/createdForDataVolume";
const ANN_CREATED_BY: &str = "cdi.kubevirt.io/storage.createdByController";
const ANN_POD_SERVICE_ACCOUNT: &str = "cdi.kubevirt.io/storage.pod.serviceAccountName";
/// `pkg/common/common.go`.
const CDI_LABEL: (&str, &str) = ("app", "containerized-data-importer");
const FILLING_UP_SUPPRESS: (&str, &str) =
    ("alerts.k8s.io/KubePersistentVolumeFillingUp", "disabled");
/// `pkg/controller/config-controller.go`: CDIConfig defaultPodResourceRequirements.
const IMPORTER_REQUESTS: (&str, &str) = ("100m", "60M");
const IMPORTER_LIMITS: (&str, &str) = ("750m", "600M");
const IMPORTER_IMAGE: &str = "quay.io/kubevirt/cdi-importer:v1.66.0";

/// The PVC of a DataVolume with an imageio source: CDI names it after the DataVolume.
pub fn is_import_dv(dv: &DynamicObject) -> bool {
    dv.data["spec"]["source"]["imageio"].is_object()
}

fn name_of<K: kube::Resource>(obj: &K) -> String {
    obj.meta().name.clone().unwrap_or_default()
}

fn ns_of<K: kube::Resource>(obj: &K) -> String {
    obj.meta().namespace.clone().unwrap_or_default()
}

fn uid_of<K: kube::Resource>(obj: &K) -> String {
    obj.meta().uid.clone().unwrap_or_default()
}

type Annotations = BTreeMap<String, String>;

fn annotations_of(pvc: &PersistentVolumeClaim) -> Annotations {
    pvc.metadata.annotations.clone().unwrap_or_default()
}

/// `IsPVCComplete`: the import pod Succeeded.
fn complete(a: &Annotations) -> bool {
    a.get(ANN_POD_PHASE).map(String::as_str) == Some("Succeeded")
}

/// `IsMultiStageImportInProgress`.
fn multi_stage_in_progress(a: &Annotations) -> bool {
    a.contains_key(ANN_CURRENT_CHECKPOINT) && !a.contains_key(ANN_MULTI_STAGE_DONE)
}

fn copied_key(checkpoint: &str) -> String {
    format!("{ANN_CHECKPOINT_COPIED}.{checkpoint}")
}

/// import-controller.go `createImportPodNameFromPvc` with `podNameWithCheckpoint`.
fn import_pod_name(pvc: &str, a: &Annotations) -> String {
    match a.get(ANN_CURRENT_CHECKPOINT).filter(|c| !c.is_empty()) {
        Some(c) => format!("importer-{pvc}-checkpoint-{c}"),
        None => format!("importer-{pvc}"),
    }
}

/// import-controller.go `requiresScratchSpace` for an imageio source: a checkpoint is being
/// imported (snapshot deltas come as qcow2), or CDI was told so.
fn requires_scratch(a: &Annotations) -> bool {
    a.get(ANN_CURRENT_CHECKPOINT).is_some_and(|c| !c.is_empty())
        || a.get(ANN_REQUIRES_SCRATCH).map(String::as_str) == Some("true")
}

/// The scratch PVC's name (`createScratchNameFromPvc`).
pub fn scratch_name(pvc: &str) -> String {
    format!("{pvc}-scratch")
}

/// The DataVolume's checkpoints (`current`, `previous`) and whether the last is final.
fn checkpoints(dv: &DynamicObject) -> (Vec<(String, String)>, bool) {
    let list = dv.data["spec"]["checkpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (text("current"), text("previous"))
        })
        .collect();
    (list, dv.data["spec"]["finalCheckpoint"] == true)
}

/// checkpoint-util.go `GetNextCheckpoint`: the first checkpoint not copied yet, and whether it
/// is the final one.
fn next_checkpoint(a: &Annotations, dv: &DynamicObject) -> Option<(String, String, bool)> {
    let (list, last_is_final) = checkpoints(dv);
    let n = list.len();
    list.into_iter()
        .enumerate()
        .filter(|(_, (current, _))| !current.is_empty())
        .find(|(_, (current, _))| {
            a.get(ANN_CURRENT_CHECKPOINT).is_none_or(|c| c.is_empty())
                || !a.contains_key(&copied_key(current))
        })
        .map(|(i, (current, previous))| (current, previous, i + 1 == n && last_is_final))
}

fn set_checkpoint(a: &mut Annotations, (current, previous, last): (String, String, bool)) {
    a.insert(ANN_CURRENT_CHECKPOINT.into(), current);
    a.insert(ANN_PREVIOUS_CHECKPOINT.into(), previous);
    a.insert(ANN_FINAL_CHECKPOINT.into(), last.to_string());
}

/// checkpoint-util.go `UpdatesMultistageImportSucceeded` (with `setPvcMultistageImportAnnotations`
/// and `deleteMultistageImportAnnotations`), run by the DataVolume controller once a stage's pod
/// Succeeded.
fn multi_stage_succeeded(a: &mut Annotations, dv: &DynamicObject) {
    let current = a.get(ANN_CURRENT_CHECKPOINT).cloned().unwrap_or_default();
    let already_copied = a.contains_key(&copied_key(&current));
    let last = a.get(ANN_FINAL_CHECKPOINT).map(String::as_str) == Some("true");
    if last && already_copied {
        for key in [
            ANN_CURRENT_CHECKPOINT,
            ANN_PREVIOUS_CHECKPOINT,
            ANN_FINAL_CHECKPOINT,
            ANN_CURRENT_POD_ID,
        ] {
            a.remove(key);
        }
        a.retain(|k, _| !k.starts_with(ANN_CHECKPOINT_COPIED));
        a.insert(ANN_MULTI_STAGE_DONE.into(), "true".into());
        return;
    }
    let pod_id = a.get(ANN_CURRENT_POD_ID).cloned().unwrap_or_default();
    let used = a
        .iter()
        .any(|(k, v)| k.starts_with(ANN_CHECKPOINT_COPIED) && *v == pod_id);
    if !used && !current.is_empty() {
        a.insert(copied_key(&current), pod_id);
    }
    if let Some(next) = next_checkpoint(a, dv) {
        set_checkpoint(a, next);
        // The next stage needs a new pod.
        a.insert(ANN_POD_PHASE.into(), "Unknown".into());
        a.remove(ANN_IMPORT_POD);
    }
}

/// What the DataVolume's status says, from its PVC's annotations (import-controller.go
/// `updateStatusPhase` of the datavolume package).
fn dv_phase(pvc: &PersistentVolumeClaim, a: &Annotations) -> &'static str {
    let bound = pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    match a.get(ANN_POD_PHASE).map(String::as_str) {
        Some("Succeeded") if multi_stage_in_progress(a) => "Paused",
        Some("Succeeded") => "Succeeded",
        Some("Running") if bound => "ImportInProgress",
        _ if bound && a.contains_key(ANN_IMPORT_POD) => "ImportScheduled",
        _ => "Pending",
    }
}

pub struct CdiImport {
    client: Client,
    recorder: Recorder,
    retries: Keyed,
}

/// One DataVolume's objects as the stores show them.
struct Work {
    dv: Arc<DynamicObject>,
    pvc: Option<Arc<PersistentVolumeClaim>>,
    pods: BTreeMap<String, Arc<Pod>>,
    scratch_exists: bool,
    overhead: f64,
    profile: Value,
}

impl CdiImport {
    pub fn new(client: Client) -> CdiImport {
        CdiImport {
            recorder: Recorder::new(client.clone(), "datavolume-import-controller"),
            client,
            retries: Keyed::default(),
        }
    }

    /// One pass of CDI's DataVolume and import controllers over the DataVolumes in scope;
    /// `percent` gives the copy's progress of a PVC, when the simulation tracks it.
    pub async fn reconcile(
        &mut self,
        stores: &Stores,
        scope: &Scope,
        percent: &dyn Fn(&PersistentVolumeClaim) -> Option<i64>,
    ) {
        let claims = crate::objects::by_name(&stores.pvcs.state());
        let pods = crate::objects::by_name(&stores.pods.state());
        let profiles = stores.storage_profiles.state();
        let work: Vec<Work> = stores
            .data_volumes
            .state()
            .into_iter()
            .filter(|dv| is_import_dv(dv) && scope.contains(&ns_of(dv.as_ref())))
            .filter(|dv| dv.metadata.deletion_timestamp.is_none())
            .filter(|dv| self.retries.due(&uid_of(dv.as_ref())))
            .map(|dv| {
                let (ns, name) = (ns_of(dv.as_ref()), name_of(dv.as_ref()));
                let class = dv.data["spec"]["storage"]["storageClassName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                Work {
                    pvc: claims.get(&(ns.clone(), name.clone())).cloned(),
                    pods: pods
                        .iter()
                        .filter(|((n, p), _)| {
                            *n == ns && p.starts_with(&format!("importer-{name}"))
                        })
                        .map(|((_, p), pod)| (p.clone(), pod.clone()))
                        .collect(),
                    scratch_exists: claims.contains_key(&(ns.clone(), scratch_name(&name))),
                    overhead: crate::cdi::filesystem_overhead(stores, &class),
                    profile: profiles
                        .iter()
                        .find(|p| p.metadata.name.as_deref() == Some(class.as_str()))
                        .map(|p| p.data["status"].clone())
                        .unwrap_or(Value::Null),
                    dv,
                }
            })
            .collect();
        let this = &*self;
        let results = futures::future::join_all(work.iter().map(|w| this.sync(w, percent))).await;
        for (w, result) in work.iter().zip(results) {
            let uid = uid_of(w.dv.as_ref());
            match result {
                Ok(true) => self.retries.pause(&uid, Duration::from_millis(200)),
                Ok(false) => self.retries.succeeded(&uid),
                Err(e) => {
                    let delay = self.retries.failed(&uid);
                    tracing::info!(
                        "DataVolume {}/{}: {e}; retrying in {} ms",
                        ns_of(w.dv.as_ref()),
                        name_of(w.dv.as_ref()),
                        delay.as_millis()
                    );
                }
            }
        }
    }

    /// Ok(true): something was written (wait for the watch).
    async fn sync(
        &self,
        w: &Work,
        percent: &dyn Fn(&PersistentVolumeClaim) -> Option<i64>,
    ) -> Result<bool, String> {
        let Some(pvc) = &w.pvc else {
            return self.create_pvc(w).await;
        };
        let before = annotations_of(pvc);
        let mut a = before.clone();
        let bound = pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
        // The DataVolume controller: `MaybeSetPvcMultiStageAnnotation`, then
        // `UpdatesMultistageImportSucceeded` once a stage's pod Succeeded.
        let (list, _) = checkpoints(&w.dv);
        if bound
            && !list.is_empty()
            && !a.contains_key(ANN_CURRENT_CHECKPOINT)
            && !a.contains_key(ANN_MULTI_STAGE_DONE)
            && let Some(next) = next_checkpoint(&a, &w.dv)
        {
            set_checkpoint(&mut a, next);
        }
        if complete(&a) && multi_stage_in_progress(&a) {
            multi_stage_succeeded(&mut a, &w.dv);
        }
        let mut wrote = self.import(w, pvc, &mut a).await?;
        if a != before {
            self.patch_annotations(pvc, &before, &a).await?;
            wrote = true;
        }
        wrote |= self.write_status(w, pvc, &a, percent(pvc)).await?;
        Ok(wrote)
    }

    /// The import controller's `reconcilePvc` on the annotations (changed in place).
    async fn import(
        &self,
        w: &Work,
        pvc: &PersistentVolumeClaim,
        a: &mut Annotations,
    ) -> Result<bool, String> {
        if complete(a) && !multi_stage_in_progress(a) {
            return Ok(false);
        }
        let name = name_of(pvc);
        let pod_name = a
            .get(ANN_IMPORT_POD)
            .cloned()
            .unwrap_or_else(|| import_pod_name(&name, a));
        match w.pods.get(&pod_name) {
            None if complete(a) => Ok(false),
            None if !a.contains_key(ANN_IMPORT_POD) => {
                // `initPvcPodName`.
                a.insert(ANN_IMPORT_POD.into(), import_pod_name(&name, a));
                if requires_scratch(a) {
                    a.insert(ANN_REQUIRES_SCRATCH.into(), "true".into());
                }
                Ok(false)
            }
            None => self.create_importer(w, pvc, a, &pod_name).await,
            Some(pod) if pod.metadata.deletion_timestamp.is_some() => Ok(false),
            Some(pod) => self.update_from_pod(w, pvc, a, pod).await,
        }
    }

    /// `updatePvcFromPod`: the pod's phase onto the PVC; a pod done is deleted (no
    /// retainAfterCompletion), which lets the garbage collector take its scratch PVC.
    async fn update_from_pod(
        &self,
        w: &Work,
        pvc: &PersistentVolumeClaim,
        a: &mut Annotations,
        pod: &Pod,
    ) -> Result<bool, String> {
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Pending".into());
        if a.get(ANN_CURRENT_CHECKPOINT).is_some_and(|c| !c.is_empty()) {
            a.insert(ANN_CURRENT_POD_ID.into(), uid_of(pod));
        }
        a.insert(ANN_IMPORT_POD.into(), name_of(pod));
        a.insert(ANN_POD_PHASE.into(), phase.clone());
        if phase == "Pending" && requires_scratch(a) && !w.scratch_exists {
            self.create_scratch(w, pvc, pod).await?;
            a.insert(ANN_REQUIRES_SCRATCH.into(), "false".into());
            return Ok(true);
        }
        if phase == "Succeeded" {
            let pods: Api<Pod> = Api::namespaced(self.client.clone(), &ns_of(pod));
            match pods.delete(&name_of(pod), &DeleteParams::default()).await {
                Err(e) if !crate::objects::is_not_found(&e) => return Err(message(&e)),
                _ => return Ok(true),
            }
        }
        Ok(false)
    }

    /// The DataVolume controller's `handlePvcCreation`: the PVC named after the DataVolume, its
    /// spec rendered from `spec.storage` (modes from the StorageProfile when the DataVolume gives
    /// none; size per `renderPvcSpecVolumeSize`), owned by the DataVolume. A quota refusal leaves
    /// the DataVolume Pending with a Warning Event ErrExceededQuota (the API server's message).
    async fn create_pvc(&self, w: &Work) -> Result<bool, String> {
        let body = render_pvc(&w.dv, &w.profile, w.overhead)?;
        let pvc: PersistentVolumeClaim = serde_json::from_value(body).map_err(|e| e.to_string())?;
        let api: Api<PersistentVolumeClaim> =
            Api::namespaced(self.client.clone(), &ns_of(w.dv.as_ref()));
        if let Err(e) = api.create(&PostParams::default(), &pvc).await {
            let text = message(&e);
            if text.contains("exceeded quota:") {
                let dv = &w.dv;
                let involved = Involved::new(
                    "cdi.kubevirt.io/v1beta1",
                    "DataVolume",
                    &ns_of(dv.as_ref()),
                    &name_of(dv.as_ref()),
                    &uid_of(dv.as_ref()),
                );
                self.recorder
                    .record(&involved, WARNING, "ErrExceededQuota", &text)
                    .await;
                self.patch_dv_status(dv, json!({"phase": "Pending", "progress": "N/A"}))
                    .await?;
            }
            return Err(text);
        }
        Ok(true)
    }

    /// `createImporterPod` (`makeImporterPodSpec`): `importer-<pvc>[-checkpoint-<id>]`, owned by
    /// the PVC, the CDIConfig's default requests, the scratch PVC mounted when one is needed, then
    /// the scratch PVC itself. A refused pod: Warning Event (ErrExceededQuota or ErrStartingPod,
    /// CDI's generic message) on the PVC, retried.
    async fn create_importer(
        &self,
        w: &Work,
        pvc: &PersistentVolumeClaim,
        a: &mut Annotations,
        pod_name: &str,
    ) -> Result<bool, String> {
        let ns = ns_of(pvc);
        let scratch = requires_scratch(a);
        let body = importer_pod(pvc, a, pod_name, scratch);
        let pod: Pod = serde_json::from_value(body).map_err(|e| e.to_string())?;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        match pods.create(&PostParams::default(), &pod).await {
            Ok(made) => {
                if scratch && !w.scratch_exists {
                    self.create_scratch(w, pvc, &made).await?;
                    a.insert(ANN_REQUIRES_SCRATCH.into(), "false".into());
                }
                Ok(true)
            }
            Err(e) => {
                let text = message(&e);
                let reason = if text.contains("exceeded quota:") {
                    "ErrExceededQuota"
                } else {
                    "ErrStartingPod"
                };
                let generic = format!(
                    "Error starting pod '{pod_name}': For more information, request access to cdi-deploy logs from your sysadmin"
                );
                let involved = Involved::new(
                    "v1",
                    "PersistentVolumeClaim",
                    &ns,
                    &name_of(pvc),
                    &uid_of(pvc),
                );
                self.recorder
                    .record(&involved, WARNING, reason, &generic)
                    .await;
                Err(format!("importer pod {pod_name}: {text}"))
            }
        }
    }

    /// util.go `createScratchPersistentVolumeClaim`: `<pvc>-scratch` in the PVC's class (no
    /// CDIConfig scratch class here), ReadWriteOnce, Filesystem, owned by the importer pod; its
    /// size `GetRequiredSpace(class overhead, GetUsableSpace(pvc overhead, request))` rounded up
    /// to 1 MiB. A quota refusal is a Warning Event ErrExceededQuota on the PVC, retried.
    async fn create_scratch(
        &self,
        w: &Work,
        pvc: &PersistentVolumeClaim,
        pod: &Pod,
    ) -> Result<(), String> {
        let spec = pvc.spec.clone().unwrap_or_default();
        let mode = VolumeMode::parse(spec.volume_mode.as_deref());
        let bytes =
            sizing::cdi_scratch_bytes(crate::objects::pvc_request_bytes(pvc), mode, w.overhead);
        let body = json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": scratch_name(&name_of(pvc)), "namespace": ns_of(pvc),
                "labels": {CDI_LABEL.0: CDI_LABEL.1, "velero.io/exclude-from-backup": "true"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": name_of(pod),
                    "uid": uid_of(pod), "blockOwnerDeletion": true, "controller": true}]},
            "spec": {"accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": bytes.to_string()}},
                "storageClassName": spec.storage_class_name},
        });
        let scratch: PersistentVolumeClaim =
            serde_json::from_value(body).map_err(|e| e.to_string())?;
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns_of(pvc));
        match api.create(&PostParams::default(), &scratch).await {
            Ok(_) => Ok(()),
            Err(e) if crate::objects::is_conflict(&e) && message(&e).contains("already exists") => {
                Ok(())
            }
            Err(e) => {
                let text = message(&e);
                if text.contains("exceeded quota:") {
                    let involved = Involved::new(
                        "v1",
                        "PersistentVolumeClaim",
                        &ns_of(pvc),
                        &name_of(pvc),
                        &uid_of(pvc),
                    );
                    self.recorder
                        .record(&involved, WARNING, "ErrExceededQuota", &text)
                        .await;
                }
                Err(format!("scratch PVC API create errored: {text}"))
            }
        }
    }

    async fn patch_annotations(
        &self,
        pvc: &PersistentVolumeClaim,
        before: &Annotations,
        after: &Annotations,
    ) -> Result<(), String> {
        let mut changes = Map::new();
        for key in before.keys().filter(|k| !after.contains_key(*k)) {
            changes.insert(key.clone(), Value::Null);
        }
        for (k, v) in after.iter().filter(|(k, v)| before.get(*k) != Some(v)) {
            changes.insert(k.clone(), Value::from(v.clone()));
        }
        let patch = json!({"metadata": {"annotations": changes}});
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns_of(pvc));
        api.patch(
            &name_of(pvc),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map(|_| ())
        .map_err(|e| message(&e))
    }

    /// The DataVolume's status: phase, claim name and progress (`NN.NN%` while importing).
    async fn write_status(
        &self,
        w: &Work,
        pvc: &PersistentVolumeClaim,
        a: &Annotations,
        percent: Option<i64>,
    ) -> Result<bool, String> {
        let phase = dv_phase(pvc, a);
        let progress = match phase {
            "Succeeded" => "100.0%".to_string(),
            "ImportInProgress" => format!("{:.2}%", percent.unwrap_or(0).clamp(0, 100) as f64),
            _ => "N/A".to_string(),
        };
        let bound = pvc.status.as_ref().and_then(|s| s.phase.clone()) == Some("Bound".into());
        let status = json!({"phase": phase, "progress": progress, "claimName": name_of(pvc),
        "conditions": [
            {"type": "Bound", "status": if bound { "True" } else { "False" },
             "reason": if bound { "Bound" } else { "Pending" },
             "message": if bound { format!("PVC {} Bound", name_of(pvc)) }
                 else { format!("PVC {} Pending", name_of(pvc)) }},
            {"type": "Running", "status": if phase == "ImportInProgress" { "True" } else { "False" },
             "reason": if phase == "ImportInProgress" { "Pod is running" } else { "" }},
        ]});
        let current = &w.dv.data["status"];
        if current["phase"] == status["phase"]
            && current["progress"] == status["progress"]
            && current["claimName"] == status["claimName"]
        {
            return Ok(false);
        }
        self.patch_dv_status(&w.dv, status).await?;
        Ok(true)
    }

    async fn patch_dv_status(&self, dv: &DynamicObject, status: Value) -> Result<(), String> {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            &ns_of(dv),
            &crate::objects::data_volume(),
        );
        api.patch_status(
            &name_of(dv),
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": status})),
        )
        .await
        .map(|_| ())
        .map_err(|e| message(&e))
    }
}

/// datavolume/controller-base.go `newPersistentVolumeClaim` with util.go
/// `renderPvcSpecVolumeModeAndAccessModesAndStorageClass` and `renderPvcSpecVolumeSize`, and the
/// import controller's `updateAnnotations` (imageio annotations, the first checkpoint).
fn render_pvc(dv: &DynamicObject, profile: &Value, overhead: f64) -> Result<Value, String> {
    let storage = &dv.data["spec"]["storage"];
    let first = &profile["claimPropertySets"][0];
    let (mode_text, access) = match (
        storage["volumeMode"].as_str(),
        storage["accessModes"].as_array(),
    ) {
        (Some(m), Some(a)) => (Some(m.to_string()), Value::from(a.clone())),
        (None, None) => (
            first["volumeMode"].as_str().map(str::to_string),
            first["accessModes"].clone(),
        ),
        (Some(m), None) => {
            // `getDefaultAccessModes`: the first set of that volume mode.
            let sets = profile["claimPropertySets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let found = sets
                .iter()
                .find(|s| s["volumeMode"] == m)
                .map(|s| s["accessModes"].clone());
            (Some(m.to_string()), found.unwrap_or(Value::Null))
        }
        (None, Some(a)) => (
            first["volumeMode"].as_str().map(str::to_string),
            Value::from(a.clone()),
        ),
    };
    if access.as_array().is_none_or(|a| a.is_empty()) {
        return Err(format!(
            "no accessMode specified in StorageProfile {}",
            storage["storageClassName"].as_str().unwrap_or_default()
        ));
    }
    let mode = VolumeMode::parse(mode_text.as_deref());
    let requested = storage["resources"]["requests"]["storage"]
        .as_str()
        .and_then(crate::objects::quantity_bytes)
        .ok_or("PVC Spec is not valid - missing storage size")?;
    let bytes = sizing::cdi_pvc_bytes(requested, mode, overhead);
    let mut labels = Map::new();
    labels.insert(CDI_LABEL.0.into(), Value::from(CDI_LABEL.1));
    if mode == VolumeMode::Filesystem {
        labels.insert(
            FILLING_UP_SUPPRESS.0.into(),
            Value::from(FILLING_UP_SUPPRESS.1),
        );
    }
    for (k, v) in dv.metadata.labels.clone().unwrap_or_default() {
        labels.insert(k, Value::from(v));
    }
    let mut annotations: Map<String, Value> = dv
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, Value::from(v)))
        .collect();
    let imageio = &dv.data["spec"]["source"]["imageio"];
    for (key, value) in [
        (ANN_POD_RESTARTS, Value::from("0")),
        (ANN_CONTENT_TYPE, Value::from("kubevirt")),
        (ANN_PREALLOCATION, Value::from("false")),
        (ANN_CREATED_FOR_DV, Value::from(uid_of(dv))),
        (ANN_ENDPOINT, imageio["url"].clone()),
        (ANN_SOURCE, Value::from("imageio")),
        (ANN_SECRET, imageio["secretRef"].clone()),
        (ANN_CERT_CONFIG_MAP, imageio["certConfigMap"].clone()),
        (ANN_DISK_ID, imageio["diskId"].clone()),
    ] {
        annotations.insert(key.into(), value);
    }
    if let Some((current, previous, last)) = next_checkpoint(&Annotations::new(), dv) {
        annotations.insert(ANN_CURRENT_CHECKPOINT.into(), Value::from(current));
        annotations.insert(ANN_PREVIOUS_CHECKPOINT.into(), Value::from(previous));
        annotations.insert(ANN_FINAL_CHECKPOINT.into(), Value::from(last.to_string()));
    }
    Ok(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name_of(dv), "namespace": ns_of(dv), "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
                "name": name_of(dv), "uid": uid_of(dv), "controller": true,
                "blockOwnerDeletion": true}]},
        "spec": {"accessModes": access, "volumeMode": mode.as_str(),
            "resources": {"requests": {"storage": bytes.to_string()}},
            "storageClassName": storage["storageClassName"]},
    }))
}

/// import-controller.go `makeImporterPodSpec` / `makeImporterContainerSpec` /
/// `makeImporterVolumeSpec`, reduced to what a cluster admits and counts (labels, owner,
/// resources, volumes).
fn importer_pod(pvc: &PersistentVolumeClaim, a: &Annotations, name: &str, scratch: bool) -> Value {
    let block = pvc.spec.as_ref().and_then(|s| s.volume_mode.as_deref()) == Some("Block");
    let mut labels = Map::new();
    for (k, v) in pvc.metadata.labels.clone().unwrap_or_default() {
        labels.insert(k, Value::from(v));
    }
    labels.insert(CDI_LABEL.0.into(), Value::from(CDI_LABEL.1));
    labels.insert("cdi.kubevirt.io".into(), Value::from("importer"));
    labels.insert("prometheus.cdi.kubevirt.io".into(), Value::from("true"));
    let mut container = json!({
        "name": "importer", "image": IMPORTER_IMAGE, "args": ["-v=1"],
        "ports": [{"name": "metrics", "containerPort": 8443, "protocol": "TCP"}],
        "resources": {
            "requests": {"cpu": IMPORTER_REQUESTS.0, "memory": IMPORTER_REQUESTS.1},
            "limits": {"cpu": IMPORTER_LIMITS.0, "memory": IMPORTER_LIMITS.1}},
        "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true,
            "runAsUser": 107, "capabilities": {"drop": ["ALL"]}},
    });
    let mut mounts = Vec::new();
    if block {
        container["volumeDevices"] =
            json!([{"name": "cdi-data-vol", "devicePath": "/dev/cdi-block-volume"}]);
    } else {
        mounts.push(json!({"name": "cdi-data-vol", "mountPath": "/data"}));
    }
    let mut volumes = vec![json!({"name": "cdi-data-vol",
        "persistentVolumeClaim": {"claimName": name_of(pvc), "readOnly": false}})];
    if scratch {
        mounts.push(json!({"name": "cdi-scratch-vol", "mountPath": "/scratch"}));
        volumes.push(json!({"name": "cdi-scratch-vol",
            "persistentVolumeClaim": {"claimName": scratch_name(&name_of(pvc)), "readOnly": false}}));
    }
    if let Some(cm) = a.get(ANN_CERT_CONFIG_MAP).filter(|c| !c.is_empty()) {
        mounts.push(json!({"name": "cdi-cert-vol", "mountPath": "/certs"}));
        volumes.push(json!({"name": "cdi-cert-vol", "configMap": {"name": cm}}));
    }
    container["volumeMounts"] = Value::from(mounts);
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns_of(pvc), "labels": labels,
            "annotations": {ANN_CREATED_BY: "yes"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "name": name_of(pvc), "uid": uid_of(pvc), "blockOwnerDeletion": true,
                "controller": true}]},
        "spec": {"containers": [container], "volumes": volumes, "restartPolicy": "OnFailure",
            "enableServiceLinks": false,
            "securityContext": {"fsGroup": 107, "seccompProfile": {"type": "RuntimeDefault"}}},
    });
    if let Some(sa) = a.get(ANN_POD_SERVICE_ACCOUNT).filter(|s| !s.is_empty()) {
        pod["spec"]["serviceAccountName"] = Value::from(sa.clone());
    }
    pod
}

/// Whether a pod is a CDI importer pod (its PVC is its controller owner).
pub fn importer_owner(pod: &Pod) -> Option<String> {
    let name = pod.metadata.name.as_deref()?;
    if !name.starts_with("importer-") {
        return None;
    }
    pod.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.kind == "PersistentVolumeClaim")
        .map(|o| o.uid.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dv(checkpoints: Value, last: bool) -> DynamicObject {
        serde_json::from_value(
            json!({"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
            "metadata": {"name": "dv", "namespace": "ns", "uid": "u"},
            "spec": {"checkpoints": checkpoints, "finalCheckpoint": last}}),
        )
        .unwrap()
    }

    #[test]
    fn stages_move_through_the_checkpoints_and_end_done() {
        let one = dv(json!([{"current": "a", "previous": ""}]), false);
        let mut a = Annotations::new();
        let first = next_checkpoint(&a, &one).unwrap();
        set_checkpoint(&mut a, first);
        a.insert(ANN_POD_PHASE.into(), "Succeeded".into());
        a.insert(ANN_CURRENT_POD_ID.into(), "pod-a".into());
        multi_stage_succeeded(&mut a, &one);
        assert_eq!(a.get(&copied_key("a")).map(String::as_str), Some("pod-a"));
        assert_eq!(a.get(ANN_POD_PHASE).map(String::as_str), Some("Succeeded"));
        // Forklift adds the final checkpoint: the next stage starts.
        let two = dv(
            json!([{"current": "a", "previous": ""}, {"current": "b", "previous": "a"}]),
            true,
        );
        multi_stage_succeeded(&mut a, &two);
        assert_eq!(a.get(ANN_CURRENT_CHECKPOINT).map(String::as_str), Some("b"));
        assert_eq!(
            a.get(ANN_FINAL_CHECKPOINT).map(String::as_str),
            Some("true")
        );
        assert_eq!(a.get(ANN_POD_PHASE).map(String::as_str), Some("Unknown"));
        assert_eq!(import_pod_name("p", &a), "importer-p-checkpoint-b");
        a.insert(ANN_POD_PHASE.into(), "Succeeded".into());
        a.insert(ANN_CURRENT_POD_ID.into(), "pod-b".into());
        multi_stage_succeeded(&mut a, &two);
        assert!(a.contains_key(&copied_key("b")));
        multi_stage_succeeded(&mut a, &two);
        assert!(a.contains_key(ANN_MULTI_STAGE_DONE));
        assert!(!multi_stage_in_progress(&a));
    }
}
