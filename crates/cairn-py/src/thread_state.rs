//! A Python thread state kept by each runtime thread that hands results over.
//!
//! A hand-over (`awaitable`) takes the GIL on a runtime thread. On a thread Python does not
//! know, that makes a thread state and deletes it again on release, and CPython maps (then
//! unmaps) a 16 KiB frame stack with each: an mmap/munmap pair, and a TLB shootdown across
//! every core, per awaited call (about 7% of the client's CPU on 16 KiB GETs). So a thread
//! keeps the first state it makes, detached between hand-overs, and gives it back when it
//! stops.

use crate::exit::Attach;
use pyo3::ffi;
use std::cell::Cell;

thread_local! {
    /// This thread's kept state, and the `PyGILState_Ensure` result it came from.
    static KEPT: Cell<Option<(*mut ffi::PyThreadState, ffi::PyGILState_STATE)>> =
        const { Cell::new(None) };
}

/// Gives this thread a Python thread state that outlives each attach: later attaches on the
/// thread find it and only take the GIL. `_attach` proves the interpreter is not exiting;
/// the caller must not be attached.
pub(crate) fn keep(_attach: &Attach) {
    KEPT.with(|k| {
        if k.get().is_some() {
            return;
        }
        // SAFETY: the interpreter runs (an `Attach` is held, so exit waits for us) and this
        // thread is not attached. Ensure makes the state and takes the GIL; SaveThread
        // gives the GIL back and keeps the state this thread's (its count stays 1).
        let kept = unsafe {
            let g = ffi::PyGILState_Ensure();
            (ffi::PyEval_SaveThread(), g)
        };
        k.set(Some(kept));
    });
}

/// Deletes this thread's kept state (the runtime's `on_thread_stop`). At interpreter exit it
/// is left alone: finalization deletes every thread's state, and taking the GIL then would
/// end this thread.
pub(crate) fn release() {
    let Some((state, g)) = KEPT.with(Cell::take) else {
        return;
    };
    let Some(_attach) = Attach::begin() else {
        return;
    };
    // SAFETY: `state` is this thread's, detached by `keep`, and the interpreter runs.
    // Restoring it takes the GIL; releasing the last count deletes it and drops the GIL.
    unsafe {
        ffi::PyEval_RestoreThread(state);
        ffi::PyGILState_Release(g);
    }
}
