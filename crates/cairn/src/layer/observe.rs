//! Observation: a tracing span and `metrics` counters for every call that reaches a backend.
//!
//! It sits directly on the backend, under retry and the byte-changing layers, so one span is
//! one call to the store (an S3 request, give or take object_store's own retries), and bytes
//! are the stored bytes. Without a tracing subscriber or a metrics recorder it costs a
//! disabled-span check and a few no-op calls. Span fields: `op`, `store`, `key`, `bytes`,
//! `outcome`; the retry layer's `attempt` span is their parent. Store names never hold secrets.
//!
//! Metrics (see [`crate::metrics`] for the Prometheus helper):
//! - `cairn_requests_total{op, outcome}`: outcome `ok` or an [`ErrorKind`] name;
//! - `cairn_request_seconds{op}`: a histogram of call latency (a read's until its headers);
//! - `cairn_bytes_total{op, direction}`: `written` by puts and parts, `read` by get bodies;
//! - `cairn_errors_total{op, kind}`;
//! - `cairn_retries_total{kind}`: retries cairn's retry policy made, by the error that caused
//!   them (object_store retries S3 requests inside one call; those are not seen here).

use crate::error::{ErrorKind, Result};
use crate::key::Key;
use crate::store::{
    Capabilities, CopyOptions, DynStore, GetOptions, GetResult, ListEntry, ListOptions,
    MultipartUpload, ObjectMeta, PutOptions, PutResult, Store,
};
use async_trait::async_trait;
use bytes::Bytes;
use futures::future::{self, BoxFuture};
use futures::stream::{self, BoxStream, StreamExt};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Counts one finished call (its latency too, where `start` is known) and records its
/// outcome on the current span.
fn record(op: &'static str, start: Option<Instant>, r: std::result::Result<(), ErrorKind>) {
    let outcome = match r {
        Ok(()) => "ok",
        Err(kind) => {
            let kind = kind.as_str();
            metrics::counter!("cairn_errors_total", "op" => op, "kind" => kind).increment(1);
            kind
        }
    };
    tracing::Span::current().record("outcome", outcome);
    metrics::counter!("cairn_requests_total", "op" => op, "outcome" => outcome).increment(1);
    if let Some(start) = start {
        metrics::histogram!("cairn_request_seconds", "op" => op)
            .record(start.elapsed().as_secs_f64());
    }
}

fn outcome<T>(r: &Result<T>) -> std::result::Result<(), ErrorKind> {
    r.as_ref().map(|_| ()).map_err(|e| e.kind())
}

fn bytes_moved(op: &'static str, direction: &'static str, n: u64) {
    metrics::counter!("cairn_bytes_total", "op" => op, "direction" => direction).increment(n);
}

/// Runs `fut` inside the call's span and counts it.
async fn observed<T>(
    op: &'static str,
    span: tracing::Span,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    async move {
        let start = Instant::now();
        let r = fut.await;
        record(op, Some(start), outcome(&r));
        r
    }
    .instrument(span)
    .await
}

macro_rules! span {
    ($self:ident, $op:expr, $key:expr) => {
        tracing::debug_span!(
            "store",
            op = $op,
            store = %$self.inner,
            key = $key,
            bytes = tracing::field::Empty,
            outcome = tracing::field::Empty,
        )
    };
}

/// Observes every call to the store it wraps. [`crate::open`] puts it on every backend.
pub struct ObservedStore {
    inner: DynStore,
}

impl ObservedStore {
    /// Wraps `inner`.
    pub fn new(inner: DynStore) -> Self {
        ObservedStore { inner }
    }
}

impl fmt::Display for ObservedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl fmt::Debug for ObservedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ObservedStore").field(&self.inner).finish()
    }
}

#[async_trait]
impl Store for ObservedStore {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn put_opts(&self, key: &Key, data: Bytes, opts: PutOptions) -> Result<PutResult> {
        let n = data.len() as u64;
        let span = span!(self, "put", key.as_str());
        span.record("bytes", n);
        let r = observed("put", span, self.inner.put_opts(key, data, opts)).await;
        if r.is_ok() {
            bytes_moved("put", "written", n);
        }
        r
    }

    async fn put_multipart_opts(
        &self,
        key: &Key,
        opts: PutOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let span = span!(self, "create_multipart", key.as_str());
        let upload = observed(
            "create_multipart",
            span,
            self.inner.put_multipart_opts(key, opts),
        )
        .await?;
        Ok(Box::new(ObservedUpload {
            inner: upload,
            store: self.inner.to_string(),
            key: key.as_str().to_string(),
        }))
    }

    async fn get_opts(&self, key: &Key, opts: GetOptions) -> Result<GetResult> {
        let span = span!(self, "get", key.as_str());
        let mut r = observed("get", span, self.inner.get_opts(key, opts)).await?;
        // Bytes count as the body arrives, so an abandoned read counts what it took.
        r.body = r
            .body
            .inspect(|c| {
                if let Ok(c) = c {
                    bytes_moved("get", "read", c.len() as u64);
                }
            })
            .boxed();
        Ok(r)
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        observed(
            "head",
            span!(self, "head", key.as_str()),
            self.inner.head(key),
        )
        .await
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        observed(
            "delete",
            span!(self, "delete", key.as_str()),
            self.inner.delete(key),
        )
        .await
    }

    fn delete_stream<'a>(&'a self, keys: BoxStream<'a, Key>) -> BoxStream<'a, (Key, Result<()>)> {
        // One batch call may cover many keys: each key's result is counted as one delete.
        self.inner
            .delete_stream(keys)
            .inspect(|(_, r)| record("delete", None, outcome(r)))
            .boxed()
    }

    fn list(&self, opts: ListOptions) -> BoxStream<'static, Result<ListEntry>> {
        // A listing is one call however many pages it takes: counted when it ends or breaks.
        let start = Instant::now();
        let failed = Arc::new(AtomicBool::new(false));
        let at_end = failed.clone();
        let end = stream::once(async move {
            if !at_end.load(Ordering::Relaxed) {
                record("list", Some(start), Ok(()));
            }
        })
        .filter_map(|()| future::ready(None));
        self.inner
            .list(opts)
            .inspect(move |e| {
                if let Err(e) = e {
                    if !failed.swap(true, Ordering::Relaxed) {
                        record("list", Some(start), Err(e.kind()));
                    }
                }
            })
            .chain(end)
            .boxed()
    }

    async fn copy_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        let span = span!(self, "copy", to.as_str());
        observed("copy", span, self.inner.copy_opts(from, to, opts)).await
    }

    async fn health_check(&self) -> Result<()> {
        observed(
            "health",
            span!(self, "health", ""),
            self.inner.health_check(),
        )
        .await
    }

    fn digest_scheme(&self) -> crate::digest::DigestScheme {
        self.inner.digest_scheme()
    }

    fn server_side(&self) -> Option<crate::server_side::ServerSide> {
        self.inner.server_side()
    }

    async fn rename_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        let span = span!(self, "rename", to.as_str());
        observed("rename", span, self.inner.rename_opts(from, to, opts)).await
    }
}

/// A multipart upload whose parts, completion and abort are observed like store calls.
struct ObservedUpload {
    inner: Box<dyn MultipartUpload>,
    store: String,
    key: String,
}

impl ObservedUpload {
    fn span(&self, op: &'static str) -> tracing::Span {
        tracing::debug_span!(
            "store",
            op,
            store = self.store.as_str(),
            key = self.key.as_str(),
            bytes = tracing::field::Empty,
            outcome = tracing::field::Empty,
        )
    }
}

impl fmt::Debug for ObservedUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait]
impl MultipartUpload for ObservedUpload {
    fn put_part(&mut self, data: Bytes) -> BoxFuture<'static, Result<()>> {
        let n = data.len() as u64;
        let span = self.span("put_part");
        span.record("bytes", n);
        let fut = self.inner.put_part(data);
        Box::pin(async move {
            let r = observed("put_part", span, fut).await;
            if r.is_ok() {
                bytes_moved("put_part", "written", n);
            }
            r
        })
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let span = self.span("complete_multipart");
        observed("complete_multipart", span, self.inner.complete()).await
    }

    async fn abort(&mut self) -> Result<()> {
        let span = self.span("abort_multipart");
        observed("abort_multipart", span, self.inner.abort()).await
    }

    fn add_trailing_metadata(&mut self, metadata: crate::store::Metadata) {
        self.inner.add_trailing_metadata(metadata)
    }
}
