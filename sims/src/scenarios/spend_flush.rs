//! `spend-flush`: buffered spend updates from many proxy instances, one
//! lease-holding flusher at a time, exactly-once totals.
//!
//! A dozen instances (simulator nodes, each with its own skewed clock; the
//! lease's expiry is judged on the store's clock, as Redis judges it, so
//! skew alone never hands a held lease over)
//! record spend increments (per key, user and team; amounts include zero
//! and values near `u64::MAX`) in memory, push their aggregates to the
//! shared queue every few hundred ms through a bounded connection pool,
//! and try to flush every few hundred ms. Swarm faults: store errors and
//! latency spikes, ledger stalls longer than the lease, crashes at the
//! flusher's crash points (after the read, mid-commit, after the commit:
//! the instance restarts with empty memory), node crashes, pauses longer
//! than the lease TTL and clock jumps.
//!
//! Oracles, once the load is over and everything has drained: for every
//! row, ledger total == sum of acknowledged increments (an increment is
//! acknowledged once the aggregate carrying it is in the shared queue;
//! pre-fix, once its upsert committed), exactly once; and no deadlock (the
//! ledger's wait-for graph never closed a cycle). A violation names the
//! fault behind it (see [`super::spend_oracle`]).
//!
//! `pre-fix` deadlocks; `documented` counts twice (double flush after lease
//! expiry; crash between commit and delete) and loses (a second flusher's
//! delete after lease expiry); `documented-pop` loses (crash between pop
//! and commit); `fixed` holds.

use super::spend_oracle::{self, Acked};
use crate::scenario::{Bug, Origin, RowKind, Scenario, ScenarioError};
use faultline::clock::Clock;
use faultline::probe::{self, FaultKind};
use faultline::sched::TaskHandle;
use faultline::sim::{
    metric_max, metric_set, oracle_failed, sample, NodeConfig, Outcome, Sim, SimConfig, SimHandle,
    TaskName,
};
use faultline::spend::{
    ConnPool, FlushError, Increment, LedgerError, MemLedger, MemQueueStore, Metrics, PushError,
    SpendConfig, SpendDeps, SpendInstance, Variant,
};
use faultline::sync::{Arc, AtomicU64, DynArc, Mutex, Ordering};
use std::rc::Rc;
use std::time::Duration;

const VARIANTS: &[&str] = &["pre-fix", "documented", "documented-pop", "fixed"];
/// Instances by default (the issue asks for 10 to 20).
pub const INSTANCES_DEFAULT: u32 = 12;
/// Store operations an instance runs at once at most (its pusher and its
/// flusher): a pool this size is never exhausted.
pub const CONNECTIONS_SIZED: usize = 2;
/// Distinct API keys, users and teams.
const KEYS: u64 = 8;
const USERS: u64 = 4;
const TEAMS: u64 = 3;
/// Increments recorded in one run, over all instances and restarts.
const INCREMENTS_MAX: u64 = 150;
/// The lease's time to live: shorter than the longest pause (horizon / 5)
/// and the longest ledger stall.
pub const LEASE_TTL_MS: u64 = 300;
/// Longest wait of one ledger statement.
const STATEMENT_MS_MAX: u64 = 10;
/// Items the shared queue holds at most.
const QUEUE_ITEMS_MAX: usize = 10_000;
/// Largest clock skew of an instance, either way.
const SKEW_MS_MAX: u64 = 150;
/// Mean gaps between an instance's requests, pushes and flush attempts.
const REQUEST_MS: u64 = 200;
const PUSH_MS: u64 = 200;
const FLUSH_MS: u64 = 400;
/// Longest downtime of an instance after a crash at a crash point.
const RESTART_MS_MAX: u64 = 100;
/// How often the judge samples the metrics.
const SAMPLE_MS: u64 = 50;
/// Virtual time after which a run that has not drained fails.
const RUN_MS_MAX: u64 = 60_000;
/// Fault horizon: node faults strike in the first 3 s.
const HORIZON_NS: u64 = 3_000_000_000;

/// The spend-flush scenario.
#[derive(Clone, Debug)]
pub struct SpendFlush {
    /// Proxy instances (nodes). Default [`INSTANCES_DEFAULT`].
    pub instances: u32,
    /// Each instance's connection pool size. Default
    /// [`CONNECTIONS_SIZED`] (sized to the load).
    pub connections_max: usize,
}

impl Default for SpendFlush {
    fn default() -> Self {
        SpendFlush {
            instances: INSTANCES_DEFAULT,
            connections_max: CONNECTIONS_SIZED,
        }
    }
}

/// What survives every crash: the queue store, the ledger, the
/// deployment's metrics, and the clients' record of what was acknowledged.
pub(crate) struct World {
    pub(crate) store: MemQueueStore,
    pub(crate) ledger: MemLedger,
    pub(crate) metrics: Arc<Metrics>,
    cfg: SpendConfig,
    connections_max: usize,
    pub(crate) acked: Mutex<Acked>,
    left: AtomicU64,
    outstanding: AtomicU64,
    flushing: AtomicU64,
    boots: Mutex<Vec<u32>>,
}

impl Scenario for SpendFlush {
    fn name(&self) -> &'static str {
        "spend-flush"
    }

    fn about(&self) -> &'static str {
        "spend buffer: 12 instances, one lease-holding flusher; pre-fix deadlocks, documented counts twice or loses, fixed is exactly-once"
    }

    fn variants(&self) -> &'static [&'static str] {
        VARIANTS
    }

    fn bug(&self, variant: &str) -> Option<Bug> {
        match variant {
            "pre-fix" => Some(Bug {
                key: "multi-writer-deadlock",
                title: "every instance upserts rows in its own order: the ledger deadlocks",
                oracles: &["invariant:ledger-deadlock", "real:deadlock-40P01"],
                kind: RowKind::Schedule,
                origin: Origin::Historical,
                sync_switch: false,
            }),
            "documented" => Some(Bug {
                key: "lease-expiry-double-flush",
                title: "a lease that expires during a pause lets two flushers count items twice",
                oracles: &["invariant:double-flush", "real:double-apply"],
                kind: RowKind::Schedule,
                origin: Origin::Hypothesized,
                sync_switch: false,
            }),
            "documented-pop" => Some(Bug {
                key: "crash-between-pop-and-commit",
                title: "a flusher that crashes between popping and committing loses the items",
                oracles: &["invariant:crash-after-read", "real:lost"],
                kind: RowKind::Schedule,
                origin: Origin::Hypothesized,
                sync_switch: false,
            }),
            _ => None,
        }
    }

    fn fault_kinds(&self) -> &'static [FaultKind] {
        &[FaultKind::Error, FaultKind::Latency, FaultKind::Crash]
    }

    fn horizon_ns(&self) -> u64 {
        HORIZON_NS
    }

    fn configure(&self, _variant: &str, cfg: &mut SimConfig) {
        cfg.spurious_wake_ppm = 10_000;
    }

    fn run(&self, variant: &str, cfg: SimConfig) -> Result<Outcome, ScenarioError> {
        self.check_variant(variant)?;
        let v = Variant::from_name(variant).unwrap_or(Variant::Fixed);
        Ok(self.run_once(v, cfg))
    }
}

impl SpendFlush {
    fn run_once(&self, variant: Variant, cfg: SimConfig) -> Outcome {
        let mut sim = Sim::new(cfg);
        let main = sim.main_handle();
        let mut spend_cfg = SpendConfig::new(variant);
        spend_cfg.lease_ttl_ms = LEASE_TTL_MS;
        let world = Arc::new(World {
            store: MemQueueStore::new(QUEUE_ITEMS_MAX, DynArc::new(main), DynArc::new(main)),
            ledger: MemLedger::new(DynArc::new(main), DynArc::new(main), STATEMENT_MS_MAX),
            metrics: Arc::new(Metrics::default()),
            cfg: spend_cfg,
            connections_max: self.connections_max,
            acked: Mutex::new(Acked::default()),
            left: AtomicU64::new(INCREMENTS_MAX),
            outstanding: AtomicU64::new(0),
            flushing: AtomicU64::new(0),
            boots: Mutex::new(vec![0; self.instances as usize]),
        });
        for id in 0..self.instances {
            let skew_ms = probe::draw(2 * SKEW_MS_MAX + 1) as i64 - SKEW_MS_MAX as i64;
            let node_cfg = NodeConfig {
                skew_ns: skew_ms * 1_000_000,
                faulty: true,
                ..Default::default()
            };
            let w = Arc::clone(&world);
            let boot = Rc::new(move |h: SimHandle| {
                h.spawn_on(actor("instance", id), run_instance(Arc::clone(&w), id, h));
            });
            sim.add_node(&format!("i{id}"), node_cfg, Some(boot));
        }
        sim.run(judge(world, main))
    }
}

impl World {
    fn deps(&self, h: SimHandle) -> SpendDeps {
        SpendDeps {
            store: DynArc::new(self.store.clone()),
            ledger: DynArc::new(self.ledger.clone()),
            pool: Arc::new(ConnPool::new(self.connections_max)),
            clock: DynArc::new(h),
            metrics: Arc::clone(&self.metrics),
        }
    }

    /// The next boot number of instance `id`.
    fn next_boot(&self, id: u32) -> u32 {
        self.boots.with(|b| {
            let n = b[id as usize];
            b[id as usize] += 1;
            n
        })
    }

    /// Whether the load is over and nothing is left anywhere but in the
    /// ledger: no increment to record, nothing in memory, in the queue or
    /// in flight, no flush under way.
    fn drained(&self) -> bool {
        let (queued, inflight) = self.store.sizes();
        self.left.load(Ordering::SeqCst) == 0
            && self.outstanding.load(Ordering::SeqCst) == 0
            && self.flushing.load(Ordering::SeqCst) == 0
            && queued == 0
            && inflight == 0
            && self.metrics.snapshot()["in_memory_spend_update_queue_size"] == 0
    }
}

/// Counts something under way for as long as it lives (a crash drops it).
struct Busy<'a>(&'a AtomicU64);

impl<'a> Busy<'a> {
    fn new(n: &'a AtomicU64) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        Busy(n)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The name of instance `id`'s task of `kind`: `instance i3`, labelled as
/// the oracle names the instance (lease owner `i3`, flusher `i3#7`, ledger
/// `txn 4 (i3)`, `item i3/0x2`).
fn actor(kind: &'static str, id: u32) -> TaskName {
    TaskName::numbered(kind, "i", u64::from(id))
}

/// One instance's life on its node: boot, serve, flush; a crash at a
/// flusher crash point restarts it (memory lost, tasks gone) after a short
/// downtime. A node crash drops all of it; the node's boot starts it again.
async fn run_instance(world: Arc<World>, id: u32, h: SimHandle) {
    loop {
        let boot = world.next_boot(id);
        let inst = Arc::new(SpendInstance::new(world.cfg, id, boot, world.deps(h)));
        let tasks: Vec<TaskHandle> = vec![
            h.spawn_on(
                actor("requests", id),
                requests(Arc::clone(&world), Arc::clone(&inst), h),
            ),
            h.spawn_on(
                actor("pusher", id),
                pusher(Arc::clone(&world), Arc::clone(&inst), h),
            ),
        ];
        flusher(&world, &inst, h).await;
        tasks.iter().for_each(TaskHandle::abort);
        drop(inst);
        h.sleep(Duration::from_millis(1 + probe::draw(RESTART_MS_MAX)))
            .await;
    }
}

/// Requests arrive and record their spend in memory.
async fn requests(world: Arc<World>, inst: Arc<SpendInstance>, h: SimHandle) {
    loop {
        let claimed = world
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if claimed.is_err() {
            return;
        }
        let _busy = Busy::new(&world.outstanding);
        h.sleep(Duration::from_millis(1 + probe::draw(2 * REQUEST_MS)))
            .await;
        // A refused increment (full buffer) is never acknowledged.
        let _ = inst.record(increment());
    }
}

fn increment() -> Increment {
    let key = probe::draw(KEYS);
    let user = key % USERS;
    let amount = match probe::draw(10) {
        0 => 0,
        1 => u64::MAX - probe::draw(1_000),
        _ => 1 + probe::draw(1_000_000),
    };
    Increment {
        api_key: format!("sk-{key}"),
        user: format!("u{user}"),
        team: format!("t{}", user % TEAMS),
        amount,
    }
}

/// Pushes the in-memory aggregates every few hundred ms; a failed push
/// keeps them for the next one.
async fn pusher(world: Arc<World>, inst: Arc<SpendInstance>, h: SimHandle) {
    loop {
        h.sleep(Duration::from_millis(1 + probe::draw(2 * PUSH_MS)))
            .await;
        match inst.push().await {
            Ok(Some(item)) => world.acked.with(|a| a.ack(item)),
            Ok(None) | Err(PushError::Store(_)) => {}
            Err(PushError::Ledger(LedgerError::Deadlock { cycle })) => {
                return oracle_failed(
                    "ledger-deadlock",
                    format!("ledger deadlock: the wait-for graph closed a cycle: {cycle}"),
                );
            }
            Err(PushError::Ledger(_)) => {}
        }
    }
}

/// Tries to flush every few hundred ms; returns when the instance crashed
/// at a flusher crash point.
async fn flusher(world: &World, inst: &SpendInstance, h: SimHandle) {
    loop {
        h.sleep(Duration::from_millis(1 + probe::draw(2 * FLUSH_MS)))
            .await;
        if world.cfg.variant == Variant::Direct {
            continue;
        }
        let busy = Busy::new(&world.flushing);
        let r = inst.flush().await;
        drop(busy);
        match r {
            Err(FlushError::Crashed { .. }) => return,
            Err(FlushError::Ledger(LedgerError::Deadlock { cycle })) => {
                return oracle_failed(
                    "ledger-deadlock",
                    format!(
                        "ledger deadlock in a flush: the wait-for graph closed a cycle: {cycle}"
                    ),
                );
            }
            _ => {}
        }
    }
}

/// Samples the metrics until the load is over and everything drained,
/// then judges the ledger.
async fn judge(world: Arc<World>, h: SimHandle) {
    let start_ms = h.now_ms();
    loop {
        h.sleep(Duration::from_millis(SAMPLE_MS)).await;
        record_metrics(&world);
        if world.drained() {
            break;
        }
        if h.now_ms() - start_ms > RUN_MS_MAX {
            let (queued, inflight) = world.store.sizes();
            return oracle_failed("not-drained", format!(
                "not drained after {RUN_MS_MAX} ms: {queued} items queued, {inflight} in flight, {} increments left",
                world.left.load(Ordering::SeqCst)
            ));
        }
    }
    record_metrics(&world);
    for (name, v) in world.metrics.snapshot() {
        metric_set(name, v as f64);
    }
    if let Err((oracle, msg)) = spend_oracle::judge(&world) {
        oracle_failed(&oracle, msg);
    }
}

/// The usual metrics, sampled: lock holder, in-memory and shared queue
/// sizes, items in flight.
fn record_metrics(world: &World) {
    let (queued, inflight) = world.store.sizes();
    world.metrics.set_queue(queued as u64);
    let snap = world.metrics.snapshot();
    let in_memory = snap["in_memory_spend_update_queue_size"] as f64;
    let holder = snap["pod_lock_holder"] as f64;
    sample("pod_lock_holder", holder);
    sample("in_memory_spend_update_queue_size", in_memory);
    sample("redis_spend_update_queue_size", queued as f64);
    sample("spend_inflight_items", inflight as f64);
    metric_max("in_memory_spend_update_queue_size_max", in_memory);
    metric_max("redis_spend_update_queue_size_max", queued as f64);
}
