//! [`timeout`]: bound a future's wait by the world's [`Clock`], so in the
//! simulator it is virtual time and under a model check a [`ManualClock`]
//! the test moves.
//!
//! ```
//! use faultline::clock::{Clock, ManualClock};
//! use faultline::sync::{block_on, timeout, Elapsed};
//! use std::time::Duration;
//!
//! let clock = ManualClock::new(0);
//! let quick = timeout(&clock, Duration::from_secs(1), async { 7 });
//! assert_eq!(block_on(quick), Ok(7));
//!
//! clock.advance(Duration::from_secs(5));
//! let late = timeout(&clock, Duration::ZERO, std::future::pending::<()>());
//! assert_eq!(block_on(late), Err(Elapsed { deadline_ns: 5_000_000_000 }));
//! ```
//!
//! [`ManualClock`]: crate::clock::ManualClock

use super::Flaw;
use crate::clock::Clock;
use crate::BoxFuture;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The error of a [`timeout`] whose deadline passed first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed {
    /// The deadline, on the clock's time (ns).
    pub deadline_ns: u64,
}

impl std::fmt::Display for Elapsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "deadline {} ns has elapsed", self.deadline_ns)
    }
}

impl std::error::Error for Elapsed {}

/// Runs `fut` until it completes or `duration` of `clock`'s time has passed
/// since this call (the deadline is fixed here, as tokio's).
///
/// `fut` is polled first on every poll, so a future ready at the deadline
/// wins. The timer is only armed (through [`Clock::sleep_until`]) once
/// `fut` returns `Pending`.
///
/// # Errors
/// [`Elapsed`] when the deadline passed before `fut` completed (`fut` is
/// then dropped with the returned future).
///
/// # Cancel safety
/// As cancel safe as `fut`: dropping the timeout drops `fut` and its timer.
pub fn timeout<F: Future>(clock: &dyn Clock, duration: Duration, fut: F) -> Timeout<'_, F> {
    timeout_flawed(clock, duration, fut, Flaw::None)
}

/// [`timeout`] with the deadline given on `clock`'s time (ns).
///
/// # Errors
/// [`Elapsed`] when `deadline_ns` passed before `fut` completed.
///
/// # Cancel safety
/// As [`timeout`].
pub fn timeout_at<F: Future>(clock: &dyn Clock, deadline_ns: u64, fut: F) -> Timeout<'_, F> {
    Timeout {
        clock,
        deadline_ns,
        // Only the planted `DeadlinePerPoll` reads it.
        duration_ns: 0,
        timer: None,
        flaw: Flaw::None,
        fut,
    }
}

/// [`timeout`] with a deliberate bug, for tests that prove a checker
/// catches it. Never use outside tests.
#[doc(hidden)]
pub fn timeout_flawed<F: Future>(
    clock: &dyn Clock,
    duration: Duration,
    fut: F,
    flaw: Flaw,
) -> Timeout<'_, F> {
    let duration_ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
    Timeout {
        clock,
        deadline_ns: clock.now_ns().saturating_add(duration_ns),
        duration_ns,
        timer: None,
        flaw,
        fut,
    }
}

/// The future of [`timeout`] and [`timeout_at`].
#[must_use = "futures do nothing unless polled"]
pub struct Timeout<'a, F> {
    clock: &'a dyn Clock,
    deadline_ns: u64,
    duration_ns: u64,
    /// Armed at the first `Pending` of `fut`.
    timer: Option<BoxFuture<()>>,
    flaw: Flaw,
    fut: F,
}

impl<F> Timeout<'_, F> {
    /// The deadline on the clock's time (ns).
    pub fn deadline_ns(&self) -> u64 {
        self.deadline_ns
    }
}

impl<F: Future> Future for Timeout<'_, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `fut` is never moved out of the pinned `Timeout` (no
        // method hands it out by value and `Timeout` has no `Drop` that
        // could); the other fields are not structurally pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above, `fut` stays where it is until dropped.
        let fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        if let Poll::Ready(v) = fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        let elapsed = Elapsed {
            deadline_ns: this.deadline_ns,
        };
        let clock = this.clock;
        if let Some(timer) = &mut this.timer {
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(elapsed));
            }
            if this.flaw != Flaw::DeadlinePerPoll {
                return Poll::Pending;
            }
            // The planted bug: the deadline restarts at every poll.
            let restarted = clock.now_ns().saturating_add(this.duration_ns);
            this.deadline_ns = restarted;
        }
        let timer = this.timer.insert(clock.sleep_until(this.deadline_ns));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F> std::fmt::Debug for Timeout<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeout")
            .field("deadline_ns", &self.deadline_ns)
            .finish()
    }
}
