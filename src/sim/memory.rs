//! The memory meter: code charges and releases bytes (through
//! `probe::charge`); crossing the limit is an OOM failure naming the site.

/// Samples kept for plots, at most.
pub const SAMPLES_MAX: usize = 100_000;

/// Memory held over virtual time.
#[derive(Debug, Default)]
pub struct MemoryMeter {
    /// Bytes held now.
    pub current: u64,
    /// The most ever held.
    pub peak: u64,
    /// The limit, if any.
    pub limit: Option<u64>,
    /// `(virtual ns, bytes held)`, one per instant at which it changed.
    pub samples: Vec<(u64, u64)>,
}

impl MemoryMeter {
    pub(crate) fn new(limit: Option<u64>) -> Self {
        MemoryMeter {
            limit,
            ..Default::default()
        }
    }

    /// Charges `bytes` at `now_ns`; returns the bytes held when that crosses
    /// the limit.
    pub(crate) fn charge(&mut self, now_ns: u64, bytes: u64) -> Option<u64> {
        self.current = self.current.saturating_add(bytes);
        self.peak = self.peak.max(self.current);
        self.sample(now_ns);
        match self.limit {
            Some(limit) if self.current > limit => Some(self.current),
            _ => None,
        }
    }

    pub(crate) fn release(&mut self, now_ns: u64, bytes: u64) {
        self.current = self.current.saturating_sub(bytes);
        self.sample(now_ns);
    }

    fn sample(&mut self, now_ns: u64) {
        let current = self.current;
        if let Some(last) = self.samples.last_mut().filter(|l| l.0 == now_ns) {
            last.1 = current;
        } else if self.samples.len() < SAMPLES_MAX {
            self.samples.push((now_ns, current));
        }
    }
}
