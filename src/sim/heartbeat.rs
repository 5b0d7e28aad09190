//! Event-loop lag: a heartbeat task that wants to run every `period` and
//! measures how late it actually runs. A loop saturated by queued work (or
//! blocked by a blocking call) shows up as lag.

use crate::clock::Clock;
use crate::sync::{Arc, AtomicU64, DynArc, Mutex, Ordering};
use std::time::Duration;

/// Samples kept at most.
pub const LAG_SAMPLES_MAX: usize = 100_000;

/// What the heartbeat saw.
#[derive(Default)]
pub struct LagMeter {
    max_ns: AtomicU64,
    samples: Mutex<Vec<(u64, u64)>>,
}

impl LagMeter {
    /// The worst lag seen, ns.
    pub fn max_ns(&self) -> u64 {
        self.max_ns.load(Ordering::SeqCst)
    }

    /// `(clock ns, lag ns)` per beat.
    pub fn samples(&self) -> Vec<(u64, u64)> {
        self.samples.with(|s| s.clone())
    }

    fn record(&self, at_ns: u64, lag_ns: u64) {
        self.max_ns.fetch_max(lag_ns, Ordering::SeqCst);
        self.samples.with(|s| {
            if s.len() < LAG_SAMPLES_MAX {
                s.push((at_ns, lag_ns));
            }
        });
    }
}

/// Beats every `period` on `clock` forever, recording each beat's lateness.
///
/// # Cancel safety
/// Cancel safe: it holds nothing between beats.
pub async fn heartbeat(clock: DynArc<dyn Clock>, period: Duration, meter: Arc<LagMeter>) {
    let period_ns = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX).max(1);
    let mut due = clock.now_ns().saturating_add(period_ns);
    loop {
        clock.sleep_until(due).await;
        let now = clock.now_ns();
        meter.record(now, now.saturating_sub(due));
        due = now.saturating_add(period_ns);
    }
}
