//! The documented design's lease expiry on the real servers: a flusher (a
//! child process) takes the Redis lease, reads the queue and is stopped
//! with SIGSTOP before it commits, for longer than its lease; a second
//! flusher takes the lease over and flushes; the first resumes (SIGCONT)
//! and commits too. Documented: the double apply is in Postgres. Fixed
//! (fencing token checked at commit, idempotent batch ids, in-flight
//! lists): the second flusher recovers the first one's in-flight batch,
//! the first one's commit is fenced off, the totals stay exact.
#![cfg(all(feature = "servers", not(any(faultline_loom, faultline_shuttle))))]

#[path = "support/servers.rs"]
mod servers;
mod support;

use faultline::spend::{FlushReport, Ledger, Rows, Variant};
use servers::{
    deploy, exactly_once_tagged, names, run, runtime, Env, FlusherChild, Setup, Verdict,
};
use std::time::Duration;

/// Runs per variant.
const RUNS: u64 = 3;
/// The lease's time to live.
const TTL_MS: u64 = 400;
/// How long the child waits between reading and committing (the parent
/// stops it in that window).
const PAUSE_MS: u64 = 300;
/// Instances pushing one item each.
const PRODUCERS: u32 = 3;

#[test]
#[ignore = "child process of the pause tests"]
fn child_flusher() {
    servers::child_flush();
}

/// One takeover; returns the oracle's complaint, if any, and the second
/// flusher's report and the child's last line.
fn takeover(
    rt: &tokio::runtime::Runtime,
    env: &Env,
    variant: Variant,
    run_no: u64,
) -> (Result<(), (String, String)>, FlushReport, String) {
    let tag = format!("p{run_no}{}_", &variant.name()[..3]);
    let mut setup = Setup::new(variant, PRODUCERS, &tag);
    setup.ttl_ms = TTL_MS;
    let d = run(rt, 30, "deploy", deploy(env, &setup));
    let mut want = Rows::new();
    run(rt, 30, "push", async {
        for inst in &d.instances {
            let inc = servers::increment(u64::from(inst.id()), 1_000 + u64::from(inst.id()));
            inst.record(inc.clone()).unwrap();
            faultline::spend::add_rows(&mut want, &servers::sum(&[inc])).unwrap();
            inst.push().await.expect("pushed");
        }
    });
    let mut child = FlusherChild::start("child_flusher", env, &setup, PAUSE_MS);
    child.wait_for("READ-DONE", 30);
    child.signal("STOP");
    run(rt, 10, "lease expiry", async {
        tokio::time::sleep(Duration::from_millis(TTL_MS + 300)).await;
    });
    let second = run(rt, 30, "second flusher", d.instances[1].flush());
    child.signal("CONT");
    let status = child.wait_exit(30);
    assert!(status.success(), "child failed: {:?}", child.seen);
    let last = child.wait_for_seen("FLUSHED");
    let report = second.expect("the second flusher flushed");
    // Preconditions: the takeover happened while the first flusher held
    // the items (else the run shows nothing either way).
    let took_over = match variant {
        Variant::Fixed => report.recovered == 1,
        _ => report.items == PRODUCERS as usize,
    };
    assert!(
        report.token.is_some() && took_over,
        "precondition: no takeover mid-flush: {report:?}; child {:?}",
        child.seen
    );
    let got = run(rt, 30, "totals", d.ledger.totals()).expect("totals");
    (exactly_once_tagged(&got, &want), report, last)
}

fn verdict(variant: Variant, buggy: bool) -> Option<Verdict> {
    let env = Env::new("servers_spend_pause")?;
    let rt = runtime();
    let mut v = Verdict {
        bug: "lease-expiry-double-flush",
        variant,
        buggy,
        oracle: "real:double-apply",
        runs: RUNS,
        fired: 0,
        example: None,
    };
    for run_no in 0..RUNS {
        let (judged, report, last) = takeover(&rt, &env, variant, run_no);
        println!(
            "{} run {run_no}: second flusher {report:?}; first flusher resumed: {last}",
            variant.name()
        );
        match judged {
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
fn documented_a_flusher_paused_past_its_lease_applies_its_batch_twice() {
    if let Some(v) = verdict(Variant::Documented, true) {
        assert_eq!(v.value(), "caught", "no double apply in {} runs", v.runs);
    }
}

#[test]
fn fixed_a_flusher_paused_past_its_lease_is_fenced_and_totals_stay_exact() {
    if let Some(v) = verdict(Variant::Fixed, false) {
        assert_eq!(v.value(), "holds", "{:?}", v.example);
    }
}
