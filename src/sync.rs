//! The one file that names `std::sync`, loom or shuttle.
//!
//! Everything concurrent in faultline (the `Gate`, the `Semaphore`, the
//! channels, `Notify`, `RwLock`, `timeout`, `TaskSet`, the services' state)
//! takes its primitives from here, so a model-check build swaps them all at
//! once:
//!
//! * default: `std::sync`, `std::thread`;
//! * `RUSTFLAGS="--cfg faultline_loom"`: loom (exhaustive interleavings);
//! * `RUSTFLAGS="--cfg faultline_shuttle"`: shuttle (random / PCT schedules).
//!
//! The blocking [`Mutex`] is only reachable through a closure
//! ([`Mutex::with`]), so a guard can never live across an `.await`: the
//! compiler enforces the rule that the state lock is never held while a task
//! is parked. Poisoning is hidden (a panic while holding the lock is already a
//! failed test), as tokio's shim does.
//!
//! ## The async primitives, and their tokio counterparts
//!
//! | tokio | `faultline::sync` | differs in |
//! |---|---|---|
//! | `sync::Mutex` | [`Gate`] | `try_lock` gives an `Option` |
//! | `sync::Semaphore` | [`Semaphore`] | permits own their semaphore |
//! | `sync::mpsc::channel` | [`mpsc::channel`] | bounded only (`capacity_max`) |
//! | `sync::oneshot::channel` | [`oneshot::channel`] | - |
//! | `sync::Notify` | [`Notify`] | - |
//! | `sync::RwLock` | [`RwLock`] | `try_read` / `try_write` give an `Option` |
//! | `time::timeout` | [`timeout`], [`timeout_at`] | takes the world's `Clock` |
//! | `task::JoinSet` | [`TaskSet`] | spawns on the world's `Scheduler`; `tasks_max` |
//!
//! Every one is FIFO where it queues, cancel safe (a wait future dropped
//! after it was handed a permit, slot, notification or lock passes it on),
//! keeps one waiter node per wait future however often it is polled, and
//! is model-checked with loom and shuttle and run in the simulator next to
//! a planted [`Flaw`] the checks are seen to catch.

mod flaw;
mod gate;
pub mod mpsc;
mod notify;
pub mod oneshot;
mod pool;
mod rwlock;
mod semaphore;
mod task_set;
mod timeout;
mod waiters;

pub use flaw::Flaw;
pub use gate::{Gate, GateGuard, Lock};
pub use notify::{Notified, Notify};
pub use rwlock::{Read, RwLock, RwLockReadGuard, RwLockWriteGuard, Write, READERS_MAX};
pub use semaphore::{Acquire, NoPermit, Permit, Semaphore};
pub use task_set::{JoinNext, TaskSet, TaskSetFull};
pub use timeout::{timeout, timeout_at, timeout_flawed, Elapsed, Timeout};

#[cfg(faultline_loom)]
mod imp {
    pub use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    pub use loom::sync::{Arc, Mutex as RawMutex};
    pub use loom::thread::{spawn as spawn_thread, yield_now as yield_thread, JoinHandle};

    pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
        loom::future::block_on(f)
    }
}

#[cfg(all(faultline_shuttle, not(faultline_loom)))]
mod imp {
    pub use shuttle::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    pub use shuttle::sync::{Arc, Mutex as RawMutex};
    pub use shuttle::thread::{spawn as spawn_thread, yield_now as yield_thread, JoinHandle};

    pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
        shuttle::future::block_on(f)
    }
}

#[cfg(not(any(faultline_loom, faultline_shuttle)))]
mod atomic;

#[cfg(not(any(faultline_loom, faultline_shuttle)))]
mod imp {
    pub use super::atomic::{AtomicBool, AtomicU64, AtomicUsize};
    pub use std::sync::atomic::Ordering;
    pub use std::sync::{Arc, Mutex as RawMutex};
    pub use std::thread::{spawn as spawn_thread, yield_now as yield_thread, JoinHandle};

    /// Drives `f` to completion on the current OS thread (park / unpark).
    pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
        use std::task::{Context, Poll, Wake, Waker};
        struct Unparker(std::thread::Thread);
        impl Wake for Unparker {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unparker(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
                return out;
            }
            std::thread::park();
        }
    }
}

pub use imp::{
    block_on, spawn_thread, yield_thread, Arc, AtomicBool, AtomicU64, AtomicUsize, JoinHandle,
    Ordering,
};

/// A shared handle to a *trait object* of the world (`dyn Clock`,
/// `dyn Scheduler`, `dyn Sink`): always `std::sync::Arc`, in every mode,
/// because loom's `Arc` cannot hold unsized values. Model checkers do not
/// need to track these handles' reference counts; the primitives under test
/// use [`Arc`].
pub use std::sync::Arc as DynArc;

/// One-time process-wide setup (the simulator's panic hook): always
/// `std::sync::Once`, in every mode. It runs outside every model and every
/// simulated run, so loom and shuttle have nothing to check in it.
pub use std::sync::Once as ProcessOnce;

/// Atomics of the harness itself, outside every model and every simulated
/// run (a parallel sweep's shared counters, the executions a model check
/// made): always `std::sync::atomic`, in every mode.
pub(crate) use std::sync::atomic as process_atomic;

/// A process-wide value computed once (the checkout's source state for
/// check records): always `std::sync::OnceLock`, for the same reason as
/// [`ProcessOnce`].
pub use std::sync::OnceLock as ProcessOnceLock;

/// Switch points: where the simulator's sync-switch mode may stop the
/// running task between two synchronous sections.
///
/// The entry of the outermost [`Mutex::with`], and every operation of the
/// shim's atomics outside a `with`, call the installed hook (the
/// simulator's, which may suspend the task there); while a task is
/// inside a `with` no hook runs, so no task is ever suspended holding a
/// lock. With no hook installed (every mode but the simulator's
/// sync-switch mode) a `with` pays one thread-local read.
pub(crate) mod switch {
    use std::cell::Cell;

    thread_local! {
        static HOOK: Cell<Option<fn()>> = const { Cell::new(None) };
        /// Nesting depth of `with` calls on this thread (kept only while a
        /// hook is installed).
        static HELD: Cell<u32> = const { Cell::new(0) };
    }

    /// Installs `hook` on this thread until the guard drops.
    // Only the simulator installs a hook; model-check builds have none.
    #[cfg_attr(any(faultline_loom, faultline_shuttle), allow(dead_code))]
    pub(crate) fn install(hook: fn()) -> Installed {
        let previous = HOOK.with(|h| h.replace(Some(hook)));
        Installed { previous }
    }

    /// Removes the hook when dropped (restores the previous one).
    #[cfg_attr(any(faultline_loom, faultline_shuttle), allow(dead_code))]
    pub(crate) struct Installed {
        previous: Option<fn()>,
    }

    impl Drop for Installed {
        fn drop(&mut self) {
            HOOK.with(|h| h.set(self.previous));
        }
    }

    /// Inside one `with` (while a hook is installed).
    pub(crate) struct Held;

    impl Drop for Held {
        fn drop(&mut self) {
            HELD.with(|d| d.set(d.get() - 1));
        }
    }

    /// A switch point outside any `with` (the shim's atomics): runs the
    /// hook unless this thread is inside a `with`.
    #[inline]
    #[cfg_attr(any(faultline_loom, faultline_shuttle), allow(dead_code))]
    pub(crate) fn point() {
        if let Some(hook) = HOOK.with(Cell::get) {
            if HELD.with(Cell::get) == 0 {
                hook();
            }
        }
    }

    /// The entry of a `with`: the switch point (outermost call only).
    #[inline]
    pub(crate) fn enter() -> Option<Held> {
        let hook = HOOK.with(Cell::get)?;
        enter_slow(hook)
    }

    #[cold]
    fn enter_slow(hook: fn()) -> Option<Held> {
        if HELD.with(Cell::get) == 0 {
            hook();
        }
        HELD.with(|d| d.set(d.get() + 1));
        Some(Held)
    }
}

/// A blocking mutual-exclusion lock reached only through [`Mutex::with`].
pub struct Mutex<T> {
    inner: imp::RawMutex<T>,
    class: Option<crate::probe::LockClass>,
}

impl<T> Mutex<T> {
    /// Creates an unlocked mutex holding `value`.
    pub fn new(value: T) -> Self {
        Mutex {
            inner: imp::RawMutex::new(value),
            class: None,
        }
    }

    /// Creates a mutex whose acquisitions are reported to the lock-order
    /// checker as `class`.
    pub fn with_class(value: T, class: crate::probe::LockClass) -> Self {
        Mutex {
            inner: imp::RawMutex::new(value),
            class: Some(class),
        }
    }

    /// Runs `f` with exclusive access to the value and returns its result.
    ///
    /// The lock is released when `f` returns (or unwinds). Because `f` is a
    /// plain closure, it cannot `.await`: the lock is never held across a
    /// suspension point.
    ///
    /// # Panics
    /// Never because of poisoning: a lock poisoned by a panicking holder is
    /// taken anyway (that panic already failed the run).
    #[track_caller]
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let _held = switch::enter();
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Some(class) = self.class else {
            return f(&mut guard);
        };
        crate::probe::lock_acquired(class, std::panic::Location::caller());
        let out = f(&mut guard);
        crate::probe::lock_released(class);
        out
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> std::fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mutex { .. }")
    }
}
