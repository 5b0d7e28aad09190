//! A sweep on several threads reports exactly what it reports on one: the
//! same runs, failures, failing seeds, first failure and digest, with and
//! without fail-fast.

mod support;

use support::{faultline, scratch};

fn run(dir: &std::path::Path, args: &[&str], jobs: &str) -> serde_json::Value {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--json", "--jobs", jobs]);
    let ran = faultline(dir, &all);
    assert!(
        ran.code == 0 || ran.code == 1,
        "{all:?}: {}{}",
        ran.stdout,
        ran.stderr
    );
    let mut v: serde_json::Value =
        serde_json::from_str(ran.stdout.trim()).expect("one JSON document");
    // Where the replay file went is the same too; the hashes list is
    // compared through the digest.
    v.as_object_mut().unwrap().remove("hashes");
    v
}

#[test]
fn two_jobs_report_what_one_job_reports() {
    let dir = scratch();
    let cases: &[&[&str]] = &[
        &[
            "run",
            "toy-rmw",
            "--variant",
            "pre-fix",
            "--seeds",
            "0..300",
        ],
        &[
            "run",
            "toy-rmw",
            "--variant",
            "pre-fix",
            "--seeds",
            "0..300",
            "--fail-fast",
        ],
        &[
            "run",
            "append-retention",
            "--variant",
            "pre-fix",
            "--seeds",
            "0..120",
            "--fail-fast",
        ],
        &[
            "run",
            "append-retention",
            "--variant",
            "generation-check",
            "--seeds",
            "0..120",
            "--policy",
            "pct",
        ],
        &[
            "run",
            "spend-flush",
            "--variant",
            "documented",
            "--seeds",
            "0..40",
        ],
        &[
            "run",
            "append-retention",
            "--seeds",
            "0..150",
            "--shard",
            "2/3",
        ],
    ];
    for args in cases {
        let one = run(dir.path(), args, "1");
        for jobs in ["2", "3"] {
            let many = run(dir.path(), args, jobs);
            assert_eq!(one, many, "{args:?} with --jobs {jobs}");
        }
    }
}
