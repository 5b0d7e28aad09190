//! The simulator finds the races of `tests/support/races.rs` in no more
//! executions than shuttle does: over many independent trials (disjoint
//! seed ranges on our side, one seeded shuttle runner per trial on
//! shuttle's), the mean number of executions up to and including the first
//! failing one, random against random and PCT (depth 2) against PCT. Our
//! PCT gets its step count the way a user with no numbers gets it
//! (`PctPolicy::measure_steps`); shuttle's measures its own in the first
//! iteration of each trial.
//!
//! The comparison rejects twins that cannot find the races: the simulator
//! never preempting (every decision the default), and PCT with a
//! hand-picked step count far off the program's (change points past the
//! end of every run: what a user got before the step count was measured).
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

#[path = "support/races.rs"]
mod races;

use faultline::sim::{PctPolicy, PolicyKind, SimConfig};
use races::{shuttle_program, sim_program, Race, FAILURES};
use shuttle::scheduler::{PctScheduler, RandomScheduler};
use shuttle::{Config, Runner};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Trials per comparison.
const TRIALS: u64 = 300;
/// Executions per trial at most (a trial that finds nothing counts this).
const EXECUTIONS_MAX: u64 = 100;
/// How much worse (as a factor on the mean) the simulator may look before
/// the comparison fails: sampling noise of a geometric mean over `TRIALS`.
const SLACK: f64 = 1.3;

/// The race programs count failures in one global counter: one comparison
/// at a time.
static SERIAL: Mutex<()> = Mutex::new(());

#[derive(Clone, Copy, Debug)]
enum Policy {
    Random,
    Pct,
    /// Every decision the default (never preempts): the twin.
    NoPreemption,
}

/// Executions up to the first failing one in `trial` on the simulator.
fn sim_first_failure(race: Race, policy: Policy, trial: u64, k: u64) -> u64 {
    for i in 0..EXECUTIONS_MAX {
        let seed = trial * EXECUTIONS_MAX + i;
        let policy = match policy {
            Policy::Random => PolicyKind::Random,
            Policy::Pct => PolicyKind::Pct {
                depth: 2,
                expected_steps: k,
            },
            Policy::NoPreemption => PolicyKind::Replay {
                decisions: Vec::new(),
                strict: false,
            },
        };
        let before = FAILURES.load(Ordering::Relaxed);
        sim_program(
            race,
            SimConfig {
                seed,
                policy,
                ..Default::default()
            },
        );
        if FAILURES.load(Ordering::Relaxed) > before {
            return i + 1;
        }
    }
    EXECUTIONS_MAX
}

/// The execution number of the first failure shuttle's runner saw.
static FIRST: AtomicU64 = AtomicU64::new(0);
static COUNT: AtomicU64 = AtomicU64::new(0);

/// Executions up to the first failing one in `trial` under shuttle.
fn shuttle_first_failure(race: Race, pct: bool, trial: u64) -> u64 {
    FIRST.store(0, Ordering::Relaxed);
    COUNT.store(0, Ordering::Relaxed);
    let program = move || {
        let n = COUNT.fetch_add(1, Ordering::Relaxed) + 1;
        let before = FAILURES.load(Ordering::Relaxed);
        shuttle_program(race);
        if FAILURES.load(Ordering::Relaxed) > before && FIRST.load(Ordering::Relaxed) == 0 {
            FIRST.store(n, Ordering::Relaxed);
        }
    };
    let n = EXECUTIONS_MAX as usize;
    if pct {
        Runner::new(PctScheduler::new_from_seed(trial, 2, n), Config::new()).run(program);
    } else {
        Runner::new(RandomScheduler::new_from_seed(trial, n), Config::new()).run(program);
    }
    match FIRST.load(Ordering::Relaxed) {
        0 => EXECUTIONS_MAX,
        first => first,
    }
}

/// Mean executions to the first failure over `TRIALS` trials.
fn mean(first: impl Fn(u64) -> u64) -> f64 {
    (0..TRIALS).map(first).sum::<u64>() as f64 / TRIALS as f64
}

/// Whether the simulator's mean is no worse than shuttle's (within slack).
fn no_worse(sim: f64, shuttle: f64) -> bool {
    sim <= shuttle * SLACK
}

/// PCT's k for `race`, measured as a user with no numbers gets it.
fn measured_k(race: Race) -> u64 {
    PctPolicy::measure_steps(&SimConfig::default(), |cfg| sim_program(race, cfg))
}

#[test]
fn random_finds_each_race_in_no_more_executions_than_shuttle() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for race in [Race::Rmw, Race::Fig1b] {
        let sim = mean(|t| sim_first_failure(race, Policy::Random, t, 0));
        let shuttle = mean(|t| shuttle_first_failure(race, false, t));
        eprintln!("{race:?} random: executions to the first failure: simulator {sim:.2}, shuttle {shuttle:.2}");
        assert!(
            no_worse(sim, shuttle),
            "{race:?} random: simulator {sim:.2} vs shuttle {shuttle:.2}"
        );
        let twin = mean(|t| sim_first_failure(race, Policy::NoPreemption, t, 0));
        eprintln!("{race:?} twin that never preempts: {twin:.2}");
        assert!(
            !no_worse(twin, shuttle),
            "{race:?}: the comparison let a twin that never preempts pass ({twin:.2})"
        );
    }
}

#[test]
fn pct_with_no_numbers_finds_each_race_in_no_more_executions_than_shuttle() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for race in [Race::Rmw, Race::Fig1b] {
        let k = measured_k(race);
        let sim = mean(|t| sim_first_failure(race, Policy::Pct, t, k));
        let shuttle = mean(|t| shuttle_first_failure(race, true, t));
        eprintln!("{race:?} pct depth 2 (k measured: {k}): executions to the first failure: simulator {sim:.2}, shuttle {shuttle:.2}");
        assert!(
            no_worse(sim, shuttle),
            "{race:?} pct: simulator {sim:.2} vs shuttle {shuttle:.2}"
        );
        let twin = mean(|t| sim_first_failure(race, Policy::Pct, t, 1_000_000));
        eprintln!("{race:?} twin with k = 1,000,000: {twin:.2}");
        assert!(
            !no_worse(twin, shuttle),
            "{race:?}: the comparison let PCT with k = 1,000,000 pass ({twin:.2})"
        );
    }
}
