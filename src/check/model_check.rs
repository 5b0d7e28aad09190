//! [`Check`] and [`check`] under a model checker: the simulator's test
//! entry point, with the same builder calls, running the same body under
//! shuttle (`--cfg faultline_shuttle`) or loom (`--cfg faultline_loom`).
//!
//! * **shuttle**: the seeds' count is the iteration count, the policy picks
//!   shuttle's `RandomScheduler` or `PctScheduler` (PCT's depth is the
//!   policy's), and one seed drives every iteration: `FAULTLINE_SEED` when
//!   set, otherwise a fresh one, printed. A failure prints shuttle's failing
//!   schedule and a repro line with that seed.
//! * **loom**: `loom::model` explores the body's interleavings exhaustively
//!   (seeds and policy mean nothing to it), within a preemption bound
//!   (`LOOM_MAX_PREEMPTIONS`, default [`LOOM_PREEMPTIONS_DEFAULT`]) and
//!   `steps_max` branches; a body that starts more than
//!   [`LOOM_TASKS_MAX`](super::model_world::LOOM_TASKS_MAX) tasks, or whose
//!   state explodes past the branch bound, fails with a message that says
//!   it does not fit loom.
//!
//! Builder calls that need the simulator are absent (`faults`, `node`,
//! `replay`, `try_run`) or, where a test states an oracle the checker cannot
//! keep, fail the check with a message naming the checker (`memory_limit`,
//! `swarm`). The rest are accepted and say here what they mean.

use super::model_world::{begin_execution, World, CHECKER};
use crate::probe::FaultKind;
use std::future::Future;
use std::time::Duration;

/// Iterations (shuttle) when neither code nor `FAULTLINE_SEEDS` says.
pub const SEEDS_DEFAULT: u64 = 100;

/// PCT's bug depth when none is given.
pub const PCT_DEPTH_DEFAULT: u32 = 3;

/// loom's preemption bound when `LOOM_MAX_PREEMPTIONS` is not set.
pub const LOOM_PREEMPTIONS_DEFAULT: usize = 3;

/// loom's branch bound per execution when `steps_max` is not set.
pub const LOOM_BRANCHES_MAX_DEFAULT: usize = 10_000;

/// The schedule policy: shuttle's random or PCT scheduler (loom ignores
/// it: it explores every schedule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicySpec {
    /// shuttle's `RandomScheduler`.
    Random,
    /// shuttle's `PctScheduler` of depth `depth` (shuttle sizes its change
    /// points itself; `expected_steps` is the simulator's and ignored).
    Pct {
        /// Bug depth, at least 1.
        depth: u32,
        /// Ignored here.
        expected_steps: u64,
    },
}

impl PolicySpec {
    /// PCT of bug depth `depth`.
    pub fn pct(depth: u32) -> PolicySpec {
        PolicySpec::Pct {
            depth,
            expected_steps: 0,
        }
    }
}

impl std::fmt::Display for PolicySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicySpec::Random => f.write_str("random"),
            PolicySpec::Pct { depth, .. } => write!(f, "pct depth {depth}"),
        }
    }
}

/// A test body checked by this build's model checker. Same builder as the
/// simulator's `Check`; see the module docs for what each setting means
/// here.
#[derive(Clone, Debug, Default)]
pub struct Check {
    name: Option<String>,
    crate_name: Option<String>,
    seeds: Option<std::ops::Range<u64>>,
    policy: Option<PolicySpec>,
    steps_max: Option<u64>,
    unmodelled: Vec<&'static str>,
    quiet: bool,
}

/// Runs `body` under this build's model checker with the default settings
/// and panics with the failure.
#[track_caller]
pub fn check<F, Fut>(body: F)
where
    F: Fn(World) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Check::new().run(body);
}

impl Check {
    /// A check with every setting at its default.
    pub fn new() -> Check {
        Check::default()
    }

    /// The test's name in the report. Default: the running test's name.
    pub fn name(mut self, name: impl Into<String>) -> Check {
        self.name = Some(name.into());
        self
    }

    /// The package, for the repro line. Default: `CARGO_PKG_NAME`.
    pub fn crate_name(mut self, name: impl Into<String>) -> Check {
        self.crate_name = Some(name.into());
        self
    }

    /// shuttle: runs `range.len()` iterations (loom: ignored).
    pub fn seeds(mut self, range: std::ops::Range<u64>) -> Check {
        self.seeds = Some(range);
        self
    }

    /// shuttle: the scheduler (loom: ignored).
    pub fn policy(mut self, policy: PolicySpec) -> Check {
        self.policy = Some(policy);
        self
    }

    /// Not modelled: the check fails, naming the checker (no fault plan).
    pub fn swarm(mut self, _kinds: &[FaultKind], _horizon: Duration) -> Check {
        self.unmodelled.push("swarm (fault plans)");
        self
    }

    /// Not modelled: the check fails, naming the checker (no memory meter,
    /// so an OOM oracle could never fire).
    pub fn memory_limit(mut self, _bytes: u64) -> Check {
        self.unmodelled.push("memory_limit (the memory meter)");
        self
    }

    /// Ignored: shuttle polls futures spuriously by itself; loom does not.
    pub fn spurious_wakes(self, _ppm: u32) -> Check {
        self
    }

    /// Ignored (the checker's threads are its own).
    pub fn threads_max(self, _n: usize) -> Check {
        self
    }

    /// shuttle: fails an execution after this many steps; loom: its
    /// branch bound.
    pub fn steps_max(mut self, n: u64) -> Check {
        self.steps_max = Some(n);
        self
    }

    /// Ignored (no virtual time).
    pub fn time_max(self, _d: Duration) -> Check {
        self
    }

    /// Ignored (a failure is shuttle's schedule or loom's trace, unshrunk).
    pub fn shrink_time(self, _d: Duration) -> Check {
        self
    }

    /// Ignored (both checkers are deterministic by construction).
    pub fn check_determinism(self, _on: bool) -> Check {
        self
    }

    /// Ignored: under shuttle and loom every synchronous section (each
    /// operation of the shim's `Mutex`, atomics, ...) is a switch point
    /// already, which is what the simulator's sync-switch mode adds.
    pub fn sync_switch(self, _on: bool) -> Check {
        self
    }

    /// Ignored (one thread).
    pub fn jobs(self, _n: usize) -> Check {
        self
    }

    /// Prints nothing but failures.
    pub fn quiet(mut self) -> Check {
        self.quiet = true;
        self
    }

    /// Runs `body` under the checker; panics with the failure.
    ///
    /// # Panics
    /// When an execution fails (the body's panic or `World::fail`, with a
    /// repro line), when the body needs what the checker cannot model, or
    /// when the environment is unusable.
    #[track_caller]
    pub fn run<F, Fut>(self, body: F)
    where
        F: Fn(World) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let plan = self.resolve().unwrap_or_else(|e| panic!("faultline: {e}"));
        if let Some(what) = self.unmodelled.first() {
            panic!(
                "faultline: {}: {what} is not modelled under {CHECKER}: run this test in the \
                 simulator (a build without --cfg faultline_{CHECKER})",
                plan.name
            );
        }
        let iters = crate::sync::DynArc::new(crate::sync::process_atomic::AtomicU64::new(0));
        let counted = crate::sync::DynArc::clone(&iters);
        let seed = plan.seed;
        let model = move || {
            counted.fetch_add(1, crate::sync::process_atomic::Ordering::Relaxed);
            begin_execution(seed);
            let fut = body(World::new());
            crate::sync::block_on(fut);
        };
        if !self.quiet {
            println!("{}", plan.describe());
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| plan.explore(model)));
        let n = iters.load(crate::sync::process_atomic::Ordering::Relaxed);
        match r {
            Ok(()) => {
                if !self.quiet {
                    println!(
                        "faultline: {}: {CHECKER} held over {n} executions",
                        plan.name
                    );
                }
            }
            Err(p) => panic!("{}", plan.failure(n, &panic_message(p.as_ref()))),
        }
    }

    fn resolve(&self) -> Result<Plan, String> {
        let thread = std::thread::current().name().map(str::to_string);
        let name = self
            .name
            .clone()
            .or(thread.filter(|n| n != "main"))
            .unwrap_or_else(|| "check".into());
        let iterations = match (self.seeds.clone(), env_seeds()?) {
            (Some(r), _) | (None, Some(r)) => r.end.saturating_sub(r.start).max(1),
            (None, None) => SEEDS_DEFAULT,
        };
        let policy = match (self.policy, env_policy()?) {
            (Some(p), _) | (None, Some(p)) => p,
            (None, None) => PolicySpec::Random,
        };
        let (seed, seed_from_env) = env_seed()?;
        let crate_name = self
            .crate_name
            .clone()
            .or_else(|| std::env::var("CARGO_PKG_NAME").ok())
            .unwrap_or_else(|| "<your-crate>".into());
        Ok(Plan {
            name,
            crate_name,
            iterations,
            policy,
            seed,
            seed_from_env,
            steps_max: self.steps_max,
        })
    }
}

/// The settings in force for one model check.
struct Plan {
    name: String,
    crate_name: String,
    iterations: u64,
    policy: PolicySpec,
    seed: u64,
    seed_from_env: bool,
    steps_max: Option<u64>,
}

impl Plan {
    fn describe(&self) -> String {
        if CHECKER == "loom" {
            return format!(
                "faultline: {}: loom, every interleaving within preemption bound {}, seed {} \
                 (draws)",
                self.name,
                loom_preemptions(),
                self.seed
            );
        }
        format!(
            "faultline: {}: shuttle, {} iterations, policy {}, seed {} ({})",
            self.name,
            self.iterations,
            self.policy,
            self.seed,
            if self.seed_from_env {
                "FAULTLINE_SEED"
            } else {
                "drawn: rerun with FAULTLINE_SEED"
            }
        )
    }

    fn failure(&self, executions: u64, msg: &str) -> String {
        let how = if CHECKER == "loom" {
            format!("execution {executions}")
        } else {
            format!(
                "iteration {executions} of {}, policy {}",
                self.iterations, self.policy
            )
        };
        let schedule = if CHECKER == "loom" {
            "LOOM_LOG=trace LOOM_LOCATION=1 print the failing interleaving"
        } else {
            "shuttle printed the failing schedule above: shuttle::replay reproduces it"
        };
        format!(
            "faultline: {}: FAILED under {CHECKER} ({how}, seed {}): {msg}\n  \
             ({schedule})\n  \
             repro: FAULTLINE_SEED={} RUSTFLAGS=\"--cfg faultline_{CHECKER}\" cargo test --release \
             -p {} {} -- --exact",
            self.name, self.seed, self.seed, self.crate_name, self.name
        )
    }

    #[cfg(all(faultline_shuttle, not(faultline_loom)))]
    fn explore(&self, model: impl Fn() + Send + Sync + 'static) {
        let iterations = usize::try_from(self.iterations).unwrap_or(usize::MAX);
        let mut config = shuttle::Config::new();
        if let Some(n) = self.steps_max {
            config.max_steps =
                shuttle::MaxSteps::FailAfter(usize::try_from(n).unwrap_or(usize::MAX));
        }
        match self.policy {
            PolicySpec::Random => {
                let s = shuttle::scheduler::RandomScheduler::new_from_seed(self.seed, iterations);
                shuttle::Runner::new(s, config).run(model);
            }
            PolicySpec::Pct { depth, .. } => {
                let depth = usize::try_from(depth.max(1)).unwrap_or(1);
                let s =
                    shuttle::scheduler::PctScheduler::new_from_seed(self.seed, depth, iterations);
                shuttle::Runner::new(s, config).run(model);
            }
        }
    }

    #[cfg(faultline_loom)]
    fn explore(&self, model: impl Fn() + Send + Sync + 'static) {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(loom_preemptions());
        b.max_branches = self.steps_max.map_or(LOOM_BRANCHES_MAX_DEFAULT, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        });
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.check(model)));
        if let Err(p) = r {
            let msg = panic_message(p.as_ref());
            if msg.contains("maximum number of branches") {
                panic!(
                    "this body does not fit loom: an execution took more than {} branches \
                     (loom's state explosion; raise steps_max, lower LOOM_MAX_PREEMPTIONS, or \
                     check it under the simulator or shuttle): {msg}",
                    b.max_branches
                );
            }
            std::panic::resume_unwind(p);
        }
    }
}

/// loom's preemption bound: `LOOM_MAX_PREEMPTIONS`, else the default.
fn loom_preemptions() -> usize {
    std::env::var("LOOM_MAX_PREEMPTIONS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(LOOM_PREEMPTIONS_DEFAULT)
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_string()))
        .unwrap_or_else(|| "(a panic without a message)".into())
}

fn env_var(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// `FAULTLINE_SEEDS=A..B`: its length is shuttle's iteration count.
fn env_seeds() -> Result<Option<std::ops::Range<u64>>, String> {
    let Some(v) = env_var("FAULTLINE_SEEDS") else {
        return Ok(None);
    };
    v.split_once("..")
        .and_then(|(a, b)| Some(a.trim().parse().ok()?..b.trim().parse().ok()?))
        .filter(|r: &std::ops::Range<u64>| r.start < r.end)
        .map(Some)
        .ok_or_else(|| format!("FAULTLINE_SEEDS={v:?}: want A..B with A < B"))
}

/// `FAULTLINE_POLICY=random | pct | pct:D`.
fn env_policy() -> Result<Option<PolicySpec>, String> {
    let Some(v) = env_var("FAULTLINE_POLICY") else {
        return Ok(None);
    };
    match v.trim() {
        "random" => Ok(Some(PolicySpec::Random)),
        "pct" => Ok(Some(PolicySpec::pct(PCT_DEPTH_DEFAULT))),
        t => t
            .strip_prefix("pct:")
            .and_then(|d| d.parse::<u32>().ok())
            .filter(|&d| d >= 1)
            .map(|d| Some(PolicySpec::pct(d)))
            .ok_or_else(|| format!("FAULTLINE_POLICY={v:?}: want random, pct or pct:D")),
    }
}

/// The seed of every iteration: `FAULTLINE_SEED`, or a fresh one (printed
/// by the plan), and whether it came from the environment.
fn env_seed() -> Result<(u64, bool), String> {
    if let Some(v) = env_var("FAULTLINE_SEED") {
        let seed = v
            .trim()
            .parse()
            .map_err(|_| format!("FAULTLINE_SEED={v:?} is not a u64"))?;
        return Ok((seed, true));
    }
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now(); // allow-world: a fresh model-check seed, printed for the repro
    let ns = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    Ok((ns ^ (u64::from(std::process::id()) << 32), false))
}
