//! Metrics: cairn records through the [`metrics`] facade, so any recorder an application
//! installs sees them (names in [`crate::layer::observe`] and the S3 store's HTTP counter).
//! With the `prometheus` feature, [`install_prometheus`] installs a Prometheus recorder once
//! per process and can serve `/metrics`; [`prometheus_text`] renders the current values.

#[cfg(feature = "prometheus")]
mod prometheus {
    use crate::error::{Error, Result};
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
    use std::net::SocketAddr;
    use std::sync::OnceLock;

    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

    /// Latency buckets (seconds) for `cairn_request_seconds`: 1 ms to 1 min.
    const BUCKETS: [f64; 12] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 60.0,
    ];

    /// Installs the process-wide Prometheus recorder (once; later calls return the same
    /// handle). With `listen`, it also serves the text format at `http://listen/metrics` on
    /// the current tokio runtime. Fails if another recorder was installed first.
    pub fn install_prometheus(listen: Option<SocketAddr>) -> Result<PrometheusHandle> {
        if let Some(h) = HANDLE.get() {
            if listen.is_some() {
                return Err(Error::invalid(
                    "the Prometheus recorder is installed already, without a listener",
                )
                .with_hint("pass the listen address on the first call"));
            }
            return Ok(h.clone());
        }
        let mut b = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full("cairn_request_seconds".into()), &BUCKETS)
            .map_err(|e| Error::invalid(format!("metrics buckets: {e}")))?;
        let handle = match listen {
            Some(addr) => {
                b = b.with_http_listener(addr);
                let (recorder, exporter) = b.build().map_err(|e| {
                    Error::invalid(format!("serving metrics on {addr}: {e}"))
                        .with_hint("pick a free port, e.g. --metrics 127.0.0.1:9464")
                })?;
                let handle = recorder.handle();
                metrics::set_global_recorder(recorder)
                    .map_err(|e| Error::invalid(format!("installing the metrics recorder: {e}")))?;
                tokio::spawn(async move {
                    if let Err(e) = exporter.await {
                        tracing::warn!(error = ?e, "the metrics listener stopped");
                    }
                });
                handle
            }
            None => b
                .install_recorder()
                .map_err(|e| Error::invalid(format!("installing the metrics recorder: {e}")))?,
        };
        Ok(HANDLE.get_or_init(|| handle).clone())
    }

    /// The current values in the Prometheus text format; empty if nothing is installed.
    pub fn prometheus_text() -> String {
        HANDLE.get().map(|h| h.render()).unwrap_or_default()
    }
}

#[cfg(feature = "prometheus")]
pub use prometheus::{install_prometheus, prometheus_text};
