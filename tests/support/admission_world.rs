//! A small world for the asset service's checks (loom, shuttle, default):
//! an upstream of fixed-size items, clients that accept at once, never,
//! after a yield, or that leave, a memory meter installed as the world's
//! probe, and the oracles every model shares. Included with
//! `#[path = "support/admission_world.rs"] mod world;`.
//!
//! The memory oracle is the property the fix protects: the bytes the
//! service holds (what it charges to the meter for chunks and read
//! buffers, the same charges the simulator meters) stay within the
//! modelled machine's memory, a constant of each model that does not
//! depend on the configuration under test.
#![allow(dead_code)]

use faultline::admission::{
    AdmissionConfig, AssetService, Client, ClientGone, Flaw, GetError, MemFileStore, Served,
    Upstream,
};
use faultline::probe::{self, FaultPoint, LockClass, Probe};
use faultline::sync::{Arc, AtomicBool, DynArc, Ordering};
// Counters the models only read after every thread has ended: plain std
// atomics, so the model checkers do not branch on them.
use faultline::BoxFuture;
use std::panic::Location;
use std::sync::atomic::AtomicU64;

/// Bytes of every item.
pub const ITEM_BYTES: u64 = 100;
/// The key whose upstream read fails.
pub const BAD_KEY: &str = "bad";
/// Items of an existing file.
pub const EXISTING_ITEMS: u64 = 3;

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
    /// holding its chunks until it is dropped.
    Stuck,
    /// Accepts every send after yielding once (any executor: the future
    /// wakes itself and returns `Pending` once), so other tasks run while
    /// a chunk is in flight.
    Yielding,
    /// Accepts every send at once, also after it left: a dead connection
    /// whose writes have not failed yet (socket and pipe buffers). Only the
    /// request's context (`is_gone`) tells the service.
    DeadSocket,
}

/// A test client; [`TestClient::leave`] disconnects it.
pub struct TestClient {
    pub behaviour: Behaviour,
    pub gone: AtomicBool,
    pub sent: AtomicU64,
    /// Bytes sent after it left.
    pub sent_after_gone: AtomicU64,
}

impl TestClient {
    pub fn new(behaviour: Behaviour) -> Self {
        TestClient {
            behaviour,
            gone: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            sent_after_gone: AtomicU64::new(0),
        }
    }

    pub fn leave(&self) {
        self.gone.store(true, Ordering::SeqCst);
    }
}

impl Client for TestClient {
    fn send(&self, bytes: u64) -> BoxFuture<Result<(), ClientGone>> {
        let gone = self.gone.load(Ordering::SeqCst);
        if gone && self.behaviour != Behaviour::DeadSocket {
            return Box::pin(async { Err(ClientGone) });
        }
        if gone {
            self.sent_after_gone.fetch_add(bytes, Ordering::SeqCst);
        }
        match self.behaviour {
            Behaviour::Instant | Behaviour::DeadSocket => {
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

/// The world's memory meter: the bytes the service charges (chunks, read
/// buffers) now and at their peak.
#[derive(Default)]
pub struct Meter {
    pub now: AtomicU64,
    pub peak: AtomicU64,
}

struct MeterProbe(std::sync::Arc<Meter>);

impl Probe for MeterProbe {
    fn fault(&self, _: FaultPoint) -> bool {
        false
    }
    fn draw(&self, _: u64) -> u64 {
        0
    }
    fn mem_charge(&self, _: &'static str, bytes: u64) {
        let now = self.0.now.fetch_add(bytes, Ordering::SeqCst) + bytes;
        self.0.peak.fetch_max(now, Ordering::SeqCst);
    }
    fn mem_release(&self, bytes: u64) {
        self.0.now.fetch_sub(bytes, Ordering::SeqCst);
    }
    fn lock_acquired(&self, _: LockClass, _: &'static Location<'static>) {}
    fn lock_released(&self, _: LockClass) {}
    fn blocking_wait(&self, _: u64) {}
}

/// Installs a fresh memory meter as this thread's probe until the guard
/// drops. loom and shuttle run every modelled thread as a coroutine on the
/// test's OS thread, so one installation meters them all.
pub fn install_meter() -> (probe::Installed, std::sync::Arc<Meter>) {
    let meter = std::sync::Arc::new(Meter::default());
    let guard = probe::install(std::rc::Rc::new(MeterProbe(std::sync::Arc::clone(&meter))));
    (guard, meter)
}

/// The service under test and its file store.
pub struct World {
    pub svc: Arc<AssetService>,
    pub files: MemFileStore,
    pub upstream: DynArc<Items>,
}

/// The configuration a model runs: `permits` create permits (`0`: the
/// pre-fix service) with `chunk_items` items per chunk, one fetch at a time
/// (small state spaces), and `flaw`.
pub fn model_config(permits: usize, chunk_items: usize, flaw: Flaw) -> AdmissionConfig {
    let base = if permits == 0 {
        AdmissionConfig::pre_fix()
    } else {
        AdmissionConfig::fixed(permits)
    };
    AdmissionConfig {
        chunk_items,
        fetch_concurrency: 1,
        pending_chunks_max: if permits == 0 { 0 } else { 2 },
        flaw,
        ..base
    }
}

/// A world with [`model_config`], files of `items` items, and the files
/// `existing` already published.
pub fn world(
    permits: usize,
    chunk_items: usize,
    items: u64,
    flaw: Flaw,
    existing: &[&str],
) -> World {
    world_with(model_config(permits, chunk_items, flaw), items, existing)
}

/// A world over the service `cfg`.
pub fn world_with(cfg: AdmissionConfig, items: u64, existing: &[&str]) -> World {
    world_timed(cfg, items, existing, None)
}

/// [`world_with`], the service timing its reader-permit waits on `clock`
/// when one is given ([`AssetService::with_clock`]).
pub fn world_timed(
    cfg: AdmissionConfig,
    items: u64,
    existing: &[&str],
    clock: Option<DynArc<dyn faultline::clock::Clock>>,
) -> World {
    let files = MemFileStore::new();
    for key in existing {
        files.insert(key, EXISTING_ITEMS * ITEM_BYTES);
    }
    let upstream = DynArc::new(Items::new(items));
    let mut svc = AssetService::new(
        cfg,
        DynArc::new(files.clone()),
        DynArc::clone(&upstream) as DynArc<dyn Upstream>,
    );
    if let Some(clock) = clock {
        svc = svc.with_clock(clock);
    }
    let svc = Arc::new(svc);
    World {
        svc,
        files,
        upstream,
    }
}

/// The memory oracle's message (its tag is `oom`).
pub const OOM_MESSAGE: &str = "memory above the modelled machine's limit";

/// The bytes the meter saw at their peak stay within `limit_bytes`.
pub fn check_memory(meter: &Meter, limit_bytes: u64) {
    let peak = meter.peak.load(Ordering::SeqCst);
    assert!(
        peak <= limit_bytes,
        "{OOM_MESSAGE}: {peak} bytes held > {limit_bytes}"
    );
}

/// Once every request has ended: every permit back (none leaked on the
/// cancel and error paths), no chunk or memory held, no draft left, and
/// (for a service that claims keys) no file published twice.
pub fn check_quiescent(w: &World, meter: Option<&Meter>, keys: &[&str]) {
    let st = w.svc.stats();
    let cfg = w.svc.config();
    if cfg.create_permits_max > 0 && !cfg.creations_take_reader_permit {
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
    if let Some(m) = meter {
        assert_eq!(m.now.load(Ordering::SeqCst), 0, "memory still held");
    }
    assert_eq!(st.chunk_bytes_now, 0, "chunk memory still held");
    assert_eq!(st.chunks_held_now, 0, "chunk still held");
    assert_eq!(st.creations_now, 0, "creation still counted");
    assert_eq!(st.fetches_now, 0, "fetch still counted");
    assert_eq!(
        w.files.open_drafts(),
        0,
        "draft neither published nor discarded"
    );
    for key in keys.iter().filter(|_| cfg.claim_keys) {
        assert!(
            w.files.publications(key) <= 1,
            "file {key} created twice ({} publications)",
            w.files.publications(key)
        );
    }
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
