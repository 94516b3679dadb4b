//! Turning an HTTP request body into events: content encodings (gzip, zstd) with a
//! cap on the decoded size, the body formats (a JSON object or array, NDJSON, text
//! lines), and the Kafka REST proxy v2 JSON envelope.

use serde::Deserialize;
use std::io::Read;
use vrl::value::{KeyString, ObjectMap, Value};

/// How a body is read.
#[derive(Debug, Deserialize, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Decoding {
    /// From the Content-Type, else by looking at the body.
    #[default]
    Auto,
    /// One JSON object, or an array of them.
    Json,
    /// One JSON value per line.
    Ndjson,
    /// One event per line, in `message`.
    Text,
}

/// Why a body was refused, mapped to an HTTP status by the server.
#[derive(Debug, PartialEq)]
pub enum BodyError {
    /// Larger than allowed, before or after decompression (413).
    TooLarge(usize),
    /// A Content-Encoding pipe does not read (415).
    UnsupportedEncoding(String),
    /// Not what the format says (400), with where and what.
    Malformed(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge(max) => write!(f, "body larger than max_body_bytes ({max} bytes)"),
            BodyError::UnsupportedEncoding(e) => {
                write!(f, "unsupported Content-Encoding `{e}` (use gzip, zstd or none)")
            }
            BodyError::Malformed(m) => f.write_str(m),
        }
    }
}

/// Undoes `Content-Encoding`, refusing output larger than `max`.
pub fn decompress(body: &[u8], encoding: Option<&str>, max: usize) -> Result<Vec<u8>, BodyError> {
    let reader: Box<dyn Read + '_> = match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("identity") => return Ok(body.to_vec()),
        Some("gzip") | Some("x-gzip") => Box::new(flate2::read::MultiGzDecoder::new(body)),
        Some("zstd") => Box::new(
            zstd::stream::read::Decoder::new(body).map_err(|e| BodyError::Malformed(format!("zstd body: {e}")))?,
        ),
        Some(other) => return Err(BodyError::UnsupportedEncoding(other.to_string())),
    };
    let mut out = Vec::new();
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| BodyError::Malformed(format!("cannot decompress the body: {e}")))?;
    if out.len() > max {
        return Err(BodyError::TooLarge(max));
    }
    Ok(out)
}

/// Picks the decoding for `auto` from the Content-Type and the body.
fn resolve(decoding: Decoding, content_type: Option<&str>, body: &[u8]) -> Decoding {
    if decoding != Decoding::Auto {
        return decoding;
    }
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    if ct.contains("ndjson") || ct.contains("jsonl") || ct.contains("json-seq") {
        return Decoding::Ndjson;
    }
    if ct.contains("json") {
        return Decoding::Json;
    }
    if ct.starts_with("text/") {
        return Decoding::Text;
    }
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | Some(b'[') => {
            if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
                Decoding::Json
            } else {
                Decoding::Ndjson
            }
        }
        _ => Decoding::Text,
    }
}

/// The events in `body`: each an object of fields.
pub fn events(body: &[u8], decoding: Decoding, content_type: Option<&str>) -> Result<Vec<ObjectMap>, BodyError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        BodyError::Malformed(format!(
            "body is not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    match resolve(decoding, content_type, body) {
        Decoding::Json => {
            let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
                BodyError::Malformed(format!("invalid JSON at line {} column {}: {e}", e.line(), e.column()))
            })?;
            Ok(match value {
                serde_json::Value::Array(items) => items.into_iter().map(fields).collect(),
                other => vec![fields(other)],
            })
        }
        Decoding::Ndjson => {
            let mut out = Vec::new();
            for (n, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
                    BodyError::Malformed(format!("invalid JSON on line {} column {}: {e}", n + 1, e.column()))
                })?;
                out.push(fields(value));
            }
            Ok(out)
        }
        Decoding::Text | Decoding::Auto => Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let mut m = ObjectMap::new();
                m.insert(KeyString::from("message"), Value::from(l.to_string()));
                m
            })
            .collect()),
    }
}

/// A Kafka REST proxy v2 produce request: `{"records": [{"key": .., "value": ..}]}`.
#[derive(Deserialize)]
struct RestEnvelope {
    records: Vec<RestRecord>,
}

#[derive(Deserialize)]
struct RestRecord {
    #[serde(default)]
    key: serde_json::Value,
    value: serde_json::Value,
    #[serde(default)]
    partition: Option<i64>,
}

/// The events of a Kafka REST produce request: the record value's fields (or
/// `message` when the value is not an object), with `topic`, and `key` and
/// `partition` when given.
pub fn rest_records(body: &[u8], topic: &str) -> Result<Vec<ObjectMap>, BodyError> {
    let envelope: RestEnvelope = serde_json::from_slice(body).map_err(|e| {
        BodyError::Malformed(format!(
            "not a Kafka REST v2 records envelope ({{\"records\":[{{\"key\":..,\"value\":..}}]}}): line {} column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    Ok(envelope
        .records
        .into_iter()
        .map(|r| {
            let mut m = fields(r.value);
            m.insert(KeyString::from("topic"), Value::from(topic.to_string()));
            if !r.key.is_null() {
                m.insert(KeyString::from("key"), json_to_value(r.key));
            }
            if let Some(p) = r.partition {
                m.insert(KeyString::from("partition"), Value::Integer(p));
            }
            m
        })
        .collect())
}

/// An object's fields, or `message` holding any other value.
fn fields(value: serde_json::Value) -> ObjectMap {
    match json_to_value(value) {
        Value::Object(m) => m,
        other => {
            let mut m = ObjectMap::new();
            m.insert(KeyString::from("message"), other);
            m
        }
    }
}

fn json_to_value(value: serde_json::Value) -> Value {
    serde_json::from_value(value).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn msgs(events: &[ObjectMap], key: &str) -> Vec<String> {
        events.iter().map(|e| crate::event::value_to_string(&e[key])).collect()
    }

    #[test]
    fn formats() {
        let e = events(br#"{"a":1}"#, Decoding::Auto, Some("application/json")).unwrap();
        assert_eq!(e[0]["a"], Value::from(1));
        let e = events(br#"[{"a":1},{"a":2},"x"]"#, Decoding::Auto, None).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[2]["message"], Value::from("x"));
        let e = events(b"{\"a\":1}\n\n{\"a\":2}\n", Decoding::Auto, None).unwrap();
        assert_eq!(msgs(&e, "a"), vec!["1", "2"]);
        let e = events(b"one\ntwo\n", Decoding::Auto, Some("text/plain")).unwrap();
        assert_eq!(msgs(&e, "message"), vec!["one", "two"]);
    }

    #[test]
    fn malformed_bodies_say_where() {
        let err = events(b"{\"a\":1}\n{\"a\":\n", Decoding::Ndjson, None).unwrap_err();
        assert!(matches!(&err, BodyError::Malformed(m) if m.contains("line 2")), "{err}");
        let err = events(b"\xff\xfe", Decoding::Text, None).unwrap_err();
        assert!(err.to_string().contains("offset 0"));
    }

    #[test]
    fn encodings_and_limits() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&vec![b'a'; 5000]).unwrap();
        let body = gz.finish().unwrap();
        assert_eq!(decompress(&body, Some("gzip"), 5000).unwrap().len(), 5000);
        assert_eq!(decompress(&body, Some("gzip"), 4999), Err(BodyError::TooLarge(4999)));
        let z = zstd::encode_all(&b"hello"[..], 3).unwrap();
        assert_eq!(decompress(&z, Some("zstd"), 100).unwrap(), b"hello");
        assert!(matches!(
            decompress(b"x", Some("br"), 10),
            Err(BodyError::UnsupportedEncoding(_))
        ));
    }

    #[test]
    fn kafka_rest_envelope() {
        let e = rest_records(
            br#"{"records":[{"key":"k1","value":{"a":1}},{"value":"plain"}]}"#,
            "web",
        )
        .unwrap();
        assert_eq!(e[0]["topic"], Value::from("web"));
        assert_eq!(e[0]["key"], Value::from("k1"));
        assert_eq!(e[0]["a"], Value::from(1));
        assert_eq!(e[1]["message"], Value::from("plain"));
        assert!(rest_records(br#"{"recs":[]}"#, "t").is_err());
    }
}
