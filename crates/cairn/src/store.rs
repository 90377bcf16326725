//! The backend contract ([`Store`]) and the user API ([`StoreExt`]).

use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// User metadata: lowercase ASCII names to UTF-8 values, passed through every layer unchanged.
pub type Metadata = BTreeMap<String, String>;

/// Metadata names starting with this prefix belong to cairn's layers, not to the user.
pub const RESERVED_META_PREFIX: &str = "cairn-";

/// What a store can do. Layers, the CLI and tests read this; nobody guesses from a name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities {
    /// `PutMode::Create` is enforced atomically (If-None-Match: *).
    pub conditional_create: bool,
    /// `PutMode::Update(etag)` is enforced atomically (If-Match on PUT).
    pub conditional_update: bool,
    /// A multipart upload's `PutMode` (create-only or if-match) is enforced atomically when
    /// it completes. Where false (S3: object_store sends no condition on completion), it is
    /// checked when the upload starts and again just before it completes: a writer that
    /// lands in between is overwritten.
    pub conditional_update_multipart: bool,
    /// `GetOptions::if_match` is enforced.
    pub conditional_get: bool,
    /// User metadata and content type are stored with the object.
    pub metadata: bool,
    /// Server-side copy.
    pub copy: bool,
    /// Multipart upload primitives exist (otherwise the writer buffers into one put).
    pub multipart: bool,
    /// Smallest part but the last, in bytes.
    pub min_part_size: u64,
    /// Largest part, in bytes.
    pub max_part_size: u64,
    /// Most parts in one upload.
    pub max_parts: u32,
    /// The server verifies an `x-amz-checksum-sha256` sent with the upload.
    pub server_checksum: bool,
    /// The store retries transient faults itself (object_store's client does for S3).
    pub retries_internally: bool,
    /// The store is on this machine: no network faults, cheap requests.
    pub local: bool,
    /// Part-sized buffers the layers hold per part in flight, beyond the part itself (one per
    /// compressing or encrypting layer): the transfer engine counts them in its memory budget.
    pub part_copies: u32,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            conditional_create: true,
            conditional_update: true,
            conditional_update_multipart: true,
            conditional_get: true,
            metadata: true,
            copy: true,
            multipart: true,
            min_part_size: 5 * 1024 * 1024,
            max_part_size: 5 * 1024 * 1024 * 1024,
            max_parts: 10_000,
            server_checksum: false,
            retries_internally: false,
            local: true,
            part_copies: 0,
        }
    }
}

/// How a put treats an existing object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PutMode {
    /// Replace whatever is there.
    #[default]
    Overwrite,
    /// Fail with `AlreadyExists` if the key exists (If-None-Match: *).
    Create,
    /// Fail with `PreconditionFailed` unless the current ETag matches (If-Match).
    Update(String),
}

/// Options for a put.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Condition on the existing object.
    pub mode: PutMode,
    /// MIME type stored with the object.
    pub content_type: Option<String>,
    /// User metadata stored with the object.
    pub metadata: Metadata,
    /// S3 storage class (ignored by stores without classes).
    pub storage_class: Option<String>,
    /// Per-put layer settings, e.g. `compression = "none"`, read by layers that know them.
    pub layer_hints: BTreeMap<String, String>,
}

impl PutOptions {
    /// Options with a content type.
    pub fn content_type(mut self, ct: impl Into<String>) -> Self {
        self.content_type = Some(ct.into());
        self
    }
    /// Adds one user metadata entry.
    pub fn meta(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.metadata.insert(k.into(), v.into());
        self
    }
    /// Sets the put mode.
    pub fn mode(mut self, mode: PutMode) -> Self {
        self.mode = mode;
        self
    }
}

/// The result of a put.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutResult {
    /// The new object's ETag, if the store has them.
    pub etag: Option<String>,
    /// The new object's version, if the store versions objects.
    pub version: Option<String>,
}

/// Which bytes of an object to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetRange {
    /// Bytes `start..end`.
    Bounded(Range<u64>),
    /// Bytes from `offset` to the end.
    Offset(u64),
    /// The last `n` bytes.
    Suffix(u64),
}

impl GetRange {
    /// Resolves against an object of `size` bytes, clamping the end like HTTP does.
    pub fn resolve(&self, size: u64) -> Result<Range<u64>> {
        let r = match self {
            GetRange::Bounded(r) => {
                if r.start > r.end {
                    return Err(Error::invalid(format!(
                        "range {}..{} is reversed",
                        r.start, r.end
                    )));
                }
                r.start..r.end.min(size)
            }
            GetRange::Offset(o) => *o..size,
            GetRange::Suffix(n) => size.saturating_sub(*n)..size,
        };
        if r.start >= size && !(size == 0 && r.start == 0) && r.start != r.end {
            return Err(Error::invalid(format!(
                "range starts at {} but the object has {size} bytes",
                r.start
            )));
        }
        Ok(r.start.min(size)..r.end.max(r.start.min(size)))
    }
}

impl From<Range<u64>> for GetRange {
    fn from(r: Range<u64>) -> Self {
        GetRange::Bounded(r)
    }
}

/// Options for a get.
#[derive(Debug, Clone, Default)]
pub struct GetOptions {
    /// Only these bytes.
    pub range: Option<GetRange>,
    /// Fail with `PreconditionFailed` unless the ETag matches.
    pub if_match: Option<String>,
    /// Return the bytes as stored: layers that transform bytes (compression, encryption) pass
    /// them through untouched; the checksum layer still verifies them. For `cairn verify`, and
    /// for copying encrypted objects without their key.
    pub raw: bool,
    /// This version instead of the current one (stores that keep versions; others answer
    /// `Unsupported`).
    pub version: Option<String>,
}

/// What a head or list tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The object's key (relative to the store's root/prefix).
    pub key: Key,
    /// The logical size in bytes: what a full read returns. In a listing through a layer that
    /// transforms bytes (compression, encryption) it is the stored size until resolved: see
    /// [`ObjectMeta::size_known`].
    pub size: u64,
    /// Bytes as stored, after compression and encryption.
    pub stored_size: u64,
    /// Whether `size` is the logical size. `head` and `get` always know it; a listing does not
    /// where a layer may have transformed the object (a listing carries no metadata). Resolve
    /// with [`StoreExt::resolve_size`].
    pub size_known: bool,
    /// ETag, if the store has them.
    pub etag: Option<String>,
    /// Last modification time.
    pub last_modified: DateTime<Utc>,
    /// MIME type (head only; lists leave it empty).
    pub content_type: Option<String>,
    /// User metadata (head only; lists leave it empty). Never holds `cairn-*` names.
    pub metadata: Metadata,
    /// The layers' own records (`cairn-*` names: checksum, compression, encryption, content
    /// digest), kept apart from the user's metadata. Read them with the typed accessors.
    pub layer_meta: Metadata,
    /// Version id, if the store versions objects.
    pub version: Option<String>,
}

impl ObjectMeta {
    /// An object of `size` bytes, stored as is, with no other attributes.
    pub fn new(key: Key, size: u64, last_modified: DateTime<Utc>) -> Self {
        ObjectMeta {
            key,
            size,
            stored_size: size,
            size_known: true,
            etag: None,
            last_modified,
            content_type: None,
            metadata: Metadata::new(),
            layer_meta: Metadata::new(),
            version: None,
        }
    }

    /// Splits metadata read from a backend into the user's and the layers' (`cairn-*`).
    pub fn with_stored_metadata(mut self, all: Metadata) -> Self {
        let (layer, user): (Metadata, Metadata) = all
            .into_iter()
            .partition(|(k, _)| crate::layer::stack::is_reserved(k));
        self.metadata = user;
        self.layer_meta = layer;
        self
    }

    /// The SHA-256 of the stored bytes the checksum layer recorded (lowercase hex).
    pub fn stored_sha256(&self) -> Option<&str> {
        self.layer_meta
            .get(crate::layer::checksum::SHA256_META)
            .map(String::as_str)
    }

    /// The compression algorithm the object is stored with (`zstd`, `gzip`), if any.
    pub fn compression(&self) -> Option<&str> {
        self.layer_meta
            .get(crate::layer::compress::COMPRESSION_META)
            .map(String::as_str)
    }

    /// The id of the key the object is encrypted with, if it is encrypted.
    pub fn encryption_key_id(&self) -> Option<&str> {
        if !self
            .layer_meta
            .contains_key(crate::layer::encrypt::ENCRYPTION_META)
        {
            return None;
        }
        Some(
            self.layer_meta
                .get(crate::layer::encrypt::KEY_ID_META)
                .map(String::as_str)
                .unwrap_or(""),
        )
    }

    /// Whether a layer transformed the stored bytes (compressed or encrypted).
    pub fn is_transformed(&self) -> bool {
        self.compression().is_some()
            || self
                .layer_meta
                .contains_key(crate::layer::encrypt::ENCRYPTION_META)
    }
}

/// The result of a get: metadata plus a byte stream.
pub struct GetResult {
    /// The object's metadata.
    pub meta: ObjectMeta,
    /// The byte range this body covers.
    pub range: Range<u64>,
    /// The body.
    pub body: BoxStream<'static, Result<Bytes>>,
    /// Set by a layer that has already checked this whole body against this SHA-256 (hex),
    /// so the checksum layer above does not hash it again (the tiered store's hot reads).
    /// Only layers set it, in the process: it never comes from storage.
    pub verified_sha256: Option<String>,
}

impl fmt::Debug for GetResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetResult")
            .field("meta", &self.meta)
            .field("range", &self.range)
            .finish()
    }
}

impl GetResult {
    /// Collects the body into one buffer.
    pub async fn bytes(self) -> Result<Bytes> {
        let len = (self.range.end - self.range.start) as usize;
        let mut chunks: Vec<Bytes> = self.body.try_collect().await?;
        if chunks.len() == 1 {
            return Ok(chunks.pop().unwrap());
        }
        let mut out = Vec::with_capacity(len);
        for c in chunks {
            out.extend_from_slice(&c);
        }
        Ok(out.into())
    }
}

/// Options for a listing.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Raw string prefix, S3 style: `a/b` matches `a/b/c` and `a/bc`; "" lists everything.
    pub prefix: String,
    /// One level only: keys below the next `/` after the prefix fold into [`ListEntry::Prefix`].
    pub delimiter: bool,
    /// Only keys strictly greater than this one.
    pub start_after: Option<String>,
}

impl ListOptions {
    /// A recursive listing under `prefix`.
    pub fn recursive(prefix: impl Into<String>) -> Self {
        ListOptions {
            prefix: prefix.into(),
            ..Default::default()
        }
    }
    /// A one-level listing under `prefix`.
    pub fn shallow(prefix: impl Into<String>) -> Self {
        ListOptions {
            prefix: prefix.into(),
            delimiter: true,
            ..Default::default()
        }
    }
}

/// One item of a listing, in ascending key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListEntry {
    /// An object.
    Object(ObjectMeta),
    /// A common prefix, ending in `/` (only in delimiter listings).
    Prefix(String),
    /// Something the store holds under a name cairn cannot express as a [`Key`] (`a//b`, a
    /// `.` or `..` segment, a `\`; in a delimiter listing possibly a whole prefix). Nothing
    /// can name it to read, copy or delete it, so it is listed for the caller to report,
    /// never skipped silently.
    Unlisted {
        /// The raw name, relative to the listed store like any key.
        name: String,
        /// Why it cannot be a key.
        reason: String,
    },
}

impl ListEntry {
    /// The entry's name: the key, the prefix, or the raw name of an unlisted one.
    pub fn name(&self) -> &str {
        match self {
            ListEntry::Object(m) => m.key.as_str(),
            ListEntry::Prefix(p) => p,
            ListEntry::Unlisted { name, .. } => name,
        }
    }
}

/// Options for a copy.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// Fail with `AlreadyExists` if the destination exists.
    pub if_not_exists: bool,
}

/// A multipart upload in progress: the backend primitive under [`crate::transfer::Writer`].
///
/// Parts are numbered in the order `put_part` is called; their futures may run concurrently.
#[async_trait]
pub trait MultipartUpload: Send + fmt::Debug {
    /// Starts uploading the next part; the future resolves when the part is stored.
    fn put_part(&mut self, data: Bytes) -> futures::future::BoxFuture<'static, Result<()>>;
    /// Commits all parts into the object, once every part future has resolved.
    async fn complete(&mut self) -> Result<PutResult>;
    /// Discards the upload and its parts.
    async fn abort(&mut self) -> Result<()>;

    /// Adds metadata known only once every part is written (a digest, a logical size), before
    /// `complete`. Layers pass it down; the checksum layer records it in the object's manifest
    /// (see [`crate::layer::checksum`]). Stores that fix metadata at creation ignore it.
    fn add_trailing_metadata(&mut self, metadata: Metadata) {
        let _ = metadata;
    }
}

/// The contract a backend or layer implements. Users call [`StoreExt`].
#[async_trait]
pub trait Store: fmt::Display + fmt::Debug + Send + Sync + 'static {
    /// What this store can do.
    fn capabilities(&self) -> Capabilities;

    /// Writes a whole object.
    async fn put_opts(&self, key: &Key, data: Bytes, opts: PutOptions) -> Result<PutResult>;

    /// Starts a multipart upload. Metadata and content type are fixed here.
    async fn put_multipart_opts(
        &self,
        key: &Key,
        opts: PutOptions,
    ) -> Result<Box<dyn MultipartUpload>>;

    /// Reads an object or a range of it.
    async fn get_opts(&self, key: &Key, opts: GetOptions) -> Result<GetResult>;

    /// Reads an object's metadata.
    async fn head(&self, key: &Key) -> Result<ObjectMeta>;

    /// Deletes an object; deleting a missing object succeeds.
    async fn delete(&self, key: &Key) -> Result<()>;

    /// Deletes many objects, yielding one result per key in any order.
    fn delete_stream<'a>(&'a self, keys: BoxStream<'a, Key>) -> BoxStream<'a, (Key, Result<()>)> {
        keys.map(move |k| async move {
            let r = self.delete(&k).await;
            (k, r)
        })
        .buffer_unordered(16)
        .boxed()
    }

    /// Lists objects in key order, paginated internally, in bounded memory.
    fn list(&self, opts: ListOptions) -> BoxStream<'static, Result<ListEntry>>;

    /// Copies an object within the store.
    async fn copy_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()>;

    /// Checks that the store is reachable, authenticated and permitted; says which if not.
    async fn health_check(&self) -> Result<()>;

    /// How this store records content digests of new objects ([`crate::digest`]). Layers
    /// forward it; the encryption layer answers with its keyed scheme while it encrypts.
    fn digest_scheme(&self) -> crate::digest::DigestScheme {
        crate::digest::DigestScheme::Sha256
    }

    /// The S3 server behind this store, for presigned URLs, versions, multipart uploads and
    /// stats by storage class; `None` for local and memory stores. Layers pass it up (see
    /// [`crate::server_side`]).
    fn server_side(&self) -> Option<crate::server_side::ServerSide> {
        None
    }

    /// Moves `from` to `to` (replacing it, or failing with `AlreadyExists` under
    /// `opts.if_not_exists`). Stores that can move atomically do (the local store renames the
    /// file); the default copies, then deletes `from`.
    async fn rename_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        self.copy_opts(from, to, opts).await?;
        self.delete(from).await
    }
}

#[async_trait]
impl<S: Store + ?Sized> Store for Arc<S> {
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    async fn put_opts(&self, key: &Key, data: Bytes, opts: PutOptions) -> Result<PutResult> {
        (**self).put_opts(key, data, opts).await
    }
    async fn put_multipart_opts(
        &self,
        key: &Key,
        opts: PutOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        (**self).put_multipart_opts(key, opts).await
    }
    async fn get_opts(&self, key: &Key, opts: GetOptions) -> Result<GetResult> {
        (**self).get_opts(key, opts).await
    }
    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        (**self).head(key).await
    }
    async fn delete(&self, key: &Key) -> Result<()> {
        (**self).delete(key).await
    }
    fn delete_stream<'a>(&'a self, keys: BoxStream<'a, Key>) -> BoxStream<'a, (Key, Result<()>)> {
        (**self).delete_stream(keys)
    }
    fn list(&self, opts: ListOptions) -> BoxStream<'static, Result<ListEntry>> {
        (**self).list(opts)
    }
    async fn copy_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        (**self).copy_opts(from, to, opts).await
    }
    async fn health_check(&self) -> Result<()> {
        (**self).health_check().await
    }
    fn digest_scheme(&self) -> crate::digest::DigestScheme {
        (**self).digest_scheme()
    }

    fn server_side(&self) -> Option<crate::server_side::ServerSide> {
        (**self).server_side()
    }
    async fn rename_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        (**self).rename_opts(from, to, opts).await
    }
}

/// A shared, type-erased store.
pub type DynStore = Arc<dyn Store>;

/// The calls users write, on top of any [`Store`].
#[async_trait]
pub trait StoreExt: Store {
    /// Writes `data` to `key`, replacing any object there.
    async fn put(&self, key: &Key, data: impl Into<Bytes> + Send) -> Result<PutResult> {
        self.put_opts(key, data.into(), PutOptions::default()).await
    }

    /// Reads the whole object. Nothing is handed over before the read ends, so a streamed
    /// check that failed (a byte flipped in transit) is read again, by the checksum layer's
    /// rule: corrupt once the same bad bytes came back 3 times.
    async fn get(&self, key: &Key) -> Result<Bytes> {
        crate::layer::checksum::reread_on_mismatch("get", key, || async {
            self.get_opts(key, GetOptions::default())
                .await?
                .bytes()
                .await
        })
        .await
    }

    /// Reads a byte range (read again like [`StoreExt::get`]).
    async fn get_range(&self, key: &Key, range: impl Into<GetRange> + Send) -> Result<Bytes> {
        let opts = GetOptions {
            range: Some(range.into()),
            ..Default::default()
        };
        crate::layer::checksum::reread_on_mismatch("get", key, || async {
            self.get_opts(key, opts.clone()).await?.bytes().await
        })
        .await
    }

    /// Reads the object as a stream of chunks.
    async fn get_stream(&self, key: &Key) -> Result<BoxStream<'static, Result<Bytes>>> {
        Ok(self.get_opts(key, GetOptions::default()).await?.body)
    }

    /// Whether the object exists.
    async fn exists(&self, key: &Key) -> Result<bool> {
        match self.head(key).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes many keys; returns the keys that failed with their errors.
    async fn delete_many(&self, keys: Vec<Key>) -> Vec<(Key, Error)> {
        self.delete_stream(futures::stream::iter(keys).boxed())
            .filter_map(|(k, r)| async move { r.err().map(|e| (k, e)) })
            .collect()
            .await
    }

    /// Every object under `prefix`, recursively. An object whose name cannot be a key
    /// ([`ListEntry::Unlisted`]) is an [`ErrorKind::Unrepresentable`] error item keyed by
    /// its name, and the listing goes on after it.
    fn list_objects(&self, prefix: &str) -> BoxStream<'static, Result<ObjectMeta>> {
        self.list(ListOptions::recursive(prefix))
            .try_filter_map(|e| async move {
                match e {
                    ListEntry::Object(m) => Ok(Some(m)),
                    ListEntry::Prefix(_) => Ok(None),
                    ListEntry::Unlisted { name, reason } => Err(Error::unlisted(&name, &reason)),
                }
            })
            .boxed()
    }

    /// `meta` with its logical size: a listing entry whose size is not known
    /// ([`ObjectMeta::size_known`]) is completed with a `head`; others come back as they are.
    async fn resolve_size(&self, meta: ObjectMeta) -> Result<ObjectMeta> {
        if meta.size_known {
            return Ok(meta);
        }
        let h = self.head(&meta.key).await?;
        Ok(ObjectMeta {
            size: h.size,
            size_known: true,
            layer_meta: h.layer_meta,
            ..meta
        })
    }

    /// Copies `from` to `to`, replacing `to`.
    async fn copy(&self, from: &Key, to: &Key) -> Result<()> {
        self.copy_opts(from, to, CopyOptions::default()).await
    }

    /// Moves `from` to `to`, replacing `to` ([`Store::rename_opts`]).
    async fn rename(&self, from: &Key, to: &Key) -> Result<()> {
        self.rename_opts(from, to, CopyOptions::default()).await
    }

    /// The S3 server behind the store, or `Unsupported` naming `what` needed it.
    fn server(&self, what: &str) -> Result<crate::server_side::ServerSide> {
        self.server_side()
            .ok_or_else(|| crate::server_side::unsupported(self, what))
    }

    /// Reads one version of `key` whole, through the store's layers.
    async fn get_version(&self, key: &Key, version_id: &str) -> Result<Bytes> {
        crate::backend::s3::admin::check_version_id(version_id)?;
        let opts = GetOptions {
            version: Some(version_id.to_string()),
            ..Default::default()
        };
        self.get_opts(key, opts).await?.bytes().await
    }

    /// A URL allowing `method` on `key` for `expires` (1 s to 7 days) without credentials.
    async fn presign(
        &self,
        key: &Key,
        method: crate::backend::s3::admin::PresignMethod,
        expires: std::time::Duration,
    ) -> Result<url::Url> {
        self.server("a presigned URL")?
            .presign(method, key, expires)
            .await
    }

    /// Every version and delete marker under `prefix`, one server page in memory at a time.
    fn list_versions(
        &self,
        prefix: &str,
    ) -> BoxStream<'static, Result<crate::backend::s3::admin::ObjectVersion>> {
        match self.server("listing versions") {
            Ok(s) => s.list_versions(prefix),
            Err(e) => futures::stream::once(async { Err(e) }).boxed(),
        }
    }

    /// Object count and stored bytes under `prefix`, in total, by storage class (S3) and by
    /// the first `depth` levels of the key, from one streamed listing.
    async fn stats(&self, prefix: &str, depth: usize) -> Result<crate::stats::StorageStats> {
        self.stats_reported(prefix, depth, &crate::ops::NoReporter)
            .await
    }

    /// [`StoreExt::stats`], reporting each object counted as `on_discovered(1, size)`, for
    /// progress over a long listing.
    async fn stats_reported(
        &self,
        prefix: &str,
        depth: usize,
        reporter: &dyn crate::ops::Reporter,
    ) -> Result<crate::stats::StorageStats> {
        crate::key::validate_prefix(prefix)?;
        match self.server_side() {
            Some(s) => s.stats(prefix, depth, reporter).await,
            None => crate::stats::over_listing(self, prefix, depth, reporter).await,
        }
    }
}

impl<S: Store + ?Sized> StoreExt for S {}
