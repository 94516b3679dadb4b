//! Fuzz target `template`: the fuzzer's bytes through `pipe::fuzz_entry::template`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipe::fuzz_entry::template(data));
