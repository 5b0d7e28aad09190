//! # faultline
//!
//! A deterministic-simulation concurrency test harness. faultline carries
//! small services whose concurrency bugs have hurt production systems (a
//! stale writer that loses events, an OOM from unbounded on-demand work, a
//! lock held across slow writes, a double-counting flusher), each with its
//! *pre-fix variant* kept as an explicit configuration, and the checks that
//! catch every one of them on demand: loom and shuttle model checks, a seeded
//! simulator in virtual time, property tests and fuzzing.
//!
//! ## The world
//! Services never read time, start tasks or talk to a peer directly. They get
//! a [`clock::Clock`], a [`sched::Scheduler`] and [`sink::Sink`]s, and take
//! their locks from [`sync`] (std, loom or shuttle per the build's cfg). That
//! is what lets one piece of code run in production, under a model checker
//! and in the simulator unchanged.
//!
//! ## Guarantees
//! * [`sync::Gate`] and [`sync::Semaphore`] are FIFO, cancel safe and
//!   panic safe (RAII); both are model-checked with loom and shuttle, next to
//!   deliberately broken twins ([`sync::Flaw`]) that the checks must catch.
//! * No guard of the blocking [`sync::Mutex`] can live across an `.await`.
//!
//! ## Limits
//! * loom explores at most 5 threads per model: its models stay small.
//! * Model-check builds use in-memory backends only (no DuckDB).

pub mod admission;
pub mod check;
pub mod clock;
#[cfg(not(any(faultline_loom, faultline_shuttle)))]
pub mod fuzz;
pub mod probe;
pub mod retry;
pub mod sched;
#[cfg(not(any(faultline_loom, faultline_shuttle)))]
pub mod sim;
pub mod sink;
pub mod spend;
pub mod store;
pub mod sync;
pub mod trace_writer;

/// The test entry point: in the simulator by default, under shuttle with
/// `--cfg faultline_shuttle`, under loom with `--cfg faultline_loom` (one
/// body, three checkers: see [`check`](mod@check)).
pub use check::{check, Check, World};

/// `#[faultline::test]`: an `async fn(world: World)` run over many seeds of
/// the simulator as an ordinary `#[test]`, or under shuttle or loom in
/// their cfg builds (see [`check::Check`] for what it does, and the
/// `faultline-macros` crate for its arguments).
pub use faultline_macros::test;

/// A boxed, sendable future: what the object-safe world traits return.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;
