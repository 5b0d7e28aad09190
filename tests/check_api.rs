//! The test entry point, used as a user would: a lost-update race written
//! only against the public API (`Check`, `World`, `#[faultline::test]`) is
//! found, reported with a repro, shrunk, and replayed exactly from its file
//! (in this process, and through `FAULTLINE_REPLAY` in a child test
//! process); the gated version holds; the environment steers a check and a
//! bad value is an error; a nondeterministic body is caught.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::check::{Check, CheckFailure, PolicySpec};
use faultline::sim::NodeConfig;
use faultline::sync::{Arc, AtomicU64, Gate, Mutex, Ordering};
use faultline::World;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Two tasks increment a counter across an await; `gated` holds a Gate
/// around the read-modify-write.
async fn counter(world: World, gated: bool) {
    let value = Arc::new(Mutex::new(0u32));
    let gate = Arc::new(Gate::new(()));
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (value, gate) = (Arc::clone(&value), Arc::clone(&gate));
        tasks.push(world.spawn("incr", async move {
            let _held = if gated { Some(gate.lock().await) } else { None };
            let v = value.with(|c| *c);
            world.yield_now().await;
            value.with(|c| *c = v + 1);
            v
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.expect("the task ran"));
    }
    let v = value.with(|c| *c);
    if v != 2 {
        world.fail(
            "lost-update",
            format!("counter is {v} after 2 increments (read {seen:?})"),
        );
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fl-check-api-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn racy(name: &str) -> Check {
    Check::new()
        .name(format!("check_api::{name}"))
        .seeds(0..200)
        .shrink_time(Duration::from_secs(5))
        .quiet()
}

#[test]
fn a_race_is_found_reported_shrunk_and_replayed_from_its_file() {
    let err = racy("found")
        .try_run(|w| counter(w, false))
        .expect_err("the ungated counter must lose an update");
    let CheckFailure::Failed(failed) = err else {
        panic!("not an oracle failure: {err}");
    };
    assert_eq!(failed.oracle(), "invariant:lost-update");
    let report = &failed.report;
    assert!(report.contains("oracle: invariant:lost-update"), "{report}");
    assert!(report.contains("FAULTLINE_REPLAY="), "{report}");
    assert!(report.contains("-- --exact"), "{report}");
    assert!(report.contains("last "), "no trace tail: {report}");
    let file = failed.replay.clone().expect("the replay file was written");
    assert!(file.is_file(), "{}", file.display());
    let shrunk = failed.shrunk.clone().expect("a shrunk replay file");
    assert!(shrunk.to_string_lossy().ends_with(".min.json"));
    // Replaying either file fails the same way, with the recorded trace.
    for path in [&file, &shrunk] {
        let again = racy("found")
            .replay(path)
            .try_run(|w| counter(w, false))
            .expect_err("the replay reproduces the failure");
        let CheckFailure::Failed(f) = again else {
            panic!("replay of {} did not reproduce: {again}", path.display());
        };
        assert_eq!(f.oracle(), "invariant:lost-update");
        let recorded = faultline::check::replay_file::read_replay(path).unwrap();
        assert_eq!(f.run.outcome.trace_hash, recorded.trace_hash);
    }
}

#[test]
fn notes_show_in_the_report_and_change_no_trace_hash() {
    let noted = |w: World, gated: bool| async move {
        w.note("the counter starts");
        counter(w, gated).await;
        w.note(format!("the counter ran at {} ms", w.now_ms()));
    };
    let plain = Check::new().seeds(0..50).quiet();
    let a = plain.clone().try_run(|w| counter(w, true)).unwrap();
    let b = plain.try_run(move |w| noted(w, true)).unwrap();
    assert_eq!(a.digest, b.digest, "a note changed the trace hashes");
    let err = racy("noted").try_run(move |w| noted(w, false)).unwrap_err();
    assert!(
        err.to_string()
            .contains("note from task 0: the counter starts")
            || err
                .to_string()
                .contains("note from task 0: the counter ran"),
        "{err}"
    );
}

#[test]
fn the_gated_counter_holds_and_is_deterministic() {
    let done = Check::new()
        .seeds(0..300)
        .check_determinism(true)
        .quiet()
        .try_run(|w| counter(w, true))
        .expect("the gated counter holds");
    assert_eq!(done.runs, 600, "every seed twice");
    let pct = Check::new()
        .seeds(0..300)
        .policy(PolicySpec::pct(2))
        .quiet()
        .try_run(|w| counter(w, true));
    assert!(pct.is_ok(), "{}", pct.unwrap_err());
}

#[test]
fn a_replay_of_another_body_is_a_mismatch_not_a_pass() {
    let err = racy("mismatch").try_run(|w| counter(w, false)).unwrap_err();
    let CheckFailure::Failed(failed) = err else {
        panic!("{err}")
    };
    let path = failed.replay.clone().unwrap();
    let r = racy("mismatch").replay(&path).try_run(|w| counter(w, true));
    match r {
        Err(CheckFailure::Replay(msg)) => assert!(
            msg.contains("no longer") || msg.contains("differs"),
            "{msg}"
        ),
        other => panic!("expected a replay mismatch, got {other:?}"),
    }
}

/// Scheduling depends on a process-wide counter: the same seed runs
/// differently the second time.
static RUNS: AtomicU64 = AtomicU64::new(0);

#[test]
fn a_nondeterministic_body_is_caught_with_its_first_differing_event() {
    let r = Check::new()
        .seeds(0..5)
        .check_determinism(true)
        .quiet()
        .try_run(|w| async move {
            let extra = RUNS.fetch_add(1, Ordering::SeqCst) % 2;
            for _ in 0..=extra {
                w.spawn("noise", async move { w.yield_now().await });
            }
            w.yield_now().await;
        });
    match r {
        Err(CheckFailure::Nondeterministic(msg)) => {
            assert!(msg.contains("first difference at event"), "{msg}");
            assert!(msg.contains("FAULTLINE_CHECK_DETERMINISM=1"), "{msg}");
        }
        other => panic!("expected a nondeterminism report, got {other:?}"),
    }
}

#[test]
fn nodes_crash_and_boot_again_under_the_body_and_the_plan() {
    // A node declared on the check boots a worker; the body crashes it and
    // sees it boot again (its boot counter), in virtual time.
    let boots = Arc::new(AtomicU64::new(0));
    let b = Arc::clone(&boots);
    let r = Check::new()
        .seeds(0..20)
        .node("worker", NodeConfig::default(), move |h| {
            b.fetch_add(1, Ordering::SeqCst);
            h.spawn_on("work", async move {
                loop {
                    h.sleep(Duration::from_millis(5)).await;
                }
            });
        })
        .quiet()
        .try_run(|w| async move {
            let node = w.node("worker").expect("declared");
            w.sleep(Duration::from_millis(10)).await;
            w.crash(node, Duration::from_millis(100));
            w.sleep(Duration::from_millis(50)).await;
            w.pause(node, Duration::from_millis(10));
            w.sleep(Duration::from_millis(100)).await;
        });
    assert!(r.is_ok(), "{}", r.unwrap_err());
    assert_eq!(
        boots.load(Ordering::SeqCst),
        40,
        "20 seeds x (boot + reboot)"
    );
}

/// The `#[faultline::test]` form of the gated counter.
#[faultline::test(seeds = 100, policy = "pct")]
async fn macro_form_holds(world: World) {
    counter(world, true).await;
}

/// The racy counter as a user's failing test would be written; run only
/// as a child process by the tests below.
#[faultline::test(seeds = 200, shrink_time_s = 2)]
#[ignore = "fails on purpose; run by the repro tests as a child"]
async fn child_racy_counter(world: World) {
    counter(world, false).await;
}

/// Runs this test binary's `test` with `env`; returns (success, output).
fn child(test: &str, env: &[(&str, &str)]) -> (bool, String) {
    let exe = std::env::current_exe().expect("the test binary");
    let mut cmd = Command::new(exe);
    cmd.args([
        test,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for var in [
        "FAULTLINE_SEED",
        "FAULTLINE_SEEDS",
        "FAULTLINE_POLICY",
        "FAULTLINE_REPLAY",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the child runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_printed_repro_line_replays_the_failure_in_a_new_process() {
    let dir = scratch("repro");
    let dir_s = dir.display().to_string();
    let (ok, text) = child("child_racy_counter", &[("FAULTLINE_REPLAY_DIR", &dir_s)]);
    assert!(!ok, "the racy counter passed:\n{text}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("reproduce:"))
        .unwrap_or_else(|| panic!("no repro line:\n{text}"));
    let file = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("FAULTLINE_REPLAY="))
        .expect("the repro names a file");
    assert!(
        line.contains("cargo test -p faultline child_racy_counter -- --exact --include-ignored"),
        "{line}"
    );
    // The test sets its seeds in code, which beats FAULTLINE_SEED: no
    // repro line may offer that variable; the last one reruns the sweep.
    let repro: Vec<&str> = text
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("reproduce:") || l.starts_with("or:"))
        .collect();
    assert!(
        repro.iter().all(|l| !l.contains("FAULTLINE_SEED=")),
        "{repro:#?}"
    );
    assert!(
        repro.last().is_some_and(|l| l
            .ends_with(" cargo test -p faultline child_racy_counter -- --exact --include-ignored")
            && !l.contains("FAULTLINE_REPLAY=")),
        "{repro:#?}"
    );
    let (ok, again) = child("child_racy_counter", &[("FAULTLINE_REPLAY", file)]);
    assert!(!ok, "the replay passed:\n{again}");
    assert!(
        again.contains("reproduced: same failure and same trace hash"),
        "{again}"
    );
    assert!(again.contains("oracle: invariant:lost-update"), "{again}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_environment_steers_a_check_and_a_bad_value_is_named() {
    let (ok, text) = child(
        "child_racy_counter",
        &[("FAULTLINE_SEED", "7"), ("FAULTLINE_SHRINK_TIME_S", "0")],
    );
    // Code says seeds = 200: the argument beats the environment.
    assert!(text.contains("seeds 0..200 (code)"), "{text}");
    let _ = ok;
    let (ok, text) = child("macro_form_holds", &[("FAULTLINE_POLICY", "nonsense")]);
    assert!(ok, "the attribute's policy beats the environment:\n{text}");
    let (ok, text) = child("child_env_only", &[("FAULTLINE_POLICY", "nonsense")]);
    assert!(!ok, "{text}");
    assert!(text.contains("FAULTLINE_POLICY=\"nonsense\""), "{text}");
    assert!(
        text.contains("valid policies: random, pct, pct:D"),
        "{text}"
    );
    let (ok, text) = child("child_env_only", &[("FAULTLINE_SEEDS", "5..9")]);
    assert!(ok, "{text}");
    assert!(text.contains("seeds 5..9 (FAULTLINE_SEEDS)"), "{text}");
}

/// A check configured only by the environment.
#[test]
#[ignore = "run by the environment test as a child"]
fn child_env_only() {
    Check::new().run(|w| counter(w, true));
}
