//! Where faultline's files go: under the cargo target directory, so a fresh
//! clone's tree stays clean and `CARGO_TARGET_DIR` moves everything at once.

use std::path::{Path, PathBuf};

/// The cargo target directory: `CARGO_TARGET_DIR` when set, otherwise
/// `target/` beside the nearest `Cargo.lock` above the current directory
/// (the workspace root), otherwise `./target`.
///
/// A relative `CARGO_TARGET_DIR` is taken relative to the current
/// directory; set an absolute one when tests and the CLI run from
/// different directories.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    workspace_root(&cwd).map_or_else(|| PathBuf::from("target"), |r| r.join("target"))
}

/// The nearest directory at or above `start` that holds a `Cargo.lock`.
pub fn workspace_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| d.join("Cargo.lock").is_file())
        .map(Path::to_path_buf)
}

/// `<target>/faultline`: the root of everything faultline writes.
pub fn faultline_dir() -> PathBuf {
    target_dir().join("faultline")
}
