//! Object versions: a bounded listing (one page in memory), deleting one version, and
//! restoring an old version as the current one by a server-side copy.

use super::{sdk_time, Admin};
use crate::error::{Error, Result};
use futures::stream::BoxStream;
use serde::Serialize;

/// One version of an object, or a delete marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectVersion {
    /// The key in the bucket.
    pub key: String,
    /// The server's version id (`null` for objects written before versioning was enabled).
    pub version_id: String,
    /// Whether this is what a plain read returns.
    pub is_latest: bool,
    /// A delete marker: the key reads as absent while this is the latest.
    pub delete_marker: bool,
    /// Bytes as stored (0 for delete markers).
    pub size: u64,
    /// When this version was written.
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
    /// The version's ETag.
    pub etag: Option<String>,
    /// Its storage class (`STANDARD`, ...); none for delete markers.
    pub storage_class: Option<String>,
}

/// Largest object CopyObject takes in one request; larger versions are copied in parts.
const COPY_LIMIT: u64 = 5 * 1024 * 1024 * 1024;
/// Part size of a multipart copy.
const COPY_PART: u64 = 512 * 1024 * 1024;

impl Admin {
    /// Every version and delete marker under `prefix` (full key in the bucket), in key order
    /// and newest first within a key, one page of the server's listing in memory at a time.
    pub fn list_versions(&self, prefix: &str) -> BoxStream<'static, Result<ObjectVersion>> {
        let admin = self.clone();
        let prefix = prefix.to_string();
        super::paged(move |m| {
            let (admin, prefix) = (admin.clone(), prefix.clone());
            async move {
                let out = admin
                    .client
                    .list_object_versions()
                    .bucket(admin.bucket())
                    .prefix(&prefix)
                    .set_key_marker(m.key)
                    .set_version_id_marker(m.second)
                    .send()
                    .await
                    .map_err(|e| admin.err(e, "list_object_versions"))?;
                let mut items: Vec<ObjectVersion> = out
                    .versions()
                    .iter()
                    .map(|v| ObjectVersion {
                        key: v.key().unwrap_or_default().to_string(),
                        version_id: v.version_id().unwrap_or("null").to_string(),
                        is_latest: v.is_latest().unwrap_or(false),
                        delete_marker: false,
                        size: v.size().unwrap_or(0).max(0) as u64,
                        last_modified: v.last_modified().and_then(sdk_time),
                        etag: v.e_tag().map(str::to_string),
                        storage_class: v.storage_class().map(|c| c.as_str().to_string()),
                    })
                    .chain(out.delete_markers().iter().map(|m| ObjectVersion {
                        key: m.key().unwrap_or_default().to_string(),
                        version_id: m.version_id().unwrap_or("null").to_string(),
                        is_latest: m.is_latest().unwrap_or(false),
                        delete_marker: true,
                        size: 0,
                        last_modified: m.last_modified().and_then(sdk_time),
                        etag: None,
                        storage_class: None,
                    }))
                    .collect();
                // The server returns versions and markers in two lists; merge them into one
                // order: by key, newest first.
                items.sort_by(|a, b| {
                    a.key
                        .cmp(&b.key)
                        .then(b.last_modified.cmp(&a.last_modified))
                });
                if out.is_truncated() == Some(true) && out.next_key_marker().is_none() {
                    return Err(Error::new(
                        crate::ErrorKind::Unexpected,
                        "the server said the version listing goes on but gave no marker",
                    )
                    .with_operation("list_object_versions")
                    .with_store(&*admin.ctx.name));
                }
                let next = super::Markers::next(
                    out.is_truncated(),
                    out.next_key_marker(),
                    out.next_version_id_marker(),
                );
                Ok((items, next))
            }
        })
    }

    /// Deletes one version (or delete marker) for good.
    pub async fn delete_version(&self, key: &str, version_id: &str) -> Result<()> {
        check_version_id(version_id)?;
        self.client
            .delete_object()
            .bucket(self.bucket())
            .key(key)
            .version_id(version_id)
            .send()
            .await
            .map_err(|e| self.err(e, "delete_object").with_key(key))?;
        Ok(())
    }

    /// Makes an old version the current one: a server-side copy of that version onto its own
    /// key, bytes and metadata as stored (so layered objects stay readable). The old version
    /// stays in the history. Versions over 5 GiB are copied in parts.
    pub async fn restore_version(&self, key: &str, version_id: &str) -> Result<()> {
        check_version_id(version_id)?;
        let op = "restore_version";
        let head = self
            .client
            .head_object()
            .bucket(self.bucket())
            .key(key)
            .version_id(version_id)
            .send()
            .await
            .map_err(|e| self.err(e, "head_object").with_key(key))?;
        let source = copy_source(self.bucket(), key, version_id);
        let size = head.content_length().unwrap_or(0).max(0) as u64;
        if size <= COPY_LIMIT {
            self.client
                .copy_object()
                .bucket(self.bucket())
                .key(key)
                .copy_source(&source)
                .send()
                .await
                .map_err(|e| self.err(e, "copy_object").with_key(key))?;
            return Ok(());
        }
        // Multipart copy: metadata is not copied by UploadPartCopy, so it is set on creation.
        let created = self
            .client
            .create_multipart_upload()
            .bucket(self.bucket())
            .key(key)
            .set_metadata(head.metadata().cloned())
            .set_content_type(head.content_type().map(str::to_string))
            .send()
            .await
            .map_err(|e| self.err(e, "create_multipart_upload").with_key(key))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let parts = async {
            let mut parts = Vec::new();
            let mut at = 0u64;
            let mut n = 1;
            while at < size {
                let end = (at + COPY_PART).min(size) - 1;
                let out = self
                    .client
                    .upload_part_copy()
                    .bucket(self.bucket())
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(n)
                    .copy_source(&source)
                    .copy_source_range(format!("bytes={at}-{end}"))
                    .send()
                    .await
                    .map_err(|e| self.err(e, "upload_part_copy").with_key(key))?;
                let etag = out
                    .copy_part_result()
                    .and_then(|r| r.e_tag())
                    .map(str::to_string);
                parts.push(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(n)
                        .set_e_tag(etag)
                        .build(),
                );
                at = end + 1;
                n += 1;
            }
            self.client
                .complete_multipart_upload()
                .bucket(self.bucket())
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(
                    aws_sdk_s3::types::CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| self.err(e, "complete_multipart_upload").with_key(key))?;
            Ok::<(), Error>(())
        };
        if let Err(e) = parts.await {
            let _ = self.abort_upload(key, &upload_id).await;
            return Err(e.with_operation(op));
        }
        Ok(())
    }
}

/// `bucket/key?versionId=id`, the key percent-encoded as CopyObject expects.
fn copy_source(bucket: &str, key: &str, version_id: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let key = utf8_percent_encode(key, KEEP);
    let id = utf8_percent_encode(version_id, NON_ALPHANUMERIC);
    format!("{bucket}/{key}?versionId={id}")
}

/// A version id as the user typed it: non-empty, one line.
pub fn check_version_id(id: &str) -> Result<()> {
    if id.is_empty() || id.chars().any(char::is_control) || id.len() > 1024 {
        return Err(Error::invalid(format!("bad version id {id:?}"))
            .with_hint("copy it from `cairn versions ls`"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_encodes_the_key_but_keeps_slashes() {
        assert_eq!(
            copy_source("b", "a dir/ü+x.json", "v/1"),
            "b/a%20dir/%C3%BC%2Bx.json?versionId=v%2F1"
        );
    }
}
