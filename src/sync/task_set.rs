//! [`TaskSet`]: a bounded set of spawned tasks that joins them as they end
//! and aborts them when dropped (tokio's `JoinSet`, over the world's
//! [`Scheduler`]).
//!
//! ```
//! use faultline::sched::ThreadScheduler;
//! use faultline::sync::{block_on, DynArc, TaskSet};
//!
//! let mut set = TaskSet::new(DynArc::new(ThreadScheduler), 8);
//! for i in 0..3u32 {
//!     set.spawn("square", async move { i * i }).unwrap();
//! }
//! let mut total = 0;
//! while let Some(r) = block_on(set.join_next()) {
//!     total += r.unwrap();
//! }
//! assert_eq!(total, 0 + 1 + 4);
//! ```

use super::waiters::wake_all;
use super::{Arc, DynArc, Flaw, Mutex};
use crate::sched::{JoinError, Scheduler, TaskHandle};
use std::collections::{BTreeMap, VecDeque};
use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};

/// The error of [`TaskSet::spawn`] on a full set: the future is handed back
/// unstarted.
pub struct TaskSetFull<F> {
    /// The future that was not spawned.
    pub fut: F,
    /// The set's limit.
    pub tasks_max: usize,
}

impl<F> std::fmt::Debug for TaskSetFull<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskSetFull")
            .field("tasks_max", &self.tasks_max)
            .finish()
    }
}

impl<F> std::fmt::Display for TaskSetFull<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "task set full ({} tasks not joined)", self.tasks_max)
    }
}

impl<F> std::error::Error for TaskSetFull<F> {}

struct Shared<T> {
    state: Mutex<Ended<T>>,
    flaw: Flaw,
}

/// Tasks that ended and are not joined yet, in the order they ended.
struct Ended<T> {
    results: VecDeque<(u64, Result<T, JoinError>)>,
    joiner: Option<Waker>,
}

/// Reports its task's end exactly once: with the value, with `Panicked`,
/// or, if the task's future is dropped unfinished (aborted, or its runtime
/// went away), with `Cancelled` from `Drop`.
struct Reporter<T> {
    id: u64,
    shared: Option<Arc<Shared<T>>>,
}

impl<T> Reporter<T> {
    fn finish(&mut self, result: Result<T, JoinError>) {
        let Some(shared) = self.shared.take() else {
            return;
        };
        let id = self.id;
        let waker = shared.state.with(|s| {
            s.results.push_back((id, result));
            if shared.flaw == Flaw::LostWakeup {
                None
            } else {
                s.joiner.take()
            }
        });
        wake_all(waker);
    }
}

impl<T> Drop for Reporter<T> {
    fn drop(&mut self) {
        self.finish(Err(JoinError::Cancelled));
    }
}

/// A set of tasks spawned on a [`Scheduler`], joined in the order they end.
///
/// * at most `tasks_max` tasks belong to the set at once, running or ended
///   but not yet joined (a full set refuses [`TaskSet::spawn`] and hands
///   the future back);
/// * [`TaskSet::join_next`] yields each task's result as it ends;
/// * [`TaskSet::abort_all`] aborts them; dropping the set aborts them too.
pub struct TaskSet<T> {
    sched: DynArc<dyn Scheduler>,
    tasks: BTreeMap<u64, TaskHandle>,
    shared: Arc<Shared<T>>,
    next_id: u64,
    tasks_max: usize,
    flaw: Flaw,
}

impl<T: Send + 'static> TaskSet<T> {
    /// An empty set spawning on `sched`, holding at most `tasks_max` tasks.
    ///
    /// # Panics
    /// When `tasks_max` is 0 (a set that can hold nothing).
    pub fn new(sched: DynArc<dyn Scheduler>, tasks_max: usize) -> Self {
        Self::new_flawed(sched, tasks_max, Flaw::None)
    }

    /// Creates a set with a deliberate bug, for tests that prove a checker
    /// catches it. Never use outside tests.
    ///
    /// # Panics
    /// When `tasks_max` is 0.
    #[doc(hidden)]
    pub fn new_flawed(sched: DynArc<dyn Scheduler>, tasks_max: usize, flaw: Flaw) -> Self {
        assert!(tasks_max > 0, "TaskSet needs tasks_max >= 1");
        TaskSet {
            sched,
            tasks: BTreeMap::new(),
            shared: Arc::new(Shared {
                state: Mutex::new(Ended {
                    results: VecDeque::new(),
                    joiner: None,
                }),
                flaw,
            }),
            next_id: 0,
            tasks_max,
            flaw,
        }
    }

    /// Spawns `fut` as a task named `name` (for traces) in the set.
    ///
    /// A panic in the task is reported as [`JoinError::Panicked`] by
    /// `join_next` and still reaches the scheduler (so the simulator's
    /// panic oracle sees it).
    ///
    /// # Errors
    /// [`TaskSetFull`] (with `fut`, unstarted) when `tasks_max` tasks belong
    /// to the set.
    pub fn spawn<F>(&mut self, name: &'static str, fut: F) -> Result<(), TaskSetFull<F>>
    where
        F: Future<Output = T> + Send + 'static,
    {
        if self.tasks.len() >= self.tasks_max && self.flaw != Flaw::LimitUnchecked {
            return Err(TaskSetFull {
                fut,
                tasks_max: self.tasks_max,
            });
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut reporter = Reporter {
            id,
            shared: Some(Arc::clone(&self.shared)),
        };
        let task = async move {
            let mut fut = pin!(fut);
            let polled =
                poll_fn(
                    |cx| match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
                        Ok(Poll::Pending) => Poll::Pending,
                        Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
                        Err(payload) => Poll::Ready(Err(payload)),
                    },
                )
                .await;
            match polled {
                Ok(v) => reporter.finish(Ok(v)),
                Err(payload) => {
                    reporter.finish(Err(JoinError::Panicked));
                    resume_unwind(payload);
                }
            }
        };
        let handle = self.sched.spawn(name, Box::pin(task));
        self.tasks.insert(id, handle);
        Ok(())
    }

    /// Waits for the next task to end and returns its result; `None` when
    /// the set is empty.
    ///
    /// # Cancel safety
    /// Cancel safe: a result is taken from the set only by the poll that
    /// returns it.
    pub fn join_next(&mut self) -> JoinNext<'_, T> {
        JoinNext { set: self }
    }

    /// The result of a task that has ended, if any, without waiting.
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        let (id, result) = self.shared.state.with(|s| s.results.pop_front())?;
        self.tasks.remove(&id);
        Some(result)
    }

    /// Requests cancellation of every task in the set; each is reported by
    /// `join_next` as [`JoinError::Cancelled`] (unless it ended first).
    pub fn abort_all(&mut self) {
        self.tasks.values().for_each(TaskHandle::abort);
    }

    /// Tasks in the set: running, or ended and not joined yet.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the set holds no task.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The most tasks the set holds.
    pub fn tasks_max(&self) -> usize {
        self.tasks_max
    }

    fn poll_join(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        if self.tasks.is_empty() {
            return Poll::Ready(None);
        }
        let next = self.shared.state.with(|s| {
            let next = s.results.pop_front();
            if next.is_none() {
                match &mut s.joiner {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    slot => *slot = Some(cx.waker().clone()),
                }
            }
            next
        });
        match next {
            Some((id, result)) => {
                self.tasks.remove(&id);
                Poll::Ready(Some(result))
            }
            None => Poll::Pending,
        }
    }
}

impl<T> Drop for TaskSet<T> {
    fn drop(&mut self) {
        if self.flaw != Flaw::DropDetaches {
            self.tasks.values().for_each(TaskHandle::abort);
        }
    }
}

impl<T> std::fmt::Debug for TaskSet<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskSet")
            .field("tasks", &self.tasks.len())
            .field("tasks_max", &self.tasks_max)
            .finish()
    }
}

/// The future of [`TaskSet::join_next`].
#[must_use = "futures do nothing unless polled"]
pub struct JoinNext<'a, T> {
    set: &'a mut TaskSet<T>,
}

impl<T: Send + 'static> Future for JoinNext<'_, T> {
    type Output = Option<Result<T, JoinError>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.set.poll_join(cx)
    }
}
