//! Uncontended use of faultline's primitives against their tokio
//! counterparts, each pair in one criterion group so the ratio is read off
//! one run (target: within 1.5x of tokio): `Gate` / `Mutex`, `Semaphore`,
//! `mpsc`, `oneshot`, `Notify`, `RwLock`, `timeout`, `TaskSet` / `JoinSet`.
//!
//! Every future is polled exactly once with a no-op waker, the same way on
//! both sides; an uncontended acquire must be ready at once (a `Pending` is a
//! panic, not a silent slow path).
//!
//! faultline's `Permit` owns its semaphore (an `Arc` clone per acquire), so
//! the semaphore groups also time tokio's owned variants, the like-for-like
//! baseline, next to tokio's cheaper borrowed ones.
//!
//! Run: `cargo bench --no-default-features -p faultline --bench sync_primitives`.

#[cfg(not(any(faultline_loom, faultline_shuttle)))]
mod benches {
    use criterion::{criterion_group, Criterion};
    use faultline::sched::{Scheduler, TokioScheduler};
    use faultline::sync::DynArc;
    use std::future::Future;
    use std::hint::black_box;
    use std::pin::pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    /// Polls `fut` once; it must be ready.
    fn ready<F: Future>(fut: F) -> F::Output {
        let mut fut = pin!(fut);
        match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("an uncontended acquire returned Pending"),
        }
    }

    fn gate_vs_mutex(c: &mut Criterion) {
        let gate = faultline::sync::Gate::new(0u64);
        let mutex = tokio::sync::Mutex::new(0u64);
        let mut g = c.benchmark_group("gate_vs_tokio_mutex");
        g.bench_function("faultline_gate_lock", |b| {
            b.iter(|| {
                let mut guard = ready(black_box(&gate).lock());
                *guard += 1;
            })
        });
        g.bench_function("tokio_mutex_lock", |b| {
            b.iter(|| {
                let mut guard = ready(black_box(&mutex).lock());
                *guard += 1;
            })
        });
        g.bench_function("faultline_gate_try_lock", |b| {
            b.iter(|| {
                let mut guard = black_box(&gate).try_lock().expect("gate free");
                *guard += 1;
            })
        });
        g.bench_function("tokio_mutex_try_lock", |b| {
            b.iter(|| {
                let mut guard = black_box(&mutex).try_lock().expect("mutex free");
                *guard += 1;
            })
        });
        g.finish();
    }

    fn semaphore_acquire(c: &mut Criterion) {
        let ours = faultline::sync::Semaphore::new(4);
        let theirs = Arc::new(tokio::sync::Semaphore::new(4));
        let mut g = c.benchmark_group("semaphore_acquire_vs_tokio");
        g.bench_function("faultline_acquire", |b| {
            b.iter(|| black_box(ready(black_box(&ours).acquire())))
        });
        g.bench_function("tokio_acquire", |b| {
            b.iter(|| black_box(ready(black_box(&theirs).acquire()).expect("open")))
        });
        g.bench_function("tokio_acquire_owned", |b| {
            b.iter(|| {
                let sem = Arc::clone(black_box(&theirs));
                black_box(ready(sem.acquire_owned()).expect("open"))
            })
        });
        g.finish();
    }

    fn semaphore_try_acquire(c: &mut Criterion) {
        let ours = faultline::sync::Semaphore::new(4);
        let theirs = Arc::new(tokio::sync::Semaphore::new(4));
        let mut g = c.benchmark_group("semaphore_try_acquire_vs_tokio");
        g.bench_function("faultline_try_acquire", |b| {
            b.iter(|| black_box(black_box(&ours).try_acquire().expect("free")))
        });
        g.bench_function("tokio_try_acquire", |b| {
            b.iter(|| black_box(black_box(&theirs).try_acquire().expect("free")))
        });
        g.bench_function("tokio_try_acquire_owned", |b| {
            b.iter(|| {
                let sem = Arc::clone(black_box(&theirs));
                black_box(sem.try_acquire_owned().expect("free"))
            })
        });
        g.finish();
    }

    fn mpsc(c: &mut Criterion) {
        let (tx, mut rx) = faultline::sync::mpsc::channel::<u64>(16);
        let (ttx, mut trx) = tokio::sync::mpsc::channel::<u64>(16);
        let mut g = c.benchmark_group("mpsc_vs_tokio");
        g.bench_function("faultline_send_recv", |b| {
            b.iter(|| {
                ready(tx.send(black_box(1))).expect("open");
                black_box(ready(rx.recv()))
            })
        });
        g.bench_function("tokio_send_recv", |b| {
            b.iter(|| {
                ready(ttx.send(black_box(1))).expect("open");
                black_box(ready(trx.recv()))
            })
        });
        g.bench_function("faultline_try_send_try_recv", |b| {
            b.iter(|| {
                tx.try_send(black_box(1)).expect("room");
                black_box(rx.try_recv().expect("a message"))
            })
        });
        g.bench_function("tokio_try_send_try_recv", |b| {
            b.iter(|| {
                ttx.try_send(black_box(1)).expect("room");
                black_box(trx.try_recv().expect("a message"))
            })
        });
        g.finish();
    }

    fn oneshot(c: &mut Criterion) {
        let mut g = c.benchmark_group("oneshot_vs_tokio");
        g.bench_function("faultline_channel_send_recv", |b| {
            b.iter(|| {
                let (tx, rx) = faultline::sync::oneshot::channel::<u64>();
                tx.send(black_box(1)).expect("receiver alive");
                black_box(ready(rx)).expect("sent")
            })
        });
        g.bench_function("tokio_channel_send_recv", |b| {
            b.iter(|| {
                let (tx, rx) = tokio::sync::oneshot::channel::<u64>();
                tx.send(black_box(1)).expect("receiver alive");
                black_box(ready(rx)).expect("sent")
            })
        });
        g.finish();
    }

    fn notify(c: &mut Criterion) {
        let ours = faultline::sync::Notify::new();
        let theirs = tokio::sync::Notify::new();
        let mut g = c.benchmark_group("notify_vs_tokio");
        g.bench_function("faultline_notify_one_notified", |b| {
            b.iter(|| {
                black_box(&ours).notify_one();
                ready(ours.notified())
            })
        });
        g.bench_function("tokio_notify_one_notified", |b| {
            b.iter(|| {
                black_box(&theirs).notify_one();
                ready(theirs.notified())
            })
        });
        g.finish();
    }

    fn rwlock(c: &mut Criterion) {
        let ours = faultline::sync::RwLock::new(0u64);
        let theirs = tokio::sync::RwLock::new(0u64);
        let mut g = c.benchmark_group("rwlock_vs_tokio");
        g.bench_function("faultline_read", |b| {
            b.iter(|| black_box(*ready(black_box(&ours).read())))
        });
        g.bench_function("tokio_read", |b| {
            b.iter(|| black_box(*ready(black_box(&theirs).read())))
        });
        g.bench_function("faultline_write", |b| {
            b.iter(|| *ready(black_box(&ours).write()) += 1)
        });
        g.bench_function("tokio_write", |b| {
            b.iter(|| *ready(black_box(&theirs).write()) += 1)
        });
        g.finish();
    }

    /// A timeout around a future that is ready at once (the common case:
    /// the deadline is computed, the timer never armed), inside a tokio
    /// runtime on both sides (tokio's needs its timer).
    fn timeout(c: &mut Criterion) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let _inside = rt.enter();
        let clock = faultline::clock::TokioClock::new();
        let d = Duration::from_secs(1);
        let mut g = c.benchmark_group("timeout_vs_tokio");
        g.bench_function("faultline_timeout_ready", |b| {
            b.iter(|| ready(faultline::sync::timeout(&clock, d, async { black_box(1) })))
        });
        g.bench_function("tokio_timeout_ready", |b| {
            b.iter(|| ready(tokio::time::timeout(d, async { black_box(1) })))
        });
        g.finish();
    }

    /// Tasks spawned on a current-thread tokio runtime and joined, 64 per
    /// iteration (so the runtime's `block_on` is shared out).
    fn task_set(c: &mut Criterion) {
        const TASKS: u64 = 64;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let sched: DynArc<dyn Scheduler> = DynArc::new(TokioScheduler);
        let mut g = c.benchmark_group("task_set_vs_tokio_join_set");
        g.bench_function("faultline_task_set_64", |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut set = faultline::sync::TaskSet::new(DynArc::clone(&sched), 64);
                    for i in 0..TASKS {
                        set.spawn("bench", async move { black_box(i) })
                            .expect("room");
                    }
                    let mut sum = 0;
                    while let Some(r) = set.join_next().await {
                        sum += r.expect("ends");
                    }
                    assert_eq!(sum, TASKS * (TASKS - 1) / 2);
                })
            })
        });
        g.bench_function("tokio_join_set_64", |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut set = tokio::task::JoinSet::new();
                    for i in 0..TASKS {
                        set.spawn(async move { black_box(i) });
                    }
                    let mut sum = 0;
                    while let Some(r) = set.join_next().await {
                        sum += r.expect("ends");
                    }
                    assert_eq!(sum, TASKS * (TASKS - 1) / 2);
                })
            })
        });
        g.finish();
    }

    criterion_group!(
        benches,
        gate_vs_mutex,
        semaphore_acquire,
        semaphore_try_acquire,
        mpsc,
        oneshot,
        notify,
        rwlock,
        timeout,
        task_set
    );
}

#[cfg(not(any(faultline_loom, faultline_shuttle)))]
criterion::criterion_main!(benches::benches);

/// Model-check builds (loom, shuttle) swap the primitives for model ones,
/// which only work inside a model: nothing to time.
#[cfg(any(faultline_loom, faultline_shuttle))]
fn main() {}
