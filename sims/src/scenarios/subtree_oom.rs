//! `subtree-oom`: on-demand creation of large derived files without an
//! admission cap runs the process out of memory.
//!
//! A ramp of requests (1/s rising to 12/s over 20 s, a different load per
//! seed) asks the asset service for subtree files: one in five exists
//! already (fast path); the rest are created on demand from 1,024 to 4,096
//! items, 70 % small payments (300 B) and 30 % data carriers (500 KB), for
//! slow clients (5 to 50 MB/s) and a file store writing 200 MB/s. The
//! memory limit is 4 GiB (a 64 GiB machine scaled 1:16: item and chunk
//! sizes are real, the limit is not). Callers use the retry helper (default
//! policy, 6 attempts); a caller whose helper gives up requeues the request
//! after 30 s, at most 40 rounds. Swarm faults: latency spikes of the file
//! store.
//!
//! Oracles: the memory meter never crosses the limit (OOM); on the fixed
//! service peak memory stays within permits x chunk bytes + readers x read
//! buffer, every 503 carries `Retry-After: 1`, no request fails with
//! another error, and every request is served. Pre-fix
//! (`create_permits_max = 0`) is OOM-killed; fixed holds.
//!
//! Metrics: peak memory, OOM virtual time and concurrent creations at OOM,
//! 503 count and rate, completion rate (`faultline run subtree-oom --seed N`
//! prints them; `--csv DIR` writes memory and creations over virtual time).

use super::asset::{self, SimClient};
use crate::scenario::{Bug, Origin, PlotSpec, RowKind, Scenario, ScenarioError, SeriesSource};
use faultline::admission::load::{self, Arrival, ItemBytes, Shape};
use faultline::admission::{AdmissionConfig, AssetService};
use faultline::clock::Clock;
use faultline::probe::FaultKind;
use faultline::retry::{retry, Backoff, CancelToken, RetryError, RetryPolicy};
use faultline::sched::TaskHandle;
use faultline::sim::{
    metric_add, metric_max, oracle_failed, Failure, Outcome, Sim, SimConfig, SimHandle,
};
use faultline::sync::{Arc, DynArc};
use std::collections::VecDeque;
use std::time::Duration;

const VARIANTS: &[&str] = &["pre-fix", "fixed"];
/// The memory limit: 64 GiB scaled 1:16.
pub const MEM_LIMIT_BYTES: u64 = 4 << 30;
/// Create permits of the fixed service.
pub const CREATE_PERMITS: usize = 4;
/// A fast-path reader's buffer (large, so a simulated stream is a few
/// dozen sends, not thousands).
pub const READ_BUFFER_BYTES: u64 = 8 << 20;
/// Rounds of the retry helper a caller runs at most before giving up.
pub const CALLER_ROUNDS_MAX: u32 = 40;
/// How long a caller waits before requeueing after the helper gave up.
pub const REQUEUE_MS: u64 = 30_000;
/// The ramp: from this rate ...
const RAMP_FROM_PER_S: f64 = 1.0;
/// ... to this one ...
const RAMP_TO_PER_S: f64 = 12.0;
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
        "asset service under a ramp of large on-demand creations; pre-fix (no creation cap) is OOM-killed, fixed answers 503 + Retry-After and serves everyone"
    }

    fn variants(&self) -> &'static [&'static str] {
        VARIANTS
    }

    fn bug(&self, variant: &str) -> Option<Bug> {
        (variant == "pre-fix").then_some(Bug {
            key: "oom-unbounded-creation",
            title: "unbounded concurrent on-demand creations OOM-kill the service",
            oracles: &["oom"],
            kind: RowKind::Load,
            origin: Origin::Historical,
        })
    }

    fn plots(&self) -> Vec<PlotSpec> {
        vec![
            PlotSpec {
                file: "subtree-oom-memory.svg",
                title: "subtree-oom: memory held, without (pre-fix) and with admission control",
                y_label: "memory held (bytes)",
                series: SeriesSource::Memory,
                variants: VARIANTS,
                limit: Some(("memory limit", "mem_limit_bytes")),
                seed: 0,
            },
            PlotSpec {
                file: "subtree-oom-creations.svg",
                title: "subtree-oom: concurrent creations",
                y_label: "creations running (count)",
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
        self.check_variant(variant)?;
        let load = ramp_load(cfg.seed).into();
        Ok(run_load(service_config(variant), &load, cfg))
    }
}

/// The service of `variant`: pre-fix (unlimited creations) or fixed.
pub fn service_config(variant: &str) -> AdmissionConfig {
    let base = if variant == "pre-fix" {
        AdmissionConfig::pre_fix()
    } else {
        AdmissionConfig::fixed(CREATE_PERMITS)
    };
    AdmissionConfig {
        read_buffer_bytes: READ_BUFFER_BYTES,
        ..base
    }
}

/// The ramp of `seed`.
pub fn ramp_load(seed: u64) -> Vec<Arrival> {
    let shape = Shape {
        key_prefix: "subtree/".into(),
        exists_ppm: 200_000,
        items_min: 1_024,
        items_max: 4_096,
        item_bytes: ItemBytes::Mix(vec![(70, 300), (30, 500_000)]),
        client_bytes_per_s_min: 5_000_000,
        client_bytes_per_s_max: 50_000_000,
    };
    load::ramp(&shape, RAMP_FROM_PER_S, RAMP_TO_PER_S, RAMP_MS, seed)
}

struct World {
    svc: DynArc<AssetService>,
    load: DynArc<[Arrival]>,
    seed: u64,
}

/// Replays `load` (shared, never copied) against the service `adm` under
/// `cfg` and judges it.
pub fn run_load(adm: AdmissionConfig, load: &DynArc<[Arrival]>, cfg: SimConfig) -> Outcome {
    let seed = cfg.seed;
    let sim = Sim::new(cfg);
    let h = sim.main_handle();
    let world = Arc::new(World {
        svc: asset::service(h, adm, load, false),
        load: DynArc::clone(load),
        seed,
    });
    let w = Arc::clone(&world);
    let mut out = sim.run(async move { drive(w, h).await });
    judge(&mut out, &adm, load);
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
        metric_add("arrived", 1.0);
        let w = Arc::clone(&world);
        callers.push_back(h.spawn_on("caller", caller(w, i, h)));
        while callers.front().is_some_and(TaskHandle::is_finished) {
            callers.pop_front();
        }
    }
    for c in callers {
        let _ = c.await;
    }
}

/// One request (arrival `index`) through the retry helper, requeued while
/// the helper gives up, at most [`CALLER_ROUNDS_MAX`] rounds.
async fn caller(world: Arc<World>, index: usize, h: SimHandle) {
    let a = &world.load[index];
    let index = index as u64;
    let client = SimClient::new(h, a.client_bytes_per_s);
    let cancel = CancelToken::new();
    for round in 1..=CALLER_ROUNDS_MAX {
        let seed = world.seed ^ (index << 32) ^ u64::from(round);
        let mut backoff = Backoff::new(RetryPolicy::default(), seed);
        let r = retry(&h, &mut backoff, &cancel, |_| {
            metric_add("attempts", 1.0);
            let (svc, client, key) = (&world.svc, &client, &a.key);
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
                    format!("request for {} failed: {e}", a.key),
                )
            }
        }
    }
    oracle_failed(
        "not-served",
        format!(
            "request for {} not served after {CALLER_ROUNDS_MAX} rounds of retries",
            a.key
        ),
    );
}

/// The fixed service's memory bound, and the metrics derived at the end
/// (rates, peak memory, the OOM's time and concurrent creations).
fn judge(out: &mut Outcome, adm: &AdmissionConfig, load: &[Arrival]) {
    let requests = load.len() as f64;
    let bound = asset::memory_bound_bytes(adm, load);
    let m = &mut out.metrics.values;
    for name in [
        "arrived",
        "attempts",
        "rejected_503",
        "served",
        "caller_rounds_max",
    ] {
        m.entry(name).or_insert(0.0);
    }
    m.insert("requests", requests);
    m.insert("completion_rate", m["served"] / requests.max(1.0));
    m.insert("rate_503", m["rejected_503"] / m["attempts"].max(1.0));
    m.insert(
        "peak_mem_mib",
        out.mem_peak_bytes as f64 / f64::from(1 << 20),
    );
    m.insert("mem_limit_mib", MEM_LIMIT_BYTES as f64 / f64::from(1 << 20));
    m.insert("mem_limit_bytes", MEM_LIMIT_BYTES as f64);
    if adm.create_permits_max > 0 {
        m.insert("mem_bound_mib", bound as f64 / f64::from(1 << 20));
    }
    if let Some(Failure::Oom { .. }) = out.failure {
        m.insert("oom_at_ms", out.virtual_ns as f64 / 1e6);
        let at_oom = m.get("creations_now").copied().unwrap_or(0.0);
        m.insert("creations_at_oom", at_oom);
    }
    if out.failure.is_none() && adm.create_permits_max > 0 && out.mem_peak_bytes > bound {
        out.failure = Some(Failure::invariant(
            "memory-bound",
            format!(
                "peak memory {} > permits x chunk bytes + readers x buffer = {bound}",
                out.mem_peak_bytes
            ),
        ));
    }
}
