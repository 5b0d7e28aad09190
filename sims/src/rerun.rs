//! Rerunning a replay file of a scenario: the library's strict replay and
//! shrinking (`faultline::check::rerun`) over the file's scenario variant.

use crate::runner::ScenarioTarget;
use crate::scenario::{Scenario, ScenarioError};
use faultline::check::replay_file::ReplayFile;
use faultline::check::rerun::{self, ShrinkLimits};
use faultline::sim::Outcome;
use std::fmt;

pub use faultline::check::rerun::{compare, Verdict, SHRINK_ATTEMPTS_DEFAULT};

/// Replays `file` strictly; `keep_log` keeps the readable event log.
///
/// # Errors
/// [`ScenarioError::UnknownVariant`] when the file names a variant the
/// scenario lacks.
pub fn replay(
    scenario: &dyn Scenario,
    file: &ReplayFile,
    keep_log: bool,
) -> Result<Outcome, ScenarioError> {
    let target = ScenarioTarget::new(scenario, &file.variant)?;
    Ok(rerun::replay(&target, file, keep_log))
}

/// Why a file could not be shrunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShrinkError {
    /// The file's scenario or variant does not exist.
    Scenario(ScenarioError),
    /// The library's shrinker refused it.
    Shrink(rerun::ShrinkError),
}

impl fmt::Display for ShrinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShrinkError::Scenario(e) => e.fmt(f),
            ShrinkError::Shrink(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ShrinkError {}

/// Shrinks `file` (see `faultline::check::rerun::shrink_file`), trying at
/// most `attempts_max` candidates within `time_s_max` seconds.
///
/// # Errors
/// [`ShrinkError`] when the file's variant does not exist, it records no
/// failure, or its replay does not fail the recorded way.
pub fn shrink_file(
    scenario: &dyn Scenario,
    file: &ReplayFile,
    attempts_max: usize,
    time_s_max: f64,
) -> Result<ReplayFile, ShrinkError> {
    let target = ScenarioTarget::new(scenario, &file.variant).map_err(ShrinkError::Scenario)?;
    let limits = ShrinkLimits {
        attempts_max,
        time_s_max,
    };
    rerun::shrink_file(&target, file, limits).map_err(ShrinkError::Shrink)
}
