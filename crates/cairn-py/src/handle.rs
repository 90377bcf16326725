//! What the two faces of a store (`Store`, `AsyncStore`) and their users (`Archive`, `sync`,
//! the file objects) share. It sits under both faces, so neither imports the other.

use crate::{convert, run, Owner};
use cairn::DynStore;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

/// A store's backend and the process that opened it. `Store` and `AsyncStore` hand it out as
/// `_handle`, so anything given either one shares its backend without naming its class.
#[pyclass(frozen, module = "cairn._cairn", name = "_StoreHandle")]
#[derive(Clone)]
pub(crate) struct Handle {
    pub(crate) inner: DynStore,
    pub(crate) owner: Owner,
}

/// Opens the store behind `url_or_store`: a URL string (opened with `options`), or an
/// existing `Store`/`AsyncStore` whose backend is shared.
pub(crate) fn open_or_share(
    py: Python<'_>,
    url_or_store: &Bound<'_, PyAny>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<(DynStore, Owner)> {
    if let Ok(url) = url_or_store.cast::<PyString>() {
        let url = url.to_string();
        let config = convert::config_from_kwargs(py, options)?;
        let inner = run(py, async move { cairn::open_with(&url, config).await })?;
        return Ok((inner, Owner::here()));
    }
    let handle = url_or_store
        .getattr(pyo3::intern!(py, "_handle"))
        .ok()
        .and_then(|h| h.cast_into::<Handle>().ok())
        .ok_or_else(|| {
            pyo3::exceptions::PyTypeError::new_err(
                "expected a store URL (str), a Store or an AsyncStore",
            )
        })?;
    if options.is_some_and(|o| !o.is_empty()) {
        return Err(crate::errors::invalid(
            py,
            "open",
            "options cannot be given when wrapping an existing store",
        ));
    }
    let h = handle.get();
    Ok((h.inner.clone(), h.owner))
}

/// The error for an object used from two threads at once.
pub(crate) fn busy() -> PyErr {
    pyo3::exceptions::PyRuntimeError::new_err("this object is in use by another thread")
}
