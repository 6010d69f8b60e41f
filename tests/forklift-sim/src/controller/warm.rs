//! Forklift v2.12.5's warm itinerary for oVirt (`migrator/base/migrator.go` `warmItinerary`,
//! phases run by `pkg/controller/plan/migration.go`): after the first copy the VM waits in
//! CopyingPaused; every PRECOPY_INTERVAL it takes a snapshot (CreateSnapshot, WaitForSnapshot),
//! adds a checkpoint to its DataVolumes (AddCheckpoint) and copies the changes (CopyDisks); once
//! the Migration's `spec.cutover` is past on the simulated clock (--clock-start plus simulated
//! time, which stands for Forklift's `time.Now()`), the cutover powers the source off, takes the final
//! snapshot, adds the final checkpoint and copies the last changes (Finalize), then CreateVM.

use super::Controller;
use crate::datavolume::Checkpoints;
use crate::run::{Stage, VmRun};
use crate::warm::{delta_bytes, due, wall_in};

/// What the warm transitions need of the configuration and the clock.
pub(super) struct WarmTiming {
    pub interval_secs: f64,
    pub time_scale: f64,
    pub sim_secs: f64,
    pub change_rate: f64,
}

/// A copy of a VM's disks has landed. Cold: DiskTransfer done, CreateVM next. Warm precopy
/// (CopyDisks): the precopy ends, `successes` goes up and the next is due PRECOPY_INTERVAL from
/// now (migration.go, phase CopyDisks), then CopyingPaused. Warm cutover (Finalize): CreateVM next.
/// Returns the event to emit.
pub(super) fn copy_done(
    vm: &mut VmRun,
    now: &str,
    creation_secs: f64,
    timing: &WarmTiming,
) -> &'static str {
    let to_create = |vm: &mut VmRun| {
        vm.step_started[2] = Some(now.to_string());
        vm.stage = Stage::Create {
            left_secs: (creation_secs - vm.cluster_wait_secs).max(0.0),
        };
    };
    let cutover = vm.stage == Stage::Cutover;
    let Some(w) = &mut vm.warm else {
        vm.step_completed[1] = Some(now.to_string());
        to_create(vm);
        return "vm_transferred";
    };
    if let Some(last) = w.precopies.last_mut() {
        last.end = Some(now.to_string());
    }
    if cutover {
        vm.step_completed[3] = Some(now.to_string());
        to_create(vm);
        return "vm_transferred";
    }
    w.successes += 1;
    w.next_precopy_sim = timing.sim_secs + timing.interval_secs;
    w.next_precopy_at = Some(wall_in(timing.interval_secs / timing.time_scale));
    vm.step_completed[1] = Some(now.to_string());
    vm.stage = Stage::Paused;
    "vm_precopied"
}

/// CreateSnapshot and the copy it starts: each disk restarts with the changes since the last
/// snapshot (the change-rate model), the tasks reset (`resetPrecopyTasks`).
fn start_copy(vm: &mut VmRun, migration: &str, now: &str, timing: &WarmTiming) {
    let Some(w) = &mut vm.warm else {
        return;
    };
    let since = w
        .precopies
        .last()
        .map_or(0.0, |p| timing.sim_secs - p.start_sim);
    w.snapshot(&vm.id, migration, now, timing.sim_secs);
    for d in &mut vm.disks {
        let bytes = delta_bytes(d.used_bytes, d.total_bytes, timing.change_rate, since);
        d.restart(bytes, now);
    }
}

impl Controller {
    pub(super) fn warm_timing(&self) -> WarmTiming {
        WarmTiming {
            interval_secs: self.args.precopy_interval,
            time_scale: self.args.time_scale,
            sim_secs: self.sim_secs,
            change_rate: self.args.warm_change_rate,
        }
    }

    /// The Migration's `spec.cutover` of a run, if set.
    fn cutover_of(&self, migration_uid: &str) -> Option<String> {
        self.cluster
            .migrations
            .state()
            .iter()
            .find(|m| m.metadata.uid.as_deref() == Some(migration_uid))
            .and_then(|m| m.data["spec"]["cutover"].as_str().map(str::to_string))
    }

    /// Phase CopyingPaused: the cutover when `spec.cutover` is past (StorePowerState ...
    /// CreateFinalSnapshot, AddFinalCheckpoint, Finalize), else the next precopy when due.
    pub(super) fn warm_transitions(&mut self, now: &str) {
        let timing = self.warm_timing();
        let keys: Vec<String> = self.runs.keys().cloned().collect();
        let mut events = Vec::new();
        for key in keys {
            let run = &self.runs[&key];
            if !run.warm || run.outcome.is_some() {
                continue;
            }
            // spec.cutover against the simulated clock (Forklift v2.12.5 migration.go
            // `(*Migration).execute`, CopyingPaused): read every tick, so a cutover patched onto
            // the running Migration counts from then on, as Forklift re-reads the Migration at
            // each reconcile (controller.go `activeMigration`).
            let now_sim = self.args.clock_start_unix_secs() + timing.sim_secs;
            let cutover_due = self
                .cutover_of(&run.migration_uid)
                .is_some_and(|t| due(&t, now_sim));
            let run = self.runs.get_mut(&key).unwrap();
            for vi in 0..run.vms.len() {
                let vm = &mut run.vms[vi];
                let Some(w) = &mut vm.warm else {
                    continue;
                };
                if vm.stage != Stage::Paused {
                    continue;
                }
                if cutover_due {
                    w.cutover = true;
                    w.cutover_sim = Some(timing.sim_secs);
                    start_copy(vm, &run.migration_uid, now, &timing);
                    vm.step_started[3] = Some(now.to_string());
                    vm.stage = Stage::Cutover;
                    events.push((key.clone(), vi, "vm_cutover"));
                } else if timing.sim_secs >= w.next_precopy_sim {
                    start_copy(vm, &run.migration_uid, now, &timing);
                    vm.step_completed[1] = None;
                    vm.stage = Stage::Transfer;
                } else {
                    continue;
                }
                run.force_flush = true;
            }
        }
        for (key, vi, kind) in events {
            let event = self.vm_event(kind, &self.runs[&key], vi);
            self.emit(event);
        }
    }

    /// AddCheckpoint / AddFinalCheckpoint (`setDataVolumeCheckpoints`) for the warm VMs copying
    /// whose DataVolumes do not hold their latest checkpoints yet; a failure is tried again next
    /// tick.
    pub(super) async fn write_checkpoints(&mut self) {
        let mut work = Vec::new();
        for (key, run) in &self.runs {
            if !(run.warm && run.datavolumes) {
                continue;
            }
            for (vi, vm) in run.vms.iter().enumerate() {
                let Some(w) = &vm.warm else {
                    continue;
                };
                let want = (w.precopies.len(), w.cutover);
                let copying = matches!(vm.stage, Stage::Transfer | Stage::Cutover);
                if copying
                    && w.checkpoints_written.is_some()
                    && w.checkpoints_written != Some(want)
                    && let Some(target) = self.target_of(run, vm)
                {
                    let checkpoints = Checkpoints {
                        snapshots: w.snapshots(),
                        final_checkpoint: w.cutover,
                    };
                    work.push((key.clone(), vi, target, checkpoints, want));
                }
            }
        }
        for (key, vi, target, checkpoints, want) in work {
            match self.footprint.set_checkpoints(&target, &checkpoints).await {
                Ok(true) => {
                    if let Some(w) = self
                        .runs
                        .get_mut(&key)
                        .and_then(|r| r.vms[vi].warm.as_mut())
                    {
                        w.checkpoints_written = Some(want);
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::info!(
                    "VM {}: its DataVolumes' checkpoints: {e:?}; trying again",
                    target.vm_name
                ),
            }
        }
    }
}

/// The DataVolume checkpoints of a warm VM at CreateDataVolumes (`SetCheckpoints` with the
/// initial snapshot), None for a cold one.
pub(super) fn initial_checkpoints(vm: &VmRun) -> Option<Checkpoints> {
    vm.warm.as_ref().map(|w| Checkpoints {
        snapshots: w.snapshots(),
        final_checkpoint: false,
    })
}
