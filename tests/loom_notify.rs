//! loom model checks of `Notify`, each next to its broken twin.
#![cfg(faultline_loom)]

mod support;

use faultline::sync::{Flaw, Notify};
use loom::future::block_on;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use support::{expect_child_failure, poll_once, Iterations, Spurious};

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b
}

/// `notify_one` before or after the waiter parks: the waiter wakes (a
/// permit is stored when nobody waits yet).
fn one(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let notify = Arc::new(Notify::new_flawed(flaw));
        let n2 = notify.clone();
        let t = thread::spawn(move || n2.notify_one());
        block_on(notify.notified());
        t.join().unwrap();
    });
}

#[test]
fn notify_one_no_lost_wakeup() {
    static N: Iterations = Iterations::new();
    one(Flaw::None, &N);
    N.report("loom", "notify_one wakes or stores a permit");
}

#[test]
#[ignore = "child of notify_lost_wakeup_is_caught"]
fn child_notify_lost_wakeup() {
    static N: Iterations = Iterations::new();
    one(Flaw::LostWakeup, &N);
}

#[test]
fn notify_lost_wakeup_is_caught() {
    expect_child_failure("child_notify_lost_wakeup", "deadlock");
}

/// A waiter polled spuriously is notified; a second `notify_one` must then
/// still reach the next `notified()` (no stale duplicate swallows it).
fn spurious_poll(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let notify = Arc::new(Notify::new_flawed(flaw));
        let n2 = notify.clone();
        let t = thread::spawn(move || {
            block_on(Spurious {
                fut: Box::pin(async move { n2.notified().await }),
                spurious: 1,
            })
        });
        notify.notify_one();
        t.join().unwrap();
        notify.notify_one();
        let mut next = Box::pin(notify.notified());
        assert!(
            poll_once(&mut next).is_ready(),
            "notification lost to a stale waiter after a spurious poll"
        );
    });
}

#[test]
fn notify_spurious_poll() {
    static N: Iterations = Iterations::new();
    spurious_poll(Flaw::None, &N);
    N.report("loom", "notify waiter polled spuriously");
}

#[test]
#[should_panic(expected = "notification lost to a stale waiter")]
fn notify_waker_per_poll_is_caught() {
    static N: Iterations = Iterations::new();
    spurious_poll(Flaw::WakerPerPoll, &N);
}

/// A queued `notified()` is dropped at any point relative to the
/// `notify_one` that may pick it: the notification is not swallowed.
fn cancel(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let notify = Arc::new(Notify::new_flawed(flaw));
        let n2 = notify.clone();
        let t = thread::spawn(move || {
            let mut wait = Box::pin(n2.notified());
            let took = poll_once(&mut wait).is_ready();
            thread::yield_now();
            drop(wait);
            took
        });
        notify.notify_one();
        let took = t.join().unwrap();
        let mut next = Box::pin(notify.notified());
        assert!(
            took || poll_once(&mut next).is_ready(),
            "notification swallowed by a cancelled notified()"
        );
    });
}

#[test]
fn notify_cancel_hands_on() {
    static N: Iterations = Iterations::new();
    cancel(Flaw::None, &N);
    N.report("loom", "notify cancelled waiter");
}

#[test]
#[should_panic(expected = "notification swallowed by a cancelled notified()")]
fn notify_cancel_loses_handoff_is_caught() {
    static N: Iterations = Iterations::new();
    cancel(Flaw::CancelLosesHandoff, &N);
}

/// `notify_waiters` wakes a future created before it, polled or not.
#[test]
fn notify_waiters_wakes_earlier_futures() {
    static N: Iterations = Iterations::new();
    builder().check(|| {
        N.tick();
        let notify = Arc::new(Notify::new());
        let created = Arc::new(AtomicBool::new(false));
        let (n2, c2) = (notify.clone(), created.clone());
        let t = thread::spawn(move || {
            block_on(async move {
                let wait = n2.notified();
                c2.store(true, Ordering::SeqCst);
                wait.await
            })
        });
        while !created.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        notify.notify_waiters();
        t.join().unwrap();
    });
    N.report("loom", "notify_waiters");
}
