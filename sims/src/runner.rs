//! Running seeds of a scenario's variant: the library's sweeps
//! (`faultline::check::sweep`) over a [`ScenarioTarget`], the scenario's
//! swarm fault plans, replay files and the CLI's failure report.

use crate::scenario::{Bug, Scenario, ScenarioError};
use faultline::check::replay_file::{ReplayFile, ReplayFileError};
use faultline::check::report::Written;
use faultline::check::seeds::{SeedRange, Shard};
use faultline::check::{self, Target, TargetId};
use faultline::sim::{FaultPlan, Outcome, PctPolicy, PolicyKind, SimConfig};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use faultline::check::sweep::SweepReport;
pub use faultline::check::{PolicySpec, SeedRun};

/// The git commit this binary was built from (short), or `"unknown"`.
pub const COMMIT: &str = env!("FAULTLINE_COMMIT");

/// A scenario's variant as a [`Target`]: what the library's sweeps, strict
/// replay and shrinking run, exactly as they run a user's test body.
#[derive(Clone, Copy)]
pub struct ScenarioTarget<'a> {
    scenario: &'a dyn Scenario,
    variant: &'a str,
    sync_switch: bool,
}

impl<'a> ScenarioTarget<'a> {
    /// `variant` of `scenario`, in the variant's own mode
    /// ([`sync_switch_for`]).
    ///
    /// # Errors
    /// [`ScenarioError::UnknownVariant`] when the scenario lacks it.
    pub fn new(scenario: &'a dyn Scenario, variant: &'a str) -> Result<Self, ScenarioError> {
        scenario.check_variant(variant)?;
        let sync_switch = sync_switch_for(scenario, variant);
        Ok(ScenarioTarget {
            scenario,
            variant,
            sync_switch,
        })
    }

    /// The same target in sync-switch mode (`true`) or the default mode.
    pub fn sync_switch(self, on: bool) -> Self {
        ScenarioTarget {
            sync_switch: on,
            ..self
        }
    }
}

impl Target for ScenarioTarget<'_> {
    fn id(&self) -> TargetId {
        TargetId {
            name: self.scenario.name().to_string(),
            variant: self.variant.to_string(),
        }
    }

    fn config(&self, seed: u64, policy: PolicySpec) -> SimConfig {
        config_in(self.scenario, self.variant, seed, policy, self.sync_switch)
    }

    fn run(&self, cfg: SimConfig) -> Outcome {
        // The variant was checked when the target was made.
        self.scenario
            .run(self.variant, cfg)
            .unwrap_or_else(|e| panic!("faultline: {e}"))
    }
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

/// Whether runs of `variant` are in sync-switch mode:
/// `FAULTLINE_SYNC_SWITCH` when set (`run --sync-switch` sets it), else
/// whether the variant's bug needs the mode ([`crate::Bug::sync_switch`]).
pub fn sync_switch_for(scenario: &dyn Scenario, variant: &str) -> bool {
    match faultline::check::env::sync_switch() {
        Ok(Some(on)) => on,
        _ => scenario.bug(variant).is_some_and(|b| b.sync_switch),
    }
}

/// The configuration of `seed`'s run of `variant` in the variant's own
/// mode ([`sync_switch_for`]); see [`config_in`].
pub fn config_for(
    scenario: &dyn Scenario,
    variant: &str,
    seed: u64,
    policy: PolicySpec,
) -> SimConfig {
    let sync_switch = sync_switch_for(scenario, variant);
    config_in(scenario, variant, seed, policy, sync_switch)
}

/// The configuration of `seed`'s run of `variant` in sync-switch mode
/// (`sync_switch`) or the default mode: the seed, the policy, the swarm
/// fault plan, the mode, then the scenario's own adjustments. PCT without
/// a step count gets the one [`pct_steps`] measures for the variant in
/// that mode.
pub fn config_in(
    scenario: &dyn Scenario,
    variant: &str,
    seed: u64,
    policy: PolicySpec,
    sync_switch: bool,
) -> SimConfig {
    let mut cfg = SimConfig {
        seed,
        policy: policy.kind(),
        faults: fault_plan(scenario, seed),
        sync_switch,
        ..Default::default()
    };
    if let PolicyKind::Pct {
        expected_steps: expected_steps @ 0,
        ..
    } = &mut cfg.policy
    {
        *expected_steps = pct_steps(scenario, variant, sync_switch);
    }
    scenario.configure(variant, &mut cfg);
    cfg
}

thread_local! {
    /// `pct_steps` already measured on this thread, by (scenario, variant,
    /// sync-switch mode).
    static PCT_STEPS: RefCell<BTreeMap<(String, String, bool), u64>> = const { RefCell::new(BTreeMap::new()) };
}

/// PCT's `k` for `variant` of `scenario` in sync-switch mode
/// (`sync_switch`) or the default mode, measured as shuttle does before
/// its first PCT iteration: the most scheduling decisions a random run of
/// seeds [`PctPolicy::MEASURE_SEEDS`] makes. Every seed of every sweep of
/// the variant gets the same `k` (measured once per thread), so each seed
/// replays on its own. An unknown variant measures 1 (its run then fails
/// as unknown).
pub fn pct_steps(scenario: &dyn Scenario, variant: &str, sync_switch: bool) -> u64 {
    if scenario.check_variant(variant).is_err() {
        return 1;
    }
    let key = (
        scenario.name().to_string(),
        variant.to_string(),
        sync_switch,
    );
    if let Some(k) = PCT_STEPS.with(|m| m.borrow().get(&key).copied()) {
        return k;
    }
    let k = PctPolicy::MEASURE_SEEDS
        .map(|seed| {
            let base = config_in(scenario, variant, seed, PolicySpec::Random, sync_switch);
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
    let target = ScenarioTarget::new(scenario, variant)?;
    Ok(check::sweep::run_seed(&target, seed, policy))
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
    /// Stop at the first failure (of the hunted bug, when there is one).
    pub fail_fast: bool,
    /// Stop once this much wall time is spent, but only after `runs_min`
    /// runs; `None`: run every seed.
    pub time_budget_s: Option<f64>,
    /// Runs made whatever the budget. At least 1.
    pub runs_min: u64,
    /// The bug being hunted, if any: only a failure of its own oracles is a
    /// match; other failures are counted apart.
    pub bug: Option<Bug>,
    /// Keep every run's `(seed, trace hash)` (for `run --json` and
    /// `merge`).
    pub keep_hashes: bool,
    /// Threads running seeds at once (see `faultline::check::sweep`); the
    /// report is the same whatever the number.
    pub jobs: usize,
    /// Sync-switch mode (`Some(true)`) or the default mode (`Some(false)`);
    /// `None`: the variant's own ([`sync_switch_for`]).
    pub sync_switch: Option<bool>,
}

/// Runs every seed of the spec's shard in order; `progress` is called after
/// each run with the runs and failures so far.
///
/// # Errors
/// [`ScenarioError::UnknownVariant`] for a variant the scenario lacks
/// (checked before the first run).
pub fn sweep(
    spec: &SweepSpec<'_>,
    progress: impl FnMut(u64, u64),
) -> Result<SweepReport, ScenarioError> {
    let mut target = ScenarioTarget::new(spec.scenario, spec.variant)?;
    if let Some(on) = spec.sync_switch {
        target = target.sync_switch(on);
    }
    let bug = spec.bug;
    let own = move |f: &faultline::sim::Failure| bug.is_none_or(|b| b.signalled_by(f));
    let jobs = spec.jobs;
    let lib = check::sweep::SweepSpec {
        policy: spec.policy,
        range: spec.range,
        shard: spec.shard,
        fail_fast: spec.fail_fast,
        time_budget_s: spec.time_budget_s,
        runs_min: spec.runs_min,
        matches: Some(&own),
        keep_hashes: spec.keep_hashes,
        jobs,
    };
    Ok(check::sweep::sweep(&target, &lib, progress))
}

/// The replay file of a run of `scenario`'s `variant`.
pub fn replay_file_for(scenario: &dyn Scenario, variant: &str, run: &SeedRun) -> ReplayFile {
    let target = ScenarioTarget {
        scenario,
        variant,
        sync_switch: run.cfg.sync_switch,
    };
    let mut file = check::rerun::replay_file_for(&target, run);
    if file.commit == "unknown" {
        // Run outside a checkout: the commit this binary was built from.
        file.commit = COMMIT.to_string();
    }
    file
}

/// Where replay files go: `FAULTLINE_REPLAY_DIR`, or
/// `<target>/faultline/replays` (`CARGO_TARGET_DIR` honoured).
pub fn replay_dir() -> PathBuf {
    check::env::replay_dir()
}

/// `<replay dir>/<scenario>-<variant>-<seed>.json` for the random policy;
/// PCT runs add `-pct<depth>` before `.json`.
pub fn replay_path(scenario: &str, variant: &str, seed: u64, policy: PolicySpec) -> PathBuf {
    let suffix = match policy {
        PolicySpec::Pct { depth, .. } => format!("-pct{depth}"),
        PolicySpec::Random | PolicySpec::Fuzz => String::new(),
    };
    replay_dir().join(format!("{scenario}-{variant}-{seed}{suffix}.json"))
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

/// The CLI's report of a failing run: seed, oracle, failure, fault plan,
/// replay file and the commands that reproduce it.
pub fn failure_report(scenario: &str, variant: &str, run: &SeedRun, replay: Written<'_>) -> String {
    let id = TargetId {
        name: scenario.to_string(),
        variant: variant.to_string(),
    };
    let mut repro = Vec::new();
    if let Ok(path) = replay {
        repro.push(format!("cargo run --release -- replay {}", path.display()));
    }
    if run.policy.reruns_from_seed() {
        repro.push(format!(
            "cargo run --release -- run {scenario} --variant {variant} --seed {}{}",
            run.seed,
            run.policy.cli_flags()
        ));
    }
    check::report::failure_report(&id, run, replay, &[], &repro)
}

/// A path shown in a report for a file that could not be written.
pub fn not_written<'a>(path: &'a Path, why: &str) -> Written<'a> {
    Err((path, why.to_string()))
}
