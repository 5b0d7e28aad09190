//! The in-memory queue + lock store for loom, shuttle and the simulator.
//!
//! Each operation waits (a yield; under faults, a latency spike), then
//! applies atomically under one lock, as one Redis command does. A failure
//! is injected before anything is applied, so an error always means "not
//! done". The store is the durable part of the world: cloning shares it,
//! and a crashed instance leaves it intact.
//!
//! For the oracles it also keeps a diagnostic log (what a `MONITOR` of the
//! real store would show): every lease grant and how each item left the
//! queue or an in-flight list, each bounded by [`DIAG_ENTRIES_MAX`].

use super::queue::{Lease, QueueStore, StoreError};
use super::{Item, ItemId};
use crate::clock::Clock;
use crate::probe::{self, FaultKind};
use crate::sched::Scheduler;
use crate::sync::{Arc, DynArc, Mutex};
use crate::BoxFuture;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// Longest injected latency of one store operation.
pub const OP_LATENCY_MS_MAX: u64 = 200;

/// Entries each diagnostic log keeps at most (later ones are dropped).
pub const DIAG_ENTRIES_MAX: usize = 100_000;

/// How an item left the queue or an in-flight list (diagnostics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removal {
    /// Removed by `LTRIM` (the documented drain's delete) by `by`.
    Trimmed {
        /// The flusher, `"<owner>#<token>"`.
        by: String,
    },
    /// Removed by `LPOP` by `by`.
    Popped {
        /// The flusher, `"<owner>#<token>"`.
        by: String,
    },
    /// Moved to in-flight list `batch` by `by`.
    Moved {
        /// The flusher, `"<owner>#<token>"`.
        by: String,
        /// The in-flight list.
        batch: u64,
    },
}

/// A lease grant (diagnostics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Who took it.
    pub owner: String,
    /// When, ms on the store's own clock.
    pub at_ms: u64,
}

#[derive(Default)]
struct QState {
    lease: Option<Lease>,
    tokens_granted: u64,
    queue: VecDeque<Item>,
    inflight: BTreeMap<u64, Vec<Item>>,
    removed: BTreeMap<ItemId, Vec<Removal>>,
    grants: BTreeMap<u64, Grant>,
}

/// The in-memory store; clones share it.
#[derive(Clone)]
pub struct MemQueueStore {
    state: Arc<Mutex<QState>>,
    items_max: usize,
    clock: DynArc<dyn Clock>,
    sched: DynArc<dyn Scheduler>,
    callers_clock: bool,
    forget_inflight: bool,
}

impl MemQueueStore {
    /// An empty store whose queue holds at most `items_max` items.
    pub fn new(items_max: usize, clock: DynArc<dyn Clock>, sched: DynArc<dyn Scheduler>) -> Self {
        MemQueueStore {
            state: Arc::new(Mutex::new(QState::default())),
            items_max,
            clock,
            sched,
            callers_clock: false,
            forget_inflight: false,
        }
    }

    /// Test-only flaw: the lease's expiry is judged on the *caller's* clock
    /// (the `now_ms` it passes), as this model did before it was checked
    /// against Redis, which judges `PX` on the server's clock: a caller
    /// whose clock runs ahead then takes a lease still held. The lease
    /// contract check must see the difference. Never use outside tests.
    #[doc(hidden)]
    pub fn judging_expiry_on_callers_clock(mut self) -> Self {
        self.callers_clock = true;
        self
    }

    /// Test-only flaw (a planted twin for `tests/spend_layers.rs`): layer
    /// "in-flight list" removed; `move_to_inflight` takes the items off the
    /// queue and returns them but keeps no in-flight list (an `LPOP`), so a
    /// flusher that dies before its commit takes them with it. Never use
    /// outside tests.
    #[doc(hidden)]
    pub fn forgetting_inflight_lists(mut self) -> Self {
        self.forget_inflight = true;
        self
    }

    /// Runs `f` atomically after the operation's wait (and injected
    /// faults).
    fn op<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut QState) -> Result<T, StoreError> + Send + 'static,
    ) -> BoxFuture<Result<T, StoreError>> {
        let me = self.clone();
        Box::pin(async move {
            me.sched.yield_now().await;
            if probe::buggify("spend.queue.op", FaultKind::Latency) {
                let ms = 1 + probe::draw(OP_LATENCY_MS_MAX);
                me.clock.sleep(Duration::from_millis(ms)).await;
            }
            if probe::buggify("spend.queue.op", FaultKind::Error) {
                return Err(StoreError::Io("injected store error".into()));
            }
            me.state.with(f)
        })
    }

    /// Diagnostics: how each removed item left the queue, in order.
    pub fn removals(&self) -> BTreeMap<ItemId, Vec<Removal>> {
        self.state.with(|s| s.removed.clone())
    }

    /// Diagnostics: every lease grant, by fencing token.
    pub fn grants(&self) -> BTreeMap<u64, Grant> {
        self.state.with(|s| s.grants.clone())
    }

    /// Snapshot: ids in the queue and in in-flight lists.
    pub fn pending_ids(&self) -> Vec<ItemId> {
        self.state.with(|s| {
            let q = s.queue.iter().map(|i| i.id);
            let f = s.inflight.values().flatten().map(|i| i.id);
            q.chain(f).collect()
        })
    }

    /// Snapshot: items queued and items in flight, without waiting.
    pub fn sizes(&self) -> (usize, usize) {
        self.state
            .with(|s| (s.queue.len(), s.inflight.values().map(Vec::len).sum()))
    }

    /// Snapshot of the lease, without waiting.
    pub fn lease_now(&self) -> Option<Lease> {
        self.state.with(|s| s.lease.clone())
    }
}

fn note(s: &mut QState, items: &[Item], how: &Removal) {
    for i in items {
        if s.removed.len() >= DIAG_ENTRIES_MAX && !s.removed.contains_key(&i.id) {
            return;
        }
        s.removed.entry(i.id).or_default().push(how.clone());
    }
}

impl QueueStore for MemQueueStore {
    /// The expiry is judged on the store's own clock, as Redis judges
    /// `SET .. PX` on the server's: `now_ms` (the caller's clock) only
    /// matters with the test-only [`MemQueueStore::judging_expiry_on_callers_clock`].
    fn lease_acquire(
        &self,
        owner: String,
        now_ms: u64,
        ttl_ms: u64,
    ) -> BoxFuture<Result<Option<Lease>, StoreError>> {
        let clock = DynArc::clone(&self.clock);
        let callers_clock = self.callers_clock;
        self.op(move |s| {
            let store_ms = clock.now_ms();
            let now_ms = if callers_clock { now_ms } else { store_ms };
            if s.lease.as_ref().is_some_and(|l| l.expires_ms > now_ms) {
                return Ok(None);
            }
            if let Some(old) = &s.lease {
                tracing::info!(
                    token = old.token,
                    owner = old.owner.as_str(),
                    "lease expired: token {} of {} (its holder may still be flushing)",
                    old.token,
                    old.owner
                );
            }
            s.tokens_granted += 1;
            if s.grants.len() < DIAG_ENTRIES_MAX {
                let grant = Grant {
                    owner: owner.clone(),
                    at_ms: store_ms,
                };
                s.grants.insert(s.tokens_granted, grant);
            }
            let lease = Lease {
                owner,
                token: s.tokens_granted,
                expires_ms: now_ms.saturating_add(ttl_ms),
            };
            s.lease = Some(lease.clone());
            Ok(Some(lease))
        })
    }

    fn lease_release(&self, token: u64) -> BoxFuture<Result<bool, StoreError>> {
        self.op(move |s| {
            let mine = s.lease.as_ref().is_some_and(|l| l.token == token);
            if mine {
                s.lease = None;
            }
            Ok(mine)
        })
    }

    /// Like Redis (`PEXPIRE` of a key that expired and is gone), an
    /// expired lease is not renewed, even when nobody took it since.
    fn lease_renew(
        &self,
        token: u64,
        now_ms: u64,
        ttl_ms: u64,
    ) -> BoxFuture<Result<bool, StoreError>> {
        let clock = DynArc::clone(&self.clock);
        let callers_clock = self.callers_clock;
        self.op(move |s| {
            let now_ms = if callers_clock {
                now_ms
            } else {
                clock.now_ms()
            };
            match s.lease.as_mut() {
                Some(l) if l.token == token && l.expires_ms > now_ms => {
                    l.expires_ms = now_ms.saturating_add(ttl_ms);
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
    }

    fn lease_holder(&self) -> BoxFuture<Result<Option<Lease>, StoreError>> {
        self.op(|s| Ok(s.lease.clone()))
    }

    fn push(&self, item: Item) -> BoxFuture<Result<(), StoreError>> {
        let items_max = self.items_max;
        self.op(move |s| {
            if s.queue.len() >= items_max {
                return Err(StoreError::QueueFull { items_max });
            }
            s.queue.push_back(item);
            Ok(())
        })
    }

    fn read(&self, max: usize) -> BoxFuture<Result<Vec<Item>, StoreError>> {
        self.op(move |s| Ok(s.queue.iter().take(max).cloned().collect()))
    }

    fn trim(&self, owner: String, n: usize) -> BoxFuture<Result<(), StoreError>> {
        self.op(move |s| {
            let n = n.min(s.queue.len());
            let gone: Vec<Item> = s.queue.drain(..n).collect();
            note(s, &gone, &Removal::Trimmed { by: owner });
            Ok(())
        })
    }

    fn pop(&self, owner: String, max: usize) -> BoxFuture<Result<Vec<Item>, StoreError>> {
        self.op(move |s| {
            let n = max.min(s.queue.len());
            let got: Vec<Item> = s.queue.drain(..n).collect();
            note(s, &got, &Removal::Popped { by: owner });
            Ok(got)
        })
    }

    fn move_to_inflight(
        &self,
        owner: String,
        batch: u64,
        max: usize,
    ) -> BoxFuture<Result<Vec<Item>, StoreError>> {
        let forget = self.forget_inflight;
        self.op(move |s| {
            let n = max.min(s.queue.len());
            let moved: Vec<Item> = s.queue.drain(..n).collect();
            note(s, &moved, &Removal::Moved { by: owner, batch });
            if forget {
                return Ok(moved); // test-only flaw: no in-flight list
            }
            let list = s.inflight.entry(batch).or_default();
            list.extend(moved);
            let out = list.clone();
            if out.is_empty() {
                s.inflight.remove(&batch);
            }
            Ok(out)
        })
    }

    fn inflight(&self, max: usize) -> BoxFuture<Result<BTreeMap<u64, Vec<Item>>, StoreError>> {
        self.op(move |s| {
            Ok(s.inflight
                .iter()
                .take(max)
                .map(|(k, v)| (*k, v.clone()))
                .collect())
        })
    }

    fn delete_inflight(&self, batch: u64) -> BoxFuture<Result<(), StoreError>> {
        self.op(move |s| {
            s.inflight.remove(&batch);
            Ok(())
        })
    }

    fn queue_len(&self) -> BoxFuture<Result<usize, StoreError>> {
        self.op(|s| Ok(s.queue.len()))
    }
}
