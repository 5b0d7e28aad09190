//! Check records: what a model checker, the fuzzer or a real-server test
//! showed about a bug, written where the teeth table reads it back.
//!
//! A record is earned on one source state and one configuration: it carries
//! the commit (and a fingerprint of uncommitted changes), the checker's
//! configuration (iterations, preemption bound, policy, seed), the oracle
//! that fired (or was expected), and the time. The teeth table shows a
//! record of another source state as `stale`, never as a verdict.
//!
//! A test that expects something takes an [`Expect`] first and settles it
//! when the check is done; if the check panics or returns without settling,
//! the guard writes the failing verdict (`missed` for a bug that was not
//! caught, `fails` for a fix that did not hold) on its way out, so a check
//! that regresses can never leave its old success behind.
//!
//! ```
//! use faultline::check::record::Expect;
//! # let dir = std::env::temp_dir().join(format!("fl-doc-{}", std::process::id()));
//! # std::env::set_var("FAULTLINE_CHECKS_DIR", &dir);
//! let expect = Expect::caught("loom", "stale-writer", "invariant:no-loss")
//!     .config("preemption_bound", 3);
//! // ... run the model; it caught the bug after 12 iterations:
//! expect.settle(12, "invariant:no-loss", "acknowledged events lost");
//! # std::fs::remove_dir_all(&dir).ok();
//! ```

use crate::sync::ProcessOnceLock;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The record format this build writes; records of another format are
/// shown as stale.
pub const RECORD_FORMAT: u32 = 2;

/// Records read at most from one directory.
pub const RECORDS_MAX: usize = 1_000;

/// Bytes of a record file read at most.
pub const RECORD_BYTES_MAX: u64 = 64 * 1024;

/// What a checker showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// It caught the buggy variant with the bug's own oracle.
    Caught,
    /// It ran the buggy variant and did not catch it (or caught it only
    /// through another oracle).
    Missed,
    /// The fixed variant held.
    Holds,
    /// The fixed variant failed.
    Fails,
}

impl Role {
    /// Whether this is the verdict the check wanted.
    pub fn is_expected(self) -> bool {
        matches!(self, Role::Caught | Role::Holds)
    }

    /// The side of the bug it is about: `buggy` or `fixed`.
    pub fn side(self) -> &'static str {
        match self {
            Role::Caught | Role::Missed => "buggy",
            Role::Holds | Role::Fails => "fixed",
        }
    }
}

/// The source a record was earned on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceState {
    /// `git rev-parse HEAD`, or `"unknown"` outside a git checkout.
    pub commit: String,
    /// A fingerprint of uncommitted changes to tracked files (`git diff
    /// HEAD`), empty when the tree is clean.
    #[serde(default)]
    pub dirty: String,
}

impl SourceState {
    /// The state of the checkout around the current directory, computed
    /// once per process.
    pub fn current() -> &'static SourceState {
        static STATE: ProcessOnceLock<SourceState> = ProcessOnceLock::new();
        STATE.get_or_init(SourceState::probe)
    }

    fn probe() -> SourceState {
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| o.stdout)
        };
        let Some(head) = git(&["rev-parse", "HEAD"]) else {
            return SourceState {
                commit: "unknown".into(),
                dirty: String::new(),
            };
        };
        let diff = git(&["diff", "HEAD", "--no-ext-diff", "--binary"]).unwrap_or_default();
        let dirty = if diff.is_empty() {
            String::new()
        } else {
            format!("{:016x}", fnv1a(&diff))
        };
        SourceState {
            commit: String::from_utf8_lossy(&head).trim().to_string(),
            dirty,
        }
    }

    /// `abc1234` or `abc1234+dirty`.
    pub fn short(&self) -> String {
        let c: String = self.commit.chars().take(7).collect();
        if self.dirty.is_empty() {
            c
        } else {
            format!("{c}+dirty")
        }
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One recorded result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// [`RECORD_FORMAT`].
    pub format: u32,
    /// `loom`, `shuttle`, `fuzz`, `real`, ...
    pub checker: String,
    /// The bug's key (a teeth-table row), e.g. `stale-writer`.
    pub bug: String,
    /// What it showed.
    pub role: Role,
    /// The oracle that fired (caught, fails), or the one expected (missed,
    /// holds), as `Failure::oracle` names it.
    pub oracle: String,
    /// Iterations (executions, schedules, inputs, runs) it took: to the
    /// first failure when caught, in all otherwise.
    pub iterations: u64,
    /// The checker's configuration (iterations asked, preemption bound,
    /// policy, seed, ...).
    pub config: BTreeMap<String, String>,
    /// The test that recorded it.
    pub test: String,
    /// The source it was earned on.
    pub source: SourceState,
    /// When, in seconds since the Unix epoch (wall clock: reporting only).
    pub recorded_at_unix_s: u64,
    /// What happened, in one line (the failure message, or why it missed).
    #[serde(default)]
    pub detail: String,
}

impl CheckRecord {
    /// Whether it was earned on `source` in this build's record format.
    pub fn is_current(&self, source: &SourceState) -> bool {
        self.format == RECORD_FORMAT && &self.source == source
    }

    /// The configuration as `k=v, k=v` (empty when none).
    pub fn config_line(&self) -> String {
        self.config
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Where records go: `FAULTLINE_CHECKS_DIR`, or `<target>/faultline/checks`
/// (see [`super::paths::target_dir`]).
pub fn checks_dir() -> PathBuf {
    match std::env::var_os("FAULTLINE_CHECKS_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => super::paths::faultline_dir().join("checks"),
    }
}

/// The file of `(checker, bug, side, test)`: one per test and side, so a
/// regression overwrites the success it replaces.
fn file_name(rec: &CheckRecord) -> String {
    let slug: String = rec
        .test
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!(
        "{}--{}--{}--{slug}.json",
        rec.checker,
        rec.bug,
        rec.role.side()
    )
}

/// Writes `rec` under `dir` (replacing the same test's record of the same
/// side) and returns its path.
///
/// # Errors
/// The I/O error when the directory or file cannot be written.
pub fn write_in(dir: &Path, rec: &CheckRecord) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(file_name(rec));
    let text = serde_json::to_string_pretty(rec).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Reads every record under `dir` (a missing dir: none). Unreadable,
/// oversized or malformed files are skipped and named in the warnings.
pub fn read_all(dir: &Path) -> (Vec<CheckRecord>, Vec<String>) {
    let mut warnings = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (Vec::new(), warnings);
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    if paths.len() > RECORDS_MAX {
        warnings.push(format!(
            "{}: {} records, only the first {RECORDS_MAX} read",
            dir.display(),
            paths.len()
        ));
    }
    let mut out = Vec::new();
    for path in paths.into_iter().take(RECORDS_MAX) {
        match read_one(&path) {
            Ok(r) => out.push(r),
            Err(e) => warnings.push(format!("{}: {e}", path.display())),
        }
    }
    (out, warnings)
}

fn read_one(path: &Path) -> Result<CheckRecord, String> {
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len > RECORD_BYTES_MAX {
        return Err(format!("{len} bytes > {RECORD_BYTES_MAX}: not a record"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// Seconds since the Unix epoch, for a record's time stamp.
fn unix_now_s() -> u64 {
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now(); // allow-world: a record's wall-clock time stamp, outside every run
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What a test expects of a check, settled when the check is done; if it
/// is dropped unsettled (the check panicked), it records the failing
/// verdict. See the module docs.
#[must_use = "settle the expectation when the check is done"]
pub struct Expect {
    rec: CheckRecord,
    /// The oracles that count (the bug's own).
    accepted: Vec<String>,
    dir: PathBuf,
    settled: bool,
}

impl Expect {
    fn new(checker: &str, bug: &str, role: Role, oracles: &[&str]) -> Expect {
        let test = std::thread::current()
            .name()
            .unwrap_or("unknown")
            .to_string();
        Expect {
            rec: CheckRecord {
                format: RECORD_FORMAT,
                checker: checker.into(),
                bug: bug.into(),
                role,
                oracle: oracles.join("|"),
                iterations: 0,
                config: BTreeMap::new(),
                test,
                source: SourceState::current().clone(),
                recorded_at_unix_s: 0,
                detail: String::new(),
            },
            accepted: oracles.iter().map(|o| o.to_string()).collect(),
            dir: checks_dir(),
            settled: false,
        }
    }

    /// The check must catch `bug` with its oracle `oracle` (as
    /// `Failure::oracle` names it, e.g. `invariant:no-loss`).
    pub fn caught(checker: &str, bug: &str, oracle: &str) -> Expect {
        Expect::new(checker, bug, Role::Caught, &[oracle])
    }

    /// The check must catch `bug` with any one of its oracles `oracles`
    /// (a bug that several oracles signal, whichever the schedule reaches
    /// first).
    pub fn caught_any(checker: &str, bug: &str, oracles: &[&str]) -> Expect {
        Expect::new(checker, bug, Role::Caught, oracles)
    }

    /// The fixed variant must hold against `bug`'s oracle `oracle`.
    pub fn holds(checker: &str, bug: &str, oracle: &str) -> Expect {
        Expect::new(checker, bug, Role::Holds, &[oracle])
    }

    /// The fixed variant must hold against every one of `bug`'s oracles.
    pub fn holds_all(checker: &str, bug: &str, oracles: &[&str]) -> Expect {
        Expect::new(checker, bug, Role::Holds, oracles)
    }

    /// Adds a configuration entry (iterations asked, preemption bound,
    /// policy, seed, ...).
    pub fn config(mut self, key: &str, value: impl ToString) -> Expect {
        self.rec.config.insert(key.into(), value.to_string());
        self
    }

    /// Names the test or script that ran the check (default: the current
    /// thread's name, which is the test's name under `cargo test`).
    pub fn test(mut self, name: &str) -> Expect {
        self.rec.test = name.into();
        self
    }

    /// Writes records under `dir` instead of [`checks_dir`].
    pub fn in_dir(mut self, dir: &Path) -> Expect {
        self.dir = dir.to_path_buf();
        self
    }

    /// Settles it with what the check observed: `fired` is the oracle that
    /// failed (empty when nothing failed). A `caught` expectation is met
    /// only when `fired` is one of its oracles (the record then names that
    /// one); a `holds` one only when nothing fired. Writes the record and
    /// returns whether it was met.
    ///
    /// `fired` may name several invariants at once, as a failure's oracle
    /// line does when more than one fired in the same run
    /// (`invariant:a+b`): the expectation is met when one of them is its
    /// own, and the record names that one.
    pub fn settle(mut self, iterations: u64, fired: &str, detail: &str) -> bool {
        let own_one = fired_oracles(fired)
            .into_iter()
            .find(|f| self.accepted.iter().any(|o| o == f));
        let own = own_one.is_some();
        let met = match self.rec.role {
            Role::Caught => own,
            _ => fired.is_empty(),
        };
        if let Some(o) = own_one {
            self.rec.oracle = o;
        }
        if !met {
            self.rec.role = match self.rec.role {
                Role::Caught => Role::Missed,
                _ => Role::Fails,
            };
        }
        if !fired.is_empty() && !own {
            self.rec.detail = format!("other oracle fired: {fired}: {detail}");
        } else {
            self.rec.detail = detail.to_string();
        }
        self.rec.iterations = iterations;
        self.finish();
        met
    }

    fn finish(&mut self) {
        self.settled = true;
        self.rec.recorded_at_unix_s = unix_now_s();
        if let Err(e) = write_in(&self.dir, &self.rec) {
            eprintln!(
                "note: could not record {}/{}/{:?} under {}: {e}",
                self.rec.checker,
                self.rec.bug,
                self.rec.role,
                self.dir.display()
            );
        }
    }
}

/// Each oracle of a fired tag, named alone (`invariant:a+b` is
/// `invariant:a` and `invariant:b`, as `Failure::oracles` names them).
fn fired_oracles(fired: &str) -> Vec<String> {
    match fired.strip_prefix("invariant:") {
        Some(tags) if tags.contains('+') => {
            tags.split('+').map(|t| format!("invariant:{t}")).collect()
        }
        _ => vec![fired.to_string()],
    }
}

impl Drop for Expect {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        self.rec.role = match self.rec.role {
            Role::Caught => Role::Missed,
            _ => Role::Fails,
        };
        self.rec.detail = if std::thread::panicking() {
            "the check panicked before it settled".into()
        } else {
            "the check returned without settling".into()
        };
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fl-rec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_settled_catch_and_a_missed_one_overwrite_each_other() {
        let dir = scratch("overwrite");
        let e = Expect::caught("loom", "b", "invariant:x").in_dir(&dir);
        assert!(e.settle(3, "invariant:x", "boom"));
        let (recs, w) = read_all(&dir);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].role, Role::Caught);
        let e = Expect::caught("loom", "b", "invariant:x").in_dir(&dir);
        assert!(!e.settle(9, "invariant:y", "other"));
        let (recs, _) = read_all(&dir);
        assert_eq!(recs.len(), 1, "the miss replaces the catch");
        assert_eq!(recs[0].role, Role::Missed);
        assert!(recs[0].detail.contains("other oracle fired: invariant:y"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_catch_among_several_fired_oracles_names_its_own() {
        // The fuzz smoke's schedule target hit the double flush together
        // with two other spend oracles in one run: `invariant:a+b+c`.
        let dir = scratch("several");
        let e = Expect::caught_any("fuzz", "b", &["invariant:double-flush"]).in_dir(&dir);
        assert!(e.settle(11, "invariant:crash-after-commit+double-flush", "r"));
        let (recs, _) = read_all(&dir);
        assert_eq!(recs[0].role, Role::Caught);
        assert_eq!(recs[0].oracle, "invariant:double-flush");
        let e = Expect::caught_any("fuzz", "b", &["invariant:double-flush"]).in_dir(&dir);
        assert!(!e.settle(2, "invariant:crash-after-commit+lost", "r"));
        let (recs, _) = read_all(&dir);
        assert_eq!(recs[0].role, Role::Missed, "no own oracle among them");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unsettled_expectation_records_the_failing_verdict() {
        let dir = scratch("unsettled");
        let d = dir.clone();
        let r = std::panic::catch_unwind(move || {
            let _e = Expect::holds("shuttle", "b", "invariant:x").in_dir(&d);
            panic!("the fixed variant failed");
        });
        assert!(r.is_err());
        let (recs, _) = read_all(&dir);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].role, Role::Fails);
        assert!(recs[0].detail.contains("panicked"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn records_of_another_source_are_not_current() {
        let dir = scratch("stale");
        let e = Expect::holds("loom", "b", "invariant:x").in_dir(&dir);
        e.settle(5, "", "");
        let (mut recs, _) = read_all(&dir);
        let here = SourceState::current();
        assert!(recs[0].is_current(here));
        recs[0].source.commit = "0000000".into();
        assert!(!recs[0].is_current(here));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
