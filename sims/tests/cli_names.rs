//! Task names that match the oracle's words: every actor a failing
//! oracle's message names (`txn 27 (i10)`, `committed by i7#19`,
//! `appended by a1`) is the label of a task in the replayed trace
//! (`'pusher i10'`, `'instance i7'`, `'appender a1'`), and heads a column of
//! the focused view.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use support::{faultline_env, json, scratch};

/// Runs one seed of a scenario variant, which must fail; returns the
/// replay file.
fn failing_seed(dir: &Path, scenario: &str, variant: &str, seed: &str) -> PathBuf {
    let args = ["run", scenario, "--variant", variant, "--seed", seed];
    let ran = faultline_env(dir, &args, &[]);
    assert_eq!(ran.code, 1, "{}{}", ran.stdout, ran.stderr);
    ran.replay_path(dir)
}

/// The words of `message` that are actor labels: a lower-case `prefix`
/// letter then digits (`i10`, `a1`), cut at any other character
/// (`i7#19` is `i7`, `item i0/0x6` gives `i0`).
fn actors(message: &str, prefix: char) -> BTreeSet<String> {
    message
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| {
            w.strip_prefix(prefix)
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
        .map(str::to_string)
        .collect()
}

/// The task names of the replayed trace (its JSON lines' `task_name`).
fn task_names(dir: &Path, file: &Path) -> BTreeSet<String> {
    let args = ["replay", file.to_str().unwrap(), "--trace-format", "json"];
    let ran = faultline_env(dir, &args, &[]);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    ran.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["task_name"].as_str().map(str::to_string))
        .collect()
}

/// The focused view's header row (the task columns).
fn focus_header(dir: &Path, file: &Path) -> String {
    let args = ["replay", file.to_str().unwrap(), "--focus"];
    let env = [("NO_COLOR", "1"), ("COLUMNS", "1000")];
    let ran = faultline_env(dir, &args, &env);
    assert_eq!(ran.code, 1, "{}{}", ran.stdout, ran.stderr);
    ran.stdout
        .lines()
        .find(|l| l.trim_start().starts_with("time ms"))
        .unwrap_or_else(|| panic!("no header row in:\n{}", ran.stdout))
        .to_string()
}

/// Replays `file` and checks that each actor its failure names (labels
/// starting with `prefix`) is a task's label in the trace and in a column
/// header of the focused view.
fn assert_actors_are_tasks(dir: &Path, file: &Path, prefix: char) {
    let message = json(file)["failure"]["message"]
        .as_str()
        .expect("a failure message")
        .to_string();
    let named = actors(&message, prefix);
    assert!(!named.is_empty(), "no actor in: {message}");
    let names = task_names(dir, file);
    let header = focus_header(dir, file);
    for actor in &named {
        let label = format!(" {actor}");
        assert!(
            names.iter().any(|n| n.ends_with(&label)),
            "{actor} (named by: {message}) is no task's label; tasks: {names:?}"
        );
        assert!(
            header.contains(&format!("{label}'")),
            "{actor} (named by: {message}) heads no focused column: {header}"
        );
    }
}

#[test]
fn spend_double_flush_names_instances_that_are_tasks() {
    let dir = scratch();
    // documented seed 4: a double flush after a lease expiry ("committed by
    // i7#19 and again by i1#17").
    let file = failing_seed(dir.path(), "spend-flush", "documented", "4");
    let oracle = json(&file)["failure"]["oracle"]
        .as_str()
        .map(str::to_string);
    assert_eq!(oracle.as_deref(), Some("invariant:double-flush"));
    assert_actors_are_tasks(dir.path(), &file, 'i');
}

#[test]
fn spend_deadlock_names_transaction_owners_that_are_tasks() {
    let dir = scratch();
    // pre-fix seed 0: "txn 27 (i10) -> txn 25 (i11) -> txn 27 (i10)".
    let file = failing_seed(dir.path(), "spend-flush", "pre-fix", "0");
    let oracle = json(&file)["failure"]["oracle"]
        .as_str()
        .map(str::to_string);
    assert_eq!(oracle.as_deref(), Some("invariant:ledger-deadlock"));
    assert_actors_are_tasks(dir.path(), &file, 'i');
}

#[test]
fn store_loss_names_the_appender_task() {
    let dir = scratch();
    // generation-check seed 25: an event of appender a1 is lost.
    let file = failing_seed(dir.path(), "append-retention", "generation-check", "25");
    let oracle = json(&file)["failure"]["oracle"]
        .as_str()
        .map(str::to_string);
    assert_eq!(oracle.as_deref(), Some("invariant:no-loss"));
    assert_actors_are_tasks(dir.path(), &file, 'a');
}
