//! forklift-sim: plays Forklift's controllers against a real API server for liftkit's tests.
//! Validates Providers, Maps and Plans, runs Migrations over a simulated shared link
//! (common::linkmodel) with a time scale; all state lives in the cluster, so it can restart.

pub mod conditions;
pub mod controller;
pub mod retry;
pub mod run;
pub mod validate;
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
per disk), VirtualMachineCreation (a kubevirt.io/v1 VirtualMachine in the target namespace),
limited to --max-vm-inflight running VMs per source provider across all plans.

Disk transfers share one link per source provider: the bandwidth is split evenly among running
transfers, and beyond --contention-threshold transfers the aggregate shrinks by
--contention-penalty x (n - threshold) / n (never below 10%). Each VM also spends
--per-vm-overhead (half in Initialize, half in VirtualMachineCreation). --time-scale 600 runs
600 simulated seconds per real second.

All state is in the cluster: restarted, forklift-sim resumes running migrations from their status.
As Forklift, it requeues a step that hits a transient API error (the server unreachable, a
timeout, 429, 5xx) and retries it with backoff; only a refusal (4xx such as 403 or 422) fails the
VM.";

#[derive(Debug, Parser)]
#[command(name = "forklift-sim", version, about = "Plays Forklift's controllers against a Kubernetes API server",
    long_about = LONG_ABOUT, after_long_help = common::cli::after_help())]
pub struct Args {
    /// The engine world file: the oVirt inventory (VMs, NICs, disks, networks, storage domains)
    #[arg(long, value_name = "FILE")]
    pub world: PathBuf,
    /// Running VMs per source provider across all executing plans (Forklift's MAX_VM_INFLIGHT)
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_vm_inflight: u32,
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
    #[command(flatten)]
    pub verbosity: common::cli::Verbosity,
}

impl Args {
    pub fn link(&self) -> LinkModel {
        LinkModel {
            bandwidth_bytes_per_sec: self.bandwidth,
            contention_threshold: self.contention_threshold,
            contention_penalty: self.contention_penalty,
            per_vm_overhead_secs: self.per_vm_overhead,
        }
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    args.verbosity.init_logging();
    common::tls::install_crypto_provider();
    if !(args.time_scale > 0.0 && args.time_scale.is_finite()) {
        return Err(Error::usage("--time-scale must be a positive number"));
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
