//! loom model checks of the asset service's admission control. The oracle
//! is memory, not a count of creations: the bytes the service charges for
//! chunks and read buffers (metered by the world's probe) must stay within
//! the modelled machine's memory, a constant of each model that is the same
//! for the pre-fix and the fixed service. The fixed service holds over the
//! bounded space, gives every permit back on the cancel and error paths, and
//! never creates a file twice; the pre-fix service (creations gated by the
//! reader permit only) and every test-only flaw are caught.
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
use support::{expect_caught, expect_caught_recorded, expect_holds_recorded, poll_once};
use support::{Expect, Iterations};
use world::{
    check_memory, check_quiescent, check_rejection, install_meter, world, Behaviour, TestClient,
    BAD_KEY, ITEM_BYTES, OOM_MESSAGE,
};

/// The bug these models are records of, and its oracle.
const BUG: &str = "oom-unbounded-creation";
const ORACLES: &[(&str, &str)] = &[("oom", OOM_MESSAGE)];

/// Items per chunk and per file: one chunk per creation (plus the empty
/// fetch that finds the end), to keep the state space small.
const CHUNK_ITEMS: usize = 2;
const FILE_ITEMS: u64 = 2;
/// One creation's chunk.
const CHUNK_BYTES: u64 = CHUNK_ITEMS as u64 * ITEM_BYTES;

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    if std::env::var("LOOM_MAX_PREEMPTIONS").is_err() {
        b.preemption_bound = Some(3);
    }
    b
}

fn expect(caught: bool, model: &str) -> Expect {
    let e = if caught {
        Expect::caught("loom", BUG, "oom")
    } else {
        Expect::holds("loom", BUG, "oom")
    };
    let bound = builder()
        .preemption_bound
        .map_or_else(|| "none".to_string(), |b| b.to_string());
    e.config("preemption_bound", bound).config("model", model)
}

/// Two requests create two missing files at once on a machine that holds
/// one creation's chunk and a half (`permits = 0`: the pre-fix). A
/// rejection is a 503 with Retry-After; at least one was served; the bytes
/// held stay within the machine; everything is back at the end.
fn two_creations(permits: usize, flaw: Flaw, iters: &'static Iterations) {
    let machine_bytes = CHUNK_BYTES * 3 / 2;
    builder().check(move || {
        iters.tick();
        let (_probe, meter) = install_meter();
        let w = Arc::new(world(permits, CHUNK_ITEMS, FILE_ITEMS, flaw, &[]));
        let w2 = Arc::clone(&w);
        let a = thread::spawn(move || {
            let c = TestClient::new(Behaviour::Instant);
            block_on(w2.svc.get("a", &c))
        });
        let c = TestClient::new(Behaviour::Instant);
        let rb = block_on(w.svc.get("b", &c));
        let ra = a.join().unwrap();
        check_memory(&meter, machine_bytes);
        check_rejection(&ra);
        check_rejection(&rb);
        assert!(ra.is_ok() || rb.is_ok(), "both rejected: {ra:?} {rb:?}");
        check_quiescent(&w, Some(&meter), &["a", "b"]);
    });
}

#[test]
fn fixed_two_creations_one_permit() {
    static N: Iterations = Iterations::new();
    let e = expect(false, "2 creations vs 1 permit");
    expect_holds_recorded(
        e,
        "loom: admission fixed, 2 creations vs 1 permit",
        &N,
        || two_creations(1, Flaw::None, &N),
    );
}

#[test]
fn pre_fix_two_creations_run_out_of_memory() {
    static N: Iterations = Iterations::new();
    let e = expect(true, "2 creations, pre-fix");
    expect_caught_recorded(
        e,
        "loom: admission pre-fix (reader gate only), 2 creations",
        &N,
        ORACLES,
        || two_creations(0, Flaw::None, &N),
    );
}

#[test]
fn release_before_free_is_caught_by_memory() {
    static N: Iterations = Iterations::new();
    expect_caught(
        "loom",
        "admission flaw ReleaseBeforeFree",
        &N,
        OOM_MESSAGE,
        || two_creations(1, Flaw::ReleaseBeforeFree, &N),
    );
}

#[test]
fn no_create_permit_is_caught_by_memory() {
    static N: Iterations = Iterations::new();
    expect_caught(
        "loom",
        "admission flaw NoCreatePermit",
        &N,
        OOM_MESSAGE,
        || two_creations(1, Flaw::NoCreatePermit, &N),
    );
}

/// Three requests create three missing files with two create permits on a
/// machine that holds two and a half chunks.
fn three_creations(permits: usize, iters: &'static Iterations) {
    let machine_bytes = CHUNK_BYTES * 5 / 2;
    builder().check(move || {
        iters.tick();
        let (_probe, meter) = install_meter();
        let w = Arc::new(world(permits, CHUNK_ITEMS, FILE_ITEMS, Flaw::None, &[]));
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
        check_memory(&meter, machine_bytes);
        results.iter().for_each(check_rejection);
        assert!(results.iter().any(Result::is_ok), "all rejected");
        check_quiescent(&w, Some(&meter), &["a", "b", "c"]);
    });
}

#[test]
fn fixed_three_creations_two_permits() {
    static N: Iterations = Iterations::new();
    let e = expect(false, "3 creations vs 2 permits");
    expect_holds_recorded(
        e,
        "loom: admission fixed, 3 creations vs 2 permits",
        &N,
        || three_creations(2, &N),
    );
}

#[test]
fn pre_fix_three_creations_run_out_of_memory() {
    static N: Iterations = Iterations::new();
    let e = expect(true, "3 creations, pre-fix");
    expect_caught_recorded(
        e,
        "loom: admission pre-fix, 3 creations",
        &N,
        ORACLES,
        || three_creations(0, &N),
    );
}

/// A request for an existing file runs next to a creation, with one
/// create permit: neither may be rejected (the fast path takes no create
/// permit, so the creation always finds it free).
fn fast_path_vs_creation(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let w = Arc::new(world(1, CHUNK_ITEMS, FILE_ITEMS, flaw, &["x"]));
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
        check_quiescent(&w, None, &["a"]);
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
/// third request fails upstream, on a machine of one chunk and a half.
/// Afterwards every permit, byte, chunk and draft is back.
fn cancel_and_error(flaw: Flaw, iters: &'static Iterations) {
    let machine_bytes = CHUNK_BYTES * 3 / 2;
    builder().check(move || {
        iters.tick();
        let (_probe, meter) = install_meter();
        let w = Arc::new(world(1, CHUNK_ITEMS, FILE_ITEMS, flaw, &[]));
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
        check_memory(&meter, machine_bytes);
        check_rejection(&rb);
        assert!(
            matches!(
                bad,
                Err(GetError::Upstream(_)) | Err(GetError::Overloaded { .. })
            ),
            "{bad:?}"
        );
        check_quiescent(&w, Some(&meter), &["a", "b"]);
    });
}

#[test]
fn fixed_permits_return_on_cancel_and_error() {
    static N: Iterations = Iterations::new();
    let e = expect(false, "cancel + error + creation");
    expect_holds_recorded(
        e,
        "loom: admission fixed, cancel + error + creation",
        &N,
        || cancel_and_error(Flaw::None, &N),
    );
}

#[test]
fn leak_on_cancel_is_caught() {
    static N: Iterations = Iterations::new();
    expect_caught(
        "loom",
        "admission flaw LeakOnCancel",
        &N,
        "create permit leaked",
        || cancel_and_error(Flaw::LeakOnCancel, &N),
    );
}

/// Two requests for the same missing file with two permits: it is
/// created once; the other request reads it back or gets a 503.
fn same_key(flaw: Flaw, iters: &'static Iterations) {
    builder().check(move || {
        iters.tick();
        let w = Arc::new(world(2, CHUNK_ITEMS, FILE_ITEMS, flaw, &[]));
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
        check_quiescent(&w, None, &["k"]);
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
