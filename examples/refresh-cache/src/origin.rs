//! The origin the cache sits in front of: a versioned key-value store that
//! takes time to answer (a database, another service).

use faultline::clock::Clock;
use faultline::sync::{Arc, DynArc, Mutex};
use faultline::BoxFuture;
use std::collections::BTreeMap;
use std::time::Duration;

/// A value as the origin holds it: its data and the version the origin
/// gave it (versions grow with every write).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    /// The version the origin assigned at the write (1, 2, ...).
    pub version: u64,
    /// The data.
    pub data: String,
}

/// The store of record. Implemented over a real database in production;
/// [`MemOrigin`] in tests.
pub trait Origin: Send + Sync {
    /// The current value of `key`, if any.
    fn get(&self, key: &str) -> BoxFuture<Option<Versioned>>;

    /// Writes `data` under `key`; returns the version it was given.
    fn put(&self, key: &str, data: String) -> BoxFuture<u64>;
}

/// An in-memory origin with a network's latency: each call waits for its
/// request to arrive, reads or writes, and waits for its answer to come
/// back. Both waits are drawn from the run's seeded randomness
/// (`faultline::probe::draw`: seeded in the simulator, zero outside it), so
/// a simulated run sees the answers arrive in many different orders.
pub struct MemOrigin {
    clock: DynArc<dyn Clock>,
    latency_ms_max: u64,
    data: Arc<Mutex<Store>>,
}

#[derive(Default)]
struct Store {
    values: BTreeMap<String, Versioned>,
    version_last: u64,
}

impl MemOrigin {
    /// An empty origin whose calls take up to `2 * latency_ms_max` (one
    /// wait each way) on `clock`.
    pub fn new(clock: DynArc<dyn Clock>, latency_ms_max: u64) -> MemOrigin {
        MemOrigin {
            clock,
            latency_ms_max,
            data: Arc::new(Mutex::new(Store::default())),
        }
    }

    /// The newest version written so far (0 before the first write).
    pub fn version_last(&self) -> u64 {
        self.data.with(|s| s.version_last)
    }

    /// One network hop's delay.
    fn hop(&self) -> Duration {
        Duration::from_millis(faultline::probe::draw(self.latency_ms_max + 1))
    }
}

impl Origin for MemOrigin {
    fn get(&self, key: &str) -> BoxFuture<Option<Versioned>> {
        let (clock, data, key) = (
            DynArc::clone(&self.clock),
            Arc::clone(&self.data),
            key.to_string(),
        );
        let (there, back) = (self.hop(), self.hop());
        Box::pin(async move {
            clock.sleep(there).await;
            let value = data.with(|s| s.values.get(&key).cloned());
            clock.sleep(back).await;
            value
        })
    }

    fn put(&self, key: &str, value: String) -> BoxFuture<u64> {
        let (clock, data, key) = (
            DynArc::clone(&self.clock),
            Arc::clone(&self.data),
            key.to_string(),
        );
        let (there, back) = (self.hop(), self.hop());
        Box::pin(async move {
            clock.sleep(there).await;
            let version = data.with(|s| {
                s.version_last += 1;
                let v = Versioned {
                    version: s.version_last,
                    data: value,
                };
                s.values.insert(key, v);
                s.version_last
            });
            clock.sleep(back).await;
            version
        })
    }
}
