//! The Forklift operator's traces of the version installed, which plan-run reads: for a release,
//! the ClusterServiceVersion OLM installs (`forklift-operator.v2.12.5`, spec.version, as
//! operator/config/manifests/bases/forklift-operator.clusterserviceversion.yaml names it); for
//! main, a ForkliftController and the `forklift-controller` Deployment the operator makes from it
//! (roles/forkliftcontroller/templates/controller/deployment-controller.yml.j2), its image tagged
//! `latest` (the development builds; the CRD's own example, forkliftcontrollers.yaml:107). Written
//! only with --namespace, into that namespace; a kind the API server lacks is skipped.

use crate::FIELD_MANAGER;
use common::forklift::ForkliftVersion;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use serde_json::{Value, json};

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// The objects that say which Forklift runs, for `version`.
pub fn objects(version: ForkliftVersion, ns: &str) -> Vec<(ApiResource, Value)> {
    match version {
        ForkliftVersion::V2_12 => vec![(
            resource(
                "operators.coreos.com",
                "v1alpha1",
                "ClusterServiceVersion",
                "clusterserviceversions",
            ),
            json!({"apiVersion": "operators.coreos.com/v1alpha1", "kind": "ClusterServiceVersion",
                   "metadata": {"name": "forklift-operator.v2.12.5", "namespace": ns},
                   "spec": {"displayName": "Forklift Operator", "version": "2.12.5"}}),
        )],
        ForkliftVersion::Main => vec![
            (
                resource(
                    "forklift.konveyor.io",
                    "v1beta1",
                    "ForkliftController",
                    "forkliftcontrollers",
                ),
                json!({"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "ForkliftController",
                       "metadata": {"name": "forklift-controller", "namespace": ns}, "spec": {}}),
            ),
            (
                resource("apps", "v1", "Deployment", "deployments"),
                json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "forklift-controller", "namespace": ns,
                                    "labels": {"app": "forklift", "control-plane": "controller-manager"}},
                       "spec": {"replicas": 0,
                                "selector": {"matchLabels": {"app": "forklift", "control-plane": "controller-manager"}},
                                "template": {"metadata": {"labels": {"app": "forklift", "control-plane": "controller-manager"}},
                                             "spec": {"containers": [{"name": "main",
                                                 "image": "quay.io/kubev2v/forklift-controller:latest"}]}}}}),
            ),
        ],
    }
}

/// Applies `objects(version, ns)`; failures are logged, not fatal (an API server without OLM's
/// CRD has no place for a CSV, as a cluster without OLM).
pub async fn announce(client: &kube::Client, version: ForkliftVersion, ns: &str) {
    for (resource, object) in objects(version, ns) {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if let Err(e) = api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&object),
            )
            .await
        {
            tracing::info!("{} {ns}/{name} not written: {e}", resource.kind);
        }
    }
}
