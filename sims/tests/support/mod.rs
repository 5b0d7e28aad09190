//! Runs the built `faultline` binary in a scratch directory and reads what
//! it printed.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// What one command did.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// The text after `prefix` on the first stdout line that starts with it
    /// (after trimming), up to the line's end.
    pub fn line_after(&self, prefix: &str) -> Option<String> {
        self.stdout
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix).map(|rest| rest.trim().to_string()))
    }

    /// The replay file a failing run reported.
    pub fn replay_path(&self, dir: &Path) -> PathBuf {
        let rel = self
            .line_after("replay file:")
            .unwrap_or_else(|| panic!("no replay file in:\n{}", self.stdout));
        dir.join(rel.trim())
    }

    /// The number printed right before `word` in the summary line (e.g.
    /// `"runs,"` -> runs).
    pub fn number_before(&self, word: &str) -> u64 {
        let words: Vec<&str> = self.stdout.split_whitespace().collect();
        let i = words
            .iter()
            .position(|w| *w == word)
            .unwrap_or_else(|| panic!("no '{word}' in:\n{}", self.stdout));
        words[i - 1].parse().expect("a number")
    }

    /// The text right after `word` in stdout (e.g. `"digest"`).
    pub fn word_after(&self, word: &str) -> String {
        let words: Vec<&str> = self.stdout.split_whitespace().collect();
        let i = words
            .iter()
            .position(|w| *w == word)
            .unwrap_or_else(|| panic!("no '{word}' in:\n{}", self.stdout));
        words[i + 1].trim_end_matches(',').to_string()
    }
}

/// Runs `faultline ARGS` in `dir` (FAULTLINE_SEED, RUST_LOG, CARGO_TARGET_DIR
/// and FAULTLINE_CHECKS_DIR unset).
pub fn faultline(dir: &Path, args: &[&str]) -> Ran {
    faultline_env(dir, args, &[])
}

/// Runs `faultline ARGS` in `dir` with extra environment variables.
pub fn faultline_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("FAULTLINE_SEED")
        .env_remove("RUST_LOG")
        // Files go under the scratch directory's own target/.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("FAULTLINE_CHECKS_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the faultline binary runs");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A scratch working directory.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temp dir")
}

/// Sweeps toy-rmw pre-fix over 0..200 and returns the replay file of its
/// first failure.
pub fn failing_replay(dir: &Path) -> PathBuf {
    let ran = faultline(
        dir,
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
    ran.replay_path(dir)
}

/// The decisions of a replay file that are not the default `"a"`.
pub fn choices(path: &Path) -> usize {
    let v = json(path);
    v["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .filter(|d| d.as_str() != Some("a"))
        .count()
}

/// A replay file as JSON.
pub fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("readable replay file");
    serde_json::from_str(&text).expect("valid JSON")
}
