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
        let class = class.trim();
        if class.is_empty() || !crate::names::is_rfc1123_subdomain(class) {
            return Err(Error::usage(format!(
                "--available {spec:?}: {class:?} is not a storage class name (lowercase RFC 1123 subdomain)"
            )));
        }
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

/// The largest size of one thing a VM has (its memory, one disk, a LUN) that liftkit takes as
/// real: 1 PiB. No VM has a petabyte disk or memory, so more is a unit mistake upstream or a
/// hostile record; and with every part at most 2^50 bytes, a sum of 16,384 of them still fits in
/// 64 bits. Every tool that reads sizes from records checks them against it.
pub const MAX_BYTES: u64 = 1 << 50;

/// The largest total liftkit takes as real (a plan's disks, as plan-gen's annotation gives them):
/// 1 EiB, a thousand times the largest part; sixteen such totals still add up in 64 bits.
pub const MAX_TOTAL_BYTES: u64 = 1 << 60;

/// `bytes` when it is at most `limit`; otherwise why not, naming `what`.
pub fn check_bytes(what: &str, bytes: u64, limit: u64) -> Result<u64, String> {
    if bytes <= limit {
        return Ok(bytes);
    }
    let shown = if limit == MAX_BYTES { "1 PiB" } else { "1 EiB" };
    Err(format!(
        "{what} {bytes} is more than {limit} ({shown}), the most liftkit takes as real (a unit mistake?)"
    ))
}

/// A record's size field `what`, checked as it is read: absent or null is `None`, more than
/// [`MAX_BYTES`] an error, so every tool refuses the record (exit 65, naming the line and the
/// field) before it computes with the size. Fields use it through [`field`]'s functions.
pub fn opt_bytes<'de, D: serde::Deserializer<'de>>(
    what: &str,
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    let bytes: Option<u64> = serde::Deserialize::deserialize(deserializer)?;
    bytes
        .map(|b| check_bytes(what, b, MAX_BYTES))
        .transpose()
        .map_err(serde::de::Error::custom)
}

macro_rules! size_fields {
    ($($name:ident),*) => {
        $(
            #[doc = concat!("`", stringify!($name), "`, checked against [`MAX_BYTES`](super::MAX_BYTES).")]
            pub fn $name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
                super::opt_bytes(stringify!($name), d)
            }
        )*
    };
}

/// The size fields of VM records, each checked against [`MAX_BYTES`] as it is read
/// (`#[serde(default, deserialize_with = "common::size::field::provisioned_bytes")]`): one
/// function per field, so the error names it.
pub mod field {
    size_fields!(
        memory_bytes,
        memory_guaranteed_bytes,
        memory_max_bytes,
        provisioned_bytes,
        actual_bytes,
        lun_size_bytes
    );
}

/// The sum of `sizes`, exact up to 16 EiB and held there beyond (never wrapping, never a panic).
/// With every part checked against [`MAX_BYTES`], any 16,384 parts add up exactly; where a total
/// must be exact whatever the input, use [`checked_sum`].
pub fn sum_bytes(sizes: impl IntoIterator<Item = u64>) -> u64 {
    sizes.into_iter().fold(0u64, u64::saturating_add)
}

/// The sum of `sizes`, or an error when it does not fit in 64 bits (16 EiB).
pub fn checked_sum(sizes: impl IntoIterator<Item = u64>) -> Result<u64, String> {
    sizes
        .into_iter()
        .try_fold(0u64, u64::checked_add)
        .ok_or_else(|| "sizes add up to more than 16 EiB".to_string())
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

/// Parses a Kubernetes quantity of bytes (`10Gi`, `1500M`, `123`); None when it is not one.
pub fn quantity_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let factor: f64 = match unit {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        _ => return None,
    };
    if let Ok(whole) = number.parse::<u64>() {
        return whole.checked_mul(factor as u64);
    }
    number
        .parse::<f64>()
        .ok()
        .map(|n| (n * factor).ceil() as u64)
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
    fn sizes_from_records_are_checked() {
        assert_eq!(check_bytes("x", MAX_BYTES, MAX_BYTES), Ok(MAX_BYTES));
        let err = check_bytes("provisioned_bytes", MAX_BYTES + 1, MAX_BYTES).unwrap_err();
        assert!(
            err.starts_with("provisioned_bytes 1125899906842625 is more than"),
            "{err}"
        );
        #[derive(serde::Deserialize)]
        struct D {
            #[serde(default, deserialize_with = "field::actual_bytes")]
            b: Option<u64>,
        }
        let ok: D = serde_json::from_str(r#"{"b": 1024}"#).unwrap();
        assert_eq!(ok.b, Some(1024));
        let none: D = serde_json::from_str(r#"{"b": null}"#).unwrap();
        assert_eq!(none.b, None);
        let absent: D = serde_json::from_str("{}").unwrap();
        assert_eq!(absent.b, None);
        let err = serde_json::from_str::<D>(r#"{"b": 10000000000000000000}"#)
            .err()
            .unwrap();
        let err = err.to_string();
        assert!(
            err.starts_with("actual_bytes 10000000000000000000 is more than"),
            "{err}"
        );
        assert_eq!(checked_sum([1, 2, 3]), Ok(6));
        assert!(checked_sum([u64::MAX, 1]).is_err());
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
