//! Service 2: an asset service with admission control against OOM
//! (incident 003).
//!
//! A request asks for derived file `key`. If the file exists, a cheap fast
//! path streams it (holding a *reader* permit, bounded like file
//! descriptors, waited for up to `read_permit_wait_ms`). If not, an
//! on-demand *creation* streams the file's items, chunk by chunk, to the
//! client and to the file store at once (a multi-writer: the file store
//! first, then the client, must accept each block before the next is
//! written). A creation is a pipeline, as in the incident's
//! `writeTransactionsViaSubtreeStoreStreaming`: up to `fetch_concurrency`
//! chunks of `chunk_items` items are fetched from upstream at once (the
//! upstream fans each fetch out further), fetched chunks wait in the
//! results queue and the reorder (*pending*) map, and the writer takes them
//! in order. A read-ahead window of [`AdmissionConfig::window_chunks`]
//! chunks (fetching, queued, pending and being written) bounds one
//! creation: `3 x fetch_concurrency + 1`, which with the incident's four
//! creations is its "50+ chunks worth of tx data in heap". A chunk's item
//! bytes (10 KB to 500 KB each in the incident) are held, and charged to
//! the memory meter, from its fetch until it is written.
//!
//! **Pre-fix** ([`AdmissionConfig::pre_fix`]): creations are gated only by
//! the reader semaphore (waited for up to 30 s, then a 503 without
//! `Retry-After`), so concurrent creations are bounded only by file
//! descriptors; memory is creations x window x chunk bytes, and slow
//! clients or a slow file store keep every window full until the process is
//! OOM-killed. Nothing checks in the write loop that the client is still
//! there: a creation notices a client that left only when a write to it
//! fails.
//!
//! **The incident's fix** ([`AdmissionConfig::incident_fix`], exactly):
//! existence is checked first with no permit held; a creation takes a
//! *non-blocking* `try_acquire` on a dedicated create semaphore (4 permits;
//! `create_permits_max = 0` reverts to unlimited, the incident's knob
//! `asset_concurrency_subtree_data_create = 0`) and, when none is free, the
//! request is answered at once with [`GetError::Overloaded`] (HTTP 503,
//! `Retry-After: 1`). A file that appeared while the creation was set up is
//! read back. The pending map of one creation is capped at
//! `2 x fetch_concurrency`; a creation that would grow it further aborts
//! with [`GetError::PendingChunksExceeded`]. The write loop checks every
//! [`CANCEL_CHECK_ITEMS`] items that the client is still there, so a
//! disconnect frees the chunks at once. Chunks stay at 10,000 items.
//!
//! **Fixed** ([`AdmissionConfig::fixed`], the default) is the incident's fix
//! plus two things: chunks of 1,024 items (the incident's own follow-up,
//! "reduce `asset_subtreeDataStreamingChunkSize`"), because four creations
//! of 10,000-item chunks of 10-500 KB items can hold 4 x 13 x 2.5 GB, more
//! than the incident's 64 GiB (the `subtree-oom` scenario shows it); and a
//! per-key *claim*, so two requests for one missing file never create it
//! twice (the second gets a 503 and reads the file once it is published).
//!
//! Every path frees a creation's chunk memory before its create permit.
//! Callers retry 503s with [`crate::retry`] ([`GetError::into_call_error`]);
//! [`load`] describes request loads for the simulator and the fuzzers.

pub mod access_log;
pub mod load;
mod mem;
mod pipeline;
mod service;

pub use mem::MemFileStore;
pub use service::{AssetService, Stats};

use crate::retry::CallError;
use crate::BoxFuture;

/// Items written between two checks that the client is still there (the
/// incident's "ctx check every 256 txs").
pub const CANCEL_CHECK_ITEMS: usize = 256;

/// The incident's chunk size (`asset_subtreeDataStreamingChunkSize`).
pub const INCIDENT_CHUNK_ITEMS: usize = 10_000;

/// How long a request waits for a reader permit before the incident's
/// service answers 503, ms.
pub const READ_PERMIT_WAIT_MS: u64 = 30_000;

/// A deliberate bug planted in the service, for proving the checks catch
/// it. Never use anything but [`Flaw::None`] outside a test. Each flaw of
/// the fixed service removes one layer of the fix and keeps the others.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flaw {
    /// The correct service.
    #[default]
    None,
    /// A creation gives its create permit back before writing (and
    /// freeing) its chunks: another creation starts while the memory is
    /// still held.
    ReleaseBeforeFree,
    /// A creation whose request is dropped (client gone, timeout) or fails
    /// forgets its create permit: the permit is leaked.
    LeakOnCancel,
    /// Layer "exists check before the permit" removed: the create permit
    /// is taken before the existence check, so requests for existing files
    /// are rejected while creations are busy.
    PermitBeforeExists,
    /// Layer "create permit" removed: creations take no create permit.
    NoCreatePermit,
    /// A scheduling regression (what the pending cap defends against): the
    /// producer ignores the read-ahead window and the writer drains the
    /// results into the pending map while it writes, so the map grows with
    /// the file.
    ProducerRunsAhead,
    /// [`Flaw::ProducerRunsAhead`] with layer "pending-chunk cap" removed.
    ProducerRunsAheadUncapped,
    /// The second existence check runs before the key is claimed: a
    /// creation that publishes and lets its claim go in between is missed,
    /// and the file is created twice.
    RecheckBeforeClaim,
    /// Layer "cancellation cadence" removed: whether the client is still
    /// there is checked once per chunk, not every [`CANCEL_CHECK_ITEMS`].
    CancelCheckPerChunk,
    /// The cadence is off by one: checked every 257 items.
    CancelCheckOffByOne,
    /// Layer "503 with Retry-After: 1" broken: the 503 says
    /// `Retry-After: 0` (come back at once).
    RetryAfterZero,
    /// Layer "503 at once" removed: a creation waits for a create permit
    /// instead of being answered 503.
    WaitsForPermit,
}

/// How the service is configured. `Default` is the fixed service; see
/// [`AdmissionConfig::pre_fix`] and [`AdmissionConfig::incident_fix`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Concurrent creations at most; `0` means unlimited (the incident's
    /// knob `asset_concurrency_subtree_data_create = 0`). Ignored when
    /// `creations_take_reader_permit` (the pre-fix has no create
    /// semaphore). Default 4.
    pub create_permits_max: usize,
    /// The pre-fix gate: every request, creation or not, takes a reader
    /// permit before the existence check (and holds it to the end), and no
    /// create permit. Default false.
    pub creations_take_reader_permit: bool,
    /// Reader permits (file descriptors): fast-path readers, and in the
    /// pre-fix every request. The incident does not give its value.
    /// Default 64.
    pub read_permits_max: usize,
    /// How long a request waits for a reader permit before it is answered
    /// 503 (the pre-fix: without `Retry-After`), ms; needs a clock
    /// ([`AssetService::with_clock`]), without one it waits as long as it
    /// takes. Default 30,000 (the incident's 30 s).
    pub read_permit_wait_ms: u64,
    /// Items per chunk. Default 1,024 (the incident: 10,000).
    pub chunk_items: usize,
    /// Chunks one creation fetches at once (the errgroup limit of the
    /// incident's producer; the upstream fans each fetch out further). The
    /// incident does not give it: 4 makes its four creations hold "50+
    /// chunks". Default 4.
    pub fetch_concurrency: usize,
    /// Chunks in one creation's pending (reorder) map at most; `0` means
    /// unlimited (pre-fix). Default 8 (2 x `fetch_concurrency`).
    pub pending_chunks_max: usize,
    /// Items written between two checks that the client is still there;
    /// `0`: never checked (pre-fix: a disconnect is noticed only when a
    /// write to the client fails). Default 256.
    pub cancel_check_items: usize,
    /// Whether a creation claims its key, so a second request for a file
    /// being created gets a 503 instead of creating it again. Not in the
    /// incident. Default true.
    pub claim_keys: bool,
    /// The `Retry-After` of a rejection, ms. Default 1,000 (`Retry-After: 1`).
    pub retry_after_ms: u64,
    /// Bytes a fast-path reader holds while streaming. Default 64 KiB.
    pub read_buffer_bytes: u64,
    /// A deliberate bug (tests only). Default none.
    #[doc(hidden)]
    pub flaw: Flaw,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            create_permits_max: 4,
            creations_take_reader_permit: false,
            read_permits_max: 64,
            read_permit_wait_ms: READ_PERMIT_WAIT_MS,
            chunk_items: 1_024,
            fetch_concurrency: 4,
            pending_chunks_max: 8,
            cancel_check_items: CANCEL_CHECK_ITEMS,
            claim_keys: true,
            retry_after_ms: 1_000,
            read_buffer_bytes: 64 * 1_024,
            flaw: Flaw::None,
        }
    }
}

impl AdmissionConfig {
    /// The fixed service with `create_permits_max` creation permits (and
    /// the pending cap of 2 x `fetch_concurrency`).
    pub fn fixed(create_permits_max: usize) -> Self {
        AdmissionConfig {
            create_permits_max,
            ..Default::default()
        }
    }

    /// The incident's fix, exactly: create semaphore of 4 (try-acquire,
    /// 503 + `Retry-After: 1`), exists check first, pending cap 2 x
    /// concurrency, a client check every 256 items, 10,000-item chunks, no
    /// per-key claim.
    pub fn incident_fix() -> Self {
        AdmissionConfig {
            chunk_items: INCIDENT_CHUNK_ITEMS,
            claim_keys: false,
            ..Default::default()
        }
    }

    /// The service before the incident's fix: creations gated only by the
    /// reader semaphore (30 s wait), 10,000-item chunks, no pending cap, no
    /// client check in the write loop, no claim.
    pub fn pre_fix() -> Self {
        AdmissionConfig {
            create_permits_max: 0,
            creations_take_reader_permit: true,
            chunk_items: INCIDENT_CHUNK_ITEMS,
            pending_chunks_max: 0,
            cancel_check_items: 0,
            claim_keys: false,
            ..Default::default()
        }
    }

    /// Chunks one creation may hold at once, the read-ahead window:
    /// `fetch_concurrency` fetching, as many in the results queue, as many
    /// in the reorder map, and one being written.
    pub fn window_chunks(&self) -> usize {
        3 * self.fetch_concurrency.max(1) + 1
    }
}

/// What a successful request was served from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// The file existed (fast path).
    Existing {
        /// Bytes streamed.
        bytes: u64,
    },
    /// The file was created on demand and streamed while created.
    Created {
        /// Items streamed.
        items: u64,
        /// Bytes streamed.
        bytes: u64,
    },
    /// The file appeared while this creation was being set up; it was read
    /// back instead of created again.
    ReadBack {
        /// Bytes streamed.
        bytes: u64,
    },
}

/// A file store failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError(pub String);

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "file store: {}", self.0)
    }
}

impl std::error::Error for FileError {}

/// The client disconnected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientGone;

/// Why a request was not served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GetError {
    /// Every create permit is in use: HTTP 503 with `Retry-After`.
    Overloaded {
        /// The `Retry-After`, ms.
        retry_after_ms: u64,
    },
    /// No reader permit came free within `read_permit_wait_ms`: the
    /// pre-fix's 503, with no `Retry-After` (the fixed services answer
    /// `Overloaded`).
    ReaderTimeout {
        /// How long it waited, ms.
        waited_ms: u64,
    },
    /// The client disconnected; everything it held is freed.
    ClientGone,
    /// A creation's pending-chunk map would exceed its cap: a scheduling
    /// regression (the producer outruns the writer).
    PendingChunksExceeded {
        /// Chunks in the map when the creation aborted.
        pending: usize,
        /// The cap.
        pending_chunks_max: usize,
    },
    /// Reading the items upstream failed.
    Upstream(String),
    /// The file store failed.
    Files(FileError),
}

impl GetError {
    /// The HTTP status a server answers with.
    pub fn status(&self) -> u16 {
        match self {
            GetError::Overloaded { .. } | GetError::ReaderTimeout { .. } => 503,
            GetError::ClientGone => 499,
            GetError::Upstream(_) => 502,
            GetError::PendingChunksExceeded { .. } | GetError::Files(_) => 500,
        }
    }

    /// What an HTTP caller of the service sees: the status and the
    /// `Retry-After` header, read back by [`CallError::from_status`] at the
    /// caller's `now_ms` (so a 503 is [`CallError::Unavailable`] with the
    /// hint the header carried; anything else is [`CallError::Other`]
    /// with this error).
    pub fn into_call_error(self, now_ms: u64) -> CallError<GetError> {
        let header = self.retry_after_header();
        CallError::from_status(self.status(), header.as_deref(), now_ms, self)
    }

    /// The `Retry-After` header value (whole seconds, rounded up) of an
    /// `Overloaded` 503; `None` for every other answer.
    pub fn retry_after_header(&self) -> Option<String> {
        match self {
            GetError::Overloaded { retry_after_ms } => {
                Some(retry_after_ms.div_ceil(1_000).to_string())
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for GetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GetError::Overloaded { retry_after_ms } => write!(
                f,
                "503 overloaded: every create permit is in use (retry after {retry_after_ms} ms)"
            ),
            GetError::ReaderTimeout { waited_ms } => write!(
                f,
                "503: no reader permit within {waited_ms} ms (no Retry-After)"
            ),
            GetError::ClientGone => f.write_str("client disconnected"),
            GetError::PendingChunksExceeded {
                pending,
                pending_chunks_max,
            } => write!(
                f,
                "aborted: the creation's pending-chunk map would hold {pending} chunks > cap {pending_chunks_max} (a scheduling regression: the producer outruns its writer)"
            ),
            GetError::Upstream(e) => write!(f, "upstream failed: {e}"),
            GetError::Files(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for GetError {}

impl From<FileError> for GetError {
    fn from(e: FileError) -> Self {
        GetError::Files(e)
    }
}

/// Where items come from (a database, a chain index).
pub trait Upstream: Send + Sync {
    /// Up to `count_max` item sizes (bytes) of `key`'s file, from item
    /// `from` on; fewer than asked at the last chunk, empty past it.
    fn read_items(
        &self,
        key: &str,
        from: u64,
        count_max: usize,
    ) -> BoxFuture<Result<Vec<u64>, String>>;
}

/// The client's connection.
pub trait Client: Send + Sync {
    /// Sends `bytes`; completes when the client accepted them. A write to a
    /// client that left may still succeed for a while (socket and pipe
    /// buffers) before one fails.
    fn send(&self, bytes: u64) -> BoxFuture<Result<(), ClientGone>>;
    /// Whether the client has disconnected (the request's context is
    /// cancelled).
    fn is_gone(&self) -> bool;
}

/// Derived files: drafts written while created, published atomically.
pub trait FileStore: Send + Sync {
    /// The published file's size, or `None` when it does not exist.
    fn size(&self, key: &str) -> BoxFuture<Result<Option<u64>, FileError>>;
    /// Starts a draft of `key`; returns its id.
    fn create(&self, key: &str) -> BoxFuture<Result<u64, FileError>>;
    /// Appends `bytes` to draft `draft`.
    fn write(&self, draft: u64, bytes: u64) -> BoxFuture<Result<(), FileError>>;
    /// Publishes the draft (atomic rename): the file now exists.
    fn publish(&self, draft: u64) -> BoxFuture<Result<(), FileError>>;
    /// Discards an unpublished draft.
    fn discard(&self, draft: u64);
}
