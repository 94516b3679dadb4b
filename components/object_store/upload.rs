//! Moving a finished, synced staged file to its place in the archive, so that it
//! appears there whole or not at all:
//!
//! - local disk: a hard link (or a copy to a hidden temporary name, synced, then
//!   linked) into the partition directory, then the directory is synced;
//! - S3: one PUT for files up to [`PART_SIZE`], a multipart upload above it
//!   (invisible until completed); GCS: the same through the JSON API ([`super::gcs`]).
//!
//! A name that already exists is never overwritten: `-1`, `-2`, … is added before
//! the extension (`web-2026-11-25:13.log.gz` → `web-2026-11-25:13-1.log.gz`).

use super::store::Store;
use ::object_store::path::Path as ObjectPath;
use ::object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use tokio::io::AsyncReadExt;

/// Files above this size go up as a multipart upload of parts this big.
pub const PART_SIZE: usize = 8 << 20;

/// Why one attempt to place a file failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}")]
    Store(#[from] ::object_store::Error),
    #[error("{0}")]
    Remote(String),
    #[error("invalid object key `{0}`")]
    Key(String),
    #[error("`{0}` and 1000 numbered variants of it already exist")]
    NoFreeName(String),
}

/// A finished file waiting to be placed.
#[derive(Debug)]
pub struct Finished {
    /// The synced staged file.
    pub staged: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The partition directory, relative to the archive root.
    pub dir: String,
    /// The file name wanted.
    pub name: String,
    /// False when the name may already exist (a `filename` template), so placing it
    /// must not overwrite.
    pub unique: bool,
}

/// Places `file` in the archive; returns the key (or path) it got.
pub async fn place(store: &Store, file: &Finished) -> Result<String, UploadError> {
    match &store.local_root {
        Some(root) => place_local(root, file),
        None => place_remote(store, file).await,
    }
}

/// `name` with `-n` before its extension (the part after the first `.`).
fn numbered(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_string();
    }
    match name.split_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}-{n}.{ext}"),
        _ => format!("{name}-{n}"),
    }
}

fn place_local(root: &Path, file: &Finished) -> Result<String, UploadError> {
    let dir = root.join(&file.dir);
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |e| UploadError::Io(p, e)
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let mut source = file.staged.clone();
    let mut copy: Option<PathBuf> = None;
    let mut n = 0;
    let placed = loop {
        if n == 1000 {
            break Err(UploadError::NoFreeName(file.name.clone()));
        }
        let target = dir.join(numbered(&file.name, n));
        match std::fs::hard_link(&source, &target) {
            Ok(()) => break Ok(target.display().to_string()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => n += 1,
            Err(e) if e.kind() == ErrorKind::CrossesDevices && copy.is_none() => {
                // Another filesystem: copy under a hidden name readers skip, sync it,
                // then link that into place.
                let tmp = dir.join(format!(".{}.pipe-tmp", file.name));
                if let Err(e) = std::fs::copy(&file.staged, &tmp).and_then(|_| std::fs::File::open(&tmp)?.sync_all()) {
                    break Err(io(&tmp)(e));
                }
                source = tmp.clone();
                copy = Some(tmp);
            }
            Err(e) => break Err(io(&target)(e)),
        }
    };
    if let Some(tmp) = copy {
        let _ = std::fs::remove_file(tmp);
    }
    let placed = placed?;
    std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(io(&dir))?;
    Ok(placed)
}

async fn place_remote(store: &Store, file: &Finished) -> Result<String, UploadError> {
    let key_of = |n: u32| {
        let relative = format!("{}/{}", file.dir, numbered(&file.name, n));
        store.key(&relative).map_err(|_| UploadError::Key(relative))
    };
    let io = |e| UploadError::Io(file.staged.display().to_string(), e);
    if let Some(gcs) = &store.gcs {
        for n in 0..1000 {
            let key = key_of(n)?;
            match super::gcs::upload(gcs, &key, &file.staged, file.size, !file.unique).await? {
                super::gcs::Outcome::Uploaded => return Ok(key.to_string()),
                super::gcs::Outcome::Exists => continue,
            }
        }
        return Err(UploadError::NoFreeName(file.name.clone()));
    }
    if file.size as usize <= PART_SIZE {
        let data = tokio::fs::read(&file.staged).await.map_err(io)?;
        let payload = PutPayload::from(data);
        for n in 0..1000 {
            let key = key_of(n)?;
            let mode = if file.unique {
                PutMode::Overwrite
            } else {
                PutMode::Create
            };
            let opts = PutOptions {
                mode,
                ..Default::default()
            };
            match store.store.put_opts(&key, payload.clone(), opts).await {
                Ok(_) => return Ok(key.to_string()),
                Err(::object_store::Error::AlreadyExists { .. } | ::object_store::Error::Precondition { .. }) => {
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        return Err(UploadError::NoFreeName(file.name.clone()));
    }
    let mut key = key_of(0)?;
    if !file.unique {
        let mut n = 0;
        loop {
            match store.store.head(&key).await {
                Err(::object_store::Error::NotFound { .. }) => break,
                Ok(_) if n < 1000 => {
                    n += 1;
                    key = key_of(n)?;
                }
                Ok(_) => return Err(UploadError::NoFreeName(file.name.clone())),
                Err(e) => return Err(e.into()),
            }
        }
    }
    upload_multipart(store, &key, &file.staged).await?;
    Ok(key.to_string())
}

async fn upload_multipart(store: &Store, key: &ObjectPath, staged: &Path) -> Result<(), UploadError> {
    let io = |e| UploadError::Io(staged.display().to_string(), e);
    let mut input = tokio::fs::File::open(staged).await.map_err(io)?;
    let upload = store.store.put_multipart(key).await?;
    let mut write = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let mut buf = vec![0u8; PART_SIZE];
    loop {
        let filled = read_chunk(&mut input, &mut buf).await.map_err(io)?;
        if filled == 0 {
            break;
        }
        if let Err(e) = write.wait_for_capacity(4).await {
            let _ = write.abort().await;
            return Err(e.into());
        }
        write.write(&buf[..filled]);
        if filled < buf.len() {
            break;
        }
    }
    write.finish().await?;
    Ok(())
}

/// Fills `buf` from `input` as far as the input goes; returns how much it holds.
pub async fn read_chunk(input: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = input.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_names_keep_the_extension() {
        assert_eq!(numbered("web-2026-11-25:13.log.gz", 0), "web-2026-11-25:13.log.gz");
        assert_eq!(numbered("web-2026-11-25:13.log.gz", 2), "web-2026-11-25:13-2.log.gz");
        assert_eq!(numbered("plain", 1), "plain-1");
    }

    #[test]
    fn local_placement_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let staged = dir.path().join("s");
        std::fs::write(&staged, b"one").unwrap();
        let f = Finished {
            staged: staged.clone(),
            size: 3,
            dir: "a/b".into(),
            name: "x.log.gz".into(),
            unique: false,
        };
        let root = dir.path().join("root");
        let first = place_local(&root, &f).unwrap();
        let second = place_local(&root, &f).unwrap();
        assert!(first.ends_with("a/b/x.log.gz"), "{first}");
        assert!(second.ends_with("a/b/x-1.log.gz"), "{second}");
    }
}
