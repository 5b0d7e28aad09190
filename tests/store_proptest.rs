//! Property test: random operation sequences (append, retention at a later
//! time, query, crash/restart, and an append racing a retention under a
//! generated interleaving) against a reference model of what must survive.
//! The fixed store passes; on the pre-fix store proptest finds (and shrinks)
//! a losing sequence.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::store::model::{run_ops_in_memory, StoreOp, OPS_MAX};
use faultline::store::Variant;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

fn op() -> impl Strategy<Value = StoreOp> {
    prop_oneof![
        (0..10u64, 0..3u64).prop_map(|(days_back, n)| StoreOp::Append { days_back, n }),
        (0..200u64).prop_map(|advance_hours| StoreOp::Retention { advance_hours }),
        Just(StoreOp::Query),
        Just(StoreOp::Restart),
        (
            0..2u64,
            0..48u64,
            proptest::collection::vec(any::<bool>(), 0..8)
        )
            .prop_map(|(days_back, advance_hours, schedule)| StoreOp::Race {
                days_back,
                advance_hours,
                schedule
            }),
    ]
}

fn ops() -> impl Strategy<Value = Vec<StoreOp>> {
    proptest::collection::vec(op(), 1..24.min(OPS_MAX))
}

fn mem_case(variant: Variant, ops: &[StoreOp]) -> Result<(), TestCaseError> {
    run_ops_in_memory(variant, ops).map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(Config { cases: 512, failure_persistence: None, ..Config::default() })]
    #[test]
    fn fixed_store_matches_the_model(ops in ops()) {
        mem_case(Variant::Fixed, &ops)?;
    }
}

fn find_failure(variant: Variant) -> Option<Vec<StoreOp>> {
    let mut runner = deterministic_runner(Config {
        cases: 2_000,
        failure_persistence: None,
        ..Config::default()
    });
    match runner.run(&ops(), |ops| mem_case(variant, &ops)) {
        Ok(()) => None,
        Err(proptest::test_runner::TestError::Fail(_, ops)) => Some(ops),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn proptest_finds_and_shrinks_the_pre_fix_loss() {
    let ops = find_failure(Variant::PreFix).expect("proptest did not find the pre-fix loss");
    println!("pre-fix minimal failing sequence: {ops:?}");
    assert!(
        ops.iter().any(|o| matches!(o, StoreOp::Race { .. })),
        "the race op must be in it"
    );
}

#[test]
fn proptest_finds_the_generation_check_loss() {
    let ops = find_failure(Variant::GenerationCheck)
        .expect("proptest did not find the generation-check loss");
    println!("generation-check minimal failing sequence: {ops:?}");
}

#[cfg(feature = "duckdb")]
mod duckdb_backend {
    use super::*;
    use faultline::clock::ManualClock;
    use faultline::sched::ThreadScheduler;
    use faultline::store::duck::DuckBackend;
    use faultline::store::model::{run_ops, START_MS};
    use faultline::sync::{Arc, DynArc};

    proptest! {
        #![proptest_config(Config { cases: 16, failure_persistence: None, ..Config::default() })]
        #[test]
        fn fixed_store_on_duckdb_matches_the_model(ops in proptest::collection::vec(op(), 1..12)) {
            let dir = std::env::temp_dir().join(format!("faultline-prop-{}-{}", std::process::id(), rand_id()));
            let clock = ManualClock::new(START_MS * 1_000_000);
            let backend = Arc::new(DuckBackend::new(&dir, DynArc::new(ThreadScheduler)).unwrap());
            let r = run_ops(backend, Variant::Fixed, &clock, &ops);
            let _ = std::fs::remove_dir_all(&dir);
            r.map_err(TestCaseError::fail)?;
        }
    }

    fn rand_id() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }
}

/// A runner on proptest's fixed-seed ChaCha stream: a twin that must catch a
/// planted bug does so on every run, not on most.
fn deterministic_runner(config: Config) -> TestRunner {
    TestRunner::new_with_rng(
        config,
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    )
}
