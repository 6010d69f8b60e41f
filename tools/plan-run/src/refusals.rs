//! Refusals in the plans' target namespaces: Warning Events saying that the API server (a
//! ResourceQuota, an admission plugin) or the storage refused an object that Forklift, its volume
//! populator, CDI or KubeVirt tried to create there. A refused populator pod or prime PVC leaves a
//! VM waiting with no progress and no error in the Plan status; the Event is the only trace.

use serde_json::Value;
use std::collections::HashSet;

/// Why an object was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A ResourceQuota: `exceeded quota: NAME, requested: ...` or `failed quota: NAME: must
    /// specify requests.cpu` (kube-apiserver's ResourceQuota admission plugin).
    Quota,
    /// The storage could not provision a volume (`ProvisioningFailed`, as external provisioners
    /// and the PV controller report it).
    Capacity,
    /// Another admission refusal (`... is forbidden: ...`, a webhook that denied the request).
    Admission,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Quota => "quota",
            Cause::Capacity => "capacity",
            Cause::Admission => "admission",
        }
    }
}

/// One refusal, as the Event reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub namespace: String,
    /// `Kind/name` of the object the Event is about (a PVC, a Pod, a DataVolume...).
    pub object: String,
    pub reason: String,
    /// The Event's message: the API server's or provisioner's words, verbatim.
    pub message: String,
    pub cause: Cause,
}

/// What a Warning Event says, when it says that something was refused.
pub fn classify(event: &Value) -> Option<Cause> {
    if event["type"].as_str() != Some("Warning") {
        return None;
    }
    classify_text(
        event["message"].as_str().unwrap_or_default(),
        event["reason"].as_str().unwrap_or_default(),
    )
}

/// What a refusal's message (and an Event's reason) say.
fn classify_text(message: &str, reason: &str) -> Option<Cause> {
    if message.contains("exceeded quota") || message.contains("failed quota") {
        Some(Cause::Quota)
    } else if reason == "ProvisioningFailed" {
        Some(Cause::Capacity)
    } else if message.contains("is forbidden") || message.contains("denied the request") {
        Some(Cause::Admission)
    } else {
        None
    }
}

/// When the Event last happened: series, lastTimestamp, eventTime, then creation.
fn last_seen(event: &Value) -> Option<jiff::Timestamp> {
    [
        &event["series"]["lastObservedTime"],
        &event["lastTimestamp"],
        &event["eventTime"],
        &event["metadata"]["creationTimestamp"],
    ]
    .into_iter()
    .find_map(|v| v.as_str()?.parse().ok())
}

/// The refusals seen so far, each reported once.
pub struct Refusals {
    /// Events older than this are history from an earlier run, not news.
    since: jiff::Timestamp,
    seen: HashSet<(String, String, String)>,
    pub list: Vec<Refusal>,
}

impl Refusals {
    /// Refusals last seen from `since` on count (give some slack for clocks that disagree).
    pub fn new(since: jiff::Timestamp) -> Refusals {
        Refusals {
            since,
            seen: HashSet::new(),
            list: Vec::new(),
        }
    }

    /// The refusal a failed VM's error in the Plan status reports (Forklift's plan controller
    /// puts the API server's message there when it could not create a PVC, a populator or the
    /// VirtualMachine), when it is one and has not been reported yet.
    pub fn observe_vm_error(&mut self, namespace: &str, error: &str) -> Option<&Refusal> {
        let cause = classify_text(error, "")?;
        // The API server's words: `<resource> "<name>" is forbidden: ...`.
        let object = error
            .split_once(" is forbidden")
            .and_then(|(head, _)| {
                let (resource, name) = head.rsplit_once(" \"")?;
                let resource = resource.rsplit(' ').next()?;
                Some(format!("{resource}/{}", name.trim_end_matches('"')))
            })
            .unwrap_or_else(|| "?".to_string());
        self.push(Refusal {
            namespace: namespace.to_string(),
            object,
            reason: "VMFailed".to_string(),
            message: error.to_string(),
            cause,
        })
    }

    fn push(&mut self, refusal: Refusal) -> Option<&Refusal> {
        let key = (
            refusal.namespace.clone(),
            refusal.object.clone(),
            refusal.message.clone(),
        );
        if !self.seen.insert(key) {
            return None;
        }
        self.list.push(refusal);
        self.list.last()
    }

    /// The refusal `event` reports, when it is one and has not been reported yet.
    pub fn observe(&mut self, event: &Value) -> Option<&Refusal> {
        let cause = classify(event)?;
        if last_seen(event).is_some_and(|t| t < self.since) {
            return None;
        }
        let involved = &event["involvedObject"];
        let refusal = Refusal {
            namespace: event["metadata"]["namespace"]
                .as_str()
                .or(involved["namespace"].as_str())
                .unwrap_or_default()
                .to_string(),
            object: format!(
                "{}/{}",
                involved["kind"].as_str().unwrap_or("?"),
                involved["name"].as_str().unwrap_or("?")
            ),
            reason: event["reason"].as_str().unwrap_or_default().to_string(),
            message: event["message"].as_str().unwrap_or_default().to_string(),
            cause,
        };
        self.push(refusal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, reason: &str, message: &str, last: &str) -> Value {
        json!({"type": kind, "reason": reason, "message": message, "lastTimestamp": last,
               "metadata": {"namespace": "alice-ns", "name": "e1"},
               "involvedObject": {"kind": "PersistentVolumeClaim", "name": "prime-1", "namespace": "alice-ns"}})
    }

    #[test]
    fn quota_capacity_and_admission_are_told_apart() {
        // kube-apiserver's quota admission messages (plugin/pkg/admission/resourcequota).
        let quota = "persistentvolumeclaims \"prime-1\" is forbidden: exceeded quota: q, requested: requests.storage=10Gi, used: requests.storage=95Gi, limited: requests.storage=100Gi";
        assert_eq!(
            classify(&event("Warning", "X", quota, "")),
            Some(Cause::Quota)
        );
        let must = "pods \"populate-1\" is forbidden: failed quota: q: must specify requests.cpu for: populate";
        assert_eq!(
            classify(&event("Warning", "X", must, "")),
            Some(Cause::Quota)
        );
        assert_eq!(
            classify(&event("Warning", "ProvisioningFailed", "no space", "")),
            Some(Cause::Capacity)
        );
        assert_eq!(
            classify(&event(
                "Warning",
                "X",
                "pods \"p\" is forbidden: violates PodSecurity",
                ""
            )),
            Some(Cause::Admission)
        );
        assert_eq!(classify(&event("Normal", "X", quota, "")), None);
        assert_eq!(
            classify(&event("Warning", "BackOff", "restarting", "")),
            None
        );
    }

    #[test]
    fn each_refusal_once_and_old_ones_not_at_all() {
        let since: jiff::Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let mut r = Refusals::new(since);
        let old = event(
            "Warning",
            "ProvisioningFailed",
            "full",
            "2026-12-01T09:00:00Z",
        );
        assert!(r.observe(&old).is_none());
        let new = event(
            "Warning",
            "ProvisioningFailed",
            "full",
            "2026-12-01T10:00:05Z",
        );
        let got = r.observe(&new).unwrap();
        assert_eq!(got.object, "PersistentVolumeClaim/prime-1");
        assert_eq!(got.namespace, "alice-ns");
        assert!(
            r.observe(&new).is_none(),
            "a repeated Event is reported once"
        );
        assert_eq!(r.list.len(), 1);
    }

    #[test]
    fn a_vm_error_with_the_api_servers_refusal_names_the_object() {
        let mut r = Refusals::new(jiff::Timestamp::UNIX_EPOCH);
        let error = "persistentvolumeclaims \"vm-1-disk-0\" is forbidden: exceeded quota: q, requested: requests.storage=10Gi, used: requests.storage=95Gi, limited: requests.storage=100Gi";
        let got = r.observe_vm_error("alice-ns", error).unwrap();
        assert_eq!(got.object, "persistentvolumeclaims/vm-1-disk-0");
        assert_eq!(got.cause, Cause::Quota);
        assert!(
            r.observe_vm_error("alice-ns", "image copy failed")
                .is_none()
        );
    }
}
