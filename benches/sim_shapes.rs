//! Simulator speed on three workload shapes, each measured against tokio's
//! current-thread runtime with paused time inside the same criterion run
//! (the figure is the ratio), with recording and the trace hash on.
//!
//! * `task_scaling`: the same total polls (`SCALING_POLLS`) spread over 10,
//!   100, 1,000 and 10,000 tasks; every fourth step of a task is a short
//!   sleep (1-4 ms), the others yields. The simulator's per-poll time must
//!   not grow with the task count (target: at 10,000 tasks within 1.5x of
//!   10), and at 10,000 tasks (200 steps each: the timer queue and the
//!   ready set are large) it must run >= 3x tokio.
//! * `gate_pingpong`: `PAIRS` pairs of tasks hand their pair's `Gate` back
//!   and forth: take it, yield while the partner is not queued for it yet,
//!   release it (the FIFO gate hands it straight to the queued partner,
//!   which is woken), so every acquisition after the first is a hand-off on
//!   both executors. Throughput is acquisitions (the same on both sides);
//!   the polls each side needed for them are printed (a random schedule
//!   needs more yields than tokio's FIFO one). Target >= 3x tokio. The
//!   ping-pong over Gate hand-offs.
//! * `channel_pingpong`: `PAIRS` pairs of tasks over two bounded
//!   `faultline::sync::mpsc` channels of capacity 1: the pinger sends a
//!   number and awaits the reply, the ponger answers with the number plus
//!   one, `ROUNDS` times. Every message wakes the partner, on both
//!   executors alike (the same channel on both sides, so the ratio is the
//!   executors'). Throughput is messages. Target >= 3x tokio.
//!
//! Before timing (unless `FAULTLINE_BENCH_CHECK=0`, for profiling), every
//! workload runs once on each side with its worker
//! futures wrapped in a poll counter: in `task_scaling` both sides must make
//! exactly the same worker polls (asserted), so `Throughput::Elements(polls)`
//! is comparable.
//!
//! Run: `cargo bench -p faultline --bench sim_shapes`.

#[cfg(not(any(faultline_loom, faultline_shuttle)))]
mod benches {
    use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
    use faultline::sim::{Sim, SimConfig, SimHandle};
    use faultline::sync::{mpsc, Arc, Gate};
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::task::{Context, Poll};
    use std::time::Duration;

    /// Worker polls of one `task_scaling` run, whatever the task count.
    const SCALING_POLLS: u64 = 2_000_000;
    /// Task counts of `task_scaling`.
    const SCALING_TASKS: [u64; 4] = [10, 100, 1_000, 10_000];
    /// Pairs in `gate_pingpong`.
    const PAIRS: u64 = 100;
    /// Hand-offs (iterations) per task in `gate_pingpong`.
    const ROUNDS: u64 = 2_000;

    fn sim_config() -> SimConfig {
        SimConfig {
            steps_max: u64::MAX,
            ..Default::default()
        }
    }

    /// Counts the polls of the future it wraps when `count` is set (check
    /// runs only; the timed runs pay one predictable branch, on both
    /// sides alike). Both sides spawn the concrete future type, as their
    /// users would: the simulator boxes it once, tokio keeps it in its
    /// task cell.
    struct Counted<F> {
        fut: F,
        count: bool,
    }

    static POLLS: AtomicU64 = AtomicU64::new(0);

    impl<F: Future<Output = ()>> Future for Counted<F> {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            // SAFETY: `fut` is structurally pinned: never moved out of the
            // pinned `Counted`, and `Counted` has no `Drop` that moves it.
            let this = unsafe { self.get_unchecked_mut() };
            if this.count {
                POLLS.fetch_add(1, Ordering::Relaxed);
            }
            // SAFETY: as above.
            unsafe { Pin::new_unchecked(&mut this.fut) }.poll(cx)
        }
    }

    /// The short sleep of task `t` at step `i`: 1-4 ms.
    fn nap(t: u64, i: u64) -> Duration {
        Duration::from_millis(1 + (t * 7 + i) % 4)
    }

    /// The worker of `task_scaling` on the simulator.
    async fn sim_worker(h: SimHandle, t: u64, steps: u64) {
        for i in 0..steps {
            if i % 4 == 3 {
                h.sleep(nap(t, i)).await;
            } else {
                h.yield_now().await;
            }
        }
    }

    /// The worker of `task_scaling` on tokio.
    async fn tokio_worker(t: u64, steps: u64) {
        for i in 0..steps {
            if i % 4 == 3 {
                tokio::time::sleep(nap(t, i)).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
    }

    /// One pair member of `gate_pingpong` on the simulator: the last
    /// round releases without waiting (the partner may be done).
    async fn sim_pinger(h: SimHandle, gate: Arc<Gate<u64>>) {
        for _ in 0..ROUNDS {
            let mut g = gate.lock().await;
            *g += 1;
            while gate.waiters() == 0 && *g < 2 * ROUNDS {
                h.yield_now().await;
            }
        }
    }

    /// One pair member of `gate_pingpong` on tokio.
    async fn tokio_pinger(gate: Arc<Gate<u64>>) {
        for _ in 0..ROUNDS {
            let mut g = gate.lock().await;
            *g += 1;
            while gate.waiters() == 0 && *g < 2 * ROUNDS {
                tokio::task::yield_now().await;
            }
        }
    }

    /// The pinger of `channel_pingpong`: sends, awaits the reply.
    async fn pinger(tx: mpsc::Sender<u64>, mut rx: mpsc::Receiver<u64>) {
        let mut n = 0;
        for _ in 0..ROUNDS {
            tx.send(n).await.expect("ponger gone");
            n = rx.recv().await.expect("ponger gone");
        }
        assert_eq!(n, ROUNDS, "a reply was lost or doubled");
    }

    /// The ponger of `channel_pingpong`: answers every number with the next.
    async fn ponger(mut rx: mpsc::Receiver<u64>, tx: mpsc::Sender<u64>) {
        while let Some(n) = rx.recv().await {
            tx.send(n + 1).await.expect("pinger gone");
        }
    }

    /// The futures of one `channel_pingpong` run, two per pair.
    fn channel_pairs(count: bool) -> Vec<Counted<Pin<Box<dyn Future<Output = ()> + Send>>>> {
        (0..PAIRS)
            .flat_map(|_| {
                let (ping_tx, ping_rx) = mpsc::channel(1);
                let (pong_tx, pong_rx) = mpsc::channel(1);
                let a: Pin<Box<dyn Future<Output = ()> + Send>> =
                    Box::pin(pinger(ping_tx, pong_rx));
                let b: Pin<Box<dyn Future<Output = ()> + Send>> =
                    Box::pin(ponger(ping_rx, pong_tx));
                [wrap(count, a), wrap(count, b)]
            })
            .collect()
    }

    fn wrap<F: Future<Output = ()>>(count: bool, fut: F) -> Counted<F> {
        Counted { fut, count }
    }

    /// Spawns every future of `workers` on a fresh simulator, joins them,
    /// and returns the run's steps.
    fn on_sim<F: Future<Output = ()> + Send + 'static>(
        workers: impl FnOnce(SimHandle) -> Vec<F> + Send + 'static,
    ) -> u64 {
        let sim = Sim::new(sim_config());
        let h = sim.main_handle();
        let out = sim.run(async move {
            let joins: Vec<_> = workers(h)
                .into_iter()
                .map(|w| h.spawn_on("worker", w))
                .collect();
            for j in joins {
                j.await.expect("worker failed");
            }
        });
        assert!(out.passed(), "simulated workload failed: {:?}", out.failure);
        out.steps
    }

    /// The same on tokio's current-thread runtime with paused time.
    fn on_tokio<F: Future<Output = ()> + Send + 'static>(workers: impl FnOnce() -> Vec<F>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("tokio runtime");
        rt.block_on(async {
            // The baseline being measured is tokio's own spawn.
            #[allow(clippy::disallowed_methods)]
            let joins: Vec<_> = workers().into_iter().map(tokio::task::spawn).collect();
            for j in joins {
                j.await.expect("worker failed");
            }
        });
    }

    fn scaling_sim(tasks: u64, count: bool) -> u64 {
        let steps = SCALING_POLLS / tasks;
        on_sim(move |h| {
            (0..tasks)
                .map(|t| wrap(count, sim_worker(h, t, steps)))
                .collect()
        })
    }

    fn scaling_tokio(tasks: u64, count: bool) {
        let steps = SCALING_POLLS / tasks;
        on_tokio(|| {
            (0..tasks)
                .map(|t| wrap(count, tokio_worker(t, steps)))
                .collect()
        });
    }

    fn pingpong_sim(count: bool) -> u64 {
        on_sim(move |h| {
            (0..PAIRS)
                .flat_map(|_| {
                    let gate = Arc::new(Gate::new(0u64));
                    [Arc::clone(&gate), gate]
                })
                .map(|gate| wrap(count, sim_pinger(h, gate)))
                .collect()
        })
    }

    fn pingpong_tokio(count: bool) {
        on_tokio(|| {
            (0..PAIRS)
                .flat_map(|_| {
                    let gate = Arc::new(Gate::new(0u64));
                    [Arc::clone(&gate), gate]
                })
                .map(|gate| wrap(count, tokio_pinger(gate)))
                .collect()
        });
    }

    /// Runs both sides once counting worker polls; returns them.
    /// With `FAULTLINE_BENCH_CHECK=0` (profiling one benchmark under
    /// callgrind, where the check runs of every size would take minutes)
    /// the check is skipped and both counts are 0.
    fn count_polls(what: &str, sim: impl FnOnce() -> u64, tokio: impl FnOnce()) -> (u64, u64) {
        if std::env::var("FAULTLINE_BENCH_CHECK").is_ok_and(|v| v == "0") {
            return (0, 0);
        }
        POLLS.store(0, Ordering::Relaxed);
        let steps = sim();
        let sim_polls = POLLS.swap(0, Ordering::Relaxed);
        tokio();
        let tokio_polls = POLLS.swap(0, Ordering::Relaxed);
        eprintln!(
            "{what}: worker polls: simulator {sim_polls} (steps {steps}), tokio {tokio_polls}"
        );
        (sim_polls, tokio_polls)
    }

    fn task_scaling(c: &mut Criterion) {
        let mut g = c.benchmark_group("task_scaling");
        g.sample_size(10);
        for tasks in SCALING_TASKS {
            let (polls, tokio_polls) = count_polls(
                &format!("task_scaling/{tasks}"),
                || scaling_sim(tasks, true),
                || scaling_tokio(tasks, true),
            );
            assert_eq!(
                polls, tokio_polls,
                "task_scaling/{tasks}: worker polls differ"
            );
            // (Unchecked: one first poll per task, one per step.)
            let polls = polls.max(tasks * (SCALING_POLLS / tasks + 1));
            g.throughput(Throughput::Elements(polls));
            g.bench_with_input(BenchmarkId::new("faultline_sim", tasks), &tasks, |b, &t| {
                b.iter(|| scaling_sim(t, false))
            });
            g.bench_with_input(
                BenchmarkId::new("tokio_current_thread_paused", tasks),
                &tasks,
                |b, &t| b.iter(|| scaling_tokio(t, false)),
            );
        }
        g.finish();
    }

    fn gate_pingpong(c: &mut Criterion) {
        count_polls(
            "gate_pingpong",
            || pingpong_sim(true),
            || pingpong_tokio(true),
        );
        let mut g = c.benchmark_group("gate_pingpong");
        g.sample_size(10);
        g.throughput(Throughput::Elements(PAIRS * 2 * ROUNDS));
        g.bench_function("faultline_sim", |b| b.iter(|| pingpong_sim(false)));
        g.bench_function("tokio_current_thread_paused", |b| {
            b.iter(|| pingpong_tokio(false))
        });
        g.finish();
    }

    fn channel_pingpong(c: &mut Criterion) {
        count_polls(
            "channel_pingpong",
            || on_sim(move |_| channel_pairs(true)),
            || on_tokio(|| channel_pairs(true)),
        );
        let mut g = c.benchmark_group("channel_pingpong");
        g.sample_size(10);
        g.throughput(Throughput::Elements(PAIRS * 2 * ROUNDS));
        g.bench_function("faultline_sim", |b| {
            b.iter(|| on_sim(move |_| channel_pairs(false)))
        });
        g.bench_function("tokio_current_thread_paused", |b| {
            b.iter(|| on_tokio(|| channel_pairs(false)))
        });
        g.finish();
    }

    criterion_group!(benches, task_scaling, gate_pingpong, channel_pingpong);
}

#[cfg(not(any(faultline_loom, faultline_shuttle)))]
criterion::criterion_main!(benches::benches);

/// Model-check builds (loom, shuttle) have no simulator: nothing to run.
#[cfg(any(faultline_loom, faultline_shuttle))]
fn main() {}
