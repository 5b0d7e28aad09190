//! The uniformly random schedule policy.

use super::policy::{Mismatch, Policy, TaskId};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// Picks uniformly among runnable tasks; coins and draws from the same
/// seeded stream.
pub struct RandomPolicy {
    rng: ChaCha8Rng,
}

impl RandomPolicy {
    /// A policy seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        RandomPolicy {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }
}

/// A uniform draw in `0..bound` (`bound > 0`) from `rng`.
#[inline]
pub(crate) fn below(rng: &mut ChaCha8Rng, bound: u64) -> u64 {
    // Multiply-shift: unbiased enough for scheduling, and fast.
    ((u128::from(rng.next_u64()) * u128::from(bound)) >> 64) as u64
}

impl Policy for RandomPolicy {
    fn pick(&mut self, eligible: &[TaskId], _default: usize) -> Result<usize, Mismatch> {
        Ok(below(&mut self.rng, eligible.len() as u64) as usize)
    }

    fn coin(&mut self, p_ppm: u32) -> Result<bool, Mismatch> {
        Ok(below(&mut self.rng, 1_000_000) < u64::from(p_ppm))
    }

    fn draw(&mut self, bound: u64) -> Result<u64, Mismatch> {
        Ok(below(&mut self.rng, bound))
    }

    fn name(&self) -> &'static str {
        "random"
    }
}
