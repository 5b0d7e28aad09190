//! shuttle checks of `RwLock` under the PCT and random schedulers, each
//! next to its broken twin.
#![cfg(faultline_shuttle)]

mod support;

use faultline::sync::{Flaw, Mutex, RwLock};
use shuttle::future::{block_on, spawn, yield_now};
use shuttle::sync::Arc;
use support::{expect_child_failure, poll_once, Iterations, Spurious};

const ITERATIONS: usize = 2_000;
const PCT_DEPTH: usize = 3;

fn check(name: &str, iters: &'static Iterations, model: impl Fn() + Send + Sync + Clone + 'static) {
    let m = model.clone();
    support::check_pct(support::counted(iters, m), ITERATIONS, PCT_DEPTH);
    support::check_random(support::counted(iters, model), ITERATIONS);
    iters.report("shuttle (pct + random)", name);
}

/// Who is inside: readers, and whether a writer is.
type Inside = Arc<Mutex<(u32, bool)>>;

async fn read_twice(lock: Arc<RwLock<u32>>, inside: Inside) {
    for _ in 0..2 {
        let g = lock.read().await;
        inside.with(|s| {
            assert!(!s.1, "reader inside with a writer");
            s.0 += 1;
        });
        yield_now().await;
        inside.with(|s| s.0 -= 1);
        drop(g);
    }
}

/// Writer 0 gives up its first write after queueing; both are polled
/// spuriously.
async fn write_twice(lock: Arc<RwLock<u32>>, inside: Inside, w: usize) {
    for round in 0..2 {
        let mut write = Box::pin(lock.write());
        if w == 0 && round == 0 && poll_once(&mut write).is_pending() {
            yield_now().await;
            continue;
        }
        let mut g = write.await;
        inside.with(|s| {
            assert!(s.0 == 0 && !s.1, "writer inside with others");
            s.1 = true;
        });
        *g += 1;
        yield_now().await;
        inside.with(|s| s.1 = false);
    }
}

/// Two readers and two writers, each twice: a writer is alone inside, and
/// the lock ends free.
fn exclusion(flaw: Flaw) -> impl Fn() + Send + Sync + Clone + 'static {
    move || {
        let lock = Arc::new(RwLock::new_flawed(0u32, flaw));
        let inside: Inside = Arc::new(Mutex::new((0, false)));
        let mut tasks = Vec::new();
        for i in 0..4 {
            let (lock, inside) = (lock.clone(), inside.clone());
            tasks.push(if i < 2 {
                spawn(read_twice(lock, inside))
            } else {
                spawn(Spurious {
                    fut: Box::pin(write_twice(lock, inside, i - 2)),
                    spurious: 2,
                })
            });
        }
        block_on(async {
            for t in tasks {
                t.await.unwrap();
            }
        });
        assert!(lock.try_write().is_some(), "lock still held at the end");
    }
}

#[test]
fn rwlock_exclusion() {
    static N: Iterations = Iterations::new();
    check("rwlock, 2 readers and 2 writers", &N, exclusion(Flaw::None));
}

#[test]
#[should_panic(expected = "inside with")]
fn rwlock_writer_with_readers_is_caught() {
    support::check_pct(exclusion(Flaw::WriterWithReaders), ITERATIONS, PCT_DEPTH);
}

#[test]
#[ignore = "child of rwlock_waker_per_poll_is_caught"]
fn child_rwlock_waker_per_poll() {
    support::check_pct(exclusion(Flaw::WakerPerPoll), ITERATIONS, PCT_DEPTH);
}

#[test]
fn rwlock_waker_per_poll_is_caught() {
    // A stale duplicate is granted the lock and never releases it.
    expect_child_failure("child_rwlock_waker_per_poll", "deadlock");
}

#[test]
#[ignore = "child of rwlock_cancel_loses_handoff_is_caught"]
fn child_rwlock_cancel_loses_handoff() {
    support::check_random(exclusion(Flaw::CancelLosesHandoff), ITERATIONS);
}

#[test]
fn rwlock_cancel_loses_handoff_is_caught() {
    expect_child_failure("child_rwlock_cancel_loses_handoff", "deadlock");
}

/// A reader holds the lock while a writer queues; a second reader that
/// comes after the writer queued must not get in before it.
fn fairness(flaw: Flaw) -> impl Fn() + Send + Sync + Clone + 'static {
    move || {
        let lock = Arc::new(RwLock::new_flawed((), flaw));
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = lock.try_read().expect("fresh lock");
        let (l, o) = (lock.clone(), order.clone());
        let writer = spawn(async move {
            let _g = l.write().await;
            o.with(|v| v.push("writer"));
        });
        block_on(async {
            while lock.waiters() == 0 {
                yield_now().await; // until the writer queues
            }
            let (l, o) = (lock.clone(), order.clone());
            let reader = spawn(async move {
                let _g = l.read().await;
                o.with(|v| v.push("reader"));
            });
            yield_now().await;
            drop(first);
            writer.await.unwrap();
            reader.await.unwrap();
            let order = order.with(|v| v.clone());
            assert_eq!(
                order,
                ["writer", "reader"],
                "a reader overtook a queued writer"
            );
        });
    }
}

#[test]
fn rwlock_writer_fairness() {
    static N: Iterations = Iterations::new();
    check("rwlock fairness", &N, fairness(Flaw::None));
}

#[test]
#[should_panic(expected = "a reader overtook a queued writer")]
fn rwlock_readers_barge_is_caught() {
    support::check_pct(fairness(Flaw::ReadersBarge), ITERATIONS, PCT_DEPTH);
}
