//! The flusher: take the lease, drain the queue into one transaction,
//! release; and the pre-fix direct upsert.

use super::ledger::{Batch, CommitOutcome, Ledger, LedgerError};
use super::metrics::Metrics;
use super::queue::{Lease, StoreError};
use super::{add_rows, Item, RowKey, Rows, SpendConfig, SpendDeps, Variant};
use crate::probe::{self, FaultKind};

/// Why a flush did not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlushError {
    /// A queue-store operation failed (e.g. no connection available); the
    /// items stay where they were.
    Store(StoreError),
    /// The commit failed and was rolled back.
    Ledger(LedgerError),
    /// The process crashed (injected) at `stage`; the lease is not released.
    Crashed {
        /// Where: `"after-read"`, `"mid-commit"`, `"after-commit"`.
        stage: &'static str,
    },
    /// The batch's aggregate would overflow `u128`.
    Overflow(RowKey),
    /// The configured variant has no flusher ([`Variant::Direct`]).
    NoFlusher,
}

impl std::fmt::Display for FlushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlushError::Store(e) => write!(f, "flush: {e}"),
            FlushError::Ledger(e) => write!(f, "flush: {e}"),
            FlushError::Crashed { stage } => write!(f, "flusher crashed {stage}"),
            FlushError::Overflow(k) => write!(f, "flush: aggregate of {k:?} overflows"),
            FlushError::NoFlusher => f.write_str("the direct variant has no flusher"),
        }
    }
}

impl std::error::Error for FlushError {}

impl From<StoreError> for FlushError {
    fn from(e: StoreError) -> Self {
        FlushError::Store(e)
    }
}

/// What one flush attempt did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// The lease's fencing token; `None` when the lease was held by another.
    pub token: Option<u64>,
    /// Queue items committed (or skipped as duplicates) in this flush.
    pub items: usize,
    /// In-flight batches of earlier flushers recovered.
    pub recovered: usize,
}

/// One instance's flusher.
pub struct Flusher {
    cfg: SpendConfig,
    instance: u32,
    deps: SpendDeps,
}

impl Flusher {
    /// The flusher of instance `instance`.
    pub fn new(cfg: SpendConfig, instance: u32, deps: SpendDeps) -> Self {
        Flusher {
            cfg,
            instance,
            deps,
        }
    }

    /// One flush attempt as `owner`: take the lease (its TTL judged on this
    /// instance's clock, as the store compares the expiry it recorded with
    /// the caller's `now`), drain, commit, release.
    ///
    /// # Errors
    /// [`FlushError`]; what was drained is recovered as each variant allows
    /// (that is what the checks judge). On [`FlushError::Crashed`] the
    /// lease is left to expire.
    ///
    /// # Cancel safety
    /// Dropping it is a crash at the current await.
    pub async fn flush_once(&self, owner: &str) -> Result<FlushReport, FlushError> {
        if self.cfg.variant == Variant::Direct {
            return Err(FlushError::NoFlusher);
        }
        let d = &self.deps;
        let now_ms = d.clock.now_ms();
        let ttl = self.cfg.lease_ttl_ms;
        let acquire = d.store.lease_acquire(owner.to_string(), now_ms, ttl);
        let Some(lease) = d.pool.run(&d.metrics, acquire).await? else {
            tracing::debug!(owner, "lease refused: another instance holds it");
            return Ok(FlushReport::default());
        };
        tracing::info!(
            owner,
            token = lease.token,
            expires_ms = lease.expires_ms,
            "lease acquired by {owner}: token {}",
            lease.token
        );
        d.metrics.set_holder(Some(self.instance));
        let me = format!("{owner}#{}", lease.token);
        let out = match self.cfg.variant {
            Variant::Fixed => self.fixed(&me, &lease).await,
            _ => self.documented(&me, &lease).await,
        };
        if matches!(out, Err(FlushError::Crashed { .. })) {
            return out;
        }
        tracing::debug!(
            owner,
            token = lease.token,
            "lease released: token {}",
            lease.token
        );
        let release = d.store.lease_release(lease.token);
        let _ = d.pool.run(&d.metrics, release).await;
        d.metrics.clear_holder(self.instance);
        out.map(|mut r| {
            r.token = Some(lease.token);
            r
        })
    }

    async fn commit(&self, batch: Batch) -> Result<CommitOutcome, FlushError> {
        let m = &self.deps.metrics;
        let items = batch.items.len() as u64;
        let (token, batch_id) = (batch.fence.or(batch.lease), batch.batch_id);
        tracing::debug!(
            owner = batch.owner.as_str(),
            token,
            batch_id,
            items,
            "committing {items} items (token {token:?}, batch {batch_id:?})"
        );
        let committed = self.deps.ledger.commit(batch).await;
        tracing::info!(token, batch_id, items, outcome = ?committed, "commit of batch {batch_id:?} under token {token:?}: {committed:?}");
        match committed {
            Ok(CommitOutcome::Applied) => {
                Metrics::inc(&m.spend_flushes_total);
                Metrics::add(&m.spend_flush_items_total, items);
                Ok(CommitOutcome::Applied)
            }
            Ok(CommitOutcome::Duplicate) => {
                Metrics::inc(&m.spend_duplicate_batches_total);
                Ok(CommitOutcome::Duplicate)
            }
            Err(LedgerError::Crashed) => Err(FlushError::Crashed {
                stage: "mid-commit",
            }),
            Err(e) => {
                match e {
                    LedgerError::Fenced { .. } => Metrics::inc(&m.spend_fenced_commits_total),
                    LedgerError::Deadlock { .. } => Metrics::inc(&m.ledger_deadlocks_total),
                    _ => {}
                }
                Err(FlushError::Ledger(e))
            }
        }
    }

    /// The documented drain: read all (or pop), aggregate, commit, delete.
    async fn documented(&self, me: &str, lease: &Lease) -> Result<FlushReport, FlushError> {
        let d = &self.deps;
        let max = self.cfg.batch_items_max;
        let pop = self.cfg.variant == Variant::DocumentedPop;
        let items = if pop {
            d.pool.run(&d.metrics, d.store.pop(me.into(), max)).await?
        } else {
            d.pool.run(&d.metrics, d.store.read(max)).await?
        };
        if items.is_empty() {
            return Ok(FlushReport::default());
        }
        let mut batch = batch_of(me, &items, None, None)?;
        batch.lease = Some(lease.token);
        crash_point("spend.flush.after_read", "after-read")?;
        self.commit(batch).await?;
        crash_point("spend.flush.after_commit", "after-commit")?;
        if !pop {
            let n = items.len();
            d.pool.run(&d.metrics, d.store.trim(me.into(), n)).await?;
        }
        Ok(FlushReport {
            items: items.len(),
            ..Default::default()
        })
    }

    /// The fix: recover older in-flight batches, move items to our own
    /// in-flight list (batch id = our token), commit with batch id and
    /// fencing token, delete the list.
    async fn fixed(&self, me: &str, lease: &Lease) -> Result<FlushReport, FlushError> {
        let d = &self.deps;
        let token = lease.token;
        let mut report = FlushReport::default();
        let lists = d.store.inflight(self.cfg.recoveries_max);
        let lists = d.pool.run(&d.metrics, lists).await?;
        for (batch_id, items) in lists.into_iter().filter(|(b, _)| *b < token) {
            self.commit_list(me, token, batch_id, &items).await?;
            Metrics::inc(&d.metrics.spend_recovered_batches_total);
            report.recovered += 1;
        }
        let max = self.cfg.batch_items_max;
        let moved = d.store.move_to_inflight(me.into(), token, max);
        let items = d.pool.run(&d.metrics, moved).await?;
        if items.is_empty() {
            return Ok(report);
        }
        crash_point("spend.flush.after_read", "after-read")?;
        self.commit_list(me, token, token, &items).await?;
        report.items = items.len();
        Ok(report)
    }

    /// Commits in-flight list `batch_id` under fencing token `token`, then
    /// deletes the list (a crash in between leaves it to be recovered and
    /// skipped as a duplicate).
    async fn commit_list(
        &self,
        me: &str,
        token: u64,
        batch_id: u64,
        items: &[Item],
    ) -> Result<(), FlushError> {
        let d = &self.deps;
        let mut batch = batch_of(me, items, Some(batch_id), Some(token))?;
        batch.lease = Some(token);
        self.commit(batch).await?;
        crash_point("spend.flush.after_commit", "after-commit")?;
        let delete = d.store.delete_inflight(batch_id);
        d.pool.run(&d.metrics, delete).await?;
        Ok(())
    }
}

fn crash_point(site: &'static str, stage: &'static str) -> Result<(), FlushError> {
    if probe::buggify(site, FaultKind::Crash) {
        return Err(FlushError::Crashed { stage });
    }
    Ok(())
}

/// One batch of `items`, rows summed in row order.
fn batch_of(
    owner: &str,
    items: &[Item],
    batch_id: Option<u64>,
    fence: Option<u64>,
) -> Result<Batch, FlushError> {
    let mut rows = Rows::new();
    for i in items {
        add_rows(&mut rows, &i.rows).map_err(|o| FlushError::Overflow(o.row))?;
    }
    let mut batch = Batch::plain(owner, &rows);
    batch.batch_id = batch_id;
    batch.fence = fence;
    batch.items = items.iter().map(|i| i.id).collect();
    Ok(batch)
}

/// The pre-fix path: upserts `rows` straight into the ledger in this
/// instance's own order (a per-process hash order, like a `HashMap` with a
/// random seed: `order_seed`).
///
/// # Errors
/// [`LedgerError`], e.g. [`LedgerError::Deadlock`] when this transaction's
/// wait closed a cycle; nothing was applied.
pub async fn direct_upsert(
    ledger: &dyn Ledger,
    owner: &str,
    rows: &Rows,
    order_seed: u64,
) -> Result<CommitOutcome, LedgerError> {
    let mut batch = Batch::plain(owner, rows);
    batch.rows.sort_by_key(|(k, _)| row_hash(order_seed, k));
    ledger.commit(batch).await
}

fn row_hash(seed: u64, k: &RowKey) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64 ^ seed;
    for b in k.entity.name().bytes().chain([0]).chain(k.id.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}
