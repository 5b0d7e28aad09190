//! A flusher killed between reading the queue and committing, on the real
//! servers: a flusher child process takes the Redis lease, takes the items
//! and is killed with SIGKILL before its Postgres transaction begins.
//! Documented, popping (`LPOP count`): the items are gone from Redis and
//! never reach Postgres: the batch is lost. Fixed: the items sit in the
//! dead flusher's in-flight list; the next flusher (once the dead one's
//! lease expired) recovers and commits them exactly once.
#![cfg(all(feature = "servers", not(any(faultline_loom, faultline_shuttle))))]

#[path = "support/servers.rs"]
mod servers;
mod support;

use faultline::spend::{Ledger, QueueStore, Rows, Variant};
use servers::{
    deploy, exactly_once_tagged, names, run, runtime, Env, FlusherChild, Setup, Verdict,
};
use std::time::Duration;

/// Runs per variant.
const RUNS: u64 = 3;
/// The lease's time to live.
const TTL_MS: u64 = 400;
/// How long the child waits between taking the items and committing (it
/// is killed in that window).
const PAUSE_MS: u64 = 2_000;
/// Instances pushing one item each.
const PRODUCERS: u32 = 3;

#[test]
#[ignore = "child process of the kill tests"]
fn child_flusher() {
    servers::child_flush();
}

/// One kill and recovery; returns the oracle's complaint, if any.
fn kill_and_recover(
    rt: &tokio::runtime::Runtime,
    env: &Env,
    variant: Variant,
    run_no: u64,
) -> Result<(), (String, String)> {
    let tag = format!("k{run_no}{}_", &variant.name()[..3]);
    let mut setup = Setup::new(variant, PRODUCERS, &tag);
    setup.ttl_ms = TTL_MS;
    let d = run(rt, 30, "deploy", deploy(env, &setup));
    let mut want = Rows::new();
    run(rt, 30, "push", async {
        for inst in &d.instances {
            let inc = servers::increment(u64::from(inst.id()), 7_000 + u64::from(inst.id()));
            inst.record(inc.clone()).unwrap();
            faultline::spend::add_rows(&mut want, &servers::sum(&[inc])).unwrap();
            inst.push().await.expect("pushed");
        }
    });
    let mut child = FlusherChild::start("child_flusher", env, &setup, PAUSE_MS);
    child.wait_for("READ-DONE", 30);
    child.signal("KILL");
    let status = child.wait_exit(30);
    assert!(
        !status.success(),
        "the child was not killed: {:?}",
        child.seen
    );
    let store = &d.stores[0];
    let left = run(rt, 30, "queue", store.queue_len()).unwrap();
    assert_eq!(left, 0, "precondition: the dead flusher took every item");
    run(rt, 30, "recovery", async {
        tokio::time::sleep(Duration::from_millis(TTL_MS + 200)).await;
        let r = d.instances[1]
            .flush()
            .await
            .expect("the next flusher flushed");
        assert!(r.token.is_some(), "precondition: the dead lease expired");
        println!("{} run {run_no}: next flusher {r:?}", variant.name());
    });
    let got = run(rt, 30, "totals", d.ledger.totals()).expect("totals");
    exactly_once_tagged(&got, &want)
}

fn verdict(variant: Variant, buggy: bool) -> Option<Verdict> {
    let env = Env::new("servers_spend_kill")?;
    let rt = runtime();
    let mut v = Verdict {
        bug: "crash-between-pop-and-commit",
        variant,
        buggy,
        oracle: "real:lost",
        runs: RUNS,
        fired: 0,
        example: None,
    };
    for run_no in 0..RUNS {
        match kill_and_recover(&rt, &env, variant, run_no) {
            Err((tags, e)) if names(&tags, v.oracle) => {
                v.fired += 1;
                v.example.get_or_insert(e);
            }
            Err((tags, e)) => println!("other oracle ({tags}), not counted: {e}"),
            Ok(()) => {}
        }
    }
    v.report();
    Some(v)
}

#[test]
fn documented_pop_a_flusher_killed_before_committing_loses_the_batch() {
    if let Some(v) = verdict(Variant::DocumentedPop, true) {
        assert_eq!(v.value(), "caught", "nothing lost in {} runs", v.runs);
    }
}

#[test]
fn fixed_a_flusher_killed_before_committing_is_recovered_from_its_inflight_list() {
    if let Some(v) = verdict(Variant::Fixed, false) {
        assert_eq!(v.value(), "holds", "{:?}", v.example);
    }
}
