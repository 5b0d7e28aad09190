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
//! The queue is a doubly linked list through a slab; a node's id is its slot
//! and the slot's generation, so finding, refreshing or removing an
//! acquire's node costs O(1) however many wait (a pile of 100,000 waiters
//! cancelled at shutdown stays linear overall), and once the slab has grown
//! to the queue's peak a hand-off allocates nothing. Only the
//! `WakerPerPoll` twin enqueues duplicates of an id (nodes of their own),
//! and only it searches the queue.

use super::{Flaw, Mutex};
use crate::probe::{self, LockClass};
use std::panic::Location;
use std::task::{Context, Poll, Waker};

struct Waiter {
    id: u64,
    waker: Option<Waker>,
    granted: bool,
}

/// `Slot::prev` / `next` of no slot.
const NIL: u32 = u32::MAX;

/// A node of the waiter queue: a doubly linked list threaded through a
/// slab, so a waiter is queued, found and removed in O(1) (a cancelled
/// waiter of a long queue costs nothing to take out) and a slot is reused
/// without allocating once the slab has grown to the queue's peak.
struct Slot {
    waiter: Option<Waiter>,
    gen: u32,
    prev: u32,
    next: u32,
}

/// The FIFO queue of waiters. A node's key is its slot and the slot's
/// generation, so a key of a removed node never finds a later tenant.
#[derive(Default)]
struct Queue {
    slots: Vec<Slot>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    len: usize,
}

impl Queue {
    fn new() -> Self {
        Queue {
            head: NIL,
            tail: NIL,
            ..Queue::default()
        }
    }

    fn key(index: u32, gen: u32) -> u64 {
        (u64::from(gen) << 32) | u64::from(index)
    }

    /// Appends `w`; returns its key.
    fn push_back(&mut self, w: Waiter) -> u64 {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    waiter: None,
                    gen: 0,
                    prev: NIL,
                    next: NIL,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let tail = self.tail;
        let slot = &mut self.slots[index as usize];
        slot.waiter = Some(w);
        slot.prev = tail;
        slot.next = NIL;
        let gen = slot.gen;
        match tail {
            NIL => self.head = index,
            t => self.slots[t as usize].next = index,
        }
        self.tail = index;
        self.len += 1;
        Queue::key(index, gen)
    }

    fn index(&self, key: u64) -> Option<usize> {
        let (index, gen) = ((key & 0xffff_ffff) as usize, (key >> 32) as u32);
        let slot = self.slots.get(index)?;
        (slot.gen == gen && slot.waiter.is_some()).then_some(index)
    }

    fn get(&self, key: u64) -> Option<&Waiter> {
        self.index(key).and_then(|i| self.slots[i].waiter.as_ref())
    }

    fn get_mut(&mut self, key: u64) -> Option<&mut Waiter> {
        let i = self.index(key)?;
        self.slots[i].waiter.as_mut()
    }

    /// Takes the node of `key` out, if it is queued.
    fn remove(&mut self, key: u64) -> Option<Waiter> {
        let i = self.index(key)?;
        let (prev, next) = (self.slots[i].prev, self.slots[i].next);
        match prev {
            NIL => self.head = next,
            p => self.slots[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.slots[n as usize].prev = prev,
        }
        let slot = &mut self.slots[i];
        slot.gen = slot.gen.wrapping_add(1);
        self.free.push(i as u32);
        self.len -= 1;
        slot.waiter.take()
    }

    /// Keys in FIFO order.
    fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        let mut at = self.head;
        std::iter::from_fn(move || {
            if at == NIL {
                return None;
            }
            let slot = &self.slots[at as usize];
            let key = Queue::key(at, slot.gen);
            at = slot.next;
            Some(key)
        })
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

struct PoolState {
    available: usize,
    /// The waiters, in FIFO order.
    waiters: Queue,
}

impl PoolState {
    /// Enqueues a node for the acquire `id` (a new acquire passes `None` and
    /// gets its node's key as its id; the `WakerPerPoll` twin's duplicate of
    /// `id` gets a node of its own). Returns the id.
    fn push(&mut self, id: Option<u64>, waker: Waker) -> u64 {
        let node = Waiter {
            id: id.unwrap_or(u64::MAX),
            waker: Some(waker),
            granted: false,
        };
        let key = self.waiters.push_back(node);
        match id {
            Some(id) => id,
            None => {
                if let Some(w) = self.waiters.get_mut(key) {
                    w.id = key;
                }
                key
            }
        }
    }

    /// The key of the first node of `id` that satisfies `pred`.
    fn find(&self, id: u64, flaw: Flaw, pred: impl Fn(&Waiter) -> bool) -> Option<u64> {
        match self.waiters.get(id) {
            Some(w) if w.id == id && pred(w) => Some(id),
            _ if flaw == Flaw::WakerPerPoll => self
                .waiters
                .keys()
                .find(|&k| self.waiters.get(k).is_some_and(|w| w.id == id && pred(w))),
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
                waiters: Queue::new(),
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
        self.state.with(|s| s.waiters.len)
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
            if let Some(key) = s.find(id, flaw, |w| w.granted) {
                s.waiters.remove(key);
                *slot = None;
                return Poll::Ready(());
            }
            if flaw == Flaw::WakerPerPoll {
                s.push(Some(id), cx.waker().clone());
            } else if let Some(w) = s.waiters.get_mut(id) {
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
                let dups: Vec<u64> = s
                    .waiters
                    .keys()
                    .filter(|&k| s.waiters.get(k).is_some_and(|w| w.id == id))
                    .collect();
                for k in dups {
                    s.waiters.remove(k);
                }
            } else {
                s.waiters.remove(id);
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
        let first = s
            .waiters
            .keys()
            .find(|&k| s.waiters.get(k).is_some_and(|w| !w.granted));
        match first.and_then(|k| s.waiters.get_mut(k)) {
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
