//! A bounded multi-producer, single-consumer channel, FIFO, over the shim.
//!
//! ```
//! use faultline::sync::{block_on, mpsc};
//!
//! let (tx, mut rx) = mpsc::channel(2);
//! block_on(async move {
//!     tx.send(1).await.unwrap();
//!     tx.try_send(2).unwrap();
//!     assert_eq!(tx.try_send(3), Err(mpsc::TrySendError::Full(3)));
//!     drop(tx);
//!     assert_eq!(rx.recv().await, Some(1));
//!     assert_eq!(rx.recv().await, Some(2));
//!     assert_eq!(rx.recv().await, None); // every sender is gone
//! });
//! ```
//!
//! Room is handed out like the `Semaphore`'s permits: senders waiting for
//! room queue in arrival order, and a `recv` that frees a slot *reserves*
//! it for the first of them (so a newcomer cannot take it), which then
//! fills it. A waiting `send` that is dropped after it was handed a slot
//! hands the slot on.

use super::waiters::{wake_all, WaitList};
use super::{Arc, Flaw, Mutex};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Creates a channel holding at most `capacity_max` messages.
///
/// # Panics
/// When `capacity_max` is 0 (a channel that can hold nothing can never
/// deliver).
pub fn channel<T>(capacity_max: usize) -> (Sender<T>, Receiver<T>) {
    channel_flawed(capacity_max, Flaw::None)
}

/// [`channel`] with a deliberate bug, for tests that prove a checker
/// catches it. Never use outside tests.
///
/// # Panics
/// When `capacity_max` is 0.
#[doc(hidden)]
pub fn channel_flawed<T>(capacity_max: usize, flaw: Flaw) -> (Sender<T>, Receiver<T>) {
    assert!(capacity_max > 0, "mpsc::channel needs capacity_max >= 1");
    let chan = Arc::new(Chan {
        state: Mutex::new(State {
            buf: VecDeque::new(),
            reserved: 0,
            senders: 1,
            closed: false,
            send_waiters: WaitList::new(),
            rx_waker: None,
        }),
        capacity_max,
        flaw,
    });
    let tx = Sender {
        chan: Arc::clone(&chan),
    };
    (tx, Receiver { chan })
}

/// The error of [`Sender::send`]: the receiver is gone; the value is handed
/// back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

/// The error of [`Sender::try_send`], handing the value back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel holds `capacity_max` messages (or senders queue for
    /// room).
    Full(T),
    /// The receiver is gone (dropped or closed).
    Closed(T),
}

/// The error of [`Receiver::try_recv`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// No message now; senders remain.
    Empty,
    /// No message, and every sender is gone.
    Disconnected,
}

impl<T> std::fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> std::fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("channel closed: the receiver is gone")
    }
}

impl<T> std::error::Error for SendError<T> {}

impl<T> std::fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> std::fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("channel full"),
            TrySendError::Closed(_) => f.write_str("channel closed: the receiver is gone"),
        }
    }
}

impl<T> std::error::Error for TrySendError<T> {}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }
}

impl std::fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("channel empty"),
            TryRecvError::Disconnected => f.write_str("channel empty and every sender gone"),
        }
    }
}

impl std::error::Error for TryRecvError {}

struct Chan<T> {
    state: Mutex<State<T>>,
    capacity_max: usize,
    flaw: Flaw,
}

struct State<T> {
    buf: VecDeque<T>,
    /// Slots handed to waiting senders that have not filled them yet;
    /// `buf.len() + reserved <= capacity_max` always.
    reserved: usize,
    senders: usize,
    /// The receiver is dropped or closed: sends fail.
    closed: bool,
    send_waiters: WaitList,
    rx_waker: Option<Waker>,
}

impl<T> State<T> {
    /// Room for a newcomer: a free slot nobody queues for.
    fn has_room(&self, capacity_max: usize) -> bool {
        self.buf.len() + self.reserved < capacity_max && !self.send_waiters.has_waiting()
    }

    /// Stores `value`; returns the receiver's waker (unless the flaw drops
    /// it).
    fn push(&mut self, value: T, flaw: Flaw) -> Option<Waker> {
        self.buf.push_back(value);
        if flaw == Flaw::LostWakeup {
            return None;
        }
        self.rx_waker.take()
    }

    /// A slot came free (or a reservation was given up): reserve it for the
    /// first waiting sender, if any.
    fn free_slot(&mut self) -> Option<Waker> {
        if self.send_waiters.has_waiting() {
            self.reserved += 1;
            self.send_waiters.grant_first()
        } else {
            None
        }
    }
}

impl<T> Chan<T> {
    fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let (cap, flaw) = (self.capacity_max, self.flaw);
        if flaw == Flaw::CheckThenTake {
            let verdict = self.state.with(|s| (s.closed, s.has_room(cap)));
            return match verdict {
                (true, _) => Err(TrySendError::Closed(value)),
                (false, false) => Err(TrySendError::Full(value)),
                (false, true) => {
                    wake_all(self.state.with(|s| s.push(value, flaw)));
                    Ok(())
                }
            };
        }
        let r = self.state.with(|s| {
            if s.closed {
                Err(TrySendError::Closed(value))
            } else if s.has_room(cap) {
                Ok(s.push(value, flaw))
            } else {
                Err(TrySendError::Full(value))
            }
        });
        r.map(wake_all)
    }
}

/// The sending half; clones share the channel. The channel closes for the
/// receiver when the last sender is dropped.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `value`, waiting for room in arrival order.
    ///
    /// # Errors
    /// [`SendError`] (with the value) when the receiver is gone.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future before it completes sends nothing
    /// (the value is dropped with it) and gives up its place in the queue;
    /// a slot already reserved for it goes to the next waiting sender.
    pub fn send(&self, value: T) -> Send<'_, T> {
        Send {
            chan: &self.chan,
            value: Some(value),
            slot: None,
        }
    }

    /// Sends `value` if there is room now.
    ///
    /// # Errors
    /// [`TrySendError::Full`] when the channel holds `capacity_max` messages
    /// or senders queue for room, [`TrySendError::Closed`] when the receiver
    /// is gone; both hand the value back.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(value)
    }

    /// Whether the receiver is gone (dropped or closed).
    pub fn is_closed(&self) -> bool {
        self.chan.state.with(|s| s.closed)
    }

    /// Free slots now (not counting those reserved for waiting senders).
    pub fn capacity(&self) -> usize {
        let cap = self.chan.capacity_max;
        self.chan
            .state
            .with(|s| cap.saturating_sub(s.buf.len() + s.reserved))
    }

    /// The most messages the channel holds.
    pub fn capacity_max(&self) -> usize {
        self.chan.capacity_max
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.state.with(|s| s.senders += 1);
        Sender {
            chan: Arc::clone(&self.chan),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let flaw = self.chan.flaw;
        let waker = self.chan.state.with(|s| {
            s.senders -= 1;
            if s.senders == 0 && flaw != Flaw::CloseLostOnDrop {
                s.rx_waker.take()
            } else {
                None
            }
        });
        wake_all(waker);
    }
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("capacity_max", &self.chan.capacity_max)
            .finish()
    }
}

/// The future of [`Sender::send`].
///
/// # Panics
/// When polled again after it completed.
#[must_use = "futures do nothing unless polled"]
pub struct Send<'a, T> {
    chan: &'a Chan<T>,
    value: Option<T>,
    /// The id of this send's waiter node, while it queues.
    slot: Option<u64>,
}

impl<T> Unpin for Send<'_, T> {}

impl<T> Send<'_, T> {
    /// The first poll: send now if there is room and nobody queues, else
    /// queue (one node for the life of this future).
    fn first_poll(&mut self, value: T, cx: &mut Context<'_>) -> Poll<Result<(), SendError<T>>> {
        let chan = self.chan;
        let (cap, flaw) = (chan.capacity_max, chan.flaw);
        if flaw == Flaw::CheckThenTake {
            return match chan.try_send(value) {
                Ok(()) => Poll::Ready(Ok(())),
                Err(TrySendError::Closed(v)) => Poll::Ready(Err(SendError(v))),
                Err(TrySendError::Full(v)) => {
                    self.value = Some(v);
                    self.slot = Some(chan.state.with(|s| s.send_waiters.push((), cx.waker())));
                    Poll::Pending
                }
            };
        }
        // Check and queue in one critical section, or a recv between the
        // two would free a slot nobody is told about.
        let r = chan.state.with(|s| {
            if s.closed {
                return Err(Err(SendError(value)));
            }
            if s.has_room(cap) {
                return Ok(s.push(value, flaw));
            }
            self.slot = Some(s.send_waiters.push((), cx.waker()));
            Err(Ok(value))
        });
        self.settle(r)
    }

    /// A queued send: fill the slot reserved for it, if one was.
    fn poll_queued(
        &mut self,
        id: u64,
        value: T,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        let flaw = self.chan.flaw;
        let r = self.chan.state.with(|s| {
            if s.closed {
                if s.send_waiters.remove(id).is_some() {
                    s.reserved -= 1;
                }
                return Err(Err(SendError(value)));
            }
            if s.send_waiters.take_granted(id) {
                s.reserved -= 1;
                return Ok(s.push(value, flaw));
            }
            s.send_waiters
                .refresh(id, cx.waker(), flaw == Flaw::WakerPerPoll);
            Err(Ok(value))
        });
        if !matches!(r, Err(Ok(_))) {
            self.slot = None;
        }
        self.settle(r)
    }

    /// Turns a critical section's verdict into the poll's answer: sent
    /// (wake the receiver), refused, or still waiting (keep the value).
    fn settle(
        &mut self,
        r: Result<Option<Waker>, Result<T, SendError<T>>>,
    ) -> Poll<Result<(), SendError<T>>> {
        match r {
            Ok(waker) => {
                wake_all(waker);
                Poll::Ready(Ok(()))
            }
            Err(Err(e)) => Poll::Ready(Err(e)),
            Err(Ok(v)) => {
                self.value = Some(v);
                Poll::Pending
            }
        }
    }
}

impl<T> Future for Send<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(value) = this.value.take() else {
            panic!("mpsc::Send polled after it completed");
        };
        match this.slot {
            None => this.first_poll(value, cx),
            Some(id) => this.poll_queued(id, value, cx),
        }
    }
}

impl<T> Drop for Send<'_, T> {
    fn drop(&mut self) {
        let Some(id) = self.slot.take() else {
            return;
        };
        let flaw = self.chan.flaw;
        let waker = self.chan.state.with(|s| {
            if s.send_waiters.remove(id).is_none() || flaw == Flaw::CancelLosesHandoff {
                return None;
            }
            // Give the reserved slot up, then offer it to the next sender.
            s.reserved -= 1;
            s.free_slot()
        });
        wake_all(waker);
    }
}

/// The receiving half. Dropping it (or [`Receiver::close`]) makes every
/// send fail; dropping it also drops the messages still queued.
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// Receives the next message, in the order they were sent; `None` once
    /// the channel is empty and every sender is gone.
    ///
    /// # Cancel safety
    /// Cancel safe: a message is taken from the channel only by the poll
    /// that returns it, so dropping the future loses nothing.
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv { rx: self }
    }

    /// Receives a message if one is queued now.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] when no message is queued,
    /// [`TryRecvError::Disconnected`] when none is and every sender is gone.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let (value, waker) = self.chan.state.with(|s| match s.buf.pop_front() {
            Some(v) => (Ok(v), s.free_slot()),
            None if s.senders == 0 => (Err(TryRecvError::Disconnected), None),
            None => (Err(TryRecvError::Empty), None),
        });
        wake_all(waker);
        value
    }

    /// Closes the channel for senders (their sends fail from now on, and
    /// waiting ones wake with [`SendError`]); messages already queued can
    /// still be received.
    pub fn close(&mut self) {
        let wakers = self.chan.state.with(|s| {
            s.closed = true;
            s.send_waiters.drain_waiting()
        });
        wake_all(wakers);
    }

    /// Messages queued now.
    pub fn len(&self) -> usize {
        self.chan.state.with(|s| s.buf.len())
    }

    /// Whether no message is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most messages the channel holds.
    pub fn capacity_max(&self) -> usize {
        self.chan.capacity_max
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.close();
        // Drop the messages outside the lock (their destructors are user
        // code).
        let queued = self.chan.state.with(|s| std::mem::take(&mut s.buf));
        drop(queued);
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity_max", &self.chan.capacity_max)
            .finish()
    }
}

/// The future of [`Receiver::recv`].
#[must_use = "futures do nothing unless polled"]
pub struct Recv<'a, T> {
    rx: &'a mut Receiver<T>,
}

impl<T> Future for Recv<'_, T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let chan = &self.rx.chan;
        let (out, waker) = chan.state.with(|s| match s.buf.pop_front() {
            Some(v) => (Poll::Ready(Some(v)), s.free_slot()),
            None if s.senders == 0 => (Poll::Ready(None), None),
            None => {
                match &mut s.rx_waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    slot => *slot = Some(cx.waker().clone()),
                }
                (Poll::Pending, None)
            }
        });
        wake_all(waker);
        out
    }
}
