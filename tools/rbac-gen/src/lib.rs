//! rbac-gen: the namespaces, role bindings and quotas that let each oVirt owner run their VMs in
//! KubeVirt, from VM records annotated by owner-group. Holds one entry per namespace in memory.

mod quota;
mod users;

use clap::Parser;
use common::k8s::{self, MANAGED_BY, MANAGED_BY_LABEL, ObjectFormat};
use common::names;
use common::output::Output;
use common::record::{OwnerKind, VmRecord, parse_vm_record};
use common::{Error, ExitCode, Result};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

pub use users::UserMap;

/// The Role `--namespaced-role` writes into each namespace.
pub const NAMESPACED_ROLE: &str = "liftkit-vm-owner";
/// Annotation on each binding: the oVirt principals it stands for.
pub const OVIRT_PRINCIPALS_ANNOTATION: &str = "liftkit.io/ovirt-principals";
/// Annotation on each namespace: how many VMs will land in it.
pub const VM_COUNT_ANNOTATION: &str = "liftkit.io/vm-count";

const LONG_ABOUT: &str = "\
Reads VM records annotated by owner-group (target_namespace, owners) and writes, for each target
namespace, a Namespace, one RoleBinding per owner and, with --quota, a ResourceQuota and, where
that quota limits compute (requests.cpu, requests.memory, cpu, memory, limits.*), a LimitRange
`liftkit-defaults` giving containers that set none default requests (and default limits when the
quota limits limits.*): Kubernetes refuses a pod that leaves a limited resource unset. The defaults
are the quota record's `limit_range` (capacity-calc writes Forklift's populator pod requests, 100m
and 512Mi, and limits, 1 CPU and 1Gi), or those when the record has none.

Forklift starts a migration only for a user allowed to create virtualmachines.kubevirt.io in the
target namespace. The default binding, to the ClusterRole `admin`, gives that right through
KubeVirt's aggregated roles (kubevirt.io:admin aggregates into admin). --namespaced-role instead
writes a Role `liftkit-vm-owner` with full rights in the namespace, including an explicit rule for
kubevirt.io virtualmachines, and binds owners to it.

oVirt users become User subjects, oVirt groups Group subjects. Their cluster names come from
--user-map (CSV: ovirt principal, cluster name; `#` comments and a header row allowed), then from
--strip-domain (alice@example.com -> alice, example.com/Groups/dba -> dba). An owner with neither is
an error (exit 78) that lists every unmapped owner, unless --skip-unmapped (then exit 1).

A record whose target_namespace is a system namespace (default, kube-*, openshift*) or one given
with --protect is refused (exit 65, naming the line and VM): its owners would get admin rights
there. --cluster-role must be a name a roleRef takes (not empty, no '/' or '%'; exit 2).

Objects are written sorted (Namespace, Role, RoleBinding, LimitRange, ResourceQuota; by namespace
and name),
as JSON lines or, with --format yaml, a YAML stream; `kubectl apply -f -` reads both.
Memory: one entry per namespace (its owners and VM count), never the records themselves.";

/// Examples, environment and related pages after the help.
pub const DOC: common::cli::Doc = common::cli::Doc {
    examples: &[
        (
            "Namespaces and role bindings, owners' cluster names without their domain",
            "rbac-gen --strip-domain owned.jsonl -o rbac.jsonl",
        ),
        (
            "The same with capacity-calc's quotas, as YAML for kubectl",
            "rbac-gen --strip-domain --quota quotas.jsonl --format yaml owned.jsonl | kubectl apply -f -",
        ),
    ],
    environment: &[],
    see_also: &["owner-group(1)", "capacity-calc(1)", "plan-run(1)"],
};

#[derive(Debug, Parser)]
#[command(name = "rbac-gen", version, about = "Namespaces, role bindings and quotas for oVirt owners",
    long_about = LONG_ABOUT)]
pub struct Args {
    #[command(flatten)]
    pub io: common::cli::Io,

    /// Output format: JSON lines, or a YAML stream (`kubectl apply -f -` reads both)
    #[arg(long, value_enum, default_value_t = ObjectFormat::Jsonl)]
    pub format: ObjectFormat,

    /// ClusterRole each owner is bound to (admin lets owners create KubeVirt VMs)
    #[arg(
        long,
        value_name = "NAME",
        default_value = "admin",
        conflicts_with = "namespaced_role"
    )]
    pub cluster_role: String,

    /// Write a Role `liftkit-vm-owner` with full rights in each namespace and bind owners to it
    #[arg(long)]
    pub namespaced_role: bool,

    /// Cluster user and group names are the oVirt principal without its domain
    #[arg(long)]
    pub strip_domain: bool,

    /// CSV of `ovirt principal,cluster name` rows (checked before --strip-domain)
    #[arg(long, value_name = "FILE.csv")]
    pub user_map: Option<PathBuf>,

    /// Leave owners without a mapping out (with a warning, exit 1) instead of failing
    #[arg(long)]
    pub skip_unmapped: bool,

    #[command(flatten)]
    pub protect: common::cli::Protect,

    /// capacity-calc quota records (JSON lines): write a ResourceQuota per namespace (and a LimitRange where it limits compute)
    #[arg(long, value_name = "FILE")]
    pub quota: Option<PathBuf>,

    #[command(flatten)]
    pub verbosity: common::cli::Verbosity,
}

pub fn command() -> clap::Command {
    common::cli::command(<Args as clap::CommandFactory>::command(), &DOC)
}

/// What one namespace collects from the records.
#[derive(Default)]
struct NamespaceInfo {
    vm_count: u64,
    owners: BTreeSet<(OwnerKind, String)>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    args.verbosity.init_logging();
    let user_map = match &args.user_map {
        Some(path) => Some(UserMap::load(path)?),
        None => None,
    };
    check_role_name(&args.cluster_role)?;
    let namespaces = read_records(&args.io.inputs, &args.protect)?;
    let quotas = match &args.quota {
        Some(path) => quota::load(path)?,
        None => BTreeMap::new(),
    };

    // Resolve every owner first, so that one error lists all that are unmapped.
    let mut unmapped: BTreeSet<String> = BTreeSet::new();
    let mut resolved: BTreeMap<(OwnerKind, String), String> = BTreeMap::new();
    for info in namespaces.values() {
        for (kind, principal) in &info.owners {
            let cluster_name = user_map
                .as_ref()
                .and_then(|m| m.get(principal))
                .map(str::to_string)
                .or_else(|| {
                    args.strip_domain
                        .then(|| names::short_principal(principal).to_string())
                        .filter(|n| !n.is_empty())
                });
            match cluster_name {
                Some(name) => {
                    resolved.insert((*kind, principal.clone()), name);
                }
                None => {
                    unmapped.insert(format!("{} {principal}", kind_word(*kind)));
                }
            }
        }
    }
    if !unmapped.is_empty() && !args.skip_unmapped {
        let how = if args.user_map.is_none() && !args.strip_domain {
            " (give --user-map or --strip-domain)"
        } else {
            " (add them to --user-map, or give --skip-unmapped)"
        };
        return Err(Error::config(format!(
            "{} owner(s) have no cluster name{how}: {}",
            unmapped.len(),
            unmapped.iter().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    for owner in &unmapped {
        tracing::warn!("{owner}: no cluster name, left out");
    }
    for namespace in quotas.keys() {
        if !namespaces.contains_key(namespace) {
            tracing::warn!(
                "quota for namespace {namespace}: no VM record targets it, no quota written"
            );
        }
    }

    let mut objects = Vec::new();
    for (namespace, info) in &namespaces {
        objects.extend(namespace_objects(&args, namespace, info, &resolved));
        if let Some(quota) = quotas.get(namespace) {
            objects.push(quota::resource_quota(namespace, &quota.hard));
            objects.extend(quota::limit_range(namespace, quota));
        }
    }
    k8s::sort_objects(&mut objects);

    let mut out = Output::create(args.io.out.path())?;
    let name = out.name();
    k8s::write_objects(&mut out, &name, &objects, args.format)?;
    out.commit()?;
    Ok(if unmapped.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::Findings
    })
}

fn kind_word(kind: OwnerKind) -> &'static str {
    match kind {
        OwnerKind::User => "user",
        OwnerKind::Group => "group",
    }
}

/// A ClusterRole name as a RoleBinding's roleRef takes it: not empty, not `.` or `..`, no `/` or
/// `%` (Kubernetes v1.34 pkg/apis/rbac/validation `ValidateRoleBindingSpec`: roleRef.name is
/// required and checked by `ValidateRBACName`, path.IsValidPathSegmentName).
fn check_role_name(name: &str) -> Result<()> {
    let why = if name.is_empty() {
        "is empty"
    } else if name == "." || name == ".." {
        "may not be '.' or '..'"
    } else if name.contains(['/', '%']) {
        "may not contain '/' or '%'"
    } else {
        return Ok(());
    };
    Err(Error::usage(format!(
        "--cluster-role {name:?}: a ClusterRole name {why}"
    )))
}

fn read_records(
    inputs: &[PathBuf],
    protect: &common::cli::Protect,
) -> Result<BTreeMap<String, NamespaceInfo>> {
    let mut namespaces: BTreeMap<String, NamespaceInfo> = BTreeMap::new();
    common::jsonl::Inputs::new(inputs).for_each(|value: Value, location| {
        let record: VmRecord =
            parse_vm_record(value).map_err(|e| Error::data(format!("{location}: {e}")))?;
        let namespace = record
            .checked_target_namespace()
            .map_err(|e| Error::data(format!("{location}: {e}")))?;
        if let Some(why) = protect.refuses(namespace) {
            return Err(Error::data(format!(
                "{location}: VM {}: target_namespace {why}: refused as a target",
                record.name
            )));
        }
        let info = namespaces.entry(namespace.to_string()).or_default();
        info.vm_count += 1;
        for owner in record.owners.iter().flatten() {
            info.owners.insert((owner.kind, owner.principal.clone()));
        }
        Ok(())
    })?;
    Ok(namespaces)
}

fn namespace_objects(
    args: &Args,
    namespace: &str,
    info: &NamespaceInfo,
    resolved: &BTreeMap<(OwnerKind, String), String>,
) -> Vec<Value> {
    let principals: Vec<String> = info.owners.iter().map(|(_, p)| p.clone()).collect();
    let requester = info
        .owners
        .iter()
        .find(|(kind, _)| *kind == OwnerKind::User)
        .or(info.owners.iter().next())
        .and_then(|key| resolved.get(key))
        .cloned()
        .unwrap_or_else(|| MANAGED_BY.to_string());
    let owners_text = if principals.is_empty() {
        "no owner".to_string()
    } else {
        principals.join(", ")
    };
    let description = format!(
        "Migrated from oVirt by liftkit: {} VM(s) owned by {owners_text}",
        info.vm_count
    );
    let mut objects = vec![json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY},
            "annotations": k8s::sorted_map([
                ("openshift.io/display-name", Value::from(namespace)),
                ("openshift.io/requester", Value::from(requester)),
                ("openshift.io/description", Value::from(description)),
                (VM_COUNT_ANNOTATION, Value::from(info.vm_count.to_string())),
                (OVIRT_PRINCIPALS_ANNOTATION, Value::from(principals.join(","))),
            ]),
        },
    })];

    let role_ref = if args.namespaced_role {
        objects.push(namespaced_role(namespace));
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAMESPACED_ROLE})
    } else {
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": args.cluster_role})
    };

    // Several oVirt principals can map to one cluster subject: one binding for it.
    let mut subjects: BTreeMap<(OwnerKind, String), Vec<String>> = BTreeMap::new();
    for key in &info.owners {
        if let Some(cluster_name) = resolved.get(key) {
            subjects
                .entry((key.0, cluster_name.clone()))
                .or_default()
                .push(key.1.clone());
        }
    }
    let mut used_names = BTreeSet::new();
    for ((kind, cluster_name), principals) in subjects {
        let word = kind_word(kind);
        let base = names::sanitize_label(&format!("liftkit-{word}-{cluster_name}"));
        // Two subjects whose names sanitise alike (Alice, alice) keep apart by a hash of the exact name.
        let name = if used_names.contains(&base) || base != format!("liftkit-{word}-{cluster_name}")
        {
            names::with_suffix(&base, &names::stable_hash(&[word, cluster_name.as_str()]))
        } else {
            base
        };
        used_names.insert(name.clone());
        let subject_kind = if kind == OwnerKind::User {
            "User"
        } else {
            "Group"
        };
        objects.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {MANAGED_BY_LABEL: MANAGED_BY},
                "annotations": {OVIRT_PRINCIPALS_ANNOTATION: principals.join(",")},
            },
            "roleRef": role_ref,
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": subject_kind, "name": cluster_name}],
        }));
    }
    objects
}

/// Full rights in the namespace; the kubevirt.io rule is implied by the first and spelled out so
/// that a reader (and an audit) sees that owners may create virtual machines.
fn namespaced_role(namespace: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {
            "name": NAMESPACED_ROLE,
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY},
        },
        "rules": [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"apiGroups": ["kubevirt.io"], "resources": ["virtualmachines", "virtualmachineinstances"],
             "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
        ],
    })
}
