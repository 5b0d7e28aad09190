//! One check per layer of the usage store's fix (issue 14, item 9): for
//! each layer, the fixed store with that one layer removed (the others
//! kept, a planted [`Flaw`]) is caught by a check of the layer's own
//! property, and the fixed store passes the same check.
//!
//! | layer | property checked | twin |
//! |---|---|---|
//! | the gate's exclusion, append side | no segment is rolled (checkpointed or deleted) while an insert into it is in flight | `Flaw::AppendUngated` |
//! | the gate's exclusion, retention side | the same | `Flaw::RetentionUngated` |
//! | gate before state: the decision | retention never deletes a row not past its cutoff | `Flaw::DecideBeforeGate` |
//! | gate before state: the locks | no task takes the gate while it holds the state mutex (lock-order checker) | `Variant::StateThenGate` |
//! | restore only into the active segment | whenever the state lock is free, the writer in the state writes to the active segment | `Variant::PreFix` against `Variant::GenerationCheck` (see below) |
//! | archived cleanup ungated | an append never waits for retention's archived-segment deletes | `Flaw::GatesArchivedCleanup` |
//! | queries take only the state mutex | a query completes while an append is in flight | `Flaw::QueryTakesGate` |
//!
//! The restore check (`restore` puts a writer back only when its segment
//! is still the active one) is unreachable while the gate is there: no
//! rollover can happen between an append's take and its restore. Removing
//! it from the fixed store is an equivalent change no check can see, so its
//! own property is checked where it is the last defence: on the stores
//! without a gate, where the generation-check store (restore check kept)
//! holds it and the pre-fix store (restore check removed) is caught.
//!
//! The interleavings are forced, not searched: a watched backend parks
//! inserts on a gate the test holds, so every check is one deterministic
//! run. Every run is bounded in virtual time and polls, so a regression
//! fails instead of hanging.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::clock::{Clock, NS_PER_MS};
use faultline::sim::{Failure, Outcome, Sim, SimConfig, SimHandle};
use faultline::store::{
    BackendError, Event, Flaw, InsertResult, MemBackend, MemWriter, SegmentBackend, SegmentId,
    SegmentInfo, StoreConfig, TieredStore, Variant,
};
use faultline::sync::{Arc, DynArc, Gate, Mutex};
use faultline::BoxFuture;
use std::collections::BTreeMap;
use std::time::Duration;

/// Virtual time a layer check may take at most.
const RUN_MS_MAX: u64 = 600_000;
/// Polls a layer check may make at most.
const STEPS_MAX: u64 = 1_000_000;
const DAY_MS: u64 = 86_400_000;

fn ev(id: u64, ts_ms: u64) -> Event {
    Event {
        id,
        ts_ms,
        key: "k".into(),
        units: 1,
    }
}

/// What the watched backend saw.
#[derive(Default)]
struct Seen {
    /// Inserts in flight, per segment.
    inserting: BTreeMap<SegmentId, usize>,
    /// Rollovers (checkpoint, delete) of a segment an insert was in flight
    /// into.
    overlaps: Vec<String>,
    /// Rows each deleted segment held when it was deleted.
    deleted: BTreeMap<SegmentId, Vec<Event>>,
}

/// The in-memory backend, watched: it notes which segments are rolled
/// while inserts into them are in flight and what each delete destroyed;
/// it can park inserts on a gate (before they write) and slow deletes.
#[derive(Clone)]
struct Watched {
    inner: MemBackend,
    clock: SimHandle,
    seen: Arc<Mutex<Seen>>,
    park: Arc<Mutex<Option<Arc<Gate<()>>>>>,
    delete_delay_ms: Arc<Mutex<u64>>,
}

impl Watched {
    fn new(h: SimHandle) -> Self {
        Watched {
            inner: MemBackend::new(DynArc::new(h), DynArc::new(h)),
            clock: h,
            seen: Arc::new(Mutex::new(Seen::default())),
            park: Arc::new(Mutex::new(None)),
            delete_delay_ms: Arc::new(Mutex::new(0)),
        }
    }

    /// Parks every insert that starts from now on until `gate` is free.
    fn park_inserts(&self, gate: &Arc<Gate<()>>) {
        self.park.with(|p| *p = Some(Arc::clone(gate)));
    }

    fn note_roll(&self, what: &str, seg: SegmentId) {
        self.seen.with(|s| {
            let n = s.inserting.get(&seg).copied().unwrap_or(0);
            if n > 0 {
                s.overlaps.push(format!(
                    "segment {seg} was {what} while {n} insert(s) into it were in flight"
                ));
            }
        });
    }

    fn overlaps(&self) -> Vec<String> {
        self.seen.with(|s| s.overlaps.clone())
    }

    fn deleted(&self) -> BTreeMap<SegmentId, Vec<Event>> {
        self.seen.with(|s| s.deleted.clone())
    }
}

impl SegmentBackend for Watched {
    type Writer = MemWriter;

    fn open_writer(&self, seg: SegmentId) -> BoxFuture<Result<MemWriter, BackendError>> {
        self.inner.open_writer(seg)
    }

    fn insert(&self, writer: MemWriter, events: Vec<Event>) -> BoxFuture<InsertResult<MemWriter>> {
        let me = self.clone();
        let seg = writer.segment();
        me.seen.with(|s| *s.inserting.entry(seg).or_default() += 1);
        let park = me.park.with(|p| p.clone());
        Box::pin(async move {
            if let Some(gate) = park {
                drop(gate.lock().await);
            }
            let out = me.inner.insert(writer, events).await;
            me.seen.with(|s| *s.inserting.entry(seg).or_default() -= 1);
            out
        })
    }

    fn checkpoint(&self, seg: SegmentId) -> BoxFuture<Result<(), BackendError>> {
        self.note_roll("checkpointed", seg);
        self.inner.checkpoint(seg)
    }

    fn delete(&self, seg: SegmentId) -> BoxFuture<Result<(), BackendError>> {
        self.note_roll("deleted", seg);
        let me = self.clone();
        Box::pin(async move {
            let delay_ms = me.delete_delay_ms.with(|d| *d);
            if delay_ms > 0 {
                me.clock.sleep(Duration::from_millis(delay_ms)).await;
            }
            let rows = me.inner.query(vec![seg], 0, u64::MAX).await?;
            me.seen
                .with(|s| s.deleted.entry(seg).or_default().extend(rows));
            me.inner.delete(seg).await
        })
    }

    fn query(
        &self,
        segs: Vec<SegmentId>,
        from_ms: u64,
        to_ms: u64,
    ) -> BoxFuture<Result<Vec<Event>, BackendError>> {
        self.inner.query(segs, from_ms, to_ms)
    }

    fn list(&self) -> BoxFuture<Result<Vec<SegmentInfo>, BackendError>> {
        self.inner.list()
    }
}

type Store = TieredStore<Watched>;

/// What [`check`] says when the run itself failed, never finished the
/// check, or did not set up the interleaving: not the layer's own property.
const NOT_THE_LAYER: [&str; 3] = [
    "the run failed",
    "the check did not finish",
    "the check's setup",
];

/// Runs `main` in a bounded simulation; its verdict, or the run's failure
/// (a lock-order failure reported as the lock-order property when
/// `lock_order_is_the_property`).
fn check(
    lock_order_is_the_property: bool,
    main: impl FnOnce(SimHandle) -> faultline::BoxFuture<Result<(), String>>,
) -> Result<(), String> {
    let sim = Sim::new(SimConfig {
        time_max_ns: RUN_MS_MAX * NS_PER_MS,
        steps_max: STEPS_MAX,
        ..Default::default()
    });
    let h = sim.main_handle();
    let verdict = Arc::new(Mutex::new(Err("the check did not finish".to_string())));
    let v = Arc::clone(&verdict);
    let fut = main(h);
    let out: Outcome = sim.run(async move {
        let r = fut.await;
        v.with(|slot| *slot = r);
    });
    match out.failure {
        Some(Failure::LockOrder { detail }) if lock_order_is_the_property => {
            Err(format!("lock order inverted: {detail}"))
        }
        Some(f) => Err(format!("the run failed: {f}")),
        None => verdict.with(|v| v.clone()),
    }
}

/// Runs the check on the fixed store (must pass) and on the twin (must be
/// caught by the layer's own check, not by the run failing otherwise);
/// prints what the twin's check said.
fn fixed_passes_twin_caught<K: Copy + std::fmt::Debug>(
    layer: &str,
    fixed: K,
    twin: K,
    run: impl Fn(K) -> Result<(), String>,
) {
    if let Err(e) = run(fixed) {
        panic!("{layer}: the fixed store ({fixed:?}) fails its own layer's check: {e}");
    }
    match run(twin) {
        Ok(()) => panic!("{layer}: the twin {twin:?} without this layer was NOT caught"),
        Err(e) if NOT_THE_LAYER.iter().any(|n| e.starts_with(n)) => {
            panic!("{layer}: the twin {twin:?} failed, but not by this layer's check: {e}")
        }
        Err(e) => println!("{layer}: twin {twin:?} caught: {e}"),
    }
}

async fn open(h: SimHandle, variant: Variant, flaw: Flaw) -> Result<(Watched, Arc<Store>), String> {
    let backend = Watched::new(h);
    let store = TieredStore::open(Arc::new(backend.clone()), StoreConfig::new(variant))
        .await
        .map_err(|e| e.to_string())?;
    Ok((backend, Arc::new(store.with_flaw(flaw))))
}

/// The incident's precondition: the active segment's newest row is past
/// the cutoff (a backfilled event 8 days old); then an append of a current
/// event is parked mid-insert while a retention pass at `now` runs. Returns
/// once both are done (the park lifted after 10 ms).
async fn append_in_flight_meets_retention(
    h: SimHandle,
    backend: &Watched,
    store: &Arc<Store>,
    now_ms: u64,
) -> Result<(), String> {
    let old = ev(0, now_ms - 8 * DAY_MS);
    store.append(vec![old]).await.map_err(|e| e.to_string())?;
    let park = Arc::new(Gate::new(()));
    let held = park.lock().await;
    backend.park_inserts(&park);
    let s = Arc::clone(store);
    let append = h.spawn_on("append", async move {
        s.append(vec![ev(1, now_ms)]).await.expect("append");
    });
    h.sleep(Duration::from_millis(1)).await;
    let s = Arc::clone(store);
    let retention = h.spawn_on("retention", async move {
        s.retention(now_ms).await.expect("retention");
    });
    h.sleep(Duration::from_millis(10)).await;
    drop(held);
    append.await.map_err(|e| format!("append: {e:?}"))?;
    retention.await.map_err(|e| format!("retention: {e:?}"))?;
    Ok(())
}

/// The gate's exclusion: no segment is rolled while an insert into it is
/// in flight.
fn exclusion(flaw: Flaw) -> Result<(), String> {
    check(false, move |h| {
        Box::pin(async move {
            let (backend, store) = open(h, Variant::Fixed, flaw).await?;
            append_in_flight_meets_retention(h, &backend, &store, h.now_ms()).await?;
            let overlaps = backend.overlaps();
            if !overlaps.is_empty() {
                let lost = backend.inner.lost_rows().len();
                return Err(format!(
                    "retention rolled a segment an append was writing to: {} ({lost} acknowledged row(s) lost)",
                    overlaps.join("; ")
                ));
            }
            Ok(())
        })
    })
}

#[test]
fn layer_gate_append_side_no_segment_rolls_under_an_insert() {
    fixed_passes_twin_caught(
        "gate exclusion (append side)",
        Flaw::None,
        Flaw::AppendUngated,
        exclusion,
    );
}

#[test]
fn layer_gate_retention_side_no_segment_rolls_under_an_insert() {
    fixed_passes_twin_caught(
        "gate exclusion (retention side)",
        Flaw::None,
        Flaw::RetentionUngated,
        exclusion,
    );
}

/// Gate before state, the decision: retention never deletes a row that is
/// not past its cutoff (it decides on the rows as they are once it holds
/// the gate, not as they were before it waited).
fn decision_under_the_gate(flaw: Flaw) -> Result<(), String> {
    check(false, move |h| {
        Box::pin(async move {
            let (backend, store) = open(h, Variant::Fixed, flaw).await?;
            let now_ms = h.now_ms();
            append_in_flight_meets_retention(h, &backend, &store, now_ms).await?;
            let cutoff_ms = now_ms - store.config().retention_ms;
            for (seg, rows) in backend.deleted() {
                if let Some(e) = rows.iter().find(|e| e.ts_ms >= cutoff_ms) {
                    return Err(format!(
                        "retention deleted segment {seg} holding event {} of {} ms, not past its cutoff of {cutoff_ms} ms",
                        e.id, e.ts_ms
                    ));
                }
            }
            Ok(())
        })
    })
}

#[test]
fn layer_gate_before_state_retention_deletes_nothing_newer_than_its_cutoff() {
    fixed_passes_twin_caught(
        "gate before state (decision)",
        Flaw::None,
        Flaw::DecideBeforeGate,
        decision_under_the_gate,
    );
}

/// Gate before state, the locks: an append and a retention pass that
/// rolls the active segment over, under the lock-order checker.
fn lock_order(variant: Variant) -> Result<(), String> {
    check(true, move |h| {
        Box::pin(async move {
            let (_backend, store) = open(h, variant, Flaw::None).await?;
            let now_ms = h.now_ms();
            store
                .append(vec![ev(0, now_ms - 8 * DAY_MS)])
                .await
                .map_err(|e| e.to_string())?;
            let report = store.retention(now_ms).await.map_err(|e| e.to_string())?;
            if report.discarded_active != Some(0) {
                return Err(format!("the check's setup did not roll over: {report:?}"));
            }
            store
                .append(vec![ev(1, now_ms)])
                .await
                .map_err(|e| e.to_string())?;
            Ok(())
        })
    })
}

#[test]
fn layer_gate_before_state_the_lock_order_checker_sees_the_inversion() {
    fixed_passes_twin_caught(
        "gate before state (locks)",
        Variant::Fixed,
        Variant::StateThenGate,
        |v| {
            let r = lock_order(v);
            if let Err(e) = &r {
                assert!(
                    !e.starts_with("lock order")
                        || (e.contains("store.gate") && e.contains("store.state")),
                    "the inversion does not name the gate and the state mutex: {e}"
                );
            }
            r
        },
    );
}

/// Restore only into the active segment: whenever the state lock is free,
/// the writer in the state writes to the active segment, and the next
/// append lands in the active segment.
fn restore_into_active(variant: Variant) -> Result<(), String> {
    check(false, move |h| {
        Box::pin(async move {
            let (backend, store) = open(h, variant, Flaw::None).await?;
            let now_ms = h.now_ms();
            append_in_flight_meets_retention(h, &backend, &store, now_ms).await?;
            store.check_writer_is_active()?;
            store
                .append(vec![ev(2, now_ms)])
                .await
                .map_err(|e| e.to_string())?;
            store.check_writer_is_active()
        })
    })
}

#[test]
fn layer_restore_check_the_writer_left_behind_writes_to_the_active_segment() {
    // The fixed store holds it (the gate makes the restore check
    // unreachable); on the stores without a gate, the restore check is the
    // only thing that holds it.
    restore_into_active(Variant::Fixed).expect("the fixed store");
    fixed_passes_twin_caught(
        "restore only into the active segment (no gate)",
        Variant::GenerationCheck,
        Variant::PreFix,
        restore_into_active,
    );
}

/// Archived cleanup ungated: an append made while retention deletes an
/// expired archived segment (slowly: 1 s) completes at once.
fn cleanup_ungated(flaw: Flaw) -> Result<(), String> {
    check(false, move |h| {
        Box::pin(async move {
            let (backend, store) = open(h, Variant::Fixed, flaw).await?;
            let now_ms = h.now_ms();
            // Segment 0 is archived (its row is 6 days old), then expires
            // in a pass 2 days later.
            store
                .append(vec![ev(0, now_ms - 6 * DAY_MS)])
                .await
                .map_err(|e| e.to_string())?;
            let report = store.retention(now_ms).await.map_err(|e| e.to_string())?;
            if report.archived_active != Some(0) {
                return Err(format!("the check's setup did not archive: {report:?}"));
            }
            backend.delete_delay_ms.with(|d| *d = 1_000);
            let s = Arc::clone(&store);
            let retention = h.spawn_on("retention", async move {
                s.retention(now_ms + 2 * DAY_MS).await.expect("retention");
            });
            h.sleep(Duration::from_millis(1)).await;
            let start_ms = h.now_ms();
            store
                .append(vec![ev(1, now_ms)])
                .await
                .map_err(|e| e.to_string())?;
            let took_ms = h.now_ms() - start_ms;
            retention.await.map_err(|e| format!("retention: {e:?}"))?;
            if !backend.deleted().contains_key(&0) {
                return Err("the check's setup never deleted the archived segment".into());
            }
            if took_ms > 100 {
                return Err(format!(
                    "an append waited {took_ms} ms for retention's archived-segment delete"
                ));
            }
            Ok(())
        })
    })
}

#[test]
fn layer_archived_cleanup_ungated_appends_never_wait_for_it() {
    fixed_passes_twin_caught(
        "archived cleanup ungated",
        Flaw::None,
        Flaw::GatesArchivedCleanup,
        cleanup_ungated,
    );
}

/// Queries take only the state mutex: a query completes while an append
/// is parked in flight (holding the gate).
fn query_concurrent(flaw: Flaw) -> Result<(), String> {
    check(false, move |h| {
        Box::pin(async move {
            let (backend, store) = open(h, Variant::Fixed, flaw).await?;
            let now_ms = h.now_ms();
            let park = Arc::new(Gate::new(()));
            let held = park.lock().await;
            backend.park_inserts(&park);
            let s = Arc::clone(&store);
            let append = h.spawn_on("append", async move {
                s.append(vec![ev(1, now_ms)]).await.expect("append");
            });
            h.sleep(Duration::from_millis(1)).await;
            let done = Arc::new(Mutex::new(false));
            let (s, d) = (Arc::clone(&store), Arc::clone(&done));
            let query = h.spawn_on("query", async move {
                s.query(0, u64::MAX).await.expect("query");
                d.with(|d| *d = true);
            });
            h.sleep(Duration::from_millis(100)).await;
            let answered = done.with(|d| *d);
            drop(held);
            append.await.map_err(|e| format!("append: {e:?}"))?;
            query.await.map_err(|e| format!("query: {e:?}"))?;
            if !answered {
                return Err(
                    "a query was still waiting 100 ms into an append in flight: it waited for the write gate"
                        .into(),
                );
            }
            Ok(())
        })
    })
}

#[test]
fn layer_queries_take_only_the_state_mutex() {
    fixed_passes_twin_caught(
        "queries take only the state mutex",
        Flaw::None,
        Flaw::QueryTakesGate,
        query_concurrent,
    );
}
