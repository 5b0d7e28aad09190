//! The `spend-flush` scenario's teeth: pre-fix deadlocks, the documented
//! design's faults are each found and named, the fix holds, and the
//! connection pool is exhausted under load when small and never when sized
//! to the load, with nothing lost either way.

mod support;

use faultline_sims::runner::{run_seed, PolicySpec};
use faultline_sims::scenarios::spend_flush::{SpendFlush, CONNECTIONS_SIZED};
use faultline_sims::scenarios::spend_oracle::{
    CRASH_AFTER_COMMIT, CRASH_AFTER_READ, DELETE_AFTER_EXPIRY, DOUBLE_FLUSH, UNEXPLAINED,
};
use std::collections::BTreeMap;
use support::{faultline, scratch};

/// Seeds each check sweeps at most.
const SEEDS: u64 = 60;

/// The failure message of each failing seed in `0..SEEDS`.
fn failures(s: &SpendFlush, variant: &str) -> Vec<(u64, String)> {
    (0..SEEDS)
        .filter_map(|seed| {
            let run = run_seed(s, variant, seed, PolicySpec::Random).unwrap();
            run.outcome.failure.map(|f| (seed, f.to_string()))
        })
        .collect()
}

#[test]
fn pre_fix_deadlocks_at_once() {
    let found = failures(&SpendFlush::default(), "pre-fix");
    let (seed, msg) = found.first().expect("pre-fix never deadlocked");
    assert!(msg.contains("wait-for graph closed a cycle"), "{msg}");
    println!(
        "pre-fix: {} of {SEEDS} seeds deadlock, first at seed {seed}: {msg}",
        found.len()
    );
}

#[test]
fn documented_designs_break_exactly_once_and_the_oracle_names_each_fault() {
    let s = SpendFlush::default();
    let mut first: BTreeMap<&str, (u64, &str)> = BTreeMap::new();
    for variant in ["documented", "documented-pop"] {
        let found = failures(&s, variant);
        println!("{variant}: {} of {SEEDS} seeds fail", found.len());
        for (seed, msg) in &found {
            assert!(msg.contains("exactly-once violated"), "{msg}");
            assert!(!msg.contains(UNEXPLAINED), "seed {seed}: {msg}");
            for fault in [
                DOUBLE_FLUSH,
                CRASH_AFTER_COMMIT,
                CRASH_AFTER_READ,
                DELETE_AFTER_EXPIRY,
            ] {
                if msg.contains(fault) {
                    first.entry(fault).or_insert((*seed, variant));
                }
            }
        }
    }
    for (fault, (seed, variant)) in &first {
        println!("{fault}: first found by {variant} at seed {seed}");
    }
    for fault in [DOUBLE_FLUSH, CRASH_AFTER_COMMIT, CRASH_AFTER_READ] {
        assert!(first.contains_key(fault), "never found: {fault}");
    }
}

#[test]
fn fixed_holds_with_every_fault() {
    let found = failures(&SpendFlush::default(), "fixed");
    assert!(found.is_empty(), "fixed failed: {found:?}");
}

/// Pool exhaustion errors over `0..SEEDS` of the fixed variant; every run
/// must pass (an exhausted pool loses nothing).
fn exhaustion(connections_max: usize) -> u64 {
    let s = SpendFlush {
        connections_max,
        ..SpendFlush::default()
    };
    let mut total = 0.0;
    for seed in 0..SEEDS {
        let run = run_seed(&s, "fixed", seed, PolicySpec::Random).unwrap();
        let out = &run.outcome;
        assert!(
            out.passed(),
            "pool {connections_max}, seed {seed}: {:?}",
            out.failure
        );
        total += out
            .metrics
            .get("queue_connection_pool_exhausted_total")
            .expect("the metric is recorded");
    }
    total as u64
}

#[test]
fn a_small_pool_is_exhausted_under_load_a_sized_one_never_and_nothing_is_lost() {
    let small = exhaustion(1);
    let sized = exhaustion(CONNECTIONS_SIZED);
    println!(
        "pool exhaustion errors over {SEEDS} seeds: {small} with 1 connection, {sized} with {CONNECTIONS_SIZED}"
    );
    assert!(small > 0, "a one-connection pool was never exhausted");
    assert_eq!(sized, 0, "a pool sized to the load was exhausted");
}

#[test]
fn every_variant_is_registered_and_only_fixed_holds() {
    let s = faultline_sims::find("spend_flush").unwrap();
    assert_eq!(
        s.variants(),
        ["pre-fix", "documented", "documented-pop", "fixed"]
    );
    let holding: Vec<&str> = s
        .variants()
        .iter()
        .copied()
        .filter(|v| s.holds(v))
        .collect();
    assert_eq!(holding, ["fixed"]);
}

#[test]
fn run_seed_prints_the_spend_metrics() {
    let dir = scratch();
    let ran = faultline(dir.path(), &["run", "spend-flush", "--seed", "5"]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    for name in [
        "pod_lock_holder",
        "in_memory_spend_update_queue_size_max",
        "redis_spend_update_queue_size_max",
        "queue_connection_pool_exhausted_total",
        "spend_flushes_total",
        "spend_recovered_batches_total",
    ] {
        assert!(
            ran.stdout.contains(&format!("  {name} = ")),
            "{name}: {}",
            ran.stdout
        );
    }
}
