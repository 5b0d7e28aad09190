//! `retry-storm`: many peers retrying a saturated asset service.
//!
//! A block lands and 100 peers ask for 100 missing files within 5 ms; the
//! service (4 create permits, each creation about 0.4 s) can serve about 10
//! a second, so most requests get 503 + `Retry-After: 1`. Swarm faults:
//! file-store write errors (500) and upstream errors (502).
//!
//! Variants: `pre-fix` is a *naive client* that retries every error every
//! 250 ms until served (at most 200 attempts, a safety cap of the
//! simulation). It is an invention, a hypothesis of what callers without
//! the helper could do: the incident says its callers failed through on a
//! peer error before the fix (one attempt), which breaks no retry rule.
//! `fixed` uses the retry helper (default policy: 6 attempts, 250 ms
//! doubling to 5 s, `Retry-After` honoured, only 503 retried);
//! `fixed-jitter` is the same with full jitter, a second correct variant.
//!
//! Oracle: every caller is judged, attempt by attempt, by the conformance
//! spec of [`super::retry_conformance`] (at most 6 attempts per request,
//! only 503 retried, `Retry-After` honoured, waits within 250 ms..5 s),
//! whose constants are written apart from the helper's configuration.
//! Metrics: load amplification (attempts per served request), the peak
//! synchronized retry wave (retries within one 10 ms window, and the series
//! `retries_per_10ms`), 503s, served, given up, failed.
//!
//! Load axis: the number of peers in the burst (100 at factor 1). The
//! naive client conforms as long as the service never says 503 (at most 4
//! peers, one per create permit, and no injected fault).

use super::asset::{self, SimClient};
use super::fail_violations;
use super::retry_conformance::{self, CallLog};
use crate::plot::{Look, Style};
use crate::scenario::{
    Bug, LoadAxis, Origin, PlotSpec, RowKind, Scenario, ScenarioError, SeriesSource, FIXED,
};
use faultline::admission::load::{Arrival, ItemBytes};
use faultline::admission::{AdmissionConfig, AssetService};
use faultline::clock::Clock;
use faultline::probe::FaultKind;
use faultline::retry::{
    parse_retry_after, retry, Backoff, CancelToken, Jitter, RetryError, RetryFlaw, RetryPolicy,
};
use faultline::sim::{Outcome, Sim, SimConfig, SimHandle};
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
            title: "a naive client (an invention) retries every error every 250 ms: Retry-After ignored, non-503 retried, no attempt cap",
            oracles: retry_conformance::ORACLES,
            kind: RowKind::Load,
            origin: Origin::Hypothesized,
            sync_switch: false,
        })
    }

    fn plots(&self) -> Vec<PlotSpec> {
        vec![PlotSpec {
            file: "retry-storm-waves.svg",
            title: "retry-storm: retries per 10 ms window, without and with jitter",
            y_label: "retries per 10 ms (count)",
            look: Look {
                style: Style::Bars {
                    width_x: WAVE_WINDOW_MS as f64 / 1e3,
                },
                ..Look::COUNT_STEPS
            },
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
        self.run_scaled(variant, cfg, 1.0)
    }

    fn load_axis(&self) -> Option<LoadAxis> {
        Some(LoadAxis {
            unit: "peers",
            rate: PEERS as f64,
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
        let client = match variant {
            "pre-fix" => Caller::Naive,
            "fixed" => Caller::Helper(RetryPolicy::default(), RetryFlaw::None),
            _ => Caller::Helper(
                RetryPolicy {
                    jitter: Jitter::Full,
                    ..RetryPolicy::default()
                },
                RetryFlaw::None,
            ),
        };
        Ok(run_storm(client, cfg, peers_at(factor)))
    }
}

/// The storm of `peers` with callers using the retry helper with `policy`
/// and `flaw` (a drifted or broken helper, for tests of the spec).
pub fn run_with_helper(
    policy: RetryPolicy,
    flaw: RetryFlaw,
    cfg: SimConfig,
    peers: u64,
) -> Outcome {
    run_storm(Caller::Helper(policy, flaw), cfg, peers)
}

/// The peers in the burst at `factor` of the scenario's own 100 (at least
/// one).
pub fn peers_at(factor: f64) -> u64 {
    let peers = (PEERS as f64 * factor).round();
    if peers.is_finite() && peers >= 1.0 {
        peers as u64
    } else {
        1
    }
}

/// How a peer calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    /// Retries every error every 250 ms, no cap (pre-fix).
    Naive,
    /// The retry helper with this policy (and a test-only flaw).
    Helper(RetryPolicy, RetryFlaw),
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
    /// Counts an attempt of a request that logged `log` so far, and judges
    /// it by the conformance spec.
    fn attempt(&self, log: &Mutex<CallLog>, now_ns: u64) {
        let (violations, retry) = log.with(|l| (l.attempt(now_ns), l.attempts() > 1));
        self.counts.with(|c| {
            c.attempts += 1;
            if retry {
                c.retries_at_ms.push((now_ns - self.start_ns) / 1_000_000);
            }
        });
        fail_violations(&violations);
    }

    /// Logs the answer to an attempt: its status and `Retry-After`.
    fn answer(&self, log: &Mutex<CallLog>, e: &faultline::admission::GetError, h: SimHandle) {
        let status = e.status();
        if status == 503 {
            self.counts.with(|c| c.rejected += 1);
        }
        let hint = e
            .retry_after_header()
            .and_then(|v| parse_retry_after(&v, h.now_ms()));
        log.with(|l| l.answer(h.now_ns(), status, hint));
    }
}

fn run_storm(caller: Caller, cfg: SimConfig, peers: u64) -> Outcome {
    let seed = cfg.seed;
    let sim = Sim::new(cfg);
    let h = sim.main_handle();
    let load: DynArc<[Arrival]> = burst(seed, peers).into();
    let adm = AdmissionConfig::fixed(CREATE_PERMITS);
    let world = Arc::new(World {
        svc: asset::service(h, adm, &load, true, &Arc::new(asset::TaskGauge::default())),
        counts: Mutex::new(Counts::default()),
        start_ns: h.now_ns(),
        seed,
    });
    let w = Arc::clone(&world);
    let mut out = sim.run(async move { drive(w, load, caller, h).await });
    report(&mut out, &world, peers);
    out
}

/// `peers` requests for distinct missing files within `BURST_SPREAD_MS`.
fn burst(seed: u64, peers: u64) -> Vec<Arrival> {
    let mut load: Vec<Arrival> = (0..peers)
        .map(|i| Arrival {
            at_ms: (seed ^ i.wrapping_mul(0x9e37_79b9)) % (BURST_SPREAD_MS + 1),
            key: format!("block/{i:05}"),
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
        Caller::Helper(policy, flaw) => {
            helper(&world, &key, &client, index, (policy, flaw), h).await
        }
    }
}

/// The naive client (an invention, see the module docs): every error is
/// retried after 250 ms.
async fn naive(world: &World, key: &str, client: &SimClient, h: SimHandle) {
    let log = Mutex::new(CallLog::default());
    for _ in 0..NAIVE_ATTEMPTS_MAX {
        world.attempt(&log, h.now_ns());
        match world.svc.get(key, client).await {
            Ok(_) => return world.counts.with(|c| c.served += 1),
            Err(e) => world.answer(&log, &e, h),
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
    (policy, flaw): (RetryPolicy, RetryFlaw),
    h: SimHandle,
) {
    let seed = world.seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut backoff = Backoff::new_flawed(policy, seed, flaw);
    let log = Mutex::new(CallLog::default());
    let r = retry(&h, &mut backoff, &CancelToken::new(), |_| {
        world.attempt(&log, h.now_ns());
        let log = &log;
        async move {
            world.svc.get(key, client).await.map_err(|e| {
                world.answer(log, &e, h);
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
fn report(out: &mut Outcome, world: &World, peers: u64) {
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
    m.insert("requests", peers as f64);
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
