//! loom model checks of `Gate`, each next to its broken twin.
//!
//! Run with `RUSTFLAGS="--cfg faultline_loom" cargo test --release
//! --no-default-features --test 'loom_*'` (the README's test command does).
#![cfg(faultline_loom)]

mod support;

use faultline::sync::{Flaw, Gate};
use loom::future::block_on;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use support::{expect_child_failure, poll_once, Iterations, Spurious};

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b
}

/// Two spawned threads and the main thread each take the gate once; a holder count
/// above one is a mutual-exclusion violation.
fn mutual_exclusion(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let gate = Arc::new(Gate::new_flawed((), flaw));
        let holders = Arc::new(AtomicUsize::new(0));
        let violated = Arc::new(AtomicBool::new(false));
        let enter = {
            let (gate, holders, violated) = (gate.clone(), holders.clone(), violated.clone());
            move || {
                block_on(async {
                    let _guard = gate.lock().await;
                    if holders.fetch_add(1, Ordering::SeqCst) != 0 {
                        violated.store(true, Ordering::SeqCst);
                    }
                    thread::yield_now();
                    holders.fetch_sub(1, Ordering::SeqCst);
                })
            }
        };
        let t1 = thread::spawn(enter.clone());
        let t2 = thread::spawn(enter.clone());
        enter();
        t1.join().unwrap();
        t2.join().unwrap();
        assert!(
            !violated.load(Ordering::SeqCst),
            "mutual exclusion violated"
        );
    });
}

#[test]
fn gate_mutual_exclusion() {
    static N: Iterations = Iterations::new();
    mutual_exclusion(Flaw::None, &N);
    N.report("loom", "gate mutual exclusion");
}

#[test]
#[should_panic(expected = "mutual exclusion violated")]
fn gate_check_then_take_is_caught() {
    static N: Iterations = Iterations::new();
    mutual_exclusion(Flaw::CheckThenTake, &N);
}

/// Three threads contend; every release while others wait: the waiter must be woken
/// must wake one of them (else loom reports a deadlock).
fn wake_up(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let gate = Arc::new(Gate::new_flawed(0u32, flaw));
        let spawn_one = || {
            let g = gate.clone();
            thread::spawn(move || block_on(async { *g.lock().await += 1 }))
        };
        let (t1, t2) = (spawn_one(), spawn_one());
        block_on(async { *gate.lock().await += 1 });
        t1.join().unwrap();
        t2.join().unwrap();
        assert_eq!(*block_on(gate.lock()), 3);
    });
}

#[test]
fn gate_no_lost_wakeup() {
    static N: Iterations = Iterations::new();
    wake_up(Flaw::None, &N);
    N.report("loom", "gate no lost wake-up");
}

#[test]
#[ignore = "child of gate_lost_wakeup_is_caught"]
fn child_gate_lost_wakeup() {
    static N: Iterations = Iterations::new();
    wake_up(Flaw::LostWakeup, &N);
}

#[test]
fn gate_lost_wakeup_is_caught() {
    expect_child_failure("child_gate_lost_wakeup", "deadlock");
}

/// A waiter is polled spuriously, then served; afterwards the gate must be
/// free again (a stale duplicate registration would swallow the hand-off).
fn spurious_poll(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let gate = Arc::new(Gate::new_flawed((), flaw));
        let g2 = gate.clone();
        let t = thread::spawn(move || {
            block_on(Spurious {
                fut: Box::pin(async move { drop(g2.lock().await) }),
                spurious: 1,
            })
        });
        block_on(async { drop(gate.lock().await) });
        t.join().unwrap();
        assert!(gate.try_lock().is_some(), "gate lost after a spurious poll");
    });
}

#[test]
fn gate_spurious_poll() {
    static N: Iterations = Iterations::new();
    spurious_poll(Flaw::None, &N);
    N.report("loom", "gate spurious poll");
}

#[test]
#[should_panic(expected = "gate lost after a spurious poll")]
fn gate_waker_per_poll_is_caught() {
    static N: Iterations = Iterations::new();
    spurious_poll(Flaw::WakerPerPoll, &N);
}

/// A queued lock() is cancelled (dropped) at any point relative to the
/// holder's release: the gate must end up free.
fn cancel(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let gate = Arc::new(Gate::new_flawed((), flaw));
        let guard = gate.try_lock().expect("fresh gate is free");
        let g2 = gate.clone();
        let t = thread::spawn(move || {
            let mut lock = Box::pin(g2.lock());
            let _ = poll_once(&mut lock);
            thread::yield_now();
            drop(lock);
        });
        drop(guard);
        t.join().unwrap();
        assert!(gate.try_lock().is_some(), "gate lost by a cancelled lock()");
    });
}

#[test]
fn gate_cancel_hands_on() {
    static N: Iterations = Iterations::new();
    cancel(Flaw::None, &N);
    N.report("loom", "gate cancelled waiter");
}

#[test]
#[should_panic(expected = "gate lost by a cancelled lock()")]
fn gate_cancel_loses_handoff_is_caught() {
    static N: Iterations = Iterations::new();
    cancel(Flaw::CancelLosesHandoff, &N);
}
