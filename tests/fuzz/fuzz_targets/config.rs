//! Fuzz target `config`: the fuzzer's bytes through `pipe::fuzz_entry::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipe::fuzz_entry::config(data));
