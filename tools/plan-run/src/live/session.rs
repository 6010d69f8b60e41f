//! One live run once its objects are applied: what has run before read back from the cluster,
//! the watches, the loop that starts what the scheduler allows and follows what runs, the summary.

use super::{
    Auto, Kinds, LIST_PATIENCE, PlanResult, Relist, Tracked, WatchItem, Watched, cancel_running,
    create_migration, event_watches, local_minute, local_second, mac_conflicts_block, on_deleted,
    on_event, on_migration, on_plan, on_relisted, patch_cutover, report_blocked, report_failed_vms,
    report_refusals, summary, warm_cutovers, watch_denied, with_retries,
};
use crate::adapt::{Controller, Meter};
use crate::cutover::Placement;
use crate::events::Events;
use crate::kubeerr;
use crate::manifest::{FORKLIFT_API_VERSION, Plan};
use crate::progress::{Counts, Progress};
use crate::refusals::Refusals;
use crate::sched::{PlanKey, Scheduler, Start, State};
use crate::signals::{Interrupt, Signal};
use crate::status::{self, Outcome};
use crate::{Args, human_secs};
use common::{ExitCode, Result};
use futures::StreamExt;
use futures::stream::{BoxStream, SelectAll};
use kube::api::{Api, DynamicObject, ListParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

type Apis = BTreeMap<String, Api<DynamicObject>>;

/// The state of a live run, from the first read of the cluster to the summary.
pub(super) struct Session<'a> {
    args: &'a Args,
    client: kube::Client,
    begun: Instant,
    events: Events,
    plan_apis: Apis,
    migration_apis: Apis,
    scheduler: Scheduler,
    cutovers: BTreeMap<PlanKey, Placement>,
    auto: Option<Auto>,
    tracked: BTreeMap<PlanKey, Tracked>,
    refusals: Refusals,
    progress: Progress,
    ready_deadline: Instant,
    /// No start before every Plan watch has listed its namespace once: plans already Ready (a
    /// rerun, a resume) are then all known, and the scheduler's order holds among them rather
    /// than the order the list happened to arrive in. A namespace that cannot be listed holds the
    /// starts back for LIST_PATIENCE at most.
    plans_listed: BTreeSet<String>,
    list_deadline: Instant,
    list_wait_reported: bool,
    watch_errors: u32,
    last_watch_error: Option<String>,
    relists: BTreeMap<String, Relist>,
    events_unreadable: Vec<String>,
}

/// What ends the loop.
enum Stop {
    /// The scheduler has nothing left, or the watches ended.
    Done,
    Interrupted(Signal),
}

impl<'a> Session<'a> {
    /// The APIs of the plans' namespaces, the scheduler and the plans to follow.
    pub(super) async fn new(
        args: &'a Args,
        client: kube::Client,
        kinds: &mut Kinds,
        plans: Vec<Plan>,
        begun: Instant,
        events: Events,
    ) -> Result<Session<'a>> {
        let namespaces: BTreeSet<String> = plans.iter().map(|p| p.key.namespace.clone()).collect();
        let (mut plan_apis, mut migration_apis) = (Apis::new(), Apis::new());
        for ns in &namespaces {
            let plan_api = kinds
                .api(&client, FORKLIFT_API_VERSION, "Plan", Some(ns))
                .await
                .map_err(|e| kubeerr::error("Plan", &e))?;
            plan_apis.insert(ns.clone(), plan_api);
            let migration_api = kinds
                .api(&client, FORKLIFT_API_VERSION, "Migration", Some(ns))
                .await
                .map_err(|e| kubeerr::error("Migration", &e))?;
            migration_apis.insert(ns.clone(), migration_api);
        }
        let mut scheduler = Scheduler::new(
            args.limits(),
            plans.iter().map(|p| (p.key.clone(), p.bytes)),
        );
        scheduler.set_disk_counts(plans.iter().map(|p| (&p.key, p.disks)));
        scheduler.set_warm(plans.iter().filter(|p| p.warm).map(|p| &p.key));
        let cutovers = warm_cutovers(args, &plans)?;
        let auto = (args.bandwidth == crate::Bandwidth::Auto).then(|| Auto {
            controller: Controller::new(args.sample_interval, plans.iter().map(|p| p.disks).sum()),
            meter: Meter::default(),
            last_action: None,
        });
        let tracked = plans
            .into_iter()
            .map(|p| (p.key.clone(), tracked(p)))
            .collect();
        let ready_timeout = Duration::from_secs_f64(args.ready_timeout);
        Ok(Session {
            args,
            client,
            begun,
            events,
            plan_apis,
            migration_apis,
            scheduler,
            cutovers,
            auto,
            tracked,
            // Slack for a cluster clock a little behind ours: a refusal right at the start still
            // counts.
            refusals: Refusals::new(
                jiff::Timestamp::now()
                    .checked_sub(jiff::SignedDuration::from_secs(120))
                    .unwrap_or_else(|_| jiff::Timestamp::now()),
            ),
            progress: Progress::new(args.verbosity.show_progress()),
            ready_deadline: Instant::now() + ready_timeout,
            plans_listed: BTreeSet::new(),
            list_deadline: Instant::now() + LIST_PATIENCE.min(ready_timeout),
            list_wait_reported: false,
            watch_errors: 0,
            last_watch_error: None,
            relists: BTreeMap::new(),
            events_unreadable: Vec::new(),
        })
    }

    /// Reads back what has run before, follows it, runs the loop and prints the summary.
    pub(super) async fn run(mut self, ctrl_c: &mut Interrupt) -> Result<ExitCode> {
        self.resume().await?;
        self.report_skipped()?;
        let mut stream = self.watches().await;
        let stop = self.drive(&mut stream, ctrl_c).await?;
        self.finish(stop).await
    }

    /// What has run before, read back from the cluster before anything starts: a Migration still
    /// running is followed (its cutover patched on), the last one's outcome decides the rest.
    async fn resume(&mut self) -> Result<()> {
        let apis: Vec<(String, Api<DynamicObject>)> = self
            .migration_apis
            .iter()
            .map(|(ns, api)| (ns.clone(), api.clone()))
            .collect();
        for (ns, api) in &apis {
            let all = ListParams::default();
            let list = with_retries("list Migrations", || api.list(&all))
                .await
                .map_err(|e| kubeerr::error(&format!("Migrations in {ns}"), &e))?;
            let mut by_plan: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for item in list.items {
                let value = serde_json::to_value(&item).unwrap_or_default();
                if let Some(plan) = value["spec"]["plan"]["name"].as_str() {
                    by_plan.entry(plan.to_string()).or_default().push(value);
                }
            }
            for (plan, migrations) in by_plan {
                let key = PlanKey {
                    namespace: ns.clone(),
                    name: plan,
                };
                if self.tracked.contains_key(&key) {
                    self.resume_plan(api, &key, migrations).await?;
                }
            }
        }
        Ok(())
    }

    /// One plan's earlier Migrations (`migrations`, in any order).
    async fn resume_plan(
        &mut self,
        api: &Api<DynamicObject>,
        key: &PlanKey,
        mut migrations: Vec<Value>,
    ) -> Result<()> {
        let plan = &key.name;
        let name_of = |m: &Value| {
            m["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        migrations.sort_by_key(|m| {
            (
                m["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                status::attempt(plan, &name_of(m)),
            )
        });
        let t = self.tracked.get_mut(key).expect("tracked");
        t.attempt = migrations
            .iter()
            .filter_map(|m| status::attempt(plan, m["metadata"]["name"].as_str()?))
            .max()
            .unwrap_or(0)
            .max(migrations.len() as u32);
        if let Some(m) = migrations.iter().find(|m| status::outcome(m).is_none()) {
            let name = name_of(m);
            self.scheduler.running(key);
            self.events.emit(
                jiff::Timestamp::now(),
                "attached",
                Some(key),
                json!({"migration": name, "running_plans": self.scheduler.running_plans(),
                       "inflight_bytes": self.scheduler.inflight_bytes()}),
            )?;
            if let Some(c) = self.cutovers.get(key) {
                patch_cutover(api, &name, c, &mut self.events).await?;
            }
            t.migration = Some(name);
            t.following_since = Some(Instant::now());
            return Ok(());
        }
        match migrations.last().and_then(status::outcome) {
            Some(Outcome::Succeeded) => t.result = Some(PlanResult::AlreadySucceeded),
            Some(outcome) if !self.args.retry_failed => {
                t.result = Some(PlanResult::LeftFailed(outcome));
                t.vms = migrations.last().map(status::vms).unwrap_or_default();
            }
            _ => {}
        }
        Ok(())
    }

    /// `skipped` events for the plans an earlier run finished.
    fn report_skipped(&mut self) -> Result<()> {
        for (key, t) in &self.tracked {
            let fields = match &t.result {
                Some(PlanResult::AlreadySucceeded) => {
                    json!({"reason": "succeeded in an earlier run", "attempts": t.attempt})
                }
                Some(PlanResult::LeftFailed(outcome)) => json!({
                    "reason": format!("last migration {}; --retry-failed starts a new one", outcome.as_str()),
                    "outcome": outcome.as_str(), "attempts": t.attempt}),
                _ => continue,
            };
            self.scheduler.done(key);
            self.events
                .emit(jiff::Timestamp::now(), "skipped", Some(key), fields)?;
        }
        Ok(())
    }

    /// The watches: every Plan and Migration of the plans' namespaces, and the Events of their
    /// target namespaces that may be read.
    async fn watches(&mut self) -> SelectAll<BoxStream<'static, WatchItem>> {
        let mut streams: Vec<BoxStream<'static, WatchItem>> = Vec::new();
        let plan_watches = self
            .plan_apis
            .iter()
            .map(|(ns, api)| (Watched::Plans(ns.clone()), api));
        let migration_watches = self
            .migration_apis
            .iter()
            .map(|(ns, api)| (Watched::Migrations(ns.clone()), api));
        for (watched, api) in plan_watches.chain(migration_watches) {
            streams.push(
                watcher(api.clone(), watcher::Config::default())
                    .default_backoff()
                    .map(move |e| (watched.clone(), e))
                    .boxed(),
            );
        }
        let (event_streams, unreadable) = event_watches(&self.client, &self.tracked).await;
        self.events_unreadable = unreadable;
        streams.extend(event_streams);
        futures::stream::select_all(streams)
    }

    /// The loop: starts, then waits for a watch event, a signal or the next time to look again.
    async fn drive(
        &mut self,
        stream: &mut SelectAll<BoxStream<'static, WatchItem>>,
        ctrl_c: &mut Interrupt,
    ) -> Result<Stop> {
        loop {
            if let Some(signal) = futures::FutureExt::now_or_never(ctrl_c.recv()) {
                self.scheduler.stop();
                return Ok(Stop::Interrupted(signal));
            }
            self.start_due().await?;
            if self.scheduler.is_finished() {
                return Ok(Stop::Done);
            }
            self.progress.status(Counts::of(
                self.tracked.keys().map(|k| self.scheduler.state(k)),
            ));
            let wake = self.wake_at();
            tokio::select! {
                item = stream.next() => {
                    let Some(item) = item else { return Ok(Stop::Done) };
                    self.on_watch_item(item)?;
                }
                signal = ctrl_c.recv() => {
                    self.scheduler.stop();
                    return Ok(Stop::Interrupted(signal));
                }
                _ = tokio::time::sleep_until(wake.into()) => self.on_timer()?,
            }
        }
    }

    /// Starts what the scheduler allows now (after the auto controller's sample).
    async fn start_due(&mut self) -> Result<()> {
        let all_listed = self.plans_listed.len() >= self.plan_apis.len();
        if !all_listed && !self.list_wait_reported && Instant::now() >= self.list_deadline {
            self.list_wait_reported = true;
            let missing: Vec<&str> = self
                .plan_apis
                .keys()
                .filter(|ns| !self.plans_listed.contains(*ns))
                .map(String::as_str)
                .collect();
            tracing::warn!(
                "Plans in namespace(s) {} not listed after {}{}; starting the plans known to be Ready",
                missing.join(", "),
                human_secs(LIST_PATIENCE.as_secs_f64()),
                self.last_watch_error
                    .as_deref()
                    .map(|e| format!(" (last watch error: {e})"))
                    .unwrap_or_default()
            );
        }
        if let Some(auto) = &mut self.auto {
            auto.sample(
                self.begun,
                &self.tracked,
                &mut self.scheduler,
                &mut self.events,
            )?;
        }
        if all_listed || self.list_wait_reported {
            for start in self.scheduler.decide(local_minute()) {
                self.start(start).await?;
            }
        }
        Ok(())
    }

    /// Creates the Migration of one plan the scheduler started (after the MAC check), or says
    /// why it cannot start.
    async fn start(&mut self, start: Start) -> Result<()> {
        let t = self
            .tracked
            .get_mut(&start.plan)
            .expect("scheduled plan is tracked");
        if t.migration.is_none()
            && mac_conflicts_block(&self.client, &start.plan, t, &mut self.events).await?
        {
            self.scheduler.done(&start.plan);
            return Ok(());
        }
        let api = &self.migration_apis[&start.plan.namespace];
        let attempt = t.attempt + 1;
        let name = format!("{}-{attempt}", start.plan.name);
        let cutover = self.cutovers.get(&start.plan);
        match create_migration(api, &start.plan, t.uid.as_deref(), &name, cutover).await {
            Ok(created) => {
                t.attempt = attempt;
                t.migration = Some(name.clone());
                t.following_since = Some(Instant::now());
                t.reported.clear();
                self.events.emit(
                    jiff::Timestamp::now(),
                    if created { "started" } else { "attached" },
                    Some(&start.plan),
                    json!({"migration": name, "attempt": attempt, "total_bytes": start.bytes,
                           "vm_count": t.plan.vms.len(), "running_plans": start.running_plans,
                           "inflight_bytes": start.inflight_bytes, "oversize": start.oversize}),
                )?;
                match cutover {
                    Some(c) if created => self.events.emit(
                        jiff::Timestamp::now(),
                        "cutover",
                        Some(&start.plan),
                        crate::cutover::event_fields(c, &name, false),
                    )?,
                    Some(c) => patch_cutover(api, &name, c, &mut self.events).await?,
                    None => {}
                }
                if start.oversize {
                    self.progress.println(&format!(
                        "plan-run: {} alone exceeds --max-inflight: started with nothing else running",
                        start.plan
                    ));
                }
            }
            Err(e) if kubeerr::is_transient(&e) => {
                tracing::info!(
                    "{}: cannot start yet: {}",
                    start.plan,
                    kubeerr::describe(&e)
                );
                self.scheduler.start_failed(&start.plan);
                t.retry_at = Some(Instant::now() + Duration::from_secs(2));
            }
            Err(e) if kubeerr::code(&e) == ExitCode::NoPerm => {
                return Err(kubeerr::error(
                    &format!("{}: create Migration {name}", start.plan),
                    &e,
                ));
            }
            Err(e) => {
                self.progress.println(&format!(
                    "plan-run: {}: create Migration {name}: {}",
                    start.plan,
                    kubeerr::describe(&e)
                ));
                self.scheduler.done(&start.plan);
                t.result = Some(PlanResult::StartFailed);
            }
        }
        Ok(())
    }

    /// When to look again without an event: the list patience, a ready timeout, the window
    /// opening, a retry, the auto controller's next decision.
    fn wake_at(&self) -> Instant {
        let now = Instant::now();
        let mut wake = now + Duration::from_secs(3600);
        if self.plans_listed.len() < self.plan_apis.len() && !self.list_wait_reported {
            wake = wake.min(self.list_deadline);
        }
        if self
            .tracked
            .keys()
            .any(|k| self.scheduler.state(k) == Some(State::Waiting))
        {
            wake = wake.min(self.ready_deadline);
        }
        if self.scheduler.queued() > 0
            && let Some(window) = self.args.window
        {
            let wait = window.seconds_until_open(local_second());
            if wait > 0 {
                wake = wake.min(now + Duration::from_secs(u64::from(wait)));
            }
        }
        for at in self.tracked.values().filter_map(|t| t.retry_at) {
            wake = wake.min(at);
        }
        if let Some(at) = self
            .auto
            .as_ref()
            .and_then(|a| a.controller.next_decision_at())
        {
            wake = wake.min(self.begun + Duration::from_secs_f64(at.max(0.0)));
        }
        wake
    }

    /// Retries come due; past the ready timeout, the plans still waiting are reported blocked.
    fn on_timer(&mut self) -> Result<()> {
        let now = Instant::now();
        for t in self.tracked.values_mut() {
            if t.retry_at.is_some_and(|at| at <= now) {
                t.retry_at = None;
            }
        }
        if now >= self.ready_deadline {
            for (key, t) in self.tracked.iter_mut() {
                if self.scheduler.state(key) == Some(State::Waiting) {
                    report_blocked(key, t, &mut self.events, self.args.ready_timeout)?;
                    self.scheduler.done(key);
                }
            }
        }
        Ok(())
    }

    /// One item of the watches.
    fn on_watch_item(&mut self, (watched, item): WatchItem) -> Result<()> {
        let object = match item {
            Ok(watcher::Event::Apply(o)) => {
                self.watch_errors = 0;
                o
            }
            Ok(watcher::Event::InitApply(o)) => {
                self.watch_errors = 0;
                if let (Watched::Migrations(ns), Some(name)) = (&watched, &o.metadata.name)
                    && let Some(relist) = self.relists.get_mut(ns)
                {
                    relist.names.insert(name.clone());
                }
                o
            }
            Ok(watcher::Event::Init) => {
                if let Watched::Migrations(ns) = &watched {
                    self.relists.insert(
                        ns.clone(),
                        Relist {
                            began: Instant::now(),
                            names: BTreeSet::new(),
                        },
                    );
                }
                return Ok(());
            }
            Ok(watcher::Event::InitDone) => return self.on_listed(&watched),
            Ok(watcher::Event::Delete(o)) => {
                let value = serde_json::to_value(&o).unwrap_or_default();
                return on_deleted(
                    &watched,
                    &value,
                    &mut self.tracked,
                    &mut self.scheduler,
                    &mut self.events,
                    &mut self.progress,
                );
            }
            Err(e) => return self.on_watch_error(&watched, &e),
        };
        let value = serde_json::to_value(&object).unwrap_or_default();
        match watched {
            Watched::Plans(_) => on_plan(
                &value,
                &mut self.tracked,
                &mut self.scheduler,
                &mut self.events,
            ),
            Watched::Migrations(_) => on_migration(
                &value,
                &mut self.tracked,
                &mut self.scheduler,
                &mut self.refusals,
                &mut self.events,
                &mut self.progress,
            ),
            Watched::Events(_) => on_event(
                &value,
                &self.tracked,
                &mut self.refusals,
                &mut self.events,
                &mut self.progress,
            ),
        }
    }

    /// A watch has listed its namespace (at start, and after each reconnect).
    fn on_listed(&mut self, watched: &Watched) -> Result<()> {
        match watched {
            Watched::Plans(ns) => {
                self.plans_listed.insert(ns.clone());
            }
            Watched::Migrations(ns) => {
                if let Some(relist) = self.relists.remove(ns) {
                    on_relisted(
                        ns,
                        &relist,
                        &mut self.tracked,
                        &mut self.scheduler,
                        &mut self.events,
                        &mut self.progress,
                    )?;
                }
            }
            Watched::Events(_) => {}
        }
        Ok(())
    }

    /// A watch error: a denied watch ends the run (except of Events, which only explain); any
    /// other, the watcher backs off and reconnects by itself (API server restarts).
    fn on_watch_error(&mut self, watched: &Watched, e: &watcher::Error) -> Result<()> {
        if let (Watched::Events(_), Some(_)) = (watched, watch_denied(e)) {
            return Ok(());
        }
        if let Some(denied) = watch_denied(e) {
            return Err(kubeerr::error(&format!("watch {watched}"), denied));
        }
        self.watch_errors += 1;
        self.last_watch_error = Some(format!("{watched}: {e}"));
        if self.watch_errors == 1 || self.watch_errors.is_multiple_of(20) {
            tracing::info!("watch of {watched} interrupted, reconnecting: {e}");
        }
        Ok(())
    }

    /// After the loop: cancels on interrupt when asked, prints the summary, the failed VMs and
    /// the refusals; the exit code.
    async fn finish(mut self, stop: Stop) -> Result<ExitCode> {
        let caught = match stop {
            Stop::Interrupted(signal) => Some(signal),
            Stop::Done => None,
        };
        let interrupted = caught.is_some();
        if interrupted && self.args.cancel_on_interrupt {
            cancel_running(
                &self.migration_apis,
                &self.tracked,
                &self.scheduler,
                &mut self.events,
            )
            .await;
        }
        self.progress.clear();
        self.events.flush()?;
        let on_interrupt = match (interrupted, self.args.cancel_on_interrupt) {
            (false, _) => None,
            (true, false) => Some("interrupted, running migrations left to Forklift"),
            (true, true) => Some("interrupted, unfinished VMs of running migrations canceled"),
        };
        let code = match (
            summary(
                &self.tracked,
                &self.scheduler,
                on_interrupt,
                self.begun.elapsed(),
            ),
            caught,
        ) {
            (ExitCode::Interrupted, Some(signal)) => signal.exit_code(),
            (code, _) => code,
        };
        report_failed_vms(&self.tracked);
        report_refusals(&self.refusals);
        if !self.events_unreadable.is_empty() {
            eprintln!(
                "plan-run: warning: cannot list Events in namespace(s) {}: refusals there (quota, storage) could not be named",
                self.events_unreadable.join(", ")
            );
        }
        Ok(code)
    }
}

/// A plan not yet seen on the cluster.
fn tracked(plan: Plan) -> Tracked {
    Tracked {
        plan,
        object: None,
        uid: None,
        attempt: 0,
        migration: None,
        following_since: None,
        reported: HashMap::new(),
        result: None,
        vms: Vec::new(),
        retry_at: None,
    }
}
