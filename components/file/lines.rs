//! Splitting a file into lines from a byte offset, with a cap on line length that
//! never stalls the file: an overlong line is cut (or dropped) and the rest of it is
//! skipped up to its newline without being buffered.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

const CHUNK: usize = 256 * 1024;

/// What happens to a line longer than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Oversize {
    /// Keep its first `max_line_bytes` bytes as the event.
    #[default]
    Truncate,
    /// Drop it.
    Drop,
}

/// One line handed to the caller.
pub struct Line<'a> {
    /// The bytes, without the newline (and without a trailing `\r`).
    pub bytes: &'a [u8],
    /// Offset of the line's first byte.
    pub offset: u64,
}

/// Reads lines from one file, remembering where it is.
#[derive(Debug)]
pub struct LineReader {
    /// Read buffer; only `buf[..end]` holds file data (the rest is spare room, zeroed
    /// once when the buffer grows, not on every read).
    buf: Vec<u8>,
    end: usize,
    /// Index in `buf` of the first byte not yet handed out.
    start: usize,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    /// True while skipping the rest of an overlong line.
    discarding: bool,
    /// Offset just past the last newline consumed: a safe place to resume.
    safe_pos: u64,
}

/// Counts from one call to [`LineReader::read`].
#[derive(Debug, Default, PartialEq)]
pub struct ReadStats {
    /// Lines handed out.
    pub lines: usize,
    /// Bytes read from the file.
    pub bytes: u64,
    /// Overlong lines cut or dropped.
    pub oversize: u64,
    /// True when the end of the file was reached.
    pub eof: bool,
}

impl LineReader {
    /// A reader resuming at `offset` (which must be the start of a line).
    pub fn new(offset: u64) -> Self {
        LineReader {
            buf: Vec::new(),
            end: 0,
            start: 0,
            buf_offset: offset,
            discarding: false,
            safe_pos: offset,
        }
    }

    /// Offset just past the last complete line consumed.
    pub fn safe_pos(&self) -> u64 {
        self.safe_pos
    }

    /// Offset of the next byte to read from the file.
    pub fn read_pos(&self) -> u64 {
        self.buf_offset + self.end as u64
    }

    /// Bytes of an unterminated last line held back.
    pub fn partial(&self) -> &[u8] {
        if self.discarding {
            &[]
        } else {
            &self.buf[self.start..self.end]
        }
    }

    /// Forgets an unterminated last line once it was handed out by the caller.
    pub fn consume_partial(&mut self) {
        self.start = self.end;
        self.discarding = false;
        self.safe_pos = self.read_pos();
    }

    /// Reads up to `max_lines` lines, calling `emit` for each.
    pub fn read(
        &mut self,
        file: &File,
        max_lines: usize,
        max_line_bytes: usize,
        oversize: Oversize,
        mut emit: impl FnMut(Line<'_>),
    ) -> io::Result<ReadStats> {
        let mut stats = ReadStats::default();
        let mut scan_from = self.start;
        while stats.lines < max_lines {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[scan_from..self.end]) {
                let nl = scan_from + i;
                let offset = self.buf_offset + self.start as u64;
                if self.discarding {
                    self.discarding = false;
                } else {
                    let mut line = &self.buf[self.start..nl];
                    if line.last() == Some(&b'\r') {
                        line = &line[..line.len() - 1];
                    }
                    if line.len() > max_line_bytes {
                        stats.oversize += 1;
                        if oversize == Oversize::Truncate {
                            emit(Line {
                                bytes: &line[..max_line_bytes],
                                offset,
                            });
                            stats.lines += 1;
                        }
                    } else {
                        emit(Line { bytes: line, offset });
                        stats.lines += 1;
                    }
                }
                self.start = nl + 1;
                scan_from = self.start;
                self.safe_pos = self.buf_offset + self.start as u64;
                continue;
            }
            // No newline in what is buffered.
            let partial = self.end - self.start;
            if !self.discarding && partial > max_line_bytes {
                stats.oversize += 1;
                if oversize == Oversize::Truncate {
                    let offset = self.buf_offset + self.start as u64;
                    emit(Line {
                        bytes: &self.buf[self.start..self.start + max_line_bytes],
                        offset,
                    });
                    stats.lines += 1;
                }
                self.discarding = true;
            }
            if self.discarding {
                // Skip what is buffered; only its length matters.
                self.buf_offset += self.end as u64;
                self.start = 0;
                self.end = 0;
            } else if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.buf_offset += self.start as u64;
                self.end -= self.start;
                self.start = 0;
            }
            scan_from = self.end;
            if self.buf.len() < self.end + CHUNK {
                self.buf.resize(self.end + CHUNK, 0);
            }
            let n = file.read_at(
                &mut self.buf[self.end..self.end + CHUNK],
                self.buf_offset + self.end as u64,
            )?;
            self.end += n;
            stats.bytes += n as u64;
            if n == 0 {
                stats.eof = true;
                break;
            }
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines_of(content: &[u8], max: usize, mode: Oversize) -> (Vec<(String, u64)>, LineReader) {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(content).unwrap();
        let mut r = LineReader::new(0);
        let mut out = Vec::new();
        loop {
            let s = r
                .read(&f, 3, max, mode, |l| {
                    out.push((String::from_utf8_lossy(l.bytes).into_owned(), l.offset))
                })
                .unwrap();
            if s.eof {
                break;
            }
        }
        (out, r)
    }

    #[test]
    fn splits_lines_and_holds_partial() {
        let (out, r) = lines_of(b"a\r\n\nbc\nde", 100, Oversize::Truncate);
        assert_eq!(out, vec![("a".into(), 0), ("".into(), 3), ("bc".into(), 4)]);
        assert_eq!(r.safe_pos(), 7);
        assert_eq!(r.partial(), b"de");
    }

    #[test]
    fn overlong_lines_are_cut_without_buffering_them() {
        let mut content = vec![b'x'; 3 * CHUNK];
        content.extend_from_slice(b"\nok\n");
        let (out, r) = lines_of(&content, 10, Oversize::Truncate);
        assert_eq!(out, vec![("x".repeat(10), 0), ("ok".into(), 3 * CHUNK as u64 + 1)]);
        assert_eq!(r.safe_pos(), content.len() as u64);
        assert!(r.buf.capacity() <= 2 * CHUNK + 16);
        let (out, _) = lines_of(&content, 10, Oversize::Drop);
        assert_eq!(out.len(), 1);
        // An overlong line that ends inside the first chunk.
        let (out, _) = lines_of(b"0123456789abc\nz\n", 4, Oversize::Truncate);
        assert_eq!(out, vec![("0123".into(), 0), ("z".into(), 14)]);
    }
}
