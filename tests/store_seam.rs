//! The gate on the real tokio-backed world, with paused time: an append
//! parked in flight (through a test-only seam) while it holds the write gate
//! keeps a concurrent retention pending; pre-fix, retention runs through.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::clock::{Clock, TokioClock};
use faultline::sched::TokioScheduler;
use faultline::store::{Event, MemBackend, StoreConfig, TieredStore, Variant};
use faultline::sync::{Arc, DynArc, Gate};
use std::task::Poll;

const DAY_MS: u64 = 86_400_000;

fn event(id: u64, ts_ms: u64) -> Event {
    Event {
        id,
        ts_ms,
        key: "k".into(),
        units: 1,
    }
}

/// Returns whether retention completed while the append was parked, and
/// whether the parked append's event survived.
fn park_append_then_retain(variant: Variant) -> (bool, bool) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async move {
        let clock = TokioClock::new();
        let now_ms = clock.now_ms();
        let backend = Arc::new(MemBackend::new(
            DynArc::new(clock),
            DynArc::new(TokioScheduler),
        ));
        let seam = Arc::new(Gate::new(()));
        let store = TieredStore::open(backend, StoreConfig::new(variant))
            .await
            .unwrap()
            .with_append_seam(Arc::clone(&seam));
        store
            .append(vec![event(0, now_ms - 8 * DAY_MS)])
            .await
            .unwrap();
        let hold = seam.try_lock().unwrap();
        let mut append = tokio_test::task::spawn(store.append(vec![event(1, now_ms)]));
        for _ in 0..10 {
            assert!(append.poll().is_pending());
            if seam.waiters() == 1 {
                break;
            }
        }
        assert_eq!(seam.waiters(), 1, "the append did not reach the seam");
        let mut retention = tokio_test::task::spawn(store.retention(now_ms));
        let mut ran_through = false;
        for _ in 0..10 {
            if retention.poll().is_ready() {
                ran_through = true;
                break;
            }
        }
        drop(hold);
        assert!(
            matches!(append.poll(), Poll::Ready(Ok(()))),
            "append acknowledged"
        );
        if !ran_through {
            assert!(retention.is_woken(), "retention woken when the gate opens");
            while retention.poll().is_pending() {}
        }
        let found = store.query(0, u64::MAX).await.unwrap();
        (ran_through, found.iter().any(|e| e.id == 1))
    })
}

#[test]
fn fixed_retention_waits_for_the_parked_append() {
    let (ran_through, kept) = park_append_then_retain(Variant::Fixed);
    assert!(!ran_through, "retention did not wait on the write gate");
    assert!(kept, "the acknowledged event was lost");
}

#[test]
fn pre_fix_retention_runs_through_and_loses_the_event() {
    let (ran_through, kept) = park_append_then_retain(Variant::PreFix);
    assert!(
        ran_through,
        "pre-fix retention should not wait (there is no gate)"
    );
    assert!(!kept, "pre-fix should lose the in-flight event");
}

#[test]
fn generation_check_also_loses_the_in_flight_event() {
    let (ran_through, kept) = park_append_then_retain(Variant::GenerationCheck);
    assert!(ran_through);
    assert!(
        !kept,
        "the generation check does not save the in-flight batch"
    );
}
