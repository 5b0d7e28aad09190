//! The in-memory ledger in the simulator: two upserts that lock the same
//! rows in opposite orders close a cycle in the wait-for graph, which the
//! ledger detects (one victim, rolled back; the other commits) instead of
//! hanging; the test-only ledger without detection hangs and the
//! simulator's own deadlock oracle catches it. Plus the commit point's
//! fencing and idempotency.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::clock::ManualClock;
use faultline::sched::ThreadScheduler;
use faultline::sim::{Failure, Outcome, Sim, SimConfig};
use faultline::spend::{
    Batch, CommitOutcome, Entity, Ledger, LedgerError, MemLedger, RowKey, Rows,
};
use faultline::sync::{block_on, Arc, DynArc, Mutex};

const SEEDS: u64 = 200;

fn rows(names: &[&str]) -> Vec<(RowKey, u128)> {
    names
        .iter()
        .map(|n| (RowKey::new(Entity::Team, *n), 1))
        .collect()
}

/// Two transactions upsert rows `a, b` and `b, a` (statement order) at
/// once; returns the run and what each commit returned.
fn crossing(seed: u64, detect: bool) -> (Outcome, Vec<Result<CommitOutcome, LedgerError>>) {
    let sim = Sim::new(SimConfig {
        seed,
        spurious_wake_ppm: 20_000,
        ..Default::default()
    });
    let h = sim.main_handle();
    let results = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&results);
    let outcome = sim.run(async move {
        let mut ledger = MemLedger::new(DynArc::new(h), DynArc::new(h), 5);
        if !detect {
            ledger = ledger.without_deadlock_detection();
        }
        let tasks: Vec<_> = [["a", "b"], ["b", "a"]]
            .into_iter()
            .enumerate()
            .map(|(i, order)| {
                let (ledger, out) = (ledger.clone(), Arc::clone(&out));
                h.spawn_on("upsert", async move {
                    let mut batch = Batch::plain(format!("p{i}"), &Rows::new());
                    batch.rows = rows(&order);
                    let r = ledger.commit(batch).await;
                    out.with(|o| o.push(r));
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        assert_eq!(ledger.locks_held(), 0, "row locks leaked");
    });
    let r = results.with(std::mem::take);
    (outcome, r)
}

#[test]
fn crossing_upserts_are_detected_as_a_deadlock_not_hung() {
    let mut detected = 0;
    for seed in 0..SEEDS {
        let (out, results) = crossing(seed, true);
        assert!(out.passed(), "seed {seed}: {}", out.failure.unwrap());
        let victims = results
            .iter()
            .filter(|r| matches!(r, Err(LedgerError::Deadlock { .. })))
            .count();
        assert!(victims <= 1, "seed {seed}: both were victims: {results:?}");
        assert!(
            results.iter().any(|r| r == &Ok(CommitOutcome::Applied)),
            "seed {seed}: nobody committed: {results:?}"
        );
        detected += victims;
    }
    println!(
        "wait-for graph: {detected} of {SEEDS} seeds closed a cycle, each detected and rolled back"
    );
    assert!(detected > 0, "the crossing never deadlocked");
}

#[test]
fn without_detection_the_same_upserts_hang_and_the_simulator_says_so() {
    let caught = (0..SEEDS).find_map(|seed| match crossing(seed, false).0.failure {
        Some(Failure::Deadlock { blocked }) => Some((seed, blocked)),
        _ => None,
    });
    let (seed, blocked) = caught.expect("the undetected deadlock never hung");
    println!("caught at seed {seed}: every task blocked: {blocked:?}");
}

fn ledger() -> MemLedger {
    MemLedger::new(
        DynArc::new(ManualClock::new(0)),
        DynArc::new(ThreadScheduler),
        0,
    )
}

fn batch(id: u64, fence: u64) -> Batch {
    let mut b = Batch::plain("p", &Rows::from([(RowKey::new(Entity::User, "u"), 5)]));
    b.batch_id = Some(id);
    b.fence = Some(fence);
    b
}

#[test]
fn an_older_token_is_fenced_and_a_replayed_batch_is_skipped() {
    let l = ledger();
    assert_eq!(block_on(l.commit(batch(1, 2))), Ok(CommitOutcome::Applied));
    assert_eq!(
        block_on(l.commit(batch(7, 1))),
        Err(LedgerError::Fenced { token: 1, fence: 2 })
    );
    assert_eq!(
        block_on(l.commit(batch(1, 3))),
        Ok(CommitOutcome::Duplicate)
    );
    assert_eq!(block_on(l.commit(batch(2, 3))), Ok(CommitOutcome::Applied));
    let total = l.totals_now()[&RowKey::new(Entity::User, "u")];
    assert_eq!(total, 10, "two distinct batches of 5");
}
