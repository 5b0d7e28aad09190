//! Nodes: simulated processes. A node's tasks can be crashed (dropped; the
//! node boots again later, durable state kept by the scenario), paused (a
//! GC-like stall: nothing of it runs) and its clock can be skewed, drift and
//! jump.

use super::context::NodeId;
use super::handle::SimHandle;
use std::rc::Rc;

/// How a node starts and how its clock behaves.
#[derive(Clone, Debug, Default)]
pub struct NodeConfig {
    /// Offset of the node's clock from true (virtual) time. Default 0.
    pub skew_ns: i64,
    /// Drift of the node's clock, parts per million. Default 0.
    pub drift_ppm: i64,
    /// Whether the fault plan may crash, pause or jump this node.
    /// Default false.
    pub faulty: bool,
}

/// Boots a node: spawns its tasks through the handle. Called at the start of
/// the run and after every restart.
pub type Boot = Rc<dyn Fn(SimHandle)>;

pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) up: bool,
    pub(crate) paused_until_ns: u64,
    pub(crate) cfg: NodeConfig,
    pub(crate) boot: Option<Boot>,
    pub(crate) restarts: u32,
}

/// A node fault scheduled on the timer wheel.
#[derive(Clone, Copy, Debug)]
pub(crate) enum NodeEvent {
    Crash { node: NodeId, downtime_ns: u64 },
    Restart { node: NodeId },
    Pause { node: NodeId, pause_ns: u64 },
    ClockJump { node: NodeId, delta_ns: i64 },
}

impl Node {
    pub(crate) fn new(name: String, cfg: NodeConfig, boot: Option<Boot>) -> Self {
        Node {
            name,
            up: true,
            paused_until_ns: 0,
            cfg,
            boot,
            restarts: 0,
        }
    }

    pub(crate) fn runnable(&self, now_ns: u64) -> bool {
        self.up && self.paused_until_ns <= now_ns
    }

    /// The node's local time at true time `now_ns` (`start_ns` is where
    /// drift is measured from).
    #[inline]
    pub(crate) fn local_ns(&self, now_ns: u64, start_ns: u64) -> u64 {
        let skew = self.cfg.skew_ns;
        if self.cfg.drift_ppm == 0 {
            return if skew >= 0 {
                now_ns.saturating_add(skew.unsigned_abs())
            } else {
                now_ns.saturating_sub(skew.unsigned_abs())
            };
        }
        let elapsed = i128::from(now_ns - start_ns);
        let drift = elapsed * i128::from(self.cfg.drift_ppm) / 1_000_000;
        let t = i128::from(now_ns) + i128::from(self.cfg.skew_ns) + drift;
        t.clamp(0, i128::from(u64::MAX)) as u64
    }

    /// The true time at which the node's clock reads `local_ns`.
    #[inline]
    pub(crate) fn true_ns(&self, local_ns: u64, start_ns: u64) -> u64 {
        let skew = self.cfg.skew_ns;
        if self.cfg.drift_ppm == 0 {
            return if skew >= 0 {
                local_ns.saturating_sub(skew.unsigned_abs())
            } else {
                local_ns.saturating_add(skew.unsigned_abs())
            };
        }
        let l = i128::from(local_ns) - i128::from(self.cfg.skew_ns) - i128::from(start_ns);
        let scale = 1_000_000 + i128::from(self.cfg.drift_ppm);
        // Round up, so the node's clock reads at least `local_ns` by then.
        let elapsed = if scale > 0 && l > 0 {
            (l * 1_000_000 + scale - 1) / scale
        } else {
            l
        };
        (i128::from(start_ns) + elapsed).clamp(0, i128::from(u64::MAX)) as u64
    }
}
