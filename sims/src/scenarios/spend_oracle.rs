//! The `spend-flush` oracle: exactly-once totals and no deadlock, and, when
//! totals are wrong, which fault did it, item by item, from the ledger's
//! commit records and the queue store's log (lease grants, how each item
//! left the queue).
//!
//! Fault names (each failure message counts them):
//! * [`DOUBLE_FLUSH`]: two flushers held the lease at once (it expired
//!   during a pause or a stall) and both committed the
//!   item;
//! * [`CRASH_AFTER_COMMIT`]: the flusher committed the item and died (or
//!   failed) before deleting it; a later flusher committed it again;
//! * [`CRASH_AFTER_READ`]: the item was popped and its flusher died before
//!   committing it;
//! * [`DELETE_AFTER_EXPIRY`]: a flusher whose lease had expired deleted
//!   (trimmed) items it never read.

use super::spend_flush::World;
use faultline::spend::{
    add_rows, CommitOutcome, CommitRecord, Item, ItemId, Removal, RowKey, Rows,
};
use std::collections::{BTreeMap, BTreeSet};

/// Double count: two flushers at once after a lease expiry.
pub const DOUBLE_FLUSH: &str = "double flush after lease expiry";
/// Double count: a crash between the commit and the delete.
pub const CRASH_AFTER_COMMIT: &str = "double count on crash between commit and delete";
/// Loss: a crash between the read (pop) and the commit.
pub const CRASH_AFTER_READ: &str = "loss on crash between read and commit";
/// Loss: an expired flusher's delete removed items it never read.
pub const DELETE_AFTER_EXPIRY: &str = "loss by a delete after lease expiry";
/// Wrong totals no item explains.
pub const UNEXPLAINED: &str = "unexplained";

/// The oracle tag of each fault (see `faultline::sim::oracle_failed`): a
/// failure of the exactly-once oracle is tagged with the faults its
/// diagnosis found, so a bug row counts only the fault it is about.
pub fn fault_tag(fault: &str) -> &'static str {
    match fault {
        DOUBLE_FLUSH => "double-flush",
        CRASH_AFTER_COMMIT => "crash-after-commit",
        CRASH_AFTER_READ => "crash-after-read",
        DELETE_AFTER_EXPIRY => "delete-after-expiry",
        _ => "exactly-once",
    }
}

/// Problem items described in a failure message at most.
const EXAMPLES_MAX: usize = 3;

/// The acknowledged queue items (the client side of the oracle).
#[derive(Default)]
pub(crate) struct Acked {
    items: BTreeMap<ItemId, Rows>,
}

impl Acked {
    pub(crate) fn ack(&mut self, item: Item) {
        self.items.insert(item.id, item.rows);
    }
}

/// Judges a drained run.
///
/// # Errors
/// The oracle tag and the failure message: a deadlock
/// (`ledger-deadlock`), or wrong totals tagged with the faults found
/// (see [`fault_tag`]).
pub(crate) fn judge(world: &World) -> Result<(), (String, String)> {
    if let Some(cycle) = world.ledger.deadlocks().first() {
        return Err((
            "ledger-deadlock".into(),
            format!("ledger deadlock: the wait-for graph closed a cycle: {cycle}"),
        ));
    }
    let acked = world.acked.with(|a| a.items.clone());
    let mut want = Rows::new();
    for rows in acked.values() {
        add_rows(&mut want, rows).map_err(|o| {
            let msg = format!("acknowledged total of {:?} overflows u128", o.row);
            ("overflow".to_string(), msg)
        })?;
    }
    let got = world.ledger.totals_now();
    let keys: BTreeSet<&RowKey> = want.keys().chain(got.keys()).collect();
    let wrong: Vec<(&RowKey, u128, u128)> = keys
        .into_iter()
        .map(|k| {
            (
                k,
                got.get(k).copied().unwrap_or(0),
                want.get(k).copied().unwrap_or(0),
            )
        })
        .filter(|(_, g, w)| g != w)
        .collect();
    let Some(&(k, g, w)) = wrong.first() else {
        return Ok(());
    };
    let (tags, diagnosis) = diagnose(world, &acked);
    let msg = format!(
        "exactly-once violated on {} of {} rows (first: {}/{}: ledger {g} != acknowledged {w}); {diagnosis}",
        wrong.len(),
        want.len().max(got.len()),
        k.entity.name(),
        k.id,
    );
    Err((tags, msg))
}

/// Names the fault behind each item counted twice or lost: the oracle tags
/// of every fault found (joined by `+`) and the description.
fn diagnose(world: &World, acked: &BTreeMap<ItemId, Rows>) -> (String, String) {
    let commits = world.ledger.commits();
    let mut applied: BTreeMap<ItemId, Vec<&CommitRecord>> = BTreeMap::new();
    for c in commits
        .iter()
        .filter(|c| c.outcome == CommitOutcome::Applied)
    {
        for id in &c.items {
            applied.entry(*id).or_default().push(c);
        }
    }
    let removals = world.store.removals();
    let trimmers: BTreeSet<&str> = removals
        .values()
        .flatten()
        .filter_map(|r| match r {
            Removal::Trimmed { by } => Some(by.as_str()),
            _ => None,
        })
        .collect();
    let grants = world.store.grants();
    let mut faults: BTreeMap<&'static str, (usize, String)> = BTreeMap::new();
    for id in acked.keys() {
        let by = applied.get(id).map_or(&[][..], Vec::as_slice);
        let found = match by {
            [] => lost(id, removals.get(id).and_then(|r| r.last())),
            [first, second, ..] => {
                let granted_ms = second.lease.and_then(|t| grants.get(&t)).map(|g| g.at_ms);
                let overlapped = granted_ms.is_some_and(|g| g < first.at_ms);
                let first_lived = trimmers.contains(first.owner.as_str());
                let fault = if overlapped || first_lived {
                    DOUBLE_FLUSH
                } else {
                    CRASH_AFTER_COMMIT
                };
                Some((
                    fault,
                    format!(
                        "item i{}/{:#x} committed by {} and again by {}",
                        id.instance, id.seq, first.owner, second.owner
                    ),
                ))
            }
            [_] => None,
        };
        if let Some((fault, example)) = found {
            let e = faults.entry(fault).or_insert((0, example));
            e.0 += 1;
        }
    }
    if faults.is_empty() {
        let msg = format!("{UNEXPLAINED}: no item was counted twice or lost");
        return (fault_tag(UNEXPLAINED).to_string(), msg);
    }
    let mut tags: Vec<&str> = faults.keys().map(|f| fault_tag(f)).collect();
    tags.sort_unstable();
    tags.dedup();
    let msg = faults
        .iter()
        .take(EXAMPLES_MAX)
        .map(|(fault, (n, example))| format!("{fault}: {n} items (e.g. {example})"))
        .collect::<Vec<_>>()
        .join("; ");
    (tags.join("+"), msg)
}

/// Why acknowledged item `id`, never committed, is gone.
fn lost(id: &ItemId, last: Option<&Removal>) -> Option<(&'static str, String)> {
    let item = format!("item i{}/{:#x}", id.instance, id.seq);
    match last? {
        Removal::Popped { by } => Some((
            CRASH_AFTER_READ,
            format!("{item} popped by {by}, never committed"),
        )),
        Removal::Trimmed { by } => Some((
            DELETE_AFTER_EXPIRY,
            format!("{item} trimmed by {by} without being read"),
        )),
        Removal::Moved { by, batch } => Some((
            UNEXPLAINED,
            format!("{item} moved by {by} to in-flight batch {batch}, never committed"),
        )),
    }
}
