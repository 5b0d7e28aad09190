//! Per-instance aggregation of spend increments.

use super::{Increment, Rows};

/// An aggregate would exceed `u128::MAX`; nothing was added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overflow {
    /// The row that would overflow.
    pub row: super::RowKey,
}

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "spend aggregate of {:?} would overflow u128", self.row)
    }
}

impl std::error::Error for Overflow {}

/// Adds `more` into `into`, all or nothing.
///
/// # Errors
/// [`Overflow`] when a sum would exceed `u128::MAX`; `into` is unchanged.
pub fn add_rows(into: &mut Rows, more: &Rows) -> Result<(), Overflow> {
    for (k, v) in more {
        let have = into.get(k).copied().unwrap_or(0);
        if have.checked_add(*v).is_none() {
            return Err(Overflow { row: k.clone() });
        }
    }
    for (k, v) in more {
        *into.entry(k.clone()).or_insert(0) += *v;
    }
    Ok(())
}

/// The rows of `incs`, summed exactly.
///
/// # Errors
/// [`Overflow`] (needs more than 2^64 maximal increments on one row).
pub fn aggregate<'a>(incs: impl IntoIterator<Item = &'a Increment>) -> Result<Rows, Overflow> {
    let mut rows = Rows::new();
    for inc in incs {
        for k in inc.row_keys() {
            let v = rows.entry(k.clone()).or_insert(0);
            *v = v
                .checked_add(u128::from(inc.amount))
                .ok_or(Overflow { row: k })?;
        }
    }
    Ok(rows)
}

/// One instance's in-memory aggregates, waiting to be pushed.
///
/// Bounded: at most `rows_max` distinct rows (the key space per instance);
/// an add that would create more is refused and handed back. A push copies
/// the aggregates ([`SpendBuffer::begin_push`]) and removes them only once
/// the push is known to have been applied ([`SpendBuffer::end_push`]), so a
/// failed push loses nothing and needs no (overflowable) re-add.
#[derive(Clone, Debug)]
pub struct SpendBuffer {
    rows: Rows,
    rows_max: usize,
    pushing: bool,
}

/// An increment the buffer refused (full or overflow); it is handed back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused(pub Increment);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "spend buffer refused an increment of {}", self.0.amount)
    }
}

impl std::error::Error for Refused {}

impl SpendBuffer {
    /// An empty buffer holding at most `rows_max` rows.
    pub fn new(rows_max: usize) -> Self {
        SpendBuffer {
            rows: Rows::new(),
            rows_max,
            pushing: false,
        }
    }

    /// Adds one increment to its three rows.
    ///
    /// # Errors
    /// [`Refused`] with the increment when the buffer would exceed
    /// `rows_max` rows or a row would overflow `u128`; nothing is added.
    pub fn add(&mut self, inc: Increment) -> Result<(), Refused> {
        let rows = match aggregate([&inc]) {
            Ok(r) => r,
            Err(_) => return Err(Refused(inc)),
        };
        let new_rows = rows.keys().filter(|k| !self.rows.contains_key(*k)).count();
        if self.rows.len() + new_rows > self.rows_max || add_rows(&mut self.rows, &rows).is_err() {
            return Err(Refused(inc));
        }
        Ok(())
    }

    /// Starts a push: a copy of every aggregate held, or `None` when
    /// nothing is held or a push is already in progress (pushes of one
    /// buffer never overlap, so no amount is pushed twice).
    pub fn begin_push(&mut self) -> Option<Rows> {
        if self.pushing || self.rows.is_empty() {
            return None;
        }
        self.pushing = true;
        Some(self.rows.clone())
    }

    /// Ends the push begun by [`SpendBuffer::begin_push`] with `pushed`:
    /// when it was `applied`, its amounts leave the buffer (rows that drop
    /// to zero are removed); otherwise everything stays for the next push.
    ///
    /// # Panics
    /// When `pushed` holds more than the buffer (only adds happen between
    /// `begin_push` and `end_push`, so this is a bug).
    pub fn end_push(&mut self, pushed: &Rows, applied: bool) {
        self.pushing = false;
        if !applied {
            return;
        }
        for (k, v) in pushed {
            let have = self.rows.get_mut(k);
            let left = have.and_then(|h| {
                *h = h.checked_sub(*v)?;
                Some(*h)
            });
            assert!(left.is_some(), "pushed more of {k:?} than was held");
            if left == Some(0) {
                self.rows.remove(k);
            }
        }
    }

    /// Rows held (the in-memory queue size metric).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The aggregates held.
    pub fn rows(&self) -> &Rows {
        &self.rows
    }
}
