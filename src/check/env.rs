//! The `FAULTLINE_*` environment variables, in the style of
//! `MADSIM_TEST_SEED`, `PROPTEST_CASES` and `LOOM_MAX_PREEMPTIONS`.
//!
//! | variable | meaning | example |
//! |---|---|---|
//! | `FAULTLINE_SEED` | run this one seed | `FAULTLINE_SEED=17` |
//! | `FAULTLINE_SEEDS` | run seeds `A..B` (B excluded) | `FAULTLINE_SEEDS=0..5000` |
//! | `FAULTLINE_POLICY` | `random`, `pct` or `pct:D` (PCT of depth D) | `FAULTLINE_POLICY=pct:2` |
//! | `FAULTLINE_REPLAY` | replay this file strictly instead of sweeping | `FAULTLINE_REPLAY=target/faultline/replays/t-3.json` |
//! | `FAULTLINE_CHECK_DETERMINISM` | `1`: run every seed twice, compare trace hashes | `FAULTLINE_CHECK_DETERMINISM=1` |
//! | `FAULTLINE_SYNC_SWITCH` | `1`: sync-switch mode (synchronous sections are switch points) | `FAULTLINE_SYNC_SWITCH=1` |
//! | `FAULTLINE_SHRINK_TIME_S` | seconds a failure is shrunk at most (`0`: no shrinking) | `FAULTLINE_SHRINK_TIME_S=30` |
//! | `FAULTLINE_REPLAY_DIR` | where replay files go (default `<target>/faultline/replays`) | |
//! | `FAULTLINE_CHECKS_DIR` | where check records go (default `<target>/faultline/checks`) | |
//!
//! An explicit setting in code (a [`Check`](super::Check) builder call, an
//! attribute argument) beats the environment; the environment beats the
//! defaults. `FAULTLINE_SEED` and `FAULTLINE_SEEDS` together are an error.
//! A value that does not parse is an error that names the variable, never
//! silently ignored.

use super::policy::{PolicySpec, PCT_DEPTH_DEFAULT};
use super::seeds::SeedRange;
use std::path::PathBuf;

/// One seed.
pub const SEED: &str = "FAULTLINE_SEED";
/// A seed range `A..B`.
pub const SEEDS: &str = "FAULTLINE_SEEDS";
/// The policy.
pub const POLICY: &str = "FAULTLINE_POLICY";
/// A replay file to run.
pub const REPLAY: &str = "FAULTLINE_REPLAY";
/// Determinism mode.
pub const CHECK_DETERMINISM: &str = "FAULTLINE_CHECK_DETERMINISM";
/// Sync-switch mode.
pub const SYNC_SWITCH: &str = "FAULTLINE_SYNC_SWITCH";
/// Shrinking time.
pub const SHRINK_TIME_S: &str = "FAULTLINE_SHRINK_TIME_S";
/// Where replay files go.
pub const REPLAY_DIR: &str = "FAULTLINE_REPLAY_DIR";

/// A variable that is set but unusable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvError {
    /// The variable.
    pub var: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong with it.
    pub why: String,
}

impl std::fmt::Display for EnvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={:?}: {}", self.var, self.value, self.why)
    }
}

impl std::error::Error for EnvError {}

fn get(var: &'static str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

fn bad(var: &'static str, value: &str, why: impl Into<String>) -> EnvError {
    EnvError {
        var,
        value: value.to_string(),
        why: why.into(),
    }
}

/// The seeds the environment asks for, if any, and the variable that
/// asked.
///
/// # Errors
/// [`EnvError`] when a value does not parse, or both variables are set.
pub fn seeds() -> Result<Option<(SeedRange, &'static str)>, EnvError> {
    match (get(SEED), get(SEEDS)) {
        (Some(a), Some(_)) => Err(bad(
            SEED,
            &a,
            format!("set either {SEED} or {SEEDS}, not both"),
        )),
        (Some(s), None) => s
            .trim()
            .parse::<u64>()
            .map(|n| Some((SeedRange::single(n), SEED)))
            .map_err(|_| bad(SEED, &s, "not a seed (an integer, 0 or more)")),
        (None, Some(r)) => r
            .parse::<SeedRange>()
            .map(|range| Some((range, SEEDS)))
            .map_err(|e| bad(SEEDS, &r, e)),
        (None, None) => Ok(None),
    }
}

/// Parses a policy name: `random`, `pct` (depth 3) or `pct:D`.
///
/// # Errors
/// A message listing the valid names.
pub fn parse_policy(text: &str) -> Result<PolicySpec, String> {
    let t = text.trim().to_ascii_lowercase();
    let pct = PolicySpec::pct;
    match t.as_str() {
        "random" => Ok(PolicySpec::Random),
        "pct" => Ok(pct(PCT_DEPTH_DEFAULT)),
        other => match other.strip_prefix("pct:").map(str::parse::<u32>) {
            Some(Ok(d)) if d >= 1 => Ok(pct(d)),
            _ => Err("valid policies: random, pct, pct:D (D >= 1, PCT's bug depth)".into()),
        },
    }
}

/// The policy the environment asks for, if any.
///
/// # Errors
/// [`EnvError`] for an unknown policy.
pub fn policy() -> Result<Option<PolicySpec>, EnvError> {
    match get(POLICY) {
        None => Ok(None),
        Some(p) => parse_policy(&p).map(Some).map_err(|e| bad(POLICY, &p, e)),
    }
}

/// The replay file the environment names, if any.
pub fn replay() -> Option<PathBuf> {
    get(REPLAY).map(PathBuf::from)
}

/// Whether the environment asks to check determinism.
///
/// # Errors
/// [`EnvError`] for a value other than `0`, `1`, `true`, `false`.
pub fn check_determinism() -> Result<Option<bool>, EnvError> {
    flag(CHECK_DETERMINISM)
}

/// Whether the environment asks for sync-switch mode.
///
/// # Errors
/// [`EnvError`] for a value other than `0`, `1`, `true`, `false`.
pub fn sync_switch() -> Result<Option<bool>, EnvError> {
    flag(SYNC_SWITCH)
}

fn flag(var: &'static str) -> Result<Option<bool>, EnvError> {
    match get(var) {
        None => Ok(None),
        Some(v) => match v.trim() {
            "1" | "true" => Ok(Some(true)),
            "0" | "false" => Ok(Some(false)),
            _ => Err(bad(var, &v, "use 1 or 0")),
        },
    }
}

/// The shrinking time the environment asks for, seconds.
///
/// # Errors
/// [`EnvError`] for a value that is not a number of seconds in `0..=86400`.
pub fn shrink_time_s() -> Result<Option<f64>, EnvError> {
    match get(SHRINK_TIME_S) {
        None => Ok(None),
        Some(v) => match v.trim().parse::<f64>() {
            Ok(s) if (0.0..=86_400.0).contains(&s) => Ok(Some(s)),
            _ => Err(bad(SHRINK_TIME_S, &v, "seconds, from 0 to 86400")),
        },
    }
}

/// Where replay files go: `FAULTLINE_REPLAY_DIR`, or
/// `<target>/faultline/replays`.
pub fn replay_dir() -> PathBuf {
    get(REPLAY_DIR).map_or_else(
        || super::paths::faultline_dir().join("replays"),
        PathBuf::from,
    )
}
