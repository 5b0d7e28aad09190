//! Shrinking a failing run: fewer faults, fewer non-default decisions,
//! smaller draws, while the same oracle still fails, and never a longer
//! run.
//!
//! A candidate (a fault plan and a list of decisions) is replayed
//! leniently (a decision that no longer fits falls back to the default).
//! It is kept only when it fails through the recorded oracle, is not longer
//! than the best so far in decisions, steps or trace events, and is
//! strictly smaller in (faults, non-default decisions, decisions, steps,
//! events, fault durations). The passes, repeated until none makes
//! progress or the limits are reached:
//! 1. the fault plan: drop each fault-point kind, one crash, pause or clock
//!    jump fewer, halve pauses, clock jumps and downtimes;
//! 2. cut the tail of the decisions (past the end, defaults);
//! 3. delta debugging: non-default decisions back to the default, in
//!    chunks, then one by one;
//! 4. draws halved (faults move earlier, latencies and pauses shorten).

use super::sweep::Stopwatch;
use crate::sim::{choices, Decision, Failure, FaultPlan, Outcome};

/// Limits of a shrink.
#[derive(Clone, Copy, Debug)]
pub struct ShrinkLimits {
    /// Candidate runs tried at most.
    pub attempts_max: usize,
    /// Wall time spent at most, seconds (the best found so far is kept).
    pub time_s_max: f64,
}

/// Candidate runs a shrink tries at most, unless told otherwise.
pub const SHRINK_ATTEMPTS_DEFAULT: usize = 2_000;

impl Default for ShrinkLimits {
    fn default() -> Self {
        ShrinkLimits {
            attempts_max: SHRINK_ATTEMPTS_DEFAULT,
            time_s_max: 60.0,
        }
    }
}

/// How big a failing run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size {
    /// Node faults and fault-point kinds in the plan.
    pub faults: u64,
    /// Non-default decisions.
    pub choices: u64,
    /// Decisions.
    pub decisions: u64,
    /// Polls.
    pub steps: u64,
    /// Trace events (lines of the full log).
    pub events: u64,
    /// Pauses, clock jumps and downtimes of the plan, summed, ns.
    pub fault_ns: u64,
}

impl Size {
    /// The size of `out`, run under `plan`.
    pub fn of(plan: &FaultPlan, out: &Outcome) -> Size {
        Size {
            faults: fault_count(plan),
            choices: choices(&out.decisions) as u64,
            decisions: out.decisions.len() as u64,
            steps: out.steps,
            events: out.trace_events,
            fault_ns: fault_ns(plan),
        }
    }

    /// Whether `self` may replace `best`: never longer in decisions, steps
    /// or events, and strictly smaller overall.
    pub fn beats(&self, best: &Size) -> bool {
        self.decisions <= best.decisions
            && self.steps <= best.steps
            && self.events <= best.events
            && self < best
    }
}

fn fault_count(plan: &FaultPlan) -> u64 {
    plan.point_ppm.len() as u64
        + u64::from(plan.crashes)
        + u64::from(plan.pauses)
        + u64::from(plan.clock_jumps)
}

fn fault_ns(plan: &FaultPlan) -> u64 {
    let active = |n: u32, ns: u64| if n > 0 { ns } else { 0 };
    active(plan.crashes, plan.downtime_ns)
        .saturating_add(active(plan.pauses, plan.pause_ns_max))
        .saturating_add(active(plan.clock_jumps, plan.jump_ns_max))
}

/// The smaller plans tried in one pass over `plan`.
fn smaller_plans(plan: &FaultPlan) -> Vec<FaultPlan> {
    let mut out = Vec::new();
    for kind in plan.point_ppm.keys() {
        let mut p = plan.clone();
        p.point_ppm.remove(kind);
        out.push(p);
    }
    let mut push = |f: &dyn Fn(&mut FaultPlan) -> bool| {
        let mut p = plan.clone();
        if f(&mut p) {
            out.push(p);
        }
    };
    push(&|p| dec(&mut p.crashes));
    push(&|p| dec(&mut p.pauses));
    push(&|p| dec(&mut p.clock_jumps));
    push(&|p| p.pauses > 0 && halve(&mut p.pause_ns_max));
    push(&|p| p.clock_jumps > 0 && halve(&mut p.jump_ns_max));
    push(&|p| p.crashes > 0 && halve(&mut p.downtime_ns));
    out
}

fn dec(n: &mut u32) -> bool {
    if *n == 0 {
        return false;
    }
    *n -= 1;
    true
}

/// Halves a duration down to 1 ms.
fn halve(ns: &mut u64) -> bool {
    if *ns <= 1_000_000 {
        return false;
    }
    *ns /= 2;
    true
}

/// What the shrinker found.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The smallest failing plan found.
    pub plan: FaultPlan,
    /// Its decisions, as its own failing run recorded them.
    pub decisions: Vec<Decision>,
    /// The input's size.
    pub before: Size,
    /// The result's size (never longer than `before`).
    pub after: Size,
    /// Candidate runs tried.
    pub attempts: usize,
    /// Wall time spent, seconds.
    pub elapsed_s: f64,
}

/// Runs a candidate leniently: `(plan, decisions) -> outcome`.
pub type Rerun<'a> = dyn Fn(&FaultPlan, &[Decision]) -> Outcome + 'a;

/// Shrinks the failing run `(plan, decisions)`, whose lenient rerun is
/// `first`; `same` says whether a failure is the recorded one.
pub fn shrink(
    plan: &FaultPlan,
    first: &Outcome,
    rerun: &Rerun<'_>,
    same: &dyn Fn(Option<&Failure>) -> bool,
    limits: ShrinkLimits,
) -> Shrunk {
    let size = Size::of(plan, first);
    let mut s = Shrinker {
        rerun,
        same,
        plan: plan.clone(),
        decisions: first.decisions.clone(),
        size,
        attempts: 0,
        limits,
        watch: Stopwatch::start(),
    };
    while !s.spent() {
        let progressed = s.plan_pass() | s.tail_pass() | s.ddmin_pass() | s.draw_pass();
        if !progressed {
            break;
        }
    }
    Shrunk {
        elapsed_s: s.watch.elapsed_s(),
        plan: s.plan,
        decisions: s.decisions,
        before: size,
        after: s.size,
        attempts: s.attempts,
    }
}

struct Shrinker<'a> {
    rerun: &'a Rerun<'a>,
    same: &'a dyn Fn(Option<&Failure>) -> bool,
    plan: FaultPlan,
    decisions: Vec<Decision>,
    size: Size,
    attempts: usize,
    limits: ShrinkLimits,
    watch: Stopwatch,
}

impl Shrinker<'_> {
    fn spent(&self) -> bool {
        self.attempts >= self.limits.attempts_max
            || self.watch.elapsed_s() >= self.limits.time_s_max
    }

    /// Tries a candidate; keeps it when it fails the same way and beats the
    /// best.
    fn try_cand(&mut self, plan: FaultPlan, decisions: &[Decision]) -> bool {
        if self.spent() {
            return false;
        }
        self.attempts += 1;
        let out = (self.rerun)(&plan, decisions);
        if !(self.same)(out.failure.as_ref()) {
            return false;
        }
        let size = Size::of(&plan, &out);
        if !size.beats(&self.size) {
            return false;
        }
        self.plan = plan;
        self.decisions = out.decisions;
        self.size = size;
        true
    }

    fn plan_pass(&mut self) -> bool {
        let mut progressed = false;
        let mut again = true;
        while again && !self.spent() {
            again = false;
            for cand in smaller_plans(&self.plan) {
                let d = self.decisions.clone();
                if self.try_cand(cand, &d) {
                    progressed = true;
                    again = true;
                    break;
                }
            }
        }
        progressed
    }

    fn tail_pass(&mut self) -> bool {
        let mut progressed = false;
        let mut keep = self.decisions.len() / 2;
        while keep > 0 && !self.spent() {
            let cand = self.decisions[..keep].to_vec();
            if self.try_cand(self.plan.clone(), &cand) {
                progressed = true;
                keep = self.decisions.len().min(keep) / 2;
            } else {
                break;
            }
        }
        progressed
    }

    /// Non-default decisions back to the default, in chunks halving down to
    /// one at a time.
    fn ddmin_pass(&mut self) -> bool {
        let mut progressed = false;
        let mut chunk = (self.size.choices as usize).div_ceil(2).max(1);
        loop {
            let idx: Vec<usize> = (0..self.decisions.len())
                .filter(|&i| self.decisions[i] != Decision::Auto)
                .collect();
            let mut hit = false;
            for group in idx.chunks(chunk) {
                if self.spent() {
                    return progressed;
                }
                let mut cand = self.decisions.clone();
                for &i in group {
                    cand[i] = Decision::Auto;
                }
                if self.try_cand(self.plan.clone(), &cand) {
                    progressed = true;
                    hit = true;
                    break;
                }
            }
            if !hit {
                if chunk == 1 {
                    return progressed;
                }
                chunk = chunk.div_ceil(2);
            }
        }
    }

    /// Every draw halved, one at a time.
    fn draw_pass(&mut self) -> bool {
        let mut progressed = false;
        let mut i = 0;
        while i < self.decisions.len() && !self.spent() {
            if let Decision::Draw(v) = self.decisions[i] {
                let mut cand = self.decisions.clone();
                cand[i] = if v / 2 == 0 {
                    Decision::Auto
                } else {
                    Decision::Draw(v / 2)
                };
                if self.try_cand(self.plan.clone(), &cand) {
                    progressed = true;
                    continue;
                }
            }
            i += 1;
        }
        progressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_size_beats_only_when_not_longer_and_strictly_smaller() {
        let best = Size {
            faults: 2,
            choices: 5,
            decisions: 100,
            steps: 80,
            events: 300,
            fault_ns: 10,
        };
        let fewer_faults_longer = Size {
            faults: 1,
            decisions: 101,
            ..best
        };
        assert!(!fewer_faults_longer.beats(&best));
        let fewer_choices = Size { choices: 4, ..best };
        assert!(fewer_choices.beats(&best));
        assert!(!best.beats(&best));
        let shorter_pause = Size {
            fault_ns: 5,
            ..best
        };
        assert!(shorter_pause.beats(&best));
    }

    #[test]
    fn smaller_plans_drop_and_halve_each_fault() {
        let mut plan = FaultPlan::none();
        plan.point_ppm
            .insert(crate::probe::FaultKind::Latency, 5_000);
        plan.crashes = 1;
        plan.pauses = 2;
        plan.pause_ns_max = 8_000_000;
        let cands = smaller_plans(&plan);
        assert!(cands.iter().any(|p| p.point_ppm.is_empty()));
        assert!(cands.iter().any(|p| p.crashes == 0));
        assert!(cands.iter().any(|p| p.pauses == 1));
        assert!(cands.iter().any(|p| p.pause_ns_max == 4_000_000));
        assert!(cands.iter().all(|p| fault_ns(p) <= fault_ns(&plan)));
    }
}
