//! The archive sink's loop: routes each event to the open file of its partition,
//! completes files by size, count and age, and places completed files in the
//! archive in the background.
//!
//! How it keeps the at-least-once promise: an event is acknowledged only after the
//! file holding it is complete, synced, and placed whole in the archive (linked into
//! its directory, or uploaded with one PUT or a completed multipart upload). Files
//! are written first to the sink's state directory, where a crash leaves only staged
//! files; they are deleted at start, and their events, never acknowledged, come again
//! from the sources. A failed upload is retried with backoff without end while the
//! inputs wait (at most `max_uploads` files in flight). Files are never overwritten.
//!
//! Hostile values: partition and file-name values stay one path segment each; an
//! event whose partition has a segment over 255 bytes, or whose object key would pass
//! 1024 bytes, is refused (to `dropped`): hashing the value would make the partition
//! disagree with its column. At most `max_open_files` files are open; opening
//! another completes the least recently written one. A placement that fails for
//! good (a name the store refuses) rejects that file's events, and never holds up
//! the other files.

use super::config::{ArchiveConfig, Checked};
use super::encoder::{Provenance, StagedFile};
use super::events::{KeyTooLong, MaxOpenFiles, OPEN_FILES, StagingFailed, StagingStep, UnplaceableFile, UploadFailed};
use super::store::Store;
use super::upload::{Finished, UploadError, place};
use crate::ack::{BatchStatus, Finalizers};
use crate::columnar::Columns;
use crate::component::{BoxFuture, BuildContext, BuildError, Built, Resource, Sink, SinkContext, parse_options};
use crate::error::ComponentError;
use crate::event::Event;
use crate::metrics::{ComponentMetrics, Emitter, Gauge};
use crate::rejects::Rejects;
use crate::retry::Retry;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// What a partition value renders as when the event lacks the field (Hive's name
/// for the null partition).
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// The longest path segment (a partition value or file name) most filesystems take.
const MAX_SEGMENT: usize = 255;
/// The longest object key S3 takes, less room for a `-999` numbering suffix.
const MAX_KEY: usize = 1024 - 4;

/// Builds the `object_store` sink.
pub fn build(cx: &BuildContext, options: toml::Value) -> Result<Built, BuildError> {
    let config: ArchiveConfig = parse_options(options)?;
    let checked = config.check()?;
    let store =
        Store::open(&checked.config.url, &checked.store, false).map_err(|e| BuildError::key("url", e.to_string()))?;
    let claim = Resource::File(checked.config.url.clone());
    Ok(Built::sink(ArchiveSink::new(cx, checked, store, None))
        .with_outputs(vec!["dropped".into()])
        .claim(claim))
}

/// A file of the archive, complete and placed, whose events are not acknowledged
/// yet: what an [`AfterPlace`] gets.
pub struct PlacedFile {
    /// Where it landed: the object key in its bucket, or the local path.
    pub placed: String,
    /// The partition directory it was written for, relative to the archive root.
    pub dir: String,
    pub events: u64,
    pub size: u64,
    /// Its events' acknowledgements, now the receiver's to finalize.
    pub finalizers: Finalizers,
}

/// What happens to a file once it is placed, for sinks built on the archive (a
/// BigQuery loader acknowledges its events only once a load job has read it).
/// Without one, the file's events are acknowledged when it is placed.
pub trait AfterPlace: Send + Sync + 'static {
    fn placed(&self, file: PlacedFile) -> futures::future::BoxFuture<'static, ()>;
}

/// The archive sink. Built by [`build`], or by other sinks writing archive files
/// with their own [`AfterPlace`].
pub struct ArchiveSink {
    cfg: Arc<Checked>,
    store: Store,
    staging: PathBuf,
    who: Provenance,
    after_place: Option<Arc<dyn AfterPlace>>,
}

impl ArchiveSink {
    /// The sink for component `cx`, writing to `store` as `checked` says.
    pub fn new(cx: &BuildContext, checked: Checked, store: Store, after_place: Option<Arc<dyn AfterPlace>>) -> Self {
        ArchiveSink {
            cfg: Arc::new(checked),
            store,
            staging: cx.state_dir().join("staging"),
            who: Provenance {
                topology: cx.topology.clone(),
                sink: cx.id.clone(),
            },
            after_place,
        }
    }
}

/// A file open for one partition (and file name).
struct OpenFile {
    file: StagedFile,
    dir: String,
    name: String,
    opened: Instant,
    last_write: Instant,
}

/// The emitters and gauge of a running sink, taken once when it starts.
struct ArchiveEvents {
    key_too_long: Emitter<KeyTooLong>,
    max_open_files: Emitter<MaxOpenFiles>,
    staging: Emitter<StagingFailed>,
    open_files: Gauge,
    uploads: UploadEvents,
}

/// The emitters an upload task uses.
#[derive(Clone)]
struct UploadEvents {
    failed: Emitter<UploadFailed>,
    unplaceable: Emitter<UnplaceableFile>,
}

impl ArchiveEvents {
    fn new(metrics: &ComponentMetrics) -> Self {
        ArchiveEvents {
            key_too_long: metrics.emitter(),
            max_open_files: metrics.emitter(),
            staging: metrics.emitter(),
            open_files: metrics.gauge(&OPEN_FILES),
            uploads: UploadEvents {
                failed: metrics.emitter(),
                unplaceable: metrics.emitter(),
            },
        }
    }
}

/// The sink's state while it runs.
struct Writer<'a> {
    sink: &'a ArchiveSink,
    metrics: Arc<ComponentMetrics>,
    ev: ArchiveEvents,
    columns: Columns,
    files: HashMap<String, OpenFile>,
    rejects: Rejects,
    uploads: JoinSet<()>,
    next_staged: u64,
    scratch: Vec<u8>,
}

impl Sink for ArchiveSink {
    fn run(self: Box<Self>, mut cx: SinkContext) -> BoxFuture {
        Box::pin(async move {
            self.prepare()?;
            let columns = match &self.cfg.schema {
                Some(cols) => Columns::declared(cols).with_rejected_column(&self.cfg.config.rejected_column),
                None => Columns::inferred().with_max_columns(self.cfg.config.max_columns),
            };
            let mut w = Writer {
                sink: &self,
                metrics: cx.metrics.clone(),
                ev: ArchiveEvents::new(&cx.metrics),
                columns,
                files: HashMap::new(),
                rejects: Rejects::new(&cx),
                uploads: JoinSet::new(),
                next_staged: 0,
                scratch: Vec::new(),
            };
            let mut last_age_check = Instant::now();
            loop {
                match tokio::time::timeout(Duration::from_secs(1), cx.input.recv()).await {
                    Ok(Some(batch)) => {
                        for event in batch {
                            w.write(event).await;
                        }
                    }
                    Ok(None) => break,
                    Err(_) => {}
                }
                if last_age_check.elapsed() >= Duration::from_secs(1) {
                    last_age_check = Instant::now();
                    w.complete_old().await;
                }
                w.ev.open_files.set(w.files.len() as u64);
            }
            let keys: Vec<String> = w.files.keys().cloned().collect();
            for key in keys {
                w.complete(&key).await;
            }
            while w.uploads.join_next().await.is_some() {}
            Ok(())
        })
    }
}

impl ArchiveSink {
    /// Creates the staging and local archive directories and removes files staged
    /// before a crash (their events were never acknowledged and come again).
    fn prepare(&self) -> Result<(), String> {
        std::fs::create_dir_all(&self.staging).map_err(|e| format!("{}: {e}", self.staging.display()))?;
        if let Some(root) = &self.store.local_root {
            std::fs::create_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
        }
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.staging).map_err(|e| e.to_string())?.flatten() {
            if std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(component = %self.who.sink, files = removed, "Removed files staged before an earlier stop; their events are read again from the sources.");
        }
        Ok(())
    }
}

impl Writer<'_> {
    /// Adds one event to the file of its partition.
    async fn write(&mut self, event: Event) {
        let cfg = &self.sink.cfg;
        let dir = cfg
            .partition
            .render_path(&event, Some(NULL_PARTITION))
            .unwrap_or_default();
        let name = cfg
            .filename
            .as_ref()
            .map(|t| t.render_path(&event, Some(NULL_PARTITION)).unwrap_or_default());
        let (key, dir) = match &name {
            Some(n) => (format!("{dir}/{n}"), Some(dir)),
            None => (dir, None),
        };
        if !self.files.contains_key(&key) {
            if let Err(reason) = self.check_key(&key) {
                self.rejects
                    .reject(vec![event], &reason, &self.ev.key_too_long, KeyTooLong)
                    .await;
                return;
            }
            if self.files.len() >= cfg.config.max_open_files {
                self.complete_least_recent().await;
            }
            let dir = dir.unwrap_or_else(|| key.clone());
            let Some(open) = self.open(dir, name) else {
                event.finalize(BatchStatus::Errored);
                return;
            };
            self.files.insert(key.clone(), open);
        }
        let open = self.files.get_mut(&key).expect("inserted above");
        open.last_write = Instant::now();
        if let Err(e) = open.file.push(event, &mut self.scratch) {
            self.abandon(&key, &e.to_string());
            return;
        }
        if open.file.rows_full() {
            self.convert(&key).await;
        }
        let Some(open) = self.files.get(&key) else { return };
        if open.file.events >= cfg.config.max_events || open.file.bytes() >= cfg.config.max_bytes {
            self.complete(&key).await;
        }
    }

    /// Refuses a partition (and file name) no store would take whole.
    fn check_key(&self, key: &str) -> Result<(), String> {
        if let Some(long) = key.split('/').find(|s| s.len() > MAX_SEGMENT) {
            return Err(format!(
                "a partition value or file name is {} bytes long; at most {MAX_SEGMENT} fit in one path segment (`{}…`)",
                long.len(),
                long.chars().take(40).collect::<String>()
            ));
        }
        let prefix = self.sink.store.prefix.as_ref().len();
        let name = if self.sink.cfg.filename.is_some() { 0 } else { 64 };
        let len = prefix + 1 + key.len() + 1 + name;
        if len > MAX_KEY {
            return Err(format!(
                "the object key would be {len} bytes long; at most {MAX_KEY} fit (`{}…`)",
                key.chars().take(40).collect::<String>()
            ));
        }
        Ok(())
    }

    /// Completes the file written least recently, making room for another.
    async fn complete_least_recent(&mut self) {
        let oldest = self
            .files
            .iter()
            .min_by_key(|(_, o)| o.last_write)
            .map(|(k, _)| k.clone());
        if let Some(key) = oldest {
            self.ev.max_open_files.emit(MaxOpenFiles {
                max_open_files: self.sink.cfg.config.max_open_files,
            });
            self.complete(&key).await;
        }
    }

    /// A new staged file for partition `dir`.
    fn open(&mut self, dir: String, name: Option<String>) -> Option<OpenFile> {
        let cfg = &self.sink.cfg;
        let n = self.next_staged;
        self.next_staged += 1;
        let path = self.sink.staging.join(format!("{n}.staged"));
        match StagedFile::create(&path, cfg, &self.sink.who) {
            Ok(file) => Some(OpenFile {
                file,
                name: name.unwrap_or_else(|| unique_name(cfg.extension())),
                dir,
                opened: Instant::now(),
                last_write: Instant::now(),
            }),
            Err(e) => {
                self.ev.staging.emit(StagingFailed {
                    step: StagingStep::Create,
                    error: e.to_string(),
                });
                None
            }
        }
    }

    /// Converts a file's waiting rows, first moving them to a new file when the
    /// inferred schema grew past the file's.
    async fn convert(&mut self, key: &str) {
        let Some(open) = self.files.get(key) else { return };
        self.columns.observe(open.file.pending_rows(), &self.metrics);
        if open.file.schema_outgrown(&self.columns) {
            let (dir, name) = (
                open.dir.clone(),
                self.sink.cfg.filename.as_ref().map(|_| open.name.clone()),
            );
            let Some(mut fresh) = self.open(dir, name) else {
                self.abandon(key, "cannot open a file for the new schema");
                return;
            };
            let old = self.files.get_mut(key).expect("checked above");
            old.file.move_rows_to(&mut fresh.file);
            let old = std::mem::replace(old, fresh);
            self.finish(old).await;
        }
        let Some(open) = self.files.get_mut(key) else { return };
        let result = tokio::task::block_in_place(|| open.file.convert(&self.columns, &self.metrics));
        if let Err(e) = result {
            self.abandon(key, &e.to_string());
        }
    }

    /// Completes the file of `key` and starts placing it.
    async fn complete(&mut self, key: &str) {
        if self.files.get(key).is_some_and(|o| !o.file.pending_rows().is_empty()) {
            self.convert(key).await;
        }
        if let Some(open) = self.files.remove(key) {
            self.finish(open).await;
        }
    }

    /// Completes every file open longer than `max_age_secs`.
    async fn complete_old(&mut self) {
        let max_age = Duration::from_secs(self.sink.cfg.config.max_age_secs);
        let old: Vec<String> = self
            .files
            .iter()
            .filter(|(_, o)| o.opened.elapsed() >= max_age)
            .map(|(k, _)| k.clone())
            .collect();
        for key in old {
            self.complete(&key).await;
        }
    }

    /// Finishes `open` on disk and hands it to an upload task, waiting while
    /// `max_uploads` are in flight.
    async fn finish(&mut self, open: OpenFile) {
        let events = open.file.events;
        let path = open.file.path().to_path_buf();
        let result = tokio::task::block_in_place(|| open.file.finish(&self.columns, &self.metrics));
        let (staged, size, finalizers) = match result {
            Ok(done) => done,
            Err(e) => {
                self.ev.staging.emit(StagingFailed {
                    step: StagingStep::Finish,
                    error: e.to_string(),
                });
                let _ = std::fs::remove_file(path);
                return;
            }
        };
        if events == 0 {
            let _ = std::fs::remove_file(staged);
            return;
        }
        while self.uploads.len() >= self.sink.cfg.config.max_uploads {
            self.uploads.join_next().await;
        }
        let finished = Finished {
            staged,
            size,
            dir: open.dir,
            name: open.name,
            unique: self.sink.cfg.filename.is_none(),
        };
        let store = self.sink.store.clone();
        let metrics = self.metrics.clone();
        let rejects = self.rejects.clone();
        let ev = self.ev.uploads.clone();
        let after = self.sink.after_place.clone();
        self.uploads.spawn(upload_until_done(
            store, finished, finalizers, events, metrics, rejects, ev, after,
        ));
    }

    /// Drops a file that cannot be written; its events stay unacknowledged.
    fn abandon(&mut self, key: &str, error: &str) {
        self.ev.staging.emit(StagingFailed {
            step: StagingStep::Write,
            error: error.to_string(),
        });
        if let Some(mut open) = self.files.remove(key) {
            open.file.take_finalizers().finalize(BatchStatus::Errored);
            let _ = std::fs::remove_file(open.file.path());
        }
    }
}

/// Places a finished file, retrying transient failures with backoff until it is in
/// the archive, then acknowledges its events (or hands them to `after`); a failure
/// that retrying cannot mend rejects them.
#[allow(clippy::too_many_arguments)]
async fn upload_until_done(
    store: Store,
    file: Finished,
    finalizers: Finalizers,
    events: u64,
    metrics: Arc<ComponentMetrics>,
    rejects: Rejects,
    ev: UploadEvents,
    after: Option<Arc<dyn AfterPlace>>,
) {
    let mut retry = Retry::new("archive uploads");
    let name = format!("{}/{}", file.dir, file.name);
    let key = loop {
        match place(&store, &file).await.map_err(|e| classify(&name, e)) {
            Ok(key) => break key,
            Err(e) if e.is_retryable() => retry.wait(&e, &ev.failed, &metrics).await,
            Err(e) => {
                ev.failed.count(1);
                let _ = std::fs::remove_file(&file.staged);
                rejects.reject_finalizers(finalizers, events, &e.message, &ev.unplaceable, UnplaceableFile);
                return;
            }
        }
    };
    retry.succeeded(&metrics);
    let _ = std::fs::remove_file(&file.staged);
    tracing::debug!(component = %metrics.id, key = %key, events, bytes = file.size, "Completed an archive file.");
    if let Some(after) = after {
        let placed = PlacedFile {
            placed: key,
            dir: file.dir,
            events,
            size: file.size,
            finalizers,
        };
        return after.placed(placed).await;
    }
    let mut finalizers = finalizers;
    finalizers.finalize(BatchStatus::Delivered);
    metrics.sent(events, file.size);
}

/// Who is at fault when placing the file `name` failed.
fn classify(name: &str, e: UploadError) -> ComponentError {
    use ::object_store::Error as S;
    let message = format!("{name}: {e}");
    match e {
        UploadError::Io(_, io) => ComponentError::io(name, &io),
        UploadError::Key(_) | UploadError::NoFreeName(_) => ComponentError::data(message),
        UploadError::Store(S::InvalidPath { .. }) => ComponentError::data(message),
        UploadError::Store(S::PermissionDenied { .. } | S::Unauthenticated { .. } | S::NotFound { .. }) => {
            ComponentError::config(message)
        }
        UploadError::Store(S::NotSupported { .. } | S::NotImplemented { .. }) => ComponentError::config(message),
        // Anything else (a 400 may be an expired token or a timed-out upload too) is
        // retried: when unsure, waiting beats rejecting. Keys the stores refuse for
        // their length never get here: they are refused per event, before writing.
        UploadError::Store(_) | UploadError::Remote(_) => ComponentError::external(message),
    }
}

/// `part-<UTC time>-<random>.<ext>`: sorts by time, unique across restarts and nodes.
fn unique_name(ext: &str) -> String {
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    format!("part-{now}-{:016x}.{ext}", crate::retry::random_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_entry_declares_every_emitter_and_gauge() {
        let def = &super::super::SINK;
        let m = ComponentMetrics::new("archive", "sink", "object_store", def.events, def.gauges);
        let ev = ArchiveEvents::new(&m);
        m.emitter::<crate::columnar::TypeConflict>();
        m.emitter::<crate::columnar::TooManyColumns>();
        m.emitter::<crate::columnar::CastFailed>();
        m.gauge(&crate::retry::RETRYING);
        ev.open_files.set(2);
        ev.max_open_files.emit(MaxOpenFiles { max_open_files: 2 });
        let s = m.snapshot();
        assert_eq!(s.gauges["pipe_object_store_open_files"], 2);
        assert_eq!(s.counters["max_open_files"], 1);
    }
}
