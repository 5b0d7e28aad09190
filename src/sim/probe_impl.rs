//! The simulator's implementation of the world's [`Probe`].

use super::context::shared;
use super::failure::Failure;
use super::trace::EventKind;
use crate::probe::{FaultPoint, LockClass, Probe};
use std::panic::Location;

/// Draws faults from the run's policy, meters memory, checks lock order.
pub(crate) struct SimProbe;

impl Probe for SimProbe {
    fn fault(&self, point: FaultPoint) -> bool {
        let Some(s) = shared() else { return false };
        let Some(&ppm) = s.plan.point_ppm.get(&point.kind) else {
            return false;
        };
        if !s.coin(ppm) {
            return false;
        }
        let task = s.current.get().map_or(u64::MAX, |c| c.0);
        let mut core = s.core.borrow_mut();
        let at_ms = (core.now_ns - core.start_ns) as f64 / 1e6;
        core.fault_log
            .push(format!("{at_ms:.3} ms: {:?} at {}", point.kind, point.site));
        drop(core);
        s.event(EventKind::Fault, task, point.kind as u64, || {
            format!("fault {:?} at {} (task {task})", point.kind, point.site)
        });
        true
    }

    fn draw(&self, bound: u64) -> u64 {
        shared().map_or(0, |s| s.draw(bound))
    }

    fn mem_charge(&self, site: &'static str, bytes: u64) {
        let Some(s) = shared() else { return };
        let now = s.now_ns();
        let over = s.mem.borrow_mut().charge(now, bytes);
        if let Some(held) = over {
            let limit = s.mem.borrow().limit.unwrap_or(0);
            s.fail(Failure::Oom {
                site: site.to_string(),
                bytes: held,
                limit,
            });
        }
    }

    fn mem_release(&self, bytes: u64) {
        if let Some(s) = shared() {
            let now = s.now_ns();
            s.mem.borrow_mut().release(now, bytes);
        }
    }

    fn lock_acquired(&self, class: LockClass, site: &'static Location<'static>) {
        let Some(s) = shared() else { return };
        let Some((task, _)) = s.current.get() else {
            return;
        };
        let violation = s.locks.borrow_mut().acquired(task, class, site);
        if let Some(detail) = violation {
            s.fail(Failure::LockOrder { detail });
        }
    }

    fn lock_released(&self, class: LockClass) {
        let Some(s) = shared() else { return };
        let Some((task, _)) = s.current.get() else {
            return;
        };
        s.locks.borrow_mut().released(task, class);
    }

    fn blocking_wait(&self, ns: u64) {
        let Some(s) = shared() else { return };
        match s.blocking_ns.get() {
            // On a blocking thread: the thread stays busy that much longer.
            Some(acc) => s.blocking_ns.set(Some(acc.saturating_add(ns))),
            // On the event loop: the whole loop stalls.
            None => s.core.borrow_mut().now_ns += ns,
        }
    }
}
