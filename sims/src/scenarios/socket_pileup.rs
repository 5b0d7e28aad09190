//! `socket-pileup`: the trace writer's socket sink piles up blocking
//! threads while its peer restarts.
//!
//! Requests arrive at 2 per second for 120 s (open loop) and each writes a
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
//! reach about `rate x 60 s` before the peer is back). Fixed, a send is one
//! 5 s attempt on a thread the writer waits for (its retries wait off any
//! thread), so about `rate x 15 s` threads are alive.
//!
//! Oracles: blocking threads alive never exceed
//! `rate x longest trace life + 1` of the fixed sink (`3 x 5 s` of sends
//! plus `2 x 4 s` of backoff: at most one thread per trace at a time),
//! judged after the run from the simulator's thread meter; the accounting
//! oracle of [`trace_common`](super::trace_common) (pre-fix also counts a
//! trace delivered when its detached thread starts, so a thread that gives
//! up loses it silently). The `-capped-pool` variants run with
//! `threads_max = 64`: a watchdog sampling the sink's sends waiting for a
//! thread reports the pool's exhaustion (pre-fix) and stops the run instead
//! of letting every later send queue; fixed never exhausts it.
//! `forgets-drop` (fixed, with a test-only flaw that does not count a drop)
//! breaks the accounting.
//!
//! Metrics: `threads_peak`, `threads_bound`, `threads_rate_x_15s`,
//! `threads_rate_x_180s`, `pool_exhausted_at_ms`, the books; series
//! `task_set` and `sends_waiting` (1 s), and the simulator's
//! `blocking_threads`.

use super::trace_common::{
    check_accounting, offer_load, plan_faults, sample_tasks, shut_down, writer_config, Tally,
    FAULT_KINDS, FORGETS_DROP, PRE_FIX,
};
use crate::scenario::{Bug, PlotSpec, Scenario, ScenarioError, SeriesSource, FIXED};
use faultline::clock::{Clock, NS_PER_MS};
use faultline::probe::{self, FaultKind};
use faultline::sim::{
    invariant_failed, metric_set, sample, Failure, Outcome, Sim, SimConfig, SimHandle,
};
use faultline::sync::{Arc, DynArc, Mutex};
use faultline::trace_writer::{
    SocketConfig, SocketPeer, SocketSink, TraceWriter, Variant, WriterConfig, SOCKET_SITE,
};
use std::time::Duration;

const PRE_FIX_CAPPED: &str = "pre-fix-capped-pool";
const FIXED_CAPPED: &str = "fixed-capped-pool";
const VARIANTS: &[&str] = &[PRE_FIX, FIXED, PRE_FIX_CAPPED, FIXED_CAPPED, FORGETS_DROP];
/// Requests (traces) per second.
const RATE_PER_S: u64 = 2;
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
        "trace writer: one detached 3 x 60 s socket thread per trace piles up while the peer restarts; fixed waits for one 5 s attempt"
    }

    fn variants(&self) -> &'static [&'static str] {
        VARIANTS
    }

    fn bug(&self, variant: &str) -> Option<Bug> {
        (variant == PRE_FIX).then_some(Bug {
            key: "socket-thread-pileup",
            title:
                "a blocking thread per trace with a 60 s timeout piles up while the peer restarts",
        })
    }

    fn plots(&self) -> Vec<PlotSpec> {
        vec![PlotSpec {
            file: "socket-pileup-threads.svg",
            title: "socket-pileup: blocking threads alive while the peer restarts",
            y_label: "blocking threads alive (count)",
            series: SeriesSource::BlockingThreads,
            variants: &[PRE_FIX, FIXED],
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
        Ok(run_once(variant, cfg))
    }
}

/// The longest a trace of the fixed writer and sink lives: every attempt
/// at most the timeout, every wait at most the backoff cap.
fn trace_life_max_ms(w: &WriterConfig, s: &SocketConfig) -> u64 {
    let attempts = u64::from(w.retry.attempts_max);
    attempts * s.timeout_ms + attempts.saturating_sub(1) * w.retry.delay_ms_max
}

fn run_once(variant: &str, cfg: SimConfig) -> Outcome {
    let sim = Sim::new(cfg);
    let h = sim.main_handle();
    let socket = if variant.starts_with(PRE_FIX) {
        Variant::PreFix.socket()
    } else {
        Variant::Fixed.socket()
    };
    let faults = plan_faults(SOCKET_SITE, socket.timeout_ms);
    let peer = Arc::new(SocketPeer::new(
        DynArc::new(h),
        DynArc::new(faults),
        CRASH_RESTART_MS,
        SEND_MS,
    ));
    let sink = SocketSink::new(socket, DynArc::new(h), Arc::clone(&peer));
    let writer = TraceWriter::new(writer_config(variant), DynArc::new(h), DynArc::new(h), sink);
    let fixed = (Variant::Fixed.writer(), Variant::Fixed.socket());
    let bound = RATE_PER_S * trace_life_max_ms(&fixed.0, &fixed.1) / 1_000 + 1;
    let violations = Arc::new(Mutex::new(Vec::new()));
    let found = Arc::clone(&violations);
    let mut out = sim.run(async move { main_task(writer, peer, h, found).await });
    judge_threads(&mut out, bound, violations.with(std::mem::take));
    out
}

async fn main_task(
    writer: Writer,
    peer: Arc<SocketPeer>,
    h: SimHandle,
    found: Arc<Mutex<Vec<String>>>,
) {
    let start = h.now_ns();
    h.spawn_on("watchdog", watchdog(writer.clone(), h));
    let outage_at = start + (20_000 + probe::draw(10_000)) * NS_PER_MS;
    peer.restarts().schedule(outage_at, OUTAGE_MS * NS_PER_MS);
    let mut tally = Tally::default();
    let traces = RATE_PER_S * LOAD_MS / 1_000;
    let interval = Duration::from_millis(1_000 / RATE_PER_S);
    offer_load(&writer, h, traces, interval, &mut tally).await;
    let grace = Duration::from_millis(SHUTDOWN_GRACE_MS);
    let report = match shut_down(&writer, h, grace, (traces, AFTER_SHUTDOWN), &mut tally).await {
        Ok(r) => r,
        Err(e) => return invariant_failed(e),
    };
    if let Err(e) = check_accounting(&writer, &tally, &report, &peer.received_ids()) {
        found.with(|f| f.push(e));
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
            return invariant_failed(format!(
                "blocking-thread pool exhausted: {waiting} sends wait for a thread at t = {:.1} s",
                at_ms / 1e3
            ));
        }
    }
}

/// Judges the simulator's thread meter after the run and merges every
/// violation into one failure (a failure raised during the run stays
/// first).
fn judge_threads(out: &mut Outcome, bound: u64, mut violations: Vec<String>) {
    let peak = out.threads_peak as u64;
    let m = &mut out.metrics;
    m.values.insert("threads_peak", peak as f64);
    m.values.insert("threads_bound", bound as f64);
    m.values
        .insert("threads_rate_x_15s", (RATE_PER_S * 15) as f64);
    m.values
        .insert("threads_rate_x_180s", (RATE_PER_S * 180) as f64);
    if peak > bound {
        violations.insert(
            0,
            format!("{peak} blocking threads alive at once (bound {bound} = rate x longest trace life + 1)"),
        );
    }
    if out.failure.is_none() && !violations.is_empty() {
        out.failure = Some(Failure::Invariant(violations.join("; ")));
    }
}
