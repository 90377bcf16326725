//! An in-memory store, for tests and caches.

use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::store::*;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};

#[derive(Debug, Clone)]
struct Entry {
    data: Bytes,
    etag: String,
    last_modified: DateTime<Utc>,
    content_type: Option<String>,
    metadata: Metadata,
}

type Map = Arc<RwLock<BTreeMap<Key, Entry>>>;

/// An in-memory store. Clones share the same objects.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    objects: Map,
    counter: Arc<std::sync::atomic::AtomicU64>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn next_etag(&self) -> String {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("\"{n:x}\"")
    }

    fn not_found(&self, op: &'static str, key: &Key) -> Error {
        Error::new(ErrorKind::NotFound, "")
            .with_operation(op)
            .with_store(self)
            .with_key(key.as_str())
    }

    fn insert(&self, key: &Key, data: Bytes, opts: &PutOptions) -> Result<PutResult> {
        let mut map = self.objects.write().unwrap();
        check_mode(&opts.mode, map.get(key).map(|e| e.etag.as_str())).map_err(|e| {
            e.with_operation("put")
                .with_store(&*self)
                .with_key(key.as_str())
        })?;
        let etag = self.next_etag();
        map.insert(
            key.clone(),
            Entry {
                data,
                etag: etag.clone(),
                last_modified: Utc::now(),
                content_type: opts.content_type.clone(),
                metadata: opts.metadata.clone(),
            },
        );
        Ok(PutResult {
            etag: Some(etag),
            version: None,
        })
    }
}

/// Applies a put condition to the current ETag (None if absent). Shared with the local store.
pub(crate) fn check_mode(mode: &PutMode, current: Option<&str>) -> Result<()> {
    match (mode, current) {
        (PutMode::Create, Some(_)) => Err(Error::new(ErrorKind::AlreadyExists, "the key exists")),
        (PutMode::Update(want), Some(have)) if want != have => Err(Error::new(
            ErrorKind::PreconditionFailed,
            format!("the ETag is {have}, not {want}"),
        )),
        (PutMode::Update(_), None) => Err(Error::new(
            ErrorKind::PreconditionFailed,
            "the object does not exist",
        )),
        _ => Ok(()),
    }
}

impl fmt::Display for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("memory://")
    }
}

fn meta(key: &Key, e: &Entry, full: bool) -> ObjectMeta {
    let mut m = ObjectMeta::new(key.clone(), e.data.len() as u64, e.last_modified);
    m.etag = Some(e.etag.clone());
    if full {
        m.content_type = e.content_type.clone();
        m = m.with_stored_metadata(e.metadata.clone());
    }
    m
}

#[derive(Debug)]
struct MemoryUpload {
    store: MemoryStore,
    key: Key,
    opts: PutOptions,
    parts: Arc<Mutex<Vec<Bytes>>>,
}

#[async_trait]
impl MultipartUpload for MemoryUpload {
    fn put_part(&mut self, data: Bytes) -> BoxFuture<'static, Result<()>> {
        self.parts.lock().unwrap().push(data);
        Box::pin(async { Ok(()) })
    }
    async fn complete(&mut self) -> Result<PutResult> {
        let parts = std::mem::take(&mut *self.parts.lock().unwrap());
        let mut buf = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
        for p in parts {
            buf.extend_from_slice(&p);
        }
        self.store.insert(&self.key, buf.into(), &self.opts)
    }
    async fn abort(&mut self) -> Result<()> {
        self.parts.lock().unwrap().clear();
        Ok(())
    }
}

/// Filters a sorted key stream into list entries, folding keys below the delimiter.
/// Shared by stores that list by walking keys in order (memory, local).
pub(crate) fn fold_listing<I>(items: I, opts: &ListOptions) -> Vec<ListEntry>
where
    I: IntoIterator<Item = ObjectMeta>,
{
    let mut out = Vec::new();
    let mut last_prefix: Option<String> = None;
    for m in items {
        let k = m.key.as_str();
        if !k.starts_with(&opts.prefix) {
            continue;
        }
        if let Some(after) = &opts.start_after {
            if k <= after.as_str() {
                continue;
            }
        }
        if opts.delimiter {
            let rest = &k[opts.prefix.len()..];
            if let Some(i) = rest.find('/') {
                let p = format!("{}{}", opts.prefix, &rest[..=i]);
                if last_prefix.as_deref() != Some(&p) {
                    last_prefix = Some(p.clone());
                    out.push(ListEntry::Prefix(p));
                }
                continue;
            }
        }
        out.push(ListEntry::Object(m));
    }
    out
}

#[async_trait]
impl Store for MemoryStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            min_part_size: 1,
            ..Capabilities::default()
        }
    }

    async fn put_opts(&self, key: &Key, data: Bytes, opts: PutOptions) -> Result<PutResult> {
        self.insert(key, data, &opts)
    }

    async fn put_multipart_opts(
        &self,
        key: &Key,
        opts: PutOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        Ok(Box::new(MemoryUpload {
            store: self.clone(),
            key: key.clone(),
            opts,
            parts: Default::default(),
        }))
    }

    async fn get_opts(&self, key: &Key, opts: GetOptions) -> Result<GetResult> {
        if opts.version.is_some() {
            return Err(
                crate::server_side::unsupported(self, "reading an old version")
                    .with_operation("get")
                    .with_key(key.as_str()),
            );
        }
        let e = self.objects.read().unwrap().get(key).cloned();
        let e = e.ok_or_else(|| self.not_found("get", key))?;
        if let Some(want) = &opts.if_match {
            if *want != e.etag {
                return Err(Error::new(ErrorKind::PreconditionFailed, "ETag changed")
                    .with_operation("get")
                    .with_store(self)
                    .with_key(key.as_str()));
            }
        }
        let size = e.data.len() as u64;
        let range = match &opts.range {
            Some(r) => r
                .resolve(size)
                .map_err(|e| e.with_operation("get").with_key(key.as_str()))?,
            None => 0..size,
        };
        let body = e.data.slice(range.start as usize..range.end as usize);
        Ok(GetResult {
            verified_sha256: None,
            meta: meta(key, &e, true),
            range,
            body: stream::once(async move { Ok(body) }).boxed(),
        })
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        let map = self.objects.read().unwrap();
        let e = map.get(key).ok_or_else(|| self.not_found("head", key))?;
        Ok(meta(key, e, true))
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        self.objects.write().unwrap().remove(key);
        Ok(())
    }

    fn list(&self, opts: ListOptions) -> BoxStream<'static, Result<ListEntry>> {
        if let Err(e) = crate::key::validate_prefix(&opts.prefix) {
            return stream::once(async move { Err(e.with_operation("list")) }).boxed();
        }
        let items: Vec<ObjectMeta> = {
            let map = self.objects.read().unwrap();
            map.range(Key::unchecked(opts.prefix.clone())..)
                .take_while(|(k, _)| k.as_str().starts_with(&opts.prefix))
                .map(|(k, e)| meta(k, e, false))
                .collect()
        };
        stream::iter(fold_listing(items, &opts).into_iter().map(Ok)).boxed()
    }

    async fn copy_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        let e = self.objects.read().unwrap().get(from).cloned();
        let e = e.ok_or_else(|| self.not_found("copy", from))?;
        let mode = if opts.if_not_exists {
            PutMode::Create
        } else {
            PutMode::Overwrite
        };
        let put = PutOptions {
            mode,
            content_type: e.content_type.clone(),
            metadata: e.metadata.clone(),
            ..Default::default()
        };
        self.insert(to, e.data, &put)
            .map(|_| ())
            .map_err(|e| e.with_operation("copy"))
    }

    async fn rename_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        // One write lock: nobody sees both keys or neither.
        let mut map = self.objects.write().unwrap();
        if !map.contains_key(from) {
            return Err(self.not_found("rename", from));
        }
        if from == to {
            return Ok(());
        }
        if opts.if_not_exists && map.contains_key(to) {
            return Err(Error::new(ErrorKind::AlreadyExists, "the key exists")
                .with_operation("rename")
                .with_store(&*self)
                .with_key(to.as_str()));
        }
        let mut e = map.remove(from).expect("checked above");
        e.etag = self.next_etag();
        map.insert(to.clone(), e);
        Ok(())
    }

    async fn health_check(&self) -> Result<()> {
        Ok(())
    }
}
