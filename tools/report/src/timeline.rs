//! plan-run's events (from --simulate or a live run) as a timeline: when each plan ran, when each
//! VM finished, bytes in flight and bytes done over time, and for a live run what remains.

use crate::inputs::Event;
use jiff::Timestamp;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug)]
pub struct Timeline {
    /// No `simulation` line: the events of a live run.
    pub live: bool,
    pub start: Timestamp,
    pub end: Timestamp,
    pub plans: Vec<PlanSpan>,
    /// Bytes of the running plans' disks, as plan-run's scheduler counts them, after each change.
    pub inflight: Vec<(Timestamp, u64)>,
    /// Bytes copied so far: finished VMs' disks, and in a live run the progress of the others.
    pub done: Vec<(Timestamp, u64)>,
    /// The `simulation` line's fields.
    pub simulation: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Clone, Default)]
pub struct PlanSpan {
    pub name: String,
    pub namespace: String,
    pub vm_count: u64,
    pub total_bytes: u64,
    pub started: Option<Timestamp>,
    pub finished: Option<Timestamp>,
    pub outcome: Option<String>,
    pub blocked: Option<String>,
    pub vms: Vec<VmDone>,
    /// Bytes copied per VM id, as last reported.
    pub progress: BTreeMap<String, u64>,
}

#[derive(Debug, Clone)]
pub struct VmDone {
    pub name: String,
    pub time: Timestamp,
    pub bytes: u64,
    /// succeeded, failed or canceled.
    pub outcome: String,
    pub error: Option<String>,
}

/// What a live run has not done yet.
#[derive(Debug, serde::Serialize)]
pub struct Remaining {
    pub plans: usize,
    pub running: usize,
    pub waiting: usize,
    pub vms: u64,
    pub bytes: u64,
}

impl Timeline {
    /// `None` when there are no events of plans (only `applied` lines, say).
    pub fn from_events(events: &[Event]) -> Option<Timeline> {
        let mut builder = Builder::default();
        for e in events {
            builder.add(e);
        }
        builder.finish()
    }

    pub fn remaining(&self) -> Remaining {
        let open: Vec<&PlanSpan> = self.plans.iter().filter(|p| p.finished.is_none()).collect();
        let vms = open
            .iter()
            .map(|p| p.vm_count.saturating_sub(p.vms.len() as u64))
            .sum();
        let done_open: u64 = open.iter().flat_map(|p| p.progress.values()).sum();
        let total_open: u64 = open.iter().map(|p| p.total_bytes).sum();
        Remaining {
            plans: open.len(),
            running: open.iter().filter(|p| p.started.is_some()).count(),
            waiting: open.iter().filter(|p| p.started.is_none()).count(),
            vms,
            bytes: total_open.saturating_sub(done_open),
        }
    }

    /// Bytes copied by `t`. A live run: the VMs' last reported progress. A simulation reports
    /// only when each VM ends, so its bytes are spread evenly from its plan's start to its end.
    pub fn done_at(&self, t: Timestamp) -> f64 {
        if self.live {
            let reported = self.done.partition_point(|(at, _)| *at <= t);
            return reported
                .checked_sub(1)
                .map_or(0.0, |i| self.done[i].1 as f64);
        }
        let mut done = 0.0;
        for plan in &self.plans {
            let Some(start) = plan.started else { continue };
            for vm in &plan.vms {
                let span = vm.time.duration_since(start).as_secs_f64();
                let elapsed = t.duration_since(start).as_secs_f64();
                let share = if span > 0.0 {
                    (elapsed / span).clamp(0.0, 1.0)
                } else if t >= vm.time {
                    1.0
                } else {
                    0.0
                };
                done += vm.bytes as f64 * share;
            }
        }
        done
    }

    /// VMs that failed: (name, plan's namespace, error).
    pub fn failed_vms(&self) -> Vec<(String, String, String)> {
        self.plans
            .iter()
            .flat_map(|p| {
                p.vms.iter().filter(|v| v.outcome == "failed").map(|v| {
                    (
                        v.name.clone(),
                        p.namespace.clone(),
                        v.error.clone().unwrap_or_default(),
                    )
                })
            })
            .collect()
    }
}

#[derive(Default)]
struct Builder {
    plans: BTreeMap<(String, String), PlanSpan>,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    inflight: Vec<(Timestamp, u64)>,
    done: Vec<(Timestamp, u64)>,
    /// Bytes done per VM id (live progress), and their sum.
    vm_bytes: BTreeMap<String, u64>,
    done_total: u64,
    simulation: Option<serde_json::Map<String, Value>>,
}

impl Builder {
    fn add(&mut self, e: &Event) {
        self.first = Some(self.first.map_or(e.time, |f| f.min(e.time)));
        self.last = Some(self.last.map_or(e.time, |l| l.max(e.time)));
        if let Some(bytes) = e.u64("inflight_bytes") {
            self.inflight.push((e.time, bytes));
        }
        if e.event == "simulation" {
            self.simulation = Some(e.fields.clone());
            return;
        }
        let (Some(plan), Some(namespace)) = (e.str("plan"), e.str("namespace")) else {
            return;
        };
        let key = (namespace.to_string(), plan.to_string());
        let span = self.plans.entry(key).or_insert_with(|| PlanSpan {
            name: plan.into(),
            namespace: namespace.into(),
            ..PlanSpan::default()
        });
        if let Some(n) = e.u64("vm_count") {
            span.vm_count = n;
        }
        if let Some(b) = e.u64("total_bytes") {
            span.total_bytes = b;
        }
        match e.event.as_str() {
            "started" | "attached" => {
                span.started.get_or_insert(e.time);
                // A new attempt (--retry-failed) runs again.
                span.finished = None;
                span.outcome = None;
            }
            "plan-finished" | "deleted" => {
                span.finished = Some(e.time);
                span.outcome = Some(e.str("outcome").unwrap_or("Deleted").to_string());
            }
            "blocked" => span.blocked = Some(e.str("message").unwrap_or("").to_string()),
            "vm-progress" => {
                if let (Some(id), Some(bytes)) = (e.str("vm_id"), e.u64("bytes_done")) {
                    span.progress.insert(id.to_string(), bytes);
                }
                self.progress(e, e.u64("bytes_done"));
            }
            "vm-succeeded" | "vm-failed" | "vm-canceled" => self.vm_done(e),
            _ => {}
        }
    }

    fn progress(&mut self, e: &Event, bytes: Option<u64>) {
        let (Some(id), Some(bytes)) = (e.str("vm_id"), bytes) else {
            return;
        };
        let before = self.vm_bytes.insert(id.to_string(), bytes).unwrap_or(0);
        self.done_total = (self.done_total + bytes).saturating_sub(before);
        self.done.push((e.time, self.done_total));
    }

    fn vm_done(&mut self, e: &Event) {
        let outcome = e.event.trim_start_matches("vm-").to_string();
        // A simulation says bytes_total; a live run bytes_done and bytes_total.
        let bytes = if outcome == "succeeded" {
            e.u64("bytes_total").or(e.u64("bytes_done"))
        } else {
            e.u64("bytes_done")
        };
        self.progress(e, bytes);
        let key = (
            e.str("namespace").unwrap_or("").to_string(),
            e.str("plan").unwrap_or("").to_string(),
        );
        if let Some(span) = self.plans.get_mut(&key) {
            if let (Some(id), Some(bytes)) = (e.str("vm_id"), bytes) {
                span.progress.insert(id.to_string(), bytes);
            }
            span.vms.push(VmDone {
                name: e
                    .str("vm_name")
                    .or(e.str("vm_id"))
                    .unwrap_or("")
                    .to_string(),
                time: e.time,
                bytes: bytes.unwrap_or(0),
                outcome,
                error: e.str("error").map(str::to_string),
            });
        }
    }

    fn finish(self) -> Option<Timeline> {
        if self.plans.is_empty() {
            return None;
        }
        let mut plans: Vec<PlanSpan> = self.plans.into_values().collect();
        // Started plans in start order, then those that never started.
        plans.sort_by(|a, b| match (a.started, b.started) {
            (Some(x), Some(y)) => x.cmp(&y).then(a.name.cmp(&b.name)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.name.cmp(&b.name),
        });
        Some(Timeline {
            live: self.simulation.is_none(),
            start: self.first?,
            end: self.last?,
            plans,
            inflight: self.inflight,
            done: self.done,
            simulation: self.simulation,
        })
    }
}
