//! The schedule section: the Gantt chart of plans with the window shaded, bytes in flight and
//! throughput over time, a table of plans and their VMs; for a live run, what remains.

use crate::gantt::{self, Gantt};
use crate::lines;
use crate::timeline::{Remaining, Timeline};
use crate::timescale::TimeScale;
use common::size::human_bytes;
use common::{Error, ExitCode, Result};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Schedule {
    pub live: bool,
    pub window: Option<String>,
    pub zone: String,
    pub start: String,
    pub end: String,
    pub gantt: Gantt,
    pub inflight_svg: String,
    pub throughput_svg: String,
    /// The simulation's own summary, as (what, value) lines.
    pub simulation: Vec<(String, String)>,
    pub remaining: Option<RemainingView>,
    pub plans: Vec<PlanLine>,
}

#[derive(Debug, Serialize)]
pub struct RemainingView {
    pub plans: usize,
    pub running: usize,
    pub waiting: usize,
    pub vms: u64,
    pub bytes: String,
}

#[derive(Debug, Serialize)]
pub struct PlanLine {
    pub name: String,
    pub namespace: String,
    pub vms: u64,
    pub bytes: String,
    pub started: String,
    pub finished: String,
    pub outcome: String,
    pub class: String,
    pub vm_names: Vec<String>,
}

pub fn build(timeline: &Timeline, scale: &TimeScale) -> Result<Schedule> {
    let chart_error = |e: String| Error::new(ExitCode::Software, format!("drawing a chart: {e}"));
    Ok(Schedule {
        live: timeline.live,
        window: scale.window.map(|w| w.to_string()),
        zone: scale.zone.iana_name().unwrap_or("UTC offset").to_string(),
        start: scale.label(timeline.start),
        end: scale.label(timeline.end),
        gantt: gantt::layout(timeline, scale),
        inflight_svg: lines::inflight(timeline, scale).map_err(chart_error)?,
        throughput_svg: lines::throughput(timeline, scale).map_err(chart_error)?,
        simulation: simulation_lines(timeline),
        remaining: timeline.live.then(|| remaining(timeline.remaining())),
        plans: timeline
            .plans
            .iter()
            .map(|p| {
                let outcome = match (&p.outcome, p.started, &p.blocked) {
                    (Some(o), _, _) => o.clone(),
                    (None, Some(_), _) => "running".into(),
                    (None, None, Some(why)) => format!("blocked: {why}"),
                    (None, None, None) => "waiting".into(),
                };
                PlanLine {
                    name: p.name.clone(),
                    namespace: p.namespace.clone(),
                    vms: p.vm_count,
                    bytes: human_bytes(p.total_bytes),
                    started: p.started.map(|t| scale.label(t)).unwrap_or_default(),
                    finished: p.finished.map(|t| scale.label(t)).unwrap_or_default(),
                    class: outcome_class(&outcome).into(),
                    outcome,
                    vm_names: p.vms.iter().map(|v| v.name.clone()).collect(),
                }
            })
            .collect(),
    })
}

fn outcome_class(outcome: &str) -> &'static str {
    match outcome {
        "Succeeded" => "ok",
        "running" | "waiting" => "",
        _ => "bad",
    }
}

fn remaining(r: Remaining) -> RemainingView {
    RemainingView {
        plans: r.plans,
        running: r.running,
        waiting: r.waiting,
        vms: r.vms,
        bytes: human_bytes(r.bytes),
    }
}

fn simulation_lines(timeline: &Timeline) -> Vec<(String, String)> {
    let Some(sim) = &timeline.simulation else {
        return Vec::new();
    };
    let num = |k: &str| sim.get(k).and_then(serde_json::Value::as_f64);
    let bytes = |k: &str| num(k).map(|b| human_bytes(b as u64));
    let secs = |k: &str| num(k).map(plan_run::human_secs);
    let lines = [
        ("plans", num("plans").map(|n| n.to_string())),
        ("VMs", num("vms").map(|n| n.to_string())),
        ("disk bytes", bytes("total_bytes")),
        (
            "link",
            bytes("bandwidth_bytes_per_sec").map(|b| format!("{b}/s")),
        ),
        ("makespan", secs("makespan_secs")),
        ("lower bound (bytes / bandwidth)", secs("lower_bound_secs")),
        (
            "makespan / lower bound",
            num("ratio").map(|r| format!("{r:.2}")),
        ),
        (
            "most plans at once",
            num("peak_running_plans").map(|n| n.to_string()),
        ),
        ("most bytes in flight", bytes("peak_inflight_bytes")),
    ];
    lines
        .into_iter()
        .filter_map(|(what, value)| Some((what.to_string(), value?)))
        .collect()
}
