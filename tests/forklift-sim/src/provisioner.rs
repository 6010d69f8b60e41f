//! Plays the storage's external provisioners (a CSI driver's csi-provisioner per StorageClass):
//! a Pending claim of a known class gets a PersistentVolume pre-bound to it (claimRef), which
//! kube-controller-manager's PV binder then binds; each class draws on a capacity pool
//! (`--storage-capacity`), and a claim the pool cannot hold stays Pending with a Warning
//! `ProvisioningFailed` Event, as csi-provisioner records when its driver answers
//! ResourceExhausted. Volumes of reclaim policy Delete are deleted once Released.

use crate::events::{Involved, Recorder, WARNING};
use crate::objects::{Scope, Stores, message, pvc_request_bytes, quantity_bytes};
use crate::retry::Keyed;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

/// Marks the PersistentVolumes forklift-sim provisioned (only those are counted and deleted).
pub const PROVISIONED_ANNOTATION: &str = "forklift-sim.liftkit.io/provisioned";
/// Kubernetes' annotation naming the provisioner of a dynamically provisioned volume.
const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// The in-tree marker of a class nothing provisions.
const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";

pub struct Provisioner {
    client: Client,
    /// Bytes per class; a class not listed is unlimited.
    capacity: HashMap<String, u64>,
    recorders: HashMap<String, Recorder>,
    retries: Keyed,
}

fn name_of<K: kube::Resource>(obj: &K) -> String {
    obj.meta().name.clone().unwrap_or_default()
}

fn uid_of<K: kube::Resource>(obj: &K) -> String {
    obj.meta().uid.clone().unwrap_or_default()
}

fn ours(pv: &PersistentVolume) -> bool {
    pv.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(PROVISIONED_ANNOTATION))
}

fn pv_capacity(pv: &PersistentVolume) -> u64 {
    pv.spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .and_then(|q| quantity_bytes(&q.0))
        .unwrap_or(0)
}

fn pv_class(pv: &PersistentVolume) -> String {
    pv.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default()
}

fn pv_claim_namespace(pv: &PersistentVolume) -> String {
    pv.spec
        .as_ref()
        .and_then(|s| s.claim_ref.as_ref())
        .and_then(|c| c.namespace.clone())
        .unwrap_or_default()
}

/// Whether the provisioner of `class` would handle `pvc`: Pending, not bound to a volume, not
/// being deleted, and with no data source (a populator's claim waits for its populator).
fn wants_volume(pvc: &PersistentVolumeClaim) -> bool {
    let spec = pvc.spec.as_ref();
    let phase = pvc.status.as_ref().and_then(|s| s.phase.as_deref());
    pvc.metadata.deletion_timestamp.is_none()
        && matches!(phase, None | Some("Pending"))
        && spec
            .and_then(|s| s.volume_name.as_deref())
            .is_none_or(str::is_empty)
        && spec.is_some_and(|s| s.data_source_ref.is_none() && s.data_source.is_none())
}

impl Provisioner {
    pub fn new(client: Client, capacity: HashMap<String, u64>) -> Provisioner {
        Provisioner {
            client,
            capacity,
            recorders: HashMap::new(),
            retries: Keyed::default(),
        }
    }

    pub async fn reconcile(&mut self, stores: &Stores, scope: &Scope) {
        self.delete_released(stores, scope).await;
        let mut used: HashMap<String, u64> = HashMap::new();
        let mut existing = std::collections::HashSet::new();
        for pv in stores.pvs.state() {
            existing.insert(name_of(pv.as_ref()));
            if ours(&pv) && scope.contains(&pv_claim_namespace(&pv)) {
                *used.entry(pv_class(&pv)).or_default() += pv_capacity(&pv);
            }
        }
        let classes = stores.storage_classes.state();
        let mut claims: Vec<_> = stores
            .pvcs
            .state()
            .into_iter()
            .filter(|c| scope.contains(c.metadata.namespace.as_deref().unwrap_or_default()))
            .filter(|c| wants_volume(c))
            .collect();
        // Oldest first, as a work queue fed by a list would mostly go.
        claims.sort_by_key(|c| c.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let mut to_provision = Vec::new();
        for pvc in claims {
            let uid = uid_of(pvc.as_ref());
            let class_name = pvc
                .spec
                .as_ref()
                .and_then(|s| s.storage_class_name.clone())
                .unwrap_or_default();
            let Some(class) = classes
                .iter()
                .find(|c| name_of(c.as_ref()) == class_name)
                .filter(|c| c.provisioner != NO_PROVISIONER)
            else {
                continue;
            };
            if existing.contains(&format!("pvc-{uid}")) || !self.retries.due(&uid) {
                continue;
            }
            let request = pvc_request_bytes(&pvc);
            let pool_used = used.get(&class_name).copied().unwrap_or(0);
            if let Some(&pool) = self.capacity.get(&class_name)
                && pool_used.saturating_add(request) > pool
            {
                self.refuse(&pvc, class, request, pool_used, pool).await;
                continue;
            }
            *used.entry(class_name).or_default() += request;
            to_provision.push((pvc.clone(), class.clone(), request));
        }
        // The volumes of different claims are made side by side, as the driver's workers do.
        let this = &*self;
        let results = futures::future::join_all(
            to_provision
                .iter()
                .map(|(pvc, class, bytes)| this.provision(pvc, class, *bytes)),
        )
        .await;
        for ((pvc, _, _), result) in to_provision.iter().zip(results) {
            let uid = uid_of(pvc.as_ref());
            match result {
                // The watch shows the new volume soon; until then, leave the claim alone.
                Ok(()) => self.retries.pause(&uid, Duration::from_secs(2)),
                Err(e) => {
                    let delay = self.retries.failed(&uid);
                    tracing::info!(
                        "PersistentVolume pvc-{uid}: {}; retrying in {} ms",
                        message(&e),
                        delay.as_millis()
                    );
                }
            }
        }
    }

    /// csi-provisioner's failure Event when the driver has no room (gRPC ResourceExhausted),
    /// retried with backoff like its work queue.
    async fn refuse(
        &mut self,
        pvc: &PersistentVolumeClaim,
        class: &StorageClass,
        request: u64,
        used: u64,
        pool: u64,
    ) {
        let uid = uid_of(pvc);
        let free = pool.saturating_sub(used);
        let text = format!(
            "failed to provision volume with StorageClass \"{}\": rpc error: code = ResourceExhausted desc = insufficient capacity in storage class \"{}\": requested {request} bytes, {free} of {pool} bytes free (short by {} bytes)",
            name_of(class),
            name_of(class),
            request - free
        );
        let involved = Involved::new(
            "v1",
            "PersistentVolumeClaim",
            pvc.metadata.namespace.as_deref().unwrap_or_default(),
            &name_of(pvc),
            &uid,
        );
        self.recorder(&class.provisioner)
            .record(&involved, WARNING, "ProvisioningFailed", &text)
            .await;
        self.retries.failed(&uid);
    }

    fn recorder(&mut self, provisioner: &str) -> &mut Recorder {
        let client = self.client.clone();
        self.recorders
            .entry(provisioner.to_string())
            .or_insert_with(|| Recorder::new(client, &format!("{provisioner}_forklift-sim")))
    }

    /// Creates the volume, pre-bound to the claim (the PV binder completes the binding).
    async fn provision(
        &self,
        pvc: &PersistentVolumeClaim,
        class: &StorageClass,
        bytes: u64,
    ) -> Result<(), kube::Error> {
        let uid = uid_of(pvc);
        let spec = pvc.spec.clone().unwrap_or_default();
        let driver = if class.provisioner.contains('/') {
            "forklift-sim.liftkit.io".to_string()
        } else {
            class.provisioner.clone()
        };
        let pv = json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {
                "name": format!("pvc-{uid}"),
                "annotations": {PROVISIONED_BY: class.provisioner, PROVISIONED_ANNOTATION: "true"},
            },
            "spec": {
                "capacity": {"storage": bytes.to_string()},
                "accessModes": spec.access_modes.unwrap_or_default(),
                "volumeMode": spec.volume_mode.unwrap_or_else(|| "Filesystem".into()),
                "storageClassName": name_of(class),
                "persistentVolumeReclaimPolicy": class.reclaim_policy.clone().unwrap_or_else(|| "Delete".into()),
                "claimRef": {
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "namespace": pvc.metadata.namespace, "name": name_of(pvc), "uid": uid,
                    "resourceVersion": pvc.metadata.resource_version,
                },
                "csi": {"driver": driver, "volumeHandle": format!("forklift-sim-{uid}")},
            },
        });
        let pv: PersistentVolume = serde_json::from_value(pv).map_err(kube::Error::SerdeError)?;
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        api.create(&PostParams::default(), &pv).await.map(|_| ())
    }

    /// Reclaim policy Delete: the driver deletes the volume and the provisioner its PV once the
    /// PV binder has marked it Released (its claim is gone); the pool gets the space back.
    async fn delete_released(&mut self, stores: &Stores, scope: &Scope) {
        for pv in stores.pvs.state() {
            let spec = pv.spec.as_ref();
            let released = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
            let delete =
                spec.and_then(|s| s.persistent_volume_reclaim_policy.as_deref()) == Some("Delete");
            let candidate = ours(&pv)
                && released
                && delete
                && pv.metadata.deletion_timestamp.is_none()
                && scope.contains(&pv_claim_namespace(&pv));
            if !candidate {
                continue;
            }
            let name = name_of(pv.as_ref());
            if !self.retries.due(&name) {
                continue;
            }
            let api: Api<PersistentVolume> = Api::all(self.client.clone());
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => self.retries.pause(&name, Duration::from_secs(2)),
                Err(e) => {
                    self.retries.failed(&name);
                    tracing::info!("PersistentVolume {name}: cannot delete it: {}", message(&e));
                }
            }
        }
    }
}
