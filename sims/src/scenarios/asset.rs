//! The asset service (service 2) wired into the simulator, shared by the
//! `subtree-oom` and `retry-storm` scenarios (not a scenario itself): slow
//! clients, an upstream whose items follow a load's size distribution, a
//! slow file store, and the caller-side view of an answer (HTTP status and
//! `Retry-After` header, read back by the retry helper).

use faultline::admission::load::Arrival;
use faultline::admission::{
    AdmissionConfig, AssetService, Client, ClientGone, GetError, MemFileStore, Upstream,
};
use faultline::probe::{self, FaultKind};
use faultline::retry::CallError;
use faultline::sim::{invariant_failed, metric_max, metric_set, sample, SimHandle};
use faultline::sync::DynArc;
use faultline::BoxFuture;
use std::borrow::Borrow;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Weak;
use std::time::Duration;

/// How fast the file store writes, bytes per second.
pub const FILE_WRITE_BYTES_PER_S: u64 = 200_000_000;
/// How long one upstream read (of at most 256 items) takes, ms.
pub const UPSTREAM_READ_MS: u64 = 1;
/// The fault point of an upstream read (an injected error is a 502).
pub const UPSTREAM_SITE: &str = "asset.upstream";

/// A client reading at `bytes_per_s`: a send takes `bytes / bytes_per_s`.
/// It never disconnects (cancellation is checked by the model checks and
/// `tests/admission_service.rs`).
pub struct SimClient {
    h: SimHandle,
    bytes_per_s: u64,
}

impl SimClient {
    /// A client on `h` reading at `bytes_per_s` (at least 1).
    pub fn new(h: SimHandle, bytes_per_s: u64) -> Self {
        SimClient {
            h,
            bytes_per_s: bytes_per_s.max(1),
        }
    }
}

impl Client for SimClient {
    fn send(&self, bytes: u64) -> BoxFuture<Result<(), ClientGone>> {
        let ns = u128::from(bytes) * 1_000_000_000 / u128::from(self.bytes_per_s);
        let sleep = self
            .h
            .sleep(Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX)));
        Box::pin(async move {
            sleep.await;
            Ok(())
        })
    }

    fn is_gone(&self) -> bool {
        false
    }
}

/// Items per file and their sizes, from a load; each read takes
/// [`UPSTREAM_READ_MS`]. When it completes, the creations running right
/// then are recorded (gauge `creations_now`, high-water mark
/// `creations_peak`, series `creations`): the service charges the chunk
/// memory in the same poll, so at an OOM the gauge is exact.
struct SimUpstream {
    h: SimHandle,
    files: ByKey,
    svc: Weak<AssetService>,
    faults: bool,
}

/// A load's arrivals by key (a key that arrives twice: the last one),
/// sharing the load rather than copying its keys.
struct ByKey {
    keys: HashSet<KeyOf, BuildHasherDefault<DefaultHasher>>,
}

impl ByKey {
    fn new(load: &DynArc<[Arrival]>) -> Self {
        let mut keys = HashSet::default();
        keys.reserve(load.len());
        for i in 0..load.len() {
            keys.replace(KeyOf {
                load: DynArc::clone(load),
                i,
            });
        }
        ByKey { keys }
    }

    fn get(&self, key: &str) -> Option<&Arrival> {
        self.keys.get(key).map(KeyOf::arrival)
    }
}

/// Arrival `i` of a shared load, hashed and compared as its key (so a set
/// of them is looked up by `&str`).
struct KeyOf {
    load: DynArc<[Arrival]>,
    i: usize,
}

impl KeyOf {
    fn arrival(&self) -> &Arrival {
        &self.load[self.i]
    }
}

impl Borrow<str> for KeyOf {
    fn borrow(&self) -> &str {
        &self.arrival().key
    }
}

impl Hash for KeyOf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `str` hashes: `Borrow<str>` requires the same hash.
        self.arrival().key.as_str().hash(state);
    }
}

impl PartialEq for KeyOf {
    fn eq(&self, other: &Self) -> bool {
        self.arrival().key == other.arrival().key
    }
}

impl Eq for KeyOf {}

impl Upstream for SimUpstream {
    fn read_items(
        &self,
        key: &str,
        from: u64,
        count_max: usize,
    ) -> BoxFuture<Result<Vec<u64>, String>> {
        let sizes = match self.files.get(key) {
            _ if self.faults && probe::buggify(UPSTREAM_SITE, FaultKind::Error) => {
                Err("injected upstream error".to_string())
            }
            Some(a) => {
                let to = from.saturating_add(count_max as u64).min(a.items);
                Ok(a.item_bytes.sizes(key, from..to))
            }
            None => Err(format!("no items for {key}")),
        };
        let (h, svc) = (self.h, Weak::clone(&self.svc));
        Box::pin(async move {
            h.sleep(Duration::from_millis(UPSTREAM_READ_MS)).await;
            if let Some(svc) = svc.upgrade() {
                let now = svc.stats().creations_now as f64;
                metric_set("creations_now", now);
                metric_max("creations_peak", now);
                sample("creations", now);
            }
            sizes
        })
    }
}

/// The service on `h` with config `adm`, a slow file store holding the
/// load's existing files (at their estimated size) and an upstream of the
/// load's items (sharing `load`); `faults` arms the upstream's error fault
/// point.
pub fn service(
    h: SimHandle,
    adm: AdmissionConfig,
    load: &DynArc<[Arrival]>,
    faults: bool,
) -> DynArc<AssetService> {
    let files = MemFileStore::slow(DynArc::new(h), FILE_WRITE_BYTES_PER_S);
    for a in load.iter().filter(|a| a.exists) {
        files.insert(&a.key, a.file_bytes_estimate());
    }
    DynArc::new_cyclic(|weak| {
        let upstream = SimUpstream {
            h,
            files: ByKey::new(load),
            svc: Weak::clone(weak),
            faults,
        };
        AssetService::new(adm, DynArc::new(files), DynArc::new(upstream))
    })
}

/// The caller's view of a failed answer at `now_ms`: its status and
/// `Retry-After` header read back into the retry helper's error. A 503
/// must carry `Retry-After: 1` (an invariant of the fixed service).
pub fn answer(e: GetError, now_ms: u64) -> CallError<GetError> {
    if e.status() == 503 && e.retry_after_header().as_deref() != Some("1") {
        invariant_failed(format!(
            "a 503 without Retry-After: 1 ({:?})",
            e.retry_after_header()
        ));
    }
    e.into_call_error(now_ms)
}

/// The most memory the fixed service may hold for `load`: every create
/// permit with a chunk of the load's largest items, plus every reader with
/// its buffer.
pub fn memory_bound_bytes(adm: &AdmissionConfig, load: &[Arrival]) -> u64 {
    let item_max = load
        .iter()
        .map(|a| a.item_bytes.max_bytes())
        .max()
        .unwrap_or(0);
    let chunk = adm.chunk_items as u64 * item_max;
    adm.create_permits_max as u64 * chunk + adm.read_permits_max as u64 * adm.read_buffer_bytes
}
