//! Open multipart uploads, kept on disk under the state directory so they survive a restart:
//! `uploads/{id}/upload.json` (bucket, key, content type, metadata) and one
//! `{part:05}.part` file per part with its `{part:05}.json` record (ETag, size). Each file
//! is written to a temp name and renamed, so a crash leaves whole parts or none.
//!
//! Completing streams the parts, in order, into the bucket's store through cairn's writer
//! (bounded memory, the store's own atomicity); the upload's directory goes after that.

use crate::errors::{internal, with_message};
use chrono::{DateTime, Utc};
use s3s::{S3ErrorCode, S3Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// S3's smallest part but the last.
pub const MIN_PART: u64 = 5 * 1024 * 1024;

/// What CreateMultipartUpload fixed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Upload {
    /// The upload id.
    pub id: String,
    /// Bucket name.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// Content type for the object.
    pub content_type: Option<String>,
    /// User metadata for the object.
    pub metadata: BTreeMap<String, String>,
    /// When it started.
    pub initiated: DateTime<Utc>,
}

/// One stored part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Part {
    /// Part number (1..=10000).
    pub number: i32,
    /// Quoted MD5 of the part, as S3 has it.
    pub etag: String,
    /// Bytes.
    pub size: u64,
    /// When it was stored.
    pub last_modified: DateTime<Utc>,
}

/// The uploads directory.
#[derive(Debug, Clone)]
pub struct Uploads {
    dir: PathBuf,
}

fn no_such_upload(id: &str) -> s3s::S3Error {
    with_message(
        S3ErrorCode::NoSuchUpload,
        format!("no multipart upload {id:?}"),
    )
}

impl Uploads {
    /// Uploads under `state/uploads`, created if missing.
    pub fn open(state: &Path) -> std::io::Result<Self> {
        let dir = state.join("uploads");
        std::fs::create_dir_all(&dir)?;
        Ok(Uploads { dir })
    }

    fn upload_dir(&self, id: &str) -> S3Result<PathBuf> {
        // Ids are ours: 32 hex digits. Anything else names no upload (and no path).
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(no_such_upload(id));
        }
        Ok(self.dir.join(id))
    }

    /// Starts an upload.
    pub async fn create(&self, mut upload: Upload) -> S3Result<Upload> {
        upload.id = hex::encode(rand::random::<[u8; 16]>());
        let dir = self.dir.join(&upload.id);
        let json = serde_json::to_vec(&upload).expect("serializable");
        let u = upload.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir(&dir)?;
            write_atomic(&dir.join("upload.json"), &json)
        })
        .await
        .expect("no panic")
        .map_err(|e| internal("recording the upload", e))?;
        Ok(u)
    }

    /// The upload `id`, checked to belong to `bucket`/`key`.
    pub async fn get(&self, bucket: &str, key: &str, id: &str) -> S3Result<Upload> {
        let dir = self.upload_dir(id)?;
        let raw = match tokio::fs::read(dir.join("upload.json")).await {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(no_such_upload(id)),
            Err(e) => return Err(internal("reading the upload", e)),
        };
        let u: Upload =
            serde_json::from_slice(&raw).map_err(|e| internal("reading the upload", e))?;
        if u.bucket != bucket || u.key != key {
            return Err(no_such_upload(id));
        }
        Ok(u)
    }

    /// A temp path in the upload's directory for a part being received.
    pub fn part_temp(&self, id: &str, number: i32) -> S3Result<PathBuf> {
        let dir = self.upload_dir(id)?;
        let nonce = hex::encode(rand::random::<[u8; 8]>());
        Ok(dir.join(format!("{number:05}.{nonce}.tmp")))
    }

    /// Files a received part (its temp file) under its number, replacing an earlier one.
    pub async fn commit_part(&self, id: &str, temp: PathBuf, part: Part) -> S3Result<()> {
        let dir = self.upload_dir(id)?;
        let json = serde_json::to_vec(&part).expect("serializable");
        tokio::task::spawn_blocking(move || {
            let n = part.number;
            if !dir.join("upload.json").exists() {
                let _ = std::fs::remove_file(&temp);
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "upload gone",
                ));
            }
            std::fs::rename(&temp, dir.join(format!("{n:05}.part")))?;
            write_atomic(&dir.join(format!("{n:05}.json")), &json)
        })
        .await
        .expect("no panic")
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                no_such_upload(id)
            } else {
                internal("storing the part", e)
            }
        })
    }

    /// The stored parts, by number.
    pub async fn parts(&self, id: &str) -> S3Result<BTreeMap<i32, Part>> {
        let dir = self.upload_dir(id)?;
        tokio::task::spawn_blocking(move || -> std::io::Result<BTreeMap<i32, Part>> {
            let mut out = BTreeMap::new();
            for e in std::fs::read_dir(&dir)? {
                let e = e?;
                let name = e.file_name().to_string_lossy().into_owned();
                if name == "upload.json" || !name.ends_with(".json") {
                    continue;
                }
                let raw = std::fs::read(e.path())?;
                if let Ok(p) = serde_json::from_slice::<Part>(&raw) {
                    out.insert(p.number, p);
                }
            }
            Ok(out)
        })
        .await
        .expect("no panic")
        .map_err(|e| internal("listing parts", e))
    }

    /// The data file of part `number`.
    pub fn part_path(&self, id: &str, number: i32) -> S3Result<PathBuf> {
        Ok(self.upload_dir(id)?.join(format!("{number:05}.part")))
    }

    /// Drops the upload and its parts.
    pub async fn remove(&self, id: &str) -> S3Result<()> {
        let dir = self.upload_dir(id)?;
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(no_such_upload(id)),
            Err(e) => Err(internal("removing the upload", e)),
        }
    }

    /// Every open upload in `bucket` whose key starts with `prefix`, by key then start time.
    pub async fn list(&self, bucket: &str, prefix: &str) -> S3Result<Vec<Upload>> {
        let dir = self.dir.clone();
        let (bucket, prefix) = (bucket.to_string(), prefix.to_string());
        tokio::task::spawn_blocking(move || -> std::io::Result<Vec<Upload>> {
            let mut out = Vec::new();
            for e in std::fs::read_dir(&dir)? {
                let e = e?;
                let Ok(raw) = std::fs::read(e.path().join("upload.json")) else {
                    continue;
                };
                if let Ok(u) = serde_json::from_slice::<Upload>(&raw) {
                    if u.bucket == bucket && u.key.starts_with(&prefix) {
                        out.push(u);
                    }
                }
            }
            out.sort_by(|a, b| (&a.key, a.initiated).cmp(&(&b.key, b.initiated)));
            Ok(out)
        })
        .await
        .expect("no panic")
        .map_err(|e| internal("listing uploads", e))
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", hex::encode(rand::random::<[u8; 4]>())));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}
