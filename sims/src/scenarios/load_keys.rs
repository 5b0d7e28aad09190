//! [`LoadKeys`]: a load's arrivals found by key, without copying the keys.
//!
//! An hour of load is millions of arrivals; copying each key into a map per
//! run, and looking each up in a map that big, costs more than simulating
//! the requests. Here the arrivals stay in the shared load, sorted by key
//! in an index of positions, and a lookup searches from where the last one
//! ended (a *finger*): callers ask for the keys of arrivals in arrival
//! order, and generated keys (`prefix` + zero-padded index) sort in that
//! order too, so a lookup is a comparison or two on memory that is already
//! in cache. Any order of lookups gets the right answer; only its speed
//! depends on the finger.

use faultline::admission::load::Arrival;
use faultline::sync::{AtomicUsize, DynArc, Ordering};
use std::ops::Range;

/// A shared load's arrivals by key; see the module docs.
pub struct LoadKeys {
    load: DynArc<[Arrival]>,
    /// Arrival indices sorted by key; one key's arrivals in arrival order.
    sorted: Vec<usize>,
    /// Where the last lookup ended: where the next one starts searching.
    finger: AtomicUsize,
}

impl LoadKeys {
    /// The index of `load` (a stable sort of its positions by key: linear
    /// work when the load is mostly in key order already).
    pub fn new(load: &DynArc<[Arrival]>) -> Self {
        let mut sorted: Vec<usize> = (0..load.len()).collect();
        sorted.sort_by(|&a, &b| load[a].key.cmp(&load[b].key));
        LoadKeys {
            load: DynArc::clone(load),
            sorted,
            finger: AtomicUsize::new(0),
        }
    }

    /// The load.
    pub fn load(&self) -> &[Arrival] {
        &self.load
    }

    /// The arrivals of `key` (its *group*), as a range of positions in key
    /// order; `None` when no arrival has that key. A group's start is the
    /// same for every lookup of its key.
    pub fn group(&self, key: &str) -> Option<Range<usize>> {
        let start = self.lower_bound(key);
        let end = start
            + self.sorted[start..]
                .iter()
                .take_while(|&&i| self.load[i].key == key)
                .count();
        (end > start).then_some(start..end)
    }

    /// The arrivals of a group, in arrival order.
    pub fn arrivals(&self, group: Range<usize>) -> impl DoubleEndedIterator<Item = &Arrival> {
        self.sorted[group].iter().map(|&i| &self.load[i])
    }

    /// Positions in key order (what a group's range counts in).
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether the load is empty.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    fn key_at(&self, pos: usize) -> &str {
        &self.load[self.sorted[pos]].key
    }

    /// The first position whose key is not less than `key`: a galloping
    /// search from the finger, then a binary search in the bracket found.
    fn lower_bound(&self, key: &str) -> usize {
        let n = self.sorted.len();
        let f = self.finger.load(Ordering::Relaxed).min(n);
        // The answer lies in `lo..=hi`.
        let (lo, hi) = if f < n && self.key_at(f) < key {
            let (mut lo, mut step) = (f + 1, 1);
            loop {
                let probe = f.saturating_add(step);
                if probe >= n {
                    break (lo, n);
                }
                if self.key_at(probe) >= key {
                    break (lo, probe);
                }
                (lo, step) = (probe + 1, step * 2);
            }
        } else {
            let (mut hi, mut step) = (f, 1);
            loop {
                if step > f {
                    break (0, hi);
                }
                let probe = f - step;
                if self.key_at(probe) < key {
                    break (probe + 1, hi);
                }
                (hi, step) = (probe, step * 2);
            }
        };
        let at = lo + self.sorted[lo..hi].partition_point(|&i| self.load[i].key.as_str() < key);
        self.finger.store(at, Ordering::Relaxed);
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline::admission::load::ItemBytes;

    fn arrival(key: &str, items: u64) -> Arrival {
        Arrival {
            at_ms: 0,
            key: key.into(),
            exists: false,
            items,
            item_bytes: ItemBytes::Fixed(1),
            client_bytes_per_s: 1,
        }
    }

    #[test]
    fn every_key_is_found_from_any_finger() {
        let keys = ["m", "c", "x", "c", "a", "q", "c", "z", "b"];
        let load: DynArc<[Arrival]> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| arrival(k, i as u64))
            .collect();
        let index = LoadKeys::new(&load);
        for start in 0..=index.len() + 1 {
            for probe in ["", "a", "b", "bb", "c", "d", "m", "q", "x", "y", "z", "zz"] {
                index.finger.store(start, Ordering::Relaxed);
                let found = index
                    .group(probe)
                    .map(|g| index.arrivals(g).map(|a| a.items).collect::<Vec<_>>());
                let expected: Vec<u64> = (0..keys.len() as u64)
                    .filter(|&i| keys[i as usize] == probe)
                    .collect();
                let expected = (!expected.is_empty()).then_some(expected);
                assert_eq!(found, expected, "key {probe:?} from finger {start}");
            }
        }
    }

    #[test]
    fn lookups_in_load_order_find_each_arrival() {
        let load: DynArc<[Arrival]> = (0..2_000u64)
            .map(|i| arrival(&format!("asset/{i:06}"), i))
            .collect();
        let index = LoadKeys::new(&load);
        for a in load.iter() {
            let g = index.group(&a.key).expect("present");
            assert_eq!(index.arrivals(g).next().map(|a| a.items), Some(a.items));
        }
        assert!(index.group("asset/").is_none());
        assert!(index.group("asset/999999").is_none());
        assert!(LoadKeys::new(&DynArc::from(Vec::new()))
            .group("a")
            .is_none());
    }
}
