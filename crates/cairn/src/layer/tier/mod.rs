//! The tiered store: a local hot tier ([`LocalStore`] under a checksum layer of its own) in
//! front of any cold store. See docs/design.md, "Tiered store", for the consistency model.
//!
//! `open` puts the tier under the layers (backend → tier → checksum → encryption →
//! compression → prefix): hot holds the stored bytes with the layers' `cairn-*` records, so
//! a hot copy reads back exactly as cold would, and a flush copies bytes and records as they
//! are. The tier's own records on a hot copy are named `cairn-tier-*` and never leave it.
//!
//! Hot directory layout: `lock` (flock: one process owns the directory), `cold` (the cold
//! store it belongs to; another is refused), `journal` (write-back records, see
//! [`journal`]), `data/` (the hot local store), `counters.json` (hits, misses, ... so far).
//!
//! - **Reads**: a hit is served from hot (full reads verified by SHA-256; a corrupt copy is
//!   dropped and refetched). A miss takes the key's stripe lock, so concurrent misses fetch
//!   once, then fills hot and serves from it. A partial ranged read that misses goes to cold
//!   and fills nothing. Hot entries are revalidated against cold by ETag once `ttl` has passed,
//!   unless `immutable`.
//! - **Writes**: write-through puts go to cold, then hot. Write-back puts go to hot, then an
//!   fsynced journal record, then are acknowledged; a background task uploads them.
//!   Conditional puts go to cold synchronously (after flushing the key).
//! - **Deletes, copies, renames** go to cold (write-back deletes are journaled and flushed).
//!   Listings come from cold, merged with the keys still pending in write-back.

pub mod journal;
pub mod policy;

pub use policy::{parse_size, TierPolicy, WriteMode};

use self::journal::{Journal, PendingOp, Record};
use crate::backend::local::LocalStore;
use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::layer::checksum::{ChecksumStore, RecordNames};
use crate::layer::stack::set_layer_meta;
use crate::store::*;
use crate::transfer::{put_stream, WriterOptions};
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedRwLockWriteGuard, RwLock};

/// Names of the tier's own records on a hot copy: never shown above the tier, never flushed.
pub const TIER_META_PREFIX: &str = "cairn-tier-";
/// Hot metadata entry holding the cold object's attributes (JSON of [`ColdMeta`]).
pub const COLD_META: &str = "cairn-tier-cold";
/// Hot metadata entry holding a write-back put's storage class, for its flush.
const CLASS_META: &str = "cairn-tier-storage-class";
/// The hot copies' checksum records: apart from the layers' own (`cairn-sha256`, manifests
/// under `.cairn-manifests/`), which the hot copy carries as data.
pub const HOT_RECORDS: RecordNames = RecordNames {
    sha256: "cairn-tier-sha256",
    manifest: "cairn-tier-manifest",
    manifest_prefix: ".cairn-tier-manifests/",
};
/// Full hot reads up to this size are buffered, so a corrupt copy is refetched transparently.
const BUFFER_MAX: u64 = 16 << 20;
const STRIPES: usize = 128;

/// What the hot copy remembers of the cold object it was filled from.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct ColdMeta {
    etag: Option<String>,
    version: Option<String>,
    last_modified: Option<DateTime<Utc>>,
}

fn is_tier_meta(name: &str) -> bool {
    name.len() >= TIER_META_PREFIX.len()
        && name[..TIER_META_PREFIX.len()].eq_ignore_ascii_case(TIER_META_PREFIX)
}

/// Put options that store `meta` elsewhere as it is: content type, user metadata and the
/// layers' records (the tier's own left out).
fn carry(meta: &ObjectMeta) -> PutOptions {
    let mut put = PutOptions {
        content_type: meta.content_type.clone(),
        metadata: meta.metadata.clone(),
        ..Default::default()
    };
    for (k, v) in &meta.layer_meta {
        if !is_tier_meta(k) {
            set_layer_meta(&mut put, k, v.clone());
        }
    }
    put
}

/// What [`TieredStore::verify_under`] found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TierVerify {
    /// Clean hot copies compared with cold.
    pub checked: u64,
    /// `(key, problem)` for each that is corrupt, stale or gone from cold.
    pub problems: Vec<(String, String)>,
}

/// A snapshot of the tier, for `cairn tier status` and metrics.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TierStats {
    /// Bytes in hot.
    pub hot_bytes: u64,
    /// Objects in hot.
    pub entries: u64,
    /// Write-back bytes not yet in cold.
    pub dirty_bytes: u64,
    /// Keys with an operation not yet in cold (puts and deletes).
    pub dirty_entries: u64,
    /// Age of the oldest pending operation, in seconds (0 when none).
    pub flush_lag_secs: f64,
    /// Reads served from hot.
    pub hits: u64,
    /// Reads that went to cold.
    pub misses: u64,
    /// Objects copied into hot from cold.
    pub fills: u64,
    /// Objects removed from hot by policy or `evict`.
    pub evictions: u64,
    /// Operations the flusher brought to cold.
    pub flushes: u64,
    /// Errors the tier handled (corrupt hot copies, failed flushes, failed hot writes).
    pub errors: u64,
    /// hits / (hits + misses), 0 with no reads.
    pub hit_rate: f64,
    /// The last flush error, if the flusher is failing.
    pub last_error: Option<String>,
}

/// The tier's counters since its hot directory was made: kept in `counters.json` there, so
/// `cairn tier status` shows the hit rate of the processes that used it.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    fills: AtomicU64,
    evictions: AtomicU64,
    flushes: AtomicU64,
    errors: AtomicU64,
    /// The last flush error, until a flush succeeds.
    last_error: Mutex<Option<String>>,
}

impl Counters {
    fn load(dir: &Path) -> Counters {
        std::fs::read(dir.join("counters.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes the counters (temp and rename; best effort, they are statistics).
    fn save(&self, dir: &Path) {
        let tmp = dir.join("counters.json.tmp");
        let json = serde_json::to_vec(self).expect("counters serialize");
        if std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, dir.join("counters.json")))
            .is_err()
        {
            tracing::debug!(dir = %dir.display(), "could not save the tier's counters");
        }
    }

    fn total(&self) -> u64 {
        [
            &self.hits,
            &self.misses,
            &self.fills,
            &self.evictions,
            &self.flushes,
            &self.errors,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.counters.save(&self.dir);
    }
}

fn count(c: &AtomicU64, name: &'static str) {
    c.fetch_add(1, Ordering::Relaxed);
    metrics::counter!(name).increment(1);
}

#[derive(Debug, Clone)]
struct Entry {
    size: u64,
    /// Position in its S3-FIFO queue (see `policy`).
    tick: u64,
    access_ms: u64,
    /// Reads since it joined its queue, capped at `policy::MAX_FREQ`.
    freq: u8,
    /// In S3-FIFO's main queue, else the small one.
    main: bool,
    validated: Option<Instant>,
    /// The cold ETag after a flush (the hot copy's metadata has none).
    cold_etag: Option<String>,
    /// The hot ETag a write-back put returned, valid as an `Update` condition after flush.
    alias: Option<String>,
}

impl Entry {
    /// A copy cold has (a fill, a write-through put): valid as of now.
    fn clean(size: u64, (tick, access_ms): (u64, u64)) -> Entry {
        Entry {
            size,
            tick,
            access_ms,
            freq: 0,
            main: false,
            validated: Some(Instant::now()),
            cold_etag: None,
            alias: None,
        }
    }

    /// A write-back copy, owed to cold, answering to the ETag its put returned.
    fn written_back(size: u64, (tick, access_ms): (u64, u64), alias: Option<String>) -> Entry {
        Entry {
            validated: None,
            alias,
            ..Entry::clean(size, (tick, access_ms))
        }
    }
}

type Pending = journal::Owed;

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    hot_bytes: u64,
    dirty: BTreeMap<String, Pending>,
    dirty_bytes: u64,
    /// Keys S3-FIFO's small queue let go of lately (at most as many as hot holds): one that
    /// comes back joins main.
    ghost: Ghost,
}

#[derive(Debug, Default)]
struct Ghost {
    order: VecDeque<String>,
    keys: std::collections::HashSet<String>,
}

impl Ghost {
    fn remember(&mut self, key: String, max: usize) {
        if self.keys.insert(key.clone()) {
            self.order.push_back(key);
        }
        while self.order.len() > max {
            if let Some(k) = self.order.pop_front() {
                self.keys.remove(&k);
            }
        }
    }

    fn forget(&mut self, key: &str) -> bool {
        // The queue keeps the name until it ages out; `keys` decides membership.
        self.keys.remove(key)
    }
}

impl State {
    /// Indexes a hot copy. A rewrite keeps the entry's queue place and counts as a read; a
    /// key the ghost remembers joins main.
    fn insert(&mut self, key: &str, mut e: Entry) {
        if let Some(old) = self.entries.get(key) {
            e.tick = old.tick;
            e.main = old.main;
            e.freq = (old.freq + 1).min(policy::MAX_FREQ);
        } else if self.ghost.forget(key) {
            e.main = true;
        }
        if let Some(old) = self.entries.insert(key.to_string(), e.clone()) {
            self.hot_bytes -= old.size.min(self.hot_bytes);
        }
        self.hot_bytes += e.size;
    }
    fn remove(&mut self, key: &str) -> Option<Entry> {
        let e = self.entries.remove(key)?;
        self.hot_bytes -= e.size.min(self.hot_bytes);
        Some(e)
    }
    fn set_dirty(&mut self, key: &str, p: Pending) {
        if let Some(PendingOp::Put(n)) = self.dirty.get(key).map(|p| &p.op) {
            self.dirty_bytes -= (*n).min(self.dirty_bytes);
        }
        if let PendingOp::Put(n) = p.op {
            self.dirty_bytes += n;
        }
        self.dirty.insert(key.to_string(), p);
    }
    /// Marks `key` clean if its pending op is still `seq` (or older).
    fn clean(&mut self, key: &str, seq: u64) {
        if self.dirty.get(key).is_some_and(|p| p.seq <= seq) {
            if let Some(Pending {
                op: PendingOp::Put(n),
                ..
            }) = self.dirty.remove(key)
            {
                self.dirty_bytes -= n.min(self.dirty_bytes);
            }
        }
    }
}

/// What a fill leaves to serve.
enum Filled {
    /// The reply (an object too large to keep, or a small one from the bytes in hand).
    Served(Box<GetResult>),
    /// The hot copy is in: read it, still holding the stripe.
    OnDisk(OwnedRwLockWriteGuard<()>),
}

/// A hot local tier in front of a cold store. Cheap to clone.
#[derive(Clone)]
pub struct TieredStore {
    inner: Arc<Inner>,
    _owner: Arc<Owner>,
}

/// Stops the flusher when the last handle goes, so the hot directory's lock is released
/// without waiting for a flush against a slow or absent cold store to give up.
struct Owner(tokio::task::AbortHandle);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Inner {
    hot: ChecksumStore<LocalStore>,
    /// The same directory without fsync, for copies cold still has (fills, write-through):
    /// a power loss can only tear them, and a torn copy fails its check and is refetched.
    cache: ChecksumStore<LocalStore>,
    cold: DynStore,
    policy: TierPolicy,
    dir: PathBuf,
    _lock: std::fs::File,
    journal: Arc<Journal>,
    state: Mutex<State>,
    stripes: Vec<Arc<RwLock<()>>>,
    /// One flush of a key at a time (the flusher and `flush`/`copy` may race for it).
    flush_locks: Vec<tokio::sync::Mutex<()>>,
    seq: AtomicU64,
    tick: AtomicU64,
    sweeping: tokio::sync::Mutex<()>,
    counters: Counters,
    wake: Arc<Notify>,
}

impl fmt::Debug for TieredStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TieredStore")
            .field("hot", &self.inner.dir)
            .field("cold", &self.inner.cold.to_string())
            .field("policy", &self.inner.policy)
            .finish()
    }
}

impl fmt::Display for TieredStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tier+{}", self.inner.cold)
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn lock_dir(dir: &Path) -> Result<std::fs::File> {
    use std::os::unix::io::AsRawFd;
    let path = dir.join("lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::from(e).with_operation("open tier"))?;
    // A handle dropped a moment ago may still be letting go (its flusher stops at its next
    // poll): wait a little before calling the directory taken.
    let mut rc = -1;
    for _ in 0..40 {
        // SAFETY: flock on a file descriptor we own; no memory is shared.
        rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    if rc != 0 {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "the hot directory {} is in use by another tiered store (lock {})",
                dir.display(),
                path.display()
            ),
        )
        .with_operation("open tier")
        .with_hint("one process owns a hot directory: close the other one, or pick another hot="));
    }
    Ok(f)
}

/// Records in `dir/cold` which cold store the hot copies belong to, and refuses another: its
/// copies would be served as the other store's objects, and its journal flushed into it.
fn claim_for(dir: &Path, cold: &str) -> Result<()> {
    let path = dir.join("cold");
    match std::fs::read_to_string(&path) {
        Ok(owner) if owner.trim() == cold => Ok(()),
        Ok(owner) => Err(Error::invalid(format!(
            "the hot directory {} belongs to {}, not {cold}",
            dir.display(),
            owner.trim()
        ))
        .with_operation("open tier")
        .with_hint(format!(
            "give this store its own hot= directory; to reuse this one, run `cairn tier flush` \
             on tier+{} and remove it",
            owner.trim()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&path, format!("{cold}\n"))
                .map_err(|e| Error::from(e).with_operation("open tier"))
        }
        Err(e) => Err(Error::from(e).with_operation("open tier")),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::new(ErrorKind::Unexpected, format!("blocking task failed: {e}")))?
}

impl TieredStore {
    /// Opens the tier over `cold` with its hot copy in `hot_dir` (created if missing): takes
    /// the directory's lock, indexes the hot copies, replays the journal and starts the
    /// flusher (on the current tokio runtime).
    pub async fn open(
        hot_dir: impl AsRef<Path>,
        cold: DynStore,
        policy: TierPolicy,
    ) -> Result<Self> {
        let dir = hot_dir.as_ref().to_path_buf();
        let d = dir.clone();
        let cold_name = cold.to_string();
        let (lock, journal, replay) = blocking(move || {
            std::fs::create_dir_all(&d).map_err(|e| {
                Error::from(e)
                    .with_operation("open tier")
                    .with_hint(format!(
                        "check that {} can be created and written",
                        d.display()
                    ))
            })?;
            let lock = lock_dir(&d)?;
            claim_for(&d, &cold_name)?;
            let (j, replay) = Journal::open(&d.join("journal"))?;
            Ok((lock, j, replay))
        })
        .await?;
        let data = LocalStore::new(dir.join("data"))?;
        let cache = ChecksumStore::with_names(data.clone().durable(false), HOT_RECORDS);
        let hot = ChecksumStore::with_names(data, HOT_RECORDS);
        let mut state = State::default();
        let mut metas: Vec<ObjectMeta> = hot.list_objects("").try_collect().await?;
        metas.sort_by_key(|m| m.last_modified);
        for (i, m) in metas.into_iter().enumerate() {
            // A flushed write-back copy still answers to its own ETag and to cold's.
            let flushed = replay
                .flushed
                .get(m.key.as_str())
                .filter(|f| m.etag.as_deref() == Some(f.hot_etag.as_str()));
            state.insert(
                m.key.as_str(),
                Entry {
                    size: m.size,
                    tick: i as u64,
                    access_ms: m.last_modified.timestamp_millis().max(0) as u64,
                    freq: 0,
                    main: false,
                    validated: None,
                    cold_etag: flushed.map(|f| f.cold_etag.clone()),
                    alias: flushed.map(|f| f.hot_etag.clone()),
                },
            );
        }
        let max_seq = replay.max_seq;
        let gone = replay
            .flushed
            .keys()
            .any(|k| !state.entries.contains_key(k));
        let journal = Arc::new(journal);
        // Records of puts a crash cut off before their hot copy (never acknowledged), and
        // what they owe instead, journaled so a later copy of the key is not taken for them.
        let mut cut_off = Vec::new();
        for (key, mut owed) in replay.pending {
            if let PendingOp::Put(_) = owed.op {
                match state.entries.get(&key) {
                    // Uploads what hot holds (an older copy, if the put's rename never ran).
                    Some(e) => owed.op = PendingOp::Put(e.size),
                    None => match owed.without_copy() {
                        Some(undo) => {
                            cut_off.push(undo.record(&key));
                            owed = undo;
                        }
                        None => {
                            cut_off.push(Record::Clean {
                                seq: owed.seq,
                                key,
                                hot_etag: None,
                                cold_etag: None,
                            });
                            continue;
                        }
                    },
                }
            }
            state.set_dirty(&key, owed);
        }
        if !cut_off.is_empty() {
            tracing::info!(hot = %dir.display(), puts = cut_off.len(), "write-back puts a crash cut off before their hot copy were never acknowledged: not owed");
            let j = journal.clone();
            blocking(move || j.append(&cut_off, true)).await?;
        }
        let tick = state.entries.len() as u64;
        let counters = Counters::load(&dir);
        let inner = Arc::new(Inner {
            hot,
            cache,
            cold,
            policy,
            dir,
            _lock: lock,
            journal,
            state: Mutex::new(state),
            stripes: (0..STRIPES).map(|_| Arc::new(RwLock::new(()))).collect(),
            flush_locks: (0..STRIPES).map(|_| Default::default()).collect(),
            seq: AtomicU64::new(max_seq + 1),
            tick: AtomicU64::new(tick),
            sweeping: Default::default(),
            counters,
            wake: Arc::new(Notify::new()),
        });
        if gone {
            // Keeps the journal as small as the hot tier: evicted copies' ETags go.
            inner.compact_journal().await;
        }
        let flusher = spawn_flusher(Arc::downgrade(&inner), inner.wake.clone());
        Ok(TieredStore {
            inner,
            _owner: Arc::new(Owner(flusher.abort_handle())),
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> &TierPolicy {
        &self.inner.policy
    }

    /// The hot directory.
    pub fn hot_dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The cold store.
    pub fn cold(&self) -> &DynStore {
        &self.inner.cold
    }

    /// Counters and sizes right now.
    pub fn stats(&self) -> TierStats {
        let s = self.inner.state.lock().expect("tier state");
        let c = &self.inner.counters;
        let (hits, misses) = (
            c.hits.load(Ordering::Relaxed),
            c.misses.load(Ordering::Relaxed),
        );
        let lag = s
            .dirty
            .values()
            .map(|p| now_ms().saturating_sub(p.at_ms) as f64 / 1000.0)
            .fold(0.0, f64::max);
        metrics::gauge!("cairn_tier_flush_lag_seconds").set(lag);
        metrics::gauge!("cairn_tier_dirty_bytes").set(s.dirty_bytes as f64);
        metrics::gauge!("cairn_tier_hot_bytes").set(s.hot_bytes as f64);
        TierStats {
            hot_bytes: s.hot_bytes,
            entries: s.entries.len() as u64,
            dirty_bytes: s.dirty_bytes,
            dirty_entries: s.dirty.len() as u64,
            flush_lag_secs: lag,
            hits,
            misses,
            fills: c.fills.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            flushes: c.flushes.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            hit_rate: if hits + misses == 0 {
                0.0
            } else {
                hits as f64 / (hits + misses) as f64
            },
            last_error: c.last_error.lock().expect("last error").clone(),
        }
    }

    /// Waits until the hot copies being written after a reply are in (a small miss is served
    /// first and written after). Call before the process exits, or they are lost.
    pub async fn settle(&self) {
        for s in &self.inner.stripes {
            drop(s.write().await);
        }
    }

    /// Saves the counters `stats` reports into the hot directory now (they are also saved
    /// every few seconds, and when the last handle drops).
    pub fn save_stats(&self) {
        self.inner.counters.save(&self.inner.dir);
    }

    /// Uploads every pending write-back operation now and returns once nothing is dirty, or
    /// with the first error (the operations stay pending and the flusher keeps trying).
    pub async fn flush(&self) -> Result<()> {
        self.flush_reported(|_| {}).await
    }

    /// [`flush`](Self::flush), calling `flushed(bytes)` as each key reaches cold (`0` for a
    /// delete). The dirty totals in [`stats`](Self::stats) say what is left.
    pub async fn flush_reported(&self, flushed: impl Fn(u64) + Sync) -> Result<()> {
        let flushed = &flushed;
        loop {
            let keys: Vec<String> = {
                let s = self.inner.state.lock().expect("tier state");
                s.dirty.keys().cloned().collect()
            };
            if keys.is_empty() {
                return Ok(());
            }
            let n = self.inner.policy.flush_concurrency;
            let results: Vec<Result<()>> = stream::iter(keys)
                .map(|k| {
                    let inner = self.inner.clone();
                    async move {
                        let n = inner.flush_key(&k).await?;
                        flushed(n);
                        Ok(())
                    }
                })
                .buffer_unordered(n)
                .collect()
                .await;
            if let Some(e) = results.into_iter().find_map(|r| r.err()) {
                return Err(e.with_hint(
                    "the writes stay in the hot journal; restore the cold store and flush again",
                ));
            }
        }
    }

    /// Removes clean hot copies under `prefix` ("" for all); returns how many. Dirty entries
    /// stay until flushed; entries busy in a read are skipped.
    pub async fn evict(&self, prefix: &str) -> Result<u64> {
        let keys: Vec<String> = {
            let s = self.inner.state.lock().expect("tier state");
            s.entries
                .keys()
                .filter(|k| k.starts_with(prefix) && !s.dirty.contains_key(*k))
                .cloned()
                .collect()
        };
        let mut n = 0;
        for k in keys {
            if self.inner.evict_one(&k, true).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Compares every clean hot copy with cold by ETag (and its SHA-256 by reading it):
    /// returns `(key, problem)` for each that differs, is corrupt or is gone from cold.
    pub async fn verify(&self) -> Result<Vec<(String, String)>> {
        Ok(self.verify_under("").await?.problems)
    }

    /// [`verify`](Self::verify) of the clean hot copies under `prefix`, with their count.
    pub async fn verify_under(&self, prefix: &str) -> Result<TierVerify> {
        let keys: Vec<String> = {
            let s = self.inner.state.lock().expect("tier state");
            let mut k: Vec<String> = s
                .entries
                .keys()
                .filter(|k| k.starts_with(prefix) && !s.dirty.contains_key(*k))
                .cloned()
                .collect();
            k.sort();
            k
        };
        let checked = keys.len() as u64;
        let mut bad = Vec::new();
        for k in keys {
            let key = Key::new(&k)?;
            let hot = match self.inner.hot.get_opts(&key, GetOptions::default()).await {
                Ok(r) => {
                    let meta = r.meta.clone();
                    match r.bytes().await {
                        Ok(_) => meta,
                        Err(e) => {
                            bad.push((k, format!("hot copy is corrupt: {}", e.message())));
                            continue;
                        }
                    }
                }
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) if e.kind() == ErrorKind::Integrity => {
                    bad.push((k, format!("hot copy is corrupt: {}", e.message())));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let want = self.inner.cold_etag_of(&k, &hot);
            match self.inner.cold.head(&key).await {
                Ok(c) if want.is_some() && c.etag != want => bad.push((
                    k,
                    "cold has a newer version (the hot copy is stale)".to_string(),
                )),
                Ok(c) if c.size != hot.size => bad.push((
                    k,
                    format!("size differs: hot {} bytes, cold {}", hot.size, c.size),
                )),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    bad.push((k, "gone from cold".to_string()))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(TierVerify {
            checked,
            problems: bad,
        })
    }
}

fn spawn_flusher(weak: Weak<Inner>, wake: Arc<Notify>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::ZERO;
        let (mut saved, mut saved_at) = (0, Instant::now());
        let mut compact_at: u64 = 1 << 20;
        let mut wait = Duration::from_millis(500);
        loop {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            if !backoff.is_zero() {
                tokio::time::sleep(backoff).await;
            }
            let Some(inner) = weak.upgrade() else { return };
            let total = inner.counters.total();
            if total != saved && saved_at.elapsed() >= Duration::from_secs(5) {
                inner.counters.save(&inner.dir);
                (saved, saved_at) = (total, Instant::now());
            }
            let (keys, next) = inner.due();
            wait = next.map_or(Duration::from_millis(500), |d| {
                d.clamp(Duration::from_millis(10), Duration::from_millis(500))
            });
            // Compacted from the file under its lock, so safe while writes go on; the bound
            // grows with what compaction keeps (flushed copies' ETags), so it never loops.
            if inner.journal.len() > compact_at {
                inner.compact_journal().await;
                compact_at = (2 * inner.journal.len()).max(1 << 20);
            }
            if keys.is_empty() {
                backoff = Duration::ZERO;
                continue;
            }
            let n = inner.policy.flush_concurrency;
            let failed = stream::iter(keys)
                .map(|k| {
                    let inner = inner.clone();
                    async move { inner.flush_key(&k).await.is_err() }
                })
                .buffer_unordered(n)
                .filter(|f| futures::future::ready(*f))
                .count()
                .await;
            backoff = if failed > 0 {
                (backoff * 2).clamp(Duration::from_millis(100), Duration::from_secs(5))
            } else {
                Duration::ZERO
            };
            if failed == 0 && next.is_none() {
                wake.notify_one(); // writes may have landed during the uploads
            }
        }
    })
}

impl Inner {
    fn slot(key: &str) -> usize {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        (h.finish() as usize) % STRIPES
    }

    fn stripe(&self, key: &str) -> &RwLock<()> {
        &self.stripes[Self::slot(key)]
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst)
    }

    /// The keys the flusher uploads now: those written `flush_delay` ago or more (all of
    /// them past half of `dirty_max`, or when hot is over quota, since only clean copies can
    /// be evicted), and how long until the next one is due.
    fn due(&self) -> (Vec<String>, Option<Duration>) {
        let s = self.state.lock().expect("tier state");
        let delay = self.policy.flush_delay.as_millis() as u64;
        let p = &self.policy;
        let pressed = s.dirty_bytes > p.dirty_max / 2
            || s.hot_bytes > p.hot_max
            || s.entries.len() as u64 > p.hot_max_entries;
        if delay == 0 || pressed {
            return (s.dirty.keys().cloned().collect(), None);
        }
        let now = now_ms();
        let mut next: Option<u64> = None;
        let mut keys = Vec::new();
        for (k, p) in &s.dirty {
            let at = p.at_ms.saturating_add(delay);
            if at <= now {
                keys.push(k.clone());
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        (keys, next.map(|n| Duration::from_millis(n - now)))
    }

    fn over(&self) -> bool {
        let s = self.state.lock().expect("tier state");
        s.hot_bytes > self.policy.hot_max || s.entries.len() as u64 > self.policy.hot_max_entries
    }

    fn touch(&self) -> (u64, u64) {
        (self.tick.fetch_add(1, Ordering::Relaxed), now_ms())
    }

    async fn append(&self, records: Vec<Record>) -> Result<()> {
        let j = self.journal.clone();
        // Only what cold owes needs to outlive a crash: a lost `clean` record means one
        // flush is repeated, with the same bytes.
        let sync = records.iter().any(|r| !matches!(r, Record::Clean { .. }));
        blocking(move || j.append(&records, sync)).await
    }

    /// Journals `op` on `key` (fsynced): from here on cold owes it.
    async fn owe(&self, key: &Key, op: PendingOp) -> Result<Pending> {
        let owed = self.owing(key, op);
        self.append(vec![owed.record(key.as_str())]).await?;
        Ok(owed)
    }

    /// What `op` on `key` will owe; a put names the owed delete it replaces (see
    /// `Owed::without_copy`). Call under the key's stripe.
    fn owing(&self, key: &Key, op: PendingOp) -> Pending {
        let after_delete = match (&op, self.pending(key.as_str())) {
            (PendingOp::Put(_), Some(p)) => match p.op {
                PendingOp::Delete => Some(p.at_ms),
                PendingOp::Put(_) => p.after_delete,
            },
            _ => None,
        };
        Pending {
            seq: self.next_seq(),
            op,
            at_ms: now_ms(),
            after_delete,
        }
    }

    /// Compacts the journal, forgetting the ETags of flushed copies no longer in hot.
    async fn compact_journal(self: &Arc<Self>) {
        let inner = self.clone();
        let r = blocking(move || {
            let hot = |k: &str| {
                inner
                    .state
                    .lock()
                    .expect("tier state")
                    .entries
                    .contains_key(k)
            };
            inner.journal.compact(hot)
        })
        .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "could not compact the tier journal");
        }
    }

    fn pending(&self, key: &str) -> Option<Pending> {
        self.state
            .lock()
            .expect("tier state")
            .dirty
            .get(key)
            .cloned()
    }

    fn cold_etag_of(&self, key: &str, hot: &ObjectMeta) -> Option<String> {
        cold_meta(hot).and_then(|c| c.etag).or_else(|| {
            self.state
                .lock()
                .expect("tier state")
                .entries
                .get(key)
                .and_then(|e| e.cold_etag.clone())
        })
    }

    fn err(&self, e: Error, op: &'static str, key: &Key) -> Error {
        if e.store().is_empty() {
            e.with_operation(op).with_key(key.as_str())
        } else {
            e
        }
    }

    /// Drops a hot copy (hot file and index), holding the stripe lock already.
    async fn drop_hot(&self, key: &Key) -> Result<()> {
        self.state.lock().expect("tier state").remove(key.as_str());
        self.hot.delete(key).await
    }

    /// Evicts one clean entry; true if it was removed. A sweep (`wait == false`) skips an
    /// entry whose stripe is busy; an explicit evict waits for it (a fill finishing).
    async fn evict_one(&self, key: &str, wait: bool) -> Result<bool> {
        let _g = if wait {
            self.stripe(key).write().await
        } else {
            match self.stripe(key).try_write() {
                Ok(g) => g,
                Err(_) => return Ok(false),
            }
        };
        if self.pending(key).is_some() {
            return Ok(false);
        }
        let k = Key::new(key)?;
        self.drop_hot(&k).await?;
        count(&self.counters.evictions, "cairn_tier_evictions_total");
        Ok(true)
    }

    /// Runs a sweep if the tier is over quota or demotes by age. One at a time, each from
    /// the state as it is then, so two sweeps never both evict for the same overage.
    async fn sweep(&self) {
        if !self.over() && self.policy.demote_after.is_none() {
            return;
        }
        let _one = self.sweeping.lock().await;
        let (cands, bytes, n) = {
            let s = self.state.lock().expect("tier state");
            let over = s.hot_bytes > self.policy.hot_max
                || s.entries.len() as u64 > self.policy.hot_max_entries;
            if !over && self.policy.demote_after.is_none() {
                return;
            }
            let c: Vec<policy::Candidate> = s
                .entries
                .iter()
                .map(|(k, e)| policy::Candidate {
                    key: k.clone(),
                    size: e.size,
                    tick: e.tick,
                    access_ms: e.access_ms,
                    freq: e.freq,
                    main: e.main,
                    dirty: s.dirty.contains_key(k),
                })
                .collect();
            (c, s.hot_bytes, s.entries.len() as u64)
        };
        let plan = policy::victims(&self.policy, cands, bytes, n, now_ms());
        {
            let mut s = self.state.lock().expect("tier state");
            for (k, freq) in plan.requeue {
                let tick = self.tick.fetch_add(1, Ordering::Relaxed);
                if let Some(e) = s.entries.get_mut(&k) {
                    (e.main, e.freq, e.tick) = (true, freq, tick);
                }
            }
        }
        for (k, small) in plan.evict {
            match self.evict_one(&k, false).await {
                Ok(true) if small => {
                    let mut s = self.state.lock().expect("tier state");
                    let max = s.entries.len().max(1);
                    s.ghost.remember(k, max);
                }
                Ok(_) => {}
                Err(e) => {
                    count(&self.counters.errors, "cairn_tier_errors_total");
                    tracing::warn!(key = %k, error = %e, "tier eviction failed");
                }
            }
        }
    }

    /// Uploads (or deletes) one pending key, holding its stripe for reading so no write to
    /// the key lands while its bytes travel. Returns the bytes uploaded.
    async fn flush_key(&self, key: &str) -> Result<u64> {
        let _f = self.flush_locks[Self::slot(key)].lock().await;
        let _g = self.stripe(key).read().await;
        let Some(p) = self.pending(key) else {
            return Ok(0);
        };
        let k = Key::new(key)?;
        let r = self.flush_op(&k, &p).await;
        match r {
            Ok(cold_etag) => {
                let hot_etag = match p.op {
                    PendingOp::Put(_) => self
                        .state
                        .lock()
                        .expect("tier state")
                        .entries
                        .get(key)
                        .and_then(|e| e.alias.clone()),
                    PendingOp::Delete => None,
                };
                self.append(vec![Record::Clean {
                    seq: p.seq,
                    key: key.to_string(),
                    hot_etag,
                    cold_etag: cold_etag.clone(),
                }])
                .await?;
                let mut s = self.state.lock().expect("tier state");
                s.clean(key, p.seq);
                if let Some(e) = s.entries.get_mut(key) {
                    e.cold_etag = cold_etag;
                    e.validated = Some(Instant::now());
                }
                *self.counters.last_error.lock().expect("last error") = None;
                drop(s);
                count(&self.counters.flushes, "cairn_tier_flushes_total");
                Ok(match p.op {
                    PendingOp::Put(n) => n,
                    PendingOp::Delete => 0,
                })
            }
            Err(e) => {
                count(&self.counters.errors, "cairn_tier_errors_total");
                tracing::warn!(key, error = %e, "tier flush failed; will retry");
                *self.counters.last_error.lock().expect("last error") = Some(e.to_string());
                Err(e)
            }
        }
    }

    async fn flush_op(&self, k: &Key, p: &Pending) -> Result<Option<String>> {
        match p.op {
            PendingOp::Delete => {
                self.cold.delete(k).await?;
                Ok(None)
            }
            PendingOp::Put(_) => {
                let r = self.hot.get_opts(k, GetOptions::default()).await?;
                let mut put = carry(&r.meta);
                put.storage_class = r.meta.layer_meta.get(CLASS_META).cloned();
                let opts = WriterOptions {
                    size_hint: Some(r.meta.size),
                    ..Default::default()
                };
                let res = put_stream(self.cold.as_ref(), k, r.body, put, opts).await?;
                Ok(res.etag)
            }
        }
    }

    /// Fills `key` from cold, holding its write stripe (`guard`) until the hot copy is in.
    async fn fill(self: &Arc<Self>, key: &Key, guard: OwnedRwLockWriteGuard<()>) -> Result<Filled> {
        let r = self.cold.get_opts(key, GetOptions::default()).await?;
        if r.meta.size > self.policy.fill_max {
            return Ok(Filled::Served(Box::new(r)));
        }
        let cm = ColdMeta {
            etag: r.meta.etag.clone(),
            version: r.meta.version.clone(),
            last_modified: Some(r.meta.last_modified),
        };
        let mut put = carry(&r.meta);
        set_layer_meta(
            &mut put,
            COLD_META,
            serde_json::to_string(&cm).expect("json"),
        );
        let size = r.meta.size;
        if size <= BUFFER_MAX {
            // Served from the bytes in hand, hashed once: the hot record and the checksum
            // layer above (told they match, as in `read_hot`) share the digest. The hot copy
            // is written after the reply; the stripe stays locked until it is in, so other
            // readers of the key wait for it rather than fetch again.
            let (meta, range) = (r.meta.clone(), r.range.clone());
            let body = r.bytes().await?;
            let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
            put.layer_hints.insert(
                crate::layer::checksum::BODY_SHA256_HINT.to_string(),
                digest.clone(),
            );
            // Indexed now, so stats are exact at once; readers of the key wait on the stripe.
            self.filled(key, size);
            let (inner, k, data) = (self.clone(), key.clone(), body.clone());
            tokio::spawn(async move {
                let _g = guard;
                if let Err(e) = inner.cache.put_opts(&k, data, put).await {
                    inner.state.lock().expect("tier state").remove(k.as_str());
                    count(&inner.counters.errors, "cairn_tier_errors_total");
                    tracing::warn!(key = %k, error = %e, "could not fill the hot copy");
                }
                // Before the stripe is released, so `settle` also waits for the sweep.
                inner.sweep().await;
                drop(_g);
            });
            return Ok(Filled::Served(Box::new(GetResult {
                meta,
                range,
                body: stream::once(async move { Ok(body) }).boxed(),
                verified_sha256: Some(digest),
            })));
        }
        let opts = WriterOptions {
            size_hint: Some(size),
            ..Default::default()
        };
        put_stream(&self.cache, key, r.body, put, opts).await?;
        self.filled(key, size);
        Ok(Filled::OnDisk(guard))
    }

    /// Indexes a hot copy just filled from cold.
    fn filled(&self, key: &Key, size: u64) {
        let (tick, access_ms) = self.touch();
        self.state
            .lock()
            .expect("tier state")
            .insert(key.as_str(), Entry::clean(size, (tick, access_ms)));
        count(&self.counters.fills, "cairn_tier_fills_total");
    }

    /// Whether a clean entry may be served: revalidates by ETag once its TTL passed.
    /// `Ok(false)`: stale (dropped). NotFound: gone from cold (dropped).
    async fn fresh(&self, key: &Key) -> Result<bool> {
        let due = {
            let s = self.state.lock().expect("tier state");
            match s.entries.get(key.as_str()) {
                None => return Ok(false),
                // Once per process even when immutable: see below.
                Some(e) => match e.validated {
                    None => true,
                    Some(v) => !self.policy.immutable && v.elapsed() >= self.policy.ttl,
                },
            }
        };
        if !due {
            return Ok(true);
        }
        let hot = match self.hot.head(key).await {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.state.lock().expect("tier state").remove(key.as_str());
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let want = self.cold_etag_of(key.as_str(), &hot);
        let mark = || {
            if let Some(e) = self
                .state
                .lock()
                .expect("tier state")
                .entries
                .get_mut(key.as_str())
            {
                e.validated = Some(Instant::now());
            }
        };
        // Immutable: a copy known to come from cold (filled, or flushed) needs no round trip.
        // One of unknown origin, such as a write-back put a crash cut off before its journal
        // record (never acknowledged), is checked against cold like any other, so it is never
        // served as the object.
        if self.policy.immutable && want.is_some() {
            mark();
            return Ok(true);
        }
        match self.cold.head(key).await {
            Ok(c) if want.is_some() && c.etag == want => {
                mark();
                Ok(true)
            }
            Ok(_) => {
                // Stale: out of the index now; the refill overwrites the file.
                self.state.lock().expect("tier state").remove(key.as_str());
                Ok(false)
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.drop_hot(key).await?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Drops a hot copy that failed its check, so the read refetches it.
    async fn drop_corrupt<T>(&self, key: &Key, e: Error) -> Result<Option<T>> {
        tracing::warn!(key = %key, error = %e, "corrupt hot copy dropped; refetching");
        count(&self.counters.errors, "cairn_tier_errors_total");
        self.drop_hot(key).await?;
        Ok(None)
    }

    /// Reads the hot copy. `Ok(None)`: it is gone or corrupt (dropped): refetch.
    async fn read_hot(&self, key: &Key, opts: &GetOptions) -> Result<Option<GetResult>> {
        let r = match self.hot.get_opts(key, opts.clone()).await {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.state.lock().expect("tier state").remove(key.as_str());
                return Ok(None);
            }
            // The checksum layer checks small objects before it returns.
            Err(e) if e.kind() == ErrorKind::Integrity => {
                return self.drop_corrupt(key, e).await;
            }
            Err(e) => return Err(e),
        };
        let full = r.range.start == 0 && r.range.end == r.meta.size;
        if !r.meta.layer_meta.contains_key(HOT_RECORDS.sha256) && r.meta.size > 0 {
            // The tier writes every hot copy through the checksum layer: a copy without a
            // digest was changed behind its back (the local store drops the record then).
            tracing::warn!(key = %key, "hot copy has no checksum record; dropped, refetching");
            count(&self.counters.errors, "cairn_tier_errors_total");
            self.drop_hot(key).await?;
            return Ok(None);
        }
        let checked = r.meta.layer_meta.get(HOT_RECORDS.sha256).cloned();
        let mut r = self.outer_meta(key, r);
        if full && r.meta.size <= BUFFER_MAX {
            let meta = r.meta.clone();
            let range = r.range.clone();
            match r.bytes().await {
                Ok(b) => {
                    // Checked whole against the hot record: the checksum layer above, which
                    // holds the same digest of the same bytes, need not hash them again.
                    r = GetResult {
                        verified_sha256: checked,
                        meta,
                        range,
                        body: stream::once(async move { Ok(b) }).boxed(),
                    }
                }
                Err(e) if e.kind() == ErrorKind::Integrity => {
                    return self.drop_corrupt(key, e).await;
                }
                Err(e) => return Err(e),
            }
        }
        let access_ms = now_ms();
        if let Some(e) = self
            .state
            .lock()
            .expect("tier state")
            .entries
            .get_mut(key.as_str())
        {
            // S3-FIFO: a read bumps the counter, not the queue place.
            e.freq = (e.freq + 1).min(policy::MAX_FREQ);
            e.access_ms = access_ms;
        }
        Ok(Some(r))
    }

    /// A hot result presented as the cold object: the cold ETag and attributes, no tier
    /// metadata.
    fn outer_meta(&self, key: &Key, mut r: GetResult) -> GetResult {
        r.meta = self.outer(key, r.meta);
        r
    }

    fn outer(&self, key: &Key, mut m: ObjectMeta) -> ObjectMeta {
        let dirty = self.pending(key.as_str()).is_some();
        let cold = cold_meta(&m);
        m.layer_meta.retain(|k, _| !is_tier_meta(k));
        m.stored_size = m.size;
        if let Some(c) = cold {
            if !dirty {
                m.etag = c.etag.or(m.etag);
                m.version = c.version;
                if let Some(t) = c.last_modified {
                    m.last_modified = t;
                }
            }
        }
        // A write-back copy keeps its own ETag after the flush (see `head`).
        m
    }

    async fn get(self: &Arc<Self>, key: &Key, opts: GetOptions) -> Result<GetResult> {
        if let Some(p) = self.pending(key.as_str()) {
            if p.op == PendingOp::Delete {
                return Err(Error::new(ErrorKind::NotFound, "deleted (not yet flushed)")
                    .with_operation("get")
                    .with_key(key.as_str()));
            }
        }
        let partial = matches!(&opts.range, Some(r) if *r != GetRange::Offset(0));
        loop {
            {
                let _g = self.stripe(key.as_str()).read().await;
                let present = self
                    .state
                    .lock()
                    .expect("tier state")
                    .entries
                    .contains_key(key.as_str());
                let dirty = self.pending(key.as_str()).is_some();
                if present && (dirty || self.fresh(key).await?) {
                    if let Some(r) = self.read_hot(key, &opts).await? {
                        count(&self.counters.hits, "cairn_tier_hits_total");
                        return Ok(r);
                    }
                } else if partial {
                    // A small range of a large object: never pull the whole object.
                    count(&self.counters.misses, "cairn_tier_misses_total");
                    return self.cold.get_opts(key, opts).await;
                }
            }
            let stripe = self.stripes[Self::slot(key.as_str())].clone();
            let g = stripe.write_owned().await;
            if self
                .state
                .lock()
                .expect("tier state")
                .entries
                .contains_key(key.as_str())
            {
                // Another reader filled it while we waited (single-flight), or it is stale.
                if self.fresh(key).await? {
                    continue;
                }
                self.drop_hot(key).await?;
            }
            count(&self.counters.misses, "cairn_tier_misses_total");
            let _g = match self.fill(key, g).await? {
                Filled::Served(r) => return Ok(*r),
                Filled::OnDisk(g) => g,
            };
            let r = self.read_hot(key, &opts).await?.ok_or_else(|| {
                Error::new(
                    ErrorKind::Integrity,
                    "the hot copy failed its check right after the fill",
                )
                .with_operation("get")
                .with_key(key.as_str())
                .with_hint("the hot directory's disk may be failing")
            })?;
            drop(_g);
            self.sweep().await;
            return Ok(r);
        }
    }

    /// Write-through: cold, then the hot copy (a failed hot write only drops the copy).
    async fn put_through(&self, key: &Key, data: Bytes, opts: PutOptions) -> Result<PutResult> {
        let _g = self.stripe(key.as_str()).write().await;
        let res = self.cold.put_opts(key, data.clone(), opts.clone()).await?;
        let cm = ColdMeta {
            etag: res.etag.clone(),
            version: res.version.clone(),
            last_modified: None,
        };
        let mut hot_opts = PutOptions {
            content_type: opts.content_type.clone(),
            metadata: opts.metadata.clone(),
            layer_hints: opts.layer_hints.clone(),
            ..Default::default()
        };
        set_layer_meta(
            &mut hot_opts,
            COLD_META,
            serde_json::to_string(&cm).expect("json"),
        );
        let size = data.len() as u64;
        let fits = size <= self.policy.fill_max;
        let hot_ok = fits && self.cache.put_opts(key, data, hot_opts).await.is_ok();
        let (tick, access_ms) = self.touch();
        let pending = self.pending(key.as_str());
        if let Some(p) = &pending {
            // A write-back op of an earlier run is superseded by this write.
            self.append(vec![Record::Clean {
                seq: p.seq,
                key: key.to_string(),
                hot_etag: None,
                cold_etag: None,
            }])
            .await?;
        }
        {
            let mut s = self.state.lock().expect("tier state");
            if let Some(p) = pending {
                s.clean(key.as_str(), p.seq);
            }
            if hot_ok {
                s.insert(key.as_str(), Entry::clean(size, (tick, access_ms)));
            } else {
                s.remove(key.as_str());
            }
        }
        if fits && !hot_ok {
            count(&self.counters.errors, "cairn_tier_errors_total");
            let _ = self.hot.delete(key).await;
        }
        drop(_g);
        self.sweep().await;
        Ok(res)
    }

    /// Write-back: the hot copy and its journal record are written side by side (both
    /// fsynced), then the put is acknowledged. A crash can leave the record without the copy;
    /// replay sees the copy missing and owes what was owed before (`Owed::without_copy`).
    async fn put_back(&self, key: &Key, data: Bytes, mut opts: PutOptions) -> Result<PutResult> {
        let size = data.len() as u64;
        if let Some(class) = opts.storage_class.take() {
            set_layer_meta(&mut opts, CLASS_META, class);
        }
        let _g = self.stripe(key.as_str()).write().await;
        let before = self.pending(key.as_str());
        let owed = self.owing(key, PendingOp::Put(size));
        let (res, journaled) = tokio::join!(
            self.hot.put_opts(key, data, opts),
            self.append(vec![owed.record(key.as_str())])
        );
        let res = match (res, journaled) {
            (Ok(res), Ok(())) => res,
            (Err(e), Ok(())) => {
                // The record owes a copy that is not there: journal what was owed before.
                let undo = match before {
                    Some(p) => Pending {
                        seq: self.next_seq(),
                        ..p
                    }
                    .record(key.as_str()),
                    None => Record::Clean {
                        seq: owed.seq,
                        key: key.to_string(),
                        hot_etag: None,
                        cold_etag: None,
                    },
                };
                self.append(vec![undo]).await?;
                return Err(e);
            }
            (_, Err(e)) => return Err(e),
        };
        let (tick, access_ms) = self.touch();
        {
            let mut s = self.state.lock().expect("tier state");
            s.set_dirty(key.as_str(), owed);
            s.insert(
                key.as_str(),
                Entry::written_back(size, (tick, access_ms), res.etag.clone()),
            );
        }
        drop(_g);
        self.wake.notify_one();
        self.sweep().await;
        Ok(PutResult {
            etag: res.etag,
            version: None,
        })
    }

    async fn put(&self, key: &Key, data: Bytes, mut opts: PutOptions) -> Result<PutResult> {
        if self.policy.mode == WriteMode::WriteThrough {
            if self.pending(key.as_str()).is_some() && opts.mode != PutMode::Overwrite {
                self.flush_key(key.as_str()).await?;
            }
            return self.put_through(key, data, opts).await;
        }
        match opts.mode.clone() {
            PutMode::Overwrite => {}
            PutMode::Create => {
                match self.pending(key.as_str()).map(|p| p.op) {
                    Some(PendingOp::Put(_)) => {
                        return Err(Error::new(
                            ErrorKind::AlreadyExists,
                            "the key exists (not yet flushed)",
                        )
                        .with_operation("put")
                        .with_store(self.display())
                        .with_key(key.as_str()))
                    }
                    Some(PendingOp::Delete) => {
                        self.flush_key(key.as_str()).await?;
                    }
                    None => {}
                }
                return self.put_through(key, data, opts).await;
            }
            PutMode::Update(etag) => {
                let hot_etag = match self.pending(key.as_str()).map(|p| p.op) {
                    Some(PendingOp::Put(_)) => self.hot.head(key).await.ok().and_then(|m| m.etag),
                    Some(PendingOp::Delete) => {
                        return Err(Error::new(
                            ErrorKind::PreconditionFailed,
                            "the key was deleted (not yet flushed)",
                        )
                        .with_operation("put")
                        .with_key(key.as_str()))
                    }
                    None => None,
                };
                if let Some(h) = hot_etag {
                    if h != etag {
                        return Err(Error::new(
                            ErrorKind::PreconditionFailed,
                            "the ETag does not match",
                        )
                        .with_operation("put")
                        .with_key(key.as_str()));
                    }
                    opts.mode = PutMode::Overwrite;
                    return self.put_back(key, data, opts).await;
                }
                // Flushed: the ETag a write-back put returned stands for the cold one.
                let translated = {
                    let s = self.state.lock().expect("tier state");
                    s.entries.get(key.as_str()).and_then(|e| {
                        (e.alias.as_deref() == Some(etag.as_str()))
                            .then(|| e.cold_etag.clone())
                            .flatten()
                    })
                };
                if let Some(c) = translated {
                    opts.mode = PutMode::Update(c);
                }
                return self.put_through(key, data, opts).await;
            }
        }
        let dirty_bytes = self.state.lock().expect("tier state").dirty_bytes;
        if dirty_bytes + data.len() as u64 > self.policy.dirty_max {
            // Past dirty_max: synchronous, so memory of what is owed to cold stays bounded.
            return self.put_through(key, data, opts).await.map_err(|e| {
                let msg = format!(
                    "write-back is full ({dirty_bytes} dirty bytes, dirty_max {}) and the \
                     synchronous write to cold failed: {}",
                    self.policy.dirty_max,
                    e.message()
                );
                let kind = e.kind();
                Error::new(kind, msg)
                    .with_operation("put")
                    .with_store(self.display())
                    .with_key(key.as_str())
                    .with_source(e)
                    .with_hint("restore the cold store (the flusher catches up by itself) or raise dirty_max")
            });
        }
        self.put_back(key, data, opts).await
    }

    fn display(&self) -> String {
        format!("tier+{}", self.cold)
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        let _g = self.stripe(key.as_str()).write().await;
        if self.policy.mode == WriteMode::WriteBack {
            let owed = self.owe(key, PendingOp::Delete).await?;
            self.state
                .lock()
                .expect("tier state")
                .set_dirty(key.as_str(), owed);
            self.drop_hot(key).await?;
            self.wake.notify_one();
            return Ok(());
        }
        self.cold.delete(key).await?;
        self.drop_hot(key).await?;
        if let Some(p) = self.pending(key.as_str()) {
            self.append(vec![Record::Clean {
                seq: p.seq,
                key: key.to_string(),
                hot_etag: None,
                cold_etag: None,
            }])
            .await?;
            self.state
                .lock()
                .expect("tier state")
                .clean(key.as_str(), p.seq);
        }
        Ok(())
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        match self.pending(key.as_str()).map(|p| p.op) {
            Some(PendingOp::Put(_)) => {
                let m = self.hot.head(key).await?;
                Ok(self.outer(key, m))
            }
            Some(PendingOp::Delete) => {
                Err(Error::new(ErrorKind::NotFound, "deleted (not yet flushed)")
                    .with_operation("head")
                    .with_key(key.as_str()))
            }
            None => {
                // A flushed write-back copy keeps the ETag its put returned (cold's differs),
                // so a reader that started on it sees no change: answer from it while fresh.
                if self.aliases(key) {
                    let _g = self.stripe(key.as_str()).read().await;
                    if self.aliases(key) && self.fresh(key).await? {
                        if let Ok(m) = self.hot.head(key).await {
                            return Ok(self.outer(key, m));
                        }
                    }
                }
                self.cold.head(key).await
            }
        }
    }

    fn aliases(&self, key: &Key) -> bool {
        self.state
            .lock()
            .expect("tier state")
            .entries
            .get(key.as_str())
            .is_some_and(|e| e.alias.is_some())
    }

    /// The pending keys under `opts` as list entries (objects with metadata, or deletes).
    async fn pending_listing(
        &self,
        opts: &ListOptions,
    ) -> Result<Vec<(String, Option<ObjectMeta>)>> {
        let keys: Vec<(String, PendingOp)> = {
            let s = self.state.lock().expect("tier state");
            s.dirty
                .iter()
                .filter(|(k, _)| {
                    k.starts_with(&opts.prefix)
                        && opts
                            .start_after
                            .as_ref()
                            .is_none_or(|a| k.as_str() > a.as_str())
                })
                .map(|(k, p)| (k.clone(), p.op.clone()))
                .collect()
        };
        let mut out = Vec::new();
        for (k, op) in keys {
            let key = Key::new(&k)?;
            match op {
                PendingOp::Delete => out.push((k, None)),
                PendingOp::Put(_) => match self.hot.head(&key).await {
                    Ok(m) => {
                        let mut m = self.outer(&key, m);
                        m.content_type = None;
                        m.metadata.clear();
                        out.push((k, Some(m)))
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                },
            }
        }
        Ok(out)
    }
}

fn cold_meta(m: &ObjectMeta) -> Option<ColdMeta> {
    m.layer_meta
        .get(COLD_META)
        .and_then(|j| serde_json::from_str(j).ok())
}

/// Merges a cold listing with pending write-back keys (sorted): pending puts appear (or
/// replace cold's entry), pending deletes hide the cold entry.
fn merge_listing(
    cold: BoxStream<'static, Result<ListEntry>>,
    pending: Vec<(String, Option<ObjectMeta>)>,
    opts: ListOptions,
) -> BoxStream<'static, Result<ListEntry>> {
    // With a delimiter, pending keys below the next `/` fold into prefixes.
    let mut local: BTreeMap<String, Option<ListEntry>> = BTreeMap::new();
    for (k, m) in pending {
        let rest = &k[opts.prefix.len()..];
        match (opts.delimiter, rest.find('/')) {
            (true, Some(i)) => {
                let p = k[..opts.prefix.len() + i + 1].to_string();
                if m.is_some() {
                    local.insert(p.clone(), Some(ListEntry::Prefix(p)));
                }
            }
            _ => {
                local.insert(k, m.map(ListEntry::Object));
            }
        }
    }
    let local: VecDeque<(String, Option<ListEntry>)> = local.into_iter().collect();
    stream::unfold(
        (cold.peekable(), local),
        |(mut cold, mut local)| async move {
            loop {
                let next_cold = std::pin::Pin::new(&mut cold).peek().await;
                let cold_name = match next_cold {
                    Some(Ok(e)) => Some(e.name().to_string()),
                    Some(Err(_)) => {
                        let e = cold.next().await.expect("peeked");
                        return Some((e, (cold, local)));
                    }
                    None => None,
                };
                let take_local = match (&cold_name, local.front()) {
                    (_, None) => false,
                    (None, Some(_)) => true,
                    (Some(c), Some((l, _))) => l.as_str() <= c.as_str(),
                };
                if take_local {
                    let (l, e) = local.pop_front().expect("front");
                    if cold_name.as_deref() == Some(l.as_str()) {
                        let _ = cold.next().await;
                    }
                    match e {
                        Some(e) => return Some((Ok(e), (cold, local))),
                        None => continue,
                    }
                }
                return cold.next().await.map(|e| (e, (cold, local)));
            }
        },
    )
    .boxed()
}

/// A multipart upload through the tier: write-through uploads go to cold and drop the hot
/// copy on completion; write-back ones go to hot and are journaled on completion.
#[derive(Debug)]
struct TierUpload {
    inner: Box<dyn MultipartUpload>,
    tier: TieredStore,
    key: Key,
    back: bool,
}

#[async_trait]
impl MultipartUpload for TierUpload {
    fn put_part(&mut self, data: Bytes) -> futures::future::BoxFuture<'static, Result<()>> {
        self.inner.put_part(data)
    }
    async fn complete(&mut self) -> Result<PutResult> {
        let t = &self.tier.inner;
        let _g = t.stripe(self.key.as_str()).write().await;
        let res = self.inner.complete().await?;
        if !self.back {
            t.drop_hot(&self.key).await?;
            return Ok(res);
        }
        let size = t.hot.head(&self.key).await?.size;
        let owed = t.owe(&self.key, PendingOp::Put(size)).await?;
        let (tick, access_ms) = t.touch();
        {
            let mut s = t.state.lock().expect("tier state");
            s.set_dirty(self.key.as_str(), owed);
            s.insert(
                self.key.as_str(),
                Entry::written_back(size, (tick, access_ms), res.etag.clone()),
            );
        }
        t.wake.notify_one();
        Ok(PutResult {
            etag: res.etag,
            version: None,
        })
    }
    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
    fn add_trailing_metadata(&mut self, metadata: Metadata) {
        self.inner.add_trailing_metadata(metadata)
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl Store for TieredStore {
    fn capabilities(&self) -> Capabilities {
        let mut c = self.inner.cold.capabilities();
        c.local = false;
        c
    }
    async fn put_opts(&self, key: &Key, data: Bytes, opts: PutOptions) -> Result<PutResult> {
        self.inner
            .put(key, data, opts)
            .await
            .map_err(|e| self.inner.err(e, "put", key))
    }
    async fn put_multipart_opts(
        &self,
        key: &Key,
        opts: PutOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let t = &self.inner;
        let dirty = t.state.lock().expect("tier state").dirty_bytes;
        let back = t.policy.mode == WriteMode::WriteBack
            && opts.mode == PutMode::Overwrite
            && dirty < t.policy.dirty_max;
        if !back && t.pending(key.as_str()).is_some() {
            t.flush_key(key.as_str()).await?;
        }
        let inner = if back {
            let mut opts = opts;
            if let Some(class) = opts.storage_class.take() {
                set_layer_meta(&mut opts, CLASS_META, class);
            }
            t.hot.put_multipart_opts(key, opts).await?
        } else {
            t.cold.put_multipart_opts(key, opts).await?
        };
        Ok(Box::new(TierUpload {
            inner,
            tier: self.clone(),
            key: key.clone(),
            back,
        }))
    }
    async fn get_opts(&self, key: &Key, opts: GetOptions) -> Result<GetResult> {
        let t = &self.inner;
        // Raw reads need no special path: under the layers, hot holds the stored bytes.
        if opts.version.is_some() {
            if t.pending(key.as_str()).is_some() {
                t.flush_key(key.as_str()).await?;
            }
            return t.cold.get_opts(key, opts).await;
        }
        let if_match = opts.if_match.clone();
        let opts = GetOptions {
            if_match: None,
            ..opts
        };
        let r = t.get(key, opts).await.map_err(|e| t.err(e, "get", key))?;
        if let Some(want) = if_match {
            // A flushed write-back copy answers to its own ETag and to cold's (listings).
            let names = t
                .state
                .lock()
                .expect("tier state")
                .entries
                .get(key.as_str())
                .map(|e| [e.alias.clone(), e.cold_etag.clone()]);
            let known = names
                .iter()
                .flatten()
                .any(|n| n.as_deref() == Some(want.as_str()));
            if r.meta.etag.as_deref() != Some(want.as_str()) && !known {
                return Err(
                    Error::new(ErrorKind::PreconditionFailed, "the ETag does not match")
                        .with_operation("get")
                        .with_store(self)
                        .with_key(key.as_str()),
                );
            }
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
        keys.map(move |k| async move {
            let r = self.delete(&k).await;
            (k, r)
        })
        .buffer_unordered(16)
        .boxed()
    }
    fn list(&self, opts: ListOptions) -> BoxStream<'static, Result<ListEntry>> {
        let has_pending = !self
            .inner
            .state
            .lock()
            .expect("tier state")
            .dirty
            .is_empty();
        let listed = if !has_pending {
            self.inner.cold.list(opts)
        } else {
            let t = self.clone();
            stream::once(async move {
                let pending = t.inner.pending_listing(&opts).await?;
                Ok::<_, Error>(merge_listing(
                    t.inner.cold.list(opts.clone()),
                    pending,
                    opts,
                ))
            })
            .try_flatten()
            .boxed()
        };
        // A flushed write-back copy is listed as `head` shows it: its own ETag and time, so
        // a sync that saw it dirty finds it unchanged once it is flushed.
        let t = self.clone();
        listed
            .then(move |e| {
                let t = t.clone();
                async move {
                    let Ok(ListEntry::Object(mut m)) = e else {
                        return e;
                    };
                    let alias = {
                        let s = t.inner.state.lock().expect("tier state");
                        s.entries.get(m.key.as_str()).and_then(|x| {
                            (x.cold_etag.is_some() && x.cold_etag == m.etag)
                                .then(|| x.alias.clone())
                                .flatten()
                        })
                    };
                    if let Some(alias) = alias {
                        if let Ok(h) = t.inner.hot.head(&m.key).await {
                            m.etag = Some(alias);
                            m.last_modified = h.last_modified;
                        }
                    }
                    Ok(ListEntry::Object(m))
                }
            })
            .boxed()
    }
    async fn copy_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        let t = &self.inner;
        t.flush_key(from.as_str()).await?;
        t.flush_key(to.as_str()).await?;
        let _g = t.stripe(to.as_str()).write().await;
        t.cold.copy_opts(from, to, opts).await?;
        t.drop_hot(to).await
    }
    async fn rename_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        let t = &self.inner;
        t.flush_key(from.as_str()).await?;
        t.flush_key(to.as_str()).await?;
        t.cold.rename_opts(from, to, opts).await?;
        for k in [from, to] {
            let _g = t.stripe(k.as_str()).write().await;
            t.drop_hot(k).await?;
        }
        Ok(())
    }
    async fn health_check(&self) -> Result<()> {
        self.inner.hot.health_check().await?;
        self.inner.cold.health_check().await
    }
    fn digest_scheme(&self) -> crate::digest::DigestScheme {
        self.inner.cold.digest_scheme()
    }
    fn server_side(&self) -> Option<crate::server_side::ServerSide> {
        self.inner.cold.server_side()
    }
}
