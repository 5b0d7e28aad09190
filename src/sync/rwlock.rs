//! [`RwLock`]: an async reader-writer lock, FIFO fair, whose guards may be
//! held across `.await`.
//!
//! ```
//! use faultline::sync::{block_on, RwLock};
//!
//! let lock = RwLock::new(5);
//! block_on(async {
//!     let (a, b) = (lock.read().await, lock.read().await); // many readers
//!     assert_eq!(*a + *b, 10);
//!     assert!(lock.try_write().is_none()); // no writer while they read
//!     drop((a, b));
//!     *lock.write().await += 1; // one writer
//! });
//! assert_eq!(*lock.try_read().unwrap(), 6);
//! ```

use super::waiters::{wake_all, WaitList};
use super::{Flaw, Mutex};
use std::cell::UnsafeCell;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// The default limit on readers holding the lock at once (tokio's).
pub const READERS_MAX: usize = (u32::MAX >> 3) as usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

struct State {
    /// Readers holding the lock (granted ones included).
    readers: usize,
    /// A writer holds the lock (or it is granted to one).
    writer: bool,
    queue: WaitList<Kind>,
}

/// An async reader-writer lock: many readers or one writer.
///
/// Fair: every acquisition queues behind those that came before it, so a
/// reader arriving while a writer waits queues behind the writer (writers
/// do not starve), and a release admits the queue's head: one writer, or
/// every reader up to the next queued writer. Guards may be held across
/// `.await`.
pub struct RwLock<T> {
    state: Mutex<State>,
    readers_max: usize,
    flaw: Flaw,
    value: UnsafeCell<T>,
}

// SAFETY: the state admits either one writer or only readers (with
// `Flaw::None`); writers need `T: Send` to hand the value between tasks,
// readers share `&T` across tasks (`T: Sync`).
unsafe impl<T: Send> Send for RwLock<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for RwLock<T> {}

impl<T> RwLock<T> {
    /// An unlocked lock guarding `value`, at most [`READERS_MAX`] readers.
    pub fn new(value: T) -> Self {
        Self::with_readers_max(value, READERS_MAX)
    }

    /// An unlocked lock admitting at most `readers_max` readers at once
    /// (further readers queue).
    ///
    /// # Panics
    /// When `readers_max` is 0.
    pub fn with_readers_max(value: T, readers_max: usize) -> Self {
        assert!(readers_max > 0, "RwLock needs readers_max >= 1");
        Self::build(value, readers_max, Flaw::None)
    }

    /// Creates a lock with a deliberate bug, for tests that prove a checker
    /// catches it. Never use outside tests.
    #[doc(hidden)]
    pub fn new_flawed(value: T, flaw: Flaw) -> Self {
        Self::build(value, READERS_MAX, flaw)
    }

    fn build(value: T, readers_max: usize, flaw: Flaw) -> Self {
        RwLock {
            state: Mutex::new(State {
                readers: 0,
                writer: false,
                queue: WaitList::new(),
            }),
            readers_max,
            flaw,
            value: UnsafeCell::new(value),
        }
    }

    /// Waits for shared access.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future gives up its place in the queue;
    /// access already granted to it is released (and handed on).
    pub fn read(&self) -> Read<'_, T> {
        Read(Acquire {
            lock: self,
            kind: Kind::Read,
            slot: None,
        })
    }

    /// Waits for exclusive access.
    ///
    /// # Cancel safety
    /// Cancel safe, as [`RwLock::read`].
    pub fn write(&self) -> Write<'_, T> {
        Write(Acquire {
            lock: self,
            kind: Kind::Write,
            slot: None,
        })
    }

    /// Shared access if it is free now and nobody queues.
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        let ok = self.state.with(|s| self.admit_now(s, Kind::Read));
        ok.then_some(RwLockReadGuard { lock: self })
    }

    /// Exclusive access if the lock is free now and nobody queues.
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        let ok = self.state.with(|s| self.admit_now(s, Kind::Write));
        ok.then_some(RwLockWriteGuard { lock: self })
    }

    /// Mutable access through `&mut self` (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// The guarded value.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }

    /// Readers holding the lock now (for oracles and metrics).
    pub fn readers(&self) -> usize {
        self.state.with(|s| s.readers)
    }

    /// Whether a writer holds the lock now (for oracles and metrics).
    pub fn is_write_locked(&self) -> bool {
        self.state.with(|s| s.writer)
    }

    /// Tasks queued in `read()` / `write()` (for oracles and metrics).
    pub fn waiters(&self) -> usize {
        self.state.with(|s| s.queue.len())
    }

    /// The most readers admitted at once.
    pub fn readers_max(&self) -> usize {
        self.readers_max
    }

    /// Admits a newcomer of `kind` at once if the lock allows it and nobody
    /// queues ahead; records the holder.
    fn admit_now(&self, s: &mut State, kind: Kind) -> bool {
        let queue_free = !s.queue.has_waiting();
        let ok = match (kind, self.flaw) {
            (Kind::Read, Flaw::ReadersBarge) => !s.writer && s.readers < self.readers_max,
            (Kind::Read, _) => queue_free && !s.writer && s.readers < self.readers_max,
            (Kind::Write, Flaw::WriterWithReaders) => queue_free && !s.writer,
            (Kind::Write, _) => queue_free && !s.writer && s.readers == 0,
        };
        if ok {
            match kind {
                Kind::Read => s.readers += 1,
                Kind::Write => s.writer = true,
            }
        }
        ok
    }

    /// Grants the queue's head while the lock allows: one writer, or
    /// readers up to the next writer. Returns the wakers to wake.
    fn grant(&self, s: &mut State) -> Vec<Waker> {
        let mut wakers = Vec::new();
        while let Some(kind) = s.queue.first_waiting() {
            let ok = match kind {
                Kind::Read => !s.writer && s.readers < self.readers_max,
                Kind::Write => {
                    !s.writer && (s.readers == 0 || self.flaw == Flaw::WriterWithReaders)
                }
            };
            if !ok {
                break;
            }
            match kind {
                Kind::Read => s.readers += 1,
                Kind::Write => s.writer = true,
            }
            wakers.extend(s.queue.grant_first());
        }
        wakers
    }

    /// Gives back access of `kind` and admits whoever may come next.
    fn release(&self, kind: Kind) {
        let wakers = self.state.with(|s| {
            match kind {
                Kind::Read => s.readers -= 1,
                Kind::Write => s.writer = false,
            }
            self.grant(s)
        });
        wake_all(wakers);
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T> std::fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (readers, writer, waiters) = self.state.with(|s| (s.readers, s.writer, s.queue.len()));
        f.debug_struct("RwLock")
            .field("readers", &readers)
            .field("writer", &writer)
            .field("waiters", &waiters)
            .finish()
    }
}

/// One pending `read()` or `write()`: its waiter node, while it queues.
struct Acquire<'a, T> {
    lock: &'a RwLock<T>,
    kind: Kind,
    slot: Option<u64>,
}

impl<T> Acquire<'_, T> {
    fn poll_acquire(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let (lock, kind) = (self.lock, self.kind);
        let Some(id) = self.slot else {
            // Check and queue in one critical section, or a release between
            // the two would be lost.
            return lock.state.with(|s| {
                if lock.admit_now(s, kind) {
                    return Poll::Ready(());
                }
                self.slot = Some(s.queue.push(kind, cx.waker()));
                Poll::Pending
            });
        };
        let duplicate = lock.flaw == Flaw::WakerPerPoll;
        lock.state.with(|s| {
            if s.queue.take_granted(id) {
                self.slot = None;
                return Poll::Ready(());
            }
            s.queue.refresh(id, cx.waker(), duplicate);
            Poll::Pending
        })
    }
}

impl<T> Drop for Acquire<'_, T> {
    fn drop(&mut self) {
        let Some(id) = self.slot.take() else {
            return;
        };
        let lock = self.lock;
        let wakers = lock.state.with(|s| {
            match s.queue.remove(id) {
                Some(_) if lock.flaw == Flaw::CancelLosesHandoff => return Vec::new(),
                Some(Kind::Read) => s.readers -= 1,
                Some(Kind::Write) => s.writer = false,
                None => {}
            }
            // Even a node that held no grant may have blocked those behind
            // it (a queued writer holds back later readers).
            lock.grant(s)
        });
        wake_all(wakers);
    }
}

/// The future of [`RwLock::read`].
#[must_use = "futures do nothing unless polled"]
pub struct Read<'a, T>(Acquire<'a, T>);

impl<'a, T> Future for Read<'a, T> {
    type Output = RwLockReadGuard<'a, T>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let lock = this.0.lock;
        this.0.poll_acquire(cx).map(|()| RwLockReadGuard { lock })
    }
}

/// The future of [`RwLock::write`].
#[must_use = "futures do nothing unless polled"]
pub struct Write<'a, T>(Acquire<'a, T>);

impl<'a, T> Future for Write<'a, T> {
    type Output = RwLockWriteGuard<'a, T>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let lock = this.0.lock;
        this.0.poll_acquire(cx).map(|()| RwLockWriteGuard { lock })
    }
}

/// Shared access to a [`RwLock`]'s value; released on drop.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T> {
    lock: &'a RwLock<T>,
}

impl<T> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read guard proves no writer holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.release(Kind::Read);
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

/// Exclusive access to a [`RwLock`]'s value; released on drop.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T> {
    lock: &'a RwLock<T>,
}

impl<T> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a write guard proves exclusive ownership.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: a write guard proves exclusive ownership.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.release(Kind::Write);
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}
