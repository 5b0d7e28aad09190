//! The simulator's machinery: determinism, virtual time, policies, replay,
//! shrink, and each oracle next to its correct twin.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::clock::Clock;
use faultline::probe::{self, FaultKind, LockClass};
use faultline::sched::Scheduler;
use faultline::sim::{
    digest, shrink, Decision, Failure, FaultPlan, NodeConfig, Outcome, PolicyKind, Sim, SimConfig,
};
use faultline::sync::{Arc, Gate, Mutex, Semaphore};
use std::collections::BTreeSet;
use std::time::Duration;

/// Two tasks each increment a shared counter with a read, an await, and a
/// write: a lost update unless the read-modify-write is gated.
fn rmw(cfg: SimConfig, gated: bool) -> Outcome {
    let sim = Sim::new(cfg);
    let h = sim.main_handle();
    sim.run(async move {
        let counter = Arc::new(Mutex::new(0u32));
        let gate = Arc::new(Gate::new(()));
        let mut joins = Vec::new();
        for _ in 0..2 {
            let (counter, gate) = (Arc::clone(&counter), Arc::clone(&gate));
            joins.push(h.spawn_on("incr", async move {
                let _g = if gated { Some(gate.lock().await) } else { None };
                let v = counter.with(|c| *c);
                h.yield_now().await;
                counter.with(|c| *c = v + 1);
            }));
        }
        for j in joins {
            j.await.unwrap();
        }
        let v = counter.with(|c| *c);
        assert_eq!(v, 2, "lost update: counter is {v}");
    })
}

fn seeded(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        ..Default::default()
    }
}

#[test]
fn random_policy_finds_the_lost_update_and_the_gate_fixes_it() {
    let failing: Vec<u64> = (0..200)
        .filter(|&s| !rmw(seeded(s), false).passed())
        .collect();
    assert!(!failing.is_empty(), "200 seeds never found the race");
    let f = rmw(seeded(failing[0]), false).failure.unwrap();
    assert!(
        matches!(&f, Failure::Panic { message, .. } if message.contains("lost update")),
        "{f}"
    );
    for s in 0..200 {
        let out = rmw(seeded(s), true);
        assert!(out.passed(), "seed {s}: {:?}", out.failure);
    }
}

#[test]
fn same_seed_same_trace_1000_seeds() {
    for s in 0..1000 {
        let a = rmw(seeded(s), false);
        let b = rmw(seeded(s), false);
        assert_eq!(a.trace_hash, b.trace_hash, "seed {s} is not deterministic");
        assert_eq!(a.decisions, b.decisions);
    }
}

#[test]
fn distinct_seeds_give_many_interleavings() {
    let hashes: BTreeSet<u64> = (0..200).map(|s| rmw(seeded(s), true).trace_hash).collect();
    assert!(hashes.len() >= 5, "only {} distinct traces", hashes.len());
    let d1 = digest((0..50).map(|s| rmw(seeded(s), true).trace_hash));
    let d2 = digest((0..50).map(|s| rmw(seeded(s), true).trace_hash));
    assert_eq!(d1, d2);
}

#[test]
fn replay_reproduces_and_tampering_is_reported() {
    let seed = (0..200).find(|&s| !rmw(seeded(s), false).passed()).unwrap();
    let orig = rmw(seeded(seed), false);
    let replay = |decisions: Vec<Decision>| SimConfig {
        policy: PolicyKind::Replay {
            decisions,
            strict: true,
        },
        ..Default::default()
    };
    let again = rmw(replay(orig.decisions.clone()), false);
    assert_eq!(again.failure, orig.failure);
    assert_eq!(again.trace_hash, orig.trace_hash);
    let mut tampered = orig.decisions.clone();
    let i = tampered
        .iter()
        .position(|d| matches!(d, Decision::Pick(_) | Decision::Auto))
        .unwrap();
    tampered[i] = Decision::Pick(999);
    let bad = rmw(replay(tampered), false);
    match bad.failure {
        Some(Failure::ReplayMismatch(m)) => {
            assert!(m.contains("no longer matches the code at step"), "{m}")
        }
        other => panic!("expected a replay mismatch, got {other:?}"),
    }
}

#[test]
fn shrink_keeps_failing_and_gets_no_longer() {
    let seed = (0..200).find(|&s| !rmw(seeded(s), false).passed()).unwrap();
    let orig = rmw(seeded(seed), false);
    let kind = orig.failure.as_ref().unwrap().kind();
    let s = shrink(&orig.decisions, 200, |cand| {
        let out = rmw(
            SimConfig {
                policy: PolicyKind::Replay {
                    decisions: cand.to_vec(),
                    strict: false,
                },
                ..Default::default()
            },
            false,
        );
        (out.failure.as_ref().map(Failure::kind) == Some(kind)).then_some(out.decisions)
    });
    assert!(s.choices_after <= s.choices_before);
    assert!(s.decisions.len() <= orig.decisions.len());
    let again = rmw(
        SimConfig {
            policy: PolicyKind::Replay {
                decisions: s.decisions.clone(),
                strict: true,
            },
            ..Default::default()
        },
        false,
    );
    assert_eq!(
        again.failure.map(|f| f.kind().to_string()),
        Some(kind.to_string())
    );
}

#[test]
fn virtual_time_jumps_to_timers() {
    let sim = Sim::new(seeded(1));
    let h = sim.main_handle();
    let out = sim.run(async move {
        let t0 = h.now_ns();
        h.sleep(Duration::from_secs(86_000)).await;
        assert!(h.now_ns() - t0 >= 86_000_000_000_000);
    });
    assert!(out.passed(), "{:?}", out.failure);
    assert!(out.steps < 10, "sleeping took {} polls", out.steps);
}

fn oom_toy(limit: u64) -> Outcome {
    let sim = Sim::new(SimConfig {
        mem_limit_bytes: Some(limit),
        ..seeded(3)
    });
    let h = sim.main_handle();
    sim.run(async move {
        let mut held = Vec::new();
        for _ in 0..10 {
            held.push(probe::charge("toy.chunk", 1_000));
            h.yield_now().await;
        }
    })
}

#[test]
fn memory_meter_fails_over_limit_and_passes_under() {
    match oom_toy(9_999).failure {
        Some(Failure::Oom { site, bytes, limit }) => {
            assert_eq!((site.as_str(), bytes, limit), ("toy.chunk", 10_000, 9_999))
        }
        other => panic!("expected OOM, got {other:?}"),
    }
    let ok = oom_toy(10_000);
    assert!(ok.passed(), "{:?}", ok.failure);
    assert_eq!(ok.mem_peak_bytes, 10_000);
}

const GATE: LockClass = LockClass {
    name: "toy.gate",
    rank: 1,
};
const STATE: LockClass = LockClass {
    name: "toy.state",
    rank: 2,
};

fn lock_toy(inverted: bool) -> Outcome {
    let sim = Sim::new(seeded(5));
    sim.run(async move {
        let gate = Gate::with_class((), GATE);
        let state = Mutex::with_class(0u8, STATE);
        if inverted {
            state.with(|_| drop(gate.try_lock()));
        } else {
            let _g = gate.lock().await;
            state.with(|s| *s += 1);
        }
    })
}

#[test]
fn lock_order_checker_fails_inversion_and_passes_declared_order() {
    match lock_toy(true).failure {
        Some(Failure::LockOrder { detail }) => {
            assert!(
                detail.contains("toy.gate") && detail.contains("toy.state"),
                "{detail}"
            );
            assert!(
                detail.contains("sim_core.rs"),
                "no acquisition site: {detail}"
            );
        }
        other => panic!("expected a lock-order failure, got {other:?}"),
    }
    let ok = lock_toy(false);
    assert!(ok.passed(), "{:?}", ok.failure);
}

fn deadlock_toy(deadlock: bool) -> Outcome {
    let sim = Sim::new(seeded(9));
    let h = sim.main_handle();
    sim.run(async move {
        let sem = Semaphore::new(1);
        let _p = sem.acquire().await;
        if deadlock {
            let _q = sem.acquire().await;
        } else {
            h.sleep(Duration::from_millis(5)).await;
        }
    })
}

#[test]
fn deadlock_detection_fails_deadlock_and_passes_twin() {
    assert!(matches!(
        deadlock_toy(true).failure,
        Some(Failure::Deadlock { .. })
    ));
    let ok = deadlock_toy(false);
    assert!(ok.passed(), "{:?}", ok.failure);
}

#[test]
fn pct_policy_runs_and_is_deterministic() {
    let pct = |s| SimConfig {
        seed: s,
        policy: PolicyKind::Pct {
            depth: 2,
            expected_steps: 10,
        },
        ..Default::default()
    };
    let found = (0..100).filter(|&s| !rmw(pct(s), false).passed()).count();
    assert!(found > 0, "PCT never found the lost update in 100 runs");
    assert_eq!(rmw(pct(4), false).trace_hash, rmw(pct(4), false).trace_hash);
}

#[test]
fn faults_from_the_plan_strike_and_are_logged() {
    let mut plan = FaultPlan::none();
    plan.point_ppm.insert(FaultKind::Error, 1_000_000);
    let sim = Sim::new(SimConfig {
        faults: plan,
        ..seeded(2)
    });
    let out = sim.run(async {
        assert!(probe::buggify("toy.write", FaultKind::Error));
        assert!(!probe::buggify("toy.write", FaultKind::Latency));
    });
    assert!(out.passed(), "{:?}", out.failure);
    assert_eq!(out.fault_log.len(), 1);
    assert!(
        !probe::buggify("outside", FaultKind::Error),
        "no-op outside a sim"
    );
}

#[test]
fn crashed_node_restarts_and_paused_node_stalls() {
    let mut plan = FaultPlan::none();
    plan.crashes = 1;
    plan.pauses = 1;
    plan.pause_ns_max = 2_000_000_000;
    plan.horizon_ns = 10_000_000_000;
    let boots = Arc::new(Mutex::new(0u32));
    let mut sim = Sim::new(SimConfig {
        faults: plan,
        ..seeded(11)
    });
    let b2 = Arc::clone(&boots);
    let worker = sim.add_node(
        "worker",
        NodeConfig {
            faulty: true,
            ..Default::default()
        },
        Some(std::rc::Rc::new(move |h: faultline::sim::SimHandle| {
            b2.with(|b| *b += 1);
            h.spawn_on("tick", async move {
                loop {
                    h.sleep(Duration::from_millis(100)).await;
                }
            });
        })),
    );
    let _ = worker;
    let main = sim.main_handle();
    let out = sim.run(async move { main.sleep(Duration::from_secs(20)).await });
    assert!(out.passed(), "{:?}", out.failure);
    assert_eq!(boots.with(|b| *b), 2, "booted once, restarted once");
    assert_eq!(out.fault_log.len(), 3, "{:?}", out.fault_log);
}

#[test]
fn blocking_pool_counts_threads_and_declared_waits() {
    let sim = Sim::new(SimConfig {
        threads_max: Some(2),
        ..seeded(1)
    });
    let h = sim.main_handle();
    let out = sim.run(async move {
        let t0 = h.now_ns();
        let mut joins = Vec::new();
        for _ in 0..4 {
            joins.push(h.spawn_blocking("io", Box::new(|| probe::blocking_wait(1_000_000_000))));
        }
        for j in joins {
            j.await.unwrap();
        }
        let took = h.now_ns() - t0;
        assert!(
            took >= 2_000_000_000,
            "4 waits of 1 s on 2 threads took {took} ns"
        );
    });
    assert!(out.passed(), "{:?}", out.failure);
    assert_eq!(out.threads_peak, 2);
}

#[test]
fn a_crash_while_down_does_not_boot_a_second_instance() {
    // Two crashes drawn within one downtime: the second strikes a node that
    // is already down; booting twice would run two instances of one process.
    for seed in 0..50 {
        let mut plan = FaultPlan::none();
        plan.crashes = 2;
        plan.downtime_ns = 5_000_000_000;
        plan.horizon_ns = 1_000_000_000;
        let boots = Arc::new(Mutex::new(0u32));
        let mut sim = Sim::new(SimConfig {
            faults: plan,
            ..seeded(seed)
        });
        let b2 = Arc::clone(&boots);
        let cfg = NodeConfig {
            faulty: true,
            ..Default::default()
        };
        sim.add_node(
            "worker",
            cfg,
            Some(std::rc::Rc::new(move |_h: faultline::sim::SimHandle| {
                b2.with(|b| *b += 1);
            })),
        );
        let main = sim.main_handle();
        let out = sim.run(async move { main.sleep(Duration::from_secs(20)).await });
        assert!(out.passed(), "{:?}", out.failure);
        assert_eq!(
            boots.with(|b| *b),
            2,
            "seed {seed}: booted {} times",
            boots.with(|b| *b)
        );
    }
}

#[test]
fn plan_faults_reach_a_faulty_sink_in_the_simulator_only() {
    use faultline::sink::{FaultySink, MemorySink, PlanFaults, Sink, SinkErrorKind};
    use faultline::sync::DynArc;
    let mut plan = FaultPlan::none();
    plan.point_ppm.insert(FaultKind::Unavailable, 1_000_000);
    let sim = Sim::new(SimConfig {
        faults: plan,
        ..seeded(4)
    });
    let h = sim.main_handle();
    let out = sim.run(async move {
        let faults = DynArc::new(PlanFaults::new(
            "toy.sink",
            Duration::from_secs(5),
            100,
            2_000,
        ));
        let sink = FaultySink::new(Arc::new(MemorySink::default()), DynArc::new(h), faults);
        let err = sink.write(vec![1u8]).await.unwrap_err();
        assert!(
            matches!(err.kind, SinkErrorKind::Unavailable { .. }),
            "{err}"
        );
        assert_eq!(err.batch, vec![1]);
    });
    assert!(out.passed(), "{:?}", out.failure);
    assert_eq!(out.fault_log.len(), 1);
    // Outside the simulator the same sink never faults.
    let faults = DynArc::new(PlanFaults::new(
        "toy.sink",
        Duration::from_secs(5),
        100,
        2_000,
    ));
    let clock = faultline::clock::ManualClock::new(0);
    let mem = Arc::new(MemorySink::default());
    let sink = FaultySink::new(Arc::clone(&mem), DynArc::new(clock), faults);
    faultline::sync::block_on(sink.write(vec![2u8])).unwrap();
    assert_eq!(mem.written(), vec![2]);
}

fn metrics_toy(record: bool) -> Outcome {
    let sim = Sim::new(seeded(11));
    let h = sim.main_handle();
    sim.run(async move {
        for i in 0..5u32 {
            h.sleep(Duration::from_millis(10)).await;
            if record {
                faultline::sim::metric_add("toy.requests", 1.0);
                faultline::sim::metric_max("toy.depth_peak", f64::from(i % 3));
                faultline::sim::sample("toy.depth", f64::from(i));
            }
        }
    })
}

#[test]
fn scenario_metrics_reach_the_outcome_without_changing_the_run() {
    let with = metrics_toy(true);
    let without = metrics_toy(false);
    assert!(with.passed() && without.passed());
    assert_eq!(
        with.trace_hash, without.trace_hash,
        "metrics steered the run"
    );
    assert_eq!(with.metrics.get("toy.requests"), Some(5.0));
    assert_eq!(with.metrics.get("toy.depth_peak"), Some(2.0));
    let depth = &with.metrics.series["toy.depth"];
    assert_eq!(depth.len(), 5);
    assert_eq!(depth[0].1, 0.0);
    assert!(
        depth[0].0 >= 10_000_000,
        "samples carry virtual time since start"
    );
    assert!(without.metrics.values.is_empty());
    // Outside a simulation, recording is a no-op.
    faultline::sim::metric_add("toy.requests", 1.0);
}
