//! Line charts as SVG files (plotters' SVG backend: no system fonts, no
//! native libraries), for the report: one line per variant over virtual
//! time, an optional horizontal limit line, a title, axis labels with units
//! and a legend.

use plotters::prelude::*;
use std::path::Path;

/// Points drawn per line at most (longer series are thinned evenly), so an
/// SVG stays small whatever the run recorded.
pub const POINTS_PER_LINE_MAX: usize = 2_000;

/// One line: its legend label and its `(x, y)` points.
#[derive(Clone, Debug)]
pub struct Line {
    /// The legend's text, e.g. `"pre-fix"`.
    pub label: String,
    /// Points, `x` ascending.
    pub points: Vec<(f64, f64)>,
}

/// What to draw.
#[derive(Clone, Debug)]
pub struct Chart<'a> {
    /// The title.
    pub title: &'a str,
    /// The x axis label, with its unit.
    pub x_label: &'a str,
    /// The y axis label, with its unit.
    pub y_label: &'a str,
    /// The lines.
    pub lines: Vec<Line>,
    /// A horizontal line (label, y), e.g. a memory limit.
    pub limit: Option<(String, f64)>,
}

/// Why a chart was not written.
#[derive(Debug)]
pub struct PlotError(pub String);

impl std::fmt::Display for PlotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plot: {}", self.0)
    }
}

impl std::error::Error for PlotError {}

const COLORS: [RGBColor; 5] = [
    RGBColor(204, 37, 41),
    RGBColor(57, 106, 177),
    RGBColor(62, 150, 81),
    RGBColor(218, 124, 48),
    RGBColor(107, 76, 154),
];

/// Keeps at most [`POINTS_PER_LINE_MAX`] points, evenly spaced, always the
/// first, the last and the largest.
fn thin(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    if points.len() <= POINTS_PER_LINE_MAX {
        return points.to_vec();
    }
    let step = points.len().div_ceil(POINTS_PER_LINE_MAX);
    let peak = points
        .iter()
        .enumerate()
        .max_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
        .map_or(0, |(i, _)| i);
    let mut out: Vec<(f64, f64)> = points
        .iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i == peak || *i + 1 == points.len())
        .map(|(_, p)| *p)
        .collect();
    out.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    out
}

/// The axes' ranges: x over every point, y from 0 to above every point
/// and the limit.
fn ranges(chart: &Chart<'_>) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let all = chart.lines.iter().flat_map(|l| l.points.iter());
    let (mut x_max, mut y_max) = (0.0f64, 0.0f64);
    let mut x_min = f64::INFINITY;
    for &(x, y) in all {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_max = y_max.max(y);
    }
    if let Some((_, y)) = chart.limit {
        y_max = y_max.max(y);
    }
    let x_min = if x_min.is_finite() {
        x_min.min(0.0)
    } else {
        0.0
    };
    let x_max = if x_max > x_min { x_max } else { x_min + 1.0 };
    let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    (x_min..x_max, 0.0..y_max)
}

/// Writes `chart` as an SVG file at `path`.
///
/// # Errors
/// [`PlotError`] when the file cannot be written or drawing fails.
pub fn write_svg(path: &Path, chart: &Chart<'_>) -> Result<(), PlotError> {
    let err = |e: &dyn std::fmt::Display| PlotError(format!("{}: {e}", path.display()));
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (xr, yr) = ranges(chart);
    let mut ctx = ChartBuilder::on(&root)
        .caption(chart.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(90)
        .build_cartesian_2d(xr.clone(), yr)
        .map_err(|e| err(&e))?;
    ctx.configure_mesh()
        .x_desc(chart.x_label)
        .y_desc(chart.y_label)
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 13))
        .y_label_formatter(&|v| human(*v))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, line) in chart.lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        ctx.draw_series(LineSeries::new(thin(&line.points), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(line.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    if let Some((label, y)) = &chart.limit {
        let style = BLACK.stroke_width(1);
        ctx.draw_series(LineSeries::new(vec![(xr.start, *y), (xr.end, *y)], style))
            .map_err(|e| err(&e))?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    ctx.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

/// `1.5 G`, `230 M`, `12 k`, `7`: short y-axis labels.
pub fn human(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1} G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1} M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0} k", v / 1e3)
    } else if a >= 10.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_labelled_svg() {
        let dir = std::env::temp_dir().join(format!("faultline-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.svg");
        let chart = Chart {
            title: "memory over virtual time",
            x_label: "virtual time (s)",
            y_label: "memory held (bytes)",
            lines: vec![
                Line {
                    label: "pre-fix".into(),
                    points: (0..5000)
                        .map(|i| (f64::from(i), f64::from(i) * 1e6))
                        .collect(),
                },
                Line {
                    label: "fixed".into(),
                    points: vec![(0.0, 1e6), (4999.0, 2e6)],
                },
            ],
            limit: Some(("limit 4 GB".into(), 4e9)),
        };
        write_svg(&path, &chart).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for text in [
            "memory over virtual time",
            "virtual time (s)",
            "pre-fix",
            "fixed",
            "limit 4 GB",
        ] {
            assert!(svg.contains(text), "missing {text:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn thinning_keeps_ends_and_peak() {
        let mut pts: Vec<(f64, f64)> = (0..10_001).map(|i| (f64::from(i), 1.0)).collect();
        pts[4_321].1 = 99.0;
        let t = thin(&pts);
        assert!(t.len() <= POINTS_PER_LINE_MAX + 2);
        assert_eq!(t.first(), Some(&(0.0, 1.0)));
        assert_eq!(t.last(), Some(&(10_000.0, 1.0)));
        assert!(t.contains(&(4_321.0, 99.0)));
        assert_eq!(human(1.5e9), "1.5 G");
        assert_eq!(human(3.0), "3");
    }
}
