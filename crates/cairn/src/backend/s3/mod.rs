//! The S3 store: object_store's `AmazonS3` for data, configured from one [`Config`].
//!
//! - Works with any endpoint (AWS, R2, MinIO, Garage, Ceph, moto); provider differences are
//!   data in [`quirks`], read through [`S3Store::capabilities`].
//! - Credentials: static keys from the config, else aws-config's default chain
//!   ([`credentials`]). They never appear in Display, Debug, errors or logs.
//! - Retries happen inside object_store, configured from cairn's
//!   [`RetryPolicy`](crate::layer::retry::RetryPolicy); the store declares
//!   `retries_internally` so no second retry layer is stacked on it.
//! - Errors of both S3 clients go through one mapping, [`error::classify`].
//! - Bucket administration (versioning, lifecycle, encryption) lives in [`admin`].
//!
//! Capability checklist (per provider, see [`quirks`]): conditional create/update (where the
//! server enforces them; otherwise a non-atomic head-then-write check), conditional get,
//! metadata and content type, server-side copy, multipart (5 MiB .. 5 GiB parts, 10 000
//! parts), ranged reads, delimiter listings, batch delete.
//!
//! A multipart upload with `PutMode::Create`/`Update` is checked when it starts and again
//! before it completes, never atomically: object_store cannot send conditions on completion.

pub mod admin;
mod client;
mod credentials;
pub(crate) mod error;
mod http_metrics;
mod journal;
mod list;
mod metadata;
pub mod quirks;
mod throttle;

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::store::*;
use async_trait::async_trait;
use bytes::Bytes;
use client::Settings;
use error::Scope;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use quirks::{CopyIfNotExists, Quirks};
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

pub use quirks::PROVIDERS;

/// Opens an S3 store for `bucket` with `config`.
pub async fn open(bucket: &str, config: &Config) -> Result<DynStore> {
    Ok(Arc::new(S3Store::new(bucket, config).await?))
}

/// What every error of this store carries: the store's name and its provider's quirks.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub name: Arc<str>,
    pub quirks: &'static Quirks,
}

impl Ctx {
    pub(crate) fn err(
        &self,
        e: object_store::Error,
        op: &'static str,
        key: Option<&str>,
        scope: Scope,
    ) -> Error {
        error::from_object_store(e, op, &self.name, key, scope, self.quirks)
    }
}

/// A store over one S3 bucket.
pub struct S3Store {
    s3: Arc<AmazonS3>,
    settings: Arc<Settings>,
    ctx: Ctx,
    /// The aws-sdk-s3 client, built on first use (object ACLs only; object_store has none).
    admin: Arc<std::sync::OnceLock<admin::Admin>>,
}

impl S3Store {
    /// Builds the store. No request is made (see [`Store::health_check`]) unless a killed
    /// cairn left multipart uploads open in the bucket: those are aborted first, so a re-run
    /// that finds nothing left to write still cleans up after the run it repeats.
    pub async fn new(bucket: &str, config: &Config) -> Result<S3Store> {
        let store = S3Store::build(bucket, config).await?;
        // Boxed: inlined, this future's type nests too deep for the CLI's async commands.
        Box::pin(store.reap()).await;
        Ok(store)
    }

    async fn build(bucket: &str, config: &Config) -> Result<S3Store> {
        let settings = Settings::resolve(bucket, config).await.map_err(|e| {
            e.with_operation("open")
                .with_store(format!("s3://{bucket}"))
        })?;
        let s3 = settings.object_store()?;
        let ctx = Ctx {
            name: format!("s3://{bucket}").into(),
            quirks: settings.quirks,
        };
        Ok(S3Store {
            s3: Arc::new(s3),
            settings: Arc::new(settings),
            ctx,
            admin: Default::default(),
        })
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.settings.bucket
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.settings.region
    }

    /// The endpoint URL, if not AWS's default.
    pub fn endpoint(&self) -> Option<&str> {
        self.settings.endpoint.as_deref()
    }

    /// The provider whose quirks apply.
    pub fn provider(&self) -> &'static str {
        self.settings.quirks.name
    }

    /// An administration client built from the same settings.
    pub fn admin(&self) -> admin::Admin {
        admin::Admin::from_settings(Arc::clone(&self.settings), Arc::clone(&self.s3))
    }

    /// Who this store is in the upload journal: endpoint and bucket, never credentials.
    fn journal_id(&self) -> String {
        let s = &self.settings;
        match &s.endpoint {
            Some(e) => format!("{e}/{}", s.bucket),
            None => format!("aws:{}/{}", s.region, s.bucket),
        }
    }

    /// Before this process's first write to the bucket: aborts every upload a killed cairn
    /// left open in it ([`journal`]), whatever key it was for; every write waits for that, so
    /// none of this process's own uploads can be mistaken for an orphan. An abort that fails
    /// is a warning naming the key (the write itself does not depend on it), and its record
    /// stays for the next cairn.
    async fn reap(&self) {
        let Some(j) = journal::get() else { return };
        let id = self.journal_id();
        j.reaped(&id)
            .get_or_init(|| async {
                let orphans = j.take_orphans(&id);
                if orphans.is_empty() {
                    return;
                }
                let admin = self.admin();
                for o in orphans {
                    match journal::abort(&admin, &o).await {
                        Ok(n) => {
                            tracing::info!(
                                "aborted {n} multipart upload(s) a killed cairn left open at \
                                 {self}/{}",
                                o.key
                            );
                            j.resolved(&o);
                        }
                        Err(e) => tracing::warn!(
                            "could not abort the multipart upload a killed cairn left open at \
                             {self}/{} ({e}); `cairn multipart abort` removes it",
                            o.key
                        ),
                    }
                }
            })
            .await;
    }

    /// The canned ACL a put asks for (`layer_hints["acl"]`, set by `sync --acl`), checked
    /// before anything is written.
    fn acl_of(&self, opts: &PutOptions, key: &Key) -> Result<Option<String>> {
        let Some(acl) = opts.layer_hints.get("acl") else {
            return Ok(None);
        };
        admin::check_canned_acl(acl).map_err(|e| {
            e.with_operation("put")
                .with_store(self)
                .with_key(key.as_str())
        })?;
        Ok(Some(acl.clone()))
    }

    /// Applies a canned ACL after the object is written (object_store sends no ACL header).
    async fn apply_acl(&self, key: &Key, acl: &str) -> Result<()> {
        let admin = self.admin.get_or_init(|| {
            admin::Admin::from_settings(Arc::clone(&self.settings), Arc::clone(&self.s3))
        });
        admin
            .put_object_acl(key.as_str(), acl)
            .await
            .map_err(|e| e.with_store(self))
    }

    fn path(&self, op: &'static str, key: &Key) -> Result<Path> {
        Path::parse(key.as_str()).map_err(|e| {
            Error::invalid(format!("key cannot be expressed as an S3 object path: {e}"))
                .with_operation(op)
                .with_store(self)
                .with_key(key.as_str())
        })
    }

    fn err(&self, e: object_store::Error, op: &'static str, key: &Key) -> Error {
        self.ctx.err(e, op, Some(key.as_str()), Scope::Object)
    }

    /// A put condition the server does not enforce, checked by a head first (not atomic).
    async fn check_mode(&self, op: &'static str, key: &Key, mode: &PutMode) -> Result<()> {
        if *mode == PutMode::Overwrite {
            return Ok(());
        }
        let current = match self.head(key).await {
            Ok(m) => Some(m.etag.unwrap_or_default()),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        crate::backend::memory::check_mode(mode, current.as_deref())
            .map_err(|e| e.with_operation(op).with_store(self).with_key(key.as_str()))
    }

    fn enforced(&self, mode: &PutMode) -> bool {
        match mode {
            PutMode::Overwrite => true,
            PutMode::Create => self.ctx.quirks.conditional_create,
            PutMode::Update(_) => self.ctx.quirks.conditional_update,
        }
    }

    async fn delete_batch(&self, keys: Vec<Key>) -> Vec<(Key, Result<()>)> {
        let mut out = Vec::with_capacity(keys.len());
        let mut paths = Vec::with_capacity(keys.len());
        for k in keys {
            match self.path("delete", &k) {
                Ok(p) => paths.push((k, p)),
                Err(e) => out.push((k, Err(e))),
            }
        }
        let input = stream::iter(paths.iter().map(|(_, p)| Ok(p.clone())).collect::<Vec<_>>());
        let results: Vec<object_store::Result<Path>> =
            self.s3.delete_stream(input.boxed()).collect().await;
        let mut deleted = HashSet::new();
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok(p) => {
                    deleted.insert(p.to_string());
                }
                Err(e) => errors.push(e),
            }
        }
        for (k, p) in paths {
            if deleted.contains(p.as_ref()) {
                out.push((k, Ok(())));
                continue;
            }
            // A per-key failure names its key; a failed request applies to the whole batch.
            let needle = format!("for key {p}:");
            let e = errors
                .iter()
                .find(|e| e.to_string().contains(&needle))
                .or(errors.first());
            let err = match e {
                Some(e) => error::describe(
                    e,
                    "delete",
                    self,
                    Some(k.as_str()),
                    Scope::Object,
                    self.ctx.quirks,
                )
                .with_source(e.to_string()),
                None => Error::new(
                    ErrorKind::Unexpected,
                    "the server did not report this key as deleted",
                )
                .with_operation("delete")
                .with_store(self)
                .with_key(k.as_str()),
            };
            // object_store sends the batch once on a timeout or a broken reply (a POST): those
            // keys go again one by one, each retried like `delete`.
            let r = if err.is_temporary() {
                self.delete(&k).await
            } else {
                Err(err)
            };
            out.push((k, r));
        }
        out
    }
}

impl fmt::Display for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.ctx.name)
    }
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Settings' Debug redacts credentials and SSE-C keys; AmazonS3's own Debug is not shown.
        write!(f, "S3Store({:?})", self.settings)
    }
}

fn to_os_range(r: &GetRange) -> object_store::GetRange {
    match r {
        GetRange::Bounded(r) => object_store::GetRange::Bounded(r.clone()),
        GetRange::Offset(o) => object_store::GetRange::Offset(*o),
        GetRange::Suffix(n) => object_store::GetRange::Suffix(*n),
    }
}

/// Ranges answered from a head instead of a ranged GET: those that select no bytes (HTTP
/// cannot ask for them), and suffixes, which need the size first: servers answer a suffix of
/// an empty object inconsistently (moto with an error, Garage with a Content-Range that
/// object_store 0.14 overflows on), where every other store returns empty bytes.
fn empty_range(r: &GetRange) -> bool {
    match r {
        GetRange::Bounded(r) => r.start >= r.end,
        GetRange::Suffix(_) => true,
        _ => false,
    }
}

#[async_trait]
impl Store for S3Store {
    fn capabilities(&self) -> Capabilities {
        let q = self.ctx.quirks;
        Capabilities {
            conditional_create: q.conditional_create,
            conditional_update: q.conditional_update,
            // A head at the start and another before completion: never atomic.
            conditional_update_multipart: false,
            conditional_get: q.conditional_get,
            metadata: true,
            copy: true,
            multipart: true,
            min_part_size: q.min_part_size,
            max_part_size: q.max_part_size,
            max_parts: q.max_parts,
            server_checksum: q.server_checksum,
            retries_internally: true,
            local: false,
            part_copies: 0,
        }
    }

    async fn put_opts(&self, key: &Key, data: Bytes, opts: PutOptions) -> Result<PutResult> {
        let path = self.path("put", key)?;
        let acl = self.acl_of(&opts, key)?;
        self.reap().await;
        let attributes = metadata::to_attributes(&opts, self.ctx.quirks.underscore_headers)
            .map_err(|e| {
                e.with_operation("put")
                    .with_store(self)
                    .with_key(key.as_str())
            })?;
        let mode = if self.enforced(&opts.mode) {
            match &opts.mode {
                PutMode::Overwrite => object_store::PutMode::Overwrite,
                PutMode::Create => object_store::PutMode::Create,
                PutMode::Update(etag) => {
                    object_store::PutMode::Update(object_store::UpdateVersion {
                        e_tag: Some(etag.clone()),
                        version: None,
                    })
                }
            }
        } else {
            self.check_mode("put", key, &opts.mode).await?;
            object_store::PutMode::Overwrite
        };
        let os_opts = object_store::PutOptions {
            mode,
            attributes,
            ..Default::default()
        };
        let r = self
            .s3
            .put_opts(&path, PutPayload::from(data), os_opts)
            .await
            .map_err(|e| self.err(e, "put", key))?;
        if let Some(acl) = acl {
            self.apply_acl(key, &acl).await?;
        }
        Ok(PutResult {
            etag: r.e_tag,
            version: r.version,
        })
    }

    async fn put_multipart_opts(
        &self,
        key: &Key,
        opts: PutOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let path = self.path("put", key)?;
        self.acl_of(&opts, key)?;
        let attributes = metadata::to_attributes(&opts, self.ctx.quirks.underscore_headers)
            .map_err(|e| {
                e.with_operation("put")
                    .with_store(self)
                    .with_key(key.as_str())
            })?;
        self.check_mode("put", key, &opts.mode).await?;
        self.reap().await;
        let os_opts = object_store::PutMultipartOptions {
            attributes,
            ..Default::default()
        };
        // Journaled from before its creation to its end, so a later cairn aborts it if this
        // process is killed meanwhile ([`journal`]).
        let journal = journal::get();
        let n = journal.map(|j| j.begin(&self.journal_id(), key.as_str()));
        // Created in a task of its own: if the caller is cancelled while the server creates
        // the upload, nobody would learn its id, so the task aborts it instead of leaving it
        // open (and `transfer::settle_aborts` waits for that).
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (s3, pending) = (Arc::clone(&self.s3), crate::transfer::Pending::new());
        let task_path = path.clone();
        tokio::spawn(async move {
            let _pending = pending;
            let created = s3.create_multipart_opts(&task_path, os_opts).await;
            if let (Ok(id), Some(j), Some(n)) = (&created, journal, n) {
                j.id(n, id);
            }
            if let Err(Ok(orphan)) = tx.send(created) {
                if s3.abort_multipart(&task_path, &orphan).await.is_ok() {
                    if let (Some(j), Some(n)) = (journal, n) {
                        j.end(n);
                    }
                }
            }
        });
        let created = rx.await.map_err(|_| {
            Error::new(ErrorKind::Unexpected, "the upload's creation was cancelled")
        })?;
        let upload_id = match created {
            Ok(id) => id,
            Err(e) => {
                if let (Some(j), Some(n)) = (journal, n) {
                    j.end(n); // nothing was created
                }
                return Err(self.err(e, "put", key));
            }
        };
        Ok(Box::new(S3Upload {
            path,
            upload_id,
            parts: Default::default(),
            next_part: 0,
            journaled: n,
            store: S3Store {
                s3: Arc::clone(&self.s3),
                settings: Arc::clone(&self.settings),
                ctx: self.ctx.clone(),
                admin: Arc::clone(&self.admin),
            },
            key: key.clone(),
            acl: opts.layer_hints.get("acl").cloned(),
            mode: opts.mode,
        }))
    }

    async fn get_opts(&self, key: &Key, opts: GetOptions) -> Result<GetResult> {
        let path = self.path("get", key)?;
        if let Some(r) = opts.range.as_ref().filter(|r| empty_range(r)) {
            if let GetRange::Bounded(b) = r {
                if b.start > b.end {
                    return Err(Error::invalid(format!(
                        "range {}..{} is reversed",
                        b.start, b.end
                    ))
                    .with_operation("get")
                    .with_store(self)
                    .with_key(key.as_str()));
                }
            }
            let meta = self.head(key).await?;
            if let Some(want) = &opts.if_match {
                if meta.etag.as_deref() != Some(want.as_str()) {
                    return Err(Error::new(
                        ErrorKind::PreconditionFailed,
                        "the ETag does not match",
                    )
                    .with_operation("get")
                    .with_store(self)
                    .with_key(key.as_str()));
                }
            }
            let at = r.resolve(meta.size).map_err(|e| {
                e.with_operation("get")
                    .with_store(self)
                    .with_key(key.as_str())
            })?;
            if at.is_empty() {
                return Ok(GetResult {
                    verified_sha256: None,
                    meta,
                    range: at.start..at.start,
                    body: stream::empty().boxed(),
                });
            }
            // A non-empty suffix, now a bounded range pinned to the object just headed.
            let bounded = GetOptions {
                range: Some(GetRange::Bounded(at)),
                if_match: opts.if_match.clone().or(meta.etag.clone()),
                ..opts
            };
            return self.get_opts(key, bounded).await;
        }
        let os_opts = object_store::GetOptions {
            if_match: opts.if_match.clone(),
            range: opts.range.as_ref().map(to_os_range),
            version: opts.version.clone(),
            ..Default::default()
        };
        let mut r = match self.s3.get_opts(&path, os_opts).await {
            Ok(r) => r,
            Err(e) => {
                let e = self.err(e, "get", key);
                // An offset at the very end selects no bytes: S3 answers 416, every other
                // store empty bytes. A head tells which; past the end stays an error.
                let Some(GetRange::Offset(o)) = opts.range else {
                    return Err(e);
                };
                if e.kind() != ErrorKind::InvalidInput {
                    return Err(e);
                }
                let meta = self.head(key).await?;
                if o != meta.size {
                    return Err(e);
                }
                return Ok(GetResult {
                    verified_sha256: None,
                    meta,
                    range: o..o,
                    body: stream::empty().boxed(),
                });
            }
        };
        let (content_type, metadata) = metadata::from_attributes(&r.attributes);
        r.attributes = Default::default();
        let mut meta = ObjectMeta::new(key.clone(), r.meta.size, r.meta.last_modified)
            .with_stored_metadata(metadata);
        meta.etag = r.meta.e_tag.clone();
        meta.content_type = content_type;
        meta.version = r.meta.version.clone();
        let range = r.range.clone();
        let ctx = self.ctx.clone();
        let k = key.clone();
        let body = r
            .into_stream()
            .map_err(move |e| ctx.err(e, "get", Some(k.as_str()), Scope::Object))
            .boxed();
        Ok(GetResult {
            verified_sha256: None,
            meta,
            range,
            body,
        })
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        let path = self.path("head", key)?;
        // A GET with `head` returns the attributes (user metadata), which `head()` drops.
        let opts = object_store::GetOptions {
            head: true,
            ..Default::default()
        };
        let r = match self.s3.get_opts(&path, opts).await {
            Ok(r) => r,
            Err(e) => {
                let e = self.err(e, "head", key);
                if e.kind() != ErrorKind::PermissionDenied {
                    return Err(e);
                }
                // A 403 to HEAD has no body, so a bad signature looks like a denial (Garage).
                // A GET's error body says which; its own body is never read.
                return match self.s3.get(&path).await {
                    Err(g) => {
                        let g = self.err(g, "head", key);
                        Err(if g.kind() == ErrorKind::Unauthenticated {
                            g
                        } else {
                            e
                        })
                    }
                    Ok(_) => Err(e),
                };
            }
        };
        let (content_type, metadata) = metadata::from_attributes(&r.attributes);
        let mut meta = ObjectMeta::new(key.clone(), r.meta.size, r.meta.last_modified)
            .with_stored_metadata(metadata);
        meta.etag = r.meta.e_tag;
        meta.content_type = content_type;
        meta.version = r.meta.version;
        Ok(meta)
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        let path = self.path("delete", key)?;
        // object_store sends a DELETE once on a timeout or a broken reply (not a "safe"
        // method); S3 deletes are idempotent, so those are repeated here under the store's
        // policy. What object_store did retry comes back persistent and is not repeated.
        self.settings
            .retry
            .run(
                || async {
                    self.s3
                        .delete(&path)
                        .await
                        .map_err(|e| self.err(e, "delete", key))
                },
                |e| e.is_temporary(),
            )
            .await
    }

    fn delete_stream<'a>(&'a self, keys: BoxStream<'a, Key>) -> BoxStream<'a, (Key, Result<()>)> {
        // One DeleteObjects request per 1000 keys, a few in flight.
        keys.chunks(1000)
            .map(move |batch| self.delete_batch(batch))
            .buffered(4)
            .flat_map(stream::iter)
            .boxed()
    }

    fn list(&self, opts: ListOptions) -> BoxStream<'static, Result<ListEntry>> {
        list::list(Arc::clone(&self.s3), self.ctx.clone(), opts)
    }

    async fn copy_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        let (src, dst) = (self.path("copy", from)?, self.path("copy", to)?);
        let mode = if !opts.if_not_exists {
            object_store::CopyMode::Overwrite
        } else if let CopyIfNotExists::Header(_) = self.ctx.quirks.copy_if_not_exists {
            object_store::CopyMode::Create
        } else {
            self.check_mode("copy", to, &PutMode::Create).await?;
            object_store::CopyMode::Overwrite
        };
        let r = self
            .s3
            .copy_opts(&src, &dst, object_store::CopyOptions::new().with_mode(mode))
            .await;
        r.map_err(|e| {
            let e = self.err(e, "copy", to);
            // A missing source is reported against the source key.
            if e.kind() == ErrorKind::NotFound {
                Error::new(ErrorKind::NotFound, "the source object does not exist")
                    .with_operation("copy")
                    .with_store(self)
                    .with_key(from.as_str())
                    .with_source(e)
            } else {
                e
            }
        })
    }

    async fn health_check(&self) -> Result<()> {
        list::probe(&self.s3, &self.ctx).await
    }

    fn server_side(&self) -> Option<crate::server_side::ServerSide> {
        Some(crate::server_side::ServerSide::new(self.admin()))
    }
}

/// A multipart upload through object_store's low-level API (which names the upload, for the
/// journal), plus the key and put condition.
struct S3Upload {
    path: Path,
    upload_id: String,
    /// Part ids by index, filled in as parts are stored.
    parts: Arc<std::sync::Mutex<Vec<Option<PartId>>>>,
    next_part: usize,
    /// Its number in the upload journal.
    journaled: Option<u64>,
    store: S3Store,
    key: Key,
    acl: Option<String>,
    mode: PutMode,
}

impl S3Upload {
    fn journal_end(&mut self) {
        if let (Some(j), Some(n)) = (journal::get(), self.journaled.take()) {
            j.end(n);
        }
    }
}

impl fmt::Debug for S3Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S3Upload({}/{})", self.store, self.key)
    }
}

#[async_trait]
impl MultipartUpload for S3Upload {
    fn put_part(&mut self, data: Bytes) -> BoxFuture<'static, Result<()>> {
        let idx = self.next_part;
        self.next_part += 1;
        let (s3, path, id) = (
            Arc::clone(&self.store.s3),
            self.path.clone(),
            self.upload_id.clone(),
        );
        let parts = Arc::clone(&self.parts);
        let ctx = self.store.ctx.clone();
        let key = self.key.clone();
        Box::pin(async move {
            let part = s3
                .put_part(&path, &id, idx, PutPayload::from(data))
                .await
                .map_err(|e| ctx.err(e, "put", Some(key.as_str()), Scope::Object))?;
            let mut parts = parts.lock().unwrap();
            if parts.len() <= idx {
                parts.resize(idx + 1, None);
            }
            parts[idx] = Some(part);
            Ok(())
        })
    }

    async fn complete(&mut self) -> Result<PutResult> {
        // Not atomic (see the module docs), but it keeps a lost race from overwriting.
        self.store.check_mode("put", &self.key, &self.mode).await?;
        let parts = {
            let stored = self.parts.lock().unwrap();
            (0..self.next_part)
                .map(|i| stored.get(i).cloned().flatten())
                .collect::<Option<Vec<PartId>>>()
        };
        let parts = parts.ok_or_else(|| {
            Error::new(
                ErrorKind::Unexpected,
                "complete was called before every part was stored",
            )
            .with_operation("put")
            .with_store(&self.store)
            .with_key(self.key.as_str())
        })?;
        let r = self
            .store
            .s3
            .complete_multipart(&self.path, &self.upload_id, parts)
            .await
            .map_err(|e| self.store.err(e, "put", &self.key))?;
        self.journal_end();
        if let Some(acl) = &self.acl {
            self.store.apply_acl(&self.key, acl).await?;
        }
        Ok(PutResult {
            etag: r.e_tag,
            version: r.version,
        })
    }

    async fn abort(&mut self) -> Result<()> {
        self.store
            .s3
            .abort_multipart(&self.path, &self.upload_id)
            .await
            .map_err(|e| self.store.err(e, "abort", &self.key))?;
        self.journal_end();
        Ok(())
    }
}
