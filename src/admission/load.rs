//! Load for the asset service: a JSON-lines file format of request
//! arrivals, its parser, and generators (Poisson, bursts, a ramp) so a
//! scenario can say "ramp load until OOM" or replay a recorded-style file.
//!
//! One arrival per line, in time order:
//!
//! ```text
//! {"at_ms": 0, "key": "subtree/000001", "exists": false, "items": 4096,
//!  "item_bytes": {"mix": [[70, 300], [30, 500000]]}, "client_bytes_per_s": 20000000}
//! ```
//! (one line in a real file). `item_bytes` is one of `{"fixed": N}`,
//! `{"uniform": [LO, HI]}`, `{"list": [A, B, ...]}` (cycled by item index)
//! or `{"mix": [[WEIGHT, BYTES], ...]}`. Blank lines and lines starting with
//! `#` are skipped. [`parse_load`] reports the first bad line with its
//! number and what is wrong with it; it never panics, whatever the input.
//!
//! Item sizes are a pure function of (key, item index) ([`ItemBytes::bytes_of`]),
//! and the generators use only IEEE basic arithmetic on a seeded ChaCha
//! stream, so a load is the same on every machine.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Items of one file at most.
pub const ITEMS_MAX: u64 = 100_000_000;
/// Bytes of one item at most (64 MiB).
pub const ITEM_BYTES_MAX: u64 = 64 << 20;
/// Entries of an `item_bytes` list or mix at most.
pub const SIZE_ENTRIES_MAX: usize = 10_000;
/// Characters of a key at most.
pub const KEY_CHARS_MAX: usize = 1_024;
/// Arrivals one generator call produces at most.
pub const ARRIVALS_MAX: usize = 2_000_000;

/// How big a file's items are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ItemBytes {
    /// Every item has this many bytes.
    Fixed(u64),
    /// Uniform in `[lo, hi]` (inclusive), per item.
    Uniform([u64; 2]),
    /// These sizes in turn (item `i` has `list[i % len]`).
    List(Vec<u64>),
    /// `(weight, bytes)` pairs: each item picks one with probability
    /// proportional to its weight (small payments vs 500 KB carriers).
    Mix(Vec<(u32, u64)>),
}

impl ItemBytes {
    /// The size of item `index` of file `key`: a pure function of both.
    pub fn bytes_of(&self, key: &str, index: u64) -> u64 {
        self.bytes_at(key_hash(key), index)
    }

    /// The sizes of items `range` of file `key` (`bytes_of` for each,
    /// hashing the key once).
    pub fn sizes(&self, key: &str, range: std::ops::Range<u64>) -> Vec<u64> {
        let k = key_hash(key);
        range.map(|i| self.bytes_at(k, i)).collect()
    }

    fn bytes_at(&self, key_hash: u64, index: u64) -> u64 {
        match self {
            ItemBytes::Fixed(b) => *b,
            ItemBytes::Uniform([lo, hi]) => {
                let span = hi.saturating_sub(*lo).saturating_add(1);
                lo + item_hash(key_hash, index) % span.max(1)
            }
            ItemBytes::List(list) => {
                let len = list.len().max(1) as u64;
                list.get((index % len) as usize).copied().unwrap_or(0)
            }
            ItemBytes::Mix(mix) => {
                let total: u64 = mix.iter().map(|&(w, _)| u64::from(w)).sum();
                let mut r = item_hash(key_hash, index) % total.max(1);
                for &(w, b) in mix {
                    if r < u64::from(w) {
                        return b;
                    }
                    r -= u64::from(w);
                }
                0
            }
        }
    }

    /// The largest size an item can have.
    pub fn max_bytes(&self) -> u64 {
        match self {
            ItemBytes::Fixed(b) => *b,
            ItemBytes::Uniform([lo, hi]) => *lo.max(hi),
            ItemBytes::List(list) => list.iter().copied().max().unwrap_or(0),
            ItemBytes::Mix(mix) => mix
                .iter()
                .filter(|&&(w, _)| w > 0)
                .map(|&(_, b)| b)
                .max()
                .unwrap_or(0),
        }
    }

    /// The mean item size (rounded down).
    pub fn mean_bytes(&self) -> u64 {
        match self {
            ItemBytes::Fixed(b) => *b,
            ItemBytes::Uniform([lo, hi]) => lo / 2 + hi / 2 + (lo % 2 + hi % 2) / 2,
            ItemBytes::List(list) => {
                let sum: u128 = list.iter().map(|&b| u128::from(b)).sum();
                (sum / list.len().max(1) as u128) as u64
            }
            ItemBytes::Mix(mix) => {
                let total: u64 = mix.iter().map(|&(w, _)| u64::from(w)).sum();
                let sum: u128 = mix
                    .iter()
                    .map(|&(w, b)| u128::from(w) * u128::from(b))
                    .sum();
                (sum / u128::from(total.max(1))) as u64
            }
        }
    }

    fn check(&self) -> Result<(), String> {
        let entries = match self {
            ItemBytes::Fixed(b) => vec![*b],
            ItemBytes::Uniform([lo, hi]) => {
                if lo > hi {
                    return Err(format!("`uniform` needs LO <= HI, got [{lo}, {hi}]"));
                }
                vec![*lo, *hi]
            }
            ItemBytes::List(list) => list.clone(),
            ItemBytes::Mix(mix) => {
                if mix.iter().all(|&(w, _)| w == 0) {
                    return Err("`mix` needs at least one entry of weight > 0".into());
                }
                mix.iter().map(|&(_, b)| b).collect()
            }
        };
        if entries.is_empty() || entries.len() > SIZE_ENTRIES_MAX {
            return Err(format!(
                "`item_bytes` needs 1 to {SIZE_ENTRIES_MAX} sizes, got {}",
                entries.len()
            ));
        }
        match entries.iter().find(|&&b| b > ITEM_BYTES_MAX) {
            Some(b) => Err(format!(
                "an item of {b} bytes is over the limit of {ITEM_BYTES_MAX}"
            )),
            None => Ok(()),
        }
    }
}

/// One request: at `at_ms` (from the load's start), a client reading at
/// `client_bytes_per_s` asks for file `key`, which exists already or is
/// created on demand from `items` items of `item_bytes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrival {
    /// When the request arrives, ms from the load's start.
    pub at_ms: u64,
    /// The derived file asked for.
    pub key: String,
    /// Whether the file exists before the load starts (fast path).
    pub exists: bool,
    /// Items in the file.
    pub items: u64,
    /// The items' sizes.
    pub item_bytes: ItemBytes,
    /// How fast the client reads, bytes per second.
    pub client_bytes_per_s: u64,
}

impl Arrival {
    /// The file's size as the mean item size times the items (what an
    /// existing file is given).
    pub fn file_bytes_estimate(&self) -> u64 {
        self.items.saturating_mul(self.item_bytes.mean_bytes())
    }

    fn check(&self) -> Result<(), String> {
        if self.key.is_empty() || self.key.chars().count() > KEY_CHARS_MAX {
            return Err(format!("`key` needs 1 to {KEY_CHARS_MAX} characters"));
        }
        if self.items > ITEMS_MAX {
            return Err(format!(
                "`items` is {} > the limit of {ITEMS_MAX}",
                self.items
            ));
        }
        if self.client_bytes_per_s == 0 {
            return Err("`client_bytes_per_s` must be at least 1".into());
        }
        self.item_bytes.check()
    }

    /// The arrival as one JSON line (without the newline).
    pub fn to_json_line(&self) -> String {
        // Plain data with string keys: serialization cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why a load could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The file could not be read.
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        error: String,
    },
    /// A line is malformed.
    Line {
        /// The line's number, from 1.
        line: usize,
        /// What is wrong with it.
        what: String,
    },
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io { path, error } => write!(f, "cannot read load file {path}: {error}"),
            LoadError::Line { line, what } => write!(f, "load line {line}: {what}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// Parses a load (JSON lines, see the module docs).
///
/// # Errors
/// [`LoadError::Line`] for the first malformed line: not JSON, a missing,
/// unknown or mistyped field, a value out of range, or an arrival earlier
/// than the one before it.
pub fn parse_load(text: &str) -> Result<Vec<Arrival>, LoadError> {
    let mut out: Vec<Arrival> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |what: String| LoadError::Line { line: i + 1, what };
        let a: Arrival = serde_json::from_str(line).map_err(|e| bad(json_error(&e)))?;
        a.check().map_err(bad)?;
        if let Some(prev) = out.last() {
            if a.at_ms < prev.at_ms {
                return Err(bad(format!(
                    "`at_ms` {} is earlier than the previous arrival's {}: arrivals must be in time order",
                    a.at_ms, prev.at_ms
                )));
            }
        }
        out.push(a);
    }
    Ok(out)
}

/// Reads and parses the load file at `path`.
///
/// # Errors
/// [`LoadError::Io`] when it cannot be read, else as [`parse_load`].
pub fn read_load(path: &std::path::Path) -> Result<Vec<Arrival>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError::Io {
        path: path.display().to_string(),
        error: e.to_string(),
    })?;
    parse_load(&text)
}

/// The load as JSON lines, one arrival per line.
pub fn to_json_lines(arrivals: &[Arrival]) -> String {
    let mut out = String::new();
    for a in arrivals {
        out.push_str(&a.to_json_line());
        out.push('\n');
    }
    out
}

/// serde_json's message without its "at line 1 column N" (the line is
/// ours), with the column kept.
fn json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let msg = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(m, _)| m);
    let kind = match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            "not valid JSON: "
        }
        _ => "",
    };
    format!("{kind}{msg} (column {})", e.column())
}

/// What a generated arrival looks like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Keys are this prefix and the arrival's index.
    pub key_prefix: String,
    /// Chance (per million) that the file exists already.
    pub exists_ppm: u32,
    /// Items per file, uniform in `items_min..=items_max`.
    pub items_min: u64,
    /// See `items_min`.
    pub items_max: u64,
    /// Item sizes of every file.
    pub item_bytes: ItemBytes,
    /// Client read speed, uniform in `client_bytes_per_s_min..=_max`.
    pub client_bytes_per_s_min: u64,
    /// See `client_bytes_per_s_min`.
    pub client_bytes_per_s_max: u64,
}

impl Shape {
    fn arrival(&self, rng: &mut ChaCha8Rng, index: usize, at_ms: u64) -> Arrival {
        let exists = below(rng, 1_000_000) < u64::from(self.exists_ppm);
        let items = between(rng, self.items_min, self.items_max);
        let speed = between(
            rng,
            self.client_bytes_per_s_min,
            self.client_bytes_per_s_max,
        );
        Arrival {
            at_ms,
            key: format!("{}{index:06}", self.key_prefix),
            exists,
            items,
            item_bytes: self.item_bytes.clone(),
            client_bytes_per_s: speed.max(1),
        }
    }
}

/// A Poisson process of `rate_per_s` arrivals per second for `duration_ms`
/// (at most [`ARRIVALS_MAX`] arrivals).
pub fn poisson(shape: &Shape, rate_per_s: f64, duration_ms: u64, seed: u64) -> Vec<Arrival> {
    ramp(shape, rate_per_s, rate_per_s, duration_ms, seed)
}

/// A Poisson process whose rate rises (or falls) linearly from
/// `rate_from_per_s` to `rate_to_per_s` over `duration_ms` (thinning), at
/// most [`ARRIVALS_MAX`] arrivals: "ramp load until OOM".
pub fn ramp(
    shape: &Shape,
    rate_from_per_s: f64,
    rate_to_per_s: f64,
    duration_ms: u64,
    seed: u64,
) -> Vec<Arrival> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let usable = |r: f64| if r.is_finite() && r > 0.0 { r } else { 0.0 };
    let (from, to) = (usable(rate_from_per_s), usable(rate_to_per_s));
    let peak = from.max(to);
    let mut out = Vec::new();
    if peak <= 0.0 || duration_ms == 0 {
        return out;
    }
    let end_ms = duration_ms as f64;
    let mut t_ms = 0.0;
    while out.len() < ARRIVALS_MAX {
        t_ms += -ln_unit(unit(&mut rng)) * 1_000.0 / peak;
        if t_ms >= end_ms {
            break;
        }
        let rate = from + (to - from) * (t_ms / end_ms);
        if unit(&mut rng) * peak <= rate {
            let index = out.len();
            out.push(shape.arrival(&mut rng, index, t_ms as u64));
        }
    }
    out
}

/// `bursts` bursts of `per_burst` arrivals, one burst every `gap_ms`, each
/// spread uniformly over `spread_ms` (at most [`ARRIVALS_MAX`] arrivals).
pub fn bursts(
    shape: &Shape,
    bursts: u32,
    per_burst: u32,
    gap_ms: u64,
    spread_ms: u64,
    seed: u64,
) -> Vec<Arrival> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut times = Vec::new();
    'all: for b in 0..u64::from(bursts) {
        for _ in 0..per_burst {
            if times.len() >= ARRIVALS_MAX {
                break 'all;
            }
            times.push(
                b.saturating_mul(gap_ms)
                    .saturating_add(below(&mut rng, spread_ms.saturating_add(1))),
            );
        }
    }
    times.sort_unstable();
    times
        .into_iter()
        .enumerate()
        .map(|(i, at_ms)| shape.arrival(&mut rng, i, at_ms))
        .collect()
}

/// A uniform draw in `0..bound` (`0` when `bound == 0`).
fn below(rng: &mut ChaCha8Rng, bound: u64) -> u64 {
    ((u128::from(rng.next_u64()) * u128::from(bound)) >> 64) as u64
}

/// A uniform draw in `lo..=hi` (`lo` when `hi <= lo`).
fn between(rng: &mut ChaCha8Rng, lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        return lo;
    }
    lo + below(rng, (hi - lo).saturating_add(1))
}

/// A uniform draw in `(0, 1]`.
fn unit(rng: &mut ChaCha8Rng) -> f64 {
    ((rng.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
}

/// `ln(x)` for `x` in `(0, 1]` from IEEE basic operations only (no libm,
/// whose last bit may differ between platforms): `x = m * 2^e` and
/// `ln m = 2 atanh((m - 1) / (m + 1))` by its series.
pub fn ln_unit(x: f64) -> f64 {
    let bits = x.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i64 - 1_023;
    let m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1_023u64 << 52));
    let z = (m - 1.0) / (m + 1.0);
    let z2 = z * z;
    let (mut term, mut sum) = (z, 0.0);
    for k in 0..24 {
        sum += term / f64::from(2 * k + 1);
        term *= z2;
    }
    e as f64 * std::f64::consts::LN_2 + 2.0 * sum
}

/// FNV-1a of `key`.
fn key_hash(key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A well-mixed hash of (key hash, index): splitmix64.
fn item_hash(key_hash: u64, index: u64) -> u64 {
    let mut z = key_hash ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
