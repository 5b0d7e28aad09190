//! The end of a run: the outcome, and dropping what is left.

use super::{spare, Sim};
use crate::sched::JoinError;
use crate::sim::context;
use crate::sim::outcome::Outcome;
use crate::sim::trace::TraceLog;
use std::rc::Rc;

impl Sim {
    pub(super) fn finish(mut self) -> Outcome {
        let s = Rc::clone(&self.shared);
        let failure = s.failure.borrow_mut().take();
        let (decisions, preemptions, picks, policy) = {
            let mut rec = s.rec.borrow_mut();
            (
                std::mem::take(&mut rec.decisions),
                rec.preemptions,
                rec.picks,
                rec.policy.name(),
            )
        };
        let (trace_hash, trace_events, trace_log) = {
            let mut t = s.trace.borrow_mut();
            let log = TraceLog {
                lines: t.log.take().unwrap_or_default(),
                tasks: std::mem::take(&mut t.tasks),
                nodes: Vec::new(),
            };
            (t.hash, t.events, log)
        };
        let mut mem = std::mem::take(&mut *s.mem.borrow_mut());
        let mut core = s.core.borrow_mut();
        let start = core.start_ns;
        mem.samples.iter_mut().for_each(|x| x.0 -= start);
        let mut trace_log = trace_log;
        if !trace_log.lines.is_empty() {
            trace_log.nodes = core.nodes.iter().map(|n| n.name.clone()).collect();
        }
        let log = trace_log
            .lines
            .iter()
            .map(|l| trace_log.render(l))
            .collect();
        let mut thread_samples = std::mem::take(&mut core.threads.samples);
        thread_samples.iter_mut().for_each(|x| x.0 -= start);
        let out = Outcome {
            failure,
            policy,
            trace_hash,
            trace_events,
            steps: self.steps,
            virtual_ns: core.now_ns - start,
            decisions,
            preemptions,
            picks,
            mem_peak_bytes: mem.peak,
            mem_samples: mem.samples,
            threads_peak: core.threads.peak,
            thread_samples,
            fault_log: std::mem::take(&mut core.fault_log),
            log,
            trace_log,
            metrics: std::mem::take(&mut *s.metrics.borrow_mut()).finish(),
        };
        drop(core);
        self.drop_all_tasks();
        out
    }

    /// Ends every task still alive, oldest first.
    pub(super) fn drop_all_tasks(&mut self) {
        // Nothing is scheduled any more: empty the ready queue at once
        // instead of shifting it once per task.
        self.shared.ready.borrow_mut().remove_where(|_| true);
        while let Some((_, &slot)) = self.slot_of.first_key_value() {
            self.remove_slot(slot, Err(JoinError::Cancelled));
        }
    }

    /// Empties the run's buffers into the spare holder and leaves it for the
    /// next run on this thread. Called once the simulation is uninstalled,
    /// so tasks spawned but never admitted are dropped outside it, as when
    /// the run's state itself is dropped.
    fn recycle(&mut self) {
        let Some(mut spare) = self.spare.take() else {
            return;
        };
        spare.tasks = clear(std::mem::take(&mut self.tasks));
        spare.cold = clear(std::mem::take(&mut self.cold));
        spare.free = clear(std::mem::take(&mut self.free));
        spare.eligible = clear(std::mem::take(&mut self.eligible));
        spare.eligible_pos = clear(std::mem::take(&mut self.eligible_pos));
        spare.admitting = clear(std::mem::take(&mut self.admitting));
        {
            let mut core = self.shared.core.borrow_mut();
            spare.spawned = clear(std::mem::take(&mut core.spawned));
            spare.aborts = clear(std::mem::take(&mut core.aborts));
            let mut timers = std::mem::take(&mut core.timers);
            timers.clear();
            spare.timers = timers;
        }
        let mut ready = std::mem::take(&mut *self.shared.ready.borrow_mut());
        ready.clear();
        spare.ready = ready;
        spare::give(spare);
    }
}

/// `v`, emptied.
fn clear<T>(mut v: Vec<T>) -> Vec<T> {
    v.clear();
    v
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.drop_all_tasks();
        self.shared.core.borrow_mut().timers.clear();
        crate::sim::quiet_panics::leave_sim();
        context::uninstall();
        self.recycle();
    }
}
