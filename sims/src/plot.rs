//! Charts as SVG files (plotters' SVG backend: no system fonts, no native
//! libraries), for the report: one series per variant over virtual time
//! (or against the offered load), an optional horizontal limit line, a
//! title, axis labels with units and a legend.
//!
//! What a chart must not do, because a reader believes the picture: join
//! sparse samples into slopes that never happened (counts held between
//! samples are drawn as steps, per-window counts as bars with the empty
//! windows present), squash a threshold and a small series onto the axis
//! (a log axis in powers of ten), mix decimal prefixes with a binary limit
//! (bytes are labelled KiB, MiB, GiB at power-of-two steps), or lay the
//! legend over data (it sits in its own column right of the plot).

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Points drawn per line at most (longer series are thinned evenly), so an
/// SVG stays small whatever the run recorded.
pub const POINTS_PER_LINE_MAX: usize = 2_000;

/// Bars (windows) drawn per series at most; past it the windows are not
/// filled in (an SVG of one rectangle per window stays small).
pub const BARS_PER_LINE_MAX: usize = 5_000;

/// Decades a log axis spans at most (smaller values are drawn at its
/// floor, and the axis says so).
pub const LOG_DECADES_MAX: i32 = 4;

/// The SVG's size, pixels (at least: a stack of panels is taller).
const SIZE_PX: (u32, u32) = (1000, 500);

/// The height of one panel in a stack, pixels.
const PANEL_HEIGHT_PX: u32 = 200;

/// One line: its legend label and its `(x, y)` points.
#[derive(Clone, Debug)]
pub struct Line {
    /// The legend's text, e.g. `"pre-fix"`.
    pub label: String,
    /// Points, `x` ascending.
    pub points: Vec<(f64, f64)>,
}

/// What the y values are; fixes the axis' ticks and labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A count: ticks at 1, 2, 5 x 10^k, labels `7`, `12 k`, `1.5 M`.
    Count,
    /// Bytes: ticks at power-of-two steps, labels in binary units (`16
    /// GiB`, `512 MiB`).
    Bytes,
    /// Milliseconds, drawn (and labelled) in seconds.
    Milliseconds,
    /// Seconds.
    Seconds,
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Style {
    /// Straight lines between the points (a quantity measured at each).
    Lines,
    /// A value held until the next point (a count sampled when it
    /// changes): horizontal then vertical.
    Steps,
    /// Lines with a marker at each point (few points, e.g. one per load).
    Markers,
    /// One bar per window of `width_x` (x units), zero windows included,
    /// each series in its own panel on a shared y scale.
    Bars {
        /// The width of a window, in x units (e.g. 0.01 for 10 ms).
        width_x: f64,
    },
}

/// How a chart reads: the y unit and scale, the drawing style and the x
/// range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Look {
    /// What the y values are.
    pub unit: Unit,
    /// A log y axis (ticks at powers of ten); values at or below zero are
    /// drawn at its floor.
    pub log_y: bool,
    /// How each series is drawn.
    pub style: Style,
    /// The x axis ends here (a zoom on the start of a run); `None`: at
    /// the last point.
    pub x_max: Option<f64>,
    /// One panel per line (on a shared y axis), for variants whose lines
    /// would lie on each other; always so for bars.
    pub panels: bool,
}

impl Look {
    /// A count on a linear axis, sampled when it changes.
    pub const COUNT_STEPS: Look = Look {
        unit: Unit::Count,
        log_y: false,
        style: Style::Steps,
        x_max: None,
        panels: false,
    };
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
    /// A horizontal line (label, y), e.g. a memory limit, in the lines'
    /// unit.
    pub limit: Option<(String, f64)>,
    /// Unit, scale and style.
    pub look: Look,
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

const GIB: f64 = 1_073_741_824.0;

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

impl Unit {
    /// `v` (in this unit) in the axis' unit (milliseconds become seconds).
    fn to_axis(self, v: f64) -> f64 {
        match self {
            Unit::Milliseconds => v / 1e3,
            _ => v,
        }
    }
}

/// The y axis: its range and its ticks `(value, label)`, in axis units
/// (seconds for [`Unit::Milliseconds`]); on a log axis every tick is a
/// power of ten and the range runs from the first to the last.
#[derive(Clone, Debug, PartialEq)]
pub struct YAxis {
    /// A log axis.
    pub log: bool,
    /// The floor: on a log axis, smaller values are drawn here.
    pub lo: f64,
    /// The top.
    pub hi: f64,
    /// The ticks, ascending.
    pub ticks: Vec<(f64, String)>,
}

impl YAxis {
    /// `v` as drawn: its log10 on a log axis (at least the floor's).
    fn map(&self, v: f64) -> f64 {
        if self.log {
            v.max(self.lo).log10()
        } else {
            v
        }
    }

    /// The label of the tick drawn at `drawn` (a mapped value).
    fn label_at(&self, drawn: f64) -> String {
        self.ticks
            .iter()
            .find(|t| (self.map(t.0) - drawn).abs() <= 1e-9 * drawn.abs().max(1.0))
            .map_or_else(|| tidy(drawn), |t| t.1.clone())
    }
}

/// The y axis for `values` (axis units) in `unit`, linear or log.
pub fn y_axis(values: &[f64], unit: Unit, log: bool) -> YAxis {
    let max = values.iter().copied().fold(0.0f64, f64::max);
    if log {
        let min_pos = values
            .iter()
            .copied()
            .filter(|v| *v > 0.0)
            .fold(f64::INFINITY, f64::min);
        return log_axis(min_pos, max, unit);
    }
    let max = if max > 0.0 { max } else { 1.0 };
    let step = match unit {
        Unit::Bytes => {
            let mut step = 1.0;
            while max / step > 6.0 {
                step *= 2.0;
            }
            step
        }
        Unit::Count => nice_step(max).max(1.0),
        Unit::Milliseconds | Unit::Seconds => nice_step(max),
    };
    let n = (max * 1.02 / step).ceil().max(1.0) as u32;
    let ticks = (0..=n)
        .map(|k| {
            let v = f64::from(k) * step;
            let label = match unit {
                Unit::Bytes => bytes_label(v, step),
                Unit::Count => human(v),
                Unit::Milliseconds | Unit::Seconds => format!("{} s", tidy(v)),
            };
            (v, label)
        })
        .collect();
    YAxis {
        log: false,
        lo: 0.0,
        hi: f64::from(n) * step,
        ticks,
    }
}

/// A log axis from the decade of `min_pos` to the decade above `max`, at
/// least two decades, at most [`LOG_DECADES_MAX`].
fn log_axis(min_pos: f64, max: f64, unit: Unit) -> YAxis {
    let e_hi = if max > 0.0 {
        max.log10().ceil() as i32
    } else {
        1
    };
    let e_lo = if min_pos.is_finite() {
        min_pos.log10().floor() as i32
    } else {
        e_hi - 2
    };
    let e_lo = e_lo.clamp(e_hi - LOG_DECADES_MAX, e_hi - 2);
    let ticks = (e_lo..=e_hi)
        .map(|e| {
            let v = 10f64.powi(e);
            let label = match unit {
                Unit::Milliseconds | Unit::Seconds => format!("{} s", decimal(e)),
                Unit::Count => human(v),
                Unit::Bytes => format!("{} B", decimal(e)),
            };
            (v, label)
        })
        .collect();
    YAxis {
        log: true,
        lo: 10f64.powi(e_lo),
        hi: 10f64.powi(e_hi),
        ticks,
    }
}

/// `10^e` written out: `0.001`, `1`, `100`.
fn decimal(e: i32) -> String {
    if e >= 0 {
        format!("{:.0}", 10f64.powi(e))
    } else {
        format!("{:.*}", e.unsigned_abs() as usize, 10f64.powi(e))
    }
}

/// The step of about six ticks up to `max`: 1, 2 or 5 x 10^k.
fn nice_step(max: f64) -> f64 {
    let raw = max / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// `v` bytes in the largest binary unit not above `step`: `48 GiB`.
pub fn bytes_label(v: f64, step: f64) -> String {
    let units = [
        ("TiB", GIB * 1024.0),
        ("GiB", GIB),
        ("MiB", 1_048_576.0),
        ("KiB", 1024.0),
    ];
    let (name, size) = units
        .into_iter()
        .find(|(_, size)| step >= *size)
        .unwrap_or(("B", 1.0));
    format!("{} {name}", tidy(v / size))
}

/// A number without float noise or a trailing `.0`: `0.3`, `200`.
fn tidy(v: f64) -> String {
    let r = (v * 1e6).round() / 1e6;
    if r == 0.0 {
        return "0".to_string();
    }
    format!("{r}")
}

/// `1.5 G`, `230 M`, `12 k`, `7`: short count labels.
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

/// Every window of `width_x` from 0 (or the first point, if negative) to
/// the last point of any line, on one grid for all lines: windows with no
/// point get `0`, so an empty window is drawn as an empty bar, never
/// bridged. Lines left as they are past [`BARS_PER_LINE_MAX`] windows.
pub fn fill_windows(lines: &mut [Line], width_x: f64) {
    let xs = || lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let (Some(first), Some(last)) = (xs().reduce(f64::min), xs().reduce(f64::max)) else {
        return;
    };
    let k0 = (first.min(0.0) / width_x).round() as i64;
    let k1 = (last / width_x).round() as i64;
    if width_x <= 0.0 || k1 - k0 >= BARS_PER_LINE_MAX as i64 {
        return;
    }
    for line in lines.iter_mut() {
        let mut counts = std::collections::BTreeMap::new();
        for &(x, y) in &line.points {
            *counts.entry((x / width_x).round() as i64).or_insert(0.0) += y;
        }
        line.points = (k0..=k1)
            .map(|k| (k as f64 * width_x, counts.get(&k).copied().unwrap_or(0.0)))
            .collect();
    }
}

/// `points` up to `x_max`: the value there held (steps) or interpolated.
fn clip(points: &[(f64, f64)], x_max: f64, hold: bool) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.0 <= x_max).collect();
    let next = points.iter().find(|p| p.0 > x_max);
    if let (Some(&(x0, y0)), Some(&(x1, y1))) = (out.last(), next) {
        let y = if hold {
            y0
        } else {
            y0 + (y1 - y0) * (x_max - x0) / (x1 - x0)
        };
        out.push((x_max, y));
    }
    out
}

/// Sample-and-hold: each value runs flat to the next point's x.
fn steps(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len() * 2);
    for (i, &p) in points.iter().enumerate() {
        if let Some(&(_, y_prev)) = i.checked_sub(1).and_then(|j| points.get(j)) {
            out.push((p.0, y_prev));
        }
        out.push(p);
    }
    out
}

/// What is drawn: each line's points in axis units (clipped, windows
/// filled, thinned), the limit in axis units, the x range and the y axis.
struct Prepared {
    series: Vec<Vec<(f64, f64)>>,
    limit: Option<f64>,
    x: std::ops::Range<f64>,
    y: YAxis,
}

fn prepare(chart: &Chart<'_>) -> Prepared {
    let look = chart.look;
    let mut lines = chart.lines.clone();
    if let Style::Bars { width_x } = look.style {
        fill_windows(&mut lines, width_x);
    }
    let hold = matches!(look.style, Style::Steps | Style::Bars { .. });
    let series: Vec<Vec<(f64, f64)>> = lines
        .iter()
        .map(|l| {
            let pts: Vec<(f64, f64)> = l
                .points
                .iter()
                .map(|&(x, y)| (x, look.unit.to_axis(y)))
                .collect();
            let pts = look.x_max.map_or(pts.clone(), |m| clip(&pts, m, hold));
            match look.style {
                Style::Bars { .. } => pts,
                _ => thin(&pts),
            }
        })
        .collect();
    let limit = chart.limit.as_ref().map(|l| look.unit.to_axis(l.1));
    let values: Vec<f64> = series.iter().flatten().map(|p| p.1).chain(limit).collect();
    let xs = || series.iter().flatten().map(|p| p.0);
    let x_min = xs().fold(0.0f64, f64::min);
    let mut x_max = look.x_max.unwrap_or_else(|| xs().fold(f64::MIN, f64::max));
    if let Style::Bars { width_x } = look.style {
        x_max += width_x;
    }
    let x_max = if x_max > x_min { x_max } else { x_min + 1.0 };
    Prepared {
        series,
        limit,
        x: x_min..x_max,
        y: y_axis(&values, look.unit, look.log_y),
    }
}

/// The y axis' description: a log axis says where values under its floor
/// went.
fn y_desc(chart: &Chart<'_>, p: &Prepared) -> String {
    let under = p.series.iter().flatten().any(|q| q.1 < p.y.lo);
    match (p.y.log, p.y.ticks.first()) {
        (true, Some((_, floor))) if under => {
            format!("{}, under {floor} at the bottom", chart.y_label)
        }
        _ => chart.y_label.to_string(),
    }
}

type Area<'b> = DrawingArea<SVGBackend<'b>, Shift>;

/// A linear coordinate whose key points (ticks and grid lines) are
/// exactly the ones given: plotters' own picks "nice" numbers, which on
/// a log or a binary axis are neither powers of ten nor of two.
#[derive(Clone)]
struct Ticked {
    lo: f64,
    hi: f64,
    keys: Vec<f64>,
}

impl Ranged for Ticked {
    type ValueType = f64;
    type FormatOption = DefaultFormatting;

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let t = (v - self.lo) / (self.hi - self.lo);
        limit.0 + (t * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.keys.clone()
        }
    }
}

/// What one panel shows: the series `which` (indexes into the chart's
/// lines), a caption, and whether it carries the axes' descriptions (a
/// stack of panels describes each axis once).
struct Panel<'p> {
    which: &'p [usize],
    caption: Option<String>,
    x_desc: bool,
    y_desc: bool,
}

/// One panel: axes, mesh, its series and the limit line.
fn draw_panel(
    area: &Area<'_>,
    chart: &Chart<'_>,
    p: &Prepared,
    panel: &Panel<'_>,
) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let keys: Vec<f64> = p.y.ticks.iter().map(|t| p.y.map(t.0)).collect();
    let (y_lo, y_hi) = (p.y.map(p.y.lo), p.y.map(p.y.hi));
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(10)
        .x_label_area_size(if panel.x_desc { 44 } else { 24 })
        .y_label_area_size(90);
    if let Some(c) = &panel.caption {
        builder.caption(c, ("sans-serif", 15));
    }
    let mut ctx = builder
        .build_cartesian_2d(
            p.x.clone(),
            Ticked {
                lo: y_lo,
                hi: y_hi,
                keys,
            },
        )
        .map_err(|x| e(&x))?;
    let desc = if panel.y_desc {
        y_desc(chart, p)
    } else {
        String::new()
    };
    let x_desc = if panel.x_desc { chart.x_label } else { "" };
    let y_fmt = |v: &f64| p.y.label_at(*v);
    ctx.configure_mesh()
        .x_desc(x_desc)
        .y_desc(desc)
        .axis_desc_style(("sans-serif", 15))
        .label_style(("sans-serif", 13))
        .bold_line_style(BLACK.mix(0.15))
        .light_line_style(TRANSPARENT)
        .x_label_formatter(&|v| tidy(*v))
        .y_label_formatter(&y_fmt)
        .draw()
        .map_err(|x| e(&x))?;
    let n = chart.lines.len();
    let which = panel.which;
    for &i in which {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64)> = p.series[i].iter().map(|&(x, y)| (x, p.y.map(y))).collect();
        // Earlier lines are wider: a later line lying on one (two variants
        // that behave alike) leaves it showing on both sides.
        let width = if which.len() == 1 {
            2
        } else {
            2 + (n - 1 - i).min(2) as u32
        };
        let drawn = match chart.look.style {
            Style::Lines => ctx
                .draw_series(LineSeries::new(pts, color.stroke_width(width)))
                .map(|_| ()),
            Style::Steps => ctx
                .draw_series(LineSeries::new(steps(&pts), color.stroke_width(width)))
                .map(|_| ()),
            Style::Markers => {
                let line = ctx
                    .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                    .map(|_| ());
                line.and_then(|()| {
                    ctx.draw_series(pts.into_iter().map(|q| Circle::new(q, 4, color.filled())))
                        .map(|_| ())
                })
            }
            Style::Bars { width_x } => draw_bars(&mut ctx, &pts, width_x, p.y.map(0.0), color),
        };
        drawn.map_err(|x| e(&x))?;
    }
    if let Some(m) = p.limit {
        let m = p.y.map(m);
        let style = BLACK.stroke_width(2);
        ctx.draw_series(LineSeries::new(vec![(p.x.start, m), (p.x.end, m)], style))
            .map_err(|x| e(&x))?;
    }
    Ok(())
}

type Ctx<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<plotters::coord::types::RangedCoordf64, Ticked>>;

/// One bar per window (zero windows as empty bars), and a 1-pixel stroke
/// on each non-empty one so a bar narrower than a pixel still shows.
fn draw_bars(
    ctx: &mut Ctx<'_, '_>,
    pts: &[(f64, f64)],
    width_x: f64,
    base: f64,
    color: RGBColor,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    ctx.draw_series(
        pts.iter()
            .map(|&(x, y)| Rectangle::new([(x, y), (x + width_x, base)], color.filled())),
    )?;
    ctx.draw_series(pts.iter().filter(|q| q.1 > base).map(|&(x, y)| {
        PathElement::new(
            vec![(x + width_x / 2.0, base), (x + width_x / 2.0, y)],
            color.stroke_width(1),
        )
    }))?;
    Ok(())
}

/// A legend entry: its text, colour and whether its swatch is a bar.
struct Entry {
    label: String,
    color: RGBColor,
    bar: bool,
}

fn entries(chart: &Chart<'_>) -> Vec<Entry> {
    let bar = matches!(chart.look.style, Style::Bars { .. });
    let mut out: Vec<Entry> = chart
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| Entry {
            label: l.label.clone(),
            color: COLORS[i % COLORS.len()],
            bar,
        })
        .collect();
    if let Some((label, _)) = &chart.limit {
        out.push(Entry {
            label: label.clone(),
            color: BLACK,
            bar: false,
        });
    }
    out
}

/// The legend column's width: room for the longest label (about 8 px a
/// character at 14 px) and its swatch.
fn legend_width_px(entries: &[Entry]) -> u32 {
    let chars = entries
        .iter()
        .map(|e| e.label.chars().count())
        .max()
        .unwrap_or(0);
    (chars as u32 * 8 + 72).clamp(140, 340)
}

/// The legend in its own column: a box, a swatch and a label per entry.
fn draw_legend(area: &Area<'_>, entries: &[Entry]) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let (w, _) = area.dim_in_pixel();
    let (top, row) = (40i32, 24i32);
    let bottom = top + 12 + row * entries.len() as i32;
    let corners = [(4, top), (w as i32 - 8, bottom)];
    area.draw(&Rectangle::new(corners, WHITE.filled()))
        .map_err(|x| e(&x))?;
    area.draw(&Rectangle::new(corners, BLACK.stroke_width(1)))
        .map_err(|x| e(&x))?;
    for (k, entry) in entries.iter().enumerate() {
        let y = top + 6 + row * k as i32 + row / 2;
        if entry.bar {
            area.draw(&Rectangle::new(
                [(14, y - 6), (38, y + 6)],
                entry.color.filled(),
            ))
        } else {
            area.draw(&PathElement::new(
                vec![(14, y), (38, y)],
                entry.color.stroke_width(2),
            ))
        }
        .map_err(|x| e(&x))?;
        area.draw(&Text::new(
            entry.label.clone(),
            (46, y - 8),
            ("sans-serif", 14),
        ))
        .map_err(|x| e(&x))?;
    }
    Ok(())
}

/// Writes `chart` as an SVG file at `path`: the plot (one panel per line
/// for bars or [`Look::panels`], on a shared y axis) and the legend in a column to its right,
/// where it can cover no data.
///
/// # Errors
/// [`PlotError`] when the file cannot be written or drawing fails.
pub fn write_svg(path: &Path, chart: &Chart<'_>) -> Result<(), PlotError> {
    let err = |e: String| PlotError(format!("{}: {e}", path.display()));
    let n = chart.lines.len();
    let panels = n > 1 && (chart.look.panels || matches!(chart.look.style, Style::Bars { .. }));
    let height_px = if panels {
        SIZE_PX.1.max(80 + PANEL_HEIGHT_PX * n as u32)
    } else {
        SIZE_PX.1
    };
    let root = SVGBackend::new(path, (SIZE_PX.0, height_px)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let body = root
        .titled(chart.title, ("sans-serif", 22))
        .map_err(|e| err(e.to_string()))?;
    let entries = entries(chart);
    let (plot, side) = body.split_horizontally(SIZE_PX.0 - legend_width_px(&entries));
    let prepared = prepare(chart);
    if panels {
        for (i, area) in plot.split_evenly((n, 1)).iter().enumerate() {
            let panel = Panel {
                which: &[i],
                caption: Some(format!("variant {}", chart.lines[i].label)),
                x_desc: i + 1 == n,
                y_desc: i == n / 2,
            };
            draw_panel(area, chart, &prepared, &panel).map_err(err)?;
        }
    } else {
        let all: Vec<usize> = (0..n).collect();
        let panel = Panel {
            which: &all,
            caption: None,
            x_desc: true,
            y_desc: true,
        };
        draw_panel(&plot, chart, &prepared, &panel).map_err(err)?;
    }
    draw_legend(&side, &entries).map_err(err)?;
    root.present().map_err(|e| err(e.to_string()))
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
            y_label: "memory held",
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
            limit: Some(("limit 4 GiB".into(), 4.0 * GIB)),
            look: Look {
                unit: Unit::Bytes,
                ..Look::COUNT_STEPS
            },
        };
        write_svg(&path, &chart).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for text in [
            "memory over virtual time",
            "virtual time (s)",
            "pre-fix",
            "fixed",
            "limit 4 GiB",
            "\n4 GiB\n",
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

    #[test]
    fn log_axis_spans_the_values_in_decades() {
        let y = y_axis(&[0.0, 0.065, 2.45, 2.0], Unit::Seconds, true);
        let labels: Vec<&str> = y.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0.01 s", "0.1 s", "1 s", "10 s"]);
        assert!(y.log && y.lo == 0.01 && y.hi == 10.0);
        assert_eq!(y.map(0.0), -2.0, "zero drawn at the floor");
        let flat = y_axis(&[0.0], Unit::Seconds, true);
        assert_eq!(flat.ticks.len(), 3, "at least two decades");
    }

    #[test]
    fn byte_ticks_are_binary_steps() {
        let y = y_axis(&[70.0 * GIB, 64.0 * GIB], Unit::Bytes, false);
        let labels: Vec<&str> = y.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(
            labels,
            ["0 GiB", "16 GiB", "32 GiB", "48 GiB", "64 GiB", "80 GiB"]
        );
        let small = y_axis(&[3.0 * 1_048_576.0], Unit::Bytes, false);
        assert_eq!(small.ticks[1].1, "512 KiB");
        assert_eq!(bytes_label(1536.0, 512.0), "1536 B");
        assert_eq!(bytes_label(48.0 * GIB, 16.0 * GIB), "48 GiB");
    }

    #[test]
    fn windows_are_filled_with_zeros_on_one_grid() {
        let mut lines = vec![
            Line {
                label: "a".into(),
                points: vec![(0.02, 3.0), (0.05, 1.0)],
            },
            Line {
                label: "b".into(),
                points: vec![(0.03, 2.0)],
            },
        ];
        fill_windows(&mut lines, 0.01);
        let a: Vec<f64> = lines[0].points.iter().map(|p| p.1).collect();
        let b: Vec<f64> = lines[1].points.iter().map(|p| p.1).collect();
        assert_eq!(a, [0.0, 0.0, 3.0, 0.0, 0.0, 1.0]);
        assert_eq!(b, [0.0, 0.0, 0.0, 2.0, 0.0, 0.0]);
        assert!((lines[1].points[5].0 - 0.05).abs() < 1e-12);
    }

    #[test]
    fn steps_hold_and_clip_holds_or_interpolates() {
        let pts = [(0.0, 1.0), (2.0, 3.0)];
        assert_eq!(steps(&pts), [(0.0, 1.0), (2.0, 1.0), (2.0, 3.0)]);
        assert_eq!(clip(&pts, 1.0, true), [(0.0, 1.0), (1.0, 1.0)]);
        assert_eq!(clip(&pts, 1.0, false), [(0.0, 1.0), (1.0, 2.0)]);
    }
}
