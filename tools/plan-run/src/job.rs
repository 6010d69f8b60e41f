//! What plan-run asks of the API server, as one list ([`needs`]), and `--print-job`: the
//! ServiceAccount, the least-privilege Roles and ClusterRole made from that list, a Secret holding
//! the manifests, and a batch/v1 Job running plan-run in the cluster with them.

use crate::lease::LeaseName;
use crate::manifest::{FORKLIFT_API_VERSION, Object, Plan, TOTAL_DISK_BYTES_ANNOTATION};
use crate::{Args, Bandwidth};
use common::k8s::{MANAGED_BY, MANAGED_BY_LABEL};
use common::{Error, Result};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Where the Job mounts the manifests, and the Secret's key holding them.
pub const MANIFESTS_DIR: &str = "/etc/liftkit";
pub const MANIFESTS_KEY: &str = "objects.jsonl";
/// What the API server stores at most in one Secret (etcd's request limit, 1 MiB of data).
const SECRET_LIMIT_BYTES: usize = 1 << 20;

/// One permission plan-run needs: verbs on a resource, in a namespace (`None`: cluster-wide), on
/// some objects by name (empty: any; a create by POST cannot be limited to names).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Need {
    pub namespace: Option<String>,
    pub group: String,
    pub resource: String,
    pub names: BTreeSet<String>,
    pub verbs: BTreeSet<&'static str>,
}

/// A need without its verbs: namespace, group, resource, names.
type Target = (Option<String>, String, String, BTreeSet<String>);

/// Collects needs, merging the verbs of the same resource, scope and names.
#[derive(Default)]
struct Needs(BTreeMap<Target, BTreeSet<&'static str>>);

impl Needs {
    fn add(
        &mut self,
        ns: Option<&str>,
        group: &str,
        resource: &str,
        names: &[&str],
        verbs: &[&'static str],
    ) {
        let names = names.iter().map(|n| n.to_string()).collect();
        let key = (
            ns.map(str::to_string),
            group.to_string(),
            resource.to_string(),
            names,
        );
        self.0.entry(key).or_default().extend(verbs);
    }

    fn into_vec(self) -> Vec<Need> {
        self.0
            .into_iter()
            .map(|((namespace, group, resource, names), verbs)| Need {
                namespace,
                group,
                resource,
                names,
                verbs,
            })
            .collect()
    }
}

/// The (API group, plural resource) of an object, as kube names a kind it has not discovered.
fn group_resource(object: &Object) -> (String, String) {
    let (group, version) = object
        .api_version()
        .rsplit_once('/')
        .unwrap_or(("", object.api_version()));
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, object.kind()));
    (group.to_string(), resource.plural)
}

/// Everything a live run of these objects does on the API server (besides /version and
/// discovery, which every authenticated user may read). Each line names the code that needs it.
pub fn needs(objects: &[Object], plans: &[Plan], lease: &LeaseName) -> Vec<Need> {
    let mut needs = Needs::default();
    // live::apply_all: server-side apply of every input object. An apply that creates the object
    // is authorized as a create of that name (apiserver endpoints/handlers/patch.go), so both
    // verbs are limited to the input's names.
    for object in objects {
        let (group, resource) = group_resource(object);
        let ns = object.namespace();
        needs.add(
            ns,
            &group,
            &resource,
            &[object.name()],
            &["create", "patch"],
        );
        // RBAC's escalation check: a Role granting what plan-run does not hold needs `escalate`
        // on it, a binding needs `bind` on the role it refers to.
        match object.kind() {
            "Role" | "ClusterRole" => {
                needs.add(ns, &group, &resource, &[object.name()], &["escalate"]);
            }
            "RoleBinding" | "ClusterRoleBinding" => {
                let role = &object.value["roleRef"];
                let role_resource = match role["kind"].as_str() {
                    Some("Role") => "roles",
                    _ => "clusterroles",
                };
                if let Some(name) = role["name"].as_str() {
                    needs.add(
                        ns,
                        "rbac.authorization.k8s.io",
                        role_resource,
                        &[name],
                        &["bind"],
                    );
                }
            }
            _ => {}
        }
    }
    let forklift = FORKLIFT_API_VERSION.split('/').next().unwrap_or_default();
    let plan_namespaces: BTreeSet<&str> = plans.iter().map(|p| p.key.namespace.as_str()).collect();
    for ns in plan_namespaces {
        // live::run: the watches of Plans and Migrations; the Migrations plan-run creates (by
        // POST: any name); cancel_running reads and patches the running ones.
        needs.add(Some(ns), forklift, "plans", &[], &["list", "watch"]);
        needs.add(
            Some(ns),
            forklift,
            "migrations",
            &[],
            &["create", "get", "list", "patch", "watch"],
        );
    }
    // lease::acquire and renew: create (by POST), then read and renew its own Lease only.
    needs.add(
        Some(&lease.namespace),
        "coordination.k8s.io",
        "leases",
        &[],
        &["create"],
    );
    needs.add(
        Some(&lease.namespace),
        "coordination.k8s.io",
        "leases",
        &[&lease.name],
        &["get", "update"],
    );
    // live::event_watches: refusals (quota, storage) in the target namespaces.
    let targets: BTreeSet<&str> = plans
        .iter()
        .filter_map(|p| p.target_namespace.as_deref())
        .collect();
    for ns in targets {
        needs.add(Some(ns), "", "events", &[], &["list", "watch"]);
    }
    // forklift::installed: which Forklift the cluster runs (a warning only when forbidden).
    needs.add(
        None,
        "operators.coreos.com",
        "clusterserviceversions",
        &[],
        &["list"],
    );
    needs.add(None, forklift, "forkliftcontrollers", &[], &["list"]);
    needs.add(
        None,
        "apps",
        "deployments",
        &["forklift-controller"],
        &["get"],
    );
    // forklift::live_mac_conflicts: every VirtualMachine's MACs, as Forklift's check reads them.
    needs.add(None, "kubevirt.io", "virtualmachines", &[], &["list"]);
    needs.into_vec()
}

/// RBAC rules for some needs, one rule per need.
fn rules(needs: &[&Need]) -> Vec<Value> {
    needs
        .iter()
        .map(|n| {
            let mut rule =
                json!({"apiGroups": [n.group], "resources": [n.resource], "verbs": n.verbs});
            if !n.names.is_empty() {
                rule["resourceNames"] = json!(n.names);
            }
            rule
        })
        .collect()
}

fn metadata(name: &str, namespace: Option<&str>) -> Value {
    let mut meta = json!({"name": name, "labels": {MANAGED_BY_LABEL: MANAGED_BY}});
    if let Some(ns) = namespace {
        meta["namespace"] = Value::from(ns);
    }
    meta
}

/// The objects `--print-job` writes, in the order `kubectl apply -f` needs them: the input's
/// Namespaces (so the Roles can land in them), the ServiceAccount, the Secret with the manifests,
/// a Role and RoleBinding per namespace, the ClusterRole and its binding, and the Job.
pub fn objects(
    args: &Args,
    objects: &[Object],
    plans: &[Plan],
    lease: &LeaseName,
) -> Result<Vec<Value>> {
    let ns = lease.namespace.as_str();
    let name = lease.name.as_str();
    let mut out: Vec<Value> = objects
        .iter()
        .filter(|o| o.kind() == "Namespace")
        .map(|o| o.value.clone())
        .collect();
    out.push(
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(name, Some(ns))}),
    );
    out.push(manifests_secret(objects, plans, name, ns)?);
    let needs = needs(objects, plans, lease);
    let subject = json!([{"kind": "ServiceAccount", "name": name, "namespace": ns}]);
    let mut by_namespace: BTreeMap<Option<&str>, Vec<&Need>> = BTreeMap::new();
    for need in &needs {
        by_namespace
            .entry(need.namespace.as_deref())
            .or_default()
            .push(need);
    }
    for (scope, needs) in &by_namespace {
        let (role_kind, binding_kind) = match scope {
            Some(_) => ("Role", "RoleBinding"),
            None => ("ClusterRole", "ClusterRoleBinding"),
        };
        // A ClusterRole's name is cluster-wide: the namespace keeps two Jobs' roles apart.
        let role_name = match scope {
            Some(_) => name.to_string(),
            None => format!("{ns}-{name}"),
        };
        out.push(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": role_kind,
                        "metadata": metadata(&role_name, *scope), "rules": rules(needs)}),
        );
        out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": binding_kind,
                        "metadata": metadata(&role_name, *scope),
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
                        "subjects": subject}));
    }
    out.push(job(args, name, ns));
    Ok(out)
}

/// The objects as the Job applies them: a Plan without the total-disk-bytes annotation whose bytes
/// --records gave gets the annotation, so the Job schedules by the same sizes without the records.
fn with_record_bytes(objects: &[Object], plans: &[Plan]) -> Vec<Value> {
    objects
        .iter()
        .map(|object| {
            let mut value = object.value.clone();
            let key = (object.namespace().unwrap_or_default(), object.name());
            let computed = plans.iter().find(|p| {
                object.kind() == "Plan" && (p.key.namespace.as_str(), p.key.name.as_str()) == key
            });
            let annotations = &value["metadata"]["annotations"];
            if let Some(plan) = computed
                && plan.bytes_known
                && annotations[TOTAL_DISK_BYTES_ANNOTATION].is_null()
            {
                let mut map = annotations.as_object().cloned().unwrap_or_default();
                map.insert(
                    TOTAL_DISK_BYTES_ANNOTATION.into(),
                    Value::from(plan.bytes.to_string()),
                );
                value["metadata"]["annotations"] = Value::Object(map);
            }
            value
        })
        .collect()
}

fn manifests_secret(objects: &[Object], plans: &[Plan], name: &str, ns: &str) -> Result<Value> {
    let mut text = String::new();
    for object in with_record_bytes(objects, plans) {
        text.push_str(&object.to_string());
        text.push('\n');
    }
    if text.len() > SECRET_LIMIT_BYTES {
        return Err(Error::data(format!(
            "--print-job: the manifests take {} bytes, more than one Secret holds ({SECRET_LIMIT_BYTES}): split the plans into several Jobs",
            text.len()
        )));
    }
    // A Secret, not a ConfigMap: plan-gen --with-secret puts the engine's password in them.
    Ok(
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": metadata(&format!("{name}-manifests"), Some(ns)),
              "stringData": {MANIFESTS_KEY: text}}),
    )
}

/// plan-run's command line in the Job: the scheduling flags given to --print-job, the lease
/// flags, and the mounted manifests. It waits for the lease: a restarted pod whose predecessor
/// still holds it takes over once that one's lease has run out.
pub fn job_args(args: &Args) -> Vec<String> {
    let mut out: Vec<String> = vec!["--wait-for-lease".into()];
    let mut flag = |name: &str, value: Option<String>| {
        out.push(format!("--{name}"));
        out.extend(value);
    };
    flag("ready-timeout", Some(format!("{}s", args.ready_timeout)));
    flag(
        "lease-duration",
        Some(format!("{}s", args.lease_duration.as_secs())),
    );
    if let Some(n) = args.max_running_plans {
        flag("max-running-plans", Some(n.to_string()));
    }
    if let Some(bytes) = args.max_inflight {
        flag("max-inflight", Some(bytes.to_string()));
    }
    if let Some(value) = clap::ValueEnum::to_possible_value(&args.order) {
        flag("order", Some(value.get_name().to_string()));
    }
    if let Some(window) = args.window {
        flag("window", Some(window.to_string()));
    }
    match args.bandwidth {
        Bandwidth::Auto => {
            flag("bandwidth", Some("auto".into()));
            flag(
                "sample-interval",
                Some(format!("{}s", args.sample_interval)),
            );
        }
        Bandwidth::Fixed => flag("bandwidth", Some("fixed".into())),
        Bandwidth::Rate(rate) => flag("bandwidth", Some(format!("{rate}B/s"))),
    }
    // The warm model (crate::cutover), where it differs from the defaults.
    if args.warm_change_rate != 1.0 {
        flag("warm-change-rate", Some(args.warm_change_rate.to_string()));
    }
    if args.precopy_interval != 3600.0 {
        flag(
            "precopy-interval",
            Some(format!("{}s", args.precopy_interval)),
        );
    }
    if args.per_vm_overhead != 60.0 {
        flag(
            "per-vm-overhead",
            Some(format!("{}s", args.per_vm_overhead)),
        );
    }
    if let Some(rate) = args.cutover_rate {
        flag("cutover-rate", Some(format!("{rate}B/s")));
    }
    if args.retry_failed {
        flag("retry-failed", None);
    }
    if args.force_conflicts {
        flag("force-conflicts", None);
    }
    out.push(format!("{MANIFESTS_DIR}/{MANIFESTS_KEY}"));
    out
}

fn job(args: &Args, name: &str, ns: &str) -> Value {
    let mut env = vec![json!({"name": "RUST_LOG", "value": "info"})];
    // --window is local time: the Job keeps the zone of whoever printed it.
    if let Some(zone) = jiff::tz::TimeZone::system().iana_name() {
        env.push(json!({"name": "TZ", "value": zone}));
    }
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(name, Some(ns)),
        "spec": {
            // A failed pod is replaced: the next plan-run resumes from the cluster's state.
            "backoffLimit": 6,
            "ttlSecondsAfterFinished": 7 * 24 * 3600,
            "template": {
                "metadata": {"labels": {MANAGED_BY_LABEL: MANAGED_BY, "job-name": name}},
                "spec": {
                    "serviceAccountName": name,
                    "restartPolicy": "Never",
                    "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "plan-run",
                        "image": args.job_image,
                        "command": ["plan-run"],
                        "args": job_args(args),
                        "env": env,
                        "volumeMounts": [{"name": "manifests", "mountPath": MANIFESTS_DIR, "readOnly": true}],
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                            "capabilities": {"drop": ["ALL"]}},
                    }],
                    "volumes": [{"name": "manifests", "secret": {"secretName": format!("{name}-manifests")}}],
                },
            },
        },
    })
}
