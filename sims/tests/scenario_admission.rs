//! The asset service's scenarios, with the figures they measure printed:
//!
//! * `subtree-oom`: the pre-fix is OOM-killed on every seed; the incident's
//!   own fix is OOM-killed on every seed too under its load (with at most 4
//!   creations: the cap held, memory did not), holds under lighter
//!   transactions where the pre-fix dies, and reverts to the pre-fix with
//!   its knob at 0; fixed stays within its memory bound and answers 503s;
//!   the load edges of both load rows; the recorded load files.
//! * `retry-storm`: the naive client is caught by the conformance spec on
//!   every seed; both helper variants conform; a helper that drifts from
//!   the spec (7 attempts, `Retry-After` ignored, one attempt too many) is
//!   caught by it; jitter breaks up the retry waves.

mod support;

use faultline::admission::load::read_load;
use faultline::admission::AdmissionConfig;
use faultline::retry::{RetryFlaw, RetryPolicy};
use faultline::sim::{Failure, Outcome, SimConfig};
use faultline::sync::DynArc;
use faultline_sims::cliff::{self, CliffSpec, Edge};
use faultline_sims::runner::{config_for, run_seed, PolicySpec};
use faultline_sims::scenarios::retry_storm::{self, RetryStorm};
use faultline_sims::scenarios::subtree_oom::{
    light_ramp_load, run_load, service_config, SubtreeOom, CREATE_PERMITS, MEM_LIMIT_BYTES,
};
use faultline_sims::{find, Scenario};
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

fn is_oom(out: &Outcome) -> bool {
    matches!(out.failure, Some(Failure::Oom { .. }))
}

/// OOM on every seed; returns (OOM ms, creations at OOM, goroutines at OOM).
fn oom_on_every_seed(variant: &str, outs: &[Outcome]) -> [Vec<f64>; 3] {
    let mut figs: [Vec<f64>; 3] = Default::default();
    for (seed, out) in outs.iter().enumerate() {
        assert!(is_oom(out), "{variant} seed {seed}: {:?}", out.failure);
        assert!(out.mem_peak_bytes > MEM_LIMIT_BYTES);
        for (f, name) in
            figs.iter_mut()
                .zip(["oom_at_ms", "creations_at_oom", "goroutines_at_oom_sim"])
        {
            f.push(metric(out, name));
        }
    }
    let [at, creations, goroutines] = &figs;
    println!(
        "subtree-oom {variant}, {} seeds: OOM at ms {}; creations at OOM {}; goroutines at OOM {} (incident: 66,000)",
        outs.len(),
        spread(at),
        spread(creations),
        spread(goroutines)
    );
    figs
}

#[test]
fn subtree_oom_pre_fix_is_oom_killed_on_every_seed() {
    let outs = runs("subtree-oom", "pre-fix", 0..100, PolicySpec::Random);
    oom_on_every_seed("pre-fix", &outs);
    for out in &outs {
        assert_eq!(
            metric(out, "rejected_503"),
            0.0,
            "the pre-fix never 503s at once"
        );
        assert_eq!(metric(out, "permits_sim"), 0.0);
    }
}

/// The finding: the incident's fix holds creations to 4 and is still
/// OOM-killed under its load of data-carrier subtrees.
#[test]
fn subtree_oom_incident_fix_is_oom_killed_on_every_seed_with_at_most_4_creations() {
    let outs = runs("subtree-oom", "incident-fix", 0..100, PolicySpec::Random);
    let [_, creations, _] = oom_on_every_seed("incident-fix", &outs);
    assert!(creations.iter().all(|&c| c <= CREATE_PERMITS as f64));
    for out in &outs {
        assert_eq!(metric(out, "permits_sim"), 4.0);
    }
}

#[test]
fn subtree_oom_fixed_stays_bounded_and_says_503() {
    let outs = runs("subtree-oom", "fixed", 0..100, PolicySpec::Random);
    let (mut peak, mut rate, mut done) = (Vec::new(), Vec::new(), Vec::new());
    for (seed, out) in outs.iter().enumerate() {
        assert!(out.passed(), "seed {seed}: {:?}", out.failure);
        assert!(metric(out, "rejected_503") > 0.0, "seed {seed}: no 503");
        assert!(metric(out, "mem_peak_gib_sim") <= metric(out, "mem_bound_gib"));
        assert!(metric(out, "creations_peak") <= CREATE_PERMITS as f64);
        peak.push(metric(out, "mem_peak_gib_sim"));
        rate.push(metric(out, "rate_503_sim"));
        done.push(metric(out, "completion_rate"));
    }
    println!(
        "subtree-oom fixed, 100 seeds: peak GiB {} (bound {:.1}, limit 64); 503 rate {}; served within 20 rounds {}",
        spread(&peak),
        metric(&outs[0], "mem_bound_gib"),
        spread(&rate),
        spread(&done)
    );
}

#[test]
fn subtree_oom_under_pct_too() {
    let pct = PolicySpec::Pct {
        depth: 3,
        expected_steps: 0,
    };
    for variant in ["pre-fix", "incident-fix"] {
        for out in runs("subtree-oom", variant, 0..20, pct) {
            assert!(is_oom(&out), "{variant}: {:?}", out.failure);
        }
    }
    for out in runs("subtree-oom", "fixed", 0..20, pct) {
        assert!(out.passed(), "{:?}", out.failure);
    }
}

/// Runs `adm` on the lighter ramp of `seed` at twice the scenario's rate.
fn light(adm: AdmissionConfig, variant: &str, seed: u64) -> Outcome {
    let load: DynArc<_> = light_ramp_load(seed, 2.0).into();
    let cfg = config_for(&SubtreeOom, variant, seed, PolicySpec::Random);
    run_load(adm, &load, cfg)
}

/// What the incident's fix buys: under lighter transactions (about 15 KB
/// on average) at twice the scenario's rate the pre-fix is OOM-killed and
/// the incident's fix holds its memory, on every seed.
#[test]
fn under_lighter_transactions_the_incident_fix_holds_where_the_pre_fix_dies() {
    for seed in 0..10 {
        let pre = light(service_config("pre-fix"), "pre-fix", seed);
        let inc = light(service_config("incident-fix"), "incident-fix", seed);
        assert!(is_oom(&pre), "seed {seed}: {:?}", pre.failure);
        assert!(inc.passed(), "seed {seed}: {:?}", inc.failure);
        if seed == 0 {
            println!(
                "light load x2, seed 0: pre-fix OOM at {:.0} ms with {} creations; incident-fix peak {:.1} GiB",
                metric(&pre, "oom_at_ms"),
                metric(&pre, "creations_at_oom"),
                metric(&inc, "mem_peak_gib_sim")
            );
        }
    }
}

/// The incident's knob `asset_concurrency_subtree_data_create = 0` reverts
/// its fix to unlimited creations: on the lighter load, where the fix with
/// 4 permits holds, it is OOM-killed like the pre-fix, on every seed, with
/// more than 4 creations at the OOM.
#[test]
fn the_incident_knob_at_0_reproduces_the_pre_fix() {
    let knob0 = AdmissionConfig {
        create_permits_max: 0,
        ..service_config("incident-fix")
    };
    for seed in 0..10 {
        let off = light(knob0, "incident-fix", seed);
        let pre = light(service_config("pre-fix"), "pre-fix", seed);
        assert!(is_oom(&off), "seed {seed}: {:?}", off.failure);
        assert!(is_oom(&pre), "seed {seed}: {:?}", pre.failure);
        let c_off = metric(&off, "creations_at_oom");
        assert!(c_off > CREATE_PERMITS as f64, "seed {seed}: {c_off}");
        assert_eq!(metric(&off, "permits_sim"), 0.0);
        if seed == 0 {
            println!(
                "knob 0, light load x2, seed 0: OOM at {:.0} ms with {c_off} creations (pre-fix: {:.0} ms with {})",
                metric(&off, "oom_at_ms"),
                metric(&pre, "oom_at_ms"),
                metric(&pre, "creations_at_oom")
            );
        }
    }
}

/// The load rows' edges, as the explorer computes them.
#[test]
fn load_edges_of_the_admission_rows() {
    let spec = CliffSpec::default();
    for (scenario, buggy) in [
        ("subtree-oom", "pre-fix"),
        ("subtree-oom", "incident-fix"),
        ("retry-storm", "pre-fix"),
    ] {
        let s = find(scenario).unwrap();
        let bug = s.bug(buggy).unwrap();
        let fails = cliff::fails_from(s.as_ref(), buggy, Some(&bug), &spec).unwrap();
        let holds = cliff::holds_to(s.as_ref(), "fixed", &spec).unwrap();
        println!(
            "{scenario} {buggy}: {} ({} + {} runs)",
            cliff::load_cell(&fails, &holds),
            fails.runs,
            holds.runs
        );
        let (Edge::At(f), Edge::AboveMax(h)) = (fails.edge, holds.edge) else {
            panic!("{scenario}: {:?} / {:?}", fails.edge, holds.edge);
        };
        assert!(f < 1.0 && h > 1.0, "{scenario}: {f} / {h}");
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
        assert!(is_oom(&pre), "seed {seed}: {:?}", pre.failure);
        let fixed = replay_file("subtree-rush.jsonl", "fixed", seed);
        assert!(fixed.passed(), "seed {seed}: {:?}", fixed.failure);
        if seed == 0 {
            println!(
                "subtree-rush.jsonl: pre-fix OOM at {:.0} ms with {} creations; fixed peak {:.1} GiB, 503 rate {:.2}",
                metric(&pre, "oom_at_ms"),
                metric(&pre, "creations_at_oom"),
                metric(&fixed, "mem_peak_gib_sim"),
                metric(&fixed, "rate_503_sim")
            );
        }
    }
}

#[test]
fn the_recorded_steady_mix_holds_on_every_variant() {
    for variant in ["pre-fix", "incident-fix", "fixed"] {
        let out = replay_file("steady-mix.jsonl", variant, 1);
        assert!(out.passed(), "{variant}: {:?}", out.failure);
        assert_eq!(metric(&out, "completion_rate"), 1.0, "{variant}");
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
        "goroutines_at_oom_incident = 66000",
        "goroutines_at_oom_sim",
        "mem_limit_gib_incident = 64",
        "mem_peak_gib_sim",
        "permits_incident = 4",
        "rate_503_sim",
        "completion_rate",
    ] {
        assert!(ran.stdout.contains(name), "no {name} in:\n{}", ran.stdout);
    }
    let mem = std::fs::read_to_string(csv.join("subtree-oom-pre-fix-3-mem_bytes.csv")).unwrap();
    let rows: Vec<&str> = mem.lines().collect();
    assert_eq!(rows[0], "t_ms,mem_bytes");
    assert!(rows.len() > 20, "{} rows", rows.len());
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
fn retry_storm_naive_client_is_caught_by_the_spec_on_every_seed() {
    let bug = RetryStorm.bug("pre-fix").unwrap();
    for (seed, out) in runs("retry-storm", "pre-fix", 0..100, PolicySpec::Random)
        .iter()
        .enumerate()
    {
        let f = out
            .failure
            .as_ref()
            .unwrap_or_else(|| panic!("seed {seed} missed"));
        assert!(bug.signalled_by(f), "seed {seed}: {f}");
        if seed == 0 {
            println!("retry-storm pre-fix seed 0: {f}");
        }
    }
}

/// A helper that drifts from the incident's rules is caught by the spec,
/// whose constants are its own (not the helper's defaults).
#[test]
fn a_helper_drifting_from_the_spec_is_caught() {
    let seven = RetryPolicy {
        attempts_max: 7,
        ..RetryPolicy::default()
    };
    let cases = [
        (seven, RetryFlaw::None, "invariant:retry-attempts"),
        (
            RetryPolicy::default(),
            RetryFlaw::IgnoresRetryAfter,
            "invariant:retry-after-ignored",
        ),
        (
            RetryPolicy::default(),
            RetryFlaw::OneAttemptTooMany,
            "invariant:retry-attempts",
        ),
    ];
    for (policy, flaw, oracle) in cases {
        let cfg = config_for(&RetryStorm, "fixed", 0, PolicySpec::Random);
        let out = retry_storm::run_with_helper(policy, flaw, cfg, retry_storm::PEERS);
        let f = out
            .failure
            .unwrap_or_else(|| panic!("{policy:?} {flaw:?} not caught"));
        assert!(f.fired(oracle), "{policy:?} {flaw:?}: {f}");
        println!(
            "caught {flaw:?} (attempts_max {}): {f}",
            policy.attempts_max
        );
    }
}

#[test]
fn retry_storm_with_and_without_jitter_conforms_and_jitter_breaks_up_the_waves() {
    let mut rows = Vec::new();
    for variant in ["fixed", "fixed-jitter"] {
        let outs = runs("retry-storm", variant, 0..100, PolicySpec::Random);
        let (mut amp, mut wave, mut served) = (Vec::new(), Vec::new(), Vec::new());
        for (seed, out) in outs.iter().enumerate() {
            assert!(out.passed(), "{variant} seed {seed}: {:?}", out.failure);
            amp.push(metric(out, "amplification"));
            wave.push(metric(out, "retry_wave_peak"));
            served.push(metric(out, "served"));
            assert!(!out.metrics.series["retries_per_10ms"].is_empty());
        }
        println!(
            "retry-storm {variant}, seeds 0..100: amplification {}; peak retry wave per 10 ms {}; served of 100 {}",
            spread(&amp),
            spread(&wave),
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
