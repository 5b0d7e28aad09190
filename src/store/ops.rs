//! The store's operations: open, append, retention, query, and the
//! writer/active-segment invariant.

use super::{
    AppendError, BackendError, Event, Flaw, RetentionReport, SegMeta, SegmentBackend, SegmentId,
    State, StoreConfig, TieredStore, Variant, GATE_CLASS, STATE_CLASS,
};
use crate::sync::{Arc, Gate, GateGuard, Mutex};
use std::collections::BTreeMap;

enum Roll {
    Discard(SegmentId),
    Archive(SegmentId),
}

impl<B: SegmentBackend> TieredStore<B> {
    /// Opens the store over whatever segments `backend` holds (empty, or
    /// left by a crashed process): the newest segment is the active one.
    ///
    /// # Errors
    /// [`BackendError`] when the segments cannot be listed.
    pub async fn open(backend: Arc<B>, cfg: StoreConfig) -> Result<Self, BackendError> {
        let mut segments: BTreeMap<SegmentId, SegMeta> = backend
            .list()
            .await?
            .into_iter()
            .map(|i| {
                let meta = SegMeta {
                    newest_ms: i.newest_ms,
                    oldest_ms: i.oldest_ms,
                };
                (i.seg, meta)
            })
            .collect();
        let active = segments.keys().last().copied().unwrap_or(0);
        segments.entry(active).or_insert_with(SegMeta::empty);
        Ok(TieredStore {
            backend,
            cfg,
            gate: Gate::with_class((), GATE_CLASS),
            state: Mutex::with_class(
                State {
                    active,
                    writer: None,
                    segments,
                },
                STATE_CLASS,
            ),
            append_seam: None,
            flaw: Flaw::None,
        })
    }

    /// Test-only seam: every append waits for `seam` after its insert and
    /// before restoring the writer (still holding the write gate when the
    /// variant has one), so a test can park an append in flight.
    #[doc(hidden)]
    pub fn with_append_seam(mut self, seam: Arc<Gate<()>>) -> Self {
        self.append_seam = Some(seam);
        self
    }

    /// Test-only: plants `flaw` (one layer of the fix removed) in the
    /// store. Never use outside tests.
    #[doc(hidden)]
    pub fn with_flaw(mut self, flaw: Flaw) -> Self {
        self.flaw = flaw;
        self
    }

    /// The configuration.
    pub fn config(&self) -> StoreConfig {
        self.cfg
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }

    fn gated(&self) -> bool {
        matches!(self.cfg.variant, Variant::Fixed | Variant::StateThenGate)
    }

    /// Appends `events` to the active segment; returns once they are
    /// inserted (acknowledged).
    ///
    /// # Errors
    /// [`AppendError`] with the events handed back when the insert failed;
    /// nothing was acknowledged.
    ///
    /// # Cancel safety
    /// Not cancel safe: dropped mid-insert, the batch may or may not be
    /// written (it was never acknowledged) and the writer is dropped.
    pub async fn append(&self, events: Vec<Event>) -> Result<(), AppendError> {
        let _gate = if self.gated() && self.flaw != Flaw::AppendUngated {
            Some(self.gate.lock().await)
        } else {
            None
        };
        if _gate.is_some() {
            tracing::debug!("append acquired the write gate");
        }
        let (seg, writer) = match self.take_writer().await {
            Ok(w) => w,
            Err(error) => return Err(AppendError { error, events }),
        };
        let mut meta = SegMeta::empty();
        meta.note(&events);
        let ids = || events.iter().map(|e| e.id).collect::<Vec<_>>();
        tracing::info!(seg, ids = ?ids(), "append took the writer of segment {seg} and inserts");
        let (writer, result) = self.backend.insert(writer, events).await;
        if let Some(seam) = &self.append_seam {
            drop(seam.lock().await);
        }
        self.restore(seg, writer, result.is_ok().then_some(meta));
        tracing::debug!(
            seg,
            ok = result.is_ok(),
            "append {}",
            if result.is_ok() {
                "acknowledged"
            } else {
                "failed: not acknowledged"
            }
        );
        if _gate.is_some() {
            tracing::debug!("append releases the write gate");
        }
        result.map_err(|(error, events)| AppendError { error, events })
    }

    async fn take_writer(&self) -> Result<(SegmentId, B::Writer), BackendError> {
        let taken = self.state.with(|s| s.writer.take().ok_or(s.active));
        match taken {
            Ok(w) => Ok(w),
            Err(seg) => Ok((seg, self.backend.open_writer(seg).await?)),
        }
    }

    fn restore(&self, seg: SegmentId, writer: B::Writer, committed: Option<SegMeta>) {
        let variant = self.cfg.variant;
        let dropped = self.state.with(|s| {
            if let (Some(c), Some(m)) = (committed, s.segments.get_mut(&seg)) {
                m.newest_ms = m.newest_ms.max(c.newest_ms);
                m.oldest_ms = match (m.oldest_ms, c.oldest_ms) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            let active = s.active;
            if variant == Variant::PreFix {
                // The historical bug: restore whatever writer we took,
                // even if retention rolled its segment meanwhile.
                tracing::info!(
                    seg,
                    active,
                    stale = seg != active,
                    "append restored the writer of segment {seg} (active segment {active}){}",
                    if seg == active { "" } else { ": STALE" }
                );
                return s.writer.replace((seg, writer));
            }
            if s.active == seg && s.writer.is_none() {
                tracing::debug!(seg, "append restored the writer of segment {seg}");
                s.writer = Some((seg, writer));
                None
            } else {
                tracing::info!(
                    seg,
                    active,
                    "append dropped the writer of segment {seg} (active segment {active})"
                );
                Some((seg, writer))
            }
        });
        drop(dropped); // closes a connection outside the state lock
    }

    /// One retention pass at `now_ms`: discards the active segment when all
    /// its rows are past the cutoff, archives it when it is older than the
    /// segment span, and deletes archived segments past the cutoff.
    ///
    /// # Errors
    /// [`BackendError`] from a checkpoint or delete; the state is already
    /// updated (the segment is gone from the store's view).
    pub async fn retention(&self, now_ms: u64) -> Result<RetentionReport, BackendError> {
        let cutoff = now_ms.saturating_sub(self.cfg.retention_ms);
        let held_through_cleanup;
        let archive_before = now_ms.saturating_sub(self.cfg.segment_span_ms);
        let mut report = RetentionReport::default();
        {
            // Test-only flaw: the rows' ages read before the gate.
            let seen = (self.flaw == Flaw::DecideBeforeGate).then(|| {
                self.state.with(|s| {
                    s.segments
                        .get(&s.active)
                        .map(|m| (m.newest_ms, m.oldest_ms))
                })
            });
            let gated = self.cfg.variant == Variant::Fixed && self.flaw != Flaw::RetentionUngated;
            let gate: Option<GateGuard<'_, ()>> = if gated {
                Some(self.gate.lock().await)
            } else {
                None
            };
            if gate.is_some() {
                tracing::debug!(cutoff_ms = cutoff, "retention acquired the write gate");
            }
            let (roll, old_writer) = self.roll_active(cutoff, archive_before, seen);
            drop(old_writer);
            match roll {
                Some(Roll::Discard(seg)) => {
                    self.backend.checkpoint(seg).await?;
                    self.backend.delete(seg).await?;
                    tracing::info!(seg, "retention deleted segment {seg}");
                    report.discarded_active = Some(seg);
                }
                Some(Roll::Archive(seg)) => {
                    self.backend.checkpoint(seg).await?;
                    report.archived_active = Some(seg);
                }
                None => {}
            }
            if gate.is_some() {
                tracing::debug!("retention releases the write gate");
            }
            // Test-only flaw: the gate held through the archived cleanup.
            held_through_cleanup = (self.flaw == Flaw::GatesArchivedCleanup).then_some(gate);
        }
        self.delete_expired_archived(cutoff, &mut report).await?;
        drop(held_through_cleanup);
        Ok(report)
    }

    /// Deletes the archived segments whose rows are all past `cutoff`.
    /// Needs no gate: appends never touch archived segments (in the fixed
    /// store).
    async fn delete_expired_archived(
        &self,
        cutoff: u64,
        report: &mut RetentionReport,
    ) -> Result<(), BackendError> {
        let expired: Vec<SegmentId> = self.state.with(|s| {
            let active = s.active;
            let ids: Vec<SegmentId> = s
                .segments
                .iter()
                .filter(|(&id, m)| id != active && m.newest_ms.is_none_or(|n| n < cutoff))
                .map(|(&id, _)| id)
                .collect();
            for id in &ids {
                s.segments.remove(id);
            }
            ids
        });
        for seg in expired {
            self.backend.delete(seg).await?;
            tracing::debug!(seg, "retention deleted archived segment {seg}");
            report.deleted_archived.push(seg);
        }
        Ok(())
    }

    /// Rolls the active segment over if its rows are old enough: judged on
    /// the segment's current rows, or on `seen` (newest, oldest row times
    /// read earlier: only with the test-only [`Flaw::DecideBeforeGate`]).
    #[allow(clippy::type_complexity)]
    fn roll_active(
        &self,
        cutoff: u64,
        archive_before: u64,
        seen: Option<Option<(Option<u64>, Option<u64>)>>,
    ) -> (Option<Roll>, Option<(SegmentId, B::Writer)>) {
        let decide = |s: &mut State<B::Writer>| {
            let meta = s.segments.get(&s.active)?;
            let (newest_ms, oldest_ms) = seen.unwrap_or(Some((meta.newest_ms, meta.oldest_ms)))?;
            let newest = newest_ms?;
            let old = s.active;
            let roll = if newest < cutoff {
                s.segments.remove(&old);
                Roll::Discard(old)
            } else if oldest_ms.is_some_and(|o| o < archive_before) {
                Roll::Archive(old)
            } else {
                return None;
            };
            s.active = old + 1;
            tracing::info!(
                from = old,
                to = s.active,
                discard = matches!(roll, Roll::Discard(_)),
                writer_in_state = s.writer.is_some(),
                "retention rolled segment {old} to {}",
                s.active
            );
            s.segments.insert(s.active, SegMeta::empty());
            Some(roll)
        };
        self.state.with(|s| {
            if self.cfg.variant == Variant::StateThenGate {
                // Test-only inverted order: state mutex, then the gate.
                let _g = self.gate.try_lock();
                let roll = decide(s);
                return (roll, s.writer.take());
            }
            let roll = decide(s);
            let w = if roll.is_some() {
                s.writer.take()
            } else {
                None
            };
            (roll, w)
        })
    }

    /// Events with `from_ms <= ts_ms < to_ms` in the store's segments.
    /// Takes only the state mutex (never the gate).
    ///
    /// # Errors
    /// [`BackendError`] when a segment cannot be read.
    pub async fn query(&self, from_ms: u64, to_ms: u64) -> Result<Vec<Event>, BackendError> {
        let _gate = if self.flaw == Flaw::QueryTakesGate {
            Some(self.gate.lock().await) // test-only flaw
        } else {
            None
        };
        let segs: Vec<SegmentId> = self.state.with(|s| s.segments.keys().copied().collect());
        self.backend.query(segs, from_ms, to_ms).await
    }

    /// The invariant that must hold whenever the state lock is free: the
    /// writer in the state (if any) writes to the active segment.
    ///
    /// # Errors
    /// A description of the divergence.
    pub fn check_writer_is_active(&self) -> Result<(), String> {
        self.state.with(|s| match &s.writer {
            Some((seg, _)) if *seg != s.active => Err(format!(
                "the active writer writes to segment {seg} but the active segment is {}",
                s.active
            )),
            _ => Ok(()),
        })
    }

    /// The active segment's id.
    pub fn active_segment(&self) -> SegmentId {
        self.state.with(|s| s.active)
    }

    /// Tasks queued for the write gate now (observability, and tests that
    /// must see retention *held* by the gate rather than merely late).
    pub fn gate_waiters(&self) -> usize {
        self.gate.waiters()
    }
}

/// Events of `acked` with `ts_ms >= cutoff_ms` that are missing from
/// `found`: the no-loss oracle.
pub fn missing_events(acked: &[Event], found: &[Event], cutoff_ms: u64) -> Vec<Event> {
    let have: std::collections::BTreeSet<u64> = found.iter().map(|e| e.id).collect();
    acked
        .iter()
        .filter(|e| e.ts_ms >= cutoff_ms && !have.contains(&e.id))
        .cloned()
        .collect()
}
