//! Fuzz target `compressed_body`: the fuzzer's bytes through `pipe::fuzz_entry::compressed_body`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipe::fuzz_entry::compressed_body(data));
