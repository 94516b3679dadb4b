//! Which file is which: expanding the globs, recognising files by fingerprint across
//! renames, noticing truncation (copytruncate), and forgetting files long gone.

use super::{Tailer, Tracked, path_value};
use crate::components::file::checkpoint::{Entry, Message};
use crate::components::file::events::{FileTruncated, OpenFailed, ReadFailed};
use crate::components::file::fingerprint::{self, Fingerprint};
use crate::components::file::lines::LineReader;
use crate::components::file::source::ReadFrom;
use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

impl Tailer {
    /// Expands the globs and matches what is found to known files.
    pub(super) fn scan(&mut self, startup: bool) {
        self.last_scan = Instant::now();
        let paths = self.discover();
        let now = Instant::now();
        for t in &mut self.files {
            t.in_glob = false;
        }
        let mut fresh = Vec::new();
        for path in paths {
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            if !meta.is_file() {
                continue;
            }
            match self
                .files
                .iter()
                .position(|t| t.file.is_some() && t.dev == meta.dev() && t.ino == meta.ino())
            {
                Some(i) => {
                    if self.same_content(i) {
                        let t = &mut self.files[i];
                        if t.path != path {
                            tracing::info!(component = %self.id, from = %t.path.display(), to = %path.display(), "File was renamed; following it.");
                            t.path_value = path_value(&path);
                            t.path = path;
                            let _ = self.ck.send(Message::Track {
                                id: t.id,
                                entry: t.entry(),
                            });
                        }
                        let t = &mut self.files[i];
                        t.in_glob = true;
                        t.last_seen = now;
                    } else {
                        self.truncated(i);
                    }
                }
                None => fresh.push((path, meta)),
            }
        }
        for (path, meta) in fresh {
            let file = match self.open(&path) {
                Ok(f) => f,
                Err(error) => {
                    self.events.open_failed.emit(OpenFailed { path, error });
                    continue;
                }
            };
            let prefix = match fingerprint::read_prefix(&file, self.config.fingerprint_bytes) {
                Ok(p) => p,
                Err(error) => {
                    self.events.read_failed.emit(ReadFailed {
                        path,
                        error,
                        first_bytes: true,
                    });
                    continue;
                }
            };
            let (dev, ino) = (meta.dev(), meta.ino());
            let full = self.config.fingerprint_bytes as u32;
            let same = |t: &Tracked| t.fp.matches(&prefix) && (t.fp.len >= full || (t.dev, t.ino) == (dev, ino));
            if let Some(i) = self.files.iter().position(|t| t.file.is_none() && same(t)) {
                let t = &mut self.files[i];
                tracing::info!(component = %self.id, path = %path.display(), offset = t.reader.read_pos(), "Resuming file.");
                t.file = Some(file);
                (t.dev, t.ino) = (dev, ino);
                t.path_value = path_value(&path);
                t.path = path;
                t.in_glob = true;
                t.last_seen = now;
                t.at_eof = false;
                if prefix.len() > t.fp.len as usize {
                    t.fp = Fingerprint::of(&prefix);
                }
                let _ = self.ck.send(Message::Track {
                    id: t.id,
                    entry: t.entry(),
                });
            } else if self.files.iter().any(|t| t.file.is_some() && same(t)) {
                tracing::debug!(component = %self.id, path = %path.display(), "File holds the same first bytes as a file being read; treating it as a copy.");
            } else {
                let offset = if startup && self.config.read_from == ReadFrom::End {
                    meta.len()
                } else {
                    0
                };
                let offset = if offset > 0 {
                    line_start_before(&file, offset)
                } else {
                    0
                };
                tracing::info!(component = %self.id, path = %path.display(), offset, "Found new file.");
                let entry = Entry {
                    fingerprint: Fingerprint::of(&prefix),
                    dev,
                    ino,
                    path,
                    offset,
                };
                self.track(entry, Some(file));
            }
        }
    }

    /// Forgets files gone from the globs for an hour (their checkpoints too).
    pub(super) fn forget_stale(&mut self) {
        let now = Instant::now();
        let ck = &self.ck;
        self.files.retain(|t| {
            let keep = t.file.is_some() || now.duration_since(t.last_seen) < Duration::from_secs(3600);
            if !keep {
                let _ = ck.send(Message::Forget { id: t.id });
            }
            keep
        });
    }

    /// Starts tracking a file identity at `entry.offset`, open (`file`) or not yet
    /// found (restored from a checkpoint), and tells the checkpointer.
    pub(super) fn track(&mut self, entry: Entry, file: Option<File>) {
        let now = Instant::now();
        let id = self.new_id();
        let t = Tracked {
            id,
            fp: entry.fingerprint,
            dev: entry.dev,
            ino: entry.ino,
            path_value: path_value(&entry.path),
            path: entry.path,
            in_glob: file.is_some(),
            file,
            reader: LineReader::new(entry.offset),
            pending: None,
            last_seen: now,
            last_data: now,
            at_eof: false,
            sent_end: entry.offset,
            size: 0,
        };
        let _ = self.ck.send(Message::Track { id, entry: t.entry() });
        self.files.push(t);
    }

    /// Opens a found file; without `follow_symlinks`, never through a symlink (one
    /// swapped in since the glob ran included).
    fn open(&self, path: &Path) -> std::io::Result<File> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        if !self.config.follow_symlinks {
            options.custom_flags(libc::O_NOFOLLOW);
        }
        options.open(path)
    }

    pub(super) fn discover(&self) -> Vec<PathBuf> {
        let excludes: Vec<glob::Pattern> = self
            .config
            .exclude
            .iter()
            .filter_map(|p| glob::Pattern::new(p).ok())
            .collect();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for pattern in &self.config.include {
            let Ok(paths) = glob::glob(pattern) else { continue };
            for p in paths.flatten() {
                if excludes.iter().any(|x| x.matches_path(&p)) || !seen.insert(p.clone()) {
                    continue;
                }
                if !self.config.follow_symlinks
                    && std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink())
                {
                    continue;
                }
                out.push(p);
            }
        }
        out
    }

    /// True when file `i` (open) still holds the content its fingerprint names and is
    /// not shorter than what was read. Grows a short fingerprint.
    pub(super) fn same_content(&mut self, i: usize) -> bool {
        let full = self.config.fingerprint_bytes;
        let t = &mut self.files[i];
        let Some(file) = &t.file else { return true };
        let Ok(meta) = file.metadata() else { return true };
        t.size = meta.len();
        if meta.len() < t.reader.read_pos() {
            return false;
        }
        let Ok(prefix) = fingerprint::read_prefix(file, full) else {
            return true;
        };
        if !t.fp.matches(&prefix) {
            return false;
        }
        if prefix.len() > t.fp.len as usize {
            t.fp = Fingerprint::of(&prefix);
            let _ = self.ck.send(Message::Track {
                id: t.id,
                entry: t.entry(),
            });
        }
        true
    }

    /// File `i` was truncated or rewritten in place: report it, keep the old identity
    /// (its copy may show up under another name) and read the file again from the
    /// start as a new one.
    pub(super) fn truncated(&mut self, i: usize) {
        let t = &mut self.files[i];
        self.events.truncated.emit(FileTruncated {
            path: t.path.clone(),
            read_up_to: t.reader.read_pos(),
        });
        let Some(file) = t.file.take() else { return };
        t.in_glob = false;
        let prefix = fingerprint::read_prefix(&file, self.config.fingerprint_bytes).unwrap_or_default();
        let entry = Entry {
            fingerprint: Fingerprint::of(&prefix),
            dev: t.dev,
            ino: t.ino,
            path: t.path.clone(),
            offset: 0,
        };
        self.track(entry, Some(file));
    }
}

/// The directory a glob starts from, and whether it may descend (`**`).
pub(super) fn glob_root(pattern: &str) -> (PathBuf, bool) {
    let mut root = PathBuf::new();
    for part in Path::new(pattern).components() {
        let s = part.as_os_str().to_string_lossy();
        if s.contains(['*', '?', '[']) {
            return (
                if root.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    root
                },
                pattern.contains("**"),
            );
        }
        root.push(part);
    }
    (
        root.parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
        false,
    )
}

/// The start of the line holding byte `offset - 1`, for starting at a file's end
/// without cutting a line.
fn line_start_before(file: &File, offset: u64) -> u64 {
    use std::os::unix::fs::FileExt;
    let from = offset.saturating_sub(64 * 1024);
    let mut buf = vec![0u8; (offset - from) as usize];
    if file.read_exact_at(&mut buf, from).is_err() {
        return offset;
    }
    match memchr::memrchr(b'\n', &buf) {
        Some(i) => from + i as u64 + 1,
        None if from == 0 => 0,
        None => offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_roots() {
        assert_eq!(glob_root("/var/log/app/*.log"), (PathBuf::from("/var/log/app"), false));
        assert_eq!(glob_root("/var/log/**/x.log"), (PathBuf::from("/var/log"), true));
        assert_eq!(glob_root("/var/log/app.log"), (PathBuf::from("/var/log"), false));
        assert_eq!(glob_root("*.log"), (PathBuf::from("."), false));
    }
}
