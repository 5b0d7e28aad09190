//! `faultline replay` and `faultline shrink`: a replay file, rerun
//! strictly or shrunk, through the library's code (the same a
//! `FAULTLINE_REPLAY` test uses).

use super::{exit, find, say, CmdResult, EXIT_FAILED, EXIT_MISMATCH, EXIT_OK};
use crate::rerun::{self, Verdict, SHRINK_ATTEMPTS_DEFAULT};
use crate::runner;
use crate::scenario::Scenario;
use clap::Args;
use faultline::check::replay_file::read_replay;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub(super) struct ReplayArgs {
    /// The replay file.
    file: PathBuf,
    /// Print the event log of the replayed run.
    #[arg(long)]
    pub(super) trace: bool,
    /// Print one JSON document on stdout (verdict, failure, trace hash,
    /// steps) instead of text.
    #[arg(long)]
    json: bool,
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
    }
    let out = rerun::replay(scenario, &file, args.trace).map_err(|e| e.to_string())?;
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
        let json = ReplayJson {
            file: args.file.display().to_string(),
            scenario: file.scenario.clone(),
            variant: file.variant.clone(),
            seed: file.seed,
            verdict: verdict.to_string(),
            reproduced: !mismatch,
            failure: out.failure.as_ref().map(ToString::to_string),
            oracle: out.failure.as_ref().map(faultline::sim::Failure::oracle),
            trace_hash: super::run::hex(out.trace_hash),
            steps: out.steps,
        };
        say!(
            "{}",
            serde_json::to_string(&json).map_err(|e| e.to_string())?
        );
        return Ok(exit(code));
    }
    if args.trace {
        say!("--- event log ({} lines) ---", out.log.len());
        for line in &out.log {
            say!("{line}");
        }
        say!("--- end of event log ---");
    }
    if !matches!(verdict, Verdict::NoLongerMatches(_)) {
        match &out.failure {
            Some(f) => say!("failed: {f}\n  oracle: {}", f.oracle()),
            None => say!("passed"),
        }
        say!("trace hash {:#018x}, {} steps", out.trace_hash, out.steps);
    }
    say!("{verdict}");
    if mismatch {
        say!(
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
