//! Property test: random operation sequences (append, retention at a later
//! time, query, crash/restart, and an append racing a retention under a
//! generated interleaving) against a reference model of what must survive.
//! The fixed store passes; on the pre-fix store proptest finds (and shrinks)
//! a losing sequence.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::clock::{Clock, ManualClock};
use faultline::sched::{JoinError, Scheduler, TaskHandle};
use faultline::store::{
    missing_events, Event, MemBackend, SegmentBackend, StoreConfig, TieredStore, Variant,
};
use faultline::sync::{block_on, Arc, DynArc};
use faultline::BoxFuture;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::future::Future;
use std::task::{Context, Poll, Waker};

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;
const START_MS: u64 = 1_767_225_600_000;

/// A scheduler whose `yield_now` really yields (returns `Pending` once), so
/// an interleaving can be chosen by polling futures in a given order.
struct PollScheduler;

impl Scheduler for PollScheduler {
    fn spawn(&self, _: &'static str, _: BoxFuture<()>) -> TaskHandle {
        unreachable!("the store never spawns")
    }
    fn spawn_blocking(
        &self,
        _: &'static str,
        work: Box<dyn FnOnce() + Send>,
    ) -> BoxFuture<Result<(), JoinError>> {
        work();
        Box::pin(async { Ok(()) })
    }
    fn yield_now(&self) -> BoxFuture<()> {
        let mut yielded = false;
        Box::pin(std::future::poll_fn(move |cx| {
            if yielded {
                Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }))
    }
}

#[derive(Clone, Debug)]
enum Op {
    Append {
        days_back: u64,
        n: u64,
    },
    Retention {
        advance_hours: u64,
    },
    Query,
    Restart,
    Race {
        days_back: u64,
        advance_hours: u64,
        schedule: Vec<bool>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..10u64, 1..3u64).prop_map(|(days_back, n)| Op::Append { days_back, n }),
        (0..200u64).prop_map(|advance_hours| Op::Retention { advance_hours }),
        Just(Op::Query),
        Just(Op::Restart),
        (
            0..2u64,
            0..48u64,
            proptest::collection::vec(any::<bool>(), 0..8)
        )
            .prop_map(|(days_back, advance_hours, schedule)| Op::Race {
                days_back,
                advance_hours,
                schedule
            }),
    ]
}

struct Model {
    now_ms: u64,
    cutoff_ms: u64,
    acked: Vec<Event>,
    next_id: u64,
}

impl Model {
    fn events(&mut self, days_back: u64, n: u64) -> Vec<Event> {
        (0..n)
            .map(|_| {
                self.next_id += 1;
                Event {
                    id: self.next_id,
                    ts_ms: self.now_ms - days_back * DAY_MS,
                    key: "k".into(),
                    units: 1,
                }
            })
            .collect()
    }
}

/// Polls `a` and `b` in the order `schedule` gives (true = `a`), then both
/// to completion.
fn interleave<A: Future, B: Future>(a: A, b: B, schedule: &[bool]) -> (A::Output, B::Output) {
    let (mut a, mut b) = (Box::pin(a), Box::pin(b));
    let (mut ra, mut rb) = (None, None);
    let mut cx = Context::from_waker(Waker::noop());
    let order = schedule
        .iter()
        .copied()
        .chain(std::iter::repeat([true, false]).flatten());
    // Past the schedule, real blocking work (DuckDB on threads) may still
    // be running: give it the CPU between polls. Bounded, not timed.
    for (i, pick_a) in order.take(50_000_000).enumerate() {
        if i > schedule.len() {
            std::thread::yield_now();
        }
        if pick_a && ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(&mut cx) {
                ra = Some(v);
            }
        } else if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(&mut cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            break;
        }
    }
    (
        ra.expect("append never finished"),
        rb.expect("retention never finished"),
    )
}

fn check<B: SegmentBackend>(store: &TieredStore<B>, m: &Model) -> Result<(), TestCaseError> {
    let found =
        block_on(store.query(0, u64::MAX)).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let lost = missing_events(&m.acked, &found, m.cutoff_ms);
    prop_assert!(lost.is_empty(), "acknowledged events lost: {:?}", lost);
    let mut ids: Vec<u64> = found.iter().map(|e| e.id).collect();
    ids.sort_unstable();
    ids.dedup();
    prop_assert_eq!(ids.len(), found.len(), "duplicated events");
    prop_assert!(
        found.iter().all(|e| m.acked.contains(e)),
        "an event appeared that was never acknowledged"
    );
    prop_assert!(
        store.check_writer_is_active().is_ok(),
        "writer diverged from the active segment"
    );
    Ok(())
}

fn run_ops<B: SegmentBackend>(
    backend: Arc<B>,
    variant: Variant,
    clock: &ManualClock,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let cfg = StoreConfig::new(variant);
    let mut store = block_on(TieredStore::open(Arc::clone(&backend), cfg)).unwrap();
    let mut m = Model {
        now_ms: START_MS,
        cutoff_ms: 0,
        acked: Vec::new(),
        next_id: 0,
    };
    for op in ops {
        match op {
            Op::Append { days_back, n } => {
                let evs = m.events(*days_back, *n);
                if block_on(store.append(evs.clone())).is_ok() {
                    m.acked.extend(evs);
                }
            }
            Op::Retention { advance_hours } => {
                m.now_ms += advance_hours * HOUR_MS;
                clock.set(m.now_ms * 1_000_000);
                block_on(store.retention(m.now_ms)).unwrap();
                m.cutoff_ms = m.cutoff_ms.max(m.now_ms - cfg.retention_ms);
            }
            Op::Query => {}
            Op::Restart => store = block_on(TieredStore::open(Arc::clone(&backend), cfg)).unwrap(),
            Op::Race {
                days_back,
                advance_hours,
                schedule,
            } => {
                let evs = m.events(*days_back, 1);
                let retention_at = m.now_ms + advance_hours * HOUR_MS;
                let (appended, retained) = interleave(
                    store.append(evs.clone()),
                    store.retention(retention_at),
                    schedule,
                );
                retained.unwrap();
                m.now_ms = retention_at;
                m.cutoff_ms = m.cutoff_ms.max(m.now_ms - cfg.retention_ms);
                if appended.is_ok() {
                    m.acked.extend(evs);
                }
            }
        }
        check(&store, &m)?;
    }
    Ok(())
}

fn mem_case(variant: Variant, ops: &[Op]) -> Result<(), TestCaseError> {
    let clock = ManualClock::new(START_MS * 1_000_000);
    let dyn_clock: DynArc<dyn Clock> = DynArc::new(clock.clone());
    let backend = Arc::new(MemBackend::new(dyn_clock, DynArc::new(PollScheduler)));
    run_ops(backend, variant, &clock, ops)
}

proptest! {
    #![proptest_config(Config { cases: 512, failure_persistence: None, ..Config::default() })]
    #[test]
    fn fixed_store_matches_the_model(ops in proptest::collection::vec(op(), 1..24)) {
        mem_case(Variant::Fixed, &ops)?;
    }
}

fn find_failure(variant: Variant) -> Option<Vec<Op>> {
    let mut runner = TestRunner::new(Config {
        cases: 2_000,
        failure_persistence: None,
        ..Config::default()
    });
    match runner.run(&proptest::collection::vec(op(), 1..24), |ops| {
        mem_case(variant, &ops)
    }) {
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
        ops.iter().any(|o| matches!(o, Op::Race { .. })),
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
    use faultline::sched::ThreadScheduler;
    use faultline::store::duck::DuckBackend;

    proptest! {
        #![proptest_config(Config { cases: 16, failure_persistence: None, ..Config::default() })]
        #[test]
        fn fixed_store_on_duckdb_matches_the_model(ops in proptest::collection::vec(op(), 1..12)) {
            let dir = std::env::temp_dir().join(format!("faultline-prop-{}-{}", std::process::id(), rand_id()));
            let clock = ManualClock::new(START_MS * 1_000_000);
            let backend = Arc::new(DuckBackend::new(&dir, DynArc::new(ThreadScheduler)).unwrap());
            let r = run_ops(backend, Variant::Fixed, &clock, &ops);
            let _ = std::fs::remove_dir_all(&dir);
            r?;
        }
    }

    fn rand_id() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }
}
