//! loom model checks of `oneshot`, each next to its broken twin.
#![cfg(faultline_loom)]

mod support;

use faultline::sync::{oneshot, Flaw};
use loom::future::block_on;
use loom::thread;
use support::{expect_child_failure, Iterations};

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b
}

/// A send wakes the receiver, whenever it parks.
fn send_wakes(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let (tx, rx) = oneshot::channel_flawed::<u8>(flaw);
        let t = thread::spawn(move || tx.send(7).unwrap());
        assert_eq!(block_on(rx), Ok(7));
        t.join().unwrap();
    });
}

#[test]
fn oneshot_no_lost_wakeup() {
    static N: Iterations = Iterations::new();
    send_wakes(Flaw::None, &N);
    N.report("loom", "oneshot send wakes the receiver");
}

#[test]
#[ignore = "child of oneshot_lost_wakeup_is_caught"]
fn child_oneshot_lost_wakeup() {
    static N: Iterations = Iterations::new();
    send_wakes(Flaw::LostWakeup, &N);
}

#[test]
fn oneshot_lost_wakeup_is_caught() {
    expect_child_failure("child_oneshot_lost_wakeup", "deadlock");
}

/// Dropping the sender unsent wakes the receiver with `RecvError`.
fn drop_closes(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let (tx, rx) = oneshot::channel_flawed::<u8>(flaw);
        let t = thread::spawn(move || drop(tx));
        assert_eq!(block_on(rx), Err(oneshot::RecvError));
        t.join().unwrap();
    });
}

#[test]
fn oneshot_sender_drop_closes() {
    static N: Iterations = Iterations::new();
    drop_closes(Flaw::None, &N);
    N.report("loom", "oneshot sender drop wakes the receiver");
}

#[test]
#[ignore = "child of oneshot_close_lost_on_drop_is_caught"]
fn child_oneshot_close_lost_on_drop() {
    static N: Iterations = Iterations::new();
    drop_closes(Flaw::CloseLostOnDrop, &N);
}

#[test]
fn oneshot_close_lost_on_drop_is_caught() {
    expect_child_failure("child_oneshot_close_lost_on_drop", "deadlock");
}

/// A send racing the receiver's drop either lands (the receiver was still
/// there) or fails and hands the value back; once the sender has seen the
/// receiver gone, the send must fail.
#[test]
fn oneshot_send_to_dropped_receiver_hands_back() {
    static N: Iterations = Iterations::new();
    builder().check(|| {
        N.tick();
        let (tx, rx) = oneshot::channel::<String>();
        let t = thread::spawn(move || {
            let closed = tx.is_closed();
            (closed, tx.send("v".to_string()))
        });
        drop(rx);
        let (closed, sent) = t.join().unwrap();
        match sent {
            Err(v) => assert_eq!(v, "v", "the value was not handed back"),
            Ok(()) => assert!(!closed, "a send to a dropped receiver reported success"),
        }
    });
    N.report("loom", "oneshot send vs receiver drop");
}
