//! shuttle: two flushers race a lease expiry. Flusher A takes the lease
//! and drains; meanwhile the clock moves past the lease's TTL (a pause, a
//! skewed clock) and flusher B takes the lease too. Without fencing (the
//! documented design: no fencing token, no batch id, no in-flight list)
//! shuttle finds a schedule where both commit the same queue items (a double
//! apply); with the fix (fencing token, batch id, in-flight list) it finds
//! none, and a final drain leaves every total exact.
#![cfg(faultline_shuttle)]

mod support;

use faultline::clock::ManualClock;
use faultline::sched::ThreadScheduler;
use faultline::spend::{
    add_rows, CommitOutcome, ConnPool, Entity, Flusher, Item, ItemId, MemLedger, MemQueueStore,
    Metrics, QueueStore, RowKey, Rows, SpendConfig, SpendDeps, Variant,
};
use faultline::sync::{Arc, DynArc};
use shuttle::future::{block_on, spawn, yield_now};
use std::collections::BTreeMap;
use std::time::Duration;
use support::{
    counted, expect_caught_recorded, expect_holds_recorded, shuttle_seed, Expect, Iterations,
};

const ITERATIONS: usize = 1_000;
const TTL_MS: u64 = 100;
const START_NS: u64 = 1_767_225_600_000_000_000;
const ITEMS: u64 = 2;

fn item(n: u64) -> Item {
    let rows = Rows::from([
        (
            RowKey::new(Entity::ApiKey, format!("sk-{n}")),
            10 + u128::from(n),
        ),
        (RowKey::new(Entity::Team, "t0"), 1),
    ]);
    Item {
        id: ItemId {
            instance: 9,
            seq: n,
        },
        rows,
    }
}

fn flusher(
    cfg: SpendConfig,
    id: u32,
    store: &MemQueueStore,
    ledger: &MemLedger,
    clock: &ManualClock,
) -> Flusher {
    let deps = SpendDeps {
        store: DynArc::new(store.clone()),
        ledger: DynArc::new(ledger.clone()),
        pool: Arc::new(ConnPool::new(2)),
        clock: DynArc::new(clock.clone()),
        metrics: Arc::new(Metrics::default()),
    };
    Flusher::new(cfg, id, deps)
}

/// Asserts no queue item was applied twice.
fn assert_no_double_apply(ledger: &MemLedger) {
    let mut applied: BTreeMap<ItemId, Vec<String>> = BTreeMap::new();
    for c in ledger.commits() {
        if c.outcome == CommitOutcome::Applied {
            for id in c.items {
                applied.entry(id).or_default().push(c.owner.clone());
            }
        }
    }
    for (id, by) in applied {
        assert!(
            by.len() <= 1,
            "double apply: item {id:?} committed by {by:?}"
        );
    }
}

/// The race: A and B flush while a third task moves the clock past the
/// lease's TTL at an arbitrary point; then (fixed only) a last flush after
/// every lease expired must leave the totals exact.
fn race(variant: Variant) -> impl Fn() + Send + Sync + 'static {
    move || {
        let clock = ManualClock::new(START_NS);
        let sched = DynArc::new(ThreadScheduler);
        let store = MemQueueStore::new(16, DynArc::new(clock.clone()), sched.clone());
        let ledger = MemLedger::new(DynArc::new(clock.clone()), sched, 0);
        let mut want = Rows::new();
        for n in 0..ITEMS {
            let it = item(n);
            add_rows(&mut want, &it.rows).unwrap();
            block_on(store.push(it)).unwrap();
        }
        let mut cfg = SpendConfig::new(variant);
        cfg.lease_ttl_ms = TTL_MS;
        let tasks: Vec<_> = ["a", "b"]
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let f = flusher(cfg, i as u32, &store, &ledger, &clock);
                spawn(async move {
                    let _ = f.flush_once(name).await;
                })
            })
            .collect();
        let expiry = {
            let clock = clock.clone();
            spawn(async move {
                yield_now().await;
                clock.advance(Duration::from_millis(TTL_MS + 1));
            })
        };
        block_on(async {
            for t in tasks {
                t.await.unwrap();
            }
            expiry.await.unwrap();
        });
        assert_no_double_apply(&ledger);
        if variant == Variant::Fixed {
            clock.advance(Duration::from_millis(10 * TTL_MS));
            let last = flusher(cfg, 2, &store, &ledger, &clock);
            block_on(last.flush_once("c")).unwrap();
            assert_eq!(store.sizes(), (0, 0), "items left after the last flush");
            assert_eq!(ledger.totals_now(), want, "totals not exact");
            assert!(block_on(store.lease_holder()).unwrap().is_none());
        }
    }
}

const ORACLES: &[(&str, &str)] = &[
    ("invariant:double-flush", "double apply"),
    ("invariant:exactly-once", "totals not exact"),
    ("invariant:exactly-once", "items left after the last flush"),
];

fn configured(e: Expect, policies: &str) -> Expect {
    e.config("iterations", ITERATIONS)
        .config("policies", policies)
        .config("seed", shuttle_seed())
}

#[test]
fn without_fencing_two_flushers_double_apply_pct() {
    static N: Iterations = Iterations::new();
    let e = Expect::caught(
        "shuttle",
        "lease-expiry-double-flush",
        "invariant:double-flush",
    );
    let model = "shuttle pct: documented (no fencing)";
    expect_caught_recorded(configured(e, "pct3"), model, &N, ORACLES, || {
        support::check_pct(counted(&N, race(Variant::Documented)), ITERATIONS, 3)
    });
}

#[test]
fn without_fencing_two_flushers_double_apply_random() {
    static N: Iterations = Iterations::new();
    let e = Expect::caught(
        "shuttle",
        "lease-expiry-double-flush",
        "invariant:double-flush",
    );
    let model = "shuttle random: documented (no fencing)";
    expect_caught_recorded(configured(e, "random"), model, &N, ORACLES, || {
        support::check_random(counted(&N, race(Variant::Documented)), ITERATIONS)
    });
}

#[test]
fn with_fencing_no_double_apply_and_exact_totals() {
    static N: Iterations = Iterations::new();
    let e = Expect::holds(
        "shuttle",
        "lease-expiry-double-flush",
        "invariant:double-flush",
    );
    let model = "shuttle (pct + random): fixed (fencing, batch id, in-flight list)";
    expect_holds_recorded(configured(e, "pct3+random"), model, &N, || {
        support::check_pct(counted(&N, race(Variant::Fixed)), ITERATIONS, 3);
        support::check_random(counted(&N, race(Variant::Fixed)), ITERATIONS);
    });
}
