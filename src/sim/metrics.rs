//! Scenario metrics: named numbers (counters, gauges, high-water marks) and
//! time series a scenario records during a run, reported in its
//! [`Outcome`](super::Outcome) for the CLI's summaries, CSV files and the
//! report's plots. Outside a simulation every call is a no-op.
//!
//! Metrics observe a run; they never steer it (no draw, no decision), so
//! recording them does not change the trace hash.

use std::collections::BTreeMap;

/// Samples kept per series at most; later ones are dropped (and counted in
/// [`Metrics::dropped`]).
pub const SERIES_SAMPLES_MAX: usize = 20_000;

/// What a run recorded.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// Named values.
    pub values: BTreeMap<&'static str, f64>,
    /// Named series of `(virtual ns since the run's start, value)`.
    pub series: BTreeMap<&'static str, Vec<(u64, f64)>>,
    /// Samples dropped from a full series, by series.
    pub dropped: BTreeMap<&'static str, u64>,
}

impl Metrics {
    /// A named value, if recorded.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.get(name).copied()
    }

    /// A series as CSV: a header `t_ms,<name>` and one line per sample.
    pub fn series_csv(&self, name: &str) -> Option<String> {
        let s = self.series.get(name)?;
        let mut out = format!("t_ms,{name}\n");
        for (t, v) in s {
            out.push_str(&format!("{:.3},{v}\n", *t as f64 / 1e6));
        }
        Some(out)
    }
}

/// What a run records while it runs: the entries of [`Metrics`], each
/// found by its name's address first (a metric is named by the same literal
/// at every call, so a hot counter costs no string comparison) and by its
/// text otherwise. [`Recording::finish`] turns it into [`Metrics`]; the
/// values are the same as if they had been kept in those maps all along.
#[derive(Default)]
pub(crate) struct Recording {
    values: Named<f64>,
    series: Named<Vec<(u64, f64)>>,
    dropped: Named<u64>,
}

impl Recording {
    pub(crate) fn add(&mut self, name: &'static str, delta: f64) {
        *self.values.entry(name, 0.0) += delta;
    }

    pub(crate) fn set(&mut self, name: &'static str, value: f64) {
        *self.values.entry(name, value) = value;
    }

    pub(crate) fn max(&mut self, name: &'static str, value: f64) {
        let v = self.values.entry(name, value);
        if value > *v {
            *v = value;
        }
    }

    /// Appends a sample; a second sample at the same instant replaces the
    /// first (the value the instant ended with).
    pub(crate) fn sample(&mut self, name: &'static str, at_ns: u64, value: f64) {
        let s = self.series.entry(name, Vec::new());
        if let Some(last) = s.last_mut().filter(|l| l.0 == at_ns) {
            last.1 = value;
        } else if s.len() < SERIES_SAMPLES_MAX {
            s.push((at_ns, value));
        } else {
            *self.dropped.entry(name, 0) += 1;
        }
    }

    /// What was recorded, by name.
    pub(crate) fn finish(self) -> Metrics {
        Metrics {
            values: self.values.into_map(),
            series: self.series.into_map(),
            dropped: self.dropped.into_map(),
        }
    }
}

/// Entries by name, in first-use order (a run records a handful of names).
struct Named<T> {
    entries: Vec<(&'static str, T)>,
}

impl<T> Default for Named<T> {
    fn default() -> Self {
        Named {
            entries: Vec::new(),
        }
    }
}

impl<T> Named<T> {
    /// The entry of `name`, created holding `new` if there is none.
    #[inline]
    fn entry(&mut self, name: &'static str, new: T) -> &mut T {
        let at = match self.entries.iter().position(|e| std::ptr::eq(e.0, name)) {
            Some(i) => i,
            None => self.entry_by_text(name, new),
        };
        &mut self.entries[at].1
    }

    #[cold]
    fn entry_by_text(&mut self, name: &'static str, new: T) -> usize {
        if let Some(i) = self.entries.iter().position(|e| e.0 == name) {
            return i;
        }
        self.entries.push((name, new));
        self.entries.len() - 1
    }

    fn into_map(self) -> BTreeMap<&'static str, T> {
        self.entries.into_iter().collect()
    }
}

fn with_metrics(f: impl FnOnce(&mut Recording)) {
    let _ = super::context::with_shared(|s| f(&mut s.metrics.borrow_mut()));
}

/// Adds `delta` to the counter `name` of the running simulation.
pub fn metric_add(name: &'static str, delta: f64) {
    with_metrics(|m| m.add(name, delta));
}

/// Sets the gauge `name` of the running simulation.
pub fn metric_set(name: &'static str, value: f64) {
    with_metrics(|m| m.set(name, value));
}

/// Raises the high-water mark `name` of the running simulation to `value`.
pub fn metric_max(name: &'static str, value: f64) {
    with_metrics(|m| m.max(name, value));
}

/// Appends `(now, value)` to the series `name` of the running simulation.
pub fn sample(name: &'static str, value: f64) {
    let _ = super::context::with_shared(|s| {
        let at_ns = {
            let core = s.core.borrow();
            core.now_ns - core.start_ns
        };
        s.metrics.borrow_mut().sample(name, at_ns, value);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gauges_maxima_and_series() {
        let mut m = Recording::default();
        m.add("c", 1.0);
        m.add("c", 2.0);
        m.set("g", 5.0);
        m.set("g", 4.0);
        m.max("hw", 3.0);
        m.max("hw", 2.0);
        m.sample("s", 0, 1.0);
        m.sample("s", 0, 2.0);
        m.sample("s", 1_000_000, 3.0);
        let m = m.finish();
        assert_eq!(m.get("c"), Some(3.0));
        assert_eq!(m.get("g"), Some(4.0));
        assert_eq!(m.get("hw"), Some(3.0));
        assert_eq!(m.series["s"], vec![(0, 2.0), (1_000_000, 3.0)]);
        assert_eq!(
            m.series_csv("s").as_deref(),
            Some("t_ms,s\n0.000,2\n1.000,3\n")
        );
    }

    #[test]
    fn one_name_is_one_entry_whatever_its_address() {
        let literal: &'static str = "c";
        let copy: &'static str = Box::leak(String::from("c").into_boxed_str());
        assert!(!std::ptr::eq(literal, copy));
        let mut m = Recording::default();
        m.add(literal, 1.0);
        m.add(copy, 2.0);
        m.max(copy, 7.0);
        m.set("z", 1.0);
        m.sample(copy, 5, 1.0);
        m.sample(literal, 5, 2.0);
        let m = m.finish();
        assert_eq!(m.values.len(), 2);
        assert_eq!(m.get("c"), Some(7.0));
        assert_eq!(m.series["c"], vec![(5, 2.0)]);
        assert!(m.values.keys().copied().eq(["c", "z"]));
    }

    #[test]
    fn a_full_series_counts_what_it_drops() {
        let mut m = Recording::default();
        for i in 0..(SERIES_SAMPLES_MAX as u64 + 5) {
            m.sample("s", i, 1.0);
        }
        let m = m.finish();
        assert_eq!(m.series["s"].len(), SERIES_SAMPLES_MAX);
        assert_eq!(m.dropped["s"], 5);
    }
}
