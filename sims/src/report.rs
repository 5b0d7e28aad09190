//! The exploration's report: `index.md` (the teeth table, every sweep,
//! per-scenario summaries with their metrics, the replay command of every
//! failure) and the SVG plots (plus their data as CSV) the scenarios ask
//! for, under `target/faultline/report/` by default.

use crate::explore::Row;
use crate::plot::{fill_windows, write_svg, Chart, Line, Style};
use crate::runner::{run_seed, PolicySpec, COMMIT};
use crate::scenario::{PlotSpec, Scenario, SeriesSource};
use crate::teeth::{render_markdown, TeethRow};
use faultline::sim::Outcome;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where the report goes unless told otherwise.
pub const REPORT_DIR: &str = "target/faultline/report";

/// Metrics listed per run in a summary at most.
const METRICS_SHOWN_MAX: usize = 24;

/// Why the report could not be written.
#[derive(Debug)]
pub struct ReportError(pub String);

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReportError {}

/// Creates `dir` and checks a file can be written in it, before any work.
///
/// # Errors
/// [`ReportError`] naming the directory and the cause.
pub fn prepare_dir(dir: &Path) -> Result<(), ReportError> {
    let fail = |e: std::io::Error| {
        ReportError(format!(
            "report directory {} is not writable: {e}",
            dir.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"ok").map_err(fail)?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// What the report is made of.
pub struct ReportInput<'a> {
    /// The scenarios explored.
    pub scenarios: &'a [Box<dyn Scenario>],
    /// Their sweeps.
    pub rows: &'a [Row],
    /// The teeth table.
    pub teeth: &'a [TeethRow],
    /// Problems met on the way (unreadable check records).
    pub warnings: &'a [String],
    /// The budget the exploration had, seconds.
    pub budget_s: f64,
}

/// Writes `index.md` and every plot under `dir`; returns the files written.
///
/// # Errors
/// [`ReportError`] when a file cannot be written.
pub fn write_report(dir: &Path, input: &ReportInput<'_>) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    let mut plots_md = String::new();
    for s in input.scenarios {
        for spec in s.plots() {
            let path = draw(dir, s.as_ref(), &spec)?;
            let _ = writeln!(
                plots_md,
                "### {}\n\n![{}]({})\n",
                spec.title, spec.title, spec.file
            );
            written.push(path);
        }
    }
    let mut md = String::new();
    let _ = writeln!(md, "# faultline report\n");
    let _ = writeln!(
        md,
        "Commit `{COMMIT}` (source {}), exploration budget {:.0} s (random and PCT policies; see the legend below the table).\n",
        faultline::check::record::SourceState::current().short(),
        input.budget_s
    );
    let _ = writeln!(md, "## Teeth table\n\n{}", render_markdown(input.teeth));
    let _ = writeln!(md, "## Sweeps\n\n{}", sweeps_markdown(input.rows));
    let _ = writeln!(md, "## Scenarios\n");
    for s in input.scenarios {
        md.push_str(&scenario_markdown(s.as_ref(), input.rows));
    }
    if !plots_md.is_empty() {
        let _ = writeln!(md, "## Plots\n\n{plots_md}");
    }
    if !input.warnings.is_empty() {
        let _ = writeln!(md, "## Warnings\n");
        for w in input.warnings {
            let _ = writeln!(md, "- {w}");
        }
    }
    let index = dir.join("index.md");
    write(&index, &md)?;
    written.insert(0, index);
    Ok(written)
}

fn write(path: &Path, text: &str) -> Result<(), ReportError> {
    std::fs::write(path, text)
        .map_err(|e| ReportError(format!("cannot write {}: {e}", path.display())))
}

fn sweeps_markdown(rows: &[Row]) -> String {
    let mut md =
        String::from("| scenario | variant | random | PCT | verdict |\n|---|---|---|---|---|\n");
    for r in rows {
        // One cell per policy, each mode's sweep of it joined (a variant
        // swept in both modes has two).
        let cell = |i: usize| {
            r.sweeps
                .iter()
                .filter(|s| matches!(s.policy, PolicySpec::Random) == (i == 0))
                .map(|s| s.cell(r.kind(), r.must_hold))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            r.scenario,
            r.variant,
            cell(0),
            cell(1),
            r.verdict()
        );
    }
    md
}

/// A scenario's summary: what it checks, and per variant the verdict, the
/// metrics of a representative run (its first failure, else seed 0) and
/// the commands that replay its failures.
fn scenario_markdown(s: &dyn Scenario, rows: &[Row]) -> String {
    let mut md = format!("### {}\n\n{}\n\n", s.name(), s.about());
    for r in rows.iter().filter(|r| r.scenario == s.name()) {
        let _ = writeln!(md, "- **{}**: {}", r.variant, r.verdict());
        let failing = r
            .sweeps
            .iter()
            .find_map(|sw| sw.first_match().or_else(|| sw.first_other()));
        let outcome = match failing {
            Some(run) => Some(run.outcome.clone()),
            None => run_seed(s, r.variant, 0, PolicySpec::Random)
                .ok()
                .map(|run| run.outcome),
        };
        if let Some(f) = failing.and_then(|run| run.outcome.failure.as_ref()) {
            let _ = writeln!(md, "  - failure: {f}");
        }
        if let Some(out) = outcome {
            let _ = writeln!(md, "  - metrics: {}", metrics_line(&out));
        }
        for sw in &r.sweeps {
            if let Some(p) = &sw.replay {
                let _ = writeln!(
                    md,
                    "  - replay ({}): `cargo run --release -- replay {}`",
                    sw.policy,
                    p.display()
                );
            }
        }
    }
    md.push('\n');
    md
}

fn metrics_line(out: &Outcome) -> String {
    let mut parts = vec![
        format!("virtual time {:.3} s", out.virtual_ns as f64 / 1e9),
        format!("mem peak {} B", out.mem_peak_bytes),
        format!("blocking threads peak {}", out.threads_peak),
    ];
    for (k, v) in out.metrics.values.iter().take(METRICS_SHOWN_MAX) {
        parts.push(format!("{k} {v}"));
    }
    parts.join(", ")
}

/// The series `src` of `out`, x in virtual seconds.
fn series(out: &Outcome, src: SeriesSource) -> Vec<(f64, f64)> {
    let secs = |t: u64| t as f64 / 1e9;
    match src {
        SeriesSource::Memory => out
            .mem_samples
            .iter()
            .map(|&(t, b)| (secs(t), b as f64))
            .collect(),
        SeriesSource::BlockingThreads => out
            .thread_samples
            .iter()
            .map(|&(t, n)| (secs(t), n as f64))
            .collect(),
        SeriesSource::Metric(name) => out
            .metrics
            .series
            .get(name)
            .map(|s| s.iter().map(|&(t, v)| (secs(t), v)).collect())
            .unwrap_or_default(),
        SeriesSource::AgainstLoad { .. } => Vec::new(),
    }
}

/// A line's points, and the value of the plot's limit metric in its run.
type Points = (Vec<(f64, f64)>, Option<f64>);

/// `variant`'s points of an [`SeriesSource::AgainstLoad`] plot: `(rate,
/// metric)` per factor, and the first run's limit metric.
fn against_load(
    s: &dyn Scenario,
    variant: &str,
    spec: &PlotSpec,
    (metric, factors_pct): (&str, &[u32]),
) -> Result<Points, ReportError> {
    let axis = s
        .load_axis()
        .ok_or_else(|| ReportError(format!("plot {}: no load axis", spec.file)))?;
    let mut points = Vec::new();
    let mut limit = None;
    for &pct in factors_pct {
        let factor = f64::from(pct) / 100.0;
        let cfg = crate::runner::config_for(s, variant, spec.seed, PolicySpec::Random);
        let out = s
            .run_scaled(variant, cfg, factor)
            .map_err(|e| ReportError(format!("plot {}: {e}", spec.file)))?;
        if let Some(v) = out.metrics.get(metric) {
            points.push((factor * axis.rate, v));
        }
        if limit.is_none() {
            limit = spec.limit.and_then(|(_, m)| out.metrics.get(m));
        }
    }
    Ok((points, limit))
}

/// Runs each variant of `spec` at its seed (at each load, for a plot
/// against the load) and draws the series.
fn draw(dir: &Path, s: &dyn Scenario, spec: &PlotSpec) -> Result<PathBuf, ReportError> {
    let mut lines = Vec::new();
    let mut limit = None;
    let mut x_label = String::from("virtual time (s)");
    let mut csv = String::from("variant,t_s,value\n");
    if let SeriesSource::AgainstLoad { .. } = spec.series {
        let unit = s.load_axis().map_or("", |a| a.unit);
        x_label = format!("offered load ({unit})");
        csv = String::from("variant,load,value\n");
    }
    for &variant in spec.variants {
        let (points, first_limit) = match spec.series {
            SeriesSource::AgainstLoad {
                metric,
                factors_pct,
            } => against_load(s, variant, spec, (metric, factors_pct))?,
            src => {
                let run = run_seed(s, variant, spec.seed, PolicySpec::Random)
                    .map_err(|e| ReportError(format!("plot {}: {e}", spec.file)))?;
                let lim = spec.limit.and_then(|(_, m)| run.outcome.metrics.get(m));
                (series(&run.outcome, src), lim)
            }
        };
        if let (None, Some((label, _)), Some(v)) = (&limit, spec.limit, first_limit) {
            limit = Some((label.to_string(), v));
        }
        lines.push(Line {
            label: variant.to_string(),
            points,
        });
    }
    if let Style::Bars { width_x } = spec.look.style {
        fill_windows(&mut lines, width_x);
    }
    for line in &lines {
        for (t, v) in &line.points {
            let _ = writeln!(csv, "{},{t},{v}", line.label);
        }
    }
    let chart = Chart {
        title: spec.title,
        x_label: &x_label,
        y_label: spec.y_label,
        lines,
        limit,
        look: spec.look,
    };
    let path = dir.join(spec.file);
    write_svg(&path, &chart).map_err(|e| ReportError(e.to_string()))?;
    write(&path.with_extension("csv"), &csv)?;
    Ok(path)
}
