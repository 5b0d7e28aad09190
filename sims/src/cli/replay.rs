//! `faultline replay` and `faultline shrink`: a replay file, rerun
//! strictly or shrunk, through the library's code (the same a
//! `FAULTLINE_REPLAY` test uses).

use super::{exit, find, say, CmdResult, EXIT_FAILED, EXIT_MISMATCH, EXIT_OK};
use crate::rerun::{self, Verdict, SHRINK_ATTEMPTS_DEFAULT};
use crate::runner;
use crate::scenario::Scenario;
use crate::trace_view::{self, ViewStyle};
use clap::Args;
use faultline::check::replay_file::{read_replay, ReplayFile};
use faultline::sim::Outcome;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub(super) struct ReplayArgs {
    /// The replay file.
    file: PathBuf,
    /// Print the event log of the replayed run: the simulator's events and
    /// the services' own `tracing` events, in virtual time.
    #[arg(long)]
    pub(super) trace: bool,
    /// With --trace: show only the tasks the failing oracle names, side by
    /// side, one column per task (implies --trace).
    #[arg(long)]
    focus: bool,
    /// How --trace prints the log: `text`, or `json` (one JSON object per
    /// line on stdout: time_ns, step, task, task_name, node, kind, level,
    /// target, text, fields; the other messages go to stderr). Implies
    /// --trace.
    #[arg(long, value_enum)]
    trace_format: Option<TraceFormat>,
    /// Print one JSON document on stdout (verdict, failure, trace hash,
    /// steps) instead of text.
    #[arg(long)]
    json: bool,
}

/// How `--trace` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum TraceFormat {
    /// Readable lines (or the focused columns with --focus).
    Text,
    /// One JSON object per line.
    Json,
}

impl ReplayArgs {
    /// Whether any form of the trace is asked for.
    pub(super) fn wants_trace(&self) -> bool {
        self.trace || self.focus || self.trace_format.is_some()
    }

    fn json_lines(&self) -> bool {
        self.trace_format == Some(TraceFormat::Json)
    }
}

/// Prints a human line: to stdout, or to stderr when stdout carries JSON
/// lines.
macro_rules! tell {
    ($args:expr, $($arg:tt)*) => {{
        if $args.json_lines() {
            eprintln!($($arg)*);
        } else {
            say!($($arg)*);
        }
    }};
}

#[derive(Args)]
pub(super) struct ShrinkArgs {
    /// The replay file of a failing run.
    file: PathBuf,
    /// Where to write the shrunk file (default: FILE with .min.json).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Candidate runs to try at most.
    #[arg(long, default_value_t = SHRINK_ATTEMPTS_DEFAULT)]
    attempts: usize,
    /// Seconds to spend at most (the best found so far is kept).
    #[arg(long, default_value_t = 60.0, value_parser = super::explore::parse_budget)]
    time_s: f64,
}

#[derive(Serialize)]
struct ReplayJson {
    file: String,
    scenario: String,
    variant: String,
    seed: u64,
    verdict: String,
    reproduced: bool,
    failure: Option<String>,
    oracle: Option<String>,
    trace_hash: String,
    steps: u64,
}

pub(super) fn replay(scenarios: &[Box<dyn Scenario>], args: &ReplayArgs) -> CmdResult {
    let file = read_replay(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let scenario = find(scenarios, &file.scenario)?;
    if !args.json {
        tell!(
            args,
            "replaying {} --variant {} seed {} ({}): {} decisions, recorded by faultline {} at commit {}",
            file.scenario,
            file.variant,
            file.seed,
            file.policy,
            file.decisions.len(),
            file.faultline_version,
            file.commit
        );
    }
    let out = rerun::replay(scenario, &file, args.wants_trace()).map_err(|e| e.to_string())?;
    let verdict = rerun::compare(&file, &out);
    let mismatch = !matches!(verdict, Verdict::Reproduced);
    let code = if mismatch {
        EXIT_MISMATCH
    } else if out.passed() {
        EXIT_OK
    } else {
        EXIT_FAILED
    };
    if args.json {
        print_json(args, &file, &verdict, &out)?;
        return Ok(exit(code));
    }
    if args.wants_trace() {
        print_trace(args, &out);
    }
    if !matches!(verdict, Verdict::NoLongerMatches(_)) {
        match &out.failure {
            Some(f) => tell!(args, "failed: {f}\n  oracle: {}", f.oracle()),
            None => tell!(args, "passed"),
        }
        tell!(
            args,
            "trace hash {:#018x}, {} steps",
            out.trace_hash,
            out.steps
        );
    }
    tell!(args, "{verdict}");
    if mismatch {
        tell!(
            args,
            "the code changed since the file was recorded (commit {}; this build {}): rerun the seed with  cargo run --release -- run {} --variant {} --seed {}{}",
            file.commit,
            runner::COMMIT,
            file.scenario,
            file.variant,
            file.seed,
            file.policy.cli_flags()
        );
    }
    Ok(exit(code))
}

fn print_json(
    args: &ReplayArgs,
    file: &ReplayFile,
    verdict: &Verdict,
    out: &Outcome,
) -> Result<(), String> {
    let json = ReplayJson {
        file: args.file.display().to_string(),
        scenario: file.scenario.clone(),
        variant: file.variant.clone(),
        seed: file.seed,
        verdict: verdict.to_string(),
        reproduced: matches!(verdict, Verdict::Reproduced),
        failure: out.failure.as_ref().map(ToString::to_string),
        oracle: out.failure.as_ref().map(faultline::sim::Failure::oracle),
        trace_hash: super::run::hex(out.trace_hash),
        steps: out.steps,
    };
    say!(
        "{}",
        serde_json::to_string(&json).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// The trace as asked: the whole log or the focused view, as text or JSON
/// lines.
fn print_trace(args: &ReplayArgs, out: &Outcome) {
    let log = &out.trace_log;
    let message = out.failure.as_ref().map(ToString::to_string);
    let lines: Vec<&faultline::sim::TraceLine> = if args.focus {
        let tasks = trace_view::focus_tasks(log, message.as_deref());
        trace_view::focused_lines(log, &tasks, message.as_deref())
    } else {
        log.lines.iter().collect()
    };
    if args.json_lines() {
        for line in lines {
            say!("{}", trace_view::json_line(log, line));
        }
        return;
    }
    if args.focus {
        let view = trace_view::render_focus(log, message.as_deref(), &ViewStyle::from_env());
        say!("--- focused trace: the tasks the failing oracle names (virtual time) ---");
        for line in view {
            say!("{line}");
        }
        say!("--- end of focused trace (the whole log: --trace without --focus) ---");
        return;
    }
    say!("--- event log ({} lines) ---", out.log.len());
    for line in &out.log {
        say!("{line}");
    }
    say!("--- end of event log ---");
}

/// `x.json` -> `x.min.json`; any other name gets `.min.json` appended.
fn shrunk_path(file: &Path) -> PathBuf {
    let text = file.display().to_string();
    match text.strip_suffix(".json") {
        Some(stem) => PathBuf::from(format!("{stem}.min.json")),
        None => PathBuf::from(format!("{text}.min.json")),
    }
}

pub(super) fn shrink(scenarios: &[Box<dyn Scenario>], args: &ShrinkArgs) -> CmdResult {
    let file = read_replay(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let scenario = find(scenarios, &file.scenario)?;
    let shrunk = rerun::shrink_file(scenario, &file, args.attempts, args.time_s)
        .map_err(|e| e.to_string())?;
    let out = args.out.clone().unwrap_or_else(|| shrunk_path(&args.file));
    shrunk.write(&out).map_err(|e| e.to_string())?;
    if let Some(s) = &shrunk.shrunk {
        say!("shrunk: {}", s.summary());
    }
    if let Some(f) = &shrunk.failure {
        say!("still fails: {f}");
    }
    say!("wrote {}", out.display());
    say!("reproduce: cargo run --release -- replay {}", out.display());
    Ok(exit(EXIT_OK))
}
