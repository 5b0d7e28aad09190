//! Running seeds: one seed, or a sweep over a range (one shard of it),
//! collecting runs, failures, the first failing run, speed and the digest
//! of every trace hash. A failing run becomes a replay file and a report
//! with the commands that reproduce it.

use crate::replay_file::{FailureRecord, ReplayFile, ReplayFileError, SimParams, FORMAT_VERSION};
use crate::scenario::{Scenario, ScenarioError};
use crate::seeds::{SeedRange, Shard};
use faultline::sim::{digest, FaultPlan, Outcome, PctPolicy, PolicyKind, SimConfig};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use crate::policy::PolicySpec;

/// Where failing runs' replay files go, relative to the current directory.
pub const REPLAY_DIR: &str = "target/faultline/replays";

/// Faults that struck, listed in a failure report at most.
const FAULT_LINES_MAX: usize = 10;

/// The git commit this binary was built from (short), or `"unknown"`.
pub const COMMIT: &str = env!("FAULTLINE_COMMIT");

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

/// The swarm fault plan of `seed`: a subset of the scenario's fault kinds,
/// and node faults when it has faulty nodes.
pub fn fault_plan(scenario: &dyn Scenario, seed: u64) -> FaultPlan {
    let mut plan = FaultPlan::swarm(seed, scenario.fault_kinds(), scenario.horizon_ns());
    if !scenario.node_faults() {
        plan = FaultPlan {
            point_ppm: plan.point_ppm,
            ..FaultPlan::none()
        };
    }
    plan
}

/// The configuration of `seed`'s run of `variant`: the seed, the policy,
/// the swarm fault plan, then the scenario's own adjustments. PCT without a
/// step count gets the one [`pct_steps`] measures for the variant.
pub fn config_for(
    scenario: &dyn Scenario,
    variant: &str,
    seed: u64,
    policy: PolicySpec,
) -> SimConfig {
    let mut cfg = SimConfig {
        seed,
        policy: policy.kind(),
        faults: fault_plan(scenario, seed),
        ..Default::default()
    };
    if let PolicyKind::Pct {
        expected_steps: expected_steps @ 0,
        ..
    } = &mut cfg.policy
    {
        *expected_steps = pct_steps(scenario, variant);
    }
    scenario.configure(variant, &mut cfg);
    cfg
}

thread_local! {
    /// `pct_steps` already measured on this thread, by (scenario, variant).
    static PCT_STEPS: RefCell<BTreeMap<(String, String), u64>> = const { RefCell::new(BTreeMap::new()) };
}

/// PCT's `k` for `variant` of `scenario`, measured as shuttle does before
/// its first PCT iteration: the most scheduling decisions (among two or
/// more runnable tasks) of the runs of seeds
/// [`PctPolicy::MEASURE_SEEDS`] under PCT without change points. Every
/// seed of every sweep of the variant gets the same `k` (measured once per
/// thread), so a seed's run stays a pure function of its seed. An unknown
/// variant measures 1 (its run then fails as unknown).
pub fn pct_steps(scenario: &dyn Scenario, variant: &str) -> u64 {
    if scenario.check_variant(variant).is_err() {
        return 1;
    }
    let key = (scenario.name().to_string(), variant.to_string());
    if let Some(k) = PCT_STEPS.with(|m| m.borrow().get(&key).copied()) {
        return k;
    }
    let k = PctPolicy::MEASURE_SEEDS
        .map(|seed| {
            let base = config_for(scenario, variant, seed, PolicySpec::Random);
            PctPolicy::measure_steps(&base, |cfg| {
                scenario.run(variant, cfg).expect("variant checked above")
            })
        })
        .max()
        .unwrap_or(1);
    PCT_STEPS.with(|m| m.borrow_mut().insert(key, k));
    k
}

/// Random (no depth) or PCT of depth `pct_depth` with its step count
/// measured ([`pct_steps`]).
pub fn policy_for(_scenario: &dyn Scenario, pct_depth: Option<u32>) -> PolicySpec {
    match pct_depth {
        None => PolicySpec::Random,
        Some(depth) => PolicySpec::Pct {
            depth,
            expected_steps: 0,
        },
    }
}

/// Runs `variant` once with `seed`.
///
/// # Errors
/// [`ScenarioError::UnknownVariant`] for a variant the scenario lacks.
pub fn run_seed(
    scenario: &dyn Scenario,
    variant: &str,
    seed: u64,
    policy: PolicySpec,
) -> Result<SeedRun, ScenarioError> {
    let cfg = config_for(scenario, variant, seed, policy);
    let outcome = scenario.run(variant, cfg.clone())?;
    Ok(SeedRun {
        seed,
        policy,
        cfg,
        outcome,
    })
}

/// What a sweep runs.
#[derive(Clone, Copy)]
pub struct SweepSpec<'a> {
    /// The scenario.
    pub scenario: &'a dyn Scenario,
    /// Its variant.
    pub variant: &'a str,
    /// The schedule policy.
    pub policy: PolicySpec,
    /// The seeds.
    pub range: SeedRange,
    /// The shard of `range` this sweep runs.
    pub shard: Shard,
    /// Stop at the first failure.
    pub fail_fast: bool,
    /// Stop once this much wall time is spent, but only after `runs_min`
    /// runs; `None`: run every seed.
    pub time_budget_s: Option<f64>,
    /// Runs made whatever the budget (so what a sweep finds does not depend
    /// on the machine's speed). At least 1.
    pub runs_min: u64,
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
    /// `digest` of every run's trace hash, in seed order.
    pub digest: u64,
    /// Wall time the sweep took, seconds.
    pub elapsed_s: f64,
}

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
///
/// # Errors
/// [`ScenarioError::UnknownVariant`] for a variant the scenario lacks
/// (checked before the first run).
pub fn sweep(
    spec: &SweepSpec<'_>,
    mut progress: impl FnMut(u64, u64),
) -> Result<SweepReport, ScenarioError> {
    spec.scenario.check_variant(spec.variant)?;
    let watch = Stopwatch::start();
    let (mut runs, mut failures) = (0u64, 0u64);
    let mut first_failure = None;
    let (mut error, mut stop) = (None, false);
    // Hashes are folded as they come, so a sweep's memory does not grow
    // with its length.
    let hashes = spec.shard.seeds(spec.range).map_while(|seed| {
        if stop {
            return None;
        }
        let run = match run_seed(spec.scenario, spec.variant, seed, spec.policy) {
            Ok(run) => run,
            Err(e) => {
                error = Some(e);
                return None;
            }
        };
        runs += 1;
        let hash = run.outcome.trace_hash;
        if !run.outcome.passed() {
            failures += 1;
            stop = spec.fail_fast;
            first_failure.get_or_insert(run);
        }
        if runs >= spec.runs_min && spec.time_budget_s.is_some_and(|b| watch.elapsed_s() >= b) {
            stop = true;
        }
        progress(runs, failures);
        Some(hash)
    });
    let digest = digest(hashes);
    if let Some(e) = error {
        return Err(e);
    }
    Ok(SweepReport {
        runs,
        failures,
        first_failure,
        digest,
        elapsed_s: watch.elapsed_s(),
    })
}

/// Wall-clock time of a sweep, for its runs/s report only (never for
/// anything a run sees).
struct Stopwatch(std::time::Instant);

impl Stopwatch {
    // The CLI reports its own speed: wall time outside every simulated run.
    #[allow(clippy::disallowed_methods)]
    fn start() -> Self {
        Stopwatch(std::time::Instant::now()) // allow-world: the CLI's own runs/s, wall time outside every simulated run
    }

    fn elapsed_s(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

/// The replay file of a run of `scenario`'s `variant`.
pub fn replay_file_for(scenario: &dyn Scenario, variant: &str, run: &SeedRun) -> ReplayFile {
    ReplayFile {
        format: FORMAT_VERSION,
        scenario: scenario.name().to_string(),
        variant: variant.to_string(),
        seed: run.seed,
        policy: run.policy,
        params: SimParams::of(&run.cfg),
        faults: run.cfg.faults.clone(),
        failure: run.outcome.failure.as_ref().map(FailureRecord::from),
        trace_hash: run.outcome.trace_hash,
        faultline_version: env!("CARGO_PKG_VERSION").to_string(),
        commit: COMMIT.to_string(),
        shrunk: None,
        decisions: run.outcome.decisions.clone(),
    }
}

/// `target/faultline/replays/<scenario>-<variant>-<seed>.json` for the
/// random policy; PCT runs add `-pct<depth>` before `.json`.
pub fn replay_path(scenario: &str, variant: &str, seed: u64, policy: PolicySpec) -> PathBuf {
    let suffix = match policy {
        PolicySpec::Pct { depth, .. } => format!("-pct{depth}"),
        PolicySpec::Random | PolicySpec::Fuzz => String::new(),
    };
    Path::new(REPLAY_DIR).join(format!("{scenario}-{variant}-{seed}{suffix}.json"))
}

/// Writes the replay file of a failing run and returns its path.
///
/// # Errors
/// [`ReplayFileError::Io`] when the file cannot be written.
pub fn save_failure(
    scenario: &dyn Scenario,
    variant: &str,
    run: &SeedRun,
) -> Result<PathBuf, ReplayFileError> {
    let path = replay_path(scenario.name(), variant, run.seed, run.policy);
    replay_file_for(scenario, variant, run).write(&path)?;
    Ok(path)
}

/// The report of a failing run: seed, failure, fault plan, replay file and
/// the two commands that reproduce it.
pub fn failure_report(scenario: &str, variant: &str, run: &SeedRun, path: &Path) -> String {
    let failure = run
        .outcome
        .failure
        .as_ref()
        .map_or_else(|| "passed".to_string(), ToString::to_string);
    let mut lines = vec![
        format!(
            "FAILED: {scenario} variant {variant}, seed {} ({}): {failure}",
            run.seed, run.policy
        ),
        format!("  {}", run.cfg.faults),
    ];
    let log = &run.outcome.fault_log;
    for f in log.iter().take(FAULT_LINES_MAX) {
        lines.push(format!("    {f}"));
    }
    if log.len() > FAULT_LINES_MAX {
        lines.push(format!("    ... and {} more", log.len() - FAULT_LINES_MAX));
    }
    lines.push(format!("  replay file: {}", path.display()));
    lines.push(format!(
        "  reproduce:   cargo run --release -- replay {}",
        path.display()
    ));
    if run.policy.reruns_from_seed() {
        lines.push(format!(
            "  or rerun:    cargo run --release -- run {scenario} --variant {variant} --seed {}{}",
            run.seed,
            run.policy.cli_flags()
        ));
    }
    lines.join("\n")
}
