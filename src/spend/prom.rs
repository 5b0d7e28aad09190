//! Incident 002's metrics in the Prometheus text format (feature
//! `servers`), with the incident's names:
//!
//! | name | what | read from |
//! | --- | --- | --- |
//! | `litellm_pod_lock_manager_size{pod_id}` | 1 for the pod holding the flush lock (`pod_id="none"`: 0, nobody) | Redis (the lease key) |
//! | `litellm_in_memory_spend_update_queue_size` | rows aggregated in the instances' memory | in memory |
//! | `litellm_redis_spend_update_queue_size` | items in the Redis spend queue | Redis (`LLEN`) |
//! | `litellm_in_memory_daily_spend_update_queue_size` | the same for daily spend | in memory |
//! | `litellm_redis_daily_spend_update_queue_size` | the same for daily spend | Redis (`LLEN`) |
//!
//! plus every counter of [`Metrics`] as
//! `faultline_spend_events_total{event="<name>",queue="spend"|"daily_spend"}`
//! (e.g. `event="queue_connection_pool_exhausted_total"`: operations
//! refused with "no connection available").
//!
//! Crate: `prometheus` (the Prometheus client of the TiKV project, the most
//! used one in Rust; its `TextEncoder` writes the classic text format
//! 0.0.4 that every Prometheus server scrapes). Values are read at scrape
//! time ([`SpendExporter::refresh`]), so a scrape shows the queues as they
//! are, not as they were last sampled.

use super::metrics::Metrics;
use super::queue::{QueueStore, StoreError};
use super::redis_store::RedisQueueStore;
use crate::sync::{Arc, AtomicBool, Ordering};
use prometheus::{Encoder, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes of an HTTP request read at most.
pub const REQUEST_BYTES_MAX: usize = 8 * 1024;

/// One pipeline (spend or daily spend): its metrics and its Redis queue.
#[derive(Clone)]
pub struct Pipeline {
    /// Its instances' metrics.
    pub metrics: Arc<Metrics>,
    /// Its queue (and, for spend, the flush lock).
    pub store: RedisQueueStore,
}

/// The deployment's metrics as Prometheus gauges and counters.
pub struct SpendExporter {
    registry: Registry,
    spend: Pipeline,
    daily: Pipeline,
    lock: IntGaugeVec,
    in_memory: [IntGauge; 2],
    redis: [IntGauge; 2],
    counters: IntCounterVec,
    stale: bool,
    redis_read: AtomicBool,
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("a valid metric name");
    registry
        .register(Box::new(g.clone()))
        .expect("registered once");
    g
}

impl SpendExporter {
    /// An exporter of the `spend` and `daily` pipelines.
    ///
    /// # Panics
    /// Never with the fixed names it registers (a bug would).
    pub fn new(spend: Pipeline, daily: Pipeline) -> Self {
        let registry = Registry::new();
        let lock = IntGaugeVec::new(
            Opts::new(
                "litellm_pod_lock_manager_size",
                "Which pod holds the lock to write updates to the database (1).",
            ),
            &["pod_id"],
        )
        .expect("a valid metric");
        registry.register(Box::new(lock.clone())).expect("once");
        let in_memory = [
            gauge(
                &registry,
                "litellm_in_memory_spend_update_queue_size",
                "In-memory aggregate spend values for keys, users, teams.",
            ),
            gauge(
                &registry,
                "litellm_in_memory_daily_spend_update_queue_size",
                "Items in the in-memory daily spend update queue.",
            ),
        ];
        let redis = [
            gauge(
                &registry,
                "litellm_redis_spend_update_queue_size",
                "Redis aggregate spend values for keys, users, teams.",
            ),
            gauge(
                &registry,
                "litellm_redis_daily_spend_update_queue_size",
                "Items in the Redis daily spend update queue.",
            ),
        ];
        let counters = IntCounterVec::new(
            Opts::new(
                "faultline_spend_events_total",
                "Spend service events by kind.",
            ),
            &["event", "queue"],
        )
        .expect("a valid metric");
        registry.register(Box::new(counters.clone())).expect("once");
        SpendExporter {
            registry,
            spend,
            daily,
            lock,
            in_memory,
            redis,
            counters,
            stale: false,
            redis_read: AtomicBool::new(false),
        }
    }

    /// Test-only flaw: [`SpendExporter::refresh`] reads Redis only the
    /// first time (the Redis gauges and the lock holder stay as then). The scrape
    /// test must see the difference. Never use outside tests.
    #[doc(hidden)]
    pub fn without_redis_refresh(mut self) -> Self {
        self.stale = true;
        self
    }

    /// Reads every value now: the lock holder and queue lengths from Redis,
    /// the in-memory sizes and counters from [`Metrics`].
    ///
    /// # Errors
    /// [`StoreError`] when Redis cannot be read (the gauges keep their last
    /// values).
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let pipes = [&self.spend, &self.daily];
        for (i, p) in pipes.iter().enumerate() {
            let snap = p.metrics.snapshot();
            self.in_memory[i].set(gauge_value(snap["in_memory_spend_update_queue_size"]));
            let queue = if i == 0 { "spend" } else { "daily_spend" };
            for (name, v) in &snap {
                if name.ends_with("_total") {
                    let c = self.counters.with_label_values(&[name, queue]);
                    c.inc_by(v.saturating_sub(c.get()));
                }
            }
        }
        if self.stale && self.redis_read.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        for (i, p) in pipes.iter().enumerate() {
            let len = p.store.queue_len().await?;
            self.redis[i].set(gauge_value(len as u64));
        }
        let holder = self.spend.store.lease_holder().await?;
        self.lock.reset();
        match holder {
            Some(l) => self.lock.with_label_values(&[&l.owner]).set(1),
            None => self.lock.with_label_values(&["none"]).set(0),
        }
        Ok(())
    }

    /// The metrics in the Prometheus text format (as last refreshed).
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let encoded = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        if let Err(e) = encoded {
            return format!("# encoding failed: {e}\n");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Serves `GET /metrics` on `listener` (refreshing before each answer)
/// for `requests_max` requests, then returns.
///
/// # Errors
/// The listener's I/O error; a failed request is answered (500) or
/// dropped, never fatal.
///
/// # Cancel safety
/// Cancel safe: dropped, it stops serving.
pub async fn serve(
    listener: tokio::net::TcpListener,
    exporter: Arc<SpendExporter>,
    requests_max: u64,
) -> std::io::Result<()> {
    for _ in 0..requests_max {
        let (mut sock, _) = listener.accept().await?;
        let mut buf = Vec::new();
        let mut chunk = [0_u8; 1024];
        while buf.len() < REQUEST_BYTES_MAX && !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let (status, body) = match exporter.refresh().await {
            Ok(()) => ("200 OK", exporter.render()),
            Err(e) => (
                "500 Internal Server Error",
                format!("# refresh failed: {e}\n"),
            ),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = sock.write_all(head.as_bytes()).await;
        let _ = sock.write_all(body.as_bytes()).await;
        let _ = sock.shutdown().await;
    }
    Ok(())
}
