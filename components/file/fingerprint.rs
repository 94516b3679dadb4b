//! Identifying a file by its first bytes, not by its path, so that a renamed file is
//! recognised (and read to its end, never twice) and a file rewritten in place is
//! recognised as new.
//!
//! A fingerprint is the FNV-1a hash of the first `len` bytes, where `len` is the
//! configured size or the file's length if it is shorter. A short fingerprint grows as
//! the file grows (the first bytes of a log file do not change), and is trusted only
//! together with the file's device and inode.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The identity of a file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// How many leading bytes were hashed.
    pub len: u32,
    /// Their FNV-1a hash.
    pub hash: u64,
}

impl Fingerprint {
    /// The fingerprint of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Fingerprint {
            len: bytes.len() as u32,
            hash: fnv1a(bytes),
        }
    }

    /// True when `prefix` (the file's first bytes, at least as many as hashed) starts
    /// with the bytes this fingerprint was made of.
    pub fn matches(&self, prefix: &[u8]) -> bool {
        prefix.len() >= self.len as usize && fnv1a(&prefix[..self.len as usize]) == self.hash
    }
}

/// Reads up to `max` leading bytes of `file`.
pub fn read_prefix(file: &File, max: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; max];
    let mut filled = 0;
    while filled < max {
        let n = file.read_at(&mut buf[filled..], filled as u64)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(buf)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_longer_prefixes_of_the_same_content() {
        let fp = Fingerprint::of(b"hello");
        assert!(fp.matches(b"hello world"));
        assert!(!fp.matches(b"hell"));
        assert!(!fp.matches(b"jello world"));
        assert!(Fingerprint::of(b"").matches(b"anything"));
    }
}
