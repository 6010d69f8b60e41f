//! The cluster side: credentials as kubectl finds them (`--kubeconfig`, KUBECONFIG, `--context`),
//! the Plans' statuses (which source VM became which VirtualMachine, and whether it succeeded),
//! their NetworkMaps, and the VirtualMachines, VMIs and PVCs of the migrated VMs.

use crate::checks::MapEntry;
use common::{Error, Result};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use plan_run::kubeerr;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn plans() -> ApiResource {
    resource("forklift.konveyor.io", "v1beta1", "Plan", "plans")
}

fn network_maps() -> ApiResource {
    resource(
        "forklift.konveyor.io",
        "v1beta1",
        "NetworkMap",
        "networkmaps",
    )
}

fn virtual_machines() -> ApiResource {
    resource("kubevirt.io", "v1", "VirtualMachine", "virtualmachines")
}

fn virtual_machine_instances() -> ApiResource {
    resource(
        "kubevirt.io",
        "v1",
        "VirtualMachineInstance",
        "virtualmachineinstances",
    )
}

/// A client for the cluster kubectl would talk to, and its default namespace.
pub async fn connect(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<(Client, String)> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            std::fs::metadata(path).map_err(|e| {
                Error::config(format!(
                    "{}: cannot read the kubeconfig: {e}",
                    path.display()
                ))
            })?;
            let raw = Kubeconfig::read_from(path)
                .map_err(|e| Error::config(format!("{}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(raw, &options)
                .await
                .map_err(|e| Error::config(format!("{}: {e}", path.display())))?
        }
        None if context.is_some() => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| Error::config(format!("no cluster credentials: {e}")))?,
        None => Config::infer()
            .await
            .map_err(|e| Error::config(format!("no cluster credentials: {e}")))?,
    };
    let namespace = config.default_namespace.clone();
    let url = config.cluster_url.to_string();
    let url = url.trim_end_matches('/').to_string();
    let client = Client::try_from(config).map_err(|e| kubeerr::error(&url, &e))?;
    client
        .apiserver_version()
        .await
        .map_err(|e| kubeerr::error(&url, &e))?;
    Ok((client, namespace))
}

/// Where a source VM went, as its Plan's status says.
#[derive(Debug, Clone, Default)]
pub struct Migrated {
    /// `namespace/name` of the Plan.
    pub plan: String,
    pub succeeded: bool,
    /// The VM's terminal condition, or its phase while it has none.
    pub state: String,
    pub namespace: String,
    pub target: String,
    pub network_map: Vec<MapEntry>,
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

/// The VM's outcome in `status.migration.vms[]`: a terminal condition (Succeeded, Failed,
/// Canceled), else its phase.
fn vm_state(vm: &Value) -> (bool, String) {
    let conditions = vm["conditions"].as_array().into_iter().flatten();
    let terminal =
        conditions
            .filter(|c| c["status"] == "True")
            .find_map(|c| match text(c, "type") {
                t @ ("Succeeded" | "Failed" | "Canceled") => Some(t.to_string()),
                _ => None,
            });
    match terminal {
        Some(t) => (t == "Succeeded", t),
        None => (
            false,
            format!("phase {}", vm["phase"].as_str().unwrap_or("unknown")),
        ),
    }
}

/// Every source VM id the Plans in `namespace` (all namespaces when None) name in their status,
/// with where it went. A VM in several Plans: the one where it succeeded wins.
pub async fn migrated(
    client: &Client,
    namespace: Option<&str>,
) -> Result<HashMap<String, Migrated>> {
    let list = |ar: &ApiResource| match namespace {
        Some(ns) => Api::<DynamicObject>::namespaced_with(client.clone(), ns, ar),
        None => Api::<DynamicObject>::all_with(client.clone(), ar),
    };
    let where_ = namespace.map_or("all namespaces".to_string(), |n| format!("namespace {n}"));
    let plan_list = list(&plans())
        .list(&ListParams::default())
        .await
        .map_err(|e| kubeerr::error(&format!("Plans in {where_}"), &e))?;
    let maps = list(&network_maps())
        .list(&ListParams::default())
        .await
        .map_err(|e| kubeerr::error(&format!("NetworkMaps in {where_}"), &e))?;
    let mut out: HashMap<String, Migrated> = HashMap::new();
    for plan in &plan_list.items {
        let plan_ns = plan.metadata.namespace.clone().unwrap_or_default();
        let spec = &plan.data["spec"];
        let map_ref = &spec["map"]["network"];
        let map_ns = map_ref["namespace"].as_str().unwrap_or(&plan_ns);
        let network_map = maps
            .items
            .iter()
            .find(|m| {
                m.metadata.name.as_deref() == Some(text(map_ref, "name"))
                    && m.metadata.namespace.as_deref() == Some(map_ns)
            })
            .map(|m| map_entries(&m.data))
            .unwrap_or_default();
        let vms = plan.data["status"]["migration"]["vms"].as_array();
        for vm in vms.into_iter().flatten() {
            let (succeeded, state) = vm_state(vm);
            let target = [
                text(vm, "newName"),
                text(vm, "targetName"),
                text(vm, "name"),
            ]
            .into_iter()
            .find(|t| !t.is_empty())
            .unwrap_or_default();
            let entry = Migrated {
                plan: format!(
                    "{plan_ns}/{}",
                    plan.metadata.name.as_deref().unwrap_or_default()
                ),
                succeeded,
                state,
                namespace: text(spec, "targetNamespace").to_string(),
                target: target.to_string(),
                network_map: network_map.clone(),
            };
            let id = text(vm, "id").to_string();
            if out.get(&id).is_none_or(|known| !known.succeeded) {
                out.insert(id, entry);
            }
        }
    }
    Ok(out)
}

fn map_entries(map: &Value) -> Vec<MapEntry> {
    map["spec"]["map"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|pair| {
            let (source, destination) = (&pair["source"], &pair["destination"]);
            MapEntry {
                source_id: text(source, "id").to_string(),
                source_name: text(source, "name").to_string(),
                kind: text(destination, "type").to_string(),
                namespace: text(destination, "namespace").to_string(),
                name: text(destination, "name").to_string(),
            }
        })
        .collect()
}

/// Reads of one namespace's objects, each as JSON (`None`: not found).
pub struct Objects {
    client: Client,
}

impl Objects {
    pub fn new(client: Client) -> Objects {
        Objects { client }
    }

    async fn get(&self, ar: &ApiResource, namespace: &str, name: &str) -> Result<Option<Value>> {
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, ar);
        let found = api
            .get_opt(name)
            .await
            .map_err(|e| kubeerr::error(&format!("{} {namespace}/{name}", ar.kind), &e))?;
        Ok(found.and_then(|o| serde_json::to_value(o).ok()))
    }

    pub async fn virtual_machine(&self, namespace: &str, name: &str) -> Result<Option<Value>> {
        self.get(&virtual_machines(), namespace, name).await
    }

    pub async fn instance(&self, namespace: &str, name: &str) -> Result<Option<Value>> {
        self.get(&virtual_machine_instances(), namespace, name)
            .await
    }

    /// The PVCs of `claims` in `namespace`, by name (those not found are left out).
    pub async fn claims(
        &self,
        namespace: &str,
        claims: &[String],
    ) -> Result<HashMap<String, Value>> {
        let api: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
            Api::namespaced(self.client.clone(), namespace);
        let mut out = HashMap::new();
        for claim in claims {
            let found = api.get_opt(claim).await.map_err(|e| {
                kubeerr::error(&format!("PersistentVolumeClaim {namespace}/{claim}"), &e)
            })?;
            if let Some(pvc) = found.and_then(|p| serde_json::to_value(p).ok()) {
                out.insert(claim.clone(), pvc);
            }
        }
        Ok(out)
    }

    /// `--start`: sets the VirtualMachine to run (`runStrategy: Always`, dropping the deprecated
    /// `running`), as `virtctl start` does for a halted VM.
    pub async fn start(&self, namespace: &str, name: &str) -> Result<()> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &virtual_machines());
        let patch = json!({"spec": {"runStrategy": "Always", "running": null}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|e| kubeerr::error(&format!("starting VirtualMachine {namespace}/{name}"), &e))
    }
}
