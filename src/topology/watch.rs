//! `--watch`: notices edits of the topology files and of the files their components
//! read, debounced, and only when their content changed.
//!
//! Directories are watched rather than files, since editors save by writing a new
//! file and renaming it over the old one.

use notify::{RecursiveMode, Watcher as _};
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// Quiet time after the last change before a reload.
const DEBOUNCE: Duration = Duration::from_millis(500);

/// Watches a set of files.
pub struct FileWatcher {
    watcher: notify::RecommendedWatcher,
    events: mpsc::UnboundedReceiver<PathBuf>,
    files: HashSet<PathBuf>,
    dirs: HashSet<PathBuf>,
    content: u64,
    /// A watched file was touched and its content not checked yet (kept when the
    /// caller stops waiting midway).
    touched: bool,
}

impl FileWatcher {
    /// Watches `files`.
    pub fn new(files: &[PathBuf]) -> notify::Result<Self> {
        let (tx, events) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            use notify::EventKind;
            // Reading a file (this watcher's own reads included) is no change.
            let Ok(event) = res else { return };
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            for path in event.paths {
                let _ = tx.send(path);
            }
        })?;
        let mut w = FileWatcher {
            watcher,
            events,
            files: HashSet::new(),
            dirs: HashSet::new(),
            content: 0,
            touched: false,
        };
        w.set_files(files);
        Ok(w)
    }

    /// Watches `files` from now on (a reload may name others), and takes their
    /// current content as the one seen.
    pub fn set_files(&mut self, files: &[PathBuf]) {
        self.files = files.iter().map(|f| absolute(f)).collect();
        for dir in self.files.iter().filter_map(|f| f.parent()) {
            if self.dirs.insert(dir.to_path_buf())
                && let Err(e) = self.watcher.watch(dir, RecursiveMode::NonRecursive)
            {
                tracing::warn!(dir = %dir.display(), error = %e, "Cannot watch a directory of the topology; edits there are not picked up.");
            }
        }
        self.content = self.content_hash();
    }

    /// Resolves once a watched file's content changed, after a quiet moment.
    pub async fn changed(&mut self) {
        loop {
            while !self.touched {
                let Some(path) = self.events.recv().await else {
                    return std::future::pending().await;
                };
                if self.files.contains(&absolute(&path)) {
                    tracing::debug!(path = %path.display(), "A watched file changed.");
                    self.touched = true;
                }
            }
            // Debounce: wait until the files are quiet.
            while let Ok(Some(_)) = tokio::time::timeout(DEBOUNCE, self.events.recv()).await {}
            self.touched = false;
            let content = self.content_hash();
            if content != self.content {
                self.content = content;
                return;
            }
        }
    }

    fn content_hash(&self) -> u64 {
        let mut files: Vec<&PathBuf> = self.files.iter().collect();
        files.sort();
        let mut h = std::hash::DefaultHasher::new();
        for f in files {
            (f, std::fs::read(f).ok()).hash(&mut h);
        }
        h.finish()
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
