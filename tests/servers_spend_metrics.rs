//! Incident 002's metrics, scraped over HTTP in the Prometheus text format
//! during a run on the real servers: the in-memory queues fill as requests
//! are recorded and empty on push, the Redis queues fill on push and
//! empty on flush, the lock holder shows the flushing pod while its flush
//! is under way and nobody after, for spend and daily spend alike. The
//! test-only exporter that stops reading Redis after its first scrape is
//! caught by the same checks.
#![cfg(all(feature = "servers", not(any(faultline_loom, faultline_shuttle))))]

#[path = "support/servers.rs"]
mod servers;
mod support;

use faultline::spend::pg_ledger::PgLedger;
use faultline::spend::prom::{serve, Pipeline, SpendExporter};
use faultline::spend::{Batch, CommitOutcome, Ledger, LedgerError, Rows, Variant};
use faultline::sync::{Arc, DynArc};
use faultline::BoxFuture;
use servers::{deploy, deploy_with, run, runtime, spawn, Env, Setup};
use std::collections::BTreeMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, Semaphore};

/// Instances per pipeline.
const INSTANCES: u32 = 3;
/// Requests each instance records.
const REQUESTS: u64 = 5;
/// The day the daily rows belong to.
const DAY: u64 = 20_421;
/// Scrapes the server answers at most.
const SCRAPES_MAX: u64 = 50;

/// A ledger whose commits wait at a gate (the test opens it), so a scrape
/// can see a flush under way.
struct GatedLedger {
    inner: PgLedger,
    entered: Arc<Notify>,
    gate: Arc<Semaphore>,
}

impl Ledger for GatedLedger {
    fn commit(&self, batch: Batch) -> BoxFuture<Result<CommitOutcome, LedgerError>> {
        let (inner, entered, gate) = (
            self.inner.clone(),
            Arc::clone(&self.entered),
            Arc::clone(&self.gate),
        );
        Box::pin(async move {
            entered.notify_one();
            gate.acquire().await.expect("open gate").forget();
            inner.commit(batch).await
        })
    }

    fn totals(&self) -> BoxFuture<Result<Rows, LedgerError>> {
        self.inner.totals()
    }
}

/// One scrape: `name{labels}` -> value.
async fn scrape(addr: std::net::SocketAddr) -> BTreeMap<String, f64> {
    let mut sock = tokio::net::TcpStream::connect(addr).await.expect("connect");
    sock.write_all(b"GET /metrics HTTP/1.1\r\nHost: faultline\r\n\r\n")
        .await
        .expect("request");
    let mut text = String::new();
    sock.read_to_string(&mut text).await.expect("response");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (name, v) = l.rsplit_once(' ')?;
            Some((name.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// Checks `want` (name -> value) against scrape `s` taken at `when`.
fn expect(s: &BTreeMap<String, f64>, when: &str, want: &[(&str, f64)]) -> Result<(), String> {
    for (name, v) in want {
        let got = s.get(*name).copied();
        if got != Some(*v) {
            return Err(format!("{when}: {name} = {got:?}, expected {v}"));
        }
    }
    Ok(())
}

fn gt0(s: &BTreeMap<String, f64>, when: &str, name: &str) -> Result<(), String> {
    match s.get(name) {
        Some(v) if *v > 0.0 => Ok(()),
        got => Err(format!("{when}: {name} = {got:?}, expected > 0")),
    }
}

const MEM: &str = "litellm_in_memory_spend_update_queue_size";
const MEM_DAILY: &str = "litellm_in_memory_daily_spend_update_queue_size";
const REDIS: &str = "litellm_redis_spend_update_queue_size";
const REDIS_DAILY: &str = "litellm_redis_daily_spend_update_queue_size";
const NOBODY: &str = "litellm_pod_lock_manager_size{pod_id=\"none\"}";
const POD0: &str = "litellm_pod_lock_manager_size{pod_id=\"i0\"}";
const FLUSHES: &str = "faultline_spend_events_total{event=\"spend_flushes_total\",queue=\"spend\"}";

/// The run: record, push, flush (spend gated, then daily), scraping
/// between the steps. `stale`: the test-only exporter flaw.
async fn scraped_run(env: &Env, tag: &str, stale: bool) -> Result<(), String> {
    let entered = Arc::new(Notify::new());
    let gate = Arc::new(Semaphore::new(0));
    let spend_setup = Setup::new(Variant::Fixed, INSTANCES, tag);
    let (e, g) = (Arc::clone(&entered), Arc::clone(&gate));
    let spend = deploy_with(env, &spend_setup, move |inner| {
        DynArc::new(GatedLedger {
            inner,
            entered: Arc::clone(&e),
            gate: Arc::clone(&g),
        })
    })
    .await;
    let mut daily_setup = spend_setup.clone();
    daily_setup.queue = "daily_spend_update_queue".into();
    daily_setup.pg_tag = Some(format!("{tag}daily_"));
    let daily = deploy(env, &daily_setup).await;
    let pipe = |d: &servers::Deployment| Pipeline {
        metrics: Arc::clone(&d.metrics),
        store: d.stores[0].clone(),
    };
    let mut exporter = SpendExporter::new(pipe(&spend), pipe(&daily));
    if stale {
        exporter = exporter.without_redis_refresh();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let _server = spawn(async move {
        let _ = serve(listener, Arc::new(exporter), SCRAPES_MAX).await;
    });

    let s = scrape(addr).await;
    expect(
        &s,
        "before",
        &[
            (MEM, 0.0),
            (MEM_DAILY, 0.0),
            (REDIS, 0.0),
            (REDIS_DAILY, 0.0),
            (NOBODY, 0.0),
        ],
    )?;
    for (s_inst, d_inst) in spend.instances.iter().zip(&daily.instances) {
        for n in 0..REQUESTS {
            let inc = servers::increment(n, 10 + n);
            s_inst.record(inc.clone()).expect("recorded");
            d_inst.record(inc.on_day(DAY)).expect("recorded");
        }
    }
    let s = scrape(addr).await;
    gt0(&s, "recorded", MEM)?;
    gt0(&s, "recorded", MEM_DAILY)?;
    expect(&s, "recorded", &[(REDIS, 0.0), (REDIS_DAILY, 0.0)])?;
    for inst in spend.instances.iter().chain(&daily.instances) {
        inst.push().await.map_err(|e| e.to_string())?;
    }
    let n = f64::from(INSTANCES);
    let s = scrape(addr).await;
    expect(
        &s,
        "pushed",
        &[(MEM, 0.0), (MEM_DAILY, 0.0), (REDIS, n), (REDIS_DAILY, n)],
    )?;
    let flusher = Arc::clone(&spend.instances[0]);
    let flush = spawn(async move {
        flusher.flush().await.expect("flushed");
    });
    entered.notified().await;
    let s = scrape(addr).await;
    expect(&s, "flushing", &[(POD0, 1.0), (REDIS, 0.0)])?;
    gate.add_permits(1);
    flush.await.expect("flush task");
    let s = scrape(addr).await;
    expect(
        &s,
        "flushed",
        &[
            (NOBODY, 0.0),
            (REDIS, 0.0),
            (REDIS_DAILY, n),
            (FLUSHES, 1.0),
        ],
    )?;
    daily.instances[1]
        .flush()
        .await
        .map_err(|e| e.to_string())?;
    let s = scrape(addr).await;
    expect(&s, "daily flushed", &[(REDIS_DAILY, 0.0), (NOBODY, 0.0)])?;
    Ok(())
}

#[test]
fn the_incident_metrics_move_as_the_queues_fill_and_drain() {
    let Some(env) = Env::new("servers_spend_metrics") else {
        return;
    };
    let rt = runtime();
    run(&rt, 60, "scraped run", scraped_run(&env, "m_", false))
        .expect("the metrics did not move as expected");
    println!("metrics: in-memory, Redis and lock-holder gauges moved as expected over 6 scrapes");
}

#[test]
fn an_exporter_that_stops_reading_redis_is_caught() {
    let Some(env) = Env::new("servers_spend_metrics") else {
        return;
    };
    let rt = runtime();
    let r = run(&rt, 60, "scraped run", scraped_run(&env, "stale_", true));
    let e = r.expect_err("a stale exporter passed: the scrape checks have no teeth");
    println!("caught: {e}");
}
