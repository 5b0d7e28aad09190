//! The asset service, one request (or a few parked ones) at a time; the
//! concurrent checks are in loom_admission, shuttle_admission and the
//! subtree-oom scenario.
//!
//! One check per layer of the incident's fix, each of that layer's own
//! property, each watched failing on the fixed service with that one layer
//! removed (a planted [`Flaw`]) and the other layers kept:
//!
//! | layer | property checked | flaw that removes it |
//! |---|---|---|
//! | create permit | bytes held by parked creations <= permits x one creation's bytes | `NoCreatePermit` |
//! | 503 at once, Retry-After: 1 | a creation over the cap is answered 503 + `Retry-After: 1` on its first poll | `WaitsForPermit`, `RetryAfterZero` |
//! | claim the key before the recheck | a file another request finishes between a request's recheck and its next step is published once, the other request answered 503 | `RecheckBeforeClaim` |
//! | exists check before the permit | an existing file is served while every create permit is held | `PermitBeforeExists` |
//! | pending-chunk cap | under a runaway producer a creation's pending map stays <= 2 x concurrency and its memory within its window; it aborts with a clear error | `ProducerRunsAheadUncapped` |
//! | cancellation every 256 items | at most 256 items written to a client after it left, from any point it leaves at (and exactly 256 from the worst one) | `CancelCheckPerChunk`, `CancelCheckOffByOne` |
//!
//! plus the paths that must give everything back (cancel, upstream error,
//! file-store error: `LeakOnCancel`), the read-back of a file that appeared,
//! the pre-fix reader gate, and the counters (`Stats`) after a 503, a
//! creation, a served file and a reader-permit timeout. Every future is driven by a bounded poll
//! loop: a flaw that makes a request wait forever fails, not hangs.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

mod support;
#[path = "support/admission_world.rs"]
mod world;

use faultline::admission::{
    AdmissionConfig, FileError, FileStore, Flaw, GetError, MemFileStore, Served, Upstream,
    CANCEL_CHECK_ITEMS,
};
use faultline::retry::{CallError, ServiceUnavailable};
use faultline::sync::{Arc, DynArc};
use faultline::BoxFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use support::{block_on_bounded, poll_once};
use world::{
    check_quiescent, install_meter, model_config, world, world_with, Behaviour, TestClient,
    ITEM_BYTES,
};

/// Polls a test future may take at most (they depend on no outside event).
const POLLS_MAX: usize = 100_000;

fn run<F: std::future::Future>(fut: F) -> F::Output {
    block_on_bounded(fut, POLLS_MAX)
}

/// `key`'s request for a client that never accepts, polled once: it holds
/// a create permit and its chunks until dropped.
fn parked<'a>(
    w: &'a world::World,
    key: &'a str,
    stuck: &'a TestClient,
) -> std::pin::Pin<Box<impl std::future::Future<Output = Result<Served, GetError>> + 'a>> {
    let mut get = Box::pin(w.svc.get(key, stuck));
    assert!(poll_once(&mut get).is_pending());
    get
}

// ---- layer: create permit ----

/// Parks `requests` creations (stuck clients) on a service with 2 create
/// permits; the bytes held must stay within 2 x what one parked creation
/// holds (measured alone first).
fn create_permit_layer(flaw: Flaw) -> Result<(), String> {
    let one = {
        let (_probe, meter) = install_meter();
        let w = world(2, 4, 40, flaw, &[]);
        let stuck = TestClient::new(Behaviour::Stuck);
        let p = parked(&w, "solo", &stuck);
        let held = meter.now.load(Ordering::SeqCst);
        drop(p);
        held
    };
    let (_probe, meter) = install_meter();
    let w = world(2, 4, 40, flaw, &[]);
    let stuck = TestClient::new(Behaviour::Stuck);
    let keys = ["a", "b", "c", "d", "e"];
    let mut held = Vec::new();
    for key in keys {
        let mut get = Box::pin(w.svc.get(key, &stuck));
        match poll_once(&mut get) {
            Poll::Pending => held.push(get),
            Poll::Ready(r) => assert!(matches!(r, Err(GetError::Overloaded { .. })), "{r:?}"),
        }
    }
    let peak = meter.peak.load(Ordering::SeqCst);
    drop(held);
    check_quiescent(&w, Some(&meter), &keys);
    if peak > 2 * one {
        return Err(format!(
            "{} parked creations hold {peak} bytes > 2 permits x {one} bytes of one creation",
            keys.len()
        ));
    }
    println!("{flaw:?}: one creation {one} B, five requests {peak} B");
    Ok(())
}

#[test]
fn the_create_permit_bounds_the_bytes_of_parked_creations() {
    create_permit_layer(Flaw::None).unwrap();
}

#[test]
fn creations_without_a_create_permit_are_caught_by_the_byte_bound() {
    let e = create_permit_layer(Flaw::NoCreatePermit).unwrap_err();
    println!("caught: {e}");
    assert!(e.contains("5 parked creations hold"), "{e}");
}

// ---- layer: 503 at once with Retry-After: 1 ----

/// A second creation while the only create permit is held: answered on
/// its first poll, 503 with `Retry-After: 1`, holding nothing.
fn rejection_layer(flaw: Flaw) -> Result<(), String> {
    let w = world(1, 4, 8, flaw, &[]);
    let stuck = TestClient::new(Behaviour::Stuck);
    let creating = parked(&w, "a", &stuck);
    let c = TestClient::new(Behaviour::Instant);
    let mut second = Box::pin(w.svc.get("b", &c));
    let e = match poll_once(&mut second) {
        Poll::Pending => return Err("a request over the cap waited instead of a 503".into()),
        Poll::Ready(Ok(s)) => return Err(format!("a request over the cap was served: {s:?}")),
        Poll::Ready(Err(e)) => e,
    };
    let seen = (e.status(), e.retry_after_header());
    if seen != (503, Some("1".to_string())) {
        return Err(format!(
            "a rejection answered {seen:?}, not 503 + Retry-After: 1"
        ));
    }
    if w.svc.create_permits_available() != 0 {
        return Err("the rejection touched the parked creation's permit".into());
    }
    drop(creating);
    check_quiescent(&w, None, &["a", "b"]);
    Ok(())
}

#[test]
fn a_full_service_answers_503_with_retry_after_at_once() {
    rejection_layer(Flaw::None).unwrap();
    let e = GetError::Overloaded {
        retry_after_ms: 1_000,
    };
    assert_eq!(
        e.into_call_error(0),
        CallError::Unavailable(ServiceUnavailable {
            retry_after_ms: Some(1_000)
        })
    );
}

#[test]
fn waiting_for_a_permit_instead_of_503_is_caught() {
    let e = rejection_layer(Flaw::WaitsForPermit).unwrap_err();
    println!("caught: {e}");
    assert!(e.contains("waited"), "{e}");
}

#[test]
fn a_503_saying_retry_after_0_is_caught() {
    let e = rejection_layer(Flaw::RetryAfterZero).unwrap_err();
    println!("caught: {e}");
    assert!(e.contains("not 503 + Retry-After: 1"), "{e}");
}

// ---- layer: exists check before the permit ----

fn exists_layer(flaw: Flaw) -> Result<(), String> {
    let w = world(1, 4, 8, flaw, &["x"]);
    let stuck = TestClient::new(Behaviour::Stuck);
    let creating = parked(&w, "a", &stuck);
    let c = TestClient::new(Behaviour::Instant);
    let r = run(w.svc.get("x", &c));
    drop(creating);
    check_quiescent(&w, None, &["a"]);
    match r {
        Ok(Served::Existing { bytes }) if bytes == 3 * ITEM_BYTES => Ok(()),
        other => Err(format!(
            "an existing file was not served while the create permits were busy: {other:?}"
        )),
    }
}

#[test]
fn the_fast_path_serves_an_existing_file_while_every_create_permit_is_held() {
    exists_layer(Flaw::None).unwrap();
}

#[test]
fn taking_the_permit_before_the_exists_check_is_caught() {
    let e = exists_layer(Flaw::PermitBeforeExists).unwrap_err();
    println!("caught: {e}");
    assert!(e.contains("Overloaded"), "{e}");
}

// ---- layer: pending-chunk cap ----

/// A 40-chunk file created for a client that accepts at once, under the
/// producer regression: the creation must abort with the clear error
/// before its pending map passes 2 x concurrency, and never hold more than
/// its read-ahead window of chunk bytes.
fn pending_cap_layer(flaw: Flaw) -> Result<GetError, String> {
    let (_probe, meter) = install_meter();
    let cfg = AdmissionConfig {
        chunk_items: 4,
        flaw,
        ..AdmissionConfig::fixed(1)
    };
    let w = world_with(cfg, 160, &[]);
    let c = TestClient::new(Behaviour::Instant);
    let r = run(w.svc.get("big", &c));
    check_quiescent(&w, Some(&meter), &["big"]);
    let pending = w.svc.stats().pending_peak;
    let peak = meter.peak.load(Ordering::SeqCst);
    let window_bytes = cfg.window_chunks() as u64 * 4 * ITEM_BYTES;
    let cap = 2 * cfg.fetch_concurrency;
    if pending > cap || peak > window_bytes {
        return Err(format!(
            "one creation's pending map reached {pending} chunks (cap 2 x {} = {cap}) and held {peak} B (window {window_bytes} B): {r:?}",
            cfg.fetch_concurrency
        ));
    }
    Ok(match r {
        Err(e) => e,
        Ok(s) => return Err(format!("the runaway creation was served: {s:?}")),
    })
}

#[test]
fn the_pending_cap_turns_a_runaway_producer_into_a_clear_error() {
    let e = pending_cap_layer(Flaw::ProducerRunsAhead).unwrap();
    assert_eq!(
        e,
        GetError::PendingChunksExceeded {
            pending: 9,
            pending_chunks_max: 8
        }
    );
    let text = e.to_string();
    assert!(
        text.contains("cap 8") && text.contains("scheduling regression"),
        "{text}"
    );
    assert_eq!(e.status(), 500);
    println!("clear error: {text}");
}

#[test]
fn a_runaway_producer_without_the_cap_is_caught() {
    let e = pending_cap_layer(Flaw::ProducerRunsAheadUncapped).unwrap_err();
    println!("caught: {e}");
    assert!(e.contains("pending map reached"), "{e}");
}

#[test]
fn without_the_regression_the_pending_map_stays_small_and_the_file_is_served() {
    let (_probe, meter) = install_meter();
    let cfg = AdmissionConfig {
        chunk_items: 4,
        ..AdmissionConfig::fixed(1)
    };
    let w = world_with(cfg, 160, &[]);
    let c = TestClient::new(Behaviour::Instant);
    let r = run(w.svc.get("big", &c));
    assert_eq!(
        r,
        Ok(Served::Created {
            items: 160,
            bytes: 160 * ITEM_BYTES
        })
    );
    assert!(w.svc.stats().pending_peak <= 1, "{:?}", w.svc.stats());
    check_quiescent(&w, Some(&meter), &["big"]);
}

// ---- layer: cancellation checked every 256 items ----

// ---- layer: claim the key before the recheck ----

/// A file store whose `park_call`-th `size` reads the answer, then waits
/// on `gate` before handing it back (a request stopped between its recheck
/// and what it does next); counts publishes.
struct ParkingSize {
    inner: MemFileStore,
    gate: Arc<faultline::sync::Gate<()>>,
    park_call: u64,
    calls: AtomicU64,
    published: Arc<AtomicU64>,
}

impl FileStore for ParkingSize {
    fn size(&self, key: &str) -> BoxFuture<Result<Option<u64>, FileError>> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let (read, gate) = (self.inner.size(key), Arc::clone(&self.gate));
        let park = call == self.park_call;
        Box::pin(async move {
            let answer = read.await;
            if park {
                drop(gate.lock().await);
            }
            answer
        })
    }
    fn create(&self, key: &str) -> BoxFuture<Result<u64, FileError>> {
        self.inner.create(key)
    }
    fn write(&self, draft: u64, bytes: u64) -> BoxFuture<Result<(), FileError>> {
        self.inner.write(draft, bytes)
    }
    fn publish(&self, draft: u64) -> BoxFuture<Result<(), FileError>> {
        self.published.fetch_add(1, Ordering::SeqCst);
        self.inner.publish(draft)
    }
    fn discard(&self, draft: u64) {
        self.inner.discard(draft);
    }
}

/// Request B for a missing file is stopped just after its recheck (which
/// saw no file); request A for the same file then runs to its end; B goes
/// on. The fixed service claimed the key before B's recheck, so A gets a
/// 503 and the file is published once. Returns the publishes and A's result.
fn claim_layer(flaw: Flaw) -> (u64, Result<Served, GetError>) {
    let gate = Arc::new(faultline::sync::Gate::new(()));
    let published = Arc::new(AtomicU64::new(0));
    let files = ParkingSize {
        inner: MemFileStore::new(),
        gate: Arc::clone(&gate),
        park_call: 2,
        calls: AtomicU64::new(0),
        published: Arc::clone(&published),
    };
    let cfg = AdmissionConfig {
        flaw,
        ..model_config(2, 4, Flaw::None)
    };
    let up = DynArc::new(world::Items::new(8));
    let svc = faultline::admission::AssetService::new(
        cfg,
        DynArc::new(files),
        up as DynArc<dyn Upstream>,
    );
    let held = gate.try_lock().expect("the test holds the gate");
    let (ca, cb) = (
        TestClient::new(Behaviour::Instant),
        TestClient::new(Behaviour::Instant),
    );
    let mut b = Box::pin(svc.get("k", &cb));
    assert!(poll_once(&mut b).is_pending(), "B stops after its recheck");
    let a = run(svc.get("k", &ca));
    drop(held);
    let b = run(b);
    assert!(
        matches!(b, Ok(Served::Created { .. })),
        "{flaw:?}: B: {b:?}"
    );
    assert_eq!(
        svc.create_permits_available(),
        2,
        "{flaw:?}: a permit leaked"
    );
    (published.load(Ordering::SeqCst), a)
}

#[test]
fn a_key_claimed_before_the_recheck_is_created_once() {
    let (published, a) = claim_layer(Flaw::None);
    assert_eq!(published, 1, "the file was created {published} times");
    assert_eq!(
        a,
        Err(GetError::Overloaded {
            retry_after_ms: 1_000
        })
    );
}

#[test]
fn claiming_after_the_recheck_is_caught() {
    let (published, a) = claim_layer(Flaw::RecheckBeforeClaim);
    assert!(matches!(a, Ok(Served::Created { .. })), "{a:?}");
    assert_eq!(published, 2, "RecheckBeforeClaim: created twice");
}

/// The twin moves the claim after the recheck; it does not drop it: a
/// second request for a key being created still gets a 503.
#[test]
fn the_recheck_before_claim_twin_still_claims() {
    let w = world(2, 4, 8, Flaw::RecheckBeforeClaim, &[]);
    let stuck = TestClient::new(Behaviour::Stuck);
    let first = parked(&w, "k", &stuck);
    let c = TestClient::new(Behaviour::Instant);
    let dup = run(w.svc.get("k", &c));
    assert_eq!(
        dup,
        Err(GetError::Overloaded {
            retry_after_ms: 1_000
        })
    );
    drop(first);
    check_quiescent(&w, None, &["k"]);
}

/// A file store that makes the client leave when a write reaches item
/// `leave_at`: the service has checked the client before that block, and
/// finds out only at its next check.
struct LeaveOnWrite {
    inner: MemFileStore,
    client: Arc<TestClient>,
    leave_at_bytes: u64,
    written: AtomicU64,
}

impl FileStore for LeaveOnWrite {
    fn size(&self, key: &str) -> BoxFuture<Result<Option<u64>, FileError>> {
        self.inner.size(key)
    }
    fn create(&self, key: &str) -> BoxFuture<Result<u64, FileError>> {
        self.inner.create(key)
    }
    fn write(&self, draft: u64, bytes: u64) -> BoxFuture<Result<(), FileError>> {
        let after = self.written.fetch_add(bytes, Ordering::SeqCst) + bytes;
        if after > self.leave_at_bytes {
            self.client.leave();
        }
        self.inner.write(draft, bytes)
    }
    fn publish(&self, draft: u64) -> BoxFuture<Result<(), FileError>> {
        self.inner.publish(draft)
    }
    fn discard(&self, draft: u64) {
        self.inner.discard(draft);
    }
}

/// Items the client (a dead socket: its writes keep succeeding) receives
/// after it left at item `leave_at` of a 1,024-item chunk; memory is back
/// to zero when the request ends.
fn items_after_leaving(flaw: Flaw, leave_at: u64) -> u64 {
    let (_probe, meter) = install_meter();
    let client = Arc::new(TestClient::new(Behaviour::DeadSocket));
    let files = LeaveOnWrite {
        inner: MemFileStore::new(),
        client: Arc::clone(&client),
        leave_at_bytes: leave_at * ITEM_BYTES,
        written: AtomicU64::new(0),
    };
    let cfg = AdmissionConfig {
        flaw,
        ..AdmissionConfig::fixed(1)
    };
    let up = DynArc::new(world::Items::new(4_096));
    let svc = faultline::admission::AssetService::new(
        cfg,
        DynArc::new(files),
        up as DynArc<dyn Upstream>,
    );
    let r = run(svc.get("k", &*client));
    assert_eq!(r, Err(GetError::ClientGone), "{flaw:?} leave at {leave_at}");
    assert_eq!(meter.now.load(Ordering::SeqCst), 0, "memory still held");
    assert_eq!(svc.create_permits_available(), 1);
    client.sent_after_gone.load(Ordering::SeqCst) / ITEM_BYTES
}

/// The most items a client receives after leaving, over every item of the
/// first two chunks it can leave at.
fn worst_items_after_leaving(flaw: Flaw) -> (u64, u64) {
    (0..2_048)
        .map(|at| (items_after_leaving(flaw, at), at))
        .max()
        .unwrap_or_default()
}

#[test]
fn at_most_256_items_reach_a_client_after_it_left() {
    let (worst, at) = worst_items_after_leaving(Flaw::None);
    println!("fixed: at most {worst} items after leaving (worst: leaving at item {at})");
    assert!(
        worst <= CANCEL_CHECK_ITEMS as u64,
        "{worst} items after leaving at {at}"
    );
    assert_eq!(
        worst, 256,
        "the bound is tight: leaving right after a check"
    );
}

#[test]
fn checking_the_client_once_per_chunk_is_caught() {
    let (worst, at) = worst_items_after_leaving(Flaw::CancelCheckPerChunk);
    println!("caught: once per chunk: {worst} items after leaving at item {at} (> 256)");
    assert!(worst > 256);
}

#[test]
fn checking_the_client_every_257_items_is_caught() {
    let (worst, at) = worst_items_after_leaving(Flaw::CancelCheckOffByOne);
    println!("caught: every 257 items: {worst} items after leaving at item {at} (> 256)");
    assert_eq!(worst, 257);
}

#[test]
fn the_pre_fix_writes_every_fetched_chunk_to_a_client_that_left() {
    let mut cfg = model_config(0, 1_024, Flaw::None);
    cfg.fetch_concurrency = 4;
    let client = Arc::new(TestClient::new(Behaviour::DeadSocket));
    let files = LeaveOnWrite {
        inner: MemFileStore::new(),
        client: Arc::clone(&client),
        leave_at_bytes: 0,
        written: AtomicU64::new(0),
    };
    let up = DynArc::new(world::Items::new(40_960));
    let svc = faultline::admission::AssetService::new(
        cfg,
        DynArc::new(files),
        up as DynArc<dyn Upstream>,
    );
    assert_eq!(run(svc.get("k", &*client)), Err(GetError::ClientGone));
    let after = client.sent_after_gone.load(Ordering::SeqCst) / ITEM_BYTES;
    println!("pre-fix: {after} items written to a client that left at item 0");
    // Every chunk fetched before it left (one per fetch slot) is written.
    assert_eq!(after, cfg.fetch_concurrency as u64 * 1_024);
}

// ---- paths that give everything back ----

#[test]
fn a_duplicate_creation_gets_503_then_the_finished_file() {
    let w = world(2, 4, 8, Flaw::None, &[]);
    let stuck = TestClient::new(Behaviour::Stuck);
    let first = parked(&w, "k", &stuck);
    let c = TestClient::new(Behaviour::Instant);
    let dup = run(w.svc.get("k", &c));
    assert_eq!(
        dup,
        Err(GetError::Overloaded {
            retry_after_ms: 1_000
        })
    );
    drop(first);
    let made = run(w.svc.get("k", &c));
    assert_eq!(
        made,
        Ok(Served::Created {
            items: 8,
            bytes: 8 * ITEM_BYTES
        })
    );
    let again = run(w.svc.get("k", &c));
    assert_eq!(
        again,
        Ok(Served::Existing {
            bytes: 8 * ITEM_BYTES
        })
    );
    let st = w.svc.stats();
    assert_eq!(
        (st.rejected, st.created, st.served_existing, st.read_back),
        (1, 1, 1, 0),
        "the counters (rejected, created, served existing, read back) say what happened: {st:?}"
    );
    check_quiescent(&w, None, &["k"]);
}

/// A request for an existing file while the only reader permit is held
/// waits `read_permit_wait_ms` on the service's clock, then gets a 503
/// with `Retry-After`, counted as a reader timeout and a rejection.
#[test]
fn a_reader_waiting_past_its_limit_gets_503_and_is_counted() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let cfg = AdmissionConfig {
            read_permits_max: 1,
            ..model_config(1, 4, Flaw::None)
        };
        let clock = DynArc::new(faultline::clock::TokioClock::new());
        let w = world::world_timed(cfg, 8, &["x"], Some(clock));
        let stuck = TestClient::new(Behaviour::Stuck);
        let holder = parked(&w, "x", &stuck);
        assert_eq!(
            w.svc.read_permits_available(),
            0,
            "the holder has the permit"
        );
        let c = TestClient::new(Behaviour::Instant);
        let waited = w.svc.get("x", &c).await.unwrap_err();
        assert_eq!(
            (waited.status(), waited.retry_after_header()),
            (503, Some("1".into()))
        );
        let st = w.svc.stats();
        assert_eq!(
            (st.reader_timeouts, st.rejected),
            (1, 1),
            "(reader timeouts, rejected): {st:?}"
        );
        drop(holder);
        check_quiescent(&w, None, &["x"]);
    });
}

#[test]
fn the_incident_fix_creates_a_file_being_created_again() {
    let mut cfg = AdmissionConfig::incident_fix();
    cfg.chunk_items = 4;
    let w = world_with(cfg, 8, &[]);
    let stuck = TestClient::new(Behaviour::Stuck);
    let first = parked(&w, "k", &stuck);
    let c = TestClient::new(Behaviour::Instant);
    let second = run(w.svc.get("k", &c));
    assert!(matches!(second, Ok(Served::Created { .. })), "{second:?}");
    assert_eq!(w.svc.stats().creations_peak, 2);
    drop(first);
    check_quiescent(&w, None, &["k"]);
    println!("incident-fix: a second request for a file being created creates it again (no per-key claim; the fixed service answers 503)");
}

#[test]
fn errors_give_everything_back_and_are_not_503() {
    let (_probe, meter) = install_meter();
    let w = world(1, 4, 8, Flaw::None, &[]);
    let c = TestClient::new(Behaviour::Instant);
    let up = run(w.svc.get(world::BAD_KEY, &c)).unwrap_err();
    assert_eq!((up.status(), up.retry_after_header()), (502, None));
    assert!(matches!(
        up.clone().into_call_error(0),
        CallError::Other(GetError::Upstream(_))
    ));
    w.files.set_fail_writes(true);
    let files = run(w.svc.get("a", &c)).unwrap_err();
    assert!(matches!(files, GetError::Files(_)), "{files:?}");
    assert_eq!(files.status(), 500);
    check_quiescent(&w, Some(&meter), &["a"]);
    assert!(!w.files.exists("a"));
}

/// A parked creation dropped, then an upstream error: the permit must be
/// back after each.
fn permit_back_after_cancel_and_error(flaw: Flaw) -> Result<(), String> {
    let w = world(1, 4, 8, flaw, &[]);
    let stuck = TestClient::new(Behaviour::Stuck);
    drop(parked(&w, "a", &stuck));
    if w.svc.create_permits_available() != 1 {
        return Err("create permit leaked by a dropped request".into());
    }
    let c = TestClient::new(Behaviour::Instant);
    let _ = run(w.svc.get(world::BAD_KEY, &c));
    if w.svc.create_permits_available() != 1 {
        return Err("create permit leaked by an upstream error".into());
    }
    Ok(())
}

#[test]
fn no_permit_leaks_on_cancel_or_error() {
    permit_back_after_cancel_and_error(Flaw::None).unwrap();
}

#[test]
fn a_permit_leaked_on_cancel_is_caught() {
    let e = permit_back_after_cancel_and_error(Flaw::LeakOnCancel).unwrap_err();
    println!("caught: {e}");
}

#[test]
fn the_pre_fix_gates_creations_by_the_reader_permit_only() {
    let mut cfg = model_config(0, 4, Flaw::None);
    cfg.read_permits_max = 2;
    let w = world_with(cfg, 8, &["x"]);
    let stuck = TestClient::new(Behaviour::Stuck);
    let a = parked(&w, "a", &stuck);
    let b = parked(&w, "b", &stuck);
    assert_eq!(w.svc.stats().creations_now, 2);
    // Without a clock, a third request waits for a reader permit; an
    // existing file waits too (one gate for both paths).
    let c = TestClient::new(Behaviour::Instant);
    let mut x = Box::pin(w.svc.get("x", &c));
    assert!(
        poll_once(&mut x).is_pending(),
        "the fast path shares the gate"
    );
    drop(a);
    assert!(matches!(
        poll_once(&mut x),
        Poll::Ready(Ok(Served::Existing { .. }))
    ));
    drop(b);
    check_quiescent(&w, None, &["a", "b"]);
}
