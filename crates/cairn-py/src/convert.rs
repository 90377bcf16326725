//! Conversions between Python values and cairn types: options, keys, data, ranges, metadata.

use crate::errors::{invalid, to_py};
use bytes::Bytes;
use cairn::{Config, GetRange, Key, Metadata, PutMode, PutOptions};
use chrono::{DateTime, Utc};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PySlice, PyString, PyTuple};

/// Builds a config from keyword arguments, going through [`Config::set`] so names, aliases
/// and errors match the Rust config exactly. `None` values are skipped.
pub(crate) fn config_from_kwargs(
    py: Python<'_>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Config> {
    let mut config = Config::default();
    let Some(options) = options else {
        return Ok(config);
    };
    for (name, value) in options.iter() {
        let name: String = name.extract()?;
        if value.is_none() {
            continue;
        }
        let text = option_text(py, &name, &value)?;
        config
            .set(&name, &text)
            .map_err(|e| to_py(py, e.with_operation("open")))?;
    }
    Ok(config)
}

fn option_text(py: Python<'_>, name: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    if value.is_instance_of::<PyBool>() {
        return Ok(if value.is_truthy()? { "true" } else { "false" }.to_string());
    }
    if value.is_instance_of::<PyString>()
        || value.is_instance_of::<PyInt>()
        || value.is_instance_of::<PyFloat>()
    {
        return Ok(value.str()?.to_string());
    }
    let datetime = py.import("datetime")?;
    if value.is_instance(&datetime.getattr("timedelta")?)? {
        let secs: f64 = value.call_method0("total_seconds")?.extract()?;
        return Ok(secs.to_string());
    }
    if let Ok(path) = py.import("os")?.call_method1("fspath", (value,)) {
        return Ok(path.str()?.to_string());
    }
    Err(invalid(
        py,
        "open",
        format!(
            "option {name:?} must be a str, int, float, bool, timedelta or path, not {}",
            value.get_type().name()?
        ),
    ))
}

/// Validates a key, naming the operation in the error.
pub(crate) fn key(py: Python<'_>, op: &'static str, k: &str) -> PyResult<Key> {
    Key::new(k).map_err(|e| to_py(py, e.with_operation(op)))
}

/// Takes bytes-like data without copying `bytes` (other buffers are copied once).
pub(crate) fn data(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Bytes::from_owner(PyBackedBytes::from(b.clone())));
    }
    if obj.is_instance_of::<PyString>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "data must be bytes-like, not str; encode it first (e.g. text.encode())",
        ));
    }
    // bytearray, memoryview, array, numpy...: the limited API has no buffer access before
    // 3.11, so let `bytes()` do the one copy.
    let b = py.get_type::<PyBytes>().call1((obj,)).map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "data must be bytes-like (bytes, bytearray, memoryview), not {}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    let b = b.cast_into::<PyBytes>()?;
    Ok(Bytes::from_owner(PyBackedBytes::from(b)))
}

/// Copies chunks into one Python `bytes` (the only copy on the read path).
pub(crate) fn bytes_out<'py>(py: Python<'py>, chunks: &[Bytes]) -> PyResult<Bound<'py, PyBytes>> {
    if let [one] = chunks {
        return Ok(PyBytes::new(py, one));
    }
    let len = chunks.iter().map(|c| c.len()).sum();
    PyBytes::new_with(py, len, |buf| {
        let mut off = 0;
        for c in chunks {
            buf[off..off + c.len()].copy_from_slice(c);
            off += c.len();
        }
        Ok(())
    })
}

/// A body collected in the runtime, turned into `bytes` when handed to Python.
pub(crate) struct Body(pub Vec<Bytes>);

impl<'py> IntoPyObject<'py> for Body {
    type Target = PyBytes;
    type Output = Bound<'py, PyBytes>;
    type Error = PyErr;
    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        bytes_out(py, &self.0)
    }
}

fn int_or_none(v: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    if v.is_none() {
        Ok(None)
    } else {
        v.extract().map(Some)
    }
}

/// `range=` accepts `(start, end)` (end exclusive, `None` = to the end) or a slice:
/// `slice(10, 20)`, `slice(10, None)` (from offset 10), `slice(-100, None)` (last 100 bytes).
pub(crate) fn range(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Option<GetRange>> {
    if obj.is_none() {
        return Ok(None);
    }
    let (start, end) = if let Ok(s) = obj.cast::<PySlice>() {
        let step = int_or_none(&s.getattr("step")?)?;
        if step.is_some_and(|s| s != 1) {
            return Err(invalid(py, "get", "range slices cannot have a step"));
        }
        (
            int_or_none(&s.getattr("start")?)?,
            int_or_none(&s.getattr("stop")?)?,
        )
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        if t.len() != 2 {
            return Err(invalid(py, "get", "range must be a (start, end) pair"));
        }
        (int_or_none(&t.get_item(0)?)?, int_or_none(&t.get_item(1)?)?)
    } else {
        return Err(invalid(
            py,
            "get",
            "range must be a (start, end) tuple or a slice such as slice(0, 1024)",
        ));
    };
    let start = start.unwrap_or(0);
    Ok(Some(match end {
        None if start < 0 => GetRange::Suffix(start.unsigned_abs()),
        None => GetRange::Offset(start as u64),
        Some(end) if start < 0 || end < 0 => {
            return Err(invalid(
                py,
                "get",
                format!(
                    "range ({start}, {end}) has a negative bound; use slice(-n, None) for the last n bytes"
                ),
            ))
        }
        Some(end) if end < start => {
            return Err(invalid(py, "get", format!("range ({start}, {end}) is reversed")))
        }
        Some(end) => GetRange::Bounded(start as u64..end as u64),
    }))
}

/// Metadata from a Python dict of str → str.
pub(crate) fn metadata(meta: Option<&Bound<'_, PyDict>>) -> PyResult<Metadata> {
    let mut out = Metadata::new();
    if let Some(meta) = meta {
        for (k, v) in meta.iter() {
            out.insert(k.extract()?, v.extract()?);
        }
    }
    Ok(out)
}

/// Put options from the keyword arguments shared by `put` and `open(key, "wb")`.
pub(crate) fn put_options(
    py: Python<'_>,
    op: &'static str,
    content_type: Option<String>,
    meta: Option<&Bound<'_, PyDict>>,
    mode: &str,
    if_match: Option<String>,
) -> PyResult<PutOptions> {
    let mode = match (mode, if_match) {
        ("overwrite", None) => PutMode::Overwrite,
        ("create", None) => PutMode::Create,
        ("overwrite" | "update", Some(etag)) => PutMode::Update(etag),
        ("create", Some(_)) => {
            return Err(invalid(
                py,
                op,
                "mode=\"create\" and if_match cannot be combined",
            ))
        }
        (other, _) => {
            return Err(invalid(
                py,
                op,
                format!("mode must be \"overwrite\" or \"create\", not {other:?}"),
            ))
        }
    };
    Ok(PutOptions {
        mode,
        content_type,
        metadata: metadata(meta)?,
        ..Default::default()
    })
}

/// What a head or a listing says about an object. `metadata` is the user's only; what the
/// layers recorded (checksum, compression, encryption, content digest) has fields of its own.
#[pyclass(frozen, module = "cairn", name = "ObjectMeta", eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct ObjectMeta {
    /// The object's key, relative to the store's root.
    #[pyo3(get)]
    key: String,
    /// Logical size in bytes: what a full read returns (see `size_known`).
    #[pyo3(get)]
    size: u64,
    /// Bytes as stored, after compression and encryption.
    #[pyo3(get)]
    stored_size: u64,
    /// Whether `size` is the logical size: False in a listing through a compressing or
    /// encrypting store, where `size` is the stored size until a `head`.
    #[pyo3(get)]
    size_known: bool,
    /// The ETag, if the store has them.
    #[pyo3(get)]
    etag: Option<String>,
    modified: DateTime<Utc>,
    /// MIME type (from head; listings leave it None).
    #[pyo3(get)]
    content_type: Option<String>,
    meta: Metadata,
    /// Boxed: most of a listing's entries have none of these, and it keeps entries small.
    layers: Box<LayerRecords>,
    /// Version id, if the store versions objects.
    #[pyo3(get)]
    version: Option<String>,
}

/// What the layers recorded about an object (its `cairn-*` metadata), read through the core's
/// accessors so the names stay defined in one place.
#[derive(Clone, PartialEq)]
struct LayerRecords {
    sha256: Option<String>,
    compression: Option<String>,
    encryption: Option<String>,
    encryption_key_id: Option<String>,
    content_digest: Option<String>,
}

impl From<cairn::ObjectMeta> for ObjectMeta {
    fn from(m: cairn::ObjectMeta) -> Self {
        let layers = Box::new(LayerRecords {
            sha256: m.stored_sha256().map(str::to_string),
            compression: m.compression().map(str::to_string),
            encryption: m
                .layer_meta
                .get(cairn::layer::encrypt::ENCRYPTION_META)
                .cloned(),
            encryption_key_id: m.encryption_key_id().map(str::to_string),
            content_digest: cairn::digest::content_digest(&m),
        });
        ObjectMeta {
            layers,
            key: m.key.into_string(),
            size: m.size,
            stored_size: m.stored_size,
            size_known: m.size_known,
            etag: m.etag,
            modified: m.last_modified,
            content_type: m.content_type,
            meta: m.metadata,
            version: m.version,
        }
    }
}

#[pymethods]
impl ObjectMeta {
    /// Last modification time, a timezone-aware UTC datetime.
    #[getter]
    fn last_modified(&self) -> DateTime<Utc> {
        self.modified
    }

    /// The user's metadata (from head; listings leave it empty). Never holds `cairn-*` names.
    #[getter]
    fn metadata(&self) -> Metadata {
        self.meta.clone()
    }

    /// SHA-256 (hex) of the bytes as stored, recorded by the checksum layer (from head).
    #[getter]
    fn sha256(&self) -> Option<String> {
        self.layers.sha256.clone()
    }

    /// The compression the object is stored with (`zstd`, `gzip`), or None (from head).
    #[getter]
    fn compression(&self) -> Option<String> {
        self.layers.compression.clone()
    }

    /// The encryption algorithm, or None if the object is not encrypted (from head).
    #[getter]
    fn encryption(&self) -> Option<String> {
        self.layers.encryption.clone()
    }

    /// The id of the key the object is encrypted with (from head).
    #[getter]
    fn encryption_key_id(&self) -> Option<String> {
        self.layers.encryption_key_id.clone()
    }

    /// What sync compares: `sha256:<hex>` of the content, or `hmac-sha256:<key id>:<hex>` for
    /// an encrypted object (keyed, so it does not reveal the content); None if not recorded.
    #[getter]
    fn content_digest(&self) -> Option<String> {
        self.layers.content_digest.clone()
    }

    /// The fields as a plain dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("key", &self.key)?;
        d.set_item("size", self.size)?;
        d.set_item("stored_size", self.stored_size)?;
        d.set_item("size_known", self.size_known)?;
        d.set_item("etag", &self.etag)?;
        d.set_item("last_modified", self.modified)?;
        d.set_item("content_type", &self.content_type)?;
        d.set_item("metadata", self.meta.clone())?;
        d.set_item("sha256", &self.layers.sha256)?;
        d.set_item("compression", &self.layers.compression)?;
        d.set_item("encryption", &self.layers.encryption)?;
        d.set_item("encryption_key_id", &self.layers.encryption_key_id)?;
        d.set_item("content_digest", &self.layers.content_digest)?;
        d.set_item("version", &self.version)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "ObjectMeta(key={}, size={}, etag={}, last_modified='{}')",
            py_repr(Some(&self.key)),
            self.size,
            py_repr(self.etag.as_deref()),
            self.modified.to_rfc3339()
        )
    }
}

/// The result of a put: the new object's ETag and version, when the store has them.
#[pyclass(frozen, module = "cairn", name = "PutResult", eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PutResult {
    /// The new object's ETag, if the store has them.
    #[pyo3(get)]
    etag: Option<String>,
    /// The new object's version, if the store versions objects.
    #[pyo3(get)]
    version: Option<String>,
}

impl From<cairn::PutResult> for PutResult {
    fn from(r: cairn::PutResult) -> Self {
        PutResult {
            etag: r.etag,
            version: r.version,
        }
    }
}

#[pymethods]
impl PutResult {
    fn __repr__(&self) -> String {
        format!(
            "PutResult(etag={}, version={})",
            py_repr(self.etag.as_deref()),
            py_repr(self.version.as_deref())
        )
    }
}

/// One listing item: an object, or (in a one-level listing) a common prefix ending in `/`.
#[derive(IntoPyObject)]
pub(crate) enum Entry {
    Object(ObjectMeta),
    Prefix(String),
    /// `{"unlisted": name, "reason": why}`: stored under a name cairn cannot represent.
    Unlisted(std::collections::BTreeMap<&'static str, String>),
}

impl From<cairn::ListEntry> for Entry {
    fn from(e: cairn::ListEntry) -> Self {
        match e {
            cairn::ListEntry::Object(m) => Entry::Object(m.into()),
            cairn::ListEntry::Prefix(p) => Entry::Prefix(p),
            cairn::ListEntry::Unlisted { name, reason } => {
                Entry::Unlisted([("unlisted", name), ("reason", reason)].into())
            }
        }
    }
}

/// The capabilities as a dict (through serde, so fields added to the core show up here too).
pub(crate) fn capabilities<'py>(
    py: Python<'py>,
    caps: &cairn::Capabilities,
) -> PyResult<Bound<'py, PyAny>> {
    serde_out(py, caps)
}

/// Any of the core's serializable values as plain Python (dicts, lists, str, int, None).
pub(crate) fn serde_out<'py, T: serde::Serialize>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_string(value).expect("core values serialize");
    py.import("json")?.call_method1("loads", (json,))
}

/// A Python-style repr of an optional string (`None` or `'text'`).
fn py_repr(s: Option<&str>) -> String {
    match s {
        None => "None".into(),
        Some(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
    }
}
