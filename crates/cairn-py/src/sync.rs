//! `cairn.sync()`: the Rust sync, with progress forwarded to a Python callable.

use crate::handle::open_or_share;
use crate::run;
use cairn::ops::reporter::{Action, Item, Outcome, Reporter, Summary, Totals};
use cairn::ops::{Compare, SyncOptions};
use cairn::Key;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Byte-progress events are batched to at most one per key per this interval.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Forwards events to a Python callable as dicts, taking the GIL for each call.
///
/// The first exception the callable raises is kept (and re-raised when sync returns);
/// after it the callable is no longer called.
struct PyReporter {
    callback: Py<PyAny>,
    error: Mutex<Option<PyErr>>,
    /// Per key: bytes not yet reported, and when the last progress event went out.
    pending: Mutex<HashMap<String, (u64, Instant)>>,
}

fn action_str(a: Action) -> &'static str {
    match a {
        Action::Transfer => "transfer",
        Action::Delete => "delete",
        Action::Skip => "skip",
    }
}

impl PyReporter {
    fn emit(&self, build: impl FnOnce(Python<'_>, &Bound<'_, PyDict>) -> PyResult<()>) {
        if self
            .error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
        {
            return;
        }
        Python::attach(|py| {
            let result = (|| {
                let d = PyDict::new(py);
                build(py, &d)?;
                self.callback.call1(py, (d,))?;
                Ok::<_, PyErr>(())
            })();
            if let Err(e) = result {
                self.error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(e);
            }
        });
    }

    fn flush(&self, key: &Key) {
        let left = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key.as_str());
        if let Some((bytes, _)) = left.filter(|(b, _)| *b > 0) {
            self.progress_event(key.as_str(), bytes);
        }
    }

    fn progress_event(&self, key: &str, bytes: u64) {
        self.emit(|_, d| {
            d.set_item("event", "progress")?;
            d.set_item("key", key)?;
            d.set_item("bytes", bytes)
        });
    }
}

impl Reporter for PyReporter {
    fn on_start(&self, totals: Totals) {
        self.emit(|_, d| {
            d.set_item("event", "start")?;
            d.set_item("objects", totals.objects)?;
            d.set_item("bytes", totals.bytes)
        });
    }

    fn on_discovered(&self, objects: u64, bytes: u64) {
        self.emit(|_, d| {
            d.set_item("event", "discovered")?;
            d.set_item("objects", objects)?;
            d.set_item("bytes", bytes)
        });
    }

    fn on_item_start(&self, item: &Item<'_>) {
        self.emit(|_, d| {
            d.set_item("event", "item_start")?;
            d.set_item("key", item.key.as_str())?;
            d.set_item("action", action_str(item.action))?;
            d.set_item("size", item.size)
        });
    }

    fn on_progress(&self, key: &Key, bytes: u64) {
        let due = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            // The first chunk of a key waits a full interval: small objects then report
            // their bytes once, in the flush before item_done.
            let (n, last) = pending.entry(key.as_str().to_string()).or_insert((0, now));
            *n += bytes;
            if now.duration_since(*last) >= PROGRESS_EVERY {
                *last = now;
                Some(std::mem::take(n))
            } else {
                None
            }
        };
        if let Some(n) = due {
            self.progress_event(key.as_str(), n);
        }
    }

    fn on_item_done(&self, item: &Item<'_>, outcome: &Outcome<'_>) {
        self.flush(item.key);
        self.emit(|_, d| {
            d.set_item("event", "item_done")?;
            d.set_item("key", item.key.as_str())?;
            d.set_item("action", action_str(item.action))?;
            let (name, bytes) = match outcome {
                Outcome::Transferred { bytes } => ("transferred", *bytes),
                // Copied, but no SHA-256 was recorded for it: its bytes were not checked.
                Outcome::Unverified { bytes } => ("unverified", *bytes),
                Outcome::Deleted => ("deleted", 0),
                Outcome::Skipped { reason } => {
                    d.set_item("reason", *reason)?;
                    ("skipped", 0)
                }
                Outcome::Planned => ("planned", item.size.unwrap_or(0)),
                Outcome::Failed(e) => {
                    d.set_item("kind", e.kind().as_str())?;
                    d.set_item("message", e.to_string())?;
                    ("failed", 0)
                }
            };
            d.set_item("outcome", name)?;
            d.set_item("bytes", bytes)
        });
    }

    fn on_finish(&self, summary: &Summary) {
        self.emit(|py, d| {
            d.set_item("event", "finish")?;
            d.set_item("summary", summary_dict(py, summary)?)
        });
    }
}

/// The summary as a dict (through serde, like `capabilities`).
fn summary_dict<'py>(py: Python<'py>, s: &Summary) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_string(s).expect("summary serializes");
    py.import("json")?.call_method1("loads", (json,))
}

/// A sync side: a `Store`/`AsyncStore` or a URL (`scheme://...`), or a path (`os.PathLike` or
/// a str without a scheme): the user's own directory, holding the logical files only, with no layers and no `.cairn/` sidecars.
pub(crate) fn side(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<cairn::DynStore> {
    let is_str = obj.is_instance_of::<PyString>();
    let url_str = is_str && obj.extract::<String>()?.contains("://");
    if url_str || (!is_str && !obj.hasattr("__fspath__")?) {
        return Ok(open_or_share(py, obj, None)?.inner);
    }
    let path: std::path::PathBuf = py.import("os")?.call_method1("fspath", (obj,))?.extract()?;
    let dir =
        cairn::backend::dir::PlainDirStore::new(path).map_err(|e| crate::errors::to_py(py, e))?;
    Ok(Arc::new(dir))
}

/// Makes `dst` match `src` and returns the summary dict.
#[pyfunction]
#[pyo3(signature = (src, dst, *, delete=false, dry_run=false, checksum=false, include=None, exclude=None, acl=None, storage_class=None, concurrency=None, progress=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn sync<'py>(
    py: Python<'py>,
    src: &Bound<'_, PyAny>,
    dst: &Bound<'_, PyAny>,
    delete: bool,
    dry_run: bool,
    checksum: bool,
    include: Option<Vec<String>>,
    exclude: Option<Vec<String>>,
    acl: Option<String>,
    storage_class: Option<String>,
    concurrency: Option<usize>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    if concurrency == Some(0) {
        return Err(crate::errors::invalid(
            py,
            "sync",
            "concurrency must be at least 1",
        ));
    }
    let src = side(py, src)?;
    let dst = side(py, dst)?;
    let mut opts = SyncOptions {
        compare: if checksum {
            Compare::Checksum
        } else {
            Compare::SizeAndTime
        },
        delete,
        dry_run,
        include: include.unwrap_or_default(),
        exclude: exclude.unwrap_or_default(),
        acl,
        storage_class,
        ..Default::default()
    };
    if let Some(n) = concurrency {
        opts.transfer.object_concurrency = n;
    }
    let summary = match progress {
        None => run(py, async move {
            cairn::ops::sync(&*src, &*dst, &opts, &cairn::ops::reporter::NoReporter).await
        })?,
        Some(callback) => {
            if !callback.bind(py).is_callable() {
                return Err(pyo3::exceptions::PyTypeError::new_err(
                    "progress must be a callable taking one event dict",
                ));
            }
            let reporter = Arc::new(PyReporter {
                callback,
                error: Mutex::new(None),
                pending: Mutex::new(HashMap::new()),
            });
            let events = reporter.clone();
            let summary = run(py, async move {
                cairn::ops::sync(&*src, &*dst, &opts, &*events).await
            })?;
            if let Some(e) = reporter
                .error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
            {
                return Err(e);
            }
            summary
        }
    };
    summary_dict(py, &summary)
}
