//! The replay-file parser never panics: malformed input is a clean error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| faultline_sims::fuzz::replay_file(data));
