//! Horizontal bar charts, laid out here and drawn by the `bars.svg` template: one row per item
//! (a storage class, a namespace, a subnet, a concern), its bars side by side (stacked) or all
//! from zero (overlaid), an optional marker line (what is available) and its figures as text.
//! A template rather than plotters, as for the Gantt chart: plotters' SVG backend writes neither
//! `<title>` (the hover text naming each bar's VMs or namespace) nor class attributes (which the
//! page's styles and the tests use); it draws the lines over time (lines.rs).

use serde::Serialize;

pub const WIDTH: f64 = 900.0;
const LABEL_WIDTH: f64 = 220.0;
/// Room right of the longest bar for its figures.
const RIGHT_MARGIN: f64 = 170.0;
const TOP: f64 = 8.0;
const AXIS_HEIGHT: f64 = 28.0;
const BAR_HEIGHT: f64 = 13.0;
const ROW_GAP: f64 = 5.0;
/// Longer labels are cut (with …) in the chart; their full text is in the bar's hover title.
const LABEL_CHARS: usize = 32;

#[derive(Debug, Serialize)]
pub struct Chart {
    pub id: String,
    pub title: String,
    pub width: f64,
    pub height: f64,
    pub plot_left: f64,
    pub plot_right: f64,
    pub axis_y: f64,
    pub ticks: Vec<Tick>,
    pub rows: Vec<Row>,
    pub legend: Vec<Legend>,
}

#[derive(Debug, Serialize)]
pub struct Tick {
    pub x: f64,
    pub label: String,
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub label: String,
    pub full_label: String,
    pub label_y: f64,
    pub bars: Vec<Bar>,
    pub marker: Option<Marker>,
    /// The row's figures, printed right of its bars (hover titles do not print).
    pub value: String,
    pub value_x: f64,
}

#[derive(Debug, Serialize)]
pub struct Bar {
    pub class: String,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub title: String,
}

#[derive(Debug, Serialize)]
pub struct Marker {
    pub x: f64,
    pub y1: f64,
    pub y2: f64,
    pub title: String,
}

#[derive(Debug, Serialize)]
pub struct Legend {
    pub class: String,
    pub label: String,
}

/// One bar before layout: its CSS class, value and hover text.
pub struct Segment {
    pub class: &'static str,
    pub value: f64,
    pub title: String,
}

/// How a row's segments share its space.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Arrange {
    /// Side by side: parts of one whole.
    Stacked,
    /// All from zero in one lane, the first (the largest) underneath.
    Overlaid,
}

/// A row before layout.
pub struct Item {
    pub label: String,
    pub segments: Vec<Segment>,
    pub arrange: Arrange,
    pub marker: Option<(f64, String)>,
    pub value: String,
}

/// Lays out `items` on one scale from 0 past the largest bar or marker, with ticks on round
/// multiples of `unit` (1 for counts, a binary unit for bytes); `tick_label` formats a tick.
pub fn layout(
    id: &str,
    title: &str,
    items: Vec<Item>,
    legend: &[(&str, &str)],
    unit: f64,
    tick_label: impl Fn(f64) -> String,
) -> Chart {
    let plot_right = WIDTH - RIGHT_MARGIN;
    let plot_width = plot_right - LABEL_WIDTH;
    let largest = items.iter().map(extent).fold(0.0, f64::max).max(unit) / unit;
    let step = nice_step(largest / 5.0);
    let ticks_count = (largest / step).ceil().max(1.0) as u32;
    let max = f64::from(ticks_count) * step * unit;
    let x = |value: f64| LABEL_WIDTH + plot_width * (value / max).clamp(0.0, 1.0);
    let mut y = TOP;
    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        let stacked = item.arrange == Arrange::Stacked;
        let mut start = 0.0;
        let mut bars = Vec::new();
        let mut right: f64 = LABEL_WIDTH;
        for segment in item.segments {
            let from = if stacked { start } else { 0.0 };
            start = from + segment.value;
            let width = x(from + segment.value) - x(from);
            right = right.max(x(from) + width);
            bars.push(Bar {
                class: segment.class.into(),
                x: round(x(from)),
                y: round(y),
                width: round(width),
                height: BAR_HEIGHT - 1.0,
                title: segment.title,
            });
        }
        let marker = item.marker.map(|(value, title)| Marker {
            x: round(x(value)),
            y1: round(y - 3.0),
            y2: round(y + BAR_HEIGHT + 2.0),
            title,
        });
        rows.push(Row {
            label: cut(&item.label),
            full_label: item.label,
            label_y: round(y + BAR_HEIGHT / 2.0),
            bars,
            marker,
            value: item.value,
            value_x: round(right + 4.0),
        });
        y += BAR_HEIGHT + ROW_GAP;
    }
    let ticks = (0..=ticks_count)
        .map(|i| {
            let value = f64::from(i) * step * unit;
            Tick {
                x: round(x(value)),
                label: tick_label(value),
            }
        })
        .collect();
    Chart {
        id: id.into(),
        title: title.into(),
        width: WIDTH,
        height: round(y + AXIS_HEIGHT),
        plot_left: LABEL_WIDTH,
        plot_right,
        axis_y: round(y),
        ticks,
        rows,
        legend: legend
            .iter()
            .map(|(class, label)| Legend {
                class: (*class).into(),
                label: (*label).into(),
            })
            .collect(),
    }
}

/// A round step (1, 2, 2.5 or 5 times a power of ten) at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.max(1e-9).log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// The binary unit (bytes) that a scale up to `max` bytes counts in.
pub fn byte_unit(max: f64) -> f64 {
    [40, 30, 20, 10]
        .into_iter()
        .map(|shift| (1u64 << shift) as f64)
        .find(|unit| max >= *unit)
        .unwrap_or(1.0)
}

/// The largest value an item reaches on the scale.
fn extent(item: &Item) -> f64 {
    let bars = if item.arrange == Arrange::Stacked {
        item.segments.iter().map(|s| s.value).sum()
    } else {
        item.segments.iter().map(|s| s.value).fold(0.0, f64::max)
    };
    item.marker.as_ref().map_or(bars, |(m, _)| bars.max(*m))
}

pub fn cut(label: &str) -> String {
    if label.chars().count() <= LABEL_CHARS {
        label.to_string()
    } else {
        let mut cut: String = label.chars().take(LABEL_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

pub fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}
