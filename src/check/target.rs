//! [`Target`]: what a check runs, one simulated run per call: a test body
//! ([`BodyTarget`]) or, in `faultline-sims`, a scenario's variant. Sweeps,
//! strict replay and shrinking take any target, so a user's test and a
//! built-in scenario go through the same code.

use super::policy::PolicySpec;
use super::world::World;
use crate::sim::{Boot, FaultPlan, NodeConfig, Outcome, Sim, SimConfig, SimHandle};
use std::future::Future;

/// A target's name, as replay files and reports give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetId {
    /// The test's name (its path in the test binary, as `cargo test` shows
    /// it), or a scenario's name.
    pub name: String,
    /// A scenario's variant; empty for a test.
    pub variant: String,
}

impl std::fmt::Display for TargetId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.variant.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{} --variant {}", self.name, self.variant)
        }
    }
}

/// Something a check runs: one deterministic simulated run per call.
pub trait Target {
    /// The target's name.
    fn id(&self) -> TargetId;

    /// The configuration of `seed`'s run under `policy`: its fault plan,
    /// memory limit, limits, ... (the policy and seed included).
    fn config(&self, seed: u64, policy: PolicySpec) -> SimConfig;

    /// Runs once under `cfg` and reports what happened.
    fn run(&self, cfg: SimConfig) -> Outcome;
}

/// A node's boot function, shareable across the threads of a parallel
/// sweep (each run makes its own [`Boot`] of it).
pub type SharedBoot = crate::sync::DynArc<dyn Fn(SimHandle) + Send + Sync>;

/// How a test body's runs are set up (everything but the seed and the
/// policy).
#[derive(Clone, Default)]
pub struct BodySetup {
    /// The simulator's base configuration (its seed and policy are set per
    /// run).
    pub base: SimConfig,
    /// Per-seed swarm faults: the kinds and horizon; `None` runs
    /// `base.faults` on every seed.
    pub swarm: Option<(Vec<crate::probe::FaultKind>, u64)>,
    /// Nodes that exist from the start of every run (the fault plan's
    /// crashes, pauses and clock jumps strike the faulty ones), with the
    /// function that boots each (again after every restart).
    pub nodes: Vec<(String, NodeConfig, Option<SharedBoot>)>,
}

impl std::fmt::Debug for BodySetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nodes: Vec<&str> = self.nodes.iter().map(|n| n.0.as_str()).collect();
        f.debug_struct("BodySetup")
            .field("base", &self.base)
            .field("swarm", &self.swarm)
            .field("nodes", &nodes)
            .finish()
    }
}

/// A test body as a [`Target`]: `body(world)` is the run's main task.
pub struct BodyTarget<F> {
    name: String,
    setup: BodySetup,
    body: F,
}

impl<F, Fut> BodyTarget<F>
where
    F: Fn(World) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    /// The body `body`, called `name`, set up by `setup`.
    pub fn new(name: impl Into<String>, setup: BodySetup, body: F) -> Self {
        BodyTarget {
            name: name.into(),
            setup,
            body,
        }
    }
}

impl<F, Fut> Target for BodyTarget<F>
where
    F: Fn(World) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn id(&self) -> TargetId {
        TargetId {
            name: self.name.clone(),
            variant: String::new(),
        }
    }

    fn config(&self, seed: u64, policy: PolicySpec) -> SimConfig {
        let faults = match &self.setup.swarm {
            Some((kinds, horizon_ns)) => FaultPlan::swarm(seed, kinds, *horizon_ns),
            None => self.setup.base.faults.clone(),
        };
        SimConfig {
            seed,
            policy: policy.kind(),
            faults,
            ..self.setup.base.clone()
        }
    }

    fn run(&self, cfg: SimConfig) -> Outcome {
        let mut sim = Sim::new(cfg);
        for (name, node_cfg, boot) in &self.setup.nodes {
            let boot = boot
                .clone()
                .map(|b| -> Boot { std::rc::Rc::new(move |h| b(h)) });
            sim.add_node(name, node_cfg.clone(), boot);
        }
        let world = World::new(sim.main_handle());
        let main = (self.body)(world);
        sim.run(main)
    }
}
