//! The asset service, one request at a time (the concurrent checks are in
//! loom_admission, shuttle_admission and the subtree-oom scenario): the
//! fast path, the immediate 503 with `Retry-After: 1`, a duplicate creation
//! answered 503 and then served from the file, cancellation checked every
//! 256 items, the pending-chunk cap's clear error, and error paths that
//! give everything back. Each check's flawed twin is caught.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

mod support;
#[path = "support/admission_world.rs"]
mod world;

use faultline::admission::{
    AdmissionConfig, AssetService, Flaw, GetError, MemFileStore, Served, Upstream,
    CANCEL_CHECK_ITEMS,
};
use faultline::retry::{CallError, ServiceUnavailable};
use faultline::sync::{block_on, Arc, DynArc};
use faultline::BoxFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use support::poll_once;
use world::{check_quiescent, world, Behaviour, TestClient, ITEM_BYTES};

/// `key`'s request for a client that never accepts, polled once: it holds
/// a create permit and a chunk until dropped.
fn parked<'a>(
    w: &'a world::World,
    key: &'a str,
    stuck: &'a TestClient,
) -> std::pin::Pin<Box<impl std::future::Future<Output = Result<Served, GetError>> + 'a>> {
    let mut get = Box::pin(w.svc.get(key, stuck));
    assert!(poll_once(&mut get).is_pending());
    get
}

#[test]
fn the_fast_path_streams_an_existing_file_without_a_create_permit() {
    let w = world(1, 4, 8, Flaw::None, &["x"]);
    let stuck = TestClient::new(Behaviour::Stuck);
    let creating = parked(&w, "a", &stuck);
    assert_eq!(w.svc.create_permits_available(), 0);
    let c = TestClient::new(Behaviour::Instant);
    let r = block_on(w.svc.get("x", &c));
    assert_eq!(
        r,
        Ok(Served::Existing {
            bytes: 3 * ITEM_BYTES
        })
    );
    drop(creating);
    check_quiescent(&w);
}

#[test]
fn a_full_service_answers_503_with_retry_after_at_once() {
    let w = world(1, 4, 8, Flaw::None, &[]);
    let stuck = TestClient::new(Behaviour::Stuck);
    let creating = parked(&w, "a", &stuck);
    let c = TestClient::new(Behaviour::Instant);
    let mut second = Box::pin(w.svc.get("b", &c));
    // Non-blocking: answered on its first poll, holding nothing.
    let r = match poll_once(&mut second) {
        std::task::Poll::Ready(r) => r,
        std::task::Poll::Pending => panic!("a rejected request waited"),
    };
    let e = r.unwrap_err();
    assert_eq!(
        e,
        GetError::Overloaded {
            retry_after_ms: 1_000
        }
    );
    assert_eq!(
        (e.status(), e.retry_after_header().as_deref()),
        (503, Some("1"))
    );
    assert_eq!(
        e.into_call_error(0),
        CallError::Unavailable(ServiceUnavailable {
            retry_after_ms: Some(1_000)
        })
    );
    assert_eq!(w.svc.stats().rejected, 1);
    assert_eq!(
        w.svc.create_permits_available(),
        0,
        "the parked creation keeps its permit"
    );
    drop(creating);
    check_quiescent(&w);
}

#[test]
fn a_duplicate_creation_gets_503_then_the_finished_file() {
    let w = world(2, 4, 8, Flaw::None, &[]);
    let stuck = TestClient::new(Behaviour::Stuck);
    let first = parked(&w, "k", &stuck);
    let c = TestClient::new(Behaviour::Instant);
    let dup = block_on(w.svc.get("k", &c));
    assert_eq!(
        dup,
        Err(GetError::Overloaded {
            retry_after_ms: 1_000
        })
    );
    drop(first);
    let made = block_on(w.svc.get("k", &c));
    assert_eq!(
        made,
        Ok(Served::Created {
            items: 8,
            bytes: 8 * ITEM_BYTES
        })
    );
    let again = block_on(w.svc.get("k", &c));
    assert_eq!(
        again,
        Ok(Served::Existing {
            bytes: 8 * ITEM_BYTES
        })
    );
    assert_eq!(w.files.publications("k"), 1);
    check_quiescent(&w);
}

/// Items of [`ITEM_BYTES`]; the client leaves once item `leave_at` has
/// been handed out.
struct LeavingUpstream {
    client: Arc<TestClient>,
    leave_at: u64,
    read: AtomicU64,
}

impl Upstream for LeavingUpstream {
    fn read_items(
        &self,
        _: &str,
        from: u64,
        count_max: usize,
    ) -> BoxFuture<Result<Vec<u64>, String>> {
        let n = 4_096u64.saturating_sub(from).min(count_max as u64);
        self.read.fetch_add(n, Ordering::SeqCst);
        if from + n > self.leave_at {
            self.client.leave();
        }
        Box::pin(async move { Ok(vec![ITEM_BYTES; n as usize]) })
    }
}

/// A client leaves after item 300 of a 1,024-item chunk: the service reads
/// at most 256 more items, answers `ClientGone` and holds nothing.
fn leave_mid_chunk(flaw: Flaw) -> Result<(), String> {
    let client = Arc::new(TestClient::new(Behaviour::Instant));
    let up = DynArc::new(LeavingUpstream {
        client: Arc::clone(&client),
        leave_at: 300,
        read: AtomicU64::new(0),
    });
    let files = MemFileStore::new();
    let cfg = AdmissionConfig {
        chunk_items: 1_024,
        flaw,
        ..AdmissionConfig::fixed(1)
    };
    let svc = AssetService::new(
        cfg,
        DynArc::new(files.clone()),
        DynArc::clone(&up) as DynArc<dyn Upstream>,
    );
    let r = block_on(svc.get("k", &*client));
    assert_eq!(r, Err(GetError::ClientGone));
    let st = svc.stats();
    assert_eq!(
        (
            st.chunk_bytes_now,
            st.pending_chunks_now,
            files.open_drafts()
        ),
        (0, 0, 0)
    );
    assert_eq!(svc.create_permits_available(), 1);
    let read = up.read.load(Ordering::SeqCst);
    let allowed = 300 + CANCEL_CHECK_ITEMS as u64;
    if read > allowed {
        return Err(format!(
            "read {read} items although the client left after item 300 (allowed {allowed})"
        ));
    }
    println!("{flaw:?}: client left after item 300, service read {read} items");
    Ok(())
}

#[test]
fn cancellation_is_checked_every_256_items() {
    leave_mid_chunk(Flaw::None).unwrap();
}

#[test]
fn checking_once_per_chunk_is_caught() {
    let e = leave_mid_chunk(Flaw::CancelCheckPerChunk).unwrap_err();
    println!("caught: {e}");
    assert!(e.contains("read 1024 items"), "{e}");
}

fn ten_chunks(flaw: Flaw) -> (Result<Served, GetError>, usize) {
    let w = world(4, 4, 40, flaw, &[]);
    let c = TestClient::new(Behaviour::Instant);
    let r = block_on(w.svc.get("big", &c));
    check_quiescent(&w);
    (r, w.svc.stats().pending_chunks_peak)
}

#[test]
fn the_pending_chunk_map_stays_at_one_chunk_per_creation() {
    let (r, peak) = ten_chunks(Flaw::None);
    assert_eq!(
        r,
        Ok(Served::Created {
            items: 40,
            bytes: 40 * ITEM_BYTES
        })
    );
    assert_eq!(peak, 1);
}

#[test]
fn a_producer_running_ahead_aborts_with_a_clear_error() {
    let (r, peak) = ten_chunks(Flaw::ProducerRunsAhead);
    let e = r.unwrap_err();
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
    assert_eq!(peak, 8);
    println!("caught: {text}");
}

#[test]
fn errors_give_everything_back_and_are_not_503() {
    let w = world(1, 4, 8, Flaw::None, &[]);
    let c = TestClient::new(Behaviour::Instant);
    let up = block_on(w.svc.get(world::BAD_KEY, &c)).unwrap_err();
    assert_eq!((up.status(), up.retry_after_header()), (502, None));
    assert!(matches!(
        up.clone().into_call_error(0),
        CallError::Other(GetError::Upstream(_))
    ));
    w.files.set_fail_writes(true);
    let files = block_on(w.svc.get("a", &c)).unwrap_err();
    assert!(matches!(files, GetError::Files(_)), "{files:?}");
    assert_eq!(files.status(), 500);
    check_quiescent(&w);
    assert!(!w.files.exists("a"));
}

#[test]
fn leak_on_cancel_is_caught_on_an_error_path_too() {
    let w = world(1, 4, 8, Flaw::LeakOnCancel, &[]);
    let c = TestClient::new(Behaviour::Instant);
    let _ = block_on(w.svc.get(world::BAD_KEY, &c));
    assert_eq!(
        w.svc.create_permits_available(),
        0,
        "the flaw should leak the permit"
    );
}
