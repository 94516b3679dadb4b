//! Uploading a finished file to GCS through the JSON API: one media upload for small
//! files, a resumable upload in [`PART_SIZE`] chunks above, the object appearing only
//! when the last chunk lands. With `create_only` the upload carries
//! `ifGenerationMatch=0`, so an existing object is never replaced (412).

use super::store::GcsTarget;
use super::upload::{PART_SIZE, UploadError, read_chunk};
use ::object_store::path::Path as ObjectPath;
use reqwest::StatusCode;
use std::path::Path;

/// What one attempt did.
pub enum Outcome {
    Uploaded,
    /// `create_only` and the object exists.
    Exists,
}

fn failed(what: &str, e: impl std::fmt::Display) -> UploadError {
    UploadError::Remote(format!("GCS {what}: {e}"))
}

/// Uploads `staged` (`size` bytes) as `key`.
pub async fn upload(
    gcs: &GcsTarget,
    key: &ObjectPath,
    staged: &Path,
    size: u64,
    create_only: bool,
) -> Result<Outcome, UploadError> {
    let token = gcs.credentials.get_credential().await?.bearer.clone();
    let name: String = url::form_urlencoded::byte_serialize(key.as_ref().as_bytes()).collect();
    let condition = if create_only { "&ifGenerationMatch=0" } else { "" };
    let url = |kind: &str| {
        format!(
            "{}/upload/storage/v1/b/{}/o?uploadType={kind}&name={name}{condition}",
            gcs.base_url, gcs.bucket
        )
    };
    let auth = |r: reqwest::RequestBuilder| if token.is_empty() { r } else { r.bearer_auth(&token) };
    let io = |e| UploadError::Io(staged.display().to_string(), e);
    if size as usize <= PART_SIZE {
        let body = tokio::fs::read(staged).await.map_err(io)?;
        let response = auth(gcs.client.post(url("media")))
            .header("Content-Type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .map_err(|e| failed("upload", e))?;
        return finished(response).await;
    }
    let start = auth(gcs.client.post(url("resumable")))
        .header("Content-Type", "application/json")
        .header("X-Upload-Content-Length", size.to_string())
        .body("{}")
        .send()
        .await
        .map_err(|e| failed("resumable upload start", e))?;
    if start.status() == StatusCode::PRECONDITION_FAILED {
        return Ok(Outcome::Exists);
    }
    if !start.status().is_success() {
        let status = start.status();
        return Err(failed(
            "resumable upload start",
            format!("{status} {}", start.text().await.unwrap_or_default()),
        ));
    }
    let session = start
        .headers()
        .get("Location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| failed("resumable upload start", "no Location header"))?
        .to_string();
    let mut input = tokio::fs::File::open(staged).await.map_err(io)?;
    let mut offset = 0u64;
    let mut buf = vec![0u8; PART_SIZE];
    loop {
        let filled = read_chunk(&mut input, &mut buf).await.map_err(io)?;
        let end = offset + filled as u64;
        let range = format!("bytes {offset}-{}/{size}", end.saturating_sub(1));
        let response = auth(gcs.client.put(&session))
            .header("Content-Range", range)
            .body(buf[..filled].to_vec())
            .send()
            .await
            .map_err(|e| failed("resumable upload", e))?;
        offset = end;
        if offset >= size {
            return finished(response).await;
        }
        // 308: the chunk is in, send the next.
        if response.status().as_u16() != 308 && !response.status().is_success() {
            let status = response.status();
            return Err(failed(
                "resumable upload",
                format!("{status} {}", response.text().await.unwrap_or_default()),
            ));
        }
    }
}

async fn finished(response: reqwest::Response) -> Result<Outcome, UploadError> {
    match response.status() {
        s if s.is_success() => Ok(Outcome::Uploaded),
        StatusCode::PRECONDITION_FAILED => Ok(Outcome::Exists),
        s => Err(failed(
            "upload",
            format!("{s} {}", response.text().await.unwrap_or_default()),
        )),
    }
}
