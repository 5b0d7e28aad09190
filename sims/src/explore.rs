//! What `faultline` does with no subcommand (and `faultline explore`):
//! sweeps every variant of every scenario under the random and the PCT
//! policy within a wall-time budget, then the teeth table
//! ([`crate::teeth`]) and the report ([`crate::report`]). Every buggy
//! variant must be caught and every correct one must hold.

use crate::policy::{PolicySpec, PCT_DEPTH_DEFAULT};
use crate::replay_file::ReplayFileError;
use crate::runner::{policy_for, save_failure, sweep, SweepReport, SweepSpec};
use crate::scenario::{Bug, Scenario, ScenarioError};
use crate::seeds::{SeedRange, Shard};
use std::fmt::Write as _;
use std::path::PathBuf;

/// The whole exploration's default wall-time budget, seconds.
pub const BUDGET_S_DEFAULT: f64 = 60.0;

/// Seeds one sweep (a variant under one policy) runs at most.
pub const SEEDS_PER_SWEEP_MAX: u64 = 10_000;

/// Seeds a buggy variant's sweep runs until its first failure whatever the
/// budget, so whether a bug is caught never depends on the machine's speed.
pub const BUGGY_SEEDS_MIN: u64 = 200;

/// Seeds a correct variant's sweep runs whatever the budget.
pub const CORRECT_SEEDS_MIN: u64 = 20;

/// How to explore.
#[derive(Clone, Copy, Debug)]
pub struct ExploreSpec {
    /// Wall time for every sweep together, seconds; split evenly over the
    /// sweeps still to run, so time a sweep leaves unused (a bug found
    /// early) goes to the later ones.
    pub budget_s: f64,
    /// Seeds one sweep runs at most.
    pub seeds_max: u64,
}

impl Default for ExploreSpec {
    fn default() -> Self {
        ExploreSpec {
            budget_s: BUDGET_S_DEFAULT,
            seeds_max: SEEDS_PER_SWEEP_MAX,
        }
    }
}

/// One sweep: a variant under one policy.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// The policy.
    pub policy: PolicySpec,
    /// What it found.
    pub report: SweepReport,
    /// The replay file of its first failure, if any.
    pub replay: Option<PathBuf>,
}

impl Sweep {
    /// `found at seed S (N runs)`, `not found (N runs)`, `holds (N runs)`
    /// or `FAILS at seed S`.
    pub fn cell(&self, must_hold: bool) -> String {
        let r = &self.report;
        match (&r.first_failure, must_hold) {
            (Some(f), false) => format!("found at seed {} ({} runs)", f.seed, r.runs),
            (None, false) => format!("not found ({} runs)", r.runs),
            (None, true) => format!("holds ({} runs)", r.runs),
            (Some(f), true) => format!("FAILS at seed {}", f.seed),
        }
    }
}

/// One scenario variant, swept under both policies.
#[derive(Clone, Debug)]
pub struct Row {
    /// The scenario.
    pub scenario: &'static str,
    /// The variant.
    pub variant: &'static str,
    /// Whether the variant must hold (see [`Scenario::holds`]).
    pub must_hold: bool,
    /// The historical bug it carries, if any.
    pub bug: Option<Bug>,
    /// Its sweeps: random, then PCT.
    pub sweeps: Vec<Sweep>,
}

impl Row {
    /// Runs over every sweep.
    pub fn runs(&self) -> u64 {
        self.sweeps.iter().map(|s| s.report.runs).sum()
    }

    /// Whether any sweep failed.
    pub fn failed(&self) -> bool {
        self.sweeps.iter().any(|s| s.report.failures > 0)
    }

    /// Whether the row is as it must be: a correct variant holds under
    /// every policy, a buggy one is caught by at least one.
    pub fn ok(&self) -> bool {
        self.must_hold != self.failed()
    }

    /// `caught`, `holds`, `MISSED` or `FAILS`.
    pub fn verdict(&self) -> &'static str {
        match (self.must_hold, self.failed()) {
            (false, true) => "caught",
            (false, false) => "MISSED",
            (true, false) => "holds",
            (true, true) => "FAILS",
        }
    }
}

/// Why exploring stopped.
#[derive(Debug)]
pub enum ExploreError {
    /// A scenario rejected its own variant (a registration bug).
    Scenario(ScenarioError),
    /// A replay file could not be written.
    Replay(ReplayFileError),
}

impl std::fmt::Display for ExploreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExploreError::Scenario(e) => e.fmt(f),
            ExploreError::Replay(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ExploreError {}

/// The policies every variant is swept under: random, and PCT of the
/// default depth sized for the scenario.
pub fn policies(scenario: &dyn Scenario) -> [PolicySpec; 2] {
    [
        PolicySpec::Random,
        policy_for(scenario, Some(PCT_DEPTH_DEFAULT)),
    ]
}

/// Sweeps seeds `0..` of every variant of every scenario under each of
/// [`policies`], each sweep stopping at its first failure, at
/// `spec.seeds_max` seeds, or when its share of the budget is spent (but
/// not before [`BUGGY_SEEDS_MIN`] / [`CORRECT_SEEDS_MIN`] seeds); writes
/// a replay file for each first failure. `on_start(scenario, variant,
/// policy, done, total)` is called before each sweep.
///
/// # Errors
/// [`ExploreError`] when a scenario rejects one of its own variants or a
/// replay file cannot be written.
pub fn explore(
    scenarios: &[Box<dyn Scenario>],
    spec: ExploreSpec,
    mut on_start: impl FnMut(&str, &str, &PolicySpec, usize, usize),
) -> Result<Vec<Row>, ExploreError> {
    let total: usize = scenarios.iter().map(|s| 2 * s.variants().len()).sum();
    let mut done = 0usize;
    let mut spent_s = 0.0f64;
    let mut rows = Vec::new();
    for s in scenarios {
        for &variant in s.variants() {
            let mut sweeps = Vec::new();
            for policy in policies(s.as_ref()) {
                on_start(s.name(), variant, &policy, done, total);
                let share_s = (spec.budget_s - spent_s).max(0.0) / (total - done) as f64;
                let runs_min = if s.holds(variant) {
                    CORRECT_SEEDS_MIN
                } else {
                    BUGGY_SEEDS_MIN
                };
                let limits = (spec.seeds_max, runs_min, share_s);
                let sw = sweep_one(s.as_ref(), variant, policy, limits)?;
                spent_s += sw.report.elapsed_s;
                done += 1;
                sweeps.push(sw);
            }
            rows.push(Row {
                scenario: s.name(),
                variant,
                must_hold: s.holds(variant),
                bug: s.bug(variant),
                sweeps,
            });
        }
    }
    Ok(rows)
}

/// One sweep; `(seeds_max, runs_min, budget_s)` bound it.
fn sweep_one(
    scenario: &dyn Scenario,
    variant: &str,
    policy: PolicySpec,
    (seeds_max, runs_min, budget_s): (u64, u64, f64),
) -> Result<Sweep, ExploreError> {
    let spec = SweepSpec {
        scenario,
        variant,
        policy,
        range: SeedRange {
            start: 0,
            end: seeds_max.max(1),
        },
        shard: Shard::ALL,
        fail_fast: true,
        time_budget_s: Some(budget_s),
        runs_min: runs_min.min(seeds_max),
    };
    let report = sweep(&spec, |_, _| {}).map_err(ExploreError::Scenario)?;
    let replay = match &report.first_failure {
        Some(run) => Some(save_failure(scenario, variant, run).map_err(ExploreError::Replay)?),
        None => None,
    };
    Ok(Sweep {
        policy,
        report,
        replay,
    })
}

/// One line per scenario variant: runs and first failing seed under each
/// policy, the verdict and the speed.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<18} {:<20} {:<28} {:<28} {:<7} {:>8}",
        "scenario", "variant", "random", "pct", "verdict", "runs/s"
    );
    for r in rows {
        let cell = |i: usize| {
            r.sweeps
                .get(i)
                .map_or_else(String::new, |s| s.cell(r.must_hold))
        };
        let (runs, secs) = r.sweeps.iter().fold((0, 0.0), |(n, t), s| {
            (n + s.report.runs, t + s.report.elapsed_s)
        });
        let speed = if secs > 0.0 { runs as f64 / secs } else { 0.0 };
        let _ = writeln!(
            out,
            "{:<18} {:<20} {:<28} {:<28} {:<7} {:>8.0}",
            r.scenario,
            r.variant,
            cell(0),
            cell(1),
            r.verdict(),
            speed
        );
    }
    out
}

/// Whether every row is as it must be.
pub fn all_ok(rows: &[Row]) -> bool {
    rows.iter().all(Row::ok)
}
