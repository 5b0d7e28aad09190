//! A real column store for the trace writer: a DuckDB `traces` table.
//!
//! [`duck_sink`] builds a [`ColumnSink`] whose client, [`DuckTraces`], is
//! opened on the first write (on the blocking pool) and inserts every batch
//! through DuckDB's appender in one transaction, always through
//! `Scheduler::spawn_blocking`. DuckDB is embedded, so the insert is
//! committed when it returns; `wait_for_ack` additionally waits for a
//! `CHECKPOINT` (the data is in the database file, not only in the WAL).

use super::column::{ColumnClient, ColumnConfig, ColumnSink, InsertOn};
use super::Trace;
use crate::sched::Scheduler;
use crate::sink::SinkErrorKind;
use crate::sync::{DynArc, Mutex};
use duckdb::{params, Connection};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS traces \
    (id UBIGINT NOT NULL, at_ms UBIGINT NOT NULL, name VARCHAR NOT NULL)";

fn rejected(e: impl std::fmt::Display) -> SinkErrorKind {
    SinkErrorKind::Rejected(e.to_string())
}

/// A connection to a DuckDB file holding the `traces` table.
pub struct DuckTraces {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl DuckTraces {
    /// Opens (creating if needed) the database file and the table.
    ///
    /// # Errors
    /// [`SinkErrorKind::Rejected`] with DuckDB's message.
    pub fn open(path: &Path) -> Result<Self, SinkErrorKind> {
        let conn = Connection::open(path).map_err(rejected)?;
        conn.execute_batch(SCHEMA).map_err(rejected)?;
        Ok(DuckTraces {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Ids of every row in `traces`.
    ///
    /// # Errors
    /// DuckDB's error.
    pub fn ids(&self) -> duckdb::Result<BTreeSet<u64>> {
        self.conn.with(|c| {
            let mut stmt = c.prepare("SELECT id FROM traces")?;
            let rows = stmt.query_map([], |r| r.get::<_, u64>(0))?;
            rows.collect()
        })
    }
}

impl ColumnClient for DuckTraces {
    fn insert(
        &self,
        rows: &[Trace],
        wait_for_ack: bool,
        _timeout_ms: u64,
    ) -> Result<(), SinkErrorKind> {
        self.conn.with(|c| {
            let tx = c.transaction().map_err(rejected)?;
            {
                let mut app = tx.appender("traces").map_err(rejected)?;
                for t in rows {
                    app.append_row(params![t.id, t.at_ms, t.name.as_str()])
                        .map_err(rejected)?;
                }
                app.flush().map_err(rejected)?;
            }
            tx.commit().map_err(rejected)?;
            if wait_for_ack {
                c.execute_batch("CHECKPOINT").map_err(rejected)?;
            }
            Ok(())
        })
    }
}

/// A column sink writing to the DuckDB file at `path` (opened on the first
/// write). The insert always runs on `sched`'s blocking pool, whatever
/// `cfg.insert_on` says.
pub fn duck_sink(
    cfg: ColumnConfig,
    sched: DynArc<dyn Scheduler>,
    path: PathBuf,
) -> ColumnSink<DuckTraces> {
    let cfg = ColumnConfig {
        insert_on: InsertOn::BlockingPool,
        ..cfg
    };
    ColumnSink::new(cfg, sched, move || DuckTraces::open(&path))
}
