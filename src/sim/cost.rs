//! The event loop's own overhead: what a saturated loop pays for the tasks
//! it keeps alive, beyond each poll's
//! [`poll_cost_ns`](super::SimConfig::poll_cost_ns).
//!
//! A poll costs the loop a fixed CPU time; that alone never makes a loop
//! late while it has idle time. What does is work that grows with the
//! number of live tasks. Measured on CPython 3.11 asyncio (the runtime of
//! incident 000; `scripts/asyncio-loop-cost.py`, output in
//! `scripts/asyncio-loop-cost.txt`):
//!
//! * a task waiting on a lock costs the loop nothing per iteration (a
//!   release wakes one waiter; 100,000 waiters leave an iteration's lag
//!   where it was), nor does a pending timer (the heap costs O(log n) per
//!   push/pop: 100,000 timers leave it where it was too);
//! * a **full (generation-2) collection** traverses every tracked object,
//!   so it stops the loop for a time proportional to the live tasks and
//!   everything they hold: about 0.5 µs per tracked object here. CPython
//!   starts one when the objects that survived into the old generation
//!   since the last one exceed 25% of those alive after it (and at least
//!   10 young passes, 70,000 net allocations, went by). A pile of tasks
//!   that only grows triggers one at every 25% of growth, each longer
//!   than the last; the incident's replay on this machine (500 traces/s)
//!   showed passes of 0.14 s at 4,600 waiting tasks growing to 1.4 s at
//!   52,000, 21 to 31 µs per task (one pass during a load spike of this
//!   shared machine: 4.5 s at 65,000), and the heartbeat's worst lag was
//!   that pause: the watchdog's lag.
//!
//! [`LoopCost`] models that collector: live tasks stand for the objects
//! they hold. After every poll, when the live tasks have grown by
//! [`LoopCost::gc_growth_pct`] (and by at least
//! [`LoopCost::gc_growth_tasks_min`]) over those alive after the last
//! pass, a pass runs and the loop stops for
//! `gc_pass_ns_base + gc_pass_ns_per_task x live tasks`. Tasks that come
//! and go (a pool that does not grow) never trigger one. The default
//! charges nothing, so a run's trace does not change unless a scenario
//! asks for the model.
//!
//! The model abstracts: the application's own heap (which lengthens every
//! pass and makes passes rarer) is `gc_pass_ns_base`, 0 unless a scenario
//! says otherwise; young collections (short, bounded pauses) are not
//! modelled; the pass happens on the poll that crossed the threshold, as a
//! collection happens on the allocation that crossed it.

use super::metrics::{metric_add, metric_max, metric_set};
use serde::{Deserialize, Serialize};

/// The full-collection model of an event loop's overhead. The default
/// charges nothing (`gc_pass_ns_per_task` and `gc_pass_ns_base` are 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoopCost {
    /// A full pass stops the loop this long per live task, ns. Default 0.
    pub gc_pass_ns_per_task: u64,
    /// A full pass stops the loop this long besides the tasks (the rest
    /// of the heap), ns. Default 0.
    pub gc_pass_ns_base: u64,
    /// A pass runs when the live tasks exceed those alive after the last
    /// pass by this percentage. Default 25 (CPython's old-generation
    /// rule).
    pub gc_growth_pct: u64,
    /// ... and by at least this many tasks (CPython: 10 young passes of
    /// 700 net allocations, over the objects one task holds). Default 0.
    pub gc_growth_tasks_min: u64,
}

impl Default for LoopCost {
    fn default() -> Self {
        LoopCost {
            gc_pass_ns_per_task: 0,
            gc_pass_ns_base: 0,
            gc_growth_pct: 25,
            gc_growth_tasks_min: 0,
        }
    }
}

impl LoopCost {
    /// Whether the model charges anything.
    pub fn is_on(&self) -> bool {
        self.gc_pass_ns_per_task > 0 || self.gc_pass_ns_base > 0
    }

    /// The pause of a full pass with `live` tasks alive, ns.
    pub fn pass_ns(&self, live: u64) -> u64 {
        self.gc_pass_ns_base
            .saturating_add(self.gc_pass_ns_per_task.saturating_mul(live))
    }

    /// Whether `live` tasks, `after_last` of them alive after the last
    /// pass, start a pass.
    pub fn triggers(&self, live: u64, after_last: u64) -> bool {
        let grown = live.saturating_sub(after_last);
        grown >= self.gc_growth_tasks_min.max(1)
            && grown.saturating_mul(100) > after_last.saturating_mul(self.gc_growth_pct)
    }
}

/// The model's state in one run. Records, as metrics: `loop_gc_passes`,
/// `loop_gc_pause_ms_max`, `loop_gc_tasks_max` (live tasks at the longest
/// pass), `loop_gc_last_at_ms` and `loop_gc_last_interval_ms` (the gap
/// before the last pass).
#[derive(Debug, Default)]
pub(crate) struct LoopMeter {
    cost: LoopCost,
    after_last: u64,
    last_at_ns: Option<u64>,
    pause_ns_max: u64,
}

impl LoopMeter {
    pub(crate) fn new(cost: LoopCost) -> Self {
        LoopMeter {
            cost,
            ..Default::default()
        }
    }

    /// After a poll at `now_ns` (since the run's start) with `live` tasks
    /// alive: the loop's extra time, ns (0 unless a pass runs).
    #[inline]
    pub(crate) fn after_poll(&mut self, now_ns: u64, live: usize) -> u64 {
        if !self.cost.is_on() {
            return 0;
        }
        let live = live as u64;
        if !self.cost.triggers(live, self.after_last) {
            return 0;
        }
        self.after_last = live;
        let pause = self.cost.pass_ns(live);
        self.record(now_ns, live, pause);
        pause
    }

    #[cold]
    fn record(&mut self, now_ns: u64, live: u64, pause: u64) {
        let ms = |ns: u64| ns as f64 / 1e6;
        metric_add("loop_gc_passes", 1.0);
        if pause >= self.pause_ns_max {
            self.pause_ns_max = pause;
            metric_max("loop_gc_pause_ms_max", ms(pause));
            metric_set("loop_gc_tasks_max", live as f64);
        }
        if let Some(last) = self.last_at_ns {
            metric_set("loop_gc_last_interval_ms", ms(now_ns.saturating_sub(last)));
        }
        metric_set("loop_gc_last_at_ms", ms(now_ns));
        self.last_at_ns = Some(now_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost() -> LoopCost {
        LoopCost {
            gc_pass_ns_per_task: 1_000,
            gc_pass_ns_base: 50,
            gc_growth_pct: 25,
            gc_growth_tasks_min: 10,
        }
    }

    #[test]
    fn off_by_default() {
        let mut m = LoopMeter::new(LoopCost::default());
        assert!(!LoopCost::default().is_on());
        assert_eq!(m.after_poll(0, 1_000_000), 0);
    }

    #[test]
    fn a_growing_pile_pays_longer_and_longer_passes_at_every_quarter() {
        let mut m = LoopMeter::new(cost());
        let mut passes = Vec::new();
        for live in 0..200usize {
            let p = m.after_poll(live as u64, live);
            if p > 0 {
                passes.push((live, p));
            }
        }
        // 10 (the minimum growth), then each more than 25% above the last.
        let at: Vec<usize> = passes.iter().map(|p| p.0).collect();
        assert_eq!(at, vec![10, 20, 30, 40, 51, 64, 81, 102, 128, 161]);
        assert!(passes.iter().all(|&(n, p)| p == 50 + 1_000 * n as u64));
    }

    #[test]
    fn a_pool_that_does_not_grow_never_pays() {
        let mut m = LoopMeter::new(cost());
        assert!(m.after_poll(0, 40) > 0);
        for i in 0..10_000u64 {
            // Tasks come and go around 40 alive.
            let live = 35 + (i % 10) as usize;
            assert_eq!(m.after_poll(i, live), 0, "at {i}");
        }
    }
}
