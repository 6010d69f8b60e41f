//! plan-gen: the Forklift objects that migrate annotated VM records (Provider, NetworkMap,
//! StorageMap, Plans), after an offline preflight of what Forklift would flag. Holds all records.

mod objects;
mod preflight;

use clap::Parser;
use common::k8s::{self, ObjectFormat};
use common::mapping::MapArgs;
use common::output::Output;
use common::record::{VmRecord, parse_vm_record};
use common::{Error, ExitCode, Result};
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;

pub use common::forklift::concerns;
pub use common::forklift::{FORKLIFT_VERSION_ANNOTATION, ForkliftVersion};
pub use preflight::Finding;

/// Annotation on each Plan: the bytes its VMs' disks need on the target (what plan-run schedules by).
pub const TOTAL_DISK_BYTES_ANNOTATION: &str = "liftkit.io/total-disk-bytes";
/// Annotation on each Plan: how many VMs it holds.
pub const VM_COUNT_ANNOTATION: &str = "liftkit.io/vm-count";
/// Label on each Plan: the namespace its VMs land in.
pub const TARGET_NAMESPACE_LABEL: &str = "liftkit.io/target-namespace";

const LONG_ABOUT: &str = "\
Reads VM records annotated by owner-group (target_namespace) and writes, into one migration
namespace, the source Provider (type ovirt), the destination Provider `host` (type openshift, no
url; written when --destination is host, only referenced otherwise), one NetworkMap, one
StorageMap and one Plan per target namespace, split by --max-vms-per-plan and --max-size-per-plan
into plan-NS-1, plan-NS-2, ... Each Plan carries the annotations liftkit.io/total-disk-bytes,
liftkit.io/vm-count, liftkit.io/forklift-version and liftkit.io/vm-macs (per VM id, its NICs' MAC
addresses, for plan-run's live MacConflicts check), and the label liftkit.io/target-namespace.

Preflight, offline, before anything is written, for the Forklift version --forklift-version
names (its rules read in Forklift's code at the tag or commit listed below): every oVirt concern
Forklift's validation raises, with Forklift's id, category and label, as Forklift computes it
(a field the engine left out is the empty value Forklift stores, and its rules fire on it; the
finding says the field was missing); and the plan conditions Forklift's plan validator sets:
VMNetworksNotMapped (also for a NIC without a vNIC profile), VMStorageNotMapped,
VMStorageNotSupported (direct LUN disks on an engine older than 4.5.2.1 as Forklift computes
it, major*1000 + minor*100 + build*10 + revision < 4521, from the records' engine_version; a
Warning when a record lacks it), VMMultiplePodNetworkMappings,
VMDuplicateNADMappings (2.12 only: main allows two NICs on one NAD), InvalidDiskSizes (a disk or
LUN of size 0) and DuplicateVM. Where Forklift is silent but the hazard is real, liftkit says so
under ids of its own: liftkit.disk.shared (Forklift never flags shared oVirt disks: its collector
reads `sharable`, the engine sends `shareable`) and liftkit.nic.mac_conflict (two input VMs with
one MAC; Forklift's MacConflicts compares with VMs already in the cluster, which plan-run checks
before it starts a plan).

Findings go to --report as JSON lines {vm_id, vm_name, target_namespace, concern_id, category,
label, assessment, left_out}, all of them, and to stderr as a summary: one line per concern with
the VMs it names, concerns raised on most VMs grouped below the rare ones (\"on 100 of 102
VMs\"), then the VMs left out (-v: every finding). --hide ID drops a concern from the stderr
summary, never from --report. A VM with a Critical finding is left out of its plan (exit 1)
unless --include-blocked.
A network or storage domain that a VM going into a plan uses but no mapping rule covers stops
plan-gen (exit 78) with the list; nothing is written but the report.

Map sources are written by oVirt id (names are ambiguous across data centers). A VM whose name is
not a DNS-1123 label, or whose name another VM of the same target namespace has already, gets a
targetName (sanitised, with a stable hash suffix when needed).

Credentials: the Provider references the Secret --secret. --with-secret writes it too (keys user,
password, url and ca.crt from --ca-file, or insecureSkipVerify: \"true\"); the password comes from
--password-file or OVIRT_PASSWORD and is never printed to stderr; the output file then has mode 0600.

Memory: plan-gen holds every record (plans and maps need all of them before anything is written).";

/// Examples, environment and related pages after the help.
pub const DOC: common::cli::Doc = common::cli::Doc {
    examples: &[
        (
            "Forklift objects for the namespaces' VMs, findings to a file",
            "plan-gen --namespace rhv-migration --map-file networks.map --storage-map '*=trident-nfs' \\\n    --report findings.jsonl owned.jsonl -o plans.jsonl",
        ),
        (
            "The same with the credentials Secret (OVIRT_USER, OVIRT_CA, OVIRT_PASSWORD), as YAML",
            "plan-gen --with-secret --map-file networks.map --format yaml owned.jsonl -o plans.yaml",
        ),
        (
            "Only the preflight's findings, as a table for people",
            "plan-gen --map-file networks.map --storage-map '*=trident-nfs' --format table owned.jsonl",
        ),
    ],
    environment: &[(
        "OVIRT_PASSWORD",
        "the engine password for --with-secret, when --password-file is not given",
    )],
    see_also: &["owner-group(1)", "rbac-gen(1)", "plan-run(1)", "report(1)"],
};

#[derive(Debug, Parser)]
#[command(name = "plan-gen", version, about = "Forklift Provider, maps and Plans for annotated VM records",
    long_about = LONG_ABOUT)]
pub struct Args {
    #[command(flatten)]
    pub io: common::cli::Io,

    /// Output format: the objects as JSON lines or a YAML stream (`kubectl apply -f -` reads
    /// both), or instead of them the preflight's findings as a table for people
    #[arg(long, value_enum, default_value_t = PlanFormat::Jsonl)]
    pub format: PlanFormat,

    /// Namespace of the Forklift objects (Providers, maps, Plans)
    #[arg(short = 'n', long, value_name = "NS", default_value = "openshift-mtv")]
    pub namespace: String,

    #[command(flatten)]
    pub engine: common::cli::Engine,

    /// Name of the source Provider
    #[arg(long, value_name = "NAME", default_value = "ovirt")]
    pub provider: String,

    /// Destination Provider; `host` (the local cluster) is written, any other name only referenced
    #[arg(long, value_name = "NAME", default_value = "host")]
    pub destination: String,

    /// Secret with the engine credentials [default: <provider>-credentials]
    #[arg(long, value_name = "NAME")]
    pub secret: Option<String>,

    /// Write the Secret too (--user, --ca-file, and the password from --password-file or
    /// OVIRT_PASSWORD)
    #[arg(long)]
    pub with_secret: bool,

    /// Do not verify the engine's TLS certificate (Secret key insecureSkipVerify; a CA from
    /// OVIRT_CA is then not stored)
    #[arg(long)]
    pub insecure_skip_verify: bool,

    #[command(flatten)]
    pub maps: MapArgs,

    /// Plan name; {namespace} is the target namespace, {provider} the source Provider
    #[arg(long, value_name = "TEMPLATE", default_value = "plan-{namespace}")]
    pub plan_name_template: String,

    /// At most N VMs in one plan (more are split into -1, -2, ...)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_vms_per_plan: Option<u64>,

    /// At most SIZE of disks in one plan (like 2TiB; a bigger VM gets a plan of its own)
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub max_size_per_plan: Option<u64>,

    /// Warm migration (default: cold)
    #[arg(long)]
    pub warm: bool,

    /// Keep VMs with Critical findings in their plans
    #[arg(long)]
    pub include_blocked: bool,

    /// The Forklift version whose rules the preflight applies (the cluster's; plan-run warns on a
    /// mismatch)
    #[arg(long, value_name = "VERSION", value_enum, default_value_t = ForkliftVersion::DEFAULT)]
    pub forklift_version: ForkliftVersion,

    /// Leave concern ID out of the stderr summary (repeatable; --report keeps it)
    #[arg(long = "hide", value_name = "ID")]
    pub hide: Vec<String>,

    /// Write the preflight findings to FILE as JSON lines
    #[arg(
        long,
        value_name = "FILE",
        value_parser = common::cli::output_file,
        long_help = common::output::long_help("Write the preflight findings to FILE as JSON lines")
    )]
    pub report: Option<PathBuf>,

    #[command(flatten)]
    pub verbosity: common::cli::Verbosity,
}

fn parse_size_arg(text: &str) -> std::result::Result<u64, String> {
    match common::size::parse_size(text)? {
        0 => Err("must be more than 0".into()),
        n => Ok(n),
    }
}

pub fn command() -> clap::Command {
    common::cli::command(<Args as clap::CommandFactory>::command(), &DOC)
}

/// `--format`: the objects, or the findings for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// The objects, one JSON object per line
    Jsonl,
    /// The objects, a multi-document YAML stream
    Yaml,
    /// Instead of the objects, the preflight's findings: one row per finding, as --report has them
    Table,
}

/// The findings as a table: one row per finding, in the order of --report.
fn write_findings_table(out: &mut Output, name: &str, findings: &[Finding]) -> Result<()> {
    use common::format::{Column, Format, write_rows};
    let rows: Vec<serde_json::Map<String, Value>> = findings
        .iter()
        .filter_map(|f| match serde_json::to_value(f) {
            Ok(Value::Object(row)) => Some(row),
            _ => None,
        })
        .collect();
    let columns = [
        Column::text("vm_name").header("vm"),
        Column::text("target_namespace").header("namespace"),
        Column::text("category"),
        Column::text("left_out"),
        Column::text("concern_id").header("concern"),
        Column::text("label"),
    ];
    write_rows(out, name, Format::Table, &columns, &rows, None)
}

/// A record and where it came from.
pub struct Input {
    pub record: VmRecord,
    pub location: String,
}

pub fn run(args: Args) -> Result<ExitCode> {
    args.verbosity.init_logging();
    preflight::check_hidden(&args.hide)?;
    let settings = objects::Settings::from_args(&args)?;
    let maps = args.maps.load()?;
    objects::check_maps(&maps)?;
    let credentials = if args.with_secret {
        Some(objects::Credentials::load(&args, &settings)?)
    } else {
        None
    };
    let records = read_records(&args.io.inputs)?;
    preflight::reject_duplicates(&records)?;

    let result = preflight::check(records, &maps, args.include_blocked, args.forklift_version);
    if !args.verbosity.quiet {
        let mut stderr = std::io::stderr().lock();
        let report = preflight::render(&result, args.verbosity.verbose > 0, &args.hide);
        // VM names and the engine's texts are in it: no control character reaches the terminal.
        let report = common::untrusted::lines_for_terminal(&report);
        let _ = stderr.write_all(report.as_bytes());
    }
    if let Some(path) = &args.report {
        let mut out = Output::create(Some(path))?;
        let name = out.name();
        let mut writer = common::jsonl::Writer::new(&name, &mut out);
        for finding in &result.findings {
            writer.write(finding)?;
        }
        writer.flush()?;
        drop(writer);
        out.commit()?;
    }
    if args.format == PlanFormat::Table {
        let mut out = Output::create(args.io.out.path())?;
        let name = out.name();
        write_findings_table(&mut out, &name, &result.findings)?;
        out.commit()?;
    }
    if let Some(message) = preflight::unmapped_error(&result) {
        return Err(Error::config(message));
    }
    let format = match args.format {
        PlanFormat::Table => return Ok(findings_exit(&result)),
        PlanFormat::Jsonl => ObjectFormat::Jsonl,
        PlanFormat::Yaml => ObjectFormat::Yaml,
    };

    let mut objects: Vec<Value> = objects::build(&settings, &result, credentials.as_ref())?;
    k8s::sort_objects(&mut objects);
    let mode = credentials.is_some().then_some(0o600);
    let mut out = Output::create_with_mode(args.io.out.path(), mode)?;
    let name = out.name();
    k8s::write_objects(&mut out, &name, &objects, format)?;
    out.commit()?;
    Ok(findings_exit(&result))
}

/// Exit 1 when the preflight left VMs out of their plans.
fn findings_exit(result: &preflight::Checked) -> ExitCode {
    if result.left_out.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::Findings
    }
}

fn read_records(inputs: &[PathBuf]) -> Result<Vec<Input>> {
    let mut records = Vec::new();
    common::jsonl::Inputs::new(inputs).for_each(|value: Value, location| {
        let record = parse_vm_record(value).map_err(|e| Error::data(format!("{location}: {e}")))?;
        record
            .checked_target_namespace()
            .map_err(|e| Error::data(format!("{location}: {e}")))?;
        records.push(Input {
            record,
            location: location.to_string(),
        });
        Ok(())
    })?;
    Ok(records)
}
