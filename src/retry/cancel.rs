//! [`CancelToken`]: a caller's "stop now", observable while waiting.

use crate::sync::{Arc, Mutex};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

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
    /// One waker per waiting race, by id (a spurious re-poll refreshes its
    /// entry instead of adding one).
    waiters: BTreeMap<u64, Waker>,
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
        let wakers: Vec<Waker> = self.state.with(|s| {
            s.cancelled = true;
            std::mem::take(&mut s.waiters).into_values().collect()
        });
        wakers.into_iter().for_each(Waker::wake);
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
    pub fn race<F: Future>(&self, fut: F) -> Race<'_, F> {
        Race {
            token: self,
            fut: Box::pin(fut),
            id: None,
        }
    }
}

/// The future of [`CancelToken::race`].
#[must_use = "futures do nothing unless polled"]
pub struct Race<'a, F> {
    token: &'a CancelToken,
    fut: Pin<Box<F>>,
    id: Option<u64>,
}

impl<F: Future> Future for Race<'_, F> {
    type Output = Result<F::Output, Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut id = this.id;
        let fired = this.token.state.with(|s| {
            if s.cancelled {
                return true;
            }
            let key = *id.get_or_insert_with(|| {
                s.next_id += 1;
                s.next_id
            });
            s.waiters.insert(key, cx.waker().clone());
            false
        });
        this.id = id;
        if fired {
            return Poll::Ready(Err(Cancelled));
        }
        this.fut.as_mut().poll(cx).map(Ok)
    }
}

impl<F> Drop for Race<'_, F> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.token.state.with(|s| s.waiters.remove(&id));
        }
    }
}
