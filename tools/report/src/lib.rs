//! report: the whole migration on one self-contained HTML page (summary, capacity, addresses,
//! preflight, schedule, verification) from whichever liftkit outputs it is given.

mod addresses;
mod bars;
mod capacity;
mod gantt;
mod inputs;
mod lines;
mod preflight;
mod render;
mod schedule;
mod summary;
mod timeline;
mod timescale;
mod verify;

use clap::Parser;
use common::output::Output;
use common::{Error, ExitCode, Result};
use plan_run::window::Window;
use std::io::Write;
use std::path::PathBuf;

const LONG_ABOUT: &str = "\
Reads liftkit's outputs (JSON lines; each option repeatable) and writes one HTML page that needs
nothing else when opened: no network, no scripts, no web fonts; its charts are inline SVG (hover a
bar for its details; each bar's figures are also printed beside it), and it prints. A section
appears for each kind of input given.

Summary (--vms, --inventory): VMs, owners, target namespaces, disk bytes (a shared disk once), and
the VMs left out and why: not selected (in --inventory, not in --vms), blocked by a Critical
preflight finding (--preflight), failed in a live run (--events).

Capacity (--capacity: capacity-calc's rows with its totals row, or its --quota records): per
storage class the PVC bytes kept (steady) and requested while copying (peak) against --available
(or the totals row's available_bytes); per group, the largest peak first. Without a totals row
the class figures are the groups' sums, and the peak an upper bound.

Addresses (--addresses: ip-budget's report, or its --allocate records): per target subnet the
addresses reserved, needed and free, in percent of the subnet, shortfalls in red; targets given no
subnet.

Preflight (--preflight: plan-gen's --report): findings by category and concern with their VMs, and
the VMs the Critical ones keep out of the plans.

Schedule (--events: plan-run's events, from --simulate or a live run): a Gantt chart of the plans
(a mark per VM when it finished; a table lists them too), the --window shaded, the disk bytes of
the running plans and the copy throughput over time. A live run's throughput comes from its
vm-progress events; a simulation reports each VM only when it ends, so its bytes are spread from
its plan's start to its end. Events without --simulate's closing `simulation` line are a live
run's; for a live run, what remains: plans, VMs, bytes (its last event is now).

Verification (--verify: vm-verify's records, one JSON object per check, {\"vm\": NAME, \"check\":
NAME, \"ok\": BOOL, \"message\": TEXT}; the failed ones alone will do): the VMs that passed (no
failed check; a live run's migrated VMs count as checked) and those that failed, with why.

Every name read (VMs, namespaces, plans, messages) is escaped by the template engine: a VM named
<script> shows as text. Times are shown in --time-zone (the system's by default), the zone
plan-run reads --window in. --only writes one chart as a standalone SVG instead of the page.
report exits 0 when it wrote the page, whatever the page shows (shortfalls and findings are the
other tools' to signal). Memory: every input line is held (a few hundred bytes each).";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    /// The Gantt chart of plans (--events)
    Schedule,
    /// PVC bytes per storage class (--capacity)
    Capacity,
    /// Addresses per target subnet (--addresses)
    Addresses,
    /// VMs per preflight concern (--preflight)
    Preflight,
}

/// Examples, environment and related pages after the help.
pub const DOC: common::cli::Doc = common::cli::Doc {
    examples: &[
        (
            "One page from what the other tools wrote",
            "report --vms owned.jsonl --capacity capacity.jsonl --preflight findings.jsonl \\\n    --events schedule.jsonl --window 22:00-06:00 -o report.html",
        ),
        (
            "The Gantt chart of a simulated schedule alone, as SVG",
            "report --only schedule --events schedule.jsonl -o schedule.svg",
        ),
    ],
    environment: &[(
        "TZ",
        "the time zone of the times shown, when --time-zone is not given",
    )],
    see_also: &[
        "capacity-calc(1)",
        "ip-budget(1)",
        "plan-gen(1)",
        "plan-run(1)",
    ],
};

#[derive(Debug, Parser)]
#[command(name = "report", version,
          about = "Write the migration on one HTML page: summary, capacity, addresses, preflight, schedule, verification",
          long_about = LONG_ABOUT)]
pub struct Args {
    /// VM records of the VMs to move (vm-select, owner-group)
    #[arg(long, value_name = "FILE")]
    pub vms: Vec<PathBuf>,
    /// The full inventory (ovirt-dump): its VMs not in --vms are listed as not selected
    #[arg(long, value_name = "FILE")]
    pub inventory: Vec<PathBuf>,
    /// capacity-calc's rows (with --totals, its totals row too) or quota records
    #[arg(long, value_name = "FILE")]
    pub capacity: Vec<PathBuf>,
    /// Capacity of a storage class, CLASS=SIZE (40TiB; repeatable), as capacity-calc's
    #[arg(long, value_name = "CLASS=SIZE")]
    pub available: Vec<String>,
    /// ip-budget's report rows or --allocate records
    #[arg(long, value_name = "FILE")]
    pub addresses: Vec<PathBuf>,
    /// plan-gen's preflight findings (its --report)
    #[arg(long, value_name = "FILE")]
    pub preflight: Vec<PathBuf>,
    /// plan-run's events (--simulate or a live run)
    #[arg(long, value_name = "FILE")]
    pub events: Vec<PathBuf>,
    /// vm-verify's records, one per check: {vm, check, ok, message}
    #[arg(long, value_name = "FILE")]
    pub verify: Vec<PathBuf>,
    /// The downtime window to shade, as plan-run's --window (like 22:00-06:00)
    #[arg(long, value_name = "HH:MM-HH:MM", value_parser = Window::parse)]
    pub window: Option<Window>,
    /// Time zone of the times shown and of --window (IANA name, like Europe/Prague) [default: the system's]
    #[arg(long, value_name = "ZONE")]
    pub time_zone: Option<String>,
    /// The page's title
    #[arg(long, value_name = "TEXT", default_value = "Migration report")]
    pub title: String,
    /// Write only this chart, as a standalone SVG
    #[arg(long, value_enum, value_name = "CHART")]
    pub only: Option<Only>,
    #[command(flatten)]
    pub out: common::cli::OutputFile,
    #[command(flatten)]
    pub verbosity: common::cli::Verbosity,
}

pub fn command() -> clap::Command {
    common::cli::command(<Args as clap::CommandFactory>::command(), &DOC)
}

pub fn run(args: Args) -> Result<ExitCode> {
    args.verbosity.init_logging();
    let available = common::size::parse_available(&args.available)?;
    let zone = common::cli::time_zone(args.time_zone.as_deref())?;
    let given = [
        &args.vms,
        &args.inventory,
        &args.capacity,
        &args.addresses,
        &args.preflight,
        &args.events,
        &args.verify,
    ];
    if given.iter().all(|paths| paths.is_empty()) {
        return Err(Error::usage(
            "nothing to report: give at least one of --vms, --inventory, --capacity, --addresses, --preflight, --events, --verify",
        ));
    }
    let page = render::Page::read(&args, &available, zone)?;
    let text = match args.only {
        Some(only) => page.chart(only)?,
        None => page.html(&args.title)?,
    };
    let mut out = Output::create(args.out.path())?;
    let name = out.name();
    out.write_all(text.as_bytes())
        .map_err(|e| common::error::write_error(&name, &e))?;
    out.commit()?;
    Ok(ExitCode::Ok)
}
