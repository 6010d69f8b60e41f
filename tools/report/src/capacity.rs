//! The capacity section: per storage class the PVC bytes the target keeps (steady) and requests
//! while copying (peak) against what is available; per group (namespace) the same, largest first.

use crate::bars::{self, Arrange, Chart, Item, Segment};
use crate::inputs::CapacityRow;
use common::size::human_bytes;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct Capacity {
    pub classes: Vec<ClassNeed>,
    /// Whether the class totals are the sum of the groups' (no totals row in the input): the sum
    /// of the groups' peaks is then an upper bound of the peak.
    pub summed: bool,
    pub class_chart: Chart,
    pub group_chart: Chart,
}

#[derive(Debug, Serialize)]
pub struct ClassNeed {
    pub class: String,
    pub steady: String,
    pub peak: String,
    pub available: Option<String>,
    pub headroom: Option<String>,
    pub exceeded: bool,
}

/// Class totals: steady and peak bytes per class.
type Totals = BTreeMap<String, (u64, u64)>;

/// `available` (from --available) wins over a totals row's `available_bytes`.
pub fn build(rows: &[CapacityRow], available: &BTreeMap<String, u64>) -> Capacity {
    let (totals, summed) = class_totals(rows);
    let mut available_by_class: BTreeMap<String, u64> = rows
        .iter()
        .filter(|r| r.total)
        .flat_map(|r| r.available_bytes.clone())
        .collect();
    available_by_class.extend(available.iter().map(|(k, v)| (k.clone(), *v)));
    let classes = class_needs(&totals, &available_by_class);
    let mut groups: Vec<&CapacityRow> = rows.iter().filter(|r| !r.total).collect();
    // Largest peak first; equal peaks by name, so the order is stable.
    groups.sort_by(|a, b| {
        peak_of(b)
            .cmp(&peak_of(a))
            .then_with(|| a.label().cmp(&b.label()))
    });
    Capacity {
        class_chart: class_chart(&totals, &available_by_class),
        group_chart: group_chart(&groups),
        classes,
        summed,
    }
}

fn peak_of(row: &CapacityRow) -> u64 {
    row.peak_pvc_bytes.values().sum()
}

/// The totals row's per-class figures; without one, the groups' sums.
fn class_totals(rows: &[CapacityRow]) -> (Totals, bool) {
    let total_rows: Vec<&CapacityRow> = rows.iter().filter(|r| r.total).collect();
    let (source, summed) = if total_rows.is_empty() {
        (rows.iter().collect::<Vec<_>>(), true)
    } else {
        (total_rows, false)
    };
    let mut totals = Totals::new();
    for row in source {
        for (class, bytes) in &row.pvc_bytes {
            totals.entry(class.clone()).or_default().0 += bytes;
        }
        for (class, bytes) in &row.peak_pvc_bytes {
            totals.entry(class.clone()).or_default().1 += bytes;
        }
    }
    (totals, summed)
}

fn class_needs(totals: &Totals, available: &BTreeMap<String, u64>) -> Vec<ClassNeed> {
    totals
        .iter()
        .map(|(class, &(steady, peak))| {
            let avail = available.get(class).copied();
            ClassNeed {
                class: class.clone(),
                steady: human_bytes(steady),
                peak: human_bytes(peak),
                available: avail.map(human_bytes),
                headroom: avail.map(|a| {
                    if a >= peak {
                        human_bytes(a - peak)
                    } else {
                        format!("short by {}", human_bytes(peak - a))
                    }
                }),
                exceeded: avail.is_some_and(|a| peak > a),
            }
        })
        .collect()
}

/// The peak underneath, the steady need (never larger) over it.
fn need_segments(steady: u64, peak: u64) -> Vec<Segment> {
    vec![
        Segment {
            class: "peak",
            value: peak as f64,
            title: format!("peak (while copying): {}", human_bytes(peak)),
        },
        Segment {
            class: "steady",
            value: steady as f64,
            title: format!("steady (PVCs kept): {}", human_bytes(steady)),
        },
    ]
}

fn need_text(steady: u64, peak: u64) -> String {
    format!("{} / {}", human_bytes(steady), human_bytes(peak))
}

const LEGEND: [(&str, &str); 3] = [
    ("steady", "steady: PVCs kept"),
    ("peak", "peak: while copying"),
    ("available", "available (dashed)"),
];

fn class_chart(totals: &Totals, available: &BTreeMap<String, u64>) -> Chart {
    let largest = totals
        .values()
        .map(|t| t.1)
        .chain(available.values().copied())
        .max();
    let unit = bars::byte_unit(largest.unwrap_or(0) as f64);
    let items = totals
        .iter()
        .map(|(class, &(steady, peak))| {
            let mut segments = need_segments(steady, peak);
            let over = available.get(class).is_some_and(|a| peak > *a);
            if over {
                segments[0].class = "peak over";
            }
            Item {
                label: class.clone(),
                segments,
                arrange: Arrange::Overlaid,
                value: need_text(steady, peak),
                marker: available
                    .get(class)
                    .map(|a| (*a as f64, format!("available: {}", human_bytes(*a)))),
            }
        })
        .collect();
    bars::layout(
        "chart-capacity-classes",
        "PVC bytes per storage class, steady / peak, against what is available",
        items,
        &LEGEND,
        unit,
        |v| human_bytes(v as u64),
    )
}

fn group_chart(groups: &[&CapacityRow]) -> Chart {
    let items = groups
        .iter()
        .map(|row| {
            let steady = row.pvc_bytes.values().sum();
            Item {
                label: row.label(),
                segments: need_segments(steady, peak_of(row)),
                arrange: Arrange::Overlaid,
                marker: None,
                value: match row.vms.or(row.vm_count) {
                    Some(n) => format!("{n} VM(s): {}", need_text(steady, peak_of(row))),
                    None => need_text(steady, peak_of(row)),
                },
            }
        })
        .collect();
    bars::layout(
        "chart-capacity-groups",
        "PVC bytes per group, steady / peak, largest peak first",
        items,
        &LEGEND[..2],
        bars::byte_unit(groups.first().map_or(0, |g| peak_of(g)) as f64),
        |v| human_bytes(v as u64),
    )
}
