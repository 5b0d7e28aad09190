//! The lock-order checker: per task, which gate / semaphore / state mutex it
//! holds when it takes another. Taking a lock of lower rank while holding a
//! higher one is an inversion of the declared order; an edge that closes a
//! cycle in the "held while taking" graph is a potential deadlock. Both fail
//! with both acquisition sites.

use super::policy::TaskId;
use crate::probe::LockClass;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::Location;

/// Held locks per task and the graph of observed orders.
#[derive(Default)]
pub struct LockOrder {
    held: BTreeMap<TaskId, Vec<(LockClass, &'static Location<'static>)>>,
    edges: BTreeMap<&'static str, BTreeSet<&'static str>>,
}

impl LockOrder {
    /// Records that `task` took `class` at `site`; returns a description of
    /// the violation, if any.
    pub fn acquired(
        &mut self,
        task: TaskId,
        class: LockClass,
        site: &'static Location<'static>,
    ) -> Option<String> {
        let held = self.held.entry(task).or_default();
        let mut violation = None;
        for (h, h_site) in held.iter() {
            if h.rank > class.rank {
                violation = Some(format!(
                    "took '{}' (rank {}) at {site} while holding '{}' (rank {}) taken at {h_site}; declared order is '{}' before '{}'",
                    class.name, class.rank, h.name, h.rank, class.name, h.name
                ));
                break;
            }
        }
        let holding: Vec<_> = held.iter().map(|(h, s)| (h.name, *s)).collect();
        held.push((class, site));
        if violation.is_some() {
            return violation;
        }
        for (h, h_site) in holding {
            if h == class.name {
                continue;
            }
            if self.reaches(class.name, h) {
                return Some(format!(
                    "cycle: took '{}' at {site} while holding '{h}' (taken at {h_site}), but '{h}' has also been taken while holding '{}'",
                    class.name, class.name
                ));
            }
            self.edges.entry(h).or_default().insert(class.name);
        }
        None
    }

    /// Records that the current `task` released `class` (a permit may be
    /// released by another task than the one that took it).
    pub fn released(&mut self, task: TaskId, class: LockClass) {
        if let Some(v) = self.held.get_mut(&task) {
            if let Some(i) = v.iter().rposition(|(c, _)| *c == class) {
                v.remove(i);
                return;
            }
        }
        for v in self.held.values_mut() {
            if let Some(i) = v.iter().rposition(|(c, _)| *c == class) {
                v.remove(i);
                return;
            }
        }
    }

    /// Forgets what a finished or dropped task held.
    pub fn forget(&mut self, task: TaskId) {
        self.held.remove(&task);
    }

    fn reaches(&self, from: &'static str, to: &'static str) -> bool {
        let mut stack = vec![from];
        let mut seen = BTreeSet::new();
        while let Some(n) = stack.pop() {
            if n == to {
                return true;
            }
            if seen.insert(n) {
                stack.extend(self.edges.get(n).into_iter().flatten().copied());
            }
        }
        false
    }
}
