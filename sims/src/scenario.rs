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
pub trait Scenario: Send + Sync {
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

    /// The offered load this scenario can scale, for load rows of the teeth
    /// table and `faultline cliff`; `None` (the default) when it has none.
    fn load_axis(&self) -> Option<LoadAxis> {
        None
    }

    /// Runs `variant` once under `cfg` with its offered load's rate
    /// multiplied by `factor` (1.0 is [`Scenario::run`]'s own load).
    ///
    /// # Errors
    /// [`ScenarioError::UnknownVariant`], or [`ScenarioError::NoLoadAxis`]
    /// for a factor other than 1.0 when the scenario has no
    /// [`Scenario::load_axis`] (the default).
    fn run_scaled(
        &self,
        variant: &str,
        cfg: SimConfig,
        factor: f64,
    ) -> Result<Outcome, ScenarioError> {
        if factor == 1.0 {
            self.run(variant, cfg)
        } else {
            Err(ScenarioError::NoLoadAxis {
                scenario: self.name(),
            })
        }
    }

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

/// A bug a variant carries, as a row of the teeth table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bug {
    /// A stable key, shared with the records of loom, shuttle, fuzz and
    /// real-server checks (e.g. `"stale-writer"`).
    pub key: &'static str,
    /// What went wrong, in a few words.
    pub title: &'static str,
    /// The oracles that signal this bug, as `Failure::oracle` names them
    /// (`"invariant:no-loss"`, `"oom"`, `"deadlock"`, ...). A run that
    /// fails through any other oracle does not count as finding it.
    pub oracles: &'static [&'static str],
    /// How the row is found: by schedule search, or by load alone.
    pub kind: RowKind,
    /// Whether production saw it, or it is a reasoned hypothesis.
    pub origin: Origin,
    /// Whether only the simulator's sync-switch mode can find it: a race
    /// between two synchronous sections with no `.await` between them,
    /// which the default mode never interleaves. Its variant runs in
    /// sync-switch mode unless `FAULTLINE_SYNC_SWITCH` says otherwise
    /// ([`crate::runner::sync_switch_for`]); the explorer sweeps it there and
    /// also sweeps it in the default mode, which must *miss* it (a
    /// default-mode find fails the table: the row's claim would be wrong).
    pub sync_switch: bool,
}

impl Bug {
    /// Whether `failure` is this bug's own: one of [`Bug::oracles`] fired.
    pub fn signalled_by(&self, failure: &faultline::sim::Failure) -> bool {
        self.oracles.iter().any(|o| failure.fired(o))
    }
}

/// The two kinds of teeth-table rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKind {
    /// Found by searching schedules: some seeds fail, others pass; the row
    /// reports how many seeds the search needs to the first failure.
    Schedule,
    /// The pre-fix fails under its load on every seed; the row reports the
    /// smallest load at which it fails and the largest the fix holds.
    Load,
}

impl RowKind {
    /// `schedule` or `load`.
    pub fn name(self) -> &'static str {
        match self {
            RowKind::Schedule => "schedule",
            RowKind::Load => "load",
        }
    }
}

/// Where a bug comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// It happened: the incident write-up reports it in production (or in
    /// the real code's review, verified there).
    Historical,
    /// Reasoned, not observed: a flaw of a documented design or of a
    /// rejected fix that faultline (or the write-up) argues for.
    Hypothesized,
}

impl Origin {
    /// `historical` or `hypothesized`.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Historical => "historical",
            Origin::Hypothesized => "hypothesized",
        }
    }
}

/// The offered load of a scenario, as a rate that can be scaled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadAxis {
    /// The rate's unit, e.g. `"req/s"`.
    pub unit: &'static str,
    /// The scenario's own rate (factor 1.0), in `unit`.
    pub rate: f64,
    /// The smallest factor a search tries (e.g. 0.01).
    pub factor_min: f64,
    /// The largest factor a search tries (e.g. 20.0).
    pub factor_max: f64,
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
    /// A value the scenario recorded (`faultline::sim::metric_set`), one
    /// run per load, against the offered load (x in the
    /// [`Scenario::load_axis`] unit): the run of each factor (in percent of
    /// the scenario's own load) through [`Scenario::run_scaled`].
    AgainstLoad {
        /// The metric.
        metric: &'static str,
        /// The loads, in percent of the scenario's own.
        factors_pct: &'static [u32],
    },
}

/// One plot of the report: a series over virtual time (or a metric
/// against the offered load), one line per variant, from the run(s) of
/// `seed` of each.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlotSpec {
    /// The SVG's file name, e.g. `"subtree-oom-memory.svg"`.
    pub file: &'static str,
    /// The title.
    pub title: &'static str,
    /// The y axis label with its unit, e.g. `"memory held (bytes)"`.
    pub y_label: &'static str,
    /// How the values read and are drawn: their unit (which fixes the
    /// axis' ticks and labels), a log axis, lines, steps, markers or bars,
    /// and an x range.
    pub look: crate::plot::Look,
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
    /// The scenario has no offered load to scale.
    NoLoadAxis {
        /// The scenario.
        scenario: &'static str,
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
            ScenarioError::NoLoadAxis { scenario } => {
                write!(f, "scenario '{scenario}' has no offered load to scale")
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
