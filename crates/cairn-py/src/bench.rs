//! `cairn.bench_history()`: bench reports over time as rows for pandas, through the same
//! library code as `cairn bench history`.

use crate::archive::Archive;
use crate::handle::open_or_share;
use crate::run;
use cairn::ops::bench::history::{self, HistoryOptions};
use pyo3::prelude::*;
use pyo3::types::PyString;

/// Reads every report of `source` and returns `(rows as JSON, skipped (name, reason) pairs)`;
/// the Python wrapper turns the rows into dicts and warns of the skipped.
#[pyfunction]
#[pyo3(signature = (source, *, archive=None, regress_pct=15.0, window=5))]
pub(crate) fn bench_history(
    py: Python<'_>,
    source: &Bound<'_, PyAny>,
    archive: Option<&Bound<'_, PyAny>>,
    regress_pct: f64,
    window: usize,
) -> PyResult<(String, Vec<(String, String)>)> {
    if window == 0 || !regress_pct.is_finite() || regress_pct < 0.0 {
        return Err(crate::errors::invalid(
            py,
            "bench_history",
            "window must be at least 1 and regress_pct a percentage >= 0",
        ));
    }
    let opts = HistoryOptions {
        regress_pct,
        window,
    };
    let name = source
        .cast::<PyString>()
        .ok()
        .and_then(|s| s.to_string().strip_prefix("archive:").map(str::to_string));
    let loaded = match name {
        Some(name) => {
            let ar = match archive {
                Some(a) => match a.cast::<Archive>() {
                    Ok(a) => a.borrow().inner.clone(),
                    Err(_) => cairn::archive::Archive::new(open_or_share(py, a, None)?.inner),
                },
                None => {
                    let url = PyString::new(py, "local://archive");
                    cairn::archive::Archive::new(open_or_share(py, url.as_any(), None)?.inner)
                }
            };
            run(py, async move { history::load_archive(&ar, &name).await })?
        }
        None => {
            let store = crate::sync::side(py, source)?;
            run(py, async move { history::load_prefix(&*store, "").await })?
        }
    };
    let h = history::build_with_skipped(loaded, opts);
    let rows = serde_json::to_string(&h.rows()).expect("rows serialize");
    let skipped = h.skipped.into_iter().map(|s| (s.name, s.reason)).collect();
    Ok((rows, skipped))
}
