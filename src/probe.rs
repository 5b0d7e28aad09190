//! Probes: the world's fault points, memory meter and lock-order hooks.
//!
//! Service code calls these at the places where production can go wrong
//! ([`buggify`]), where it holds memory ([`charge`]) and where it takes locks
//! (through `Gate`/`Semaphore`/`Mutex` created with a [`LockClass`]). Outside
//! the simulator no probe is installed and every call is a cheap no-op (one
//! thread-local read). The simulator installs a [`Probe`] that draws faults
//! from its seed, meters memory against a limit and checks lock order.

use std::cell::RefCell;
use std::panic::Location;
use std::rc::Rc;

/// The kind of fault a fault point can inject.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum FaultKind {
    /// An operation fails with an error.
    Error,
    /// An operation is slow (a latency spike).
    Latency,
    /// An operation hangs until the caller's timeout.
    Hang,
    /// A peer answers 503 Service Unavailable (with a Retry-After).
    Unavailable,
    /// The process crashes at this point (the simulator drops the node's
    /// tasks; durable state is kept).
    Crash,
}

/// A named place in service code where a fault may strike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultPoint {
    /// Where, e.g. `"store.insert"`.
    pub site: &'static str,
    /// What may happen there.
    pub kind: FaultKind,
}

/// A lock's class for the lock-order checker: locks are taken in increasing
/// `rank`; taking a lower rank while holding a higher one is an inversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LockClass {
    /// The lock's name in reports, e.g. `"store.gate"`.
    pub name: &'static str,
    /// Its place in the declared order (lower first).
    pub rank: u32,
}

/// What the simulator implements to observe and steer service code.
pub trait Probe {
    /// Whether the fault at `point` strikes now.
    fn fault(&self, point: FaultPoint) -> bool;
    /// A seeded draw in `0..bound` (latencies, sizes), `0` when `bound == 0`.
    fn draw(&self, bound: u64) -> u64;
    /// `bytes` more are held, allocated at `site`.
    fn mem_charge(&self, site: &'static str, bytes: u64);
    /// `bytes` are freed.
    fn mem_release(&self, bytes: u64);
    /// The current task took a lock of `class` at `site`.
    fn lock_acquired(&self, class: LockClass, site: &'static Location<'static>);
    /// The current task released a lock of `class`.
    fn lock_released(&self, class: LockClass);
    /// Blocking work on the current blocking thread takes `ns` of time
    /// (a socket waiting for its timeout, a slow disk).
    fn blocking_wait(&self, ns: u64);
}

thread_local! {
    static PROBE: RefCell<Option<Rc<dyn Probe>>> = const { RefCell::new(None) };
}

fn current() -> Option<Rc<dyn Probe>> {
    PROBE.with(|p| p.borrow().clone())
}

/// Installs `probe` on this thread until the returned guard is dropped.
pub fn install(probe: Rc<dyn Probe>) -> Installed {
    let previous = PROBE.with(|p| p.borrow_mut().replace(probe));
    Installed { previous }
}

/// Restores the previous probe when dropped.
#[must_use = "the probe is removed when this guard is dropped"]
pub struct Installed {
    previous: Option<Rc<dyn Probe>>,
}

impl Drop for Installed {
    fn drop(&mut self) {
        let previous = self.previous.take();
        PROBE.with(|p| *p.borrow_mut() = previous);
    }
}

/// Whether the fault at `site` of `kind` strikes now; always `false` outside
/// the simulator.
pub fn buggify(site: &'static str, kind: FaultKind) -> bool {
    current().is_some_and(|p| p.fault(FaultPoint { site, kind }))
}

/// A seeded draw in `0..bound`; `0` outside the simulator.
pub fn draw(bound: u64) -> u64 {
    current().map_or(0, |p| p.draw(bound))
}

/// Declares that blocking work takes `ns` (a no-op outside the simulator,
/// where the work really blocks).
pub fn blocking_wait(ns: u64) {
    if let Some(p) = current() {
        p.blocking_wait(ns);
    }
}

/// Charges `bytes` to the memory meter until the returned token drops.
pub fn charge(site: &'static str, bytes: u64) -> MemCharge {
    if let Some(p) = current() {
        p.mem_charge(site, bytes);
    }
    MemCharge { bytes }
}

/// Memory held for as long as it lives; see [`charge`].
#[derive(Debug)]
#[must_use = "the memory is released as soon as the charge is dropped"]
pub struct MemCharge {
    bytes: u64,
}

impl MemCharge {
    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for MemCharge {
    fn drop(&mut self) {
        if let Some(p) = current() {
            p.mem_release(self.bytes);
        }
    }
}

/// Reports that the current task took a lock of `class` (no-op outside the
/// simulator).
pub fn lock_acquired(class: LockClass, site: &'static Location<'static>) {
    if let Some(p) = current() {
        p.lock_acquired(class, site);
    }
}

/// Reports that the current task released a lock of `class`.
pub fn lock_released(class: LockClass) {
    if let Some(p) = current() {
        p.lock_released(class);
    }
}
