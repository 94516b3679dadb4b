//! The disk buffer's files: segments of framed records and the acknowledged position.
//!
//! A record is one batch: a 32-byte header (magic, payload length, sequence number,
//! event count, write time, CRC32C of all that and the payload) and its payload. A
//! segment `<first seq>.seg` holds consecutive records; the writer starts a new one at
//! every start and when one is full, and never appends to a segment it did not create.
//! `acked` holds the sequence number below which every record was delivered (with its
//! own CRC), replaced atomically.
//!
//! Reading a segment back ([`scan`]) never trusts a length it has not checked: a
//! record whose CRC fails is skipped by searching for the next valid header, so one
//! flipped byte costs that record only; an incomplete or invalid tail with no valid
//! record after it is a torn write, cut off.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Marks the start of a record ("PBUF").
const MAGIC: [u8; 4] = *b"PBUF";
/// Header bytes before the payload.
pub const HEADER: usize = 32;
/// The largest payload a record may declare.
pub const MAX_PAYLOAD: usize = 256 << 20;

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// Where a record is and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta {
    pub seq: u64,
    pub events: u32,
    pub written_ms: u64,
    /// Its offset in its segment.
    pub offset: u64,
    /// Header and payload bytes.
    pub len: u64,
}

/// One record, framed.
pub fn frame(seq: u64, events: u32, written_ms: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&events.to_le_bytes());
    out.extend_from_slice(&written_ms.to_le_bytes());
    let mut digest = CRC.digest();
    digest.update(&out[4..28]);
    digest.update(payload);
    out.extend_from_slice(&digest.finalize().to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Why the bytes at an offset are no record.
#[derive(Debug, PartialEq, Eq)]
enum Bad {
    /// The file ends inside it.
    Incomplete,
    /// Wrong magic, impossible length, or the CRC does not match.
    Invalid,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// The record at `offset` of `bytes`, checked.
fn record_at(bytes: &[u8], offset: usize) -> Result<RecordMeta, Bad> {
    let header = bytes.get(offset..offset + HEADER).ok_or(Bad::Incomplete)?;
    if header[..4] != MAGIC {
        return Err(Bad::Invalid);
    }
    let len = u32_at(header, 4) as usize;
    if len > MAX_PAYLOAD {
        return Err(Bad::Invalid);
    }
    let payload = bytes
        .get(offset + HEADER..offset + HEADER + len)
        .ok_or(Bad::Incomplete)?;
    let mut digest = CRC.digest();
    digest.update(&header[4..28]);
    digest.update(payload);
    if digest.finalize() != u32_at(header, 28) {
        return Err(Bad::Invalid);
    }
    Ok(RecordMeta {
        seq: u64_at(header, 8),
        events: u32_at(header, 16),
        written_ms: u64_at(header, 20),
        offset: offset as u64,
        len: (HEADER + len) as u64,
    })
}

/// The payload of a record found by [`scan`] or written this run, checked again.
pub fn payload(bytes: &[u8]) -> Option<&[u8]> {
    record_at(bytes, 0).ok().map(|m| &bytes[HEADER..m.len as usize])
}

/// What a segment holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Its valid records, in order.
    pub records: Vec<RecordMeta>,
    /// Damaged stretches skipped between valid records (each costs one record or more).
    pub corrupt: u64,
    /// Where a torn tail starts: nothing valid follows.
    pub torn_at: Option<u64>,
}

/// Reads every valid record of a segment's `bytes`.
pub fn scan(bytes: &[u8]) -> Scan {
    let mut s = Scan::default();
    let mut pos = 0;
    while pos < bytes.len() {
        match record_at(bytes, pos) {
            Ok(m) => {
                s.records.push(m);
                pos += m.len as usize;
            }
            Err(_) => match next_valid(bytes, pos + 1) {
                Some(next) => {
                    s.corrupt += 1;
                    pos = next;
                }
                None => {
                    s.torn_at = Some(pos as u64);
                    break;
                }
            },
        }
    }
    s
}

/// The offset of the next valid record at or after `from`.
fn next_valid(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(found) = memchr::memmem::find(bytes.get(at..)?, &MAGIC) {
        let p = at + found;
        if record_at(bytes, p).is_ok() {
            return Some(p);
        }
        at = p + 1;
    }
    None
}

/// The segment file of the segment starting at `first_seq`.
pub fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.seg"))
}

/// The segments in `dir`, by first sequence number.
pub fn segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let first = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".seg"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(first) = first {
            out.push((first, path));
        }
    }
    out.sort();
    Ok(out)
}

/// The acknowledged position in `dir` (0 when there is none; `Err` when it is damaged).
pub fn read_acked(dir: &Path) -> Result<u64, String> {
    let bytes = match fs::read(dir.join("acked")) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.to_string()),
    };
    if bytes.len() != 12 || CRC.checksum(&bytes[..8]) != u32_at(&bytes, 8) {
        return Err("the acknowledged position is damaged".into());
    }
    Ok(u64_at(&bytes, 0))
}

/// Durably replaces the acknowledged position in `dir` with `seq`.
pub fn write_acked(dir: &Path, seq: u64) -> std::io::Result<()> {
    let tmp = dir.join("acked.tmp");
    let mut bytes = seq.to_le_bytes().to_vec();
    bytes.extend_from_slice(&CRC.checksum(&bytes).to_le_bytes());
    let mut f = File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_data()?;
    fs::rename(&tmp, dir.join("acked"))?;
    sync_dir(dir)
}

/// Makes `dir`'s entries (a created, renamed or deleted file) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads the record `meta` from `file`.
pub fn read_record(file: &mut File, meta: &RecordMeta) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; meta.len as usize];
    file.seek(SeekFrom::Start(meta.offset))?;
    file.read_exact(&mut buf)?;
    Ok(buf)
}

/// The segment being written.
pub struct SegmentWriter {
    pub first_seq: u64,
    pub path: PathBuf,
    file: File,
    pub len: u64,
}

impl SegmentWriter {
    /// Creates the segment starting at `first_seq` in `dir`, durably.
    pub fn create(dir: &Path, first_seq: u64) -> std::io::Result<Self> {
        let path = segment_path(dir, first_seq);
        let file = OpenOptions::new().create(true).truncate(true).write(true).open(&path)?;
        sync_dir(dir)?;
        Ok(SegmentWriter {
            first_seq,
            path,
            file,
            len: 0,
        })
    }

    /// Appends `bytes` and makes them durable; on failure the segment is cut back to
    /// where it was, so a retry writes the same records again.
    pub fn append_durably(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let result = self.file.write_all(bytes).and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                let _ = self.file.seek(SeekFrom::Start(self.len));
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(n: u64) -> (Vec<u8>, Vec<RecordMeta>) {
        let mut bytes = Vec::new();
        let mut metas = Vec::new();
        for seq in 0..n {
            let payload = format!("payload of record {seq} ").repeat(seq as usize % 5 + 1);
            let r = frame(seq, 3, 1000 + seq, payload.as_bytes());
            metas.push(RecordMeta {
                seq,
                events: 3,
                written_ms: 1000 + seq,
                offset: bytes.len() as u64,
                len: r.len() as u64,
            });
            bytes.extend_from_slice(&r);
        }
        (bytes, metas)
    }

    #[test]
    fn a_whole_segment_reads_back() {
        let (bytes, metas) = segment(20);
        assert_eq!(
            scan(&bytes),
            Scan {
                records: metas,
                corrupt: 0,
                torn_at: None
            }
        );
    }

    /// A crash can stop a write anywhere in the last record: whatever the cut, the
    /// records before it are read, the rest is a torn tail, nothing is counted corrupt.
    #[test]
    fn the_last_record_cut_at_every_byte_is_a_torn_tail() {
        let (bytes, metas) = segment(6);
        let last = metas.last().unwrap();
        for cut in last.offset..last.offset + last.len {
            let s = scan(&bytes[..cut as usize]);
            assert_eq!(s.records, metas[..5], "cut at {cut}");
            assert_eq!(s.corrupt, 0, "cut at {cut}");
            assert_eq!(s.torn_at, (cut > last.offset).then_some(last.offset), "cut at {cut}");
        }
    }

    /// One flipped byte anywhere in a record in the middle loses that record only.
    #[test]
    fn a_flipped_byte_mid_segment_loses_only_its_record() {
        let (bytes, metas) = segment(9);
        let victim = metas[4];
        for at in victim.offset..victim.offset + victim.len {
            let mut damaged = bytes.clone();
            damaged[at as usize] ^= 0x41;
            let s = scan(&damaged);
            let seqs: Vec<u64> = s.records.iter().map(|m| m.seq).collect();
            assert_eq!(seqs, [0, 1, 2, 3, 5, 6, 7, 8], "byte {at} flipped");
            assert_eq!(s.corrupt, 1, "byte {at} flipped");
            assert_eq!(s.torn_at, None);
        }
    }

    #[test]
    fn the_acknowledged_position_survives_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_acked(dir.path()), Ok(0));
        write_acked(dir.path(), 77).unwrap();
        assert_eq!(read_acked(dir.path()), Ok(77));
        let mut b = fs::read(dir.path().join("acked")).unwrap();
        b[0] ^= 1;
        fs::write(dir.path().join("acked"), b).unwrap();
        assert!(read_acked(dir.path()).is_err());
    }
}
