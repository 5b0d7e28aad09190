//! `faultline replay --trace`: the services' own events in the simulated
//! trace. The shrunk store failure's focused view shows the rollover and
//! the stale restore, in that order, in two columns; `--trace-format json`
//! prints one JSON object per line; no ANSI escape with `NO_COLOR` (or when
//! stdout is not a terminal), and the story goes to the trace, not to
//! stderr.

mod support;

use std::path::{Path, PathBuf};
use support::{faultline, faultline_env, scratch, Ran};

/// Sweeps append-retention pre-fix, shrinks the first failure and returns
/// the shrunk file.
fn shrunk_store_failure(dir: &Path) -> PathBuf {
    let ran = faultline(
        dir,
        &[
            "run",
            "append-retention",
            "--variant",
            "pre-fix",
            "--seeds",
            "0..200",
        ],
    );
    assert_eq!(ran.code, 1, "{}{}", ran.stdout, ran.stderr);
    let path = ran.replay_path(dir);
    let out = dir.join("store.min.json");
    let shrunk = faultline(
        dir,
        &[
            "shrink",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--time-s",
            "20",
        ],
    );
    assert_eq!(shrunk.code, 0, "{}{}", shrunk.stdout, shrunk.stderr);
    out
}

fn replay(dir: &Path, file: &Path, flags: &[&str]) -> Ran {
    let mut args = vec!["replay", file.to_str().unwrap()];
    args.extend_from_slice(flags);
    // Wide enough that no cell wraps.
    faultline_env(dir, &args, &[("NO_COLOR", "1"), ("COLUMNS", "600")])
}

/// The first stdout line containing `needle`, with its index.
fn find_line<'a>(out: &'a str, needle: &str) -> Option<(usize, &'a str)> {
    out.lines().enumerate().find(|(_, l)| l.contains(needle))
}

#[test]
fn focused_store_trace_shows_the_rollover_then_the_stale_restore() {
    let dir = scratch();
    let file = shrunk_store_failure(dir.path());
    let ran = replay(dir.path(), &file, &["--trace", "--focus"]);
    assert_eq!(ran.code, 1, "{}{}", ran.stdout, ran.stderr);
    let out = &ran.stdout;
    assert!(out.contains("--- focused trace"), "{out}");
    // The stale restore names the writer's segment N and the active one.
    let (stale_at, stale) = find_line(out, "): STALE").unwrap_or_else(|| {
        panic!("no stale restore in the focused trace:\n{out}");
    });
    let seg: u64 = stale
        .split("append restored the writer of segment ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no segment in {stale:?}"));
    let rolled = format!("retention rolled segment {seg} to {}", seg + 1);
    let (rolled_at, rolled_line) =
        find_line(out, &rolled).unwrap_or_else(|| panic!("no '{rolled}' in:\n{out}"));
    assert!(
        rolled_at < stale_at,
        "the rollover comes before the stale restore:\n{out}"
    );
    assert!(
        stale.contains(&format!("(active segment {})", seg + 1)),
        "{stale}"
    );
    // Side by side: retention and the appender in different columns.
    let col = |l: &str, s: &str| l[..l.find(s).unwrap()].matches('|').count();
    assert_ne!(
        col(rolled_line, "retention rolled"),
        col(stale, "append restored"),
        "one column per task:\n{out}"
    );
    // Virtual time at the left: the rollover's row starts with its ms.
    let ms: f64 = rolled_line
        .split_whitespace()
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no virtual time in {rolled_line:?}"));
    assert!(ms > 0.0 && ms < 1e6, "{rolled_line}");
    // The focus leaves out the polls and the tasks the oracle does not name.
    assert!(!out.contains("poll task"), "{out}");
    assert!(!out.contains("seed-backfill"), "{out}");
}

#[test]
fn trace_format_json_prints_one_object_per_line() {
    let dir = scratch();
    let file = shrunk_store_failure(dir.path());
    for flags in [
        &["--trace", "--trace-format", "json"][..],
        &["--focus", "--trace-format", "json"][..],
    ] {
        let ran = replay(dir.path(), &file, flags);
        assert_eq!(ran.code, 1, "{flags:?}: {}{}", ran.stdout, ran.stderr);
        let mut stories = 0;
        let mut rolled = 0;
        for line in ran.stdout.lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{flags:?}: not JSON ({e}): {line:?}"));
            assert!(v["time_ns"].is_u64(), "{line}");
            assert!(v["step"].is_u64(), "{line}");
            assert!(v["kind"].is_string() && v["text"].is_string(), "{line}");
            assert!(v["fields"].is_object(), "{line}");
            if v["kind"] == "story" {
                stories += 1;
                assert!(v["task"].is_u64() && v["node"] == "store", "{line}");
            }
            if v["text"].as_str().unwrap().starts_with("retention rolled") {
                rolled += 1;
                assert_eq!(v["task_name"], "retention", "{line}");
                assert!(v["fields"]["from"].is_string(), "{line}");
            }
        }
        assert!(stories > 0 && rolled > 0, "{flags:?}:\n{}", ran.stdout);
        // The human lines went to stderr.
        assert!(ran.stderr.contains("reproduced"), "{}", ran.stderr);
    }
}

#[test]
fn no_ansi_and_the_story_stays_out_of_stderr() {
    let dir = scratch();
    let file = shrunk_store_failure(dir.path());
    for flags in [&["--trace"][..], &["--trace", "--focus"][..]] {
        let ran = replay(dir.path(), &file, flags);
        assert_eq!(ran.code, 1, "{flags:?}: {}{}", ran.stdout, ran.stderr);
        let all = format!("{}{}", ran.stdout, ran.stderr);
        assert!(!all.contains("\x1b["), "{flags:?}: ANSI escape in:\n{all}");
        assert!(ran.stdout.contains("retention rolled"), "{}", ran.stdout);
        assert!(
            !ran.stderr.contains("retention rolled"),
            "{flags:?}: the story went to stderr:\n{}",
            ran.stderr
        );
    }
}
