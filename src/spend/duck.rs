//! The real ledger on a DuckDB file: a `spend` table whose rows are added
//! to in **one transaction per batch**, a `flushed_batches` table that makes
//! a batch id idempotent (recorded in the same transaction, so a replayed
//! batch is skipped), and a one-row `spend_fence` table holding the newest
//! fencing token committed (checked and raised in the same transaction).
//!
//! Every blocking DuckDB call runs through `Scheduler::spawn_blocking`
//! ([`run_blocking`]). DuckDB has optimistic concurrency, not row locks: two
//! transactions writing one row do not wait for each other, one of them
//! fails with a conflict ([`LedgerError::Conflict`], rolled back, retry
//! later), so this backend cannot deadlock. Two commits that both carry a
//! fence both write the fence row, so fenced commits serialize.
//! Totals are `UHUGEINT` (`u128`); DuckDB checks the addition and an
//! overflow rolls the batch back ([`LedgerError::Overflow`]).

use super::ledger::{Batch, CommitOutcome, Ledger, LedgerError};
use super::{Entity, RowKey, Rows};
use crate::sched::{run_blocking, Scheduler};
use crate::sync::{Arc, DynArc, Mutex};
use crate::BoxFuture;
use duckdb::{params, Connection};
use std::path::Path;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS spend (
        entity VARCHAR NOT NULL, id VARCHAR NOT NULL, total UHUGEINT NOT NULL,
        PRIMARY KEY (entity, id));
    CREATE TABLE IF NOT EXISTS flushed_batches (
        batch_id UBIGINT PRIMARY KEY, owner VARCHAR NOT NULL, fence UBIGINT);
    CREATE TABLE IF NOT EXISTS spend_fence (
        id INTEGER PRIMARY KEY, token UBIGINT NOT NULL);";

const UPSERT: &str = "INSERT INTO spend VALUES (?, ?, ?) \
    ON CONFLICT (entity, id) DO UPDATE SET total = total + excluded.total";

/// A hook called inside the commit after each row statement with the
/// number of rows written so far (test seam: a crash injected
/// mid-transaction). An error aborts the commit there.
pub type MidCommit = DynArc<dyn Fn(usize) -> Result<(), LedgerError> + Send + Sync>;

/// The spend ledger on one DuckDB file; clones share one database instance.
#[derive(Clone)]
pub struct DuckLedger {
    root: Arc<Mutex<Connection>>,
    sched: DynArc<dyn Scheduler>,
    transactional: bool,
    seam: Option<MidCommit>,
}

fn io(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Io(e.to_string())
}

/// DuckDB's error for a statement on `row`, as a ledger error. Measured
/// with DuckDB 1.2 (duckdb-rs 1.20000.1): a concurrent writer of an
/// existing row fails with a write-write "Conflict"; two transactions that
/// both insert a new row (or one batch id) fail the second with
/// "Duplicate key ... violates primary key constraint". Both are conflicts.
fn classify(e: &duckdb::Error, row: Option<&RowKey>) -> LedgerError {
    let msg = e.to_string();
    if msg.contains("onflict") || msg.contains("Duplicate key") {
        return LedgerError::Conflict(msg);
    }
    match row {
        Some(k) if msg.contains("Overflow") || msg.contains("overflow") => {
            LedgerError::Overflow(k.clone())
        }
        _ => LedgerError::Io(msg),
    }
}

impl DuckLedger {
    /// Opens (creating if needed) the ledger file at `path`; blocking calls
    /// go through `sched`.
    ///
    /// # Errors
    /// [`LedgerError::Io`] when the file cannot be opened or the schema
    /// cannot be created.
    pub fn open(path: &Path, sched: DynArc<dyn Scheduler>) -> Result<Self, LedgerError> {
        let conn = Connection::open(path).map_err(io)?;
        conn.execute_batch(SCHEMA).map_err(io)?;
        Ok(DuckLedger {
            root: Arc::new(Mutex::new(conn)),
            sched,
            transactional: true,
            seam: None,
        })
    }

    /// Test seam: calls `hook` inside every commit after each row
    /// statement. Never use outside tests.
    #[doc(hidden)]
    pub fn with_mid_commit_hook(mut self, hook: MidCommit) -> Self {
        self.seam = Some(hook);
        self
    }

    /// Test-only flaw: every statement commits on its own (no transaction
    /// around the batch), so a crash mid-batch leaves part of it. The
    /// atomicity check must see the difference. Never use outside tests.
    #[doc(hidden)]
    pub fn without_transaction(mut self) -> Self {
        self.transactional = false;
        self
    }

    /// Batch ids recorded as flushed, ascending.
    ///
    /// # Errors
    /// [`LedgerError::Io`].
    pub fn flushed_batches(&self) -> BoxFuture<Result<Vec<u64>, LedgerError>> {
        self.blocking("duckdb.flushed_batches", |conn| {
            let mut stmt = conn
                .prepare("SELECT batch_id FROM flushed_batches ORDER BY batch_id")
                .map_err(io)?;
            let ids = stmt.query_map([], |r| r.get(0)).map_err(io)?;
            ids.map(|r| r.map_err(io)).collect()
        })
    }

    /// Runs `work` on a connection to this ledger's database instance, off
    /// the event loop.
    fn blocking<T: Send + 'static>(
        &self,
        name: &'static str,
        work: impl FnOnce(&mut Connection) -> Result<T, LedgerError> + Send + 'static,
    ) -> BoxFuture<Result<T, LedgerError>> {
        let sched = DynArc::clone(&self.sched);
        let root = Arc::clone(&self.root);
        Box::pin(async move {
            let run = move || {
                let mut conn = root.with(|c| c.try_clone()).map_err(io)?;
                work(&mut conn)
            };
            match run_blocking(&*sched, name, run).await {
                Ok(r) => r,
                // The blocking thread died mid-transaction: DuckDB rolled
                // the open transaction back when its handle dropped.
                Err(_) => Err(LedgerError::Crashed),
            }
        })
    }
}

/// The commit itself, on `conn` (a transaction, or with the test flaw a
/// plain connection in autocommit mode).
fn apply(
    conn: &Connection,
    batch: &Batch,
    seam: Option<&MidCommit>,
) -> Result<CommitOutcome, LedgerError> {
    if let Some(token) = batch.fence {
        let fence: Option<u64> = conn
            .query_row("SELECT max(token) FROM spend_fence", [], |r| r.get(0))
            .map_err(|e| classify(&e, None))?;
        if let Some(fence) = fence.filter(|f| token < *f) {
            return Err(LedgerError::Fenced { token, fence });
        }
    }
    if let Some(b) = batch.batch_id {
        let seen: u64 = conn
            .query_row(
                "SELECT count(*) FROM flushed_batches WHERE batch_id = ?",
                [b],
                |r| r.get(0),
            )
            .map_err(|e| classify(&e, None))?;
        if seen > 0 {
            return Ok(CommitOutcome::Duplicate);
        }
    }
    let mut upsert = conn.prepare_cached(UPSERT).map_err(io)?;
    for (i, (k, v)) in batch.rows.iter().enumerate() {
        upsert
            .execute(params![k.entity.name(), k.id.as_str(), *v])
            .map_err(|e| classify(&e, Some(k)))?;
        if let Some(hook) = seam {
            hook(i + 1)?;
        }
    }
    if let Some(b) = batch.batch_id {
        conn.execute(
            "INSERT INTO flushed_batches VALUES (?, ?, ?)",
            params![b, batch.owner.as_str(), batch.fence],
        )
        .map_err(|e| classify(&e, None))?;
    }
    if let Some(token) = batch.fence {
        conn.execute(
            "INSERT INTO spend_fence VALUES (0, ?) \
             ON CONFLICT (id) DO UPDATE SET token = greatest(token, excluded.token)",
            [token],
        )
        .map_err(|e| classify(&e, None))?;
    }
    Ok(CommitOutcome::Applied)
}

impl Ledger for DuckLedger {
    fn commit(&self, batch: Batch) -> BoxFuture<Result<CommitOutcome, LedgerError>> {
        let seam = self.seam.clone();
        let transactional = self.transactional;
        self.blocking("duckdb.commit", move |conn| {
            if !transactional {
                return apply(conn, &batch, seam.as_ref());
            }
            let tx = conn.transaction().map_err(io)?;
            // An error drops `tx`: rolled back, nothing of the batch stays.
            let out = apply(&tx, &batch, seam.as_ref())?;
            tx.commit().map_err(|e| classify(&e, None))?;
            Ok(out)
        })
    }

    fn totals(&self) -> BoxFuture<Result<Rows, LedgerError>> {
        self.blocking("duckdb.totals", |conn| {
            let mut stmt = conn
                .prepare("SELECT entity, id, total FROM spend")
                .map_err(io)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, u128>(2)?,
                    ))
                })
                .map_err(io)?;
            let mut out = Rows::new();
            for row in rows {
                let (entity, id, total) = row.map_err(io)?;
                let entity = Entity::from_name(&entity)
                    .ok_or_else(|| io(format!("unknown entity '{entity}'")))?;
                out.insert(RowKey::new(entity, id), total);
            }
            Ok(out)
        })
    }
}
