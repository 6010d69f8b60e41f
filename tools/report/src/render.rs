//! The page: sections built from the inputs, rendered by minijinja templates that escape every
//! value for HTML (names come from the engine and guests: untrusted). Chart SVG comes from the
//! same engine (or from plotters, numbers only) and is inserted as markup.

use crate::addresses::{self, Addresses};
use crate::capacity::{self, Capacity};
use crate::inputs::{self, AddressRow, CapacityRow, Check, Finding, Vm};
use crate::preflight::{self, Preflight};
use crate::schedule::{self, Schedule};
use crate::summary::{self, Summary};
use crate::timeline::Timeline;
use crate::timescale::TimeScale;
use crate::verify::{self, Verification};
use crate::{Args, Only};
use common::{Error, ExitCode, Result};
use minijinja::{AutoEscape, Environment, Value, context};
use std::collections::BTreeMap;

#[derive(Default)]
pub struct Page {
    summary: Option<Summary>,
    capacity: Option<Capacity>,
    addresses: Option<Addresses>,
    preflight: Option<Preflight>,
    schedule: Option<Schedule>,
    verification: Option<Verification>,
    sources: Vec<String>,
}

impl Page {
    pub fn read(
        args: &Args,
        available: &BTreeMap<String, u64>,
        zone: jiff::tz::TimeZone,
    ) -> Result<Page> {
        let vms: Vec<Vm> = inputs::read_all(&args.vms)?;
        let inventory: Vec<Vm> = inputs::read_all(&args.inventory)?;
        let findings: Vec<Finding> = inputs::read_all(&args.preflight)?;
        let events = inputs::read_events(&args.events)?;
        let timeline = Timeline::from_events(&events);
        let mut page = Page::default();
        if !args.vms.is_empty() || !args.inventory.is_empty() {
            let moved = if args.vms.is_empty() {
                &inventory
            } else {
                &vms
            };
            let failed = timeline.as_ref().map(Timeline::failed_vms);
            page.summary = Some(summary::build(
                moved,
                (!args.inventory.is_empty() && !args.vms.is_empty()).then_some(&inventory[..]),
                &findings,
                failed.as_deref().unwrap_or_default(),
            ));
        }
        if !args.capacity.is_empty() {
            let rows: Vec<CapacityRow> = inputs::read_all(&args.capacity)?;
            page.capacity = Some(capacity::build(&rows, available));
        }
        if !args.addresses.is_empty() {
            let rows: Vec<AddressRow> = inputs::read_all(&args.addresses)?;
            page.addresses = Some(addresses::build(&rows));
        }
        if !args.preflight.is_empty() {
            page.preflight = Some(preflight::build(&findings));
        }
        if let Some(timeline) = &timeline {
            let scale = TimeScale::new(timeline.start, timeline.end, zone, args.window);
            page.schedule = Some(schedule::build(timeline, &scale)?);
        }
        if !args.verify.is_empty() {
            let checks: Vec<Check> = inputs::read_all(&args.verify)?;
            let migrated = match &timeline {
                Some(t) if t.live => migrated(t),
                _ => Vec::new(),
            };
            page.verification = Some(verify::build(&checks, &migrated));
        }
        page.sources = sources(args);
        Ok(page)
    }

    pub fn html(&self, title: &str) -> Result<String> {
        render(
            "report.html",
            context! {
                title,
                version => env!("CARGO_PKG_VERSION"),
                sources => &self.sources,
                summary => &self.summary,
                capacity => &self.capacity,
                addresses => &self.addresses,
                preflight => &self.preflight,
                schedule => &self.schedule,
                verification => &self.verification,
            },
        )
    }

    /// One chart, as a standalone SVG document.
    pub fn chart(&self, only: Only) -> Result<String> {
        let missing = |what: &str, flag: &str| {
            Error::usage(format!(
                "--only {what}: no chart to draw (give {flag} with something to show)"
            ))
        };
        let (template, chart) = match only {
            Only::Schedule => {
                let s = self
                    .schedule
                    .as_ref()
                    .ok_or_else(|| missing("schedule", "--events"))?;
                ("gantt.svg", Value::from_serialize(&s.gantt))
            }
            Only::Capacity => {
                let c = self
                    .capacity
                    .as_ref()
                    .ok_or_else(|| missing("capacity", "--capacity"))?;
                ("bars.svg", Value::from_serialize(&c.class_chart))
            }
            Only::Addresses => {
                let a = self.addresses.as_ref().and_then(|a| a.chart.as_ref());
                let a = a.ok_or_else(|| missing("addresses", "--addresses"))?;
                ("bars.svg", Value::from_serialize(a))
            }
            Only::Preflight => {
                let p = self
                    .preflight
                    .as_ref()
                    .ok_or_else(|| missing("preflight", "--preflight"))?;
                ("bars.svg", Value::from_serialize(&p.chart))
            }
        };
        let svg = render(template, context! { chart, standalone => true })?;
        Ok(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
            svg.trim_start()
        ))
    }
}

/// Names of VMs a live run migrated.
fn migrated(timeline: &Timeline) -> Vec<String> {
    timeline
        .plans
        .iter()
        .flat_map(|p| p.vms.iter())
        .filter(|v| v.outcome == "succeeded")
        .map(|v| v.name.clone())
        .collect()
}

/// The inputs, as `--flag file` lines for the page's footer.
fn sources(args: &Args) -> Vec<String> {
    let flags = [
        ("--vms", &args.vms),
        ("--inventory", &args.inventory),
        ("--capacity", &args.capacity),
        ("--addresses", &args.addresses),
        ("--preflight", &args.preflight),
        ("--events", &args.events),
        ("--verify", &args.verify),
    ];
    flags
        .iter()
        .flat_map(|(flag, paths)| paths.iter().map(move |p| format!("{flag} {}", p.display())))
        .collect()
}

fn environment() -> Result<Environment<'static>> {
    let mut env = Environment::new();
    // Everything is escaped for HTML, SVG templates included (SVG text and attributes take the
    // same escaping); only chart markup made by these templates is inserted with |safe.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let templates = [
        ("report.html", include_str!("../templates/report.html")),
        ("bars.svg", include_str!("../templates/bars.svg")),
        ("gantt.svg", include_str!("../templates/gantt.svg")),
        ("chart.css", include_str!("../templates/chart.css")),
        ("page.css", include_str!("../templates/page.css")),
    ];
    for (name, text) in templates {
        env.add_template(name, text).map_err(template_error)?;
    }
    Ok(env)
}

fn render(name: &str, ctx: Value) -> Result<String> {
    let env = environment()?;
    let template = env.get_template(name).map_err(template_error)?;
    template.render(ctx).map_err(template_error)
}

/// A template that does not render is a bug in report, not in its input.
fn template_error(e: minijinja::Error) -> Error {
    Error::new(ExitCode::Software, format!("template: {e}"))
}
