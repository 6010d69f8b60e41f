//! The terminal while plan-run runs (stderr, and only when it is a terminal): a status line saying
//! what plan-run waits for, with the aggregate rate, and one bar per running plan, aligned, with
//! its rate and ETA; a failed plan's bar stays where it stopped and says so. Names and messages
//! from the cluster pass through common::untrusted before they reach the terminal.

use crate::sched::State;
use common::untrusted::for_terminal;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Plan names longer than this are cut in the bars' first column.
const MAX_NAME_WIDTH: usize = 40;
/// The aggregate rate is measured over this much of the recent past.
const RATE_WINDOW: Duration = Duration::from_secs(20);

pub struct Progress {
    multi: Option<MultiProgress>,
    status: Option<ProgressBar>,
    bars: BTreeMap<String, ProgressBar>,
    /// Width of the bars' name column: the longest name shown so far.
    width: usize,
    color: bool,
    /// Bytes done per plan, finished plans included, and their sum over time (for the rate).
    done: BTreeMap<String, u64>,
    samples: VecDeque<(Instant, u64)>,
}

/// How many plans are in each state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub waiting: usize,
    pub queued: usize,
    pub running: usize,
    pub done: usize,
}

impl Counts {
    pub fn of(states: impl IntoIterator<Item = Option<State>>) -> Counts {
        let mut counts = Counts::default();
        for state in states.into_iter().flatten() {
            match state {
                State::Waiting => counts.waiting += 1,
                State::Queued => counts.queued += 1,
                State::Running => counts.running += 1,
                State::Done => counts.done += 1,
            }
        }
        counts
    }
}

/// The status line: `waiting for 3 Plans to be Ready · 12 queued · 4 running · 9 done · 1.1 GiB/s`.
pub fn status_line(counts: Counts, bytes_per_sec: Option<f64>) -> String {
    let mut parts = Vec::new();
    if counts.waiting > 0 {
        let plans = if counts.waiting == 1 { "Plan" } else { "Plans" };
        parts.push(format!(
            "waiting for {} {plans} to be Ready",
            counts.waiting
        ));
    }
    parts.push(format!("{} queued", counts.queued));
    parts.push(format!("{} running", counts.running));
    parts.push(format!("{} done", counts.done));
    if let Some(rate) = bytes_per_sec {
        parts.push(format!("{}/s", human_rate(rate)));
    }
    parts.join(" · ")
}

/// `1.1 GiB`, one decimal, as people read rates.
fn human_rate(bytes_per_sec: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes_per_sec.max(0.0);
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `name` for the bars' first column: escaped, cut to `width` (with `…`), padded to it.
fn column(name: &str, width: usize) -> String {
    let name = for_terminal(name);
    let count = name.chars().count();
    if count > width {
        let cut: String = name.chars().take(width.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        format!("{name}{}", " ".repeat(width - count))
    }
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        let multi = enabled.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let status = multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new_spinner());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Progress {
            multi,
            status,
            bars: BTreeMap::new(),
            width: 0,
            color: common::cli::color_on_stderr(),
            done: BTreeMap::new(),
            samples: VecDeque::new(),
        }
    }

    fn style(&self, failed: bool) -> Option<ProgressStyle> {
        let (bar, msg) = match (failed, self.color) {
            (true, true) => ("{bar:30.red}", "{msg:.red.bold}"),
            (false, true) => ("{bar:30.cyan}", "{msg:.green}"),
            (_, false) => ("{bar:30}", "{msg}"),
        };
        // A stopped plan has no rate or ETA: blanks of their width keep the columns aligned.
        let rate_eta = if failed {
            " ".repeat(21)
        } else {
            "{binary_bytes_per_sec:>12} ETA {eta:>4}".to_string()
        };
        let template = format!(
            "{{prefix}} [{bar}] {{binary_bytes:>10}}/{{binary_total_bytes:<10}} {rate_eta} {msg}"
        );
        let chars = if failed { "xx-" } else { "=> " };
        ProgressStyle::with_template(&template)
            .ok()
            .map(|s| s.progress_chars(chars))
    }

    /// Sets a plan's bar to `done` of `total` bytes, creating it on first use.
    pub fn set(&mut self, plan: &str, done: u64, total: u64) {
        self.done.insert(plan.to_string(), done.min(total));
        let Some(multi) = self.multi.clone() else {
            return;
        };
        let shown = for_terminal(plan).chars().count().min(MAX_NAME_WIDTH);
        if shown > self.width {
            self.width = shown;
            for (name, bar) in &self.bars {
                bar.set_prefix(column(name, self.width));
            }
        }
        if !self.bars.contains_key(plan) {
            let bar = multi.add(ProgressBar::new(total.max(1)));
            if let Some(style) = self.style(false) {
                bar.set_style(style);
            }
            bar.set_prefix(column(plan, self.width));
            self.bars.insert(plan.to_string(), bar);
        }
        let bar = &self.bars[plan];
        bar.set_length(total.max(1));
        bar.set_position(done.min(total));
    }

    /// Ends a plan's bar: full and `Succeeded`, or, for any other outcome (Failed, Canceled,
    /// deleted), left where it stopped, marked in red with the outcome in capitals.
    pub fn finish(&mut self, plan: &str, outcome: &str) {
        let Some(bar) = self.bars.remove(plan) else {
            return;
        };
        if outcome == "Succeeded" {
            bar.set_position(bar.length().unwrap_or(0));
            bar.finish_with_message(outcome.to_string());
            return;
        }
        if let Some(style) = self.style(true) {
            bar.set_style(style);
        }
        bar.abandon_with_message(format!("✗ {}", outcome.to_uppercase()));
    }

    /// Updates the status line: what plan-run waits for, and the aggregate rate.
    pub fn status(&mut self, counts: Counts) {
        let total: u64 = self.done.values().sum();
        let now = Instant::now();
        self.samples.push_back((now, total));
        while self
            .samples
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        let Some(status) = &self.status else { return };
        let rate = self.samples.front().and_then(|(at, bytes)| {
            let secs = now.duration_since(*at).as_secs_f64();
            (secs >= 1.0).then(|| total.saturating_sub(*bytes) as f64 / secs)
        });
        status.set_message(status_line(counts, rate));
    }

    /// Prints a line above the bars (or plainly without them).
    pub fn println(&self, line: &str) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    pub fn clear(&mut self) {
        if let Some(status) = self.status.take() {
            status.finish_and_clear();
        }
        if let Some(multi) = &self.multi {
            let _ = multi.clear();
        }
        self.bars.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_says_what_plan_run_waits_for() {
        let counts = Counts {
            waiting: 3,
            queued: 12,
            running: 4,
            done: 9,
        };
        // 1.1 GiB/s, written out: 1.1 × 2^30 bytes a second.
        assert_eq!(
            status_line(counts, Some(1.1 * 1073741824.0)),
            "waiting for 3 Plans to be Ready · 12 queued · 4 running · 9 done · 1.1 GiB/s"
        );
        let counts = Counts {
            waiting: 0,
            queued: 0,
            running: 1,
            done: 2,
        };
        assert_eq!(status_line(counts, None), "0 queued · 1 running · 2 done");
        let one = Counts {
            waiting: 1,
            ..Counts::default()
        };
        assert!(status_line(one, None).starts_with("waiting for 1 Plan to be Ready"));
    }

    #[test]
    fn counts_come_from_the_states() {
        let states = [
            Some(State::Waiting),
            Some(State::Queued),
            Some(State::Queued),
            Some(State::Running),
            Some(State::Done),
            None,
        ];
        assert_eq!(
            Counts::of(states),
            Counts {
                waiting: 1,
                queued: 2,
                running: 1,
                done: 1
            }
        );
    }

    #[test]
    fn names_are_escaped_cut_and_padded_to_one_width() {
        assert_eq!(column("ns/web", 8), "ns/web  ");
        assert_eq!(column("ns/a-very-long-plan", 8), "ns/a-ve…");
        assert_eq!(column("ns/\u{1b}[2J", 12), "ns/\\u{1b}[2J");
    }
}
