//! [`Notify`]: wake one task or all of them, with tokio's semantics.
//!
//! ```
//! use faultline::sync::{block_on, Notify};
//!
//! let notify = Notify::new();
//! notify.notify_one(); // nobody waits: a permit is stored
//! block_on(notify.notified()); // ...and consumed here at once
//! ```
//!
//! One atomic word holds the stored permit, whether tasks wait, and how
//! many times `notify_waiters` ran; the uncontended paths (a permit stored
//! or taken while nobody waits) touch only it. Waiters queue under a lock,
//! one node per [`Notified`] future.

use super::waiters::{wake_all, WaitList};
use super::{AtomicU64, Flaw, Mutex, Ordering};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A notification is stored (at most one).
const PERMIT: u64 = 1;
/// Some [`Notified`] future queues without a grant (changed only under the
/// waiters lock).
const WAITING: u64 = 2;
/// One `notify_waiters` call, counted in the bits above the flags.
const GEN_ONE: u64 = 4;
const SEQ: Ordering = Ordering::SeqCst;

fn generation(state: u64) -> u64 {
    state / GEN_ONE
}

/// Notifies tasks waiting in [`Notify::notified`].
///
/// * [`Notify::notify_one`] wakes the longest-waiting task, or, if none
///   waits, stores one permit that the next `notified().await` consumes at
///   once (permits do not add up: at most one is stored);
/// * [`Notify::notify_waiters`] wakes every task waiting now, and every
///   [`Notified`] future created before the call, and stores nothing.
pub struct Notify {
    state: AtomicU64,
    waiters: Mutex<WaitList>,
    flaw: Flaw,
}

impl Notify {
    /// A `Notify` with no permit stored.
    pub fn new() -> Self {
        Self::new_flawed(Flaw::None)
    }

    /// Creates a `Notify` with a deliberate bug, for tests that prove a
    /// checker catches it. Never use outside tests.
    #[doc(hidden)]
    pub fn new_flawed(flaw: Flaw) -> Self {
        Notify {
            state: AtomicU64::new(0),
            waiters: Mutex::new(WaitList::new()),
            flaw,
        }
    }

    /// Waits for a notification.
    ///
    /// The future counts as waiting for `notify_waiters` from its creation,
    /// and for `notify_one` from its first poll.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future gives up its place in the queue,
    /// and a `notify_one` already handed to it passes to the next waiter
    /// (or is stored as the permit), so no notification is swallowed.
    pub fn notified(&self) -> Notified<'_> {
        Notified {
            notify: self,
            generation: generation(self.state.load(SEQ)),
            slot: None,
            done: false,
        }
    }

    /// Wakes the longest-waiting task, or stores a permit if none waits.
    pub fn notify_one(&self) {
        let mut cur = self.state.load(SEQ);
        while cur & WAITING == 0 {
            if self.flaw == Flaw::LostWakeup {
                return;
            }
            match self.state.compare_exchange(cur, cur | PERMIT, SEQ, SEQ) {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
        let waker = self.waiters.with(|list| {
            if self.state.load(SEQ) & WAITING == 0 {
                // The waiters left between the load and the lock.
                self.store_permit();
                return None;
            }
            let waker = list.grant_first();
            self.sync_waiting(list);
            waker
        });
        wake_all(waker);
    }

    /// Wakes every task waiting now (and every [`Notified`] created before
    /// this call); stores no permit.
    pub fn notify_waiters(&self) {
        let wakers = self.waiters.with(|list| {
            let wakers = list.drain_waiting();
            let mut cur = self.state.load(SEQ);
            loop {
                let next = cur.wrapping_add(GEN_ONE) & !WAITING;
                match self.state.compare_exchange(cur, next, SEQ, SEQ) {
                    Ok(_) => break wakers,
                    Err(actual) => cur = actual,
                }
            }
        });
        wake_all(wakers);
    }

    /// Tasks queued in `notified()` now (for oracles and metrics).
    pub fn waiters(&self) -> usize {
        self.waiters.with(|l| l.len())
    }

    /// Stores the permit (unless the planted lost wake-up drops it).
    fn store_permit(&self) {
        if self.flaw != Flaw::LostWakeup {
            self.state.fetch_or(PERMIT, SEQ);
        }
    }

    /// Clears `WAITING` when no node waits any more (under the lock).
    fn sync_waiting(&self, list: &WaitList) {
        if !list.has_waiting() {
            self.state.fetch_and(!WAITING, SEQ);
        }
    }

    /// Takes the stored permit, if any, without the lock.
    fn take_permit(&self, mut cur: u64) -> bool {
        while cur & PERMIT != 0 {
            match self.state.compare_exchange(cur, cur & !PERMIT, SEQ, SEQ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
        false
    }
}

impl Default for Notify {
    fn default() -> Self {
        Notify::new()
    }
}

impl std::fmt::Debug for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.load(SEQ);
        f.debug_struct("Notify")
            .field("permit", &(state & PERMIT != 0))
            .field("waiting", &(state & WAITING != 0))
            .finish()
    }
}

/// The future of [`Notify::notified`].
#[must_use = "futures do nothing unless polled"]
pub struct Notified<'a> {
    notify: &'a Notify,
    /// `notify_waiters` calls seen at creation.
    generation: u64,
    /// The id of this future's waiter node, while it queues.
    slot: Option<u64>,
    done: bool,
}

impl Notified<'_> {
    /// The first poll: take the permit, or queue.
    fn first_poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let n = self.notify;
        let cur = n.state.load(SEQ);
        if generation(cur) != self.generation || n.take_permit(cur) {
            return Poll::Ready(());
        }
        n.waiters.with(|list| {
            let mut cur = n.state.load(SEQ);
            loop {
                if generation(cur) != self.generation {
                    return Poll::Ready(());
                }
                // Each exchange starts from the value just seen, and
                // `WAITING` is only set on a value without the permit: a
                // permit taken by another task and stored again meanwhile
                // (A-B-A) makes the exchange fail instead of queueing this
                // future next to a stored permit.
                let next = if cur & PERMIT != 0 {
                    cur & !PERMIT
                } else {
                    cur | WAITING
                };
                match n.state.compare_exchange(cur, next, SEQ, SEQ) {
                    Ok(_) if cur & PERMIT != 0 => return Poll::Ready(()),
                    Ok(_) => break,
                    Err(actual) => cur = actual,
                }
            }
            self.slot = Some(list.push((), cx.waker()));
            Poll::Pending
        })
    }
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(());
        }
        let out = match this.slot {
            None => this.first_poll(cx),
            Some(id) => {
                let n = this.notify;
                let flaw = n.flaw;
                n.waiters.with(|list| {
                    if list.take_granted(id) || generation(n.state.load(SEQ)) != this.generation {
                        // Granted by notify_one, or drained by
                        // notify_waiters: either way the node is gone.
                        return Poll::Ready(());
                    }
                    list.refresh(id, cx.waker(), flaw == Flaw::WakerPerPoll);
                    Poll::Pending
                })
            }
        };
        if out.is_ready() {
            this.slot = None;
            this.done = true;
        }
        out
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        let Some(id) = self.slot.take() else {
            return;
        };
        let n = self.notify;
        let waker = n.waiters.with(|list| {
            let granted = list.remove(id).is_some();
            let waker = if granted && n.flaw != Flaw::CancelLosesHandoff {
                // Pass the notify_one on: to the next waiter, else store it.
                let next = list.grant_first();
                if next.is_none() {
                    n.store_permit();
                }
                next
            } else {
                None
            };
            n.sync_waiting(list);
            waker
        });
        wake_all(waker);
    }
}

impl std::fmt::Debug for Notified<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notified")
            .field("queued", &self.slot.is_some())
            .finish()
    }
}
