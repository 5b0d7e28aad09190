//! `toy-rmw`: the smallest race there is. Tasks increment a shared counter
//! with a read, an await and a write; without a gate around the
//! read-modify-write two of them read the same value and one update is lost.
//! It exists to show (and test) the harness itself: every real scenario is
//! run, replayed and shrunk the same way.

use crate::scenario::{Scenario, ScenarioError};
use faultline::probe::FaultKind;
use faultline::sim::{oracle_failed, Outcome, Sim, SimConfig};
use faultline::sync::{Arc, Gate, Mutex};

const VARIANTS: &[&str] = &["pre-fix", "fixed"];

/// The lost-update toy.
#[derive(Clone, Debug)]
pub struct ToyRmw {
    /// Tasks that each increment the counter once. Default 2.
    pub tasks: u32,
}

impl Default for ToyRmw {
    fn default() -> Self {
        ToyRmw { tasks: 2 }
    }
}

impl ToyRmw {
    /// A toy with `tasks` incrementing tasks.
    pub fn new(tasks: u32) -> Self {
        ToyRmw { tasks }
    }
}

impl Scenario for ToyRmw {
    fn name(&self) -> &'static str {
        "toy-rmw"
    }

    fn about(&self) -> &'static str {
        "tasks increment a counter across an await; pre-fix loses an update, fixed holds a Gate"
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

    fn run(&self, variant: &str, cfg: SimConfig) -> Result<Outcome, ScenarioError> {
        self.check_variant(variant)?;
        Ok(run_toy(self.tasks, variant == "fixed", cfg))
    }
}

/// One run: `tasks` incrementers, gated or not; the oracle is that the
/// counter ends at `tasks`.
fn run_toy(tasks: u32, gated: bool, cfg: SimConfig) -> Outcome {
    let sim = Sim::new(cfg);
    let h = sim.main_handle();
    sim.run(async move {
        let counter = Arc::new(Mutex::new(0u32));
        let gate = Arc::new(Gate::new(()));
        let mut joins = Vec::new();
        for _ in 0..tasks {
            let (counter, gate) = (Arc::clone(&counter), Arc::clone(&gate));
            joins.push(h.spawn_on("incr", async move {
                let _held = if gated { Some(gate.lock().await) } else { None };
                let v = counter.with(|c| *c);
                h.yield_now().await;
                counter.with(|c| *c = v + 1);
            }));
        }
        for j in joins {
            if j.await.is_err() {
                return;
            }
        }
        let v = counter.with(|c| *c);
        if v != tasks {
            oracle_failed(
                "lost-update",
                format!("lost update: counter is {v}, expected {tasks}"),
            );
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            ..Default::default()
        }
    }

    #[test]
    fn unknown_variant_is_a_typed_error() {
        let err = ToyRmw::default().run("nope", seeded(0)).unwrap_err();
        assert!(matches!(err, ScenarioError::UnknownVariant { .. }), "{err}");
    }

    #[test]
    fn pre_fix_loses_an_update_and_fixed_does_not() {
        let toy = ToyRmw::new(3);
        let caught = (0..200).any(|s| !toy.run("pre-fix", seeded(s)).unwrap().passed());
        assert!(caught, "200 seeds never lost an update");
        for s in 0..200 {
            let out = toy.run("fixed", seeded(s)).unwrap();
            assert!(out.passed(), "seed {s}: {:?}", out.failure);
        }
    }
}
