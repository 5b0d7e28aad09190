//! `retry-storm`: many peers retrying a saturated asset service.
//!
//! A block lands and 100 peers ask for 100 missing files within 5 ms; the
//! service (4 create permits, each creation about 0.4 s) can serve about 10
//! a second, so most requests get 503 + `Retry-After: 1`. Swarm faults:
//! file-store write errors (500) and upstream errors (502).
//!
//! Variants: `pre-fix` is the client before the retry helper existed: it
//! retries *every* error every 250 ms until served (at most 200 attempts, a
//! safety cap of the simulation). `fixed` uses the retry helper (default
//! policy: 6 attempts, 250 ms doubling to 5 s, `Retry-After` honoured, only
//! 503 retried); `fixed-jitter` is the same with full jitter, a second
//! correct variant.
//!
//! Oracles, checked as the attempts happen: total attempts stay at most
//! `attempts_max` x requests, and no caller retries after an answer other
//! than 503. Metrics: load amplification (attempts per served request), the
//! peak synchronized retry wave (retries within one 10 ms window, and the
//! series `retries_per_10ms`), 503s, served, given up, failed.

use super::asset::{self, SimClient};
use crate::scenario::{
    Bug, Origin, PlotSpec, RowKind, Scenario, ScenarioError, SeriesSource, FIXED,
};
use faultline::admission::load::{Arrival, ItemBytes};
use faultline::admission::{AdmissionConfig, AssetService};
use faultline::clock::Clock;
use faultline::probe::FaultKind;
use faultline::retry::{retry, Backoff, CancelToken, Jitter, RetryError, RetryPolicy};
use faultline::sim::{oracle_failed, Outcome, Sim, SimConfig, SimHandle};
use faultline::sync::{Arc, DynArc, Mutex};
use std::collections::BTreeMap;
use std::time::Duration;

const VARIANTS: &[&str] = &["pre-fix", "fixed", "fixed-jitter"];
/// Peers, one request each.
pub const PEERS: u64 = 100;
/// The peers' requests arrive within this long.
const BURST_SPREAD_MS: u64 = 5;
/// Create permits of the service.
const CREATE_PERMITS: usize = 4;
/// Items per file (one chunk), each of `ITEM_BYTES`.
const ITEMS: u64 = 1_024;
const ITEM_BYTES: u64 = 4_000;
/// Client read speed: a file takes about 0.4 s.
const CLIENT_BYTES_PER_S: u64 = 10_000_000;
/// The pre-fix client's fixed pause between attempts.
const NAIVE_RETRY_MS: u64 = 250;
/// The pre-fix client's attempts at most (the simulation's safety cap; the
/// client itself has none).
const NAIVE_ATTEMPTS_MAX: u32 = 200;
/// The width of a retry wave's window.
pub const WAVE_WINDOW_MS: u64 = 10;

/// Many peers retrying a saturated service.
#[derive(Clone, Debug, Default)]
pub struct RetryStorm;

impl Scenario for RetryStorm {
    fn name(&self) -> &'static str {
        "retry-storm"
    }

    fn about(&self) -> &'static str {
        "100 peers retry a saturated asset service; pre-fix retries every error without a cap, fixed uses the retry helper (jitter off / on)"
    }

    fn variants(&self) -> &'static [&'static str] {
        VARIANTS
    }

    fn holds(&self, variant: &str) -> bool {
        variant == FIXED || variant == "fixed-jitter"
    }

    fn bug(&self, variant: &str) -> Option<Bug> {
        (variant == "pre-fix").then_some(Bug {
            key: "retry-conformance",
            title: "callers retry every error without a cap (load amplification, non-503 retried)",
            oracles: &["invariant:retry-attempts", "invariant:retry-non-503"],
            kind: RowKind::Load,
            origin: Origin::Hypothesized,
        })
    }

    fn plots(&self) -> Vec<PlotSpec> {
        vec![PlotSpec {
            file: "retry-storm-waves.svg",
            title: "retry-storm: retries per 10 ms window, without and with jitter",
            y_label: "retries per 10 ms (count)",
            series: SeriesSource::Metric("retries_per_10ms"),
            variants: &["fixed", "fixed-jitter"],
            limit: None,
            seed: 0,
        }]
    }

    fn fault_kinds(&self) -> &'static [FaultKind] {
        &[FaultKind::Error]
    }

    fn node_faults(&self) -> bool {
        false
    }

    fn configure(&self, _variant: &str, cfg: &mut SimConfig) {
        cfg.spurious_wake_ppm = 5_000;
    }

    fn run(&self, variant: &str, cfg: SimConfig) -> Result<Outcome, ScenarioError> {
        self.check_variant(variant)?;
        let client = match variant {
            "pre-fix" => Caller::Naive,
            "fixed" => Caller::Helper(Jitter::None),
            _ => Caller::Helper(Jitter::Full),
        };
        Ok(run_storm(client, cfg))
    }
}

/// How a peer calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    /// Retries every error every 250 ms, no cap (pre-fix).
    Naive,
    /// The retry helper with the default policy and this jitter.
    Helper(Jitter),
}

#[derive(Debug, Default)]
struct Counts {
    attempts: u64,
    rejected: u64,
    served: u64,
    gave_up: u64,
    failed: u64,
    /// Virtual ms (from the start) of every retry (attempt 2 and later).
    retries_at_ms: Vec<u64>,
}

struct World {
    svc: DynArc<AssetService>,
    counts: Mutex<Counts>,
    start_ns: u64,
    seed: u64,
}

impl World {
    /// Counts an attempt after the answer `prev` to the same request (if
    /// any), checking the oracles.
    fn attempt(&self, prev: Option<u16>, now_ns: u64) {
        let total = self.counts.with(|c| {
            c.attempts += 1;
            if prev.is_some() {
                c.retries_at_ms.push((now_ns - self.start_ns) / 1_000_000);
            }
            c.attempts
        });
        let cap = u64::from(RetryPolicy::default().attempts_max) * PEERS;
        if total > cap {
            oracle_failed(
                "retry-attempts",
                format!("{total} attempts for {PEERS} requests > attempts_max x requests = {cap}"),
            );
        }
        if let Some(status) = prev.filter(|&s| s != 503) {
            oracle_failed(
                "retry-non-503",
                format!("a caller retried after a {status} (only 503 may be retried)"),
            );
        }
    }
}

fn run_storm(caller: Caller, cfg: SimConfig) -> Outcome {
    let seed = cfg.seed;
    let sim = Sim::new(cfg);
    let h = sim.main_handle();
    let load: DynArc<[Arrival]> = burst(seed).into();
    let adm = AdmissionConfig::fixed(CREATE_PERMITS);
    let world = Arc::new(World {
        svc: asset::service(h, adm, &load, true),
        counts: Mutex::new(Counts::default()),
        start_ns: h.now_ns(),
        seed,
    });
    let w = Arc::clone(&world);
    let mut out = sim.run(async move { drive(w, load, caller, h).await });
    report(&mut out, &world);
    out
}

/// `PEERS` requests for distinct missing files within `BURST_SPREAD_MS`.
fn burst(seed: u64) -> Vec<Arrival> {
    let mut load: Vec<Arrival> = (0..PEERS)
        .map(|i| Arrival {
            at_ms: (seed ^ i.wrapping_mul(0x9e37_79b9)) % (BURST_SPREAD_MS + 1),
            key: format!("block/{i:03}"),
            exists: false,
            items: ITEMS,
            item_bytes: ItemBytes::Fixed(ITEM_BYTES),
            client_bytes_per_s: CLIENT_BYTES_PER_S,
        })
        .collect();
    load.sort_by_key(|a| a.at_ms);
    load
}

async fn drive(world: Arc<World>, load: DynArc<[Arrival]>, caller: Caller, h: SimHandle) {
    let mut peers = Vec::with_capacity(load.len());
    for (i, a) in load.iter().enumerate() {
        h.sleep_until(world.start_ns + a.at_ms * 1_000_000).await;
        let w = Arc::clone(&world);
        let key = a.key.clone();
        peers.push(h.spawn_on("peer", peer(w, key, i as u64, caller, h)));
    }
    for p in peers {
        let _ = p.await;
    }
}

async fn peer(world: Arc<World>, key: String, index: u64, caller: Caller, h: SimHandle) {
    let client = SimClient::new(h, CLIENT_BYTES_PER_S);
    match caller {
        Caller::Naive => naive(&world, &key, &client, h).await,
        Caller::Helper(jitter) => helper(&world, &key, &client, index, jitter, h).await,
    }
}

/// The pre-fix client: every error is retried after 250 ms.
async fn naive(world: &World, key: &str, client: &SimClient, h: SimHandle) {
    let mut prev = None;
    for _ in 0..NAIVE_ATTEMPTS_MAX {
        world.attempt(prev, h.now_ns());
        match world.svc.get(key, client).await {
            Ok(_) => return world.counts.with(|c| c.served += 1),
            Err(e) => {
                let status = e.status();
                if status == 503 {
                    world.counts.with(|c| c.rejected += 1);
                }
                prev = Some(status);
            }
        }
        h.sleep(Duration::from_millis(NAIVE_RETRY_MS)).await;
    }
    world.counts.with(|c| c.gave_up += 1);
}

/// The fixed client: the retry helper.
async fn helper(
    world: &World,
    key: &str,
    client: &SimClient,
    index: u64,
    jitter: Jitter,
    h: SimHandle,
) {
    let policy = RetryPolicy {
        jitter,
        ..RetryPolicy::default()
    };
    let mut backoff = Backoff::new(
        policy,
        world.seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15),
    );
    let prev: Mutex<Option<u16>> = Mutex::new(None);
    let r = retry(&h, &mut backoff, &CancelToken::new(), |_| {
        world.attempt(prev.with(|p| *p), h.now_ns());
        let prev = &prev;
        async move {
            world.svc.get(key, client).await.map_err(|e| {
                let status = e.status();
                prev.with(|p| *p = Some(status));
                if status == 503 {
                    world.counts.with(|c| c.rejected += 1);
                }
                asset::answer(e, h.now_ms())
            })
        }
    })
    .await;
    world.counts.with(|c| match r {
        Ok(_) => c.served += 1,
        Err(RetryError::Exhausted { .. }) => c.gave_up += 1,
        Err(_) => c.failed += 1,
    });
}

/// Load amplification and retry waves, as metrics and a series.
fn report(out: &mut Outcome, world: &World) {
    let c = world.counts.with(std::mem::take);
    let mut windows: BTreeMap<u64, u64> = BTreeMap::new();
    for t in &c.retries_at_ms {
        *windows.entry(t / WAVE_WINDOW_MS).or_insert(0) += 1;
    }
    let wave_peak = windows.values().copied().max().unwrap_or(0);
    let series = windows
        .iter()
        .map(|(w, n)| (w * WAVE_WINDOW_MS * 1_000_000, *n as f64))
        .collect();
    out.metrics.series.insert("retries_per_10ms", series);
    let m = &mut out.metrics.values;
    m.insert("requests", PEERS as f64);
    m.insert("attempts", c.attempts as f64);
    m.insert("served", c.served as f64);
    m.insert("gave_up", c.gave_up as f64);
    m.insert("failed_non_503", c.failed as f64);
    m.insert("rejected_503", c.rejected as f64);
    m.insert(
        "amplification",
        c.attempts as f64 / (c.served as f64).max(1.0),
    );
    m.insert("retry_wave_peak", wave_peak as f64);
}
