//! The report's plots tell the truth, checked on the SVG files the report
//! writes for the registered scenarios (the same call `explore` makes):
//! the trace-saturation lag plots have a log axis whose ticks are powers of
//! ten in seconds, with the 2 s watchdog line well inside the plotted range
//! and every variant off the floor; retry-storm draws one bar per 10 ms
//! window, zero windows included; the memory plot's axis speaks binary
//! units; no legend box covers a plotted point or line, in any plot.
//!
//! `FAULTLINE_PLOTS_DIR=DIR` keeps the SVGs there (to look at them);
//! otherwise they go to a scratch directory.

use faultline_sims::registry;
use faultline_sims::report::{write_report, ReportInput};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The directory every scenario's plots were written to (once per test
/// binary).
fn rendered() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("FAULTLINE_PLOTS_DIR").map_or_else(
            || std::env::temp_dir().join(format!("faultline-plots-{}", std::process::id())),
            PathBuf::from,
        );
        std::fs::create_dir_all(&dir).unwrap();
        let scenarios = registry();
        let input = ReportInput {
            scenarios: &scenarios,
            rows: &[],
            teeth: &[],
            warnings: &[],
            budget_s: 0.0,
        };
        write_report(&dir, &input).unwrap();
        dir
    })
}

/// Every SVG the report wrote.
fn svg_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(rendered())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    files.sort();
    files
}

/// One SVG element: its tag, attributes and (for `<text>`) its text.
#[derive(Debug)]
struct El {
    tag: String,
    attrs: BTreeMap<String, String>,
    text: String,
}

impl El {
    fn num(&self, name: &str) -> f64 {
        self.attrs
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{} without a numeric {name}: {self:?}", self.tag))
    }

    fn points(&self) -> Vec<(f64, f64)> {
        self.attrs["points"]
            .split_whitespace()
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect()
    }
}

/// The elements of `svg` as plotters' SVG backend writes them (one
/// element per tag, attributes `name="value"`).
fn elements(svg: &str) -> Vec<El> {
    let unescape = |s: &str| {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&")
    };
    let mut out = Vec::new();
    for chunk in svg.split('<').skip(1) {
        let Some(tag) = chunk.split(|c: char| c.is_whitespace() || c == '>').next() else {
            continue;
        };
        if tag.is_empty() || tag.starts_with('/') || tag.starts_with('?') {
            continue;
        }
        let (head, rest) = chunk.split_once('>').unwrap_or((chunk, ""));
        let mut attrs = BTreeMap::new();
        for pair in head[tag.len()..].split('"').collect::<Vec<_>>().chunks(2) {
            if let [name, value] = pair {
                let name = name.trim().trim_end_matches('=').trim();
                attrs.insert(name.to_string(), unescape(value));
            }
        }
        let text = if tag == "text" {
            unescape(rest.trim())
        } else {
            String::new()
        };
        out.push(El {
            tag: tag.to_string(),
            attrs,
            text,
        });
    }
    out
}

fn read(file: &str) -> Vec<El> {
    let path = rendered().join(file);
    let svg = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    elements(&svg)
}

/// The y axis's tick labels (right-aligned texts), top to bottom: `(pixel
/// y, label)`.
fn y_ticks(els: &[El]) -> Vec<(f64, String)> {
    let mut ticks: Vec<(f64, String)> = els
        .iter()
        .filter(|e| e.tag == "text" && e.attrs.get("text-anchor").is_some_and(|a| a == "end"))
        .map(|e| (e.num("y"), e.text.clone()))
        .collect();
    ticks.sort_by(|a, b| a.0.total_cmp(&b.0));
    ticks
}

/// Horizontal two-point black polylines across the plot, other than the
/// x axis (at the lowest y tick): limit lines, by pixel y.
fn limit_lines(els: &[El]) -> Vec<f64> {
    let ticks = y_ticks(els);
    let axis_y = ticks.last().map_or(f64::INFINITY, |t| t.0);
    els.iter()
        .filter(|e| e.tag == "polyline" && e.attrs.get("stroke").is_some_and(|s| s == "#000000"))
        .map(El::points)
        .filter(|p| p.len() == 2 && p[0].1 == p[1].1 && (p[1].0 - p[0].0).abs() > 100.0)
        .map(|p| p[0].1)
        .filter(|y| (y - axis_y).abs() > 1.5)
        .collect()
}

/// Whether `e` is one of the limit lines at `limits`.
fn is_limit(e: &El, limits: &[f64]) -> bool {
    let p = e.points();
    p.len() == 2 && p[0].1 == p[1].1 && (p[1].0 - p[0].0).abs() > 100.0 && limits.contains(&p[0].1)
}

/// The number and unit of a tick label such as `"10 s"` or `"16 GiB"`.
fn number_unit(label: &str) -> Option<(f64, &str)> {
    let (n, unit) = label.split_once(' ')?;
    Some((n.parse().ok()?, unit))
}

#[test]
fn lag_axes_are_log_seconds_with_the_watchdog_inside() {
    for file in [
        "trace-saturation-lag.svg",
        "trace-saturation-lag-vs-load.svg",
    ] {
        let els = read(file);
        let ticks = y_ticks(&els);
        assert!(ticks.len() >= 3, "{file}: too few y ticks {ticks:?}");
        for (_, label) in &ticks {
            let (v, unit) = number_unit(label)
                .unwrap_or_else(|| panic!("{file}: y tick {label:?} is not 'N unit'"));
            assert_eq!(unit, "s", "{file}: y tick {label:?} is not in seconds");
            let exp = v.log10();
            assert!(
                (exp - exp.round()).abs() < 1e-9,
                "{file}: y tick {label:?} is not a power of ten"
            );
        }
        // The ticks are evenly spaced in pixels: a log axis.
        let gaps: Vec<f64> = ticks.windows(2).map(|w| w[1].0 - w[0].0).collect();
        let (top, bottom) = (ticks[0].0, ticks[ticks.len() - 1].0);
        for g in &gaps {
            assert!(
                (g - gaps[0]).abs() <= 2.0,
                "{file}: uneven decades {ticks:?}"
            );
        }
        let span = bottom - top;
        let limits = limit_lines(&els);
        assert_eq!(limits.len(), 1, "{file}: one watchdog line, saw {limits:?}");
        let y = limits[0];
        assert!(
            y > top + 0.1 * span && y < bottom - 0.1 * span,
            "{file}: the watchdog line at pixel {y} hugs an edge of {top}..{bottom}"
        );
        // 2 s on the log scale the labels define.
        let top_v = number_unit(&ticks[0].1).unwrap().0.log10();
        let bottom_v = number_unit(&ticks[ticks.len() - 1].1).unwrap().0.log10();
        let want = bottom - (2f64.log10() - bottom_v) / (top_v - bottom_v) * span;
        assert!(
            (y - want).abs() <= 2.0,
            "{file}: watchdog line at {y}, 2 s is at {want}"
        );
    }
}

#[test]
fn every_lag_variant_is_drawn_off_the_axis() {
    for file in [
        "trace-saturation-lag.svg",
        "trace-saturation-lag-vs-load.svg",
    ] {
        let els = read(file);
        let ticks = y_ticks(&els);
        let (top, bottom) = (ticks[0].0, ticks[ticks.len() - 1].0);
        let data: Vec<Vec<(f64, f64)>> = els
            .iter()
            .filter(|e| {
                e.tag == "polyline" && e.attrs.get("stroke").is_some_and(|s| s != "#000000")
            })
            .map(El::points)
            .filter(|p| p.len() > 2)
            .collect();
        assert_eq!(data.len(), 3, "{file}: three variants drawn");
        for line in &data {
            let highest = line.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
            assert!(
                highest < bottom - 0.05 * (bottom - top),
                "{file}: a variant sits flat on the x axis (highest pixel {highest}, axis {bottom})"
            );
        }
    }
}

/// `(variant, t_s, value)` rows of a plot's CSV.
fn csv_rows(file: &str) -> Vec<(String, f64, f64)> {
    let text = std::fs::read_to_string(rendered().join(file)).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn retry_windows_are_bars_with_zero_windows_present() {
    let rows = csv_rows("retry-storm-waves.csv");
    let mut per_variant: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for (v, t, n) in &rows {
        per_variant.entry(v).or_default().push((*t, *n));
    }
    assert_eq!(
        per_variant.len(),
        2,
        "two variants: {:?}",
        per_variant.keys()
    );
    let mut windows = 0;
    for (variant, pts) in &per_variant {
        // One row per 10 ms window from the first to the last: no gaps.
        for w in pts.windows(2) {
            let step_ms = (w[1].0 - w[0].0) * 1e3;
            assert!(
                (step_ms - 10.0).abs() < 1e-6,
                "{variant}: windows at {} s and {} s are not adjacent",
                w[0].0,
                w[1].0
            );
        }
        let zeros = pts.iter().filter(|p| p.1 == 0.0).count();
        assert!(zeros > 0, "{variant}: no zero window in {pts:?}");
        windows += pts.len();
    }
    // One bar per window (zero windows included), each a rectangle.
    let els = read("retry-storm-waves.svg");
    let bars = els
        .iter()
        .filter(|e| {
            e.tag == "rect"
                && e.attrs
                    .get("fill")
                    .is_some_and(|f| f != "#FFFFFF" && f != "none")
        })
        .count();
    assert!(
        bars >= windows,
        "{bars} bars drawn for {windows} windows (zero windows included)"
    );
}

#[test]
fn memory_axis_uses_binary_units() {
    let els = read("subtree-oom-memory.svg");
    let ticks = y_ticks(&els);
    assert!(ticks.len() >= 3, "too few y ticks {ticks:?}");
    let binary = ["B", "KiB", "MiB", "GiB", "TiB"];
    for (_, label) in &ticks {
        let (_, unit) =
            number_unit(label).unwrap_or_else(|| panic!("y tick {label:?} is not 'N unit'"));
        assert!(
            binary.contains(&unit),
            "y tick {label:?} is not in binary units"
        );
    }
    // The limit (a whole number of GiB) sits on a labelled tick.
    let limit = limit_lines(&els);
    assert_eq!(limit.len(), 1, "one limit line: {limit:?}");
    let on_tick = ticks.iter().find(|(y, _)| (y - limit[0]).abs() <= 1.5);
    assert!(
        on_tick.is_some_and(|(_, l)| l.ends_with(" GiB")),
        "the limit line at pixel {} is on no GiB tick: {ticks:?}",
        limit[0]
    );
    let legend: Vec<&str> = els
        .iter()
        .filter(|e| e.tag == "text")
        .map(|e| e.text.as_str())
        .filter(|t| t.contains("limit"))
        .collect();
    assert!(
        legend.iter().all(|t| t.contains("GiB")),
        "limit label not in GiB: {legend:?}"
    );
}

/// A rectangle `(x0, y0, x1, y1)`, pixels.
type Rect = (f64, f64, f64, f64);

fn inside(r: Rect, (x, y): (f64, f64)) -> bool {
    x >= r.0 && x <= r.2 && y >= r.1 && y <= r.3
}

/// Whether segment `a`-`b` meets rectangle `r` (sampled finely enough
/// for pixel-sized boxes).
fn crosses(r: Rect, a: (f64, f64), b: (f64, f64)) -> bool {
    let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
    let steps = (len / 0.5).ceil().max(1.0) as usize;
    (0..=steps).any(|i| {
        let t = i as f64 / steps as f64;
        inside(r, (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1)))
    })
}

/// The legend box: the smallest filled rectangle holding the text of
/// every variant's label.
fn legend_box(els: &[El], labels: &[&str]) -> Option<Rect> {
    let texts: Vec<(f64, f64)> = els
        .iter()
        .filter(|e| e.tag == "text" && labels.contains(&e.text.as_str()))
        .map(|e| (e.num("x"), e.num("y")))
        .collect();
    if texts.is_empty() {
        return None;
    }
    els.iter()
        .filter(|e| e.tag == "rect")
        .map(|e| {
            let (x, y) = (e.num("x"), e.num("y"));
            (x, y, x + e.num("width"), y + e.num("height"))
        })
        .filter(|r| texts.iter().all(|&p| inside(*r, p)))
        .min_by(|a, b| ((a.2 - a.0) * (a.3 - a.1)).total_cmp(&((b.2 - b.0) * (b.3 - b.1))))
}

#[test]
fn no_legend_covers_plotted_data() {
    let labels = ["pre-fix", "incident-fix", "fixed", "fixed-jitter"];
    let files = svg_files();
    assert!(files.len() >= 6, "plots written: {files:?}");
    let mut covered = Vec::new();
    for path in files {
        let svg = std::fs::read_to_string(&path).unwrap();
        let els = elements(&svg);
        let file = path.file_name().unwrap().to_string_lossy();
        let legend = legend_box(&els, &labels)
            .unwrap_or_else(|| panic!("{file}: no legend box around the labels"));
        let limits = limit_lines(&els);
        for e in &els {
            let black = e.attrs.get("stroke").is_some_and(|s| s == "#000000");
            let shape: Vec<(f64, f64)> = match e.tag.as_str() {
                // Grid, axes and ticks are black (the grid translucent):
                // of those, only a limit line is data.
                "polyline" if black && !is_limit(e, &limits) => continue,
                "polyline" => e.points(),
                "rect"
                    if e.attrs
                        .get("fill")
                        .is_some_and(|f| f != "#FFFFFF" && f != "none") =>
                {
                    let (x, y) = (e.num("x"), e.num("y"));
                    let (w, h) = (e.num("width"), e.num("height"));
                    vec![(x, y), (x + w, y), (x + w, y + h), (x, y + h), (x, y)]
                }
                _ => continue,
            };
            // The legend's own swatches lie wholly inside it.
            if shape.iter().all(|&p| inside(legend, p)) {
                continue;
            }
            let hit = shape.iter().any(|&p| inside(legend, p))
                || shape.windows(2).any(|w| crosses(legend, w[0], w[1]));
            if hit {
                covered.push(format!(
                    "{file}: the legend box {legend:?} covers plotted data ({} with {} points)",
                    e.tag,
                    shape.len()
                ));
                break;
            }
        }
    }
    assert!(covered.is_empty(), "{}", covered.join("\n"));
}
