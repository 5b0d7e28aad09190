//! `trace-saturation`: the trace writer's lock held across acknowledged
//! column writes piles up tasks, and the event loop's collector pauses
//! grow with them until the 2 s watchdog fires (incident 000, bug 1).
//!
//! ## Workload and faults
//! Requests arrive at [`RATE_PER_S`] traces/s for [`LOAD_MS`] (an open
//! loop: arrival times are fixed in advance, so a late loop finds several
//! due at once) and each writes a trace through the writer to the model
//! column store (batches flushed 1 s after their first row). The insert
//! runs in the blocking pool, as the incident's `asyncio.to_thread` did
//! before and after the fix, with asyncio's default executor of 32
//! workers. A heartbeat beats every 250 ms on the same loop ([`heartbeat`],
//! [`LagMeter`]). The column store restarts once for 8 s (refusing
//! connections) and, later, stalls for [`STALL_MS`] (answering nothing:
//! each insert waits for its 10 s timeout); swarm faults add errors, 503s,
//! hangs, latency spikes and more restarts. Then the writer shuts down
//! with a 5 s deadline and three more writes must be refused.
//!
//! ## The cost model (what makes the loop late)
//! Neither the insert (in the pool) nor the waiting on the gate costs the
//! loop anything per iteration (measured: `scripts/asyncio-loop-cost.py`).
//! What does is CPython's full collection, which traverses every live
//! task and what it holds: the simulator's [`LoopCost`] with
//! * [`GC_PASS_NS_PER_TASK`] per live task: see its doc for the figure's
//!   source and what it assumes;
//! * CPython's trigger: a pass when the live tasks grew by 25% over those
//!   alive after the last, and by at least [`GC_GROWTH_TASKS_MIN`];
//! * no application heap (`gc_pass_ns_base` 0: only the writer's tasks are
//!   charged, which makes every pause shorter than production's);
//! * each poll costs [`POLL_COST_NS`] (an asyncio task step, measured).
//!
//! Pre-fix, the gate serves about one trace a second (each insert waits
//! about 1 s for the server's ack), so the tasks queued on it grow at the
//! arrival rate, each pass is 25% longer than the last, and a pass crosses
//! the 2 s watchdog once about [`watchdog_pile`] tasks wait (the first
//! crossing pass comes at about 82,000). At the base rate the passes
//! around that point come 41 and 51 s apart; the incident's watchdog saw
//! lag over 2 s "every ~60 s". The rate was chosen for that.
//!
//! ## A 1:[`SCALE`] scale model
//! A pile of 82,000 tasks costs the simulator about half a second per run,
//! too much for sweeps of hundreds of seeds. The scenario therefore runs a
//! scale model in which one simulated trace stands for [`SCALE`] real ones
//! that arrive, wait and are written together: arrivals at `rate /
//! SCALE`; every quantity counted in tasks divided by `SCALE` (the task
//! cap, the executor's workers: 32 / 32 = 1, the collector's growth
//! minimum) and every cost per task multiplied by it (a poll, a pass's
//! pause per task); the server's flush (the ack wait) `SCALE` times longer,
//! so the gate still serves one real trace a second. Pile, pauses, lag and
//! rates are the full-scale model's in the fluid limit; task counts in the
//! metrics are in real traces (`x SCALE`). `run_at_scale` runs any scale;
//! a test checks the scale model against the full one (scale 1).
//!
//! The incident's fix (no lock, no ack wait) serves traces as fast as the
//! 32 workers allow, but while the column store stalls each insert holds
//! its worker for the 10 s timeout: the tasks queue for the workers
//! instead of the lock, and with no cap on the tasks in flight the same
//! passes return (a faultline finding, not in the incident). The fixed
//! writer caps the tasks in flight at 10,000 (writes beyond are refused
//! with the trace handed back, and counted), so its passes stay under
//! `10,000 x GC_PASS_NS_PER_TASK`.
//!
//! ## Oracles
//! The worst heartbeat lag stays under 2 s (`loop-lag`): checked every
//! second by a sampler, which stops the run when it fires (the incident's
//! liveness probe restarted the process); otherwise judged after shutdown
//! with the accounting oracle of [`trace_common`](super::trace_common)
//! (`accounting`), every violated one reported. Pre-fix and
//! incident-fix break the first; `forgets-drop` (the fixed writer with a
//! test-only flaw that does not count a drop) breaks the accounting; fixed
//! holds.
//!
//! ## Metrics
//! `lag_max_ms`, `lag_crossed_2s_at_ms`, `task_set_at_lag_over_2s`,
//! `task_set_peak` (real traces), `scale`, the model's `loop_gc_*` (passes,
//! longest pause, the simulated tasks alive then, the gap before the last
//! pass), the incident's own
//! figures beside them (`incident_watchdog_lag_ms` 2,000,
//! `incident_watchdog_every_s` 60, `incident_ack_wait_ms` 1,000), the
//! books; series `lag_ms` and `task_set` (1 s).

use super::fail_violations;
use super::trace_common::{
    check_accounting, offer_load, plan_faults, service_variant, shut_down, writer_config, Tally,
    FAULT_KINDS, FORGETS_DROP, INCIDENT_FIX, PRE_FIX,
};
use crate::plot::{Look, Style, Unit};
use crate::scenario::{
    Bug, LoadAxis, Origin, PlotSpec, RowKind, Scenario, ScenarioError, SeriesSource, FIXED,
};
use faultline::clock::{Clock, NS_PER_MS};
use faultline::probe::{self, FaultKind};
use faultline::sim::{
    heartbeat, metric_set, oracle_failed, sample, LagMeter, LoopCost, Outcome, Sim, SimConfig,
    SimHandle,
};
use faultline::sync::{Arc, DynArc};
use faultline::trace_writer::{
    ColumnSink, MemColumnServer, ServerConfig, TraceWriter, COLUMN_SITE,
};
use std::time::Duration;

const VARIANTS: &[&str] = &[PRE_FIX, INCIDENT_FIX, FIXED, FORGETS_DROP];
/// Requests (traces) per second at load factor 1.
pub const RATE_PER_S: f64 = 400.0;
/// How long the load lasts.
pub const LOAD_MS: u64 = 300_000;
const HEARTBEAT_MS: u64 = 250;
/// The liveness watchdog's threshold (the incident's).
pub const WATCHDOG_LAG_MS: u64 = 2_000;
/// The incident's watchdog saw lag over 2 s about this often.
const INCIDENT_WATCHDOG_EVERY_S: f64 = 60.0;
/// The incident's acknowledged insert held the lock about this long.
const INCIDENT_ACK_WAIT_MS: f64 = 1_000.0;
const SAMPLE_MS: u64 = 1_000;
/// The planned server restart: at 10 s + draw(15 s), for this long (over
/// before the stall begins).
const RESTART_MS: u64 = 8_000;
/// The planned stall: at 40 s + draw(10 s), for this long.
pub const STALL_MS: u64 = 240_000;
const SHUTDOWN_GRACE_MS: u64 = 5_000;
/// Writes after shutdown (each must be refused).
const AFTER_SHUTDOWN: u64 = 3;
/// asyncio's default executor: `min(32, cpu_count + 4)` workers.
pub const EXECUTOR_WORKERS: usize = 32;
/// Real traces one simulated trace stands for (see the module docs).
pub const SCALE: u64 = 32;

/// A full collection's pause per live task, ns. Measured by
/// `scripts/asyncio-loop-cost.py` on CPython 3.11 (see
/// `scripts/asyncio-loop-cost.txt`): about 0.5 µs per tracked object, so
/// 5.8 µs for a task holding letta's `LLMTrace` (13 objects: its JSON
/// payloads are strings, which the collector skips) and 16 µs for one
/// holding a parsed 20-message request (32 objects); in the replay of the
/// incident's writer (500 traces/s, parsed requests) the passes the loop
/// actually paid came to 21 to 31 µs per waiting task (one, during a load
/// spike of the shared machine, 69 µs). The scenario charges 30 µs. It assumes a waiting task keeps more
/// alive than the bare `LLMTrace` (its request's context, which
/// `create_task` copies: not measured); with 5.8 µs the same pause needs
/// a pile about 5 times larger, which moves the pre-fix's edge up by
/// about that factor and changes no verdict of the fixed variant.
pub const GC_PASS_NS_PER_TASK: u64 = 30_000;
/// CPython starts an old-generation pass only after 10 young passes of
/// 700 net allocations: 70,000 objects, about 2,200 tasks of 32.
pub const GC_GROWTH_TASKS_MIN: u64 = 2_200;
/// An asyncio task step (create + first step, or a lock hand-off),
/// measured: 7-14 µs.
pub const POLL_COST_NS: u64 = 10_000;

type Writer = TraceWriter<ColumnSink<Arc<MemColumnServer>>>;

/// The trace writer's event-loop saturation.
#[derive(Clone, Debug, Default)]
pub struct TraceSaturation;

/// The event loop's cost model of this scenario at `scale` (1: full).
pub fn loop_cost(scale: u64) -> LoopCost {
    LoopCost {
        gc_pass_ns_per_task: GC_PASS_NS_PER_TASK * scale,
        gc_pass_ns_base: 0,
        gc_growth_pct: 25,
        gc_growth_tasks_min: GC_GROWTH_TASKS_MIN / scale,
    }
}

/// Sets the simulator's side of the model at `scale`: the loop's costs
/// and the executor's workers.
pub fn configure_at_scale(cfg: &mut SimConfig, scale: u64) {
    cfg.spurious_wake_ppm = 10_000;
    cfg.poll_cost_ns = POLL_COST_NS * scale;
    cfg.loop_cost = loop_cost(scale);
    cfg.threads_max = Some((EXECUTOR_WORKERS / scale as usize).max(1));
}

/// Runs `variant` at `rate_per_s` real traces/s, as a 1:`scale` model
/// (`cfg`'s loop costs and workers set for that scale).
pub fn run_at_scale(variant: &str, mut cfg: SimConfig, rate_per_s: f64, scale: u64) -> Outcome {
    let scale = scale.max(1);
    configure_at_scale(&mut cfg, scale);
    run_once(variant, cfg, rate_per_s, scale)
}

/// The fewest waiting tasks whose pass crosses the watchdog (a pass
/// happens only at the model's growth points, so the first one that
/// crosses may hold more).
pub fn watchdog_pile() -> u64 {
    (WATCHDOG_LAG_MS * NS_PER_MS).div_ceil(GC_PASS_NS_PER_TASK)
}

impl Scenario for TraceSaturation {
    fn name(&self) -> &'static str {
        "trace-saturation"
    }

    fn about(&self) -> &'static str {
        "trace writer: one lock across 1 s acked inserts (in the pool) piles up tasks; the collector's pauses grow until the 2 s watchdog fires; incident-fix piles up while the store stalls; fixed caps tasks"
    }

    fn variants(&self) -> &'static [&'static str] {
        VARIANTS
    }

    fn bug(&self, variant: &str) -> Option<Bug> {
        match variant {
            PRE_FIX => Some(Bug {
                key: "lock-across-slow-write",
                title: "one lock held across each acked sink write piles up tasks until the loop's collector pauses cross the 2 s watchdog",
                oracles: &["invariant:loop-lag"],
                kind: RowKind::Load,
                origin: Origin::Historical,
                sync_switch: false,
            }),
            INCIDENT_FIX => Some(Bug {
                key: "uncapped-tasks-on-stall",
                title: "the incident's fix (no lock, no ack wait, no task cap): while the store stalls, tasks pile up for the 32 executor workers and the same pauses cross 2 s",
                oracles: &["invariant:loop-lag"],
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
                file: "trace-saturation-lag-vs-load.svg",
                title: "trace-saturation: worst event-loop lag against offered load",
                y_label: "worst heartbeat lag (s, log scale)",
                look: Look {
                    unit: Unit::Milliseconds,
                    log_y: true,
                    style: Style::Markers,
                    x_max: None,
                    panels: false,
                },
                series: SeriesSource::AgainstLoad {
                    metric: "lag_max_ms",
                    factors_pct: LAG_PLOT_LOADS_PCT,
                },
                variants: &[PRE_FIX, INCIDENT_FIX, FIXED],
                limit: Some(("watchdog threshold 2 s", "watchdog_ms")),
                seed: 0,
            },
            PlotSpec {
                file: "trace-saturation-lag.svg",
                title: "trace-saturation: event-loop lag (heartbeat lateness)",
                y_label: "lag (s, log scale)",
                look: Look {
                    unit: Unit::Milliseconds,
                    log_y: true,
                    style: Style::Lines,
                    x_max: None,
                    panels: false,
                },
                series: SeriesSource::Metric("lag_ms"),
                variants: &[PRE_FIX, INCIDENT_FIX, FIXED],
                limit: Some(("watchdog threshold 2 s", "watchdog_ms")),
                seed: 0,
            },
            PlotSpec {
                file: "trace-saturation-tasks.svg",
                title: "trace-saturation: writer tasks in flight",
                y_label: "tasks in the task set (count)",
                look: Look {
                    style: Style::Lines,
                    ..Look::COUNT_STEPS
                },
                series: SeriesSource::Metric("task_set"),
                variants: &[PRE_FIX, INCIDENT_FIX, FIXED],
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
        configure_at_scale(cfg, SCALE);
    }

    fn run(&self, variant: &str, cfg: SimConfig) -> Result<Outcome, ScenarioError> {
        self.check_variant(variant)?;
        Ok(run_once(variant, cfg, RATE_PER_S, SCALE))
    }

    fn load_axis(&self) -> Option<LoadAxis> {
        Some(LOAD_AXIS)
    }

    fn run_scaled(
        &self,
        variant: &str,
        cfg: SimConfig,
        factor: f64,
    ) -> Result<Outcome, ScenarioError> {
        self.check_variant(variant)?;
        Ok(run_once(variant, cfg, RATE_PER_S * factor, SCALE))
    }
}

/// The load axis: traces per second.
const LOAD_AXIS: LoadAxis = LoadAxis {
    unit: "traces/s",
    rate: RATE_PER_S,
    factor_min: 0.05,
    factor_max: 2.5,
};

/// The loads of the lag-against-load plot, in percent of [`RATE_PER_S`].
const LAG_PLOT_LOADS_PCT: &[u32] = &[25, 50, 75, 100, 150, 200];

/// The model server at `scale`: its flush (the ack wait) `scale` times
/// longer.
fn server_config(scale: u64) -> ServerConfig {
    let base = ServerConfig::default();
    ServerConfig {
        flush_ms: base.flush_ms * scale,
        ..base
    }
}

fn run_once(variant: &str, cfg: SimConfig, rate_per_s: f64, scale: u64) -> Outcome {
    let sim = Sim::new(cfg);
    let h = sim.main_handle();
    let column = service_variant(variant).column();
    let faults = plan_faults(COLUMN_SITE, column.timeout_ms);
    let server = Arc::new(MemColumnServer::new(
        server_config(scale),
        DynArc::new(h),
        DynArc::new(faults),
    ));
    let for_client = Arc::clone(&server);
    let sink = ColumnSink::new(column, DynArc::new(h), move || Ok(Arc::clone(&for_client)));
    let mut wcfg = writer_config(variant);
    wcfg.tasks_max = wcfg.tasks_max.map(|m| (m / scale as usize).max(1));
    let writer = TraceWriter::new(wcfg, DynArc::new(h), DynArc::new(h), sink);
    let load = Load {
        rate_per_s: rate_per_s / scale as f64,
        scale,
    };
    sim.run(async move { main_task(writer, server, h, load).await })
}

/// The simulated load: simulated traces per second, and the real traces
/// each stands for.
#[derive(Clone, Copy)]
struct Load {
    rate_per_s: f64,
    scale: u64,
}

async fn main_task(writer: Writer, server: Arc<MemColumnServer>, h: SimHandle, load: Load) {
    let Load { rate_per_s, scale } = load;
    let start = h.now_ns();
    let meter = Arc::new(LagMeter::default());
    let period = Duration::from_millis(HEARTBEAT_MS);
    h.spawn_on(
        "heartbeat",
        heartbeat(DynArc::new(h), period, Arc::clone(&meter)),
    );
    h.spawn_on(
        "sampler",
        sampler(writer.clone(), Arc::clone(&meter), h, scale),
    );
    let restart_at = start + (10_000 + probe::draw(15_000)) * NS_PER_MS;
    server
        .restarts()
        .schedule(restart_at, RESTART_MS * NS_PER_MS);
    let stall_at = start + (40_000 + probe::draw(10_000)) * NS_PER_MS;
    server.stalls().schedule(stall_at, STALL_MS * NS_PER_MS);
    let mut tally = Tally::default();
    let traces = (rate_per_s * LOAD_MS as f64 / 1_000.0).round() as u64;
    let interval = Duration::from_nanos((1e9 / rate_per_s.max(1e-3)) as u64);
    offer_load(&writer, h, traces, interval, &mut tally).await;
    let grace = Duration::from_millis(SHUTDOWN_GRACE_MS);
    let report = match shut_down(&writer, h, grace, (traces, AFTER_SHUTDOWN), &mut tally).await {
        Ok(r) => r,
        Err(e) => return oracle_failed("shutdown", e),
    };
    // Let the server flush its last batch before looking at it.
    h.sleep(Duration::from_millis(2 * server_config(scale).flush_ms))
        .await;
    incident_figures(&writer, scale);
    let mut violations = Vec::new();
    violations.extend(check_lag(&meter, start).map(|v| ("loop-lag", v)));
    let books = check_accounting(&writer, &tally, &report, &server.accepted_ids());
    violations.extend(books.err().map(|v| ("accounting", v)));
    fail_violations(&violations);
}

/// The incident's figures beside the run's (task counts in real traces).
fn incident_figures(writer: &Writer, scale: u64) {
    metric_set("incident_watchdog_lag_ms", WATCHDOG_LAG_MS as f64);
    metric_set("incident_watchdog_every_s", INCIDENT_WATCHDOG_EVERY_S);
    metric_set("incident_ack_wait_ms", INCIDENT_ACK_WAIT_MS);
    metric_set("scale", scale as f64);
    metric_set("task_set_peak", (writer.counts().tasks_peak * scale) as f64);
}

/// Samples the task set and the latest lag every second. When the lag is
/// first seen over the watchdog's threshold it records the task set then
/// and fails the run at once (as the incident's liveness probe restarted
/// the process): the shutdown and the books are not judged.
async fn sampler(writer: Writer, meter: Arc<LagMeter>, h: SimHandle, scale: u64) {
    let start = h.now_ns();
    loop {
        h.sleep(Duration::from_millis(SAMPLE_MS)).await;
        let n = writer.tasks_in_flight() * scale;
        sample("task_set", n as f64);
        if let Some(&(_, lag_ns)) = meter.samples().last() {
            sample("lag_ms", lag_ns as f64 / 1e6);
        }
        if meter.max_ns() > WATCHDOG_LAG_MS * NS_PER_MS {
            metric_set("task_set_at_lag_over_2s", n as f64);
            incident_figures(&writer, scale);
            if let Some(v) = check_lag(&meter, start) {
                return oracle_failed("loop-lag", v);
            }
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
