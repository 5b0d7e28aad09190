//! [`CancelToken`]: a caller's "stop now", observable while waiting.

use crate::sync::{Arc, Mutex};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::{Poll, Waker};

/// The answer of a future raced against a fired [`CancelToken`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cancelled")
    }
}

impl std::error::Error for Cancelled {}

#[derive(Default)]
struct State {
    cancelled: bool,
    next_id: u64,
    /// One waker per waiting race, by id, in id order (a race registers
    /// when it takes its id, and a spurious re-poll refreshes its entry
    /// instead of adding one).
    waiters: Vec<(u64, Waker)>,
}

impl State {
    /// Registers (or refreshes) the waker of race `id`, giving it an id
    /// first if it has none; `false` when the token has fired.
    fn wait(&mut self, id: &mut Option<u64>, waker: &Waker) -> bool {
        if self.cancelled {
            return false;
        }
        let key = *id.get_or_insert_with(|| {
            self.next_id += 1;
            self.next_id
        });
        match self.waiters.iter_mut().find(|(k, _)| *k == key) {
            Some((_, w)) if w.will_wake(waker) => {}
            Some((_, w)) => w.clone_from(waker),
            None => self.waiters.push((key, waker.clone())),
        }
        true
    }
}

/// A cancellation signal shared by clones; firing it wakes every waiter.
#[derive(Clone, Default)]
pub struct CancelToken {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelToken {
    /// A token not yet fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the token (idempotent).
    pub fn cancel(&self) {
        let wakers = self.state.with(|s| {
            s.cancelled = true;
            std::mem::take(&mut s.waiters)
        });
        wakers.into_iter().for_each(|(_, w)| w.wake());
    }

    /// Whether the token fired.
    pub fn is_cancelled(&self) -> bool {
        self.state.with(|s| s.cancelled)
    }

    /// Runs `fut` until it completes or the token fires (then `fut` is
    /// dropped).
    ///
    /// # Errors
    /// [`Cancelled`] when the token fired first.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the race drops `fut` and its registration.
    pub async fn race<F: Future>(&self, fut: F) -> Result<F::Output, Cancelled> {
        let mut fut = pin!(fut);
        // Declared after `fut`, so dropped before it: the registration goes
        // first, then the future.
        let mut waiting = Waiting {
            token: self,
            id: None,
        };
        poll_fn(|cx| {
            if !waiting
                .token
                .state
                .with(|s| s.wait(&mut waiting.id, cx.waker()))
            {
                return Poll::Ready(Err(Cancelled));
            }
            fut.as_mut().poll(cx).map(Ok)
        })
        .await
    }
}

/// A race's registration with its token, removed on drop.
struct Waiting<'a> {
    token: &'a CancelToken,
    id: Option<u64>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.token
                .state
                .with(|s| s.waiters.retain(|(k, _)| *k != id));
        }
    }
}
