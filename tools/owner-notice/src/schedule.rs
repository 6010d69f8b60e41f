//! The schedule from plan-run's events (a `--simulate` run's or a live run's): when each plan
//! starts, what blocks it, when each VM ends and how.

use plan_run::events::Event;
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Schedule {
    /// `simulated` when the events end with --simulate's `simulation` line, `live` for a run's
    /// events, `None` without events.
    pub kind: Option<&'static str>,
    /// Per plan (namespace, name).
    pub plans: BTreeMap<(String, String), PlanRun>,
    /// Per VM id: its end.
    pub vms: BTreeMap<String, VmEnd>,
}

#[derive(Debug, Default)]
pub struct PlanRun {
    /// The plan's latest start (a retried plan starts again).
    pub started: Option<jiff::Timestamp>,
    pub blocked: Option<String>,
    /// A warm plan's cutover (plan-run's `cutover` event): when, and the downtime plan-run
    /// forecasts for its VMs.
    pub cutover: Option<(jiff::Timestamp, f64)>,
}

#[derive(Debug)]
pub struct VmEnd {
    pub time: jiff::Timestamp,
    /// Succeeded, Failed or Canceled.
    pub outcome: String,
    pub error: Option<String>,
    /// A warm VM's downtime in a simulation (vm-succeeded's downtime_secs).
    pub downtime_secs: Option<f64>,
}

impl Schedule {
    pub fn from_events(events: &[Event]) -> Schedule {
        let mut schedule = Schedule::default();
        if events.is_empty() {
            return schedule;
        }
        schedule.kind = Some(if events.iter().any(|e| e.event == "simulation") {
            "simulated"
        } else {
            "live"
        });
        for e in events {
            let plan = match (e.str("namespace"), e.str("plan")) {
                (Some(ns), Some(name)) => Some((ns.to_string(), name.to_string())),
                _ => None,
            };
            match (e.event.as_str(), plan) {
                ("started", Some(plan)) => {
                    let run = schedule.plans.entry(plan).or_default();
                    run.started = Some(e.time);
                    run.blocked = None;
                }
                ("cutover", Some(plan)) => {
                    let at = e.str("cutover").and_then(|t| t.parse().ok());
                    let secs = e.fields.get("downtime_secs").and_then(|v| v.as_f64());
                    if let (Some(at), Some(secs)) = (at, secs) {
                        schedule.plans.entry(plan).or_default().cutover = Some((at, secs));
                    }
                }
                ("blocked", Some(plan)) => {
                    schedule.plans.entry(plan).or_default().blocked =
                        Some(e.str("message").unwrap_or("blocked").to_string());
                }
                (event @ ("vm-succeeded" | "vm-failed" | "vm-canceled"), _) => {
                    let Some(id) = e.str("vm_id") else { continue };
                    let outcome = match event {
                        "vm-succeeded" => "Succeeded",
                        "vm-failed" => "Failed",
                        _ => "Canceled",
                    };
                    schedule.vms.insert(
                        id.to_string(),
                        VmEnd {
                            time: e.time,
                            outcome: outcome.to_string(),
                            error: e.str("error").map(str::to_string),
                            downtime_secs: e.fields.get("downtime_secs").and_then(|v| v.as_f64()),
                        },
                    );
                }
                _ => {}
            }
        }
        schedule
    }
}
