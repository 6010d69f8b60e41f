//! --verify-access: each owner the input binds (RoleBinding subjects, User or Group) may create
//! virtualmachines.kubevirt.io in the namespaces bound to them and in no other input namespace,
//! asked of the API server with SubjectAccessReviews.

use crate::events::Events;
use crate::kubeerr;
use crate::manifest::Object;
use common::{Error, ExitCode, Result};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// (kind, name) of a subject.
type Subject = (String, String);

/// Namespaces of the input, and where each subject is bound.
pub fn expectations(objects: &[Object]) -> (BTreeSet<String>, BTreeMap<Subject, BTreeSet<String>>) {
    let mut namespaces: BTreeSet<String> = objects
        .iter()
        .filter(|o| o.kind() == "Namespace")
        .map(|o| o.name().to_string())
        .collect();
    let mut bound: BTreeMap<Subject, BTreeSet<String>> = BTreeMap::new();
    for binding in objects.iter().filter(|o| o.kind() == "RoleBinding") {
        let Some(namespace) = binding.namespace() else {
            continue;
        };
        namespaces.insert(namespace.to_string());
        for subject in binding.value["subjects"].as_array().into_iter().flatten() {
            let kind = subject["kind"].as_str().unwrap_or_default();
            let name = subject["name"].as_str().unwrap_or_default();
            if matches!(kind, "User" | "Group") && !name.is_empty() {
                bound
                    .entry((kind.to_string(), name.to_string()))
                    .or_default()
                    .insert(namespace.to_string());
            }
        }
    }
    (namespaces, bound)
}

pub async fn verify(client: &kube::Client, objects: &[Object]) -> Result<ExitCode> {
    let (namespaces, bound) = expectations(objects);
    if bound.is_empty() {
        return Err(Error::data(
            "--verify-access: the input has no RoleBinding with a User or Group subject (give rbac-gen's output)",
        ));
    }
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let mut events = Events::stdout(true);
    let mut mismatches = Vec::new();
    let mut checks = 0;
    for ((kind, name), mine) in &bound {
        for namespace in &namespaces {
            let expected = mine.contains(namespace);
            let (user, groups) = if kind == "User" {
                (Some(name.clone()), vec!["system:authenticated".to_string()])
            } else {
                (None, vec![name.clone(), "system:authenticated".to_string()])
            };
            let review = SubjectAccessReview {
                spec: SubjectAccessReviewSpec {
                    user,
                    groups: Some(groups),
                    resource_attributes: Some(ResourceAttributes {
                        group: Some("kubevirt.io".into()),
                        resource: Some("virtualmachines".into()),
                        verb: Some("create".into()),
                        namespace: Some(namespace.clone()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let answer = api
                .create(&PostParams::default(), &review)
                .await
                .map_err(|e| kubeerr::error("SubjectAccessReview", &e))?;
            let allowed = answer.status.as_ref().is_some_and(|s| s.allowed);
            checks += 1;
            let ok = allowed == expected;
            events.emit(
                jiff::Timestamp::now(),
                "access",
                None,
                json!({"subject_kind": kind, "subject": name, "namespace": namespace,
                       "verb": "create", "resource": "virtualmachines.kubevirt.io",
                       "allowed": allowed, "expected": expected, "ok": ok}),
            )?;
            if !ok {
                mismatches.push(format!(
                    "{} {name} {} create VMs in {namespace}",
                    kind.to_lowercase(),
                    if allowed {
                        "may (should not)"
                    } else {
                        "may not (should)"
                    }
                ));
            }
        }
    }
    events.flush()?;
    if mismatches.is_empty() {
        eprintln!(
            "plan-run: access as expected: {} owner(s), {} namespace(s), {checks} check(s)",
            bound.len(),
            namespaces.len()
        );
        Ok(ExitCode::Ok)
    } else {
        for line in &mismatches {
            eprintln!("plan-run: access mismatch: {line}");
        }
        Ok(ExitCode::Findings)
    }
}
