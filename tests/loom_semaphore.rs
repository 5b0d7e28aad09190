//! loom model checks of `Semaphore`, each next to its broken twin.
#![cfg(faultline_loom)]

mod support;

use faultline::sync::{Flaw, Semaphore};
use loom::future::block_on;
use loom::thread;
use support::{expect_child_failure, poll_once, Iterations};

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b
}

/// Two threads try a 1-permit semaphore and keep what they got until both
/// tried: both holding a permit is over capacity; all permits come back.
fn capacity(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let sem = Semaphore::new_flawed(1, flaw);
        let s2 = sem.clone();
        let t = thread::spawn(move || s2.try_acquire().ok());
        let mine = sem.try_acquire().ok();
        let theirs = t.join().unwrap();
        let held = usize::from(mine.is_some()) + usize::from(theirs.is_some());
        assert!(held <= 1, "permits exceeded capacity: {held} held of 1");
        drop((mine, theirs));
        assert_eq!(sem.available(), 1, "permit leaked");
    });
}

#[test]
fn semaphore_capacity() {
    static N: Iterations = Iterations::new();
    capacity(Flaw::None, &N);
    N.report("loom", "semaphore capacity");
}

#[test]
#[should_panic(expected = "permits exceeded capacity")]
fn semaphore_check_then_take_is_caught() {
    static N: Iterations = Iterations::new();
    capacity(Flaw::CheckThenTake, &N);
}

/// A permit is held and dropped while another thread waits in acquire().
fn handoff(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let sem = Semaphore::new_flawed(1, flaw);
        let s2 = sem.clone();
        let t = thread::spawn(move || block_on(async { drop(s2.acquire().await) }));
        block_on(async { drop(sem.acquire().await) });
        t.join().unwrap();
        assert_eq!(sem.available(), 1, "permit leaked");
    });
}

#[test]
fn semaphore_no_lost_wakeup() {
    static N: Iterations = Iterations::new();
    handoff(Flaw::None, &N);
    N.report("loom", "semaphore no lost wake-up");
}

#[test]
#[ignore = "child of semaphore_lost_wakeup_is_caught"]
fn child_semaphore_lost_wakeup() {
    static N: Iterations = Iterations::new();
    handoff(Flaw::LostWakeup, &N);
}

#[test]
fn semaphore_lost_wakeup_is_caught() {
    expect_child_failure("child_semaphore_lost_wakeup", "deadlock");
}

#[test]
#[should_panic(expected = "permit leaked")]
fn semaphore_drop_leaks_permit_is_caught() {
    static N: Iterations = Iterations::new();
    loom::model(move || {
        N.tick();
        let sem = Semaphore::new_flawed(1, Flaw::DropLeaksPermit);
        drop(sem.try_acquire().expect("fresh semaphore has a permit"));
        assert_eq!(sem.available(), 1, "permit leaked");
    });
}

/// A queued acquire() is cancelled concurrently with the release that may
/// hand it the permit: the permit must come back either way.
fn cancel(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let sem = Semaphore::new_flawed(1, flaw);
        let permit = sem.try_acquire().expect("fresh semaphore has a permit");
        let s2 = sem.clone();
        let t = thread::spawn(move || {
            let mut acquire = Box::pin(s2.acquire());
            let _ = poll_once(&mut acquire);
            thread::yield_now();
            drop(acquire);
        });
        drop(permit);
        t.join().unwrap();
        assert_eq!(sem.available(), 1, "permit lost by a cancelled acquire()");
    });
}

#[test]
fn semaphore_cancel_returns_permit() {
    static N: Iterations = Iterations::new();
    cancel(Flaw::None, &N);
    N.report("loom", "semaphore cancelled waiter");
}

#[test]
#[should_panic(expected = "permit lost by a cancelled acquire()")]
fn semaphore_cancel_loses_handoff_is_caught() {
    static N: Iterations = Iterations::new();
    cancel(Flaw::CancelLosesHandoff, &N);
}
