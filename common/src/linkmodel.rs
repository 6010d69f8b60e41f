//! A deterministic model of the shared link disk transfers run over, used by forklift-sim to pace
//! its simulated transfers and by `plan-run --simulate` to predict them, so the two agree.
//!
//! The model: `n` running disk transfers share one link of `bandwidth_bytes_per_sec`. Up to
//! `contention_threshold` transfers get the whole link split evenly. Beyond it, the aggregate
//! shrinks (seek storms on the storage domain, TCP fighting on the wire):
//!
//! ```text
//! efficiency(n) = 1                                                     if n <= threshold
//!               = max(MIN_EFFICIENCY, 1 - penalty * (n - threshold) / n) otherwise
//! aggregate(n)  = bandwidth * efficiency(n)
//! rate(n)       = aggregate(n) / n          (per transfer; rate(0) = bandwidth)
//! ```
//!
//! Every VM also spends a fixed `per_vm_overhead_secs` outside disk transfer: half of it in
//! Initialize and half in VirtualMachineCreation ([`LinkModel::initialize_secs`],
//! [`LinkModel::creation_secs`]).
//!
//! A transfer is one disk: Forklift copies a VM's disks in parallel, so a VM with three disks
//! counts three towards `n`. forklift-sim always paces disks; `plan-run --simulate` does when VM
//! records (`--records`) give the disks, and otherwise falls back to one transfer per VM carrying
//! the VM's total, which agrees when VMs have one disk and is an approximation otherwise.

use serde::{Deserialize, Serialize};

/// The aggregate never drops below this fraction of the bandwidth, however many transfers run.
pub const MIN_EFFICIENCY: f64 = 0.1;

/// A shared link; see the module documentation for the formula.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinkModel {
    /// Aggregate bandwidth of the link, in bytes per second.
    pub bandwidth_bytes_per_sec: f64,
    /// Number of concurrent transfers the link carries without losing aggregate throughput.
    pub contention_threshold: u32,
    /// How fast aggregate throughput falls beyond the threshold (0 = never, 1 = steeply).
    pub contention_penalty: f64,
    /// Fixed time per VM outside disk transfer (Initialize plus VirtualMachineCreation), seconds.
    pub per_vm_overhead_secs: f64,
}

impl Default for LinkModel {
    /// 10 Gbit/s, 10 transfers before contention, penalty 0.5, 60 s of overhead per VM.
    fn default() -> Self {
        LinkModel {
            bandwidth_bytes_per_sec: 10e9 / 8.0,
            contention_threshold: 10,
            contention_penalty: 0.5,
            per_vm_overhead_secs: 60.0,
        }
    }
}

impl LinkModel {
    /// Fraction of the bandwidth the link delivers in aggregate with `n_running` transfers.
    pub fn efficiency(&self, n_running: usize) -> f64 {
        let threshold = self.contention_threshold as usize;
        if n_running <= threshold {
            return 1.0;
        }
        let over = (n_running - threshold) as f64 / n_running as f64;
        (1.0 - self.contention_penalty * over).max(MIN_EFFICIENCY)
    }

    /// Aggregate throughput with `n_running` transfers, bytes per second.
    pub fn aggregate_rate(&self, n_running: usize) -> f64 {
        self.bandwidth_bytes_per_sec * self.efficiency(n_running)
    }

    /// Throughput of each of `n_running` transfers, bytes per second. With none running it is
    /// what a first transfer would get: the whole bandwidth.
    pub fn rate_per_transfer(&self, n_running: usize) -> f64 {
        if n_running == 0 {
            return self.bandwidth_bytes_per_sec;
        }
        self.aggregate_rate(n_running) / n_running as f64
    }

    /// Seconds a VM spends in Initialize: half the per-VM overhead.
    pub fn initialize_secs(&self) -> f64 {
        self.per_vm_overhead_secs / 2.0
    }

    /// Seconds a VM spends in VirtualMachineCreation: the other half of the per-VM overhead.
    pub fn creation_secs(&self) -> f64 {
        self.per_vm_overhead_secs - self.initialize_secs()
    }

    /// Advances the running transfers by `dt_secs`: `remaining` holds the bytes left of each
    /// running transfer. Transfers that finish inside the step free their share for the others
    /// at that instant (exact event stepping, so the result does not depend on the step size).
    /// Finished transfers are left at 0 and no longer count as running. Returns the bytes moved.
    pub fn advance(&self, remaining: &mut [f64], dt_secs: f64) -> f64 {
        let mut left = dt_secs.max(0.0);
        let mut moved = 0.0;
        loop {
            let running = remaining.iter().filter(|r| **r > 0.0).count();
            if running == 0 || left <= 0.0 {
                return moved;
            }
            let rate = self.rate_per_transfer(running);
            let smallest = remaining
                .iter()
                .copied()
                .filter(|r| *r > 0.0)
                .fold(f64::INFINITY, f64::min);
            let step = (smallest / rate).min(left);
            let share = rate * step;
            for r in remaining.iter_mut().filter(|r| **r > 0.0) {
                let done = share.min(*r);
                moved += done;
                *r -= done;
                // Float dust must not keep a transfer "running" for ever.
                if *r < 1e-6 {
                    *r = 0.0;
                }
            }
            left -= step;
        }
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

/// Parses a duration into seconds: a bare number is seconds; suffixes `ms`, `s`, `m`, `h`
/// (`30s`, `2m`, `1.5h`).
pub fn parse_duration_secs(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (like 30s, 2m or 1.5h)"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "{text:?}: unknown duration unit {other:?} (use ms, s, m or h)"
            ));
        }
    };
    Ok(value * scale)
}

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
    fn parses_durations() {
        assert_eq!(parse_duration_secs("30").unwrap(), 30.0);
        assert_eq!(parse_duration_secs("2m").unwrap(), 120.0);
        assert_eq!(parse_duration_secs("1.5h").unwrap(), 5400.0);
        assert!(parse_duration_secs("soon").is_err());
    }

    #[test]
    fn contention_reduces_aggregate() {
        let link = LinkModel {
            bandwidth_bytes_per_sec: 1000.0,
            contention_threshold: 4,
            contention_penalty: 0.5,
            per_vm_overhead_secs: 10.0,
        };
        assert_eq!(link.rate_per_transfer(0), 1000.0);
        assert_eq!(link.rate_per_transfer(1), 1000.0);
        assert_eq!(link.rate_per_transfer(4), 250.0);
        // 8 running: efficiency 1 - 0.5 * 4/8 = 0.75.
        assert_eq!(link.aggregate_rate(8), 750.0);
        assert_eq!(link.rate_per_transfer(8), 750.0 / 8.0);
        let steep = LinkModel {
            contention_penalty: 5.0,
            ..link
        };
        assert_eq!(steep.efficiency(100), MIN_EFFICIENCY);
        assert_eq!(link.initialize_secs() + link.creation_secs(), 10.0);
    }

    #[test]
    fn advance_is_exact_across_completions() {
        let link = LinkModel {
            bandwidth_bytes_per_sec: 100.0,
            contention_threshold: 10,
            contention_penalty: 0.0,
            per_vm_overhead_secs: 0.0,
        };
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
}
