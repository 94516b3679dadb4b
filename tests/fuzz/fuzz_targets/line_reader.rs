//! Fuzz target `line_reader`: the fuzzer's bytes through `pipe::fuzz_entry::line_reader`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipe::fuzz_entry::line_reader(data));
