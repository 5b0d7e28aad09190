//! The simulator on faultline's async primitives (`mpsc`, `oneshot`,
//! `Notify`, `RwLock`, `timeout`, `TaskSet`), with seeded spurious polls on:
//! each scenario holds on every seed with the real primitive, and each
//! planted [`Flaw`] twin fails on some seed, with the failure it should.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::clock::Clock;
use faultline::probe::{self, draw};
use faultline::sched::{JoinError, Scheduler};
use faultline::sim::{Outcome, Sim, SimConfig, SimHandle};
use faultline::sync::{
    mpsc, oneshot, timeout_flawed, Arc, DynArc, Flaw, Mutex, Notify, RwLock, TaskSet,
};
use std::collections::BTreeSet;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

/// Seeds per sweep.
const SEEDS: u64 = 300;

/// Seeds per sweep: `FAULTLINE_SYNC_SEEDS` or [`SEEDS`].
fn seeds() -> u64 {
    std::env::var("FAULTLINE_SYNC_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEEDS)
}
/// Spurious polls: one pending poll in five is polled again at once.
const SPURIOUS_WAKE_PPM: u32 = 200_000;
/// Bytes each `TaskSet` job holds while it runs.
const JOB_BYTES: u64 = 1_000;

fn config(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        spurious_wake_ppm: SPURIOUS_WAKE_PPM,
        time_max_ns: 60 * 1_000_000_000,
        ..Default::default()
    }
}

fn micros(n: u64) -> Duration {
    Duration::from_micros(n)
}

/// Polls `fut` once with the task's own waker (so it queues as a real
/// waiter would); whether it completed.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

/// Runs `scenario` on [`SEEDS`] seeds; the seeds that failed, with why.
fn sweep(scenario: impl Fn(u64, Flaw) -> Outcome, flaw: Flaw) -> Vec<(u64, String)> {
    (0..seeds())
        .filter_map(|seed| {
            let out = scenario(seed, flaw);
            out.failure.map(|f| (seed, f.to_string()))
        })
        .collect()
}

/// The real primitive holds on every seed; each twin of `twins` fails on
/// some seed with a message containing one of its expected texts.
fn teeth(name: &str, scenario: impl Fn(u64, Flaw) -> Outcome, twins: &[(Flaw, &[&str])]) {
    let failed = sweep(&scenario, Flaw::None);
    assert!(
        failed.is_empty(),
        "{name}: the real primitive failed on {} of {} seeds, first {:?}",
        failed.len(),
        seeds(),
        failed[0]
    );
    println!("sim: {name}: holds on {} seeds", seeds());
    for (flaw, expected) in twins {
        let failed = sweep(&scenario, *flaw);
        let Some((seed, first)) = failed.first() else {
            panic!("{name}: twin {flaw:?} NOT caught in {} seeds", seeds());
        };
        for (s, why) in &failed {
            assert!(
                expected.iter().any(|e| why.contains(e)),
                "{name}: twin {flaw:?} failed on seed {s}, but not with any of {expected:?}: {why}"
            );
        }
        println!(
            "sim: {name}: twin {flaw:?} caught on {} of {} seeds (first seed {seed}: {first})",
            failed.len(),
            seeds()
        );
    }
}

// ---------------------------------------------------------------- mpsc

const PRODUCERS: usize = 3;
const PER_PRODUCER: u32 = 6;

/// One producer: sends its messages in order; about one send in four is
/// impatient (queues, waits a moment, gives up, then sends again).
async fn produce(h: SimHandle, tx: mpsc::Sender<(usize, u32)>, p: usize) {
    for i in 0..PER_PRODUCER {
        if draw(4) == 0 {
            let mut send = Box::pin(tx.send((p, i)));
            if let Poll::Ready(r) = poll_once(&mut send).await {
                r.expect("receiver alive");
                continue;
            }
            h.sleep(micros(draw(5))).await;
            drop(send);
        }
        tx.send((p, i)).await.expect("receiver alive");
        if draw(2) == 0 {
            h.yield_now().await;
        }
    }
}

/// Three producers and a slow consumer on a 2-slot channel: every message
/// arrives once, in each producer's order, and the channel closes when they
/// are done.
fn mpsc_scenario(seed: u64, flaw: Flaw) -> Outcome {
    let sim = Sim::new(config(seed));
    let h = sim.main_handle();
    sim.run(async move {
        let (tx, mut rx) = mpsc::channel_flawed::<(usize, u32)>(2, flaw);
        for p in 0..PRODUCERS {
            h.spawn_on("producer", produce(h, tx.clone(), p));
        }
        drop(tx);
        let mut next = [0u32; PRODUCERS];
        while let Some((p, i)) = rx.recv().await {
            assert_eq!(
                i, next[p],
                "producer {p}: message {i} out of order or twice"
            );
            next[p] += 1;
            if draw(3) == 0 {
                h.sleep(micros(1)).await;
            }
        }
        assert_eq!(next, [PER_PRODUCER; PRODUCERS], "messages lost");
    })
}

#[test]
fn sim_mpsc_holds_and_its_twins_are_caught() {
    teeth(
        "mpsc, 3 producers on 2 slots",
        mpsc_scenario,
        &[
            (Flaw::LostWakeup, &["deadlock"]),
            (Flaw::WakerPerPoll, &["deadlock"]),
            (Flaw::CancelLosesHandoff, &["deadlock"]),
            (Flaw::CloseLostOnDrop, &["deadlock"]),
        ],
    );
}

// ---------------------------------------------------------------- oneshot

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Sent,
    Dropped,
}

/// Four one-shots; each sender sends or gives up after a random wait, each
/// receiver is awaited or dropped: an awaited receiver sees exactly what its
/// sender did, and a send to a dropped receiver hands the value back.
fn oneshot_scenario(seed: u64, flaw: Flaw) -> Outcome {
    let sim = Sim::new(config(seed));
    let h = sim.main_handle();
    sim.run(async move {
        let fates = Arc::new(Mutex::new([None::<Fate>; 4]));
        let mut receivers = Vec::new();
        for k in 0..4u32 {
            let (tx, rx) = oneshot::channel_flawed::<u32>(flaw);
            receivers.push(rx);
            let fates = Arc::clone(&fates);
            h.spawn_on("sender", async move {
                h.sleep(micros(draw(4))).await;
                if draw(3) == 0 {
                    fates.with(|f| f[k as usize] = Some(Fate::Dropped));
                    drop(tx);
                } else {
                    fates.with(|f| f[k as usize] = Some(Fate::Sent));
                    if let Err(v) = tx.send(k) {
                        assert_eq!(v, k, "send to a dropped receiver lost its value");
                    }
                }
            });
        }
        for (k, rx) in receivers.into_iter().enumerate() {
            if draw(4) == 0 {
                drop(rx);
                continue;
            }
            let got = rx.await;
            let fate = fates.with(|f| f[k]);
            match got {
                Ok(v) => assert!(v as usize == k && fate == Some(Fate::Sent), "got {v}"),
                Err(_) => assert_eq!(fate, Some(Fate::Dropped), "receiver {k}: error"),
            }
        }
    })
}

#[test]
fn sim_oneshot_holds_and_its_twins_are_caught() {
    teeth(
        "oneshot, 4 channels",
        oneshot_scenario,
        &[
            (Flaw::LostWakeup, &["deadlock"]),
            (Flaw::CloseLostOnDrop, &["deadlock"]),
        ],
    );
}

// ---------------------------------------------------------------- Notify

const ITEMS: u32 = 8;

/// A producer adds an item, calls `notify_one` and waits for the
/// consumer's acknowledgement (so no later notification can cover for a
/// lost one); the consumer takes all items there are, does a little async
/// work, then waits; two impatient tasks wait and give up (forwarding a
/// notification they took at once). Every item is acknowledged.
fn notify_scenario(seed: u64, flaw: Flaw) -> Outcome {
    let sim = Sim::new(config(seed));
    let h = sim.main_handle();
    sim.run(async move {
        let notify = Arc::new(Notify::new_flawed(flaw));
        let items = Arc::new(Mutex::new(0u32));
        let (ack_tx, mut ack_rx) = mpsc::channel::<()>(ITEMS as usize);
        let (n, it) = (Arc::clone(&notify), Arc::clone(&items));
        h.spawn_on("producer", async move {
            for _ in 0..ITEMS {
                h.sleep(micros(draw(4))).await;
                it.with(|i| *i += 1);
                n.notify_one();
                ack_rx.recv().await.expect("consumer alive");
            }
        });
        for _ in 0..2 {
            let n = Arc::clone(&notify);
            h.spawn_on("impatient", impatient(h, n));
        }
        let mut got = 0;
        while got < ITEMS {
            let taken = items.with(std::mem::take);
            for _ in 0..taken {
                ack_tx.try_send(()).expect("room for every ack");
            }
            got += taken;
            if taken > 0 {
                continue;
            }
            h.sleep(micros(draw(3))).await; // async work between check and wait
            notify.notified().await;
        }
    })
}

/// Waits for a notification six times, giving up after a moment each time
/// (and forwarding one it took at once: it was meant for the consumer).
async fn impatient(h: SimHandle, n: Arc<Notify>) {
    for _ in 0..6 {
        let mut wait = Box::pin(n.notified());
        if poll_once(&mut wait).await.is_ready() {
            n.notify_one();
            continue;
        }
        h.sleep(micros(draw(8))).await;
        drop(wait);
    }
}

#[test]
fn sim_notify_holds_and_its_twins_are_caught() {
    teeth(
        "Notify, producer, consumer and 2 impatient waiters",
        notify_scenario,
        &[
            (Flaw::LostWakeup, &["deadlock"]),
            (Flaw::WakerPerPoll, &["deadlock"]),
            (Flaw::CancelLosesHandoff, &["deadlock"]),
        ],
    );
}

// ---------------------------------------------------------------- RwLock

/// Who is inside the lock, and the tickets of writers queued for it.
#[derive(Default)]
struct Inside {
    readers: u32,
    writer: bool,
    queued_writers: BTreeSet<u64>,
    next_ticket: u64,
}

async fn reader(h: SimHandle, lock: Arc<RwLock<u64>>, inside: Arc<Mutex<Inside>>) {
    for _ in 0..4 {
        let ticket = inside.with(|s| {
            s.next_ticket += 1;
            s.next_ticket
        });
        let guard = lock.read().await;
        inside.with(|s| {
            assert!(!s.writer, "reader inside with a writer");
            if let Some(&w) = s.queued_writers.first().filter(|&&w| w < ticket) {
                panic!("reader {ticket} overtook writer {w} queued before it");
            }
            s.readers += 1;
        });
        h.sleep(micros(draw(4))).await;
        inside.with(|s| s.readers -= 1);
        drop(guard);
        h.sleep(micros(draw(3))).await;
    }
}

async fn writer(h: SimHandle, lock: Arc<RwLock<u64>>, inside: Arc<Mutex<Inside>>) {
    for _ in 0..3 {
        let ticket = inside.with(|s| {
            s.next_ticket += 1;
            s.queued_writers.insert(s.next_ticket);
            s.next_ticket
        });
        let mut write = Box::pin(lock.write());
        let guard = match poll_once(&mut write).await {
            Poll::Ready(g) => Some(g),
            // About one writer in three gives up after a moment.
            Poll::Pending if draw(3) == 0 => {
                h.sleep(micros(draw(4))).await;
                None
            }
            Poll::Pending => Some(write.as_mut().await),
        };
        drop(write);
        inside.with(|s| s.queued_writers.remove(&ticket));
        let Some(mut guard) = guard else { continue };
        inside.with(|s| {
            assert!(s.readers == 0 && !s.writer, "writer inside with others");
            s.writer = true;
        });
        *guard += 1;
        h.sleep(micros(draw(4))).await;
        inside.with(|s| s.writer = false);
        drop(guard);
    }
}

/// Three readers and two writers: writers are alone inside, and no reader
/// gets in ahead of a writer that queued before it.
fn rwlock_scenario(seed: u64, flaw: Flaw) -> Outcome {
    let sim = Sim::new(config(seed));
    let h = sim.main_handle();
    sim.run(async move {
        let lock = Arc::new(RwLock::new_flawed(0u64, flaw));
        let inside = Arc::new(Mutex::new(Inside::default()));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (lock, inside) = (Arc::clone(&lock), Arc::clone(&inside));
            tasks.push(if i < 3 {
                h.spawn_on("reader", reader(h, lock, inside))
            } else {
                h.spawn_on("writer", writer(h, lock, inside))
            });
        }
        for t in tasks {
            t.await.expect("task ends");
        }
        assert!(lock.try_write().is_some(), "lock still held at the end");
    })
}

#[test]
fn sim_rwlock_holds_and_its_twins_are_caught() {
    teeth(
        "RwLock, 3 readers and 2 writers",
        rwlock_scenario,
        &[
            (
                Flaw::WriterWithReaders,
                &["writer inside with others", "reader inside with a writer"],
            ),
            (Flaw::ReadersBarge, &["overtook writer"]),
            (Flaw::WakerPerPoll, &["deadlock", "still held"]),
            (Flaw::CancelLosesHandoff, &["deadlock", "still held"]),
        ],
    );
}

// ---------------------------------------------------------------- timeout

const DEADLINE: Duration = Duration::from_millis(50);
/// How late a timeout may fire: a few polls' virtual CPU time.
const LATE_NS_MAX: u64 = 100_000;

/// A timeout on a future that is woken every few milliseconds but never
/// completes fires at its deadline; one on a future that completes first
/// returns its value.
fn timeout_scenario(seed: u64, flaw: Flaw) -> Outcome {
    let sim = Sim::new(config(seed));
    let h = sim.main_handle();
    sim.run(async move {
        let notify = Arc::new(Notify::new());
        let n = Arc::clone(&notify);
        h.spawn_on("ticker", async move {
            for _ in 0..100 {
                h.sleep(Duration::from_millis(1 + draw(9))).await;
                n.notify_one();
            }
        });
        let start = h.now_ns();
        let busy = async {
            loop {
                notify.notified().await;
            }
        };
        let r = timeout_flawed(&h, DEADLINE, busy, flaw).await;
        let waited_ns = h.now_ns() - start;
        assert!(r.is_err(), "a future that never completes did");
        let deadline_ns = DEADLINE.as_nanos() as u64;
        assert!(
            (deadline_ns..deadline_ns + LATE_NS_MAX).contains(&waited_ns),
            "timeout of {deadline_ns} ns fired after {waited_ns} ns"
        );
        let quick_ms = draw(40);
        let start = h.now_ns();
        let r = timeout_flawed(&h, DEADLINE, h.sleep(Duration::from_millis(quick_ms)), flaw).await;
        assert!(r.is_ok(), "a {quick_ms} ms sleep timed out at 50 ms");
        assert!(h.now_ns() - start < deadline_ns);
    })
}

#[test]
fn sim_timeout_holds_and_its_twin_is_caught() {
    teeth(
        "timeout, a busy future and a quick one",
        timeout_scenario,
        &[(Flaw::DeadlinePerPoll, &["fired after"])],
    );
}

// ---------------------------------------------------------------- TaskSet

const JOBS: u32 = 10;
const TASKS_MAX: usize = 3;

async fn job(h: SimHandle, i: u32) -> u32 {
    let _held = probe::charge("job", JOB_BYTES);
    h.sleep(Duration::from_millis(draw(5))).await;
    i
}

/// Spawns [`JOBS`] jobs through a set of [`TASKS_MAX`] (joining one when
/// it is full); every result comes back once. Then: `abort_all` cancels,
/// and a dropped set stops its tasks. The memory meter allows exactly
/// `TASKS_MAX` jobs' memory.
fn task_set_scenario(seed: u64, flaw: Flaw) -> Outcome {
    let sim = Sim::new(SimConfig {
        mem_limit_bytes: Some(TASKS_MAX as u64 * JOB_BYTES),
        ..config(seed)
    });
    let h = sim.main_handle();
    sim.run(async move {
        let sched: DynArc<dyn Scheduler> = DynArc::new(h);
        let mut set = TaskSet::new_flawed(DynArc::clone(&sched), TASKS_MAX, flaw);
        let mut seen = BTreeSet::new();
        let mut record = |r: Option<Result<u32, JoinError>>| {
            let v = r.expect("a task to join").expect("job ends");
            assert!(seen.insert(v), "job {v} joined twice");
        };
        for i in 0..JOBS {
            let mut fut = job(h, i);
            while let Err(full) = set.spawn("job", fut) {
                record(set.join_next().await);
                fut = full.fut;
            }
        }
        while !set.is_empty() {
            record(set.join_next().await);
        }
        assert_eq!(seen.len(), JOBS as usize, "results lost");
        assert!(set.join_next().await.is_none());
        for _ in 0..2 {
            set.spawn("sleeper", async move {
                h.sleep(Duration::from_secs(3600)).await;
                0
            })
            .expect("room");
        }
        set.abort_all();
        for _ in 0..2 {
            let r = set.join_next().await.expect("an aborted task to join");
            assert_eq!(r, Err(JoinError::Cancelled));
        }
        let ticks = Arc::new(Mutex::new(0u32));
        let t = Arc::clone(&ticks);
        let mut doomed = TaskSet::new_flawed(sched, 1, flaw);
        doomed
            .spawn("ticker", async move {
                loop {
                    t.with(|n| *n += 1);
                    h.sleep(Duration::from_millis(1)).await;
                }
            })
            .expect("room");
        h.sleep(Duration::from_millis(draw(3))).await;
        drop(doomed);
        let before = ticks.with(|n| *n);
        h.sleep(Duration::from_millis(10)).await;
        let after = ticks.with(|n| *n);
        assert_eq!(before, after, "a task outlived its dropped set");
    })
}

#[test]
fn sim_task_set_holds_and_its_twins_are_caught() {
    teeth(
        "TaskSet, 10 jobs through 3 slots, abort_all, drop",
        task_set_scenario,
        &[
            (Flaw::LostWakeup, &["deadlock"]),
            (Flaw::LimitUnchecked, &["out of memory"]),
            (Flaw::DropDetaches, &["outlived its dropped set"]),
        ],
    );
}
