//! The file source under rotation, run through the real binary: rename rotation
//! (logrotate's default, keeping five generations and deleting the oldest) and
//! copytruncate. Every line written must arrive.

mod common;

use common::*;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

const LINES: u64 = 200_000;
const GENERATIONS: u32 = 5;

/// Appends `LINES` numbered lines to `dir/app.log`, calling `rotate` every 50 ms
/// between two writes. Returns how many rotations happened.
fn write_with_rotation(dir: &Path, mut rotate: impl FnMut(&Path) -> fs::File) -> u32 {
    let path = dir.join("app.log");
    let mut file = OpenOptions::new().create(true).append(true).open(&path).unwrap();
    let mut last = Instant::now();
    let mut rotations = 0;
    let mut n = 0;
    while n < LINES {
        let mut chunk = String::new();
        for _ in 0..50 {
            if n < LINES {
                chunk.push_str(&line(n));
                n += 1;
            }
        }
        file.write_all(chunk.as_bytes()).unwrap();
        if last.elapsed() >= Duration::from_millis(50) {
            file = rotate(&path);
            rotations += 1;
            last = Instant::now();
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    rotations
}

/// Shifts app.log.1..app.log.4 up by one, deleting the oldest, like logrotate.
fn shift_generations(path: &Path) {
    let generation = |i: u32| path.with_extension(format!("log.{i}"));
    let _ = fs::remove_file(generation(GENERATIONS));
    for i in (1..GENERATIONS).rev() {
        let _ = fs::rename(generation(i), generation(i + 1));
    }
}

fn run_and_collect(dir: &Path, rotate: impl FnMut(&Path) -> fs::File) -> (u32, Vec<String>, usize, std::path::PathBuf) {
    let input = dir.join("in");
    fs::create_dir_all(&input).unwrap();
    let topology = tail_topology(dir, &format!("{}/app.log*", input.display()), "");
    let log = dir.join("pipe.log");
    let pipe = Pipe::start(&topology, &log);
    wait_started(&log);
    let rotations = write_with_rotation(&input, rotate);
    let out = dir.join("out");
    let arrived = wait_for(60, || count_lines(&out) >= LINES as usize);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(pipe.stop(30), 0, "pipe should exit 0 on SIGTERM");
    if !arrived {
        let _ = fs::copy(&log, std::env::temp_dir().join("pipe-failed-test.log"));
        let (m, _) = messages(&out);
        let (missing, dups) = missing_and_duplicates(&tally(&m), LINES);
        eprintln!(
            "{} missing in ranges {:?}, {dups} duplicates",
            missing.len(),
            ranges(&missing)
        );
    }
    assert!(
        arrived,
        "not every line arrived in time: {} of {LINES}\n{}",
        count_lines(&out),
        tail(&log, 40)
    );
    let (messages, torn) = messages(&out);
    (rotations, messages, torn, log)
}

#[test]
fn rename_rotation_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (rotations, messages, torn, _) = run_and_collect(dir.path(), |path| {
        shift_generations(path);
        fs::rename(path, path.with_extension("log.1")).unwrap();
        OpenOptions::new().create(true).append(true).open(path).unwrap()
    });
    let counts = tally(&messages);
    let (missing, dups) = missing_and_duplicates(&counts, LINES);
    eprintln!(
        "rename rotation: {rotations} rotations, {} lines out, {} missing, {dups} duplicates",
        messages.len(),
        missing.len()
    );
    assert!(
        rotations >= 5,
        "the writer should have rotated at least 5 times, did {rotations}"
    );
    assert_eq!(torn, 0);
    assert!(
        missing.is_empty(),
        "missing lines, first: {:?}",
        &missing[..missing.len().min(10)]
    );
    assert_eq!(dups, 0, "a renamed file must never be read twice");
}

#[test]
fn copytruncate_rotation_loses_nothing_and_reports_each_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let (rotations, messages, torn, log) = run_and_collect(dir.path(), |path| {
        shift_generations(path);
        fs::copy(path, path.with_extension("log.1")).unwrap();
        let f = OpenOptions::new().write(true).open(path).unwrap();
        f.set_len(0).unwrap();
        // The writer keeps appending through an O_APPEND handle, as programs do.
        OpenOptions::new().append(true).open(path).unwrap()
    });
    let counts = tally(&messages);
    let (missing, dups) = missing_and_duplicates(&counts, LINES);
    // Each truncation is counted; the log line is written at most once a second.
    let reported = exit_counter(&log, "logs", "file_truncated").unwrap_or(0);
    let logged = log_lines_with(&log, "truncated or rewritten in place").len();
    eprintln!(
        "copytruncate: {rotations} truncations, {reported} counted ({logged} logged), {} lines out, {} missing, {dups} duplicates",
        messages.len(),
        missing.len()
    );
    assert_eq!(torn, 0);
    assert!(
        missing.is_empty(),
        "missing lines, first: {:?}",
        &missing[..missing.len().min(10)]
    );
    assert!(
        reported >= 1 && reported <= rotations as u64,
        "{reported} truncations reported for {rotations}"
    );
    assert!(
        logged >= 1 && logged as u64 <= reported,
        "{logged} lines for {reported} truncations"
    );
    // A truncation of content never read (a copy made before pipe read any of it)
    // cannot be seen and loses nothing; under load a few of those happen.
    assert!(
        reported as f64 >= rotations as f64 * 0.75,
        "most truncations must be reported: {reported} of {rotations}"
    );
}
