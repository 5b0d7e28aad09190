//! Service 4: buffered spend updates, one flusher at a time.
//!
//! Many proxy instances each aggregate spend increments (per API key, user
//! and team) in memory ([`SpendBuffer`]) and push the aggregates to a shared
//! queue ([`QueueStore`], reached through a bounded [`ConnPool`]). One
//! instance at a time, holding a lease lock kept in the queue's store,
//! drains the queue, aggregates everything into one database transaction
//! ([`Ledger`]) and releases the lock ([`Flusher`]).
//!
//! * **Pre-fix** ([`Variant::Direct`]): every instance upserts its rows
//!   straight into the ledger, each in its own order; with 10+ instances the
//!   row locks deadlock (the ledger's wait-for graph detects the cycle).
//! * **Documented** ([`Variant::Documented`]): queue + lease lock +
//!   read-all / aggregate / commit / delete, with no fencing, no
//!   idempotency and no in-flight list. A lease that expires during a pause
//!   (or a stall) lets two flushers commit the same items; a crash
//!   between the commit and the delete counts them twice.
//! * **Documented, popping** ([`Variant::DocumentedPop`]): the same, but
//!   the read pops the items (`LPOP count`): a crash between the read and
//!   the commit loses them.
//! * **Fixed** ([`Variant::Fixed`]): a fencing token checked at commit, a
//!   batch id committed in the same transaction (a replayed batch is
//!   skipped), and a reliable drain (items moved atomically to an in-flight
//!   list, removed only after the commit, recovered after a crash).
//!
//! The lease's time to live is judged on the *store's* clock, as Redis
//! judges `SET .. NX PX` on the server's (checked against a real Redis by
//! `tests/servers_spend_lease.rs`; the model judged it on the acquiring
//! instance's clock before, which let clock skew alone hand a held lease
//! to a second flusher, something Redis never does). A pause or a stall
//! longer than the TTL still lets a second flusher in while the first is
//! still at work; only the fixed variant stays exactly-once when that
//! happens.
//!
//! Amounts: increments are `u64` (e.g. micro-dollars); aggregates and ledger
//! totals are `u128` summed with `checked_add` (wide *and* checked: an
//! overflow is an error handed back, never a wrap; it needs more than 2^64
//! maximal increments on one row). The DuckDB ledger stores `UHUGEINT`,
//! whose addition DuckDB checks too.
//!
//! Backends: [`MemQueueStore`] and [`MemLedger`] (row locks in statement
//! order and a wait-for graph, so a deadlock is detected, not hung) for
//! the model checkers and the simulator; `duck::DuckLedger` (feature
//! `duckdb`) on a real DuckDB file; with feature `servers`, the real
//! servers incident 002 names: `redis_store::RedisQueueStore` (list queue,
//! `SET NX PX` lease with owner token, in-flight lists, a `deadpool-redis`
//! pool of `max_connections`), `pg_ledger::PgLedger` (Postgres, one
//! transaction per batch, `flushed_batches` and the fence in it) and
//! `prom::SpendExporter` (the incident's metrics, Prometheus text format).

mod buffer;
mod flusher;
mod instance;
mod ledger;
mod mem_ledger;
mod mem_queue;
mod metrics;
mod pool;
mod queue;

#[cfg(all(feature = "duckdb", not(any(faultline_loom, faultline_shuttle))))]
pub mod duck;
#[cfg(all(feature = "servers", not(any(faultline_loom, faultline_shuttle))))]
pub mod pg_ledger;
#[cfg(all(feature = "servers", not(any(faultline_loom, faultline_shuttle))))]
pub mod prom;
#[cfg(all(feature = "servers", not(any(faultline_loom, faultline_shuttle))))]
pub mod redis_store;

pub use buffer::{add_rows, aggregate, Overflow, Refused, SpendBuffer};
pub use flusher::{direct_upsert, FlushError, FlushReport, Flusher};
pub use instance::{PushError, SpendInstance};
pub use ledger::{Batch, CommitOutcome, Ledger, LedgerError};
pub use mem_ledger::{CommitRecord, MemLedger, RECORDS_MAX, STATEMENT_LATENCY_MS_MAX};
pub use mem_queue::{Grant, MemQueueStore, Removal, DIAG_ENTRIES_MAX, OP_LATENCY_MS_MAX};
pub use metrics::{Metrics, MetricsSnapshot};
pub use pool::{ConnPool, Connection};
pub use queue::{Lease, QueueStore, StoreError};

use crate::clock::Clock;
use crate::sync::{Arc, DynArc};
use std::collections::BTreeMap;

/// What an instance and its flusher are wired to.
#[derive(Clone)]
pub struct SpendDeps {
    /// The shared queue + lease store.
    pub store: DynArc<dyn QueueStore>,
    /// The database.
    pub ledger: DynArc<dyn Ledger>,
    /// This instance's connections to `store`.
    pub pool: Arc<ConnPool>,
    /// This instance's clock (it dates leases; their expiry is the
    /// store's).
    pub clock: DynArc<dyn Clock>,
    /// The deployment's metrics.
    pub metrics: Arc<Metrics>,
}

/// What a spend row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entity {
    /// An API key.
    ApiKey,
    /// A user.
    User,
    /// A team.
    Team,
}

impl Entity {
    /// The name stored in the ledger.
    pub fn name(self) -> &'static str {
        match self {
            Entity::ApiKey => "key",
            Entity::User => "user",
            Entity::Team => "team",
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Option<Entity> {
        [Entity::ApiKey, Entity::User, Entity::Team]
            .into_iter()
            .find(|e| e.name() == name)
    }
}

/// One ledger row: an entity and its id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowKey {
    /// What kind of row.
    pub entity: Entity,
    /// Its id, e.g. `"sk-3"`.
    pub id: String,
}

impl RowKey {
    /// A row key.
    pub fn new(entity: Entity, id: impl Into<String>) -> Self {
        RowKey {
            entity,
            id: id.into(),
        }
    }
}

/// Aggregated amounts per row, in row order.
pub type Rows = BTreeMap<RowKey, u128>;

/// One request's spend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Increment {
    /// The API key that was used.
    pub api_key: String,
    /// Its user.
    pub user: String,
    /// Its team.
    pub team: String,
    /// The amount (e.g. micro-dollars); zero is allowed.
    pub amount: u64,
}

impl Increment {
    /// The same spend as a daily-activity increment of day `day` (days
    /// since the Unix epoch): each row id carries the day
    /// (`"sk-1@d20421"`), so the daily spend pipeline aggregates per key,
    /// user and team *per day*.
    pub fn on_day(&self, day: u64) -> Increment {
        Increment {
            api_key: format!("{}@d{day}", self.api_key),
            user: format!("{}@d{day}", self.user),
            team: format!("{}@d{day}", self.team),
            amount: self.amount,
        }
    }

    /// The three rows this increment adds to.
    pub fn row_keys(&self) -> [RowKey; 3] {
        [
            RowKey::new(Entity::ApiKey, self.api_key.clone()),
            RowKey::new(Entity::User, self.user.clone()),
            RowKey::new(Entity::Team, self.team.clone()),
        ]
    }
}

/// Identity of one queue item: who pushed it and its sequence number there
/// (diagnostics: which item was counted twice or lost).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemId {
    /// The pushing instance.
    pub instance: u32,
    /// Unique per instance (across its restarts).
    pub seq: u64,
}

/// One queue item: an instance's aggregate at push time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Its identity.
    pub id: ItemId,
    /// The aggregated rows.
    pub rows: Rows,
}

/// Which flush design: the historical bug, the documented design (two
/// drains), or the fix. There is deliberately no default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Pre-fix: every instance upserts its rows directly, in its own order.
    Direct,
    /// Queue + lease; read all, aggregate, commit, delete what was read.
    Documented,
    /// Queue + lease; pop the items, aggregate, commit.
    DocumentedPop,
    /// Fencing token, idempotent batch id, in-flight list.
    Fixed,
}

impl Variant {
    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Direct => "pre-fix",
            Variant::Documented => "documented",
            Variant::DocumentedPop => "documented-pop",
            Variant::Fixed => "fixed",
        }
    }

    /// Parses a CLI name.
    pub fn from_name(name: &str) -> Option<Variant> {
        [
            Variant::Direct,
            Variant::Documented,
            Variant::DocumentedPop,
            Variant::Fixed,
        ]
        .into_iter()
        .find(|v| v.name() == name)
    }
}

/// How the flusher is configured.
#[derive(Clone, Copy, Debug)]
pub struct SpendConfig {
    /// Which variant (required: no default).
    pub variant: Variant,
    /// Lease time to live, on the store's clock. Default 1,000 ms.
    pub lease_ttl_ms: u64,
    /// Queue items drained into one batch at most. Default 1,000.
    pub batch_items_max: usize,
    /// In-flight batches of dead flushers recovered per flush at most
    /// (fixed variant). Default 16.
    pub recoveries_max: usize,
    /// Distinct rows an instance holds in memory at most. Default 10,000.
    pub buffer_rows_max: usize,
}

impl SpendConfig {
    /// The defaults, with the variant the caller must choose.
    pub fn new(variant: Variant) -> Self {
        SpendConfig {
            variant,
            lease_ttl_ms: 1_000,
            batch_items_max: 1_000,
            recoveries_max: 16,
            buffer_rows_max: 10_000,
        }
    }
}

/// The lease lock's name in the queue store.
pub const LEASE_NAME: &str = "spend_update_lock";
