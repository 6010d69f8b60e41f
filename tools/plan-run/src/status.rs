//! Reading Forklift's status: a Plan's readiness and blockers, a Migration's end, each VM's
//! phase, result and DiskTransfer progress. Plain JSON in, plain values out (no cluster needed).

use serde_json::Value;

/// A Forklift condition, as much of it as plan-run reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub kind: String,
    pub status: String,
    pub category: String,
    pub reason: String,
    pub message: String,
}

pub fn conditions(object: &Value) -> Vec<Condition> {
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            Condition {
                kind: text("type"),
                status: text("status"),
                category: text("category"),
                reason: text("reason"),
                message: text("message"),
            }
        })
        .collect()
}

fn has_true(object: &Value, kind: &str) -> bool {
    conditions(object)
        .iter()
        .any(|c| c.kind == kind && c.status == "True")
}

/// Ready=True, and the status is about the current spec when Forklift says which it saw.
pub fn plan_ready(plan: &Value) -> bool {
    let observed = plan["status"]["observedGeneration"].as_i64();
    let generation = plan["metadata"]["generation"].as_i64();
    let current = match (observed, generation) {
        (Some(o), Some(g)) => o >= g,
        _ => true,
    };
    current && has_true(plan, "Ready")
}

/// The conditions that block a plan: category Critical or Error.
pub fn blockers(object: &Value) -> Vec<Condition> {
    conditions(object)
        .into_iter()
        .filter(|c| c.status == "True" && matches!(c.category.as_str(), "Critical" | "Error"))
        .collect()
}

pub use common::forklift::Outcome;

/// The terminal condition of a Migration, a Plan or a VM status, if it has one.
pub fn outcome(object: &Value) -> Option<Outcome> {
    let conditions = match object.get("status") {
        Some(_) => conditions(object),
        // A VM status has its conditions inline.
        None => conditions(&serde_json::json!({"status": {"conditions": object["conditions"]}})),
    };
    let is = |kind: &str| {
        conditions
            .iter()
            .any(|c| c.kind == kind && c.status == "True")
    };
    if is("Failed") {
        Some(Outcome::Failed)
    } else if is("Canceled") {
        Some(Outcome::Canceled)
    } else if is("Succeeded") {
        Some(Outcome::Succeeded)
    } else {
        None
    }
}

/// One VM of a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmStatus {
    pub id: String,
    pub name: String,
    pub phase: String,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// The disk step copying now (the warm cutover's final copy in phase Finalize, else
    /// DiskTransfer): its tasks (one a disk), how many are Completed, and its bytes copied.
    pub disks: usize,
    pub disks_completed: usize,
    pub copy_bytes: u64,
    pub outcome: Option<Outcome>,
    pub error: Option<String>,
}

const MIB: u64 = 1 << 20;

/// Forklift v2.12.5 pkg/apis/forklift/v1beta1/doc.go: the VM phases in which disks copy:
/// PhaseCopyDisks (a cold copy, a warm precopy) and PhaseFinalize (a warm cutover's final copy).
pub const PHASE_COPY_DISKS: &str = "CopyDisks";
pub const PHASE_FINALIZE: &str = "Finalize";
/// PhaseCopyingPaused: a warm VM between precopies (nothing copies, nothing waits to).
pub const PHASE_COPYING_PAUSED: &str = "CopyingPaused";

/// The VMs of a Migration's (or a Plan's `status.migration`) status.
pub fn vms(status_owner: &Value) -> Vec<VmStatus> {
    let list = status_owner["status"]["vms"]
        .as_array()
        .or_else(|| status_owner["status"]["migration"]["vms"].as_array());
    list.into_iter().flatten().map(vm_status).collect()
}

/// A VM's pipeline step named `name`.
fn step<'a>(vm: &'a Value, name: &str) -> Option<&'a Value> {
    (vm["pipeline"].as_array().into_iter().flatten()).find(|s| s["name"] == name)
}

/// The step copying a VM's disks now. Forklift v2.12.5 pkg/controller/plan/migration.go: in
/// phase Finalize (warm) the final copy's progress goes to the migrator's step then, Cutover
/// (migrator/base `Step`), which stays the copy step once started; otherwise DiskTransfer's.
fn copy_step(vm: &Value) -> Option<&Value> {
    let cutover =
        step(vm, "Cutover").filter(|s| vm["phase"] == PHASE_FINALIZE || s["started"].is_string());
    cutover.or_else(|| step(vm, "DiskTransfer"))
}

/// One VM status of a Migration.
fn vm_status(vm: &Value) -> VmStatus {
    let text = |k: &str| vm[k].as_str().unwrap_or_default().to_string();
    // Forklift counts progress in MiB (annotation unit "MB", totals = bytes / 1 MiB).
    let mib = |s: Option<&Value>, k: &str| {
        s.and_then(|s| s["progress"][k].as_u64())
            .unwrap_or(0)
            .saturating_mul(MIB)
    };
    let transfer = step(vm, "DiskTransfer");
    let reasons: Vec<&str> = (vm["error"]["reasons"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    let completed = vm["phase"] == "Completed" || vm["completed"].is_string();
    let copy = copy_step(vm);
    // A task is Completed when its disk is (`setTaskCompleted`, and
    // `updatePopulatorCopyProgress` for the volume populators of cold oVirt migrations, which
    // leaves the other tasks' phase alone: a disk copying is not always Running).
    let tasks = copy.and_then(|s| s["tasks"].as_array());
    VmStatus {
        id: text("id"),
        name: text("name"),
        phase: text("phase"),
        bytes_done: mib(transfer, "completed"),
        bytes_total: mib(transfer, "total"),
        disks: tasks.map_or(0, Vec::len),
        disks_completed: tasks.map_or(0, |t| {
            t.iter().filter(|t| t["phase"] == "Completed").count()
        }),
        copy_bytes: mib(copy, "completed"),
        outcome: outcome(vm).filter(|_| completed || vm["conditions"].is_array()),
        error: (!reasons.is_empty()).then(|| reasons.join("; ")),
    }
}

/// The attempt number of a Migration named `<plan>-<n>`.
pub fn attempt(plan: &str, migration: &str) -> Option<u32> {
    migration
        .strip_prefix(plan)?
        .strip_prefix('-')?
        .parse()
        .ok()
        .filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn readiness_and_blockers() {
        let plan = json!({"metadata": {"generation": 2}, "status": {"observedGeneration": 2, "conditions": [
            {"type": "Ready", "status": "True", "category": "Required"},
            {"type": "TargetNameNotValid", "status": "True", "category": "Warn"}]}});
        assert!(plan_ready(&plan));
        assert!(blockers(&plan).is_empty());
        let stale = json!({"metadata": {"generation": 3}, "status": {"observedGeneration": 2,
            "conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(!plan_ready(&stale));
        let blocked = json!({"status": {"conditions": [
            {"type": "VMNetworksNotMapped", "status": "True", "category": "Critical", "message": "not mapped"}]}});
        assert!(!plan_ready(&blocked));
        assert_eq!(blockers(&blocked)[0].message, "not mapped");
    }

    #[test]
    fn vm_progress_and_results() {
        let migration = json!({"status": {"conditions": [{"type": "Failed", "status": "True"}], "vms": [
            {"id": "a", "name": "one", "phase": "Completed", "conditions": [{"type": "Succeeded", "status": "True"}],
             "pipeline": [{"name": "DiskTransfer", "progress": {"completed": 2048, "total": 2048}}]},
            {"id": "b", "name": "two", "phase": "CopyDisks",
             "pipeline": [{"name": "Initialize", "progress": {"completed": 1, "total": 1}},
                          {"name": "DiskTransfer", "progress": {"completed": 10, "total": 100},
                           "tasks": [{"name": "d1", "phase": "Running"}, {"name": "d2", "phase": "Completed"},
                                     {"name": "d3", "phase": "Pending"}]}]},
            {"id": "c", "name": "three", "phase": "Completed", "conditions": [{"type": "Failed", "status": "True"}],
             "error": {"phase": "CopyDisks", "reasons": ["disk gone", "again"]}}]}});
        assert_eq!(outcome(&migration), Some(Outcome::Failed));
        let vms = vms(&migration);
        assert_eq!(vms[0].outcome, Some(Outcome::Succeeded));
        assert_eq!(vms[0].bytes_total, 2048 * MIB);
        assert_eq!(
            (vms[1].bytes_done, vms[1].bytes_total),
            (10 * MIB, 100 * MIB)
        );
        assert_eq!(vms[1].outcome, None);
        // Three disk tasks, one done.
        assert_eq!((vms[1].disks, vms[1].disks_completed), (3, 1));
        assert_eq!((vms[1].copy_bytes, vms[0].disks), (10 * MIB, 0));
        assert_eq!(vms[2].outcome, Some(Outcome::Failed));
        assert_eq!(vms[2].error.as_deref(), Some("disk gone; again"));
    }

    #[test]
    fn attempts() {
        assert_eq!(attempt("plan-a", "plan-a-2"), Some(2));
        assert_eq!(attempt("plan-a", "plan-a-b-1"), None);
        assert_eq!(attempt("plan-a", "plan-a-0"), None);
        assert_eq!(attempt("plan-a", "plan-ab"), None);
    }
}
