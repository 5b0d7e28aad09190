//! Simulator executor throughput, measured against tokio in the same run.
//!
//! Group `sim_vs_tokio`: one workload, two executors, same process. `TASKS`
//! tasks each run `ITERS` iterations of: `yield_now().await`, every
//! `SLEEP_EVERY`-th iteration a short virtual sleep, then a `Gate`-protected
//! counter increment. The simulator runs it through `SimHandle` (random
//! policy, `poll_cost_ns = POLL_COST_NS`); tokio runs it on a current-thread
//! runtime with paused time. Both report `Throughput::Elements(worker
//! polls)`, so criterion prints polls/s for each and their ratio is the
//! answer (target: simulator >= 3x tokio). Both sides include setting up
//! their executor (`Sim::new` / runtime build) in each timed run; that is
//! well under 1% of a run of ~110k polls.
//!
//! Before timing, both workloads run once with every worker future wrapped
//! in a poll counter, and the simulator's `Outcome::steps` is checked
//! against the same count, so both sides are known to make the same polls.
//!
//! Group `sim_raw_polls`: simulated polls per second of a trivial workload
//! (tasks that only yield), for 1, 10 and 100 runnable tasks (issue 18's
//! targets: >= 40 M polls/s with 1 task, >= 25 M polls/s with 100).
//!
//! Group `sync_switch_cost`: the same two workloads in the default mode
//! and in sync-switch mode (`SimConfig::sync_switch`), in one run:
//! `yields` (tasks that only yield: the cost of polling on a coroutine
//! stack) and `mutex_sections` (each iteration a yield, then a read and a
//! write in two `Mutex::with` sections: every `with` is a switch point).
//! Throughput is worker iterations, so the ratio of the two modes' rates
//! is the mode's cost for the same work (it also makes more steps).
//!
//! Run: `cargo bench --no-default-features -p faultline --bench sim_executor`.

#[cfg(not(any(faultline_loom, faultline_shuttle)))]
mod benches {
    use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
    use faultline::sim::{Outcome, Sim, SimConfig};
    use faultline::sync::{Arc, Gate};
    use faultline::BoxFuture;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::task::{Context, Poll};
    use std::time::Duration;

    /// Concurrent tasks in the comparison workload.
    const TASKS: u64 = 100;
    /// Iterations per task.
    const ITERS: u64 = 1_000;
    /// Every this many iterations, a task also sleeps.
    const SLEEP_EVERY: u64 = 10;
    /// The virtual sleep.
    const SLEEP: Duration = Duration::from_millis(1);
    /// Virtual CPU time the simulator charges per poll.
    const POLL_COST_NS: u64 = 1_000;

    /// Polls one worker task makes: the first poll, one more after each
    /// yield and one more after each sleep (the last one returns `Ready`).
    fn polls_per_task(iters: u64, sleep_every: u64) -> u64 {
        1 + iters + iters / sleep_every
    }

    /// Worker polls of the comparison workload (the main / joining task is
    /// not counted on either side).
    fn expected_polls() -> u64 {
        TASKS * polls_per_task(ITERS, SLEEP_EVERY)
    }

    fn sim_config() -> SimConfig {
        SimConfig {
            poll_cost_ns: POLL_COST_NS,
            steps_max: u64::MAX,
            ..Default::default()
        }
    }

    /// Counts the polls of the future it wraps (only in the check run, never
    /// while timing).
    struct Counted {
        fut: BoxFuture<()>,
        polls: &'static AtomicU64,
    }

    impl Future for Counted {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            self.fut.as_mut().poll(cx)
        }
    }

    static SIM_POLLS: AtomicU64 = AtomicU64::new(0);
    static TOKIO_POLLS: AtomicU64 = AtomicU64::new(0);

    /// The comparison workload on the simulator.
    fn sim_workload(count: bool) -> Outcome {
        let sim = Sim::new(sim_config());
        let h = sim.main_handle();
        let out = sim.run(async move {
            let gate = Arc::new(Gate::new(0u64));
            let mut joins = Vec::with_capacity(TASKS as usize);
            for _ in 0..TASKS {
                let gate = Arc::clone(&gate);
                let worker = async move {
                    for i in 1..=ITERS {
                        h.yield_now().await;
                        if i % SLEEP_EVERY == 0 {
                            h.sleep(SLEEP).await;
                        }
                        *gate.lock().await += 1;
                    }
                };
                joins.push(if count {
                    h.spawn_on(
                        "worker",
                        Counted {
                            fut: Box::pin(worker),
                            polls: &SIM_POLLS,
                        },
                    )
                } else {
                    h.spawn_on("worker", worker)
                });
            }
            for j in joins {
                j.await.expect("worker failed");
            }
            assert_eq!(*gate.lock().await, TASKS * ITERS);
        });
        assert!(out.passed(), "simulated workload failed: {:?}", out.failure);
        out
    }

    /// The comparison workload on tokio's current-thread runtime, paused
    /// time.
    fn tokio_workload(count: bool) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("tokio runtime");
        rt.block_on(async {
            let gate = Arc::new(Gate::new(0u64));
            let mut joins = Vec::with_capacity(TASKS as usize);
            for _ in 0..TASKS {
                let gate = Arc::clone(&gate);
                let worker = async move {
                    for i in 1..=ITERS {
                        tokio::task::yield_now().await;
                        if i % SLEEP_EVERY == 0 {
                            tokio::time::sleep(SLEEP).await;
                        }
                        *gate.lock().await += 1;
                    }
                };
                // The baseline being measured is tokio's own spawn, so the
                // workspace ban on direct tokio spawns does not apply here.
                #[allow(clippy::disallowed_methods)]
                let join = if count {
                    tokio::task::spawn(Counted {
                        fut: Box::pin(worker),
                        polls: &TOKIO_POLLS,
                    })
                } else {
                    tokio::task::spawn(worker)
                };
                joins.push(join);
            }
            for j in joins {
                j.await.expect("worker failed");
            }
            assert_eq!(*gate.lock().await, TASKS * ITERS);
        });
    }

    /// Both executors make the same worker polls, and the simulator's step
    /// count is those polls plus at most one per join of the main task.
    fn check_same_polls() {
        let expected = expected_polls();
        SIM_POLLS.store(0, Ordering::Relaxed);
        let out = sim_workload(true);
        let sim_polls = SIM_POLLS.load(Ordering::Relaxed);
        assert_eq!(sim_polls, expected, "simulator worker polls");
        assert!(
            out.steps > expected && out.steps <= expected + TASKS + 1,
            "simulator steps {} vs {expected} expected worker polls (+ at most {} main polls)",
            out.steps,
            TASKS + 1
        );
        TOKIO_POLLS.store(0, Ordering::Relaxed);
        tokio_workload(true);
        let tokio_polls = TOKIO_POLLS.load(Ordering::Relaxed);
        assert_eq!(tokio_polls, expected, "tokio worker polls");
        eprintln!(
            "sim_vs_tokio: {TASKS} tasks x {ITERS} iterations; worker polls: sim {sim_polls}, \
             tokio {tokio_polls}; sim steps {} (main task included); virtual time {} ms",
            out.steps,
            out.virtual_ns / 1_000_000
        );
    }

    fn sim_vs_tokio(c: &mut Criterion) {
        check_same_polls();
        let mut g = c.benchmark_group("sim_vs_tokio");
        g.throughput(Throughput::Elements(expected_polls()));
        g.sample_size(20);
        g.bench_function("faultline_sim", |b| b.iter(|| sim_workload(false)));
        g.bench_function("tokio_current_thread_paused", |b| {
            b.iter(|| tokio_workload(false))
        });
        g.finish();
    }

    /// `tasks` tasks that only yield, `yields` times each; returns the
    /// run's steps.
    fn raw_yields(tasks: u64, yields: u64) -> u64 {
        let sim = Sim::new(sim_config());
        let h = sim.main_handle();
        let out = sim.run(async move {
            let mut joins = Vec::with_capacity(tasks as usize);
            for _ in 0..tasks {
                joins.push(h.spawn_on("yielder", async move {
                    for _ in 0..yields {
                        h.yield_now().await;
                    }
                }));
            }
            for j in joins {
                j.await.expect("yielder failed");
            }
        });
        assert!(out.passed(), "raw workload failed: {:?}", out.failure);
        out.steps
    }

    fn sim_raw_polls(c: &mut Criterion) {
        const TOTAL_YIELDS: u64 = 200_000;
        let mut g = c.benchmark_group("sim_raw_polls");
        g.sample_size(20);
        for tasks in [1u64, 10, 100] {
            let yields = TOTAL_YIELDS / tasks;
            let worker_polls = tasks * (yields + 1);
            let steps = raw_yields(tasks, yields);
            assert!(
                steps > worker_polls && steps <= worker_polls + tasks + 1,
                "raw: {steps} steps vs {worker_polls} worker polls"
            );
            g.throughput(Throughput::Elements(worker_polls));
            g.bench_with_input(BenchmarkId::new("yield_tasks", tasks), &tasks, |b, &t| {
                b.iter(|| raw_yields(t, yields))
            });
        }
        g.finish();
    }

    /// Workers in the sync-switch comparison, and iterations each.
    const SWITCH_TASKS: u64 = 10;
    const SWITCH_ITERS: u64 = 2_000;

    /// `SWITCH_TASKS` tasks, `SWITCH_ITERS` iterations each of a yield and,
    /// with `sections`, a read and a write of a shared counter in two
    /// `Mutex::with` sections; returns the run's steps.
    fn switch_workload(sync_switch: bool, sections: bool) -> u64 {
        let sim = Sim::new(SimConfig {
            sync_switch,
            ..sim_config()
        });
        let h = sim.main_handle();
        let out = sim.run(async move {
            let counter = Arc::new(faultline::sync::Mutex::new(0u64));
            let mut joins = Vec::with_capacity(SWITCH_TASKS as usize);
            for _ in 0..SWITCH_TASKS {
                let counter = Arc::clone(&counter);
                joins.push(h.spawn_on("worker", async move {
                    for _ in 0..SWITCH_ITERS {
                        h.yield_now().await;
                        if sections {
                            let v = counter.with(|c| *c);
                            counter.with(|c| *c = v + 1);
                        }
                    }
                }));
            }
            for j in joins {
                j.await.expect("worker failed");
            }
        });
        assert!(out.passed(), "switch workload failed: {:?}", out.failure);
        out.steps
    }

    fn sync_switch_cost(c: &mut Criterion) {
        let mut g = c.benchmark_group("sync_switch_cost");
        g.sample_size(20);
        g.throughput(Throughput::Elements(SWITCH_TASKS * SWITCH_ITERS));
        for (name, sections) in [("yields", false), ("mutex_sections", true)] {
            for (mode, on) in [("default", false), ("sync_switch", true)] {
                let steps = switch_workload(on, sections);
                eprintln!("sync_switch_cost/{name}/{mode}: {steps} steps per run");
                g.bench_with_input(BenchmarkId::new(name, mode), &on, |b, &on| {
                    b.iter(|| switch_workload(on, sections))
                });
            }
        }
        g.finish();
    }

    criterion_group!(benches, sim_vs_tokio, sim_raw_polls, sync_switch_cost);
}

#[cfg(not(any(faultline_loom, faultline_shuttle)))]
criterion::criterion_main!(benches::benches);

/// Model-check builds (loom, shuttle) have no simulator: nothing to run.
#[cfg(any(faultline_loom, faultline_shuttle))]
fn main() {}
