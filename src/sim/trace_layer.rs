//! The code under test's `tracing` events, into the run's trace.
//!
//! While a [`Sim`](super::Sim) lives, this thread's default `tracing`
//! dispatcher is a small subscriber that turns every event at `DEBUG` or
//! above into a *story line* of the run's log: stamped with virtual time,
//! the running task and its node, never with wall-clock time or colour.
//! It is a thread-local default (`tracing::dispatcher::set_default`), so a
//! sweep's runs on other threads never mix, and the process's global
//! subscriber (e.g. the CLI's stderr logger) sees nothing of a simulated
//! run. Outside a simulation (tests on tokio) nothing changes.
//!
//! Story lines are log lines, not events: they are not hashed, so adding an
//! event to a service changes no trace hash and no replay file. When the run
//! keeps no log (`SimConfig::keep_log` false, every sweep) the subscriber
//! answers "disabled" to every callsite it is asked about: the event's fields
//! are never evaluated or formatted and nothing is allocated.
//! Spans are not recorded.

use super::context;
use super::trace::Story;
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};

/// The most verbose level recorded.
const LEVEL_MAX: Level = Level::DEBUG;

/// The subscriber a simulation installs on its thread.
struct SimSubscriber;

impl Subscriber for SimSubscriber {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if meta.is_event() && *meta.level() <= LEVEL_MAX {
            // Whether a run keeps a log changes from run to run: ask
            // `enabled` each time.
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        meta.is_event()
            && *meta.level() <= LEVEL_MAX
            && context::with_shared(|s| s.keeps_log()).unwrap_or(false)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::DEBUG)
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        // Spans are disabled (`enabled` is false for them); an id is still
        // owed if one is ever created.
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        // Take the event apart before borrowing the trace: a field's Debug
        // may itself reach the simulator.
        let mut fields = Fields::default();
        event.record(&mut fields);
        let story = Story {
            level: meta.level().as_str(),
            target: meta.target(),
            message: fields.message,
            fields: fields.rest,
        };
        context::with_shared(|s| s.story(story));
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

/// An event's message and other fields, formatted.
#[derive(Default)]
struct Fields {
    message: String,
    rest: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, text: String) {
        if field.name() == "message" {
            self.message = text;
        } else {
            self.rest.push((field.name(), text));
        }
    }
}

thread_local! {
    /// One dispatcher per thread, made once: making a `Dispatch` registers
    /// it with every callsite, too slow to do per run.
    static DISPATCH: Dispatch = Dispatch::new(SimSubscriber);
}

/// Makes the simulation's subscriber this thread's default `tracing`
/// dispatcher until the guard is dropped.
pub(crate) fn install() -> tracing::dispatcher::DefaultGuard {
    DISPATCH.with(tracing::dispatcher::set_default)
}
