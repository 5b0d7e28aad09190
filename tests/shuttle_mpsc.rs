//! shuttle checks of `mpsc` with more tasks than loom can afford, under the
//! PCT and random schedulers, each next to its broken twin.
#![cfg(faultline_shuttle)]

mod support;

use faultline::sync::{mpsc, Flaw};
use shuttle::future::{block_on, spawn, yield_now};
use shuttle::sync::atomic::{AtomicUsize, Ordering};
use shuttle::sync::Arc;
use support::{expect_child_failure, poll_once, Iterations, Spurious};

const ITERATIONS: usize = 2_000;
const PCT_DEPTH: usize = 3;
const PRODUCERS: usize = 3;
const PER_PRODUCER: u32 = 3;

/// Runs `model` under PCT and then the random scheduler.
fn check(name: &str, iters: &'static Iterations, model: impl Fn() + Send + Sync + Clone + 'static) {
    let m = model.clone();
    support::check_pct(support::counted(iters, m), ITERATIONS, PCT_DEPTH);
    support::check_random(support::counted(iters, model), ITERATIONS);
    iters.report("shuttle (pct + random)", name);
}

/// Three producers (polled spuriously; producer 0 gives up its first send
/// once, after queueing) on a one-slot channel: every message arrives once,
/// in each producer's order, and the channel closes when they are done.
fn delivery(flaw: Flaw) -> impl Fn() + Send + Sync + Clone + 'static {
    move || {
        let (tx, mut rx) = mpsc::channel_flawed::<(usize, u32)>(1, flaw);
        for p in 0..PRODUCERS {
            let tx = tx.clone();
            spawn(Spurious {
                fut: Box::pin(async move {
                    for i in 0..PER_PRODUCER {
                        if p == 0 && i == 0 {
                            let mut send = Box::pin(tx.send((p, i)));
                            if poll_once(&mut send).is_ready() {
                                continue;
                            }
                            yield_now().await;
                            drop(send);
                        }
                        tx.send((p, i)).await.expect("receiver alive");
                    }
                }),
                spurious: 2,
            });
        }
        drop(tx);
        block_on(async move {
            let mut next = [0u32; PRODUCERS];
            while let Some((p, i)) = rx.recv().await {
                assert_eq!(
                    i, next[p],
                    "producer {p}: message {i} out of order or twice"
                );
                next[p] += 1;
                yield_now().await;
            }
            assert_eq!(next, [PER_PRODUCER; PRODUCERS], "messages lost");
        });
    }
}

#[test]
fn mpsc_delivery() {
    static N: Iterations = Iterations::new();
    check(
        "mpsc delivery, 3 producers on 1 slot",
        &N,
        delivery(Flaw::None),
    );
}

#[test]
#[ignore = "child of mpsc_lost_wakeup_is_caught"]
fn child_mpsc_lost_wakeup() {
    support::check_pct(delivery(Flaw::LostWakeup), ITERATIONS, PCT_DEPTH);
}

#[test]
fn mpsc_lost_wakeup_is_caught() {
    expect_child_failure("child_mpsc_lost_wakeup", "deadlock");
}

#[test]
#[ignore = "child of mpsc_waker_per_poll_is_caught"]
fn child_mpsc_waker_per_poll() {
    support::check_pct(delivery(Flaw::WakerPerPoll), ITERATIONS, PCT_DEPTH);
}

#[test]
fn mpsc_waker_per_poll_is_caught() {
    // A stale duplicate takes a slot's reservation: the channel jams.
    expect_child_failure("child_mpsc_waker_per_poll", "deadlock");
}

#[test]
#[ignore = "child of mpsc_cancel_loses_handoff_is_caught"]
fn child_mpsc_cancel_loses_handoff() {
    support::check_pct(delivery(Flaw::CancelLosesHandoff), ITERATIONS, PCT_DEPTH);
}

#[test]
fn mpsc_cancel_loses_handoff_is_caught() {
    expect_child_failure("child_mpsc_cancel_loses_handoff", "deadlock");
}

/// Two senders each send one message and drop; the receiver drains the
/// channel until it reports it closed.
fn close(flaw: Flaw) -> impl Fn() + Send + Sync + Clone + 'static {
    move || {
        let (tx, mut rx) = mpsc::channel_flawed::<u8>(2, flaw);
        for i in 0..2 {
            let tx = tx.clone();
            spawn(async move {
                yield_now().await;
                tx.send(i).await.expect("receiver alive");
                yield_now().await;
                drop(tx);
            });
        }
        drop(tx);
        block_on(async move {
            let mut got = 0;
            while rx.recv().await.is_some() {
                got += 1;
            }
            assert_eq!(got, 2, "messages lost");
        });
    }
}

#[test]
fn mpsc_close_on_last_sender_drop() {
    static N: Iterations = Iterations::new();
    check(
        "mpsc closes on the last sender's drop",
        &N,
        close(Flaw::None),
    );
}

#[test]
#[ignore = "child of mpsc_close_lost_on_drop_is_caught"]
fn child_mpsc_close_lost_on_drop() {
    support::check_pct(close(Flaw::CloseLostOnDrop), ITERATIONS, PCT_DEPTH);
}

#[test]
fn mpsc_close_lost_on_drop_is_caught() {
    expect_child_failure("child_mpsc_close_lost_on_drop", "deadlock");
}

/// Four tasks `try_send` into a 2-slot channel nobody drains: no more
/// messages are taken than there are slots.
fn capacity(flaw: Flaw) -> impl Fn() + Send + Sync + Clone + 'static {
    move || {
        let (tx, rx) = mpsc::channel_flawed::<u8>(2, flaw);
        let taken = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..4)
            .map(|i| {
                let (tx, taken) = (tx.clone(), taken.clone());
                spawn(async move {
                    if tx.try_send(i).is_ok() {
                        taken.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        block_on(async {
            for t in tasks {
                t.await.unwrap();
            }
        });
        let taken = taken.load(Ordering::SeqCst);
        assert!(
            taken <= 2,
            "channel over capacity: {taken} messages in 2 slots"
        );
        assert_eq!(rx.len(), taken);
    }
}

#[test]
fn mpsc_capacity() {
    static N: Iterations = Iterations::new();
    check(
        "mpsc capacity, 4 senders on 2 slots",
        &N,
        capacity(Flaw::None),
    );
}

#[test]
#[should_panic(expected = "channel over capacity")]
fn mpsc_check_then_take_is_caught() {
    support::check_pct(capacity(Flaw::CheckThenTake), ITERATIONS, PCT_DEPTH);
}
