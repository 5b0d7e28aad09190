//! The in-memory ledger: row locks taken per row in statement order, held
//! to the end of the transaction, and a wait-for graph so a deadlock is
//! detected (the waiter that closes a cycle is the victim), not hung.

use super::ledger::{Batch, CommitOutcome, Ledger, LedgerError};
use super::{ItemId, RowKey, Rows};
use crate::clock::Clock;
use crate::probe::{self, FaultKind};
use crate::sched::Scheduler;
use crate::sync::{Arc, DynArc, Mutex};
use crate::BoxFuture;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Longest injected stall of a commit (a slow disk, a long GC): longer than
/// a lease, so a flusher can lose its lease mid-commit.
pub const STATEMENT_LATENCY_MS_MAX: u64 = 3_000;

/// Commit records and deadlock reports kept at most (later ones are
/// dropped; the totals stay exact).
pub const RECORDS_MAX: usize = 100_000;

/// One commit, for diagnostics and oracles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitRecord {
    /// Transaction id.
    pub txn: u64,
    /// The committer.
    pub owner: String,
    /// Its batch id.
    pub batch_id: Option<u64>,
    /// Its fencing token.
    pub fence: Option<u64>,
    /// The lease its committer held (diagnostics).
    pub lease: Option<u64>,
    /// When it committed, ms on the ledger's clock.
    pub at_ms: u64,
    /// Items it carried.
    pub items: Vec<ItemId>,
    /// Applied or skipped as a duplicate.
    pub outcome: CommitOutcome,
}

#[derive(Default)]
struct LState {
    totals: Rows,
    batches: BTreeSet<u64>,
    fence: u64,
    locks: BTreeMap<RowKey, u64>,
    owners: BTreeMap<u64, String>,
    waits: BTreeMap<u64, (RowKey, Waker)>,
    next_txn: u64,
    deadlocks: Vec<String>,
    commits: Vec<CommitRecord>,
    /// Test-only flaw: the commit point skips the fencing check.
    ignore_fences: bool,
    /// Test-only flaw: the commit point skips the batch-id check.
    ignore_batch_ids: bool,
}

impl LState {
    /// The cycle `txn` would close by waiting for `key`, if any.
    fn cycle_through(&self, txn: u64, key: &RowKey) -> Option<String> {
        let name = |t: u64| format!("txn {t} ({})", self.owners.get(&t).map_or("?", |o| o));
        let mut path = vec![name(txn)];
        let mut cur = *self.locks.get(key)?;
        for _ in 0..=self.waits.len() {
            path.push(name(cur));
            if cur == txn {
                return Some(path.join(" -> "));
            }
            let (wanted, _) = self.waits.get(&cur)?;
            cur = *self.locks.get(wanted)?;
        }
        None
    }
}

/// The in-memory ledger; clones share it (the durable database).
#[derive(Clone)]
pub struct MemLedger {
    state: Arc<Mutex<LState>>,
    clock: DynArc<dyn Clock>,
    sched: DynArc<dyn Scheduler>,
    statement_ms: u64,
    detect_deadlocks: bool,
}

impl MemLedger {
    /// An empty ledger. Each statement yields once and then waits
    /// `statement_ms` on `clock` (0: no timed wait, for model checks with a
    /// manual clock).
    pub fn new(clock: DynArc<dyn Clock>, sched: DynArc<dyn Scheduler>, statement_ms: u64) -> Self {
        MemLedger {
            state: Arc::new(Mutex::new(LState::default())),
            clock,
            sched,
            statement_ms,
            detect_deadlocks: true,
        }
    }

    /// Test-only: a ledger whose lock waits never look for a cycle, so a
    /// deadlock hangs (what the wait-for graph exists to prevent; the
    /// checks must see the difference). Never use outside tests.
    #[doc(hidden)]
    pub fn without_deadlock_detection(mut self) -> Self {
        self.detect_deadlocks = false;
        self
    }

    /// Test-only flaw (a planted twin for `tests/spend_layers.rs`): layer
    /// "fencing token checked at commit" removed; a commit whose token is
    /// older than one already committed is applied. Never use outside
    /// tests.
    #[doc(hidden)]
    pub fn ignoring_fences(self) -> Self {
        self.state.with(|s| s.ignore_fences = true);
        self
    }

    /// Test-only flaw (a planted twin for `tests/spend_layers.rs`): layer
    /// "idempotent batch ids" removed; a batch whose id is already recorded
    /// is applied again. Never use outside tests.
    #[doc(hidden)]
    pub fn ignoring_batch_ids(self) -> Self {
        self.state.with(|s| s.ignore_batch_ids = true);
        self
    }

    /// Every row's total, without waiting.
    pub fn totals_now(&self) -> Rows {
        self.state.with(|s| s.totals.clone())
    }

    /// Deadlocks detected so far (one line per cycle).
    pub fn deadlocks(&self) -> Vec<String> {
        self.state.with(|s| s.deadlocks.clone())
    }

    /// Every commit so far, in commit order.
    pub fn commits(&self) -> Vec<CommitRecord> {
        self.state.with(|s| s.commits.clone())
    }

    /// Row locks held now.
    pub fn locks_held(&self) -> usize {
        self.state.with(|s| s.locks.len())
    }

    fn begin(&self, owner: &str) -> Txn {
        let id = self.state.with(|s| {
            s.next_txn += 1;
            s.owners.insert(s.next_txn, owner.to_string());
            s.next_txn
        });
        // The deadlock oracle names transactions (`txn 4 (i3)`): say which
        // task runs each.
        tracing::debug!(txn = id, owner, "txn {id} begins for {owner}");
        Txn {
            ledger: self.clone(),
            id,
            held: Vec::new(),
        }
    }

    async fn statement_wait(&self) {
        self.sched.yield_now().await;
        if self.statement_ms > 0 {
            let ms = 1 + probe::draw(self.statement_ms);
            self.clock.sleep(Duration::from_millis(ms)).await;
        }
    }

    async fn commit_batch(self, batch: Batch) -> Result<CommitOutcome, LedgerError> {
        let mut txn = self.begin(&batch.owner);
        for (key, _) in &batch.rows {
            txn.lock(key.clone()).await?;
            self.statement_wait().await;
        }
        if probe::buggify("spend.ledger.commit", FaultKind::Latency) {
            let ms = 1 + probe::draw(STATEMENT_LATENCY_MS_MAX);
            self.clock.sleep(Duration::from_millis(ms)).await;
        }
        if probe::buggify("spend.ledger.commit", FaultKind::Crash) {
            return Err(LedgerError::Crashed); // `txn` drops: rollback
        }
        let at_ms = self.clock.now_ms();
        let out = self.state.with(|s| apply(s, txn.id, at_ms, &batch));
        drop(txn);
        out
    }
}

/// The commit point: fence and idempotency checks and the writes, atomic.
fn apply(
    s: &mut LState,
    txn: u64,
    at_ms: u64,
    batch: &Batch,
) -> Result<CommitOutcome, LedgerError> {
    if let Some(token) = batch.fence.filter(|_| !s.ignore_fences) {
        if token < s.fence {
            return Err(LedgerError::Fenced {
                token,
                fence: s.fence,
            });
        }
    }
    let mut record = CommitRecord {
        txn,
        owner: batch.owner.clone(),
        batch_id: batch.batch_id,
        fence: batch.fence,
        lease: batch.lease,
        at_ms,
        items: batch.items.clone(),
        outcome: CommitOutcome::Duplicate,
    };
    if !s.ignore_batch_ids && batch.batch_id.is_some_and(|b| s.batches.contains(&b)) {
        record_commit(s, record);
        return Ok(CommitOutcome::Duplicate);
    }
    let mut totals = s.totals.clone();
    for (k, v) in &batch.rows {
        let t = totals.entry(k.clone()).or_insert(0);
        *t = t
            .checked_add(*v)
            .ok_or_else(|| LedgerError::Overflow(k.clone()))?;
    }
    s.totals = totals;
    if let Some(b) = batch.batch_id {
        s.batches.insert(b);
    }
    if let Some(token) = batch.fence {
        s.fence = s.fence.max(token);
    }
    record.outcome = CommitOutcome::Applied;
    record_commit(s, record);
    Ok(CommitOutcome::Applied)
}

fn record_commit(s: &mut LState, record: CommitRecord) {
    if s.commits.len() < RECORDS_MAX {
        s.commits.push(record);
    }
}

/// An open transaction; dropping it rolls back (releases its row locks).
struct Txn {
    ledger: MemLedger,
    id: u64,
    held: Vec<RowKey>,
}

impl Txn {
    async fn lock(&mut self, key: RowKey) -> Result<(), LedgerError> {
        LockRow {
            ledger: self.ledger.clone(),
            txn: self.id,
            key: key.clone(),
        }
        .await?;
        if !self.held.contains(&key) {
            self.held.push(key);
        }
        Ok(())
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        let (id, held) = (self.id, std::mem::take(&mut self.held));
        let wake: Vec<Waker> = self.ledger.state.with(|s| {
            for k in &held {
                if s.locks.get(k) == Some(&id) {
                    s.locks.remove(k);
                }
            }
            s.waits.remove(&id);
            s.owners.remove(&id);
            s.waits
                .values()
                .filter(|(k, _)| held.contains(k))
                .map(|(_, w)| w.clone())
                .collect()
        });
        wake.into_iter().for_each(Waker::wake);
    }
}

/// Waits for one row lock; fails at once when waiting would close a cycle.
struct LockRow {
    ledger: MemLedger,
    txn: u64,
    key: RowKey,
}

impl Future for LockRow {
    type Output = Result<(), LedgerError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (txn, key, detect) = (self.txn, &self.key, self.ledger.detect_deadlocks);
        let mut waits_on = None;
        let polled = self.ledger.state.with(|s| match s.locks.get(key).copied() {
            None => {
                s.locks.insert(key.clone(), txn);
                s.waits.remove(&txn);
                Poll::Ready(Ok(()))
            }
            Some(h) if h == txn => Poll::Ready(Ok(())),
            Some(_) => {
                if let Some(cycle) = s.cycle_through(txn, key).filter(|_| detect) {
                    waits_on = s.locks.get(key).map(|&h| (h, true));
                    s.waits.remove(&txn);
                    if s.deadlocks.len() < RECORDS_MAX {
                        s.deadlocks.push(cycle.clone());
                    }
                    return Poll::Ready(Err(LedgerError::Deadlock { cycle }));
                }
                if s.waits
                    .insert(txn, (key.clone(), cx.waker().clone()))
                    .is_none()
                {
                    waits_on = s.locks.get(key).map(|&h| (h, false));
                }
                Poll::Pending
            }
        });
        match waits_on {
            Some((holder, false)) => {
                tracing::debug!(txn, holder, "txn {txn} waits for txn {holder}");
            }
            Some((holder, true)) => tracing::warn!(
                txn,
                holder,
                "txn {txn} would wait for txn {holder}: a cycle (deadlock)"
            ),
            None => {}
        }
        polled
    }
}

impl Drop for LockRow {
    fn drop(&mut self) {
        let (txn, key) = (self.txn, &self.key);
        self.ledger.state.with(|s| {
            if s.waits.get(&txn).is_some_and(|(k, _)| k == key) {
                s.waits.remove(&txn);
            }
        });
    }
}

impl Ledger for MemLedger {
    fn commit(&self, batch: Batch) -> BoxFuture<Result<CommitOutcome, LedgerError>> {
        Box::pin(self.clone().commit_batch(batch))
    }

    fn totals(&self) -> BoxFuture<Result<Rows, LedgerError>> {
        let me = self.clone();
        Box::pin(async move {
            me.sched.yield_now().await;
            Ok(me.totals_now())
        })
    }
}
