//! The replay file: everything needed to rerun one failing run exactly
//! (scenario, variant, seed, policy, simulator parameters, fault plan, every
//! schedule decision) and what it did (failure, trace hash), with the crate
//! version and git commit it was recorded at. JSON, versioned.
//!
//! Reading never panics: a malformed file is a [`ReplayFileError`] that
//! says what was wrong and where.

use super::policy::PolicySpec;
use crate::sim::{Decision, Failure, FaultPlan, LoopCost, SimConfig};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The failure kinds a file may record (see `Failure::kind`).
const FAILURE_KINDS: &[&str] = &[
    "panic",
    "deadlock",
    "oom",
    "lock-order",
    "invariant",
    "step-limit",
    "time-limit",
    "replay-mismatch",
];

/// Decisions written per line.
const DECISIONS_PER_LINE: usize = 16;

/// One recorded run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayFile {
    /// Format version ([`FORMAT_VERSION`]).
    pub format: u32,
    /// The scenario's name.
    pub scenario: String,
    /// The variant run.
    pub variant: String,
    /// The run's seed.
    pub seed: u64,
    /// The policy that made the decisions (a replay follows `decisions`).
    pub policy: PolicySpec,
    /// Simulator parameters of the run.
    #[serde(default)]
    pub params: SimParams,
    /// The fault plan of the run.
    pub faults: FaultPlan,
    /// The failure, or `None` for a passing run.
    pub failure: Option<FailureRecord>,
    /// The run's trace hash, as `0x` and 16 hex digits.
    #[serde(with = "hex_u64")]
    pub trace_hash: u64,
    /// Version of faultline that recorded the file.
    pub faultline_version: String,
    /// Git commit (short) of the build that recorded it, or `"unknown"`.
    pub commit: String,
    /// Set when the file is the result of `faultline shrink`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shrunk: Option<ShrinkRecord>,
    /// Every schedule decision, in order.
    pub decisions: Vec<Decision>,
}

/// The simulator parameters that change a run. Absent fields take the
/// simulator's defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimParams {
    /// Virtual CPU time per poll.
    pub poll_cost_ns: u64,
    /// Spurious polls per million pending polls.
    pub spurious_wake_ppm: u32,
    /// Memory limit, if any.
    pub mem_limit_bytes: Option<u64>,
    /// Blocking threads at most, if limited.
    pub threads_max: Option<usize>,
    /// Polls allowed.
    pub steps_max: u64,
    /// Virtual time allowed.
    pub time_max_ns: u64,
    /// The event loop's overhead model (absent: none).
    #[serde(skip_serializing_if = "is_off")]
    pub loop_cost: LoopCost,
    /// Sync-switch mode (absent: off, the default mode).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sync_switch: bool,
}

fn is_off(c: &LoopCost) -> bool {
    *c == LoopCost::default()
}

impl Default for SimParams {
    fn default() -> Self {
        SimParams::of(&SimConfig::default())
    }
}

/// Polls a replayed run may be allowed at most.
pub const STEPS_MAX_BOUND: u64 = 1_000_000_000;
/// Virtual time a replayed run may be allowed at most: a year.
pub const TIME_MAX_NS_BOUND: u64 = 365 * 86_400 * 1_000_000_000;
/// Virtual CPU time per poll at most: a second.
pub const POLL_COST_NS_BOUND: u64 = 1_000_000_000;
/// Blocking threads at most.
pub const THREADS_MAX_BOUND: usize = 1_000_000;
/// Decisions per step at most (a pick and a few coins and draws).
pub const DECISIONS_PER_STEP_MAX: u64 = 64;
/// Bytes of a replay file read at most.
pub const FILE_BYTES_MAX: u64 = 1 << 30;

impl SimParams {
    /// Checks every count and duration is within its bound.
    ///
    /// # Errors
    /// A message naming the first value out of bounds.
    pub fn validate(&self) -> Result<(), String> {
        let over = |name: &str, v: u64, max: u64| {
            (v > max).then(|| format!("params.{name} = {v} is above its bound {max}"))
        };
        if self.steps_max == 0 {
            return Err("params.steps_max must be at least 1".into());
        }
        let checks = [
            over("steps_max", self.steps_max, STEPS_MAX_BOUND),
            over("time_max_ns", self.time_max_ns, TIME_MAX_NS_BOUND),
            over("poll_cost_ns", self.poll_cost_ns, POLL_COST_NS_BOUND),
            over(
                "spurious_wake_ppm",
                u64::from(self.spurious_wake_ppm),
                1_000_000,
            ),
            over(
                "threads_max",
                self.threads_max.unwrap_or(0) as u64,
                THREADS_MAX_BOUND as u64,
            ),
        ];
        checks.into_iter().flatten().next().map_or(Ok(()), Err)
    }

    /// The parameters of `cfg`.
    pub fn of(cfg: &SimConfig) -> Self {
        SimParams {
            poll_cost_ns: cfg.poll_cost_ns,
            spurious_wake_ppm: cfg.spurious_wake_ppm,
            mem_limit_bytes: cfg.mem_limit_bytes,
            threads_max: cfg.threads_max,
            steps_max: cfg.steps_max,
            time_max_ns: cfg.time_max_ns,
            loop_cost: cfg.loop_cost,
            sync_switch: cfg.sync_switch,
        }
    }

    /// Sets these parameters on `cfg`.
    pub fn apply(&self, cfg: &mut SimConfig) {
        cfg.poll_cost_ns = self.poll_cost_ns;
        cfg.spurious_wake_ppm = self.spurious_wake_ppm;
        cfg.mem_limit_bytes = self.mem_limit_bytes;
        cfg.threads_max = self.threads_max;
        cfg.steps_max = self.steps_max;
        cfg.time_max_ns = self.time_max_ns;
        cfg.loop_cost = self.loop_cost;
        cfg.sync_switch = self.sync_switch;
    }
}

/// A failure as recorded: its kind and its message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureRecord {
    /// `Failure::kind`, e.g. `"invariant"`.
    pub kind: String,
    /// `Failure::oracle`, e.g. `"invariant:no-loss"` (files written before
    /// oracle tags record none: the kind stands in).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub oracle: String,
    /// The failure's message (its `Display`).
    pub message: String,
}

impl FailureRecord {
    /// The oracle that fired ([`FailureRecord::oracle`], or the kind for a
    /// file that records no oracle).
    pub fn oracle_or_kind(&self) -> &str {
        if self.oracle.is_empty() {
            &self.kind
        } else {
            &self.oracle
        }
    }
}

impl From<&Failure> for FailureRecord {
    fn from(f: &Failure) -> Self {
        FailureRecord {
            kind: f.kind().to_string(),
            oracle: f.oracle(),
            message: f.to_string(),
        }
    }
}

impl fmt::Display for FailureRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What `faultline shrink` did to get this file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShrinkRecord {
    /// Non-default decisions before shrinking.
    pub choices_before: usize,
    /// Non-default decisions after.
    pub choices_after: usize,
    /// Candidate runs tried.
    pub attempts: usize,
    /// Decisions `(before, after)`.
    #[serde(default)]
    pub decisions: (u64, u64),
    /// Polls `(before, after)`.
    #[serde(default)]
    pub steps: (u64, u64),
    /// Trace events, the lines of the full log, `(before, after)`.
    #[serde(default)]
    pub trace_events: (u64, u64),
    /// The fault plan `(before, after)`.
    #[serde(default)]
    pub faults: (String, String),
    /// Wall time the shrink took, seconds.
    #[serde(default)]
    pub elapsed_s: f64,
}

impl ShrinkRecord {
    /// What shrinking achieved, in one line.
    pub fn summary(&self) -> String {
        format!(
            "non-default decisions {} -> {}, decisions {} -> {}, steps {} -> {}, trace lines {} -> {}, {} -> {}; {} candidate runs in {:.1} s",
            self.choices_before,
            self.choices_after,
            self.decisions.0,
            self.decisions.1,
            self.steps.0,
            self.steps.1,
            self.trace_events.0,
            self.trace_events.1,
            self.faults.0,
            self.faults.1,
            self.attempts,
            self.elapsed_s
        )
    }
}

/// Why a replay file could not be read.
#[derive(Debug)]
pub enum ReplayFileError {
    /// The file could not be read or written.
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// Not valid JSON, or not a replay file's shape.
    Syntax {
        /// What was wrong, with line and column.
        message: String,
        /// 1-based line of the error (0 when unknown).
        line: usize,
        /// 1-based column of the error (0 when unknown).
        column: usize,
    },
    /// Written by a build with another format version.
    Version {
        /// The file's version (`u32::MAX` for anything larger).
        found: u32,
    },
    /// Well-formed, but a value is unusable.
    Invalid(String),
}

impl fmt::Display for ReplayFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayFileError::Io { path, source } => write!(f, "cannot access '{path}': {source}"),
            ReplayFileError::Syntax { message, .. } => {
                write!(f, "malformed replay file: {message}")
            }
            ReplayFileError::Version { found } => write!(
                f,
                "replay file format {found} is not supported (this build reads format {FORMAT_VERSION})"
            ),
            ReplayFileError::Invalid(msg) => write!(f, "invalid replay file: {msg}"),
        }
    }
}

impl std::error::Error for ReplayFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReplayFileError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<serde_json::Error> for ReplayFileError {
    fn from(e: serde_json::Error) -> Self {
        ReplayFileError::Syntax {
            message: e.to_string(),
            line: e.line(),
            column: e.column(),
        }
    }
}

/// Parses and checks a replay file's text.
///
/// # Errors
/// [`ReplayFileError::Syntax`] for text that is not JSON or not shaped like
/// a replay file, [`ReplayFileError::Version`] for another format version,
/// [`ReplayFileError::Invalid`] for unusable values (PCT depth 0, an unknown
/// failure kind, an empty scenario name).
pub fn parse_replay(text: &str) -> Result<ReplayFile, ReplayFileError> {
    // The version first, so an older or newer file is named as such
    // instead of failing on a field it lacks.
    let value: serde_json::Value = serde_json::from_str(text)?;
    let Some(top) = value.as_object() else {
        return Err(ReplayFileError::Invalid(
            "expected a JSON object at the top level".into(),
        ));
    };
    let format = top
        .get("format")
        .ok_or_else(|| ReplayFileError::Invalid("missing field `format`".into()))?;
    match format.as_u64() {
        Some(v) if v == u64::from(FORMAT_VERSION) => {}
        Some(v) => {
            return Err(ReplayFileError::Version {
                found: u32::try_from(v).unwrap_or(u32::MAX),
            })
        }
        None => {
            return Err(ReplayFileError::Invalid(format!(
                "`format` must be a version number, found {format}"
            )))
        }
    }
    let file: ReplayFile = serde_json::from_str(text)?;
    file.validate().map_err(ReplayFileError::Invalid)?;
    Ok(file)
}

/// Reads and parses the replay file at `path`.
///
/// # Errors
/// [`ReplayFileError::Io`] when it cannot be read; otherwise as
/// [`parse_replay`].
pub fn read_replay(path: &Path) -> Result<ReplayFile, ReplayFileError> {
    let io = |source| ReplayFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > FILE_BYTES_MAX {
        return Err(ReplayFileError::Invalid(format!(
            "{len} bytes, above the bound of {FILE_BYTES_MAX}"
        )));
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    parse_replay(&text)
}

impl ReplayFile {
    /// Checks the values a well-shaped file may still get wrong.
    ///
    /// # Errors
    /// A message naming the first unusable value.
    pub fn validate(&self) -> Result<(), String> {
        if self.scenario.is_empty() {
            return Err("the scenario name is empty".into());
        }
        self.policy.validate()?;
        self.params.validate()?;
        self.faults.validate()?;
        let decisions_max = self.params.steps_max.saturating_mul(DECISIONS_PER_STEP_MAX);
        if self.decisions.len() as u64 > decisions_max {
            return Err(format!(
                "{} decisions for at most {} steps: more than {DECISIONS_PER_STEP_MAX} per step",
                self.decisions.len(),
                self.params.steps_max
            ));
        }
        if let Some(f) = &self.failure {
            if !FAILURE_KINDS.contains(&f.kind.as_str()) {
                return Err(format!(
                    "unknown failure kind '{}' (known: {})",
                    f.kind,
                    FAILURE_KINDS.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The file as JSON text: pretty, with the decisions packed
    /// 16 to a line.
    pub fn to_json(&self) -> String {
        let head = ReplayFile {
            decisions: Vec::new(),
            ..self.clone()
        };
        let mut text = serde_json::to_string_pretty(&head).unwrap_or_default();
        let empty = "\"decisions\": []";
        let Some(at) = text.rfind(empty) else {
            return serde_json::to_string(self).unwrap_or_default();
        };
        let lines: Vec<String> = self
            .decisions
            .chunks(DECISIONS_PER_LINE)
            .map(|c| {
                let items: Vec<String> = c
                    .iter()
                    .map(|d| serde_json::to_string(d).unwrap_or_default())
                    .collect();
                format!("    {}", items.join(", "))
            })
            .collect();
        let packed = if lines.is_empty() {
            "\"decisions\": []".to_string()
        } else {
            format!("\"decisions\": [\n{}\n  ]", lines.join(",\n"))
        };
        text.replace_range(at..at + empty.len(), &packed);
        text.push('\n');
        text
    }

    /// Writes the file to `path`, creating its directory.
    ///
    /// # Errors
    /// [`ReplayFileError::Io`] when the directory or file cannot be written.
    pub fn write(&self, path: &Path) -> Result<(), ReplayFileError> {
        let io = |source| ReplayFileError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        // Written aside and renamed, so a reader never sees half a file.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, self.to_json()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

/// Serializes a `u64` as `"0x"` and 16 hex digits.
mod hex_u64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:#018x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = String::deserialize(d)?;
        let digits = text.strip_prefix("0x").unwrap_or(&text);
        u64::from_str_radix(digits, 16).map_err(|_| {
            serde::de::Error::custom(format!(
                "trace_hash '{text}' is not a hex number like 0x0123456789abcdef"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ReplayFile {
        ReplayFile {
            format: FORMAT_VERSION,
            scenario: "toy-rmw".into(),
            variant: "pre-fix".into(),
            seed: 3,
            policy: PolicySpec::Pct {
                depth: 3,
                expected_steps: 8,
            },
            params: SimParams::default(),
            faults: FaultPlan::none(),
            failure: Some(FailureRecord {
                kind: "invariant".into(),
                oracle: "invariant:lost-update".into(),
                message: "invariant 'lost-update' violated: lost update".into(),
            }),
            trace_hash: 0xdead_beef,
            faultline_version: "0.1.0".into(),
            commit: "abc1234".into(),
            shrunk: None,
            decisions: (0..40)
                .map(|i| match i % 4 {
                    0 => Decision::Pick(i),
                    1 => Decision::Coin(true),
                    2 => Decision::Draw(i),
                    _ => Decision::Auto,
                })
                .collect(),
        }
    }

    #[test]
    fn round_trips() {
        let f = sample();
        let text = f.to_json();
        assert!(
            text.contains("\"trace_hash\": \"0x00000000deadbeef\""),
            "{text}"
        );
        assert_eq!(parse_replay(&text).unwrap(), f);
        let empty = ReplayFile {
            decisions: Vec::new(),
            ..sample()
        };
        assert_eq!(parse_replay(&empty.to_json()).unwrap(), empty);
    }

    #[test]
    fn malformed_files_are_typed_errors() {
        let good = sample().to_json();
        let cases = [
            ("", "EOF"),
            ("[1, 2]", "JSON object"),
            ("{\"format\": \"1\"}", "version number"),
            ("{\"format\": 1}", "missing field"),
            ("{\"format\": 99}", "format 99"),
            ("{}", "missing field `format`"),
        ];
        for (text, want) in cases {
            let e = parse_replay(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let bad_hash = good.replace("0x00000000deadbeef", "0xzz");
        assert!(parse_replay(&bad_hash)
            .unwrap_err()
            .to_string()
            .contains("hex"));
        let bad_depth = good.replace("\"depth\": 3", "\"depth\": 0");
        assert!(parse_replay(&bad_depth)
            .unwrap_err()
            .to_string()
            .contains("depth"));
        let extra = good.replacen('{', "{\"surprise\": 1,", 1);
        assert!(parse_replay(&extra)
            .unwrap_err()
            .to_string()
            .contains("surprise"));
    }
}
