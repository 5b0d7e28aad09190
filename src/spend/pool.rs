//! A bounded connection pool to the queue store.

use crate::sync::{Permit, Semaphore};

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
    /// [`StoreError::NoConnection`](super::StoreError::NoConnection) when all
    /// `connections_max` are in use.
    pub fn get(&self) -> Result<Connection, super::StoreError> {
        match self.sem.try_acquire() {
            Ok(p) => Ok(Connection { _permit: p }),
            Err(_) => Err(super::StoreError::NoConnection {
                connections_max: self.sem.permits_max(),
            }),
        }
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
