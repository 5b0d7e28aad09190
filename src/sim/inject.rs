//! Faults and nodes a test body asks for while it runs (through
//! `faultline::check::World`): a node added now, a crash, a pause or a clock
//! jump of a node, each applied by the executor at the next step, exactly
//! like a fault of the plan.

use super::context::{expect_shared, NodeId, TimerAction};
use super::handle::SimHandle;
use super::node::{Node, NodeConfig, NodeEvent};

/// Adds a node to the running simulation (no boot function: a restart
/// brings it back with no tasks) and returns its handle.
///
/// # Panics
/// Outside a running simulation.
pub(crate) fn add_node(name: &str, cfg: NodeConfig) -> SimHandle {
    expect_shared(|s| {
        let mut core = s.core.borrow_mut();
        core.nodes.push(Node::new(name.to_string(), cfg, None));
        SimHandle {
            node: (core.nodes.len() - 1) as NodeId,
        }
    })
}

/// The handle of the node called `name`, if there is one.
pub(crate) fn node_named(name: &str) -> Option<SimHandle> {
    expect_shared(|s| {
        let core = s.core.borrow();
        core.nodes
            .iter()
            .position(|n| n.name == name)
            .map(|i| SimHandle { node: i as NodeId })
    })
}

/// Schedules `ev` now: the executor applies it before its next poll.
pub(crate) fn node_event(ev: NodeEvent) {
    expect_shared(|s| {
        let mut core = s.core.borrow_mut();
        let now = core.now_ns;
        core.add_timer(now, TimerAction::Node(ev));
    });
}

/// Crashes `node` now; it restarts (its boot function runs again, if it
/// has one) after `downtime_ns`.
pub(crate) fn crash(node: NodeId, downtime_ns: u64) {
    node_event(NodeEvent::Crash { node, downtime_ns });
}

/// Pauses `node` for `pause_ns` from now.
pub(crate) fn pause(node: NodeId, pause_ns: u64) {
    node_event(NodeEvent::Pause { node, pause_ns });
}

/// Moves `node`'s clock by `delta_ns`.
pub(crate) fn jump_clock(node: NodeId, delta_ns: i64) {
    node_event(NodeEvent::ClockJump { node, delta_ns });
}
