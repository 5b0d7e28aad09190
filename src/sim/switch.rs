//! Sync-switch mode: synchronous sections as switch points.
//!
//! In the default mode a task runs from one `.await` to the next without
//! interruption, so two tasks' synchronous critical sections never
//! interleave. In sync-switch mode ([`SimConfig::sync_switch`]) each poll
//! runs on its own stack (a `corosensei` coroutine), and the entry of the
//! outermost shim [`Mutex::with`](crate::sync::Mutex::with) is a switch
//! point: when another task is ready there, the coroutine suspends back to
//! the executor, which queues the task again as runnable ("suspended
//! mid-poll") and lets the schedule policy choose the next task exactly as
//! at any other step (the same RNG, the same recorded choice stream, so
//! replay stays exact). A suspended task is later *resumed*, never polled
//! again while suspended.
//!
//! No task is suspended inside a `with` (the shim counts the nesting), so
//! no task is parked holding a real lock and nothing deadlocks; nor while
//! the executor's own state is borrowed further up the stack.
//!
//! Stacks are pooled per thread: in steady state a poll allocates nothing.
//!
//! [`SimConfig::sync_switch`]: super::SimConfig::sync_switch

use super::context;
use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

/// What one poll on a coroutine gives: the poll's result, or its panic.
pub(crate) type Polled = std::thread::Result<Poll<()>>;

/// A poll running on its own stack.
pub(crate) type TaskCo = Coroutine<(), (), Polled, DefaultStack>;

/// The task's future, as the coroutine reaches it (it lives in a `Box` the
/// executor neither moves nor drops while the coroutine lives).
pub(crate) type FutPtr = *mut (dyn Future<Output = ()> + Send + 'static);

/// Bytes of each coroutine stack (virtual: pages are committed on use).
const STACK_BYTES: usize = 1 << 20;

/// Idle stacks kept per thread, at most.
const STACKS_KEPT_MAX: usize = 64;

thread_local! {
    /// The yielder of the coroutine running now (null outside one).
    static YIELDER: Cell<*const Yielder<(), ()>> = const { Cell::new(std::ptr::null()) };
    /// Whether the running coroutine may suspend (false while the executor
    /// finishes a suspended poll before dropping its task).
    static ENABLED: Cell<bool> = const { Cell::new(false) };
    static STACKS: RefCell<Vec<DefaultStack>> = const { RefCell::new(Vec::new()) };
}

/// The hook the shim calls at a switch point (installed by a `Sim` in
/// sync-switch mode).
pub(crate) fn switch_point() {
    if !ENABLED.with(Cell::get) {
        return;
    }
    let y = YIELDER.with(Cell::get);
    if y.is_null() || !others_ready() {
        return;
    }
    YIELDER.with(|c| c.set(std::ptr::null()));
    // SAFETY: `y` is the yielder of the coroutine running this code (set
    // at its start and restored after every suspension below), alive for
    // as long as that coroutine runs.
    unsafe { (*y).suspend(()) };
    YIELDER.with(|c| c.set(y));
}

/// Whether a task other than the current one is ready, and the executor's
/// state is free (not borrowed further up this stack).
fn others_ready() -> bool {
    context::with_shared(|s| {
        if s.failed.get()
            || s.core.try_borrow_mut().is_err()
            || s.rec.try_borrow_mut().is_err()
            || s.trace.try_borrow_mut().is_err()
            || s.mem.try_borrow_mut().is_err()
            || s.locks.try_borrow_mut().is_err()
        {
            return false;
        }
        let Ok(ready) = s.ready.try_borrow_mut() else {
            return false;
        };
        let me = s.current.get().map(|(id, _)| id);
        match ready.ids.len() {
            0 => false,
            1 => Some(ready.ids[0]) != me,
            _ => true,
        }
    })
    .unwrap_or(false)
}

/// A coroutine (on a pooled stack) that polls `fut` once with the waker of
/// `slot` at generation `gen`.
///
/// # Safety
/// `fut` must stay valid and unmoved until the coroutine has returned,
/// and nothing else may poll it meanwhile.
pub(crate) unsafe fn start(fut: FutPtr, slot: u32, gen: u32) -> TaskCo {
    let stack = STACKS
        .with(|s| s.borrow_mut().pop())
        .unwrap_or_else(|| DefaultStack::new(STACK_BYTES).expect("a coroutine stack"));
    Coroutine::with_stack(stack, move |y: &Yielder<(), ()>, ()| {
        YIELDER.with(|c| c.set(y as *const _));
        let waker = context::waker(slot, gen);
        let mut cx = Context::from_waker(&waker);
        // SAFETY: the caller's contract.
        let fut = unsafe { Pin::new_unchecked(&mut *fut) };
        let polled = catch_unwind(AssertUnwindSafe(|| fut.poll(&mut cx)));
        YIELDER.with(|c| c.set(std::ptr::null()));
        polled
    })
}

/// Runs `co` until it suspends at a switch point (`None`) or its poll ends;
/// with `may_switch` false it cannot suspend (finishing a poll).
pub(crate) fn resume(co: &mut TaskCo, may_switch: bool) -> Option<Polled> {
    ENABLED.with(|e| e.set(may_switch));
    let r = co.resume(());
    ENABLED.with(|e| e.set(false));
    YIELDER.with(|c| c.set(std::ptr::null()));
    match r {
        CoroutineResult::Yield(()) => None,
        CoroutineResult::Return(polled) => Some(polled),
    }
}

/// Gives the stack of a finished coroutine back to the pool.
pub(crate) fn recycle(co: TaskCo) {
    let stack = co.into_stack();
    STACKS.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < STACKS_KEPT_MAX {
            s.push(stack);
        }
    });
}
