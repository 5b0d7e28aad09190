//! Sync-switch mode: synchronous sections as switch points. Two tasks
//! read-modify-write a counter in two critical sections with no `.await`
//! between: a lost update only if the other task runs in the gap, which
//! the default mode never lets happen and sync-switch mode does.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::sim::{digest, Decision, Failure, Outcome, PolicyKind, Sim, SimConfig};
use faultline::sync::{Arc, Mutex, Ordering};

/// `tasks` tasks each: read under the lock, release, write under the lock
/// (no `.await` between; `atomic`: one section instead).
fn sync_rmw(cfg: SimConfig, tasks: usize, atomic: bool) -> Outcome {
    let sim = Sim::new(cfg);
    let h = sim.main_handle();
    sim.run(async move {
        let counter = Arc::new(Mutex::new(0usize));
        let mut joins = Vec::new();
        for _ in 0..tasks {
            let counter = Arc::clone(&counter);
            joins.push(h.spawn_on("incr", async move {
                if atomic {
                    counter.with(|c| *c += 1);
                } else {
                    let v = counter.with(|c| *c);
                    counter.with(|c| *c = v + 1);
                }
            }));
        }
        for j in joins {
            j.await.unwrap();
        }
        let v = counter.with(|c| *c);
        assert_eq!(v, tasks, "lost update: counter is {v}");
    })
}

fn cfg(seed: u64, sync_switch: bool) -> SimConfig {
    SimConfig {
        seed,
        sync_switch,
        ..Default::default()
    }
}

fn failing(seeds: u64, sync_switch: bool, atomic: bool) -> Vec<u64> {
    (0..seeds)
        .filter(|&s| !sync_rmw(cfg(s, sync_switch), 3, atomic).passed())
        .collect()
}

#[test]
fn default_mode_never_interleaves_synchronous_sections() {
    assert_eq!(failing(1_000, false, false), Vec::<u64>::new());
}

#[test]
fn sync_switch_mode_finds_the_gap_and_the_one_section_holds() {
    let found = failing(200, true, false);
    println!(
        "sync-switch: {} of 200 seeds lose an update; first {:?}",
        found.len(),
        found.first()
    );
    assert!(
        !found.is_empty(),
        "200 seeds never interleaved the sections"
    );
    let f = sync_rmw(cfg(found[0], true), 3, false).failure.unwrap();
    assert!(
        matches!(&f, Failure::Panic { message, .. } if message.contains("lost update")),
        "{f}"
    );
    assert_eq!(failing(1_000, true, true), Vec::<u64>::new());
}

#[test]
fn sync_switch_mode_under_pct_finds_the_gap() {
    let found: Vec<u64> = (0..200)
        .filter(|&s| {
            let c = SimConfig {
                policy: PolicyKind::Pct {
                    depth: 2,
                    expected_steps: 0,
                },
                ..cfg(s, true)
            };
            !sync_rmw(c, 3, false).passed()
        })
        .collect();
    println!("sync-switch, pct:2: {} of 200 seeds", found.len());
    assert!(!found.is_empty());
}

#[test]
fn a_sync_switch_failure_replays_exactly() {
    let seed = failing(200, true, false)[0];
    let first = sync_rmw(cfg(seed, true), 3, false);
    let replay = SimConfig {
        policy: PolicyKind::Replay {
            decisions: first.decisions.clone(),
            strict: true,
        },
        ..cfg(seed, true)
    };
    let again = sync_rmw(replay, 3, false);
    assert_eq!(again.trace_hash, first.trace_hash);
    assert_eq!(
        again.failure.map(|f| f.to_string()),
        first.failure.map(|f| f.to_string())
    );
    // In the default mode the same decisions do not fit (no switch points).
    let wrong_mode = SimConfig {
        policy: PolicyKind::Replay {
            decisions: first.decisions.clone(),
            strict: true,
        },
        ..cfg(seed, false)
    };
    let other = sync_rmw(wrong_mode, 3, false);
    assert_ne!(other.trace_hash, first.trace_hash);
    assert!(first
        .decisions
        .iter()
        .any(|d| matches!(d, Decision::Pick(_))));
}

#[test]
fn the_trace_hash_is_stable_per_mode_and_the_default_mode_is_unchanged() {
    for sync_switch in [false, true] {
        let a: Vec<u64> = (0..200)
            .map(|s| sync_rmw(cfg(s, sync_switch), 3, false).trace_hash)
            .collect();
        let b: Vec<u64> = (0..200)
            .map(|s| sync_rmw(cfg(s, sync_switch), 3, false).trace_hash)
            .collect();
        assert_eq!(
            digest(a.iter().copied()),
            digest(b.iter().copied()),
            "sync_switch {sync_switch}"
        );
    }
}

/// `tasks` tasks each increment a shim atomic counter by a `load` and a
/// `store` (no `.await` between; `atomic`: one `fetch_add` instead).
fn atomic_rmw(cfg: SimConfig, tasks: usize, atomic: bool) -> Outcome {
    let sim = Sim::new(cfg);
    let h = sim.main_handle();
    sim.run(async move {
        let counter = Arc::new(faultline::sync::AtomicUsize::new(0));
        let mut joins = Vec::new();
        for _ in 0..tasks {
            let counter = Arc::clone(&counter);
            joins.push(h.spawn_on("incr", async move {
                if atomic {
                    counter.fetch_add(1, Ordering::SeqCst);
                } else {
                    let v = counter.load(Ordering::SeqCst);
                    counter.store(v + 1, Ordering::SeqCst);
                }
            }));
        }
        for j in joins {
            j.await.unwrap();
        }
        let v = counter.load(Ordering::SeqCst);
        assert_eq!(v, tasks, "lost update: counter is {v}");
    })
}

/// The shim's atomics are switch points too: a load and a store with no
/// `.await` between lose an update in sync-switch mode (never in the
/// default mode), and one `fetch_add` holds in both.
#[test]
fn atomics_are_switch_points_in_sync_switch_mode_only() {
    let fails = |sync_switch: bool, atomic: bool| -> Vec<u64> {
        (0..300)
            .filter(|&s| !atomic_rmw(cfg(s, sync_switch), 3, atomic).passed())
            .collect()
    };
    assert_eq!(fails(false, false), Vec::<u64>::new(), "default mode");
    let found = fails(true, false);
    println!(
        "sync-switch: {} of 300 seeds lose an atomic update",
        found.len()
    );
    assert!(
        !found.is_empty(),
        "sync-switch mode never split a load from its store"
    );
    assert_eq!(
        fails(true, true),
        Vec::<u64>::new(),
        "fetch_add lost an update"
    );
}
