//! Plays Forklift's volume populator controller for OvirtVolumePopulator (Forklift v2.12.5
//! `pkg/lib-volume-populator/populator-machinery/controller.go`, `syncPvc`): for a claim whose
//! dataSourceRef names an OvirtVolumePopulator, the populator pod `populate-<claim uid>` and the
//! prime claim `prime-<claim uid>` it writes to, progress on the CR while the pod runs, then the
//! prime claim's volume re-bound to the claim and the prime claim deleted.

use crate::events::{Involved, NORMAL, Recorder, WARNING};
use crate::objects::{Scope, Stores, by_name, has_labels, message};
use crate::retry::Keyed;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `controller.go` constants.
const POD_PREFIX: &str = "populate";
const PRIME_PREFIX: &str = "prime";
const REASON_POD_CREATION_ERROR: &str = "PopulatorCreationError";
const REASON_POD_CREATED: &str = "PopulatorCreated";
const REASON_POD_FAILED: &str = "PopulatorFailed";
const REASON_FINISHED: &str = "PopulatorFinished";
const REASON_PVC_CREATION_ERROR: &str = "PopulatorPVCCreationError";
const REASON_PROGRESS: &str = "PopulatorProgress";
const ANN_TRANSFER_NETWORK: &str = "k8s.v1.cni.cncf.io/networks";
const ANN_RECREATIONS: &str = "recreations";
const ANN_SERVICE_ACCOUNT: &str = "forklift.konveyor.io/serviceAccount";
/// `cmd/populator-controller/populator-controller.go`: prefix `forklift.konveyor.io`, so the
/// recorder's component is `forklift.konveyor.io-populator` and the PV annotation
/// `forklift.konveyor.io/populated-from`.
const COMPONENT: &str = "forklift.konveyor.io-populator";
const POPULATED_FROM: &str = "forklift.konveyor.io/populated-from";
const QEMU_GROUP: i64 = 107;

/// The populator pod's container resources: `pkg/settings/populator.go` defaults (restored on
/// the populator pods by Forklift v2.12.4, commit 334cebb86), overridable like the
/// ForkliftController's `populator_container_*` settings; an empty value leaves it out.
#[derive(Debug, Clone)]
pub struct PodResources {
    pub requests_cpu: String,
    pub requests_memory: String,
    pub limits_cpu: String,
    pub limits_memory: String,
    pub image: String,
}

impl PodResources {
    fn render(&self) -> Value {
        let list = |cpu: &str, memory: &str| {
            let mut m = serde_json::Map::new();
            if !cpu.is_empty() {
                m.insert("cpu".into(), Value::from(cpu));
            }
            if !memory.is_empty() {
                m.insert("memory".into(), Value::from(memory));
            }
            Value::Object(m)
        };
        json!({"requests": list(&self.requests_cpu, &self.requests_memory),
               "limits": list(&self.limits_cpu, &self.limits_memory)})
    }
}

pub struct Populator {
    client: Client,
    resources: PodResources,
    recorder: Recorder,
    retries: Keyed,
    /// Claims whose progress monitoring was announced (the PopulatorProgress Event).
    monitored: Mutex<HashSet<String>>,
    /// Last progress written per CR and when, to write only changes, every 5 s at most.
    progress_written: Mutex<BTreeMap<String, (i64, Instant)>>,
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

/// The OvirtVolumePopulator a claim names as its data source, if it names one.
pub fn populator_ref(pvc: &PersistentVolumeClaim) -> Option<String> {
    let reference = pvc.spec.as_ref()?.data_source_ref.as_ref()?;
    (reference.api_group.as_deref() == Some("forklift.konveyor.io")
        && reference.kind == "OvirtVolumePopulator"
        && !reference.name.is_empty())
    .then(|| reference.name.clone())
}

/// Whether the claim is bound to a volume.
fn bound(pvc: &PersistentVolumeClaim) -> bool {
    pvc.spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .is_some_and(|v| !v.is_empty())
}

/// The populator pod's name for a claim.
pub fn pod_name(pvc_uid: &str) -> String {
    format!("{POD_PREFIX}-{pvc_uid}")
}

/// The prime claim's name for a claim.
pub fn prime_name(pvc_uid: &str) -> String {
    format!("{PRIME_PREFIX}-{pvc_uid}")
}

fn owner(pvc: &PersistentVolumeClaim) -> Value {
    json!([{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": name_of(pvc), "uid": uid_of(pvc)}])
}

fn involved(pvc: &PersistentVolumeClaim) -> Involved {
    Involved::new(
        "v1",
        "PersistentVolumeClaim",
        &ns_of(pvc),
        &name_of(pvc),
        &uid_of(pvc),
    )
}

impl Populator {
    pub fn new(client: Client, resources: PodResources) -> Populator {
        Populator {
            recorder: Recorder::new(client.clone(), COMPONENT),
            client,
            resources,
            retries: Keyed::default(),
            monitored: Mutex::default(),
            progress_written: Mutex::default(),
        }
    }

    /// One pass of `syncPvc` over every populator claim in scope; `progress` gives the percent
    /// copied of a claim's disk (None when the simulation does not know the claim).
    pub async fn reconcile(
        &mut self,
        stores: &Stores,
        scope: &Scope,
        progress: &dyn Fn(&PersistentVolumeClaim) -> Option<i64>,
    ) {
        let pvcs = stores.pvcs.state();
        let claims = by_name(&pvcs);
        let pods = by_name(&stores.pods.state());
        let crs = by_name(&stores.populators.state());
        let work: Vec<_> = pvcs
            .iter()
            .filter(|pvc| {
                populator_ref(pvc).is_some()
                    && scope.contains(&ns_of(pvc.as_ref()))
                    && pvc.metadata.deletion_timestamp.is_none()
                    && self.retries.due(&uid_of(pvc.as_ref()))
            })
            .collect();
        let this = &*self;
        let results = futures::future::join_all(work.iter().map(|pvc| async {
            let ns = ns_of(pvc.as_ref());
            let uid = uid_of(pvc.as_ref());
            let cr_name = populator_ref(pvc).unwrap_or_default();
            let pod = pods.get(&(ns.clone(), pod_name(&uid))).cloned();
            let prime = claims.get(&(ns.clone(), prime_name(&uid))).cloned();
            match crs.get(&(ns, cr_name)).cloned() {
                Some(cr) => this.sync(stores, pvc, &cr, pod, prime, progress).await,
                // Upstream returns early without the CR (called again once it exists). After the
                // binding it is woken at once by the claim's update and deletes the prime claim
                // long before Forklift deletes the CR (after the VM is made); polling, this may
                // come later, so the clean-up after the binding does not wait for the CR.
                None if bound(pvc) => this.finish(pvc, prime).await,
                None => Ok(false),
            }
        }))
        .await;
        for (pvc, result) in work.iter().zip(results) {
            let uid = uid_of(pvc.as_ref());
            match result {
                Ok(true) => self.retries.pause(&uid, Duration::from_millis(200)),
                Ok(false) => self.retries.succeeded(&uid),
                Err(e) => {
                    self.retries.failed(&uid);
                    tracing::info!(
                        "populator for {}/{}: {e}",
                        ns_of(pvc.as_ref()),
                        name_of(pvc.as_ref())
                    );
                }
            }
        }
    }

    /// `syncPvc` from the point the claim, its CR and its class are known. Ok(true): something
    /// was written (wait for the watch); Ok(false): nothing to do now.
    async fn sync(
        &self,
        stores: &Stores,
        pvc: &PersistentVolumeClaim,
        cr: &DynamicObject,
        pod: Option<Arc<Pod>>,
        prime: Option<Arc<PersistentVolumeClaim>>,
        progress: &dyn Fn(&PersistentVolumeClaim) -> Option<i64>,
    ) -> Result<bool, String> {
        if !bound(pvc) {
            let Some(pod) = pod else {
                return self.start(pvc, cr, prime.is_none()).await;
            };
            let phase = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            let has_ip = pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.as_deref())
                .is_some_and(|ip| !ip.is_empty());
            if has_ip && phase == "Running" {
                self.monitor(pvc, &pod, cr, progress(pvc)).await;
            }
            if phase != "Succeeded" {
                if phase == "Failed" {
                    return self.retry_failed(pvc, &pod).await;
                }
                return Ok(false);
            }
            if phase == "Succeeded"
                && let Some(p) = progress(pvc)
            {
                self.write_progress(cr, p, true).await;
            }
            let Some(prime) = &prime else {
                return Err("Failed to find PVC for populator pod".into());
            };
            return self.rebind(stores, pvc, prime, cr).await;
        }
        self.finish(pvc, prime).await
    }

    /// Once the PV binder has bound the claim and the prime claim is Lost: the Normal Event
    /// `PopulatorFinished` and the prime claim deleted.
    async fn finish(
        &self,
        pvc: &PersistentVolumeClaim,
        prime: Option<Arc<PersistentVolumeClaim>>,
    ) -> Result<bool, String> {
        let Some(prime) = prime.filter(|p| p.metadata.deletion_timestamp.is_none()) else {
            return Ok(false);
        };
        if prime.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Lost") {
            return Ok(false);
        }
        self.recorder
            .record(
                &involved(pvc),
                NORMAL,
                REASON_FINISHED,
                "Populator finished",
            )
            .await;
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns_of(pvc));
        api.delete(&name_of(prime.as_ref()), &DeleteParams::default())
            .await
            .map_err(|e| message(&e))?;
        self.monitored.lock().unwrap().remove(&uid_of(pvc));
        Ok(true)
    }

    /// No pod yet: the pod first, then the prime claim (`syncPvc`'s order). A refusal of either
    /// is a Warning Event on the claim with the API server's message, and a retry with backoff;
    /// as upstream, the retry finds the pod and does not try the prime claim again.
    async fn start(
        &self,
        pvc: &PersistentVolumeClaim,
        cr: &DynamicObject,
        need_prime: bool,
    ) -> Result<bool, String> {
        let ns = ns_of(pvc);
        let pod = self.pod(pvc, cr);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let pod: Pod = serde_json::from_value(pod).map_err(|e| e.to_string())?;
        if let Err(e) = pods.create(&PostParams::default(), &pod).await {
            let text = format!("Failed to create populator pod: {}", message(&e));
            self.recorder
                .record(&involved(pvc), WARNING, REASON_POD_CREATION_ERROR, &text)
                .await;
            return Err(text);
        }
        self.recorder
            .record(
                &involved(pvc),
                NORMAL,
                REASON_POD_CREATED,
                "Populator started",
            )
            .await;
        if need_prime {
            let prime: PersistentVolumeClaim =
                serde_json::from_value(self.prime(pvc)).map_err(|e| e.to_string())?;
            let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
            let mut created = api.create(&PostParams::default(), &prime).await;
            // kube-apiserver answers 409 "Operation cannot be fulfilled on resourcequotas" when
            // its quota admission loses an update race on the namespace's ResourceQuota: a
            // conflict, not a refusal. client-go's create would meet the same answer, and upstream
            // would then never create the prime claim (its pod exists) and the VM would wait for
            // good; on two busy cores the race is frequent enough to hang a test now and then, so
            // the test bed tries the create again on that conflict alone (a known deviation).
            for _ in 0..5 {
                match &created {
                    Err(kube::Error::Api(s))
                        if s.code == 409 && s.message.contains("resourcequotas") =>
                    {
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        created = api.create(&PostParams::default(), &prime).await;
                    }
                    _ => break,
                }
            }
            if let Err(e) = created {
                let text = format!("Failed to create populator PVC: {}", message(&e));
                self.recorder
                    .record(&involved(pvc), WARNING, REASON_PVC_CREATION_ERROR, &text)
                    .await;
                return Err(text);
            }
        }
        Ok(true)
    }

    /// `makePopulatePodSpec` plus what `syncPvc` adds (args, image, resources, mounts, labels,
    /// owner, transfer network, service account).
    fn pod(&self, pvc: &PersistentVolumeClaim, cr: &DynamicObject) -> Value {
        let uid = uid_of(pvc);
        let spec = &cr.data["spec"];
        let secret = spec["engineSecretName"].as_str().unwrap_or_default();
        let raw_block = pvc.spec.as_ref().and_then(|s| s.volume_mode.as_deref()) == Some("Block");
        let size = crate::objects::pvc_request_bytes(pvc);
        let args = vec![
            format!(
                "--volume-path={}",
                if raw_block {
                    "/dev/block"
                } else {
                    "/mnt/disk.img"
                }
            ),
            format!("--secret-name={secret}"),
            format!("--disk-id={}", spec["diskId"].as_str().unwrap_or_default()),
            format!(
                "--engine-url={}",
                spec["engineUrl"].as_str().unwrap_or_default()
            ),
            format!(
                "--cr-name={}",
                cr.metadata.name.as_deref().unwrap_or_default()
            ),
            format!(
                "--cr-namespace={}",
                cr.metadata.namespace.as_deref().unwrap_or_default()
            ),
            format!("--pvc-size={size}"),
            format!("--owner-uid={uid}"),
        ];
        let mut labels = serde_json::Map::new();
        labels.insert("pvcName".into(), Value::from(name_of(pvc)));
        let cr_labels = cr.metadata.labels.clone().unwrap_or_default();
        for key in ["migration", "vmID", "plan"] {
            if let Some(v) = cr_labels.get(key).filter(|v| !v.is_empty()) {
                labels.insert(key.into(), Value::from(v.clone()));
            }
        }
        let mut annotations = serde_json::Map::new();
        if let Some(net) = spec["transferNetwork"].as_object() {
            let part = |k: &str| {
                net.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            annotations.insert(
                ANN_TRANSFER_NETWORK.into(),
                Value::from(format!("{}/{}", part("namespace"), part("name"))),
            );
        }
        let mut container = json!({
            "name": "populate", "image": self.resources.image, "args": args,
            "ports": [{"name": "metrics", "containerPort": 8443}],
            "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true,
                "runAsUser": QEMU_GROUP, "capabilities": {"drop": ["ALL"]}},
            "envFrom": [{"secretRef": {"name": secret}}],
            "env": [{"name": "cacert", "valueFrom": {"secretKeyRef": {"name": secret, "key": "ca.crt", "optional": true}}}],
            "resources": self.resources.render(),
        });
        if raw_block {
            container["volumeDevices"] = json!([{"name": "target", "devicePath": "/dev/block"}]);
        } else {
            container["volumeMounts"] = json!([{"name": "target", "mountPath": "/mnt/"}]);
        }
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name(&uid), "namespace": ns_of(pvc), "labels": labels,
                "annotations": annotations, "ownerReferences": owner(pvc)},
            "spec": {
                "containers": [container],
                "securityContext": {"fsGroup": QEMU_GROUP, "seccompProfile": {"type": "RuntimeDefault"}},
                "restartPolicy": "Never",
                "volumes": [{"name": "target", "persistentVolumeClaim": {"claimName": prime_name(&uid)}}],
            },
        });
        if let Some(sa) = pvc
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANN_SERVICE_ACCOUNT))
            .filter(|s| !s.is_empty())
        {
            pod["spec"]["serviceAccountName"] = Value::from(sa.clone());
        }
        pod
    }

    /// The prime claim: the claim's access modes, resources, class and volume mode.
    fn prime(&self, pvc: &PersistentVolumeClaim) -> Value {
        let spec = pvc.spec.clone().unwrap_or_default();
        let mut labels = serde_json::Map::new();
        for key in ["migration", "plan", "vmID"] {
            if let Some(v) = pvc.metadata.labels.as_ref().and_then(|l| l.get(key)) {
                labels.insert(key.into(), Value::from(v.clone()));
            }
        }
        json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": prime_name(&uid_of(pvc)), "namespace": ns_of(pvc),
                "labels": labels, "ownerReferences": owner(pvc)},
            "spec": {"accessModes": spec.access_modes, "resources": spec.resources,
                "storageClassName": spec.storage_class_name, "volumeMode": spec.volume_mode},
        })
    }

    /// While the pod runs: `updateProgress` writes the percent copied to the CR's
    /// status.progress (a plain update: the CRD has no status subresource), every 5 seconds as
    /// the monitoring loop of `syncPvc` does.
    async fn monitor(
        &self,
        pvc: &PersistentVolumeClaim,
        pod: &Pod,
        cr: &DynamicObject,
        percent: Option<i64>,
    ) {
        let uid = uid_of(pvc);
        let first = self.monitored.lock().unwrap().insert(uid);
        if first {
            let pod_involved = Involved::new("v1", "Pod", &ns_of(pod), &name_of(pod), &uid_of(pod));
            let text = format!("Starting to monitor progress for PVC {}", name_of(pvc));
            self.recorder
                .record(&pod_involved, WARNING, REASON_PROGRESS, &text)
                .await;
        }
        if let Some(p) = percent {
            self.write_progress(cr, p, false).await;
        }
    }

    /// Writes `percent` unless it is there already or (`last` false) the last write was under
    /// 5 seconds ago.
    async fn write_progress(&self, cr: &DynamicObject, percent: i64, last: bool) {
        let key = uid_of(cr);
        let current = cr.data["status"]["progress"]
            .as_str()
            .and_then(|p| p.parse::<i64>().ok());
        let written = self.progress_written.lock().unwrap().get(&key).copied();
        let recent = written.is_some_and(|(_, at)| at.elapsed() < Duration::from_secs(5));
        if current == Some(percent) || written.map(|w| w.0) == Some(percent) || (recent && !last) {
            return;
        }
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            cr.metadata.namespace.as_deref().unwrap_or_default(),
            &crate::objects::ovirt_populator(),
        );
        let patch = json!({"status": {"progress": percent.to_string()}});
        match api
            .patch(
                cr.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {
                self.progress_written
                    .lock()
                    .unwrap()
                    .insert(key, (percent, Instant::now()));
            }
            Err(e) => tracing::debug!("OvirtVolumePopulator progress: {}", message(&e)),
        }
    }

    /// A failed pod is deleted and made again, three times at most (`retryFailedPopulator`,
    /// counting in the claim's `recreations` annotation); then a Warning Event and nothing more.
    async fn retry_failed(&self, pvc: &PersistentVolumeClaim, pod: &Pod) -> Result<bool, String> {
        let count: u32 = pvc
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANN_RECREATIONS))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if count >= 3 {
            let text = format!(
                "Populator failed after few (3) attempts: Please check the logs of the populator pod, {}/{}",
                ns_of(pod),
                name_of(pod)
            );
            self.recorder
                .record(&involved(pvc), WARNING, REASON_POD_FAILED, &text)
                .await;
            return Ok(false);
        }
        let ns = ns_of(pvc);
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        let patch =
            json!({"metadata": {"annotations": {ANN_RECREATIONS: (count + 1).to_string()}}});
        claims
            .patch(
                &name_of(pvc),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(|e| message(&e))?;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        pods.delete(&name_of(pod), &DeleteParams::default())
            .await
            .map_err(|e| message(&e))?;
        Ok(true)
    }

    /// The pod succeeded: the prime claim's volume gets the claim as its claimRef (a strategic
    /// merge patch with the populated-from annotation); the PV binder does the rest.
    async fn rebind(
        &self,
        stores: &Stores,
        pvc: &PersistentVolumeClaim,
        prime: &PersistentVolumeClaim,
        cr: &DynamicObject,
    ) -> Result<bool, String> {
        let Some(volume) = prime
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .filter(|v| !v.is_empty())
        else {
            return Ok(false);
        };
        let Some(pv) = stores
            .pvs
            .state()
            .into_iter()
            .find(|p| p.metadata.name.as_deref() == Some(&volume))
        else {
            return Ok(false);
        };
        let claim = pv
            .spec
            .as_ref()
            .and_then(|s| s.claim_ref.clone())
            .unwrap_or_default();
        if claim.name.as_deref() == Some(&name_of(pvc))
            && claim.namespace.as_deref() == Some(&ns_of(pvc))
            && claim.uid.as_deref() == Some(&uid_of(pvc))
        {
            return Ok(false);
        }
        let patch = json!({
            "metadata": {"name": volume, "annotations": {POPULATED_FROM: format!("{}/{}", ns_of(pvc),
                cr.metadata.name.as_deref().unwrap_or_default())}},
            "spec": {"claimRef": {"namespace": ns_of(pvc), "name": name_of(pvc), "uid": uid_of(pvc),
                "resourceVersion": pvc.metadata.resource_version}},
        });
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        api.patch(&volume, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .map_err(|e| message(&e))?;
        Ok(true)
    }
}

/// Whether a pod is a populator pod of the claim with these labels (Forklift's
/// `getPopulatorPods`: prefix `populate-`, labels migration and vmID).
pub fn is_populator_pod(pod: &Pod, migration: &str, vm_id: &str) -> bool {
    pod.metadata
        .name
        .as_deref()
        .is_some_and(|n| n.starts_with("populate-"))
        && has_labels(
            pod.metadata.labels.as_ref(),
            &[("migration", migration), ("vmID", vm_id)],
        )
}
