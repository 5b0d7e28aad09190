//! Helpers shared by the model-check tests.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

/// Wraps a future and wakes itself on its first `spurious` pending polls, so
/// it is polled again without any real event: the "futures are polled
/// spuriously" pitfall of DESIGN.md, on demand.
pub struct Spurious<F> {
    pub fut: Pin<Box<F>>,
    pub spurious: usize,
}

impl<F: Future> Future for Spurious<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let out = self.fut.as_mut().poll(cx);
        if out.is_pending() && self.spurious > 0 {
            self.spurious -= 1;
            cx.waker().wake_by_ref();
        }
        out
    }
}

/// Polls `fut` once with a waker that does nothing.
pub fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    fn noop(_: *const ()) {}
    fn clone(p: *const ()) -> RawWaker {
        RawWaker::new(p, &VTABLE)
    }
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
    // SAFETY: the vtable functions ignore the data pointer.
    let waker = unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) };
    Pin::new(fut).poll(&mut Context::from_waker(&waker))
}

/// Polls `fut` to completion on this thread, at most `polls_max` times,
/// and panics if it is still pending then. For futures that depend on no
/// outside event (instant clients, scripted clocks): one that is still
/// pending after many polls waits for something that will never happen,
/// and a planted bug of that kind must fail the test, not hang it.
///
/// # Panics
/// When `fut` is still pending after `polls_max` polls.
pub fn block_on_bounded<F: Future>(fut: F, polls_max: usize) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    for _ in 0..polls_max {
        if let Poll::Ready(v) = poll_once(&mut fut) {
            return v;
        }
    }
    panic!("still pending after {polls_max} polls: it waits for an event that never comes (a hang)")
}

/// Counts a checker's iterations (executions) for the report line.
pub struct Iterations(AtomicUsize);

impl Iterations {
    pub const fn new() -> Self {
        Iterations(AtomicUsize::new(0))
    }
    pub fn tick(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn report(&self, checker: &str, model: &str) {
        let n = self.0.load(Ordering::Relaxed);
        println!("{checker}: {model}: {n} iterations");
    }
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

pub use faultline::check::record::Expect;

/// The message of a caught panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// A teeth-table check that must catch a bug: runs `check` (a model
/// checker call that must fail), finds which of `oracles` (`(oracle tag,
/// message substring)`) its panic message shows, and settles `expect` with
/// it. The record says `caught` only when that is the bug's own oracle;
/// otherwise `missed` is recorded and the test fails.
pub fn expect_caught_recorded(
    expect: Expect,
    model: &str,
    iters: &Iterations,
    oracles: &[(&str, &str)],
    check: impl FnOnce(),
) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check));
    let n = iters.count() as u64;
    let msg = match r {
        Ok(()) => {
            expect.settle(n, "", "not caught");
            panic!("{model}: NOT caught after {n} iterations");
        }
        Err(p) => panic_message(p.as_ref()),
    };
    let fired = oracles
        .iter()
        .find(|(_, text)| msg.contains(text))
        .map_or("panic", |(tag, _)| tag);
    let first = msg.lines().next().unwrap_or_default().to_string();
    if !expect.settle(n, fired, &first) {
        panic!("{model}: failed through another oracle ({fired}), not the bug's own: {msg}");
    }
    println!("{model}: caught after {n} iterations by {fired}: {first}");
}

/// A teeth-table check that the fixed variant holds: runs `check` (a
/// panic propagates, and the guard records `fails`), then records `holds`
/// with the iterations it ran.
pub fn expect_holds_recorded(
    expect: Expect,
    model: &str,
    iters: &Iterations,
    check: impl FnOnce(),
) {
    check();
    let n = iters.count() as u64;
    expect.settle(n, "", "");
    println!("{model}: holds over {n} iterations");
}

/// The seed of this test's shuttle runs: `FAULTLINE_SEED` when set,
/// otherwise a fresh one, drawn once per test (thread) and printed, so a CI
/// result can be reproduced.
pub fn shuttle_seed() -> u64 {
    thread_local! {
        static SEED: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
    }
    if let Some(seed) = SEED.with(std::cell::Cell::get) {
        return seed;
    }
    let seed = match std::env::var("FAULTLINE_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("FAULTLINE_SEED={s:?} is not a u64")),
        Err(_) => {
            #[allow(clippy::disallowed_methods)]
            let now = std::time::SystemTime::now(); // allow-world: a fresh shuttle seed, printed for replay
            let ns = now
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            ns ^ (u64::from(std::process::id()) << 32)
        }
    };
    SEED.with(|c| c.set(Some(seed)));
    let test = std::thread::current().name().unwrap_or("?").to_string();
    println!("shuttle seed for {test}: {seed} (rerun with FAULTLINE_SEED={seed})");
    seed
}

/// shuttle's PCT scheduler over `iterations` runs, seeded with
/// [`shuttle_seed`] (shuttle's own `check_pct` draws an unprinted seed).
#[cfg(faultline_shuttle)]
pub fn check_pct(f: impl Fn() + Send + Sync + 'static, iterations: usize, depth: usize) {
    let s = shuttle::scheduler::PctScheduler::new_from_seed(shuttle_seed(), depth, iterations);
    shuttle::Runner::new(s, shuttle::Config::new()).run(f);
}

/// shuttle's random scheduler over `iterations` runs, seeded with
/// [`shuttle_seed`].
#[cfg(faultline_shuttle)]
pub fn check_random(f: impl Fn() + Send + Sync + 'static, iterations: usize) {
    let s = shuttle::scheduler::RandomScheduler::new_from_seed(shuttle_seed(), iterations);
    shuttle::Runner::new(s, shuttle::Config::new()).run(f);
}

/// Wraps a model so each execution ticks `iters` (for the report line).
pub fn counted(
    iters: &'static Iterations,
    f: impl Fn() + Send + Sync + 'static,
) -> impl Fn() + Send + Sync + 'static {
    move || {
        iters.tick();
        f()
    }
}

/// Runs the `#[ignore]`d test `child` of this test binary in a child process
/// and asserts that it fails with `expected` in its output.
///
/// A model that deadlocks (or panics in a spawned thread) can abort the whole
/// test process, so expected failures of that kind run in a child.
pub fn expect_child_failure(child: &str, expected: &str) {
    let exe = std::env::current_exe().expect("test binary path");
    let out = std::process::Command::new(exe)
        .args([
            child,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .expect("spawn the child test process");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("running 1 test"),
        "child test {child} did not run:\n{text}"
    );
    assert!(
        !out.status.success(),
        "the checker did NOT catch the flaw: child {child} passed:\n{text}"
    );
    assert!(
        text.contains(expected),
        "child {child} failed, but not with {expected:?}:\n{text}"
    );
    let first = text
        .lines()
        .find(|l| l.contains(expected))
        .unwrap_or_default();
    println!("caught as expected ({child}): {first}");
}

/// Runs `check` (a model checker call that must fail) and asserts that it
/// panicked with `expected` in its message; prints the iterations it took.
pub fn expect_caught(
    checker: &str,
    model: &str,
    iters: &Iterations,
    expected: &str,
    check: impl FnOnce(),
) {
    expect_caught_any(checker, model, iters, &[expected], check);
}

/// [`expect_caught`] for a bug that more than one oracle catches, whichever
/// the schedule reaches first (shuttle's random and PCT schedulers draw a
/// fresh seed each run, so the first oracle to fire varies between runs).
pub fn expect_caught_any(
    checker: &str,
    model: &str,
    iters: &Iterations,
    expected: &[&str],
    check: impl FnOnce(),
) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check));
    let n = iters.0.load(Ordering::Relaxed);
    let payload = match r {
        Ok(()) => panic!("{checker}: {model}: NOT caught after {n} iterations"),
        Err(p) => p,
    };
    let msg = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    let Some(hit) = expected.iter().find(|e| msg.contains(**e)) else {
        panic!("{checker}: {model}: failed, but not with any of {expected:?}: {msg}")
    };
    println!("{checker}: {model}: caught after {n} iterations: {hit}");
}
