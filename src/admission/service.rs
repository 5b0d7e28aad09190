//! [`AssetService`]: the fast path, admission, and the chunked creation.

use super::{
    AdmissionConfig, Client, FileStore, Flaw, GetError, Served, Upstream, CANCEL_CHECK_ITEMS,
};
use crate::probe::{self, MemCharge};
use crate::sync::{DynArc, Mutex, Permit, Semaphore};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Counters of what the service did, and high-water marks for oracles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests served from an existing file.
    pub served_existing: u64,
    /// Files created and published.
    pub created: u64,
    /// Creations that found the file already there and read it back.
    pub read_back: u64,
    /// Requests answered 503 (`Overloaded`).
    pub rejected: u64,
    /// Requests that ended because the client was gone.
    pub client_gone: u64,
    /// Creations running now.
    pub creations_now: usize,
    /// Most creations ever running at once.
    pub creations_peak: usize,
    /// Chunks in the pending-chunk map now.
    pub pending_chunks_now: usize,
    /// Most chunks ever in the pending-chunk map at once.
    pub pending_chunks_peak: usize,
    /// Item bytes held in chunks in flight now (what the memory meter is
    /// charged for creations).
    pub chunk_bytes_now: u64,
    /// Most item bytes ever held in chunks at once.
    pub chunk_bytes_peak: u64,
}

struct State {
    /// (creation, chunk index) -> bytes held.
    pending: BTreeMap<(u64, u64), u64>,
    /// Keys being created now.
    creating: BTreeSet<String>,
    next_creation: u64,
    stats: Stats,
}

/// The asset service; share it (`Arc`) between request tasks.
pub struct AssetService {
    cfg: AdmissionConfig,
    files: DynArc<dyn FileStore>,
    upstream: DynArc<dyn Upstream>,
    readers: Semaphore,
    creators: Option<Semaphore>,
    state: Mutex<State>,
}

/// A running creation: its create permit (none when unlimited), counted in
/// `creations_now` while it lives.
struct Slot<'a> {
    svc: &'a AssetService,
    permit: Option<Permit>,
    id: u64,
    finished: bool,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.svc.state.with(|s| s.stats.creations_now -= 1);
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

/// One chunk in flight: its entry in the pending map and its memory.
struct Chunk<'a> {
    svc: &'a AssetService,
    key: (u64, u64),
    items: u64,
    bytes: u64,
    charges: Vec<MemCharge>,
}

impl Drop for Chunk<'_> {
    fn drop(&mut self) {
        self.charges.clear();
        let bytes = self.bytes;
        self.svc.state.with(|s| {
            s.pending.remove(&self.key);
            s.stats.pending_chunks_now = s.pending.len();
            s.stats.chunk_bytes_now -= bytes;
        });
    }
}

impl AssetService {
    /// A service over `files` and `upstream`.
    pub fn new(
        cfg: AdmissionConfig,
        files: DynArc<dyn FileStore>,
        upstream: DynArc<dyn Upstream>,
    ) -> Self {
        AssetService {
            cfg,
            files,
            upstream,
            readers: Semaphore::new(cfg.read_permits_max.max(1)),
            creators: (cfg.create_permits_max > 0).then(|| Semaphore::new(cfg.create_permits_max)),
            state: Mutex::new(State {
                pending: BTreeMap::new(),
                creating: BTreeSet::new(),
                next_creation: 0,
                stats: Stats::default(),
            }),
        }
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

    /// Serves file `key` to `client`: streams it if it exists (no create
    /// permit is taken), else creates it while streaming, if a create permit
    /// is free and nobody else is creating `key`; a file that appeared in
    /// the meantime is read back.
    ///
    /// # Errors
    /// [`GetError::Overloaded`] at once when every create permit is in use
    /// or `key` is being created by another request (nothing is held);
    /// [`GetError::ClientGone`] when the client left;
    /// [`GetError::PendingChunksExceeded`] on a scheduling regression;
    /// [`GetError::Upstream`] / [`GetError::Files`] on I/O failures. Every
    /// error frees the chunk memory before the create permit.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future frees the chunk memory, discards the
    /// draft and returns the permits (RAII).
    pub async fn get(&self, key: &str, client: &dyn Client) -> Result<Served, GetError> {
        let early = if self.cfg.flaw == Flaw::PermitBeforeExists {
            Some(self.admit()?)
        } else {
            None
        };
        if let Some(size) = self.files.size(key).await? {
            drop(early);
            let bytes = self.stream_existing(size, client).await?;
            self.state.with(|s| s.stats.served_existing += 1);
            return Ok(Served::Existing { bytes });
        }
        let (claim, slot) = if self.cfg.flaw == Flaw::RecheckBeforeClaim {
            let slot = early.map_or_else(|| self.admit(), Ok)?;
            if let Some(size) = self.files.size(key).await? {
                return self.read_back(slot, size, client).await;
            }
            (self.claim(key)?, slot)
        } else {
            // Claim first, then look again: a creation publishes before it
            // lets its claim go, so a file finished by another request is
            // seen here and read back, never created twice.
            let claim = self.claim(key)?;
            let slot = early.map_or_else(|| self.admit(), Ok)?;
            if let Some(size) = self.files.size(key).await? {
                drop(claim);
                return self.read_back(slot, size, client).await;
            }
            (claim, slot)
        };
        self.create(key, client, slot, claim).await
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
        let bytes = self.stream_existing(size, client).await?;
        self.state.with(|s| s.stats.read_back += 1);
        Ok(Served::ReadBack { bytes })
    }

    fn reject(&self) -> GetError {
        self.state.with(|s| s.stats.rejected += 1);
        GetError::Overloaded {
            retry_after_ms: self.cfg.retry_after_ms,
        }
    }

    /// Admission: a create permit without waiting, or a 503.
    fn admit(&self) -> Result<Slot<'_>, GetError> {
        let permit = match &self.creators {
            None => None,
            Some(sem) => Some(sem.try_acquire().map_err(|_| self.reject())?),
        };
        let id = self.state.with(|s| {
            s.stats.creations_now += 1;
            s.stats.creations_peak = s.stats.creations_peak.max(s.stats.creations_now);
            s.next_creation += 1;
            s.next_creation
        });
        Ok(Slot {
            svc: self,
            permit,
            id,
            finished: false,
        })
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

    /// The fast path: a reader permit and one read buffer while streaming.
    async fn stream_existing(&self, size: u64, client: &dyn Client) -> Result<u64, GetError> {
        let _reader = self.readers.acquire().await;
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

    fn gone(&self) -> GetError {
        self.state.with(|s| s.stats.client_gone += 1);
        GetError::ClientGone
    }

    /// Reserves chunk `idx` of creation `id` in the pending map.
    fn reserve(&self, id: u64, idx: u64) -> Result<Chunk<'_>, GetError> {
        let cap = self.cfg.pending_chunks_max;
        self.state.with(|s| {
            if cap > 0 && s.pending.len() >= cap {
                return Err(GetError::PendingChunksExceeded {
                    pending: s.pending.len() + 1,
                    pending_chunks_max: cap,
                });
            }
            s.pending.insert((id, idx), 0);
            s.stats.pending_chunks_now = s.pending.len();
            s.stats.pending_chunks_peak = s.stats.pending_chunks_peak.max(s.pending.len());
            Ok(())
        })?;
        Ok(Chunk {
            svc: self,
            key: (id, idx),
            items: 0,
            bytes: 0,
            charges: Vec::new(),
        })
    }

    /// Fills `chunk` with up to `chunk_items` items from item `from`,
    /// checking every [`CANCEL_CHECK_ITEMS`] items that the client is there.
    async fn fill(
        &self,
        key: &str,
        from: u64,
        chunk: &mut Chunk<'_>,
        client: &dyn Client,
    ) -> Result<(), GetError> {
        let want = self.cfg.chunk_items.max(1) as u64;
        let per_chunk_only = self.cfg.flaw == Flaw::CancelCheckPerChunk;
        while chunk.items < want {
            if (chunk.items == 0 || !per_chunk_only) && client.is_gone() {
                return Err(self.gone());
            }
            let n = (want - chunk.items).min(CANCEL_CHECK_ITEMS as u64) as usize;
            let items = self
                .upstream
                .read_items(key, from + chunk.items, n)
                .await
                .map_err(GetError::Upstream)?;
            let bytes: u64 = items.iter().sum();
            chunk.charges.push(probe::charge("admission.chunk", bytes));
            chunk.items += items.len() as u64;
            chunk.bytes += bytes;
            let chunk_bytes = chunk.bytes;
            self.state.with(|s| {
                if let Some(b) = s.pending.get_mut(&chunk.key) {
                    *b = chunk_bytes;
                }
                s.stats.chunk_bytes_now += bytes;
                s.stats.chunk_bytes_peak = s.stats.chunk_bytes_peak.max(s.stats.chunk_bytes_now);
            });
            if items.len() < n {
                break;
            }
        }
        Ok(())
    }

    /// Creation: chunk by chunk, each sent to the client and written to the
    /// draft at once, then freed; the draft is published at the end.
    async fn create(
        &self,
        key: &str,
        client: &dyn Client,
        mut slot: Slot<'_>,
        claim: Claim<'_>,
    ) -> Result<Served, GetError> {
        let draft = Draft {
            files: &*self.files,
            id: self.files.create(key).await?,
            published: false,
        };
        if self.cfg.flaw == Flaw::ProducerRunsAhead {
            return self
                .create_running_ahead(key, client, slot, claim, draft)
                .await;
        }
        let (mut items, mut bytes, mut idx) = (0u64, 0u64, 0u64);
        loop {
            let mut chunk = self.reserve(slot.id, idx)?;
            self.fill(key, items, &mut chunk, client).await?;
            if chunk.items == 0 {
                break;
            }
            if self.cfg.flaw == Flaw::ReleaseBeforeFree {
                drop(slot.permit.take());
            }
            self.ship(&chunk, draft.id, client).await?;
            items += chunk.items;
            bytes += chunk.bytes;
            idx += 1;
            drop(chunk);
        }
        self.finish(draft, &mut slot).await?;
        drop(claim);
        Ok(Served::Created { items, bytes })
    }

    /// Sends one chunk to the client and the draft at once.
    async fn ship(
        &self,
        chunk: &Chunk<'_>,
        draft: u64,
        client: &dyn Client,
    ) -> Result<(), GetError> {
        let (sent, written) = Join2::new(
            client.send(chunk.bytes),
            self.files.write(draft, chunk.bytes),
        )
        .await;
        if sent.is_err() {
            return Err(self.gone());
        }
        written.map_err(GetError::Files)
    }

    async fn finish(&self, mut draft: Draft<'_>, slot: &mut Slot<'_>) -> Result<(), GetError> {
        self.files.publish(draft.id).await?;
        draft.published = true;
        slot.finished = true;
        self.state.with(|s| s.stats.created += 1);
        Ok(())
    }

    /// The test-only regression: every chunk is produced before any is
    /// shipped, so the pending map grows with the file.
    async fn create_running_ahead(
        &self,
        key: &str,
        client: &dyn Client,
        mut slot: Slot<'_>,
        claim: Claim<'_>,
        draft: Draft<'_>,
    ) -> Result<Served, GetError> {
        let (mut items, mut bytes) = (0u64, 0u64);
        let mut chunks = Vec::new();
        for idx in 0u64.. {
            let mut chunk = self.reserve(slot.id, idx)?;
            self.fill(key, items, &mut chunk, client).await?;
            if chunk.items == 0 {
                break;
            }
            items += chunk.items;
            bytes += chunk.bytes;
            chunks.push(chunk);
        }
        for chunk in &chunks {
            self.ship(chunk, draft.id, client).await?;
        }
        drop(chunks);
        self.finish(draft, &mut slot).await?;
        drop(claim);
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

/// Polls two futures until both are ready (always `a` first: deterministic).
struct Join2<A: Future, B: Future> {
    a: Pin<Box<A>>,
    b: Pin<Box<B>>,
    ra: Option<A::Output>,
    rb: Option<B::Output>,
}

impl<A: Future, B: Future> Join2<A, B> {
    fn new(a: A, b: B) -> Self {
        Join2 {
            a: Box::pin(a),
            b: Box::pin(b),
            ra: None,
            rb: None,
        }
    }
}

impl<A: Future, B: Future> Unpin for Join2<A, B> {}

impl<A: Future, B: Future> Future for Join2<A, B> {
    type Output = (A::Output, B::Output);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.ra.is_none() {
            if let Poll::Ready(v) = this.a.as_mut().poll(cx) {
                this.ra = Some(v);
            }
        }
        if this.rb.is_none() {
            if let Poll::Ready(v) = this.b.as_mut().poll(cx) {
                this.rb = Some(v);
            }
        }
        match (this.ra.take(), this.rb.take()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            (a, b) => {
                this.ra = a;
                this.rb = b;
                Poll::Pending
            }
        }
    }
}
