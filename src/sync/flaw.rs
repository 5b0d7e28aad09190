//! [`Flaw`]: the deliberate bugs the model checks and the simulator must be
//! seen to catch.

/// A deliberate bug planted in one of faultline's primitives, for proving
/// that the checks have teeth. Each variant says which primitives honour
/// it; the others ignore it.
///
/// Never use anything but [`Flaw::None`] outside a test.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flaw {
    /// The correct implementation (the default).
    #[default]
    None,
    /// `Gate`, `Semaphore`: acquire checks for a free permit and takes it in
    /// two separate critical sections, so two acquirers can both see the
    /// last permit free. `mpsc`: `send` / `try_send` check for room and push
    /// in two critical sections, so two senders can both fill the last slot.
    CheckThenTake,
    /// `Gate`, `Semaphore`: release returns the permit but never wakes a
    /// waiter. `mpsc`, `oneshot`: a send never wakes the parked receiver.
    /// `Notify`: `notify_one` with nobody waiting drops the notification
    /// instead of storing a permit. `TaskSet`: a task that ends never wakes
    /// `join_next`. The waiter sleeps forever (a lost wake-up).
    LostWakeup,
    /// `Gate`, `Semaphore`, `mpsc` (waiting senders), `Notify`, `RwLock`: a
    /// pending wait future queues a fresh waiter node on every poll instead
    /// of refreshing its own; after a spurious poll a grant can go to a
    /// stale duplicate, and it is gone.
    WakerPerPoll,
    /// `Gate`, `Semaphore`, `mpsc`, `Notify`, `RwLock`: a wait future that
    /// was granted (a permit, a slot, a notification, the lock) but dropped
    /// before it saw the grant forgets to pass it on.
    CancelLosesHandoff,
    /// `Gate`, `Semaphore`: a released permit is never given back.
    DropLeaksPermit,
    /// `mpsc` (last `Sender`), `oneshot` (`Sender`): dropping the sender
    /// never wakes the parked receiver, which waits forever instead of
    /// seeing the channel closed.
    CloseLostOnDrop,
    /// `RwLock`: a writer is admitted when no other writer holds the lock,
    /// even while readers hold it.
    WriterWithReaders,
    /// `RwLock`: a reader is admitted whenever no writer holds the lock,
    /// even past writers queued before it (writers can starve).
    ReadersBarge,
    /// `timeout`: every poll that finds the timer not yet fired re-arms it
    /// at now + duration, so a future that keeps being woken (or is polled
    /// spuriously) never times out.
    DeadlinePerPoll,
    /// `TaskSet`: dropping the set detaches its tasks instead of aborting
    /// them.
    DropDetaches,
    /// `TaskSet`: `spawn` ignores `tasks_max`.
    LimitUnchecked,
}
