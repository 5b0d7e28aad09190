//! The code under test's `tracing` events become story lines of the
//! simulated run's log: virtual time, task and node, fields; not hashed
//! (the trace hash of a run does not depend on them); and they reach no
//! other subscriber of the thread while the run lasts.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::sim::{LineKind, NodeConfig, Outcome, Sim, SimConfig};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Two tasks on node "svc"; the worker sleeps 5 ms, then (when `story`)
/// logs one event.
fn run(keep_log: bool, story: bool) -> Outcome {
    let mut sim = Sim::new(SimConfig {
        seed: 3,
        keep_log,
        ..Default::default()
    });
    let svc = sim.add_node("svc", NodeConfig::default(), None);
    let main = sim.main_handle();
    sim.run(async move {
        let w = svc.spawn_on("worker", async move {
            svc.sleep(Duration::from_millis(5)).await;
            if story {
                tracing::info!(seg = 3, "retention rolled segment {} to {}", 3, 4);
            }
            tracing::trace!("below the recorded level");
        });
        main.sleep(Duration::from_millis(1)).await;
        w.await.expect("worker");
    })
}

#[test]
fn an_event_becomes_a_story_line_with_virtual_time_task_and_node() {
    let out = run(true, true);
    assert!(out.passed(), "{:?}", out.failure);
    let stories: Vec<_> = out
        .trace_log
        .lines
        .iter()
        .filter(|l| l.kind == LineKind::Story)
        .collect();
    assert_eq!(stories.len(), 1, "{:#?}", out.log);
    let s = stories[0];
    assert_eq!(s.text, "retention rolled segment 3 to 4");
    assert_eq!(s.fields, vec![("seg", "3".to_string())]);
    assert_eq!(s.level, "INFO");
    // After the 5 ms sleep, in virtual time since the start.
    assert!((5_000_000..6_000_000).contains(&s.time_ns), "{}", s.time_ns);
    let task = s.task.expect("logged by a task");
    assert_eq!(out.trace_log.tasks[&task].name, "worker");
    assert_eq!(out.trace_log.node_name(s.node.expect("a node")), "svc");
    let line = out
        .log
        .iter()
        .find(|l| l.contains("retention rolled"))
        .expect("in the plain log");
    assert!(
        line.contains("'worker' on svc") && line.contains("seg=3"),
        "{line}"
    );
}

#[test]
fn story_lines_are_not_hashed() {
    let with = run(true, true);
    let without = run(true, false);
    let unlogged = run(false, true);
    assert_eq!(with.trace_hash, without.trace_hash);
    assert_eq!(with.trace_hash, unlogged.trace_hash);
    assert_eq!(with.trace_events, without.trace_events);
    assert!(unlogged.log.is_empty() && unlogged.trace_log.lines.is_empty());
}

/// A subscriber of the thread's own (a test's, an application's) sees none
/// of a simulated run's events, and sees its own again after the run.
#[test]
fn the_run_owns_the_thread_while_it_lasts() {
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<String>>>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Seen {
        fn on_event(
            &self,
            e: &tracing::Event<'_>,
            _ctx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            self.0
                .lock()
                .unwrap()
                .push(e.metadata().target().to_string());
        }
    }
    use tracing_subscriber::layer::SubscriberExt as _;
    let seen = Seen::default();
    let subscriber = tracing_subscriber::registry().with(seen.clone());
    tracing::subscriber::with_default(subscriber, || {
        for keep_log in [false, true] {
            let out = run(keep_log, true);
            assert!(out.passed());
        }
        assert!(seen.0.lock().unwrap().is_empty(), "{:?}", seen.0);
        tracing::info!("after the run");
        assert_eq!(seen.0.lock().unwrap().len(), 1);
    });
}
