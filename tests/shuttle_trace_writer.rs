//! shuttle checks of the trace writer: concurrent writers, retries on a
//! manual clock, and a shutdown whose deadline falls while tasks are in
//! flight, under PCT and random schedules.
//!
//! Oracles: when shutdown returns, no task of the writer is left and no
//! sink write is in flight ("no task outlives the deadline"); no trace has
//! two fates (in particular none is both delivered and counted dropped);
//! the traces the sink holds are exactly the ones counted delivered; the
//! books balance. Twins: a shutdown that counts abandoned tasks from a
//! snapshot (a task that delivers in between is counted twice) and a
//! shutdown that does not wait for its cancelled tasks; both must be
//! caught.
#![cfg(faultline_shuttle)]

mod support;

use faultline::clock::ManualClock;
use faultline::retry::{Jitter, RetryPolicy};
use faultline::sched::ThreadScheduler;
use faultline::sink::{Sink, SinkError, SinkErrorKind};
use faultline::sync::{Arc, AtomicUsize, DynArc, Mutex, Ordering};
use faultline::trace_writer::{Fate, Flaw, Trace, TraceWriter, WriterConfig};
use faultline::BoxFuture;
use shuttle::future::{block_on, spawn, yield_now};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::{counted, expect_caught, Iterations};

const ITERATIONS: usize = 1_000;
const WRITERS: u64 = 2;
const TRACES_EACH: u64 = 2;
const DEADLINE_MS: u64 = 1_000;
const MS: u64 = 1_000_000;

/// Runs in which the deadline struck with tasks in flight (the report line
/// shows the race was exercised).
static ABANDONING_RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A sink that yields inside every write (so shutdown can strike mid
/// write), fails the first attempt of odd trace ids with a 503, and counts
/// its write futures alive.
#[derive(Clone, Default)]
struct ToySink {
    received: Arc<Mutex<BTreeSet<u64>>>,
    attempts: Arc<Mutex<BTreeMap<u64, u32>>>,
    writes_alive: Arc<AtomicUsize>,
}

struct Alive(Arc<AtomicUsize>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Sink<Trace> for ToySink {
    fn write(&self, batch: Vec<Trace>) -> BoxFuture<Result<(), SinkError<Trace>>> {
        let me = self.clone();
        me.writes_alive.fetch_add(1, Ordering::SeqCst);
        let alive = Alive(Arc::clone(&me.writes_alive));
        Box::pin(async move {
            let _alive = alive;
            yield_now().await;
            let id = batch[0].id;
            let n = me.attempts.with(|a| {
                let n = a.entry(id).or_insert(0);
                *n += 1;
                *n
            });
            if id % 2 == 1 && n == 1 {
                let kind = SinkErrorKind::Unavailable {
                    retry_after_ms: None,
                };
                return Err(SinkError { kind, batch });
            }
            me.received.with(|r| r.insert(id));
            Ok(())
        })
    }
}

fn trace(id: u64) -> Trace {
    Trace {
        id,
        at_ms: 0,
        name: "t".into(),
    }
}

/// Two writers of two traces each, a ticker moving the clock 4 x 500 ms,
/// and a shutdown with a 1 s deadline, all concurrent.
fn workload(flaw: Flaw) -> impl Fn() + Send + Sync + 'static {
    move || {
        let clock = ManualClock::new(0);
        let sink = ToySink::default();
        let cfg = WriterConfig {
            retry: RetryPolicy {
                initial_delay_ms: 1_000,
                delay_ms_max: 1_000,
                attempts_max: 2,
                jitter: Jitter::None,
            },
            record_fates: true,
            flaw,
            ..WriterConfig::default()
        };
        let writer = TraceWriter::new(
            cfg,
            DynArc::new(clock.clone()),
            DynArc::new(ThreadScheduler),
            sink.clone(),
        );
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let writer = writer.clone();
                spawn(async move {
                    for i in 0..TRACES_EACH {
                        let _ = writer.write(trace(w * TRACES_EACH + i)).await;
                        yield_now().await;
                    }
                })
            })
            .collect();
        let ticker = spawn(async move {
            for _ in 0..4 {
                yield_now().await;
                clock.advance(Duration::from_millis(500));
            }
        });
        let report = block_on(writer.shutdown(DEADLINE_MS * MS));
        if report.abandoned > 0 {
            ABANDONING_RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let left = writer.tasks_in_flight();
        let writing = sink.writes_alive.load(Ordering::SeqCst);
        assert!(
            left == 0 && writing == 0,
            "task outlived shutdown: {left} tasks, {writing} sink writes still in flight"
        );
        block_on(async {
            for w in writers {
                w.await.unwrap();
            }
            ticker.await.unwrap();
        });
        check_books(&writer, &sink);
    }
}

fn check_books(writer: &TraceWriter<ToySink>, sink: &ToySink) {
    if let Some(c) = writer.fate_conflicts().first() {
        panic!("a trace has two fates: {c}");
    }
    let fates = writer.fates();
    assert_eq!(
        fates.len() as u64,
        WRITERS * TRACES_EACH,
        "a write has no fate: {fates:?}"
    );
    let delivered: BTreeSet<u64> = fates
        .iter()
        .filter(|(_, f)| **f == Fate::Delivered)
        .map(|(id, _)| *id)
        .collect();
    let received = sink.received.with(|r| r.clone());
    assert_eq!(
        delivered, received,
        "delivered fates differ from what the sink holds"
    );
    let c = writer.counts();
    assert_eq!(c.imbalance(), 0, "books do not balance: {c:?}");
}

#[test]
fn fixed_writer_holds_under_pct_and_random() {
    static N: Iterations = Iterations::new();
    support::check_pct(counted(&N, workload(Flaw::None)), ITERATIONS, 3);
    support::check_random(counted(&N, workload(Flaw::None)), ITERATIONS);
    N.report(
        "shuttle (pct + random)",
        "trace writer fixed, 2 writers x 2 traces + shutdown",
    );
    let abandoning = ABANDONING_RUNS.load(std::sync::atomic::Ordering::Relaxed);
    println!("  of which {abandoning} hit the deadline with tasks in flight");
    assert!(
        abandoning > 0,
        "the deadline never struck with tasks in flight"
    );
}

#[test]
fn shutdown_counting_from_a_snapshot_is_caught() {
    static N: Iterations = Iterations::new();
    expect_caught(
        "shuttle pct",
        "trace writer abandons-from-snapshot",
        &N,
        "two fates",
        || {
            support::check_pct(
                counted(&N, workload(Flaw::AbandonsFromSnapshot)),
                ITERATIONS,
                3,
            )
        },
    );
}

#[test]
fn shutdown_without_join_is_caught() {
    static N: Iterations = Iterations::new();
    expect_caught(
        "shuttle random",
        "trace writer shutdown-skips-join",
        &N,
        "task outlived shutdown",
        || support::check_random(counted(&N, workload(Flaw::ShutdownSkipsJoin)), ITERATIONS),
    );
}
