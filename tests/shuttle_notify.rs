//! shuttle checks of `Notify` under the PCT and random schedulers, each
//! next to its broken twin.
#![cfg(faultline_shuttle)]

mod support;

use faultline::sync::{Flaw, Mutex, Notify};
use shuttle::future::{block_on, spawn, yield_now};
use shuttle::sync::Arc;
use support::{expect_child_failure, poll_once, Iterations, Spurious};

const ITERATIONS: usize = 2_000;
const PCT_DEPTH: usize = 3;
const ITEMS: u32 = 3;

fn check(name: &str, iters: &'static Iterations, model: impl Fn() + Send + Sync + Clone + 'static) {
    let m = model.clone();
    support::check_pct(support::counted(iters, m), ITERATIONS, PCT_DEPTH);
    support::check_random(support::counted(iters, model), ITERATIONS);
    iters.report("shuttle (pct + random)", name);
}

/// A producer adds items and calls `notify_one`; a consumer (polled
/// spuriously) takes every item there is, yields, then waits; an impatient
/// task waits and gives up twice. The consumer sees every item.
fn handoff(flaw: Flaw) -> impl Fn() + Send + Sync + Clone + 'static {
    move || {
        let notify = Arc::new(Notify::new_flawed(flaw));
        let items = Arc::new(Mutex::new(0u32));
        let (n, it) = (notify.clone(), items.clone());
        spawn(async move {
            for _ in 0..ITEMS {
                yield_now().await;
                it.with(|i| *i += 1);
                n.notify_one();
            }
        });
        let n = notify.clone();
        spawn(async move {
            for _ in 0..2 {
                let mut wait = Box::pin(n.notified());
                if poll_once(&mut wait).is_ready() {
                    n.notify_one(); // took the consumer's: hand it over
                    continue;
                }
                yield_now().await;
                drop(wait);
            }
        });
        block_on(Spurious {
            fut: Box::pin(async move {
                let mut got = 0;
                while got < ITEMS {
                    let taken = items.with(std::mem::take);
                    if taken > 0 {
                        got += taken;
                        continue;
                    }
                    yield_now().await;
                    notify.notified().await;
                }
            }),
            spurious: 3,
        });
    }
}

#[test]
fn notify_handoff() {
    static N: Iterations = Iterations::new();
    check(
        "notify, producer, consumer and an impatient waiter",
        &N,
        handoff(Flaw::None),
    );
}

#[test]
#[ignore = "child of notify_lost_wakeup_is_caught"]
fn child_notify_lost_wakeup() {
    support::check_pct(handoff(Flaw::LostWakeup), ITERATIONS, PCT_DEPTH);
}

#[test]
fn notify_lost_wakeup_is_caught() {
    expect_child_failure("child_notify_lost_wakeup", "deadlock");
}

#[test]
#[ignore = "child of notify_waker_per_poll_is_caught"]
fn child_notify_waker_per_poll() {
    support::check_pct(handoff(Flaw::WakerPerPoll), ITERATIONS, PCT_DEPTH);
}

#[test]
fn notify_waker_per_poll_is_caught() {
    expect_child_failure("child_notify_waker_per_poll", "deadlock");
}

#[test]
#[ignore = "child of notify_cancel_loses_handoff_is_caught"]
fn child_notify_cancel_loses_handoff() {
    support::check_pct(handoff(Flaw::CancelLosesHandoff), ITERATIONS, PCT_DEPTH);
}

#[test]
fn notify_cancel_loses_handoff_is_caught() {
    expect_child_failure("child_notify_cancel_loses_handoff", "deadlock");
}

/// `notify_waiters` wakes three waiters that exist before it (created, or
/// queued); a `Notified` created after it is not woken by it.
#[test]
fn notify_waiters_wakes_everyone_waiting() {
    static N: Iterations = Iterations::new();
    check("notify_waiters, 3 waiters", &N, || {
        let notify = Arc::new(Notify::new());
        let ready = Arc::new(shuttle::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let (n, r) = (notify.clone(), ready.clone());
                spawn(async move {
                    let wait = n.notified();
                    r.fetch_add(1, shuttle::sync::atomic::Ordering::SeqCst);
                    wait.await;
                })
            })
            .collect();
        block_on(async move {
            while ready.load(shuttle::sync::atomic::Ordering::SeqCst) < 3 {
                yield_now().await;
            }
            notify.notify_waiters();
            for t in tasks {
                t.await.unwrap();
            }
            let mut late = Box::pin(notify.notified());
            assert!(
                poll_once(&mut late).is_pending(),
                "notify_waiters stored a permit"
            );
        });
    });
}
