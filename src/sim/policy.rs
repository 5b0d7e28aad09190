//! The one trait that owns every nondeterministic choice of a run: which task
//! runs next, each fault coin flip, each random draw. Recording its answers
//! gives a schedule that replays the interleaving *and* the randomness.

use serde::{Deserialize, Serialize};

/// A task's identity in one run: its spawn order, from 0.
pub type TaskId = u64;

/// One recorded choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Run this task next (a preemption: not the default choice).
    #[serde(rename = "p")]
    Pick(TaskId),
    /// The default: keep running the last task if it can run, else the
    /// oldest runnable one; for coins `false`, for draws `0`.
    #[serde(rename = "a")]
    Auto,
    /// A fault coin flip.
    #[serde(rename = "c")]
    Coin(bool),
    /// A draw in `0..bound`.
    #[serde(rename = "d")]
    Draw(u64),
}

/// A replay that no longer fits the code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// What the recorded decision was and what the run needed instead.
    pub detail: String,
}

/// A schedule policy: random, PCT, replay.
pub trait Policy {
    /// Chooses among `eligible` (at least two distinct tasks, in the ready
    /// queue's order) and returns the index of the chosen task in
    /// `eligible`; `eligible[default]` is the non-preemptive choice.
    ///
    /// # Errors
    /// [`Mismatch`] when replaying a schedule that does not fit this run.
    fn pick(&mut self, eligible: &[TaskId], default: usize) -> Result<usize, Mismatch>;

    /// [`pick`](Policy::pick), told which task ran the step before (`None`
    /// when it has ended). PCT demotes that task at its change points; the
    /// default ignores it.
    ///
    /// # Errors
    /// [`Mismatch`] when replaying a schedule that does not fit this run.
    fn pick_after(
        &mut self,
        eligible: &[TaskId],
        default: usize,
        last: Option<TaskId>,
    ) -> Result<usize, Mismatch> {
        let _ = last;
        self.pick(eligible, default)
    }

    /// A coin that comes up `true` with probability `p_ppm` per million.
    ///
    /// # Errors
    /// [`Mismatch`] when replaying a schedule that does not fit this run.
    fn coin(&mut self, p_ppm: u32) -> Result<bool, Mismatch>;

    /// A draw in `0..bound` (`bound > 0`).
    ///
    /// # Errors
    /// [`Mismatch`] when replaying a schedule that does not fit this run.
    fn draw(&mut self, bound: u64) -> Result<u64, Mismatch>;

    /// A task was spawned (PCT gives it a priority).
    fn on_spawn(&mut self, _task: TaskId) {}

    /// The policy's name in reports.
    fn name(&self) -> &'static str;
}

/// Wraps a policy and records every answer as a [`Decision`].
pub(crate) struct Recorder {
    pub(crate) policy: Box<dyn Policy>,
    pub(crate) decisions: Vec<Decision>,
    pub(crate) preemptions: usize,
    /// Picks made (decisions among two or more runnable tasks).
    pub(crate) picks: u64,
}

impl Recorder {
    pub(crate) fn new(policy: Box<dyn Policy>) -> Self {
        Recorder {
            policy,
            // Room for a short run's decisions in one allocation.
            decisions: Vec::with_capacity(64),
            preemptions: 0,
            picks: 0,
        }
    }

    /// Asks the policy (`last`: the task that ran the step before, if it
    /// lives); returns an index into `eligible` (an index out of range from
    /// the policy counts as the default).
    #[inline]
    pub(crate) fn pick(
        &mut self,
        eligible: &[TaskId],
        default: usize,
        last: Option<TaskId>,
    ) -> Result<usize, Mismatch> {
        self.picks += 1;
        let mut chosen = self.policy.pick_after(eligible, default, last)?;
        if chosen >= eligible.len() {
            chosen = default;
        }
        if chosen == default {
            self.decisions.push(Decision::Auto);
        } else {
            self.preemptions += 1;
            self.decisions.push(Decision::Pick(eligible[chosen]));
        }
        Ok(chosen)
    }

    pub(crate) fn coin(&mut self, p_ppm: u32) -> Result<bool, Mismatch> {
        let b = self.policy.coin(p_ppm)?;
        self.decisions.push(if b {
            Decision::Coin(true)
        } else {
            Decision::Auto
        });
        Ok(b)
    }

    pub(crate) fn draw(&mut self, bound: u64) -> Result<u64, Mismatch> {
        let v = self.policy.draw(bound)?;
        self.decisions.push(if v == 0 {
            Decision::Auto
        } else {
            Decision::Draw(v)
        });
        Ok(v)
    }
}
