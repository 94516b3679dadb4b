//! The bodies of the fuzz targets in `tests/fuzz/` (one function per target, each
//! taking the fuzzer's raw bytes), kept in the library so that `tests/fuzz_corpus.rs`
//! replays the committed corpus through exactly the code the fuzzers ran. Each one
//! feeds outside bytes to a decoder and asserts what must hold for any input: no
//! panic, outputs within their limits, bytes accounted for. Not an API.

use crate::components::beats::frame::{self, Body, Frame, FrameError, Item};
use crate::components::beats::payload;
use crate::components::file::lines::{LineReader, Oversize};
use crate::components::http::decode::{self, BodyError, Decoding};
use crate::components::http::kafka_rest;
use crate::event::Event;
use crate::template::Template;
use std::io::Write;
use vrl::value::{ObjectMap, Value};

/// Splits off the first byte (a selector for the target's options) from the rest.
fn selector(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((b, rest)) => (*b, rest),
        None => (0, &[]),
    }
}

/// An HTTP source body in each decoding, with or without a Content-Type.
pub fn http_body(data: &[u8]) {
    let (sel, body) = selector(data);
    let decoding = [Decoding::Auto, Decoding::Json, Decoding::Ndjson, Decoding::Text][usize::from(sel & 3)];
    let content_type = [
        None,
        Some("application/json"),
        Some("application/x-ndjson"),
        Some("text/plain; charset=utf-8"),
    ][usize::from((sel >> 2) & 3)];
    let max_events = 1 + usize::from(sel >> 4) * 8;
    let result = decode::events(body, decoding, content_type, max_events);
    if let Ok(events) = &result {
        assert!(
            events.len() <= max_events,
            "{} events past max {max_events}",
            events.len()
        );
    }
    let Ok(text) = std::str::from_utf8(body) else {
        assert!(
            matches!(result, Err(BodyError::Malformed(_))),
            "non-UTF-8 body accepted"
        );
        return;
    };
    if decoding == Decoding::Text {
        // Text never fails on UTF-8 and makes one event per non-empty line, up to
        // the limit.
        let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        if lines.len() > max_events {
            assert!(matches!(result, Err(BodyError::TooManyEvents(m)) if m == max_events));
            return;
        }
        let events = result.expect("a UTF-8 text body is always accepted");
        assert_eq!(events.len(), lines.len());
        for (e, l) in events.iter().zip(lines) {
            assert_eq!(e.get("message"), Some(&Value::from(l)));
        }
    }
}

/// A Kafka REST proxy v2 produce body.
pub fn kafka_rest(data: &[u8]) {
    // The first byte picks the embedded format only when it is not JSON text, so
    // the corpus of plain envelopes keeps testing the JSON format.
    let (embedded, body) = match data.split_first() {
        Some((0xb1, rest)) => (kafka_rest::Embedded::Binary, rest),
        _ => (kafka_rest::Embedded::Json, data),
    };
    if let Ok(events) = kafka_rest::v2_records(body, "fuzz-topic", embedded, 100) {
        assert!(events.len() <= 100);
        for e in &events {
            // The topic comes from the URL, never from the body.
            assert_eq!(e.get("topic"), Some(&Value::from("fuzz-topic")));
        }
    }
}

/// A Kafka REST v3 produce body: one report per record, in order, and an event for
/// each accepted one.
pub fn kafka_rest_v3(data: &[u8]) {
    if let Ok((events, reports)) = kafka_rest::v3_records(data, "fuzz-topic", 100) {
        assert!(reports.len() <= 100 && !reports.is_empty());
        let accepted = reports
            .iter()
            .filter(|r| matches!(r, kafka_rest::Report::Accepted { .. }))
            .count();
        assert_eq!(accepted, events.len());
        for e in &events {
            assert_eq!(e.get("topic"), Some(&Value::from("fuzz-topic")));
        }
        let reply = kafka_rest::v3_reply(&reports, "c", "fuzz-topic", || 0);
        assert_eq!(reply.lines().count(), reports.len());
    }
}

/// A gzip or zstd request body, decoded with a small cap; and a round trip of the
/// input through the encoder, which must come back whole or be refused as too large.
pub fn compressed_body(data: &[u8]) {
    let (sel, body) = selector(data);
    let encoding = if sel & 1 == 0 { "gzip" } else { "zstd" };
    let max = usize::from(sel >> 1) * 64;
    match decode::decompress(bytes::Bytes::copy_from_slice(body), Some(encoding), max) {
        Ok(out) => assert!(out.len() <= max, "{} bytes decoded past max {max}", out.len()),
        Err(BodyError::TooLarge(m)) => assert_eq!(m, max),
        Err(BodyError::Malformed(_)) => {}
        Err(e) => panic!("unexpected error for {encoding}: {e}"),
    }
    let encoded = if encoding == "gzip" {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(body).and_then(|_| gz.finish())
    } else {
        zstd::encode_all(body, 1)
    };
    let encoded = encoded.expect("encoding into memory does not fail");
    match decode::decompress(bytes::Bytes::from(encoded), Some(encoding), max) {
        Ok(out) => assert_eq!(out, body, "{encoding} round trip changed the body"),
        Err(BodyError::TooLarge(_)) => assert!(body.len() > max, "{} bytes refused under max {max}", body.len()),
        Err(e) => panic!("{encoding} round trip failed: {e}"),
    }
}

/// A Beats connection's bytes through the Lumberjack frame decoder, with a small
/// frame limit picked by the first byte: no panic; every frame takes at least one byte
/// and never more than it has; no payload and no inflation past `max_frame_bytes`,
/// and memory grows only as the caller's budget grants; every event becomes an object. Each whole
/// frame, encoded again, reads back the same.
pub fn beats_frames(data: &[u8]) {
    let (sel, mut rest) = selector(data);
    let max = 16 + usize::from(sel) * 64;
    let budget = usize::from(sel & 0x0f) * 512;
    while let Ok(Some((frame, used))) = frame::parse(rest, max) {
        assert!(used > 0 && used <= rest.len(), "took {used} of {} bytes", rest.len());
        match &frame {
            Frame::Json { payload, .. } | Frame::Compressed { payload, .. } => {
                assert!(
                    payload.len() <= max,
                    "payload of {} bytes past max {max}",
                    payload.len()
                )
            }
            _ => {}
        }
        let mut again = Vec::new();
        match &frame {
            Frame::Window { version, size } => frame::encode::window(&mut again, *version, *size),
            Frame::Json { version, seq, payload } => frame::encode::json(&mut again, *version, *seq, payload),
            Frame::Data { version, seq, pairs } => {
                let pairs: Vec<(&[u8], &[u8])> = pairs.iter().collect();
                frame::encode::data(&mut again, *version, *seq, &pairs)
            }
            Frame::Ack { version, seq } => again.extend_from_slice(&frame::encode::ack(*version, *seq)),
            Frame::Compressed { .. } => again.extend_from_slice(&rest[..used]),
        }
        assert_eq!(again, rest[..used], "a frame encoded again differs");
        let mut granted = 0;
        let opened = frame::open(
            frame,
            max,
            &mut |n| {
                let yes = n <= budget.max(1) * 4;
                if yes {
                    granted = granted.max(n);
                }
                yes
            },
            &mut |item| {
                if let Item::Event { body, .. } = item {
                    if let Body::Json(j) = &body {
                        assert!(j.len() <= max);
                    }
                    let value = payload::fields(&body).unwrap_or_else(|kept| kept);
                    assert!(matches!(value, Value::Object(_)), "an event that is no object");
                }
            },
        );
        assert!(granted <= budget.max(1) * 4, "granted {granted} bytes past the budget");
        match opened {
            Ok(()) | Err(FrameError::OverBudget) => {}
            Err(FrameError::InflatesTooLarge(m)) => assert_eq!(m, max),
            Err(FrameError::UnexpectedAck) => {}
            Err(e) => assert!(!e.to_string().is_empty()),
        }
        rest = &rest[used..];
    }
}

/// What the line reader must hand out for `content`: each line (without `\n` and a
/// trailing `\r`) cut to `max` or dropped when longer, an unterminated last line held
/// back when it fits and otherwise cut or dropped at once.
fn expected_lines(content: &[u8], max: usize, oversize: Oversize) -> (Vec<(Vec<u8>, u64)>, u64, Vec<u8>) {
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(i) = memchr::memchr(b'\n', &content[start..]) {
        let mut line = &content[start..start + i];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if line.len() <= max {
            out.push((line.to_vec(), start as u64));
        } else if oversize == Oversize::Truncate {
            out.push((line[..max].to_vec(), start as u64));
        }
        start += i + 1;
    }
    let tail = &content[start..];
    let partial = if tail.len() > max {
        if oversize == Oversize::Truncate {
            out.push((tail[..max].to_vec(), start as u64));
        }
        Vec::new()
    } else {
        tail.to_vec()
    };
    (out, start as u64, partial)
}

/// An open file holding `content` (already unlinked).
fn temp_file(content: &[u8]) -> std::io::Result<std::fs::File> {
    let path = std::env::temp_dir().join(format!("pipe-fuzz-lines-{}", std::process::id()));
    let written = std::fs::File::create(&path).and_then(|mut f| f.write_all(content));
    let file = written.and_then(|_| std::fs::File::open(&path));
    let _ = std::fs::remove_file(&path);
    file
}

/// A file's bytes through the file source's line reader with a small line cap.
pub fn line_reader(data: &[u8]) {
    let (sel, content) = selector(data);
    let max = usize::from(sel & 0x3f);
    let oversize = if sel & 0x40 == 0 {
        Oversize::Truncate
    } else {
        Oversize::Drop
    };
    let max_lines = if sel & 0x80 == 0 { 1 } else { 1000 };
    let file = temp_file(content).expect("cannot write the fuzz input to a temporary file");
    let mut reader = LineReader::new(0);
    let mut got = Vec::new();
    let mut read = 0;
    for _ in 0..=content.len() + 1 {
        let stats = reader
            .read(&file, max_lines, max, oversize, |l| {
                assert!(l.bytes.len() <= max, "line of {} bytes past max {max}", l.bytes.len());
                got.push((l.bytes.to_vec(), l.offset));
            })
            .expect("reading a regular file");
        read += stats.bytes;
        if stats.eof {
            break;
        }
    }
    let (want, safe_pos, partial) = expected_lines(content, max, oversize);
    assert_eq!(got, want, "lines handed out");
    assert_eq!(read, content.len() as u64, "bytes read");
    assert_eq!(reader.read_pos(), content.len() as u64);
    assert_eq!(reader.safe_pos(), safe_pos);
    assert_eq!(reader.partial(), &partial[..]);
    reader.consume_partial();
    assert_eq!(reader.safe_pos(), content.len() as u64);
}

/// A template (the input up to the first NUL) rendered, and rendered as a path, for
/// an event whose fields `a`..`d`, `n.a` and `j` (JSON) come from the rest (split at
/// NULs). A field value may add no `/` and no `.`/`..` segment to a path.
pub fn template(data: &[u8]) {
    let mut parts = data.split(|b| *b == 0);
    let source = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let Ok(t) = Template::parse(&source, "ts") else { return };
    let secs = i64::from(data.len() as u32).wrapping_mul(7919) % (400 * 365 * 86_400);
    let ts = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
    let mut base = ObjectMap::new();
    base.insert("ts".into(), Value::Timestamp(ts));
    let mut fields = base.clone();
    for name in ["a", "b", "c", "d"] {
        if let Some(p) = parts.next() {
            fields.insert(name.into(), Value::from(String::from_utf8_lossy(p).into_owned()));
        }
    }
    if let Some(p) = parts.next() {
        let mut n = ObjectMap::new();
        n.insert("a".into(), Value::from(String::from_utf8_lossy(p).into_owned()));
        fields.insert("n".into(), Value::Object(n));
    }
    if let Some(p) = parts.next()
        && let Ok(v) = serde_json::from_slice::<Value>(p)
    {
        fields.insert("j".into(), v);
    }
    let event = Event::from_map(fields);
    let _ = t.render(&event);
    // The template's own text, every field rendered empty: the `/`s and dot segments
    // a path may have.
    let reference = t
        .render_path(&Event::from_map(base), Some(""))
        .expect("every field has a stand-in");
    let ref_segments: Vec<&str> = reference.split('/').collect();
    for missing in [None, Some(""), Some("__HIVE_DEFAULT_PARTITION__")] {
        let Ok(path) = t.render_path(&event, missing) else {
            assert!(
                missing.is_none(),
                "render_path failed with a stand-in for missing fields"
            );
            continue;
        };
        let segments: Vec<&str> = path.split('/').collect();
        assert_eq!(
            segments.len(),
            ref_segments.len(),
            "a field value changed the directory levels: {path:?} from {source:?}"
        );
        for (s, r) in segments.iter().zip(&ref_segments) {
            if matches!(*s, "." | "..") {
                assert_eq!(s, r, "a field value made a `{s}` segment: {path:?} from {source:?}");
            }
        }
    }
}

/// The shape of a TOML value: tables and arrays with their number of entries, leaves
/// as `s` (string) or `v`; key names and values left out.
fn shape(value: &toml::Value, out: &mut String) {
    match value {
        toml::Value::Table(t) => {
            out.push('{');
            t.values().for_each(|v| shape(v, out));
            out.push('}');
        }
        toml::Value::Array(a) => {
            out.push('[');
            a.iter().for_each(|v| shape(v, out));
            out.push(']');
        }
        toml::Value::String(_) => out.push('s'),
        _ => out.push('v'),
    }
}

fn toml_shape(text: &str) -> Option<String> {
    let table: toml::Table = toml::from_str(text).ok()?;
    let mut out = String::new();
    shape(&toml::Value::Table(table), &mut out);
    Some(out)
}

/// Topology TOML: `${VAR}` interpolation, then the whole loader (parse, build every
/// component, check the graph). A variable's value (quotes, backslashes, line breaks)
/// adds no key, table or array entry: where the text parses both with hostile values
/// and with the same values made plain (every other character an `x`), the two have
/// the same shape. The loader
/// may refuse anything but must not panic, and every error line is a line of the text.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let hostile = |name: &str| match name {
        "QUOTE" => Some("a\"b\\c'd\"\"\"".to_string()),
        "LINES" => Some("x\ny = 1\n[t]\r\n".to_string()),
        "EMPTY" => Some(String::new()),
        _ => None,
    };
    use crate::config::interpolate::interpolate;
    let plain = |name: &str| hostile(name).map(|v| v.replace(|c: char| !c.is_ascii_alphanumeric(), "x"));
    if let (Ok(a), Ok(b)) = (interpolate(text, hostile), interpolate(text, plain))
        && let (Some(sa), Some(sb)) = (toml_shape(&a), toml_shape(&b))
    {
        assert_eq!(sa, sb, "a variable's value changed the TOML's shape:\n{a}\n---\n{b}");
    }
    let overrides = crate::config::Overrides {
        data_dir: Some(std::path::PathBuf::from("/nonexistent/pipe-fuzz")),
        ..Default::default()
    };
    if let Err(errors) = crate::config::load_str(std::path::Path::new("fuzz.toml"), text, &overrides) {
        let lines = text.lines().count().max(1);
        for e in &errors.0 {
            if let Some(line) = e.line
                && !text.contains("${")
            {
                assert!((1..=lines + 1).contains(&line), "error line {line} of {lines}: {e}");
            }
            let _ = e.to_string();
        }
    }
}
