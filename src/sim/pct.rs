//! PCT: probabilistic concurrency testing, as in the paper (Burckhardt,
//! Kothari, Musuvathi, Nagarakatte, "A Randomized Scheduler with
//! Probabilistic Guarantees of Finding Bugs", ASPLOS 2010, Algorithm 1).
//!
//! Every task gets a random initial priority, all of them at least `d` (the
//! bug depth); the highest-priority runnable task always runs. Before the
//! run, `d - 1` change points `k_1 .. k_{d-1}` are drawn, each on its own and
//! uniformly in `1..=k`; when the run reaches its `k_i`-th scheduling
//! decision, the task that ran the step before gets priority `i`, below
//! every initial priority. A step is a decision among two or more runnable
//! tasks (a lone runnable task just runs), so `k` counts those.
//!
//! **Ordering of demoted tasks: the paper's.** Because the change points are
//! drawn independently and not sorted, which of two demoted tasks ranks
//! higher is itself random: a later demotion ranks above an earlier one in
//! half of the draws and below it in the other half. shuttle instead gives
//! each demoted task the next lowest priority, so a later demotion always
//! ranks below an earlier one, and faultline before this change always ranked
//! it above. Either fixed order makes some depth-3 bugs unreachable (the test
//! `tests/sim_pct.rs` has one that the "later above" order never finds);
//! the paper's random order reaches every order, and its guarantee holds as
//! proved: a bug of depth `d` in a program of `n` tasks and `k` steps is
//! found by one run with probability at least `1 / (n * k^(d-1))`.
//!
//! **Sizing `k`.** Give `expected_steps` (about how many decisions a run
//! makes) when it is known. [`PctPolicy::measure_steps`] measures it the
//! way shuttle does (its first iteration runs without change points and
//! counts): one run of the program under PCT without change points
//! (depth 1), returning [`Outcome::picks`]. A seed sweep measures once
//! (the command line, the explorer: the largest count of seeds 0, 1 and 2)
//! and gives every seed the same `k`, so each seed's run stays a pure
//! function of its seed, replayable alone. With `expected_steps: 0` and no
//! measurement, each change point draws its own scale `2^j` (`j` uniform
//! in `SCALE_LOG2_MIN..=SCALE_LOG2_MAX`, 16 to about a million steps) and a
//! step uniform in `1..=2^j`: it works with no numbers for any run length,
//! at a cost of about `2 * 17` per change point in the bound.
//!
//! **Choosing the depth.** `d` is the number of ordering constraints the
//! bug needs, one more than the preemptions at just the wrong moment:
//! `d = 1` when the bug shows if one task simply runs first (an ordering
//! bug: a task used before another initialises it); `d = 2` for an
//! atomicity violation (a check, then another task's write, then the use)
//! and for most lost updates and two-lock deadlocks; `d = 3` when the bad
//! interleaving must switch back and forth twice. The bound falls by a
//! factor `k` per extra level, so prefer the smallest depth that can show
//! the bug; when it is unknown, sweep `d = 1, 2, 3` (the command line's
//! default is 3).
//!
//! The pick scans the runnable tasks for the highest priority: O(runnable
//! tasks) per decision, unlike the random policy's O(1).

use super::executor::{PolicyKind, SimConfig};
use super::outcome::Outcome;
use super::policy::{Mismatch, Policy, TaskId};
use super::random::below;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use std::collections::BTreeMap;

/// Task ids below this keep their priority in a vector; larger ones (never
/// seen from the simulator, which numbers tasks from 0) in a map.
const DENSE_IDS: TaskId = 1 << 24;

/// The smallest scale (log2 of steps) a change point draws when no step
/// count is given.
const SCALE_LOG2_MIN: u64 = 4;
/// The largest such scale: about a million decisions.
const SCALE_LOG2_MAX: u64 = 20;

/// The PCT schedule policy.
pub struct PctPolicy {
    rng: ChaCha8Rng,
    /// Priorities of tasks `0..len`, by id (`depth` for ids never given one).
    dense: Vec<u64>,
    sparse: BTreeMap<TaskId, u64>,
    /// `(k_i, i)`: at decision `k_i` the task that ran last gets priority
    /// `i`; in the order drawn (not sorted).
    change_points: Vec<(u64, u64)>,
    step: u64,
    depth: u64,
}

impl PctPolicy {
    /// The seeds a sweep measures `k` on ([`PctPolicy::measure_steps`]),
    /// taking the largest count: the same for every seed of the sweep.
    pub const MEASURE_SEEDS: std::ops::Range<u64> = 0..3;

    /// A PCT policy of bug depth `depth` (at least 1) over about
    /// `expected_steps` scheduling decisions (0: not known; see the module
    /// docs).
    pub fn new(seed: u64, depth: u32, expected_steps: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let depth = u64::from(depth.max(1));
        let change_points = (1..depth)
            .map(|i| {
                let k = if expected_steps > 0 {
                    expected_steps
                } else {
                    let scales = SCALE_LOG2_MAX - SCALE_LOG2_MIN + 1;
                    1 << (SCALE_LOG2_MIN + below(&mut rng, scales))
                };
                (1 + below(&mut rng, k), i)
            })
            .collect();
        PctPolicy {
            rng,
            dense: Vec::new(),
            sparse: BTreeMap::new(),
            change_points,
            step: 0,
            depth,
        }
    }

    /// Measures PCT's `k` for a program: `run` runs it once with `cfg`
    /// under the random policy (seed, faults and limits from `cfg`), and
    /// this returns that run's scheduling decisions among two or more
    /// runnable tasks, at least 1. A random run switches tasks freely, so
    /// it has about as many decisions as the runs PCT's change points
    /// produce; a run without preemptions (shuttle's first iteration) has
    /// fewer, and a change point can only land within `k`.
    pub fn measure_steps(cfg: &SimConfig, run: impl FnOnce(SimConfig) -> Outcome) -> u64 {
        let mut cfg = cfg.clone();
        cfg.policy = PolicyKind::Random;
        run(cfg).picks.max(1)
    }

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
        self.pick_after(eligible, default, None)
    }

    fn pick_after(
        &mut self,
        eligible: &[TaskId],
        default: usize,
        last: Option<TaskId>,
    ) -> Result<usize, Mismatch> {
        self.step += 1;
        if let Some(t) = last {
            // Drawn order: of two change points on one step, the later
            // drawn wins.
            for i in 0..self.change_points.len() {
                let (k, p) = self.change_points[i];
                if k == self.step {
                    self.set_priority(t, p);
                }
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
