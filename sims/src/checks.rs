//! Results of the model checkers, the fuzzer and the real-server tests, as
//! their tests record them (`faultline::check::record`), read back for the
//! teeth table and judged: a record counts only when it was earned on the
//! source in front of us, by the bug's own oracle.

use crate::scenario::Bug;
use faultline::check::record::{read_all, CheckRecord, Role, SourceState};
use std::collections::BTreeMap;
use std::path::Path;

pub use faultline::check::record::checks_dir;

/// Records by `(bug, checker)`, with the source they are judged against.
#[derive(Clone, Debug, Default)]
pub struct Checks {
    by: BTreeMap<(String, String), Vec<CheckRecord>>,
    source: Option<SourceState>,
}

impl Checks {
    /// The records of `bug` by `checker`.
    pub fn get(&self, bug: &str, checker: &str) -> &[CheckRecord] {
        self.by
            .get(&(bug.to_string(), checker.to_string()))
            .map_or(&[], Vec::as_slice)
    }

    /// The source state records must match to count.
    pub fn source(&self) -> SourceState {
        self.source
            .clone()
            .unwrap_or_else(|| SourceState::current().clone())
    }
}

/// Reads every record under `dir` (missing dir: none), to be judged against
/// the current checkout's source state. Unreadable or malformed files are
/// named in the returned warnings.
pub fn read_checks(dir: &Path) -> (Checks, Vec<String>) {
    read_checks_against(dir, SourceState::current().clone())
}

/// [`read_checks`], judged against `source` (for tests).
pub fn read_checks_against(dir: &Path, source: SourceState) -> (Checks, Vec<String>) {
    let (records, warnings) = read_all(dir);
    let mut by: BTreeMap<(String, String), Vec<CheckRecord>> = BTreeMap::new();
    for r in records {
        by.entry((r.bug.clone(), r.checker.clone()))
            .or_default()
            .push(r);
    }
    for v in by.values_mut() {
        v.sort_by(|a, b| (a.role, &a.test).cmp(&(b.role, &b.test)));
    }
    let checks = Checks {
        by,
        source: Some(source),
    };
    (checks, warnings)
}

/// How a recorded cell stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CellState {
    /// The checker has no record of this bug (no model, or it did not run).
    NotRun,
    /// Every record is current and as it must be.
    Ok,
    /// A record was earned on another source state or format.
    Stale,
    /// A current record says missed, fails, or caught by another oracle.
    Bad,
}

/// One checker's cell for one bug.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    /// What the table shows.
    pub text: String,
    /// How it stands.
    pub state: CellState,
}

/// The teeth-table cell of `checker` for `bug`.
pub fn cell(checks: &Checks, bug: &Bug, checker: &str) -> Cell {
    let records = checks.get(bug.key, checker);
    if records.is_empty() {
        return Cell {
            text: "not run".into(),
            state: CellState::NotRun,
        };
    }
    let source = checks.source();
    let stale: Vec<&CheckRecord> = records.iter().filter(|r| !r.is_current(&source)).collect();
    if let Some(r) = stale.first() {
        return Cell {
            text: format!(
                "stale ({}; {} of {} records)",
                r.source.short(),
                stale.len(),
                records.len()
            ),
            state: CellState::Stale,
        };
    }
    let mut parts = Vec::new();
    let mut state = CellState::Ok;
    for (role, group) in by_role(records) {
        let (text, ok) = part(bug, role, &group);
        parts.push(text);
        if !ok {
            state = CellState::Bad;
        }
    }
    Cell {
        text: parts.join("; "),
        state,
    }
}

fn by_role(records: &[CheckRecord]) -> BTreeMap<Role, Vec<&CheckRecord>> {
    let mut m: BTreeMap<Role, Vec<&CheckRecord>> = BTreeMap::new();
    for r in records {
        m.entry(r.role).or_default().push(r);
    }
    m
}

/// The text of one role's records and whether they are as they must be.
fn part(bug: &Bug, role: Role, group: &[&CheckRecord]) -> (String, bool) {
    let its = |rs: &[&CheckRecord]| {
        let mut v: Vec<u64> = rs.iter().map(|r| r.iterations).collect();
        v.sort_unstable();
        match v.as_slice() {
            [one] => format!("{one} it."),
            [first, .., last] if first == last => format!("{first} it. each, {} checks", v.len()),
            [first, .., last] => format!("{first}-{last} it., {} checks", v.len()),
            [] => String::new(),
        }
    };
    match role {
        Role::Caught => {
            let foreign: Vec<&&CheckRecord> = group
                .iter()
                .filter(|r| !bug.oracles.contains(&r.oracle.as_str()))
                .collect();
            match foreign.first() {
                Some(r) => (format!("OTHER ORACLE ({})", r.oracle), false),
                None => (format!("found in {}", its(group)), true),
            }
        }
        Role::Missed => (format!("MISSED ({})", its(group)), false),
        Role::Holds => (format!("fixed holds ({})", its(group)), true),
        Role::Fails => (format!("FIXED FAILS ({})", group[0].test), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Origin, RowKind};
    use faultline::check::record::Expect;

    const BUG: Bug = Bug {
        key: "stale-writer",
        title: "t",
        oracles: &["invariant:no-loss", "invariant:writer-is-active"],
        kind: RowKind::Schedule,
        origin: Origin::Historical,
        sync_switch: false,
    };

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("fl-checks-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn current_records_make_a_cell_and_junk_is_named() {
        let dir = scratch("cell");
        let e = Expect::caught("loom", "stale-writer", "invariant:no-loss").in_dir(&dir);
        assert!(e.settle(12, "invariant:no-loss", "lost"));
        let e = Expect::holds("loom", "stale-writer", "invariant:no-loss").in_dir(&dir);
        assert!(e.settle(900, "", ""));
        std::fs::write(dir.join("junk.json"), "{not json").unwrap();
        let (checks, warnings) = read_checks(&dir);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let c = cell(&checks, &BUG, "loom");
        assert_eq!(c.text, "found in 12 it.; fixed holds (900 it.)");
        assert_eq!(c.state, CellState::Ok);
        assert_eq!(cell(&checks, &BUG, "shuttle").state, CellState::NotRun);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn another_source_is_stale_and_another_oracle_is_bad() {
        let dir = scratch("stale");
        let e = Expect::caught_any("loom", "stale-writer", &["invariant:lost-update"]).in_dir(&dir);
        assert!(e.settle(3, "invariant:lost-update", "x"));
        let (checks, _) = read_checks(&dir);
        let c = cell(&checks, &BUG, "loom");
        assert_eq!(c.state, CellState::Bad, "{}", c.text);
        assert!(c.text.contains("OTHER ORACLE"), "{}", c.text);
        let elsewhere = SourceState {
            commit: "0123456789".into(),
            dirty: String::new(),
        };
        let (checks, _) = read_checks_against(&dir, elsewhere);
        let c = cell(&checks, &BUG, "loom");
        assert_eq!(c.state, CellState::Stale);
        assert!(c.text.starts_with("stale ("), "{}", c.text);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missed_record_is_bad() {
        let dir = scratch("missed");
        let e = Expect::caught("shuttle", "stale-writer", "invariant:no-loss").in_dir(&dir);
        assert!(!e.settle(2000, "", "not caught"));
        let (checks, _) = read_checks(&dir);
        let c = cell(&checks, &BUG, "shuttle");
        assert_eq!(c.state, CellState::Bad);
        assert_eq!(c.text, "MISSED (2000 it.)");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
