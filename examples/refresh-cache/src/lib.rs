//! # refresh-cache: faultline's worked example
//!
//! A small service written the way faultline expects any service to be:
//! over the world's traits ([`faultline::clock::Clock`] for time,
//! [`faultline::sched::Scheduler`] for tasks, [`faultline::sync`] for
//! locks), so the same code runs under tokio in production and in
//! faultline's deterministic simulator in tests.
//!
//! The service is a read-through cache with refresh-ahead ([`Cache`]) in
//! front of a slow, versioned [`Origin`]. Its pre-fix fill mode
//! ([`Fill::Unconditional`]) has a real race, the *stale set*: a load that
//! read the origin before a write stores its old value after the write's
//! invalidation, and readers who start after the write returned are served
//! the old value. The fix ([`Fill::Leased`], the default) stores a load only
//! if the key was not invalidated since the load began.
//!
//! The tests (`tests/stale_read.rs`) find the race with
//! `#[faultline::test]`, replay it from its file, and show the fixed cache
//! holding; `docs/guide.md` in the faultline repository walks through them.

pub mod cache;
pub mod origin;

pub use cache::{Cache, CacheConfig, Fill};
pub use origin::{MemOrigin, Origin, Versioned};
