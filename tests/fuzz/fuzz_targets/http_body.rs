//! Fuzz target `http_body`: the fuzzer's bytes through `pipe::fuzz_entry::http_body`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipe::fuzz_entry::http_body(data));
