//! loom model checks of `timeout` over a `ManualClock`, next to its broken
//! twin.
#![cfg(faultline_loom)]

mod support;

use faultline::clock::ManualClock;
use faultline::sync::{timeout_flawed, Elapsed, Flaw};
use loom::future::block_on;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use std::time::Duration;
use support::{expect_child_failure, Iterations, Spurious};

const MS: u64 = 1_000_000;

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b
}

/// A timeout of 10 ms on a future that never completes, polled spuriously
/// while the clock moves 6 ms twice after the timeout was created: it fires
/// once 12 ms have passed.
fn deadline(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let clock = ManualClock::new(0);
        let created = Arc::new(AtomicBool::new(false));
        let (c2, created2) = (clock.clone(), created.clone());
        let t = thread::spawn(move || {
            block_on(Spurious {
                fut: Box::pin(async move {
                    let never = std::future::pending::<()>();
                    let t = timeout_flawed(&c2, Duration::from_millis(10), never, flaw);
                    // The deadline is fixed now: the clock may move.
                    created2.store(true, Ordering::SeqCst);
                    t.await
                }),
                spurious: 1,
            })
        });
        while !created.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        clock.advance(Duration::from_millis(6));
        clock.advance(Duration::from_millis(6));
        let r = t.join().unwrap();
        assert!(r.is_err(), "a future that never completes did");
        if flaw == Flaw::None {
            assert_eq!(
                r,
                Err(Elapsed {
                    deadline_ns: 10 * MS
                })
            );
        }
    });
}

#[test]
fn timeout_fires_at_its_deadline() {
    static N: Iterations = Iterations::new();
    deadline(Flaw::None, &N);
    N.report("loom", "timeout fires at its deadline");
}

#[test]
#[ignore = "child of timeout_deadline_per_poll_is_caught"]
fn child_timeout_deadline_per_poll() {
    static N: Iterations = Iterations::new();
    deadline(Flaw::DeadlinePerPoll, &N);
}

#[test]
fn timeout_deadline_per_poll_is_caught() {
    // The re-armed timer is due after the last advance: nobody wakes it.
    expect_child_failure("child_timeout_deadline_per_poll", "deadlock");
}
