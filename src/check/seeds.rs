//! Which seeds a sweep runs: a range `A..B` and a shard `K/N` of it.

use std::fmt;
use std::str::FromStr;

/// Seeds `start..end` (end excluded), never empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    /// First seed.
    pub start: u64,
    /// One past the last seed.
    pub end: u64,
}

impl SeedRange {
    /// The range of one seed.
    pub fn single(seed: u64) -> Self {
        SeedRange {
            start: seed,
            end: seed.saturating_add(1),
        }
    }

    /// Seeds in the range.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Always false: a range holds at least one seed.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

impl FromStr for SeedRange {
    type Err = String;

    /// Parses `A..B`, e.g. `0..200`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, b) = s
            .split_once("..")
            .ok_or_else(|| format!("bad seed range '{s}': expected A..B, e.g. 0..200"))?;
        let num = |t: &str| {
            t.trim()
                .parse::<u64>()
                .map_err(|_| format!("bad seed range '{s}': '{t}' is not a seed (0 or more)"))
        };
        let (start, end) = (num(a)?, num(b)?);
        if start >= end {
            return Err(format!(
                "bad seed range '{s}': it is empty (the end is excluded, so B must exceed A)"
            ));
        }
        Ok(SeedRange { start, end })
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// Shard `index` of `count` (1-based): seed `s` belongs to it when
/// `s % count == index - 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `1..=count`.
    pub index: u64,
    /// Shards in all, at least 1.
    pub count: u64,
}

impl Shard {
    /// The single shard that holds every seed.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// Whether `seed` belongs to this shard.
    pub fn holds(&self, seed: u64) -> bool {
        seed % self.count == self.index - 1
    }

    /// The seeds of `range` in this shard, in order.
    pub fn seeds(&self, range: SeedRange) -> impl Iterator<Item = u64> + '_ {
        let skip = (self.index - 1 + self.count - range.start % self.count) % self.count;
        let first = range.start.checked_add(skip).unwrap_or(range.end);
        (first..range.end).step_by(self.count as usize)
    }

    /// How many seeds of `range` this shard holds.
    pub fn count_in(&self, range: SeedRange) -> u64 {
        self.seeds(range).count() as u64
    }
}

impl FromStr for Shard {
    type Err = String;

    /// Parses `K/N` with `1 <= K <= N`, e.g. `2/4`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("bad shard '{s}': expected K/N, e.g. 2/4"))?;
        let num = |t: &str| {
            t.trim()
                .parse::<u64>()
                .map_err(|_| format!("bad shard '{s}': '{t}' is not a number"))
        };
        let (index, count) = (num(k)?, num(n)?);
        if count == 0 {
            return Err(format!("bad shard '{s}': N must be at least 1"));
        }
        if index == 0 || index > count {
            return Err(format!("bad shard '{s}': K must be in 1..={count}"));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_reject_empty_or_malformed() {
        assert_eq!("0..200".parse(), Ok(SeedRange { start: 0, end: 200 }));
        for bad in ["5..2", "5..5", "a..3", "3", "..3", "-1..3"] {
            assert!(bad.parse::<SeedRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_parse_and_reject_out_of_range() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/3", "4/3", "1/0", "x/2", "2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_partition_a_range_in_order() {
        let range = SeedRange { start: 7, end: 40 };
        let mut all: Vec<u64> = Vec::new();
        for index in 1..=3 {
            let shard = Shard { index, count: 3 };
            let seeds: Vec<u64> = shard.seeds(range).collect();
            assert!(seeds.iter().all(|&s| s % 3 == index - 1), "{seeds:?}");
            assert!(seeds.windows(2).all(|w| w[0] < w[1]));
            assert_eq!(shard.count_in(range), seeds.len() as u64);
            all.extend(seeds);
        }
        all.sort_unstable();
        assert_eq!(all, (7..40).collect::<Vec<_>>());
    }
}
