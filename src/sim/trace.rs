//! The run's event trace: a running hash of every event (same seed, same
//! build: same hash), and optionally a readable log.

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
    pub(crate) log: Option<Vec<String>>,
    log_max: usize,
}

impl Trace {
    pub(crate) fn new(keep_log: bool, log_max: usize) -> Self {
        Trace {
            hash: HASH_START,
            events: 0,
            start_ns: 0,
            log: keep_log.then(Vec::new),
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
        if self.log.is_some() {
            self.log_line(now_ns, describe);
        }
    }

    /// Logs a line that is not an event: it is not hashed, so adding or
    /// removing it changes no trace hash ([`note`](super::note)).
    pub(crate) fn note(&mut self, now_ns: u64, describe: impl FnOnce() -> String) {
        if self.log.is_some() {
            self.log_line(now_ns, describe);
        }
    }

    #[cold]
    #[inline(never)]
    fn log_line(&mut self, now_ns: u64, describe: impl FnOnce() -> String) {
        let at_ms = now_ns.saturating_sub(self.start_ns) as f64 / 1e6;
        if let Some(log) = &mut self.log {
            if log.len() < self.log_max {
                log.push(format!("{at_ms:>12.3} ms  {}", describe()));
            }
        }
    }
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
