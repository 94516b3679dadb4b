//! `kill -9` of pipe about every second while a file is being written, restarting it
//! each time: not one line may be missing, and the duplicates (lines delivered before
//! a crash but not yet checkpointed) must stay under 5% of the lines.

mod common;

use common::*;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const LINES: u64 = 300_000;

#[test]
fn kill_9_every_second_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    fs::create_dir_all(&input).unwrap();
    let topology = tail_topology(dir.path(), &format!("{}/*.log", input.display()), "");
    let log = dir.path().join("pipe.log");
    let out = dir.path().join("out");

    // The writer: 300,000 lines over about ten seconds.
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let path = input.join("app.log");
        let done = done.clone();
        std::thread::spawn(move || {
            let mut f = OpenOptions::new().create(true).append(true).open(path).unwrap();
            let start = Instant::now();
            let mut n = 0;
            while n < LINES {
                let due = ((start.elapsed().as_secs_f64() / 10.0) * LINES as f64) as u64 + 100;
                let mut chunk = String::new();
                while n < due.min(LINES) {
                    chunk.push_str(&line(n));
                    n += 1;
                }
                f.write_all(chunk.as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    let mut kills = 0;
    while !done.load(Ordering::SeqCst) {
        let pipe = Pipe::start(&topology, &log);
        std::thread::sleep(Duration::from_millis(700 + (kills * 137) % 600));
        pipe.kill9();
        kills += 1;
    }
    writer.join().unwrap();

    let pipe = Pipe::start(&topology, &log);
    let complete = wait_for(120, || tally(&messages(&out).0).len() as u64 >= LINES);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(pipe.stop(30), 0);
    let (msgs, torn) = messages(&out);
    let counts = tally(&msgs);
    let (missing, dups) = missing_and_duplicates(&counts, LINES);
    eprintln!(
        "kill -9 x{kills}: {} lines out, {} missing, {dups} duplicates ({:.2}%), {torn} torn lines repaired",
        msgs.len(),
        missing.len(),
        dups as f64 * 100.0 / LINES as f64
    );
    assert!(kills >= 5, "expected several kills, got {kills}");
    assert!(
        complete && missing.is_empty(),
        "missing {} lines, ranges {:?}",
        missing.len(),
        ranges(&missing)
    );
    assert!(
        (dups as f64) < LINES as f64 * 0.05,
        "duplicates {dups} are 5% or more of {LINES}"
    );
}
