//! loom model checks of the store's append-vs-retention race (in-memory
//! backend): the fixed store is proven over the whole bounded space; the
//! pre-fix and generation-check stores are caught.
//!
//! The preemption bound comes from `LOOM_MAX_PREEMPTIONS` (default 3).
#![cfg(faultline_loom)]

mod support;

use faultline::clock::{Clock, ManualClock};
use faultline::sched::ThreadScheduler;
use faultline::store::{missing_events, Event, MemBackend, StoreConfig, TieredStore, Variant};
use faultline::sync::DynArc;
use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;
use support::{expect_caught, Iterations};

const DAY_MS: u64 = 86_400_000;
const NOW_MS: u64 = 1_767_225_600_000;

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    if std::env::var("LOOM_MAX_PREEMPTIONS").is_err() {
        b.preemption_bound = Some(3);
    }
    b
}

fn event(id: u64, ts_ms: u64) -> Event {
    Event {
        id,
        ts_ms,
        key: "k".into(),
        units: 1,
    }
}

/// The active segment holds a backfilled row older than the cutoff;
/// `appenders` threads each append one current event while the main thread
/// runs retention. Afterwards one more current event is appended. Every
/// acknowledged current event must be queryable, and the writer must be on
/// the active segment.
#[derive(Clone, Copy, PartialEq)]
enum Oracle {
    Both,
    NoLoss,
    WriterIsActive,
}

fn race(variant: Variant, appenders: u64, oracle: Oracle, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let clock: DynArc<dyn Clock> = DynArc::new(ManualClock::new(NOW_MS * 1_000_000));
        let backend = Arc::new(MemBackend::new(clock, DynArc::new(ThreadScheduler)));
        let store =
            Arc::new(block_on(TieredStore::open(backend, StoreConfig::new(variant))).unwrap());
        block_on(store.append(vec![event(0, NOW_MS - 8 * DAY_MS)])).unwrap();
        let threads: Vec<_> = (1..=appenders)
            .map(|id| {
                let store = Arc::clone(&store);
                thread::spawn(move || block_on(store.append(vec![event(id, NOW_MS)])).map(|()| id))
            })
            .collect();
        block_on(store.retention(NOW_MS)).unwrap();
        let mut acked: Vec<Event> = threads
            .into_iter()
            .filter_map(|t| t.join().unwrap().ok())
            .map(|id| event(id, NOW_MS))
            .collect();
        if oracle != Oracle::NoLoss {
            assert!(
                store.check_writer_is_active().is_ok(),
                "stale writer restored"
            );
        }
        block_on(store.append(vec![event(99, NOW_MS)])).unwrap();
        acked.push(event(99, NOW_MS));
        let found = block_on(store.query(0, u64::MAX)).unwrap();
        let lost = missing_events(&acked, &found, NOW_MS - 7 * DAY_MS);
        if oracle != Oracle::WriterIsActive {
            assert!(lost.is_empty(), "acknowledged events lost: {lost:?}");
        }
    });
}

#[test]
fn fixed_store_one_append_vs_retention() {
    static N: Iterations = Iterations::new();
    race(Variant::Fixed, 1, Oracle::Both, &N);
    N.report("loom", "store fixed, 1 append vs retention");
    N.record("loom", "generation-check", "holds");
}

#[test]
fn fixed_store_two_appends_vs_retention() {
    static N: Iterations = Iterations::new();
    race(Variant::Fixed, 2, Oracle::Both, &N);
    N.report("loom", "store fixed, 2 appends vs retention");
    N.record("loom", "stale-writer", "holds");
}

#[test]
fn pre_fix_store_loses_events() {
    static N: Iterations = Iterations::new();
    expect_caught(
        "loom",
        "store pre-fix, no-loss oracle",
        &N,
        "acknowledged events lost",
        || race(Variant::PreFix, 2, Oracle::NoLoss, &N),
    );
    N.record("loom", "stale-writer", "caught");
}

#[test]
fn pre_fix_store_restores_a_stale_writer() {
    static N: Iterations = Iterations::new();
    expect_caught(
        "loom",
        "store pre-fix, writer oracle",
        &N,
        "stale writer restored",
        || race(Variant::PreFix, 1, Oracle::WriterIsActive, &N),
    );
}

#[test]
fn generation_check_store_is_caught() {
    static N: Iterations = Iterations::new();
    expect_caught(
        "loom",
        "store generation-check, 1 append vs retention",
        &N,
        "acknowledged events lost",
        || race(Variant::GenerationCheck, 1, Oracle::Both, &N),
    );
    N.record("loom", "generation-check", "caught");
}
