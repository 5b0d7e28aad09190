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
    /// Records this checker's result on `bug` for the teeth table (see
    /// [`record`]).
    pub fn record(&self, checker: &str, bug: &str, role: &str) {
        record(checker, bug, role, self.count());
    }
}

/// Records a checker's result for `faultline`'s teeth table: writes
/// `target/faultline/checks/<checker>--<bug>--<role>.json` under the
/// workspace root. `role` is `caught`, `missed`, `holds` or `fails`. A
/// record that cannot be written is reported, not fatal (the check itself
/// already passed or failed).
pub fn record(checker: &str, bug: &str, role: &str, iterations: usize) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/faultline/checks");
    let test = std::thread::current()
        .name()
        .unwrap_or("unknown")
        .to_string();
    let rec = serde_json::json!({
        "checker": checker,
        "bug": bug,
        "role": role,
        "iterations": iterations,
        "test": test,
    });
    let path = dir.join(format!("{checker}--{bug}--{role}.json"));
    let written =
        std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, rec.to_string()));
    if let Err(e) = written {
        eprintln!(
            "note: could not record {checker}/{bug}/{role} at {}: {e}",
            path.display()
        );
    }
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
