//! The live run: server-side apply, then Plans and Migrations through the watch API, the
//! scheduler deciding the starts, events on stdout, a summary on stderr. No state of its own: what
//! has run is read back from the cluster, so a rerun picks up where the last one stopped.

use crate::adapt::{Controller, Meter, PlanView};
use crate::cutover::Placement;
use crate::events::Events;
use crate::forklift;
use crate::kubeerr;
use crate::manifest::{self, FORKLIFT_API_VERSION, Object, Plan};
use crate::progress::Progress;
use crate::refusals::{self, Refusals};
use crate::sched::{PlanKey, Scheduler, State};
use crate::signals::Interrupt;
use crate::status::{self, Outcome};
use crate::{Args, human_secs};
use common::untrusted::for_terminal;
use common::{Error, ExitCode, Result};
use futures::{FutureExt, StreamExt};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

mod session;

pub const FIELD_MANAGER: &str = "liftkit";
/// Label on each Migration plan-run creates: the plan it runs.
pub const PLAN_LABEL: &str = "liftkit.io/plan";

/// How long a request may keep failing with a transient error (API server restarting) before
/// plan-run gives up.
const TRANSIENT_PATIENCE: Duration = Duration::from_secs(120);
/// How long starts wait for every namespace's Plans to be listed once; past it, plans known to be
/// Ready start and the namespaces not listed are named.
const LIST_PATIENCE: Duration = Duration::from_secs(60);

/// A client for `config` (`--kubeconfig`, `--context`, `-n`), checked by asking the server's version.
pub async fn client(config: kube::Config) -> Result<kube::Client> {
    let url = config.cluster_url.to_string();
    let url = url.trim_end_matches('/').to_string();
    let client = kube::Client::try_from(config).map_err(|e| kubeerr::error(&url, &e))?;
    client
        .apiserver_version()
        .await
        .map_err(|e| kubeerr::error(&url, &e))?;
    Ok(client)
}

/// Calls `f` until it succeeds, fails for good, or has failed transiently for too long.
async fn with_retries<T, F, Fut>(what: &str, mut f: F) -> std::result::Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, kube::Error>>,
{
    let started = Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        match f().await {
            Err(e) if kubeerr::is_transient(&e) && started.elapsed() < TRANSIENT_PATIENCE => {
                tracing::info!("{what}: {} (retrying)", kubeerr::describe(&e));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

/// Discovery of kinds by apiVersion and kind, asked once each.
#[derive(Default)]
struct Kinds {
    known: HashMap<(String, String), (ApiResource, ApiCapabilities)>,
}

impl Kinds {
    async fn get(
        &mut self,
        client: &kube::Client,
        api_version: &str,
        kind: &str,
    ) -> std::result::Result<(ApiResource, ApiCapabilities), kube::Error> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(found) = self.known.get(&key) {
            return Ok(found.clone());
        }
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let found = with_retries(&format!("discovery of {kind}"), || {
            kube::discovery::pinned_kind(client, &gvk)
        })
        .await?;
        self.known.insert(key, found.clone());
        Ok(found)
    }

    async fn api(
        &mut self,
        client: &kube::Client,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> std::result::Result<Api<DynamicObject>, kube::Error> {
        let (resource, caps) = self.get(client, api_version, kind).await?;
        Ok(match (caps.scope, namespace) {
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
            (Scope::Namespaced, None) => Api::default_namespaced_with(client.clone(), &resource),
            (Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
        })
    }
}

async fn apply_all(
    args: &Args,
    client: &kube::Client,
    kinds: &mut Kinds,
    objects: &[Object],
    events: &mut Events,
) -> Result<()> {
    let mut params = PatchParams::apply(FIELD_MANAGER);
    params.force = args.force_conflicts;
    params.dry_run = args.dry_run;
    for object in manifest::apply_order(objects) {
        let what = format!(
            "{}: {} {}{}",
            object.location,
            object.kind(),
            object
                .namespace()
                .map(|n| format!("{n}/"))
                .unwrap_or_default(),
            object.name()
        );
        let api = kinds
            .api(
                client,
                object.api_version(),
                object.kind(),
                object.namespace(),
            )
            .await
            .map_err(|e| match e {
                kube::Error::Discovery(_) => Error::data(format!(
                    "{what}: the API server does not serve {} {} (are the CRDs installed?)",
                    object.api_version(),
                    object.kind()
                )),
                e => kubeerr::error(&what, &e),
            })?;
        let mut body = object.value.clone();
        if let Some(map) = body.as_object_mut() {
            map.remove("status");
        }
        let patch = Patch::Apply(&body);
        with_retries(&what, || api.patch(object.name(), &params, &patch))
            .await
            .map_err(|e| {
                let mut err = kubeerr::error(&format!("{what}: apply"), &e);
                if matches!(&e, kube::Error::Api(s) if s.code == 409) {
                    err.message
                        .push_str(" (another field manager owns it; --force-conflicts takes over)");
                }
                err
            })?;
        events.emit(
            jiff::Timestamp::now(),
            "applied",
            None,
            json!({"kind": object.kind(), "name": object.name(),
                   "namespace": object.namespace(), "dry_run": args.dry_run}),
        )?;
    }
    Ok(())
}

/// Applies the input's Namespace `ns` (where plan-run takes its Lease: a Lease cannot be created
/// in a namespace that does not exist yet) and returns the objects left to apply; without such a
/// Namespace in the input, all of them.
pub async fn apply_lease_namespace(
    args: &Args,
    client: &kube::Client,
    objects: &[Object],
    ns: &str,
) -> Result<Vec<Object>> {
    let (first, rest): (Vec<Object>, Vec<Object>) = objects
        .iter()
        .cloned()
        .partition(|o| o.kind() == "Namespace" && o.api_version() == "v1" && o.name() == ns);
    if !first.is_empty() {
        let mut events = Events::stdout(true);
        apply_all(args, client, &mut Kinds::default(), &first, &mut events).await?;
    }
    Ok(rest)
}

/// What plan-run knows of one plan.
struct Tracked {
    plan: Plan,
    object: Option<Value>,
    uid: Option<String>,
    /// Highest attempt number among the plan's Migrations.
    attempt: u32,
    /// The Migration being followed, and when plan-run began to follow it.
    migration: Option<String>,
    following_since: Option<Instant>,
    /// Per VM: bytes done last reported, and whether its end was reported.
    reported: HashMap<String, (u64, bool)>,
    result: Option<PlanResult>,
    /// Last VM statuses seen (for the summary and for cancel).
    vms: Vec<status::VmStatus>,
    retry_at: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PlanResult {
    Finished(Outcome),
    /// Succeeded in an earlier run.
    AlreadySucceeded,
    /// The last Migration ended so and --retry-failed was not given.
    LeftFailed(Outcome),
    Blocked,
    StartFailed,
    /// The Plan or the running Migration was deleted (named) while plan-run followed it.
    Deleted(String),
}

/// What a watch stream watches: Plans or Migrations, of one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Watched {
    Plans(String),
    Migrations(String),
    /// Events of a target namespace (refusals of what Forklift creates there).
    Events(String),
}

impl std::fmt::Display for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Watched::Plans(ns) => write!(f, "Plans in namespace {ns}"),
            Watched::Migrations(ns) => write!(f, "Migrations in namespace {ns}"),
            Watched::Events(ns) => write!(f, "Events in namespace {ns}"),
        }
    }
}

/// What the merged watch streams yield.
type WatchItem = (
    Watched,
    std::result::Result<watcher::Event<DynamicObject>, watcher::Error>,
);

/// A relist of a namespace's Migrations in progress: when it began, and the names it has listed.
struct Relist {
    began: Instant,
    names: BTreeSet<String>,
}

/// Applies `objects`, then runs `plans` to their end (see the module's doc).
pub async fn run(
    args: &Args,
    client: kube::Client,
    objects: &[Object],
    plans: Vec<Plan>,
) -> Result<ExitCode> {
    let begun = Instant::now();
    // Registered first: a signal from here on ends with the summary and exit 130 or 143 (one
    // during the apply, once the apply is done; tokio's ctrl_c() would register only when awaited).
    let mut ctrl_c = Interrupt::register()
        .map_err(|e| Error::new(ExitCode::Software, format!("cannot catch signals: {e}")))?;
    let mut events = Events::stdout(true);
    let mut kinds = Kinds::default();
    check_forklift_version(&client, objects, &plans).await;
    apply_all(args, &client, &mut kinds, objects, &mut events).await?;
    if let Some(signal) = ctrl_c.recv().now_or_never() {
        eprintln!(
            "plan-run: {} after the apply: nothing started",
            signal.word()
        );
        return Ok(signal.exit_code());
    }
    if args.dry_run {
        eprintln!(
            "plan-run: dry run: {} object(s) accepted by the API server, nothing stored, nothing started",
            objects.len()
        );
        return Ok(ExitCode::Ok);
    }
    if plans.is_empty() {
        eprintln!(
            "plan-run: {} object(s) applied; no Plan to run",
            objects.len()
        );
        return Ok(ExitCode::Ok);
    }
    session::Session::new(args, client, &mut kinds, plans, begun, events)
        .await?
        .run(&mut ctrl_c)
        .await
}

/// --bandwidth auto in a live run: the controller, fed from the Migrations' status.
struct Auto {
    controller: Controller,
    meter: Meter,
    last_action: Option<&'static str>,
}

impl Auto {
    /// Samples what Forklift reports (seconds since `begun`), reports a decision that changes
    /// the limit (or the kind of action) as a `concurrency` event, and sets the scheduler's limit.
    fn sample(
        &mut self,
        begun: Instant,
        tracked: &BTreeMap<PlanKey, Tracked>,
        scheduler: &mut Scheduler,
        events: &mut Events,
    ) -> Result<()> {
        let views = tracked.iter().map(|(key, t)| PlanView {
            plan: key.to_string(),
            vm_count: t.plan.vms.len(),
            disk_count: t.plan.disks,
            vms: &t.vms,
            running: scheduler.state(key) == Some(State::Running),
        });
        let (bytes, copying, active) = self.meter.read(views);
        let now = begun.elapsed().as_secs_f64();
        let demand = scheduler.queued() > 0;
        if let Some(decision) = self.controller.sample(now, bytes, copying, demand)
            && (decision.limit != decision.previous || self.last_action != Some(decision.action))
        {
            self.last_action = Some(decision.action);
            events.emit(
                jiff::Timestamp::now(),
                "concurrency",
                None,
                crate::adapt::event_fields(&decision, scheduler.running_plans()),
            )?;
        }
        scheduler.set_disk_limit(self.controller.disk_limit(active));
        Ok(())
    }
}

/// Watches of the Events in the plans' target namespaces, and the namespaces whose Events the user
/// may not list (named after the summary, not watched: Events explain a stuck VM, they decide
/// nothing, and a run that fails for another reason keeps its one-line error).
async fn event_watches(
    client: &kube::Client,
    tracked: &BTreeMap<PlanKey, Tracked>,
) -> (
    Vec<futures::stream::BoxStream<'static, WatchItem>>,
    Vec<String>,
) {
    let targets: BTreeSet<&str> = tracked
        .values()
        .filter_map(|t| t.plan.target_namespace.as_deref())
        .collect();
    let resource = ApiResource::erase::<k8s_openapi::api::core::v1::Event>(&());
    let (mut streams, mut unreadable) = (Vec::new(), Vec::new());
    for ns in targets {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
        if let Err(e) = api.list(&ListParams::default().limit(1)).await {
            tracing::info!(
                "cannot list Events in namespace {ns}: {}",
                kubeerr::describe(&e)
            );
            unreadable.push(ns.to_string());
            continue;
        }
        let watched = Watched::Events(ns.to_string());
        streams.push(
            watcher(api, watcher::Config::default())
                .default_backoff()
                .map(move |e| (watched.clone(), e))
                .boxed(),
        );
    }
    (streams, unreadable)
}

/// A Warning Event in a target namespace: when it reports a refusal, an event naming the
/// namespace, the object and the message, and a line on the terminal.
fn on_event(
    value: &Value,
    tracked: &BTreeMap<PlanKey, Tracked>,
    refusals: &mut Refusals,
    events: &mut Events,
    progress: &mut Progress,
) -> Result<()> {
    let Some(refusal) = refusals.observe(value) else {
        return Ok(());
    };
    let plans: Vec<&str> = tracked
        .values()
        .filter(|t| t.plan.target_namespace.as_deref() == Some(refusal.namespace.as_str()))
        .map(|t| t.plan.key.name.as_str())
        .collect();
    report_refusal(refusal, &plans, events, progress)
}

/// One refusal as an event on stdout and a line on the terminal.
fn report_refusal(
    refusal: &refusals::Refusal,
    plans: &[&str],
    events: &mut Events,
    progress: &mut Progress,
) -> Result<()> {
    events.emit(
        jiff::Timestamp::now(),
        "refusal",
        None,
        json!({"target_namespace": refusal.namespace, "object": refusal.object,
               "cause": refusal.cause.as_str(), "reason": refusal.reason,
               "message": refusal.message, "plans": plans}),
    )?;
    progress.println(&format!(
        "plan-run: warning: {}: {} refused ({}): {}",
        for_terminal(&refusal.namespace),
        for_terminal(&refusal.object),
        refusal.cause.as_str(),
        for_terminal(&refusal.message)
    ));
    Ok(())
}

/// The VMs that did not migrate, by plan, after the summary, and how to start them again.
fn report_failed_vms(tracked: &BTreeMap<PlanKey, Tracked>) {
    let mut count = 0;
    let mut lines = Vec::new();
    for (key, t) in tracked {
        let failed: Vec<String> = t
            .vms
            .iter()
            .filter_map(|vm| {
                let how = match vm.outcome {
                    Some(Outcome::Failed) => vm.error.as_deref().unwrap_or("failed"),
                    Some(Outcome::Canceled) => "canceled",
                    _ => return None,
                };
                Some(format!(
                    "{} ({})",
                    for_terminal(&vm.name),
                    for_terminal(how)
                ))
            })
            .collect();
        if !failed.is_empty() {
            count += failed.len();
            lines.push(format!(
                "  {}: {}",
                for_terminal(&key.to_string()),
                failed.join(", ")
            ));
        }
    }
    if lines.is_empty() {
        return;
    }
    eprintln!(
        "plan-run: {count} VM(s) did not migrate; rerun with --retry-failed to start them again (Forklift runs again only the VMs that did not succeed):"
    );
    for line in lines {
        eprintln!("{line}");
    }
}

/// The refusals of the run, after the summary: what to fix before `--retry-failed`.
fn report_refusals(refusals: &Refusals) {
    if refusals.list.is_empty() {
        return;
    }
    eprintln!(
        "plan-run: warning: {} refusal(s) in the target namespaces held migrations back; fix them, then rerun with --retry-failed:",
        refusals.list.len()
    );
    for r in &refusals.list {
        eprintln!(
            "  {}: {} ({}): {}",
            for_terminal(&r.namespace),
            for_terminal(&r.object),
            r.cause.as_str(),
            for_terminal(&r.message)
        );
    }
}

fn local_now() -> jiff::Zoned {
    jiff::Zoned::now()
}

fn local_minute() -> u32 {
    local_second() / 60
}

fn local_second() -> u32 {
    let now = local_now();
    now.hour() as u32 * 3600 + now.minute() as u32 * 60 + now.second() as u32
}

/// The warm plans' cutovers (crate::cutover), placed from now on in the local time zone; a plan
/// that does not fit its window is said on stderr (and by its `cutover` event, fits: false).
fn warm_cutovers(args: &Args, plans: &[Plan]) -> Result<BTreeMap<PlanKey, Placement>> {
    if !plans.iter().any(|p| p.warm) {
        return Ok(BTreeMap::new());
    }
    let usage = if args.records.is_empty() {
        BTreeMap::new()
    } else {
        crate::record_usage(&args.records)?
    };
    let zone = jiff::tz::TimeZone::system();
    let placed = crate::place_cutovers(args, plans, &usage, None, jiff::Timestamp::now(), &zone);
    if !args.verbosity.quiet {
        for p in placed.values().filter(|p| !p.fits) {
            eprintln!("{}", crate::cutover::does_not_fit(p));
        }
    }
    Ok(placed)
}

/// Sets a running Migration's `spec.cutover` to the placed one (merge patch), unless
/// `cutover::needs_patch` says to leave it: Forklift v2.12.5 re-reads the Migration at each
/// reconcile (controller.go `activeMigration`; a spec change bumps the generation, which
/// `MigrationPredicate.Update` lets through) and compares `spec.cutover` with now in
/// CopyingPaused (migration.go `(*Migration).execute`). A failure is said and left: the Migration
/// runs on with the cutover it has.
async fn patch_cutover(
    api: &Api<DynamicObject>,
    name: &str,
    placement: &Placement,
    events: &mut Events,
) -> Result<()> {
    let plan = &placement.plan;
    let current = match with_retries(&format!("get Migration {name}"), || api.get(name)).await {
        Ok(m) => m.data["spec"]["cutover"].as_str().map(str::to_string),
        Err(e) => {
            eprintln!(
                "plan-run: {plan}: cannot read Migration {name}: {}",
                kubeerr::describe(&e)
            );
            return Ok(());
        }
    };
    let now = jiff::Timestamp::now();
    if !crate::cutover::needs_patch(current.as_deref(), placement.cutover, now) {
        return Ok(());
    }
    let patch = Patch::Merge(json!({"spec": {"cutover": placement.cutover.to_string()}}));
    let params = PatchParams::default();
    match with_retries(&format!("patch Migration {name}"), || {
        api.patch(name, &params, &patch)
    })
    .await
    {
        Ok(_) => events.emit(
            now,
            "cutover",
            Some(plan),
            crate::cutover::event_fields(placement, name, true),
        ),
        Err(e) => {
            eprintln!(
                "plan-run: {plan}: cannot set the cutover of Migration {name}: {}",
                kubeerr::describe(&e)
            );
            Ok(())
        }
    }
}

/// Creates `<plan>-<attempt>` (with `spec.cutover` for a warm plan); Ok(false) when it exists
/// already (another plan-run made it).
async fn create_migration(
    api: &Api<DynamicObject>,
    plan: &PlanKey,
    uid: Option<&str>,
    name: &str,
    cutover: Option<&Placement>,
) -> std::result::Result<bool, kube::Error> {
    let mut plan_ref = json!({"name": plan.name, "namespace": plan.namespace});
    let mut metadata = json!({
        "name": name,
        "namespace": plan.namespace,
        "labels": {PLAN_LABEL: plan.name, common::k8s::MANAGED_BY_LABEL: common::k8s::MANAGED_BY},
    });
    if let Some(uid) = uid {
        plan_ref["uid"] = Value::from(uid);
        metadata["ownerReferences"] = json!([{"apiVersion": FORKLIFT_API_VERSION, "kind": "Plan",
                                              "name": plan.name, "uid": uid}]);
    }
    let body = json!({
        "apiVersion": FORKLIFT_API_VERSION,
        "kind": "Migration",
        "metadata": metadata,
        "spec": {"plan": plan_ref},
    });
    let mut body = body;
    if let Some(c) = cutover {
        body["spec"]["cutover"] = Value::from(c.cutover.to_string());
    }
    let object: DynamicObject = serde_json::from_value(body).map_err(kube::Error::SerdeError)?;
    let params = PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.into()),
    };
    match with_retries(&format!("create Migration {name}"), || {
        api.create(&params, &object)
    })
    .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

fn plan_key(value: &Value) -> PlanKey {
    PlanKey {
        namespace: value["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        name: value["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

fn on_plan(
    value: &Value,
    tracked: &mut BTreeMap<PlanKey, Tracked>,
    scheduler: &mut Scheduler,
    events: &mut Events,
) -> Result<()> {
    let key = plan_key(value);
    let Some(t) = tracked.get_mut(&key) else {
        return Ok(());
    };
    t.uid = value["metadata"]["uid"].as_str().map(str::to_string);
    t.object = Some(value.clone());
    if scheduler.state(&key) == Some(State::Waiting) && status::plan_ready(value) {
        scheduler.ready(&key);
        events.emit(
            jiff::Timestamp::now(),
            "ready",
            Some(&key),
            json!({"vm_count": t.plan.vms.len(), "total_bytes": t.plan.bytes}),
        )?;
    }
    Ok(())
}

/// The plan a Migration object runs: its namespace and `spec.plan.name`.
fn migration_plan_key(value: &Value) -> Option<PlanKey> {
    Some(PlanKey {
        namespace: value["metadata"]["namespace"].as_str()?.to_string(),
        name: value["spec"]["plan"]["name"].as_str()?.to_string(),
    })
}

fn on_migration(
    value: &Value,
    tracked: &mut BTreeMap<PlanKey, Tracked>,
    scheduler: &mut Scheduler,
    refusals: &mut Refusals,
    events: &mut Events,
    progress: &mut Progress,
) -> Result<()> {
    let Some(key) = migration_plan_key(value) else {
        return Ok(());
    };
    let Some(t) = tracked.get_mut(&key) else {
        return Ok(());
    };
    let name = value["metadata"]["name"].as_str().unwrap_or_default();
    if t.migration.as_deref() != Some(name) {
        // Someone else started this plan while we waited: follow theirs, start none.
        let waiting = matches!(scheduler.state(&key), Some(State::Waiting | State::Queued));
        if waiting && status::outcome(value).is_none() {
            scheduler.running(&key);
            t.migration = Some(name.to_string());
            t.following_since = Some(Instant::now());
            t.attempt = t.attempt.max(status::attempt(&key.name, name).unwrap_or(0));
            events.emit(
                jiff::Timestamp::now(),
                "attached",
                Some(&key),
                json!({"migration": name, "running_plans": scheduler.running_plans(),
                       "inflight_bytes": scheduler.inflight_bytes()}),
            )?;
        } else {
            return Ok(());
        }
    }
    if scheduler.state(&key) != Some(State::Running) {
        return Ok(());
    }
    let vms = status::vms(value);
    let now = jiff::Timestamp::now();
    let (mut done, mut total) = (0u64, 0u64);
    for vm in &vms {
        done += vm.bytes_done;
        total += vm.bytes_total;
        let entry = t.reported.entry(vm.id.clone()).or_insert((u64::MAX, false));
        if entry.1 {
            continue;
        }
        let fields = json!({"migration": name, "vm_id": vm.id, "vm_name": vm.name, "phase": vm.phase,
                            "bytes_done": vm.bytes_done, "bytes_total": vm.bytes_total});
        match vm.outcome {
            Some(outcome) => {
                entry.1 = true;
                let mut fields = fields;
                if let Some(error) = &vm.error {
                    fields["error"] = Value::from(error.clone());
                }
                let event = match outcome {
                    Outcome::Succeeded => "vm-succeeded",
                    Outcome::Failed => "vm-failed",
                    Outcome::Canceled => "vm-canceled",
                };
                events.emit(now, event, Some(&key), fields)?;
                if let (Some(error), Some(target)) = (&vm.error, &t.plan.target_namespace)
                    && let Some(refusal) = refusals.observe_vm_error(target, error)
                {
                    report_refusal(refusal, &[key.name.as_str()], events, progress)?;
                }
            }
            None if entry.0 != vm.bytes_done && vm.bytes_total > 0 => {
                entry.0 = vm.bytes_done;
                events.emit(now, "vm-progress", Some(&key), fields)?;
            }
            None => {}
        }
    }
    if !vms.is_empty() {
        t.vms = vms;
    }
    progress.set(&key.to_string(), done, total.max(t.plan.bytes));
    if let Some(outcome) = status::outcome(value) {
        let count = |o: Outcome| t.vms.iter().filter(|v| v.outcome == Some(o)).count();
        scheduler.done(&key);
        t.result = Some(PlanResult::Finished(outcome));
        progress.finish(&key.to_string(), outcome.as_str());
        events.emit(
            now,
            "plan-finished",
            Some(&key),
            json!({"migration": name, "outcome": outcome.as_str(),
                   "vms_succeeded": count(Outcome::Succeeded), "vms_failed": count(Outcome::Failed),
                   "vms_canceled": count(Outcome::Canceled),
                   "running_plans": scheduler.running_plans(), "inflight_bytes": scheduler.inflight_bytes()}),
        )?;
    }
    Ok(())
}

/// A watch error that reconnecting will not mend: plan-run may not list or watch what it follows.
fn watch_denied(err: &watcher::Error) -> Option<&kube::Error> {
    match err {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e)
            if kubeerr::code(e) == ExitCode::NoPerm =>
        {
            Some(e)
        }
        _ => None,
    }
}

/// A Plan, or the Migration plan-run follows, was deleted: the plan ends as deleted (it would
/// otherwise be waited for forever).
fn on_deleted(
    watched: &Watched,
    value: &Value,
    tracked: &mut BTreeMap<PlanKey, Tracked>,
    scheduler: &mut Scheduler,
    events: &mut Events,
    progress: &mut Progress,
) -> Result<()> {
    let name = value["metadata"]["name"].as_str().unwrap_or_default();
    let (key, what) = match watched {
        Watched::Events(_) => return Ok(()),
        Watched::Plans(_) => (plan_key(value), format!("Plan {name}")),
        Watched::Migrations(_) => {
            let Some(key) = migration_plan_key(value) else {
                return Ok(());
            };
            let followed = tracked
                .get(&key)
                .is_some_and(|t| t.migration.as_deref() == Some(name));
            if !followed {
                return Ok(());
            }
            (key, format!("Migration {name}"))
        }
    };
    end_as_deleted(&key, what, tracked, scheduler, events, progress)
}

/// A relist of a namespace's Migrations (after a reconnect) that lacks the Migration a running
/// plan follows: it was deleted while the watch was away. Only Migrations followed since before
/// the relist began count: a newer one may have been created after the list was taken.
fn on_relisted(
    namespace: &str,
    relist: &Relist,
    tracked: &mut BTreeMap<PlanKey, Tracked>,
    scheduler: &mut Scheduler,
    events: &mut Events,
    progress: &mut Progress,
) -> Result<()> {
    let gone: Vec<(PlanKey, String)> = tracked
        .iter()
        .filter(|(key, t)| {
            key.namespace == namespace
                && scheduler.state(key) == Some(State::Running)
                && t.following_since.is_some_and(|since| since < relist.began)
        })
        .filter_map(|(key, t)| {
            let name = t.migration.as_ref()?;
            (!relist.names.contains(name)).then(|| (key.clone(), format!("Migration {name}")))
        })
        .collect();
    for (key, what) in gone {
        end_as_deleted(&key, what, tracked, scheduler, events, progress)?;
    }
    Ok(())
}

fn end_as_deleted(
    key: &PlanKey,
    what: String,
    tracked: &mut BTreeMap<PlanKey, Tracked>,
    scheduler: &mut Scheduler,
    events: &mut Events,
    progress: &mut Progress,
) -> Result<()> {
    let Some(t) = tracked.get_mut(key) else {
        return Ok(());
    };
    if t.result.is_some() || scheduler.state(key) == Some(State::Done) {
        return Ok(());
    }
    scheduler.done(key);
    progress.finish(&key.to_string(), "deleted");
    tracing::warn!(
        "{}: {} was deleted while plan-run followed it",
        for_terminal(&key.to_string()),
        for_terminal(&what)
    );
    events.emit(
        jiff::Timestamp::now(),
        "deleted",
        Some(key),
        json!({"object": what, "running_plans": scheduler.running_plans(),
               "inflight_bytes": scheduler.inflight_bytes()}),
    )?;
    t.result = Some(PlanResult::Deleted(what));
    Ok(())
}

/// Warns, before anything is applied, when the cluster's Forklift is not the one the manifests
/// were preflighted for (plan-gen --forklift-version, the Plans' liftkit.io/forklift-version).
async fn check_forklift_version(client: &kube::Client, objects: &[Object], plans: &[Plan]) {
    let wanted = forklift::preflighted(objects);
    if wanted.is_empty() {
        return;
    }
    let namespaces: BTreeSet<String> = plans.iter().map(|p| p.key.namespace.clone()).collect();
    match forklift::installed(client, &namespaces).await {
        Some(installed) => {
            if let Some(warning) = forklift::mismatch(&wanted, &installed) {
                tracing::warn!("{warning}");
            } else {
                tracing::info!(
                    "the cluster runs Forklift {} ({})",
                    installed.reported,
                    installed.source
                );
            }
        }
        None => tracing::info!(
            "cannot tell which Forklift the cluster runs (no Forklift operator ClusterServiceVersion, no forklift-controller Deployment beside a ForkliftController); the manifests were preflighted for {}",
            wanted
                .iter()
                .flatten()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Forklift's MacConflicts, live, just before a plan starts: a VM of the plan whose MAC a
/// VirtualMachine in the cluster already has is one Forklift refuses. Reports the plan blocked
/// (with Forklift's condition type and message) and returns true; a list the API server refuses
/// only skips the check.
async fn mac_conflicts_block(
    client: &kube::Client,
    key: &PlanKey,
    t: &mut Tracked,
    events: &mut Events,
) -> Result<bool> {
    let macs = forklift::plan_macs(t.object.as_ref().unwrap_or(&Value::Null));
    let conflicts = match forklift::live_mac_conflicts(client, &macs).await {
        Ok(conflicts) => conflicts,
        Err(e) => {
            tracing::info!(
                "{key}: cannot check MAC addresses against the cluster's VMs: {}",
                kubeerr::describe(&e)
            );
            return Ok(false);
        }
    };
    if conflicts.is_empty() {
        return Ok(false);
    }
    let names: HashMap<&str, &str> = t
        .plan
        .vms
        .iter()
        .map(|v| (v.id.as_str(), v.name.as_str()))
        .collect();
    let message = conflicts
        .iter()
        .map(|(id, c)| {
            let vm_ref = format!(
                "id:{id} name:'{}'",
                names.get(id.as_str()).copied().unwrap_or_default()
            );
            common::forklift::plan::mac_conflicts_message(&vm_ref, c)
        })
        .collect::<Vec<_>>()
        .join("; ");
    let condition = &common::forklift::plan::MAC_CONFLICTS;
    tracing::warn!(
        "{key}: blocked: {} (Critical): {}",
        condition.kind,
        for_terminal(&message)
    );
    t.result = Some(PlanResult::Blocked);
    events.emit(
        jiff::Timestamp::now(),
        "blocked",
        Some(key),
        json!({"message": format!("{} (Critical): {message}", condition.kind),
               "conditions": [{"type": condition.kind, "category": "Critical", "reason": "NotValid", "message": message}]}),
    )?;
    Ok(true)
}

fn report_blocked(key: &PlanKey, t: &mut Tracked, events: &mut Events, timeout: f64) -> Result<()> {
    let object = t.object.clone().unwrap_or_default();
    let blockers = status::blockers(&object);
    let conditions: Vec<Value> = blockers
        .iter()
        .map(|c| json!({"type": c.kind, "category": c.category, "reason": c.reason, "message": c.message}))
        .collect();
    let message = if blockers.is_empty() {
        format!("not Ready after {}", human_secs(timeout))
    } else {
        blockers
            .iter()
            .map(|c| format!("{} ({}): {}", c.kind, c.category, c.message))
            .collect::<Vec<_>>()
            .join("; ")
    };
    tracing::warn!("{key}: blocked: {}", for_terminal(&message));
    t.result = Some(PlanResult::Blocked);
    events.emit(
        jiff::Timestamp::now(),
        "blocked",
        Some(key),
        json!({"message": message, "conditions": conditions}),
    )
}

/// Adds the unfinished VMs of each running Migration to its spec.cancel (merged with what is
/// there, by id), as kubectl-mtv does.
async fn cancel_running(
    apis: &BTreeMap<String, Api<DynamicObject>>,
    tracked: &BTreeMap<PlanKey, Tracked>,
    scheduler: &Scheduler,
    events: &mut Events,
) {
    for (key, t) in tracked {
        if scheduler.state(key) != Some(State::Running) {
            continue;
        }
        let Some(name) = &t.migration else { continue };
        let api = &apis[&key.namespace];
        let finished: BTreeSet<&str> = t
            .vms
            .iter()
            .filter(|v| v.outcome.is_some())
            .map(|v| v.id.as_str())
            .collect();
        let existing: Vec<Value> = match api.get(name).await {
            Ok(m) => serde_json::to_value(&m).unwrap_or_default()["spec"]["cancel"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            Err(e) => {
                eprintln!(
                    "plan-run: {key}: cannot read Migration {name}: {}",
                    kubeerr::describe(&e)
                );
                continue;
            }
        };
        let mut cancel = existing.clone();
        let mut ids: BTreeSet<String> = existing
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_string))
            .collect();
        let mut added = Vec::new();
        for vm in &t.plan.vms {
            if !finished.contains(vm.id.as_str()) && ids.insert(vm.id.clone()) {
                cancel.push(json!({"id": vm.id, "name": vm.name}));
                added.push(vm.name.clone());
            }
        }
        if added.is_empty() {
            continue;
        }
        let patch = json!({"spec": {"cancel": cancel}});
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                let _ = events.emit(
                    jiff::Timestamp::now(),
                    "cancel-requested",
                    Some(key),
                    json!({"migration": name, "vms": added}),
                );
            }
            Err(e) => eprintln!(
                "plan-run: {key}: cannot cancel Migration {name}: {}",
                kubeerr::describe(&e)
            ),
        }
    }
}

fn summary(
    tracked: &BTreeMap<PlanKey, Tracked>,
    scheduler: &Scheduler,
    interrupted: Option<&str>,
    elapsed: Duration,
) -> ExitCode {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut vm_ok, mut vm_failed, mut vm_canceled) = (0, 0, 0);
    for (key, t) in tracked {
        let word = match &t.result {
            Some(PlanResult::Finished(Outcome::Succeeded)) => "succeeded",
            Some(PlanResult::AlreadySucceeded) => "succeeded earlier",
            Some(
                PlanResult::Finished(Outcome::Failed) | PlanResult::LeftFailed(Outcome::Failed),
            ) => "failed",
            Some(
                PlanResult::Finished(Outcome::Canceled) | PlanResult::LeftFailed(Outcome::Canceled),
            ) => "canceled",
            Some(PlanResult::LeftFailed(Outcome::Succeeded)) => "succeeded",
            Some(PlanResult::Blocked) => "blocked",
            Some(PlanResult::StartFailed) => "not started (error)",
            Some(PlanResult::Deleted(_)) => "deleted",
            None if scheduler.state(key) == Some(State::Running) => "still running",
            None => "not started",
        };
        *counts.entry(word).or_default() += 1;
        for vm in &t.vms {
            match vm.outcome {
                Some(Outcome::Succeeded) => vm_ok += 1,
                Some(Outcome::Failed) => vm_failed += 1,
                Some(Outcome::Canceled) => vm_canceled += 1,
                None => {}
            }
        }
    }
    let plans: Vec<String> = counts.iter().map(|(w, n)| format!("{n} {w}")).collect();
    eprintln!(
        "plan-run: {} plan(s): {}; VMs: {vm_ok} succeeded, {vm_failed} failed, {vm_canceled} canceled; {}{}",
        tracked.len(),
        plans.join(", "),
        human_secs(elapsed.as_secs_f64()),
        interrupted
            .map(|what| format!("; {what}"))
            .unwrap_or_default(),
    );
    let all_good = tracked.values().all(|t| {
        matches!(
            t.result,
            Some(PlanResult::Finished(Outcome::Succeeded) | PlanResult::AlreadySucceeded)
        )
    }) && vm_failed == 0
        && vm_canceled == 0;
    if interrupted.is_some() {
        ExitCode::Interrupted
    } else if all_good {
        ExitCode::Ok
    } else {
        ExitCode::Findings
    }
}
