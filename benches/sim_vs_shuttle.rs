//! The simulator against shuttle on the same race programs
//! (`tests/support/races.rs`: a lost update through an await point, and
//! the PCT paper's Figure 1(b)), in one criterion run: executions per
//! second, `EXECUTIONS` per iteration, random against random and PCT
//! (depth 2) against PCT. Target: the simulator >= 3x shuttle. Both sides
//! are seeded; the simulator records its decisions and hashes its trace as
//! always. How many executions each needs to find the races is the test
//! `tests/sim_vs_shuttle.rs`.
//!
//! Run: `cargo bench -p faultline --bench sim_vs_shuttle`.

#[cfg(not(any(faultline_loom, faultline_shuttle)))]
#[path = "../tests/support/races.rs"]
mod races;

#[cfg(not(any(faultline_loom, faultline_shuttle)))]
mod benches {
    use super::races::{shuttle_program, sim_program, Race};
    use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
    use faultline::sim::{PctPolicy, PolicyKind, SimConfig};
    use shuttle::scheduler::{PctScheduler, RandomScheduler};
    use shuttle::{Config, Runner};

    /// Executions per timed iteration, on each side.
    const EXECUTIONS: u64 = 1_000;
    /// PCT's bug depth on both sides.
    const DEPTH: u32 = 2;

    fn shuttle_runs(race: Race, pct: bool) {
        let n = EXECUTIONS as usize;
        let run = move || shuttle_program(race);
        let done = if pct {
            Runner::new(
                PctScheduler::new_from_seed(7, DEPTH as usize, n),
                Config::new(),
            )
            .run(run)
        } else {
            Runner::new(RandomScheduler::new_from_seed(7, n), Config::new()).run(run)
        };
        assert_eq!(done, n);
    }

    /// `k` for PCT, measured once per race as a user with no numbers gets
    /// it (shuttle measures its own in its first iteration, inside the
    /// timed runs; ours is one run in a thousand, left out).
    fn sim_runs(race: Race, pct: Option<u64>) {
        for seed in 0..EXECUTIONS {
            let policy = match pct {
                Some(k) => PolicyKind::Pct {
                    depth: DEPTH,
                    expected_steps: k,
                },
                None => PolicyKind::Random,
            };
            sim_program(
                race,
                SimConfig {
                    seed,
                    policy,
                    ..Default::default()
                },
            );
        }
    }

    fn race_vs_shuttle(c: &mut Criterion) {
        let mut g = c.benchmark_group("race_vs_shuttle");
        g.throughput(Throughput::Elements(EXECUTIONS));
        g.sample_size(10);
        for race in [Race::Rmw, Race::Fig1b] {
            let k = PctPolicy::measure_steps(&SimConfig::default(), |cfg| sim_program(race, cfg));
            for pct in [false, true] {
                let what = format!("{race:?}-{}", if pct { "pct" } else { "random" });
                let sim_pct = pct.then_some(k);
                g.bench_with_input(BenchmarkId::new("faultline_sim", &what), &(), |b, ()| {
                    b.iter(|| sim_runs(race, sim_pct))
                });
                g.bench_with_input(BenchmarkId::new("shuttle", &what), &(), |b, ()| {
                    b.iter(|| shuttle_runs(race, pct))
                });
            }
        }
        g.finish();
    }

    criterion_group!(benches, race_vs_shuttle);
}

#[cfg(not(any(faultline_loom, faultline_shuttle)))]
criterion::criterion_main!(benches::benches);

/// Model-check builds (loom, shuttle) have no simulator: nothing to run.
#[cfg(any(faultline_loom, faultline_shuttle))]
fn main() {}
