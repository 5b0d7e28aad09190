//! What `faultline` does with no subcommand (and `faultline explore`):
//! sweeps every variant of every scenario under the random and the PCT
//! policy, then the teeth table ([`crate::teeth`]) and the report
//! ([`crate::report`]).
//!
//! * A **schedule** row (a bug found by search) is swept over
//!   [`SEED_RANGES`] disjoint seed ranges, each until its first failure
//!   through the bug's own oracle: the row reports in how many ranges it
//!   was found and the runs to the first failure (median, max).
//! * A **load** row (the pre-fix fails under its load on every seed) runs
//!   [`LOAD_SEEDS`] seeds and, when the scenario can scale its load, the
//!   smallest load at which it fails and the largest the fix holds
//!   ([`crate::cliff`]).
//! * A correct variant runs at least [`CORRECT_SEEDS_MIN`] seeds per policy
//!   and more as the budget allows.
//!
//! Failures through any oracle other than the bug's own are counted apart
//! and never count as finding it.
//!
//! A bug that only sync-switch mode can find ([`Bug::sync_switch`]) is
//! swept in that mode, and also in the default mode over
//! [`SEED_RANGES`] x [`RANGE_SEEDS`] seeds per policy, which must find
//! nothing: a default-mode find fails the exploration (the row's claim is
//! wrong). The correct variants of its scenario are swept in both modes.

use crate::cliff::{self, Cliff, CliffSpec};
use crate::policy::{PolicySpec, PCT_DEPTH_DEFAULT};
use crate::replay_file::ReplayFileError;
use crate::runner::{
    policy_for, save_failure, sweep, sync_switch_for, SeedRun, SweepReport, SweepSpec,
};
use crate::scenario::{Bug, RowKind, Scenario, ScenarioError};
use crate::seeds::{SeedRange, Shard};
use std::fmt::Write as _;
use std::path::PathBuf;

/// The whole exploration's default wall-time budget, seconds (it bounds
/// the correct variants' extra seeds; the minimums below always run).
pub const BUDGET_S_DEFAULT: f64 = 60.0;

/// Seeds one sweep runs at most.
pub const SEEDS_PER_SWEEP_MAX: u64 = 10_000;

/// Disjoint seed ranges a schedule row is searched over.
pub const SEED_RANGES: u64 = 5;

/// Seeds in each range: a schedule row's range that finds nothing in this
/// many seeds counts as a miss.
pub const RANGE_SEEDS: u64 = 200;

/// Seeds a load row's buggy variant runs under each policy (all must fail).
pub const LOAD_SEEDS: u64 = 5;

/// Seeds a correct variant's sweep runs whatever the budget.
pub const CORRECT_SEEDS_MIN: u64 = 20;

/// How to explore.
#[derive(Clone, Copy, Debug)]
pub struct ExploreSpec {
    /// Wall time for the correct variants' sweeps together, seconds; split
    /// evenly over the sweeps still to run.
    pub budget_s: f64,
    /// Seeds one sweep runs at most.
    pub seeds_max: u64,
    /// Whether load rows search the load for the edge (slow scenarios make
    /// it the longest part of an exploration).
    pub cliffs: bool,
    /// Seeds run at once in each sweep (the verdicts are the same whatever
    /// the number).
    pub jobs: usize,
}

impl Default for ExploreSpec {
    fn default() -> Self {
        ExploreSpec {
            budget_s: BUDGET_S_DEFAULT,
            seeds_max: SEEDS_PER_SWEEP_MAX,
            cliffs: true,
            jobs: faultline::check::sweep::jobs_default(),
        }
    }
}

/// One policy's sweeps of a variant: one per seed range.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// The policy.
    pub policy: PolicySpec,
    /// Whether it ran in sync-switch mode.
    pub sync_switch: bool,
    /// One report per seed range (one range for load and correct rows).
    pub ranges: Vec<SweepReport>,
    /// The replay file of its first failure, if any.
    pub replay: Option<PathBuf>,
}

impl Sweep {
    /// Runs over every range.
    pub fn runs(&self) -> u64 {
        self.ranges.iter().map(|r| r.runs).sum()
    }

    /// Runs that failed through the bug's own oracle (any failure for a
    /// correct variant).
    pub fn matched(&self) -> u64 {
        self.ranges.iter().map(|r| r.matched).sum()
    }

    /// Failures through other oracles.
    pub fn others(&self) -> u64 {
        self.ranges.iter().map(|r| r.failures - r.matched).sum()
    }

    /// Wall time spent.
    pub fn elapsed_s(&self) -> f64 {
        self.ranges.iter().map(|r| r.elapsed_s).sum()
    }

    /// The first failure through the bug's own oracle (any failure for a
    /// correct variant), over the ranges in order.
    pub fn first_match(&self) -> Option<&SeedRun> {
        self.ranges.iter().find_map(|r| r.first_match.as_ref())
    }

    /// The first failure through another oracle.
    pub fn first_other(&self) -> Option<&SeedRun> {
        self.ranges.iter().find_map(|r| r.first_other.as_ref())
    }

    /// The table cell of this sweep for a row of `kind` that must (or must
    /// not) hold.
    pub fn cell(&self, kind: Option<RowKind>, must_hold: bool) -> String {
        let mut text = if self.sync_switch {
            "sync-switch: ".to_string()
        } else {
            String::new()
        };
        text += &match (must_hold, kind) {
            (true, _) => match self.ranges.iter().find_map(|r| r.first_failure.as_ref()) {
                None => format!("holds ({} runs)", self.runs()),
                Some(f) => format!("FAILS at seed {} ({})", f.seed, oracle_of(f)),
            },
            (false, Some(RowKind::Load)) => {
                format!("fails on {}/{} seeds", self.matched(), self.runs())
            }
            (false, _) => self.schedule_cell(),
        };
        if !must_hold && self.others() > 0 {
            if let Some(o) = self.first_other() {
                let _ = write!(
                    text,
                    "; {} other failures (e.g. {} at seed {})",
                    self.others(),
                    oracle_of(o),
                    o.seed
                );
            }
        }
        text
    }

    fn schedule_cell(&self) -> String {
        let mut firsts: Vec<u64> = self
            .ranges
            .iter()
            .filter_map(|r| r.first_match.as_ref().map(|_| r.runs))
            .collect();
        if firsts.is_empty() {
            return format!("NOT found ({} runs)", self.runs());
        }
        firsts.sort_unstable();
        let median = firsts[firsts.len() / 2];
        let max = firsts[firsts.len() - 1];
        format!(
            "found in {}/{} ranges, runs to 1st: median {median}, max {max}",
            firsts.len(),
            self.ranges.len()
        )
    }
}

fn oracle_of(run: &SeedRun) -> String {
    run.outcome
        .failure
        .as_ref()
        .map_or_else(String::new, faultline::sim::Failure::oracle)
}

/// The load edges of a load row.
#[derive(Clone, Debug)]
pub struct LoadEdges {
    /// Where the buggy variant starts to fail.
    pub fails: Cliff,
    /// How far the scenario's fixed variant holds.
    pub holds: Cliff,
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
    /// The bug it carries, if any.
    pub bug: Option<Bug>,
    /// Its sweeps: random, then PCT (per mode: see the module docs).
    pub sweeps: Vec<Sweep>,
    /// For a bug that only sync-switch mode finds: its sweeps in the
    /// default mode (random, then PCT), which must find nothing. Empty
    /// otherwise.
    pub default_mode: Vec<Sweep>,
    /// For a load row whose scenario scales its load: the edges.
    pub load: Option<LoadEdges>,
}

impl Row {
    /// Runs over every sweep.
    pub fn runs(&self) -> u64 {
        self.sweeps.iter().map(Sweep::runs).sum()
    }

    /// Whether any sweep failed (a buggy variant: through its bug's own
    /// oracle).
    pub fn failed(&self) -> bool {
        self.sweeps.iter().any(|s| s.matched() > 0)
    }

    /// Whether a buggy variant failed only through other oracles.
    pub fn only_other_failures(&self) -> bool {
        !self.must_hold && !self.failed() && self.sweeps.iter().any(|s| s.others() > 0)
    }

    /// Whether the default mode found a bug that only sync-switch mode
    /// should find (the row's claim is wrong).
    pub fn default_mode_found(&self) -> bool {
        self.default_mode.iter().any(|s| s.matched() > 0)
    }

    /// Whether the row is as it must be: a correct variant holds under
    /// every policy, a buggy one is caught by its own oracle under at least
    /// one, and one that needs sync-switch mode is missed by the default
    /// mode.
    pub fn ok(&self) -> bool {
        self.must_hold != self.failed() && !self.default_mode_found()
    }

    /// `caught`, `holds`, `MISSED`, `OTHER`, `FAILS`, or `DEFAULT` (caught,
    /// but by the default mode too, where its row says it cannot be).
    pub fn verdict(&self) -> &'static str {
        match (self.must_hold, self.failed()) {
            (false, true) if self.default_mode_found() => "DEFAULT",
            (false, true) => "caught",
            (false, false) if self.only_other_failures() => "OTHER",
            (false, false) => "MISSED",
            (true, false) => "holds",
            (true, true) => "FAILS",
        }
    }

    /// The row's kind (correct variants and toys have none).
    pub fn kind(&self) -> Option<RowKind> {
        self.bug.map(|b| b.kind)
    }

    /// The default mode's cell of a bug that only sync-switch mode finds:
    /// missed (as it must be), or where it was found. `None` for other
    /// rows.
    pub fn default_mode_cell(&self) -> Option<String> {
        if self.default_mode.is_empty() {
            return None;
        }
        let runs: u64 = self.default_mode.iter().map(Sweep::runs).sum();
        let found = self
            .default_mode
            .iter()
            .find_map(|s| s.first_match().map(|m| (s.policy, m.seed)));
        Some(match found {
            None => format!(
                "missed, as it must be ({runs} runs, random + PCT): only sync-switch mode \
                 interleaves its sections"
            ),
            Some((policy, seed)) => format!(
                "FOUND at seed {seed} ({policy}): the row says only sync-switch mode finds it"
            ),
        })
    }
}

/// Whether `variant`'s bug needs sync-switch mode.
fn needs_sync_switch(s: &dyn Scenario, variant: &str) -> bool {
    s.bug(variant).is_some_and(|b| b.sync_switch)
}

/// The modes `variant`'s sweeps run in (`true`: sync-switch): that mode
/// for a bug that needs it, both for a correct variant of a scenario with
/// such a bug (the fix holds where the bug is found and where it is not),
/// the variant's own ([`sync_switch_for`]) otherwise.
pub fn modes(s: &dyn Scenario, variant: &str) -> Vec<bool> {
    if needs_sync_switch(s, variant) {
        vec![true]
    } else if s.holds(variant) && s.variants().iter().any(|v| needs_sync_switch(s, v)) {
        vec![false, true]
    } else {
        vec![sync_switch_for(s, variant)]
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

impl From<ScenarioError> for ExploreError {
    fn from(e: ScenarioError) -> Self {
        ExploreError::Scenario(e)
    }
}

/// The policies every variant is swept under: random, and PCT of the
/// default depth sized for the scenario.
pub fn policies(scenario: &dyn Scenario) -> [PolicySpec; 2] {
    [
        PolicySpec::Random,
        policy_for(scenario, Some(PCT_DEPTH_DEFAULT)),
    ]
}

/// Explores every variant of every scenario (see the module docs); writes
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
    let plan: Vec<(&dyn Scenario, &'static str, Vec<bool>)> = scenarios
        .iter()
        .flat_map(|s| {
            let s = s.as_ref();
            s.variants().iter().map(move |&v| (s, v, modes(s, v)))
        })
        .collect();
    let total: usize = plan
        .iter()
        .map(|(s, v, m)| 2 * m.len() + if needs_sync_switch(*s, v) { 2 } else { 0 })
        .sum();
    let mut progress = Progress {
        spec,
        done: 0,
        total,
        spent_s: 0.0,
    };
    let mut rows = Vec::new();
    for (index, (s, variant, modes)) in plan.iter().enumerate() {
        let s = *s;
        let correct_left: usize = plan[index..]
            .iter()
            .filter(|(s, v, _)| s.holds(v))
            .map(|(_, _, m)| 2 * m.len())
            .sum();
        let (must_hold, bug) = (s.holds(variant), s.bug(variant));
        let mut sweeps = Vec::new();
        for &mode in modes {
            for policy in policies(s) {
                on_start(s.name(), variant, &policy, progress.done, total);
                let left = correct_left.max(1) as f64;
                let share_s = ((spec.budget_s - progress.spent_s).max(0.0) / left).max(0.0);
                let sw = sweep_variant(s, variant, (policy, mode), bug, (spec, share_s))?;
                if must_hold {
                    progress.spent_s += sw.elapsed_s();
                }
                progress.done += 1;
                sweeps.push(sw);
            }
        }
        let default_mode = default_mode_sweeps(s, variant, bug, &mut progress, &mut on_start)?;
        let load = match bug {
            Some(b) if b.kind == RowKind::Load && spec.cliffs && s.load_axis().is_some() => {
                Some(load_edges(s, variant, &b)?)
            }
            _ => None,
        };
        rows.push(Row {
            scenario: s.name(),
            variant,
            must_hold,
            bug,
            sweeps,
            default_mode,
            load,
        });
    }
    Ok(rows)
}

/// Where an exploration stands.
struct Progress {
    spec: ExploreSpec,
    done: usize,
    total: usize,
    spent_s: f64,
}

/// For a bug that only sync-switch mode finds: its sweeps in the default
/// mode, random then PCT, over [`SEED_RANGES`] x [`RANGE_SEEDS`] seeds
/// each, stopping at a find (which fails the row). None for other rows.
fn default_mode_sweeps(
    s: &dyn Scenario,
    variant: &str,
    bug: Option<Bug>,
    progress: &mut Progress,
    on_start: &mut impl FnMut(&str, &str, &PolicySpec, usize, usize),
) -> Result<Vec<Sweep>, ExploreError> {
    let mut out = Vec::new();
    if !needs_sync_switch(s, variant) {
        return Ok(out);
    }
    let seeds = SEED_RANGES * RANGE_SEEDS;
    for policy in policies(s) {
        on_start(s.name(), variant, &policy, progress.done, progress.total);
        let sw = SweepSpec {
            scenario: s,
            variant,
            policy,
            range: SeedRange {
                start: 0,
                end: seeds,
            },
            shard: Shard::ALL,
            fail_fast: true,
            time_budget_s: None,
            runs_min: seeds,
            bug,
            keep_hashes: false,
            jobs: progress.spec.jobs,
            sync_switch: Some(false),
        };
        let report = sweep(&sw, |_, _| {})?;
        let replay = match report.first_match.as_ref() {
            Some(run) => Some(save_failure(s, variant, run).map_err(ExploreError::Replay)?),
            None => None,
        };
        progress.done += 1;
        out.push(Sweep {
            policy,
            sync_switch: false,
            ranges: vec![report],
            replay,
        });
    }
    Ok(out)
}

/// The load edges of `variant` (buggy) and of the scenario's `fixed`.
fn load_edges(s: &dyn Scenario, variant: &str, bug: &Bug) -> Result<LoadEdges, ExploreError> {
    let spec = CliffSpec::default();
    let fails = cliff::fails_from(s, variant, Some(bug), &spec)?;
    let holds = cliff::holds_to(s, crate::scenario::FIXED, &spec)?;
    Ok(LoadEdges { fails, holds })
}

/// One policy's sweeps of a variant: several seed ranges for a schedule
/// row, one range otherwise.
fn sweep_variant(
    s: &dyn Scenario,
    variant: &str,
    (policy, sync_switch): (PolicySpec, bool),
    bug: Option<Bug>,
    (spec, share_s): (ExploreSpec, f64),
) -> Result<Sweep, ExploreError> {
    let one = |range: SeedRange, fail_fast: bool, budget: Option<f64>, runs_min: u64| {
        let sw = SweepSpec {
            scenario: s,
            variant,
            policy,
            range,
            shard: Shard::ALL,
            fail_fast,
            time_budget_s: budget,
            runs_min,
            bug,
            keep_hashes: false,
            jobs: spec.jobs,
            sync_switch: Some(sync_switch),
        };
        sweep(&sw, |_, _| {})
    };
    let ranges = match bug.map(|b| b.kind) {
        None => {
            let end = spec.seeds_max.max(1);
            let min = CORRECT_SEEDS_MIN.min(end);
            vec![one(SeedRange { start: 0, end }, true, Some(share_s), min)?]
        }
        Some(RowKind::Load) => {
            let range = SeedRange {
                start: 0,
                end: LOAD_SEEDS,
            };
            vec![one(range, false, None, LOAD_SEEDS)?]
        }
        Some(RowKind::Schedule) => (0..SEED_RANGES)
            .map(|i| {
                let range = SeedRange {
                    start: i * RANGE_SEEDS,
                    end: (i + 1) * RANGE_SEEDS,
                };
                one(range, true, None, RANGE_SEEDS)
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let first = ranges
        .iter()
        .find_map(|r| r.first_match.as_ref().or(r.first_failure.as_ref()));
    let replay = match first {
        Some(run) => Some(save_failure(s, variant, run).map_err(ExploreError::Replay)?),
        None => None,
    };
    Ok(Sweep {
        policy,
        sync_switch,
        ranges,
        replay,
    })
}

/// One line per scenario variant: what each policy found, the verdict and
/// the speed.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<18} {:<20} {:<8} {:>8}  random / pct",
        "scenario", "variant", "verdict", "runs/s"
    );
    for r in rows {
        let (runs, secs) = r
            .sweeps
            .iter()
            .chain(&r.default_mode)
            .fold((0, 0.0), |(n, t), s| (n + s.runs(), t + s.elapsed_s()));
        let speed = if secs > 0.0 { runs as f64 / secs } else { 0.0 };
        let mut cells: Vec<String> = r
            .sweeps
            .iter()
            .map(|s| s.cell(r.kind(), r.must_hold))
            .collect();
        cells.extend(r.default_mode_cell().map(|c| format!("default mode: {c}")));
        let _ = writeln!(
            out,
            "{:<18} {:<20} {:<8} {:>8.0}  {}",
            r.scenario,
            r.variant,
            r.verdict(),
            speed,
            cells.join(" / ")
        );
    }
    out
}

/// Whether every row is as it must be.
pub fn all_ok(rows: &[Row]) -> bool {
    rows.iter().all(Row::ok)
}
