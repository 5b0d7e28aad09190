//! A one-shot channel: one value, sent once, awaited once.
//!
//! ```
//! use faultline::sync::{block_on, oneshot};
//!
//! let (tx, rx) = oneshot::channel();
//! tx.send("done").unwrap();
//! assert_eq!(block_on(rx), Ok("done"));
//!
//! let (tx, rx) = oneshot::channel::<u32>();
//! drop(tx); // the sender is gone without sending
//! assert_eq!(block_on(rx), Err(oneshot::RecvError));
//! ```

use super::{Arc, Flaw, Mutex};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Creates a one-shot channel.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    channel_flawed(Flaw::None)
}

/// [`channel`] with a deliberate bug, for tests that prove a checker
/// catches it. Never use outside tests.
#[doc(hidden)]
pub fn channel_flawed<T>(flaw: Flaw) -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            value: None,
            tx_gone: false,
            rx_gone: false,
            rx_waker: None,
        }),
        flaw,
    });
    let tx = Sender {
        inner: Some(Arc::clone(&inner)),
    };
    (tx, Receiver { inner, done: false })
}

/// The error of awaiting a [`Receiver`]: the sender was dropped without
/// sending (or the value was already received).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvError;

impl std::fmt::Display for RecvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("oneshot sender dropped without sending")
    }
}

impl std::error::Error for RecvError {}

/// The error of [`Receiver::try_recv`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing sent yet; the sender lives.
    Empty,
    /// The sender is gone without sending (or the value was taken).
    Closed,
}

impl std::fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("oneshot empty"),
            TryRecvError::Closed => f.write_str("oneshot sender dropped without sending"),
        }
    }
}

impl std::error::Error for TryRecvError {}

struct Inner<T> {
    state: Mutex<State<T>>,
    flaw: Flaw,
}

struct State<T> {
    value: Option<T>,
    /// The sender sent or was dropped: no value will come after `value`.
    tx_gone: bool,
    /// The receiver was dropped or closed: a send fails.
    rx_gone: bool,
    rx_waker: Option<Waker>,
}

/// The sending half; [`Sender::send`] consumes it.
pub struct Sender<T> {
    /// `None` once sent.
    inner: Option<Arc<Inner<T>>>,
}

impl<T> Sender<T> {
    /// Sends `value`, waking the receiver.
    ///
    /// # Errors
    /// The value, handed back, when the receiver is gone (dropped or
    /// closed).
    pub fn send(mut self, value: T) -> Result<(), T> {
        let Some(inner) = self.inner.take() else {
            return Err(value);
        };
        let flaw = inner.flaw;
        let r = inner.state.with(|s| {
            s.tx_gone = true;
            if s.rx_gone {
                return Err(value);
            }
            s.value = Some(value);
            Ok(if flaw == Flaw::LostWakeup {
                None
            } else {
                s.rx_waker.take()
            })
        });
        r.map(|w| w.into_iter().for_each(Waker::wake))
    }

    /// Whether the receiver is gone (a send would fail).
    pub fn is_closed(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(|i| i.state.with(|s| s.rx_gone))
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let flaw = inner.flaw;
        let waker = inner.state.with(|s| {
            s.tx_gone = true;
            if flaw == Flaw::CloseLostOnDrop {
                None
            } else {
                s.rx_waker.take()
            }
        });
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("oneshot::Sender")
    }
}

/// The receiving half: a future of the value.
///
/// # Cancel safety
/// Dropping the receiver drops a value already sent (and makes a later
/// send fail); polling it again after a cancelled `select!` branch is fine,
/// the value stays until a poll returns it.
#[must_use = "futures do nothing unless polled"]
pub struct Receiver<T> {
    inner: Arc<Inner<T>>,
    /// A poll returned `Ready`: nothing is left to hand back.
    done: bool,
}

impl<T> Receiver<T> {
    /// Takes the value if it was sent.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] when nothing was sent yet and the sender
    /// lives, [`TryRecvError::Closed`] when it is gone without sending.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let r = self.inner.state.with(|s| match s.value.take() {
            Some(v) => Ok(v),
            None if s.tx_gone => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        });
        self.done = r.is_ok();
        r
    }

    /// Refuses the value: a later send fails and hands it back. A value
    /// already sent can still be received.
    pub fn close(&mut self) {
        self.inner.state.with(|s| s.rx_gone = true);
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let out = this.inner.state.with(|s| {
            if let Some(v) = s.value.take() {
                return Poll::Ready(Ok(v));
            }
            if s.tx_gone {
                return Poll::Ready(Err(RecvError));
            }
            match &mut s.rx_waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            Poll::Pending
        });
        this.done = out.is_ready();
        out
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.done {
            // The value was taken and the sender is gone: nothing to clean.
            return;
        }
        let value = self.inner.state.with(|s| {
            s.rx_gone = true;
            s.rx_waker = None;
            s.value.take()
        });
        // A value sent but never received is dropped outside the lock.
        drop(value);
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("oneshot::Receiver")
    }
}
