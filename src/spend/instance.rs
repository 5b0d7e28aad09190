//! One proxy instance: its in-memory aggregates, its pushes to the shared
//! queue (pre-fix: straight into the ledger) and its flusher.

use super::buffer::{Refused, SpendBuffer};
use super::flusher::{direct_upsert, FlushError, FlushReport, Flusher};
use super::ledger::LedgerError;
use super::metrics::Metrics;
use super::queue::StoreError;
use super::{Increment, Item, ItemId, SpendConfig, SpendDeps, Variant};
use crate::sync::{AtomicU64, Mutex, Ordering};

/// Why a push did not happen. Nothing is lost: the aggregates it carried
/// are back in the instance's memory, to be pushed again later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushError {
    /// The queue store refused or failed (e.g.
    /// [`StoreError::NoConnection`] when the pool is exhausted).
    Store(StoreError),
    /// Pre-fix only: the direct upsert failed (e.g. chosen as a deadlock
    /// victim) and was rolled back.
    Ledger(LedgerError),
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::Store(e) => write!(f, "push: {e}"),
            PushError::Ledger(e) => write!(f, "direct upsert: {e}"),
        }
    }
}

impl std::error::Error for PushError {}

/// One proxy instance of a deployment.
pub struct SpendInstance {
    cfg: SpendConfig,
    id: u32,
    boot: u32,
    name: String,
    next_seq: AtomicU64,
    buffer: Mutex<SpendBuffer>,
    deps: SpendDeps,
    flusher: Flusher,
    forget_refused: bool,
}

impl SpendInstance {
    /// Instance `id` in its `boot`-th life (0 first; the boot number keeps
    /// item ids unique across restarts).
    pub fn new(cfg: SpendConfig, id: u32, boot: u32, deps: SpendDeps) -> Self {
        SpendInstance {
            cfg,
            id,
            boot,
            name: format!("i{id}"),
            next_seq: AtomicU64::new(0),
            buffer: Mutex::new(SpendBuffer::new(cfg.buffer_rows_max)),
            flusher: Flusher::new(cfg, id, deps.clone()),
            deps,
            forget_refused: false,
        }
    }

    /// Test-only flaw: a push the queue store refuses (e.g. "no connection
    /// available") forgets the aggregates it carried, as a client that logs
    /// the exception and moves on does (incident 002: "Got exception from
    /// REDIS No connection available., Writing value=21"). The no-loss
    /// checks must see the difference. Never use outside tests.
    #[doc(hidden)]
    pub fn forgetting_refused_pushes(mut self) -> Self {
        self.forget_refused = true;
        self
    }

    /// Its id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Its name as a lease owner, `"i<id>"`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Records one request's spend in memory.
    ///
    /// # Errors
    /// [`Refused`] with the increment when the buffer is full (see
    /// [`SpendConfig::buffer_rows_max`]) or a row would overflow.
    pub fn record(&self, inc: Increment) -> Result<(), Refused> {
        let (r, rows) = self.buffer.with(|b| (b.add(inc), b.len()));
        self.deps.metrics.set_in_memory(self.id, rows as u64);
        r
    }

    /// Rows held in memory (the in-memory queue size).
    pub fn held(&self) -> usize {
        self.buffer.with(|b| b.len())
    }

    /// Pushes everything held in memory as one queue item (pre-fix: upserts
    /// it straight into the ledger). Returns the item, or `None` when
    /// nothing was held (or another push of this instance is under way).
    ///
    /// # Errors
    /// [`PushError`]; the aggregates stay in memory.
    ///
    /// # Cancel safety
    /// Dropped mid-push, the aggregates stay in memory; if the store had
    /// applied the push by then, they are pushed twice (no store tells a
    /// client whose connection died what happened). The simulator drops it
    /// only with a crash, which takes the memory too.
    pub async fn push(&self) -> Result<Option<Item>, PushError> {
        let Some(rows) = self.buffer.with(SpendBuffer::begin_push) else {
            return Ok(None);
        };
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let item = Item {
            id: ItemId {
                instance: self.id,
                seq: (u64::from(self.boot) << 32) | seq,
            },
            rows,
        };
        let mut pending = PendingPush {
            inst: self,
            rows: Some(item.rows.clone()),
            applied: false,
        };
        let d = &self.deps;
        let r = match self.cfg.variant {
            Variant::Direct => {
                let seed = u64::from(self.id) << 32 | u64::from(self.boot);
                let up = direct_upsert(&*d.ledger, &self.name, &item.rows, seed).await;
                if let Err(LedgerError::Deadlock { .. }) = &up {
                    Metrics::inc(&d.metrics.ledger_deadlocks_total);
                }
                up.map(drop).map_err(PushError::Ledger)
            }
            _ => {
                let push = d.store.push(item.clone());
                d.pool.run(&d.metrics, push).await.map_err(PushError::Store)
            }
        };
        pending.applied =
            r.is_ok() || (self.forget_refused && matches!(r, Err(PushError::Store(_))));
        drop(pending);
        r.map(|()| {
            Metrics::inc(&d.metrics.spend_update_pushes_total);
            Some(item)
        })
    }

    /// One flush attempt (see [`Flusher::flush_once`]).
    ///
    /// # Errors
    /// [`FlushError`], e.g. [`FlushError::NoFlusher`] pre-fix.
    ///
    /// # Cancel safety
    /// Dropping it is a crash at the current await.
    pub async fn flush(&self) -> Result<FlushReport, FlushError> {
        self.flusher.flush_once(&self.name).await
    }
}

/// A push under way: ends it on the buffer however the push ends.
struct PendingPush<'a> {
    inst: &'a SpendInstance,
    rows: Option<super::Rows>,
    applied: bool,
}

impl Drop for PendingPush<'_> {
    fn drop(&mut self) {
        let rows = self.rows.take().unwrap_or_default();
        let applied = self.applied;
        let held = self.inst.buffer.with(|b| {
            b.end_push(&rows, applied);
            b.len()
        });
        self.inst
            .deps
            .metrics
            .set_in_memory(self.inst.id, held as u64);
    }
}

impl Drop for SpendInstance {
    /// A crashed or stopped instance holds nothing in memory any more.
    fn drop(&mut self) {
        self.deps.metrics.set_in_memory(self.id, 0);
    }
}

impl std::fmt::Debug for SpendInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpendInstance")
            .field("id", &self.id)
            .field("boot", &self.boot)
            .field("held", &self.held())
            .finish()
    }
}
