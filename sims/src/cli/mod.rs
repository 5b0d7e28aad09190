//! The `faultline` command line, for any list of scenarios:
//! [`main_with`] is the whole CLI (the `faultline` binary calls it with
//! [`crate::registry`]; a user with scenarios of their own calls it with
//! theirs). One file per command.

mod explore;
pub mod load;
mod merge;
mod misc;
mod replay;
mod run;
mod shard;

use crate::scenario::{Scenario, ScenarioError};
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Every run passed, or the command did its work.
pub const EXIT_OK: u8 = 0;
/// A run failed an oracle (its replay file is written, or why not is said).
pub const EXIT_FAILED: u8 = 1;
/// Bad input: arguments, environment, an unknown scenario or variant, an
/// unreadable or out-of-bounds replay file, a file that cannot be written.
pub const EXIT_BAD_INPUT: u8 = 2;
/// A replay file no longer matches the code.
pub const EXIT_MISMATCH: u8 = 3;

const AFTER_HELP: &str = "\
Exit codes:
  0  every run passed (or the command did its work)
  1  an oracle failed (the replay file is written; if it cannot be, the failure is still printed)
  2  bad input (arguments, environment, scenario, variant, replay file, unwritable file)
  3  a replay file no longer matches the code

Environment (an explicit flag beats the environment, which beats the default):
  FAULTLINE_SEED, FAULTLINE_SEEDS   seeds of `run` when neither --seed nor --seeds is given
  FAULTLINE_POLICY                  random | pct | pct:D, when --policy is not given
  FAULTLINE_SHARD                   K/N, when --shard is not given; CI indexed jobs also work:
                                    CI_NODE_INDEX/CI_NODE_TOTAL (GitLab), CIRCLE_NODE_INDEX/CIRCLE_NODE_TOTAL,
                                    BUILDKITE_PARALLEL_JOB/BUILDKITE_PARALLEL_JOB_COUNT,
                                    JOB_COMPLETION_INDEX + FAULTLINE_SHARD_COUNT (Kubernetes indexed Job)
  FAULTLINE_REPLAY_DIR              where replay files go (or --replay-dir)
  FAULTLINE_CHECKS_DIR              where check records are read and written
  CARGO_TARGET_DIR                  the target directory files go under
  NO_COLOR                          no ANSI colours
  RUST_LOG                          filters the code under test's own log lines

Files (under the target directory, $CARGO_TARGET_DIR or ./target):
  faultline/replays/   replay files of failing runs (<scenario>-<variant>-<seed>[-pctD].json)
  faultline/report/    the exploration's report (index.md, SVG plots and their CSV)
  faultline/checks/    check records of loom, shuttle, fuzz and real-server tests";

/// Deterministic-simulation concurrency testing: find races, deadlocks and
/// OOMs on demand, replay them exactly, prove the fix. With no subcommand,
/// explores every scenario and prints the teeth table.
#[derive(Parser)]
#[command(name = "faultline", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// List the scenarios, their variants and the bugs they carry.
    List,
    /// Sweep every scenario's variants (random and PCT), print the teeth
    /// table and write the report (the default command).
    Explore(explore::ExploreArgs),
    /// Run a scenario on one seed or a sweep of seeds.
    Run(run::RunArgs),
    /// Replay a replay file exactly (strict: every decision must fit).
    Replay(replay::ReplayArgs),
    /// Shrink a replay file to a smaller run that fails through the same
    /// oracle.
    Shrink(replay::ShrinkArgs),
    /// Combine the `run --json` outputs of the shards of one sweep into one
    /// summary (same digest as the sweep run whole).
    Merge(merge::MergeArgs),
    /// Load files: generate, check, summarize, convert an access log.
    Load(load::LoadArgs),
    /// Scale a scenario's load (or a load file) until it fails: bisection.
    Cliff(load::CliffArgs),
    /// Print a shell completion script.
    Completions(misc::CompletionsArgs),
    /// Record a check's result for the teeth table (for scripts such as
    /// scripts/fuzz-smoke; tests record through faultline::check::record).
    Record(misc::RecordArgs),
}

/// What a command ends with: an exit code, or an error (exit 2).
type CmdResult = Result<ExitCode, String>;

/// Prints a line to stdout; a closed pipe (`faultline ... | head`) is not
/// an error worth a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}
pub(crate) use say;

/// The CLI over `scenarios`: parses the arguments, runs the command and
/// returns the exit code (see `--help`).
pub fn main_with(scenarios: Vec<Box<dyn Scenario>>) -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap's own message, whole: what is missing, the possible
            // values, "did you mean". --help and --version exit 0.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                EXIT_BAD_INPUT
            } else {
                EXIT_OK
            });
        }
    };
    let trace = matches!(&cli.command, Some(Command::Replay(r)) if r.wants_trace());
    init_tracing(if trace { "info" } else { "warn" });
    let result = match cli.command {
        None => explore::cmd(&scenarios, &explore::ExploreArgs::default()),
        Some(Command::List) => misc::list(&scenarios),
        Some(Command::Explore(args)) => explore::cmd(&scenarios, &args),
        Some(Command::Run(args)) => run::cmd(&scenarios, &args),
        Some(Command::Replay(args)) => replay::replay(&scenarios, &args),
        Some(Command::Shrink(args)) => replay::shrink(&scenarios, &args),
        Some(Command::Merge(args)) => merge::cmd(&args),
        Some(Command::Load(args)) => load::cmd_load(&args),
        Some(Command::Cliff(args)) => load::cmd_cliff(&scenarios, &args),
        Some(Command::Completions(args)) => misc::completions::<Cli>(&args),
        Some(Command::Record(args)) => misc::record(&scenarios, &args),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_BAD_INPUT)
    })
}

/// The scenario called `name` among `scenarios` (`_` and `-` are the
/// same).
fn find<'a>(scenarios: &'a [Box<dyn Scenario>], name: &str) -> Result<&'a dyn Scenario, String> {
    crate::find_in(scenarios, name).map_err(|e: ScenarioError| e.to_string())
}

/// Whether ANSI colour may be used on stderr: a terminal, and no
/// `NO_COLOR`.
fn colour() -> bool {
    use std::io::IsTerminal as _;
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// Logs of the code under test go to stderr, filtered by `RUST_LOG`, with
/// no wall-clock timestamps (a simulated run has none that mean anything)
/// and colour only on a terminal.
fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour())
        .without_time()
        .try_init();
}

fn exit(code: u8) -> ExitCode {
    ExitCode::from(code)
}

/// `1 run`, `2 runs`.
fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}
