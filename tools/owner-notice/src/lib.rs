//! owner-notice: one notice per VM owner (user or group) before the move (their VMs, namespace and
//! access, window and downtime, network changes, VMs left out) or after it (what moved, what
//! failed, what to check), as Markdown files, CSV rows for mail merge or RFC 5322 messages.

mod inputs;
mod mail;
mod notice;
mod render;
mod schedule;
mod write;

use clap::Parser;
use common::{Error, ExitCode, Result};
use plan_run::window::Window;
use std::path::PathBuf;

pub use render::{code_span, markdown_text};

const LONG_ABOUT: &str = "\
Reads owner-group's VM records (files, or stdin when none or `-`) and whichever of liftkit's other
outputs it is given, and writes one notice per owner: a user or group owning VMs (a VM with two
owners is in both owners' notices). Groups are notified like users, at the address --address-map
gives them.

Before the move, a notice names each VM with its target namespace (and its name there when
plan-gen gave it another), its plan and kind of migration, the window (its plan's start and the
VM's end in --events: plan-run's events, from --simulate or a live run) and the downtime: a cold
migration powers the source off when the VM's migration starts and the VM runs again once created
on the target (Forklift v2.12.5 coldItinerary), so at most from its plan's start to its end; a
warm one keeps it running during the precopies and stops it at the cutover only, for the downtime
plan-run's schedule gives (a simulated VM's downtime_secs, else its plan's `cutover` event's
forecast), from the cutover (cutover in a template). With --allocations (ip-budget --allocate): each NIC's old
network, VLAN and addresses and its new network and addresses, and the DNS change of the VM's
FQDN. Access: the RoleBindings of rbac-gen's (in --manifests, found by their
liftkit.io/ovirt-principals annotation) that name the owner in each of their namespaces. VMs the
preflight left out (--preflight: plan-gen's --report) are listed apart with the Critical
findings that keep them out; with --manifests, so is a VM in no Plan.

After the move (--verify FILE: vm-verify's findings, {vm, check, ok, message} and optionally
namespace, expected, actual): per VM, moved (no failed check; or a live run's vm-succeeded),
failed (vm-failed or vm-canceled in --events), or moved with the checks that failed; then what
to check.

Formats (--format): markdown writes DIR/<owner>.md per owner (-o DIR: user-alice.md, group-dba.md;
a name that is not a safe file name, or that two owners share, gets a hash of the owner's
principal); eml writes DIR/<owner>.eml, one RFC 5322 message per owner (From --from, To the
owner, Reply-To --reply-to, Subject --subject, Date --date or now, a Message-ID of its own;
non-ASCII names and subjects encoded as RFC 2047 words, the UTF-8 text body as quoted-printable
or base64 where needed), ready for sendmail -t or any MTA; csv writes one row per owner and VM
(to -o FILE or stdout) for a mail merge: owner_kind, owner, principal, display_name, address,
vm, namespace, target_name, plan, migration, start, end, downtime, status, network, dns,
reasons. Every notice is rendered before the first file is written, so a bad template or value
replaces no file; then each file is written as every liftkit output is (a temporary file renamed
over it). Files of owners no longer in the input stay.

Addresses: --address-map FILE.csv (owner,address[,display name]; owner is a full principal or a
short name; `#` comments and a header row allowed) first, then the engine's e-mail of the user
(in the records' permissions). An owner without an address is listed on stderr and in the
closing summary, and makes the exit code 1; with --format eml they get no message (a message
needs a recipient), in markdown and csv their notice is written all the same.

Templates: the built-in notice is Markdown; --template FILE replaces it (minijinja, Jinja2
syntax), and --subject is a template too. A template sees owner {kind, name, principal,
display_name, address}, vms [{name, id, namespace, target_name, plan, migration, start, end,
downtime, cutover, blocked, outcome, error, fqdn, nics [{nic, mac, old_network, old_vlan, old_addresses,
new_network, new_addresses, changed}], dns [{fqdn, old, new}], result, failed_checks [{check,
message, expected, actual}], passed_checks}], left_out [{name, namespace, reasons}], namespaces
[{namespace, bindings [{name, role_kind, role, subjects}]}], window, time_zone, schedule
(simulated, live or none), after, file. Every value is escaped for where it lands, whatever the
template: in Markdown as a code span (or, through the |prose filter, as running text with its
punctuation backslash-escaped), in a mail body and subject as text whose control characters are
made visible (no value starts a line, no header holds a line break). Names, FQDNs and addresses
come from the engine and the guests and are never written as markup. CSV cells that a
spreadsheet would run as a formula (=, +, -, @) get a leading '.

Memory: every input is held (a few hundred bytes per VM, finding, allocation and event).";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One Markdown file per owner in -o DIR
    Markdown,
    /// One row per owner and VM, for a mail merge
    Csv,
    /// One RFC 5322 message per owner in -o DIR
    Eml,
}

#[derive(Debug, Parser)]
#[command(name = "owner-notice", version,
          about = "Tell each VM owner what happens to their VMs: Markdown, CSV for mail merge, or e-mail messages",
          long_about = LONG_ABOUT)]
pub struct Args {
    /// owner-group's VM records (JSON lines); stdin when none or `-`
    #[arg(value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    /// rbac-gen's and plan-gen's objects (JSON lines or YAML): Plans and RoleBindings
    #[arg(long, value_name = "FILE")]
    pub manifests: Vec<PathBuf>,
    /// plan-gen's preflight findings (its --report)
    #[arg(long, value_name = "FILE")]
    pub preflight: Vec<PathBuf>,
    /// plan-run's events (--simulate or a live run)
    #[arg(long, value_name = "FILE", alias = "schedule")]
    pub events: Vec<PathBuf>,
    /// ip-budget's --allocate records
    #[arg(long, value_name = "FILE")]
    pub allocations: Vec<PathBuf>,
    /// vm-verify's findings: write the after-the-move notice
    #[arg(long, value_name = "FILE", alias = "after")]
    pub verify: Vec<PathBuf>,
    /// The agreed downtime window, as plan-run's --window (like 22:00-06:00)
    #[arg(long, value_name = "HH:MM-HH:MM", value_parser = Window::parse)]
    pub window: Option<Window>,
    /// Time zone of the times shown (IANA name, like Europe/Prague) [default: the system's]
    #[arg(long, value_name = "ZONE")]
    pub time_zone: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Markdown)]
    pub format: Format,
    /// The directory of the notices (markdown, eml; created if missing), or the CSV file
    #[arg(
        short,
        long,
        value_name = "FILE|DIR",
        value_parser = common::cli::output_file,
        long_help = common::output::long_help(
            "The directory of the notices (markdown, eml; created if missing; each file in it \
             written as FILE below), or the CSV file (stdout when absent)"
        )
    )]
    pub output: Option<PathBuf>,
    /// CSV of owner,address[,display name] rows; before the engine's e-mail
    #[arg(long, value_name = "FILE.csv")]
    pub address_map: Option<PathBuf>,
    /// The sender of the messages (eml), `Name <user@example.com>`
    #[arg(long, value_name = "MAILBOX")]
    pub from: Option<String>,
    /// Where replies go (eml)
    #[arg(long, value_name = "MAILBOX")]
    pub reply_to: Option<String>,
    /// The subject of the messages (eml), a template like the notice's
    #[arg(long, value_name = "TEXT")]
    pub subject: Option<String>,
    /// The messages' Date (RFC 3339, like 2026-11-20T09:00:00Z) [default: now]
    #[arg(long, value_name = "TIME")]
    pub date: Option<String>,
    /// A notice template of your own (minijinja) instead of the built-in one
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
    #[command(flatten)]
    pub verbosity: common::cli::Verbosity,
}

/// Examples, environment and related pages after the help.
pub const DOC: common::cli::Doc = common::cli::Doc {
    examples: &[
        (
            "One Markdown notice per owner before the move",
            "owner-notice --manifests rbac.jsonl --manifests plans.jsonl --events schedule.jsonl \\\n    -o notices/ owned.jsonl",
        ),
        (
            "The same as e-mail messages, ready for an MTA",
            "owner-notice --format eml --from 'Migrations <migrations@example.com>' \\\n    --manifests plans.jsonl --events schedule.jsonl -o mail/ owned.jsonl",
        ),
    ],
    environment: &[(
        "TZ",
        "the time zone of the windows shown, when --time-zone is not given",
    )],
    see_also: &[
        "owner-group(1)",
        "plan-run(1)",
        "vm-verify(1)",
        "ip-budget(1)",
    ],
};

pub fn command() -> clap::Command {
    common::cli::command(<Args as clap::CommandFactory>::command(), &DOC)
}

/// What --format eml needs, checked before anything is read.
fn sender(args: &Args) -> Result<Option<mail::Envelope>> {
    if args.format != Format::Eml {
        for (flag, given) in [
            ("--from", args.from.is_some()),
            ("--reply-to", args.reply_to.is_some()),
            ("--date", args.date.is_some()),
        ] {
            if given {
                return Err(Error::usage(format!("{flag} needs --format eml")));
            }
        }
        return Ok(None);
    }
    let from = args
        .from
        .as_deref()
        .ok_or_else(|| Error::usage("--format eml needs --from (the sender)"))?;
    let date = match &args.date {
        Some(text) => text
            .parse::<jiff::Timestamp>()
            .map_err(|e| Error::usage(format!("--date {text:?}: not an RFC 3339 time: {e}")))?,
        None => jiff::Timestamp::now(),
    };
    Ok(Some(mail::Envelope {
        from: mail::parse_mailbox("--from", from)?,
        reply_to: args
            .reply_to
            .as_deref()
            .map(|r| mail::parse_mailbox("--reply-to", r))
            .transpose()?,
        date,
    }))
}

pub fn run(args: Args) -> Result<ExitCode> {
    args.verbosity.init_logging();
    let zone = common::cli::time_zone(args.time_zone.as_deref())?;
    let envelope = sender(&args)?;
    if args.format != Format::Csv && args.output.is_none() {
        return Err(Error::usage(
            "--format markdown and eml write one file per owner: give the directory with -o DIR",
        ));
    }
    let template = match &args.template {
        Some(path) => common::jsonl::read_to_string(path)?,
        None => render::DEFAULT_TEMPLATE.to_string(),
    };
    let template_name = args.template.as_ref().map_or_else(
        || "the built-in template".into(),
        |p| p.display().to_string(),
    );
    let mode = match args.format {
        Format::Markdown => render::Mode::Markdown,
        Format::Csv | Format::Eml => render::Mode::Text,
    };
    let subject = args
        .subject
        .clone()
        .unwrap_or_else(|| render::DEFAULT_SUBJECT.to_string());
    let renderer = render::Renderer::new(mode, &template_name, template, subject)?;

    let address_map = match &args.address_map {
        Some(path) => inputs::read_address_map(path)?,
        None => Default::default(),
    };
    let records = inputs::read_records(&args.inputs)?;
    let manifests = inputs::read_manifests(&args.manifests)?;
    let findings: Vec<inputs::Finding> = inputs::read_all(&args.preflight)?;
    let events = plan_run::events::read_events(&args.events)?;
    let schedule = schedule::Schedule::from_events(&events);
    let allocations: Vec<inputs::Allocation> = inputs::read_all(&args.allocations)?;
    let checks: Vec<inputs::Check> = inputs::read_all(&args.verify)?;
    let notice_inputs = notice::Inputs {
        vms: &records.vms,
        contacts: &records.contacts,
        manifests: &manifests,
        have_plans: !manifests.plans.is_empty(),
        findings: &findings,
        schedule: &schedule,
        allocations: &allocations,
        checks: &checks,
        address_map: &address_map,
    };
    let settings = notice::Settings {
        zone,
        window: args.window.map(|w| w.to_string()),
        after: !args.verify.is_empty(),
    };
    let (notices, warnings) = notice::build(&notice_inputs, &settings);
    let written = write::write(&args, &renderer, envelope.as_ref(), &notices)?;
    Ok(write::summary(
        &args,
        &notices,
        &warnings,
        &records.vms,
        written,
    ))
}
