//! The deterministic executor: one thread, one task polled at a time, the
//! next one chosen by the schedule policy, time jumping to the next timer
//! when every task is blocked.

mod finish;
mod nodes;
mod spare;

use super::context::{self, Core, NewTask, NodeId, Shared, Threads, TimerAction};
use super::failure::Failure;
use super::faults::FaultPlan;
use super::handle::{start_blocking, SimHandle};
use super::lockorder::LockOrder;
use super::memory::MemoryMeter;
use super::node::{Boot, Node, NodeConfig};
use super::outcome::Outcome;
use super::pct::PctPolicy;
use super::policy::{Decision, Mismatch, Policy, Recorder, TaskId};
use super::probe_impl::SimProbe;
use super::random::RandomPolicy;
use super::ready::SlotState;
use super::replay::ReplayPolicy;
use super::switch::{self, Polled, TaskCo};
use super::trace::{EventKind, Trace};
use crate::sched::{Completion, JoinError, TaskName};
use crate::sync::Arc;
use crate::BoxFuture;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::task::{Context, Poll};

/// Virtual time at which every run starts: 2026-01-01T00:00:00Z, so event
/// timestamps look like real ones and `now - window` never underflows.
pub const SIM_EPOCH_NS: u64 = 1_767_225_600_000_000_000;

/// Which schedule policy a run uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    /// Uniformly random among runnable tasks.
    Random,
    /// PCT with this bug depth ([`PctPolicy`](super::PctPolicy): the
    /// paper's algorithm; how to choose the depth and size `k`).
    Pct {
        /// Bug depth `d` (number of ordering constraints), at least 1.
        depth: u32,
        /// About how many scheduling decisions (among two or more runnable
        /// tasks) a run makes: PCT's `k`. 0: not known, each change point
        /// draws its own scale ([`PctPolicy::measure_steps`] measures it).
        expected_steps: u64,
    },
    /// Every choice read from a fuzzer's bytes ([`BytesPolicy`](super::BytesPolicy)).
    Bytes(Vec<u8>),
    /// Replays recorded decisions (strict: a misfit is a failure).
    Replay {
        /// The recorded decisions.
        decisions: Vec<Decision>,
        /// Strict (replay a file) or lenient (shrinking).
        strict: bool,
    },
}

/// How one simulated run is set up. Every field has a default.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed of the policy's random stream. Default 0.
    pub seed: u64,
    /// The schedule policy. Default random.
    pub policy: PolicyKind,
    /// Virtual CPU time each poll costs. Default 1 µs.
    pub poll_cost_ns: u64,
    /// The event loop's overhead for the tasks it keeps alive (see
    /// [`LoopCost`](super::LoopCost)). Default: none.
    pub loop_cost: super::LoopCost,
    /// Polls allowed before the run fails as a livelock. Default 10 M.
    pub steps_max: u64,
    /// Virtual time allowed. Default 1 day.
    pub time_max_ns: u64,
    /// Chance (per million) that a task that returned `Pending` is polled
    /// again without any wake-up (a spurious poll). Default 0.
    pub spurious_wake_ppm: u32,
    /// Memory limit of the memory meter; crossing it is an OOM failure.
    /// Default none.
    pub mem_limit_bytes: Option<u64>,
    /// Blocking threads at most (`spawn_blocking` queues beyond). Default
    /// unlimited.
    pub threads_max: Option<usize>,
    /// The faults to inject. Default none.
    pub faults: FaultPlan,
    /// Keep a readable event log (replay `--trace`). Default false.
    pub keep_log: bool,
    /// Lines of event log kept at most. Default 100,000.
    pub log_lines_max: usize,
    /// Sync-switch mode: the entry of the shim's blocking `Mutex::with`
    /// (outermost call) is a switch point where the policy may run another
    /// task, so synchronous sections interleave as on worker threads
    /// ([`switch`](super::switch)). Default false: tasks switch at
    /// `.await` only, and no extra decision or draw is made.
    pub sync_switch: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 0,
            policy: PolicyKind::Random,
            poll_cost_ns: 1_000,
            loop_cost: super::LoopCost::default(),
            steps_max: 10_000_000,
            time_max_ns: 86_400 * 1_000_000_000,
            spurious_wake_ppm: 0,
            mem_limit_bytes: None,
            threads_max: None,
            faults: FaultPlan::none(),
            keep_log: false,
            log_lines_max: 100_000,
            sync_switch: false,
        }
    }
}

/// What a poll needs of a task, in 32 bytes on one cache line: with
/// thousands of tasks polled in random order, every line a poll touches is
/// a likely miss. The rest is in [`TaskCold`].
#[repr(align(32))]
struct TaskSlot {
    fut: BoxFuture<()>,
    id: TaskId,
    node: NodeId,
    /// The slot's generation while this task lives in it (its wakers').
    gen: u32,
}

/// What only spawning, ending and reports need of a task.
struct TaskCold {
    name: TaskName,
    done: Arc<Completion>,
}

/// One deterministic simulated run.
///
/// Only one `Sim` may exist per thread at a time (its handles find it
/// through a thread-local).
pub struct Sim {
    pub(crate) shared: Rc<Shared>,
    tasks: Vec<Option<TaskSlot>>,
    /// `cold[slot]` goes with `tasks[slot]`.
    cold: Vec<Option<TaskCold>>,
    free: Vec<u32>,
    slot_of: BTreeMap<TaskId, u32>,
    cfg: SimConfig,
    steps: u64,
    /// The slot of the task polled last, while that task lives.
    last_slot: Option<u32>,
    /// The main task's id, and whether it has ended.
    main_id: TaskId,
    main_done: bool,
    /// Nodes that are down, and the latest end of a node pause: while none
    /// is down and no pause lasts, every ready task is eligible.
    nodes_down: u32,
    pause_end_max_ns: u64,
    eligible: Vec<TaskId>,
    eligible_pos: Vec<usize>,
    /// The batch of spawned tasks being admitted (kept for its buffer).
    admitting: Vec<NewTask>,
    loop_cost: super::cost::LoopMeter,
    /// The (emptied) holder of the recycled buffers, refilled at the end.
    spare: Option<Box<spare::Spare>>,
    /// Sync-switch mode: `suspended[slot]` is the poll that task stopped at
    /// a switch point (empty in the default mode).
    suspended: Vec<Option<TaskCo>>,
    _switch: Option<crate::sync::switch::Installed>,
    _probe: crate::probe::Installed,
    /// The code under test's `tracing` events go to this run's trace while
    /// the `Sim` lives (this thread only; see `trace_layer`).
    _tracing: tracing::dispatcher::DefaultGuard,
}

impl Sim {
    /// Sets up a run; node 0 (`"main"`) exists from the start and never
    /// faults.
    ///
    /// # Panics
    /// When another `Sim` is alive on this thread.
    pub fn new(cfg: SimConfig) -> Sim {
        let policy: Box<dyn Policy> = match &cfg.policy {
            PolicyKind::Random => Box::new(RandomPolicy::new(cfg.seed)),
            PolicyKind::Pct {
                depth,
                expected_steps,
            } => Box::new(PctPolicy::new(cfg.seed, *depth, *expected_steps)),
            PolicyKind::Replay { decisions, strict } => {
                Box::new(ReplayPolicy::new(decisions.clone(), *strict))
            }
            PolicyKind::Bytes(bytes) => Box::new(super::bytes::BytesPolicy::new(bytes.clone())),
        };
        let mut spare = spare::take();
        let core = Core {
            now_ns: SIM_EPOCH_NS,
            start_ns: SIM_EPOCH_NS,
            timers: std::mem::take(&mut spare.timers),
            nodes: vec![Node::new("main".into(), NodeConfig::default(), None)],
            spawned: std::mem::take(&mut spare.spawned),
            next_task: 0,
            aborts: std::mem::take(&mut spare.aborts),
            threads: Threads {
                threads_max: cfg.threads_max,
                ..Default::default()
            },
            fault_log: Vec::new(),
        };
        let shared = Rc::new(Shared {
            ready: RefCell::new(std::mem::take(&mut spare.ready)),
            core: RefCell::new(core),
            rec: RefCell::new(Recorder::new(policy)),
            current: Cell::new(None),
            failure: RefCell::new(None),
            failed: Cell::new(false),
            mem: RefCell::new(MemoryMeter::new(cfg.mem_limit_bytes)),
            locks: RefCell::new(LockOrder::default()),
            trace: RefCell::new(Trace::with_start(
                cfg.keep_log,
                cfg.log_lines_max,
                SIM_EPOCH_NS,
            )),
            blocking_ns: Cell::new(None),
            plan: cfg.faults.clone(),
            metrics: RefCell::new(super::metrics::Recording::default()),
        });
        context::install(Rc::clone(&shared));
        super::quiet_panics::install_hook();
        let switching = cfg
            .sync_switch
            .then(|| crate::sync::switch::install(super::switch::switch_point));
        Sim {
            loop_cost: super::cost::LoopMeter::new(cfg.loop_cost),
            shared,
            tasks: std::mem::take(&mut spare.tasks),
            cold: std::mem::take(&mut spare.cold),
            free: std::mem::take(&mut spare.free),
            slot_of: BTreeMap::new(),
            cfg,
            steps: 0,
            last_slot: None,
            main_id: TaskId::MAX,
            main_done: false,
            nodes_down: 0,
            pause_end_max_ns: 0,
            eligible: std::mem::take(&mut spare.eligible),
            eligible_pos: std::mem::take(&mut spare.eligible_pos),
            admitting: std::mem::take(&mut spare.admitting),
            spare: Some(spare),
            suspended: Vec::new(),
            _switch: switching,
            _probe: crate::probe::install(Rc::new(SimProbe)),
            _tracing: super::trace_layer::install(),
        }
    }

    /// Adds a node; `boot` (if any) spawns its tasks at the start of the run
    /// and again after every restart.
    pub fn add_node(&mut self, name: &str, cfg: NodeConfig, boot: Option<Boot>) -> SimHandle {
        let mut core = self.shared.core.borrow_mut();
        core.nodes.push(Node::new(name.to_string(), cfg, boot));
        SimHandle {
            node: (core.nodes.len() - 1) as NodeId,
        }
    }

    /// The handle of node 0, `"main"`.
    pub fn main_handle(&self) -> SimHandle {
        SimHandle { node: 0 }
    }

    /// Current virtual time (true time, not a node's clock).
    pub fn now_ns(&self) -> u64 {
        self.shared.now_ns()
    }

    /// Runs until `main` (on node 0) completes, a failure occurs, or a
    /// limit is reached, and reports what happened.
    pub fn run(mut self, main: impl Future<Output = ()> + Send + 'static) -> Outcome {
        self.boot_nodes();
        self.schedule_node_faults();
        let mut core = self.shared.core.borrow_mut();
        let id = core.next_task;
        core.next_task += 1;
        core.spawned.push(NewTask {
            id,
            node: 0,
            name: TaskName::new("main"),
            fut: Box::pin(main),
            done: Arc::new(Completion::default()),
        });
        drop(core);
        self.main_id = id;
        self.shared.rec.borrow_mut().policy.on_spawn(id);
        self.admit_spawned();
        while !self.shared.failed.get() && !self.main_done {
            if !self.step() {
                break;
            }
        }
        self.finish()
    }

    fn boot_nodes(&mut self) {
        let boots: Vec<(NodeId, Boot)> = {
            let core = self.shared.core.borrow();
            core.nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| n.boot.clone().map(|b| (i as NodeId, b)))
                .collect()
        };
        for (node, boot) in boots {
            boot(SimHandle { node });
        }
    }

    /// One scheduling step: fire due timers, pick a task, poll it. Returns
    /// false when the run must stop.
    #[inline]
    fn step(&mut self) -> bool {
        let (now, due) = {
            let core = self.shared.core.borrow();
            (core.now_ns, core.timers.maybe_due(core.now_ns))
        };
        let now = if due {
            self.fire_due_timers();
            self.shared.now_ns()
        } else {
            now
        };
        let slot = match self.choose(now) {
            Chosen::At(slot) => slot,
            Chosen::Nothing => return self.advance_time(),
            Chosen::Mismatch => return false,
        };
        self.poll_slot(slot);
        let (spawned, aborts) = {
            let core = self.shared.core.borrow();
            (!core.spawned.is_empty(), !core.aborts.is_empty())
        };
        if spawned {
            self.admit_batch();
        }
        if aborts {
            self.process_aborts();
        }
        self.steps += 1;
        if self.steps >= self.cfg.steps_max {
            self.shared.fail(Failure::StepLimit(self.cfg.steps_max));
            return false;
        }
        true
    }

    /// Picks the next task among the eligible ones (ready, on a node that is
    /// up and not paused) and takes it out of the ready queue.
    #[inline]
    fn choose(&mut self, now: u64) -> Chosen {
        if self.nodes_down > 0 || self.pause_end_max_ns > now {
            return self.choose_filtered(now);
        }
        // Every node runs: every ready task is eligible, in queue order.
        let mut ready = self.shared.ready.borrow_mut();
        let pos = match ready.ids.len() {
            0 => return Chosen::Nothing,
            1 => 0,
            _ => {
                let default = match self.last_slot.and_then(|s| ready.pos(s)) {
                    Some(pos) => pos,
                    None => ready.oldest_pos(),
                };
                let last = self.last_id();
                let picked = self.shared.rec.borrow_mut().pick(&ready.ids, default, last);
                match picked {
                    Ok(pos) => pos,
                    Err(m) => {
                        drop(ready);
                        return self.mismatch(m);
                    }
                }
            }
        };
        Chosen::At(ready.take_at(pos))
    }

    /// `choose` when some node is down or paused: only the ready tasks of
    /// runnable nodes are eligible.
    fn choose_filtered(&mut self, now: u64) -> Chosen {
        self.eligible.clear();
        self.eligible_pos.clear();
        {
            let ready = self.shared.ready.borrow();
            let core = self.shared.core.borrow();
            for (pos, (&slot, &id)) in ready.queue.iter().zip(&ready.ids).enumerate() {
                if let Some(t) = &self.tasks[slot as usize] {
                    if core.nodes[t.node as usize].runnable(now) {
                        self.eligible.push(id);
                        self.eligible_pos.push(pos);
                    }
                }
            }
        }
        let pos = match self.eligible.len() {
            0 => return Chosen::Nothing,
            1 => self.eligible_pos[0],
            _ => {
                let last = self
                    .last_slot
                    .and_then(|s| self.tasks[s as usize].as_ref())
                    .and_then(|t| self.eligible.iter().position(|&e| e == t.id));
                let default = last.unwrap_or_else(|| oldest(&self.eligible));
                let last = self.last_id();
                let picked = self
                    .shared
                    .rec
                    .borrow_mut()
                    .pick(&self.eligible, default, last);
                match picked {
                    Ok(i) => self.eligible_pos[i],
                    Err(m) => return self.mismatch(m),
                }
            }
        };
        Chosen::At(self.shared.ready.borrow_mut().take_at(pos))
    }

    /// The id of the task polled last, while it lives.
    #[inline]
    fn last_id(&self) -> Option<TaskId> {
        let slot = self.last_slot?;
        self.tasks[slot as usize].as_ref().map(|t| t.id)
    }

    #[cold]
    fn mismatch(&mut self, m: Mismatch) -> Chosen {
        self.shared.fail(Failure::ReplayMismatch(m.detail));
        Chosen::Mismatch
    }

    #[inline]
    fn poll_slot(&mut self, slot: u32) {
        let Some(task) = self.tasks[slot as usize].as_mut() else {
            return;
        };
        let (id, node, gen) = (task.id, task.node, task.gen);
        self.last_slot = Some(slot);
        self.shared.current.set(Some((id, node)));
        let polled = if self.cfg.sync_switch {
            let fut: switch::FutPtr = unsafe { task.fut.as_mut().get_unchecked_mut() };
            match self.poll_on_coroutine(slot, gen, fut) {
                Some(polled) => polled,
                None => return self.switched_out(slot, id, gen),
            }
        } else {
            let waker = context::waker(slot, gen);
            let mut cx = Context::from_waker(&waker);
            catch_unwind(AssertUnwindSafe(|| task.fut.as_mut().poll(&mut cx)))
        };
        self.shared.current.set(None);
        let now = self.charge_poll();
        let cold = &self.cold;
        self.shared
            .trace
            .borrow_mut()
            .event(now, EventKind::Poll, id, 0, || {
                format!("poll task {id} '{}'", task_name(cold, slot))
            });
        match polled {
            Ok(Poll::Pending) => {
                if self.cfg.spurious_wake_ppm > 0 && self.shared.coin(self.cfg.spurious_wake_ppm) {
                    self.shared.ready.borrow_mut().wake(slot, gen);
                }
            }
            Ok(Poll::Ready(())) => self.remove_slot(slot, Ok(())),
            Err(payload) => {
                let message = super::quiet_panics::message(&payload);
                self.shared.fail(Failure::Panic {
                    task: task_name(&self.cold, slot).to_string(),
                    message,
                });
                self.remove_slot(slot, Err(JoinError::Panicked));
            }
        }
    }

    /// Advances virtual time by one poll's cost (and the loop overhead);
    /// returns the new time.
    #[inline]
    fn charge_poll(&mut self) -> u64 {
        let mut core = self.shared.core.borrow_mut();
        let since = core.now_ns - core.start_ns;
        let overhead = self.loop_cost.after_poll(since, self.slot_of.len());
        core.now_ns += self.cfg.poll_cost_ns + overhead;
        core.now_ns
    }

    /// Sync-switch mode: polls (or resumes the suspended poll of) the task
    /// in `slot` on a coroutine; `None` when it stopped at a switch point.
    fn poll_on_coroutine(&mut self, slot: u32, gen: u32, fut: switch::FutPtr) -> Option<Polled> {
        let i = slot as usize;
        if self.suspended.len() <= i {
            self.suspended.resize_with(i + 1, || None);
        }
        // SAFETY: the future lives in its task's `Box` until `remove_slot`,
        // which first finishes a suspended poll; a suspended task is only
        // resumed, never polled again.
        let mut co = match self.suspended[i].take() {
            Some(co) => co,
            None => unsafe { switch::start(fut, slot, gen) },
        };
        match switch::resume(&mut co, true) {
            Some(polled) => {
                switch::recycle(co);
                Some(polled)
            }
            None => {
                self.suspended[i] = Some(co);
                None
            }
        }
    }

    /// The task in `slot` stopped at a switch point: it is runnable again
    /// (the policy may keep it running or run another).
    #[cold]
    fn switched_out(&mut self, slot: u32, id: TaskId, gen: u32) {
        self.shared.current.set(None);
        let now = self.charge_poll();
        self.shared
            .trace
            .borrow_mut()
            .event(now, EventKind::Poll, id, 1, || {
                format!("task {id} stops at a synchronous switch point")
            });
        self.shared.ready.borrow_mut().wake(slot, gen);
    }

    /// Sync-switch mode: a task about to be removed while suspended at a
    /// switch point finishes that poll first (it cannot stop again), so
    /// its stack unwinds normally and its future is dropped only after.
    fn finish_suspended(&mut self, slot: u32, id: TaskId, node: NodeId) {
        let Some(mut co) = self.suspended.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        self.shared.current.set(Some((id, node)));
        let polled = switch::resume(&mut co, false).expect("a poll that cannot switch ends");
        self.shared.current.set(None);
        switch::recycle(co);
        if polled.is_err() {
            self.shared.fail(Failure::Panic {
                task: task_name(&self.cold, slot).to_string(),
                message: "panicked finishing a synchronous section".into(),
            });
        }
    }

    /// Places tasks spawned since the last call into the slab, runnable.
    #[inline]
    fn admit_spawned(&mut self) {
        if self.shared.core.borrow().spawned.is_empty() {
            return;
        }
        self.admit_batch();
    }

    fn admit_batch(&mut self) {
        // The two buffers trade places, so neither is allocated again.
        let mut batch = std::mem::take(&mut self.admitting);
        loop {
            {
                let mut core = self.shared.core.borrow_mut();
                if core.spawned.is_empty() {
                    break;
                }
                std::mem::swap(&mut core.spawned, &mut batch);
            }
            for t in batch.drain(..) {
                self.admit(t);
            }
        }
        self.admitting = batch;
    }

    fn admit(&mut self, t: NewTask) {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.tasks.push(None);
                self.cold.push(None);
                self.shared
                    .ready
                    .borrow_mut()
                    .slots
                    .push(SlotState::new(t.id));
                (self.tasks.len() - 1) as u32
            }
        };
        self.slot_of.insert(t.id, slot);
        self.shared
            .trace
            .borrow_mut()
            .task_spawned(t.id, t.name, t.node);
        let mut ready = self.shared.ready.borrow_mut();
        ready.new_tenant(slot, t.id);
        let gen = ready.slots[slot as usize].gen;
        ready.wake(slot, gen);
        drop(ready);
        self.tasks[slot as usize] = Some(TaskSlot {
            fut: t.fut,
            id: t.id,
            node: t.node,
            gen,
        });
        self.cold[slot as usize] = Some(TaskCold {
            name: t.name,
            done: t.done,
        });
    }

    /// Removes a task, drops its future (as that task, so its guards report
    /// their release) and reports its end to its handle.
    fn remove_slot(&mut self, slot: u32, result: Result<(), JoinError>) {
        if self.cfg.sync_switch {
            if let Some(t) = &self.tasks[slot as usize] {
                let (id, node) = (t.id, t.node);
                self.finish_suspended(slot, id, node);
            }
        }
        let Some(task) = self.tasks[slot as usize].take() else {
            return;
        };
        let TaskCold { name, done } = self.cold[slot as usize]
            .take()
            .expect("a live task has its cold half");
        {
            let mut ready = self.shared.ready.borrow_mut();
            ready.remove(slot);
            let st = &mut ready.slots[slot as usize];
            st.gen = st.gen.wrapping_add(1);
        }
        if self.last_slot == Some(slot) {
            self.last_slot = None;
        }
        if task.id == self.main_id {
            self.main_done = true;
        }
        self.free.push(slot);
        self.slot_of.remove(&task.id);
        let TaskSlot { id, fut, node, .. } = task;
        self.shared.current.set(Some((id, node)));
        let dropped = catch_unwind(AssertUnwindSafe(move || drop(fut)));
        self.shared.current.set(None);
        if dropped.is_err() {
            self.shared.fail(Failure::Panic {
                task: name.to_string(),
                message: "panicked while being dropped".into(),
            });
        }
        self.shared.locks.borrow_mut().forget(id);
        self.shared.event(EventKind::Done, id, 0, || {
            format!("task {id} '{name}' ended")
        });
        done.finish(result);
    }

    fn process_aborts(&mut self) {
        let aborts = {
            let mut core = self.shared.core.borrow_mut();
            if core.aborts.is_empty() {
                return;
            }
            std::mem::take(&mut core.aborts)
        };
        for id in aborts {
            if let Some(&slot) = self.slot_of.get(&id) {
                self.remove_slot(slot, Err(JoinError::Cancelled));
            }
        }
    }

    /// Fires every timer that is due at the current time.
    fn fire_due_timers(&mut self) {
        loop {
            let action = {
                let mut core = self.shared.core.borrow_mut();
                let now = core.now_ns;
                if !core.timers.maybe_due(now) {
                    return;
                }
                core.timers.pop_due(now)
            };
            match action {
                None => return,
                Some(TimerAction::Wake(w)) => w.wake(),
                Some(TimerAction::BlockingDone { done, node }) => self.blocking_done(&done, node),
                Some(TimerAction::Node(ev)) => self.node_event(ev),
            }
        }
    }

    fn blocking_done(&mut self, done: &Completion, _node: NodeId) {
        let next = {
            let mut core = self.shared.core.borrow_mut();
            let now = core.now_ns;
            let t = &mut core.threads;
            t.current -= 1;
            if t.samples.len() < super::memory::SAMPLES_MAX {
                t.samples.push((now, t.current));
            }
            t.queued.pop_front()
        };
        done.finish(Ok(()));
        if let Some(job) = next {
            start_blocking(&self.shared, job);
        }
    }

    /// Nothing can run: jump to the next timer or pause end, or report a
    /// deadlock. Returns false when the run must stop.
    fn advance_time(&mut self) -> bool {
        let next = {
            let mut core = self.shared.core.borrow_mut();
            let timer = core.timers.first_ns();
            let ready = self.shared.ready.borrow();
            let pause_end = ready
                .queue
                .iter()
                .filter_map(|&s| self.tasks[s as usize].as_ref())
                .map(|t| &core.nodes[t.node as usize])
                .filter(|n| n.up && n.paused_until_ns > core.now_ns)
                .map(|n| n.paused_until_ns)
                .min();
            match (timer, pause_end) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        let Some(next) = next else {
            let blocked = self.blocked_names();
            self.shared.fail(Failure::Deadlock { blocked });
            return false;
        };
        if next - SIM_EPOCH_NS > self.cfg.time_max_ns {
            self.shared.fail(Failure::TimeLimit(self.cfg.time_max_ns));
            return false;
        }
        let mut core = self.shared.core.borrow_mut();
        if next > core.now_ns {
            core.now_ns = next;
        }
        drop(core);
        self.shared.event(EventKind::TimeJump, 0, next, || {
            "time jumps to next timer".into()
        });
        true
    }

    fn blocked_names(&self) -> Vec<String> {
        let core = self.shared.core.borrow();
        self.tasks
            .iter()
            .zip(&self.cold)
            .filter_map(|(t, c)| Some((t.as_ref()?, c.as_ref()?)))
            .take(20)
            .map(|(t, c)| {
                format!(
                    "{} '{}' on {}",
                    t.id, c.name, core.nodes[t.node as usize].name
                )
            })
            .collect()
    }
}

/// What `choose` found.
enum Chosen {
    /// Run the task in this slot (taken out of the ready queue).
    At(u32),
    /// No task is eligible.
    Nothing,
    /// The policy's answer did not fit (the run has failed).
    Mismatch,
}

/// The name of the task in `slot` (`"?"` for an empty slot).
fn task_name(cold: &[Option<TaskCold>], slot: u32) -> TaskName {
    cold[slot as usize]
        .as_ref()
        .map_or(TaskName::new("?"), |c| c.name)
}

/// The index of the oldest (smallest id) task in `ids` (not empty).
fn oldest(ids: &[TaskId]) -> usize {
    let mut best = 0;
    for (i, &t) in ids.iter().enumerate().skip(1) {
        if t < ids[best] {
            best = i;
        }
    }
    best
}
