//! One creation's pipeline, after the incident's
//! `writeTransactionsViaSubtreeStoreStreaming`: a producer fetches chunks
//! from upstream (up to `fetch_concurrency` at once, within the read-ahead
//! window), fetched chunks queue for the writer (the results channel), the
//! writer moves them into the pending (reorder) map and writes them in
//! order through the multi-writer (file store, then client), a block at a
//! time, checking every `cancel_check_items` items that the client is still
//! there (`writeChunkToWriter`).
//!
//! Everything runs inside the request's future (no task is spawned), driven
//! by one poll function, so a dropped request drops every chunk it holds.

use super::service::{AssetService, Slot};
use super::{Client, FileError, Flaw, GetError, CANCEL_CHECK_ITEMS};
use crate::probe::{self, MemCharge};
use crate::BoxFuture;
use std::collections::{BTreeMap, VecDeque};
use std::future::poll_fn;
use std::task::{Context, Poll};

/// One chunk in memory: its items' sizes and its charge to the meter.
struct Chunk<'a> {
    svc: &'a AssetService,
    idx: u64,
    sizes: Vec<u64>,
    bytes: u64,
    _charge: MemCharge,
}

impl<'a> Chunk<'a> {
    fn new(svc: &'a AssetService, idx: u64, sizes: Vec<u64>) -> Self {
        let bytes: u64 = sizes.iter().sum();
        let charge = probe::charge("admission.chunk", bytes);
        svc.state.with(|s| {
            let st = &mut s.stats;
            st.chunks_held_now += 1;
            st.chunks_held_peak = st.chunks_held_peak.max(st.chunks_held_now);
            st.chunk_bytes_now += bytes;
            st.chunk_bytes_peak = st.chunk_bytes_peak.max(st.chunk_bytes_now);
        });
        Chunk {
            svc,
            idx,
            sizes,
            bytes,
            _charge: charge,
        }
    }
}

impl Drop for Chunk<'_> {
    fn drop(&mut self) {
        let bytes = self.bytes;
        self.svc.state.with(|s| {
            s.stats.chunks_held_now -= 1;
            s.stats.chunk_bytes_now -= bytes;
        });
    }
}

/// A chunk fetch in flight (counted in `fetches_now` while it lives).
struct Fetch<'a> {
    svc: &'a AssetService,
    idx: u64,
    fut: BoxFuture<Result<Vec<u64>, String>>,
}

impl Drop for Fetch<'_> {
    fn drop(&mut self) {
        self.svc.state.with(|s| s.stats.fetches_now -= 1);
    }
}

/// Where the writer is in its current block.
enum Step {
    /// About to start the next block.
    Next,
    /// Writing `n` items (`bytes`) to the file store.
    File(BoxFuture<Result<(), FileError>>, usize, u64),
    /// Sending `n` items to the client.
    Client(BoxFuture<Result<(), super::ClientGone>>, usize),
}

/// The chunk being written.
struct Writing<'a> {
    chunk: Chunk<'a>,
    offset: usize,
    step: Step,
}

struct Pipeline<'a, 's> {
    svc: &'a AssetService,
    key: &'a str,
    client: &'a dyn Client,
    draft: u64,
    slot: &'s mut Slot<'a>,
    fetching: Vec<Fetch<'a>>,
    /// Fetched, not yet taken by the writer (the results channel).
    queue: VecDeque<Chunk<'a>>,
    /// Taken by the writer, waiting for their turn (the reorder map).
    pending: BTreeMap<u64, Chunk<'a>>,
    writing: Option<Writing<'a>>,
    next_fetch: u64,
    next_write: u64,
    /// The index of the first chunk past the file's end, once known.
    end: Option<u64>,
    /// The client left: no more fetches.
    stopped: bool,
    items: u64,
    bytes: u64,
}

/// Runs creation `slot` of `key`: every chunk fetched, written to `draft`
/// and sent to `client`. Returns the items and bytes written.
///
/// # Errors
/// As [`AssetService::get`] for a creation.
pub(super) async fn run<'a>(
    svc: &'a AssetService,
    key: &'a str,
    client: &'a dyn Client,
    draft: u64,
    slot: &mut Slot<'a>,
) -> Result<(u64, u64), GetError> {
    let mut p = Pipeline {
        svc,
        key,
        client,
        draft,
        slot,
        fetching: Vec::new(),
        queue: VecDeque::new(),
        pending: BTreeMap::new(),
        writing: None,
        next_fetch: 0,
        next_write: 0,
        end: None,
        stopped: false,
        items: 0,
        bytes: 0,
    };
    poll_fn(|cx| p.poll(cx)).await
}

/// `?` for a `Result` inside a poll function.
macro_rules! ready_err {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Poll::Ready(Err(e)),
        }
    };
}

impl<'a> Pipeline<'a, '_> {
    fn runs_ahead(&self) -> bool {
        matches!(
            self.svc.cfg.flaw,
            Flaw::ProducerRunsAhead | Flaw::ProducerRunsAheadUncapped
        )
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(u64, u64), GetError>> {
        loop {
            let mut progress = self.launch();
            progress |= ready_err!(self.poll_fetches(cx));
            progress |= ready_err!(self.collect());
            if let Some(w) = &mut self.writing {
                match poll_write(self.svc, self.client, self.draft, w, cx) {
                    Poll::Ready(Ok(())) => {
                        self.items += w.chunk.sizes.len() as u64;
                        self.bytes += w.chunk.bytes;
                        self.writing = None;
                        self.next_write += 1;
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            let idle = self.writing.is_none() && self.queue.is_empty() && self.pending.is_empty();
            if idle && self.end.is_some_and(|e| self.next_write >= e) {
                return Poll::Ready(Ok((self.items, self.bytes)));
            }
            if idle && self.stopped && self.fetching.is_empty() {
                // The producer's context was cancelled: its error surfaces
                // once the writer has nothing left.
                return Poll::Ready(Err(self.svc.gone()));
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }

    /// Starts fetches while a fetch slot is free, the window has room and
    /// the file's end is not reached; none once the client left.
    fn launch(&mut self) -> bool {
        let cfg = self.svc.cfg;
        let window = if self.runs_ahead() {
            u64::MAX
        } else {
            cfg.window_chunks() as u64
        };
        let chunk_items = cfg.chunk_items.max(1);
        let mut launched = false;
        while !self.stopped
            && self.fetching.len() < cfg.fetch_concurrency.max(1)
            && self.end.is_none_or(|e| self.next_fetch < e)
            && self.next_fetch - self.next_write < window
        {
            if self.client.is_gone() {
                self.stopped = true;
                break;
            }
            let idx = self.next_fetch;
            let fut = self
                .svc
                .upstream
                .read_items(self.key, idx * chunk_items as u64, chunk_items);
            self.svc.state.with(|s| {
                s.stats.fetches_now += 1;
                s.stats.fetches_peak = s.stats.fetches_peak.max(s.stats.fetches_now);
            });
            self.fetching.push(Fetch {
                svc: self.svc,
                idx,
                fut,
            });
            self.next_fetch += 1;
            launched = true;
        }
        launched
    }

    /// Polls every fetch in flight; a fetched chunk joins the queue (a
    /// short one marks the file's end).
    fn poll_fetches(&mut self, cx: &mut Context<'_>) -> Result<bool, GetError> {
        let chunk_items = self.svc.cfg.chunk_items.max(1);
        let mut progress = false;
        let mut i = 0;
        while i < self.fetching.len() {
            let Poll::Ready(r) = self.fetching[i].fut.as_mut().poll(cx) else {
                i += 1;
                continue;
            };
            let fetch = self.fetching.remove(i);
            progress = true;
            let sizes = r.map_err(GetError::Upstream)?;
            if sizes.len() < chunk_items {
                let end = fetch.idx + u64::from(!sizes.is_empty());
                self.end = Some(self.end.map_or(end, |e| e.min(end)));
            }
            if !sizes.is_empty() {
                self.queue.push_back(Chunk::new(self.svc, fetch.idx, sizes));
            }
        }
        Ok(progress)
    }

    /// The writer's side: the next chunk in order starts being written;
    /// otherwise a queued chunk moves into the pending map (capped). The
    /// regression drains the queue even while a chunk is being written.
    fn collect(&mut self) -> Result<bool, GetError> {
        let cfg = self.svc.cfg;
        let capped = cfg.pending_chunks_max > 0 && cfg.flaw != Flaw::ProducerRunsAheadUncapped;
        let mut progress = false;
        loop {
            if self.writing.is_none() {
                if let Some(chunk) = self.pending.remove(&self.next_write) {
                    if cfg.flaw == Flaw::ReleaseBeforeFree {
                        drop(self.slot.permit.take());
                    }
                    self.writing = Some(Writing {
                        chunk,
                        offset: 0,
                        step: Step::Next,
                    });
                    progress = true;
                    continue;
                }
            }
            if self.writing.is_some() && !self.runs_ahead() {
                return Ok(progress);
            }
            let Some(chunk) = self.queue.pop_front() else {
                return Ok(progress);
            };
            if capped && self.pending.len() >= cfg.pending_chunks_max {
                return Err(GetError::PendingChunksExceeded {
                    pending: self.pending.len() + 1,
                    pending_chunks_max: cfg.pending_chunks_max,
                });
            }
            self.pending.insert(chunk.idx, chunk);
            let len = self.pending.len();
            self.svc
                .state
                .with(|s| s.stats.pending_peak = s.stats.pending_peak.max(len));
            progress = true;
        }
    }
}

/// Items per block and whether the client is checked before the block at
/// `offset` of a chunk.
fn cadence(svc: &AssetService, offset: usize) -> (usize, bool) {
    let every = match svc.cfg.flaw {
        Flaw::CancelCheckOffByOne => CANCEL_CHECK_ITEMS + 1,
        _ => svc.cfg.cancel_check_items,
    };
    if every == 0 {
        return (CANCEL_CHECK_ITEMS, false);
    }
    let check = match svc.cfg.flaw {
        Flaw::CancelCheckPerChunk => offset == 0,
        _ => offset.is_multiple_of(every),
    };
    (every, check)
}

/// Writes `w`'s chunk block by block: the file store, then the client (a
/// multi-writer), checking the client per [`cadence`]. Ready when the
/// chunk is written.
fn poll_write(
    svc: &AssetService,
    client: &dyn Client,
    draft: u64,
    w: &mut Writing<'_>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), GetError>> {
    loop {
        match &mut w.step {
            Step::Next => {
                let len = w.chunk.sizes.len();
                if w.offset >= len {
                    return Poll::Ready(Ok(()));
                }
                let (block, check) = cadence(svc, w.offset);
                if check && client.is_gone() {
                    return Poll::Ready(Err(svc.gone()));
                }
                let n = block.min(len - w.offset);
                let bytes: u64 = w.chunk.sizes[w.offset..w.offset + n].iter().sum();
                w.step = Step::File(svc.files.write(draft, bytes), n, bytes);
            }
            Step::File(fut, n, bytes) => match fut.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(GetError::Files(e))),
                Poll::Ready(Ok(())) => {
                    let (n, bytes) = (*n, *bytes);
                    w.step = Step::Client(client.send(bytes), n);
                }
            },
            Step::Client(fut, n) => match fut.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(Err(svc.gone())),
                Poll::Ready(Ok(())) => {
                    let n = *n;
                    w.offset += n;
                    svc.state.with(|s| s.stats.items_written += n as u64);
                    w.step = Step::Next;
                }
            },
        }
    }
}
