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
    /// A scenario invariant (an oracle of the test's own) does not hold.
    Invariant {
        /// The oracle's tag, e.g. `"no-loss"` (empty for an untagged
        /// [`invariant_failed`](super::invariant_failed)). Several oracles
        /// that fired together are joined by `+`, e.g.
        /// `"double-flush+crash-after-commit"`.
        oracle: String,
        /// What the oracle saw.
        message: String,
    },
    /// The run exceeded its step limit (a livelock, or a limit too small).
    StepLimit(u64),
    /// The run exceeded its virtual-time limit, in nanoseconds.
    TimeLimit(u64),
    /// A replayed schedule does not fit the code any more.
    ReplayMismatch(String),
}

impl Failure {
    /// An invariant failure of the oracle tagged `oracle` (see
    /// [`Failure::Invariant`]).
    pub fn invariant(oracle: &str, message: impl Into<String>) -> Failure {
        Failure::Invariant {
            oracle: oracle.to_string(),
            message: message.into(),
        }
    }

    /// A short name of the failure's kind (`"invariant"`, `"oom"`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Panic { .. } => "panic",
            Failure::Deadlock { .. } => "deadlock",
            Failure::Oom { .. } => "oom",
            Failure::LockOrder { .. } => "lock-order",
            Failure::Invariant { .. } => "invariant",
            Failure::StepLimit(_) => "step-limit",
            Failure::TimeLimit(_) => "time-limit",
            Failure::ReplayMismatch(_) => "replay-mismatch",
        }
    }

    /// The oracle that fired: the kind, and for an invariant its tag
    /// (`"invariant:no-loss"`; `"invariant"` when untagged). Two failures
    /// are "the same failure" for shrinking, and a bug counts as found,
    /// only when their oracles agree.
    pub fn oracle(&self) -> String {
        match self {
            Failure::Invariant { oracle, .. } if !oracle.is_empty() => {
                format!("invariant:{oracle}")
            }
            other => other.kind().to_string(),
        }
    }

    /// Every oracle that fired (an invariant may name several, joined by
    /// `+`), each as [`Failure::oracle`] would name it alone.
    pub fn oracles(&self) -> Vec<String> {
        match self {
            Failure::Invariant { oracle, .. } if oracle.contains('+') => oracle
                .split('+')
                .map(|o| format!("invariant:{o}"))
                .collect(),
            other => vec![other.oracle()],
        }
    }

    /// Whether the oracle `wanted` (as [`Failure::oracle`] names it) is
    /// among the oracles that fired.
    pub fn fired(&self, wanted: &str) -> bool {
        self.oracles().iter().any(|o| o == wanted)
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
            Failure::Invariant { oracle, message } if oracle.is_empty() => {
                write!(f, "invariant violated: {message}")
            }
            Failure::Invariant { oracle, message } => {
                write!(f, "invariant '{oracle}' violated: {message}")
            }
            Failure::StepLimit(n) => write!(f, "step limit of {n} reached"),
            Failure::TimeLimit(ns) => {
                write!(f, "virtual time limit of {} ms reached", ns / 1_000_000)
            }
            Failure::ReplayMismatch(detail) => f.write_str(detail),
        }
    }
}
