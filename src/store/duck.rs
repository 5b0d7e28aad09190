//! The real DuckDB backend: one DuckDB file per segment under a data
//! directory; inserts through DuckDB's appender inside a transaction;
//! `CHECKPOINT` on rollover; file removal on discard. Every blocking DuckDB
//! call runs through `Scheduler::spawn_blocking`.
//!
//! Two `Connection::open` calls on one file in one process both succeed
//! and give two *independent* database instances (DuckDB's file lock is a
//! per-process POSIX lock), so DuckDB stops neither a stale writer nor an
//! instance that checkpoints the other's WAL away. This backend therefore
//! keeps exactly one instance per segment file and hands out clones of its
//! connection (`try_clone`, same instance). A write through a connection
//! whose file was removed goes to the unlinked file and is lost, silently.

use super::backend::{BackendError, InsertResult, SegmentBackend, SegmentInfo};
use super::{Event, SegmentId};
use crate::sched::{run_blocking, Scheduler};
use crate::sync::{Arc, DynArc, Mutex};
use crate::BoxFuture;
use duckdb::{params, Connection};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS events \
    (id UBIGINT NOT NULL, ts_ms UBIGINT NOT NULL, key VARCHAR NOT NULL, units UBIGINT NOT NULL)";

/// An open connection on one segment file.
pub struct DuckWriter {
    seg: SegmentId,
    conn: Option<Connection>,
}

impl DuckWriter {
    /// The segment it writes to.
    pub fn segment(&self) -> SegmentId {
        self.seg
    }
}

/// Segments as DuckDB files in `dir`.
#[derive(Clone)]
pub struct DuckBackend {
    dir: PathBuf,
    sched: DynArc<dyn Scheduler>,
    /// One root connection (one database instance) per open segment file.
    instances: Arc<Mutex<BTreeMap<SegmentId, Connection>>>,
}

fn io(e: impl std::fmt::Display) -> BackendError {
    BackendError::Io(e.to_string())
}

/// Opens (creating if needed) a segment file with the events table.
///
/// # Errors
/// DuckDB's error when the file cannot be opened.
pub fn open_segment(path: &Path) -> duckdb::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Inserts `events` through `conn`'s appender in one transaction.
///
/// # Errors
/// DuckDB's error; the transaction is rolled back.
pub fn append_events(conn: &mut Connection, events: &[Event]) -> duckdb::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut app = tx.appender("events")?;
        for e in events {
            app.append_row(params![e.id, e.ts_ms, e.key.as_str(), e.units])?;
        }
        app.flush()?;
    }
    tx.commit()
}

impl DuckBackend {
    /// A backend over `dir` (created if missing).
    ///
    /// # Errors
    /// [`BackendError::Io`] when the directory cannot be created.
    pub fn new(
        dir: impl Into<PathBuf>,
        sched: DynArc<dyn Scheduler>,
    ) -> Result<Self, BackendError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io)?;
        Ok(DuckBackend {
            dir,
            sched,
            instances: Arc::new(Mutex::new(BTreeMap::new())),
        })
    }

    /// A connection to segment `seg`'s one database instance (opened, and
    /// the file created, on first use).
    fn connect(&self, seg: SegmentId) -> Result<Connection, BackendError> {
        let path = self.segment_path(seg);
        self.instances.with(|m| {
            if let Some(root) = m.get(&seg) {
                return root.try_clone().map_err(io);
            }
            let root = open_segment(&path).map_err(io)?;
            let conn = root.try_clone().map_err(io)?;
            m.insert(seg, root);
            Ok(conn)
        })
    }

    /// The file of segment `seg`.
    pub fn segment_path(&self, seg: SegmentId) -> PathBuf {
        self.dir.join(format!("seg-{seg:08}.duckdb"))
    }

    fn segment_ids(dir: &Path) -> Result<Vec<SegmentId>, BackendError> {
        let mut ids: Vec<SegmentId> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_prefix("seg-")?
                    .strip_suffix(".duckdb")?
                    .parse()
                    .ok()
            })
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    fn blocking<T: Send + 'static>(
        &self,
        name: &'static str,
        work: impl FnOnce() -> Result<T, BackendError> + Send + 'static,
    ) -> BoxFuture<Result<T, BackendError>> {
        let sched = DynArc::clone(&self.sched);
        Box::pin(async move { run_blocking(&*sched, name, work).await.map_err(io)? })
    }
}

impl SegmentBackend for DuckBackend {
    type Writer = DuckWriter;

    fn open_writer(&self, seg: SegmentId) -> BoxFuture<Result<DuckWriter, BackendError>> {
        let me = self.clone();
        self.blocking("duckdb.open", move || {
            let conn = me.connect(seg)?;
            Ok(DuckWriter {
                seg,
                conn: Some(conn),
            })
        })
    }

    fn insert(
        &self,
        mut writer: DuckWriter,
        events: Vec<Event>,
    ) -> BoxFuture<InsertResult<DuckWriter>> {
        let sched = DynArc::clone(&self.sched);
        let me = self.clone();
        let seg = writer.seg;
        Box::pin(async move {
            let work = move || {
                let conn = match writer.conn.take() {
                    Some(c) => Ok(c),
                    None => me.connect(seg),
                };
                let r = conn.and_then(|mut c| {
                    let r = append_events(&mut c, &events).map_err(io);
                    writer.conn = Some(c);
                    r
                });
                match r {
                    Ok(()) => (writer, Ok(())),
                    Err(e) => (writer, Err((BackendError::Insert(e.to_string()), events))),
                }
            };
            match run_blocking(&*sched, "duckdb.insert", work).await {
                Ok(out) => out,
                Err(e) => {
                    let lost = DuckWriter { seg, conn: None };
                    (lost, Err((BackendError::Insert(e.to_string()), Vec::new())))
                }
            }
        })
    }

    fn checkpoint(&self, seg: SegmentId) -> BoxFuture<Result<(), BackendError>> {
        let me = self.clone();
        self.blocking("duckdb.checkpoint", move || {
            if !me.segment_path(seg).exists() {
                return Ok(());
            }
            me.connect(seg)?.execute_batch("CHECKPOINT").map_err(io)
        })
    }

    fn delete(&self, seg: SegmentId) -> BoxFuture<Result<(), BackendError>> {
        let path = self.segment_path(seg);
        let instances = Arc::clone(&self.instances);
        self.blocking("duckdb.delete", move || {
            // Writers still holding a connection keep the instance alive and
            // keep writing into the unlinked file: lost, as on any disk.
            drop(instances.with(|m| m.remove(&seg)));
            let wal = path.with_extension("duckdb.wal");
            for p in [&path, &wal] {
                match std::fs::remove_file(p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(e)),
                }
            }
            Ok(())
        })
    }

    fn query(
        &self,
        segs: Vec<SegmentId>,
        from_ms: u64,
        to_ms: u64,
    ) -> BoxFuture<Result<Vec<Event>, BackendError>> {
        let me = self.clone();
        self.blocking("duckdb.query", move || {
            let mut out = Vec::new();
            for &seg in &segs {
                if !me.segment_path(seg).exists() {
                    continue;
                }
                let conn = me.connect(seg)?;
                let mut stmt = conn
                    .prepare(
                        "SELECT id, ts_ms, key, units FROM events WHERE ts_ms >= ? AND ts_ms < ?",
                    )
                    .map_err(io)?;
                let rows = stmt
                    .query_map(params![from_ms, to_ms], |r| {
                        Ok(Event {
                            id: r.get(0)?,
                            ts_ms: r.get(1)?,
                            key: r.get(2)?,
                            units: r.get(3)?,
                        })
                    })
                    .map_err(io)?;
                for row in rows {
                    out.push(row.map_err(io)?);
                }
            }
            Ok(out)
        })
    }

    fn list(&self) -> BoxFuture<Result<Vec<SegmentInfo>, BackendError>> {
        let dir = self.dir.clone();
        let me = self.clone();
        self.blocking("duckdb.list", move || {
            let mut infos = Vec::new();
            for seg in Self::segment_ids(&dir)? {
                let conn = me.connect(seg)?;
                let (oldest_ms, newest_ms): (Option<u64>, Option<u64>) = conn
                    .query_row("SELECT min(ts_ms), max(ts_ms) FROM events", [], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .map_err(io)?;
                infos.push(SegmentInfo {
                    seg,
                    newest_ms,
                    oldest_ms,
                });
            }
            Ok(infos)
        })
    }
}
