//! Incident 002's headline bug on a real Postgres: a dozen instances each
//! upsert their spend rows straight into the ledger, each in its own row
//! order (the pre-fix design), and Postgres aborts transactions with
//! `deadlock detected` (SQLSTATE 40P01). The documented and fixed designs
//! (one lease-holding flusher, rows in one order) never deadlock, even when
//! a lease of 1 ms lets every instance flush at once.
//!
//! Each run counts; the verdict lines say how often over `RUNS` runs.
#![cfg(all(feature = "servers", not(any(faultline_loom, faultline_shuttle))))]

#[path = "support/servers.rs"]
mod servers;
mod support;

use faultline::spend::{
    FlushError, Increment, Ledger, LedgerError, PushError, QueueStore, SpendInstance, Variant,
};
use faultline::sync::Arc;
use servers::{deploy, exactly_once, runtime, spawn, sum, Deployment, Env, Setup, Verdict};

/// Runs per variant (K).
const RUNS: u64 = 8;
/// Instances (the incident: "10+").
const INSTANCES: u32 = 12;
/// How long a lock wait lasts before Postgres looks for a cycle (the
/// server's default is 1 s; a superuser may lower it per session).
const DEADLOCK_TIMEOUT_MS: u64 = 100;
/// Seconds one run may take.
const RUN_SECS: u64 = 60;

/// Each instance's increments: every key once (15 rows: 8 keys, 4 users,
/// 3 teams), amounts distinct per instance.
fn increments(id: u32) -> Vec<Increment> {
    (0..8)
        .map(|k| servers::increment(k, 1 + u64::from(id) * 100 + k))
        .collect()
}

/// Records every instance's increments; returns what they add up to.
fn record_all(d: &Deployment) -> faultline::spend::Rows {
    let mut all = Vec::new();
    for inst in &d.instances {
        for inc in increments(inst.id()) {
            inst.record(inc.clone()).expect("room in memory");
            all.push(inc);
        }
    }
    sum(&all)
}

/// Runs `f` on every instance at once (a barrier first); returns the
/// results in instance order.
async fn all_at_once<T: Send + 'static, F, Fut>(d: &Deployment, f: F) -> Vec<T>
where
    F: Fn(Arc<SpendInstance>) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(d.instances.len()));
    let out = Arc::new(faultline::sync::Mutex::new(Vec::new()));
    let tasks: Vec<_> = d
        .instances
        .iter()
        .map(|inst| {
            let (b, out, fut) = (Arc::clone(&barrier), Arc::clone(&out), f(Arc::clone(inst)));
            let id = inst.id();
            spawn(async move {
                b.wait().await;
                let r = fut.await;
                out.with(|o| o.push((id, r)));
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task ran");
    }
    let mut results = out.with(std::mem::take);
    results.sort_by_key(|(id, _)| *id);
    results.into_iter().map(|(_, r)| r).collect()
}

/// One pre-fix run: every instance upserts at once. Returns the deadlock
/// victims' messages; afterwards every instance retries until its upsert
/// commits, and the ledger must be exact (a victim rolled back, kept its
/// rows in memory and lost nothing).
async fn direct_run(env: &Env, run: u64) -> Vec<String> {
    let mut setup = Setup::new(Variant::Direct, INSTANCES, &format!("d{run}_"));
    setup.deadlock_timeout_ms = Some(DEADLOCK_TIMEOUT_MS);
    let d = deploy(env, &setup).await;
    let want = record_all(&d);
    let results = all_at_once(&d, |inst| async move { inst.push().await }).await;
    let victims: Vec<String> = results
        .iter()
        .filter_map(|r| match r {
            Err(PushError::Ledger(LedgerError::Deadlock { cycle })) => Some(cycle.clone()),
            _ => None,
        })
        .collect();
    for (inst, r) in d.instances.iter().zip(&results) {
        match r {
            Ok(_) | Err(PushError::Ledger(LedgerError::Deadlock { .. })) => {}
            Err(e) => panic!("run {run}: i{}: unexpected {e}", inst.id()),
        }
        while inst.held() > 0 {
            inst.push().await.expect("a lone retry commits");
        }
    }
    let got = d.ledger.totals().await.expect("totals");
    if let Err(e) = exactly_once(&got, &want) {
        panic!("run {run}: a deadlock victim lost or doubled its rows: {e}");
    }
    victims
}

#[test]
fn pre_fix_instances_upserting_directly_deadlock_on_postgres() {
    let Some(env) = Env::new("servers_spend_deadlock") else {
        return;
    };
    let rt = runtime();
    let mut v = Verdict {
        bug: "multi-writer-deadlock",
        variant: Variant::Direct,
        buggy: true,
        oracle: "real:deadlock-40P01",
        runs: RUNS,
        fired: 0,
        example: None,
    };
    let mut victims_total = 0;
    for run in 0..RUNS {
        let victims = servers::run(&rt, RUN_SECS, "pre-fix run", direct_run(&env, run));
        assert!(
            victims
                .iter()
                .all(|m| m.contains("40P01") && m.contains("deadlock detected")),
            "{victims:?}"
        );
        victims_total += victims.len();
        if let Some(first) = victims.first() {
            v.fired += 1;
            v.example.get_or_insert_with(|| first.clone());
        }
    }
    println!(
        "pre-fix: {INSTANCES} instances, {RUNS} runs: deadlock detected in {} runs, {victims_total} victims of {} transactions",
        v.fired,
        RUNS * u64::from(INSTANCES)
    );
    v.report();
    assert_eq!(v.value(), "caught", "Postgres never reported a deadlock");
}

/// One run of a flushing design: every instance pushes, then every
/// instance flushes at once with a 1 ms lease (so many hold it at once and
/// commit the same rows concurrently). Returns the deadlocks seen, and
/// for the fixed design checks the drained ledger is exact.
async fn flushing_run(env: &Env, variant: Variant, run: u64) -> Vec<String> {
    let tag = format!("{}{run}_", &variant.name()[..3]);
    let mut setup = Setup::new(variant, INSTANCES, &tag);
    setup.deadlock_timeout_ms = Some(DEADLOCK_TIMEOUT_MS);
    setup.ttl_ms = 1;
    let d = deploy(env, &setup).await;
    let want = record_all(&d);
    for inst in &d.instances {
        inst.push().await.expect("pushed");
    }
    let results = all_at_once(&d, |inst| async move { inst.flush().await }).await;
    let mut deadlocks: Vec<String> = results
        .iter()
        .filter_map(|r| match r {
            Err(FlushError::Ledger(LedgerError::Deadlock { cycle })) => Some(cycle.clone()),
            _ => None,
        })
        .collect();
    for _ in 0..50 {
        let store = &d.stores[0];
        let pending = store.queue_len().await.unwrap() + store.inflight(1).await.unwrap().len();
        if pending == 0 {
            break;
        }
        if let Err(FlushError::Ledger(LedgerError::Deadlock { cycle })) =
            d.instances[0].flush().await
        {
            deadlocks.push(cycle);
        }
    }
    if variant == Variant::Fixed {
        let got = d.ledger.totals().await.expect("totals");
        if let Err(e) = exactly_once(&got, &want) {
            panic!("fixed, run {run}: {e}");
        }
    }
    deadlocks
}

#[test]
fn documented_and_fixed_flushers_never_deadlock_on_postgres() {
    let Some(env) = Env::new("servers_spend_deadlock") else {
        return;
    };
    let rt = runtime();
    for variant in [Variant::Documented, Variant::Fixed] {
        let mut v = Verdict {
            bug: "multi-writer-deadlock",
            variant,
            buggy: false,
            oracle: "real:deadlock-40P01",
            runs: RUNS,
            fired: 0,
            example: None,
        };
        for run in 0..RUNS {
            let found = servers::run(&rt, RUN_SECS, "flush run", flushing_run(&env, variant, run));
            if let Some(first) = found.first() {
                v.fired += 1;
                v.example.get_or_insert_with(|| first.clone());
            }
        }
        println!(
            "{}: {INSTANCES} instances flushing at once (1 ms lease), {RUNS} runs: deadlock in {}",
            variant.name(),
            v.fired
        );
        if variant == Variant::Fixed {
            v.report();
        }
        assert_eq!(v.value(), "holds", "{}: {:?}", variant.name(), v.example);
    }
}
