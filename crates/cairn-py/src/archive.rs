//! `cairn.Archive`: the Rust archive (named, timestamped documents over a store), blocking,
//! with the GIL released during I/O.

use crate::convert;
use crate::errors::{invalid, to_py};
use crate::handle::open_or_share;
use crate::{run, Owner};
use bytes::Bytes;
use cairn::archive::{self, Filter, Prune, Verified};
use cairn::{Key, Metadata};
use chrono::{DateTime, Utc};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use std::time::Duration;

/// Chunk size when saving from a file-like object.
const READ_CHUNK: usize = 8 * 1024 * 1024;

/// One archived document.
#[pyclass(frozen, module = "cairn", name = "Entry", eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct Entry {
    /// Where it is stored (pass it to `load`, `restore`, `verify`, ...).
    #[pyo3(get)]
    key: String,
    /// The archive name (an agent id, a repository id, ...).
    #[pyo3(get)]
    name: String,
    /// The kind of document (`snapshot`, `report`, ...).
    #[pyo3(get)]
    kind: String,
    /// When it was saved, a timezone-aware UTC datetime.
    #[pyo3(get)]
    timestamp: DateTime<Utc>,
    /// Size in bytes.
    #[pyo3(get)]
    size: u64,
    meta: Metadata,
}

impl From<archive::Entry> for Entry {
    fn from(e: archive::Entry) -> Self {
        Entry {
            key: e.key.into_string(),
            name: e.name,
            kind: e.kind,
            timestamp: e.timestamp,
            size: e.size,
            meta: e.metadata,
        }
    }
}

#[pymethods]
impl Entry {
    /// User metadata (plus the archive's own `archive-*` names). Filled by `save`,
    /// `metadata(key)` and metadata-filtered lists; plain lists leave it empty.
    #[getter]
    fn metadata(&self) -> Metadata {
        self.meta.clone()
    }

    /// The fields as a plain dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("key", &self.key)?;
        d.set_item("name", &self.name)?;
        d.set_item("kind", &self.kind)?;
        d.set_item("timestamp", self.timestamp)?;
        d.set_item("size", self.size)?;
        d.set_item("metadata", self.meta.clone())?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Entry(key={:?}, name={:?}, kind={:?}, timestamp='{}', size={})",
            self.key,
            self.name,
            self.kind,
            self.timestamp.to_rfc3339(),
            self.size
        )
    }
}

/// An archive of named, timestamped documents over a store.
#[pyclass(frozen, module = "cairn._cairn", name = "Archive")]
pub(crate) struct Archive {
    pub(crate) inner: archive::Archive,
    owner: Owner,
}

impl Archive {
    /// The archive, for a future that runs as its own task (so it owns a handle).
    fn archive(&self, py: Python<'_>) -> PyResult<archive::Archive> {
        self.owner.check(py)?;
        Ok(self.inner.clone())
    }
}

/// `older_than=`: seconds (int/float) or a `timedelta`.
fn duration(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let secs: f64 = if v.is_instance(&py.import("datetime")?.getattr("timedelta")?)? {
        v.call_method0("total_seconds")?.extract()?
    } else {
        v.extract().map_err(|_| {
            invalid(
                py,
                "prune",
                "older_than must be seconds (int or float) or a timedelta",
            )
        })?
    };
    Duration::try_from_secs_f64(secs).map_err(|_| {
        invalid(
            py,
            "prune",
            format!("older_than must be a non-negative duration, not {secs}"),
        )
    })
}

/// Reads a file-like object chunk by chunk, taking the GIL for each `read()`.
fn file_stream(
    file: Py<PyAny>,
) -> impl futures::Stream<Item = cairn::Result<Bytes>> + Unpin + Send + 'static {
    Box::pin(futures::stream::try_unfold(Some(file), |file| async move {
        let Some(file) = file else { return Ok(None) };
        let chunk = Python::attach(|py| -> PyResult<Option<Bytes>> {
            let b = file.bind(py).call_method1("read", (READ_CHUNK,))?;
            if b.is_instance_of::<PyString>() {
                return Err(pyo3::exceptions::PyTypeError::new_err(
                    "the file must be opened in binary mode (read() returned str)",
                ));
            }
            let b = convert::data(py, &b)?;
            Ok((!b.is_empty()).then_some(b))
        })
        .map_err(|e| {
            cairn::Error::invalid(format!("reading the file to save failed: {e}"))
                .with_operation("archive save")
        })?;
        Ok(chunk.map(|c| (c, Some(file))))
    }))
}

fn filter(
    name: Option<String>,
    kind: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    metadata: Option<&Bound<'_, PyDict>>,
) -> PyResult<Filter> {
    Ok(Filter {
        name,
        kind,
        since,
        until,
        metadata: convert::metadata(metadata)?,
    })
}

#[pymethods]
impl Archive {
    /// An archive over `store` (a `Store`, an `AsyncStore` or a URL), with every key under
    /// `prefix`. `template` is the key template, by default
    /// `{prefix}/{name}/{yyyy}/{mm}/{timestamp}-{kind}.{ext}`.
    #[new]
    #[pyo3(signature = (store, prefix="", template=None))]
    fn new(
        py: Python<'_>,
        store: &Bound<'_, PyAny>,
        prefix: &str,
        template: Option<&str>,
    ) -> PyResult<Self> {
        let handle = open_or_share(py, store, None)?;
        let owner = handle.owner;
        let mut inner = archive::Archive::new(handle.inner)
            .with_prefix(prefix)
            .map_err(|e| to_py(py, e.with_operation("archive")))?;
        if let Some(t) = template {
            inner = inner
                .with_template(t)
                .map_err(|e| to_py(py, e.with_operation("archive")))?;
        }
        Ok(Archive { inner, owner })
    }

    /// Saves a document: `data` is bytes-like or a binary file-like object (streamed in
    /// bounded memory). A save never overwrites an earlier one. Returns its `Entry`.
    #[pyo3(signature = (name, kind, data, metadata=None, content_type=None))]
    fn save(
        &self,
        py: Python<'_>,
        name: &str,
        kind: &str,
        data: &Bound<'_, PyAny>,
        metadata: Option<&Bound<'_, PyDict>>,
        content_type: Option<String>,
    ) -> PyResult<Entry> {
        let meta = convert::metadata(metadata)?;
        let archive = self.archive(py)?;
        let (name, kind) = (name.to_owned(), kind.to_owned());
        if data.hasattr("read")? && !data.is_instance_of::<PyBytes>() {
            let stream = file_stream(data.clone().unbind());
            return run(py, async move {
                let ct = content_type.as_deref();
                archive.save_stream(&name, &kind, stream, meta, ct).await
            })
            .map(Into::into);
        }
        let data = convert::data(py, data)?;
        run(py, async move {
            let ct = content_type.as_deref();
            archive.save(&name, &kind, data, meta, ct).await
        })
        .map(Into::into)
    }

    /// Entries matching every given filter, newest first. `since` is inclusive, `until`
    /// exclusive (aware datetimes); `metadata` costs one head per candidate entry.
    #[pyo3(signature = (name=None, kind=None, since=None, until=None, metadata=None))]
    fn list(
        &self,
        py: Python<'_>,
        name: Option<String>,
        kind: Option<String>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        metadata: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Vec<Entry>> {
        let f = filter(name, kind, since, until, metadata)?;
        let archive = self.archive(py)?;
        let entries = run(py, async move { archive.list(&f).await })?;
        Ok(entries.into_iter().map(Into::into).collect())
    }

    /// The newest entry for `name` (and `kind`), or None.
    #[pyo3(signature = (name, kind=None))]
    fn latest(&self, py: Python<'_>, name: &str, kind: Option<&str>) -> PyResult<Option<Entry>> {
        let archive = self.archive(py)?;
        let (name, kind) = (name.to_owned(), kind.map(str::to_owned));
        let latest = run(
            py,
            async move { archive.latest(&name, kind.as_deref()).await },
        )?;
        Ok(latest.map(Into::into))
    }

    /// The entry's bytes (checked against its SHA-256 when one was recorded).
    fn load<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyBytes>> {
        let key = convert::key(py, "archive load", key)?;
        let archive = self.archive(py)?;
        let data = run(py, async move { archive.load(&key).await })?;
        convert::bytes_out(py, &[data])
    }

    /// Streams the entry into the local file `path` atomically; returns the bytes written.
    fn restore(&self, py: Python<'_>, key: &str, path: &Bound<'_, PyAny>) -> PyResult<u64> {
        let key = convert::key(py, "restore", key)?;
        let path: std::path::PathBuf = py
            .import("os")?
            .call_method1("fspath", (path,))?
            .extract()?;
        let archive = self.archive(py)?;
        run(py, async move { archive.restore(&key, &path).await })
    }

    /// Whether the entry exists.
    fn exists(&self, py: Python<'_>, key: &str) -> PyResult<bool> {
        let key = convert::key(py, "archive exists", key)?;
        let archive = self.archive(py)?;
        run(py, async move { archive.exists(&key).await })
    }

    /// Deletes the entry (deleting a missing one succeeds).
    fn delete(&self, py: Python<'_>, key: &str) -> PyResult<()> {
        let key = convert::key(py, "archive delete", key)?;
        let archive = self.archive(py)?;
        run(py, async move { archive.delete(&key).await })
    }

    /// The entry with its full metadata; `NotFound` if missing, `InvalidInput` if the key
    /// is not one of this archive's.
    fn metadata(&self, py: Python<'_>, key: &str) -> PyResult<Entry> {
        let key = convert::key(py, "archive metadata", key)?;
        let archive = self.archive(py)?;
        run(py, async move { archive.metadata(&key).await }).map(Into::into)
    }

    /// Reads the entry in full: `"ok"` if its recorded SHA-256 matched, `"corrupt"` if not,
    /// `"unverifiable"` if none was recorded.
    fn verify(&self, py: Python<'_>, key: &str) -> PyResult<&'static str> {
        let key: Key = convert::key(py, "verify", key)?;
        let archive = self.archive(py)?;
        Ok(match run(py, async move { archive.verify(&key).await })? {
            Verified::Ok => "ok",
            Verified::Corrupt => "corrupt",
            Verified::Unverifiable => "unverifiable",
        })
    }

    /// Deletes old entries, per name (and per kind if `kind` is given): those beyond the
    /// newest `keep_last`, and/or older than `older_than` (seconds or a timedelta; with
    /// both, only entries matching both go). Returns what was deleted (or would be, with
    /// `dry_run=True`).
    #[pyo3(signature = (name=None, kind=None, keep_last=None, older_than=None, dry_run=false))]
    fn prune(
        &self,
        py: Python<'_>,
        name: Option<String>,
        kind: Option<String>,
        keep_last: Option<usize>,
        older_than: Option<&Bound<'_, PyAny>>,
        dry_run: bool,
    ) -> PyResult<Vec<Entry>> {
        let older_than = older_than
            .filter(|v| !v.is_none())
            .map(|v| duration(py, v))
            .transpose()?;
        let f = filter(name, kind, None, None, None)?;
        let policy = Prune {
            keep_last,
            older_than,
            dry_run,
        };
        let archive = self.archive(py)?;
        let gone = run(py, async move { archive.prune(&f, &policy).await })?;
        Ok(gone.into_iter().map(Into::into).collect())
    }

    fn __repr__(&self) -> String {
        format!("Archive({:?})", self.inner.store().to_string())
    }
}

/// The awaitable of the future `make` builds.
fn awaitable<'py, M, F, T>(py: Python<'py>, make: M) -> PyResult<Bound<'py, PyAny>>
where
    M: FnOnce() -> F + Send + 'static,
    F: std::future::Future<Output = cairn::Result<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    crate::future_into_py(py, async move {
        make().await.map_err(crate::errors::to_py_detached)
    })
}

/// The asyncio archive: the same calls as `Archive`, returning awaitables.
#[pyclass(frozen, module = "cairn._cairn", name = "AsyncArchive")]
pub(crate) struct AsyncArchive {
    inner: archive::Archive,
    owner: Owner,
}

impl AsyncArchive {
    fn archive(&self, py: Python<'_>) -> PyResult<archive::Archive> {
        self.owner.check(py)?;
        Ok(self.inner.clone())
    }
}

#[pymethods]
impl AsyncArchive {
    /// Same arguments as `Archive` (opening a URL here blocks; pass a store inside a loop).
    #[new]
    #[pyo3(signature = (store, prefix="", template=None))]
    fn new(
        py: Python<'_>,
        store: &Bound<'_, PyAny>,
        prefix: &str,
        template: Option<&str>,
    ) -> PyResult<Self> {
        let Archive { inner, owner } = Archive::new(py, store, prefix, template)?;
        Ok(AsyncArchive { inner, owner })
    }

    /// Saves bytes-like `data` (or a binary file, read on the I/O threads); see `Archive.save`.
    #[pyo3(signature = (name, kind, data, metadata=None, content_type=None))]
    fn save<'py>(
        &self,
        py: Python<'py>,
        name: String,
        kind: String,
        data: &Bound<'py, PyAny>,
        metadata: Option<&Bound<'py, PyDict>>,
        content_type: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let meta = convert::metadata(metadata)?;
        let a = self.archive(py)?;
        if data.hasattr("read")? && !data.is_instance_of::<PyBytes>() {
            let stream = file_stream(data.clone().unbind());
            return awaitable(py, move || async move {
                a.save_stream(&name, &kind, stream, meta, content_type.as_deref())
                    .await
                    .map(Entry::from)
            });
        }
        let data = convert::data(py, data)?;
        awaitable(py, move || async move {
            a.save(&name, &kind, data, meta, content_type.as_deref())
                .await
                .map(Entry::from)
        })
    }

    /// Matching entries, newest first; see `Archive.list`.
    #[pyo3(signature = (name=None, kind=None, since=None, until=None, metadata=None))]
    fn list<'py>(
        &self,
        py: Python<'py>,
        name: Option<String>,
        kind: Option<String>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        metadata: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let f = filter(name, kind, since, until, metadata)?;
        let a = self.archive(py)?;
        awaitable(py, move || async move {
            Ok(a.list(&f)
                .await?
                .into_iter()
                .map(Entry::from)
                .collect::<Vec<_>>())
        })
    }

    /// The newest entry for `name` (and `kind`), or None.
    #[pyo3(signature = (name, kind=None))]
    fn latest<'py>(
        &self,
        py: Python<'py>,
        name: String,
        kind: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = self.archive(py)?;
        awaitable(py, move || async move {
            Ok(a.latest(&name, kind.as_deref()).await?.map(Entry::from))
        })
    }

    /// The entry's bytes; see `Archive.load`.
    fn load<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        let key = convert::key(py, "archive load", key)?;
        let a = self.archive(py)?;
        awaitable(py, move || async move {
            Ok(convert::Body(vec![a.load(&key).await?]))
        })
    }

    /// Writes the entry to a local file atomically; resolves to the bytes written.
    fn restore<'py>(
        &self,
        py: Python<'py>,
        key: &str,
        path: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = convert::key(py, "restore", key)?;
        let path: std::path::PathBuf = py
            .import("os")?
            .call_method1("fspath", (path,))?
            .extract()?;
        let a = self.archive(py)?;
        awaitable(py, move || async move { a.restore(&key, &path).await })
    }

    /// Whether the entry exists.
    fn exists<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        let key = convert::key(py, "archive exists", key)?;
        let a = self.archive(py)?;
        awaitable(py, move || async move { a.exists(&key).await })
    }

    /// Deletes the entry.
    fn delete<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        let key = convert::key(py, "archive delete", key)?;
        let a = self.archive(py)?;
        awaitable(py, move || async move { a.delete(&key).await })
    }

    /// The entry with its full metadata.
    fn metadata<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        let key = convert::key(py, "archive metadata", key)?;
        let a = self.archive(py)?;
        awaitable(py, move || async move {
            a.metadata(&key).await.map(Entry::from)
        })
    }

    /// `"ok"`, `"corrupt"` or `"unverifiable"`; see `Archive.verify`.
    fn verify<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        let key = convert::key(py, "verify", key)?;
        let a = self.archive(py)?;
        awaitable(py, move || async move {
            Ok(match a.verify(&key).await? {
                Verified::Ok => "ok",
                Verified::Corrupt => "corrupt",
                Verified::Unverifiable => "unverifiable",
            })
        })
    }

    /// Deletes old entries; see `Archive.prune`.
    #[pyo3(signature = (name=None, kind=None, keep_last=None, older_than=None, dry_run=false))]
    fn prune<'py>(
        &self,
        py: Python<'py>,
        name: Option<String>,
        kind: Option<String>,
        keep_last: Option<usize>,
        older_than: Option<&Bound<'py, PyAny>>,
        dry_run: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let older_than = older_than
            .filter(|v| !v.is_none())
            .map(|v| duration(py, v))
            .transpose()?;
        let f = filter(name, kind, None, None, None)?;
        let policy = Prune {
            keep_last,
            older_than,
            dry_run,
        };
        let a = self.archive(py)?;
        awaitable(py, move || async move {
            Ok(a.prune(&f, &policy)
                .await?
                .into_iter()
                .map(Entry::from)
                .collect::<Vec<_>>())
        })
    }

    fn __repr__(&self) -> String {
        format!("AsyncArchive({:?})", self.inner.store().to_string())
    }
}
