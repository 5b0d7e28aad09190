//! [`Check`] and [`check`]: run a test body over many seeds in the
//! simulator; on the first failure, shrink it, write its replay file and
//! report it with a one-line repro.

use super::env::{self, EnvError};
use super::policy::PolicySpec;
use super::replay_file::{read_replay, ReplayFile};
use super::report::{failure_report, failure_report_labelled, tail, Written, TRACE_TAIL_LINES};
use super::rerun::{self, replay_file_for, ShrinkLimits, Verdict};
use super::seeds::SeedRange;
use super::sweep::{self, run_seed, SeedRun, SweepSpec};
use super::target::{BodySetup, BodyTarget, Target};
use super::world::World;
use crate::probe::FaultKind;
use crate::sim::{digest, FaultPlan, NodeConfig, SimHandle};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Seeds a check runs when neither code nor environment says.
pub const SEEDS_DEFAULT: u64 = 100;

/// Seconds a failure is shrunk at most, unless told otherwise.
pub const SHRINK_TIME_S_DEFAULT: f64 = 10.0;

/// How a check's runs are faulted.
#[derive(Clone, Debug)]
pub enum Faults {
    /// No faults (the default).
    None,
    /// The same plan on every seed.
    Plan(FaultPlan),
    /// A swarm plan per seed: each seed switches a different subset of
    /// these fault-point kinds and of the node faults on, drawn within
    /// `horizon` of the start.
    Swarm {
        /// The fault-point kinds the code under test reaches.
        kinds: Vec<FaultKind>,
        /// Node faults strike within this long of the start.
        horizon: Duration,
    },
}

/// A test over many seeds of the simulator. Every setting has a default;
/// an explicit setting beats the `FAULTLINE_*` environment (see
/// [`env`](mod@super::env)), which beats the default.
///
/// ```
/// use faultline::check::Check;
/// use faultline::sync::{Arc, Gate, Mutex};
///
/// Check::new().seeds(0..200).run(|world| async move {
///     let counter = Arc::new(Mutex::new(0));
///     let gate = Arc::new(Gate::new(()));
///     let mut tasks = Vec::new();
///     for _ in 0..2 {
///         let (counter, gate) = (counter.clone(), gate.clone());
///         tasks.push(world.spawn("incr", async move {
///             let _held = gate.lock().await;
///             let v = counter.with(|c| *c);
///             world.yield_now().await;
///             counter.with(|c| *c = v + 1);
///         }));
///     }
///     for t in tasks {
///         t.await.unwrap();
///     }
///     assert_eq!(counter.with(|c| *c), 2, "lost update");
/// });
/// ```
#[derive(Clone, Default)]
pub struct Check {
    name: Option<String>,
    crate_name: Option<String>,
    seeds: Option<SeedRange>,
    policy: Option<PolicySpec>,
    determinism: Option<bool>,
    replay: Option<PathBuf>,
    shrink_time_s: Option<f64>,
    faults: Option<Faults>,
    setup: BodySetup,
    quiet: bool,
    jobs: Option<usize>,
    sync_switch: Option<bool>,
}

/// What a passing check did.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// The test's name.
    pub name: String,
    /// Runs made (twice per seed in determinism mode).
    pub runs: u64,
    /// The digest of every seed's trace hash, in seed order.
    pub digest: u64,
    /// The replay file run instead of a sweep, if any.
    pub replayed: Option<PathBuf>,
}

/// Why a check failed.
#[derive(Debug)]
pub enum CheckFailure {
    /// A `FAULTLINE_*` variable is unusable.
    Config(EnvError),
    /// A seed failed an oracle (or a replayed file reproduced its failure).
    Failed(Box<Failed>),
    /// The replay file could not be read or does not match the code.
    Replay(String),
    /// The same seed gave two different traces.
    Nondeterministic(String),
}

/// A failing run, as reported.
#[derive(Debug)]
pub struct Failed {
    /// The run (seed, policy, configuration, outcome).
    pub run: SeedRun,
    /// Its replay file, if written.
    pub replay: Option<PathBuf>,
    /// The shrunk replay file, if shrinking worked.
    pub shrunk: Option<PathBuf>,
    /// The whole report, as printed.
    pub report: String,
}

impl Failed {
    /// The oracle that failed, as `Failure::oracle` names it.
    pub fn oracle(&self) -> String {
        self.run
            .outcome
            .failure
            .as_ref()
            .map_or_else(String::new, crate::sim::Failure::oracle)
    }
}

impl std::fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckFailure::Config(e) => write!(f, "faultline: bad environment: {e}"),
            CheckFailure::Failed(d) => f.write_str(&d.report),
            CheckFailure::Replay(m) | CheckFailure::Nondeterministic(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CheckFailure {}

/// Runs `body` over the default seeds (see [`Check`]) and panics with the
/// report of the first failure: `faultline::check(|world| async move {
/// .. })`.
#[track_caller]
pub fn check<F, Fut>(body: F)
where
    F: Fn(World) -> Fut + Sync,
    Fut: Future<Output = ()> + Send + 'static,
{
    Check::new().run(body);
}

impl Check {
    /// A check with every setting at its default.
    pub fn new() -> Check {
        Check::default()
    }

    /// The test's name in reports, replay files and the repro line.
    /// Default: the running test's name (`cargo test` names the thread).
    pub fn name(mut self, name: impl Into<String>) -> Check {
        self.name = Some(name.into());
        self
    }

    /// The package the test is in, for the repro line (`cargo test -p
    /// NAME`). Default: `CARGO_PKG_NAME`, which cargo sets for tests.
    pub fn crate_name(mut self, name: impl Into<String>) -> Check {
        self.crate_name = Some(name.into());
        self
    }

    /// Runs seeds `range` (default `0..100`).
    pub fn seeds(mut self, range: std::ops::Range<u64>) -> Check {
        let end = range.end.max(range.start.saturating_add(1));
        self.seeds = Some(SeedRange {
            start: range.start,
            end,
        });
        self
    }

    /// The schedule policy (default random). [`PolicySpec::pct`] makes a
    /// PCT policy of a given depth.
    pub fn policy(mut self, policy: PolicySpec) -> Check {
        self.policy = Some(policy);
        self
    }

    /// The same fault plan on every seed.
    pub fn faults(mut self, plan: FaultPlan) -> Check {
        self.faults = Some(Faults::Plan(plan));
        self
    }

    /// A swarm fault plan per seed over `kinds`, node faults within
    /// `horizon` of the start.
    pub fn swarm(mut self, kinds: &[FaultKind], horizon: Duration) -> Check {
        self.faults = Some(Faults::Swarm {
            kinds: kinds.to_vec(),
            horizon,
        });
        self
    }

    /// Fails a run (an OOM) when the memory meter crosses `bytes`.
    pub fn memory_limit(mut self, bytes: u64) -> Check {
        self.setup.base.mem_limit_bytes = Some(bytes);
        self
    }

    /// Polls a pending task again without a wake-up with this chance per
    /// million (spurious wake-ups; default 0).
    pub fn spurious_wakes(mut self, ppm: u32) -> Check {
        self.setup.base.spurious_wake_ppm = ppm;
        self
    }

    /// Blocking threads at most (default unlimited).
    pub fn threads_max(mut self, n: usize) -> Check {
        self.setup.base.threads_max = Some(n);
        self
    }

    /// Polls a run may make at most (default 10 M).
    pub fn steps_max(mut self, n: u64) -> Check {
        self.setup.base.steps_max = n;
        self
    }

    /// Virtual time a run may take at most (default 1 day).
    pub fn time_max(mut self, d: Duration) -> Check {
        self.setup.base.time_max_ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self
    }

    /// Virtual CPU time each poll costs (default 1 µs).
    pub fn poll_cost(mut self, d: Duration) -> Check {
        self.setup.base.poll_cost_ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self
    }

    /// A node that exists from the start of every run; `boot` spawns its
    /// tasks, at the start and after every restart. Nodes with
    /// `cfg.faulty` are struck by the fault plan's crashes, pauses and
    /// clock jumps. Find it in the body with [`World::node`].
    pub fn node(
        mut self,
        name: &str,
        cfg: NodeConfig,
        boot: impl Fn(SimHandle) + Send + Sync + 'static,
    ) -> Check {
        self.setup
            .nodes
            .push((name.to_string(), cfg, Some(crate::sync::DynArc::new(boot))));
        self
    }

    /// Sync-switch mode (default off; `FAULTLINE_SYNC_SWITCH=1`): the entry
    /// of the shim's `Mutex::with` (and so the primitives' non-async
    /// operations) is a switch point where another task may run, so two
    /// tasks' synchronous sections interleave as on worker threads. Finds
    /// races between sections with no `.await` between them, which the
    /// default mode cannot; costs more per poll (see BENCHMARKS.md).
    pub fn sync_switch(mut self, on: bool) -> Check {
        self.sync_switch = Some(on);
        self
    }

    /// Runs every seed twice and fails when their traces differ (default
    /// off; `FAULTLINE_CHECK_DETERMINISM=1`).
    pub fn check_determinism(mut self, on: bool) -> Check {
        self.determinism = Some(on);
        self
    }

    /// Replays this file strictly instead of sweeping seeds.
    pub fn replay(mut self, path: impl Into<PathBuf>) -> Check {
        self.replay = Some(path.into());
        self
    }

    /// Shrinks a failure for at most this long (default 10 s; zero: no
    /// shrinking).
    pub fn shrink_time(mut self, d: Duration) -> Check {
        self.shrink_time_s = Some(d.as_secs_f64());
        self
    }

    /// Seeds run at once, each thread with its own simulator (default:
    /// `FAULTLINE_JOBS`, else every core; the result is the same whatever
    /// the number). Determinism mode runs on one thread.
    pub fn jobs(mut self, n: usize) -> Check {
        self.jobs = Some(n.max(1));
        self
    }

    /// Prints nothing but failures.
    pub fn quiet(mut self) -> Check {
        self.quiet = true;
        self
    }

    /// Runs `body` and panics with the report of the first failure.
    ///
    /// # Panics
    /// When a seed fails (the report is the panic message), a replay does
    /// not match, determinism is broken or the environment is unusable.
    /// The panic names the caller's line (the test), not faultline's.
    #[track_caller]
    pub fn run<F, Fut>(self, body: F)
    where
        F: Fn(World) -> Fut + Sync,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if let Err(e) = self.try_run(body) {
            panic!("{e}");
        }
    }

    /// Runs `body`; returns what it did, or why it failed.
    ///
    /// # Errors
    /// [`CheckFailure`].
    pub fn try_run<F, Fut>(self, body: F) -> Result<CheckReport, CheckFailure>
    where
        F: Fn(World) -> Fut + Sync,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let plan = self.resolve().map_err(CheckFailure::Config)?;
        let mut setup = self.setup.clone();
        setup.base.sync_switch = plan.sync_switch;
        match self.faults.clone().unwrap_or(Faults::None) {
            Faults::None => {}
            Faults::Plan(p) => setup.base.faults = p,
            Faults::Swarm { kinds, horizon } => {
                let h = u64::try_from(horizon.as_nanos()).unwrap_or(u64::MAX);
                setup.swarm = Some((kinds, h));
            }
        }
        let target = BodyTarget::new(plan.name.clone(), setup, body);
        if !self.quiet {
            println!("{}", plan.describe());
        }
        match &plan.replay {
            Some(path) => replay_one(&target, &plan, path),
            None => {
                let plan = Plan {
                    policy: sweep::resolve_pct(&target, plan.policy),
                    ..plan
                };
                sweep_seeds(&target, &plan)
            }
        }
    }

    fn resolve(&self) -> Result<Plan, EnvError> {
        let thread = std::thread::current().name().map(str::to_string);
        let name = self
            .name
            .clone()
            .or(thread.filter(|n| n != "main"))
            .unwrap_or_else(|| "check".into());
        let env_seeds = env::seeds()?;
        let seeds_var = env_seeds.map_or(env::SEEDS, |(_, var)| var);
        let (seeds, seeds_from) = pick(self.seeds, env_seeds.map(|(r, _)| r), seeds_var, || {
            SeedRange {
                start: 0,
                end: SEEDS_DEFAULT,
            }
        });
        let (policy, policy_from) = pick(self.policy, env::policy()?, env::POLICY, || {
            PolicySpec::Random
        });
        let (determinism, _) = pick(
            self.determinism,
            env::check_determinism()?,
            env::CHECK_DETERMINISM,
            || false,
        );
        let (sync_switch, sync_switch_from) = pick(
            self.sync_switch,
            env::sync_switch()?,
            env::SYNC_SWITCH,
            || false,
        );
        let (shrink_time_s, _) = pick(
            self.shrink_time_s,
            env::shrink_time_s()?,
            env::SHRINK_TIME_S,
            || SHRINK_TIME_S_DEFAULT,
        );
        let crate_name = self
            .crate_name
            .clone()
            .or_else(|| std::env::var("CARGO_PKG_NAME").ok())
            .unwrap_or_else(|| "<your-crate>".into());
        Ok(Plan {
            name,
            crate_name,
            seeds,
            seeds_from,
            policy,
            policy_from,
            determinism,
            replay: self.replay.clone().or_else(env::replay),
            shrink_time_s,
            jobs: self.jobs.unwrap_or_else(sweep::jobs_default),
            sync_switch,
            sync_switch_from,
        })
    }
}

/// Code beats the environment, which beats the default; says which won.
fn pick<T>(
    code: Option<T>,
    from_env: Option<T>,
    var: &'static str,
    default: impl FnOnce() -> T,
) -> (T, &'static str) {
    match (code, from_env) {
        (Some(v), _) => (v, "code"),
        (None, Some(v)) => (v, var),
        (None, None) => (default(), "default"),
    }
}

/// The settings in force for one check.
struct Plan {
    name: String,
    crate_name: String,
    seeds: SeedRange,
    seeds_from: &'static str,
    policy: PolicySpec,
    policy_from: &'static str,
    determinism: bool,
    replay: Option<PathBuf>,
    shrink_time_s: f64,
    jobs: usize,
    sync_switch: bool,
    sync_switch_from: &'static str,
}

impl Plan {
    fn describe(&self) -> String {
        match &self.replay {
            Some(p) => format!("faultline: {}: replaying {}", self.name, p.display()),
            None => format!(
                "faultline: {}: seeds {} ({}), policy {} ({}){}{}",
                self.name,
                self.seeds,
                self.seeds_from,
                self.policy,
                self.policy_from,
                if self.sync_switch {
                    ", sync-switch mode"
                } else {
                    ""
                },
                if self.determinism {
                    ", every seed twice (determinism check)"
                } else {
                    ""
                }
            ),
        }
    }

    /// `FAULTLINE_SEED=N ` when that variable would pin the seed; empty
    /// when the test sets its seeds in code (code beats the environment,
    /// so the variable would be ignored).
    fn seed_var(&self, seed: u64) -> String {
        if self.seeds_from == "code" {
            String::new()
        } else {
            format!("{}={seed} ", env::SEED)
        }
    }

    /// The repro lines of a failure whose replay files are `files`: the
    /// replay files, then the seed (or, when the seeds are set in code, the
    /// same sweep again: it fails the same way).
    fn repro(&self, files: &[&Path], run: &SeedRun) -> Vec<String> {
        let test = format!(
            "cargo test -p {} {} -- --exact --include-ignored",
            self.crate_name, self.name
        );
        let mut lines: Vec<String> = files
            .iter()
            .map(|p| format!("FAULTLINE_REPLAY={} {test}", p.display()))
            .collect();
        let policy = match run.policy {
            PolicySpec::Random => String::new(),
            PolicySpec::Pct { depth, .. } => format!("FAULTLINE_POLICY=pct:{depth} "),
            PolicySpec::Fuzz => return lines,
        };
        let mode = if self.sync_switch && self.sync_switch_from != "code" {
            format!("{}=1 ", env::SYNC_SWITCH)
        } else {
            String::new()
        };
        lines.push(format!("{}{mode}{policy}{test}", self.seed_var(run.seed)));
        lines
    }
}

fn sweep_seeds(target: &(dyn Target + Sync), plan: &Plan) -> Result<CheckReport, CheckFailure> {
    if !plan.determinism && plan.jobs > 1 {
        let spec = SweepSpec {
            fail_fast: true,
            jobs: plan.jobs,
            ..SweepSpec::all(plan.seeds, plan.policy)
        };
        let r = sweep::sweep(target, &spec, |_, _| {});
        if let Some(run) = r.first_failure {
            let failed = report_failure(target, plan, run);
            return Err(CheckFailure::Failed(Box::new(failed)));
        }
        return Ok(CheckReport {
            name: plan.name.clone(),
            runs: r.runs,
            digest: r.digest,
            replayed: None,
        });
    }
    let mut hashes = Vec::new();
    let mut runs = 0u64;
    for seed in plan.seeds.start..plan.seeds.end {
        let run = run_seed(target, seed, plan.policy);
        runs += 1;
        if plan.determinism {
            let again = run_seed(target, seed, plan.policy);
            runs += 1;
            if again.outcome.trace_hash != run.outcome.trace_hash {
                return Err(CheckFailure::Nondeterministic(nondeterminism(
                    target, plan, &run,
                )));
            }
        }
        if run.outcome.failure.is_some() {
            return Err(CheckFailure::Failed(Box::new(report_failure(
                target, plan, run,
            ))));
        }
        hashes.push(run.outcome.trace_hash);
    }
    Ok(CheckReport {
        name: plan.name.clone(),
        runs,
        digest: digest(hashes),
        replayed: None,
    })
}

/// The report of a seed whose two runs differ: their hashes and the first
/// event where their logs part.
fn nondeterminism(target: &dyn Target, plan: &Plan, run: &SeedRun) -> String {
    let logged = || {
        let mut cfg = target.config(run.seed, run.policy);
        cfg.keep_log = true;
        target.run(cfg)
    };
    let (a, b) = (logged(), logged());
    let first = a
        .log
        .iter()
        .zip(&b.log)
        .position(|(x, y)| x != y)
        .or_else(|| (a.log.len() != b.log.len()).then(|| a.log.len().min(b.log.len())));
    let detail = match first {
        Some(i) => format!(
            "first difference at event {i}:\n    run 1: {}\n    run 2: {}",
            a.log.get(i).map_or("(end of log)", String::as_str),
            b.log.get(i).map_or("(end of log)", String::as_str)
        ),
        None => "the logs of two more runs agree: the difference comes and goes".into(),
    };
    format!(
        "NONDETERMINISTIC: {}, seed {} ({}): two runs gave trace hashes {:#018x} and {:#018x}; {detail}\n  \
         look for HashMap/HashSet iteration, wall-clock time, thread spawns or randomness outside the world\n  \
         rerun: {}FAULTLINE_CHECK_DETERMINISM=1 cargo test -p {} {} -- --exact --include-ignored",
        plan.name,
        run.seed,
        run.policy,
        a.trace_hash,
        b.trace_hash,
        plan.seed_var(run.seed),
        plan.crate_name,
        plan.name
    )
}

fn file_slug(name: &str) -> String {
    name.replace("::", "-")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes the failure's replay file (and its shrunk twin), and builds the
/// report.
fn report_failure(target: &dyn Target, plan: &Plan, run: SeedRun) -> Failed {
    let dir = env::replay_dir();
    let suffix = match run.policy {
        PolicySpec::Pct { depth, .. } => format!("-pct{depth}"),
        _ => String::new(),
    };
    let path = dir.join(format!(
        "{}-{}{suffix}.json",
        file_slug(&plan.name),
        run.seed
    ));
    let file = replay_file_for(target, &run);
    let written = file.write(&path).map_err(|e| e.to_string());
    let shrunk = shrink(target, plan, &file, &path);
    let shown = shrunk.as_ref().map_or(&file, |(f, _)| f);
    let shown_run = rerun::replay(target, shown, true);
    // The tail is of the shrunk run: say so, and how it failed (the same
    // oracle, perhaps another message than the seed's run above).
    let tail_of = match (&shrunk, &shown_run.failure) {
        (Some(_), Some(f)) => format!(" of the shrunk run ({f})"),
        _ => String::new(),
    };
    let mut files: Vec<&Path> = Vec::new();
    if let Some((_, p)) = &shrunk {
        files.push(p);
    }
    if written.is_ok() {
        files.push(&path);
    }
    let replay: Written<'_> = match &written {
        Ok(()) => Ok(&path),
        Err(e) => Err((&path, e.clone())),
    };
    let mut report = failure_report_labelled(
        &target.id(),
        &run,
        replay,
        &tail(&shown_run.log, TRACE_TAIL_LINES),
        &tail_of,
        &plan.repro(&files, &run),
    );
    if let Some((f, p)) = &shrunk {
        let what = f.shrunk.as_ref().map_or_else(String::new, |s| s.summary());
        report.push_str(&format!("  shrunk: {} ({what})\n", p.display()));
    }
    Failed {
        replay: written.is_ok().then(|| path.clone()),
        shrunk: shrunk.map(|(_, p)| p),
        run,
        report,
    }
}

/// Shrinks `file` within the plan's time; writes it beside `path` as
/// `.min.json`. `None` when shrinking is off, fails or writes nothing.
fn shrink(
    target: &dyn Target,
    plan: &Plan,
    file: &ReplayFile,
    path: &Path,
) -> Option<(ReplayFile, PathBuf)> {
    if plan.shrink_time_s <= 0.0 {
        return None;
    }
    let limits = ShrinkLimits {
        time_s_max: plan.shrink_time_s,
        ..ShrinkLimits::default()
    };
    let shrunk = rerun::shrink_file(target, file, limits).ok()?;
    let out = path.with_extension("min.json");
    shrunk.write(&out).ok()?;
    Some((shrunk, out))
}

/// Replays `path` strictly: a reproduced failure fails the check (with its
/// report), a reproduced pass passes, a mismatch is an error.
fn replay_one(target: &dyn Target, plan: &Plan, path: &Path) -> Result<CheckReport, CheckFailure> {
    let file =
        read_replay(path).map_err(|e| CheckFailure::Replay(format!("{}: {e}", path.display())))?;
    let id = target.id();
    if file.scenario != id.name {
        println!(
            "faultline: note: {} was recorded by '{}', replayed in '{}'",
            path.display(),
            file.scenario,
            id.name
        );
    }
    let out = rerun::replay(target, &file, true);
    let verdict = rerun::compare(&file, &out);
    if verdict != Verdict::Reproduced {
        return Err(CheckFailure::Replay(format!(
            "faultline: {}: {verdict}\n  (a replay runs only on the code that recorded it; rerun: {}cargo test -p {} {} -- --exact --include-ignored)",
            path.display(),
            plan.seed_var(file.seed),
            plan.crate_name,
            plan.name
        )));
    }
    println!(
        "faultline: {}: {verdict} (trace hash {:#018x})",
        path.display(),
        out.trace_hash
    );
    let run = SeedRun {
        seed: file.seed,
        policy: file.policy,
        cfg: rerun::replay_config(target, &file, Vec::new(), true),
        outcome: out,
    };
    if run.outcome.failure.is_some() {
        let report = failure_report(
            &id,
            &run,
            Ok(path),
            &tail(&run.outcome.log, TRACE_TAIL_LINES),
            &plan.repro(&[path], &run),
        );
        return Err(CheckFailure::Failed(Box::new(Failed {
            run,
            replay: Some(path.to_path_buf()),
            shrunk: None,
            report,
        })));
    }
    Ok(CheckReport {
        name: plan.name.clone(),
        runs: 1,
        digest: digest([run.outcome.trace_hash]),
        replayed: Some(path.to_path_buf()),
    })
}
