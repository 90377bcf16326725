//! Unfinished multipart uploads: they hold storage (and bill for it) until completed or
//! aborted. Listed with their age and the parts sent so far; aborted by age.

use super::{sdk_time, Admin};
use crate::error::{ErrorKind, Result};
use futures::stream::BoxStream;
use serde::Serialize;

/// One multipart upload the server still holds open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Upload {
    /// The key it will create, in the bucket.
    pub key: String,
    /// The server's upload id.
    pub upload_id: String,
    /// When it was started; `None` where the server does not say (moto answers one fixed
    /// date for every upload).
    pub initiated: Option<chrono::DateTime<chrono::Utc>>,
    /// Parts uploaded so far.
    pub parts: u64,
    /// Bytes in those parts (stored, and billed, until the upload ends).
    pub size: u64,
}

impl Upload {
    /// Whether it was started longer than `age` ago (an upload of unknown start counts as old).
    pub fn older_than(&self, age: std::time::Duration, now: chrono::DateTime<chrono::Utc>) -> bool {
        let age = chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX);
        self.initiated.is_none_or(|t| now - t >= age)
    }
}

impl Admin {
    /// The open uploads under `prefix` (full key in the bucket), with their parts counted,
    /// one page in memory at a time. A server without the listing has none to show.
    pub fn list_uploads(&self, prefix: &str) -> BoxStream<'static, Result<Upload>> {
        let admin = self.clone();
        let prefix = prefix.to_string();
        super::paged(move |m| {
            let (admin, prefix) = (admin.clone(), prefix.clone());
            async move {
                let out = admin
                    .client
                    .list_multipart_uploads()
                    .bucket(admin.bucket())
                    .prefix(&prefix)
                    .set_key_marker(m.key)
                    .set_upload_id_marker(m.second)
                    .send()
                    .await
                    .map_err(|e| admin.err(e, "list_multipart_uploads"))?;
                let mut items = Vec::with_capacity(out.uploads().len());
                for u in out.uploads() {
                    let (Some(key), Some(id)) = (u.key(), u.upload_id()) else {
                        continue;
                    };
                    let (parts, size) = admin.parts_of(key, id).await?;
                    items.push(Upload {
                        key: key.to_string(),
                        upload_id: id.to_string(),
                        initiated: u
                            .initiated()
                            .filter(|_| admin.upload_times())
                            .and_then(sdk_time),
                        parts,
                        size,
                    });
                }
                let next = super::Markers::next(
                    out.is_truncated(),
                    out.next_key_marker(),
                    out.next_upload_id_marker(),
                );
                Ok((items, next))
            }
        })
    }

    /// Parts and bytes uploaded so far; an upload that ended meanwhile has none.
    async fn parts_of(&self, key: &str, upload_id: &str) -> Result<(u64, u64)> {
        let (mut parts, mut size) = (0u64, 0u64);
        let mut marker: Option<String> = None;
        loop {
            let out = match self
                .client
                .list_parts()
                .bucket(self.bucket())
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.take())
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    let e = self.err(e, "list_parts").with_key(key);
                    return match e.kind() {
                        ErrorKind::NotFound => Ok((parts, size)),
                        _ => Err(e),
                    };
                }
            };
            for p in out.parts() {
                parts += 1;
                size += p.size().unwrap_or(0).max(0) as u64;
            }
            marker = out.next_part_number_marker().map(str::to_string);
            if out.is_truncated() != Some(true) || marker.is_none() {
                return Ok((parts, size));
            }
        }
    }

    /// Aborts one upload; its parts are freed. One that already ended is not an error.
    pub async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<()> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(self.bucket())
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = self.err(e, "abort_multipart_upload").with_key(key);
                if e.kind() == ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}
