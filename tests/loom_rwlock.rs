//! loom model checks of `RwLock`, each next to its broken twin.
#![cfg(faultline_loom)]

mod support;

use faultline::sync::{Flaw, RwLock};
use loom::future::block_on;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use support::{poll_once, Iterations, Spurious};

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b
}

/// A reader and a writer on two threads: the writer is never inside
/// together with the reader.
fn exclusion(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let lock = Arc::new(RwLock::new_flawed(0u32, flaw));
        let readers = Arc::new(AtomicUsize::new(0));
        let violated = Arc::new(AtomicBool::new(false));
        let (l2, r2, v2) = (lock.clone(), readers.clone(), violated.clone());
        let t = thread::spawn(move || {
            block_on(async move {
                let g = l2.read().await;
                r2.fetch_add(1, Ordering::SeqCst);
                if *g > 0 && *g < 2 {
                    // a writer's half-done update is visible
                    v2.store(true, Ordering::SeqCst);
                }
                thread::yield_now();
                r2.fetch_sub(1, Ordering::SeqCst);
            })
        });
        block_on(async {
            let mut g = lock.write().await;
            if readers.load(Ordering::SeqCst) != 0 {
                violated.store(true, Ordering::SeqCst);
            }
            *g += 1;
            thread::yield_now();
            *g += 1;
        });
        t.join().unwrap();
        assert!(
            !violated.load(Ordering::SeqCst),
            "writer inside together with a reader"
        );
    });
}

#[test]
fn rwlock_exclusion() {
    static N: Iterations = Iterations::new();
    exclusion(Flaw::None, &N);
    N.report("loom", "rwlock writer excludes readers");
}

#[test]
#[should_panic(expected = "writer inside together with a reader")]
fn rwlock_writer_with_readers_is_caught() {
    static N: Iterations = Iterations::new();
    exclusion(Flaw::WriterWithReaders, &N);
}

/// A reader holds the lock, a writer queues (on another thread), then a
/// new reader arrives: it must queue behind the writer.
fn fairness(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let lock = Arc::new(RwLock::new_flawed((), flaw));
        let first = lock.try_read().expect("fresh lock");
        let queued = Arc::new(AtomicBool::new(false));
        let (l2, q2) = (lock.clone(), queued.clone());
        let t = thread::spawn(move || {
            let mut write = Box::pin(l2.write());
            assert!(poll_once(&mut write).is_pending(), "reader holds the lock");
            q2.store(true, Ordering::SeqCst);
            drop(block_on(write));
        });
        while !queued.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        let overtook = lock.try_read().is_some();
        drop(first);
        t.join().unwrap();
        assert!(!overtook, "a reader overtook a queued writer");
    });
}

#[test]
fn rwlock_writer_fairness() {
    static N: Iterations = Iterations::new();
    fairness(Flaw::None, &N);
    N.report("loom", "rwlock readers queue behind a waiting writer");
}

#[test]
#[should_panic(expected = "a reader overtook a queued writer")]
fn rwlock_readers_barge_is_caught() {
    static N: Iterations = Iterations::new();
    fairness(Flaw::ReadersBarge, &N);
}

/// A queued `write()` is dropped at any point relative to the release that
/// may hand it the lock: the lock ends up free.
fn cancel(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let lock = Arc::new(RwLock::new_flawed((), flaw));
        let guard = lock.try_write().expect("fresh lock");
        let l2 = lock.clone();
        let t = thread::spawn(move || {
            let mut write = Box::pin(l2.write());
            let _ = poll_once(&mut write);
            thread::yield_now();
            drop(write);
        });
        drop(guard);
        t.join().unwrap();
        assert!(
            lock.try_write().is_some(),
            "lock lost by a cancelled write()"
        );
    });
}

#[test]
fn rwlock_cancel_hands_on() {
    static N: Iterations = Iterations::new();
    cancel(Flaw::None, &N);
    N.report("loom", "rwlock cancelled writer");
}

#[test]
#[should_panic(expected = "lock lost by a cancelled write()")]
fn rwlock_cancel_loses_handoff_is_caught() {
    static N: Iterations = Iterations::new();
    cancel(Flaw::CancelLosesHandoff, &N);
}

/// A writer polled spuriously while queued, then served: afterwards the
/// lock is free.
fn spurious_poll(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let lock = Arc::new(RwLock::new_flawed((), flaw));
        let guard = lock.try_read().expect("fresh lock");
        let l2 = lock.clone();
        let t = thread::spawn(move || {
            block_on(Spurious {
                fut: Box::pin(async move { drop(l2.write().await) }),
                spurious: 1,
            })
        });
        drop(guard);
        t.join().unwrap();
        assert!(
            lock.try_write().is_some(),
            "lock lost after a spurious poll"
        );
    });
}

#[test]
fn rwlock_spurious_poll() {
    static N: Iterations = Iterations::new();
    spurious_poll(Flaw::None, &N);
    N.report("loom", "rwlock writer polled spuriously");
}

#[test]
#[should_panic(expected = "lock lost after a spurious poll")]
fn rwlock_waker_per_poll_is_caught() {
    static N: Iterations = Iterations::new();
    spurious_poll(Flaw::WakerPerPoll, &N);
}
