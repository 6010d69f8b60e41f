//! A warm migration's state per VM, as Forklift v2.12.5 keeps it in the Plan status
//! (`pkg/apis/forklift/v1beta1/plan/vm.go` `Warm`, `Precopy`): the precopies with their snapshots,
//! the successes and when the next precopy is due; plus the simulator's change-rate model.

use crate::run::{Stage, VmRun};
use serde_json::{Value, json};

/// One precopy (`plan.Precopy`): when it started and ended, and the VM snapshot it copies up to.
#[derive(Debug, Clone)]
pub struct Precopy {
    pub start: String,
    pub end: Option<String>,
    pub snapshot: String,
    /// Simulated clock when its snapshot was taken: the guest's changes since count for the next.
    pub start_sim: f64,
}

#[derive(Debug, Clone, Default)]
pub struct WarmState {
    pub precopies: Vec<Precopy>,
    pub successes: u32,
    /// `nextPrecopyAt`, as Forklift writes it (wall time).
    pub next_precopy_at: Option<String>,
    /// The same on the simulated clock.
    pub next_precopy_sim: f64,
    /// Simulated clock when the cutover began and when the VirtualMachine was created.
    pub cutover_sim: Option<f64>,
    pub created_sim: Option<f64>,
    /// The checkpoints the DataVolumes hold: (precopies, final), once written.
    pub checkpoints_written: Option<(usize, bool)>,
    /// The cutover has begun: the checkpoints to write are final.
    pub cutover: bool,
}

impl WarmState {
    /// The `warm` block of the VM's status.
    pub fn render(&self) -> Value {
        let precopies: Vec<Value> = self
            .precopies
            .iter()
            .map(|p| {
                let mut v = json!({"start": p.start, "snapshot": p.snapshot});
                if let Some(end) = &p.end {
                    v["end"] = Value::from(end.clone());
                }
                v
            })
            .collect();
        let mut warm = json!({"successes": self.successes, "failures": 0,
            "consecutiveFailures": 0});
        if !precopies.is_empty() {
            warm["precopies"] = Value::from(precopies);
        }
        if let Some(at) = &self.next_precopy_at {
            warm["nextPrecopyAt"] = Value::from(at.clone());
        }
        warm
    }

    /// The VM snapshots so far (the checkpoints' sources).
    pub fn snapshots(&self) -> Vec<String> {
        self.precopies.iter().map(|p| p.snapshot.clone()).collect()
    }

    /// CreateSnapshot (CreateInitialSnapshot, CreateFinalSnapshot): a new precopy from now.
    pub fn snapshot(&mut self, vm_id: &str, migration: &str, now: &str, sim_secs: f64) {
        let n = (self.precopies.len() + 1).to_string();
        self.precopies.push(Precopy {
            start: now.to_string(),
            end: None,
            snapshot: crate::datavolume::made_up_id(&["snapshot", vm_id, migration, &n]),
            start_sim: sim_secs,
        });
    }
}

/// The change-rate model: a guest rewrites `rate_percent_per_hour` % of its disk's allocated
/// bytes (oVirt actual_size) per hour, spread evenly, so a delta holds that share of the time
/// since the last snapshot; never more than the disk.
pub fn delta_bytes(used: f64, total: f64, rate_percent_per_hour: f64, secs: f64) -> f64 {
    (used * rate_percent_per_hour / 100.0 * secs.max(0.0) / 3600.0).min(total)
}

/// A wall time `secs` real seconds from now, as Kubernetes writes times.
pub fn wall_in(secs: f64) -> String {
    let ahead = jiff::SignedDuration::try_from_secs_f64(secs.max(0.0)).unwrap_or_default();
    (jiff::Timestamp::now().checked_add(ahead).ok())
        .map(crate::conditions::kube_time)
        .unwrap_or_default()
}

/// Whether an RFC 3339 time is now or past on the simulated clock (`now_unix_secs`, Unix
/// seconds): Forklift v2.12.5 `pkg/controller/plan/migration.go` `(*Migration).execute`, phase
/// CopyingPaused, `!r.Migration.Spec.Cutover.After(time.Now())`, with the simulator's clock
/// (--clock-start plus simulated time) standing for `time.Now()`. An unreadable time is never due.
pub fn due(at: &str, now_unix_secs: f64) -> bool {
    (at.parse::<jiff::Timestamp>()).is_ok_and(|t| (t.as_nanosecond() as f64) / 1e9 <= now_unix_secs)
}

/// Unix seconds as RFC 3339 (UTC, millisecond precision), for the simulated clock in events.
pub fn rfc3339(unix_secs: f64) -> String {
    let millis = (unix_secs * 1000.0).round() as i64;
    (jiff::Timestamp::from_millisecond(millis).ok())
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// Rebuilds a warm VM's state from its status after a restart: the precopies and successes as
/// written; a VM in CopyingPaused starts its next precopy at once (the simulated clock restarted),
/// and a copy under way starts over from its stage's share not yet reported.
pub fn resume(run: &mut VmRun, status: &Value) {
    let warm = &status["warm"];
    let text = |v: &Value| v.as_str().map(str::to_string);
    let state = WarmState {
        precopies: warm["precopies"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| Precopy {
                start: text(&p["start"]).unwrap_or_default(),
                end: text(&p["end"]),
                snapshot: text(&p["snapshot"]).unwrap_or_default(),
                start_sim: 0.0,
            })
            .collect(),
        successes: warm["successes"].as_u64().unwrap_or(0) as u32,
        next_precopy_at: text(&warm["nextPrecopyAt"]),
        next_precopy_sim: f64::NEG_INFINITY,
        cutover: run.step_started[3].is_some(),
        ..WarmState::default()
    };
    match status["phase"].as_str() {
        Some("CopyingPaused") => run.stage = Stage::Paused,
        Some("Finalize") => run.stage = Stage::Cutover,
        _ => {}
    }
    run.warm = Some(state);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delta_is_the_share_changed_since_the_snapshot() {
        // 10 GiB used, 2 %/h, 30 minutes: 1 % of it.
        let gib = (1u64 << 30) as f64;
        assert_eq!(delta_bytes(10.0 * gib, 50.0 * gib, 2.0, 1800.0), 0.1 * gib);
        assert_eq!(delta_bytes(10.0 * gib, 1.0, 2.0, 1800.0), 1.0);
        let mut w = WarmState::default();
        w.snapshot("vm", "m", "2026-01-01T00:00:00Z", 0.0);
        w.snapshot("vm", "m", "2026-01-01T01:00:00Z", 3600.0);
        assert_eq!(w.render()["precopies"].as_array().unwrap().len(), 2);
        assert_ne!(w.snapshots()[0], w.snapshots()[1]);
    }

    #[test]
    fn a_cutover_is_due_on_the_simulated_clock() {
        // 2026-12-01T22:00:00Z is Unix 1796162400.
        let at = "2026-12-01T22:00:00Z";
        assert!(!due(at, 1_796_162_399.5));
        assert!(due(at, 1_796_162_400.0));
        assert!(!due("not a time", 2e9));
        assert_eq!(rfc3339(1_796_162_400.25), "2026-12-01T22:00:00.250Z");
    }
}
