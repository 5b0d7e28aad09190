//! Running seeds of a [`Target`]: one seed, or a sweep over a range (one
//! shard of it), collecting runs, failures, the first failing run, speed
//! and the digest of every trace hash.

use super::policy::PolicySpec;
use super::seeds::{SeedRange, Shard};
use super::target::Target;
use crate::sim::{digest, Failure, Outcome, SimConfig};

/// One seed's run.
#[derive(Clone, Debug)]
pub struct SeedRun {
    /// The seed.
    pub seed: u64,
    /// The policy it ran under.
    pub policy: PolicySpec,
    /// The configuration it ran with.
    pub cfg: SimConfig,
    /// What happened.
    pub outcome: Outcome,
}

/// Runs `target` once with `seed` under `policy`.
pub fn run_seed(target: &dyn Target, seed: u64, policy: PolicySpec) -> SeedRun {
    let cfg = target.config(seed, policy);
    let outcome = target.run(cfg.clone());
    SeedRun {
        seed,
        policy,
        cfg,
        outcome,
    }
}

/// Which failures a sweep hunts (stops at, when fail-fast, and counts as
/// matches): every failure, or only those a predicate accepts (a bug's own
/// oracles).
pub type Matcher<'a> = Option<&'a dyn Fn(&Failure) -> bool>;

/// What a sweep runs.
#[derive(Clone, Copy)]
pub struct SweepSpec<'a> {
    /// The schedule policy.
    pub policy: PolicySpec,
    /// The seeds.
    pub range: SeedRange,
    /// The shard of `range` this sweep runs.
    pub shard: Shard,
    /// Stop at the first match.
    pub fail_fast: bool,
    /// Stop once this much wall time is spent, but only after `runs_min`
    /// runs; `None`: run every seed.
    pub time_budget_s: Option<f64>,
    /// Runs made whatever the budget (so what a sweep finds does not depend
    /// on the machine's speed). At least 1.
    pub runs_min: u64,
    /// The failures hunted; other failures are counted apart.
    pub matches: Matcher<'a>,
    /// Keep every run's `(seed, trace hash)` in the report (for merging
    /// shards); off, a sweep's memory does not grow with its length.
    pub keep_hashes: bool,
}

impl SweepSpec<'_> {
    /// Every seed of `range`, random policy, no budget, hunting any failure.
    pub fn all(range: SeedRange, policy: PolicySpec) -> SweepSpec<'static> {
        SweepSpec {
            policy,
            range,
            shard: Shard::ALL,
            fail_fast: false,
            time_budget_s: None,
            runs_min: 1,
            matches: None,
            keep_hashes: false,
        }
    }
}

/// What a sweep found.
#[derive(Clone, Debug)]
pub struct SweepReport {
    /// Runs made.
    pub runs: u64,
    /// Runs that failed.
    pub failures: u64,
    /// The first failing run (lowest seed).
    pub first_failure: Option<SeedRun>,
    /// Runs that failed through a hunted failure (every failure when the
    /// sweep hunts all).
    pub matched: u64,
    /// The first of them.
    pub first_match: Option<SeedRun>,
    /// The first failure the sweep does not hunt.
    pub first_other: Option<SeedRun>,
    /// Seeds of every failing run, in order (at most
    /// [`FAILING_SEEDS_MAX`]).
    pub failing_seeds: Vec<u64>,
    /// `digest` of every run's trace hash, in seed order.
    pub digest: u64,
    /// Every run's `(seed, trace hash)`, when the spec kept them.
    pub hashes: Vec<(u64, u64)>,
    /// Wall time the sweep took, seconds.
    pub elapsed_s: f64,
}

/// Failing seeds a sweep report lists at most.
pub const FAILING_SEEDS_MAX: usize = 10_000;

impl SweepReport {
    /// Runs per wall-clock second.
    pub fn runs_per_s(&self) -> f64 {
        if self.elapsed_s > 0.0 {
            self.runs as f64 / self.elapsed_s
        } else {
            0.0
        }
    }
}

/// Runs every seed of the spec's shard in order; `progress` is called after
/// each run with the runs and failures so far.
pub fn sweep(
    target: &dyn Target,
    spec: &SweepSpec<'_>,
    mut progress: impl FnMut(u64, u64),
) -> SweepReport {
    let watch = Stopwatch::start();
    let mut tally = Tally::default();
    let mut stop = false;
    let mut kept = Vec::new();
    // Hashes are folded as they come, so a sweep's memory does not grow
    // with its length.
    let hashes = spec.shard.seeds(spec.range).map_while(|seed| {
        if stop {
            return None;
        }
        let run = run_seed(target, seed, spec.policy);
        let hash = run.outcome.trace_hash;
        if spec.keep_hashes {
            kept.push((seed, hash));
        }
        let matched = tally.add(run, spec.matches);
        stop = matched && spec.fail_fast;
        if tally.runs >= spec.runs_min && spec.time_budget_s.is_some_and(|b| watch.elapsed_s() >= b)
        {
            stop = true;
        }
        progress(tally.runs, tally.failures);
        Some(hash)
    });
    let digest = digest(hashes);
    SweepReport {
        runs: tally.runs,
        failures: tally.failures,
        first_failure: tally.first_failure,
        matched: tally.matched,
        first_match: tally.first_match,
        first_other: tally.first_other,
        failing_seeds: tally.failing_seeds,
        digest,
        hashes: kept,
        elapsed_s: watch.elapsed_s(),
    }
}

/// What a sweep has seen so far.
#[derive(Default)]
struct Tally {
    runs: u64,
    failures: u64,
    matched: u64,
    first_failure: Option<SeedRun>,
    first_match: Option<SeedRun>,
    first_other: Option<SeedRun>,
    failing_seeds: Vec<u64>,
}

impl Tally {
    /// Counts `run`; returns whether it is a match.
    fn add(&mut self, run: SeedRun, matches: Matcher<'_>) -> bool {
        self.runs += 1;
        let Some(failure) = &run.outcome.failure else {
            return false;
        };
        self.failures += 1;
        if self.failing_seeds.len() < FAILING_SEEDS_MAX {
            self.failing_seeds.push(run.seed);
        }
        let matched = matches.is_none_or(|m| m(failure));
        if matched {
            self.matched += 1;
            if self.first_match.is_none() {
                self.first_match = Some(run.clone());
            }
        } else if self.first_other.is_none() {
            self.first_other = Some(run.clone());
        }
        self.first_failure.get_or_insert(run);
        matched
    }
}

/// Wall-clock time, for runs/s reports and time budgets only (never for
/// anything a run sees).
pub(crate) struct Stopwatch(std::time::Instant);

impl Stopwatch {
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn start() -> Self {
        Stopwatch(std::time::Instant::now()) // allow-world: a sweep's own runs/s and budget, wall time outside every simulated run
    }

    pub(crate) fn elapsed_s(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}
