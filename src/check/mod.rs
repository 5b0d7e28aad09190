//! Checking your own code, and keeping the verdicts honest.
//!
//! * [`record`]: the results of model-check, fuzz and real-server tests, as
//!   the teeth table reads them back: each record names its checker, bug,
//!   verdict, the oracle that fired, the checker's configuration and the
//!   source state (commit and dirty fingerprint) it was earned on.
//! * [`paths`]: where faultline writes files (under the cargo target
//!   directory, `CARGO_TARGET_DIR` honoured).

pub mod paths;
pub mod record;
