//! `faultline run`: sweeps find the pre-fix race and write a replay file,
//! the fixed variant holds, PCT finds it too, shards split a range, and
//! sweeps are deterministic (same digest).

mod support;

use support::{faultline, faultline_env, json, scratch};

#[test]
fn random_finds_pre_fix_within_200_seeds_and_writes_a_replay_file() {
    let dir = scratch();
    let ran = faultline(
        dir.path(),
        &[
            "run",
            "toy-rmw",
            "--variant",
            "pre-fix",
            "--seeds",
            "0..200",
        ],
    );
    assert_eq!(ran.code, 1, "{}{}", ran.stdout, ran.stderr);
    assert_eq!(ran.number_before("runs,"), 200);
    assert!(ran.number_before("failed,") > 0);
    let seed = ran.word_after("seed");
    assert!(ran.stdout.contains("lost update"), "{}", ran.stdout);
    let path = ran.replay_path(dir.path());
    assert!(
        path.ends_with(format!(
            "target/faultline/replays/toy-rmw-pre-fix-{seed}.json"
        )),
        "{}",
        path.display()
    );
    let file = json(&path);
    assert_eq!(file["scenario"], "toy-rmw");
    assert_eq!(file["variant"], "pre-fix");
    assert_eq!(file["failure"]["kind"], "invariant");
    let replay = ran.line_after("reproduce:").expect("a replay command");
    assert!(replay.starts_with("cargo run --release -- replay target/faultline/replays/"));
    let rerun = ran.line_after("or rerun:").expect("a run command");
    assert_eq!(
        rerun,
        format!("cargo run --release -- run toy-rmw --variant pre-fix --seed {seed}")
    );
}

#[test]
fn fixed_holds_for_200_seeds_and_is_the_default_variant() {
    let dir = scratch();
    let ran = faultline(dir.path(), &["run", "toy-rmw", "--seeds", "0..200"]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("--variant fixed"), "{}", ran.stdout);
    assert_eq!(ran.number_before("runs,"), 200);
    assert_eq!(ran.number_before("failed,"), 0);
    assert!(
        !dir.path().join("target").exists(),
        "a passing sweep wrote files"
    );
}

/// Measured on this toy (2 tasks, seeds 0..200): random fails 95 runs
/// (first at seed 0), PCT depth 3 fails 72 (first at seed 0). A two-task
/// lost update is shallow, so random is already near its best and PCT does
/// not beat it here; what PCT promises is a lower bound, 1 / (n k^(d-1))
/// per run with n = 3 tasks, k = 3 steps, d = 3: 1/27, about 7 of 200.
#[test]
fn pct_finds_the_race_at_least_as_often_as_its_bound() {
    let dir = scratch();
    let sweep = |policy: &str| {
        faultline(
            dir.path(),
            &[
                "run",
                "toy-rmw",
                "--variant",
                "pre-fix",
                "--seeds",
                "0..200",
                "--policy",
                policy,
            ],
        )
    };
    let (random, pct) = (sweep("random"), sweep("pct"));
    assert_eq!(
        (random.code, pct.code),
        (1, 1),
        "{}{}",
        pct.stdout,
        pct.stderr
    );
    assert!(pct.stdout.contains("(pct depth 3)"), "{}", pct.stdout);
    let pct_failures = pct.number_before("failed,");
    assert!(
        pct_failures >= 200 / 27,
        "PCT failed only {pct_failures} of 200"
    );
    assert!(random.number_before("failed,") > 0);
    let rerun = pct.line_after("or rerun:").expect("a run command");
    assert!(rerun.ends_with("--policy pct"), "{rerun}");
}

#[test]
fn identical_sweeps_print_the_same_digest() {
    let dir = scratch();
    let digest = |range: &str| {
        let ran = faultline(dir.path(), &["run", "toy-rmw", "--seeds", range]);
        assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
        ran.word_after("digest")
    };
    let (a, b) = (digest("0..300"), digest("0..300"));
    assert_eq!(a, b);
    assert!(a.starts_with("0x") && a.len() == 18, "{a}");
    assert_ne!(a, digest("1..301"), "different seeds, same digest");
}

#[test]
fn shards_split_a_sweep_without_overlap() {
    let dir = scratch();
    let mut runs = 0;
    let mut failures = 0;
    for shard in ["1/3", "2/3", "3/3"] {
        let ran = faultline(
            dir.path(),
            &[
                "run",
                "toy-rmw",
                "--variant",
                "pre-fix",
                "--seeds",
                "0..100",
                "--shard",
                shard,
            ],
        );
        assert!(
            ran.stdout.contains(&format!("shard {shard}")),
            "{}",
            ran.stdout
        );
        runs += ran.number_before("runs,");
        failures += ran.number_before("failed,");
    }
    let whole = faultline(
        dir.path(),
        &[
            "run",
            "toy-rmw",
            "--variant",
            "pre-fix",
            "--seeds",
            "0..100",
        ],
    );
    assert_eq!(runs, 100);
    assert_eq!(failures, whole.number_before("failed,"));
}

#[test]
fn faultline_seed_overrides_the_seeds_of_run() {
    let dir = scratch();
    let ran = faultline_env(
        dir.path(),
        &[
            "run",
            "toy-rmw",
            "--variant",
            "pre-fix",
            "--seeds",
            "0..200",
        ],
        &[("FAULTLINE_SEED", "17")],
    );
    assert!(ran.stderr.contains("FAULTLINE_SEED=17"), "{}", ran.stderr);
    assert!(ran.stdout.contains("seed 17"), "{}", ran.stdout);
    assert!(!ran.stdout.contains("runs,"), "ran a sweep: {}", ran.stdout);
}

#[test]
fn single_seed_runs_report_pass_and_fail() {
    let dir = scratch();
    let ok = faultline(dir.path(), &["run", "toy-rmw", "--seed", "3"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert!(
        ok.stdout
            .starts_with("passed: toy-rmw --variant fixed seed 3"),
        "{}",
        ok.stdout
    );
    let failing = faultline(
        dir.path(),
        &[
            "run",
            "toy-rmw",
            "--variant",
            "pre-fix",
            "--seeds",
            "0..200",
        ],
    );
    let seed = failing.word_after("seed");
    let again = faultline(
        dir.path(),
        &["run", "toy-rmw", "--variant", "pre-fix", "--seed", &seed],
    );
    assert_eq!(again.code, 1, "{}{}", again.stdout, again.stderr);
    assert!(again.stdout.contains("lost update"), "{}", again.stdout);
}

#[test]
fn explore_prints_the_teeth_table_and_writes_the_report() {
    let dir = scratch();
    let ran = faultline(dir.path(), &["explore", "--budget-s", "4"]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let row = |variant: &str| {
        ran.stdout
            .lines()
            .find(|l| l.starts_with("toy-rmw") && l.split_whitespace().nth(1) == Some(variant))
            .unwrap_or_else(|| panic!("no {variant} row in:\n{}", ran.stdout))
            .to_string()
    };
    assert!(row("pre-fix").contains("caught"), "{}", ran.stdout);
    assert!(row("fixed").contains("holds"), "{}", ran.stdout);
    let lines: Vec<&str> = ran.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("stale-writer  [schedule, historical]"))
        .unwrap_or_else(|| panic!("no stale-writer teeth row:\n{}", ran.stdout));
    let random = lines[at + 1].trim();
    assert!(
        random.starts_with("sim random  found in 5/5 ranges"),
        "{random}"
    );
    assert!(ran.stdout.contains("loom        not run"), "{}", ran.stdout);
    let index = dir.path().join("target/faultline/report/index.md");
    let md = std::fs::read_to_string(&index).expect("index.md written");
    assert!(md.contains("## Teeth table"), "{md}");
    assert!(md.contains("cargo run --release -- replay"), "{md}");
}

#[test]
fn explore_refuses_an_unwritable_report_dir_and_a_bad_budget() {
    let dir = scratch();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let report = file.join("report").display().to_string();
    let ran = faultline(dir.path(), &["explore", "--report-dir", &report]);
    assert_eq!(ran.code, 2, "{}{}", ran.stdout, ran.stderr);
    assert!(ran.stderr.contains("not writable"), "{}", ran.stderr);
    assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);
    let bad = faultline(dir.path(), &["explore", "--budget-s", "-3"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[test]
fn list_names_scenarios_and_variants() {
    let dir = scratch();
    let ran = faultline(dir.path(), &["list"]);
    assert_eq!(ran.code, 0);
    assert!(ran.stdout.contains("toy-rmw"));
    assert!(ran.stdout.contains("--variant pre-fix"));
    assert!(ran.stdout.contains("--variant fixed  (default)"));
}

#[test]
fn a_single_seed_run_prints_metrics_and_writes_its_series_as_csv() {
    let dir = scratch();
    let csv_dir = dir.path().join("csv");
    let csv_arg = csv_dir.display().to_string();
    let ran = faultline(
        dir.path(),
        &["run", "toy-rmw", "--seed", "3", "--csv", &csv_arg],
    );
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("mem_peak_bytes = "), "{}", ran.stdout);
    let mem = csv_dir.join("toy-rmw-fixed-3-mem_bytes.csv");
    let text = std::fs::read_to_string(&mem).expect("the memory series was written");
    assert!(text.starts_with("t_ms,mem_bytes\n"), "{text}");
    let sweep = faultline(
        dir.path(),
        &["run", "toy-rmw", "--seeds", "0..3", "--csv", &csv_arg],
    );
    assert_eq!(sweep.code, 2, "--csv is for one seed: {}", sweep.stderr);
}

#[test]
fn underscores_name_the_same_scenario_as_hyphens() {
    let dir = scratch();
    let ran = faultline(dir.path(), &["run", "toy_rmw", "--seed", "3"]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("toy-rmw"), "{}", ran.stdout);
}
