//! `faultline explore` (and `faultline` with no subcommand): every
//! scenario's variants under both policies, the teeth table, the report.

use super::{exit, plural, say, CmdResult, EXIT_FAILED, EXIT_OK};
use crate::checks::{checks_dir, read_checks};
use crate::explore::{self, ExploreSpec, BUDGET_S_DEFAULT};
use crate::report::{self, ReportInput};
use crate::scenario::Scenario;
use crate::teeth;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Args)]
pub(super) struct ExploreArgs {
    /// Wall-time budget for the correct variants' extra seeds, seconds
    /// (the minimums always run).
    #[arg(long, default_value_t = BUDGET_S_DEFAULT, value_parser = parse_budget)]
    budget_s: f64,
    /// Where the report (index.md, SVG plots) is written (default:
    /// <target>/faultline/report).
    #[arg(long)]
    report_dir: Option<PathBuf>,
    /// Skip searching load rows for the load at which they fail.
    #[arg(long)]
    no_cliffs: bool,
    /// Seeds run at once in each sweep (default: FAULTLINE_JOBS, else every
    /// core).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    jobs: Option<u64>,
    /// Print one JSON document on stdout (every row's verdict and the
    /// problems) instead of text.
    #[arg(long)]
    json: bool,
}

impl Default for ExploreArgs {
    fn default() -> Self {
        ExploreArgs {
            budget_s: BUDGET_S_DEFAULT,
            report_dir: None,
            no_cliffs: false,
            jobs: None,
            json: false,
        }
    }
}

/// `--budget-s`: a positive number of seconds, at most a day.
pub(super) fn parse_budget(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "'{text}' is not a budget in seconds (0 < s <= 86400)"
        )),
    }
}

#[derive(Serialize)]
struct RowJson {
    scenario: &'static str,
    variant: &'static str,
    bug: Option<&'static str>,
    verdict: &'static str,
    runs: u64,
    cells: Vec<String>,
    /// A bug only sync-switch mode finds: the default mode's cell.
    default_mode: Option<String>,
    load: Option<String>,
}

#[derive(Serialize)]
struct ExploreJson {
    ok: bool,
    problems: Vec<String>,
    rows: Vec<RowJson>,
    report: String,
    source: String,
}

pub(super) fn cmd(scenarios: &[Box<dyn Scenario>], args: &ExploreArgs) -> CmdResult {
    let report_dir = args
        .report_dir
        .clone()
        .unwrap_or_else(|| faultline::check::paths::faultline_dir().join("report"));
    report::prepare_dir(&report_dir).map_err(|e| e.to_string())?;
    let spec = ExploreSpec {
        budget_s: args.budget_s,
        cliffs: !args.no_cliffs,
        jobs: args
            .jobs
            .map_or_else(faultline::check::sweep::jobs_default, |n| n as usize),
        ..ExploreSpec::default()
    };
    eprintln!(
        "exploring {} scenarios, every variant under the random and PCT policies, {:.0} s budget",
        scenarios.len(),
        spec.budget_s
    );
    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} sweeps [{elapsed}] {msg}")
    {
        bar.set_style(style);
    }
    let rows = explore::explore(scenarios, spec, |s, v, p, done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(format!("{s} --variant {v} ({p})"));
    })
    .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    let dir = checks_dir();
    let (checks, warnings) = read_checks(&dir);
    let teeth_rows = teeth::teeth_rows(&rows, &checks);
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let input = ReportInput {
        scenarios,
        rows: &rows,
        teeth: &teeth_rows,
        warnings: &warnings,
        budget_s: spec.budget_s,
    };
    let files = report::write_report(&report_dir, &input).map_err(|e| e.to_string())?;
    let problems = teeth::problems(&rows, &teeth_rows);
    let index = report_dir.join("index.md");
    if args.json {
        let json = ExploreJson {
            ok: problems.is_empty(),
            problems,
            rows: rows.iter().map(row_json).collect(),
            report: index.display().to_string(),
            source: checks.source().short(),
        };
        say!(
            "{}",
            serde_json::to_string(&json).map_err(|e| e.to_string())?
        );
        return Ok(exit(if json.ok { EXIT_OK } else { EXIT_FAILED }));
    }
    say!(
        "teeth table at {} (loom, shuttle, fuzz, real: the records under {})",
        checks.source().short(),
        dir.display()
    );
    say!("{}", teeth::render_text(&teeth_rows).trim_end());
    say!("");
    say!("{}", explore::table(&rows).trim_end());
    say!(
        "report: {} ({})",
        index.display(),
        plural(files.len() as u64, "file", "files")
    );
    print_replays(&rows);
    if problems.is_empty() {
        say!("ok: every bug found by its own oracle, every fixed variant holds, every recorded cell current");
    } else {
        say!("NOT OK: the teeth table is not earned:");
        for p in &problems {
            say!("  - {p}");
        }
    }
    Ok(exit(if problems.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILED
    }))
}

fn row_json(r: &explore::Row) -> RowJson {
    RowJson {
        scenario: r.scenario,
        variant: r.variant,
        bug: r.bug.map(|b| b.key),
        verdict: r.verdict(),
        runs: r.runs(),
        cells: r
            .sweeps
            .iter()
            .map(|s| s.cell(r.kind(), r.must_hold))
            .collect(),
        default_mode: r.default_mode_cell(),
        load: r
            .load
            .as_ref()
            .map(|l| crate::cliff::load_cell(&l.fails, &l.holds)),
    }
}

fn print_replays(rows: &[explore::Row]) {
    for r in rows {
        for sw in r.sweeps.iter().chain(&r.default_mode) {
            if let Some(p) = &sw.replay {
                say!(
                    "{} {} ({}): replay with  cargo run --release -- replay {}",
                    r.scenario,
                    r.variant,
                    sw.policy,
                    p.display()
                );
            }
        }
    }
}
