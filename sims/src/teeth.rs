//! The teeth table: one row per bug (a buggy variant that names its
//! [`Bug`]), one cell per checker: the simulator under the random and the
//! PCT policy (from this exploration), loom, shuttle, the fuzzer and the
//! real servers (from the records their tests left, see [`crate::checks`]),
//! the load edges of a load row, and whether the scenario's correct
//! variants held.
//!
//! Every cell is earned on the source in front of us by the bug's own
//! oracle: a record of another commit is `stale`, a failure through
//! another oracle is `other`, and either makes [`problems`] non-empty.

use crate::checks::{cell, Cell, CellState, Checks};
use crate::cliff::load_cell;
use crate::explore::Row;
use crate::scenario::{Bug, RowKind};
use std::fmt::Write as _;

/// The checkers whose results come from recorded test runs.
pub const RECORDED_CHECKERS: [&str; 4] = ["loom", "shuttle", "fuzz", "real"];

/// What the legend says each cell means (README, report and terminal).
pub const LEGEND: &str = "\
Rows: a *schedule* row is a bug found by searching schedules (some seeds fail, most pass); \
its simulator cells give the seed ranges (of 200 seeds each) in which the bug's own oracle \
fired and the runs to its first failure (median, max). A *load* row is a bug the pre-fix shows \
under its load on every seed; its cells say on how many seeds it failed and, under `load`, the \
smallest load at which it fails and the largest the fixed variant holds. *historical*: \
production saw it; *hypothesized*: a reasoned flaw of a documented design or rejected fix. \
A row marked *sync-switch* is a race between two synchronous sections that only the \
simulator's sync-switch mode can interleave: its `sim random` and `sim PCT` cells are that \
mode's sweeps, and `sim default mode` shows that the default mode missed it over as many seeds \
(a find there fails the table: the row's claim would be wrong); every other row's simulator \
cells are the default mode's (its `sim default mode` cell says `(the same)`). \
Cells: `found in N it.` a recorded check caught it with the bug's own oracle after N \
iterations; `fixed holds (N it.)` the fixed variant passed N iterations; `not run` no such \
check exists or it did not run; `stale (abc1234)` its record was earned on another commit \
and counts for nothing; `MISSED`, `FIXED FAILS`, `OTHER ORACLE` are failures of the table.";

/// One bug's row.
#[derive(Clone, Debug)]
pub struct TeethRow {
    /// The bug.
    pub bug: Bug,
    /// Its scenario and variant.
    pub scenario: &'static str,
    /// The variant carrying it.
    pub variant: &'static str,
    /// Simulator, random policy.
    pub random: String,
    /// Simulator, PCT.
    pub pct: String,
    /// For a bug only sync-switch mode finds (whose `random` and `pct`
    /// cells are that mode's): the default mode's miss, or its find.
    pub default_mode: Option<String>,
    /// loom, shuttle, fuzz, real.
    pub recorded: [Cell; 4],
    /// A load row's edges, if searched.
    pub load: Option<String>,
    /// The correct variants of the same scenario.
    pub fixed: String,
    /// Whether the simulator caught it with its own oracle.
    pub caught: bool,
}

/// The teeth rows of an exploration, in scenario order.
pub fn teeth_rows(rows: &[Row], checks: &Checks) -> Vec<TeethRow> {
    rows.iter()
        .filter_map(|r| {
            let bug = r.bug?;
            let sim = |i: usize| {
                r.sweeps
                    .get(i)
                    .map_or_else(String::new, |s| s.cell(Some(bug.kind), false))
            };
            Some(TeethRow {
                bug,
                scenario: r.scenario,
                variant: r.variant,
                random: sim(0),
                pct: sim(1),
                default_mode: r.default_mode_cell(),
                recorded: RECORDED_CHECKERS.map(|c| cell(checks, &bug, c)),
                load: r.load.as_ref().map(|l| load_cell(&l.fails, &l.holds)),
                fixed: fixed_cell(rows, r.scenario),
                caught: r.failed(),
            })
        })
        .collect()
}

/// What is wrong with the table: bugs not found by their own oracle,
/// correct variants that failed, recorded cells that are missed, failing,
/// caught by another oracle, or stale. Empty when every cell is earned.
pub fn problems(rows: &[Row], teeth: &[TeethRow]) -> Vec<String> {
    let mut out = Vec::new();
    for r in rows.iter().filter(|r| r.must_hold == r.failed()) {
        let why = match r.verdict() {
            "OTHER" => "failed only through other oracles than the bug's own",
            "MISSED" => "was not caught",
            _ => "failed",
        };
        out.push(format!("{} {} {why}", r.scenario, r.variant));
    }
    for r in rows.iter().filter(|r| r.default_mode_found()) {
        out.push(format!(
            "{} {} was found in the default mode ({}): its row says only sync-switch mode finds \
             it, so the claim is wrong (or the default mode changed)",
            r.scenario,
            r.variant,
            r.default_mode_cell().unwrap_or_default()
        ));
    }
    for t in teeth {
        for (checker, c) in RECORDED_CHECKERS.iter().zip(&t.recorded) {
            if matches!(c.state, CellState::Bad | CellState::Stale) {
                out.push(format!("{} / {checker}: {}", t.bug.key, c.text));
            }
        }
    }
    out
}

/// `holds (N runs)` over the scenario's correct variants, or which failed.
fn fixed_cell(rows: &[Row], scenario: &str) -> String {
    let correct: Vec<&Row> = rows
        .iter()
        .filter(|r| r.scenario == scenario && r.must_hold)
        .collect();
    if let Some(bad) = correct.iter().find(|r| r.failed()) {
        let cell = bad
            .sweeps
            .iter()
            .map(|s| s.cell(None, true))
            .find(|c| c.starts_with("FAILS"))
            .unwrap_or_default();
        return format!("{} {cell}", bad.variant);
    }
    let runs: u64 = correct.iter().map(|r| r.runs()).sum();
    let names: Vec<&str> = correct.iter().map(|r| r.variant).collect();
    let verb = if names.len() == 1 { "holds" } else { "hold" };
    format!("{} {verb} ({runs} runs)", names.join(" + "))
}

fn label(t: &TeethRow) -> String {
    let mode = if t.bug.sync_switch {
        ", sync-switch"
    } else {
        ""
    };
    format!("{}, {}{mode}", t.bug.kind.name(), t.bug.origin.name())
}

/// The table for a terminal: one block per bug, one line per checker.
pub fn render_text(rows: &[TeethRow]) -> String {
    let mut out = String::new();
    for t in rows {
        let _ = writeln!(
            out,
            "{}  [{}]  {} {}",
            t.bug.key,
            label(t),
            t.scenario,
            t.variant
        );
        let mut line = |name: &str, text: &str| {
            let _ = writeln!(out, "    {name:<11} {text}");
        };
        line("sim random", &t.random);
        line("sim PCT", &t.pct);
        if let Some(d) = &t.default_mode {
            line("sim default", d);
        }
        if let Some(load) = &t.load {
            line("load", load);
        } else if t.bug.kind == RowKind::Load {
            line("load", "not searched");
        }
        for (checker, c) in RECORDED_CHECKERS.iter().zip(&t.recorded) {
            line(checker, &c.text);
        }
        line("fixed", &t.fixed);
    }
    out
}

const HEADERS: [&str; 12] = [
    "bug",
    "row",
    "variant",
    "sim random",
    "sim PCT",
    "sim default mode",
    "load",
    "loom",
    "shuttle",
    "fuzz",
    "real",
    "fixed",
];

/// The table in Markdown, with each bug's title, and the legend.
pub fn render_markdown(rows: &[TeethRow]) -> String {
    let mut out = format!("| {} |\n", HEADERS.join(" | "));
    out.push_str(&format!("|{}\n", "---|".repeat(HEADERS.len())));
    for t in rows {
        let mut c = vec![
            format!("**{}**: {}", t.bug.key, t.bug.title),
            label(t),
            format!("{} {}", t.scenario, t.variant),
            t.random.clone(),
            t.pct.clone(),
            t.default_mode
                .clone()
                .unwrap_or_else(|| "(the same)".into()),
            t.load.clone().unwrap_or_else(|| "—".into()),
        ];
        c.extend(t.recorded.iter().map(|r| r.text.clone()));
        c.push(t.fixed.clone());
        out.push_str(&format!("| {} |\n", c.join(" | ")));
    }
    out.push('\n');
    out.push_str(LEGEND);
    out.push('\n');
    out
}
