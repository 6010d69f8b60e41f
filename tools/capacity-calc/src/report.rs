//! The report: one row per group and a totals row, in JSON lines (per-class figures nested under
//! their class), CSV or a table; and the check of the peak against --available.

use crate::sums::{Report, Sums};
use common::format::{Column, Format, write_rows};
use common::size::human_bytes;
use common::{ExitCode, Result};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

fn per_class(classes: &BTreeSet<String>, figures: &BTreeMap<String, u64>) -> Value {
    let map: Map<String, Value> = classes
        .iter()
        .map(|c| (c.clone(), json!(figures.get(c).copied().unwrap_or(0))))
        .collect();
    Value::Object(map)
}

fn row(
    report: &Report,
    values: &[String],
    sums: &Sums,
    classes: &BTreeSet<String>,
) -> Map<String, Value> {
    let mut row = Map::new();
    for (key, value) in report.keys.iter().zip(values) {
        row.insert(key.column().into(), json!(value));
    }
    row.insert("vms".into(), json!(sums.vms));
    row.insert("vcpus".into(), json!(sums.vcpus));
    row.insert("memory_bytes".into(), json!(sums.memory_bytes));
    row.insert("disks".into(), json!(sums.disks));
    row.insert("provisioned_bytes".into(), json!(sums.provisioned_bytes));
    row.insert("used_bytes".into(), json!(sums.used_bytes));
    row.insert("lun_disks".into(), json!(sums.lun_disks));
    row.insert("lun_bytes".into(), json!(sums.lun_bytes));
    row.insert("pvc_total_bytes".into(), json!(sums.pvc_total_bytes()));
    row.insert(
        "peak_pvc_total_bytes".into(),
        json!(sums.peak_pvc_total_bytes()),
    );
    row.insert("pvc_bytes".into(), per_class(classes, &sums.pvc_bytes));
    row.insert(
        "peak_pvc_bytes".into(),
        per_class(classes, &sums.peak_pvc_bytes()),
    );
    row
}

fn columns(report: &Report, classes: &BTreeSet<String>) -> Vec<Column> {
    let mut columns: Vec<Column> = report
        .keys
        .iter()
        .map(|k| Column::text(k.column()))
        .collect();
    columns.extend([
        Column::number("vms"),
        Column::number("vcpus"),
        Column::bytes("memory_bytes").header("memory"),
        Column::number("disks"),
        Column::bytes("provisioned_bytes").header("provisioned"),
        Column::bytes("used_bytes").header("used"),
        Column::number("lun_disks").header("luns"),
        Column::bytes("lun_bytes").header("lun_size"),
        Column::bytes("pvc_total_bytes").header("pvc"),
        Column::bytes("peak_pvc_total_bytes").header("peak"),
    ]);
    for class in classes {
        columns.push(
            Column::bytes("pvc_bytes")
                .within(class)
                .header(format!("pvc_{class}")),
        );
        columns.push(
            Column::bytes("peak_pvc_bytes")
                .within(class)
                .header(format!("peak_{class}")),
        );
    }
    columns
}

/// Adds each class's capacity and headroom (available - peak) to the totals row and columns, says
/// it on stderr, and returns exit 1 when a class is short.
fn check_available(
    report: &Report,
    available: &BTreeMap<String, u64>,
    format: Format,
    quiet: bool,
    totals: &mut Map<String, Value>,
    columns: &mut Vec<Column>,
) -> ExitCode {
    let peaks = report.totals.peak_pvc_bytes();
    let mut code = ExitCode::Ok;
    let (mut capacity, mut headroom_bytes, mut headroom_text) =
        (Map::new(), Map::new(), Map::new());
    for (class, bytes) in available {
        let need = peaks.get(class).copied().unwrap_or(0);
        let headroom = *bytes as i128 - need as i128;
        let shown = if headroom < 0 {
            format!("-{}", human_bytes(headroom.unsigned_abs() as u64))
        } else {
            human_bytes(headroom as u64)
        };
        capacity.insert(class.clone(), json!(bytes));
        headroom_bytes.insert(class.clone(), json!(headroom as i64));
        headroom_text.insert(class.clone(), json!(shown));
        columns.push(
            Column::bytes("available_bytes")
                .within(class)
                .header(format!("avail_{class}")),
        );
        columns.push(if format == Format::Table {
            Column::text("headroom")
                .within(class)
                .header(format!("headroom_{class}"))
        } else {
            Column::number("headroom_bytes").within(class)
        });
        let steady = report.totals.pvc_bytes.get(class).copied().unwrap_or(0);
        let needs = format!(
            "storage class {class}: need {} at peak ({} kept), available {}",
            human_bytes(need),
            human_bytes(steady),
            human_bytes(*bytes)
        );
        if headroom < 0 {
            code = ExitCode::Findings;
            eprintln!("capacity-calc: {needs}: short by {}", &shown[1..]);
        } else if !quiet {
            eprintln!("capacity-calc: {needs}, headroom {shown}");
        }
    }
    totals.insert("available_bytes".into(), Value::Object(capacity));
    totals.insert("headroom_bytes".into(), Value::Object(headroom_bytes));
    if format == Format::Table {
        totals.insert("headroom".into(), Value::Object(headroom_text));
    }
    code
}

/// Writes the report rows (and the totals row when `with_totals`) and returns the exit code of
/// the availability check.
pub fn write<W: Write>(
    out: &mut W,
    name: &str,
    report: &Report,
    format: Format,
    with_totals: bool,
    available: &BTreeMap<String, u64>,
    quiet: bool,
) -> Result<ExitCode> {
    let classes = report.classes();
    let rows: Vec<Map<String, Value>> = report
        .groups
        .iter()
        .map(|(values, sums)| row(report, values, sums, &classes))
        .collect();
    let total_label = vec!["TOTAL".to_string(); report.keys.len()];
    let mut totals = row(report, &total_label, &report.totals, &classes);
    if format == Format::Jsonl {
        totals.insert("total".into(), json!(true));
    }
    let mut columns = columns(report, &classes);
    let code = if available.is_empty() {
        ExitCode::Ok
    } else {
        check_available(report, available, format, quiet, &mut totals, &mut columns)
    };
    let totals = Some(&totals).filter(|_| with_totals);
    write_rows(out, name, format, &columns, &rows, totals)?;
    Ok(code)
}
