//! Report rows in three renderings: JSON lines (the rows as they are), CSV (one column per field,
//! header first) and a table for people (aligned, byte counts in binary units, a totals row last).

use crate::error::{Error, Result, write_error};
use crate::size::human_bytes;
use serde_json::{Map, Value};
use std::io::Write;

/// `--format` of the report tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    #[default]
    Jsonl,
    /// Comma-separated values with a header line.
    Csv,
    /// An aligned table for people, sizes in binary units.
    Table,
}

/// How a column's values are shown in a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Left-aligned text.
    Text,
    /// A right-aligned number.
    Number,
    /// A byte count: right-aligned, in binary units (`1.5 TiB`) in tables, plain bytes in CSV.
    Bytes,
}

/// A field of the rows shown as a column: `row[key]`, or `row[key][sub]` for a figure nested per
/// name (per storage class), whose CSV header is then `key_sub`.
#[derive(Debug, Clone)]
pub struct Column {
    pub key: String,
    pub sub: Option<String>,
    pub header: String,
    pub kind: ColumnKind,
}

impl Column {
    pub fn new(key: impl Into<String>, kind: ColumnKind) -> Self {
        let key = key.into();
        Column {
            header: key.clone(),
            key,
            sub: None,
            kind,
        }
    }
    pub fn text(key: impl Into<String>) -> Self {
        Self::new(key, ColumnKind::Text)
    }
    pub fn number(key: impl Into<String>) -> Self {
        Self::new(key, ColumnKind::Number)
    }
    pub fn bytes(key: impl Into<String>) -> Self {
        Self::new(key, ColumnKind::Bytes)
    }
    pub fn header(mut self, header: impl Into<String>) -> Self {
        self.header = header.into();
        self
    }
    /// The column shows `row[key][sub]`.
    pub fn within(mut self, sub: impl Into<String>) -> Self {
        self.sub = Some(sub.into());
        self
    }
    fn value<'a>(&self, row: &'a Map<String, Value>) -> Option<&'a Value> {
        let value = row.get(&self.key)?;
        match &self.sub {
            Some(sub) => value.get(sub),
            None => Some(value),
        }
    }
    /// `key_sub` for a nested figure (`pvc_bytes_trident-nfs`): no dot, so that tools that read
    /// dots as paths (jq, DuckDB, pandas) take the header as one name.
    fn csv_header(&self) -> String {
        match &self.sub {
            Some(sub) => format!("{}_{sub}", self.key),
            None => self.key.clone(),
        }
    }
}

/// Writes `rows` (and the `totals` row, if any, last) in `format` to `out`.
pub fn write_rows<W: Write>(
    out: &mut W,
    name: &str,
    format: Format,
    columns: &[Column],
    rows: &[Map<String, Value>],
    totals: Option<&Map<String, Value>>,
) -> Result<()> {
    let bytes = match format {
        Format::Jsonl => {
            let mut text = String::new();
            for row in rows.iter().chain(totals) {
                text.push_str(&Value::Object(row.clone()).to_string());
                text.push('\n');
            }
            text.into_bytes()
        }
        Format::Csv => {
            let mut all: Vec<&Map<String, Value>> = rows.iter().collect();
            all.extend(totals);
            csv_bytes(columns, &all)?
        }
        Format::Table => table_string(columns, rows, totals).into_bytes(),
    };
    out.write_all(&bytes).map_err(|e| write_error(name, &e))
}

/// The rows as CSV: a header of column keys, then one line per row.
pub fn csv_bytes(columns: &[Column], rows: &[&Map<String, Value>]) -> Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let fail =
        |e: csv::Error| Error::new(crate::ExitCode::Software, format!("cannot write CSV: {e}"));
    writer
        .write_record(columns.iter().map(Column::csv_header))
        .map_err(fail)?;
    for row in rows {
        writer
            .write_record(columns.iter().map(|c| csv_text(c.value(row))))
            .map_err(fail)?;
    }
    writer
        .into_inner()
        .map_err(|e| Error::new(crate::ExitCode::Software, format!("cannot write CSV: {e}")))
}

/// A value as a CSV cell: text that a spreadsheet would run as a formula is neutralised
/// ([`crate::untrusted::csv_cell`]); numbers stay numbers.
fn csv_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::Number(n)) => n.to_string(),
        other => crate::untrusted::csv_cell(&cell_text(other)).into_owned(),
    }
}

/// A value as one plain cell: strings as they are, arrays joined with `;`, null and absent empty.
pub fn cell_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| cell_text(Some(v)))
            .collect::<Vec<_>>()
            .join(";"),
        Some(other) => other.to_string(),
    }
}

fn table_cell(column: &Column, value: Option<&Value>) -> String {
    match (column.kind, value) {
        (ColumnKind::Bytes, Some(Value::Number(n))) => match n.as_u64() {
            Some(bytes) => human_bytes(bytes),
            None => n.to_string(),
        },
        _ => crate::untrusted::for_terminal(&cell_text(value)).into_owned(),
    }
}

/// An aligned table: a header, the rows, and the totals row under a rule.
pub fn table_string(
    columns: &[Column],
    rows: &[Map<String, Value>],
    totals: Option<&Map<String, Value>>,
) -> String {
    let header: Vec<String> = columns.iter().map(|c| c.header.to_uppercase()).collect();
    let render = |row: &Map<String, Value>| {
        columns
            .iter()
            .map(|c| table_cell(c, c.value(row)))
            .collect::<Vec<_>>()
    };
    let body: Vec<Vec<String>> = rows.iter().map(render).collect();
    let total: Option<Vec<String>> = totals.map(render);
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for line in body.iter().chain(total.iter()) {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let format_line = |cells: &[String]| {
        let mut line = String::new();
        for (i, ((cell, width), column)) in cells.iter().zip(&widths).zip(columns).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = width - cell.chars().count();
            if column.kind == ColumnKind::Text {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
        }
        line.truncate(line.trim_end().len());
        line.push('\n');
        line
    };
    let mut text = format_line(&header);
    for line in &body {
        text.push_str(&format_line(line));
    }
    if let Some(total) = total {
        let rule_width = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
        text.push_str(&"-".repeat(rule_width));
        text.push('\n');
        text.push_str(&format_line(&total));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows() -> Vec<Map<String, Value>> {
        let a =
            json!({"namespace": "alice-ns", "vms": 2, "pvc_bytes": 2u64 << 30, "tags": ["a", "b"]});
        let b = json!({"namespace": "bob, jr", "vms": 10, "pvc_bytes": 3u64 << 40});
        vec![
            a.as_object().unwrap().clone(),
            b.as_object().unwrap().clone(),
        ]
    }

    fn columns() -> Vec<Column> {
        vec![
            Column::text("namespace"),
            Column::number("vms"),
            Column::bytes("pvc_bytes"),
            Column::text("tags"),
        ]
    }

    #[test]
    fn csv_quotes_and_joins() {
        let rows = rows();
        let refs: Vec<&Map<String, Value>> = rows.iter().collect();
        let text = String::from_utf8(csv_bytes(&columns(), &refs).unwrap()).unwrap();
        assert_eq!(
            text,
            "namespace,vms,pvc_bytes,tags\nalice-ns,2,2147483648,a;b\n\"bob, jr\",10,3298534883328,\n"
        );
    }

    #[test]
    fn table_aligns_uses_binary_units_and_ends_with_totals() {
        let total =
            json!({"namespace": "TOTAL", "vms": 12, "pvc_bytes": (3u64 << 40) + (2u64 << 30)});
        let text = table_string(&columns(), &rows(), total.as_object());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "NAMESPACE  VMS  PVC_BYTES  TAGS");
        assert_eq!(lines[1], "alice-ns     2      2 GiB  a;b");
        assert_eq!(lines[2], "bob, jr     10      3 TiB");
        assert!(lines[3].starts_with("-----"));
        assert_eq!(lines[4], "TOTAL       12   3.00 TiB");
    }

    #[test]
    fn nested_columns_read_a_figure_per_name() {
        let row = json!({"namespace": "a", "pvc_bytes": {"nfs": 1u64 << 30, "rbd": 0}});
        let rows = vec![row.as_object().unwrap().clone()];
        let columns = vec![
            Column::text("namespace"),
            Column::bytes("pvc_bytes").within("nfs").header("pvc_nfs"),
            Column::bytes("pvc_bytes").within("ceph").header("pvc_ceph"),
        ];
        let refs: Vec<&Map<String, Value>> = rows.iter().collect();
        let csv = String::from_utf8(csv_bytes(&columns, &refs).unwrap()).unwrap();
        // No dot in a header: `key_name`, one name for jq, DuckDB or pandas.
        assert_eq!(
            csv,
            "namespace,pvc_bytes_nfs,pvc_bytes_ceph\na,1073741824,\n"
        );
        let table = table_string(&columns, &rows, None);
        assert_eq!(
            table.lines().next().unwrap(),
            "NAMESPACE  PVC_NFS  PVC_CEPH"
        );
        assert_eq!(table.lines().nth(1).unwrap(), "a            1 GiB");
    }

    #[test]
    fn jsonl_writes_rows_then_totals() {
        let mut out = Vec::new();
        let total = json!({"namespace": "TOTAL"});
        write_rows(
            &mut out,
            "buf",
            Format::Jsonl,
            &columns(),
            &rows(),
            total.as_object(),
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(
            text.lines()
                .next()
                .unwrap()
                .starts_with("{\"namespace\":\"alice-ns\"")
        );
    }
}
