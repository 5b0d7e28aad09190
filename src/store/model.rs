//! The store's reference model: operation sequences (append, retention at a
//! later time, query, restart, and an append racing a retention under a
//! given interleaving) run against a store and checked after every step
//! against what must survive. Shared by the proptest (`tests/store_proptest.rs`)
//! and the `store_ops` fuzz target; both must find the pre-fix loss and hold
//! on the fixed store.
//!
//! Parameters are clamped to small ranges (the `_MAX` constants), so any
//! input, however large its numbers, is a short, valid run.

use super::{missing_events, Event, MemBackend, SegmentBackend, StoreConfig, TieredStore, Variant};
use crate::clock::{Clock, ManualClock};
use crate::sched::{JoinError, Scheduler, TaskHandle};
use crate::sync::{block_on, Arc, DynArc};
use crate::BoxFuture;
use std::future::Future;
use std::task::{Context, Poll, Waker};

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;
/// The model's start: 2026-01-01T00:00:00Z.
pub const START_MS: u64 = 1_767_225_600_000;
/// How far back an appended event may be dated, days (exclusive).
pub const DAYS_BACK_MAX: u64 = 10;
/// Events per append at most.
pub const EVENTS_PER_APPEND_MAX: u64 = 3;
/// How far one retention moves time, hours (exclusive).
pub const ADVANCE_HOURS_MAX: u64 = 200;
/// Scheduling choices of one race at most (past them, the two alternate).
pub const RACE_SCHEDULE_MAX: usize = 16;
/// Operations of one sequence at most.
pub const OPS_MAX: usize = 64;
/// Polls of one race at most before it is judged stuck.
const RACE_POLLS_MAX: usize = 50_000_000;

/// One operation on the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// Append `n` events dated `days_back` days before now.
    Append {
        /// Days before now (modulo [`DAYS_BACK_MAX`]).
        days_back: u64,
        /// Events (1 ..= [`EVENTS_PER_APPEND_MAX`]).
        n: u64,
    },
    /// Move time forward and run retention.
    Retention {
        /// Hours forward (modulo [`ADVANCE_HOURS_MAX`]).
        advance_hours: u64,
    },
    /// Query (every step is checked anyway).
    Query,
    /// Reopen the store from its segments (a process restart).
    Restart,
    /// One append racing one retention; `schedule[i]` says whether poll `i`
    /// goes to the append (`true`) or the retention.
    Race {
        /// Days before now of the appended event (modulo 2).
        days_back: u64,
        /// Hours forward of the retention (modulo 48).
        advance_hours: u64,
        /// The interleaving (at most [`RACE_SCHEDULE_MAX`] used).
        schedule: Vec<bool>,
    },
}

/// A scheduler whose `yield_now` really yields (returns `Pending` once) and
/// whose blocking work runs inline, so an interleaving can be chosen by
/// polling futures in a given order.
struct PollScheduler;

impl Scheduler for PollScheduler {
    fn spawn(&self, _: &'static str, _: BoxFuture<()>) -> TaskHandle {
        unreachable!("the store never spawns")
    }
    fn spawn_blocking(
        &self,
        _: &'static str,
        work: Box<dyn FnOnce() + Send>,
    ) -> BoxFuture<Result<(), JoinError>> {
        work();
        Box::pin(async { Ok(()) })
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

/// What must survive: every acknowledged event not older than the cutoff.
struct Model {
    now_ms: u64,
    cutoff_ms: u64,
    acked: Vec<Event>,
    next_id: u64,
}

impl Model {
    fn events(&mut self, days_back: u64, n: u64) -> Vec<Event> {
        (0..n)
            .map(|_| {
                self.next_id += 1;
                Event {
                    id: self.next_id,
                    ts_ms: self.now_ms - days_back * DAY_MS,
                    key: "k".into(),
                    units: 1,
                }
            })
            .collect()
    }
}

/// Polls `a` and `b` in the order `schedule` gives (true = `a`), then
/// alternately until both are done.
///
/// # Errors
/// A message when either is still pending after a bounded number of polls.
fn interleave<A: Future, B: Future>(
    a: A,
    b: B,
    schedule: &[bool],
) -> Result<(A::Output, B::Output), String> {
    let (mut a, mut b) = (Box::pin(a), Box::pin(b));
    let (mut ra, mut rb) = (None, None);
    let mut cx = Context::from_waker(Waker::noop());
    let order = schedule
        .iter()
        .copied()
        .chain(std::iter::repeat([true, false]).flatten());
    // Past the schedule, real blocking work (DuckDB on threads) may still
    // be running: give it the CPU between polls. Bounded, not timed.
    for (i, pick_a) in order.take(RACE_POLLS_MAX).enumerate() {
        if i > schedule.len() {
            crate::sync::yield_thread();
        }
        if pick_a && ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(&mut cx) {
                ra = Some(v);
            }
        } else if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(&mut cx) {
                rb = Some(v);
            }
        }
        if let (Some(_), Some(_)) = (&ra, &rb) {
            break;
        }
    }
    match (ra, rb) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(format!(
            "a race was still pending after {RACE_POLLS_MAX} polls"
        )),
    }
}

/// Checks the store against the model.
fn check<B: SegmentBackend>(store: &TieredStore<B>, m: &Model) -> Result<(), String> {
    let found = block_on(store.query(0, u64::MAX)).map_err(|e| e.to_string())?;
    let lost = missing_events(&m.acked, &found, m.cutoff_ms);
    if !lost.is_empty() {
        return Err(format!("acknowledged events lost: {lost:?}"));
    }
    let mut ids: Vec<u64> = found.iter().map(|e| e.id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != found.len() {
        return Err("duplicated events".into());
    }
    if let Some(e) = found.iter().find(|e| !m.acked.contains(e)) {
        return Err(format!(
            "event {} appeared but was never acknowledged",
            e.id
        ));
    }
    store.check_writer_is_active()
}

/// Runs `ops` (at most [`OPS_MAX`]) against a store of `variant` over
/// `backend`, checking the model after every operation.
///
/// # Errors
/// The first violated property: a lost acknowledged event, a duplicate, an
/// event never acknowledged, a writer off the active segment, a store that
/// does not open or a race that never finishes.
pub fn run_ops<B: SegmentBackend>(
    backend: Arc<B>,
    variant: Variant,
    clock: &ManualClock,
    ops: &[StoreOp],
) -> Result<(), String> {
    let cfg = StoreConfig::new(variant);
    let open =
        |b: &Arc<B>| block_on(TieredStore::open(Arc::clone(b), cfg)).map_err(|e| e.to_string());
    let mut store = open(&backend)?;
    let mut m = Model {
        now_ms: START_MS,
        cutoff_ms: 0,
        acked: Vec::new(),
        next_id: 0,
    };
    for op in ops.iter().take(OPS_MAX) {
        match op {
            StoreOp::Append { days_back, n } => {
                let evs = m.events(days_back % DAYS_BACK_MAX, 1 + n % EVENTS_PER_APPEND_MAX);
                if block_on(store.append(evs.clone())).is_ok() {
                    m.acked.extend(evs);
                }
            }
            StoreOp::Retention { advance_hours } => {
                m.now_ms += advance_hours % ADVANCE_HOURS_MAX * HOUR_MS;
                clock.set(m.now_ms * 1_000_000);
                block_on(store.retention(m.now_ms)).map_err(|e| e.to_string())?;
                m.cutoff_ms = m.cutoff_ms.max(m.now_ms - cfg.retention_ms);
            }
            StoreOp::Query => {}
            StoreOp::Restart => store = open(&backend)?,
            StoreOp::Race {
                days_back,
                advance_hours,
                schedule,
            } => race(&store, &mut m, (*days_back, *advance_hours), schedule)?,
        }
        check(&store, &m)?;
    }
    Ok(())
}

fn race<B: SegmentBackend>(
    store: &TieredStore<B>,
    m: &mut Model,
    (days_back, advance_hours): (u64, u64),
    schedule: &[bool],
) -> Result<(), String> {
    let evs = m.events(days_back % 2, 1);
    let retention_at = m.now_ms + advance_hours % 48 * HOUR_MS;
    let schedule = &schedule[..schedule.len().min(RACE_SCHEDULE_MAX)];
    let (appended, retained) = interleave(
        store.append(evs.clone()),
        store.retention(retention_at),
        schedule,
    )?;
    retained.map_err(|e| e.to_string())?;
    m.now_ms = retention_at;
    m.cutoff_ms = m.cutoff_ms.max(m.now_ms - store.config().retention_ms);
    if appended.is_ok() {
        m.acked.extend(evs);
    }
    Ok(())
}

/// [`run_ops`] on a fresh in-memory backend.
///
/// # Errors
/// As [`run_ops`].
pub fn run_ops_in_memory(variant: Variant, ops: &[StoreOp]) -> Result<(), String> {
    let clock = ManualClock::new(START_MS * 1_000_000);
    let dyn_clock: DynArc<dyn Clock> = DynArc::new(clock.clone());
    let backend = Arc::new(MemBackend::new(dyn_clock, DynArc::new(PollScheduler)));
    run_ops(backend, variant, &clock, ops)
}
