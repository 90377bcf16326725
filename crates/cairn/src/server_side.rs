//! What a store can ask of the S3 server behind it, beyond reading and writing objects:
//! presigned URLs, object versions, open multipart uploads, and stats by storage class.
//!
//! [`Store::server_side`](crate::Store::server_side) hands out a [`ServerSide`]; each layer
//! passes it up, the prefix layer scoping it to its prefix and the compressing and
//! encrypting layers marking it, so a presigned URL is refused where it would hand out bytes
//! cairn transformed. Local and memory stores have none.

use crate::backend::s3::admin::{Admin, ObjectVersion, PresignMethod, Upload};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::stats::StorageStats;
use futures::stream::{BoxStream, StreamExt};
use std::time::Duration;

/// The server behind a store, scoped to the store's prefix.
#[derive(Debug, Clone)]
pub struct ServerSide {
    admin: Admin,
    prefix: String,
    transforms: Vec<&'static str>,
}

/// The error a store without a server gives for these operations.
pub fn unsupported(store: impl std::fmt::Display, what: &str) -> Error {
    Error::unsupported(format!("{what} needs an S3 server; {store} has none"))
        .with_store(store.to_string())
        .with_hint("use an s3:// URL (local and memory stores keep no versions and sign no URLs)")
}

impl ServerSide {
    pub(crate) fn new(admin: Admin) -> ServerSide {
        ServerSide {
            admin,
            prefix: String::new(),
            transforms: Vec::new(),
        }
    }

    /// Scoped one level further down (the prefix layer's `prefix`, ending in `/`).
    pub(crate) fn under(mut self, prefix: &str) -> ServerSide {
        self.prefix.push_str(prefix);
        self
    }

    /// Marked as behind a layer that transforms bytes (`compression`, `encryption`).
    pub(crate) fn transformed_by(mut self, layer: &'static str) -> ServerSide {
        self.transforms.push(layer);
        self
    }

    /// The bucket administration client.
    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    /// The store's prefix within the bucket ("" or ending in `/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn relative(&self, key: String) -> String {
        match key.strip_prefix(&self.prefix) {
            Some(rel) => rel.to_string(),
            None => key,
        }
    }

    /// A URL allowing `method` on `key` for `expires`. Refused where the store compresses or
    /// encrypts: the URL would serve, or accept, bytes only cairn can read.
    pub async fn presign(
        &self,
        method: PresignMethod,
        key: &Key,
        expires: Duration,
    ) -> Result<url::Url> {
        if let Some(layer) = self.transforms.first() {
            return Err(Error::unsupported(format!(
                "a presigned URL bypasses cairn, and this store applies {layer}: the URL would \
                 hand out (or take in) bytes only cairn can read"
            ))
            .with_operation("presign")
            .with_key(key.as_str())
            .with_hint("open the store without compression and encryption to presign"));
        }
        self.admin
            .presign(method, &self.full(key.as_str()), expires)
            .await
            .map_err(|e| e.with_operation("presign"))
    }

    /// Every version and delete marker under `prefix`, keys relative to the store.
    pub fn list_versions(&self, prefix: &str) -> BoxStream<'static, Result<ObjectVersion>> {
        let this = self.clone();
        self.admin
            .list_versions(&self.full(prefix))
            .map(move |r| {
                r.map(|mut v| {
                    v.key = this.relative(v.key);
                    v
                })
            })
            .boxed()
    }

    /// Deletes one version of `key` for good.
    pub async fn delete_version(&self, key: &Key, version_id: &str) -> Result<()> {
        self.admin
            .delete_version(&self.full(key.as_str()), version_id)
            .await
    }

    /// Makes `version_id` the current version of `key` (a server-side copy; the bytes and
    /// cairn's metadata as stored, so layered objects stay readable).
    pub async fn restore_version(&self, key: &Key, version_id: &str) -> Result<()> {
        self.admin
            .restore_version(&self.full(key.as_str()), version_id)
            .await
    }

    /// Open multipart uploads under `prefix`, keys relative to the store.
    pub fn list_uploads(&self, prefix: &str) -> BoxStream<'static, Result<Upload>> {
        let this = self.clone();
        self.admin
            .list_uploads(&self.full(prefix))
            .map(move |r| {
                r.map(|mut u| {
                    u.key = this.relative(u.key);
                    u
                })
            })
            .boxed()
    }

    /// Aborts one open upload of `key` (relative to the store).
    pub async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<()> {
        self.admin.abort_upload(&self.full(key), upload_id).await
    }

    /// Count and stored bytes under `prefix`, by storage class and by the first `depth`
    /// levels below it.
    pub async fn stats(
        &self,
        prefix: &str,
        depth: usize,
        reporter: &dyn crate::ops::Reporter,
    ) -> Result<StorageStats> {
        let full = self.full(prefix);
        self.admin.stats(&full, &full, depth, reporter).await
    }
}
