//! The fault plan: which faults are on in a run and how often, drawn per
//! seed in swarm style (each seed switches a different subset on), so a
//! sweep covers both "one fault, often" and "many faults, rarely".

use crate::probe::FaultKind;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::random::below;

/// Which faults strike in a run, and how often.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// Per fault kind, the chance (per million) that a fault point of that
    /// kind strikes when reached; absent = off.
    pub point_ppm: BTreeMap<FaultKind, u32>,
    /// Node crashes (each followed by a restart after `downtime_ns`).
    pub crashes: u32,
    /// How long a crashed node stays down. Default 0: restart at once.
    pub downtime_ns: u64,
    /// Node pauses (GC-like stalls).
    pub pauses: u32,
    /// Longest pause.
    pub pause_ns_max: u64,
    /// Clock jumps (skew changes) on a node.
    pub clock_jumps: u32,
    /// Largest jump, either way.
    pub jump_ns_max: u64,
    /// Node faults are scheduled at times drawn in `0..horizon_ns` from the
    /// run's start.
    pub horizon_ns: u64,
}

/// Node faults of each kind a plan may hold at most.
pub const NODE_FAULTS_MAX: u64 = 10_000;
/// A fault's horizon, downtime, pause or clock jump at most: 30 days.
pub const FAULT_NS_MAX: u64 = 30 * 86_400 * 1_000_000_000;

/// Rates a swarm plan chooses from, per million.
const RATES_PPM: [u32; 3] = [5_000, 50_000, 200_000];

impl FaultPlan {
    /// No faults at all.
    pub fn none() -> Self {
        FaultPlan::default()
    }

    /// A swarm plan for `seed`: every point-fault kind in `kinds` and every
    /// node fault is on with probability 1/2, at a rate drawn per seed.
    /// Drawn from its own stream, so the plan does not shift the schedule.
    pub fn swarm(seed: u64, kinds: &[FaultKind], horizon_ns: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5357_4152_4d5f_504c);
        let on = |rng: &mut ChaCha8Rng| below(rng, 2) == 1;
        let mut plan = FaultPlan {
            horizon_ns,
            ..Default::default()
        };
        for &k in kinds {
            if on(&mut rng) {
                let rate = RATES_PPM[below(&mut rng, RATES_PPM.len() as u64) as usize];
                plan.point_ppm.insert(k, rate);
            }
        }
        if on(&mut rng) {
            plan.crashes = 1 + below(&mut rng, 2) as u32;
            plan.downtime_ns = below(&mut rng, horizon_ns / 10 + 1);
        }
        if on(&mut rng) {
            plan.pauses = 1 + below(&mut rng, 3) as u32;
            plan.pause_ns_max = horizon_ns / 5 + 1;
        }
        if on(&mut rng) {
            plan.clock_jumps = 1 + below(&mut rng, 2) as u32;
            plan.jump_ns_max = horizon_ns / 10 + 1;
        }
        plan
    }

    /// Checks every count and duration is within its bound (a plan read
    /// from a file must not run without bound).
    ///
    /// # Errors
    /// A message naming the first value out of bounds.
    pub fn validate(&self) -> Result<(), String> {
        let over = |name: &str, v: u64, max: u64| {
            (v > max).then(|| format!("faults.{name} = {v} is above its bound {max}"))
        };
        let checks = [
            over("crashes", u64::from(self.crashes), NODE_FAULTS_MAX),
            over("pauses", u64::from(self.pauses), NODE_FAULTS_MAX),
            over("clock_jumps", u64::from(self.clock_jumps), NODE_FAULTS_MAX),
            over("horizon_ns", self.horizon_ns, FAULT_NS_MAX),
            over("downtime_ns", self.downtime_ns, FAULT_NS_MAX),
            over("pause_ns_max", self.pause_ns_max, FAULT_NS_MAX),
            over("jump_ns_max", self.jump_ns_max, FAULT_NS_MAX),
        ];
        if let Some(e) = checks.into_iter().flatten().next() {
            return Err(e);
        }
        match self.point_ppm.iter().find(|(_, &p)| p > 1_000_000) {
            Some((k, p)) => Err(format!("faults.point_ppm[{k:?}] = {p} is above 1000000")),
            None => Ok(()),
        }
    }

    /// Whether the plan injects nothing.
    pub fn is_none(&self) -> bool {
        self.point_ppm.is_empty() && self.crashes == 0 && self.pauses == 0 && self.clock_jumps == 0
    }
}

impl std::fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_none() {
            return f.write_str("faults: none");
        }
        f.write_str("faults:")?;
        for (k, ppm) in &self.point_ppm {
            write!(f, " {k:?} {:.1}%", f64::from(*ppm) / 10_000.0)?;
        }
        if self.crashes > 0 {
            write!(
                f,
                " crashes {} (down {} ms)",
                self.crashes,
                self.downtime_ns / 1_000_000
            )?;
        }
        if self.pauses > 0 {
            write!(
                f,
                " pauses {} (<= {} ms)",
                self.pauses,
                self.pause_ns_max / 1_000_000
            )?;
        }
        if self.clock_jumps > 0 {
            write!(
                f,
                " clock-jumps {} (<= {} ms)",
                self.clock_jumps,
                self.jump_ns_max / 1_000_000
            )?;
        }
        Ok(())
    }
}
