//! loom model checks of `mpsc`, each next to its broken twin.
#![cfg(faultline_loom)]

mod support;

use faultline::sync::{mpsc, Flaw};
use loom::future::block_on;
use loom::thread;
use support::{expect_child_failure, poll_once, Iterations, Spurious};

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b
}

/// Two threads `try_send` into a one-slot channel nobody drains: holding
/// more messages than slots is over capacity.
fn capacity(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let (tx, rx) = mpsc::channel_flawed::<u8>(1, flaw);
        let tx2 = tx.clone();
        let t = thread::spawn(move || tx2.try_send(1).is_ok());
        let mine = tx.try_send(2).is_ok();
        let theirs = t.join().unwrap();
        let held = usize::from(mine) + usize::from(theirs);
        assert!(
            held <= 1,
            "channel over capacity: {held} messages in 1 slot"
        );
        drop(rx);
    });
}

#[test]
fn mpsc_capacity() {
    static N: Iterations = Iterations::new();
    capacity(Flaw::None, &N);
    N.report("loom", "mpsc capacity");
}

#[test]
#[should_panic(expected = "channel over capacity")]
fn mpsc_check_then_take_is_caught() {
    static N: Iterations = Iterations::new();
    capacity(Flaw::CheckThenTake, &N);
}

/// A send wakes the receiver parked in `recv` (the sender stays alive, so
/// its drop cannot stand in for the wake-up).
fn wake_receiver(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let (tx, mut rx) = mpsc::channel_flawed::<u8>(1, flaw);
        let t = thread::spawn(move || {
            block_on(tx.send(7)).unwrap();
            tx
        });
        assert_eq!(block_on(rx.recv()), Some(7));
        drop(t.join().unwrap());
    });
}

#[test]
fn mpsc_no_lost_wakeup() {
    static N: Iterations = Iterations::new();
    wake_receiver(Flaw::None, &N);
    N.report("loom", "mpsc send wakes the receiver");
}

#[test]
#[ignore = "child of mpsc_lost_wakeup_is_caught"]
fn child_mpsc_lost_wakeup() {
    static N: Iterations = Iterations::new();
    wake_receiver(Flaw::LostWakeup, &N);
}

#[test]
fn mpsc_lost_wakeup_is_caught() {
    expect_child_failure("child_mpsc_lost_wakeup", "deadlock");
}

/// Dropping the last sender wakes the parked receiver with `None`.
fn close_on_drop(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let (tx, mut rx) = mpsc::channel_flawed::<u8>(1, flaw);
        let t = thread::spawn(move || drop(tx));
        assert_eq!(block_on(rx.recv()), None);
        t.join().unwrap();
    });
}

#[test]
fn mpsc_close_on_last_sender_drop() {
    static N: Iterations = Iterations::new();
    close_on_drop(Flaw::None, &N);
    N.report("loom", "mpsc closes on the last sender's drop");
}

#[test]
#[ignore = "child of mpsc_close_lost_on_drop_is_caught"]
fn child_mpsc_close_lost_on_drop() {
    static N: Iterations = Iterations::new();
    close_on_drop(Flaw::CloseLostOnDrop, &N);
}

#[test]
fn mpsc_close_lost_on_drop_is_caught() {
    expect_child_failure("child_mpsc_close_lost_on_drop", "deadlock");
}

/// A sender waiting for room is polled spuriously, then served; the slot
/// is free again once both messages are received.
fn spurious_poll(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let (tx, mut rx) = mpsc::channel_flawed::<u8>(1, flaw);
        tx.try_send(0).unwrap();
        let t = thread::spawn(move || {
            block_on(Spurious {
                fut: Box::pin(async move {
                    tx.send(1).await.unwrap();
                    tx
                }),
                spurious: 1,
            })
        });
        assert_eq!(block_on(rx.recv()), Some(0));
        assert_eq!(block_on(rx.recv()), Some(1));
        let tx = t.join().unwrap();
        assert!(tx.try_send(2).is_ok(), "slot lost after a spurious poll");
    });
}

#[test]
fn mpsc_spurious_poll() {
    static N: Iterations = Iterations::new();
    spurious_poll(Flaw::None, &N);
    N.report("loom", "mpsc waiting sender polled spuriously");
}

#[test]
#[should_panic(expected = "slot lost after a spurious poll")]
fn mpsc_waker_per_poll_is_caught() {
    static N: Iterations = Iterations::new();
    spurious_poll(Flaw::WakerPerPoll, &N);
}

/// A queued send is cancelled at any point relative to the `recv` that may
/// hand it the slot: the slot comes back either way.
fn cancel(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let (tx, mut rx) = mpsc::channel_flawed::<u8>(1, flaw);
        tx.try_send(0).unwrap();
        let t = thread::spawn(move || {
            let mut send = Box::pin(tx.send(1));
            let sent = poll_once(&mut send).is_ready();
            thread::yield_now();
            drop(send);
            (tx, sent)
        });
        assert_eq!(block_on(rx.recv()), Some(0));
        let (tx, sent) = t.join().unwrap();
        if sent {
            assert_eq!(rx.try_recv(), Ok(1));
        }
        assert!(tx.try_send(2).is_ok(), "slot lost by a cancelled send");
    });
}

#[test]
fn mpsc_cancel_hands_on() {
    static N: Iterations = Iterations::new();
    cancel(Flaw::None, &N);
    N.report("loom", "mpsc cancelled send");
}

#[test]
#[should_panic(expected = "slot lost by a cancelled send")]
fn mpsc_cancel_loses_handoff_is_caught() {
    static N: Iterations = Iterations::new();
    cancel(Flaw::CancelLosesHandoff, &N);
}
