//! One notice per owner, built from the inputs: the owner's VMs with their plan, window and
//! downtime, network changes and access, the VMs the preflight left out, and after the move what
//! vm-verify found. Plain data (serialised into the templates); nothing here is escaped yet.

use crate::inputs::{
    Allocation, Binding, Check, Contact, Finding, Manifests, MappedAddress, OwnerKey, Plan, Vm,
};
use crate::schedule::Schedule;
use common::names::{sanitize_label, stable_hash, with_suffix};
use common::record::{Nic, OwnerKind};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub owner: OwnerView,
    /// The VMs going into plans (before), or moved (after).
    pub vms: Vec<VmNotice>,
    pub left_out: Vec<LeftOut>,
    pub namespaces: Vec<Access>,
    /// The agreed downtime window (plan-run's --window), as given.
    pub window: Option<String>,
    pub time_zone: String,
    /// `simulated` (plan-run --simulate), `live` (a run's events) or absent (no --events).
    pub schedule: Option<&'static str>,
    pub after: bool,
    /// The notice's file name without extension (unique among the owners).
    pub file: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OwnerView {
    /// `user` or `group`.
    pub kind: &'static str,
    pub name: String,
    pub principal: String,
    pub display_name: String,
    pub address: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Access {
    pub namespace: String,
    /// rbac-gen's RoleBindings for this owner in the namespace.
    pub bindings: Vec<BindingView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BindingView {
    pub name: String,
    pub role_kind: String,
    pub role: String,
    /// `User alice`, `Group dba`.
    pub subjects: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct VmNotice {
    pub name: String,
    pub id: String,
    pub namespace: String,
    /// The VM's name on the target, when plan-gen gave it another.
    pub target_name: Option<String>,
    pub plan: Option<String>,
    /// `cold` or `warm`.
    pub migration: Option<&'static str>,
    pub start: Option<String>,
    pub end: Option<String>,
    /// Cold: at most from its plan's start to its end (the source is powered off first).
    pub downtime: Option<String>,
    /// A warm VM's cutover (when it stops), from plan-run's schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cutover: Option<String>,
    /// What blocks its plan (plan-run's `blocked` event).
    pub blocked: Option<String>,
    /// A live run's or simulation's result: Succeeded, Failed, Canceled.
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub fqdn: Option<String>,
    pub nics: Vec<NicChange>,
    pub dns: Vec<DnsChange>,
    /// After the move: moved, failed, check (moved, some checks failed) or unknown.
    pub result: Option<&'static str>,
    pub failed_checks: Vec<CheckView>,
    pub passed_checks: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct NicChange {
    pub nic: String,
    pub mac: Option<String>,
    pub old_network: Option<String>,
    pub old_vlan: Option<u32>,
    pub old_addresses: Vec<String>,
    pub new_network: Option<String>,
    pub new_addresses: Vec<String>,
    pub changed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DnsChange {
    pub fqdn: String,
    pub old: Vec<String>,
    pub new: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckView {
    pub check: String,
    pub message: String,
    pub expected: Option<String>,
    pub actual: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LeftOut {
    pub name: String,
    pub namespace: String,
    pub reasons: Vec<String>,
}

/// Everything read, for the builder.
pub struct Inputs<'a> {
    pub vms: &'a [Vm],
    pub contacts: &'a BTreeMap<String, Contact>,
    pub manifests: &'a Manifests,
    pub have_plans: bool,
    pub findings: &'a [Finding],
    pub schedule: &'a Schedule,
    pub allocations: &'a [Allocation],
    pub checks: &'a [Check],
    pub address_map: &'a BTreeMap<String, MappedAddress>,
}

pub struct Settings {
    pub zone: jiff::tz::TimeZone,
    pub window: Option<String>,
    pub after: bool,
}

/// What the owners' notices leave to people: addresses the records had but could not be used.
#[derive(Default)]
pub struct Warnings {
    pub bad_addresses: Vec<String>,
    pub unowned: Vec<String>,
}

/// One notice per owner (users and groups, sorted by kind and principal).
pub fn build(inputs: &Inputs, settings: &Settings) -> (Vec<Notice>, Warnings) {
    let mut warnings = Warnings::default();
    let mut owners: BTreeMap<OwnerKey, (common::record::Owner, Vec<&Vm>)> = BTreeMap::new();
    for vm in inputs.vms {
        if vm.owners.is_empty() {
            warnings.unowned.push(vm.name.clone());
        }
        for owner in &vm.owners {
            owners
                .entry((owner.kind, owner.principal.clone()))
                .or_insert_with(|| (owner.clone(), Vec::new()))
                .1
                .push(vm);
        }
    }
    let files = file_names(owners.keys());
    let view = VmViews::new(inputs, settings);
    let notices = owners
        .into_iter()
        .map(|(key, (owner, mut vms))| {
            vms.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
            let owner_view = owner_view(&owner, inputs, &mut warnings);
            let (planned, left_out) = view.split(&vms);
            Notice {
                owner: owner_view,
                namespaces: access(&key, &vms, &inputs.manifests.bindings),
                vms: planned,
                left_out,
                window: settings.window.clone(),
                time_zone: settings
                    .zone
                    .iana_name()
                    .unwrap_or("the local time zone")
                    .to_string(),
                schedule: inputs.schedule.kind,
                after: settings.after,
                file: files[&key].clone(),
            }
        })
        .collect();
    (notices, warnings)
}

/// A file name per owner: `user-alice`, `group-dba`; a name that had to change to be a safe file
/// name, or that two owners would share, gets a stable hash of the owner's kind and principal.
fn file_names<'a>(keys: impl Iterator<Item = &'a OwnerKey>) -> HashMap<OwnerKey, String> {
    let keys: Vec<&OwnerKey> = keys.collect();
    let raw = |(kind, principal): &OwnerKey| {
        let short = common::names::short_principal(principal);
        format!("{}-{short}", kind_word(*kind))
    };
    let mut count: HashMap<String, usize> = HashMap::new();
    for key in &keys {
        *count.entry(sanitize_label(&raw(key))).or_default() += 1;
    }
    keys.into_iter()
        .map(|key| {
            let raw = raw(key);
            let base = sanitize_label(&raw);
            let name = if base != raw || count[&base] > 1 {
                with_suffix(&base, &stable_hash(&[kind_word(key.0), key.1.as_str()]))
            } else {
                base
            };
            (key.clone(), name)
        })
        .collect()
}

pub fn kind_word(kind: OwnerKind) -> &'static str {
    match kind {
        OwnerKind::User => "user",
        OwnerKind::Group => "group",
    }
}

/// The owner, with the name and address to write to: --address-map first (by full principal,
/// then short name), then the engine's user e-mail, checked as an address.
fn owner_view(
    owner: &common::record::Owner,
    inputs: &Inputs,
    warnings: &mut Warnings,
) -> OwnerView {
    let mapped = [owner.principal.as_str(), owner.name.as_str()]
        .iter()
        .find_map(|k| inputs.address_map.get(*k));
    let contact = inputs.contacts.get(&owner.principal);
    let engine_address = contact.and_then(|c| c.email.as_deref()).and_then(|email| {
        match email.parse::<lettre::Address>() {
            Ok(address) => Some(address.to_string()),
            Err(e) => {
                warnings.bad_addresses.push(format!(
                    "{} {}: the engine's e-mail {email:?} is not an address ({e})",
                    kind_word(owner.kind),
                    owner.principal
                ));
                None
            }
        }
    });
    let display_name = mapped
        .and_then(|m| m.display_name.clone())
        .or_else(|| contact.and_then(|c| c.display_name.clone()))
        .unwrap_or_else(|| owner.name.clone());
    OwnerView {
        kind: kind_word(owner.kind),
        name: owner.name.clone(),
        principal: owner.principal.clone(),
        display_name,
        address: mapped.map(|m| m.address.to_string()).or(engine_address),
    }
}

/// The owner's RoleBindings (rbac-gen's, found by its principals annotation) per namespace of
/// their VMs.
fn access(key: &OwnerKey, vms: &[&Vm], bindings: &[Binding]) -> Vec<Access> {
    let namespaces: BTreeSet<&str> = vms.iter().filter_map(|v| v.namespace.as_deref()).collect();
    namespaces
        .into_iter()
        .map(|namespace| Access {
            namespace: namespace.to_string(),
            bindings: bindings
                .iter()
                .filter(|b| b.namespace == namespace && b.principals.contains(&key.1))
                .map(|b| BindingView {
                    name: b.name.clone(),
                    role_kind: b.role_kind.clone(),
                    role: b.role.clone(),
                    subjects: b
                        .subjects
                        .iter()
                        .map(|(kind, name)| format!("{kind} {name}"))
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

/// Per-VM views, from the inputs joined once.
struct VmViews<'a> {
    inputs: &'a Inputs<'a>,
    settings: &'a Settings,
    plans: HashMap<&'a str, &'a Plan>,
    findings: HashMap<&'a str, Vec<&'a Finding>>,
    allocations: HashMap<&'a str, Vec<&'a Allocation>>,
    checks: HashMap<&'a str, Vec<&'a Check>>,
}

impl<'a> VmViews<'a> {
    fn new(inputs: &'a Inputs<'a>, settings: &'a Settings) -> Self {
        let mut views = VmViews {
            inputs,
            settings,
            plans: HashMap::new(),
            findings: HashMap::new(),
            allocations: HashMap::new(),
            checks: HashMap::new(),
        };
        for plan in &inputs.manifests.plans {
            for id in plan.vms.keys() {
                views.plans.insert(id, plan);
            }
        }
        for f in inputs.findings {
            views.findings.entry(&f.vm_id).or_default().push(f);
        }
        for a in inputs.allocations {
            views.allocations.entry(&a.vm_id).or_default().push(a);
        }
        for c in inputs.checks {
            views.checks.entry(&c.vm).or_default().push(c);
        }
        views
    }

    /// The VMs in plans (or all, without --manifests) and those left out, with why.
    fn split(&self, vms: &[&Vm]) -> (Vec<VmNotice>, Vec<LeftOut>) {
        let mut planned = Vec::new();
        let mut left_out = Vec::new();
        for vm in vms {
            let findings = self.findings.get(vm.id.as_str());
            let blocked = findings.is_some_and(|f| f.iter().any(|f| f.left_out));
            let plan = self.plans.get(vm.id.as_str()).copied();
            if blocked || (self.inputs.have_plans && plan.is_none()) {
                left_out.push(self.left_out(vm, findings.map(Vec::as_slice).unwrap_or(&[])));
            } else {
                planned.push(self.vm_notice(vm, plan));
            }
        }
        (planned, left_out)
    }

    fn left_out(&self, vm: &Vm, findings: &[&Finding]) -> LeftOut {
        let mut reasons: Vec<String> = findings
            .iter()
            .filter(|f| f.category == "Critical")
            .map(|f| {
                let label = f.label.as_deref().unwrap_or(&f.concern_id);
                match f.assessment.as_deref().filter(|a| !a.is_empty()) {
                    Some(assessment) => format!("{label}: {assessment}"),
                    None => label.to_string(),
                }
            })
            .collect();
        if reasons.is_empty() {
            reasons.push("not in any plan".into());
        }
        LeftOut {
            name: vm.name.clone(),
            namespace: vm.namespace.clone().unwrap_or_default(),
            reasons,
        }
    }

    fn vm_notice(&self, vm: &Vm, plan: Option<&Plan>) -> VmNotice {
        let mut notice = VmNotice {
            name: vm.name.clone(),
            id: vm.id.clone(),
            namespace: vm.namespace.clone().unwrap_or_default(),
            target_name: plan
                .and_then(|p| p.vms.get(&vm.id).cloned().flatten())
                .filter(|t| *t != vm.name),
            plan: plan.map(|p| p.name.clone()),
            migration: plan.map(|p| if p.warm { "warm" } else { "cold" }),
            fqdn: vm.fqdn.clone(),
            ..VmNotice::default()
        };
        if let Some(plan) = plan {
            self.timing(&mut notice, vm, plan);
        }
        self.network(&mut notice, vm);
        if self.settings.after {
            self.verification(&mut notice, vm);
        }
        notice
    }

    /// Start, end and downtime from the schedule. Forklift v2.12.5
    /// pkg/controller/plan/migrator/base/migrator.go `coldItinerary`: a cold migration powers
    /// the source off right after it starts (StorePowerState, PowerOffSource) and the VM runs
    /// again only once created on the target (CreateVM), so the downtime is at most from the
    /// plan's start to the VM's end; `warmItinerary` powers it off only after the precopies, at
    /// the cutover.
    fn timing(&self, notice: &mut VmNotice, vm: &Vm, plan: &Plan) {
        let schedule = self.inputs.schedule;
        let run = schedule
            .plans
            .get(&(plan.namespace.clone(), plan.name.clone()));
        let started = run.and_then(|r| r.started);
        notice.blocked = run.and_then(|r| r.blocked.clone());
        notice.start = started.map(|t| self.time(t));
        if let Some(done) = schedule.vms.get(&vm.id) {
            notice.end = Some(self.time(done.time));
            notice.outcome = Some(done.outcome.clone());
            notice.error = done.error.clone();
            if let (Some(start), false) = (started, plan.warm) {
                let secs = done.time.duration_since(start).as_secs_f64().max(0.0);
                notice.downtime = Some(plan_run::human_secs(secs));
            }
        }
        // Warm: the VM is down from the cutover to its creation on the target; the schedule
        // gives the simulated downtime per VM, else plan-run's forecast for the plan
        // (plan-run's crate::cutover).
        if plan.warm {
            let cutover = run.and_then(|r| r.cutover);
            notice.cutover = cutover.map(|(at, _)| self.time(at));
            let secs = schedule
                .vms
                .get(&vm.id)
                .and_then(|d| d.downtime_secs)
                .or(cutover.map(|(_, secs)| secs));
            notice.downtime = secs.map(plan_run::human_secs);
        }
    }

    fn time(&self, t: jiff::Timestamp) -> String {
        t.to_zoned(self.settings.zone.clone())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string()
    }

    /// The NICs ip-budget allocated (old network and addresses, new ones) and the DNS changes.
    fn network(&self, notice: &mut VmNotice, vm: &Vm) {
        let Some(allocations) = self.allocations.get(vm.id.as_str()) else {
            return;
        };
        let mut old_all = Vec::new();
        let mut new_all = Vec::new();
        for a in allocations {
            let source: Option<&Nic> = vm.nics.iter().find(|n| {
                (a.mac.is_some() && n.mac == a.mac) || (a.nic.is_some() && n.name == a.nic)
            });
            let old: Vec<String> = a.old_ipv4.iter().chain(&a.old_ipv6).cloned().collect();
            let new: Vec<String> = a.new_ipv4.iter().chain(&a.new_ipv6).cloned().collect();
            if a.changed {
                old_all.extend(old.iter().cloned());
                new_all.extend(new.iter().cloned());
            }
            notice.nics.push(NicChange {
                nic: a.nic.clone().unwrap_or_default(),
                mac: a.mac.clone(),
                old_network: a.source_network.clone(),
                old_vlan: source.and_then(|n| n.network.as_ref()?.vlan),
                old_addresses: old,
                new_network: a.target.clone(),
                new_addresses: new,
                changed: a.changed,
            });
        }
        // ip-budget writes the fqdn with the VM's first NIC; nsupdate changes follow changed NICs.
        let fqdn = allocations.iter().find_map(|a| a.fqdn.clone());
        if let (Some(fqdn), false) = (fqdn, new_all.is_empty()) {
            notice.dns.push(DnsChange {
                fqdn,
                old: old_all,
                new: new_all,
            });
        }
    }

    /// vm-verify's checks of the VM (by its name or target name; by namespace too when the
    /// finding names one), and what the run says of it.
    fn verification(&self, notice: &mut VmNotice, vm: &Vm) {
        let names = [Some(vm.name.as_str()), notice.target_name.as_deref()];
        let checks: Vec<&Check> = names
            .iter()
            .flatten()
            .filter_map(|n| self.checks.get(n))
            .flatten()
            .filter(|c| {
                c.namespace
                    .as_deref()
                    .is_none_or(|ns| ns == notice.namespace)
            })
            .copied()
            .collect();
        let shown = |v: &Option<serde_json::Value>| {
            v.as_ref().map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        for c in &checks {
            if c.ok {
                notice.passed_checks += 1;
            } else {
                notice.failed_checks.push(CheckView {
                    check: c.check.clone(),
                    message: c.message.clone().unwrap_or_default(),
                    expected: shown(&c.expected),
                    actual: shown(&c.actual),
                });
            }
        }
        notice.result = Some(match notice.outcome.as_deref() {
            Some("Failed" | "Canceled") => "failed",
            _ if !notice.failed_checks.is_empty() => "check",
            Some("Succeeded") => "moved",
            _ if !checks.is_empty() => "moved",
            _ => "unknown",
        });
    }
}
