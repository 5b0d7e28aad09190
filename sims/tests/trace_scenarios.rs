//! The trace writer's scenarios under the random policy and PCT: every
//! buggy variant is caught by the oracle meant for it (its tag), every
//! fixed one holds; the incident-fix findings are pinned to a seed and a
//! load; the load rows' edges; the measured figures are printed beside the
//! incident's.
//!
//! trace-saturation runs a 1:32 scale model (a test checks it against the
//! full-scale model); socket-pileup runs are small. Both sweep 30 seeds.

use faultline::sim::{LoopCost, Outcome};
use faultline_sims::cliff::{fails_from, holds_to, load_cell, CliffSpec, Edge};
use faultline_sims::find;
use faultline_sims::runner::{config_for, policy_for, run_seed, PolicySpec, SeedRun};
use faultline_sims::scenarios::trace_saturation::{
    run_at_scale, EXECUTOR_WORKERS, RATE_PER_S, SCALE,
};

const SOCKET_SEEDS: u64 = 30;
const SATURATION_SEEDS: u64 = 30;

fn runs(scenario: &str, variant: &str, pct: bool, seeds: u64) -> Vec<SeedRun> {
    let s = find(scenario).unwrap();
    let policy = policy_for(s.as_ref(), pct.then_some(3));
    (0..seeds)
        .map(|seed| run_seed(s.as_ref(), variant, seed, policy).unwrap())
        .collect()
}

/// One run of `variant` at `factor` times the scenario's load.
fn scaled(scenario: &str, variant: &str, seed: u64, factor: f64) -> Outcome {
    let s = find(scenario).unwrap();
    let cfg = config_for(s.as_ref(), variant, seed, PolicySpec::Random);
    s.run_scaled(variant, cfg, factor).unwrap()
}

fn metric(out: &Outcome, name: &str) -> f64 {
    out.metrics.get(name).unwrap_or(-1.0)
}

fn oracle(out: &Outcome) -> String {
    out.failure
        .as_ref()
        .map(faultline::sim::Failure::oracle)
        .unwrap_or_default()
}

/// Every run fails, and `tag` is among the oracles that fired.
fn all_caught_by(runs: &[SeedRun], tag: &str) {
    for run in runs {
        let fired = run.outcome.failure.as_ref().is_some_and(|f| f.fired(tag));
        assert!(
            fired,
            "seed {}: expected {tag}, got {:?}",
            run.seed, run.outcome.failure
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
    let v: Vec<f64> = runs.iter().map(|r| metric(&r.outcome, name)).collect();
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{name} {min:.1}..{max:.1}")
}

#[test]
fn trace_saturation_pre_fix_crosses_the_watchdog_from_collector_pauses_alone() {
    for pct in [false, true] {
        let pre = runs("trace-saturation", "pre-fix", pct, SATURATION_SEEDS);
        all_caught_by(&pre, "invariant:loop-lag");
        for run in &pre {
            let o = &run.outcome;
            // The insert runs in the pool, one at a time behind the gate:
            // nothing blocks the loop but the collector's pauses.
            assert_eq!(o.threads_peak, 1, "seed {}", run.seed);
            assert!(metric(o, "loop_gc_pause_ms_max") > 2_000.0);
        }
        println!(
            "trace-saturation pre-fix (pct {pct}): {}, {}, {}, {}, {} (the incident: lag > 2 s every ~60 s)",
            range(&pre, "lag_max_ms"),
            range(&pre, "lag_crossed_2s_at_ms"),
            range(&pre, "task_set_at_lag_over_2s"),
            range(&pre, "loop_gc_last_interval_ms"),
            range(&pre, "task_set_peak"),
        );
    }
    // The twin: the same run without the collector's model keeps the lag
    // far under 2 s: the overhead alone fires the watchdog.
    let s = find("trace-saturation").unwrap();
    let mut cfg = config_for(s.as_ref(), "pre-fix", 0, PolicySpec::Random);
    cfg.loop_cost = LoopCost::default();
    let off = s.run("pre-fix", cfg).unwrap();
    assert!(
        !off.failure
            .as_ref()
            .is_some_and(|f| f.fired("invariant:loop-lag")),
        "without the collector's pauses the pre-fix must not cross 2 s: {:?}",
        off.failure
    );
    println!(
        "pre-fix without the loop-cost model: lag_max_ms {:.1}, task_set_peak {}",
        metric(&off, "lag_max_ms"),
        metric(&off, "task_set_peak")
    );
}

#[test]
fn trace_saturation_incident_fix_crosses_the_watchdog_while_the_store_stalls() {
    // Pinned: seed 0 at the scenario's own load (400 traces/s, a 240 s
    // stall) crosses; at half that load the pile stays under the crossing.
    let at_load = scaled("trace-saturation", "incident-fix", 0, 1.0);
    assert!(
        at_load
            .failure
            .as_ref()
            .is_some_and(|f| f.fired("invariant:loop-lag")),
        "{:?}",
        at_load.failure
    );
    assert_eq!(
        at_load.threads_peak as u64,
        EXECUTOR_WORKERS as u64 / SCALE,
        "the executor's workers are all busy"
    );
    let half = scaled("trace-saturation", "incident-fix", 0, 0.5);
    assert!(half.passed(), "{:?}", half.failure);
    // The fixed writer, same seed, the same stall and twice the load,
    // holds: its task cap bounds the pile.
    let fixed = scaled("trace-saturation", "fixed", 0, 2.0);
    assert!(fixed.passed(), "{:?}", fixed.failure);
    assert!(metric(&fixed, "task_set_peak") <= 10_000.0);
    println!(
        "incident-fix at 400 traces/s: lag_max_ms {:.0}, crossed at {:.0} ms with {} tasks; at 200/s: lag_max_ms {:.0}; fixed at 800/s: lag_max_ms {:.0}, task_set_peak {}",
        metric(&at_load, "lag_max_ms"),
        metric(&at_load, "lag_crossed_2s_at_ms"),
        metric(&at_load, "task_set_at_lag_over_2s"),
        metric(&half, "lag_max_ms"),
        metric(&fixed, "lag_max_ms"),
        metric(&fixed, "task_set_peak"),
    );
}

#[test]
fn trace_saturation_fixed_holds_and_a_forgotten_drop_is_caught() {
    for pct in [false, true] {
        let fixed = runs("trace-saturation", "fixed", pct, SATURATION_SEEDS);
        all_pass(&fixed);
        println!(
            "trace-saturation fixed (pct {pct}): {}, {}",
            range(&fixed, "lag_max_ms"),
            range(&fixed, "task_set_peak")
        );
    }
    // Pinned: seed 0 drops traces after retries (while the store
    // restarts) and the flaw forgets to count them.
    let flawed = runs("trace-saturation", "forgets-drop", false, 1);
    all_caught_by(&flawed, "invariant:accounting");
}

/// One run of `variant`, seed 0, at the scenario's load, as a 1:`scale`
/// model.
fn at_scale(variant: &str, scale: u64) -> Outcome {
    let s = find("trace-saturation").unwrap();
    let cfg = config_for(s.as_ref(), variant, 0, PolicySpec::Random);
    run_at_scale(variant, cfg, RATE_PER_S, scale)
}

#[test]
fn trace_saturation_scale_model_agrees_with_the_full_scale_model() {
    for variant in ["pre-fix", "incident-fix", "fixed"] {
        let (full, model) = (at_scale(variant, 1), at_scale(variant, SCALE));
        assert_eq!(
            oracle(&full),
            oracle(&model),
            "{variant}: full {:?}, scale model {:?}",
            full.failure,
            model.failure
        );
        let near = |name: &str, tolerance: f64| {
            let (a, b) = (metric(&full, name), metric(&model, name));
            assert!(
                (a - b).abs() <= tolerance * a.abs().max(1.0),
                "{variant} {name}: full {a}, scale model {b}"
            );
            format!("{name} {a:.0} / {b:.0}")
        };
        let figures = if full.passed() {
            vec![near("task_set_peak", 0.05)]
        } else {
            vec![
                near("lag_crossed_2s_at_ms", 0.05),
                near("task_set_at_lag_over_2s", 0.05),
            ]
        };
        println!(
            "{variant}: full / 1:{SCALE}: {} ({} / {} polls)",
            figures.join(", "),
            full.steps,
            model.steps
        );
    }
}

#[test]
fn trace_saturation_load_rows_fail_below_their_load_and_fixed_holds_to_the_top() {
    let s = find("trace-saturation").unwrap();
    let spec = CliffSpec {
        seeds: 1,
        steps: 4,
        policy: PolicySpec::Random,
    };
    let holds = holds_to(s.as_ref(), "fixed", &spec).unwrap();
    assert!(matches!(holds.edge, Edge::AboveMax(_)), "{holds}");
    for variant in ["pre-fix", "incident-fix"] {
        let bug = s.bug(variant).unwrap();
        let fails = fails_from(s.as_ref(), variant, Some(&bug), &spec).unwrap();
        match fails.edge {
            Edge::At(x) => assert!(x <= 1.0 && x > 0.3, "{variant}: {fails}"),
            _ => panic!("{variant}: no edge: {fails}"),
        }
        println!("trace-saturation {variant}: {}", load_cell(&fails, &holds));
    }
}

#[test]
fn socket_pileup_pre_fix_piles_up_threads_and_the_bound_comes_from_the_incident() {
    for pct in [false, true] {
        let pre = runs("socket-pileup", "pre-fix", pct, SOCKET_SEEDS);
        all_caught_by(&pre, "invariant:thread-pileup");
        let fixed = runs("socket-pileup", "fixed", pct, SOCKET_SEEDS);
        all_pass(&fixed);
        for run in pre.iter().chain(&fixed) {
            // 2 traces/s x 2 x the incident's 3 x 5 s, plus one: no
            // variant's field enters it.
            assert_eq!(metric(&run.outcome, "threads_bound"), 61.0);
        }
        println!(
            "socket-pileup (pct {pct}), {SOCKET_SEEDS} seeds: pre-fix {}; fixed {}, {}",
            range(&pre, "threads_peak"),
            range(&fixed, "threads_peak"),
            range(&fixed, "send_thread_ms_max"),
        );
    }
}

#[test]
fn socket_pileup_incident_fix_keeps_threads_in_bound_but_loses_traces_silently() {
    for pct in [false, true] {
        let inc = runs("socket-pileup", "incident-fix", pct, SOCKET_SEEDS);
        all_caught_by(&inc, "invariant:accounting");
        for run in &inc {
            let o = &run.outcome;
            assert!(
                !oracle(o).contains("thread-pileup"),
                "seed {}: the 5 s timeout keeps threads in the incident's bound: {:?}",
                run.seed,
                o.failure
            );
            let msg = o
                .failure
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            assert!(
                msg.contains("never reached the peer"),
                "seed {}: {msg}",
                run.seed
            );
        }
        println!(
            "socket-pileup incident-fix (pct {pct}): {}, {} (the incident: 15 s)",
            range(&inc, "threads_peak"),
            range(&inc, "send_thread_ms_max"),
        );
    }
}

#[test]
fn socket_pileup_with_threads_max_reports_exhaustion_instead_of_hanging() {
    let pre = runs("socket-pileup", "pre-fix-capped-pool", false, SOCKET_SEEDS);
    all_caught_by(&pre, "invariant:pool-exhausted");
    for run in &pre {
        assert_eq!(run.outcome.threads_peak, 64, "seed {}", run.seed);
        assert!(
            run.outcome.virtual_ns < 120_000_000_000,
            "the run stopped at once"
        );
    }
    all_pass(&runs(
        "socket-pileup",
        "fixed-capped-pool",
        false,
        SOCKET_SEEDS,
    ));
    println!(
        "socket-pileup capped pool: pre-fix {}",
        range(&pre, "pool_exhausted_at_ms")
    );
}

#[test]
fn socket_pileup_forgotten_drop_is_caught_by_the_accounting() {
    all_caught_by(
        &runs("socket-pileup", "forgets-drop", false, SOCKET_SEEDS),
        "invariant:accounting",
    );
}

#[test]
fn socket_pileup_load_rows() {
    let s = find("socket-pileup").unwrap();
    let spec = CliffSpec::default();
    let holds = holds_to(s.as_ref(), "fixed", &spec).unwrap();
    assert!(matches!(holds.edge, Edge::AboveMax(_)), "{holds}");
    for variant in ["pre-fix", "incident-fix"] {
        let bug = s.bug(variant).unwrap();
        let fails = fails_from(s.as_ref(), variant, Some(&bug), &spec).unwrap();
        assert!(
            matches!(fails.edge, Edge::BelowMin(_) | Edge::At(_)),
            "{variant}: {fails}"
        );
        println!("socket-pileup {variant}: {}", load_cell(&fails, &holds));
    }
}
