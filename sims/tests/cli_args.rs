//! The command line behaves: bad input exits 2 with an error that keeps
//! its substance (clap's missing argument, possible values, "did you
//! mean"), our own errors are one line; an explicit flag beats the
//! environment; exit codes are documented in --help; a failure is never
//! lost; replay files are bounded; shards merge into the whole sweep.

mod support;

use support::{faultline, faultline_env, scratch};

/// Runs `args`, expects exit 2 with `want` in stderr and no files written.
fn assert_bad(args: &[&str], env: &[(&str, &str)], want: &str) -> String {
    let dir = scratch();
    let ran = faultline_env(dir.path(), args, env);
    assert_eq!(ran.code, 2, "{args:?}: {}{}", ran.stdout, ran.stderr);
    assert!(ran.stderr.starts_with("error"), "{args:?}: {}", ran.stderr);
    assert!(ran.stderr.contains(want), "{args:?}: {}", ran.stderr);
    assert!(!dir.path().join("target").exists(), "{args:?} wrote files");
    ran.stderr
}

const NONE: &[(&str, &str)] = &[];

/// Arguments, environment, and what the error must say.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn our_own_errors_exit_2_with_one_line() {
    let cases: &[Case<'_>] = &[
        (
            &["run", "nope", "--seed", "1"],
            NONE,
            "unknown scenario 'nope'",
        ),
        (
            &["run", "toy-rmw", "--variant", "x", "--seed", "1"],
            NONE,
            "no variant 'x'",
        ),
        (&["run", "toy-rmw"], NONE, "--seed N or --seeds A..B"),
        (
            &["run", "toy-rmw"],
            &[("FAULTLINE_SEED", "x")],
            "FAULTLINE_SEED",
        ),
        (
            &["run", "toy-rmw", "--seed", "3", "--shard", "1/2"],
            NONE,
            "not in shard 1/2",
        ),
        (
            &["run", "toy-rmw", "--seed", "2"],
            &[("FAULTLINE_SHARD", "2/2")],
            "not in shard 2/2",
        ),
        (
            &["run", "toy-rmw", "--seed", "1"],
            &[("FAULTLINE_POLICY", "dfs")],
            "valid policies",
        ),
    ];
    for (args, env, want) in cases {
        let err = assert_bad(args, env, want);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn clap_errors_keep_their_substance() {
    let err = assert_bad(&["run", "toy-rmw", "--sed", "3"], NONE, "--sed");
    assert!(err.contains("a similar argument exists: '--seed'"), "{err}");
    let err = assert_bad(
        &["run", "toy-rmw", "--seed", "1", "--policy", "dfs"],
        NONE,
        "dfs",
    );
    assert!(err.contains("possible values: random, pct"), "{err}");
    let err = assert_bad(&["run"], NONE, "<SCENARIO>");
    assert!(
        err.contains("required arguments were not provided"),
        "{err}"
    );
    assert_bad(&["run", "toy-rmw", "--seeds", "5..2"], NONE, "5..2");
    assert_bad(
        &["run", "toy-rmw", "--seeds", "0..9", "--shard", "0/3"],
        NONE,
        "0/3",
    );
    assert_bad(
        &["run", "toy-rmw", "--seed", "1", "--seeds", "0..3"],
        NONE,
        "cannot be used",
    );
    assert_bad(
        &["run", "toy-rmw", "--seed", "1", "--pct-depth", "0"],
        NONE,
        "pct-depth",
    );
    assert_bad(&["frobnicate"], NONE, "frobnicate");
}

#[test]
fn help_lists_exit_codes_environment_and_files_and_exits_0() {
    let dir = scratch();
    let help = faultline(dir.path(), &["--help"]);
    assert_eq!(help.code, 0);
    for want in [
        "list",
        "run",
        "replay",
        "shrink",
        "merge",
        "completions",
        "Exit codes:",
        "3  a replay file no longer matches",
        "FAULTLINE_SEED",
        "FAULTLINE_SHARD",
        "CI_NODE_INDEX",
        "faultline/replays/",
    ] {
        assert!(
            help.stdout.contains(want),
            "no {want:?} in:\n{}",
            help.stdout
        );
    }
    let version = faultline(dir.path(), &["--version"]);
    assert_eq!(version.code, 0);
    assert!(
        version.stdout.starts_with("faultline "),
        "{}",
        version.stdout
    );
    let bash = faultline(dir.path(), &["completions", "bash"]);
    assert_eq!(bash.code, 0);
    assert!(bash.stdout.contains("_faultline()"), "{}", bash.stdout);
}

#[test]
fn an_explicit_flag_beats_the_environment() {
    let dir = scratch();
    let env = [("FAULTLINE_SEED", "3")];
    let ran = faultline_env(dir.path(), &["run", "toy-rmw", "--seeds", "0..50"], &env);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    assert_eq!(ran.number_before("runs,"), 50, "{}", ran.stdout);
    let env = [("FAULTLINE_SEEDS", "0..7")];
    let ran = faultline_env(dir.path(), &["run", "toy-rmw"], &env);
    assert_eq!(ran.number_before("runs,"), 7, "{}", ran.stdout);
    assert!(
        ran.stderr.contains("seeds 0..7 from FAULTLINE_SEEDS"),
        "{}",
        ran.stderr
    );
    let env = [("FAULTLINE_POLICY", "pct")];
    let pct = faultline_env(dir.path(), &["run", "toy-rmw", "--seeds", "0..5"], &env);
    assert!(pct.stdout.contains("(pct depth 3)"), "{}", pct.stdout);
    let random = faultline_env(
        dir.path(),
        &["run", "toy-rmw", "--seeds", "0..5", "--policy", "random"],
        &env,
    );
    assert!(random.stdout.contains("(random)"), "{}", random.stdout);
}

#[test]
fn a_failure_whose_replay_file_cannot_be_written_is_still_reported_and_exits_1() {
    let dir = scratch();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let replay_dir = blocker.join("replays").display().to_string();
    let args = [
        "run",
        "toy-rmw",
        "--variant",
        "pre-fix",
        "--seeds",
        "0..20",
        "--replay-dir",
        &replay_dir,
    ];
    let ran = faultline(dir.path(), &args);
    assert_eq!(ran.code, 1, "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout
            .contains("FAILED: toy-rmw --variant pre-fix, seed"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("oracle: invariant:lost-update"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("replay file: NOT WRITTEN"),
        "{}",
        ran.stdout
    );
    assert!(ran.stdout.contains("failing seeds: "), "{}", ran.stdout);
    let json = faultline(dir.path(), &[&args[..], &["--json"]].concat());
    assert_eq!(json.code, 1);
    let v: serde_json::Value = serde_json::from_str(json.stdout.trim()).expect("one JSON document");
    assert!(v["first_failure"]["replay_error"].is_string(), "{v}");
    let failing = v["failing_seeds"].as_array().unwrap();
    assert_eq!(
        failing.len() as u64,
        v["failures"].as_u64().unwrap(),
        "every failing seed listed"
    );
}

#[test]
fn a_replay_file_out_of_bounds_is_refused_with_exit_2() {
    let dir = scratch();
    let ran = faultline(
        dir.path(),
        &[
            "run",
            "toy-rmw",
            "--variant",
            "pre-fix",
            "--seeds",
            "0..50",
            "--fail-fast",
        ],
    );
    assert_eq!(ran.code, 1, "{}{}", ran.stdout, ran.stderr);
    let path = ran.replay_path(dir.path());
    let text = std::fs::read_to_string(&path).unwrap();
    for (field, value) in [
        ("\"crashes\": 0", "\"crashes\": 1000000000"),
        ("\"steps_max\": 10000000", "\"steps_max\": 100000000000000"),
    ] {
        assert!(text.contains(field), "{field} not in {text}");
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, text.replace(field, value)).unwrap();
        let arg = bad.display().to_string();
        let r = faultline(dir.path(), &["replay", &arg]);
        assert_eq!(r.code, 2, "{value}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("above its bound"), "{}", r.stderr);
    }
}

#[test]
fn a_replay_that_no_longer_matches_exits_3() {
    let dir = scratch();
    let ran = faultline(
        dir.path(),
        &[
            "run",
            "toy-rmw",
            "--variant",
            "pre-fix",
            "--seeds",
            "0..50",
            "--fail-fast",
        ],
    );
    let path = ran.replay_path(dir.path());
    let text = std::fs::read_to_string(&path).unwrap();
    // The recorded decisions of the pre-fix, replayed on the fixed variant.
    let other = dir.path().join("other.json");
    std::fs::write(
        &other,
        text.replace("\"variant\": \"pre-fix\"", "\"variant\": \"fixed\""),
    )
    .unwrap();
    let arg = other.display().to_string();
    let r = faultline(dir.path(), &["replay", &arg]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    let json = faultline(dir.path(), &["replay", &arg, "--json"]);
    assert_eq!(json.code, 3);
    let v: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(v["reproduced"], false, "{v}");
}

#[test]
fn shards_merge_into_the_digest_of_the_whole_sweep() {
    let dir = scratch();
    let whole = faultline(
        dir.path(),
        &[
            "run",
            "toy-rmw",
            "--variant",
            "pre-fix",
            "--seeds",
            "0..60",
            "--json",
        ],
    );
    let whole: serde_json::Value = serde_json::from_str(whole.stdout.trim()).unwrap();
    let mut files = Vec::new();
    for k in 1..=3 {
        let shard = format!("{k}/3");
        // One shard by flag, one by FAULTLINE_SHARD, one by GitLab's variables.
        let ran = match k {
            1 => faultline(
                dir.path(),
                &[
                    "run",
                    "toy-rmw",
                    "--variant",
                    "pre-fix",
                    "--seeds",
                    "0..60",
                    "--json",
                    "--shard",
                    &shard,
                ],
            ),
            2 => faultline_env(
                dir.path(),
                &[
                    "run",
                    "toy-rmw",
                    "--variant",
                    "pre-fix",
                    "--seeds",
                    "0..60",
                    "--json",
                ],
                &[("FAULTLINE_SHARD", &shard)],
            ),
            _ => faultline_env(
                dir.path(),
                &[
                    "run",
                    "toy-rmw",
                    "--variant",
                    "pre-fix",
                    "--seeds",
                    "0..60",
                    "--json",
                ],
                &[("CI_NODE_INDEX", "3"), ("CI_NODE_TOTAL", "3")],
            ),
        };
        assert_eq!(ran.code, 1, "{}{}", ran.stdout, ran.stderr);
        let v: serde_json::Value = serde_json::from_str(ran.stdout.trim()).unwrap();
        assert_eq!(v["shard"], shard, "{v}");
        let f = dir.path().join(format!("shard-{k}.json"));
        std::fs::write(&f, ran.stdout).unwrap();
        files.push(f.display().to_string());
    }
    let mut args = vec!["merge", "--json"];
    args.extend(files.iter().map(String::as_str));
    let merged = faultline(dir.path(), &args);
    assert_eq!(merged.code, 1, "{}{}", merged.stdout, merged.stderr);
    let m: serde_json::Value = serde_json::from_str(merged.stdout.trim()).unwrap();
    assert_eq!(m["digest"], whole["digest"], "merged {m}\nwhole {whole}");
    assert_eq!(m["runs"], 60);
    assert_eq!(m["failing_seeds"], whole["failing_seeds"]);
    assert_eq!(m["first_failure"]["seed"], whole["first_failure"]["seed"]);
    let two = faultline(dir.path(), &["merge", &files[0], &files[1]]);
    assert_eq!(two.code, 2, "a missing shard is refused: {}", two.stderr);
    assert!(two.stderr.contains("2 of 3 shards"), "{}", two.stderr);
}
