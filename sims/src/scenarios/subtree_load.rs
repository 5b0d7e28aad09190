//! `subtree-oom` over a recorded load (a load file) instead of its ramp:
//! what `faultline run subtree-oom --load FILE` and `faultline cliff
//! subtree-oom --load FILE` run. Its load axis is the file's mean rate;
//! a factor compresses (above 1) or stretches (below 1) the arrival times.

use super::subtree_oom::{run_load, service_config, SubtreeOom};
use crate::scenario::{Bug, LoadAxis, PlotSpec, Scenario, ScenarioError};
use faultline::admission::load::Arrival;
use faultline::probe::FaultKind;
use faultline::sim::{Outcome, SimConfig};
use faultline::sync::DynArc;

/// `subtree-oom` replaying `load` (every variant, oracle and metric of
/// [`SubtreeOom`]).
pub struct SubtreeOomLoad {
    load: DynArc<[Arrival]>,
}

impl SubtreeOomLoad {
    /// The scenario over `load` (in time order, as [`parse_load`] gives
    /// it).
    ///
    /// [`parse_load`]: faultline::admission::load::parse_load
    pub fn new(load: Vec<Arrival>) -> Self {
        SubtreeOomLoad { load: load.into() }
    }

    /// The load's mean rate, requests per second (its arrivals over its
    /// span, at least one second).
    pub fn rate_per_s(&self) -> f64 {
        let span_ms = self.load.last().map_or(0, |a| a.at_ms).max(1_000);
        self.load.len() as f64 * 1_000.0 / span_ms as f64
    }
}

/// `load` with every arrival time divided by `factor` (rounded down to the
/// millisecond, so the order is kept).
pub fn scaled(load: &[Arrival], factor: f64) -> Vec<Arrival> {
    load.iter()
        .map(|a| Arrival {
            at_ms: (a.at_ms as f64 / factor) as u64,
            ..a.clone()
        })
        .collect()
}

impl Scenario for SubtreeOomLoad {
    fn name(&self) -> &'static str {
        SubtreeOom.name()
    }

    fn about(&self) -> &'static str {
        "subtree-oom replaying a load file"
    }

    fn variants(&self) -> &'static [&'static str] {
        SubtreeOom.variants()
    }

    fn fault_kinds(&self) -> &'static [FaultKind] {
        SubtreeOom.fault_kinds()
    }

    fn node_faults(&self) -> bool {
        SubtreeOom.node_faults()
    }

    fn configure(&self, variant: &str, cfg: &mut SimConfig) {
        SubtreeOom.configure(variant, cfg);
    }

    fn bug(&self, variant: &str) -> Option<Bug> {
        SubtreeOom.bug(variant)
    }

    fn plots(&self) -> Vec<PlotSpec> {
        Vec::new()
    }

    fn holds(&self, variant: &str) -> bool {
        SubtreeOom.holds(variant)
    }

    fn run(&self, variant: &str, cfg: SimConfig) -> Result<Outcome, ScenarioError> {
        self.check_variant(variant)?;
        Ok(run_load(service_config(variant), &self.load, cfg))
    }

    fn load_axis(&self) -> Option<LoadAxis> {
        Some(LoadAxis {
            unit: "req/s",
            rate: self.rate_per_s(),
            factor_min: 0.01,
            factor_max: 100.0,
        })
    }

    fn run_scaled(
        &self,
        variant: &str,
        cfg: SimConfig,
        factor: f64,
    ) -> Result<Outcome, ScenarioError> {
        if factor == 1.0 {
            return self.run(variant, cfg);
        }
        self.check_variant(variant)?;
        let load: DynArc<[Arrival]> = scaled(&self.load, factor).into();
        Ok(run_load(service_config(variant), &load, cfg))
    }
}
