//! Plays KubeVirt v1.9.0's virt-controller: a VirtualMachine to run gets its
//! VirtualMachineInstance, the VMI its virt-launcher pod with KubeVirt's resource requests, and
//! both report the pod's progress in their status as KubeVirt does (phases Pending, Scheduling,
//! Scheduled, Running; printableStatus Starting, Running, Stopped).

use crate::events::{Involved, NORMAL, Recorder, WARNING};
use crate::guest::Guests;
use crate::objects::{
    Scope, Stores, message, quantity_bytes, virtual_machine, virtual_machine_instance,
};
use crate::retry::Keyed;
use crate::sizing;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const LAUNCHER_IMAGE: &str = "quay.io/kubevirt/virt-launcher:v1.9.0";
/// `pkg/virt-controller/services/template.go`, `ephemeralStorageOverheadSize`.
const EPHEMERAL_STORAGE: &str = "50M";
/// `pkg/virt-controller/services/serialconsolelog.go`, `resourcesForSerialConsoleLogContainer`.
const CONSOLE_LOG_REQUESTS: (&str, &str) = ("5m", "35M");
const CONSOLE_LOG_LIMITS: (&str, &str) = ("15m", "60M");
/// `pkg/virt-controller/services/template.go`, `DefaultMemoryLimitOverheadRatio`.
const MEMORY_LIMIT_RATIO: u64 = 2;

pub struct KubeVirtRole {
    client: Client,
    recorder: Recorder,
    retries: Keyed,
    pub cpu_allocation_ratio: u32,
    pub serial_console_log: bool,
    guests: Guests,
}

fn text<'a>(
    obj: &'a DynamicObject,
    f: impl Fn(&'a kube::core::ObjectMeta) -> &'a Option<String>,
) -> &'a str {
    f(&obj.metadata).as_deref().unwrap_or_default()
}

fn ns(obj: &DynamicObject) -> &str {
    text(obj, |m| &m.namespace)
}

fn name(obj: &DynamicObject) -> &str {
    text(obj, |m| &m.name)
}

fn uid(obj: &DynamicObject) -> &str {
    text(obj, |m| &m.uid)
}

/// Whether the VM should run (`runStrategy` Always or RerunOnFailure, or `running: true`).
fn should_run(vm: &DynamicObject) -> bool {
    let spec = &vm.data["spec"];
    matches!(
        spec["runStrategy"].as_str(),
        Some("Always" | "RerunOnFailure")
    ) || spec["running"] == true
}

/// Launcher pods by the uid of the VMI that created them.
fn launchers(pods: &[Arc<Pod>]) -> HashMap<String, Arc<Pod>> {
    pods.iter()
        .filter_map(|p| {
            let uid = p.metadata.labels.as_ref()?.get("kubevirt.io/created-by")?;
            Some((uid.clone(), p.clone()))
        })
        .collect()
}

impl KubeVirtRole {
    pub fn new(
        client: Client,
        cpu_allocation_ratio: u32,
        serial_console_log: bool,
        guests: Guests,
    ) -> KubeVirtRole {
        KubeVirtRole {
            guests,
            recorder: Recorder::new(client.clone(), "virtualmachine-controller"),
            client,
            retries: Keyed::default(),
            cpu_allocation_ratio,
            serial_console_log,
        }
    }

    pub async fn reconcile(&mut self, vms: &Store<DynamicObject>, stores: &Stores, scope: &Scope) {
        let vmis = stores.vmis.state();
        let vmi_index = crate::objects::by_name(&vmis);
        let launchers = launchers(&stores.pods.state());
        // The source VM each VirtualMachine came from (Forklift's `vmID` label), by namespace/name.
        let mut source_ids = HashMap::new();
        for vm in vms.state() {
            if let Some(id) = vm.metadata.labels.as_ref().and_then(|l| l.get("vmID")) {
                source_ids.insert((ns(&vm).to_string(), name(&vm).to_string()), id.clone());
            }
        }
        for vm in vms.state() {
            if !scope.contains(ns(&vm)) || vm.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let vmi = vmi_index
                .get(&(ns(&vm).to_string(), name(&vm).to_string()))
                .cloned();
            let key = uid(&vm).to_string();
            if self.retries.due(&key) {
                let result = match (&vmi, should_run(&vm)) {
                    (None, true) => self.create_vmi(&vm).await.map(|_| true),
                    (Some(i), false) => self.delete_vmi(i).await.map(|_| true),
                    _ => Ok(false),
                };
                self.settle(&key, result);
            }
            self.vm_status(&vm, vmi.as_deref()).await;
        }
        for vmi in &vmis {
            if !scope.contains(ns(vmi)) || vmi.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let key = uid(vmi).to_string();
            let pod = launchers.get(uid(vmi)).cloned();
            if pod.is_none() && self.retries.due(&key) && vmi.data["status"]["phase"] != "Running" {
                let result = self.create_launcher(vmi, stores).await;
                self.settle(&key, result.map(|_| true));
            }
            let source_id = source_ids.get(&(ns(vmi).to_string(), name(vmi).to_string()));
            self.vmi_status(vmi, pod.as_deref(), source_id.map(String::as_str))
                .await;
        }
    }

    fn settle(&mut self, key: &str, result: Result<bool, String>) {
        match result {
            Ok(true) => self.retries.pause(key, Duration::from_millis(200)),
            Ok(false) => {}
            Err(e) => {
                let delay = self.retries.failed(key);
                tracing::info!("{e}; retrying in {} ms", delay.as_millis());
            }
        }
    }

    /// The VM controller's VMI: the template's metadata and spec, owned by the VM, with the
    /// defaults the VMI mutator sets that matter here (architecture, machine type).
    async fn create_vmi(&self, vm: &DynamicObject) -> Result<(), String> {
        let ar = virtual_machine_instance();
        let template = &vm.data["spec"]["template"];
        let mut spec = template["spec"].clone();
        spec["architecture"] = Value::from("amd64");
        spec["domain"]["machine"] = json!({"type": "q35"});
        let mut labels = template["metadata"]["labels"].clone();
        if !labels.is_object() {
            labels = json!({});
        }
        labels["kubevirt.io/vm"] = Value::from(name(vm));
        let body: DynamicObject = serde_json::from_value(json!({
            "apiVersion": ar.api_version, "kind": ar.kind,
            "metadata": {"name": name(vm), "namespace": ns(vm), "labels": labels,
                "annotations": {"kubevirt.io/vm-generation": vm.metadata.generation.unwrap_or(1).to_string()},
                "ownerReferences": [{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                    "name": name(vm), "uid": uid(vm), "controller": true, "blockOwnerDeletion": true}]},
            "spec": spec,
        }))
        .map_err(|e| e.to_string())?;
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns(vm), &ar);
        api.create(&PostParams::default(), &body)
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "VirtualMachineInstance {}/{}: {}",
                    ns(vm),
                    name(vm),
                    message(&e)
                )
            })
    }

    async fn delete_vmi(&self, vmi: &DynamicObject) -> Result<(), String> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), ns(vmi), &virtual_machine_instance());
        api.delete(name(vmi), &DeleteParams::default())
            .await
            .map(|_| ())
            .map_err(|e| message(&e))
    }

    /// `lifecycle.go`: render the launcher manifest and create the pod; a refusal is a Warning
    /// `FailedCreate` Event on the VMI ("Error creating pod: <the API server's message>") and a
    /// retry with backoff.
    async fn create_launcher(
        &mut self,
        vmi: &DynamicObject,
        stores: &Stores,
    ) -> Result<(), String> {
        let pod = self.launcher(vmi, stores);
        let pod: Pod = serde_json::from_value(pod).map_err(|e| e.to_string())?;
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns(vmi));
        let involved = Involved::new(
            "kubevirt.io/v1",
            "VirtualMachineInstance",
            ns(vmi),
            name(vmi),
            uid(vmi),
        );
        match api.create(&PostParams::default(), &pod).await {
            Ok(made) => {
                let text = format!(
                    "Created virtual machine pod {}",
                    made.metadata.name.unwrap_or_default()
                );
                self.recorder
                    .record(&involved, NORMAL, "SuccessfulCreate", &text)
                    .await;
                Ok(())
            }
            Err(e) => {
                let text = format!("Error creating pod: {}", message(&e));
                self.recorder
                    .record(&involved, WARNING, "FailedCreate", &text)
                    .await;
                Err(format!(
                    "VirtualMachineInstance {}/{}: {text}",
                    ns(vmi),
                    name(vmi)
                ))
            }
        }
    }

    /// `TemplateService.renderLaunchManifest`, the parts that count: the compute container's
    /// resources (`newResourceRenderer`, `VMIResourcePredicates`), the serial console log
    /// sidecar, the VMI's PVCs as volumes, labels and owner.
    fn launcher(&self, vmi: &DynamicObject, stores: &Stores) -> Value {
        let domain = &vmi.data["spec"]["domain"];
        let count = |k: &str| domain["cpu"][k].as_u64().unwrap_or(1).max(1);
        let vcpus = count("sockets") * count("cores") * count("threads");
        let guest = domain["memory"]["guest"]
            .as_str()
            .and_then(quantity_bytes)
            .or_else(|| domain["memory"]["guest"].as_u64())
            .unwrap_or(0);
        let tpm = domain["devices"]["tpm"].is_object();
        let requests = sizing::launcher_requests(vcpus, guest, tpm, self.cpu_allocation_ratio);
        let mut resources = json!({
            "requests": {"cpu": requests.cpu, "memory": requests.memory_bytes.to_string(),
                "ephemeral-storage": EPHEMERAL_STORAGE},
            "limits": {"devices.kubevirt.io/kvm": "1", "devices.kubevirt.io/tun": "1",
                "devices.kubevirt.io/vhost-net": "1"},
        });
        // `doesVMIRequireAutoResourceLimits`: a ResourceQuota on limits.cpu / limits.memory in
        // the namespace makes KubeVirt set limits (vCPUs; memory request x 2).
        let quota_limits = |resource: &str| {
            stores.quotas.state().iter().any(|q| {
                q.metadata.namespace.as_deref() == Some(ns(vmi))
                    && q.spec
                        .as_ref()
                        .and_then(|s| s.hard.as_ref())
                        .is_some_and(|h| h.contains_key(resource))
            })
        };
        if quota_limits("limits.cpu") {
            resources["limits"]["cpu"] = Value::from(vcpus.to_string());
        }
        if quota_limits("limits.memory") {
            resources["limits"]["memory"] =
                Value::from((requests.memory_bytes * MEMORY_LIMIT_RATIO).to_string());
        }
        let volumes: Vec<Value> = vmi.data["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| {
                let claim = v["persistentVolumeClaim"]["claimName"].as_str()?;
                Some(json!({"name": v["name"], "persistentVolumeClaim": {"claimName": claim}}))
            })
            .collect();
        let mut init = Vec::new();
        if self.serial_console_log {
            init.push(json!({"name": "guest-console-log", "image": LAUNCHER_IMAGE,
                "command": ["/usr/bin/virt-tail"], "restartPolicy": "Always",
                "resources": {
                    "requests": {"cpu": CONSOLE_LOG_REQUESTS.0, "memory": CONSOLE_LOG_REQUESTS.1},
                    "limits": {"cpu": CONSOLE_LOG_LIMITS.0, "memory": CONSOLE_LOG_LIMITS.1}}}));
        }
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": format!("virt-launcher-{}-", name(vmi)), "namespace": ns(vmi),
                "labels": {"kubevirt.io": "virt-launcher", "kubevirt.io/created-by": uid(vmi),
                    "vm.kubevirt.io/name": name(vmi)},
                "annotations": {"kubevirt.io/domain": name(vmi),
                    "kubectl.kubernetes.io/default-container": "compute"},
                "ownerReferences": [{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                    "name": name(vmi), "uid": uid(vmi), "controller": true, "blockOwnerDeletion": true}]},
            "spec": {
                "containers": [{"name": "compute", "image": LAUNCHER_IMAGE,
                    "command": ["/usr/bin/virt-launcher-monitor"], "resources": resources}],
                "initContainers": init,
                "volumes": volumes,
                "nodeSelector": {"kubevirt.io/schedulable": "true"},
                "restartPolicy": "Never",
                "automountServiceAccountToken": false,
            },
        })
    }

    /// The VMI's phase and conditions from its pod (`lifecycle.go` `updateStatus`); once it runs,
    /// what virt-handler adds from the guest (`vm.go` `updateGuestAgentConditions`, guest OS and
    /// interfaces): see crate::guest. A guest the world says does not boot fails the VMI.
    async fn vmi_status(&self, vmi: &DynamicObject, pod: Option<&Pod>, source_id: Option<&str>) {
        let pod_status = pod.and_then(|p| p.status.as_ref());
        let pod_phase = pod_status.and_then(|s| s.phase.clone()).unwrap_or_default();
        let node = pod
            .and_then(|p| p.spec.as_ref())
            .and_then(|s| s.node_name.clone());
        let pod_ip = pod_status.and_then(|s| s.pod_ip.clone());
        let guest = self.guests.report(
            source_id.unwrap_or_default(),
            &vmi.data["spec"],
            pod_ip.as_deref(),
        );
        let phase = match (pod, node.as_deref(), pod_phase.as_str()) {
            (None, _, _) => "Pending",
            (Some(_), None, _) => "Scheduling",
            (Some(_), Some(_), "Running") if !guest.boots => "Failed",
            (Some(_), Some(_), "Running") => "Running",
            (Some(_), Some(_), "Failed") => "Failed",
            (Some(_), Some(_), _) => "Scheduled",
        };
        let current = &vmi.data["status"];
        if current["phase"] == phase && current["nodeName"].as_str() == node.as_deref() {
            return;
        }
        let now = crate::conditions::now();
        let running = phase == "Running";
        let mut conditions = vec![
            json!({"type": "Ready", "status": if running { "True" } else { "False" },
            "lastProbeTime": null, "lastTransitionTime": now}),
        ];
        if running && guest.agent {
            conditions.push(json!({"type": "AgentConnected", "status": "True",
                "lastProbeTime": now, "lastTransitionTime": null}));
        }
        let mut status = json!({"phase": phase, "conditions": conditions,
            "phaseTransitionTimestamps": [{"phase": phase, "phaseTransitionTimestamp": now}],
            "guestOSInfo": if running { guest.guest_os } else { json!({}) },
            "qosClass": "Burstable", "launcherContainerImageVersion": LAUNCHER_IMAGE,
            "machine": {"type": "q35"}, "migrationMethod": "BlockMigration", "migrationTransport": "Unix"});
        if let (Some(p), Some(n)) = (pod, &node) {
            status["nodeName"] = Value::from(n.clone());
            status["activePods"] = json!({p.metadata.uid.clone().unwrap_or_default(): n});
        }
        if running {
            status["interfaces"] = guest.interfaces;
        }
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), ns(vmi), &virtual_machine_instance());
        if let Err(e) = api
            .patch(
                name(vmi),
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": status})),
            )
            .await
        {
            tracing::debug!(
                "VirtualMachineInstance {}/{}: {}",
                ns(vmi),
                name(vmi),
                message(&e)
            );
        }
    }

    /// The VM's printableStatus, ready and created (`vm.go` `updateStatus`).
    async fn vm_status(&self, vm: &DynamicObject, vmi: Option<&DynamicObject>) {
        let vmi_phase = vmi.map(|i| i.data["status"]["phase"].as_str().unwrap_or("Pending"));
        let (printable, ready) = match (vmi_phase, should_run(vm)) {
            (None, false) => ("Stopped", false),
            (None, true) | (Some("Pending" | "Scheduling" | "Scheduled"), _) => ("Starting", false),
            (Some("Running"), _) => ("Running", true),
            (Some(_), _) => ("Stopped", false),
        };
        let current = &vm.data["status"];
        if current["printableStatus"] == printable
            && current["ready"] == ready
            && current["created"] == vmi.is_some()
        {
            return;
        }
        let status = json!({"printableStatus": printable, "ready": ready, "created": vmi.is_some(),
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                "lastProbeTime": null, "lastTransitionTime": crate::conditions::now()}]});
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), ns(vm), &virtual_machine());
        if let Err(e) = api
            .patch_status(
                name(vm),
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": status})),
            )
            .await
        {
            tracing::debug!("VirtualMachine {}/{}: {}", ns(vm), name(vm), message(&e));
        }
    }
}
