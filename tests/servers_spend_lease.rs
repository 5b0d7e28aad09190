//! The lease lock's contract, judged on the real Redis and on the
//! simulator's in-memory store with the same checks (sim vs real):
//! a held lease is not taken by a caller whose clock runs ahead (Redis
//! judges `PX` on its own clock), only the holder's token releases or
//! renews it, an expired lease is not renewed, and the next grant carries
//! a larger fencing token. The test-only model that judges expiry on the
//! caller's clock (the simulator's assumption before this check) is
//! caught.
#![cfg(all(feature = "servers", not(any(faultline_loom, faultline_shuttle))))]

#[path = "support/servers.rs"]
mod servers;
mod support;

use faultline::clock::{Clock, TokioClock};
use faultline::sched::TokioScheduler;
use faultline::spend::{MemQueueStore, QueueStore};
use faultline::sync::DynArc;
use servers::{run, runtime, Env};
use std::time::Duration;

/// The lease's time to live.
const TTL_MS: u64 = 300;
/// How far ahead the second caller's clock runs.
const SKEW_MS: u64 = 10_000;

/// The contract; returns the first breach.
async fn lease_contract(store: &dyn QueueStore, clock: &TokioClock) -> Result<(), String> {
    let e = |e: faultline::spend::StoreError| e.to_string();
    let now = clock.now_ms();
    let a = store
        .lease_acquire("a".into(), now, TTL_MS)
        .await
        .map_err(e)?;
    let a = a.ok_or("a free lease was refused")?;
    let skewed = store
        .lease_acquire("b".into(), now + SKEW_MS, TTL_MS)
        .await
        .map_err(e)?;
    if skewed.is_some() {
        return Err(format!(
            "a caller whose clock runs {SKEW_MS} ms ahead took a lease held for {TTL_MS} ms more"
        ));
    }
    if store.lease_release(a.token + 1).await.map_err(e)? {
        return Err("a wrong token released the lease".into());
    }
    if !store
        .lease_renew(a.token, clock.now_ms(), TTL_MS)
        .await
        .map_err(e)?
    {
        return Err("the holder could not renew".into());
    }
    clock.sleep(Duration::from_millis(TTL_MS + 150)).await;
    if store
        .lease_renew(a.token, clock.now_ms(), TTL_MS)
        .await
        .map_err(e)?
    {
        return Err("an expired lease was renewed".into());
    }
    let b = store
        .lease_acquire("b".into(), clock.now_ms(), TTL_MS)
        .await
        .map_err(e)?;
    let b = b.ok_or("an expired lease was not granted again")?;
    if b.token <= a.token {
        return Err(format!(
            "fencing token went from {} to {}",
            a.token, b.token
        ));
    }
    if store.lease_release(a.token).await.map_err(e)? {
        return Err("the expired holder released its successor's lease".into());
    }
    let holder = store.lease_holder().await.map_err(e)?;
    if holder.as_ref().map(|l| (l.owner.as_str(), l.token)) != Some(("b", b.token)) {
        return Err(format!(
            "holder {holder:?}, expected b with token {}",
            b.token
        ));
    }
    if !store.lease_release(b.token).await.map_err(e)? {
        return Err("the holder could not release".into());
    }
    Ok(())
}

fn mem_store(clock: &TokioClock) -> MemQueueStore {
    MemQueueStore::new(16, DynArc::new(clock.clone()), DynArc::new(TokioScheduler))
}

#[test]
fn redis_and_the_in_memory_model_keep_the_same_lease_contract() {
    let Some(env) = Env::new("servers_spend_lease") else {
        return;
    };
    let rt = runtime();
    let clock = TokioClock::new();
    let redis = env.redis("lease_", "spend_update_queue", 2);
    let real = run(&rt, 30, "redis lease", lease_contract(&redis, &clock));
    let sim = run(
        &rt,
        30,
        "model lease",
        lease_contract(&mem_store(&clock), &clock),
    );
    println!("lease contract: real (Redis) {real:?}; sim (MemQueueStore) {sim:?}");
    real.expect("Redis broke the lease contract");
    sim.expect("the simulator's store disagrees with Redis");
}

#[test]
fn a_model_judging_expiry_on_the_callers_clock_is_caught() {
    let rt = runtime();
    let clock = TokioClock::new();
    let flawed = mem_store(&clock).judging_expiry_on_callers_clock();
    let r = run(&rt, 30, "flawed model", lease_contract(&flawed, &clock));
    let e = r.expect_err("the caller's-clock model passed: the contract check has no teeth");
    println!("caught: {e}");
}
