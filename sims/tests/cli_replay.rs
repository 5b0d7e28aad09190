//! `faultline replay`: reproduces a failure exactly, says plainly when a
//! replay no longer matches the code, and rejects malformed files.

mod support;

use support::{failing_replay, faultline, json, scratch};

#[test]
fn replay_reproduces_the_failure_and_the_trace_hash() {
    let dir = scratch();
    let path = failing_replay(dir.path());
    let file = json(&path);
    let ran = faultline(dir.path(), &["replay", path.to_str().unwrap()]);
    assert_eq!(ran.code, 1, "{}{}", ran.stdout, ran.stderr);
    let failure = ran.line_after("failed:").expect("the failure");
    assert_eq!(failure, file["failure"]["message"].as_str().unwrap());
    let hash = ran.word_after("hash");
    assert_eq!(hash, file["trace_hash"].as_str().unwrap());
    assert!(
        ran.stdout
            .contains("reproduced: same failure and same trace hash as recorded"),
        "{}",
        ran.stdout
    );
}

#[test]
fn replay_trace_prints_the_event_log() {
    let dir = scratch();
    let path = failing_replay(dir.path());
    let ran = faultline(dir.path(), &["replay", path.to_str().unwrap(), "--trace"]);
    assert_eq!(ran.code, 1, "{}{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("--- event log"), "{}", ran.stdout);
    assert!(ran.stdout.contains("poll task"), "{}", ran.stdout);
    assert!(ran.stdout.contains("reproduced"), "{}", ran.stdout);
}

/// A replay whose schedule no longer fits the code fails (exit 1, like any
/// failing run) with the simulator's plain message.
#[test]
fn tampered_replay_says_it_no_longer_matches() {
    let dir = scratch();
    let path = failing_replay(dir.path());
    let mut file = json(&path);
    let decisions = file["decisions"].as_array_mut().unwrap();
    let pick = decisions
        .iter_mut()
        .find(|d| d.get("p").is_some())
        .expect("a failing run has a preemption");
    *pick = serde_json::json!({ "p": 999 });
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, serde_json::to_string(&file).unwrap()).unwrap();
    let ran = faultline(dir.path(), &["replay", tampered.to_str().unwrap()]);
    assert_eq!(
        ran.code, 3,
        "a mismatch exits 3: {}{}",
        ran.stdout, ran.stderr
    );
    let line = ran.line_after("replay mismatch:").expect("a mismatch line");
    assert!(
        line.contains("this replay no longer matches the code at step"),
        "{line}"
    );
    assert!(line.contains("Pick(999)"), "{line}");
}

#[test]
fn malformed_replay_files_exit_2_with_one_line() {
    let dir = scratch();
    let good = std::fs::read_to_string(failing_replay(dir.path())).unwrap();
    let cases = [
        ("truncated.json", good[..good.len() / 2].to_string()),
        ("not-json.json", "hello".to_string()),
        ("no-seed.json", good.replace("\"seed\"", "\"sead\"")),
        (
            "future.json",
            good.replace("\"format\": 1", "\"format\": 9"),
        ),
        ("bad-decision.json", good.replace("\"a\"", "\"zz\"")),
        ("unknown-scenario.json", good.replace("toy-rmw", "nope")),
        ("unknown-variant.json", good.replace("pre-fix", "post-fix")),
    ];
    for (name, text) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let ran = faultline(dir.path(), &["replay", path.to_str().unwrap()]);
        assert_eq!(ran.code, 2, "{name}: {}{}", ran.stdout, ran.stderr);
        assert_eq!(ran.stderr.lines().count(), 1, "{name}: {}", ran.stderr);
        assert!(ran.stderr.starts_with("error: "), "{name}: {}", ran.stderr);
    }
    let missing = faultline(dir.path(), &["replay", "missing.json"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("missing.json"),
        "{}",
        missing.stderr
    );
}

#[test]
fn replay_that_runs_differently_says_so() {
    let dir = scratch();
    let path = failing_replay(dir.path());
    let mut file = json(&path);
    file["trace_hash"] = serde_json::json!("0x0000000000000001");
    file["failure"]["message"] = serde_json::json!("something else");
    let edited = dir.path().join("edited.json");
    std::fs::write(&edited, serde_json::to_string_pretty(&file).unwrap()).unwrap();
    let ran = faultline(dir.path(), &["replay", edited.to_str().unwrap()]);
    assert_eq!(
        ran.code, 3,
        "a differing replay exits 3: {}{}",
        ran.stdout, ran.stderr
    );
    let line = ran
        .line_after("the replay differs from the file:")
        .expect("a differs line");
    assert!(line.contains("recorded failure 'something else'"), "{line}");
    assert!(
        line.contains("recorded trace hash 0x0000000000000001"),
        "{line}"
    );
}
