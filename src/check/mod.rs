//! Checking your own code with faultline, and keeping verdicts honest.
//!
//! * [`Check`] / [`check`]: the test entry point. A test body is an async
//!   closure over a [`World`] (clock, tasks, nodes, faults, metrics); it is
//!   run once per seed in the deterministic simulator, and the first
//!   failing seed is shrunk, written as a replay file and reported with a
//!   one-line repro. `FAULTLINE_*` environment variables steer it
//!   ([`env`](mod@env)).
//! * [`Target`]: anything a check can run (a test body, a built-in
//!   scenario's variant); [`sweep`], [`rerun`] and [`replay_file`] work on
//!   any target, so the CLI and `cargo test` share one path.
//! * [`record`]: the results of model-check, fuzz and real-server tests as
//!   the teeth table reads them back, with the commit they were earned on.
//! * [`paths`]: where faultline writes files (under the cargo target
//!   directory, `CARGO_TARGET_DIR` honoured).
//!
//! **One body, three checkers.** Built with `RUSTFLAGS="--cfg
//! faultline_shuttle"` or `"--cfg faultline_loom"`, [`Check`], [`check`],
//! [`World`] and `#[faultline::test]` keep their names and run the same
//! body under shuttle or loom instead of the simulator (`model_world` and
//! `model_check`; their docs say what each checker models and what it
//! cannot). The simulator's own machinery (replay files, shrinking,
//! sweeps, targets) exists only in the simulator build.

pub mod paths;
pub mod record;

#[cfg(not(any(faultline_loom, faultline_shuttle)))]
mod builder;
#[cfg(not(any(faultline_loom, faultline_shuttle)))]
pub mod env;
#[cfg(not(any(faultline_loom, faultline_shuttle)))]
pub mod policy;
#[cfg(not(any(faultline_loom, faultline_shuttle)))]
pub mod replay_file;
#[cfg(not(any(faultline_loom, faultline_shuttle)))]
pub mod report;
#[cfg(not(any(faultline_loom, faultline_shuttle)))]
pub mod rerun;
#[cfg(not(any(faultline_loom, faultline_shuttle)))]
pub mod seeds;
#[cfg(not(any(faultline_loom, faultline_shuttle)))]
pub mod shrink;
#[cfg(not(any(faultline_loom, faultline_shuttle)))]
pub mod sweep;
#[cfg(not(any(faultline_loom, faultline_shuttle)))]
mod target;
#[cfg(not(any(faultline_loom, faultline_shuttle)))]
mod world;

#[cfg(not(any(faultline_loom, faultline_shuttle)))]
pub use builder::{check, Check, CheckFailure, CheckReport, Faults};
#[cfg(not(any(faultline_loom, faultline_shuttle)))]
pub use policy::PolicySpec;
#[cfg(not(any(faultline_loom, faultline_shuttle)))]
pub use seeds::{SeedRange, Shard};
#[cfg(not(any(faultline_loom, faultline_shuttle)))]
pub use sweep::SeedRun;
#[cfg(not(any(faultline_loom, faultline_shuttle)))]
pub use target::{BodySetup, BodyTarget, Target, TargetId};
#[cfg(not(any(faultline_loom, faultline_shuttle)))]
pub use world::{JoinHandle, World};

#[cfg(any(faultline_loom, faultline_shuttle))]
pub mod model_check;
#[cfg(any(faultline_loom, faultline_shuttle))]
pub mod model_world;

#[cfg(any(faultline_loom, faultline_shuttle))]
pub use model_check::{check, Check, PolicySpec};
#[cfg(any(faultline_loom, faultline_shuttle))]
pub use model_world::{JoinHandle, ModelHandle, World};
