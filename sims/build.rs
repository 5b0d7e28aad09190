//! Records the git commit the CLI was built from (`FAULTLINE_COMMIT`), for
//! replay files; "unknown" when git or the repository is missing.

use std::path::Path;
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=FAULTLINE_COMMIT={commit}");
    // Rebuild when HEAD moves: a branch switch changes HEAD, a commit changes
    // the branch's ref. Only name files that exist (a missing one would make
    // cargo rerun this script on every build).
    let head = Path::new("../.git/HEAD");
    if head.is_file() {
        println!("cargo:rerun-if-changed=../.git/HEAD");
        let target = std::fs::read_to_string(head).unwrap_or_default();
        if let Some(r) = target.trim().strip_prefix("ref: ") {
            let reference = Path::new("../.git").join(r);
            if reference.is_file() {
                println!("cargo:rerun-if-changed={}", reference.display());
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
