//! `append-retention`: the tiered usage store's append-vs-retention race.
//!
//! A quiet store node whose active segment holds only backfilled rows (older
//! than the retention cutoff) keeps receiving current events from a few
//! appenders while retention runs every few milliseconds. Swarm faults:
//! insert errors and latency spikes, crashes of the store node (its tasks
//! are dropped, e.g. between an insert and the writer restore; the segments
//! are durable and the store reopens from them), pauses and clock jumps.
//!
//! Oracles: every acknowledged event not older than the cutoff at query time
//! is queryable (checked from a fresh view of the durable segments, during
//! the run and at the end), and the store's writer writes to the active
//! segment whenever the state lock is free (checked after every retention
//! pass). Pre-fix and generation-check lose events; fixed holds.

use crate::scenario::{Bug, Origin, RowKind, Scenario, ScenarioError};
use faultline::clock::Clock;
use faultline::probe::{self, FaultKind};
use faultline::sim::{oracle_failed, NodeConfig, Outcome, Sim, SimConfig, SimHandle, TaskName};
use faultline::store::{missing_events, Event, MemBackend, StoreConfig, TieredStore, Variant};
use faultline::sync::{Arc, AtomicU64, DynArc, Mutex, Ordering};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

const VARIANTS: &[&str] = &["pre-fix", "generation-check", "fixed"];
const DAY_MS: u64 = 86_400_000;
/// Appenders on the store node.
const APPENDERS: u64 = 3;
/// Append attempts in one run, over all appenders and restarts.
const ATTEMPTS_MAX: u64 = 60;
/// Retention passes per boot of the store node, at most.
const RETENTION_PASSES_MAX: u64 = 40;
/// Virtual time after which the run is judged even if appends remain.
const RUN_MS_MAX: u64 = 120_000;

/// The append-vs-retention race on the in-memory segment backend.
#[derive(Clone, Debug, Default)]
pub struct AppendRetention;

/// What survives a crash of the store node: the segments ("disk") and the
/// clients' record of acknowledged events.
struct World {
    backend: Arc<MemBackend>,
    cfg: StoreConfig,
    acked: Mutex<Vec<Event>>,
    /// Which appender (its label's number: `a1`) appended each acknowledged
    /// event, by event id.
    appended_by: Mutex<BTreeMap<u64, u64>>,
    attempts_left: AtomicU64,
    next_id: AtomicU64,
}

impl Scenario for AppendRetention {
    fn name(&self) -> &'static str {
        "append-retention"
    }

    fn about(&self) -> &'static str {
        "tiered store: retention rolls the active segment while an append is parked; pre-fix and generation-check lose events, fixed gates"
    }

    fn variants(&self) -> &'static [&'static str] {
        VARIANTS
    }

    fn fault_kinds(&self) -> &'static [FaultKind] {
        &[FaultKind::Error, FaultKind::Latency]
    }

    fn horizon_ns(&self) -> u64 {
        2_000_000_000
    }

    fn configure(&self, _variant: &str, cfg: &mut SimConfig) {
        cfg.spurious_wake_ppm = 10_000;
    }

    fn bug(&self, variant: &str) -> Option<Bug> {
        match variant {
            "pre-fix" => Some(Bug {
                key: "stale-writer",
                title: "stale writer restored after a rollover loses events",
                oracles: &["invariant:no-loss", "invariant:writer-is-active"],
                kind: RowKind::Schedule,
                origin: Origin::Historical,
                sync_switch: false,
            }),
            "generation-check" => Some(Bug {
                key: "generation-check",
                title: "generation-check-only fix still loses in-flight events",
                oracles: &["invariant:no-loss"],
                kind: RowKind::Schedule,
                origin: Origin::Hypothesized,
                sync_switch: false,
            }),
            _ => None,
        }
    }

    fn run(&self, variant: &str, cfg: SimConfig) -> Result<Outcome, ScenarioError> {
        self.check_variant(variant)?;
        let v = Variant::from_name(variant).unwrap_or(Variant::Fixed);
        Ok(run_once(StoreConfig::new(v), cfg))
    }
}

fn run_once(store_cfg: StoreConfig, cfg: SimConfig) -> Outcome {
    let mut sim = Sim::new(cfg);
    let main = sim.main_handle();
    let world = Arc::new(World {
        backend: Arc::new(MemBackend::new(DynArc::new(main), DynArc::new(main))),
        cfg: store_cfg,
        acked: Mutex::new(Vec::new()),
        appended_by: Mutex::new(BTreeMap::new()),
        attempts_left: AtomicU64::new(ATTEMPTS_MAX),
        next_id: AtomicU64::new(1),
    });
    seed_backfill(&world, &main);
    let w = Arc::clone(&world);
    let node_cfg = NodeConfig {
        faulty: true,
        ..Default::default()
    };
    sim.add_node(
        "store",
        node_cfg,
        Some(Rc::new(move |h: SimHandle| boot(&w, h))),
    );
    sim.run(async move { check_until_done(world, main).await })
}

/// The quiet node's precondition: the active segment holds only rows older
/// than the cutoff (a backfill).
fn seed_backfill(world: &World, h: &SimHandle) {
    let old = h.now_ms() - 8 * DAY_MS;
    let events = vec![Event {
        id: 0,
        ts_ms: old,
        key: "backfill".into(),
        units: 1,
    }];
    let backend = Arc::clone(&world.backend);
    // Written straight to the durable segments before the store boots.
    h.spawn_on("seed-backfill", async move {
        use faultline::store::SegmentBackend;
        let w = backend.open_writer(0).await.expect("in-memory open");
        let _ = backend.insert(w, events).await;
    });
}

/// Boots (or reboots) the store node: reopen the store, start the
/// appenders and the retention loop.
fn boot(world: &Arc<World>, h: SimHandle) {
    let world = Arc::clone(world);
    h.spawn_on("store-boot", async move {
        h.sleep(Duration::from_millis(1)).await;
        let store = match TieredStore::open(Arc::clone(&world.backend), world.cfg).await {
            Ok(s) => Arc::new(s),
            Err(e) => return oracle_failed("store-error", format!("store does not reopen: {e}")),
        };
        for n in 0..APPENDERS {
            let (store, world) = (Arc::clone(&store), Arc::clone(&world));
            let name = TaskName::numbered("appender", "a", n);
            h.spawn_on(name, append_loop(store, world, n, h));
        }
        h.spawn_on("retention", retention_loop(store, h));
    });
}

/// Appender `a<n>`: appends events until the run's attempts are used up.
async fn append_loop(store: Arc<TieredStore<MemBackend>>, world: Arc<World>, n: u64, h: SimHandle) {
    while world
        .attempts_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        let id = world.next_id.fetch_add(1, Ordering::SeqCst);
        let backfill = probe::draw(4) == 0;
        let ts_ms = if backfill {
            h.now_ms() - (8 + probe::draw(3)) * DAY_MS
        } else {
            h.now_ms()
        };
        let ev = Event {
            id,
            ts_ms,
            key: format!("customer-{}", id % 5),
            units: 1 + probe::draw(100),
        };
        if store.append(vec![ev.clone()]).await.is_ok() {
            world.appended_by.with(|a| a.insert(ev.id, n));
            world.acked.with(|a| a.push(ev));
        }
        h.sleep(Duration::from_millis(1 + probe::draw(20))).await;
    }
}

async fn retention_loop(store: Arc<TieredStore<MemBackend>>, h: SimHandle) {
    for _ in 0..RETENTION_PASSES_MAX {
        h.sleep(Duration::from_millis(1 + probe::draw(30))).await;
        if let Err(e) = store.retention(h.now_ms()).await {
            return oracle_failed("store-error", format!("retention failed: {e}"));
        }
        if let Err(e) = store.check_writer_is_active() {
            return oracle_failed("writer-is-active", e);
        }
    }
}

/// The no-loss oracle, from a fresh view of the durable segments.
async fn check_no_loss(world: &World, h: &SimHandle) -> bool {
    let view = match TieredStore::open(Arc::clone(&world.backend), world.cfg).await {
        Ok(v) => v,
        Err(e) => {
            oracle_failed("store-error", format!("segments do not open: {e}"));
            return false;
        }
    };
    let acked = world.acked.with(|a| a.clone());
    let found = match view.query(0, u64::MAX).await {
        Ok(f) => f,
        Err(e) => {
            oracle_failed("store-error", format!("query failed: {e}"));
            return false;
        }
    };
    let cutoff_ms = h.now_ms().saturating_sub(world.cfg.retention_ms);
    let lost = missing_events(&acked, &found, cutoff_ms);
    if let Some(first) = lost.first() {
        let by = world.appended_by.with(|a| a.get(&first.id).copied());
        let by = by.map_or(String::new(), |n| format!(", appended by a{n}"));
        oracle_failed(
            "no-loss",
            format!(
                "{} acknowledged events not older than the cutoff are gone (first: id {} at ts {}{by})",
                lost.len(),
                first.id,
                first.ts_ms
            ),
        );
        return false;
    }
    true
}

async fn check_until_done(world: Arc<World>, h: SimHandle) {
    let start = h.now_ms();
    while world.attempts_left.load(Ordering::SeqCst) > 0 && h.now_ms() - start < RUN_MS_MAX {
        h.sleep(Duration::from_millis(50)).await;
        if !check_no_loss(&world, &h).await {
            return;
        }
    }
    // Let in-flight appends finish, then judge once more.
    h.sleep(Duration::from_millis(100)).await;
    check_no_loss(&world, &h).await;
}
