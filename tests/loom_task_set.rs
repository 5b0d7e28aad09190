//! loom model checks of `TaskSet` over the `ThreadScheduler` (each task a
//! loom thread), each next to its broken twin.
#![cfg(faultline_loom)]

mod support;

use faultline::sched::{Scheduler, ThreadScheduler};
use faultline::sync::{oneshot, DynArc, Flaw, TaskSet};
use loom::future::block_on;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use support::{expect_child_failure, Iterations};

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b
}

fn sched() -> DynArc<dyn Scheduler> {
    DynArc::new(ThreadScheduler)
}

/// A task's end wakes `join_next`, whenever it parks.
fn join_wakes(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let mut set = TaskSet::new_flawed(sched(), 2, flaw);
        set.spawn("one", async { 1u8 }).expect("room");
        assert_eq!(block_on(set.join_next()), Some(Ok(1)));
        assert_eq!(block_on(set.join_next()), None);
    });
}

#[test]
fn task_set_join_wakes() {
    static N: Iterations = Iterations::new();
    join_wakes(Flaw::None, &N);
    N.report("loom", "task set join_next woken by the task's end");
}

#[test]
#[ignore = "child of task_set_lost_wakeup_is_caught"]
fn child_task_set_lost_wakeup() {
    static N: Iterations = Iterations::new();
    join_wakes(Flaw::LostWakeup, &N);
}

#[test]
fn task_set_lost_wakeup_is_caught() {
    expect_child_failure("child_task_set_lost_wakeup", "deadlock");
}

/// Dropping the set aborts a task parked forever: what it holds (a oneshot
/// sender) is dropped, so its receiver sees the channel closed.
fn drop_aborts(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let (tx, rx) = oneshot::channel::<()>();
        let mut set = TaskSet::new_flawed(sched(), 1, flaw);
        set.spawn("parked", async move {
            let _tx = tx;
            std::future::pending::<()>().await;
        })
        .expect("room");
        drop(set);
        assert!(block_on(rx).is_err());
    });
}

#[test]
fn task_set_drop_aborts() {
    static N: Iterations = Iterations::new();
    drop_aborts(Flaw::None, &N);
    N.report("loom", "task set drop aborts its tasks");
}

#[test]
#[ignore = "child of task_set_drop_detaches_is_caught"]
fn child_task_set_drop_detaches() {
    static N: Iterations = Iterations::new();
    drop_aborts(Flaw::DropDetaches, &N);
}

#[test]
fn task_set_drop_detaches_is_caught() {
    expect_child_failure("child_task_set_drop_detaches", "deadlock");
}

/// A set of one tries to take two tasks: never more than one task body
/// runs at a time.
fn limit(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let alive = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut set = TaskSet::new_flawed(sched(), 1, flaw);
        for _ in 0..2 {
            let (alive, peak) = (alive.clone(), peak.clone());
            let _refused = set.spawn("body", async move {
                let now = alive.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                thread::yield_now();
                alive.fetch_sub(1, Ordering::SeqCst);
            });
        }
        while block_on(set.join_next()).is_some() {}
        let peak = peak.load(Ordering::SeqCst);
        assert!(peak <= 1, "{peak} task bodies ran at once in a set of 1");
    });
}

#[test]
fn task_set_limit() {
    static N: Iterations = Iterations::new();
    limit(Flaw::None, &N);
    N.report("loom", "task set tasks_max");
}

#[test]
#[should_panic(expected = "task bodies ran at once in a set of 1")]
fn task_set_limit_unchecked_is_caught() {
    static N: Iterations = Iterations::new();
    limit(Flaw::LimitUnchecked, &N);
}
