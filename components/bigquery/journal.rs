//! Load mode's journal: what was placed for loading and which load job took it, so
//! that after a crash every file is loaded exactly once.
//!
//! One JSON line per step, each synced before the step it records goes on: a file
//! `placed` (before its load job exists), a `job` with its id and files (before
//! `jobs.insert`), and `done` (after BigQuery says the job finished). At start the
//! lines are replayed: jobs without `done` and placed files without a job are the
//! open work, finished before anything new is loaded. A torn last line (a crash
//! mid-write) is ignored: its step had not happened yet. The journal is rewritten
//! with only the open work at start, so it stays small.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, Write};
use std::path::Path;

/// One step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Entry {
    /// A file is in place, waiting for its load job.
    Placed { uri: String, table: String, events: u64 },
    /// Load job `id` reads `uris` into `table`.
    Job {
        id: String,
        table: String,
        uris: Vec<String>,
    },
    /// Job `id` finished (`ok`: without an error).
    Done { id: String, ok: bool },
}

/// Work a previous run left open.
#[derive(Debug, Default, PartialEq)]
pub struct Open {
    /// Jobs recorded and not known to be finished, in order.
    pub jobs: Vec<(String, String, Vec<String>)>,
    /// Placed files no job took yet, by table: (uri, events).
    pub placed: BTreeMap<String, Vec<(String, u64)>>,
}

/// The journal file, open for appending.
pub struct Journal {
    file: std::fs::File,
}

impl Journal {
    /// Opens (or creates) the journal in `dir` and returns the open work in it,
    /// rewriting the file to hold only that.
    pub fn open(dir: &Path) -> std::io::Result<(Journal, Open)> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("load-journal.jsonl");
        let entries = read(&path)?;
        let open = replay(&entries);
        let tmp = dir.join("load-journal.jsonl.tmp");
        {
            let mut out = std::fs::File::create(&tmp)?;
            for (table, files) in &open.placed {
                for (uri, events) in files {
                    let e = Entry::Placed {
                        uri: uri.clone(),
                        table: table.clone(),
                        events: *events,
                    };
                    writeln!(out, "{}", serde_json::to_string(&e).unwrap_or_default())?;
                }
            }
            for (id, table, uris) in &open.jobs {
                let e = Entry::Job {
                    id: id.clone(),
                    table: table.clone(),
                    uris: uris.clone(),
                };
                writeln!(out, "{}", serde_json::to_string(&e).unwrap_or_default())?;
            }
            out.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()?;
        let file = std::fs::OpenOptions::new().append(true).open(&path)?;
        Ok((Journal { file }, open))
    }

    /// Records `entry`, synced.
    pub fn append(&mut self, entry: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()
    }
}

/// The entries of the file at `path`; a line that does not parse (a torn tail)
/// ends the reading.
fn read(path: &Path) -> std::io::Result<Vec<Entry>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut entries = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let Ok(line) = line else { break };
        match serde_json::from_str::<Entry>(&line) {
            Ok(e) => entries.push(e),
            Err(_) => {
                tracing::warn!(path = %path.display(), "The load journal ends in a torn line (a crash mid-write); ignoring it.");
                break;
            }
        }
    }
    Ok(entries)
}

/// The open work after `entries`.
fn replay(entries: &[Entry]) -> Open {
    let mut placed: Vec<(String, String, u64)> = Vec::new();
    let mut jobs: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut taken: HashSet<String> = HashSet::new();
    let mut done: HashSet<String> = HashSet::new();
    for e in entries {
        match e {
            Entry::Placed { uri, table, events } => placed.push((table.clone(), uri.clone(), *events)),
            Entry::Job { id, table, uris } => {
                taken.extend(uris.iter().cloned());
                jobs.push((id.clone(), table.clone(), uris.clone()));
            }
            Entry::Done { id, .. } => {
                done.insert(id.clone());
            }
        }
    }
    let mut open = Open::default();
    for (table, uri, events) in placed {
        if !taken.contains(&uri) {
            open.placed.entry(table).or_default().push((uri, events));
        }
    }
    // A file retried under a new job id appears in several jobs: once one of them is
    // done the file is loaded, and the others must not run.
    let loaded: HashSet<&String> = jobs
        .iter()
        .filter(|(id, ..)| done.contains(id))
        .flat_map(|(_, _, uris)| uris)
        .collect();
    open.jobs = jobs
        .iter()
        .filter(|(id, _, uris)| !done.contains(id) && !uris.iter().all(|u| loaded.contains(u)))
        .cloned()
        .collect();
    open
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(uri: &str) -> Entry {
        Entry::Placed {
            uri: uri.into(),
            table: "t".into(),
            events: 3,
        }
    }

    #[test]
    fn open_work_survives_a_restart_and_done_work_does_not() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut j, open) = Journal::open(dir.path()).unwrap();
            assert_eq!(open, Open::default());
            for e in [
                placed("gs://b/1"),
                placed("gs://b/2"),
                Entry::Job {
                    id: "j1".into(),
                    table: "t".into(),
                    uris: vec!["gs://b/1".into()],
                },
                placed("gs://b/3"),
                Entry::Job {
                    id: "j2".into(),
                    table: "t".into(),
                    uris: vec!["gs://b/2".into()],
                },
                Entry::Done {
                    id: "j1".into(),
                    ok: true,
                },
            ] {
                j.append(&e).unwrap();
            }
        }
        // A torn last line is ignored.
        let path = dir.path().join("load-journal.jsonl");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"op\":\"done\",\"id\":\"j2");
        std::fs::write(&path, text).unwrap();
        let (_, open) = Journal::open(dir.path()).unwrap();
        assert_eq!(open.jobs, vec![("j2".into(), "t".into(), vec!["gs://b/2".into()])]);
        assert_eq!(open.placed["t"], vec![("gs://b/3".to_string(), 3)]);
        // The rewrite kept exactly the open work.
        let (_, again) = Journal::open(dir.path()).unwrap();
        assert_eq!(again, open);
    }

    #[test]
    fn a_file_loaded_by_a_retry_is_not_loaded_again() {
        let entries = vec![
            placed("gs://b/1"),
            Entry::Job {
                id: "a_0".into(),
                table: "t".into(),
                uris: vec!["gs://b/1".into()],
            },
            Entry::Done {
                id: "a_0".into(),
                ok: false,
            },
            Entry::Job {
                id: "a_1".into(),
                table: "t".into(),
                uris: vec!["gs://b/1".into()],
            },
            Entry::Done {
                id: "a_1".into(),
                ok: true,
            },
        ];
        assert_eq!(replay(&entries), Open::default());
    }
}
