//! Replays a recorded list of decisions.

use super::policy::{Decision, Mismatch, Policy, TaskId};

/// Answers every choice from a recorded list.
///
/// *Strict* (replaying a file): a decision that does not fit the run (a task
/// that is not runnable, a coin where a draw was recorded, a list that ends
/// early) is a [`Mismatch`]. *Lenient* (shrinking): such a decision, and
/// everything past the list's end, falls back to the default.
pub struct ReplayPolicy {
    decisions: Vec<Decision>,
    next: usize,
    strict: bool,
}

impl ReplayPolicy {
    /// Replays `decisions`; see the type's docs for `strict`.
    pub fn new(decisions: Vec<Decision>, strict: bool) -> Self {
        ReplayPolicy {
            decisions,
            next: 0,
            strict,
        }
    }

    fn take(&mut self, what: &str) -> Result<Decision, Mismatch> {
        let step = self.next;
        match self.decisions.get(step) {
            Some(d) => {
                self.next += 1;
                Ok(*d)
            }
            None if self.strict => Err(Mismatch {
                detail: format!(
                    "the recorded schedule ended after {step} decisions, but the run needs a {what}"
                ),
            }),
            None => Ok(Decision::Auto),
        }
    }

    fn mismatch(&self, recorded: Decision, needed: String) -> Result<Decision, Mismatch> {
        if self.strict {
            Err(Mismatch {
                detail: format!(
                    "this replay no longer matches the code at step {}: recorded {recorded:?}, but the run needs {needed}",
                    self.next - 1
                ),
            })
        } else {
            Ok(Decision::Auto)
        }
    }
}

impl Policy for ReplayPolicy {
    fn pick(&mut self, eligible: &[TaskId], default: usize) -> Result<usize, Mismatch> {
        let d = self.take("task pick")?;
        match d {
            Decision::Auto => return Ok(default),
            Decision::Pick(t) => {
                if let Some(i) = eligible.iter().position(|&e| e == t) {
                    return Ok(i);
                }
            }
            _ => {}
        }
        self.mismatch(d, format!("a pick among tasks {eligible:?}"))
            .map(|_| default)
    }

    fn coin(&mut self, _p_ppm: u32) -> Result<bool, Mismatch> {
        match self.take("coin flip")? {
            Decision::Auto => Ok(false),
            Decision::Coin(b) => Ok(b),
            d => self.mismatch(d, "a coin flip".into()).map(|_| false),
        }
    }

    fn draw(&mut self, bound: u64) -> Result<u64, Mismatch> {
        match self.take("draw")? {
            Decision::Auto => Ok(0),
            Decision::Draw(v) if v < bound => Ok(v),
            d => self.mismatch(d, format!("a draw below {bound}")).map(|_| 0),
        }
    }

    fn name(&self) -> &'static str {
        "replay"
    }
}
