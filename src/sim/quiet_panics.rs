//! Panics inside a simulated run are findings, not noise: while a `Sim` is
//! alive on a thread, the panic hook stays quiet there and remembers where
//! the panic happened, for the failure report.

use crate::sync::ProcessOnce;
use std::cell::{Cell, RefCell};

thread_local! {
    static IN_SIM: Cell<bool> = const { Cell::new(false) };
    static LAST_SITE: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: ProcessOnce = ProcessOnce::new();

/// Installs the process-wide hook once and marks this thread as simulating.
pub(crate) fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_SIM.with(Cell::get) {
                let site = info.location().map(|l| l.to_string());
                LAST_SITE.with(|s| *s.borrow_mut() = site);
            } else {
                previous(info);
            }
        }));
    });
    IN_SIM.with(|f| f.set(true));
}

pub(crate) fn leave_sim() {
    IN_SIM.with(|f| f.set(false));
}

/// The panic's message, with its source location when known.
pub(crate) fn message(payload: &Box<dyn std::any::Any + Send>) -> String {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    };
    match LAST_SITE.with(|s| s.borrow_mut().take()) {
        Some(site) => format!("{text} (at {site})"),
        None => text,
    }
}
