//! [`MemFileStore`]: derived files in memory, optionally slow (a write
//! takes `bytes / write_bytes_per_s` of the clock's time), for model checks
//! and the simulator. Fault points (`admission.file_write`): an injected
//! write error, and on a slow store a latency spike of up to 2 s.

use super::{FileError, FileStore};
use crate::clock::Clock;
use crate::probe::{self, FaultKind};
use crate::sync::{Arc, DynArc, Mutex};
use crate::BoxFuture;
use std::collections::BTreeMap;
use std::time::Duration;

/// Longest injected latency spike of a slow store's write, ms.
const WRITE_SPIKE_MS_MAX: u64 = 2_000;

#[derive(Default)]
struct Files {
    published: BTreeMap<String, u64>,
    drafts: BTreeMap<u64, (String, u64)>,
    next_draft: u64,
    /// Publications per key (an oracle: a file is created once).
    publications: BTreeMap<String, u32>,
    fail_writes: bool,
}

/// Derived files in memory.
#[derive(Clone)]
pub struct MemFileStore {
    files: Arc<Mutex<Files>>,
    slow: Option<(DynArc<dyn Clock>, u64)>,
}

impl Default for MemFileStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemFileStore {
    /// An empty, instant store.
    pub fn new() -> Self {
        MemFileStore {
            files: Arc::new(Mutex::new(Files::default())),
            slow: None,
        }
    }

    /// An empty store whose writes take `bytes / write_bytes_per_s` of
    /// `clock`'s time.
    pub fn slow(clock: DynArc<dyn Clock>, write_bytes_per_s: u64) -> Self {
        MemFileStore {
            files: Arc::new(Mutex::new(Files::default())),
            slow: Some((clock, write_bytes_per_s.max(1))),
        }
    }

    /// Puts a published file of `bytes` in place.
    pub fn insert(&self, key: &str, bytes: u64) {
        self.files
            .with(|f| f.published.insert(key.to_string(), bytes));
    }

    /// Makes every later write fail (or succeed again).
    pub fn set_fail_writes(&self, fail: bool) {
        self.files.with(|f| f.fail_writes = fail);
    }

    /// How often `key` was published.
    pub fn publications(&self, key: &str) -> u32 {
        self.files
            .with(|f| f.publications.get(key).copied().unwrap_or(0))
    }

    /// Drafts not yet published or discarded.
    pub fn open_drafts(&self) -> usize {
        self.files.with(|f| f.drafts.len())
    }

    /// Whether `key` is published.
    pub fn exists(&self, key: &str) -> bool {
        self.files.with(|f| f.published.contains_key(key))
    }
}

impl FileStore for MemFileStore {
    fn size(&self, key: &str) -> BoxFuture<Result<Option<u64>, FileError>> {
        let size = self.files.with(|f| f.published.get(key).copied());
        Box::pin(async move { Ok(size) })
    }

    fn create(&self, key: &str) -> BoxFuture<Result<u64, FileError>> {
        let id = self.files.with(|f| {
            f.next_draft += 1;
            f.drafts.insert(f.next_draft, (key.to_string(), 0));
            f.next_draft
        });
        Box::pin(async move { Ok(id) })
    }

    fn write(&self, draft: u64, bytes: u64) -> BoxFuture<Result<(), FileError>> {
        let files = Arc::clone(&self.files);
        let slow = self.slow.clone();
        Box::pin(async move {
            if let Some((clock, rate)) = slow {
                let ns = u128::from(bytes) * 1_000_000_000 / u128::from(rate);
                let spike_ms = if probe::buggify("admission.file_write", FaultKind::Latency) {
                    1 + probe::draw(WRITE_SPIKE_MS_MAX)
                } else {
                    0
                };
                let ns = u64::try_from(ns).unwrap_or(u64::MAX);
                clock
                    .sleep(Duration::from_nanos(ns) + Duration::from_millis(spike_ms))
                    .await;
            }
            let injected = probe::buggify("admission.file_write", FaultKind::Error);
            files.with(|f| {
                if f.fail_writes || injected {
                    return Err(FileError("write failed".into()));
                }
                match f.drafts.get_mut(&draft) {
                    Some(d) => {
                        d.1 += bytes;
                        Ok(())
                    }
                    None => Err(FileError(format!("no draft {draft}"))),
                }
            })
        })
    }

    fn publish(&self, draft: u64) -> BoxFuture<Result<(), FileError>> {
        let r = self.files.with(|f| match f.drafts.remove(&draft) {
            Some((key, bytes)) => {
                *f.publications.entry(key.clone()).or_insert(0) += 1;
                f.published.insert(key, bytes);
                Ok(())
            }
            None => Err(FileError(format!("no draft {draft}"))),
        });
        Box::pin(async move { r })
    }

    fn discard(&self, draft: u64) {
        self.files.with(|f| f.drafts.remove(&draft));
    }
}
