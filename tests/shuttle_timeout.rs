//! shuttle checks of `timeout` over a `ManualClock` under the PCT and
//! random schedulers, next to its broken twin.
#![cfg(faultline_shuttle)]

mod support;

use faultline::clock::{Clock, ManualClock};
use faultline::sync::{timeout_flawed, Flaw, Notify};
use shuttle::future::{block_on, spawn, yield_now};
use shuttle::sync::Arc;
use std::time::Duration;
use support::{expect_child_failure, Iterations, Spurious};

const ITERATIONS: usize = 2_000;
const PCT_DEPTH: usize = 3;

fn check(name: &str, iters: &'static Iterations, model: impl Fn() + Send + Sync + Clone + 'static) {
    let m = model.clone();
    support::check_pct(support::counted(iters, m), ITERATIONS, PCT_DEPTH);
    support::check_random(support::counted(iters, model), ITERATIONS);
    iters.report("shuttle (pct + random)", name);
}

/// A 10 ms timeout on a future that a ticker wakes now and then but that
/// never completes, while time moves 4 ms at a time to 20 ms: the timeout
/// fires, and not before its deadline.
fn deadline(flaw: Flaw) -> impl Fn() + Send + Sync + Clone + 'static {
    move || {
        let clock = ManualClock::new(0);
        let notify = Arc::new(Notify::new());
        let t = timeout_flawed(
            &clock,
            Duration::from_millis(10),
            async {
                loop {
                    notify.notified().await;
                }
            },
            flaw,
        );
        let (c, n) = (clock.clone(), notify.clone());
        spawn(async move {
            for _ in 0..5 {
                yield_now().await;
                c.advance(Duration::from_millis(4));
                n.notify_one();
            }
        });
        let r = block_on(Spurious {
            fut: Box::pin(t),
            spurious: 2,
        });
        assert!(r.is_err(), "a future that never completes did");
        assert!(clock.now_ns() >= 10_000_000, "fired before its deadline");
    }
}

#[test]
fn timeout_fires_at_its_deadline() {
    static N: Iterations = Iterations::new();
    check("timeout with a ticker", &N, deadline(Flaw::None));
}

#[test]
#[ignore = "child of timeout_deadline_per_poll_is_caught"]
fn child_timeout_deadline_per_poll() {
    support::check_pct(deadline(Flaw::DeadlinePerPoll), ITERATIONS, PCT_DEPTH);
}

#[test]
fn timeout_deadline_per_poll_is_caught() {
    // Every tick re-arms the timer past the clock's last move.
    expect_child_failure("child_timeout_deadline_per_poll", "deadlock");
}
