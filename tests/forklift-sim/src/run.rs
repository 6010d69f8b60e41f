//! One executing Migration of a plan: per VM the oVirt cold pipeline (Initialize, DiskTransfer,
//! VirtualMachineCreation), rendered as Forklift's `status.migration.vms[]`, and rebuilt from that
//! status after a restart.

use crate::conditions::{self, ADVISORY, cond, durable};
use crate::world::{World, WorldVm};
use serde_json::{Value, json};

pub const MIB: f64 = 1024.0 * 1024.0;

pub use common::forklift::Outcome;

#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// Waiting for a max_vm_inflight slot.
    Pending,
    Initialize {
        left_secs: f64,
    },
    /// DiskTransfer: the disks copied (warm: one precopy).
    Transfer,
    /// Warm: CopyingPaused, until the next precopy or the cutover.
    Paused,
    /// Warm: the cutover, copying the last changes with the source VM off.
    Cutover,
    Create {
        left_secs: f64,
    },
    Done(Outcome),
}

#[derive(Debug, Clone)]
pub struct DiskRun {
    pub id: String,
    pub alias: String,
    pub total_bytes: f64,
    /// The disk's allocated bytes (oVirt actual_size), what the guest changes a share of.
    pub used_bytes: f64,
    /// Bytes of the copy under way (the whole disk, or a warm delta).
    pub stage_bytes: f64,
    pub remaining_bytes: f64,
    /// Bytes copied by earlier warm stages.
    pub copied_before: f64,
    /// The source storage domain's id (the StorageMap gives the target class the link model's
    /// write caps apply to).
    pub storage_domain: Option<String>,
    pub started: Option<String>,
    pub completed: Option<String>,
}

impl DiskRun {
    pub(crate) fn total_mb(&self) -> i64 {
        (self.total_bytes / MIB) as i64
    }
    /// The task's progress: the share copied of the stage under way, in MB of the disk (as
    /// Forklift's `updateCopyProgress` scales the DataVolume's percent to the task's total).
    pub(crate) fn completed_mb(&self) -> i64 {
        if self.remaining_bytes <= 0.0 {
            self.total_mb()
        } else if self.stage_bytes > 0.0 {
            let done = (self.stage_bytes - self.remaining_bytes) / self.stage_bytes;
            ((done * self.total_bytes / MIB) as i64).min(self.total_mb())
        } else {
            0
        }
    }
    /// Starts a new copy of `bytes` (a warm precopy or the cutover's delta).
    pub fn restart(&mut self, bytes: f64, now: &str) {
        self.copied_before += self.stage_bytes - self.remaining_bytes.max(0.0);
        self.stage_bytes = bytes;
        self.remaining_bytes = bytes;
        self.started = Some(now.to_string());
        self.completed = None;
    }
}

#[derive(Debug, Clone)]
pub struct VmRun {
    pub id: String,
    pub name: String,
    pub target_name: String,
    /// The plan's VM entry, inlined into the status as Forklift does.
    pub spec: Value,
    pub stage: Stage,
    pub disks: Vec<DiskRun>,
    pub started: Option<String>,
    pub completed: Option<String>,
    /// Start and end times of Initialize, DiskTransfer, VirtualMachineCreation and (warm)
    /// Cutover.
    pub step_started: [Option<String>; 4],
    pub step_completed: [Option<String>; 4],
    /// Inject a failure once this many bytes are transferred.
    pub fail_at_bytes: Option<f64>,
    pub error: Option<(String, String)>,
    /// A VM that succeeded in an earlier Migration: its status is kept verbatim.
    pub kept: Option<Value>,
    pub target_created: bool,
    /// Retries of the target VM's creation after transient API errors.
    pub create_backoff: crate::retry::Backoff,
    /// Simulated clock when the VM started, for events.
    pub sim_started_secs: f64,
    pub wait_reason: Option<String>,
    /// Simulated seconds spent in DiskTransfer waiting on the cluster (no disk flowing yet, or
    /// all copied but not all PVCs bound): taken out of VirtualMachineCreation's share of the
    /// per-VM overhead, which is what that overhead stands for.
    pub cluster_wait_secs: f64,
    /// A warm migration's precopies and cutover.
    pub warm: Option<crate::warm::WarmState>,
    /// Seconds into the current step (tick) at which the VM entered its stage: a phase that
    /// ends between two ticks hands the rest of the step to the next phase, so the simulated
    /// times do not depend on how late the ticks come. Infinite: at the step's end.
    pub entered_at: f64,
    /// Seconds into the current step at which its copy moved its last byte, if it did then.
    pub copy_ended_at: Option<f64>,
    /// The simulated clock when it finished, for events.
    pub finished_sim: Option<f64>,
}

impl VmRun {
    pub fn new(spec: &Value, vm: Option<&WorldVm>, target_name: String) -> VmRun {
        let disks = vm
            .map(|vm| {
                vm.copied_disks()
                    .map(|d| DiskRun {
                        id: d.id.clone(),
                        alias: d.alias.clone(),
                        total_bytes: d.provisioned_bytes as f64,
                        used_bytes: d.actual_bytes as f64,
                        stage_bytes: d.provisioned_bytes as f64,
                        remaining_bytes: d.provisioned_bytes as f64,
                        copied_before: 0.0,
                        storage_domain: d.storage_domain.clone(),
                        started: None,
                        completed: None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        VmRun {
            id: vm
                .map(|v| v.id.clone())
                .unwrap_or_else(|| spec["id"].as_str().unwrap_or_default().to_string()),
            name: vm
                .map(|v| v.name.clone())
                .unwrap_or_else(|| spec["name"].as_str().unwrap_or_default().to_string()),
            target_name,
            spec: spec.clone(),
            stage: Stage::Pending,
            disks,
            started: None,
            completed: None,
            step_started: Default::default(),
            step_completed: Default::default(),
            fail_at_bytes: None,
            error: None,
            kept: None,
            target_created: false,
            create_backoff: Default::default(),
            sim_started_secs: 0.0,
            wait_reason: None,
            cluster_wait_secs: 0.0,
            warm: None,
            entered_at: 0.0,
            copy_ended_at: None,
            finished_sim: None,
        }
    }

    pub fn total_bytes(&self) -> f64 {
        self.disks.iter().map(|d| d.total_bytes).sum()
    }

    pub fn transferred_bytes(&self) -> f64 {
        self.disks
            .iter()
            .map(|d| d.copied_before + d.stage_bytes - d.remaining_bytes.max(0.0))
            .sum()
    }

    pub fn in_flight(&self) -> bool {
        !matches!(self.stage, Stage::Pending | Stage::Done(_))
    }

    pub fn outcome(&self) -> Option<Outcome> {
        match self.stage {
            Stage::Done(o) => Some(o),
            _ => None,
        }
    }

    /// Finishes the VM with `outcome`; the step running gets the error, if any.
    pub fn finish(&mut self, outcome: Outcome, now: &str, error: Option<(String, String)>) {
        let step = match self.stage {
            Stage::Initialize { .. } => Some(0),
            Stage::Transfer | Stage::Paused => Some(1),
            Stage::Create { .. } => Some(2),
            Stage::Cutover => Some(3),
            _ => None,
        };
        if outcome == Outcome::Succeeded
            && let Some(step) = step
        {
            self.step_completed[step] = Some(now.to_string());
        }
        if self.started.is_some() || outcome != Outcome::Canceled {
            self.started.get_or_insert_with(|| now.to_string());
        }
        self.completed = Some(now.to_string());
        self.error = error;
        self.stage = Stage::Done(outcome);
    }

    /// The injected failure: the VM fails in CopyDisks. A tick may carry the transfer past the
    /// failure point: the failure happened midway, so no disk got past half.
    pub fn fail_midway(&mut self, now: &str) {
        for d in &mut self.disks {
            d.remaining_bytes = d.remaining_bytes.max(d.total_bytes / 2.0);
            if d.remaining_bytes > 0.0 {
                d.completed = None;
            }
        }
        self.finish(
            Outcome::Failed,
            now,
            Some((
                "CopyDisks".to_string(),
                "forklift-sim: injected failure: the disk transfer was interrupted.".to_string(),
            )),
        );
    }

    fn phase(&self, initialize_secs: f64) -> &'static str {
        match &self.stage {
            Stage::Pending => "Started",
            Stage::Initialize { left_secs } => {
                let done = if initialize_secs > 0.0 {
                    1.0 - left_secs / initialize_secs
                } else {
                    1.0
                };
                // Forklift v2.12.5 migrator/base/migrator.go: the cold itinerary powers the
                // source off first; the warm one takes the initial snapshot instead.
                let warm = self.warm.is_some();
                match ((done * 4.0) as u32, warm) {
                    (0, false) => "StorePowerState",
                    (1, false) => "PowerOffSource",
                    (2, false) => "WaitForPowerOff",
                    (0, true) => "CreateInitialSnapshot",
                    (1, true) => "WaitForInitialSnapshot",
                    _ => "CreateDataVolumes",
                }
            }
            Stage::Transfer => "CopyDisks",
            Stage::Paused => "CopyingPaused",
            Stage::Cutover => "Finalize",
            Stage::Create { .. } => "CreateVM",
            Stage::Done(_) => "Completed",
        }
    }

    /// Steps by index: 0 Initialize, 1 DiskTransfer, 2 VirtualMachineCreation, 3 Cutover.
    fn step_phase(&self, step: usize) -> &'static str {
        let current = match &self.stage {
            Stage::Pending => None,
            Stage::Initialize { .. } => Some(0),
            Stage::Transfer | Stage::Paused => Some(1),
            Stage::Cutover => Some(3),
            Stage::Create { .. } => Some(2),
            Stage::Done(_) => None,
        };
        if self.step_completed[step].is_some() {
            "Completed"
        } else if current == Some(step) {
            "Running"
        } else {
            "Pending"
        }
    }

    /// The step whose error a failed VM shows: the one started and not completed.
    fn failed_step(&self) -> Option<usize> {
        match (&self.stage, &self.error) {
            (Stage::Done(Outcome::Failed), Some(_)) => (0..4)
                .find(|s| self.step_started[*s].is_some() && self.step_completed[*s].is_none()),
            _ => None,
        }
    }

    fn error_value(&self) -> Option<Value> {
        self.error
            .as_ref()
            .map(|(phase, reason)| json!({"phase": phase, "reasons": [reason]}))
    }

    /// A pipeline step with its times and, for the failed step, the VM's error.
    fn timed(&self, step: usize, mut v: Value) -> Value {
        if let Some(t) = &self.step_started[step] {
            v["started"] = Value::from(t.clone());
        }
        if let Some(t) = &self.step_completed[step] {
            v["completed"] = Value::from(t.clone());
        }
        if self.failed_step() == Some(step)
            && let Some(e) = self.error_value()
        {
            v["error"] = e;
        }
        v
    }

    /// The tasks of a disk step, one per disk (name = disk id, progress in MB), as
    /// `Builder.Tasks`; a warm precopy's tasks carry the precopy number (`resetPrecopyTasks`).
    fn disk_tasks(&self, precopy: Option<usize>) -> Vec<Value> {
        self.disks
            .iter()
            .map(|d| {
                let mut task = json!({
                    "name": d.id, "description": d.alias,
                    "phase": if d.completed.is_some() { "Completed" } else if d.started.is_some() { "Running" } else { "Pending" },
                    "progress": {"completed": d.completed_mb(), "total": d.total_mb()},
                    "annotations": {"unit": "MB"},
                });
                if let Some(n) = precopy {
                    task["annotations"]["Precopy"] = Value::from(n.to_string());
                }
                if let Some(t) = &d.started {
                    task["started"] = Value::from(t.clone());
                }
                if let Some(t) = &d.completed {
                    task["completed"] = Value::from(t.clone());
                }
                task
            })
            .collect()
    }

    /// A disk step (DiskTransfer, Cutover) with its tasks; `shown` false renders it untouched.
    fn disk_step(&self, step: usize, name: &str, description: &str, shown: bool) -> Value {
        let precopy = self.warm.as_ref().map(|w| w.precopies.len());
        let tasks = if shown {
            self.disk_tasks(precopy.filter(|_| step == 1))
        } else {
            self.disks
                .iter()
                .map(|d| json!({"name": d.id, "description": d.alias, "phase": "Pending",
                    "progress": {"completed": 0, "total": d.total_mb()}, "annotations": {"unit": "MB"}}))
                .collect()
        };
        let completed: i64 = tasks
            .iter()
            .map(|t| t["progress"]["completed"].as_i64().unwrap_or(0))
            .sum();
        self.timed(
            step,
            json!({
                "name": name, "description": description,
                "phase": self.step_phase(step),
                "progress": {"completed": completed,
                    "total": self.disks.iter().map(DiskRun::total_mb).sum::<i64>()},
                "annotations": {"unit": "MB"},
                "tasks": tasks,
            }),
        )
    }

    /// The pipeline: Initialize, DiskTransfer, (warm) Cutover, VirtualMachineCreation.
    fn pipeline(&self) -> Value {
        let one = |step: usize| i64::from(self.step_completed[step].is_some());
        let mut initialize = json!({
            "name": "Initialize", "description": "Initialize migration.",
            "phase": self.step_phase(0), "progress": {"completed": one(0), "total": 1},
        });
        if let (Stage::Pending, Some(reason)) = (&self.stage, &self.wait_reason) {
            initialize["reason"] = Value::from(reason.clone());
        }
        let mut steps = vec![self.timed(0, initialize)];
        match &self.warm {
            None => steps.push(self.disk_step(1, "DiskTransfer", "Transfer disks.", true)),
            Some(_) => {
                // The DiskTransfer step shows the precopies; the Cutover step the final copy
                // (while it has not begun, its tasks are untouched).
                let cutover = self.step_started[3].is_some();
                let copying = !cutover;
                steps.push(self.disk_step(1, "DiskTransfer", "Transfer disks.", copying));
                steps.push(self.disk_step(3, "Cutover", "Finalize disk transfer.", cutover));
            }
        }
        let creation = json!({
            "name": "VirtualMachineCreation", "description": "Create VM.",
            "phase": self.step_phase(2), "progress": {"completed": one(2), "total": 1},
        });
        steps.push(self.timed(2, creation));
        Value::from(steps)
    }

    /// The VM's entry of `status.migration.vms[]`.
    pub fn render(&self, initialize_secs: f64) -> Value {
        if let Some(kept) = &self.kept {
            return kept.clone();
        }
        let mut status = json!({});
        // The plan's VM fields, inline (id, name, targetName, ...).
        if let Some(fields) = self.spec.as_object() {
            for (k, v) in fields {
                status[k] = v.clone();
            }
        }
        status["id"] = Value::from(self.id.clone());
        status["name"] = Value::from(self.name.clone());
        status["phase"] = Value::from(self.phase(initialize_secs));
        status["newName"] = Value::from(self.target_name.clone());
        status["restorePowerState"] = Value::from("Off");
        status["pipeline"] = self.pipeline();
        if let Some(w) = &self.warm {
            status["warm"] = w.render();
        }
        if let Some(t) = &self.started {
            status["started"] = Value::from(t.clone());
        }
        if let Some(t) = &self.completed {
            status["completed"] = Value::from(t.clone());
        }
        if let Some(e) = self.error_value() {
            status["error"] = e;
        }
        if let (Some(outcome), Some(t)) = (self.outcome(), &self.completed) {
            let message = match outcome {
                Outcome::Succeeded => "The VM migration has SUCCEEDED.",
                Outcome::Failed => "The VM migration has FAILED.",
                Outcome::Canceled => "The VM migration has been CANCELED.",
            };
            let mut c = durable(cond(outcome.as_str(), ADVISORY, "", message));
            c["lastTransitionTime"] = Value::from(t.clone());
            status["conditions"] = json!([c]);
        }
        status
    }

    /// Rebuilds a VM from its rendered status (after a restart of forklift-sim).
    pub fn resume(
        status: &Value,
        spec: &Value,
        vm: Option<&WorldVm>,
        target_name: String,
        initialize_secs: f64,
        creation_secs: f64,
        time_scale: f64,
    ) -> VmRun {
        let mut run = VmRun::new(spec, vm, target_name);
        let outcome = ["Succeeded", "Failed", "Canceled"]
            .into_iter()
            .find(|k| conditions::is_true(status, k));
        let text = |v: &Value| v.as_str().map(str::to_string);
        run.started = text(&status["started"]);
        run.completed = text(&status["completed"]);
        let steps: Vec<&Value> = status["pipeline"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        for (i, step_name) in [
            "Initialize",
            "DiskTransfer",
            "VirtualMachineCreation",
            "Cutover",
        ]
        .iter()
        .enumerate()
        {
            if let Some(step) = steps.iter().find(|s| s["name"] == *step_name) {
                run.step_started[i] = text(&step["started"]);
                run.step_completed[i] = text(&step["completed"]);
            }
        }
        if let Some(transfer) = steps.iter().find(|s| s["name"] == "DiskTransfer") {
            for disk in &mut run.disks {
                if let Some(task) = transfer["tasks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|t| t["name"] == disk.id.as_str())
                {
                    let done_mb = task["progress"]["completed"].as_i64().unwrap_or(0) as f64;
                    disk.started = text(&task["started"]);
                    disk.completed = text(&task["completed"]);
                    disk.remaining_bytes = if disk.completed.is_some() {
                        0.0
                    } else {
                        (disk.total_bytes - done_mb * MIB).max(0.0)
                    };
                }
            }
        }
        if let Some(o) = outcome {
            run.stage = Stage::Done(match o {
                "Succeeded" => Outcome::Succeeded,
                "Failed" => Outcome::Failed,
                _ => Outcome::Canceled,
            });
            run.error = status["error"]["reasons"][0].as_str().map(|r| {
                (
                    status["error"]["phase"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    r.to_string(),
                )
            });
            return run;
        }
        let elapsed = |i: usize| {
            run.step_started[i]
                .as_deref()
                .map(|t| conditions::secs_since(t) * time_scale)
                .unwrap_or(0.0)
        };
        run.stage = if run.started.is_none() {
            Stage::Pending
        } else if run.step_completed[0].is_none() {
            Stage::Initialize {
                left_secs: (initialize_secs - elapsed(0)).max(0.0),
            }
        } else if run.step_completed[1].is_none() {
            Stage::Transfer
        } else {
            // The target VM is applied again (server-side apply makes that harmless).
            Stage::Create {
                left_secs: (creation_secs - elapsed(2)).max(0.0),
            }
        };
        if status["warm"].is_object() {
            crate::warm::resume(&mut run, status);
        }
        run
    }
}

/// Forklift's rule for a finished execution: any VM Failed makes it Failed; else one Succeeded
/// makes it Succeeded; else it was Canceled.
pub fn plan_outcome(vms: &[VmRun]) -> Outcome {
    if vms.iter().any(|v| v.outcome() == Some(Outcome::Failed)) {
        Outcome::Failed
    } else if vms.iter().any(|v| v.outcome() == Some(Outcome::Succeeded)) {
        Outcome::Succeeded
    } else {
        Outcome::Canceled
    }
}

/// Whether a spec VM entry and a status VM entry are the same VM (by id; by name when the spec
/// entry has no id), as Forklift's `FindVM`.
pub fn same_vm(spec_vm: &Value, status_vm: &Value, world: &World) -> bool {
    let id = spec_vm["id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| match world.vm(spec_vm) {
            crate::world::Lookup::Found(vm) => Some(vm.id.clone()),
            _ => None,
        });
    match id {
        Some(id) => status_vm["id"] == id.as_str(),
        None => spec_vm["name"] == status_vm["name"],
    }
}
