//! [`TraceWriter`]: fire-and-forget writes, background tasks with retries,
//! and shutdown with a deadline.

use super::endpoint::{Endpoint, EndpointError};
use super::tasks::{Counts, Fate, TaskGuard, TaskSet};
use super::{Flaw, Trace};
use crate::clock::Clock;
use crate::retry::{
    retry, Backoff, CallError, CancelToken, RetryError, RetryPolicy, ServiceUnavailable,
};
use crate::sched::{Scheduler, TaskName};
use crate::sink::{Sink, SinkErrorKind};
use crate::sync::{Arc, DynArc, Gate};
use crate::BoxFuture;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// How the writer behaves. `Default` is the fixed writer; the pre-fix one
/// is [`WriterConfig::pre_fix`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterConfig {
    /// Hold one gate across every sink write (the pre-fix bug). Default
    /// false.
    pub lock_across_write: bool,
    /// Attempts and backoff of each trace's write. Default
    /// [`RetryPolicy::three_times_one_second`].
    pub retry: RetryPolicy,
    /// Tasks in flight at most; a write beyond is refused
    /// ([`RefuseReason::Full`]). `None` is unlimited (pre-fix). Default
    /// `Some(10_000)`.
    pub tasks_max: Option<usize>,
    /// Record every trace's [`Fate`] by trace id (for oracles; memory grows
    /// with the writes; ids must be unique). Default false.
    pub record_fates: bool,
    /// A deliberate bug (tests only). Default none.
    #[doc(hidden)]
    pub flaw: Flaw,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            lock_across_write: false,
            retry: RetryPolicy::three_times_one_second(),
            tasks_max: Some(10_000),
            record_fates: false,
            flaw: Flaw::None,
        }
    }
}

impl WriterConfig {
    /// The pre-fix writer: one gate across every sink write, no task cap.
    pub fn pre_fix() -> Self {
        WriterConfig {
            lock_across_write: true,
            tasks_max: None,
            ..Default::default()
        }
    }

    /// The incident's own fix, and nothing more: no gate, and still no
    /// cap on the tasks in flight.
    pub fn incident_fix() -> Self {
        WriterConfig {
            tasks_max: None,
            ..Default::default()
        }
    }
}

/// What [`TraceWriter::write`] did with an accepted trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// A background task is writing it.
    Spawned,
    /// The writer is disabled (no endpoint configured): discarded, counted
    /// in [`Counts::disabled`].
    Disabled,
}

/// Why a write was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefuseReason {
    /// Shutdown has begun.
    ShuttingDown,
    /// `tasks_max` tasks are in flight.
    Full {
        /// The cap.
        tasks_max: usize,
    },
}

/// A refused write; hands the trace back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Why.
    pub reason: RefuseReason,
    /// The trace, not written.
    pub trace: Trace,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.reason {
            RefuseReason::ShuttingDown => {
                write!(
                    f,
                    "trace {} refused: the writer is shutting down",
                    self.trace.id
                )
            }
            RefuseReason::Full { tasks_max } => write!(
                f,
                "trace {} refused: {tasks_max} writes already in flight",
                self.trace.id
            ),
        }
    }
}

impl std::error::Error for Refused {}

/// What [`TraceWriter::shutdown`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Tasks in flight when shutdown began.
    pub in_flight: u64,
    /// Of those, tasks that ended on their own before the deadline.
    pub drained: u64,
    /// Tasks cancelled at the deadline (their traces counted abandoned).
    pub abandoned: u64,
}

struct Inner<S> {
    sink: Option<Arc<S>>,
    clock: DynArc<dyn Clock>,
    sched: DynArc<dyn Scheduler>,
    cfg: WriterConfig,
    gate: Gate<()>,
    tasks: Arc<TaskSet>,
}

/// The fire-and-forget trace writer; clones share one writer.
pub struct TraceWriter<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for TraceWriter<S> {
    fn clone(&self) -> Self {
        TraceWriter {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: Sink<Trace> + 'static> TraceWriter<S> {
    /// A writer to `sink`, timing backoff on `clock`, starting its tasks on
    /// `sched`.
    pub fn new(
        cfg: WriterConfig,
        clock: DynArc<dyn Clock>,
        sched: DynArc<dyn Scheduler>,
        sink: S,
    ) -> Self {
        Self::build(cfg, clock, sched, Some(Arc::new(sink)))
    }

    /// A disabled writer: every write is accepted and discarded
    /// ([`Accepted::Disabled`]).
    pub fn disabled(
        cfg: WriterConfig,
        clock: DynArc<dyn Clock>,
        sched: DynArc<dyn Scheduler>,
    ) -> Self {
        Self::build(cfg, clock, sched, None)
    }

    /// A writer configured by an endpoint string: disabled (not failing)
    /// when `endpoint` is `None` or blank, else `make_sink` builds the sink
    /// for the parsed endpoint (its client is created on first use).
    ///
    /// # Errors
    /// [`EndpointError`] when the endpoint does not parse.
    pub fn from_endpoint(
        cfg: WriterConfig,
        clock: DynArc<dyn Clock>,
        sched: DynArc<dyn Scheduler>,
        endpoint: Option<&str>,
        make_sink: impl FnOnce(&Endpoint) -> S,
    ) -> Result<Self, EndpointError> {
        match endpoint.filter(|e| !e.trim().is_empty()) {
            None => Ok(Self::disabled(cfg, clock, sched)),
            Some(e) => {
                let ep = Endpoint::parse(e)?;
                Ok(Self::new(cfg, clock, sched, make_sink(&ep)))
            }
        }
    }

    fn build(
        cfg: WriterConfig,
        clock: DynArc<dyn Clock>,
        sched: DynArc<dyn Scheduler>,
        sink: Option<Arc<S>>,
    ) -> Self {
        let tasks = Arc::new(TaskSet::new(cfg.record_fates, cfg.flaw));
        TraceWriter {
            inner: Arc::new(Inner {
                sink,
                clock,
                sched,
                cfg,
                gate: Gate::new(()),
                tasks,
            }),
        }
    }

    /// Whether the writer writes anywhere.
    pub fn is_enabled(&self) -> bool {
        self.inner.sink.is_some()
    }

    /// The sink, when enabled.
    pub fn sink(&self) -> Option<&S> {
        self.inner.sink.as_deref()
    }

    /// The configuration.
    pub fn config(&self) -> WriterConfig {
        self.inner.cfg
    }

    /// Hands `trace` to a background task and returns at once (ready on its
    /// first poll: it never waits for the sink, a lock or a permit).
    ///
    /// # Errors
    /// [`Refused`] (with the trace) once shutdown has begun, or when
    /// `tasks_max` tasks are in flight.
    ///
    /// # Cancel safety
    /// Nothing to cancel: the work is done at the first poll.
    pub async fn write(&self, trace: Trace) -> Result<Accepted, Refused> {
        self.submit(trace)
    }

    fn submit(&self, trace: Trace) -> Result<Accepted, Refused> {
        let inner = &self.inner;
        let Some(sink) = &inner.sink else {
            inner.tasks.note_disabled();
            return Ok(Accepted::Disabled);
        };
        let ticket = match inner.tasks.admit(trace.id, inner.cfg.tasks_max) {
            Ok(t) => t,
            Err(fate) => {
                let reason = match fate {
                    Fate::RefusedFull => RefuseReason::Full {
                        tasks_max: inner.cfg.tasks_max.unwrap_or(usize::MAX),
                    },
                    _ => RefuseReason::ShuttingDown,
                };
                return Err(Refused { reason, trace });
            }
        };
        let guard = TaskGuard::new(Arc::clone(&inner.tasks), ticket.id);
        // Named as the books name it (`trace 17`), so a failure about a
        // trace points at its task in a simulated run's trace.
        let name = TaskName::numbered("trace.write", "trace ", trace.id);
        let body = deliver(
            Arc::clone(inner),
            Arc::clone(sink),
            trace,
            ticket.cancel,
            ticket.id,
        );
        let task = Guarded {
            fut: Box::pin(body),
            guard: Some(guard),
        };
        // Detached: the task set tracks it, shutdown cancels it.
        drop(inner.sched.spawn_named(name, Box::pin(task)));
        Ok(Accepted::Spawned)
    }

    /// Stops accepting writes, lets the tasks in flight drain until the
    /// clock reaches `deadline_ns`, then cancels the rest (their traces are
    /// counted abandoned) and waits for them to end: when it returns, no
    /// task of this writer runs any more. Calling it again reports the tasks
    /// left then (none).
    ///
    /// # Cancel safety
    /// Cancelling it leaves the writer closed with its tasks running (a
    /// later call drains them again).
    pub async fn shutdown(&self, deadline_ns: u64) -> ShutdownReport {
        let set = &self.inner.tasks;
        let in_flight = set.close() as u64;
        let abandoned_before = set.counts().abandoned;
        let mut idle = set.idle();
        let mut deadline = self.inner.clock.sleep_until(deadline_ns);
        let drained = std::future::poll_fn(|cx| {
            if Pin::new(&mut idle).poll(cx).is_ready() {
                return Poll::Ready(true);
            }
            deadline.as_mut().poll(cx).map(|()| false)
        })
        .await;
        drop(idle);
        if !drained {
            for cancel in set.snapshot_cancels() {
                cancel.cancel();
            }
            if self.inner.cfg.flaw != Flaw::ShutdownSkipsJoin {
                set.idle().await;
            }
        }
        let abandoned = set.counts().abandoned - abandoned_before;
        ShutdownReport {
            in_flight,
            drained: in_flight.saturating_sub(abandoned),
            abandoned,
        }
    }

    /// The books so far.
    pub fn counts(&self) -> Counts {
        self.inner.tasks.counts()
    }

    /// Tasks in flight now.
    pub fn tasks_in_flight(&self) -> u64 {
        self.counts().in_flight
    }

    /// Every trace's fate by trace id (empty unless `record_fates`).
    pub fn fates(&self) -> BTreeMap<u64, Fate> {
        self.inner.tasks.fates()
    }

    /// Traces given two fates (with `record_fates`; must stay empty).
    pub fn fate_conflicts(&self) -> Vec<String> {
        self.inner.tasks.conflicts()
    }
}

/// A task's body and the guard that ends it in the set. The body is
/// dropped before the guard (field order), so when the set sees the task
/// end, nothing of it (no sink write in flight) is left.
struct Guarded {
    fut: BoxFuture<Fate>,
    guard: Option<TaskGuard>,
}

impl Future for Guarded {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let fate = std::task::ready!(self.fut.as_mut().poll(cx));
        if let Some(g) = self.guard.take() {
            g.finish(fate);
        }
        Poll::Ready(())
    }
}

/// 503, timeouts and a closed or unreachable peer are retried; a rejection
/// is final.
fn classify(kind: SinkErrorKind) -> CallError<SinkErrorKind> {
    match kind {
        SinkErrorKind::Unavailable { retry_after_ms } => {
            CallError::Unavailable(ServiceUnavailable { retry_after_ms })
        }
        SinkErrorKind::Timeout | SinkErrorKind::Closed => {
            CallError::Unavailable(ServiceUnavailable {
                retry_after_ms: None,
            })
        }
        SinkErrorKind::Rejected(_) => CallError::Other(kind),
    }
}

/// One attempt: the sink write, under the gate when the writer is pre-fix.
async fn attempt<S: Sink<Trace>>(
    inner: &Inner<S>,
    sink: &S,
    trace: Trace,
) -> Result<(), CallError<SinkErrorKind>> {
    let _held = if inner.cfg.lock_across_write {
        Some(inner.gate.lock().await)
    } else {
        None
    };
    sink.write(vec![trace]).await.map_err(|e| classify(e.kind))
}

/// Writes `trace` with retries until delivered, dropped or cancelled.
async fn deliver<S: Sink<Trace> + 'static>(
    inner: Arc<Inner<S>>,
    sink: Arc<S>,
    trace: Trace,
    cancel: CancelToken,
    seed: u64,
) -> Fate {
    let mut backoff = Backoff::new(inner.cfg.retry, seed);
    let id = trace.id;
    let op = |_attempt: u32| attempt(&inner, &sink, trace.clone());
    match retry(&*inner.clock, &mut backoff, &cancel, op).await {
        Ok(()) => {
            tracing::debug!(trace_id = id, "trace delivered");
            Fate::Delivered
        }
        Err(RetryError::Exhausted { attempts, last }) => {
            tracing::debug!(
                trace_id = id,
                attempts,
                "trace dropped after retries: {last}"
            );
            Fate::DroppedAfterRetries
        }
        Err(RetryError::Failed { attempts, error }) => {
            tracing::debug!(
                trace_id = id,
                attempts,
                "trace dropped, rejected: {error:?}"
            );
            Fate::DroppedRejected
        }
        Err(RetryError::Cancelled { attempts }) => {
            tracing::debug!(trace_id = id, attempts, "trace abandoned at shutdown");
            Fate::Abandoned
        }
    }
}
