//! --bandwidth auto: how many disk copies to keep going, found from the throughput Forklift
//! reports rather than from a bandwidth someone guessed. The live run and --simulate feed it the
//! same samples (cumulative bytes copied, disk copies under way) and start plans whose disks fit
//! under the limit it sets. It counts disks, not VMs: Forklift copies a VM's disks in parallel
//! (one DataVolume, one importer each), so a link's contention starts at a number of disk
//! copies, whichever VMs they belong to.
//!
//! Per interval it measures the aggregate rate (bytes copied in the interval over its length) and
//! the mean number of disk copies under way, and keeps, per such number, a recent average of the
//! rate. It climbs while the best rate is at the highest number tried (additive increase, one
//! copy an interval), backs off multiplicatively when the rate at the current number falls well
//! below the best seen at fewer (contention), tries one fewer when the best is at the fewest
//! tried (a plan can bring more disks than the limit, so fewer may never have been seen), and
//! otherwise holds at the fewest copies within a few percent of the best. Old observations
//! expire, so the climb is tried again when the link changes (other traffic by time of day).

use std::collections::BTreeMap;

/// The rates within this share of the best count as the best (measurement noise).
const PLATEAU: f64 = 0.03;
/// A rate this far under the best, with more disks copying than at the best, is contention.
const CONTENTION: f64 = 0.10;
/// Multiplicative back-off.
const BACK_OFF: f64 = 0.7;
/// Observations older than this many intervals are forgotten.
const MEMORY_INTERVALS: f64 = 60.0;

/// One observation: the recent rate with that many disk copies under way, and when it was last seen.
#[derive(Debug, Clone, Copy)]
struct Seen {
    rate: f64,
    at: f64,
}

/// A change (or a reasoned hold) of the limit, for the `concurrency` event.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Disk copies allowed under way or to start (of VMs started and not past their copy).
    pub limit: usize,
    pub previous: usize,
    /// Aggregate bytes per second copied over the interval.
    pub rate_bytes_per_sec: f64,
    /// Mean number of disk copies under way over the interval.
    pub copying_disks: f64,
    /// `increase`, `decrease` (probing fewer), `back-off` or `hold`.
    pub action: &'static str,
    pub reason: String,
}

/// The fields of a `concurrency` event.
pub fn event_fields(decision: &Decision, running_plans: usize) -> serde_json::Value {
    serde_json::json!({
        "disk_limit": decision.limit,
        "previous_disk_limit": decision.previous,
        "action": decision.action,
        "reason": decision.reason,
        "rate_bytes_per_sec": decision.rate_bytes_per_sec.round(),
        "copying_disks": (decision.copying_disks * 10.0).round() / 10.0,
        "running_plans": running_plans,
    })
}

#[derive(Debug, Clone)]
pub struct Controller {
    interval_secs: f64,
    limit: usize,
    max_limit: usize,
    /// The interval under way: its start, the bytes then, copy-seconds so far, and the last
    /// sample (time, disk copies under way).
    began: Option<(f64, f64)>,
    copy_secs: f64,
    last: Option<(f64, usize)>,
    seen: BTreeMap<usize, Seen>,
}

impl Controller {
    /// Decides every `interval_secs` (of the clock the samples use), between 1 and `max_limit`
    /// disk copies, starting at 1.
    pub fn new(interval_secs: f64, max_limit: usize) -> Controller {
        Controller {
            interval_secs,
            limit: 1,
            max_limit: max_limit.max(1),
            began: None,
            copy_secs: 0.0,
            last: None,
            seen: BTreeMap::new(),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The scheduler's hold on starts with `active` disk copies under way or to start: the
    /// limit, and the most copies seen (in memory) copying within the plateau of the best rate.
    pub fn disk_limit(&self, active: usize) -> crate::sched::DiskLimit {
        let (best, plateau) = self.plateau();
        let ceiling = match plateau.last() {
            Some(most) if best > 0.0 => *most,
            _ => 0,
        };
        crate::sched::DiskLimit {
            limit: self.limit,
            ceiling,
            active,
        }
    }

    /// The best rate in memory, and the disk counts copying within PLATEAU of it, fewest first.
    fn plateau(&self) -> (f64, Vec<usize>) {
        let best = self.seen.values().map(|s| s.rate).fold(0.0, f64::max);
        let within = (self.seen.iter())
            .filter(|(_, s)| s.rate >= best * (1.0 - PLATEAU))
            .map(|(k, _)| *k)
            .collect();
        (best, within)
    }

    /// When the interval under way ends (None before the first sample).
    pub fn next_decision_at(&self) -> Option<f64> {
        self.began.map(|(t, _)| t + self.interval_secs)
    }

    /// A sample at `t`: `bytes` copied so far (cumulative, all plans), `copying` disk copies now,
    /// and whether any plan waits to start (`demand`: without it the limit is not what holds
    /// the rate, so nothing is learnt). Returns the decision when an interval ends.
    pub fn sample(&mut self, t: f64, bytes: f64, copying: usize, demand: bool) -> Option<Decision> {
        if let Some((t0, n0)) = self.last {
            self.copy_secs += (t - t0).max(0.0) * n0 as f64;
        }
        self.last = Some((t, copying));
        let Some((began, bytes_then)) = self.began else {
            self.began = Some((t, bytes));
            return None;
        };
        let elapsed = t - began;
        if elapsed < self.interval_secs {
            return None;
        }
        let rate = ((bytes - bytes_then) / elapsed).max(0.0);
        let mean = self.copy_secs / elapsed;
        self.began = Some((t, bytes));
        self.copy_secs = 0.0;
        if mean < 0.5 {
            return None;
        }
        Some(self.decide(t, rate, mean, demand))
    }

    fn decide(&mut self, t: f64, rate: f64, mean: f64, demand: bool) -> Decision {
        let n = (mean.round() as usize).max(1);
        let memory = MEMORY_INTERVALS * self.interval_secs;
        self.seen.retain(|_, s| t - s.at <= memory);
        let entry = self.seen.entry(n).or_insert(Seen { rate, at: t });
        entry.rate = (entry.rate + rate) / 2.0;
        entry.at = t;
        let previous = self.limit;
        let decision = |limit: usize, action: &'static str, reason: String| Decision {
            limit,
            previous,
            rate_bytes_per_sec: rate,
            copying_disks: mean,
            action,
            reason,
        };
        if !demand {
            return decision(
                previous,
                "hold",
                "no plan waits to start: the limit does not hold the rate".into(),
            );
        }
        let (best, plateau) = self.plateau();
        // The fewest disk copies within the plateau of the best (`seen` holds `n` by now).
        let enough = plateau.first().copied().unwrap_or(n);
        let highest = self.seen.keys().next_back().copied().unwrap_or(n);
        let lowest = self.seen.keys().next().copied().unwrap_or(n);
        let mib = |r: f64| r / (1 << 20) as f64;
        // Back off once per overshoot: while more disks copy than the limit lets in (a back-off
        // already made), a lower limit changes nothing yet.
        let new = if n > enough && rate < best * (1.0 - CONTENTION) && n <= previous + 1 {
            let backed = ((previous as f64 * BACK_OFF).floor() as usize).max(enough);
            let limit = backed.min(previous.saturating_sub(1)).max(1);
            decision(
                limit,
                "back-off",
                format!(
                    "{:.0} MiB/s with {n} disks copying, {:.0} MiB/s with {enough}: contention",
                    mib(rate),
                    mib(best)
                ),
            )
        } else if enough >= highest && n > previous + 1 {
            decision(
                previous,
                "hold",
                format!("{n} disks copying, more than the limit: a plan brought them all"),
            )
        } else if enough >= highest {
            if n + 1 >= previous {
                decision(
                    previous + 1,
                    "increase",
                    format!(
                        "{:.0} MiB/s with {n} disks copying, the best yet: trying one more",
                        mib(rate)
                    ),
                )
            } else {
                decision(
                    previous,
                    "hold",
                    format!("{n} disks copying, under the limit: waiting for them to start"),
                )
            }
        } else if enough <= lowest && lowest > 1 && n <= lowest && lowest <= previous {
            decision(
                lowest - 1,
                "decrease",
                format!(
                    "{:.0} MiB/s with {n} disks copying, the fewest tried: trying one fewer",
                    mib(rate)
                ),
            )
        } else if enough > lowest {
            decision(
                enough,
                "hold",
                format!(
                    "{:.0} MiB/s with {enough} disks copying; more did not copy faster, fewer slower",
                    mib(best)
                ),
            )
        } else {
            // Fewer never seen: the limit stays under what runs until they are.
            decision(
                previous.min(enough),
                "hold",
                format!("{n} disks copying, more than the limit: waiting for fewer"),
            )
        };
        self.limit = new.limit.clamp(1, self.max_limit);
        Decision {
            limit: self.limit,
            ..new
        }
    }
}

/// What a live run reads from the Migrations' status for the controller: bytes copied so far,
/// disk copies under way, and disk copies of running plans not yet done. Bytes are the traffic:
/// a VM's copy step counting again from less than before (a warm precopy after the last, the
/// cutover's final copy, a copy started over) adds what it shows, never subtracts.
#[derive(Debug, Default)]
pub struct Meter {
    /// Per (plan, VM): the copy step's bytes last seen, and the VM's traffic so far.
    copied: std::collections::HashMap<(String, String), (u64, u64)>,
}

/// One plan as the meter sees it: its VMs and disks, the VM statuses of the Migration
/// followed, and whether it runs.
pub struct PlanView<'a> {
    pub plan: String,
    pub vm_count: usize,
    /// The disks the plan copies, as known before its Migration lists them (manifest::Plan).
    pub disk_count: usize,
    pub vms: &'a [crate::status::VmStatus],
    pub running: bool,
}

impl Meter {
    /// (bytes copied so far, disk copies under way, disk copies of running plans started or to
    /// start). A VM copies in phase CopyDisks or Finalize, each of its disks not Completed one
    /// copy (one copy when its status lists no tasks); a warm VM between precopies neither
    /// copies nor waits to.
    pub fn read<'a>(
        &mut self,
        plans: impl IntoIterator<Item = PlanView<'a>>,
    ) -> (f64, usize, usize) {
        use crate::status::{PHASE_COPY_DISKS, PHASE_COPYING_PAUSED, PHASE_FINALIZE};
        let (mut copying, mut active) = (0, 0);
        for view in plans {
            let mut left = 0;
            for vm in view.vms {
                let (last, traffic) = self
                    .copied
                    .entry((view.plan.clone(), vm.id.clone()))
                    .or_default();
                *traffic += vm.copy_bytes.checked_sub(*last).unwrap_or(vm.copy_bytes);
                *last = vm.copy_bytes;
                let done =
                    vm.outcome.is_some() || (vm.bytes_total > 0 && vm.bytes_done >= vm.bytes_total);
                if done || vm.phase == PHASE_COPYING_PAUSED {
                    continue;
                }
                let copies = if vm.disks > 0 {
                    vm.disks.saturating_sub(vm.disks_completed)
                } else {
                    1
                };
                left += copies;
                if vm.phase == PHASE_COPY_DISKS || vm.phase == PHASE_FINALIZE {
                    copying += copies;
                }
            }
            // VMs the status does not list yet: the plan's disks not accounted for by those it
            // lists (one a VM when that is all that is known).
            let unlisted = view.vm_count.saturating_sub(view.vms.len());
            if unlisted > 0 {
                let listed: usize = view.vms.iter().map(|v| v.disks.max(1)).sum();
                left += view.disk_count.saturating_sub(listed).max(unlisted);
            }
            if view.running {
                active += left;
            }
        }
        let traffic: u64 = self.copied.values().map(|(_, t)| t).sum();
        (traffic as f64, copying, active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link whose aggregate with n disk copies is `rate(n)`: samples every second.
    fn run(rate: impl Fn(usize) -> f64, secs: usize) -> (Controller, Vec<usize>) {
        let mut c = Controller::new(60.0, 64);
        let (mut bytes, mut limits) = (0.0, Vec::new());
        for t in 0..secs {
            let n = c.limit();
            if let Some(d) = c.sample(t as f64, bytes, n, true) {
                limits.push(d.limit);
            }
            bytes += rate(n);
        }
        (c, limits)
    }

    #[test]
    fn the_meter_counts_disk_copies_and_traffic() {
        let vm = |id: &str, phase: &str, disks, completed, copied| crate::status::VmStatus {
            id: id.into(),
            name: id.into(),
            phase: phase.into(),
            bytes_done: 0,
            bytes_total: 100,
            disks,
            disks_completed: completed,
            copy_bytes: copied,
            outcome: None,
            error: None,
        };
        // a copies 2 of its 3 disks (1 done); b has not begun and lists no tasks; c is a warm
        // VM between precopies; a fourth VM is not listed yet; the plan has 9 disks.
        let first = [
            vm("a", "CopyDisks", 3, 1, 10),
            vm("b", "Initialize", 0, 0, 0),
            vm("c", "CopyingPaused", 2, 0, 30),
        ];
        let view = |vms, running| PlanView {
            plan: "p".into(),
            vm_count: 4,
            disk_count: 9,
            vms,
            running,
        };
        let mut meter = Meter::default();
        // Left: a's 2, b's 1, and the 3 of the 9 the listed VMs (3 + 1 + 2) do not account for.
        assert_eq!(meter.read([view(&first, true)]), (40.0, 2, 6));
        // a's copy starts over (4 after 10: 4 more on the link); c's next precopy is in the
        // cutover's Finalize, its 2 disks copying; a stopped plan holds nothing back.
        let second = [
            vm("a", "CopyDisks", 3, 1, 4),
            vm("b", "Initialize", 0, 0, 0),
            vm("c", "Finalize", 2, 0, 35),
        ];
        assert_eq!(meter.read([view(&second, false)]), (49.0, 4, 0));
    }

    #[test]
    fn climbs_to_the_knee_and_stays_near_it() {
        // 100 a copy up to 5 copies, flat after: the knee is 5.
        let (c, limits) = run(|n| 100.0 * n.min(5) as f64, 4 * 3600);
        assert!(limits.iter().take(4).all(|l| *l <= 5), "{limits:?}");
        let late = &limits[limits.len() / 2..];
        let at_knee = late.iter().filter(|l| **l == 5).count();
        assert!(at_knee * 10 >= late.len() * 8, "{late:?}");
        assert!(late.iter().all(|l| (4..=6).contains(l)), "{late:?}");
        assert!((5..=6).contains(&c.limit()));
    }

    #[test]
    fn backs_off_from_a_collapse() {
        // Full rate up to 3 copies, then the aggregate falls as 3/n.
        let rate = |n: usize| {
            if n <= 3 {
                100.0 * n as f64
            } else {
                900.0 / n as f64
            }
        };
        let (_, limits) = run(rate, 4 * 3600);
        let above = limits.iter().filter(|l| **l > 4).count();
        assert_eq!(above, 0, "{limits:?}");
        let late = &limits[limits.len() / 2..];
        assert!(
            late.iter().filter(|l| **l == 3).count() * 10 >= late.len() * 8,
            "{late:?}"
        );
    }
}
