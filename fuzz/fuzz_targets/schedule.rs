//! The fuzzer's bytes are the simulator's decisions (which task runs next,
//! every fault coin, every draw) for a scenario chosen by the first byte.
//! Runs the `fixed` variants unless FAULTLINE_FUZZ_VARIANT names another
//! (e.g. `pre-fix`, to watch it find the race); FAULTLINE_FUZZ_SCENARIO pins
//! one scenario. A failing oracle writes a replay file under
//! `artifacts/schedule-replays/` and crashes with the report.
#![no_main]

use faultline_sims::{find, registry, Scenario};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

struct Setup {
    scenarios: Vec<Box<dyn Scenario>>,
    variant: String,
}

fn setup() -> Setup {
    let variant = std::env::var("FAULTLINE_FUZZ_VARIANT").unwrap_or_else(|_| "fixed".into());
    let scenarios = match std::env::var("FAULTLINE_FUZZ_SCENARIO") {
        Ok(name) => vec![find(&name).unwrap_or_else(|e| panic!("{e}"))],
        Err(_) => registry(),
    };
    Setup { scenarios, variant }
}

thread_local! {
    static SETUP: Setup = setup();
}

fuzz_target!(|data: &[u8]| {
    let dir = Path::new("artifacts/schedule-replays");
    SETUP.with(|s| {
        if let Some((_, report)) =
            faultline_sims::fuzz::schedule_failure(&s.scenarios, &s.variant, data, dir)
        {
            panic!("{report}");
        }
    });
});
