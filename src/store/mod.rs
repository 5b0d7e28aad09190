//! Service 1: a tiered usage store whose append races retention.
//!
//! Events go to the *active* segment; older segments are *archived*;
//! retention discards what is past the retention window. State (`active`
//! segment, the active writer, the archived list) sits behind a short-held
//! blocking mutex, never held across an `.await`.
//!
//! `append` takes the writer out, awaits the insert, and puts the writer
//! back. **Pre-fix**, retention can roll the active segment over while an
//! append is parked at that await; the append then restores a *stale* writer
//! and later, current events go into a discarded segment: silently lost.
//! The **generation check** (do not restore a writer whose segment is no
//! longer active) looks like a fix but still loses the in-flight batch that
//! lands in the segment retention discards mid-await. The **fix** is a
//! per-store async write gate: append holds it for its whole body; retention
//! holds it only around the active-segment rollover; archived cleanup stays
//! ungated; the order is always gate before state mutex.

mod backend;
mod memory;

#[cfg(all(feature = "duckdb", not(any(faultline_loom, faultline_shuttle))))]
pub mod duck;
#[cfg(not(any(faultline_loom, faultline_shuttle)))]
pub mod model;

pub use backend::{BackendError, InsertResult, SegmentBackend, SegmentInfo};
pub use memory::{MemBackend, MemWriter, INSERT_LATENCY_MS_MAX};

use crate::probe::LockClass;
use crate::sync::{Arc, Gate, Mutex};
use std::collections::BTreeMap;

/// A segment's id; segments are created in increasing id order.
pub type SegmentId = u64;

/// One usage event.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Event {
    /// Unique id (the oracle's identity of an event).
    pub id: u64,
    /// Event time, ms since the Unix epoch.
    pub ts_ms: u64,
    /// What was used (a customer, a meter).
    pub key: String,
    /// How much.
    pub units: u64,
}

/// Which store: the historical bug, the look-alike fix, or the fix.
/// There is deliberately no default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// No gate: a stale writer is restored after a rollover.
    PreFix,
    /// Do not restore a writer whose segment is no longer active; still
    /// loses the in-flight batch.
    GenerationCheck,
    /// The per-store write gate, gate before state.
    Fixed,
    /// Test-only: retention takes the state mutex and then the gate (an
    /// inverted lock order the lock-order checker must catch).
    #[doc(hidden)]
    StateThenGate,
}

impl Variant {
    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Variant::PreFix => "pre-fix",
            Variant::GenerationCheck => "generation-check",
            Variant::Fixed => "fixed",
            Variant::StateThenGate => "state-then-gate",
        }
    }

    /// Parses a CLI name.
    pub fn from_name(name: &str) -> Option<Variant> {
        [
            Variant::PreFix,
            Variant::GenerationCheck,
            Variant::Fixed,
            Variant::StateThenGate,
        ]
        .into_iter()
        .find(|v| v.name() == name)
    }
}

/// A deliberate bug planted in the *fixed* store, for proving the layer
/// checks of `tests/store_layers.rs` catch it. Each flaw removes one layer
/// of the fix and keeps the others. Never use anything but [`Flaw::None`]
/// outside a test (see [`TieredStore::with_flaw`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flaw {
    /// The correct store.
    #[default]
    None,
    /// Layer "append holds the gate" removed: append takes no gate
    /// (retention still does).
    AppendUngated,
    /// Layer "retention holds the gate around the rollover" removed
    /// (append still takes it).
    RetentionUngated,
    /// Layer "gate before state" broken (without inverting the locks, as
    /// [`Variant::StateThenGate`] does): retention reads the active
    /// segment's rows' ages before it waits for the gate and acts on what
    /// it read once it holds the gate.
    DecideBeforeGate,
    /// Layer "archived cleanup ungated" removed: retention holds the gate
    /// through the archived cleanup too.
    GatesArchivedCleanup,
    /// Layer "queries take only the state mutex" removed: a query waits for
    /// the write gate.
    QueryTakesGate,
}

/// How the store is configured.
#[derive(Clone, Copy, Debug)]
pub struct StoreConfig {
    /// Which variant (required: no default).
    pub variant: Variant,
    /// Events older than `now - retention_ms` may be discarded.
    /// Default 7 days.
    pub retention_ms: u64,
    /// The active segment is archived once its oldest row is this old.
    /// Default 1 day.
    pub segment_span_ms: u64,
}

impl StoreConfig {
    /// The defaults, with the variant the caller must choose.
    pub fn new(variant: Variant) -> Self {
        StoreConfig {
            variant,
            retention_ms: 7 * 86_400_000,
            segment_span_ms: 86_400_000,
        }
    }
}

/// The write gate's class: taken first.
pub const GATE_CLASS: LockClass = LockClass {
    name: "store.gate",
    rank: 10,
};
/// The state mutex's class: taken after the gate.
pub const STATE_CLASS: LockClass = LockClass {
    name: "store.state",
    rank: 20,
};

/// A failed append; the events are handed back, unacknowledged.
#[derive(Debug, PartialEq, Eq)]
pub struct AppendError {
    /// What failed.
    pub error: BackendError,
    /// The events that were not acknowledged.
    pub events: Vec<Event>,
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "append of {} events failed: {}",
            self.events.len(),
            self.error
        )
    }
}

impl std::error::Error for AppendError {}

/// What one retention pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// The active segment discarded (all its rows were past the cutoff).
    pub discarded_active: Option<SegmentId>,
    /// The active segment archived (rolled over by age).
    pub archived_active: Option<SegmentId>,
    /// Archived segments deleted.
    pub deleted_archived: Vec<SegmentId>,
}

struct SegMeta {
    newest_ms: Option<u64>,
    oldest_ms: Option<u64>,
}

impl SegMeta {
    fn empty() -> Self {
        SegMeta {
            newest_ms: None,
            oldest_ms: None,
        }
    }

    fn note(&mut self, events: &[Event]) {
        for e in events {
            self.newest_ms = Some(self.newest_ms.map_or(e.ts_ms, |n| n.max(e.ts_ms)));
            self.oldest_ms = Some(self.oldest_ms.map_or(e.ts_ms, |o| o.min(e.ts_ms)));
        }
    }
}

struct State<W> {
    active: SegmentId,
    writer: Option<(SegmentId, W)>,
    segments: BTreeMap<SegmentId, SegMeta>,
}

/// The tiered usage store.
pub struct TieredStore<B: SegmentBackend> {
    backend: Arc<B>,
    cfg: StoreConfig,
    gate: Gate<()>,
    state: Mutex<State<B::Writer>>,
    append_seam: Option<Arc<Gate<()>>>,
    flaw: Flaw,
}

mod ops;
pub use ops::missing_events;
