//! capacity-calc: what the VMs will need on the cluster, per group (namespace, owner, placement,
//! storage), and per-namespace quota records for rbac-gen. Holds one accumulator per group.

use clap::Parser;
use common::format::{Column, Format, write_rows};
use common::jsonl::Writer;
use common::mapping::{Mappings, SourceObject, StorageTarget};
use common::output::Output;
use common::parallel::{self, LineSource};
use common::record::{Cpu, NamedRef, VmView, parse_vm_view};
use common::size::{GIB, human_bytes, k8s_quantity, parse_fraction, parse_size, round_up_gib};
use common::{Error, ExitCode, Result};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

/// The storage class of disks no --storage-map rule matches.
pub const UNMAPPED: &str = "unmapped";
/// The group of records that lack the key (no namespace, no owners, no disks).
pub const NONE: &str = "(none)";
/// CDI's default filesystem overhead.
pub const DEFAULT_FS_OVERHEAD: &str = "5.5%";
/// Forklift aligns a disk to 1 MiB before adding the filesystem overhead.
pub const ALIGN_BYTES: u64 = 1 << 20;

const ABOUT: &str =
    "Sum what VMs need on the cluster: vCPUs, memory, PVC bytes per storage class, quotas";

const LONG_ABOUT: &str = "\
Reads VM records (JSON lines) from the files given or stdin and writes one row per group (--by):
vms, vcpus, memory_bytes, disks, provisioned_bytes, used_bytes (the disks' actual size), lun_disks
and lun_bytes (direct LUNs, re-attached and not copied: counted apart, never in PVC bytes),
pvc_bytes, and pvc_bytes.<class> per target storage class. A totals row ends the output (its key
columns read TOTAL; in JSON lines it carries \"total\": true).

PVC bytes: every image disk becomes a PVC of the storage class --storage-map gives its storage
domain (a disk no rule matches goes to class `unmapped`). Its size is what Forklift requests:
max(provisioned, actual); for Filesystem volumes (and volumes whose mode the map leaves to the
storage profile) aligned up to 1 MiB and divided by (1 - overhead), with --fs-overhead default 5.5%
(CDI's); Block volumes have none. Each disk's PVC is then rounded up to a whole GiB.

Groups: VM-level keys (namespace, owner, data-center, cluster) put each VM in one group (owner:
one group per owner, so a VM with two owners counts in both); disk-level keys (storage-domain,
storage-class) split a VM's disks between groups, and its vms/vcpus/memory count in every group
holding one of its disks. A shared disk (same disk id on several VMs) counts once per group and once
in the totals. The totals row counts every VM and disk once. Memory: one accumulator per group,
plus the VM ids of each group and the ids of shared disks.

--available CLASS=SIZE (repeatable) adds the class's capacity and headroom (available - needed) to
the totals row and to stderr; when a class needs more than is available, capacity-calc exits 1.

--quota writes instead one quota record per namespace (JSON lines), which rbac-gen --quota turns
into ResourceQuotas:
  {\"namespace\": \"alice-ns\", \"vm_count\": 3, \"headroom_percent\": 20.0,
   \"hard\": {\"requests.storage\": \"120Gi\",
            \"<class>.storageclass.storage.k8s.io/requests.storage\": \"120Gi\",
            \"requests.cpu\": \"10\", \"requests.memory\": \"20Gi\",
            \"count/virtualmachines.kubevirt.io\": \"4\"}}
Every figure is the namespace's need times (1 + --headroom), rounded up: storage and memory to whole
GiB, CPU to whole cores (one core per vCPU: a conservative request), the VM count to a whole VM.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Key {
    Namespace,
    Owner,
    DataCenter,
    Cluster,
    StorageDomain,
    StorageClass,
}

impl Key {
    pub fn column(self) -> &'static str {
        match self {
            Key::Namespace => "namespace",
            Key::Owner => "owner",
            Key::DataCenter => "data_center",
            Key::Cluster => "cluster",
            Key::StorageDomain => "storage_domain",
            Key::StorageClass => "storage_class",
        }
    }
    fn per_disk(self) -> bool {
        matches!(self, Key::StorageDomain | Key::StorageClass)
    }
}

#[derive(Debug, Parser)]
#[command(name = "capacity-calc", version, about = ABOUT, long_about = LONG_ABOUT,
          after_long_help = common::cli::after_help())]
pub struct Args {
    /// VM record files (JSON lines); stdin when none or `-`
    #[arg(value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    /// Write to FILE (atomically: it appears only when the run succeeds) instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Group by these keys (repeatable or comma-separated)
    #[arg(long, value_enum, value_delimiter = ',', default_value = "namespace")]
    pub by: Vec<Key>,
    /// Map a storage domain to a storage class: SRC=CLASS[:VolumeMode[:AccessMode]]; SRC is a name, DC/name, id or * (repeatable)
    #[arg(long = "storage-map", value_name = "SRC=DST")]
    pub storage_map: Vec<String>,
    /// Read mapping rules from FILE (`storage SRC=DST` lines; network lines are checked, not used)
    #[arg(long = "map-file", value_name = "FILE")]
    pub map_file: Vec<PathBuf>,
    /// Filesystem overhead of Filesystem-mode volumes (5.5% or 0.055)
    #[arg(long, value_name = "PERCENT", default_value = DEFAULT_FS_OVERHEAD)]
    pub fs_overhead: String,
    /// Capacity of a storage class, CLASS=SIZE (40TiB, 500GB; repeatable); exit 1 when exceeded
    #[arg(long, value_name = "CLASS=SIZE")]
    pub available: Vec<String>,
    /// Write per-namespace quota records (for rbac-gen --quota) instead of the report
    #[arg(long)]
    pub quota: bool,
    /// Headroom added to the quota figures (20% or 0.2)
    #[arg(long, value_name = "PERCENT", default_value = "0%", requires = "quota")]
    pub headroom: String,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    #[command(flatten)]
    pub verbosity: common::cli::Verbosity,
}

pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// The PVC Forklift requests for a disk of `disk_bytes` (max of provisioned and actual), rounded up
/// to whole GiB.
pub fn pvc_bytes(disk_bytes: u64, block: bool, fs_overhead: f64) -> u64 {
    if block {
        return round_up_gib(disk_bytes);
    }
    let aligned = disk_bytes.div_ceil(ALIGN_BYTES) * ALIGN_BYTES;
    let with_overhead = (aligned as f64 / (1.0 - fs_overhead)).ceil() as u64;
    round_up_gib(with_overhead)
}

/// A reference's name, or its id when the engine gave no name.
fn label(r: &NamedRef) -> &str {
    r.name.as_deref().unwrap_or(&r.id)
}

/// What capacity-calc reads of a VM record; the rest is skipped unread.
#[derive(Debug, Deserialize)]
pub struct SizedVm {
    pub schema: u32,
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub data_center: Option<NamedRef>,
    #[serde(default)]
    pub cluster: Option<NamedRef>,
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    #[serde(default)]
    pub cpu: Option<Cpu>,
    #[serde(default)]
    pub disks: Option<Vec<SizedDisk>>,
    #[serde(default)]
    pub owners: Option<Vec<OwnerPrincipal>>,
    #[serde(default)]
    pub target_namespace: Option<String>,
}

impl VmView for SizedVm {
    fn schema(&self) -> u32 {
        self.schema
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl SizedVm {
    pub fn disks(&self) -> &[SizedDisk] {
        self.disks.as_deref().unwrap_or(&[])
    }

    pub fn vcpus(&self) -> u32 {
        self.cpu.as_ref().map(Cpu::vcpus).unwrap_or(1)
    }

    /// Refuses sizes no VM has (over `MAX_PLAUSIBLE_BYTES`): a unit mistake upstream, and sums
    /// of them would overflow.
    pub fn check_sizes(&self) -> Result<(), String> {
        let disk_sizes = self.disks().iter().flat_map(|disk| {
            [
                ("provisioned_bytes", disk.provisioned_bytes),
                ("actual_bytes", disk.actual_bytes),
                ("lun_size_bytes", disk.lun_size_bytes),
            ]
        });
        match std::iter::once(("memory_bytes", self.memory_bytes))
            .chain(disk_sizes)
            .find(|(_, bytes)| bytes.is_some_and(|b| b > MAX_PLAUSIBLE_BYTES))
        {
            Some((field, Some(bytes))) => Err(format!(
                "VM {}: {field} {bytes} is more than {} (1 PiB): not a size a VM has",
                self.name, MAX_PLAUSIBLE_BYTES
            )),
            _ => Ok(()),
        }
    }
}

/// The largest memory or disk size taken as real: 1 PiB.
pub const MAX_PLAUSIBLE_BYTES: u64 = 1 << 50;

#[derive(Debug, Deserialize)]
pub struct OwnerPrincipal {
    pub principal: String,
}

/// What capacity-calc reads of a disk.
#[derive(Debug, Deserialize)]
pub struct SizedDisk {
    pub attachment_id: String,
    #[serde(default)]
    pub disk_id: Option<String>,
    #[serde(default)]
    pub shareable: Option<bool>,
    #[serde(default)]
    pub storage_type: Option<String>,
    #[serde(default)]
    pub provisioned_bytes: Option<u64>,
    #[serde(default)]
    pub actual_bytes: Option<u64>,
    #[serde(default)]
    pub lun_size_bytes: Option<u64>,
    #[serde(default)]
    pub storage_domain: Option<NamedRef>,
}

impl SizedDisk {
    pub fn is_lun(&self) -> bool {
        self.storage_type.as_deref() == Some("lun")
    }
}

/// One group's sums.
#[derive(Debug, Default, Clone)]
pub struct Sums {
    shared_disks: HashSet<String>,
    pub vms: u64,
    pub vcpus: u64,
    pub memory_bytes: u64,
    pub disks: u64,
    pub provisioned_bytes: u64,
    pub used_bytes: u64,
    pub lun_disks: u64,
    pub lun_bytes: u64,
    pub pvc_bytes: BTreeMap<String, u64>,
}

impl Sums {
    /// Counts a VM; the caller adds each VM once per group (see `Report::add`), so no set of VM ids
    /// is kept: memory holds the groups, not the VMs.
    fn add_vm(&mut self, vm: &SizedVm) {
        self.vms += 1;
        self.vcpus += u64::from(vm.vcpus());
        self.memory_bytes = self
            .memory_bytes
            .saturating_add(vm.memory_bytes.unwrap_or(0));
    }

    fn add_disk(&mut self, disk: &SizedDisk, class: &str, pvc: u64) {
        // Only shared disks can appear twice; remembering just those keeps memory small.
        if disk.shareable == Some(true) {
            let id = disk
                .disk_id
                .as_deref()
                .unwrap_or(&disk.attachment_id)
                .to_string();
            if !self.shared_disks.insert(id) {
                return;
            }
        }
        if disk.is_lun() {
            self.lun_disks += 1;
            self.lun_bytes = self
                .lun_bytes
                .saturating_add(disk.lun_size_bytes.or(disk.provisioned_bytes).unwrap_or(0));
            return;
        }
        self.disks += 1;
        self.provisioned_bytes = self
            .provisioned_bytes
            .saturating_add(disk.provisioned_bytes.unwrap_or(0));
        self.used_bytes = self
            .used_bytes
            .saturating_add(disk.actual_bytes.unwrap_or(0));
        match self.pvc_bytes.get_mut(class) {
            Some(bytes) => *bytes = bytes.saturating_add(pvc),
            None => {
                self.pvc_bytes.insert(class.to_string(), pvc);
            }
        }
    }

    pub fn total_pvc_bytes(&self) -> u64 {
        self.pvc_bytes
            .values()
            .fold(0, |sum, b| sum.saturating_add(*b))
    }
}

/// A VM and, per disk (in order), its storage class and PVC bytes.
pub struct PlannedVm {
    pub vm: SizedVm,
    pub pvcs: Vec<(String, u64)>,
}

/// Where each disk goes, and what it needs.
pub struct Planner {
    pub maps: Mappings,
    pub fs_overhead: f64,
}

impl Planner {
    /// The storage class of a disk (`unmapped` when no rule matches; LUNs have none).
    pub fn target(&self, vm: &SizedVm, disk: &SizedDisk) -> Option<StorageTarget> {
        let sd = disk.storage_domain.as_ref();
        let object = SourceObject {
            id: sd.map(|s| s.id.as_ref()),
            data_center: vm.data_center.as_ref().and_then(|d| d.name.as_deref()),
            name: sd.and_then(|s| s.name.as_deref()),
        };
        self.maps
            .storage
            .lookup(&object)
            .map(|r| r.destination.clone())
    }

    /// The VM with each disk's storage class and PVC size.
    pub fn plan(&self, vm: SizedVm) -> PlannedVm {
        let pvcs = vm.disks().iter().map(|d| self.disk_pvc(&vm, d)).collect();
        PlannedVm { vm, pvcs }
    }

    pub fn disk_pvc(&self, vm: &SizedVm, disk: &SizedDisk) -> (String, u64) {
        let target = self.target(vm, disk);
        let bytes = disk
            .provisioned_bytes
            .unwrap_or(0)
            .max(disk.actual_bytes.unwrap_or(0));
        let block = target.as_ref().is_some_and(StorageTarget::is_block);
        let class = target
            .map(|t| t.storage_class)
            .unwrap_or_else(|| UNMAPPED.to_string());
        (class, pvc_bytes(bytes, block, self.fs_overhead))
    }
}

fn vm_key_values(vm: &SizedVm, key: Key) -> Vec<String> {
    let named = |n: Option<&str>| vec![n.unwrap_or(NONE).to_string()];
    match key {
        Key::Namespace => named(vm.target_namespace.as_deref()),
        Key::Owner => {
            let owners: BTreeSet<String> = vm
                .owners
                .iter()
                .flatten()
                .map(|o| o.principal.to_string())
                .collect();
            if owners.is_empty() {
                named(None)
            } else {
                owners.into_iter().collect()
            }
        }
        Key::DataCenter => named(vm.data_center.as_ref().map(label)),
        Key::Cluster => named(vm.cluster.as_ref().map(label)),
        Key::StorageDomain | Key::StorageClass => unreachable!("disk keys are per disk"),
    }
}

fn disk_key_value(disk: &SizedDisk, class: &str, key: Key) -> String {
    match key {
        Key::StorageDomain => match &disk.storage_domain {
            Some(sd) => label(sd).to_string(),
            None if disk.is_lun() => "(lun)".into(),
            None => NONE.into(),
        },
        Key::StorageClass if disk.is_lun() => "(lun)".into(),
        Key::StorageClass => class.to_string(),
        _ => unreachable!("VM keys are per VM"),
    }
}

/// Every key combination of `vm`'s VM-level keys.
fn vm_groups(vm: &SizedVm, keys: &[Key]) -> Vec<Vec<String>> {
    let mut groups = vec![Vec::new()];
    for key in keys.iter().filter(|k| !k.per_disk()) {
        let values = vm_key_values(vm, *key);
        groups = groups
            .iter()
            .flat_map(|g| {
                values
                    .iter()
                    .map(move |v| [g.clone(), vec![v.clone()]].concat())
            })
            .collect();
    }
    groups
}

/// Sums per group; the key order is `keys` with VM-level keys first, then disk-level keys.
pub struct Report {
    pub keys: Vec<Key>,
    pub groups: BTreeMap<Vec<String>, Sums>,
    pub totals: Sums,
    pub vms: u64,
}

impl Report {
    pub fn new(keys: &[Key]) -> Self {
        let mut keys: Vec<Key> = keys.to_vec();
        keys.dedup();
        let mut ordered: Vec<Key> = keys.iter().copied().filter(|k| !k.per_disk()).collect();
        ordered.extend(keys.iter().copied().filter(|k| k.per_disk()));
        let mut seen = BTreeSet::new();
        ordered.retain(|k| seen.insert(*k));
        Report {
            keys: ordered,
            groups: BTreeMap::new(),
            totals: Sums::default(),
            vms: 0,
        }
    }

    pub fn add(&mut self, planned: &PlannedVm) {
        let (vm, pvcs) = (&planned.vm, &planned.pvcs);
        self.vms += 1;
        let disk_keys: Vec<Key> = self.keys.iter().copied().filter(|k| k.per_disk()).collect();
        self.totals.add_vm(vm);
        for (disk, (class, pvc)) in vm.disks().iter().zip(pvcs) {
            self.totals.add_disk(disk, class, *pvc);
        }
        for group in vm_groups(vm, &self.keys) {
            if disk_keys.is_empty() {
                let sums = self.groups.entry(group).or_default();
                sums.add_vm(vm);
                for (disk, (class, pvc)) in vm.disks().iter().zip(pvcs) {
                    sums.add_disk(disk, class, *pvc);
                }
                continue;
            }
            if vm.disks().is_empty() {
                let key = [group.clone(), vec![NONE.to_string(); disk_keys.len()]].concat();
                self.groups.entry(key).or_default().add_vm(vm);
            }
            // A VM with several disks in one group counts once there.
            let mut counted: HashSet<Vec<String>> = HashSet::new();
            for (disk, (class, pvc)) in vm.disks().iter().zip(pvcs) {
                let values: Vec<String> = disk_keys
                    .iter()
                    .map(|k| disk_key_value(disk, class, *k))
                    .collect();
                let key = [group.clone(), values].concat();
                let first = !counted.contains(&key);
                let sums = self.groups.entry(key.clone()).or_default();
                if first {
                    sums.add_vm(vm);
                    counted.insert(key);
                }
                sums.add_disk(disk, class, *pvc);
            }
        }
    }

    /// Every storage class any group needs, sorted.
    pub fn classes(&self) -> BTreeSet<String> {
        self.totals.pvc_bytes.keys().cloned().collect()
    }
}

fn row(
    keys: &[Key],
    values: &[String],
    sums: &Sums,
    classes: &BTreeSet<String>,
) -> Map<String, Value> {
    let mut row = Map::new();
    for (key, value) in keys.iter().zip(values) {
        row.insert(key.column().into(), json!(value));
    }
    row.insert("vms".into(), json!(sums.vms));
    row.insert("vcpus".into(), json!(sums.vcpus));
    row.insert("memory_bytes".into(), json!(sums.memory_bytes));
    row.insert("disks".into(), json!(sums.disks));
    row.insert("provisioned_bytes".into(), json!(sums.provisioned_bytes));
    row.insert("used_bytes".into(), json!(sums.used_bytes));
    row.insert("lun_disks".into(), json!(sums.lun_disks));
    row.insert("lun_bytes".into(), json!(sums.lun_bytes));
    row.insert("pvc_bytes".into(), json!(sums.total_pvc_bytes()));
    for class in classes {
        row.insert(
            format!("pvc_bytes.{class}"),
            json!(sums.pvc_bytes.get(class).copied().unwrap_or(0)),
        );
    }
    row
}

fn parse_available(specs: &[String]) -> Result<BTreeMap<String, u64>> {
    let mut available = BTreeMap::new();
    for spec in specs {
        let (class, size) = spec.split_once('=').ok_or_else(|| {
            Error::usage(format!(
                "--available {spec:?}: expected CLASS=SIZE (like trident-nfs=40TiB)"
            ))
        })?;
        let bytes =
            parse_size(size).map_err(|e| Error::usage(format!("--available {spec:?}: {e}")))?;
        if available.insert(class.trim().to_string(), bytes).is_some() {
            return Err(Error::usage(format!(
                "--available: class {class} given twice"
            )));
        }
    }
    Ok(available)
}

/// A quota record for one namespace.
pub fn quota_record(namespace: &str, sums: &Sums, headroom: f64) -> Value {
    let grow = |x: u64| (x as f64 * (1.0 + headroom)).ceil() as u64;
    let gib = |x: u64| k8s_quantity(round_up_gib(grow(x)).max(if x > 0 { GIB } else { 0 }));
    let mut hard = Map::new();
    hard.insert(
        "requests.storage".into(),
        json!(gib(sums.total_pvc_bytes())),
    );
    for (class, bytes) in &sums.pvc_bytes {
        hard.insert(
            format!("{class}.storageclass.storage.k8s.io/requests.storage"),
            json!(gib(*bytes)),
        );
    }
    hard.insert("requests.cpu".into(), json!(grow(sums.vcpus).to_string()));
    hard.insert("requests.memory".into(), json!(gib(sums.memory_bytes)));
    hard.insert(
        "count/virtualmachines.kubevirt.io".into(),
        json!(grow(sums.vms).to_string()),
    );
    json!({
        "namespace": namespace,
        "vm_count": sums.vms,
        "headroom_percent": (headroom * 1e6).round() / 1e4,
        "hard": hard,
    })
}

pub fn run(args: Args) -> Result<ExitCode> {
    args.verbosity.init_logging();
    let fs_overhead = parse_fraction(&args.fs_overhead)
        .map_err(|e| Error::usage(format!("--fs-overhead {e}")))?;
    if fs_overhead >= 1.0 {
        return Err(Error::usage(format!(
            "--fs-overhead {:?}: must be below 100%",
            args.fs_overhead
        )));
    }
    let headroom =
        parse_fraction(&args.headroom).map_err(|e| Error::usage(format!("--headroom {e}")))?;
    let available = parse_available(&args.available)?;
    if args.quota && args.format != Format::Jsonl {
        return Err(Error::usage(
            "--quota writes JSON lines only (drop --format)",
        ));
    }
    if args.quota && args.by.iter().any(|k| *k != Key::Namespace) {
        return Err(Error::usage("--quota groups by namespace (drop --by)"));
    }
    let maps = Mappings::load(&args.storage_map, &[], &args.map_file)?;
    let planner = Planner { maps, fs_overhead };
    let keys = if args.quota {
        vec![Key::Namespace]
    } else {
        args.by.clone()
    };
    let mut report = Report::new(&keys);

    // Records are decoded and planned on every core, and summed here in input order.
    parallel::for_each_line(
        &LineSource::from_paths(&args.inputs),
        |line, here| {
            let vm: SizedVm = parse_vm_view(line)
                .and_then(|vm: SizedVm| vm.check_sizes().map(|()| vm))
                .map_err(|e| Error::data(format!("{here}: {e}")))?;
            Ok(planner.plan(vm))
        },
        |planned| {
            report.add(&planned);
            Ok(())
        },
    )?;

    let mut out = Output::create(args.output.as_deref())?;
    let name = out.name();
    let mut code = ExitCode::Ok;
    if args.quota {
        let mut writer = Writer::new(&name, &mut out);
        for (values, sums) in &report.groups {
            if values[0] == NONE {
                tracing::warn!(
                    "{} VMs have no target_namespace (run owner-group first); no quota for them",
                    sums.vms
                );
                continue;
            }
            writer.write(&quota_record(&values[0], sums, headroom))?;
        }
        writer.flush()?;
    } else {
        let classes = report.classes();
        let rows: Vec<Map<String, Value>> = report
            .groups
            .iter()
            .map(|(values, sums)| row(&report.keys, values, sums, &classes))
            .collect();
        let total_label = vec!["TOTAL".to_string(); report.keys.len()];
        let mut totals = row(&report.keys, &total_label, &report.totals, &classes);
        if args.format == Format::Jsonl {
            totals.insert("total".into(), json!(true));
        }
        let mut columns: Vec<Column> = report
            .keys
            .iter()
            .map(|k| Column::text(k.column()))
            .collect();
        columns.extend([
            Column::number("vms"),
            Column::number("vcpus"),
            Column::bytes("memory_bytes").header("memory"),
        ]);
        columns.extend([
            Column::number("disks"),
            Column::bytes("provisioned_bytes").header("provisioned"),
        ]);
        columns.extend([
            Column::bytes("used_bytes").header("used"),
            Column::number("lun_disks").header("luns"),
        ]);
        columns.extend([
            Column::bytes("lun_bytes").header("lun_size"),
            Column::bytes("pvc_bytes").header("pvc"),
        ]);
        for class in &classes {
            columns
                .push(Column::bytes(format!("pvc_bytes.{class}")).header(format!("pvc {class}")));
        }
        for (class, bytes) in &available {
            let need = report.totals.pvc_bytes.get(class).copied().unwrap_or(0);
            let headroom = *bytes as i128 - need as i128;
            totals.insert(format!("available_bytes.{class}"), json!(bytes));
            totals.insert(format!("headroom_bytes.{class}"), json!(headroom as i64));
            columns.push(
                Column::bytes(format!("available_bytes.{class}")).header(format!("avail {class}")),
            );
            columns.push(
                Column::text(format!("headroom.{class}")).header(format!("headroom {class}")),
            );
            let shown = if headroom < 0 {
                format!("-{}", human_bytes(headroom.unsigned_abs() as u64))
            } else {
                human_bytes(headroom as u64)
            };
            if args.format == Format::Table {
                totals.insert(format!("headroom.{class}"), json!(shown));
            } else {
                columns.last_mut().expect("pushed").key = format!("headroom_bytes.{class}");
            }
            if headroom < 0 {
                code = ExitCode::Findings;
                eprintln!(
                    "capacity-calc: storage class {class}: need {}, available {}: short by {}",
                    human_bytes(need),
                    human_bytes(*bytes),
                    &shown[1..]
                );
            } else if !args.verbosity.quiet {
                eprintln!(
                    "capacity-calc: storage class {class}: need {}, available {}, headroom {shown}",
                    human_bytes(need),
                    human_bytes(*bytes)
                );
            }
        }
        write_rows(&mut out, &name, args.format, &columns, &rows, Some(&totals))?;
    }
    out.commit()?;
    if let Some(unmapped) = report.totals.pvc_bytes.get(UNMAPPED) {
        tracing::warn!(
            "{} of disks have no --storage-map rule (class {UNMAPPED})",
            human_bytes(*unmapped)
        );
    }
    if !args.verbosity.quiet {
        eprintln!(
            "capacity-calc: {} VMs, {} groups, {} disks, {} to request",
            report.vms,
            report.groups.len(),
            report.totals.disks,
            human_bytes(report.totals.total_pvc_bytes())
        );
    }
    Ok(code)
}
