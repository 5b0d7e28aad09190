//! [`AssetService`]: the fast path, admission, and the hand-off to the
//! creation pipeline ([`super::pipeline`]).

use super::{pipeline, AdmissionConfig, Client, FileStore, Flaw, GetError, Served, Upstream};
use crate::clock::Clock;
use crate::probe;
use crate::sync::{DynArc, Mutex, Permit, Semaphore};
use std::collections::BTreeSet;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

/// Counters of what the service did, and high-water marks for oracles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests served from an existing file.
    pub served_existing: u64,
    /// Files created and published.
    pub created: u64,
    /// Creations that found the file already there and read it back.
    pub read_back: u64,
    /// Requests answered 503 at once (`Overloaded`).
    pub rejected: u64,
    /// Requests answered 503 after waiting for a reader permit (also
    /// counted in `rejected` by the fixed services).
    pub reader_timeouts: u64,
    /// Requests that ended because the client was gone.
    pub client_gone: u64,
    /// Creations running now.
    pub creations_now: usize,
    /// Most creations ever running at once.
    pub creations_peak: usize,
    /// Chunks held in memory now (fetched and not yet written), over every
    /// creation.
    pub chunks_held_now: usize,
    /// Most chunks ever held at once.
    pub chunks_held_peak: usize,
    /// The largest pending (reorder) map any one creation ever had.
    pub pending_peak: usize,
    /// Chunk fetches in flight now (each fans out upstream).
    pub fetches_now: usize,
    /// Most chunk fetches ever in flight at once.
    pub fetches_peak: usize,
    /// Item bytes held in chunks now (what the memory meter is charged for
    /// creations).
    pub chunk_bytes_now: u64,
    /// Most item bytes ever held in chunks at once.
    pub chunk_bytes_peak: u64,
    /// Items written by creations (to the file store and the client).
    pub items_written: u64,
}

pub(super) struct State {
    /// Keys being created now (claimed).
    creating: BTreeSet<String>,
    pub(super) stats: Stats,
}

/// The asset service; share it (`Arc`) between request tasks.
pub struct AssetService {
    pub(super) cfg: AdmissionConfig,
    pub(super) files: DynArc<dyn FileStore>,
    pub(super) upstream: DynArc<dyn Upstream>,
    readers: Semaphore,
    creators: Option<Semaphore>,
    clock: Option<DynArc<dyn Clock>>,
    pub(super) state: Mutex<State>,
}

/// A running creation: its create permit (none when unlimited or gated by
/// the reader permit), counted in `creations_now` while it lives.
pub(super) struct Slot<'a> {
    svc: &'a AssetService,
    pub(super) permit: Option<Permit>,
    finished: bool,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.svc.state.with(|s| s.stats.creations_now -= 1);
        tracing::debug!(
            permit = self.permit.is_some(),
            finished = self.finished,
            "creation ends: permit released"
        );
        if !self.finished && self.svc.cfg.flaw == Flaw::LeakOnCancel {
            std::mem::forget(self.permit.take());
        }
    }
}

/// The claim on a key being created (released on drop).
struct Claim<'a> {
    svc: &'a AssetService,
    key: String,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.svc.state.with(|s| s.creating.remove(&self.key));
    }
}

impl AssetService {
    /// A service over `files` and `upstream`, without a clock (a wait for
    /// a reader permit never times out; see [`AssetService::with_clock`]).
    pub fn new(
        cfg: AdmissionConfig,
        files: DynArc<dyn FileStore>,
        upstream: DynArc<dyn Upstream>,
    ) -> Self {
        let gated = cfg.creations_take_reader_permit || cfg.create_permits_max == 0;
        AssetService {
            cfg,
            files,
            upstream,
            readers: Semaphore::new(cfg.read_permits_max.max(1)),
            creators: (!gated).then(|| Semaphore::new(cfg.create_permits_max)),
            clock: None,
            state: Mutex::new(State {
                creating: BTreeSet::new(),
                stats: Stats::default(),
            }),
        }
    }

    /// The same service timing its waits for a reader permit on `clock`
    /// (`read_permit_wait_ms`).
    pub fn with_clock(mut self, clock: DynArc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The configuration.
    pub fn config(&self) -> AdmissionConfig {
        self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.state.with(|s| s.stats)
    }

    /// Create permits free now (`usize::MAX` when unlimited).
    pub fn create_permits_available(&self) -> usize {
        self.creators
            .as_ref()
            .map_or(usize::MAX, Semaphore::available)
    }

    /// Reader permits free now.
    pub fn read_permits_available(&self) -> usize {
        self.readers.available()
    }

    /// Serves file `key` to `client`: streams it if it exists, else
    /// creates it while streaming it. The fixed service checks existence
    /// with no permit held, admits a creation only with a free create
    /// permit (and, with `claim_keys`, only if nobody else is creating
    /// `key`), and reads back a file that appeared in the meantime. The
    /// pre-fix service takes a reader permit first, for either path.
    ///
    /// # Errors
    /// [`GetError::Overloaded`] at once when every create permit is in use
    /// or `key` is being created by another request (nothing is held);
    /// [`GetError::ReaderTimeout`] when no reader permit came free in time;
    /// [`GetError::ClientGone`] when the client left;
    /// [`GetError::PendingChunksExceeded`] on a scheduling regression;
    /// [`GetError::Upstream`] / [`GetError::Files`] on I/O failures. Every
    /// error frees the chunk memory before the create permit.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future frees the chunk memory, discards the
    /// draft and returns the permits (RAII).
    pub async fn get(&self, key: &str, client: &dyn Client) -> Result<Served, GetError> {
        if self.cfg.creations_take_reader_permit {
            return self.get_reader_gated(key, client).await;
        }
        let early = if self.cfg.flaw == Flaw::PermitBeforeExists {
            Some(self.admit().await?)
        } else {
            None
        };
        if let Some(size) = self.files.size(key).await? {
            drop(early);
            return self.serve_existing(size, client, None).await;
        }
        let claim_first = self.cfg.claim_keys && self.cfg.flaw != Flaw::RecheckBeforeClaim;
        // Claim first, then look again: a creation publishes before it
        // lets its claim go, so a file finished by another request is seen
        // here and read back, never created twice.
        let claim = if claim_first {
            Some(self.claim(key)?)
        } else {
            None
        };
        let slot = match early {
            Some(slot) => slot,
            None => self.admit().await?,
        };
        if let Some(size) = self.files.size(key).await? {
            drop(claim);
            return self.read_back(slot, size, client).await;
        }
        let claim = match claim {
            None if self.cfg.claim_keys => Some(self.claim(key)?),
            claim => claim,
        };
        let served = self.create(key, client, slot).await;
        drop(claim);
        served
    }

    /// The pre-fix request: a reader permit (waited for), then the
    /// existence check, then the file or its creation, holding the permit
    /// to the end.
    async fn get_reader_gated(&self, key: &str, client: &dyn Client) -> Result<Served, GetError> {
        let reader = self.reader_permit().await?;
        if let Some(size) = self.files.size(key).await? {
            return self.serve_existing(size, client, Some(reader)).await;
        }
        let slot = self.slot(None);
        let served = self.create(key, client, slot).await;
        drop(reader);
        served
    }

    async fn serve_existing(
        &self,
        size: u64,
        client: &dyn Client,
        reader: Option<Permit>,
    ) -> Result<Served, GetError> {
        let bytes = self.stream_existing(size, client, reader).await?;
        self.state.with(|s| s.stats.served_existing += 1);
        Ok(Served::Existing { bytes })
    }

    /// The file appeared while this creation was set up: give the slot
    /// back and stream the file.
    async fn read_back(
        &self,
        slot: Slot<'_>,
        size: u64,
        client: &dyn Client,
    ) -> Result<Served, GetError> {
        drop(slot);
        let bytes = self.stream_existing(size, client, None).await?;
        self.state.with(|s| s.stats.read_back += 1);
        Ok(Served::ReadBack { bytes })
    }

    fn reject(&self) -> GetError {
        self.state.with(|s| s.stats.rejected += 1);
        tracing::debug!("create permit refused: 503 with Retry-After");
        let retry_after_ms = if self.cfg.flaw == Flaw::RetryAfterZero {
            0
        } else {
            self.cfg.retry_after_ms
        };
        GetError::Overloaded { retry_after_ms }
    }

    /// Admission: a create permit without waiting, or a 503.
    async fn admit(&self) -> Result<Slot<'_>, GetError> {
        let permit = match (&self.creators, self.cfg.flaw) {
            (None, _) | (_, Flaw::NoCreatePermit) => None,
            (Some(sem), Flaw::WaitsForPermit) => Some(sem.acquire().await),
            (Some(sem), _) => Some(sem.try_acquire().map_err(|_| self.reject())?),
        };
        tracing::debug!(permit = permit.is_some(), "creation admitted");
        Ok(self.slot(permit))
    }

    fn slot(&self, permit: Option<Permit>) -> Slot<'_> {
        self.state.with(|s| {
            s.stats.creations_now += 1;
            s.stats.creations_peak = s.stats.creations_peak.max(s.stats.creations_now);
        });
        Slot {
            svc: self,
            permit,
            finished: false,
        }
    }

    /// Claims `key` for this creation; a 503 when another request is
    /// creating it right now (it will exist soon: come back later).
    fn claim(&self, key: &str) -> Result<Claim<'_>, GetError> {
        let fresh = self.state.with(|s| s.creating.insert(key.to_string()));
        if !fresh {
            return Err(self.reject());
        }
        Ok(Claim {
            svc: self,
            key: key.to_string(),
        })
    }

    /// A reader permit, waited for up to `read_permit_wait_ms` when the
    /// service has a clock; then a 503 (with `Retry-After` in the fixed
    /// services, without in the pre-fix one).
    async fn reader_permit(&self) -> Result<Permit, GetError> {
        if let Ok(p) = self.readers.try_acquire() {
            return Ok(p);
        }
        let Some(clock) = &self.clock else {
            return Ok(self.readers.acquire().await);
        };
        let waited_ms = self.cfg.read_permit_wait_ms;
        let mut acquire = pin!(self.readers.acquire());
        let mut timeout = clock.sleep(Duration::from_millis(waited_ms));
        let got = poll_fn(|cx| {
            if let Poll::Ready(p) = acquire.as_mut().poll(cx) {
                return Poll::Ready(Some(p));
            }
            timeout.as_mut().poll(cx).map(|()| None)
        })
        .await;
        got.ok_or_else(|| {
            self.state.with(|s| s.stats.reader_timeouts += 1);
            // The fixed handler maps every "service unavailable" to a 503
            // with Retry-After; before the fix there was no such mapping.
            if self.cfg.creations_take_reader_permit {
                GetError::ReaderTimeout { waited_ms }
            } else {
                self.reject()
            }
        })
    }

    /// The fast path: a reader permit (the one given, or a new one) and
    /// one read buffer while streaming.
    async fn stream_existing(
        &self,
        size: u64,
        client: &dyn Client,
        reader: Option<Permit>,
    ) -> Result<u64, GetError> {
        let _reader = match reader {
            Some(p) => p,
            None => self.reader_permit().await?,
        };
        let buf = self.cfg.read_buffer_bytes.max(1);
        let _mem = probe::charge("admission.read_buffer", buf.min(size));
        let mut sent = 0;
        while sent < size {
            let n = buf.min(size - sent);
            if client.send(n).await.is_err() {
                return Err(self.gone());
            }
            sent += n;
        }
        Ok(size)
    }

    pub(super) fn gone(&self) -> GetError {
        self.state.with(|s| s.stats.client_gone += 1);
        GetError::ClientGone
    }

    /// Creation: a draft, the pipeline writing every chunk to the client
    /// and the draft, then the draft published.
    async fn create(
        &self,
        key: &str,
        client: &dyn Client,
        mut slot: Slot<'_>,
    ) -> Result<Served, GetError> {
        let mut draft = Draft {
            files: &*self.files,
            id: self.files.create(key).await?,
            published: false,
        };
        let (items, bytes) = pipeline::run(self, key, client, draft.id, &mut slot).await?;
        self.files.publish(draft.id).await?;
        draft.published = true;
        slot.finished = true;
        self.state.with(|s| s.stats.created += 1);
        Ok(Served::Created { items, bytes })
    }
}

/// An unpublished draft, discarded on drop.
struct Draft<'a> {
    files: &'a dyn FileStore,
    id: u64,
    published: bool,
}

impl Drop for Draft<'_> {
    fn drop(&mut self) {
        if !self.published {
            self.files.discard(self.id);
        }
    }
}
