//! Forklift's condition shape (type, status, reason, category, message, items, durable,
//! lastTransitionTime) and the few rules around it: blockers, readiness, transition times.

use serde_json::{Value, json};

pub const CRITICAL: &str = "Critical";
pub const ERROR: &str = "Error";
pub const WARN: &str = "Warn";
pub const REQUIRED: &str = "Required";
pub const ADVISORY: &str = "Advisory";

/// A condition with status True; lastTransitionTime is added by [`stamp`].
pub fn cond(kind: &str, category: &str, reason: &str, message: &str) -> Value {
    json!({"type": kind, "status": "True", "category": category, "reason": reason, "message": message})
}

/// The same, listing the objects concerned (`items`), as Forklift does for per-VM findings.
pub fn cond_items(
    kind: &str,
    category: &str,
    reason: &str,
    message: &str,
    items: Vec<String>,
) -> Value {
    let mut c = cond(kind, category, reason, message);
    c["items"] = Value::from(items);
    c
}

/// A durable condition (kept across reconciles: results of an execution).
pub fn durable(mut c: Value) -> Value {
    c["durable"] = Value::Bool(true);
    c
}

/// Forklift's item text for a VM reference.
pub fn vm_item(reference: &Value) -> String {
    format!(
        "id:{} name:'{}'",
        reference["id"].as_str().unwrap_or_default(),
        reference["name"].as_str().unwrap_or_default()
    )
}

pub fn has_blocker(conditions: &[Value]) -> bool {
    conditions
        .iter()
        .any(|c| c["status"] == "True" && (c["category"] == CRITICAL || c["category"] == ERROR))
}

pub fn is_true(status: &Value, kind: &str) -> bool {
    status["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == kind && c["status"] == "True")
    })
}

pub fn find<'a>(status: &'a Value, kind: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// Gives each condition its lastTransitionTime: the previous one when the same type had the same
/// status before, else `now`.
pub fn stamp(mut conditions: Vec<Value>, previous: &Value, now: &str) -> Vec<Value> {
    for c in &mut conditions {
        let kind = c["type"].as_str().unwrap_or_default().to_string();
        let kept = find(previous, &kind)
            .filter(|old| old["status"] == c["status"])
            .and_then(|old| old["lastTransitionTime"].as_str().map(str::to_string));
        c["lastTransitionTime"] = Value::from(kept.unwrap_or_else(|| now.to_string()));
    }
    conditions
}

/// The current time as Kubernetes writes it.
pub fn now() -> String {
    kube_time(jiff::Timestamp::now())
}

/// A time as Kubernetes writes it (metav1.Time: RFC 3339, whole seconds, UTC).
pub fn kube_time(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Seconds since an RFC 3339 time, for resuming timed steps; 0 when unparsable.
pub fn secs_since(timestamp: &str) -> f64 {
    (timestamp.parse::<jiff::Timestamp>())
        .map(|t| {
            jiff::Timestamp::now()
                .duration_since(t)
                .as_secs_f64()
                .max(0.0)
        })
        .unwrap_or(0.0)
}
