//! The teeth table: one row per historical bug (a buggy variant that names
//! its [`Bug`]), one column per checker: the simulator under the random and
//! the PCT policy (from this exploration), loom, shuttle and the fuzzer
//! (from the records their tests left, see [`crate::checks`]), the real
//! servers (`real`: the `servers_spend_*` tests' verdicts on Redis and
//! Postgres, recorded the same way; the spend rows only), and whether
//! the scenario's correct variants held.

use crate::checks::{cell, Checks};
use crate::explore::Row;
use crate::scenario::Bug;
use std::fmt::Write as _;

/// The checkers whose results come from recorded test runs.
pub const RECORDED_CHECKERS: [&str; 4] = ["loom", "shuttle", "fuzz", "real"];

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
    /// loom, shuttle, fuzz, real servers.
    pub recorded: [String; 4],
    /// The correct variants of the same scenario.
    pub fixed: String,
    /// Whether the simulator caught it.
    pub caught: bool,
}

/// The teeth rows of an exploration, in scenario order.
pub fn teeth_rows(rows: &[Row], checks: &Checks) -> Vec<TeethRow> {
    rows.iter()
        .filter_map(|r| {
            let bug = r.bug?;
            let sim = |i: usize| r.sweeps.get(i).map_or_else(String::new, |s| s.cell(false));
            Some(TeethRow {
                bug,
                scenario: r.scenario,
                variant: r.variant,
                random: sim(0),
                pct: sim(1),
                recorded: RECORDED_CHECKERS.map(|c| cell(checks, bug.key, c)),
                fixed: fixed_cell(rows, r.scenario),
                caught: r.failed(),
            })
        })
        .collect()
}

/// `holds (N runs)` over the scenario's correct variants, or which failed.
fn fixed_cell(rows: &[Row], scenario: &str) -> String {
    let correct: Vec<&Row> = rows
        .iter()
        .filter(|r| r.scenario == scenario && r.must_hold)
        .collect();
    if let Some(bad) = correct.iter().find(|r| r.failed()) {
        let seed = bad
            .sweeps
            .iter()
            .find_map(|s| s.report.first_failure.as_ref().map(|f| f.seed));
        return format!("{} FAILS at seed {}", bad.variant, seed.unwrap_or(0));
    }
    let runs: u64 = correct.iter().map(|r| r.runs()).sum();
    let names: Vec<&str> = correct.iter().map(|r| r.variant).collect();
    let verb = if names.len() == 1 { "holds" } else { "hold" };
    format!("{} {verb} ({runs} runs)", names.join(" + "))
}

const HEADERS: [&str; 9] = [
    "bug",
    "variant",
    "sim random",
    "sim PCT",
    "loom",
    "shuttle",
    "fuzz",
    "real",
    "fixed",
];

fn cells(t: &TeethRow) -> [String; 9] {
    [
        t.bug.key.to_string(),
        format!("{} {}", t.scenario, t.variant),
        t.random.clone(),
        t.pct.clone(),
        t.recorded[0].clone(),
        t.recorded[1].clone(),
        t.recorded[2].clone(),
        t.recorded[3].clone(),
        t.fixed.clone(),
    ]
}

/// The table as aligned text for a terminal.
pub fn render_text(rows: &[TeethRow]) -> String {
    let all: Vec<[String; 9]> = rows.iter().map(cells).collect();
    let mut widths = HEADERS.map(str::len);
    for r in &all {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cols: &[String]| {
        let mut l = String::new();
        for (c, w) in cols.iter().zip(widths) {
            let _ = write!(l, "{c:<w$}  ");
        }
        l.trim_end().to_string() + "\n"
    };
    let mut out = line(&HEADERS.map(String::from));
    for r in &all {
        out.push_str(&line(r));
    }
    out
}

/// The table in Markdown, with each bug's title.
pub fn render_markdown(rows: &[TeethRow]) -> String {
    let mut out = format!("| {} |\n", HEADERS.join(" | "));
    out.push_str(&format!("|{}\n", "---|".repeat(HEADERS.len())));
    for t in rows {
        let mut c = cells(t);
        c[0] = format!("**{}**: {}", t.bug.key, t.bug.title);
        out.push_str(&format!("| {} |\n", c.join(" | ")));
    }
    out
}
