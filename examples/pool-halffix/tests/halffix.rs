//! The teeth of sync-switch mode. One test body, written once over
//! [`World`]: subscribers share a pool of `LIMIT` connections; the oracle
//! is the pool's promise, *never more than `LIMIT` connections at once*.
//!
//! | variant | default mode | sync-switch mode |
//! |---|---|---|
//! | pre-fix (check, `.await`, push) | found | found |
//! | half-fix (check, push: no `.await` between) | **missed** (0 of `SEEDS_MISS`) | found |
//! | fixed (reserve, connect, commit) | holds | holds |

use faultline::check::{Check, CheckFailure, CheckReport};
use faultline::sync::Arc;
use faultline::World;
use pool_halffix::{Pool, Variant};
use std::time::Duration;

/// The pool's limit.
const LIMIT: usize = 3;
/// Subscriber tasks, and subscriptions each one makes.
const SUBSCRIBERS: u64 = 6;
const ROUNDS: u64 = 3;
const CONNECT_MS_MAX: u64 = 2;
const PAUSE_MS_MAX: u64 = 2;
/// Seeds over which the default mode must miss the half-fix.
const SEEDS_MISS: u64 = 2_000;
/// Seeds within which a variant must be found.
const SEEDS_FIND: u64 = 500;
/// Seeds over which the fixed pool must hold, per mode.
const SEEDS_HOLD: u64 = 2_000;

/// `SUBSCRIBERS` tasks subscribe, hold their connection a while and let it
/// go, `ROUNDS` times each. Fails the run with oracle `over-limit` when the
/// pool ever held more than `LIMIT` connections.
async fn subscribers(world: World, variant: Variant) {
    let pool = Arc::new(Pool::new(LIMIT, variant, world.clock()).connect_ms_max(CONNECT_MS_MAX));
    let mut tasks = Vec::new();
    for t in 0..SUBSCRIBERS {
        let pool = Arc::clone(&pool);
        tasks.push(world.spawn("subscriber", async move {
            for round in 0..ROUNDS {
                world
                    .sleep(Duration::from_millis(world.draw(PAUSE_MS_MAX)))
                    .await;
                match pool.subscribe().await {
                    Ok(id) => {
                        world.note(format!("subscriber {t}, round {round}: got {id}"));
                        world.sleep(Duration::from_millis(world.draw(5))).await;
                        pool.unsubscribe(id);
                    }
                    Err(e) => world.note(format!("subscriber {t}, round {round}: {e:?}")),
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("the subscriber ran to its end");
    }
    if pool.peak() > pool.limit() {
        world.fail(
            "over-limit",
            format!(
                "the pool held {} connections, limit {}",
                pool.peak(),
                pool.limit()
            ),
        );
    }
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

// --- what a user writes -------------------------------------------------

/// The fixed pool, as a user's test: both modes, with the attribute.
#[faultline::test(seeds = 300, sync_switch = true)]
async fn fixed_pool_holds_with_sync_switch(world: World) {
    subscribers(world, Variant::Fixed).await;
}

/// Determinism in the mode: every seed twice, same trace hash.
#[faultline::test(seeds = 200, sync_switch = true, check_determinism = true)]
async fn sync_switch_mode_is_deterministic(world: World) {
    subscribers(world, Variant::Fixed).await;
}

/// The half-fixed pool as a user's failing test (`cargo test -p
/// pool-halffix half_fixed_pool_overflows -- --ignored` shows the report).
#[faultline::test(seeds = 300, sync_switch = true, shrink_time_s = 2)]
#[ignore = "fails on purpose: the half-fix's gap between two sections"]
async fn half_fixed_pool_overflows(world: World) {
    subscribers(world, Variant::HalfFix).await;
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
