//! [`SimHandle`]: a node's view of the simulation, implementing the world's
//! `Clock` and `Scheduler`. It is a plain node id (`Copy`, `Send`, `Sync`);
//! every operation goes to the simulation running on this thread.

use super::context::{expect_shared, NewTask, NodeId, QueuedWork, Shared, TimerAction};
use super::trace::EventKind;
use crate::clock::Clock;
use crate::sched::{Completion, JoinError, Scheduler, TaskControl, TaskHandle};
use crate::sync::Arc;
use crate::BoxFuture;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

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

    /// Spawns a task on this node (like [`Scheduler::spawn`]).
    pub fn spawn_on(
        &self,
        name: &'static str,
        fut: impl Future<Output = ()> + Send + 'static,
    ) -> TaskHandle {
        self.spawn(name, Box::pin(fut))
    }
}

impl Clock for SimHandle {
    fn now_ns(&self) -> u64 {
        let s = expect_shared();
        let core = s.core.borrow();
        core.nodes[self.node as usize].local_ns(core.now_ns, core.start_ns)
    }

    fn sleep_until(&self, deadline_ns: u64) -> BoxFuture<()> {
        Box::pin(Sleep {
            node: self.node,
            deadline_ns,
            key: None,
        })
    }
}

/// A timer on a node's clock.
struct Sleep {
    node: NodeId,
    deadline_ns: u64,
    key: Option<(u64, u64)>,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let s = expect_shared();
        let mut core = s.core.borrow_mut();
        let (now, start) = (core.now_ns, core.start_ns);
        let node = &core.nodes[self.node as usize];
        if node.local_ns(now, start) >= self.deadline_ns {
            if let Some(k) = self.key.take() {
                core.timers.remove(&k);
            }
            return Poll::Ready(());
        }
        let at = node.true_ns(self.deadline_ns, start).max(now + 1);
        if let Some(k) = self.key.take() {
            core.timers.remove(&k);
        }
        self.key = Some(core.add_timer(at, TimerAction::Wake(cx.waker().clone())));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let (Some(k), Some(s)) = (self.key.take(), super::context::shared()) {
            s.core.borrow_mut().timers.remove(&k);
        }
    }
}

struct SimTask {
    id: u64,
    done: Arc<Completion>,
}

impl TaskControl for SimTask {
    fn abort(&self) {
        if let Some(s) = super::context::shared() {
            s.core.borrow_mut().aborts.push(self.id);
        }
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
        let s = expect_shared();
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

    fn spawn_blocking(
        &self,
        _name: &'static str,
        work: Box<dyn FnOnce() + Send>,
    ) -> BoxFuture<Result<(), JoinError>> {
        let s = expect_shared();
        let done = Arc::new(Completion::default());
        start_blocking(
            &s,
            QueuedWork {
                work,
                done: Arc::clone(&done),
                node: self.node,
            },
        );
        Box::pin(std::future::poll_fn(move |cx| done.poll_join(cx)))
    }

    fn yield_now(&self) -> BoxFuture<()> {
        let mut yielded = false;
        Box::pin(std::future::poll_fn(move |cx| {
            if yielded {
                Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }))
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
