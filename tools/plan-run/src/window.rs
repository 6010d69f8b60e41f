//! The agreed downtime window (`22:00-06:00`): new migrations start only inside it. Minutes of the
//! local day; a window whose end is before its start crosses midnight.

use std::fmt;

pub const MINUTES_PER_DAY: u32 = 24 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First minute of the day inside the window.
    pub start: u32,
    /// First minute of the day after the window.
    pub end: u32,
}

impl Window {
    /// Parses `HH:MM-HH:MM` (24-hour clock, local time).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("{text:?}: {why} (expected HH:MM-HH:MM, like 22:00-06:00)");
        let (start, end) = text
            .split_once('-')
            .ok_or_else(|| bad("no '-' between start and end"))?;
        let minute = |part: &str| -> Result<u32, String> {
            let (h, m) = part
                .trim()
                .split_once(':')
                .ok_or_else(|| bad("a time needs hours and minutes"))?;
            let h: u32 = h.parse().map_err(|_| bad("hours are not a number"))?;
            let m: u32 = m.parse().map_err(|_| bad("minutes are not a number"))?;
            if h > 24 || m > 59 || (h == 24 && m != 0) {
                return Err(bad("time out of range"));
            }
            Ok((h * 60 + m) % MINUTES_PER_DAY)
        };
        let window = Window {
            start: minute(start)?,
            end: minute(end)?,
        };
        if window.start == window.end {
            return Err(bad("start and end are the same time"));
        }
        Ok(window)
    }

    /// Whether `minute` (of the local day, 0..1440) lies inside the window.
    pub fn contains(&self, minute: u32) -> bool {
        let minute = minute % MINUTES_PER_DAY;
        if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }

    /// Seconds from `second_of_day` (local) until the window next opens; 0 when it is open.
    pub fn seconds_until_open(&self, second_of_day: u32) -> u32 {
        if self.contains(second_of_day / 60) {
            return 0;
        }
        let day = MINUTES_PER_DAY * 60;
        let start = self.start * 60;
        (start + day - second_of_day % day) % day
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32) -> u32 {
        h * 60 + m
    }

    #[test]
    fn a_window_crossing_midnight() {
        let w = Window::parse("22:00-06:00").unwrap();
        assert!(w.contains(at(22, 0)));
        assert!(w.contains(at(23, 59)));
        assert!(w.contains(at(0, 0)));
        assert!(w.contains(at(5, 59)));
        assert!(!w.contains(at(6, 0)));
        assert!(!w.contains(at(12, 0)));
        assert!(!w.contains(at(21, 59)));
        assert_eq!(w.to_string(), "22:00-06:00");
        assert_eq!(w.seconds_until_open(at(21, 0) * 60), 3600);
        assert_eq!(w.seconds_until_open(at(6, 0) * 60), 16 * 3600);
        assert_eq!(w.seconds_until_open(at(23, 0) * 60), 0);
    }

    #[test]
    fn a_window_within_a_day() {
        let w = Window::parse("01:30-04:00").unwrap();
        assert!(!w.contains(at(1, 29)));
        assert!(w.contains(at(1, 30)));
        assert!(!w.contains(at(4, 0)));
        assert_eq!(w.seconds_until_open(at(4, 0) * 60), (21 * 60 + 30) * 60);
        let w = Window::parse("20:00-24:00").unwrap();
        assert!(w.contains(at(23, 59)) && !w.contains(at(0, 0)));
    }

    #[test]
    fn bad_windows() {
        for bad in [
            "",
            "22:00",
            "22-06",
            "25:00-06:00",
            "22:00-22:00",
            "aa:00-06:00",
            "22:60-06:00",
        ] {
            let err = Window::parse(bad).unwrap_err();
            assert!(err.contains("HH:MM-HH:MM"), "{bad}: {err}");
        }
    }
}
