//! Fuzz target `kafka_rest`: the fuzzer's bytes through `pipe::fuzz_entry::kafka_rest`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipe::fuzz_entry::kafka_rest(data));
