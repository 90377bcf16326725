//! The asyncio store: the same calls as `Store`, returning awaitables.
//!
//! Futures run on the process-wide runtime (pyo3-async-runtimes completes the asyncio future
//! from there); the event loop thread never blocks on I/O, and cancelling the asyncio task
//! cancels the Rust future.

use crate::convert::{self, Body, Entry, ObjectMeta, PutResult};
use crate::errors::{to_py, to_py_detached};
use crate::handle::{not_tiered, open_or_share, open_url, Handle, Tier};
use crate::Owner;
use cairn::{CopyOptions, DynStore, GetOptions, ListOptions, StoreExt};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use pyo3::exceptions::PyStopAsyncIteration;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::future::Future;
use std::sync::Arc;

/// Turns a cairn future into an asyncio awaitable on the shared runtime.
fn spawn<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = cairn::Result<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    crate::future_into_py(py, async move { fut.await.map_err(to_py_detached) })
}

/// An asyncio handle on one store. Every method returns an awaitable.
#[pyclass(frozen, module = "cairn._cairn", name = "AsyncStore")]
pub(crate) struct AsyncStore {
    pub(crate) inner: DynStore,
    pub(crate) owner: Owner,
    /// The hot tier, for a store opened from a `tier+URL`.
    pub(crate) tier: Option<Tier>,
}

impl AsyncStore {
    fn store(&self, py: Python<'_>) -> PyResult<&DynStore> {
        self.owner.check(py)?;
        Ok(&self.inner)
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
impl AsyncStore {
    /// Wraps a `Store` (sharing its backend), or opens a URL *blocking* the caller; inside a
    /// running event loop prefer `await AsyncStore.open(url, **options)`.
    #[new]
    #[pyo3(signature = (url, /, **options))]
    fn new(
        py: Python<'_>,
        url: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let h = open_or_share(py, url, options)?;
        Ok(AsyncStore {
            inner: h.inner,
            owner: h.owner,
            tier: h.tier,
        })
    }

    /// Opens the store at `url` without blocking the event loop (same options as `Store.open`).
    #[classmethod]
    #[pyo3(signature = (url, /, **options))]
    fn open<'py>(
        _cls: &Bound<'py, pyo3::types::PyType>,
        py: Python<'py>,
        url: String,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let config = convert::config_from_kwargs(py, options)?;
        spawn(py, async move {
            let (inner, tier) = open_url(&url, config).await?;
            Ok(AsyncStore {
                inner,
                owner: Owner::here(),
                tier,
            })
        })
    }

    /// Writes `data` to `key`; see `Store.put`.
    #[pyo3(signature = (key, data, *, content_type=None, metadata=None, mode="overwrite", if_match=None))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments
    fn put<'py>(
        &self,
        py: Python<'py>,
        key: &str,
        data: &Bound<'py, PyAny>,
        content_type: Option<String>,
        metadata: Option<&Bound<'py, PyDict>>,
        mode: &str,
        if_match: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = convert::key(py, "put", key)?;
        let data = convert::data(py, data)?;
        let opts = convert::put_options(py, "put", content_type, metadata, mode, if_match)?;
        let store = self.store(py)?.clone();
        spawn(py, async move {
            store.put_opts(&key, data, opts).await.map(PutResult::from)
        })
    }

    /// Reads the object or a `range` of it; see `Store.get`.
    #[pyo3(signature = (key, *, range=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &str,
        range: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = convert::key(py, "get", key)?;
        let range = match range {
            Some(r) => convert::range(py, r)?,
            None => None,
        };
        let store = self.store(py)?.clone();
        spawn(py, async move {
            let opts = GetOptions {
                range,
                ..Default::default()
            };
            let chunks = store
                .get_opts(&key, opts)
                .await?
                .body
                .try_collect::<Vec<_>>()
                .await?;
            Ok(Body(chunks))
        })
    }

    /// The object's metadata; raises `NotFound` if it does not exist.
    fn head<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        let key = convert::key(py, "head", key)?;
        let store = self.store(py)?.clone();
        spawn(
            py,
            async move { store.head(&key).await.map(ObjectMeta::from) },
        )
    }

    /// Whether the object exists.
    fn exists<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        let key = convert::key(py, "exists", key)?;
        let store = self.store(py)?.clone();
        spawn(py, async move { store.exists(&key).await })
    }

    /// Deletes the object; deleting a missing object succeeds.
    fn delete<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        let key = convert::key(py, "delete", key)?;
        let store = self.store(py)?.clone();
        spawn(py, async move { store.delete(&key).await })
    }

    /// Deletes many objects; resolves to `(key, error)` for each one that failed.
    fn delete_many<'py>(
        &self,
        py: Python<'py>,
        keys: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut valid = Vec::new();
        for k in keys.try_iter()? {
            let k: String = k?.extract()?;
            valid.push(convert::key(py, "delete", &k)?);
        }
        let store = self.store(py)?.clone();
        spawn(py, async move {
            let failed = store.delete_many(valid).await;
            Ok(Python::attach(|py| {
                failed
                    .into_iter()
                    .map(|(k, e)| (k.into_string(), to_py(py, e)))
                    .collect::<Vec<_>>()
            }))
        })
    }

    /// An async iterator over objects under `prefix`; see `Store.list`.
    #[pyo3(signature = (prefix="", *, recursive=true, start_after=None))]
    fn list(
        &self,
        py: Python<'_>,
        prefix: &str,
        recursive: bool,
        start_after: Option<String>,
    ) -> PyResult<AsyncListIter> {
        cairn::key::validate_prefix(prefix).map_err(|e| to_py(py, e.with_operation("list")))?;
        let opts = ListOptions {
            prefix: prefix.to_string(),
            delimiter: !recursive,
            start_after,
        };
        Ok(AsyncListIter {
            stream: Arc::new(tokio::sync::Mutex::new(Some(crate::list_stream(
                self.store(py)?,
                opts,
            )))),
        })
    }

    /// The common prefixes (ending in `/`) one level below `prefix`.
    #[pyo3(signature = (prefix=""))]
    fn list_prefixes<'py>(&self, py: Python<'py>, prefix: &str) -> PyResult<Bound<'py, PyAny>> {
        cairn::key::validate_prefix(prefix).map_err(|e| to_py(py, e.with_operation("list")))?;
        let stream = crate::list_stream(self.store(py)?, ListOptions::shallow(prefix));
        spawn(py, async move {
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
                .try_collect::<Vec<String>>()
                .await
        })
    }

    /// Copies `src` to `dst`; see `Store.copy`.
    #[pyo3(signature = (src, dst, *, overwrite=true))]
    fn copy<'py>(
        &self,
        py: Python<'py>,
        src: &str,
        dst: &str,
        overwrite: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let src = convert::key(py, "copy", src)?;
        let dst = convert::key(py, "copy", dst)?;
        let store = self.store(py)?.clone();
        let opts = CopyOptions {
            if_not_exists: !overwrite,
        };
        spawn(py, async move { store.copy_opts(&src, &dst, opts).await })
    }

    /// Uploads a local file; see `Store.upload_file`.
    #[pyo3(signature = (path, key, *, content_type=None, metadata=None, part_size=None, concurrency=None))]
    #[allow(clippy::too_many_arguments)]
    fn upload_file<'py>(
        &self,
        py: Python<'py>,
        path: std::path::PathBuf,
        key: &str,
        content_type: Option<String>,
        metadata: Option<&Bound<'_, PyDict>>,
        part_size: Option<usize>,
        concurrency: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store(py)?.clone();
        let fut = crate::files::upload(
            py,
            store,
            path,
            key,
            content_type,
            metadata,
            part_size,
            concurrency,
        )?;
        spawn(py, async move { fut.await.map(PutResult::from) })
    }

    /// Downloads to a local file; see `Store.download_file`.
    #[pyo3(signature = (key, path, *, part_size=None, concurrency=None, fsync=true))]
    fn download_file<'py>(
        &self,
        py: Python<'py>,
        key: &str,
        path: std::path::PathBuf,
        part_size: Option<usize>,
        concurrency: Option<usize>,
        fsync: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store(py)?.clone();
        let fut = crate::files::download(py, store, key, path, part_size, concurrency, fsync)?;
        spawn(py, async move { fut.await.map(ObjectMeta::from) })
    }

    /// Moves `src` to `dst` (copy, then delete).
    fn rename<'py>(&self, py: Python<'py>, src: &str, dst: &str) -> PyResult<Bound<'py, PyAny>> {
        let src = convert::key(py, "rename", src)?;
        let dst = convert::key(py, "rename", dst)?;
        let store = self.store(py)?.clone();
        spawn(py, async move { store.rename(&src, &dst).await })
    }

    /// Checks that the store is reachable, authenticated and permitted.
    fn health_check<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store(py)?.clone();
        spawn(py, async move { store.health_check().await })
    }

    /// What this store can do, as a dict.
    #[getter]
    fn capabilities<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::capabilities(py, &self.inner.capabilities())
    }

    /// The hot tier's sizes and counters as a dict; see `Store.tier_stats`. Not awaitable:
    /// it reads counters in memory.
    fn tier_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let t = self.tier(py, "tier_stats")?;
        convert::serde_out(py, &t.tier.stats())
    }

    /// Uploads every pending write-back write; resolves once nothing is dirty.
    fn flush<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let t = self.tier(py, "flush")?;
        spawn(py, async move { t.tier.flush().await })
    }

    /// Drops clean hot copies under `prefix` (relative to the URL's prefix); resolves to
    /// how many. See `Store.evict`.
    #[pyo3(signature = (prefix=""))]
    fn evict<'py>(&self, py: Python<'py>, prefix: &str) -> PyResult<Bound<'py, PyAny>> {
        let t = self.tier(py, "evict")?;
        let prefix = t.stored_prefix(py, prefix)?;
        spawn(py, async move { t.tier.evict(&prefix).await })
    }

    /// Resolves to `(key, problem)` for each hot copy that differs from cold; see
    /// `Store.tier_verify`.
    fn tier_verify<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let t = self.tier(py, "tier_verify")?;
        spawn(py, async move {
            let found = t.tier.verify().await?;
            Ok(t.user_problems(found))
        })
    }

    /// The backend and its owner, for `Store(async_store)`, `Archive(...)` and `sync` to share.
    #[getter]
    fn _handle(&self) -> Handle {
        Handle {
            inner: self.inner.clone(),
            owner: self.owner,
            tier: self.tier.clone(),
        }
    }

    fn __repr__(&self) -> String {
        format!("AsyncStore({:?})", self.inner.to_string())
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }
}

type SharedStream =
    Arc<tokio::sync::Mutex<Option<BoxStream<'static, cairn::Result<cairn::ListEntry>>>>>;

/// A lazy async listing: `async for meta in store.list(prefix)`.
#[pyclass(frozen, module = "cairn._cairn", name = "AsyncListIter")]
pub(crate) struct AsyncListIter {
    stream: SharedStream,
}

#[pymethods]
impl AsyncListIter {
    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let stream = self.stream.clone();
        crate::future_into_py(py, async move {
            let mut guard = stream.lock().await;
            let next = match guard.as_mut() {
                Some(s) => s.next().await,
                None => None,
            };
            match next {
                Some(Ok(e)) => Ok(Entry::from(e)),
                Some(Err(e)) => {
                    *guard = None;
                    Err(to_py_detached(e))
                }
                None => {
                    *guard = None;
                    Err(PyStopAsyncIteration::new_err(()))
                }
            }
        })
    }

    /// Collects the remaining entries into a list (awaitable).
    fn collect<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let stream = self.stream.clone();
        crate::future_into_py(py, async move {
            let mut guard = stream.lock().await;
            let Some(s) = guard.take() else {
                return Ok(Vec::new());
            };
            drop(guard);
            let all: Vec<cairn::ListEntry> = s.try_collect().await.map_err(to_py_detached)?;
            Ok(all.into_iter().map(Entry::from).collect::<Vec<_>>())
        })
    }
}
