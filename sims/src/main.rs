//! The `faultline` command line: runs scenarios, replays and shrinks failures.

fn main() {
    println!(
        "faultline {}: no scenarios are registered yet.",
        env!("CARGO_PKG_VERSION")
    );
}
