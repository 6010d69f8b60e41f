//! plan-run: applies what rbac-gen and plan-gen wrote, starts Forklift Migrations under the
//! operator's limits, watches them to the end and writes events; or, with --simulate, predicts it.

mod access;
mod events;
mod forklift;
mod kubeerr;
mod live;
pub mod manifest;
mod progress;
pub mod refusals;
pub mod sched;
pub mod simulate;
pub mod status;
pub mod window;

use clap::Parser;
use common::linkmodel::{self, LinkModel};
use common::{Error, ExitCode, Result};
use sched::{Limits, Order, Scheduler};
use std::path::PathBuf;
use window::Window;

const LONG_ABOUT: &str = "\
Reads the objects rbac-gen and plan-gen wrote (JSON lines or YAML streams; files, or stdin when
none or `-`) and applies them with server-side apply (field manager liftkit): Namespaces first,
then RBAC and quotas, then Secrets, Providers and maps, then Plans. It then waits for each Plan to
be Ready (--ready-timeout; a plan still not Ready then is reported `blocked` with Forklift's Critical
and Error conditions, and the others go on) and starts one Migration per plan run, named
<plan>-<attempt> and labelled liftkit.io/plan=<plan>, under its own scheduler:
--max-running-plans, --max-inflight (total disk bytes of the running plans, from the Plan
annotation liftkit.io/total-disk-bytes, or computed from --records), --order and --window (new
migrations start only inside the window, local time; running ones go on). A plan bigger than
--max-inflight starts alone, when nothing else runs (its `started` event says oversize: true).
Forklift's own controller_max_vm_inflight (VMs per source provider) still applies underneath.

Before it applies anything, plan-run compares the Forklift version the Plans were preflighted for
(plan-gen --forklift-version, the annotation liftkit.io/forklift-version) with the one the cluster
runs (the Forklift operator's ClusterServiceVersion, forklift-operator.v* or mtv-operator.v*,
spec.version; else the image tag of the forklift-controller Deployment beside a
ForkliftController, looked for in the Plans' namespaces first) and warns when they differ. Just
before it starts a plan it repeats Forklift's MacConflicts check against the VirtualMachines in
the cluster (the VMs' MACs from the annotation liftkit.io/vm-macs; a VirtualMachine Forklift made
from the same source VM, label vmID, does not count): a plan with a conflict is reported blocked,
with Forklift's condition, and not started.

Progress comes from the watch API (Plans and Migrations), survives API server restarts, and is
written to stdout as JSON lines: {time, event, plan, namespace, ...} with event one of applied,
ready, blocked, started, attached, vm-progress, vm-succeeded, vm-failed, vm-canceled,
plan-finished, deleted (the Plan or its running Migration was deleted: the plan ends there),
skipped, access. Progress bars on a terminal only; a summary on stderr. Starts wait until every
namespace's Plans have been listed once (60 s at most, then the namespaces not listed are named);
a watch the API server forbids (401/403) ends the run with exit 77.

All state lives in the cluster, so plan-run can be stopped and started again: a rerun skips plans
that succeeded, re-attaches to a Migration still running, and never starts a second Migration for
a plan; plans whose last Migration failed or was canceled are reported, and restarted with
--retry-failed (Forklift re-runs only the VMs that did not succeed). Ctrl-C stops scheduling and
leaves running Migrations alone (exit 130 after the summary); --cancel-on-interrupt cancels their
unfinished VMs first (Migration spec.cancel).

--verify-access applies and starts nothing: for each owner bound by the input's RoleBindings
(User or Group subjects) it asks the API server (SubjectAccessReview) whether the owner may create
virtualmachines.kubevirt.io in each namespace of the input: allowed where bound, denied in every
other one. A mismatch is reported (event access, ok: false) and exits 1.

--simulate needs no cluster: the same scheduler, fed by a model of the shared link
(--bandwidth, common::linkmodel) and of Forklift's VM slots (--max-vm-inflight), writes the same
events at simulated times and a final `simulation` line: makespan, lower bound (total bytes /
bandwidth) and their ratio. Reads plan-gen's output directly. The link carries one transfer per
disk, as Forklift copies a VM's disks in parallel (and forklift-sim paces them), when --records
gives the VMs' disks; without records, each VM is one transfer of its share of the plan's bytes.

Credentials as kubectl finds them: --kubeconfig, else KUBECONFIG, else ~/.kube/config, else the
service account of a pod; --context picks a context, -n the namespace of objects that name none.
Memory: every input object (a few KiB per plan) and the status of the plans being watched.";

/// Examples, environment and related pages after the help.
pub const DOC: common::cli::Doc = common::cli::Doc {
    examples: &[
        (
            "Apply and run the plans, four at a time, 3 TiB in flight, starting only at night",
            "plan-run --max-running-plans 4 --max-inflight 3TiB --window 22:00-06:00 \\\n    rbac.jsonl plans.jsonl > events.jsonl",
        ),
        (
            "The same in another cluster's context, without applying: the server's dry run",
            "plan-run --context staging --dry-run rbac.jsonl plans.jsonl",
        ),
        (
            "Estimate the schedule offline over a 10 Gbit/s link",
            "plan-run --simulate --bandwidth 10Gbit/s --max-running-plans 4 --records owned.jsonl plans.jsonl",
        ),
    ],
    environment: &[
        (
            "KUBECONFIG",
            "the kubeconfig file(s), when --kubeconfig is not given (as kubectl reads it)",
        ),
        ("TZ", "the time zone of --window"),
    ],
    see_also: &["rbac-gen(1)", "plan-gen(1)", "report(1)", "kubectl(1)"],
};

#[derive(Debug, Parser)]
#[command(name = "plan-run", version, about = "Apply liftkit's objects and run Forklift migrations under limits",
    long_about = LONG_ABOUT)]
pub struct Args {
    /// Object files from rbac-gen and plan-gen (JSON lines or YAML); stdin when none or `-`
    pub inputs: Vec<PathBuf>,

    #[command(flatten)]
    pub kube: common::cli::Kube,

    /// Output format: the events as JSON lines, or (--simulate) the schedule as a table for
    /// people, one row per plan
    #[arg(long, value_enum, default_value_t = EventFormat::Jsonl)]
    pub format: EventFormat,

    /// Apply with the server's dry run (dryRun=All): nothing is stored, nothing starts
    #[arg(long)]
    pub dry_run: bool,

    /// Take over fields another field manager owns (server-side apply force)
    #[arg(long)]
    pub force_conflicts: bool,

    /// How long each Plan may take to become Ready (like 10m, 90s)
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub ready_timeout: f64,

    /// At most N plans migrating at once
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_running_plans: Option<u64>,

    /// At most SIZE of disks in the running plans (like 20TiB)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_inflight: Option<u64>,

    /// Order in which ready plans start
    #[arg(long, value_enum, default_value_t = Order::LargestFirst)]
    pub order: Order,

    /// Start new migrations only inside this local-time window (like 22:00-06:00)
    #[arg(long, value_name = "HH:MM-HH:MM", value_parser = Window::parse)]
    pub window: Option<Window>,

    /// Start a new Migration for plans whose last one failed or was canceled
    #[arg(long)]
    pub retry_failed: bool,

    /// On Ctrl-C, cancel the unfinished VMs of the running Migrations
    #[arg(long)]
    pub cancel_on_interrupt: bool,

    /// Only check that each owner may create VMs in their namespaces and in no other
    #[arg(long, conflicts_with_all = ["simulate", "dry_run"])]
    pub verify_access: bool,

    /// VM records (ovirt-dump, owner-group): disk bytes of plans without the annotation, and
    /// in --simulate each VM's disks, one transfer per disk (without records: one per VM)
    #[arg(long, value_name = "FILE")]
    pub records: Vec<PathBuf>,

    /// Estimate the schedule offline, with no cluster
    #[arg(long, requires = "bandwidth")]
    pub simulate: bool,

    /// --simulate: the shared link's bandwidth (like 10Gbit/s, 1.25GB/s)
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub bandwidth: Option<f64>,

    /// --simulate: Forklift's controller_max_vm_inflight (VMs migrating at once per provider)
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_vm_inflight: u64,

    /// --simulate: time per VM outside disk transfer (Initialize, VM creation)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub per_vm_overhead: f64,

    /// --simulate: when the simulated run starts (RFC 3339, like 2026-11-26T22:00:00+01:00)
    /// [default: now]
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub start: Option<jiff::Timestamp>,

    #[command(flatten)]
    pub verbosity: common::cli::Verbosity,
}

/// `--format`: the events, or the simulated schedule for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EventFormat {
    /// One event per line, as JSON
    Jsonl,
    /// With --simulate: one row per plan (start, end, VMs, size), sizes in binary units
    Table,
}

/// The simulated schedule as a table: one row per plan, in the order plans started.
fn schedule_table(log: &[serde_json::Value]) -> String {
    use common::format::{Column, table_string};
    let mut rows: Vec<serde_json::Map<String, serde_json::Value>> = Vec::new();
    for event in log {
        let plan = (&event["namespace"], &event["plan"]);
        match event["event"].as_str() {
            Some("started") => rows.push(
                serde_json::json!({"plan": event["plan"], "namespace": event["namespace"],
                    "vms": event["vm_count"], "total_bytes": event["total_bytes"],
                    "start": event["time"]})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            ),
            Some("plan-finished") => {
                if let Some(row) = rows
                    .iter_mut()
                    .rev()
                    .find(|r| (&r["namespace"], &r["plan"]) == plan)
                {
                    row.insert("end".into(), event["time"].clone());
                    let secs = |v: &serde_json::Value| {
                        v.as_str()
                            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                            .map(|t| t.as_second())
                    };
                    if let (Some(a), Some(b)) = (secs(&row["start"]), secs(&event["time"])) {
                        row.insert("duration".into(), human_secs((b - a) as f64).into());
                    }
                }
            }
            _ => {}
        }
    }
    let columns = [
        Column::text("plan"),
        Column::text("namespace"),
        Column::number("vms"),
        Column::bytes("total_bytes").header("size"),
        Column::text("start"),
        Column::text("end"),
        Column::text("duration"),
    ];
    table_string(&columns, &rows, None)
}

fn parse_duration(text: &str) -> std::result::Result<f64, String> {
    match linkmodel::parse_duration_secs(text)? {
        secs if secs.is_finite() && secs >= 0.0 => Ok(secs),
        _ => Err("must not be negative".into()),
    }
}

fn parse_size(text: &str) -> std::result::Result<u64, String> {
    match common::size::parse_size(text)? {
        0 => Err("must be more than 0".into()),
        n => Ok(n),
    }
}

fn parse_rate(text: &str) -> std::result::Result<f64, String> {
    linkmodel::parse_rate(text)
}

fn parse_time(text: &str) -> std::result::Result<jiff::Timestamp, String> {
    text.parse::<jiff::Timestamp>()
        .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
}

pub fn command() -> clap::Command {
    common::cli::command(<Args as clap::CommandFactory>::command(), &DOC)
}

impl Args {
    fn limits(&self) -> Limits {
        Limits {
            max_running_plans: self.max_running_plans.map(|n| n as usize),
            max_inflight_bytes: self.max_inflight,
            order: self.order,
            window: self.window,
        }
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    args.verbosity.init_logging();
    let objects = manifest::read(&args.inputs)?;
    let mut plans = manifest::plans(&objects)?;
    if !args.records.is_empty() {
        manifest::compute_bytes(&mut plans, &args.records)?;
    }
    for plan in plans.iter().filter(|p| !p.bytes_known) {
        if args.max_inflight.is_some() || args.simulate {
            tracing::warn!(
                "{}: Plan {} has no {} annotation (and --records does not cover it): counted as {} bytes",
                plan.location,
                plan.key,
                manifest::TOTAL_DISK_BYTES_ANNOTATION,
                plan.bytes
            );
        }
    }
    if args.simulate {
        return simulate(&args, &plans);
    }
    if args.format != EventFormat::Jsonl {
        return Err(Error::usage(
            "--format table: the table is of a simulated schedule (add --simulate)",
        ));
    }
    common::tls::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::new(ExitCode::Software, format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let client = live::client(args.kube.config().await?).await?;
        if args.verify_access {
            return access::verify(&client, &objects).await;
        }
        live::run(&args, client, &objects, plans).await
    })
}

fn simulate(args: &Args, plans: &[manifest::Plan]) -> Result<ExitCode> {
    if plans.is_empty() {
        return Err(Error::data(
            "no Forklift Plan in the input: nothing to simulate",
        ));
    }
    let link = LinkModel {
        bandwidth_bytes_per_sec: args.bandwidth.unwrap_or_default(),
        per_vm_overhead_secs: args.per_vm_overhead,
        ..LinkModel::default()
    };
    let mut vm_disks = std::collections::BTreeMap::new();
    if !args.records.is_empty() {
        common::jsonl::Inputs::new(&args.records).for_each(
            |value: serde_json::Value, location| {
                let record = common::record::parse_vm_record(value)
                    .map_err(|e| Error::data(format!("{location}: {e}")))?;
                vm_disks.insert(record.id.clone(), manifest::record_disk_bytes(&record));
                Ok(())
            },
        )?;
    }
    let mut scheduler = Scheduler::new(
        args.limits(),
        plans.iter().map(|p| (p.key.clone(), p.bytes)),
    );
    let start = args.start.unwrap_or_else(jiff::Timestamp::now);
    let table = args.format == EventFormat::Table;
    let mut events = if table {
        events::Events::sink()
    } else {
        events::Events::stdout(false)
    };
    let setup = simulate::Setup {
        link,
        max_vm_inflight: args.max_vm_inflight as usize,
        start,
        zone: jiff::tz::TimeZone::system(),
        vm_disks,
    };
    let outcome = simulate::run(plans, &mut scheduler, &setup, &mut events)?;
    let end = start + jiff::SignedDuration::from_secs_f64(outcome.makespan_secs);
    events.emit(
        end,
        "simulation",
        None,
        serde_json::json!({
            "plans": outcome.plans,
            "vms": outcome.vms,
            "total_bytes": outcome.total_bytes,
            "bandwidth_bytes_per_sec": link.bandwidth_bytes_per_sec,
            "makespan_secs": round3(outcome.makespan_secs),
            "lower_bound_secs": round3(outcome.lower_bound_secs),
            "ratio": round3(outcome.ratio()),
            "peak_running_plans": outcome.peak_running_plans,
            "peak_inflight_bytes": outcome.peak_inflight_bytes,
        }),
    )?;
    events.flush()?;
    if table {
        use std::io::Write;
        let text = schedule_table(&events.log);
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| common::error::write_error("stdout", &e))?;
    }
    if !args.verbosity.quiet {
        eprintln!(
            "plan-run: simulated {} plan(s), {} VM(s), {} at {}/s: makespan {}, lower bound {} (ratio {:.2}); at most {} plan(s) and {} in flight",
            outcome.plans,
            outcome.vms,
            common::size::human_bytes(outcome.total_bytes),
            common::size::human_bytes(link.bandwidth_bytes_per_sec as u64),
            human_secs(outcome.makespan_secs),
            human_secs(outcome.lower_bound_secs),
            outcome.ratio(),
            outcome.peak_running_plans,
            common::size::human_bytes(outcome.peak_inflight_bytes),
        );
    }
    Ok(ExitCode::Ok)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `1h 02m 03s`, for people.
pub fn human_secs(secs: f64) -> String {
    let total = secs.round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}
