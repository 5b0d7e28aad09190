//! Property tests of the trace sink's endpoint parser: every form it
//! accepts (`http://host:port`, `https://host:port`, `host:port`, `host`,
//! each scheme also without a port, IPv6 in brackets) parses to the
//! expected endpoint; the canonical form round-trips; bad ports, unknown
//! schemes and empty hosts get their clear error; any string either parses
//! to an endpoint whose canonical form parses back to it, or errs, never
//! panics. A parser twin that reads the port with `str::parse::<u16>`
//! (accepting `0` and `+80`) must be caught.
#![cfg(not(any(faultline_loom, faultline_shuttle)))]

use faultline::trace_writer::{Endpoint, EndpointError, Scheme};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::net::{Ipv4Addr, Ipv6Addr};

type Parse = fn(&str) -> Result<Endpoint, EndpointError>;

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]([a-z0-9_-]{0,10}[a-z0-9])?(\\.[a-z0-9]{1,8}){0,3}",
        any::<[u8; 4]>().prop_map(|o| Ipv4Addr::from(o).to_string()),
        any::<[u16; 8]>().prop_map(|s| Ipv6Addr::from(s).to_string()),
    ]
}

fn scheme() -> impl Strategy<Value = Option<Scheme>> {
    prop_oneof![
        Just(None),
        Just(Some(Scheme::Http)),
        Just(Some(Scheme::Https))
    ]
}

/// Writes an endpoint in one of the accepted forms.
fn render(scheme: Option<Scheme>, host: &str, port: Option<u16>, upper: bool) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let mut s = match scheme {
        Some(sc) if upper => format!("{}://{host}", sc.as_str().to_uppercase()),
        Some(sc) => format!("{}://{host}", sc.as_str()),
        None => host,
    };
    if let Some(p) = port {
        s.push_str(&format!(":{p}"));
    }
    s
}

fn accepted_forms(parse: Parse, runner: &mut TestRunner) -> Result<(), String> {
    let strategy = (
        scheme(),
        host(),
        proptest::option::of(1u16..),
        any::<bool>(),
    );
    runner
        .run(&strategy, |(scheme, host, port, upper)| {
            let text = render(scheme, &host, port, upper);
            let sc = scheme.unwrap_or(Scheme::Http);
            let want = Endpoint {
                scheme: sc,
                host: host.clone(),
                port: port.unwrap_or(sc.default_port()),
            };
            let got = parse(&text).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
            prop_assert_eq!(&got, &want, "parsing {:?}", text);
            let again = parse(&got.to_string());
            prop_assert_eq!(again.as_ref(), Ok(&got), "canonical form {}", got);
            Ok(())
        })
        .map_err(|e| e.to_string())
}

fn bad_ports_and_schemes(parse: Parse, runner: &mut TestRunner) -> Result<(), String> {
    let out_of_range = prop_oneof![Just(0u64), 65_536u64..100_000_000_000u64];
    let strategy = (
        host().prop_filter("no IPv6", |h| !h.contains(':')),
        out_of_range,
        "[a-z]{1,8}",
        "[+a-z. -]{1,4}[0-9]{0,3}",
    );
    runner
        .run(&strategy, |(host, port, scheme, junk)| {
            let text = format!("{host}:{port}");
            let want = EndpointError::PortOutOfRange(port.to_string());
            prop_assert_eq!(parse(&text), Err(want), "{}", text);
            let text = format!("{host}:{junk}");
            prop_assert!(
                matches!(parse(&text), Err(EndpointError::BadPort(_))),
                "{}",
                text
            );
            if scheme != "http" && scheme != "https" {
                let text = format!("{scheme}://{host}");
                let want = EndpointError::UnknownScheme(scheme.clone());
                prop_assert_eq!(parse(&text), Err(want), "{}", text);
            }
            prop_assert_eq!(
                parse(&format!("http://:{}", port % 65_535 + 1)),
                Err(EndpointError::EmptyHost)
            );
            Ok(())
        })
        .map_err(|e| e.to_string())
}

fn any_string_parses_canonically_or_errs(
    parse: Parse,
    runner: &mut TestRunner,
) -> Result<(), String> {
    runner
        .run(&"[ -~]{0,24}", |text| {
            if let Ok(e) = parse(&text) {
                prop_assert!((1..=65_535).contains(&e.port));
                prop_assert_eq!(parse(&e.to_string()), Ok(e.clone()), "{:?}", text);
            }
            Ok(())
        })
        .map_err(|e| e.to_string())
}

fn runner() -> TestRunner {
    deterministic_runner(Config {
        cases: 2_000,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn every_accepted_form_parses_and_round_trips() {
    accepted_forms(Endpoint::parse, &mut runner()).unwrap();
}

#[test]
fn bad_ports_unknown_schemes_and_empty_hosts_get_clear_errors() {
    bad_ports_and_schemes(Endpoint::parse, &mut runner()).unwrap();
}

#[test]
fn arbitrary_strings_never_panic_and_canonicalize() {
    any_string_parses_canonically_or_errs(Endpoint::parse, &mut runner()).unwrap();
}

/// The twin: like the real parser, but a port that `str::parse::<u16>`
/// reads (`0`, `+80`) is taken.
fn lenient_port(text: &str) -> Result<Endpoint, EndpointError> {
    match Endpoint::parse(text) {
        Err(EndpointError::PortOutOfRange(p) | EndpointError::BadPort(p)) => {
            let port: u16 = p.parse().map_err(|_| EndpointError::BadPort(p.clone()))?;
            let without = text.trim().trim_end_matches('/');
            let without = without.strip_suffix(&format!(":{p}")).unwrap_or(without);
            Ok(Endpoint {
                port,
                ..Endpoint::parse(without)?
            })
        }
        other => other,
    }
}

#[test]
fn a_parser_that_takes_port_zero_and_plus_signs_is_caught() {
    let failure = bad_ports_and_schemes(lenient_port, &mut runner())
        .expect_err("the lenient port parser was not caught");
    println!("caught the lenient port parser: {failure}");
    assert!(
        failure.contains("PortOutOfRange") || failure.contains("BadPort"),
        "{failure}"
    );
}

/// A runner on proptest's fixed-seed ChaCha stream: a twin that must catch a
/// planted bug does so on every run, not on most.
fn deterministic_runner(config: Config) -> TestRunner {
    TestRunner::new_with_rng(
        config,
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    )
}
