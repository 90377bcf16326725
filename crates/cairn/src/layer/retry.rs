//! Retries transient failures with exponential backoff, jitter and a total time budget.
//!
//! The default budget rides out a node restart of 10 s whatever the jitter draws (see
//! [`RetryPolicy::rides_out`] and docs/design.md, "Retry budget"), and still gives up on a
//! dead endpoint within [`RetryPolicy::budget`].
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
    /// First backoff; each later one doubles, capped at `max_delay`, then jittered into its
    /// upper half (so the waits add up to a known minimum).
    pub base: Duration,
    /// Largest single backoff.
    pub max_delay: Duration,
    /// No retry starts after this much time since the first attempt.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // AWS SDK standard mode (3 attempts, 1 s base, 20 s cap) is the floor; more attempts
        // so the waits add up past a 10 s restart on both retry loops (see `rides_out`).
        RetryPolicy {
            max_attempts: 11,
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(20),
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

    /// The backoff before retry number `retry` (1-based): uniform in [cap/2, cap] where
    /// cap = min(max_delay, base*2^(n-1)) ("equal jitter": spread, yet never near zero).
    pub fn backoff(&self, retry: u32) -> Duration {
        self.delay(retry, rand::random::<f64>())
    }

    /// [`RetryPolicy::backoff`] with the jitter draw `jitter` in [0, 1] given.
    pub fn delay(&self, retry: u32, jitter: f64) -> Duration {
        let exp = self.base.saturating_mul(
            1u32.checked_shl(retry.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        let cap = exp.min(self.max_delay);
        cap.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// The longest outage [`RetryPolicy::run`] rides out whatever the jitter draws: its last
    /// attempt starts no earlier than this after the first. Retries stop either when attempts
    /// run out (after at least the sum of the shortest waits) or when the next wait would pass
    /// the budget (so more than `budget - max_delay` has gone by).
    pub fn rides_out(&self) -> Duration {
        let shortest: Duration = (1..self.max_attempts).map(|n| self.delay(n, 0.0)).sum();
        shortest.min(self.budget.saturating_sub(self.max_delay))
    }

    /// The same policy for object_store's own request loop (the S3 data plane). Its backoff
    /// is decorrelated jitter: the first wait is `init_backoff`, each later one uniform in
    /// [init_backoff, 2 * previous], capped at `max_backoff`.
    pub(crate) fn object_store_config(&self) -> object_store::RetryConfig {
        object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: self.base,
                max_backoff: self.max_delay,
                base: 2.0,
            },
            max_retries: self.max_retries(),
            retry_timeout: self.budget,
        }
    }

    /// The longest outage object_store's loop rides out whatever its jitter draws: every wait
    /// is at least `base`, and it stops retrying only after `max_retries` or once the budget
    /// has passed.
    pub fn object_store_rides_out(&self) -> Duration {
        self.base
            .saturating_mul(self.max_retries() as u32)
            .min(self.budget)
    }

    /// The longest object_store's loop keeps retrying a dead endpoint, request time aside: it
    /// checks the budget before its wait, so it may overrun it by one wait.
    pub fn object_store_gives_up_within(&self) -> Duration {
        let longest: Duration = (1..self.max_attempts).map(|n| self.delay(n, 1.0)).sum();
        longest.min(self.budget + self.max_delay)
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
        /// Every call fails `Unavailable` until then (a node restarting).
        down_until: Mutex<Option<Instant>>,
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
            if self
                .down_until
                .lock()
                .unwrap()
                .is_some_and(|t| Instant::now() < t)
            {
                return Err(Error::new(ErrorKind::Unavailable, "no quorum"));
            }
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
        // A budget long enough that attempts, not time, run out.
        let policy = RetryPolicy {
            max_attempts: 4,
            budget: Duration::from_secs(3600),
            ..RetryPolicy::default()
        };
        let flaky = Flaky::always(ErrorKind::Network);
        let s = RetryStore::new(flaky, policy.clone());
        let e = s.get(&k("a")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Network);
        assert_eq!(s.inner().calls(), 4, "4 attempts in all");
        // The budget is spent: an outer loop must not start another round.
        assert!(e.is_persistent() && !e.is_temporary(), "{e}");
        // Nor does a second retry layer on top.
        let twice = RetryStore::new(s, policy);
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
    fn backoff_is_equal_jitter_under_a_cap() {
        let p = RetryPolicy::default();
        for n in 1..20 {
            let cap = p.base.saturating_mul(1 << (n - 1).min(30)).min(p.max_delay);
            for _ in 0..50 {
                let d = p.backoff(n);
                assert!(d >= cap / 2 && d <= cap, "retry {n}: {d:?}");
            }
        }
    }

    fn secs(ds: impl IntoIterator<Item = Duration>) -> Vec<f64> {
        ds.into_iter().map(|d| d.as_secs_f64()).collect()
    }

    #[test]
    fn the_default_schedule_is_pinned() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_retries(), 10);
        let shortest = secs((1..=10).map(|n| p.delay(n, 0.0)));
        let longest = secs((1..=10).map(|n| p.delay(n, 1.0)));
        assert_eq!(
            shortest,
            [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0, 10.0]
        );
        assert_eq!(
            longest,
            [1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0, 20.0, 20.0, 20.0]
        );
        // At least the AWS SDKs' standard mode: 3 attempts, 1 s base, 20 s cap.
        assert!(p.max_attempts >= 3 && p.base >= Duration::from_secs(1));
        assert!(p.max_delay >= Duration::from_secs(20));
    }

    #[test]
    fn the_default_budget_rides_out_a_ten_second_restart_on_both_loops() {
        let p = RetryPolicy::default();
        assert_eq!(p.rides_out(), Duration::from_secs(10));
        assert_eq!(p.object_store_rides_out(), Duration::from_secs(10));
        // A dead endpoint: given up on within the budget (cairn's loop) or the budget plus
        // one wait (object_store's, which checks the budget before it waits).
        assert_eq!(p.object_store_gives_up_within(), Duration::from_secs(50));
        let c = p.object_store_config();
        assert_eq!(
            (c.max_retries, c.retry_timeout, c.backoff.init_backoff),
            (10, Duration::from_secs(30), Duration::from_secs(1))
        );
        assert_eq!(c.backoff.max_backoff, Duration::from_secs(20));
        // The old default (4 attempts, 100 ms base) rode out 0.35 s at most.
        let old = RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            budget: Duration::from_secs(30),
        };
        assert_eq!(old.object_store_rides_out(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_ten_second_outage_is_ridden_out_and_a_dead_store_fails_within_the_budget() {
        for _ in 0..20 {
            let s = seeded(Flaky::default()).await;
            *s.inner().down_until.lock().unwrap() = Some(Instant::now() + Duration::from_secs(10));
            assert_eq!(s.get(&k("a")).await.unwrap(), &b"hello"[..]);
        }
        let s = seeded(Flaky::always(ErrorKind::Unavailable)).await;
        let start = Instant::now();
        let e = s.get(&k("a")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.is_persistent(), "{e}");
        let took = start.elapsed();
        assert!(took <= RetryPolicy::default().budget, "{took:?}");
        assert!(took >= RetryPolicy::default().rides_out(), "{took:?}");
    }

    #[test]
    fn rides_out_is_bounded_by_attempts_or_budget() {
        let few = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        // Two waits of at least 0.5 s and 1 s.
        assert_eq!(few.rides_out(), Duration::from_millis(1500));
        assert_eq!(few.object_store_rides_out(), Duration::from_secs(2));
        assert_eq!(few.object_store_gives_up_within(), Duration::from_secs(3));
        let off = RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        };
        assert_eq!(off.rides_out(), Duration::ZERO);
        assert_eq!(off.object_store_config().max_retries, 0);
    }

    #[test]
    fn policy_follows_the_config() {
        let c = Config::from_pairs([("max_retries", "7"), ("retry_timeout", "9s")]).unwrap();
        let p = RetryPolicy::from_config(&c);
        assert_eq!((p.max_attempts, p.budget), (8, Duration::from_secs(9)));
        let os = p.object_store_config();
        assert_eq!(
            (os.max_retries, os.retry_timeout),
            (7, Duration::from_secs(9))
        );
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
