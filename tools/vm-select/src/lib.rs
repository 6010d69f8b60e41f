//! vm-select: a filter over VM records. Every criterion given must hold (AND); records that pass
//! are written exactly as they were read (the same bytes), so vm-select never changes a record.

use clap::Parser;
use common::jsonl::read_to_string;
use common::output::Output;
use common::record::{VmRecord, parse_vm_record};
use common::{Error, ExitCode, Result};
use jiff::Timestamp;
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const ABOUT: &str =
    "Select VM records by activity, status, name, placement, tag, owner and owners' decisions";

const LONG_ABOUT: &str = "\
Reads VM records (JSON lines, one per VM, as ovirt-dump writes them) from the files given or stdin
and writes those that meet every criterion given (criteria combine with AND). Selected records are
written byte for byte as they were read. Memory: only the decisions file; records stream.

Activity (--active-within DURATION, --inactive): a VM is in use when its status says it runs now:
up, powering_up, powering_down, paused, migrating, reboot_in_progress, restoring_state,
saving_state, wait_for_launch, not_responding, or suspended (its memory is kept to be resumed). A VM
in any other status (down, image_locked, unknown, ...) is active when its stop_time lies within
DURATION before --now; with no stop_time, its creation_time counts (a new VM never started yet).
A VM with neither is inactive. --inactive keeps exactly the VMs --active-within would drop.

Owners (--owner NAME): a user or group named in one of the VM's own permissions (any role; permissions
inherited from the cluster, data center or System do not count). NAME matches a user's principal
(alice), user name (alice@example.com-authz) or e-mail, or a group's name (full or its last part).

Decisions (--decisions FILE.csv): the owners' answers. A CSV file with a header; the VM column is
named vm, name, id, vm_name or vm_id (a VM name or id), the decision column decision or action, with
keep or skip (case-insensitive). skip drops the VM whatever the other criteria say; keep selects it
whatever the other criteria say (the owner asked for it). A VM matches a row by id first, then by name.

--explain writes to stderr, as a table, why each dropped VM was dropped (VM, ID, LINE, CRITERION,
REASON); a summary of counts always ends on
stderr (unless -q).";

/// Examples, environment and related pages after the help.
pub const DOC: common::cli::Doc = common::cli::Doc {
    examples: &[
        (
            "Keep the VMs up now or stopped in the last 180 days, saying why the others go",
            "vm-select --active-within 180d --explain inventory.jsonl -o active.jsonl",
        ),
        (
            "The VMs of one cluster that alice owns, skipping those the owners said to skip",
            "vm-select --cluster prod --owner alice --decisions answers.csv inventory.jsonl",
        ),
    ],
    environment: &[],
    see_also: &["ovirt-dump(1)", "owner-group(1)", "liftkit-vm-record(5)"],
};

#[derive(Debug, Parser)]
#[command(name = "vm-select", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Args {
    #[command(flatten)]
    pub io: common::cli::Io,
    /// Keep VMs in use now or stopped less than DURATION ago (90d, 12w, 36h, 30m, 45s)
    #[arg(long, value_name = "DURATION")]
    pub active_within: Option<String>,
    /// Invert --active-within: keep VMs that are not in use and stopped longer ago
    #[arg(long, requires = "active_within")]
    pub inactive: bool,
    /// The time activity is measured from (RFC 3339); default: now
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    /// Keep VMs with this status (repeatable or comma-separated: up,down)
    #[arg(long, value_name = "STATUS", value_delimiter = ',')]
    pub status: Vec<String>,
    /// Keep VMs whose name matches GLOB (repeatable: any of them)
    #[arg(long, value_name = "GLOB")]
    pub name: Vec<String>,
    /// Keep VMs whose name matches REGEX (repeatable: any of them)
    #[arg(long, value_name = "REGEX")]
    pub name_regex: Vec<String>,
    /// Keep VMs in this data center, by name or id (repeatable: any of them)
    #[arg(long, value_name = "DC")]
    pub data_center: Vec<String>,
    /// Keep VMs in this cluster, by name or id (repeatable: any of them)
    #[arg(long, value_name = "CLUSTER")]
    pub cluster: Vec<String>,
    /// Keep VMs carrying this tag (repeatable: any of them)
    #[arg(long, value_name = "TAG")]
    pub tag: Vec<String>,
    /// Keep VMs on which NAME holds a permission of its own (repeatable: any of them)
    #[arg(long, value_name = "NAME")]
    pub owner: Vec<String>,
    /// The owners' keep/skip decisions (CSV); skip always drops, keep always selects
    #[arg(long, value_name = "FILE.csv")]
    pub decisions: Option<PathBuf>,
    /// Say on stderr why each dropped VM was dropped, as a table
    #[arg(long)]
    pub explain: bool,
    #[command(flatten)]
    pub verbosity: common::cli::Verbosity,
}

pub fn command() -> clap::Command {
    common::cli::command(<Args as clap::CommandFactory>::command(), &DOC)
}

/// Statuses that mean the VM runs (or is kept to be resumed) now.
pub const IN_USE_STATUSES: &[&str] = &[
    "up",
    "powering_up",
    "powering_down",
    "paused",
    "migrating",
    "reboot_in_progress",
    "restoring_state",
    "saving_state",
    "wait_for_launch",
    "not_responding",
    "suspended",
];

/// Every VM status the engine reports (oVirt REST API v4, `VmStatus`): --status takes these only,
/// so a typo is an error instead of a filter that drops every VM.
pub const VM_STATUSES: &[&str] = &[
    "down",
    "image_locked",
    "migrating",
    "not_responding",
    "paused",
    "powering_down",
    "powering_up",
    "reboot_in_progress",
    "restoring_state",
    "saving_state",
    "suspended",
    "unassigned",
    "unknown",
    "up",
    "wait_for_launch",
];

/// The --status values, lowercased, each one a status the engine reports.
fn parse_statuses(given: &[String]) -> Result<Vec<String>> {
    given
        .iter()
        .map(|s| {
            let status = s.trim().to_ascii_lowercase();
            if VM_STATUSES.contains(&status.as_str()) {
                Ok(status)
            } else {
                Err(Error::usage(format!(
                    "--status {s:?}: not a VM status (one of {})",
                    VM_STATUSES.join(", ")
                )))
            }
        })
        .collect()
}

/// Parses `90d`, `12w`, `36h`, `30m`, `45s` into whole seconds (`common::duration`'s syntax).
pub fn parse_duration(text: &str) -> std::result::Result<i64, String> {
    let secs = common::duration::parse_secs(text)?;
    // i64::MAX as f64 rounds up to 2^63: anything from there on does not fit.
    if !secs.is_finite() || secs >= i64::MAX as f64 {
        return Err(format!("{:?} is too long", text.trim()));
    }
    Ok(secs.round() as i64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Keep,
    Skip,
}

/// The decisions file: by VM id and by VM name.
#[derive(Debug, Default)]
pub struct Decisions {
    by_key: HashMap<String, Decision>,
}

impl Decisions {
    pub fn read(path: &Path) -> Result<Self> {
        let text = read_to_string(path)?;
        Self::parse(&path.display().to_string(), &text)
    }

    pub fn parse(name: &str, text: &str) -> Result<Self> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| Error::data(format!("{name}:1: {e}")))?
            .clone();
        let find = |names: &[&str]| {
            headers
                .iter()
                .position(|h| names.contains(&h.to_ascii_lowercase().as_str()))
        };
        let vm_col = find(&["vm", "name", "id", "vm_name", "vm_id"]).ok_or_else(|| {
            Error::data(format!(
                "{name}:1: no VM column (expected a header vm, name, id, vm_name or vm_id)"
            ))
        })?;
        let decision_col = find(&["decision", "action"]).ok_or_else(|| {
            Error::data(format!(
                "{name}:1: no decision column (expected a header decision or action)"
            ))
        })?;
        let mut decisions = Decisions::default();
        for row in reader.records() {
            let row = row.map_err(|e| Error::data(format!("{name}: {e}")))?;
            let line = row.position().map(|p| p.line()).unwrap_or(0);
            let vm = row.get(vm_col).unwrap_or("");
            let answer = row.get(decision_col).unwrap_or("");
            if vm.is_empty() && answer.is_empty() {
                continue;
            }
            let decision = match answer.to_ascii_lowercase().as_str() {
                "keep" => Decision::Keep,
                "skip" => Decision::Skip,
                _ => {
                    return Err(Error::data(format!(
                        "{name}:{line}: decision {answer:?} for {vm:?} is neither keep nor skip"
                    )));
                }
            };
            if vm.is_empty() {
                return Err(Error::data(format!("{name}:{line}: no VM name or id")));
            }
            if let Some(previous) = decisions.by_key.insert(vm.to_string(), decision)
                && previous != decision
            {
                return Err(Error::data(format!(
                    "{name}:{line}: {vm:?} is both kept and skipped"
                )));
            }
        }
        Ok(decisions)
    }

    /// By id first, then by name.
    pub fn get(&self, vm: &VmRecord) -> Option<Decision> {
        self.by_key
            .get(&vm.id)
            .or_else(|| self.by_key.get(&vm.name))
            .copied()
    }
}

/// The criteria, compiled.
pub struct Filter {
    activity: Option<(i64, bool)>,
    now: Timestamp,
    statuses: Vec<String>,
    names: Option<globset::GlobSet>,
    name_regexes: Vec<regex::Regex>,
    data_centers: Vec<String>,
    clusters: Vec<String>,
    tags: Vec<String>,
    owners: Vec<String>,
    decisions: Decisions,
}

/// What became of one VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Selected,
    KeptByDecision,
    Dropped {
        criterion: &'static str,
        reason: String,
    },
}

impl Filter {
    pub fn new(args: &Args) -> Result<Self> {
        let activity = match &args.active_within {
            Some(d) => Some((
                parse_duration(d).map_err(|e| Error::usage(format!("--active-within {e}")))?,
                args.inactive,
            )),
            None => None,
        };
        let now = match &args.now {
            Some(t) => (t.parse::<Timestamp>())
                .map_err(|e| Error::usage(format!("--now {t:?}: not an RFC 3339 time ({e})")))?,
            None => Timestamp::now(),
        };
        let names = if args.name.is_empty() {
            None
        } else {
            let mut builder = globset::GlobSetBuilder::new();
            for glob in &args.name {
                let g = globset::GlobBuilder::new(glob)
                    .literal_separator(false)
                    .build()
                    .map_err(|e| Error::usage(format!("--name {glob:?}: {e}")))?;
                builder.add(g);
            }
            Some(
                builder
                    .build()
                    .map_err(|e| Error::usage(format!("--name: {e}")))?,
            )
        };
        let name_regexes = args
            .name_regex
            .iter()
            .map(|r| {
                regex::Regex::new(r).map_err(|e| {
                    Error::usage(format!("--name-regex {r:?}: {}", one_line(&e.to_string())))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let decisions = match &args.decisions {
            Some(path) => Decisions::read(path)?,
            None => Decisions::default(),
        };
        Ok(Filter {
            activity,
            now,
            statuses: parse_statuses(&args.status)?,
            names,
            name_regexes,
            data_centers: args.data_center.clone(),
            clusters: args.cluster.clone(),
            tags: args.tag.clone(),
            owners: args.owner.clone(),
            decisions,
        })
    }

    pub fn judge(&self, vm: &VmRecord) -> Verdict {
        match self.decisions.get(vm) {
            Some(Decision::Skip) => {
                return Verdict::Dropped {
                    criterion: "decision",
                    reason: "the decisions file says skip".into(),
                };
            }
            Some(Decision::Keep) => return Verdict::KeptByDecision,
            None => {}
        }
        match self.first_failure(vm) {
            None => Verdict::Selected,
            Some((criterion, reason)) => Verdict::Dropped { criterion, reason },
        }
    }

    fn first_failure(&self, vm: &VmRecord) -> Option<(&'static str, String)> {
        let status = vm.status.as_deref().unwrap_or("");
        if let Some((window, inactive)) = self.activity {
            let (active, why) = self.activity_of(vm, window);
            if active == inactive {
                return Some(("activity", why));
            }
        }
        if !self.statuses.is_empty() && !self.statuses.iter().any(|s| s == status) {
            return Some((
                "status",
                format!("status is {:?}", vm.status.as_deref().unwrap_or("unknown")),
            ));
        }
        let name_ok = match (&self.names, self.name_regexes.is_empty()) {
            (None, true) => true,
            (names, _) => {
                names.as_ref().is_some_and(|g| g.is_match(&vm.name))
                    || self.name_regexes.iter().any(|r| r.is_match(&vm.name))
            }
        };
        if !name_ok {
            return Some(("name", "the name matches no --name or --name-regex".into()));
        }
        if !self.data_centers.is_empty() {
            let dc = vm.data_center.as_ref();
            let ok = dc.is_some_and(|d| {
                self.data_centers
                    .iter()
                    .any(|w| *w == d.id || Some(w.as_str()) == d.name.as_deref())
            });
            if !ok {
                return Some((
                    "data-center",
                    format!(
                        "data center is {}",
                        dc.and_then(|d| d.name.as_deref()).unwrap_or("unknown")
                    ),
                ));
            }
        }
        if !self.clusters.is_empty() {
            let cl = vm.cluster.as_ref();
            let ok = cl.is_some_and(|c| {
                self.clusters
                    .iter()
                    .any(|w| *w == c.id || Some(w.as_str()) == c.name.as_deref())
            });
            if !ok {
                return Some((
                    "cluster",
                    format!(
                        "cluster is {}",
                        cl.and_then(|c| c.name.as_deref()).unwrap_or("unknown")
                    ),
                ));
            }
        }
        if !self.tags.is_empty() {
            let tags = vm.tags.as_deref().unwrap_or(&[]);
            if !tags.iter().any(|t| self.tags.contains(t)) {
                return Some(("tag", format!("tags are [{}]", tags.join(", "))));
            }
        }
        if !self.owners.is_empty()
            && !vm
                .permissions()
                .iter()
                .any(|p| p.inherited_from.is_none() && self.names_owner(p))
        {
            return Some((
                "owner",
                "no --owner holds a permission on the VM itself".into(),
            ));
        }
        None
    }

    fn names_owner(&self, p: &common::record::Permission) -> bool {
        let mut names: Vec<&str> = Vec::new();
        if let Some(u) = &p.user {
            names.extend(
                [
                    u.principal.as_deref(),
                    u.user_name.as_deref(),
                    u.email.as_deref(),
                ]
                .into_iter()
                .flatten(),
            );
        }
        if let Some(n) = p.group.as_ref().and_then(|g| g.name.as_deref()) {
            names.push(n);
            names.push(common::names::short_principal(n));
        }
        self.owners.iter().any(|o| names.contains(&o.as_str()))
    }

    /// Whether the VM counts as active within `window` seconds, and why (for --explain).
    fn activity_of(&self, vm: &VmRecord, window: i64) -> (bool, String) {
        let status = vm.status.as_deref().unwrap_or("unknown");
        if IN_USE_STATUSES.contains(&status) {
            return (true, format!("in use now (status {status})"));
        }
        let (field, stamp) = match (&vm.stop_time, &vm.creation_time) {
            (Some(t), _) => ("stopped", t),
            (None, Some(t)) => ("created", t),
            (None, None) => return (false, format!("status {status}, no stop or creation time")),
        };
        let Ok(when) = stamp.parse::<Timestamp>() else {
            return (false, format!("status {status}, unreadable time {stamp:?}"));
        };
        let age = self.now.duration_since(when).as_secs();
        let days = age as f64 / 86_400.0;
        let active = age < window;
        (
            active,
            format!("status {status}, {field} {days:.1} days ago ({stamp})"),
        )
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Counts for the summary on stderr.
#[derive(Debug, Default)]
pub struct Counts {
    pub read: u64,
    pub selected: u64,
    pub kept_by_decision: u64,
    pub dropped: std::collections::BTreeMap<&'static str, u64>,
    /// With --explain, one row per dropped VM: vm, id, line, criterion, reason.
    pub explained: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// The --explain table on stderr: one row per dropped VM (names escaped for the terminal).
fn explain_table(rows: &[serde_json::Map<String, serde_json::Value>]) -> String {
    use common::format::{Column, table_string};
    let columns = [
        Column::text("vm"),
        Column::text("id"),
        Column::text("line"),
        Column::text("criterion"),
        Column::text("reason"),
    ];
    table_string(&columns, rows, None)
}

pub fn run(args: Args) -> Result<ExitCode> {
    args.verbosity.init_logging();
    let filter = Filter::new(&args)?;
    let mut out = Output::create(args.io.out.path())?;
    let name = out.name();
    let mut counts = Counts::default();
    {
        let mut writer = io::BufWriter::with_capacity(1 << 16, &mut out);
        let inputs = if args.io.inputs.is_empty() {
            vec![PathBuf::from("-")]
        } else {
            args.io.inputs.clone()
        };
        for path in &inputs {
            select_from(path, &filter, args.explain, &mut counts, &mut writer)?;
        }
        writer
            .flush()
            .map_err(|e| common::error::write_error(&name, &e))?;
    }
    out.commit()?;
    if args.explain && !counts.explained.is_empty() {
        eprint!("{}", explain_table(&counts.explained));
    }
    if !args.verbosity.quiet {
        let dropped: u64 = counts.dropped.values().sum();
        let detail: Vec<String> = counts
            .dropped
            .iter()
            .map(|(c, n)| format!("{n} {c}"))
            .collect();
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", detail.join(", "))
        };
        eprintln!(
            "vm-select: {} read, {} selected ({} kept by decision), {dropped} dropped{detail}",
            counts.read,
            counts.selected + counts.kept_by_decision,
            counts.kept_by_decision
        );
    }
    Ok(ExitCode::Ok)
}

/// Reads one input line by line, keeping each raw line so selected records go out unchanged.
fn select_from(
    path: &Path,
    filter: &Filter,
    explain: bool,
    counts: &mut Counts,
    out: &mut impl Write,
) -> Result<()> {
    let mut input = common::jsonl::Input::open(path)?;
    while let Some(line) = input.next_raw_line() {
        let (text, here) = line?;
        let value: serde_json::Value = common::jsonl::parse_value(text).map_err(|e| {
            Error::data(format!(
                "{here}: {}",
                common::jsonl::describe_json_error(&e)
            ))
        })?;
        let vm = parse_vm_record(value).map_err(|e| Error::data(format!("{here}: {e}")))?;
        counts.read += 1;
        let verdict = filter.judge(&vm);
        let write = |out: &mut dyn Write| -> Result<()> {
            out.write_all(text.as_bytes())
                .and_then(|_| out.write_all(b"\n"))
                .map_err(|e| common::error::write_error("output", &e))
        };
        match verdict {
            Verdict::Selected => {
                counts.selected += 1;
                write(out)?;
            }
            Verdict::KeptByDecision => {
                counts.kept_by_decision += 1;
                write(out)?;
            }
            Verdict::Dropped { criterion, reason } => {
                *counts.dropped.entry(criterion).or_default() += 1;
                if explain {
                    // The name, id and reason hold the engine's text (and a guest's): the table
                    // escapes them for the terminal.
                    counts.explained.push(
                        serde_json::json!({"vm": vm.name, "id": vm.id,
                            "line": here.to_string(), "criterion": criterion,
                            "reason": reason})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                    );
                }
            }
        }
    }
    Ok(())
}
