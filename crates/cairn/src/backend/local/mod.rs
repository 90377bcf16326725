//! The local filesystem store, cairn's embedded default.
//!
//! Layout under the root: objects are plain files at their key's path, so the tree is readable
//! without cairn. Metadata lives in `.cairn/meta/<key>.json`, temp files in `.cairn/tmp/`; keys
//! under `.cairn/` are reserved.
//!
//! - Writes are atomic: temp file, fsync, sidecar rename, data rename, fsync of the directories
//!   that changed (new parents included). A sidecar names the one file it describes (see
//!   `sidecar.rs`), so data and metadata become visible together.
//! - Create-only puts use `link(2)`, which fails if the target exists, so they hold across
//!   processes; if-match puts are serialized within the process.
//! - ETags are `inode-mtime-size`, unique per write: each write is a new file whose mtime is
//!   stamped uniquely (`files.rs`).
//! - `rename` is rename(2) of the file (and its sidecar first).
//! - Temp files older than [`STALE_TMP_AGE`] (from killed writers) are removed on open; a
//!   multipart upload dropped without `complete` removes its own.

mod beneath;
mod files;
mod sidecar;
pub(crate) mod upload;
mod walk;

use beneath::At;
pub(crate) use files::in_directory;
use files::{etag, write_synced};
use sidecar::{Record, Sidecar};
use upload::LocalUpload;
use walk::walk;

use super::memory::check_mode;
use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::store::*;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt};
use std::fmt;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The reserved top-level folder for cairn's own files.
pub const RESERVED_DIR: &str = ".cairn";
const READ_CHUNK: usize = 256 * 1024;
/// Temp files in `.cairn/tmp` older than this belong to killed writers: a store removes them
/// when it opens. A live writer touches its file far more often than this.
pub const STALE_TMP_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// The default root: `$CAIRN_ROOT`, else `$XDG_DATA_HOME/cairn`, else `~/.local/share/cairn`.
pub fn default_root() -> PathBuf {
    if let Some(r) = std::env::var_os("CAIRN_ROOT").filter(|r| !r.is_empty()) {
        return PathBuf::from(r);
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|r| !r.is_empty()) {
        return PathBuf::from(x).join("cairn");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| ".".into());
    home.join(".local/share/cairn")
}

/// A store over a directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    /// Serializes conditional updates within this process (link(2) covers create-only).
    update_lock: std::sync::Mutex<()>,
    /// fsync writes before they are acknowledged (off only for caches, see `durable`).
    durable: bool,
}

impl LocalStore {
    /// A store rooted at `root`, created if missing.
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        fs::create_dir_all(root).map_err(|e| {
            Error::from(e)
                .with_operation("open")
                .with_store(format!("file://{}", root.display()))
                .with_hint("check that the directory can be created and written")
        })?;
        let root = fs::canonicalize(root).map_err(Error::from)?;
        files::remove_stale(&root.join(RESERVED_DIR).join("tmp"), STALE_TMP_AGE);
        Ok(LocalStore {
            inner: Arc::new(Inner {
                root,
                update_lock: Default::default(),
                durable: true,
            }),
        })
    }

    /// This store with writes fsynced (`true`, the default) or not. Without, a write is still
    /// atomic for other processes and survives a process crash, but a power loss may leave
    /// the newest files empty or torn: only for copies that can be fetched again and are
    /// checked on read, like the tiered store's fills.
    pub fn durable(self, durable: bool) -> Self {
        let inner = &self.inner;
        LocalStore {
            inner: Arc::new(Inner {
                root: inner.root.clone(),
                update_lock: Default::default(),
                durable,
            }),
        }
    }

    /// The store at [`default_root`].
    pub fn open_default() -> Result<Self> {
        Self::new(default_root())
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    fn reserved(key: &Key) -> bool {
        key.as_str() == RESERVED_DIR || key.as_str().starts_with(".cairn/")
    }

    /// Refuses reserved keys. Every path under the root is then resolved by `beneath`, one
    /// directory at a time, never through a symlink.
    fn check_key(&self, key: &Key, op: &'static str) -> Result<()> {
        if Self::reserved(key) {
            return Err(
                Error::invalid("keys under `.cairn/` are reserved by the local store")
                    .with_operation(op)
                    .with_store(self)
                    .with_key(key.as_str()),
            );
        }
        Ok(())
    }

    /// The sidecar's path under the root.
    fn meta_rel(key: &Key) -> String {
        format!("{RESERVED_DIR}/meta/{}.json", key.as_str())
    }

    /// The directory of `key` and its name (not created).
    fn at(&self, rel: &str) -> std::io::Result<At> {
        beneath::at(&self.inner.root, rel)
    }

    /// The metadata of the data file now at `key`, if there is one.
    fn data_meta(&self, key: &Key) -> Option<fs::Metadata> {
        let f = beneath::open_file(&self.inner.root, key.as_str()).ok()?;
        f.metadata().ok().filter(|m| m.is_file())
    }

    fn tmp_path(&self) -> std::io::Result<PathBuf> {
        // Made (and checked for links) beneath the root; temp files are then opened by path.
        beneath::create_dir(&self.inner.root, &[RESERVED_DIR, "tmp"], &mut Vec::new())?;
        let dir = self.inner.root.join(RESERVED_DIR).join("tmp");
        Ok(dir.join(format!("{:016x}.tmp", rand::random::<u64>())))
    }

    fn err(&self, e: impl Into<Error>, op: &'static str, key: &Key) -> Error {
        let e = e.into();
        let through_link = std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some_and(beneath::is_link);
        let e = if through_link {
            Error::new(ErrorKind::PermissionDenied, beneath::LINK)
                .with_hint("replace the link with the directory or file itself")
        } else {
            e
        };
        e.with_operation(op).with_store(self).with_key(key.as_str())
    }

    /// The sidecar record that describes the data file `data` of `key`, if any.
    fn record(&self, key: &Key, data: &fs::Metadata) -> Option<Record> {
        let mut f = beneath::open_file(&self.inner.root, &Self::meta_rel(key)).ok()?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).ok()?;
        Sidecar::parse(&bytes)?.describing(data)
    }

    fn object_meta(&self, key: &Key, data: &fs::Metadata, full: bool) -> ObjectMeta {
        let rec = if full {
            self.record(key, data).unwrap_or_default()
        } else {
            Record::default()
        };
        let modified = data
            .modified()
            .map(DateTime::<Utc>::from)
            .unwrap_or_else(|_| Utc::now());
        let mut m =
            ObjectMeta::new(key.clone(), data.len(), modified).with_stored_metadata(rec.metadata);
        m.etag = Some(etag(data));
        m.content_type = rec.content_type;
        m
    }

    /// The data file of `key`, open, and its metadata; NotFound for a missing file or a
    /// directory.
    fn file_of(&self, key: &Key, op: &'static str) -> Result<(fs::File, fs::Metadata)> {
        self.check_key(key, op)?;
        let file =
            beneath::open_file(&self.inner.root, key.as_str()).map_err(|e| self.err(e, op, key))?;
        let m = file.metadata().map_err(|e| self.err(e, op, key))?;
        if !m.is_file() {
            return Err(self.err(
                Error::new(ErrorKind::NotFound, "it is a directory"),
                op,
                key,
            ));
        }
        Ok((file, m))
    }

    fn head_blocking(&self, key: &Key) -> Result<ObjectMeta> {
        let (_, m) = self.file_of(key, "head")?;
        Ok(self.object_meta(key, &m, true))
    }

    /// Writes a sidecar for `key` into a temp file: `current`, plus the record of the data file
    /// now at `dest` (so that file keeps its metadata until the data rename replaces it).
    fn sidecar_temp(&self, key: &Key, dest: &Key, current: Record) -> std::io::Result<PathBuf> {
        let previous = self.data_meta(dest).and_then(|d| self.record(key, &d));
        let t = self.tmp_path()?;
        let json = Sidecar { current, previous }.to_json();
        write_synced(&t, &json, self.inner.durable).inspect_err(|_| {
            let _ = fs::remove_file(&t);
        })?;
        Ok(t)
    }

    /// Moves a finished temp file into place with its sidecar, honouring the put mode. The temp
    /// file is gone afterwards, whatever the outcome.
    fn commit(&self, tmp: &Path, key: &Key, opts: &PutOptions) -> Result<PutResult> {
        let mut side_tmp = None;
        let r = self.commit_with(tmp, key, opts, &mut side_tmp);
        if r.is_err() {
            let _ = fs::remove_file(tmp);
            if let Some(t) = side_tmp {
                let _ = fs::remove_file(t);
            }
        }
        r.map_err(|e| self.err(e, "put", key))
    }

    fn commit_with(
        &self,
        tmp: &Path,
        key: &Key,
        opts: &PutOptions,
        side_tmp: &mut Option<PathBuf>,
    ) -> Result<PutResult> {
        self.check_key(key, "put")?;
        let root = &self.inner.root;
        let meta_rel = Self::meta_rel(key);
        // The new file's identity, which its rename keeps: the sidecar names it.
        let m = fs::metadata(tmp)?;
        let current = Record::new(&m, opts.content_type.clone(), opts.metadata.clone());
        // The directories whose entries change, fsynced at the end.
        let mut dirty: Vec<OwnedFd> = Vec::new();
        if !current.is_empty() {
            *side_tmp = Some(self.sidecar_temp(key, key, current)?);
        }
        // Every commit renames out of the one temp directory: take its namespace lock.
        in_directory(tmp, || -> Result<()> {
            let _update = matches!(opts.mode, PutMode::Update(_)).then(|| {
                self.inner
                    .update_lock
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
            });
            match &opts.mode {
                PutMode::Create
                    if self
                        .at(key.as_str())
                        .is_ok_and(|a| a.exists().unwrap_or(true)) =>
                {
                    return Err(Error::new(ErrorKind::AlreadyExists, "the key exists"));
                }
                PutMode::Update(_) => {
                    let now = self.data_meta(key).map(|m| etag(&m));
                    check_mode(&opts.mode, now.as_deref())?;
                }
                _ => {}
            }
            // Sidecar first, data second (see `sidecar`).
            match side_tmp.take() {
                Some(t) => beneath::into_dir(root, &meta_rel, &mut dirty, |at| at.rename_from(&t))?,
                None => {
                    if let Some(at) = self.existing_at(&meta_rel)? {
                        if at.remove_if_exists()? {
                            dirty.push(at.dir);
                        }
                    }
                }
            }
            #[cfg(test)]
            if tests::CRASH_BEFORE_DATA.get() {
                return Err(Error::new(ErrorKind::Unexpected, "simulated crash"));
            }
            let rel = key.as_str();
            match &opts.mode {
                PutMode::Create => {
                    match beneath::into_dir(root, rel, &mut dirty, |at| {
                        at.refuse_link()?;
                        at.link_from(tmp)
                    }) {
                        Ok(()) => fs::remove_file(tmp)?,
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                            return Err(Error::new(ErrorKind::AlreadyExists, "the key exists"));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                _ => beneath::into_dir(root, rel, &mut dirty, |at| {
                    at.refuse_link()?;
                    at.rename_from(tmp)
                })?,
            }
            Ok(())
        })?;
        if self.inner.durable {
            beneath::sync_dirs(dirty);
        }
        Ok(PutResult {
            etag: Some(etag(&m)),
            version: None,
        })
    }

    /// The directory of `rel` and its name, or None when the directory is missing.
    fn existing_at(&self, rel: &str) -> std::io::Result<Option<At>> {
        match self.at(rel) {
            Ok(at) => Ok(Some(at)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn put_blocking(&self, key: &Key, data: &[u8], opts: &PutOptions) -> Result<PutResult> {
        self.check_key(key, "put")?;
        let tmp = self.tmp_path().map_err(|e| self.err(e, "put", key))?;
        files::write_object(&tmp, data, self.inner.durable).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            self.err(e, "put", key)
        })?;
        self.commit(&tmp, key, opts)
    }

    /// Copies `from` into a new temp file and commits it as `to`.
    fn copy_blocking(&self, from: &Key, to: &Key, opts: &CopyOptions) -> Result<()> {
        // Bytes and record from one open file, so a concurrent commit cannot mix them.
        let (mut file, m) = self.file_of(from, "copy")?;
        let rec = self.record(from, &m).unwrap_or_default();
        let tmp = self.tmp_path()?;
        let copied = (|| {
            let mut out = in_directory(&tmp, || fs::File::create(&tmp))?;
            std::io::copy(&mut file, &mut out)?;
            files::stamp_and_sync(&out, self.inner.durable)
        })();
        if let Err(e) = copied {
            let _ = fs::remove_file(&tmp);
            return Err(self.err(e, "copy", from));
        }
        let put = PutOptions {
            mode: if opts.if_not_exists {
                PutMode::Create
            } else {
                PutMode::Overwrite
            },
            content_type: rec.content_type,
            metadata: rec.metadata,
            ..Default::default()
        };
        self.commit(&tmp, to, &put)
            .map(|_| ())
            .map_err(|e| e.with_operation("copy"))
    }

    /// rename(2) of the data file; its sidecar moves first, in the order of `commit`.
    fn rename_blocking(&self, from: &Key, to: &Key, opts: &CopyOptions) -> Result<()> {
        let err = |e: Error, k: &Key| self.err(e, "rename", k);
        let (_, m) = self.file_of(from, "rename")?;
        self.check_key(to, "rename")?;
        if from == to {
            return Ok(());
        }
        let root = &self.inner.root;
        let (meta_from, meta_to) = (Self::meta_rel(from), Self::meta_rel(to));
        let mut dirty: Vec<OwnedFd> = Vec::new();
        // The record moves with the file: a rename keeps inode, mtime and size.
        let mut side_tmp = match self.record(from, &m).filter(|r| !r.is_empty()) {
            Some(rec) => {
                let t = self.sidecar_temp(to, to, rec);
                Some(t.map_err(|e| err(e.into(), to))?)
            }
            None => None,
        };
        let lock_entry = self.inner.root.join(RESERVED_DIR).join("tmp").join("x");
        let moved = in_directory(&lock_entry, || -> Result<()> {
            let src = self.at(from.as_str())?;
            if opts.if_not_exists
                && self
                    .at(to.as_str())
                    .is_ok_and(|a| a.exists().unwrap_or(true))
            {
                return Err(Error::new(ErrorKind::AlreadyExists, "the key exists"));
            }
            match side_tmp.take() {
                Some(t) => beneath::into_dir(root, &meta_to, &mut dirty, |at| at.rename_from(&t))?,
                None => {
                    if let Some(at) = self.existing_at(&meta_to)? {
                        at.remove_if_exists()?;
                    }
                }
            }
            if opts.if_not_exists {
                // link(2) fails atomically if `to` exists; `from` goes after.
                match beneath::into_dir(root, to.as_str(), &mut dirty, |at| {
                    at.refuse_link()?;
                    src.link_to(at)
                }) {
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        return Err(Error::new(ErrorKind::AlreadyExists, "the key exists"));
                    }
                    r => r?,
                }
                src.remove()?;
            } else {
                beneath::into_dir(root, to.as_str(), &mut dirty, |at| {
                    at.refuse_link()?;
                    src.rename_to(at)
                })?;
            }
            dirty.push(src.dir);
            Ok(())
        });
        if let Err(e) = moved {
            if let Some(t) = side_tmp {
                let _ = fs::remove_file(t);
            }
            let k = if e.kind() == ErrorKind::AlreadyExists {
                to
            } else {
                from
            };
            return Err(err(e, k));
        }
        // `from`'s sidecar describes a file now under `to`: unused, removed.
        if let Ok(Some(at)) = self.existing_at(&meta_from) {
            if at.remove_if_exists().unwrap_or(false) {
                dirty.push(at.dir);
                beneath::prune_empty_dirs(root, &meta_from, 2);
            }
        }
        beneath::prune_empty_dirs(root, from.as_str(), 0);
        if self.inner.durable {
            beneath::sync_dirs(dirty);
        }
        Ok(())
    }

    fn delete_blocking(&self, key: &Key) -> Result<()> {
        self.check_key(key, "delete")?;
        let removed = self
            .existing_at(key.as_str())
            .and_then(|at| at.map_or(Ok(false), |at| at.remove_if_exists()))
            .map_err(|e| self.err(e, "delete", key))?;
        if !removed {
            return Ok(());
        }
        let meta = Self::meta_rel(key);
        if let Ok(Some(at)) = self.existing_at(&meta) {
            if at.remove().is_ok() {
                beneath::prune_empty_dirs(&self.inner.root, &meta, 2);
            }
        }
        // Prune now-empty parents so directories mirror S3's implicit prefixes.
        beneath::prune_empty_dirs(&self.inner.root, key.as_str(), 0);
        Ok(())
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::new(ErrorKind::Unexpected, format!("blocking task failed: {e}")))?
}

impl fmt::Display for LocalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "file://{}", self.inner.root.display())
    }
}

#[async_trait]
impl Store for LocalStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            min_part_size: 1,
            ..Capabilities::default()
        }
    }

    async fn put_opts(&self, key: &Key, data: Bytes, opts: PutOptions) -> Result<PutResult> {
        let (s, k) = (self.clone(), key.clone());
        blocking(move || s.put_blocking(&k, &data, &opts)).await
    }

    async fn put_multipart_opts(
        &self,
        key: &Key,
        opts: PutOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let (s, k) = (self.clone(), key.clone());
        blocking(move || {
            s.check_key(&k, "put")?;
            let tmp = s.tmp_path()?;
            let file = in_directory(&tmp, || fs::File::create(&tmp))?;
            Ok(Box::new(LocalUpload {
                store: s,
                key: k,
                opts,
                part: upload::PartFile::new(tmp, file),
            }) as Box<dyn MultipartUpload>)
        })
        .await
    }

    async fn get_opts(&self, key: &Key, opts: GetOptions) -> Result<GetResult> {
        if opts.version.is_some() {
            return Err(
                crate::server_side::unsupported(self, "reading an old version")
                    .with_operation("get")
                    .with_key(key.as_str()),
            );
        }
        let (s, k) = (self.clone(), key.clone());
        let (meta, range, file) = blocking(move || {
            let (mut f, m) = s.file_of(&k, "get")?;
            let meta = s.object_meta(&k, &m, true);
            if let Some(want) = &opts.if_match {
                if Some(want) != meta.etag.as_ref() {
                    return Err(s.err(
                        Error::new(ErrorKind::PreconditionFailed, "ETag changed"),
                        "get",
                        &k,
                    ));
                }
            }
            let range = match &opts.range {
                Some(r) => r.resolve(m.len()).map_err(|e| s.err(e, "get", &k))?,
                None => 0..m.len(),
            };
            f.seek(SeekFrom::Start(range.start))?;
            Ok((meta, range, f))
        })
        .await?;
        let remaining = range.end - range.start;
        let body = stream::try_unfold((file, remaining), |(mut f, left)| async move {
            if left == 0 {
                return Ok(None);
            }
            let n = (left as usize).min(READ_CHUNK);
            let (f, buf) = blocking(move || {
                let mut buf = vec![0u8; n];
                f.read_exact(&mut buf)?;
                Ok((f, buf))
            })
            .await?;
            Ok(Some((Bytes::from(buf), (f, left - n as u64))))
        })
        .boxed();
        Ok(GetResult {
            verified_sha256: None,
            meta,
            range,
            body,
        })
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        let (s, k) = (self.clone(), key.clone());
        blocking(move || s.head_blocking(&k)).await
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        let (s, k) = (self.clone(), key.clone());
        blocking(move || s.delete_blocking(&k)).await
    }

    fn list(&self, opts: ListOptions) -> BoxStream<'static, Result<ListEntry>> {
        if let Err(e) = crate::key::validate_prefix(&opts.prefix) {
            return stream::once(async move { Err(e.with_operation("list")) }).boxed();
        }
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let s = self.clone();
        tokio::task::spawn_blocking(move || {
            // The walk starts in the prefix's own directory, not at the root: listing each
            // of N top-level directories must not read the root N times.
            let dir_key = &opts.prefix[..opts.prefix.rfind('/').map_or(0, |i| i + 1)];
            let segs: Vec<&str> = dir_key.split_terminator('/').collect();
            if segs.first() == Some(&RESERVED_DIR) {
                return;
            }
            match beneath::open_dir(&s.inner.root, &segs) {
                Ok(dir) => {
                    walk(&s, &dir, dir_key, &opts, &tx);
                }
                // No such directory (or a file, or a link, which walks never follow): nothing.
                Err(e)
                    if !segs.is_empty()
                        && (matches!(
                            e.kind(),
                            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                        ) || beneath::is_link(&e)) => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(Error::from(e).with_operation("list")));
                }
            }
        });
        stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) }).boxed()
    }

    async fn copy_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        let (s, f, t) = (self.clone(), from.clone(), to.clone());
        blocking(move || s.copy_blocking(&f, &t, &opts)).await
    }

    async fn rename_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        let (s, f, t) = (self.clone(), from.clone(), to.clone());
        blocking(move || s.rename_blocking(&f, &t, &opts)).await
    }

    async fn health_check(&self) -> Result<()> {
        let s = self.clone();
        blocking(move || {
            let t = s.tmp_path()?;
            write_synced(&t, b"ok", true)?;
            fs::remove_file(&t)?;
            Ok(())
        })
        .await
        .map_err(|e| e.with_operation("health").with_store(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Makes `commit` stop after the sidecar rename, as a kill there would.
        pub(super) static CRASH_BEFORE_DATA: Cell<bool> = const { Cell::new(false) };
    }

    fn key(s: &str) -> Key {
        Key::new(s).unwrap()
    }

    fn put(s: &LocalStore, k: &Key, body: &[u8], ct: &str) -> Result<PutResult> {
        let opts = PutOptions::default().content_type(ct).meta("v", ct);
        s.put_blocking(k, body, &opts)
    }

    /// A kill between the sidecar rename and the data rename leaves the old bytes with their
    /// own metadata; the next write gives the new bytes theirs.
    #[test]
    fn a_crash_between_the_renames_keeps_the_old_object_whole() {
        let root = tempfile::tempdir().unwrap();
        let s = LocalStore::new(root.path()).unwrap();
        let k = key("a/b");
        put(&s, &k, b"old!", "text/old").unwrap();
        CRASH_BEFORE_DATA.set(true);
        put(&s, &k, b"new!", "text/new").unwrap_err();
        CRASH_BEFORE_DATA.set(false);
        let side: Sidecar =
            Sidecar::parse(&fs::read(root.path().join(LocalStore::meta_rel(&k))).unwrap()).unwrap();
        assert_eq!(
            side.current.content_type.as_deref(),
            Some("text/new"),
            "sidecar placed"
        );
        assert_eq!(fs::read(root.path().join("a/b")).unwrap(), b"old!");
        let h = s.head_blocking(&k).unwrap();
        assert_eq!(h.content_type.as_deref(), Some("text/old"));
        assert_eq!(h.metadata.get("v").map(String::as_str), Some("text/old"));

        put(&s, &k, b"new!", "text/new").unwrap();
        let h = s.head_blocking(&k).unwrap();
        assert_eq!(h.content_type.as_deref(), Some("text/new"));
        // The sidecar keeps one earlier record, not a history.
        let side: Sidecar =
            Sidecar::parse(&fs::read(root.path().join(LocalStore::meta_rel(&k))).unwrap()).unwrap();
        assert_eq!(
            side.previous.unwrap().content_type.as_deref(),
            Some("text/old")
        );
    }

    /// Overwriting an object that had metadata with one that has none: its sidecar goes
    /// before the data does, so it never describes the new bytes.
    #[test]
    fn an_object_without_metadata_drops_the_sidecar_first() {
        let root = tempfile::tempdir().unwrap();
        let s = LocalStore::new(root.path()).unwrap();
        let k = key("k");
        put(&s, &k, b"old!", "text/old").unwrap();
        CRASH_BEFORE_DATA.set(true);
        s.put_blocking(&k, b"new!", &PutOptions::default())
            .unwrap_err();
        CRASH_BEFORE_DATA.set(false);
        assert!(!root.path().join(LocalStore::meta_rel(&k)).exists());
        s.put_blocking(&k, b"new!", &PutOptions::default()).unwrap();
        assert_eq!(s.head_blocking(&k).unwrap().content_type, None);
    }

    /// A listing starts in its prefix's directory and keeps S3's raw-prefix semantics there;
    /// a prefix through a file, a link or the reserved directory lists nothing.
    #[tokio::test]
    async fn a_listing_starts_in_its_prefix_directory() {
        use futures::TryStreamExt;
        let root = tempfile::tempdir().unwrap();
        let s = LocalStore::new(root.path()).unwrap();
        for k in ["a/a", "a/b/c", "a/bc", "a/b/d/e", "b", "f"] {
            put(&s, &key(k), b"x", "text/plain").unwrap();
        }
        std::os::unix::fs::symlink(root.path().join("a"), root.path().join("l")).unwrap();
        let keys = |prefix: &str, delimiter: bool| {
            let opts = ListOptions {
                prefix: prefix.into(),
                delimiter,
                ..Default::default()
            };
            let s = s.clone();
            async move {
                s.list(opts)
                    .map_ok(|e| match e {
                        ListEntry::Object(m) => m.key.to_string(),
                        ListEntry::Prefix(p) => p,
                        ListEntry::Unlisted { name, .. } => format!("unlisted {name}"),
                    })
                    .try_collect::<Vec<_>>()
                    .await
                    .unwrap()
            }
        };
        assert_eq!(keys("a/b", false).await, ["a/b/c", "a/b/d/e", "a/bc"]);
        assert_eq!(keys("a/b/", true).await, ["a/b/c", "a/b/d/"]);
        assert_eq!(keys("a/b/d/", false).await, ["a/b/d/e"]);
        // The link is reported where it lies, never listed through.
        assert_eq!(keys("", true).await, ["a/", "b", "f", "unlisted l"]);
        assert_eq!(keys("l", false).await, ["unlisted l"]);
        for nothing in [
            "f/",
            "f/x",
            "l/",
            "l/b",
            "missing/",
            ".cairn/",
            ".cairn/tmp/x",
        ] {
            assert_eq!(
                keys(nothing, false).await,
                Vec::<String>::new(),
                "{nothing}"
            );
        }
    }
}
