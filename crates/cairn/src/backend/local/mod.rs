//! The local filesystem store, cairn's embedded default.
//!
//! Layout under the root: objects are plain files at their key's path, so the tree is readable
//! without cairn. Metadata lives in `.cairn/meta/<key>.json`, temp files in `.cairn/tmp/`; keys
//! under `.cairn/` are reserved. Writes are atomic: temp file, fsync, rename, fsync directory.
//! Create-only puts use `link(2)`, which fails if the target exists, so they hold across processes.

mod files;
mod sidecar;
mod upload;
mod walk;

pub(crate) use files::in_directory;
use files::{etag, mtime_ns, prune_empty_dirs, sync_dir, write_synced};
use sidecar::Sidecar;
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
        Ok(LocalStore {
            inner: Arc::new(Inner {
                root,
                update_lock: Default::default(),
            }),
        })
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

    fn tmp_path(&self) -> Result<PathBuf> {
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

    fn read_sidecar(&self, key: &Key, data: &fs::Metadata) -> Sidecar {
        let fresh = || Sidecar {
            size: data.len(),
            mtime_ns: mtime_ns(data),
            ..Default::default()
        };
        let Ok(bytes) = fs::read(self.meta_path(key)) else {
            return fresh();
        };
        match serde_json::from_slice::<Sidecar>(&bytes) {
            // A sidecar for another size is stale (torn write): ignore it. Same size but a new
            // mtime is kept, so an in-place change of bytes shows up as corruption, not as an
            // object without checksum.
            Ok(s) if s.size == data.len() => s,
            _ => fresh(),
        }
    }

    fn object_meta(&self, key: &Key, data: &fs::Metadata, full: bool) -> ObjectMeta {
        let side = if full {
            self.read_sidecar(key, data)
        } else {
            Sidecar::default()
        };
        let modified = data
            .modified()
            .map(DateTime::<Utc>::from)
            .unwrap_or_else(|_| Utc::now());
        let mut m =
            ObjectMeta::new(key.clone(), data.len(), modified).with_stored_metadata(side.metadata);
        m.etag = Some(etag(data));
        m.content_type = side.content_type;
        m
    }

    fn head_blocking(&self, key: &Key) -> Result<ObjectMeta> {
        let path = self.path_of(key, "head")?;
        let m = fs::metadata(&path).map_err(|e| self.err(e, "head", key))?;
        if !m.is_file() {
            return Err(self.err(
                Error::new(ErrorKind::NotFound, "it is a directory"),
                "head",
                key,
            ));
        }
        Ok(self.object_meta(key, &m, true))
    }

    /// Moves a finished temp file into place with its sidecar, honouring the put mode.
    fn commit(&self, tmp: &Path, key: &Key, opts: &PutOptions) -> Result<PutResult> {
        let dest = self.path_of(key, "put")?;
        let parent = dest.parent().expect("keys have a parent under root");
        fs::create_dir_all(parent).map_err(|e| self.err(e, "put", key))?;
        let m = fs::metadata(tmp)?;
        let side = Sidecar {
            size: m.len(),
            mtime_ns: mtime_ns(&m),
            content_type: opts.content_type.clone(),
            metadata: opts.metadata.clone(),
        };
        let meta_dest = self.meta_path(key);
        let has_meta = side.content_type.is_some() || !side.metadata.is_empty();
        let meta_tmp = if has_meta {
            let t = self.tmp_path()?;
            write_synced(&t, &serde_json::to_vec(&side).expect("sidecar serializes"))?;
            Some(t)
        } else {
            None
        };
        // Every commit renames out of the one temp directory: take its namespace lock.
        let placed = in_directory(tmp, || match &opts.mode {
            PutMode::Create => match fs::hard_link(tmp, &dest) {
                Ok(()) => fs::remove_file(tmp).map_err(Error::from),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    Err(Error::new(ErrorKind::AlreadyExists, "the key exists"))
                }
                Err(e) => Err(e.into()),
            },
            PutMode::Update(_) => {
                let _g = self.inner.update_lock.lock().unwrap();
                let current = fs::metadata(&dest).ok().map(|m| etag(&m));
                check_mode(&opts.mode, current.as_deref())
                    .and_then(|()| fs::rename(tmp, &dest).map_err(Error::from))
            }
            PutMode::Overwrite => fs::rename(tmp, &dest).map_err(Error::from),
        });
        if let Err(e) = placed {
            let _ = fs::remove_file(tmp);
            if let Some(t) = meta_tmp {
                let _ = fs::remove_file(t);
            }
            return Err(self.err(e, "put", key));
        }
        match meta_tmp {
            Some(t) => {
                fs::create_dir_all(meta_dest.parent().unwrap())?;
                fs::rename(&t, &meta_dest)?;
            }
            None => match fs::remove_file(&meta_dest) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            },
        }
        sync_dir(parent);
        Ok(PutResult {
            etag: Some(etag(&m)),
            version: None,
        })
    }

    fn put_blocking(&self, key: &Key, data: &[u8], opts: &PutOptions) -> Result<PutResult> {
        self.path_of(key, "put")?;
        let tmp = self.tmp_path().map_err(|e| self.err(e, "put", key))?;
        write_synced(&tmp, data).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            self.err(e, "put", key)
        })?;
        self.commit(&tmp, key, opts)
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
            let file = Arc::new(in_directory(&tmp, || fs::File::create(&tmp))?);
            Ok(Box::new(LocalUpload {
                store: s,
                key: k,
                opts,
                tmp,
                file,
                offset: 0,
            }) as Box<dyn MultipartUpload>)
        })
        .await
    }

    async fn get_opts(&self, key: &Key, opts: GetOptions) -> Result<GetResult> {
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
        Ok(GetResult { meta, range, body })
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
        blocking(move || {
            let src = s.path_of(&f, "copy")?;
            let meta = s.head_blocking(&f).map_err(|e| e.with_operation("copy"))?;
            let tmp = s.tmp_path()?;
            fs::copy(&src, &tmp).map_err(|e| s.err(e, "copy", &f))?;
            fs::File::open(&tmp)?.sync_all()?;
            let put = PutOptions {
                mode: if opts.if_not_exists {
                    PutMode::Create
                } else {
                    PutMode::Overwrite
                },
                content_type: meta.content_type,
                metadata: meta.metadata,
                ..Default::default()
            };
            s.commit(&tmp, &t, &put)
                .map(|_| ())
                .map_err(|e| e.with_operation("copy"))
        })
        .await
    }

    async fn health_check(&self) -> Result<()> {
        let s = self.clone();
        blocking(move || {
            let t = s.tmp_path()?;
            write_synced(&t, b"ok")?;
            fs::remove_file(&t)?;
            Ok(())
        })
        .await
        .map_err(|e| e.with_operation("health").with_store(self))
    }
}
