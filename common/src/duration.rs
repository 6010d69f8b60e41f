//! The one duration syntax of every flag (vm-select's --active-within, plan-run's and vm-verify's
//! waits, the link model's overheads): a number, decimals allowed, and a unit.

/// Parses a duration into seconds: a bare number is seconds; units `ms`, `s`, `m` (or `min`),
/// `h`, `d` and `w` (`30s`, `2m`, `1.5h`, `90d`).
pub fn parse_secs(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (like 30s, 2m, 1.5h or 90d)"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 7.0 * 86_400.0,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use ms, s, m, h, d or w)"
            ));
        }
    };
    Ok(value * scale)
}

/// [`parse_secs`] for a wait or timeout: finite and not negative.
pub fn parse_non_negative_secs(text: &str) -> Result<f64, String> {
    match parse_secs(text)? {
        secs if secs.is_finite() && secs >= 0.0 => Ok(secs),
        _ => Err("must not be negative".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_secs("30").unwrap(), 30.0);
        assert_eq!(parse_secs("250ms").unwrap(), 0.25);
        assert_eq!(parse_secs("2m").unwrap(), 120.0);
        assert_eq!(parse_secs("2min").unwrap(), 120.0);
        assert_eq!(parse_secs("1.5h").unwrap(), 5400.0);
        assert_eq!(parse_secs(" 90d ").unwrap(), 90.0 * 24.0 * 3600.0);
        assert_eq!(parse_secs("12w").unwrap(), 12.0 * 7.0 * 24.0 * 3600.0);
        assert!(
            parse_secs("soon")
                .unwrap_err()
                .contains("is not a duration")
        );
        assert!(parse_secs("-5d").is_err());
        assert!(
            parse_secs("90x")
                .unwrap_err()
                .contains("unknown unit \"x\"")
        );
        assert_eq!(parse_non_negative_secs("0").unwrap(), 0.0);
        assert!(parse_non_negative_secs("1e999").is_err());
    }
}
