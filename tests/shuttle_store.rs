//! shuttle checks of the store race with more appenders and repeated
//! retention cycles than loom can afford, under PCT and random schedulers.
#![cfg(faultline_shuttle)]

mod support;

use faultline::clock::{Clock, ManualClock};
use faultline::sched::ThreadScheduler;
use faultline::store::{missing_events, Event, MemBackend, StoreConfig, TieredStore, Variant};
use faultline::sync::DynArc;
use shuttle::future::{block_on, spawn, yield_now};
use shuttle::sync::Arc;
use support::{
    counted, expect_caught_recorded, expect_holds_recorded, shuttle_seed, Expect, Iterations,
};

const DAY_MS: u64 = 86_400_000;
const NOW_MS: u64 = 1_767_225_600_000;
const ITERATIONS: usize = 1_000;
const APPENDERS: u64 = 4;
const RETENTION_CYCLES: u64 = 3;

fn event(id: u64, ts_ms: u64) -> Event {
    Event {
        id,
        ts_ms,
        key: format!("k{}", id % 3),
        units: 1,
    }
}

/// Four appenders each backfill one old event and then append one current
/// event; a retention task runs three cycles meanwhile. Every acknowledged
/// current event must be queryable and the writer must be on the active
/// segment.
fn workload(variant: Variant) -> impl Fn() + Send + Sync + Clone + 'static {
    move || {
        let clock: DynArc<dyn Clock> = DynArc::new(ManualClock::new(NOW_MS * 1_000_000));
        let backend = Arc::new(MemBackend::new(clock, DynArc::new(ThreadScheduler)));
        let store =
            Arc::new(block_on(TieredStore::open(backend, StoreConfig::new(variant))).unwrap());
        block_on(store.append(vec![event(0, NOW_MS - 8 * DAY_MS)])).unwrap();
        let appenders: Vec<_> = (1..=APPENDERS)
            .map(|i| {
                let store = Arc::clone(&store);
                spawn(async move {
                    let mut acked = Vec::new();
                    let old = event(100 + i, NOW_MS - 9 * DAY_MS);
                    let _ = store.append(vec![old]).await;
                    let current = event(i, NOW_MS);
                    if store.append(vec![current.clone()]).await.is_ok() {
                        acked.push(current);
                    }
                    acked
                })
            })
            .collect();
        let retention = {
            let store = Arc::clone(&store);
            spawn(async move {
                for _ in 0..RETENTION_CYCLES {
                    store.retention(NOW_MS).await.unwrap();
                    assert!(
                        store.check_writer_is_active().is_ok(),
                        "stale writer restored"
                    );
                    yield_now().await;
                }
            })
        };
        let acked: Vec<Event> = block_on(async {
            let mut all = Vec::new();
            for a in appenders {
                all.extend(a.await.unwrap());
            }
            retention.await.unwrap();
            all
        });
        let found = block_on(store.query(0, u64::MAX)).unwrap();
        let lost = missing_events(&acked, &found, NOW_MS - 7 * DAY_MS);
        assert!(lost.is_empty(), "acknowledged events lost: {lost:?}");
    }
}

/// The store's oracles and the messages that show them: the pre-fix bug
/// trips the writer oracle when a retention cycle follows the stale
/// restore, and the no-loss oracle at the end otherwise.
const ORACLES: &[(&str, &str)] = &[
    ("invariant:writer-is-active", "stale writer restored"),
    ("invariant:no-loss", "acknowledged events lost"),
];

fn configured(e: Expect, policies: &str) -> Expect {
    e.config("iterations", ITERATIONS)
        .config("policies", policies)
        .config("seed", shuttle_seed())
}

#[test]
fn fixed_store_holds_under_pct_and_random() {
    static N: Iterations = Iterations::new();
    let oracles = ["invariant:writer-is-active", "invariant:no-loss"];
    let stale = configured(
        Expect::holds_all("shuttle", "stale-writer", &oracles),
        "pct3+random",
    );
    let gen = configured(
        Expect::holds("shuttle", "generation-check", "invariant:no-loss"),
        "pct3+random",
    );
    let model = "shuttle (pct + random): store fixed, 4 appenders x 3 retention cycles";
    expect_holds_recorded(stale, model, &N, || {
        support::check_pct(counted(&N, workload(Variant::Fixed)), ITERATIONS, 3);
        support::check_random(counted(&N, workload(Variant::Fixed)), ITERATIONS);
    });
    gen.settle(N.count() as u64, "", "");
}

#[test]
fn pre_fix_store_is_caught_by_pct() {
    static N: Iterations = Iterations::new();
    let oracles = ["invariant:writer-is-active", "invariant:no-loss"];
    let e = configured(
        Expect::caught_any("shuttle", "stale-writer", &oracles),
        "pct3",
    );
    expect_caught_recorded(e, "shuttle pct: store pre-fix", &N, ORACLES, || {
        support::check_pct(counted(&N, workload(Variant::PreFix)), ITERATIONS, 3)
    });
}

#[test]
fn pre_fix_store_is_caught_by_random() {
    static N: Iterations = Iterations::new();
    let oracles = ["invariant:writer-is-active", "invariant:no-loss"];
    let e = configured(
        Expect::caught_any("shuttle", "stale-writer", &oracles),
        "random",
    );
    expect_caught_recorded(e, "shuttle random: store pre-fix", &N, ORACLES, || {
        support::check_random(counted(&N, workload(Variant::PreFix)), ITERATIONS)
    });
}

#[test]
fn generation_check_store_is_caught() {
    static N: Iterations = Iterations::new();
    let e = configured(
        Expect::caught("shuttle", "generation-check", "invariant:no-loss"),
        "pct3",
    );
    expect_caught_recorded(
        e,
        "shuttle pct: store generation-check",
        &N,
        ORACLES,
        || {
            support::check_pct(
                counted(&N, workload(Variant::GenerationCheck)),
                ITERATIONS,
                3,
            )
        },
    );
}
