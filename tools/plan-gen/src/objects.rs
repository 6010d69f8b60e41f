//! The Forklift objects: Secret, Providers, NetworkMap, StorageMap and the Plans, with target
//! names and the split of big namespaces into several plans.

use crate::preflight::{Checked, Used, Vm};
use crate::{Args, TARGET_NAMESPACE_LABEL, TOTAL_DISK_BYTES_ANNOTATION, VM_COUNT_ANNOTATION};
use common::forklift::FORKLIFT_VERSION_ANNOTATION;
use common::forklift::plan::VM_MACS_ANNOTATION;
use common::k8s::{MANAGED_BY, MANAGED_BY_LABEL, sorted_map};
use common::mapping::{AccessMode, Mappings};
use common::names;
use common::{Error, Result};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const API_VERSION: &str = "forklift.konveyor.io/v1beta1";

/// What the flags say about names and places, checked once.
pub struct Settings {
    pub namespace: String,
    pub provider: String,
    pub destination: String,
    pub secret: String,
    pub url: String,
    pub plan_name_template: String,
    pub max_vms: Option<u64>,
    pub max_bytes: Option<u64>,
    pub warm: bool,
    pub forklift_version: common::forklift::ForkliftVersion,
}

impl Settings {
    pub fn from_args(args: &Args) -> Result<Self> {
        let name_flag = |flag: &str, value: &str| -> Result<String> {
            if names::is_rfc1123_label(value) {
                Ok(value.to_string())
            } else {
                Err(Error::usage(format!(
                    "{flag} {value:?}: not a valid Kubernetes name (an RFC 1123 label)"
                )))
            }
        };
        let provider = name_flag("--provider", &args.provider)?;
        let secret = match &args.secret {
            Some(secret) => name_flag("--secret", secret)?,
            None => format!("{provider}-credentials"),
        };
        if !args.plan_name_template.contains("{namespace}") {
            return Err(Error::usage(format!(
                "--plan-name-template {:?}: must contain {{namespace}}, or plans of different namespaces share a name",
                args.plan_name_template
            )));
        }
        Ok(Settings {
            namespace: name_flag("--namespace", &args.namespace)?,
            destination: name_flag("--destination", &args.destination)?,
            provider,
            secret,
            url: engine_url(&args.engine.url)?,
            plan_name_template: args.plan_name_template.clone(),
            max_vms: args.max_vms_per_plan,
            max_bytes: args.max_size_per_plan,
            warm: args.warm,
            forklift_version: args.forklift_version,
        })
    }

    fn plan_name(&self, namespace: &str, part: Option<usize>) -> Result<String> {
        let base = self
            .plan_name_template
            .replace("{namespace}", namespace)
            .replace("{provider}", &self.provider);
        let name = match part {
            Some(n) => format!("{base}-{n}"),
            None => base,
        };
        if names::is_rfc1123_label(&name) {
            Ok(name)
        } else {
            Err(Error::usage(format!(
                "--plan-name-template {:?} gives {name:?}, not a valid Kubernetes name (an RFC 1123 label)",
                self.plan_name_template
            )))
        }
    }

    fn reference(&self, name: &str) -> Value {
        json!({"name": name, "namespace": self.namespace})
    }

    fn metadata(&self, name: &str) -> Value {
        json!({"name": name, "namespace": self.namespace, "labels": {MANAGED_BY_LABEL: MANAGED_BY}})
    }
}

/// The engine API base Forklift needs: `https://host/ovirt-engine/api` (added when only the host
/// is given).
fn engine_url(text: &str) -> Result<String> {
    let bad = |why: &str| Error::usage(format!("--url {text:?}: {why}"));
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or_else(|| bad("expected https://ENGINE/ovirt-engine/api"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad("no engine host"));
    }
    let path = path.trim_end_matches('/');
    let scheme = &text[..text.len() - rest.len()];
    match path {
        "" => Ok(format!("{scheme}{host}/ovirt-engine/api")),
        "ovirt-engine/api" => Ok(format!("{scheme}{host}/{path}")),
        _ => Err(bad(
            "expected the API base, https://ENGINE/ovirt-engine/api",
        )),
    }
}

/// The engine credentials for `--with-secret`. Never printed.
pub struct Credentials {
    user: String,
    password: String,
    ca: Option<String>,
}

impl Credentials {
    pub fn load(args: &Args, _settings: &Settings) -> Result<Self> {
        let user = args.engine.user()?.to_string();
        let password = args.engine.password()?.unwrap_or_default();
        if password.is_empty() {
            return Err(Error::config(
                "--with-secret needs the engine password: set OVIRT_PASSWORD or give --password-file",
            ));
        }
        let ca_file = args.engine.ca_file.as_ref();
        let ca = match ca_file.filter(|_| !args.insecure_skip_verify) {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::config(format!("{}: cannot read the CA file: {e}", path.display()))
                })?;
                if !text.contains("-----BEGIN CERTIFICATE-----") {
                    return Err(Error::config(format!(
                        "{}: not a PEM certificate",
                        path.display()
                    )));
                }
                Some(text)
            }
            None if args.insecure_skip_verify => None,
            None => {
                return Err(Error::config(
                    "--with-secret needs the engine CA (--ca-file) or --insecure-skip-verify",
                ));
            }
        };
        Ok(Credentials { user, password, ca })
    }
}

/// Rejects what the mapping syntax allows but Forklift's StorageMap does not.
pub fn check_maps(maps: &Mappings) -> Result<()> {
    for rule in maps.storage.rules() {
        if rule.destination.access_mode == Some(AccessMode::ReadWriteOncePod) {
            return Err(Error::usage(format!(
                "{}: access mode ReadWriteOncePod is not one Forklift's StorageMap accepts",
                rule.origin
            )));
        }
    }
    Ok(())
}

pub fn build(
    settings: &Settings,
    checked: &Checked,
    credentials: Option<&Credentials>,
) -> Result<Vec<Value>> {
    let mut objects = providers(settings, credentials);
    let providers = json!({
        "source": settings.reference(&settings.provider),
        "destination": settings.reference(&settings.destination),
    });

    let map_name = format!("{}-{}", settings.provider, settings.destination);
    objects.push(json!({
        "apiVersion": API_VERSION,
        "kind": "NetworkMap",
        "metadata": settings.metadata(&map_name),
        "spec": {"provider": providers, "map": map_entries(&checked.networks)},
    }));
    objects.push(json!({
        "apiVersion": API_VERSION,
        "kind": "StorageMap",
        "metadata": settings.metadata(&map_name),
        "spec": {"provider": providers, "map": map_entries(&checked.storage)},
    }));

    let mut by_namespace: BTreeMap<&str, Vec<&Vm>> = BTreeMap::new();
    for vm in &checked.vms {
        by_namespace.entry(&vm.namespace).or_default().push(vm);
    }
    for (namespace, vms) in by_namespace {
        let target_names = target_names(&vms);
        let parts = split(settings, &vms);
        for (index, part) in parts.iter().enumerate() {
            let part = PlanPart {
                namespace,
                vms: part,
                index,
                count: parts.len(),
                target_names: &target_names,
            };
            objects.push(plan(settings, &part, &providers, &map_name)?);
        }
    }
    Ok(objects)
}

/// The source Provider (with its Secret under `--with-secret`) and, for the local cluster, the
/// destination Provider `host`.
fn providers(settings: &Settings, credentials: Option<&Credentials>) -> Vec<Value> {
    let mut objects = Vec::new();
    if let Some(credentials) = credentials {
        let mut data = vec![
            ("user", Value::from(credentials.user.clone())),
            ("password", Value::from(credentials.password.clone())),
            ("url", Value::from(settings.url.clone())),
        ];
        match &credentials.ca {
            Some(ca) => data.push(("ca.crt", Value::from(ca.clone()))),
            None => data.push(("insecureSkipVerify", Value::from("true"))),
        }
        objects.push(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": settings.metadata(&settings.secret),
            "type": "Opaque",
            "stringData": sorted_map(data),
        }));
    }
    objects.push(json!({
        "apiVersion": API_VERSION,
        "kind": "Provider",
        "metadata": settings.metadata(&settings.provider),
        "spec": {"type": "ovirt", "url": settings.url, "secret": settings.reference(&settings.secret)},
    }));
    if settings.destination == "host" {
        // The local cluster: type openshift, no url, no credentials.
        objects.push(json!({
            "apiVersion": API_VERSION,
            "kind": "Provider",
            "metadata": settings.metadata("host"),
            "spec": {"type": "openshift", "secret": {}},
        }));
    }
    objects
}

/// A NetworkMap's or StorageMap's `spec.map`: one entry per mapped source the plans use.
fn map_entries<D: serde::Serialize>(used: &BTreeMap<String, Used<D>>) -> Vec<Value> {
    used.iter()
        .filter_map(|(id, used)| {
            let destination = serde_json::to_value(used.destination.as_ref()?).ok()?;
            Some(
                json!({"source": source_ref(id, used.name.as_deref()), "destination": destination}),
            )
        })
        .collect()
}

/// One Plan's share of a namespace's VMs: part `index` of `count`.
struct PlanPart<'a> {
    namespace: &'a str,
    vms: &'a [&'a Vm],
    index: usize,
    count: usize,
    target_names: &'a BTreeMap<&'a str, String>,
}

/// The Plan of one part, its annotations saying what it moves.
fn plan(settings: &Settings, part: &PlanPart, providers: &Value, map_name: &str) -> Result<Value> {
    let (namespace, numbered) = (part.namespace, part.count > 1);
    let name = settings.plan_name(namespace, numbered.then_some(part.index + 1))?;
    let total = common::size::sum_bytes(part.vms.iter().map(|vm| vm.disk_bytes));
    let vm_refs: Vec<Value> = part
        .vms
        .iter()
        .map(|vm| {
            let mut entry = json!({"id": vm.record.id, "name": vm.record.name});
            if let Some(target) = part.target_names.get(vm.record.id.as_str()) {
                entry["targetName"] = Value::from(target.clone());
            }
            entry
        })
        .collect();
    let macs: serde_json::Map<String, Value> = part
        .vms
        .iter()
        .filter_map(|vm| {
            let macs: Vec<&str> = vm
                .record
                .nics()
                .iter()
                .filter_map(|n| n.mac.as_deref())
                .collect();
            (!macs.is_empty()).then(|| (vm.record.id.clone(), json!(macs)))
        })
        .collect();
    let description = if numbered {
        format!(
            "oVirt VMs for namespace {namespace}, part {} of {}, by liftkit",
            part.index + 1,
            part.count
        )
    } else {
        format!("oVirt VMs for namespace {namespace}, by liftkit")
    };
    let mut spec = json!({
        "description": description,
        "targetNamespace": namespace,
        "type": if settings.warm { "warm" } else { "cold" },
        "provider": providers,
        "map": {
            "network": settings.reference(map_name),
            "storage": settings.reference(map_name),
        },
        "vms": vm_refs,
    });
    if settings.warm {
        // Forklift releases before `type` read only the deprecated flag.
        spec["warm"] = Value::from(true);
    }
    Ok(json!({
        "apiVersion": API_VERSION,
        "kind": "Plan",
        "metadata": {
            "name": name,
            "namespace": settings.namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, TARGET_NAMESPACE_LABEL: namespace},
            "annotations": {
                TOTAL_DISK_BYTES_ANNOTATION: total.to_string(),
                VM_COUNT_ANNOTATION: part.vms.len().to_string(),
                FORKLIFT_VERSION_ANNOTATION: settings.forklift_version.as_str(),
                VM_MACS_ANNOTATION: Value::Object(macs).to_string(),
            },
        },
        "spec": spec,
    }))
}

fn source_ref(id: &str, name: Option<&str>) -> Value {
    match name {
        Some(name) => json!({"id": id, "name": name}),
        None => json!({"id": id}),
    }
}

/// Target names where the oVirt name will not do: not a DNS-1123 label, or already taken in the
/// namespace by a VM earlier in (name, id) order. Valid names are claimed first, so a VM never
/// loses its own name to another's sanitised one.
fn target_names<'a>(vms: &[&'a Vm]) -> BTreeMap<&'a str, String> {
    let mut taken: BTreeSet<String> = BTreeSet::new();
    let mut names_out = BTreeMap::new();
    let mut later = Vec::new();
    for vm in vms {
        let name = vm.record.name.as_str();
        if names::is_rfc1123_label(name) && taken.insert(name.to_string()) {
            continue;
        }
        later.push(*vm);
    }
    for vm in later {
        let base = names::sanitize_label(&vm.record.name);
        let name = if taken.contains(&base) {
            names::with_suffix(&base, &names::stable_hash(&[vm.record.id.as_str()]))
        } else {
            base
        };
        taken.insert(name.clone());
        names_out.insert(vm.record.id.as_str(), name);
    }
    names_out
}

/// Splits a namespace's VMs (in name order) into plans within the limits; a VM bigger than the
/// size limit gets a plan of its own.
fn split<'a>(settings: &Settings, vms: &[&'a Vm]) -> Vec<Vec<&'a Vm>> {
    let mut parts: Vec<Vec<&Vm>> = Vec::new();
    let mut current: Vec<&Vm> = Vec::new();
    let mut bytes = 0u64;
    for vm in vms {
        let too_many = settings
            .max_vms
            .is_some_and(|max| current.len() as u64 + 1 > max);
        let too_big = settings
            .max_bytes
            .is_some_and(|max| bytes.saturating_add(vm.disk_bytes) > max);
        if !current.is_empty() && (too_many || too_big) {
            parts.push(std::mem::take(&mut current));
            bytes = 0;
        }
        if settings.max_bytes.is_some_and(|max| vm.disk_bytes > max) {
            tracing::warn!(
                "VM {} needs {} of disk, more than --max-size-per-plan: it gets a plan of its own",
                vm.record.name,
                common::size::human_bytes(vm.disk_bytes)
            );
        }
        bytes = bytes.saturating_add(vm.disk_bytes);
        current.push(vm);
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_urls() {
        assert_eq!(
            engine_url("https://e.example.com").unwrap(),
            "https://e.example.com/ovirt-engine/api"
        );
        assert_eq!(
            engine_url("https://e:8443/ovirt-engine/api/").unwrap(),
            "https://e:8443/ovirt-engine/api"
        );
        assert!(engine_url("e.example.com").is_err());
        assert!(engine_url("https://e/api").is_err());
    }
}
