//! Rerunning a replay file: strictly (`faultline replay`: every decision
//! must fit, and the result is compared with the file) or leniently while
//! shrinking it to a minimal failing schedule (`faultline shrink`).

use crate::replay_file::{FailureRecord, ReplayFile, ShrinkRecord};
use crate::scenario::{Scenario, ScenarioError};
use faultline::sim::{shrink, Decision, Failure, Outcome, PolicyKind, SimConfig};
use std::fmt;

/// Candidate runs a shrink tries at most, unless told otherwise.
pub const SHRINK_ATTEMPTS_DEFAULT: usize = 2_000;

/// The configuration that replays `file`'s `decisions`.
pub fn replay_config(
    scenario: &dyn Scenario,
    file: &ReplayFile,
    decisions: Vec<Decision>,
    strict: bool,
) -> SimConfig {
    let mut cfg = SimConfig {
        seed: file.seed,
        faults: file.faults.clone(),
        ..Default::default()
    };
    scenario.configure(&file.variant, &mut cfg);
    file.params.apply(&mut cfg);
    cfg.policy = PolicyKind::Replay { decisions, strict };
    cfg
}

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
    let mut cfg = replay_config(scenario, file, file.decisions.clone(), true);
    cfg.keep_log = keep_log;
    scenario.run(&file.variant, cfg)
}

/// How a strict replay compares with its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Same failure (or same pass) and same trace hash.
    Reproduced,
    /// The schedule no longer fits the code (the mismatch's message).
    NoLongerMatches(String),
    /// It ran to the end but differs from the file.
    Differs {
        /// `(recorded, now)` failure messages, when they differ.
        failure: Option<(String, String)>,
        /// `(recorded, now)` trace hashes, when they differ.
        trace_hash: Option<(u64, u64)>,
    },
}

/// Compares a replay's outcome with its file.
pub fn compare(file: &ReplayFile, out: &Outcome) -> Verdict {
    if let Some(Failure::ReplayMismatch(m)) = &out.failure {
        return Verdict::NoLongerMatches(m.clone());
    }
    let now = out.failure.as_ref().map(FailureRecord::from);
    let describe = |f: &Option<FailureRecord>| {
        f.as_ref()
            .map_or_else(|| "no failure".to_string(), |f| f.message.clone())
    };
    let failure = (now != file.failure).then(|| (describe(&file.failure), describe(&now)));
    let trace_hash =
        (out.trace_hash != file.trace_hash).then_some((file.trace_hash, out.trace_hash));
    if failure.is_none() && trace_hash.is_none() {
        Verdict::Reproduced
    } else {
        Verdict::Differs {
            failure,
            trace_hash,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Reproduced => {
                f.write_str("reproduced: same failure and same trace hash as recorded")
            }
            Verdict::NoLongerMatches(m) => write!(f, "replay mismatch: {m}"),
            Verdict::Differs {
                failure,
                trace_hash,
            } => {
                f.write_str("the replay differs from the file:")?;
                if let Some((was, now)) = failure {
                    write!(f, " recorded failure '{was}', now '{now}';")?;
                }
                if let Some((was, now)) = trace_hash {
                    write!(f, " recorded trace hash {was:#018x}, now {now:#018x};")?;
                }
                f.write_str(" the code changed since it was recorded")
            }
        }
    }
}

/// Why a file could not be shrunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShrinkError {
    /// The file's scenario or variant does not exist.
    Scenario(ScenarioError),
    /// The file records no failure: there is nothing to shrink.
    NothingRecorded,
    /// Its replay does not fail the recorded way (what happened instead).
    DoesNotFail(String),
}

impl fmt::Display for ShrinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShrinkError::Scenario(e) => e.fmt(f),
            ShrinkError::NothingRecorded => {
                f.write_str("the replay file records no failure: nothing to shrink")
            }
            ShrinkError::DoesNotFail(what) => write!(
                f,
                "the replay does not fail the recorded way ({what}): nothing to shrink"
            ),
        }
    }
}

impl std::error::Error for ShrinkError {}

impl From<ScenarioError> for ShrinkError {
    fn from(e: ScenarioError) -> Self {
        ShrinkError::Scenario(e)
    }
}

/// Shrinks `file` to a schedule with as few non-default decisions as it
/// finds (trying at most `attempts_max` candidates) that still fails with
/// the recorded oracle (kind and tag), and returns it as a new replay file.
///
/// # Errors
/// [`ShrinkError`] when the file records no failure, its scenario or variant
/// does not exist, or its replay does not fail the recorded way.
pub fn shrink_file(
    scenario: &dyn Scenario,
    file: &ReplayFile,
    attempts_max: usize,
) -> Result<ReplayFile, ShrinkError> {
    // The same oracle (kind and tag) must keep failing: an invariant
    // failure must not shrink into another invariant.
    let recorded = file.failure.as_ref().ok_or(ShrinkError::NothingRecorded)?;
    let oracle = recorded.oracle_or_kind().to_string();
    let same = |f: Option<&Failure>| {
        f.is_some_and(|f| {
            if recorded.oracle.is_empty() {
                f.kind() == oracle
            } else {
                f.oracle() == oracle
            }
        })
    };
    scenario.check_variant(&file.variant)?;
    let rerun_lenient = |cand: &[Decision]| {
        let cfg = replay_config(scenario, file, cand.to_vec(), false);
        scenario.run(&file.variant, cfg)
    };
    let first = rerun_lenient(&file.decisions)?;
    if !same(first.failure.as_ref()) {
        return Err(ShrinkError::DoesNotFail(describe(&first)));
    }
    let shrunk = shrink(&file.decisions, attempts_max, |cand| {
        let out = rerun_lenient(cand).ok()?;
        same(out.failure.as_ref()).then_some(out.decisions)
    });
    let strict = replay_config(scenario, file, shrunk.decisions.clone(), true);
    let out = scenario.run(&file.variant, strict)?;
    if !same(out.failure.as_ref()) {
        return Err(ShrinkError::DoesNotFail(format!(
            "the shrunk schedule replays as: {}",
            describe(&out)
        )));
    }
    Ok(ReplayFile {
        failure: out.failure.as_ref().map(FailureRecord::from),
        trace_hash: out.trace_hash,
        shrunk: Some(ShrinkRecord {
            choices_before: shrunk.choices_before,
            choices_after: shrunk.choices_after,
            attempts: shrunk.attempts,
        }),
        decisions: out.decisions,
        faultline_version: env!("CARGO_PKG_VERSION").to_string(),
        commit: crate::runner::COMMIT.to_string(),
        ..file.clone()
    })
}

fn describe(out: &Outcome) -> String {
    out.failure
        .as_ref()
        .map_or_else(|| "it passes".to_string(), ToString::to_string)
}
