//! [`Cache`]: a read-through cache with refresh-ahead in front of an
//! [`Origin`], invalidated by its own writes.
//!
//! * `get`: a fresh entry is served as is; an entry older than
//!   `refresh_after` is served and refreshed by a background task; a missing
//!   or expired entry is loaded from the origin and stored (a *fill*).
//! * `put`: writes the origin, then invalidates the key.
//!
//! **The race (stale set).** A load reads the origin, and only later
//! stores what it read. If a `put` writes the origin and invalidates the key
//! in between, the load stores the value from *before* the write, after the
//! invalidation that was meant to remove it: the cache now serves old data
//! to readers who started after the write returned, until the entry is
//! refreshed. This is the "stale set" of memcache deployments (Nishtala et
//! al., *Scaling Memcache at Facebook*, NSDI 2013); refresh-ahead makes it
//! more likely, since a refresh is a load that nobody waits for.
//!
//! **The fix (leased fill).** Each key has a generation, bumped by every
//! invalidation. A load notes the generation before it reads the origin,
//! and its fill stores only if the generation has not moved.

use crate::origin::{Origin, Versioned};
use faultline::clock::Clock;
use faultline::sched::Scheduler;
use faultline::sync::{Arc, DynArc, Mutex};
use std::collections::BTreeMap;
use std::time::Duration;

/// How a load stores what it read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fill {
    /// Pre-fix: a load stores whatever it read, even when a write
    /// invalidated the key while it was reading (stale sets).
    Unconditional,
    /// Fixed (the default): a load stores only when no invalidation of the
    /// key happened since it began (the key's generation is unchanged).
    #[default]
    Leased,
}

/// The cache's settings.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// An entry older than this is served and refreshed in the background.
    /// Default 10 s.
    pub refresh_after: Duration,
    /// An entry older than this is not served: the read loads from the
    /// origin. Default 60 s.
    pub ttl: Duration,
    /// Keys tracked at most; a load of a new key when the cache is full is
    /// served but not stored. Default 10,000.
    pub keys_max: usize,
    /// How loads store. Default [`Fill::Leased`].
    pub fill: Fill,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            refresh_after: Duration::from_secs(10),
            ttl: Duration::from_secs(60),
            keys_max: 10_000,
            fill: Fill::Leased,
        }
    }
}

/// A read-through, refresh-ahead cache. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    origin: DynArc<dyn Origin>,
    clock: DynArc<dyn Clock>,
    sched: DynArc<dyn Scheduler>,
    cfg: CacheConfig,
    state: Mutex<BTreeMap<String, Slot>>,
}

/// One key's cache state. A slot outlives its entry, so its generation
/// never restarts.
#[derive(Default)]
struct Slot {
    entry: Option<Entry>,
    /// Bumped by every invalidation.
    generation: u64,
    /// A background refresh of this key is running.
    refreshing: bool,
}

struct Entry {
    value: Versioned,
    filled_ns: u64,
}

/// What a lookup found.
enum Found {
    Fresh(Versioned),
    /// Served as is; refresh it in the background from `generation`.
    Refresh(Versioned, u64),
    /// Already being refreshed.
    Aging(Versioned),
    /// Load it; the fill is leased on `generation`.
    Miss(u64),
}

impl Cache {
    /// A cache in front of `origin`, on `clock`, starting refreshes on
    /// `sched`.
    pub fn new(
        origin: DynArc<dyn Origin>,
        clock: DynArc<dyn Clock>,
        sched: DynArc<dyn Scheduler>,
        cfg: CacheConfig,
    ) -> Cache {
        Cache {
            inner: Arc::new(Inner {
                origin,
                clock,
                sched,
                cfg,
                state: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// The value of `key`: from the cache when it holds one younger than
    /// the TTL, else from the origin (`None`: the origin has no such key).
    ///
    /// # Cancel safety
    /// Cancel safe: a load dropped before it finishes stores nothing.
    pub async fn get(&self, key: &str) -> Option<Versioned> {
        match self.lookup(key) {
            Found::Fresh(v) | Found::Aging(v) => Some(v),
            Found::Refresh(v, generation) => {
                self.start_refresh(key, generation);
                Some(v)
            }
            Found::Miss(generation) => {
                let value = self.inner.origin.get(key).await?;
                self.fill(key, generation, &value);
                Some(value)
            }
        }
    }

    /// Writes `data` to the origin under `key`, then invalidates the key;
    /// returns the version the origin gave it. Once it returns, every
    /// `get` that starts sees this write or a newer one.
    ///
    /// # Cancel safety
    /// Not cancel safe: dropped after the origin took the write but before
    /// the invalidation, the cache may serve the older value until it is
    /// refreshed.
    pub async fn put(&self, key: &str, data: String) -> u64 {
        let version = self.inner.origin.put(key, data).await;
        self.invalidate(key);
        version
    }

    /// Forgets the cached value of `key`.
    pub fn invalidate(&self, key: &str) {
        let keys_max = self.inner.cfg.keys_max;
        self.inner.state.with(|slots| {
            // A key with no slot yet gets one: a load of it may be reading
            // the origin right now, and its fill must see this
            // invalidation. (A full cache cannot store that fill anyway.)
            if !slots.contains_key(key) && slots.len() >= keys_max {
                return;
            }
            let slot = slots.entry(key.to_string()).or_default();
            slot.entry = None;
            slot.generation += 1;
        });
    }

    fn lookup(&self, key: &str) -> Found {
        let now_ns = self.inner.clock.now_ns();
        let cfg = &self.inner.cfg;
        self.inner.state.with(|slots| {
            let Some(slot) = slots.get_mut(key) else {
                return Found::Miss(0);
            };
            let Some(entry) = &slot.entry else {
                return Found::Miss(slot.generation);
            };
            let age = Duration::from_nanos(now_ns.saturating_sub(entry.filled_ns));
            if age >= cfg.ttl {
                Found::Miss(slot.generation)
            } else if age < cfg.refresh_after {
                Found::Fresh(entry.value.clone())
            } else if slot.refreshing {
                Found::Aging(entry.value.clone())
            } else {
                slot.refreshing = true;
                Found::Refresh(entry.value.clone(), slot.generation)
            }
        })
    }

    /// Stores `value` as `key`'s entry, if the fill mode allows it.
    fn fill(&self, key: &str, generation: u64, value: &Versioned) {
        let now_ns = self.inner.clock.now_ns();
        let cfg = &self.inner.cfg;
        self.inner.state.with(|slots| {
            if !slots.contains_key(key) && slots.len() >= cfg.keys_max {
                return;
            }
            let slot = slots.entry(key.to_string()).or_default();
            if cfg.fill == Fill::Leased && slot.generation != generation {
                return; // a write invalidated the key while we were reading
            }
            slot.entry = Some(Entry {
                value: value.clone(),
                filled_ns: now_ns,
            });
        });
    }

    /// Reloads `key` in a background task; the fill is leased on
    /// `generation`.
    fn start_refresh(&self, key: &str, generation: u64) {
        let cache = self.clone();
        let key = key.to_string();
        // Detached: the handle is dropped, the refresh runs on.
        let _detached = self.inner.sched.spawn(
            "cache.refresh",
            Box::pin(async move {
                let _done = Refreshing {
                    cache: &cache,
                    key: &key,
                };
                if let Some(value) = cache.inner.origin.get(&key).await {
                    cache.fill(&key, generation, &value);
                }
            }),
        );
    }
}

/// Clears a key's `refreshing` mark when its refresh ends, however it ends
/// (done, or dropped by a crash or shutdown).
struct Refreshing<'a> {
    cache: &'a Cache,
    key: &'a str,
}

impl Drop for Refreshing<'_> {
    fn drop(&mut self) {
        self.cache.inner.state.with(|slots| {
            if let Some(slot) = slots.get_mut(self.key) {
                slot.refreshing = false;
            }
        });
    }
}
