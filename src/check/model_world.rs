//! [`World`] under a model checker (`--cfg faultline_shuttle` or `--cfg
//! faultline_loom`): the same methods a test body calls in the simulator,
//! over shuttle's or loom's scheduler, so one body is checked three ways.
//!
//! | method | simulator | shuttle | loom |
//! |---|---|---|---|
//! | `spawn`, `spawn_on(main)` | a simulated task | `shuttle::future::spawn` | a loom thread that `block_on`s it (4 at most) |
//! | `blocking` | the simulated pool | a shuttle thread | a loom thread (counts against the 4) |
//! | `yield_now` | a policy decision | `shuttle::future::yield_now` | `loom::thread::yield_now` |
//! | `sleep`, `now_ns`, `clock` | virtual time, timers in deadline order | logical clock: a sleep yields, then moves the clock to its deadline | the same as shuttle |
//! | `jump_clock(main)` | moves the node's clock | moves the logical clock | the same |
//! | `draw` | the run's seeded stream | `shuttle::rand` (scheduler-controlled, replayed) | a ChaCha stream of the check's seed (one stream per execution) |
//! | `fail`, a panic | fails the run (oracle tag) | panics with the oracle tag: shuttle prints the failing schedule | panics: loom prints the failing interleaving |
//! | `buggify` | the fault plan | `false` (no fault plan: faults are the simulator's) | `false` |
//! | `metric_*`, `sample`, `note` | metrics, plots, trace log | ignored (`note` goes to `tracing`) | the same |
//! | `node`, `crash`, `pause`, `jump_clock(other)`, `spawn_on(other)` | nodes | panic naming the checker | panic naming the checker |
//! | `add_node` | a node | absent (its `NodeConfig` is the simulator's) | absent |
//!
//! **Time is not modelled the same way.** The simulator keeps timers in
//! deadline order in virtual time; here there are no timers. A sleep is a
//! yield, after which the one logical clock moves forward to the sleeper's
//! deadline (never back). So any sleeper may wake before another whose
//! deadline is earlier, and a `timeout` may fire as soon as its future
//! yields: a body whose correctness rests on *how long* things take can fail
//! here where it cannot fail in the simulator (or in production). What these
//! checkers explore is the order of the tasks' steps: every switch point of
//! shuttle's and loom's primitives (`faultline::sync`'s blocking `Mutex`,
//! atomics, `Gate`, ...) and every yield.
//!
//! Nodes, crashes, pauses, fault plans and the memory meter are the
//! simulator's: a method that would need one panics with a message naming
//! the checker (running on as if it had worked would silently drop an oracle
//! the test relies on), and `Check::memory_limit` does the same.

use crate::clock::Clock;
use crate::probe::FaultKind;
use crate::sched::{spawn_typed, JoinError, Scheduler, TaskHandle, TaskName, ThreadScheduler};
use crate::sync::DynArc;
use crate::BoxFuture;
use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

pub use crate::sched::JoinHandle;

/// The model checker this build runs bodies under.
#[cfg(faultline_loom)]
pub const CHECKER: &str = "loom";
/// The model checker this build runs bodies under.
#[cfg(all(faultline_shuttle, not(faultline_loom)))]
pub const CHECKER: &str = "shuttle";

/// Tasks (and blocking threads) a body may start under loom: loom runs at
/// most 5 threads per model, and the body's own is one of them.
pub const LOOM_TASKS_MAX: u32 = 4;

/// The logical clock's start: 2026-01-01T00:00:00Z, as the simulator's.
pub const START_NS: u64 = 1_767_225_600_000_000_000;

/// One execution's state. The model checkers run every task of an
/// execution as a coroutine on the test's own OS thread, so a thread-local
/// is per execution (reset at its start) and per test.
struct ExecState {
    now_ns: u64,
    /// Tasks and blocking threads started (loom's thread limit).
    #[cfg(faultline_loom)]
    tasks: u32,
    /// `draw`'s stream (shuttle draws from its own, replayed one).
    #[cfg(faultline_loom)]
    rng: rand_chacha::ChaCha8Rng,
}

thread_local! {
    static EXEC: RefCell<Option<ExecState>> = const { RefCell::new(None) };
}

/// Starts an execution's state (the check's seed feeds loom's `draw`).
pub(crate) fn begin_execution(seed: u64) {
    #[cfg(faultline_loom)]
    use rand_core::SeedableRng;
    #[cfg(not(faultline_loom))]
    let _ = seed;
    EXEC.with(|e| {
        *e.borrow_mut() = Some(ExecState {
            now_ns: START_NS,
            #[cfg(faultline_loom)]
            tasks: 0,
            #[cfg(faultline_loom)]
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
        });
    });
}

fn with_exec<R>(f: impl FnOnce(&mut ExecState) -> R) -> R {
    EXEC.with(|e| {
        let mut e = e.borrow_mut();
        let state = e.as_mut().unwrap_or_else(|| {
            panic!("faultline: a World is used outside its {CHECKER} execution")
        });
        f(state)
    })
}

fn unmodelled(what: &str) -> ! {
    panic!(
        "faultline: World::{what} is not modelled under {CHECKER} (nodes, crashes, pauses and \
         fault plans are the simulator's): run this body in the simulator (a build without \
         --cfg faultline_{CHECKER})"
    )
}

/// The main (and only) node under a model checker: a [`Clock`] over the
/// execution's logical clock and a [`Scheduler`] over the checker's tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ModelHandle;

impl Clock for ModelHandle {
    fn now_ns(&self) -> u64 {
        with_exec(|e| e.now_ns)
    }

    /// Yields once, then moves the logical clock to `deadline_ns` (never
    /// back): see the module docs on time.
    fn sleep_until(&self, deadline_ns: u64) -> BoxFuture<()> {
        Box::pin(async move {
            ModelHandle.yield_now().await;
            with_exec(|e| e.now_ns = e.now_ns.max(deadline_ns));
        })
    }
}

impl Scheduler for ModelHandle {
    #[cfg(all(faultline_shuttle, not(faultline_loom)))]
    fn spawn(&self, _name: &'static str, fut: BoxFuture<()>) -> TaskHandle {
        TaskHandle::new(Box::new(ShuttleTask(shuttle::future::spawn(fut))))
    }

    #[cfg(faultline_loom)]
    fn spawn(&self, name: &'static str, fut: BoxFuture<()>) -> TaskHandle {
        count_loom_task(name);
        ThreadScheduler.spawn(name, fut)
    }

    fn spawn_blocking(
        &self,
        name: &'static str,
        work: Box<dyn FnOnce() + Send>,
    ) -> BoxFuture<Result<(), JoinError>> {
        #[cfg(faultline_loom)]
        count_loom_task(name);
        ThreadScheduler.spawn_blocking(name, work)
    }

    #[cfg(all(faultline_shuttle, not(faultline_loom)))]
    fn yield_now(&self) -> BoxFuture<()> {
        Box::pin(shuttle::future::yield_now())
    }

    #[cfg(faultline_loom)]
    fn yield_now(&self) -> BoxFuture<()> {
        ThreadScheduler.yield_now()
    }
}

/// Counts a loom thread and fails clearly before loom's own limit does.
#[cfg(faultline_loom)]
fn count_loom_task(name: &str) {
    let n = with_exec(|e| {
        e.tasks += 1;
        e.tasks
    });
    assert!(
        n <= LOOM_TASKS_MAX,
        "faultline: this body starts more than {LOOM_TASKS_MAX} tasks (task '{name}' is number \
         {n}); loom runs at most 5 threads per model, the body's own included, so it does not \
         fit loom: check it under the simulator or shuttle, or start fewer tasks"
    );
}

/// A shuttle task's handle as the world's [`TaskHandle`].
#[cfg(all(faultline_shuttle, not(faultline_loom)))]
struct ShuttleTask(shuttle::future::JoinHandle<()>);

#[cfg(all(faultline_shuttle, not(faultline_loom)))]
impl crate::sched::TaskControl for ShuttleTask {
    fn abort(&self) {
        self.0.abort();
    }
    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
    fn poll_join(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), JoinError>> {
        // A task that panics fails the whole shuttle execution, so the only
        // error a handle sees is cancellation.
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.map_err(|_| JoinError::Cancelled))
    }
}

/// A test body's view of one model-checked execution. `Copy`: hand it to
/// every task. See the [module docs](self) for what each method does under
/// each checker, and what is not modelled.
#[derive(Clone, Copy, Debug)]
pub struct World {
    main: ModelHandle,
}

impl World {
    pub(crate) fn new() -> World {
        World { main: ModelHandle }
    }

    /// The main node's handle (a `Clock` and a `Scheduler`).
    pub fn main(&self) -> ModelHandle {
        self.main
    }

    /// The logical clock, as a trait object for code under test.
    pub fn clock(&self) -> DynArc<dyn Clock> {
        DynArc::new(self.main)
    }

    /// The checker's scheduler, as a trait object for code under test.
    pub fn scheduler(&self) -> DynArc<dyn Scheduler> {
        DynArc::new(self.main)
    }

    /// The logical clock, ns (starts at 2026-01-01T00:00:00Z).
    pub fn now_ns(&self) -> u64 {
        self.main.now_ns()
    }

    /// The logical clock, ms.
    pub fn now_ms(&self) -> u64 {
        self.main.now_ns() / 1_000_000
    }

    /// Yields, then moves the logical clock `duration` on (at least): not
    /// virtual time, see the module docs.
    pub fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        Clock::sleep(&self.main, duration)
    }

    /// Lets other tasks run (a switch point of the checker).
    pub fn yield_now(&self) -> BoxFuture<()> {
        Scheduler::yield_now(&self.main)
    }

    /// Starts `fut` as a task; awaiting the handle gives its output.
    ///
    /// # Panics
    /// Under loom, for a body's fifth task (loom's thread limit).
    pub fn spawn<T, F>(&self, name: impl Into<TaskName>, fut: F) -> JoinHandle<T>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        spawn_typed(&self.main, name, fut)
    }

    /// Starts `fut` as a task on `node`: only the main node exists here.
    ///
    /// # Panics
    /// Never for the main node (see [`World::node`]).
    pub fn spawn_on<T, F>(
        &self,
        node: ModelHandle,
        name: impl Into<TaskName>,
        fut: F,
    ) -> JoinHandle<T>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        spawn_typed(&node, name, fut)
    }

    /// Runs blocking `work` on a thread of the checker.
    ///
    /// # Errors
    /// [`JoinError`] when the work did not finish.
    pub async fn blocking<T, W>(&self, name: &'static str, work: W) -> Result<T, JoinError>
    where
        T: Send + 'static,
        W: FnOnce() -> T + Send + 'static,
    {
        crate::sched::run_blocking(&self.main, name, work).await
    }

    /// Nodes are not modelled.
    ///
    /// # Panics
    /// Always, naming the checker.
    pub fn node(&self, name: &str) -> Option<ModelHandle> {
        unmodelled(&format!("node({name:?})"))
    }

    /// Crashes are not modelled.
    ///
    /// # Panics
    /// Always, naming the checker.
    pub fn crash(&self, _node: ModelHandle, _downtime: Duration) {
        unmodelled("crash")
    }

    /// Pauses are not modelled.
    ///
    /// # Panics
    /// Always, naming the checker.
    pub fn pause(&self, _node: ModelHandle, _pause: Duration) {
        unmodelled("pause")
    }

    /// Moves the logical clock by `delta_ns` (either way).
    pub fn jump_clock(&self, _node: ModelHandle, delta_ns: i64) {
        with_exec(|e| e.now_ns = e.now_ns.saturating_add_signed(delta_ns));
    }

    /// A draw in `0..bound` (0 when `bound` is 0): shuttle's
    /// scheduler-controlled randomness, or loom's per-execution stream.
    pub fn draw(&self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        let x = next_u64();
        ((u128::from(x) * u128::from(bound)) >> 64) as u64
    }

    /// `false`: no fault plan strikes under a model checker.
    pub fn buggify(&self, _site: &'static str, _kind: FaultKind) -> bool {
        false
    }

    /// Ignored (no report reads metrics here).
    pub fn metric_add(&self, _name: &'static str, _v: f64) {}

    /// Ignored (no report reads metrics here).
    pub fn metric_set(&self, _name: &'static str, _v: f64) {}

    /// Ignored (no plots here).
    pub fn sample(&self, _name: &'static str, _v: f64) {}

    /// Logs `text` with `tracing` (target `faultline::note`).
    pub fn note(&self, text: impl std::fmt::Display) {
        tracing::info!(target: "faultline::note", "{text}");
    }

    /// Fails the execution: panics with the oracle's tag, in the
    /// simulator's words (`invariant 'TAG' violated: MSG`), so the checker
    /// reports the failing schedule.
    ///
    /// # Panics
    /// Always: that is how a model checker sees a failure.
    pub fn fail(&self, oracle: &str, msg: impl Into<String>) {
        panic!("invariant '{oracle}' violated: {}", msg.into());
    }
}

#[cfg(all(faultline_shuttle, not(faultline_loom)))]
fn next_u64() -> u64 {
    let mut rng = shuttle::rand::thread_rng(); // allow-world: shuttle's seeded RNG, replayed with its schedule
    shuttle::rand::RngCore::next_u64(&mut rng)
}

#[cfg(faultline_loom)]
fn next_u64() -> u64 {
    use rand_core::Rng;
    with_exec(|e| e.rng.next_u64())
}
