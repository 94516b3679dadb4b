//! One archive file being written: a staged local file under the sink's state
//! directory, encoded as Parquet (through [`Columns`]) or as compressed lines. When
//! finished it is synced to disk and handed to the uploader.

use super::config::{Checked, FileCompression, FileEncoding};
use crate::ack::Finalizers;
use crate::columnar::Columns;
use crate::encoding::{Encoding, encode_line};
use crate::event::Event;
use crate::metrics::ComponentMetrics;
use arrow::array::{Array, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use vrl::value::Value;

/// Rows gathered before they are converted into one Arrow batch.
const ROWS_PER_BATCH: usize = 8192;

/// Why a file cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("staged file {0}: {1}")]
    Io(String, std::io::Error),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// What the file's key-value metadata says about who wrote it.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub topology: String,
    pub sink: String,
}

// One per open file: the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Body {
    Parquet {
        /// Created at the first conversion, with the schema of that moment.
        writer: Option<(ArrowWriter<File>, SchemaRef)>,
        file: Option<File>,
        props: WriterProperties,
        /// Rows not yet converted (the schema may still grow before they are).
        rows: Vec<Value>,
    },
    Lines(Box<dyn LineWriter>),
}

/// The staged file, counting the bytes that reach it.
struct Counted {
    file: File,
    bytes: u64,
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

type Out = BufWriter<Counted>;

fn out_size(out: &Out) -> u64 {
    out.get_ref().bytes + out.buffer().len() as u64
}

fn out_file(out: Out) -> std::io::Result<File> {
    Ok(out.into_inner().map_err(|e| e.into_error())?.file)
}

/// A line writer: `Write` plus finishing its compression frame and its size so far.
trait LineWriter: Write + Send {
    fn finish(self: Box<Self>) -> std::io::Result<File>;
    /// Compressed bytes produced so far.
    fn size(&self) -> u64;
}

impl LineWriter for Out {
    fn finish(self: Box<Self>) -> std::io::Result<File> {
        out_file(*self)
    }
    fn size(&self) -> u64 {
        out_size(self)
    }
}
impl LineWriter for flate2::write::GzEncoder<Out> {
    fn finish(self: Box<Self>) -> std::io::Result<File> {
        out_file((*self).finish()?)
    }
    fn size(&self) -> u64 {
        out_size(self.get_ref())
    }
}
impl LineWriter for zstd::Encoder<'static, Out> {
    fn finish(self: Box<Self>) -> std::io::Result<File> {
        out_file((*self).finish()?)
    }
    fn size(&self) -> u64 {
        out_size(self.get_ref())
    }
}

/// A file in the making.
pub struct StagedFile {
    path: PathBuf,
    body: Body,
    line_encoding: Encoding,
    /// Events written so far.
    pub events: u64,
    /// Notifiers of the events already encoded into the file.
    written: Finalizers,
    /// Notifiers of the Parquet rows still waiting to be converted.
    waiting: Finalizers,
}

impl StagedFile {
    /// Creates the staged file `path` for `cfg`'s encoding.
    pub fn create(path: &Path, cfg: &Checked, who: &Provenance) -> Result<StagedFile, EncodeError> {
        let io = |e| EncodeError::Io(path.display().to_string(), e);
        let file = File::create(path).map_err(io)?;
        let (body, line_encoding) = match cfg.config.encoding {
            FileEncoding::Parquet => (
                Body::Parquet {
                    writer: None,
                    file: Some(file),
                    props: properties(cfg, who),
                    rows: Vec::new(),
                },
                Encoding::Json,
            ),
            enc => {
                let out = BufWriter::with_capacity(256 * 1024, Counted { file, bytes: 0 });
                let w: Box<dyn LineWriter> = match cfg.compression {
                    FileCompression::Gzip => Box::new(flate2::write::GzEncoder::new(out, flate2::Compression::fast())),
                    FileCompression::Zstd => Box::new(zstd::Encoder::new(out, 1).map_err(io)?),
                    _ => Box::new(out),
                };
                let encoding = if enc == FileEncoding::Text {
                    Encoding::Text
                } else {
                    Encoding::Json
                };
                (Body::Lines(w), encoding)
            }
        };
        Ok(StagedFile {
            path: path.to_path_buf(),
            body,
            line_encoding,
            events: 0,
            written: Finalizers::default(),
            waiting: Finalizers::default(),
        })
    }

    /// The staged file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds an event, keeping its acknowledgement with the file. Parquet rows wait in
    /// memory until [`StagedFile::rows_full`].
    pub fn push(&mut self, mut event: Event, scratch: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.events += 1;
        match &mut self.body {
            Body::Parquet { rows, .. } => {
                event.take_finalizer(&mut self.waiting);
                rows.push(std::mem::replace(&mut event.value, Value::Null));
            }
            Body::Lines(w) => {
                event.take_finalizer(&mut self.written);
                scratch.clear();
                encode_line(&event, self.line_encoding, scratch);
                w.write_all(scratch)
                    .map_err(|e| EncodeError::Io(self.path.display().to_string(), e))?;
            }
        }
        Ok(())
    }

    /// Hands back every acknowledgement the file holds (when it is abandoned).
    pub fn take_finalizers(&mut self) -> Finalizers {
        let mut all = std::mem::take(&mut self.written);
        all.extend(std::mem::take(&mut self.waiting));
        all
    }

    /// True when enough Parquet rows wait to be converted.
    pub fn rows_full(&self) -> bool {
        matches!(&self.body, Body::Parquet { rows, .. } if rows.len() >= ROWS_PER_BATCH)
    }

    /// The rows waiting to be converted (for schema inference).
    pub fn pending_rows(&self) -> &[Value] {
        match &self.body {
            Body::Parquet { rows, .. } => rows,
            Body::Lines(_) => &[],
        }
    }

    /// True when this Parquet file holds rows of a schema other than `columns'`
    /// and more rows wait, which therefore need a new file.
    pub fn schema_outgrown(&self, columns: &Columns) -> bool {
        match &self.body {
            Body::Parquet {
                writer: Some((_, schema)),
                rows,
                ..
            } => !rows.is_empty() && *schema != columns.schema(),
            _ => false,
        }
    }

    /// Moves the waiting rows and their acknowledgements into `other` (a new file
    /// after a schema change).
    pub fn move_rows_to(&mut self, other: &mut StagedFile) {
        if let (Body::Parquet { rows, .. }, Body::Parquet { rows: to, .. }) = (&mut self.body, &mut other.body) {
            self.events -= rows.len() as u64;
            other.events += rows.len() as u64;
            to.append(rows);
            other.waiting.extend(std::mem::take(&mut self.waiting));
        }
    }

    /// Converts the waiting rows with `columns` and writes them; the first
    /// conversion fixes the file's schema (see [`StagedFile::schema_outgrown`]).
    pub fn convert(&mut self, columns: &Columns, metrics: &ComponentMetrics) -> Result<(), EncodeError> {
        let Body::Parquet {
            writer,
            file,
            props,
            rows,
        } = &mut self.body
        else {
            return Ok(());
        };
        if rows.is_empty() {
            return Ok(());
        }
        let batch = columns.to_batch(rows.iter(), metrics)?;
        let (w, _) = match writer {
            Some(w) => w,
            None => {
                let Some(f) = file.take() else {
                    unreachable!("a file without writer keeps its file")
                };
                let schema = columns.schema();
                let props = encodings_for(&batch, props.clone());
                writer.insert((ArrowWriter::try_new(f, schema.clone(), Some(props))?, schema))
            }
        };
        w.write(&batch)?;
        rows.clear();
        self.written.extend(std::mem::take(&mut self.waiting));
        Ok(())
    }

    /// Bytes the file holds so far (compressed; estimated for Parquet's row group in
    /// progress and waiting rows, and without what a compressor still buffers).
    pub fn bytes(&self) -> u64 {
        match &self.body {
            Body::Parquet { writer, rows, .. } => {
                let written = writer
                    .as_ref()
                    .map_or(0, |(w, _)| w.bytes_written() + w.in_progress_size());
                written as u64 + rows.len() as u64 * 64
            }
            Body::Lines(w) => w.size(),
        }
    }

    /// Finishes the file (footer, compression frame) and syncs it to disk. Returns
    /// its path, size and the acknowledgements of its events.
    pub fn finish(
        mut self,
        columns: &Columns,
        metrics: &ComponentMetrics,
    ) -> Result<(PathBuf, u64, Finalizers), EncodeError> {
        self.convert(columns, metrics)?;
        let io = |e| EncodeError::Io(self.path.display().to_string(), e);
        let file = match self.body {
            Body::Parquet {
                writer: Some((w, _)), ..
            } => w.into_inner()?,
            // No row at all (every event moved on): an empty file, never uploaded.
            Body::Parquet { file: Some(f), .. } => f,
            Body::Parquet { .. } => unreachable!("a file without writer keeps its file"),
            Body::Lines(w) => w.finish().map_err(io)?,
        };
        file.sync_all().map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        Ok((self.path, size, self.written))
    }
}

fn properties(cfg: &Checked, who: &Provenance) -> WriterProperties {
    let compression = match cfg.compression {
        FileCompression::Zstd => Compression::ZSTD(ZstdLevel::default()),
        FileCompression::Snappy => Compression::SNAPPY,
        FileCompression::Lz4 => Compression::LZ4_RAW,
        _ => Compression::UNCOMPRESSED,
    };
    let kv = |k: &str, v: &str| KeyValue::new(k.to_string(), v.to_string());
    WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(cfg.config.row_group_size))
        .set_key_value_metadata(Some(vec![
            kv("pipe.version", env!("CARGO_PKG_VERSION")),
            kv("pipe.topology", &who.topology),
            kv("pipe.sink", &who.sink),
        ]))
        .build()
}

/// The file's encodings, chosen per column from its first rows: a column whose
/// values are mostly distinct gets no dictionary (Parquet would build one only to
/// abandon it at its size limit, and the file grows by it), and such a column of
/// integers or timestamps is delta-encoded (the usual case: times, ids and counters
/// that change by small steps).
fn encodings_for(first: &RecordBatch, props: WriterProperties) -> WriterProperties {
    let mut b = props.into_builder();
    for (field, column) in first.schema().fields().iter().zip(first.columns()) {
        let present = column.len() - column.null_count();
        if present < 2 || distinct_values(column.as_ref()).is_none_or(|d| d * 2 <= present) {
            continue;
        }
        let path = ColumnPath::from(field.name().as_str());
        b = b.set_column_dictionary_enabled(path.clone(), false);
        if column.data_type().is_integer() || matches!(column.data_type(), DataType::Timestamp(..)) {
            b = b.set_column_encoding(path, parquet::basic::Encoding::DELTA_BINARY_PACKED);
        }
    }
    b.build()
}

/// How many distinct values a string, integer or timestamp column holds (nulls not
/// counted); `None` for other types.
fn distinct_values(column: &dyn Array) -> Option<usize> {
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;
    use std::collections::HashSet;
    match column.data_type() {
        DataType::Utf8 => Some(column.as_string::<i32>().iter().flatten().collect::<HashSet<_>>().len()),
        DataType::Int64 | DataType::Timestamp(..) => {
            let ints = arrow::compute::cast(column, &DataType::Int64).ok()?;
            Some(
                ints.as_primitive::<Int64Type>()
                    .iter()
                    .flatten()
                    .collect::<HashSet<_>>()
                    .len(),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::object_store::config::ArchiveConfig;

    fn checked(toml: &str) -> Checked {
        let c: ArchiveConfig = crate::component::parse_options(toml::from_str(toml).unwrap()).unwrap();
        c.check().unwrap()
    }

    fn who() -> Provenance {
        Provenance {
            topology: "t".into(),
            sink: "s".into(),
        }
    }

    /// Mostly distinct columns lose their dictionary (integers and timestamps get
    /// delta encoding instead); repetitive ones keep it; every value reads back.
    #[test]
    fn encodings_follow_each_column_of_the_first_rows() {
        use parquet::basic::Encoding as ParquetEncoding;
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let dir = tempfile::tempdir().unwrap();
        let metrics = ComponentMetrics::unchecked("s", "sink");
        let mut columns = Columns::inferred();
        let cfg = checked("url = 'x'");
        let path = dir.path().join("f");
        let mut f = StagedFile::create(&path, &cfg, &who()).unwrap();
        let mut scratch = Vec::new();
        let ts: chrono::DateTime<chrono::Utc> = "2026-12-04T10:00:00Z".parse().unwrap();
        for i in 0..20_000i64 {
            let mut m = vrl::value::ObjectMap::new();
            m.insert("id".into(), Value::Integer(i * 7));
            m.insert("msg".into(), Value::from(format!("request {i}")));
            m.insert("level".into(), Value::from(["info", "warn"][i as usize % 2]));
            m.insert("at".into(), Value::Timestamp(ts + chrono::Duration::milliseconds(i)));
            f.push(Event::from_map(m), &mut scratch).unwrap();
            if f.rows_full() {
                columns.observe(f.pending_rows(), &metrics);
                f.convert(&columns, &metrics).unwrap();
            }
        }
        columns.observe(f.pending_rows(), &metrics);
        let (path, _, _) = f.finish(&columns, &metrics).unwrap();
        let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        let group = reader.metadata().row_group(0);
        let encodings = |name: &str| {
            let column = group
                .columns()
                .iter()
                .find(|c| c.column_path().string() == name)
                .unwrap();
            column.encodings().collect::<Vec<_>>()
        };
        for name in ["id", "at"] {
            assert!(
                encodings(name).contains(&ParquetEncoding::DELTA_BINARY_PACKED),
                "{name}"
            );
            assert!(!encodings(name).contains(&ParquetEncoding::RLE_DICTIONARY), "{name}");
        }
        assert!(!encodings("msg").contains(&ParquetEncoding::RLE_DICTIONARY));
        assert!(encodings("level").contains(&ParquetEncoding::RLE_DICTIONARY));
        let rows: Vec<_> = reader.get_row_iter(None).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 20_000);
        let last = rows[19_999].to_string();
        assert!(last.contains("id: 139993") && last.contains("request 19999"), "{last}");
    }

    /// `max_bytes` sees the bytes that reach the disk, compressed or not.
    #[test]
    fn line_files_count_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = ComponentMetrics::unchecked("s", "sink");
        let columns = Columns::inferred();
        for (compression, smaller) in [("none", false), ("gzip", true)] {
            let cfg = checked(&format!(
                "url = 'x'\nencoding = 'ndjson'\ncompression = '{compression}'"
            ));
            let path = dir.path().join(compression);
            let mut f = StagedFile::create(&path, &cfg, &who()).unwrap();
            let mut scratch = Vec::new();
            let mut raw = 0u64;
            for i in 0..20_000 {
                let e = Event::new(Value::from(format!("line {i} of a log that repeats itself")));
                let mut line = Vec::new();
                encode_line(&e, Encoding::Json, &mut line);
                raw += line.len() as u64;
                f.push(e, &mut scratch).unwrap();
            }
            let counted = f.bytes();
            let (_, size, _) = f.finish(&columns, &metrics).unwrap();
            if smaller {
                assert!(counted < raw / 4 && size < raw / 4, "{counted} {size} {raw}");
                assert!(counted > 0 && counted <= size);
            } else {
                assert_eq!((counted, size), (raw, raw));
            }
        }
    }
}
