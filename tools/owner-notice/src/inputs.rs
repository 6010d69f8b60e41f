//! What owner-notice reads, each decoded into the fields a notice shows: owner-group's VM records,
//! rbac-gen's and plan-gen's objects, plan-gen's preflight report, plan-run's events, ip-budget's
//! allocations, vm-verify's findings and the address map. Other fields are ignored.

use common::jsonl::Inputs;
use common::record::{OwnerKind, VmRecord, parse_vm_record};
use common::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An owner as owner-group names it: kind and full principal.
pub type OwnerKey = (OwnerKind, String);

/// One VM to move, from owner-group's record.
#[derive(Debug, Clone)]
pub struct Vm {
    pub id: String,
    pub name: String,
    pub namespace: Option<String>,
    pub fqdn: Option<String>,
    pub owners: Vec<common::record::Owner>,
    pub nics: Vec<common::record::Nic>,
}

/// What the records say of a user: the name to address them by and their e-mail (the engine's).
#[derive(Debug, Clone, Default)]
pub struct Contact {
    pub display_name: Option<String>,
    pub email: Option<String>,
}

pub struct Records {
    pub vms: Vec<Vm>,
    /// Per owner principal (user_name or principal, as owner-group takes it), the engine's user.
    pub contacts: BTreeMap<String, Contact>,
}

/// owner-group's records (stdin when `paths` is empty), each checked as a VM record.
pub fn read_records(paths: &[PathBuf]) -> Result<Records> {
    let mut records = Records {
        vms: Vec::new(),
        contacts: BTreeMap::new(),
    };
    Inputs::new(paths).for_each(|value: Value, location| {
        let record = parse_vm_record(value).map_err(|e| Error::data(format!("{location}: {e}")))?;
        if record.owners.is_none() {
            return Err(Error::data(format!(
                "{location}: VM {} has no owners field: run owner-group first",
                record.name
            )));
        }
        collect_contacts(&record, &mut records.contacts);
        records.vms.push(Vm {
            nics: record.nics().to_vec(),
            owners: record.owners.clone().unwrap_or_default(),
            id: record.id,
            name: record.name,
            namespace: record.target_namespace,
            fqdn: record.fqdn,
        });
        Ok(())
    })?;
    Ok(records)
}

/// The users of a record's permissions, by both names owner-group may take as principal.
fn collect_contacts(record: &VmRecord, contacts: &mut BTreeMap<String, Contact>) {
    for user in record.permissions().iter().filter_map(|p| p.user.as_ref()) {
        let display_name = [user.name.as_deref(), user.last_name.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let contact = Contact {
            display_name: (!display_name.is_empty()).then_some(display_name),
            email: user.email.clone().filter(|e| !e.trim().is_empty()),
        };
        for key in [user.user_name.as_deref(), user.principal.as_deref()]
            .into_iter()
            .flatten()
        {
            contacts
                .entry(key.to_string())
                .or_insert_with(|| contact.clone());
        }
    }
}

/// plan-gen's findings, ip-budget's allocations and vm-verify's checks, as report reads them too.
pub use common::jsonl::read_all;
pub use common::record::{Allocation, Check, Finding};

/// A Plan of plan-gen's: where its VMs go and how.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub namespace: String,
    /// Warm: the source VM runs while its disks are copied and stops at the cutover only.
    pub warm: bool,
    /// Per VM id: the name the VM gets on the target, when plan-gen gave one.
    pub vms: BTreeMap<String, Option<String>>,
}

/// A RoleBinding of rbac-gen's: the oVirt principals it stands for, in its namespace.
#[derive(Debug, Clone)]
pub struct Binding {
    pub name: String,
    pub namespace: String,
    pub principals: Vec<String>,
    pub role_kind: String,
    pub role: String,
    pub subjects: Vec<(String, String)>,
}

pub struct Manifests {
    pub plans: Vec<Plan>,
    pub bindings: Vec<Binding>,
}

/// Plans and RoleBindings among rbac-gen's and plan-gen's objects (JSON lines or YAML, read as
/// plan-run reads them); the other objects are skipped.
pub fn read_manifests(paths: &[PathBuf]) -> Result<Manifests> {
    let mut manifests = Manifests {
        plans: Vec::new(),
        bindings: Vec::new(),
    };
    if paths.is_empty() {
        return Ok(manifests);
    }
    for object in plan_run::manifest::read(paths)? {
        let value = &object.value;
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        match object.kind() {
            "Plan" => manifests.plans.push(Plan {
                name: object.name().to_string(),
                namespace: object.namespace().unwrap_or_default().to_string(),
                // Forklift v2.12.5 pkg/apis/forklift/v1beta1/plan.go `Plan.IsWarm`: the deprecated
                // `warm: true` or `type: warm`.
                warm: value["spec"]["type"] == "warm" || value["spec"]["warm"] == true,
                vms: value["spec"]["vms"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|vm| {
                        let id = vm["id"].as_str()?.to_string();
                        Some((id, vm["targetName"].as_str().map(str::to_string)))
                    })
                    .collect(),
            }),
            "RoleBinding" => manifests.bindings.push(Binding {
                name: object.name().to_string(),
                namespace: object.namespace().unwrap_or_default().to_string(),
                principals: value["metadata"]["annotations"][rbac_gen::OVIRT_PRINCIPALS_ANNOTATION]
                    .as_str()
                    .unwrap_or_default()
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect(),
                role_kind: text(&value["roleRef"]["kind"]),
                role: text(&value["roleRef"]["name"]),
                subjects: value["subjects"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| (text(&s["kind"]), text(&s["name"])))
                    .collect(),
            }),
            _ => {}
        }
    }
    Ok(manifests)
}

/// One row of `--address-map`: an owner (full principal, user name or short name) and where to
/// write to.
#[derive(Debug, Clone)]
pub struct MappedAddress {
    pub address: lettre::Address,
    pub display_name: Option<String>,
}

/// The address map: CSV rows `owner,address[,display name]`; blank lines, `#` comments and a
/// header row (its first column says `owner` or `principal`) are skipped. Errors name file:line.
pub fn read_address_map(path: &Path) -> Result<BTreeMap<String, MappedAddress>> {
    let name = path.display().to_string();
    let text = common::jsonl::read_to_string(path)?;
    let mut map = BTreeMap::new();
    for row in common::csvrows::read(&name, &text, &["owner", "principal"])? {
        let (line, row) = (row.line, row.fields);
        if !(2..=3).contains(&row.len()) || row[0].is_empty() || row[1].is_empty() {
            return Err(Error::config(format!(
                "{name}:{line}: expected owner,address[,display name], found {} column(s)",
                row.len()
            )));
        }
        let address: lettre::Address = row[1].parse().map_err(|e| {
            Error::config(format!(
                "{name}:{line}: {:?} is not an e-mail address: {e}",
                &row[1]
            ))
        })?;
        let display_name = row.get(2).filter(|d| !d.is_empty()).cloned();
        map.insert(
            row[0].clone(),
            MappedAddress {
                address,
                display_name,
            },
        );
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_map_rows_header_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map.csv");
        std::fs::write(
            &path,
            "owner,address,name\n# dba's list\nexample.com/Groups/dba,dba@example.com,DBA team\nbob,bob@example.org\n",
        )
        .unwrap();
        let map = read_address_map(&path).unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(
            map["example.com/Groups/dba"].address.to_string(),
            "dba@example.com"
        );
        assert_eq!(
            map["example.com/Groups/dba"].display_name.as_deref(),
            Some("DBA team")
        );
        std::fs::write(&path, "bob,not an address\n").unwrap();
        let err = read_address_map(&path).unwrap_err();
        assert_eq!(err.code, common::ExitCode::Config);
        assert!(err.message.contains("map.csv:1: "), "{err}");
    }
}
