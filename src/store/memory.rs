//! The in-memory segment backend for loom, shuttle and the simulator.
//!
//! An insert is two-phased like a real one: it begins, awaits (the I/O), and
//! then commits its rows into the segment *if the segment still exists*; a
//! deleted segment swallows the rows silently, as an unlinked file does.

use super::backend::{BackendError, InsertResult, SegmentBackend, SegmentInfo};
use super::{Event, SegmentId};
use crate::clock::Clock;
use crate::probe::{self, FaultKind};
use crate::sched::Scheduler;
use crate::sync::{Arc, DynArc, Mutex};
use crate::BoxFuture;
use std::collections::BTreeMap;
use std::time::Duration;

/// Longest injected insert latency.
pub const INSERT_LATENCY_MS_MAX: u64 = 2_000;

/// A writer on an in-memory segment.
#[derive(Debug)]
pub struct MemWriter {
    seg: SegmentId,
}

impl MemWriter {
    /// The segment it writes to.
    pub fn segment(&self) -> SegmentId {
        self.seg
    }
}

/// Segments in memory; cloning shares them (they are the "disk", durable
/// across a simulated crash of the store).
#[derive(Clone)]
pub struct MemBackend {
    segments: Arc<Mutex<BTreeMap<SegmentId, Vec<Event>>>>,
    lost: Arc<Mutex<Vec<Event>>>,
    clock: DynArc<dyn Clock>,
    sched: DynArc<dyn Scheduler>,
}

impl MemBackend {
    /// An empty "disk"; inserts wait on `sched` (a yield) and, under faults,
    /// on `clock`.
    pub fn new(clock: DynArc<dyn Clock>, sched: DynArc<dyn Scheduler>) -> Self {
        MemBackend {
            segments: Arc::new(Mutex::new(BTreeMap::new())),
            lost: Arc::new(Mutex::new(Vec::new())),
            clock,
            sched,
        }
    }

    /// Rows written into segments that no longer existed (for diagnostics:
    /// the store itself never learns of them).
    pub fn lost_rows(&self) -> Vec<Event> {
        self.lost.with(|l| l.clone())
    }

    /// Row count per existing segment.
    pub fn row_counts(&self) -> BTreeMap<SegmentId, usize> {
        self.segments
            .with(|s| s.iter().map(|(k, v)| (*k, v.len())).collect())
    }
}

impl SegmentBackend for MemBackend {
    type Writer = MemWriter;

    fn open_writer(&self, seg: SegmentId) -> BoxFuture<Result<MemWriter, BackendError>> {
        self.segments.with(|s| {
            s.entry(seg).or_default();
        });
        Box::pin(async move { Ok(MemWriter { seg }) })
    }

    fn insert(&self, writer: MemWriter, events: Vec<Event>) -> BoxFuture<InsertResult<MemWriter>> {
        let me = self.clone();
        Box::pin(async move {
            if probe::buggify("store.insert", FaultKind::Error) {
                let error = BackendError::Insert("injected insert error".into());
                return (writer, Err((error, events)));
            }
            // The I/O: the task is parked here, as on a real disk write.
            me.sched.yield_now().await;
            if probe::buggify("store.insert", FaultKind::Latency) {
                let ms = 1 + probe::draw(INSERT_LATENCY_MS_MAX);
                me.clock.sleep(Duration::from_millis(ms)).await;
            }
            let lost = me.segments.with(|s| match s.get_mut(&writer.seg) {
                Some(rows) => {
                    rows.extend(events.iter().cloned());
                    false
                }
                None => true,
            });
            if lost {
                tracing::info!(seg = writer.seg, ids = ?events.iter().map(|e| e.id).collect::<Vec<_>>(), "insert into segment {}, which is deleted: rows lost", writer.seg);
                me.lost.with(|l| l.extend(events));
            }
            (writer, Ok(()))
        })
    }

    fn checkpoint(&self, _seg: SegmentId) -> BoxFuture<Result<(), BackendError>> {
        let sched = DynArc::clone(&self.sched);
        Box::pin(async move {
            sched.yield_now().await;
            Ok(())
        })
    }

    fn delete(&self, seg: SegmentId) -> BoxFuture<Result<(), BackendError>> {
        self.segments.with(|s| s.remove(&seg));
        Box::pin(async { Ok(()) })
    }

    fn query(
        &self,
        segs: Vec<SegmentId>,
        from_ms: u64,
        to_ms: u64,
    ) -> BoxFuture<Result<Vec<Event>, BackendError>> {
        let rows = self.segments.with(|s| {
            segs.iter()
                .filter_map(|seg| s.get(seg))
                .flatten()
                .filter(|e| e.ts_ms >= from_ms && e.ts_ms < to_ms)
                .cloned()
                .collect()
        });
        Box::pin(async move { Ok(rows) })
    }

    fn list(&self) -> BoxFuture<Result<Vec<SegmentInfo>, BackendError>> {
        let infos = self.segments.with(|s| {
            s.iter()
                .map(|(&seg, rows)| SegmentInfo {
                    seg,
                    newest_ms: rows.iter().map(|e| e.ts_ms).max(),
                    oldest_ms: rows.iter().map(|e| e.ts_ms).min(),
                })
                .collect()
        });
        Box::pin(async move { Ok(infos) })
    }
}
