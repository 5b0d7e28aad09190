//! The [`Scenario`] trait: one historical bug, its workload, faults and
//! oracles, runnable on its pre-fix and its fixed variant.

use faultline::probe::FaultKind;
use faultline::sim::{Outcome, SimConfig};

/// The variant every command runs unless told otherwise. Never a buggy one.
pub const FIXED: &str = "fixed";

/// One scenario: a workload over a service (or a toy), the faults that may
/// strike it, and the oracles that judge a run.
///
/// Every scenario has at least the variants `"pre-fix"` and `"fixed"`.
/// Variants that do not [`hold`](Scenario::holds) carry a bug the explorer
/// expects to catch; `"fixed"` is the default everywhere.
pub trait Scenario {
    /// The scenario's name on the command line, e.g. `"toy-rmw"`.
    fn name(&self) -> &'static str;

    /// One line on what the scenario checks.
    fn about(&self) -> &'static str;

    /// Its variants, e.g. `["pre-fix", "fixed"]`.
    fn variants(&self) -> &'static [&'static str];

    /// The fault-point kinds its code reaches; swarm plans switch a subset
    /// of them on per seed.
    fn fault_kinds(&self) -> &'static [FaultKind];

    /// Whether the scenario has faulty nodes for node faults (crashes,
    /// pauses, clock jumps) to strike; when not, swarm plans leave them
    /// out. Default true.
    fn node_faults(&self) -> bool {
        true
    }

    /// Node faults (crashes, pauses, clock jumps) are drawn within this
    /// virtual time from the start of a run. Default 10 s.
    fn horizon_ns(&self) -> u64 {
        10_000_000_000
    }

    /// Adjusts the base configuration of every run of `variant` (memory
    /// limit, blocking threads, spurious wake-ups). The result is recorded
    /// in replay files. Default: leaves `cfg` as it is.
    fn configure(&self, _variant: &str, _cfg: &mut SimConfig) {}

    /// The historical bug `variant` carries, for the teeth table; `None`
    /// for a correct variant or a toy. Default none.
    fn bug(&self, _variant: &str) -> Option<Bug> {
        None
    }

    /// The plots the report draws from this scenario's runs. Default none.
    fn plots(&self) -> Vec<PlotSpec> {
        Vec::new()
    }

    /// Runs `variant` once under `cfg` and reports what happened.
    ///
    /// # Errors
    /// [`ScenarioError::UnknownVariant`] when `variant` is not one of
    /// [`Scenario::variants`].
    fn run(&self, variant: &str, cfg: SimConfig) -> Result<Outcome, ScenarioError>;

    /// Whether `variant` must hold (pass every oracle on every seed); every
    /// other variant carries a bug that must be caught. Default: only
    /// `"fixed"` holds. A scenario with a second correct variant (say, the
    /// fix with jitter on) overrides this.
    fn holds(&self, variant: &str) -> bool {
        variant == FIXED
    }

    /// The first variant that does not hold: the one with the bug.
    fn buggy_variant(&self) -> Option<&'static str> {
        self.variants().iter().copied().find(|v| !self.holds(v))
    }

    /// Checks that `variant` is one of this scenario's variants.
    ///
    /// # Errors
    /// [`ScenarioError::UnknownVariant`] otherwise.
    fn check_variant(&self, variant: &str) -> Result<(), ScenarioError> {
        if self.variants().contains(&variant) {
            Ok(())
        } else {
            Err(ScenarioError::UnknownVariant {
                scenario: self.name(),
                variant: variant.to_string(),
                known: self.variants(),
            })
        }
    }
}

/// A historical bug, as a row of the teeth table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bug {
    /// A stable key, shared with the records of loom, shuttle and fuzz
    /// checks (e.g. `"stale-writer"`).
    pub key: &'static str,
    /// What went wrong, in a few words.
    pub title: &'static str,
}

/// Where a plotted series comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeriesSource {
    /// The simulator's memory meter (bytes held).
    Memory,
    /// The simulator's blocking threads alive.
    BlockingThreads,
    /// A series the scenario recorded with `faultline::sim::sample`.
    Metric(&'static str),
}

/// One plot of the report: a series over virtual time, one line per
/// variant, from the run of `seed` of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlotSpec {
    /// The SVG's file name, e.g. `"subtree-oom-memory.svg"`.
    pub file: &'static str,
    /// The title.
    pub title: &'static str,
    /// The y axis label with its unit, e.g. `"memory held (bytes)"`.
    pub y_label: &'static str,
    /// The series.
    pub series: SeriesSource,
    /// The variants drawn, one line each.
    pub variants: &'static [&'static str],
    /// A horizontal limit line: its label and the metric holding its value
    /// (read from the first variant's run).
    pub limit: Option<(&'static str, &'static str)>,
    /// The seed of the runs drawn.
    pub seed: u64,
}

/// Why a scenario could not be run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScenarioError {
    /// No scenario of this name is registered.
    UnknownScenario {
        /// The name asked for.
        name: String,
        /// The names that exist.
        known: Vec<&'static str>,
    },
    /// The scenario has no variant of this name.
    UnknownVariant {
        /// The scenario.
        scenario: &'static str,
        /// The variant asked for.
        variant: String,
        /// The variants it has.
        known: &'static [&'static str],
    },
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScenarioError::UnknownScenario { name, known } => {
                write!(f, "unknown scenario '{name}' (known: {})", known.join(", "))
            }
            ScenarioError::UnknownVariant {
                scenario,
                variant,
                known,
            } => write!(
                f,
                "scenario '{scenario}' has no variant '{variant}' (known: {})",
                known.join(", ")
            ),
        }
    }
}

impl std::error::Error for ScenarioError {}
