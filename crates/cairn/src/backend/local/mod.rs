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

mod files;
mod sidecar;
pub(crate) mod upload;
mod walk;

pub(crate) use files::in_directory;
use files::{etag, prune_empty_dirs, write_synced};
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

    /// Maps a key to its file, refusing reserved keys and any path through a symlink.
    fn path_of(&self, key: &Key, op: &'static str) -> Result<PathBuf> {
        if Self::reserved(key) {
            return Err(
                Error::invalid("keys under `.cairn/` are reserved by the local store")
                    .with_operation(op)
                    .with_store(self)
                    .with_key(key.as_str()),
            );
        }
        let path = self.inner.root.join(key.as_str());
        // Keys have no `..`, so only a symlink could lead outside the root: refuse any.
        let mut p = self.inner.root.clone();
        for seg in key.as_str().split('/') {
            p.push(seg);
            match fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(Error::new(
                        ErrorKind::PermissionDenied,
                        format!(
                            "{} is a symlink; the local store never follows links",
                            p.display()
                        ),
                    )
                    .with_operation(op)
                    .with_store(self)
                    .with_key(key.as_str()));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        Ok(path)
    }

    fn meta_path(&self, key: &Key) -> PathBuf {
        self.inner
            .root
            .join(RESERVED_DIR)
            .join("meta")
            .join(format!("{}.json", key.as_str()))
    }

    fn tmp_path(&self) -> std::io::Result<PathBuf> {
        let dir = self.inner.root.join(RESERVED_DIR).join("tmp");
        fs::create_dir_all(&dir)?;
        Ok(dir.join(format!("{:016x}.tmp", rand::random::<u64>())))
    }

    fn err(&self, e: impl Into<Error>, op: &'static str, key: &Key) -> Error {
        e.into()
            .with_operation(op)
            .with_store(self)
            .with_key(key.as_str())
    }

    /// The sidecar record that describes the data file `data` of `key`, if any.
    fn record(&self, key: &Key, data: &fs::Metadata) -> Option<Record> {
        sidecar::read(&self.meta_path(key), data)
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

    /// The data file of `key` and its metadata; NotFound for a missing file or a directory.
    fn file_of(&self, key: &Key, op: &'static str) -> Result<(PathBuf, fs::Metadata)> {
        let path = self.path_of(key, op)?;
        let m = fs::metadata(&path).map_err(|e| self.err(e, op, key))?;
        if !m.is_file() {
            return Err(self.err(
                Error::new(ErrorKind::NotFound, "it is a directory"),
                op,
                key,
            ));
        }
        Ok((path, m))
    }

    fn head_blocking(&self, key: &Key) -> Result<ObjectMeta> {
        let (_, m) = self.file_of(key, "head")?;
        Ok(self.object_meta(key, &m, true))
    }

    /// Writes a sidecar for `key` into a temp file: `current`, plus the record of the data file
    /// now at `dest` (so that file keeps its metadata until the data rename replaces it).
    fn sidecar_temp(&self, key: &Key, dest: &Path, current: Record) -> std::io::Result<PathBuf> {
        let previous = fs::metadata(dest).ok().and_then(|d| self.record(key, &d));
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
        let dest = self.path_of(key, "put")?;
        let parent = dest.parent().expect("keys have a parent under root");
        let meta_dest = self.meta_path(key);
        let meta_parent = meta_dest.parent().expect("sidecars have a parent");
        // The new file's identity, which its rename keeps: the sidecar names it.
        let m = fs::metadata(tmp)?;
        let current = Record::new(&m, opts.content_type.clone(), opts.metadata.clone());
        let mut dirty = files::create_dirs(parent)?;
        dirty.push(parent.to_path_buf());
        if !current.is_empty() {
            dirty.extend(files::create_dirs(meta_parent)?);
            *side_tmp = Some(self.sidecar_temp(key, &dest, current)?);
        }
        // Every commit renames out of the one temp directory: take its namespace lock.
        let sidecar_changed = in_directory(tmp, || -> Result<bool> {
            let _update = matches!(opts.mode, PutMode::Update(_)).then(|| {
                self.inner
                    .update_lock
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
            });
            match &opts.mode {
                PutMode::Create if fs::symlink_metadata(&dest).is_ok() => {
                    return Err(Error::new(ErrorKind::AlreadyExists, "the key exists"));
                }
                PutMode::Update(_) => {
                    let now = fs::metadata(&dest).ok().map(|m| etag(&m));
                    check_mode(&opts.mode, now.as_deref())?;
                }
                _ => {}
            }
            // Sidecar first, data second (see `sidecar`).
            let changed = match side_tmp.take() {
                Some(t) => {
                    files::into_dir(meta_parent, || fs::rename(&t, &meta_dest))?;
                    true
                }
                None => files::remove_if_exists(&meta_dest)?,
            };
            #[cfg(test)]
            if tests::CRASH_BEFORE_DATA.get() {
                return Err(Error::new(ErrorKind::Unexpected, "simulated crash"));
            }
            match &opts.mode {
                PutMode::Create => match files::into_dir(parent, || fs::hard_link(tmp, &dest)) {
                    Ok(()) => fs::remove_file(tmp)?,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        return Err(Error::new(ErrorKind::AlreadyExists, "the key exists"));
                    }
                    Err(e) => return Err(e.into()),
                },
                _ => files::into_dir(parent, || fs::rename(tmp, &dest))?,
            }
            Ok(changed)
        })?;
        if sidecar_changed {
            dirty.push(meta_parent.to_path_buf());
        }
        if self.inner.durable {
            files::sync_dirs(dirty);
        }
        Ok(PutResult {
            etag: Some(etag(&m)),
            version: None,
        })
    }

    fn put_blocking(&self, key: &Key, data: &[u8], opts: &PutOptions) -> Result<PutResult> {
        self.path_of(key, "put")?;
        let tmp = self.tmp_path().map_err(|e| self.err(e, "put", key))?;
        files::write_object(&tmp, data, self.inner.durable).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            self.err(e, "put", key)
        })?;
        self.commit(&tmp, key, opts)
    }

    /// Copies `from` into a new temp file and commits it as `to`.
    fn copy_blocking(&self, from: &Key, to: &Key, opts: &CopyOptions) -> Result<()> {
        let (src, _) = self.file_of(from, "copy")?;
        let mut file = fs::File::open(&src).map_err(|e| self.err(e, "copy", from))?;
        // Bytes and record from one open file, so a concurrent commit cannot mix them.
        let m = file.metadata()?;
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
        let (src, m) = self.file_of(from, "rename")?;
        let dest = self.path_of(to, "rename")?;
        if from == to {
            return Ok(());
        }
        let parent = dest.parent().expect("keys have a parent under root");
        let (meta_from, meta_to) = (self.meta_path(from), self.meta_path(to));
        let meta_parent = meta_to.parent().expect("sidecars have a parent");
        let mut dirty = files::create_dirs(parent).map_err(|e| err(e.into(), to))?;
        dirty.extend([parent.to_path_buf(), src.parent().unwrap().to_path_buf()]);
        // The record moves with the file: a rename keeps inode, mtime and size.
        let mut side_tmp = match self.record(from, &m).filter(|r| !r.is_empty()) {
            Some(rec) => {
                dirty.extend(files::create_dirs(meta_parent).map_err(|e| err(e.into(), to))?);
                let t = self.sidecar_temp(to, &dest, rec);
                Some(t.map_err(|e| err(e.into(), to))?)
            }
            None => None,
        };
        let lock_entry = self.inner.root.join(RESERVED_DIR).join("tmp").join("x");
        let moved = in_directory(&lock_entry, || -> Result<()> {
            if opts.if_not_exists && fs::symlink_metadata(&dest).is_ok() {
                return Err(Error::new(ErrorKind::AlreadyExists, "the key exists"));
            }
            match side_tmp.take() {
                Some(t) => files::into_dir(meta_parent, || fs::rename(&t, &meta_to))?,
                None => {
                    files::remove_if_exists(&meta_to)?;
                }
            }
            if opts.if_not_exists {
                // link(2) fails atomically if `to` exists; `from` goes after.
                match files::into_dir(parent, || fs::hard_link(&src, &dest)) {
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        return Err(Error::new(ErrorKind::AlreadyExists, "the key exists"));
                    }
                    r => r?,
                }
                fs::remove_file(&src)?;
            } else {
                files::into_dir(parent, || fs::rename(&src, &dest))?;
            }
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
        dirty.push(meta_parent.to_path_buf());
        // `from`'s sidecar describes a file now under `to`: unused, removed.
        if files::remove_if_exists(&meta_from).unwrap_or(false) {
            dirty.extend(meta_from.parent().map(Path::to_path_buf));
            prune_empty_dirs(&meta_from, &self.inner.root.join(RESERVED_DIR).join("meta"));
        }
        prune_empty_dirs(&src, &self.inner.root);
        if self.inner.durable {
            files::sync_dirs(dirty);
        }
        Ok(())
    }

    fn delete_blocking(&self, key: &Key) -> Result<()> {
        let path = self.path_of(key, "delete")?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.err(e, "delete", key)),
        }
        let meta = self.meta_path(key);
        if fs::remove_file(&meta).is_ok() {
            prune_empty_dirs(&meta, &self.inner.root.join(RESERVED_DIR).join("meta"));
        }
        // Prune now-empty parents so directories mirror S3's implicit prefixes.
        prune_empty_dirs(&path, &self.inner.root);
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
            s.path_of(&k, "put")?;
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
            let path = s.path_of(&k, "get")?;
            let mut f = fs::File::open(&path).map_err(|e| s.err(e, "get", &k))?;
            let m = f.metadata()?;
            if !m.is_file() {
                return Err(s.err(
                    Error::new(ErrorKind::NotFound, "it is a directory"),
                    "get",
                    &k,
                ));
            }
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
            let root = s.inner.root.clone();
            walk(&s, &root, "", &opts, &tx);
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
        let side: Sidecar = Sidecar::parse(&fs::read(s.meta_path(&k)).unwrap()).unwrap();
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
        let side: Sidecar = Sidecar::parse(&fs::read(s.meta_path(&k)).unwrap()).unwrap();
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
        assert!(!s.meta_path(&k).exists());
        s.put_blocking(&k, b"new!", &PutOptions::default()).unwrap();
        assert_eq!(s.head_blocking(&k).unwrap().content_type, None);
    }
}
