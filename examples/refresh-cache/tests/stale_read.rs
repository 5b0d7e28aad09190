//! The cache under faultline: readers and a writer share one key; the
//! oracle is the promise `Cache::put` makes, *a read that starts after a
//! write returned sees that write or a newer one*. The pre-fix fill breaks
//! it (found, reported, replayed from its file in a new process); the
//! leased fill keeps it over every seed, under the random and PCT
//! policies; every test here is deterministic.

use faultline::check::{replay_file, Check, CheckFailure};
use faultline::sync::{Arc, DynArc, Mutex};
use faultline::World;
use refresh_cache::{Cache, CacheConfig, Fill, MemOrigin};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const KEY: &str = "user:42";
/// Reader tasks, and reads each one makes.
const READERS: u64 = 3;
const READS: u64 = 8;
/// Writes after the first one.
const WRITES: u64 = 4;

/// A writer and `READERS` readers on one key of a cache in front of an
/// origin with up to 5 ms of latency each way. Fails the run with oracle
/// `stale-read` when a read returns a version older than the newest write
/// that had returned before the read began.
async fn readers_and_a_writer(world: World, fill: Fill) {
    let origin = DynArc::new(MemOrigin::new(world.clock(), 5));
    let cfg = CacheConfig {
        refresh_after: Duration::from_millis(20),
        ttl: Duration::from_millis(200),
        fill,
        ..CacheConfig::default()
    };
    let cache = Cache::new(origin, world.clock(), world.scheduler(), cfg);
    // The newest version whose `put` has returned.
    let written = Arc::new(Mutex::new(cache.put(KEY, "v0".into()).await));
    let mut tasks = Vec::new();
    {
        let (cache, written) = (cache.clone(), Arc::clone(&written));
        tasks.push(world.spawn("writer", async move {
            for i in 1..=WRITES {
                world.sleep(Duration::from_millis(world.draw(40))).await;
                let v = cache.put(KEY, format!("v{i}")).await;
                written.with(|w| *w = (*w).max(v));
                world.note(format!("writer: put v{i} returned version {v}"));
            }
        }));
    }
    for r in 0..READERS {
        let (cache, written) = (cache.clone(), Arc::clone(&written));
        tasks.push(world.spawn("reader", async move {
            for i in 0..READS {
                world.sleep(Duration::from_millis(world.draw(25))).await;
                let floor = written.with(|w| *w);
                let got = cache
                    .get(KEY)
                    .await
                    .expect("written before the readers start");
                world.note(format!(
                    "reader {r}, read {i}: version {} (newest written before: {floor})",
                    got.version
                ));
                if got.version < floor {
                    world.fail(
                        "stale-read",
                        format!(
                            "reader {r}, read {i}: got version {} ({:?}) but version {floor} \
                             was written before the read began",
                            got.version, got.data
                        ),
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("the task ran to its end");
    }
}

// --- what a user writes -------------------------------------------------

/// The fixed cache keeps its promise over 500 seeds.
#[faultline::test(seeds = 500)]
async fn leased_fill_never_serves_a_stale_read(world: World) {
    readers_and_a_writer(world, Fill::Leased).await;
}

/// ... and under PCT, the policy that favours rare orderings.
#[faultline::test(seeds = 300, policy = "pct")]
async fn leased_fill_never_serves_a_stale_read_pct(world: World) {
    readers_and_a_writer(world, Fill::Leased).await;
}

/// The pre-fix cache, as a user's failing test: run it to see the report
/// (`cargo test -p refresh-cache unconditional_fill_serves_stale_reads --
/// --ignored`). The tests below run it in a child process.
#[faultline::test(seeds = 200, shrink_time_s = 2)]
#[ignore = "fails on purpose: the planted stale-set race"]
async fn unconditional_fill_serves_stale_reads(world: World) {
    readers_and_a_writer(world, Fill::Unconditional).await;
}

// --- the example's own checks -------------------------------------------

#[test]
fn the_stale_set_race_is_found_with_its_oracle() {
    let err = Check::new()
        .seeds(0..200)
        .shrink_time(Duration::from_secs(2))
        .quiet()
        .try_run(|w| readers_and_a_writer(w, Fill::Unconditional))
        .expect_err("the unconditional fill must serve a stale read");
    let CheckFailure::Failed(failed) = err else {
        panic!("not an oracle failure: {err}");
    };
    assert_eq!(failed.oracle(), "invariant:stale-read", "{}", failed.report);
    assert!(
        failed.report.contains("FAULTLINE_REPLAY="),
        "{}",
        failed.report
    );
    assert!(failed.replay.as_ref().is_some_and(|p| p.is_file()));
}

/// Runs this test binary's `test` (exact name) in a child process with
/// `env` set; returns (passed, stdout + stderr).
fn child(test: &str, env: &[(&str, &str)]) -> (bool, String) {
    let exe = std::env::current_exe().expect("the test binary");
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--include-ignored", "--nocapture"]);
    for var in [
        "FAULTLINE_SEED",
        "FAULTLINE_SEEDS",
        "FAULTLINE_POLICY",
        "FAULTLINE_REPLAY",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("the child runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("refresh-cache-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The replay files a failure report's repro lines name.
fn repro_files(report: &str) -> Vec<String> {
    report
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("reproduce:") || l.starts_with("or:")
        })
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("FAULTLINE_REPLAY="))
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn the_printed_repro_replays_the_race_with_the_same_trace_hash() {
    let dir = scratch("repro");
    let dir_s = dir.display().to_string();
    let test = "unconditional_fill_serves_stale_reads";
    let (ok, report) = child(test, &[("FAULTLINE_REPLAY_DIR", &dir_s)]);
    assert!(!ok, "the pre-fix cache passed:\n{report}");
    assert!(report.contains("oracle: invariant:stale-read"), "{report}");
    let repro = format!("cargo test -p refresh-cache {test} -- --exact --include-ignored");
    assert!(
        report.contains(&repro),
        "no repro line `{repro}`:\n{report}"
    );
    let files = repro_files(&report);
    assert_eq!(
        files.len(),
        2,
        "the shrunk file and the original:\n{report}"
    );
    assert!(files[0].ends_with(".min.json"), "shrunk first: {files:?}");
    for file in &files {
        let recorded = replay_file::read_replay(file.as_ref()).expect("a replay file");
        let (ok, again) = child(test, &[("FAULTLINE_REPLAY", file)]);
        assert!(!ok, "the replay of {file} passed:\n{again}");
        let hash = format!("trace hash {:#018x}", recorded.trace_hash);
        assert!(
            again.contains("reproduced: same failure and same trace hash") && again.contains(&hash),
            "{file} did not replay with {hash}:\n{again}"
        );
        assert!(again.contains("oracle: invariant:stale-read"), "{again}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_test_here_is_deterministic() {
    if std::env::var_os("FAULTLINE_CHECK_DETERMINISM").is_some() {
        return; // already the child (or the whole run checks determinism)
    }
    let exe = std::env::current_exe().expect("the test binary");
    let out = Command::new(exe)
        .args(["--skip", "every_test_here_is_deterministic", "--nocapture"])
        .env("FAULTLINE_CHECK_DETERMINISM", "1")
        .output()
        .expect("the child runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("NONDETERMINISTIC"), "{text}");
    assert!(text.contains("every seed twice"), "{text}");
    // The pre-fix test is deterministic too: run it in determinism mode (its
    // failure must be the race, not a nondeterminism report).
    let dir = scratch("determinism");
    let (ok, text) = child(
        "unconditional_fill_serves_stale_reads",
        &[
            ("FAULTLINE_CHECK_DETERMINISM", "1"),
            ("FAULTLINE_SHRINK_TIME_S", "0"),
            ("FAULTLINE_REPLAY_DIR", &dir.display().to_string()),
        ],
    );
    assert!(!ok, "{text}");
    assert!(text.contains("every seed twice"), "{text}");
    assert!(text.contains("oracle: invariant:stale-read"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
