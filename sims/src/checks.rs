//! Results of the model checkers and the fuzzer, as their tests record them
//! (`target/faultline/checks/<checker>--<bug>--<role>.json`, written by
//! `tests/support`), read back for the teeth table. A checker that did not
//! run leaves no file: the table says "not run".

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Where check records live, relative to the workspace root.
pub const CHECKS_DIR: &str = "target/faultline/checks";

/// Records read at most (a directory of junk cannot make the report huge).
pub const RECORDS_MAX: usize = 1_000;

/// What a checker showed about a bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The checker caught the buggy variant.
    Caught,
    /// The checker ran the buggy variant and did not catch it.
    Missed,
    /// The fixed variant held under the checker.
    Holds,
    /// The fixed variant failed under the checker.
    Fails,
}

/// One recorded result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// `loom`, `shuttle` or `fuzz`.
    pub checker: String,
    /// The bug's key (see the teeth table), e.g. `stale-writer`.
    pub bug: String,
    /// What it showed.
    pub role: Role,
    /// Iterations (executions, schedules, inputs) it took: to the first
    /// failure when caught, in all when it held.
    pub iterations: u64,
    /// The test that recorded it.
    pub test: String,
}

/// Records by `(bug, checker)`, each with its roles in order.
pub type Checks = BTreeMap<(String, String), Vec<CheckRecord>>;

/// Reads every record under `dir` (missing dir: none). Unreadable or
/// malformed files are skipped and named in the returned warnings.
pub fn read_checks(dir: &Path) -> (Checks, Vec<String>) {
    let mut checks = Checks::new();
    let mut warnings = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (checks, warnings);
    };
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in paths.into_iter().take(RECORDS_MAX) {
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<CheckRecord>(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(r) => checks
                .entry((r.bug.clone(), r.checker.clone()))
                .or_default()
                .push(r),
            Err(e) => warnings.push(format!("{}: {e}", path.display())),
        }
    }
    for records in checks.values_mut() {
        records.sort_by_key(|r| r.role);
    }
    (checks, warnings)
}

/// The teeth-table cell of one checker for one bug: caught (iterations to
/// first failure) / missed, and whether the fixed variant held.
pub fn cell(checks: &Checks, bug: &str, checker: &str) -> String {
    let Some(records) = checks.get(&(bug.to_string(), checker.to_string())) else {
        return "not run".into();
    };
    let part = |r: &CheckRecord| match r.role {
        Role::Caught => format!("found in {} it.", r.iterations),
        Role::Missed => format!("NOT found ({} it.)", r.iterations),
        Role::Holds => format!("fixed holds ({} it.)", r.iterations),
        Role::Fails => "FIXED FAILS".to_string(),
    };
    records.iter().map(part).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_records_and_skips_junk() {
        let dir = std::env::temp_dir().join(format!("faultline-checks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rec = CheckRecord {
            checker: "loom".into(),
            bug: "stale-writer".into(),
            role: Role::Caught,
            iterations: 12,
            test: "t".into(),
        };
        std::fs::write(dir.join("a.json"), serde_json::to_string(&rec).unwrap()).unwrap();
        let holds = CheckRecord {
            role: Role::Holds,
            iterations: 900,
            ..rec.clone()
        };
        std::fs::write(dir.join("b.json"), serde_json::to_string(&holds).unwrap()).unwrap();
        std::fs::write(dir.join("c.json"), "{not json").unwrap();
        let (checks, warnings) = read_checks(&dir);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(
            cell(&checks, "stale-writer", "loom"),
            "found in 12 it.; fixed holds (900 it.)"
        );
        assert_eq!(cell(&checks, "stale-writer", "shuttle"), "not run");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
