//! Same seed, same build, same trace: every variant of every registered
//! scenario, under the random and the PCT policy, over seeds 0..200, is run
//! twice in this process (every seed's trace hash must agree) and once more
//! by the `faultline` binary in another process (its sweep digest must be
//! the digest of this process's hashes).

mod support;

use faultline::sim::digest;
use faultline_sims::explore::policies;
use faultline_sims::runner::{run_seed, PolicySpec};
use faultline_sims::{registry, Scenario};
use support::{faultline, scratch};

/// Seeds per scenario, variant and policy.
const SEEDS: u64 = 200;

/// `(scenario, variant, policy)` of every case.
fn cases() -> Vec<(&'static str, &'static str, usize)> {
    let mut out = Vec::new();
    for s in registry() {
        for &v in s.variants() {
            for p in 0..2 {
                out.push((s.name(), v, p));
            }
        }
    }
    out
}

fn hashes(s: &dyn Scenario, variant: &str, policy: PolicySpec) -> Vec<u64> {
    (0..SEEDS)
        .map(|seed| {
            run_seed(s, variant, seed, policy)
                .expect("a registered variant")
                .outcome
                .trace_hash
        })
        .collect()
}

/// Runs one case; returns a description of what differed, if anything.
fn check(dir: &std::path::Path, name: &str, variant: &str, p: usize) -> Option<String> {
    let s = faultline_sims::find(name).expect("registered");
    let policy = policies(s.as_ref())[p];
    let first = hashes(s.as_ref(), variant, policy);
    let second = hashes(s.as_ref(), variant, policy);
    if let Some(seed) = (0..SEEDS as usize).find(|&i| first[i] != second[i]) {
        return Some(format!(
            "{name} {variant} ({policy}): seed {seed} gave trace hash {:#018x}, then {:#018x}",
            first[seed], second[seed]
        ));
    }
    let mut args = vec!["run", name, "--variant", variant, "--seeds", "0..200"];
    if p == 1 {
        args.extend(["--policy", "pct"]);
    }
    let ran = faultline(dir, &args);
    let cli = ran.word_after("digest");
    let here = format!("{:#018x}", digest(first.iter().copied()));
    (cli != here)
        .then(|| format!("{name} {variant} ({policy}): this process digests {here}, the CLI {cli}"))
}

#[test]
fn every_scenario_variant_and_policy_replays_its_trace_in_and_across_processes() {
    let all = cases();
    let dir = scratch();
    let half = all.len().div_ceil(2);
    let differences: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = all
            .chunks(half)
            .map(|chunk| {
                let dir = dir.path();
                scope.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|&(s, v, p)| check(dir, s, v, p))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a worker"))
            .collect()
    });
    println!(
        "{} cases x {SEEDS} seeds: twice in process, once in another process",
        all.len()
    );
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
