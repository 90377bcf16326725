//! cairn errors → Python exceptions, one class per [`cairn::ErrorKind`].
//!
//! The classes live in `cairn/_errors.py` so they can inherit from both `CairnError` and the
//! matching builtin (`NotFound` is a `FileNotFoundError`, ...), which PyO3's
//! `create_exception!` cannot express. Each instance carries `kind`, `key`, `operation`,
//! `store`, `hint` and `temporary`. The message is the error's Debug form: its Display plus
//! the cause chain, none of which holds a secret (see `cairn::error`).

use cairn::ErrorKind;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;

/// The Python class name for a kind.
pub(crate) fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "NotFound",
        ErrorKind::AlreadyExists => "AlreadyExists",
        ErrorKind::PreconditionFailed => "PreconditionFailed",
        ErrorKind::PermissionDenied => "PermissionDenied",
        ErrorKind::Unauthenticated => "Unauthenticated",
        ErrorKind::BucketNotFound => "BucketNotFound",
        ErrorKind::InvalidInput => "InvalidInput",
        ErrorKind::RateLimited => "RateLimited",
        ErrorKind::Unavailable => "Unavailable",
        ErrorKind::Network => "NetworkError",
        ErrorKind::Timeout => "Timeout",
        ErrorKind::Integrity => "IntegrityError",
        ErrorKind::Unsupported => "Unsupported",
        ErrorKind::Unexpected => "UnexpectedError",
        // A kind added to the core later still maps to the base class.
        _ => "CairnError",
    }
}

fn errors_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    MODULE
        .get_or_try_init(py, || Ok::<_, PyErr>(py.import("cairn._errors")?.unbind()))
        .map(|m| m.bind(py))
}

/// Converts a cairn error into an instance of its exception class.
pub(crate) fn to_py(py: Python<'_>, e: cairn::Error) -> PyErr {
    build(py, &e).unwrap_or_else(|failure| failure)
}

fn build(py: Python<'_>, e: &cairn::Error) -> PyResult<PyErr> {
    let cls = errors_module(py)?.getattr(class_name(e.kind()))?;
    let inst = cls.call1((format!("{e:?}"),))?;
    inst.setattr("kind", e.kind().as_str())?;
    inst.setattr("key", e.key())?;
    inst.setattr("operation", Some(e.operation()).filter(|o| !o.is_empty()))?;
    inst.setattr("store", Some(e.store()).filter(|s| !s.is_empty()))?;
    inst.setattr("hint", e.hint())?;
    inst.setattr("temporary", e.is_temporary())?;
    Ok(PyErr::from_value(inst))
}

/// Converts a cairn error from a thread that does not hold the GIL (async tasks).
pub(crate) fn to_py_detached(e: cairn::Error) -> PyErr {
    Python::attach(|py| to_py(py, e))
}

/// An `InvalidInput` error for a bad argument, raised as `cairn.InvalidInput` (a `ValueError`).
pub(crate) fn invalid(py: Python<'_>, operation: &'static str, msg: impl Into<String>) -> PyErr {
    to_py(py, cairn::Error::invalid(msg).with_operation(operation))
}
