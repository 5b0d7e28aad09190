//! Entry points for the cargo-fuzz targets in `fuzz/` (each target is a
//! thin wrapper over one of these), kept in the library so the ordinary
//! test suite runs them too. Each panics exactly when it found a bug.

/// `store_ops`: runs `ops` on the fixed in-memory store against the
/// reference model ([`crate::store::model`]).
///
/// # Panics
/// When the fixed store breaks the model (a lost, duplicated or phantom
/// event, a writer off the active segment).
pub fn store_ops(ops: &[crate::store::model::StoreOp]) {
    let variant = crate::store::Variant::Fixed;
    if let Err(e) = crate::store::model::run_ops_in_memory(variant, ops) {
        panic!("fixed store broke the model: {e}\nops: {ops:?}");
    }
}

/// `retry_after`: the `Retry-After` parser never panics on any text, and
/// what it accepts round-trips: delta-seconds give back their number, an
/// HTTP-date re-formatted parses to the same instant.
///
/// # Panics
/// When a round trip does not hold.
pub fn retry_after(data: &[u8]) {
    use crate::retry::{format_http_date, parse_http_date_ms, parse_retry_after};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now_ms = 1_767_225_600_000;
    let Some(wait_ms) = parse_retry_after(text, now_ms) else {
        return;
    };
    let t = text.trim();
    if t.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = t.parse().expect("accepted digits parse");
        assert_eq!(wait_ms, secs * 1_000, "delta-seconds {t:?}");
        return;
    }
    let at_ms = parse_http_date_ms(t).expect("an accepted non-number is a date");
    assert_eq!(wait_ms, at_ms.saturating_sub(now_ms), "date {t:?}");
    let again = format_http_date(at_ms / 1_000);
    assert_eq!(
        parse_http_date_ms(&again),
        Some(at_ms - at_ms % 1_000),
        "{t:?} -> {again:?} does not round-trip"
    );
}

/// `load_file`: the load-file parser never panics, and what it accepts
/// round-trips through [`to_json_lines`](crate::admission::load::to_json_lines).
///
/// # Panics
/// When an accepted load does not read back the same.
pub fn load_file(data: &[u8]) {
    use crate::admission::load::{parse_load, to_json_lines};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(load) = parse_load(text) else {
        return;
    };
    let again = parse_load(&to_json_lines(&load));
    assert_eq!(again.as_ref(), Ok(&load), "load does not round-trip");
}

#[cfg(test)]
mod tests {
    #[test]
    fn retry_after_accepts_and_round_trips_the_forms() {
        for v in [
            "120",
            " 5 ",
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "",
            "-3",
            "\u{0}",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            super::retry_after(v.as_bytes());
        }
    }

    #[test]
    fn load_files_round_trip_and_junk_is_rejected() {
        for f in ["subtree-rush.jsonl", "steady-mix.jsonl"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("sims/loads")
                .join(f);
            let text = std::fs::read(&path).expect("shipped load file");
            super::load_file(&text);
            for cut in (0..text.len()).step_by(97) {
                super::load_file(&text[..cut]);
            }
        }
        super::load_file(b"{\"at_ms\": 1}\n\xff");
    }
}
