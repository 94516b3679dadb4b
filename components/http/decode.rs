//! Turning an HTTP request body into events: content encodings (gzip, zstd) with a
//! cap on the decoded size, the body formats (a JSON object or array, NDJSON, text
//! lines; the Kafka REST envelopes are in [`super::kafka_rest`]). Every decoder stops at
//! `max_events` events: a small body must not become millions of events in memory.

use bytes::Bytes;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use std::io::Read;
use vrl::value::{KeyString, ObjectMap, Value};

/// How a body is read.
#[derive(Debug, Deserialize, serde::Serialize, schemars::JsonSchema, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Decoding {
    /// From the Content-Type (`json`, `ndjson`/`jsonl`, `text/*`), else by looking at
    /// the body.
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
    /// More events than allowed in one request (413).
    TooManyEvents(usize),
    /// Not what the format says (400), with where and what.
    Malformed(String),
    /// A Content-Type the endpoint does not take (415).
    UnsupportedContentType(String),
    /// Well-formed, but records that cannot be taken (422), with which and why.
    InvalidRecords(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge(max) => write!(f, "body larger than max_body_bytes ({max} bytes)"),
            BodyError::UnsupportedEncoding(e) => {
                write!(f, "unsupported Content-Encoding `{e}` (use gzip, zstd or none)")
            }
            BodyError::TooManyEvents(max) => {
                write!(f, "more than max_events_per_request ({max}) events in one request")
            }
            BodyError::Malformed(m) | BodyError::UnsupportedContentType(m) | BodyError::InvalidRecords(m) => {
                f.write_str(m)
            }
        }
    }
}

/// Undoes `Content-Encoding`, refusing output larger than `max`: decompression
/// stops at `max + 1` bytes of output. Takes the body so that a compressed one is
/// freed as soon as it is decompressed; an uncompressed one is returned as it is.
pub fn decompress(body: Bytes, encoding: Option<&str>, max: usize) -> Result<Bytes, BodyError> {
    let reader: Box<dyn Read + '_> = match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("identity") => return Ok(body),
        Some("gzip") | Some("x-gzip") => Box::new(flate2::read::MultiGzDecoder::new(&body[..])),
        Some("zstd") => Box::new(
            zstd::stream::read::Decoder::new(&body[..]).map_err(|e| BodyError::Malformed(format!("zstd body: {e}")))?,
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
    Ok(Bytes::from(out))
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

/// The events in `body`: each an object of fields; at most `max_events` of them.
pub fn events(
    body: &[u8],
    decoding: Decoding,
    content_type: Option<&str>,
    max_events: usize,
) -> Result<Vec<ObjectMap>, BodyError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        BodyError::Malformed(format!(
            "body is not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    match resolve(decoding, content_type, body) {
        Decoding::Json => {
            let malformed = |e: serde_json::Error| {
                BodyError::Malformed(format!("invalid JSON at line {} column {}: {e}", e.line(), e.column()))
            };
            if text.trim_start().starts_with('[') {
                // An array is read element by element, so that past `max_events`
                // nothing more is built.
                let mut out = Vec::new();
                let mut too_many = false;
                let seed = Capped {
                    out: &mut out,
                    max: max_events,
                    too_many: &mut too_many,
                    each: object_fields,
                    item: std::marker::PhantomData::<Value>,
                };
                let mut de = serde_json::Deserializer::from_str(text);
                let read = seed.deserialize(&mut de).and_then(|()| de.end());
                if too_many {
                    return Err(BodyError::TooManyEvents(max_events));
                }
                read.map_err(malformed)?;
                return Ok(out);
            }
            let value: Value = serde_json::from_str(text).map_err(malformed)?;
            if max_events == 0 {
                return Err(BodyError::TooManyEvents(max_events));
            }
            Ok(vec![object_fields(value)])
        }
        Decoding::Ndjson => {
            let mut out = Vec::new();
            for (n, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                if out.len() == max_events {
                    return Err(BodyError::TooManyEvents(max_events));
                }
                // Straight into the event's values, with no serde_json::Value between.
                let value: Value = serde_json::from_str(line).map_err(|e| {
                    BodyError::Malformed(format!("invalid JSON on line {} column {}: {e}", n + 1, e.column()))
                })?;
                out.push(object_fields(value));
            }
            Ok(out)
        }
        Decoding::Text | Decoding::Auto => {
            let mut out = Vec::new();
            for l in text.lines().filter(|l| !l.is_empty()) {
                if out.len() == max_events {
                    return Err(BodyError::TooManyEvents(max_events));
                }
                let mut m = ObjectMap::new();
                m.insert(KeyString::from("message"), Value::from(l.to_string()));
                out.push(m);
            }
            Ok(out)
        }
    }
}

/// Reads a JSON array into `out`, one element at a time, each turned into an event
/// by `each`; fails (with `too_many` set) at element `max + 1`.
pub(super) struct Capped<'a, T, F> {
    pub out: &'a mut Vec<ObjectMap>,
    pub max: usize,
    pub too_many: &'a mut bool,
    pub each: F,
    pub item: std::marker::PhantomData<T>,
}

impl<'de, T: Deserialize<'de>, F: FnMut(T) -> ObjectMap> DeserializeSeed<'de> for Capped<'_, T, F> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>, F: FnMut(T) -> ObjectMap> Visitor<'de> for Capped<'_, T, F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<T>()? {
            if self.out.len() == self.max {
                *self.too_many = true;
                return Err(de::Error::custom("too many events"));
            }
            self.out.push((self.each)(item));
        }
        Ok(())
    }
}

/// An object's fields, or `message` holding any other value.
pub(super) fn fields(value: serde_json::Value) -> ObjectMap {
    object_fields(json_to_value(value))
}

/// [`fields`] of a value already decoded.
fn object_fields(value: Value) -> ObjectMap {
    match value {
        Value::Object(m) => m,
        other => ObjectMap::from([(KeyString::from("message"), other)]),
    }
}

pub(super) fn json_to_value(value: serde_json::Value) -> Value {
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
        let e = events(br#"{"a":1}"#, Decoding::Auto, Some("application/json"), 10).unwrap();
        assert_eq!(e[0]["a"], Value::from(1));
        let e = events(br#"[{"a":1},{"a":2},"x"]"#, Decoding::Auto, None, 10).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[2]["message"], Value::from("x"));
        let e = events(b"{\"a\":1}\n\n{\"a\":2}\n", Decoding::Auto, None, 10).unwrap();
        assert_eq!(msgs(&e, "a"), vec!["1", "2"]);
        let e = events(b"one\ntwo\n", Decoding::Auto, Some("text/plain"), 10).unwrap();
        assert_eq!(msgs(&e, "message"), vec!["one", "two"]);
    }

    #[test]
    fn malformed_bodies_say_where() {
        let err = events(b"{\"a\":1}\n{\"a\":\n", Decoding::Ndjson, None, 10).unwrap_err();
        assert!(matches!(&err, BodyError::Malformed(m) if m.contains("line 2")), "{err}");
        let err = events(b"\xff\xfe", Decoding::Text, None, 10).unwrap_err();
        assert!(err.to_string().contains("offset 0"));
    }

    #[test]
    fn encodings_and_limits() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&vec![b'a'; 5000]).unwrap();
        let body = gz.finish().unwrap();
        let body = Bytes::from(body);
        assert_eq!(decompress(body.clone(), Some("gzip"), 5000).unwrap().len(), 5000);
        assert_eq!(decompress(body, Some("gzip"), 4999), Err(BodyError::TooLarge(4999)));
        let z = Bytes::from(zstd::encode_all(&b"hello"[..], 3).unwrap());
        assert_eq!(decompress(z, Some("zstd"), 100).unwrap(), &b"hello"[..]);
        assert!(matches!(
            decompress(Bytes::from_static(b"x"), Some("br"), 10),
            Err(BodyError::UnsupportedEncoding(_))
        ));
    }

    #[test]
    fn max_events_is_an_exact_boundary_in_every_format() {
        let n = 3;
        let cases: [(&[u8], &[u8], Decoding); 3] = [
            (b"[{},{},{}]", b"[{},{},{},{}]", Decoding::Json),
            (b"{}\n{}\n{}\n", b"{}\n{}\n{}\n{}\n", Decoding::Ndjson),
            (b"a\nb\nc\n", b"a\nb\nc\nd\n", Decoding::Text),
        ];
        for (ok, over, decoding) in cases {
            assert_eq!(events(ok, decoding, None, n).unwrap().len(), 3, "{decoding:?}");
            assert_eq!(
                events(over, decoding, None, n),
                Err(BodyError::TooManyEvents(n)),
                "{decoding:?}"
            );
        }
        assert_eq!(events(br#"{"a":1}"#, Decoding::Json, None, 1).unwrap().len(), 1);
        // A malformed element right at the limit is malformed, not too many.
        assert!(matches!(
            events(b"[{},{},{},nope]", Decoding::Json, None, n),
            Err(BodyError::Malformed(_))
        ));
    }
}
