//! The ready queue: woken tasks, by slot, in wake order.
//!
//! The policy chooses among `ids` as it is (`ids[i]` is the task id of
//! `queue[i]`); the step takes its choice out with a swap remove, so wake,
//! take and the policy's view are O(1). The non-preemptive default when the
//! task polled last is not runnable is the *oldest* runnable task (smallest
//! id): a min-heap of `(id, slot)` finds it in O(log n) amortised instead of
//! a scan of the ready set. The heap is lazy: built from the queue the first
//! time a run needs the oldest task (a run of tasks that only yield never
//! does). It holds at most one entry per task, which may outlive the task's
//! stay in the queue: an entry at the top whose task is not queued is
//! popped then (and the task pushed again at its next wake-up), one whose
//! task has ended is dropped then or by a sweep when they pile up. So a
//! wake-up costs one flag check unless the task's entry was popped, and
//! nothing is allocated in steady state.

use super::policy::TaskId;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A slot's state in the ready queue.
#[derive(Clone, Copy)]
pub(crate) struct SlotState {
    /// Generation of the slot's tenant: wake-ups of earlier tenants carry
    /// an older one and are dropped.
    pub(crate) gen: u32,
    /// Index in `Ready::queue` while queued, `NOT_QUEUED` otherwise.
    pub(crate) pos: u32,
    /// The tenant's task id.
    pub(crate) id: TaskId,
    /// Whether the tenant has an entry in the oldest-heap.
    in_heap: bool,
}

impl SlotState {
    /// The state of a new slot holding task `id`, not queued.
    pub(crate) fn new(id: TaskId) -> Self {
        SlotState {
            gen: 0,
            pos: NOT_QUEUED,
            id,
            in_heap: false,
        }
    }
}

/// `SlotState::pos` of a slot that is not in the ready queue.
pub(crate) const NOT_QUEUED: u32 = u32::MAX;

/// Entries of ended tasks tolerated in the oldest-heap beyond one per slot
/// before a sweep.
const STALE_SLACK: usize = 64;

/// Woken tasks, by slot, in wake order (see the module docs).
#[derive(Default)]
pub(crate) struct Ready {
    pub(crate) queue: Vec<u32>,
    pub(crate) ids: Vec<TaskId>,
    pub(crate) slots: Vec<SlotState>,
    /// `(task id, slot)`, smallest id on top: every queued task, some
    /// tasks that are not queued, some that ended; kept once `oldest_on`.
    oldest: BinaryHeap<Reverse<(TaskId, u32)>>,
    oldest_on: bool,
}

impl Ready {
    #[inline]
    pub(crate) fn wake(&mut self, slot: u32, gen: u32) {
        let Some(st) = self.slots.get_mut(slot as usize) else {
            return;
        };
        if st.gen != gen || st.pos != NOT_QUEUED {
            return;
        }
        st.pos = self.queue.len() as u32;
        self.queue.push(slot);
        self.ids.push(st.id);
        if self.oldest_on && !st.in_heap {
            st.in_heap = true;
            self.oldest.push(Reverse((st.id, slot)));
        }
    }

    /// The slot's task ended and `id` moves in (not queued).
    pub(crate) fn new_tenant(&mut self, slot: u32, id: TaskId) {
        let st = &mut self.slots[slot as usize];
        st.id = id;
        st.in_heap = false;
        if self.oldest.len() > 2 * self.slots.len() + STALE_SLACK {
            self.sweep();
        }
    }

    /// Empties the queue, keeping its buffers (for the next run).
    pub(crate) fn clear(&mut self) {
        self.queue.clear();
        self.ids.clear();
        self.slots.clear();
        self.oldest.clear();
        self.oldest_on = false;
    }

    /// Room of its largest buffer.
    pub(crate) fn capacity(&self) -> usize {
        self.slots
            .capacity()
            .max(self.queue.capacity())
            .max(self.oldest.capacity())
    }

    /// Whether `slot` is queued, and where.
    #[inline]
    pub(crate) fn pos(&self, slot: u32) -> Option<usize> {
        let p = self.slots[slot as usize].pos;
        (p != NOT_QUEUED).then_some(p as usize)
    }

    /// Takes the entry at `pos` out (the last one moves into its place) and
    /// returns its slot.
    #[inline]
    pub(crate) fn take_at(&mut self, pos: usize) -> u32 {
        let slot = self.queue.swap_remove(pos);
        self.ids.swap_remove(pos);
        if let Some(&moved) = self.queue.get(pos) {
            self.slots[moved as usize].pos = pos as u32;
        }
        self.slots[slot as usize].pos = NOT_QUEUED;
        slot
    }

    /// Takes `slot` out of the queue if it is queued, keeping the order of
    /// the others.
    pub(crate) fn remove(&mut self, slot: u32) {
        let Some(pos) = self.pos(slot) else { return };
        self.queue.remove(pos);
        self.ids.remove(pos);
        self.slots[slot as usize].pos = NOT_QUEUED;
        for (i, &s) in self.queue.iter().enumerate().skip(pos) {
            self.slots[s as usize].pos = i as u32;
        }
    }

    /// Takes every queued slot for which `gone` holds out of the queue, in
    /// one pass, keeping the order of the others (what calling `remove` on
    /// each would leave, in O(queue) instead of O(queue) per slot).
    pub(crate) fn remove_where(&mut self, mut gone: impl FnMut(u32) -> bool) {
        let mut kept = 0;
        for i in 0..self.queue.len() {
            let slot = self.queue[i];
            if gone(slot) {
                self.slots[slot as usize].pos = NOT_QUEUED;
            } else {
                self.queue[kept] = slot;
                self.ids[kept] = self.ids[i];
                self.slots[slot as usize].pos = kept as u32;
                kept += 1;
            }
        }
        self.queue.truncate(kept);
        self.ids.truncate(kept);
    }

    /// The position in the queue of the oldest queued task (smallest id);
    /// the queue must not be empty.
    pub(crate) fn oldest_pos(&mut self) -> usize {
        if !self.oldest_on {
            self.oldest_on = true;
            self.rebuild();
        }
        while let Some(&Reverse((id, slot))) = self.oldest.peek() {
            let st = &mut self.slots[slot as usize];
            if st.id == id {
                if st.pos != NOT_QUEUED {
                    return st.pos as usize;
                }
                st.in_heap = false;
            }
            self.oldest.pop();
        }
        unreachable!("oldest_pos on an empty ready queue")
    }

    /// Drops the entries of ended tasks.
    #[cold]
    fn sweep(&mut self) {
        let slots = &self.slots;
        self.oldest
            .retain(|&Reverse((id, slot))| slots[slot as usize].id == id);
    }

    /// One entry per queued task.
    #[cold]
    fn rebuild(&mut self) {
        let mut v = std::mem::take(&mut self.oldest).into_vec();
        v.clear();
        for st in &mut self.slots {
            st.in_heap = false;
        }
        for &slot in &self.queue {
            let st = &mut self.slots[slot as usize];
            st.in_heap = true;
            v.push(Reverse((st.id, slot)));
        }
        self.oldest = BinaryHeap::from(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Ready {
        fn clone_queue(&self) -> Vec<(u32, TaskId)> {
            for (i, &s) in self.queue.iter().enumerate() {
                assert_eq!(self.slots[s as usize].pos as usize, i, "pos of slot {s}");
            }
            self.queue
                .iter()
                .copied()
                .zip(self.ids.iter().copied())
                .collect()
        }
    }

    /// The index of the smallest id, by a scan (what the heap replaces).
    fn scan_oldest(ids: &[TaskId]) -> usize {
        (0..ids.len()).min_by_key(|&i| ids[i]).unwrap()
    }

    #[test]
    fn oldest_matches_a_scan_through_wakes_takes_and_removals() {
        let mut r = Ready::default();
        for id in 0..50u64 {
            r.slots.push(SlotState::new(id));
        }
        let mut x = 12345u64;
        let mut rnd = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for step in 0..20_000 {
            match rnd(4) {
                0 | 1 => {
                    let s = rnd(50) as u32;
                    let gen = r.slots[s as usize].gen;
                    r.wake(s, gen);
                }
                2 if !r.queue.is_empty() => {
                    let pos = rnd(r.queue.len() as u64) as usize;
                    r.take_at(pos);
                }
                3 if step % 501 == 0 => {
                    // A node crash: a batch of slots leaves at once.
                    let cut = rnd(50) as u32;
                    let mut expect = r.clone_queue();
                    expect.retain(|&(s, _)| s % 5 != cut % 5);
                    r.remove_where(|s| s % 5 == cut % 5);
                    assert_eq!(r.clone_queue(), expect, "step {step}");
                }
                3 if step % 7 == 0 => {
                    // The slot's task ends and a new one moves in.
                    let s = rnd(50) as u32;
                    r.remove(s);
                    r.slots[s as usize].gen += 1;
                    let id = r.slots[s as usize].id + 1000;
                    r.new_tenant(s, id);
                }
                _ => {}
            }
            if !r.queue.is_empty() && step > 100 {
                assert_eq!(r.oldest_pos(), scan_oldest(&r.ids), "step {step}");
            }
        }
        assert!(r.oldest.len() <= 2 * r.slots.len() + STALE_SLACK + 1);
    }
}
