//! The scheduler: which ready plan starts next, within --max-running-plans, --max-inflight and
//! --window. A pure state machine fed by events (ready, running, finished, stopped) and asked for
//! decisions at a local time; the live run and --simulate drive the same code.

use crate::window::Window;
use std::collections::BTreeMap;

/// The order queued plans are considered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Order {
    /// Biggest total disk bytes first (the long transfers start early, which shortens the schedule)
    #[default]
    LargestFirst,
    /// Smallest first (many plans finish early)
    SmallestFirst,
    /// The order of the input
    AsGiven,
}

/// The operator's limits.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub max_running_plans: Option<usize>,
    /// Total disk bytes of the running plans.
    pub max_inflight_bytes: Option<u64>,
    pub order: Order,
    pub window: Option<Window>,
}

/// A plan as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlanKey {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for PlanKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not known to be ready yet.
    Waiting,
    /// Ready, not started.
    Queued,
    Running,
    Done,
}

#[derive(Debug, Clone)]
struct Entry {
    bytes: u64,
    /// The disks the plan copies (for the disk-copy limit of --bandwidth auto).
    disks: usize,
    /// A warm plan: its Migration (the precopies) may start outside --window; only its cutover
    /// is placed inside (crate::cutover).
    warm: bool,
    index: usize,
    state: State,
}

/// --bandwidth auto's hold on starts, counted in disk copies (Forklift copies a VM's disks in
/// parallel, one importer each): the controller's limit, the most copies it has seen copying at
/// the best rate (`ceiling`, 0 before any), and the copies now under way or to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskLimit {
    pub limit: usize,
    pub ceiling: usize,
    pub active: usize,
}

impl DiskLimit {
    /// Whether a plan of `disks` may start beside the active copies: when they fit under the
    /// limit or the ceiling (more would still copy at the best rate), or when fewer than half
    /// the limit are under way (whatever the plan's size), or when it copies nothing. Part C of
    /// bench/RESULTS.md chose these against admitting whenever under the limit (overshoots on collapse-1g: 1.14x the bound with one VM a plan,
    /// now 1.08x) and admitting only what fits (a big plan's tail idles the link: 1.24x on
    /// clean-10g's demo plans, now 1.06x).
    pub fn admits(&self, disks: usize) -> bool {
        disks == 0
            || self.active + disks <= self.limit.max(self.ceiling)
            || 2 * self.active < self.limit
    }
}

/// A decision: start this plan now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub plan: PlanKey,
    pub bytes: u64,
    /// Running plans, this one included.
    pub running_plans: usize,
    /// Bytes in flight, this plan's included.
    pub inflight_bytes: u64,
    /// The plan alone is bigger than --max-inflight: it starts only when nothing else runs.
    pub oversize: bool,
}

#[derive(Debug, Clone)]
pub struct Scheduler {
    limits: Limits,
    plans: BTreeMap<PlanKey, Entry>,
    running: usize,
    inflight: u64,
    stopped: bool,
    /// --bandwidth auto: the limit on disk copies under way or to start (of VMs started and not
    /// past their copy), and how many there are now.
    disk_limit: Option<DiskLimit>,
}

impl Scheduler {
    /// `plans` in input order, with their total disk bytes.
    pub fn new(limits: Limits, plans: impl IntoIterator<Item = (PlanKey, u64)>) -> Self {
        let plans = plans
            .into_iter()
            .enumerate()
            .map(|(index, (key, bytes))| {
                (
                    key,
                    Entry {
                        bytes,
                        disks: 0,
                        warm: false,
                        index,
                        state: State::Waiting,
                    },
                )
            })
            .collect();
        Scheduler {
            limits,
            plans,
            running: 0,
            inflight: 0,
            stopped: false,
            disk_limit: None,
        }
    }

    /// Each plan's disk count (the disks Forklift copies), for the disk-copy limit.
    pub fn set_disk_counts<'a>(&mut self, counts: impl IntoIterator<Item = (&'a PlanKey, usize)>) {
        for (key, disks) in counts {
            if let Some(entry) = self.plans.get_mut(key) {
                entry.disks = disks;
            }
        }
    }

    /// The warm plans: they may start outside the window (their cutovers are placed inside it).
    pub fn set_warm<'a>(&mut self, warm: impl IntoIterator<Item = &'a PlanKey>) {
        for key in warm {
            if let Some(entry) = self.plans.get_mut(key) {
                entry.warm = true;
            }
        }
    }

    /// The adaptive controller's limit on disk copies (crate::adapt), and the disk copies now
    /// under way or to start.
    pub fn set_disk_limit(&mut self, limit: DiskLimit) {
        self.disk_limit = Some(limit);
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn state(&self, plan: &PlanKey) -> Option<State> {
        self.plans.get(plan).map(|e| e.state)
    }

    pub fn running_plans(&self) -> usize {
        self.running
    }

    pub fn inflight_bytes(&self) -> u64 {
        self.inflight
    }

    /// The plan is Ready: it may start. Ignored unless it was waiting.
    pub fn ready(&mut self, plan: &PlanKey) {
        if let Some(entry) = self.plans.get_mut(plan)
            && entry.state == State::Waiting
        {
            entry.state = State::Queued;
        }
    }

    /// The plan already runs (found running at start-up, or started by someone else): it counts
    /// against the limits, whatever they say.
    pub fn running(&mut self, plan: &PlanKey) {
        if let Some(entry) = self.plans.get_mut(plan)
            && matches!(entry.state, State::Waiting | State::Queued)
        {
            entry.state = State::Running;
            self.running += 1;
            self.inflight = self.inflight.saturating_add(entry.bytes);
        }
    }

    /// The plan needs nothing more from the scheduler: finished, blocked, skipped or failed to
    /// start for good.
    pub fn done(&mut self, plan: &PlanKey) {
        if let Some(entry) = self.plans.get_mut(plan) {
            if entry.state == State::Running {
                self.running -= 1;
                self.inflight = self.inflight.saturating_sub(entry.bytes);
            }
            entry.state = State::Done;
        }
    }

    /// Starting the plan failed for now (the API server was away): it goes back to the queue.
    pub fn start_failed(&mut self, plan: &PlanKey) {
        if let Some(entry) = self.plans.get_mut(plan)
            && entry.state == State::Running
        {
            entry.state = State::Queued;
            self.running -= 1;
            self.inflight = self.inflight.saturating_sub(entry.bytes);
        }
    }

    /// No more starts (Ctrl-C); running plans are left alone.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Plans waiting or queued: work the scheduler still has.
    pub fn pending(&self) -> usize {
        self.plans
            .values()
            .filter(|e| matches!(e.state, State::Waiting | State::Queued))
            .count()
    }

    pub fn queued(&self) -> usize {
        self.plans
            .values()
            .filter(|e| e.state == State::Queued)
            .count()
    }

    /// Nothing waits, is queued or runs.
    pub fn is_finished(&self) -> bool {
        self.plans.values().all(|e| e.state == State::Done)
    }

    /// The plans to start now, at `minute_of_day` (local). Marks them running.
    pub fn decide(&mut self, minute_of_day: u32) -> Vec<Start> {
        if self.stopped {
            return Vec::new();
        }
        // Outside the window only warm plans start (their precopies; the cutover is inside).
        let open = self
            .limits
            .window
            .is_none_or(|window| window.contains(minute_of_day));
        let mut queued: Vec<(PlanKey, u64, usize)> = self
            .plans
            .iter()
            .filter(|(_, e)| e.state == State::Queued && (open || e.warm))
            .map(|(k, e)| (k.clone(), e.bytes, e.index))
            .collect();
        match self.limits.order {
            Order::LargestFirst => {
                queued.sort_by_key(|(_, bytes, index)| (u64::MAX - bytes, *index))
            }
            Order::SmallestFirst => queued.sort_by_key(|(_, bytes, index)| (*bytes, *index)),
            Order::AsGiven => queued.sort_by_key(|(_, _, index)| *index),
        }
        let mut starts = Vec::new();
        for (plan, bytes, _) in queued {
            if self
                .limits
                .max_running_plans
                .is_some_and(|max| self.running >= max)
            {
                break;
            }
            // The disk-copy limit holds the next plan in order back (no smaller plan overtakes
            // it) unless its disks fit, or few copies are left (the tail of a big plan would
            // leave the link idle); with nothing running, one plan starts whatever its size.
            let disks = self.plans[&plan].disks;
            if let Some(limit) = &self.disk_limit
                && !limit.admits(disks)
                && (self.running > 0 || limit.active > 0)
            {
                break;
            }
            let oversize = self
                .limits
                .max_inflight_bytes
                .is_some_and(|max| bytes > max);
            let fits = match self.limits.max_inflight_bytes {
                None => true,
                // A plan bigger than the limit alone may start only when nothing else runs, and
                // then nothing else starts beside it.
                Some(_) if oversize => self.running == 0,
                Some(max) => self.inflight.saturating_add(bytes) <= max,
            };
            if !fits {
                // Smaller plans further down may still fit (first fit, in the chosen order).
                continue;
            }
            let entry = self.plans.get_mut(&plan).expect("queued plan is known");
            entry.state = State::Running;
            if let Some(limit) = &mut self.disk_limit {
                limit.active += entry.disks;
            }
            self.running += 1;
            self.inflight = self.inflight.saturating_add(bytes);
            starts.push(Start {
                plan,
                bytes,
                running_plans: self.running,
                inflight_bytes: self.inflight,
                oversize,
            });
            if oversize {
                break;
            }
        }
        starts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> PlanKey {
        PlanKey {
            namespace: "mtv".into(),
            name: name.into(),
        }
    }

    fn scheduler(limits: Limits, sizes: &[(&str, u64)]) -> Scheduler {
        let mut s = Scheduler::new(limits, sizes.iter().map(|(n, b)| (key(n), *b)));
        for (name, _) in sizes {
            s.ready(&key(name));
        }
        s
    }

    fn names(starts: &[Start]) -> Vec<&str> {
        starts.iter().map(|s| s.plan.name.as_str()).collect()
    }

    #[test]
    fn only_ready_plans_start() {
        let mut s = Scheduler::new(Limits::default(), [(key("a"), 1), (key("b"), 2)]);
        assert!(s.decide(0).is_empty());
        s.ready(&key("a"));
        assert_eq!(names(&s.decide(0)), ["a"]);
        assert!(s.decide(0).is_empty(), "a runs already");
    }

    #[test]
    fn max_running_plans_and_order() {
        let sizes = [("a", 10), ("b", 30), ("c", 20), ("d", 30)];
        let limits = |order| Limits {
            max_running_plans: Some(2),
            order,
            ..Limits::default()
        };
        let mut s = scheduler(limits(Order::LargestFirst), &sizes);
        assert_eq!(names(&s.decide(0)), ["b", "d"], "ties keep the input order");
        s.done(&key("b"));
        assert_eq!(names(&s.decide(0)), ["c"]);
        let mut s = scheduler(limits(Order::SmallestFirst), &sizes);
        assert_eq!(names(&s.decide(0)), ["a", "c"]);
        let mut s = scheduler(limits(Order::AsGiven), &sizes);
        let starts = s.decide(0);
        assert_eq!(names(&starts), ["a", "b"]);
        assert_eq!(starts[1].running_plans, 2);
        assert_eq!(starts[1].inflight_bytes, 40);
    }

    #[test]
    fn max_inflight_is_never_exceeded_and_smaller_plans_fill_in() {
        let sizes = [("a", 60), ("b", 50), ("c", 30), ("d", 10)];
        let mut s = scheduler(
            Limits {
                max_inflight_bytes: Some(100),
                ..Limits::default()
            },
            &sizes,
        );
        let starts = s.decide(0);
        assert_eq!(names(&starts), ["a", "c", "d"], "b does not fit beside a");
        assert!(starts.iter().all(|s| s.inflight_bytes <= 100));
        assert_eq!(s.inflight_bytes(), 100);
        s.done(&key("c"));
        assert!(s.decide(0).is_empty(), "b needs 50, 30 are free");
        s.done(&key("a"));
        assert_eq!(names(&s.decide(0)), ["b"]);
        assert_eq!(s.inflight_bytes(), 60);
    }

    #[test]
    fn an_oversize_plan_starts_alone() {
        let sizes = [("huge", 500), ("small", 10)];
        let mut s = scheduler(
            Limits {
                max_inflight_bytes: Some(100),
                ..Limits::default()
            },
            &sizes,
        );
        let starts = s.decide(0);
        assert_eq!(names(&starts), ["huge"]);
        assert!(starts[0].oversize);
        assert!(s.decide(0).is_empty(), "nothing beside an oversize plan");
        s.done(&key("huge"));
        assert_eq!(names(&s.decide(0)), ["small"]);

        // Behind a running plan, the oversize one waits until it is alone.
        let mut s = scheduler(
            Limits {
                max_inflight_bytes: Some(100),
                order: Order::AsGiven,
                ..Limits::default()
            },
            &[("small", 10), ("huge", 500), ("other", 20)],
        );
        assert_eq!(names(&s.decide(0)), ["small", "other"]);
        s.done(&key("small"));
        assert!(s.decide(0).is_empty());
        s.done(&key("other"));
        assert_eq!(names(&s.decide(0)), ["huge"]);
    }

    #[test]
    fn the_window_gates_starts_across_midnight_and_running_plans_continue() {
        let window = Window::parse("22:00-06:00").unwrap();
        let mut s = scheduler(
            Limits {
                max_running_plans: Some(1),
                window: Some(window),
                ..Limits::default()
            },
            &[("a", 1), ("b", 1)],
        );
        assert!(s.decide(12 * 60).is_empty(), "noon is outside");
        assert!(s.decide(21 * 60 + 59).is_empty());
        assert_eq!(names(&s.decide(23 * 60)), ["a"]);
        // a runs on past 06:00; b may not start then.
        s.done(&key("a"));
        assert!(s.decide(6 * 60).is_empty());
        assert_eq!(
            names(&s.decide(60)),
            ["b"],
            "01:00 is inside, after midnight"
        );
    }

    #[test]
    fn warm_plans_start_outside_the_window_under_the_other_limits() {
        let window = Window::parse("22:00-06:00").unwrap();
        let mut s = scheduler(
            Limits {
                max_running_plans: Some(2),
                window: Some(window),
                ..Limits::default()
            },
            &[("cold", 3), ("warm-a", 2), ("warm-b", 1), ("warm-c", 1)],
        );
        s.set_warm([&key("warm-a"), &key("warm-b"), &key("warm-c")]);
        assert_eq!(names(&s.decide(12 * 60)), ["warm-a", "warm-b"]);
        s.done(&key("warm-a"));
        assert_eq!(
            names(&s.decide(12 * 60)),
            ["warm-c"],
            "cold waits for 22:00"
        );
        s.done(&key("warm-b"));
        assert_eq!(names(&s.decide(22 * 60)), ["cold"]);
    }

    #[test]
    fn running_plans_found_at_start_count_against_the_limits() {
        let mut s = scheduler(
            Limits {
                max_running_plans: Some(1),
                ..Limits::default()
            },
            &[("a", 1), ("b", 1)],
        );
        s.running(&key("b"));
        assert!(s.decide(0).is_empty());
        s.done(&key("b"));
        assert_eq!(names(&s.decide(0)), ["a"]);
        s.start_failed(&key("a"));
        assert_eq!(s.running_plans(), 0);
        assert_eq!(names(&s.decide(0)), ["a"], "a failed start is retried");
        s.stop();
        s.done(&key("a"));
        assert!(s.is_finished());
    }

    #[test]
    fn the_disk_limit_holds_starts_in_plan_order() {
        let sizes = [("a", 30), ("b", 20), ("c", 10)];
        let mut s = scheduler(Limits::default(), &sizes);
        let counts = [(key("a"), 3), (key("b"), 4), (key("c"), 1)];
        s.set_disk_counts(counts.iter().map(|(k, n)| (k, *n)));
        let limit = |limit, ceiling, active| DiskLimit {
            limit,
            ceiling,
            active,
        };
        // Nothing runs: a starts (3 disks); b's 4 would make 7, over the limit of 6, and 3
        // copies are half of it: b waits, and so does c, though its one disk would fit.
        s.set_disk_limit(limit(6, 0, 0));
        assert_eq!(names(&s.decide(0)), ["a"]);
        // 7 copies were seen at the best rate: b fits under that ceiling.
        s.set_disk_limit(limit(6, 7, 3));
        assert_eq!(names(&s.decide(0)), ["b"]);
        s.set_disk_limit(limit(6, 7, 7));
        assert!(s.decide(0).is_empty());
        // Two copies left of a limit of 6: the link idles, c starts.
        s.set_disk_limit(limit(6, 0, 2));
        assert_eq!(names(&s.decide(0)), ["c"]);
    }

    #[test]
    fn a_plan_over_the_disk_limit_starts_alone() {
        let mut s = scheduler(Limits::default(), &[("big", 30), ("small", 10)]);
        let counts = [(key("big"), 9), (key("small"), 1)];
        s.set_disk_counts(counts.iter().map(|(k, n)| (k, *n)));
        let limit = |active| DiskLimit {
            limit: 4,
            ceiling: 4,
            active,
        };
        // Nothing runs: the big plan starts though its 9 disks exceed 4, and nothing joins it.
        s.set_disk_limit(limit(0));
        assert_eq!(names(&s.decide(0)), ["big"]);
        s.set_disk_limit(limit(9));
        assert!(s.decide(0).is_empty());
        // At its tail, one copy left of 4: the small plan joins.
        s.set_disk_limit(limit(1));
        assert_eq!(names(&s.decide(0)), ["small"]);
    }

    #[test]
    fn stopped_means_no_more_starts() {
        let mut s = scheduler(Limits::default(), &[("a", 1)]);
        s.stop();
        assert!(s.decide(0).is_empty());
        assert_eq!(s.pending(), 1);
    }
}
