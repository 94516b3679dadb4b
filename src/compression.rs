//! The `compression = "none" | "gzip"` option shared by sinks that write or send
//! bytes, and the one gzip encoder they use (a complete gzip member per call).

use serde::Deserialize;
use std::io::Write;

/// Compression of written files or request bodies.
#[derive(Debug, Deserialize, serde::Serialize, schemars::JsonSchema, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    None,
    Gzip,
}

/// `data` as one complete gzip member (fast level: these are logs on a hot path).
pub fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 4), flate2::Compression::fast());
    gz.write_all(data)?;
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn gzip_round_trips() {
        let mut out = String::new();
        flate2::read::GzDecoder::new(&gzip(b"hello\n").unwrap()[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello\n");
    }
}
