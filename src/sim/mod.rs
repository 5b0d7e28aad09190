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
mod executor;
mod failure;
mod faults;
mod handle;
mod heartbeat;
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
mod timers;
mod trace;

pub use bytes::BytesPolicy;
pub use context::NodeId;
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
pub use trace::{digest, EventKind};

/// Fails the running simulation with a scenario invariant violation (a
/// no-op outside a simulation). The run stops after the current poll.
pub fn invariant_failed(msg: impl Into<String>) {
    if let Some(s) = context::shared() {
        s.fail(Failure::Invariant(msg.into()));
    }
}
