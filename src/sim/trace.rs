//! The run's event trace: a running hash of every event (same seed, same
//! build: same hash), and optionally a readable log.
//!
//! The log holds the simulator's own events (polls, spawns, ends, time
//! jumps, faults, node events; each hashed) and lines that are not events:
//! notes ([`note`](super::note)) and the code under test's `tracing`
//! events, which the simulator routes here during a run
//! ([`trace_layer`](super::trace_layer)). Those are *not* hashed: adding a
//! `debug!` to a service changes no trace hash and no replay file.

use super::context::NodeId;
use crate::sched::TaskName;
use std::collections::BTreeMap;

/// What happened at one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EventKind {
    /// A task was polled.
    Poll = 1,
    /// A task finished.
    Done = 2,
    /// A task was spawned.
    Spawn = 3,
    /// Time jumped forward to a timer.
    TimeJump = 4,
    /// A fault struck.
    Fault = 5,
    /// A node crashed, restarted, paused or had its clock moved.
    Node = 6,
}

/// What a line of the readable log is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LineKind {
    /// A task was polled.
    Poll,
    /// A task finished.
    Done,
    /// A task was spawned.
    Spawn,
    /// Time jumped forward.
    Time,
    /// A fault struck.
    Fault,
    /// A node crashed, restarted, paused or had its clock moved.
    Node,
    /// A note ([`note`](super::note)).
    Note,
    /// A `tracing` event of the code under test (the story of the run).
    Story,
}

impl LineKind {
    /// A short lower-case name (`"poll"`, `"story"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            LineKind::Poll => "poll",
            LineKind::Done => "done",
            LineKind::Spawn => "spawn",
            LineKind::Time => "time",
            LineKind::Fault => "fault",
            LineKind::Node => "node",
            LineKind::Note => "note",
            LineKind::Story => "story",
        }
    }

    fn of(kind: EventKind) -> LineKind {
        match kind {
            EventKind::Poll => LineKind::Poll,
            EventKind::Done => LineKind::Done,
            EventKind::Spawn => LineKind::Spawn,
            EventKind::TimeJump => LineKind::Time,
            EventKind::Fault => LineKind::Fault,
            EventKind::Node => LineKind::Node,
        }
    }
}

/// One line of a run's readable log, with what a viewer needs to place it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceLine {
    /// Virtual time since the start of the run, ns (never wall-clock).
    pub time_ns: u64,
    /// The step: the number of the poll the line belongs to (a poll's own
    /// line and the lines logged during it), or of the last poll (lines
    /// between polls: timers, time jumps, node events).
    pub step: u64,
    /// The task it is about (or that was running), if any.
    pub task: Option<u64>,
    /// That task's node, if known.
    pub node: Option<NodeId>,
    /// What the line is.
    pub kind: LineKind,
    /// A story line's level (`"INFO"`, `"DEBUG"`, ...); empty otherwise.
    pub level: &'static str,
    /// A story line's `tracing` target (module path); empty otherwise.
    pub target: &'static str,
    /// The text (a story line's message).
    pub text: String,
    /// A story line's fields other than the message, in call order.
    pub fields: Vec<(&'static str, String)>,
}

/// A task as the log knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskInfo {
    /// The name it was spawned with (its kind and label: `instance i3`).
    pub name: TaskName,
    /// Its node.
    pub node: NodeId,
}

/// The structured readable log of a run (empty unless
/// [`SimConfig::keep_log`](super::SimConfig::keep_log) was set).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceLog {
    /// The lines, in order.
    pub lines: Vec<TraceLine>,
    /// Every task spawned while the log was kept, by id.
    pub tasks: BTreeMap<u64, TaskInfo>,
    /// Node names, by [`NodeId`].
    pub nodes: Vec<String>,
}

impl TraceLog {
    /// `task 4 'appender'`, `task 7 'instance i3'` (or `task 4` when the
    /// name is not known).
    pub fn task_label(&self, task: u64) -> String {
        match self.tasks.get(&task) {
            Some(t) => format!("task {task} '{}'", t.name),
            None => format!("task {task}"),
        }
    }

    /// The name of `node` (`"node N"` when not known).
    pub fn node_name(&self, node: NodeId) -> String {
        self.nodes
            .get(node as usize)
            .cloned()
            .unwrap_or_else(|| format!("node {node}"))
    }

    /// The line as the plain log shows it: virtual time, then the text
    /// (a story line: its level, task, node, message and fields).
    pub fn render(&self, line: &TraceLine) -> String {
        let at_ms = line.time_ns as f64 / 1e6;
        if line.kind != LineKind::Story {
            return format!("{at_ms:>12.3} ms  {}", line.text);
        }
        let who = match (line.task, line.node) {
            (Some(t), Some(n)) => format!("{} on {}", self.task_label(t), self.node_name(n)),
            (Some(t), None) => self.task_label(t),
            (None, _) => "outside any task".into(),
        };
        format!(
            "{at_ms:>12.3} ms  {:<5} {who}: {}{}",
            line.level,
            line.text,
            fields_text(&line.fields)
        )
    }
}

/// ` {k=v, k=v}`, or nothing when there are no fields.
pub fn fields_text(fields: &[(&'static str, String)]) -> String {
    if fields.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("  {{{}}}", inner.join(", "))
}

/// The hash of an empty trace (FNV-1a's offset basis).
const HASH_START: u64 = 0xcbf2_9ce4_8422_2325;
/// An odd multiplier with well-spread bits (2^64 / golden ratio).
const MIX_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

/// The event trace of one run.
pub(crate) struct Trace {
    pub(crate) hash: u64,
    /// Events traced (the lines a full log of the run has).
    pub(crate) events: u64,
    pub(crate) start_ns: u64,
    pub(crate) log: Option<Vec<TraceLine>>,
    /// Tasks spawned while a log is kept (their names and nodes).
    pub(crate) tasks: BTreeMap<u64, TaskInfo>,
    /// Polls so far (the `step` of a line).
    polls: u64,
    log_max: usize,
}

impl Trace {
    pub(crate) fn new(keep_log: bool, log_max: usize) -> Self {
        Trace {
            hash: HASH_START,
            events: 0,
            start_ns: 0,
            log: keep_log.then(Vec::new),
            tasks: BTreeMap::new(),
            polls: 0,
            log_max,
        }
    }

    pub(crate) fn with_start(keep_log: bool, log_max: usize, start_ns: u64) -> Self {
        let mut t = Trace::new(keep_log, log_max);
        t.start_ns = start_ns;
        t
    }

    /// Folds one word into the hash. Each step (xor, multiply by an odd
    /// constant, xor-shift) is a bijection of the state for a given word, so
    /// two traces that differ in a single word always hash differently.
    #[inline]
    fn mix(&mut self, v: u64) {
        let h = (self.hash ^ v).wrapping_mul(MIX_MUL);
        self.hash = h ^ (h >> 32);
    }

    /// Hashes one event; `describe` is only called when a log is kept.
    #[inline]
    pub(crate) fn event(
        &mut self,
        now_ns: u64,
        kind: EventKind,
        task: u64,
        extra: u64,
        describe: impl FnOnce() -> String,
    ) {
        self.mix(now_ns);
        self.mix(kind as u64);
        self.mix(task);
        self.mix(extra);
        self.events += 1;
        if kind == EventKind::Poll {
            self.polls += 1;
        }
        if self.log.is_some() {
            let task = match kind {
                EventKind::Poll | EventKind::Done | EventKind::Spawn | EventKind::Fault => {
                    (task != u64::MAX).then_some(task)
                }
                EventKind::TimeJump | EventKind::Node => None,
            };
            let node = task.and_then(|t| self.tasks.get(&t)).map(|t| t.node);
            self.log_line(now_ns, LineKind::of(kind), task, node, describe);
        }
    }

    /// Whether a readable log is kept.
    #[inline]
    pub(crate) fn keeps_log(&self) -> bool {
        self.log.is_some()
    }

    /// Logs a line that is not an event: it is not hashed, so adding or
    /// removing it changes no trace hash ([`note`](super::note)).
    pub(crate) fn note(
        &mut self,
        now_ns: u64,
        current: Option<(u64, NodeId)>,
        describe: impl FnOnce() -> String,
    ) {
        if self.log.is_some() {
            let (task, node) = current.map_or((None, None), |(t, n)| (Some(t), Some(n)));
            self.polls += u64::from(current.is_some());
            self.log_line(now_ns, LineKind::Note, task, node, describe);
            self.polls -= u64::from(current.is_some());
        }
    }

    /// Remembers a task's name and node, when a log is kept.
    #[inline]
    pub(crate) fn task_spawned(&mut self, id: u64, name: TaskName, node: NodeId) {
        if self.log.is_some() {
            self.tasks.insert(id, TaskInfo { name, node });
        }
    }

    /// Logs a story line (a `tracing` event; not hashed).
    pub(crate) fn story(&mut self, now_ns: u64, current: Option<(u64, NodeId)>, story: Story) {
        let time_ns = now_ns.saturating_sub(self.start_ns);
        // A line logged during a poll belongs to that poll's step.
        let step = self.polls + u64::from(current.is_some());
        if let Some(log) = &mut self.log {
            if log.len() < self.log_max {
                log.push(TraceLine {
                    time_ns,
                    step,
                    task: current.map(|c| c.0),
                    node: current.map(|c| c.1),
                    kind: LineKind::Story,
                    level: story.level,
                    target: story.target,
                    text: story.message,
                    fields: story.fields,
                });
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn log_line(
        &mut self,
        now_ns: u64,
        kind: LineKind,
        task: Option<u64>,
        node: Option<NodeId>,
        describe: impl FnOnce() -> String,
    ) {
        let time_ns = now_ns.saturating_sub(self.start_ns);
        let step = self.polls;
        if let Some(log) = &mut self.log {
            if log.len() < self.log_max {
                log.push(TraceLine {
                    time_ns,
                    step,
                    task,
                    node,
                    kind,
                    level: "",
                    target: "",
                    text: describe(),
                    fields: Vec::new(),
                });
            }
        }
    }
}

/// A `tracing` event, taken apart ([`trace_layer`](super::trace_layer)).
pub(crate) struct Story {
    pub(crate) level: &'static str,
    pub(crate) target: &'static str,
    pub(crate) message: String,
    pub(crate) fields: Vec<(&'static str, String)>,
}

/// Folds many runs' trace hashes into one digest (order-sensitive), so two
/// seed sweeps can be compared at a glance.
pub fn digest(hashes: impl IntoIterator<Item = u64>) -> u64 {
    let mut d = Digest::new();
    for h in hashes {
        d.add(h);
    }
    d.value()
}

/// [`digest`], one hash at a time.
pub struct Digest(Trace);

impl Digest {
    /// The digest of no hashes.
    pub fn new() -> Self {
        Digest(Trace::new(false, 0))
    }

    /// Folds in the next hash.
    pub fn add(&mut self, hash: u64) {
        self.0.mix(hash);
    }

    /// The digest so far.
    pub fn value(&self) -> u64 {
        self.0.hash
    }
}

impl Default for Digest {
    fn default() -> Self {
        Digest::new()
    }
}
