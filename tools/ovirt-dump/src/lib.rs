//! ovirt-dump: export an oVirt/RHV engine's inventory as one VM record (schema 1) per line.
//! Fetches the shared objects once and the VMs page by page with `follow`, then joins locally.

mod client;
mod inventory;
mod wire;

use clap::Parser;
use client::{Engine, Settings};
use common::jsonl::Writer;
use common::output::Output;
use common::{Error, ExitCode, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use inventory::{Lookups, VM_FOLLOW};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tracing::{info, warn};

const LONG_ABOUT: &str = "\
Export an oVirt/RHV engine's inventory as VM records: one JSON object per VM per line \
(schema 1, see liftkit-vm-record(5)), with names resolved, sizes in bytes and times in RFC 3339.

The password comes from the OVIRT_PASSWORD environment variable or from --password-file, never \
from the command line. ovirt-dump logs in with an OAuth token, logs in again once if the token \
expires, and logs out at the end.

Requests grow with pages, not with VMs: VMs are listed page by page (--page-size) with their \
disks, NICs, permissions and statistics embedded (`follow`), and networks, vNIC profiles, \
storage domains, clusters, data centers, hosts, users, groups, roles and tags are fetched once. \
Failed requests are retried with exponential backoff on 5xx answers, dropped connections and \
timeouts.

With -o FILE the export is written to a temporary file renamed over FILE only when the whole \
inventory was fetched, so a failed run (from cron, say) never replaces the last good export. \
ovirt-dump holds at most twice --concurrency pages of VMs, the shared objects and the ids of the \
VMs written in memory.

Exit status 1 (the export is still written): the engine counts other VMs at the end than were \
exported. VMs were created or removed during the export, and as pages shift a VM may have been \
missed; run it again for a consistent inventory.";

/// Examples, environment and related pages after the help.
pub const DOC: common::cli::Doc = common::cli::Doc {
    examples: &[
        (
            "Export every VM, the engine and user from OVIRT_URL, OVIRT_USER and OVIRT_CA",
            "OVIRT_PASSWORD=secret ovirt-dump -o inventory.jsonl",
        ),
        (
            "Export one cluster's VMs, reading the password from a file, into vm-select",
            "ovirt-dump --url https://engine.example.com/ovirt-engine/api --user admin@internal \\\n    --password-file ~/.ovirt-pass --ca-file ca.pem --search 'cluster=prod' | vm-select --status up",
        ),
    ],
    environment: &[(
        "OVIRT_PASSWORD",
        "the password, when --password-file is not given",
    )],
    see_also: &["vm-select(1)", "owner-group(1)", "liftkit-vm-record(5)"],
};

#[derive(Debug, Parser)]
#[command(
    name = "ovirt-dump",
    version,
    about = "Export an oVirt engine's VMs as JSON lines (one VM record per line)",
    long_about = LONG_ABOUT,
)]
pub struct Args {
    #[command(flatten)]
    pub engine: common::cli::Engine,

    /// Do not verify the engine's TLS certificate (insecure: for labs only; warns; a CA from
    /// OVIRT_CA is then not used)
    #[arg(long)]
    pub insecure: bool,

    #[command(flatten)]
    pub out: common::cli::OutputFile,

    /// Export only the VMs matching this engine search query, e.g. 'cluster=prod and status=up'
    #[arg(long, value_name = "QUERY")]
    pub search: Option<String>,

    /// VMs per page (the `max` of each list request)
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub page_size: u32,

    /// At most N requests in flight at once
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub concurrency: u32,

    /// Give up on a request after SECONDS (each attempt)
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub timeout: f64,

    /// Retry a failed request (5xx, dropped connection, timeout) up to N times, with exponential backoff
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retries: usize,

    #[command(flatten)]
    pub verbosity: common::cli::Verbosity,
}

pub fn command() -> clap::Command {
    common::cli::command(<Args as clap::CommandFactory>::command(), &DOC)
}

/// Checks what an engine search query must be to mean anything: not blank, quotes closed and
/// parentheses balanced (outside quotes). The engine answers a broken query with an error page
/// (a protocol error, 76, after login); this says what is wrong before anything is sent.
pub fn check_search(query: &str) -> std::result::Result<(), String> {
    if query.trim().is_empty() {
        return Err("an empty query (leave --search out to export every VM)".into());
    }
    let (mut depth, mut quote) = (0i64, None);
    for c in query.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') if depth == 0 => return Err("a ')' without its '('".into()),
            (None, ')') => depth -= 1,
            _ => {}
        }
    }
    match (quote, depth) {
        (Some(q), _) => Err(format!("a {q} quote is not closed")),
        (None, 0) => Ok(()),
        _ => Err("a '(' is not closed".into()),
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    common::tls::install_crypto_provider();
    args.verbosity.init_logging();
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(Error::usage(
            "--timeout: expected a positive number of seconds",
        ));
    }
    if let Some(search) = &args.search {
        check_search(search).map_err(|e| Error::usage(format!("--search {search:?}: {e}")))?;
    }
    let user = args.engine.user()?.to_string();
    let password = read_password(&args.engine)?;
    if args
        .engine
        .url
        .trim()
        .to_ascii_lowercase()
        .starts_with("http://")
    {
        // plan-gen refuses http for the Provider it writes; an export may run in a lab, so here
        // it is a warning, but never a silent one.
        warn!(
            "{}: plain http: the password and the session token cross the network unencrypted (use https)",
            args.engine.url
        );
    }
    let ca_file = args.engine.ca_file.as_ref().filter(|_| !args.insecure);
    let ca_pem = match ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            Error::config(format!("{}: cannot read the CA file: {e}", path.display()))
        })?),
        None => None,
    };
    if args.insecure {
        warn!("--insecure: the engine's TLS certificate is not verified");
    }
    let api_url = args.engine.url.trim_end_matches('/').to_string();
    let settings = Settings {
        api_url,
        user,
        password,
        ca_pem,
        insecure: args.insecure,
        timeout: Duration::from_secs_f64(args.timeout),
        retries: args.retries,
        concurrency: args.concurrency as usize,
    };
    let engine = Arc::new(Engine::new(settings)?);
    let output = Output::create(args.out.path())?;
    let runtime = common::tls::runtime()?;
    runtime.block_on(async {
        engine.login().await?;
        let result = export(&engine, &args, output).await;
        engine.logout().await;
        info!("{} HTTP requests", engine.request_count());
        result
    })
}

fn read_password(engine: &common::cli::Engine) -> Result<String> {
    let file = engine.password_file.as_deref();
    let Some(password) = engine.password()? else {
        return Err(Error::config(
            "no password: set OVIRT_PASSWORD or pass --password-file FILE",
        ));
    };
    if password.is_empty() {
        return Err(Error::config(match file {
            Some(path) => format!("{}: the password file is empty", path.display()),
            None => "OVIRT_PASSWORD is empty".to_string(),
        }));
    }
    Ok(password)
}

/// Exports the inventory; `Findings` when the engine's VM count at the end differs from what was
/// exported (VMs came or went meanwhile, and a VM may have been missed as pages shifted).
async fn export(engine: &Arc<Engine>, args: &Args, output: Output) -> Result<ExitCode> {
    let root = engine.get("").await?;
    let vm_total = summary_vm_total(engine, &root)?;
    let engine_version = wire::text(&root, "product_info.version.full_version")
        .ok()
        .flatten();
    if let Some(version) = &engine_version {
        info!(
            "engine {version}, {} VMs",
            vm_total.map_or("? ".into(), |n| n.to_string())
        );
    }
    let mut lookups = fetch_lookups(engine).await?;
    lookups.engine_version = engine_version;
    let lookups = Arc::new(lookups);

    // The summary counts every VM: it sizes the pages only when no search narrows the list.
    let expected = if args.search.is_none() {
        vm_total
    } else {
        None
    };
    let progress = progress_bar(args, expected);
    let mut writer = Writer::new(&output.name(), output);
    let written = fetch_vms(engine, args, &lookups, expected, &mut writer, &progress).await;
    progress.finish_and_clear();
    let written = written?;
    info!("{written} VMs exported");
    let output = writer.into_inner()?;
    output.commit()?;
    if expected.is_none() {
        return Ok(ExitCode::Ok);
    }
    let total_now = summary_vm_total(engine, &engine.get("").await?)?;
    match total_now {
        Some(now) if now != written => {
            warn!(
                "the engine counts {now} VMs now, {written} were exported: VMs were created or \
                 removed during the export, and one may have been missed as pages shifted; \
                 run ovirt-dump again for a consistent inventory"
            );
            Ok(ExitCode::Findings)
        }
        _ => Ok(ExitCode::Ok),
    }
}

/// The API summary's VM total (`None` when the engine gives no summary).
fn summary_vm_total(engine: &Engine, root: &Value) -> Result<Option<u64>> {
    wire::unsigned(root, "summary.vms.total")
        .map_err(|e| Error::protocol(format!("{}: malformed response: {e}", engine.api_url())))
}

fn progress_bar(args: &Args, total: Option<u64>) -> ProgressBar {
    if !args.verbosity.show_progress() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        "{spinner} VMs {pos}/{len} {wide_bar} {eta}"
    } else {
        "{spinner} VMs {pos}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Which collection a lookup fills.
#[derive(Debug, Clone, Copy)]
enum Lookup {
    DataCenters,
    Clusters,
    SystemPermissions,
    Hosts,
    Templates,
    Networks,
    VnicProfiles,
    StorageDomains,
    Users,
    Groups,
    Roles,
    Tags,
    NetworkFilters,
}

impl Lookup {
    fn path(self) -> &'static str {
        match self {
            Lookup::DataCenters => "/datacenters?follow=permissions",
            Lookup::Clusters => "/clusters?follow=permissions",
            Lookup::SystemPermissions => "/permissions",
            Lookup::Hosts => "/hosts",
            Lookup::Templates => "/templates",
            Lookup::Networks => "/networks",
            Lookup::VnicProfiles => "/vnicprofiles",
            Lookup::StorageDomains => "/storagedomains",
            Lookup::Users => "/users",
            Lookup::Groups => "/groups",
            Lookup::Roles => "/roles",
            Lookup::Tags => "/tags",
            Lookup::NetworkFilters => "/networkfilters",
        }
    }

    /// Collections an engine may lack (older versions, restricted users): a 404 leaves names out.
    fn optional(self) -> bool {
        matches!(
            self,
            Lookup::Templates | Lookup::NetworkFilters | Lookup::Tags
        )
    }
}

async fn fetch_lookups(engine: &Arc<Engine>) -> Result<Lookups> {
    use Lookup::*;
    let all = [
        DataCenters,
        Clusters,
        SystemPermissions,
        Hosts,
        Templates,
        Networks,
        VnicProfiles,
        StorageDomains,
        Users,
        Groups,
        Roles,
        Tags,
        NetworkFilters,
    ];
    let mut tasks = JoinSet::new();
    for lookup in all {
        let engine = Arc::clone(engine);
        tasks.spawn(async move {
            let body = if lookup.optional() {
                engine.get_optional(lookup.path()).await?
            } else {
                Some(engine.get(lookup.path()).await?)
            };
            Ok::<_, Error>((lookup, body))
        });
    }
    let mut bodies: Vec<(Lookup, Value)> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (lookup, body) =
            joined.map_err(|e| Error::new(ExitCode::Software, format!("task failed: {e}")))??;
        match body {
            Some(body) => bodies.push((lookup, body)),
            None => info!(
                "{}{}: not found; its names are left out",
                engine.api_url(),
                lookup.path()
            ),
        }
    }
    // Data centers first: clusters and networks name theirs.
    bodies.sort_by_key(|(lookup, _)| !matches!(lookup, DataCenters));
    let mut lookups = Lookups::default();
    for (lookup, body) in &bodies {
        let malformed = |e: String| {
            Error::protocol(format!(
                "{}{}: malformed response: {e}",
                engine.api_url(),
                lookup.path()
            ))
        };
        match lookup {
            DataCenters => lookups.add_data_centers(body).map_err(malformed)?,
            Clusters => lookups.add_clusters(body).map_err(malformed)?,
            SystemPermissions => {
                lookups.system_permissions =
                    inventory::permission_ids(body, "").map_err(malformed)?
            }
            Hosts => lookups.hosts = inventory::names(body, "host").map_err(malformed)?,
            Templates => {
                lookups.templates = inventory::names(body, "template").map_err(malformed)?
            }
            Networks => {}
            VnicProfiles => lookups.add_vnic_profiles(body).map_err(malformed)?,
            StorageDomains => {
                lookups.storage_domains =
                    inventory::names(body, "storage_domain").map_err(malformed)?
            }
            Users => lookups.add_users(body).map_err(malformed)?,
            Groups => lookups.add_groups(body).map_err(malformed)?,
            Roles => lookups.roles = inventory::names(body, "role").map_err(malformed)?,
            Tags => lookups.tags = inventory::names(body, "tag").map_err(malformed)?,
            NetworkFilters => {
                lookups.network_filters =
                    inventory::names(body, "network_filter").map_err(malformed)?
            }
        }
    }
    // Networks need every data center's name, whatever order the answers came in.
    for (lookup, body) in &bodies {
        if matches!(lookup, Networks) {
            lookups.add_networks(body).map_err(|e| {
                Error::protocol(format!(
                    "{}{}: malformed response: {e}",
                    engine.api_url(),
                    lookup.path()
                ))
            })?;
        }
    }
    if lookups.profiles_need_qos_names() {
        fetch_qos(engine, &mut lookups).await?;
    }
    lookups.resolve_profiles();
    if lookups.profiles_need_filter_names() {
        info!("some network filters have no name; they are left out");
    }
    fetch_missing_permissions(engine, &mut lookups).await?;
    Ok(lookups)
}

/// QoS names live under their data center (`/datacenters/{id}/qoss`): one request per data center.
async fn fetch_qos(engine: &Arc<Engine>, lookups: &mut Lookups) -> Result<()> {
    let mut ids: Vec<String> = lookups.data_centers.keys().cloned().collect();
    ids.sort();
    for id in ids {
        let path = format!("/datacenters/{}/qoss", encode(&id));
        if let Some(body) = engine.get_optional(&path).await? {
            let qos = inventory::names(&body, "qos").map_err(|e| {
                Error::protocol(format!(
                    "{}{path}: malformed response: {e}",
                    engine.api_url()
                ))
            })?;
            lookups.qos.extend(qos);
        }
    }
    Ok(())
}

/// When the engine did not embed permissions in the cluster and data center lists (`follow`
/// unsupported), ask each one.
async fn fetch_missing_permissions(engine: &Arc<Engine>, lookups: &mut Lookups) -> Result<()> {
    let wanted: Vec<(bool, String)> = lookups
        .data_centers_without_permissions()
        .into_iter()
        .map(|id| (true, id))
        .chain(
            lookups
                .clusters_without_permissions()
                .into_iter()
                .map(|id| (false, id)),
        )
        .collect();
    let mut tasks = JoinSet::new();
    for (is_dc, id) in wanted {
        let engine = Arc::clone(engine);
        tasks.spawn(async move {
            let kind = if is_dc { "datacenters" } else { "clusters" };
            let path = format!("/{kind}/{}/permissions", encode(&id));
            let body = engine
                .get_optional(&path)
                .await?
                .unwrap_or_else(|| Value::Object(Default::default()));
            let ids = inventory::permission_ids(&body, "").map_err(|e| {
                Error::protocol(format!(
                    "{}{path}: malformed response: {e}",
                    engine.api_url()
                ))
            })?;
            Ok::<_, Error>((is_dc, id, ids))
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (is_dc, id, ids) =
            joined.map_err(|e| Error::new(ExitCode::Software, format!("task failed: {e}")))??;
        if is_dc {
            lookups.data_center_permissions.insert(id, ids);
        } else {
            lookups.cluster_permissions.insert(id, ids);
        }
    }
    Ok(())
}

fn page_path(args: &Args, page: u64) -> String {
    let query = match &args.search {
        Some(search) if search.to_ascii_lowercase().contains("sortby") => {
            format!("{search} page {page}")
        }
        Some(search) => format!("{search} sortby name page {page}"),
        None => format!("sortby name page {page}"),
    };
    format!(
        "/vms?search={}&max={}&follow={}",
        encode(&query),
        args.page_size,
        encode(VM_FOLLOW)
    )
}

/// Lists the VMs page by page and writes their records in page order. When the total is known,
/// its pages are fetched concurrently (at most twice --concurrency pages ahead of the writing);
/// after them (or without a total) one page at a time until a short or empty page.
async fn fetch_vms<W: std::io::Write>(
    engine: &Arc<Engine>,
    args: &Args,
    lookups: &Arc<Lookups>,
    expected: Option<u64>,
    writer: &mut Writer<W>,
    progress: &ProgressBar,
) -> Result<u64> {
    let page_size = u64::from(args.page_size);
    let known_pages = expected.map_or(0, |total| total.div_ceil(page_size));
    let mut seen: HashSet<String> = HashSet::new();
    let mut written = 0u64;
    let mut tasks = JoinSet::new();
    let spawn_page = |tasks: &mut JoinSet<Result<(u64, Vec<common::record::VmRecord>)>>,
                      page: u64| {
        let engine = Arc::clone(engine);
        let lookups = Arc::clone(lookups);
        let path = page_path(args, page);
        tasks.spawn(async move {
            let body = engine.get(&path).await?;
            let malformed = |e: String| {
                Error::protocol(format!(
                    "{}{path}: malformed response: {e}",
                    engine.api_url()
                ))
            };
            let vms = wire::list(&body, "", "vm").map_err(malformed)?;
            let records = vms
                .into_iter()
                .map(|vm| lookups.vm_record(vm))
                .collect::<Result<Vec<_>, _>>();
            Ok((page, records.map_err(malformed)?))
        });
    };
    // Pages are fetched at most `window` ahead of the next one to write: memory holds that many
    // pages, whatever the inventory's size, and a slow page cannot make the others pile up.
    let window = 2 * u64::from(args.concurrency.max(1));
    let mut next_page = 1;
    while next_page <= known_pages && next_page <= window {
        spawn_page(&mut tasks, next_page);
        next_page += 1;
    }
    if known_pages == 0 {
        spawn_page(&mut tasks, 1);
        next_page = 2;
    }
    let mut ready: BTreeMap<u64, Vec<common::record::VmRecord>> = BTreeMap::new();
    let mut next_to_write = 1u64;
    let mut last_full = true;
    while let Some(joined) = tasks.join_next().await {
        let (page, records) = joined
            .map_err(|e| Error::new(ExitCode::Software, format!("task failed: {e}")))?
            .map_err(|e| incomplete(e, written, expected))?;
        ready.insert(page, records);
        while let Some(records) = ready.remove(&next_to_write) {
            last_full = records.len() as u64 >= page_size;
            for record in records {
                // Pages can shift while VMs come and go; a VM seen twice is written once.
                if seen.insert(record.id.clone()) {
                    writer.write(&record)?;
                    written += 1;
                    progress.inc(1);
                }
            }
            next_to_write += 1;
        }
        while next_page <= known_pages && next_page < next_to_write + window {
            spawn_page(&mut tasks, next_page);
            next_page += 1;
        }
        // All pages so far are written: continue while the last one was full.
        if tasks.is_empty() && next_to_write == next_page && last_full {
            spawn_page(&mut tasks, next_page);
            next_page += 1;
        }
    }
    writer.flush()?;
    Ok(written)
}

/// A page that could not be fetched: say how much of the export is missing.
fn incomplete(err: Error, written: u64, expected: Option<u64>) -> Error {
    if err.code != ExitCode::Unavailable {
        return err;
    }
    let of = expected.map(|n| format!(" of {n}")).unwrap_or_default();
    Error::new(
        err.code,
        format!(
            "{}; export incomplete: {written}{of} VMs fetched",
            err.message
        ),
    )
}

/// Percent-encodes a query value (spaces as %20, which every engine decodes).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec![
            "ovirt-dump",
            "--url",
            "https://e/ovirt-engine/api",
            "--user",
            "admin@internal",
        ];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).unwrap()
    }

    #[test]
    fn page_queries_sort_by_name_and_pass_searches_through() {
        let path = page_path(&args(&["--page-size", "50"]), 3);
        assert!(
            path.starts_with(
                "/vms?search=sortby%20name%20page%203&max=50&follow=disk_attachments.disk%2C"
            ),
            "{path}"
        );
        let path = page_path(&args(&["--search", "cluster=prod"]), 1);
        assert!(
            path.starts_with("/vms?search=cluster%3Dprod%20sortby%20name%20page%201&"),
            "{path}"
        );
    }

    #[test]
    fn the_password_is_never_an_argument() {
        let err =
            Args::try_parse_from(["ovirt-dump", "--url", "u", "--user", "x", "--password", "p"])
                .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        command().debug_assert();
    }
}
