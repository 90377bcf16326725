//! A store layer that injects faults, for reliability tests: seeded, so a seed replays the
//! same faults for the same sequence of calls.
//!
//! Rules pick calls by operation and key prefix, each with a rate. A call draws once per
//! matching rule, in order, and the first hit decides its fault (one fault per call). Faults:
//! an error of any kind (before the call reaches the store, or after it was applied: a lost
//! reply), latency, and for gets a short read (the body ends early, cleanly), a body cut off
//! mid-stream (an error after some bytes) or one flipped byte (corruption in transit). Every
//! injection is counted by name ([`Fault::name`]).
//!
//! Sit it directly on the backend, under the retry layer, where a flaky network would be.

use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::store::*;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The calls a rule can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// A single put.
    Put,
    /// Starting a multipart upload.
    MultipartStart,
    /// One part of a multipart upload.
    Part,
    /// Completing a multipart upload.
    Complete,
    /// A get (whole or ranged).
    Get,
    /// A head.
    Head,
    /// A delete.
    Delete,
    /// A listing.
    List,
    /// A copy.
    Copy,
    /// A rename.
    Rename,
    /// A health check.
    Health,
}

/// What to inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Fail with this kind before the call reaches the store. Network, Timeout, RateLimited,
    /// Unavailable and Unexpected (a 5xx) are temporary; other kinds are not.
    Error(ErrorKind),
    /// Apply the call, then fail with this kind (the reply was lost).
    ErrorAfter(ErrorKind),
    /// Wait this long, then make the call.
    Latency(Duration),
    /// Gets: the body ends early without an error.
    ShortRead,
    /// Gets (and listings): an error after part of the body (or of the entries).
    CutOff,
    /// Gets: one byte of the body flipped.
    FlipByte,
}

impl Fault {
    /// The name it is counted under: `error:<kind>`, `error_after:<kind>`, `latency`,
    /// `short_read`, `cut_off`, `flip_byte`.
    pub fn name(&self) -> String {
        match self {
            Fault::Error(k) => format!("error:{}", k.as_str()),
            Fault::ErrorAfter(k) => format!("error_after:{}", k.as_str()),
            Fault::Latency(_) => "latency".into(),
            Fault::ShortRead => "short_read".into(),
            Fault::CutOff => "cut_off".into(),
            Fault::FlipByte => "flip_byte".into(),
        }
    }

    fn error(kind: ErrorKind, op: Op) -> Error {
        let e = Error::new(kind, format!("injected fault ({op:?})"));
        // An injected Unexpected stands for a 5xx, which S3 clients retry.
        if kind == ErrorKind::Unexpected {
            e.set_temporary(true)
        } else {
            e
        }
    }
}

/// One rule: which calls, how often, what fault.
#[derive(Debug, Clone)]
pub struct Rule {
    ops: Vec<Op>,
    prefix: String,
    rate: f64,
    fault: Fault,
    limit: Option<u64>,
    hits: u64,
}

impl Rule {
    /// `fault` on every call (any op, any key) with probability `rate` in [0, 1].
    pub fn new(fault: Fault, rate: f64) -> Self {
        Rule {
            ops: Vec::new(),
            prefix: String::new(),
            rate,
            fault,
            limit: None,
            hits: 0,
        }
    }

    /// Only these operations.
    pub fn ops(mut self, ops: &[Op]) -> Self {
        self.ops = ops.to_vec();
        self
    }

    /// Only keys (or listing prefixes) starting with `prefix`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// At most `n` injections in all (e.g. 1: a byte flipped once).
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }

    fn applies(&self, op: Op, key: &str) -> bool {
        // Body faults make sense only where there is a body.
        let shaped = match self.fault {
            Fault::ShortRead | Fault::FlipByte => op == Op::Get,
            Fault::CutOff => matches!(op, Op::Get | Op::List),
            _ => true,
        };
        shaped
            && (self.ops.is_empty() || self.ops.contains(&op))
            && key.starts_with(&self.prefix)
            && self.limit.is_none_or(|l| self.hits < l)
    }
}

/// splitmix64: tiny, seedable, and stable across crate versions (unlike `rand`'s RNGs).
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

#[derive(Debug)]
struct State {
    rng: Rng,
    rules: Vec<Rule>,
    counts: BTreeMap<String, u64>,
    calls: u64,
}

/// A store that injects faults into calls to `inner` (see the module docs).
#[derive(Debug)]
pub struct FaultStore<S> {
    inner: Arc<S>,
    state: Arc<Mutex<State>>,
}

impl<S> Clone for FaultStore<S> {
    fn clone(&self) -> Self {
        FaultStore {
            inner: Arc::clone(&self.inner),
            state: Arc::clone(&self.state),
        }
    }
}

impl<S: Store> FaultStore<S> {
    /// Wraps `inner`; no faults until rules are added.
    pub fn new(inner: S, seed: u64) -> Self {
        FaultStore {
            inner: Arc::new(inner),
            state: Arc::new(Mutex::new(State {
                rng: Rng(seed),
                rules: Vec::new(),
                counts: BTreeMap::new(),
                calls: 0,
            })),
        }
    }

    /// Adds a rule (rules are tried in the order added).
    pub fn rule(self, rule: Rule) -> Self {
        self.state.lock().unwrap().rules.push(rule);
        self
    }

    /// Adds a rule to a store already in use.
    pub fn add_rule(&self, rule: Rule) {
        self.state.lock().unwrap().rules.push(rule);
    }

    /// Removes every rule: calls pass through from now on.
    pub fn clear_rules(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    /// Injections so far, by [`Fault::name`].
    pub fn injected(&self) -> BTreeMap<String, u64> {
        self.state.lock().unwrap().counts.clone()
    }

    /// Injections so far, in all.
    pub fn total_injected(&self) -> u64 {
        self.state.lock().unwrap().counts.values().sum()
    }

    /// Calls that could have been faulted so far (each part of an upload is one).
    pub fn calls(&self) -> u64 {
        self.state.lock().unwrap().calls
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Draws the fault for one call, if any, and counts it.
    fn draw(&self, op: Op, key: &str) -> Option<Fault> {
        let mut st = self.state.lock().unwrap();
        st.calls += 1;
        let State {
            rng, rules, counts, ..
        } = &mut *st;
        for rule in rules.iter_mut() {
            if rule.applies(op, key) && rng.unit() < rule.rate {
                rule.hits += 1;
                *counts.entry(rule.fault.name()).or_default() += 1;
                return Some(rule.fault.clone());
            }
        }
        None
    }

    fn below(&self, n: u64) -> u64 {
        self.state.lock().unwrap().rng.below(n)
    }

    /// Runs `call` under the fault drawn for it.
    async fn around<T, F>(&self, op: Op, key: &str, call: F) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        match self.draw(op, key) {
            Some(Fault::Error(kind)) => Err(Fault::error(kind, op)),
            Some(Fault::ErrorAfter(kind)) => {
                call.await?;
                Err(Fault::error(kind, op))
            }
            Some(Fault::Latency(d)) => {
                tokio::time::sleep(d).await;
                call.await
            }
            _ => call.await,
        }
    }

    fn mangle(&self, fault: &Fault, body: Bytes) -> BoxStream<'static, Result<Bytes>> {
        let len = body.len() as u64;
        match fault {
            Fault::ShortRead => {
                let keep = self.below(len) as usize;
                futures::stream::once(async move { Ok(body.slice(..keep)) }).boxed()
            }
            Fault::CutOff => {
                let keep = self.below(len + 1) as usize;
                let err = Error::new(ErrorKind::Network, "injected fault: connection reset");
                futures::stream::iter([Ok(body.slice(..keep)), Err(err)]).boxed()
            }
            Fault::FlipByte if len > 0 => {
                let at = self.below(len) as usize;
                let mut b = BytesMut::from(&body[..]);
                b[at] ^= 1 << self.below(8);
                futures::stream::once(async move { Ok(b.freeze()) }).boxed()
            }
            _ => futures::stream::once(async move { Ok(body) }).boxed(),
        }
    }
}

impl<S: Store> fmt::Display for FaultStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.inner, f)
    }
}

struct FaultUpload<S> {
    store: FaultStore<S>,
    key: String,
    inner: Box<dyn MultipartUpload>,
}

impl<S> fmt::Debug for FaultUpload<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultUpload")
            .field("key", &self.key)
            .finish()
    }
}

#[async_trait]
impl<S: Store> MultipartUpload for FaultUpload<S> {
    fn put_part(&mut self, data: Bytes) -> BoxFuture<'static, Result<()>> {
        let fault = self.store.draw(Op::Part, &self.key);
        let part = self.inner.put_part(data);
        Box::pin(async move {
            match fault {
                Some(Fault::Error(kind)) => Err(Fault::error(kind, Op::Part)),
                Some(Fault::ErrorAfter(kind)) => {
                    part.await?;
                    Err(Fault::error(kind, Op::Part))
                }
                Some(Fault::Latency(d)) => {
                    tokio::time::sleep(d).await;
                    part.await
                }
                _ => part.await,
            }
        })
    }
    async fn complete(&mut self) -> Result<PutResult> {
        let (store, key) = (self.store.clone(), self.key.clone());
        store
            .around(Op::Complete, &key, self.inner.complete())
            .await
    }
    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
    fn add_trailing_metadata(&mut self, metadata: Metadata) {
        self.inner.add_trailing_metadata(metadata)
    }
}

#[async_trait]
impl<S: Store> Store for FaultStore<S> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn put_opts(&self, key: &Key, data: Bytes, opts: PutOptions) -> Result<PutResult> {
        self.around(Op::Put, key.as_str(), self.inner.put_opts(key, data, opts))
            .await
    }

    async fn put_multipart_opts(
        &self,
        key: &Key,
        opts: PutOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let inner = self
            .around(
                Op::MultipartStart,
                key.as_str(),
                self.inner.put_multipart_opts(key, opts),
            )
            .await?;
        Ok(Box::new(FaultUpload {
            store: self.clone(),
            key: key.to_string(),
            inner,
        }))
    }

    async fn get_opts(&self, key: &Key, opts: GetOptions) -> Result<GetResult> {
        let fault = self.draw(Op::Get, key.as_str());
        match fault {
            Some(Fault::Error(kind)) => Err(Fault::error(kind, Op::Get)),
            Some(Fault::ErrorAfter(kind)) => {
                self.inner.get_opts(key, opts).await?;
                Err(Fault::error(kind, Op::Get))
            }
            Some(Fault::Latency(d)) => {
                tokio::time::sleep(d).await;
                self.inner.get_opts(key, opts).await
            }
            Some(f) => {
                let r = self.inner.get_opts(key, opts).await?;
                let GetResult {
                    meta,
                    range,
                    body,
                    verified_sha256,
                } = r;
                let body = GetResult {
                    meta: meta.clone(),
                    range: range.clone(),
                    body,
                    verified_sha256: None,
                }
                .bytes()
                .await?;
                Ok(GetResult {
                    meta,
                    range,
                    body: self.mangle(&f, body),
                    verified_sha256,
                })
            }
            None => self.inner.get_opts(key, opts).await,
        }
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        self.around(Op::Head, key.as_str(), self.inner.head(key))
            .await
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        self.around(Op::Delete, key.as_str(), self.inner.delete(key))
            .await
    }

    fn list(&self, opts: ListOptions) -> BoxStream<'static, Result<ListEntry>> {
        let fault = self.draw(Op::List, &opts.prefix);
        let inner = self.inner.list(opts);
        let err = |kind| Fault::error(kind, Op::List);
        match fault {
            Some(Fault::Error(kind)) | Some(Fault::ErrorAfter(kind)) => {
                futures::stream::once(async move { Err(err(kind)) }).boxed()
            }
            Some(Fault::Latency(d)) => futures::stream::once(tokio::time::sleep(d))
                .filter_map(|_| futures::future::ready(None::<Result<ListEntry>>))
                .chain(inner)
                .boxed(),
            Some(Fault::CutOff) => {
                let n = self.below(8) as usize;
                inner
                    .take(n)
                    .chain(futures::stream::once(async {
                        Err(Error::new(
                            ErrorKind::Network,
                            "injected fault: listing cut off",
                        ))
                    }))
                    .boxed()
            }
            _ => inner,
        }
    }

    async fn copy_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        self.around(
            Op::Copy,
            from.as_str(),
            self.inner.copy_opts(from, to, opts),
        )
        .await
    }

    async fn rename_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        self.around(
            Op::Rename,
            from.as_str(),
            self.inner.rename_opts(from, to, opts),
        )
        .await
    }

    async fn health_check(&self) -> Result<()> {
        self.around(Op::Health, "", self.inner.health_check()).await
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
    use crate::StoreExt;

    fn k(s: &str) -> Key {
        Key::new(s).unwrap()
    }

    async fn run(seed: u64) -> (Vec<Option<ErrorKind>>, BTreeMap<String, u64>) {
        let s = FaultStore::new(MemoryStore::new(), seed)
            .rule(Rule::new(Fault::Error(ErrorKind::Unavailable), 0.2).prefix("a/"));
        let mut out = Vec::new();
        for i in 0..200 {
            let key = k(&format!("{}/{i}", if i % 2 == 0 { "a" } else { "b" }));
            out.push(s.put(&key, &b"x"[..]).await.err().map(|e| e.kind()));
        }
        (out, s.injected())
    }

    #[tokio::test]
    async fn a_seed_replays_the_same_faults_on_the_prefix_only() {
        let (a, counts) = run(7).await;
        assert_eq!(a, run(7).await.0, "same seed, same faults");
        assert_ne!(a, run(8).await.0, "another seed, other faults");
        let hits: Vec<usize> = (0..200).filter(|i| a[*i].is_some()).collect();
        assert!(hits.iter().all(|i| i % 2 == 0), "only a/: {hits:?}");
        // 20% of 100 calls, give or take.
        assert!((10..=30).contains(&hits.len()), "{}", hits.len());
        assert_eq!(counts["error:unavailable"], hits.len() as u64);
        assert!(a.iter().flatten().all(|k| *k == ErrorKind::Unavailable));
    }

    #[tokio::test]
    async fn body_faults_shorten_cut_or_flip_the_body() {
        let data = crate::testkit::pattern(1000, 1);
        let mem = MemoryStore::new();
        mem.put(&k("o"), data.clone()).await.unwrap();
        let s = FaultStore::new(mem, 3);
        s.add_rule(Rule::new(Fault::ShortRead, 1.0).limit(1));
        let got = s.get(&k("o")).await.unwrap();
        assert!(got.len() < data.len() && data.starts_with(&got));
        s.add_rule(Rule::new(Fault::CutOff, 1.0).limit(1));
        let e = s.get(&k("o")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Network, "{e}");
        s.add_rule(Rule::new(Fault::FlipByte, 1.0).limit(1));
        let got = s.get(&k("o")).await.unwrap();
        let diff = got.iter().zip(data.iter()).filter(|(a, b)| a != b).count();
        assert_eq!((got.len(), diff), (data.len(), 1));
        // Limits spent: the next read is clean.
        assert_eq!(s.get(&k("o")).await.unwrap(), data);
        let counts = s.injected();
        assert_eq!(
            (counts["short_read"], counts["cut_off"], counts["flip_byte"]),
            (1, 1, 1)
        );
        assert_eq!(s.total_injected(), 3);
    }

    #[tokio::test]
    async fn a_lost_reply_applies_the_call_and_injected_kinds_are_temporary() {
        let s = FaultStore::new(MemoryStore::new(), 1)
            .rule(Rule::new(Fault::ErrorAfter(ErrorKind::Timeout), 1.0).ops(&[Op::Put]));
        let e = s.put(&k("p"), &b"v"[..]).await.unwrap_err();
        assert!(e.kind() == ErrorKind::Timeout && e.is_temporary(), "{e}");
        assert_eq!(s.inner().get(&k("p")).await.unwrap(), &b"v"[..]);
        for kind in [
            ErrorKind::Network,
            ErrorKind::Timeout,
            ErrorKind::RateLimited,
            ErrorKind::Unavailable,
            ErrorKind::Unexpected,
        ] {
            assert!(Fault::error(kind, Op::Get).is_temporary(), "{kind:?}");
        }
        assert!(!Fault::error(ErrorKind::PermissionDenied, Op::Get).is_temporary());
    }
}
