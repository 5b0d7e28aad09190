//! Rerunning a replay file against any [`Target`]: strictly (every decision
//! must fit, and the result is compared with the file) or leniently while
//! shrinking it to a smaller failing run that fails through the same
//! oracle.

use super::replay_file::{FailureRecord, ReplayFile, ShrinkRecord, FORMAT_VERSION};
use super::sweep::SeedRun;
use super::target::Target;
use crate::sim::{Decision, Failure, FaultPlan, Outcome, PolicyKind, SimConfig};
use std::fmt;

/// The replay file of `run` of `target`.
pub fn replay_file_for(target: &dyn Target, run: &SeedRun) -> ReplayFile {
    let id = target.id();
    ReplayFile {
        format: FORMAT_VERSION,
        scenario: id.name,
        variant: id.variant,
        seed: run.seed,
        policy: run.policy,
        params: super::replay_file::SimParams::of(&run.cfg),
        faults: run.cfg.faults.clone(),
        failure: run.outcome.failure.as_ref().map(FailureRecord::from),
        trace_hash: run.outcome.trace_hash,
        faultline_version: env!("CARGO_PKG_VERSION").to_string(),
        commit: super::record::SourceState::current().short(),
        shrunk: None,
        decisions: run.outcome.decisions.clone(),
    }
}

/// The configuration that replays `file`'s `decisions` on `target`.
pub fn replay_config(
    target: &dyn Target,
    file: &ReplayFile,
    decisions: Vec<Decision>,
    strict: bool,
) -> SimConfig {
    let mut cfg = target.config(file.seed, file.policy);
    cfg.faults = file.faults.clone();
    file.params.apply(&mut cfg);
    cfg.policy = PolicyKind::Replay { decisions, strict };
    cfg
}

/// Replays `file` on `target` strictly; `keep_log` keeps the readable
/// event log.
pub fn replay(target: &dyn Target, file: &ReplayFile, keep_log: bool) -> Outcome {
    let mut cfg = replay_config(target, file, file.decisions.clone(), true);
    cfg.keep_log = keep_log;
    target.run(cfg)
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
    let same_failure = match (&now, &file.failure) {
        (Some(a), Some(b)) => a.kind == b.kind && a.message == b.message,
        (None, None) => true,
        _ => false,
    };
    let failure = (!same_failure).then(|| (describe(&file.failure), describe(&now)));
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
    /// The file records no failure: there is nothing to shrink.
    NothingRecorded,
    /// Its replay does not fail the recorded way (what happened instead).
    DoesNotFail(String),
}

impl fmt::Display for ShrinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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

pub use super::shrink::{ShrinkLimits, SHRINK_ATTEMPTS_DEFAULT};

/// Shrinks `file` within `limits` (see [`super::shrink`]): fewer faults,
/// fewer non-default decisions, smaller draws, never a longer run, while
/// the recorded oracle (kind and tag) still fails; returns the result as a
/// new replay file that replays strictly, with what shrinking achieved.
///
/// # Errors
/// [`ShrinkError`] when the file records no failure or its replay does not
/// fail the recorded way.
pub fn shrink_file(
    target: &dyn Target,
    file: &ReplayFile,
    limits: ShrinkLimits,
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
    let rerun_lenient = |plan: &FaultPlan, cand: &[Decision]| {
        let mut cfg = replay_config(target, file, cand.to_vec(), false);
        cfg.faults = plan.clone();
        target.run(cfg)
    };
    let first = rerun_lenient(&file.faults, &file.decisions);
    if !same(first.failure.as_ref()) {
        return Err(ShrinkError::DoesNotFail(describe(&first)));
    }
    let shrunk = super::shrink::shrink(&file.faults, &first, &rerun_lenient, &same, limits);
    let mut strict = replay_config(target, file, shrunk.decisions.clone(), true);
    strict.faults = shrunk.plan.clone();
    let out = target.run(strict);
    if !same(out.failure.as_ref()) {
        return Err(ShrinkError::DoesNotFail(format!(
            "the shrunk schedule replays as: {}",
            describe(&out)
        )));
    }
    let (b, a) = (shrunk.before, shrunk.after);
    Ok(ReplayFile {
        failure: out.failure.as_ref().map(FailureRecord::from),
        trace_hash: out.trace_hash,
        faults: shrunk.plan.clone(),
        shrunk: Some(ShrinkRecord {
            choices_before: b.choices as usize,
            choices_after: a.choices as usize,
            attempts: shrunk.attempts,
            decisions: (b.decisions, a.decisions),
            steps: (b.steps, a.steps),
            trace_events: (b.events, a.events),
            faults: (file.faults.to_string(), shrunk.plan.to_string()),
            elapsed_s: shrunk.elapsed_s,
        }),
        decisions: out.decisions,
        faultline_version: env!("CARGO_PKG_VERSION").to_string(),
        commit: super::record::SourceState::current().short(),
        ..file.clone()
    })
}

fn describe(out: &Outcome) -> String {
    out.failure
        .as_ref()
        .map_or_else(|| "it passes".to_string(), ToString::to_string)
}
