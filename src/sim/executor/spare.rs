//! Buffers a finished run leaves to the next run on the same thread.
//!
//! A seed sweep runs thousands of short simulations in a row; growing the
//! same dozen vectors from nothing in each of them was a third of a small
//! run's cost. The vectors (emptied, capacity kept) wait in a thread-local
//! until the next `Sim::new` takes them. Buffers that grew past
//! `KEPT_LEN_MAX` are dropped instead, so one huge run does not pin its
//! memory for the rest of the thread's life.

use super::{TaskCold, TaskSlot};
use crate::sim::context::NewTask;
use crate::sim::policy::TaskId;
use crate::sim::ready::Ready;
use crate::sim::timers::Timers;
use std::cell::Cell;

/// Elements a kept buffer may have room for, at most.
const KEPT_LEN_MAX: usize = 1 << 16;

/// The recycled buffers, all empty.
#[derive(Default)]
pub(super) struct Spare {
    pub(super) tasks: Vec<Option<TaskSlot>>,
    pub(super) cold: Vec<Option<TaskCold>>,
    pub(super) free: Vec<u32>,
    pub(super) eligible: Vec<TaskId>,
    pub(super) eligible_pos: Vec<usize>,
    pub(super) admitting: Vec<NewTask>,
    pub(super) spawned: Vec<NewTask>,
    pub(super) aborts: Vec<TaskId>,
    pub(super) ready: Ready,
    pub(super) timers: Timers,
}

thread_local! {
    static SPARE: Cell<Option<Box<Spare>>> = const { Cell::new(None) };
}

/// The buffers the last run on this thread left, or new empty ones.
pub(super) fn take() -> Box<Spare> {
    SPARE.with(Cell::take).unwrap_or_default()
}

/// Keeps `spare` for the next run (every buffer must be empty).
pub(super) fn give(spare: Box<Spare>) {
    let big = spare.tasks.capacity() > KEPT_LEN_MAX
        || spare.free.capacity() > KEPT_LEN_MAX
        || spare.eligible.capacity() > KEPT_LEN_MAX
        || spare.admitting.capacity() > KEPT_LEN_MAX
        || spare.spawned.capacity() > KEPT_LEN_MAX
        || spare.aborts.capacity() > KEPT_LEN_MAX
        || spare.ready.capacity() > KEPT_LEN_MAX
        || spare.timers.capacity() > KEPT_LEN_MAX;
    debug_assert!(spare.tasks.is_empty() && spare.spawned.is_empty());
    if !big {
        // `try_with`: a thread being torn down keeps nothing.
        let _ = SPARE.try_with(|s| s.set(Some(spare)));
    }
}
