//! faultline's async primitives under tokio (the production runtime): the
//! same code the model checks and the simulator run, here on
//! `TokioScheduler` tasks and `TokioClock` time (paused, so it is exact).
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::clock::{Clock, TokioClock};
use faultline::sched::{JoinError, Scheduler, TokioScheduler};
use faultline::sync::{mpsc, oneshot, timeout, DynArc, Elapsed, Notify, RwLock, TaskSet};
use std::sync::Arc;
use std::time::Duration;

fn sched() -> DynArc<dyn Scheduler> {
    DynArc::new(TokioScheduler)
}

#[tokio::test]
async fn mpsc_many_producers_fifo_per_producer_and_close() {
    let (tx, mut rx) = mpsc::channel::<(u32, u32)>(4);
    let mut set = TaskSet::new(sched(), 8);
    for p in 0..4 {
        let tx = tx.clone();
        set.spawn("producer", async move {
            for i in 0..500 {
                tx.send((p, i)).await.expect("receiver alive");
            }
        })
        .expect("room");
    }
    drop(tx);
    let mut next = [0u32; 4];
    while let Some((p, i)) = rx.recv().await {
        assert_eq!(i, next[p as usize], "producer {p} out of order");
        next[p as usize] += 1;
    }
    assert_eq!(next, [500; 4]);
    while let Some(r) = set.join_next().await {
        r.expect("producer ends");
    }
}

#[test]
fn mpsc_errors_hand_the_value_back() {
    let (tx, mut rx) = mpsc::channel::<String>(1);
    tx.try_send("a".into()).expect("room");
    match tx.try_send("b".into()) {
        Err(mpsc::TrySendError::Full(v)) => assert_eq!(v, "b"),
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(tx.capacity(), 0);
    rx.close();
    match tx.try_send("c".into()) {
        Err(mpsc::TrySendError::Closed(v)) => assert_eq!(v, "c"),
        other => panic!("expected Closed, got {other:?}"),
    }
    let sent = faultline::sync::block_on(tx.send("d".into()));
    assert_eq!(sent.map_err(|e| e.0), Err("d".to_string()));
    assert_eq!(rx.try_recv(), Ok("a".to_string()), "queued before close");
    assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Empty));
    drop(tx);
    assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Disconnected));
}

#[tokio::test]
async fn oneshot_across_tasks() {
    let (tx, rx) = oneshot::channel::<u32>();
    let (tx2, rx2) = oneshot::channel::<u32>();
    let mut set = TaskSet::new(sched(), 2);
    set.spawn("send", async move { tx.send(5).expect("receiver alive") })
        .expect("room");
    set.spawn("drop", async move { drop(tx2) }).expect("room");
    assert_eq!(rx.await, Ok(5));
    assert_eq!(rx2.await, Err(oneshot::RecvError));
    let (tx3, rx3) = oneshot::channel::<u32>();
    drop(rx3);
    assert!(tx3.is_closed());
    assert_eq!(tx3.send(9), Err(9), "value handed back");
}

#[tokio::test]
async fn notify_one_and_waiters() {
    let notify = Arc::new(Notify::new());
    let mut set = TaskSet::new(sched(), 4);
    for _ in 0..3 {
        let n = Arc::clone(&notify);
        set.spawn("waiter", async move { n.notified().await })
            .expect("room");
    }
    while notify.waiters() < 3 {
        tokio::task::yield_now().await;
    }
    notify.notify_waiters();
    let joined = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(r) = set.join_next().await {
            r.expect("woken");
        }
    });
    joined.await.expect("notify_waiters woke every waiter");
    // notify_waiters stored nothing; notify_one stores one permit.
    let late = tokio::time::timeout(Duration::from_millis(50), notify.notified()).await;
    assert!(late.is_err(), "a permit was stored");
    notify.notify_one();
    notify.notify_one();
    notify.notified().await;
    let again = tokio::time::timeout(Duration::from_millis(50), notify.notified()).await;
    assert!(again.is_err(), "permits added up");
}

#[tokio::test]
async fn rwlock_readers_share_writers_exclude() {
    let lock = Arc::new(RwLock::new(0u64));
    let mut set = TaskSet::new(sched(), 8);
    for i in 0..8 {
        let lock = Arc::clone(&lock);
        set.spawn("user", async move {
            for _ in 0..200 {
                if i % 2 == 0 {
                    let mut g = lock.write().await;
                    let v = *g;
                    tokio::task::yield_now().await;
                    *g = v + 1;
                } else {
                    let g = lock.read().await;
                    let v = *g;
                    tokio::task::yield_now().await;
                    assert_eq!(*g, v, "changed under a reader");
                }
            }
        })
        .expect("room");
    }
    while let Some(r) = set.join_next().await {
        r.expect("user ends");
    }
    assert_eq!(*lock.read().await, 4 * 200, "lost update");
}

#[tokio::test(start_paused = true)]
async fn timeout_on_tokio_time() {
    let clock = TokioClock::new();
    let start = clock.now_ns();
    let r = timeout(&clock, Duration::from_secs(3), std::future::pending::<()>()).await;
    assert_eq!(
        r,
        Err(Elapsed {
            deadline_ns: start + 3_000_000_000
        })
    );
    assert_eq!(clock.now_ns() - start, 3_000_000_000);
    let quick = timeout(
        &clock,
        Duration::from_secs(3),
        tokio::time::sleep(Duration::from_secs(1)),
    );
    assert_eq!(quick.await, Ok(()));
}

#[tokio::test(start_paused = true)]
async fn task_set_join_abort_panic_and_limit() {
    let mut set = TaskSet::new(sched(), 2);
    set.spawn("ok", async { 1u32 }).expect("room");
    set.spawn("boom", async { panic!("boom on purpose") })
        .expect("room");
    let full = set.spawn("third", async { 3 });
    assert_eq!(
        full.map_err(|e| e.tasks_max).err(),
        Some(2),
        "set of 2 is full"
    );
    let mut results = Vec::new();
    while let Some(r) = set.join_next().await {
        results.push(r);
    }
    results.sort_by_key(|r| r.is_err());
    assert_eq!(results, [Ok(1), Err(JoinError::Panicked)]);
    set.spawn("sleeper", async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        0
    })
    .expect("room");
    set.abort_all();
    assert_eq!(set.join_next().await, Some(Err(JoinError::Cancelled)));
    assert_eq!(set.join_next().await, None);
}

/// Real parallelism: OS threads through the `ThreadScheduler`, a channel
/// and a lock shared between them.
#[test]
fn os_threads_channel_and_lock() {
    use faultline::sched::ThreadScheduler;
    use faultline::sync::block_on;
    let (tx, mut rx) = mpsc::channel::<u32>(2);
    let lock = Arc::new(RwLock::new(0u64));
    let mut set = TaskSet::new(DynArc::new(ThreadScheduler), 4);
    for _ in 0..4 {
        let (tx, lock) = (tx.clone(), Arc::clone(&lock));
        set.spawn("worker", async move {
            for i in 0..1_000 {
                *lock.write().await += 1;
                tx.send(i).await.expect("receiver alive");
            }
        })
        .expect("room");
    }
    drop(tx);
    let mut got = 0u64;
    while block_on(rx.recv()).is_some() {
        got += 1;
    }
    while let Some(r) = block_on(set.join_next()) {
        r.expect("worker ends");
    }
    assert_eq!(got, 4_000);
    assert_eq!(*block_on(lock.read()), 4_000);
}
