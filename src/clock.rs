//! [`Clock`]: the only source of time in faultline code.
//!
//! Services read time and sleep only through an injected `Clock`, so the
//! simulator can run them in virtual time and a model check can move time by
//! hand. [`TokioClock`] is the real one; [`ManualClock`] is advanced by the
//! test (and works under loom and shuttle).

use crate::sync::{AtomicU64, Mutex, Ordering};
use crate::BoxFuture;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Nanoseconds in one millisecond.
pub const NS_PER_MS: u64 = 1_000_000;

/// A source of time and timers.
pub trait Clock: Send + Sync {
    /// Nanoseconds since the Unix epoch as this clock sees it; never goes
    /// backwards for one clock unless a fault moves it (the simulator's clock
    /// jump).
    fn now_ns(&self) -> u64;

    /// Completes once `now_ns() >= deadline_ns`.
    fn sleep_until(&self, deadline_ns: u64) -> BoxFuture<()>;

    /// Milliseconds since the Unix epoch (event timestamps).
    fn now_ms(&self) -> u64 {
        self.now_ns() / NS_PER_MS
    }

    /// Completes after `duration` of this clock's time.
    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        let d_ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.sleep_until(self.now_ns().saturating_add(d_ns))
    }
}

/// The real clock: tokio's monotonic time, anchored to the Unix epoch once.
///
/// It follows tokio's paused time (`tokio::time::pause`) when the runtime is
/// paused, so it also serves tokio-based deterministic tests.
#[derive(Debug, Clone)]
pub struct TokioClock {
    origin: tokio::time::Instant,
    epoch_ns: u64,
}

impl TokioClock {
    /// Anchors a new clock at the current wall time.
    pub fn new() -> Self {
        #[allow(clippy::disallowed_methods)] // the one place wall time is read
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        #[allow(clippy::disallowed_methods)] // the real clock's anchor
        let origin = tokio::time::Instant::now();
        TokioClock {
            origin,
            epoch_ns: u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now_ns(&self) -> u64 {
        let elapsed = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.epoch_ns.saturating_add(elapsed)
    }

    fn sleep_until(&self, deadline_ns: u64) -> BoxFuture<()> {
        let wait = Duration::from_nanos(deadline_ns.saturating_sub(self.now_ns()));
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that only moves when the test calls [`ManualClock::advance`] or
/// [`ManualClock::set`]. Usable under loom and shuttle.
#[derive(Default)]
pub struct ManualClock {
    shared: crate::sync::Arc<ManualShared>,
}

#[derive(Default)]
struct ManualShared {
    now_ns: AtomicU64,
    next_id: AtomicU64,
    sleepers: Mutex<BTreeMap<(u64, u64), Waker>>,
}

impl ManualClock {
    /// A clock standing at `start_ns`.
    pub fn new(start_ns: u64) -> Self {
        let clock = ManualClock::default();
        clock.shared.now_ns.store(start_ns, Ordering::SeqCst);
        clock
    }

    /// Moves time forward by `duration` and wakes every sleeper now due.
    pub fn advance(&self, duration: Duration) {
        let d_ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.set(self.now_ns().saturating_add(d_ns));
    }

    /// Sets the time (it may go backwards: a clock jump) and wakes sleepers
    /// now due.
    pub fn set(&self, now_ns: u64) {
        self.shared.now_ns.store(now_ns, Ordering::SeqCst);
        let due: Vec<Waker> = self.shared.sleepers.with(|map| {
            let later = map.split_off(&(now_ns.saturating_add(1), 0));
            std::mem::replace(map, later).into_values().collect()
        });
        due.into_iter().for_each(Waker::wake);
    }

    /// Number of pending sleeps.
    pub fn sleepers(&self) -> usize {
        self.shared.sleepers.with(|m| m.len())
    }
}

impl Clone for ManualClock {
    fn clone(&self) -> Self {
        ManualClock {
            shared: crate::sync::Arc::clone(&self.shared),
        }
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.shared.now_ns.load(Ordering::SeqCst)
    }

    fn sleep_until(&self, deadline_ns: u64) -> BoxFuture<()> {
        let id = self.shared.next_id.fetch_add(1, Ordering::SeqCst);
        Box::pin(ManualSleep {
            shared: crate::sync::Arc::clone(&self.shared),
            key: (deadline_ns, id),
        })
    }
}

struct ManualSleep {
    shared: crate::sync::Arc<ManualShared>,
    key: (u64, u64),
}

impl Future for ManualSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let key = self.key;
        let shared = &self.shared;
        shared.sleepers.with(|map| {
            // Read time under the lock so `set` cannot slip in between.
            if shared.now_ns.load(Ordering::SeqCst) >= key.0 {
                map.remove(&key);
                Poll::Ready(())
            } else {
                map.insert(key, cx.waker().clone());
                Poll::Pending
            }
        })
    }
}

impl Drop for ManualSleep {
    fn drop(&mut self) {
        let key = self.key;
        self.shared.sleepers.with(|map| map.remove(&key));
    }
}
