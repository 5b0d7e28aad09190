//! The running simulation's shared state, reached through a thread-local so
//! that handles, wakers and probes stay `Send + Sync` and allocation-free.

use super::failure::Failure;
use super::faults::FaultPlan;
use super::lockorder::LockOrder;
use super::memory::MemoryMeter;
use super::node::Node;
use super::policy::{Recorder, TaskId};
pub(crate) use super::ready::Ready;
use super::timers::{TimerKey, Timers};
use super::trace::{EventKind, Trace};
use crate::sched::Completion;
use crate::sync::Arc;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::{RawWaker, RawWakerVTable, Waker};

/// A simulated node (process) in a run.
pub type NodeId = u32;

/// What a timer does when it fires.
pub(crate) enum TimerAction {
    Wake(Waker),
    BlockingDone { done: Arc<Completion>, node: NodeId },
    Node(super::node::NodeEvent),
}

/// A task spawned during a poll, waiting to be placed in the slab.
pub(crate) struct NewTask {
    pub(crate) id: TaskId,
    pub(crate) node: NodeId,
    pub(crate) name: crate::sched::TaskName,
    pub(crate) fut: crate::BoxFuture<()>,
    pub(crate) done: Arc<Completion>,
}

/// Blocking work waiting for a free thread.
pub(crate) struct QueuedWork {
    pub(crate) work: Box<dyn FnOnce() + Send>,
    pub(crate) done: Arc<Completion>,
    pub(crate) node: NodeId,
}

/// The blocking-thread pool model.
#[derive(Default)]
pub(crate) struct Threads {
    pub(crate) current: usize,
    pub(crate) peak: usize,
    pub(crate) threads_max: Option<usize>,
    pub(crate) queued: VecDeque<QueuedWork>,
    pub(crate) samples: Vec<(u64, usize)>,
}

pub(crate) struct Core {
    pub(crate) now_ns: u64,
    pub(crate) start_ns: u64,
    pub(crate) timers: Timers,
    pub(crate) nodes: Vec<Node>,
    pub(crate) spawned: Vec<NewTask>,
    pub(crate) next_task: TaskId,
    pub(crate) aborts: Vec<TaskId>,
    pub(crate) threads: Threads,
    pub(crate) fault_log: Vec<String>,
}

impl Core {
    pub(crate) fn add_timer(&mut self, at_ns: u64, action: TimerAction) -> TimerKey {
        self.timers.add(at_ns, action)
    }

    /// Removes a timer if it has not fired yet.
    #[inline]
    pub(crate) fn remove_timer(&mut self, key: TimerKey) {
        self.timers.remove(key);
    }
}

pub(crate) struct Shared {
    pub(crate) ready: RefCell<Ready>,
    pub(crate) core: RefCell<Core>,
    pub(crate) rec: RefCell<Recorder>,
    pub(crate) current: Cell<Option<(TaskId, NodeId)>>,
    pub(crate) failure: RefCell<Option<Failure>>,
    /// Set with the first failure (checked every step, without a borrow).
    pub(crate) failed: Cell<bool>,
    pub(crate) mem: RefCell<MemoryMeter>,
    pub(crate) locks: RefCell<LockOrder>,
    pub(crate) trace: RefCell<Trace>,
    pub(crate) blocking_ns: Cell<Option<u64>>,
    pub(crate) plan: FaultPlan,
    pub(crate) metrics: RefCell<super::metrics::Recording>,
}

impl Shared {
    /// Records the run's first failure (later ones are consequences).
    pub(crate) fn fail(&self, f: Failure) {
        let mut slot = self.failure.borrow_mut();
        if slot.is_none() {
            *slot = Some(f);
            self.failed.set(true);
        }
    }

    pub(crate) fn now_ns(&self) -> u64 {
        self.core.borrow().now_ns
    }

    pub(crate) fn event(
        &self,
        kind: EventKind,
        task: u64,
        extra: u64,
        describe: impl FnOnce() -> String,
    ) {
        let now = self.now_ns();
        self.trace
            .borrow_mut()
            .event(now, kind, task, extra, describe);
    }

    /// A line in the log that is not an event (not hashed).
    pub(crate) fn note(&self, describe: impl FnOnce() -> String) {
        let now = self.now_ns();
        let current = self.current.get();
        self.trace.borrow_mut().note(now, current, describe);
    }

    /// Logs a story line (a `tracing` event) at the current virtual time,
    /// as the running task. Dropped if the trace is busy (an event from
    /// inside the trace's own formatting).
    pub(crate) fn story(&self, story: super::trace::Story) {
        let Ok(now) = self.core.try_borrow().map(|c| c.now_ns) else {
            return;
        };
        let current = self.current.get();
        if let Ok(mut t) = self.trace.try_borrow_mut() {
            t.story(now, current, story);
        }
    }

    /// Whether the run keeps a readable log.
    #[inline]
    pub(crate) fn keeps_log(&self) -> bool {
        self.trace.try_borrow().is_ok_and(|t| t.keeps_log())
    }

    /// A fault coin from the policy; a replay mismatch fails the run.
    pub(crate) fn coin(&self, p_ppm: u32) -> bool {
        let r = self.rec.borrow_mut().coin(p_ppm);
        r.unwrap_or_else(|m| {
            self.fail(Failure::ReplayMismatch(m.detail));
            false
        })
    }

    /// A draw from the policy; a replay mismatch fails the run.
    pub(crate) fn draw(&self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        let r = self.rec.borrow_mut().draw(bound);
        r.unwrap_or_else(|m| {
            self.fail(Failure::ReplayMismatch(m.detail));
            0
        })
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Shared>>> = const { RefCell::new(None) };
    /// The same simulation as a plain pointer, for the hot paths (wakers,
    /// sleeps, spawns): one thread-local load, no borrow flag, no
    /// reference count. Set and cleared together with `CURRENT`.
    static FAST: Cell<*const Shared> = const { Cell::new(std::ptr::null()) };
}

/// The running simulation on this thread, if any.
pub(crate) fn shared() -> Option<Rc<Shared>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Runs `f` on the running simulation (in place, no reference count
/// traffic); `None` when no simulation runs on this thread.
#[inline]
pub(crate) fn with_shared<R>(f: impl FnOnce(&Shared) -> R) -> Option<R> {
    let p = FAST.with(Cell::get);
    if p.is_null() {
        return None;
    }
    // SAFETY: `FAST` points into the `Rc` that `CURRENT` holds: `install`
    // sets both, `uninstall` clears both, so while it is not null the
    // `Shared` is alive. Only this thread reads its `FAST`, and nothing `f`
    // is given here can uninstall the simulation (only dropping the `Sim`
    // does, and no closure passed here reaches it).
    Some(f(unsafe { &*p }))
}

/// Like [`with_shared`], for handle operations that only make sense inside
/// a run.
///
/// # Panics
/// When no simulation runs on this thread: a `SimHandle` was used outside
/// its simulation.
#[inline]
pub(crate) fn expect_shared<R>(f: impl FnOnce(&Shared) -> R) -> R {
    with_shared(f).unwrap_or_else(|| outside_sim())
}

/// The panic of a handle used outside its simulation.
#[cold]
#[inline(never)]
pub(crate) fn outside_sim() -> ! {
    panic!("faultline: a SimHandle was used outside its simulation (no Sim on this thread)")
}

pub(crate) fn install(shared: Rc<Shared>) {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        assert!(
            c.is_none(),
            "faultline: only one Sim may exist per thread at a time"
        );
        FAST.with(|f| f.set(Rc::as_ptr(&shared)));
        *c = Some(shared);
    });
}

pub(crate) fn uninstall() {
    FAST.with(|f| f.set(std::ptr::null()));
    CURRENT.with(|c| c.borrow_mut().take());
}

fn wake_key(key: usize) {
    with_shared(|s| {
        s.ready
            .borrow_mut()
            .wake((key & 0xffff_ffff) as u32, (key >> 32) as u32);
    });
}

unsafe fn vt_clone(p: *const ()) -> RawWaker {
    RawWaker::new(p, &VTABLE)
}
unsafe fn vt_wake(p: *const ()) {
    wake_key(p as usize);
}
unsafe fn vt_drop(_: *const ()) {}

static VTABLE: RawWakerVTable = RawWakerVTable::new(vt_clone, vt_wake, vt_wake, vt_drop);

/// The waker of the task in `slot`, generation `gen`: no allocation, the key
/// is the pointer value.
pub(crate) fn waker(slot: u32, gen: u32) -> Waker {
    let key = ((gen as usize) << 32) | slot as usize;
    // SAFETY: the vtable never dereferences the data pointer.
    unsafe { Waker::from_raw(RawWaker::new(key as *const (), &VTABLE)) }
}
