//! The injectable world in default mode: clocks, schedulers, sinks, and the
//! RAII guarantees of Gate and Semaphore under a real tokio runtime.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::clock::{Clock, ManualClock, TokioClock};
use faultline::sched::{run_blocking, JoinError, Scheduler, ThreadScheduler, TokioScheduler};
use faultline::sink::{FaultySink, MemorySink, ScriptedFaults, Sink, SinkErrorKind, SinkFault};
use faultline::sync::{block_on, Arc, Flaw, Gate, Semaphore};
use std::time::Duration;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

#[test]
fn manual_clock_wakes_sleepers_only_when_due() {
    let clock = ManualClock::new(1_000);
    let mut sleep = clock.sleep(Duration::from_nanos(500));
    let mut task = tokio_test::task::spawn(async { (&mut sleep).await });
    assert!(task.poll().is_pending());
    clock.advance(Duration::from_nanos(499));
    assert!(task.poll().is_pending(), "woke 1 ns early");
    clock.advance(Duration::from_nanos(1));
    assert!(task.is_woken());
    assert!(task.poll().is_ready());
    assert_eq!(clock.sleepers(), 0);
}

#[test]
fn tokio_clock_follows_paused_time() {
    rt().block_on(async {
        let clock = TokioClock::new();
        let t0 = clock.now_ns();
        clock.sleep(Duration::from_secs(3600)).await;
        let slept = clock.now_ns() - t0;
        assert!(slept >= 3_600_000_000_000, "slept {slept} ns");
    });
}

#[test]
fn permit_returns_when_holder_panics() {
    let sem = Semaphore::new(1);
    let s2 = sem.clone();
    let r = rt().block_on(async move {
        TokioScheduler
            .spawn(
                "panicker",
                Box::pin(async move {
                    let _p = s2.acquire().await;
                    panic!("holder panics");
                }),
            )
            .await
    });
    assert_eq!(r, Err(JoinError::Panicked));
    assert_eq!(sem.available(), 1, "panic leaked the permit");
}

#[test]
fn permit_returns_when_holder_is_aborted() {
    let sem = Semaphore::new(1);
    let s2 = sem.clone();
    rt().block_on(async {
        let clock = TokioClock::new();
        let h = TokioScheduler.spawn(
            "holder",
            Box::pin(async move {
                let _p = s2.acquire().await;
                clock.sleep(Duration::from_secs(60)).await;
            }),
        );
        TokioScheduler.yield_now().await;
        assert_eq!(sem.available(), 0);
        h.abort();
        assert_eq!(h.await, Err(JoinError::Cancelled));
    });
    assert_eq!(sem.available(), 1, "abort leaked the permit");
}

#[test]
fn flawed_semaphore_leaks_on_drop() {
    // The twin of the two tests above: the check can fail.
    let sem = Semaphore::new_flawed(1, Flaw::DropLeaksPermit);
    drop(sem.try_acquire().unwrap());
    assert_eq!(sem.available(), 0);
    assert!(sem.try_acquire().is_err());
}

#[test]
fn try_acquire_reports_capacity() {
    let sem = Semaphore::new(2);
    let _a = sem.try_acquire().unwrap();
    let _b = sem.try_acquire().unwrap();
    let err = sem.try_acquire().unwrap_err();
    assert_eq!(err.permits_max, 2);
    assert_eq!(err.to_string(), "no permit free (all 2 in use)");
}

#[test]
fn gate_is_fifo_and_exclusive_on_threads() {
    let gate = Arc::new(Gate::new(Vec::new()));
    let first = block_on(gate.lock());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let g = Arc::clone(&gate);
            let h =
                ThreadScheduler.spawn("waiter", Box::pin(async move { g.lock().await.push(i) }));
            // Let thread i queue before thread i+1.
            while gate.waiters() <= i {
                std::thread::yield_now();
            }
            h
        })
        .collect();
    drop(first);
    for h in handles {
        block_on(h).unwrap();
    }
    assert_eq!(*block_on(gate.lock()), vec![0, 1, 2, 3], "not FIFO");
}

#[test]
fn run_blocking_returns_the_value() {
    let v = block_on(run_blocking(&ThreadScheduler, "sum", || {
        (1..=10).sum::<u32>()
    }));
    assert_eq!(v, Ok(55));
    let v = rt().block_on(run_blocking(&TokioScheduler, "sum", || 7u8));
    assert_eq!(v, Ok(7));
}

#[test]
fn faulty_sink_injects_and_hands_batches_back() {
    let mem = Arc::new(MemorySink::default());
    let clock = ManualClock::new(0);
    let faults = Arc::new(ScriptedFaults::new([
        Some(SinkFault::Fail(SinkErrorKind::Unavailable {
            retry_after_ms: Some(1000),
        })),
        None,
    ]));
    let sink = FaultySink::new(Arc::clone(&mem), Arc::new(clock), faults);
    let err = block_on(sink.write(vec![1, 2])).unwrap_err();
    assert_eq!(err.batch, vec![1, 2], "the failed batch is handed back");
    assert!(err.to_string().contains("unavailable"));
    block_on(sink.write(err.batch)).unwrap();
    assert_eq!(mem.written(), vec![1, 2]);
}

#[test]
fn faulty_sink_hang_times_out_on_the_clock() {
    let mem = Arc::new(MemorySink::<u8>::default());
    let clock = ManualClock::new(0);
    let faults = Arc::new(ScriptedFaults::new([Some(SinkFault::Hang(
        Duration::from_secs(5),
    ))]));
    let sink = FaultySink::new(mem, Arc::new(clock.clone()), faults);
    let mut write = tokio_test::task::spawn(sink.write(vec![9]));
    assert!(write.poll().is_pending());
    clock.advance(Duration::from_secs(5));
    match write.poll() {
        std::task::Poll::Ready(Err(e)) => assert_eq!(e.kind, SinkErrorKind::Timeout),
        other => panic!("expected a timeout, got {other:?}"),
    }
}
