//! The timer queue: a binary min-heap of `(deadline, sequence)` over a slab
//! of actions. Timers fire in deadline order, and timers due at the same
//! time in the order they were set (the sequence number), exactly as the
//! ordered map this replaces did. Cancelling a timer frees its slab entry at
//! once and leaves its heap entry behind as a tombstone, skipped when it
//! reaches the top; tombstones are swept out when they outnumber the live
//! timers. In steady state (as many timers set as fire or are cancelled)
//! nothing is allocated: the heap, the slab and its free list keep their
//! capacity. Add, cancel and fire are O(log n) (cancel is O(1) plus the
//! amortised sweep).

use super::context::TimerAction;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A set timer, as its owner keeps it to cancel it or refresh its waker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    /// When it is due, true (virtual) nanoseconds.
    pub(crate) at_ns: u64,
    seq: u64,
    idx: u32,
}

/// A slab entry: the sequence number of the timer living in it
/// (`FREE` when none) and its action.
struct Entry {
    seq: u64,
    action: Option<TimerAction>,
}

/// `Entry::seq` of a free entry (sequence numbers never reach it).
const FREE: u64 = u64::MAX;

/// Tombstones tolerated beyond the live timers before a sweep.
const TOMBSTONES_SLACK: usize = 64;

pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
    slab: Vec<Entry>,
    free: Vec<u32>,
    seq: u64,
    live: usize,
    /// A lower bound of the earliest live deadline (exact after `pop_due`
    /// returned `None`; cancelling may leave it early, never late).
    next_ns: u64,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            seq: 0,
            live: 0,
            next_ns: u64::MAX,
        }
    }
}

impl Timers {
    /// Sets a timer due at `at_ns`.
    pub(crate) fn add(&mut self, at_ns: u64, action: TimerAction) -> TimerKey {
        let seq = self.seq;
        self.seq += 1;
        let idx = match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = Entry {
                    seq,
                    action: Some(action),
                };
                i
            }
            None => {
                self.slab.push(Entry {
                    seq,
                    action: Some(action),
                });
                (self.slab.len() - 1) as u32
            }
        };
        self.heap.push(Reverse((at_ns, seq, idx)));
        self.live += 1;
        self.next_ns = self.next_ns.min(at_ns);
        TimerKey { at_ns, seq, idx }
    }

    fn is_live(&self, seq: u64, idx: u32) -> bool {
        self.slab.get(idx as usize).is_some_and(|e| e.seq == seq)
    }

    /// The action of a timer that has not fired or been cancelled.
    #[inline]
    pub(crate) fn get_mut(&mut self, key: TimerKey) -> Option<&mut TimerAction> {
        match self.slab.get_mut(key.idx as usize) {
            Some(e) if e.seq == key.seq => e.action.as_mut(),
            _ => None,
        }
    }

    /// Cancels a timer if it has not fired yet.
    #[inline]
    pub(crate) fn remove(&mut self, key: TimerKey) {
        if !self.is_live(key.seq, key.idx) {
            return;
        }
        let e = &mut self.slab[key.idx as usize];
        e.seq = FREE;
        e.action = None;
        self.free.push(key.idx);
        self.live -= 1;
        if self.heap.len() > 2 * self.live + TOMBSTONES_SLACK {
            self.sweep();
        }
    }

    /// Drops the tombstones from the heap.
    #[cold]
    fn sweep(&mut self) {
        let slab = &self.slab;
        self.heap
            .retain(|&Reverse((_, seq, idx))| slab[idx as usize].seq == seq);
    }

    /// Pops tombstones off the top; returns the earliest live deadline.
    pub(crate) fn first_ns(&mut self) -> Option<u64> {
        while let Some(&Reverse((at, seq, idx))) = self.heap.peek() {
            if self.is_live(seq, idx) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Whether a timer may be due at `now_ns` (cheap: no heap access).
    #[inline]
    pub(crate) fn maybe_due(&self, now_ns: u64) -> bool {
        self.next_ns <= now_ns
    }

    /// Takes the earliest timer if it is due at `now_ns`; when none is due,
    /// makes `maybe_due` exact.
    pub(crate) fn pop_due(&mut self, now_ns: u64) -> Option<TimerAction> {
        match self.first_ns() {
            Some(at) if at <= now_ns => {
                let Reverse((_, _, idx)) = self.heap.pop()?;
                let e = &mut self.slab[idx as usize];
                e.seq = FREE;
                self.free.push(idx);
                self.live -= 1;
                e.action.take()
            }
            first => {
                self.next_ns = first.unwrap_or(u64::MAX);
                None
            }
        }
    }

    /// Room of its largest buffer.
    pub(crate) fn capacity(&self) -> usize {
        self.heap.capacity().max(self.slab.capacity())
    }

    /// Drops every timer (their wakers and completions with them), keeping
    /// the buffers.
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
        self.slab.clear();
        self.free.clear();
        self.live = 0;
        self.seq = 0;
        self.next_ns = u64::MAX;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::node::NodeEvent;

    fn ev(node: u32) -> TimerAction {
        TimerAction::Node(NodeEvent::Restart { node })
    }

    fn node_of(a: TimerAction) -> u32 {
        match a {
            TimerAction::Node(NodeEvent::Restart { node }) => node,
            _ => unreachable!(),
        }
    }

    #[test]
    fn fires_by_deadline_then_by_setting_order_and_skips_cancelled() {
        let mut t = Timers::default();
        t.add(30, ev(0));
        let k = t.add(10, ev(1));
        t.add(20, ev(2));
        t.add(10, ev(3));
        t.add(20, ev(4));
        t.remove(k);
        t.remove(k);
        assert_eq!(t.first_ns(), Some(10));
        let mut fired = Vec::new();
        while let Some(a) = t.pop_due(25) {
            fired.push(node_of(a));
        }
        assert_eq!(fired, [3, 2, 4]);
        assert!(!t.maybe_due(29));
        assert!(t.maybe_due(30));
        assert_eq!(t.pop_due(30).map(node_of), Some(0));
        assert_eq!(t.pop_due(u64::MAX - 1).map(node_of), None);
        assert_eq!(t.live, 0);
    }

    #[test]
    fn cancelled_timers_do_not_pile_up() {
        let mut t = Timers::default();
        t.add(u64::MAX - 1, ev(9));
        for i in 0..10_000 {
            let k = t.add(1_000_000 + i, ev(0));
            t.remove(k);
        }
        assert!(t.heap.len() <= 2 + TOMBSTONES_SLACK, "{}", t.heap.len());
        assert!(t.slab.len() <= 2, "slab {}", t.slab.len());
        assert_eq!(t.pop_due(u64::MAX).map(node_of), Some(9));
    }
}
