//! `socket-pileup`: the trace writer's socket sink piles up blocking
//! threads while its peer restarts.
//!
//! Requests arrive at [`RATE_PER_S`] per second (2; the load axis scales
//! it) for 120 s (open loop) and each writes a
//! trace through the writer to the socket sink. The socket peer restarts
//! once, for 60 s, starting at 20 s + a drawn delay: meanwhile every send
//! waits for its timeout (the peer's listening socket queues the
//! connection, nobody answers). Swarm faults add errors, 503s, hangs,
//! latency spikes and more restarts (10 s each). Then the writer shuts down
//! with a 5 s deadline and three more writes must be refused.
//!
//! Each send runs on a simulated blocking thread that stays busy for as
//! long as the send takes, so the simulator's count of blocking threads
//! alive (`Outcome::threads_peak`) shows the pile-up. Pre-fix, one detached
//! thread per trace tries 3 times with a 60 s timeout: during the outage
//! the threads alive climb at the arrival rate toward `rate x 180 s` (they
//! reach about `rate x 60 s` before the peer is back). The incident's fix
//! (`incident-fix`) changes only the timeout, to 5 s: a thread lives at
//! most 15 s, so about `rate x 15 s` are alive. Fixed, a send is one 5 s
//! attempt on a thread the writer waits for (its retries wait off any
//! thread), at most 64 in flight.
//!
//! Oracles:
//! * `thread-pileup`: blocking threads alive never exceed
//!   `ceil(rate x 2 x 15 s) + 1`, judged after the run from the
//!   simulator's thread meter. The bound comes from the incident and the
//!   offered load, not from any variant's configuration: the incident's
//!   fix lets a trace hold a thread for at most 3 attempts x 5 s = 15 s
//!   ("fast failure lets retries resolve before threads pile up"); a
//!   writer may spread those 15 s over its retries, so the bound allows
//!   the traces of twice that window (Little's law), plus one.
//! * `accounting` (of [`trace_common`](super::trace_common)): a trace
//!   counted delivered must have reached the peer. Pre-fix and
//!   incident-fix count a trace delivered when its detached thread
//!   starts, so a thread that gives up loses it silently: with the 5 s
//!   timeout every trace whose 15 s of attempts fall inside the outage is
//!   lost so (a faultline finding: the incident's fix does not stop it,
//!   faultline's waits for the send and counts the drop).
//! * `pool-exhausted`: the `-capped-pool` variants run with
//!   `threads_max = 64`: a watchdog sampling the sink's sends waiting for a
//!   thread reports the pool's exhaustion (pre-fix) and stops the run
//!   instead of letting every later send queue; fixed never exhausts it.
//!
//! `forgets-drop` (fixed, with a test-only flaw that does not count a
//! drop) breaks the accounting.
//!
//! Metrics: `threads_peak`, `threads_bound`, `threads_rate_x_15s`,
//! `threads_rate_x_180s`, `send_thread_ms_max` (the longest a send held
//! its thread) beside the incident's `incident_thread_life_s_pre_fix`
//! (180) and `incident_thread_life_s_fix` (15), `pool_exhausted_at_ms`,
//! the books; series `task_set` and `sends_waiting` (1 s), and the
//! simulator's `blocking_threads`.

use super::trace_common::{
    check_accounting, offer_load, plan_faults, sample_tasks, service_variant, shut_down,
    writer_config, Tally, FAULT_KINDS, FORGETS_DROP, INCIDENT_FIX, PRE_FIX,
};
use super::violations_failure;
use crate::plot::Look;
use crate::scenario::{
    Bug, LoadAxis, Origin, PlotSpec, RowKind, Scenario, ScenarioError, SeriesSource, FIXED,
};
use faultline::clock::{Clock, NS_PER_MS};
use faultline::probe::{self, FaultKind};
use faultline::sim::{metric_set, oracle_failed, sample, Outcome, Sim, SimConfig, SimHandle};
use faultline::sync::{Arc, DynArc, Mutex};
use faultline::trace_writer::{SocketPeer, SocketSink, TraceWriter, SOCKET_SITE};
use std::time::Duration;

const PRE_FIX_CAPPED: &str = "pre-fix-capped-pool";
const FIXED_CAPPED: &str = "fixed-capped-pool";
const VARIANTS: &[&str] = &[
    PRE_FIX,
    INCIDENT_FIX,
    FIXED,
    PRE_FIX_CAPPED,
    FIXED_CAPPED,
    FORGETS_DROP,
];
/// Requests (traces) per second at load factor 1.
pub const RATE_PER_S: f64 = 2.0;
/// The incident's send timeout after the fix, s.
const INCIDENT_TIMEOUT_S: f64 = 5.0;
/// The incident's pre-fix send timeout, s.
const INCIDENT_PRE_FIX_TIMEOUT_S: f64 = 60.0;
/// The incident's attempts per trace ("3 retries").
const INCIDENT_ATTEMPTS: f64 = 3.0;
const LOAD_MS: u64 = 120_000;
/// The planned peer restart: at 20 s + draw(10 s), for this long.
const OUTAGE_MS: u64 = 60_000;
/// A restart by the `Crash` fault point lasts this long.
const CRASH_RESTART_MS: u64 = 10_000;
/// A send to a live peer takes this long.
const SEND_MS: u64 = 1;
/// Blocking threads of the `-capped-pool` variants.
const THREADS_MAX: usize = 64;
const SAMPLE_MS: u64 = 1_000;
const SHUTDOWN_GRACE_MS: u64 = 5_000;
const AFTER_SHUTDOWN: u64 = 3;

type Writer = TraceWriter<SocketSink>;

/// The socket sink's blocking-thread pile-up.
#[derive(Clone, Debug, Default)]
pub struct SocketPileup;

impl Scenario for SocketPileup {
    fn name(&self) -> &'static str {
        "socket-pileup"
    }

    fn about(&self) -> &'static str {
        "trace writer: one detached 3 x 60 s socket thread per trace piles up while the peer restarts; incident-fix (5 s) keeps threads down but loses traces silently; fixed waits for one 5 s attempt"
    }

    fn variants(&self) -> &'static [&'static str] {
        VARIANTS
    }

    fn bug(&self, variant: &str) -> Option<Bug> {
        match variant {
            PRE_FIX => Some(Bug {
                key: "socket-thread-pileup",
                title: "a blocking thread per trace with a 60 s timeout piles up while the peer restarts",
                oracles: &["invariant:thread-pileup", "invariant:pool-exhausted"],
                kind: RowKind::Load,
                origin: Origin::Historical,
                sync_switch: false,
            }),
            INCIDENT_FIX => Some(Bug {
                key: "socket-detached-loss",
                title: "the incident's fix (5 s timeout only): a detached send thread that gives up after 3 x 5 s loses a trace already counted delivered",
                oracles: &["invariant:accounting"],
                kind: RowKind::Load,
                origin: Origin::Hypothesized,
                sync_switch: false,
            }),
            _ => None,
        }
    }

    fn plots(&self) -> Vec<PlotSpec> {
        vec![PlotSpec {
            file: "socket-pileup-threads.svg",
            title: "socket-pileup: blocking threads alive while the peer restarts",
            y_label: "blocking threads alive (count)",
            look: Look {
                panels: true,
                ..Look::COUNT_STEPS
            },
            series: SeriesSource::BlockingThreads,
            variants: &[PRE_FIX, INCIDENT_FIX, FIXED],
            limit: None,
            seed: 1,
        }]
    }

    fn holds(&self, variant: &str) -> bool {
        variant == FIXED || variant == FIXED_CAPPED
    }

    fn fault_kinds(&self) -> &'static [FaultKind] {
        FAULT_KINDS
    }

    fn node_faults(&self) -> bool {
        false
    }

    fn configure(&self, variant: &str, cfg: &mut SimConfig) {
        cfg.spurious_wake_ppm = 10_000;
        if variant.ends_with("capped-pool") {
            cfg.threads_max = Some(THREADS_MAX);
        }
    }

    fn run(&self, variant: &str, cfg: SimConfig) -> Result<Outcome, ScenarioError> {
        self.check_variant(variant)?;
        Ok(run_once(variant, cfg, RATE_PER_S))
    }

    fn load_axis(&self) -> Option<LoadAxis> {
        Some(LoadAxis {
            unit: "traces/s",
            rate: RATE_PER_S,
            factor_min: 0.05,
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
        Ok(run_once(variant, cfg, RATE_PER_S * factor))
    }
}

/// The most blocking threads the offered load may keep alive, from the
/// incident's figures alone: a trace holds a thread at most 3 x 5 s, and
/// may spread that over twice the time; Little's law, plus one.
pub fn threads_bound(rate_per_s: f64) -> u64 {
    let budget_s = INCIDENT_ATTEMPTS * INCIDENT_TIMEOUT_S;
    (rate_per_s * 2.0 * budget_s).ceil() as u64 + 1
}

fn run_once(variant: &str, cfg: SimConfig, rate_per_s: f64) -> Outcome {
    let sim = Sim::new(cfg);
    let h = sim.main_handle();
    let socket = service_variant(variant).socket();
    let faults = plan_faults(SOCKET_SITE, socket.timeout_ms);
    let peer = Arc::new(SocketPeer::new(
        DynArc::new(h),
        DynArc::new(faults),
        CRASH_RESTART_MS,
        SEND_MS,
    ));
    let sink = SocketSink::new(socket, DynArc::new(h), Arc::clone(&peer));
    let writer = TraceWriter::new(writer_config(variant), DynArc::new(h), DynArc::new(h), sink);
    let violations = Arc::new(Mutex::new(Vec::new()));
    let found = Arc::clone(&violations);
    let mut out = sim.run(async move { main_task(writer, peer, h, found, rate_per_s).await });
    judge_threads(&mut out, rate_per_s, violations.with(std::mem::take));
    out
}

async fn main_task(
    writer: Writer,
    peer: Arc<SocketPeer>,
    h: SimHandle,
    found: Arc<Mutex<Vec<(&'static str, String)>>>,
    rate_per_s: f64,
) {
    let start = h.now_ns();
    h.spawn_on("watchdog", watchdog(writer.clone(), h));
    let outage_at = start + (20_000 + probe::draw(10_000)) * NS_PER_MS;
    peer.restarts().schedule(outage_at, OUTAGE_MS * NS_PER_MS);
    let mut tally = Tally::default();
    let traces = (rate_per_s * LOAD_MS as f64 / 1_000.0).round() as u64;
    let interval = Duration::from_nanos((1e9 / rate_per_s.max(1e-3)) as u64);
    offer_load(&writer, h, traces, interval, &mut tally).await;
    let grace = Duration::from_millis(SHUTDOWN_GRACE_MS);
    let report = match shut_down(&writer, h, grace, (traces, AFTER_SHUTDOWN), &mut tally).await {
        Ok(r) => r,
        Err(e) => return oracle_failed("shutdown", e),
    };
    if let Some(sink) = writer.sink() {
        metric_set("send_thread_ms_max", sink.stats().thread_ms_max as f64);
    }
    if let Err(e) = check_accounting(&writer, &tally, &report, &peer.received_ids()) {
        found.with(|f| f.push(("accounting", e)));
    }
}

/// Samples the task set and the sends waiting for a thread; reports the
/// blocking pool's exhaustion at once (the run stops).
async fn watchdog(writer: Writer, h: SimHandle) {
    let start = h.now_ns();
    loop {
        h.sleep(Duration::from_millis(SAMPLE_MS)).await;
        sample_tasks(&writer);
        let Some(sink) = writer.sink() else { return };
        let waiting = sink.stats().waiting_for_thread();
        sample("sends_waiting", waiting as f64);
        if waiting > 0 {
            let at_ms = (h.now_ns() - start) as f64 / 1e6;
            metric_set("pool_exhausted_at_ms", at_ms);
            return oracle_failed(
                "pool-exhausted",
                format!(
                "blocking-thread pool exhausted: {waiting} sends wait for a thread at t = {:.1} s",
                at_ms / 1e3
            ),
            );
        }
    }
}

/// Judges the simulator's thread meter after the run and merges every
/// violation into one failure (a failure raised during the run stays
/// first).
fn judge_threads(out: &mut Outcome, rate_per_s: f64, mut violations: Vec<(&'static str, String)>) {
    let peak = out.threads_peak as u64;
    let bound = threads_bound(rate_per_s);
    let life = |timeout_s: f64| INCIDENT_ATTEMPTS * timeout_s;
    let m = &mut out.metrics;
    m.values.insert("threads_peak", peak as f64);
    m.values.insert("threads_bound", bound as f64);
    m.values
        .insert("threads_rate_x_15s", rate_per_s * life(INCIDENT_TIMEOUT_S));
    m.values.insert(
        "threads_rate_x_180s",
        rate_per_s * life(INCIDENT_PRE_FIX_TIMEOUT_S),
    );
    m.values.insert(
        "incident_thread_life_s_pre_fix",
        life(INCIDENT_PRE_FIX_TIMEOUT_S),
    );
    m.values
        .insert("incident_thread_life_s_fix", life(INCIDENT_TIMEOUT_S));
    if peak > bound {
        violations.insert(
            0,
            ("thread-pileup", format!("{peak} blocking threads alive at once (bound {bound} = rate {rate_per_s} /s x 2 x the incident's 3 x 5 s + 1)")),
        );
    }
    if out.failure.is_none() {
        out.failure = violations_failure(&violations);
    }
}
