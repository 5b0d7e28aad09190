//! The teeth of sync-switch mode. One test body, written once over
//! [`World`]: subscribers share a pool of `limit` connections; the oracle
//! is the pool's promise, *never more than `limit` connections at once*.
//!
//! | variant | default mode | sync-switch mode | shuttle | loom (smaller body) |
//! |---|---|---|---|---|
//! | pre-fix (check, `.await`, push) | found | found | found | found |
//! | half-fix (check, push: no `.await` between) | **missed** (0 of `SEEDS_MISS`) | found | found | found |
//! | fixed (reserve, connect, commit) | holds | holds | holds | holds |
//!
//! The same body runs under shuttle (`RUSTFLAGS="--cfg faultline_shuttle"`)
//! and loom (`--cfg faultline_loom`), where the `every_checker_*` tests
//! write check records for the teeth table (bugs `pool-pre-fix` and
//! `pool-half-fix`, oracle `invariant:over-limit`). Six subscribers do not
//! fit loom (5 threads per model, the body's own included): under loom the
//! body runs [`Shape::LOOM`], two subscribers, one round each, limit 1.
//!
//! Under shuttle and loom `faultline::probe::draw` is 0 (no simulator
//! probe is installed), so a connect takes no time and never fails: the
//! connect is still an `.await` (a zero sleep yields), but the fixed
//! pool's give-back path after a failed connect runs only in the
//! simulator.
//!
//!     cargo test --release -p pool-halffix --test halffix
//!     RUSTFLAGS="--cfg faultline_shuttle" CARGO_TARGET_DIR=target/shuttle \
//!       cargo test --release -p pool-halffix --test halffix
//!     RUSTFLAGS="--cfg faultline_loom" CARGO_TARGET_DIR=target/loom \
//!       cargo test --release -p pool-halffix --test halffix

use faultline::check::record::Expect;
use faultline::World;
use pool_halffix::workload::{self, Shape};
use pool_halffix::Variant;
use std::sync::atomic::{AtomicU64, Ordering};

/// The checker this build runs bodies under.
const CHECKER: &str = if cfg!(faultline_loom) {
    "loom"
} else if cfg!(faultline_shuttle) {
    "shuttle"
} else {
    "sim"
};
/// The teeth-table keys of the two bugs, and their oracle.
const BUG_HALF_FIX: &str = "pool-half-fix";
const BUG_PRE_FIX: &str = "pool-pre-fix";
const ORACLE: &str = "invariant:over-limit";
/// The oracle's words in every checker's failure message.
const ORACLE_TEXT: &str = "invariant 'over-limit' violated";
/// Seeds (simulator) or iterations (shuttle) of the `every_checker_*`
/// checks; loom is exhaustive.
const SEEDS_EVERY: u64 = 300;

/// The pool's workload and oracle ([`workload::subscribers`]), in this
/// build's shape.
async fn subscribers(world: World, variant: Variant) {
    workload::subscribers(world, variant, Shape::for_this_build()).await;
}

// --- what a user writes -------------------------------------------------

/// The fixed pool, as a user's test: both modes, with the attribute.
#[faultline::test(seeds = 300, sync_switch = true)]
async fn fixed_pool_holds_with_sync_switch(world: World) {
    subscribers(world, Variant::Fixed).await;
}

/// The half-fixed pool as a user's failing test (`cargo test -p
/// pool-halffix half_fixed_pool_overflows -- --ignored` shows the report).
/// Under shuttle and loom the same test runs the body there;
/// `every_checker_catches_the_half_fix` runs it in a child process.
#[faultline::test(seeds = 300, sync_switch = true, shrink_time_s = 2)]
#[ignore = "fails on purpose: the half-fix's gap between two sections"]
async fn half_fixed_pool_overflows(world: World) {
    subscribers(world, Variant::HalfFix).await;
}

/// The pre-fix pool, failing (run by `every_checker_catches_the_pre_fix`).
#[faultline::test(seeds = 300, sync_switch = true, shrink_time_s = 1)]
#[ignore = "fails on purpose: the pre-fix's check, await, push"]
async fn pre_fix_pool_overflows(world: World) {
    subscribers(world, Variant::PreFix).await;
}

// --- one body, every checker ----------------------------------------------

/// What an `#[ignore]`d test of this binary did in a child process.
struct ChildRun {
    success: bool,
    text: String,
}

/// Runs the `#[ignore]`d test `name` of this binary in a child process (a
/// failing loom model may abort its process: DESIGN.md, "Pitfalls").
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

/// Runs the failing test `child` in a child process; under shuttle and
/// loom records whether it caught `bug` with [`ORACLE`]. Panics unless it
/// did.
fn catches(child: &str, bug: &str) {
    let expect = (CHECKER != "sim").then(|| {
        Expect::caught(CHECKER, bug, ORACLE)
            .config("iterations_asked", SEEDS_EVERY)
            .config(
                "body",
                format!("examples/pool-halffix/tests/halffix.rs {child}"),
            )
    });
    let out = child_output(child);
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
        "{CHECKER} did NOT catch {bug} (or not with its oracle):\n{}",
        out.text
    );
    println!("{CHECKER}: caught {bug} (iteration/execution/seed {n}; 0: not reported): {line}");
}

#[test]
fn every_checker_catches_the_half_fix() {
    catches("half_fixed_pool_overflows", BUG_HALF_FIX);
}

#[test]
fn every_checker_catches_the_pre_fix() {
    catches("pre_fix_pool_overflows", BUG_PRE_FIX);
}

/// The fixed pool holds (in the simulator: in sync-switch mode); under
/// shuttle and loom it records that for both bugs.
#[test]
fn every_checker_holds_the_fixed_pool() {
    static EXECUTIONS: AtomicU64 = AtomicU64::new(0);
    let expects: Vec<Expect> = if CHECKER == "sim" {
        Vec::new()
    } else {
        [BUG_HALF_FIX, BUG_PRE_FIX]
            .iter()
            .map(|bug| {
                Expect::holds(CHECKER, bug, ORACLE)
                    .config("iterations_asked", SEEDS_EVERY)
                    .config(
                        "body",
                        "examples/pool-halffix/tests/halffix.rs subscribers fixed",
                    )
            })
            .collect()
    };
    faultline::Check::new()
        .seeds(0..SEEDS_EVERY)
        .sync_switch(true)
        .quiet()
        .run(|world| async move {
            EXECUTIONS.fetch_add(1, Ordering::Relaxed);
            subscribers(world, Variant::Fixed).await;
        });
    let n = EXECUTIONS.load(Ordering::Relaxed);
    for e in expects {
        e.settle(n, "", "");
    }
    println!("{CHECKER}: the fixed pool held over {n} executions");
}

// --- the simulator's own checks: default mode against sync-switch mode ---

#[cfg(not(any(faultline_shuttle, faultline_loom)))]
mod sim {
    use super::subscribers;
    use faultline::check::{Check, CheckFailure, CheckReport};
    use faultline::World;
    use pool_halffix::Variant;
    use std::time::Duration;

    /// Seeds over which the default mode must miss the half-fix.
    const SEEDS_MISS: u64 = 2_000;
    /// Seeds within which a variant must be found.
    const SEEDS_FIND: u64 = 500;
    /// Seeds over which the fixed pool must hold, per mode.
    const SEEDS_HOLD: u64 = 2_000;

    /// Determinism in the mode: every seed twice, same trace hash.
    #[faultline::test(seeds = 200, sync_switch = true, check_determinism = true)]
    async fn sync_switch_mode_is_deterministic(world: World) {
        subscribers(world, Variant::Fixed).await;
    }

    fn check(seeds: u64, sync_switch: bool) -> Check {
        Check::new()
            .seeds(0..seeds)
            .sync_switch(sync_switch)
            .shrink_time(Duration::ZERO)
            .quiet()
    }

    /// Runs `variant` and returns the first failing seed, or the report of a
    /// clean sweep.
    fn sweep(variant: Variant, seeds: u64, sync_switch: bool) -> Result<CheckReport, u64> {
        match check(seeds, sync_switch).try_run(|w| subscribers(w, variant)) {
            Ok(report) => Ok(report),
            Err(CheckFailure::Failed(f)) => {
                assert_eq!(f.oracle(), "invariant:over-limit", "{}", f.report);
                println!(
                    "{variant:?}, sync_switch {sync_switch}: first failure at seed {}",
                    f.run.seed
                );
                Err(f.run.seed)
            }
            Err(e) => panic!("not an oracle failure: {e}"),
        }
    }

    // --- the example's own checks -------------------------------------------

    #[test]
    fn default_mode_finds_the_pre_fix() {
        let seed =
            sweep(Variant::PreFix, SEEDS_FIND, false).expect_err("the pre-fix pool must overflow");
        assert!(seed < SEEDS_FIND);
    }

    #[test]
    fn default_mode_misses_the_half_fix() {
        let report = sweep(Variant::HalfFix, SEEDS_MISS, false)
            .unwrap_or_else(|seed| panic!("the default mode found the half-fix at seed {seed}: it cannot interleave synchronous sections, so the mode changed"));
        println!("half-fix, default mode: 0 found in {} runs", report.runs);
    }

    #[test]
    fn sync_switch_mode_finds_the_half_fix() {
        let seed = sweep(Variant::HalfFix, SEEDS_FIND, true)
            .expect_err("sync-switch mode must interleave the two sections");
        println!(
            "half-fix, sync-switch mode: found at seed {seed} ({} seeds run)",
            seed + 1
        );
    }

    #[test]
    fn sync_switch_mode_finds_the_pre_fix() {
        sweep(Variant::PreFix, SEEDS_FIND, true).expect_err("the pre-fix pool must overflow");
    }

    #[test]
    fn the_fixed_pool_holds_in_both_modes() {
        for sync_switch in [false, true] {
            if let Err(seed) = sweep(Variant::Fixed, SEEDS_HOLD, sync_switch) {
                panic!("the fixed pool overflowed at seed {seed} (sync_switch {sync_switch})");
            }
        }
    }

    /// A sync-switch failure's replay file reproduces it: the mode is in the
    /// file, and the switch decisions replay like every other choice.
    #[test]
    fn a_sync_switch_failure_replays_from_its_file() {
        let err = Check::new()
            .seeds(0..SEEDS_FIND)
            .sync_switch(true)
            .shrink_time(Duration::ZERO)
            .quiet()
            .try_run(|w| subscribers(w, Variant::HalfFix))
            .expect_err("found");
        let CheckFailure::Failed(f) = err else {
            panic!("not an oracle failure: {err}")
        };
        let file = f.replay.clone().expect("a replay file");
        // No `.sync_switch(true)` here: the mode comes from the file.
        let again = Check::new()
            .replay(&file)
            .quiet()
            .try_run(|w| subscribers(w, Variant::HalfFix))
            .expect_err("the replay must fail the same way");
        let CheckFailure::Failed(g) = again else {
            panic!("the replay did not reproduce: {again}")
        };
        assert_eq!(g.run.outcome.trace_hash, f.run.outcome.trace_hash);
        assert_eq!(g.oracle(), "invariant:over-limit");
    }

    /// A measurement, not a check: seeds to the first failure of the half-fix
    /// in sync-switch mode, in ten disjoint ranges of 1,000 seeds, per policy
    /// (`cargo test --release -p pool-halffix --test halffix -- --ignored
    /// --nocapture`).
    #[test]
    #[ignore = "a measurement: prints seeds to first failure"]
    fn seeds_to_first_failure_of_the_half_fix() {
        use faultline::check::PolicySpec;
        for pol in [PolicySpec::Random, PolicySpec::pct(2), PolicySpec::pct(3)] {
            let mut firsts = vec![];
            for k in 0..10u64 {
                let r = Check::new()
                    .seeds(k * 1000..k * 1000 + 1000)
                    .sync_switch(true)
                    .policy(pol)
                    .shrink_time(Duration::ZERO)
                    .quiet()
                    .try_run(|w| subscribers(w, Variant::HalfFix));
                firsts.push(match r {
                    Ok(_) => 1000,
                    Err(CheckFailure::Failed(f)) => f.run.seed - k * 1000 + 1,
                    Err(e) => panic!("{e}"),
                });
            }
            println!("{pol}: seeds to first failure {firsts:?}");
        }
    }
}
