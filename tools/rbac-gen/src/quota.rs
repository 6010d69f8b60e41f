//! capacity-calc's quota records (JSON lines, one per namespace) turned into ResourceQuotas.

use common::k8s::{MANAGED_BY, MANAGED_BY_LABEL};
use common::{Error, Result};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// The ResourceQuota each namespace gets.
pub const QUOTA_NAME: &str = "liftkit-quota";

/// Reads the quota records: namespace -> `spec.hard` (resource name -> quantity).
pub fn load(path: &Path) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
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

fn parse(value: &Value) -> std::result::Result<(String, BTreeMap<String, String>), String> {
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
    Ok((namespace.to_string(), quantities(namespace, hard)?))
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
