//! [`WaitList`]: the FIFO queue of waiter nodes under the channel, `Notify`
//! and `RwLock` (the `Gate`/`Semaphore` pool keeps its own).
//!
//! The two rules of DESIGN.md's "Pitfalls seen here" live here once:
//! * a wait future owns exactly **one** node, found by its id; a pending
//!   re-poll refreshes that node's waker ([`WaitList::refresh`]) instead of
//!   queueing another;
//! * a node is *granted* (handed the slot, message room, notification or
//!   lock) before its task is woken, and stays queued until its future sees
//!   the grant ([`WaitList::take_granted`]); a future dropped with a grant
//!   learns it from [`WaitList::remove`] and must pass the grant on.
//!
//! The list is reached only under its owner's state lock.

use std::collections::VecDeque;
use std::task::Waker;

struct Node<K> {
    id: u64,
    kind: K,
    waker: Option<Waker>,
    granted: bool,
}

/// Waiter nodes in arrival order; `K` tells kinds of waiters apart (the
/// `RwLock`'s readers and writers), `()` when there is one kind.
pub(crate) struct WaitList<K = ()> {
    nodes: VecDeque<Node<K>>,
    next_id: u64,
}

impl<K: Copy> WaitList<K> {
    pub(crate) const fn new() -> Self {
        WaitList {
            nodes: VecDeque::new(),
            next_id: 0,
        }
    }

    /// Queues a new node of `kind` waking `waker`; returns its id.
    pub(crate) fn push(&mut self, kind: K, waker: &Waker) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.nodes.push_back(Node {
            id,
            kind,
            waker: Some(waker.clone()),
            granted: false,
        });
        id
    }

    /// A pending re-poll of node `id`: refreshes its waker. With
    /// `duplicate` (the planted `Flaw::WakerPerPoll`) it queues a stale
    /// copy of the node instead, as a waker-per-poll queue does.
    pub(crate) fn refresh(&mut self, id: u64, waker: &Waker, duplicate: bool) {
        if duplicate {
            if let Some(kind) = self.nodes.iter().find(|n| n.id == id).map(|n| n.kind) {
                self.nodes.push_back(Node {
                    id,
                    kind,
                    waker: Some(waker.clone()),
                    granted: false,
                });
            }
            return;
        }
        if let Some(n) = self.nodes.iter_mut().find(|n| n.id == id) {
            match &mut n.waker {
                Some(old) if old.will_wake(waker) => {}
                Some(old) => old.clone_from(waker),
                slot @ None => *slot = Some(waker.clone()),
            }
        }
    }

    /// Removes node `id` if it was granted; `true` when it was (the wait is
    /// over).
    pub(crate) fn take_granted(&mut self, id: u64) -> bool {
        match self.nodes.iter().position(|n| n.id == id && n.granted) {
            Some(pos) => {
                self.nodes.remove(pos);
                true
            }
            None => false,
        }
    }

    /// Removes every node of `id` (a dropped wait future); returns the kind
    /// of the grant it held, if it held one (the caller passes it on).
    pub(crate) fn remove(&mut self, id: u64) -> Option<K> {
        let granted = self
            .nodes
            .iter()
            .find(|n| n.id == id && n.granted)
            .map(|n| n.kind);
        self.nodes.retain(|n| n.id != id);
        granted
    }

    /// The kind of the first node not yet granted.
    pub(crate) fn first_waiting(&self) -> Option<K> {
        self.nodes.iter().find(|n| !n.granted).map(|n| n.kind)
    }

    /// Whether some node waits without a grant.
    pub(crate) fn has_waiting(&self) -> bool {
        self.nodes.iter().any(|n| !n.granted)
    }

    /// Grants the first node not yet granted and returns its waker (to be
    /// woken once the state lock is released).
    pub(crate) fn grant_first(&mut self) -> Option<Waker> {
        let n = self.nodes.iter_mut().find(|n| !n.granted)?;
        n.granted = true;
        n.waker.take()
    }

    /// Removes every node not yet granted and returns their wakers.
    pub(crate) fn drain_waiting(&mut self) -> Vec<Waker> {
        let mut wakers = Vec::new();
        self.nodes.retain_mut(|n| {
            if n.granted {
                return true;
            }
            wakers.extend(n.waker.take());
            false
        });
        wakers
    }

    /// Number of nodes, granted or not.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }
}

/// Wakes every waker of `wakers` (after the state lock is released).
pub(crate) fn wake_all(wakers: impl IntoIterator<Item = Waker>) {
    wakers.into_iter().for_each(Waker::wake);
}

#[cfg(test)]
mod tests {
    use super::WaitList;
    use std::task::Waker;

    #[test]
    fn one_node_per_waiter_and_grants_in_order() {
        let w = Waker::noop();
        let mut l: WaitList = WaitList::new();
        let a = l.push((), w);
        let b = l.push((), w);
        l.refresh(a, w, false);
        assert_eq!(l.len(), 2, "a re-poll must not queue a second node");
        assert!(l.grant_first().is_some());
        assert!(!l.take_granted(b), "b is not first");
        assert!(l.take_granted(a));
        assert_eq!(l.remove(b), None, "b held no grant");
        assert_eq!(l.len(), 0);
    }

    #[test]
    fn duplicate_flaw_leaves_a_stale_node() {
        let w = Waker::noop();
        let mut l: WaitList = WaitList::new();
        let a = l.push((), w);
        l.refresh(a, w, true);
        assert_eq!(l.len(), 2);
        l.grant_first();
        assert!(l.take_granted(a));
        assert!(l.has_waiting(), "the stale copy still waits");
    }
}
