//! Line charts over the schedule's time axis, drawn by plotters' SVG backend: bytes in flight
//! (the running plans' disks, as plan-run's scheduler counts them) and the copy throughput.
//! Their text is numbers and times only; names never reach plotters.

use crate::timeline::Timeline;
use crate::timescale::TimeScale;
use jiff::SignedDuration;
use plotters::prelude::*;

const SIZE: (u32, u32) = (900, 240);
const WINDOW_SHADE: RGBColor = RGBColor(255, 214, 102);
const LINE: RGBColor = RGBColor(31, 94, 168);

/// A series: points (seconds from the start, value) and the unit the values are in.
struct Series {
    id: &'static str,
    title: String,
    unit: String,
    points: Vec<(f64, f64)>,
}

/// In flight: a step line that holds each value until the next change.
pub fn inflight(timeline: &Timeline, scale: &TimeScale) -> Result<String, String> {
    let (unit, div) = byte_unit(timeline.inflight.iter().map(|p| p.1).max().unwrap_or(0));
    let mut points = vec![(0.0, 0.0)];
    let mut last = 0.0;
    for &(t, bytes) in &timeline.inflight {
        let x = scale.secs(t);
        let y = bytes as f64 / div;
        points.push((x, last));
        points.push((x, y));
        last = y;
    }
    points.push((scale.span_secs(), last));
    draw(
        &Series {
            id: "chart-inflight",
            title: format!("Disk bytes of the running plans ({unit})"),
            unit: unit.to_string(),
            points,
        },
        scale,
    )
}

/// Throughput: bytes copied per interval (about 40 over the run) divided by its length.
pub fn throughput(timeline: &Timeline, scale: &TimeScale) -> Result<String, String> {
    let span = scale.span_secs();
    let bucket = nice_bucket(span / 40.0);
    let buckets = (span / bucket).ceil().max(1.0) as usize;
    let at = |secs: f64| timeline.done_at(scale.start + SignedDuration::from_secs_f64(secs));
    let rates: Vec<f64> = (0..buckets)
        .map(|i| (at((i + 1) as f64 * bucket) - at(i as f64 * bucket)).max(0.0) / bucket)
        .collect();
    let (unit, div) = byte_unit(rates.iter().copied().fold(0.0, f64::max) as u64);
    let mut points = Vec::with_capacity(rates.len() * 2);
    for (i, rate) in rates.iter().enumerate() {
        points.push((i as f64 * bucket, rate / div));
        points.push(((i + 1) as f64 * bucket, rate / div));
    }
    draw(
        &Series {
            id: "chart-throughput",
            title: format!(
                "Copy throughput per {} ({unit}/s){}",
                human_secs(bucket),
                if timeline.live {
                    ""
                } else {
                    ", each VM's bytes spread from its plan's start to its end"
                }
            ),
            unit: format!("{unit}/s"),
            points,
        },
        scale,
    )
}

/// Points are in seconds from the start; the axis counts minutes (hours past two days), so that
/// plotters' round numbers fall on round times.
fn draw(series: &Series, scale: &TimeScale) -> Result<String, String> {
    let unit_secs = if scale.span_secs() > 2.0 * 86400.0 {
        3600.0
    } else {
        60.0
    };
    let span = scale.span_secs() / unit_secs;
    let top = series
        .points
        .iter()
        .map(|p| p.1)
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.1;
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&series.title, ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..span, 0f64..top)
            .map_err(|x| e(&x))?;
        let label = |x: &f64| scale.offset_label(*x * unit_secs);
        chart
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&label)
            .y_labels(5)
            .y_desc(series.unit.as_str())
            .light_line_style(WHITE)
            .draw()
            .map_err(|x| e(&x))?;
        let shade = WINDOW_SHADE.mix(0.35).filled();
        let windows = scale.windows().into_iter().map(|(from, to)| {
            let (a, b) = (scale.secs(from) / unit_secs, scale.secs(to) / unit_secs);
            Rectangle::new([(a, 0.0), (b, top)], shade)
        });
        chart.draw_series(windows).map_err(|x| e(&x))?;
        let points = series.points.iter().map(|(x, y)| (x / unit_secs, *y));
        chart
            .draw_series(LineSeries::new(points, LINE.stroke_width(2)))
            .map_err(|x| e(&x))?;
        root.present().map_err(|x| e(&x))?;
    }
    // Named like the other charts, so the page (and its tests) can find it.
    Ok(svg.replacen(
        "<svg ",
        &format!("<svg id=\"{}\" class=\"chart line\" ", series.id),
        1,
    ))
}

/// The binary unit that keeps `max` readable, and its size in bytes.
fn byte_unit(max: u64) -> (&'static str, f64) {
    const UNITS: [(&str, u32); 4] = [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (unit, shift) in UNITS {
        if max >= 1u64 << shift {
            return (unit, (1u64 << shift) as f64);
        }
    }
    ("B", 1.0)
}

/// A round interval at least `secs` long: 1, 5, 10, 15, 30 minutes, 1, 2, 6 hours, a day.
fn nice_bucket(secs: f64) -> f64 {
    [
        60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
    ]
    .into_iter()
    .find(|b| *b >= secs)
    .unwrap_or(86400.0)
}

fn human_secs(secs: f64) -> String {
    if secs >= 3600.0 {
        format!("{} h", secs / 3600.0)
    } else {
        format!("{} min", secs / 60.0)
    }
}
