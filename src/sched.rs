//! [`Scheduler`]: the only way faultline code starts tasks.
//!
//! [`TokioScheduler`] is the production one. [`ThreadScheduler`] runs each
//! task on its own (loom, shuttle or OS) thread, so the same service code can
//! be model-checked. The simulator (`crate::sim`) brings a third,
//! deterministic one.

use crate::sync::{self, Arc, AtomicBool, Mutex, Ordering};
use crate::BoxFuture;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Why a task did not run to completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinError {
    /// The task was aborted (or its runtime shut down) before it finished.
    Cancelled,
    /// The task panicked.
    Panicked,
}

impl std::fmt::Display for JoinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("task cancelled"),
            JoinError::Panicked => f.write_str("task panicked"),
        }
    }
}

impl std::error::Error for JoinError {}

/// A task's name in traces: a kind (`"instance"`) and, optionally, which
/// one (`i3`), shown together (`instance i3`) so that the words a failure
/// message uses for an actor (`txn 4 (i3)`) are found in the trace's task
/// names. `Copy` and built without allocating: naming a task costs nothing
/// per poll, and nothing at spawn.
///
/// A `&'static str` converts into a name with no label, so every
/// `spawn("appender", ..)` keeps compiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskName {
    kind: &'static str,
    label: Option<(&'static str, u64)>,
}

impl TaskName {
    /// A name with no label (`"appender"`).
    pub const fn new(kind: &'static str) -> Self {
        TaskName { kind, label: None }
    }

    /// The kind `kind`, labelled `prefix` followed by `n`:
    /// `TaskName::numbered("instance", "i", 3)` is `instance i3`.
    pub const fn numbered(kind: &'static str, prefix: &'static str, n: u64) -> Self {
        TaskName {
            kind,
            label: Some((prefix, n)),
        }
    }

    /// The kind (`"instance"`): what a scheduler without labels shows.
    pub const fn kind(&self) -> &'static str {
        self.kind
    }

    /// The label's prefix and number (`("i", 3)`), if any.
    pub const fn label_parts(&self) -> Option<(&'static str, u64)> {
        self.label
    }

    /// The label (`"i3"`), if any.
    pub fn label(&self) -> Option<String> {
        self.label.map(|(prefix, n)| format!("{prefix}{n}"))
    }
}

impl From<&'static str> for TaskName {
    fn from(kind: &'static str) -> Self {
        TaskName::new(kind)
    }
}

/// A name equals the text it shows: `"appender"`, `"instance i3"`.
impl PartialEq<str> for TaskName {
    fn eq(&self, text: &str) -> bool {
        let Some(rest) = text.strip_prefix(self.kind) else {
            return false;
        };
        match self.label {
            None => rest.is_empty(),
            Some((prefix, n)) => rest
                .strip_prefix(' ')
                .and_then(|r| r.strip_prefix(prefix))
                .is_some_and(|digits| {
                    let canonical = digits == "0" || !digits.starts_with(['0', '+']);
                    canonical && digits.parse::<u64>() == Ok(n)
                }),
        }
    }
}

impl PartialEq<&str> for TaskName {
    fn eq(&self, text: &&str) -> bool {
        *self == **text
    }
}

impl std::fmt::Display for TaskName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind)?;
        if let Some((prefix, n)) = self.label {
            write!(f, " {prefix}{n}")?;
        }
        Ok(())
    }
}

/// Starts tasks and blocking work.
pub trait Scheduler: Send + Sync {
    /// Starts `fut` as a new task named `name` (for traces).
    fn spawn(&self, name: &'static str, fut: BoxFuture<()>) -> TaskHandle;

    /// Starts `fut` as a new task named `name`, label included (for
    /// traces). The default drops the label and calls
    /// [`spawn`](Scheduler::spawn) with the kind; the simulator shows both.
    fn spawn_named(&self, name: TaskName, fut: BoxFuture<()>) -> TaskHandle {
        self.spawn(name.kind(), fut)
    }

    /// Runs blocking `work` off the event loop (a blocking-thread pool);
    /// the future completes when it is done.
    fn spawn_blocking(
        &self,
        name: &'static str,
        work: Box<dyn FnOnce() + Send>,
    ) -> BoxFuture<Result<(), JoinError>>;

    /// Lets other tasks run.
    fn yield_now(&self) -> BoxFuture<()>;
}

/// Runs blocking `work` through `sched` and returns its value.
///
/// # Errors
/// [`JoinError`] when the work panicked or was cancelled.
pub async fn run_blocking<T, F>(
    sched: &dyn Scheduler,
    name: &'static str,
    work: F,
) -> Result<T, JoinError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let slot = Arc::new(Mutex::new(None));
    let out = Arc::clone(&slot);
    sched
        .spawn_blocking(name, Box::new(move || out.with(|o| *o = Some(work()))))
        .await?;
    slot.with(Option::take).ok_or(JoinError::Cancelled)
}

/// What a scheduler implementation hands back to control a task.
pub trait TaskControl: Send + Sync {
    /// Requests cancellation; the task's future is dropped at its next
    /// suspension point.
    fn abort(&self);
    /// Whether the task has finished (completed, panicked or cancelled).
    fn is_finished(&self) -> bool;
    /// Polls for the task's end.
    fn poll_join(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), JoinError>>;
}

/// A handle to a spawned task; awaiting it waits for the task's end.
/// Dropping it detaches the task (it keeps running).
pub struct TaskHandle {
    control: Box<dyn TaskControl>,
}

impl TaskHandle {
    /// Wraps a scheduler's control object.
    pub fn new(control: Box<dyn TaskControl>) -> Self {
        TaskHandle { control }
    }

    /// Requests cancellation of the task.
    pub fn abort(&self) {
        self.control.abort();
    }

    /// Whether the task has finished.
    pub fn is_finished(&self) -> bool {
        self.control.is_finished()
    }
}

impl Future for TaskHandle {
    type Output = Result<(), JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.control.poll_join(cx)
    }
}

impl std::fmt::Debug for TaskHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// A handle to a spawned task that returns a value: awaiting it gives the
/// task's output, or why it did not finish. Dropping it detaches the task.
pub struct JoinHandle<T> {
    task: TaskHandle,
    slot: Arc<Mutex<Option<T>>>,
}

impl<T> JoinHandle<T> {
    /// Requests cancellation of the task.
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Whether the task has finished.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.task).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {
                Poll::Ready(self.slot.with(Option::take).ok_or(JoinError::Cancelled))
            }
        }
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Starts `fut` as a task named `name` on `sched` and returns a handle
/// whose `await` gives its output (any scheduler: tokio, threads, the
/// simulator). `name` is a `&'static str` or a [`TaskName`].
pub fn spawn_typed<T, F>(sched: &dyn Scheduler, name: impl Into<TaskName>, fut: F) -> JoinHandle<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let slot = Arc::new(Mutex::new(None));
    let out = Arc::clone(&slot);
    let task = sched.spawn_named(
        name.into(),
        Box::pin(async move {
            let v = fut.await;
            out.with(|o| *o = Some(v));
        }),
    );
    JoinHandle { task, slot }
}

/// The production scheduler: tokio tasks and tokio's blocking pool.
///
/// Must be used from inside a tokio runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioScheduler;

struct TokioTask(tokio::task::JoinHandle<()>);

impl TaskControl for TokioTask {
    fn abort(&self) {
        self.0.abort();
    }
    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
    fn poll_join(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), JoinError>> {
        Pin::new(&mut self.0).poll(cx).map(map_tokio)
    }
}

fn map_tokio(r: Result<(), tokio::task::JoinError>) -> Result<(), JoinError> {
    r.map_err(|e| {
        if e.is_panic() {
            JoinError::Panicked
        } else {
            JoinError::Cancelled
        }
    })
}

impl Scheduler for TokioScheduler {
    fn spawn(&self, _name: &'static str, fut: BoxFuture<()>) -> TaskHandle {
        #[allow(clippy::disallowed_methods)] // the production spawn point
        let handle = tokio::spawn(fut);
        TaskHandle::new(Box::new(TokioTask(handle)))
    }

    fn spawn_blocking(
        &self,
        _name: &'static str,
        work: Box<dyn FnOnce() + Send>,
    ) -> BoxFuture<Result<(), JoinError>> {
        #[allow(clippy::disallowed_methods)] // the production blocking pool
        let handle = tokio::task::spawn_blocking(work);
        Box::pin(async move { map_tokio(handle.await) })
    }

    fn yield_now(&self) -> BoxFuture<()> {
        Box::pin(tokio::task::yield_now())
    }
}

/// One thread per task (loom, shuttle or OS threads, per the build's cfg).
///
/// The scheduler for model checks: under loom every spawned task is a loom
/// thread, so loom explores the interleavings of the service code itself.
/// Keep models small (loom allows at most 5 threads).
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadScheduler;

/// The end of a task as seen by its handle: the result, the joiner's waker,
/// and an abort request with the task's own waker.
#[derive(Default)]
pub(crate) struct Completion {
    pub(crate) aborted: AtomicBool,
    state: Mutex<CompletionState>,
}

#[derive(Default)]
struct CompletionState {
    result: Option<Result<(), JoinError>>,
    joiner: Option<Waker>,
    task: Option<Waker>,
}

impl Completion {
    /// Records the task's end (the first one wins) and wakes the joiner.
    pub(crate) fn finish(&self, r: Result<(), JoinError>) {
        let waker = self.state.with(|s| {
            s.result.get_or_insert(r);
            s.joiner.take()
        });
        if let Some(w) = waker {
            w.wake();
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.state.with(|s| s.result.is_some())
    }

    pub(crate) fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<(), JoinError>> {
        self.state.with(|s| match &s.result {
            Some(r) => Poll::Ready(r.clone()),
            None => {
                s.joiner = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }

    /// Marks the task aborted and wakes it so it notices.
    pub(crate) fn request_abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
        if let Some(w) = self.state.with(|s| s.task.take()) {
            w.wake();
        }
    }
}

struct ThreadTask(Arc<Completion>);

impl TaskControl for ThreadTask {
    fn abort(&self) {
        self.0.request_abort();
    }
    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
    fn poll_join(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), JoinError>> {
        self.0.poll_join(cx)
    }
}

/// Runs `fut` until it completes or its task is aborted.
struct Abortable {
    fut: BoxFuture<()>,
    done: Arc<Completion>,
}

impl Future for Abortable {
    type Output = Result<(), JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.done.state.with(|s| s.task = Some(cx.waker().clone()));
        if self.done.aborted.load(Ordering::SeqCst) {
            return Poll::Ready(Err(JoinError::Cancelled));
        }
        self.fut.as_mut().poll(cx).map(Ok)
    }
}

impl Scheduler for ThreadScheduler {
    fn spawn(&self, _name: &'static str, fut: BoxFuture<()>) -> TaskHandle {
        let done = Arc::new(Completion::default());
        let task = Abortable {
            fut,
            done: Arc::clone(&done),
        };
        #[allow(clippy::disallowed_methods)] // a task is a (model) thread here
        let _detached = sync::spawn_thread(move || {
            let done = Arc::clone(&task.done);
            let r = sync::block_on(task);
            done.finish(r);
        });
        TaskHandle::new(Box::new(ThreadTask(done)))
    }

    fn spawn_blocking(
        &self,
        _name: &'static str,
        work: Box<dyn FnOnce() + Send>,
    ) -> BoxFuture<Result<(), JoinError>> {
        let done = Arc::new(Completion::default());
        let finish = Arc::clone(&done);
        #[allow(clippy::disallowed_methods)] // blocking work gets its own thread
        let _detached = sync::spawn_thread(move || {
            work();
            finish.finish(Ok(()));
        });
        let mut task = ThreadTask(done);
        Box::pin(std::future::poll_fn(move |cx| task.poll_join(cx)))
    }

    fn yield_now(&self) -> BoxFuture<()> {
        Box::pin(async { sync::yield_thread() })
    }
}
