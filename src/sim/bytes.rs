//! The fuzzer's schedule policy: every choice (which task runs next, each
//! fault coin, each draw) is read from a byte string, so a coverage-guided
//! fuzzer that mutates the bytes explores interleavings and fault
//! combinations. Past the end of the bytes the answers come from a
//! ChaCha stream seeded with a hash of the bytes: the tail of every input is
//! a random-policy run of its own, so a fuzzer finds at least what a random
//! seed sweep finds, while the bytes steer the front of the run. Any input is
//! a complete, finite run, and the same input always gives the same run.

use super::policy::{Mismatch, Policy, TaskId};
use super::random::below;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

/// Answers every choice from `bytes`, in order.
///
/// * pick: one byte; below `0x80` keeps the default task (no preemption),
///   otherwise runs `eligible[(b & 0x7f) % len]`;
/// * coin: one byte `b`; true when `b * 1_000_000 / 256 < p_ppm`, so byte 0
///   strikes any fault that is on;
/// * draw below `bound`: as many bytes as `bound` needs (little-endian),
///   modulo `bound`;
/// * past the end: uniform answers from the tail stream (seeded with the
///   FNV-1a hash of `bytes`), as [`RandomPolicy`](super::RandomPolicy) gives.
#[derive(Clone, Debug)]
pub struct BytesPolicy {
    bytes: Vec<u8>,
    next: usize,
    tail: ChaCha8Rng,
}

/// FNV-1a, 64 bits: the tail stream's seed.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl BytesPolicy {
    /// A policy reading `bytes`, then its tail stream.
    pub fn new(bytes: Vec<u8>) -> Self {
        let tail = ChaCha8Rng::seed_from_u64(fnv1a(&bytes));
        BytesPolicy {
            bytes,
            next: 0,
            tail,
        }
    }

    fn exhausted(&self) -> bool {
        self.next >= self.bytes.len()
    }

    fn byte(&mut self) -> Option<u8> {
        let b = self.bytes.get(self.next).copied();
        self.next += usize::from(b.is_some());
        b
    }
}

impl Policy for BytesPolicy {
    fn pick(&mut self, eligible: &[TaskId], default: usize) -> Result<usize, Mismatch> {
        if self.exhausted() {
            return Ok(below(&mut self.tail, eligible.len().max(1) as u64) as usize);
        }
        Ok(match self.byte() {
            Some(b) if b >= 0x80 => usize::from(b & 0x7f) % eligible.len().max(1),
            _ => default,
        })
    }

    fn coin(&mut self, p_ppm: u32) -> Result<bool, Mismatch> {
        if self.exhausted() {
            return Ok(below(&mut self.tail, 1_000_000) < u64::from(p_ppm));
        }
        Ok(self
            .byte()
            .is_some_and(|b| u64::from(b) * 1_000_000 / 256 < u64::from(p_ppm)))
    }

    fn draw(&mut self, bound: u64) -> Result<u64, Mismatch> {
        if self.exhausted() {
            return Ok(below(&mut self.tail, bound.max(1)));
        }
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
    fn answers_come_from_the_bytes_then_the_tail_stream() {
        let mut p = BytesPolicy::new(vec![0x00, 0x81, 0x00, 0x07, 0x34, 0x12]);
        assert_eq!(p.pick(&[4, 5, 6], 2).unwrap(), 2, "low byte: default");
        assert_eq!(p.pick(&[4, 5, 6], 2).unwrap(), 1, "0x81 -> 1 % 3");
        assert!(p.coin(5_000).unwrap(), "byte 0 strikes");
        assert!(!p.coin(5_000).unwrap(), "byte 7 does not at 0.5%");
        assert_eq!(p.draw(0x1_0000).unwrap(), 0x1234, "two bytes, LE");
        let mut q = p.clone();
        let tail: Vec<u64> = (0..64).map(|_| p.draw(1_000).unwrap()).collect();
        let again: Vec<u64> = (0..64).map(|_| q.draw(1_000).unwrap()).collect();
        assert_eq!(tail, again, "exhausted: the same input, the same tail");
        assert!(
            tail.iter().any(|&v| v != tail[0]),
            "exhausted: not a constant"
        );
        assert!(
            tail.iter().all(|&v| v < 1_000),
            "exhausted: within the bound"
        );
        let picks: Vec<usize> = (0..64).map(|_| p.pick(&[4, 5], 0).unwrap()).collect();
        assert!(picks.contains(&1), "exhausted: preempts too");
    }

    #[test]
    fn different_bytes_give_different_tails() {
        let tail = |bytes: Vec<u8>| {
            let mut p = BytesPolicy::new(bytes);
            (0..16)
                .map(|_| p.draw(u64::MAX).unwrap())
                .collect::<Vec<_>>()
        };
        assert_ne!(tail(vec![]), tail(vec![0]));
        assert_ne!(tail(vec![1, 2]), tail(vec![2, 1]));
    }
}
