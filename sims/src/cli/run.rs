//! `faultline run`: one seed, or a sweep (one shard of it), with a
//! progress bar, every failing seed listed, and `--json` for CI.

use super::{exit, find, plural, say, shard, CmdResult, EXIT_FAILED, EXIT_OK};
use crate::runner::{self, SeedRun, SweepReport, SweepSpec};
use crate::scenario::Scenario;
use clap::{Args, ValueEnum};
use faultline::check::env as fl_env;
use faultline::check::policy::PCT_DEPTH_DEFAULT;
use faultline::check::seeds::{SeedRange, Shard};
use faultline::check::PolicySpec;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Failing seeds listed on a terminal at most (`--json` lists them all).
const FAILING_SEEDS_SHOWN_MAX: usize = 20;

#[derive(Args)]
pub(super) struct RunArgs {
    /// The scenario (see `faultline list`).
    scenario: String,
    /// Run this one seed.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Run seeds A..B (B excluded), e.g. 0..1000.
    #[arg(long, value_name = "A..B")]
    seeds: Option<SeedRange>,
    /// The schedule policy (default: FAULTLINE_POLICY, else random).
    #[arg(long, value_enum)]
    policy: Option<PolicyArg>,
    /// PCT's bug depth (with --policy pct): the ordering constraints the
    /// bug needs (1: one task merely runs first; 2: a check, another
    /// task's write, the use; 3: two switches back and forth). Unknown:
    /// try 1, 2, 3.
    #[arg(long, default_value_t = PCT_DEPTH_DEFAULT, value_parser = clap::value_parser!(u32).range(1..))]
    pct_depth: u32,
    /// PCT's step count k (with --policy pct); default: measured for the
    /// variant (the most decisions of seeds 0..3 run without change
    /// points), the same for every seed.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pct_steps: Option<u64>,
    /// The variant: "fixed" (the default) or a pre-fix one.
    #[arg(long, default_value = crate::FIXED)]
    variant: String,
    /// Run only shard K of N of the seeds (seed s when s % N == K-1).
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// Stop at the first failing seed.
    #[arg(long)]
    fail_fast: bool,
    /// Sync-switch mode: the entry of the shim's `Mutex::with` is a switch
    /// point, so synchronous sections interleave as on worker threads
    /// (default: FAULTLINE_SYNC_SWITCH, else off). Replay files keep the
    /// mode.
    #[arg(long)]
    sync_switch: bool,
    /// Seeds run at once, each thread with its own simulator (default:
    /// FAULTLINE_JOBS, else every core); the results and digest are the
    /// same whatever the number.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    jobs: Option<u64>,
    /// Where replay files go (default: FAULTLINE_REPLAY_DIR, else
    /// <target>/faultline/replays).
    #[arg(long, value_name = "DIR")]
    replay_dir: Option<PathBuf>,
    /// Print one JSON document on stdout (runs, failures, every failing
    /// seed, digest, every seed's trace hash, the first failure and its
    /// replay file) instead of text.
    #[arg(long)]
    json: bool,
    /// Print only failures and the summary line.
    #[arg(long)]
    quiet: bool,
    /// With one seed: write each time series the run recorded (memory, lag,
    /// threads, ...) as DIR/<scenario>-<variant>-<seed>-<series>.csv.
    #[arg(long, value_name = "DIR", conflicts_with = "seeds")]
    csv: Option<PathBuf>,
    /// Replay this load file instead of the scenario's own load
    /// (subtree-oom; see `faultline load --help`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["csv", "shard", "json"])]
    load: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum PolicyArg {
    /// Uniformly random among runnable tasks.
    Random,
    /// Probabilistic concurrency testing (priorities, change points).
    Pct,
}

/// What `run --json` prints: one shard's sweep (or one seed), with every
/// seed's trace hash so `faultline merge` can rebuild the whole sweep's
/// digest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunJson {
    /// The scenario.
    pub scenario: String,
    /// The variant.
    pub variant: String,
    /// The policy.
    pub policy: PolicySpec,
    /// The whole sweep's seeds.
    pub range: String,
    /// This shard, `K/N`.
    pub shard: String,
    /// Runs made.
    pub runs: u64,
    /// Runs that failed.
    pub failures: u64,
    /// Every failing seed, in order.
    pub failing_seeds: Vec<u64>,
    /// The digest of this shard's trace hashes, `0x` and 16 hex digits.
    pub digest: String,
    /// The first failure.
    pub first_failure: Option<FailureJson>,
    /// `(seed, trace hash)` of every run, in seed order.
    pub hashes: Vec<(u64, String)>,
    /// The commit of the build.
    pub commit: String,
}

/// A failure in `--json` output.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FailureJson {
    /// Its seed.
    pub seed: u64,
    /// The oracle that failed.
    pub oracle: String,
    /// What it said.
    pub message: String,
    /// Its replay file, when written.
    pub replay: Option<String>,
    /// Why the replay file could not be written.
    pub replay_error: Option<String>,
}

/// Where a failure's replay file went (or the path meant and why not), and
/// the failure's report.
type Reported = (Result<PathBuf, (PathBuf, String)>, String);

pub(super) fn hex(v: u64) -> String {
    format!("{v:#018x}")
}

pub(super) fn cmd(scenarios: &[Box<dyn Scenario>], args: &RunArgs) -> CmdResult {
    let scenario = find(scenarios, &args.scenario)?;
    scenario
        .check_variant(&args.variant)
        .map_err(|e| e.to_string())?;
    if let Some(dir) = &args.replay_dir {
        std::env::set_var(fl_env::REPLAY_DIR, dir);
    }
    if args.sync_switch {
        // Read by `runner::config_for` for every seed of this process.
        std::env::set_var(fl_env::SYNC_SWITCH, "1");
    }
    fl_env::sync_switch().map_err(|e| e.to_string())?;
    let (range, from) = seeds(args)?;
    let policy = policy(scenario, args)?;
    if let Some(file) = &args.load {
        return super::load::cmd_run_load(
            scenarios,
            &args.scenario,
            &args.variant,
            range,
            policy,
            file,
        );
    }
    let shard = shard::resolve(args.shard)?;
    if let (Some((s, src)), 1) = (&shard, range.len()) {
        if !s.holds(range.start) {
            return Err(format!(
                "seed {} is not in shard {}/{} ({src}): shard K of N runs seeds s with s % N == K-1",
                range.start, s.index, s.count
            ));
        }
    }
    if !args.json && !args.quiet && from != "flag" {
        eprintln!("seeds {range} from {from}");
    }
    if range.len() == 1 && args.shard.is_none() && !args.json {
        return one_seed(scenario, args, range.start, policy);
    }
    let spec = SweepSpec {
        scenario,
        variant: &args.variant,
        policy,
        range,
        shard: shard.as_ref().map_or(Shard::ALL, |s| s.0),
        fail_fast: args.fail_fast,
        time_budget_s: None,
        runs_min: 1,
        bug: None,
        keep_hashes: args.json,
        jobs: args
            .jobs
            .map_or_else(faultline::check::sweep::jobs_default, |n| n as usize),
        sync_switch: None,
    };
    let report = sweep_with_bar(&spec, args.json || args.quiet).map_err(|e| e.to_string())?;
    finish_sweep(scenario, args, &spec, &report)
}

/// The seeds: a flag beats the environment; says where they came from.
fn seeds(args: &RunArgs) -> Result<(SeedRange, String), String> {
    match (args.seed, args.seeds) {
        (Some(seed), _) => Ok((SeedRange::single(seed), "flag".into())),
        (None, Some(range)) => Ok((range, "flag".into())),
        (None, None) => match fl_env::seeds().map_err(|e| e.to_string())? {
            Some((range, var)) => Ok((range, var.to_string())),
            None => Err(
                "run needs --seed N or --seeds A..B (or FAULTLINE_SEED / FAULTLINE_SEEDS)".into(),
            ),
        },
    }
}

/// The policy: `--policy` beats `FAULTLINE_POLICY`, which beats random.
fn policy(scenario: &dyn Scenario, args: &RunArgs) -> Result<PolicySpec, String> {
    let depth = match args.policy {
        Some(PolicyArg::Pct) => Some(args.pct_depth),
        Some(PolicyArg::Random) => None,
        None => match fl_env::policy().map_err(|e| e.to_string())? {
            Some(PolicySpec::Pct { depth, .. }) => Some(depth),
            _ => None,
        },
    };
    Ok(
        match (runner::policy_for(scenario, depth), args.pct_steps) {
            (PolicySpec::Pct { depth, .. }, Some(k)) => PolicySpec::Pct {
                depth,
                expected_steps: k,
            },
            (policy, _) => policy,
        },
    )
}

fn one_seed(scenario: &dyn Scenario, args: &RunArgs, seed: u64, policy: PolicySpec) -> CmdResult {
    let run = runner::run_seed(scenario, &args.variant, seed, policy).map_err(|e| e.to_string())?;
    let code = if run.outcome.passed() {
        if !args.quiet {
            say!("{}", passed_line(scenario.name(), &args.variant, &run));
        }
        exit(EXIT_OK)
    } else {
        report_failure(scenario, &args.variant, &run).0
    };
    if !args.quiet {
        print_metrics(&run);
    }
    if let Some(dir) = &args.csv {
        write_csvs(dir, scenario.name(), &args.variant, &run)?;
    }
    Ok(code)
}

fn finish_sweep(
    scenario: &dyn Scenario,
    args: &RunArgs,
    spec: &SweepSpec<'_>,
    report: &SweepReport,
) -> CmdResult {
    let written = report
        .first_failure
        .as_ref()
        .map(|run| report_failure_quietly(scenario, &args.variant, run));
    if args.json {
        let json = run_json(spec, report, written.as_ref());
        say!(
            "{}",
            serde_json::to_string(&json).map_err(|e| e.to_string())?
        );
    } else {
        say!("{}", summary_line(spec, report));
        if !report.failing_seeds.is_empty() {
            let shown: Vec<String> = report
                .failing_seeds
                .iter()
                .take(FAILING_SEEDS_SHOWN_MAX)
                .map(ToString::to_string)
                .collect();
            let more = report
                .failing_seeds
                .len()
                .saturating_sub(FAILING_SEEDS_SHOWN_MAX);
            let tail = if more > 0 {
                format!(" ... and {more} more (--json lists them all)")
            } else {
                String::new()
            };
            say!("failing seeds: {}{tail}", shown.join(" "));
        }
        if let Some((_, text)) = &written {
            say!("{text}");
        }
    }
    Ok(exit(if report.failures > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    }))
}

fn run_json(spec: &SweepSpec<'_>, report: &SweepReport, written: Option<&Reported>) -> RunJson {
    let first_failure = report.first_failure.as_ref().map(|run| {
        let f = run.outcome.failure.as_ref();
        let (replay, replay_error) = match written.map(|w| &w.0) {
            Some(Ok(p)) => (Some(p.display().to_string()), None),
            Some(Err((_, e))) => (None, Some(e.clone())),
            None => (None, None),
        };
        FailureJson {
            seed: run.seed,
            oracle: f.map_or_else(String::new, faultline::sim::Failure::oracle),
            message: f.map_or_else(String::new, ToString::to_string),
            replay,
            replay_error,
        }
    });
    RunJson {
        scenario: spec.scenario.name().to_string(),
        variant: spec.variant.to_string(),
        policy: spec.policy,
        range: spec.range.to_string(),
        shard: format!("{}/{}", spec.shard.index, spec.shard.count),
        runs: report.runs,
        failures: report.failures,
        failing_seeds: report.failing_seeds.clone(),
        digest: hex(report.digest),
        first_failure,
        hashes: report.hashes.iter().map(|&(s, h)| (s, hex(h))).collect(),
        commit: runner::COMMIT.to_string(),
    }
}

/// Sweeps with a progress bar on stderr (drawn only on a terminal).
fn sweep_with_bar(spec: &SweepSpec<'_>, hidden: bool) -> Result<SweepReport, crate::ScenarioError> {
    let bar = if hidden {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(spec.shard.count_in(spec.range))
    };
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {pos}/{len} seeds [{elapsed_precise}, eta {eta}] {msg}",
    ) {
        bar.set_style(style);
    }
    let mut shown = 0;
    let report = runner::sweep(spec, |runs, failures| {
        bar.set_position(runs);
        if failures != shown {
            shown = failures;
            bar.set_message(format!("{failures} failed"));
        }
    });
    bar.finish_and_clear();
    report
}

/// The run's built-in meters and the scenario's own metrics, one per line.
fn print_metrics(run: &SeedRun) {
    let out = &run.outcome;
    say!("  mem_peak_bytes = {}", out.mem_peak_bytes);
    say!("  blocking_threads_peak = {}", out.threads_peak);
    for (name, v) in &out.metrics.values {
        say!("  {name} = {v}");
    }
    for (name, n) in &out.metrics.dropped {
        say!("  ({name}: {n} samples dropped past the series cap)");
    }
}

/// Writes every series of `run` (the built-in memory and thread series
/// too) as CSV files under `dir`.
fn write_csvs(dir: &Path, scenario: &str, variant: &str, run: &SeedRun) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let out = &run.outcome;
    let mut files: Vec<(String, String)> = Vec::new();
    let builtin = |name: &str, s: Vec<(u64, f64)>| {
        let mut csv = format!("t_ms,{name}\n");
        for (t, v) in s {
            csv.push_str(&format!("{:.3},{v}\n", t as f64 / 1e6));
        }
        (name.to_string(), csv)
    };
    let mem = out
        .mem_samples
        .iter()
        .map(|&(t, b)| (t, b as f64))
        .collect();
    files.push(builtin("mem_bytes", mem));
    let threads = out
        .thread_samples
        .iter()
        .map(|&(t, n)| (t, n as f64))
        .collect();
    files.push(builtin("blocking_threads", threads));
    for name in out.metrics.series.keys() {
        if let Some(csv) = out.metrics.series_csv(name) {
            files.push((name.to_string(), csv));
        }
    }
    for (name, csv) in files {
        let path = dir.join(format!("{scenario}-{variant}-{}-{name}.csv", run.seed));
        std::fs::write(&path, csv).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        say!("wrote {}", path.display());
    }
    Ok(())
}

fn passed_line(scenario: &str, variant: &str, run: &SeedRun) -> String {
    let out = &run.outcome;
    format!(
        "passed: {scenario} --variant {variant} seed {} ({}): {} steps, {} preemptions, {:.3} ms virtual, trace hash {:#018x}",
        run.seed,
        run.policy,
        out.steps,
        out.preemptions,
        out.virtual_ns as f64 / 1e6,
        out.trace_hash
    )
}

fn summary_line(spec: &SweepSpec<'_>, report: &SweepReport) -> String {
    let first = report
        .first_failure
        .as_ref()
        .map_or_else(|| "none".to_string(), |r| r.seed.to_string());
    format!(
        "{} --variant {} ({}), seeds {} shard {}/{}: {}, {} failed, first failing seed {first}, {:.0} runs/s, digest {:#018x}",
        spec.scenario.name(),
        spec.variant,
        spec.policy,
        spec.range,
        spec.shard.index,
        spec.shard.count,
        plural(report.runs, "run", "runs"),
        report.failures,
        report.runs_per_s(),
        report.digest
    )
}

/// Writes the failing run's replay file; returns where it went (or why
/// not) and the report text.
fn report_failure_quietly(scenario: &dyn Scenario, variant: &str, run: &SeedRun) -> Reported {
    let path = runner::replay_path(scenario.name(), variant, run.seed, run.policy);
    let written = runner::replay_file_for(scenario, variant, run)
        .write(&path)
        .map_err(|e| e.to_string());
    let shown = match &written {
        Ok(()) => Ok(path.as_path()),
        Err(e) => runner::not_written(&path, e),
    };
    let text = runner::failure_report(scenario.name(), variant, run, shown);
    let where_to = match written {
        Ok(()) => Ok(path),
        Err(e) => Err((path, e)),
    };
    (where_to, text.trim_end().to_string())
}

/// Writes the failing run's replay file and prints how to reproduce it. A
/// replay file that cannot be written is reported, and the failure still
/// is: the exit code says an oracle failed.
fn report_failure(
    scenario: &dyn Scenario,
    variant: &str,
    run: &SeedRun,
) -> (std::process::ExitCode, Option<PathBuf>) {
    let (written, text) = report_failure_quietly(scenario, variant, run);
    say!("{text}");
    (exit(EXIT_FAILED), written.ok())
}
