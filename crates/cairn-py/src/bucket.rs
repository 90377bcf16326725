//! `cairn.Bucket`: S3 bucket administration (the core's `Admin`), blocking like `Store`.

use crate::convert::{self, serde_out};
use crate::errors::invalid;
use crate::run;
use cairn::backend::s3::admin::{self, Admin, Encryption, LifecycleRule};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

/// Seconds (int or float) or a `datetime.timedelta`, as a duration.
pub(crate) fn seconds(
    py: Python<'_>,
    op: &'static str,
    v: &Bound<'_, PyAny>,
) -> PyResult<std::time::Duration> {
    let secs: f64 = match v.extract::<f64>() {
        Ok(s) => s,
        Err(_) => v
            .call_method0("total_seconds")
            .and_then(|s| s.extract())
            .map_err(|_| invalid(py, op, "expected seconds (int, float) or a timedelta"))?,
    };
    if !(secs.is_finite() && secs >= 0.0) {
        return Err(invalid(
            py,
            op,
            format!("a duration must be 0 or more seconds, not {secs}"),
        ));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// One S3 bucket's settings: versioning, default encryption, lifecycle, policy, ACL, open
/// multipart uploads, and presets (`setup("analysis")`). `options` are those of `Store`.
#[pyclass(frozen, module = "cairn._cairn", name = "Bucket")]
pub(crate) struct Bucket {
    admin: Admin,
    name: String,
}

impl Bucket {
    fn admin(&self) -> Admin {
        self.admin.clone()
    }
}

#[pymethods]
impl Bucket {
    #[new]
    #[pyo3(signature = (url, /, **options))]
    fn new(py: Python<'_>, url: String, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let config = convert::config_from_kwargs(py, options)?;
        let (admin, name) = run(py, async move { cairn::open_admin(&url, config).await })?;
        Ok(Bucket { admin, name })
    }

    /// The bucket's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    fn __repr__(&self) -> String {
        format!("Bucket('s3://{}')", self.name)
    }

    /// Creates the bucket (with S3 Object Lock if asked; Garage has none).
    #[pyo3(signature = (*, object_lock=false))]
    fn create(&self, py: Python<'_>, object_lock: bool) -> PyResult<()> {
        let a = self.admin();
        run(py, async move { a.create_bucket_with(object_lock).await })
    }

    /// Whether the bucket exists.
    fn exists(&self, py: Python<'_>) -> PyResult<bool> {
        let a = self.admin();
        run(py, async move { a.bucket_exists().await })
    }

    /// Deletes the bucket; `force=True` deletes every object, version and upload first.
    #[pyo3(signature = (*, force=false))]
    fn delete(&self, py: Python<'_>, force: bool) -> PyResult<()> {
        let a = self.admin();
        run(py, async move { a.delete_bucket(force).await })
    }

    /// Region, provider, versioning and encryption, as a dict.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let a = self.admin();
        let info = run(py, async move { a.info().await })?;
        serde_out(py, &info)
    }

    /// `"off"`, `"enabled"`, `"suspended"` or `"unsupported"`.
    fn versioning<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let a = self.admin();
        let v = run(py, async move { a.get_versioning().await })?;
        serde_out(py, &v)
    }

    /// Turns versioning on, or suspends it.
    fn set_versioning(&self, py: Python<'_>, enabled: bool) -> PyResult<()> {
        let a = self.admin();
        run(py, async move { a.put_versioning(enabled).await })
    }

    /// The default encryption, e.g. `{"state": "sse", "algorithm": "AES256", ...}`.
    fn encryption<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let a = self.admin();
        let e = run(py, async move { a.get_encryption().await })?;
        serde_out(py, &e)
    }

    /// Sets the default encryption: `"aes256"`, `"aws:kms"` (with `kms_key`) or `"off"`;
    /// read back after it is set.
    #[pyo3(signature = (kind, *, kms_key=None))]
    fn set_encryption(&self, py: Python<'_>, kind: &str, kms_key: Option<String>) -> PyResult<()> {
        let want = Encryption::parse(kind, kms_key).map_err(|e| crate::errors::to_py(py, e))?;
        let a = self.admin();
        run(py, async move {
            a.put_encryption(&want).await?;
            let got = a.get_encryption().await?;
            if got != want {
                return Err(cairn::Error::unsupported(format!(
                    "encryption reads {} after it was set to {}",
                    admin::encryption_words(&got),
                    admin::encryption_words(&want)
                )));
            }
            Ok(())
        })
    }

    /// The lifecycle rules, as dicts.
    fn lifecycle<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let a = self.admin();
        let r = run(py, async move { a.get_lifecycle().await })?;
        serde_out(py, &r)
    }

    /// Replaces the lifecycle rules: a list of dicts (`id`, `prefix`, `expiration_days`,
    /// `transitions=[{"days", "storage_class"}]`, `noncurrent_expiration_days`,
    /// `abort_incomplete_multipart_days`) or TOML/JSON text. A rule the server drops raises.
    fn set_lifecycle(&self, py: Python<'_>, rules: &Bound<'_, PyAny>) -> PyResult<()> {
        let text = if let Ok(s) = rules.cast::<PyString>() {
            s.to_string()
        } else {
            let dumped: String = py
                .import("json")?
                .call_method1("dumps", (rules,))?
                .extract()?;
            dumped
        };
        let rules: Vec<LifecycleRule> =
            admin::parse_rules(&text).map_err(|e| crate::errors::to_py(py, e))?;
        let a = self.admin();
        run(py, async move { a.put_lifecycle(&rules).await })
    }

    /// Removes every lifecycle rule.
    fn delete_lifecycle(&self, py: Python<'_>) -> PyResult<()> {
        let a = self.admin();
        run(py, async move { a.delete_lifecycle().await })
    }

    /// The bucket policy (JSON text), or None.
    fn policy(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let a = self.admin();
        run(py, async move { a.get_policy().await })
    }

    /// Replaces the bucket policy: JSON text or a dict.
    fn set_policy(&self, py: Python<'_>, policy: &Bound<'_, PyAny>) -> PyResult<()> {
        let text: String = match policy.cast::<PyString>() {
            Ok(s) => s.to_string(),
            Err(_) => py
                .import("json")?
                .call_method1("dumps", (policy,))?
                .extract()?,
        };
        let a = self.admin();
        run(py, async move { a.put_policy(&text).await })
    }

    /// Removes the bucket policy.
    fn delete_policy(&self, py: Python<'_>) -> PyResult<()> {
        let a = self.admin();
        run(py, async move { a.delete_policy().await })
    }

    /// Applies a canned ACL (`"private"`, `"public-read"`, ...) to the bucket.
    fn set_acl(&self, py: Python<'_>, canned: String) -> PyResult<()> {
        let a = self.admin();
        run(py, async move { a.put_bucket_acl(&canned).await })
    }

    /// Open multipart uploads under `prefix` (key, upload_id, initiated, parts, size).
    #[pyo3(signature = (prefix=""))]
    fn uploads<'py>(&self, py: Python<'py>, prefix: &str) -> PyResult<Bound<'py, PyAny>> {
        use futures::TryStreamExt;
        let list = self.admin.list_uploads(prefix);
        let all: Vec<admin::Upload> = run(py, async move { list.try_collect().await })?;
        serde_out(py, &all)
    }

    /// Aborts the uploads under `prefix` started at least `older_than` ago (seconds or a
    /// timedelta); returns them. `dry_run=True` only lists them.
    #[pyo3(signature = (older_than, *, prefix="", dry_run=false))]
    fn abort_uploads<'py>(
        &self,
        py: Python<'py>,
        older_than: &Bound<'_, PyAny>,
        prefix: &str,
        dry_run: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        use futures::TryStreamExt;
        let age = seconds(py, "abort_uploads", older_than)?;
        let a = self.admin();
        let list = self.admin.list_uploads(prefix);
        let done: Vec<admin::Upload> = run(py, async move {
            let now = chrono::Utc::now();
            let old: Vec<admin::Upload> = list
                .try_filter(|u| futures::future::ready(u.older_than(age, now)))
                .try_collect()
                .await?;
            if !dry_run {
                for u in &old {
                    a.abort_upload(&u.key, &u.upload_id).await?;
                }
            }
            Ok(old)
        })?;
        serde_out(py, &done)
    }

    /// What applying `preset` would change (reads only).
    fn plan<'py>(&self, py: Python<'py>, preset: String) -> PyResult<Bound<'py, PyAny>> {
        let p = admin::preset(&preset).map_err(|e| crate::errors::to_py(py, e))?;
        let a = self.admin();
        let plan = run(py, async move { a.plan(&preset, &p).await })?;
        serde_out(py, &plan)
    }

    /// Applies `preset` (`"analysis"`, `"archive"`, `"scratch"`) where the bucket differs;
    /// returns `{"changed", "unchanged", "skipped"}`. A change the server cannot take raises
    /// before anything changes, unless `skip_unsupported=True`.
    #[pyo3(signature = (preset, *, dry_run=false, skip_unsupported=false))]
    fn setup<'py>(
        &self,
        py: Python<'py>,
        preset: String,
        dry_run: bool,
        skip_unsupported: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let p = admin::preset(&preset).map_err(|e| crate::errors::to_py(py, e))?;
        let a = self.admin();
        let out = run(py, async move {
            let plan = a.plan(&preset, &p).await?;
            let changed = if dry_run {
                Vec::new()
            } else {
                a.apply(&plan, skip_unsupported).await?
            };
            Ok(serde_json::json!({
                "plan": plan,
                "changed": changed,
                "unchanged": plan.unchanged,
                "skipped": if dry_run { Vec::new() } else { plan.unsupported() },
            }))
        })?;
        serde_out(py, &out)
    }
}
