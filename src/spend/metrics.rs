//! Metrics with the usual names of a spend-buffering proxy: which instance
//! holds the flush lock, the in-memory and shared queue sizes, and counters
//! of what went wrong. Cheap atomics, sampled by the simulator and printed
//! by the CLI.

use crate::sync::{AtomicU64, Mutex, Ordering};
use std::collections::BTreeMap;

/// A snapshot: metric name -> value.
pub type MetricsSnapshot = BTreeMap<&'static str, u64>;

/// Counters and gauges shared by every instance of one deployment.
#[derive(Default)]
pub struct Metrics {
    /// Instance holding the flush lock, plus one (0: nobody).
    pub pod_lock_holder: AtomicU64,
    /// Items in the shared queue (as last observed by whoever samples it).
    pub redis_spend_update_queue_size: AtomicU64,
    /// Pushes to the shared queue (or, pre-fix, direct upserts) that
    /// succeeded.
    pub spend_update_pushes_total: AtomicU64,
    /// Operations refused with "no connection available".
    pub queue_connection_pool_exhausted_total: AtomicU64,
    /// Other queue-store failures.
    pub queue_store_errors_total: AtomicU64,
    /// Batches committed (applied).
    pub spend_flushes_total: AtomicU64,
    /// Queue items committed.
    pub spend_flush_items_total: AtomicU64,
    /// Commits refused by the fencing token.
    pub spend_fenced_commits_total: AtomicU64,
    /// Batches skipped as already committed.
    pub spend_duplicate_batches_total: AtomicU64,
    /// In-flight batches recovered from a dead or stalled flusher.
    pub spend_recovered_batches_total: AtomicU64,
    /// Transactions aborted as deadlock victims.
    pub ledger_deadlocks_total: AtomicU64,
    in_memory: Mutex<BTreeMap<u32, u64>>,
}

impl Metrics {
    /// Adds one to `counter`.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets instance `instance`'s in-memory queue size (rows held).
    pub fn set_in_memory(&self, instance: u32, rows: u64) {
        self.in_memory.with(|m| m.insert(instance, rows));
    }

    /// Sets the shared queue size.
    pub fn set_queue(&self, items: u64) {
        self.redis_spend_update_queue_size
            .store(items, Ordering::Relaxed);
    }

    /// Sets the lock holder (`None`: nobody).
    pub fn set_holder(&self, instance: Option<u32>) {
        let v = instance.map_or(0, |i| u64::from(i) + 1);
        self.pod_lock_holder.store(v, Ordering::Relaxed);
    }

    /// Clears the lock holder if it is still `instance` (another instance
    /// may have taken the lease since).
    pub fn clear_holder(&self, instance: u32) {
        let mine = u64::from(instance) + 1;
        let _ =
            self.pod_lock_holder
                .compare_exchange(mine, 0, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Instance `instance`'s in-memory queue size (rows held).
    pub fn in_memory(&self, instance: u32) -> u64 {
        self.in_memory
            .with(|m| m.get(&instance).copied().unwrap_or(0))
    }

    /// Every metric by name; `in_memory_spend_update_queue_size` is the sum
    /// over instances.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let in_memory: u64 = self.in_memory.with(|m| m.values().sum());
        BTreeMap::from([
            ("pod_lock_holder", g(&self.pod_lock_holder)),
            ("in_memory_spend_update_queue_size", in_memory),
            (
                "redis_spend_update_queue_size",
                g(&self.redis_spend_update_queue_size),
            ),
            (
                "spend_update_pushes_total",
                g(&self.spend_update_pushes_total),
            ),
            (
                "queue_connection_pool_exhausted_total",
                g(&self.queue_connection_pool_exhausted_total),
            ),
            (
                "queue_store_errors_total",
                g(&self.queue_store_errors_total),
            ),
            ("spend_flushes_total", g(&self.spend_flushes_total)),
            ("spend_flush_items_total", g(&self.spend_flush_items_total)),
            (
                "spend_fenced_commits_total",
                g(&self.spend_fenced_commits_total),
            ),
            (
                "spend_duplicate_batches_total",
                g(&self.spend_duplicate_batches_total),
            ),
            (
                "spend_recovered_batches_total",
                g(&self.spend_recovered_batches_total),
            ),
            ("ledger_deadlocks_total", g(&self.ledger_deadlocks_total)),
        ])
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.snapshot()).finish()
    }
}
