//! [`World`]: what a test body sees of the simulation: the main node's clock
//! and scheduler, other nodes and their faults, seeded randomness, fault
//! points, the memory meter, metrics and the test's own oracles.

use crate::clock::Clock;
use crate::probe::FaultKind;
use crate::sched::{spawn_typed, JoinError, Scheduler, TaskName};
use crate::sim::{NodeConfig, SimHandle, Sleep, YieldNow};
use crate::sync::DynArc;
use std::future::Future;
use std::time::Duration;

pub use crate::sched::JoinHandle;

/// A test body's view of its simulated run. `Copy`: hand it to every task.
///
/// Everything here is deterministic: time is virtual, randomness comes from
/// the run's seed, and tasks are scheduled by the run's policy. Code under
/// test takes the world's [`Clock`] and [`Scheduler`] (or a node's
/// [`SimHandle`], which is both).
#[derive(Clone, Copy, Debug)]
pub struct World {
    main: SimHandle,
}

impl World {
    pub(crate) fn new(main: SimHandle) -> World {
        World { main }
    }

    /// The main node's handle (a `Clock` and a `Scheduler`). The test body
    /// runs on it; it never crashes or pauses.
    pub fn main(&self) -> SimHandle {
        self.main
    }

    /// The main node's clock, as a trait object for code under test.
    pub fn clock(&self) -> DynArc<dyn Clock> {
        DynArc::new(self.main)
    }

    /// The main node's scheduler, as a trait object for code under test.
    pub fn scheduler(&self) -> DynArc<dyn Scheduler> {
        DynArc::new(self.main)
    }

    /// The main node's time, ns (virtual: starts at 2026-01-01T00:00:00Z).
    pub fn now_ns(&self) -> u64 {
        self.main.now_ns()
    }

    /// The main node's time, ms.
    pub fn now_ms(&self) -> u64 {
        self.main.now_ns() / 1_000_000
    }

    /// Completes after `duration` of virtual time.
    pub fn sleep(&self, duration: Duration) -> Sleep {
        self.main.sleep(duration)
    }

    /// Lets other tasks run.
    pub fn yield_now(&self) -> YieldNow {
        self.main.yield_now()
    }

    /// Starts `fut` as a task on the main node; awaiting the handle gives
    /// its output. `name` is a `&'static str` or a [`TaskName`]
    /// (`TaskName::numbered("client", "c", 2)` shows as `client c2`).
    pub fn spawn<T, F>(&self, name: impl Into<TaskName>, fut: F) -> JoinHandle<T>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        spawn_typed(&self.main, name, fut)
    }

    /// Starts `fut` as a task on `node` (it dies with the node's crash).
    pub fn spawn_on<T, F>(
        &self,
        node: SimHandle,
        name: impl Into<TaskName>,
        fut: F,
    ) -> JoinHandle<T>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        spawn_typed(&node, name, fut)
    }

    /// Runs blocking `work` on the simulated blocking pool (it runs at once;
    /// its thread stays busy for the time it declares with
    /// `faultline::probe::blocking_wait`).
    ///
    /// # Errors
    /// [`JoinError`] when the work panicked.
    pub async fn blocking<T, W>(&self, name: &'static str, work: W) -> Result<T, JoinError>
    where
        T: Send + 'static,
        W: FnOnce() -> T + Send + 'static,
    {
        crate::sched::run_blocking(&self.main, name, work).await
    }

    /// The node called `name` (declared with `Check::node`, or added with
    /// [`World::add_node`]).
    pub fn node(&self, name: &str) -> Option<SimHandle> {
        crate::sim::inject::node_named(name)
    }

    /// Adds a node now. It has no boot function: after a crash it comes
    /// back with no tasks. The fault plan's node faults strike only nodes
    /// declared with `Check::node` (those exist when the run starts); crash,
    /// pause or skew this one yourself.
    pub fn add_node(&self, name: &str, cfg: NodeConfig) -> SimHandle {
        crate::sim::inject::add_node(name, cfg)
    }

    /// Crashes `node` now: its tasks are dropped; it restarts after
    /// `downtime` (and its boot function, if any, runs again).
    ///
    /// # Panics
    /// For the main node, which runs the test body.
    pub fn crash(&self, node: SimHandle, downtime: Duration) {
        assert!(node != self.main, "faultline: the main node cannot crash");
        crate::sim::inject::crash(node.node(), duration_ns(downtime));
    }

    /// Pauses `node` for `pause` (a GC-like stall: none of its tasks run).
    ///
    /// # Panics
    /// For the main node, which runs the test body.
    pub fn pause(&self, node: SimHandle, pause: Duration) {
        assert!(node != self.main, "faultline: the main node cannot pause");
        crate::sim::inject::pause(node.node(), duration_ns(pause));
    }

    /// Moves `node`'s clock by `delta_ns` (either way).
    pub fn jump_clock(&self, node: SimHandle, delta_ns: i64) {
        crate::sim::inject::jump_clock(node.node(), delta_ns);
    }

    /// A seeded draw in `0..bound` (0 when `bound` is 0).
    pub fn draw(&self, bound: u64) -> u64 {
        crate::probe::draw(bound)
    }

    /// Whether the fault of `kind` strikes at `site` now (per the fault
    /// plan; never outside a simulation).
    pub fn buggify(&self, site: &'static str, kind: FaultKind) -> bool {
        crate::probe::buggify(site, kind)
    }

    /// Counts `v` more into metric `name`.
    pub fn metric_add(&self, name: &'static str, v: f64) {
        crate::sim::metric_add(name, v);
    }

    /// Sets metric `name` to `v`.
    pub fn metric_set(&self, name: &'static str, v: f64) {
        crate::sim::metric_set(name, v);
    }

    /// Records a sample of series `name` at the current virtual time.
    pub fn sample(&self, name: &'static str, v: f64) {
        crate::sim::sample(name, v);
    }

    /// Writes `text` into the run's trace log, so the trace tail of a
    /// failure report (and a replay's log) says what the test saw, between
    /// the simulator's polls and timers: `world.note(format!("reader {r}
    /// got version {v}"))`. It changes neither the run nor its trace hash
    /// (add notes, then replay an existing file to read them), and is
    /// formatted only when a log is kept.
    pub fn note(&self, text: impl std::fmt::Display) {
        crate::sim::note(text);
    }

    /// Fails the run: the test's oracle `oracle` (a short kebab-case tag)
    /// saw `msg`. The run stops after the current poll. A plain `assert!`
    /// in the body also fails it (oracle `panic`).
    pub fn fail(&self, oracle: &str, msg: impl Into<String>) {
        crate::sim::oracle_failed(oracle, msg);
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
