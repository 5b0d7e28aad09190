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
    pub(crate) fn add(&mut self, name: &'static str, delta: f64) {
        *self.values.entry(name).or_insert(0.0) += delta;
    }

    pub(crate) fn set(&mut self, name: &'static str, value: f64) {
        self.values.insert(name, value);
    }

    pub(crate) fn max(&mut self, name: &'static str, value: f64) {
        let v = self.values.entry(name).or_insert(value);
        if value > *v {
            *v = value;
        }
    }

    /// Appends a sample; a second sample at the same instant replaces the
    /// first (the value the instant ended with).
    pub(crate) fn sample(&mut self, name: &'static str, at_ns: u64, value: f64) {
        let s = self.series.entry(name).or_default();
        if let Some(last) = s.last_mut().filter(|l| l.0 == at_ns) {
            last.1 = value;
        } else if s.len() < SERIES_SAMPLES_MAX {
            s.push((at_ns, value));
        } else {
            *self.dropped.entry(name).or_insert(0) += 1;
        }
    }

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

fn with_metrics(f: impl FnOnce(&mut Metrics, u64)) {
    let _ = super::context::with_shared(|s| {
        let now = s.now_ns() - s.core.borrow().start_ns;
        f(&mut s.metrics.borrow_mut(), now);
    });
}

/// Adds `delta` to the counter `name` of the running simulation.
pub fn metric_add(name: &'static str, delta: f64) {
    with_metrics(|m, _| m.add(name, delta));
}

/// Sets the gauge `name` of the running simulation.
pub fn metric_set(name: &'static str, value: f64) {
    with_metrics(|m, _| m.set(name, value));
}

/// Raises the high-water mark `name` of the running simulation to `value`.
pub fn metric_max(name: &'static str, value: f64) {
    with_metrics(|m, _| m.max(name, value));
}

/// Appends `(now, value)` to the series `name` of the running simulation.
pub fn sample(name: &'static str, value: f64) {
    with_metrics(|m, now| m.sample(name, now, value));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gauges_maxima_and_series() {
        let mut m = Metrics::default();
        m.add("c", 1.0);
        m.add("c", 2.0);
        m.set("g", 5.0);
        m.set("g", 4.0);
        m.max("hw", 3.0);
        m.max("hw", 2.0);
        m.sample("s", 0, 1.0);
        m.sample("s", 0, 2.0);
        m.sample("s", 1_000_000, 3.0);
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
    fn a_full_series_counts_what_it_drops() {
        let mut m = Metrics::default();
        for i in 0..(SERIES_SAMPLES_MAX as u64 + 5) {
            m.sample("s", i, 1.0);
        }
        assert_eq!(m.series["s"].len(), SERIES_SAMPLES_MAX);
        assert_eq!(m.dropped["s"], 5);
    }
}
