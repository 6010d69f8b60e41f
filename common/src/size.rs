//! Sizes and fractions as people type them (`40TiB`, `1.5T`, `500Gi`, `5.5%`), and byte counts as
//! people read them (binary units) and as Kubernetes reads them (quantities).

use humansize::{BINARY, format_size};

const KI: u128 = 1024;
const K: u128 = 1000;

/// Parses a size into bytes. Binary units: `KiB MiB GiB TiB PiB` (also `Ki Mi Gi Ti Pi`, the
/// Kubernetes spelling); decimal units: `kB MB GB TB PB` (also `k K M G T P`); `B` or no unit:
/// bytes. Units are case-insensitive; a decimal point is allowed (`1.5TiB`), rounding up to a byte.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let unit = unit.trim();
    if number.is_empty() {
        return Err(format!(
            "{text:?} is not a size (expected a number and a unit, like 40TiB or 500GB)"
        ));
    }
    let multiplier: u128 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => K,
        "m" | "mb" => K.pow(2),
        "g" | "gb" => K.pow(3),
        "t" | "tb" => K.pow(4),
        "p" | "pb" => K.pow(5),
        "ki" | "kib" => KI,
        "mi" | "mib" => KI.pow(2),
        "gi" | "gib" => KI.pow(3),
        "ti" | "tib" => KI.pow(4),
        "pi" | "pib" => KI.pow(5),
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use B, KiB, MiB, GiB, TiB, PiB or kB, MB, GB, TB, PB)"
            ));
        }
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if fraction.contains('.') || (whole.is_empty() && fraction.is_empty()) || fraction.len() > 18 {
        return Err(format!("{text:?} is not a size: bad number {number:?}"));
    }
    let too_big = || format!("{text:?} is too large (at most 16 EiB)");
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_big())?
    };
    let scale = 10u128.pow(fraction.len() as u32);
    let fraction: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| too_big())?
    };
    let bytes = whole
        .checked_mul(multiplier)
        .and_then(|w| w.checked_add((fraction * multiplier).div_ceil(scale)))
        .ok_or_else(too_big)?;
    u64::try_from(bytes).map_err(|_| too_big())
}

/// Parses `--available CLASS=SIZE` values (capacity-calc, report): bytes per storage class.
pub fn parse_available(specs: &[String]) -> crate::Result<std::collections::BTreeMap<String, u64>> {
    use crate::Error;
    let mut available = std::collections::BTreeMap::new();
    for spec in specs {
        let (class, size) = spec.split_once('=').ok_or_else(|| {
            Error::usage(format!(
                "--available {spec:?}: expected CLASS=SIZE (like trident-nfs=40TiB)"
            ))
        })?;
        let bytes =
            parse_size(size).map_err(|e| Error::usage(format!("--available {spec:?}: {e}")))?;
        if available.insert(class.trim().to_string(), bytes).is_some() {
            return Err(Error::usage(format!(
                "--available: class {class} given twice"
            )));
        }
    }
    Ok(available)
}

/// Parses a fraction: `5.5%` is 0.055, and a bare number is taken as a fraction (`0.055`, the way
/// CDI's configuration spells its filesystem overhead). Must lie in [0, 10] (0% to 1000%).
pub fn parse_fraction(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let (number, divisor) = match trimmed.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (trimmed, 1.0),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a percentage or fraction (like 5.5% or 0.055)"))?;
    let value = value / divisor;
    if !value.is_finite() || !(0.0..=10.0).contains(&value) {
        return Err(format!("{text:?} is out of range (0% to 1000%)"));
    }
    Ok(value)
}

/// `bytes` in binary units for people (`1.5 TiB`).
pub fn human_bytes(bytes: u64) -> String {
    format_size(bytes, BINARY)
}

pub const GIB: u64 = 1 << 30;

/// Rounds up to a whole GiB.
pub fn round_up_gib(bytes: u64) -> u64 {
    bytes.div_ceil(GIB).saturating_mul(GIB)
}

/// A Kubernetes quantity for a byte count: `100Gi` when it is a whole number of GiB, else `Mi`,
/// `Ki` or plain bytes, so the quantity is exact.
pub fn k8s_quantity(bytes: u64) -> String {
    for (unit, size) in [
        ("Ti", GIB << 10),
        ("Gi", GIB),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if bytes != 0 && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_and_decimal_units() {
        assert_eq!(parse_size("40TiB").unwrap(), 40 * (1u64 << 40));
        assert_eq!(parse_size("40Ti").unwrap(), 40 * (1u64 << 40));
        assert_eq!(parse_size("40 tib").unwrap(), 40 * (1u64 << 40));
        assert_eq!(parse_size("500GB").unwrap(), 500_000_000_000);
        assert_eq!(parse_size("500G").unwrap(), 500_000_000_000);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 * (1u64 << 29));
        assert_eq!(parse_size("123").unwrap(), 123);
        assert_eq!(parse_size("7B").unwrap(), 7);
        assert_eq!(parse_size(".5KiB").unwrap(), 512);
        assert_eq!(parse_size("0.0001KiB").unwrap(), 1, "rounds up to a byte");
    }

    #[test]
    fn rejects_bad_sizes_with_a_reason() {
        for bad in [
            "",
            "TiB",
            "40XB",
            "1.2.3GiB",
            "-5GiB",
            "40 TiB extra",
            "20000PiB",
            ".",
        ] {
            let err = parse_size(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }

    #[test]
    fn fractions() {
        assert!((parse_fraction("5.5%").unwrap() - 0.055).abs() < 1e-12);
        assert!((parse_fraction("0.055").unwrap() - 0.055).abs() < 1e-12);
        assert_eq!(parse_fraction("0%").unwrap(), 0.0);
        assert!(parse_fraction("-1%").is_err());
        assert!(parse_fraction("abc").is_err());
        assert!(parse_fraction("NaN").is_err());
    }

    #[test]
    fn quantities_and_rounding() {
        assert_eq!(k8s_quantity(100 * GIB), "100Gi");
        assert_eq!(k8s_quantity(2 * (GIB << 10)), "2Ti");
        assert_eq!(k8s_quantity(1536 << 20), "1536Mi");
        assert_eq!(k8s_quantity(1000), "1000");
        assert_eq!(k8s_quantity(0), "0");
        assert_eq!(round_up_gib(1), GIB);
        assert_eq!(round_up_gib(GIB), GIB);
        assert_eq!(round_up_gib(0), 0);
        assert_eq!(human_bytes(40 << 40), "40 TiB");
    }
}
