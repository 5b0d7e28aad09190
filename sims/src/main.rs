//! The `faultline` command line: runs scenarios, replays and shrinks
//! failures.
//!
//! Exit codes: 0 every run passed (or the command did its work), 1 a run
//! failed an oracle (its replay file is written and its path printed; a
//! replay that fails, including one that no longer matches the code, is
//! also 1), 2 bad input (bad arguments, unknown scenario or variant,
//! malformed or unusable replay file, bad seed range or shard) or a file
//! that cannot be written, with a one-line error.

use clap::{Args, Parser, Subcommand, ValueEnum};
use faultline_sims::checks::{read_checks, CHECKS_DIR};
use faultline_sims::explore::{self, ExploreSpec, BUDGET_S_DEFAULT};
use faultline_sims::policy::PCT_DEPTH_DEFAULT;
use faultline_sims::replay_file::read_replay;
use faultline_sims::report::{self, ReportInput, REPORT_DIR};
use faultline_sims::rerun::{self, ShrinkError, Verdict, SHRINK_ATTEMPTS_DEFAULT};
use faultline_sims::runner::{self, PolicySpec, SeedRun, SweepReport, SweepSpec};
use faultline_sims::seeds::{SeedRange, Shard};
use faultline_sims::teeth;
use faultline_sims::{find, registry, Scenario, FIXED};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Deterministic-simulation concurrency testing: find races, deadlocks and
/// OOMs on demand, replay them exactly, prove the fix. With no subcommand,
/// sweeps every scenario on every variant and prints the teeth table.
#[derive(Parser)]
#[command(name = "faultline", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// List the scenarios, their variants and what each checks.
    List,
    /// Sweep every scenario's variants (random and PCT) within a budget,
    /// print the teeth table and write the report (the default command).
    Explore(ExploreArgs),
    /// Run a scenario on one seed or a sweep of seeds.
    Run(RunArgs),
    /// Replay a replay file exactly (strict: every decision must fit).
    Replay(ReplayArgs),
    /// Shrink a replay file to a minimal schedule that fails the same way.
    Shrink(ShrinkArgs),
}

#[derive(Args)]
struct RunArgs {
    /// The scenario (see `faultline list`).
    scenario: String,
    /// Run this one seed (FAULTLINE_SEED, when set, overrides it).
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Run seeds A..B (B excluded), e.g. 0..1000.
    #[arg(long, value_name = "A..B")]
    seeds: Option<SeedRange>,
    /// The schedule policy.
    #[arg(long, value_enum, default_value_t = PolicyArg::Random)]
    policy: PolicyArg,
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
    #[arg(long, default_value = FIXED)]
    variant: String,
    /// Run only shard K of N of the seeds (seed s when s % N == K-1).
    #[arg(long, value_name = "K/N", requires = "seeds")]
    shard: Option<Shard>,
    /// Stop at the first failing seed.
    #[arg(long)]
    fail_fast: bool,
    /// With --seed: write each time series the run recorded (memory, lag,
    /// threads, ...) as DIR/<scenario>-<variant>-<seed>-<series>.csv.
    #[arg(long, value_name = "DIR", conflicts_with = "seeds")]
    csv: Option<PathBuf>,
}

#[derive(Args)]
struct ExploreArgs {
    /// Wall-time budget for every sweep together, seconds.
    #[arg(long, default_value_t = BUDGET_S_DEFAULT, value_parser = parse_budget)]
    budget_s: f64,
    /// Where the report (index.md, SVG plots) is written.
    #[arg(long, default_value = REPORT_DIR)]
    report_dir: PathBuf,
}

fn parse_budget(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "'{text}' is not a budget in seconds (0 < s <= 86400)"
        )),
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum PolicyArg {
    /// Uniformly random among runnable tasks.
    Random,
    /// Probabilistic concurrency testing (priorities, change points).
    Pct,
}

#[derive(Args)]
struct ReplayArgs {
    /// The replay file.
    file: PathBuf,
    /// Print the event log of the replayed run.
    #[arg(long)]
    trace: bool,
}

#[derive(Args)]
struct ShrinkArgs {
    /// The replay file of a failing run.
    file: PathBuf,
    /// Where to write the shrunk file (default: FILE with .min.json).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Candidate runs to try at most.
    #[arg(long, default_value_t = SHRINK_ATTEMPTS_DEFAULT)]
    attempts: usize,
}

/// Prints a line to stdout; a closed pipe (`faultline ... | head`) is not
/// an error worth a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Prints to stdout without a newline, like [`say!`].
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// A run failed an oracle.
const EXIT_FAILED: u8 = 1;
/// Bad input, or the command could not do its work.
const EXIT_BAD_INPUT: u8 = 2;

/// What a command ends with: an exit code, or a one-line error (exit 2).
type CmdResult = Result<ExitCode, String>;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("error: bad arguments");
            eprintln!("{first} (see --help)");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let trace = matches!(&cli.command, Some(Command::Replay(r)) if r.trace);
    init_tracing(if trace { "info" } else { "warn" });
    let result = match cli.command {
        None => cmd_explore(&ExploreArgs {
            budget_s: BUDGET_S_DEFAULT,
            report_dir: PathBuf::from(REPORT_DIR),
        }),
        Some(Command::List) => cmd_list(),
        Some(Command::Explore(args)) => cmd_explore(&args),
        Some(Command::Run(args)) => cmd_run(&args),
        Some(Command::Replay(args)) => cmd_replay(&args),
        Some(Command::Shrink(args)) => cmd_shrink(&args),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_BAD_INPUT)
    })
}

/// Logs of the code under test go to stderr, filtered by `RUST_LOG`.
fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn exit_for(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

fn cmd_list() -> CmdResult {
    for s in registry() {
        say!("{}  {}", s.name(), s.about());
        for &v in s.variants() {
            let note = if v == FIXED {
                "  (default)"
            } else if s.holds(v) {
                "  (correct: must hold)"
            } else {
                "  (buggy: must be caught)"
            };
            match s.bug(v) {
                Some(bug) => say!("    --variant {v}{note} bug={}", bug.key),
                None => say!("    --variant {v}{note}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_explore(args: &ExploreArgs) -> CmdResult {
    report::prepare_dir(&args.report_dir).map_err(|e| e.to_string())?;
    let scenarios = registry();
    let spec = ExploreSpec {
        budget_s: args.budget_s,
        ..ExploreSpec::default()
    };
    eprintln!(
        "exploring {} scenarios, every variant under the random and PCT policies, {:.0} s budget",
        scenarios.len(),
        spec.budget_s
    );
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} sweeps [{elapsed}] {msg}")
    {
        bar.set_style(style);
    }
    let rows = explore::explore(&scenarios, spec, |s, v, p, done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(format!("{s} --variant {v} ({p})"));
    })
    .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    let (checks, warnings) = read_checks(Path::new(CHECKS_DIR));
    let teeth_rows = teeth::teeth_rows(&rows, &checks);
    say!("teeth table (loom, shuttle, fuzz: as their tests last recorded them)");
    say_raw!("{}", teeth::render_text(&teeth_rows));
    say!("");
    say_raw!("{}", explore::table(&rows));
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let input = ReportInput {
        scenarios: &scenarios,
        rows: &rows,
        teeth: &teeth_rows,
        warnings: &warnings,
        budget_s: spec.budget_s,
    };
    let files = report::write_report(&args.report_dir, &input).map_err(|e| e.to_string())?;
    say!(
        "report: {} ({} files)",
        args.report_dir.join("index.md").display(),
        files.len()
    );
    for r in &rows {
        for sw in &r.sweeps {
            if let Some(p) = &sw.replay {
                say!(
                    "{} {} ({}): replay with  cargo run --release -- replay {}",
                    r.scenario,
                    r.variant,
                    sw.policy,
                    p.display()
                );
            }
        }
    }
    let ok = explore::all_ok(&rows);
    if ok {
        say!("ok: every fixed variant holds and every pre-fix variant was caught");
    } else {
        say!("NOT OK: a fixed variant failed or a pre-fix variant was missed (see verdict)");
    }
    Ok(exit_for(!ok))
}

/// The seeds `run` covers: FAULTLINE_SEED, else --seed, else --seeds.
fn run_seeds(args: &RunArgs) -> Result<SeedRange, String> {
    if let Ok(text) = std::env::var("FAULTLINE_SEED") {
        let seed: u64 = text
            .trim()
            .parse()
            .map_err(|_| format!("FAULTLINE_SEED='{text}' is not a seed (0 or more)"))?;
        eprintln!("FAULTLINE_SEED={seed} overrides the seeds given: running seed {seed}");
        return Ok(SeedRange::single(seed));
    }
    match (args.seed, args.seeds) {
        (Some(seed), _) => Ok(SeedRange::single(seed)),
        (None, Some(range)) => Ok(range),
        (None, None) => Err("run needs --seed N or --seeds A..B".into()),
    }
}

fn cmd_run(args: &RunArgs) -> CmdResult {
    let scenario = find(&args.scenario).map_err(|e| e.to_string())?;
    scenario
        .check_variant(&args.variant)
        .map_err(|e| e.to_string())?;
    let range = run_seeds(args)?;
    let depth = matches!(args.policy, PolicyArg::Pct).then_some(args.pct_depth);
    let policy = match (runner::policy_for(scenario.as_ref(), depth), args.pct_steps) {
        (PolicySpec::Pct { depth, .. }, Some(k)) => PolicySpec::Pct {
            depth,
            expected_steps: k,
        },
        (policy, _) => policy,
    };
    if range.len() == 1 {
        let run = runner::run_seed(scenario.as_ref(), &args.variant, range.start, policy)
            .map_err(|e| e.to_string())?;
        let code = if run.outcome.passed() {
            say!("{}", passed_line(scenario.name(), &args.variant, &run));
            ExitCode::SUCCESS
        } else {
            report_failure(scenario.as_ref(), &args.variant, &run)?
        };
        print_metrics(&run);
        if let Some(dir) = &args.csv {
            write_csvs(dir, scenario.name(), &args.variant, &run)?;
        }
        return Ok(code);
    }
    let spec = SweepSpec {
        scenario: scenario.as_ref(),
        variant: &args.variant,
        policy,
        range,
        shard: args.shard.unwrap_or(Shard::ALL),
        fail_fast: args.fail_fast,
        time_budget_s: None,
        runs_min: 1,
    };
    let report = sweep_with_bar(&spec).map_err(|e| e.to_string())?;
    say!("{}", summary_line(&spec, &report));
    match &report.first_failure {
        Some(run) => report_failure(scenario.as_ref(), &args.variant, run),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// Sweeps with a progress bar on stderr (drawn only on a terminal).
fn sweep_with_bar(spec: &SweepSpec<'_>) -> Result<SweepReport, faultline_sims::ScenarioError> {
    let bar = ProgressBar::new(spec.shard.count_in(spec.range));
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
        "{} --variant {} ({}), seeds {} shard {}: {} runs, {} failed, first failing seed {first}, {:.0} runs/s, digest {:#018x}",
        spec.scenario.name(),
        spec.variant,
        spec.policy,
        spec.range,
        spec.shard,
        report.runs,
        report.failures,
        report.runs_per_s(),
        report.digest
    )
}

/// Writes the failing run's replay file and prints how to reproduce it.
fn report_failure(scenario: &dyn Scenario, variant: &str, run: &SeedRun) -> CmdResult {
    let path = runner::save_failure(scenario, variant, run).map_err(|e| e.to_string())?;
    say!(
        "{}",
        runner::failure_report(scenario.name(), variant, run, &path)
    );
    Ok(ExitCode::from(EXIT_FAILED))
}

fn cmd_replay(args: &ReplayArgs) -> CmdResult {
    let file = read_replay(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let scenario = find(&file.scenario).map_err(|e| e.to_string())?;
    say!(
        "replaying {} --variant {} seed {} ({}): {} decisions, recorded by faultline {} at commit {}",
        file.scenario,
        file.variant,
        file.seed,
        file.policy,
        file.decisions.len(),
        file.faultline_version,
        file.commit
    );
    if file.commit != runner::COMMIT && file.commit != "unknown" && runner::COMMIT != "unknown" {
        say!("note: this build is commit {}", runner::COMMIT);
    }
    let out = rerun::replay(scenario.as_ref(), &file, args.trace).map_err(|e| e.to_string())?;
    if args.trace {
        say!("--- event log ({} lines) ---", out.log.len());
        for line in &out.log {
            say!("{line}");
        }
        say!("--- end of event log ---");
    }
    let verdict = rerun::compare(&file, &out);
    if !matches!(verdict, Verdict::NoLongerMatches(_)) {
        match &out.failure {
            Some(f) => say!("failed: {f}"),
            None => say!("passed"),
        }
        say!("trace hash {:#018x}, {} steps", out.trace_hash, out.steps);
    }
    say!("{verdict}");
    Ok(exit_for(!out.passed()))
}

/// `x.json` -> `x.min.json`; any other name gets `.min.json` appended.
fn shrunk_path(file: &Path) -> PathBuf {
    let text = file.display().to_string();
    match text.strip_suffix(".json") {
        Some(stem) => PathBuf::from(format!("{stem}.min.json")),
        None => PathBuf::from(format!("{text}.min.json")),
    }
}

fn cmd_shrink(args: &ShrinkArgs) -> CmdResult {
    let file = read_replay(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let scenario = find(&file.scenario).map_err(|e| e.to_string())?;
    let shrunk = rerun::shrink_file(scenario.as_ref(), &file, args.attempts)
        .map_err(|e: ShrinkError| e.to_string())?;
    let out = args.out.clone().unwrap_or_else(|| shrunk_path(&args.file));
    shrunk.write(&out).map_err(|e| e.to_string())?;
    if let Some(s) = &shrunk.shrunk {
        say!(
            "shrunk: {} -> {} non-default decisions ({} -> {} decisions, {} candidate runs)",
            s.choices_before,
            s.choices_after,
            file.decisions.len(),
            shrunk.decisions.len(),
            s.attempts
        );
    }
    if let Some(f) = &shrunk.failure {
        say!("still fails: {f}");
    }
    say!("wrote {}", out.display());
    say!("reproduce: cargo run --release -- replay {}", out.display());
    Ok(ExitCode::SUCCESS)
}
