//! Two minimal race programs, each written twice with the same await
//! points: once for shuttle (`shuttle::future`), once for the simulator.
//! Shared by `tests/sim_vs_shuttle.rs` and `benches/sim_vs_shuttle.rs`.
//!
//! * `rmw`: two tasks increment a counter with a read, an await and a
//!   write; an update is lost when both read before either writes.
//! * `fig1b`: the PCT paper's Figure 1(b) (a bug of depth 2): one task
//!   checks that a shared value is set, awaits, and uses it; the other
//!   clears it after five awaits. The use fails when the clear lands
//!   between the check and the use.
//!
//! Shared state lives in plain `std` atomics and mutexes, which neither
//! checker treats as a switch point, so on both sides the only switch
//! points are the awaits (a wake-and-pend, like the simulator's
//! `yield_now`; shuttle's own `yield_now` would also demote the task under
//! PCT, which the simulator's does not) and the spawns and joins. The
//! oracle counts a failure instead of panicking, so a benchmark can run
//! many executions in a row and a test can count them.
#![allow(dead_code)]

use faultline::sim::{Outcome, Sim, SimConfig, SimHandle};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// Failing executions of either program, on either checker.
pub static FAILURES: AtomicU64 = AtomicU64::new(0);

fn failed() {
    FAILURES.fetch_add(1, Ordering::Relaxed);
}

/// Wakes its task and pends once: a plain switch point (what the
/// simulator's `yield_now` does), for shuttle.
pub struct PlainYield(bool);

impl Future for PlainYield {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn plain_yield() -> PlainYield {
    PlainYield(false)
}

/// Which program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Race {
    /// Lost update through an await point.
    Rmw,
    /// PCT paper Figure 1(b), depth 2.
    Fig1b,
}

/// One execution under shuttle (call inside a shuttle `Runner`).
pub fn shuttle_program(race: Race) {
    match race {
        Race::Rmw => {
            let counter = Arc::new(AtomicU32::new(0));
            let tasks: Vec<_> = (0..2)
                .map(|_| {
                    let c = Arc::clone(&counter);
                    shuttle::future::spawn(async move {
                        let v = c.load(Ordering::Relaxed);
                        plain_yield().await;
                        c.store(v + 1, Ordering::Relaxed);
                    })
                })
                .collect();
            shuttle::future::block_on(async move {
                for t in tasks {
                    t.await.expect("task failed");
                }
            });
            if counter.load(Ordering::Relaxed) != 2 {
                failed();
            }
        }
        Race::Fig1b => {
            let x = Arc::new(Mutex::new(Some(1u32)));
            let x2 = Arc::clone(&x);
            let clear = shuttle::future::spawn(async move {
                for _ in 0..5 {
                    plain_yield().await;
                }
                *x.lock().expect("lock") = None;
                for _ in 0..4 {
                    plain_yield().await;
                }
            });
            let check = shuttle::future::spawn(async move {
                for _ in 0..4 {
                    plain_yield().await;
                }
                let set = x2.lock().expect("lock").is_some();
                plain_yield().await;
                if set && x2.lock().expect("lock").is_none() {
                    failed();
                }
                for _ in 0..4 {
                    plain_yield().await;
                }
            });
            shuttle::future::block_on(async move {
                clear.await.expect("task failed");
                check.await.expect("task failed");
            });
        }
    }
}

/// One execution on the simulator; returns the outcome (the program's own
/// oracle counts into `FAILURES`).
pub fn sim_program(race: Race, cfg: SimConfig) -> Outcome {
    let sim = Sim::new(cfg);
    let h = sim.main_handle();
    let out = sim.run(async move {
        match race {
            Race::Rmw => sim_rmw(h).await,
            Race::Fig1b => sim_fig1b(h).await,
        }
    });
    assert!(out.passed(), "{race:?}: {:?}", out.failure);
    out
}

async fn sim_rmw(h: SimHandle) {
    let counter = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let c = Arc::clone(&counter);
            h.spawn_on("rmw", async move {
                let v = c.load(Ordering::Relaxed);
                h.yield_now().await;
                c.store(v + 1, Ordering::Relaxed);
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task failed");
    }
    if counter.load(Ordering::Relaxed) != 2 {
        failed();
    }
}

async fn sim_fig1b(h: SimHandle) {
    let x = Arc::new(Mutex::new(Some(1u32)));
    let x2 = Arc::clone(&x);
    let clear = h.spawn_on("clear", async move {
        for _ in 0..5 {
            h.yield_now().await;
        }
        *x.lock().expect("lock") = None;
        for _ in 0..4 {
            h.yield_now().await;
        }
    });
    let check = h.spawn_on("check", async move {
        for _ in 0..4 {
            h.yield_now().await;
        }
        let set = x2.lock().expect("lock").is_some();
        h.yield_now().await;
        if set && x2.lock().expect("lock").is_none() {
            failed();
        }
        for _ in 0..4 {
            h.yield_now().await;
        }
    });
    clear.await.expect("task failed");
    check.await.expect("task failed");
}
