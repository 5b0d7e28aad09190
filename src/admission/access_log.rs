//! A plain access log converted into a load ([`super::load`]): one request
//! per line, `TIMESTAMP PATH BYTES` separated by white space (further
//! fields are ignored), e.g.
//!
//! ```text
//! 2026-05-08T08:21:00.120Z /api/v1/subtree_data/9f2c... 5123456789
//! 1778228460.5 /api/v1/subtree_data/41d7... 20000000000
//! ```
//!
//! `TIMESTAMP` is RFC 3339 in UTC (`Z`, with or without fractional
//! seconds) or Unix seconds (with or without a fraction); `BYTES` is the
//! response's size. Blank lines and lines starting with `#` are skipped.
//!
//! What a log does not say is assumed, as [`LogConversion`] states: every
//! file is missing when the log starts (its first request creates it, later
//! ones find it in the file store), a file of `BYTES` has
//! `BYTES / mean item size` items of the given sizes, and every client reads
//! at one speed. Lines are sorted by time (a server logs a request when it
//! ends, so a log is only nearly in order).

use super::load::{Arrival, ItemBytes, LoadError, ARRIVALS_MAX, ITEMS_MAX, KEY_CHARS_MAX};
use crate::retry::date::{days_from_civil, days_in_month};

/// What the conversion assumes where a log says nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConversion {
    /// The sizes of a file's items. Default nine in ten 300 B payments,
    /// one in ten a 100 KB data carrier (about 10 KB on average).
    pub item_bytes: ItemBytes,
    /// How fast every client reads, bytes per second. Default 100 MB/s.
    pub client_bytes_per_s: u64,
}

impl Default for LogConversion {
    fn default() -> Self {
        LogConversion {
            item_bytes: ItemBytes::Mix(vec![(90, 300), (10, 100_000)]),
            client_bytes_per_s: 100_000_000,
        }
    }
}

/// Converts the access log `text` into a load.
///
/// # Errors
/// [`LoadError::Line`] for the first line that is not `TIMESTAMP PATH
/// BYTES` (with its number and what is wrong), or for more than
/// [`ARRIVALS_MAX`] requests.
pub fn from_access_log(text: &str, conv: &LogConversion) -> Result<Vec<Arrival>, LoadError> {
    let mean = conv.item_bytes.mean_bytes().max(1);
    let mut rows: Vec<(u64, String, u64)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |what: String| LoadError::Line { line: i + 1, what };
        let mut fields = line.split_whitespace();
        let (Some(ts), Some(path), Some(bytes)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(bad("expected `TIMESTAMP PATH BYTES`".into()));
        };
        let at_ms = timestamp_ms(ts)
            .ok_or_else(|| bad(format!("`{ts}` is neither RFC 3339 UTC nor Unix seconds")))?;
        let bytes: u64 = bytes
            .parse()
            .map_err(|_| bad(format!("`{bytes}` is not a byte count")))?;
        if path.chars().count() > KEY_CHARS_MAX {
            return Err(bad(format!("the path is over {KEY_CHARS_MAX} characters")));
        }
        if rows.len() >= ARRIVALS_MAX {
            return Err(bad(format!("more than {ARRIVALS_MAX} requests")));
        }
        rows.push((at_ms, path.to_string(), bytes));
    }
    rows.sort_by_key(|r| r.0);
    let start = rows.first().map_or(0, |r| r.0);
    Ok(rows
        .into_iter()
        .map(|(at_ms, key, bytes)| Arrival {
            at_ms: at_ms - start,
            key,
            exists: false,
            items: bytes.div_ceil(mean).clamp(1, ITEMS_MAX),
            item_bytes: conv.item_bytes.clone(),
            client_bytes_per_s: conv.client_bytes_per_s.max(1),
        })
        .collect())
}

/// Unix ms of an RFC 3339 UTC time stamp or of Unix seconds.
fn timestamp_ms(ts: &str) -> Option<u64> {
    if ts.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return seconds_ms(ts);
    }
    let ts = ts.strip_suffix('Z').or_else(|| ts.strip_suffix("+00:00"))?;
    let (date, time) = ts.split_once(['T', 't'])?;
    let d: Vec<&str> = date.split('-').collect();
    let [y, mo, day] = d.as_slice() else {
        return None;
    };
    let (y, mo, day) = (digits(y, 4)?, digits(mo, 2)?, digits(day, 2)?);
    if y < 1970 || !(1..=12).contains(&mo) || day == 0 || day > days_in_month(y, mo) {
        return None;
    }
    let t: Vec<&str> = time.splitn(3, ':').collect();
    let [h, mi, s] = t.as_slice() else {
        return None;
    };
    let (h, mi) = (digits(h, 2)?, digits(mi, 2)?);
    if h > 23 || mi > 59 || s.len() < 2 || !s.as_bytes()[..2].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let s_ms = seconds_ms(s)?;
    if s_ms >= 61_000 {
        return None;
    }
    let day_ms = (h * 3_600 + mi * 60) * 1_000 + s_ms;
    Some(days_from_civil(y, mo, day) * 86_400_000 + day_ms)
}

/// `SS` or `SS.fff...` (any digits) as ms, rounded down.
fn seconds_ms(s: &str) -> Option<u64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let ms = frac.bytes().chain(std::iter::repeat(b'0')).take(3);
    let ms = ms.fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'));
    whole.checked_mul(1_000)?.checked_add(ms)
}

fn digits(s: &str, n: usize) -> Option<u64> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_time_stamp_forms() {
        assert_eq!(timestamp_ms("0"), Some(0));
        assert_eq!(timestamp_ms("1.5"), Some(1_500));
        assert_eq!(timestamp_ms("1970-01-01T00:00:01Z"), Some(1_000));
        assert_eq!(
            timestamp_ms("2026-05-08T08:21:00.12Z"),
            Some(1_778_228_460_120)
        );
        assert_eq!(timestamp_ms("1778228460.12"), Some(1_778_228_460_120));
        for bad in [
            "",
            "x",
            "2026-02-30T00:00:00Z",
            "2026-05-08T24:00:00Z",
            "1.2.3",
            "2026-05-08T08:21:00+02:00",
        ] {
            assert_eq!(timestamp_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_log_becomes_a_load_in_time_order() {
        let log = "# t path bytes\n2.0 /b 2000\n\n1.0 /a 1000 extra fields\n3.5 /a 1000\n";
        let conv = LogConversion {
            item_bytes: ItemBytes::Fixed(100),
            client_bytes_per_s: 7,
        };
        let load = from_access_log(log, &conv).unwrap();
        let got: Vec<(u64, &str, u64)> = load
            .iter()
            .map(|a| (a.at_ms, a.key.as_str(), a.items))
            .collect();
        assert_eq!(got, [(0, "/a", 10), (1_000, "/b", 20), (2_500, "/a", 10)]);
        assert!(load.iter().all(|a| !a.exists && a.client_bytes_per_s == 7));
    }

    #[test]
    fn bad_lines_are_named() {
        let conv = LogConversion::default();
        for (log, line, what) in [
            ("1 /a 10\n1 /a\n", 2, "TIMESTAMP PATH BYTES"),
            ("yesterday /a 10\n", 1, "neither RFC 3339"),
            ("1 /a lots\n", 1, "not a byte count"),
        ] {
            match from_access_log(log, &conv) {
                Err(LoadError::Line { line: l, what: w }) => {
                    assert_eq!(l, line, "{log}");
                    assert!(w.contains(what), "{w}");
                }
                other => panic!("{log}: {other:?}"),
            }
        }
    }
}
