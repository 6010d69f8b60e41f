//! Plays CDI's configuration controllers (CDI is not running here): a StorageProfile per
//! StorageClass whose claim property sets come from CDI's table of storage capabilities, and the
//! CDIConfig `config` with its filesystem overhead per class.

use crate::FIELD_MANAGER;
use crate::objects::{Stores, cdi_config, message, storage_profile};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

const RWO: &str = "ReadWriteOnce";
const RWX: &str = "ReadWriteMany";
const ROX: &str = "ReadOnlyMany";
const FILE: &str = "Filesystem";
const BLOCK: &str = "Block";

/// CDI v1.66.0 `pkg/storagecapabilities/storagecapabilities.go`, `CapabilitiesByProvisionerKey`
/// (a subset: the provisioners a lab like the demo's is likely to have), in CDI's order; the
/// first entry is the one Forklift uses (`getDefaultVolumeAndAccessMode`).
fn capabilities(provisioner_key: &str) -> Option<&'static [(&'static str, &'static str)]> {
    const RBD: &[(&str, &str)] = &[(RWX, BLOCK), (RWO, BLOCK), (RWO, FILE)];
    const RWX_RWO_FILE: &[(&str, &str)] = &[(RWX, FILE), (RWO, FILE)];
    const RWO_BLOCK_FILE: &[(&str, &str)] = &[(RWO, BLOCK), (RWO, FILE)];
    const ALL_BUT_RWX_FILE: &[(&str, &str)] = &[
        (RWX, BLOCK),
        (RWO, BLOCK),
        (RWO, FILE),
        (ROX, BLOCK),
        (ROX, FILE),
    ];
    Some(match provisioner_key {
        "kubevirt.io.hostpath-provisioner" | "kubevirt.io/hostpath-provisioner" => &[(RWO, FILE)],
        "k8s.io/minikube-hostpath" => &[(RWO, FILE)],
        "nfs.csi.k8s.io" | "k8s-sigs.io/nfs-subdir-external-provisioner" => &[(RWX, FILE)],
        "kubernetes.io/rbd"
        | "rbd.csi.ceph.com"
        | "rook-ceph.rbd.csi.ceph.com"
        | "openshift-storage.rbd.csi.ceph.com" => RBD,
        "cephfs.csi.ceph.com"
        | "rook-ceph.cephfs.csi.ceph.com"
        | "openshift-storage.cephfs.csi.ceph.com" => RWX_RWO_FILE,
        "linstor.csi.linbit.com" => ALL_BUT_RWX_FILE,
        "csi.trident.netapp.io/ontap-nas" | "csi.trident.netapp.io/gcnv-flex" => RWX_RWO_FILE,
        "csi.trident.netapp.io/ontap-san" => &[(RWX, BLOCK)],
        "ebs.csi.aws.com" | "kubernetes.io/aws-ebs" => &[(RWO, BLOCK)],
        "efs.csi.aws.com" => RWX_RWO_FILE,
        "disk.csi.azure.com" | "kubernetes.io/azure-disk" => &[(RWO, BLOCK)],
        "file.csi.azure.com" | "kubernetes.io/azure-file" => &[(RWX, FILE)],
        "pd.csi.storage.gke.io" | "kubernetes.io/gce-pd" => RWO_BLOCK_FILE,
        "topolvm.cybozu.com" | "topolvm.io" => RWO_BLOCK_FILE,
        "cinder.csi.openstack.org" | "csi.ovirt.org" => RWO_BLOCK_FILE,
        "csi.vsphere.vmware.com" => RWO_BLOCK_FILE,
        "driver.longhorn.io" => &[(RWO, BLOCK)],
        _ => return None,
    })
}

/// CDI v1.66.0 `storageProvisionerKey` with its `storageClassToProvisionerKeyMapper` entry for
/// Trident: the backend type picks the key; an unknown one leaves the class unrecognised.
fn provisioner_key(class: &StorageClass) -> String {
    let parameter = |key: &str| {
        class
            .parameters
            .as_ref()
            .and_then(|p| p.get(key))
            .cloned()
            .unwrap_or_default()
    };
    match class.provisioner.as_str() {
        "csi.trident.netapp.io" => {
            let backend = parameter("backendType");
            if backend.starts_with("ontap-nas") {
                "csi.trident.netapp.io/ontap-nas".into()
            } else if backend.starts_with("ontap-san") {
                "csi.trident.netapp.io/ontap-san".into()
            } else {
                "UNKNOWN".into()
            }
        }
        other => other.to_string(),
    }
}

/// CDI v1.66.0 `pkg/controller/storageprofile-controller.go`, `reconcileStorageProfile`: the
/// spec's claim property sets when the user gave valid ones, else one set per capability.
fn claim_property_sets(class: &StorageClass, profile: Option<&DynamicObject>) -> Value {
    let from_spec = profile
        .and_then(|p| p.data["spec"]["claimPropertySets"].as_array())
        .filter(|sets| {
            !sets.is_empty()
                && sets.iter().all(|s| {
                    s["volumeMode"].is_string()
                        && s["accessModes"].as_array().is_some_and(|a| !a.is_empty())
                })
        });
    if let Some(sets) = from_spec {
        return Value::from(sets.clone());
    }
    let sets: Vec<Value> = capabilities(&provisioner_key(class))
        .unwrap_or(&[])
        .iter()
        .map(|(access, mode)| json!({"accessModes": [access], "volumeMode": mode}))
        .collect();
    Value::from(sets)
}

/// CDI v1.66.0 `pkg/common/common.go`, `DefaultGlobalOverhead` (6% since v1.63.0).
pub const DEFAULT_GLOBAL_OVERHEAD: &str = "0.06";

pub struct Cdi {
    client: Client,
}

impl Cdi {
    pub fn new(client: Client) -> Cdi {
        Cdi { client }
    }

    pub async fn reconcile(&self, stores: &Stores) {
        let classes = stores.storage_classes.state();
        for class in &classes {
            self.reconcile_profile(stores, class).await;
        }
        // A StorageProfile outlives no StorageClass (`Reconcile`: deleteStorageProfile).
        for profile in stores.storage_profiles.state() {
            let name = profile.metadata.name.clone().unwrap_or_default();
            if !classes
                .iter()
                .any(|c| c.metadata.name.as_deref() == Some(&name))
            {
                let api: Api<DynamicObject> =
                    Api::all_with(self.client.clone(), &storage_profile());
                if let Err(e) = api.delete(&name, &DeleteParams::default()).await {
                    tracing::debug!("StorageProfile {name}: {}", message(&e));
                }
            }
        }
        self.reconcile_config(stores, &classes).await;
    }

    async fn reconcile_profile(&self, stores: &Stores, class: &StorageClass) {
        let name = class.metadata.name.clone().unwrap_or_default();
        let profile = stores
            .storage_profiles
            .state()
            .into_iter()
            .find(|p| p.metadata.name.as_deref() == Some(&name));
        let status = json!({
            "storageClass": name,
            "provisioner": class.provisioner,
            "claimPropertySets": claim_property_sets(class, profile.as_deref()),
        });
        let current = profile.as_ref().map(|p| &p.data["status"]);
        let same = current.is_some_and(|s| {
            s["storageClass"] == status["storageClass"]
                && s["provisioner"] == status["provisioner"]
                && s["claimPropertySets"] == status["claimPropertySets"]
        });
        if same {
            return;
        }
        let ar = storage_profile();
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        if profile.is_none() {
            let body = json!({"apiVersion": ar.api_version, "kind": ar.kind,
                "metadata": {"name": name, "labels": {"app": "containerized-data-importer"}},
                "spec": {}});
            if let Err(e) = api.patch(&name, &params, &Patch::Apply(&body)).await {
                tracing::warn!("StorageProfile {name}: cannot create it: {}", message(&e));
                return;
            }
        }
        let body = json!({"apiVersion": ar.api_version, "kind": ar.kind,
            "metadata": {"name": name}, "status": status});
        if let Err(e) = api.patch_status(&name, &params, &Patch::Apply(&body)).await {
            tracing::warn!(
                "StorageProfile {name}: cannot write its status: {}",
                message(&e)
            );
        }
    }

    /// CDI v1.66.0 `pkg/controller/config-controller.go`, `reconcileFilesystemOverhead`: the
    /// global overhead (the spec's when valid, else the default) and one entry per StorageClass.
    async fn reconcile_config(&self, stores: &Stores, classes: &[std::sync::Arc<StorageClass>]) {
        let config = stores
            .cdi_configs
            .state()
            .into_iter()
            .find(|c| c.metadata.name.as_deref() == Some("config"));
        let spec = config
            .as_ref()
            .map(|c| c.data["spec"]["filesystemOverhead"].clone())
            .unwrap_or(Value::Null);
        let global = spec["global"]
            .as_str()
            .filter(|g| g.parse::<f64>().is_ok_and(|v| (0.0..1.0).contains(&v)))
            .unwrap_or(DEFAULT_GLOBAL_OVERHEAD)
            .to_string();
        let mut per_class = serde_json::Map::new();
        for class in classes {
            let name = class.metadata.name.clone().unwrap_or_default();
            let value = spec["storageClass"][&name]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| global.clone());
            per_class.insert(name, Value::from(value));
        }
        let overhead = json!({"global": global, "storageClass": per_class});
        if config
            .as_ref()
            .is_some_and(|c| c.data["status"]["filesystemOverhead"] == overhead)
        {
            return;
        }
        let ar = cdi_config();
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
        let mut body = json!({"apiVersion": ar.api_version, "kind": ar.kind,
            "metadata": {"name": "config"}, "status": {"filesystemOverhead": overhead}});
        if config.is_none() {
            body["spec"] = json!({});
        }
        let params = PatchParams::apply(FIELD_MANAGER).force();
        if let Err(e) = api.patch("config", &params, &Patch::Apply(&body)).await {
            tracing::warn!("CDIConfig config: cannot write it: {}", message(&e));
        }
    }
}

/// The filesystem overhead CDI applies to a class (`pkg/controller/common/util.go`
/// `GetFilesystemOverheadForStorageClass`): the class's entry in the CDIConfig status, else the
/// global one, else the default.
pub fn filesystem_overhead(stores: &Stores, class: &str) -> f64 {
    let config = stores
        .cdi_configs
        .state()
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == Some("config"));
    let status = config
        .as_ref()
        .map(|c| c.data["status"]["filesystemOverhead"].clone())
        .unwrap_or(Value::Null);
    status["storageClass"][class]
        .as_str()
        .or(status["global"].as_str())
        .unwrap_or(DEFAULT_GLOBAL_OVERHEAD)
        .parse()
        .unwrap_or(0.06)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(provisioner: &str, parameters: &[(&str, &str)]) -> StorageClass {
        serde_json::from_value(json!({
            "metadata": {"name": "c"}, "provisioner": provisioner,
            "parameters": parameters.iter().map(|(k, v)| (k.to_string(), Value::from(*v)))
                .collect::<serde_json::Map<_, _>>(),
        }))
        .unwrap()
    }

    #[test]
    fn trident_nas_offers_rwx_filesystem_first_and_rbd_rwx_block() {
        let nas = claim_property_sets(
            &class("csi.trident.netapp.io", &[("backendType", "ontap-nas")]),
            None,
        );
        assert_eq!(
            nas[0],
            json!({"accessModes": ["ReadWriteMany"], "volumeMode": "Filesystem"})
        );
        assert_eq!(nas.as_array().unwrap().len(), 2);
        let rbd = claim_property_sets(&class("rbd.csi.ceph.com", &[]), None);
        assert_eq!(
            rbd[0],
            json!({"accessModes": ["ReadWriteMany"], "volumeMode": "Block"})
        );
        // A Trident class without a known backend type is not recognised: no sets.
        let bare = claim_property_sets(&class("csi.trident.netapp.io", &[]), None);
        assert_eq!(bare, json!([]));
    }
}
