//! One check per layer of the trace writer's fix (issue 14, item 9): for
//! each layer, the fixed writer with that one layer removed (the others
//! kept) is caught by a check of the layer's own property, and the fixed
//! writer passes the same check.
//!
//! | layer | property checked | twin |
//! |---|---|---|
//! | no lock | simultaneous writes complete in one write's time | `lock_across_write` |
//! | no ack wait | a write is delivered before the server's batch flush | `wait_for_ack` |
//! | insert in a worker thread | an insert never makes a timer late | `InsertOn::EventLoop` |
//! | socket timeout | no send holds a thread past the incident's 3 x 5 s | 60 s timeout |
//! | exact accounting | `delivered + dropped + refused == written` | `Flaw::ForgetsDropCount` |
//!
//! Every run is a simulation bounded in virtual time and polls, so a
//! regression fails instead of hanging.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::clock::{Clock, NS_PER_MS};
use faultline::sim::{Outcome, Sim, SimConfig, SimHandle};
use faultline::sink::{ScriptedFaults, SinkErrorKind, SinkFault};
use faultline::sync::{Arc, DynArc, Mutex};
use faultline::trace_writer::{
    ColumnConfig, ColumnSink, Flaw, InsertOn, MemColumnServer, ServerConfig, SocketConfig,
    SocketPeer, SocketSink, Trace, TraceWriter, Variant, WriterConfig,
};
use std::time::Duration;

/// Virtual time a layer check may take at most.
const RUN_MS_MAX: u64 = 600_000;
/// Polls a layer check may make at most.
const STEPS_MAX: u64 = 1_000_000;

fn trace(id: u64) -> Trace {
    Trace {
        id,
        at_ms: 0,
        name: "GET /".into(),
    }
}

/// Runs `main` in a bounded simulation; its verdict (or the run's
/// failure).
fn check(
    main: impl FnOnce(SimHandle) -> faultline::BoxFuture<Result<(), String>>,
) -> Result<(), String> {
    let sim = Sim::new(SimConfig {
        time_max_ns: RUN_MS_MAX * NS_PER_MS,
        steps_max: STEPS_MAX,
        ..Default::default()
    });
    let h = sim.main_handle();
    let verdict = Arc::new(Mutex::new(Err("the check did not finish".to_string())));
    let v = Arc::clone(&verdict);
    let fut = main(h);
    let out: Outcome = sim.run(async move {
        let r = fut.await;
        v.with(|slot| *slot = r);
    });
    if let Some(f) = out.failure {
        return Err(format!("the run failed: {f}"));
    }
    verdict.with(|v| v.clone())
}

/// What [`check`] says when the run itself failed or never finished the
/// check: not the layer's own property.
const NOT_THE_LAYER: [&str; 2] = ["the run failed", "the check did not finish"];

/// Runs the check on the fixed writer (must pass) and on the twin (must
/// be caught by the layer's own check, not by the run failing otherwise);
/// prints what the twin's check said.
fn fixed_passes_twin_caught(layer: &str, run: impl Fn(bool) -> Result<(), String>) {
    if let Err(e) = run(false) {
        panic!("{layer}: the fixed writer fails its own layer's check: {e}");
    }
    match run(true) {
        Ok(()) => panic!("{layer}: the twin without this layer was NOT caught"),
        Err(e) if NOT_THE_LAYER.iter().any(|n| e.starts_with(n)) => {
            panic!("{layer}: the twin failed, but not by this layer's check: {e}")
        }
        Err(e) => println!("{layer}: twin caught: {e}"),
    }
}

type Column = ColumnSink<Arc<MemColumnServer>>;

/// A model column store whose every insert first waits `delay_ms` (a
/// latency fault), then takes 1 ms; batches flush 1 s after their first
/// row.
fn column(h: SimHandle, cfg: ColumnConfig, delay_ms: u64) -> (Column, Arc<MemColumnServer>) {
    let delays = (0..1_000).map(|_| Some(SinkFault::Delay(Duration::from_millis(delay_ms))));
    let server_cfg = ServerConfig {
        insert_ms_max: 0,
        ..ServerConfig::default()
    };
    let server = Arc::new(MemColumnServer::new(
        server_cfg,
        DynArc::new(h),
        DynArc::new(ScriptedFaults::new(delays)),
    ));
    let s = Arc::clone(&server);
    (
        ColumnSink::new(cfg, DynArc::new(h), move || Ok(Arc::clone(&s))),
        server,
    )
}

/// Waits (in 1 ms steps, at most `within_ms`) until `n` traces are
/// delivered; returns how long it took, ms.
async fn delivered_after<S: faultline::sink::Sink<Trace> + 'static>(
    writer: &TraceWriter<S>,
    h: SimHandle,
    n: u64,
    within_ms: u64,
) -> Result<u64, String> {
    let start = h.now_ns();
    while writer.counts().delivered < n {
        if h.now_ns() - start > within_ms * NS_PER_MS {
            return Err(format!(
                "only {} of {n} delivered after {within_ms} ms",
                writer.counts().delivered
            ));
        }
        h.sleep(Duration::from_millis(1)).await;
    }
    Ok((h.now_ns() - start) / NS_PER_MS)
}

/// No lock: 8 writes made at once, each insert 100 ms, all land within two
/// inserts' time (no write waited for another).
fn no_lock(twin: bool) -> Result<(), String> {
    check(move |h| {
        Box::pin(async move {
            let wcfg = WriterConfig {
                lock_across_write: twin,
                ..WriterConfig::default()
            };
            let (sink, _) = column(h, ColumnConfig::default(), 100);
            let writer = TraceWriter::new(wcfg, DynArc::new(h), DynArc::new(h), sink);
            for id in 0..8 {
                writer.write(trace(id)).await.map_err(|e| e.to_string())?;
            }
            let took = delivered_after(&writer, h, 8, 10_000).await?;
            if took > 200 {
                return Err(format!(
                    "8 simultaneous writes of 100 ms took {took} ms: they waited for one another"
                ));
            }
            Ok(())
        })
    })
}

#[test]
fn layer_no_lock_writes_never_wait_for_one_another() {
    fixed_passes_twin_caught("no lock", no_lock);
}

/// No ack wait: a write is delivered well before the server flushes its
/// batch (1 s after the first row).
fn no_ack_wait(twin: bool) -> Result<(), String> {
    check(move |h| {
        Box::pin(async move {
            let ccfg = ColumnConfig {
                wait_for_ack: twin,
                ..ColumnConfig::default()
            };
            let (sink, server) = column(h, ccfg, 0);
            let writer = TraceWriter::new(
                WriterConfig::default(),
                DynArc::new(h),
                DynArc::new(h),
                sink,
            );
            writer.write(trace(1)).await.map_err(|e| e.to_string())?;
            let took = delivered_after(&writer, h, 1, 10_000).await?;
            let flushed = server.flushed_ids();
            if took >= 500 || flushed.contains(&1) {
                return Err(format!(
                    "the write returned after {took} ms, when its batch was flushed ({flushed:?}): it waited for the ack"
                ));
            }
            Ok(())
        })
    })
}

#[test]
fn layer_no_ack_wait_a_write_returns_before_the_flush() {
    fixed_passes_twin_caught("no ack wait", no_ack_wait);
}

/// Insert in a worker thread: while an insert takes 200 ms, a timer due
/// 100 ms after the write fires on time.
fn insert_off_the_loop(twin: bool) -> Result<(), String> {
    check(move |h| {
        Box::pin(async move {
            let ccfg = ColumnConfig {
                insert_on: if twin {
                    InsertOn::EventLoop
                } else {
                    InsertOn::BlockingPool
                },
                ..ColumnConfig::default()
            };
            let (sink, _) = column(h, ccfg, 200);
            let writer = TraceWriter::new(
                WriterConfig::default(),
                DynArc::new(h),
                DynArc::new(h),
                sink,
            );
            let due = h.now_ns() + 100 * NS_PER_MS;
            writer.write(trace(1)).await.map_err(|e| e.to_string())?;
            h.sleep_until(due).await;
            let late_ms = (h.now_ns() - due) / NS_PER_MS;
            delivered_after(&writer, h, 1, 10_000).await?;
            if late_ms > 1 {
                return Err(format!(
                    "a timer fired {late_ms} ms late while an insert ran: the insert blocked the event loop"
                ));
            }
            Ok(())
        })
    })
}

#[test]
fn layer_insert_in_a_worker_thread_never_blocks_the_loop() {
    fixed_passes_twin_caught("insert in a worker thread", insert_off_the_loop);
}

/// The incident's budget of thread time per trace: 3 attempts x 5 s.
const INCIDENT_THREAD_BUDGET_MS: u64 = 3 * 5_000;

/// Socket timeout: while the peer restarts for 5 minutes, no send holds
/// its thread longer than the incident's 3 x 5 s.
fn socket_timeout(twin: bool) -> Result<(), String> {
    check(move |h| {
        Box::pin(async move {
            let scfg = SocketConfig {
                timeout_ms: if twin { 60_000 } else { 5_000 },
                ..SocketConfig::default()
            };
            let peer = Arc::new(SocketPeer::new(
                DynArc::new(h),
                DynArc::new(ScriptedFaults::new(Vec::new())),
                0,
                1,
            ));
            peer.restarts().schedule(h.now_ns(), 300_000 * NS_PER_MS);
            let sink = SocketSink::new(scfg, DynArc::new(h), Arc::clone(&peer));
            let writer = TraceWriter::new(
                WriterConfig::default(),
                DynArc::new(h),
                DynArc::new(h),
                sink,
            );
            for id in 0..10 {
                writer.write(trace(id)).await.map_err(|e| e.to_string())?;
            }
            writer.shutdown(h.now_ns() + 400_000 * NS_PER_MS).await;
            let held = writer.sink().map_or(0, |s| s.stats().thread_ms_max);
            if held > INCIDENT_THREAD_BUDGET_MS {
                return Err(format!(
                    "a send held its thread {held} ms (the incident's budget: 3 x 5 s = {INCIDENT_THREAD_BUDGET_MS} ms)"
                ));
            }
            Ok(())
        })
    })
}

#[test]
fn layer_socket_timeout_no_send_holds_a_thread_past_the_incidents_budget() {
    fixed_passes_twin_caught("socket timeout", socket_timeout);
}

/// Exact accounting: every write to a store that refuses everything (503)
/// ends delivered, dropped or refused, and the books balance.
fn accounting(twin: bool) -> Result<(), String> {
    check(move |h| {
        Box::pin(async move {
            let wcfg = WriterConfig {
                flaw: if twin {
                    Flaw::ForgetsDropCount
                } else {
                    Flaw::None
                },
                ..WriterConfig::default()
            };
            let refusing = (0..1_000).map(|_| {
                Some(SinkFault::Fail(SinkErrorKind::Unavailable {
                    retry_after_ms: None,
                }))
            });
            let server = Arc::new(MemColumnServer::new(
                ServerConfig::default(),
                DynArc::new(h),
                DynArc::new(ScriptedFaults::new(refusing)),
            ));
            let s = Arc::clone(&server);
            let sink = ColumnSink::new(ColumnConfig::default(), DynArc::new(h), move || {
                Ok(Arc::clone(&s))
            });
            let writer = TraceWriter::new(wcfg, DynArc::new(h), DynArc::new(h), sink);
            for id in 0..20 {
                writer.write(trace(id)).await.map_err(|e| e.to_string())?;
            }
            writer.shutdown(h.now_ns() + 60_000 * NS_PER_MS).await;
            let c = writer.counts();
            if c.imbalance() != 0 || c.in_flight != 0 {
                return Err(format!(
                    "written {} != delivered {} + dropped {} + refused {} ({} in flight)",
                    c.written,
                    c.delivered,
                    c.dropped(),
                    c.refused(),
                    c.in_flight
                ));
            }
            Ok(())
        })
    })
}

#[test]
fn layer_accounting_every_write_is_settled_exactly_once() {
    fixed_passes_twin_caught("exact accounting", accounting);
}

#[test]
fn the_incident_fix_keeps_every_layer_of_the_writer_but_the_socket_sinks_wait() {
    // The incident's fix is the fixed writer without the task cap, and the
    // pre-fix socket sink with only the timeout changed.
    let (w, f) = (Variant::IncidentFix.writer(), Variant::Fixed.writer());
    assert_eq!(
        WriterConfig {
            tasks_max: f.tasks_max,
            ..w
        },
        f
    );
    assert_eq!(w.tasks_max, None);
    assert_eq!(Variant::IncidentFix.column(), Variant::Fixed.column());
    let (s, p) = (Variant::IncidentFix.socket(), Variant::PreFix.socket());
    assert_eq!((s.timeout_ms, p.timeout_ms), (5_000, 60_000));
    assert_eq!(
        SocketConfig {
            timeout_ms: 60_000,
            ..s
        },
        p
    );
    // Pre-fix, the insert was already in the pool (asyncio.to_thread).
    assert_eq!(Variant::PreFix.column().insert_on, InsertOn::BlockingPool);
    assert!(Variant::PreFix.column().wait_for_ack);
}
