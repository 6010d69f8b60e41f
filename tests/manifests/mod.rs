//! Shared by tests/rbac_gen.rs and tests/plan_gen.rs: the schemas every written object must meet
//! (Forklift's CRDs, Kubernetes' OpenAPI v3 definitions, both checked in under tests/fixtures),
//! and reading the tools' JSON-lines and YAML output.
#![allow(dead_code)]

use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const K8S_DEFINITIONS: &str = "tests/fixtures/k8s-schemas/k8s-v1.37.2-definitions.json";
pub const CRDS: &str = "tests/fixtures/forklift-crds";

pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Validators by (apiVersion, kind), plus one for ObjectMeta (CRD schemas leave metadata open).
pub struct Schemas {
    by_kind: HashMap<(String, String), jsonschema::Validator>,
    object_meta: jsonschema::Validator,
}

/// Unknown fields are errors, as with `kubectl apply --validate=strict`: every object schema that
/// lists its properties and says nothing of others gets `additionalProperties: false`.
fn strict(node: &mut Value) {
    match node {
        Value::Object(map) => {
            let open = map.contains_key("additionalProperties")
                || map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
            if map.contains_key("properties") && !open {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for value in map.values_mut() {
                strict(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

impl Schemas {
    pub fn load() -> Self {
        let mut by_kind = HashMap::new();

        let text = std::fs::read_to_string(fixture(K8S_DEFINITIONS)).unwrap();
        let mut doc: Value = serde_json::from_str(&text).unwrap();
        strict(&mut doc);
        let components = doc["components"].clone();
        let with_root = |name: &str| json!({"$ref": format!("#/components/schemas/{name}"), "components": components});
        for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
            for gvk in schema["x-kubernetes-group-version-kind"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let (group, version) = (
                    gvk["group"].as_str().unwrap(),
                    gvk["version"].as_str().unwrap(),
                );
                let api_version = if group.is_empty() {
                    version.to_string()
                } else {
                    format!("{group}/{version}")
                };
                let validator = jsonschema::validator_for(&with_root(name))
                    .unwrap_or_else(|e| panic!("schema {name}: {e}"));
                by_kind.insert(
                    (api_version, gvk["kind"].as_str().unwrap().to_string()),
                    validator,
                );
            }
        }
        let object_meta = jsonschema::validator_for(&with_root(
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        ))
        .unwrap();

        for entry in std::fs::read_dir(fixture(CRDS)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            let crd: Value = serde_norway::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let group = crd["spec"]["group"].as_str().unwrap();
            let kind = crd["spec"]["names"]["kind"].as_str().unwrap();
            for version in crd["spec"]["versions"].as_array().unwrap() {
                let mut schema = version["schema"]["openAPIV3Schema"].clone();
                strict(&mut schema);
                let validator = jsonschema::validator_for(&schema)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let api_version = format!("{group}/{}", version["name"].as_str().unwrap());
                by_kind.insert((api_version, kind.to_string()), validator);
            }
        }
        Schemas {
            by_kind,
            object_meta,
        }
    }

    /// Every way `object` breaks its kind's schema (empty when it is valid).
    pub fn errors(&self, object: &Value) -> Vec<String> {
        let api_version = object["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let Some(validator) = self.by_kind.get(&(api_version.clone(), kind.clone())) else {
            return vec![format!("no schema for {api_version} {kind}")];
        };
        let mut errors: Vec<String> = validator
            .iter_errors(object)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        errors.extend(
            self.object_meta
                .iter_errors(&object["metadata"])
                .map(|e| format!("metadata: {e} at {}", e.instance_path())),
        );
        match object["metadata"]["name"].as_str() {
            Some(name) if is_label(name) => {}
            other => errors.push(format!("name {other:?} is not an RFC 1123 label")),
        }
        if let Some(namespace) = object["metadata"]["namespace"]
            .as_str()
            .filter(|ns| !is_label(ns))
        {
            errors.push(format!("namespace {namespace:?} is not an RFC 1123 label"));
        }
        if object["metadata"]["labels"]["app.kubernetes.io/managed-by"] != "liftkit" {
            errors.push("not labelled app.kubernetes.io/managed-by: liftkit".into());
        }
        errors
    }

    /// Panics, naming the object and every violation, unless `object` is valid for its kind.
    pub fn check(&self, object: &Value) {
        let errors = self.errors(object);
        let what = format!(
            "{} {}/{}",
            object["kind"], object["metadata"]["namespace"], object["metadata"]["name"]
        );
        assert!(
            errors.is_empty(),
            "{what} does not match its schema:\n{}\n{object:#}",
            errors.join("\n")
        );
    }

    pub fn check_all(&self, objects: &[Value]) {
        assert!(!objects.is_empty(), "no objects written");
        for object in objects {
            self.check(object);
        }
    }
}

/// RFC 1123 label, written out here rather than taken from the code under test.
pub fn is_label(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Objects from JSON lines.
pub fn jsonl(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// Objects from a multi-document YAML stream, read by an independent parser.
pub fn yaml(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).unwrap();
    serde_norway::Deserializer::from_str(text)
        .map(|doc| {
            let value: Value =
                serde::Deserialize::deserialize(doc).unwrap_or_else(|e| panic!("{e}\n{text}"));
            value
        })
        .collect()
}

pub fn kinds(objects: &[Value], kind: &str) -> Vec<Value> {
    objects
        .iter()
        .filter(|o| o["kind"] == kind)
        .cloned()
        .collect()
}

pub fn object_map(value: &Value) -> &Map<String, Value> {
    value.as_object().unwrap()
}
