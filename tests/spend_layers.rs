//! One check per layer of the spend buffer's fix (issue 14, item 9): for
//! each layer, the fixed flusher with that one layer removed (the others
//! kept, a planted test-only knob) is caught by a check of the layer's own
//! property, and the fixed flusher passes the same check.
//!
//! | layer | property checked | twin |
//! |---|---|---|
//! | lease exclusivity | no lease is granted while an unexpired one (on the store's clock) is held and not released | `MemQueueStore::judging_expiry_on_callers_clock`, a flusher whose clock runs 2 s ahead |
//! | fencing token checked at commit | no commit lands with a token (the lease its committer took) older than one already committed | `MemLedger::ignoring_fences` |
//! | idempotent batch ids | no batch is applied twice (a replayed batch, whatever id it carries, is skipped) | `MemLedger::ignoring_batch_ids` |
//! | in-flight list | no item is lost when a flusher dies between reading the queue and committing: once a live flusher has run after the dead one's lease expired, every pushed item is committed | `MemQueueStore::forgetting_inflight_lists` |
//!
//! The twins of fencing and of the lease keep the end-to-end oracle green
//! (every item still counted exactly once: the other layers cover for the
//! missing one), which is why each layer needs a check of its own.
//!
//! Below the layers, what a flush reports and does: each variant's queue
//! operations, the items and recoveries it reports, the fenced commits it
//! counts, and a crash point stopping it where its error says (written to
//! kill cargo-mutants survivors, see `MUTANTS.md`).
//!
//! The interleavings are forced, not searched: a watched store parks one
//! flusher's operation on a gate the test holds (a pause; a gate never
//! released is a flusher that died there), so every check is one
//! deterministic run, bounded in virtual time and polls: a regression fails
//! instead of hanging.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::clock::{Clock, NS_PER_MS};
use faultline::sim::{Outcome, Sim, SimConfig, SimHandle};
use faultline::spend::{
    CommitOutcome, CommitRecord, ConnPool, Entity, FlushError, FlushReport, Flusher, Item, ItemId,
    Lease, LedgerError, MemLedger, MemQueueStore, Metrics, QueueStore, Removal, RowKey, Rows,
    SpendConfig, SpendDeps, StoreError, Variant,
};
use faultline::sync::{Arc, DynArc, Mutex};
use faultline::BoxFuture;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Virtual time a layer check may take at most.
const RUN_MS_MAX: u64 = 600_000;
/// Polls a layer check may make at most.
const STEPS_MAX: u64 = 1_000_000;
/// Queue items the store holds at most.
const QUEUE_ITEMS_MAX: usize = 1_000;
/// Longer than the lease's TTL (1 s by default).
const PAST_THE_TTL_MS: u64 = 1_500;

/// A parked operation: `op` of `who` waits, before (or after) it is
/// applied, until `released`. Used once.
struct Park {
    op: &'static str,
    who: String,
    after: bool,
    released: Arc<Mutex<bool>>,
}

/// Holds a park; dropping it releases the parked operation.
struct ParkGuard(Arc<Mutex<bool>>);

impl Drop for ParkGuard {
    fn drop(&mut self) {
        self.0.with(|r| *r = true);
    }
}

/// Waits (in 1 ms steps of virtual time) until `released`; the run's own
/// bound ends a park never released.
async fn wait_released(h: SimHandle, released: &Arc<Mutex<bool>>) {
    while !released.with(|r| *r) {
        h.sleep(Duration::from_millis(1)).await;
    }
}

/// What the watched store saw of the lease.
#[derive(Default)]
struct LeaseLog {
    /// The lease granted last and not released: token, granted at (store
    /// clock, ms), ttl.
    held: Option<(u64, u64, u64)>,
    /// Grants made while another lease was unexpired and held.
    overlaps: Vec<String>,
}

/// The in-memory queue store, watched: it judges every lease grant against
/// the previous grant on the store's own clock, and parks operations.
#[derive(Clone)]
struct Watched {
    inner: MemQueueStore,
    clock: SimHandle,
    parks: Arc<Mutex<Vec<Park>>>,
    lease: Arc<Mutex<LeaseLog>>,
    /// The queue operations called, in order (lease calls left out).
    ops: Arc<Mutex<Vec<&'static str>>>,
}

impl Watched {
    fn new(inner: MemQueueStore, clock: SimHandle) -> Self {
        Watched {
            inner,
            clock,
            parks: Arc::new(Mutex::new(Vec::new())),
            lease: Arc::new(Mutex::new(LeaseLog::default())),
            ops: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn log(&self, op: &'static str) {
        self.ops.with(|o| o.push(op));
    }

    /// Parks the next `op` of `who` (an owner `"i0#1"` or `"batch 1"`)
    /// until the returned guard is dropped.
    fn park(&self, op: &'static str, who: &str, after: bool) -> ParkGuard {
        let released = Arc::new(Mutex::new(false));
        self.parks.with(|p| {
            p.push(Park {
                op,
                who: who.to_string(),
                after,
                released: Arc::clone(&released),
            });
        });
        ParkGuard(released)
    }

    fn take_park(&self, op: &str, who: &str) -> Option<(bool, Arc<Mutex<bool>>)> {
        self.parks.with(|ps| {
            let i = ps.iter().position(|p| p.op == op && p.who == who)?;
            let p = ps.remove(i);
            Some((p.after, p.released))
        })
    }

    /// Runs `fut` (one store operation) with the park of `op`/`who`, if
    /// any.
    fn parked<T: Send + 'static>(
        &self,
        op: &'static str,
        who: String,
        fut: BoxFuture<Result<T, StoreError>>,
    ) -> BoxFuture<Result<T, StoreError>> {
        let me = self.clone();
        Box::pin(async move {
            let park = me.take_park(op, &who);
            if let Some((false, released)) = &park {
                wait_released(me.clock, released).await;
            }
            let out = fut.await;
            if let Some((true, released)) = &park {
                wait_released(me.clock, released).await;
            }
            out
        })
    }

    fn lease_overlaps(&self) -> Vec<String> {
        self.lease.with(|l| l.overlaps.clone())
    }
}

impl QueueStore for Watched {
    fn lease_acquire(
        &self,
        owner: String,
        now_ms: u64,
        ttl_ms: u64,
    ) -> BoxFuture<Result<Option<Lease>, StoreError>> {
        let me = self.clone();
        let acquire = self.inner.lease_acquire(owner, now_ms, ttl_ms);
        Box::pin(async move {
            let out = acquire.await;
            if let Ok(Some(lease)) = &out {
                let at_ms = me.clock.now_ms();
                me.lease.with(|l| {
                    if let Some((t, granted_ms, ttl)) = l.held {
                        if granted_ms + ttl > at_ms {
                            l.overlaps.push(format!(
                                "lease token {} granted {} ms after token {t}, whose {ttl} ms had not expired on the store's clock and which was not released",
                                lease.token,
                                at_ms - granted_ms
                            ));
                        }
                    }
                    l.held = Some((lease.token, at_ms, ttl_ms));
                });
            }
            out
        })
    }

    fn lease_release(&self, token: u64) -> BoxFuture<Result<bool, StoreError>> {
        let me = self.clone();
        let release = self.inner.lease_release(token);
        Box::pin(async move {
            let out = release.await;
            if out == Ok(true) {
                me.lease.with(|l| {
                    if l.held.is_some_and(|(t, _, _)| t == token) {
                        l.held = None;
                    }
                });
            }
            out
        })
    }

    fn lease_renew(
        &self,
        token: u64,
        now_ms: u64,
        ttl_ms: u64,
    ) -> BoxFuture<Result<bool, StoreError>> {
        // The flusher never renews; a renewal would move `held`'s expiry.
        let me = self.clone();
        let renew = self.inner.lease_renew(token, now_ms, ttl_ms);
        Box::pin(async move {
            let out = renew.await;
            if out == Ok(true) {
                let at_ms = me.clock.now_ms();
                me.lease.with(|l| {
                    if l.held.is_some_and(|(t, _, _)| t == token) {
                        l.held = Some((token, at_ms, ttl_ms));
                    }
                });
            }
            out
        })
    }

    fn lease_holder(&self) -> BoxFuture<Result<Option<Lease>, StoreError>> {
        self.inner.lease_holder()
    }

    fn push(&self, item: Item) -> BoxFuture<Result<(), StoreError>> {
        self.inner.push(item)
    }

    fn read(&self, max: usize) -> BoxFuture<Result<Vec<Item>, StoreError>> {
        self.log("read");
        self.inner.read(max)
    }

    fn trim(&self, owner: String, n: usize) -> BoxFuture<Result<(), StoreError>> {
        self.log("trim");
        self.inner.trim(owner, n)
    }

    fn pop(&self, owner: String, max: usize) -> BoxFuture<Result<Vec<Item>, StoreError>> {
        self.log("pop");
        self.inner.pop(owner, max)
    }

    fn move_to_inflight(
        &self,
        owner: String,
        batch: u64,
        max: usize,
    ) -> BoxFuture<Result<Vec<Item>, StoreError>> {
        self.log("move_to_inflight");
        let fut = self.inner.move_to_inflight(owner.clone(), batch, max);
        self.parked("move_to_inflight", owner, fut)
    }

    fn inflight(&self, max: usize) -> BoxFuture<Result<BTreeMap<u64, Vec<Item>>, StoreError>> {
        self.log("inflight");
        self.inner.inflight(max)
    }

    fn delete_inflight(&self, batch: u64) -> BoxFuture<Result<(), StoreError>> {
        self.log("delete_inflight");
        let fut = self.inner.delete_inflight(batch);
        self.parked("delete_inflight", format!("batch {batch}"), fut)
    }

    fn queue_len(&self) -> BoxFuture<Result<usize, StoreError>> {
        self.inner.queue_len()
    }
}

/// A clock running `ahead_ms` ahead of the simulation's (clock skew).
struct Skewed {
    inner: SimHandle,
    ahead_ms: u64,
}

impl Clock for Skewed {
    fn now_ns(&self) -> u64 {
        self.inner.now_ns() + self.ahead_ms * NS_PER_MS
    }

    fn sleep_until(&self, deadline_ns: u64) -> BoxFuture<()> {
        let d = deadline_ns.saturating_sub(self.ahead_ms * NS_PER_MS);
        Box::pin(self.inner.sleep_until(d))
    }
}

/// One deployment: the watched store, the ledger, and flushers.
struct World {
    h: SimHandle,
    mem: MemQueueStore,
    store: Watched,
    ledger: MemLedger,
    pushed: Vec<ItemId>,
    /// The flushers' variant (`Fixed` unless a check says otherwise).
    variant: Variant,
    /// Shared by every flusher of the world.
    metrics: Arc<Metrics>,
}

impl World {
    fn new(h: SimHandle, mem: MemQueueStore, ledger: MemLedger) -> Self {
        World {
            h,
            store: Watched::new(mem.clone(), h),
            mem,
            ledger,
            pushed: Vec::new(),
            variant: Variant::Fixed,
            metrics: Arc::new(Metrics::default()),
        }
    }

    fn flusher(&self, id: u32, clock: DynArc<dyn Clock>) -> Flusher {
        let deps = SpendDeps {
            store: DynArc::new(self.store.clone()),
            ledger: DynArc::new(self.ledger.clone()),
            pool: Arc::new(ConnPool::new(4)),
            clock,
            metrics: Arc::clone(&self.metrics),
        };
        Flusher::new(SpendConfig::new(self.variant), id, deps)
    }

    /// Starts instance `id`'s flush as a task; its result lands in the
    /// returned slot.
    fn flush(&self, id: u32) -> Arc<Mutex<Option<Result<FlushReport, FlushError>>>> {
        self.flush_on(id, DynArc::new(self.h))
    }

    fn flush_on(
        &self,
        id: u32,
        clock: DynArc<dyn Clock>,
    ) -> Arc<Mutex<Option<Result<FlushReport, FlushError>>>> {
        let slot = Arc::new(Mutex::new(None));
        let (f, s) = (self.flusher(id, clock), Arc::clone(&slot));
        drop(self.h.spawn_on("flush", async move {
            let r = f.flush_once(&format!("i{id}")).await;
            s.with(|s| *s = Some(r));
        }));
        slot
    }

    async fn push(&mut self, seq: u64, amount: u64) -> Result<(), String> {
        let id = ItemId { instance: 9, seq };
        let rows = Rows::from([(RowKey::new(Entity::User, "u"), u128::from(amount))]);
        self.mem
            .push(Item { id, rows })
            .await
            .map_err(|e| e.to_string())?;
        self.pushed.push(id);
        Ok(())
    }

    async fn ms(&self, ms: u64) {
        self.h.sleep(Duration::from_millis(ms)).await;
    }

    /// How many applied commits carried each pushed item.
    fn applied_counts(&self) -> BTreeMap<ItemId, usize> {
        let mut n: BTreeMap<ItemId, usize> = self.pushed.iter().map(|&i| (i, 0)).collect();
        for c in applied(&self.ledger.commits()) {
            for i in &c.items {
                *n.entry(*i).or_default() += 1;
            }
        }
        n
    }

    /// The end-to-end oracle, for the record: every pushed item applied
    /// exactly once.
    fn exactly_once(&self) -> bool {
        self.applied_counts().values().all(|&n| n == 1)
    }
}

fn applied(commits: &[CommitRecord]) -> impl Iterator<Item = &CommitRecord> {
    commits
        .iter()
        .filter(|c| c.outcome == CommitOutcome::Applied)
}

/// What [`check`] says when the run itself failed, never finished the
/// check, or did not set up the interleaving: not the layer's own property.
const NOT_THE_LAYER: [&str; 3] = [
    "the run failed",
    "the check did not finish",
    "the check's setup",
];

/// Runs `main` in a bounded simulation; its verdict (or the run's
/// failure).
fn check(main: impl FnOnce(SimHandle) -> BoxFuture<Result<(), String>>) -> Result<(), String> {
    check_with(SimConfig::default(), main)
}

/// [`check`] on `cfg` (its faults, seed), bounded the same way.
fn check_with(
    cfg: SimConfig,
    main: impl FnOnce(SimHandle) -> BoxFuture<Result<(), String>>,
) -> Result<(), String> {
    let sim = Sim::new(SimConfig {
        time_max_ns: RUN_MS_MAX * NS_PER_MS,
        steps_max: STEPS_MAX,
        ..cfg
    });
    let h = sim.main_handle();
    let verdict = Arc::new(Mutex::new(Err("the check did not finish".to_string())));
    let v = Arc::clone(&verdict);
    let fut = main(h);
    let out: Outcome = sim.run(async move {
        let r = fut.await;
        v.with(|slot| *slot = r);
    });
    if let Some(f) = out.failure {
        return Err(format!("the run failed: {f}"));
    }
    verdict.with(|v| v.clone())
}

/// Runs the check on the fixed flusher (must pass) and on the twin (must
/// be caught by the layer's own check, not by the run failing otherwise);
/// prints what the twin's check said.
fn fixed_passes_twin_caught(layer: &str, run: impl Fn(bool) -> Result<(), String>) {
    if let Err(e) = run(false) {
        panic!("{layer}: the fixed flusher fails its own layer's check: {e}");
    }
    match run(true) {
        Ok(()) => panic!("{layer}: the twin without this layer was NOT caught"),
        Err(e) if NOT_THE_LAYER.iter().any(|n| e.starts_with(n)) => {
            panic!("{layer}: the twin failed, but not by this layer's check: {e}")
        }
        Err(e) => println!("{layer}: twin caught: {e}"),
    }
}

fn mem_store(h: SimHandle) -> MemQueueStore {
    MemQueueStore::new(QUEUE_ITEMS_MAX, DynArc::new(h), DynArc::new(h))
}

fn mem_ledger(h: SimHandle) -> MemLedger {
    MemLedger::new(DynArc::new(h), DynArc::new(h), 0)
}

/// Waits (in 1 ms steps, at most `within_ms`) until `slot` holds a result.
async fn finished<T: Clone>(
    h: SimHandle,
    slot: &Arc<Mutex<Option<T>>>,
    what: &str,
    within_ms: u64,
) -> Result<T, String> {
    for _ in 0..within_ms {
        if let Some(r) = slot.with(|s| s.clone()) {
            return Ok(r);
        }
        h.sleep(Duration::from_millis(1)).await;
    }
    Err(format!(
        "the check did not finish: {what} after {within_ms} ms"
    ))
}

/// Lease exclusivity: while instance 0 holds the lease (paused before it
/// moves anything), instance 1, whose clock runs 2 s ahead, tries to flush.
fn lease(twin: bool) -> Result<(), String> {
    check(move |h| {
        Box::pin(async move {
            let mut mem = mem_store(h);
            if twin {
                mem = mem.judging_expiry_on_callers_clock();
            }
            let mut w = World::new(h, mem, mem_ledger(h));
            w.push(0, 5).await?;
            let pause = w.store.park("move_to_inflight", "i0#1", false);
            let a = w.flush(0);
            w.ms(10).await;
            let ahead = Skewed {
                inner: h,
                ahead_ms: 2_000,
            };
            let b = w.flush_on(1, DynArc::new(ahead));
            let b = finished(h, &b, "instance 1's flush", 10_000).await?;
            drop(pause);
            let a = finished(h, &a, "instance 0's flush", 10_000).await?;
            if a.as_ref().map(|r| r.token) != Ok(Some(1)) {
                return Err(format!("the check's setup: instance 0 got no lease: {a:?}"));
            }
            let overlaps = w.store.lease_overlaps();
            if !overlaps.is_empty() {
                return Err(format!(
                    "{} (instance 1's flush: {b:?}; every item counted exactly once: {})",
                    overlaps.join("; "),
                    w.exactly_once()
                ));
            }
            Ok(())
        })
    })
}

#[test]
fn layer_lease_no_lease_is_granted_while_an_unexpired_one_is_held() {
    fixed_passes_twin_caught("lease exclusivity", lease);
}

/// Fencing: instance 0 takes the lease (token 1) and pauses past its TTL
/// before it moves anything; instance 1 takes it (token 2) and commits;
/// then instance 0 wakes and commits what was pushed since.
fn fencing(twin: bool) -> Result<(), String> {
    check(move |h| {
        Box::pin(async move {
            let mut ledger = mem_ledger(h);
            if twin {
                ledger = ledger.ignoring_fences();
            }
            let mut w = World::new(h, mem_store(h), ledger);
            w.push(0, 5).await?;
            let pause = w.store.park("move_to_inflight", "i0#1", false);
            let a = w.flush(0);
            w.ms(PAST_THE_TTL_MS).await;
            let b = w.flush(1);
            let b = finished(h, &b, "instance 1's flush", 10_000).await?;
            if b.as_ref().map(|r| r.token) != Ok(Some(2)) {
                return Err(format!("the check's setup: instance 1 got no lease: {b:?}"));
            }
            w.push(1, 7).await?;
            drop(pause);
            let a = finished(h, &a, "instance 0's flush", 10_000).await?;
            let tried = match &a {
                Ok(r) => r.items > 0,
                Err(e) => matches!(e, FlushError::Ledger(LedgerError::Fenced { .. })),
            };
            if !tried {
                return Err(format!(
                    "the check's setup: instance 0 never committed after its pause: {a:?}"
                ));
            }
            let fenced = w.metrics.spend_fenced_commits_total.load(Ordering::Relaxed);
            if a.is_err() && fenced != 1 {
                return Err(format!(
                    "instance 0's commit was fenced, and spend_fenced_commits_total says {fenced}"
                ));
            }
            // The token each committer held is the lease it took (not the
            // fence it sent: a flusher that sends none must be caught too).
            let mut newest: Option<u64> = None;
            for c in &w.ledger.commits() {
                let Some(f) = c.lease else {
                    return Err(format!(
                        "the check's setup: a commit without a lease: {c:?}"
                    ));
                };
                if let Some(n) = newest.filter(|&n| f < n) {
                    return Err(format!(
                        "a commit with token {f} (batch {:?} by {}) landed after token {n} had committed (instance 0's flush: {a:?}; every item counted exactly once: {})",
                        c.batch_id,
                        c.owner,
                        w.exactly_once()
                    ));
                }
                newest = newest.max(Some(f));
            }
            Ok(())
        })
    })
}

#[test]
fn layer_fencing_no_commit_lands_with_a_token_older_than_one_committed() {
    fixed_passes_twin_caught("fencing token checked at commit", fencing);
}

/// Idempotent batch ids: instance 0 commits its batch and dies before it
/// deletes its in-flight list; instance 1, once the lease expired,
/// recovers that list and commits it again.
fn idempotency(twin: bool) -> Result<(), String> {
    check(move |h| {
        Box::pin(async move {
            let mut ledger = mem_ledger(h);
            if twin {
                ledger = ledger.ignoring_batch_ids();
            }
            let mut w = World::new(h, mem_store(h), ledger);
            w.push(0, 5).await?;
            let _dies_here = w.store.park("delete_inflight", "batch 1", false);
            let _a = w.flush(0);
            w.ms(PAST_THE_TTL_MS).await;
            let b = w.flush(1);
            let b = finished(h, &b, "instance 1's flush", 10_000).await?;
            if b.as_ref().map(|r| r.recovered) != Ok(1) {
                return Err(format!(
                    "the check's setup: instance 1 recovered nothing: {b:?}"
                ));
            }
            // A batch is what it carries (an id the flusher failed to send
            // must not hide a replay): which commits applied each item.
            let mut by: BTreeMap<ItemId, Vec<String>> = BTreeMap::new();
            for c in applied(&w.ledger.commits()) {
                for i in &c.items {
                    let who = format!("{} as batch {:?}", c.owner, c.batch_id);
                    by.entry(*i).or_default().push(who);
                }
            }
            if let Some((id, commits)) = by.iter().find(|(_, c)| c.len() > 1) {
                return Err(format!(
                    "the batch holding item {id:?} was applied {} times ({})",
                    commits.len(),
                    commits.join(", ")
                ));
            }
            Ok(())
        })
    })
}

#[test]
fn layer_idempotent_batch_ids_no_batch_is_applied_twice() {
    fixed_passes_twin_caught("idempotent batch ids", idempotency);
}

/// In-flight list: instance 0 moves the queue's items and dies before it
/// commits them; instance 1, once the lease expired, flushes. Every item
/// must then be committed (recovered from the dead flusher's list).
fn inflight(twin: bool) -> Result<(), String> {
    check(move |h| {
        Box::pin(async move {
            let mut mem = mem_store(h);
            if twin {
                mem = mem.forgetting_inflight_lists();
            }
            let mut w = World::new(h, mem, mem_ledger(h));
            w.push(0, 5).await?;
            w.push(1, 7).await?;
            let _dies_here = w.store.park("move_to_inflight", "i0#1", true);
            let _a = w.flush(0);
            w.ms(PAST_THE_TTL_MS).await;
            let b = w.flush(1);
            let b = finished(h, &b, "instance 1's flush", 10_000).await?;
            let pending = w.mem.pending_ids();
            let removals = w.mem.removals();
            let moved_by_0 = |id: &ItemId| {
                removals.get(id).is_some_and(|r| {
                    r.iter()
                        .any(|m| matches!(m, Removal::Moved { by, .. } if by == "i0#1"))
                })
            };
            if !w.pushed.iter().all(moved_by_0) {
                return Err(format!(
                    "the check's setup: instance 0 did not take the items before it died: {removals:?}"
                ));
            }
            for (id, n) in w.applied_counts() {
                if n > 0 {
                    continue;
                }
                let fate = if pending.contains(&id) {
                    "is still pending: the live flusher did not recover it"
                } else {
                    "is neither queued nor in flight: lost"
                };
                return Err(format!(
                    "item {id:?} left the queue ({:?}), was never committed and {fate} (instance 1's flush: {b:?})",
                    removals.get(&id)
                ));
            }
            Ok(())
        })
    })
}

#[test]
fn layer_inflight_list_no_item_is_lost_when_a_flusher_dies_before_its_commit() {
    fixed_passes_twin_caught("in-flight list", inflight);
}

// ---- what a flush reports, and how each variant drains the queue ----

/// One flush of three pushed items by a flusher of `variant`: its report,
/// and the queue operations it called.
fn drain(variant: Variant) -> Result<(FlushReport, Vec<&'static str>), String> {
    let out = Arc::new(Mutex::new(None));
    let o = Arc::clone(&out);
    check(move |h| {
        Box::pin(async move {
            let mut w = World::new(h, mem_store(h), mem_ledger(h));
            w.variant = variant;
            for seq in 0..3 {
                w.push(seq, 2).await?;
            }
            let f = w.flush(0);
            let r = finished(h, &f, "the flush", 10_000).await?;
            let r = r.map_err(|e| format!("{variant:?}: the flush failed: {e}"))?;
            if !w.exactly_once() {
                return Err(format!("{variant:?}: not every item applied once"));
            }
            o.with(|o| *o = Some((r, w.store.ops.with(|ops| ops.clone()))));
            Ok(())
        })
    })?;
    Ok(out.with(|o| o.take()).expect("set by the check"))
}

/// The documented drain reads, commits, then trims; the documented-pop one
/// pops; the fix moves the items to its own in-flight list and deletes it
/// after the commit. Each report counts the three items.
#[test]
fn each_variant_drains_the_queue_its_own_way_and_reports_the_items() {
    let want: [(Variant, &[&str]); 3] = [
        (Variant::Documented, &["read", "trim"]),
        (Variant::DocumentedPop, &["pop"]),
        (
            Variant::Fixed,
            &["inflight", "move_to_inflight", "delete_inflight"],
        ),
    ];
    for (variant, ops) in want {
        let (report, seen) = drain(variant).unwrap();
        assert_eq!(seen, ops, "{variant:?}: queue operations");
        assert_eq!(report.items, 3, "{variant:?}: {report:?}");
        assert_eq!(report.recovered, 0, "{variant:?}: {report:?}");
    }
}

/// Every crash point striking: the fixed flusher stops right after it
/// moved the items (`after-read`), commits nothing, and the items wait in
/// its in-flight list; the error says where it crashed.
#[test]
fn a_crash_point_stops_the_flush_where_it_says() {
    let mut cfg = SimConfig::default();
    cfg.faults
        .point_ppm
        .insert(faultline::probe::FaultKind::Crash, 1_000_000);
    check_with(cfg, |h| {
        Box::pin(async move {
            let mut w = World::new(h, mem_store(h), mem_ledger(h));
            w.push(0, 2).await?;
            let f = w.flush(0);
            match finished(h, &f, "the flush", 10_000).await? {
                Err(
                    e @ FlushError::Crashed {
                        stage: "after-read",
                    },
                ) => {
                    let said = e.to_string();
                    if said != "flusher crashed after-read" {
                        return Err(format!("the crash says {said:?}"));
                    }
                }
                other => return Err(format!("not a crash after the read: {other:?}")),
            }
            if !w.ledger.commits().is_empty() {
                return Err("a crashed flush committed".into());
            }
            let lists = w.mem.inflight(10).await.map_err(|e| e.to_string())?;
            if lists.values().map(Vec::len).sum::<usize>() != 1 {
                return Err(format!("the item is not in an in-flight list: {lists:?}"));
            }
            Ok(())
        })
    })
    .unwrap();
}
