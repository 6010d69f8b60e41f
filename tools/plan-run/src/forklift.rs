//! The Forklift the cluster runs, against the version plan-gen preflighted the manifests for (a
//! warning before anything is applied when they differ), and Forklift's MacConflicts check,
//! repeated against the VirtualMachines in the cluster before a plan starts.

use crate::manifest::Object;
use common::forklift::plan::{self, MacConflict, VM_MACS_ANNOTATION};
use common::forklift::{FORKLIFT_VERSION_ANNOTATION, ForkliftVersion};

/// A destination VM as `plan::mac_conflicts` takes it: namespace/name and its MACs.
type DestinationVm = (String, Vec<String>);
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What the cluster says of its Forklift: the version text and the object that says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub reported: String,
    pub source: String,
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// Lists `resource` in namespace `ns`, or cluster-wide; a kind the server lacks or a list it
/// forbids gives nothing.
async fn list(
    client: &kube::Client,
    resource: &ApiResource,
    ns: Option<&str>,
) -> Vec<DynamicObject> {
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    };
    api.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

/// `namespace/name`.
fn ns_name(object: &DynamicObject) -> String {
    format!(
        "{}/{}",
        object.metadata.namespace.as_deref().unwrap_or_default(),
        object.metadata.name.as_deref().unwrap_or_default()
    )
}

fn describe(object: &DynamicObject, kind: &str) -> String {
    format!("{kind} {}", ns_name(object))
}

/// The Forklift version the cluster runs, looked for first in the plans' namespaces: the
/// operator's ClusterServiceVersion (OLM, `spec.version`; named `forklift-operator.v<version>`
/// upstream, operator/config/manifests/bases/forklift-operator.clusterserviceversion.yaml, and
/// `mtv-operator.v<version>` downstream), else the image tag of the `forklift-controller`
/// Deployment next to a ForkliftController (the operator's
/// roles/forkliftcontroller/templates/controller/deployment-controller.yml.j2). The
/// ForkliftController's own status carries no version (its CRD: arbitrary Ansible status).
pub async fn installed(client: &kube::Client, namespaces: &BTreeSet<String>) -> Option<Installed> {
    let scopes = namespaces.iter().map(|ns| Some(ns.as_str())).chain([None]);
    for scope in scopes {
        if let Some(found) = installed_in(client, scope).await {
            return Some(found);
        }
    }
    None
}

/// `installed` in one namespace, or cluster-wide.
async fn installed_in(client: &kube::Client, scope: Option<&str>) -> Option<Installed> {
    let csv = resource(
        "operators.coreos.com",
        "v1alpha1",
        "ClusterServiceVersion",
        "clusterserviceversions",
    );
    for object in list(client, &csv, scope).await {
        let name = object.metadata.name.as_deref().unwrap_or_default();
        if (name.starts_with("forklift-operator.") || name.starts_with("mtv-operator."))
            && let Some(version) = object.data["spec"]["version"].as_str()
        {
            return Some(Installed {
                reported: version.to_string(),
                source: describe(&object, "ClusterServiceVersion"),
            });
        }
    }
    let controllers = resource(
        "forklift.konveyor.io",
        "v1beta1",
        "ForkliftController",
        "forkliftcontrollers",
    );
    let deployments = resource("apps", "v1", "Deployment", "deployments");
    for controller in list(client, &controllers, scope).await {
        let ns = controller.metadata.namespace.clone().unwrap_or_default();
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &deployments);
        let Ok(deployment) = api.get("forklift-controller").await else {
            continue;
        };
        let image = deployment.data["spec"]["template"]["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|c| {
                c["image"]
                    .as_str()
                    .filter(|i| i.contains("forklift-controller"))
            });
        if let Some(tag) = image.and_then(image_tag) {
            return Some(Installed {
                reported: tag.to_string(),
                source: format!(
                    "{} image {}",
                    describe(&deployment, "Deployment"),
                    image.unwrap_or_default()
                ),
            });
        }
    }
    None
}

/// The tag of an image reference (`quay.io/kubev2v/forklift-controller:v2.12.5`); None for a
/// digest or no tag.
fn image_tag(image: &str) -> Option<&str> {
    if image.contains('@') {
        return None;
    }
    let last = image.rsplit('/').next()?;
    last.split_once(':').map(|(_, tag)| tag)
}

/// The versions the input's Plans were preflighted for (the annotation's values; `None` for a
/// Plan without it, written by a plan-gen before versions).
pub fn preflighted(objects: &[Object]) -> BTreeSet<Option<String>> {
    objects
        .iter()
        .filter(|o| o.kind() == "Plan")
        .map(|o| {
            o.value["metadata"]["annotations"][FORKLIFT_VERSION_ANNOTATION]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

/// The warning when the manifests were preflighted for another Forklift than the cluster's.
pub fn mismatch(preflighted: &BTreeSet<Option<String>>, installed: &Installed) -> Option<String> {
    let wanted: BTreeSet<&str> = preflighted.iter().flatten().map(String::as_str).collect();
    if wanted.is_empty() {
        return None;
    }
    let list = wanted.iter().copied().collect::<Vec<_>>().join(", ");
    let rules = ForkliftVersion::of_installed(&installed.reported);
    match rules {
        Some(v) if wanted.len() == 1 && wanted.contains(v.as_str()) => None,
        Some(v) => Some(format!(
            "the cluster runs Forklift {} ({}), whose rules are liftkit's {v}; the manifests were preflighted for {list}: run plan-gen --forklift-version {v} again, or expect Forklift to refuse or accept VMs the preflight did not",
            installed.reported, installed.source
        )),
        None => Some(format!(
            "the cluster runs Forklift {} ({}), a version whose rules liftkit does not know (it knows {}); the manifests were preflighted for {list}",
            installed.reported,
            installed.source,
            ForkliftVersion::list()
        )),
    }
}

/// The MACs of a Plan's VMs, from plan-gen's annotation (VM id → MACs); empty without it.
pub fn plan_macs(plan: &Value) -> BTreeMap<String, Vec<String>> {
    plan["metadata"]["annotations"][VM_MACS_ANNOTATION]
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

/// Forklift's MacConflicts against the VirtualMachines now in the cluster, per source VM id:
/// `common::forklift::plan::mac_conflicts` over every VM's interfaces, leaving out a VM Forklift
/// created from the same source VM (label `vmID`, v2.12.5 pkg/controller/plan/kubevirt.go:123):
/// that one is the VM itself, migrated before (Forklift skips VMs that succeeded).
pub async fn live_mac_conflicts(
    client: &kube::Client,
    macs: &BTreeMap<String, Vec<String>>,
) -> Result<Vec<(String, Vec<MacConflict>)>, kube::Error> {
    if macs.is_empty() {
        return Ok(Vec::new());
    }
    let vms = resource("kubevirt.io", "v1", "VirtualMachine", "virtualmachines");
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &vms);
    let all = api.list(&ListParams::default()).await?.items;
    // Each cluster VM's Forklift vmID label and (namespace/name, MACs), read once.
    let cluster: Vec<(Option<&String>, DestinationVm)> = all
        .iter()
        .map(|o| {
            let vm_id = o.metadata.labels.as_ref().and_then(|l| l.get("vmID"));
            (vm_id, (ns_name(o), plan::virtual_machine_macs(&o.data)))
        })
        .collect();
    let mut out = Vec::new();
    for (vm_id, source) in macs {
        let destination: Vec<(String, Vec<String>)> = cluster
            .iter()
            .filter(|(id, _)| *id != Some(vm_id))
            .map(|(_, vm)| vm.clone())
            .collect();
        let source: Vec<&str> = source.iter().map(String::as_str).collect();
        let conflicts = plan::mac_conflicts(&source, &destination);
        if !conflicts.is_empty() {
            out.push((vm_id.clone(), conflicts));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags() {
        assert_eq!(
            image_tag("quay.io/kubev2v/forklift-controller:v2.12.5"),
            Some("v2.12.5")
        );
        assert_eq!(
            image_tag("registry:5000/forklift-controller:latest"),
            Some("latest")
        );
        assert_eq!(image_tag("registry:5000/forklift-controller"), None);
        assert_eq!(image_tag("quay.io/x/forklift-controller@sha256:abc"), None);
    }

    #[test]
    fn mismatches() {
        let installed = |v: &str| Installed {
            reported: v.to_string(),
            source: "CSV".into(),
        };
        let wanted = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect();
        assert_eq!(mismatch(&wanted(&["2.12"]), &installed("2.12.5")), None);
        assert!(
            mismatch(&wanted(&["main"]), &installed("2.12.5"))
                .unwrap()
                .contains("--forklift-version 2.12")
        );
        assert!(
            mismatch(&wanted(&["2.12"]), &installed("2.13.0"))
                .unwrap()
                .contains("does not know")
        );
        assert_eq!(
            mismatch(&BTreeSet::from([None]), &installed("2.13.0")),
            None
        );
    }
}
