//! What Forklift's plan controller creates for a VM on the DataVolume path (Forklift v2.12.5: a
//! warm plan, or a destination Provider that is not the host cluster; `adapter/ovirt/builder.go`
//! `SupportsVolumePopulators` is false): the CDI transfer Secret, the CA ConfigMap and one CDI
//! DataVolume per image disk, the checkpoints of a warm plan, and their cleanup.

use crate::footprint::{ANN_DISK_SOURCE, Footprint, StepError, Target};
use crate::objects::{self, message};
use crate::world::WorldVm;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// `pkg/controller/plan/kubevirt.go` labels and annotations of the DataVolume path.
const LABEL_DV: &str = "isDV";
const ANN_DELETE_AFTER_COMPLETION: &str = "cdi.kubevirt.io/storage.deleteAfterCompletion";
const ANN_CDI_POD_SERVICE_ACCOUNT: &str = "cdi.kubevirt.io/storage.pod.serviceAccountName";
/// `pkg/controller/plan/adapter/base/doc.go`.
const ANN_USE_POPULATOR: &str = "cdi.kubevirt.io/storage.usePopulator";
const ANN_BIND_IMMEDIATE: &str = "cdi.kubevirt.io/storage.bind.immediate.requested";

/// One checkpoint of a warm migration, per disk: the disk's snapshot now and at the last precopy.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoints {
    /// VM snapshot ids, oldest first (Forklift's `vm.Warm.Precopies[].Snapshot`).
    pub snapshots: Vec<String>,
    pub final_checkpoint: bool,
}

/// A made-up oVirt id (8-4-4-4-12 hex) from `parts`: forklift-sim asks no engine for snapshots,
/// so their ids are derived, stable across restarts.
pub fn made_up_id(parts: &[&str]) -> String {
    let hash = |seed: u64| {
        parts.iter().fold(seed, |h, p| {
            p.bytes()
                .chain([0u8])
                .fold(h, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
        })
    };
    let (a, b) = (hash(0xcbf29ce484222325), hash(0x84222325cbf29ce4));
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Forklift v2.12.5 `adapter/ovirt/client.go` `SetCheckpoints` with `getDiskSnapshot`: a
/// disk's checkpoints (current, previous) for the VM snapshots so far.
pub fn disk_checkpoints(disk_id: &str, snapshots: &[String]) -> Vec<Value> {
    let disk_snapshot = |s: &String| made_up_id(&[disk_id, s]);
    snapshots
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let previous = if i == 0 {
                String::new()
            } else {
                disk_snapshot(&snapshots[i - 1])
            };
            json!({"current": disk_snapshot(s), "previous": previous})
        })
        .collect()
}

/// A byte count as `resource.NewQuantity(bytes, resource.BinarySI)` renders it: the largest
/// binary suffix that divides it, else plain bytes.
pub fn binary_si(bytes: u64) -> String {
    const SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    if bytes == 0 {
        return "0".into();
    }
    let mut value = bytes;
    let mut exp = 0;
    while exp < 6 && value.is_multiple_of(1024) {
        value /= 1024;
        exp += 1;
    }
    format!("{value}{}", SUFFIXES[exp])
}

impl Footprint {
    /// `KubeVirt.DataVolumes` (`ensureSecret` with CDI's keys, `ensureConfigMap`, `dataVolumes`
    /// → `Builder.DataVolumes`), then for a warm plan `SetCheckpoints`, then `EnsureDataVolumes`,
    /// as migration.go's CreateDataVolumes phase calls them.
    pub async fn data_volumes(
        &self,
        t: &Target,
        vm: &WorldVm,
        checkpoints: Option<&Checkpoints>,
    ) -> Result<(), StepError> {
        let secret = self
            .ensure_secret(t, (LABEL_DV, "true"), cdi_secret_data(t))
            .await?;
        let config_map = self.ensure_config_map(t).await?;
        let wanted = build_data_volumes(t, vm, &secret, &config_map, checkpoints);
        // `dataVolumes` ends with `createLunDisks` (crate::lun), before `EnsureDataVolumes`.
        self.lun_disks(t, vm).await?;
        self.ensure_data_volumes(t, wanted).await
    }

    /// `ensureConfigMap` → `configMap` with the oVirt `Builder.ConfigMap`: the engine's CA as
    /// `ca.pem` from the provider Secret's `ca.crt` (or legacy `cacert`). Without one Forklift
    /// fetches it from the engine (`fetchOVirtCACert`); forklift-sim reaches no engine and leaves
    /// the ConfigMap empty, as Forklift does when that fetch fails.
    async fn ensure_config_map(&self, t: &Target) -> Result<String, StepError> {
        let labels = t.vm_labels();
        let api = self.api::<ConfigMap>(&t.namespace);
        let list = api
            .list(&ListParams::default().labels(&Target::selector_of(&labels)))
            .await?;
        if let Some(found) = list.items.first() {
            return Ok(found.metadata.name.clone().unwrap_or_default());
        }
        let mut binary = serde_json::Map::new();
        if let Some(ca) = ["ca.crt", "cacert"]
            .iter()
            .find_map(|k| t.provider_secret.get(*k).filter(|v| !v.0.is_empty()))
        {
            binary.insert(
                "ca.pem".into(),
                serde_json::to_value(ca).unwrap_or_default(),
            );
        }
        let body: ConfigMap = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"generateName": format!("{}-{}-", t.plan_name, t.vm_id),
                "namespace": t.namespace, "labels": Target::label_map(&labels)},
            "binaryData": binary,
        }))
        .map_err(|e| StepError::Refused(e.to_string()))?;
        let made = api.create(&PostParams::default(), &body).await?;
        Ok(made.metadata.name.unwrap_or_default())
    }

    /// `EnsureDataVolumes`: creates each DataVolume whose disk (`ResolveDataVolumeIdentifier`:
    /// the disk-source annotation) none of the VM's DataVolumes of this migration holds.
    async fn ensure_data_volumes(&self, t: &Target, wanted: Vec<Value>) -> Result<(), StepError> {
        let api = self.dynamic(&t.namespace, &objects::data_volume());
        let existing = api
            .list(&ListParams::default().labels(&Target::selector_of(&t.vm_labels())))
            .await?;
        let disk_of =
            |annotations: &Value| annotations[ANN_DISK_SOURCE].as_str().map(str::to_string);
        for dv in wanted {
            let disk = disk_of(&dv["metadata"]["annotations"]);
            let exists = existing.items.iter().any(|item| {
                let held = item
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(ANN_DISK_SOURCE))
                    .cloned();
                held == disk
            });
            if exists {
                continue;
            }
            let body: DynamicObject =
                serde_json::from_value(dv).map_err(|e| StepError::Refused(e.to_string()))?;
            api.create(&PostParams::default(), &body).await?;
        }
        Ok(())
    }

    /// migration.go `setDataVolumeCheckpoints` (phases AddCheckpoint, AddFinalCheckpoint): the
    /// VM's DataVolumes (`getDVs`) get the checkpoints of every precopy so far; `Ok(false)` when
    /// there are none yet to update.
    pub async fn set_checkpoints(
        &self,
        t: &Target,
        checkpoints: &Checkpoints,
    ) -> Result<bool, StepError> {
        let api = self.dynamic(&t.namespace, &objects::data_volume());
        let list = api
            .list(&ListParams::default().labels(&Target::selector_of(&all_but_migration(t))))
            .await?;
        for dv in &list.items {
            let disk = dv.data["spec"]["source"]["imageio"]["diskId"]
                .as_str()
                .unwrap_or_default();
            let patch = json!({"spec": {
                "checkpoints": disk_checkpoints(disk, &checkpoints.snapshots),
                "finalCheckpoint": checkpoints.final_checkpoint,
            }});
            api.patch(
                dv.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        }
        Ok(!list.items.is_empty())
    }

    /// CreateVM's `DeleteDataVolumes` and `deleteImporterPods` (after `EnsureVM` made the
    /// VirtualMachine the PVCs' only owner, so they stay).
    pub async fn delete_data_volumes(&self, t: &Target) {
        let api = self.dynamic(&t.namespace, &objects::data_volume());
        let sel = Target::selector_of(&all_but_migration(t));
        if let Ok(list) = api.list(&ListParams::default().labels(&sel)).await {
            for dv in list.items {
                let name = dv.metadata.name.clone().unwrap_or_default();
                if let Err(e) = api.delete(&name, &DeleteParams::default()).await {
                    tracing::debug!("DataVolume {}/{name}: {}", t.namespace, message(&e));
                }
            }
        }
        self.delete_importer_pods(t).await;
    }

    /// `deleteImporterPods` → `DeleteImporterPods`: pods labelled app=containerized-data-importer
    /// whose name holds `importer-<pvc>` for a disk PVC of the VM (`getPVCs`).
    async fn delete_importer_pods(&self, t: &Target) {
        let Ok(pvcs) = self.target_pvcs(t).await else {
            return;
        };
        let names: Vec<String> = pvcs
            .iter()
            .filter_map(|p| p.metadata.name.as_ref().map(|n| format!("importer-{n}")))
            .collect();
        self.delete_all::<Pod>(t, "app=containerized-data-importer", |pod: &Pod| {
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            names.iter().any(|n| name.contains(n.as_str()))
        })
        .await;
    }

    /// `Migration.cleanup` for the DataVolume path: importer pods and ConfigMaps always (Secrets
    /// go in `cleanup`); for a VM that did not succeed (`deleteVmOnFailMigration`, true by
    /// default) also `DeletePopulatedPVCs` (its disk PVCs of this migration) and
    /// `DeleteDataVolumes`.
    pub async fn cleanup_data_volumes(&self, t: &Target, succeeded: bool) {
        self.delete_importer_pods(t).await;
        if !succeeded {
            if let Ok(pvcs) = self.target_pvcs(t).await {
                let claims =
                    self.api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(&t.namespace);
                for pvc in pvcs {
                    let name = pvc.metadata.name.clone().unwrap_or_default();
                    let _ = claims.delete(&name, &DeleteParams::default()).await;
                }
            }
            self.delete_data_volumes(t).await;
        }
        let sel = Target::selector_of(&all_but_migration(t));
        self.delete_all::<ConfigMap>(t, &sel, |_| true).await;
    }
}

/// `vmAllButMigrationLabels`.
fn all_but_migration(t: &Target) -> Vec<(&'static str, String)> {
    t.vm_labels()
        .into_iter()
        .filter(|(k, _)| *k != "migration")
        .collect()
}

/// The oVirt `Builder.Secret`: the engine user and password under CDI's keys, as stringData.
fn cdi_secret_data(t: &Target) -> Value {
    let text = |key: &str| {
        t.provider_secret
            .get(key)
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
            .unwrap_or_default()
    };
    json!({"stringData": {"accessKeyId": text("user"), "secretKey": text("password")}})
}

/// kubevirt.go `dataVolumes`: the DataVolume template's annotations.
fn template_annotations(t: &Target) -> serde_json::Map<String, Value> {
    let mut annotations: serde_json::Map<String, Value> = t
        .vm_labels()
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::from(v)))
        .collect();
    if t.warm {
        // Warm and not a populator (storage offload) copy: CDI's populators disabled.
        annotations.insert(ANN_USE_POPULATOR.into(), Value::from("false"));
    }
    if t.warm || !t.destination_host {
        annotations.insert(ANN_BIND_IMMEDIATE.into(), Value::from("true"));
    }
    if let Some(sa) = &t.service_account {
        annotations.insert(ANN_CDI_POD_SERVICE_ACCOUNT.into(), Value::from(sa.clone()));
    }
    annotations.insert(ANN_DELETE_AFTER_COMPLETION.into(), Value::from("false"));
    annotations
}

/// kubevirt.go `dataVolumes` (template: generateName `<plan>-<vm id>-`, labels `vmLabels`) with
/// the oVirt `Builder.DataVolumes`: per StorageMap pair, per image disk of its storage domain, an
/// imageio source and a `spec.storage` request of max(provisioned, actual) bytes (BinarySI), the
/// class, and the access and volume modes only when the StorageMap gives them; then the warm
/// checkpoints (`SetCheckpoints`). The transfer network annotation is left out.
fn build_data_volumes(
    t: &Target,
    vm: &WorldVm,
    secret: &str,
    config_map: &str,
    checkpoints: Option<&Checkpoints>,
) -> Vec<Value> {
    let annotations = template_annotations(t);
    let mut dvs = Vec::new();
    for pair in &t.storage_pairs {
        for disk in vm
            .copied_disks()
            .filter(|d| d.storage_domain.as_deref() == Some(pair.storage_domain.as_str()))
        {
            let size =
                crate::sizing::datavolume_request_bytes(disk.provisioned_bytes, disk.actual_bytes);
            let mut storage = json!({
                "resources": {"requests": {"storage": binary_si(size)}},
                "storageClassName": pair.class,
            });
            if let Some(mode) = &pair.access_mode {
                storage["accessModes"] = json!([mode]);
            }
            if let Some(mode) = &pair.volume_mode {
                storage["volumeMode"] = Value::from(mode.clone());
            }
            let mut spec = json!({
                "source": {"imageio": {"url": t.provider_url, "diskId": disk.id,
                    "secretRef": secret, "certConfigMap": config_map}},
                "storage": storage,
            });
            if let Some(c) = checkpoints {
                spec["checkpoints"] = Value::from(disk_checkpoints(&disk.id, &c.snapshots));
                spec["finalCheckpoint"] = Value::from(c.final_checkpoint);
            }
            let mut annotations = annotations.clone();
            annotations.insert(ANN_DISK_SOURCE.into(), Value::from(disk.id.clone()));
            dvs.push(json!({
                "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
                "metadata": {"generateName": format!("{}-{}-", t.plan_name, t.vm_id),
                    "namespace": t.namespace, "labels": Target::label_map(&t.vm_labels()),
                    "annotations": annotations},
                "spec": spec,
            }));
        }
    }
    dvs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_render_as_binary_si() {
        assert_eq!(binary_si(50 << 30), "50Gi");
        assert_eq!(binary_si(1536), "1536");
        assert_eq!(binary_si(3 << 10), "3Ki");
        assert_eq!(binary_si(10737418241), "10737418241");
    }

    #[test]
    fn checkpoints_chain_each_snapshot_to_the_one_before() {
        let snaps = vec!["s1".to_string(), "s2".to_string()];
        let cps = disk_checkpoints("d", &snaps);
        assert_eq!(cps[0]["previous"], "");
        assert_eq!(cps[1]["previous"], cps[0]["current"]);
        assert_ne!(cps[0]["current"], cps[1]["current"]);
        assert_eq!(made_up_id(&["a"]).len(), 36);
    }
}
