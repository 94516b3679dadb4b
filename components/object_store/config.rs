//! Options of the `object_store` sink, their defaults, and their checks.

use super::store::StoreOptions;
use crate::columnar::ColumnType;
use crate::component::BuildError;
use crate::template::Template;
use indexmap::IndexMap;
use serde::Deserialize;

/// Options of the `object_store` sink.
#[derive(Debug, Deserialize, Clone, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// A local directory, `s3://bucket/prefix` or `gs://bucket/prefix`.
    pub url: String,
    /// Endpoint override: an S3-compatible server or a GCS emulator (no OAuth then).
    pub endpoint: Option<String>,
    /// S3 region (default `AWS_REGION`, else `us-east-1`).
    pub region: Option<String>,
    /// Allow a plain-HTTP `endpoint`.
    #[serde(default)]
    pub allow_http: bool,
    /// Directory template: strftime on the event time, `{{ field }}` values; a missing
    /// field renders `__HIVE_DEFAULT_PARTITION__`.
    #[serde(default = "default_partition")]
    pub partition: String,
    /// File name template (same syntax, no `/`; default
    /// `part-<UTC time>-<random>.<ext>`). An existing name is never overwritten: `-1`,
    /// `-2`, … goes before the extension.
    pub filename: Option<String>,
    /// Field holding the event time (a timestamp or RFC 3339 string); without it, the
    /// time of writing.
    #[serde(default = "default_time_field")]
    pub time_field: String,
    /// What a file holds.
    #[serde(default)]
    pub encoding: FileEncoding,
    /// Parquet: `zstd` (default), `snappy`, `lz4`, `none`. Lines: `gzip` (default),
    /// `zstd`, `none`.
    pub compression: Option<FileCompression>,
    /// Parquet rows per row group.
    #[serde(default = "default_row_group_size")]
    pub row_group_size: usize,
    /// Complete a file at this size in bytes (compressed, estimated while open).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// … or at this many events.
    #[serde(default = "default_max_events")]
    pub max_events: u64,
    /// … or this many seconds after it was opened. Files are also completed when pipe
    /// stops.
    #[serde(default = "default_max_age_secs")]
    pub max_age_secs: u64,
    /// Parquet columns, name → `string`, `int`/`bigint`, `float`/`double`, `bool`,
    /// `timestamp`, `timestamp(s|ms|us|ns)` (UTC). Without it the columns are
    /// inferred.
    pub schema: Option<IndexMap<String, String>>,
    /// With `schema`: the column keeping values that do not fit their type, as a JSON
    /// object; `""` for none. Counted either way.
    #[serde(default = "default_rejected_column")]
    pub rejected_column: String,
    /// Completed files placed at once; more and the inputs wait.
    #[serde(default = "default_max_uploads")]
    pub max_uploads: usize,
    /// Files open for writing at once (one per partition and file name); to open
    /// another, the least recently written one is completed.
    #[serde(default = "default_max_open_files")]
    pub max_open_files: usize,
    /// An inferred schema grows to at most this many columns; fields of new names
    /// after that go, per row, into one JSON string column `_overflow`.
    #[serde(default = "default_max_columns")]
    pub max_columns: usize,
}

/// What a file holds.
#[derive(Debug, Deserialize, serde::Serialize, schemars::JsonSchema, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum FileEncoding {
    /// Parquet columns.
    #[default]
    Parquet,
    /// The event as JSON, one per line.
    Ndjson,
    /// The `message` field, one per line.
    Text,
}

/// How a file is compressed.
#[derive(Debug, Deserialize, serde::Serialize, schemars::JsonSchema, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum FileCompression {
    None,
    Zstd,
    Snappy,
    Lz4,
    Gzip,
}

fn default_partition() -> String {
    "dt=%Y-%m-%d/hour=%-H".into()
}
fn default_time_field() -> String {
    "timestamp".into()
}
fn default_row_group_size() -> usize {
    128 * 1024
}
fn default_max_bytes() -> u64 {
    128 << 20
}
fn default_max_events() -> u64 {
    1_000_000
}
fn default_max_age_secs() -> u64 {
    300
}
fn default_rejected_column() -> String {
    "_rejected".into()
}
fn default_max_uploads() -> usize {
    4
}
fn default_max_open_files() -> usize {
    256
}
fn default_max_columns() -> usize {
    crate::columnar::DEFAULT_MAX_COLUMNS
}

/// The checked configuration, ready for the sink.
#[derive(Debug, Clone)]
pub struct Checked {
    pub config: ArchiveConfig,
    pub store: StoreOptions,
    pub partition: Template,
    pub filename: Option<Template>,
    pub compression: FileCompression,
    pub schema: Option<Vec<(String, ColumnType)>>,
}

impl ArchiveConfig {
    /// Checks the options, naming the key at fault.
    pub fn check(self) -> Result<Checked, BuildError> {
        let partition = Template::parse(&self.partition, &self.time_field)
            .map_err(|e| BuildError::key("partition", e.to_string()))?;
        let filename = match &self.filename {
            Some(f) if f.contains('/') => {
                return Err(BuildError::key(
                    "filename",
                    "is a file name; put directories in `partition`",
                ));
            }
            Some(f) if f.trim().is_empty() => return Err(BuildError::key("filename", "must not be empty")),
            Some(f) => {
                Some(Template::parse(f, &self.time_field).map_err(|e| BuildError::key("filename", e.to_string()))?)
            }
            None => None,
        };
        let compression = match (self.encoding, self.compression) {
            (FileEncoding::Parquet, None) => FileCompression::Zstd,
            (_, None) => FileCompression::Gzip,
            (FileEncoding::Parquet, Some(FileCompression::Gzip)) => {
                return Err(BuildError::key(
                    "compression",
                    "Parquet files take zstd, snappy, lz4 or none",
                ));
            }
            (FileEncoding::Ndjson | FileEncoding::Text, Some(c @ (FileCompression::Snappy | FileCompression::Lz4))) => {
                return Err(BuildError::key(
                    "compression",
                    format!("{c:?} is for Parquet; line files take gzip, zstd or none").to_lowercase(),
                ));
            }
            (_, Some(c)) => c,
        };
        for (key, v) in [
            ("max_bytes", self.max_bytes),
            ("max_events", self.max_events),
            ("max_age_secs", self.max_age_secs),
            ("row_group_size", self.row_group_size as u64),
            ("max_uploads", self.max_uploads as u64),
            ("max_open_files", self.max_open_files as u64),
            ("max_columns", self.max_columns as u64),
        ] {
            if v == 0 {
                return Err(BuildError::key(key, "must be positive"));
            }
        }
        let schema = match &self.schema {
            None => None,
            Some(_) if self.encoding != FileEncoding::Parquet => {
                return Err(BuildError::key("schema", "applies to Parquet files only"));
            }
            Some(cols) if cols.is_empty() => return Err(BuildError::key("schema", "declares no column")),
            Some(cols) => {
                let mut out = Vec::new();
                for (name, ty) in cols {
                    let ty = ColumnType::parse(ty).map_err(|e| BuildError::key(&format!("schema.{name}"), e))?;
                    out.push((name.clone(), ty));
                }
                if cols.contains_key(&self.rejected_column) {
                    return Err(BuildError::key(
                        "rejected_column",
                        format!("`{}` is also a declared column", self.rejected_column),
                    ));
                }
                Some(out)
            }
        };
        // Empty means unset, so topologies can write `endpoint = "${VAR:-}"`.
        let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let store = StoreOptions {
            endpoint: non_empty(&self.endpoint),
            region: non_empty(&self.region),
            allow_http: self.allow_http,
        };
        Ok(Checked {
            config: self,
            store,
            partition,
            filename,
            compression,
            schema,
        })
    }
}

impl Checked {
    /// The extension of generated file names (`parquet`, `json.gz`, `log.zst`, …).
    pub fn extension(&self) -> &'static str {
        match (self.config.encoding, self.compression) {
            (FileEncoding::Parquet, _) => "parquet",
            (FileEncoding::Ndjson, FileCompression::Gzip) => "json.gz",
            (FileEncoding::Ndjson, FileCompression::Zstd) => "json.zst",
            (FileEncoding::Ndjson, _) => "json",
            (FileEncoding::Text, FileCompression::Gzip) => "log.gz",
            (FileEncoding::Text, FileCompression::Zstd) => "log.zst",
            (FileEncoding::Text, _) => "log",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml: &str) -> Result<Checked, BuildError> {
        let c: ArchiveConfig = crate::component::parse_options(toml::from_str(toml).unwrap())?;
        c.check()
    }

    #[test]
    fn defaults_and_mistakes() {
        let c = check("url = '/tmp/a'").unwrap();
        assert_eq!(c.compression, FileCompression::Zstd);
        assert_eq!(c.extension(), "parquet");
        assert_eq!(check("url = 'x'\nencoding = 'text'").unwrap().extension(), "log.gz");
        let key = |t: &str| check(t).err().and_then(|e| e.key);
        assert_eq!(key("url = 'x'\ncompression = 'gzip'"), Some("compression".into()));
        assert_eq!(
            key("url = 'x'\nencoding = 'ndjson'\ncompression = 'lz4'"),
            Some("compression".into())
        );
        assert!(check("url = 'x'\ncompression = 'snappy'").is_ok());
        assert_eq!(key("url = 'x'\nfilename = 'a/b'"), Some("filename".into()));
        assert_eq!(key("url = 'x'\nmax_events = 0"), Some("max_events".into()));
        assert_eq!(key("url = 'x'\n[schema]\nn = 'decimal'"), Some("schema.n".into()));
        assert_eq!(key("url = 'x'\npartition = '{{ a'"), Some("partition".into()));
        assert_eq!(key("partition = 'x'"), Some("url".into()));
    }
}
