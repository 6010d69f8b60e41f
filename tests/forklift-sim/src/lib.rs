//! forklift-sim: plays Forklift's controllers against a real API server for liftkit's tests.
//! Validates Providers, Maps and Plans, runs Migrations over a simulated shared link
//! (common::linkmodel) with a time scale; all state lives in the cluster, so it can restart.

pub mod cdi;
pub mod cdi_import;
pub mod conditions;
pub mod controller;
pub mod datavolume;
pub mod events;
pub mod footprint;
pub mod guest;
pub mod kubevirt;
pub mod lun;
pub mod node;
pub mod objects;
pub mod operator;
pub mod populator;
pub mod provisioner;
pub mod retry;
pub mod run;
pub mod sizing;
pub mod validate;
pub mod warm;
pub mod world;

use clap::Parser;
use common::linkmodel::{LinkModel, parse_duration_secs, parse_rate};
use common::{Error, ExitCode, Result};
use std::path::PathBuf;

/// Annotation on a Plan: VM names or ids to fail midway through DiskTransfer.
pub const FAIL_VMS_ANNOTATION: &str = "forklift-sim.liftkit.io/fail-vms";
/// Annotation on a Plan: when "true", injected failures happen on every attempt, not once.
pub const FAIL_ALWAYS_ANNOTATION: &str = "forklift-sim.liftkit.io/fail-always";
/// Annotation forklift-sim writes on a Plan: ids of VMs whose one injected failure happened.
pub const FAILED_ONCE_ANNOTATION: &str = "forklift-sim.liftkit.io/failed-once";
/// The field manager of everything forklift-sim writes.
pub const FIELD_MANAGER: &str = "forklift-sim";

const LONG_ABOUT: &str = "\
Plays Forklift's part against a Kubernetes API server, for tests and benchmarks. Validates
Providers, NetworkMaps, StorageMaps and Plans with Forklift's condition types, and runs
Migrations: per VM the oVirt cold pipeline Initialize, DiskTransfer (progress in MB, one task
per disk), VirtualMachineCreation (warm: Initialize, DiskTransfer, Cutover,
VirtualMachineCreation), limited to --max-vm-inflight running VMs per source provider
across all plans.

Plans are validated as the Forklift version --forklift-version names validates them, with the
rules plan-gen's preflight applies for the same version (common::forklift): besides the
references, VMNetworksNotMapped (a NIC without a vNIC profile included),
VMMultiplePodNetworkMappings, VMDuplicateNADMappings (2.12 only), VMStorageNotMapped,
InvalidDiskSizes, VMCriticalConcerns (the Critical oVirt concerns, on the world's VMs as Forklift's
inventory would hold them), MacConflicts (against the VirtualMachines in the cluster; with
--namespace, those in that namespace and its plans' target namespaces) and VMAlreadyExists; a VM
that already succeeded is not validated again. The VirtualMachines it creates keep the source
NICs' MAC addresses, as Forklift's do. With --namespace it writes there what says which Forklift
runs, as plan-run reads it: for 2.12 the operator's ClusterServiceVersion forklift-operator.v2.12.5
(OLM), for main a ForkliftController and a forklift-controller Deployment (no replicas) whose
image is tagged latest.

In the plan's target namespace it creates what Forklift v2.12.5 creates for a cold migration to
the host cluster (volume populators), in Forklift's order: a Secret, per disk an
OvirtVolumePopulator and a PVC whose dataSourceRef names it, sized by Forklift's
CalculateSpaceWithOverhead for the volume mode of the class's StorageProfile (1 MiB alignment,
then Filesystem / (1 - --filesystem-overhead %), Block + --block-overhead), a PVC consumer pod
(requests 1 CPU / 1Gi, limits 4 / 8Gi) for the new Pending PVCs, then the VirtualMachine, which
becomes the PVCs' owner; after a success the populators, populator pods, consumer pod and Secret
are deleted. --footprint vm-only creates no disk objects at all. A direct LUN disk is not copied:
on either path, Forklift's createLunDisks makes a PersistentVolume named after the disk on its
logical unit (iSCSI, as the engine serves it; Block, ReadWriteMany, no class) and a claim of the
same name selecting it, which the cluster's PV binder binds; Forklift never deletes the volume.

Warm plans, and plans whose destination Provider is not the host (the remote cluster is played by
the same API server), take Forklift's DataVolume path instead (kubevirt.go DataVolumes, oVirt
builder.go DataVolumes): a Secret with CDI's keys (accessKeyId, secretKey), a ConfigMap with the
engine CA (ca.pem, from the provider Secret's ca.crt; empty without one), per image disk a
DataVolume <plan>-<vm id>-XXXXX with an imageio source and a storage request of max(provisioned,
actual) in the StorageMap's class (its access and volume modes only when the map gives them);
warm ones annotated usePopulator \"false\" and carrying a checkpoint per precopy (the transfer
network annotation is left out). Once the VirtualMachine owns the PVCs the DataVolumes and
importer pods are deleted; after any outcome the importer pods, ConfigMap and Secrets; after a
cancel, and when a VM starts again, also the PVCs and DataVolumes of earlier attempts.

Warm plans follow Forklift's warm itinerary for oVirt: the initial snapshot and a full copy,
then CopyingPaused; every --precopy-interval (PRECOPY_INTERVAL, 60 minutes) a snapshot, a
checkpoint on the DataVolumes and a copy of what the guest changed since the last snapshot
(--warm-change-rate percent of each disk's allocated bytes per hour); once the Migration's
spec.cutover is past on the simulated clock (--clock-start plus simulated time, which stands for
Forklift's time.Now(); read every tick, so a cutover patched onto a running Migration counts), the
cutover (a Cutover step: final snapshot, final checkpoint, the last
changes copied with the source off), then the VirtualMachine. The Plan status carries each VM's
warm block (precopies with snapshot and times, successes, nextPrecopyAt); every event carries
sim_secs and sim_time (the simulated clock, RFC 3339); vm_finished events report precopies and
downtime_secs (simulated time from the cutover's start to the
VirtualMachine's creation). Snapshot ids are made up: no engine is asked. After a restart a
paused warm VM starts its next precopy at once, and a copy under way starts over.

It also plays, against the real API server, the roles no process of the test bed fills:
  CDI: a StorageProfile per StorageClass, claim property sets from CDI v1.66.0's capabilities
    table by provisioner; the CDIConfig's filesystem overhead per class (default 0.06);
  CDI v1.66.0's import of a DataVolume (without CDI populators: Forklift disables them on warm
    DataVolumes, and the test bed has no CSIDriver that would enable them on cold ones): a PVC
    of the DataVolume's name, owned by it, in the DataVolume's volume mode else the
    StorageProfile's, requesting Filesystem ceil(aligned 1 MiB * (1 + CDIConfig overhead)),
    Block the request; an importer pod importer-<pvc> (importer-<pvc>-checkpoint-<id> per
    checkpoint; requests 100m / 60M, limits 750m / 600M); while a checkpoint is imported a
    scratch PVC <pvc>-scratch owned by the pod (Filesystem, the class's overhead on the PVC's
    usable space, 1 MiB aligned), gone with the pod; the DataVolume's phase (Pending,
    ImportScheduled, ImportInProgress, Paused between checkpoints, Succeeded) and progress;
  the volume populator controller: per populator PVC the pod populate-<uid> (resources from the
    --populator-container-* flags, Forklift v2.12.4+ defaults) and the prime PVC prime-<uid> of
    the same size, class and mode, progress on the CR while the pod runs, then the prime PV
    re-bound to the PVC (kube-controller-manager's PV binder binds it) and the prime PVC deleted;
  the storage provisioner: a PV pre-bound to each Pending PVC of a known class, from a pool per
    class (--storage-capacity; unlimited by default), reclaim policy Delete (space returned when
    the PV is deleted once Released);
  one node: binds admitted pods whose PVCs are Bound (pods/binding), runs them; a populator or
    importer pod succeeds when its disk (or the checkpoint's changes) is copied (at once when no
    execution tracks its disk), the consumer pod at once; virt-launcher pods run on;
  KubeVirt v1.9.0: a VirtualMachineInstance for a VM to run and its virt-launcher pod: compute
    requests memory = guest + overhead (260Mi + 8Mi per vCPU, +53Mi with a TPM), CPU = vCPUs /
    --cpu-allocation-ratio, ephemeral-storage 50M; a guest-console-log sidecar (5m / 35M) unless
    --disable-serial-console-log; limits set when a ResourceQuota in the namespace limits them.
With --namespace, these roles act only in that namespace and its plans' target namespaces.

Refusals, as upstream handles them (the API server's message is kept verbatim):
  objects of Forklift's plan controller (Secret, OvirtVolumePopulator, PVC, consumer pod:
    phase CreateDataVolumes; VirtualMachine: phase CreateVM): the VM fails with the message as
    its error (migration.go: step.AddError(err.Error())); a StorageProfile without claim
    property sets fails it with \"no accessMode defined on StorageProfile for StorageClass\";
  the populator pod: Warning Event PopulatorCreationError \"Failed to create populator pod:
    <message>\" on the PVC, retried with backoff; the prime PVC: Warning Event
    PopulatorPVCCreationError \"Failed to create populator PVC: <message>\", and, as upstream,
    not tried again once its pod exists: the pod stays Pending and the VM waits in CopyDisks
    until the pod is deleted;
  the launcher pod: Warning Event FailedCreate \"Error creating pod: <message>\" on the VMI,
    retried with backoff;
  a class whose pool is exhausted: the PVC stays Pending with a Warning Event
    ProvisioningFailed naming the class, the request and the shortfall;
  on the DataVolume path, the Secret, ConfigMap and DataVolumes as Forklift's objects above
    (the VM fails in CreateDataVolumes); the DataVolume's PVC: the DataVolume stays Pending with
    a Warning Event ErrExceededQuota (the API server's message), retried; an importer pod: a
    Warning Event ErrExceededQuota or ErrStartingPod on the PVC with CDI's generic message
    \"Error starting pod '<name>': ...\", retried; a scratch PVC: a Warning Event
    ErrExceededQuota on the PVC, retried (the importer pod waits Pending meanwhile). The VM waits
    in CopyDisks while CDI retries.
A VM that fails keeps its PVCs (and DataVolumes); a new Migration starts it again with new ones
(Forklift only cleans up the VirtualMachine of an earlier attempt), so the old PVCs still count in
quotas.

Disk transfers share one link per source provider: the bandwidth is split evenly among running
transfers (disks whose populator or importer pod runs), and beyond
--contention-threshold transfers the aggregate shrinks by --contention-penalty x (n - threshold)
/ n (never below 10%). Each VM also spends --per-vm-overhead (half in Initialize, half in
VirtualMachineCreation). --link-model gives the link instead, by name or file
(common::linkmodel), hidden from plan-run: besides those four, a cap per transfer, a write cap
per target storage class (the plan's StorageMap gives each disk's class; the class's transfers
share its cap) and background load by UTC time of day on the simulated clock (--clock-start plus
simulated time); shares are max-min fair. Named models: clean-10g (10 Gbit/s, 400 MB/s a stream,
contention past 16), collapse-1g (1 Gbit/s, 50 MB/s a stream, the aggregate falling as 4/n past
4 streams), storage-25g (25 Gbit/s, 250 MB/s a stream, 600 MB/s per storage class, 90% of the
link taken by other traffic 08:00-18:00 UTC). --time-scale 600 runs 600 simulated seconds per real second. Time a VM
waits on the cluster in DiskTransfer (no disk flowing yet, or all copied but a PVC not yet bound)
is taken out of its VirtualMachineCreation time, the part of the overhead it stands for;
vm_finished events report it (cluster_wait_secs). The cluster's own latency passes in real time,
so it counts --time-scale times over: to time scheduling alone, use --footprint vm-only. Phases
end between ticks: a phase that ends inside a tick hands the rest of it to the next phase (a VM
started at a tick starts then), and vm_finished and migration_finished events carry the instant
the VM finished (sim_secs), so a late tick does not stretch simulated times.

All state is in the cluster: restarted, forklift-sim resumes running migrations from their status
and finds its objects again by their labels. It requeues a step that hits a transient API error
(the server unreachable, a timeout, 429, 5xx) and retries it with backoff; a refusal (4xx such as
403 or 422) fails the VM. (Forklift v2.12.5 fails the VM on a transient error in CreateDataVolumes
and CreateVM too; the simulator retries so that tests can restart the API server under it.)";

#[derive(Debug, Parser)]
#[command(name = "forklift-sim", version, about = "Plays Forklift's controllers against a Kubernetes API server",
    long_about = LONG_ABOUT)]
pub struct Args {
    /// The engine world file: the oVirt inventory (VMs, NICs, disks, networks, storage domains)
    #[arg(long, value_name = "FILE")]
    pub world: PathBuf,
    /// The Forklift version whose plan validation it follows (the rules plan-gen's preflight
    /// applies for the same version)
    #[arg(long, value_name = "VERSION", value_enum, default_value_t = common::forklift::ForkliftVersion::DEFAULT)]
    pub forklift_version: common::forklift::ForkliftVersion,
    /// Running VMs per source provider across all executing plans (Forklift's MAX_VM_INFLIGHT)
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_vm_inflight: u32,
    /// The link model, by name (clean-10g, collapse-1g, storage-25g) or file (YAML: bandwidth,
    /// contention_threshold, contention_penalty, per_transfer_cap, storage_write_caps,
    /// background_load, per_vm_overhead); instead of the four flags below
    #[arg(long, value_name = "NAME|FILE", value_parser = parse_link_model,
          conflicts_with_all = ["bandwidth", "contention_threshold", "contention_penalty", "per_vm_overhead"])]
    pub link_model: Option<LinkModel>,
    /// The simulated clock's time at start (RFC 3339), for the model's background load by time
    /// of day [default: now]
    #[arg(long, value_name = "TIME", value_parser = parse_clock_start)]
    pub clock_start: Option<i64>,
    /// Aggregate bandwidth of the link per source provider (10Gbit/s, 1.25GB/s, 800MiB/s)
    #[arg(long, value_name = "RATE", default_value = "10Gbit/s", value_parser = parse_rate)]
    pub bandwidth: f64,
    /// Transfers the link carries before contention sets in
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub contention_threshold: u32,
    /// How fast the aggregate shrinks beyond the threshold (0 = not at all)
    #[arg(long, value_name = "F", default_value_t = 0.5)]
    pub contention_penalty: f64,
    /// Simulated time per VM outside disk transfer (30s, 2m)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration_secs)]
    pub per_vm_overhead: f64,
    /// Simulated seconds per real second
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    pub time_scale: f64,
    /// Fail this VM (name or id) midway through DiskTransfer, once (repeatable)
    #[arg(long = "fail-vm", value_name = "NAME_OR_ID")]
    pub fail_vms: Vec<String>,
    /// Injected failures happen on every attempt, not only the first
    #[arg(long)]
    pub fail_always: bool,
    /// Real time between status updates of a running plan
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration_secs)]
    pub status_interval: f64,
    /// Real time between simulation steps
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_duration_secs)]
    pub tick: f64,
    /// Watch Forklift objects (and Secrets) in this namespace only, not cluster-wide (lets tests
    /// run several simulators side by side)
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Write a JSON line per significant transition to stdout
    #[arg(long)]
    pub events: bool,
    /// Forklift's FILESYSTEM_OVERHEAD: percent added to populator PVCs of Filesystem volumes
    #[arg(long, value_name = "PERCENT", default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..100))]
    pub filesystem_overhead: u32,
    /// Forklift's BLOCK_OVERHEAD: bytes added to populator PVCs of Block volumes (4096, 1Mi)
    #[arg(long, value_name = "SIZE", default_value = "0", value_parser = common::size::parse_size)]
    pub block_overhead: u64,
    /// Capacity of a StorageClass's pool for the provisioner (trident-nfs=2TiB); repeatable;
    /// classes not named are unlimited
    #[arg(long, value_name = "CLASS=SIZE", value_parser = parse_capacity)]
    pub storage_capacity: Vec<(String, u64)>,
    /// The populator pod's CPU request (ForkliftController populator_container_requests_cpu;
    /// "" for none, as before Forklift v2.12.4)
    #[arg(long, value_name = "QUANTITY", default_value = "100m")]
    pub populator_container_requests_cpu: String,
    /// The populator pod's memory request (populator_container_requests_memory)
    #[arg(long, value_name = "QUANTITY", default_value = "512Mi")]
    pub populator_container_requests_memory: String,
    /// The populator pod's CPU limit (populator_container_limits_cpu)
    #[arg(long, value_name = "QUANTITY", default_value = "1000m")]
    pub populator_container_limits_cpu: String,
    /// The populator pod's memory limit (populator_container_limits_memory)
    #[arg(long, value_name = "QUANTITY", default_value = "1Gi")]
    pub populator_container_limits_memory: String,
    /// What executions create in target namespaces: `full`, what Forklift creates (see above);
    /// `vm-only`, only the VirtualMachine, disks timed by the link model alone (for benchmarks of
    /// scheduling, where the cluster's own latency, multiplied by --time-scale, would blur it)
    #[arg(long, value_name = "WHAT", value_enum, default_value_t = Footprint::Full)]
    pub footprint: Footprint,
    /// Forklift's PRECOPY_INTERVAL (ForkliftController controller_precopy_interval, in minutes
    /// there): simulated time between the end of a warm precopy and the next one (60m, 2h)
    #[arg(long, value_name = "DURATION", default_value = "60m", value_parser = parse_duration_secs)]
    pub precopy_interval: f64,
    /// The guest's change rate on warm plans: percent of each disk's allocated bytes rewritten
    /// per simulated hour, copied by the next precopy or the cutover
    #[arg(long, value_name = "PERCENT_PER_HOUR", default_value_t = 1.0)]
    pub warm_change_rate: f64,
    /// KubeVirt's cpuAllocationRatio: a virt-launcher pod requests vCPUs / RATIO CPUs
    #[arg(long, value_name = "RATIO", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub cpu_allocation_ratio: u32,
    /// KubeVirt's disableSerialConsoleLog: no guest-console-log container in virt-launcher pods
    #[arg(long)]
    pub disable_serial_console_log: bool,
    /// The target networks' DHCP reservations: ip-budget --allocate records (JSON lines); a
    /// guest NIC whose MAC has one comes up with its new_ipv4/new_ipv6 after the move, any other
    /// with the addresses its source agent reported (unless the world's after_move says otherwise)
    #[arg(long, value_name = "FILE")]
    pub dhcp: Option<PathBuf>,
    #[command(flatten)]
    pub verbosity: common::cli::Verbosity,
}

static CLOCK_START: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

/// What executions create in target namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Footprint {
    Full,
    VmOnly,
}

fn parse_link_model(text: &str) -> std::result::Result<LinkModel, String> {
    LinkModel::named_or_file(text)
}

/// RFC 3339 into Unix seconds.
fn parse_clock_start(text: &str) -> std::result::Result<i64, String> {
    (text.parse::<jiff::Timestamp>())
        .map(|t| t.as_second())
        .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
}

/// `CLASS=SIZE` for --storage-capacity.
fn parse_capacity(text: &str) -> std::result::Result<(String, u64), String> {
    let (class, size) = text
        .split_once('=')
        .filter(|(c, _)| !c.trim().is_empty())
        .ok_or_else(|| format!("{text:?}: expected CLASS=SIZE, like trident-nfs=2TiB"))?;
    Ok((class.trim().to_string(), common::size::parse_size(size)?))
}

impl Args {
    pub fn populator_resources(&self) -> populator::PodResources {
        populator::PodResources {
            requests_cpu: self.populator_container_requests_cpu.clone(),
            requests_memory: self.populator_container_requests_memory.clone(),
            limits_cpu: self.populator_container_limits_cpu.clone(),
            limits_memory: self.populator_container_limits_memory.clone(),
            image: "quay.io/kubev2v/ovirt-populator:release-v2.12".to_string(),
        }
    }

    pub fn link(&self) -> LinkModel {
        self.link_model.clone().unwrap_or_else(|| LinkModel {
            bandwidth_bytes_per_sec: self.bandwidth,
            contention_threshold: self.contention_threshold,
            contention_penalty: self.contention_penalty,
            per_vm_overhead_secs: self.per_vm_overhead,
            ..LinkModel::default()
        })
    }

    /// Unix seconds of the simulated clock's start (--clock-start, else when the process began).
    pub fn clock_start_unix_secs(&self) -> f64 {
        *CLOCK_START.get_or_init(|| {
            self.clock_start
                .unwrap_or_else(|| jiff::Timestamp::now().as_second()) as f64
        })
    }
}

/// The command-line definition (for the binary, its help and completions).
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

pub fn run(args: Args) -> Result<ExitCode> {
    args.verbosity.init_logging();
    common::tls::install_crypto_provider();
    if !(args.time_scale > 0.0 && args.time_scale.is_finite()) {
        return Err(Error::usage("--time-scale must be a positive number"));
    }
    if !(args.warm_change_rate >= 0.0 && args.warm_change_rate.is_finite())
        || args.precopy_interval <= 0.0
    {
        return Err(Error::usage(
            "--warm-change-rate must not be negative and --precopy-interval must be positive",
        ));
    }
    if args.tick <= 0.0 || args.status_interval < 0.0 {
        return Err(Error::usage(
            "--tick must be positive and --status-interval not negative",
        ));
    }
    let world = world::World::load(&args.world)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::new(ExitCode::Software, format!("cannot start the runtime: {e}")))?;
    runtime.block_on(controller::run(args, world))?;
    Ok(ExitCode::Ok)
}
