//! `Retry-After` parsing (RFC 9110 section 10.2.3): delta-seconds or an
//! HTTP-date (IMF-fixdate, and the obsolete RFC 850 and asctime forms).
//! "Now" is always a parameter: wall time comes from the caller's `Clock`.

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// Longest delta-seconds accepted (about 136 years); longer is malformed.
const DELTA_S_MAX: u64 = u32::MAX as u64;

/// The wait a `Retry-After` value asks for, in ms from `now_ms` (Unix ms):
/// `Some(n * 1000)` for delta-seconds `n`, `Some(date - now)` for an
/// HTTP-date (`Some(0)` when it is past), and `None` (no hint) for an
/// empty, negative, fractional or otherwise malformed value.
pub fn parse_retry_after(value: &str, now_ms: u64) -> Option<u64> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = v.parse().ok()?;
        return (secs <= DELTA_S_MAX).then_some(secs * 1_000);
    }
    parse_http_date_ms(v).map(|at_ms| at_ms.saturating_sub(now_ms))
}

/// An HTTP-date as Unix ms, or `None` when malformed.
pub fn parse_http_date_ms(v: &str) -> Option<u64> {
    let t: Vec<&str> = v.split_whitespace().collect();
    let (day, month, year, time) = match t.as_slice() {
        // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
        [wd, d, m, y, hms, "GMT"] => {
            let wd = wd.strip_suffix(',')?;
            if !DAYS.contains(&wd) || d.len() != 2 || y.len() != 4 {
                return None;
            }
            (num(d)?, month_of(m)?, num(y)?, *hms)
        }
        // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
        [wd, dmy, hms, "GMT"] => {
            if !LONG_DAYS.contains(&wd.strip_suffix(',')?) {
                return None;
            }
            let p: Vec<&str> = dmy.split('-').collect();
            let [d, m, y] = p.as_slice() else { return None };
            if d.len() != 2 || y.len() != 2 {
                return None;
            }
            let yy = num(y)?;
            // A fixed pivot (POSIX `strptime`'s): 70..=99 are 19xx,
            // 00..=69 are 20xx. RFC 9110 reads "more than 50 years ahead"
            // as past, which in 2026 would make 70..=76 20xx; the form is
            // obsolete (senders must not generate it), so the simple rule
            // stays.
            let year = if yy >= 70 { 1900 + yy } else { 2000 + yy };
            (num(d)?, month_of(m)?, year, *hms)
        }
        // asctime: "Sun Nov  6 08:49:37 1994"
        [wd, m, d, hms, y] => {
            if !DAYS.contains(wd) || d.is_empty() || d.len() > 2 || y.len() != 4 {
                return None;
            }
            (num(d)?, month_of(m)?, num(y)?, *hms)
        }
        _ => return None,
    };
    let hms: Vec<&str> = time.split(':').collect();
    let [h, mi, s] = hms.as_slice() else {
        return None;
    };
    if h.len() != 2 || mi.len() != 2 || s.len() != 2 {
        return None;
    }
    let (h, mi, s) = (num(h)?, num(mi)?, num(s)?);
    if year < 1970
        || !(1..=days_in_month(year, month)).contains(&day)
        || h > 23
        || mi > 59
        || s > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 86_400) + h * 3_600 + mi * 60 + s) * 1_000)
}

/// Formats Unix seconds as an IMF-fixdate, e.g.
/// `"Thu, 01 Jan 2026 00:00:00 GMT"`.
pub fn format_http_date(unix_s: u64) -> String {
    let days = unix_s / 86_400;
    let rem = unix_s % 86_400;
    let (y, m, d) = civil_from_days(days);
    // 1970-01-01 was a Thursday (index 3 from Monday).
    let wd = DAYS[((days + 3) % 7) as usize];
    format!(
        "{wd}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        MONTHS[(m - 1) as usize],
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

fn num(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn month_of(m: &str) -> Option<u64> {
    MONTHS.iter().position(|&x| x == m).map(|i| i as u64 + 1)
}

fn leap(y: u64) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

pub(crate) fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        2 if leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm),
/// for years >= 1970.
pub(crate) fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_of_rfc_9110() {
        let t = 784_111_777_000; // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_http_date_ms("Sun, 06 Nov 1994 08:49:37 GMT"), Some(t));
        assert_eq!(
            parse_http_date_ms("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(t)
        );
        assert_eq!(parse_http_date_ms("Sun Nov  6 08:49:37 1994"), Some(t));
        assert_eq!(format_http_date(t / 1_000), "Sun, 06 Nov 1994 08:49:37 GMT");
    }

    #[test]
    fn no_hint_for_bad_values() {
        for v in [
            "",
            " ",
            "-1",
            "1.5",
            "abc",
            "1 2",
            "Sun, 32 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(v, 0), None, "{v:?}");
        }
        assert_eq!(parse_retry_after(" 1 ", 0), Some(1_000));
    }
}
