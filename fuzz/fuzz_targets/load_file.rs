//! The load-file parser never panics and round-trips what it accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| faultline::fuzz::load_file(data));
