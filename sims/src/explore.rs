//! What `faultline` does with no subcommand: a short random sweep of every
//! scenario on every variant, and the teeth table. Every buggy variant must
//! be caught and every fixed one must hold.

use crate::policy::PolicySpec;
use crate::replay_file::ReplayFileError;
use crate::runner::{save_failure, sweep, SweepReport, SweepSpec};
use crate::scenario::{Scenario, ScenarioError};
use crate::seeds::{SeedRange, Shard};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Seeds each variant runs by default.
pub const SEEDS_PER_VARIANT: u64 = 200;

/// One scenario variant's sweep.
#[derive(Clone, Debug)]
pub struct Row {
    /// The scenario.
    pub scenario: &'static str,
    /// The variant.
    pub variant: &'static str,
    /// Whether the variant must hold (see [`Scenario::holds`]).
    pub must_hold: bool,
    /// What its sweep found.
    pub report: SweepReport,
    /// The replay file of its first failure, if any.
    pub replay: Option<PathBuf>,
}

impl Row {
    /// Whether the variant must fail (it carries a bug).
    pub fn expects_failure(&self) -> bool {
        !self.must_hold
    }

    /// Whether the row is as it must be: a fixed variant holds, any other
    /// is caught.
    pub fn ok(&self) -> bool {
        self.expects_failure() == (self.report.failures > 0)
    }

    /// `caught`, `holds`, `MISSED` or `FAILS`.
    pub fn verdict(&self) -> &'static str {
        match (self.expects_failure(), self.report.failures > 0) {
            (true, true) => "caught",
            (true, false) => "MISSED",
            (false, false) => "holds",
            (false, true) => "FAILS",
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

/// Sweeps seeds `0..seeds` of every variant of every scenario with the
/// random policy, writing a replay file for each variant's first failure;
/// `on_start` is called before each variant's sweep.
///
/// # Errors
/// [`ExploreError`] when a scenario rejects one of its own variants or a
/// replay file cannot be written.
pub fn explore(
    scenarios: &[Box<dyn Scenario>],
    seeds: u64,
    mut on_start: impl FnMut(&str, &str),
) -> Result<Vec<Row>, ExploreError> {
    let mut rows = Vec::new();
    let range = SeedRange {
        start: 0,
        end: seeds.max(1),
    };
    for s in scenarios {
        for &variant in s.variants() {
            on_start(s.name(), variant);
            let spec = SweepSpec {
                scenario: s.as_ref(),
                variant,
                policy: PolicySpec::Random,
                range,
                shard: Shard::ALL,
                fail_fast: false,
            };
            let report = sweep(&spec, |_, _| {}).map_err(ExploreError::Scenario)?;
            let replay = match &report.first_failure {
                Some(run) => {
                    Some(save_failure(s.as_ref(), variant, run).map_err(ExploreError::Replay)?)
                }
                None => None,
            };
            rows.push(Row {
                scenario: s.name(),
                variant,
                must_hold: s.holds(variant),
                report,
                replay,
            });
        }
    }
    Ok(rows)
}

/// The teeth table: one line per scenario variant.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:<10} {:>6} {:>9} {:>13}  {:<7} {:>8}",
        "scenario", "variant", "runs", "failures", "first failing", "verdict", "runs/s"
    );
    for r in rows {
        let first = r
            .report
            .first_failure
            .as_ref()
            .map_or_else(|| "-".to_string(), |f| f.seed.to_string());
        let _ = writeln!(
            out,
            "{:<16} {:<10} {:>6} {:>9} {:>13}  {:<7} {:>8.0}",
            r.scenario,
            r.variant,
            r.report.runs,
            r.report.failures,
            first,
            r.verdict(),
            r.report.runs_per_s()
        );
    }
    out
}

/// Whether every row is as it must be.
pub fn all_ok(rows: &[Row]) -> bool {
    rows.iter().all(Row::ok)
}
