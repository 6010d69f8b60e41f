//! capacity-calc: what the VMs will need on the cluster, per group (namespace, owner, placement,
//! storage), steady and at the copy peak, and per-namespace quota records for rbac-gen. Holds one
//! accumulator per group.

mod plan;
mod quota;
mod report;
mod sums;

use clap::Parser;
use common::footprint::{self, CopyPath, Overheads};
use common::format::Format;
use common::mapping::{Mappings, VolumeMode};
use common::output::Output;
use common::parallel::{self, LineSource};
use common::record::parse_vm_view;
use common::size::{human_bytes, parse_fraction, parse_size};
use common::{Error, ExitCode, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub use plan::{MAX_PLAUSIBLE_BYTES, PlannedVm, Planner, SizedDisk, SizedVm, UNMAPPED};
pub use quota::quota_record;
pub use sums::{Key, NONE, Report, Sums};

const ABOUT: &str = "Sum what VMs need on the cluster: vCPUs, memory, PVC bytes per class steady and at peak, quotas";

const LONG_ABOUT: &str = "\
Reads VM records (JSON lines) from the files given or stdin and writes one row per group (--by):
vms, vcpus, memory_bytes, disks, provisioned_bytes, used_bytes (the disks' actual size), lun_disks
and lun_bytes (direct LUNs, re-attached and not copied: counted apart, never in PVC bytes),
pvc_total_bytes and pvc_bytes (per storage class: the PVCs the VMs keep), peak_pvc_total_bytes and
peak_pvc_bytes (per class: what is requested while disks are copied), per-class figures nested
under their class ({\"pvc_bytes\": {\"trident-nfs\": N}}; CSV headers pvc_bytes_trident-nfs). Sizes
are exact bytes in JSON lines and CSV, binary units in the table. The table ends with a totals
row; JSON lines and CSV only with --totals (its key columns read TOTAL; in JSON lines it carries
\"total\": true), so that summing a column never counts twice.

PVC sizes follow Forklift v2.12.5 for the path it copies a disk by. Every image disk becomes a PVC
of the storage class --storage-map gives its storage domain (class `unmapped` when no rule matches).
- Cold to the local cluster (--destination host, the default): volume populators
  (pkg/controller/plan/util/utils.go CalculateSpaceWithOverhead): the provisioned size aligned up
  to 1 MiB; Filesystem volumes ceil(aligned / (1 - --filesystem-overhead/100)), Block volumes
  aligned + --block-overhead. The volume mode is the class's StorageProfile's (--volume-mode;
  Filesystem when not given); Forklift ignores the storage map's mode on this path.
- Warm (--warm) or to a remote cluster (--destination other than host): CDI DataVolumes requesting
  max(provisioned, actual); CDI v1.66.0 makes Filesystem PVCs ceil(aligned_1MiB * (1 + overhead))
  with --cdi-filesystem-overhead (6% by default, per class possible); Block PVCs the request. The
  volume mode is the storage map's, else the StorageProfile's.
No size is rounded to whole GiB.

Peak: while a disk is copied its namespace holds a second PVC: the populator's prime PVC (same
size), CDI's prime PVC on a cold DataVolume (same size), or on a warm one CDI's scratch PVC for the
snapshot deltas. Forklift copies all disks of a VM at once and migrates at most MAX_VM_INFLIGHT
VMs per provider (--max-vm-inflight, 20), so a group's peak is its PVCs plus the copy-time PVCs of
its --max-vm-inflight largest VMs (per class: the largest in that class).

Groups: VM-level keys (namespace, owner, data-center, cluster, vm) put each VM in one group (owner:
one group per owner, so a VM with two owners counts in both); disk-level keys (storage-domain,
storage-class, disk) split a VM's disks between groups, and its vms/vcpus/memory count in every
group holding one of its disks. `--by vm,disk` lists every disk's PVC: the size Forklift requests
for it, byte for byte. A shared disk (same disk id on several VMs) counts once per group and once
in the totals. The totals row counts every VM and disk once. Memory: one accumulator per group
(with the copy-time bytes of its --max-vm-inflight largest VMs), plus the ids of shared disks.

--available CLASS=SIZE (repeatable) adds the class's capacity and headroom (available - peak) to
the totals row (--totals, or the table) and to stderr; when a class needs more at peak than is
available, capacity-calc exits 1.

--quota writes instead one quota record per namespace (JSON lines), which rbac-gen --quota turns
into a ResourceQuota and a LimitRange:
  {\"namespace\": \"alice-ns\", \"vm_count\": 3, \"headroom_percent\": 20.0,
   \"copy_path\": \"populator\", \"max_vm_inflight\": 20,
   \"pvc_bytes\": {...}, \"peak_pvc_bytes\": {...}, \"pvc_total_bytes\": N,
   \"peak_pvc_total_bytes\": N, \"lun_bytes\": N, \"launcher_memory_bytes\": N,
   \"launcher_cpu_millis\": N, \"copy_pods_in_flight\": N, \"consumer_pods_in_flight\": N,
   \"hard\": {\"requests.storage\": \"250Gi\",
            \"<class>.storageclass.storage.k8s.io/requests.storage\": \"250Gi\",
            \"requests.cpu\": \"8\", \"requests.memory\": \"24Gi\",
            \"count/virtualmachines.kubevirt.io\": \"4\"},
   \"limit_range\": {\"default_request\": {\"cpu\": \"100m\", \"memory\": \"512Mi\"},
                   \"default\": {\"cpu\": \"1\", \"memory\": \"1Gi\"}}}
Every hard figure is the namespace's need times (1 + --headroom), rounded up: storage and memory to
whole GiB, CPU to whole cores, VMs to a whole VM. Storage: the peak, plus the LUN PVCs Forklift
creates without a class. Memory: KubeVirt v1.9.0's launcher pod requests (guest memory + its
overhead + the console-log sidecar) plus the copy pods in flight (Forklift's populator pods request
512Mi, CDI's importers 60M) and, on the populator path, one PVC consumer pod per VM in flight
(Forklift v2.12.5 kubevirt.go createPodToBindPVCs: 1Gi, Pending while its disks are copied). CPU:
one core per vCPU (KubeVirt requests vCPUs / 10 by default; a core per vCPU holds for any
cpuAllocationRatio and for dedicated CPUs) plus 100m per copy pod and 1 core per consumer pod.
limit_range holds the defaults rbac-gen writes for pods that set none.";

/// Examples, environment and related pages after the help.
pub const DOC: common::cli::Doc = common::cli::Doc {
    examples: &[
        (
            "What each namespace needs, as a table (every domain to one class)",
            "capacity-calc --storage-map '*=trident-nfs' --format table owned.jsonl",
        ),
        (
            "Per-namespace quota records with 20% headroom, for rbac-gen --quota",
            "capacity-calc --quota --headroom 20% --storage-map '*=trident-nfs' owned.jsonl -o quotas.jsonl",
        ),
        (
            "Per-cluster sums for a spreadsheet, with a totals row; exit 1 if 40 TiB is not enough",
            "capacity-calc --by cluster --format csv --totals --available trident-nfs=40TiB owned.jsonl",
        ),
    ],
    environment: &[(
        "LIFTKIT_THREADS",
        "threads decoding records, 1 to 64 (default: the cores, at most 8)",
    )],
    see_also: &[
        "owner-group(1)",
        "rbac-gen(1)",
        "report(1)",
        "liftkit-vm-record(5)",
    ],
};

#[derive(Debug, Parser)]
#[command(name = "capacity-calc", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Args {
    #[command(flatten)]
    pub io: common::cli::Io,
    /// Group by these keys (repeatable or comma-separated)
    #[arg(long, value_enum, value_delimiter = ',', default_value = "namespace")]
    pub by: Vec<Key>,
    /// Map a storage domain to a storage class: SRC=CLASS[:VolumeMode[:AccessMode]]; SRC is a name, DC/name, id or * (repeatable)
    #[arg(long = "storage-map", value_name = "SRC=DST")]
    pub storage_map: Vec<String>,
    /// Read mapping rules from FILE (`storage SRC=DST` lines; network lines are checked, not used)
    #[arg(long = "map-file", value_name = "FILE")]
    pub map_file: Vec<PathBuf>,
    /// Warm migration (CDI DataVolumes), as plan-gen --warm; default cold
    #[arg(long)]
    pub warm: bool,
    /// Destination Provider, as plan-gen's: `host` is the local cluster (cold: volume populators), any other a remote one (DataVolumes)
    #[arg(long, value_name = "NAME", default_value = "host")]
    pub destination: String,
    /// Forklift's FILESYSTEM_OVERHEAD: whole percent added to Filesystem populator PVCs
    #[arg(long, value_name = "PERCENT", default_value = "10")]
    pub filesystem_overhead: String,
    /// Forklift's BLOCK_OVERHEAD: bytes added to Block populator PVCs (like 0, 1Gi)
    #[arg(long, value_name = "SIZE", default_value = "0")]
    pub block_overhead: String,
    /// CDIConfig filesystemOverhead for DataVolumes: global, or per class with CLASS= (6% or 0.06; repeatable) [default: 6%]
    #[arg(long, value_name = "[CLASS=]PERCENT")]
    pub cdi_filesystem_overhead: Vec<String>,
    /// Volume mode of a class's StorageProfile, CLASS=Block|Filesystem (repeatable) [default: Filesystem]
    #[arg(long, value_name = "CLASS=MODE")]
    pub volume_mode: Vec<String>,
    /// Forklift's MAX_VM_INFLIGHT: VMs copied at once per provider (sets the peak)
    #[arg(long, value_name = "N", default_value_t = footprint::DEFAULT_MAX_VM_INFLIGHT,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_vm_inflight: u64,
    /// Capacity of a storage class, CLASS=SIZE (40TiB, 500GB; repeatable); exit 1 when the peak exceeds it
    #[arg(long, value_name = "CLASS=SIZE")]
    pub available: Vec<String>,
    /// Write per-namespace quota records (for rbac-gen --quota) instead of the report
    #[arg(long)]
    pub quota: bool,
    /// Headroom added to the quota figures (20% or 0.2)
    #[arg(long, value_name = "PERCENT", default_value = "0%", requires = "quota")]
    pub headroom: String,
    /// Output format: JSON lines, CSV for spreadsheets, or a table for people (sizes in binary
    /// units, a TOTAL row last)
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    /// End JSON lines and CSV with the totals row too ("total": true; its key columns read
    /// TOTAL); a table always ends with it
    #[arg(long)]
    pub totals: bool,
    #[command(flatten)]
    pub verbosity: common::cli::Verbosity,
}

pub fn command() -> clap::Command {
    common::cli::command(<Args as clap::CommandFactory>::command(), &DOC)
}

/// `--filesystem-overhead`: Forklift reads FILESYSTEM_OVERHEAD as a whole, non-negative percent
/// (pkg/settings/migration.go `getNonNegativeEnvLimit`); below 100 to leave room for data.
fn parse_filesystem_overhead(text: &str) -> Result<u32> {
    let number = text.trim().trim_end_matches('%').trim();
    match number.parse::<u32>() {
        Ok(percent) if percent < 100 => Ok(percent),
        _ => Err(Error::usage(format!(
            "--filesystem-overhead {text:?}: expected a whole percent from 0 to 99 (Forklift's FILESYSTEM_OVERHEAD, like 10)"
        ))),
    }
}

/// A storage class named in a flag (`CLASS=...`): a class name, never empty (`=40TiB` would give
/// a figure no class has).
fn class_name<'a>(flag: &str, spec: &str, class: &'a str) -> Result<&'a str> {
    let class = class.trim();
    if class.is_empty() || (class != "*" && !common::names::is_rfc1123_subdomain(class)) {
        return Err(Error::usage(format!(
            "{flag} {spec:?}: {class:?} is not a storage class name (lowercase RFC 1123 subdomain)"
        )));
    }
    Ok(class)
}

/// Whether `fraction` is one CDI accepts: its Percent type is `^(0(?:\.\d{1,3})?|1)$`, a value in
/// [0, 1) with at most three decimals (CDI v1.66.0 api/pkg/apis/core/v1beta1/types.go). 1 itself
/// matches the pattern but means a volume with no room for data: refused too.
fn is_cdi_percent(fraction: f64) -> bool {
    let thousandths = fraction * 1000.0;
    fraction < 1.0 && (thousandths - thousandths.round()).abs() < 1e-6
}

/// `--cdi-filesystem-overhead`: CDI accepts a fraction in [0, 1) (CDI v1.66.0 config-controller).
fn parse_cdi_overheads(specs: &[String]) -> Result<(f64, BTreeMap<String, f64>)> {
    let mut global = None;
    let mut by_class = BTreeMap::new();
    for spec in specs {
        let (class, value) = match spec.split_once('=') {
            Some((class, value)) => (
                Some(class_name("--cdi-filesystem-overhead", spec, class)?),
                value,
            ),
            None => (None, spec.as_str()),
        };
        let fraction = parse_fraction(value)
            .ok()
            .filter(|f| is_cdi_percent(*f))
            .ok_or_else(|| {
                Error::usage(format!(
                    "--cdi-filesystem-overhead {spec:?}: expected [CLASS=]PERCENT below 100% with at most three decimals as a fraction, as CDI takes it (like 6% or ceph-rbd=0.1)"
                ))
            })?;
        let twice = match class {
            Some(class) => by_class.insert(class.to_string(), fraction).is_some(),
            None => global.replace(fraction).is_some(),
        };
        if twice {
            return Err(Error::usage(format!(
                "--cdi-filesystem-overhead {spec:?}: given twice for {}",
                class.unwrap_or("all classes")
            )));
        }
    }
    Ok((
        global.unwrap_or(footprint::DEFAULT_CDI_FILESYSTEM_OVERHEAD),
        by_class,
    ))
}

fn parse_volume_modes(specs: &[String]) -> Result<BTreeMap<String, VolumeMode>> {
    let mut modes = BTreeMap::new();
    for spec in specs {
        let bad = || {
            Error::usage(format!(
                "--volume-mode {spec:?}: expected CLASS=Block or CLASS=Filesystem"
            ))
        };
        let (class, mode) = spec.split_once('=').ok_or_else(bad)?;
        let class = class_name("--volume-mode", spec, class)?;
        let mode = match mode.trim().to_ascii_lowercase().as_str() {
            "block" => VolumeMode::Block,
            "filesystem" => VolumeMode::Filesystem,
            _ => return Err(bad()),
        };
        if modes.insert(class.trim().to_string(), mode).is_some() {
            return Err(Error::usage(format!(
                "--volume-mode: class {class} given twice"
            )));
        }
    }
    Ok(modes)
}

/// The planner the flags describe.
fn planner(args: &Args) -> Result<Planner> {
    let block_bytes = parse_size(&args.block_overhead)
        .map_err(|e| Error::usage(format!("--block-overhead {e}")))?;
    let (cdi_global, cdi_by_class) = parse_cdi_overheads(&args.cdi_filesystem_overhead)?;
    let overheads = Overheads {
        filesystem_percent: parse_filesystem_overhead(&args.filesystem_overhead)?,
        block_bytes,
        cdi_global,
        cdi_by_class,
    };
    Ok(Planner {
        maps: Mappings::load(&args.storage_map, &[], &args.map_file)?,
        path: CopyPath::new(args.warm, args.destination == "host"),
        overheads,
        profile_modes: parse_volume_modes(&args.volume_mode)?,
    })
}

pub fn run(args: Args) -> Result<ExitCode> {
    args.verbosity.init_logging();
    let planner = planner(&args)?;
    let headroom =
        parse_fraction(&args.headroom).map_err(|e| Error::usage(format!("--headroom {e}")))?;
    let available = common::size::parse_available(&args.available)?;
    if args.quota && args.format != Format::Jsonl {
        return Err(Error::usage(
            "--quota writes JSON lines only (drop --format)",
        ));
    }
    if args.quota && args.by.iter().any(|k| *k != Key::Namespace) {
        return Err(Error::usage("--quota groups by namespace (drop --by)"));
    }
    for warning in planner.ignored_map_modes() {
        tracing::warn!("{warning}");
    }
    let keys = if args.quota {
        vec![Key::Namespace]
    } else {
        args.by.clone()
    };
    let inflight = usize::try_from(args.max_vm_inflight).unwrap_or(usize::MAX);
    let mut report = Report::new(&keys, inflight);

    // Records are decoded and planned on every core, and summed here in input order.
    parallel::for_each_line(
        &LineSource::from_paths(&args.io.inputs),
        |line, here| {
            // Sizes over common::size::MAX_BYTES are refused as the line is decoded.
            let vm: SizedVm =
                parse_vm_view(line).map_err(|e| Error::data(format!("{here}: {e}")))?;
            Ok(planner.plan(vm))
        },
        |planned| {
            report.add(&planned);
            Ok(())
        },
    )?;

    let mut out = Output::create(args.io.out.path())?;
    let name = out.name();
    let settings = quota::Settings {
        headroom,
        path: planner.path,
        max_vm_inflight: args.max_vm_inflight,
    };
    let code = if args.quota {
        quota::write(&mut out, &name, &report, &settings)?;
        ExitCode::Ok
    } else {
        let totals = args.totals || args.format == Format::Table;
        report::write(
            &mut out,
            &name,
            &report,
            args.format,
            totals,
            &available,
            args.verbosity.quiet,
        )?
    };
    out.commit()?;
    if let Some(unmapped) = report.totals.pvc_bytes.get(UNMAPPED) {
        tracing::warn!(
            "{} of disks have no --storage-map rule (class {UNMAPPED})",
            human_bytes(*unmapped)
        );
    }
    if !args.verbosity.quiet {
        eprintln!(
            "capacity-calc: {} VMs, {} groups, {} disks ({}): {} to request, {} at peak",
            report.vms,
            report.groups.len(),
            report.totals.disks,
            planner.path.as_str(),
            human_bytes(report.totals.pvc_total_bytes()),
            human_bytes(report.totals.peak_pvc_total_bytes())
        );
    }
    Ok(code)
}
