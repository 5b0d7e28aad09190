//! `Gate` and `Semaphore` (the permit pool under both) driven step by step:
//! every future is polled by hand with a counting waker, so each rule of the
//! pool (FIFO hand-off, one node per acquire, a dropped grant passed on,
//! `try_*` never jumping the queue, the counters) is checked on one exact
//! interleaving instead of being hoped for in a sweep. The planted
//! [`Flaw`] twins are stepped the same way, each showing its bug.
//!
//! Written to kill cargo-mutants survivors (see `MUTANTS.md`): each test
//! names the rule it pins.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::probe::LockClass;
use faultline::sim::{Failure, Outcome, Sim, SimConfig};
use faultline::sync::{Flaw, Gate, NoPermit, Semaphore};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// A waker that counts its wake-ups.
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counter() -> (Arc<Counter>, Waker) {
    let c = Arc::new(Counter(AtomicUsize::new(0)));
    (Arc::clone(&c), Waker::from(c))
}

fn wakes(c: &Counter) -> usize {
    c.0.load(Ordering::SeqCst)
}

/// Polls `fut` once with `waker`.
fn poll<F: Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(waker))
}

#[test]
fn gate_try_lock_value_and_counters() {
    let gate = Gate::new(5u32);
    assert!(!gate.is_locked());
    assert_eq!(format!("{gate:?}"), "Gate { locked: false, waiters: 0 }");
    {
        let mut g = gate.try_lock().expect("a free gate is taken");
        assert_eq!(*g, 5);
        *g = 6;
        assert!(gate.is_locked());
        assert!(gate.try_lock().is_none(), "a held gate is not taken twice");
        assert_eq!(format!("{gate:?}"), "Gate { locked: true, waiters: 0 }");
    }
    assert!(!gate.is_locked(), "the guard's drop releases the gate");
    assert_eq!(gate.try_lock().map(|g| *g), Some(6));
    let d: Gate<u32> = Gate::default();
    assert_eq!(d.try_lock().map(|g| *g), Some(0));
}

#[test]
fn gate_lock_is_ready_when_free() {
    let gate = Gate::new(1u8);
    let (_, w) = counter();
    let mut lock = gate.lock();
    let Poll::Ready(mut g) = poll(&mut lock, &w) else {
        panic!("a free gate is taken on the first poll");
    };
    *g += 1;
    assert_eq!(gate.waiters(), 0, "a ready lock queues no node");
    drop(g);
    drop(lock);
    assert_eq!(gate.try_lock().map(|g| *g), Some(2));
}

/// Three waiters queue; each release hands the gate to the first, which is
/// woken; the others stay pending; the count follows.
#[test]
fn gate_hands_off_in_fifo_order_and_wakes_the_next() {
    let gate = Gate::new(Vec::<u8>::new());
    let held = gate.try_lock().expect("free");
    let (ca, wa) = counter();
    let (cb, wb) = counter();
    let (cc, wc) = counter();
    let (mut a, mut b, mut c) = (gate.lock(), gate.lock(), gate.lock());
    assert!(poll(&mut a, &wa).is_pending());
    assert!(poll(&mut b, &wb).is_pending());
    assert!(poll(&mut c, &wc).is_pending());
    assert_eq!(gate.waiters(), 3);
    assert_eq!(format!("{gate:?}"), "Gate { locked: true, waiters: 3 }");
    drop(held);
    assert_eq!((wakes(&ca), wakes(&cb), wakes(&cc)), (1, 0, 0));
    assert!(gate.is_locked(), "the gate went to a, not back to the pool");
    assert!(
        gate.try_lock().is_none(),
        "try_lock must not take a's grant"
    );
    assert!(poll(&mut c, &wc).is_pending(), "c is not first");
    assert!(poll(&mut b, &wb).is_pending(), "b is not first");
    let Poll::Ready(mut ga) = poll(&mut a, &wa) else {
        panic!("a was granted the gate");
    };
    ga.push(1);
    assert_eq!(gate.waiters(), 2, "a's node left the queue");
    drop(ga);
    assert_eq!((wakes(&ca), wakes(&cb), wakes(&cc)), (1, 1, 0));
    assert!(poll(&mut c, &wc).is_pending());
    let Poll::Ready(mut gb) = poll(&mut b, &wb) else {
        panic!("b was granted the gate");
    };
    gb.push(2);
    drop(gb);
    assert_eq!(wakes(&cc), 1);
    let Poll::Ready(mut gc) = poll(&mut c, &wc) else {
        panic!("c was granted the gate");
    };
    gc.push(3);
    drop(gc);
    assert_eq!(gate.waiters(), 0);
    assert!(!gate.is_locked());
    assert_eq!(gate.try_lock().map(|g| g.clone()), Some(vec![1, 2, 3]));
}

/// A waiter dropped after it was granted passes the gate on; one dropped
/// before leaves the queue without taking anything.
#[test]
fn gate_dropped_waiters_pass_the_grant_on() {
    let gate = Gate::new(());
    let held = gate.try_lock().expect("free");
    let (ca, wa) = counter();
    let (cb, wb) = counter();
    let (cc, wc) = counter();
    let (mut a, mut b, mut c) = (gate.lock(), gate.lock(), gate.lock());
    assert!(poll(&mut a, &wa).is_pending());
    assert!(poll(&mut b, &wb).is_pending());
    assert!(poll(&mut c, &wc).is_pending());
    drop(b);
    assert_eq!(gate.waiters(), 2, "a dropped waiter leaves the queue");
    drop(held);
    assert_eq!(wakes(&ca), 1);
    drop(a);
    assert_eq!(wakes(&cc), 1, "a's grant went on to c (b had left)");
    assert_eq!(wakes(&cb), 0);
    assert!(poll(&mut c, &wc).is_ready());
    assert_eq!(gate.waiters(), 0);
    assert!(!gate.is_locked());
    // A granted acquire dropped with nobody behind returns the permit.
    let held = gate.try_lock().expect("free");
    let mut d = gate.lock();
    assert!(poll(&mut d, &wa).is_pending());
    drop(held);
    drop(d);
    assert!(!gate.is_locked(), "the dropped grant went back to the pool");
    assert!(gate.try_lock().is_some());
}

/// Re-polling a pending acquire keeps one node, and a new waker replaces
/// the old one (the new task is the one woken).
#[test]
fn gate_repoll_keeps_one_node_and_the_latest_waker() {
    let gate = Gate::new(());
    let held = gate.try_lock().expect("free");
    let (c1, w1) = counter();
    let (c2, w2) = counter();
    let mut a = gate.lock();
    for _ in 0..3 {
        assert!(poll(&mut a, &w1).is_pending());
    }
    assert_eq!(gate.waiters(), 1, "re-polls must not queue more nodes");
    assert!(poll(&mut a, &w2).is_pending());
    assert_eq!(gate.waiters(), 1);
    drop(held);
    assert_eq!(
        (wakes(&c1), wakes(&c2)),
        (0, 1),
        "the latest waker is woken"
    );
    assert!(poll(&mut a, &w2).is_ready());
}

#[test]
fn semaphore_counts_and_no_permit() {
    let sem = Semaphore::new(3);
    assert_eq!(
        (sem.available(), sem.permits_max(), sem.waiters()),
        (3, 3, 0)
    );
    assert_eq!(
        format!("{sem:?}"),
        "Semaphore { available: 3, permits_max: 3 }"
    );
    let p1 = sem.try_acquire().expect("free");
    let p2 = sem.try_acquire().expect("free");
    assert_eq!(sem.available(), 1);
    let p3 = sem.try_acquire().expect("free");
    assert_eq!(format!("{p3:?}"), "Permit");
    let err = sem.try_acquire().expect_err("all three in use");
    assert_eq!(err, NoPermit { permits_max: 3 });
    assert_eq!(err.to_string(), "no permit free (all 3 in use)");
    let clone = sem.clone();
    drop(p2);
    assert_eq!(clone.available(), 1, "a clone shares the permits");
    drop((p1, p3));
    assert_eq!(sem.available(), 3);
}

/// Semaphore(2): waiters are served in order, `try_acquire` never takes a
/// permit while a served waiter has not picked it up, and a permit dropped
/// by a cancelled grant reaches the next waiter.
#[test]
fn semaphore_hand_off_cancel_and_try_acquire() {
    let sem = Semaphore::new(2);
    let p1 = sem.try_acquire().expect("free");
    let p2 = sem.try_acquire().expect("free");
    let (ca, wa) = counter();
    let (cb, wb) = counter();
    let (mut a, mut b) = (sem.acquire(), sem.acquire());
    assert!(poll(&mut a, &wa).is_pending());
    assert!(poll(&mut b, &wb).is_pending());
    assert_eq!(sem.waiters(), 2);
    drop(p1);
    assert_eq!((wakes(&ca), wakes(&cb)), (1, 0));
    assert_eq!(sem.available(), 0, "handed to a, not returned");
    drop(a);
    assert_eq!(wakes(&cb), 1, "a's grant went on to b");
    drop(p2);
    assert_eq!(
        sem.available(),
        1,
        "nobody waits ungranted: back to the pool"
    );
    assert!(
        sem.try_acquire().is_err(),
        "b still queues (granted, not yet polled): no barging"
    );
    let Poll::Ready(pb) = poll(&mut b, &wb) else {
        panic!("b was granted");
    };
    assert_eq!(sem.waiters(), 0);
    let p3 = sem.try_acquire().expect("one free now");
    drop((pb, p3));
    assert_eq!(sem.available(), 2);
    let mut c = sem.acquire();
    let Poll::Ready(pc) = poll(&mut c, &wa) else {
        panic!("a free permit is taken on the first poll");
    };
    assert_eq!(sem.available(), 1);
    drop(pc);
}

/// A slab slot freed by a cancelled waiter is reused by a later one; the
/// queue keeps its order through removals at the head, middle and tail.
#[test]
fn semaphore_queue_survives_removals_and_slot_reuse() {
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().expect("free");
    let counters: Vec<_> = (0..5).map(|_| counter()).collect();
    let mut acq: Vec<_> = (0..5).map(|_| Some(sem.acquire())).collect();
    for (f, (_, w)) in acq.iter_mut().zip(&counters) {
        assert!(poll(f.as_mut().expect("live"), w).is_pending());
    }
    // Remove the head, a middle node and the tail.
    for i in [0, 2, 4] {
        acq[i] = None;
    }
    assert_eq!(sem.waiters(), 2);
    // Two newcomers reuse freed slots and queue behind 1 and 3.
    let (cx, wx) = counter();
    let (cy, wy) = counter();
    let mut x = sem.acquire();
    let mut y = sem.acquire();
    assert!(poll(&mut x, &wx).is_pending());
    assert!(poll(&mut y, &wy).is_pending());
    assert_eq!(sem.waiters(), 4);
    let mut permit = held;
    let order = [1usize, 3];
    for i in order {
        drop(permit);
        assert_eq!(wakes(&counters[i].0), 1, "waiter {i} is next");
        let f = acq[i].as_mut().expect("live");
        let Poll::Ready(p) = poll(f, &counters[i].1) else {
            panic!("waiter {i} was granted");
        };
        permit = p;
    }
    drop(permit);
    assert_eq!((wakes(&cx), wakes(&cy)), (1, 0), "x came before y");
    let Poll::Ready(p) = poll(&mut x, &wx) else {
        panic!("x was granted");
    };
    assert!(poll(&mut y, &wy).is_pending());
    drop(p);
    assert_eq!(wakes(&cy), 1);
    assert!(poll(&mut y, &wy).is_ready());
    assert_eq!((sem.waiters(), sem.available()), (0, 1));
    for (i, (c, _)) in counters.iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!(wakes(c), 0, "cancelled waiter {i} was never woken");
        }
    }
}

/// Waiters cancelled after re-polls leave nothing behind, many times over
/// (slot generations: a stale id never finds a later tenant).
#[test]
fn gate_many_cancels_leave_an_empty_queue() {
    let gate = Gate::new(0u32);
    let held = gate.try_lock().expect("free");
    let (c, w) = counter();
    for round in 0..50 {
        let mut a = gate.lock();
        let mut b = gate.lock();
        assert!(poll(&mut a, &w).is_pending());
        assert!(poll(&mut b, &w).is_pending());
        assert!(poll(&mut a, &w).is_pending());
        if round % 2 == 0 {
            drop(a);
            drop(b);
        } else {
            drop(b);
            drop(a);
        }
        assert_eq!(gate.waiters(), 0);
    }
    drop(held);
    assert_eq!(wakes(&c), 0);
    assert!(!gate.is_locked());
}

/// Each gate twin shows its bug on one exact interleaving.
#[test]
fn gate_twins_show_their_bugs_step_by_step() {
    let (c, w) = counter();
    // LostWakeup: the release goes to the pool; the waiter is not woken.
    let gate = Gate::new_flawed((), Flaw::LostWakeup);
    let held = gate.try_lock().expect("free");
    let mut a = gate.lock();
    assert!(poll(&mut a, &w).is_pending());
    drop(held);
    assert_eq!(wakes(&c), 0, "LostWakeup must not wake");
    assert!(!gate.is_locked());
    assert!(poll(&mut a, &w).is_pending(), "and never grants");
    drop(a);
    // WakerPerPoll: each pending poll queues another node.
    let gate = Gate::new_flawed((), Flaw::WakerPerPoll);
    let held = gate.try_lock().expect("free");
    let mut a = gate.lock();
    for _ in 0..3 {
        assert!(poll(&mut a, &w).is_pending());
    }
    assert_eq!(gate.waiters(), 3, "WakerPerPoll queues a node per poll");
    drop(held);
    assert!(poll(&mut a, &w).is_ready(), "the first node was granted");
    drop(a);
    // CancelLosesHandoff: a grant dropped unseen is not passed on.
    let gate = Gate::new_flawed((), Flaw::CancelLosesHandoff);
    let held = gate.try_lock().expect("free");
    let (mut a, mut b) = (gate.lock(), gate.lock());
    assert!(poll(&mut a, &w).is_pending());
    assert!(poll(&mut b, &w).is_pending());
    drop(held);
    drop(a);
    assert!(poll(&mut b, &w).is_pending(), "the grant died with a");
    drop(b);
    // DropLeaksPermit: a released gate stays locked.
    let gate = Gate::new_flawed((), Flaw::DropLeaksPermit);
    drop(gate.try_lock().expect("free"));
    assert!(gate.is_locked(), "DropLeaksPermit never gives back");
}

/// The twins that a single task cannot tell apart from the real gate
/// (`CheckThenTake` races only between threads) still behave like it on
/// one thread; the `WakerPerPoll` twin cleans all its duplicates on drop.
#[test]
fn gate_twins_keep_the_single_task_rules() {
    for flaw in [Flaw::CheckThenTake, Flaw::None] {
        let gate = Gate::new_flawed(0u32, flaw);
        let (c, w) = counter();
        {
            let mut g = gate.try_lock().expect("free");
            *g += 1;
            assert!(gate.try_lock().is_none(), "{flaw:?}: held");
        }
        let held = gate.try_lock().expect("free again");
        let mut a = gate.lock();
        assert!(poll(&mut a, &w).is_pending(), "{flaw:?}: queued");
        drop(held);
        assert_eq!(wakes(&c), 1);
        assert!(gate.try_lock().is_none(), "{flaw:?}: no barging");
        assert!(poll(&mut a, &w).is_ready());
        let mut b = gate.lock();
        let Poll::Ready(g) = poll(&mut b, &w) else {
            panic!("{flaw:?}: a free gate is taken at once");
        };
        drop(g);
        assert!(!gate.is_locked(), "{flaw:?}");
        assert_eq!(gate.waiters(), 0, "{flaw:?}");
    }
    let gate = Gate::new_flawed((), Flaw::WakerPerPoll);
    let held = gate.try_lock().expect("free");
    let (c, w) = counter();
    let (mut a, mut b) = (gate.lock(), gate.lock());
    assert!(poll(&mut a, &w).is_pending());
    assert!(poll(&mut a, &w).is_pending());
    assert!(poll(&mut b, &w).is_pending());
    assert_eq!(gate.waiters(), 3);
    drop(a);
    assert_eq!(gate.waiters(), 1, "dropping a removes both its nodes");
    drop(held);
    assert_eq!(wakes(&c), 1);
    assert!(poll(&mut b, &w).is_ready());
    // A granted duplicate is handed on when its future is dropped.
    let held = gate.try_lock().expect("free");
    drop(b);
    let (mut a, mut b) = (gate.lock(), gate.lock());
    assert!(poll(&mut a, &w).is_pending());
    assert!(poll(&mut b, &w).is_pending());
    drop(held);
    drop(a);
    assert!(poll(&mut b, &w).is_ready(), "a's grant reached b");
}

/// A gate and a semaphore with a lock class report to the lock-order
/// probe; outside a simulated run the probe is inert, and the primitives
/// still work.
#[test]
fn classed_primitives_work_outside_a_run() {
    const CLASS: LockClass = LockClass {
        name: "test-gate",
        rank: 1,
    };
    let gate = Gate::with_class(1u8, CLASS);
    let (_, w) = counter();
    drop(gate.try_lock().expect("free"));
    let mut l = gate.lock();
    assert!(poll(&mut l, &w).is_ready());
    drop(l);
    let sem = Semaphore::with_class(2, CLASS);
    assert_eq!(sem.permits_max(), 2);
    let p = sem.try_acquire().expect("free");
    let mut a = sem.acquire();
    assert!(poll(&mut a, &w).is_ready());
    drop(p);
    drop(a);
    assert_eq!(sem.available(), 2);
}

/// The semaphore's twins: LostWakeup and DropLeaksPermit.
#[test]
fn semaphore_twins_show_their_bugs() {
    let (c, w) = counter();
    let sem = Semaphore::new_flawed(1, Flaw::LostWakeup);
    let p = sem.try_acquire().expect("free");
    let mut a = sem.acquire();
    assert!(poll(&mut a, &w).is_pending());
    drop(p);
    assert_eq!((wakes(&c), sem.available()), (0, 1));
    let sem = Semaphore::new_flawed(2, Flaw::DropLeaksPermit);
    drop(sem.try_acquire().expect("free"));
    assert_eq!(sem.available(), 1);
    let sem = Semaphore::new_flawed(1, Flaw::CheckThenTake);
    let p = sem.try_acquire().expect("free");
    assert!(sem.try_acquire().is_err());
    assert_eq!(sem.available(), 0, "no underflow, no extra permit");
    drop(p);
    assert_eq!(sem.available(), 1);
}

const HIGH: LockClass = LockClass {
    name: "steps.high",
    rank: 2,
};
const LOW: LockClass = LockClass {
    name: "steps.low",
    rank: 1,
};

/// Takes a `HIGH` primitive, then a `LOW` one, through `lock` / `acquire`
/// (not `try_*`); with `release_first` the `HIGH` one is released before.
fn lock_order_run(semaphore: bool, release_first: bool) -> Outcome {
    let sim = Sim::new(SimConfig {
        seed: 1,
        ..Default::default()
    });
    sim.run(async move {
        if semaphore {
            let (high, low) = (
                Semaphore::with_class(1, HIGH),
                Semaphore::with_class(1, LOW),
            );
            let h = high.acquire().await;
            if release_first {
                drop(h);
                let _l = low.acquire().await;
            } else {
                let _l = low.acquire().await;
                drop(h);
            }
        } else {
            let (high, low) = (Gate::with_class((), HIGH), Gate::with_class((), LOW));
            let h = high.lock().await;
            if release_first {
                drop(h);
                let _l = low.lock().await;
            } else {
                let _l = low.lock().await;
                drop(h);
            }
        }
    })
}

/// `lock()` / `acquire()` report what they take and what they release to
/// the lock-order checker: the inverted order fails, releasing first holds.
#[test]
fn waited_acquisitions_and_releases_reach_the_lock_order_checker() {
    for semaphore in [false, true] {
        match lock_order_run(semaphore, false).failure {
            Some(Failure::LockOrder { detail }) => assert!(
                detail.contains("steps.high") && detail.contains("steps.low"),
                "{detail}"
            ),
            other => panic!("semaphore={semaphore}: expected lock order, got {other:?}"),
        }
        let ok = lock_order_run(semaphore, true);
        assert!(ok.passed(), "semaphore={semaphore}: {:?}", ok.failure);
    }
}
