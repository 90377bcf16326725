//! The blocking store. `cairn.Store` (Python) subclasses it to add `open(key, mode)`.

use crate::convert::{self, Entry, ObjectMeta, PutResult};
use crate::errors::to_py;
use crate::handle::{busy, not_tiered, open_or_share, Handle, Tier};
use crate::{files, io, run, wait, wait_here, Owner};
use cairn::backend::s3::admin::ObjectVersion;
use cairn::{CopyOptions, DynStore, GetOptions, ListOptions, StoreExt};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::Mutex;

/// A blocking handle on one store. Thread-safe; every call releases the GIL during I/O.
#[pyclass(frozen, subclass, module = "cairn._cairn", name = "Store")]
pub(crate) struct Store {
    pub(crate) inner: DynStore,
    pub(crate) owner: Owner,
    /// The hot tier, for a store opened from a `tier+URL`.
    pub(crate) tier: Option<Tier>,
}

impl Store {
    /// The store, for a future that runs as its own task (so it owns a handle).
    fn store(&self, py: Python<'_>) -> PyResult<DynStore> {
        self.owner.check(py)?;
        Ok(self.inner.clone())
    }

    /// The hot tier, or an `InvalidInput` naming `op` on a store opened without `tier+`.
    fn tier(&self, py: Python<'_>, op: &'static str) -> PyResult<Tier> {
        self.owner.check(py)?;
        self.tier
            .clone()
            .ok_or_else(|| not_tiered(py, op, &self.inner))
    }
}

#[pymethods]
impl Store {
    /// Opens the store at `url` (`s3://bucket/prefix`, `file:///path`, `local://prefix`,
    /// `memory://` or a path; `tier+URL` puts a local hot tier in front of it). `options` are
    /// the Rust config names (`endpoint`, `region`, `access_key_id`, `path_style`, `timeout`,
    /// the tier's `hot`, `mode`, `hot_max`, `pin`, ...); bools, numbers, timedeltas and paths
    /// are accepted. Passing a `Store` or `AsyncStore` instead shares its backend (and tier).
    #[new]
    #[pyo3(signature = (url, /, **options))]
    fn new(
        py: Python<'_>,
        url: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let h = open_or_share(py, url, options)?;
        Ok(Store {
            inner: h.inner,
            owner: h.owner,
            tier: h.tier,
        })
    }

    /// Writes `data` to `key` and returns its `PutResult` (ETag, version).
    ///
    /// `mode="create"` fails with `AlreadyExists` if the key exists; `if_match=etag` fails
    /// with `PreconditionFailed` unless the current ETag matches.
    #[pyo3(signature = (key, data, *, content_type=None, metadata=None, mode="overwrite", if_match=None))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments
    fn put(
        &self,
        py: Python<'_>,
        key: &str,
        data: &Bound<'_, PyAny>,
        content_type: Option<String>,
        metadata: Option<&Bound<'_, PyDict>>,
        mode: &str,
        if_match: Option<String>,
    ) -> PyResult<PutResult> {
        let key = convert::key(py, "put", key)?;
        let data = convert::data(py, data)?;
        let opts = convert::put_options(py, "put", content_type, metadata, mode, if_match)?;
        let store = self.store(py)?;
        run(py, async move { store.put_opts(&key, data, opts).await }).map(Into::into)
    }

    /// Reads the object, or a `range` of it: `(start, end)` with `end` exclusive,
    /// `slice(start, end)`, `slice(start, None)` or `slice(-n, None)` for the last n bytes.
    #[pyo3(signature = (key, *, range=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &str,
        range: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        let key = convert::key(py, "get", key)?;
        let range = match range {
            Some(r) => convert::range(py, r)?,
            None => None,
        };
        let store = self.store(py)?;
        let chunks = run(py, async move {
            let opts = GetOptions {
                range,
                ..Default::default()
            };
            store
                .get_opts(&key, opts)
                .await?
                .body
                .try_collect::<Vec<_>>()
                .await
        })?;
        convert::bytes_out(py, &chunks)
    }

    /// Reads one version of the object whole (versioned S3 buckets; others raise
    /// `Unsupported`).
    fn get_version<'py>(
        &self,
        py: Python<'py>,
        key: &str,
        version_id: String,
    ) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        let key = convert::key(py, "get", key)?;
        let store = self.store(py)?;
        let data = run(
            py,
            async move { store.get_version(&key, &version_id).await },
        )?;
        convert::bytes_out(py, &[data])
    }

    /// A URL that allows `method` (`"GET"`, `"PUT"`, `"HEAD"`) on `key` for `expires`
    /// (seconds or a timedelta; at most 7 days) to whoever holds it. S3 only; stores that
    /// compress or encrypt raise `Unsupported`, since the URL would bypass cairn.
    #[pyo3(signature = (key, *, method="GET", expires=None))]
    fn presign(
        &self,
        py: Python<'_>,
        key: &str,
        method: &str,
        expires: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let key = convert::key(py, "presign", key)?;
        let method: cairn::backend::s3::admin::PresignMethod =
            method.parse().map_err(|e| crate::errors::to_py(py, e))?;
        let expires = match expires {
            Some(e) => crate::bucket::seconds(py, "presign", e)?,
            None => cairn::backend::s3::admin::DEFAULT_EXPIRY,
        };
        let store = self.store(py)?;
        run(
            py,
            async move { store.presign(&key, method, expires).await },
        )
        .map(|u| u.to_string())
    }

    /// Every version and delete marker under `prefix`, lazily (one server page in memory
    /// at a time), as dicts (key, version_id, is_latest, delete_marker, size,
    /// last_modified, etag, storage_class). Stores without versions raise `Unsupported`
    /// on the first `next()`.
    #[pyo3(signature = (prefix=""))]
    fn list_versions(&self, py: Python<'_>, prefix: &str) -> PyResult<VersionIter> {
        let store = self.store(py)?;
        // Started inside the runtime, like `list`: a stream may spawn tasks.
        let _guard = crate::runtime().enter();
        Ok(VersionIter {
            stream: Mutex::new(Some(store.list_versions(prefix))),
        })
    }

    /// Object count and stored bytes under `prefix`: `total`, `by_class` (S3 storage
    /// classes) and `by_prefix` (the first `depth` levels of the key), from one listing.
    #[pyo3(signature = (prefix="", *, depth=0))]
    fn stats<'py>(
        &self,
        py: Python<'py>,
        prefix: &str,
        depth: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store(py)?;
        let prefix = prefix.to_string();
        let s = run(py, async move { store.stats(&prefix, depth).await })?;
        convert::serde_out(py, &s)
    }

    /// The object's metadata; raises `NotFound` if it does not exist.
    fn head(&self, py: Python<'_>, key: &str) -> PyResult<ObjectMeta> {
        let key = convert::key(py, "head", key)?;
        let store = self.store(py)?;
        run(py, async move { store.head(&key).await }).map(Into::into)
    }

    /// Whether the object exists.
    fn exists(&self, py: Python<'_>, key: &str) -> PyResult<bool> {
        let key = convert::key(py, "exists", key)?;
        let store = self.store(py)?;
        run(py, async move { store.exists(&key).await })
    }

    /// Deletes the object; deleting a missing object succeeds.
    fn delete(&self, py: Python<'_>, key: &str) -> PyResult<()> {
        let key = convert::key(py, "delete", key)?;
        let store = self.store(py)?;
        run(py, async move { store.delete(&key).await })
    }

    /// Deletes many objects; returns `(key, error)` for each one that failed.
    fn delete_many(
        &self,
        py: Python<'_>,
        keys: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<(String, PyErr)>> {
        let mut valid = Vec::new();
        for k in keys.try_iter()? {
            let k: String = k?.extract()?;
            valid.push(convert::key(py, "delete", &k)?);
        }
        let store = self.store(py)?;
        let failed = wait(py, async move { store.delete_many(valid).await })?;
        Ok(failed
            .into_iter()
            .map(|(k, e)| (k.into_string(), to_py(py, e)))
            .collect())
    }

    /// Iterates over objects under the raw string `prefix` in key order, fetching pages
    /// lazily. With `recursive=False`, keys below the next `/` fold into common prefixes,
    /// yielded as `str` (ending in `/`) between the `ObjectMeta` items.
    #[pyo3(signature = (prefix="", *, recursive=true, start_after=None))]
    fn list(
        &self,
        py: Python<'_>,
        prefix: &str,
        recursive: bool,
        start_after: Option<String>,
    ) -> PyResult<ListIter> {
        cairn::key::validate_prefix(prefix).map_err(|e| to_py(py, e.with_operation("list")))?;
        let opts = ListOptions {
            prefix: prefix.to_string(),
            delimiter: !recursive,
            start_after,
        };
        Ok(ListIter {
            stream: Mutex::new(Some(crate::list_stream(&self.store(py)?, opts))),
        })
    }

    /// The common prefixes (ending in `/`) one level below `prefix`.
    #[pyo3(signature = (prefix=""))]
    fn list_prefixes(&self, py: Python<'_>, prefix: &str) -> PyResult<Vec<String>> {
        cairn::key::validate_prefix(prefix).map_err(|e| to_py(py, e.with_operation("list")))?;
        let stream = crate::list_stream(&self.store(py)?, ListOptions::shallow(prefix));
        run(py, async move {
            stream
                .try_filter_map(|e| async move {
                    Ok(match e {
                        cairn::ListEntry::Prefix(p) => Some(p),
                        cairn::ListEntry::Object(_) => None,
                        // A prefix that cannot be listed: say so rather than drop it.
                        cairn::ListEntry::Unlisted { name, reason } if name.ends_with('/') => {
                            return Err(cairn::Error::unlisted(&name, &reason))
                        }
                        cairn::ListEntry::Unlisted { .. } => None,
                    })
                })
                .try_collect()
                .await
        })
    }

    /// Copies `src` to `dst` within the store. With `overwrite=False`, fails with
    /// `AlreadyExists` if `dst` exists.
    #[pyo3(signature = (src, dst, *, overwrite=true))]
    fn copy(&self, py: Python<'_>, src: &str, dst: &str, overwrite: bool) -> PyResult<()> {
        let src = convert::key(py, "copy", src)?;
        let dst = convert::key(py, "copy", dst)?;
        let store = self.store(py)?;
        let opts = CopyOptions {
            if_not_exists: !overwrite,
        };
        run(py, async move { store.copy_opts(&src, &dst, opts).await })
    }

    /// Uploads the local file at `path` to `key` through the transfer engine: one put when
    /// small, else a concurrent multipart upload (`concurrency` parts of `part_size` bytes in
    /// flight; memory stays within their product). A failure leaves nothing at `key`.
    #[pyo3(signature = (path, key, *, content_type=None, metadata=None, part_size=None, concurrency=None))]
    #[allow(clippy::too_many_arguments)]
    fn upload_file(
        &self,
        py: Python<'_>,
        path: std::path::PathBuf,
        key: &str,
        content_type: Option<String>,
        metadata: Option<&Bound<'_, PyDict>>,
        part_size: Option<usize>,
        concurrency: Option<usize>,
    ) -> PyResult<PutResult> {
        let store = self.store(py)?.clone();
        let fut = files::upload(
            py,
            store,
            path,
            key,
            content_type,
            metadata,
            part_size,
            concurrency,
        )?;
        run(py, fut).map(Into::into)
    }

    /// Downloads `key` to the local file at `path` with parallel ranged GETs, checks the
    /// recorded SHA-256, and replaces `path` atomically (fsynced first unless `fsync=False`).
    /// Returns the object's metadata. An object with no recorded SHA-256 (written by another
    /// tool) is downloaded unchecked: then the returned metadata's `sha256` is None.
    #[pyo3(signature = (key, path, *, part_size=None, concurrency=None, fsync=true))]
    fn download_file(
        &self,
        py: Python<'_>,
        key: &str,
        path: std::path::PathBuf,
        part_size: Option<usize>,
        concurrency: Option<usize>,
        fsync: bool,
    ) -> PyResult<ObjectMeta> {
        let store = self.store(py)?.clone();
        let fut = files::download(py, store, key, path, part_size, concurrency, fsync)?;
        run(py, fut).map(Into::into)
    }

    /// Moves `src` to `dst` (copy, then delete).
    fn rename(&self, py: Python<'_>, src: &str, dst: &str) -> PyResult<()> {
        let src = convert::key(py, "rename", src)?;
        let dst = convert::key(py, "rename", dst)?;
        let store = self.store(py)?;
        run(py, async move { store.rename(&src, &dst).await })
    }

    /// Checks that the store is reachable, authenticated and permitted; raises if not.
    fn health_check(&self, py: Python<'_>) -> PyResult<()> {
        let store = self.store(py)?;
        run(py, async move { store.health_check().await })
    }

    /// What this store can do, as a dict (`conditional_create`, `metadata`, ...).
    #[getter]
    fn capabilities<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::capabilities(py, &self.inner.capabilities())
    }

    /// The hot tier's sizes and counters as a dict (`hot_bytes`, `entries`, `dirty_bytes`,
    /// `dirty_entries`, `flush_lag_secs`, `hits`, `misses`, `fills`, `evictions`, `flushes`,
    /// `errors`, `hit_rate`, `last_error`). Stores not opened from a `tier+` URL raise
    /// `InvalidInput`, as do `flush`, `evict` and `tier_verify`.
    fn tier_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let t = self.tier(py, "tier_stats")?;
        convert::serde_out(py, &t.tier.stats())
    }

    /// Uploads every pending write-back write now; returns once nothing is dirty. On an error
    /// the writes stay in the hot journal and the background flusher keeps trying.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let t = self.tier(py, "flush")?;
        run(py, async move { t.tier.flush().await })
    }

    /// Drops the clean hot copies of keys under `prefix` (relative to the URL's prefix, `""`
    /// for all) and returns how many; cold keeps them, so the next read refills. Unflushed
    /// write-back copies stay.
    #[pyo3(signature = (prefix=""))]
    fn evict(&self, py: Python<'_>, prefix: &str) -> PyResult<u64> {
        let t = self.tier(py, "evict")?;
        let prefix = t.stored_prefix(py, prefix)?;
        run(py, async move { t.tier.evict(&prefix).await })
    }

    /// Compares every clean hot copy with cold: `(key, problem)` for each that is stale
    /// (cold changed behind the tier), corrupt or gone from cold; `[]` when all agree.
    fn tier_verify(&self, py: Python<'_>) -> PyResult<Vec<(String, String)>> {
        let t = self.tier(py, "tier_verify")?;
        let tier = t.tier.clone();
        let found = run(py, async move { tier.verify().await })?;
        Ok(t.user_problems(found))
    }

    /// Opens a streaming reader (used by `Store.open(key, "rb")`).
    fn _reader(&self, py: Python<'_>, key: &str) -> PyResult<io::Reader> {
        let key = convert::key(py, "open", key)?;
        io::Reader::open(py, self.store(py)?.clone(), key)
    }

    /// Opens a streaming writer (used by `Store.open(key, "wb")`).
    #[pyo3(signature = (key, *, content_type=None, metadata=None, mode="overwrite", if_match=None, part_size=None, concurrency=None))]
    #[allow(clippy::too_many_arguments)]
    fn _writer(
        &self,
        py: Python<'_>,
        key: &str,
        content_type: Option<String>,
        metadata: Option<&Bound<'_, PyDict>>,
        mode: &str,
        if_match: Option<String>,
        part_size: Option<usize>,
        concurrency: Option<usize>,
    ) -> PyResult<io::Writer> {
        let key = convert::key(py, "open", key)?;
        let put = convert::put_options(py, "open", content_type, metadata, mode, if_match)?;
        Ok(io::Writer::start(
            self.store(py)?.clone(),
            key,
            put,
            part_size,
            concurrency,
        ))
    }

    /// The backend and its owner, for `AsyncStore(store)`, `Archive(store)` and `sync` to share.
    #[getter]
    fn _handle(&self) -> Handle {
        Handle {
            inner: self.inner.clone(),
            owner: self.owner,
            tier: self.tier.clone(),
        }
    }

    fn __repr__(&self) -> String {
        format!("Store({:?})", self.inner.to_string())
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }
}

/// A lazy listing: each `next()` pulls one entry, fetching the next page when needed.
#[pyclass(frozen, module = "cairn._cairn", name = "ListIter")]
pub(crate) struct ListIter {
    stream: Mutex<Option<BoxStream<'static, cairn::Result<cairn::ListEntry>>>>,
}

#[pymethods]
impl ListIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Entry>> {
        // try_lock: a thread blocked here while holding the GIL would deadlock the one
        // doing I/O, which needs the GIL to check for signals.
        let mut guard = self.stream.try_lock().map_err(|_| busy())?;
        let Some(stream) = guard.as_mut() else {
            return Ok(None);
        };
        match wait_here(py, stream.next())? {
            Some(Ok(e)) => Ok(Some(e.into())),
            Some(Err(e)) => {
                *guard = None;
                Err(to_py(py, e))
            }
            None => {
                *guard = None;
                Ok(None)
            }
        }
    }

    /// Collects the remaining entries into a list.
    fn collect(&self, py: Python<'_>) -> PyResult<Vec<Entry>> {
        let mut out = Vec::new();
        while let Some(e) = self.__next__(py)? {
            out.push(e);
        }
        Ok(out)
    }
}

/// A lazy `Store.list_versions`: pages of versions are fetched as you iterate.
#[pyclass(frozen, module = "cairn._cairn", name = "VersionIter")]
pub(crate) struct VersionIter {
    stream: Mutex<Option<BoxStream<'static, cairn::Result<ObjectVersion>>>>,
}

#[pymethods]
impl VersionIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        // try_lock, as in `ListIter::__next__`.
        let mut guard = self.stream.try_lock().map_err(|_| busy())?;
        let Some(stream) = guard.as_mut() else {
            return Ok(None);
        };
        match wait_here(py, stream.next())? {
            Some(Ok(v)) => convert::serde_out(py, &v).map(Some),
            Some(Err(e)) => {
                *guard = None;
                Err(to_py(py, e))
            }
            None => {
                *guard = None;
                Ok(None)
            }
        }
    }

    /// Collects the remaining versions into a list.
    fn collect<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let mut out = Vec::new();
        while let Some(v) = self.__next__(py)? {
            out.push(v);
        }
        Ok(out)
    }
}
