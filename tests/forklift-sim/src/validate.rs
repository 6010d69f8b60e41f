//! Validation as Forklift's provider, map and plan controllers do it: conditions with Forklift's
//! types, categories and reasons, `Ready` only when nothing blocks.

use crate::conditions::*;
use crate::world::{Lookup, World, WorldVm};
use common::forklift::{ForkliftVersion, concerns, plan};
use k8s_openapi::api::core::v1::Secret;
use kube::api::DynamicObject;
use kube::runtime::reflector::Store;
use serde_json::{Value, json};
use std::collections::HashSet;

/// What the controller sees of the cluster at one moment.
pub struct Cluster {
    pub providers: Store<DynamicObject>,
    pub network_maps: Store<DynamicObject>,
    pub storage_maps: Store<DynamicObject>,
    pub plans: Store<DynamicObject>,
    pub migrations: Store<DynamicObject>,
    pub secrets: Store<Secret>,
    pub virtual_machines: Store<DynamicObject>,
}

pub fn namespace(obj: &DynamicObject) -> &str {
    obj.metadata.namespace.as_deref().unwrap_or_default()
}

pub fn name(obj: &DynamicObject) -> &str {
    obj.metadata.name.as_deref().unwrap_or_default()
}

pub fn uid(obj: &DynamicObject) -> &str {
    obj.metadata.uid.as_deref().unwrap_or_default()
}

/// An ObjectReference's (namespace, name); the namespace defaults to the referring object's.
pub fn ref_key(reference: &Value, default_namespace: &str) -> (String, String) {
    let ns = reference["namespace"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or(default_namespace);
    (
        ns.to_string(),
        reference["name"].as_str().unwrap_or_default().to_string(),
    )
}

pub fn find_in(store: &Store<DynamicObject>, key: &(String, String)) -> Option<DynamicObject> {
    store
        .find(|o| namespace(o) == key.0 && name(o) == key.1)
        .map(|o| (*o).clone())
}

/// Whether an object's status (as last written by us, or as stored) says Ready.
pub type ReadyFn<'a> = &'a dyn Fn(&DynamicObject) -> bool;

// ---- Providers -----------------------------------------------------------------------------

pub fn provider_conditions(
    provider: &DynamicObject,
    cluster: &Cluster,
) -> (Vec<Value>, &'static str) {
    let spec = &provider.data["spec"];
    let kind = spec["type"].as_str().unwrap_or_default();
    let url = spec["url"].as_str().unwrap_or_default();
    let mut conditions = Vec::new();
    match kind {
        "openshift" if url.is_empty() => {}
        "openshift" | "ovirt" => {
            let valid_url = (url.starts_with("https://") || url.starts_with("http://"))
                && url.split("://").nth(1).is_some_and(|rest| {
                    let host = rest.split('/').next().unwrap_or_default();
                    !host.is_empty() && !host.contains(char::is_whitespace)
                });
            if !valid_url {
                conditions.push(cond(
                    "UrlNotValid",
                    CRITICAL,
                    "NotValid",
                    "The provider URL is not valid.",
                ));
            }
            conditions.extend(secret_conditions(provider, cluster, kind));
        }
        _ => conditions.push(cond(
            "ProviderTypeNotSupported",
            CRITICAL,
            "NotSupported",
            "forklift-sim serves ovirt and openshift providers only.",
        )),
    }
    if has_blocker(&conditions) {
        return (conditions, "ValidationFailed");
    }
    conditions.push(cond(
        "ConnectionTestSucceeded",
        REQUIRED,
        "Tested",
        "Connection test, succeeded.",
    ));
    conditions.push(cond(
        "InventoryCreated",
        REQUIRED,
        "Completed",
        "The inventory has been loaded.",
    ));
    conditions.push(cond("Ready", REQUIRED, "", "The provider is ready."));
    (conditions, "Ready")
}

fn secret_conditions(provider: &DynamicObject, cluster: &Cluster, kind: &str) -> Vec<Value> {
    let key = ref_key(&provider.data["spec"]["secret"], namespace(provider));
    let secret = cluster.secrets.find(|s| {
        s.metadata.namespace.as_deref() == Some(&key.0)
            && s.metadata.name.as_deref() == Some(&key.1)
    });
    let Some(secret) = secret else {
        return vec![cond(
            "SecretNotValid",
            CRITICAL,
            "NotFound",
            "The secret is not valid.",
        )];
    };
    let mut keys: HashSet<String> = secret.data.iter().flat_map(|d| d.keys().cloned()).collect();
    keys.extend(secret.string_data.iter().flat_map(|d| d.keys().cloned()));
    let value = |k: &str| -> Option<String> {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(k))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
            .or_else(|| secret.string_data.as_ref().and_then(|d| d.get(k).cloned()))
    };
    let insecure = value("insecureSkipVerify").is_some_and(|v| v.trim() == "true");
    let mut missing = Vec::new();
    if kind == "ovirt" {
        for required in ["user", "password"] {
            if !keys.contains(required) {
                missing.push(required.to_string());
            }
        }
        if !insecure && !keys.contains("ca.crt") && !keys.contains("cacert") {
            missing.push("ca.crt".to_string());
        }
    }
    let mut conditions = Vec::new();
    if !missing.is_empty() {
        conditions.push(cond_items(
            "SecretNotValid",
            CRITICAL,
            "DataErr",
            "The secret is not valid.",
            missing,
        ));
    }
    if insecure {
        conditions.push(cond(
            "ConnectionInsecure",
            WARN,
            "SkipTLSVerification",
            "TLS is susceptible to machine-in-the-middle attacks when certificate verification is skipped.",
        ));
    }
    conditions
}

// ---- Provider references (maps and plans) --------------------------------------------------

fn provider_ref_conditions(
    spec_provider: &Value,
    default_ns: &str,
    cluster: &Cluster,
    ready: ReadyFn,
) -> Vec<Value> {
    let mut conditions = Vec::new();
    for (role, prefix) in [("source", "Source"), ("destination", "Destination")] {
        let reference = &spec_provider[role];
        if reference["name"].as_str().unwrap_or_default().is_empty() {
            conditions.push(cond(
                &format!("{prefix}ProviderNotValid"),
                CRITICAL,
                "NotSet",
                &format!("The {role} provider is not valid."),
            ));
            continue;
        }
        match find_in(&cluster.providers, &ref_key(reference, default_ns)) {
            None => conditions.push(cond(
                &format!("{prefix}ProviderNotValid"),
                CRITICAL,
                "NotFound",
                &format!("The {role} provider is not valid."),
            )),
            Some(p) if !ready(&p) => conditions.push(cond(
                &format!("{prefix}ProviderNotReady"),
                CRITICAL,
                "NotReady",
                &format!("The {role} provider does not have a Ready condition."),
            )),
            Some(_) => {}
        }
    }
    conditions
}

// ---- Maps ----------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
pub enum MapKind {
    Network,
    Storage,
}

/// A map's conditions and its resolved `references`.
pub fn map_status(
    map: &DynamicObject,
    kind: MapKind,
    world: &World,
    cluster: &Cluster,
    ready: ReadyFn,
) -> (Vec<Value>, Vec<Value>) {
    let spec = &map.data["spec"];
    let mut conditions = provider_ref_conditions(&spec["provider"], namespace(map), cluster, ready);
    let (what, label) = match kind {
        MapKind::Network => ("Network", "network"),
        MapKind::Storage => ("Storage", "storage"),
    };
    let mut references = Vec::new();
    let (mut not_set, mut not_found, mut ambiguous) = (Vec::new(), Vec::new(), Vec::new());
    for entry in spec["map"].as_array().into_iter().flatten() {
        let source = &entry["source"];
        let found = match kind {
            MapKind::Network => world.network(source),
            MapKind::Storage => world.storage_domain(source),
        };
        let item = format!(
            "id:{} name:'{}'",
            source["id"].as_str().unwrap_or_default(),
            source["name"].as_str().unwrap_or_default()
        );
        match found {
            Lookup::Found(n) => references.push(json!({"id": n.id, "name": n.name})),
            Lookup::NotSet => not_set.push(item),
            Lookup::NotFound => not_found.push(item),
            Lookup::Ambiguous => ambiguous.push(item),
        }
    }
    let kind_name = format!("Source{what}NotValid");
    let message = format!("Source {label} not valid.");
    if !not_set.is_empty() {
        conditions.push(cond_items(
            &kind_name, CRITICAL, "NotSet", &message, not_set,
        ));
    } else if !ambiguous.is_empty() {
        conditions.push(cond_items(
            &kind_name,
            CRITICAL,
            "Ambiguous",
            &message,
            ambiguous,
        ));
    } else if !not_found.is_empty() {
        // Forklift only warns: the inventory may not have caught up yet.
        conditions.push(cond_items(
            &kind_name, WARN, "NotFound", &message, not_found,
        ));
    }
    if !has_blocker(&conditions) {
        conditions.push(cond("Ready", REQUIRED, "", "The map is ready."));
    }
    (conditions, references)
}

// ---- Plans ---------------------------------------------------------------------------------

/// The DNS-1123 name Forklift gives the target VM: `targetName`, else the oVirt name normalised.
pub fn target_name(spec_vm: &Value, world_vm: Option<&WorldVm>) -> String {
    if let Some(t) = spec_vm["targetName"].as_str().filter(|t| !t.is_empty()) {
        return t.to_string();
    }
    let name = world_vm
        .map(|v| v.name.as_str())
        .or(spec_vm["name"].as_str())
        .unwrap_or_default();
    if common::names::is_rfc1123_label(name) {
        name.to_string()
    } else {
        common::names::sanitize_label(name)
    }
}

/// Per condition type, the items (VM refs) it names, in the order found.
#[derive(Default)]
struct VmConditions {
    items: Vec<(&'static str, Vec<String>)>,
    mac_messages: Vec<String>,
}

impl VmConditions {
    fn add(&mut self, kind: &'static str, item: String) {
        match self.items.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, list)) if list.contains(&item) => {}
            Some((_, list)) => list.push(item),
            None => self.items.push((kind, vec![item])),
        }
    }

    fn take(&mut self, kind: &str) -> Vec<String> {
        self.items
            .iter_mut()
            .find(|(k, _)| *k == kind)
            .map(|(_, list)| std::mem::take(list))
            .unwrap_or_default()
    }

    /// The conditions, with Forklift's reasons and messages (v2.12.5 validation.go `validateVM`).
    fn into_conditions(mut self, conditions: &mut Vec<Value>) {
        let fixed: [(&str, &str, &str, &str); 7] = [
            (
                "VMRefNotValid",
                CRITICAL,
                "NotSet",
                "Either `ID` or `Name` required.",
            ),
            ("VMNotFound", CRITICAL, "NotFound", "VM not found."),
            (
                "DuplicateVM",
                CRITICAL,
                "NotUnique",
                "Duplicate (source) VM.",
            ),
            (
                "TargetNameNotValid",
                WARN,
                "NotValid",
                "Target VM name does not comply with DNS1123 RFC, will be automatically changed.",
            ),
            (
                "VMNetworksNotMapped",
                CRITICAL,
                "NotValid",
                plan::NETWORKS_NOT_MAPPED.message,
            ),
            (
                "VMStorageNotMapped",
                CRITICAL,
                "NotValid",
                plan::STORAGE_NOT_MAPPED.message,
            ),
            (
                "VMMultiplePodNetworkMappings",
                CRITICAL,
                "NotValid",
                plan::MULTIPLE_POD.message,
            ),
        ];
        for (kind, category, reason, message) in fixed {
            let items = self.take(kind);
            if !items.is_empty() {
                conditions.push(cond_items(kind, category, reason, message, items));
            }
        }
        for condition in [
            &plan::STORAGE_NOT_SUPPORTED,
            &plan::DUPLICATE_NAD,
            &plan::INVALID_DISK_SIZES,
            &plan::CRITICAL_CONCERNS,
        ] {
            let items = self.take(condition.kind);
            if !items.is_empty() {
                let category = condition.category.as_str();
                conditions.push(cond_items(
                    condition.kind,
                    category,
                    "NotValid",
                    condition.message,
                    items,
                ));
            }
        }
        let items = self.take(plan::MAC_CONFLICTS.kind);
        if !items.is_empty() {
            let message = self.mac_messages.join("; ");
            conditions.push(cond_items(
                plan::MAC_CONFLICTS.kind,
                CRITICAL,
                "NotValid",
                &message,
                items,
            ));
        }
        let items = self.take("VMAlreadyExists");
        if !items.is_empty() {
            conditions.push(cond_items(
                "VMAlreadyExists",
                CRITICAL,
                "NotUnique",
                "Target VM already exists.",
                items,
            ));
        }
    }
}

/// VMNetworksNotMapped (a NIC whose profile's network no map entry covers, or without a profile:
/// validator.go `NetworksMapped`), and the duplicates the version refuses
/// (common::forklift::plan::network_duplicates, over the entries whose source id is the NIC's
/// network: `FindAllNetworks`).
fn network_checks(
    found: &mut VmConditions,
    item: &str,
    vm: &WorldVm,
    networks: &[Value],
    version: ForkliftVersion,
) {
    let mut per_nic: Vec<Vec<plan::Destination>> = Vec::new();
    let mut unmapped = false;
    for (_, network) in &vm.nics {
        let pairs: Vec<plan::Destination> = network
            .iter()
            .flat_map(|net| networks.iter().filter(move |e| e["id"] == net.as_str()))
            .map(|e| {
                let d = &e["destination"];
                plan::Destination {
                    kind: d["type"].as_str().unwrap_or_default(),
                    namespace: d["namespace"].as_str().unwrap_or_default(),
                    name: d["name"].as_str().unwrap_or_default(),
                }
            })
            .collect();
        unmapped |= pairs.is_empty();
        per_nic.push(pairs);
    }
    if unmapped {
        found.add(plan::NETWORKS_NOT_MAPPED.kind, item.to_string());
    }
    let (multiple_pod, duplicate_nad) = plan::network_duplicates(version, &per_nic);
    if multiple_pod {
        found.add(plan::MULTIPLE_POD.kind, item.to_string());
    }
    if duplicate_nad {
        found.add(plan::DUPLICATE_NAD.kind, item.to_string());
    }
}

/// The checks on the VM's inventory that the version applies: Critical concerns of the rego
/// policies (items `ref (label)`, validation.go `aggregateCriticalConcerns`), invalid disk
/// sizes, and MAC addresses that VMs already in the cluster use (validator.go `MacConflicts`).
fn vm_rule_checks(found: &mut VmConditions, item: &str, vm: &WorldVm, ctx: &PlanContext) {
    for concern in concerns::evaluate(&vm.record, ctx.version) {
        if concern.category == concerns::Category::Critical && concern.id.starts_with("ovirt.") {
            found.add(
                plan::CRITICAL_CONCERNS.kind,
                format!("{item} ({})", concern.label),
            );
        }
    }
    if !plan::invalid_disk_sizes(&vm.record).is_empty() {
        found.add(plan::INVALID_DISK_SIZES.kind, item.to_string());
    }
    let destination: Vec<(String, Vec<String>)> = ctx
        .cluster
        .virtual_machines
        .state()
        .iter()
        .filter(|o| {
            ctx.mac_scope
                .as_ref()
                .is_none_or(|scope| scope.contains(namespace(o)))
        })
        .map(|o| {
            (
                format!("{}/{}", namespace(o), name(o)),
                plan::virtual_machine_macs(&o.data),
            )
        })
        .collect();
    let macs: Vec<&str> = vm.nics.iter().map(|(mac, _)| mac.as_str()).collect();
    let conflicts = plan::mac_conflicts(&macs, &destination);
    if !conflicts.is_empty() {
        found.add(plan::MAC_CONFLICTS.kind, item.to_string());
        found
            .mac_messages
            .push(plan::mac_conflicts_message(item, &conflicts));
    }
}

/// Everything a plan's validation needs besides the cluster.
pub struct PlanContext<'a> {
    pub world: &'a World,
    pub cluster: &'a Cluster,
    pub ready: ReadyFn<'a>,
    /// Resolved `status.references` of a map, as last written by us or stored.
    pub references: &'a dyn Fn(&DynamicObject) -> Vec<Value>,
    /// Ids of VMs that have already succeeded or are part of the running execution: their
    /// target VM is ours, so it does not count as `VMAlreadyExists`.
    pub own_vms: &'a HashSet<String>,
    /// The Forklift version whose rules apply.
    pub version: ForkliftVersion,
    /// The namespaces whose VirtualMachines count as "the destination cluster" for MacConflicts:
    /// all (None), or with --namespace that namespace and its plans' target namespaces, so that
    /// simulators side by side on one API server each see a cluster of their own.
    pub mac_scope: Option<HashSet<String>>,
}

pub fn plan_conditions(plan: &DynamicObject, ctx: &PlanContext) -> Vec<Value> {
    let spec = &plan.data["spec"];
    let ns = namespace(plan);
    let mut conditions = provider_ref_conditions(&spec["provider"], ns, ctx.cluster, ctx.ready);

    let target_ns = spec["targetNamespace"].as_str().unwrap_or_default();
    if !common::names::is_rfc1123_label(target_ns) {
        conditions.push(cond(
            "NamespaceNotValid",
            CRITICAL,
            "NotValid",
            "Target namespace is not valid.",
        ));
    }

    let mut map_refs =
        |key: &str, prefix: &str, store: &Store<DynamicObject>| -> Option<Vec<Value>> {
            let reference = &spec["map"][key];
            let label = if key == "network" {
                "Network"
            } else {
                "Storage"
            };
            if reference["name"].as_str().unwrap_or_default().is_empty() {
                conditions.push(cond(
                    &format!("{prefix}RefNotValid"),
                    CRITICAL,
                    "NotSet",
                    &format!("{label} map reference is not valid."),
                ));
                return None;
            }
            match find_in(store, &ref_key(reference, ns)) {
                None => {
                    conditions.push(cond(
                        &format!("{prefix}RefNotValid"),
                        CRITICAL,
                        "NotFound",
                        &format!("{label} map reference is not valid."),
                    ));
                    None
                }
                Some(m) if !(ctx.ready)(&m) => {
                    conditions.push(cond(
                        &format!("{prefix}NotReady"),
                        CRITICAL,
                        "NotReady",
                        &format!("{label} map does not have Ready condition."),
                    ));
                    None
                }
                Some(m) => Some(
                    m.data["spec"]["map"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                )
                .map(|entries| {
                    // Pair each resolved reference with its entry's destination.
                    let resolved = (ctx.references)(&m);
                    entries
                        .iter()
                        .filter_map(|e| {
                            let source = &e["source"];
                            let id = source["id"].as_str().map(str::to_string).or_else(|| {
                                let short =
                                    source["name"].as_str()?.rsplit('/').next()?.to_string();
                                resolved
                                    .iter()
                                    .find(|r| r["name"] == short.as_str())
                                    .and_then(|r| r["id"].as_str().map(str::to_string))
                            })?;
                            resolved
                                .iter()
                                .any(|r| r["id"] == id.as_str())
                                .then(|| json!({"id": id, "destination": e["destination"]}))
                        })
                        .collect()
                }),
            }
        };
    let networks = map_refs("network", "NetworkMap", &ctx.cluster.network_maps);
    let storage = map_refs("storage", "StorageMap", &ctx.cluster.storage_maps);

    let mut found = VmConditions::default();
    let mut seen_ids = HashSet::new();
    let mut seen_targets = HashSet::new();
    for spec_vm in spec["vms"].as_array().into_iter().flatten() {
        let item = vm_item(spec_vm);
        let vm = match ctx.world.vm(spec_vm) {
            Lookup::Found(vm) => vm,
            Lookup::NotSet => {
                found.add("VMRefNotValid", item);
                continue;
            }
            Lookup::NotFound => {
                found.add("VMNotFound", item);
                continue;
            }
            Lookup::Ambiguous => {
                found.add("DuplicateVM", item);
                continue;
            }
        };
        // Forklift skips a VM that has already succeeded (v2.12.5 validation.go:1013-1018); the
        // rest of a running plan is not validated at all (validateVM returns while Executing).
        let own = ctx.own_vms.contains(&vm.id);
        let target = target_name(spec_vm, Some(vm));
        if !seen_ids.insert(vm.id.clone()) || !seen_targets.insert(target.clone()) {
            found.add("DuplicateVM", item.clone());
        }
        // v2.12.5 validation.go:1052-1056: without a targetName, the source name must be a
        // DNS-1123 subdomain (IsDNS1123Subdomain: dots allowed, up to 253 characters).
        if spec_vm["targetName"].as_str().is_none()
            && !common::names::is_rfc1123_subdomain(&vm.name)
        {
            found.add("TargetNameNotValid", item.clone());
        }
        if let Some(networks) = &networks {
            network_checks(&mut found, &item, vm, networks, ctx.version);
        }
        if let Some(storage) = &storage {
            let unmapped = vm.copied_disks().any(|d| {
                d.storage_domain
                    .as_deref()
                    .is_none_or(|sd| !storage.iter().any(|e| e["id"] == sd))
            });
            if unmapped {
                found.add("VMStorageNotMapped", item.clone());
            }
            // validator.go:175 DirectStorage: a LUN with logical units needs engine 4.5.2.1
            // (common::forklift::plan::supports_direct_lun; a version Forklift cannot parse fails
            // its reconcile instead, here: no condition).
            let luns = vm
                .record
                .disks()
                .iter()
                .any(|d| d.is_lun() && d.lun_size_bytes.is_some());
            if luns && plan::supports_direct_lun(&ctx.world.engine_version) == Some(false) {
                found.add(plan::STORAGE_NOT_SUPPORTED.kind, item.clone());
            }
        }
        if own {
            continue;
        }
        let exists = ctx.cluster.virtual_machines.find(|o| {
            namespace(o) == target_ns
                && name(o) == target
                && o.metadata.deletion_timestamp.is_none()
        });
        if exists.is_some() {
            found.add("VMAlreadyExists", item.clone());
        }
        vm_rule_checks(&mut found, &item, vm, ctx);
    }
    found.into_conditions(&mut conditions);
    if !has_blocker(&conditions) {
        conditions.push(cond("Ready", REQUIRED, "", "The migration plan is ready."));
    }
    conditions
}
