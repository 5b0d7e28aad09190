//! The store's append gate, stepped by hand on the tokio-backed world with
//! paused time: which variants let two appends be in flight at once.
//! Written to kill cargo-mutants survivors (see `MUTANTS.md`).
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::clock::{Clock, TokioClock};
use faultline::sched::TokioScheduler;
use faultline::store::{Event, MemBackend, StoreConfig, TieredStore, Variant};
use faultline::sync::{Arc, DynArc, Gate};
use std::task::Poll;

fn event(id: u64, ts_ms: u64) -> Event {
    Event {
        id,
        ts_ms,
        key: "k".into(),
        units: 1,
    }
}

/// A current-thread tokio runtime with paused time (it advances only when
/// every task waits).
fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

/// A store of `cfg` over a fresh in-memory backend on the tokio-backed
/// world, and the clock's now (ms).
async fn open_store(cfg: StoreConfig) -> (TieredStore<MemBackend>, u64) {
    let clock = TokioClock::new();
    let now_ms = clock.now_ms();
    let backend = Arc::new(MemBackend::new(
        DynArc::new(clock),
        DynArc::new(TokioScheduler),
    ));
    (TieredStore::open(backend, cfg).await.unwrap(), now_ms)
}

/// Parks one append at the seam (it holds the store's write gate when the
/// variant has one), starts a second, and returns how many appends reached
/// the seam (2: the second was not held back by a gate). Both are then
/// released and must be acknowledged and found.
fn appends_in_flight(variant: Variant) -> usize {
    paused().block_on(async move {
        let (store, now_ms) = open_store(StoreConfig::new(variant)).await;
        let seam = Arc::new(Gate::new(()));
        let store = store.with_append_seam(Arc::clone(&seam));
        let hold = seam.try_lock().unwrap();
        let mut first = tokio_test::task::spawn(store.append(vec![event(1, now_ms)]));
        let mut second = tokio_test::task::spawn(store.append(vec![event(2, now_ms)]));
        for _ in 0..20 {
            assert!(first.poll().is_pending(), "{variant:?}: first parked");
            assert!(second.poll().is_pending(), "{variant:?}: second waits");
            tokio::task::yield_now().await;
        }
        let in_flight = seam.waiters();
        drop(hold);
        let (mut a, mut b) = (None, None);
        for _ in 0..50 {
            if a.is_none() {
                if let Poll::Ready(r) = first.poll() {
                    a = Some(r);
                }
            }
            if b.is_none() {
                if let Poll::Ready(r) = second.poll() {
                    b = Some(r);
                }
            }
            if a.is_some() && b.is_some() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(matches!(a, Some(Ok(()))), "{variant:?}: first acked");
        assert!(matches!(b, Some(Ok(()))), "{variant:?}: second acked");
        in_flight
    })
}

/// Fixed (and the lock-order twin) serialise appends on the write gate;
/// the pre-fix store and the generation-check twin have no gate, so both
/// appends reach the seam.
#[test]
fn only_the_gated_variants_serialise_appends() {
    assert_eq!(appends_in_flight(Variant::Fixed), 1, "fixed: one at a time");
    assert_eq!(appends_in_flight(Variant::StateThenGate), 1);
    assert_eq!(appends_in_flight(Variant::PreFix), 2, "pre-fix has no gate");
    assert_eq!(appends_in_flight(Variant::GenerationCheck), 2);
}

const DAY_MS: u64 = 86_400_000;

/// store_seam's interleaving (an append parked in flight while retention
/// rolls its segment over), then: whether the store's writer still points
/// at the active segment, and whether a later append is acknowledged and
/// found.
fn writer_after_rollover(variant: Variant) -> (Result<(), String>, bool) {
    paused().block_on(async move {
        let (store, now_ms) = open_store(StoreConfig::new(variant)).await;
        let seam = Arc::new(Gate::new(()));
        let store = store.with_append_seam(Arc::clone(&seam));
        store
            .append(vec![event(0, now_ms - 8 * DAY_MS)])
            .await
            .unwrap();
        let hold = seam.try_lock().unwrap();
        let mut append = tokio_test::task::spawn(store.append(vec![event(1, now_ms)]));
        for _ in 0..10 {
            assert!(append.poll().is_pending());
        }
        assert_eq!(seam.waiters(), 1, "the append did not reach the seam");
        let mut retention = tokio_test::task::spawn(store.retention(now_ms));
        let mut retained = false;
        for _ in 0..10 {
            if retention.poll().is_ready() {
                retained = true;
                break;
            }
        }
        drop(hold);
        let mut appended = false;
        for _ in 0..50 {
            appended = appended || append.poll().is_ready();
            retained = retained || retention.poll().is_ready();
            if appended && retained {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(
            appended && retained,
            "{variant:?}: append and retention finish"
        );
        let writer = store.check_writer_is_active();
        let acked = store.append(vec![event(2, now_ms)]).await.is_ok();
        let found = store.query(0, u64::MAX).await.unwrap();
        (writer, acked && found.iter().any(|e| e.id == 2))
    })
}

/// The restore rule of each variant: pre-fix puts back the writer of the
/// rolled segment (so later appends land in a deleted segment); the
/// fixed store and the generation-check twin do not.
#[test]
fn only_pre_fix_restores_a_stale_writer() {
    let (writer, _) = writer_after_rollover(Variant::PreFix);
    assert!(writer.is_err(), "pre-fix restores the stale writer");
    // The generation-check twin has no gate, but its restore checks the
    // segment: the stale writer is dropped (it loses the in-flight rows
    // instead, which store_seam checks). It was once seen "restored" here,
    // most likely on a mutants copy of the tree with a mutant of this very
    // check left in it (see MUTANTS.md); on the clean tree it passed 200
    // runs of 200 (2026-11-30), and each mutant of the check fails it.
    let (writer, later_found) = writer_after_rollover(Variant::GenerationCheck);
    assert_eq!(writer, Ok(()), "GenerationCheck: stale writer restored");
    assert!(later_found, "GenerationCheck: the next append was lost");
    let (writer, later_found) = writer_after_rollover(Variant::Fixed);
    assert_eq!(writer, Ok(()), "fixed: stale writer restored");
    assert!(later_found, "fixed: the next append was lost");
}

/// Retention's age limits in the tests below, ms.
const RETAIN_MS: u64 = 10_000;
const SPAN_MS: u64 = 5_000;

/// What one retention pass at `now` does to an active segment holding one
/// row `newest_age_ms` old and one `oldest_age_ms` old: (discarded,
/// archived).
fn retention_of(newest_age_ms: u64, oldest_age_ms: u64) -> (bool, bool) {
    paused().block_on(async move {
        let cfg = StoreConfig {
            retention_ms: RETAIN_MS,
            segment_span_ms: SPAN_MS,
            ..StoreConfig::new(Variant::Fixed)
        };
        let (store, now_ms) = open_store(cfg).await;
        let rows = vec![
            event(1, now_ms - newest_age_ms),
            event(2, now_ms - oldest_age_ms),
        ];
        store.append(rows).await.unwrap();
        let report = store.retention(now_ms).await.unwrap();
        (
            report.discarded_active.is_some(),
            report.archived_active.is_some(),
        )
    })
}

/// The active segment is discarded only when *every* row is strictly older
/// than the cutoff (`now - retention_ms`), and archived (kept, rolled over)
/// only when its oldest row is strictly older than `now - segment_span_ms`:
/// one millisecond on either side of each limit.
#[test]
fn retention_discards_and_archives_exactly_past_its_limits() {
    let (r, s) = (RETAIN_MS, SPAN_MS);
    // (newest age, oldest age) -> (discarded, archived)
    let cases = [
        ((r + 1, r + 1), (true, false), "every row past the cutoff"),
        (
            (r, r + 1),
            (false, true),
            "newest row exactly at the cutoff: kept",
        ),
        ((0, r + 1), (false, true), "one fresh row keeps the segment"),
        (
            (0, s + 1),
            (false, true),
            "oldest row past the span: archived",
        ),
        (
            (0, s),
            (false, false),
            "oldest row exactly at the span: stays active",
        ),
        ((0, 0), (false, false), "fresh rows only"),
    ];
    for ((newest, oldest), want, what) in cases {
        assert_eq!(
            retention_of(newest, oldest),
            want,
            "{what}: newest {newest} ms, oldest {oldest} ms old (discarded, archived)"
        );
    }
}
