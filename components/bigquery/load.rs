//! The `bigquery` sink's load mode: the hourly batch loads of a log pipeline,
//! without the cron script. Events are written as archive files (the `object_store`
//! sink's staging, rolling and upload, under `url/<table>/<partition>/`), and the
//! files completed for one table within `load_interval_secs` are loaded by one load
//! job (`WRITE_APPEND`).
//!
//! How it keeps the at-least-once promise, and loads each file once: an event is
//! acknowledged only after the load job that read its file is DONE without an
//! `errorResult`; a job that fails on the data rejects the events of its files with
//! BigQuery's errors. Each step is in the [`journal`](super::journal) before it
//! happens, and a job's id is derived from its table and files (plus the attempt),
//! so a restart finishes the open jobs (`jobs.get` first, `jobs.insert` only for a
//! job BigQuery does not know) and loads the placed files no job took yet, before
//! anything new is loaded. Their events, never acknowledged, also come again from
//! the sources into new files: the table ends up with exactly the archive's rows,
//! and no file is loaded twice. The sink never relies on BigQuery answering 409 to
//! a reused job id.
//!
//! `PIPE_TEST_ABORT_AT=after_upload|after_insert|before_ack` aborts the process at
//! that step, for the crash tests only.

use super::config::{Checked, LoadEncoding};
use super::events::{LoadJobDone, RejectedByBigQuery, RequestFailed};
use super::journal::{Entry, Journal, Open};
use super::rest::{JobState, Rest};
use super::schema::{FieldType, Mode as FieldMode};
use crate::ack::{BatchStatus, Finalizers};
use crate::component::{BoxFuture, BuildContext, BuildError, Built, Resource, Sink, SinkContext, parse_options};
use crate::components::object_store::{AfterPlace, ArchiveConfig, ArchiveSink, PlacedFile, Store};
use crate::error::ComponentError;
use crate::metrics::{ComponentMetrics, Emitter};
use crate::rejects::Rejects;
use crate::retry::Retry;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Aborts the process when `PIPE_TEST_ABORT_AT` names `step` (crash tests only).
fn test_abort_at(step: &str) {
    if std::env::var("PIPE_TEST_ABORT_AT").is_ok_and(|s| s == step) {
        eprintln!("PIPE_TEST_ABORT_AT={step}: aborting (test hook).");
        std::process::abort();
    }
}

/// Builds load mode.
pub fn build(cx: &BuildContext, cfg: Arc<Checked>, rest: Rest) -> Result<Built, BuildError> {
    let c = &cfg.config;
    let url = c.url.clone().unwrap_or_default();
    if url.starts_with("s3://") || url.starts_with("s3a://") {
        return Err(BuildError::key(
            "url",
            "load jobs read gs:// (or a local directory an emulator serves, with load_uri_prefix)",
        ));
    }
    let mut archive = toml::Table::new();
    archive.insert("url".into(), url.clone().into());
    if let Some(e) = c.gcs_endpoint.clone().filter(|e| !e.is_empty()) {
        archive.insert("allow_http".into(), e.starts_with("http://").into());
        archive.insert("endpoint".into(), e.into());
    }
    // The table is the first directory of each file, so one file holds one table's rows.
    archive.insert("partition".into(), format!("{}/{}", c.table, c.partition).into());
    archive.insert("time_field".into(), c.time_field.clone().into());
    let encoding = match c.encoding {
        LoadEncoding::Parquet => "parquet",
        LoadEncoding::Ndjson => "ndjson",
    };
    archive.insert("encoding".into(), encoding.into());
    archive.insert("max_age_secs".into(), (c.max_age_secs as i64).into());
    archive.insert("max_bytes".into(), (c.max_bytes as i64).into());
    archive.insert("max_events".into(), (c.max_events as i64).into());
    if let (Some(schema), LoadEncoding::Parquet) = (&cfg.schema, c.encoding) {
        // Parquet columns in the table's order and types (some loaders match by
        // position); values that do not fit go to the rejected column if the table has it.
        let mut columns = toml::Table::new();
        let mut rejected = String::new();
        for f in &schema.fields {
            if f.ty == FieldType::Record || f.mode == FieldMode::Repeated {
                return Err(BuildError::key(
                    "encoding",
                    format!(
                        "column `{}` is a RECORD or REPEATED: load it from encoding = \"ndjson\"",
                        f.name
                    ),
                ));
            }
            if f.name == c.rejected_column && matches!(f.ty, FieldType::String | FieldType::Json) {
                rejected = f.name.clone();
                continue;
            }
            let ty = match f.ty {
                FieldType::Bool => "bool",
                FieldType::Int64 => "int",
                FieldType::Float64 => "float",
                FieldType::Timestamp => "timestamp",
                _ => "string",
            };
            columns.insert(f.name.clone(), ty.into());
        }
        archive.insert("schema".into(), columns.into());
        archive.insert("rejected_column".into(), rejected.into());
    }
    let checked = parse_options::<ArchiveConfig>(toml::Value::Table(archive))
        .and_then(|a| a.check())
        .map_err(|e| BuildError::key(e.key.as_deref().unwrap_or("url"), e.message))?;
    let store = Store::open(&url, &checked.store, false).map_err(|e| BuildError::key("url", e.to_string()))?;
    let base_uri = match (&store.gcs, &c.load_uri_prefix) {
        (_, Some(prefix)) => prefix.trim_end_matches('/').to_string(),
        (Some(g), None) => format!("gs://{}/{}", g.bucket, store.prefix)
            .trim_end_matches('/')
            .to_string(),
        (None, None) => {
            return Err(BuildError::key(
                "load_uri_prefix",
                "a local `url` needs the gs:// prefix the load jobs read it under",
            ));
        }
    };
    let uris = UriMap {
        local_root: store.local_root.clone(),
        base_uri,
        gcs_bucket: store.gcs.as_ref().map(|g| g.bucket.clone()),
        store_prefix: store.prefix.to_string(),
    };
    let (tx, rx) = mpsc::channel(64);
    let journal_dir = cx.state_dir();
    let enqueue = Arc::new(Enqueue {
        tx,
        uris: uris.clone(),
        journal: Arc::new(Mutex::new(None)),
    });
    let archive = ArchiveSink::new(cx, checked, store, Some(enqueue.clone()));
    Ok(Built::sink(LoadSink {
        archive,
        enqueue,
        rx,
        loader: Loader {
            cfg,
            rest,
            uris,
            journal_dir,
        },
    })
    .with_outputs(vec!["dropped".into()])
    .claim(Resource::File(url)))
}

/// How placed files are named for the load jobs.
#[derive(Clone)]
struct UriMap {
    local_root: Option<PathBuf>,
    /// `gs://bucket/prefix` (or `load_uri_prefix`) for the archive root.
    base_uri: String,
    gcs_bucket: Option<String>,
    store_prefix: String,
}

impl UriMap {
    /// The `gs://` URI of a file placed at `placed`.
    fn uri(&self, placed: &str) -> String {
        if let Some(root) = &self.local_root {
            let relative = Path::new(placed).strip_prefix(root).unwrap_or(Path::new(placed));
            return format!("{}/{}", self.base_uri, relative.display());
        }
        match &self.gcs_bucket {
            Some(bucket) if self.base_uri.starts_with(&format!("gs://{bucket}")) => format!("gs://{bucket}/{placed}"),
            _ => {
                let relative = placed.strip_prefix(&self.store_prefix).unwrap_or(placed);
                format!("{}/{}", self.base_uri, relative.trim_start_matches('/'))
            }
        }
    }
}

/// The load-mode sink: the archive sink, and the loader that runs beside it.
struct LoadSink {
    archive: ArchiveSink,
    enqueue: Arc<Enqueue>,
    rx: mpsc::Receiver<Placed>,
    loader: Loader,
}

/// A placed file on its way to a load job.
struct Placed {
    uri: String,
    table: String,
    events: u64,
    size: u64,
    finalizers: Finalizers,
}

/// Receives placed files from the archive: journals them and queues them.
struct Enqueue {
    tx: mpsc::Sender<Placed>,
    uris: UriMap,
    journal: Arc<Mutex<Option<Journal>>>,
}

impl AfterPlace for Enqueue {
    fn placed(&self, file: PlacedFile) -> futures::future::BoxFuture<'static, ()> {
        let uri = self.uris.uri(&file.placed);
        let table = file.dir.split('/').next().unwrap_or_default().to_string();
        let journal = self.journal.clone();
        let tx = self.tx.clone();
        Box::pin(async move {
            let entry = Entry::Placed {
                uri: uri.clone(),
                table: table.clone(),
                events: file.events,
            };
            if let Err(e) = journal_append(&journal, &entry) {
                tracing::error!(uri = %uri, error = %e, "Cannot record a placed file in the load journal; its events are not acknowledged and come again.");
                let mut f = file.finalizers;
                f.finalize(BatchStatus::Errored);
                return;
            }
            test_abort_at("after_upload");
            let placed = Placed {
                uri,
                table,
                events: file.events,
                size: file.size,
                finalizers: file.finalizers,
            };
            if let Err(mpsc::error::SendError(p)) = tx.send(placed).await {
                let mut f = p.finalizers;
                f.finalize(BatchStatus::Errored);
            }
        })
    }
}

fn journal_append(journal: &Mutex<Option<Journal>>, entry: &Entry) -> std::io::Result<()> {
    tokio::task::block_in_place(|| {
        let mut guard = journal.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_mut() {
            Some(j) => j.append(entry),
            None => Err(std::io::Error::other("the load journal is not open")),
        }
    })
}

impl Sink for LoadSink {
    fn run(self: Box<Self>, cx: SinkContext) -> BoxFuture {
        Box::pin(async move {
            let LoadSink {
                archive,
                enqueue,
                rx,
                loader,
            } = *self;
            let (journal, open) = Journal::open(&loader.journal_dir)
                .map_err(|e| ComponentError::io(loader.journal_dir.join("load-journal.jsonl").display(), &e))?;
            *enqueue.journal.lock().unwrap_or_else(|e| e.into_inner()) = Some(journal);
            let run = Arc::new(Running {
                events: LoadEvents {
                    rejected: cx.metrics.emitter(),
                    failed: cx.metrics.emitter(),
                    done: cx.metrics.emitter(),
                },
                rejects: Rejects::new(&cx),
                metrics: cx.metrics.clone(),
                journal: enqueue.journal.clone(),
                loader,
            });
            drop(enqueue);
            super::healthcheck(&run.loader.cfg, &run.loader.rest, &cx.metrics).await;
            run.finish_open(open).await;
            let loading = tokio::spawn(run.clone().load_placed(rx));
            let result = Box::new(archive).run(cx).await;
            // The archive is done and dropped its sender: the loader loads what is
            // left, now, and ends.
            if let Err(e) = loading.await {
                tracing::error!(error = %e, "The BigQuery loader task failed.");
            }
            result
        })
    }
}

/// What the loader needs, built with the sink.
struct Loader {
    cfg: Arc<Checked>,
    rest: Rest,
    uris: UriMap,
    journal_dir: PathBuf,
}

struct LoadEvents {
    rejected: Emitter<RejectedByBigQuery>,
    failed: Emitter<RequestFailed>,
    done: Emitter<LoadJobDone>,
}

/// The loader while the sink runs.
struct Running {
    loader: Loader,
    events: LoadEvents,
    rejects: Rejects,
    metrics: Arc<ComponentMetrics>,
    journal: Arc<Mutex<Option<Journal>>>,
}

/// Files waiting for one table's next job.
struct Waiting {
    files: Vec<Placed>,
    since: Instant,
}

/// How a job ended.
enum Outcome {
    Loaded,
    /// Failed on the data or the table: the reason to reject its events with.
    Refused(String),
}

impl Running {
    /// Finishes the work a previous run left open, before anything new is loaded.
    async fn finish_open(&self, open: Open) {
        if open.jobs.is_empty() && open.placed.is_empty() {
            return;
        }
        tracing::info!(component = %self.metrics.id, jobs = open.jobs.len(), files = open.placed.values().map(Vec::len).sum::<usize>(), "Finishing the load jobs an earlier run left open.");
        for (id, table, uris) in open.jobs {
            let attempt = id.rsplit('_').next().and_then(|a| a.parse().ok()).unwrap_or(0);
            self.load(&table, uris, attempt, Some(id)).await;
        }
        for (table, files) in open.placed {
            let uris = files.into_iter().map(|(uri, _)| uri).collect();
            self.load(&table, uris, 0, None).await;
        }
    }

    /// Gathers placed files per table and loads each table's every
    /// `load_interval_secs`; loads the rest at once when the archive is done.
    async fn load_placed(self: Arc<Self>, mut rx: mpsc::Receiver<Placed>) {
        let interval = Duration::from_secs(self.loader.cfg.config.load_interval_secs);
        let mut waiting: HashMap<String, Waiting> = HashMap::new();
        let mut open = true;
        while open || !waiting.is_empty() {
            if open {
                match tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
                    Ok(Some(p)) => {
                        waiting
                            .entry(p.table.clone())
                            .or_insert_with(|| Waiting {
                                files: Vec::new(),
                                since: Instant::now(),
                            })
                            .files
                            .push(p);
                    }
                    Ok(None) => open = false,
                    Err(_) => {}
                }
            }
            let due: Vec<String> = waiting
                .iter()
                .filter(|(_, w)| !open || w.since.elapsed() >= interval)
                .map(|(t, _)| t.clone())
                .collect();
            for table in due {
                if let Some(w) = waiting.remove(&table) {
                    self.load_files(&table, w.files).await;
                }
            }
        }
    }

    /// Loads `files` into `table` with one job, then acknowledges (or rejects) their
    /// events.
    async fn load_files(&self, table: &str, files: Vec<Placed>) {
        let uris = files.iter().map(|f| f.uri.clone()).collect();
        let outcome = self.load(table, uris, 0, None).await;
        test_abort_at("before_ack");
        let events: u64 = files.iter().map(|f| f.events).sum();
        let bytes: u64 = files.iter().map(|f| f.size).sum();
        match outcome {
            Outcome::Loaded => {
                self.metrics.sent(events, bytes);
                for f in files {
                    let mut fin = f.finalizers;
                    fin.finalize(BatchStatus::Delivered);
                }
            }
            Outcome::Refused(reason) => {
                for f in files {
                    self.rejects.reject_finalizers(
                        f.finalizers,
                        f.events,
                        &reason,
                        &self.events.rejected,
                        RejectedByBigQuery,
                    );
                }
            }
        }
    }

    /// Runs the load job of `uris` into `table` until it is done: attempt by
    /// attempt (a job failing on BigQuery's side is tried again under the next
    /// attempt's id), each recorded in the journal before it is inserted. `known`
    /// is the id of a job a previous run recorded.
    async fn load(&self, table: &str, mut uris: Vec<String>, mut attempt: u32, mut known: Option<String>) -> Outcome {
        uris.sort();
        let mut retry = Retry::new("BigQuery load jobs");
        loop {
            let id = known.take().unwrap_or_else(|| job_id(table, &uris, attempt));
            let entry = Entry::Job {
                id: id.clone(),
                table: table.to_string(),
                uris: uris.clone(),
            };
            while let Err(e) = journal_append(&self.journal, &entry) {
                let e = ComponentError::io("the load journal", &e);
                retry.wait(&e, &self.events.failed, &self.metrics).await;
            }
            let state = self.run_job(&id, table, &uris, &mut retry).await;
            if state.is_transient() {
                let JobState::Failed { message, .. } = &state else {
                    unreachable!()
                };
                let e = ComponentError::external(format!("load job {id}: {message}"));
                retry.wait(&e, &self.events.failed, &self.metrics).await;
                attempt += 1;
                continue;
            }
            retry.succeeded(&self.metrics);
            let ok = state == JobState::Done;
            while let Err(e) = journal_append(&self.journal, &Entry::Done { id: id.clone(), ok }) {
                let e = ComponentError::io("the load journal", &e);
                retry.wait(&e, &self.events.failed, &self.metrics).await;
            }
            return match state {
                JobState::Failed { message, .. } => {
                    tracing::error!(component = %self.metrics.id, job_id = %id, table, error = %message, "A BigQuery load job failed; the events of its files are rejected.");
                    Outcome::Refused(format!("load job {id} failed: {message}"))
                }
                _ => {
                    self.events.done.emit(LoadJobDone {
                        job_id: id,
                        files: uris.len(),
                        table: table.to_string(),
                    });
                    Outcome::Loaded
                }
            };
        }
    }

    /// Inserts job `id` unless BigQuery knows it, then waits until it is done.
    async fn run_job(&self, id: &str, table: &str, uris: &[String], retry: &mut Retry) -> JobState {
        let mut poll = Duration::from_millis(500);
        loop {
            match self.loader.rest.job_state(id).await {
                Ok(Some(JobState::Running)) => {
                    tokio::time::sleep(poll).await;
                    poll = (poll * 2).min(Duration::from_secs(10));
                }
                Ok(Some(state)) => return state,
                Ok(None) => match self.loader.rest.insert_load_job(id, self.job_config(table, uris)).await {
                    Ok(()) => test_abort_at("after_insert"),
                    Err(e) => retry.wait(&e, &self.events.failed, &self.metrics).await,
                },
                Err(e) => retry.wait(&e, &self.events.failed, &self.metrics).await,
            }
        }
    }

    /// The `configuration.load` of a job reading `uris` into `table`.
    fn job_config(&self, table: &str, uris: &[String]) -> serde_json::Value {
        let cfg = &self.loader.cfg;
        let c = &cfg.config;
        let mut load = json!({
            "sourceUris": uris,
            "sourceFormat": match c.encoding {
                LoadEncoding::Parquet => "PARQUET",
                LoadEncoding::Ndjson => "NEWLINE_DELIMITED_JSON",
            },
            "writeDisposition": "WRITE_APPEND",
            "createDisposition": if c.create_table { "CREATE_IF_NEEDED" } else { "CREATE_NEVER" },
            "destinationTable": {"projectId": c.project, "datasetId": c.dataset, "tableId": table},
            "maxBadRecords": c.max_bad_records,
            "ignoreUnknownValues": c.ignore_unknown_values,
        });
        if let (true, Some(schema)) = (c.create_table, &cfg.schema) {
            load["schema"] = json!({"fields": schema.to_json()});
        }
        if c.hive_partitioning {
            load["hivePartitioningOptions"] = json!({
                "mode": "AUTO",
                "sourceUriPrefix": format!("{}/{table}/", self.loader.uris.base_uri),
            });
        }
        load
    }
}

/// The id of the load job of `uris` into `table`, attempt `attempt`: the same for
/// the same files on every run, so a restart finds the job it had inserted.
fn job_id(table: &str, uris: &[String], attempt: u32) -> String {
    let mut h = Sha256::new();
    h.update(table.as_bytes());
    for u in uris {
        h.update(b"\n");
        h.update(u.as_bytes());
    }
    let digest = h.finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("pipe_load_{hex}_{attempt}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_follow_the_files_and_the_attempt() {
        let a = vec!["gs://b/t/1.parquet".to_string()];
        let b = vec!["gs://b/t/2.parquet".to_string()];
        assert_eq!(job_id("t", &a, 0), job_id("t", &a, 0));
        assert_ne!(job_id("t", &a, 0), job_id("t", &b, 0));
        assert_ne!(job_id("t", &a, 0), job_id("u", &a, 0));
        assert!(job_id("t", &a, 3).ends_with("_3"));
        assert!(
            job_id("t", &a, 0)
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        );
    }

    #[test]
    fn placed_files_get_the_uri_the_load_job_reads() {
        let local = UriMap {
            local_root: Some(PathBuf::from("/srv/arch")),
            base_uri: "gs://bucket/arch".into(),
            gcs_bucket: None,
            store_prefix: String::new(),
        };
        assert_eq!(
            local.uri("/srv/arch/t/dt=1/x.parquet"),
            "gs://bucket/arch/t/dt=1/x.parquet"
        );
        let gcs = UriMap {
            local_root: None,
            base_uri: "gs://b/logs".into(),
            gcs_bucket: Some("b".into()),
            store_prefix: "logs".into(),
        };
        assert_eq!(gcs.uri("logs/t/x.parquet"), "gs://b/logs/t/x.parquet");
    }
}
