//! What one simulated run reports.

use super::failure::Failure;
use super::metrics::Metrics;
use super::policy::Decision;
use super::trace::TraceLog;

/// The result of [`Sim::run`](super::Sim::run).
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The first failure, or `None` when every oracle held.
    pub failure: Option<Failure>,
    /// The schedule policy's name.
    pub policy: &'static str,
    /// FNV-1a hash of every event: same seed + same build = same hash.
    pub trace_hash: u64,
    /// Events traced: the lines of the run's full event log.
    pub trace_events: u64,
    /// Polls made.
    pub steps: u64,
    /// Virtual time the run took, ns.
    pub virtual_ns: u64,
    /// Every decision, for the replay file.
    pub decisions: Vec<Decision>,
    /// Picks that were not the default (preemptions).
    pub preemptions: usize,
    /// Scheduling decisions among two or more runnable tasks (PCT's steps;
    /// see [`PctPolicy::measure_steps`](super::PctPolicy::measure_steps)).
    pub picks: u64,
    /// Peak of the memory meter, bytes.
    pub mem_peak_bytes: u64,
    /// `(virtual ns since start, bytes held)`.
    pub mem_samples: Vec<(u64, u64)>,
    /// Peak of blocking threads alive.
    pub threads_peak: usize,
    /// `(virtual ns since start, blocking threads alive)`.
    pub thread_samples: Vec<(u64, usize)>,
    /// Faults that struck, one line each.
    pub fault_log: Vec<String>,
    /// The readable event log (when `keep_log` was set), one line per
    /// [`TraceLog`] line.
    pub log: Vec<String>,
    /// The same log, structured: each line's virtual time, step, task,
    /// node, kind and (for the services' `tracing` events) fields.
    pub trace_log: TraceLog,
    /// What the scenario recorded ([`metric_add`](super::metric_add),
    /// [`sample`](super::sample), ...).
    pub metrics: Metrics,
}

impl Outcome {
    /// Whether every oracle held.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}
