//! Scenario-level speed, each group comparing inside one run.
//!
//! * `oom_hour`: one simulated hour of the asset service (fixed variant)
//!   under a Poisson load of 500 requests/s (1.8 M requests: nine in ten
//!   for existing files, the rest small on-demand creations). Throughput is
//!   virtual seconds, so criterion's `elem/s` *is* the virtual-to-wall
//!   speed-up (target >= 1,000x: one hour in under 3.6 s).
//! * `store_race_sweep`: seeds per second of the append-retention sweep,
//!   pre-fix and fixed side by side (100 seeds per iteration, random
//!   policy, the same configuration `faultline run` uses).
//! * `fixed_sweeps`: seeds per second of every registered scenario's fixed
//!   variant (`SWEEP_SEEDS` seeds per iteration, random policy, as
//!   `faultline run S --seeds ..` runs them): the explorer's runs/s.
//!   Compared across commits with `scripts/bench-compare` baselines.
//! * `sweep_jobs`: one sweep (`JOBS_SEEDS` seeds of a fixed variant, as
//!   `faultline run S --seeds 0..N --jobs J` runs it) on one thread and on
//!   two (issue 20: "close to twice the seeds per second" on these 2-core
//!   machines); the two reports are asserted equal, digest included.
//!
//! Run: `cargo bench -p faultline-sims --bench scenarios` (release build of
//! the workspace; no DuckDB work happens in it).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use faultline::admission::load::{self, ItemBytes, Shape};
use faultline::sim::SimConfig;
use faultline::sync::DynArc;
use faultline_sims::runner::{run_seed, sweep as run_sweep, PolicySpec, SweepSpec};
use faultline_sims::scenarios::subtree_oom::{run_load, service_config};
use faultline_sims::seeds::{SeedRange, Shard};
use faultline_sims::{find, registry, Scenario, FIXED};
use std::time::Duration;

/// Requests per second of the hour-long load.
const RATE_PER_S: f64 = 500.0;
/// The simulated span, seconds.
const HOUR_S: u64 = 3_600;
/// Seeds per iteration of the sweep group.
const SWEEP_SEEDS: u64 = 100;
/// Seeds per iteration of the jobs group.
const JOBS_SEEDS: u64 = 400;

fn hour_load() -> DynArc<[load::Arrival]> {
    let shape = Shape {
        key_prefix: "asset/".into(),
        exists_ppm: 900_000,
        items_min: 16,
        items_max: 64,
        item_bytes: ItemBytes::Fixed(300),
        client_bytes_per_s_min: 50_000_000,
        client_bytes_per_s_max: 100_000_000,
    };
    load::poisson(&shape, RATE_PER_S, HOUR_S * 1_000, 7).into()
}

fn oom_hour(c: &mut Criterion) {
    let load = hour_load();
    let cfg = SimConfig {
        seed: 7,
        steps_max: u64::MAX,
        time_max_ns: 2 * HOUR_S * 1_000_000_000,
        ..Default::default()
    };
    let check = run_load(service_config("fixed"), &load, cfg.clone());
    assert!(check.passed(), "the hour failed: {:?}", check.failure);
    println!(
        "oom_hour: {} requests, {:.0} s virtual, {} polls, peak memory {} B",
        load.len(),
        check.virtual_ns as f64 / 1e9,
        check.steps,
        check.mem_peak_bytes
    );
    let mut g = c.benchmark_group("oom_hour");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(60));
    g.throughput(Throughput::Elements(HOUR_S));
    g.bench_function("subtree_oom_fixed_1h_at_500rps", |b| {
        b.iter(|| run_load(service_config("fixed"), &load, cfg.clone()))
    });
    g.finish();
}

fn sweep(scenario: &dyn Scenario, variant: &str) -> u64 {
    (0..SWEEP_SEEDS)
        .filter(|&seed| {
            let run = run_seed(scenario, variant, seed, PolicySpec::Random).expect("variant");
            !run.outcome.passed()
        })
        .count() as u64
}

fn store_race_sweep(c: &mut Criterion) {
    let store = find("append-retention").expect("registered");
    let mut g = c.benchmark_group("store_race_sweep");
    g.throughput(Throughput::Elements(SWEEP_SEEDS));
    g.sample_size(10);
    for variant in ["pre-fix", "fixed"] {
        g.bench_function(variant, |b| b.iter(|| sweep(store.as_ref(), variant)));
    }
    g.finish();
}

fn fixed_sweeps(c: &mut Criterion) {
    let mut g = c.benchmark_group("fixed_sweeps");
    g.throughput(Throughput::Elements(SWEEP_SEEDS));
    g.sample_size(10);
    for scenario in registry() {
        assert_eq!(
            sweep(scenario.as_ref(), FIXED),
            0,
            "{} fixed failed",
            scenario.name()
        );
        g.bench_function(scenario.name(), |b| {
            b.iter(|| sweep(scenario.as_ref(), FIXED))
        });
    }
    g.finish();
}

/// Runs, failures and digest of `scenario`'s fixed variant over
/// `JOBS_SEEDS` seeds on `jobs` threads.
fn jobs_sweep(scenario: &dyn Scenario, jobs: usize) -> (u64, u64, u64) {
    let spec = SweepSpec {
        scenario,
        variant: FIXED,
        policy: PolicySpec::Random,
        range: SeedRange {
            start: 0,
            end: JOBS_SEEDS,
        },
        shard: Shard::ALL,
        fail_fast: false,
        time_budget_s: None,
        runs_min: 1,
        bug: None,
        keep_hashes: false,
        jobs,
        sync_switch: None,
    };
    let r = run_sweep(&spec, |_, _| {}).expect("the fixed variant exists");
    (r.runs, r.failures, r.digest)
}

fn sweep_jobs(c: &mut Criterion) {
    let mut g = c.benchmark_group("sweep_jobs");
    g.throughput(Throughput::Elements(JOBS_SEEDS));
    g.sample_size(10);
    for name in ["append-retention", "spend-flush"] {
        let scenario = find(name).expect("registered");
        let one = jobs_sweep(scenario.as_ref(), 1);
        assert_eq!(
            one,
            jobs_sweep(scenario.as_ref(), 2),
            "{name}: --jobs 2 differs"
        );
        for jobs in [1, 2] {
            g.bench_function(format!("{name}/jobs_{jobs}"), |b| {
                b.iter(|| jobs_sweep(scenario.as_ref(), jobs))
            });
        }
    }
    g.finish();
}

criterion_group!(
    benches,
    oom_hour,
    store_race_sweep,
    fixed_sweeps,
    sweep_jobs
);
criterion_main!(benches);
