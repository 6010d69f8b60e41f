//! A VM's direct LUN disks on the target, as Forklift v2.12.5 re-attaches them (it copies no
//! data: it assumes the target reaches the same storage): per LUN disk a PersistentVolume on the
//! disk's first logical unit and a claim pre-selecting it, both named after the disk
//! (`pkg/controller/plan/adapter/ovirt/builder.go` `LunPersistentVolumes`,
//! `LunPersistentVolumeClaims`; `pkg/controller/plan/kubevirt.go` `createLunDisks`). The real
//! PV binder of the test bed's kube-controller-manager binds the claim.

use crate::datavolume::binary_si;
use crate::footprint::{ANN_DISK_SOURCE, Footprint, StepError, Target};
use crate::objects::{has_labels, message};
use crate::world::{Disk, WorldVm};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::Api;
use kube::api::PostParams;
use ovirt_sim::objects::LogicalUnit;
use serde_json::{Value, json};

/// The annotation both objects carry (builder.go; kubevirt.go skips claims holding it when it
/// deletes populated PVCs' helpers).
const ANN_LUN: &str = "lun";

/// builder.go: the PV's `volume` label and the claim's selector, `<source VM name>-<disk
/// attachment id>`.
fn volume_label(t: &Target, disk: &Disk) -> String {
    format!("{}-{}", t.vm_name, disk.attachment_id)
}

fn annotations(disk: &Disk) -> Value {
    json!({ANN_DISK_SOURCE: disk.id, ANN_LUN: "true"})
}

/// v2.12.5 builder.go `LunPersistentVolumes`: named after the disk, labelled `volume`, `vmID`,
/// `plan`, `migration`; the unit's size as capacity (`resource.NewQuantity(size, BinarySI)`),
/// ReadWriteMany, Block, no storage class, no reclaim policy (the API server's default, Retain).
/// An iSCSI source (portal `address:port`, the unit's target IQN and LUN mapping) when the unit
/// has an address, else Fibre Channel by the unit's id as WWID. (Forklift also sets the
/// namespace, which the API server drops from a cluster-scoped object.)
fn lun_volume(t: &Target, disk: &Disk, unit: &LogicalUnit) -> Value {
    let source = if unit.address.is_empty() {
        json!({"fc": {"wwids": [unit.id], "readOnly": false}})
    } else {
        json!({"iscsi": {"targetPortal": format!("{}:{}", unit.address, unit.port),
            "iqn": unit.target, "lun": unit.lun_mapping, "readOnly": false}})
    };
    let mut spec = json!({"capacity": {"storage": binary_si(unit.size)},
        "accessModes": ["ReadWriteMany"], "volumeMode": "Block"});
    if let (Some(spec), Value::Object(source)) = (spec.as_object_mut(), source) {
        spec.extend(source);
    }
    json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": disk.id, "annotations": annotations(disk),
            "labels": {"volume": volume_label(t, disk), "vmID": t.vm_id, "plan": t.plan_uid,
                "migration": t.migration_uid}},
        "spec": spec,
    })
}

/// v2.12.5 builder.go `LunPersistentVolumeClaims`: named after the disk in the target namespace,
/// labelled `vmID`, `plan`, `migration` (no `volume` label), ReadWriteMany, Block, storage class
/// `""` (no class, no provisioner), selecting its PV by the `volume` label and requesting the
/// unit's size.
fn lun_claim(t: &Target, disk: &Disk, unit: &LogicalUnit) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": disk.id, "namespace": t.namespace, "annotations": annotations(disk),
            "labels": {"vmID": t.vm_id, "plan": t.plan_uid, "migration": t.migration_uid}},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "selector": {"matchLabels": {"volume": volume_label(t, disk)}},
            "storageClassName": "",
            "volumeMode": "Block",
            "resources": {"requests": {"storage": binary_si(unit.size)}},
        },
    })
}

/// Creates `body` with `api`. One that exists already is this migration's own when it carries
/// this migration's label (an earlier attempt of the step made it; forklift-sim retries a step
/// after a transient error where Forklift fails the VM), else it is refused as Forklift's
/// `Create` is: `EnsurePersistentVolumeClaim` looks for the claims' `volume` label, which LUN
/// claims lack, and `EnsurePersistentVolume` lists with `vmLabels`, which LUN volumes lack, so
/// neither ever finds one and both create, and AlreadyExists fails the VM.
async fn create<K>(api: Api<K>, body: Value, t: &Target) -> Result<(), StepError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(body).map_err(|e| StepError::Refused(e.to_string()))?;
    let name = obj.meta().name.clone().unwrap_or_default();
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.reason == "AlreadyExists" => {
            let found = api.get(&name).await?;
            let labels = found.meta().labels.as_ref();
            if has_labels(labels, &[("migration", &t.migration_uid)]) {
                Ok(())
            } else {
                Err(StepError::Refused(s.message))
            }
        }
        Err(e) => {
            tracing::debug!("{name}: {}", message(&e));
            Err(e.into())
        }
    }
}

impl Footprint {
    /// v2.12.5 kubevirt.go `createLunDisks`: the claims of the VM's LUN disks
    /// (`EnsurePersistentVolumeClaim`), then their volumes (`EnsurePersistentVolume`). Called in
    /// the CreateDataVolumes phase by `PopulatorVolumes` (before the populators) and by
    /// `dataVolumes` (after the DataVolumes are built, before `EnsureDataVolumes`).
    pub async fn lun_disks(&self, t: &Target, vm: &WorldVm) -> Result<(), StepError> {
        let luns: Vec<(&Disk, &LogicalUnit)> = vm
            .disks
            .iter()
            .filter(|d| d.lun)
            .filter_map(|d| Some((d, d.logical_unit.as_ref()?)))
            .collect();
        for (disk, unit) in &luns {
            let api: Api<PersistentVolumeClaim> = self.api(&t.namespace);
            create(api, lun_claim(t, disk, unit), t).await?;
        }
        for (disk, unit) in &luns {
            let api: Api<PersistentVolume> = Api::all(self.client());
            create(api, lun_volume(t, disk, unit), t).await?;
        }
        Ok(())
    }
}
