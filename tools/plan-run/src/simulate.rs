//! --simulate: the schedule and its duration, offline. The scheduler of the live run decides the
//! starts; common::linkmodel paces the disk transfers (the model forklift-sim runs on), and
//! Forklift's own cap on running VMs per source provider (--max-vm-inflight) is applied too.
//! Transfers are per disk, as Forklift copies a VM's disks in parallel and forklift-sim paces
//! them, where VM records give the disks; a VM without a record is one transfer of its bytes.
//! With --bandwidth auto the adaptive controller (crate::adapt) sets the disk-copy limit from the
//! throughput it measures in the simulation, as it does live from Forklift's reported progress.
//! Warm plans follow Forklift v2.12.5's warm itinerary as forklift-sim does (migrator.go
//! `warmItinerary`, migration.go `(*Migration).execute`): a full copy, then CopyingPaused, a
//! precopy of what the guest changed since the last snapshot every --precopy-interval after the
//! last one ended, and at the plan's cutover (placed by crate::cutover; at once when the first
//! copy ends after it) the final copy of the changes left, with the VM off, then its creation:
//! the VM's downtime runs from the cutover to the end of its creation.

use crate::adapt::Controller;
use crate::events::Events;
use crate::manifest::Plan;
use crate::sched::{PlanKey, Scheduler};
use common::linkmodel::LinkModel;
use common::{Error, Result};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::json;
use std::collections::BTreeMap;

/// What a simulation found.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub makespan_secs: f64,
    pub lower_bound_secs: f64,
    pub total_bytes: u64,
    pub plans: usize,
    pub vms: usize,
    pub peak_inflight_bytes: u64,
    pub peak_running_plans: usize,
    /// --bandwidth auto: the highest disk-copy limit the controller set, and how often it changed it.
    pub peak_disk_limit: Option<usize>,
    pub disk_limit_changes: usize,
}

impl Outcome {
    /// Makespan over the lower bound (total bytes / bandwidth); 1.0 is a saturated link.
    pub fn ratio(&self) -> f64 {
        if self.lower_bound_secs > 0.0 {
            self.makespan_secs / self.lower_bound_secs
        } else {
            1.0
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Waiting for one of Forklift's VM slots.
    Queued,
    Initialize(f64),
    Transfer,
    /// A warm VM between copies (CopyingPaused).
    Paused,
    Creation(f64),
    Done,
}

struct Vm {
    plan: usize,
    id: String,
    name: String,
    bytes: u64,
    /// Bytes left of each disk transfer (one entry for a VM known only by its total).
    remaining: Vec<f64>,
    /// Each disk's target storage class ("" when not known).
    classes: Vec<String>,
    phase: Phase,
    warm: Option<WarmVm>,
}

impl Vm {
    /// Its disk transfers with bytes left.
    fn copies_left(&self) -> usize {
        self.remaining.iter().filter(|b| **b > 0.0).count()
    }
}

/// A warm VM's precopies and cutover, on the simulated clock (seconds from the start).
struct WarmVm {
    /// Each disk's (allocated, provisioned) bytes, for the change model.
    disks: Vec<(f64, f64)>,
    /// When the plan cuts over.
    cutover_at: f64,
    /// When the last snapshot was taken (its changes since go with the next copy).
    snapshot_at: f64,
    next_precopy_at: f64,
    /// When this VM's cutover began (the source went off).
    cut_at: Option<f64>,
    /// Copies done before the cutover (the first full copy included).
    copies: u32,
}

/// Warm plans' cutovers and the change model.
#[derive(Debug, Clone, Default)]
pub struct Warm {
    /// Each warm plan's cutover (crate::cutover).
    pub cutovers: BTreeMap<PlanKey, crate::cutover::Placement>,
    pub change_rate_percent_per_hour: f64,
    pub precopy_interval_secs: f64,
    /// Each VM's disks as (allocated, provisioned) bytes, by VM id, where records gave them (in
    /// the order of `vm_disks`).
    pub vm_usage: BTreeMap<String, Vec<(u64, u64)>>,
}

impl Warm {
    /// The copy a warm VM in CopyingPaused starts at `t`, if any: the cutover once it is due,
    /// else the next precopy once due (migration.go, CopyingPaused); the disks restart with what
    /// the guest changed since the last snapshot.
    fn resume(&self, vm: &mut Vm, t: f64) -> bool {
        let Some(w) = &mut vm.warm else {
            return false;
        };
        let cut = t >= w.cutover_at;
        if !cut && t < w.next_precopy_at {
            return false;
        }
        if cut {
            w.cut_at = Some(t);
        }
        for (r, &(used, total)) in vm.remaining.iter_mut().zip(&w.disks) {
            *r = crate::cutover::changed_bytes(
                used,
                total,
                self.change_rate_percent_per_hour,
                t - w.snapshot_at,
            );
        }
        w.snapshot_at = t;
        true
    }
}

/// What the simulation runs on.
pub struct Setup {
    pub link: LinkModel,
    /// Forklift's controller_max_vm_inflight.
    pub max_vm_inflight: usize,
    pub start: Timestamp,
    /// The time zone --window is read in.
    pub zone: TimeZone,
    /// The bytes and target storage class of each disk Forklift copies, by VM id, where VM
    /// records were given.
    pub vm_disks: BTreeMap<String, Vec<(u64, String)>>,
    /// --bandwidth auto: the controller decides every this many simulated seconds.
    pub adaptive_interval_secs: Option<f64>,
    /// Warm plans' cutovers and change model.
    pub warm: Warm,
}

/// Runs the simulation from `start` (the window read in `zone`), writing the events. `vm_disks`
/// gives a VM's disks by id where VM records were given, each a transfer of its own; otherwise a
/// plan's bytes are split evenly over its VMs, each VM one transfer.
pub fn run(
    plans: &[Plan],
    scheduler: &mut Scheduler,
    setup: &Setup,
    events: &mut Events,
) -> Result<Outcome> {
    let mut sim = Sim::new(plans, scheduler, setup, events)?;
    let mut guard = 0u64;
    let mut idle_turns = 0;
    loop {
        guard += 1;
        if guard > 50_000_000 {
            break;
        }
        // Whether anything changed at this instant: then look again before time moves on, so a
        // slot or a plan finishing now is taken now, not at the next event.
        let changed = sim.turn()?;
        if sim.scheduler.is_finished() {
            break;
        }
        if changed {
            continue;
        }
        if !sim.step()? {
            // Nothing runs: plans that just finished may have made room, so ask the scheduler
            // again; if it still starts nothing, it cannot place what is left.
            idle_turns += 1;
            if idle_turns > 1 || sim.scheduler.queued() == 0 {
                break;
            }
            continue;
        }
        idle_turns = 0;
    }
    Ok(sim.outcome())
}

/// A simulation under way: the VMs, the clock (seconds from the start) and what is measured.
struct Sim<'a> {
    plans: &'a [Plan],
    scheduler: &'a mut Scheduler,
    setup: &'a Setup,
    events: &'a mut Events,
    index: BTreeMap<PlanKey, usize>,
    vms: Vec<Vm>,
    /// Each plan's VMs (indices into `vms`).
    plan_vms: Vec<Vec<usize>>,
    controller: Option<Controller>,
    adaptive: Adaptive,
    t: f64,
    /// Plans in the order they started: Forklift hands out VM slots oldest plan first.
    executing: Vec<usize>,
    peak_inflight: u64,
    peak_running: usize,
    start_unix: f64,
    horizon: f64,
    total_bytes: u64,
    lower_bound_secs: f64,
}

impl<'a> Sim<'a> {
    /// The VMs of `plans`, the lower bound, and every plan Ready at the start.
    fn new(
        plans: &'a [Plan],
        scheduler: &'a mut Scheduler,
        setup: &'a Setup,
        events: &'a mut Events,
    ) -> Result<Sim<'a>> {
        let (vms, plan_vms) = vms_of(plans, setup);
        let total_bytes = common::size::sum_bytes(plans.iter().map(|p| p.bytes));
        let start_unix = setup.start.as_millisecond() as f64 / 1000.0;
        let bound_input: Vec<Vec<(u64, &str)>> = vms
            .iter()
            .map(|vm| {
                (vm.remaining.iter().zip(&vm.classes))
                    .map(|(b, c)| (*b as u64, c.as_str()))
                    .collect()
            })
            .collect();
        let lower_bound_secs = setup.link.lower_bound_secs(&bound_input, start_unix);
        let controller = setup
            .adaptive_interval_secs
            .map(|i| Controller::new(i, vms.iter().map(|v| v.remaining.len()).sum()));
        let disks =
            |p: usize| -> usize { plan_vms[p].iter().map(|&v| vms[v].remaining.len()).sum() };
        scheduler.set_disk_counts(plans.iter().enumerate().map(|(i, p)| (&p.key, disks(i))));
        let horizon = horizon_secs(setup.start);
        if lower_bound_secs > horizon {
            return Err(too_long(total_bytes, &setup.link, setup.start));
        }
        let sim = Sim {
            plans,
            scheduler,
            setup,
            events,
            index: plans
                .iter()
                .enumerate()
                .map(|(i, p)| (p.key.clone(), i))
                .collect(),
            vms,
            plan_vms,
            controller,
            adaptive: Adaptive::default(),
            t: 0.0,
            executing: Vec::new(),
            peak_inflight: 0,
            peak_running: 0,
            start_unix,
            horizon,
            total_bytes,
            lower_bound_secs,
        };
        for plan in plans {
            sim.scheduler.ready(&plan.key);
            sim.events.emit(
                sim.at(0.0),
                "ready",
                Some(&plan.key),
                json!({"vm_count": plan.vms.len(), "total_bytes": plan.bytes}),
            )?;
        }
        Ok(sim)
    }

    /// The instant `t` seconds after the start. Every instant is checked against the horizon
    /// before it is used, so this never overflows; the clamp is a guard, not a rule.
    fn at(&self, t: f64) -> Timestamp {
        jiff::SignedDuration::try_from_secs_f64(t)
            .ok()
            .and_then(|d| self.setup.start.checked_add(d).ok())
            .unwrap_or(Timestamp::MAX)
    }

    /// Seconds since local midnight at `t`, in --window's zone.
    fn second_of_day(&self, t: f64) -> u32 {
        let local = self.at(t).to_zoned(self.setup.zone.clone());
        local.hour() as u32 * 3600 + local.minute() as u32 * 60 + local.second() as u32
    }

    /// What happens at this instant: starts, Forklift's slots, phases that end, plans that
    /// finish, the controller's decision. Whether anything changed.
    fn turn(&mut self) -> Result<bool> {
        if let Some(c) = &self.controller {
            let active = (self.executing.iter())
                .flat_map(|&p| &self.plan_vms[p])
                .map(|&v| match self.vms[v].phase {
                    Phase::Queued | Phase::Initialize(_) => self.vms[v].remaining.len(),
                    Phase::Transfer => self.vms[v].copies_left(),
                    _ => 0,
                })
                .sum();
            self.scheduler.set_disk_limit(c.disk_limit(active));
        }
        let mut changed = self.start_plans()?;
        changed |= self.fill_slots();
        changed |= self.end_phases()?;
        changed |= self.finish_plans()?;
        if self.scheduler.is_finished() {
            return Ok(changed);
        }
        if let Some(c) = &mut self.controller {
            let copying = self
                .vms
                .iter()
                .filter(|v| v.phase == Phase::Transfer)
                .map(Vm::copies_left)
                .sum();
            let demand = self.scheduler.queued() > 0;
            if let Some(decision) = c.sample(self.t, self.adaptive.moved_bytes, copying, demand) {
                let time = self.at(self.t);
                changed |= self
                    .adaptive
                    .report(&decision, time, self.scheduler, self.events)?;
            }
        }
        Ok(changed)
    }

    /// The starts the scheduler allows now.
    fn start_plans(&mut self) -> Result<bool> {
        let t = self.t;
        let minute = self.second_of_day(t) / 60;
        let starts = self.scheduler.decide(minute);
        let changed = !starts.is_empty();
        for start in starts {
            let i = self.index[&start.plan];
            self.peak_inflight = self.peak_inflight.max(start.inflight_bytes);
            self.peak_running = self.peak_running.max(start.running_plans);
            let migration = format!("{}-1", start.plan.name);
            self.events.emit(
                self.at(t),
                "started",
                Some(&start.plan),
                json!({
                    "migration": migration,
                    "total_bytes": start.bytes,
                    "vm_count": self.plans[i].vms.len(),
                    "running_plans": start.running_plans,
                    "inflight_bytes": start.inflight_bytes,
                    "oversize": start.oversize,
                }),
            )?;
            if let Some(c) = self.setup.warm.cutovers.get(&start.plan) {
                let fields = crate::cutover::event_fields(c, &migration, false);
                self.events
                    .emit(self.at(t), "cutover", Some(&start.plan), fields)?;
            }
            self.executing.push(i);
            if self.plan_vms[i].is_empty() {
                self.finish_plan(i)?;
            }
        }
        Ok(changed)
    }

    /// Forklift's slots: VMs started and not completed, across the executing plans, oldest plan
    /// first. Whether a VM started.
    fn fill_slots(&mut self) -> bool {
        let max = self.setup.max_vm_inflight;
        let mut busy = (self.vms.iter())
            .filter(|v| !matches!(v.phase, Phase::Queued | Phase::Done))
            .count();
        let mut changed = false;
        for &p in &self.executing {
            for &v in &self.plan_vms[p] {
                if busy >= max {
                    break;
                }
                if self.vms[v].phase == Phase::Queued {
                    self.vms[v].phase = Phase::Initialize(self.setup.link.initialize_secs());
                    busy += 1;
                    changed = true;
                }
            }
        }
        changed
    }

    /// Phases that end now move on (zero-length ones at once); a VM done is reported.
    fn end_phases(&mut self) -> Result<bool> {
        let (t, mut changed, mut moved) = (self.t, false, true);
        while moved {
            moved = false;
            for v in 0..self.vms.len() {
                let vm = &mut self.vms[v];
                let Some(next) = next_phase(vm, t, &self.setup.link, &self.setup.warm) else {
                    continue;
                };
                vm.phase = next;
                moved = true;
                changed = true;
                if next == Phase::Done {
                    self.vm_succeeded(v)?;
                }
            }
        }
        Ok(changed)
    }

    fn vm_succeeded(&mut self, v: usize) -> Result<()> {
        let (t, vm) = (self.t, &self.vms[v]);
        let plan = &self.plans[vm.plan];
        let mut fields = json!({"vm_id": vm.id, "vm_name": vm.name, "bytes_total": vm.bytes});
        if let Some(w) = &vm.warm
            && let Some(cut) = w.cut_at
        {
            fields["cutover"] = self.at(cut).to_string().into();
            fields["downtime_secs"] = round3(t - cut).into();
            fields["precopies"] = w.copies.into();
        }
        self.events
            .emit(self.at(t), "vm-succeeded", Some(&plan.key), fields)
    }

    /// Executing plans whose VMs are all done finish now.
    fn finish_plans(&mut self) -> Result<bool> {
        let finished: Vec<usize> = (self.executing.iter().copied())
            .filter(|&p| {
                self.plan_vms[p]
                    .iter()
                    .all(|&v| self.vms[v].phase == Phase::Done)
            })
            .collect();
        for &p in &finished {
            self.finish_plan(p)?;
        }
        Ok(!finished.is_empty())
    }

    fn finish_plan(&mut self, p: usize) -> Result<()> {
        self.executing.retain(|x| *x != p);
        let plan = &self.plans[p];
        self.scheduler.done(&plan.key);
        self.events.emit(
            self.at(self.t),
            "plan-finished",
            Some(&plan.key),
            json!({
                "outcome": "Succeeded",
                "vms_succeeded": plan.vms.len(),
                "vms_failed": 0,
                "vms_canceled": 0,
                "running_plans": self.scheduler.running_plans(),
                "inflight_bytes": self.scheduler.inflight_bytes(),
            }),
        )
    }

    /// Moves time on to the next thing that happens (a phase ends, a disk transfer completes,
    /// the controller decides, or the window opens), the transfers with it. False when nothing
    /// is going to happen.
    fn step(&mut self) -> Result<bool> {
        let t = self.t;
        // Running transfers: (VM, disk) with bytes left, of VMs in DiskTransfer.
        let transferring: Vec<(usize, usize)> = (0..self.vms.len())
            .filter(|&v| self.vms[v].phase == Phase::Transfer)
            .flat_map(|v| (0..self.vms[v].remaining.len()).map(move |d| (v, d)))
            .filter(|&(v, d)| self.vms[v].remaining[d] > 0.0)
            .collect();
        let mut remaining: Vec<f64> = (transferring.iter())
            .map(|&(v, d)| self.vms[v].remaining[d])
            .collect();
        let classes: Vec<&str> = (transferring.iter())
            .map(|&(v, d)| self.vms[v].classes[d].as_str())
            .collect();
        let dt = self.next_event_in(&remaining, &classes);
        if !dt.is_finite() {
            return Ok(false);
        }
        let link = &self.setup.link;
        self.adaptive.moved_bytes +=
            link.advance_at(&mut remaining, &classes, self.start_unix + t, dt);
        for (&(v, d), r) in transferring.iter().zip(remaining) {
            self.vms[v].remaining[d] = r;
        }
        for vm in self.vms.iter_mut() {
            if let Phase::Initialize(left) | Phase::Creation(left) = &mut vm.phase {
                *left -= dt;
            }
        }
        self.t += dt;
        if self.t > self.horizon {
            return Err(too_long(self.total_bytes, link, self.setup.start));
        }
        Ok(true)
    }

    /// Seconds to the next thing that happens; infinite when nothing will.
    fn next_event_in(&self, remaining: &[f64], classes: &[&str]) -> f64 {
        let t = self.t;
        let mut dt = f64::INFINITY;
        for vm in &self.vms {
            match (vm.phase, &vm.warm) {
                (Phase::Initialize(left) | Phase::Creation(left), _) => dt = dt.min(left),
                (Phase::Paused, Some(w)) => {
                    dt = dt.min((w.cutover_at.min(w.next_precopy_at) - t).max(0.0));
                }
                _ => {}
            }
        }
        if !remaining.is_empty() {
            let link = &self.setup.link;
            dt = dt.min(link.secs_to_next_change(remaining, classes, self.start_unix + t));
        }
        if let Some(next) = self
            .controller
            .as_ref()
            .and_then(Controller::next_decision_at)
            && next > t
            && !remaining.is_empty()
        {
            dt = dt.min(next - t);
        }
        if self.scheduler.queued() > 0
            && let Some(window) = self.scheduler.limits().window
        {
            let wait = window.seconds_until_open(self.second_of_day(t)) as f64;
            if wait > 0.0 {
                dt = dt.min(wait);
            }
        }
        dt
    }

    fn outcome(&self) -> Outcome {
        Outcome {
            makespan_secs: self.t,
            lower_bound_secs: self.lower_bound_secs,
            total_bytes: self.total_bytes,
            plans: self.plans.len(),
            vms: self.vms.len(),
            peak_inflight_bytes: self.peak_inflight,
            peak_running_plans: self.peak_running,
            peak_disk_limit: self.controller.as_ref().map(|_| self.adaptive.peak_limit),
            disk_limit_changes: self.adaptive.changes,
        }
    }
}

/// The VMs of `plans` with their disk transfers, and each plan's VMs (indices). VMs without a
/// record share what the plan's bytes leave over, evenly, each one transfer.
fn vms_of(plans: &[Plan], setup: &Setup) -> (Vec<Vm>, Vec<Vec<usize>>) {
    let vm_disks = &setup.vm_disks;
    let mut vms: Vec<Vm> = Vec::new();
    let mut plan_vms: Vec<Vec<usize>> = vec![Vec::new(); plans.len()];
    for (i, plan) in plans.iter().enumerate() {
        let known = (plan.vms.iter())
            .filter_map(|v| vm_disks.get(&v.id))
            .flatten()
            .map(|d| d.0);
        let known = common::size::sum_bytes(known);
        let unknown = (plan.vms.iter())
            .filter(|v| !vm_disks.contains_key(&v.id))
            .count() as u64;
        let rest = plan.bytes.saturating_sub(known);
        let (base, extra) = (rest / unknown.max(1), rest % unknown.max(1));
        let mut k = 0u64;
        for vm in &plan.vms {
            let disks = match vm_disks.get(&vm.id) {
                Some(disks) => disks.clone(),
                None => {
                    k += 1;
                    vec![(base + u64::from(k <= extra), String::new())]
                }
            };
            plan_vms[i].push(vms.len());
            let warm = (setup.warm.cutovers.get(&plan.key))
                .map(|c| warm_vm(&setup.warm, &vm.id, &disks, c, setup.start));
            vms.push(Vm {
                plan: i,
                id: vm.id.clone(),
                name: vm.name.clone(),
                bytes: common::size::sum_bytes(disks.iter().map(|d| d.0)),
                remaining: disks.iter().map(|d| d.0 as f64).collect(),
                classes: disks.iter().map(|d| d.1.clone()).collect(),
                phase: Phase::Queued,
                warm,
            });
        }
    }
    (vms, plan_vms)
}

/// A warm VM's state before its first copy: its disks' usage where records gave it (else each
/// disk full), its plan's cutover.
fn warm_vm(
    warm: &Warm,
    id: &str,
    disks: &[(u64, String)],
    c: &crate::cutover::Placement,
    start: Timestamp,
) -> WarmVm {
    let usage = warm.vm_usage.get(id).filter(|u| u.len() == disks.len());
    WarmVm {
        disks: match usage {
            Some(u) => u.iter().map(|&(a, p)| (a as f64, p as f64)).collect(),
            None => disks.iter().map(|d| (d.0 as f64, d.0 as f64)).collect(),
        },
        cutover_at: c.cutover.duration_since(start).as_secs_f64(),
        snapshot_at: 0.0,
        next_precopy_at: 0.0,
        cut_at: None,
        copies: 0,
    }
}

/// The phase a VM moves to at `t`, if its phase ends now.
fn next_phase(vm: &mut Vm, t: f64, link: &LinkModel, warm: &Warm) -> Option<Phase> {
    let phase = vm.phase;
    match phase {
        Phase::Initialize(left) if left <= 0.0 => {
            if let Some(w) = &mut vm.warm {
                // CreateInitialSnapshot: the first copy holds the disks as of now.
                w.snapshot_at = t;
            }
            Some(Phase::Transfer)
        }
        Phase::Transfer if vm.remaining.iter().all(|r| *r <= 0.0) => match &mut vm.warm {
            // A precopy ended (CopyDisks): the next is due PRECOPY_INTERVAL from now.
            Some(w) if w.cut_at.is_none() => {
                w.copies += 1;
                w.next_precopy_at = t + warm.precopy_interval_secs;
                Some(Phase::Paused)
            }
            _ => Some(Phase::Creation(link.creation_secs())),
        },
        Phase::Paused if warm.resume(vm, t) => Some(Phase::Transfer),
        Phase::Creation(left) if left <= 0.0 => Some(Phase::Done),
        _ => None,
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// What the simulation keeps of the adaptive controller's run.
#[derive(Default)]
struct Adaptive {
    moved_bytes: f64,
    peak_limit: usize,
    changes: usize,
    last_action: Option<&'static str>,
}

impl Adaptive {
    /// A decision as a `concurrency` event, when it changes the limit or the kind of action;
    /// whether the limit changed.
    fn report(
        &mut self,
        decision: &crate::adapt::Decision,
        time: Timestamp,
        scheduler: &Scheduler,
        events: &mut Events,
    ) -> Result<bool> {
        self.peak_limit = self.peak_limit.max(decision.limit);
        let changed = decision.limit != decision.previous;
        if changed || self.last_action != Some(decision.action) {
            self.changes += usize::from(changed);
            self.last_action = Some(decision.action);
            events.emit(
                time,
                "concurrency",
                None,
                crate::adapt::event_fields(decision, scheduler.running_plans()),
            )?;
        }
        Ok(changed)
    }
}

/// The seconds from `start` to the last instant a time zone can show (jiff's range ends in the
/// year 9999), less a day for the zone's offset.
fn horizon_secs(start: Timestamp) -> f64 {
    let left = Timestamp::MAX.duration_since(start).as_secs_f64();
    (left - 86_400.0).max(0.0)
}

/// The run cannot be simulated: it would end after the last time there is.
fn too_long(total_bytes: u64, link: &LinkModel, start: Timestamp) -> Error {
    Error::usage(format!(
        "--simulate: {total_bytes} bytes at --bandwidth {} bytes/s from {start} would end after \
         {} (the last time there is): give a higher --bandwidth",
        link.bandwidth_bytes_per_sec,
        Timestamp::MAX.strftime("%Y-%m-%d")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::PlanVm;
    use crate::sched::Limits;
    use crate::window::Window;

    const GB: u64 = 1_000_000_000;

    fn plans(sizes: &[(u64, usize)]) -> Vec<Plan> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, (bytes, vms))| Plan {
                key: PlanKey {
                    namespace: "mtv".into(),
                    name: format!("plan-{i}"),
                },
                bytes: *bytes,
                bytes_known: true,
                disks: *vms,
                target_namespace: None,
                warm: false,
                vms: (0..*vms)
                    .map(|v| PlanVm {
                        id: format!("{i}-{v}"),
                        name: format!("vm-{i}-{v}"),
                    })
                    .collect(),
                location: "test".into(),
            })
            .collect()
    }

    fn simulate(
        plans: &[Plan],
        limits: Limits,
        link: &LinkModel,
        start: &str,
    ) -> (Outcome, Vec<serde_json::Value>) {
        simulate_disks(plans, limits, link, start, BTreeMap::new(), 20)
    }

    fn simulate_disks(
        plans: &[Plan],
        limits: Limits,
        link: &LinkModel,
        start: &str,
        vm_disks: BTreeMap<String, Vec<u64>>,
        max_vm_inflight: usize,
    ) -> (Outcome, Vec<serde_json::Value>) {
        let vm_disks = vm_disks
            .into_iter()
            .map(|(id, disks)| (id, disks.into_iter().map(|b| (b, String::new())).collect()))
            .collect();
        let mut scheduler = Scheduler::new(limits, plans.iter().map(|p| (p.key.clone(), p.bytes)));
        let mut events = Events::sink();
        let setup = Setup {
            link: link.clone(),
            max_vm_inflight,
            start: start.parse().unwrap(),
            zone: TimeZone::UTC,
            vm_disks,
            adaptive_interval_secs: None,
            warm: Warm::default(),
        };
        let outcome = run(plans, &mut scheduler, &setup, &mut events).unwrap();
        (outcome, events.log)
    }

    fn link(overhead: f64) -> LinkModel {
        LinkModel {
            bandwidth_bytes_per_sec: 1.25e9,
            per_vm_overhead_secs: overhead,
            ..LinkModel::default()
        }
    }

    #[test]
    fn one_transfer_at_full_speed_takes_bytes_over_bandwidth() {
        let (outcome, _) = simulate(
            &plans(&[(125 * GB, 1)]),
            Limits::default(),
            &link(0.0),
            "2026-01-01T00:00:00Z",
        );
        assert!((outcome.makespan_secs - 100.0).abs() < 1e-6, "{outcome:?}");
        assert!((outcome.ratio() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn makespan_is_at_least_the_lower_bound_and_deterministic() {
        let sizes: Vec<(u64, usize)> = (1..=12)
            .map(|i| (i * 37 * GB, (i % 5 + 1) as usize))
            .collect();
        let p = plans(&sizes);
        for limits in [
            Limits::default(),
            Limits {
                max_running_plans: Some(2),
                ..Limits::default()
            },
            Limits {
                max_inflight_bytes: Some(300 * GB),
                ..Limits::default()
            },
        ] {
            let (a, events_a) = simulate(&p, limits.clone(), &link(60.0), "2026-01-01T00:00:00Z");
            let (b, events_b) = simulate(&p, limits.clone(), &link(60.0), "2026-01-01T00:00:00Z");
            assert_eq!(a, b);
            assert_eq!(events_a, events_b);
            assert!(a.makespan_secs >= a.lower_bound_secs, "{a:?}");
            assert_eq!(a.vms, sizes.iter().map(|s| s.1).sum::<usize>());
            if let Some(max) = limits.max_inflight_bytes {
                // Never above the limit, except a plan bigger than it, alone.
                for e in events_a.iter().filter(|e| e["event"] == "started") {
                    let alone_oversize = e["oversize"] == true && e["running_plans"] == 1;
                    assert!(
                        e["inflight_bytes"].as_u64().unwrap() <= max || alone_oversize,
                        "{e}"
                    );
                }
            }
            let finished = events_a
                .iter()
                .filter(|e| e["event"] == "plan-finished")
                .count();
            assert_eq!(finished, sizes.len());
        }
    }

    #[test]
    fn starts_wait_for_the_window_across_midnight() {
        let p = plans(&[(125 * GB, 1), (125 * GB, 1)]);
        let limits = Limits {
            max_running_plans: Some(1),
            window: Some(Window::parse("23:00-00:01").unwrap()),
            ..Limits::default()
        };
        // Starts at 12:00: nothing before 23:00; the first plan takes 100 s, then the second
        // starts at once (inside the window); both done by 23:03:20.
        let (outcome, events) = simulate(&p, limits, &link(0.0), "2026-01-01T12:00:00Z");
        let starts: Vec<&str> = events
            .iter()
            .filter(|e| e["event"] == "started")
            .map(|e| e["time"].as_str().unwrap())
            .collect();
        assert_eq!(starts, ["2026-01-01T23:00:00Z", "2026-01-01T23:01:40Z"]);
        assert!((outcome.makespan_secs - (11.0 * 3600.0 + 200.0)).abs() < 1e-6);
    }

    /// Seconds from the start to each VM's vm-succeeded event, by VM name.
    fn finish_secs(events: &[serde_json::Value], start: &str) -> BTreeMap<String, f64> {
        let start: Timestamp = start.parse().unwrap();
        events
            .iter()
            .filter(|e| e["event"] == "vm-succeeded")
            .map(|e| {
                let t: Timestamp = e["time"].as_str().unwrap().parse().unwrap();
                let secs = t.duration_since(start).as_secs_f64();
                (e["vm_name"].as_str().unwrap().to_string(), secs)
            })
            .collect()
    }

    #[test]
    fn records_make_each_disk_a_transfer_and_without_them_each_vm_is_one() {
        // 100 B/s, no contention, no overhead. VM a has disks of 100 and 300 bytes, b one of 400.
        let link = LinkModel {
            bandwidth_bytes_per_sec: 100.0,
            contention_threshold: 10,
            contention_penalty: 0.0,
            per_vm_overhead_secs: 0.0,
            ..LinkModel::default()
        };
        let mut p = plans(&[(800, 2)]);
        p[0].vms[0].name = "a".into();
        p[0].vms[1].name = "b".into();
        let start = "2026-01-01T00:00:00Z";
        let disks = BTreeMap::from([
            ("0-0".to_string(), vec![100, 300]),
            ("0-1".to_string(), vec![400]),
        ]);
        // Per disk: three transfers at 33 B/s until a's small disk is done (3 s), then two at
        // 50 B/s until a's big one is (7 s), then b alone (8 s).
        let (outcome, events) = simulate_disks(&p, Limits::default(), &link, start, disks, 20);
        let done = finish_secs(&events, start);
        assert!((done["a"] - 7.0).abs() < 1e-6, "{done:?}");
        assert!((done["b"] - 8.0).abs() < 1e-6, "{done:?}");
        assert!((outcome.makespan_secs - 8.0).abs() < 1e-6);
        // Per VM (no records): two transfers of 400 bytes at 50 B/s, both done at 8 s.
        let (_, events) = simulate(&p, Limits::default(), &link, start);
        let done = finish_secs(&events, start);
        assert!((done["a"] - 8.0).abs() < 1e-6, "{done:?}");
        assert!((done["b"] - 8.0).abs() < 1e-6, "{done:?}");
    }

    /// The same model run as forklift-sim runs it: fixed ticks; per tick the Initialize timers,
    /// then the disks of VMs in DiskTransfer over the link, then the VirtualMachineCreation
    /// timers; VMs take a slot (max_vm_inflight) in order. Returns when the last VM is done.
    fn ticked_run(link: &LinkModel, vms: &[Vec<u64>], max_vm_inflight: usize, tick: f64) -> f64 {
        #[derive(Clone, Copy, PartialEq)]
        enum Stage {
            Pending,
            Initialize(f64),
            Transfer,
            Create(f64),
            Done,
        }
        let mut stage = vec![Stage::Pending; vms.len()];
        let mut left: Vec<Vec<f64>> = vms
            .iter()
            .map(|d| d.iter().map(|b| *b as f64).collect())
            .collect();
        let mut t = 0.0;
        while stage.iter().any(|s| *s != Stage::Done) {
            let running = stage
                .iter()
                .filter(|s| !matches!(s, Stage::Pending | Stage::Done))
                .count();
            let mut free = max_vm_inflight.saturating_sub(running);
            for s in stage.iter_mut().filter(|s| **s == Stage::Pending) {
                if free == 0 {
                    break;
                }
                *s = Stage::Initialize(link.initialize_secs());
                free -= 1;
            }
            for s in stage.iter_mut() {
                if let Stage::Initialize(l) = s {
                    *l -= tick;
                    if *l <= 0.0 {
                        *s = Stage::Transfer;
                    }
                }
            }
            let slots: Vec<(usize, usize)> = (0..vms.len())
                .filter(|&v| stage[v] == Stage::Transfer)
                .flat_map(|v| (0..left[v].len()).map(move |d| (v, d)))
                .filter(|&(v, d)| left[v][d] > 0.0)
                .collect();
            let mut remaining: Vec<f64> = slots.iter().map(|&(v, d)| left[v][d]).collect();
            link.advance(&mut remaining, tick);
            for (&(v, d), r) in slots.iter().zip(remaining) {
                left[v][d] = r;
            }
            for v in 0..vms.len() {
                match stage[v] {
                    Stage::Transfer if left[v].iter().all(|r| *r <= 0.0) => {
                        stage[v] = Stage::Create(link.creation_secs());
                    }
                    Stage::Create(l) if l - tick <= 0.0 => stage[v] = Stage::Done,
                    Stage::Create(l) => stage[v] = Stage::Create(l - tick),
                    _ => {}
                }
            }
            t += tick;
        }
        t
    }

    #[test]
    fn simulate_agrees_with_a_ticked_run_of_the_same_model() {
        // Four VMs with one to three disks, two VM slots, contention beyond three transfers.
        let link = LinkModel {
            bandwidth_bytes_per_sec: 1.25e9,
            contention_threshold: 3,
            contention_penalty: 0.5,
            per_vm_overhead_secs: 60.0,
            ..LinkModel::default()
        };
        let disks: Vec<Vec<u64>> = vec![
            vec![50 * GB, 100 * GB],
            vec![20 * GB],
            vec![80 * GB, 10 * GB, 40 * GB],
            vec![60 * GB],
        ];
        let total: u64 = disks.iter().flatten().sum();
        let p = plans(&[(total, disks.len())]);
        let vm_disks = (0..disks.len())
            .map(|v| (format!("0-{v}"), disks[v].clone()))
            .collect();
        let (outcome, _) = simulate_disks(
            &p,
            Limits::default(),
            &link,
            "2026-01-01T00:00:00Z",
            vm_disks,
            2,
        );
        // forklift-sim's default tick is 100 ms of real time; at --time-scale 10 that is 1 s.
        let ticked = ticked_run(&link, &disks, 2, 1.0);
        let error = (outcome.makespan_secs - ticked).abs();
        assert!(
            error <= 3.0 && error / ticked < 0.01,
            "simulate {} s, ticked run {ticked} s",
            outcome.makespan_secs
        );
    }
}
