//! Interpreter exit with runtime threads still finishing asyncio calls.
//!
//! A call's result is handed over from a runtime thread (`awaitable`): it takes the GIL,
//! and `call_soon_threadsafe` writes to the loop's wake-up socket, releasing the GIL around
//! the write. The awaiting coroutine may already have gone on, the script ended and the
//! interpreter begun to finalize; CPython then ends a thread that asks for the GIL back with
//! `pthread_exit`, whose forced unwind through Rust frames aborts the process (exit 134 after
//! a script that printed its results). So every such hand-over is counted, and an `atexit`
//! handler, which runs while threads may still take the GIL, waits for those in flight and
//! turns the later ones away.

use pyo3::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

static EXITING: AtomicBool = AtomicBool::new(false);
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// How long the exit waits for hand-overs in flight (each takes microseconds).
const EXIT_WAIT: Duration = Duration::from_secs(2);

/// Permission for a runtime thread to take the GIL; `None` once the interpreter is exiting.
pub(crate) struct Attach(());

impl Attach {
    pub(crate) fn begin() -> Option<Attach> {
        // Counted before the flag is read, and the exit sets the flag before it counts
        // (both SeqCst): a thread either is waited for or sees the flag.
        IN_FLIGHT.fetch_add(1, SeqCst);
        if EXITING.load(SeqCst) {
            IN_FLIGHT.fetch_sub(1, SeqCst);
            return None;
        }
        Some(Attach(()))
    }
}

impl Drop for Attach {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, SeqCst);
    }
}

/// Registered with `atexit` when the module loads.
#[pyfunction]
pub(crate) fn _at_exit(py: Python<'_>) {
    EXITING.store(true, SeqCst);
    py.detach(|| {
        let deadline = Instant::now() + EXIT_WAIT;
        while IN_FLIGHT.load(SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// Registers [`_at_exit`].
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let f = wrap_pyfunction!(_at_exit, m)?;
    m.py().import("atexit")?.call_method1("register", (f,))?;
    Ok(())
}
