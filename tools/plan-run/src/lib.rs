//! plan-run: applies what rbac-gen and plan-gen wrote, starts Forklift Migrations under the
//! operator's limits, watches them to the end and writes events; or, with --simulate, predicts it.

mod access;
pub mod adapt;
pub mod cutover;
pub mod events;
mod forklift;
pub mod job;
pub mod kubeerr;
pub mod lease;
mod live;
pub mod manifest;
mod progress;
pub mod refusals;
pub mod sched;
mod signals;
pub mod simulate;
pub mod status;
pub mod window;

use clap::Parser;
use common::linkmodel::{self, LinkModel};
use common::{Error, ExitCode, Result};
use sched::{Limits, Order, Scheduler};
use std::path::PathBuf;
use std::time::Duration;
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
ready, blocked, started, attached, cutover, vm-progress, vm-succeeded, vm-failed, vm-canceled,
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

Only one plan-run drives a set of plans: before it applies anything it takes a
coordination.k8s.io/v1 Lease named liftkit-plan-run-<hash of the plans' namespace/name> in the
(first of the) plans' namespace(s), holder <host name>/<pid>; it renews it every third of
--lease-duration and gives it up at its exit, Ctrl-C and SIGTERM included (SIGTERM: exit 143). A
second plan-run for the same plans exits 69 naming the holder, or with --wait-for-lease waits until
the holder gives the Lease up or it runs out (looking every 2 s). A holder that dies loses it after
--lease-duration without renewal; the next one resumes from the cluster's state. A plan-run whose
Lease is taken over or cannot be renewed for a whole duration stops (exit 69), leaving running
Migrations to Forklift. The holders' clocks are taken to agree within a few seconds.

On a terminal (stderr), a status line says what plan-run waits for (waiting for N Plans to be
Ready, queued, running, done, the aggregate rate over the last 20 s) above one bar per running
plan with its rate and ETA; a failed, canceled or deleted plan's bar stops where it was, marked
with its outcome; after the summary, the VMs that did not migrate are named, by plan, with
--retry-failed. Names and messages from the cluster are escaped for the terminal.

--print-job applies nothing and needs no cluster: it writes (JSON lines, or --output yaml) what
runs plan-run in the cluster as a Kubernetes Job: the input's Namespaces (so that Roles can be
created in them), a ServiceAccount, a Secret with the input (1 MiB at most), a Role and
RoleBinding per namespace and a ClusterRole and ClusterRoleBinding granting what plan-run does with
these objects and nothing else, and a batch/v1 Job (image --job-image, built from the
Containerfile) running plan-run as that ServiceAccount with in-cluster credentials (the pod's
token and CA; KUBERNETES_SERVICE_HOST/PORT), --wait-for-lease, the scheduling and lease flags given
here, and TZ set to this machine's time zone for --window. The grants: create and patch (server-side
apply) of each input object by name, escalate on the input's Roles and bind on the roles its
RoleBindings name; list and watch Plans, and create, get, list, patch and watch Migrations in the
plans' namespaces; create Leases there, get and update its own; list and watch Events in the
target namespaces; cluster-wide, list VirtualMachines (the MAC check), ClusterServiceVersions and
ForkliftControllers, and get Deployments named forklift-controller (the Forklift version). With
rbac-gen's output in the input the Job may write the owners' Roles, which grant everything in the
owners' namespaces: for a narrower Job, apply rbac-gen's output yourself and give it plan-gen's.

--verify-access applies and starts nothing: for each owner bound by the input's RoleBindings
(User or Group subjects) it asks the API server (SubjectAccessReview) whether the owner may create
virtualmachines.kubevirt.io in each namespace of the input: allowed where bound, denied in every
other one. A mismatch is reported (event access, ok: false) and exits 1.

--bandwidth auto (the default) finds the link's capacity itself: every --sample-interval it
measures the aggregate throughput from the disk-copy progress Forklift reports in the Migration
status (DiskTransfer, and a warm cutover's Cutover step), and the disk copies under way (the tasks
not Completed of VMs in phase CopyDisks or Finalize: Forklift copies a VM's disks in parallel, so
contention comes with disk copies, not VMs). It sets a limit on the copies under way or about to
start: one more an interval while throughput grows with them, a multiplicative back-off when it
falls with more copying (contention), and otherwise the fewest copies within 3% of the best rate
seen; old observations expire, so it probes again when the link changes. Plans start in order (a
plan's disks counted from --records; one a VM without) while their disks fit under that limit or
under the most copies seen within 3% of the best rate, or while fewer than half the limit copy
(the tail of a big plan), or when nothing runs; always within --max-running-plans, --max-inflight
and --window. Each decision that changes the limit is an event `concurrency` (disk_limit,
previous_disk_limit, action increase/back-off/hold, reason, rate_bytes_per_sec, copying_disks).
--bandwidth fixed, or a RATE, keeps only the limits
given.

Warm plans (spec.type warm) start at any time, under the same limits (their precopies copy the
disks while the VMs run); only their cutovers fall in --window. plan-run sets each warm
Migration's spec.cutover (Forklift v2.12.5 migration.go: a VM waiting between precopies cuts over
once spec.cutover is not after now, right after its first copy when it is past already; the
Migration is read again at every reconcile, so a running Migration without a cutover, or with one
still ahead, is patched to plan-run's) so that the cutovers follow each other inside the window,
shortest downtime first, each with the link to itself. A plan's downtime is estimated as
  downtime = sum over its disks of min(allocated x c / 100 x P / 3600, size) / R + O
with c --warm-change-rate, P --precopy-interval, R --cutover-rate (else --bandwidth RATE, else in
--simulate the link's bandwidth capped per disk transfer, else 1 Gbit/s) and O half of
--per-vm-overhead (the VM's creation); allocated bytes from --records (without, the plan's bytes).
Each is an event cutover (cutover, downtime_secs, window_opens, window_closes, fits; patched: true
when set on a running Migration). A cutover that does not fit tonight's window goes to the next
night's, with fits: false, its VMs named, and a line on stderr. Without --window each cutover is
set to when its Migration starts: Forklift cuts over as soon as the first copy is done.

--simulate needs no cluster: the same scheduler and controller, fed by a model of the shared link
(--link-model NAME|FILE, the models forklift-sim takes, or --bandwidth RATE for a plain link of
that rate, common::linkmodel) and of Forklift's VM slots (--max-vm-inflight), write the same
events at simulated times and a final `simulation` line: makespan, the honest lower bound (the
total bytes at the best aggregate rate the link can carry at each hour, and no less than a class's
bytes at its write cap or the longest VM's own copy at the per-transfer cap plus its overhead) and
their ratio; a warm plan's VMs precopy every --precopy-interval (what the guest changed since the
last snapshot) until the plan's cutover, then copy what is left and are created, and their
vm-succeeded events carry cutover, precopies and downtime_secs (from the cutover to the VM's
creation). Reads plan-gen's output directly. The link carries one transfer per
disk, as Forklift copies a VM's disks in parallel (and forklift-sim paces them), when --records
gives the VMs' disks; without records, each VM is one transfer of its share of the plan's bytes.

Credentials as kubectl finds them: --kubeconfig, else KUBECONFIG, else ~/.kube/config, else in-cluster (a pod's
service-account token and CA under /var/run/secrets/kubernetes.io/serviceaccount, and
KUBERNETES_SERVICE_HOST/PORT); --context picks a context, -n the namespace of objects that name none.
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

    /// When another plan-run holds these plans' Lease, wait until it gives the Lease up or the
    /// Lease runs out, instead of exiting 69
    #[arg(long)]
    pub wait_for_lease: bool,

    /// How long the Lease stays held without renewal (renewed every third of it); a plan-run that
    /// dies loses it after this long
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_lease_duration)]
    pub lease_duration: Duration,

    /// Write what runs plan-run in the cluster, apply nothing: ServiceAccount, least-privilege
    /// Roles and ClusterRole, a Secret with the input, and a Job running plan-run with the
    /// scheduling and lease flags given here
    #[arg(long, conflicts_with_all = ["simulate", "verify_access", "dry_run"])]
    pub print_job: bool,

    /// --print-job: the image holding plan-run (built from the Containerfile)
    #[arg(long, value_name = "IMAGE", default_value = concat!("localhost/liftkit:", env!("CARGO_PKG_VERSION")))]
    pub job_image: String,

    /// Estimate the schedule offline, with no cluster
    #[arg(long)]
    pub simulate: bool,

    /// `auto`: measure the throughput Forklift reports and adapt the disk copies in flight to it;
    /// `fixed`: only the limits given; a RATE (like 10Gbit/s): fixed, and for --simulate a plain
    /// link of that bandwidth
    #[arg(long, value_name = "auto|fixed|RATE", default_value = "auto", value_parser = parse_bandwidth)]
    pub bandwidth: Bandwidth,

    /// --simulate: the link model, by name (clean-10g, collapse-1g, storage-25g) or file, as
    /// forklift-sim takes it
    #[arg(long, value_name = "NAME|FILE", requires = "simulate", value_parser = parse_link_model)]
    pub link_model: Option<LinkModel>,

    /// --bandwidth auto: how often throughput is measured and the disk-copy limit reconsidered (in
    /// --simulate, simulated time)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_positive_duration)]
    pub sample_interval: f64,

    /// --simulate: Forklift's controller_max_vm_inflight (VMs migrating at once per provider)
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_vm_inflight: u64,

    /// Time per VM outside disk transfer (Initialize, VM creation): --simulate's, and half of
    /// it (the VM's creation) in a warm cutover's downtime estimate live
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub per_vm_overhead: f64,

    /// Warm plans: the guests' change rate, percent of each disk's allocated bytes rewritten per
    /// hour (a cutover copies up to one --precopy-interval of it)
    #[arg(long, value_name = "PERCENT_PER_HOUR", default_value_t = 1.0, value_parser = parse_change_rate)]
    pub warm_change_rate: f64,

    /// Warm plans: Forklift's PRECOPY_INTERVAL (ForkliftController
    /// controller_precopy_interval), the time between precopies
    #[arg(long, value_name = "DURATION", default_value = "60m", value_parser = parse_positive_duration)]
    pub precopy_interval: f64,

    /// Warm plans: the rate a cutover's final copy gets, for its downtime estimate [default:
    /// --bandwidth RATE; in --simulate the link model's bandwidth, capped per disk; else 1Gbit/s]
    #[arg(long, value_name = "RATE", value_parser = parse_cutover_rate)]
    pub cutover_rate: Option<f64>,

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
    /// With --simulate: one row per plan (start, end, VMs, size; a warm plan's cutover and its
    /// VMs' longest downtime), sizes in binary units
    Table,
    /// With --print-job: the objects as a multi-document YAML stream
    Yaml,
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
            Some("cutover") => {
                if let Some(row) = rows
                    .iter_mut()
                    .rev()
                    .find(|r| (&r["namespace"], &r["plan"]) == plan)
                {
                    row.insert("cutover".into(), event["cutover"].clone());
                }
            }
            Some("vm-succeeded") if event["downtime_secs"].is_number() => {
                if let Some(row) = rows
                    .iter_mut()
                    .rev()
                    .find(|r| (&r["namespace"], &r["plan"]) == plan)
                {
                    let secs = event["downtime_secs"].as_f64().unwrap_or(0.0);
                    let most = row
                        .get("downtime_secs")
                        .and_then(serde_json::Value::as_f64)
                        .unwrap_or(0.0)
                        .max(secs);
                    row.insert("downtime_secs".into(), most.into());
                    row.insert("downtime".into(), human_secs(most).into());
                }
            }
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
    let mut columns = vec![
        Column::text("plan"),
        Column::text("namespace"),
        Column::number("vms"),
        Column::bytes("total_bytes").header("size"),
        Column::text("start"),
        Column::text("end"),
        Column::text("duration"),
    ];
    // Warm plans: when each cuts over and its VMs' longest downtime.
    if rows.iter().any(|r| r.contains_key("cutover")) {
        columns.push(Column::text("cutover"));
        columns.push(Column::text("downtime"));
    }
    table_string(&columns, &rows, None)
}

fn parse_duration(text: &str) -> std::result::Result<f64, String> {
    match linkmodel::parse_duration_secs(text)? {
        secs if secs.is_finite() && secs >= 0.0 => Ok(secs),
        _ => Err("must not be negative".into()),
    }
}

fn parse_lease_duration(text: &str) -> std::result::Result<Duration, String> {
    match parse_duration(text)? {
        secs if secs >= 1.0 && secs <= f64::from(i32::MAX) => {
            Ok(Duration::from_secs(secs.ceil() as u64))
        }
        _ => Err("must be at least 1s".into()),
    }
}

/// What --bandwidth says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bandwidth {
    Auto,
    Fixed,
    Rate(f64),
}

fn parse_bandwidth(text: &str) -> std::result::Result<Bandwidth, String> {
    match text.trim() {
        "auto" => Ok(Bandwidth::Auto),
        "fixed" => Ok(Bandwidth::Fixed),
        rate => linkmodel::parse_rate(rate)
            .map(Bandwidth::Rate)
            .map_err(|e| format!("{e}; or auto, or fixed")),
    }
}

fn parse_change_rate(text: &str) -> std::result::Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && (0.0..=100.0).contains(&rate) => Ok(rate),
        _ => Err(format!(
            "{text:?}: expected a percentage per hour, 0 to 100"
        )),
    }
}

fn parse_cutover_rate(text: &str) -> std::result::Result<f64, String> {
    match linkmodel::parse_rate(text)? {
        rate if rate > 0.0 => Ok(rate),
        _ => Err("must be more than 0".into()),
    }
}

fn parse_link_model(text: &str) -> std::result::Result<LinkModel, String> {
    LinkModel::named_or_file(text)
}

fn parse_positive_duration(text: &str) -> std::result::Result<f64, String> {
    match parse_duration(text)? {
        0.0 => Err("must be more than 0".into()),
        secs => Ok(secs),
    }
}

fn parse_size(text: &str) -> std::result::Result<u64, String> {
    match common::size::parse_size(text)? {
        0 => Err("must be more than 0".into()),
        n => Ok(n),
    }
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

impl Args {
    /// The warm model of this run (crate::cutover): the final copy's rate is --cutover-rate, else
    /// --bandwidth RATE, else the link's bandwidth (`link`, --simulate), else 1 Gbit/s.
    fn warm_model(&self, link: Option<&LinkModel>) -> cutover::WarmModel {
        let rate = self.cutover_rate.unwrap_or(match (self.bandwidth, link) {
            (Bandwidth::Rate(rate), _) => rate,
            (_, Some(link)) => link.bandwidth_bytes_per_sec,
            _ => 125e6,
        });
        cutover::WarmModel {
            change_rate_percent_per_hour: self.warm_change_rate,
            precopy_interval_secs: self.precopy_interval,
            rate_bytes_per_sec: rate,
            overhead_secs: link.map_or(self.per_vm_overhead / 2.0, LinkModel::creation_secs),
        }
    }
}

/// Each VM's disks Forklift copies, as (allocated, provisioned) bytes, from --records.
fn record_usage(
    records: &[PathBuf],
) -> Result<std::collections::BTreeMap<String, Vec<(u64, u64)>>> {
    let mut usage = std::collections::BTreeMap::new();
    common::jsonl::Inputs::new(records).for_each(|value: serde_json::Value, location| {
        let record = common::record::parse_vm_record(value)
            .map_err(|e| Error::data(format!("{location}: {e}")))?;
        usage.insert(record.id.clone(), manifest::record_disk_usage(&record));
        Ok(())
    })?;
    Ok(usage)
}

/// A warm plan's disks as (allocated, provisioned) bytes: its VMs' from `usage`, and for VMs
/// without a record an even share of what the plan's bytes leave over, all of it allocated.
pub fn plan_disk_usage(
    plan: &manifest::Plan,
    usage: &std::collections::BTreeMap<String, Vec<(u64, u64)>>,
) -> Vec<(u64, u64)> {
    let mut disks: Vec<(u64, u64)> = plan
        .vms
        .iter()
        .filter_map(|v| usage.get(&v.id))
        .flatten()
        .copied()
        .collect();
    let known = common::size::sum_bytes(disks.iter().map(|d| d.1));
    let unknown = plan
        .vms
        .iter()
        .filter(|v| !usage.contains_key(&v.id))
        .count() as u64;
    if let Some(share) = plan.bytes.saturating_sub(known).checked_div(unknown) {
        disks.extend((0..unknown).map(|_| (share, share)));
    }
    disks
}

/// Places the warm plans' cutovers from `earliest` on (crate::cutover), in `zone`; the final
/// copy's rate is capped at the link's per-transfer cap times the plan's disks when `link`
/// has one.
pub fn place_cutovers(
    args: &Args,
    plans: &[manifest::Plan],
    usage: &std::collections::BTreeMap<String, Vec<(u64, u64)>>,
    link: Option<&LinkModel>,
    earliest: jiff::Timestamp,
    zone: &jiff::tz::TimeZone,
) -> std::collections::BTreeMap<sched::PlanKey, cutover::Placement> {
    let model = args.warm_model(link);
    let requests = plans
        .iter()
        .filter(|p| p.warm)
        .map(|p| {
            let disks = plan_disk_usage(p, usage);
            let mut m = model;
            if let Some(cap) = link.and_then(|l| l.per_transfer_cap_bytes_per_sec)
                && args.cutover_rate.is_none()
            {
                m.rate_bytes_per_sec = m.rate_bytes_per_sec.min(cap * disks.len().max(1) as f64);
            }
            cutover::Request {
                plan: p.key.clone(),
                downtime_secs: m.downtime_secs(&disks),
                vms: p.vms.iter().map(|v| v.name.clone()).collect(),
            }
        })
        .collect();
    cutover::place(args.window.as_ref(), zone, earliest, requests)
        .into_iter()
        .map(|p| (p.plan.clone(), p))
        .collect()
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
    if args.print_job {
        return print_job(&args, &objects, &plans);
    }
    match (args.format, args.simulate) {
        (EventFormat::Table, false) => {
            return Err(Error::usage(
                "--format table: the table is of a simulated schedule (add --simulate)",
            ));
        }
        (EventFormat::Yaml, _) => {
            return Err(Error::usage(
                "--format yaml: YAML is for --print-job's objects; events are JSON lines",
            ));
        }
        (_, true) => return simulate(&args, &objects, &plans),
        _ => {}
    }
    let runtime = common::tls::runtime()?;
    runtime.block_on(async {
        let client = live::client(args.kube.config().await?).await?;
        if args.verify_access {
            return access::verify(&client, &objects).await;
        }
        let lease_name = lease::LeaseName::of(&plans);
        let (Some(lease_name), false) = (lease_name, args.dry_run) else {
            return live::run(&args, client, &objects, plans).await;
        };
        let settings = lease::Settings {
            duration: args.lease_duration,
            wait: args.wait_for_lease,
        };
        let objects =
            live::apply_lease_namespace(&args, &client, &objects, &lease_name.namespace).await?;
        let mut held = lease::acquire(&client, &lease_name, settings).await?;
        let result = tokio::select! {
            result = live::run(&args, client, &objects, plans) => result,
            why = held.lost() => Err(Error::new(
                ExitCode::Unavailable,
                format!("{lease_name}: lost ({why}): stopped; running migrations are left to Forklift"),
            )),
        };
        held.release().await;
        result
    })
}

fn print_job(
    args: &Args,
    objects: &[manifest::Object],
    plans: &[manifest::Plan],
) -> Result<ExitCode> {
    let Some(lease_name) = lease::LeaseName::of(plans) else {
        return Err(Error::data(
            "--print-job: no Forklift Plan in the input: nothing for a Job to run",
        ));
    };
    let written = job::objects(args, objects, plans, &lease_name)?;
    let mut stdout = std::io::stdout().lock();
    let format = match args.format {
        EventFormat::Jsonl => common::k8s::ObjectFormat::Jsonl,
        EventFormat::Yaml => common::k8s::ObjectFormat::Yaml,
        EventFormat::Table => {
            return Err(Error::usage(
                "--print-job --format table: the objects are written as jsonl or yaml",
            ));
        }
    };
    common::k8s::write_objects(&mut stdout, "stdout", &written, format)?;
    std::io::Write::flush(&mut stdout).map_err(|e| common::error::write_error("stdout", &e))?;
    Ok(ExitCode::Ok)
}

fn simulate(
    args: &Args,
    objects: &[manifest::Object],
    plans: &[manifest::Plan],
) -> Result<ExitCode> {
    if plans.is_empty() {
        return Err(Error::data(
            "no Forklift Plan in the input: nothing to simulate",
        ));
    }
    let link = simulated_link(args)?;
    let vm_disks = record_disks(args, objects)?;
    let mut scheduler = Scheduler::new(
        args.limits(),
        plans.iter().map(|p| (p.key.clone(), p.bytes)),
    );
    scheduler.set_warm(plans.iter().filter(|p| p.warm).map(|p| &p.key));
    let start = args.start.unwrap_or_else(jiff::Timestamp::now);
    let zone = jiff::tz::TimeZone::system();
    let vm_usage = if args.records.is_empty() || !plans.iter().any(|p| p.warm) {
        Default::default()
    } else {
        record_usage(&args.records)?
    };
    let cutovers = place_cutovers(args, plans, &vm_usage, Some(&link), start, &zone);
    if !args.verbosity.quiet {
        for placement in cutovers.values().filter(|p| !p.fits) {
            eprintln!("{}", cutover::does_not_fit(placement));
        }
    }
    let table = args.format == EventFormat::Table;
    let mut events = if table {
        events::Events::sink()
    } else {
        events::Events::stdout(false)
    };
    let setup = simulate::Setup {
        link: link.clone(),
        max_vm_inflight: args.max_vm_inflight as usize,
        start,
        zone,
        vm_disks,
        adaptive_interval_secs: (args.bandwidth == Bandwidth::Auto).then_some(args.sample_interval),
        warm: simulate::Warm {
            cutovers,
            change_rate_percent_per_hour: args.warm_change_rate,
            precopy_interval_secs: args.precopy_interval,
            vm_usage,
        },
    };
    let outcome = simulate::run(plans, &mut scheduler, &setup, &mut events)?;
    report_simulation(args, &outcome, &link, start, events)?;
    Ok(ExitCode::Ok)
}

/// The link --simulate runs on: --link-model, or --bandwidth RATE with --per-vm-overhead.
fn simulated_link(args: &Args) -> Result<LinkModel> {
    match (&args.link_model, args.bandwidth) {
        (Some(_), Bandwidth::Rate(_)) => Err(Error::usage(
            "--simulate: give --link-model or --bandwidth RATE, not both",
        )),
        (Some(model), _) => Ok(model.clone()),
        (None, Bandwidth::Rate(rate)) => Ok(LinkModel {
            bandwidth_bytes_per_sec: rate,
            per_vm_overhead_secs: args.per_vm_overhead,
            ..LinkModel::default()
        }),
        (None, _) => Err(Error::usage(
            "--simulate needs the link: --link-model NAME|FILE (clean-10g, collapse-1g, \
             storage-25g) or --bandwidth RATE",
        )),
    }
}

/// Each VM's disks (bytes, target storage class from the StorageMaps in `objects`), by id,
/// from --records.
fn record_disks(
    args: &Args,
    objects: &[manifest::Object],
) -> Result<std::collections::BTreeMap<String, Vec<(u64, String)>>> {
    let mut vm_disks = std::collections::BTreeMap::new();
    if args.records.is_empty() {
        return Ok(vm_disks);
    }
    let classes = manifest::storage_classes(objects);
    common::jsonl::Inputs::new(&args.records).for_each(|value: serde_json::Value, location| {
        let record = common::record::parse_vm_record(value)
            .map_err(|e| Error::data(format!("{location}: {e}")))?;
        vm_disks.insert(
            record.id.clone(),
            manifest::record_disk_classes(&record, &classes),
        );
        Ok(())
    })?;
    Ok(vm_disks)
}

/// The `simulation` event (and the table with --format table), and the one-line summary.
fn report_simulation(
    args: &Args,
    outcome: &simulate::Outcome,
    link: &LinkModel,
    start: jiff::Timestamp,
    mut events: events::Events,
) -> Result<()> {
    let table = args.format == EventFormat::Table;
    let end = start + jiff::SignedDuration::from_secs_f64(outcome.makespan_secs);
    let mut summary = serde_json::json!({
            "plans": outcome.plans,
            "vms": outcome.vms,
            "total_bytes": outcome.total_bytes,
            "bandwidth_bytes_per_sec": link.bandwidth_bytes_per_sec,
            "makespan_secs": round3(outcome.makespan_secs),
            "lower_bound_secs": round3(outcome.lower_bound_secs),
            "ratio": round3(outcome.ratio()),
            "peak_running_plans": outcome.peak_running_plans,
            "peak_inflight_bytes": outcome.peak_inflight_bytes,
    });
    if let Some(peak) = outcome.peak_disk_limit {
        summary["adaptive"] = true.into();
        summary["peak_disk_limit"] = peak.into();
        summary["disk_limit_changes"] = outcome.disk_limit_changes.into();
    }
    events.emit(end, "simulation", None, summary)?;
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
    Ok(())
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
