//! Property tests of the spend arithmetic: aggregation is exact for random
//! increments (zero, small, near `u64::MAX`), however they are spread over
//! instances and however pushes succeed or fail; sums are `u128` with
//! `checked_add` (wide and checked), so they never wrap: an overflow is
//! refused all or nothing; and the in-memory ledger applies each batch id
//! at most once. Each property also runs against a deliberately flawed,
//! test-only twin (`u64` wrapping sums, an unchecked add, no idempotency)
//! that proptest must catch.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::clock::ManualClock;
use faultline::sched::ThreadScheduler;
use faultline::spend::{
    add_rows, aggregate, Batch, Entity, Increment, Ledger, MemLedger, RowKey, Rows, SpendBuffer,
};
use faultline::sync::{block_on, DynArc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

const INSTANCES: usize = 4;

fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        1..1_000u64,
        (u64::MAX - 1_000)..=u64::MAX,
        any::<u64>(),
    ]
}

fn increment() -> impl Strategy<Value = Increment> {
    (0..6u8, amount()).prop_map(|(key, amount)| Increment {
        api_key: format!("sk-{key}"),
        user: format!("u{}", key % 3),
        team: format!("t{}", key % 2),
        amount,
    })
}

/// The exact sums, computed row by row without the library.
fn reference(incs: &[Increment]) -> Rows {
    let mut rows = Rows::new();
    for inc in incs {
        for k in [
            RowKey::new(Entity::ApiKey, inc.api_key.clone()),
            RowKey::new(Entity::User, inc.user.clone()),
            RowKey::new(Entity::Team, inc.team.clone()),
        ] {
            // At most a few hundred increments of < 2^64: cannot overflow.
            *rows.entry(k).or_insert(0) += u128::from(inc.amount);
        }
    }
    rows
}

/// The flawed twin: sums in `u64`, wrapping (the classic bug).
fn wrapping_u64_aggregate(incs: &[Increment]) -> Rows {
    let mut rows: std::collections::BTreeMap<RowKey, u64> = Default::default();
    for inc in incs {
        for k in inc.row_keys() {
            let v = rows.entry(k).or_insert(0);
            *v = v.wrapping_add(inc.amount);
        }
    }
    rows.into_iter().map(|(k, v)| (k, u128::from(v))).collect()
}

type Aggregator = fn(&[Increment]) -> Rows;

fn library_aggregate(incs: &[Increment]) -> Rows {
    aggregate(incs).expect("a few hundred u64 increments cannot overflow u128")
}

fn aggregate_case(agg: Aggregator, incs: &[Increment]) -> Result<(), TestCaseError> {
    prop_assert_eq!(agg(incs), reference(incs));
    Ok(())
}

/// Spread over instances, each pushing (some pushes applied, some failed)
/// at random points: applied pushes + what is still held == the raw sums.
/// `drop_failed` is the flawed twin: a failed push forgets its rows (take
/// out, push, never put back).
fn buffers_case(
    ops: &[(usize, Option<Increment>, bool)],
    drop_failed: bool,
) -> Result<(), TestCaseError> {
    let mut bufs: Vec<SpendBuffer> = (0..INSTANCES).map(|_| SpendBuffer::new(1_000)).collect();
    let (mut pushed, mut recorded) = (Rows::new(), Vec::new());
    for (inst, op, applied) in ops {
        let buf = &mut bufs[*inst];
        match op {
            Some(inc) => {
                buf.add(inc.clone()).expect("room for every row");
                recorded.push(inc.clone());
            }
            None => {
                if let Some(rows) = buf.begin_push() {
                    prop_assert!(buf.begin_push().is_none(), "two pushes at once");
                    if *applied {
                        add_rows(&mut pushed, &rows).expect("no overflow");
                    }
                    buf.end_push(&rows, *applied || drop_failed);
                }
            }
        }
    }
    for buf in &bufs {
        add_rows(&mut pushed, buf.rows()).expect("no overflow");
    }
    // Zero rows carry nothing (a buffer drops them once pushed).
    let mut want = reference(&recorded);
    want.retain(|_, v| *v > 0);
    pushed.retain(|_, v| *v > 0);
    prop_assert_eq!(pushed, want);
    Ok(())
}

fn huge() -> impl Strategy<Value = u128> {
    prop_oneof![
        Just(0u128),
        Just(u128::MAX),
        (u128::MAX - 1_000)..=u128::MAX,
        any::<u128>()
    ]
}

type Adder = fn(&mut Rows, &Rows) -> Result<(), ()>;

/// The flawed twin: adds with wrapping (unchecked) arithmetic.
fn wrapping_add_rows(into: &mut Rows, more: &Rows) -> Result<(), ()> {
    for (k, v) in more {
        let t = into.entry(k.clone()).or_insert(0);
        *t = t.wrapping_add(*v);
    }
    Ok(())
}

fn library_add_rows(into: &mut Rows, more: &Rows) -> Result<(), ()> {
    add_rows(into, more).map_err(drop)
}

/// Either every sum is exact, or the add is refused and nothing changed.
fn overflow_case(add: Adder, a: &[(u8, u128)], b: &[(u8, u128)]) -> Result<(), TestCaseError> {
    let rows = |v: &[(u8, u128)]| -> Rows {
        v.iter()
            .map(|(k, x)| (RowKey::new(Entity::Team, format!("t{k}")), *x))
            .collect()
    };
    let (before, more) = (rows(a), rows(b));
    let mut into = before.clone();
    let fits = more.iter().all(|(k, v)| {
        before
            .get(k)
            .copied()
            .unwrap_or(0)
            .checked_add(*v)
            .is_some()
    });
    match add(&mut into, &more) {
        Ok(()) => {
            prop_assert!(fits, "an overflowing add was accepted");
            for (k, v) in &more {
                prop_assert_eq!(into[k], before.get(k).copied().unwrap_or(0) + v);
            }
        }
        Err(()) => {
            prop_assert!(!fits, "an add that fits was refused");
            prop_assert_eq!(into, before, "a refused add changed the rows");
        }
    }
    Ok(())
}

/// Commits `batches` (batch ids repeat) to the in-memory ledger: each id's
/// rows count once. `idempotent: false` is the flawed twin (no batch id).
fn ledger_case(batches: &[(u64, u8, u64)], idempotent: bool) -> Result<(), TestCaseError> {
    let sched = DynArc::new(ThreadScheduler);
    let ledger = MemLedger::new(DynArc::new(ManualClock::new(0)), sched, 0);
    let mut want = Rows::new();
    let mut seen = std::collections::BTreeSet::new();
    for &(id, key, amount) in batches {
        let rows = Rows::from([(
            RowKey::new(Entity::User, format!("u{key}")),
            u128::from(amount),
        )]);
        if seen.insert(id) {
            add_rows(&mut want, &rows).expect("no overflow");
        }
        let mut batch = Batch::plain("p", &rows);
        batch.batch_id = idempotent.then_some(id);
        block_on(ledger.commit(batch)).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    prop_assert_eq!(ledger.totals_now(), want);
    Ok(())
}

fn batch_ops() -> impl Strategy<Value = Vec<(u64, u8, u64)>> {
    // Each batch id always carries the same rows (a replay is identical).
    proptest::collection::vec(0..6u64, 1..20).prop_map(|ids| {
        ids.into_iter()
            .map(|id| (id, (id % 3) as u8, id * 7 + 1))
            .collect()
    })
}

fn buffer_ops() -> impl Strategy<Value = Vec<(usize, Option<Increment>, bool)>> {
    let op = (
        0..INSTANCES,
        proptest::option::weighted(0.7, increment()),
        any::<bool>(),
    );
    proptest::collection::vec(op, 0..80)
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn aggregation_is_exact(incs in proptest::collection::vec(increment(), 0..200)) {
        aggregate_case(library_aggregate, &incs)?;
    }

    #[test]
    fn buffers_and_pushes_lose_and_double_nothing(ops in buffer_ops()) {
        buffers_case(&ops, false)?;
    }

    #[test]
    fn checked_sums_never_wrap(
        a in proptest::collection::vec((0..3u8, huge()), 0..4),
        b in proptest::collection::vec((0..3u8, huge()), 0..4),
    ) {
        overflow_case(library_add_rows, &a, &b)?;
    }

    #[test]
    fn the_ledger_applies_each_batch_id_once(batches in batch_ops()) {
        ledger_case(&batches, true)?;
    }
}

/// Runs `check` on generated values and returns the (shrunk) failure.
fn find<T: std::fmt::Debug>(
    strategy: impl Strategy<Value = T>,
    check: impl Fn(T) -> Result<(), TestCaseError>,
) -> Option<String> {
    match deterministic_runner(config(2_000)).run(&strategy, check) {
        Ok(()) => None,
        Err(TestError::Fail(why, value)) => Some(format!("{why}; minimal input: {value:?}")),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_wrapping_u64_aggregate_is_caught() {
    let found = find(proptest::collection::vec(increment(), 0..200), |incs| {
        aggregate_case(wrapping_u64_aggregate, &incs)
    });
    println!(
        "caught: {}",
        found.expect("the wrapping u64 sum was not caught")
    );
}

#[test]
fn a_buffer_that_forgets_failed_pushes_is_caught() {
    let found = find(buffer_ops(), |ops| buffers_case(&ops, true));
    println!("caught: {}", found.expect("the lost push was not caught"));
}

#[test]
fn an_unchecked_add_is_caught() {
    let pairs = || proptest::collection::vec((0..3u8, huge()), 0..4);
    let found = find((pairs(), pairs()), |(a, b): (Vec<_>, Vec<_>)| {
        overflow_case(wrapping_add_rows, &a, &b)
    });
    println!(
        "caught: {}",
        found.expect("the wrapping add was not caught")
    );
}

#[test]
fn a_ledger_without_batch_ids_is_caught() {
    let found = find(batch_ops(), |b| ledger_case(&b, false));
    println!(
        "caught: {}",
        found.expect("double application was not caught")
    );
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
