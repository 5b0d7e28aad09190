//! Service 3: a fire-and-forget trace writer.
//!
//! [`TraceWriter::write`] hands a [`Trace`] to a background task (started on
//! the injected [`Scheduler`](crate::sched::Scheduler), kept in a task set
//! until it ends) and returns at once. The task writes the trace to a
//! [`Sink`](crate::sink::Sink) with the retry policy
//! ([`RetryPolicy::three_times_one_second`](crate::retry::RetryPolicy::three_times_one_second):
//! 3 attempts, 1 s initial backoff, doubling) and, after the last failure,
//! drops it: counted and logged (each drop at `debug` level, and a running
//! total at `info` on the 1st, 2nd, 4th, 8th... drop, so an outage does
//! not flood the log). [`TraceWriter::shutdown`] stops accepting,
//! lets in-flight tasks drain until a deadline, cancels the rest and reports
//! both counts; a write after shutdown is refused with a typed error that
//! hands the trace back. The accounting is exact: once shutdown has
//! returned, `delivered + dropped + refused == written` ([`Counts`]).
//!
//! Two sinks:
//! * [`ColumnSink`]: a column store whose server batches inserts and flushes
//!   them every `flush_ms` (1 s); with `wait_for_ack` the client's insert
//!   blocks until the flush. [`MemColumnServer`] is the in-memory model of
//!   the server (with fault points); `duck::DuckTraces` (feature `duckdb`)
//!   writes to a real DuckDB `traces` table.
//! * [`SocketSink`]: sends each trace to a local socket peer
//!   ([`SocketPeer`], an in-memory model) on a blocking thread with a send
//!   timeout.
//!
//! Both peers have fault points (site [`COLUMN_SITE`] / [`SOCKET_SITE`]):
//! latency spikes (slow), errors, 503s, hangs until the timeout, and a
//! restart of the peer for a configured time ([`FaultKind::Crash`]).
//!
//! ## The bugs (pre-fix, [`Variant::PreFix`])
//! 1. **One lock across every sink write while the column store waits for
//!    its acknowledgement.** The pre-fix writer holds one [`Gate`] across
//!    each sink write, and the pre-fix column client inserts with
//!    `wait_for_ack` (`wait_for_async_insert=1`): the synchronous insert,
//!    already in the blocking pool (`asyncio.to_thread`), does not return
//!    until the server's batch is flushed, about 1 s later. The loop is
//!    never blocked by it; the writer serves about one trace a second, and
//!    traces arriving faster pile up as tasks queued on the gate.
//! 2. **One blocking thread per trace, 60 s timeout, 3 attempts.** The
//!    pre-fix socket sink starts a detached blocking thread per trace that
//!    tries 3 times with a 60 s timeout each: while the peer restarts, every
//!    thread lives up to 3 minutes.
//!
//! **The incident's fix** ([`Variant::IncidentFix`]), exactly as written:
//! no lock (the client is a thread-safe pool), no ack wait, the insert
//! stays in the blocking pool; the socket timeout 60 s -> 5 s and nothing
//! else changed in the socket sink (still a detached thread per trace, 3
//! attempts on it).
//!
//! **faultline's fix** ([`Variant::Fixed`]) adds to it: a cap on the tasks
//! in flight (`tasks_max`, 10,000: a write beyond is refused and handed
//! back, counted); the socket sink waits for its one-attempt send (the
//! writer's retry policy makes the other attempts, with its backoff spent
//! off any thread), so a failed send is counted dropped instead of
//! "delivered" when its thread started, and caps sends in flight
//! (`sends_max`).
//!
//! ## How the simulator sees it (the cost model)
//! A blocking call declares its duration with
//! [`probe::blocking_wait`](crate::probe::blocking_wait). Made inside
//! `spawn_blocking` work (every insert, every socket send), it keeps one
//! simulated blocking thread busy for that long: the loop stays free, and
//! the simulator counts the threads alive (`Outcome::threads_peak`), so a
//! 60 s timeout under a restarting peer shows up as a thread pile-up. Made
//! on the event loop ([`InsertOn::EventLoop`], a layer-check twin only),
//! it stalls the whole loop for that long.
//!
//! What saturates the pre-fix loop is not the insert but the tasks piling
//! up behind the gate: the simulator's [`LoopCost`](crate::sim::LoopCost)
//! charges the loop a full collection's pause that grows with the tasks
//! alive, as CPython's collector does (figures measured on asyncio by
//! `scripts/asyncio-loop-cost.py`; the `trace-saturation` scenario sets
//! them). Blocking work runs at the instant it starts; a model peer
//! therefore evaluates an attempt that starts later in the same thread
//! (after an earlier attempt's timeout) at the virtual time it would
//! start.
//!
//! ## Limits
//! * Without `wait_for_ack`, "delivered" means accepted into the server's
//!   batch: a server that lost its unflushed batch in a crash would lose
//!   accepted traces. The model server restarts gracefully (its batch
//!   survives).
//! * A blocking thread cannot be cancelled: an abandoned task's send may
//!   still land at the peer. Such traces are counted abandoned (dropped),
//!   never delivered.
//! * The socket peer is an in-process model; no real socket transport is
//!   included.

mod column;
mod endpoint;
mod lazy;
mod peer;
mod socket;
mod tasks;
mod writer;

#[cfg(all(feature = "duckdb", not(any(faultline_loom, faultline_shuttle))))]
pub mod duck;

pub use column::{ColumnClient, ColumnConfig, ColumnSink, InsertOn, MemColumnServer, ServerConfig};
pub use endpoint::{Endpoint, EndpointError, Scheme, DEFAULT_PLAIN_PORT, DEFAULT_TLS_PORT};
pub use lazy::Lazy;
pub use peer::{Restarts, RESTART_WINDOWS_MAX};
pub use socket::{SendStats, SocketConfig, SocketPeer, SocketSink};
pub use tasks::{Counts, Fate, CONFLICTS_MAX};
pub use writer::{Accepted, RefuseReason, Refused, ShutdownReport, TraceWriter, WriterConfig};

#[allow(unused_imports)] // doc links
use crate::{probe::FaultKind, sync::Gate};

/// The column sink's fault-point site.
pub const COLUMN_SITE: &str = "trace.column";
/// The socket sink's fault-point site.
pub const SOCKET_SITE: &str = "trace.socket";

/// One analytics trace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Trace {
    /// Unique id (the oracles' identity of a trace).
    pub id: u64,
    /// When it was recorded, ms since the Unix epoch.
    pub at_ms: u64,
    /// What it traces, e.g. a route.
    pub name: String,
}

/// A deliberate bug planted in the writer, for proving the checks catch
/// it. Never use anything but [`Flaw::None`] outside a test.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flaw {
    /// The correct writer.
    #[default]
    None,
    /// A trace dropped after its last retry is neither counted nor
    /// recorded (the accounting oracle must catch it).
    ForgetsDropCount,
    /// At the deadline, shutdown counts every task of its snapshot as
    /// abandoned itself and only then cancels them; a task that delivers
    /// in between is counted twice (delivered and abandoned).
    AbandonsFromSnapshot,
    /// Shutdown returns as soon as it has cancelled the remaining tasks,
    /// without waiting for them to end: they outlive it.
    ShutdownSkipsJoin,
}

/// Which writer and sinks: the historical bugs, the incident's own fix,
/// or faultline's fix. There is deliberately no default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// One gate across every sink write, each insert (in the blocking
    /// pool) waiting for the server's ack; detached socket threads with a
    /// 60 s timeout and 3 attempts each.
    PreFix,
    /// The incident's fix as written: no gate, no ack wait, no task cap;
    /// the pre-fix socket sink with a 5 s timeout.
    IncidentFix,
    /// The incident's fix plus a task cap, a socket sink that waits for
    /// its one-attempt send, and a cap on sends in flight.
    Fixed,
}

impl Variant {
    /// Every variant.
    pub const ALL: [Variant; 3] = [Variant::PreFix, Variant::IncidentFix, Variant::Fixed];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Variant::PreFix => "pre-fix",
            Variant::IncidentFix => "incident-fix",
            Variant::Fixed => "fixed",
        }
    }

    /// Parses a CLI name.
    pub fn from_name(name: &str) -> Option<Variant> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    /// The writer of this variant.
    pub fn writer(self) -> WriterConfig {
        match self {
            Variant::PreFix => WriterConfig::pre_fix(),
            Variant::IncidentFix => WriterConfig::incident_fix(),
            Variant::Fixed => WriterConfig::default(),
        }
    }

    /// The column sink of this variant.
    pub fn column(self) -> ColumnConfig {
        match self {
            Variant::PreFix => ColumnConfig::pre_fix(),
            Variant::IncidentFix | Variant::Fixed => ColumnConfig::default(),
        }
    }

    /// The socket sink of this variant.
    pub fn socket(self) -> SocketConfig {
        match self {
            Variant::PreFix => SocketConfig::pre_fix(),
            Variant::IncidentFix => SocketConfig::incident_fix(),
            Variant::Fixed => SocketConfig::default(),
        }
    }
}
