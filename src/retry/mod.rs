//! The caller side of service 2: retrying `503 Service Unavailable`.
//!
//! An overloaded server (the asset service's admission control) answers 503
//! with `Retry-After` at once instead of queueing. Callers retry with
//! [`retry`]: exponential backoff over the injected [`Clock`]
//! ([`RetryPolicy`]: 250 ms doubling to at most 5 s, at most 6 attempts),
//! never sooner than the server's `Retry-After` (capped at `delay_ms_max`),
//! retrying **only** [`ServiceUnavailable`]; any other error and
//! cancellation return at once. Optional seeded full jitter
//! ([`Jitter::Full`]) spreads a crowd of callers' retries so they do not
//! arrive in synchronized waves.
//!
//! `Retry-After` values are parsed by [`parse_retry_after`] (delta-seconds
//! and the three HTTP-date forms; "now" is a parameter, read from the
//! caller's `Clock`).

mod cancel;
pub(crate) mod date;

pub use cancel::{CancelToken, Cancelled};
pub use date::{format_http_date, parse_http_date_ms, parse_retry_after};

use crate::clock::Clock;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use std::future::Future;
use std::time::Duration;

/// How the wait before a retry is spread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jitter {
    /// Exactly the backoff (the default).
    None,
    /// "Full jitter": a seeded uniform draw in `0..=backoff`, on top of the
    /// server's `Retry-After` floor.
    Full,
}

/// When and how often to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Backoff after the first failed attempt. Default 250 ms.
    pub initial_delay_ms: u64,
    /// Longest wait between attempts (backoff and `Retry-After` are capped
    /// here). Default 5,000 ms.
    pub delay_ms_max: u64,
    /// Attempts at most, the first one included (`0` is taken as `1`).
    /// Default 6.
    pub attempts_max: u32,
    /// Jitter. Default [`Jitter::None`].
    pub jitter: Jitter,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_delay_ms: 250,
            delay_ms_max: 5_000,
            attempts_max: 6,
            jitter: Jitter::None,
        }
    }
}

impl RetryPolicy {
    /// The trace writer's policy: 3 attempts, 1 s initial backoff, doubling.
    pub fn three_times_one_second() -> Self {
        RetryPolicy {
            initial_delay_ms: 1_000,
            delay_ms_max: 4_000,
            attempts_max: 3,
            jitter: Jitter::None,
        }
    }

    /// The backoff after failed attempt `n` (1-based), before jitter:
    /// `min(initial_delay_ms * 2^(n-1), delay_ms_max)`.
    pub fn backoff_ms(&self, n: u32) -> u64 {
        let shift = n.saturating_sub(1).min(63);
        self.initial_delay_ms
            .saturating_mul(1u64 << shift)
            .min(self.delay_ms_max)
    }
}

/// A 503 answer: the service is overloaded; retry after the hint, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceUnavailable {
    /// The parsed `Retry-After`, in ms from when it was received; `None`
    /// when the header was missing or unusable.
    pub retry_after_ms: Option<u64>,
}

impl std::fmt::Display for ServiceUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.retry_after_ms {
            Some(ms) => write!(f, "service unavailable (retry after {ms} ms)"),
            None => f.write_str("service unavailable (no retry hint)"),
        }
    }
}

impl std::error::Error for ServiceUnavailable {}

/// What one attempt can fail with: a 503 (retried) or anything else
/// (returned at once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError<E> {
    /// 503 Service Unavailable.
    Unavailable(ServiceUnavailable),
    /// Any other failure; never retried.
    Other(E),
}

impl<E> CallError<E> {
    /// Classifies an HTTP answer: status 503 is [`CallError::Unavailable`]
    /// with its `Retry-After` header value (if any) parsed by
    /// [`parse_retry_after`] against `now_ms` (an unusable value is no
    /// hint); any other status is [`CallError::Other`] carrying `error`.
    pub fn from_status(status: u16, retry_after: Option<&str>, now_ms: u64, error: E) -> Self {
        if status == 503 {
            CallError::Unavailable(ServiceUnavailable {
                retry_after_ms: retry_after.and_then(|v| parse_retry_after(v, now_ms)),
            })
        } else {
            CallError::Other(error)
        }
    }
}

/// Why [`retry`] gave up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryError<E> {
    /// Every one of `attempts` attempts answered 503.
    Exhausted {
        /// Attempts made (= `attempts_max`).
        attempts: u32,
        /// The last answer.
        last: ServiceUnavailable,
    },
    /// An attempt failed with a non-503 error (not retried).
    Failed {
        /// Attempts made, this one included.
        attempts: u32,
        /// The error, handed back.
        error: E,
    },
    /// The caller cancelled.
    Cancelled {
        /// Attempts started before the cancellation.
        attempts: u32,
    },
}

impl<E: std::fmt::Display> std::fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RetryError::Exhausted { attempts, last } => {
                write!(f, "gave up after {attempts} attempts: {last}")
            }
            RetryError::Failed { attempts, error } => {
                write!(f, "attempt {attempts} failed (not retried): {error}")
            }
            RetryError::Cancelled { attempts } => {
                write!(f, "cancelled after {attempts} attempts")
            }
        }
    }
}

impl<E: std::fmt::Debug + std::fmt::Display> std::error::Error for RetryError<E> {}

/// A deliberate bug in the retry loop, for proving the checks catch it.
/// Never use anything but [`RetryFlaw::None`] outside a test.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RetryFlaw {
    /// The correct loop.
    #[default]
    None,
    /// Retries every error, not only 503.
    RetriesAnyError,
    /// Ignores `Retry-After`.
    IgnoresRetryAfter,
    /// Makes one attempt more than `attempts_max`.
    OneAttemptTooMany,
    /// Never stops retrying 503s (no attempt limit).
    NoAttemptLimit,
    /// Waits between attempts without watching the cancel token: a cancel
    /// during the wait is not seen, and a wait that never ends hangs the
    /// caller.
    SleepIgnoresCancel,
}

/// A caller's backoff state: the policy and, for jitter, its seeded RNG.
#[derive(Clone, Debug)]
pub struct Backoff {
    policy: RetryPolicy,
    seed: u64,
    /// The jitter's RNG, seeded with `seed` at its first draw (a policy
    /// without jitter never pays for it).
    rng: Option<ChaCha8Rng>,
    flaw: RetryFlaw,
}

impl Backoff {
    /// Backoff per `policy`; `seed` seeds the jitter (unused without it).
    pub fn new(policy: RetryPolicy, seed: u64) -> Self {
        Self::new_flawed(policy, seed, RetryFlaw::None)
    }

    /// Backoff with a deliberate bug. Never use outside tests.
    #[doc(hidden)]
    pub fn new_flawed(policy: RetryPolicy, seed: u64, flaw: RetryFlaw) -> Self {
        Backoff {
            policy,
            seed,
            rng: None,
            flaw,
        }
    }

    /// The policy.
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// The wait after failed attempt `n` (1-based) that carried the hint
    /// `retry_after_ms`: never less than the hint (capped at
    /// `delay_ms_max`); without jitter `max(hint, backoff)`, with full
    /// jitter `min(hint + uniform(0..=backoff), delay_ms_max)`.
    pub fn delay_ms(&mut self, n: u32, retry_after_ms: Option<u64>) -> u64 {
        let p = self.policy;
        let hint = if self.flaw == RetryFlaw::IgnoresRetryAfter {
            None
        } else {
            retry_after_ms
        };
        let floor = hint.unwrap_or(0).min(p.delay_ms_max);
        let backoff = p.backoff_ms(n);
        match p.jitter {
            Jitter::None => floor.max(backoff),
            Jitter::Full => {
                let span = u128::from(backoff) + 1;
                let seed = self.seed;
                let rng = self
                    .rng
                    .get_or_insert_with(|| ChaCha8Rng::seed_from_u64(seed));
                let draw = ((u128::from(rng.next_u64()) * span) >> 64) as u64;
                floor.saturating_add(draw).min(p.delay_ms_max.max(floor))
            }
        }
    }
}

/// Runs `op` (given the 1-based attempt number) until it succeeds, fails
/// with a non-503 error, `attempts_max` attempts are used up, or `cancel`
/// fires. Waits between attempts per [`Backoff::delay_ms`] on `clock`.
///
/// # Errors
/// [`RetryError::Failed`] at once for any non-503 error;
/// [`RetryError::Exhausted`] after `attempts_max` 503s;
/// [`RetryError::Cancelled`] as soon as `cancel` fires (during an attempt
/// or a wait; the attempt in flight is dropped).
///
/// # Cancel safety
/// Cancel safe as far as the loop goes: dropping it drops the attempt in
/// flight (whose own cancel safety applies) and any pending wait.
pub async fn retry<T, E, F, Fut>(
    clock: &dyn Clock,
    backoff: &mut Backoff,
    cancel: &CancelToken,
    mut op: F,
) -> Result<T, RetryError<E>>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, CallError<E>>>,
{
    let p = backoff.policy;
    let attempts_max = match backoff.flaw {
        RetryFlaw::OneAttemptTooMany => p.attempts_max.saturating_add(1),
        RetryFlaw::NoAttemptLimit => u32::MAX,
        _ => p.attempts_max,
    }
    .max(1);
    let mut attempt = 0u32;
    loop {
        if cancel.is_cancelled() {
            return Err(RetryError::Cancelled { attempts: attempt });
        }
        attempt += 1;
        let answer = match cancel.race(op(attempt)).await {
            Ok(a) => a,
            Err(Cancelled) => return Err(RetryError::Cancelled { attempts: attempt }),
        };
        let unavailable = match answer {
            Ok(v) => return Ok(v),
            Err(CallError::Unavailable(u)) => u,
            Err(CallError::Other(error)) if backoff.flaw != RetryFlaw::RetriesAnyError => {
                return Err(RetryError::Failed {
                    attempts: attempt,
                    error,
                })
            }
            Err(CallError::Other(_)) => ServiceUnavailable {
                retry_after_ms: None,
            },
        };
        if attempt >= attempts_max {
            return Err(RetryError::Exhausted {
                attempts: attempt,
                last: unavailable,
            });
        }
        let wait_ms = backoff.delay_ms(attempt, unavailable.retry_after_ms);
        let sleep = clock.sleep(Duration::from_millis(wait_ms));
        if backoff.flaw == RetryFlaw::SleepIgnoresCancel {
            sleep.await;
        } else if cancel.race(sleep).await.is_err() {
            return Err(RetryError::Cancelled { attempts: attempt });
        }
    }
}
