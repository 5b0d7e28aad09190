//! How far a load is from failure: scale a scenario's offered load (its
//! [`LoadAxis`]) and bisect for the edge, geometrically, on a few fixed
//! seeds, so the answer is deterministic.
//!
//! * [`fails_from`]: the smallest load at which a variant fails (through
//!   its bug's own oracle) on every probe seed: where the pre-fix falls
//!   over.
//! * [`holds_to`]: the largest load at which a variant passes every oracle
//!   on every probe seed: the headroom a fix buys.
//!
//! Both assume the answer is monotone in the load (more load never helps);
//! a scenario whose failures are not is reported at whatever edge the
//! bisection meets.

use crate::policy::PolicySpec;
use crate::runner::config_for;
use crate::scenario::{Bug, LoadAxis, Scenario, ScenarioError};
use std::fmt;

/// Seeds each probe runs, unless told otherwise.
pub const PROBE_SEEDS_DEFAULT: u64 = 3;

/// Bisection steps, unless told otherwise: with a factor range of 100x,
/// six steps pin the edge within about 8%.
pub const STEPS_DEFAULT: u32 = 6;

/// Bisection steps at most.
pub const STEPS_MAX: u32 = 30;

/// How to search.
#[derive(Clone, Copy, Debug)]
pub struct CliffSpec {
    /// Seeds `0..seeds` run at each probed load (at least 1).
    pub seeds: u64,
    /// Bisection steps (at most [`STEPS_MAX`]).
    pub steps: u32,
    /// The schedule policy.
    pub policy: PolicySpec,
}

impl Default for CliffSpec {
    fn default() -> Self {
        CliffSpec {
            seeds: PROBE_SEEDS_DEFAULT,
            steps: STEPS_DEFAULT,
            policy: PolicySpec::Random,
        }
    }
}

/// Where the edge is, as a factor of the scenario's own load.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Edge {
    /// The edge, within the bisection's precision.
    At(f64),
    /// Already past the edge at the smallest factor tried.
    BelowMin(f64),
    /// Not yet at the edge at the largest factor tried.
    AboveMax(f64),
}

/// One search's result.
#[derive(Clone, Debug)]
pub struct Cliff {
    /// The axis searched.
    pub axis: LoadAxis,
    /// The edge found.
    pub edge: Edge,
    /// Runs made.
    pub runs: u64,
    /// `(factor, held)` of every probe, in order.
    pub probes: Vec<(f64, bool)>,
}

impl Cliff {
    /// The rate at `factor`, in the axis' unit.
    pub fn rate(&self, factor: f64) -> f64 {
        factor * self.axis.rate
    }

    /// A rate with its unit, rounded to what the search can tell.
    pub fn show(&self, factor: f64) -> String {
        format!("{} {}", round3(self.rate(factor)), self.axis.unit)
    }
}

/// Three significant digits.
fn round3(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Whether every probe seed at `factor` satisfies `want`; stops at the
/// first seed that does not. Counts the runs in `runs`.
fn probe(
    s: &dyn Scenario,
    variant: &str,
    factor: f64,
    spec: &CliffSpec,
    runs: &mut u64,
    want: &dyn Fn(&faultline::sim::Outcome) -> bool,
) -> Result<bool, ScenarioError> {
    for seed in 0..spec.seeds.max(1) {
        let cfg = config_for(s, variant, seed, spec.policy);
        let out = s.run_scaled(variant, cfg, factor)?;
        *runs += 1;
        if !want(&out) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Geometric bisection between `lo` (predicate false) and `hi` (true);
/// returns the narrowed `(lo, hi)`.
fn bisect(
    mut lo: f64,
    mut hi: f64,
    steps: u32,
    mut pred: impl FnMut(f64) -> Result<bool, ScenarioError>,
) -> Result<(f64, f64), ScenarioError> {
    for _ in 0..steps.min(STEPS_MAX) {
        let mid = (lo * hi).sqrt();
        if pred(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok((lo, hi))
}

/// The smallest load at which `variant` fails on every probe seed (through
/// `bug`'s own oracles when given, any oracle otherwise).
///
/// # Errors
/// [`ScenarioError::NoLoadAxis`] when the scenario has no load to scale,
/// or [`ScenarioError::UnknownVariant`].
pub fn fails_from(
    s: &dyn Scenario,
    variant: &str,
    bug: Option<&Bug>,
    spec: &CliffSpec,
) -> Result<Cliff, ScenarioError> {
    let axis = s
        .load_axis()
        .ok_or(ScenarioError::NoLoadAxis { scenario: s.name() })?;
    s.check_variant(variant)?;
    let fails = |o: &faultline::sim::Outcome| {
        o.failure
            .as_ref()
            .is_some_and(|f| bug.is_none_or(|b| b.signalled_by(f)))
    };
    search(s, variant, spec, axis, &fails, true)
}

/// The largest load at which `variant` passes every oracle on every probe
/// seed.
///
/// # Errors
/// As [`fails_from`].
pub fn holds_to(s: &dyn Scenario, variant: &str, spec: &CliffSpec) -> Result<Cliff, ScenarioError> {
    let axis = s
        .load_axis()
        .ok_or(ScenarioError::NoLoadAxis { scenario: s.name() })?;
    s.check_variant(variant)?;
    search(s, variant, spec, axis, &|o| o.passed(), false)
}

/// Searches for the edge of `want`: rising (`want` holds from the edge up:
/// failures) or falling (`want` holds up to the edge: passes).
fn search(
    s: &dyn Scenario,
    variant: &str,
    spec: &CliffSpec,
    axis: LoadAxis,
    want: &dyn Fn(&faultline::sim::Outcome) -> bool,
    rising: bool,
) -> Result<Cliff, ScenarioError> {
    let mut runs = 0u64;
    let mut probes = Vec::new();
    let mut at = |f: f64, runs: &mut u64| -> Result<bool, ScenarioError> {
        let ok = probe(s, variant, f, spec, runs, want)?;
        probes.push((f, ok));
        Ok(ok)
    };
    let (min, max) = (axis.factor_min, axis.factor_max);
    // "past the edge" at factor f: failing when rising, not holding when
    // falling.
    let mut past = |f: f64, runs: &mut u64| at(f, runs).map(|ok| ok == rising);
    let edge = if past(1.0, &mut runs)? {
        if past(min, &mut runs)? {
            Edge::BelowMin(min)
        } else {
            let (lo, hi) = bisect(min, 1.0, spec.steps, |f| past(f, &mut runs))?;
            Edge::At(if rising { hi } else { lo })
        }
    } else if !past(max, &mut runs)? {
        Edge::AboveMax(max)
    } else {
        let (lo, hi) = bisect(1.0, max, spec.steps, |f| past(f, &mut runs))?;
        Edge::At(if rising { hi } else { lo })
    };
    Ok(Cliff {
        axis,
        edge,
        runs,
        probes,
    })
}

impl fmt::Display for Cliff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.edge {
            Edge::At(x) => write!(f, "{} (x{x:.2} its own load)", self.show(x)),
            Edge::BelowMin(x) => write!(f, "<= {} (the smallest load tried)", self.show(x)),
            Edge::AboveMax(x) => write!(f, ">= {} (the largest load tried)", self.show(x)),
        }
    }
}

/// The teeth-table text of a load row: where the buggy variant starts to
/// fail and how far the fixed one holds, e.g. `fails from 38 req/s; fixed
/// holds to 500 req/s`.
pub fn load_cell(fails: &Cliff, holds: &Cliff) -> String {
    let from = match fails.edge {
        Edge::At(x) => format!("fails from {}", fails.show(x)),
        Edge::BelowMin(x) => format!("fails already at {}", fails.show(x)),
        Edge::AboveMax(x) => format!("NOT failing up to {}", fails.show(x)),
    };
    let to = match holds.edge {
        Edge::At(x) => format!("fixed holds to {}", holds.show(x)),
        Edge::BelowMin(x) => format!("fixed FAILS already at {}", holds.show(x)),
        Edge::AboveMax(x) => format!("fixed holds to >= {}", holds.show(x)),
    };
    format!("{from}; {to}")
}
