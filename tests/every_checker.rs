//! One test body, every checker (issue 20): the same `async fn(world:
//! World)` bodies run under the simulator (a plain build), under shuttle
//! (`RUSTFLAGS="--cfg faultline_shuttle"`) and under loom (`RUSTFLAGS="--cfg
//! faultline_loom"`), through `#[faultline::test]` and `Check` unchanged.
//!
//! The race: two tasks each add one to a shared counter by reading it,
//! awaiting (a yield: any task may run), then writing what they read plus
//! one: a lost update, unless the read, the await and the write are one
//! critical section under a `Gate` (the fix). Every checker must catch the
//! buggy body (its oracle `lost-update`) and hold the fixed one.
//!
//!     cargo test --release -p faultline --test every_checker
//!     RUSTFLAGS="--cfg faultline_shuttle" CARGO_TARGET_DIR=target/shuttle \
//!       cargo test --release --no-default-features -p faultline --test every_checker
//!     RUSTFLAGS="--cfg faultline_loom" CARGO_TARGET_DIR=target/loom \
//!       cargo test --release --no-default-features -p faultline --test every_checker
//!
//! The buggy body is an `#[ignore]`d test run in a child process (a failing
//! loom model may abort its process: DESIGN.md, "Pitfalls seen here"); the
//! parent asserts the child failed with the bug's own oracle. Under loom and
//! shuttle the results are check records (`faultline::check::record`).

use faultline::check::record::Expect;
use faultline::sync::{Arc, Gate, Mutex};
use faultline::World;
use std::sync::atomic::{AtomicU64, Ordering};

/// The teeth-table key of this race.
const BUG: &str = "every-checker-lost-update";
/// Its oracle, as the simulator's `Failure::oracle` names it.
const ORACLE: &str = "invariant:lost-update";
/// The oracle's words in every checker's failure message.
const ORACLE_TEXT: &str = "invariant 'lost-update' violated";
/// Seeds (simulator) or iterations (shuttle) per check; loom is exhaustive.
const SEEDS: u64 = 300;

/// The checker this build runs bodies under.
const CHECKER: &str = if cfg!(faultline_loom) {
    "loom"
} else if cfg!(faultline_shuttle) {
    "shuttle"
} else {
    "sim"
};

/// Two increments of one counter, each a read, an await and a write;
/// `fixed` holds a `Gate` across all three.
async fn two_increments(world: World, fixed: bool) {
    let counter = Arc::new(Mutex::new(0u32));
    let gate = Arc::new(Gate::new(()));
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (counter, gate) = (Arc::clone(&counter), Arc::clone(&gate));
        tasks.push(world.spawn("increment", async move {
            let held = if fixed { Some(gate.lock().await) } else { None };
            let read = counter.with(|c| *c);
            world.yield_now().await;
            counter.with(|c| *c = read + 1);
            drop(held);
        }));
    }
    for t in tasks {
        t.await.expect("an increment task did not finish");
    }
    let n = counter.with(|c| *c);
    if n != 2 {
        world.fail(
            "lost-update",
            format!("two increments left the counter at {n}"),
        );
    }
}

#[faultline::test(seeds = 300)]
async fn lost_update_fixed(world: World) {
    two_increments(world, true).await;
}

#[faultline::test(seeds = 300, shrink_time_s = 1)]
#[ignore = "the buggy twin: every_checker_catches_the_lost_update runs it in a child process"]
async fn lost_update_buggy(world: World) {
    two_increments(world, false).await;
}

/// What an `#[ignore]`d test of this binary did in a child process.
struct ChildRun {
    success: bool,
    text: String,
}

/// Runs the `#[ignore]`d test `name` of this binary in a child process.
fn child_output(name: &str) -> ChildRun {
    let exe = std::env::current_exe().expect("test binary path");
    let out = std::process::Command::new(exe)
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .expect("spawn the child test process");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("running 1 test"),
        "child test {name} did not run:\n{text}"
    );
    ChildRun {
        success: out.status.success(),
        text,
    }
}

/// The number after `key` in `text` (0 when absent).
fn number_after(text: &str, key: &str) -> u64 {
    text.split(key)
        .nth(1)
        .and_then(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .unwrap_or(0)
}

#[test]
fn every_checker_catches_the_lost_update() {
    let expect = (CHECKER != "sim").then(|| {
        Expect::caught(CHECKER, BUG, ORACLE)
            .config("iterations_asked", SEEDS)
            .config("body", "tests/every_checker.rs two_increments")
    });
    let out = child_output("lost_update_buggy");
    let failed = !out.success && out.text.contains(ORACLE_TEXT);
    let line = out
        .text
        .lines()
        .find(|l| l.contains(ORACLE_TEXT))
        .unwrap_or("not caught")
        .to_string();
    // shuttle: "iteration N of M"; loom: "execution N"; the simulator: "seed N".
    let n = ["(iteration ", "(execution ", "seed "]
        .iter()
        .map(|k| number_after(&out.text, k))
        .find(|&n| n > 0)
        .unwrap_or(0);
    if let Some(e) = expect {
        e.settle(n, if failed { ORACLE } else { "" }, &line);
    }
    assert!(
        failed,
        "{CHECKER} did NOT catch the lost update (or not with its oracle):\n{}",
        out.text
    );
    println!(
        "{CHECKER}: caught the lost update (iteration/execution {n}; 0: not reported): {line}"
    );
}

#[test]
fn every_checker_holds_the_fix() {
    static EXECUTIONS: AtomicU64 = AtomicU64::new(0);
    let expect = (CHECKER != "sim").then(|| {
        Expect::holds(CHECKER, BUG, ORACLE)
            .config("iterations_asked", SEEDS)
            .config("body", "tests/every_checker.rs two_increments")
    });
    faultline::Check::new()
        .seeds(0..SEEDS)
        .run(|world| async move {
            EXECUTIONS.fetch_add(1, Ordering::Relaxed);
            two_increments(world, true).await;
        });
    let n = EXECUTIONS.load(Ordering::Relaxed);
    if let Some(e) = expect {
        e.settle(n, "", "");
    }
    println!("{CHECKER}: the fix held over {n} executions");
}

/// A body that starts five tasks: it fits the simulator and shuttle, not
/// loom (5 threads per model, the body's own included).
#[faultline::test(seeds = 20)]
#[ignore = "run by a_body_too_big_for_loom_says_so"]
async fn five_tasks(world: World) {
    let done = Arc::new(Mutex::new(0u32));
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let done = Arc::clone(&done);
        tasks.push(world.spawn("one-of-five", async move {
            done.with(|d| *d += 1);
        }));
    }
    for t in tasks {
        t.await.expect("a task did not finish");
    }
    assert_eq!(done.with(|d| *d), 5);
}

#[test]
fn a_body_too_big_for_loom_says_so() {
    let out = child_output("five_tasks");
    if CHECKER == "loom" {
        assert!(
            !out.success && out.text.contains("does not fit loom"),
            "loom should refuse a five-task body with a clear message:\n{}",
            out.text
        );
        println!("loom refused the five-task body, as it should");
    } else {
        assert!(
            out.success,
            "{CHECKER} should run a five-task body:\n{}",
            out.text
        );
    }
}
