//! Shared by the two trace-writer scenarios (`trace-saturation`,
//! `socket-pileup`): the open-loop request load, the shutdown epilogue and
//! the accounting oracle. Not a scenario itself.

use faultline::clock::Clock;
use faultline::probe::FaultKind;
use faultline::sim::{metric_max, metric_set, sample, SimHandle};
use faultline::sink::{PlanFaults, Sink};
use faultline::trace_writer::{
    Fate, Flaw, RefuseReason, ShutdownReport, Trace, TraceWriter, Variant, WriterConfig,
};
use std::collections::BTreeSet;
use std::time::Duration;

/// The fault-point kinds both sinks' model peers reach.
pub const FAULT_KINDS: &[FaultKind] = &[
    FaultKind::Error,
    FaultKind::Unavailable,
    FaultKind::Hang,
    FaultKind::Latency,
    FaultKind::Crash,
];

/// Latency spikes last up to this long.
pub const LATENCY_MS_MAX: u64 = 500;
/// A 503 carries a `Retry-After` of up to this long.
pub const RETRY_AFTER_MS_MAX: u64 = 2_000;

/// The swarm plan's faults at `site`: a hang lasts `timeout_ms`.
pub fn plan_faults(site: &'static str, timeout_ms: u64) -> PlanFaults {
    PlanFaults::new(
        site,
        Duration::from_millis(timeout_ms),
        LATENCY_MS_MAX,
        RETRY_AFTER_MS_MAX,
    )
}

/// The variant names both scenarios share.
pub const PRE_FIX: &str = "pre-fix";
/// The incident's own fix, exactly as written.
pub const INCIDENT_FIX: &str = "incident-fix";
/// The fixed writer with the test-only accounting flaw.
pub const FORGETS_DROP: &str = "forgets-drop";

/// The service variant behind a scenario variant's name: `pre-fix...`,
/// `incident-fix...`, anything else is the fixed service.
pub fn service_variant(variant: &str) -> Variant {
    if variant.starts_with(PRE_FIX) {
        Variant::PreFix
    } else if variant.starts_with(INCIDENT_FIX) {
        Variant::IncidentFix
    } else {
        Variant::Fixed
    }
}

/// The writer of a scenario variant (fates recorded for the oracle): that
/// of [`service_variant`] (with the drop-count flaw for `forgets-drop`).
pub fn writer_config(variant: &str) -> WriterConfig {
    let base = service_variant(variant).writer();
    WriterConfig {
        record_fates: true,
        flaw: if variant == FORGETS_DROP {
            Flaw::ForgetsDropCount
        } else {
            Flaw::None
        },
        ..base
    }
}

/// What the load saw from the caller's side.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    /// `write` calls.
    pub writes: u64,
    /// Writes refused (with the trace handed back).
    pub refused: u64,
}

fn trace(id: u64, h: &SimHandle) -> Trace {
    Trace {
        id,
        at_ms: h.now_ms(),
        name: format!("GET /api/{}", id % 7),
    }
}

/// Writes `traces` traces at fixed arrival times `interval` apart from now
/// (an open loop: requests arrive whether or not the event loop keeps up;
/// a late loop finds several due at once, as from a socket backlog).
pub async fn offer_load<S: Sink<Trace> + 'static>(
    writer: &TraceWriter<S>,
    h: SimHandle,
    traces: u64,
    interval: Duration,
    tally: &mut Tally,
) {
    let start = h.now_ns();
    let interval_ns = interval.as_nanos() as u64;
    for id in 0..traces {
        h.sleep_until(start + id * interval_ns).await;
        tally.writes += 1;
        if writer.write(trace(id, &h)).await.is_err() {
            tally.refused += 1;
        }
    }
}

/// Shuts the writer down with `grace` to drain, records the report, then
/// writes `after.1` more traces (ids from `after.0`), which must be
/// refused.
///
/// # Errors
/// A message when a write after shutdown was not refused with its trace.
pub async fn shut_down<S: Sink<Trace> + 'static>(
    writer: &TraceWriter<S>,
    h: SimHandle,
    grace: Duration,
    after: (u64, u64),
    tally: &mut Tally,
) -> Result<ShutdownReport, String> {
    let report = writer.shutdown(h.now_ns() + grace.as_nanos() as u64).await;
    metric_set("shutdown_in_flight", report.in_flight as f64);
    metric_set("shutdown_drained", report.drained as f64);
    metric_set("shutdown_abandoned", report.abandoned as f64);
    let (next_id, after) = after;
    for id in next_id..next_id + after {
        tally.writes += 1;
        match writer.write(trace(id, &h)).await {
            Err(r) if r.reason == RefuseReason::ShuttingDown && r.trace.id == id => {
                tally.refused += 1
            }
            other => return Err(format!("write after shutdown was not refused: {other:?}")),
        }
    }
    Ok(report)
}

/// Samples the writer's task set (series `task_set`, high-water mark
/// `task_set_peak`).
pub fn sample_tasks<S: Sink<Trace> + 'static>(writer: &TraceWriter<S>) -> u64 {
    let n = writer.tasks_in_flight();
    sample("task_set", n as f64);
    metric_max("task_set_peak", n as f64);
    n
}

/// The accounting oracle, after shutdown: nothing in flight; the books
/// balance (`written == delivered + dropped + refused`) and agree with the
/// caller's tally; no trace has two fates; every trace counted delivered
/// reached the peer and none counted dropped after retries or rejected did.
///
/// # Errors
/// The first violation, as a message.
pub fn check_accounting<S: Sink<Trace> + 'static>(
    writer: &TraceWriter<S>,
    tally: &Tally,
    report: &ShutdownReport,
    at_peer: &BTreeSet<u64>,
) -> Result<(), String> {
    let c = writer.counts();
    metric_set("written", c.written as f64);
    metric_set("delivered", c.delivered as f64);
    metric_set("dropped", c.dropped() as f64);
    metric_set("dropped_after_retries", c.dropped_after_retries as f64);
    metric_set("refused", c.refused() as f64);
    if c.in_flight != 0 {
        return Err(format!(
            "{} tasks still in flight after shutdown returned",
            c.in_flight
        ));
    }
    if report.drained + report.abandoned != report.in_flight {
        return Err(format!("shutdown report does not add up: {report:?}"));
    }
    if c.imbalance() != 0 {
        return Err(format!(
            "accounting: written {} != delivered {} + dropped {} + refused {} (off by {})",
            c.written,
            c.delivered,
            c.dropped(),
            c.refused(),
            c.imbalance()
        ));
    }
    if (c.written, c.refused()) != (tally.writes, tally.refused) {
        return Err(format!(
            "the writer counts {} written / {} refused, its callers saw {} / {}",
            c.written,
            c.refused(),
            tally.writes,
            tally.refused
        ));
    }
    if let Some(conflict) = writer.fate_conflicts().first() {
        return Err(format!("accounting: {conflict}"));
    }
    check_fates_against_peer(writer, at_peer)
}

fn check_fates_against_peer<S: Sink<Trace> + 'static>(
    writer: &TraceWriter<S>,
    at_peer: &BTreeSet<u64>,
) -> Result<(), String> {
    for (id, fate) in writer.fates() {
        let there = at_peer.contains(&id);
        match fate {
            Fate::Delivered if !there => {
                return Err(format!(
                    "trace {id} counted delivered but never reached the peer (silently lost)"
                ))
            }
            Fate::DroppedAfterRetries | Fate::DroppedRejected if there => {
                return Err(format!("trace {id} counted {fate:?} but the peer has it"))
            }
            _ => {}
        }
    }
    Ok(())
}
