//! loom model checks of the asset service's admission control: the fixed
//! service is proven over the bounded space; the pre-fix service and every
//! test-only flaw are caught.
//!
//! * never more creations (or chunk memory) than `create_permits_max`
//!   allows, and a rejection is a 503 with `Retry-After: 1`;
//! * permits, chunk memory, pending chunks and drafts all come back on
//!   success, on error and when a request is dropped mid-creation;
//! * the exists fast path never takes a create permit;
//! * a file is never created twice.
//!
//! The preemption bound comes from `LOOM_MAX_PREEMPTIONS` (default 3).
#![cfg(faultline_loom)]

mod support;
#[path = "support/admission_world.rs"]
mod world;

use faultline::admission::{Flaw, GetError, Served};
use faultline::sync::Arc;
use loom::future::block_on;
use loom::thread;
use support::{expect_caught, poll_once, Iterations};
use world::{
    check_bounds_and_quiescence, check_rejection, world, Behaviour, Checks, TestClient, BAD_KEY,
};

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    if std::env::var("LOOM_MAX_PREEMPTIONS").is_err() {
        b.preemption_bound = Some(3);
    }
    b
}

/// Two requests create two missing files at once with one create permit
/// (`permits = 0`: the pre-fix, unlimited). At most one creation (one
/// chunk) at a time; a rejected one got a 503 with Retry-After; at least
/// one was served; everything is back at the end.
fn two_creations(permits: usize, flaw: Flaw, checks: Checks, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let w = Arc::new(world(permits, 2, 4, flaw, &[]));
        let w2 = Arc::clone(&w);
        let a = thread::spawn(move || {
            let c = TestClient::new(Behaviour::Instant);
            block_on(w2.svc.get("a", &c))
        });
        let c = TestClient::new(Behaviour::Instant);
        let rb = block_on(w.svc.get("b", &c));
        let ra = a.join().unwrap();
        check_rejection(&ra);
        check_rejection(&rb);
        assert!(ra.is_ok() || rb.is_ok(), "both rejected: {ra:?} {rb:?}");
        check_bounds_and_quiescence(&w, 1, &["a", "b"], checks);
    });
}

#[test]
fn fixed_two_creations_one_permit() {
    static N: Iterations = Iterations::new();
    two_creations(1, Flaw::None, Checks::All, &N);
    N.report("loom", "admission fixed, 2 creations vs 1 permit");
}

#[test]
fn pre_fix_runs_creations_beyond_the_cap() {
    static N: Iterations = Iterations::new();
    expect_caught(
        "loom",
        "admission pre-fix (unlimited creations)",
        &N,
        "more creations than create_permits_max",
        || two_creations(0, Flaw::None, Checks::Creations, &N),
    );
}

#[test]
fn release_before_free_is_caught() {
    static N: Iterations = Iterations::new();
    expect_caught(
        "loom",
        "admission flaw ReleaseBeforeFree",
        &N,
        "more creations than create_permits_max",
        || two_creations(1, Flaw::ReleaseBeforeFree, Checks::Creations, &N),
    );
}

/// Three requests create three missing files with two create permits:
/// never more than two creations (two chunks) at once.
fn three_creations(permits: usize, checks: Checks, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let w = Arc::new(world(permits, 2, 2, Flaw::None, &[]));
        let spawned: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|key| {
                let w = Arc::clone(&w);
                thread::spawn(move || {
                    let c = TestClient::new(Behaviour::Instant);
                    block_on(w.svc.get(key, &c))
                })
            })
            .collect();
        let c = TestClient::new(Behaviour::Instant);
        let mut results = vec![block_on(w.svc.get("c", &c))];
        results.extend(spawned.into_iter().map(|t| t.join().unwrap()));
        results.iter().for_each(check_rejection);
        assert!(results.iter().any(Result::is_ok), "all rejected");
        check_bounds_and_quiescence(&w, 2, &["a", "b", "c"], checks);
    });
}

#[test]
fn fixed_three_creations_two_permits() {
    static N: Iterations = Iterations::new();
    three_creations(2, Checks::All, &N);
    N.report("loom", "admission fixed, 3 creations vs 2 permits");
}

#[test]
fn pre_fix_runs_three_creations_at_once() {
    static N: Iterations = Iterations::new();
    expect_caught(
        "loom",
        "admission pre-fix, 3 creations",
        &N,
        "more creations than create_permits_max",
        || three_creations(0, Checks::Creations, &N),
    );
}

/// A request for an existing file runs next to a creation, with one
/// create permit: neither may be rejected (the fast path takes no create
/// permit, so the creation always finds it free).
fn fast_path_vs_creation(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let w = Arc::new(world(1, 2, 2, flaw, &["x"]));
        let w2 = Arc::clone(&w);
        let a = thread::spawn(move || {
            let c = TestClient::new(Behaviour::Instant);
            block_on(w2.svc.get("a", &c))
        });
        let c = TestClient::new(Behaviour::Instant);
        let rx = block_on(w.svc.get("x", &c));
        let ra = a.join().unwrap();
        assert!(
            matches!(rx, Ok(Served::Existing { .. })),
            "fast path rejected: {rx:?}"
        );
        assert!(
            matches!(ra, Ok(Served::Created { .. })),
            "creation rejected although no other creation ran: {ra:?}"
        );
        check_bounds_and_quiescence(&w, 1, &["a"], Checks::All);
    });
}

#[test]
fn fixed_fast_path_never_takes_a_create_permit() {
    static N: Iterations = Iterations::new();
    fast_path_vs_creation(Flaw::None, &N);
    N.report("loom", "admission fixed, fast path vs creation");
}

#[test]
fn permit_before_exists_is_caught() {
    static N: Iterations = Iterations::new();
    expect_caught(
        "loom",
        "admission flaw PermitBeforeExists",
        &N,
        "rejected",
        || fast_path_vs_creation(Flaw::PermitBeforeExists, &N),
    );
}

/// One request is dropped mid-creation (its client stalls, so it parks
/// holding its permit and its chunk), while another creation runs and a
/// third request fails upstream. Bounds hold throughout; afterwards every
/// permit, byte, chunk and draft is back.
fn cancel_and_error(flaw: Flaw, checks: Checks, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let w = Arc::new(world(1, 2, 4, flaw, &[]));
        let w2 = Arc::clone(&w);
        let dropped = thread::spawn(move || {
            let c = TestClient::new(Behaviour::Stuck);
            let mut get = Box::pin(w2.svc.get("a", &c));
            let _ = poll_once(&mut get);
            drop(get);
        });
        let c = TestClient::new(Behaviour::Instant);
        let rb = block_on(w.svc.get("b", &c));
        let bad = block_on(w.svc.get(BAD_KEY, &c));
        dropped.join().unwrap();
        check_rejection(&rb);
        assert!(
            matches!(
                bad,
                Err(GetError::Upstream(_)) | Err(GetError::Overloaded { .. })
            ),
            "{bad:?}"
        );
        check_bounds_and_quiescence(&w, 1, &["a", "b"], checks);
    });
}

#[test]
fn fixed_permits_return_on_cancel_and_error() {
    static N: Iterations = Iterations::new();
    cancel_and_error(Flaw::None, Checks::All, &N);
    N.report("loom", "admission fixed, cancel + error + creation");
}

#[test]
fn leak_on_cancel_is_caught() {
    static N: Iterations = Iterations::new();
    expect_caught(
        "loom",
        "admission flaw LeakOnCancel",
        &N,
        "create permit leaked",
        || cancel_and_error(Flaw::LeakOnCancel, Checks::All, &N),
    );
}

#[test]
fn release_before_free_is_caught_by_the_memory_bound_alone() {
    static N: Iterations = Iterations::new();
    expect_caught(
        "loom",
        "admission flaw ReleaseBeforeFree, memory bound only",
        &N,
        "chunk memory above permits x chunk bytes",
        || cancel_and_error(Flaw::ReleaseBeforeFree, Checks::Memory, &N),
    );
}

/// Two requests for the same missing file with two permits: it is
/// created once; the other request reads it back or gets a 503.
fn same_key(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let w = Arc::new(world(2, 2, 2, flaw, &[]));
        let w2 = Arc::clone(&w);
        let a = thread::spawn(move || {
            let c = TestClient::new(Behaviour::Instant);
            block_on(w2.svc.get("k", &c))
        });
        let c = TestClient::new(Behaviour::Instant);
        let r1 = block_on(w.svc.get("k", &c));
        let r0 = a.join().unwrap();
        check_rejection(&r0);
        check_rejection(&r1);
        check_bounds_and_quiescence(&w, 2, &["k"], Checks::All);
    });
}

#[test]
fn fixed_never_creates_a_file_twice() {
    static N: Iterations = Iterations::new();
    same_key(Flaw::None, &N);
    N.report("loom", "admission fixed, 2 requests for one missing file");
}

#[test]
fn recheck_before_claim_is_caught() {
    static N: Iterations = Iterations::new();
    expect_caught(
        "loom",
        "admission flaw RecheckBeforeClaim",
        &N,
        "created twice",
        || same_key(Flaw::RecheckBeforeClaim, &N),
    );
}
