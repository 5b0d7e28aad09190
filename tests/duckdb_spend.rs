//! The spend ledger on a real DuckDB file: a flush is one transaction (a
//! crash injected mid-transaction, in process or by SIGKILL, leaves all or
//! none of the batch), a re-flushed batch id is ignored, an older fencing
//! token is refused, and the fixed flusher recovers a dead flusher's
//! in-flight batch from the queue store without counting it twice. The
//! test-only ledger without a transaction and batches without an id are
//! caught by the same checks.
#![cfg(all(feature = "duckdb", not(any(faultline_loom, faultline_shuttle))))]

use faultline::clock::ManualClock;
use faultline::sched::ThreadScheduler;
use faultline::spend::duck::DuckLedger;
use faultline::spend::{
    Batch, CommitOutcome, ConnPool, Entity, Flusher, Item, ItemId, Ledger, LedgerError,
    MemQueueStore, Metrics, QueueStore, RowKey, Rows, SpendConfig, SpendDeps, Variant,
};
use faultline::sync::{block_on, Arc, DynArc};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Rows per batch; the mid-transaction hook fires after [`MID_ROW`].
const ROWS: u64 = 8;
const MID_ROW: usize = 4;

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("faultline-spend-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn open(path: &Path) -> DuckLedger {
    DuckLedger::open(path, DynArc::new(ThreadScheduler)).unwrap()
}

/// Batch `id`'s rows: the same every time it is built.
fn rows_of(id: u64) -> Rows {
    (0..ROWS)
        .map(|j| {
            (
                RowKey::new(Entity::Team, format!("t{j}")),
                u128::from(id * 100 + j) + (u128::MAX >> 8),
            )
        })
        .collect()
}

fn batch(id: u64, fence: Option<u64>) -> Batch {
    let mut b = Batch::plain(format!("p#{id}"), &rows_of(id));
    b.batch_id = Some(id);
    b.fence = fence;
    b
}

fn totals(l: &DuckLedger) -> Rows {
    block_on(l.totals()).unwrap()
}

/// The totals batches `ids` add up to.
fn sum_of(ids: &[u64]) -> Rows {
    let mut want = Rows::new();
    for &id in ids {
        faultline::spend::add_rows(&mut want, &rows_of(id)).unwrap();
    }
    want
}

#[test]
fn a_re_flushed_batch_id_is_ignored() {
    let dir = temp_dir("dup");
    let l = open(&dir.join("ledger.duckdb"));
    assert_eq!(
        block_on(l.commit(batch(1, None))),
        Ok(CommitOutcome::Applied)
    );
    assert_eq!(
        block_on(l.commit(batch(1, None))),
        Ok(CommitOutcome::Duplicate)
    );
    assert_eq!(totals(&l), sum_of(&[1]), "batch 1 counted once");
    assert_eq!(block_on(l.flushed_batches()).unwrap(), vec![1]);
    // The twin: the same rows without a batch id count twice.
    let mut plain = batch(1, None);
    plain.batch_id = None;
    block_on(l.commit(plain.clone())).unwrap();
    block_on(l.commit(plain)).unwrap();
    assert_eq!(
        totals(&l),
        sum_of(&[1, 1, 1]),
        "without an id, a replay counts again"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_older_fencing_token_is_refused() {
    let dir = temp_dir("fence");
    let l = open(&dir.join("ledger.duckdb"));
    assert_eq!(
        block_on(l.commit(batch(5, Some(5)))),
        Ok(CommitOutcome::Applied)
    );
    assert_eq!(
        block_on(l.commit(batch(4, Some(4)))),
        Err(LedgerError::Fenced { token: 4, fence: 5 })
    );
    assert_eq!(
        block_on(l.commit(batch(6, Some(5)))),
        Ok(CommitOutcome::Applied)
    );
    assert_eq!(totals(&l), sum_of(&[5, 6]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn u128_totals_overflow_is_refused_not_wrapped() {
    let dir = temp_dir("overflow");
    let l = open(&dir.join("ledger.duckdb"));
    let key = RowKey::new(Entity::User, "u");
    let big = Batch::plain("p", &Rows::from([(key.clone(), u128::MAX - 1)]));
    block_on(l.commit(big.clone())).unwrap();
    let r = block_on(l.commit(big));
    assert!(
        matches!(r, Err(LedgerError::Overflow(ref k)) if *k == key),
        "{r:?}"
    );
    assert_eq!(
        totals(&l)[&key],
        u128::MAX - 1,
        "the refused batch left nothing"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Aborts every commit after [`MID_ROW`] rows (the client dies there);
/// returns the totals afterwards.
fn abort_mid_commit(tag: &str, transactional: bool) -> Rows {
    let dir = temp_dir(tag);
    let mut l = open(&dir.join("ledger.duckdb")).with_mid_commit_hook(DynArc::new(|n| {
        if n == MID_ROW {
            return Err(LedgerError::Crashed);
        }
        Ok(())
    }));
    if !transactional {
        l = l.without_transaction();
    }
    assert_eq!(
        block_on(l.commit(batch(3, None))),
        Err(LedgerError::Crashed)
    );
    let t = totals(&l);
    let _ = std::fs::remove_dir_all(&dir);
    t
}

#[test]
fn an_abort_mid_transaction_leaves_none_of_the_batch() {
    assert_eq!(abort_mid_commit("abort", true), Rows::new());
}

#[test]
fn without_a_transaction_the_same_abort_leaves_part_of_it() {
    let t = abort_mid_commit("abort-flaw", false);
    assert_eq!(t.len(), MID_ROW, "the flawed ledger kept {t:?}");
    println!(
        "caught: without a transaction, {} of {ROWS} rows stayed",
        t.len()
    );
}

/// Child process body: commits batches `first..` forever, printing `MID b`
/// inside each transaction (after [`MID_ROW`] rows, then pausing) and
/// `ACK b` after each commit.
#[test]
#[ignore = "child of the SIGKILL tests"]
fn child_commit_until_killed() {
    let Ok(dir) = std::env::var("FAULTLINE_SPEND_DIR") else {
        return;
    };
    let first: u64 = std::env::var("FAULTLINE_SPEND_FIRST")
        .unwrap()
        .parse()
        .unwrap();
    let current = Arc::new(std::sync::atomic::AtomicU64::new(first));
    let seen = Arc::clone(&current);
    let mut l =
        open(&Path::new(&dir).join("ledger.duckdb")).with_mid_commit_hook(DynArc::new(move |n| {
            if n == MID_ROW {
                println!("MID {}", seen.load(std::sync::atomic::Ordering::SeqCst));
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok(())
        }));
    if std::env::var("FAULTLINE_SPEND_FLAW").is_ok() {
        l = l.without_transaction();
    }
    for b in first.. {
        current.store(b, std::sync::atomic::Ordering::SeqCst);
        block_on(l.commit(batch(b, None))).unwrap();
        println!("ACK {b}");
    }
}

/// Starts a child committing from batch `first`, kills it (SIGKILL) inside
/// the transaction of batch `first + skip`; returns the acknowledged ids.
fn kill_mid_transaction(dir: &Path, first: u64, skip: u64, flaw: bool) -> Vec<u64> {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "child_commit_until_killed",
        "--exact",
        "--ignored",
        "--nocapture",
    ])
    .env("FAULTLINE_SPEND_DIR", dir)
    .env("FAULTLINE_SPEND_FIRST", first.to_string())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    if flaw {
        cmd.env("FAULTLINE_SPEND_FLAW", "1");
    }
    let mut child = cmd.spawn().unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(b) = line.strip_prefix("ACK ").and_then(|s| s.parse().ok()) {
            acked.push(b);
        }
        if line
            .strip_prefix("MID ")
            .and_then(|s| s.parse::<u64>().ok())
            == Some(first + skip)
        {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    acked
}

/// `cycles` times: kill a committing child mid-transaction, reopen, and
/// check that every batch is all or none (totals == the sum of exactly the
/// batches recorded in `flushed_batches`) and every acknowledged batch is
/// there. Returns the first cycle that broke atomicity.
fn sigkill_cycles(tag: &str, cycles: u64, flaw: bool) -> Option<u64> {
    let dir = temp_dir(tag);
    let mut acked = Vec::new();
    for cycle in 0..cycles {
        acked.extend(kill_mid_transaction(&dir, cycle * 1_000, cycle % 3, flaw));
        let l = open(&dir.join("ledger.duckdb"));
        let flushed = block_on(l.flushed_batches()).unwrap();
        assert!(
            acked.iter().all(|b| flushed.contains(b)),
            "cycle {cycle}: an acknowledged batch is gone"
        );
        if totals(&l) != sum_of(&flushed) {
            let _ = std::fs::remove_dir_all(&dir);
            return Some(cycle);
        }
    }
    println!(
        "SIGKILL mid-transaction {cycles} times: every batch all or none, {} acknowledged present",
        acked.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
    None
}

#[test]
fn sigkill_mid_transaction_leaves_all_or_none() {
    assert_eq!(
        sigkill_cycles("kill", 6, false),
        None,
        "a batch was half applied"
    );
}

#[test]
fn sigkill_without_a_transaction_is_caught() {
    let cycle =
        sigkill_cycles("kill-flaw", 6, true).expect("the half-applied batch was not caught");
    println!("caught: without a transaction, SIGKILL left a partial batch in cycle {cycle}");
}

#[test]
fn the_fixed_flusher_recovers_a_dead_flushers_batch_once_on_duckdb() {
    let dir = temp_dir("recover");
    let ledger = open(&dir.join("ledger.duckdb"));
    let clock = ManualClock::new(1_767_225_600_000_000_000);
    let store = MemQueueStore::new(16, DynArc::new(clock.clone()), DynArc::new(ThreadScheduler));
    for seq in 0..3 {
        let it = Item {
            id: ItemId { instance: 1, seq },
            rows: rows_of(seq),
        };
        block_on(store.push(it)).unwrap();
    }
    // A flusher with token 1 moved the items, committed, and died before
    // deleting its in-flight list.
    let lease = block_on(store.lease_acquire("dead".into(), 0, 1))
        .unwrap()
        .unwrap();
    let items = block_on(store.move_to_inflight("dead#1".into(), lease.token, 10)).unwrap();
    let mut b = Batch::plain("dead#1", &sum_of(&[0, 1, 2]));
    b.batch_id = Some(lease.token);
    b.fence = Some(lease.token);
    assert_eq!(items.len(), 3);
    assert_eq!(block_on(ledger.commit(b)), Ok(CommitOutcome::Applied));
    // The dead flusher's 1 ms lease expires on the store's clock.
    clock.advance(std::time::Duration::from_millis(2));
    let deps = SpendDeps {
        store: DynArc::new(store.clone()),
        ledger: DynArc::new(ledger.clone()),
        pool: Arc::new(ConnPool::new(2)),
        clock: DynArc::new(clock),
        metrics: Arc::new(Metrics::default()),
    };
    let flusher = Flusher::new(SpendConfig::new(Variant::Fixed), 2, deps.clone());
    let report = block_on(flusher.flush_once("i2")).unwrap();
    assert_eq!(report.recovered, 1);
    assert_eq!(store.sizes(), (0, 0), "the recovered list is deleted");
    assert_eq!(
        totals(&ledger),
        sum_of(&[0, 1, 2]),
        "recovered, not counted twice"
    );
    assert_eq!(deps.metrics.snapshot()["spend_duplicate_batches_total"], 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two commits of rows `t0..t7` at once, the first parked mid-transaction
/// (after its first row) while the second runs; `existing`: the rows exist
/// before. Returns both results and the totals added.
fn concurrent_commits(
    tag: &str,
    existing: bool,
) -> (Vec<Result<CommitOutcome, LedgerError>>, Rows, Rows) {
    let dir = temp_dir(tag);
    let slow = std::sync::atomic::AtomicBool::new(false);
    let slow = Arc::new(slow);
    let park = Arc::clone(&slow);
    let l = open(&dir.join("ledger.duckdb")).with_mid_commit_hook(DynArc::new(move |n| {
        if n == 1 && park.swap(false, std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        Ok(())
    }));
    if existing {
        block_on(l.commit(batch(9, None))).unwrap();
    }
    let before = totals(&l);
    slow.store(true, std::sync::atomic::Ordering::SeqCst);
    let (a, b) = (l.clone(), l.clone());
    // Two request handlers on real threads against one real DuckDB file.
    // allow-world: a real concurrent writer is the point of this test
    #[allow(clippy::disallowed_methods)]
    let first = std::thread::spawn(move || block_on(a.commit(batch(1, None))));
    std::thread::sleep(std::time::Duration::from_millis(100));
    let second = block_on(b.commit(batch(2, None)));
    let results = vec![first.join().unwrap(), second];
    let after = totals(&l);
    let _ = std::fs::remove_dir_all(&dir);
    (results, before, after)
}

#[test]
fn concurrent_writers_of_one_row_conflict_instead_of_waiting() {
    for (tag, existing) in [("conflict-new", false), ("conflict-existing", true)] {
        let (results, before, after) = concurrent_commits(tag, existing);
        println!("rows existing before: {existing}: {results:?}");
        let applied: Vec<u64> = [1, 2]
            .into_iter()
            .zip(&results)
            .filter(|(_, r)| **r == Ok(CommitOutcome::Applied))
            .map(|(id, _)| id)
            .collect();
        let conflicts = results
            .iter()
            .filter(|r| matches!(r, Err(LedgerError::Conflict(_))))
            .count();
        assert_eq!((applied.len(), conflicts), (1, 1), "{results:?}");
        let mut want = before;
        faultline::spend::add_rows(&mut want, &sum_of(&applied)).unwrap();
        assert_eq!(after, want, "the conflicting batch left nothing");
    }
}
