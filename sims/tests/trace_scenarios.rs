//! The trace writer's scenarios, seed by seed, under the random policy and
//! PCT: every buggy variant is caught by the oracle meant for it (with its
//! message), every fixed one holds; the measured peaks are printed.

use faultline_sims::find;
use faultline_sims::runner::{policy_for, run_seed, SeedRun};

const SEEDS: u64 = 30;

fn runs(scenario: &str, variant: &str, pct: bool) -> Vec<SeedRun> {
    let s = find(scenario).unwrap();
    let policy = policy_for(s.as_ref(), pct.then_some(3));
    (0..SEEDS)
        .map(|seed| run_seed(s.as_ref(), variant, seed, policy).unwrap())
        .collect()
}

fn metric(run: &SeedRun, name: &str) -> f64 {
    run.outcome.metrics.get(name).unwrap_or(-1.0)
}

fn message(run: &SeedRun) -> String {
    run.outcome
        .failure
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// Every run fails, each with all of `expected` in its message.
fn all_caught(runs: &[SeedRun], expected: &[&str]) {
    for run in runs {
        let msg = message(run);
        assert!(
            !run.outcome.passed() && expected.iter().all(|e| msg.contains(e)),
            "seed {}: expected {expected:?}, got {msg:?}",
            run.seed
        );
    }
}

fn all_pass(runs: &[SeedRun]) {
    for run in runs {
        assert!(
            run.outcome.passed(),
            "seed {}: {:?}",
            run.seed,
            run.outcome.failure
        );
    }
}

fn range(runs: &[SeedRun], name: &str) -> String {
    let v: Vec<f64> = runs.iter().map(|r| metric(r, name)).collect();
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{name} {min:.1}..{max:.1}")
}

#[test]
fn trace_saturation_pre_fix_lag_crosses_2_s_and_the_task_set_grows() {
    for pct in [false, true] {
        let pre = runs("trace-saturation", "pre-fix", pct);
        all_caught(&pre, &["crossed the 2 s watchdog threshold"]);
        // A seed whose faults fail most writes fast (a server that keeps
        // restarting) may keep the task set under its bound; most do not.
        let both = pre
            .iter()
            .filter(|r| message(r).contains("task set grew to"))
            .count();
        assert!(
            both * 2 > pre.len(),
            "the task set grew in only {both} runs"
        );
        let fixed = runs("trace-saturation", "fixed", pct);
        all_pass(&fixed);
        println!(
            "trace-saturation (pct {pct}), {SEEDS} seeds: pre-fix {}, {}, {} (over the bound in {both}); fixed {}, {}",
            range(&pre, "lag_max_ms"),
            range(&pre, "lag_crossed_2s_at_ms"),
            range(&pre, "task_set_peak"),
            range(&fixed, "lag_max_ms"),
            range(&fixed, "task_set_peak"),
        );
    }
}

#[test]
fn trace_saturation_forgotten_drop_is_caught_by_the_accounting() {
    all_caught(
        &runs("trace-saturation", "forgets-drop", false),
        &["accounting: written"],
    );
}

#[test]
fn socket_pileup_pre_fix_piles_up_threads_and_fixed_stays_near_rate_x_15_s() {
    for pct in [false, true] {
        let pre = runs("socket-pileup", "pre-fix", pct);
        all_caught(&pre, &["blocking threads alive at once"]);
        let fixed = runs("socket-pileup", "fixed", pct);
        all_pass(&fixed);
        println!(
            "socket-pileup (pct {pct}), {SEEDS} seeds: pre-fix {}; fixed {}",
            range(&pre, "threads_peak"),
            range(&fixed, "threads_peak"),
        );
    }
}

#[test]
fn socket_pileup_with_threads_max_reports_exhaustion_instead_of_hanging() {
    let pre = runs("socket-pileup", "pre-fix-capped-pool", false);
    all_caught(&pre, &["blocking-thread pool exhausted"]);
    for run in &pre {
        assert_eq!(run.outcome.threads_peak, 64, "seed {}", run.seed);
        assert!(
            run.outcome.virtual_ns < 120_000_000_000,
            "the run stopped at once"
        );
    }
    all_pass(&runs("socket-pileup", "fixed-capped-pool", false));
    println!(
        "socket-pileup capped pool: pre-fix {}",
        range(&pre, "pool_exhausted_at_ms")
    );
}

#[test]
fn socket_pileup_forgotten_drop_is_caught_by_the_accounting() {
    all_caught(
        &runs("socket-pileup", "forgets-drop", false),
        &["accounting: written"],
    );
}
