//! The scenarios, one file each. Register a new one in
//! [`crate::registry`].

pub mod append_retention;
pub mod asset;
pub mod load_keys;
pub mod pool_subscribe;
pub mod retry_conformance;
pub mod retry_storm;
pub mod socket_pileup;
pub mod spend_flush;
pub mod spend_oracle;
pub mod subtree_load;
pub mod subtree_oom;
pub mod toy_rmw;
pub mod trace_common;
pub mod trace_saturation;

use faultline::sim::Failure;

/// One failure of every violation an oracle pass found: their tags joined
/// by `+` (so each counts as fired), their messages by `; `. `None` when
/// there is none.
pub(crate) fn violations_failure(violations: &[(&'static str, String)]) -> Option<Failure> {
    if violations.is_empty() {
        return None;
    }
    let mut tags: Vec<&str> = violations.iter().map(|v| v.0).collect();
    tags.dedup();
    let msgs: Vec<&str> = violations.iter().map(|v| v.1.as_str()).collect();
    Some(Failure::invariant(&tags.join("+"), msgs.join("; ")))
}

/// Fails the running simulation with every violation (see
/// [`violations_failure`]); a no-op when there is none.
pub(crate) fn fail_violations(violations: &[(&'static str, String)]) {
    if let Some(Failure::Invariant { oracle, message }) = violations_failure(violations) {
        faultline::sim::oracle_failed(&oracle, message);
    }
}
