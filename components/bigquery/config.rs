//! Options of the `bigquery` sink, their defaults, and their checks (offline: what
//! `pipe validate` sees).

use super::schema::TableSchema;
use crate::component::BuildError;
use crate::template::Template;
use indexmap::IndexMap;
use serde::Deserialize;
use std::path::PathBuf;

/// Options of the `bigquery` sink.
#[derive(Debug, Deserialize, Clone, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BigQueryConfig {
    /// The Google Cloud project that holds the dataset.
    pub project: String,
    /// The dataset.
    pub dataset: String,
    /// The table, a template: `logs`, `logs_%Y%m%d` (strftime on `time_field`) or
    /// `{{ service }}`. One time-partitioned table is BigQuery's advice.
    pub table: String,
    /// `stream` (rows appended as they come) or `load` (files on GCS, loaded by
    /// load jobs; no streaming costs).
    #[serde(default)]
    pub mode: Mode,
    /// Stream mode's API: `storage_write` (gRPC) or `insert_all` (legacy
    /// `tabledata.insertAll`, HTTPS only).
    #[serde(default)]
    pub api: Api,
    /// Storage Write: `default` (the table's `_default` stream, at-least-once) or
    /// `committed` (a stream of the sink's own with offsets, so retries within a run
    /// never duplicate).
    #[serde(default)]
    pub write_mode: WriteMode,
    /// Appends (or `insertAll` requests) in flight at once; more and the inputs wait.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// The REST API's base URL (default `https://bigquery.googleapis.com`), for
    /// emulators and private endpoints.
    pub endpoint: Option<String>,
    /// The Storage Write API's gRPC address (default
    /// `https://bigquerystorage.googleapis.com`). `http://…` is plaintext without
    /// credentials, for emulators.
    pub storage_endpoint: Option<String>,
    /// A service account key or `authorized_user` JSON file. Without it:
    /// `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's application-default credentials,
    /// then the metadata server. With `endpoint` on `http://` no credentials are
    /// used unless this is set.
    pub credentials_path: Option<PathBuf>,
    /// Columns, name → type (`string`, `int`, `float`, `bool`, `timestamp`, or a
    /// BigQuery type such as `JSON`, `DATE`, `NUMERIC`). Without `schema` and
    /// `schema_file` the schema is read from the table at start.
    pub schema: Option<IndexMap<String, String>>,
    /// A BigQuery JSON schema file (what `bq show --schema` prints): modes, RECORD
    /// columns. With `schema` too, `schema` is checked against it.
    pub schema_file: Option<PathBuf>,
    /// The column (STRING or JSON) that keeps values that do not fit their column's
    /// type, as a JSON object, when the table has it. Counted either way.
    #[serde(default = "default_rejected_column")]
    pub rejected_column: String,
    /// Drop fields that are no column. With `false`, an event with such a field goes
    /// to `ID.dropped`.
    #[serde(default)]
    pub ignore_unknown_values: bool,
    /// Create a missing table (from the declared schema). Without it, events for a
    /// missing table go to `ID.dropped`.
    #[serde(default)]
    pub create_table: bool,
    /// `insert_all`: the field whose value is the row's `insertId` (best-effort
    /// de-duplication by BigQuery).
    pub id_field: Option<String>,
    /// `insert_all`: BigQuery's `skipInvalidRows` (the valid rows of a request are
    /// inserted even when some are invalid). The invalid ones go to `ID.dropped`
    /// either way.
    #[serde(default)]
    pub skip_invalid_rows: bool,
    /// The event time for the strftime parts of `table` and `partition`.
    #[serde(default = "default_time_field")]
    pub time_field: String,
    /// Most rows per append or request.
    #[serde(default = "default_batch_max_events")]
    pub batch_max_events: usize,
    /// Most bytes per append or request (BigQuery takes at most 10 MB).
    #[serde(default = "default_batch_max_bytes")]
    pub batch_max_bytes: usize,
    /// Longest wait to fill a batch, in ms.
    #[serde(default = "default_batch_timeout_ms")]
    pub batch_timeout_ms: u64,
    /// Timeout of one request, in seconds.
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// At start, check that the table exists and can be read; the inputs wait until
    /// it can. With `false`, one try and a warning.
    #[serde(default = "yes")]
    pub healthcheck: bool,
    /// Load mode: where files are staged for the load jobs, `gs://bucket/prefix` (or
    /// a local directory with `load_uri_prefix`).
    pub url: Option<String>,
    /// Load mode: the directory template under `url/<table>/`.
    #[serde(default = "default_partition")]
    pub partition: String,
    /// Load mode: `parquet` or `ndjson`.
    #[serde(default)]
    pub encoding: LoadEncoding,
    /// Load mode: complete a file this many seconds after it was opened.
    #[serde(default = "default_max_age_secs")]
    pub max_age_secs: u64,
    /// Load mode: complete a file at this many bytes.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Load mode: … or at this many events.
    #[serde(default = "default_max_events")]
    pub max_events: u64,
    /// Load mode: the GCS endpoint (an emulator) for staging files.
    pub gcs_endpoint: Option<String>,
    /// Load mode: files completed for one table within this many seconds go into one
    /// load job (BigQuery allows 1,500 loads per table per day). At least 60.
    #[serde(default = "default_load_interval_secs")]
    pub load_interval_secs: u64,
    /// Load mode: bad rows a load job may skip before it fails.
    #[serde(default)]
    pub max_bad_records: u64,
    /// Load mode: ask the load job to read the Hive partition keys of the path
    /// (`dt=…/hour=…`) as columns.
    #[serde(default)]
    pub hive_partitioning: bool,
    /// Load mode: the `gs://bucket/prefix` the load jobs read for `url` (when `url` is
    /// a local directory that an emulator serves as a bucket).
    pub load_uri_prefix: Option<String>,
}

/// Where rows go.
#[derive(Debug, Deserialize, serde::Serialize, schemars::JsonSchema, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Stream,
    Load,
}

/// Which streaming API.
#[derive(Debug, Deserialize, serde::Serialize, schemars::JsonSchema, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    #[default]
    StorageWrite,
    InsertAll,
}

/// Which write stream.
#[derive(Debug, Deserialize, serde::Serialize, schemars::JsonSchema, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    #[default]
    Default,
    Committed,
}

/// What load mode's files hold.
#[derive(Debug, Deserialize, serde::Serialize, schemars::JsonSchema, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum LoadEncoding {
    #[default]
    Parquet,
    Ndjson,
}

fn default_max_in_flight() -> usize {
    4
}
fn default_rejected_column() -> String {
    "_rejected".into()
}
fn default_time_field() -> String {
    "timestamp".into()
}
fn default_batch_max_events() -> usize {
    5000
}
fn default_batch_max_bytes() -> usize {
    9 << 20
}
fn default_batch_timeout_ms() -> u64 {
    1000
}
fn default_request_timeout_secs() -> u64 {
    60
}
fn default_partition() -> String {
    "dt=%Y-%m-%d/hour=%-H".into()
}
fn default_max_age_secs() -> u64 {
    300
}
fn default_max_bytes() -> u64 {
    128 << 20
}
fn default_max_events() -> u64 {
    1_000_000
}
fn default_load_interval_secs() -> u64 {
    300
}
fn yes() -> bool {
    true
}

/// The most bytes one append or request may carry: BigQuery refuses 10 MB, and
/// the request's own framing needs room.
pub const MAX_REQUEST_BYTES: usize = 10_000_000 - 64 * 1024;

/// The checked options.
#[derive(Debug, Clone)]
pub struct Checked {
    pub config: BigQueryConfig,
    pub table: Template,
    /// The schema declared in the topology or its file; `None`: read from the table.
    pub schema: Option<TableSchema>,
    /// `https://bigquery.googleapis.com/bigquery/v2/projects/P`, or the same under
    /// `endpoint`.
    pub rest_base: String,
    pub storage_endpoint: String,
}

impl BigQueryConfig {
    /// Checks the options, naming the key at fault. Reads `schema_file`.
    pub fn check(self) -> Result<Checked, BuildError> {
        for (key, v) in [
            ("project", &self.project),
            ("dataset", &self.dataset),
            ("table", &self.table),
        ] {
            if v.trim().is_empty() {
                return Err(BuildError::key(key, "must not be empty"));
            }
        }
        if !self.dataset.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(BuildError::key("dataset", "takes letters, digits and underscores only"));
        }
        let table =
            Template::parse(&self.table, &self.time_field).map_err(|e| BuildError::key("table", e.to_string()))?;
        for (key, v) in [
            ("max_in_flight", self.max_in_flight as u64),
            ("batch_max_events", self.batch_max_events as u64),
            ("batch_max_bytes", self.batch_max_bytes as u64),
            ("request_timeout_secs", self.request_timeout_secs),
        ] {
            if v == 0 {
                return Err(BuildError::key(key, "must be positive"));
            }
        }
        if self.batch_max_bytes > MAX_REQUEST_BYTES {
            return Err(BuildError::key(
                "batch_max_bytes",
                format!("BigQuery takes requests under 10 MB; at most {MAX_REQUEST_BYTES}"),
            ));
        }
        let declared = match &self.schema {
            Some(cols) if cols.is_empty() => return Err(BuildError::key("schema", "declares no column")),
            Some(cols) => Some(TableSchema::declared(cols).map_err(|e| BuildError::key("schema", e))?),
            None => None,
        };
        let file = match &self.schema_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| BuildError::key("schema_file", format!("cannot read {}: {e}", path.display())))?;
                Some(
                    TableSchema::from_json_file(&text)
                        .map_err(|e| BuildError::key("schema_file", format!("{}: {e}", path.display())))?,
                )
            }
            None => None,
        };
        let schema = match (declared, file) {
            (Some(d), Some(f)) => {
                f.check_declared_against(&d).map_err(|e| BuildError::key("schema", e))?;
                Some(f)
            }
            (d, f) => f.or(d),
        };
        if self.create_table && schema.is_none() {
            return Err(BuildError::key(
                "create_table",
                "needs `schema` or `schema_file` to create tables from",
            ));
        }
        if self.api == Api::InsertAll && self.write_mode == WriteMode::Committed {
            return Err(BuildError::key(
                "write_mode",
                "applies to api = \"storage_write\"; insert_all has no write streams",
            ));
        }
        if self.id_field.is_some() && self.api != Api::InsertAll {
            return Err(BuildError::key(
                "id_field",
                "is `insertAll`'s insertId; set api = \"insert_all\" (storage_write's committed mode uses offsets instead)",
            ));
        }
        match self.mode {
            Mode::Load => {
                if self.url.as_deref().is_none_or(str::is_empty) {
                    return Err(BuildError::key(
                        "url",
                        "load mode stages files at `url` (gs://bucket/prefix) for the load jobs",
                    ));
                }
                if self.load_interval_secs < 60 {
                    return Err(BuildError::key(
                        "load_interval_secs",
                        "must be at least 60: BigQuery allows 1,500 load jobs per table per day",
                    ));
                }
                let local = self.url.as_deref().is_some_and(|u| !u.contains("://"));
                if local && self.load_uri_prefix.is_none() {
                    return Err(BuildError::key(
                        "load_uri_prefix",
                        "a local `url` needs the gs:// prefix the load jobs read it under",
                    ));
                }
            }
            Mode::Stream => {
                if self.url.is_some() {
                    return Err(BuildError::key("url", "applies to mode = \"load\""));
                }
            }
        }
        let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let rest_root = non_empty(&self.endpoint).unwrap_or_else(|| "https://bigquery.googleapis.com".into());
        let rest_base = format!(
            "{}/bigquery/v2/projects/{}",
            rest_root.trim_end_matches('/'),
            self.project
        );
        let storage_endpoint = non_empty(&self.storage_endpoint)
            .unwrap_or_else(|| "https://bigquerystorage.googleapis.com".into())
            .trim_end_matches('/')
            .to_string();
        Ok(Checked {
            config: self,
            table,
            schema,
            rest_base,
            storage_endpoint,
        })
    }
}

impl Checked {
    /// The credentials requests go with: none for an emulator (see
    /// [`Checked::anonymous`]), else `credentials_path` or the default chain.
    pub fn credentials(
        &self,
    ) -> Result<std::sync::Arc<crate::components::object_store::google_auth::GoogleCredentials>, BuildError> {
        use crate::components::object_store::google_auth::GoogleCredentials;
        if self.anonymous() {
            return Ok(GoogleCredentials::anonymous());
        }
        GoogleCredentials::load(self.config.credentials_path.as_deref())
            .map_err(|e| BuildError::key("credentials_path", e.to_string()))
    }

    /// True when requests go without credentials: an emulator on plain HTTP and no
    /// `credentials_path`.
    pub fn anonymous(&self) -> bool {
        self.config.credentials_path.is_none()
            && self.rest_base.starts_with("http://")
            && (self.config.mode == Mode::Load
                || self.config.api == Api::InsertAll
                || self.storage_endpoint.starts_with("http://"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(extra: &str) -> Result<Checked, BuildError> {
        let text = format!("project = 'p'\ndataset = 'd'\ntable = 't'\n{extra}");
        let c: BigQueryConfig = crate::component::parse_options(toml::from_str(&text).unwrap())?;
        c.check()
    }

    #[test]
    fn defaults_and_mistakes_name_their_key() {
        let c = check("").unwrap();
        assert_eq!(c.config.mode, Mode::Stream);
        assert_eq!(c.config.api, Api::StorageWrite);
        assert_eq!(c.config.max_in_flight, 4);
        assert_eq!(c.rest_base, "https://bigquery.googleapis.com/bigquery/v2/projects/p");
        let key = |t: &str| check(t).err().and_then(|e| e.key);
        assert_eq!(key("mode = 'load'"), Some("url".into()));
        assert_eq!(
            key("mode = 'load'\nurl = 'gs://b/x'\nload_interval_secs = 10"),
            Some("load_interval_secs".into())
        );
        assert_eq!(key("mode = 'load'\nurl = '/tmp/x'"), Some("load_uri_prefix".into()));
        assert_eq!(key("create_table = true"), Some("create_table".into()));
        assert_eq!(
            key("api = 'insert_all'\nwrite_mode = 'committed'"),
            Some("write_mode".into())
        );
        assert_eq!(key("id_field = 'id'"), Some("id_field".into()));
        assert_eq!(key("batch_max_bytes = 20000000"), Some("batch_max_bytes".into()));
        assert_eq!(key("[schema]\nn = 'decimal(3)'"), Some("schema".into()));
        assert!(check("mode = 'load'\nurl = 'gs://b/x'").is_ok());
    }

    #[test]
    fn the_declared_schema_is_checked_against_the_schema_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("schema.json");
        std::fs::write(&file, r#"[{"name":"n","type":"INTEGER"}]"#).unwrap();
        let f = file.display();
        assert!(check(&format!("schema_file = '{f}'\n[schema]\nn = 'int'")).is_ok());
        let e = check(&format!("schema_file = '{f}'\n[schema]\nn = 'string'")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("schema"));
        assert!(e.message.contains("schema_file"), "{}", e.message);
    }
}
