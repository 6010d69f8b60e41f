//! vm-verify: checks every migrated VM against its source record (ovirt-dump's, through
//! owner-group) on the cluster Forklift migrated it to, and writes one finding per check.

mod addresses;
pub mod checks;
mod cluster;
mod dns;
pub mod finding;

use checks::ExpectedNic;
use clap::Parser;
use common::format::{Column, Format, write_rows};
use common::jsonl::Inputs;
use common::output::Output;
use common::record::{VmRecord, parse_vm_record};
use common::{Error, ExitCode, Result};
use finding::{Finding, Outcome, Subject};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const ABOUT: &str =
    "Check every migrated VM against its source: boot, agent, configuration, addresses, DNS";

const LONG_ABOUT: &str = "\
Reads VM records (JSON lines: ovirt-dump's, through owner-group) from the files given or stdin, and
the cluster as kubectl finds it (--kubeconfig, else KUBECONFIG or ~/.kube/config, --context; in a
pod, its service account). The Forklift Plans in -n/--namespace (default: the context's namespace;
-A: every namespace) say which source VM became which VirtualMachine (status.migration.vms[]: the
VM id, newName or targetName, the Plan's targetNamespace) and whether its migration succeeded. A
record whose VM is in no Plan is not checked (counted on stderr).

Checks, in this order (one finding record per check that fails; --all writes every check made):
  migrated      the Plan's status says the VM's migration succeeded
  exists        the VirtualMachine exists in the target namespace
  run-strategy  it runs (runStrategy Always or RerunOnFailure) if the source VM was up, and is
                halted otherwise; --start starts those that should run and do not
  running       within --boot-timeout, its VirtualMachineInstance is Running and Ready
  guest-agent   the guest agent connected (condition AgentConnected), where the source's agent
                reported anything (its guest OS or an address)
  guest-os      the guest reports its operating system (guestOSInfo)
  cpu           sockets, cores and threads as the source's
  memory        guest memory as the source's
  firmware      BIOS or EFI as Forklift v2.12.5 maps the source's bios type (builder.go
                mapFirmware: q35_ovmf and q35_secure_boot boot EFI, anything else BIOS, a VM's
                cluster_default its cluster's)
  disks         as many disks as the source, each PVC (bound capacity, else request) no smaller
                than the source disk (provisioned size; a LUN's unit size)
  nics          a NIC for every source NIC the Plan's NetworkMap carries (Forklift leaves out
                NICs mapped to `ignored` or without a NAD left: builder.go mapNetworks)
  macs          every NIC keeps its source MAC address
  networks      every NIC is on the network the map says (pod, or multus NAD namespace/name)
  addresses     per MAC, the guest's addresses (VMI status.interfaces, link-local ones aside)
                hold the planned ones: kept (the source's), changed as planned (--allocations,
                ip-budget --allocate's records), else unexpected; NICs on the pod network have
                the pod's address and are not compared
  dns           with --dns-server: the FQDN (A and AAAA, asked of that server only) resolves to a
                planned address and to none the plan gave up
A VM not running gets no guest checks; without its agent, no guest-os or addresses check.

Output: JSON lines, one finding per check: {vm, vm_id, namespace, target, check, ok, message,
expected, actual} (report --verify reads them); --format table for people (guest-reported text
escaped for the terminal). A summary on stderr. Exit 1 when any VM fails a check.
Memory: every input record and the Plans' statuses.";

#[derive(Debug, Parser)]
#[command(name = "vm-verify", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Args {
    /// VM record files (JSON lines); stdin when none or `-`
    #[arg(value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub out: common::cli::OutputFile,
    /// The kubeconfig file (default: KUBECONFIG, else ~/.kube/config)
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context)
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// The namespace of the Forklift Plans (default: the context's)
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Look for Plans in every namespace
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// Start the VMs that should run (their source was up) and do not
    #[arg(long)]
    pub start: bool,
    /// How long to wait for the VMs that should run to be Running and Ready, with their guest
    /// agent connected and the guest OS reported (like 5m, 90s)
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub boot_timeout: f64,
    /// ip-budget --allocate records: the addresses planned per MAC (repeatable)
    #[arg(long, value_name = "FILE")]
    pub allocations: Vec<PathBuf>,
    /// Check each VM's FQDN with this DNS server (ADDRESS or ADDRESS:PORT)
    #[arg(long, value_name = "ADDR", value_parser = dns::parse_server)]
    pub dns_server: Option<std::net::SocketAddr>,
    /// Write every check made, not only the failed ones
    #[arg(long)]
    pub all: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    #[command(flatten)]
    pub verbosity: common::cli::Verbosity,
}

fn parse_duration(text: &str) -> std::result::Result<f64, String> {
    match common::linkmodel::parse_duration_secs(text)? {
        secs if secs.is_finite() && secs >= 0.0 => Ok(secs),
        _ => Err("must not be negative".into()),
    }
}

/// Examples, environment and related pages after the help.
pub const DOC: common::cli::Doc = common::cli::Doc {
    examples: &[
        (
            "Check every VM the Plans in namespace forklift migrated, as a table",
            "vm-verify -n forklift --format table owned.jsonl",
        ),
        (
            "Every check, with ip-budget's allocations and the new DNS server, as JSON lines",
            "vm-verify -n forklift --all --allocations allocations.jsonl \\\n    --dns-server 10.0.0.53 owned.jsonl > findings.jsonl",
        ),
    ],
    environment: &[(
        "KUBECONFIG",
        "the kubeconfig file(s), when --kubeconfig is not given (as kubectl reads it)",
    )],
    see_also: &[
        "plan-run(1)",
        "ip-budget(1)",
        "owner-notice(1)",
        "report(1)",
    ],
};

pub fn command() -> clap::Command {
    common::cli::command(<Args as clap::CommandFactory>::command(), &DOC)
}

/// A record to check, with where its VM went.
struct Target {
    record: VmRecord,
    migrated: cluster::Migrated,
    expected: Vec<ExpectedNic>,
    subject: Subject,
    started: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    args.verbosity.init_logging();
    let mut records = Vec::new();
    Inputs::new(&args.inputs).for_each(|value: Value, location| {
        let record = parse_vm_record(value).map_err(|e| Error::data(format!("{location}: {e}")))?;
        records.push(record);
        Ok(())
    })?;
    let allocations = addresses::read_allocations(&args.allocations)?;
    let runtime = common::tls::runtime()?;
    let findings = runtime.block_on(async {
        let resolver = match args.dns_server {
            Some(server) => Some(dns::Dns::new(server).map_err(Error::config)?),
            None => None,
        };
        let (client, default_ns) =
            cluster::connect(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
        let namespace = match (&args.namespace, args.all_namespaces) {
            (_, true) => None,
            (Some(ns), false) => Some(ns.clone()),
            (None, false) => Some(default_ns),
        };
        let index = cluster::migrated(&client, namespace.as_deref()).await?;
        let verifier = Verifier {
            args: &args,
            objects: cluster::Objects::new(client),
            allocations,
            dns: resolver,
        };
        verifier.verify(records, &index).await
    })?;
    write(&args, &findings)?;
    Ok(summarize(&findings))
}

struct Verifier<'a> {
    args: &'a Args,
    objects: cluster::Objects,
    allocations: addresses::Allocations,
    dns: Option<dns::Dns>,
}

impl Verifier<'_> {
    async fn verify(
        &self,
        records: Vec<VmRecord>,
        index: &HashMap<String, cluster::Migrated>,
    ) -> Result<Vec<Finding>> {
        let mut targets = Vec::new();
        let mut unplanned = 0usize;
        for record in records {
            let Some(migrated) = index.get(&record.id) else {
                unplanned += 1;
                continue;
            };
            targets.push(Target {
                expected: checks::expected_nics(&record, &migrated.network_map),
                subject: Subject {
                    vm: record.name.clone(),
                    vm_id: record.id.clone(),
                    namespace: migrated.namespace.clone(),
                    target: migrated.target.clone(),
                },
                migrated: migrated.clone(),
                record,
                started: false,
            });
        }
        if unplanned > 0 {
            tracing::warn!("{unplanned} VM records are in no Plan: not checked");
        }
        let mut vms: Vec<Option<Value>> = Vec::new();
        for t in &mut targets {
            let vm = if t.migrated.succeeded {
                self.objects
                    .virtual_machine(&t.subject.namespace, &t.subject.target)
                    .await?
            } else {
                None
            };
            let halted = vm.as_ref().is_some_and(|vm| !checks::set_to_run(vm));
            if self.args.start && halted && checks::should_run(&t.record) {
                self.objects
                    .start(&t.subject.namespace, &t.subject.target)
                    .await?;
                t.started = true;
            }
            vms.push(vm);
        }
        // Re-read the started ones: their runStrategy changed.
        for (t, vm) in targets.iter().zip(vms.iter_mut()) {
            if t.started {
                *vm = self
                    .objects
                    .virtual_machine(&t.subject.namespace, &t.subject.target)
                    .await?;
            }
        }
        let instances = self.wait_for_boot(&targets, &vms).await?;
        let mut findings = Vec::new();
        for ((t, vm), vmi) in targets.iter().zip(&vms).zip(&instances) {
            for outcome in self.check(t, vm.as_ref(), vmi.as_ref()).await? {
                findings.push(t.subject.finding(outcome));
            }
        }
        Ok(findings)
    }

    /// The VMIs of the VMs (None where there is none), once every VM that should run has
    /// settled (Running, Ready, its guest reported) or --boot-timeout has passed.
    async fn wait_for_boot(
        &self,
        targets: &[Target],
        vms: &[Option<Value>],
    ) -> Result<Vec<Option<Value>>> {
        let deadline = Instant::now() + Duration::from_secs_f64(self.args.boot_timeout);
        let mut instances: Vec<Option<Value>> = vec![None; targets.len()];
        let mut settled = vec![false; targets.len()];
        loop {
            for (i, (t, vm)) in targets.iter().zip(vms).enumerate() {
                let Some(vm) = vm else {
                    settled[i] = true;
                    continue;
                };
                if settled[i] {
                    continue;
                }
                instances[i] = self
                    .objects
                    .instance(&t.subject.namespace, &t.subject.target)
                    .await?;
                let agent = checks::source_has_agent(&t.record);
                settled[i] =
                    !checks::set_to_run(vm) || checks::guest_settled(instances[i].as_ref(), agent);
            }
            if settled.iter().all(|s| *s) || Instant::now() >= deadline {
                return Ok(instances);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn check(
        &self,
        t: &Target,
        vm: Option<&Value>,
        vmi: Option<&Value>,
    ) -> Result<Vec<Outcome>> {
        use finding::*;
        let m = &t.migrated;
        if !m.succeeded {
            return Ok(vec![Outcome::fail(
                MIGRATED,
                format!("Plan {}: {}", m.plan, m.state),
            )]);
        }
        let mut out = vec![Outcome::pass(
            MIGRATED,
            format!("Plan {}: Succeeded", m.plan),
        )];
        let Some(vm) = vm else {
            out.push(Outcome::fail(
                EXISTS,
                format!(
                    "no VirtualMachine {}/{}",
                    t.subject.namespace, t.subject.target
                ),
            ));
            return Ok(out);
        };
        out.push(Outcome::pass(
            EXISTS,
            format!(
                "VirtualMachine {}/{}",
                t.subject.namespace, t.subject.target
            ),
        ));
        out.push(checks::run_strategy(&t.record, vm, t.started));
        let mut agent = false;
        if checks::set_to_run(vm) {
            let running = checks::running(vmi, self.args.boot_timeout);
            let up = running.ok;
            out.push(running);
            if let (true, Some(vmi)) = (up, vmi) {
                let outcome = checks::guest_agent(&t.record, vmi);
                agent = outcome.ok && checks::guest_settled(Some(vmi), true);
                out.push(outcome);
                if agent {
                    out.push(checks::guest_os(vmi));
                }
            }
        }
        out.push(checks::cpu(&t.record, vm));
        out.push(checks::memory(&t.record, vm));
        out.push(checks::firmware(&t.record, vm));
        let claims: Vec<String> = checks::disk_claims(vm).into_iter().flatten().collect();
        let pvcs = self.objects.claims(&t.subject.namespace, &claims).await?;
        out.push(checks::disks(&t.record, vm, &pvcs));
        out.push(checks::nics(&t.expected, vm));
        out.push(checks::macs(&t.expected, vm));
        out.push(checks::networks(&t.expected, vm));
        let plan = addresses::Plan::new(&t.record, &t.expected, &self.allocations);
        if let (true, Some(vmi)) = (agent, vmi) {
            out.push(addresses::check(&plan, vmi));
        }
        if let (Some(dns), Some(fqdn)) = (&self.dns, &t.record.fqdn) {
            out.push(addresses::dns_check(fqdn, &plan, dns.resolve(fqdn).await));
        }
        Ok(out)
    }
}

fn write(args: &Args, findings: &[Finding]) -> Result<()> {
    let rows: Vec<_> = findings
        .iter()
        .filter(|f| args.all || !f.ok)
        .map(Finding::row)
        .collect();
    let columns = [
        Column::text("vm"),
        Column::text("namespace"),
        Column::text("check"),
        Column::text("ok"),
        Column::text("message"),
    ];
    let mut out = Output::create(args.out.path())?;
    let name = out.name();
    write_rows(&mut out, &name, args.format, &columns, &rows, None)?;
    out.commit()
}

/// The summary on stderr, and the exit code: 1 when any VM failed a check.
fn summarize(findings: &[Finding]) -> ExitCode {
    let mut by_vm: Vec<(&str, bool)> = Vec::new();
    for f in findings {
        match by_vm.iter_mut().find(|(vm, _)| *vm == f.vm_id) {
            Some((_, ok)) => *ok &= f.ok,
            None => by_vm.push((&f.vm_id, f.ok)),
        }
    }
    let failed = by_vm.iter().filter(|(_, ok)| !ok).count();
    let checks_failed = findings.iter().filter(|f| !f.ok).count();
    eprintln!(
        "vm-verify: {} VMs checked, {} passed, {failed} failed ({checks_failed} failed checks)",
        by_vm.len(),
        by_vm.len() - failed
    );
    if failed > 0 {
        ExitCode::Findings
    } else {
        ExitCode::Ok
    }
}
