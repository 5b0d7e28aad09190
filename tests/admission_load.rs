//! The asset service's load files and generators: every malformed line is
//! reported with its number and what is wrong; the parser never panics;
//! generated loads are deterministic, in time order, of the asked rate and
//! round-trip through the file format; the shipped load files parse.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::admission::load::{
    bursts, ln_unit, parse_load, poisson, ramp, read_load, to_json_lines, Arrival, ItemBytes,
    LoadError, Shape,
};
use proptest::prelude::*;
use std::path::Path;

const GOOD: &str = r#"{"at_ms": 0, "key": "a", "exists": false, "items": 10, "item_bytes": {"fixed": 300}, "client_bytes_per_s": 1000}"#;

fn line_error(text: &str) -> (usize, String) {
    match parse_load(text) {
        Err(LoadError::Line { line, what }) => (line, what),
        other => panic!("expected a line error for {text:?}, got {other:?}"),
    }
}

fn with(field: &str, value: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
    v[field] = serde_json::from_str(value).unwrap();
    v.to_string()
}

#[test]
fn every_item_size_form_parses() {
    let forms = [
        (r#"{"fixed": 300}"#, ItemBytes::Fixed(300)),
        (
            r#"{"uniform": [200, 500000]}"#,
            ItemBytes::Uniform([200, 500_000]),
        ),
        (r#"{"list": [1, 2, 3]}"#, ItemBytes::List(vec![1, 2, 3])),
        (
            r#"{"mix": [[70, 300], [30, 500000]]}"#,
            ItemBytes::Mix(vec![(70, 300), (30, 500_000)]),
        ),
    ];
    for (json, want) in forms {
        let load = parse_load(&with("item_bytes", json)).unwrap();
        assert_eq!(load[0].item_bytes, want, "{json}");
    }
}

#[test]
fn malformed_lines_are_reported_with_their_number_and_reason() {
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "not valid JSON: key must be a string"),
        (r#"{"at_ms": 0, "key""#.into(), "not valid JSON: EOF"),
        (
            r#"{"at_ms": 0, "key": "a", "exists": false, "items": 10, "client_bytes_per_s": 1}"#
                .into(),
            "missing field `item_bytes`",
        ),
        (with("colour", "\"red\""), "unknown field `colour`"),
        (with("items", "\"many\""), "invalid type: string \"many\""),
        (with("at_ms", "-5"), "invalid value: integer `-5`"),
        (with("item_bytes", r#"{"uniform": [9, 1]}"#), "LO <= HI"),
        (with("item_bytes", r#"{"list": []}"#), "1 to 10000 sizes"),
        (with("item_bytes", r#"{"mix": [[0, 5]]}"#), "weight > 0"),
        (
            with("item_bytes", r#"{"normal": 5}"#),
            "unknown variant `normal`",
        ),
        (
            with("item_bytes", r#"{"fixed": 99999999999}"#),
            "over the limit",
        ),
        (with("client_bytes_per_s", "0"), "at least 1"),
        (with("key", "\"\""), "`key` needs 1 to"),
        (with("items", "1000000000000"), "`items` is"),
    ];
    for (bad, reason) in cases {
        let text = format!("# a comment\n{GOOD}\n\n{bad}\n{GOOD}\n");
        let (line, what) = line_error(&text);
        assert_eq!(line, 4, "{bad}: {what}");
        assert!(what.contains(reason), "{bad}: {what:?} lacks {reason:?}");
        let shown = parse_load(&text).unwrap_err().to_string();
        assert!(shown.starts_with("load line 4: "), "{shown}");
        println!("{shown}");
    }
}

#[test]
fn arrivals_out_of_time_order_are_refused() {
    let late = with("at_ms", "100");
    let (line, what) = line_error(&format!("{late}\n{GOOD}\n"));
    assert_eq!(line, 2);
    assert!(
        what.contains("earlier than the previous arrival's 100"),
        "{what}"
    );
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let e = read_load(Path::new("/nonexistent/load.jsonl")).unwrap_err();
    assert!(matches!(e, LoadError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("/nonexistent/load.jsonl"), "{e}");
}

#[test]
fn the_shipped_load_files_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sims/loads");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        let load = read_load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            load.len() >= 20,
            "{}: {} arrivals",
            path.display(),
            load.len()
        );
        println!("{}: {} arrivals", path.display(), load.len());
        files += 1;
    }
    assert!(files >= 2, "expected the two shipped load files");
}

fn shape() -> Shape {
    Shape {
        key_prefix: "k/".into(),
        exists_ppm: 250_000,
        items_min: 100,
        items_max: 5_000,
        item_bytes: ItemBytes::Mix(vec![(70, 300), (30, 500_000)]),
        client_bytes_per_s_min: 1_000_000,
        client_bytes_per_s_max: 50_000_000,
    }
}

fn in_order(load: &[Arrival]) -> bool {
    load.windows(2).all(|w| w[0].at_ms <= w[1].at_ms)
}

#[test]
fn poisson_has_the_asked_rate_and_is_deterministic() {
    // 100/s for 60 s: 6,000 expected, standard deviation about 77.
    let load = poisson(&shape(), 100.0, 60_000, 7);
    assert!((5_600..=6_400).contains(&load.len()), "{}", load.len());
    assert!(in_order(&load));
    assert_eq!(load, poisson(&shape(), 100.0, 60_000, 7));
    assert_ne!(load, poisson(&shape(), 100.0, 60_000, 8));
    let existing = load.iter().filter(|a| a.exists).count() as f64 / load.len() as f64;
    assert!((0.2..0.3).contains(&existing), "{existing}");
    assert!(load.iter().all(|a| (100..=5_000).contains(&a.items)));
}

#[test]
fn a_ramp_rises() {
    let load = ramp(&shape(), 1.0, 100.0, 60_000, 3);
    let first = load.iter().filter(|a| a.at_ms < 30_000).count();
    let second = load.len() - first;
    // Expected 25.75 / s vs 75.25 / s on average over the two halves.
    assert!(second > 2 * first, "{first} then {second}");
    assert!(in_order(&load));
    assert!(ramp(&shape(), 0.0, -1.0, 60_000, 3).is_empty());
    assert!(ramp(&shape(), f64::NAN, f64::INFINITY, 60_000, 3).is_empty());
}

#[test]
fn bursts_come_in_their_windows() {
    let load = bursts(&shape(), 3, 40, 10_000, 500, 9);
    assert_eq!(load.len(), 120);
    assert!(in_order(&load));
    for a in &load {
        assert!(a.at_ms % 10_000 <= 500, "{}", a.at_ms);
    }
}

#[test]
fn generated_loads_round_trip_through_the_file_format() {
    let load = bursts(&shape(), 2, 30, 1_000, 100, 1);
    assert_eq!(parse_load(&to_json_lines(&load)).unwrap(), load);
}

#[test]
fn item_sizes_are_a_pure_function_with_the_asked_mix() {
    let mix = ItemBytes::Mix(vec![(70, 300), (30, 500_000)]);
    let sizes: Vec<u64> = (0..10_000).map(|i| mix.bytes_of("k", i)).collect();
    assert_eq!(
        sizes,
        (0..10_000)
            .map(|i| mix.bytes_of("k", i))
            .collect::<Vec<_>>()
    );
    let big = sizes.iter().filter(|&&b| b == 500_000).count();
    assert!((2_700..3_300).contains(&big), "{big}");
    assert_eq!(mix.max_bytes(), 500_000);
    assert_eq!(mix.mean_bytes(), 150_210);
    let uniform = ItemBytes::Uniform([10, 20]);
    assert!((0..1_000).all(|i| (10..=20).contains(&uniform.bytes_of("u", i))));
    let list = ItemBytes::List(vec![1, 2, 3]);
    assert_eq!(
        (0..6).map(|i| list.bytes_of("l", i)).collect::<Vec<_>>(),
        [1, 2, 3, 1, 2, 3]
    );
}

#[test]
fn the_portable_log_matches_libm() {
    for i in 1..=100_000u64 {
        let x = i as f64 / 100_000.0;
        let (ours, libm) = (ln_unit(x), x.ln());
        assert!(
            (ours - libm).abs() <= 1e-14 * libm.abs().max(1.0),
            "{x}: {ours} vs {libm}"
        );
    }
    assert_eq!(ln_unit(1.0), 0.0);
    assert!((ln_unit(f64::MIN_POSITIVE) - f64::MIN_POSITIVE.ln()).abs() < 1e-9);
}

fn arrival() -> impl Strategy<Value = Arrival> {
    let bytes = prop_oneof![
        (0..=1_000_000u64).prop_map(ItemBytes::Fixed),
        (0..1_000u64, 0..1_000u64).prop_map(|(a, b)| ItemBytes::Uniform([a.min(b), a.max(b)])),
        prop::collection::vec(0..1_000_000u64, 1..5).prop_map(ItemBytes::List),
        prop::collection::vec((1..100u32, 0..1_000_000u64), 1..4).prop_map(ItemBytes::Mix),
    ];
    (
        0..1_000u64,
        "[a-z/0-9\"\\\\ é]{1,20}",
        any::<bool>(),
        0..1_000_000u64,
        bytes,
        1..u64::MAX,
    )
        .prop_map(
            |(at_ms, key, exists, items, item_bytes, client_bytes_per_s)| Arrival {
                at_ms,
                key,
                exists,
                items,
                item_bytes,
                client_bytes_per_s,
            },
        )
}

proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 500, failure_persistence: None, ..Default::default() })]

    #[test]
    fn any_text_parses_or_names_a_line(text in any::<String>()) {
        match parse_load(&text) {
            Ok(_) => {}
            Err(LoadError::Line { line, .. }) => prop_assert!(line >= 1 && line <= text.lines().count()),
            Err(e) => prop_assert!(false, "{}", e),
        }
    }

    #[test]
    fn json_like_lines_parse_or_name_a_line(lines in prop::collection::vec(
        prop_oneof![Just(GOOD.to_string()), "[{}\\[\\]:,\" a-z0-9_-]{0,40}", Just(with("items", "-1"))], 0..6)) {
        let text = lines.join("\n");
        if let Err(LoadError::Line { line, .. }) = parse_load(&text) {
            prop_assert!(line >= 1 && line <= lines.len());
        }
    }

    #[test]
    fn arrivals_round_trip(mut load in prop::collection::vec(arrival(), 0..8)) {
        load.sort_by_key(|a| a.at_ms);
        prop_assert_eq!(parse_load(&to_json_lines(&load)).unwrap(), load);
    }
}
