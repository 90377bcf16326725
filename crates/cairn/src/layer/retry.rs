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
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

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
            config.max_retries.map_or(d.max_attempts, |r| {
                r.saturating_add(1).min(u32::MAX as usize) as u32
            })
        };
        RetryPolicy {
            max_attempts,
            budget: config.retry_timeout.unwrap_or(d.budget),
            ..d
        }
    }

    /// Retries after the first attempt.
    pub fn max_retries(&self) -> usize {
        self.max_attempts.saturating_sub(1) as usize
    }

    /// The backoff before retry number `retry` (1-based): uniform in [0, min(max, base*2^(n-1))].
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self.base.saturating_mul(
            1u32.checked_shl(retry.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
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
            let span = tracing::debug_span!("attempt", attempt);
            match op().instrument(span).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    if !retryable(&e) {
                        return Err(e);
                    }
                    // Out of attempts or time: persistent, so no outer loop retries it again.
                    if attempt >= self.max_attempts {
                        return Err(e.set_persistent());
                    }
                    let delay = self.backoff(attempt);
                    if start.elapsed() + delay > self.budget {
                        return Err(e.set_persistent());
                    }
                    tracing::debug!(attempt, ?delay, error = %e, "retrying");
                    metrics::counter!("cairn_retries_total", "kind" => e.kind().as_str())
                        .increment(1);
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
        RetryStore {
            inner: Arc::new(inner),
            policy,
        }
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

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: Store> Store for RetryStore<S> {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            retries_internally: true,
            ..self.inner.capabilities()
        }
    }

    async fn put_opts(&self, key: &Key, data: Bytes, opts: PutOptions) -> Result<PutResult> {
        let retryable = match opts.mode {
            PutMode::Overwrite => temporary,
            PutMode::Create | PutMode::Update(_) => temporary_and_unapplied,
        };
        self.policy
            .run(
                || self.inner.put_opts(key, data.clone(), opts.clone()),
                retryable,
            )
            .await
    }

    async fn put_multipart_opts(
        &self,
        key: &Key,
        opts: PutOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        // Starting an upload has no effect until completion, so it is safe to repeat.
        self.policy
            .run(
                || self.inner.put_multipart_opts(key, opts.clone()),
                temporary,
            )
            .await
    }

    async fn get_opts(&self, key: &Key, opts: GetOptions) -> Result<GetResult> {
        self.policy
            .run(|| self.inner.get_opts(key, opts.clone()), temporary)
            .await
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        self.policy.run(|| self.inner.head(key), temporary).await
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        self.policy.run(|| self.inner.delete(key), temporary).await
    }

    fn delete_stream<'a>(&'a self, keys: BoxStream<'a, Key>) -> BoxStream<'a, (Key, Result<()>)> {
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
                        if st.last.as_deref().is_some_and(|l| e.name() <= l) {
                            continue;
                        }
                        st.last = Some(e.name().to_string());
                        return Some((Ok(e), Some(st)));
                    }
                    Some(Err(e)) => {
                        st.failures += 1;
                        let delay = st.policy.backoff(st.failures);
                        if !e.is_temporary() {
                            return Some((Err(e), None));
                        }
                        if st.failures >= st.policy.max_attempts
                            || st.start.elapsed() + delay > st.policy.budget
                        {
                            return Some((Err(e.set_persistent()), None));
                        }
                        tracing::debug!(attempt = st.failures, ?delay, error = %e, "retrying list");
                        metrics::counter!("cairn_retries_total", "kind" => e.kind().as_str())
                            .increment(1);
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
        let retryable = if opts.if_not_exists {
            temporary_and_unapplied
        } else {
            temporary
        };
        self.policy
            .run(|| self.inner.copy_opts(from, to, opts.clone()), retryable)
            .await
    }

    async fn rename_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        // Not idempotent: an attempt that timed out may have moved the object already.
        self.policy
            .run(
                || self.inner.rename_opts(from, to, opts.clone()),
                temporary_and_unapplied,
            )
            .await
    }

    async fn health_check(&self) -> Result<()> {
        self.policy
            .run(|| self.inner.health_check(), temporary)
            .await
    }

    fn digest_scheme(&self) -> crate::digest::DigestScheme {
        self.inner.digest_scheme()
    }

    fn server_side(&self) -> Option<crate::server_side::ServerSide> {
        self.inner.server_side()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryStore;
    use crate::{Error, StoreExt};
    use futures::TryStreamExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// A memory store whose calls fail with the queued kinds first, counting every call.
    #[derive(Debug, Default)]
    struct Flaky {
        inner: MemoryStore,
        failures: Mutex<Vec<ErrorKind>>,
        calls: AtomicUsize,
        /// Listing: entries yielded before the queued failure, on the first call only.
        list_break_after: Mutex<Option<usize>>,
    }

    impl Flaky {
        fn failing(kinds: &[ErrorKind]) -> Self {
            let f = Flaky::default();
            *f.failures.lock().unwrap() = kinds.iter().rev().copied().collect();
            f
        }
        fn always(kind: ErrorKind) -> Self {
            Flaky::failing(&[kind; 1000])
        }
        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
        fn next_fault(&self) -> Result<()> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            match self.failures.lock().unwrap().pop() {
                Some(kind) => Err(Error::new(kind, "injected fault")),
                None => Ok(()),
            }
        }
    }

    impl fmt::Display for Flaky {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("flaky://")
        }
    }

    #[async_trait]
    impl Store for Flaky {
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                local: false,
                ..self.inner.capabilities()
            }
        }
        async fn put_opts(&self, key: &Key, data: Bytes, opts: PutOptions) -> Result<PutResult> {
            self.next_fault()?;
            self.inner.put_opts(key, data, opts).await
        }
        async fn put_multipart_opts(
            &self,
            key: &Key,
            opts: PutOptions,
        ) -> Result<Box<dyn MultipartUpload>> {
            self.next_fault()?;
            self.inner.put_multipart_opts(key, opts).await
        }
        async fn get_opts(&self, key: &Key, opts: GetOptions) -> Result<GetResult> {
            self.next_fault()?;
            self.inner.get_opts(key, opts).await
        }
        async fn head(&self, key: &Key) -> Result<ObjectMeta> {
            self.next_fault()?;
            self.inner.head(key).await
        }
        async fn delete(&self, key: &Key) -> Result<()> {
            self.next_fault()?;
            self.inner.delete(key).await
        }
        fn list(&self, opts: ListOptions) -> BoxStream<'static, Result<ListEntry>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let inner = self.inner.list(opts);
            match self.list_break_after.lock().unwrap().take() {
                None => inner,
                Some(n) => inner
                    .take(n)
                    .chain(futures::stream::once(async {
                        Err(Error::new(ErrorKind::Network, "reset"))
                    }))
                    .boxed(),
            }
        }
        async fn copy_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
            self.next_fault()?;
            self.inner.copy_opts(from, to, opts).await
        }
        async fn health_check(&self) -> Result<()> {
            self.next_fault()
        }
    }

    fn k(s: &str) -> Key {
        Key::new(s).unwrap()
    }

    async fn seeded(flaky: Flaky) -> RetryStore<Flaky> {
        flaky.inner.put(&k("a"), &b"hello"[..]).await.unwrap();
        RetryStore::new(flaky, RetryPolicy::default())
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_success() {
        let s = seeded(Flaky::failing(&[ErrorKind::Network, ErrorKind::Timeout])).await;
        assert_eq!(s.get(&k("a")).await.unwrap(), &b"hello"[..]);
        assert_eq!(s.inner().calls(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_max_attempts() {
        let s = seeded(Flaky::always(ErrorKind::Network)).await;
        let e = s.get(&k("a")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Network);
        assert_eq!(s.inner().calls(), 4, "default policy: 4 attempts in all");
        // The budget is spent: an outer loop must not start another round.
        assert!(e.is_persistent() && !e.is_temporary(), "{e}");
        // Nor does a second retry layer on top.
        let twice = RetryStore::new(s, RetryPolicy::default());
        twice.get(&k("a")).await.unwrap_err();
        assert_eq!(
            twice.inner().inner().calls(),
            8,
            "one more round of 4, not 16"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_failures_are_not_retried() {
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::PermissionDenied,
            ErrorKind::Unauthenticated,
            ErrorKind::PreconditionFailed,
            ErrorKind::InvalidInput,
        ] {
            let s = seeded(Flaky::always(kind)).await;
            assert_eq!(s.head(&k("a")).await.unwrap_err().kind(), kind);
            assert_eq!(s.inner().calls(), 1, "{kind:?} must not be retried");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn conditional_puts_are_not_retried_after_a_timeout() {
        let create = PutOptions::default().mode(PutMode::Create);
        let s = seeded(Flaky::failing(&[ErrorKind::Timeout])).await;
        let e = s
            .put_opts(&k("b"), Bytes::from_static(b"x"), create.clone())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert_eq!(s.inner().calls(), 1, "the write may have landed");
        // A refusal for load means nothing was written: safe to repeat.
        let s = seeded(Flaky::failing(&[ErrorKind::RateLimited])).await;
        s.put_opts(&k("b"), Bytes::from_static(b"x"), create)
            .await
            .unwrap();
        assert_eq!(s.inner().calls(), 2);
        // Plain puts are idempotent and retried after a timeout.
        let s = seeded(Flaky::failing(&[ErrorKind::Timeout])).await;
        s.put(&k("c"), &b"x"[..]).await.unwrap();
        assert_eq!(s.inner().calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_time_budget_bounds_retries() {
        let policy = RetryPolicy {
            max_attempts: 1000,
            base: Duration::from_millis(100),
            max_delay: Duration::from_millis(400),
            budget: Duration::from_secs(2),
        };
        let s = RetryStore::new(Flaky::always(ErrorKind::Network), policy.clone());
        let start = Instant::now();
        s.health_check().await.unwrap_err();
        // Virtual time (paused clock): nothing here sleeps for real.
        assert!(start.elapsed() <= policy.budget, "{:?}", start.elapsed());
        let calls = s.inner().calls();
        assert!(calls > 1 && calls < 1000, "{calls} attempts");
    }

    #[tokio::test(start_paused = true)]
    async fn a_broken_listing_resumes_without_repeats() {
        let flaky = Flaky::default();
        for i in 0..10 {
            flaky
                .inner
                .put(&k(&format!("l/{i}")), &b"x"[..])
                .await
                .unwrap();
        }
        *flaky.list_break_after.lock().unwrap() = Some(4);
        let s = RetryStore::new(flaky, RetryPolicy::default());
        let keys: Vec<String> = s
            .list_objects("l/")
            .map_ok(|m| m.key.into_string())
            .try_collect()
            .await
            .unwrap();
        let want: Vec<String> = (0..10).map(|i| format!("l/{i}")).collect();
        assert_eq!(keys, want);
        assert_eq!(s.inner().calls(), 2, "one restart");
    }

    #[tokio::test(start_paused = true)]
    async fn batch_deletes_retry_only_failed_keys() {
        let s = seeded(Flaky::failing(&[ErrorKind::Network, ErrorKind::NotFound])).await;
        let failed = s.delete_many(vec![k("a"), k("b"), k("c")]).await;
        // One transient failure is retried away; the NotFound one stays reported.
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].1.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn backoff_is_full_jitter_under_a_cap() {
        let p = RetryPolicy::default();
        for n in 1..20 {
            let cap = p.base.saturating_mul(1 << (n - 1).min(30)).min(p.max_delay);
            for _ in 0..50 {
                assert!(p.backoff(n) <= cap);
            }
        }
    }

    #[test]
    fn policy_follows_the_config() {
        let c = Config::from_pairs([("max_retries", "7"), ("retry_timeout", "9s")]).unwrap();
        let p = RetryPolicy::from_config(&c);
        assert_eq!((p.max_attempts, p.budget), (8, Duration::from_secs(9)));
        let off = Config::from_pairs([("retry", "false")]).unwrap();
        assert_eq!(RetryPolicy::from_config(&off).max_attempts, 1);
    }

    #[tokio::test]
    async fn open_wraps_only_stores_that_need_it() {
        // Memory is local: no retry layer. (S3 retries internally; see tests/conformance_s3.rs.)
        let s = crate::open("memory://").await.unwrap();
        assert!(!s.capabilities().retries_internally);
    }
}
