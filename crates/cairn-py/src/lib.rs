//! Python bindings for cairn: the native module `cairn._cairn`.
//!
//! The Python package (`python/cairn/`) wraps this module: it adds the file-like objects,
//! the exception classes and the fsspec filesystem. Everything that does I/O lives here.
//!
//! - One tokio runtime per process ([`runtime`]), built on first use and shared with
//!   pyo3-async-runtimes, so sync and async calls use the same threads and connection pools.
//! - Blocking calls release the GIL for the whole I/O ([`run`]) and wake every 100 ms to let
//!   Ctrl-C through.
//! - Extension point: `Archive` and `sync()` bindings register in [`_cairn`] next to the stores
//!   once `cairn::ops` lands; their progress callback will implement the Rust `Reporter` trait.

mod aio;
mod convert;
mod errors;
mod io;
mod store;

use pyo3::prelude::*;
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::runtime::Runtime;

/// The process-wide runtime. Built lazily so that importing cairn starts no threads.
pub(crate) fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("cairn-io")
            .build()
            .expect("cairn: could not start the I/O runtime");
        rt
    })
}

/// The runtime, also registered with pyo3-async-runtimes (once) so asyncio futures run on it.
pub(crate) fn async_runtime() -> &'static Runtime {
    static INIT: OnceLock<()> = OnceLock::new();
    let rt = runtime();
    INIT.get_or_init(|| {
        // Fails only if already set, which INIT rules out within this module.
        let _ = pyo3_async_runtimes::tokio::init_with_runtime(rt);
    });
    rt
}

/// Runs `fut` to completion on the runtime with the GIL released.
///
/// Checks for pending signals every 100 ms so Ctrl-C interrupts a slow request (the future is
/// dropped, which cancels it).
pub(crate) fn wait<F>(py: Python<'_>, fut: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    py.detach(|| {
        runtime().block_on(async {
            let mut fut = std::pin::pin!(fut);
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            tick.tick().await; // the first tick is immediate
            loop {
                tokio::select! {
                    out = &mut fut => return Ok(out),
                    _ = tick.tick() => Python::attach(|py| py.check_signals())?,
                }
            }
        })
    })
}

/// [`wait`] for a future returning a cairn result, mapping the error to its exception class.
pub(crate) fn run<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = cairn::Result<T>> + Send,
    T: Send,
{
    wait(py, fut)?.map_err(|e| errors::to_py(py, e))
}

/// Starts a listing inside the runtime: `Store::list` is synchronous but may spawn tasks
/// (the local store walks directories on the blocking pool).
pub(crate) fn list_stream(
    store: &cairn::DynStore,
    opts: cairn::ListOptions,
) -> futures::stream::BoxStream<'static, cairn::Result<cairn::ListEntry>> {
    let _guard = runtime().enter();
    store.list(opts)
}

/// The native part of the `cairn` package.
#[pymodule]
fn _cairn(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<store::Store>()?;
    m.add_class::<store::ListIter>()?;
    m.add_class::<aio::AsyncStore>()?;
    m.add_class::<aio::AsyncListIter>()?;
    m.add_class::<convert::ObjectMeta>()?;
    m.add_class::<convert::PutResult>()?;
    m.add_class::<io::Reader>()?;
    m.add_class::<io::Writer>()?;
    m.add_function(wrap_pyfunction!(config_keys, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // Extension point: m.add_class::<archive::Archive>() and sync() go here (issue 5).
    Ok(())
}

/// The option names `Store.open(url, **options)` accepts (canonical names; aliases also work).
#[pyfunction]
fn config_keys() -> Vec<&'static str> {
    cairn::config::KEYS.to_vec()
}
