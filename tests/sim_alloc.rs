//! The simulator allocates nothing per poll in steady state: yields, sleeps
//! and Gate hand-offs, with recording for replay and the trace hash on (as
//! always). A counting global allocator counts this thread's allocations
//! between two points of a long run; a window of tens of thousands of polls
//! may see the decision log grow once (it doubles), nothing else.
//!
//! Each workload has a twin that allocates once per iteration (the boxed
//! `Scheduler::yield_now` / `Clock::sleep` instead of the handle's unboxed
//! futures; a `Box` per hand-off): the same measurement must see it, or the
//! counter would prove nothing.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::clock::Clock;
use faultline::sched::Scheduler;
use faultline::sim::{Sim, SimConfig, SimHandle};
use faultline::sync::{Arc, Gate};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counts this thread's allocations (and reallocations), then defers to the
/// system allocator.
struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // `try_with`: allocations during thread teardown are not counted.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: defers every call to `System` unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

/// Tasks in each workload (enough sleepers that an ordered map of timers
/// would split and merge nodes).
const TASKS: u64 = 100;
/// Iterations of each task; the window is the first task's iterations
/// `ITERS / 4 .. ITERS / 2`: past start-up, and before any task ends (the
/// tasks advance at about the same pace), since spawning and ending tasks
/// may allocate.
const ITERS: u64 = 8_000;

/// Allocations counted in the window.
static WINDOW_START: AtomicU64 = AtomicU64::new(0);
static WINDOW_ALLOCS: AtomicU64 = AtomicU64::new(0);

/// What each task does once per iteration.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Yield,
    Sleep,
    GateHandoff,
    /// A yield and a `tracing` event with formatted fields: with no log
    /// kept, the simulator's subscriber must not format it.
    TracingEvent,
}

async fn iteration(h: SimHandle, shape: Shape, boxed: bool, gate: &Gate<u64>, i: u64) {
    match (shape, boxed) {
        (Shape::Yield, false) => h.yield_now().await,
        (Shape::Yield, true) => Scheduler::yield_now(&h).await,
        (Shape::Sleep, false) => h.sleep(Duration::from_millis(1 + i % 7)).await,
        (Shape::Sleep, true) => Clock::sleep(&h, Duration::from_millis(1 + i % 7)).await,
        (Shape::GateHandoff, boxed) => {
            let mut g = gate.lock().await;
            *g += 1;
            if boxed {
                std::hint::black_box(Box::new(*g));
            }
            // Hold the gate across a yield, so the others queue for it and
            // every release hands it to a woken waiter.
            h.yield_now().await;
        }
        (Shape::TracingEvent, boxed) => {
            h.yield_now().await;
            tracing::info!(i, key = %format_args!("k{i}"), "worker step {i}");
            if boxed {
                std::hint::black_box(Box::new(i));
            }
        }
    }
}

/// Runs `TASKS` tasks of `shape` and returns the allocations in the window
/// and about how many polls it covered.
fn window(shape: Shape, boxed: bool) -> (u64, u64) {
    let sim = Sim::new(SimConfig {
        seed: 7,
        steps_max: u64::MAX,
        ..Default::default()
    });
    let h = sim.main_handle();
    let out = sim.run(async move {
        let gate = Arc::new(Gate::new(0u64));
        let mut joins = Vec::new();
        for t in 0..TASKS {
            let gate = Arc::clone(&gate);
            joins.push(h.spawn_on("worker", async move {
                for i in 0..ITERS {
                    if t == 0 && i == ITERS / 4 {
                        WINDOW_START.store(allocs(), Ordering::Relaxed);
                    }
                    if t == 0 && i == ITERS / 2 {
                        let n = allocs() - WINDOW_START.load(Ordering::Relaxed);
                        WINDOW_ALLOCS.store(n, Ordering::Relaxed);
                    }
                    iteration(h, shape, boxed, &gate, i).await;
                }
            }));
        }
        for j in joins {
            j.await.expect("worker failed");
        }
    });
    assert!(out.passed(), "{shape:?}: {:?}", out.failure);
    // The window covers about a quarter of the run's polls.
    (WINDOW_ALLOCS.load(Ordering::Relaxed), out.steps / 4)
}

#[test]
fn no_allocation_per_poll_in_steady_state_and_the_counter_sees_one() {
    for shape in [
        Shape::Yield,
        Shape::Sleep,
        Shape::GateHandoff,
        Shape::TracingEvent,
    ] {
        let (n, polls) = window(shape, false);
        eprintln!("{shape:?}: {n} allocations in a window of about {polls} polls");
        assert!(
            polls >= TASKS * ITERS / 4,
            "{shape:?}: the window is too short ({polls} polls)"
        );
        // The decision log may double once in the window; nothing else may
        // allocate.
        assert!(
            n <= 2,
            "{shape:?}: {n} allocations in a window of about {polls} polls"
        );
        let (twin, _) = window(shape, true);
        eprintln!("{shape:?} twin (one Box per iteration): {twin} allocations");
        assert!(
            twin >= ITERS / 4,
            "{shape:?}: the twin allocates once per iteration, but only {twin} were counted"
        );
    }
}
