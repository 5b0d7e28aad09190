//! The writer's task set and its exact accounting: every write gets exactly
//! one [`Fate`], recorded by the one party that decides it (the refusing
//! `write`, or the task itself when it ends, however it ends).

use super::Flaw;
use crate::retry::CancelToken;
use crate::sync::{Arc, Mutex};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Fate conflicts kept at most (the first ones; each is already a failure).
pub const CONFLICTS_MAX: usize = 100;

/// What became of one written trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fate {
    /// The sink took it.
    Delivered,
    /// Every attempt failed with a retryable error; dropped after the last.
    DroppedAfterRetries,
    /// The sink refused it for good (not retried); dropped.
    DroppedRejected,
    /// Its task was still running at shutdown's deadline (or was dropped by
    /// its runtime) and was cancelled; dropped. Its last send may still
    /// land at the peer (a blocking thread cannot be cancelled).
    Abandoned,
    /// Written after shutdown began; refused and handed back.
    RefusedShutdown,
    /// Written while `tasks_max` tasks were in flight; refused and handed
    /// back.
    RefusedFull,
}

/// The writer's accounting. Once shutdown has returned (`in_flight == 0`),
/// `written == delivered + dropped() + refused()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Writes to an enabled writer (refused ones included).
    pub written: u64,
    /// Traces the sink took.
    pub delivered: u64,
    /// Traces dropped after the last retry.
    pub dropped_after_retries: u64,
    /// Traces the sink refused for good.
    pub dropped_rejected: u64,
    /// Traces whose task was cancelled (shutdown deadline, runtime).
    pub abandoned: u64,
    /// Writes refused because shutdown had begun.
    pub refused_shutdown: u64,
    /// Writes refused because the task set was full.
    pub refused_full: u64,
    /// Writes to a disabled writer (no endpoint): not part of `written`.
    pub disabled: u64,
    /// Tasks in flight now.
    pub in_flight: u64,
    /// Most tasks in flight at once.
    pub tasks_peak: u64,
}

impl Counts {
    /// Every dropped trace, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_after_retries + self.dropped_rejected + self.abandoned
    }

    /// Every refused write.
    pub fn refused(&self) -> u64 {
        self.refused_shutdown + self.refused_full
    }

    /// `written - (delivered + dropped + refused + in_flight)`: 0 when
    /// nothing is lost from the books (negative: something counted twice).
    pub fn imbalance(&self) -> i128 {
        let settled = self.delivered + self.dropped() + self.refused() + self.in_flight;
        i128::from(self.written) - i128::from(settled)
    }
}

struct Entry {
    trace_id: u64,
    cancel: CancelToken,
    /// Set by the flawed shutdown that counts abandoned tasks itself.
    counted_by_shutdown: bool,
}

#[derive(Default)]
struct State {
    closed: bool,
    next_id: u64,
    tasks: BTreeMap<u64, Entry>,
    counts: Counts,
    fates: Option<BTreeMap<u64, Fate>>,
    conflicts: Vec<String>,
    next_waiter: u64,
    idle_waiters: BTreeMap<u64, Waker>,
}

impl State {
    fn settle(&mut self, trace_id: u64, fate: Fate) {
        let c = &mut self.counts;
        match fate {
            Fate::Delivered => c.delivered += 1,
            Fate::DroppedAfterRetries => c.dropped_after_retries += 1,
            Fate::DroppedRejected => c.dropped_rejected += 1,
            Fate::Abandoned => c.abandoned += 1,
            Fate::RefusedShutdown => c.refused_shutdown += 1,
            Fate::RefusedFull => c.refused_full += 1,
        }
        let Some(fates) = &mut self.fates else { return };
        if let Some(before) = fates.insert(trace_id, fate) {
            if self.conflicts.len() < CONFLICTS_MAX {
                self.conflicts
                    .push(format!("trace {trace_id} is both {before:?} and {fate:?}"));
            }
        }
    }
}

/// A task's place in the set.
pub(crate) struct Ticket {
    pub(crate) id: u64,
    pub(crate) cancel: CancelToken,
}

/// The set of in-flight tasks and the books.
pub(crate) struct TaskSet {
    state: Mutex<State>,
    flaw: Flaw,
}

impl TaskSet {
    pub(crate) fn new(record_fates: bool, flaw: Flaw) -> Self {
        let state = State {
            fates: record_fates.then(BTreeMap::new),
            ..State::default()
        };
        TaskSet {
            state: Mutex::new(state),
            flaw,
        }
    }

    /// Books a write: a place in the set, or the refusal (already counted).
    pub(crate) fn admit(&self, trace_id: u64, tasks_max: Option<usize>) -> Result<Ticket, Fate> {
        self.state.with(|s| {
            s.counts.written += 1;
            let refusal = if s.closed {
                Some(Fate::RefusedShutdown)
            } else if tasks_max.is_some_and(|max| s.tasks.len() >= max) {
                Some(Fate::RefusedFull)
            } else {
                None
            };
            if let Some(fate) = refusal {
                s.settle(trace_id, fate);
                return Err(fate);
            }
            let id = s.next_id;
            s.next_id += 1;
            let cancel = CancelToken::new();
            let entry = Entry {
                trace_id,
                cancel: cancel.clone(),
                counted_by_shutdown: false,
            };
            s.tasks.insert(id, entry);
            let n = s.tasks.len() as u64;
            s.counts.tasks_peak = s.counts.tasks_peak.max(n);
            Ok(Ticket { id, cancel })
        })
    }

    /// Counts a write to a disabled writer.
    pub(crate) fn note_disabled(&self) {
        self.state.with(|s| s.counts.disabled += 1);
    }

    /// Task `id` ended with `fate`: it leaves the set and is counted.
    fn end(&self, id: u64, fate: Fate) {
        let (wakers, dropped) = self.state.with(|s| {
            let Some(entry) = s.tasks.remove(&id) else {
                return (Vec::new(), 0);
            };
            let forgotten = match (self.flaw, fate) {
                (Flaw::ForgetsDropCount, Fate::DroppedAfterRetries) => true,
                (Flaw::AbandonsFromSnapshot, Fate::Abandoned) => entry.counted_by_shutdown,
                _ => false,
            };
            if !forgotten {
                s.settle(entry.trace_id, fate);
            }
            let dropped = s.counts.dropped();
            let wakers = if s.tasks.is_empty() {
                std::mem::take(&mut s.idle_waiters).into_values().collect()
            } else {
                Vec::new()
            };
            (wakers, dropped)
        });
        let is_drop = !matches!(fate, Fate::Delivered);
        if is_drop && dropped.is_power_of_two() {
            // Rate-limited: the 1st, 2nd, 4th, 8th, ... drop (each trace's
            // own line is at debug level).
            tracing::info!(dropped, "trace writer has dropped {dropped} traces so far");
        }
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Stops admitting; returns the tasks in flight.
    pub(crate) fn close(&self) -> usize {
        self.state.with(|s| {
            s.closed = true;
            s.tasks.len()
        })
    }

    /// The cancel tokens of every task in flight (the flawed shutdown also
    /// counts them abandoned right here, from its snapshot).
    pub(crate) fn snapshot_cancels(&self) -> Vec<CancelToken> {
        self.state.with(|s| {
            let snapshot: Vec<(u64, CancelToken)> = s
                .tasks
                .values_mut()
                .map(|e| {
                    e.counted_by_shutdown = self.flaw == Flaw::AbandonsFromSnapshot;
                    (e.trace_id, e.cancel.clone())
                })
                .collect();
            if self.flaw == Flaw::AbandonsFromSnapshot {
                for (trace_id, _) in &snapshot {
                    s.settle(*trace_id, Fate::Abandoned);
                }
            }
            snapshot.into_iter().map(|(_, c)| c).collect()
        })
    }

    /// Completes when no task is in flight.
    pub(crate) fn idle(&self) -> Idle<'_> {
        Idle {
            set: self,
            key: None,
        }
    }

    pub(crate) fn counts(&self) -> Counts {
        self.state.with(|s| Counts {
            in_flight: s.tasks.len() as u64,
            ..s.counts
        })
    }

    pub(crate) fn fates(&self) -> BTreeMap<u64, Fate> {
        self.state.with(|s| s.fates.clone().unwrap_or_default())
    }

    pub(crate) fn conflicts(&self) -> Vec<String> {
        self.state.with(|s| s.conflicts.clone())
    }
}

/// Ends its task in the set exactly once: with the task's fate when it
/// completes, as [`Fate::Abandoned`] when it is dropped before (cancelled,
/// aborted, its runtime gone).
pub(crate) struct TaskGuard {
    set: Arc<TaskSet>,
    id: u64,
    ended: bool,
}

impl TaskGuard {
    pub(crate) fn new(set: Arc<TaskSet>, id: u64) -> Self {
        TaskGuard {
            set,
            id,
            ended: false,
        }
    }

    pub(crate) fn finish(mut self, fate: Fate) {
        self.ended = true;
        self.set.end(self.id, fate);
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if !self.ended {
            self.set.end(self.id, Fate::Abandoned);
        }
    }
}

/// The future of [`TaskSet::idle`].
pub(crate) struct Idle<'a> {
    set: &'a TaskSet,
    key: Option<u64>,
}

impl Future for Idle<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut key = this.key;
        let idle = this.set.state.with(|s| {
            if s.tasks.is_empty() {
                if let Some(k) = key.take() {
                    s.idle_waiters.remove(&k);
                }
                return true;
            }
            let k = *key.get_or_insert_with(|| {
                s.next_waiter += 1;
                s.next_waiter
            });
            s.idle_waiters.insert(k, cx.waker().clone());
            false
        });
        this.key = key;
        if idle {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.set.state.with(|s| s.idle_waiters.remove(&k));
        }
    }
}
