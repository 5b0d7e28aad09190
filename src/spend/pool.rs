//! A bounded connection pool to the queue store.

use super::metrics::Metrics;
use super::queue::StoreError;
use crate::sync::{Permit, Semaphore};
use std::future::Future;

/// At most `connections_max` operations use the store at once; the next one
/// fails at once instead of queueing (a typed error the caller handles by
/// keeping its data and retrying later).
pub struct ConnPool {
    sem: Semaphore,
}

/// A connection taken from the pool, returned when dropped.
#[must_use = "the connection returns to the pool when dropped"]
pub struct Connection {
    _permit: Permit,
}

impl ConnPool {
    /// A pool of `connections_max` connections.
    pub fn new(connections_max: usize) -> Self {
        ConnPool {
            sem: Semaphore::new(connections_max),
        }
    }

    /// Takes a connection without waiting.
    ///
    /// # Errors
    /// [`StoreError::NoConnection`] when all `connections_max` are in use.
    pub fn get(&self) -> Result<Connection, StoreError> {
        match self.sem.try_acquire() {
            Ok(p) => Ok(Connection { _permit: p }),
            Err(_) => Err(StoreError::NoConnection {
                connections_max: self.sem.permits_max(),
            }),
        }
    }

    /// Runs one store operation on a connection of this pool, counting
    /// exhaustion (of this pool, or of the store's own connection pool) and
    /// store failures in `metrics`. `op` is not started when no connection
    /// is free.
    ///
    /// # Errors
    /// [`StoreError::NoConnection`], or the operation's own error.
    ///
    /// # Cancel safety
    /// As cancel safe as `op`; the connection returns to the pool on drop.
    pub async fn run<T>(
        &self,
        metrics: &Metrics,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let conn = match self.get() {
            Ok(c) => c,
            Err(e) => {
                Metrics::inc(&metrics.queue_connection_pool_exhausted_total);
                return Err(e);
            }
        };
        let out = op.await;
        drop(conn);
        match &out {
            // The store's own pool (a real client's) was exhausted.
            Err(StoreError::NoConnection { .. }) => {
                Metrics::inc(&metrics.queue_connection_pool_exhausted_total)
            }
            Err(_) => Metrics::inc(&metrics.queue_store_errors_total),
            Ok(_) => {}
        }
        out
    }

    /// Connections in use.
    pub fn in_use(&self) -> usize {
        self.sem.permits_max() - self.sem.available()
    }

    /// The pool's size.
    pub fn connections_max(&self) -> usize {
        self.sem.permits_max()
    }
}

impl std::fmt::Debug for ConnPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConnPool({}/{})", self.in_use(), self.connections_max())
    }
}
