//! The store in the simulator: append, retention and query all run; on the
//! fixed store nothing deadlocks and the lock-order checker (gate before
//! state mutex) passes; the test-only state-then-gate store is caught.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::clock::Clock;
use faultline::sim::{Failure, Outcome, Sim, SimConfig};
use faultline::store::{Event, MemBackend, StoreConfig, TieredStore, Variant};
use faultline::sync::{Arc, DynArc};
use std::time::Duration;

const DAY_MS: u64 = 86_400_000;

fn run(variant: Variant, seed: u64) -> Outcome {
    let sim = Sim::new(SimConfig {
        seed,
        spurious_wake_ppm: 20_000,
        ..Default::default()
    });
    let h = sim.main_handle();
    sim.run(async move {
        let backend = Arc::new(MemBackend::new(DynArc::new(h), DynArc::new(h)));
        let store = Arc::new(
            TieredStore::open(backend, StoreConfig::new(variant))
                .await
                .unwrap(),
        );
        let now = h.now_ms();
        store.append(vec![ev(0, now - 8 * DAY_MS)]).await.unwrap();
        let mut tasks = Vec::new();
        for i in 1..=3u64 {
            let store = Arc::clone(&store);
            tasks.push(h.spawn_on("append", async move {
                let _ = store.append(vec![ev(i, now)]).await;
            }));
        }
        let s2 = Arc::clone(&store);
        tasks.push(h.spawn_on("retention", async move {
            for _ in 0..3 {
                s2.retention(h.now_ms()).await.unwrap();
                h.sleep(Duration::from_millis(1)).await;
            }
        }));
        let s3 = Arc::clone(&store);
        tasks.push(h.spawn_on("query", async move {
            for _ in 0..3 {
                s3.query(0, u64::MAX).await.unwrap();
            }
        }));
        for t in tasks {
            t.await.unwrap();
        }
    })
}

fn ev(id: u64, ts_ms: u64) -> Event {
    Event {
        id,
        ts_ms,
        key: "k".into(),
        units: 1,
    }
}

#[test]
fn fixed_store_keeps_lock_order_and_never_deadlocks() {
    for seed in 0..500 {
        let out = run(Variant::Fixed, seed);
        assert!(out.passed(), "seed {seed}: {}", out.failure.unwrap());
    }
}

#[test]
fn state_then_gate_is_caught_by_the_lock_order_checker() {
    let caught = (0..500).find_map(|seed| match run(Variant::StateThenGate, seed).failure {
        Some(Failure::LockOrder { detail }) => Some((seed, detail)),
        _ => None,
    });
    let (seed, detail) = caught.expect("500 seeds never caught the inverted order");
    assert!(
        detail.contains("store.gate") && detail.contains("store.state"),
        "{detail}"
    );
    println!("caught at seed {seed}: {detail}");
}
