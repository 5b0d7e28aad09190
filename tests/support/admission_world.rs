//! A small world for the asset service's checks (loom, shuttle, default):
//! an upstream of fixed-size items, clients that accept at once, never, or
//! leave, and the oracles every model shares. Included with
//! `#[path = "support/admission_world.rs"] mod world;`.
#![allow(dead_code)]

use faultline::admission::{
    AdmissionConfig, AssetService, Client, ClientGone, Flaw, GetError, MemFileStore, Served,
    Upstream,
};
use faultline::sync::{Arc, AtomicBool, DynArc, Ordering};
// Counters the models only read after every thread has ended: plain std
// atomics, so the model checkers do not branch on them.
use faultline::BoxFuture;
use std::sync::atomic::AtomicU64;

/// Bytes of every item.
pub const ITEM_BYTES: u64 = 100;
/// The key whose upstream read fails.
pub const BAD_KEY: &str = "bad";

/// Items of fixed size; `items` per file; reading [`BAD_KEY`] fails.
/// Counts the items it handed out.
pub struct Items {
    pub items: u64,
    pub read: AtomicU64,
}

impl Items {
    pub fn new(items: u64) -> Self {
        Items {
            items,
            read: AtomicU64::new(0),
        }
    }
}

impl Upstream for Items {
    fn read_items(
        &self,
        key: &str,
        from: u64,
        count_max: usize,
    ) -> BoxFuture<Result<Vec<u64>, String>> {
        let r = if key == BAD_KEY {
            Err("upstream down".to_string())
        } else {
            let n = self.items.saturating_sub(from).min(count_max as u64);
            self.read.fetch_add(n, Ordering::SeqCst);
            Ok(vec![ITEM_BYTES; n as usize])
        };
        Box::pin(async move { r })
    }
}

/// How a test client behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Accepts every send at once.
    Instant,
    /// Never accepts a send (a client that stalls): the request parks
    /// holding its chunk until it is dropped.
    Stuck,
    /// Accepts every send after yielding once (any executor: the future
    /// wakes itself and returns `Pending` once), so other tasks run while
    /// a chunk is in flight.
    Yielding,
}

/// A test client; [`TestClient::leave`] disconnects it.
pub struct TestClient {
    pub behaviour: Behaviour,
    pub gone: AtomicBool,
    pub sent: AtomicU64,
}

impl TestClient {
    pub fn new(behaviour: Behaviour) -> Self {
        TestClient {
            behaviour,
            gone: AtomicBool::new(false),
            sent: AtomicU64::new(0),
        }
    }

    pub fn leave(&self) {
        self.gone.store(true, Ordering::SeqCst);
    }
}

impl Client for TestClient {
    fn send(&self, bytes: u64) -> BoxFuture<Result<(), ClientGone>> {
        if self.gone.load(Ordering::SeqCst) {
            return Box::pin(async { Err(ClientGone) });
        }
        match self.behaviour {
            Behaviour::Instant => {
                self.sent.fetch_add(bytes, Ordering::SeqCst);
                Box::pin(async { Ok(()) })
            }
            Behaviour::Stuck => Box::pin(std::future::pending()),
            Behaviour::Yielding => {
                self.sent.fetch_add(bytes, Ordering::SeqCst);
                Box::pin(YieldOnce(false))
            }
        }
    }

    fn is_gone(&self) -> bool {
        self.gone.load(Ordering::SeqCst)
    }
}

/// `Pending` once (after waking itself), then `Ok(())`.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = Result<(), ClientGone>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        if self.0 {
            return std::task::Poll::Ready(Ok(()));
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// The service under test and its file store.
pub struct World {
    pub svc: Arc<AssetService>,
    pub files: MemFileStore,
    pub upstream: DynArc<Items>,
}

/// A world with `permits` create permits (0 = the pre-fix, unlimited),
/// `chunk_items` items per chunk, files of `items` items, `flaw`, and the
/// files `existing` already published.
pub fn world(
    permits: usize,
    chunk_items: usize,
    items: u64,
    flaw: Flaw,
    existing: &[&str],
) -> World {
    let files = MemFileStore::new();
    for key in existing {
        files.insert(key, 3 * ITEM_BYTES);
    }
    let upstream = DynArc::new(Items::new(items));
    let cfg = AdmissionConfig {
        chunk_items,
        flaw,
        ..if permits == 0 {
            AdmissionConfig::pre_fix()
        } else {
            AdmissionConfig::fixed(permits)
        }
    };
    let svc = Arc::new(AssetService::new(
        cfg,
        DynArc::new(files.clone()),
        DynArc::clone(&upstream) as DynArc<dyn Upstream>,
    ));
    World {
        svc,
        files,
        upstream,
    }
}

/// Which oracles a model applies at its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checks {
    /// Every one, memory bound first.
    All,
    /// Only the memory bound (to show it catches a flaw by itself).
    Memory,
    /// Only the creation bound (to show it catches a flaw by itself).
    Creations,
}

/// Chunk memory never above `cap` chunks (permits x chunk bytes).
pub fn check_memory_bound(w: &World, cap: usize) {
    let peak = w.svc.stats().chunk_bytes_peak;
    let chunk_bytes = w.svc.config().chunk_items as u64 * ITEM_BYTES;
    assert!(
        peak <= cap as u64 * chunk_bytes,
        "chunk memory above permits x chunk bytes: {peak} > {cap} x {chunk_bytes}"
    );
}

/// Never more creations at once than `cap`.
pub fn check_creation_bound(w: &World, cap: usize) {
    let peak = w.svc.stats().creations_peak;
    assert!(
        peak <= cap,
        "more creations than create_permits_max: {peak} > {cap}"
    );
}

/// The admission oracles over a finished model: never more chunk memory
/// than `cap` chunks, never more creations than `cap`, and once every
/// request has ended, every permit back, no memory, no chunk, no draft, no
/// file published twice.
pub fn check_bounds_and_quiescence(w: &World, cap: usize, keys: &[&str], checks: Checks) {
    match checks {
        Checks::Memory => return check_memory_bound(w, cap),
        Checks::Creations => return check_creation_bound(w, cap),
        Checks::All => {}
    }
    check_memory_bound(w, cap);
    check_creation_bound(w, cap);
    check_quiescent(w);
    for key in keys {
        assert!(
            w.files.publications(key) <= 1,
            "file {key} created twice ({} publications)",
            w.files.publications(key)
        );
    }
}

/// Everything a finished request held is back.
pub fn check_quiescent(w: &World) {
    let st = w.svc.stats();
    let cfg = w.svc.config();
    if cfg.create_permits_max > 0 {
        assert_eq!(
            w.svc.create_permits_available(),
            cfg.create_permits_max,
            "create permit leaked"
        );
    }
    assert_eq!(
        w.svc.read_permits_available(),
        cfg.read_permits_max,
        "read permit leaked"
    );
    assert_eq!(st.chunk_bytes_now, 0, "chunk memory still held");
    assert_eq!(st.pending_chunks_now, 0, "chunk left in the pending map");
    assert_eq!(st.creations_now, 0, "creation still counted");
    assert_eq!(
        w.files.open_drafts(),
        0,
        "draft neither published nor discarded"
    );
}

/// A rejection is a 503 with `Retry-After: 1`.
pub fn check_rejection(r: &Result<Served, GetError>) {
    if let Err(e @ GetError::Overloaded { .. }) = r {
        assert_eq!(e.status(), 503);
        assert_eq!(
            e.retry_after_header().as_deref(),
            Some("1"),
            "503 without Retry-After: 1"
        );
    }
}
