//! Python bindings for cairn: the native module `cairn._cairn`.
//!
//! The Python package (`python/cairn/`) wraps this module: it adds the file-like objects,
//! the exception classes and the fsspec filesystem. Everything that does I/O lives here.
//!
//! - One tokio runtime per process ([`runtime`]), built on first use and used by sync and
//!   async calls alike (async through pyo3-async-runtimes' generic API, [`CairnRuntime`]).
//! - Blocking calls release the GIL for the whole I/O ([`run`]) and wake every 100 ms to let
//!   Ctrl-C through.
//! - `Archive` ([`archive`]) and `sync()` ([`sync`]) bind the Rust implementations; sync's
//!   progress callback is a Rust `Reporter` that takes the GIL for each event.

mod aio;
mod archive;
mod awaitable;
mod bench;
mod bucket;
mod convert;
mod errors;
mod exit;
mod files;
mod handle;
mod io;
mod store;
mod sync;
mod thread_state;

use pyo3::prelude::*;
use pyo3_async_runtimes::generic;
use std::future::Future;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::runtime::Runtime;

fn build_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cairn-io")
        .on_thread_stop(thread_state::release)
        .build()
        .expect("cairn: could not start the I/O runtime")
}

/// The process-wide runtime, built on first use so that importing cairn starts no threads.
///
/// A child made by `fork()` has none of its parent's threads, so the parent's runtime would
/// hang there: each process gets its own. The parent's copy is leaked in the child (dropping
/// it would wait for threads that do not exist).
pub(crate) fn runtime() -> &'static Runtime {
    static PID: AtomicU32 = AtomicU32::new(0);
    static RT: AtomicPtr<Runtime> = AtomicPtr::new(std::ptr::null_mut());
    static BUILD: Mutex<()> = Mutex::new(());
    let pid = std::process::id();
    if PID.load(Ordering::Acquire) == pid {
        // SAFETY: RT is stored (Release) before PID, points to a leaked runtime, never freed.
        return unsafe { &*RT.load(Ordering::Acquire) };
    }
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    if PID.load(Ordering::Acquire) == pid {
        // SAFETY: as above.
        return unsafe { &*RT.load(Ordering::Acquire) };
    }
    let rt: &'static Runtime = Box::leak(Box::new(build_runtime()));
    RT.store(rt as *const Runtime as *mut Runtime, Ordering::Release);
    PID.store(pid, Ordering::Release);
    rt
}

/// The process that opened a store or file. Its connections belong to that process's
/// runtime, so using it after `fork()` in the child fails clearly instead of hanging.
#[derive(Clone, Copy)]
pub(crate) struct Owner(u32);

impl Owner {
    pub(crate) fn here() -> Self {
        Owner(std::process::id())
    }

    pub(crate) fn check(self, py: Python<'_>) -> PyResult<()> {
        if self.0 == std::process::id() {
            return Ok(());
        }
        Err(errors::to_py(
            py,
            cairn::Error::unsupported(
                "this store or file was opened in the parent process before fork(); \
                 open it again in this process",
            ),
        ))
    }
}

/// asyncio futures run on [`runtime`] through pyo3-async-runtimes' generic API, so a forked
/// child gets a fresh runtime for async calls too.
pub(crate) struct CairnRuntime;

tokio::task_local! {
    static TASK_LOCALS: std::cell::OnceCell<pyo3_async_runtimes::TaskLocals>;
}

impl generic::Runtime for CairnRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle = tokio::task::JoinHandle<()>;

    fn spawn<F>(fut: F) -> Self::JoinHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        runtime().spawn(fut)
    }

    fn spawn_blocking<F>(f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        runtime().spawn_blocking(f)
    }
}

impl generic::ContextExt for CairnRuntime {
    fn scope<F, R>(
        locals: pyo3_async_runtimes::TaskLocals,
        fut: F,
    ) -> std::pin::Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        let cell = std::cell::OnceCell::new();
        let _ = cell.set(locals);
        Box::pin(TASK_LOCALS.scope(cell, fut))
    }

    fn get_task_locals() -> Option<pyo3_async_runtimes::TaskLocals> {
        TASK_LOCALS
            .try_with(|c| c.get().cloned())
            .unwrap_or_default()
    }
}

/// A Rust future as an asyncio awaitable, run on [`runtime`]; cancelling the asyncio future
/// drops (cancels) the Rust one, and a result whose loop has closed is dropped quietly.
pub(crate) use awaitable::future_into_py;

/// The ident of Python's main thread, the only one that sees signals (set at import).
static MAIN_THREAD: AtomicU64 = AtomicU64::new(u64::MAX);

fn on_main_thread() -> bool {
    // SAFETY: a plain query of the current thread's id; needs no GIL.
    let me = unsafe { pyo3::ffi::PyThread_get_thread_ident() } as u64;
    me == MAIN_THREAD.load(Ordering::Relaxed)
}

/// Runs `fut` to completion on the runtime with the GIL released.
///
/// The future runs as a task on a worker thread, not inline in `block_on` on the caller's:
/// there every socket event would cross threads to wake it (a futex pair per wake-up, a
/// tenth of a large download's CPU).
pub(crate) fn wait<F>(py: Python<'_>, fut: F) -> PyResult<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = runtime().spawn(fut);
    // An abandoned wait (Ctrl-C) would otherwise leave the task running.
    let _abort = AbortOnDrop(task.abort_handle());
    wait_here(py, async move {
        task.await.unwrap_or_else(|e| match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => unreachable!("the task is only aborted after this wait ends: {e}"),
        })
    })
}

/// Aborts a spawned task when the wait for it is abandoned.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// [`wait`] for a future that borrows from the caller: polled on this thread by `block_on`.
///
/// On the main thread it checks for signals every 100 ms, so Ctrl-C interrupts a slow request
/// (the future is dropped, which cancels it). Other threads never see signals and do not take
/// the GIL back until the future is done.
pub(crate) fn wait_here<F>(py: Python<'_>, fut: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    if !on_main_thread() {
        return Ok(py.detach(|| runtime().block_on(fut)));
    }
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
    F: Future<Output = cairn::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    wait(py, fut)?.map_err(|e| errors::to_py(py, e))
}

/// [`run`] for a future that borrows from the caller: polled on this thread by `block_on`.
pub(crate) fn run_here<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = cairn::Result<T>> + Send,
    T: Send,
{
    wait_here(py, fut)?.map_err(|e| errors::to_py(py, e))
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
    let main: u64 = m
        .py()
        .import("threading")?
        .call_method0("main_thread")?
        .getattr("ident")?
        .extract()?;
    MAIN_THREAD.store(main, Ordering::Relaxed);
    m.add_class::<store::Store>()?;
    m.add_class::<bucket::Bucket>()?;
    m.add_class::<store::ListIter>()?;
    m.add_class::<store::VersionIter>()?;
    m.add_class::<aio::AsyncStore>()?;
    m.add_class::<aio::AsyncListIter>()?;
    m.add_class::<convert::ObjectMeta>()?;
    m.add_class::<convert::PutResult>()?;
    m.add_class::<io::Reader>()?;
    m.add_class::<io::Writer>()?;
    m.add_function(wrap_pyfunction!(config_keys, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<archive::Archive>()?;
    m.add_class::<archive::Entry>()?;
    m.add_class::<archive::AsyncArchive>()?;
    m.add_function(wrap_pyfunction!(sync::sync, m)?)?;
    m.add_function(wrap_pyfunction!(bench::bench_history, m)?)?;
    exit::register(m)?;
    Ok(())
}

/// The option names `Store.open(url, **options)` accepts (canonical names; aliases also work).
#[pyfunction]
fn config_keys() -> Vec<&'static str> {
    cairn::config::KEYS.to_vec()
}
