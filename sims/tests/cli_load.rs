//! The load commands end to end, through the built binary: `load gen`,
//! `load check` (line-numbered errors), `load stats`, `load from-log` on the
//! example access log, `run subtree-oom --load`, and `cliff` reading the
//! factor for the pre-fix and the fixed service, as sims/loads/README.md
//! shows them.

mod support;

use std::path::Path;
use support::{faultline, scratch, Ran};

fn ok(ran: &Ran) {
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
}

fn example_log() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("loads/example-access.log")
        .display()
        .to_string()
}

/// The factor a `cliff` printed.
fn factor(ran: &Ran) -> f64 {
    ran.line_after("factor:")
        .unwrap_or_else(|| panic!("no factor in:\n{}", ran.stdout))
        .parse()
        .unwrap()
}

#[test]
fn the_example_access_log_converts_replays_and_reads_its_cliff() {
    let dir = scratch();
    let d = dir.path();
    ok(&faultline(
        d,
        &["load", "from-log", &example_log(), "--out", "example.jsonl"],
    ));
    let checked = faultline(d, &["load", "check", "example.jsonl"]);
    ok(&checked);
    assert!(
        checked.stdout.contains("ok, 60 arrivals"),
        "{}",
        checked.stdout
    );
    let stats = faultline(d, &["load", "stats", "example.jsonl"]);
    ok(&stats);
    assert!(
        stats.stdout.contains("51 distinct keys"),
        "{}",
        stats.stdout
    );
    let load = ["--load", "example.jsonl", "--seed", "0"];
    let pre = faultline(
        d,
        &[&["run", "subtree-oom", "--variant", "pre-fix"][..], &load].concat(),
    );
    ok(&pre);
    let fixed = faultline(
        d,
        &[&["run", "subtree-oom", "--variant", "fixed"][..], &load].concat(),
    );
    ok(&fixed);
    let cliff = |variant: &str| {
        let ran = faultline(
            d,
            &[
                "cliff",
                "subtree-oom",
                "--variant",
                variant,
                "--load",
                "example.jsonl",
            ],
        );
        ok(&ran);
        println!("{}", ran.stdout.lines().next().unwrap_or_default());
        factor(&ran)
    };
    let (pre_factor, fixed_factor) = (cliff("pre-fix"), cliff("fixed"));
    // The recorded traffic is a few times short of OOM for the pre-fix; the
    // fixed service holds at the largest factor tried.
    assert!(
        (2.0..20.0).contains(&pre_factor),
        "pre-fix fails from x{pre_factor}"
    );
    assert_eq!(fixed_factor, 100.0);
}

#[test]
fn a_run_over_a_load_that_fails_says_how_to_rerun_it() {
    let dir = scratch();
    let rush = Path::new(env!("CARGO_MANIFEST_DIR")).join("loads/subtree-rush.jsonl");
    let rush = rush.display().to_string();
    let ran = faultline(
        dir.path(),
        &[
            "run",
            "subtree-oom",
            "--load",
            &rush,
            "--variant",
            "pre-fix",
            "--seed",
            "2",
        ],
    );
    assert_eq!(ran.code, 1, "{}{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("out of memory"), "{}", ran.stdout);
    let rerun = ran.line_after("rerun:").expect("a rerun line");
    assert!(
        rerun.contains(&format!("--load {rush} --variant pre-fix --seed 2")),
        "{rerun}"
    );
    let sweep = faultline(
        dir.path(),
        &[
            "run",
            "subtree-oom",
            "--load",
            &rush,
            "--variant",
            "fixed",
            "--seeds",
            "0..3",
        ],
    );
    ok(&sweep);
    assert!(
        sweep.stdout.contains("3 runs, 0 failed"),
        "{}",
        sweep.stdout
    );
}

#[test]
fn generated_loads_check_and_summarize() {
    let dir = scratch();
    let d = dir.path();
    for (kind, extra) in [
        ("poisson", &["--rate", "5", "--duration-ms", "10000"][..]),
        (
            "ramp",
            &["--rate", "1", "--rate-to", "20", "--duration-ms", "10000"][..],
        ),
        ("burst", &["--bursts", "2", "--per-burst", "30"][..]),
    ] {
        let out = format!("{kind}.jsonl");
        let args = [
            &["load", "gen", "--kind", kind, "--seed", "4", "--out", &out][..],
            extra,
        ]
        .concat();
        ok(&faultline(d, &args));
        let checked = faultline(d, &["load", "check", &out]);
        ok(&checked);
        let stats = faultline(d, &["load", "stats", &out]);
        ok(&stats);
        assert!(stats.stdout.contains("arrivals"), "{}", stats.stdout);
    }
    let again = faultline(
        d,
        &[
            "load",
            "gen",
            "--kind",
            "poisson",
            "--seed",
            "4",
            "--rate",
            "5",
            "--duration-ms",
            "10000",
        ],
    );
    ok(&again);
    let file = std::fs::read_to_string(d.join("poisson.jsonl")).unwrap();
    assert_eq!(again.stdout, file, "same seed, same load");
}

#[test]
fn check_names_the_bad_line_and_bad_input_is_exit_2() {
    let dir = scratch();
    let d = dir.path();
    let good = r#"{"at_ms": 0, "key": "a", "exists": false, "items": 10, "item_bytes": {"fixed": 300}, "client_bytes_per_s": 1000}"#;
    std::fs::write(
        d.join("bad.jsonl"),
        format!("# c\n{good}\n{{\"at_ms\": 1}}\n"),
    )
    .unwrap();
    let ran = faultline(d, &["load", "check", "bad.jsonl"]);
    assert_eq!(ran.code, 1, "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains("load line 3: missing field"),
        "{}",
        ran.stdout
    );
    std::fs::write(d.join("bad.log"), "1 /a 10\nyesterday /b 20\n").unwrap();
    let log = faultline(d, &["load", "from-log", "bad.log"]);
    assert_eq!(log.code, 2);
    assert!(log.stderr.contains("load line 2"), "{}", log.stderr);
    let other = faultline(d, &["run", "toy-rmw", "--load", "bad.jsonl", "--seed", "0"]);
    assert_eq!(other.code, 2);
    assert!(
        other.stderr.contains("takes no load file"),
        "{}",
        other.stderr
    );
    let no_axis = faultline(d, &["cliff", "toy-rmw"]);
    assert_eq!(no_axis.code, 2);
    assert!(
        no_axis.stderr.contains("no offered load"),
        "{}",
        no_axis.stderr
    );
}
