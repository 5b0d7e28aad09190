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
/// an add that would create more is refused and handed back.
#[derive(Clone, Debug)]
pub struct SpendBuffer {
    rows: Rows,
    rows_max: usize,
}

/// An increment the buffer refused (full or overflow); it is handed back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused(pub Increment);

impl SpendBuffer {
    /// An empty buffer holding at most `rows_max` rows.
    pub fn new(rows_max: usize) -> Self {
        SpendBuffer {
            rows: Rows::new(),
            rows_max,
        }
    }

    /// Adds one increment to its three rows.
    ///
    /// # Errors
    /// [`Refused`] with the increment when the buffer would exceed
    /// `rows_max` rows or a row would overflow; nothing is added.
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

    /// Takes every aggregate out (to push), leaving the buffer empty.
    pub fn take(&mut self) -> Rows {
        std::mem::take(&mut self.rows)
    }

    /// Puts aggregates back after a failed push (nothing is lost).
    ///
    /// # Errors
    /// [`Overflow`]; the buffer is unchanged.
    pub fn restore(&mut self, rows: &Rows) -> Result<(), Overflow> {
        add_rows(&mut self.rows, rows)
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
