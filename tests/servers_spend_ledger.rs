//! The ledger on the real Postgres against the simulator's in-memory
//! ledger (sim vs real): the same batches get the same answers (applied,
//! fenced, duplicate, overflow) and leave the same totals. And the fence
//! on Postgres is atomic with the commit: a flusher parked after its fence
//! check while a newer token commits is never applied after it (the
//! in-memory ledger's commit point is atomic by construction; Postgres at
//! `READ COMMITTED` needs the fence row locked). The test-only ledger that
//! reads the fence without locking it is caught.
#![cfg(all(feature = "servers", not(any(faultline_loom, faultline_shuttle))))]

#[path = "support/servers.rs"]
mod servers;
mod support;

use faultline::clock::{Clock, ManualClock, TokioClock};
use faultline::sched::ThreadScheduler;
use faultline::spend::pg_ledger::PgLedger;
use faultline::spend::{
    Batch, CommitOutcome, Entity, Ledger, LedgerError, MemLedger, RowKey, Rows,
};
use faultline::sync::{Arc, DynArc, Mutex};
use servers::{run, runtime, spawn, Env};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

fn rows(entity: Entity, id: &str, amount: u128) -> Rows {
    Rows::from([(RowKey::new(entity, id), amount)])
}

fn batch(id: Option<u64>, fence: Option<u64>, rows: &Rows) -> Batch {
    let mut b = Batch::plain(format!("p{id:?}"), rows);
    b.batch_id = id;
    b.fence = fence;
    b
}

/// The same script of batches on any ledger: each answer, then totals.
async fn script(l: &dyn Ledger) -> (Vec<Result<CommitOutcome, LedgerError>>, Rows) {
    let u = |a| rows(Entity::User, "u", a);
    let batches = [
        batch(Some(1), Some(2), &u(5)),
        batch(Some(7), Some(1), &u(5)),
        batch(Some(1), Some(3), &u(5)),
        batch(Some(2), Some(3), &u(5)),
        batch(None, None, &u(u128::MAX - 20)),
        batch(None, None, &u(11)),
        batch(None, None, &rows(Entity::Team, "t", 1)),
        batch(Some(3), None, &rows(Entity::ApiKey, "sk", u128::MAX)),
    ];
    let mut answers = Vec::new();
    for b in batches {
        answers.push(l.commit(b).await);
    }
    (answers, l.totals().await.expect("totals"))
}

#[test]
fn postgres_and_the_in_memory_ledger_answer_the_same_batches_the_same() {
    let Some(env) = Env::new("servers_spend_ledger") else {
        return;
    };
    let rt = runtime();
    let pg = env.pg("script_", 2);
    let real = run(&rt, 30, "postgres script", async {
        pg.create_tables().await.expect("tables");
        script(&pg).await
    });
    let mem = MemLedger::new(
        DynArc::new(ManualClock::new(0)),
        DynArc::new(ThreadScheduler),
        0,
    );
    let sim = run(&rt, 30, "model script", script(&mem));
    println!("real: {:?}\nsim:  {:?}", real.0, sim.0);
    assert_eq!(real, sim, "Postgres and the in-memory ledger disagree");
}

/// Token 5's commit parks after its fence check; token 6 commits
/// meanwhile if it can; then 5 goes on. Returns the tokens applied, in
/// completion order.
async fn fence_race(env: &Env, tag: &str, flawed: bool) -> Vec<u64> {
    let base = env.pg(tag, 4);
    base.create_tables().await.expect("tables");
    let entered = Arc::new(Notify::new());
    let gate = Arc::new(Semaphore::new(0));
    let (e, g) = (Arc::clone(&entered), Arc::clone(&gate));
    let mut parked = env.pg(tag, 2).with_after_fence_hook(DynArc::new(move || {
        let (e, g) = (Arc::clone(&e), Arc::clone(&g));
        Box::pin(async move {
            e.notify_one();
            g.acquire().await.expect("open gate").forget();
        })
    }));
    let mut other: PgLedger = base.clone();
    if flawed {
        parked = parked.without_fence_lock();
        other = other.without_fence_lock();
    }
    let applied = Arc::new(Mutex::new(Vec::new()));
    let commit = |l: PgLedger, token: u64| {
        let applied = Arc::clone(&applied);
        spawn(async move {
            let rows = rows(Entity::Team, "t", u128::from(token));
            let r = l.commit(batch(Some(token), Some(token), &rows)).await;
            if r == Ok(CommitOutcome::Applied) {
                applied.with(|a| a.push(token));
            }
        })
    };
    let older = commit(parked, 5);
    entered.notified().await;
    let newer = commit(other, 6);
    TokioClock::new().sleep(Duration::from_millis(500)).await;
    gate.add_permits(1);
    older.await.expect("older commit");
    newer.await.expect("newer commit");
    applied.with(std::mem::take)
}

/// The fencing oracle: no token is applied after a newer one was.
fn fenced(order: &[u64]) -> Result<(), String> {
    for (i, t) in order.iter().enumerate() {
        if let Some(newer) = order[..i].iter().find(|n| *n > t) {
            return Err(format!("token {t} applied after token {newer}: {order:?}"));
        }
    }
    Ok(())
}

#[test]
fn an_older_token_parked_after_its_fence_check_is_never_applied_after_a_newer_one() {
    let Some(env) = Env::new("servers_spend_ledger") else {
        return;
    };
    let rt = runtime();
    let order = run(&rt, 60, "fence race", fence_race(&env, "race_", false));
    println!("fence locked: applied in order {order:?}");
    fenced(&order).expect("fencing broken on Postgres");
}

#[test]
fn a_fence_read_without_its_row_lock_is_caught() {
    let Some(env) = Env::new("servers_spend_ledger") else {
        return;
    };
    let rt = runtime();
    let order = run(&rt, 60, "fence race", fence_race(&env, "flaw_", true));
    let e = fenced(&order).expect_err("the unlocked fence passed: the check has no teeth");
    println!("caught: {e}");
}
