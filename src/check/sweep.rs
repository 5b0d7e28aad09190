//! Running seeds of a [`Target`]: one seed, or a sweep over a range (one
//! shard of it), collecting runs, failures, the first failing run, speed
//! and the digest of every trace hash.

use super::policy::PolicySpec;
use super::seeds::{SeedRange, Shard};
use super::target::Target;
use crate::sim::{Digest, Failure, Outcome, PctPolicy, SimConfig};

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
pub type Matcher<'a> = Option<&'a (dyn Fn(&Failure) -> bool + Sync)>;

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
    /// Threads that run seeds at once (each with its own simulator); 0 or 1
    /// runs them on this thread. The report is the same whatever the
    /// number (the seeds past a fail-fast stop are run but not counted).
    pub jobs: usize,
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
            jobs: 1,
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

/// `policy` with PCT's step count measured on `target` when it is 0 (not
/// given): the most scheduling decisions a random run of seeds
/// [`PctPolicy::MEASURE_SEEDS`] makes, the same for every seed, so each
/// seed still replays on its own. Any other policy is returned as is.
pub fn resolve_pct(target: &dyn Target, policy: PolicySpec) -> PolicySpec {
    match policy {
        PolicySpec::Pct {
            depth,
            expected_steps: 0,
        } => {
            let k = PctPolicy::MEASURE_SEEDS
                .map(|seed| {
                    let base = target.config(seed, PolicySpec::Random);
                    PctPolicy::measure_steps(&base, |cfg| target.run(cfg))
                })
                .max()
                .unwrap_or(1);
            PolicySpec::Pct {
                depth,
                expected_steps: k,
            }
        }
        other => other,
    }
}

/// Jobs a sweep runs when told nothing: `FAULTLINE_JOBS`, else every core.
pub fn jobs_default() -> usize {
    std::env::var("FAULTLINE_JOBS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Runs every seed of the spec's shard, in order (or on `spec.jobs`
/// threads, with the same report); `progress` is called with the runs and
/// failures so far.
pub fn sweep(
    target: &(dyn Target + Sync),
    spec: &SweepSpec<'_>,
    progress: impl FnMut(u64, u64),
) -> SweepReport {
    if spec.jobs > 1 {
        return sweep_parallel(target, spec, progress);
    }
    let watch = Stopwatch::start();
    let mut tally = Tally::default();
    let mut progress = progress;
    let mut stop = false;
    let mut hasher = Folder::default();
    for seed in spec.shard.seeds(spec.range) {
        if stop {
            break;
        }
        let run = run_seed(target, seed, spec.policy);
        hasher.add(seed, run.outcome.trace_hash, spec.keep_hashes);
        let matched = tally.add(run, spec.matches);
        stop = matched && spec.fail_fast;
        if tally.runs >= spec.runs_min && spec.time_budget_s.is_some_and(|b| watch.elapsed_s() >= b)
        {
            stop = true;
        }
        progress(tally.runs, tally.failures);
    }
    tally.report(hasher, watch.elapsed_s())
}

/// Folds trace hashes in seed order (and keeps them when asked), so a
/// sweep's memory does not grow with its length.
#[derive(Default)]
struct Folder {
    digest: Digest,
    kept: Vec<(u64, u64)>,
}

impl Folder {
    fn add(&mut self, seed: u64, hash: u64, keep: bool) {
        self.digest.add(hash);
        if keep {
            self.kept.push((seed, hash));
        }
    }
}

/// One seed's result in a parallel sweep.
struct Done {
    index: usize,
    seed: u64,
    hash: u64,
    failed: Option<SeedRun>,
}

/// [`sweep`] on `spec.jobs` threads: thread `t` runs the seeds at
/// positions `t, t + jobs, ...`; the report counts the seeds up to the
/// first match (fail-fast) or the longest run of seeds every thread
/// finished (time budget), in seed order, so it equals the sequential one.
fn sweep_parallel(
    target: &(dyn Target + Sync),
    spec: &SweepSpec<'_>,
    mut progress: impl FnMut(u64, u64),
) -> SweepReport {
    use crate::sync::process_atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
    let watch = Stopwatch::start();
    let seeds: Vec<u64> = spec.shard.seeds(spec.range).collect();
    let jobs = spec.jobs.min(seeds.len().max(1));
    let first_match = AtomicUsize::new(usize::MAX);
    let (ran, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    let timed_out = AtomicBool::new(false);
    let finished = AtomicUsize::new(0);
    // The thread that reports progress; a worker that finishes wakes it, so
    // the sweep ends when its last worker does, not at the next tick.
    let reporter = std::thread::current();
    let results: Vec<Vec<Done>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|t| {
                let (seeds, first_match, ran, failed) = (&seeds, &first_match, &ran, &failed);
                let (timed_out, finished, watch) = (&timed_out, &finished, &watch);
                let reporter = &reporter;
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for index in (t..seeds.len()).step_by(jobs) {
                        // Positions below `runs_min` run whatever the budget, so
                        // the finished prefix the report counts reaches it even
                        // when one thread is far ahead of another.
                        let past_min = index as u64 >= spec.runs_min;
                        if index > first_match.load(SeqCst) || (past_min && timed_out.load(SeqCst))
                        {
                            break;
                        }
                        let run = run_seed(target, seeds[index], spec.policy);
                        let n = ran.fetch_add(1, SeqCst) + 1;
                        let hit = run
                            .outcome
                            .failure
                            .as_ref()
                            .map(|f| spec.matches.is_none_or(|m| m(f)));
                        if hit.is_some() {
                            failed.fetch_add(1, SeqCst);
                        }
                        if hit == Some(true) && spec.fail_fast {
                            first_match.fetch_min(index, SeqCst);
                        }
                        if n >= spec.runs_min
                            && spec.time_budget_s.is_some_and(|b| watch.elapsed_s() >= b)
                        {
                            timed_out.store(true, SeqCst);
                        }
                        let hash = run.outcome.trace_hash;
                        let failed = run.outcome.failure.is_some().then_some(run);
                        out.push(Done {
                            index,
                            seed: seeds[index],
                            hash,
                            failed,
                        });
                    }
                    finished.fetch_add(1, SeqCst);
                    reporter.unpark();
                    out
                })
            })
            .collect();
        while finished.load(SeqCst) < jobs {
            progress(ran.load(SeqCst), failed.load(SeqCst));
            std::thread::park_timeout(std::time::Duration::from_millis(50));
        }
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect()
    });
    merge_parallel(results, first_match.into_inner(), spec, watch.elapsed_s())
}

/// The sequential report of a parallel sweep's results.
fn merge_parallel(
    results: Vec<Vec<Done>>,
    first_match: usize,
    spec: &SweepSpec<'_>,
    elapsed_s: f64,
) -> SweepReport {
    // Every thread ran its seeds in order: the seeds all of them finished
    // form a prefix, up to the first one some thread did not reach.
    let reached = results
        .iter()
        .enumerate()
        .map(|(t, r)| r.last().map_or(t, |d| d.index + results.len()))
        .min()
        .unwrap_or(0);
    let end = reached.min(first_match.saturating_add(1));
    let mut all: Vec<Done> = results
        .into_iter()
        .flatten()
        .filter(|d| d.index < end)
        .collect();
    all.sort_by_key(|d| d.index);
    let mut tally = Tally::default();
    let mut hasher = Folder::default();
    for d in all {
        hasher.add(d.seed, d.hash, spec.keep_hashes);
        match d.failed {
            Some(run) => {
                tally.add(run, spec.matches);
            }
            None => tally.runs += 1,
        }
    }
    tally.report(hasher, elapsed_s)
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
    fn report(self, hasher: Folder, elapsed_s: f64) -> SweepReport {
        SweepReport {
            runs: self.runs,
            failures: self.failures,
            first_failure: self.first_failure,
            matched: self.matched,
            first_match: self.first_match,
            first_other: self.first_other,
            failing_seeds: self.failing_seeds,
            digest: hasher.digest.value(),
            hashes: hasher.kept,
            elapsed_s,
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::target::{BodySetup, BodyTarget, TargetId};
    use crate::check::World;

    fn target() -> impl Target + Sync {
        BodyTarget::new("t", BodySetup::default(), |w: World| async move {
            if w.draw(4) == 1 {
                w.fail("x", "boom");
            }
        })
    }

    /// What thread `t` of `jobs` produced had it run positions `t..end`.
    fn ran(target: &dyn Target, t: usize, jobs: usize, end: usize) -> Vec<Done> {
        (t..end)
            .step_by(jobs)
            .map(|i| {
                let r = run_seed(target, i as u64, PolicySpec::Random);
                Done {
                    index: i,
                    seed: i as u64,
                    hash: r.outcome.trace_hash,
                    failed: r.outcome.failure.is_some().then_some(r),
                }
            })
            .collect()
    }

    fn key(r: &SweepReport) -> (u64, u64, u64, Vec<u64>, Option<u64>) {
        let first = r.first_match.as_ref().map(|f| f.seed);
        (r.runs, r.failures, r.digest, r.failing_seeds.clone(), first)
    }

    #[test]
    fn a_parallel_sweep_counts_what_a_sequential_one_counts() {
        let t = target();
        let range = SeedRange { start: 0, end: 40 };
        for fail_fast in [false, true] {
            let spec = SweepSpec {
                fail_fast,
                ..SweepSpec::all(range, PolicySpec::Random)
            };
            let seq = sweep(&t, &spec, |_, _| {});
            let first = match (&seq.first_match, fail_fast) {
                (Some(f), true) => f.seed as usize,
                _ => usize::MAX,
            };
            // Both threads ran past the first failure: the merge ignores it.
            let par = merge_parallel(
                vec![ran(&t, 0, 2, 40), ran(&t, 1, 2, 40)],
                first,
                &spec,
                0.0,
            );
            assert_eq!(key(&par), key(&seq), "fail_fast {fail_fast}");
            let threads = sweep(&t, &SweepSpec { jobs: 3, ..spec }, |_, _| {});
            assert_eq!(key(&threads), key(&seq), "3 jobs, fail_fast {fail_fast}");
        }
    }

    /// A target whose seed 1 runs only once 19 other runs are done, as a
    /// thread the machine starves would.
    struct SlowSeedOne<T>(T, crate::sync::process_atomic::AtomicU64);

    impl<T: Target> Target for SlowSeedOne<T> {
        fn id(&self) -> TargetId {
            self.0.id()
        }
        fn config(&self, seed: u64, policy: PolicySpec) -> SimConfig {
            self.0.config(seed, policy)
        }
        fn run(&self, cfg: SimConfig) -> crate::sim::Outcome {
            use crate::sync::process_atomic::Ordering::SeqCst;
            let mut spins = 0u64;
            while cfg.seed == 1 && self.1.load(SeqCst) < 19 && spins < 2_000_000_000 {
                std::hint::spin_loop();
                spins += 1;
            }
            self.1.fetch_add(1, SeqCst);
            self.0.run(cfg)
        }
    }

    #[test]
    fn a_parallel_sweep_out_of_time_still_counts_runs_min_seeds() {
        let t = SlowSeedOne(target(), Default::default());
        let spec = SweepSpec {
            time_budget_s: Some(0.0),
            runs_min: 20,
            jobs: 2,
            ..SweepSpec::all(SeedRange { start: 0, end: 100 }, PolicySpec::Random)
        };
        let r = sweep(&t, &spec, |_, _| {});
        assert!(r.runs >= 20, "{} runs counted, runs_min 20", r.runs);
    }

    #[test]
    fn a_parallel_sweep_stopped_by_time_counts_the_finished_prefix() {
        let t = target();
        let spec = SweepSpec::all(SeedRange { start: 0, end: 40 }, PolicySpec::Random);
        // Thread 0 stopped after position 10, thread 1 ran to the end.
        let par = merge_parallel(
            vec![ran(&t, 0, 2, 11), ran(&t, 1, 2, 40)],
            usize::MAX,
            &spec,
            0.0,
        );
        let seq = sweep(
            &t,
            &SweepSpec::all(SeedRange { start: 0, end: 12 }, PolicySpec::Random),
            |_, _| {},
        );
        assert_eq!(key(&par), key(&seq));
    }
}
