//! The shared queue and its lease lock: a Redis-like store.

use super::Item;
use crate::BoxFuture;
use std::collections::BTreeMap;

/// A queue-store failure; the operation did not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// Every connection of the caller's pool is in use.
    NoConnection {
        /// The pool's size.
        connections_max: usize,
    },
    /// The queue holds `items_max` items already; nothing was pushed.
    QueueFull {
        /// The queue's bound.
        items_max: usize,
    },
    /// The store failed (I/O, injected fault).
    Io(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::NoConnection { connections_max } => {
                write!(f, "no connection available (all {connections_max} in use)")
            }
            StoreError::QueueFull { items_max } => {
                write!(f, "queue full ({items_max} items)")
            }
            StoreError::Io(e) => write!(f, "queue store failed: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// A held lease lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Who holds it.
    pub owner: String,
    /// The fencing token: strictly increasing over all grants.
    pub token: u64,
    /// When it expires, ms (on the store's clock for the in-memory store;
    /// the caller's `now_ms + ttl` for Redis, which keeps the real expiry).
    pub expires_ms: u64,
}

/// The queue + lock store. Each operation is atomic, like one Redis
/// command: set-if-absent with expiry, list push, range read, trim, pop,
/// atomic move to an in-flight list.
pub trait QueueStore: Send + Sync + 'static {
    /// Takes the lease when it is free or expired; the new lease expires
    /// `ttl_ms` later. The expiry is judged on the **store's** clock, as
    /// Redis judges `SET .. NX PX` on the server's: a caller's skewed
    /// clock does not let it take a held lease; a caller that pauses past
    /// the TTL loses it. `now_ms` is the caller's clock (it dates the
    /// returned lease).
    ///
    /// # Errors
    /// [`StoreError::Io`]; the lease is unchanged.
    fn lease_acquire(
        &self,
        owner: String,
        now_ms: u64,
        ttl_ms: u64,
    ) -> BoxFuture<Result<Option<Lease>, StoreError>>;

    /// Releases the lease if it is still the one granted with `token`.
    /// Returns whether it was.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    fn lease_release(&self, token: u64) -> BoxFuture<Result<bool, StoreError>>;

    /// Extends the lease granted with `token` to expire `ttl_ms` after
    /// `now_ms`, only while it still holds that token (a lease that expired
    /// and went to another is never extended). Returns whether it did.
    ///
    /// # Errors
    /// [`StoreError::Io`]; the lease is unchanged.
    fn lease_renew(
        &self,
        token: u64,
        now_ms: u64,
        ttl_ms: u64,
    ) -> BoxFuture<Result<bool, StoreError>>;

    /// The current lease, expired or not.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    fn lease_holder(&self) -> BoxFuture<Result<Option<Lease>, StoreError>>;

    /// Appends `item` to the queue (`RPUSH`).
    ///
    /// # Errors
    /// [`StoreError::QueueFull`] or [`StoreError::Io`]; nothing was pushed.
    fn push(&self, item: Item) -> BoxFuture<Result<(), StoreError>>;

    /// The first `max` items, left in place (`LRANGE 0 max-1`).
    ///
    /// # Errors
    /// [`StoreError::Io`].
    fn read(&self, max: usize) -> BoxFuture<Result<Vec<Item>, StoreError>>;

    /// Removes the first `n` items (`LTRIM n -1`), whatever they are now.
    ///
    /// # Errors
    /// [`StoreError::Io`]; nothing was removed.
    fn trim(&self, owner: String, n: usize) -> BoxFuture<Result<(), StoreError>>;

    /// Removes and returns the first `max` items (`LPOP max`).
    ///
    /// # Errors
    /// [`StoreError::Io`]; nothing was removed.
    fn pop(&self, owner: String, max: usize) -> BoxFuture<Result<Vec<Item>, StoreError>>;

    /// Atomically moves the first `max` items into the in-flight list
    /// `batch` (`LMOVE`) and returns that list (with anything it held).
    ///
    /// # Errors
    /// [`StoreError::Io`]; nothing moved.
    fn move_to_inflight(
        &self,
        owner: String,
        batch: u64,
        max: usize,
    ) -> BoxFuture<Result<Vec<Item>, StoreError>>;

    /// Up to `max` in-flight lists, lowest batch id first.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    fn inflight(&self, max: usize) -> BoxFuture<Result<BTreeMap<u64, Vec<Item>>, StoreError>>;

    /// Deletes the in-flight list `batch` (no-op when absent).
    ///
    /// # Errors
    /// [`StoreError::Io`].
    fn delete_inflight(&self, batch: u64) -> BoxFuture<Result<(), StoreError>>;

    /// Items in the queue (`LLEN`).
    ///
    /// # Errors
    /// [`StoreError::Io`].
    fn queue_len(&self) -> BoxFuture<Result<usize, StoreError>>;
}
