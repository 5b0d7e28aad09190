//! Redis pool exhaustion on the real server (incident 002's troubleshooting
//! section): a dozen instances, each with a Redis pool of one connection,
//! push and flush at once; operations are refused with "no connection
//! available". The fixed path keeps a refused push's aggregates in memory
//! and pushes them again later (backpressure, retry): nothing is lost and
//! `queue_connection_pool_exhausted_total` counts the refusals. The
//! test-only twin that forgets a refused push (log and move on) loses
//! spend. A pool sized to the load (pusher + flusher: 2) is never
//! exhausted: what the simulator's spend-flush scenario says too.
#![cfg(all(feature = "servers", not(any(faultline_loom, faultline_shuttle))))]

#[path = "support/servers.rs"]
mod servers;
mod support;

use faultline::clock::{Clock, TokioClock};
use faultline::spend::{
    FlushError, Increment, Ledger, PushError, QueueStore, Rows, StoreError, Variant,
};
use faultline::sync::{Arc, AtomicBool, AtomicU64, Mutex, Ordering};
use servers::{deploy, exactly_once, run, runtime, spawn, sum, Deployment, Env, Setup};
use std::time::Duration;

/// Instances.
const INSTANCES: u32 = 12;
/// Requests each instance serves.
const REQUESTS: u64 = 30;
/// Gaps between an instance's requests, pushes and flush attempts.
const REQUEST_MS: u64 = 3;
const PUSH_MS: u64 = 2;
const FLUSH_MS: u64 = 2;
/// Drain attempts at most.
const DRAIN_TRIES_MAX: usize = 200;
/// The wait before another drain attempt when the lease is held.
const DRAIN_WAIT_MS: u64 = 25;

/// What a loaded run saw.
#[derive(Default)]
struct Seen {
    refusals: AtomicU64,
    first: Mutex<Option<String>>,
}

impl Seen {
    fn refused(&self, e: &StoreError) {
        if matches!(e, StoreError::NoConnection { .. }) {
            self.refusals.fetch_add(1, Ordering::Relaxed);
            self.first.with(|f| {
                f.get_or_insert_with(|| e.to_string());
            });
        }
    }
}

/// Requests, pushes and flushes of every instance at once, then a drain.
/// Returns what was recorded, the refusals the callers saw and the first
/// refusal's message.
async fn loaded(d: &Deployment) -> (Vec<Increment>, u64, Option<String>) {
    let seen = Arc::new(Seen::default());
    let done = Arc::new(AtomicBool::new(false));
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let clock = TokioClock::new();
    let mut tasks = Vec::new();
    for inst in &d.instances {
        let (inst2, inst3) = (Arc::clone(inst), Arc::clone(inst));
        let (rec, clock1) = (Arc::clone(&recorded), clock.clone());
        let inst1 = Arc::clone(inst);
        tasks.push(spawn(async move {
            for n in 0..REQUESTS {
                let inc = servers::increment(n, 1 + n + 1_000 * u64::from(inst1.id()));
                if inst1.record(inc.clone()).is_ok() {
                    rec.with(|r| r.push(inc));
                }
                clock1.sleep(Duration::from_millis(REQUEST_MS)).await;
            }
        }));
        let (seen2, done2, clock2) = (Arc::clone(&seen), Arc::clone(&done), clock.clone());
        tasks.push(spawn(async move {
            while !done2.load(Ordering::Relaxed) {
                if let Err(PushError::Store(e)) = inst2.push().await {
                    seen2.refused(&e);
                }
                clock2.sleep(Duration::from_millis(PUSH_MS)).await;
            }
        }));
        let (seen3, done3, clock3) = (Arc::clone(&seen), Arc::clone(&done), clock.clone());
        tasks.push(spawn(async move {
            while !done3.load(Ordering::Relaxed) {
                if let Err(FlushError::Store(e)) = inst3.flush().await {
                    seen3.refused(&e);
                }
                clock3.sleep(Duration::from_millis(FLUSH_MS)).await;
            }
        }));
    }
    clock
        .sleep(Duration::from_millis(REQUESTS * REQUEST_MS + 100))
        .await;
    done.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("task ran");
    }
    drain(d).await;
    let refusals = seen.refusals.load(Ordering::Relaxed);
    (
        recorded.with(std::mem::take),
        refusals,
        seen.first.with(Option::take),
    )
}

/// Pushes what every instance still holds and flushes until the queue and
/// the in-flight lists are empty (retrying refusals).
async fn drain(d: &Deployment) {
    for inst in &d.instances {
        for _ in 0..DRAIN_TRIES_MAX {
            if inst.held() == 0 {
                break;
            }
            let _ = inst.push().await;
        }
    }
    let store = &d.stores[0];
    for _ in 0..DRAIN_TRIES_MAX {
        let queued = store.queue_len().await.unwrap_or(1);
        let inflight = store.inflight(1).await.map_or(1, |l| l.len());
        if queued + inflight == 0 {
            return;
        }
        // A lease whose release was refused stays until its TTL.
        if d.instances[0]
            .flush()
            .await
            .is_ok_and(|r| r.token.is_none())
        {
            TokioClock::new()
                .sleep(Duration::from_millis(DRAIN_WAIT_MS))
                .await;
        }
    }
    panic!("not drained after {DRAIN_TRIES_MAX} flushes");
}

/// One loaded run of the fixed design with `connections` per instance
/// (`forget`: the test-only flaw). Returns the oracle's verdict, the
/// refusals callers saw, the metric, and the first refusal.
fn pool_run(
    rt: &tokio::runtime::Runtime,
    env: &Env,
    tag: &str,
    connections: usize,
    forget: bool,
) -> (Result<(), String>, u64, u64, Option<String>) {
    let mut setup = Setup::new(Variant::Fixed, INSTANCES, tag);
    setup.redis_connections = connections;
    setup.forget_refused = forget;
    run(rt, 120, "pool run", async {
        let d = deploy(env, &setup).await;
        let (recorded, refusals, first) = loaded(&d).await;
        let want: Rows = sum(&recorded);
        let got = d.ledger.totals().await.expect("totals");
        let metric = d.metrics.snapshot()["queue_connection_pool_exhausted_total"];
        (exactly_once(&got, &want), refusals, metric, first)
    })
}

#[test]
fn a_one_connection_pool_refuses_and_the_fixed_path_loses_nothing_and_counts_them() {
    let Some(env) = Env::new("servers_spend_pool") else {
        return;
    };
    let rt = runtime();
    let (judged, refusals, metric, first) = pool_run(&rt, &env, "small_", 1, false);
    println!(
        "pool of 1: callers saw {refusals} refusals (first: {first:?}); metric queue_connection_pool_exhausted_total = {metric}; exactly-once: {judged:?}"
    );
    assert!(refusals > 0, "a one-connection pool was never exhausted");
    assert!(
        first
            .as_deref()
            .is_some_and(|m| m.contains("no connection available")),
        "{first:?}"
    );
    assert!(
        metric >= refusals,
        "the metric ({metric}) missed refusals the callers saw ({refusals})"
    );
    judged.expect("the fixed path lost or doubled spend under pool exhaustion");
}

#[test]
fn forgetting_a_refused_push_loses_spend_and_the_oracle_says_so() {
    let Some(env) = Env::new("servers_spend_pool") else {
        return;
    };
    let rt = runtime();
    let (judged, refusals, _, _) = pool_run(&rt, &env, "forget_", 1, true);
    println!("pool of 1, refused pushes forgotten: {refusals} refusals; exactly-once: {judged:?}");
    assert!(refusals > 0, "precondition: the pool was exhausted");
    let lost = judged.expect_err("the flawed client lost nothing: the oracle has no teeth");
    println!("caught: {lost}");
}

#[test]
fn a_pool_sized_to_the_load_is_never_exhausted() {
    let Some(env) = Env::new("servers_spend_pool") else {
        return;
    };
    let rt = runtime();
    let (judged, refusals, metric, first) = pool_run(&rt, &env, "sized_", 2, false);
    println!("pool of 2: {refusals} refusals, metric {metric}; exactly-once: {judged:?}");
    assert_eq!((refusals, metric), (0, 0), "first: {first:?}");
    judged.expect("exact");
}
