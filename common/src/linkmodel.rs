//! A deterministic model of the shared link disk transfers run over, used by forklift-sim to pace
//! its simulated transfers and by `plan-run --simulate` to predict them, so the two agree.
//!
//! The model: `n` running disk transfers share one link of `bandwidth_bytes_per_sec`, less the
//! background load of the time of day (a fraction of the bandwidth other traffic takes, by UTC
//! hour). Up to `contention_threshold` transfers get the rest split evenly. Beyond it, the
//! aggregate shrinks (seek storms on the storage domain, TCP fighting on the wire):
//!
//! ```text
//! efficiency(n) = 1                                                     if n <= threshold
//!               = max(MIN_EFFICIENCY, 1 - penalty * (n - threshold) / n) otherwise
//! aggregate(n)  = bandwidth * (1 - load(time of day)) * efficiency(n)
//! ```
//!
//! The aggregate is shared max-min fairly: no transfer gets more than `per_transfer_cap` (one
//! disk stream rarely fills a fast link), and the transfers writing to one storage class together
//! no more than that class's write cap (`storage_write_caps`, `*` for any class not named); what
//! a capped transfer leaves goes to the others. Without caps or load this is `aggregate(n) / n`
//! each, the model forklift-sim always ran.
//!
//! Every VM also spends a fixed `per_vm_overhead_secs` outside disk transfer: half of it in
//! Initialize and half in VirtualMachineCreation ([`LinkModel::initialize_secs`],
//! [`LinkModel::creation_secs`]).
//!
//! A transfer is one disk: Forklift copies a VM's disks in parallel, so a VM with three disks
//! counts three towards `n`. forklift-sim always paces disks; `plan-run --simulate` does when VM
//! records (`--records`) give the disks, and otherwise falls back to one transfer per VM carrying
//! the VM's total, which agrees when VMs have one disk and is an approximation otherwise.
//!
//! forklift-sim takes a model from its own configuration (`--link-model NAME|FILE`, or the
//! bandwidth flags); plan-run never reads it live (it measures), and `--simulate` is given one
//! explicitly. [`NAMED_MODELS`] are the ones tests and `make bench` use.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The aggregate never drops below this fraction of the bandwidth, however many transfers run.
pub const MIN_EFFICIENCY: f64 = 0.1;
/// Background load never takes more than this share of the bandwidth (the link stays usable).
pub const MAX_LOAD: f64 = 0.95;
/// The storage class key of `storage_write_caps` that applies to every class not named.
pub const ANY_CLASS: &str = "*";

/// Background traffic on the link between two UTC times of day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackgroundLoad {
    /// First second of the UTC day it applies.
    pub start_sec: u32,
    /// First second of the UTC day after it (before `start_sec`: it crosses midnight).
    pub end_sec: u32,
    /// Share of the bandwidth it takes (0..MAX_LOAD).
    pub fraction: f64,
}

impl BackgroundLoad {
    fn contains(&self, sec_of_day: u32) -> bool {
        if self.start_sec < self.end_sec {
            (self.start_sec..self.end_sec).contains(&sec_of_day)
        } else {
            sec_of_day >= self.start_sec || sec_of_day < self.end_sec
        }
    }
}

/// A shared link; see the module documentation for the formula.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkModel {
    /// Aggregate bandwidth of the link, in bytes per second.
    pub bandwidth_bytes_per_sec: f64,
    /// Number of concurrent transfers the link carries without losing aggregate throughput.
    pub contention_threshold: u32,
    /// How fast aggregate throughput falls beyond the threshold (0 = never, 1 = steeply).
    pub contention_penalty: f64,
    /// Fixed time per VM outside disk transfer (Initialize plus VirtualMachineCreation), seconds.
    pub per_vm_overhead_secs: f64,
    /// The most one transfer (one disk) gets, bytes per second; None: no cap.
    pub per_transfer_cap_bytes_per_sec: Option<f64>,
    /// Write cap per target storage class, bytes per second, shared by the class's transfers;
    /// [`ANY_CLASS`] for every class not named.
    pub storage_write_caps: BTreeMap<String, f64>,
    /// Background load by UTC time of day (overlapping loads add up, to MAX_LOAD at most).
    pub background_load: Vec<BackgroundLoad>,
}

impl Default for LinkModel {
    /// 10 Gbit/s, 10 transfers before contention, penalty 0.5, 60 s of overhead per VM, no caps,
    /// no background load.
    fn default() -> Self {
        LinkModel {
            bandwidth_bytes_per_sec: 10e9 / 8.0,
            contention_threshold: 10,
            contention_penalty: 0.5,
            per_vm_overhead_secs: 60.0,
            per_transfer_cap_bytes_per_sec: None,
            storage_write_caps: BTreeMap::new(),
            background_load: Vec::new(),
        }
    }
}

/// The named models of tests and `make bench`: (name, what it stands for, the model as a file
/// would give it).
pub const NAMED_MODELS: [(&str, &str, &str); 3] = [
    (
        "clean-10g",
        "a clean 10 Gbit/s link; one disk stream reaches 400 MB/s, contention past 16 streams",
        "bandwidth: 10Gbit/s\nper_transfer_cap: 400MB/s\ncontention_threshold: 16\n\
         contention_penalty: 0.5\nper_vm_overhead: 60s\n",
    ),
    (
        "collapse-1g",
        "a 1 Gbit/s link that collapses past 4 streams (aggregate falling as 4/n); 50 MB/s a stream",
        "bandwidth: 1Gbit/s\nper_transfer_cap: 50MB/s\ncontention_threshold: 4\n\
         contention_penalty: 1.0\nper_vm_overhead: 60s\n",
    ),
    (
        "storage-25g",
        "a 25 Gbit/s link whose storage writes 600 MB/s per class, 250 MB/s a stream, and whose \
         daytime traffic (08:00-18:00 UTC) takes 90% of it",
        "bandwidth: 25Gbit/s\nper_transfer_cap: 250MB/s\nstorage_write_caps: {\"*\": 600MB/s}\n\
         contention_threshold: 24\ncontention_penalty: 0.5\nper_vm_overhead: 60s\n\
         background_load: [{window: \"08:00-18:00\", fraction: 0.9}]\n",
    ),
];

/// A model as a file gives it: rates, durations and windows as people write them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    bandwidth: String,
    #[serde(default)]
    contention_threshold: Option<u32>,
    #[serde(default)]
    contention_penalty: Option<f64>,
    #[serde(default)]
    per_vm_overhead: Option<String>,
    #[serde(default)]
    per_transfer_cap: Option<String>,
    #[serde(default)]
    storage_write_caps: BTreeMap<String, String>,
    #[serde(default)]
    background_load: Vec<LoadFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadFile {
    /// `HH:MM-HH:MM`, UTC.
    window: String,
    fraction: f64,
}

/// `HH:MM-HH:MM` into seconds of the day (start, end).
fn parse_utc_window(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{text:?} is not a window (expected HH:MM-HH:MM, UTC)");
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let sec = |part: &str| -> Result<u32, String> {
        let (h, m) = part.trim().split_once(':').ok_or_else(bad)?;
        let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 24 || m > 59 || (h == 24 && m > 0) {
            return Err(bad());
        }
        Ok((h * 3600 + m * 60) % 86_400)
    };
    let (start, end) = (sec(a)?, sec(b)?);
    if start == end {
        return Err(bad());
    }
    Ok((start, end))
}

/// What [`LinkModel::advance_from`] did in a step.
#[derive(Debug, Clone, PartialEq)]
pub struct Advanced {
    /// Bytes moved, all transfers together.
    pub moved: f64,
    /// Seconds into the step at which each transfer moved its last byte; None for one still
    /// running, or one that had ended before the step.
    pub ended_at: Vec<Option<f64>>,
}

impl LinkModel {
    /// A named model ([`NAMED_MODELS`]).
    pub fn named(name: &str) -> Option<LinkModel> {
        NAMED_MODELS
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(n, _, text)| Self::parse(text).unwrap_or_else(|e| panic!("model {n}: {e}")))
    }

    /// A named model, or else the file of that path (YAML or JSON, see [`LinkModel::parse`]).
    pub fn named_or_file(spec: &str) -> Result<LinkModel, String> {
        if let Some(model) = Self::named(spec) {
            return Ok(model);
        }
        let text = std::fs::read_to_string(spec).map_err(|e| {
            let names: Vec<&str> = NAMED_MODELS.iter().map(|m| m.0).collect();
            format!(
                "{spec}: not a named link model ({}) nor a readable file: {e}",
                names.join(", ")
            )
        })?;
        Self::parse(&text).map_err(|e| format!("{spec}: {e}"))
    }

    /// A model from YAML (or JSON): `bandwidth` (a rate, like 10Gbit/s) and optionally
    /// `contention_threshold` (10), `contention_penalty` (0.5), `per_vm_overhead` (60s),
    /// `per_transfer_cap` (a rate), `storage_write_caps` (class: rate, `*` for any other) and
    /// `background_load` (a list of `{window: HH:MM-HH:MM, fraction: F}`, UTC).
    pub fn parse(text: &str) -> Result<LinkModel, String> {
        let file: ModelFile =
            serde_norway::from_str(text).map_err(|e| format!("not a link model: {e}"))?;
        let defaults = LinkModel::default();
        let penalty = file
            .contention_penalty
            .unwrap_or(defaults.contention_penalty);
        if !(penalty.is_finite() && penalty >= 0.0) {
            return Err("contention_penalty must be a number, 0 or more".into());
        }
        let overhead = match &file.per_vm_overhead {
            Some(text) => parse_duration_secs(text)?,
            None => defaults.per_vm_overhead_secs,
        };
        if !(overhead.is_finite() && overhead >= 0.0) {
            return Err("per_vm_overhead must not be negative".into());
        }
        let mut storage_write_caps = BTreeMap::new();
        for (class, rate) in &file.storage_write_caps {
            let rate = parse_rate(rate).map_err(|e| format!("storage_write_caps {class}: {e}"))?;
            storage_write_caps.insert(class.clone(), rate);
        }
        let mut background_load = Vec::new();
        for load in &file.background_load {
            let (start_sec, end_sec) = parse_utc_window(&load.window)?;
            if !(0.0..=MAX_LOAD).contains(&load.fraction) {
                return Err(format!(
                    "background_load {}: fraction must be between 0 and {MAX_LOAD}",
                    load.window
                ));
            }
            background_load.push(BackgroundLoad {
                start_sec,
                end_sec,
                fraction: load.fraction,
            });
        }
        Ok(LinkModel {
            bandwidth_bytes_per_sec: parse_rate(&file.bandwidth)?,
            contention_threshold: file
                .contention_threshold
                .unwrap_or(defaults.contention_threshold),
            contention_penalty: penalty,
            per_vm_overhead_secs: overhead,
            per_transfer_cap_bytes_per_sec: file
                .per_transfer_cap
                .as_deref()
                .map(parse_rate)
                .transpose()?,
            storage_write_caps,
            background_load,
        })
    }

    /// Fraction of the bandwidth the link delivers in aggregate with `n_running` transfers.
    pub fn efficiency(&self, n_running: usize) -> f64 {
        let threshold = self.contention_threshold as usize;
        if n_running <= threshold {
            return 1.0;
        }
        let over = (n_running - threshold) as f64 / n_running as f64;
        (1.0 - self.contention_penalty * over).max(MIN_EFFICIENCY)
    }

    /// Aggregate throughput with `n_running` transfers and no background load, bytes per second
    /// (before the per-transfer and storage caps).
    pub fn aggregate_rate(&self, n_running: usize) -> f64 {
        self.bandwidth_bytes_per_sec * self.efficiency(n_running)
    }

    /// Throughput of each of `n_running` transfers of one class with no cap and no load, bytes
    /// per second. With none running it is what a first transfer would get: the whole bandwidth.
    pub fn rate_per_transfer(&self, n_running: usize) -> f64 {
        if n_running == 0 {
            return self.bandwidth_bytes_per_sec;
        }
        self.aggregate_rate(n_running) / n_running as f64
    }

    /// The share of the bandwidth background traffic takes at `unix_secs` (UTC).
    pub fn load_at(&self, unix_secs: f64) -> f64 {
        let sec = unix_secs.rem_euclid(86_400.0) as u32;
        let sum: f64 = self
            .background_load
            .iter()
            .filter(|l| l.contains(sec))
            .map(|l| l.fraction)
            .sum();
        sum.min(MAX_LOAD)
    }

    /// Seconds from `unix_secs` until the background load may change (infinite without one).
    pub fn secs_to_load_change(&self, unix_secs: f64) -> f64 {
        let now = unix_secs.rem_euclid(86_400.0);
        self.background_load
            .iter()
            .flat_map(|l| [l.start_sec, l.end_sec])
            .map(|edge| {
                let wait = (edge as f64 - now).rem_euclid(86_400.0);
                if wait <= 1e-9 { 86_400.0 } else { wait }
            })
            .fold(f64::INFINITY, f64::min)
    }

    /// The write cap of storage class `class`, if it has one.
    pub fn class_cap(&self, class: &str) -> Option<f64> {
        self.storage_write_caps
            .get(class)
            .or_else(|| self.storage_write_caps.get(ANY_CLASS))
            .copied()
    }

    /// Each running transfer's rate at `unix_secs`: `classes` gives each one's storage class.
    /// Max-min fair: classes whose cap (or per-transfer cap) holds them under the even share
    /// keep what they can take, and the others split the rest evenly.
    pub fn rates(&self, classes: &[&str], unix_secs: f64) -> Vec<f64> {
        let n = classes.len();
        if n == 0 {
            return Vec::new();
        }
        let per_cap = self.per_transfer_cap_bytes_per_sec.unwrap_or(f64::INFINITY);
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for c in classes {
            *counts.entry(c).or_default() += 1;
        }
        // Per class: the most each of its transfers can take, whatever the link gives.
        let mut limits: Vec<(&str, usize, f64)> = counts
            .iter()
            .map(|(class, count)| {
                let class_share = self.class_cap(class).unwrap_or(f64::INFINITY) / *count as f64;
                (*class, *count, class_share.min(per_cap))
            })
            .collect();
        limits.sort_by(|a, b| a.2.total_cmp(&b.2));
        let mut left = self.aggregate_rate(n) * (1.0 - self.load_at(unix_secs));
        let mut unfrozen = n;
        let mut rate_of: BTreeMap<&str, f64> = BTreeMap::new();
        for (class, count, limit) in limits {
            let even = left / unfrozen as f64;
            let rate = limit.min(even);
            rate_of.insert(class, rate);
            left -= rate * count as f64;
            unfrozen -= count;
        }
        classes.iter().map(|c| rate_of[c]).collect()
    }

    /// Seconds a VM spends in Initialize: half the per-VM overhead.
    pub fn initialize_secs(&self) -> f64 {
        self.per_vm_overhead_secs / 2.0
    }

    /// Seconds a VM spends in VirtualMachineCreation: the other half of the per-VM overhead.
    pub fn creation_secs(&self) -> f64 {
        self.per_vm_overhead_secs - self.initialize_secs()
    }

    /// Seconds from `unix_secs` until the first of the running transfers ends or the load
    /// changes, whichever comes first (infinite when nothing runs).
    pub fn secs_to_next_change(&self, remaining: &[f64], classes: &[&str], unix_secs: f64) -> f64 {
        let running: Vec<usize> = (0..remaining.len())
            .filter(|&i| remaining[i] > 0.0)
            .collect();
        if running.is_empty() {
            return f64::INFINITY;
        }
        let live: Vec<&str> = running.iter().map(|&i| classes[i]).collect();
        let rates = self.rates(&live, unix_secs);
        running
            .iter()
            .zip(rates)
            .map(|(&i, r)| remaining[i] / r)
            .fold(self.secs_to_load_change(unix_secs), f64::min)
    }

    /// Advances the running transfers by `dt_secs` from `unix_secs`: `remaining` holds the bytes
    /// left of each transfer and `classes` its storage class. Transfers that finish inside the
    /// step free their share for the others at that instant, and a load change takes effect when
    /// it happens (exact event stepping, so the result does not depend on the step size).
    /// Finished transfers are left at 0 and no longer count as running. Returns the bytes moved.
    pub fn advance_at(
        &self,
        remaining: &mut [f64],
        classes: &[&str],
        unix_secs: f64,
        dt_secs: f64,
    ) -> f64 {
        let joins = vec![0.0; remaining.len()];
        self.advance_from(remaining, classes, &joins, unix_secs, dt_secs)
            .moved
    }

    /// [`LinkModel::advance_at`] with transfers that join the link partway through the step:
    /// transfer `i` runs from `joins[i]` seconds into it (0: from its start; `dt_secs` or more:
    /// not in this step). A join is one more event of the exact stepping, so a simulator that
    /// ticks gets the same result as one that does not. Also says when each transfer ended.
    pub fn advance_from(
        &self,
        remaining: &mut [f64],
        classes: &[&str],
        joins: &[f64],
        unix_secs: f64,
        dt_secs: f64,
    ) -> Advanced {
        let dt = dt_secs.max(0.0);
        let mut out = Advanced {
            moved: 0.0,
            ended_at: vec![None; remaining.len()],
        };
        let mut t = 0.0;
        while t < dt {
            let waiting = |i: usize| remaining[i] > 0.0 && joins[i] > t;
            let next_join = (0..remaining.len())
                .filter(|&i| waiting(i))
                .map(|i| joins[i])
                .fold(dt, f64::min);
            let running: Vec<usize> = (0..remaining.len())
                .filter(|&i| remaining[i] > 0.0 && joins[i] <= t)
                .collect();
            if running.is_empty() {
                t = next_join;
                continue;
            }
            let live: Vec<&str> = running.iter().map(|&i| classes[i]).collect();
            let rates = self.rates(&live, unix_secs + t);
            let step = running
                .iter()
                .zip(&rates)
                .map(|(&i, r)| remaining[i] / r)
                .fold(self.secs_to_load_change(unix_secs + t), f64::min)
                .min(next_join - t);
            for (&i, rate) in running.iter().zip(&rates) {
                let done = (rate * step).min(remaining[i]);
                out.moved += done;
                remaining[i] -= done;
                // Float dust must not keep a transfer "running" for ever.
                if remaining[i] < 1e-6 {
                    remaining[i] = 0.0;
                    out.ended_at[i] = Some(t + step);
                }
            }
            t += step;
        }
        out
    }

    /// [`LinkModel::advance_at`] for transfers of one class, at a time of day without load.
    pub fn advance(&self, remaining: &mut [f64], dt_secs: f64) -> f64 {
        let classes = vec![""; remaining.len()];
        self.advance_at(remaining, &classes, 0.0, dt_secs)
    }

    /// The best aggregate the link can carry at `unix_secs` into the storage classes `classes`
    /// (each listed once), over any number of transfers: max over n of min(aggregate(n) x (1 -
    /// load), n x per-transfer cap), and no more than the classes' write caps together.
    pub fn best_aggregate_rate(&self, classes: &[&str], unix_secs: f64) -> f64 {
        self.best_aggregate(classes, 1.0 - self.load_at(unix_secs))
    }

    /// [`LinkModel::best_aggregate_rate`] with `free` of the bandwidth left by background load.
    fn best_aggregate(&self, classes: &[&str], free: f64) -> f64 {
        let per_cap = self.per_transfer_cap_bytes_per_sec.unwrap_or(f64::INFINITY);
        let link = (1..=4096)
            .map(|n| (self.aggregate_rate(n) * free).min(n as f64 * per_cap))
            .fold(0.0, f64::max);
        let storage: f64 = if classes.is_empty() {
            f64::INFINITY
        } else {
            classes
                .iter()
                .map(|c| self.class_cap(c).unwrap_or(f64::INFINITY))
                .sum()
        };
        link.min(storage)
    }

    /// The honest lower bound on the makespan of moving `vms` (each a list of disks: bytes and
    /// target storage class) from `start_unix_secs`, whatever the schedule: the largest of
    /// - the time to move all bytes if the link carried, at every instant, the best aggregate it
    ///   can then ([`LinkModel::best_aggregate_rate`], the background load of the hour included);
    /// - per storage class with a write cap, its bytes over its cap;
    /// - what cannot overlap: the longest VM's own transfer (its biggest disk at the per-transfer
    ///   cap, its bytes at the best aggregate) plus its fixed overhead.
    pub fn lower_bound_secs(&self, vms: &[Vec<(u64, &str)>], start_unix_secs: f64) -> f64 {
        let mut classes: Vec<&str> = vms.iter().flatten().map(|d| d.1).collect();
        classes.sort_unstable();
        classes.dedup();
        let total: f64 = vms.iter().flatten().map(|d| d.0 as f64).sum();
        let mut bound = self.secs_to_move(total, &classes, start_unix_secs);
        for class in &classes {
            if let Some(cap) = self.class_cap(class) {
                let bytes: f64 = vms
                    .iter()
                    .flatten()
                    .filter(|d| d.1 == *class)
                    .map(|d| d.0 as f64)
                    .sum();
                bound = bound.max(bytes / cap);
            }
        }
        let per_cap = self.per_transfer_cap_bytes_per_sec.unwrap_or(f64::INFINITY);
        for vm in vms.iter().filter(|vm| !vm.is_empty()) {
            let vm_classes: Vec<&str> = vm.iter().map(|d| d.1).collect();
            let best = self.best_aggregate(&vm_classes, 1.0);
            let bytes: f64 = vm.iter().map(|d| d.0 as f64).sum();
            let longest_disk = vm
                .iter()
                .map(|d| d.0 as f64 / per_cap.min(self.class_cap(d.1).unwrap_or(f64::INFINITY)))
                .fold(0.0, f64::max);
            bound = bound.max(self.per_vm_overhead_secs + longest_disk.max(bytes / best));
        }
        bound
    }

    /// Seconds to move `bytes` from `unix_secs` at the best aggregate of each moment.
    fn secs_to_move(&self, bytes: f64, classes: &[&str], unix_secs: f64) -> f64 {
        let (mut left, mut t) = (bytes, 0.0);
        // A day has at most 2 load changes per load: the loop ends within days.
        for _ in 0..1_000_000 {
            if left <= 0.0 {
                break;
            }
            let rate = self.best_aggregate_rate(classes, unix_secs + t);
            let step = self.secs_to_load_change(unix_secs + t);
            if rate * step >= left {
                return t + left / rate;
            }
            left -= rate * step;
            t += step;
        }
        t
    }
}

/// The highest rate taken as real: 1 PB/s, ten thousand times an 800 Gbit/s Ethernet link (the
/// fastest there is); beyond it every figure computed from the rate rounds to nothing.
pub const MAX_RATE_BYTES_PER_SEC: f64 = 1e15;

/// Parses a rate into bytes per second. Byte rates use the size units of
/// [`crate::size::parse_size`] (`1.25GB/s`, `800MiB/s`); bit rates use decimal or binary prefixes
/// with `bit` (`10Gbit/s`, `100Mbit/s`, `1Gibit/s`) or `bps` (`10Gbps`). The `/s` is optional
/// for byte units (`800MiB` means per second).
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let bad = || {
        format!(
            "{text:?} is not a rate (expected a number and a unit, like 10Gbit/s, 1.25GB/s or 800MiB/s)"
        )
    };
    let body = trimmed
        .strip_suffix("/s")
        .or_else(|| trimmed.strip_suffix("/S"))
        .unwrap_or(trimmed)
        .trim();
    let lower = body.to_ascii_lowercase();
    let bits = lower
        .strip_suffix("bit")
        .or_else(|| lower.strip_suffix("bits"))
        .or_else(|| lower.strip_suffix("bps"));
    let rate = match bits {
        Some(prefixed) => {
            let split = prefixed
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(prefixed.len());
            let (number, prefix) = prefixed.split_at(split);
            let number: f64 = number.parse().map_err(|_| bad())?;
            let multiplier = match prefix.trim() {
                "" => 1.0,
                "k" => 1e3,
                "m" => 1e6,
                "g" => 1e9,
                "t" => 1e12,
                "ki" => 1024.0,
                "mi" => 1024f64.powi(2),
                "gi" => 1024f64.powi(3),
                "ti" => 1024f64.powi(4),
                _ => {
                    return Err(format!(
                        "{text:?}: unknown bit-rate prefix {prefix:?} (use k, M, G, T, Ki, Mi, Gi, Ti)"
                    ));
                }
            };
            number * multiplier / 8.0
        }
        None => {
            // parse_size rounds fractions up to whole bytes, which is exact enough for a rate.
            crate::size::parse_size(body).map_err(|e| format!("{e} (in rate {text:?})"))? as f64
        }
    };
    if !rate.is_finite() || rate <= 0.0 {
        return Err(format!("{text:?}: a rate must be greater than zero"));
    }
    if rate > MAX_RATE_BYTES_PER_SEC {
        return Err(format!(
            "{text:?}: more than 1PB/s (8Pbit/s), ten thousand times the fastest Ethernet link: a unit mistake?"
        ));
    }
    Ok(rate)
}

/// The one duration syntax of every flag (`common::duration`), under the name the link model's
/// users know.
pub use crate::duration::parse_secs as parse_duration_secs;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!(parse_rate("10Gbit/s").unwrap(), 1.25e9);
        assert_eq!(parse_rate("10Gbps").unwrap(), 1.25e9);
        assert_eq!(parse_rate("1.25GB/s").unwrap(), 1.25e9);
        assert_eq!(parse_rate("800MiB/s").unwrap(), 800.0 * 1024.0 * 1024.0);
        assert_eq!(parse_rate("100Mbit/s").unwrap(), 12.5e6);
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("0GB/s").is_err());
        assert!(parse_rate("10Xbit/s").is_err());
    }

    #[test]
    fn contention_reduces_aggregate() {
        let link = LinkModel {
            bandwidth_bytes_per_sec: 1000.0,
            contention_threshold: 4,
            contention_penalty: 0.5,
            per_vm_overhead_secs: 10.0,
            ..LinkModel::default()
        };
        assert_eq!(link.rate_per_transfer(0), 1000.0);
        assert_eq!(link.rate_per_transfer(1), 1000.0);
        assert_eq!(link.rate_per_transfer(4), 250.0);
        // 8 running: efficiency 1 - 0.5 * 4/8 = 0.75.
        assert_eq!(link.aggregate_rate(8), 750.0);
        assert_eq!(link.rate_per_transfer(8), 750.0 / 8.0);
        let steep = LinkModel {
            contention_penalty: 5.0,
            ..link.clone()
        };
        assert_eq!(steep.efficiency(100), MIN_EFFICIENCY);
        assert_eq!(link.initialize_secs() + link.creation_secs(), 10.0);
    }

    /// 100 B/s shared evenly, no contention, no overhead: rates a test can work out by hand.
    fn plain_100() -> LinkModel {
        LinkModel {
            bandwidth_bytes_per_sec: 100.0,
            contention_threshold: 10,
            contention_penalty: 0.0,
            per_vm_overhead_secs: 0.0,
            ..LinkModel::default()
        }
    }

    #[test]
    fn advance_is_exact_across_completions() {
        let link = plain_100();
        // Two transfers of 100 and 300 bytes: 2 s at 50 each, then 200 bytes alone at 100: 2 s.
        let mut one_step = [100.0, 300.0];
        assert_eq!(link.advance(&mut one_step, 4.0), 400.0);
        assert_eq!(one_step, [0.0, 0.0]);
        let mut small_steps = [100.0, 300.0];
        for _ in 0..40 {
            link.advance(&mut small_steps, 0.1);
        }
        assert!(small_steps.iter().all(|r| *r == 0.0));
        let mut partial = [100.0, 300.0];
        link.advance(&mut partial, 3.0);
        assert_eq!(partial, [0.0, 100.0]);
    }

    #[test]
    fn transfers_join_partway_and_say_when_they_ended() {
        let link = plain_100();
        // By hand: 300 bytes from 0 s alone at 100 (1 s: 100 left 200), then from 1 s shared
        // with the 100 bytes that join there, 50 each: the second ends at 3 s (200 - 100 = 100
        // left of the first), which then runs alone at 100 and ends at 4 s. A third joins at 5 s,
        // past the step, and moves nothing.
        let mut left = [300.0, 100.0, 50.0];
        let step = link.advance_from(&mut left, &["", "", ""], &[0.0, 1.0, 5.0], 0.0, 4.5);
        assert_eq!(left, [0.0, 0.0, 50.0]);
        assert_eq!(step.moved, 400.0);
        assert_eq!(step.ended_at, [Some(4.0), Some(3.0), None]);
        // The same split in steps of 0.5 s, each join carried as an offset into its step: the
        // same end times (step start + offset).
        let mut left = [300.0, 100.0];
        let mut ends = [None, None];
        for k in 0..9 {
            let t0 = k as f64 * 0.5;
            let joins = [0.0, (1.0 - t0).max(0.0)];
            let step = link.advance_from(&mut left, &["", ""], &joins, t0, 0.5);
            for (end, at) in ends.iter_mut().zip(step.ended_at) {
                *end = end.or(at.map(|a| t0 + a));
            }
        }
        assert_eq!(ends, [Some(4.0), Some(3.0)]);
    }

    fn capped() -> LinkModel {
        LinkModel::parse(
            "bandwidth: 1000B/s\nper_transfer_cap: 300B/s\nstorage_write_caps: {fast: 200B/s}\n\
             contention_threshold: 10\nper_vm_overhead: 10s\n\
             background_load: [{window: \"08:00-18:00\", fraction: 0.5}]\n",
        )
        .unwrap()
    }

    #[test]
    fn caps_share_max_min_fairly() {
        let link = capped();
        // Two transfers: each at its cap, 300 (600 of the 1000 used).
        assert_eq!(link.rates(&["", ""], 0.0), [300.0, 300.0]);
        // Five: the even share, 200, is under the cap.
        assert_eq!(link.rates(&[""; 5], 0.0), [200.0; 5]);
        // Two into class fast share its 200; the third takes its cap, 300.
        assert_eq!(
            link.rates(&["fast", "fast", ""], 0.0),
            [100.0, 100.0, 300.0]
        );
        // At noon the load takes half: 500 for four transfers of no class, 125 each.
        assert_eq!(link.rates(&[""; 4], 12.0 * 3600.0), [125.0; 4]);
    }

    #[test]
    fn advance_follows_the_load_of_the_hour() {
        let link = capped();
        // From 17:59:50, 5 transfers of 4000 bytes: 10 s at 100 each (500 / 5), then 200 each.
        let mut left = [4000.0; 5];
        let moved = link.advance_at(
            &mut left,
            &[""; 5],
            (17.0 * 3600.0) + 59.0 * 60.0 + 50.0,
            20.0,
        );
        assert!(
            (moved - 5.0 * (10.0 * 100.0 + 10.0 * 200.0)).abs() < 1e-6,
            "{moved}"
        );
    }

    #[test]
    fn the_lower_bound_is_the_largest_of_its_three_parts() {
        let link = capped();
        // From midnight, 10 disks of 3000 bytes, no class: best aggregate min(1000, 10 x 300)
        // = 1000 until 08:00, so 30 s.
        let vms: Vec<Vec<(u64, &str)>> = (0..10).map(|_| vec![(3000, "")]).collect();
        assert!((link.lower_bound_secs(&vms, 0.0) - 30.0).abs() < 1e-9);
        // One VM of one 3000-byte disk: 3000 / 300 + 10 s of overhead.
        assert!((link.lower_bound_secs(&[vec![(3000, "")]], 0.0) - 20.0).abs() < 1e-9);
        // 4000 bytes into class fast: 4000 / 200.
        let fast = vec![vec![(2000, "fast")], vec![(2000, "fast")]];
        assert!((link.lower_bound_secs(&fast, 0.0) - 20.0).abs() < 1e-9);
        // At 07:59:50, 20000 bytes: 10 s at 1000, then 10000 bytes at 500: 30 s.
        let vms: Vec<Vec<(u64, &str)>> = (0..10).map(|_| vec![(2000, "")]).collect();
        let bound = link.lower_bound_secs(&vms, 8.0 * 3600.0 - 10.0);
        assert!((bound - 30.0).abs() < 1e-6, "{bound}");
    }

    #[test]
    fn named_models_parse_and_a_bad_file_is_named() {
        for (name, _, _) in NAMED_MODELS {
            assert!(LinkModel::named(name).is_some(), "{name}");
        }
        let collapse = LinkModel::named("collapse-1g").unwrap();
        assert_eq!(collapse.bandwidth_bytes_per_sec, 125e6);
        assert_eq!(collapse.contention_threshold, 4);
        let err = LinkModel::named_or_file("/nonexistent/model.yaml").unwrap_err();
        assert!(
            err.contains("clean-10g") && err.contains("/nonexistent"),
            "{err}"
        );
        assert!(LinkModel::parse("bandwidth: fast\n").is_err());
        assert!(LinkModel::parse("bandwidth: 1GB/s\nbogus: 1\n").is_err());
    }
}
