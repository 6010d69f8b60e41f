//! owner-group: who owns each VM, and which namespace each set of owners gets. Annotates VM records
//! with `owners` and `target_namespace`, passing every other field through.

use clap::Parser;
use common::format::Format;
use common::jsonl::{Input, Writer, read_to_string};
use common::names::{is_rfc1123_label, sanitize_label, short_principal, stable_hash, with_suffix};
use common::output::{Output, Spool};
use common::parallel::{self, LineSource};
use common::record::{Owner, OwnerKind};
use common::record::{PermissionView, Present, VmView, parse_vm_view};
use common::{Error, ExitCode, Result};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The roles that make a user or group an owner, unless --owner-role says otherwise.
pub const DEFAULT_OWNER_ROLES: &[&str] = &[
    "UserVmManager",
    "UserRole",
    "PowerUserRole",
    "UserVmRunTimeManager",
    "UserInstanceManager",
];

const ABOUT: &str = "Find each VM's owners and give each set of owners one target namespace";

const LONG_ABOUT: &str = "\
Reads VM records (JSON lines) from the files given or stdin and writes each with two fields added:
owners (users and groups holding an ownership role on the VM itself) and target_namespace (one per
distinct set of owners). Every other field passes through unchanged, byte for byte: the two fields
are appended to the record as it came (or replaced where they are, when owner-group ran before).
Only schema, id, name and permissions are read, and checked.

Owners: a permission counts when its role is one of --owner-role (default UserVmManager, UserRole,
PowerUserRole, UserVmRunTimeManager, UserInstanceManager) and it is on the VM itself: permissions
inherited from the cluster, data center or System never count. --exclude and --exclude-file drop
principals (admin and service accounts); a name matches a user's principal (alice), user name
(alice@example.com-authz) or e-mail, or a group's full or last-part name (dba).

Namespace names: the owners' names without domain (alice, dba), sorted, joined with '-', put into
--name-template at {owners} (default {owners}-ns: alice and bob give alice-bob-ns). The result is made
an RFC 1123 label (lowercase; other characters become '-'; at most 63 characters). A short stable
hash of the owner set (10 hex digits, from the owners' kinds and full principals) is appended:
  - when making it a label changed the name (upper case, dots, too long), and
  - when two different owner sets give the same name (alice@internal and alice@corp, a user and a
    group both named dba, owners a-b and {a, b}): then every set sharing that name gets the hash.
The same input gives the same names whatever the order of its records. To see every owner set
before naming any, owner-group reads its input twice: files are read twice, stdin is first copied
to a temporary file; the second pass copies the records, with what the first found for each (4
bytes a record, in a temporary file). Memory holds the distinct owner sets only (the --summary adds
the VMs' ids and names).

VMs without owners go to the namespace --unowned (default unowned), or are left out with
--unowned drop; their count is reported on stderr.

System namespaces (default, kube-*, openshift*) and those given with --protect are never targets:
as --unowned they are exit 2, as a name the template gives an owner set exit 65 (naming the
owners), before anything is written.

--summary writes one record per namespace instead of the VM records:
  {\"namespace\", \"owner_users\": [user names], \"owner_groups\": [group names],
   \"vm_count\", \"vm_ids\": [...], \"vm_names\": [...]}
sorted by namespace, VMs by name.

Records are decoded on every core (at most 8; LIFTKIT_THREADS=N sets the number) and used in input
order: the result, and the bad line an error names, are the same as with one.";

/// Examples, environment and related pages after the help.
pub const DOC: common::cli::Doc = common::cli::Doc {
    examples: &[
        (
            "Add owners and target namespaces, admin accounts left out",
            "owner-group --exclude admin@internal active.jsonl -o owned.jsonl",
        ),
        (
            "One line per namespace: its owners and VMs, as a table",
            "owner-group --summary --format table owned.jsonl",
        ),
    ],
    environment: &[(
        "LIFTKIT_THREADS",
        "threads decoding records, 1 to 64 (default: the cores, at most 8)",
    )],
    see_also: &[
        "vm-select(1)",
        "rbac-gen(1)",
        "plan-gen(1)",
        "liftkit-vm-record(5)",
    ],
};

#[derive(Debug, Parser)]
#[command(name = "owner-group", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Args {
    #[command(flatten)]
    pub io: common::cli::Io,
    /// A role that makes its holder an owner (repeatable; replaces the default list)
    #[arg(long, value_name = "ROLE")]
    pub owner_role: Vec<String>,
    /// A user or group that never counts as an owner (repeatable)
    #[arg(long, value_name = "NAME")]
    pub exclude: Vec<String>,
    /// A file of users and groups that never count as owners, one per line, # comments
    #[arg(long, value_name = "FILE")]
    pub exclude_file: Vec<PathBuf>,
    /// The namespace name, with {owners} standing for the owners' names joined with '-'
    #[arg(long, value_name = "TEMPLATE", default_value = "{owners}-ns")]
    pub name_template: String,
    /// The namespace of VMs without owners, or `drop` to leave them out
    #[arg(long, value_name = "NAME", default_value = "unowned")]
    pub unowned: String,
    /// Write one record per namespace (owners, VMs) instead of the VM records
    #[arg(long)]
    pub summary: bool,
    /// Output format: JSON lines; with --summary also csv or a table for people
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    #[command(flatten)]
    pub protect: common::cli::Protect,
    #[command(flatten)]
    pub verbosity: common::cli::Verbosity,
}

pub fn command() -> clap::Command {
    common::cli::command(<Args as clap::CommandFactory>::command(), &DOC)
}

/// Decides owners from permissions.
#[derive(Debug, Clone)]
pub struct OwnerRules {
    pub roles: BTreeSet<String>,
    pub excluded: BTreeSet<String>,
}

impl OwnerRules {
    pub fn new(roles: &[String], excluded: impl IntoIterator<Item = String>) -> Self {
        let roles = if roles.is_empty() {
            DEFAULT_OWNER_ROLES.iter().map(|r| r.to_string()).collect()
        } else {
            roles.iter().cloned().collect()
        };
        OwnerRules {
            roles,
            excluded: excluded.into_iter().collect(),
        }
    }

    /// The VM's owners, sorted, one entry per principal (with all its ownership roles).
    pub fn owners(&self, permissions: &[PermissionView<'_>]) -> Vec<Owner> {
        let mut by_principal: BTreeMap<(OwnerKind, String), Owner> = BTreeMap::new();
        for p in permissions {
            if p.inherited_from.is_some() {
                continue;
            }
            let Some(role) = p.role.name.as_deref() else {
                continue;
            };
            if !self.roles.contains(role) {
                continue;
            }
            let Some(owner) = self.owner_of(p) else {
                continue;
            };
            let entry = by_principal
                .entry((owner.kind, owner.principal.clone()))
                .or_insert(owner);
            if !entry.roles.iter().any(|r| r == role) {
                entry.roles.push(role.to_string());
                entry.roles.sort();
            }
        }
        by_principal.into_values().collect()
    }

    fn owner_of(&self, p: &PermissionView<'_>) -> Option<Owner> {
        let role = p.role.name.as_deref().unwrap_or_default().to_string();
        if let Some(u) = &p.user {
            let principal = u
                .user_name
                .as_deref()
                .or(u.principal.as_deref())?
                .to_string();
            let name = short_principal(u.principal.as_deref().unwrap_or(&principal)).to_string();
            let candidates = [
                Some(principal.as_str()),
                u.principal.as_deref(),
                u.email.as_deref(),
                Some(name.as_str()),
            ];
            if candidates
                .iter()
                .flatten()
                .any(|c| self.excluded.contains(*c))
            {
                return None;
            }
            return Some(Owner {
                kind: OwnerKind::User,
                name,
                principal,
                domain: u.domain.as_deref().map(str::to_string),
                roles: vec![role],
            });
        }
        if let Some(g) = &p.group {
            let principal = g.name.as_deref()?.to_string();
            let name = short_principal(&principal).to_string();
            if self.excluded.contains(&principal) || self.excluded.contains(&name) {
                return None;
            }
            return Some(Owner {
                kind: OwnerKind::Group,
                name,
                principal,
                domain: g.domain.as_deref().map(str::to_string),
                roles: vec![role],
            });
        }
        None
    }
}

/// What identifies an owner set: kinds and full principals, sorted.
pub type OwnerSetKey = Vec<(OwnerKind, String)>;

pub fn owner_set_key(owners: &[Owner]) -> OwnerSetKey {
    let mut key: OwnerSetKey = owners
        .iter()
        .map(|o| (o.kind, o.principal.clone()))
        .collect();
    key.sort();
    key.dedup();
    key
}

fn kind_word(kind: OwnerKind) -> &'static str {
    match kind {
        OwnerKind::User => "user",
        OwnerKind::Group => "group",
    }
}

/// Names every owner set (see the man page for the rule); `sets` maps each key to its owners'
/// short names. Deterministic: the result depends on the set of keys only, never on an order.
pub fn assign_names(
    sets: &BTreeMap<OwnerSetKey, Vec<String>>,
    template: &str,
    reserved: Option<&str>,
) -> Result<HashMap<OwnerSetKey, String>> {
    struct Named {
        base: String,
        hash: String,
        suffixed: bool,
    }
    let mut named: BTreeMap<&OwnerSetKey, Named> = BTreeMap::new();
    for (key, short_names) in sets {
        let mut short_names = short_names.clone();
        short_names.sort();
        let raw = template.replace("{owners}", &short_names.join("-"));
        let base = sanitize_label(&raw);
        let parts: Vec<String> = key
            .iter()
            .map(|(k, p)| format!("{}:{p}", kind_word(*k)))
            .collect();
        let suffixed = base != raw;
        named.insert(
            key,
            Named {
                base,
                hash: stable_hash(&parts),
                suffixed,
            },
        );
    }
    let final_name = |n: &Named| {
        if n.suffixed {
            with_suffix(&n.base, &n.hash)
        } else {
            n.base.clone()
        }
    };
    // Suffix every set whose name another set (or the unowned namespace) shares, until none does.
    // Sets only ever gain a suffix, so this ends; what is left shared is a hash collision.
    loop {
        let mut holders: HashMap<String, Vec<&OwnerSetKey>> = HashMap::new();
        for (key, n) in &named {
            holders.entry(final_name(n)).or_default().push(key);
        }
        let mut changed = false;
        let mut still_shared = None;
        for (name, keys) in &holders {
            if keys.len() < 2 && reserved != Some(name.as_str()) {
                continue;
            }
            still_shared = Some(name.clone());
            for key in keys {
                let n = named.get_mut(*key).expect("key present");
                if !n.suffixed {
                    n.suffixed = true;
                    changed = true;
                }
            }
        }
        if !changed {
            if let Some(name) = still_shared {
                return Err(Error::new(
                    ExitCode::Software,
                    format!("owner sets collide on namespace {name} even with their hashes"),
                ));
            }
            break;
        }
    }
    Ok(named
        .iter()
        .map(|(k, n)| ((*k).clone(), final_name(n)))
        .collect())
}

/// Checks a --name-template: it must contain {owners}.
pub fn check_template(template: &str) -> Result<()> {
    if !template.contains("{owners}") {
        return Err(Error::usage(format!(
            "--name-template {template:?}: must contain {{owners}}"
        )));
    }
    let rest = template.replace("{owners}", "");
    if rest.contains('{') || rest.contains('}') {
        return Err(Error::usage(format!(
            "--name-template {template:?}: only {{owners}} may appear in braces"
        )));
    }
    Ok(())
}

/// Refuses a namespace name that is a system or protected namespace (before a byte is written):
/// its owners would get admin rights there.
fn refuse_protected(
    names: &HashMap<OwnerSetKey, String>,
    sets: &BTreeMap<OwnerSetKey, Vec<String>>,
    protect: &common::cli::Protect,
) -> Result<()> {
    for (key, owners) in sets {
        let Some(why) = names.get(key).and_then(|name| protect.refuses(name)) else {
            continue;
        };
        return Err(Error::data(format!(
            "owners {}: namespace {why}: refused as a target (change --name-template)",
            owners.join(", ")
        )));
    }
    Ok(())
}

/// The --summary records as CSV or a table: owners and VM names joined with `;`.
fn write_summary_rows<'a>(
    out: &mut Output,
    name: &str,
    format: Format,
    summaries: impl Iterator<Item = &'a NamespaceSummary>,
) -> Result<()> {
    use common::format::{Column, write_rows};
    let rows: Vec<serde_json::Map<String, serde_json::Value>> = summaries
        .filter_map(|s| match serde_json::to_value(s) {
            Ok(serde_json::Value::Object(row)) => Some(row),
            _ => None,
        })
        .collect();
    let columns = [
        Column::text("namespace"),
        Column::number("vm_count").header("vms"),
        Column::text("owner_users"),
        Column::text("owner_groups"),
        Column::text("vm_names"),
    ];
    write_rows(out, name, format, &columns, &rows, None)
}

/// One record of --summary.
#[derive(Debug, Default, Serialize)]
pub struct NamespaceSummary {
    pub namespace: String,
    pub owner_users: Vec<String>,
    pub owner_groups: Vec<String>,
    pub vm_count: usize,
    pub vm_ids: Vec<String>,
    pub vm_names: Vec<String>,
}

/// An input as read twice: a file, or stdin copied to a temporary file.
struct Source {
    name: String,
    path: PathBuf,
    _spool: Option<Spool>,
}

impl Source {
    fn open(&self) -> Result<Input> {
        let file =
            File::open(&self.path).map_err(|e| Error::no_input(format!("{}: {e}", self.name)))?;
        Ok(Input::from_reader(
            &self.name,
            Box::new(BufReader::with_capacity(1 << 16, file)),
        ))
    }
}

fn sources(paths: &[PathBuf]) -> Result<Vec<Source>> {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        paths.to_vec()
    };
    let mut sources = Vec::new();
    for path in paths {
        if path == Path::new("-") {
            let spool = Spool::copy("owner-group", "stdin", &mut io::stdin().lock())?;
            sources.push(Source {
                name: "stdin".into(),
                path: spool.path()?.to_path_buf(),
                _spool: Some(spool),
            });
        } else if std::fs::metadata(&path).is_ok_and(|m| !m.is_file()) {
            // A pipe (`<(...)`, a FIFO) or device reads once: copied, like stdin, to be read twice.
            let name = path.display().to_string();
            let mut input =
                File::open(&path).map_err(|e| Error::no_input(format!("{name}: {e}")))?;
            let spool = Spool::copy("owner-group", &name, &mut input)?;
            sources.push(Source {
                name,
                path: spool.path()?.to_path_buf(),
                _spool: Some(spool),
            });
        } else {
            sources.push(Source {
                name: path.display().to_string(),
                path,
                _spool: None,
            });
        }
    }
    Ok(sources)
}

/// What owner-group reads of a VM record; every other field passes through as it came.
#[derive(Deserialize)]
struct OwnershipView<'a> {
    schema: u32,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    permissions: Option<Vec<PermissionView<'a>>>,
    /// Set when the record already has owner-group's fields (owner-group ran before).
    #[serde(default)]
    owners: Present,
    #[serde(default)]
    target_namespace: Present,
}

impl VmView for OwnershipView<'_> {
    fn schema(&self) -> u32 {
        self.schema
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl OwnershipView<'_> {
    fn permissions(&self) -> &[PermissionView<'_>] {
        self.permissions.as_deref().unwrap_or(&[])
    }
}

/// A distinct list of owners, as pass 1 found it and pass 2 writes it.
struct OwnerList {
    owners: Vec<Owner>,
    /// `owners` as JSON, encoded once for every record that has them.
    json: Vec<u8>,
    /// Its namespace; `None` when the VM is dropped (no owners, `--unowned drop`).
    namespace: Option<String>,
}

/// What pass 1 leaves pass 2 for each record, in order: the index of its owner list, whether
/// the record already has owner-group's fields, and the line's length (so that pass 2 notices an
/// input that changed in between). Kept in a temporary file (8 bytes a record), so memory does not
/// grow with the input and pass 2 need not decode the records again.
struct Verdicts {
    writer: Option<io::BufWriter<File>>,
    reader: Option<BufReader<File>>,
}

const HAS_FIELDS: u32 = 1 << 31;

impl Verdicts {
    fn new() -> Result<Self> {
        let file = tempfile::tempfile()
            .map_err(|e| Error::io(format!("cannot create a temporary file: {e}")))?;
        Ok(Verdicts {
            writer: Some(io::BufWriter::with_capacity(1 << 16, file)),
            reader: None,
        })
    }

    fn push(&mut self, list: u32, has_fields: bool, line_len: usize) -> Result<()> {
        let word = list | if has_fields { HAS_FIELDS } else { 0 };
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&word.to_le_bytes());
        bytes[4..].copy_from_slice(&line_length_word(line_len).to_le_bytes());
        let writer = self.writer.as_mut().expect("pushed before rewinding");
        writer
            .write_all(&bytes)
            .map_err(|e| Error::io(format!("temporary file: {e}")))
    }

    fn rewind(&mut self) -> Result<()> {
        let io_error = |e: io::Error| Error::io(format!("temporary file: {e}"));
        let writer = self.writer.take().expect("rewound twice");
        let mut file = writer.into_inner().map_err(|e| io_error(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(io_error)?;
        self.reader = Some(BufReader::with_capacity(1 << 16, file));
        Ok(())
    }

    /// The next record's verdict; `None` past the last record of pass 1.
    fn next(&mut self) -> Result<Option<Verdict>> {
        let reader = self.reader.as_mut().expect("read before rewinding");
        let mut bytes = [0u8; 8];
        match reader.read_exact(&mut bytes) {
            Ok(()) => {
                let word = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
                let line_len = u32::from_le_bytes(bytes[4..].try_into().expect("4 bytes"));
                Ok(Some(Verdict {
                    list: (word & !HAS_FIELDS) as usize,
                    has_fields: word & HAS_FIELDS != 0,
                    line_len,
                }))
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(Error::io(format!("temporary file: {e}"))),
        }
    }
}

/// One record's verdict (see `Verdicts`).
struct Verdict {
    list: usize,
    has_fields: bool,
    line_len: u32,
}

impl Verdict {
    /// Whether `line` is (as far as its length tells) the line pass 1 read.
    fn is_for(&self, line: &str) -> bool {
        self.line_len == line_length_word(line.len())
    }
}

/// A line's length as stored: lines of 4 GiB and more all look alike (none are that long).
fn line_length_word(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn changed(source: &Source) -> Error {
    Error::data(format!(
        "{}: changed while owner-group read it (the second pass found other records); run it again",
        source.name
    ))
}

/// The record with `owners` and `target_namespace` set. Appended to the line as it came when the
/// record has neither (the usual case: nothing is decoded or re-encoded); otherwise the record is
/// rebuilt with the two fields replaced where they were.
fn annotate(
    line: &str,
    has_fields: bool,
    list: &OwnerList,
    namespace: &str,
    buffer: &mut Vec<u8>,
) -> Result<()> {
    let encode =
        |e: serde_json::Error| Error::new(ExitCode::Software, format!("cannot encode record: {e}"));
    buffer.clear();
    if !has_fields {
        let body = line.strip_suffix('}').unwrap_or(line).trim_end();
        buffer.extend_from_slice(body.as_bytes());
        buffer.extend_from_slice(b",\"owners\":");
        buffer.extend_from_slice(&list.json);
        buffer.extend_from_slice(b",\"target_namespace\":");
        serde_json::to_writer(&mut *buffer, namespace).map_err(encode)?;
        buffer.extend_from_slice(b"}\n");
        return Ok(());
    }
    let mut record = record_map(line)?;
    record.insert(
        "owners".into(),
        serde_json::to_value(&list.owners).map_err(encode)?,
    );
    record.insert("target_namespace".into(), namespace.into());
    serde_json::to_writer(&mut *buffer, &record).map_err(encode)?;
    buffer.push(b'\n');
    Ok(())
}

/// A record line as a JSON object, to replace fields in it.
fn record_map(line: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    match common::jsonl::parse_value(line) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::data("not a JSON object")),
        Err(e) => Err(Error::data(common::jsonl::describe_json_error(&e))),
    }
}

fn principals(owners: &[Owner], kind: OwnerKind) -> Vec<String> {
    owners
        .iter()
        .filter(|o| o.kind == kind)
        .map(|o| o.principal.clone())
        .collect()
}

fn read_excludes(args: &Args) -> Result<Vec<String>> {
    let mut excluded = args.exclude.clone();
    for path in &args.exclude_file {
        let text = read_to_string(path)?;
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if !line.is_empty() {
                excluded.push(line.to_string());
            }
        }
    }
    Ok(excluded)
}

pub fn run(args: Args) -> Result<ExitCode> {
    args.verbosity.init_logging();
    check_args(&args)?;
    let drop_unowned = args.unowned == "drop";
    let rules = OwnerRules::new(&args.owner_role, read_excludes(&args)?);
    let sources = sources(&args.io.inputs)?;

    // Pass 1: every distinct owner set (and any bad line, before a byte is written).
    let (sets, lists, mut verdicts) = collect_owner_lists(&sources, &rules)?;
    let reserved = if drop_unowned {
        None
    } else {
        Some(args.unowned.as_str())
    };
    let names = assign_names(&sets, &args.name_template, reserved)?;
    refuse_protected(&names, &sets, &args.protect)?;
    let lists: Vec<OwnerList> = lists
        .into_iter()
        .map(|owners| {
            let namespace = if owners.is_empty() {
                (!drop_unowned).then(|| args.unowned.clone())
            } else {
                Some(names[&owner_set_key(&owners)].clone())
            };
            let json = serde_json::to_vec(&owners).expect("owners encode");
            OwnerList {
                owners,
                json,
                namespace,
            }
        })
        .collect();
    verdicts.rewind()?;

    // Pass 2: annotate, from pass 1's verdicts; records are decoded again only for --summary.
    let (vms, unowned) = write_records(&args, &sources, &lists, &mut verdicts)?;
    if !args.verbosity.quiet {
        let fate = if drop_unowned {
            "dropped".to_string()
        } else {
            format!("in namespace {}", args.unowned)
        };
        eprintln!(
            "owner-group: {vms} VMs, {} owner sets, {unowned} VMs without owners ({fate})",
            sets.len()
        );
    }
    Ok(ExitCode::Ok)
}

/// The usage errors that need no input: the name template, `--format` without `--summary`,
/// `--unowned`'s namespace.
fn check_args(args: &Args) -> Result<()> {
    check_template(&args.name_template)?;
    if !args.summary && args.format != Format::Jsonl {
        return Err(Error::usage(
            "--format: VM records are JSON lines only (csv and table are for --summary)",
        ));
    }
    let drop_unowned = args.unowned == "drop";
    if !drop_unowned && !is_rfc1123_label(&args.unowned) {
        return Err(Error::usage(format!(
            "--unowned {:?}: not a valid namespace name (lowercase letters, digits, '-'; at most 63) or `drop`",
            args.unowned
        )));
    }
    if let Some(why) = (!drop_unowned)
        .then(|| args.protect.refuses(&args.unowned))
        .flatten()
    {
        return Err(Error::usage(format!(
            "--unowned {:?}: {why}: refused as a target",
            args.unowned
        )));
    }
    Ok(())
}

/// Pass 1's findings: the distinct owner sets (their principals' names), the distinct owner
/// lists in order of first use, and each record's verdict.
type OwnerLists = (
    BTreeMap<OwnerSetKey, Vec<String>>,
    Vec<Vec<Owner>>,
    Verdicts,
);

/// Pass 1: every record's owners, decoded on every core and collected here in input order.
fn collect_owner_lists(sources: &[Source], rules: &OwnerRules) -> Result<OwnerLists> {
    let mut sets: BTreeMap<OwnerSetKey, Vec<String>> = BTreeMap::new();
    let mut list_index: HashMap<Vec<Owner>, u32> = HashMap::new();
    let mut lists: Vec<Vec<Owner>> = Vec::new();
    let mut verdicts = Verdicts::new()?;
    let line_sources: Vec<LineSource> = sources
        .iter()
        .map(|s| LineSource {
            name: s.name.clone(),
            path: s.path.clone(),
        })
        .collect();
    parallel::for_each_line(
        &line_sources,
        |line, here| {
            let vm: OwnershipView =
                parse_vm_view(line).map_err(|e| Error::data(format!("{here}: {e}")))?;
            let has_fields = vm.owners.0 || vm.target_namespace.0;
            if has_fields {
                // Pass 2 rebuilds such a record: whatever would stop it (JSON nested deeper than
                // serde_json's limit, which the view skips unread) is found here, before a byte
                // is written, and named with its line.
                record_map(line).map_err(|e| e.context(here))?;
            }
            Ok((rules.owners(vm.permissions()), has_fields, line.len()))
        },
        |(owners, has_fields, line_len)| {
            let index = match list_index.get(&owners) {
                Some(index) => *index,
                None => {
                    if !owners.is_empty() {
                        sets.entry(owner_set_key(&owners))
                            .or_insert_with(|| owners.iter().map(|o| o.name.clone()).collect());
                    }
                    let index = u32::try_from(lists.len())
                        .ok()
                        .filter(|i| i & HAS_FIELDS == 0)
                        .ok_or_else(|| {
                            Error::new(ExitCode::Software, "more than 2^31 distinct owner lists")
                        })?;
                    lists.push(owners.clone());
                    list_index.insert(owners, index);
                    index
                }
            };
            verdicts.push(index, has_fields, line_len)
        },
    )?;
    Ok((sets, lists, verdicts))
}

/// Pass 2: the annotated records (or, with --summary, one summary per namespace) into the
/// output. Returns the VMs read and those without owners.
fn write_records(
    args: &Args,
    sources: &[Source],
    lists: &[OwnerList],
    verdicts: &mut Verdicts,
) -> Result<(u64, u64)> {
    let mut out = Output::create(args.io.out.path())?;
    let out_name = out.name();
    let (mut vms, mut unowned) = (0u64, 0u64);
    let mut summaries: BTreeMap<String, NamespaceSummary> = BTreeMap::new();
    {
        let mut writer = Writer::new(&out_name, &mut out);
        let mut buffer = Vec::new();
        for source in sources {
            let mut input = source.open()?;
            while let Some(found) = input.next_line() {
                let (line, here) = found?;
                let verdict = verdicts
                    .next()?
                    .filter(|v| v.is_for(line))
                    .ok_or_else(|| changed(source))?;
                let has_fields = verdict.has_fields;
                let list = lists.get(verdict.list).ok_or_else(|| changed(source))?;
                vms += 1;
                if list.owners.is_empty() {
                    unowned += 1;
                }
                let Some(namespace) = &list.namespace else {
                    continue;
                };
                if !args.summary {
                    annotate(line, has_fields, list, namespace, &mut buffer)
                        .map_err(|e| e.context(here))?;
                    writer.write_raw(&buffer)?;
                    continue;
                }
                let vm: OwnershipView =
                    parse_vm_view(line).map_err(|e| Error::data(format!("{here}: {e}")))?;
                summarize(&mut summaries, namespace, list, &vm);
            }
        }
        if verdicts.next()?.is_some() {
            return Err(changed(sources.last().expect("one source at least")));
        }
        for s in summaries.values_mut() {
            let mut pairs: Vec<(String, String)> =
                s.vm_names.drain(..).zip(s.vm_ids.drain(..)).collect();
            pairs.sort();
            (s.vm_names, s.vm_ids) = pairs.into_iter().unzip();
            if args.format == Format::Jsonl {
                writer.write(s)?;
            }
        }
        writer.flush()?;
    }
    if args.format != Format::Jsonl {
        write_summary_rows(&mut out, &out_name, args.format, summaries.values())?;
    }
    out.commit()?;
    Ok((vms, unowned))
}

/// Counts one VM in its namespace's --summary.
fn summarize(
    summaries: &mut BTreeMap<String, NamespaceSummary>,
    namespace: &str,
    list: &OwnerList,
    vm: &OwnershipView,
) {
    let s = summaries
        .entry(namespace.to_string())
        .or_insert_with(|| NamespaceSummary {
            namespace: namespace.to_string(),
            owner_users: principals(&list.owners, OwnerKind::User),
            owner_groups: principals(&list.owners, OwnerKind::Group),
            ..Default::default()
        });
    s.vm_count += 1;
    s.vm_ids.push(vm.id.to_string());
    s.vm_names.push(vm.name.to_string());
}
