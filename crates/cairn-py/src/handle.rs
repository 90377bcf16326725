//! What the two faces of a store (`Store`, `AsyncStore`) and their users (`Archive`, `sync`,
//! the file objects) share. It sits under both faces, so neither imports the other.

use crate::{convert, run, Owner};
use cairn::layer::TieredStore;
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
    pub(crate) tier: Option<Tier>,
}

/// The hot tier of a store opened from a `tier+URL`, for `tier_stats`, `flush`, `evict` and
/// `tier_verify`. The tier sits under the layers, so its keys are the stored keys: the URL's
/// prefix comes first.
#[derive(Clone)]
pub(crate) struct Tier {
    pub(crate) tier: TieredStore,
    /// The URL's prefix without slashes at either end, `""` for none.
    pub(crate) prefix: String,
}

impl Tier {
    /// The tier's key prefix for `prefix` (relative to the URL's prefix), joined as
    /// `PrefixStore` joins keys: `{url prefix}/{prefix}`.
    pub(crate) fn stored_prefix(&self, py: Python<'_>, prefix: &str) -> PyResult<String> {
        cairn::key::validate_prefix(prefix)
            .map_err(|e| crate::errors::to_py(py, e.with_operation("evict")))?;
        Ok(if self.prefix.is_empty() {
            prefix.to_string()
        } else {
            format!("{}/{prefix}", self.prefix)
        })
    }

    /// A stored key as the store's user names it: without the URL's prefix. Keys outside it
    /// (the checksum layer's manifests) stay as stored.
    pub(crate) fn user_key(&self, key: String) -> String {
        if self.prefix.is_empty() {
            return key;
        }
        match key.strip_prefix(&format!("{}/", self.prefix)) {
            Some(rest) => rest.to_string(),
            None => key,
        }
    }

    /// `tier_verify`'s answer with the user's keys.
    pub(crate) fn user_problems(&self, found: Vec<(String, String)>) -> Vec<(String, String)> {
        found
            .into_iter()
            .map(|(k, why)| (self.user_key(k), why))
            .collect()
    }
}

/// The error for a tier operation on a store without a tier.
pub(crate) fn not_tiered(py: Python<'_>, op: &'static str, store: &DynStore) -> PyErr {
    crate::errors::to_py(
        py,
        cairn::Error::invalid(format!(
            "{op} needs a tiered store, and {store} has no hot tier: the URL must start with \
             tier+ (e.g. tier+s3://bucket/prefix?hot=/var/cache/cairn)"
        ))
        .with_operation(op),
    )
}

/// Opens `url` with `config`: a `tier+URL` also yields its tier.
pub(crate) async fn open_url(
    url: &str,
    config: cairn::Config,
) -> cairn::Result<(DynStore, Option<Tier>)> {
    if cairn::tier_url(url).is_none() {
        return Ok((cairn::open_with(url, config).await?, None));
    }
    let t = cairn::open_tier(url, config).await?;
    let prefix = t.prefix.trim_matches('/').to_string();
    Ok((
        t.store,
        Some(Tier {
            tier: t.tier,
            prefix,
        }),
    ))
}

/// Opens the store behind `url_or_store`: a URL string (opened with `options`), or an
/// existing `Store`/`AsyncStore` whose backend (and tier) is shared.
pub(crate) fn open_or_share(
    py: Python<'_>,
    url_or_store: &Bound<'_, PyAny>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Handle> {
    if let Ok(url) = url_or_store.cast::<PyString>() {
        let url = url.to_string();
        let config = convert::config_from_kwargs(py, options)?;
        let (inner, tier) = run(py, async move { open_url(&url, config).await })?;
        return Ok(Handle {
            inner,
            owner: Owner::here(),
            tier,
        });
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
    Ok(handle.get().clone())
}

/// The error for an object used from two threads at once.
pub(crate) fn busy() -> PyErr {
    pyo3::exceptions::PyRuntimeError::new_err("this object is in use by another thread")
}
