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
use support::{expect_caught_recorded, expect_holds_recorded, Expect, Iterations};

const DAY_MS: u64 = 86_400_000;
const NOW_MS: u64 = 1_767_225_600_000;

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    if std::env::var("LOOM_MAX_PREEMPTIONS").is_err() {
        b.preemption_bound = Some(3);
    }
    b
}

/// The oracles of the race and the messages that show them.
const ORACLES: &[(&str, &str)] = &[
    ("invariant:writer-is-active", "stale writer restored"),
    ("invariant:no-loss", "acknowledged events lost"),
];

/// A record expectation with the model's configuration.
fn expect(caught: bool, bug: &str, oracle: &str, appenders: u64) -> Expect {
    let e = if caught {
        Expect::caught("loom", bug, oracle)
    } else {
        Expect::holds("loom", bug, oracle)
    };
    let bound = builder()
        .preemption_bound
        .map_or_else(|| "none".to_string(), |b| b.to_string());
    e.config("preemption_bound", bound)
        .config("appenders", appenders)
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
    let e = expect(false, "generation-check", "invariant:no-loss", 1);
    expect_holds_recorded(e, "loom: store fixed, 1 append vs retention", &N, || {
        race(Variant::Fixed, 1, Oracle::Both, &N)
    });
}

#[test]
fn fixed_store_two_appends_vs_retention() {
    static N: Iterations = Iterations::new();
    let e = expect(false, "stale-writer", "invariant:no-loss", 2);
    expect_holds_recorded(e, "loom: store fixed, 2 appends vs retention", &N, || {
        race(Variant::Fixed, 2, Oracle::Both, &N)
    });
}

#[test]
fn pre_fix_store_loses_events() {
    static N: Iterations = Iterations::new();
    let e = expect(true, "stale-writer", "invariant:no-loss", 2);
    expect_caught_recorded(
        e,
        "loom: store pre-fix, no-loss oracle",
        &N,
        ORACLES,
        || race(Variant::PreFix, 2, Oracle::NoLoss, &N),
    );
}

#[test]
fn pre_fix_store_restores_a_stale_writer() {
    static N: Iterations = Iterations::new();
    let e = expect(true, "stale-writer", "invariant:writer-is-active", 1);
    expect_caught_recorded(e, "loom: store pre-fix, writer oracle", &N, ORACLES, || {
        race(Variant::PreFix, 1, Oracle::WriterIsActive, &N)
    });
}

#[test]
fn generation_check_store_is_caught() {
    static N: Iterations = Iterations::new();
    let e = expect(true, "generation-check", "invariant:no-loss", 1);
    let model = "loom: store generation-check, 1 append vs retention";
    expect_caught_recorded(e, model, &N, ORACLES, || {
        race(Variant::GenerationCheck, 1, Oracle::Both, &N)
    });
}
