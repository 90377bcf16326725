//! Shared by tests/transfer.rs and tests/sync.rs: a store wrapper that injects faults and
//! records requests, and the stores each test runs against (memory, local, moto, Garage).
#![allow(dead_code)]

use async_trait::async_trait;
use bytes::Bytes;
use cairn::store::*;
use cairn::{DynStore, Error, ErrorKind, Key, Result};
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One recorded GET: (key, range, if_match).
pub type SeenGet = (String, Option<GetRange>, Option<String>);

/// Faults to inject and what was seen. Each one-shot fault clears itself when it fires.
#[derive(Debug, Default)]
pub struct Faults {
    /// The next GET whose range starts at or after `.0` breaks after `.1` body bytes.
    pub break_body: Mutex<Option<(u64, usize)>>,
    /// Before the next GET that starts past byte 0, the object is replaced with these bytes.
    pub change_before_range: Mutex<Option<Bytes>>,
    /// Puts (plain and multipart) to keys ending with this fail with PermissionDenied.
    pub fail_puts_for: Mutex<Option<String>>,
    /// Multipart part number (0-based) that fails with a permanent error.
    pub fail_part: Mutex<Option<usize>>,
    /// The listing comes back with its first two objects swapped.
    pub unsorted_list: Mutex<bool>,
    /// GETs as (key, range, if_match).
    pub gets: Mutex<Vec<SeenGet>>,
    /// Put options seen, per key.
    pub puts: Mutex<Vec<(String, PutOptions)>>,
    pub multipart_started: AtomicUsize,
    pub parts: AtomicUsize,
    pub completes: AtomicUsize,
    pub aborts: AtomicUsize,
}

impl Faults {
    pub fn gets(&self) -> Vec<SeenGet> {
        self.gets.lock().unwrap().clone()
    }
    pub fn reset_counts(&self) {
        self.gets.lock().unwrap().clear();
        self.puts.lock().unwrap().clear();
        for c in [
            &self.multipart_started,
            &self.parts,
            &self.completes,
            &self.aborts,
        ] {
            c.store(0, Ordering::SeqCst);
        }
    }
    fn put_fails(&self, key: &Key) -> bool {
        self.fail_puts_for
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|k| key.as_str().ends_with(k.as_str()))
    }
}

/// A store that forwards to `inner`, injecting [`Faults`].
#[derive(Debug, Clone)]
pub struct Faulty {
    pub inner: DynStore,
    pub faults: Arc<Faults>,
}

impl Faulty {
    pub fn new(inner: DynStore) -> Self {
        Faulty {
            inner,
            faults: Arc::new(Faults::default()),
        }
    }
}

impl fmt::Display for Faulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)
    }
}

fn injected(key: &Key, what: &str) -> Error {
    Error::new(ErrorKind::PermissionDenied, format!("injected: {what}")).with_key(key.as_str())
}

#[derive(Debug)]
struct FaultyUpload {
    inner: Box<dyn MultipartUpload>,
    faults: Arc<Faults>,
    n: usize,
}

#[async_trait]
impl MultipartUpload for FaultyUpload {
    fn put_part(&mut self, data: Bytes) -> BoxFuture<'static, Result<()>> {
        let n = self.n;
        self.n += 1;
        self.faults.parts.fetch_add(1, Ordering::SeqCst);
        if *self.faults.fail_part.lock().unwrap() == Some(n) {
            return Box::pin(async move {
                Err(Error::new(
                    ErrorKind::PermissionDenied,
                    format!("injected: part {n} fails"),
                ))
            });
        }
        self.inner.put_part(data)
    }
    async fn complete(&mut self) -> Result<PutResult> {
        self.faults.completes.fetch_add(1, Ordering::SeqCst);
        self.inner.complete().await
    }
    async fn abort(&mut self) -> Result<()> {
        self.faults.aborts.fetch_add(1, Ordering::SeqCst);
        self.inner.abort().await
    }
}

/// Yields `n` bytes of `body`, then a temporary network error.
fn break_after(
    mut body: BoxStream<'static, Result<Bytes>>,
    n: usize,
) -> BoxStream<'static, Result<Bytes>> {
    // Collect the first n bytes, then fail: enough for tests (bodies here are small).
    let fut = async move {
        let mut out = Vec::new();
        let mut got = 0usize;
        while got < n {
            match body.next().await {
                Some(Ok(mut c)) => {
                    if got + c.len() > n {
                        c.truncate(n - got);
                    }
                    got += c.len();
                    out.push(Ok(c));
                }
                Some(Err(e)) => {
                    out.push(Err(e));
                    return out;
                }
                None => return out,
            }
        }
        out.push(Err(Error::new(
            ErrorKind::Network,
            "injected: connection reset mid-body",
        )));
        out
    };
    stream::once(fut).flat_map(stream::iter).boxed()
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl Store for Faulty {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn put_opts(&self, key: &Key, data: Bytes, opts: PutOptions) -> Result<PutResult> {
        self.faults
            .puts
            .lock()
            .unwrap()
            .push((key.to_string(), opts.clone()));
        if self.faults.put_fails(key) {
            return Err(injected(key, "puts to this key fail"));
        }
        self.inner.put_opts(key, data, opts).await
    }
    async fn put_multipart_opts(
        &self,
        key: &Key,
        opts: PutOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.faults
            .puts
            .lock()
            .unwrap()
            .push((key.to_string(), opts.clone()));
        if self.faults.put_fails(key) {
            return Err(injected(key, "puts to this key fail"));
        }
        self.faults.multipart_started.fetch_add(1, Ordering::SeqCst);
        let inner = self.inner.put_multipart_opts(key, opts).await?;
        Ok(Box::new(FaultyUpload {
            inner,
            faults: self.faults.clone(),
            n: 0,
        }))
    }
    async fn get_opts(&self, key: &Key, opts: GetOptions) -> Result<GetResult> {
        self.faults.gets.lock().unwrap().push((
            key.to_string(),
            opts.range.clone(),
            opts.if_match.clone(),
        ));
        let start = match &opts.range {
            Some(GetRange::Bounded(r)) => r.start,
            Some(GetRange::Offset(o)) => *o,
            _ => 0,
        };
        if start > 0 {
            let change = self.faults.change_before_range.lock().unwrap().take();
            if let Some(data) = change {
                self.inner.put(key, data).await?;
            }
        }
        let brk = {
            let mut b = self.faults.break_body.lock().unwrap();
            match *b {
                Some((min_start, n)) if start >= min_start => {
                    *b = None;
                    Some(n)
                }
                _ => None,
            }
        };
        let mut r = self.inner.get_opts(key, opts).await?;
        if let Some(n) = brk {
            r.body = break_after(r.body, n);
        }
        Ok(r)
    }
    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        self.inner.head(key).await
    }
    async fn delete(&self, key: &Key) -> Result<()> {
        self.inner.delete(key).await
    }
    fn delete_stream<'a>(&'a self, keys: BoxStream<'a, Key>) -> BoxStream<'a, (Key, Result<()>)> {
        self.inner.delete_stream(keys)
    }
    fn list(&self, opts: ListOptions) -> BoxStream<'static, Result<ListEntry>> {
        if *self.faults.unsorted_list.lock().unwrap() {
            let inner = self.inner.list(opts);
            let fut = async move {
                let mut all: Vec<Result<ListEntry>> = inner.collect().await;
                if all.len() >= 2 {
                    all.swap(0, 1);
                }
                all
            };
            return stream::once(fut).flat_map(stream::iter).boxed();
        }
        self.inner.list(opts)
    }
    async fn copy_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, opts).await
    }
    async fn health_check(&self) -> Result<()> {
        self.inner.health_check().await
    }
    async fn rename_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        self.inner.rename_opts(from, to, opts).await
    }
    fn digest_scheme(&self) -> cairn::digest::DigestScheme {
        self.inner.digest_scheme()
    }
    fn server_side(&self) -> Option<cairn::server_side::ServerSide> {
        self.inner.server_side()
    }
}

/// Reads `CAIRN_TEST_<SERVER>_<NAME>`; a missing variable fails the test (never a skip).
pub fn env(server: &str, name: &str) -> String {
    let var = format!("CAIRN_TEST_{server}_{name}");
    std::env::var(&var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: start the test servers (scripts/servers/start.sh ENV; source ENV)"
        )
    })
}

/// The S3 store of `server` (`MOTO` or `GARAGE`) scoped to a fresh prefix for `test`.
pub async fn s3_store(server: &str, test: &str) -> (DynStore, String) {
    s3_store_with(server, test, &[]).await
}

/// [`s3_store`] with extra options, e.g. `("checksum", "false")` for the bare backend.
pub async fn s3_store_with(server: &str, test: &str, extra: &[(&str, &str)]) -> (DynStore, String) {
    let run = std::env::var("CAIRN_TEST_RUN_ID").unwrap_or_else(|_| "local".into());
    let prefix = format!("{run}/ops-{test}-{:08x}", rand::random::<u32>());
    let bucket = env(server, "BUCKET");
    let mut config = cairn::Config::default();
    config.set("endpoint", &env(server, "ENDPOINT")).unwrap();
    config.set("region", &env(server, "REGION")).unwrap();
    config
        .set("access_key_id", &env(server, "ACCESS_KEY_ID"))
        .unwrap();
    config
        .set("secret_access_key", &env(server, "SECRET_ACCESS_KEY"))
        .unwrap();
    config.set("allow_http", "true").unwrap();
    config.set("path_style", "true").unwrap();
    config
        .set("provider", &server.to_ascii_lowercase())
        .unwrap();
    for (k, v) in extra {
        config.set(k, v).unwrap();
    }
    let store = cairn::open_with(&format!("s3://{bucket}/{prefix}"), config)
        .await
        .unwrap_or_else(|e| panic!("open {server} store: {e}"));
    (store, prefix)
}

/// A plain AWS SDK client of `server`, knowing nothing of cairn (the admin API, or another
/// tool writing objects).
pub fn sdk_client(server: &str) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let creds = Credentials::new(
        env(server, "ACCESS_KEY_ID"),
        env(server, "SECRET_ACCESS_KEY"),
        None,
        None,
        "test",
    );
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(env(server, "REGION")))
        .endpoint_url(env(server, "ENDPOINT"))
        .credentials_provider(creds)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Multipart uploads still open under `prefix` on `server`, via the S3 admin API.
pub async fn s3_open_uploads(server: &str, prefix: &str) -> Vec<String> {
    let client = sdk_client(server);
    let out = client
        .list_multipart_uploads()
        .bucket(env(server, "BUCKET"))
        .prefix(prefix)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{server}: list multipart uploads: {e:?}"));
    out.uploads()
        .iter()
        .filter_map(|u| u.key().map(String::from))
        .collect()
}

/// Files left in the local store's temp dir (where its multipart uploads live).
pub fn local_open_uploads(root: &std::path::Path) -> Vec<String> {
    match std::fs::read_dir(root.join(".cairn/tmp")) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Deterministic bytes.
pub fn data(len: usize, seed: u64) -> Bytes {
    cairn::testkit::pattern(len, seed)
}

pub fn k(s: &str) -> Key {
    Key::new(s).unwrap()
}

pub const MIB: usize = 1024 * 1024;
