//! shuttle checks of the asset service's admission control with more
//! requests than loom can afford (13 tasks: distinct and duplicate
//! creations, fast-path readers, a request dropped mid-creation, a client
//! that leaves, an upstream failure), under PCT and random schedules. The
//! fixed service holds; the pre-fix service and every test-only flaw are
//! caught.
#![cfg(faultline_shuttle)]

mod support;
#[path = "support/admission_world.rs"]
mod world;

use faultline::admission::{Flaw, GetError, Served};
use faultline::sync::Arc;
use shuttle::future::{block_on, spawn, yield_now};
use support::{counted, expect_caught, poll_once, Iterations};
use world::{
    check_bounds_and_quiescence, check_rejection, world, Behaviour, Checks, TestClient, BAD_KEY,
};

/// Schedules per check: RecheckBeforeClaim, the rarest twin, took 106 to
/// 224 PCT schedules in three runs; 3,000 make a miss vanishingly rare.
const ITERATIONS: usize = 3_000;
/// Schedules per scheduler for the fixed service (cheap: about 0.3 ms each).
const FIXED_ITERATIONS: usize = 10_000;
const PCT_DEPTH: usize = 3;
/// Create permits of the fixed service (and the bound every variant is
/// held to).
const PERMITS: usize = 3;
const CREATED: [&str; 6] = ["c0", "c1", "c2", "c3", "c4", "c5"];

type Answer = (&'static str, Result<Served, GetError>);

fn request(w: &Arc<world::World>, key: &'static str) -> shuttle::future::JoinHandle<Answer> {
    let w = Arc::clone(w);
    spawn(async move {
        let c = TestClient::new(Behaviour::Yielding);
        (key, w.svc.get(key, &c).await)
    })
}

/// A request whose client stalls; it is dropped after two polls.
fn dropped_request(w: &Arc<world::World>) -> shuttle::future::JoinHandle<()> {
    let w = Arc::clone(w);
    spawn(async move {
        let c = TestClient::new(Behaviour::Stuck);
        let mut get = Box::pin(w.svc.get("dropped", &c));
        for _ in 0..2 {
            if poll_once(&mut get).is_ready() {
                break;
            }
            yield_now().await;
        }
    })
}

/// A request whose client leaves while it streams.
fn leaving_request(w: &Arc<world::World>) -> [shuttle::future::JoinHandle<Option<Answer>>; 2] {
    let c = Arc::new(TestClient::new(Behaviour::Yielding));
    let (w, c2) = (Arc::clone(w), Arc::clone(&c));
    let get = spawn(async move { Some(("left", w.svc.get("left", &*c2).await)) });
    let leave = spawn(async move {
        yield_now().await;
        c.leave();
        None
    });
    [get, leave]
}

fn workload(permits: usize, flaw: Flaw, checks: Checks) -> impl Fn() + Send + Sync + 'static {
    move || {
        let w = Arc::new(world(permits, 2, 4, flaw, &["x"]));
        let mut tasks: Vec<_> = CREATED.iter().map(|k| request(&w, k)).collect();
        tasks.extend(["dup", "dup", "x", "x", BAD_KEY].map(|k| request(&w, k)));
        let dropped = dropped_request(&w);
        let leaving = leaving_request(&w);
        let answers: Vec<Answer> = block_on(async move {
            let mut all = Vec::new();
            for t in tasks {
                all.push(t.await.unwrap());
            }
            dropped.await.unwrap();
            for t in leaving {
                all.extend(t.await.unwrap());
            }
            all
        });
        for (key, r) in &answers {
            check_rejection(r);
            match (*key, r) {
                ("x", r) => assert!(
                    matches!(r, Ok(Served::Existing { .. })),
                    "fast path rejected or failed: {r:?}"
                ),
                (BAD_KEY, r) => assert!(
                    matches!(r, Err(GetError::Upstream(_) | GetError::Overloaded { .. })),
                    "{r:?}"
                ),
                (_, Err(GetError::Overloaded { .. })) => {}
                ("left", Err(GetError::ClientGone)) => {}
                (key, Err(e)) => panic!("request {key} failed: {e}"),
                _ => {}
            }
        }
        let mut keys = CREATED.to_vec();
        keys.extend(["dup", "dropped", "left"]);
        check_bounds_and_quiescence(&w, PERMITS, &keys, checks);
    }
}

#[test]
fn fixed_holds_under_pct_and_random() {
    static N: Iterations = Iterations::new();
    support::check_pct(
        counted(&N, workload(PERMITS, Flaw::None, Checks::All)),
        FIXED_ITERATIONS,
        PCT_DEPTH,
    );
    support::check_random(
        counted(&N, workload(PERMITS, Flaw::None, Checks::All)),
        FIXED_ITERATIONS,
    );
    N.report(
        "shuttle (pct + random)",
        "admission fixed, 13 requests vs 3 create permits",
    );
}

/// What a flawed twin runs: the service, its flaw and the oracle that must
/// catch it (with the message it fails with).
struct Twin {
    model: &'static str,
    permits: usize,
    flaw: Flaw,
    checks: Checks,
    expected: &'static str,
}

fn caught_by_pct(t: Twin, n: &'static Iterations) {
    expect_caught("shuttle pct", t.model, n, t.expected, || {
        let w = workload(t.permits, t.flaw, t.checks);
        support::check_pct(counted(n, w), ITERATIONS, PCT_DEPTH)
    });
}

#[test]
fn pre_fix_is_caught() {
    static N: Iterations = Iterations::new();
    caught_by_pct(
        Twin {
            model: "admission pre-fix (unlimited creations)",
            permits: 0,
            flaw: Flaw::None,
            checks: Checks::Creations,
            expected: "more creations than create_permits_max",
        },
        &N,
    );
}

#[test]
fn release_before_free_is_caught() {
    static N: Iterations = Iterations::new();
    caught_by_pct(
        Twin {
            model: "admission flaw ReleaseBeforeFree",
            permits: PERMITS,
            flaw: Flaw::ReleaseBeforeFree,
            checks: Checks::Memory,
            expected: "chunk memory above permits x chunk bytes",
        },
        &N,
    );
}

#[test]
fn leak_on_cancel_is_caught() {
    static N: Iterations = Iterations::new();
    caught_by_pct(
        Twin {
            model: "admission flaw LeakOnCancel",
            permits: PERMITS,
            flaw: Flaw::LeakOnCancel,
            checks: Checks::All,
            expected: "create permit leaked",
        },
        &N,
    );
}

#[test]
fn permit_before_exists_is_caught() {
    static N: Iterations = Iterations::new();
    caught_by_pct(
        Twin {
            model: "admission flaw PermitBeforeExists",
            permits: PERMITS,
            flaw: Flaw::PermitBeforeExists,
            checks: Checks::All,
            expected: "fast path rejected",
        },
        &N,
    );
}

#[test]
fn recheck_before_claim_is_caught() {
    static N: Iterations = Iterations::new();
    caught_by_pct(
        Twin {
            model: "admission flaw RecheckBeforeClaim",
            permits: PERMITS,
            flaw: Flaw::RecheckBeforeClaim,
            checks: Checks::All,
            expected: "created twice",
        },
        &N,
    );
}
