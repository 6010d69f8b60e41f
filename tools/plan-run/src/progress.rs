//! Progress bars on a terminal (stderr) only: one per running plan, bytes copied of its total.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;

pub struct Progress {
    multi: Option<MultiProgress>,
    bars: BTreeMap<String, ProgressBar>,
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        Progress {
            multi: enabled.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            bars: BTreeMap::new(),
        }
    }

    /// Sets a plan's bar to `done` of `total` bytes, creating it on first use.
    pub fn set(&mut self, plan: &str, done: u64, total: u64) {
        let Some(multi) = &self.multi else { return };
        let bar = self.bars.entry(plan.to_string()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(total.max(1)));
            if let Ok(style) = ProgressStyle::with_template(
                "{prefix:>24} [{bar:30}] {binary_bytes}/{binary_total_bytes} {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(plan.to_string());
            bar
        });
        bar.set_length(total.max(1));
        bar.set_position(done.min(total));
    }

    pub fn finish(&mut self, plan: &str, outcome: &str) {
        if let Some(bar) = self.bars.remove(plan) {
            bar.finish_with_message(outcome.to_string());
        }
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
        if let Some(multi) = &self.multi {
            let _ = multi.clear();
        }
        self.bars.clear();
    }
}
