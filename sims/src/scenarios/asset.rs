//! The asset service (service 2) wired into the simulator, shared by the
//! `subtree-oom` and `retry-storm` scenarios (not a scenario itself): slow
//! clients, an upstream whose items follow a load's size distribution and
//! whose every chunk fetch fans out into batch tasks (the incident's
//! `getTxs` fan-out: goroutines), a slow file store, a gauge of the tasks
//! alive (the goroutine count), and the caller-side view of an answer (HTTP
//! status and `Retry-After` header, read back by the retry helper).

use super::load_keys::LoadKeys;
use faultline::admission::load::Arrival;
use faultline::admission::{
    AdmissionConfig, AssetService, Client, ClientGone, FileError, FileStore, GetError,
    MemFileStore, Upstream,
};
use faultline::probe::{self, FaultKind};
use faultline::retry::CallError;
use faultline::sim::{metric_max, metric_set, oracle_failed, sample, SimHandle};
use faultline::sync::{Arc, AtomicBool, AtomicUsize, DynArc, Ordering};
use faultline::BoxFuture;
use std::ops::Range;
use std::sync::Weak;
use std::time::Duration;

/// How fast the file store writes, bytes per second.
pub const FILE_WRITE_BYTES_PER_S: u64 = 500_000_000;
/// Items one fan-out task of a chunk fetch reads (a 10,000-item chunk fans
/// out into 20 tasks: the incident's profile had about 1,900 errgroup
/// goroutines for 103 `getTxs` calls, about 18 each).
pub const FETCH_BATCH_ITEMS: usize = 500;
/// How long one fan-out task takes (a batch from the store), ms.
pub const FETCH_BATCH_MS: u64 = 20;
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

/// Tasks alive that stand for goroutines (callers, fetch fan-out tasks):
/// the gauge `goroutines_now` and the high-water mark
/// `goroutines_peak_sim`.
#[derive(Debug, Default)]
pub struct TaskGauge(AtomicUsize);

/// One task counted by a [`TaskGauge`] while it lives.
pub struct Counted(Arc<TaskGauge>);

impl TaskGauge {
    /// Counts one more task until the returned guard drops.
    pub fn enter(gauge: &Arc<TaskGauge>) -> Counted {
        let now = gauge.0.fetch_add(1, Ordering::Relaxed) + 1;
        metric_set("goroutines_now", now as f64);
        metric_max("goroutines_peak_sim", now as f64);
        Counted(Arc::clone(gauge))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let now = self.0 .0.fetch_sub(1, Ordering::Relaxed) - 1;
        metric_set("goroutines_now", now as f64);
    }
}

/// Items per file and their sizes, from a load. A chunk fetch fans out
/// into one task per [`FETCH_BATCH_ITEMS`] items, each taking
/// [`FETCH_BATCH_MS`]; the fetch completes when all have. When it
/// completes, the creations running right then are recorded (gauge
/// `creations_now`, high-water mark `creations_peak`, series `creations`):
/// the service charges the chunk memory in the same poll, so at an OOM the
/// gauge is exact.
struct SimUpstream {
    h: SimHandle,
    /// The load: a key's items are those of its last arrival.
    keys: Arc<LoadKeys>,
    svc: Weak<AssetService>,
    faults: bool,
    tasks: Arc<TaskGauge>,
}

impl Upstream for SimUpstream {
    fn read_items(
        &self,
        key: &str,
        from: u64,
        count_max: usize,
    ) -> BoxFuture<Result<Vec<u64>, String>> {
        let last = self
            .keys
            .group(key)
            .and_then(|g| self.keys.arrivals(g).next_back());
        let sizes = match last {
            _ if self.faults && probe::buggify(UPSTREAM_SITE, FaultKind::Error) => {
                Err("injected upstream error".to_string())
            }
            Some(a) => {
                let to = from.saturating_add(count_max as u64).min(a.items);
                Ok(a.item_bytes.sizes(key, from..to))
            }
            None => Err(format!("no items for {key}")),
        };
        let n = sizes.as_ref().map_or(1, Vec::len);
        let batches: Vec<_> = (0..n.div_ceil(FETCH_BATCH_ITEMS))
            .map(|_| {
                let (h, counted) = (self.h, TaskGauge::enter(&self.tasks));
                self.h.spawn_on("fetch-batch", async move {
                    h.sleep(Duration::from_millis(FETCH_BATCH_MS)).await;
                    drop(counted);
                })
            })
            .collect();
        let svc = Weak::clone(&self.svc);
        Box::pin(async move {
            for b in batches {
                let _ = b.await;
            }
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

/// The simulated file store: a slow [`MemFileStore`] holding what the run
/// creates, over the load's existing files (at their estimated size; a key
/// that arrives twice: its last existing arrival), which are found in the
/// load rather than copied in. A key the run has started creating is asked
/// of the store first, so every answer is the one a store seeded with the
/// existing files would give.
struct SimFiles {
    keys: Arc<LoadKeys>,
    store: MemFileStore,
    /// Per key group (by its start): whether the run created a draft of it.
    drafted: Vec<AtomicBool>,
}

impl SimFiles {
    fn new(store: MemFileStore, keys: Arc<LoadKeys>) -> Self {
        SimFiles {
            drafted: (0..keys.len()).map(|_| AtomicBool::new(false)).collect(),
            keys,
            store,
        }
    }

    /// The existing file of key group `g`, if the load has one.
    fn existing(&self, g: Range<usize>) -> Option<u64> {
        self.keys
            .arrivals(g)
            .rev()
            .find(|a| a.exists)
            .map(Arrival::file_bytes_estimate)
    }
}

impl FileStore for SimFiles {
    fn size(&self, key: &str) -> BoxFuture<Result<Option<u64>, FileError>> {
        match self.keys.group(key) {
            Some(g) if !self.drafted[g.start].load(Ordering::Relaxed) => {
                let size = self.existing(g);
                Box::pin(async move { Ok(size) })
            }
            g => {
                let existing = g.and_then(|g| self.existing(g));
                let published = self.store.size(key);
                Box::pin(async move { Ok(published.await?.or(existing)) })
            }
        }
    }

    fn create(&self, key: &str) -> BoxFuture<Result<u64, FileError>> {
        if let Some(g) = self.keys.group(key) {
            self.drafted[g.start].store(true, Ordering::Relaxed);
        }
        self.store.create(key)
    }

    fn write(&self, draft: u64, bytes: u64) -> BoxFuture<Result<(), FileError>> {
        self.store.write(draft, bytes)
    }

    fn publish(&self, draft: u64) -> BoxFuture<Result<(), FileError>> {
        self.store.publish(draft)
    }

    fn discard(&self, draft: u64) {
        self.store.discard(draft);
    }
}

/// The service on `h` (its clock too) with config `adm`, a slow file store
/// holding the load's existing files (at their estimated size) and an
/// upstream of the load's items (both sharing `load`) whose fan-out tasks
/// `tasks` counts; `faults` arms the upstream's error fault point.
pub fn service(
    h: SimHandle,
    adm: AdmissionConfig,
    load: &DynArc<[Arrival]>,
    faults: bool,
    tasks: &Arc<TaskGauge>,
) -> DynArc<AssetService> {
    let keys = Arc::new(LoadKeys::new(load));
    let store = MemFileStore::slow(DynArc::new(h), FILE_WRITE_BYTES_PER_S);
    let files = SimFiles::new(store, Arc::clone(&keys));
    DynArc::new_cyclic(|weak| {
        let upstream = SimUpstream {
            h,
            keys,
            svc: Weak::clone(weak),
            faults,
            tasks: Arc::clone(tasks),
        };
        AssetService::new(adm, DynArc::new(files), DynArc::new(upstream)).with_clock(DynArc::new(h))
    })
}

/// The caller's view of a failed answer at `now_ms`: its status and
/// `Retry-After` header read back into the retry helper's error. A 503
/// must carry `Retry-After: 1` (an invariant of the fixed service).
pub fn answer(e: GetError, now_ms: u64) -> CallError<GetError> {
    if e.status() == 503 && e.retry_after_header().as_deref() != Some("1") {
        oracle_failed(
            "retry-after",
            format!(
                "a 503 without Retry-After: 1 ({:?})",
                e.retry_after_header()
            ),
        );
    }
    e.into_call_error(now_ms)
}

/// The most memory a service with create permits may hold for `load`:
/// every create permit with a full read-ahead window of chunks of the
/// load's largest items, plus every reader with its buffer.
pub fn memory_bound_bytes(adm: &AdmissionConfig, load: &[Arrival]) -> u64 {
    let item_max = load
        .iter()
        .map(|a| a.item_bytes.max_bytes())
        .max()
        .unwrap_or(0);
    let chunk = adm.chunk_items as u64 * item_max;
    let creation = adm.window_chunks() as u64 * chunk;
    adm.create_permits_max as u64 * creation + adm.read_permits_max as u64 * adm.read_buffer_bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline::admission::load::ItemBytes;
    use faultline::sync::block_on;

    fn arrival(key: &str, exists: bool, items: u64) -> Arrival {
        Arrival {
            at_ms: 0,
            key: key.into(),
            exists,
            items,
            item_bytes: ItemBytes::Fixed(10),
            client_bytes_per_s: 1,
        }
    }

    /// `SimFiles` answers as the store seeded with every existing arrival
    /// (the last one of a key winning) did, before and after the run
    /// publishes files.
    #[test]
    fn sim_files_answer_as_a_seeded_store() {
        let load: DynArc<[Arrival]> = vec![
            arrival("b", true, 1),
            arrival("a", false, 2),
            arrival("b", true, 3),
            arrival("c", true, 4),
            arrival("c", false, 5),
            arrival("d", false, 6),
        ]
        .into();
        let seeded = MemFileStore::new();
        for a in load.iter().filter(|a| a.exists) {
            seeded.insert(&a.key, a.file_bytes_estimate());
        }
        let files = SimFiles::new(MemFileStore::new(), Arc::new(LoadKeys::new(&load)));
        let check = |files: &SimFiles, seeded: &MemFileStore| {
            for key in ["a", "b", "c", "d", "e"] {
                assert_eq!(
                    block_on(files.size(key)),
                    block_on(seeded.size(key)),
                    "size of {key}"
                );
            }
        };
        check(&files, &seeded);
        assert_eq!(block_on(files.size("b")), Ok(Some(30)));
        for (key, bytes) in [("a", 7), ("c", 8), ("e", 9)] {
            for store in [&files as &dyn FileStore, &seeded] {
                let draft = block_on(store.create(key)).unwrap();
                block_on(store.write(draft, bytes)).unwrap();
                block_on(store.publish(draft)).unwrap();
            }
        }
        let draft = block_on(files.create("d")).unwrap();
        files.discard(draft);
        check(&files, &seeded);
    }
}
