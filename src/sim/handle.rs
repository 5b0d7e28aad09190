//! [`SimHandle`]: a node's view of the simulation, implementing the world's
//! `Clock` and `Scheduler`. It is a plain node id (`Copy`, `Send`, `Sync`);
//! every operation goes to the simulation running on this thread.

use super::context::{
    expect_shared, with_shared, NewTask, NodeId, QueuedWork, Shared, TimerAction,
};
use super::timers::TimerKey;
use super::trace::EventKind;
use crate::clock::Clock;
use crate::sched::{Completion, JoinError, Scheduler, TaskControl, TaskHandle, TaskName};
use crate::sync::Arc;
use crate::BoxFuture;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// A node's clock and scheduler inside a running [`Sim`](super::Sim).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimHandle {
    pub(crate) node: NodeId,
}

impl SimHandle {
    /// The node this handle belongs to.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Spawns a task on this node (like [`Scheduler::spawn`]); `name` is a
    /// `&'static str` or a [`TaskName`] with a label (`instance i3`).
    pub fn spawn_on(
        &self,
        name: impl Into<TaskName>,
        fut: impl Future<Output = ()> + Send + 'static,
    ) -> TaskHandle {
        self.spawn_named(name.into(), Box::pin(fut))
    }

    /// Lets other tasks run (like [`Scheduler::yield_now`], without the
    /// box): the task wakes itself and returns `Pending` once.
    pub fn yield_now(&self) -> YieldNow {
        YieldNow { yielded: false }
    }

    /// Completes once this node's clock reads `deadline_ns` (like
    /// [`Clock::sleep_until`], without the box).
    pub fn sleep_until(&self, deadline_ns: u64) -> Sleep {
        Sleep {
            node: self.node,
            deadline_ns,
            key: None,
        }
    }

    /// Completes after `duration` of this node's clock (like
    /// [`Clock::sleep`], without the box).
    pub fn sleep(&self, duration: Duration) -> Sleep {
        let d_ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.sleep_until(self.now_ns().saturating_add(d_ns))
    }
}

/// The future of [`SimHandle::yield_now`]: `Pending` once (after waking its
/// task), then `Ready`.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();
    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            Poll::Ready(())
        } else {
            self.yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

impl Clock for SimHandle {
    fn now_ns(&self) -> u64 {
        expect_shared(|s| {
            let core = s.core.borrow();
            core.nodes[self.node as usize].local_ns(core.now_ns, core.start_ns)
        })
    }

    fn sleep_until(&self, deadline_ns: u64) -> BoxFuture<()> {
        Box::pin(SimHandle::sleep_until(self, deadline_ns))
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        Box::pin(SimHandle::sleep(self, duration))
    }
}

/// A timer on a node's clock: the future of [`SimHandle::sleep`] and
/// [`SimHandle::sleep_until`]. The timer is set at the first poll and
/// cancelled when the future is dropped.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    node: NodeId,
    deadline_ns: u64,
    key: Option<TimerKey>,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        expect_shared(|s| {
            let mut core = s.core.borrow_mut();
            let core = &mut *core;
            let (now, start) = (core.now_ns, core.start_ns);
            let node = &core.nodes[this.node as usize];
            if node.local_ns(now, start) >= this.deadline_ns {
                if let Some(k) = this.key.take() {
                    core.remove_timer(k);
                }
                return Poll::Ready(());
            }
            let at = node.true_ns(this.deadline_ns, start).max(now + 1);
            if let Some(k) = this.key {
                if k.at_ns == at {
                    // Still due at the same time: keep the timer (and its
                    // place among timers due then), refresh its waker.
                    if let Some(TimerAction::Wake(w)) = core.timers.get_mut(k) {
                        if !w.will_wake(cx.waker()) {
                            w.clone_from(cx.waker());
                        }
                        return Poll::Pending;
                    }
                }
                core.remove_timer(k);
            }
            this.key = Some(core.add_timer(at, TimerAction::Wake(cx.waker().clone())));
            Poll::Pending
        })
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            with_shared(|s| s.core.borrow_mut().remove_timer(k));
        }
    }
}

struct SimTask {
    id: u64,
    done: Arc<Completion>,
}

impl TaskControl for SimTask {
    fn abort(&self) {
        with_shared(|s| s.core.borrow_mut().aborts.push(self.id));
    }
    fn is_finished(&self) -> bool {
        self.done.is_finished()
    }
    fn poll_join(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), JoinError>> {
        self.done.poll_join(cx)
    }
}

impl Scheduler for SimHandle {
    fn spawn(&self, name: &'static str, fut: BoxFuture<()>) -> TaskHandle {
        self.spawn_named(TaskName::new(name), fut)
    }

    fn spawn_named(&self, name: TaskName, fut: BoxFuture<()>) -> TaskHandle {
        expect_shared(|s| self.spawn_in(s, name, fut))
    }

    fn spawn_blocking(
        &self,
        _name: &'static str,
        work: Box<dyn FnOnce() + Send>,
    ) -> BoxFuture<Result<(), JoinError>> {
        let done = Arc::new(Completion::default());
        let job = QueuedWork {
            work,
            done: Arc::clone(&done),
            node: self.node,
        };
        // The work is user code: run it without holding the thread-local.
        let s = super::context::shared().unwrap_or_else(|| super::context::outside_sim());
        start_blocking(&s, job);
        Box::pin(std::future::poll_fn(move |cx| done.poll_join(cx)))
    }

    fn yield_now(&self) -> BoxFuture<()> {
        Box::pin(YieldNow { yielded: false })
    }
}

impl SimHandle {
    fn spawn_in(&self, s: &Shared, name: TaskName, fut: BoxFuture<()>) -> TaskHandle {
        let done = Arc::new(Completion::default());
        let id = {
            let mut core = s.core.borrow_mut();
            let id = core.next_task;
            core.next_task += 1;
            core.spawned.push(NewTask {
                id,
                node: self.node,
                name,
                fut,
                done: Arc::clone(&done),
            });
            id
        };
        s.rec.borrow_mut().policy.on_spawn(id);
        s.event(EventKind::Spawn, id, u64::from(self.node), || {
            format!("spawn task {id} '{name}' on node {}", self.node)
        });
        TaskHandle::new(Box::new(SimTask { id, done }))
    }
}

/// Starts blocking work on a free (simulated) thread, or queues it when the
/// pool is at `threads_max`. The work runs at once; its thread stays busy
/// for the time it declared with `probe::blocking_wait`.
pub(crate) fn start_blocking(s: &Shared, job: QueuedWork) {
    {
        let mut core = s.core.borrow_mut();
        let now = core.now_ns;
        let t = &mut core.threads;
        if t.threads_max.is_some_and(|max| t.current >= max) {
            t.queued.push_back(job);
            return;
        }
        t.current += 1;
        t.peak = t.peak.max(t.current);
        if t.samples.len() < super::memory::SAMPLES_MAX {
            t.samples.push((now, t.current));
        }
    }
    let QueuedWork { work, done, node } = job;
    s.blocking_ns.set(Some(0));
    let r = catch_unwind(AssertUnwindSafe(work));
    let ns = s.blocking_ns.take().unwrap_or(0);
    if r.is_err() {
        done.finish(Err(JoinError::Panicked));
    }
    let mut core = s.core.borrow_mut();
    let at = core.now_ns + ns.max(1);
    core.add_timer(at, TimerAction::BlockingDone { done, node });
}
