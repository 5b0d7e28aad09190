//! `subtree-oom`: on-demand creation of large derived files (incident 003)
//! runs the asset service out of memory.
//!
//! **Load.** A ramp of requests (1/s rising to 12/s over 12 s, a different
//! load per seed) asks for subtree files: one in five exists already (fast
//! path); the rest are created on demand. Half are typical subtrees of
//! 100,000 to 150,000 transactions (85 in 100 of 300 B, 15 a 100 KB data
//! carrier: 10,000-item chunks of about 150 MB, near the incident's low
//! figure of 100 MB), half subtrees of data carriers, 130,000 to 200,000 transactions
//! of 10 KB to 500 KB each (the incident's range: chunks of 2.5 GB on
//! average). Clients read 50 to 500 MB/s, the file store writes 500 MB/s
//! (the multi-writer: file store, then client). Chunk fetches fan out
//! upstream into one task per 500 items (20 ms each).
//!
//! **Variants.**
//! * `pre-fix`: creations gated only by the reader semaphore (64 permits,
//!   waited for up to 30 s), 10,000-item chunks, a read-ahead window of 13
//!   chunks per creation (4 fetching, the results queue, the reorder map,
//!   one being written: the incident's "50+ chunks" for four creations), no
//!   pending cap, no client check in the write loop. Its callers make one
//!   attempt and fail through on an error (the incident: callers failed
//!   through before the fix).
//! * `incident-fix`: the incident's fix and nothing more: exists check
//!   first, create semaphore of 4 with try-acquire and 503 +
//!   `Retry-After: 1`, pending cap 2 x concurrency per creation, a client
//!   check every 256 items, 10,000-item chunks. Its callers use the retry
//!   helper (250 ms doubling to 5 s, 6 attempts, `Retry-After` honoured,
//!   503 only).
//! * `fixed`: the incident's fix with 1,024-item chunks (the incident's own
//!   follow-up, "reduce `asset_subtreeDataStreamingChunkSize`") and a
//!   per-key claim; see [`faultline::admission`].
//!
//! **Finding.** The incident's fix does not hold under this load: four
//! creations may hold 4 x 13 chunks of 10,000 x 10-500 KB (about 130 GB on
//! average), and three are already past 64 GiB, so `incident-fix` is
//! OOM-killed like the pre-fix (a bug row of its own, hypothesized: the
//! incident reports no OOM after its fix). Under lighter transactions it
//! holds where the pre-fix dies (`sims/tests/scenario_admission.rs`).
//!
//! **Where the simulator abstracts**, with the incident's figure next to
//! the modelled one: the memory limit is the incident's 64 GiB, unscaled
//! (the meter counts bytes, nothing is allocated); chunks are 10,000 items
//! in both; the incident gives no reader-semaphore size (modelled: 64), no
//! producer concurrency (modelled: 4, which makes its "50+ chunks" for four
//! creations), no file sizes (modelled: 10 to 20 chunks), no mix of
//! transaction sizes (modelled: half the subtrees typical, half data
//! carriers), no client or file store speeds (modelled: 50-500 MB/s and
//! 500 MB/s) and no fetch latency
//! (modelled: 20 ms per batch); a creation writes 256 items at a time (the
//! incident: one transaction at a time, checking the client every 256).
//! The fan-out is 20 tasks per 10,000-item chunk (the incident's profile:
//! about 1,900 errgroup goroutines for 103 `getTxs`, 66k goroutines at OOM
//! in all); the simulated count (callers and fetch tasks alive, tens to a
//! few hundred at OOM) is far below the incident's, because a fetch task
//! here lives 20 ms and nothing else blocks in a batcher: the model
//! reaches the OOM through chunk bytes, not through goroutine stacks. Callers of the fixed services that give up after 6 attempts
//! requeue the request after 30 s, at most 20 rounds: an invention (the
//! incident's callers fall back to their peer-failure handling).
//!
//! **Oracles.** The memory meter never crosses 64 GiB (OOM); on a service
//! with create permits peak memory stays within permits x window x chunk
//! bytes + readers x read buffer (`memory-bound`), every 503 carries
//! `Retry-After: 1`, no helper caller fails with another error
//! (`request-failed`), and a run that asked for missing files created at
//! least one (`no-progress`: a service that only ever says 503 does not
//! hold). How many callers were served within their rounds is a metric
//! (`completion_rate`, `unserved`), not an oracle: four permits serve what
//! they can, and the scenario is about the service surviving its load.
//!
//! **Metrics**, the incident's figures beside the simulated ones (the
//! report prints them): `permits_incident` / `permits_sim`,
//! `mem_limit_gib_incident` / `mem_limit_gib_sim` / `mem_peak_gib_sim`,
//! `goroutines_at_oom_incident` / `goroutines_at_oom_sim` /
//! `goroutines_peak_sim` (tasks alive: callers and fan-out tasks),
//! `chunk_items_incident` / `chunk_items_sim`, `rate_503_sim` (the incident
//! measured none); and OOM time, creations at OOM, completion rate.
//!
//! **Load axis**: the ramp's rate (its peak, 6 req/s at factor 1).

use super::asset::{self, SimClient, TaskGauge};
use crate::plot::{Look, Unit};
use crate::scenario::{
    Bug, LoadAxis, Origin, PlotSpec, RowKind, Scenario, ScenarioError, SeriesSource, FIXED,
};
use faultline::admission::load::{self, Arrival, ItemBytes, Shape};
use faultline::admission::{AdmissionConfig, AssetService, INCIDENT_CHUNK_ITEMS};
use faultline::clock::Clock;
use faultline::probe::FaultKind;
use faultline::retry::{retry, Backoff, CancelToken, RetryError, RetryPolicy};
use faultline::sched::TaskHandle;
use faultline::sim::{
    metric_add, metric_max, oracle_failed, Failure, Outcome, Sim, SimConfig, SimHandle, TaskName,
};
use faultline::sync::{Arc, DynArc};
use std::collections::VecDeque;
use std::time::Duration;

const VARIANTS: &[&str] = &["pre-fix", "incident-fix", "fixed"];

/// Memory plots: bytes held, sampled at each change.
const MEMORY_LOOK: Look = Look {
    unit: Unit::Bytes,
    ..Look::COUNT_STEPS
};
/// The memory limit: the incident's 64 GiB.
pub const MEM_LIMIT_BYTES: u64 = 64 << 30;
/// Create permits of the fixed services (the incident's default).
pub const CREATE_PERMITS: usize = 4;
/// Goroutines the incident's profile counted at OOM.
pub const INCIDENT_GOROUTINES_AT_OOM: f64 = 66_000.0;
/// A fast-path reader's buffer (large, so a simulated stream is a few
/// dozen sends, not thousands).
pub const READ_BUFFER_BYTES: u64 = 64 << 20;
/// Rounds of the retry helper a caller runs at most before giving up.
pub const CALLER_ROUNDS_MAX: u32 = 20;
/// How long a caller waits before requeueing after the helper gave up.
pub const REQUEUE_MS: u64 = 30_000;
/// The ramp: from this rate ...
const RAMP_FROM_PER_S: f64 = 1.0;
/// ... to this one (the load axis' own rate) ...
pub const RAMP_TO_PER_S: f64 = 12.0;
/// ... over this long.
const RAMP_MS: u64 = 12_000;

/// Admission against OOM, on a ramp of subtree requests.
#[derive(Clone, Debug, Default)]
pub struct SubtreeOom;

impl Scenario for SubtreeOom {
    fn name(&self) -> &'static str {
        "subtree-oom"
    }

    fn about(&self) -> &'static str {
        "asset service under a ramp of large on-demand creations (incident 003); pre-fix (reader gate only) and the incident's own fix (10,000-item chunks) are OOM-killed, fixed (1,024-item chunks) stays within its memory bound and answers 503 + Retry-After"
    }

    fn variants(&self) -> &'static [&'static str] {
        VARIANTS
    }

    fn bug(&self, variant: &str) -> Option<Bug> {
        match variant {
            "pre-fix" => Some(Bug {
                key: "oom-unbounded-creation",
                title: "unbounded concurrent on-demand creations OOM-kill the service",
                oracles: &["oom"],
                kind: RowKind::Load,
                origin: Origin::Historical,
                sync_switch: false,
            }),
            "incident-fix" => Some(Bug {
                key: "oom-incident-fix-large-txs",
                title: "the incident's fix OOMs under 10-500 KB transactions: 4 creations x 13 chunks x 10,000 items",
                oracles: &["oom"],
                kind: RowKind::Load,
                origin: Origin::Hypothesized,
                sync_switch: false,
            }),
            _ => None,
        }
    }

    fn plots(&self) -> Vec<PlotSpec> {
        vec![
            PlotSpec {
                file: "subtree-oom-memory.svg",
                title: "subtree-oom: memory held, pre-fix, the incident's fix, fixed",
                y_label: "memory held",
                look: MEMORY_LOOK,
                series: SeriesSource::Memory,
                variants: VARIANTS,
                limit: Some(("memory limit (64 GiB)", "mem_limit_bytes")),
                seed: 0,
            },
            PlotSpec {
                file: "subtree-oom-memory-start.svg",
                title:
                    "subtree-oom: memory held, the first 50 s (both buggy variants cross the limit)",
                y_label: "memory held",
                look: Look {
                    x_max: Some(50.0),
                    ..MEMORY_LOOK
                },
                series: SeriesSource::Memory,
                variants: VARIANTS,
                limit: Some(("memory limit (64 GiB)", "mem_limit_bytes")),
                seed: 0,
            },
            PlotSpec {
                file: "subtree-oom-creations.svg",
                title: "subtree-oom: concurrent creations",
                y_label: "creations running (count)",
                look: Look::COUNT_STEPS,
                series: SeriesSource::Metric("creations"),
                variants: VARIANTS,
                limit: None,
                seed: 0,
            },
        ]
    }

    fn fault_kinds(&self) -> &'static [FaultKind] {
        &[FaultKind::Latency]
    }

    fn node_faults(&self) -> bool {
        false
    }

    fn configure(&self, _variant: &str, cfg: &mut SimConfig) {
        cfg.mem_limit_bytes = Some(MEM_LIMIT_BYTES);
        cfg.spurious_wake_ppm = 5_000;
    }

    fn run(&self, variant: &str, cfg: SimConfig) -> Result<Outcome, ScenarioError> {
        self.run_scaled(variant, cfg, 1.0)
    }

    fn load_axis(&self) -> Option<LoadAxis> {
        Some(LoadAxis {
            unit: "req/s",
            rate: RAMP_TO_PER_S,
            factor_min: 0.01,
            factor_max: 20.0,
        })
    }

    fn run_scaled(
        &self,
        variant: &str,
        cfg: SimConfig,
        factor: f64,
    ) -> Result<Outcome, ScenarioError> {
        self.check_variant(variant)?;
        let load = ramp_load(cfg.seed, factor).into();
        Ok(run_load(service_config(variant), &load, cfg))
    }

    fn holds(&self, variant: &str) -> bool {
        variant == FIXED
    }
}

/// The service of `variant`: pre-fix, the incident's fix, or fixed.
pub fn service_config(variant: &str) -> AdmissionConfig {
    let base = match variant {
        "pre-fix" => AdmissionConfig::pre_fix(),
        "incident-fix" => AdmissionConfig::incident_fix(),
        _ => AdmissionConfig::fixed(CREATE_PERMITS),
    };
    AdmissionConfig {
        read_buffer_bytes: READ_BUFFER_BYTES,
        ..base
    }
}

/// Subtree files of `items_min..=items_max` items of `item_bytes`, keys
/// starting with `key_prefix`.
pub fn subtree_shape(
    key_prefix: &str,
    (items_min, items_max): (u64, u64),
    item_bytes: ItemBytes,
) -> Shape {
    Shape {
        key_prefix: key_prefix.into(),
        exists_ppm: 200_000,
        items_min,
        items_max,
        item_bytes,
        client_bytes_per_s_min: 50_000_000,
        client_bytes_per_s_max: 500_000_000,
    }
}

/// Typical transactions: 85 in 100 are 300 B payments, 15 a 100 KB data
/// carrier (about 15 KB on average: a 10,000-item chunk is 150 MB, near the
/// incident's low figure of 100 MB).
pub fn typical_items() -> ItemBytes {
    ItemBytes::Mix(vec![(85, 300), (15, 100_000)])
}

/// Data-carrier transactions, the incident's 10 KB to 500 KB (a chunk is
/// 2.5 GB on average).
pub fn carrier_items() -> ItemBytes {
    ItemBytes::Uniform([10_000, 500_000])
}

/// Half the subtrees asked for are of data carriers.
const CARRIER_SHARE: f64 = 0.5;
/// Items of a typical subtree (10 to 15 incident chunks).
const TYPICAL_ITEMS: (u64, u64) = (100_000, 150_000);
/// Items of a subtree of data carriers (13 to 20 incident chunks: a full
/// read-ahead window).
const CARRIER_ITEMS: (u64, u64) = (130_000, 200_000);

/// The ramp of `seed` at `factor` times the scenario's rate: half the
/// subtrees of typical transactions, half of data carriers, merged in time
/// order.
pub fn ramp_load(seed: u64, factor: f64) -> Vec<Arrival> {
    let typical = subtree_shape("subtree/", TYPICAL_ITEMS, typical_items());
    let carriers = subtree_shape("carrier/", CARRIER_ITEMS, carrier_items());
    let mut load = ramp_of(&typical, seed, factor * (1.0 - CARRIER_SHARE));
    load.extend(ramp_of(&carriers, seed ^ 0x5eed, factor * CARRIER_SHARE));
    load.sort_by_key(|a| a.at_ms);
    load
}

/// The same ramp with typical transactions only: the load under which the
/// incident's fix holds and the pre-fix does not (from about twice the
/// scenario's rate).
pub fn light_ramp_load(seed: u64, factor: f64) -> Vec<Arrival> {
    let typical = subtree_shape("subtree/", TYPICAL_ITEMS, typical_items());
    ramp_of(&typical, seed, factor)
}

fn ramp_of(shape: &Shape, seed: u64, factor: f64) -> Vec<Arrival> {
    let f = if factor.is_finite() && factor > 0.0 {
        factor
    } else {
        0.0
    };
    load::ramp(shape, RAMP_FROM_PER_S * f, RAMP_TO_PER_S * f, RAMP_MS, seed)
}

/// How callers call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Callers {
    /// One attempt; an error fails the request through (before the fix).
    FailThrough,
    /// The retry helper (default policy), requeued while it gives up.
    Helper,
}

struct World {
    svc: DynArc<AssetService>,
    load: DynArc<[Arrival]>,
    seed: u64,
    callers: Callers,
    tasks: Arc<TaskGauge>,
}

/// Replays `load` (shared, never copied) against the service `adm` under
/// `cfg` and judges it; the pre-fix service's callers fail through, every
/// other service's use the retry helper.
pub fn run_load(adm: AdmissionConfig, load: &DynArc<[Arrival]>, cfg: SimConfig) -> Outcome {
    let callers = if adm.creations_take_reader_permit {
        Callers::FailThrough
    } else {
        Callers::Helper
    };
    run_load_with(adm, callers, load, cfg)
}

/// [`run_load`] with the callers chosen.
pub fn run_load_with(
    adm: AdmissionConfig,
    callers: Callers,
    load: &DynArc<[Arrival]>,
    cfg: SimConfig,
) -> Outcome {
    let seed = cfg.seed;
    let sim = Sim::new(cfg);
    let h = sim.main_handle();
    let tasks = Arc::new(TaskGauge::default());
    let world = Arc::new(World {
        svc: asset::service(h, adm, load, false, &tasks),
        load: DynArc::clone(load),
        seed,
        callers,
        tasks,
    });
    let w = Arc::clone(&world);
    let mut out = sim.run(async move { drive(w, h).await });
    judge(&mut out, &adm, load);
    let created = world.svc.stats().created;
    let asked = load.iter().filter(|a| !a.exists).count();
    if out.failure.is_none() && asked > 0 && created == 0 {
        out.failure = Some(Failure::invariant(
            "no-progress",
            format!("{asked} requests asked for missing files and none was created"),
        ));
    }
    out
}

/// Starts one caller per arrival at its time, then waits for them all.
async fn drive(world: Arc<World>, h: SimHandle) {
    let start_ns = h.now_ns();
    // The callers still running, in arrival order: a caller that has ended
    // needs no join, so its handle is let go as soon as it is seen ended.
    let mut callers = VecDeque::new();
    for i in 0..world.load.len() {
        h.sleep_until(start_ns + world.load[i].at_ms * 1_000_000)
            .await;
        let w = Arc::clone(&world);
        let name = TaskName::numbered("caller", "r", i as u64);
        callers.push_back(h.spawn_on(name, caller(w, i, h)));
        while callers.front().is_some_and(TaskHandle::is_finished) {
            callers.pop_front();
        }
    }
    for c in callers {
        let _ = c.await;
    }
}

/// One request (arrival `index`).
async fn caller(world: Arc<World>, index: usize, h: SimHandle) {
    let _alive = TaskGauge::enter(&world.tasks);
    let a = &world.load[index];
    let client = SimClient::new(h, a.client_bytes_per_s);
    if world.callers == Callers::FailThrough {
        metric_add("attempts", 1.0);
        return match world.svc.get(&a.key, &client).await {
            Ok(_) => metric_add("served", 1.0),
            Err(e) => {
                if e.status() == 503 {
                    metric_add("rejected_503", 1.0);
                }
                metric_add("failed_through", 1.0);
            }
        };
    }
    helper_caller(&world, &client, index as u64, h).await;
}

/// A request through the retry helper, requeued while the helper gives up,
/// at most [`CALLER_ROUNDS_MAX`] rounds; then it counts as `unserved`.
async fn helper_caller(world: &World, client: &SimClient, index: u64, h: SimHandle) {
    let a = &world.load[index as usize];
    let cancel = CancelToken::new();
    for round in 1..=CALLER_ROUNDS_MAX {
        let seed = world.seed ^ (index << 32) ^ u64::from(round);
        let mut backoff = Backoff::new(RetryPolicy::default(), seed);
        let r = retry(&h, &mut backoff, &cancel, |_| {
            metric_add("attempts", 1.0);
            let (svc, key) = (&world.svc, &a.key);
            async move {
                svc.get(key, client).await.map_err(|e| {
                    if e.status() == 503 {
                        metric_add("rejected_503", 1.0);
                    }
                    asset::answer(e, h.now_ms())
                })
            }
        })
        .await;
        match r {
            Ok(_) => {
                metric_add("served", 1.0);
                return metric_max("caller_rounds_max", f64::from(round));
            }
            Err(RetryError::Exhausted { .. }) => h.sleep(Duration::from_millis(REQUEUE_MS)).await,
            Err(e) => {
                return oracle_failed(
                    "request-failed",
                    format!("request r{index} for {} failed: {e}", a.key),
                )
            }
        }
    }
    metric_add("unserved", 1.0);
}

const GIB: f64 = (1u64 << 30) as f64;

/// The memory bound of a service with create permits, and the metrics
/// derived at the end: rates, the OOM's time, creations and goroutines,
/// the incident's figures beside the simulated ones.
fn judge(out: &mut Outcome, adm: &AdmissionConfig, load: &[Arrival]) {
    let requests = load.len() as f64;
    let bound = asset::memory_bound_bytes(adm, load);
    let limited = adm.create_permits_max > 0 && !adm.creations_take_reader_permit;
    let m = &mut out.metrics.values;
    for name in [
        "attempts",
        "rejected_503",
        "served",
        "failed_through",
        "unserved",
        "caller_rounds_max",
        "creations_peak",
        "goroutines_peak_sim",
    ] {
        m.entry(name).or_insert(0.0);
    }
    let creations_now = m.remove("creations_now").unwrap_or(0.0);
    let goroutines_now = m.remove("goroutines_now").unwrap_or(0.0);
    m.insert("requests", requests);
    m.insert("completion_rate", m["served"] / requests.max(1.0));
    m.insert("rate_503_sim", m["rejected_503"] / m["attempts"].max(1.0));
    m.insert("permits_incident", CREATE_PERMITS as f64);
    m.insert(
        "permits_sim",
        if limited {
            adm.create_permits_max as f64
        } else {
            0.0
        },
    );
    m.insert("chunk_items_incident", INCIDENT_CHUNK_ITEMS as f64);
    m.insert("chunk_items_sim", adm.chunk_items as f64);
    m.insert("mem_limit_gib_incident", 64.0);
    m.insert("mem_limit_gib_sim", MEM_LIMIT_BYTES as f64 / GIB);
    m.insert("mem_limit_bytes", MEM_LIMIT_BYTES as f64);
    m.insert("mem_peak_gib_sim", out.mem_peak_bytes as f64 / GIB);
    m.insert("goroutines_at_oom_incident", INCIDENT_GOROUTINES_AT_OOM);
    if limited {
        m.insert("mem_bound_gib", bound as f64 / GIB);
    }
    if let Some(Failure::Oom { .. }) = out.failure {
        m.insert("oom_at_ms", out.virtual_ns as f64 / 1e6);
        m.insert("creations_at_oom", creations_now);
        m.insert("goroutines_at_oom_sim", goroutines_now);
    }
    if out.failure.is_none() && limited && out.mem_peak_bytes > bound {
        out.failure = Some(Failure::invariant(
            "memory-bound",
            format!(
                "peak memory {} > permits x window x chunk bytes + readers x buffer = {bound}",
                out.mem_peak_bytes
            ),
        ));
    }
}
