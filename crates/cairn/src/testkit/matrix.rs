//! The layer matrix: every operation through every layer stack, on every store, with random
//! and compressible data.
//!
//! The conformance suite proves each store and each layer alone; this proves them composed,
//! as users run them. A [`Fixture`] is one (store, stack) pair opened through
//! [`crate::open_with`] (so URL and config parsing are part of it), optionally under a
//! [`PrefixStore`]. Each check function below takes a fixture and panics with a message naming
//! the store, the stack, the operation and the key; [`layer_matrix_tests!`](crate::layer_matrix_tests)
//! stamps out one `#[tokio::test]` per (store, stack, check), so a failure names all three.
//!
//! Stacks are cairn's default order (compress → encrypt → checksum → backend) configured as a
//! user configures them: `none` turns the checksum off, every other stack keeps the default
//! checksum and adds compression and/or encryption.
//!
//! On S3 servers every test writes under `{run id}/{process nonce}/matrix/{test}` of the shared
//! bucket, so a stack "without prefix" there is the bucket scope a user's URL names; the
//! prefixed stacks add a [`PrefixStore`] on top, as on memory and local.

use crate::archive::{verify_object, Archive, Filter, Verified};
use crate::backend::dir::PlainDirStore;
use crate::layer::PrefixStore;
use crate::ops::{sync, Compare, NoReporter, Summary, SyncOptions};
use crate::store::*;
use crate::transfer::{
    download_file, download_tree, put_stream, upload_file, upload_tree, TransferOptions, Writer,
    WriterOptions,
};
use crate::{Config, ErrorKind, Key};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

const MIB: usize = 1024 * 1024;
/// Part size of every multipart write in the matrix: 12 MiB bodies cross two part boundaries.
pub const PART: usize = 5 * MIB;
/// The prefix of the prefixed stacks (two segments, so prefix handling is not one-level).
pub const PREFIX: &str = "pre/fix";

/// Where the stack sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `memory://`
    Memory,
    /// `local://` in a fresh temp root.
    Local,
    /// The moto server of `CAIRN_TEST_MOTO_*`.
    Moto,
    /// The Garage server of `CAIRN_TEST_GARAGE_*`.
    Garage,
    /// A tiered store (write-through) with a temp hot dir, over a local cold store.
    TierLocal,
    /// [`Backend::TierLocal`] in write-back mode.
    TierLocalBack,
    /// A tiered store (write-through) with a temp hot dir, over Garage.
    TierGarage,
    /// [`Backend::TierGarage`] in write-back mode.
    TierGarageBack,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Memory => "memory",
            Backend::Local => "local",
            Backend::Moto => "moto",
            Backend::Garage => "garage",
            Backend::TierLocal => "tier-local",
            Backend::TierLocalBack => "tier-local-back",
            Backend::TierGarage => "tier-garage",
            Backend::TierGarageBack => "tier-garage-back",
        })
    }
}

/// Which byte-changing layers write new objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layers {
    /// No checksum, no compression, no encryption (`checksum=false`).
    None,
    /// The default: SHA-256 of the stored bytes.
    Checksum,
    /// Checksum + zstd.
    Zstd,
    /// Checksum + gzip.
    Gzip,
    /// Checksum + AES-256-GCM.
    Aes,
    /// Checksum + zstd + AES-256-GCM.
    ZstdAes,
}

/// A layer stack: layers, with or without [`PREFIX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stack {
    /// The layers.
    pub layers: Layers,
    /// Whether a [`PrefixStore`] scopes the stack to [`PREFIX`].
    pub prefix: bool,
}

impl Stack {
    /// A stack of `layers`, prefixed or not.
    pub const fn new(layers: Layers, prefix: bool) -> Self {
        Stack { layers, prefix }
    }
    /// Whether new objects are compressed.
    pub fn compresses(&self) -> bool {
        matches!(self.layers, Layers::Zstd | Layers::Gzip | Layers::ZstdAes)
    }
    /// Whether new objects are encrypted.
    pub fn encrypts(&self) -> bool {
        matches!(self.layers, Layers::Aes | Layers::ZstdAes)
    }
    /// Whether the checksum layer records a SHA-256.
    pub fn checksums(&self) -> bool {
        self.layers != Layers::None
    }
    /// The layer options, as a user passes them (`-o compression=zstd`, ...).
    pub fn options(&self) -> Vec<(&'static str, String)> {
        let mut o = Vec::new();
        match self.layers {
            Layers::None => o.push(("checksum", "false".to_string())),
            Layers::Checksum => {}
            Layers::Zstd => o.push(("compression", "zstd".into())),
            Layers::Gzip => o.push(("compression", "gzip".into())),
            Layers::Aes => o.push(("encryption_key", key_spec())),
            Layers::ZstdAes => {
                o.push(("compression", "zstd".into()));
                o.push(("encryption_key", key_spec()));
            }
        }
        o
    }
}

impl fmt::Display for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.layers {
            Layers::None => "none",
            Layers::Checksum => "checksum",
            Layers::Zstd => "zstd",
            Layers::Gzip => "gzip",
            Layers::Aes => "aes",
            Layers::ZstdAes => "zstd+aes",
        })?;
        if self.prefix {
            f.write_str("+prefix")?;
        }
        Ok(())
    }
}

/// `file:PATH` of a 32-byte key (hex), written once per process.
pub fn key_spec() -> String {
    static SPEC: OnceLock<String> = OnceLock::new();
    SPEC.get_or_init(|| {
        // Leaked on purpose: the file must outlive every store of the process.
        let dir = Box::leak(Box::new(tempfile::tempdir().expect("temp dir")));
        let path = dir.path().join("matrix.key");
        let hex: String = (0u8..32)
            .map(|b| format!("{:02x}", b.wrapping_mul(61).wrapping_add(7)))
            .collect();
        std::fs::write(&path, hex).expect("write key file");
        format!("file:{}", path.display())
    })
    .clone()
}

// ---------------------------------------------------------------------------------------------
// Data

/// What a body looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// xorshift bytes: never compress.
    Random,
    /// JSON lines, like an agent's event log.
    Json,
    /// CSV rows with a header, like a race-data export.
    Csv,
}

/// One test body.
#[derive(Debug, Clone)]
pub struct Body {
    /// A name usable in a key (`json-5MiB`).
    pub name: String,
    /// Random or compressible.
    pub kind: Kind,
    /// The bytes.
    pub data: Bytes,
}

impl Body {
    /// A body of `len` bytes of `kind`, deterministic in `seed`.
    pub fn new(kind: Kind, len: usize, seed: u64) -> Body {
        let data = match kind {
            Kind::Random => super::pattern(len, seed),
            Kind::Json => json_lines(len, seed),
            Kind::Csv => csv_rows(len, seed),
        };
        let kname = match kind {
            Kind::Random => "random",
            Kind::Json => "json",
            Kind::Csv => "csv",
        };
        let size = if len >= MIB && len.is_multiple_of(MIB) {
            format!("{}MiB", len / MIB)
        } else {
            format!("{len}B")
        };
        Body {
            name: format!("{kname}-{size}"),
            kind,
            data,
        }
    }
    /// Whether a compressor shrinks it (text of some size).
    pub fn compressible(&self) -> bool {
        self.kind != Kind::Random && self.data.len() >= 64 * 1024
    }
    /// Its length.
    pub fn len(&self) -> u64 {
        self.data.len() as u64
    }
    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// JSON lines of `len` bytes (the last line cut short), deterministic in `seed`.
pub fn json_lines(len: usize, seed: u64) -> Bytes {
    use std::fmt::Write;
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut s = String::with_capacity(len + 256);
    let statuses = ["ok", "ok", "ok", "retry", "failed", "skipped"];
    let mut i = 0u64;
    while s.len() < len {
        let r = next(&mut x);
        let _ = writeln!(
            s,
            "{{\"id\":{i},\"ts\":\"2026-11-{:02}T{:02}:{:02}:{:02}.{:03}Z\",\"agent\":\"agent-{}\",\
             \"step\":{},\"reward\":{}.{:04},\"status\":\"{}\",\"tags\":[\"matrix\",\"run-{}\"]}}",
            1 + r % 28,
            (r >> 8) % 24,
            (r >> 16) % 60,
            (r >> 24) % 60,
            (r >> 32) % 1000,
            (r >> 40) % 16,
            i % 500,
            (r >> 44) % 10,
            (r >> 48) % 10_000,
            statuses[(r >> 60) as usize % statuses.len()],
            seed % 7,
        );
        i += 1;
    }
    s.truncate(len);
    Bytes::from(s)
}

/// CSV rows of `len` bytes with a header (the last row cut short), deterministic in `seed`.
pub fn csv_rows(len: usize, seed: u64) -> Bytes {
    use std::fmt::Write;
    let mut x = seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1;
    let mut s = String::with_capacity(len + 256);
    s.push_str("lap,driver,team,sector1_ms,sector2_ms,sector3_ms,compound,pit\n");
    let teams = ["red", "blue", "green", "orange", "silver"];
    let tyres = ["soft", "medium", "hard"];
    let mut i = 0u64;
    while s.len() < len {
        let r = next(&mut x);
        let _ = writeln!(
            s,
            "{},driver-{:02},{},{},{},{},{},{}",
            i / 20 + 1,
            i % 20,
            teams[(i % 20) as usize % teams.len()],
            28_000 + r % 2_000,
            31_000 + (r >> 16) % 2_000,
            25_000 + (r >> 32) % 2_000,
            tyres[(r >> 48) as usize % tyres.len()],
            (r >> 60).is_multiple_of(9),
        );
        i += 1;
    }
    s.truncate(len);
    Bytes::from(s)
}

/// The everyday bodies: 0 B, 1 B, 5 MiB and 12 MiB (across the multipart threshold with
/// [`PART`]-sized parts), each random and compressible. Built once per process.
pub fn bodies() -> &'static [Body] {
    static B: OnceLock<Vec<Body>> = OnceLock::new();
    B.get_or_init(|| {
        vec![
            Body::new(Kind::Random, 0, 1),
            Body::new(Kind::Json, 0, 2),
            Body::new(Kind::Random, 1, 3),
            Body::new(Kind::Json, 1, 4),
            Body::new(Kind::Random, 5 * MIB, 5),
            Body::new(Kind::Json, 5 * MIB, 6),
            Body::new(Kind::Random, 12 * MIB, 7),
            Body::new(Kind::Csv, 12 * MIB, 8),
        ]
    })
}

/// The 64 MiB bodies, random and CSV (only for put, get, ranges and download).
///
/// One per stack, to keep the matrix within minutes: random (written with one put) on the
/// unprefixed stacks, CSV (streamed, multipart) on the prefixed ones, so every set of layers
/// sees both.
pub fn large_body(stack: Stack) -> Body {
    if stack.prefix {
        Body::new(Kind::Csv, 64 * MIB, 65)
    } else {
        Body::new(Kind::Random, 64 * MIB, 64)
    }
}

/// A small tree of files for sync and `cp -r`: nested directories, an empty file, text and
/// random bodies, the 12 MiB CSV across the multipart threshold. Relative path → bytes.
pub fn tree_files() -> BTreeMap<String, Bytes> {
    let b = bodies();
    let mut t = BTreeMap::new();
    t.insert("empty".to_string(), b[0].data.clone());
    t.insert("one.bin".to_string(), b[2].data.clone());
    t.insert("logs/events.jsonl".to_string(), b[5].data.clone());
    t.insert(
        "logs/2026/11/raw.bin".to_string(),
        b[4].data.slice(..MIB + 9),
    );
    t.insert("exports/laps.csv".to_string(), b[7].data.clone());
    t.insert(
        "exports/small.json".to_string(),
        Bytes::from_static(b"{\"a\":1}\n"),
    );
    t.insert(
        "ünï cødé/x y.txt".to_string(),
        json_lines(70_000, 9).slice(..),
    );
    t
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/// Reads `CAIRN_TEST_{server}_{name}`; a missing server fails the test.
fn server_var(server: &str, name: &str) -> String {
    let var = format!("CAIRN_TEST_{server}_{name}");
    match std::env::var(&var) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{var} is not set: start servers with scripts/servers/start.sh ENVFILE and \
             `source ENVFILE`"
        ),
    }
}

fn run_id() -> String {
    match std::env::var("CAIRN_TEST_RUN_ID") {
        Ok(v) if !v.is_empty() => v,
        _ => {
            panic!("CAIRN_TEST_RUN_ID is not set: source the env file of scripts/servers/start.sh")
        }
    }
}

/// One value per test process, so reruns against the same servers start clean.
fn nonce() -> &'static str {
    static N: OnceLock<String> = OnceLock::new();
    N.get_or_init(|| format!("{:08x}", rand::random::<u32>()))
}

/// One (store, stack) pair, empty, ready for one check.
pub struct Fixture {
    /// The store under test: the stack over the backend, prefixed if the stack says so.
    pub store: DynStore,
    /// Where it sits.
    pub backend: Backend,
    /// The stack.
    pub stack: Stack,
    test: String,
    _dirs: Vec<tempfile::TempDir>,
    /// The S3 scopes this fixture wrote to, as URLs with their options: emptied by
    /// [`Fixture::clean_up`] (the servers keep everything otherwise, and a full run wrote
    /// gigabytes to their disks).
    remote: Vec<(String, Vec<(String, String)>)>,
}

impl fmt::Display for Fixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} {}] {}", self.backend, self.stack, self.store)
    }
}

impl Fixture {
    /// Opens `stack` on `backend` for the test named `test`.
    pub async fn open(backend: Backend, stack: Stack, test: &str) -> Fixture {
        let (store, dirs, remote) = open_store(backend, stack, &format!("{stack}/{test}")).await;
        Fixture {
            store,
            backend,
            stack,
            test: test.to_string(),
            _dirs: dirs,
            remote: remote.into_iter().collect(),
        }
    }

    /// Deletes what the check wrote to S3 servers (after it passed: a failure keeps it to
    /// look at).
    pub async fn clean_up(&self) {
        for (url, pairs) in &self.remote {
            let config = Config::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .expect("options that opened the store");
            let store = crate::open_with(url, config)
                .await
                .unwrap_or_else(|e| panic!("{self}: open {url} to clean up: {e}"));
            let keys: Vec<Key> = store
                .list_objects("")
                .map_ok(|m| m.key)
                .try_collect()
                .await
                .unwrap_or_else(|e| panic!("{self}: list {url} to clean up: {e}"));
            let failed: Vec<String> = store
                .delete_stream(futures::stream::iter(keys).boxed())
                .filter_map(|(k, r)| async move { r.err().map(|e| format!("{k}: {e}")) })
                .collect()
                .await;
            assert!(failed.is_empty(), "{self}: clean up of {url}: {failed:?}");
        }
    }

    /// Another empty store with the same stack on the same backend (for store-to-store sync).
    pub async fn sibling(&mut self, name: &str) -> DynStore {
        let (store, dirs, remote) = open_store(
            self.backend,
            self.stack,
            &format!("{}/{}-{name}", self.stack, self.test),
        )
        .await;
        self._dirs.extend(dirs);
        self.remote.extend(remote);
        store
    }

    /// A fresh temp directory that lives as long as the fixture.
    pub fn tempdir(&mut self) -> PathBuf {
        let d = tempfile::tempdir().expect("temp dir");
        let p = d.path().to_path_buf();
        self._dirs.push(d);
        p
    }
}

/// An S3 scope as a URL and the options to open it with.
type Remote = (String, Vec<(String, String)>);

async fn open_store(
    backend: Backend,
    stack: Stack,
    scope: &str,
) -> (DynStore, Vec<tempfile::TempDir>, Option<Remote>) {
    let mut dirs = Vec::new();
    let options = stack.options();
    let mut pairs: Vec<(String, String)> = options
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let (backend, tier) = match backend {
        Backend::TierLocal => (Backend::Local, Some("write-through")),
        Backend::TierLocalBack => (Backend::Local, Some("write-back")),
        Backend::TierGarage => (Backend::Garage, Some("write-through")),
        Backend::TierGarageBack => (Backend::Garage, Some("write-back")),
        b => (b, None),
    };
    let url = match backend {
        Backend::Memory => "memory://".to_string(),
        Backend::Local => {
            let d = tempfile::tempdir().expect("temp dir");
            pairs.push(("root".into(), d.path().display().to_string()));
            dirs.push(d);
            "local://".to_string()
        }
        Backend::TierLocal
        | Backend::TierLocalBack
        | Backend::TierGarage
        | Backend::TierGarageBack => unreachable!("mapped above"),
        Backend::Moto | Backend::Garage => {
            let (server, provider) = match backend {
                Backend::Moto => ("MOTO", "moto"),
                _ => ("GARAGE", "garage"),
            };
            let v = |k: &str| server_var(server, k);
            pairs.push(("access_key_id".into(), v("ACCESS_KEY_ID")));
            pairs.push(("secret_access_key".into(), v("SECRET_ACCESS_KEY")));
            format!(
                "s3://{}/{}/{}/matrix/{scope}?endpoint={}&region={}&path_style=true&provider={provider}",
                v("BUCKET"),
                run_id(),
                nonce(),
                v("ENDPOINT"),
                v("REGION"),
            )
        }
    };
    // The cold side as the stack itself opens it (so its own layers delete their records).
    let remote =
        matches!(backend, Backend::Moto | Backend::Garage).then(|| (url.clone(), pairs.clone()));
    let url = match tier {
        Some(mode) => {
            let d = tempfile::tempdir().expect("temp dir");
            pairs.push(("hot".into(), d.path().display().to_string()));
            pairs.push(("mode".into(), mode.into()));
            dirs.push(d);
            format!("tier+{url}")
        }
        None => url,
    };
    let config = Config::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .unwrap_or_else(|e| panic!("options for {stack}: {e}"));
    let store = crate::open_with(&url, config)
        .await
        .unwrap_or_else(|e| panic!("open {url} with {stack}: {e}"));
    let store: DynStore = if stack.prefix {
        Arc::new(PrefixStore::new(store, PREFIX).expect("prefix is a key"))
    } else {
        store
    };
    (store, dirs, remote)
}

/// A plain directory as a sync side, as the CLI opens a path: the user's own files, no
/// layers, no sidecars.
pub fn plain_dir(dir: &Path) -> DynStore {
    Arc::new(PlainDirStore::new(dir).unwrap_or_else(|e| panic!("open {}: {e}", dir.display())))
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn k(s: &str) -> Key {
    Key::new(s).unwrap_or_else(|e| panic!("key {s:?}: {e}"))
}

/// How `got` differs from `want`, without dumping megabytes: lengths and the first differing
/// offset.
pub fn differ(got: &[u8], want: &[u8]) -> Option<String> {
    if got == want {
        return None;
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let peek = |b: &[u8]| {
        let end = (at + 16).min(b.len());
        String::from_utf8_lossy(&b[at.min(end)..end]).into_owned()
    };
    Some(format!(
        "bytes differ: got {} bytes, want {}; first difference at {at} (got {:?}, want {:?})",
        got.len(),
        want.len(),
        peek(got),
        peek(want)
    ))
}

/// Panics naming `what` unless `got` equals `want` exactly.
#[track_caller]
pub fn assert_same(got: &[u8], want: &[u8], what: fmt::Arguments<'_>) {
    if let Some(d) = differ(got, want) {
        panic!("{what}: {d}");
    }
}

/// The stored-size rules of the stack for a body: plain stacks store the logical bytes,
/// encryption adds, compression of text shrinks.
#[track_caller]
fn check_sizes(f: &Fixture, what: &str, m: &ObjectMeta, body: &[u8], compressible: bool) {
    let size = body.len() as u64;
    assert_eq!(m.size, size, "{f}: {what}: head size is the logical size");
    assert!(m.size_known, "{f}: {what}: head knows the logical size");
    let stored = m.stored_size;
    match (f.stack.compresses(), f.stack.encrypts()) {
        (false, false) => assert_eq!(stored, size, "{f}: {what}: stored_size"),
        (false, true) => assert!(
            stored > size,
            "{f}: {what}: encrypted stored_size {stored} must exceed size {size}"
        ),
        (true, _) if compressible => assert!(
            stored < size,
            "{f}: {what}: compressed stored_size {stored} must be under size {size}"
        ),
        (true, true) if size > 0 => assert!(
            stored > size,
            "{f}: {what}: random data through zstd+aes: stored_size {stored} must exceed {size}"
        ),
        _ => {}
    }
}

/// What `verify` must say of an object written through this stack.
fn expected_verify(f: &Fixture) -> Verified {
    if f.stack.checksums() {
        Verified::Ok
    } else {
        Verified::Unverifiable
    }
}

async fn check_verify(f: &Fixture, key: &Key) {
    let v = verify_object(&*f.store, key)
        .await
        .unwrap_or_else(|e| panic!("{f}: verify {key}: {e}"));
    assert_eq!(v, expected_verify(f), "{f}: verify {key}");
}

async fn get_all(f: &Fixture, key: &Key) -> Bytes {
    f.store
        .get(key)
        .await
        .unwrap_or_else(|e| panic!("{f}: get {key}: {e}"))
}

async fn stream_all(f: &Fixture, key: &Key) -> Vec<u8> {
    let mut body = f
        .store
        .get_stream(key)
        .await
        .unwrap_or_else(|e| panic!("{f}: get_stream {key}: {e}"));
    let mut out = Vec::new();
    while let Some(c) = body.next().await {
        out.extend_from_slice(&c.unwrap_or_else(|e| panic!("{f}: get_stream {key} body: {e}")));
    }
    out
}

fn chunks(data: &Bytes) -> impl futures::Stream<Item = crate::Result<Bytes>> + Unpin + Send {
    // Odd chunk sizes, so part boundaries never line up with writes.
    let step = MIB + 17;
    let v: Vec<crate::Result<Bytes>> = (0..data.len())
        .step_by(step)
        .map(|i| Ok(data.slice(i..(i + step).min(data.len()))))
        .collect();
    futures::stream::iter(v)
}

fn writer_options() -> WriterOptions {
    WriterOptions {
        part_size: PART,
        concurrency: 2,
        size_hint: None,
    }
}

/// Transfer options with [`PART`]-sized parts and a threshold that 12 MiB crosses.
pub fn transfer_options() -> TransferOptions {
    TransferOptions {
        part_size: PART,
        concurrency: 4,
        multipart_threshold: (PART + 1) as u64,
        object_concurrency: 8,
        ..Default::default()
    }
}

async fn put_body(f: &Fixture, key: &Key, data: &Bytes, opts: PutOptions) {
    f.store
        .put_opts(key, data.clone(), opts)
        .await
        .unwrap_or_else(|e| panic!("{f}: put {key} ({} bytes): {e}", data.len()));
}

async fn put_streamed(f: &Fixture, key: &Key, data: &Bytes, opts: PutOptions) {
    put_stream(&*f.store, key, chunks(data), opts, writer_options())
        .await
        .unwrap_or_else(|e| panic!("{f}: put_stream {key} ({} bytes): {e}", data.len()));
}

/// Every object under `prefix` with its logical size (resolved where the listing does not
/// know it).
async fn listed(f: &Fixture, store: &dyn Store, prefix: &str) -> BTreeMap<String, u64> {
    let metas: Vec<ObjectMeta> = store
        .list_objects(prefix)
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{f}: list {prefix:?} of {store}: {e}"));
    let mut out = BTreeMap::new();
    for m in metas {
        let key = m.key.to_string();
        let listed_size = m.size;
        let known = m.size_known;
        let r = store
            .resolve_size(m)
            .await
            .unwrap_or_else(|e| panic!("{f}: resolve_size {key}: {e}"));
        assert!(r.size_known, "{f}: resolve_size of {key} knows the size");
        if known {
            assert_eq!(
                listed_size, r.size,
                "{f}: listing of {key} says size_known with size {listed_size}, head says {}",
                r.size
            );
        }
        out.insert(key, r.size);
    }
    out
}

#[track_caller]
fn assert_listing(f: &Fixture, got: &BTreeMap<String, u64>, want: &BTreeMap<String, u64>) {
    let gk: BTreeSet<&String> = got.keys().collect();
    let wk: BTreeSet<&String> = want.keys().collect();
    assert!(
        gk == wk,
        "{f}: listed keys differ: extra {:?}, missing {:?}",
        gk.difference(&wk).collect::<Vec<_>>(),
        wk.difference(&gk).collect::<Vec<_>>()
    );
    for (key, size) in want {
        assert_eq!(
            got[key], *size,
            "{f}: listing of {key}: resolved size is the logical size"
        );
    }
}

/// Every path under `dir` (files and directories, relative, `/`-separated) with file bytes.
pub fn read_tree(dir: &Path) -> (BTreeMap<String, Vec<u8>>, Vec<String>) {
    fn walk(base: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>, all: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
            let p = e.expect("dir entry").path();
            let rel = p
                .strip_prefix(base)
                .expect("under base")
                .to_string_lossy()
                .into_owned();
            all.push(rel.clone());
            if p.is_dir() {
                walk(base, &p, files, all);
            } else {
                files.insert(rel, std::fs::read(&p).expect("read file"));
            }
        }
    }
    let (mut files, mut all) = (BTreeMap::new(), Vec::new());
    walk(dir, dir, &mut files, &mut all);
    all.sort();
    (files, all)
}

/// The directory holds exactly `want`: the logical bytes, nothing of cairn's.
#[track_caller]
pub fn assert_plain_dir(what: &str, dir: &Path, want: &BTreeMap<String, Bytes>) {
    let (files, all) = read_tree(dir);
    let cairn: Vec<&String> = all
        .iter()
        .filter(|p| {
            p.split('/')
                .any(|s| s == ".cairn" || s.starts_with(".cairn-"))
        })
        .collect();
    assert!(
        cairn.is_empty(),
        "{what}: the plain directory {} holds cairn's files: {cairn:?}",
        dir.display()
    );
    let gk: BTreeSet<&String> = files.keys().collect();
    let wk: BTreeSet<&String> = want.keys().collect();
    assert!(
        gk == wk,
        "{what}: files differ: extra {:?}, missing {:?}",
        gk.difference(&wk).collect::<Vec<_>>(),
        wk.difference(&gk).collect::<Vec<_>>()
    );
    for (rel, data) in want {
        assert_same(&files[rel], data, format_args!("{what}: file {rel}"));
    }
}

fn write_tree(dir: &Path, files: &BTreeMap<String, Bytes>) {
    for (rel, data) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).expect("mkdir");
        std::fs::write(&p, data).expect("write file");
    }
}

fn sizes(files: &BTreeMap<String, Bytes>, prefix: &str) -> BTreeMap<String, u64> {
    files
        .iter()
        .map(|(k, v)| (format!("{prefix}{k}"), v.len() as u64))
        .collect()
}

#[track_caller]
fn assert_summary(
    f: &Fixture,
    what: &str,
    s: &Summary,
    transferred: u64,
    bytes: u64,
    skipped: u64,
) {
    assert!(
        s.failed == 0,
        "{f}: {what}: {} failed: {:?}",
        s.failed,
        s.failures
    );
    assert_eq!(
        (s.transferred, s.skipped),
        (transferred, skipped),
        "{f}: {what}: (transferred, skipped)"
    );
    assert_eq!(
        s.transferred_bytes, bytes,
        "{f}: {what}: transferred_bytes counts logical bytes"
    );
}

fn sync_opts(compare: Compare) -> SyncOptions {
    SyncOptions {
        compare,
        transfer: transfer_options(),
        ..Default::default()
    }
}

async fn run_sync(
    f: &Fixture,
    what: &str,
    src: &dyn Store,
    dst: &dyn Store,
    c: Compare,
) -> Summary {
    sync(src, dst, &sync_opts(c), &NoReporter)
        .await
        .unwrap_or_else(|e| panic!("{f}: {what}: {e}"))
}

/// A synced pair settles: a second run by size and time, and one by checksum, transfer 0.
async fn assert_settled(f: &Fixture, what: &str, src: &dyn Store, dst: &dyn Store, n: u64) {
    let again = run_sync(f, what, src, dst, Compare::SizeAndTime).await;
    assert_summary(f, &format!("{what}, second run"), &again, 0, 0, n);
    // Without the checksum layer a remote object records no digest, and sync documents that
    // such an object is copied again: only sides that hash themselves can settle then.
    let hashable = |s: &dyn Store| s.capabilities().local;
    if f.stack.checksums() || (hashable(src) && hashable(dst)) {
        let sums = run_sync(f, what, src, dst, Compare::Checksum).await;
        assert_summary(f, &format!("{what}, run with --checksum"), &sums, 0, 0, n);
    }
}

async fn put_tree(f: &Fixture, files: &BTreeMap<String, Bytes>) {
    for (rel, data) in files {
        let key = k(rel);
        if data.len() > PART {
            put_streamed(f, &key, data, PutOptions::default()).await;
        } else {
            put_body(f, &key, data, PutOptions::default()).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Checks

/// put, put_stream, the multipart Writer and upload_file; get, get_stream, head, list, verify.
pub async fn objects(f: &mut Fixture) {
    let caps = f.store.capabilities();
    let mut want = BTreeMap::new();
    let mut compressible = BTreeMap::new();
    let dir = f.tempdir();
    for b in bodies() {
        let opts = PutOptions::default()
            .content_type("application/octet-stream")
            .meta("origin", b.name.as_str());
        // Bodies past one part go through the multipart paths only (bytes are costly on S3).
        let big = b.data.len() > PART;
        if !big {
            let put = k(&format!("obj/put/{}", b.name));
            put_body(f, &put, &b.data, opts.clone()).await;
            want.insert(put, b.data.clone());
        }
        let streamed = k(&format!("obj/stream/{}", b.name));
        put_streamed(f, &streamed, &b.data, opts.clone()).await;
        want.insert(streamed, b.data.clone());
        if b.data.len() <= 1 || (big && b.kind == Kind::Random) {
            // The multipart writer by hand, in uneven writes.
            let key = k(&format!("obj/writer/{}", b.name));
            let mut w = Writer::new(&*f.store, key.clone(), opts.clone(), writer_options());
            for piece in b.data.chunks(3 * MIB + 5) {
                w.write(Bytes::copy_from_slice(piece))
                    .await
                    .unwrap_or_else(|e| panic!("{f}: writer {key}: {e}"));
            }
            assert_eq!(w.written(), b.len(), "{f}: writer {key}: written");
            w.finish()
                .await
                .unwrap_or_else(|e| panic!("{f}: writer {key} finish: {e}"));
            want.insert(key, b.data.clone());
        }
        if b.data.len() <= 1 || (big && b.kind != Kind::Random) {
            // A file upload, multipart above the threshold.
            let path = dir.join(&b.name);
            std::fs::write(&path, &b.data).expect("write file");
            let up = k(&format!("obj/upload/{}", b.name));
            let topts = TransferOptions {
                put: opts.clone(),
                ..transfer_options()
            };
            upload_file(&*f.store, &up, &path, &topts, &NoReporter)
                .await
                .unwrap_or_else(|e| panic!("{f}: upload_file {up}: {e}"));
            want.insert(up, b.data.clone());
        }
        for key in want.keys() {
            compressible
                .entry(key.clone())
                .or_insert((b.compressible(), b.name.clone()));
        }
    }
    for (key, data) in &want {
        let (comp, origin) = &compressible[key];
        // One full read per object, each read path in turn (bytes are costly on S3).
        let how = key.as_str().split('/').nth(1).unwrap_or("");
        let got: Vec<u8> = match how {
            "stream" => stream_all(f, key).await,
            "writer" => {
                let g = f
                    .store
                    .get_opts(key, GetOptions::default())
                    .await
                    .unwrap_or_else(|e| panic!("{f}: get_opts {key}: {e}"));
                assert_eq!(g.meta.size, data.len() as u64, "{f}: get {key}: meta.size");
                assert_eq!(g.range, 0..data.len() as u64, "{f}: get {key}: range");
                g.bytes()
                    .await
                    .unwrap_or_else(|e| panic!("{f}: get_opts {key} body: {e}"))
                    .to_vec()
            }
            _ => get_all(f, key).await.to_vec(),
        };
        assert_same(&got, data, format_args!("{f}: {how} read of {key}"));
        let h = f
            .store
            .head(key)
            .await
            .unwrap_or_else(|e| panic!("{f}: head {key}: {e}"));
        check_sizes(f, &format!("head {key}"), &h, data, *comp);
        if caps.metadata {
            assert_eq!(
                h.metadata.get("origin"),
                Some(origin),
                "{f}: head {key}: user metadata"
            );
            assert!(
                h.metadata.keys().all(|m| !m.starts_with("cairn-")),
                "{f}: head {key}: cairn-* names in user metadata: {:?}",
                h.metadata
            );
            assert_eq!(
                h.content_type.as_deref(),
                Some("application/octet-stream"),
                "{f}: head {key}: content type"
            );
        }
        // Single-part and multipart (manifest) objects; verify reads everything again.
        if matches!(how, "stream" | "upload") {
            check_verify(f, key).await;
        }
    }
    let want_sizes: BTreeMap<String, u64> = want
        .iter()
        .map(|(k, v)| (k.to_string(), v.len() as u64))
        .collect();
    let got = listed(f, &*f.store, "obj/").await;
    assert_listing(f, &got, &want_sizes);
    // The whole store holds nothing else (no manifests or temp objects in sight).
    let all = listed(f, &*f.store, "").await;
    assert_listing(f, &all, &want_sizes);
    let shallow: Vec<ListEntry> = f
        .store
        .list(ListOptions::shallow("obj/"))
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{f}: shallow list: {e}"));
    assert_eq!(
        shallow,
        ["obj/put/", "obj/stream/", "obj/upload/", "obj/writer/"]
            .map(|p| ListEntry::Prefix(p.into()))
            .to_vec(),
        "{f}: shallow listing"
    );
}

/// The ranges a reader asks for on an object of `n` bytes.
pub fn ranges_for(n: u64) -> Vec<GetRange> {
    let mut r = vec![
        GetRange::Bounded(0..n),
        GetRange::Bounded(0..0),
        GetRange::Offset(n),
        GetRange::Suffix(0),
        GetRange::Suffix(n + 10),
        // Past the end: refused.
        GetRange::Bounded(n + 5..n + 10),
        GetRange::Offset(n + 1),
    ];
    if n > 0 {
        r.extend([
            GetRange::Bounded(0..1),
            GetRange::Bounded(n - 1..n),
            GetRange::Bounded(n - 1..n + 100),
            GetRange::Suffix(5.min(n)),
            GetRange::Offset(n / 2),
            GetRange::Bounded(n / 3..n / 3),
            GetRange::Bounded(n / 3..n / 2 + 1),
        ]);
    }
    // Across part, frame and segment boundaries (5 MiB parts, 64 KiB cipher segments, a few
    // MiB per compressed frame).
    for b in [
        64 * 1024,
        MIB as u64,
        4 * MIB as u64,
        PART as u64,
        8 * MIB as u64,
        2 * PART as u64,
    ] {
        if b + 7 < n {
            r.push(GetRange::Bounded(b - 7..b + 7));
        }
    }
    r
}

/// `range` of `key` through the fixture's store, checked against `data`; the failure, if any.
async fn check_range(f: &Fixture, key: &Key, data: &Bytes, range: &GetRange) -> Option<String> {
    let n = data.len() as u64;
    let want = range.resolve(n);
    let opts = GetOptions {
        range: Some(range.clone()),
        ..Default::default()
    };
    let what = format!("get {key} {range:?} of {n} bytes");
    // A panic below (e.g. in a client's range parsing) is one failure, not the end of the list.
    let got = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        match f.store.get_opts(key, opts).await {
            Ok(g) => {
                let (range, size) = (g.range.clone(), g.meta.size);
                g.bytes().await.map(|b| (range, size, b))
            }
            Err(e) => Err(e),
        }
    }))
    .await;
    let got = match got {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return Some(format!("{what}: panicked: {msg}"));
        }
    };
    match (want, got) {
        (Ok(w), Ok((range, size, bytes))) => {
            if range != w {
                return Some(format!("{what}: range {range:?}, want {w:?}"));
            }
            if size != n {
                return Some(format!("{what}: meta.size {size} is not the logical size"));
            }
            let want = &data[w.start as usize..w.end as usize];
            differ(&bytes, want).map(|d| format!("{what}: {d}"))
        }
        (Err(_), Err(e)) if e.kind() == ErrorKind::InvalidInput => None,
        (Err(_), Err(e)) => Some(format!("{what}: past the end must be InvalidInput: {e}")),
        (Ok(w), Err(e)) => Some(format!("{what} (bytes {w:?}) failed: {e}")),
        (Err(_), Ok((range, ..))) => Some(format!("{what} must fail, returned range {range:?}")),
    }
}

#[track_caller]
fn assert_no_failures(f: &Fixture, what: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{f}: {what}: {} failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

/// Every kind of range, on single-put and multipart objects of every body. Every range runs;
/// the failures are listed together.
pub async fn ranges(f: &mut Fixture) {
    let mut failures = Vec::new();
    for b in bodies() {
        let key = k(&format!("range/{}", b.name));
        if b.data.len() > PART {
            put_streamed(f, &key, &b.data, PutOptions::default()).await;
        } else {
            put_body(f, &key, &b.data, PutOptions::default()).await;
        }
        for r in ranges_for(b.len()) {
            failures.extend(check_range(f, &key, &b.data, &r).await);
        }
    }
    assert_no_failures(f, "ranges", &failures);
}

/// 64 MiB ([`large_body`]): put (one request, or streamed), get, ranges, parallel download.
pub async fn large(f: &mut Fixture) {
    let dir = f.tempdir();
    let mut failures = Vec::new();
    for b in [large_body(f.stack)] {
        let key = k(&format!("large/{}", b.name));
        if b.kind == Kind::Random {
            put_body(f, &key, &b.data, PutOptions::default()).await;
        } else {
            put_streamed(f, &key, &b.data, PutOptions::default()).await;
        }
        let h = f
            .store
            .head(&key)
            .await
            .unwrap_or_else(|e| panic!("{f}: head {key}: {e}"));
        check_sizes(f, &format!("head {key}"), &h, &b.data, b.compressible());
        let got = get_all(f, &key).await;
        assert_same(&got, &b.data, format_args!("{f}: get {key}"));
        drop(got);
        let n = b.len();
        let mid = n / 2;
        for r in [
            GetRange::Bounded(0..1),
            GetRange::Bounded(n - 1..n),
            GetRange::Suffix(1000),
            GetRange::Bounded(mid - MIB as u64 / 2..mid + MIB as u64 / 2),
            GetRange::Bounded(PART as u64 - 3..PART as u64 + 3),
            GetRange::Bounded(n + 1..n + 2),
        ] {
            failures.extend(check_range(f, &key, &b.data, &r).await);
        }
        let path = dir.join(&b.name);
        let topts = TransferOptions {
            durable: false,
            ..TransferOptions::default()
        };
        let m = download_file(&*f.store, &key, &path, &topts, &NoReporter)
            .await
            .unwrap_or_else(|e| panic!("{f}: download_file {key}: {e}"));
        assert_eq!(m.size, n, "{f}: download_file {key}: size");
        let file = std::fs::read(&path).expect("read download");
        assert_same(&file, &b.data, format_args!("{f}: download_file {key}"));
    }
    assert_no_failures(f, "ranges of 64 MiB", &failures);
}

/// 1 B, 5 MiB of JSON, and both 12 MiB bodies (multipart, with a manifest).
fn copy_bodies() -> impl Iterator<Item = &'static Body> {
    let b = bodies();
    [&b[2], &b[5], &b[6], &b[7]].into_iter()
}

/// Copy and rename keep bytes, metadata and verifiability, single-put and multipart.
pub async fn copy_rename(f: &mut Fixture) {
    let caps = f.store.capabilities();
    for b in copy_bodies() {
        let a = k(&format!("copy/src/{}", b.name));
        let opts = PutOptions::default()
            .content_type("text/plain")
            .meta("origin", b.name.as_str());
        if b.data.len() > PART {
            put_streamed(f, &a, &b.data, opts).await;
        } else {
            put_body(f, &a, &b.data, opts).await;
        }
        let c = k(&format!("copy/dst/{}", b.name));
        let r = k(&format!("copy/renamed/{}", b.name));
        f.store
            .copy(&a, &c)
            .await
            .unwrap_or_else(|e| panic!("{f}: copy {a} -> {c}: {e}"));
        f.store
            .rename(&c, &r)
            .await
            .unwrap_or_else(|e| panic!("{f}: rename {c} -> {r}: {e}"));
        assert!(
            !f.store.exists(&c).await.unwrap_or(true),
            "{f}: rename left its source {c}"
        );
        for key in [&a, &r] {
            let got = get_all(f, key).await;
            assert_same(
                &got,
                &b.data,
                format_args!("{f}: get {key} after copy/rename"),
            );
            let h = f
                .store
                .head(key)
                .await
                .unwrap_or_else(|e| panic!("{f}: head {key}: {e}"));
            check_sizes(f, &format!("head {key}"), &h, &b.data, b.compressible());
            if caps.metadata {
                assert_eq!(
                    h.metadata.get("origin"),
                    Some(&b.name),
                    "{f}: {key}: metadata survives copy and rename"
                );
                assert_eq!(h.content_type.as_deref(), Some("text/plain"), "{f}: {key}");
            }
            check_verify(f, key).await;
        }
    }
    let want: BTreeMap<String, u64> = copy_bodies()
        .flat_map(|b| ["src", "renamed"].map(|d| (format!("copy/{d}/{}", b.name), b.len())))
        .collect();
    assert_listing(f, &listed(f, &*f.store, "").await, &want);
}

/// Store → plain directory: the logical files exactly, nothing of cairn's; settles.
pub async fn sync_to_dir(f: &mut Fixture) {
    let files = tree_files();
    put_tree(f, &files).await;
    let dir = f.tempdir();
    let plain = plain_dir(&dir);
    let total: u64 = files.values().map(|d| d.len() as u64).sum();
    let n = files.len() as u64;
    let s = run_sync(
        f,
        "sync store -> dir",
        &*f.store,
        &*plain,
        Compare::SizeAndTime,
    )
    .await;
    assert_summary(f, "sync store -> dir", &s, n, total, 0);
    assert_plain_dir(&format!("{f}: sync store -> dir"), &dir, &files);
    assert_settled(f, "sync store -> dir", &*f.store, &*plain, n).await;
    assert_plain_dir(&format!("{f}: sync store -> dir, settled"), &dir, &files);
}

/// Plain directory → store: the store holds the files' bytes; the directory is untouched;
/// settles.
pub async fn sync_from_dir(f: &mut Fixture) {
    let files = tree_files();
    let dir = f.tempdir();
    write_tree(&dir, &files);
    let plain = plain_dir(&dir);
    let total: u64 = files.values().map(|d| d.len() as u64).sum();
    let n = files.len() as u64;
    let s = run_sync(
        f,
        "sync dir -> store",
        &*plain,
        &*f.store,
        Compare::SizeAndTime,
    )
    .await;
    assert_summary(f, "sync dir -> store", &s, n, total, 0);
    for (rel, data) in &files {
        let key = k(rel);
        let got = get_all(f, &key).await;
        assert_same(&got, data, format_args!("{f}: get {key} after sync"));
        check_verify(f, &key).await;
    }
    assert_listing(f, &listed(f, &*f.store, "").await, &sizes(&files, ""));
    assert_settled(f, "sync dir -> store", &*plain, &*f.store, n).await;
    assert_plain_dir(&format!("{f}: sync source dir"), &dir, &files);
}

/// Store → store: to a sibling with the same stack, and to a plain-checksum memory store.
pub async fn sync_store_to_store(f: &mut Fixture) {
    let files = tree_files();
    put_tree(f, &files).await;
    let total: u64 = files.values().map(|d| d.len() as u64).sum();
    let n = files.len() as u64;
    let sibling = f.sibling("sibling").await;
    let memory = crate::open("memory://")
        .await
        .unwrap_or_else(|e| panic!("open memory://: {e}"));
    for (what, dst) in [("sync to sibling", &sibling), ("sync to memory", &memory)] {
        let s = run_sync(f, what, &*f.store, &**dst, Compare::SizeAndTime).await;
        assert_summary(f, what, &s, n, total, 0);
        for (rel, data) in &files {
            let key = k(rel);
            let got = dst
                .get(&key)
                .await
                .unwrap_or_else(|e| panic!("{f}: {what}: get {key} from {dst}: {e}"));
            assert_same(&got, data, format_args!("{f}: {what}: {key}"));
        }
        assert_listing(f, &listed(f, &**dst, "").await, &sizes(&files, ""));
        assert_settled(f, what, &*f.store, &**dst, n).await;
    }
}

/// The library's `cp -r`: upload_tree and download_tree between a plain directory and the store.
pub async fn tree(f: &mut Fixture) {
    let files = tree_files();
    let src = f.tempdir();
    write_tree(&src, &files);
    let total: u64 = files.values().map(|d| d.len() as u64).sum();
    let n = files.len() as u64;
    let opts = transfer_options();
    let s = upload_tree(&src, &*f.store, "tree", &opts, &NoReporter)
        .await
        .unwrap_or_else(|e| panic!("{f}: upload_tree: {e}"));
    assert_summary(f, "upload_tree", &s, n, total, 0);
    assert_listing(f, &listed(f, &*f.store, "").await, &sizes(&files, "tree/"));
    for (rel, data) in &files {
        let key = k(&format!("tree/{rel}"));
        assert_same(
            &get_all(f, &key).await,
            data,
            format_args!("{f}: get {key}"),
        );
        check_verify(f, &key).await;
    }
    let dst = f.tempdir().join("restored");
    let s = download_tree(&*f.store, "tree", &dst, &opts, &NoReporter)
        .await
        .unwrap_or_else(|e| panic!("{f}: download_tree: {e}"));
    assert_summary(f, "download_tree", &s, n, total, 0);
    assert_plain_dir(&format!("{f}: download_tree"), &dst, &files);
    assert_plain_dir(&format!("{f}: upload_tree source"), &src, &files);
}

/// Archive save, save_stream, list, latest, load, restore, metadata and verify.
pub async fn archive(f: &mut Fixture) {
    let caps = f.store.capabilities();
    let a = Archive::new(f.store.clone())
        .with_prefix("arch")
        .unwrap_or_else(|e| panic!("{f}: archive prefix: {e}"));
    let b = bodies();
    let docs = [
        (&b[0], "empty", false),
        (&b[3], "tiny", false),
        (&b[5], "snapshot", false),
        (&b[7], "export", true),
    ];
    let mut saved = Vec::new();
    for (body, kind, streamed) in docs {
        let mut meta = Metadata::new();
        meta.insert("body".into(), body.name.clone());
        let e = if streamed {
            let data = body.data.clone();
            let stream = futures::stream::iter(
                (0..data.len())
                    .step_by(MIB + 3)
                    .map(move |i| Ok(data.slice(i..(i + MIB + 3).min(data.len()))))
                    .collect::<Vec<_>>(),
            );
            a.save_stream("agent-7", kind, stream, meta, Some("text/csv"))
                .await
        } else {
            a.save(
                "agent-7",
                kind,
                body.data.clone(),
                meta,
                Some("application/json"),
            )
            .await
        };
        let e = e.unwrap_or_else(|e| panic!("{f}: archive save {kind}: {e}"));
        assert_eq!(e.size, body.len(), "{f}: archive save {kind}: entry size");
        saved.push((e, body));
    }
    let listed = a
        .list(&Filter::default())
        .await
        .unwrap_or_else(|e| panic!("{f}: archive list: {e}"));
    assert_eq!(listed.len(), saved.len(), "{f}: archive list: {listed:?}");
    for (e, body) in &saved {
        let l = listed
            .iter()
            .find(|l| l.key == e.key)
            .unwrap_or_else(|| panic!("{f}: archive list lacks {}", e.key));
        assert_eq!(
            l.size,
            body.len(),
            "{f}: archive list: {} size is the logical size",
            e.key
        );
        let got = a
            .load(&e.key)
            .await
            .unwrap_or_else(|err| panic!("{f}: archive load {}: {err}", e.key));
        assert_same(
            &got,
            &body.data,
            format_args!("{f}: archive load {}", e.key),
        );
        let path = f.tempdir().join("restored.doc");
        let n = a
            .restore(&e.key, &path)
            .await
            .unwrap_or_else(|err| panic!("{f}: archive restore {}: {err}", e.key));
        assert_eq!(n, body.len(), "{f}: archive restore {}: bytes", e.key);
        assert_same(
            &std::fs::read(&path).expect("read restored"),
            &body.data,
            format_args!("{f}: archive restore {}", e.key),
        );
        let m = a
            .metadata(&e.key)
            .await
            .unwrap_or_else(|err| panic!("{f}: archive metadata {}: {err}", e.key));
        assert_eq!(m.size, body.len(), "{f}: archive metadata {}: size", e.key);
        if caps.metadata {
            assert_eq!(
                m.metadata.get("body"),
                Some(&body.name),
                "{f}: archive metadata {}",
                e.key
            );
        }
        let v = a
            .verify(&e.key)
            .await
            .unwrap_or_else(|err| panic!("{f}: archive verify {}: {err}", e.key));
        assert_eq!(v, expected_verify(f), "{f}: archive verify {}", e.key);
    }
    let latest = a
        .latest("agent-7", None)
        .await
        .unwrap_or_else(|e| panic!("{f}: archive latest: {e}"))
        .unwrap_or_else(|| panic!("{f}: archive latest: none"));
    // Newest first, ties within one millisecond broken by key (as `Archive::list` sorts).
    let newest = saved
        .iter()
        .map(|(e, _)| (e.timestamp, e.key.clone()))
        .max()
        .expect("saved entries");
    assert_eq!(latest.key, newest.1, "{f}: archive latest");
}

/// Stamps out one `#[tokio::test]` per (stack, check) on one backend.
///
/// `layer_matrix_tests!(Moto)` (a [`Backend`] variant) inside a module gives `none::objects`,
/// `zstd_aes_prefix::sync_to_dir`, ...: the test name says the stack and the operation.
#[macro_export]
macro_rules! layer_matrix_tests {
    ($backend:ident) => {
        $crate::layer_matrix_tests!(@stacks $backend;
            none = None, false;
            none_prefix = None, true;
            checksum = Checksum, false;
            checksum_prefix = Checksum, true;
            zstd = Zstd, false;
            zstd_prefix = Zstd, true;
            gzip = Gzip, false;
            gzip_prefix = Gzip, true;
            aes = Aes, false;
            aes_prefix = Aes, true;
            zstd_aes = ZstdAes, false;
            zstd_aes_prefix = ZstdAes, true);
    };
    (@stacks $backend:ident; $($name:ident = $layers:ident, $prefix:expr);*) => {
        $(
            mod $name {
                $crate::layer_matrix_tests!(@checks $crate::testkit::matrix::Backend::$backend,
                    $crate::testkit::matrix::Stack::new(
                        $crate::testkit::matrix::Layers::$layers, $prefix);
                    objects, ranges, large, copy_rename, sync_to_dir, sync_from_dir,
                    sync_store_to_store, tree, archive);
            }
        )*
    };
    (@checks $backend:expr, $stack:expr; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let mut f = $crate::testkit::matrix::Fixture::open(
                    $backend, $stack, stringify!($check)).await;
                $crate::testkit::matrix::$check(&mut f).await;
                f.clean_up().await;
            }
        )*
    };
}
