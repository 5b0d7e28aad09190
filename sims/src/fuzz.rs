//! Entry points for the cargo-fuzz targets in `fuzz/` (thin wrappers call
//! these), kept in the library so the ordinary test suite exercises them
//! too.
//!
//! * [`schedule_failure`] (the `schedule` target): the fuzzer's bytes
//!   *are* the simulator's decisions (which task runs next, every fault
//!   coin, every draw), so libFuzzer's coverage guidance explores
//!   interleavings and fault combinations. Any oracle failure writes a
//!   replay file that `faultline replay` reproduces, then panics (the
//!   fuzzer's crash).
//! * [`replay_file`]: the replay-file parser never panics.

use crate::policy::PolicySpec;
use crate::runner::{config_for, replay_file_for, SeedRun};
use crate::scenario::Scenario;
use faultline::sim::PolicyKind;
use std::path::{Path, PathBuf};

/// Bytes at the front of a `schedule` input that are not decisions: the
/// scenario choice (1) and the seed of the swarm fault plan (8).
pub const SCHEDULE_HEADER_BYTES: usize = 9;

/// Decision bytes a `schedule` input uses at most (the rest is ignored), so
/// a run stays short whatever the fuzzer feeds it.
pub const SCHEDULE_DECISION_BYTES_MAX: usize = 64 * 1024;

/// Runs `variant` of one of `scenarios` on the decisions in `data`: byte 0
/// chooses the scenario (modulo their number), bytes 1..9 seed its swarm
/// fault plan, the rest are the decisions (see
/// [`faultline::sim::BytesPolicy`]). Returns the run; `None` when `data` is
/// too short or the scenario lacks `variant`.
pub fn schedule_run(
    scenarios: &[Box<dyn Scenario>],
    variant: &str,
    data: &[u8],
) -> Option<(usize, SeedRun)> {
    if data.len() < SCHEDULE_HEADER_BYTES || scenarios.is_empty() {
        return None;
    }
    let which = usize::from(data[0]) % scenarios.len();
    let scenario = scenarios[which].as_ref();
    scenario.check_variant(variant).ok()?;
    let mut seed_bytes = [0u8; 8];
    seed_bytes.copy_from_slice(&data[1..SCHEDULE_HEADER_BYTES]);
    let seed = u64::from_le_bytes(seed_bytes);
    let end = data
        .len()
        .min(SCHEDULE_HEADER_BYTES + SCHEDULE_DECISION_BYTES_MAX);
    let mut cfg = config_for(scenario, variant, seed, PolicySpec::Fuzz);
    cfg.policy = PolicyKind::Bytes(data[SCHEDULE_HEADER_BYTES..end].to_vec());
    let outcome = scenario.run(variant, cfg.clone()).ok()?;
    let run = SeedRun {
        seed,
        policy: PolicySpec::Fuzz,
        cfg,
        outcome,
    };
    Some((which, run))
}

/// The `schedule` target: runs `data` (see [`schedule_run`]) and, when an
/// oracle fails, writes the run's replay file under `dir` and returns its
/// path with the failure report (seed, fault plan, how to reproduce). On a
/// variant that carries a bug, only a failure of that bug's own oracles
/// counts; any other failure is reported on stderr and returns `None`.
pub fn schedule_failure(
    scenarios: &[Box<dyn Scenario>],
    variant: &str,
    data: &[u8],
    dir: &Path,
) -> Option<(PathBuf, String)> {
    let (which, run) = schedule_run(scenarios, variant, data)?;
    let failure = run.outcome.failure.as_ref()?;
    let scenario = scenarios[which].as_ref();
    // Hunting a buggy variant, only its bug's own oracle counts: any other
    // failure is reported on stderr and is not the crash being hunted.
    if let Some(bug) = scenario.bug(variant) {
        if !bug.signalled_by(failure) {
            eprintln!(
                "fuzz: {} {variant}: other failure ({}), not bug {}'s oracle: {failure}",
                scenario.name(),
                failure.oracle(),
                bug.key
            );
            return None;
        }
    }
    let name = format!(
        "{}-{variant}-fuzz-{:016x}.json",
        scenario.name(),
        run.outcome.trace_hash
    );
    let path = dir.join(name);
    let written = replay_file_for(scenario, variant, &run)
        .write(&path)
        .map_err(|e| e.to_string());
    let shown = match &written {
        Ok(()) => Ok(path.as_path()),
        Err(e) => crate::runner::not_written(&path, e),
    };
    let report = crate::runner::failure_report(scenario.name(), variant, &run, shown);
    Some((path, report))
}

/// The `replay_file` target: parses `data` as a replay file; must never
/// panic, whatever the bytes.
pub fn replay_file(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::parse_replay(text);
    }
}
