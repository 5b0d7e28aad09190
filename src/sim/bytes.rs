//! The fuzzer's schedule policy: every choice (which task runs next, each
//! fault coin, each draw) is read from a byte string, so a coverage-guided
//! fuzzer that mutates the bytes explores interleavings and fault
//! combinations. Past the end of the bytes every answer is the default
//! (keep running, no fault, zero), so any input is a complete, finite run.

use super::policy::{Mismatch, Policy, TaskId};

/// Answers every choice from `bytes`, in order.
///
/// * pick: one byte; below `0x80` keeps the default task (no preemption),
///   otherwise runs `eligible[(b & 0x7f) % len]`;
/// * coin: one byte `b`; true when `b * 1_000_000 / 256 < p_ppm`, so byte 0
///   strikes any fault that is on;
/// * draw below `bound`: as many bytes as `bound` needs (little-endian),
///   modulo `bound`.
#[derive(Clone, Debug)]
pub struct BytesPolicy {
    bytes: Vec<u8>,
    next: usize,
}

impl BytesPolicy {
    /// A policy reading `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        BytesPolicy { bytes, next: 0 }
    }

    fn byte(&mut self) -> Option<u8> {
        let b = self.bytes.get(self.next).copied();
        self.next += usize::from(b.is_some());
        b
    }
}

impl Policy for BytesPolicy {
    fn pick(&mut self, eligible: &[TaskId], default: usize) -> Result<usize, Mismatch> {
        Ok(match self.byte() {
            Some(b) if b >= 0x80 => usize::from(b & 0x7f) % eligible.len().max(1),
            _ => default,
        })
    }

    fn coin(&mut self, p_ppm: u32) -> Result<bool, Mismatch> {
        Ok(self
            .byte()
            .is_some_and(|b| u64::from(b) * 1_000_000 / 256 < u64::from(p_ppm)))
    }

    fn draw(&mut self, bound: u64) -> Result<u64, Mismatch> {
        let bytes_needed = (64 - bound.saturating_sub(1).leading_zeros()).div_ceil(8);
        let mut v = 0u64;
        for i in 0..bytes_needed {
            match self.byte() {
                Some(b) => v |= u64::from(b) << (8 * i),
                None => break,
            }
        }
        Ok(v % bound.max(1))
    }

    fn name(&self) -> &'static str {
        "bytes"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_come_from_the_bytes_then_defaults() {
        let mut p = BytesPolicy::new(vec![0x00, 0x81, 0x00, 0x07, 0x34, 0x12]);
        assert_eq!(p.pick(&[4, 5, 6], 2).unwrap(), 2, "low byte: default");
        assert_eq!(p.pick(&[4, 5, 6], 2).unwrap(), 1, "0x81 -> 1 % 3");
        assert!(p.coin(5_000).unwrap(), "byte 0 strikes");
        assert!(!p.coin(5_000).unwrap(), "byte 7 does not at 0.5%");
        assert_eq!(p.draw(0x1_0000).unwrap(), 0x1234, "two bytes, LE");
        assert_eq!(p.pick(&[4, 5], 0).unwrap(), 0, "exhausted: default");
        assert!(!p.coin(999_999).unwrap(), "exhausted: no fault");
        assert_eq!(p.draw(10).unwrap(), 0, "exhausted: zero");
    }
}
