//! shuttle checks of `TaskSet` over the `ThreadScheduler` (each task a
//! shuttle thread) under the PCT and random schedulers, each next to its
//! broken twin.
#![cfg(faultline_shuttle)]

mod support;

use faultline::sched::{JoinError, Scheduler, ThreadScheduler};
use faultline::sync::{oneshot, DynArc, Flaw, TaskSet};
use shuttle::future::block_on;
use shuttle::sync::atomic::{AtomicUsize, Ordering};
use shuttle::sync::Arc;
use shuttle::thread;
use std::collections::BTreeSet;
use support::{expect_child_failure, Iterations};

const ITERATIONS: usize = 1_000;
const PCT_DEPTH: usize = 3;
const TASKS_MAX: usize = 2;

fn check(name: &str, iters: &'static Iterations, model: impl Fn() + Send + Sync + Clone + 'static) {
    let m = model.clone();
    support::check_pct(support::counted(iters, m), ITERATIONS, PCT_DEPTH);
    support::check_random(support::counted(iters, model), ITERATIONS);
    iters.report("shuttle (pct + random)", name);
}

fn sched() -> DynArc<dyn Scheduler> {
    DynArc::new(ThreadScheduler)
}

/// Four jobs through a set of two (joining one when full): every result
/// comes back once, and no more than two job bodies run at a time; then
/// `abort_all` on a parked task reports it cancelled.
fn jobs(flaw: Flaw) -> impl Fn() + Send + Sync + Clone + 'static {
    move || {
        let alive = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut set = TaskSet::new_flawed(sched(), TASKS_MAX, flaw);
        let mut seen = BTreeSet::new();
        block_on(async {
            for i in 0..4u32 {
                let (alive, peak) = (alive.clone(), peak.clone());
                let mut job = Box::pin(async move {
                    let now = alive.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    thread::yield_now();
                    alive.fetch_sub(1, Ordering::SeqCst);
                    i
                });
                while let Err(full) = set.spawn("job", job) {
                    let v = set.join_next().await.expect("a task").expect("job ends");
                    assert!(seen.insert(v), "job {v} joined twice");
                    job = full.fut;
                }
            }
            while let Some(r) = set.join_next().await {
                assert!(seen.insert(r.expect("job ends")), "joined twice");
            }
            assert_eq!(seen.len(), 4, "results lost");
            set.spawn("parked", async { std::future::pending::<u32>().await })
                .expect("room");
            set.abort_all();
            assert_eq!(set.join_next().await, Some(Err(JoinError::Cancelled)));
        });
        let peak = peak.load(Ordering::SeqCst);
        assert!(
            peak <= TASKS_MAX,
            "{peak} job bodies ran at once in a set of {TASKS_MAX}"
        );
    }
}

#[test]
fn task_set_jobs() {
    static N: Iterations = Iterations::new();
    check("task set, 4 jobs through 2 slots", &N, jobs(Flaw::None));
}

#[test]
#[ignore = "child of task_set_lost_wakeup_is_caught"]
fn child_task_set_lost_wakeup() {
    support::check_pct(jobs(Flaw::LostWakeup), ITERATIONS, PCT_DEPTH);
}

#[test]
fn task_set_lost_wakeup_is_caught() {
    expect_child_failure("child_task_set_lost_wakeup", "deadlock");
}

#[test]
#[should_panic(expected = "job bodies ran at once")]
fn task_set_limit_unchecked_is_caught() {
    support::check_pct(jobs(Flaw::LimitUnchecked), ITERATIONS, PCT_DEPTH);
}

/// Dropping a set aborts its two parked tasks: what they hold (oneshot
/// senders) is dropped, so the receivers see the channels closed.
fn drop_aborts(flaw: Flaw) -> impl Fn() + Send + Sync + Clone + 'static {
    move || {
        let mut set = TaskSet::new_flawed(sched(), TASKS_MAX, flaw);
        let mut receivers = Vec::new();
        for _ in 0..2 {
            let (tx, rx) = oneshot::channel::<()>();
            receivers.push(rx);
            set.spawn("parked", async move {
                let _tx = tx;
                std::future::pending::<()>().await;
            })
            .expect("room");
        }
        drop(set);
        block_on(async move {
            for rx in receivers {
                assert!(rx.await.is_err());
            }
        });
    }
}

#[test]
fn task_set_drop_aborts() {
    static N: Iterations = Iterations::new();
    check("task set drop aborts", &N, drop_aborts(Flaw::None));
}

#[test]
#[ignore = "child of task_set_drop_detaches_is_caught"]
fn child_task_set_drop_detaches() {
    support::check_pct(drop_aborts(Flaw::DropDetaches), ITERATIONS, PCT_DEPTH);
}

#[test]
fn task_set_drop_detaches_is_caught() {
    expect_child_failure("child_task_set_drop_detaches", "deadlock");
}
