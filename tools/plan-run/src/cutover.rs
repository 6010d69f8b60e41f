//! Warm cutovers: when each warm plan's Migration cuts over (`spec.cutover`) and how long its VMs
//! are down then.
//!
//! Forklift v2.12.5 (`pkg/controller/plan/migration.go`, `(*Migration).execute`, phase
//! CopyingPaused): a warm VM whose first copy is done waits in CopyingPaused; when the
//! Migration's `spec.cutover` is set and not after `time.Now()` it goes to StorePowerState (the
//! cutover: source powered off, final snapshot, last changes copied, VM created), else it starts
//! the next precopy once `nextPrecopyAt` (PRECOPY_INTERVAL after the last one ended, phase
//! CopyDisks) is due. A cutover already past when the first copy ends cuts over right then. The
//! Migration is read again at every reconcile (controller.go `activeMigration`) and a spec
//! change bumps its generation, which `MigrationPredicate.Update` passes on: so `spec.cutover`
//! may be patched onto a running Migration and counts from the next reconcile; the validating
//! webhook (`migration-admitter.go`, CREATE and UPDATE) checks only that the user may create
//! VirtualMachines in the target namespace. `spec.cutover` is one time for the whole Migration
//! (v2.12.5 has no per-VM cutover), so a plan's VMs cut over together.
//!
//! The downtime estimate, per plan (each of its VMs is down up to that long):
//!
//! ```text
//! left      = Σ over the plan's disks of min(used × c / 100 × P / 3600, provisioned)
//! downtime  = left / R + O
//! ```
//!
//! with `used` the disk's allocated bytes (oVirt actual_size; the disk's bytes when no record
//! gives it), `c` the guest's change rate (--warm-change-rate, % of its allocated bytes per hour),
//! `P` Forklift's PRECOPY_INTERVAL (--precopy-interval: at the cutover, up to one interval of
//! changes is not copied yet), `R` the rate the final copy gets (--cutover-rate; by default
//! --bandwidth RATE, or the link model's bandwidth, capped per disk transfer, in --simulate) and
//! `O` the fixed time after the copy (the VM's creation: half of --per-vm-overhead, as
//! forklift-sim and --simulate split it).
//!
//! Placement: the cutovers follow each other, shortest downtime first (so the most plans fit),
//! from the window's opening (or from now when it is open) with no overlap, so that each final
//! copy has the link to itself; a plan whose cutover would end after the window closes goes to
//! the next night's window and is reported as not fitting. Without --window each cutover is
//! "now": Forklift cuts over as soon as the first copy is done.

use crate::sched::PlanKey;
use crate::window::Window;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// The warm model: the guests' change rate, Forklift's precopy interval, the final copy's rate and
/// the fixed time after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmModel {
    pub change_rate_percent_per_hour: f64,
    pub precopy_interval_secs: f64,
    pub rate_bytes_per_sec: f64,
    pub overhead_secs: f64,
}

/// Bytes a guest rewrites on a disk of `used` allocated bytes (at most `total`) in `secs`.
pub fn changed_bytes(used: f64, total: f64, percent_per_hour: f64, secs: f64) -> f64 {
    (used * percent_per_hour / 100.0 * secs.max(0.0) / 3600.0).min(total)
}

impl WarmModel {
    /// The bytes a cutover copies, up to one precopy interval of changes per disk
    /// (`disks`: allocated and provisioned bytes).
    pub fn left_bytes(&self, disks: &[(u64, u64)]) -> f64 {
        disks
            .iter()
            .map(|&(used, total)| {
                changed_bytes(
                    used as f64,
                    total as f64,
                    self.change_rate_percent_per_hour,
                    self.precopy_interval_secs,
                )
            })
            .sum()
    }

    /// The downtime of a cutover of these disks: left / R + O (see the module's doc).
    pub fn downtime_secs(&self, disks: &[(u64, u64)]) -> f64 {
        let rate = self.rate_bytes_per_sec.max(1.0);
        self.left_bytes(disks) / rate + self.overhead_secs
    }
}

/// A warm plan to place.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub plan: PlanKey,
    pub downtime_secs: f64,
    /// The plan's VM names (said when it does not fit).
    pub vms: Vec<String>,
}

/// Where a plan's cutover goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub plan: PlanKey,
    pub cutover: Timestamp,
    pub downtime_secs: f64,
    pub vms: Vec<String>,
    /// The window occurrence the cutover is in: (opens, closes); None without --window.
    pub window: Option<(Timestamp, Timestamp)>,
    /// In the first window from `earliest` on and over before it closes (always true without a
    /// window).
    pub fits: bool,
}

/// The window's occurrence that contains `t`, or else the next one: (opens, closes). Local
/// seconds of the day in `zone` at `t`; a day is taken as 86,400 s (a DST change inside the
/// window shifts its close by the change).
pub fn occurrence(window: &Window, zone: &TimeZone, t: Timestamp) -> (Timestamp, Timestamp) {
    let local = t.to_zoned(zone.clone());
    let second =
        i64::from(local.hour()) * 3600 + i64::from(local.minute()) * 60 + i64::from(local.second());
    let day = 86_400i64;
    let length = (i64::from(window.end) - i64::from(window.start)).rem_euclid(1440) * 60;
    let since_open = (second - i64::from(window.start) * 60).rem_euclid(day);
    let whole = Timestamp::from_second(t.as_second()).unwrap_or(t);
    let opens = if since_open < length {
        whole - SignedDuration::from_secs(since_open)
    } else {
        whole + SignedDuration::from_secs(day - since_open)
    };
    (opens, opens + SignedDuration::from_secs(length))
}

/// `t` rounded up to a whole second.
fn ceil_second(t: Timestamp) -> Timestamp {
    let whole = Timestamp::from_second(t.as_second()).unwrap_or(t);
    if whole < t {
        whole + SignedDuration::from_secs(1)
    } else {
        whole
    }
}

/// Whether a Migration whose `spec.cutover` is `current` needs `ours` patched on at `now`: not
/// when it is ours already, nor when it is past (Forklift cuts over, or has: it reads the field
/// only in CopyingPaused, so moving a past cutover changes nothing that has begun and would
/// delay what has not).
pub fn needs_patch(current: Option<&str>, ours: Timestamp, now: Timestamp) -> bool {
    match current.map(str::parse::<Timestamp>) {
        None => true,
        Some(Ok(t)) => t != ours && t > now,
        Some(Err(_)) => true,
    }
}

/// Places the cutovers of `requests` from `earliest` on (see the module's doc).
pub fn place(
    window: Option<&Window>,
    zone: &TimeZone,
    earliest: Timestamp,
    mut requests: Vec<Request>,
) -> Vec<Placement> {
    let Some(window) = window else {
        return requests
            .into_iter()
            .map(|r| Placement {
                plan: r.plan,
                cutover: ceil_second(earliest),
                downtime_secs: r.downtime_secs,
                vms: r.vms,
                window: None,
                fits: true,
            })
            .collect();
    };
    requests.sort_by(|a, b| {
        a.downtime_secs
            .total_cmp(&b.downtime_secs)
            .then_with(|| a.plan.cmp(&b.plan))
    });
    let (mut opens, mut closes) = occurrence(window, zone, earliest);
    let mut first = true;
    let mut at = opens.max(earliest);
    let mut placed = Vec::new();
    for r in requests {
        let length = SignedDuration::from_secs_f64(r.downtime_secs.max(0.0));
        // Into the next occurrence while this one, partly gone or used, has no room; a cutover
        // longer than a whole window goes at an opening anyway (and does not fit).
        while at + length > closes && at > opens {
            (opens, closes) = occurrence(window, zone, closes + SignedDuration::from_secs(1));
            at = opens;
            first = false;
        }
        // Kubernetes times are whole seconds: the cutover is the next one.
        at = ceil_second(at);
        let fits = first && at + length <= closes;
        placed.push(Placement {
            plan: r.plan,
            cutover: at,
            downtime_secs: r.downtime_secs,
            vms: r.vms,
            window: Some((opens, closes)),
            fits,
        });
        at += length;
    }
    placed
}

/// The `cutover` event's fields for a placement.
pub fn event_fields(p: &Placement, migration: &str, patched: bool) -> serde_json::Value {
    let mut fields = serde_json::json!({
        "migration": migration,
        "cutover": p.cutover.to_string(),
        "downtime_secs": (p.downtime_secs * 1000.0).round() / 1000.0,
        "vm_count": p.vms.len(),
        "fits": p.fits,
    });
    if let Some((opens, closes)) = p.window {
        fields["window_opens"] = opens.to_string().into();
        fields["window_closes"] = closes.to_string().into();
    }
    if !p.fits {
        fields["vms"] = p.vms.clone().into();
    }
    if patched {
        fields["patched"] = true.into();
    }
    fields
}

/// The line said on stderr for a plan whose cutover does not fit its window.
pub fn does_not_fit(p: &Placement) -> String {
    format!(
        "plan-run: {}: the cutover of {} ({} down) does not fit the window: placed at {}",
        p.plan,
        p.vms.join(", "),
        crate::human_secs(p.downtime_secs),
        p.cutover
    )
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

    fn request(name: &str, secs: f64) -> Request {
        Request {
            plan: key(name),
            downtime_secs: secs,
            vms: vec![format!("{name}-vm")],
        }
    }

    fn t(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn the_downtime_is_one_interval_of_changes_over_the_rate_plus_the_overhead() {
        // 100 GB allocated of a 200 GB disk, 2 %/h, 60 min: 2 GB left; 8 GB allocated of 10,
        // 2 %/h: 0.16 GB; at 100 MB/s: 21.6 s, plus 30 s.
        let m = WarmModel {
            change_rate_percent_per_hour: 2.0,
            precopy_interval_secs: 3600.0,
            rate_bytes_per_sec: 100e6,
            overhead_secs: 30.0,
        };
        let disks = [
            (100_000_000_000, 200_000_000_000),
            (8_000_000_000, 10_000_000_000),
        ];
        assert!((m.left_bytes(&disks) - 2.16e9).abs() < 1.0);
        assert!((m.downtime_secs(&disks) - 51.6).abs() < 1e-9);
        // Never more than the disk.
        assert_eq!(changed_bytes(10.0, 5.0, 100.0, 7200.0), 5.0);
    }

    #[test]
    fn occurrences_across_midnight() {
        let w = Window::parse("22:00-06:00").unwrap();
        let utc = TimeZone::UTC;
        let (o, c) = occurrence(&w, &utc, t("2026-12-01T12:00:00Z"));
        assert_eq!(
            (o, c),
            (t("2026-12-01T22:00:00Z"), t("2026-12-02T06:00:00Z"))
        );
        let (o, c) = occurrence(&w, &utc, t("2026-12-02T01:30:00Z"));
        assert_eq!(
            (o, c),
            (t("2026-12-01T22:00:00Z"), t("2026-12-02T06:00:00Z"))
        );
        let (o, _) = occurrence(&w, &utc, t("2026-12-02T06:00:00Z"));
        assert_eq!(o, t("2026-12-02T22:00:00Z"));
    }

    #[test]
    fn cutovers_follow_each_other_in_the_window_shortest_first() {
        let w = Window::parse("22:00-23:00").unwrap();
        let placed = place(
            Some(&w),
            &TimeZone::UTC,
            t("2026-12-01T12:00:00Z"),
            vec![
                request("b", 1200.0),
                request("a", 600.0),
                request("c", 1800.0),
            ],
        );
        let got: Vec<(&str, Timestamp, bool)> = placed
            .iter()
            .map(|p| (p.plan.name.as_str(), p.cutover, p.fits))
            .collect();
        // 22:00 + 10 min + 20 min = 22:30; c's 30 min end at 23:00 sharp: it fits.
        assert_eq!(
            got,
            [
                ("a", t("2026-12-01T22:00:00Z"), true),
                ("b", t("2026-12-01T22:10:00Z"), true),
                ("c", t("2026-12-01T22:30:00Z"), true),
            ]
        );
        for p in &placed {
            let (opens, closes) = p.window.unwrap();
            let end = p.cutover + SignedDuration::from_secs_f64(p.downtime_secs);
            assert!(opens <= p.cutover && end <= closes, "{p:?}");
        }
    }

    #[test]
    fn cutovers_that_do_not_fit_go_to_the_next_night_and_say_so() {
        let w = Window::parse("22:00-23:00").unwrap();
        // Inside the window already at 22:30: 30 min are left, 20 + 20 do not fit.
        let placed = place(
            Some(&w),
            &TimeZone::UTC,
            t("2026-12-01T22:30:00Z"),
            vec![
                request("a", 1200.0),
                request("b", 1200.0),
                request("huge", 7200.0),
            ],
        );
        assert_eq!(placed[0].cutover, t("2026-12-01T22:30:00Z"));
        assert!(placed[0].fits);
        assert_eq!(placed[1].plan.name, "b");
        assert_eq!(placed[1].cutover, t("2026-12-02T22:00:00Z"));
        assert!(!placed[1].fits);
        // Longer than any window: at the opening after, and never fits.
        assert_eq!(placed[2].plan.name, "huge");
        assert_eq!(placed[2].cutover, t("2026-12-03T22:00:00Z"));
        assert!(!placed[2].fits);
        let line = does_not_fit(&placed[1]);
        assert!(line.contains("mtv/b") && line.contains("b-vm"), "{line}");
        let fields = event_fields(&placed[1], "b-1", false);
        assert_eq!(fields["fits"], false);
        assert_eq!(fields["vms"], serde_json::json!(["b-vm"]));
    }

    #[test]
    fn a_cutover_too_long_for_what_is_left_of_tonight_waits_for_tomorrow() {
        let w = Window::parse("22:00-23:00").unwrap();
        let placed = place(
            Some(&w),
            &TimeZone::UTC,
            t("2026-12-01T22:50:00Z"),
            vec![request("a", 1200.0)],
        );
        assert_eq!(placed[0].cutover, t("2026-12-02T22:00:00Z"));
        assert!(!placed[0].fits);
    }

    #[test]
    fn a_running_migration_gets_our_cutover_unless_its_own_is_past() {
        let now = t("2026-12-01T12:00:00Z");
        let ours = t("2026-12-01T22:00:00Z");
        assert!(needs_patch(None, ours, now));
        assert!(!needs_patch(Some("2026-12-01T22:00:00Z"), ours, now));
        assert!(needs_patch(Some("2026-12-02T03:00:00Z"), ours, now));
        assert!(!needs_patch(Some("2026-12-01T11:00:00Z"), ours, now));
        let placed = place(
            None,
            &TimeZone::UTC,
            t("2026-12-01T12:00:00.2Z"),
            vec![request("a", 1.0)],
        );
        assert_eq!(placed[0].cutover, t("2026-12-01T12:00:01Z"));
    }

    #[test]
    fn without_a_window_every_cutover_is_now() {
        let now = t("2026-12-01T12:00:00Z");
        let placed = place(None, &TimeZone::UTC, now, vec![request("a", 60.0)]);
        assert_eq!(placed[0].cutover, now);
        assert!(placed[0].fits && placed[0].window.is_none());
    }
}
