//! Replays the committed fuzz corpus (`tests/fuzz/corpus/<target>/`) through the
//! same `pipe::fuzz_entry` functions the fuzz targets in `tests/fuzz/` run, so every
//! input a fuzzer once found interesting (and every crash fixed since) is checked on
//! each `cargo test` without building the fuzzers. A panic fails the test, and so
//! does an empty or missing corpus directory.

use std::path::Path;

fn replay(target: &str, entry: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus of `{target}` ({}) cannot be read: {e}", dir.display()))
        .map(|e| e.expect("a corpus directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "the corpus of `{target}` ({}) is empty",
        dir.display()
    );
    for file in &files {
        let data = std::fs::read(file).expect("a corpus file");
        let outcome = std::panic::catch_unwind(|| entry(&data));
        assert!(outcome.is_ok(), "`{target}` panicked on {}", file.display());
    }
}

#[test]
fn http_body() {
    replay("http_body", pipe::fuzz_entry::http_body);
}

#[test]
fn kafka_rest() {
    replay("kafka_rest", pipe::fuzz_entry::kafka_rest);
}

#[test]
fn kafka_rest_v3() {
    replay("kafka_rest_v3", pipe::fuzz_entry::kafka_rest_v3);
}

#[test]
fn compressed_body() {
    replay("compressed_body", pipe::fuzz_entry::compressed_body);
}

#[test]
fn line_reader() {
    replay("line_reader", pipe::fuzz_entry::line_reader);
}

#[test]
fn template() {
    replay("template", pipe::fuzz_entry::template);
}

#[test]
fn config() {
    replay("config", pipe::fuzz_entry::config);
}

#[test]
fn beats_frames() {
    replay("beats_frames", pipe::fuzz_entry::beats_frames);
}
