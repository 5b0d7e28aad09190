//! The trace writer's futures on the real tokio-backed world
//! (`TokioScheduler`, `TokioClock`) with paused time, polled by hand with
//! `tokio_test::task::spawn`: `write` is ready on its first poll while the
//! sink is slow; `shutdown` stays pending while tasks drain and is ready
//! when they have, or at its deadline once the rest are cancelled and have
//! ended. Each check also runs on the pre-fix writer or a flawed twin and
//! must tell it apart.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::clock::{Clock, TokioClock};
use faultline::sched::TokioScheduler;
use faultline::sink::{FaultySink, MemorySink, ScriptedFaults, SinkFault};
use faultline::sync::{Arc, DynArc};
use faultline::trace_writer::{
    Accepted, Flaw, RefuseReason, ShutdownReport, Trace, TraceWriter, WriterConfig,
};
use std::time::Duration;
use tokio_test::{assert_pending, assert_ready, task};

type Slow = FaultySink<MemorySink<Trace>>;

fn trace(id: u64) -> Trace {
    Trace {
        id,
        at_ms: 0,
        name: "GET /".into(),
    }
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

/// A writer whose every sink write takes `delay` (an async wait on the
/// clock), and the memory behind the sink.
fn slow_writer(cfg: WriterConfig, delay: Duration) -> (TraceWriter<Slow>, Arc<MemorySink<Trace>>) {
    let clock = TokioClock::new();
    let mem = Arc::new(MemorySink::default());
    let faults = ScriptedFaults::new(std::iter::repeat_n(Some(SinkFault::Delay(delay)), 100));
    let sink = FaultySink::new(
        Arc::clone(&mem),
        DynArc::new(clock.clone()),
        DynArc::new(faults),
    );
    let writer = TraceWriter::new(cfg, DynArc::new(clock), DynArc::new(TokioScheduler), sink);
    (writer, mem)
}

/// Lets the runtime run the background tasks for `d` of paused time.
async fn run_for(d: Duration) {
    tokio::time::sleep(d).await;
}

/// Three writes against a sink that takes 1 s each: how many traces are
/// delivered 1.1 s later. Every write must be ready on its first poll.
fn delivered_after_one_write_time(cfg: WriterConfig) -> usize {
    paused_runtime().block_on(async move {
        let (writer, mem) = slow_writer(cfg, Duration::from_secs(1));
        for id in 0..3 {
            let mut w = task::spawn(writer.write(trace(id)));
            assert_eq!(assert_ready!(w.poll()), Ok(Accepted::Spawned));
        }
        assert_eq!(writer.tasks_in_flight(), 3);
        assert!(mem.written().is_empty(), "a write waited for the sink");
        run_for(Duration::from_millis(1_100)).await;
        mem.written().len()
    })
}

#[test]
fn fixed_write_returns_at_once_and_the_tasks_write_concurrently() {
    assert_eq!(delivered_after_one_write_time(WriterConfig::default()), 3);
}

#[test]
fn pre_fix_gate_serializes_the_background_writes() {
    // Pre-fix, `write` returns at once too; the bug is behind it: the gate
    // held across each sink write lets one trace through per write time.
    let delivered = delivered_after_one_write_time(WriterConfig::pre_fix());
    assert_eq!(
        delivered, 1,
        "pre-fix should deliver one trace per write time"
    );
}

/// Three writes with a 2 s sink, then shutdown with a 5 s deadline: the
/// report, and whether a write after shutdown was refused with its trace.
fn drain(cfg: WriterConfig) -> ShutdownReport {
    paused_runtime().block_on(async move {
        let (writer, mem) = slow_writer(cfg, Duration::from_secs(2));
        for id in 0..3 {
            assert_ready!(task::spawn(writer.write(trace(id))).poll()).unwrap();
        }
        let deadline = TokioClock::new().now_ns() + 5_000_000_000;
        let mut shutdown = task::spawn(writer.shutdown(deadline));
        assert_pending!(shutdown.poll());
        let refused = assert_ready!(task::spawn(writer.write(trace(9))).poll()).unwrap_err();
        assert_eq!(refused.reason, RefuseReason::ShuttingDown);
        assert_eq!(refused.trace, trace(9), "the refused trace is handed back");
        let mut report = None;
        for _ in 0..10 {
            run_for(Duration::from_millis(600)).await;
            if let std::task::Poll::Ready(r) = shutdown.poll() {
                report = Some(r);
                break;
            }
        }
        let report = report.expect("shutdown did not return by its deadline");
        // A second shutdown finds nothing left; its report counts its own
        // run only, not what the first one abandoned.
        let again = assert_ready!(task::spawn(writer.shutdown(TokioClock::new().now_ns())).poll());
        assert_eq!(
            (again.in_flight, again.drained, again.abandoned),
            (0, 0, 0),
            "a second shutdown: {again:?}"
        );
        let c = writer.counts();
        assert_eq!(c.in_flight, 0);
        assert_eq!(c.imbalance(), 0, "{c:?}");
        assert_eq!(c.delivered as usize, mem.written().len());
        report
    })
}

#[test]
fn fixed_shutdown_waits_for_the_drain_and_refuses_later_writes() {
    let r = drain(WriterConfig::default());
    assert_eq!((r.in_flight, r.drained, r.abandoned), (3, 3, 0), "{r:?}");
}

#[test]
fn pre_fix_shutdown_cannot_drain_serialized_writes_in_time() {
    let r = drain(WriterConfig::pre_fix());
    assert_eq!((r.in_flight, r.drained, r.abandoned), (3, 2, 1), "{r:?}");
}

/// Three writes with a 10 s sink, shutdown with a 5 s deadline: pending
/// until the deadline, then ready; returns the report and the tasks still
/// in flight at the moment shutdown was ready.
fn abandon(flaw: Flaw) -> (ShutdownReport, u64) {
    paused_runtime().block_on(async move {
        let cfg = WriterConfig {
            flaw,
            ..WriterConfig::default()
        };
        let (writer, mem) = slow_writer(cfg, Duration::from_secs(10));
        for id in 0..3 {
            assert_ready!(task::spawn(writer.write(trace(id))).poll()).unwrap();
        }
        let deadline = TokioClock::new().now_ns() + 5_000_000_000;
        let mut shutdown = task::spawn(writer.shutdown(deadline));
        assert_pending!(shutdown.poll());
        run_for(Duration::from_millis(4_900)).await;
        assert_pending!(shutdown.poll());
        // tokio's timers have 1 ms granularity: give the deadline 2 ms.
        run_for(Duration::from_millis(102)).await;
        assert!(shutdown.is_woken(), "the deadline wakes shutdown");
        let ready = loop {
            if let std::task::Poll::Ready(r) = shutdown.poll() {
                break r;
            }
            tokio::task::yield_now().await;
        };
        let in_flight = writer.tasks_in_flight();
        run_for(Duration::from_secs(10)).await;
        assert!(mem.written().is_empty(), "an abandoned write went through");
        (ready, in_flight)
    })
}

#[test]
fn fixed_shutdown_cancels_at_the_deadline_and_no_task_outlives_it() {
    let (r, in_flight) = abandon(Flaw::None);
    assert_eq!((r.drained, r.abandoned), (0, 3), "{r:?}");
    assert_eq!(in_flight, 0, "tasks outlived shutdown");
}

#[test]
fn a_shutdown_that_does_not_join_is_caught() {
    let (_, in_flight) = abandon(Flaw::ShutdownSkipsJoin);
    assert_eq!(
        in_flight, 3,
        "the flawed shutdown should return with its tasks still running"
    );
    println!("caught: shutdown without join returned with {in_flight} tasks in flight");
}

/// The task cap: with `tasks_max` tasks in flight the next write is refused
/// at once, reason `Full` naming the cap, its trace handed back; the
/// pre-fix writer has no cap at all (it accepts past the fixed default).
#[test]
fn a_full_writer_refuses_with_its_cap_and_the_pre_fix_has_none() {
    paused_runtime().block_on(async {
        let cfg = WriterConfig {
            tasks_max: Some(2),
            ..WriterConfig::default()
        };
        let (writer, _mem) = slow_writer(cfg, Duration::from_secs(1));
        for id in 0..2 {
            let mut w = task::spawn(writer.write(trace(id)));
            assert_eq!(assert_ready!(w.poll()), Ok(Accepted::Spawned));
        }
        let refused = assert_ready!(task::spawn(writer.write(trace(2))).poll()).unwrap_err();
        assert_eq!(refused.reason, RefuseReason::Full { tasks_max: 2 });
        assert_eq!(refused.trace, trace(2), "the refused trace is handed back");
    });
    paused_runtime().block_on(async {
        let (writer, _mem) = slow_writer(WriterConfig::pre_fix(), Duration::from_secs(1));
        let past_default_cap = WriterConfig::default().tasks_max.expect("a cap") as u64 + 1;
        for id in 0..past_default_cap {
            let mut w = task::spawn(writer.write(trace(id)));
            assert_eq!(
                assert_ready!(w.poll()),
                Ok(Accepted::Spawned),
                "the pre-fix writer refused write {id}"
            );
        }
        assert_eq!(writer.tasks_in_flight(), past_default_cap);
    });
}
