//! Fuzz target `kafka_rest_v3`: the fuzzer's bytes through `pipe::fuzz_entry::kafka_rest_v3`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipe::fuzz_entry::kafka_rest_v3(data));
