//! The report of a failing run: what failed (seed, policy, oracle,
//! message), under which faults, the last lines of its trace, where its
//! replay file is, and the commands that reproduce it.

use super::sweep::SeedRun;
use super::target::TargetId;
use std::fmt::Write as _;
use std::path::Path;

/// Faults that struck, listed at most.
pub const FAULT_LINES_MAX: usize = 10;

/// Trace lines shown at the end of a report at most.
pub const TRACE_TAIL_LINES: usize = 20;

/// Where a failure's replay file went: its path, or the path it was meant
/// to have and why it could not be written (the failure is reported
/// either way).
pub type Written<'a> = Result<&'a Path, (&'a Path, String)>;

/// The report of `run`'s failure. `repro` lists the commands that
/// reproduce it, best first; `trace_tail` the last lines of its event log.
pub fn failure_report(
    id: &TargetId,
    run: &SeedRun,
    replay: Written<'_>,
    trace_tail: &[String],
    repro: &[String],
) -> String {
    failure_report_labelled(id, run, replay, trace_tail, "", repro)
}

/// [`failure_report`], saying which run the trace tail is of when it is not
/// `run` itself: `tail_of` follows "last N trace lines" (for example
/// `" of the shrunk run (...)"`).
pub fn failure_report_labelled(
    id: &TargetId,
    run: &SeedRun,
    replay: Written<'_>,
    trace_tail: &[String],
    tail_of: &str,
    repro: &[String],
) -> String {
    let (failure, oracle) = run.outcome.failure.as_ref().map_or_else(
        || ("passed".to_string(), String::new()),
        |f| (f.to_string(), f.oracle()),
    );
    let mut out = format!(
        "FAILED: {id}, seed {} ({}): {failure}\n  oracle: {oracle}\n  {}\n",
        run.seed, run.policy, run.cfg.faults
    );
    let log = &run.outcome.fault_log;
    for f in log.iter().take(FAULT_LINES_MAX) {
        let _ = writeln!(out, "    {f}");
    }
    if log.len() > FAULT_LINES_MAX {
        let _ = writeln!(out, "    ... and {} more", log.len() - FAULT_LINES_MAX);
    }
    if !trace_tail.is_empty() {
        let _ = writeln!(out, "  last {} trace lines{tail_of}:", trace_tail.len());
        for l in trace_tail {
            let _ = writeln!(out, "    {l}");
        }
    }
    match replay {
        Ok(p) => {
            let _ = writeln!(out, "  replay file: {}", p.display());
        }
        Err((p, why)) => {
            let _ = writeln!(out, "  replay file: NOT WRITTEN to {} ({why})", p.display());
        }
    }
    for (i, r) in repro.iter().enumerate() {
        let label = if i == 0 { "reproduce:" } else { "or:" };
        let _ = writeln!(out, "  {label:<11} {r}");
    }
    out
}

/// The last `n` lines of `log`.
pub fn tail(log: &[String], n: usize) -> Vec<String> {
    log[log.len().saturating_sub(n)..].to_vec()
}
