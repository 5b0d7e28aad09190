//! The ledger on a real Postgres server (feature `servers`).
//!
//! Tables (in the configured schema; `<p>` is the table prefix, empty for
//! the spend ledger, `daily_` for the daily spend ledger):
//! * `<p>spend (entity, id, total NUMERIC(39,0))`: one row per key, user
//!   and team; a batch adds to its rows with one `INSERT .. ON CONFLICT DO
//!   UPDATE` per row, **in the batch's statement order** (so row locks are
//!   taken in that order, as the wait-for graph of [`super::MemLedger`]
//!   models it), all in **one transaction**. `total` is checked against
//!   `u128::MAX`: an overflow rolls the batch back.
//! * `<p>flushed_batches (batch_id, owner, fence)`: the fixed design's
//!   idempotency record, inserted in the same transaction (`ON CONFLICT DO
//!   NOTHING`: a batch id already recorded makes the commit a
//!   [`CommitOutcome::Duplicate`] that adds nothing).
//! * `<p>spend_fence (id = 0, token)`: the newest fencing token committed.
//!   A fenced commit first locks this row (`SELECT .. FOR UPDATE`), so the
//!   check "no newer token has committed" and the commit are atomic even
//!   at `READ COMMITTED` (an unlocked read would let an older flusher that
//!   read the fence before a newer one committed pass the check).
//!
//! Errors: SQLSTATE `40P01` (deadlock detected) is
//! [`LedgerError::Deadlock`] with the server's report (which names the
//! processes in the cycle); `40001` is [`LedgerError::Conflict`]; a check
//! violation on `total` is [`LedgerError::Overflow`]. Every error rolls
//! the transaction back.
//!
//! Crates: `tokio-postgres` (rust-postgres' async client, the maintained
//! native client; plain SQL, no ORM or compile-time database needed) and
//! `deadpool-postgres` (its usual pool, from the same family as
//! `deadpool-redis`). `sqlx` would also do, but its pool and macros add
//! nothing here and its build is heavier.

use super::ledger::{Batch, CommitOutcome, Ledger, LedgerError};
use super::{Entity, RowKey, Rows};
use crate::sync::DynArc;
use crate::BoxFuture;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

/// The local server every project machine runs.
pub const POSTGRES_URL_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The Postgres URL: `FAULTLINE_POSTGRES_URL`, else
/// [`POSTGRES_URL_DEFAULT`].
pub fn postgres_url_from_env() -> String {
    std::env::var("FAULTLINE_POSTGRES_URL").unwrap_or_else(|_| POSTGRES_URL_DEFAULT.to_string())
}

/// Where a ledger lives.
#[derive(Clone, Debug)]
pub struct PgConfig {
    /// Server URL. Default: `FAULTLINE_POSTGRES_URL`, else
    /// [`POSTGRES_URL_DEFAULT`].
    pub url: String,
    /// Schema of the tables (`[a-z0-9_]`, at most 63 bytes). Default
    /// `"public"`.
    pub schema: String,
    /// Table prefix: `""` for spend, `"daily_"` for daily spend. Default
    /// `""`.
    pub prefix: String,
    /// Connections of this ledger's pool at most. Default 16.
    pub max_connections: usize,
    /// How long a commit waits for a pooled connection. Default 30,000 ms.
    pub wait_ms: u64,
    /// Postgres' `lock_timeout` for every statement: a row lock waited for
    /// longer fails as [`LedgerError::Io`] instead of hanging. Default
    /// 30,000 ms.
    pub lock_timeout_ms: u64,
    /// Postgres' `deadlock_timeout` for the sessions (how long a lock wait
    /// lasts before the server looks for a cycle; needs a superuser).
    /// Default `None`: the server's (1 s out of the box).
    pub deadlock_timeout_ms: Option<u64>,
}

impl PgConfig {
    /// The defaults (see each field).
    pub fn new() -> Self {
        PgConfig {
            url: postgres_url_from_env(),
            schema: "public".into(),
            prefix: String::new(),
            max_connections: 16,
            wait_ms: 30_000,
            lock_timeout_ms: 30_000,
            deadlock_timeout_ms: None,
        }
    }
}

impl Default for PgConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// The largest total, `u128::MAX`, as the `CHECK` on `total` states it.
const TOTAL_MAX: &str = "340282366920938463463374607431768211455";

fn io(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Io(e.to_string())
}

/// A Postgres error as a ledger error (`row`: the statement's row).
fn classify(e: &tokio_postgres::Error, row: Option<&RowKey>) -> LedgerError {
    let Some(db) = e.as_db_error() else {
        return io(e);
    };
    let text = match db.detail() {
        Some(d) => format!("{} (SQLSTATE {}): {d}", db.message(), db.code().code()),
        None => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
    };
    match (db.code(), row) {
        (c, _) if *c == SqlState::T_R_DEADLOCK_DETECTED => LedgerError::Deadlock { cycle: text },
        (c, _) if *c == SqlState::T_R_SERIALIZATION_FAILURE => LedgerError::Conflict(text),
        (c, Some(k))
            if *c == SqlState::CHECK_VIOLATION || *c == SqlState::NUMERIC_VALUE_OUT_OF_RANGE =>
        {
            LedgerError::Overflow(k.clone())
        }
        _ => LedgerError::Io(text),
    }
}

/// A hook awaited inside a commit's transaction once the fence is checked
/// and the batch id recorded, before the first row (test seam: a commit
/// parked there while another runs).
pub type AfterFence = DynArc<dyn Fn() -> BoxFuture<()> + Send + Sync>;

/// The spend ledger on Postgres; clones share the pool.
#[derive(Clone)]
pub struct PgLedger {
    pool: Pool,
    cfg: PgConfig,
    after_fence: Option<AfterFence>,
    fence_lock: bool,
}

impl PgLedger {
    /// A ledger on `cfg` (connects lazily; see [`PgLedger::create_tables`]).
    ///
    /// # Errors
    /// [`LedgerError::Io`] when the URL or the schema name is invalid.
    pub fn new(cfg: PgConfig) -> Result<Self, LedgerError> {
        let valid = |s: &str| {
            s.len() <= 63
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if cfg.schema.is_empty() || !valid(&cfg.schema) || !valid(&cfg.prefix) {
            return Err(io(format!("invalid schema or prefix: {cfg:?}")));
        }
        let mut pg: tokio_postgres::Config = cfg.url.parse().map_err(io)?;
        let mut options = format!(
            "-c search_path={} -c lock_timeout={}",
            cfg.schema, cfg.lock_timeout_ms
        );
        if let Some(ms) = cfg.deadlock_timeout_ms {
            options.push_str(&format!(" -c deadlock_timeout={ms}"));
        }
        pg.options(&options);
        pg.connect_timeout(Duration::from_secs(5));
        let mgr = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(cfg.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_millis(cfg.wait_ms)))
            .create_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(io)?;
        Ok(PgLedger {
            pool,
            cfg,
            after_fence: None,
            fence_lock: true,
        })
    }

    /// Test seam: awaits `hook` inside every commit after the fence check.
    /// Never use outside tests.
    #[doc(hidden)]
    pub fn with_after_fence_hook(mut self, hook: AfterFence) -> Self {
        self.after_fence = Some(hook);
        self
    }

    /// Test-only flaw: the fence is read without locking its row, so an
    /// older flusher that read it before a newer one committed still
    /// commits after it. The fencing check must see the difference. Never
    /// use outside tests.
    #[doc(hidden)]
    pub fn without_fence_lock(mut self) -> Self {
        self.fence_lock = false;
        self
    }

    /// Its settings.
    pub fn config(&self) -> &PgConfig {
        &self.cfg
    }

    fn table(&self, name: &str) -> String {
        format!("{}{name}", self.cfg.prefix)
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, LedgerError> {
        self.pool.get().await.map_err(io)
    }

    /// Checks that the server answers (`SELECT 1`).
    ///
    /// # Errors
    /// [`LedgerError::Io`].
    pub async fn ping(&self) -> Result<(), LedgerError> {
        let c = self.client().await?;
        c.simple_query("SELECT 1").await.map_err(io)?;
        Ok(())
    }

    /// Creates the schema and the tables if absent.
    ///
    /// # Errors
    /// [`LedgerError::Io`] (server down, no permission).
    pub async fn create_tables(&self) -> Result<(), LedgerError> {
        let c = self.client().await?;
        let (spend, batches, fence) = (
            self.table("spend"),
            self.table("flushed_batches"),
            self.table("spend_fence"),
        );
        let ddl = format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {spend} (
                 entity TEXT NOT NULL, id TEXT NOT NULL,
                 total NUMERIC(39, 0) NOT NULL CHECK (total <= {TOTAL_MAX}),
                 PRIMARY KEY (entity, id));
             CREATE TABLE IF NOT EXISTS {batches} (
                 batch_id NUMERIC(20, 0) PRIMARY KEY, owner TEXT NOT NULL,
                 fence NUMERIC(20, 0), at TIMESTAMPTZ NOT NULL DEFAULT now());
             CREATE TABLE IF NOT EXISTS {fence} (
                 id INT PRIMARY KEY, token NUMERIC(20, 0) NOT NULL);
             INSERT INTO {fence} VALUES (0, 0) ON CONFLICT (id) DO NOTHING;",
            schema = self.cfg.schema
        );
        c.batch_execute(&ddl).await.map_err(io)
    }

    /// Drops the whole schema (test cleanup; never on `public`).
    ///
    /// # Errors
    /// [`LedgerError::Io`].
    pub async fn drop_schema(&self) -> Result<(), LedgerError> {
        if self.cfg.schema == "public" {
            return Err(io("refusing to drop the public schema"));
        }
        let c = self.client().await?;
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.cfg.schema);
        c.batch_execute(&sql).await.map_err(io)
    }

    /// Batch ids recorded as flushed, ascending.
    ///
    /// # Errors
    /// [`LedgerError::Io`].
    pub async fn flushed_batches(&self) -> Result<Vec<u64>, LedgerError> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT batch_id::text FROM {} ORDER BY batch_id",
            self.table("flushed_batches")
        );
        let rows = c.query(&sql, &[]).await.map_err(io)?;
        rows.iter()
            .map(|r| r.get::<_, String>(0).parse().map_err(io))
            .collect()
    }

    async fn commit_batch(self, batch: Batch) -> Result<CommitOutcome, LedgerError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(io)?;
        // Every early return drops `tx`: tokio-postgres sends ROLLBACK.
        if let Some(token) = batch.fence {
            let lock = if self.fence_lock { " FOR UPDATE" } else { "" };
            let sql = format!(
                "SELECT token::text FROM {} WHERE id = 0{lock}",
                self.table("spend_fence")
            );
            let row = tx
                .query_one(&sql, &[])
                .await
                .map_err(|e| classify(&e, None))?;
            let fence: u64 = row.get::<_, String>(0).parse().map_err(io)?;
            if token < fence {
                return Err(LedgerError::Fenced { token, fence });
            }
        }
        if let Some(b) = batch.batch_id {
            let sql = format!(
                "INSERT INTO {} (batch_id, owner, fence) \
                 VALUES ($1::text::numeric, $2, $3::text::numeric) \
                 ON CONFLICT (batch_id) DO NOTHING",
                self.table("flushed_batches")
            );
            let fence = batch.fence.map(|f| f.to_string());
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                [&b.to_string(), &batch.owner, &fence];
            let n = tx
                .execute(&sql, &params)
                .await
                .map_err(|e| classify(&e, None))?;
            if n == 0 {
                tx.rollback().await.map_err(io)?;
                return Ok(CommitOutcome::Duplicate);
            }
        }
        if let Some(hook) = &self.after_fence {
            hook().await;
        }
        let spend = self.table("spend");
        let upsert = tx
            .prepare(&format!(
                "INSERT INTO {spend} (entity, id, total) VALUES ($1, $2, $3::text::numeric) \
                 ON CONFLICT (entity, id) DO UPDATE SET total = {spend}.total + excluded.total"
            ))
            .await
            .map_err(|e| classify(&e, None))?;
        for (k, v) in &batch.rows {
            let amount = v.to_string();
            tx.execute(&upsert, &[&k.entity.name(), &k.id, &amount])
                .await
                .map_err(|e| classify(&e, Some(k)))?;
        }
        if let Some(token) = batch.fence {
            let sql = format!(
                "UPDATE {} SET token = greatest(token, $1::text::numeric) WHERE id = 0",
                self.table("spend_fence")
            );
            tx.execute(&sql, &[&token.to_string()])
                .await
                .map_err(|e| classify(&e, None))?;
        }
        tx.commit().await.map_err(|e| classify(&e, None))?;
        Ok(CommitOutcome::Applied)
    }

    async fn read_totals(self) -> Result<Rows, LedgerError> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT entity, id, total::text FROM {}",
            self.table("spend")
        );
        let mut out = Rows::new();
        for r in c.query(&sql, &[]).await.map_err(io)? {
            let entity: String = r.get(0);
            let entity =
                Entity::from_name(&entity).ok_or_else(|| io(format!("unknown entity {entity}")))?;
            let total: u128 = r.get::<_, String>(2).parse().map_err(io)?;
            out.insert(RowKey::new(entity, r.get::<_, String>(1)), total);
        }
        Ok(out)
    }
}

impl Ledger for PgLedger {
    fn commit(&self, batch: Batch) -> BoxFuture<Result<CommitOutcome, LedgerError>> {
        Box::pin(self.clone().commit_batch(batch))
    }

    fn totals(&self) -> BoxFuture<Result<Rows, LedgerError>> {
        Box::pin(self.clone().read_totals())
    }
}

impl std::fmt::Debug for PgLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLedger")
            .field("schema", &self.cfg.schema)
            .field("prefix", &self.cfg.prefix)
            .finish()
    }
}
