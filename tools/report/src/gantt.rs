//! The Gantt chart of plans, laid out here and drawn by the `gantt.svg` template: one row per
//! plan from its start to its end (or to the last event while it runs), a mark per VM when it
//! finished, and the downtime window shaded.

use crate::bars::{Tick, cut, round};
use crate::timeline::Timeline;
use crate::timescale::TimeScale;
use common::size::human_bytes;
use serde::Serialize;

const WIDTH: f64 = 900.0;
const LABEL_WIDTH: f64 = 220.0;
const RIGHT_MARGIN: f64 = 20.0;
const AXIS_HEIGHT: f64 = 24.0;
const ROW_HEIGHT: f64 = 16.0;

#[derive(Debug, Serialize)]
pub struct Gantt {
    pub id: String,
    pub title: String,
    pub width: f64,
    pub height: f64,
    pub plot_left: f64,
    pub plot_right: f64,
    pub plot_top: f64,
    pub plot_bottom: f64,
    pub ticks: Vec<Tick>,
    pub windows: Vec<Span>,
    pub rows: Vec<PlanRow>,
}

#[derive(Debug, Serialize)]
pub struct Span {
    pub x: f64,
    pub width: f64,
    pub title: String,
}

#[derive(Debug, Serialize)]
pub struct PlanRow {
    pub label: String,
    pub label_y: f64,
    /// None for a plan that never started (its row stays empty).
    pub bar: Option<PlanBar>,
    pub vms: Vec<VmMark>,
}

#[derive(Debug, Serialize)]
pub struct PlanBar {
    pub class: String,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub title: String,
}

#[derive(Debug, Serialize)]
pub struct VmMark {
    pub class: String,
    pub x: f64,
    pub y1: f64,
    pub y2: f64,
    pub title: String,
}

pub fn layout(timeline: &Timeline, scale: &TimeScale) -> Gantt {
    let plot_right = WIDTH - RIGHT_MARGIN;
    let x = |t| round(scale.x(t, LABEL_WIDTH, plot_right));
    let top = AXIS_HEIGHT;
    let mut rows = Vec::with_capacity(timeline.plans.len());
    for (i, plan) in timeline.plans.iter().enumerate() {
        let y = top + i as f64 * ROW_HEIGHT;
        let bar = plan.started.map(|start| {
            let end = plan.finished.unwrap_or(timeline.end);
            let class = match plan.outcome.as_deref() {
                None => "plan running",
                Some("Succeeded") => "plan succeeded",
                Some(_) => "plan failed",
            };
            let names: Vec<&str> = plan.vms.iter().map(|v| v.name.as_str()).collect();
            PlanBar {
                class: class.into(),
                x: x(start),
                y: y + 2.0,
                width: (x(end) - x(start)).max(1.0),
                height: ROW_HEIGHT - 4.0,
                title: format!(
                    "{}/{}: {} to {}, {} VM(s), {}, {}{}{}",
                    plan.namespace,
                    plan.name,
                    scale.label(start),
                    scale.label(end),
                    plan.vm_count,
                    human_bytes(plan.total_bytes),
                    plan.outcome.as_deref().unwrap_or("running"),
                    if names.is_empty() { "" } else { "; VMs: " },
                    names.join(", ")
                ),
            }
        });
        let vms = plan
            .vms
            .iter()
            .map(|vm| VmMark {
                class: format!("vm {}", vm.outcome),
                x: x(vm.time),
                y1: y + 1.0,
                y2: y + ROW_HEIGHT - 1.0,
                title: format!(
                    "{}: {} at {} ({})",
                    vm.name,
                    vm.outcome,
                    scale.label(vm.time),
                    human_bytes(vm.bytes)
                ),
            })
            .collect();
        rows.push(PlanRow {
            label: cut(&plan.name),
            label_y: y + ROW_HEIGHT / 2.0,
            bar,
            vms,
        });
    }
    let bottom = top + timeline.plans.len() as f64 * ROW_HEIGHT;
    Gantt {
        id: "chart-gantt".into(),
        title: format!(
            "{} of {} plan(s), {} to {}",
            if timeline.live {
                "Run"
            } else {
                "Simulated schedule"
            },
            timeline.plans.len(),
            scale.label(timeline.start),
            scale.label(timeline.end)
        ),
        width: WIDTH,
        height: bottom + 6.0,
        plot_left: LABEL_WIDTH,
        plot_right,
        plot_top: top,
        plot_bottom: bottom,
        ticks: scale
            .ticks()
            .into_iter()
            .map(|(t, label)| Tick { x: x(t), label })
            .collect(),
        windows: scale
            .windows()
            .into_iter()
            .map(|(from, to)| Span {
                x: x(from),
                width: x(to) - x(from),
                title: format!("window {} to {}", scale.label(from), scale.label(to)),
            })
            .collect(),
        rows,
    }
}
