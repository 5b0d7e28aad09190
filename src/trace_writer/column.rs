//! The column-store sink: [`ColumnSink`] over a blocking [`ColumnClient`],
//! and [`MemColumnServer`], the in-memory model of a server that batches
//! inserts and flushes each batch `flush_ms` after its first row.

use super::lazy::Lazy;
use super::peer::Restarts;
use super::{Trace, COLUMN_SITE};
use crate::clock::{Clock, NS_PER_MS};
use crate::probe;
use crate::sched::{run_blocking, JoinError, Scheduler};
use crate::sink::{Sink, SinkError, SinkErrorKind, SinkFault, SinkFaults};
use crate::sync::{Arc, DynArc, Mutex};
use crate::BoxFuture;
use std::collections::{BTreeMap, BTreeSet};

/// Where the client's blocking insert runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOn {
    /// On whatever thread polls the write: the event loop. Neither the
    /// incident's code nor its fix did this (kept to check the layer
    /// that forbids it).
    EventLoop,
    /// On the scheduler's blocking pool (`spawn_blocking`, the incident's
    /// `asyncio.to_thread`), before and after the fix.
    BlockingPool,
}

/// How the column sink writes. `Default` is the fixed sink; the pre-fix one
/// is [`ColumnConfig::pre_fix`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnConfig {
    /// Wait until the server has flushed the batch (about `flush_ms`)
    /// before an insert returns. Default false.
    pub wait_for_ack: bool,
    /// Where the blocking insert runs. Default [`InsertOn::BlockingPool`].
    pub insert_on: InsertOn,
    /// An insert that gets no answer fails with `Timeout` after this long,
    /// ms. Default 10,000.
    pub timeout_ms: u64,
}

impl Default for ColumnConfig {
    fn default() -> Self {
        ColumnConfig {
            wait_for_ack: false,
            insert_on: InsertOn::BlockingPool,
            timeout_ms: 10_000,
        }
    }
}

impl ColumnConfig {
    /// The pre-fix sink: waits for the ack (`wait_for_async_insert=1`),
    /// the insert already in the blocking pool.
    pub fn pre_fix() -> Self {
        ColumnConfig {
            wait_for_ack: true,
            ..Default::default()
        }
    }
}

/// A synchronous column-store client (a thread-safe connection pool).
pub trait ColumnClient: Send + Sync + 'static {
    /// Inserts `rows`, blocking the calling thread until the server has
    /// taken them and, with `wait_for_ack`, until it has flushed them.
    ///
    /// # Errors
    /// [`SinkErrorKind`]: `Unavailable` (server restarting, 503),
    /// `Timeout` (no answer within `timeout_ms`), `Rejected` (for good).
    fn insert(
        &self,
        rows: &[Trace],
        wait_for_ack: bool,
        timeout_ms: u64,
    ) -> Result<(), SinkErrorKind>;
}

impl<C: ColumnClient> ColumnClient for Arc<C> {
    fn insert(
        &self,
        rows: &[Trace],
        wait_for_ack: bool,
        timeout_ms: u64,
    ) -> Result<(), SinkErrorKind> {
        (**self).insert(rows, wait_for_ack, timeout_ms)
    }
}

/// A sink that inserts each batch through a lazily created
/// [`ColumnClient`].
pub struct ColumnSink<C> {
    cfg: ColumnConfig,
    sched: DynArc<dyn Scheduler>,
    client: Arc<Lazy<C>>,
}

impl<C: ColumnClient> ColumnSink<C> {
    /// A sink whose client `connect` creates on the first write (never
    /// before); `sched` runs the insert off the loop when configured.
    pub fn new(
        cfg: ColumnConfig,
        sched: DynArc<dyn Scheduler>,
        connect: impl Fn() -> Result<C, SinkErrorKind> + Send + Sync + 'static,
    ) -> Self {
        ColumnSink {
            cfg,
            sched,
            client: Arc::new(Lazy::new(connect)),
        }
    }

    /// The configuration.
    pub fn config(&self) -> ColumnConfig {
        self.cfg
    }

    /// The lazy client (how often it was created, whether it exists).
    pub fn client(&self) -> &Lazy<C> {
        &self.client
    }
}

fn insert_with<C: ColumnClient>(
    client: &Lazy<C>,
    rows: &[Trace],
    cfg: ColumnConfig,
) -> Result<(), SinkErrorKind> {
    client.get()?.insert(rows, cfg.wait_for_ack, cfg.timeout_ms)
}

/// A blocking job that did not finish, as a sink error.
pub(super) fn join_error(e: JoinError) -> SinkErrorKind {
    match e {
        JoinError::Cancelled => SinkErrorKind::Closed,
        JoinError::Panicked => SinkErrorKind::Rejected("blocking work panicked".into()),
    }
}

impl<C: ColumnClient> Sink<Trace> for ColumnSink<C> {
    fn write(&self, batch: Vec<Trace>) -> BoxFuture<Result<(), SinkError<Trace>>> {
        let client = Arc::clone(&self.client);
        let cfg = self.cfg;
        let sched = DynArc::clone(&self.sched);
        Box::pin(async move {
            let r = match cfg.insert_on {
                InsertOn::EventLoop => insert_with(&client, &batch, cfg),
                InsertOn::BlockingPool => {
                    let rows = batch.clone();
                    let insert = move || insert_with(&client, &rows, cfg);
                    run_blocking(&*sched, "trace.column.insert", insert)
                        .await
                        .unwrap_or_else(|e| Err(join_error(e)))
                }
            };
            r.map_err(|kind| SinkError { kind, batch })
        })
    }
}

/// How the model server behaves. Every field has a default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// A batch is flushed this long after its first row, ms. Default 1,000.
    pub flush_ms: u64,
    /// Taking an insert costs `1 + draw(insert_ms_max)` ms. Default 20.
    pub insert_ms_max: u64,
    /// How long a restart (the `Crash` fault point) lasts, ms. Default
    /// 5,000.
    pub restart_ms: u64,
    /// A refused connection (server restarting) costs this long, ms.
    /// Default 1.
    pub refuse_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            flush_ms: 1_000,
            insert_ms_max: 20,
            restart_ms: 5_000,
            refuse_ms: 1,
        }
    }
}

#[derive(Default)]
struct ServerState {
    batch: Vec<Trace>,
    batch_opened_ns: Option<u64>,
    table: BTreeMap<u64, Trace>,
}

impl ServerState {
    fn flush_due(&mut self, now_ns: u64, flush_ns: u64) {
        if let Some(opened) = self.batch_opened_ns {
            if now_ns >= opened.saturating_add(flush_ns) {
                for t in self.batch.drain(..) {
                    self.table.insert(t.id, t);
                }
                self.batch_opened_ns = None;
            }
        }
    }
}

/// The in-memory model of a batching column-store server, and its own
/// client (`Arc<MemColumnServer>` is a [`ColumnClient`]).
///
/// Each insert asks, in order: whether the server is stalled (a planned
/// window in which it accepts connections and answers nothing: the insert
/// waits for the client's timeout); whether it is restarting (or the
/// `Crash` fault point restarts it now, for `restart_ms`): a refused
/// connection, 503; then `faults` (error, 503, hang until the
/// client's timeout, latency spike). The insert declares its duration with
/// `probe::blocking_wait`: taking the rows, plus the wait until the batch's
/// flush with `wait_for_ack`.
pub struct MemColumnServer {
    cfg: ServerConfig,
    clock: DynArc<dyn Clock>,
    faults: DynArc<dyn SinkFaults>,
    restarts: Restarts,
    stalls: Restarts,
    state: Mutex<ServerState>,
}

impl MemColumnServer {
    /// A server reading time from `clock`, with `faults` per insert.
    pub fn new(
        cfg: ServerConfig,
        clock: DynArc<dyn Clock>,
        faults: DynArc<dyn SinkFaults>,
    ) -> Self {
        MemColumnServer {
            cfg,
            clock,
            faults,
            restarts: Restarts::new(),
            stalls: Restarts::new(),
            state: Mutex::new(ServerState::default()),
        }
    }

    /// When the server is restarting (schedule restarts here).
    pub fn restarts(&self) -> &Restarts {
        &self.restarts
    }

    /// When the server is stalled: it accepts connections and answers
    /// nothing, so an insert started then waits for the client's timeout
    /// (schedule stalls here).
    pub fn stalls(&self) -> &Restarts {
        &self.stalls
    }

    /// Ids of every row taken (flushed or still in the batch).
    pub fn accepted_ids(&self) -> BTreeSet<u64> {
        self.state.with(|s| {
            let mut ids: BTreeSet<u64> = s.table.keys().copied().collect();
            ids.extend(s.batch.iter().map(|t| t.id));
            ids
        })
    }

    /// Ids of the rows flushed (queryable) by now.
    pub fn flushed_ids(&self) -> BTreeSet<u64> {
        let now = self.clock.now_ns();
        let flush_ns = self.cfg.flush_ms * NS_PER_MS;
        self.state.with(|s| {
            s.flush_due(now, flush_ns);
            s.table.keys().copied().collect()
        })
    }

    /// Takes `rows` at `at_ns`; returns when their batch is flushed.
    fn accept(&self, rows: &[Trace], at_ns: u64) -> u64 {
        let flush_ns = self.cfg.flush_ms * NS_PER_MS;
        self.state.with(|s| {
            s.flush_due(at_ns, flush_ns);
            s.batch.extend(rows.iter().cloned());
            let opened = *s.batch_opened_ns.get_or_insert(at_ns);
            opened.saturating_add(flush_ns)
        })
    }

    /// One insert starting at `now_ns`: its result and how long it takes.
    fn attempt(
        &self,
        rows: &[Trace],
        ack: bool,
        timeout_ms: u64,
        now_ns: u64,
    ) -> (Result<(), SinkErrorKind>, u64) {
        let ms = |m: u64| m.saturating_mul(NS_PER_MS);
        let refused = ms(self.cfg.refuse_ms);
        if self.stalls.is_down_at(now_ns) {
            return (Err(SinkErrorKind::Timeout), ms(timeout_ms));
        }
        if self
            .restarts
            .down_or_crashes(COLUMN_SITE, now_ns, self.cfg.restart_ms)
        {
            let unavailable = SinkErrorKind::Unavailable {
                retry_after_ms: None,
            };
            return (Err(unavailable), refused);
        }
        let mut took = 0;
        match self.faults.next_fault() {
            Some(SinkFault::Fail(kind)) => return (Err(kind), refused),
            Some(SinkFault::Hang(_)) => return (Err(SinkErrorKind::Timeout), ms(timeout_ms)),
            Some(SinkFault::Delay(d)) => took += u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            None => {}
        }
        took += ms(1 + probe::draw(self.cfg.insert_ms_max));
        let taken_at = now_ns.saturating_add(took);
        let flush_at = self.accept(rows, taken_at);
        if ack {
            took += flush_at.saturating_sub(taken_at);
        }
        (Ok(()), took)
    }
}

impl ColumnClient for MemColumnServer {
    fn insert(
        &self,
        rows: &[Trace],
        wait_for_ack: bool,
        timeout_ms: u64,
    ) -> Result<(), SinkErrorKind> {
        let (r, took_ns) = self.attempt(rows, wait_for_ack, timeout_ms, self.clock.now_ns());
        probe::blocking_wait(took_ns);
        r
    }
}
