//! The objects rbac-gen and plan-gen wrote, read back: JSON lines or YAML streams, from files or
//! stdin, each object with the `file:line` it came from; the order they are applied in; the plans.

use crate::sched::PlanKey;
use common::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

pub const TOTAL_DISK_BYTES_ANNOTATION: &str = "liftkit.io/total-disk-bytes";
pub const VM_COUNT_ANNOTATION: &str = "liftkit.io/vm-count";
pub const FORKLIFT_API_VERSION: &str = "forklift.konveyor.io/v1beta1";

/// An object and where it came from.
#[derive(Debug, Clone)]
pub struct Object {
    pub value: Value,
    pub location: String,
}

impl Object {
    pub fn api_version(&self) -> &str {
        self.value["apiVersion"].as_str().unwrap_or_default()
    }
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }
    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }
    pub fn namespace(&self) -> Option<&str> {
        self.value["metadata"]["namespace"].as_str()
    }

    /// Apply phase: namespaces and RBAC first, then secrets, providers and maps, then plans.
    pub fn phase(&self) -> u8 {
        match self.kind() {
            "Namespace" => 0,
            "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" | "ResourceQuota"
            | "LimitRange" | "ServiceAccount" => 1,
            "Plan" => 3,
            _ => 2,
        }
    }
}

/// Reads every input (stdin when none, or `-`). A file is JSON lines when its first non-blank
/// character is `{`, else a YAML stream.
pub fn read(inputs: &[PathBuf]) -> Result<Vec<Object>> {
    let inputs = if inputs.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        inputs.to_vec()
    };
    let mut objects = Vec::new();
    for path in &inputs {
        let (name, text) = if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Error::no_input(format!("stdin: {e}")))?;
            ("stdin".to_string(), text)
        } else {
            let name = path.display().to_string();
            let bytes = std::fs::read(path).map_err(|e| Error::no_input(format!("{name}: {e}")))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| Error::data(format!("{name}: not UTF-8 text")))?;
            (name, text)
        };
        parse(&name, &text, &mut objects)?;
    }
    Ok(objects)
}

/// Parses one input's text into objects.
pub fn parse(name: &str, text: &str, objects: &mut Vec<Object>) -> Result<()> {
    let json_lines = text.trim_start().starts_with('{');
    if json_lines {
        for (index, line) in text.lines().enumerate() {
            let location = format!("{name}:{}", index + 1);
            if line.trim().is_empty() {
                continue;
            }
            let value: Value = common::jsonl::parse_value(line)
                .map_err(|e| Error::data(format!("{location}: not valid JSON: {e}")))?;
            objects.push(check(value, location)?);
        }
        return Ok(());
    }
    // YAML: documents split at `---` lines, so that each object keeps the line it starts on.
    let mut start = 1;
    let mut document = String::new();
    let mut flush = |document: &mut String, start: usize| -> Result<()> {
        if document.lines().all(|l| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#')
        }) {
            document.clear();
            return Ok(());
        }
        let value: Value = serde_norway::from_str(document).map_err(|e| {
            let line = e.location().map(|l| start + l.line() - 1).unwrap_or(start);
            let message = e.to_string();
            let message = message.split(" at line ").next().unwrap_or(&message);
            Error::data(format!("{name}:{line}: not valid YAML: {message}"))
        })?;
        document.clear();
        objects.push(check(value, format!("{name}:{start}"))?);
        Ok(())
    };
    for (index, line) in text.lines().enumerate() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            flush(&mut document, start)?;
            start = index + 2;
            continue;
        }
        document.push_str(line);
        document.push('\n');
    }
    flush(&mut document, start)
}

fn check(value: Value, location: String) -> Result<Object> {
    let object = Object { value, location };
    if !object.value.is_object() || object.api_version().is_empty() || object.kind().is_empty() {
        let shown: String = object.value.to_string().chars().take(60).collect();
        return Err(Error::data(format!(
            "{}: expected a Kubernetes object (apiVersion, kind, metadata), found {shown}",
            object.location
        )));
    }
    if object.name().is_empty() {
        return Err(Error::data(format!(
            "{}: {} has no metadata.name",
            object.location,
            object.kind()
        )));
    }
    if object.kind() == "Plan" && object.namespace().is_none() {
        return Err(Error::data(format!(
            "{}: Plan {} has no metadata.namespace",
            object.location,
            object.name()
        )));
    }
    Ok(object)
}

/// The objects in apply order (stable within a phase, so the input order stays).
pub fn apply_order(objects: &[Object]) -> Vec<&Object> {
    let mut ordered: Vec<&Object> = objects.iter().collect();
    ordered.sort_by_key(|o| o.phase());
    ordered
}

/// A VM of a plan, as the plan names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanVm {
    pub id: String,
    pub name: String,
}

/// A Plan from the input.
#[derive(Debug, Clone)]
pub struct Plan {
    pub key: PlanKey,
    pub bytes: u64,
    /// Whether `bytes` came from the liftkit.io/total-disk-bytes annotation.
    pub bytes_known: bool,
    pub vms: Vec<PlanVm>,
    /// The disks Forklift copies: from --records (LUNs are not copied), one a VM without.
    pub disks: usize,
    /// Where Forklift creates the VMs and their disks (`spec.targetNamespace`).
    pub target_namespace: Option<String>,
    /// A warm plan (Forklift v2.12.5 pkg/apis/forklift/v1beta1/plan.go `Plan.IsWarm`:
    /// `spec.type: warm`, or the deprecated `spec.warm: true`).
    pub warm: bool,
    pub location: String,
}

/// The Forklift Plans of the input, in input order. Plans named twice are an error.
pub fn plans(objects: &[Object]) -> Result<Vec<Plan>> {
    let mut plans: Vec<Plan> = Vec::new();
    for object in objects {
        if object.kind() != "Plan" || object.api_version() != FORKLIFT_API_VERSION {
            continue;
        }
        let key = PlanKey {
            namespace: object.namespace().unwrap_or_default().to_string(),
            name: object.name().to_string(),
        };
        if let Some(first) = plans.iter().find(|p| p.key == key) {
            return Err(Error::data(format!(
                "{}: Plan {key} is given twice (first at {})",
                object.location, first.location
            )));
        }
        let annotation = &object.value["metadata"]["annotations"][TOTAL_DISK_BYTES_ANNOTATION];
        let bytes = match annotation {
            Value::Null => None,
            Value::String(text) => {
                let bytes = text.trim().parse::<u64>().map_err(|_| {
                    Error::data(format!(
                        "{}: Plan {key}: annotation {TOTAL_DISK_BYTES_ANNOTATION} {text:?} is not a byte count",
                        object.location
                    ))
                })?;
                let what = format!("Plan {key}: annotation {TOTAL_DISK_BYTES_ANNOTATION}");
                let checked =
                    common::size::check_bytes(&what, bytes, common::size::MAX_TOTAL_BYTES);
                Some(checked.map_err(|e| Error::data(format!("{}: {e}", object.location)))?)
            }
            other => {
                return Err(Error::data(format!(
                    "{}: Plan {key}: annotation {TOTAL_DISK_BYTES_ANNOTATION} must be a string, found {other}",
                    object.location
                )));
            }
        };
        let vms = object.value["spec"]["vms"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|vm| PlanVm {
                id: vm["id"].as_str().unwrap_or_default().to_string(),
                name: vm["name"].as_str().unwrap_or_default().to_string(),
            })
            .collect::<Vec<_>>();
        plans.push(Plan {
            key,
            bytes: bytes.unwrap_or(0),
            bytes_known: bytes.is_some(),
            disks: vms.len(),
            vms,
            target_namespace: object.value["spec"]["targetNamespace"]
                .as_str()
                .map(str::to_string),
            warm: object.value["spec"]["type"] == "warm" || object.value["spec"]["warm"] == true,
            location: object.location.clone(),
        });
    }
    Ok(plans)
}

/// Fills in the bytes of plans without the annotation from VM records (ovirt-dump output): the
/// provisioned size of every non-LUN disk of the plan's VMs; and every plan's disk count (a VM
/// without a record counts one).
pub fn compute_bytes(plans: &mut [Plan], records: &[PathBuf]) -> Result<()> {
    let mut sizes = std::collections::HashMap::new();
    let mut disks = std::collections::HashMap::new();
    common::jsonl::Inputs::new(records).for_each(|value: Value, location| {
        let record = common::record::parse_vm_record(value)
            .map_err(|e| Error::data(format!("{location}: {e}")))?;
        sizes.insert(record.id.clone(), record_bytes(&record));
        disks.insert(record.id.clone(), record_disk_bytes(&record).len());
        Ok(())
    })?;
    for plan in plans.iter_mut() {
        plan.disks = (plan.vms.iter())
            .map(|vm| disks.get(&vm.id).copied().unwrap_or(1))
            .sum();
    }
    for plan in plans.iter_mut().filter(|p| !p.bytes_known) {
        plan.bytes =
            common::size::sum_bytes(plan.vms.iter().filter_map(|vm| sizes.get(&vm.id)).copied());
        plan.bytes_known = plan.vms.iter().all(|vm| sizes.contains_key(&vm.id));
    }
    Ok(())
}

/// The bytes a VM's disks need on the target, as Forklift sizes them: max(provisioned, actual)
/// of every non-LUN disk.
pub fn record_bytes(record: &common::record::VmRecord) -> u64 {
    common::size::sum_bytes(record_disk_bytes(record))
}

/// [`record_bytes`] per disk: one entry per disk Forklift copies (LUNs are not copied).
pub fn record_disk_bytes(record: &common::record::VmRecord) -> Vec<u64> {
    record
        .disks()
        .iter()
        .filter(|d| !d.is_lun())
        .map(common::record::Disk::copied_bytes)
        .collect()
}

/// Target storage class by source storage domain (id and name), from the StorageMaps in the
/// input (Forklift's StorageMap `spec.map[]`: `source` {id|name}, `destination.storageClass`).
pub fn storage_classes(objects: &[Object]) -> BTreeMap<String, String> {
    let mut classes = BTreeMap::new();
    for object in objects.iter().filter(|o| o.kind() == "StorageMap") {
        for pair in object.value["spec"]["map"].as_array().into_iter().flatten() {
            let Some(class) = pair["destination"]["storageClass"].as_str() else {
                continue;
            };
            for key in ["id", "name"] {
                if let Some(source) = pair["source"][key].as_str() {
                    classes.insert(source.to_string(), class.to_string());
                }
            }
        }
    }
    classes
}

/// [`record_disk_bytes`] with each disk's target storage class ("" when no map names its
/// storage domain).
pub fn record_disk_classes(
    record: &common::record::VmRecord,
    classes: &BTreeMap<String, String>,
) -> Vec<(u64, String)> {
    record
        .disks()
        .iter()
        .filter(|d| !d.is_lun())
        .map(|d| {
            let class = d.storage_domain.as_ref().and_then(|sd| {
                classes
                    .get(&sd.id)
                    .or_else(|| sd.name.as_ref().and_then(|n| classes.get(n)))
            });
            (d.copied_bytes(), class.cloned().unwrap_or_default())
        })
        .collect()
}

/// Each disk Forklift copies of a VM record (as `record_disk_classes`, in the same order): its
/// allocated bytes (oVirt actual_size; the provisioned size when not known) and provisioned
/// bytes, for the warm change model.
pub fn record_disk_usage(record: &common::record::VmRecord) -> Vec<(u64, u64)> {
    record
        .disks()
        .iter()
        .filter(|d| !d.is_lun())
        .map(|d| {
            let total = d.provisioned_bytes.unwrap_or_else(|| d.copied_bytes());
            (d.actual_bytes.unwrap_or(total), total)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_and_yaml_give_the_same_objects_with_locations() {
        let jsonl = "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"a\"}}\n\n\
                     {\"apiVersion\":\"forklift.konveyor.io/v1beta1\",\"kind\":\"Plan\",\"metadata\":{\"name\":\"p\",\"namespace\":\"m\",\"annotations\":{\"liftkit.io/total-disk-bytes\":\"42\"}},\"spec\":{\"vms\":[{\"id\":\"1\",\"name\":\"vm1\"}]}}\n";
        let yaml = "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n\
                    apiVersion: forklift.konveyor.io/v1beta1\nkind: Plan\nmetadata:\n  name: p\n  namespace: m\n  annotations:\n    liftkit.io/total-disk-bytes: \"42\"\nspec:\n  vms:\n    - id: \"1\"\n      name: vm1\n";
        let mut a = Vec::new();
        parse("x.jsonl", jsonl, &mut a).unwrap();
        let mut b = Vec::new();
        parse("x.yaml", yaml, &mut b).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(
            a.iter().map(|o| &o.value).collect::<Vec<_>>(),
            b.iter().map(|o| &o.value).collect::<Vec<_>>()
        );
        assert_eq!(a[1].location, "x.jsonl:3");
        assert_eq!(b[1].location, "x.yaml:7");
        let plans = plans(&b).unwrap();
        assert_eq!(plans[0].bytes, 42);
        assert_eq!(
            plans[0].vms,
            [PlanVm {
                id: "1".into(),
                name: "vm1".into()
            }]
        );
    }

    #[test]
    fn bad_input_names_file_and_line() {
        let mut out = Vec::new();
        let err = parse(
            "in.jsonl",
            "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"a\"}}\n{oops\n",
            &mut out,
        )
        .unwrap_err();
        assert_eq!(err.code, common::ExitCode::DataErr);
        assert!(
            err.message.starts_with("in.jsonl:2: not valid JSON"),
            "{}",
            err.message
        );
        let err = parse(
            "in.yaml",
            "---\nkind: Namespace\n---\napiVersion: v1\nkind: [\n",
            &mut out,
        )
        .unwrap_err();
        assert!(
            err.message
                .starts_with("in.yaml:2: expected a Kubernetes object"),
            "{}",
            err.message
        );
        let err = parse("in.jsonl", "{\"schema\":1,\"id\":\"x\"}\n", &mut out).unwrap_err();
        assert!(
            err.message
                .starts_with("in.jsonl:1: expected a Kubernetes object"),
            "{}",
            err.message
        );
    }

    #[test]
    fn apply_order_puts_namespaces_and_rbac_first_and_plans_last() {
        let mut objects = Vec::new();
        let text = ["Plan", "Provider", "RoleBinding", "Namespace", "StorageMap", "Secret"]
            .iter()
            .map(|k| format!("{{\"apiVersion\":\"v1\",\"kind\":\"{k}\",\"metadata\":{{\"name\":\"x\",\"namespace\":\"n\"}}}}\n"))
            .collect::<String>();
        parse("in", &text, &mut objects).unwrap();
        let kinds: Vec<&str> = apply_order(&objects).iter().map(|o| o.kind()).collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "RoleBinding",
                "Provider",
                "StorageMap",
                "Secret",
                "Plan"
            ]
        );
    }
}
