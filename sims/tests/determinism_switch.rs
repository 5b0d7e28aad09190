//! Sync-switch mode is deterministic too: a few scenarios (variants that
//! take shim mutexes), random and PCT, seeds 0..200, run twice in this
//! process in the mode (every seed's trace hash must agree), once more by
//! `faultline run --sync-switch` in another process (same digest), and the
//! mode is seen to be on (its digests differ from the default mode's).
//!
//! Its own test binary: it sets `FAULTLINE_SYNC_SWITCH=1` for the whole
//! process (the scenarios' configs read it).

mod support;

use faultline::sim::digest;
use faultline_sims::explore::policies;
use faultline_sims::runner::run_seed;
use faultline_sims::Scenario;
use support::{faultline, scratch};

const SEEDS: u64 = 200;

/// `(scenario, variant)` cases.
const CASES: &[(&str, &str)] = &[
    ("append-retention", "fixed"),
    ("append-retention", "pre-fix"),
    ("spend-flush", "fixed"),
    ("toy-rmw", "fixed"),
];

fn hashes(s: &dyn Scenario, variant: &str, p: usize) -> Vec<u64> {
    let policy = policies(s)[p];
    (0..SEEDS)
        .map(|seed| {
            run_seed(s, variant, seed, policy)
                .expect("a registered variant")
                .outcome
                .trace_hash
        })
        .collect()
}

#[test]
fn sync_switch_mode_replays_its_traces_in_and_across_processes() {
    let dir = scratch();
    let mut differ_from_default = 0;
    for &(name, variant) in CASES {
        let s = faultline_sims::find(name).expect("registered");
        for p in 0..2 {
            // Each mode on a thread of its own: PCT's measured step count
            // is cached per thread by scenario and variant, not by mode.
            let run = |on: bool| {
                if on {
                    std::env::set_var("FAULTLINE_SYNC_SWITCH", "1");
                } else {
                    std::env::remove_var("FAULTLINE_SYNC_SWITCH");
                }
                std::thread::scope(|sc| {
                    sc.spawn(|| hashes(s.as_ref(), variant, p))
                        .join()
                        .expect("a sweep")
                })
            };
            let default = digest(run(false));
            let first = run(true);
            let second = run(true);
            assert_eq!(
                first, second,
                "{name} {variant} policy {p}: a seed's hash changed"
            );
            let here = digest(first.iter().copied());
            let mut args = vec![
                "run",
                name,
                "--variant",
                variant,
                "--seeds",
                "0..200",
                "--sync-switch",
            ];
            if p == 1 {
                args.extend(["--policy", "pct"]);
            }
            let cli = faultline(dir.path(), &args).word_after("digest");
            assert_eq!(
                cli,
                format!("{here:#018x}"),
                "{name} {variant} policy {p}: CLI digest"
            );
            if here != default {
                differ_from_default += 1;
            }
            println!(
                "{name} {variant} policy {p}: default {default:#018x}, sync-switch {here:#018x}"
            );
        }
    }
    assert!(
        differ_from_default > 0,
        "sync-switch mode changed no digest: the mode is not on"
    );
}
