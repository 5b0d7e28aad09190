//! The local-socket sink: [`SocketSink`] sends each batch on its own
//! blocking thread, with a send timeout, to a [`SocketPeer`] (the in-memory
//! model of the peer process).

use super::column::join_error;
use super::peer::Restarts;
use super::{Trace, SOCKET_SITE};
use crate::clock::{Clock, NS_PER_MS};
use crate::probe;
use crate::sched::{JoinError, Scheduler};
use crate::sink::{Sink, SinkError, SinkErrorKind, SinkFault, SinkFaults};
use crate::sync::{Arc, AtomicU64, DynArc, Mutex, Ordering, Semaphore};
use crate::BoxFuture;
use std::collections::BTreeSet;

/// How the socket sink sends. `Default` is the fixed sink; the pre-fix one
/// is [`SocketConfig::pre_fix`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketConfig {
    /// A send attempt that gets no answer fails after this long, ms.
    /// Default 5,000 (pre-fix 60,000).
    pub timeout_ms: u64,
    /// Attempts one thread makes before it gives up. Default 1: the
    /// writer's retry policy makes the others, between threads (pre-fix 3,
    /// back to back on the same thread).
    pub thread_attempts_max: u32,
    /// Whether a write waits for its thread's answer. Default true. When
    /// false (pre-fix) the thread is detached and the write succeeds at
    /// once: the writer never learns that a send failed.
    pub wait_for_thread: bool,
    /// Sends in flight at most; a write beyond fails at once with a 503
    /// (`Retry-After` 1 s) instead of taking another thread. `None` is
    /// unlimited (pre-fix). Default `Some(64)`.
    pub sends_max: Option<usize>,
}

impl Default for SocketConfig {
    fn default() -> Self {
        SocketConfig {
            timeout_ms: 5_000,
            thread_attempts_max: 1,
            wait_for_thread: true,
            sends_max: Some(64),
        }
    }
}

impl SocketConfig {
    /// The pre-fix sink: a detached thread per trace, 3 attempts of 60 s.
    pub fn pre_fix() -> Self {
        SocketConfig {
            timeout_ms: 60_000,
            thread_attempts_max: 3,
            wait_for_thread: false,
            sends_max: None,
        }
    }

    /// The incident's own fix, and nothing more: the pre-fix sink with a
    /// 5 s timeout (still a detached thread per trace, 3 attempts on it,
    /// no cap).
    pub fn incident_fix() -> Self {
        SocketConfig {
            timeout_ms: 5_000,
            ..Self::pre_fix()
        }
    }
}

/// The model of the peer process at the other end of the local socket.
///
/// An attempt asks, in order: whether the peer is restarting at the
/// attempt's start, or the `Crash` fault point restarts it now (for
/// `restart_ms`): a restarting peer keeps its listening socket, so the
/// connection is queued and nobody answers, and the attempt waits for its
/// timeout; then
/// `faults` (error, 503, hang until the timeout, latency spike).
pub struct SocketPeer {
    clock: DynArc<dyn Clock>,
    faults: DynArc<dyn SinkFaults>,
    restarts: Restarts,
    restart_ms: u64,
    send_ms: u64,
    received: Mutex<BTreeSet<u64>>,
}

impl SocketPeer {
    /// A peer on `clock`; a restart (the `Crash` fault) lasts `restart_ms`;
    /// a send to a live peer takes `send_ms`.
    pub fn new(
        clock: DynArc<dyn Clock>,
        faults: DynArc<dyn SinkFaults>,
        restart_ms: u64,
        send_ms: u64,
    ) -> Self {
        SocketPeer {
            clock,
            faults,
            restarts: Restarts::new(),
            restart_ms,
            send_ms,
            received: Mutex::new(BTreeSet::new()),
        }
    }

    /// When the peer is restarting (schedule restarts here).
    pub fn restarts(&self) -> &Restarts {
        &self.restarts
    }

    /// Ids of every trace the peer received.
    pub fn received_ids(&self) -> BTreeSet<u64> {
        self.received.with(|r| r.clone())
    }

    /// One attempt starting at `at_ns`: its result and how long it takes.
    fn attempt(
        &self,
        trace: &Trace,
        timeout_ms: u64,
        at_ns: u64,
    ) -> (Result<(), SinkErrorKind>, u64) {
        let timeout = timeout_ms.saturating_mul(NS_PER_MS);
        let timed_out = (Err(SinkErrorKind::Timeout), timeout);
        if self
            .restarts
            .down_or_crashes(SOCKET_SITE, at_ns, self.restart_ms)
        {
            return timed_out;
        }
        let mut took = self.send_ms.saturating_mul(NS_PER_MS);
        match self.faults.next_fault() {
            Some(SinkFault::Fail(kind)) => return (Err(kind), NS_PER_MS),
            Some(SinkFault::Hang(_)) => return timed_out,
            Some(SinkFault::Delay(d)) => {
                took = took.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
            }
            None => {}
        }
        if took >= timeout {
            return timed_out;
        }
        self.received.with(|r| r.insert(trace.id));
        (Ok(()), took)
    }
}

/// Counters of the sink's blocking sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendStats {
    /// Sends handed to the blocking pool.
    pub submitted: u64,
    /// Sends whose thread has started (the rest wait for a free thread).
    pub started: u64,
    /// Writes refused at once because `sends_max` sends were in flight.
    pub refused_busy: u64,
    /// The longest a send held its thread (all its attempts), ms.
    pub thread_ms_max: u64,
}

impl SendStats {
    /// Sends waiting for a blocking thread: the pool is exhausted when this
    /// is not 0.
    pub fn waiting_for_thread(&self) -> u64 {
        self.submitted.saturating_sub(self.started)
    }
}

#[derive(Default)]
struct Counters {
    submitted: AtomicU64,
    started: AtomicU64,
    refused_busy: AtomicU64,
    thread_ns_max: AtomicU64,
}

/// A sink that sends each batch on its own blocking thread.
pub struct SocketSink {
    cfg: SocketConfig,
    sched: DynArc<dyn Scheduler>,
    peer: Arc<SocketPeer>,
    slots: Option<Semaphore>,
    counters: Arc<Counters>,
}

impl SocketSink {
    /// A sink sending to `peer` on `sched`'s blocking pool.
    pub fn new(cfg: SocketConfig, sched: DynArc<dyn Scheduler>, peer: Arc<SocketPeer>) -> Self {
        SocketSink {
            cfg,
            sched,
            peer,
            slots: cfg.sends_max.map(Semaphore::new),
            counters: Arc::new(Counters::default()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> SocketConfig {
        self.cfg
    }

    /// The send counters.
    pub fn stats(&self) -> SendStats {
        let c = &self.counters;
        SendStats {
            submitted: c.submitted.load(Ordering::SeqCst),
            started: c.started.load(Ordering::SeqCst),
            refused_busy: c.refused_busy.load(Ordering::SeqCst),
            thread_ms_max: c.thread_ns_max.load(Ordering::SeqCst) / NS_PER_MS,
        }
    }

    /// Starts the blocking send of `rows`; the future is its answer.
    fn submit(&self, rows: Vec<Trace>) -> BoxFuture<Result<Result<(), SinkErrorKind>, JoinError>> {
        let (peer, counters, cfg) = (Arc::clone(&self.peer), Arc::clone(&self.counters), self.cfg);
        counters.submitted.fetch_add(1, Ordering::SeqCst);
        let sched = DynArc::clone(&self.sched);
        let started = run_blocking_now(sched, move || {
            counters.started.fetch_add(1, Ordering::SeqCst);
            let (r, held_ns) = send_on_thread(&peer, &rows, cfg);
            counters.thread_ns_max.fetch_max(held_ns, Ordering::SeqCst);
            r
        });
        Box::pin(started)
    }
}

/// [`run_blocking`](crate::sched::run_blocking), with the work handed to the pool before the first poll
/// (a detached send must start even if its future is dropped at once).
fn run_blocking_now<T: Send + 'static>(
    sched: DynArc<dyn Scheduler>,
    work: impl FnOnce() -> T + Send + 'static,
) -> impl std::future::Future<Output = Result<T, JoinError>> + Send + 'static {
    let slot = Arc::new(Mutex::new(None));
    let out = Arc::clone(&slot);
    let done = sched.spawn_blocking(
        "trace.socket.send",
        Box::new(move || out.with(|o| *o = Some(work()))),
    );
    async move {
        done.await?;
        slot.with(Option::take).ok_or(JoinError::Cancelled)
    }
}

/// The body of one send thread: every trace, each with up to
/// `thread_attempts_max` attempts back to back. Returns the result and how
/// long the thread was held, ns.
fn send_on_thread(
    peer: &SocketPeer,
    rows: &[Trace],
    cfg: SocketConfig,
) -> (Result<(), SinkErrorKind>, u64) {
    let start = peer.clock.now_ns();
    let mut elapsed = 0u64;
    let mut last = Ok(());
    for trace in rows {
        for _ in 0..cfg.thread_attempts_max.max(1) {
            let (r, took) = peer.attempt(trace, cfg.timeout_ms, start.saturating_add(elapsed));
            elapsed = elapsed.saturating_add(took);
            last = r;
            if last.is_ok() {
                break;
            }
        }
        if let Err(e) = &last {
            if !cfg.wait_for_thread {
                tracing::debug!(trace_id = trace.id, "socket send thread gave up: {e:?}");
            }
            break;
        }
    }
    probe::blocking_wait(elapsed);
    (last, elapsed)
}

impl Sink<Trace> for SocketSink {
    fn write(&self, batch: Vec<Trace>) -> BoxFuture<Result<(), SinkError<Trace>>> {
        if !self.cfg.wait_for_thread {
            drop(self.submit(batch));
            return Box::pin(async { Ok(()) });
        }
        let permit = match self.slots.as_ref().map(Semaphore::try_acquire) {
            Some(Err(_)) => {
                self.counters.refused_busy.fetch_add(1, Ordering::SeqCst);
                let kind = SinkErrorKind::Unavailable {
                    retry_after_ms: Some(1_000),
                };
                return Box::pin(async move { Err(SinkError { kind, batch }) });
            }
            Some(Ok(p)) => Some(p),
            None => None,
        };
        let send = self.submit(batch.clone());
        Box::pin(async move {
            let r = send.await.unwrap_or_else(|e| Err(join_error(e)));
            drop(permit);
            r.map_err(|kind| SinkError { kind, batch })
        })
    }
}
