//! Events as bytes for the disk buffer: a batch's fields and metadata in a tagged
//! binary form that keeps every VRL type (timestamps stay timestamps), compressed
//! with LZ4. Decoding treats its input as hostile: every length is checked against
//! what is left, nesting is bounded, and nothing is allocated beyond the input's size.
//! The LZ4 block decoder (built without `checked-decode`, as parquet has it) must only
//! see payloads whose CRC32C matched: [`super::log`] checks it first.

use crate::event::Event;
use bytes::Bytes;
use vrl::value::{KeyString, Value};

/// Deepest nesting decoded (objects and arrays).
const MAX_DEPTH: usize = 128;

/// Why a payload does not decode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("the record is not LZ4 data of its declared size")]
    Decompress,
    #[error("the record ends inside a value")]
    Truncated,
    #[error("unknown value tag {0}")]
    Tag(u8),
    #[error("values nest deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("a timestamp is out of range")]
    Timestamp,
    #[error("bytes after the last event")]
    Trailing,
}

/// The compressed bytes of `events` (fields and metadata; not their acknowledgement).
pub fn encode(events: &[Event]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(64 * events.len());
    raw.extend_from_slice(&(events.len() as u32).to_le_bytes());
    for e in events {
        put(&mut raw, &e.value);
        put(&mut raw, &e.metadata);
    }
    lz4_flex::block::compress_prepend_size(&raw)
}

/// The events of a payload made by [`encode`], at most `max_raw` bytes uncompressed.
pub fn decode(payload: &[u8], max_raw: usize) -> Result<Vec<Event>, DecodeError> {
    let declared = payload
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or(DecodeError::Truncated)?;
    if declared > max_raw {
        return Err(DecodeError::Decompress);
    }
    let raw = Bytes::from(lz4_flex::block::decompress_size_prepended(payload).map_err(|_| DecodeError::Decompress)?);
    // String values are slices of the decompressed record: no copy per field.
    let mut r = Reader {
        buf: &raw,
        shared: &raw,
        pos: 0,
    };
    let count = r.u32()? as usize;
    // Every event takes at least two bytes: the count cannot claim more than that.
    if count > raw.len() / 2 {
        return Err(DecodeError::Truncated);
    }
    let mut events = Vec::with_capacity(count);
    for _ in 0..count {
        let value = r.value(0)?;
        let mut e = Event::new(value);
        e.metadata = r.value(0)?;
        events.push(e);
    }
    if r.pos != raw.len() {
        return Err(DecodeError::Trailing);
    }
    Ok(events)
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(0),
        Value::Bytes(b) => {
            out.push(1);
            put_len(out, b.len());
            out.extend_from_slice(b);
        }
        Value::String(text) => {
            out.push(8);
            put_len(out, text.len());
            out.extend_from_slice(text.as_bytes());
        }
        Value::Regex(r) => {
            // Kept as its text: a buffered event's regex is read back as a string.
            out.push(1);
            let s = r.as_str().as_bytes();
            put_len(out, s.len());
            out.extend_from_slice(s);
        }
        Value::Integer(i) => {
            out.push(2);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Float(f) => {
            out.push(3);
            out.extend_from_slice(&f.into_inner().to_le_bytes());
        }
        Value::Boolean(b) => out.extend_from_slice(&[4, u8::from(*b)]),
        Value::Timestamp(t) => {
            out.push(5);
            out.extend_from_slice(&t.timestamp().to_le_bytes());
            out.extend_from_slice(&t.timestamp_subsec_nanos().to_le_bytes());
        }
        Value::Object(m) => {
            out.push(6);
            put_len(out, m.len());
            for (k, v) in m {
                put_len(out, k.len());
                out.extend_from_slice(k.as_bytes());
                put(out, v);
            }
        }
        Value::Array(a) => {
            out.push(7);
            put_len(out, a.len());
            for v in a {
                put(out, v);
            }
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    /// The same bytes, to slice values from.
    shared: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        Ok(i64::from_le_bytes(b.try_into().map_err(|_| DecodeError::Truncated)?))
    }

    /// A count of items that take at least one byte each: never more than is left.
    fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n > self.buf.len() - self.pos {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        let tag = self.take(1)?[0];
        Ok(match tag {
            0 => Value::Null,
            1 => {
                let n = self.u32()? as usize;
                let start = self.pos;
                self.take(n)?;
                Value::Bytes(self.shared.slice(start..start + n))
            }
            2 => Value::Integer(self.i64()?),
            3 => {
                let f = f64::from_bits(self.i64()? as u64);
                Value::from_f64_or_zero(f)
            }
            4 => Value::Boolean(self.take(1)?[0] != 0),
            5 => {
                let secs = self.i64()?;
                let nanos = self.u32()?;
                Value::Timestamp(chrono::DateTime::from_timestamp(secs, nanos).ok_or(DecodeError::Timestamp)?)
            }
            6 => {
                let n = self.count()?;
                // Keys were written in order: the map is built in bulk, not by inserts.
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let len = self.u32()? as usize;
                    let key = String::from_utf8_lossy(self.take(len)?).into_owned();
                    entries.push((KeyString::from(key), self.value(depth + 1)?));
                }
                Value::Object(entries.into_iter().collect())
            }
            7 => {
                let n = self.count()?;
                let mut a = Vec::with_capacity(n);
                for _ in 0..n {
                    a.push(self.value(depth + 1)?);
                }
                Value::Array(a)
            }
            8 => {
                let n = self.u32()? as usize;
                let text = std::str::from_utf8(self.take(n)?).map_err(|_| DecodeError::Tag(8))?;
                Value::String(text.to_string().into())
            }
            other => return Err(DecodeError::Tag(other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vrl::value::ObjectMap;

    fn sample() -> Vec<Event> {
        let mut e = Event::new(Value::Object(ObjectMap::new()));
        e.insert("message", "hello");
        e.insert("n", 42);
        e.insert("x", Value::from_f64_or_zero(1.5));
        e.insert("ok", true);
        e.insert("none", Value::Null);
        e.insert(
            "at",
            Value::Timestamp(chrono::DateTime::from_timestamp(1_700_000_000, 123).unwrap()),
        );
        e.insert("list", Value::Array(vec![Value::from(1), Value::from("two")]));
        e.metadata = Value::Object(ObjectMap::from([(KeyString::from("m"), Value::from("meta"))]));
        vec![e, Event::new(Value::from("bare"))]
    }

    #[test]
    fn round_trips_every_type() {
        let events = sample();
        let back = decode(&encode(&events), 1 << 20).unwrap();
        assert_eq!(back.len(), 2);
        for (a, b) in events.iter().zip(&back) {
            assert_eq!(a.value, b.value);
            assert_eq!(a.metadata, b.metadata);
        }
    }

    #[test]
    fn hostile_bytes_are_errors_not_panics() {
        let good = encode(&sample());
        assert_eq!(decode(&good, 8).unwrap_err(), DecodeError::Decompress);
        // A raw payload claiming 2^32-1 entries in a few bytes.
        let raw = [0xff, 0xff, 0xff, 0xff, 6, 0xff, 0xff, 0xff, 0xff];
        let bomb = lz4_flex::block::compress_prepend_size(&raw);
        assert!(decode(&bomb, 1 << 20).is_err());
        // Nesting beyond the bound.
        let mut deep = vec![1, 0, 0, 0];
        for _ in 0..1000 {
            deep.extend_from_slice(&[7, 1, 0, 0, 0]);
        }
        deep.push(0);
        deep.push(0);
        assert_eq!(
            decode(&lz4_flex::block::compress_prepend_size(&deep), 1 << 20).unwrap_err(),
            DecodeError::TooDeep
        );
    }
}
