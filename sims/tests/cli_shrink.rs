//! `faultline shrink`: the minimal replay has no more non-default decisions
//! than its input and still fails when replayed.

mod support;

use support::{choices, failing_replay, faultline, json, scratch};

#[test]
fn shrunk_replay_is_no_larger_and_still_fails() {
    let dir = scratch();
    let path = failing_replay(dir.path());
    let ran = faultline(dir.path(), &["shrink", path.to_str().unwrap()]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let out = path.with_extension("min.json");
    assert!(out.exists(), "{}", ran.stdout);
    assert!(
        ran.stdout.contains(&format!("wrote {}", out.display())),
        "{}",
        ran.stdout
    );
    assert!(choices(&out) <= choices(&path));
    assert!(
        ran.stdout.contains("non-default decisions"),
        "{}",
        ran.stdout
    );
    let file = json(&out);
    assert_eq!(file["failure"]["kind"], "invariant");
    assert!(
        file["shrunk"]["choices_after"].as_u64().unwrap()
            <= file["shrunk"]["choices_before"].as_u64().unwrap()
    );
    let again = faultline(dir.path(), &["replay", out.to_str().unwrap()]);
    assert_eq!(again.code, 1, "{}{}", again.stdout, again.stderr);
    assert!(again.stdout.contains("lost update"), "{}", again.stdout);
    assert!(again.stdout.contains("reproduced"), "{}", again.stdout);
}

#[test]
fn shrink_honours_out_and_refuses_a_passing_file() {
    let dir = scratch();
    let path = failing_replay(dir.path());
    let out = dir.path().join("small.json");
    let ran = faultline(
        dir.path(),
        &[
            "shrink",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    assert!(out.exists());
    let mut passing = json(&path);
    passing["failure"] = serde_json::Value::Null;
    let p = dir.path().join("passing.json");
    std::fs::write(&p, passing.to_string()).unwrap();
    let refused = faultline(dir.path(), &["shrink", p.to_str().unwrap()]);
    assert_eq!(refused.code, 2, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("nothing to shrink"),
        "{}",
        refused.stderr
    );
}
