//! Fuzz target `beats_frames`: the fuzzer's bytes through `pipe::fuzz_entry::beats_frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipe::fuzz_entry::beats_frames(data));
