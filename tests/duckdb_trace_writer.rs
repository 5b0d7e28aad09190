//! The trace writer on a real embedded store: the column sink's DuckDB
//! client writes a `traces` table through `spawn_blocking` on the tokio
//! runtime. The file is created only on the first write; after shutdown
//! every trace counted delivered is in the table (read back through a fresh
//! connection) and the books balance. A flaky link in front of DuckDB makes
//! some traces exhaust their retries: the fixed writer counts those drops,
//! the flawed twin that forgets them is caught by the same check.
#![cfg(all(feature = "duckdb", not(any(faultline_loom, faultline_shuttle))))]

use faultline::clock::{Clock, TokioClock};
use faultline::retry::RetryPolicy;
use faultline::sched::TokioScheduler;
use faultline::sink::SinkErrorKind;
use faultline::sync::DynArc;
use faultline::trace_writer::duck::{duck_sink, DuckTraces};
use faultline::trace_writer::{
    ColumnClient, ColumnConfig, ColumnSink, Fate, Flaw, Trace, TraceWriter, WriterConfig,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const TRACES: u64 = 100;

fn temp_file(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("faultline-traces-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d.join("traces.duckdb")
}

fn trace(id: u64) -> Trace {
    Trace {
        id,
        at_ms: 1_767_225_600_000 + id,
        name: format!("GET /api/{}", id % 7),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

fn cfg(flaw: Flaw) -> WriterConfig {
    WriterConfig {
        retry: RetryPolicy {
            initial_delay_ms: 10,
            delay_ms_max: 20,
            ..RetryPolicy::three_times_one_second()
        },
        record_fates: true,
        flaw,
        ..WriterConfig::default()
    }
}

/// Ids in the table, through a fresh connection.
fn ids_on_disk(path: &Path) -> BTreeSet<u64> {
    DuckTraces::open(path).unwrap().ids().unwrap()
}

/// Writes every trace, shuts down, and checks the books against the table.
fn write_all<S: faultline::sink::Sink<Trace> + 'static>(
    writer: &TraceWriter<S>,
) -> Result<(), String> {
    runtime().block_on(async {
        for id in 0..TRACES {
            writer.write(trace(id)).await.unwrap();
        }
        let deadline = TokioClock::new().now_ns() + 60_000_000_000;
        let report = writer.shutdown(deadline).await;
        assert_eq!(report.abandoned, 0, "{report:?}");
    });
    let c = writer.counts();
    if c.imbalance() != 0 {
        return Err(format!("books do not balance: {c:?}"));
    }
    Ok(())
}

fn delivered(writer: &TraceWriter<impl faultline::sink::Sink<Trace> + 'static>) -> BTreeSet<u64> {
    let fates = writer.fates();
    fates
        .into_iter()
        .filter(|(_, f)| *f == Fate::Delivered)
        .map(|(id, _)| id)
        .collect()
}

#[test]
fn traces_land_in_duckdb_and_the_file_appears_only_on_first_write() {
    let path = temp_file("ok");
    let rt = runtime();
    let writer = rt.block_on(async {
        let sink = duck_sink(
            ColumnConfig {
                wait_for_ack: true,
                ..ColumnConfig::default()
            },
            DynArc::new(TokioScheduler),
            path.clone(),
        );
        TraceWriter::new(
            cfg(Flaw::None),
            DynArc::new(TokioClock::new()),
            DynArc::new(TokioScheduler),
            sink,
        )
    });
    assert!(
        !path.exists(),
        "the client was created before the first write"
    );
    write_all(&writer).unwrap();
    assert_eq!(writer.sink().unwrap().client().connects(), 1);
    let delivered = delivered(&writer);
    assert_eq!(delivered.len() as u64, TRACES);
    drop(writer);
    assert_eq!(
        ids_on_disk(&path),
        delivered,
        "the table differs from the delivered traces"
    );
    println!("{} traces in {}", delivered.len(), path.display());
}

/// A link to the database that fails every insert of a trace whose id is a
/// multiple of 10 with a 503.
struct Flaky(DuckTraces);

impl ColumnClient for Flaky {
    fn insert(&self, rows: &[Trace], ack: bool, timeout_ms: u64) -> Result<(), SinkErrorKind> {
        if rows.iter().any(|t| t.id % 10 == 0) {
            return Err(SinkErrorKind::Unavailable {
                retry_after_ms: None,
            });
        }
        self.0.insert(rows, ack, timeout_ms)
    }
}

fn flaky_run(flaw: Flaw, tag: &str) -> (Result<(), String>, BTreeSet<u64>, BTreeSet<u64>) {
    let path = temp_file(tag);
    let rt = runtime();
    let p = path.clone();
    let writer = rt.block_on(async move {
        let connect = move || Ok(Flaky(DuckTraces::open(&p)?));
        let sink = ColumnSink::new(
            ColumnConfig::default(),
            DynArc::new(TokioScheduler),
            connect,
        );
        TraceWriter::new(
            cfg(flaw),
            DynArc::new(TokioClock::new()),
            DynArc::new(TokioScheduler),
            sink,
        )
    });
    let books = write_all(&writer);
    let delivered = delivered(&writer);
    drop(writer);
    (books, delivered, ids_on_disk(&path))
}

#[test]
fn drops_after_retries_are_counted_and_a_forgotten_drop_is_caught() {
    let (books, delivered, on_disk) = flaky_run(Flaw::None, "flaky");
    books.unwrap();
    assert_eq!(delivered.len() as u64, TRACES - TRACES / 10);
    assert_eq!(on_disk, delivered);
    let (books, _, _) = flaky_run(Flaw::ForgetsDropCount, "flaky-flaw");
    let err = books.expect_err("the forgotten drops were not caught");
    println!("caught: {err}");
}
