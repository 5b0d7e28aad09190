//! Node faults in a run: drawing the plan's crashes, pauses and clock jumps,
//! and carrying them out (a crash drops every task of the node; a restart
//! boots it again).

use super::Sim;
use crate::sched::JoinError;
use crate::sim::context::{Core, NodeId, TimerAction};
use crate::sim::handle::SimHandle;
use crate::sim::node::NodeEvent;
use crate::sim::trace::EventKind;
use std::rc::Rc;

impl Sim {
    /// Draws the plan's node faults (times, nodes, sizes) from the policy
    /// and puts them on the timer wheel.
    pub(super) fn schedule_node_faults(&mut self) {
        let plan = self.shared.plan.clone();
        let faulty: Vec<NodeId> = {
            let core = self.shared.core.borrow();
            (0..core.nodes.len() as NodeId)
                .filter(|&n| core.nodes[n as usize].cfg.faulty)
                .collect()
        };
        if faulty.is_empty() || plan.horizon_ns == 0 {
            return;
        }
        let s = Rc::clone(&self.shared);
        let pick_node = || faulty[s.draw(faulty.len() as u64) as usize];
        let mut events = Vec::new();
        for _ in 0..plan.crashes {
            let at = s.draw(plan.horizon_ns);
            let node = pick_node();
            let downtime_ns = plan.downtime_ns;
            events.push((at, NodeEvent::Crash { node, downtime_ns }));
        }
        for _ in 0..plan.pauses {
            let at = s.draw(plan.horizon_ns);
            let node = pick_node();
            let pause_ns = 1 + s.draw(plan.pause_ns_max);
            events.push((at, NodeEvent::Pause { node, pause_ns }));
        }
        for _ in 0..plan.clock_jumps {
            let at = s.draw(plan.horizon_ns);
            let node = pick_node();
            let m = plan.jump_ns_max;
            let delta_ns = s.draw(2 * m + 1) as i64 - m as i64;
            events.push((at, NodeEvent::ClockJump { node, delta_ns }));
        }
        let mut core = s.core.borrow_mut();
        let start = core.start_ns;
        for (at, ev) in events {
            core.add_timer(start + at, TimerAction::Node(ev));
        }
    }

    pub(super) fn node_event(&mut self, ev: NodeEvent) {
        let now = self.now_ns();
        if let NodeEvent::Crash { node, .. } = ev {
            // A node that is already down cannot crash again (and must not
            // be restarted twice: two live instances of one process).
            if !self.shared.core.borrow().nodes[node as usize].up {
                return;
            }
        }
        let name = |core: &Core, n: NodeId| core.nodes[n as usize].name.clone();
        let line = {
            let mut core = self.shared.core.borrow_mut();
            let line = match ev {
                NodeEvent::Crash { node, downtime_ns } => {
                    core.add_timer(
                        now + downtime_ns.max(1),
                        TimerAction::Node(NodeEvent::Restart { node }),
                    );
                    format!(
                        "node '{}' crashes (down {} ms)",
                        name(&core, node),
                        downtime_ns / 1_000_000
                    )
                }
                NodeEvent::Restart { node } => format!("node '{}' restarts", name(&core, node)),
                NodeEvent::Pause { node, pause_ns } => {
                    let n = &mut core.nodes[node as usize];
                    n.paused_until_ns = n.paused_until_ns.max(now + pause_ns);
                    self.pause_end_max_ns = self.pause_end_max_ns.max(n.paused_until_ns);
                    format!(
                        "node '{}' pauses {} ms",
                        name(&core, node),
                        pause_ns / 1_000_000
                    )
                }
                NodeEvent::ClockJump { node, delta_ns } => {
                    core.nodes[node as usize].cfg.skew_ns += delta_ns;
                    format!(
                        "node '{}' clock jumps {} ms",
                        name(&core, node),
                        delta_ns / 1_000_000
                    )
                }
            };
            let at_ms = (now - core.start_ns) as f64 / 1e6;
            core.fault_log.push(format!("{at_ms:.3} ms: {line}"));
            line
        };
        self.shared.event(EventKind::Node, 0, 0, || line);
        match ev {
            NodeEvent::Crash { node, .. } => self.crash_node(node),
            NodeEvent::Restart { node } => self.restart_node(node),
            _ => {}
        }
    }

    /// Drops every task of `node` (a process crash: memory state is gone,
    /// durable state kept by the scenario survives).
    fn crash_node(&mut self, node: NodeId) {
        {
            let mut core = self.shared.core.borrow_mut();
            let n = &mut core.nodes[node as usize];
            if n.up {
                n.up = false;
                self.nodes_down += 1;
            }
        }
        let of_node = |tasks: &[Option<super::TaskSlot>], s: u32| {
            tasks[s as usize].as_ref().is_some_and(|t| t.node == node)
        };
        let slots: Vec<u32> = self
            .slot_of
            .values()
            .copied()
            .filter(|&s| of_node(&self.tasks, s))
            .collect();
        // Out of the ready queue in one pass (the order of the others kept),
        // not one shift of the queue per task.
        let tasks = &self.tasks;
        self.shared
            .ready
            .borrow_mut()
            .remove_where(|s| of_node(tasks, s));
        for slot in slots {
            self.remove_slot(slot, Err(JoinError::Cancelled));
        }
        let mut core = self.shared.core.borrow_mut();
        core.threads.queued.retain(|j| j.node != node);
    }

    fn restart_node(&mut self, node: NodeId) {
        let boot = {
            let mut core = self.shared.core.borrow_mut();
            let n = &mut core.nodes[node as usize];
            if !n.up {
                n.up = true;
                self.nodes_down -= 1;
            }
            n.restarts += 1;
            n.boot.clone()
        };
        if let Some(boot) = boot {
            boot(SimHandle { node });
            self.admit_spawned();
        }
    }
}
