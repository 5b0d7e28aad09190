//! The deterministic simulator.
//!
//! One thread, one task polled at a time, the next one chosen by a schedule
//! [`Policy`] that also answers every random draw and fault coin flip, so a
//! recorded list of [`Decision`]s replays a run exactly. Time is virtual
//! (nanoseconds; it jumps to the next timer when every task is blocked) and
//! every poll may cost CPU time, so a saturated event loop runs late. Tasks
//! live on nodes that can crash, pause and have skewed clocks. Oracles:
//! panics, deadlock, the memory meter (OOM), the lock-order checker, step
//! and time limits, and the scenario's own invariants.
//!
//! Same seed + same build = the same event trace, byte for byte (compare
//! [`Outcome::trace_hash`]).
//!
//! ```
//! use faultline::sim::{Sim, SimConfig};
//! use faultline::clock::Clock;
//! use std::time::Duration;
//!
//! let sim = Sim::new(SimConfig { seed: 7, ..Default::default() });
//! let h = sim.main_handle();
//! let out = sim.run(async move { h.sleep(Duration::from_secs(3600)).await });
//! assert!(out.passed());
//! assert_eq!(out.virtual_ns / 1_000_000_000, 3600);
//! ```

mod bytes;
mod context;
mod cost;
mod executor;
mod failure;
mod faults;
mod handle;
mod heartbeat;
pub(crate) mod inject;
mod lockorder;
mod memory;
mod metrics;
mod node;
mod outcome;
mod pct;
mod policy;
mod probe_impl;
mod quiet_panics;
mod random;
mod ready;
mod replay;
mod shrink;
mod switch;
mod timers;
mod trace;
mod trace_layer;

pub use crate::sched::TaskName;
pub use bytes::BytesPolicy;
pub use context::NodeId;
pub use cost::LoopCost;
pub use executor::{PolicyKind, Sim, SimConfig, SIM_EPOCH_NS};
pub use failure::Failure;
pub use faults::FaultPlan;
pub use handle::{SimHandle, Sleep, YieldNow};
pub use heartbeat::{heartbeat, LagMeter};
pub use lockorder::LockOrder;
pub use memory::MemoryMeter;
pub use metrics::{metric_add, metric_max, metric_set, sample, Metrics, SERIES_SAMPLES_MAX};
pub use node::{Boot, NodeConfig};
pub use outcome::Outcome;
pub use pct::PctPolicy;
pub use policy::{Decision, Mismatch, Policy, TaskId};
pub use random::RandomPolicy;
pub use replay::ReplayPolicy;
pub use shrink::{choices, shrink, Shrunk};
pub use trace::{digest, fields_text, Digest, EventKind, LineKind, TaskInfo, TraceLine, TraceLog};

/// Fails the running simulation with an untagged invariant violation (a
/// no-op outside a simulation). The run stops after the current poll.
/// Prefer [`oracle_failed`], whose tag says *which* property broke.
pub fn invariant_failed(msg: impl Into<String>) {
    oracle_failed("", msg);
}

/// Writes `text` into the running simulation's trace log (a no-op outside
/// a simulation), between the simulator's own events, where failure
/// reports and replays show it: `note from task 3: reader 2 got version
/// 1`. A note is not an event: it changes neither the run nor its trace
/// hash, so notes can be added to replay an existing file with them. The
/// text is formatted only when the run keeps a log (reports, replays).
pub fn note(text: impl std::fmt::Display) {
    context::with_shared(|s| {
        let task = s.current.get().map_or(u64::MAX, |c| c.0);
        s.note(|| {
            if task == u64::MAX {
                format!("note: {text}")
            } else {
                format!("note from task {task}: {text}")
            }
        });
    });
}

/// Fails the running simulation: the oracle tagged `oracle` (a short
/// kebab-case name such as `"no-loss"`; several that fired together joined
/// by `+`) saw `msg`. A no-op outside a simulation. The run stops after the
/// current poll; the first failure of a run is the one reported.
///
/// The tag is what a bug is matched by: a run of a buggy variant counts as
/// catching its bug only when the bug's own oracle fired.
pub fn oracle_failed(oracle: &str, msg: impl Into<String>) {
    if let Some(s) = context::shared() {
        s.fail(Failure::invariant(oracle, msg));
    }
}
