//! The ledger database the flusher commits to.

use super::{ItemId, RowKey, Rows};
use crate::BoxFuture;

/// One transaction's worth of spend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Who commits it (diagnostics).
    pub owner: String,
    /// Idempotency key, committed in the same transaction; a batch whose id
    /// is already recorded is skipped. `None`: no idempotency.
    pub batch_id: Option<u64>,
    /// Fencing token; the commit is refused when a newer token has already
    /// committed. `None`: no fencing.
    pub fence: Option<u64>,
    /// The lease token the committer held (diagnostics only, never
    /// checked: that is `fence`). `None`: no lease (the direct upsert).
    pub lease: Option<u64>,
    /// Rows to add to, in statement order (row locks are taken in this
    /// order).
    pub rows: Vec<(RowKey, u128)>,
    /// The queue items it carries (diagnostics).
    pub items: Vec<ItemId>,
}

impl Batch {
    /// A batch of `rows` in row order, without idempotency or fencing.
    pub fn plain(owner: impl Into<String>, rows: &Rows) -> Self {
        Batch {
            owner: owner.into(),
            batch_id: None,
            fence: None,
            lease: None,
            rows: rows.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            items: Vec::new(),
        }
    }
}

/// What a successful commit did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The rows were added.
    Applied,
    /// The batch id was already recorded: nothing was added.
    Duplicate,
}

/// A failed commit; nothing of the batch was applied (rolled back).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerError {
    /// The transaction was chosen as a deadlock victim (its wait closed a
    /// cycle in the wait-for graph).
    Deadlock {
        /// The cycle, e.g. `"txn 4 (i3) -> txn 7 (i9) -> txn 4 (i3)"`.
        cycle: String,
    },
    /// A newer fencing token has already committed.
    Fenced {
        /// The batch's token.
        token: u64,
        /// The newest token committed.
        fence: u64,
    },
    /// Another transaction wrote one of the rows first (an optimistic
    /// database such as DuckDB); rolled back, retry later.
    Conflict(String),
    /// The process crashed mid-transaction (injected); rolled back.
    Crashed,
    /// A total would exceed `u128::MAX`.
    Overflow(RowKey),
    /// The database failed.
    Io(String),
}

impl std::fmt::Display for LedgerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LedgerError::Deadlock { cycle } => write!(f, "deadlock detected: {cycle}"),
            LedgerError::Fenced { token, fence } => {
                write!(f, "fenced: token {token} < committed token {fence}")
            }
            LedgerError::Conflict(e) => write!(f, "write conflict (rolled back): {e}"),
            LedgerError::Crashed => f.write_str("crashed mid-transaction (rolled back)"),
            LedgerError::Overflow(k) => write!(f, "total of {k:?} would overflow"),
            LedgerError::Io(e) => write!(f, "ledger failed: {e}"),
        }
    }
}

impl std::error::Error for LedgerError {}

/// The spend ledger: one transaction per batch, row locks in statement
/// order.
pub trait Ledger: Send + Sync + 'static {
    /// Adds `batch` in one transaction: all rows or none.
    ///
    /// # Errors
    /// [`LedgerError`]; nothing was applied.
    ///
    /// # Cancel safety
    /// Cancel safe: dropped before it completes, the transaction rolls back
    /// (as a crashed client's does).
    fn commit(&self, batch: Batch) -> BoxFuture<Result<CommitOutcome, LedgerError>>;

    /// Every row's total.
    ///
    /// # Errors
    /// [`LedgerError::Io`].
    fn totals(&self) -> BoxFuture<Result<Rows, LedgerError>>;
}
