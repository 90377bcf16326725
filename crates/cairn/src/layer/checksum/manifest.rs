//! Multipart manifests: written after the store commits an upload, merged into reads.

use super::read::BadReads;
use super::*;

/// What a manifest holds.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Manifest {
    pub(super) version: u32,
    pub(super) upload: String,
    /// The key the upload was written to (informational: copies keep it).
    pub(super) key: String,
    pub(super) sha256: String,
    pub(super) size: u64,
    #[serde(default)]
    pub(super) metadata: Metadata,
    /// Every part's size and SHA-256, in order (S3's composite-checksum shape), so a read can
    /// check each part on its own. Absent in manifests written before parts were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) parts: Option<Vec<PartDigest>>,
}

/// One part of a multipart upload as this layer passed it down.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PartDigest {
    pub(super) size: u64,
    pub(super) sha256: String,
}

pub(super) struct ChecksumUpload<S> {
    pub(super) store: Arc<S>,
    pub(super) names: RecordNames,
    pub(super) inner: Box<dyn MultipartUpload>,
    pub(super) key: Key,
    pub(super) id: String,
    pub(super) hasher: Sha256,
    pub(super) size: u64,
    pub(super) trailing: Metadata,
    /// Each part's digest, filled in by its upload future (so parts hash on any core).
    pub(super) parts: Arc<std::sync::Mutex<Vec<Option<PartDigest>>>>,
}

impl<S> fmt::Debug for ChecksumUpload<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChecksumUpload")
            .field("key", &self.key)
            .field("inner", &self.inner)
            .finish()
    }
}

#[async_trait]
impl<S: Store> MultipartUpload for ChecksumUpload<S> {
    fn put_part(&mut self, data: Bytes) -> BoxFuture<'static, Result<()>> {
        // Parts are numbered in call order, so hashing here hashes the object in order.
        self.hasher.update(&data);
        self.size += data.len() as u64;
        let i = {
            let mut parts = self.parts.lock().unwrap();
            parts.push(None);
            parts.len() - 1
        };
        let parts = self.parts.clone();
        let hashed = data.clone();
        let upload = self.inner.put_part(data);
        Box::pin(async move {
            let sha256 = hex::encode(Sha256::digest(&hashed));
            let size = hashed.len() as u64;
            parts.lock().unwrap()[i] = Some(PartDigest { size, sha256 });
            upload.await
        })
    }
    async fn complete(&mut self) -> Result<PutResult> {
        let r = match self.inner.complete().await {
            Ok(r) => r,
            // The reply may be lost after the store committed the upload (a timeout, a reset):
            // then the object carries this upload's id, and it is this write, acknowledged
            // here with its manifest (without one it would read as unverifiable, and lose
            // the size and frame records that layers above keep in it).
            Err(e) => match self.store.head(&self.key).await {
                Ok(m) if m.layer_meta.get(self.names.manifest) == Some(&self.id) => PutResult {
                    etag: m.etag,
                    version: m.version,
                },
                _ => return Err(e),
            },
        };
        // Every part future ran to completion before complete, so every digest is in.
        let parts = std::mem::take(&mut *self.parts.lock().unwrap())
            .into_iter()
            .collect::<Option<Vec<_>>>();
        let manifest = Manifest {
            version: 2,
            parts,
            upload: self.id.clone(),
            key: self.key.to_string(),
            sha256: hex::encode(std::mem::take(&mut self.hasher).finalize()),
            size: self.size,
            metadata: std::mem::take(&mut self.trailing),
        };
        let body = serde_json::to_vec(&manifest).expect("manifest serializes");
        // The manifest's own digest, so a read can tell a fault in transit from corruption.
        let mut opts = PutOptions::default().content_type("application/json");
        set_layer_meta(
            &mut opts,
            self.names.sha256,
            hex::encode(Sha256::digest(&body)),
        );
        self.store
            .put_opts(&self.names.manifest_key(&self.key), body.into(), opts)
            .await
            .map_err(|e| {
                Error::new(
                    e.kind(),
                    "the object was written but its checksum manifest was not; it reads as \
                 unverifiable until written again",
                )
                .with_operation("put")
                .with_key(self.key.as_str())
                .with_source(e)
            })?;
        Ok(r)
    }
    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
    fn add_trailing_metadata(&mut self, metadata: Metadata) {
        self.trailing.extend(metadata);
    }
}

impl<S: Store> ChecksumStore<S> {
    /// The manifest of `key`, None if there is none. A manifest that does not match its own
    /// digest (written since manifests carry one) or does not parse is read again: it is
    /// corrupt only once [`READS_BEFORE_CORRUPT`] reads returned the very same bad body (a
    /// manifest corrupt at rest reads the same every time). A byte flipped or a body cut short
    /// in transit differs from read to read, so it must not pass for a corrupt (or foreign)
    /// manifest; after `3 * READS_BEFORE_CORRUPT` reads without a verdict the error is
    /// temporary.
    pub(super) async fn read_manifest(&self, key: &Key) -> Result<Option<Manifest>> {
        let mkey = self.names.manifest_key(key);
        let mut bad = BadReads::default();
        let mut last: Option<Error> = None;
        for read in 1..=3 * READS_BEFORE_CORRUPT {
            let r = match self.inner.get_opts(&mkey, GetOptions::default()).await {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            let recorded = r.meta.layer_meta.get(self.names.sha256).cloned();
            let raw = match r.bytes().await {
                Ok(b) => b,
                Err(e) if e.is_temporary() => {
                    tracing::warn!(%key, read, error = %e, "checksum manifest broke off; reading it again");
                    last = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let actual: [u8; 32] = Sha256::digest(&raw).into();
            let why = match recorded {
                Some(d) if !hex::encode(actual).eq_ignore_ascii_case(d.trim()) => format!(
                    "SHA-256 mismatch: recorded {d}, read {}",
                    hex::encode(actual)
                ),
                _ => match serde_json::from_slice(&raw) {
                    Ok(m) => return Ok(Some(m)),
                    Err(e) => e.to_string(),
                },
            };
            if bad.corrupt(actual) {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!(
                        "checksum manifest is corrupt: {why} on each of {READS_BEFORE_CORRUPT} reads"
                    ),
                )
                .with_store(self)
                .with_key(key.as_str()));
            }
            tracing::warn!(%key, read, %why, "checksum manifest does not verify; reading it again");
            last = Some(
                Error::new(
                    ErrorKind::Network,
                    format!("checksum manifest reads differed from one another (faults in transit); last: {why}"),
                )
                .set_temporary(true),
            );
        }
        // No body came back bad the same way on enough reads: faults in transit, not
        // corruption; the question stays open (a temporary error).
        Err(last
            .expect("at least one read")
            .with_store(self)
            .with_key(key.as_str()))
    }

    /// Merges a multipart object's manifest into `meta` if it belongs to this very upload, and
    /// returns its part list, if it has one.
    pub(super) async fn merge_manifest(
        &self,
        key: &Key,
        meta: &mut ObjectMeta,
    ) -> Result<Option<Vec<PartDigest>>> {
        let Some(id) = meta.layer_meta.get(self.names.manifest).cloned() else {
            return Ok(None);
        };
        let Some(m) = self.read_manifest(key).await? else {
            tracing::warn!(%key, "multipart object has no checksum manifest: unverifiable");
            return Ok(None);
        };
        // The upload id binds: copies carry the manifest verbatim, so `m.key` may differ.
        if m.upload != id {
            tracing::warn!(%key, "checksum manifest belongs to another upload: unverifiable");
            return Ok(None);
        }
        for (k, v) in m.metadata {
            if crate::layer::stack::is_reserved(&k) {
                meta.layer_meta.insert(k, v);
            }
        }
        meta.layer_meta
            .insert(self.names.sha256.to_string(), m.sha256);
        Ok(m.parts)
    }
}
