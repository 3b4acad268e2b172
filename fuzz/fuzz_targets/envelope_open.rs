//! Fuzz target: see `kintsugi_tests::fuzz::envelope_open` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kintsugi_tests::fuzz::envelope_open(data));
