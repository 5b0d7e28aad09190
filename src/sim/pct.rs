//! PCT: probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010),
//! as shuttle implements it. Every task gets a random priority; the highest
//! priority runnable task always runs; at `depth - 1` random change points
//! the running task's priority drops below all others. A bug of depth `d`
//! is found with probability at least `1 / (n * k^(d-1))` per run.

use super::policy::{Mismatch, Policy, TaskId};
use super::random::below;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use std::collections::BTreeMap;

/// Task ids below this keep their priority in a vector; larger ones (never
/// seen from the simulator, which numbers tasks from 0) in a map.
const DENSE_IDS: TaskId = 1 << 24;

/// The PCT schedule policy.
pub struct PctPolicy {
    rng: ChaCha8Rng,
    /// Priorities of tasks `0..len`, by id (`depth` for ids never given one).
    dense: Vec<u64>,
    sparse: BTreeMap<TaskId, u64>,
    change_points: Vec<u64>,
    step: u64,
    depth: u64,
}

impl PctPolicy {
    /// A PCT policy of bug depth `depth` (at least 1) over about
    /// `expected_steps` scheduling decisions.
    pub fn new(seed: u64, depth: u32, expected_steps: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let depth = u64::from(depth.max(1));
        let k = expected_steps.max(1);
        let mut change_points: Vec<u64> = (1..depth).map(|_| 1 + below(&mut rng, k)).collect();
        change_points.sort_unstable();
        PctPolicy {
            rng,
            dense: Vec::new(),
            sparse: BTreeMap::new(),
            change_points,
            step: 0,
            depth,
        }
    }
}

impl PctPolicy {
    #[inline]
    fn priority(&self, t: TaskId) -> u64 {
        match self.dense.get(t as usize) {
            Some(&p) => p,
            None => self.sparse.get(&t).copied().unwrap_or(self.depth),
        }
    }

    fn set_priority(&mut self, t: TaskId, p: u64) {
        if t < DENSE_IDS {
            let i = t as usize;
            if i >= self.dense.len() {
                self.dense.resize(i + 1, self.depth);
            }
            self.dense[i] = p;
        } else {
            self.sparse.insert(t, p);
        }
    }
}

impl Policy for PctPolicy {
    fn pick(&mut self, eligible: &[TaskId], default: usize) -> Result<usize, Mismatch> {
        self.step += 1;
        if let Some(i) = self.change_points.iter().position(|&c| c == self.step) {
            // Demote the running task below every initial priority.
            if let Some(&t) = eligible.get(default) {
                self.set_priority(t, i as u64);
            }
        }
        let best = eligible
            .iter()
            .enumerate()
            .max_by_key(|&(_, &t)| (self.priority(t), u64::MAX - t))
            .map_or(default, |(i, _)| i);
        Ok(best)
    }

    fn coin(&mut self, p_ppm: u32) -> Result<bool, Mismatch> {
        Ok(below(&mut self.rng, 1_000_000) < u64::from(p_ppm))
    }

    fn draw(&mut self, bound: u64) -> Result<u64, Mismatch> {
        Ok(below(&mut self.rng, bound))
    }

    fn on_spawn(&mut self, task: TaskId) {
        // Initial priorities are all >= depth, so demoted ones stay below.
        let p = self.depth + below(&mut self.rng, u64::MAX / 2);
        self.set_priority(task, p);
    }

    fn name(&self) -> &'static str {
        "pct"
    }
}
