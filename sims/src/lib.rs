//! # faultline-sims
//!
//! The scenarios faultline runs (one per historical bug, each with its
//! pre-fix and fixed variant) and the machinery behind the `faultline`
//! command line: seed sweeps with sharding ([`runner`]), replay files
//! ([`replay_file`]), strict replay and shrinking ([`rerun`]) and the
//! default exploration ([`explore`]).
//!
//! ```
//! use faultline_sims::{find, runner::{run_seed, PolicySpec}};
//!
//! let toy = find("toy-rmw").unwrap();
//! let run = run_seed(toy.as_ref(), "fixed", 7, PolicySpec::Random).unwrap();
//! assert!(run.outcome.passed());
//! ```

pub mod checks;
pub mod cli;
pub use faultline::check::{policy, replay_file, seeds};
pub mod cliff;
pub mod explore;
pub mod fuzz;
pub mod plot;
pub mod report;
pub mod rerun;
pub mod runner;
pub mod scenario;
pub mod scenarios;
pub mod teeth;
pub mod trace_view;

pub use replay_file::{parse_replay, ReplayFile, ReplayFileError};
pub use scenario::{
    Bug, LoadAxis, Origin, PlotSpec, RowKind, Scenario, ScenarioError, SeriesSource, FIXED,
};

/// Every registered scenario, in the order `list` shows them. A new
/// scenario is one line here.
pub fn registry() -> Vec<Box<dyn Scenario>> {
    vec![
        Box::new(scenarios::toy_rmw::ToyRmw::default()),
        Box::new(scenarios::append_retention::AppendRetention),
        Box::new(scenarios::subtree_oom::SubtreeOom),
        Box::new(scenarios::retry_storm::RetryStorm),
        Box::new(scenarios::trace_saturation::TraceSaturation),
        Box::new(scenarios::socket_pileup::SocketPileup),
        Box::new(scenarios::spend_flush::SpendFlush::default()),
        Box::new(scenarios::pool_subscribe::PoolSubscribe),
    ]
}

/// The scenario called `name` among `scenarios` (`_` and `-` are the
/// same).
///
/// # Errors
/// [`ScenarioError::UnknownScenario`] (listing the known names) when there is
/// none.
pub fn find_in<'a>(
    scenarios: &'a [Box<dyn Scenario>],
    name: &str,
) -> Result<&'a dyn Scenario, ScenarioError> {
    let wanted = name.replace('_', "-");
    scenarios
        .iter()
        .find(|s| s.name() == wanted)
        .map(|s| s.as_ref())
        .ok_or_else(|| ScenarioError::UnknownScenario {
            name: name.to_string(),
            known: scenarios.iter().map(|s| s.name()).collect(),
        })
}

/// The registered scenario called `name` (`_` and `-` are the same:
/// `subtree_oom` finds `subtree-oom`).
///
/// # Errors
/// [`ScenarioError::UnknownScenario`] (listing the known names) when there is
/// none.
pub fn find(name: &str) -> Result<Box<dyn Scenario>, ScenarioError> {
    let all = registry();
    let known: Vec<&'static str> = all.iter().map(|s| s.name()).collect();
    let wanted = name.replace('_', "-");
    all.into_iter()
        .find(|s| s.name() == wanted)
        .ok_or_else(|| ScenarioError::UnknownScenario {
            name: name.to_string(),
            known,
        })
}
