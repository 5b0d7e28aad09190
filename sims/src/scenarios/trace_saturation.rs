//! `trace-saturation`: the trace writer's lock held across slow column
//! writes saturates the event loop.
//!
//! Requests arrive at 4 per second for 120 s (an open loop: arrival times
//! are fixed in advance, so a late event loop finds several due at once)
//! and each writes a trace through the writer to the model column store
//! (batches flushed 1 s after their first row). A heartbeat beats every
//! 250 ms on the same loop ([`heartbeat`], [`LagMeter`]). The column server
//! restarts once, for 8 s, at a drawn time; swarm faults add errors, 503s,
//! hangs until the 10 s insert timeout, latency spikes and more restarts.
//! Then the writer shuts down with a 5 s deadline and three more writes
//! must be refused.
//!
//! How the bug shows (see the cost model in `faultline::trace_writer`): the
//! pre-fix insert blocks the event loop until the server's ack, about 1 s,
//! while holding the writer's gate, so the loop serves at most one trace a
//! second. The heartbeat runs only between two writes; its lateness is the
//! sum of the writes the scheduler runs first, and it crosses the 2 s
//! watchdog threshold. The tasks queued on the gate grow by about 3 a
//! second.
//!
//! Oracles (judged after shutdown; every violated one is reported): the
//! worst heartbeat lag stays under 2 s; the task set never exceeds
//! `rate x longest task life + 1` (Little's bound for tasks that each live
//! at most `3 x (timeout + slowest insert) + 2 x longest backoff`); the
//! accounting oracle of [`trace_common`](super::trace_common). Pre-fix
//! breaks the first two; `forgets-drop` (the fixed writer with a test-only
//! flaw that does not count a drop) breaks the accounting; fixed holds.
//!
//! Metrics: `lag_max_ms`, `lag_crossed_2s_at_ms`, `task_set_peak`,
//! `task_set_bound`, `task_set_over_bound_at_ms` (as first seen by the 1 s
//! sampler, which itself runs late on a saturated loop), the books; series
//! `lag_ms` and `task_set` (1 s).

use super::trace_common::{
    check_accounting, offer_load, plan_faults, sample_tasks, shut_down, writer_config, Tally,
    FAULT_KINDS, FORGETS_DROP, LATENCY_MS_MAX, PRE_FIX,
};
use crate::scenario::{Bug, PlotSpec, Scenario, ScenarioError, SeriesSource, FIXED};
use faultline::clock::{Clock, NS_PER_MS};
use faultline::probe::{self, FaultKind};
use faultline::sim::{
    heartbeat, invariant_failed, metric_set, sample, LagMeter, Outcome, Sim, SimConfig, SimHandle,
};
use faultline::sync::{Arc, DynArc};
use faultline::trace_writer::{
    ColumnConfig, ColumnSink, MemColumnServer, ServerConfig, TraceWriter, Variant, WriterConfig,
    COLUMN_SITE,
};
use std::time::Duration;

const VARIANTS: &[&str] = &[PRE_FIX, FIXED, FORGETS_DROP];
/// Requests (traces) per second.
const RATE_PER_S: u64 = 4;
/// How long the load lasts.
const LOAD_MS: u64 = 120_000;
const HEARTBEAT_MS: u64 = 250;
/// The liveness watchdog's threshold.
const WATCHDOG_LAG_MS: u64 = 2_000;
const SAMPLE_MS: u64 = 1_000;
/// The planned server restart: at 10 s + draw(20 s), for this long.
const RESTART_MS: u64 = 8_000;
const SHUTDOWN_GRACE_MS: u64 = 5_000;
/// Writes after shutdown (each must be refused).
const AFTER_SHUTDOWN: u64 = 3;

type Writer = TraceWriter<ColumnSink<Arc<MemColumnServer>>>;

/// The trace writer's event-loop saturation.
#[derive(Clone, Debug, Default)]
pub struct TraceSaturation;

impl Scenario for TraceSaturation {
    fn name(&self) -> &'static str {
        "trace-saturation"
    }

    fn about(&self) -> &'static str {
        "trace writer: one lock across 1 s acked inserts on the event loop; pre-fix lag crosses 2 s and the task set grows, fixed stays bounded"
    }

    fn variants(&self) -> &'static [&'static str] {
        VARIANTS
    }

    fn bug(&self, variant: &str) -> Option<Bug> {
        (variant == PRE_FIX).then_some(Bug {
            key: "lock-across-slow-write",
            title: "one lock held across each slow sink write saturates the event loop",
        })
    }

    fn plots(&self) -> Vec<PlotSpec> {
        vec![
            PlotSpec {
                file: "trace-saturation-lag.svg",
                title: "trace-saturation: event-loop lag (heartbeat lateness)",
                y_label: "lag (ms)",
                series: SeriesSource::Metric("lag_ms"),
                variants: &[PRE_FIX, FIXED],
                limit: Some(("watchdog threshold 2 s", "watchdog_ms")),
                seed: 0,
            },
            PlotSpec {
                file: "trace-saturation-tasks.svg",
                title: "trace-saturation: writer tasks in flight",
                y_label: "tasks in the task set (count)",
                series: SeriesSource::Metric("task_set"),
                variants: &[PRE_FIX, FIXED],
                limit: None,
                seed: 0,
            },
        ]
    }

    fn fault_kinds(&self) -> &'static [FaultKind] {
        FAULT_KINDS
    }

    fn node_faults(&self) -> bool {
        false
    }

    fn configure(&self, _variant: &str, cfg: &mut SimConfig) {
        cfg.spurious_wake_ppm = 10_000;
    }

    fn run(&self, variant: &str, cfg: SimConfig) -> Result<Outcome, ScenarioError> {
        self.check_variant(variant)?;
        Ok(run_once(variant, cfg))
    }
}

/// The longest a task of `w` over a column sink `c` can live: every
/// attempt at most the timeout (or the slowest insert), every wait at most
/// the backoff cap.
fn task_life_max_ms(w: &WriterConfig, c: &ColumnConfig, s: &ServerConfig) -> u64 {
    let attempts = u64::from(w.retry.attempts_max);
    let attempt_ms = c.timeout_ms.max(LATENCY_MS_MAX + s.insert_ms_max + 1);
    attempts * attempt_ms + attempts.saturating_sub(1) * w.retry.delay_ms_max
}

fn run_once(variant: &str, cfg: SimConfig) -> Outcome {
    let sim = Sim::new(cfg);
    let h = sim.main_handle();
    let column = if variant == PRE_FIX {
        Variant::PreFix.column()
    } else {
        Variant::Fixed.column()
    };
    let server_cfg = ServerConfig::default();
    let faults = plan_faults(COLUMN_SITE, column.timeout_ms);
    let server = Arc::new(MemColumnServer::new(
        server_cfg,
        DynArc::new(h),
        DynArc::new(faults),
    ));
    let for_client = Arc::clone(&server);
    let sink = ColumnSink::new(column, DynArc::new(h), move || Ok(Arc::clone(&for_client)));
    let wcfg = writer_config(variant);
    let bound = RATE_PER_S * task_life_max_ms(&wcfg, &column, &server_cfg) / 1_000 + 1;
    let writer = TraceWriter::new(wcfg, DynArc::new(h), DynArc::new(h), sink);
    sim.run(async move { main_task(writer, server, h, bound).await })
}

async fn main_task(writer: Writer, server: Arc<MemColumnServer>, h: SimHandle, bound: u64) {
    let start = h.now_ns();
    let meter = Arc::new(LagMeter::default());
    let period = Duration::from_millis(HEARTBEAT_MS);
    h.spawn_on(
        "heartbeat",
        heartbeat(DynArc::new(h), period, Arc::clone(&meter)),
    );
    h.spawn_on(
        "sampler",
        sampler(writer.clone(), Arc::clone(&meter), h, bound),
    );
    let restart_at = start + (10_000 + probe::draw(20_000)) * NS_PER_MS;
    server
        .restarts()
        .schedule(restart_at, RESTART_MS * NS_PER_MS);
    let mut tally = Tally::default();
    let traces = RATE_PER_S * LOAD_MS / 1_000;
    let interval = Duration::from_millis(1_000 / RATE_PER_S);
    offer_load(&writer, h, traces, interval, &mut tally).await;
    let grace = Duration::from_millis(SHUTDOWN_GRACE_MS);
    let report = match shut_down(&writer, h, grace, (traces, AFTER_SHUTDOWN), &mut tally).await {
        Ok(r) => r,
        Err(e) => return invariant_failed(e),
    };
    // Let the server flush its last batch before looking at it.
    h.sleep(Duration::from_millis(2 * ServerConfig::default().flush_ms))
        .await;
    let mut violations = Vec::new();
    violations.extend(check_lag(&meter, start));
    violations.extend(check_tasks(&writer, bound));
    violations.extend(check_accounting(&writer, &tally, &report, &server.accepted_ids()).err());
    if !violations.is_empty() {
        invariant_failed(violations.join("; "));
    }
}

/// Samples the task set and the latest lag every second; records when the
/// task set first went over its bound.
async fn sampler(writer: Writer, meter: Arc<LagMeter>, h: SimHandle, bound: u64) {
    let start = h.now_ns();
    let mut over = false;
    loop {
        h.sleep(Duration::from_millis(SAMPLE_MS)).await;
        let n = sample_tasks(&writer);
        if n > bound && !over {
            over = true;
            metric_set(
                "task_set_over_bound_at_ms",
                (h.now_ns() - start) as f64 / 1e6,
            );
        }
        if let Some(&(_, lag_ns)) = meter.samples().last() {
            sample("lag_ms", lag_ns as f64 / 1e6);
        }
    }
}

/// The watchdog: the worst beat is under 2 s late. Records when the lag
/// first crossed.
fn check_lag(meter: &LagMeter, start_ns: u64) -> Option<String> {
    let max_ms = meter.max_ns() as f64 / 1e6;
    metric_set("lag_max_ms", max_ms);
    metric_set("watchdog_ms", WATCHDOG_LAG_MS as f64);
    let threshold_ns = WATCHDOG_LAG_MS * NS_PER_MS;
    let samples = meter.samples();
    let crossed = samples.iter().find(|&&(_, lag)| lag > threshold_ns)?;
    let at_ms = (crossed.0 - start_ns) as f64 / 1e6;
    metric_set("lag_crossed_2s_at_ms", at_ms);
    Some(format!(
        "event-loop lag {:.1} s crossed the {} s watchdog threshold (first at t = {:.1} s)",
        max_ms / 1e3,
        WATCHDOG_LAG_MS / 1_000,
        at_ms / 1e3
    ))
}

/// The task set stays under Little's bound.
fn check_tasks(writer: &Writer, bound: u64) -> Option<String> {
    let peak = writer.counts().tasks_peak;
    metric_set("task_set_peak", peak as f64);
    metric_set("task_set_bound", bound as f64);
    (peak > bound).then(|| {
        format!("task set grew to {peak} tasks (bound {bound} = rate x longest task life + 1)")
    })
}
