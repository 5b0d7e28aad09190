//! [`Restarts`]: when a model peer is down (restarting).

use crate::probe::{self, FaultKind};
use crate::sync::Mutex;
use std::collections::BTreeMap;

/// Restart windows kept at most (the earliest is forgotten first).
pub const RESTART_WINDOWS_MAX: usize = 64;

/// The windows of virtual time in which a model peer is restarting.
///
/// Windows may be scheduled ahead (a scenario's planned restart) or begin
/// now (the [`FaultKind::Crash`] fault point). A blocking send that starts
/// an attempt later than its thread started (after an earlier attempt's
/// timeout) asks about that later time.
#[derive(Debug, Default)]
pub struct Restarts {
    /// `from_ns -> until_ns`.
    windows: Mutex<BTreeMap<u64, u64>>,
}

impl Restarts {
    /// No restart planned.
    pub fn new() -> Self {
        Self::default()
    }

    /// The peer is down from `from_ns` for `for_ns`. Beyond
    /// [`RESTART_WINDOWS_MAX`] windows the earliest is forgotten. (Nothing
    /// is pruned by time: `from_ns` may lie ahead of the present, when a
    /// blocking thread evaluates a later attempt.)
    pub fn schedule(&self, from_ns: u64, for_ns: u64) {
        self.windows.with(|w| {
            let until = from_ns.saturating_add(for_ns);
            let e = w.entry(from_ns).or_insert(until);
            *e = (*e).max(until);
            while w.len() > RESTART_WINDOWS_MAX {
                w.pop_first();
            }
        });
    }

    /// Whether the peer is down at `at_ns`.
    pub fn is_down_at(&self, at_ns: u64) -> bool {
        self.windows.with(|w| {
            w.range(..=at_ns)
                .any(|(&from, &until)| from <= at_ns && at_ns < until)
        })
    }

    /// Whether the peer is down for an attempt at `at_ns`: restarting
    /// already, or (the fault point, asked only while it is up) the plan's
    /// [`FaultKind::Crash`] strikes at `site` and it restarts now for
    /// `restart_ms`.
    pub fn down_or_crashes(&self, site: &'static str, at_ns: u64, restart_ms: u64) -> bool {
        if self.is_down_at(at_ns) {
            return true;
        }
        let struck = probe::buggify(site, FaultKind::Crash);
        if struck {
            self.schedule(at_ns, restart_ms.saturating_mul(crate::clock::NS_PER_MS));
        }
        struck
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_answer_future_times() {
        let r = Restarts::new();
        r.schedule(100, 50);
        assert!(!r.is_down_at(99));
        assert!(r.is_down_at(100));
        assert!(r.is_down_at(149));
        assert!(!r.is_down_at(150));
        r.schedule(200, 10);
        assert!(r.is_down_at(205) && !r.is_down_at(160));
        // A window planned from a later attempt's point of view does not
        // erase the one in force now.
        r.schedule(1_000, 10);
        assert!(r.is_down_at(120));
    }
}
