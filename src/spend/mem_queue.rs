//! The in-memory queue + lock store for loom, shuttle and the simulator.
//!
//! Each operation waits (a yield; under faults, a latency spike), then
//! applies atomically under one lock, as one Redis command does. A failure
//! is injected before anything is applied. The store is the durable part of
//! the world: cloning shares it, and a crashed instance leaves it intact.

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

#[derive(Default)]
struct QState {
    lease: Option<Lease>,
    tokens_granted: u64,
    queue: VecDeque<Item>,
    inflight: BTreeMap<u64, Vec<Item>>,
    removed: BTreeMap<ItemId, Vec<String>>,
}

/// The in-memory store; clones share it.
#[derive(Clone)]
pub struct MemQueueStore {
    state: Arc<Mutex<QState>>,
    items_max: usize,
    clock: DynArc<dyn Clock>,
    sched: DynArc<dyn Scheduler>,
}

impl MemQueueStore {
    /// An empty store whose queue holds at most `items_max` items.
    pub fn new(items_max: usize, clock: DynArc<dyn Clock>, sched: DynArc<dyn Scheduler>) -> Self {
        MemQueueStore {
            state: Arc::new(Mutex::new(QState::default())),
            items_max,
            clock,
            sched,
        }
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

    /// Diagnostics: how each removed item left the queue or an in-flight
    /// list ("popped by X", "trimmed by X", "moved by X to batch B"), in
    /// order.
    pub fn removals(&self) -> BTreeMap<ItemId, Vec<String>> {
        self.state.with(|s| s.removed.clone())
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

fn note(s: &mut QState, items: &[Item], how: &str) {
    for i in items {
        s.removed.entry(i.id).or_default().push(how.to_string());
    }
}

impl QueueStore for MemQueueStore {
    fn lease_acquire(
        &self,
        owner: String,
        now_ms: u64,
        ttl_ms: u64,
    ) -> BoxFuture<Result<Option<Lease>, StoreError>> {
        self.op(move |s| {
            if s.lease.as_ref().is_some_and(|l| l.expires_ms > now_ms) {
                return Ok(None);
            }
            s.tokens_granted += 1;
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
            note(s, &gone, &format!("trimmed by {owner}"));
            Ok(())
        })
    }

    fn pop(&self, owner: String, max: usize) -> BoxFuture<Result<Vec<Item>, StoreError>> {
        self.op(move |s| {
            let n = max.min(s.queue.len());
            let got: Vec<Item> = s.queue.drain(..n).collect();
            note(s, &got, &format!("popped by {owner}"));
            Ok(got)
        })
    }

    fn move_to_inflight(
        &self,
        owner: String,
        batch: u64,
        max: usize,
    ) -> BoxFuture<Result<Vec<Item>, StoreError>> {
        self.op(move |s| {
            let n = max.min(s.queue.len());
            let moved: Vec<Item> = s.queue.drain(..n).collect();
            note(s, &moved, &format!("moved by {owner} to batch {batch}"));
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
