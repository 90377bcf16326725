//! Retries transient failures with exponential backoff, full jitter and a total time budget.
//!
//! Only errors marked [`Error::is_temporary`] are retried (connection faults, timeouts, 5xx,
//! 429/SlowDown); 400/403/404/412 never are. A conditional put (create-only or if-match) is
//! retried only when the server refused it for load (`RateLimited`): after a timeout or a
//! broken connection it may have been applied, and a retry would then fail its own condition.
//! Multipart parts and completion are not retried here: a part's number is fixed by call order.
//!
//! Stores that retry internally (`Capabilities::retries_internally`, e.g. S3 through
//! object_store) take their policy from the same [`RetryPolicy`] and are not wrapped.

use crate::config::Config;
use crate::error::{ErrorKind, Result};
use crate::key::Key;
use crate::layer::Layer;
use crate::store::*;
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use std::fmt;
use std::sync::Arc;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// How often and how long to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 disables retries).
    pub max_attempts: u32,
    /// First backoff; each later one doubles, capped at `max_delay`, then full jitter.
    pub base: Duration,
    /// Largest single backoff.
    pub max_delay: Duration,
    /// No retry starts after this much time since the first attempt.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            budget: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The policy a config asks for: `max_retries` (attempts - 1), `retry_timeout` (budget),
    /// and no retries at all when `retry = false`.
    pub fn from_config(config: &Config) -> Self {
        let d = RetryPolicy::default();
        let max_attempts = if config.retry == Some(false) {
            1
        } else {
            config.max_retries.map_or(d.max_attempts, |r| r.saturating_add(1).min(u32::MAX as usize) as u32)
        };
        RetryPolicy { max_attempts, budget: config.retry_timeout.unwrap_or(d.budget), ..d }
    }

    /// Retries after the first attempt.
    pub fn max_retries(&self) -> usize {
        self.max_attempts.saturating_sub(1) as usize
    }

    /// The backoff before retry number `retry` (1-based): uniform in [0, min(max, base*2^(n-1))].
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32.checked_shl(retry.saturating_sub(1)).unwrap_or(u32::MAX));
        let cap = exp.min(self.max_delay);
        cap.mul_f64(rand::random::<f64>())
    }

    /// Runs `op` until it succeeds, fails permanently, or attempts or budget run out.
    /// `retryable` decides, per error, whether another attempt may help.
    pub async fn run<T, F, Fut>(
        &self,
        mut op: F,
        retryable: impl Fn(&crate::Error) -> bool,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let start = Instant::now();
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    if attempt >= self.max_attempts || !retryable(&e) {
                        return Err(e);
                    }
                    let delay = self.backoff(attempt);
                    if start.elapsed() + delay > self.budget {
                        return Err(e);
                    }
                    tracing::debug!(attempt, ?delay, error = %e, "retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }
}

fn temporary(e: &crate::Error) -> bool {
    e.is_temporary()
}

/// A conditional write may have landed if the request timed out or the connection broke.
fn temporary_and_unapplied(e: &crate::Error) -> bool {
    e.is_temporary() && e.kind() == ErrorKind::RateLimited
}

/// Wraps stores in [`RetryStore`].
#[derive(Debug, Clone, Default)]
pub struct RetryLayer {
    policy: RetryPolicy,
}

impl RetryLayer {
    /// A layer with this policy.
    pub fn new(policy: RetryPolicy) -> Self {
        RetryLayer { policy }
    }
}

impl<S: Store> Layer<S> for RetryLayer {
    type Store = RetryStore<S>;
    fn layer(&self, inner: S) -> RetryStore<S> {
        RetryStore::new(inner, self.policy.clone())
    }
}

/// A store that retries its inner store's transient failures.
#[derive(Debug)]
pub struct RetryStore<S> {
    // Shared so a listing can restart from its 'static stream.
    inner: Arc<S>,
    policy: RetryPolicy,
}

impl<S: Store> RetryStore<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, policy: RetryPolicy) -> Self {
        RetryStore { inner: Arc::new(inner), policy }
    }

    /// The policy in use.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: Store> fmt::Display for RetryStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// Name of a listing entry, for resuming after a failure.
fn entry_name(e: &ListEntry) -> &str {
    match e {
        ListEntry::Object(m) => m.key.as_str(),
        ListEntry::Prefix(p) => p,
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: Store> Store for RetryStore<S> {
    fn capabilities(&self) -> Capabilities {
        Capabilities { retries_internally: true, ..self.inner.capabilities() }
    }

    async fn put_opts(&self, key: &Key, data: Bytes, opts: PutOptions) -> Result<PutResult> {
        let retryable = match opts.mode {
            PutMode::Overwrite => temporary,
            PutMode::Create | PutMode::Update(_) => temporary_and_unapplied,
        };
        self.policy
            .run(|| self.inner.put_opts(key, data.clone(), opts.clone()), retryable)
            .await
    }

    async fn put_multipart_opts(
        &self,
        key: &Key,
        opts: PutOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        // Starting an upload has no effect until completion, so it is safe to repeat.
        self.policy.run(|| self.inner.put_multipart_opts(key, opts.clone()), temporary).await
    }

    async fn get_opts(&self, key: &Key, opts: GetOptions) -> Result<GetResult> {
        self.policy.run(|| self.inner.get_opts(key, opts.clone()), temporary).await
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        self.policy.run(|| self.inner.head(key), temporary).await
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        self.policy.run(|| self.inner.delete(key), temporary).await
    }

    fn delete_stream<'a>(
        &'a self,
        keys: BoxStream<'a, Key>,
    ) -> BoxStream<'a, (Key, Result<()>)> {
        // Keep the inner store's batching; retry only the keys that failed transiently.
        self.inner
            .delete_stream(keys)
            .map(move |(k, r)| async move {
                match r {
                    Err(e) if e.is_temporary() => {
                        let r = self.delete(&k).await;
                        (k, r)
                    }
                    r => (k, r),
                }
            })
            .buffer_unordered(16)
            .boxed()
    }

    fn list(&self, opts: ListOptions) -> BoxStream<'static, Result<ListEntry>> {
        // On a transient failure, list again after the last yielded entry.
        struct State<S> {
            inner: Arc<S>,
            opts: ListOptions,
            policy: RetryPolicy,
            stream: BoxStream<'static, Result<ListEntry>>,
            last: Option<String>,
            failures: u32,
            start: Instant,
        }
        let state = State {
            stream: self.inner.list(opts.clone()),
            inner: Arc::clone(&self.inner),
            opts,
            policy: self.policy.clone(),
            last: None,
            failures: 0,
            start: Instant::now(),
        };
        futures::stream::unfold(Some(state), |st| async move {
            let mut st = st?;
            loop {
                match st.stream.next().await {
                    None => return None,
                    Some(Ok(e)) => {
                        // A restarted delimiter listing repeats the prefix it stopped in.
                        if st.last.as_deref().is_some_and(|l| entry_name(&e) <= l) {
                            continue;
                        }
                        st.last = Some(entry_name(&e).to_string());
                        return Some((Ok(e), Some(st)));
                    }
                    Some(Err(e)) => {
                        st.failures += 1;
                        let delay = st.policy.backoff(st.failures);
                        if !e.is_temporary()
                            || st.failures >= st.policy.max_attempts
                            || st.start.elapsed() + delay > st.policy.budget
                        {
                            return Some((Err(e), None));
                        }
                        tracing::debug!(attempt = st.failures, ?delay, error = %e, "retrying list");
                        tokio::time::sleep(delay).await;
                        let mut opts = st.opts.clone();
                        if let Some(last) = st.last.as_ref().filter(|l| !l.ends_with('/')) {
                            opts.start_after = Some(last.clone());
                        }
                        st.stream = st.inner.list(opts);
                    }
                }
            }
        })
        .boxed()
    }

    async fn copy_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        let retryable = if opts.if_not_exists { temporary_and_unapplied } else { temporary };
        self.policy.run(|| self.inner.copy_opts(from, to, opts.clone()), retryable).await
    }

    async fn health_check(&self) -> Result<()> {
        self.policy.run(|| self.inner.health_check(), temporary).await
    }
}
