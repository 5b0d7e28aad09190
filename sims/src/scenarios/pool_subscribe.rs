//! `pool-subscribe`: the connection pool of `examples/pool-halffix` (issue
//! 20), run by its own test body ([`pool_halffix::workload::subscribers`]:
//! six subscribers, three rounds each, a limit of 3 connections; the
//! oracle `invariant:over-limit`).
//!
//! * `pre-fix` checks for free capacity, awaits the connect, then pushes:
//!   found in the default mode.
//! * `half-fix` connects, then checks and pushes in two critical sections
//!   with no `.await` between them. The default mode never interleaves
//!   them (one task runs from one `.await` to the next), so only
//!   sync-switch mode finds it: its [`Bug::sync_switch`] says so, the
//!   explorer sweeps it in that mode and checks that the default mode
//!   misses it.
//! * `fixed` reserves a slot under the lock; it must hold in both modes.

use crate::scenario::{Bug, Origin, RowKind, Scenario, ScenarioError};
use faultline::check::{BodySetup, BodyTarget, Target};
use faultline::probe::FaultKind;
use faultline::sim::{Outcome, SimConfig};
use pool_halffix::workload::{subscribers, Shape};
use pool_halffix::Variant;

const VARIANTS: &[&str] = &["pre-fix", "half-fix", "fixed"];

/// The oracle of both bugs.
const ORACLES: &[&str] = &["invariant:over-limit"];

/// The pool's subscribe race, pre-fix, half-fixed and fixed.
#[derive(Clone, Copy, Debug, Default)]
pub struct PoolSubscribe;

impl Scenario for PoolSubscribe {
    fn name(&self) -> &'static str {
        "pool-subscribe"
    }

    fn about(&self) -> &'static str {
        "subscribers share a pool of 3 connections; pre-fix checks, awaits the connect, pushes; \
         half-fix checks and pushes in two sections with no await between (only sync-switch \
         mode interleaves them); fixed reserves a slot before the connect"
    }

    fn variants(&self) -> &'static [&'static str] {
        VARIANTS
    }

    fn fault_kinds(&self) -> &'static [FaultKind] {
        &[]
    }

    fn node_faults(&self) -> bool {
        false
    }

    fn bug(&self, variant: &str) -> Option<Bug> {
        match variant {
            "pre-fix" => Some(Bug {
                key: "pool-pre-fix",
                title: "every subscriber that checked before the first push gets in: the pool \
                        goes past its limit",
                oracles: ORACLES,
                kind: RowKind::Schedule,
                origin: Origin::Historical,
                sync_switch: false,
            }),
            "half-fix" => Some(Bug {
                key: "pool-half-fix",
                title: "the first fix checks and pushes in two critical sections with no await \
                        between: another worker thread runs in the gap and the pool goes past \
                        its limit",
                oracles: ORACLES,
                kind: RowKind::Schedule,
                origin: Origin::Hypothesized,
                sync_switch: true,
            }),
            _ => None,
        }
    }

    fn run(&self, variant: &str, cfg: SimConfig) -> Result<Outcome, ScenarioError> {
        self.check_variant(variant)?;
        let v = match variant {
            "pre-fix" => Variant::PreFix,
            "half-fix" => Variant::HalfFix,
            _ => Variant::Fixed,
        };
        let body = BodyTarget::new(self.name(), BodySetup::default(), move |w| {
            subscribers(w, v, Shape::FULL)
        });
        Ok(body.run(cfg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{config_in, PolicySpec};

    fn first_failure(variant: &str, sync_switch: bool, seeds: u64) -> Option<u64> {
        let s = PoolSubscribe;
        (0..seeds).find(|&seed| {
            let cfg = config_in(&s, variant, seed, PolicySpec::Random, sync_switch);
            let out = s.run(variant, cfg).expect("a variant of its own");
            match &out.failure {
                None => false,
                Some(f) => {
                    assert!(f.fired("invariant:over-limit"), "{f}");
                    true
                }
            }
        })
    }

    #[test]
    fn only_sync_switch_mode_finds_the_half_fix() {
        assert_eq!(first_failure("half-fix", false, 300), None);
        assert!(first_failure("half-fix", true, 300).is_some());
        assert!(first_failure("pre-fix", false, 300).is_some());
        assert_eq!(first_failure("fixed", true, 300), None);
    }
}
