//! The cargo-fuzz entry points, run by the ordinary test suite: the
//! `schedule` target's bytes-driven runs find the pre-fix store race, hold
//! on the fixed store, and every failure's replay file reproduces it; the
//! replay-file parser never panics.

mod support;

use faultline_sims::fuzz::{replay_file, schedule_failure, SCHEDULE_HEADER_BYTES};
use faultline_sims::{find, Scenario};
use support::{faultline, scratch};

/// A small deterministic byte generator (xorshift), standing in for the
/// fuzzer's mutations.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 24) as u8
    }

    fn input(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next()).collect()
    }
}

fn store() -> Vec<Box<dyn Scenario>> {
    vec![find("append-retention").expect("registered")]
}

/// Inputs tried on the pre-fix store before it must have failed.
const INPUTS_MAX: u64 = 300;

#[test]
fn bytes_find_the_pre_fix_store_race_and_the_replay_reproduces_it() {
    let dir = scratch();
    let mut gen = Bytes(0x9e37_79b9_7f4a_7c15);
    let mut found = None;
    for i in 1..=INPUTS_MAX {
        let len = SCHEDULE_HEADER_BYTES + 64 + usize::from(gen.next()) * 8;
        let input = gen.input(len);
        if let Some(hit) = schedule_failure(&store(), "pre-fix", &input, dir.path()) {
            found = Some((i, hit));
            break;
        }
    }
    let (inputs, (path, report)) = found.expect("no input of the fuzzer's kind found the race");
    println!("pre-fix store race found by input {inputs}:\n{report}");
    assert!(report.contains("fuzz input"), "{report}");
    assert!(
        !report.contains("  or:"),
        "a seed does not rerun a fuzzed run"
    );
    let arg = path.display().to_string();
    let replayed = faultline(dir.path(), &["replay", &arg]);
    assert_eq!(replayed.code, 1, "{}{}", replayed.stdout, replayed.stderr);
    assert!(
        replayed.stdout.contains("reproduced"),
        "{}",
        replayed.stdout
    );
}

#[test]
fn the_same_bytes_hold_on_the_fixed_store() {
    let dir = scratch();
    let mut gen = Bytes(0x9e37_79b9_7f4a_7c15);
    for _ in 0..INPUTS_MAX {
        let len = SCHEDULE_HEADER_BYTES + 64 + usize::from(gen.next()) * 8;
        let input = gen.input(len);
        if let Some((_, report)) = schedule_failure(&store(), "fixed", &input, dir.path()) {
            panic!("the fixed store failed a fuzz input:\n{report}");
        }
    }
}

#[test]
fn short_inputs_and_unknown_variants_are_skipped() {
    let dir = scratch();
    assert!(schedule_failure(&store(), "pre-fix", &[1, 2, 3], dir.path()).is_none());
    assert!(schedule_failure(&store(), "nope", &[0; 64], dir.path()).is_none());
}

#[test]
fn the_replay_file_parser_never_panics() {
    let dir = scratch();
    let mut gen = Bytes(7);
    for _ in 0..2_000 {
        let len = usize::from(gen.next());
        replay_file(&gen.input(len));
    }
    // Every prefix of a real replay file, and single-byte corruptions of it.
    let path = support::failing_replay(dir.path());
    let text = std::fs::read(&path).expect("replay file");
    for cut in 0..text.len() {
        replay_file(&text[..cut]);
    }
    for i in (0..text.len()).step_by(7) {
        let mut bad = text.clone();
        bad[i] = gen.next();
        replay_file(&bad);
    }
}

/// The `schedule` target hunts the pool's half-fix in sync-switch mode (its
/// bug needs that mode: `Bug::sync_switch`), so the fuzzer can find it; the
/// replay file keeps the mode and reproduces the failure.
#[test]
fn bytes_find_the_pool_half_fix_in_sync_switch_mode() {
    let dir = scratch();
    let pool = vec![find("pool-subscribe").expect("registered")];
    let mut gen = Bytes(0x9e37_79b9_7f4a_7c15);
    let found = (1..=INPUTS_MAX).find_map(|i| {
        let len = SCHEDULE_HEADER_BYTES + 64 + usize::from(gen.next()) * 8;
        let input = gen.input(len);
        schedule_failure(&pool, "half-fix", &input, dir.path()).map(|hit| (i, hit))
    });
    let (inputs, (path, report)) = found.expect("no input of the fuzzer's kind found the half-fix");
    println!("pool half-fix found by input {inputs}:\n{report}");
    assert!(report.contains("over-limit"), "{report}");
    let text = std::fs::read_to_string(&path).expect("replay file");
    let file = faultline_sims::parse_replay(&text).expect("a replay file");
    assert!(file.params.sync_switch, "the hunt ran in the default mode");
    let arg = path.display().to_string();
    let replayed = faultline(dir.path(), &["replay", &arg]);
    assert_eq!(replayed.code, 1, "{}{}", replayed.stdout, replayed.stderr);
    assert!(
        replayed.stdout.contains("reproduced"),
        "{}",
        replayed.stdout
    );
}
