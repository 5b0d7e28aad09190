//! shuttle checks of `oneshot` under the PCT and random schedulers, each
//! next to its broken twin.
#![cfg(faultline_shuttle)]

mod support;

use faultline::sync::{oneshot, Flaw};
use shuttle::future::{block_on, spawn, yield_now};
use support::{expect_child_failure, Iterations};

const ITERATIONS: usize = 2_000;
const PCT_DEPTH: usize = 3;

fn check(name: &str, iters: &'static Iterations, model: impl Fn() + Send + Sync + Clone + 'static) {
    let m = model.clone();
    support::check_pct(support::counted(iters, m), ITERATIONS, PCT_DEPTH);
    support::check_random(support::counted(iters, model), ITERATIONS);
    iters.report("shuttle (pct + random)", name);
}

/// Three one-shots: senders 0 and 1 send, sender 2 is dropped; one task
/// awaits them all: it sees the values and the error.
fn outcomes(flaw: Flaw) -> impl Fn() + Send + Sync + Clone + 'static {
    move || {
        let mut receivers = Vec::new();
        for k in 0..3u32 {
            let (tx, rx) = oneshot::channel_flawed::<u32>(flaw);
            receivers.push(rx);
            spawn(async move {
                yield_now().await;
                if k == 2 {
                    drop(tx);
                } else {
                    tx.send(k).expect("receiver alive");
                }
            });
        }
        block_on(async move {
            for (k, rx) in receivers.into_iter().enumerate() {
                let got = rx.await;
                if k == 2 {
                    assert_eq!(got, Err(oneshot::RecvError));
                } else {
                    assert_eq!(got, Ok(k as u32));
                }
            }
        });
    }
}

#[test]
fn oneshot_outcomes() {
    static N: Iterations = Iterations::new();
    check("oneshot, 2 sends and a drop", &N, outcomes(Flaw::None));
}

#[test]
#[ignore = "child of oneshot_lost_wakeup_is_caught"]
fn child_oneshot_lost_wakeup() {
    support::check_pct(outcomes(Flaw::LostWakeup), ITERATIONS, PCT_DEPTH);
}

#[test]
fn oneshot_lost_wakeup_is_caught() {
    expect_child_failure("child_oneshot_lost_wakeup", "deadlock");
}

#[test]
#[ignore = "child of oneshot_close_lost_on_drop_is_caught"]
fn child_oneshot_close_lost_on_drop() {
    support::check_pct(outcomes(Flaw::CloseLostOnDrop), ITERATIONS, PCT_DEPTH);
}

#[test]
fn oneshot_close_lost_on_drop_is_caught() {
    expect_child_failure("child_oneshot_close_lost_on_drop", "deadlock");
}
