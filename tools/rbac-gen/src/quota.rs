//! capacity-calc's quota records (JSON lines, one per namespace) turned into ResourceQuotas, and,
//! where a quota limits compute, a LimitRange giving pods that set no requests (or limits) some.

use common::footprint::{LIMIT_RANGE_DEFAULT_LIMIT, LIMIT_RANGE_DEFAULT_REQUEST};
use common::k8s::{MANAGED_BY, MANAGED_BY_LABEL};
use common::{Error, Result};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// The ResourceQuota each namespace gets.
pub const QUOTA_NAME: &str = "liftkit-quota";
/// The LimitRange written next to a quota that limits compute.
pub const LIMIT_RANGE_NAME: &str = "liftkit-defaults";

/// A namespace's quota: `spec.hard`, and the LimitRange defaults (resource -> quantity) the record
/// asks for: `default_request` and `default` (limits).
#[derive(Debug, Clone, PartialEq)]
pub struct Quota {
    pub hard: BTreeMap<String, String>,
    pub default_request: BTreeMap<String, String>,
    pub default_limit: BTreeMap<String, String>,
}

/// Reads the quota records: namespace -> quota.
pub fn load(path: &Path) -> Result<BTreeMap<String, Quota>> {
    let mut quotas = BTreeMap::new();
    let mut input = common::jsonl::Input::open(path)?;
    while let Some(value) = input.next_value::<Value>() {
        let value = value?;
        let location = input.location();
        let (namespace, hard) =
            parse(&value).map_err(|e| Error::data(format!("{location}: {e}")))?;
        if quotas.insert(namespace.clone(), hard).is_some() {
            return Err(Error::data(format!(
                "{location}: a second quota record for namespace {namespace}"
            )));
        }
    }
    Ok(quotas)
}

fn parse(value: &Value) -> std::result::Result<(String, Quota), String> {
    let shown = || value.to_string().chars().take(60).collect::<String>();
    let object = value
        .as_object()
        .ok_or_else(|| format!("expected a quota record, found {}", shown()))?;
    let namespace = object
        .get("namespace")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            format!(
                "expected a quota record (with namespace), found {}",
                shown()
            )
        })?;
    if !common::names::is_rfc1123_label(namespace) {
        return Err(format!(
            "namespace {namespace:?} is not a valid namespace name"
        ));
    }
    let hard = object
        .get("hard")
        .and_then(Value::as_object)
        .ok_or_else(|| format!("quota record for {namespace} has no `hard` object"))?;
    let defaults = |key: &str, built_in: (String, String)| -> std::result::Result<_, String> {
        match object.get("limit_range").and_then(|l| l.get(key)) {
            None => Ok(BTreeMap::from([
                ("cpu".to_string(), built_in.0),
                ("memory".to_string(), built_in.1),
            ])),
            Some(Value::Object(map)) => quantities(namespace, map),
            Some(other) => Err(format!(
                "quota for {namespace}: limit_range.{key} is {other}, expected an object of quantities"
            )),
        }
    };
    Ok((
        namespace.to_string(),
        Quota {
            hard: quantities(namespace, hard)?,
            default_request: defaults("default_request", LIMIT_RANGE_DEFAULT_REQUEST.quantities())?,
            default_limit: defaults("default", LIMIT_RANGE_DEFAULT_LIMIT.quantities())?,
        },
    ))
}

fn quantities(
    namespace: &str,
    hard: &Map<String, Value>,
) -> std::result::Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (resource, quantity) in hard {
        let text = match quantity {
            Value::String(s) if !s.is_empty() => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(format!(
                    "quota for {namespace}: {resource} is {other}, expected a quantity"
                ));
            }
        };
        out.insert(resource.clone(), text);
    }
    Ok(out)
}

pub fn resource_quota(namespace: &str, hard: &BTreeMap<String, String>) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {
            "name": QUOTA_NAME,
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY},
        },
        "spec": {"hard": hard},
    })
}

/// Whether a quota limits requests (`requests.cpu`, `requests.memory`, or bare `cpu`/`memory`,
/// which mean the same) and whether it limits limits (`limits.cpu`, `limits.memory`). Kubernetes
/// then refuses a pod whose containers leave that resource unset (quota admission).
fn limits_compute(hard: &BTreeMap<String, String>) -> (bool, bool) {
    let requests = ["requests.cpu", "requests.memory", "cpu", "memory"]
        .iter()
        .any(|r| hard.contains_key(*r));
    let limits = ["limits.cpu", "limits.memory"]
        .iter()
        .any(|r| hard.contains_key(*r));
    (requests, limits)
}

/// A LimitRange with default requests (and default limits when the quota limits limits) for
/// containers that set none, when the quota limits compute; None otherwise.
pub fn limit_range(namespace: &str, quota: &Quota) -> Option<Value> {
    let (requests, limits) = limits_compute(&quota.hard);
    if !requests && !limits {
        return None;
    }
    let mut item = Map::new();
    item.insert("type".into(), json!("Container"));
    item.insert("defaultRequest".into(), json!(quota.default_request));
    if limits {
        item.insert("default".into(), json!(quota.default_limit));
    }
    Some(json!({
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {
            "name": LIMIT_RANGE_NAME,
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY},
        },
        "spec": {"limits": [item]},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(hard: &[(&str, &str)]) -> Quota {
        let (_, value) = parse(&json!({
            "namespace": "ns",
            "hard": hard.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Map<_, _>>(),
        }))
        .unwrap();
        value
    }

    #[test]
    fn a_limit_range_exactly_where_compute_is_limited() {
        assert!(limit_range("ns", &quota(&[("requests.storage", "1Gi")])).is_none());
        assert!(limit_range("ns", &quota(&[("count/pods", "4")])).is_none());
        for resource in ["requests.cpu", "requests.memory", "cpu", "memory"] {
            let object = limit_range("ns", &quota(&[(resource, "1")])).unwrap();
            let item = &object["spec"]["limits"][0];
            assert_eq!(
                item["defaultRequest"],
                json!({"cpu": "100m", "memory": "512Mi"})
            );
            assert!(item.get("default").is_none(), "{resource}");
        }
        let object = limit_range("ns", &quota(&[("limits.memory", "8Gi")])).unwrap();
        assert_eq!(
            object["spec"]["limits"][0]["default"],
            json!({"cpu": "1", "memory": "1Gi"})
        );
    }

    #[test]
    fn the_record_s_defaults_win() {
        let (_, quota) = parse(&json!({
            "namespace": "ns",
            "hard": {"requests.cpu": "2"},
            "limit_range": {"default_request": {"cpu": "50m", "memory": "256Mi"}},
        }))
        .unwrap();
        assert_eq!(quota.default_request["memory"], "256Mi");
        assert_eq!(quota.default_limit["memory"], "1Gi");
        let bad = parse(&json!({"namespace": "ns", "hard": {}, "limit_range": {"default": 3}}));
        assert!(bad.unwrap_err().contains("limit_range.default"));
    }
}
