//! [`Semaphore`]: counted async admission with RAII permits.

use super::pool::Pool;
use super::Arc;
use super::Flaw;
use crate::probe::LockClass;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A counting semaphore with FIFO hand-off; cloning shares the same permits.
///
/// Permits are RAII: a [`Permit`] returns itself on drop, so a permit held by
/// a task that is cancelled (its future dropped) or that panics goes back to
/// the pool.
#[derive(Clone)]
pub struct Semaphore {
    pool: Arc<Pool>,
}

/// The answer of [`Semaphore::try_acquire`] when no permit is free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoPermit {
    /// The semaphore's capacity, for the caller's error message.
    pub permits_max: usize,
}

impl std::fmt::Display for NoPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no permit free (all {} in use)", self.permits_max)
    }
}

impl std::error::Error for NoPermit {}

impl Semaphore {
    /// Creates a semaphore with `permits_max` free permits.
    pub fn new(permits_max: usize) -> Self {
        Self::new_flawed(permits_max, Flaw::None)
    }

    /// Creates a semaphore with a deliberate bug, for tests that prove a
    /// checker catches it. Never use outside tests.
    #[doc(hidden)]
    pub fn new_flawed(permits_max: usize, flaw: Flaw) -> Self {
        Semaphore {
            pool: Arc::new(Pool::new(permits_max, flaw, None)),
        }
    }

    /// Creates a semaphore whose permits are reported to the lock-order
    /// checker as `class`.
    pub fn with_class(permits_max: usize, class: LockClass) -> Self {
        Semaphore {
            pool: Arc::new(Pool::new(permits_max, Flaw::None, Some(class))),
        }
    }

    /// Waits for a permit.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future gives up its place in the queue, and
    /// a permit already handed to it is handed on.
    #[track_caller]
    pub fn acquire(&self) -> Acquire {
        Acquire {
            pool: Arc::clone(&self.pool),
            slot: None,
            site: Location::caller(),
        }
    }

    /// Takes a permit without waiting.
    ///
    /// # Errors
    /// [`NoPermit`] when every permit is in use (or queued for).
    #[track_caller]
    pub fn try_acquire(&self) -> Result<Permit, NoPermit> {
        if self.pool.try_take() {
            self.pool.report_taken(Location::caller());
            Ok(Permit {
                pool: Arc::clone(&self.pool),
            })
        } else {
            Err(NoPermit {
                permits_max: self.pool.capacity(),
            })
        }
    }

    /// Permits currently free.
    pub fn available(&self) -> usize {
        self.pool.available()
    }

    /// The number of permits the semaphore was created with.
    pub fn permits_max(&self) -> usize {
        self.pool.capacity()
    }

    /// Tasks queued in [`Semaphore::acquire`].
    pub fn waiters(&self) -> usize {
        self.pool.waiters()
    }
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.available())
            .field("permits_max", &self.permits_max())
            .finish()
    }
}

/// The future returned by [`Semaphore::acquire`].
#[must_use = "futures do nothing unless polled"]
pub struct Acquire {
    pool: Arc<Pool>,
    slot: Option<u64>,
    site: &'static Location<'static>,
}

impl Future for Acquire {
    type Output = Permit;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit> {
        let this = self.get_mut();
        this.pool.poll_take(&mut this.slot, cx).map(|()| {
            this.pool.report_taken(this.site);
            Permit {
                pool: Arc::clone(&this.pool),
            }
        })
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        if let Some(id) = self.slot.take() {
            self.pool.cancel(id);
        }
    }
}

/// One permit of a [`Semaphore`]; returned to it on drop.
#[must_use = "the permit is returned as soon as it is dropped"]
pub struct Permit {
    pool: Arc<Pool>,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Permit")
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.pool.give_back();
    }
}
