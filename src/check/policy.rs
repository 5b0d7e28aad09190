//! The schedule policy of a sweep, as the command line and replay files name
//! it: `random`, or `pct` with a bug depth.

use crate::sim::PolicyKind;
use serde::{Deserialize, Serialize};
use std::fmt;

/// PCT's bug depth at most.
pub const PCT_DEPTH_MAX: u32 = 64;

/// PCT's bug depth when none is given.
pub const PCT_DEPTH_DEFAULT: u32 = 3;

/// A seeded schedule policy (replays are not one: they follow a file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum PolicySpec {
    /// Uniformly random among runnable tasks.
    Random,
    /// PCT of bug depth `depth` over about `expected_steps` decisions.
    Pct {
        /// Bug depth, at least 1.
        depth: u32,
        /// About how many scheduling decisions a run makes; 0 (the default
        /// of `run` and the explorer): measured for the variant
        /// ([`runner::pct_steps`](crate::runner::pct_steps)).
        expected_steps: u64,
    },
    /// A fuzzer's input chose every decision (`faultline_sims::fuzz`); only
    /// the recorded decisions reproduce such a run.
    Fuzz,
}

impl PolicySpec {
    /// PCT of bug depth `depth`, its step count measured from the program
    /// (`expected_steps: 0`; see `faultline::check::sweep::resolve_pct`).
    pub fn pct(depth: u32) -> PolicySpec {
        PolicySpec::Pct {
            depth,
            expected_steps: 0,
        }
    }

    /// The simulator's policy for this spec.
    pub fn kind(&self) -> PolicyKind {
        match *self {
            PolicySpec::Random => PolicyKind::Random,
            PolicySpec::Pct {
                depth,
                expected_steps,
            } => PolicyKind::Pct {
                depth,
                expected_steps,
            },
            PolicySpec::Fuzz => PolicyKind::Bytes(Vec::new()),
        }
    }

    /// Whether `faultline run --seed` reproduces a run of this policy (a
    /// fuzzed run is reproduced by its replay file only).
    pub fn reruns_from_seed(&self) -> bool {
        !matches!(self, PolicySpec::Fuzz)
    }

    /// The command-line flags that select this policy (empty for random,
    /// the default).
    pub fn cli_flags(&self) -> String {
        match *self {
            PolicySpec::Random | PolicySpec::Fuzz => String::new(),
            PolicySpec::Pct {
                depth,
                expected_steps,
            } => {
                let mut flags = String::from(" --policy pct");
                if depth != PCT_DEPTH_DEFAULT {
                    flags += &format!(" --pct-depth {depth}");
                }
                if expected_steps != 0 {
                    flags += &format!(" --pct-steps {expected_steps}");
                }
                flags
            }
        }
    }

    /// Checks the parameters are usable.
    ///
    /// # Errors
    /// A message when PCT's depth is 0.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            PolicySpec::Pct { depth: 0, .. } => Err("PCT depth must be at least 1".into()),
            PolicySpec::Pct { depth, .. } if depth > PCT_DEPTH_MAX => Err(format!(
                "PCT depth {depth} is above its bound {PCT_DEPTH_MAX}"
            )),
            PolicySpec::Pct { expected_steps, .. }
                if expected_steps > super::replay_file::STEPS_MAX_BOUND =>
            {
                Err(format!(
                    "PCT expected_steps {expected_steps} is above its bound"
                ))
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for PolicySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicySpec::Random => f.write_str("random"),
            PolicySpec::Pct { depth, .. } => write!(f, "pct depth {depth}"),
            PolicySpec::Fuzz => f.write_str("fuzz input"),
        }
    }
}
