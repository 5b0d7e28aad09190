//! Service 2: an asset service with admission control against OOM.
//!
//! A request asks for derived file `key`. If the file exists, a cheap fast
//! path streams it (holding a *reader* permit, bounded like file
//! descriptors). If not, an on-demand *creation* reads the file's items from
//! upstream in chunks of `chunk_items` and streams each chunk to the client
//! and to the file store at once; both must accept a chunk before the next
//! is produced. A chunk's item bytes (from small payments to 500 KB data
//! carriers) are held, and charged to the memory meter, while it is in
//! flight.
//!
//! **Pre-fix** (`create_permits_max = 0`): creations are unlimited, so
//! memory is creations x chunk bytes; slow clients and a slow file store
//! pile chunks up until the process is OOM-killed. **Fix**: existence is
//! checked first with no permit held; a creation takes a *non-blocking*
//! `try_acquire` on a dedicated create semaphore (default 4 permits) and,
//! when none is free, the request is answered at once with
//! [`GetError::Overloaded`] (HTTP 503, `Retry-After: 1`) instead of
//! queueing. The pending-chunk map is capped at `pending_chunks_max`
//! (2 x concurrency); a creation that would grow it further aborts with
//! [`GetError::PendingChunksExceeded`]. Cancellation (the client is gone) is
//! checked every [`CANCEL_CHECK_ITEMS`] items, freeing the chunk at once. A
//! file that appears while a creation is being set up is read back, not
//! created twice: a creation claims its key first and then looks again, and
//! publishes before it lets the claim go (a second request for a key being
//! created gets a 503 too).
//!
//! Every path frees a creation's chunk memory before its create permit, so
//! memory stays within `create_permits_max` x chunk bytes plus the readers'
//! buffers. Callers retry 503s with [`crate::retry`]
//! ([`GetError::into_call_error`]); [`load`] describes request loads for
//! the simulator and the fuzzers.

pub mod load;
mod mem;
mod service;

pub use mem::MemFileStore;
pub use service::{AssetService, Stats};

use crate::retry::CallError;
use crate::BoxFuture;

/// Items read between two checks that the client is still there.
pub const CANCEL_CHECK_ITEMS: usize = 256;

/// A deliberate bug planted in the service, for proving the checks catch
/// it. Never use anything but [`Flaw::None`] outside a test.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flaw {
    /// The correct service.
    #[default]
    None,
    /// A creation gives its create permit back before sending (and
    /// freeing) its chunk: another creation starts while the memory is
    /// still held.
    ReleaseBeforeFree,
    /// A creation whose request is dropped (client gone, timeout) forgets
    /// its create permit: the permit is leaked.
    LeakOnCancel,
    /// The create permit is taken before the existence check, so requests
    /// for existing files are rejected while creations are busy.
    PermitBeforeExists,
    /// The producer does not wait for the client and the file store to
    /// accept a chunk before producing the next (a scheduling regression):
    /// the pending-chunk map grows.
    ProducerRunsAhead,
    /// The second existence check runs before the key is claimed: a
    /// creation that publishes and lets its claim go in between is missed,
    /// and the file is created twice.
    RecheckBeforeClaim,
    /// Whether the client is still there is checked once per chunk, not
    /// every [`CANCEL_CHECK_ITEMS`] items: a client that leaves mid-chunk
    /// keeps the whole chunk being read and held.
    CancelCheckPerChunk,
}

/// How the service is configured. `Default` is the fixed service; the
/// pre-fix one is [`AdmissionConfig::pre_fix`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Concurrent creations at most; `0` means unlimited (the pre-fix
    /// behaviour, never the default). Default 4.
    pub create_permits_max: usize,
    /// Concurrent fast-path readers at most (file descriptors). Default 64.
    pub read_permits_max: usize,
    /// Items per chunk. Default 1,024.
    pub chunk_items: usize,
    /// Chunks in flight (in the pending-chunk map) at most, over all
    /// creations; `0` means unlimited (pre-fix). Default 8 (2 x 4).
    pub pending_chunks_max: usize,
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
            read_permits_max: 64,
            chunk_items: 1_024,
            pending_chunks_max: 8,
            retry_after_ms: 1_000,
            read_buffer_bytes: 64 * 1_024,
            flaw: Flaw::None,
        }
    }
}

impl AdmissionConfig {
    /// The fixed service with `create_permits_max` creation permits and a
    /// pending-chunk cap of twice that.
    pub fn fixed(create_permits_max: usize) -> Self {
        AdmissionConfig {
            create_permits_max,
            pending_chunks_max: 2 * create_permits_max,
            ..Default::default()
        }
    }

    /// The pre-fix service: unlimited creations, no pending-chunk cap.
    pub fn pre_fix() -> Self {
        AdmissionConfig {
            create_permits_max: 0,
            pending_chunks_max: 0,
            ..Default::default()
        }
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
    /// The client disconnected; everything it held is freed.
    ClientGone,
    /// The pending-chunk map would exceed its cap: a scheduling regression
    /// (the producer outruns the client and the file store).
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
            GetError::Overloaded { .. } => 503,
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

    /// The `Retry-After` header value (whole seconds, rounded up) of a 503.
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
            GetError::ClientGone => f.write_str("client disconnected"),
            GetError::PendingChunksExceeded {
                pending,
                pending_chunks_max,
            } => write!(
                f,
                "aborted: pending-chunk map would hold {pending} chunks > cap {pending_chunks_max} (a scheduling regression: the producer outruns its consumers)"
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
    /// `from` on; empty past the last item.
    fn read_items(
        &self,
        key: &str,
        from: u64,
        count_max: usize,
    ) -> BoxFuture<Result<Vec<u64>, String>>;
}

/// The client's connection.
pub trait Client: Send + Sync {
    /// Sends `bytes`; completes when the client accepted them.
    fn send(&self, bytes: u64) -> BoxFuture<Result<(), ClientGone>>;
    /// Whether the client has disconnected.
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
