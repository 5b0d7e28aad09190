//! [`Gate`]: an async mutex whose guard may be held across `.await`.

use super::pool::Pool;
use super::Flaw;
use crate::probe::LockClass;
use std::cell::UnsafeCell;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

/// An async mutual-exclusion gate with FIFO hand-off.
///
/// Waiters queue in arrival order; a release hands the gate directly to the
/// first one, so a stream of newcomers cannot starve it. The guard may be held
/// across `.await` (that is the point: the store's append holds the write gate
/// for its whole body). Lock order in faultline is always
/// gate-before-state-mutex.
pub struct Gate<T = ()> {
    pool: Pool,
    value: UnsafeCell<T>,
}

// SAFETY: the pool admits at most one holder at a time (with `Flaw::None`),
// and only a holder (through its guard) touches `value`.
unsafe impl<T: Send> Send for Gate<T> {}
// SAFETY: as above; shared references only reach `value` through a guard.
unsafe impl<T: Send> Sync for Gate<T> {}

impl<T> Gate<T> {
    /// Creates an open gate guarding `value`.
    pub fn new(value: T) -> Self {
        Self::new_flawed(value, Flaw::None)
    }

    /// Creates a gate with a deliberate bug, for tests that prove a checker
    /// catches it. Never use outside tests.
    #[doc(hidden)]
    pub fn new_flawed(value: T, flaw: Flaw) -> Self {
        Gate {
            pool: Pool::new(1, flaw, None),
            value: UnsafeCell::new(value),
        }
    }

    /// Creates an open gate whose acquisitions are reported to the
    /// lock-order checker as `class`.
    pub fn with_class(value: T, class: LockClass) -> Self {
        Gate {
            pool: Pool::new(1, Flaw::None, Some(class)),
            value: UnsafeCell::new(value),
        }
    }

    /// Waits for the gate and returns its guard.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the returned future before it completes removes
    /// its place in the queue, and if the gate had already been handed to it,
    /// hands the gate on to the next waiter.
    #[track_caller]
    pub fn lock(&self) -> Lock<'_, T> {
        Lock {
            gate: self,
            slot: None,
            site: Location::caller(),
        }
    }

    /// Takes the gate if it is free and nobody queues for it.
    #[track_caller]
    pub fn try_lock(&self) -> Option<GateGuard<'_, T>> {
        // A guard is built only when the gate was taken: one built eagerly
        // (`then_some`) and dropped on a failed try released the gate under
        // its holder.
        if !self.pool.try_take() {
            return None;
        }
        self.pool.report_taken(Location::caller());
        Some(GateGuard { gate: self })
    }

    /// Number of tasks queued for the gate (for oracles and metrics).
    pub fn waiters(&self) -> usize {
        self.pool.waiters()
    }

    /// Whether the gate is currently held (for oracles and metrics).
    pub fn is_locked(&self) -> bool {
        self.pool.available() == 0
    }
}

impl<T: Default> Default for Gate<T> {
    fn default() -> Self {
        Gate::new(T::default())
    }
}

impl<T> std::fmt::Debug for Gate<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("locked", &self.is_locked())
            .field("waiters", &self.waiters())
            .finish()
    }
}

/// The future returned by [`Gate::lock`].
#[must_use = "futures do nothing unless polled"]
pub struct Lock<'a, T> {
    gate: &'a Gate<T>,
    slot: Option<u64>,
    site: &'static Location<'static>,
}

impl<'a, T> Future for Lock<'a, T> {
    type Output = GateGuard<'a, T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let gate = this.gate;
        gate.pool.poll_take(&mut this.slot, cx).map(|()| {
            gate.pool.report_taken(this.site);
            GateGuard { gate }
        })
    }
}

impl<T> Drop for Lock<'_, T> {
    fn drop(&mut self) {
        if let Some(id) = self.slot.take() {
            self.gate.pool.cancel(id);
        }
    }
}

/// Exclusive access to a [`Gate`]'s value; releases the gate on drop
/// (including on unwind).
#[must_use = "the gate is released as soon as the guard is dropped"]
pub struct GateGuard<'a, T> {
    gate: &'a Gate<T>,
}

impl<T> Deref for GateGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves exclusive ownership of the gate.
        unsafe { &*self.gate.value.get() }
    }
}

impl<T> DerefMut for GateGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves exclusive ownership of the gate.
        unsafe { &mut *self.gate.value.get() }
    }
}

impl<T> Drop for GateGuard<'_, T> {
    fn drop(&mut self) {
        self.gate.pool.give_back();
    }
}
