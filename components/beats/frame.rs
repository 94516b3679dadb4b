//! The Lumberjack wire format, without I/O: [`parse`] reads one frame from the front
//! of a buffer (or says more bytes are needed), [`open`] hands over what a frame
//! stands for with compressed frames inflated, and [`encode`] writes frames (the
//! server's ACKs; the rest for tests and the fuzz target).
//!
//! Every frame is a version byte (`'2'` for Lumberjack v2, the protocol of Beats and
//! Logstash's `lumberjack` output; `'1'` for logstash-forwarder), a type byte, and a
//! body of big-endian `u32`s and bytes:
//!
//! | type | body | direction |
//! |---|---|---|
//! | `W` window size | `count` | the data frames the client sends before it waits for an ACK |
//! | `J` JSON data | `seq`, `len`, `len` bytes of JSON | one event |
//! | `D` data (v1) | `seq`, `pairs`, then per pair `klen`, key, `vlen`, value | one event of string fields |
//! | `C` compressed | `len`, `len` bytes of zlib holding further frames | |
//! | `A` ack | `seq` | server to client: every event up to `seq` is safe |
//!
//! Nothing here trusts a length: a frame declaring more than `max_frame_bytes` is
//! refused before its bytes arrive, inflation stops at `max_frame_bytes` of output
//! and asks the caller's budget before its output grows, and compressed frames nest
//! at most [`MAX_DEPTH`] deep.

use flate2::{Decompress, FlushDecompress, Status};

/// Compressed frames inside compressed frames are opened this many levels deep (real
/// clients never nest; the limit bounds what a hostile one can make pipe inflate).
pub const MAX_DEPTH: usize = 2;

/// Inflation grows its output by at most this much at a time.
const INFLATE_STEP: usize = 256 * 1024;

/// The protocol version a frame was sent with; ACKs go back with the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `'1'`: logstash-forwarder (data frames of key/value pairs).
    V1,
    /// `'2'`: Beats, Logstash's lumberjack output (JSON data frames).
    V2,
}

impl Version {
    fn from_byte(b: u8) -> Result<Self, FrameError> {
        match b {
            b'1' => Ok(Version::V1),
            b'2' => Ok(Version::V2),
            other => Err(FrameError::Version(other)),
        }
    }

    /// The version byte.
    pub fn byte(self) -> u8 {
        match self {
            Version::V1 => b'1',
            Version::V2 => b'2',
        }
    }
}

/// One frame, borrowing its bytes from the buffer it was parsed from.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame<'a> {
    /// `W`: the client sends this many data frames, then waits for an ACK.
    Window { version: Version, size: u32 },
    /// `J`: one event as JSON.
    Json {
        version: Version,
        seq: u32,
        payload: &'a [u8],
    },
    /// `D`: one event as key/value pairs.
    Data {
        version: Version,
        seq: u32,
        pairs: Pairs<'a>,
    },
    /// `C`: zlib-compressed frames.
    Compressed { version: Version, payload: &'a [u8] },
    /// `A`: an acknowledgement (only servers send these).
    Ack { version: Version, seq: u32 },
}

/// The key/value pairs of a `D` frame, already checked to be whole.
#[derive(Debug, Clone, PartialEq)]
pub struct Pairs<'a> {
    count: u32,
    bytes: &'a [u8],
}

impl<'a> Pairs<'a> {
    /// The pairs in the order sent.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + '_ {
        let mut rest = self.bytes;
        (0..self.count).map_while(move |_| {
            let (key, after) = take_string(rest)?;
            let (value, after) = take_string(after)?;
            rest = after;
            Some((key, value))
        })
    }

    /// How many pairs there are.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// What a frame stands for once compressed frames are opened.
#[derive(Debug, Clone, PartialEq)]
pub enum Item<'a> {
    /// A window begins: `size` data frames follow before the client waits.
    Window { version: Version, size: u32 },
    /// One event.
    Event { version: Version, seq: u32, body: Body<'a> },
}

/// The content of one event frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Body<'a> {
    /// A `J` frame's JSON.
    Json(&'a [u8]),
    /// A `D` frame's pairs.
    Pairs(Pairs<'a>),
}

impl Body<'_> {
    /// The bytes this event took on the wire (uncompressed), for batch sizes and the
    /// in-flight budget.
    pub fn len(&self) -> usize {
        match self {
            Body::Json(b) => b.len(),
            Body::Pairs(p) => p.bytes.len(),
        }
    }

    /// True for an empty payload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why bytes are not Lumberjack frames, or cannot be taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrameError {
    /// The version byte is neither `'1'` nor `'2'`.
    #[error("unknown protocol version byte 0x{0:02x} (a Lumberjack frame starts with '1' or '2')")]
    Version(u8),
    /// A type byte this protocol does not have.
    #[error("unknown frame type 0x{0:02x} (expected W, J, D, C)")]
    Type(u8),
    /// The client sent an ACK frame.
    #[error("the client sent an ACK frame; only servers send those")]
    UnexpectedAck,
    /// A frame declares a body larger than allowed.
    #[error("a {kind} frame of {len} bytes is larger than max_frame_bytes ({max})")]
    TooLarge { kind: &'static str, len: u64, max: usize },
    /// A compressed frame inflates to more than allowed.
    #[error("a compressed frame inflates to more than max_frame_bytes ({0})")]
    InflatesTooLarge(usize),
    /// A compressed frame is not a whole zlib stream.
    #[error("a compressed frame is not valid zlib: {0}")]
    Zlib(String),
    /// The frames inside a compressed frame end in the middle of one.
    #[error("a compressed frame ends in the middle of a frame")]
    Truncated,
    /// Compressed frames nested past [`MAX_DEPTH`].
    #[error("compressed frames nested more than {MAX_DEPTH} deep")]
    TooDeep,
    /// The caller's budget refused the memory inflation needs.
    #[error("inflating would hold more than max_in_flight_bytes")]
    OverBudget,
}

impl FrameError {
    /// True when the frame was too large (before or after inflation), as opposed to
    /// malformed or over budget.
    pub fn is_too_large(&self) -> bool {
        matches!(self, FrameError::TooLarge { .. } | FrameError::InflatesTooLarge(_))
    }
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// A `u32` length and that many bytes from the front of `buf`.
fn take_string(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32_at(buf, 0)? as usize;
    let end = 4usize.checked_add(len)?;
    Some((buf.get(4..end)?, &buf[end..]))
}

/// Reads the frame at the front of `buf`: `Ok(None)` when `buf` holds only part of
/// one (read more, then call again), else the frame and how many bytes it took. A
/// body over `max_frame_bytes` is refused as soon as its declared length is read.
pub fn parse(buf: &[u8], max_frame_bytes: usize) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let Some(&v) = buf.first() else { return Ok(None) };
    let version = Version::from_byte(v)?;
    let Some(&kind) = buf.get(1) else { return Ok(None) };
    let too_large = |kind, len: u64| FrameError::TooLarge {
        kind,
        len,
        max: max_frame_bytes,
    };
    match kind {
        b'W' | b'A' => {
            let Some(n) = u32_at(buf, 2) else { return Ok(None) };
            let frame = if kind == b'W' {
                Frame::Window { version, size: n }
            } else {
                Frame::Ack { version, seq: n }
            };
            Ok(Some((frame, 6)))
        }
        b'J' => {
            let (Some(seq), Some(len)) = (u32_at(buf, 2), u32_at(buf, 6)) else {
                return Ok(None);
            };
            if len as u64 > max_frame_bytes as u64 {
                return Err(too_large("JSON data", len as u64));
            }
            let end = 10 + len as usize;
            let Some(payload) = buf.get(10..end) else {
                return Ok(None);
            };
            Ok(Some((Frame::Json { version, seq, payload }, end)))
        }
        b'C' => {
            let Some(len) = u32_at(buf, 2) else { return Ok(None) };
            if len as u64 > max_frame_bytes as u64 {
                return Err(too_large("compressed", len as u64));
            }
            let end = 6 + len as usize;
            let Some(payload) = buf.get(6..end) else {
                return Ok(None);
            };
            Ok(Some((Frame::Compressed { version, payload }, end)))
        }
        b'D' => {
            let (Some(seq), Some(count)) = (u32_at(buf, 2), u32_at(buf, 6)) else {
                return Ok(None);
            };
            // Each pair takes at least its two lengths.
            if count as u64 * 8 > max_frame_bytes as u64 {
                return Err(too_large("data", count as u64 * 8));
            }
            let mut at = 10usize;
            for _ in 0..count {
                for _ in 0..2 {
                    let Some(len) = u32_at(buf, at) else {
                        return Ok(None);
                    };
                    let next = at as u64 + 4 + len as u64;
                    if next - 10 > max_frame_bytes as u64 {
                        return Err(too_large("data", next - 10));
                    }
                    at = next as usize;
                }
            }
            if buf.len() < at {
                return Ok(None);
            }
            let pairs = Pairs {
                count,
                bytes: &buf[10..at],
            };
            Ok(Some((Frame::Data { version, seq, pairs }, at)))
        }
        other => Err(FrameError::Type(other)),
    }
}

/// Inflates a zlib stream to at most `max` bytes. Before the output grows to `n`
/// bytes, `admit(n)` must say yes (the caller's memory budget). Bytes after the end
/// of the stream are ignored, as Beats' own server does.
pub fn inflate(data: &[u8], max: usize, admit: &mut dyn FnMut(usize) -> bool) -> Result<Vec<u8>, FrameError> {
    let mut z = Decompress::new(true);
    let mut out: Vec<u8> = Vec::new();
    loop {
        if out.len() > max {
            return Err(FrameError::InflatesTooLarge(max));
        }
        if out.len() == out.capacity() {
            let step = INFLATE_STEP.min(max + 1 - out.len()).max(1);
            if !admit(out.len() + step) {
                return Err(FrameError::OverBudget);
            }
            out.reserve_exact(step);
        }
        let (in_before, out_before) = (z.total_in(), out.len());
        let input = data.get(z.total_in() as usize..).unwrap_or_default();
        let status = z
            .decompress_vec(input, &mut out, FlushDecompress::None)
            .map_err(|e| FrameError::Zlib(e.to_string()))?;
        if status == Status::StreamEnd {
            break;
        }
        if z.total_in() == in_before && out.len() == out_before && out.len() < out.capacity() {
            // No progress with room to spare: the input ended before the stream did.
            return Err(FrameError::Zlib("the stream is truncated".into()));
        }
    }
    if out.len() > max {
        return Err(FrameError::InflatesTooLarge(max));
    }
    Ok(out)
}

/// Hands over what `frame` stands for: a window or event frame as it is, the frames
/// inside a compressed one (inflated to at most `max_frame_bytes` each, opened
/// recursively up to [`MAX_DEPTH`]) in order. `admit(n)` is asked before the
/// inflated bytes held at once grow to `n`. An ACK from the client is an error.
pub fn open(
    frame: Frame<'_>,
    max_frame_bytes: usize,
    admit: &mut dyn FnMut(usize) -> bool,
    each: &mut dyn FnMut(Item<'_>),
) -> Result<(), FrameError> {
    open_at(frame, max_frame_bytes, 0, 0, admit, each)
}

fn open_at(
    frame: Frame<'_>,
    max: usize,
    depth: usize,
    held: usize,
    admit: &mut dyn FnMut(usize) -> bool,
    each: &mut dyn FnMut(Item<'_>),
) -> Result<(), FrameError> {
    match frame {
        Frame::Window { version, size } => each(Item::Window { version, size }),
        Frame::Json { version, seq, payload } => each(Item::Event {
            version,
            seq,
            body: Body::Json(payload),
        }),
        Frame::Data { version, seq, pairs } => each(Item::Event {
            version,
            seq,
            body: Body::Pairs(pairs),
        }),
        Frame::Ack { .. } => return Err(FrameError::UnexpectedAck),
        Frame::Compressed { payload, .. } => {
            if depth >= MAX_DEPTH {
                return Err(FrameError::TooDeep);
            }
            let inflated = inflate(payload, max, &mut |n| admit(held + n))?;
            let held = held + inflated.capacity();
            let mut rest = &inflated[..];
            while !rest.is_empty() {
                let Some((inner, used)) = parse(rest, max)? else {
                    return Err(FrameError::Truncated);
                };
                open_at(inner, max, depth + 1, held, admit, each)?;
                rest = &rest[used..];
            }
        }
    }
    Ok(())
}

/// Writing frames: the server's ACKs, and every other frame for tests and the fuzz
/// target.
pub mod encode {
    use super::Version;
    use std::io::Write;

    /// An ACK of every event up to `seq`.
    pub fn ack(version: Version, seq: u32) -> [u8; 6] {
        let s = seq.to_be_bytes();
        [version.byte(), b'A', s[0], s[1], s[2], s[3]]
    }

    /// A window of `size` data frames.
    pub fn window(out: &mut Vec<u8>, version: Version, size: u32) {
        out.extend_from_slice(&[version.byte(), b'W']);
        out.extend_from_slice(&size.to_be_bytes());
    }

    /// A JSON data frame.
    pub fn json(out: &mut Vec<u8>, version: Version, seq: u32, payload: &[u8]) {
        out.extend_from_slice(&[version.byte(), b'J']);
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
    }

    /// A key/value data frame.
    pub fn data(out: &mut Vec<u8>, version: Version, seq: u32, pairs: &[(&[u8], &[u8])]) {
        out.extend_from_slice(&[version.byte(), b'D']);
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&(pairs.len() as u32).to_be_bytes());
        for (k, v) in pairs {
            for s in [k, v] {
                out.extend_from_slice(&(s.len() as u32).to_be_bytes());
                out.extend_from_slice(s);
            }
        }
    }

    /// A compressed frame holding `frames` (already encoded).
    pub fn compressed(out: &mut Vec<u8>, version: Version, frames: &[u8]) {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(frames).expect("writing into memory");
        let zipped = z.finish().expect("writing into memory");
        out.extend_from_slice(&[version.byte(), b'C']);
        out.extend_from_slice(&(zipped.len() as u32).to_be_bytes());
        out.extend_from_slice(&zipped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(buf: &[u8], max: usize) -> Result<Vec<String>, FrameError> {
        let mut out = Vec::new();
        let mut rest = buf;
        while let Some((frame, used)) = parse(rest, max)? {
            open(frame, max, &mut |_| true, &mut |item| {
                out.push(match item {
                    Item::Window { size, .. } => format!("W{size}"),
                    Item::Event {
                        seq,
                        body: Body::Json(j),
                        ..
                    } => format!("J{seq}:{}", String::from_utf8_lossy(j)),
                    Item::Event {
                        seq,
                        body: Body::Pairs(p),
                        ..
                    } => {
                        let kv: Vec<String> = p
                            .iter()
                            .map(|(k, v)| format!("{}={}", String::from_utf8_lossy(k), String::from_utf8_lossy(v)))
                            .collect();
                        format!("D{seq}:{}", kv.join(","))
                    }
                })
            })?;
            rest = &rest[used..];
        }
        Ok(out)
    }

    #[test]
    fn a_window_of_plain_and_compressed_frames_is_read_in_order() {
        let mut inner = Vec::new();
        encode::json(&mut inner, Version::V2, 2, br#"{"b":2}"#);
        encode::json(&mut inner, Version::V2, 3, br#"{"c":3}"#);
        let mut buf = Vec::new();
        encode::window(&mut buf, Version::V2, 3);
        encode::json(&mut buf, Version::V2, 1, br#"{"a":1}"#);
        encode::compressed(&mut buf, Version::V2, &inner);
        encode::data(&mut buf, Version::V1, 9, &[(b"line", b"hello"), (b"host", b"h1")]);
        assert_eq!(
            items(&buf, 1 << 20).unwrap(),
            vec![
                "W3",
                r#"J1:{"a":1}"#,
                r#"J2:{"b":2}"#,
                r#"J3:{"c":3}"#,
                "D9:line=hello,host=h1"
            ]
        );
    }

    #[test]
    fn a_partial_frame_asks_for_more_bytes_at_every_cut() {
        let mut buf = Vec::new();
        encode::json(&mut buf, Version::V2, 1, br#"{"a":1}"#);
        encode::data(&mut buf, Version::V1, 2, &[(b"k", b"v")]);
        let mut inner = Vec::new();
        encode::json(&mut inner, Version::V2, 3, b"{}");
        encode::compressed(&mut buf, Version::V2, &inner);
        let first = parse(&buf, 100).unwrap().unwrap().1;
        for cut in 0..first {
            assert_eq!(parse(&buf[..cut], 100).unwrap(), None, "cut at {cut}");
        }
        let mut at = 0;
        let mut frames = 0;
        while at < buf.len() {
            let (_, used) = parse(&buf[at..], 100).unwrap().unwrap();
            for cut in at..at + used {
                assert_eq!(parse(&buf[at..cut], 100).unwrap(), None);
            }
            at += used;
            frames += 1;
        }
        assert_eq!(frames, 3);
    }

    #[test]
    fn oversized_declared_lengths_are_refused_before_their_bytes_arrive() {
        let mut j = vec![b'2', b'J', 0, 0, 0, 1];
        j.extend_from_slice(&101u32.to_be_bytes());
        assert!(parse(&j, 100).unwrap_err().is_too_large());
        let mut c = vec![b'2', b'C'];
        c.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse(&c, 100).unwrap_err().is_too_large());
        let mut d = vec![b'1', b'D', 0, 0, 0, 1];
        d.extend_from_slice(&1000u32.to_be_bytes());
        assert!(
            parse(&d, 100).unwrap_err().is_too_large(),
            "1000 pairs cannot fit in 100 bytes"
        );
        let mut d = vec![b'1', b'D', 0, 0, 0, 1, 0, 0, 0, 1];
        d.extend_from_slice(&200u32.to_be_bytes());
        assert!(parse(&d, 100).unwrap_err().is_too_large(), "a key of 200 bytes");
    }

    #[test]
    fn garbage_bad_zlib_bombs_and_nesting_are_errors() {
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\n", 100).unwrap_err(),
            FrameError::Version(b'G')
        );
        assert_eq!(parse(b"2X", 100).unwrap_err(), FrameError::Type(b'X'));
        let open_all = |buf: &[u8], max| {
            let (frame, _) = parse(buf, max)?.expect("a whole frame");
            open(frame, max, &mut |_| true, &mut |_| {})
        };
        assert_eq!(
            open_all(&encode::ack(Version::V2, 1), 100),
            Err(FrameError::UnexpectedAck)
        );
        let mut bad = vec![b'2', b'C', 0, 0, 0, 4];
        bad.extend_from_slice(b"nope");
        assert!(matches!(open_all(&bad, 100), Err(FrameError::Zlib(_))));

        // A truncated stream, and frames inside that end mid-frame.
        let mut whole = Vec::new();
        let mut inner = Vec::new();
        encode::json(&mut inner, Version::V2, 1, &[b'x'; 50]);
        encode::compressed(&mut whole, Version::V2, &inner);
        let zipped = &whole[6..];
        let mut cut = vec![b'2', b'C'];
        cut.extend_from_slice(&((zipped.len() - 3) as u32).to_be_bytes());
        cut.extend_from_slice(&zipped[..zipped.len() - 3]);
        assert!(matches!(open_all(&cut, 1000), Err(FrameError::Zlib(_))));
        let mut short = Vec::new();
        encode::compressed(&mut short, Version::V2, &inner[..inner.len() - 1]);
        assert_eq!(open_all(&short, 1000), Err(FrameError::Truncated));

        // A bomb: 10 MB of zeros inflate past a 1 MB limit, refused early.
        let mut bomb = Vec::new();
        encode::compressed(&mut bomb, Version::V2, &vec![0u8; 10 << 20]);
        assert!(bomb.len() < 1 << 20, "the frame itself is within the limit");
        let mut biggest = 0;
        let (frame, _) = parse(&bomb, 1 << 20).unwrap().unwrap();
        let result = open(
            frame,
            1 << 20,
            &mut |n| {
                biggest = biggest.max(n);
                true
            },
            &mut |_| {},
        );
        assert_eq!(result, Err(FrameError::InflatesTooLarge(1 << 20)));
        assert!(biggest <= (1 << 20) + 1, "asked for {biggest} bytes");
        // The budget refusing stops it too.
        let (frame, _) = parse(&bomb, 1 << 20).unwrap().unwrap();
        assert_eq!(
            open(frame, 1 << 20, &mut |_| false, &mut |_| {}),
            Err(FrameError::OverBudget)
        );

        // Nesting: one level inside is opened, two are refused.
        let mut one = Vec::new();
        encode::compressed(&mut one, Version::V2, &inner);
        let mut two = Vec::new();
        encode::compressed(&mut two, Version::V2, &one);
        assert_eq!(items(&two, 1000).unwrap().len(), 1);
        let mut three = Vec::new();
        encode::compressed(&mut three, Version::V2, &two);
        assert_eq!(items(&three, 1000), Err(FrameError::TooDeep));
    }
}
