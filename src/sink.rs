//! [`Sink`]: where services send batches (a column store, a socket), and a
//! fault-injecting wrapper.

use crate::clock::Clock;
use crate::sync::{Arc, DynArc, Mutex};
use crate::BoxFuture;
use std::collections::VecDeque;
use std::time::Duration;

/// What went wrong with a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkErrorKind {
    /// The peer is overloaded or restarting (HTTP 503); it may say when to
    /// come back.
    Unavailable {
        /// The peer's `Retry-After`, in milliseconds, if it gave one.
        retry_after_ms: Option<u64>,
    },
    /// No answer within the sink's timeout.
    Timeout,
    /// The peer refused the batch for good (retrying will not help).
    Rejected(String),
    /// The sink is closed.
    Closed,
}

/// A failed write; hands the batch back to the caller, so nothing is lost
/// without the caller deciding so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkError<T> {
    /// What went wrong.
    pub kind: SinkErrorKind,
    /// The batch that was not written.
    pub batch: Vec<T>,
}

impl<T> std::fmt::Display for SinkError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sink write of {} items failed: ", self.batch.len())?;
        match &self.kind {
            SinkErrorKind::Unavailable { retry_after_ms } => {
                write!(f, "unavailable (retry after {retry_after_ms:?} ms)")
            }
            SinkErrorKind::Timeout => f.write_str("timed out"),
            SinkErrorKind::Rejected(why) => write!(f, "rejected: {why}"),
            SinkErrorKind::Closed => f.write_str("sink closed"),
        }
    }
}

impl<T: std::fmt::Debug> std::error::Error for SinkError<T> {}

/// An asynchronous destination for batches of `T`.
pub trait Sink<T>: Send + Sync {
    /// Writes one batch.
    ///
    /// # Errors
    /// [`SinkError`] with the batch handed back.
    fn write(&self, batch: Vec<T>) -> BoxFuture<Result<(), SinkError<T>>>;
}

/// A sink that keeps every batch in memory (tests, the simulator).
pub struct MemorySink<T> {
    written: Arc<Mutex<Vec<T>>>,
}

impl<T> Default for MemorySink<T> {
    fn default() -> Self {
        MemorySink {
            written: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl<T: Clone> MemorySink<T> {
    /// Everything written so far, in order.
    pub fn written(&self) -> Vec<T> {
        self.written.with(|w| w.clone())
    }
}

impl<T: Send + 'static> Sink<T> for MemorySink<T> {
    fn write(&self, batch: Vec<T>) -> BoxFuture<Result<(), SinkError<T>>> {
        let written = Arc::clone(&self.written);
        Box::pin(async move {
            written.with(|w| w.extend(batch));
            Ok(())
        })
    }
}

/// One injected sink fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkFault {
    /// Fail the write at once with this error.
    Fail(SinkErrorKind),
    /// Wait this long (latency spike), then write normally.
    Delay(Duration),
    /// Wait this long (the caller's timeout), then fail with `Timeout`.
    Hang(Duration),
}

/// Decides, write by write, whether a fault strikes. The simulator draws the
/// answers from its seed; tests script them.
pub trait SinkFaults: Send + Sync {
    /// The fault for the next write, if any.
    fn next_fault(&self) -> Option<SinkFault>;
}

/// A fixed script of faults, one per write, then none.
#[derive(Default)]
pub struct ScriptedFaults {
    script: Mutex<VecDeque<Option<SinkFault>>>,
}

impl ScriptedFaults {
    /// Faults for the first writes, in order (`None` = a clean write).
    pub fn new(script: impl IntoIterator<Item = Option<SinkFault>>) -> Self {
        ScriptedFaults {
            script: Mutex::new(script.into_iter().collect()),
        }
    }
}

impl SinkFaults for ScriptedFaults {
    fn next_fault(&self) -> Option<SinkFault> {
        self.script.with(|s| s.pop_front().flatten())
    }
}

/// Faults drawn from whatever probe is installed (the simulator's seeded
/// fault plan); never a fault outside the simulator. Each write asks, in
/// order: error, 503 (with a drawn `Retry-After`), hang until `timeout`,
/// latency spike.
pub struct PlanFaults {
    site: &'static str,
    timeout: Duration,
    latency_ms_max: u64,
    retry_after_ms_max: u64,
}

impl PlanFaults {
    /// Fault point `site` (e.g. `"trace.sink"`); a hang lasts `timeout`; a
    /// latency spike lasts up to `latency_ms_max`; a 503 carries a
    /// `Retry-After` of up to `retry_after_ms_max` (0 = none).
    pub fn new(
        site: &'static str,
        timeout: Duration,
        latency_ms_max: u64,
        retry_after_ms_max: u64,
    ) -> Self {
        PlanFaults {
            site,
            timeout,
            latency_ms_max,
            retry_after_ms_max,
        }
    }
}

impl SinkFaults for PlanFaults {
    fn next_fault(&self) -> Option<SinkFault> {
        use crate::probe::{buggify, draw, FaultKind};
        if buggify(self.site, FaultKind::Error) {
            return Some(SinkFault::Fail(SinkErrorKind::Rejected(
                "injected error".into(),
            )));
        }
        if buggify(self.site, FaultKind::Unavailable) {
            let retry_after_ms =
                (self.retry_after_ms_max > 0).then(|| draw(self.retry_after_ms_max + 1));
            return Some(SinkFault::Fail(SinkErrorKind::Unavailable {
                retry_after_ms,
            }));
        }
        if buggify(self.site, FaultKind::Hang) {
            return Some(SinkFault::Hang(self.timeout));
        }
        if buggify(self.site, FaultKind::Latency) {
            return Some(SinkFault::Delay(Duration::from_millis(
                1 + draw(self.latency_ms_max),
            )));
        }
        None
    }
}

/// Wraps a sink and injects faults in front of it.
pub struct FaultySink<S> {
    inner: Arc<S>,
    clock: DynArc<dyn Clock>,
    faults: DynArc<dyn SinkFaults>,
}

impl<S> FaultySink<S> {
    /// Wraps `inner`; `faults` decides each write's fault, `clock` times
    /// delays and hangs.
    pub fn new(inner: Arc<S>, clock: DynArc<dyn Clock>, faults: DynArc<dyn SinkFaults>) -> Self {
        FaultySink {
            inner,
            clock,
            faults,
        }
    }
}

impl<T: Send + 'static, S: Sink<T> + 'static> Sink<T> for FaultySink<S> {
    fn write(&self, batch: Vec<T>) -> BoxFuture<Result<(), SinkError<T>>> {
        let fault = self.faults.next_fault();
        let inner = Arc::clone(&self.inner);
        let clock = DynArc::clone(&self.clock);
        Box::pin(async move {
            match fault {
                None => inner.write(batch).await,
                Some(SinkFault::Fail(kind)) => Err(SinkError { kind, batch }),
                Some(SinkFault::Delay(d)) => {
                    clock.sleep(d).await;
                    inner.write(batch).await
                }
                Some(SinkFault::Hang(d)) => {
                    clock.sleep(d).await;
                    Err(SinkError {
                        kind: SinkErrorKind::Timeout,
                        batch,
                    })
                }
            }
        })
    }
}
