//! `faultline list`, `faultline record` and `faultline completions`.

use super::{exit, say, CmdResult, EXIT_OK};
use crate::scenario::Scenario;
use crate::FIXED;
use clap::{Args, CommandFactory};
use faultline::check::record::Expect;

pub(super) fn list(scenarios: &[Box<dyn Scenario>]) -> CmdResult {
    for s in scenarios {
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
                Some(bug) => say!(
                    "    --variant {v}{note} bug={} [{}, {}] oracles={}",
                    bug.key,
                    bug.kind.name(),
                    bug.origin.name(),
                    bug.oracles.join(",")
                ),
                None => say!("    --variant {v}{note}"),
            }
        }
    }
    Ok(exit(EXIT_OK))
}

#[derive(Args)]
pub(super) struct RecordArgs {
    /// The checker, e.g. `fuzz`.
    #[arg(long)]
    checker: String,
    /// The bug's key (see `faultline list`).
    #[arg(long)]
    bug: String,
    /// `caught` (with --fired) or `missed` for a buggy variant; `holds` or
    /// `fails` (with --fired) for a fixed one.
    #[arg(long, value_parser = ["caught", "missed", "holds", "fails"])]
    role: String,
    /// The oracle that fired, as the failure report's `oracle:` line names
    /// it.
    #[arg(long, default_value = "")]
    fired: String,
    /// Iterations (executions, inputs, runs) the check took.
    #[arg(long)]
    iterations: u64,
    /// A configuration entry, `KEY=VALUE` (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// The test or script that ran the check.
    #[arg(long)]
    test: String,
    /// One line on what happened.
    #[arg(long, default_value = "")]
    detail: String,
}

/// Writes a check record: the bug's own oracles come from the scenarios, so
/// a `caught` whose `--fired` is another oracle is recorded as `missed`.
pub(super) fn record(scenarios: &[Box<dyn Scenario>], args: &RecordArgs) -> CmdResult {
    let bug = scenarios
        .iter()
        .flat_map(|s| {
            s.variants()
                .iter()
                .filter_map(|v| s.bug(v))
                .collect::<Vec<_>>()
        })
        .find(|b| b.key == args.bug)
        .ok_or_else(|| format!("no bug '{}' (see `faultline list`)", args.bug))?;
    let mut e = match args.role.as_str() {
        "caught" | "missed" => Expect::caught_any(&args.checker, bug.key, bug.oracles),
        _ => Expect::holds_all(&args.checker, bug.key, bug.oracles),
    };
    for kv in &args.config {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--config '{kv}' is not KEY=VALUE"))?;
        e = e.config(k, v);
    }
    let e = e.test(&args.test);
    let fired = match args.role.as_str() {
        "missed" | "holds" => "",
        _ => args.fired.as_str(),
    };
    let met = e.settle(args.iterations, fired, &args.detail);
    say!(
        "recorded {} / {}: {} ({})",
        args.checker,
        args.bug,
        if met {
            "as expected"
        } else {
            "NOT as expected"
        },
        faultline::check::record::checks_dir().display()
    );
    Ok(exit(EXIT_OK))
}

#[derive(Args)]
pub(super) struct CompletionsArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

pub(super) fn completions<C: CommandFactory>(args: &CompletionsArgs) -> CmdResult {
    let mut cmd = C::command();
    clap_complete::generate(args.shell, &mut cmd, "faultline", &mut std::io::stdout());
    Ok(exit(EXIT_OK))
}
