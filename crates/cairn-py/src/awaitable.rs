//! Rust futures as asyncio awaitables, run on the process-wide runtime.
//!
//! pyo3-async-runtimes' own `future_into_py` prints a `RuntimeError: Event loop is closed`
//! traceback from a runtime thread when a call finishes after its loop was closed (a task
//! left running when a script ends, a loop closed by hand). Nobody can take that result, so
//! here it is dropped quietly; every other completion is as there.

use crate::{runtime, CairnRuntime};
use futures::FutureExt;
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;
use pyo3_async_runtimes::generic::{self, ContextExt};
use pyo3_async_runtimes::TaskLocals;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// A Rust future as an asyncio awaitable on the current event loop. Cancelling the asyncio
/// future drops (cancels) the Rust one.
pub(crate) fn future_into_py<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let locals = generic::get_current_locals::<CairnRuntime>(py)?;
    let py_fut = locals.event_loop(py).call_method0("create_future")?;
    let (cancel_tx, cancel_rx) = oneshot::channel();
    py_fut.call_method1(
        "add_done_callback",
        (OnDone {
            cancel: Mutex::new(Some(cancel_tx)),
        },),
    )?;
    let target: Py<PyAny> = py_fut.clone().unbind();
    runtime().spawn(async move {
        let cancelled = async {
            // The sender is dropped unused when the future ends any other way.
            if cancel_rx.await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let work = CairnRuntime::scope(locals.clone(), AssertUnwindSafe(fut).catch_unwind());
        let outcome = tokio::select! {
            out = work => Some(out),
            () = cancelled => None,
        };
        // Taking the GIL may wait: not on an I/O worker. (Detached: nothing waits for it.)
        drop(tokio::task::spawn_blocking(move || {
            // At interpreter exit nobody awaits it, and taking the GIL would end this thread.
            let Some(attach) = crate::exit::Attach::begin() else {
                return std::mem::forget((target, locals, outcome));
            };
            crate::thread_state::keep(&attach);
            Python::attach(move |py| {
                let Some(outcome) = outcome else {
                    return drop(target); // cancelled: the asyncio side already knows
                };
                let result = match outcome {
                    Ok(r) => r.and_then(|v| v.into_py_any(py)),
                    Err(panic) => Err(pyo3_async_runtimes::err::RustPanic::new_err(format!(
                        "rust future panicked: {}",
                        panic_message(&*panic)
                    ))),
                };
                complete(py, &locals, target.bind(py), result);
            })
        }));
    });
    Ok(py_fut)
}

/// Hands `result` to the asyncio future on its loop's thread, unless nobody can take it.
fn complete(
    py: Python<'_>,
    locals: &TaskLocals,
    fut: &Bound<'_, PyAny>,
    result: PyResult<Py<PyAny>>,
) {
    let event_loop = locals.event_loop(py);
    if loop_closed(&event_loop) || is_cancelled(fut) {
        return;
    }
    let (method, value) = match result {
        Ok(v) => ("set_result", v),
        Err(e) => ("set_exception", e.into_value(py).into_any()),
    };
    let scheduled = fut.getattr(method).and_then(|set| {
        event_loop.call_method1("call_soon_threadsafe", (Completor, fut, set, value))
    });
    // The loop may close between the check and the call; only a live loop's error is news.
    if let Err(e) = scheduled {
        if !loop_closed(&event_loop) {
            e.print(py);
        }
    }
}

fn loop_closed(event_loop: &Bound<'_, PyAny>) -> bool {
    event_loop
        .call_method0("is_closed")
        .and_then(|c| c.is_truthy())
        .unwrap_or(true)
}

fn is_cancelled(fut: &Bound<'_, PyAny>) -> bool {
    fut.call_method0("cancelled")
        .and_then(|c| c.is_truthy())
        .unwrap_or(false)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "unknown panic"
    }
}

/// Runs on the loop's thread: sets the result unless the future was cancelled meanwhile.
#[pyclass(frozen)]
struct Completor;

#[pymethods]
impl Completor {
    fn __call__(
        &self,
        fut: &Bound<'_, PyAny>,
        set: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        if !is_cancelled(fut) {
            set.call1((value,))?;
        }
        Ok(())
    }
}

/// The asyncio future's done callback: a cancel there cancels the Rust future.
#[pyclass(frozen)]
struct OnDone {
    cancel: Mutex<Option<oneshot::Sender<()>>>,
}

#[pymethods]
impl OnDone {
    fn __call__(&self, fut: &Bound<'_, PyAny>) {
        if is_cancelled(fut) {
            let tx = self.cancel.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(tx) = tx {
                let _ = tx.send(());
            }
        }
    }
}
