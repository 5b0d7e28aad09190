//! shuttle checks of `Gate` with more tasks than loom can afford, under the
//! PCT and random schedulers, each next to its broken twin.
//!
//! Run with `RUSTFLAGS="--cfg faultline_shuttle" cargo test --release
//! --no-default-features --test 'shuttle_*'` (the README's test command does).
#![cfg(faultline_shuttle)]

mod support;

use faultline::sync::{Flaw, Gate};
use shuttle::future::{block_on, spawn, yield_now};
use shuttle::sync::atomic::{AtomicUsize, Ordering};
use shuttle::sync::Arc;
use support::{expect_child_failure, poll_once, Iterations, Spurious};

const ITERATIONS: usize = 2_000;
const PCT_DEPTH: usize = 3;

/// Runs `model` under PCT and then the random scheduler.
fn check(name: &str, iters: &'static Iterations, model: impl Fn() + Send + Sync + Clone + 'static) {
    let m = model.clone();
    support::check_pct(
        move || {
            iters.tick();
            m()
        },
        ITERATIONS,
        PCT_DEPTH,
    );
    support::check_random(
        move || {
            iters.tick();
            model()
        },
        ITERATIONS,
    );
    iters.report("shuttle (pct + random)", name);
}

/// Four tasks take the gate twice each; holders never exceed one.
fn mutual_exclusion(flaw: Flaw) -> impl Fn() + Send + Sync + Clone + 'static {
    move || {
        let gate = Arc::new(Gate::new_flawed((), flaw));
        let holders = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (gate, holders) = (gate.clone(), holders.clone());
                spawn(async move {
                    for _ in 0..2 {
                        let _g = gate.lock().await;
                        let before = holders.fetch_add(1, Ordering::SeqCst);
                        assert_eq!(before, 0, "mutual exclusion violated");
                        yield_now().await;
                        holders.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        block_on(async {
            for t in tasks {
                t.await.unwrap();
            }
        });
    }
}

#[test]
fn gate_mutual_exclusion() {
    static N: Iterations = Iterations::new();
    check(
        "gate mutual exclusion, 4 tasks",
        &N,
        mutual_exclusion(Flaw::None),
    );
}

#[test]
#[should_panic(expected = "mutual exclusion violated")]
fn gate_check_then_take_is_caught() {
    support::check_pct(mutual_exclusion(Flaw::CheckThenTake), ITERATIONS, PCT_DEPTH);
}

/// Four tasks, each polled spuriously a few times while waiting; every task
/// finishes and the gate ends free.
fn spurious(flaw: Flaw) -> impl Fn() + Send + Sync + Clone + 'static {
    move || {
        let gate = Arc::new(Gate::new_flawed(0usize, flaw));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let gate = gate.clone();
                spawn(Spurious {
                    fut: Box::pin(async move {
                        let mut g = gate.lock().await;
                        yield_now().await;
                        *g += 1;
                    }),
                    spurious: 3,
                })
            })
            .collect();
        block_on(async {
            for t in tasks {
                t.await.unwrap();
            }
        });
        let g = gate.try_lock();
        assert!(g.is_some(), "gate lost after spurious polls");
        assert_eq!(g.map(|g| *g), Some(4));
    }
}

#[test]
fn gate_spurious_polls() {
    static N: Iterations = Iterations::new();
    check("gate spurious polls, 4 tasks", &N, spurious(Flaw::None));
}

#[test]
#[ignore = "child of gate_waker_per_poll_is_caught"]
fn child_gate_waker_per_poll() {
    support::check_pct(spurious(Flaw::WakerPerPoll), ITERATIONS, PCT_DEPTH);
}

#[test]
fn gate_waker_per_poll_is_caught() {
    // The stale duplicate swallows a hand-off: the next waiter sleeps forever.
    expect_child_failure("child_gate_waker_per_poll", "deadlock");
}

/// Three tasks wait; two of them give up (drop lock()) after one poll.
fn cancel(flaw: Flaw) -> impl Fn() + Send + Sync + Clone + 'static {
    move || {
        let gate = Arc::new(Gate::new_flawed((), flaw));
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let gate = gate.clone();
                spawn(async move {
                    if i == 0 {
                        let _g = gate.lock().await;
                        yield_now().await;
                    } else {
                        let mut lock = Box::pin(gate.lock());
                        let _ = poll_once(&mut lock);
                        yield_now().await;
                        drop(lock);
                    }
                })
            })
            .collect();
        block_on(async {
            for t in tasks {
                t.await.unwrap();
            }
        });
        assert!(gate.try_lock().is_some(), "gate lost by a cancelled lock()");
    }
}

#[test]
fn gate_cancel() {
    static N: Iterations = Iterations::new();
    check("gate cancelled waiters, 3 tasks", &N, cancel(Flaw::None));
}

#[test]
#[should_panic(expected = "gate lost by a cancelled lock()")]
fn gate_cancel_loses_handoff_is_caught() {
    support::check_pct(cancel(Flaw::CancelLosesHandoff), ITERATIONS, PCT_DEPTH);
}

#[test]
#[ignore = "child of gate_lost_wakeup_is_caught"]
fn child_gate_lost_wakeup() {
    support::check_random(mutual_exclusion(Flaw::LostWakeup), ITERATIONS);
}

#[test]
fn gate_lost_wakeup_is_caught() {
    expect_child_failure("child_gate_lost_wakeup", "deadlock");
}
