//! Plays kube-scheduler and one kubelet: a pod the API server admitted is bound to the node
//! (pods/binding) once every claim it mounts is Bound (else it stays Pending, Unschedulable, as
//! the scheduler's VolumeBinding plugin leaves it), then runs; it ends when the simulation says
//! its work is done (a populator pod when its disk is copied), or runs on (virt-launcher).

use crate::FIELD_MANAGER;
use crate::objects::{Scope, Stores, message};
use crate::retry::Keyed;
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::time::Duration;

/// The one node forklift-sim's kubelet plays.
pub const NODE_NAME: &str = "forklift-sim-node";

/// What becomes of a running pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Run,
    Succeed,
    Fail,
}

pub struct NodeRole {
    client: Client,
    retries: Keyed,
    registered: bool,
}

fn pod_key(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// An address for the pod, stable across restarts (derived from its uid).
fn pod_ip(pod: &Pod) -> String {
    let uid = pod_key(pod);
    let bytes = uid.as_bytes();
    let a = bytes
        .iter()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(*b)));
    format!("10.128.{}.{}", (a >> 8) % 256, a % 254 + 1)
}

type Claims = std::collections::HashMap<(String, String), std::sync::Arc<PersistentVolumeClaim>>;

/// Why the scheduler would not place the pod yet, if it would not: a claim missing or unbound.
fn unschedulable(pod: &Pod, pvcs: &Claims) -> Option<String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let spec = pod.spec.as_ref()?;
    for volume in spec.volumes.iter().flatten() {
        let Some(claim) = &volume.persistent_volume_claim else {
            continue;
        };
        match pvcs.get(&(ns.clone(), claim.claim_name.clone())) {
            None => {
                return Some(format!(
                    "0/1 nodes are available: persistentvolumeclaim \"{}\" not found. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
                    claim.claim_name
                ));
            }
            Some(c) if c.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound") => {
                return Some("0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.".to_string());
            }
            Some(_) => {}
        }
    }
    None
}

impl NodeRole {
    pub fn new(client: Client) -> NodeRole {
        NodeRole {
            client,
            retries: Keyed::default(),
            registered: false,
        }
    }

    /// One pass over the pods in scope, the pods side by side (as a kubelet's pod workers).
    pub async fn reconcile(&mut self, stores: &Stores, scope: &Scope, fate: &dyn Fn(&Pod) -> Fate) {
        if !self.registered {
            self.registered = self.register().await;
        }
        let pvcs = crate::objects::by_name(&stores.pvcs.state());
        let pods: Vec<_> = stores
            .pods
            .state()
            .into_iter()
            .filter(|p| scope.contains(p.metadata.namespace.as_deref().unwrap_or_default()))
            .filter(|p| self.retries.due(&pod_key(p)))
            .collect();
        let this = &*self;
        let results =
            futures::future::join_all(pods.iter().map(|pod| this.step(pod, &pvcs, fate))).await;
        for (pod, result) in pods.iter().zip(results) {
            let key = pod_key(pod);
            match result {
                Ok(true) => self.retries.pause(&key, Duration::from_millis(200)),
                Ok(false) => self.retries.succeeded(&key),
                Err(e) => {
                    let delay = self.retries.failed(&key);
                    tracing::info!(
                        "pod {}/{}: {}; retrying in {} ms",
                        pod.metadata.namespace.as_deref().unwrap_or_default(),
                        pod.metadata.name.as_deref().unwrap_or_default(),
                        message(&e),
                        delay.as_millis()
                    );
                }
            }
        }
    }

    /// What the scheduler or the kubelet does next with a pod. Ok(true): something was written.
    async fn step(
        &self,
        pod: &Pod,
        pvcs: &Claims,
        fate: &dyn Fn(&Pod) -> Fate,
    ) -> Result<bool, kube::Error> {
        let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
        let deleting = pod.metadata.deletion_timestamp.is_some();
        match (node, phase(pod)) {
            // The kubelet stops the containers and removes the pod (grace period 0).
            (Some(NODE_NAME), _) if deleting => self.remove(pod).await,
            _ if deleting => Ok(false),
            (None, "Pending") => self.schedule(pod, pvcs).await,
            (Some(NODE_NAME), "Pending") => self.start(pod).await,
            (Some(NODE_NAME), "Running") => match fate(pod) {
                Fate::Run => Ok(false),
                Fate::Succeed => self.finish(pod, true).await,
                Fate::Fail => self.finish(pod, false).await,
            },
            _ => Ok(false),
        }
    }

    /// The Node object, so that pods are bound to a node that exists.
    async fn register(&self) -> bool {
        let api: Api<Node> = Api::all(self.client.clone());
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let body = json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": NODE_NAME, "labels": {"kubernetes.io/hostname": NODE_NAME,
                "kubernetes.io/os": "linux", "kubevirt.io/schedulable": "true"}}});
        if let Err(e) = api.patch(NODE_NAME, &params, &Patch::Apply(&body)).await {
            tracing::warn!("node {NODE_NAME}: cannot register it: {}", message(&e));
            return false;
        }
        let status = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE_NAME},
        "status": {
            "capacity": {"cpu": "1000", "memory": "4Ti", "pods": "10000"},
            "allocatable": {"cpu": "1000", "memory": "4Ti", "pods": "10000"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "forklift-sim is posting ready status",
                "lastHeartbeatTime": crate::conditions::now(),
                "lastTransitionTime": crate::conditions::now()}],
        }});
        if let Err(e) = api
            .patch_status(NODE_NAME, &params, &Patch::Apply(&status))
            .await
        {
            tracing::warn!("node {NODE_NAME}: cannot write its status: {}", message(&e));
        }
        true
    }

    /// Binds the pod, or records why it cannot be placed (once per reason, as the scheduler's
    /// PodScheduled condition).
    async fn schedule(&self, pod: &Pod, pvcs: &Claims) -> Result<bool, kube::Error> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        if let Some(reason) = unschedulable(pod, pvcs) {
            let current = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"))
                .and_then(|c| c.message.clone());
            if current.as_deref() == Some(&reason) {
                return Ok(false);
            }
            let patch = json!({"status": {"conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": reason,
                "lastTransitionTime": crate::conditions::now()}]}});
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            return Ok(true);
        }
        let binding = json!({"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": name, "namespace": ns},
            "target": {"apiVersion": "v1", "kind": "Node", "name": NODE_NAME}});
        api.create_subresource::<_, Value>("binding", &name, &PostParams::default(), &binding)
            .await?;
        // The kubelet sees the pod at once (its own watch); no need to wait for ours.
        self.start(pod).await
    }

    /// The kubelet starts the containers: Running, with an address and ready conditions.
    async fn start(&self, pod: &Pod) -> Result<bool, kube::Error> {
        let now = crate::conditions::now();
        let containers: Vec<Value> = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .map(|c| {
                json!({"name": c.name, "image": c.image, "ready": true, "restartCount": 0,
                    "started": true, "state": {"running": {"startedAt": now}}})
            })
            .collect();
        let condition =
            |kind: &str| json!({"type": kind, "status": "True", "lastTransitionTime": now});
        let patch = json!({"status": {
            "phase": "Running", "hostIP": "192.168.122.10", "podIP": pod_ip(pod),
            "podIPs": [{"ip": pod_ip(pod)}], "startTime": now,
            "conditions": [condition("PodScheduled"), condition("Initialized"),
                condition("ContainersReady"), condition("Ready")],
            "containerStatuses": containers,
        }});
        self.patch_status(pod, &patch).await
    }

    /// The containers exit: Succeeded (exit code 0) or Failed (exit code 1).
    async fn finish(&self, pod: &Pod, success: bool) -> Result<bool, kube::Error> {
        let now = crate::conditions::now();
        let (phase, code, reason) = if success {
            ("Succeeded", 0, "Completed")
        } else {
            ("Failed", 1, "Error")
        };
        let containers: Vec<Value> = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .map(|c| {
                json!({"name": c.name, "image": c.image, "ready": false, "restartCount": 0,
                    "started": false, "state": {"terminated": {"exitCode": code, "reason": reason,
                    "finishedAt": now}}})
            })
            .collect();
        let condition = |kind: &str, status: &str| json!({"type": kind, "status": status, "lastTransitionTime": now});
        let patch = json!({"status": {
            "phase": phase,
            "conditions": [condition("PodScheduled", "True"), condition("Initialized", "True"),
                condition("ContainersReady", "False"), condition("Ready", "False")],
            "containerStatuses": containers,
        }});
        self.patch_status(pod, &patch).await
    }

    async fn remove(&self, pod: &Pod) -> Result<bool, kube::Error> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let params = kube::api::DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(kube::api::Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        match api.delete(name, &params).await {
            Err(e) if crate::objects::is_not_found(&e) || crate::objects::is_conflict(&e) => {
                Ok(false)
            }
            other => other.map(|_| true),
        }
    }

    async fn patch_status(&self, pod: &Pod, patch: &Value) -> Result<bool, kube::Error> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let name = pod.metadata.name.clone().unwrap_or_default();
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
        Ok(true)
    }
}
