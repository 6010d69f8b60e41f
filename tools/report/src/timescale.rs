//! The time axis of the schedule charts: from the first event to the last, read in one time zone
//! (the system's unless --time-zone says), with ticks on round local times and the --window's
//! openings as spans.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use plan_run::window::{MINUTES_PER_DAY, Window};

pub struct TimeScale {
    pub start: Timestamp,
    pub end: Timestamp,
    pub zone: TimeZone,
    pub window: Option<Window>,
}

/// Tick steps, seconds: 5, 10, 15, 30 minutes; 1, 2, 3, 6, 12 hours; 1, 2, 7 days.
const STEPS: [i64; 12] = [
    300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800,
];
const MAX_TICKS: i64 = 10;

impl TimeScale {
    pub fn new(start: Timestamp, end: Timestamp, zone: TimeZone, window: Option<Window>) -> Self {
        // A run of one instant still gets a visible axis.
        let end = end.max(start + SignedDuration::from_secs(60));
        TimeScale {
            start,
            end,
            zone,
            window,
        }
    }

    pub fn secs(&self, t: Timestamp) -> f64 {
        t.duration_since(self.start).as_secs_f64()
    }

    pub fn span_secs(&self) -> f64 {
        self.secs(self.end)
    }

    /// Where `t` falls between `left` and `right`.
    pub fn x(&self, t: Timestamp, left: f64, right: f64) -> f64 {
        let f = (self.secs(t) / self.span_secs()).clamp(0.0, 1.0);
        left + (right - left) * f
    }

    /// `2026-11-27 22:00` in the scale's zone.
    pub fn label(&self, t: Timestamp) -> String {
        t.to_zoned(self.zone.clone())
            .strftime("%Y-%m-%d %H:%M")
            .to_string()
    }

    /// `22:00`, with the date (`11-28 00:00`) where the day changes or on the first tick.
    fn short_label(&self, t: Timestamp, with_date: bool) -> String {
        let zoned = t.to_zoned(self.zone.clone());
        if with_date {
            zoned.strftime("%m-%d %H:%M").to_string()
        } else {
            zoned.strftime("%H:%M").to_string()
        }
    }

    /// The label of a point `secs` after the start (for plotters' axis).
    pub fn offset_label(&self, secs: f64) -> String {
        let t = self.start + SignedDuration::from_secs_f64(secs);
        let first_day = self.start.to_zoned(self.zone.clone()).date();
        let day = t.to_zoned(self.zone.clone()).date();
        self.short_label(t, day != first_day)
    }

    /// Midnight (local) of the start's day.
    fn first_midnight(&self) -> Timestamp {
        let date = self.start.to_zoned(self.zone.clone()).date();
        date.to_zoned(self.zone.clone())
            .map(|z| z.timestamp())
            .unwrap_or(self.start)
    }

    /// Round local times between start and end, at most ten, labelled.
    pub fn ticks(&self) -> Vec<(Timestamp, String)> {
        let span = self.span_secs();
        let step = STEPS
            .iter()
            .copied()
            .find(|s| span / (*s as f64) <= MAX_TICKS as f64)
            .unwrap_or(STEPS[STEPS.len() - 1]);
        let midnight = self.first_midnight();
        let mut t = midnight;
        let mut ticks = Vec::new();
        let mut last_day = None;
        while t <= self.end {
            if t >= self.start {
                let day = t.to_zoned(self.zone.clone()).date();
                ticks.push((t, self.short_label(t, last_day != Some(day))));
                last_day = Some(day);
            }
            t += SignedDuration::from_secs(step);
        }
        ticks
    }

    /// The window's openings that overlap the axis, clipped to it.
    pub fn windows(&self) -> Vec<(Timestamp, Timestamp)> {
        let Some(window) = self.window else {
            return Vec::new();
        };
        let minutes = (window.end + MINUTES_PER_DAY - window.start) % MINUTES_PER_DAY;
        let length = SignedDuration::from_secs(i64::from(minutes) * 60);
        let day = SignedDuration::from_hours(24);
        // From the day before the start: a window crossing midnight may be open at the start.
        let mut midnight = self.first_midnight() - day;
        let mut spans = Vec::new();
        while midnight <= self.end {
            // Local midnight plus the window's start (DST days are off by the shift, at most).
            let open = midnight + SignedDuration::from_secs(i64::from(window.start) * 60);
            let close = open + length;
            if close > self.start && open < self.end {
                spans.push((open.max(self.start), close.min(self.end)));
            }
            midnight = next_midnight(midnight, &self.zone);
        }
        spans
    }
}

/// The local midnight after `midnight` (a day may have 23 or 25 hours).
fn next_midnight(midnight: Timestamp, zone: &TimeZone) -> Timestamp {
    let date = midnight.to_zoned(zone.clone()).date();
    date.tomorrow()
        .ok()
        .and_then(|d| d.to_zoned(zone.clone()).ok())
        .map(|z| z.timestamp())
        .unwrap_or(midnight + SignedDuration::from_hours(24))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn scale(start: &str, end: &str, window: &str, zone: &str) -> TimeScale {
        TimeScale::new(
            t(start),
            t(end),
            TimeZone::get(zone).unwrap(),
            Some(Window::parse(window).unwrap()),
        )
    }

    #[test]
    fn windows_crossing_midnight_are_clipped_to_the_axis() {
        let s = scale(
            "2026-11-27T12:00:00Z",
            "2026-11-29T12:00:00Z",
            "22:00-06:00",
            "UTC",
        );
        assert_eq!(
            s.windows(),
            [
                (t("2026-11-27T22:00:00Z"), t("2026-11-28T06:00:00Z")),
                (t("2026-11-28T22:00:00Z"), t("2026-11-29T06:00:00Z")),
            ]
        );
        // Open already at the start (the night before's opening), closed after 06:00.
        let s = scale(
            "2026-11-28T01:00:00Z",
            "2026-11-28T08:00:00Z",
            "22:00-06:00",
            "UTC",
        );
        assert_eq!(
            s.windows(),
            [(t("2026-11-28T01:00:00Z"), t("2026-11-28T06:00:00Z"))]
        );
    }

    #[test]
    fn the_window_is_read_in_the_scales_zone() {
        // 22:00 in Prague (UTC+1 in November) is 21:00 UTC.
        let s = scale(
            "2026-11-27T12:00:00Z",
            "2026-11-28T12:00:00Z",
            "22:00-06:00",
            "Europe/Prague",
        );
        assert_eq!(
            s.windows(),
            [(t("2026-11-27T21:00:00Z"), t("2026-11-28T05:00:00Z"))]
        );
        assert_eq!(s.label(t("2026-11-27T21:00:00Z")), "2026-11-27 22:00");
    }

    #[test]
    fn ticks_fall_on_round_local_times_with_the_date_where_the_day_changes() {
        let s = scale(
            "2026-11-27T22:07:00Z",
            "2026-11-28T01:00:00Z",
            "22:00-06:00",
            "UTC",
        );
        let labels: Vec<String> = s.ticks().into_iter().map(|(_, l)| l).collect();
        // 2 h 53 min: 30-minute steps (10-minute ones would be 17 ticks, 15-minute ones 11).
        assert_eq!(
            labels,
            [
                "11-27 22:30",
                "23:00",
                "23:30",
                "11-28 00:00",
                "00:30",
                "01:00"
            ]
        );
    }
}
