//! What Forklift's plan controller creates in a plan's target namespace for one VM of a cold
//! migration to the local cluster (Forklift v2.12.5, `pkg/controller/plan/kubevirt.go` and
//! `pkg/controller/plan/adapter/ovirt/builder.go`): the transfer Secret, per disk an
//! OvirtVolumePopulator and its PVC, the PVC consumer pod, then the VirtualMachine, and what it
//! deletes afterwards.

use crate::objects::{self, has_labels, message, selector};
use crate::retry;
use crate::sizing::{self, VolumeMode};
use crate::world::{Disk, WorldVm};
use common::forklift::builder;
use common::forklift::plan::Destination;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// Forklift's annotation naming the disk (attachment) a PVC holds (`AnnDiskSource`).
pub const ANN_DISK_SOURCE: &str = "forklift.konveyor.io/disk-source";
const ANN_SERVICE_ACCOUNT: &str = "forklift.konveyor.io/serviceAccount";
/// `pkg/settings/migration.go` defaults of VIRT_V2V_CONTAINER_{REQUESTS,LIMITS}_{CPU,MEMORY}:
/// the resources of the PVC consumer pod (`createPodToBindPVCs`).
const CONSUMER_REQUESTS: (&str, &str) = ("1000m", "1Gi");
const CONSUMER_LIMITS: (&str, &str) = ("4000m", "8Gi");
const VIRT_V2V_IMAGE: &str = "quay.io/kubev2v/forklift-virt-v2v:release-v2.12";
const QEMU_USER: i64 = 107;

/// Why a step could not be done: the server was away or busy (try again), or it refused.
#[derive(Debug, Clone)]
pub enum StepError {
    Transient(String),
    Refused(String),
}

impl From<kube::Error> for StepError {
    fn from(e: kube::Error) -> StepError {
        if retry::is_transient(&e) {
            StepError::Transient(message(&e))
        } else {
            StepError::Refused(message(&e))
        }
    }
}

/// One VM of one execution, as the target side sees it.
#[derive(Debug, Clone)]
pub struct Target {
    pub namespace: String,
    pub plan_name: String,
    pub plan_namespace: String,
    pub plan_uid: String,
    pub migration_uid: String,
    pub vm_id: String,
    pub vm_name: String,
    pub target_name: String,
    pub service_account: Option<String>,
    pub transfer_network: Value,
    /// The source provider's URL (`https://engine/ovirt-engine/api`).
    pub provider_url: String,
    pub provider_secret: BTreeMap<String, ByteString>,
    /// Storage domain id -> storage class, from the plan's StorageMap.
    pub classes: HashMap<String, String>,
    /// The StorageMap's pairs in order (what `Builder.DataVolumes` walks).
    pub storage_pairs: Vec<StoragePair>,
    /// The NetworkMap's pairs in order: (source network id, destination).
    pub network_pairs: Vec<(String, Value)>,
    /// The plan is warm.
    pub warm: bool,
    /// The destination Provider is the host cluster.
    pub destination_host: bool,
    pub power_on: bool,
}

impl Target {
    /// `KubeVirt.vmLabels`: plan labels plus the VM's id and the resource kind.
    pub fn vm_labels(&self) -> Vec<(&'static str, String)> {
        vec![
            ("migration", self.migration_uid.clone()),
            ("plan", self.plan_uid.clone()),
            ("plan-name", self.plan_name.clone()),
            ("plan-namespace", self.plan_namespace.clone()),
            ("vmID", self.vm_id.clone()),
            ("resource", "vm-config".to_string()),
        ]
    }

    pub(crate) fn label_map(pairs: &[(&'static str, String)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Value::from(v.clone())))
                .collect(),
        )
    }

    pub(crate) fn selector_of(pairs: &[(&'static str, String)]) -> String {
        let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        selector(&borrowed)
    }

    /// The engine's scheme and host (`createVolumePopulatorCR`'s engineUrl).
    fn engine_url(&self) -> String {
        let (scheme, rest) = self
            .provider_url
            .split_once("://")
            .unwrap_or(("https", &self.provider_url));
        let host = rest.split('/').next().unwrap_or_default();
        format!("{scheme}://{host}")
    }
}

/// One pair of a StorageMap, its source resolved to a storage domain id.
#[derive(Debug, Clone)]
pub struct StoragePair {
    pub storage_domain: String,
    pub class: String,
    pub volume_mode: Option<String>,
    pub access_mode: Option<String>,
}

/// What `PopulatorVolumes` made this time: the new PVCs (their phase as the API server
/// returned them).
pub struct Volumes {
    pub created: Vec<PersistentVolumeClaim>,
}

pub struct Footprint {
    client: Client,
    pub filesystem_overhead_percent: u32,
    pub block_overhead_bytes: u64,
}

impl Footprint {
    pub fn new(
        client: Client,
        filesystem_overhead_percent: u32,
        block_overhead_bytes: u64,
    ) -> Footprint {
        Footprint {
            client,
            filesystem_overhead_percent,
            block_overhead_bytes,
        }
    }

    pub(crate) fn api<K>(&self, ns: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), ns)
    }

    pub(crate) fn client(&self) -> Client {
        self.client.clone()
    }

    pub(crate) fn dynamic(&self, ns: &str, ar: &kube::api::ApiResource) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, ar)
    }

    /// `KubeVirt.PopulatorVolumes` → `Builder.PopulatorVolumes`: the transfer Secret, the LUN
    /// disks' claims and volumes (`createLunDisks`, crate::lun), then per copied disk with no
    /// OvirtVolumePopulator of this migration yet, the CR and its PVC. (One list of the
    /// migration's CRs serves every disk's `getVolumePopulator`, and one read of a
    /// StorageProfile every disk of its class: the same answers in fewer requests.)
    pub async fn populator_volumes(&self, t: &Target, vm: &WorldVm) -> Result<Volumes, StepError> {
        let data = json!({"data": t.provider_secret});
        let secret = self.ensure_secret(t, ("isPopulator", "true"), data).await?;
        self.lun_disks(t, vm).await?;
        let existing = self.populators_of(t).await?;
        let claims = if existing.is_empty() {
            Vec::new()
        } else {
            self.target_pvcs(t).await?
        };
        let mut profiles: HashMap<String, (Vec<String>, VolumeMode)> = HashMap::new();
        let mut created = Vec::new();
        for disk in vm.copied_disks() {
            let found = existing.iter().find(|cr| {
                has_labels(
                    cr.metadata.labels.as_ref(),
                    &[("diskID", &disk.attachment_id)],
                )
            });
            let cr = match found {
                // Forklift skips a disk whose CR exists. It fails the VM on any error after
                // making a CR, where forklift-sim retries a transient one (a 409 from quota
                // admission): that retry makes the PVC the CR still lacks, or the VM would wait
                // for good.
                Some(cr) => {
                    let name = cr.metadata.name.clone().unwrap_or_default();
                    let named = claims.iter().any(|p| {
                        p.spec
                            .as_ref()
                            .and_then(|s| s.data_source_ref.as_ref())
                            .is_some_and(|r| r.name == name)
                    });
                    if named {
                        continue;
                    }
                    name
                }
                None => self.create_populator(t, disk, &secret).await?,
            };
            let class = disk
                .storage_domain
                .as_ref()
                .and_then(|sd| t.classes.get(sd))
                .cloned()
                .unwrap_or_default();
            if !profiles.contains_key(&class) {
                let profile = self.storage_profile(&class).await?;
                profiles.insert(class.clone(), profile);
            }
            match self
                .create_pvc(t, disk, &class, &profiles[&class], &cr)
                .await
            {
                Ok(pvc) => created.push(pvc),
                Err(StepError::Refused(m)) if m.contains("already exists") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Volumes { created })
    }

    /// `ensureSecret`: one Secret per VM and purpose, found again by its labels; `content` holds
    /// its `data` or `stringData`.
    pub(crate) async fn ensure_secret(
        &self,
        t: &Target,
        purpose: (&'static str, &str),
        content: Value,
    ) -> Result<String, StepError> {
        let mut labels = t.vm_labels();
        labels.push((purpose.0, purpose.1.to_string()));
        let api: Api<Secret> = self.api(&t.namespace);
        let list = api
            .list(&ListParams::default().labels(&Target::selector_of(&labels)))
            .await?;
        if let Some(found) = list.items.first() {
            return Ok(found.metadata.name.clone().unwrap_or_default());
        }
        let mut body = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"generateName": format!("{}-{}-", t.plan_name, t.vm_id),
                "namespace": t.namespace, "labels": Target::label_map(&labels)},
        });
        if let (Some(body), Some(content)) = (body.as_object_mut(), content.as_object()) {
            body.extend(content.clone());
        }
        let secret: Secret =
            serde_json::from_value(body).map_err(|e| StepError::Refused(e.to_string()))?;
        let made = api.create(&PostParams::default(), &secret).await?;
        Ok(made.metadata.name.unwrap_or_default())
    }

    /// `getVolumePopulator`'s candidates: the CRs of this migration (labelled migration and
    /// diskID; the disk's is found among them).
    async fn populators_of(&self, t: &Target) -> Result<Vec<DynamicObject>, StepError> {
        let api = self.dynamic(&t.namespace, &objects::ovirt_populator());
        let sel = selector(&[("migration", &t.migration_uid)]);
        Ok(api.list(&ListParams::default().labels(&sel)).await?.items)
    }

    /// `createVolumePopulatorCR`.
    async fn create_populator(
        &self,
        t: &Target,
        disk: &Disk,
        secret: &str,
    ) -> Result<String, StepError> {
        let ar = objects::ovirt_populator();
        let mut spec =
            json!({"engineUrl": t.engine_url(), "engineSecretName": secret, "diskId": disk.id});
        if t.transfer_network.is_object() {
            spec["transferNetwork"] = t.transfer_network.clone();
        }
        let body: DynamicObject = serde_json::from_value(json!({
            "apiVersion": ar.api_version, "kind": ar.kind,
            "metadata": {"generateName": format!("{}-", disk.attachment_id), "namespace": t.namespace,
                "labels": {"vmID": t.vm_id, "migration": t.migration_uid, "plan": t.plan_uid, "diskID": disk.id}},
            "spec": spec,
        }))
        .map_err(|e| StepError::Refused(e.to_string()))?;
        let made = self
            .dynamic(&t.namespace, &ar)
            .create(&PostParams::default(), &body)
            .await?;
        Ok(made.metadata.name.unwrap_or_default())
    }

    /// `getDefaultVolumeAndAccessMode`: the first claim property set of the class's
    /// StorageProfile (volume mode Filesystem when it names none); an error without one.
    async fn storage_profile(&self, class: &str) -> Result<(Vec<String>, VolumeMode), StepError> {
        let api: Api<DynamicObject> =
            Api::all_with(self.client.clone(), &objects::storage_profile());
        let profile = api.get(class).await?;
        let first = &profile.data["status"]["claimPropertySets"][0];
        let modes: Vec<String> = first["accessModes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str().map(str::to_string))
            .collect();
        if modes.is_empty() {
            return Err(StepError::Refused(
                "no accessMode defined on StorageProfile for StorageClass".into(),
            ));
        }
        Ok((modes, VolumeMode::parse(first["volumeMode"].as_str())))
    }

    /// `persistentVolumeClaimWithSourceRef`: sized by `CalculateSpaceWithOverhead` for the
    /// volume mode of the class's StorageProfile.
    async fn create_pvc(
        &self,
        t: &Target,
        disk: &Disk,
        class: &str,
        profile: &(Vec<String>, VolumeMode),
        cr: &str,
    ) -> Result<PersistentVolumeClaim, StepError> {
        let (access_modes, mode) = (profile.0.clone(), profile.1);
        let bytes = sizing::populator_request_bytes(
            disk.provisioned_bytes,
            mode,
            self.filesystem_overhead_percent,
            self.block_overhead_bytes,
        );
        let mut annotations = json!({ANN_DISK_SOURCE: disk.attachment_id});
        if let Some(sa) = &t.service_account {
            annotations[ANN_SERVICE_ACCOUNT] = Value::from(sa.clone());
        }
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"generateName": format!("{}-", disk.attachment_id), "namespace": t.namespace,
                "annotations": annotations,
                "labels": {"migration": t.migration_uid, "plan": t.plan_uid, "vmID": t.vm_id, "diskID": disk.id}},
            "spec": {
                "accessModes": access_modes,
                "resources": {"requests": {"storage": bytes.to_string()}},
                "storageClassName": class, "volumeMode": mode.as_str(),
                "dataSourceRef": {"apiGroup": "forklift.konveyor.io", "kind": "OvirtVolumePopulator", "name": cr},
            },
        }))
        .map_err(|e| StepError::Refused(e.to_string()))?;
        Ok(self
            .api(&t.namespace)
            .create(&PostParams::default(), &pvc)
            .await?)
    }

    /// `EnsurePopulatorVolumes` → `createPodToBindPVCs`: for the PVCs just made that are Pending
    /// (all of them: the API server returns a new claim as Pending), a pod that mounts them.
    pub async fn consumer_pod(
        &self,
        t: &Target,
        created: &[PersistentVolumeClaim],
    ) -> Result<(), StepError> {
        let pending: Vec<String> = created
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending"))
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let mut labels = t.vm_labels();
        labels.push(("forklift.app", "consumer".to_string()));
        let volumes: Vec<Value> = pending
            .iter()
            .map(|n| json!({"name": n, "persistentVolumeClaim": {"claimName": n}}))
            .collect();
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"namespace": t.namespace, "labels": Target::label_map(&labels),
                "generateName": format!("{}-{}-pvcinit-", t.plan_name, t.vm_id)},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": VIRT_V2V_IMAGE,
                    "command": ["/bin/sh", "-c", "exit 0"],
                    "resources": {
                        "requests": {"cpu": CONSUMER_REQUESTS.0, "memory": CONSUMER_REQUESTS.1},
                        "limits": {"cpu": CONSUMER_LIMITS.0, "memory": CONSUMER_LIMITS.1}},
                    "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true,
                        "runAsUser": QEMU_USER, "capabilities": {"drop": ["ALL"]}}}],
                "volumes": volumes,
                "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            },
        });
        if let Some(sa) = &t.service_account {
            pod["spec"]["serviceAccountName"] = Value::from(sa.clone());
        }
        let pod: Pod =
            serde_json::from_value(pod).map_err(|e| StepError::Refused(e.to_string()))?;
        self.api::<Pod>(&t.namespace)
            .create(&PostParams::default(), &pod)
            .await?;
        Ok(())
    }

    /// `getPVCs`: the VM's disk PVCs of this migration (not prime, with a disk identity).
    pub async fn target_pvcs(&self, t: &Target) -> Result<Vec<PersistentVolumeClaim>, StepError> {
        let api: Api<PersistentVolumeClaim> = self.api(&t.namespace);
        let sel = selector(&[("vmID", &t.vm_id), ("migration", &t.migration_uid)]);
        let list = api.list(&ListParams::default().labels(&sel)).await?;
        Ok(list
            .items
            .into_iter()
            .filter(|p| {
                !p.metadata
                    .name
                    .as_deref()
                    .unwrap_or_default()
                    .starts_with("prime-")
            })
            .filter(|p| {
                p.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(ANN_DISK_SOURCE))
                    .is_some_and(|s| !s.trim().is_empty())
            })
            .collect())
    }

    /// `EnsureVM` (create the VirtualMachine unless one with the VM's labels exists, then make
    /// it the owner of the disk PVCs), `SetPopulatorCrOwnership` (each CR owned by its PVC) and
    /// `DeletePVCConsumerPod`, as the CreateVM phase does.
    pub async fn ensure_vm(&self, t: &Target, vm: &WorldVm) -> Result<(), StepError> {
        let pvcs = self.target_pvcs(t).await?;
        let ar = objects::virtual_machine();
        let api = self.dynamic(&t.namespace, &ar);
        let labels = t.vm_labels();
        let existing = api
            .list(&ListParams::default().labels(&Target::selector_of(&labels)))
            .await?;
        let created = match existing.items.into_iter().next() {
            Some(found) => found,
            None => {
                let body = virtual_machine(t, vm, &pvcs, &labels);
                let params = PatchParams::apply(crate::FIELD_MANAGER).force();
                api.patch(&t.target_name, &params, &Patch::Apply(&body))
                    .await?
            }
        };
        let owner = json!([{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "name": created.metadata.name, "uid": created.metadata.uid,
            "blockOwnerDeletion": true, "controller": false}]);
        let claims: Api<PersistentVolumeClaim> = self.api(&t.namespace);
        for pvc in &pvcs {
            let patch = json!({"metadata": {"ownerReferences": owner}});
            claims
                .patch(
                    pvc.metadata.name.as_deref().unwrap_or_default(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
        }
        self.own_populators(t, &pvcs).await;
        self.delete_consumer_pods(t).await;
        Ok(())
    }

    /// `SetPopulatorCrOwnership`: errors are skipped, as upstream does.
    async fn own_populators(&self, t: &Target, pvcs: &[PersistentVolumeClaim]) {
        let api = self.dynamic(&t.namespace, &objects::ovirt_populator());
        let sel = selector(&[("migration", &t.migration_uid)]);
        let Ok(list) = api.list(&ListParams::default().labels(&sel)).await else {
            return;
        };
        for cr in list.items {
            let disk = cr.data["spec"]["diskId"].as_str().unwrap_or_default();
            let Some(pvc) = pvcs
                .iter()
                .find(|p| has_labels(p.metadata.labels.as_ref(), &[("diskID", disk)]))
            else {
                continue;
            };
            let patch = json!({"metadata": {"ownerReferences": [{"apiVersion": "v1",
                "kind": "PersistentVolumeClaim", "name": pvc.metadata.name, "uid": pvc.metadata.uid}]}});
            let name = cr.metadata.name.clone().unwrap_or_default();
            if let Err(e) = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::debug!("OvirtVolumePopulator {name}: {}", message(&e));
            }
        }
    }

    async fn delete_consumer_pods(&self, t: &Target) {
        let mut labels: Vec<(&'static str, String)> = t
            .vm_labels()
            .into_iter()
            .filter(|(k, _)| *k != "migration")
            .collect();
        labels.push(("forklift.app", "consumer".to_string()));
        self.delete_all::<Pod>(t, &Target::selector_of(&labels), |_| true)
            .await;
    }

    /// `Migration.cleanup`: after a success, the CRs, populator pods, consumer pod and Secrets of
    /// this migration; for a VM that did not succeed (a cancel), also its VirtualMachine (any
    /// migration's) and its PVCs and prime PVCs of this migration. Errors are logged.
    pub async fn cleanup(&self, t: &Target, succeeded: bool) {
        let this_migration = selector(&[("vmID", &t.vm_id), ("migration", &t.migration_uid)]);
        if !succeeded {
            let all_but: Vec<(&'static str, String)> = t
                .vm_labels()
                .into_iter()
                .filter(|(k, _)| *k != "migration")
                .collect();
            let api = self.dynamic(&t.namespace, &objects::virtual_machine());
            if let Ok(list) = api
                .list(&ListParams::default().labels(&Target::selector_of(&all_but)))
                .await
            {
                for vm in list.items {
                    let _ = api
                        .delete(
                            vm.metadata.name.as_deref().unwrap_or_default(),
                            &DeleteParams::foreground(),
                        )
                        .await;
                }
            }
            if let Ok(pvcs) = self.target_pvcs(t).await {
                let claims: Api<PersistentVolumeClaim> = self.api(&t.namespace);
                for pvc in pvcs {
                    let uid = pvc.metadata.uid.clone().unwrap_or_default();
                    let _ = claims
                        .delete(&format!("prime-{uid}"), &DeleteParams::default())
                        .await;
                    let _ = claims
                        .delete(
                            pvc.metadata.name.as_deref().unwrap_or_default(),
                            &DeleteParams::default(),
                        )
                        .await;
                }
            }
        }
        self.delete_consumer_pods(t).await;
        let sel = Target::selector_of(&t.vm_labels());
        self.delete_all::<Secret>(t, &sel, |_| true).await;
        let api = self.dynamic(&t.namespace, &objects::ovirt_populator());
        if let Ok(list) = api
            .list(&ListParams::default().labels(&this_migration))
            .await
        {
            for cr in list.items {
                let _ = api
                    .delete(
                        cr.metadata.name.as_deref().unwrap_or_default(),
                        &DeleteParams::default(),
                    )
                    .await;
            }
        }
        self.delete_all::<Pod>(t, &this_migration, |p: &Pod| {
            p.metadata
                .name
                .as_deref()
                .unwrap_or_default()
                .starts_with("populate-")
        })
        .await;
    }

    pub(crate) async fn delete_all<K>(&self, t: &Target, sel: &str, keep: impl Fn(&K) -> bool)
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = self.api(&t.namespace);
        let Ok(list) = api.list(&ListParams::default().labels(sel)).await else {
            return;
        };
        for item in list.items.iter().filter(|i| keep(i)) {
            let name = item.meta().name.clone().unwrap_or_default();
            if let Err(e) = api.delete(&name, &DeleteParams::default()).await {
                tracing::debug!("{}/{name}: {}", t.namespace, message(&e));
            }
        }
    }
}

/// Forklift v2.12.5 `KubeVirt.virtualMachine` with the oVirt builder's `VirtualMachine`
/// (`mapDisks`, `mapFirmware`, `mapCPU`, `mapMemory`, `mapInput`, `mapTpm`, `mapNetworks`).
fn virtual_machine(
    t: &Target,
    vm: &WorldVm,
    pvcs: &[PersistentVolumeClaim],
    labels: &[(&'static str, String)],
) -> Value {
    let claim_of = |disk: &Disk| {
        pvcs.iter()
            .find(|p| {
                p.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(ANN_DISK_SOURCE))
                    == Some(&disk.id)
            })
            .and_then(|p| p.metadata.name.clone())
            .unwrap_or_else(|| disk.id.clone())
    };
    let mut disks = Vec::new();
    let mut volumes = Vec::new();
    for disk in &vm.disks {
        let mut d = if disk.lun {
            json!({"name": disk.id, "lun": {"bus": "virtio"}})
        } else {
            json!({"name": disk.id, "disk": {"bus": "virtio"}, "serial": disk.id})
        };
        if disk.bootable {
            d["bootOrder"] = Value::from(1);
        }
        disks.push(d);
        let claim = if disk.lun {
            disk.id.clone()
        } else {
            claim_of(disk)
        };
        volumes.push(json!({"name": disk.id, "persistentVolumeClaim": {"claimName": claim}}));
    }
    let count = |key: &str| vm.cpu[key].as_u64().unwrap_or(1).max(1);
    let mut devices =
        json!({"disks": disks, "inputs": [{"type": "tablet", "name": "tablet", "bus": "virtio"}]});
    if vm.has_tpm() {
        devices["tpm"] = json!({"persistent": true});
    }
    let (interfaces, networks) = network_devices(t, vm);
    if !interfaces.is_empty() {
        devices["interfaces"] = Value::from(interfaces);
    }
    json!({
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
        "metadata": {"name": t.target_name, "namespace": t.namespace,
            "labels": Target::label_map(labels),
            "annotations": {"forklift-sim.liftkit.io/source-vm-name": t.vm_name}},
        "spec": {
            "runStrategy": if t.power_on { "Always" } else { "Halted" },
            "template": {
                "metadata": {"labels": {"app": t.target_name}},
                "spec": {
                    "domain": {
                        "cpu": {"sockets": count("sockets"), "cores": count("cores"), "threads": count("threads")},
                        "memory": {"guest": vm.memory_bytes.to_string()},
                        "firmware": {"uuid": vm.id, "serial": vm.id,
                            "bootloader": vm.firmware.bootloader()},
                        "devices": devices,
                    },
                    "networks": networks,
                    "volumes": volumes,
                },
            },
        },
    })
}

/// v2.12.5 builder.go `mapNetworks` (common::forklift::builder::assign_networks): per NIC that
/// gets a destination, a network `net-<i>` (pod, or Multus `namespace/name`) and an interface of
/// the NIC's model keeping its MAC, masquerade on the pod network, bridge (SR-IOV for a
/// pass-through profile) on a NAD. A NIC the world marks missing after the move is left out.
fn network_devices(t: &Target, vm: &WorldVm) -> (Vec<Value>, Vec<Value>) {
    let per_nic: Vec<Vec<Destination>> = vm
        .nics
        .iter()
        .map(|(_, network)| {
            let pairs = t.network_pairs.iter();
            pairs
                .filter(|(id, _)| Some(id) == network.as_ref())
                .map(|(_, d)| Destination {
                    kind: d["type"].as_str().unwrap_or_default(),
                    namespace: d["namespace"].as_str().unwrap_or_default(),
                    name: d["name"].as_str().unwrap_or_default(),
                })
                .collect()
        })
        .collect();
    let (mut interfaces, mut networks) = (Vec::new(), Vec::new());
    for (i, chosen) in builder::assign_networks(&per_nic).into_iter().enumerate() {
        let Some(destination) = chosen else { continue };
        let name = format!("net-{}", networks.len());
        let (model, pass_through) = vm.nic_models.get(i).cloned().unwrap_or_default();
        let mac = &vm.nics[i].0;
        let mut interface = json!({"name": name, "model": model, "macAddress": mac});
        let mut network = json!({"name": name});
        if destination.kind == "pod" {
            interface["masquerade"] = json!({});
            network["pod"] = json!({});
        } else {
            interface[if pass_through { "sriov" } else { "bridge" }] = json!({});
            network["multus"] = json!({"networkName": builder::multus_network_name(&destination)});
        }
        if vm.guest.lacks_nic(mac) {
            continue;
        }
        interfaces.push(interface);
        networks.push(network);
    }
    (interfaces, networks)
}
