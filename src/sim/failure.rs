//! Why a simulated run failed.

use serde::{Deserialize, Serialize};

/// The first oracle that failed in a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Failure {
    /// A task panicked (an assertion in service or scenario code).
    Panic {
        /// The task's name.
        task: String,
        /// The panic message.
        message: String,
    },
    /// Every task is blocked, no timer is pending and no blocking work runs.
    Deadlock {
        /// Names of the blocked tasks.
        blocked: Vec<String>,
    },
    /// The memory meter crossed its limit.
    Oom {
        /// The allocation site that crossed it.
        site: String,
        /// Bytes held after that allocation.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// A lock was taken against the declared order, or the lock graph has a
    /// cycle.
    LockOrder {
        /// Both locks and both acquisition sites.
        detail: String,
    },
    /// A scenario invariant does not hold.
    Invariant(String),
    /// The run exceeded its step limit (a livelock, or a limit too small).
    StepLimit(u64),
    /// The run exceeded its virtual-time limit, in nanoseconds.
    TimeLimit(u64),
    /// A replayed schedule does not fit the code any more.
    ReplayMismatch(String),
}

impl Failure {
    /// A short name of the failure's kind, used to decide whether a shrunk
    /// run still fails "the same way".
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Panic { .. } => "panic",
            Failure::Deadlock { .. } => "deadlock",
            Failure::Oom { .. } => "oom",
            Failure::LockOrder { .. } => "lock-order",
            Failure::Invariant(_) => "invariant",
            Failure::StepLimit(_) => "step-limit",
            Failure::TimeLimit(_) => "time-limit",
            Failure::ReplayMismatch(_) => "replay-mismatch",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Panic { task, message } => write!(f, "task '{task}' panicked: {message}"),
            Failure::Deadlock { blocked } => {
                write!(
                    f,
                    "deadlock: every task is blocked ({})",
                    blocked.join(", ")
                )
            }
            Failure::Oom { site, bytes, limit } => write!(
                f,
                "out of memory: {bytes} bytes held > limit {limit} (allocation at {site})"
            ),
            Failure::LockOrder { detail } => write!(f, "lock order violated: {detail}"),
            Failure::Invariant(msg) => write!(f, "invariant violated: {msg}"),
            Failure::StepLimit(n) => write!(f, "step limit of {n} reached"),
            Failure::TimeLimit(ns) => {
                write!(f, "virtual time limit of {} ms reached", ns / 1_000_000)
            }
            Failure::ReplayMismatch(detail) => f.write_str(detail),
        }
    }
}
