//! Bad input exits 2 with a one-line error; help and version exit 0.

mod support;

use support::{faultline, faultline_env, scratch};

fn assert_bad(args: &[&str], env: &[(&str, &str)], want: &str) {
    let dir = scratch();
    let ran = faultline_env(dir.path(), args, env);
    assert_eq!(ran.code, 2, "{args:?}: {}{}", ran.stdout, ran.stderr);
    assert_eq!(ran.stderr.lines().count(), 1, "{args:?}: {}", ran.stderr);
    assert!(ran.stderr.starts_with("error"), "{args:?}: {}", ran.stderr);
    assert!(ran.stderr.contains(want), "{args:?}: {}", ran.stderr);
    assert!(!dir.path().join("target").exists(), "{args:?} wrote files");
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let none: &[(&str, &str)] = &[];
    assert_bad(
        &["run", "nope", "--seed", "1"],
        none,
        "unknown scenario 'nope'",
    );
    assert_bad(
        &["run", "toy-rmw", "--variant", "x", "--seed", "1"],
        none,
        "no variant 'x'",
    );
    assert_bad(&["run", "toy-rmw", "--seeds", "5..2"], none, "5..2");
    assert_bad(
        &["run", "toy-rmw", "--seeds", "0..9", "--shard", "0/3"],
        none,
        "0/3",
    );
    assert_bad(
        &["run", "toy-rmw", "--seeds", "0..9", "--shard", "4/3"],
        none,
        "4/3",
    );
    assert_bad(&["run", "toy-rmw"], none, "--seed N or --seeds A..B");
    assert_bad(
        &["run", "toy-rmw", "--seed", "1", "--seeds", "0..3"],
        none,
        "cannot be used",
    );
    assert_bad(
        &["run", "toy-rmw", "--seed", "1", "--policy", "dfs"],
        none,
        "dfs",
    );
    assert_bad(
        &["run", "toy-rmw", "--seed", "1", "--pct-depth", "0"],
        none,
        "pct-depth",
    );
    assert_bad(&["frobnicate"], none, "frobnicate");
    assert_bad(
        &["run", "toy-rmw", "--seed", "1"],
        &[("FAULTLINE_SEED", "x")],
        "FAULTLINE_SEED",
    );
}

#[test]
fn help_and_version_exit_0() {
    let dir = scratch();
    let help = faultline(dir.path(), &["--help"]);
    assert_eq!(help.code, 0);
    for cmd in ["list", "run", "replay", "shrink"] {
        assert!(help.stdout.contains(cmd), "{}", help.stdout);
    }
    let version = faultline(dir.path(), &["--version"]);
    assert_eq!(version.code, 0);
    assert!(
        version.stdout.starts_with("faultline "),
        "{}",
        version.stdout
    );
}
