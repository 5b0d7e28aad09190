//! The asset service's scenarios: `subtree-oom` (pre-fix OOM-killed on
//! every seed, fixed bounded, answering 503s and serving everyone, also on
//! the recorded load files) and `retry-storm` (pre-fix caught, both fixed
//! variants hold, jitter breaks up the synchronized retry waves). Prints
//! the figures it measures.

mod support;

use faultline::admission::load::read_load;
use faultline::sim::{Failure, Outcome, SimConfig};
use faultline_sims::find;
use faultline_sims::runner::{config_for, run_seed, PolicySpec};
use faultline_sims::scenarios::subtree_oom::{
    run_load, service_config, SubtreeOom, CREATE_PERMITS, MEM_LIMIT_BYTES,
};
use std::path::Path;
use support::{faultline, scratch};

fn metric(out: &Outcome, name: &str) -> f64 {
    out.metrics
        .get(name)
        .unwrap_or_else(|| panic!("no metric {name}: {:?}", out.metrics.values))
}

fn runs(
    scenario: &str,
    variant: &str,
    seeds: std::ops::Range<u64>,
    policy: PolicySpec,
) -> Vec<Outcome> {
    let s = find(scenario).unwrap();
    seeds
        .map(|seed| run_seed(s.as_ref(), variant, seed, policy).unwrap().outcome)
        .collect()
}

fn spread(values: &[f64]) -> String {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    format!(
        "min {:.2}, median {:.2}, max {:.2}",
        v[0],
        v[v.len() / 2],
        v[v.len() - 1]
    )
}

#[test]
fn subtree_oom_pre_fix_is_oom_killed_on_every_seed() {
    let outs = runs("subtree-oom", "pre-fix", 0..100, PolicySpec::Random);
    let (mut at_ms, mut creations) = (Vec::new(), Vec::new());
    for (seed, out) in outs.iter().enumerate() {
        assert!(
            matches!(out.failure, Some(Failure::Oom { .. })),
            "seed {seed}: {:?}",
            out.failure
        );
        assert!(out.mem_peak_bytes > MEM_LIMIT_BYTES);
        at_ms.push(metric(out, "oom_at_ms"));
        creations.push(metric(out, "creations_at_oom"));
        assert_eq!(
            metric(out, "rejected_503"),
            0.0,
            "the pre-fix service never says 503"
        );
    }
    assert!(creations.iter().all(|&c| c > CREATE_PERMITS as f64));
    println!(
        "subtree-oom pre-fix, seeds 0..100: OOM at virtual ms: {}",
        spread(&at_ms)
    );
    println!(
        "subtree-oom pre-fix, seeds 0..100: concurrent creations at OOM: {}",
        spread(&creations)
    );
}

#[test]
fn subtree_oom_fixed_stays_bounded_says_503_and_serves_everyone() {
    let outs = runs("subtree-oom", "fixed", 0..100, PolicySpec::Random);
    let (mut peak, mut rate, mut rounds) = (Vec::new(), Vec::new(), Vec::new());
    for (seed, out) in outs.iter().enumerate() {
        assert!(out.passed(), "seed {seed}: {:?}", out.failure);
        assert_eq!(metric(out, "completion_rate"), 1.0, "seed {seed}");
        assert!(
            metric(out, "rejected_503") > 0.0,
            "seed {seed}: no 503 at all"
        );
        assert!(metric(out, "peak_mem_mib") <= metric(out, "mem_bound_mib"));
        assert!(metric(out, "creations_peak") <= CREATE_PERMITS as f64);
        peak.push(metric(out, "peak_mem_mib"));
        rate.push(metric(out, "rate_503"));
        rounds.push(metric(out, "caller_rounds_max"));
    }
    println!(
        "subtree-oom fixed, seeds 0..100: peak MiB {} (bound {:.0}, limit {})",
        spread(&peak),
        metric(&outs[0], "mem_bound_mib"),
        MEM_LIMIT_BYTES >> 20
    );
    println!(
        "subtree-oom fixed, seeds 0..100: 503 rate {}",
        spread(&rate)
    );
    println!(
        "subtree-oom fixed, seeds 0..100: helper rounds a caller needed {}",
        spread(&rounds)
    );
}

#[test]
fn subtree_oom_under_pct_too() {
    let pct = PolicySpec::Pct {
        depth: 3,
        expected_steps: 0,
    };
    for out in runs("subtree-oom", "pre-fix", 0..20, pct) {
        assert!(
            matches!(out.failure, Some(Failure::Oom { .. })),
            "{:?}",
            out.failure
        );
    }
    for out in runs("subtree-oom", "fixed", 0..20, pct) {
        assert!(out.passed(), "{:?}", out.failure);
    }
}

fn replay_file(name: &str, variant: &str, seed: u64) -> Outcome {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("loads")
        .join(name);
    let load = read_load(&path).unwrap().into();
    let mut cfg: SimConfig = config_for(&SubtreeOom, variant, seed, PolicySpec::Random);
    cfg.faults = faultline::sim::FaultPlan::none();
    run_load(service_config(variant), &load, cfg)
}

#[test]
fn the_recorded_rush_kills_the_pre_fix_service_only() {
    for seed in 0..10 {
        let pre = replay_file("subtree-rush.jsonl", "pre-fix", seed);
        assert!(
            matches!(pre.failure, Some(Failure::Oom { .. })),
            "seed {seed}: {:?}",
            pre.failure
        );
        let fixed = replay_file("subtree-rush.jsonl", "fixed", seed);
        assert!(fixed.passed(), "seed {seed}: {:?}", fixed.failure);
        assert_eq!(metric(&fixed, "completion_rate"), 1.0);
        if seed == 0 {
            println!(
                "subtree-rush.jsonl: pre-fix OOM at {:.0} ms with {} creations; fixed peak {:.0} MiB, 503 rate {:.2}",
                metric(&pre, "oom_at_ms"),
                metric(&pre, "creations_at_oom"),
                metric(&fixed, "peak_mem_mib"),
                metric(&fixed, "rate_503")
            );
        }
    }
}

#[test]
fn the_recorded_steady_mix_holds_on_both() {
    for variant in ["pre-fix", "fixed"] {
        let out = replay_file("steady-mix.jsonl", variant, 1);
        assert!(out.passed(), "{variant}: {:?}", out.failure);
        assert_eq!(metric(&out, "completion_rate"), 1.0);
    }
}

#[test]
fn run_prints_the_figures_and_writes_memory_over_time_as_csv() {
    let dir = scratch();
    let csv = dir.path().join("csv");
    let csv_arg = csv.display().to_string();
    let ran = faultline(
        dir.path(),
        &[
            "run",
            "subtree_oom",
            "--variant",
            "pre-fix",
            "--seed",
            "3",
            "--csv",
            &csv_arg,
        ],
    );
    assert_eq!(ran.code, 1, "{}{}", ran.stdout, ran.stderr);
    for name in [
        "out of memory",
        "mem_peak_bytes",
        "oom_at_ms",
        "creations_at_oom",
        "rejected_503",
        "completion_rate",
    ] {
        assert!(ran.stdout.contains(name), "no {name} in:\n{}", ran.stdout);
    }
    let mem = std::fs::read_to_string(csv.join("subtree-oom-pre-fix-3-mem_bytes.csv")).unwrap();
    let rows: Vec<&str> = mem.lines().collect();
    assert_eq!(rows[0], "t_ms,mem_bytes");
    assert!(rows.len() > 100, "{} rows", rows.len());
    let last: f64 = rows[rows.len() - 1]
        .split(',')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        last > MEM_LIMIT_BYTES as f64,
        "the last sample is the OOM: {last}"
    );
    assert!(csv.join("subtree-oom-pre-fix-3-creations.csv").exists());
}

#[test]
fn retry_storm_pre_fix_is_caught_on_every_seed() {
    for (seed, out) in runs("retry-storm", "pre-fix", 0..100, PolicySpec::Random)
        .iter()
        .enumerate()
    {
        let f = out
            .failure
            .as_ref()
            .unwrap_or_else(|| panic!("seed {seed} missed"));
        let text = f.to_string();
        assert!(
            text.contains("> attempts_max x requests") || text.contains("retried after a 5"),
            "seed {seed}: {text}"
        );
    }
}

#[test]
fn retry_storm_with_and_without_jitter_holds_and_jitter_breaks_up_the_waves() {
    let mut rows = Vec::new();
    for variant in ["fixed", "fixed-jitter"] {
        let outs = runs("retry-storm", variant, 0..100, PolicySpec::Random);
        let (mut amp, mut wave, mut served) = (Vec::new(), Vec::new(), Vec::new());
        for (seed, out) in outs.iter().enumerate() {
            assert!(out.passed(), "{variant} seed {seed}: {:?}", out.failure);
            assert!(metric(out, "attempts") <= 6.0 * metric(out, "requests"));
            amp.push(metric(out, "amplification"));
            wave.push(metric(out, "retry_wave_peak"));
            served.push(metric(out, "served"));
            assert!(!out.metrics.series["retries_per_10ms"].is_empty());
        }
        println!(
            "retry-storm {variant}, seeds 0..100: amplification {}",
            spread(&amp)
        );
        println!(
            "retry-storm {variant}, seeds 0..100: peak retry wave per 10 ms {}",
            spread(&wave)
        );
        println!(
            "retry-storm {variant}, seeds 0..100: served of 100 {}",
            spread(&served)
        );
        rows.push((wave, amp));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(
        mean(&rows[1].0) * 3.0 < mean(&rows[0].0),
        "jitter did not break up the waves"
    );
    assert!(
        mean(&rows[1].1) < mean(&rows[0].1),
        "jitter did not lower the amplification"
    );
}
