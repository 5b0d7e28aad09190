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

use super::{Flaw, Mutex};
use crate::probe::{self, LockClass};
use std::collections::VecDeque;
use std::panic::Location;
use std::task::{Context, Poll, Waker};

struct Waiter {
    id: u64,
    waker: Option<Waker>,
    granted: bool,
}

struct PoolState {
    available: usize,
    waiters: VecDeque<Waiter>,
    next_id: u64,
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
                waiters: VecDeque::new(),
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
                let id = s.next_id;
                s.next_id += 1;
                s.waiters.push_back(Waiter {
                    id,
                    waker: Some(cx.waker().clone()),
                    granted: false,
                });
                Some(id)
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
            if let Some(pos) = s.waiters.iter().position(|w| w.id == id && w.granted) {
                s.waiters.remove(pos);
                *slot = None;
                return Poll::Ready(());
            }
            if flaw == Flaw::WakerPerPoll {
                s.waiters.push_back(Waiter {
                    id,
                    waker: Some(cx.waker().clone()),
                    granted: false,
                });
            } else if let Some(w) = s.waiters.iter_mut().find(|w| w.id == id) {
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
            let was_granted = s.waiters.iter().any(|w| w.id == id && w.granted);
            s.waiters.retain(|w| w.id != id);
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
        match s.waiters.iter_mut().find(|w| !w.granted) {
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
