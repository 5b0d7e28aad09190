//! Issue 16's shrink regressions: a shrunk run is never longer than its
//! input in decisions, steps or trace lines, and fails through the same
//! oracle. Measured on the replays themselves (not on the shrinker's own
//! report): the input file and the shrunk file are both replayed strictly
//! with the log kept.
//!
//! The runs: spend-flush `documented` (issue 16 named seed 1, which passes
//! since the scenario changed; seed 4 is its first double-flush, the bug's
//! own oracle), `documented-pop` seed 0 and append-retention
//! `generation-check` seed 25 (the first failing seeds of those variants).

use faultline_sims::rerun::{replay, shrink_file};
use faultline_sims::runner::{policy_for, replay_file_for, run_seed};

/// Candidates a shrink tries at most here (the CLI's default is 2,000):
/// enough for the fault-plan pass and the decisions' passes to run.
const ATTEMPTS_MAX: usize = 300;
/// Wall time a shrink spends at most here, s.
const TIME_S_MAX: f64 = 30.0;

fn never_longer(scenario: &str, variant: &str, seed: u64, oracle: &str) {
    let sc = faultline_sims::find(scenario).expect("a scenario");
    let run = run_seed(&*sc, variant, seed, policy_for(&*sc, None)).expect("a variant");
    let failure = run.outcome.failure.as_ref().expect("the seed fails");
    assert_eq!(failure.oracle(), oracle, "{scenario} {variant} seed {seed}");
    let file = replay_file_for(&*sc, variant, &run);
    let min = shrink_file(&*sc, &file, ATTEMPTS_MAX, TIME_S_MAX).expect("it shrinks");
    let before = replay(&*sc, &file, true).expect("replays");
    let after = replay(&*sc, &min, true).expect("replays");
    let what = format!("{scenario} {variant} seed {seed}");
    let oracle_after = after.failure.as_ref().map(|f| f.oracle());
    assert_eq!(oracle_after.as_deref(), Some(oracle), "{what}: same oracle");
    assert_eq!(
        after.trace_hash, min.trace_hash,
        "{what}: shrunk file replays exactly"
    );
    let sizes = |o: &faultline::sim::Outcome| (o.decisions.len(), o.steps, o.trace_log.lines.len());
    let (b, a) = (sizes(&before), sizes(&after));
    assert!(a.0 <= b.0, "{what}: decisions {} -> {}", b.0, a.0);
    assert!(a.1 <= b.1, "{what}: steps {} -> {}", b.1, a.1);
    assert!(a.2 <= b.2, "{what}: trace lines {} -> {}", b.2, a.2);
}

#[test]
fn spend_documented_double_flush_shrinks_no_longer() {
    never_longer("spend-flush", "documented", 4, "invariant:double-flush");
}

#[test]
fn spend_documented_pop_shrinks_no_longer() {
    never_longer(
        "spend-flush",
        "documented-pop",
        0,
        "invariant:crash-after-read",
    );
}

#[test]
fn store_generation_check_shrinks_no_longer() {
    never_longer(
        "append-retention",
        "generation-check",
        25,
        "invariant:no-loss",
    );
}
