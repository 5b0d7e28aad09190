//! The retry conformance spec callers of the asset service are judged by,
//! written apart from the retry helper's configuration: its constants are
//! the incident's words ("exponential backoff (250ms -> 5s, max 6
//! attempts), honors Retry-After header, retries only on 503"), never read
//! from `RetryPolicy::default()`, so a helper whose defaults drift is
//! caught rather than followed.
//!
//! One request's attempts are logged as they happen ([`CallLog`]); each new
//! attempt is checked against the answer before it:
//!
//! * `retry-attempts`: at most [`ATTEMPTS_MAX`] attempts per request;
//! * `retry-non-503`: an attempt after any answer other than 503;
//! * `retry-delay`: the wait before a retry outside
//!   [`DELAY_MS_MIN`]..=[`DELAY_MS_MAX`];
//! * `retry-after-ignored`: a retry sooner than the previous 503's
//!   `Retry-After` (capped at [`DELAY_MS_MAX`]).

/// Attempts per request at most, the first included.
pub const ATTEMPTS_MAX: u32 = 6;
/// The shortest wait before a retry, ms.
pub const DELAY_MS_MIN: u64 = 250;
/// The longest wait before a retry, ms.
pub const DELAY_MS_MAX: u64 = 5_000;
/// The only status that may be retried.
pub const RETRIABLE_STATUS: u16 = 503;

/// The oracle tags the spec fires, as `Failure::oracle` names them.
pub const ORACLES: &[&str] = &[
    "invariant:retry-attempts",
    "invariant:retry-non-503",
    "invariant:retry-delay",
    "invariant:retry-after-ignored",
];

/// One request's attempts so far.
#[derive(Clone, Debug, Default)]
pub struct CallLog {
    attempts: u32,
    /// The last answer: when (virtual ns), its status, its `Retry-After`.
    last: Option<(u64, u16, Option<u64>)>,
}

impl CallLog {
    /// Logs the start of an attempt at `now_ns` and returns what the spec
    /// says of it: `(oracle tag, message)` for each rule it breaks.
    pub fn attempt(&mut self, now_ns: u64) -> Vec<(&'static str, String)> {
        self.attempts += 1;
        let mut out = Vec::new();
        if self.attempts > ATTEMPTS_MAX {
            out.push((
                "retry-attempts",
                format!("attempt {} > {ATTEMPTS_MAX} per request", self.attempts),
            ));
        }
        let Some((at_ns, status, retry_after_ms)) = self.last else {
            return out;
        };
        if status != RETRIABLE_STATUS {
            out.push((
                "retry-non-503",
                format!("a retry after a {status} (only {RETRIABLE_STATUS} may be retried)"),
            ));
        }
        let waited_ms = now_ns.saturating_sub(at_ns) / 1_000_000;
        if !(DELAY_MS_MIN..=DELAY_MS_MAX).contains(&waited_ms) {
            out.push((
                "retry-delay",
                format!("a retry after {waited_ms} ms (spec: {DELAY_MS_MIN}..={DELAY_MS_MAX} ms)"),
            ));
        }
        if let Some(hint) = retry_after_ms.map(|h| h.min(DELAY_MS_MAX)) {
            if waited_ms < hint {
                out.push((
                    "retry-after-ignored",
                    format!(
                        "a retry after {waited_ms} ms, before the 503's Retry-After of {hint} ms"
                    ),
                ));
            }
        }
        out
    }

    /// Logs the answer to the attempt in flight: `status` at `now_ns`,
    /// with the `Retry-After` it carried (ms, parsed).
    pub fn answer(&mut self, now_ns: u64, status: u16, retry_after_ms: Option<u64>) {
        self.last = Some((now_ns, status, retry_after_ms));
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn the_incident_policy_conforms() {
        let mut log = CallLog::default();
        let mut t = 0;
        for delay_ms in [1_000, 1_000, 1_000, 2_000, 4_000] {
            assert!(log.attempt(t).is_empty());
            log.answer(t + MS, 503, Some(1_000));
            t += MS + delay_ms * MS;
        }
        assert!(log.attempt(t).is_empty());
        assert_eq!(log.attempts(), 6);
    }

    #[test]
    fn each_rule_fires_on_its_own() {
        let tags = |log: &mut CallLog, t| -> Vec<&str> {
            log.attempt(t).into_iter().map(|(tag, _)| tag).collect()
        };
        let mut log = CallLog::default();
        log.attempt(0);
        log.answer(0, 500, None);
        assert_eq!(tags(&mut log, 300 * MS), ["retry-non-503"]);
        log.answer(300 * MS, 503, Some(1_000));
        assert_eq!(tags(&mut log, 550 * MS), ["retry-after-ignored"]);
        log.answer(550 * MS, 503, None);
        assert_eq!(tags(&mut log, 600 * MS), ["retry-delay"]);
        log.answer(600 * MS, 503, Some(60_000));
        assert_eq!(tags(&mut log, 5_601 * MS), ["retry-delay"]);
        log.answer(5_601 * MS, 503, None);
        assert!(tags(&mut log, 6_000 * MS).is_empty());
        log.answer(6_000 * MS, 503, None);
        assert_eq!(tags(&mut log, 7_000 * MS), ["retry-attempts"]);
    }
}
