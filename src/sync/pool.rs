//! The permit pool under both [`Gate`](super::Gate) (capacity 1) and
//! [`Semaphore`](super::Semaphore): a count of free permits and a FIFO queue
//! of waiters, with direct hand-off on release.
//!
//! Two rules keep it correct under spurious polls and cancellation (see
//! DESIGN.md, "Pitfalls seen here"):
//! * every acquire future owns exactly **one** waiter node, found by id; a
//!   pending re-poll only refreshes that node's waker;
//! * a release hands its permit to the first waiter not yet served and marks
//!   the node granted; if that acquire is dropped before it observes the
//!   grant, the drop hands the permit on again.
//!
//! [`Flaw`] switches on one deliberate bug at a time, so the model-check tests
//! can prove they catch it. Production code always uses [`Flaw::None`].
//!
//! The queue is ordered by a sequence number given at enqueue; a node's id is
//! the sequence number it was enqueued with, so finding, refreshing or
//! removing an acquire's node costs O(log n) however many wait (a pile of
//! 100,000 waiters cancelled at shutdown stays linear overall). Only the
//! `WakerPerPoll` twin enqueues duplicates of an id (under fresh sequence
//! numbers), and only it searches the queue.

use super::{Flaw, Mutex};
use crate::probe::{self, LockClass};
use std::collections::BTreeMap;
use std::panic::Location;
use std::task::{Context, Poll, Waker};

struct Waiter {
    id: u64,
    waker: Option<Waker>,
    granted: bool,
}

struct PoolState {
    available: usize,
    /// By sequence number: the FIFO order.
    waiters: BTreeMap<u64, Waiter>,
    next_id: u64,
}

impl PoolState {
    /// Enqueues a node for the acquire `id` (a new acquire passes `None` and
    /// gets a fresh id; the `WakerPerPoll` twin's duplicate of `id` is
    /// queued under a fresh sequence number). Returns the id.
    fn push(&mut self, id: Option<u64>, waker: Waker) -> u64 {
        let seq = self.next_id;
        self.next_id += 1;
        let node = Waiter {
            id: id.unwrap_or(seq),
            waker: Some(waker),
            granted: false,
        };
        let id = node.id;
        self.waiters.insert(seq, node);
        id
    }

    /// The sequence number of the first node of `id` that satisfies `pred`.
    fn find(&self, id: u64, flaw: Flaw, pred: impl Fn(&Waiter) -> bool) -> Option<u64> {
        match self.waiters.get(&id) {
            Some(w) if w.id == id && pred(w) => Some(id),
            _ if flaw == Flaw::WakerPerPoll => self
                .waiters
                .iter()
                .find(|(_, w)| w.id == id && pred(w))
                .map(|(&seq, _)| seq),
            _ => None,
        }
    }
}

pub(crate) struct Pool {
    state: Mutex<PoolState>,
    capacity: usize,
    flaw: Flaw,
    class: Option<LockClass>,
}

impl Pool {
    pub(crate) fn new(capacity: usize, flaw: Flaw, class: Option<LockClass>) -> Self {
        Pool {
            state: Mutex::new(PoolState {
                available: capacity,
                waiters: BTreeMap::new(),
                next_id: 0,
            }),
            capacity,
            flaw,
            class,
        }
    }

    /// Tells the lock-order probe that a permit was taken at `site`.
    pub(crate) fn report_taken(&self, site: &'static Location<'static>) {
        if let Some(class) = self.class {
            probe::lock_acquired(class, site);
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn available(&self) -> usize {
        self.state.with(|s| s.available)
    }

    pub(crate) fn waiters(&self) -> usize {
        self.state.with(|s| s.waiters.len())
    }

    /// Takes a permit if one is free and nobody queues ahead.
    pub(crate) fn try_take(&self) -> bool {
        if self.flaw == Flaw::CheckThenTake {
            let free = self.state.with(|s| s.available > 0 && s.waiters.is_empty());
            if free {
                self.state
                    .with(|s| s.available = s.available.saturating_sub(1));
            }
            return free;
        }
        self.state.with(|s| {
            let free = s.available > 0 && s.waiters.is_empty();
            if free {
                s.available -= 1;
            }
            free
        })
    }

    /// Polls an acquire whose waiter node id lives in `slot`.
    pub(crate) fn poll_take(&self, slot: &mut Option<u64>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(id) = *slot else {
            if self.flaw == Flaw::CheckThenTake && self.try_take() {
                return Poll::Ready(());
            }
            // Check and enqueue in one critical section, or a release between
            // the two would be lost.
            let queued = self.state.with(|s| {
                if s.available > 0 && s.waiters.is_empty() {
                    s.available -= 1;
                    return None;
                }
                Some(s.push(None, cx.waker().clone()))
            });
            *slot = queued;
            return if queued.is_some() {
                Poll::Pending
            } else {
                Poll::Ready(())
            };
        };
        let flaw = self.flaw;
        self.state.with(|s| {
            if let Some(seq) = s.find(id, flaw, |w| w.granted) {
                s.waiters.remove(&seq);
                *slot = None;
                return Poll::Ready(());
            }
            if flaw == Flaw::WakerPerPoll {
                s.push(Some(id), cx.waker().clone());
            } else if let Some(w) = s.waiters.get_mut(&id) {
                match &w.waker {
                    Some(old) if old.will_wake(cx.waker()) => {}
                    _ => w.waker = Some(cx.waker().clone()),
                }
            }
            Poll::Pending
        })
    }

    /// Called when an acquire future is dropped while its node is queued.
    pub(crate) fn cancel(&self, id: u64) {
        let flaw = self.flaw;
        let wake = self.state.with(|s| {
            let was_granted = s.find(id, flaw, |w| w.granted).is_some();
            if flaw == Flaw::WakerPerPoll {
                s.waiters.retain(|_, w| w.id != id);
            } else {
                s.waiters.remove(&id);
            }
            if was_granted && flaw != Flaw::CancelLosesHandoff {
                Self::hand_off(s, flaw)
            } else {
                None
            }
        });
        if let Some(w) = wake {
            w.wake();
        }
    }

    /// Returns one permit: to the first waiter not yet served, else the pool.
    pub(crate) fn give_back(&self) {
        if let Some(class) = self.class {
            probe::lock_released(class);
        }
        if self.flaw == Flaw::DropLeaksPermit {
            return;
        }
        let flaw = self.flaw;
        if let Some(w) = self.state.with(|s| Self::hand_off(s, flaw)) {
            w.wake();
        }
    }

    fn hand_off(s: &mut PoolState, flaw: Flaw) -> Option<Waker> {
        if flaw == Flaw::LostWakeup {
            s.available += 1;
            return None;
        }
        match s.waiters.values_mut().find(|w| !w.granted) {
            Some(w) => {
                w.granted = true;
                w.waker.take()
            }
            None => {
                s.available += 1;
                None
            }
        }
    }
}
