//! The storage under the tiered store: one segment per file (or per in-memory
//! table), an append-only writer per segment.

use super::{Event, SegmentId};
use crate::BoxFuture;

/// A backend failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// The insert failed (I/O error, injected fault); nothing was written.
    Insert(String),
    /// Opening, checkpointing, deleting or reading a segment failed.
    Io(String),
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendError::Insert(e) => write!(f, "insert failed: {e}"),
            BackendError::Io(e) => write!(f, "segment I/O failed: {e}"),
        }
    }
}

impl std::error::Error for BackendError {}

/// What an insert hands back: the writer (always: the caller puts it back
/// or drops it) and the result; a failed insert hands the events back.
pub type InsertResult<W> = (W, Result<(), (BackendError, Vec<Event>)>);

/// Segment storage: files on disk (DuckDB) or tables in memory.
///
/// A write through a writer whose segment was deleted meanwhile is *lost*,
/// exactly as a write to an unlinked file is: the backend must not notice.
pub trait SegmentBackend: Send + Sync + 'static {
    /// An open writer on one segment.
    type Writer: Send + 'static;

    /// Opens a writer on `seg`, creating the segment if needed.
    ///
    /// # Errors
    /// [`BackendError::Io`] when the segment cannot be opened.
    fn open_writer(&self, seg: SegmentId) -> BoxFuture<Result<Self::Writer, BackendError>>;

    /// Inserts `events` in one transaction through `writer`.
    fn insert(
        &self,
        writer: Self::Writer,
        events: Vec<Event>,
    ) -> BoxFuture<InsertResult<Self::Writer>>;

    /// Makes the segment durable and read-only (rollover to archive).
    ///
    /// # Errors
    /// [`BackendError::Io`].
    fn checkpoint(&self, seg: SegmentId) -> BoxFuture<Result<(), BackendError>>;

    /// Deletes the segment (retention discard).
    ///
    /// # Errors
    /// [`BackendError::Io`].
    fn delete(&self, seg: SegmentId) -> BoxFuture<Result<(), BackendError>>;

    /// Events of the given segments with `from_ms <= ts_ms < to_ms`.
    ///
    /// # Errors
    /// [`BackendError::Io`].
    fn query(
        &self,
        segs: Vec<SegmentId>,
        from_ms: u64,
        to_ms: u64,
    ) -> BoxFuture<Result<Vec<Event>, BackendError>>;

    /// Every existing segment with its newest and oldest row time (for
    /// reopening after a crash), in id order.
    ///
    /// # Errors
    /// [`BackendError::Io`].
    fn list(&self) -> BoxFuture<Result<Vec<SegmentInfo>, BackendError>>;
}

/// A segment found when reopening.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Its id.
    pub seg: SegmentId,
    /// Newest row time, if it has rows.
    pub newest_ms: Option<u64>,
    /// Oldest row time, if it has rows.
    pub oldest_ms: Option<u64>,
}
