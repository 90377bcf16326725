//! `upload_file` / `download_file`: local files through the transfer engine, shared by
//! `Store` (blocking) and `AsyncStore` (awaitable).

use crate::convert;
use crate::errors::invalid;
use cairn::ops::reporter::NoReporter;
use cairn::transfer::{self, TransferOptions};
use cairn::{DynStore, ObjectMeta, PutResult};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::future::Future;
use std::path::PathBuf;

/// Transfer options from keyword arguments; `None` keeps the engine's defaults.
fn options(
    py: Python<'_>,
    op: &'static str,
    part_size: Option<usize>,
    concurrency: Option<usize>,
) -> PyResult<TransferOptions> {
    let mut opts = TransferOptions::default();
    if let Some(p) = part_size {
        if p == 0 {
            return Err(invalid(py, op, "part_size must be at least 1 byte"));
        }
        opts.part_size = p;
    }
    if let Some(c) = concurrency {
        if c == 0 {
            return Err(invalid(py, op, "concurrency must be at least 1"));
        }
        opts.concurrency = c;
    }
    Ok(opts)
}

/// The upload of `path` to `key`, checked and ready to run.
#[allow(clippy::too_many_arguments)]
pub(crate) fn upload(
    py: Python<'_>,
    store: DynStore,
    path: PathBuf,
    key: &str,
    content_type: Option<String>,
    metadata: Option<&Bound<'_, PyDict>>,
    part_size: Option<usize>,
    concurrency: Option<usize>,
) -> PyResult<impl Future<Output = cairn::Result<PutResult>> + Send + 'static> {
    const OP: &str = "upload_file";
    let key = convert::key(py, OP, key)?;
    let mut opts = options(py, OP, part_size, concurrency)?;
    opts.put = convert::put_options(py, OP, content_type, metadata, "overwrite", None)?;
    Ok(async move { transfer::upload_file(&*store, &key, &path, &opts, &NoReporter).await })
}

/// The download of `key` to `path`, checked and ready to run.
pub(crate) fn download(
    py: Python<'_>,
    store: DynStore,
    key: &str,
    path: PathBuf,
    part_size: Option<usize>,
    concurrency: Option<usize>,
    fsync: bool,
) -> PyResult<impl Future<Output = cairn::Result<ObjectMeta>> + Send + 'static> {
    const OP: &str = "download_file";
    let key = convert::key(py, OP, key)?;
    let mut opts = options(py, OP, part_size, concurrency)?;
    opts.durable = fsync;
    Ok(async move { transfer::download_file(&*store, &key, &path, &opts, &NoReporter).await })
}
