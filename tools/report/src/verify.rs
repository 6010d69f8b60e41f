//! The verification section: vm-verify's checks per VM. Its records are one JSON object per
//! check, `{"vm", "check", "ok", "message"}` (vm-verify may write only the failed ones): a VM
//! passes when none of its checks failed; VMs a live run migrated count as checked too.

use crate::inputs::Check;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct Verification {
    pub passed: Vec<String>,
    pub failed: Vec<FailedVm>,
    /// Failed checks by name, most VMs first.
    pub checks: Vec<(String, usize)>,
}

#[derive(Debug, Serialize)]
pub struct FailedVm {
    pub vm: String,
    pub checks: Vec<(String, String)>,
}

/// `migrated`: VM names a live run reported succeeded (they passed unless a check failed).
pub fn build(checks: &[Check], migrated: &[String]) -> Verification {
    let mut by_vm: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for name in migrated {
        by_vm.entry(name).or_default();
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in checks {
        let failures = by_vm.entry(&c.vm).or_default();
        if !c.ok {
            failures.push((c.check.clone(), c.message.clone().unwrap_or_default()));
            *counts.entry(&c.check).or_default() += 1;
        }
    }
    let (passed, failed): (Vec<_>, Vec<_>) = by_vm.into_iter().partition(|(_, f)| f.is_empty());
    let mut checks: Vec<(String, usize)> = counts
        .into_iter()
        .map(|(c, n)| (c.to_string(), n))
        .collect();
    checks.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Verification {
        passed: passed.into_iter().map(|(vm, _)| vm.to_string()).collect(),
        failed: failed
            .into_iter()
            .map(|(vm, checks)| FailedVm {
                vm: vm.to_string(),
                checks,
            })
            .collect(),
        checks,
    }
}
