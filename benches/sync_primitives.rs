//! Uncontended acquire + release of faultline's `Gate` and `Semaphore`
//! against tokio's `Mutex` and `Semaphore`, each pair in one criterion group
//! so the ratio is read off one run (target: within 1.5x of tokio).
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
    use std::future::Future;
    use std::hint::black_box;
    use std::pin::pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};

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

    criterion_group!(
        benches,
        gate_vs_mutex,
        semaphore_acquire,
        semaphore_try_acquire
    );
}

#[cfg(not(any(faultline_loom, faultline_shuttle)))]
criterion::criterion_main!(benches::benches);

/// Model-check builds (loom, shuttle) swap the primitives for model ones,
/// which only work inside a model: nothing to time.
#[cfg(any(faultline_loom, faultline_shuttle))]
fn main() {}
