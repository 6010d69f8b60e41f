//! The cluster objects the simulated controllers work on: reflectors that keep a view of them,
//! the custom resources' API descriptions, and small helpers shared by the roles.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod, ResourceQuota};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;

fn gvk(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// forklift.konveyor.io/v1beta1 OvirtVolumePopulator (namespaced).
pub fn ovirt_populator() -> ApiResource {
    gvk(
        "forklift.konveyor.io",
        "v1beta1",
        "OvirtVolumePopulator",
        "ovirtvolumepopulators",
    )
}

/// cdi.kubevirt.io/v1beta1 StorageProfile (cluster-scoped, one per StorageClass).
pub fn storage_profile() -> ApiResource {
    gvk(
        "cdi.kubevirt.io",
        "v1beta1",
        "StorageProfile",
        "storageprofiles",
    )
}

/// cdi.kubevirt.io/v1beta1 CDIConfig (cluster-scoped, named `config`).
pub fn cdi_config() -> ApiResource {
    gvk("cdi.kubevirt.io", "v1beta1", "CDIConfig", "cdiconfigs")
}

/// cdi.kubevirt.io/v1beta1 DataVolume (namespaced).
pub fn data_volume() -> ApiResource {
    gvk("cdi.kubevirt.io", "v1beta1", "DataVolume", "datavolumes")
}

/// kubevirt.io/v1 VirtualMachine (namespaced).
pub fn virtual_machine() -> ApiResource {
    gvk("kubevirt.io", "v1", "VirtualMachine", "virtualmachines")
}

/// kubevirt.io/v1 VirtualMachineInstance (namespaced).
pub fn virtual_machine_instance() -> ApiResource {
    gvk(
        "kubevirt.io",
        "v1",
        "VirtualMachineInstance",
        "virtualmachineinstances",
    )
}

/// The API server ends each watch after this long, and the watcher opens the next from where it
/// stood: an idle watch never outlives [`client`]'s read timeout.
const WATCH_SECS: u32 = 50;

/// A response that has sent nothing for this long is hung, not slow: the API server answers every
/// request that is not a watch within its --request-timeout (60 s by default, 504 after it).
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(75);

/// The client of the kubeconfig in use, with a read timeout, so that a request the server never
/// answers fails (a transport error: retried, crate::retry) instead of stalling the loop; kube's
/// default has none.
pub async fn client() -> common::Result<kube::Client> {
    let mut config = kube::Config::infer().await.map_err(|e| {
        common::Error::config(format!("cannot configure the Kubernetes client: {e}"))
    })?;
    config.read_timeout = Some(READ_TIMEOUT);
    // Counted from the request, not from when its pooled connection went idle.
    config.reset_reader_on_write = true;
    kube::Client::try_from(config)
        .map_err(|e| common::Error::config(format!("cannot configure the Kubernetes client: {e}")))
}

/// Keeps a store of `api`'s objects up to date in the background; the watcher lists again after
/// any error (an API server restart cuts every watch), with backoff.
pub fn reflect<K>(
    api: Api<K>,
    dyntype: K::DynamicType,
    what: impl std::fmt::Display + Send + Sync + 'static,
) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    let writer = Writer::new(dyntype);
    let reader = writer.as_reader();
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default().timeout(WATCH_SECS)),
    )
    .default_backoff()
    .touched_objects();
    tokio::spawn(async move {
        stream
            .for_each(|event| {
                if let Err(e) = event {
                    tracing::warn!("watch {what}: {e}; retrying");
                }
                futures::future::ready(())
            })
            .await;
    });
    reader
}

/// What the target-side roles see of the cluster (all cluster-wide; each role keeps to the
/// namespaces it is responsible for).
#[derive(Clone)]
pub struct Stores {
    pub pvcs: Store<PersistentVolumeClaim>,
    pub pvs: Store<PersistentVolume>,
    pub pods: Store<Pod>,
    pub storage_classes: Store<StorageClass>,
    pub quotas: Store<ResourceQuota>,
    pub storage_profiles: Store<DynamicObject>,
    pub cdi_configs: Store<DynamicObject>,
    pub populators: Store<DynamicObject>,
    pub data_volumes: Store<DynamicObject>,
    pub vmis: Store<DynamicObject>,
}

impl Stores {
    pub fn start(client: &Client) -> Stores {
        let dynamic = |ar: ApiResource, what| {
            reflect(
                Api::<DynamicObject>::all_with(client.clone(), &ar),
                ar,
                what,
            )
        };
        Stores {
            pvcs: reflect(Api::all(client.clone()), (), "PersistentVolumeClaim"),
            pvs: reflect(Api::all(client.clone()), (), "PersistentVolume"),
            pods: reflect(Api::all(client.clone()), (), "Pod"),
            storage_classes: reflect(Api::all(client.clone()), (), "StorageClass"),
            quotas: reflect(Api::all(client.clone()), (), "ResourceQuota"),
            storage_profiles: dynamic(storage_profile(), "StorageProfile"),
            cdi_configs: dynamic(cdi_config(), "CDIConfig"),
            populators: dynamic(ovirt_populator(), "OvirtVolumePopulator"),
            data_volumes: dynamic(data_volume(), "DataVolume"),
            vmis: dynamic(virtual_machine_instance(), "VirtualMachineInstance"),
        }
    }

    pub async fn wait_until_ready(&self) {
        let _ = self.pvcs.wait_until_ready().await;
        let _ = self.pvs.wait_until_ready().await;
        let _ = self.pods.wait_until_ready().await;
        let _ = self.storage_classes.wait_until_ready().await;
        let _ = self.quotas.wait_until_ready().await;
        let _ = self.storage_profiles.wait_until_ready().await;
        let _ = self.cdi_configs.wait_until_ready().await;
        let _ = self.populators.wait_until_ready().await;
        let _ = self.data_volumes.wait_until_ready().await;
        let _ = self.vmis.wait_until_ready().await;
    }
}

/// The namespaces a forklift-sim acts in on the target side: all of them, or (with
/// `--namespace`) that namespace and the target namespaces of its plans, so that simulators run
/// side by side by tests never touch each other's objects.
#[derive(Debug, Clone, Default)]
pub struct Scope(pub Option<std::collections::HashSet<String>>);

impl Scope {
    pub fn contains(&self, namespace: &str) -> bool {
        self.0.as_ref().is_none_or(|set| set.contains(namespace))
    }
}

/// Objects by (namespace, name), for lookups in loops over many objects.
pub fn by_name<K: Resource>(
    items: &[std::sync::Arc<K>],
) -> std::collections::HashMap<(String, String), std::sync::Arc<K>> {
    items
        .iter()
        .map(|o| {
            let meta = o.meta();
            (
                (
                    meta.namespace.clone().unwrap_or_default(),
                    meta.name.clone().unwrap_or_default(),
                ),
                o.clone(),
            )
        })
        .collect()
}

/// The API server's own words for a failed request (a refusal's `message`, verbatim), or the
/// client's description of a transport failure.
pub fn message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 404)
}

pub fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 409)
}

/// Whether every `key=value` of `selector` is among `labels`.
pub fn has_labels(labels: Option<&BTreeMap<String, String>>, selector: &[(&str, &str)]) -> bool {
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(*k)).map(String::as_str) == Some(*v))
}

/// `k=v,k2=v2` for a list call.
pub fn selector(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses a Kubernetes quantity of bytes (one parser, in common).
pub use common::size::quantity_bytes;

/// A PVC's storage request in bytes.
pub fn pvc_request_bytes(pvc: &PersistentVolumeClaim) -> u64 {
    pvc.spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| quantity_bytes(&q.0))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_in_bytes() {
        assert_eq!(quantity_bytes("59652323556"), Some(59652323556));
        assert_eq!(quantity_bytes("10Gi"), Some(10 << 30));
        assert_eq!(quantity_bytes("1500M"), Some(1_500_000_000));
        assert_eq!(quantity_bytes("1.5Gi"), Some(3 << 29));
        assert_eq!(quantity_bytes("10 apples"), None);
    }
}
