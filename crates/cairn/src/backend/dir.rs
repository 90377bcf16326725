//! A plain directory: the user's own files, as a [`Store`] for sync and copies.
//!
//! A path given to the CLI (`./restore`, `/data/in`) is the user's tree, never a cairn store:
//! - no layers: a file holds exactly the logical bytes (decompressed, decrypted);
//! - no sidecars and no `.cairn/` folder: metadata and content types are not kept
//!   ([`Capabilities::metadata`] is false), as cp(1), rsync and the aws cli do;
//! - writes are still atomic: a hidden temp file next to the target (`.NAME.PID-XXXX.cairn-tmp`,
//!   the download engine's naming), fsynced, renamed over it, the directory fsynced. Listings
//!   never show such temp files, and a dropped upload removes its own; the first write into a
//!   directory sweeps the ones a killed cairn left there ([`crate::tmpfile`]).
//!
//! Reads and listings go to a [`LocalStore`] over the same root (which finds no sidecars in a
//! plain tree); only writes differ. `file://` and `local://` URLs stay cairn stores.

use super::local::upload::PartFile;
use super::local::{in_directory, LocalStore};
use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::store::*;
use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use std::fmt;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The suffix of the temp files writes use; listings skip `.*.cairn-tmp` names.
use crate::tmpfile::SUFFIX as TMP_SUFFIX;

/// A plain directory of the user's files (see the module docs).
#[derive(Debug, Clone)]
pub struct PlainDirStore {
    files: LocalStore,
    fsync: bool,
}

impl PlainDirStore {
    /// A store over the directory `root`, created if missing.
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        Ok(PlainDirStore {
            files: LocalStore::new(root)?,
            fsync: true,
        })
    }

    /// Whether writes are fsynced before their rename (default true).
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        self.files.root()
    }

    fn target(&self, key: &Key, op: &'static str) -> Result<PathBuf> {
        if is_temp_name(key.as_str()) {
            return Err(Error::invalid(format!(
                "names ending in {TMP_SUFFIX} after a leading dot are cairn's temp files"
            ))
            .with_operation(op)
            .with_store(self)
            .with_key(key.as_str()));
        }
        // A key cannot climb out of the root (no `..`, no absolute keys: see `Key`); a symlink
        // on the way is refused by the local store's own path check on reads.
        Ok(self.root().join(key.as_str()))
    }

    fn err(&self, e: impl Into<Error>, op: &'static str, key: &Key) -> Error {
        e.into()
            .with_operation(op)
            .with_store(self)
            .with_key(key.as_str())
    }

    /// A fresh temp file beside `target` (its directory created first).
    fn temp_for(target: &Path) -> std::io::Result<(PathBuf, fs::File)> {
        let dir = target.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Temp files a killed cairn left in this directory go first (once per directory).
        crate::tmpfile::sweep_once(dir);
        let tmp = dir.join(crate::tmpfile::name_for(&name));
        let f = in_directory(&tmp, || fs::File::create_new(&tmp))?;
        Ok((tmp, f))
    }

    /// Makes a written temp file the target: fsync, then rename (create-only: link, which
    /// fails if the target exists), then fsync the directory.
    fn commit(&self, tmp: &Path, file: &fs::File, target: &Path, mode: &PutMode) -> Result<()> {
        let cleanup = |e: std::io::Error| {
            let _ = fs::remove_file(tmp);
            e
        };
        if self.fsync {
            file.sync_all().map_err(cleanup)?;
        }
        match mode {
            PutMode::Create => {
                let r = in_directory(tmp, || fs::hard_link(tmp, target));
                let _ = fs::remove_file(tmp);
                r.map_err(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        Error::new(ErrorKind::AlreadyExists, "the file exists")
                    } else {
                        e.into()
                    }
                })?;
            }
            _ => in_directory(tmp, || fs::rename(tmp, target)).map_err(cleanup)?,
        }
        if self.fsync {
            if let Some(Ok(d)) = target.parent().map(fs::File::open) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    fn check_mode(&self, key: &Key, mode: &PutMode) -> Result<()> {
        if let PutMode::Update(_) = mode {
            return Err(Error::unsupported(
                "a plain directory cannot check an ETag atomically before a write",
            )
            .with_operation("put")
            .with_store(self)
            .with_key(key.as_str())
            .with_hint("write to a file:// or local:// store for conditional updates"));
        }
        Ok(())
    }

    fn put_blocking(&self, key: &Key, data: &[u8], mode: &PutMode) -> Result<PutResult> {
        let target = self.target(key, "put")?;
        let (tmp, file) = Self::temp_for(&target).map_err(|e| self.err(e, "put", key))?;
        if let Err(e) = file.write_all_at(data, 0) {
            let _ = fs::remove_file(&tmp);
            return Err(self.err(e, "put", key));
        }
        self.commit(&tmp, &file, &target, mode)
            .map_err(|e| self.err(e, "put", key))?;
        Ok(PutResult::default())
    }
}

/// Whether a key's last segment is one of our temp files.
fn is_temp_name(key: &str) -> bool {
    crate::tmpfile::is_temp(key.rsplit('/').next().unwrap_or(key))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::new(ErrorKind::Unexpected, format!("blocking task failed: {e}")))?
}

impl fmt::Display for PlainDirStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.root().display())
    }
}

/// A multipart write into a temp file beside the target; removed unless completed.
#[derive(Debug)]
struct DirUpload {
    store: PlainDirStore,
    key: Key,
    mode: PutMode,
    target: PathBuf,
    part: PartFile,
}

#[async_trait]
impl MultipartUpload for DirUpload {
    fn put_part(&mut self, data: Bytes) -> BoxFuture<'static, Result<()>> {
        self.part.put_part(data)
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let (store, key, mode, tmp, file, target) = (
            self.store.clone(),
            self.key.clone(),
            self.mode.clone(),
            self.part.tmp.clone(),
            self.part.file.clone(),
            self.target.clone(),
        );
        self.part.release();
        blocking(move || {
            store
                .commit(&tmp, &file, &target, &mode)
                .map_err(|e| store.err(e, "put", &key))
        })
        .await?;
        Ok(PutResult::default())
    }

    async fn abort(&mut self) -> Result<()> {
        self.part
            .remove()
            .map_err(|e| self.store.err(e, "put", &self.key))
    }
}

#[async_trait]
impl Store for PlainDirStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            conditional_update: false,
            conditional_update_multipart: false,
            metadata: false,
            ..self.files.capabilities()
        }
    }

    async fn put_opts(&self, key: &Key, data: Bytes, opts: PutOptions) -> Result<PutResult> {
        self.check_mode(key, &opts.mode)?;
        let s = self.clone();
        let key = key.clone();
        blocking(move || s.put_blocking(&key, &data, &opts.mode)).await
    }

    async fn put_multipart_opts(
        &self,
        key: &Key,
        opts: PutOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.check_mode(key, &opts.mode)?;
        let target = self.target(key, "put")?;
        let t = target.clone();
        let (tmp, file) = blocking(move || Self::temp_for(&t).map_err(Error::from))
            .await
            .map_err(|e| self.err(e, "put", key))?;
        Ok(Box::new(DirUpload {
            store: self.clone(),
            key: key.clone(),
            mode: opts.mode,
            target,
            part: PartFile::new(tmp, file),
        }))
    }

    async fn get_opts(&self, key: &Key, opts: GetOptions) -> Result<GetResult> {
        if opts.version.is_some() {
            return Err(
                crate::server_side::unsupported(self, "reading an old version")
                    .with_operation("get")
                    .with_key(key.as_str()),
            );
        }
        self.files.get_opts(key, opts).await
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        self.files.head(key).await
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        self.files.delete(key).await
    }

    fn list(&self, opts: ListOptions) -> BoxStream<'static, Result<ListEntry>> {
        self.files
            .list(opts)
            .filter(|e| {
                let temp = matches!(e, Ok(ListEntry::Object(m)) if is_temp_name(m.key.as_str()));
                futures::future::ready(!temp)
            })
            .boxed()
    }

    async fn copy_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        let src = self.target(from, "copy")?;
        let target = self.target(to, "copy")?;
        let mode = if opts.if_not_exists {
            PutMode::Create
        } else {
            PutMode::Overwrite
        };
        let s = self.clone();
        let to = to.clone();
        blocking(move || {
            let (tmp, file) = Self::temp_for(&target).map_err(|e| s.err(e, "copy", &to))?;
            if let Err(e) = fs::copy(&src, &tmp) {
                let _ = fs::remove_file(&tmp);
                return Err(s.err(e, "copy", &to));
            }
            s.commit(&tmp, &file, &target, &mode)
                .map_err(|e| s.err(e, "copy", &to))
        })
        .await
    }

    async fn health_check(&self) -> Result<()> {
        self.files.health_check().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreExt;

    #[tokio::test]
    async fn writes_leave_only_the_users_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = PlainDirStore::new(dir.path()).unwrap();
        let k = Key::new("a/b.json").unwrap();
        s.put_opts(
            &k,
            Bytes::from_static(b"{}"),
            PutOptions::default().meta("x", "y"),
        )
        .await
        .unwrap();
        let mut up = s
            .put_multipart_opts(&Key::new("big").unwrap(), PutOptions::default())
            .await
            .unwrap();
        up.put_part(Bytes::from_static(b"one ")).await.unwrap();
        up.put_part(Bytes::from_static(b"two")).await.unwrap();
        up.complete().await.unwrap();
        // A dropped upload removes its temp file.
        let up = s
            .put_multipart_opts(&Key::new("gone").unwrap(), PutOptions::default())
            .await
            .unwrap();
        drop(up);
        let mut names: Vec<String> = walkdir(dir.path());
        names.sort();
        assert_eq!(names, ["a/b.json", "big"]);
        assert_eq!(fs::read(dir.path().join("big")).unwrap(), b"one two");
        assert_eq!(s.get(&k).await.unwrap(), Bytes::from_static(b"{}"));
        let create = PutOptions::default().mode(PutMode::Create);
        let e = s
            .put_opts(&k, Bytes::from_static(b"x"), create)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert_eq!(fs::read(dir.path().join("a/b.json")).unwrap(), b"{}");
    }

    #[tokio::test]
    async fn listings_hide_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), b"1").unwrap();
        fs::write(dir.path().join(".f.0123456789abcdef.cairn-tmp"), b"partial").unwrap();
        let s = PlainDirStore::new(dir.path()).unwrap();
        let keys: Vec<String> = s
            .list_objects("")
            .map(|m| m.unwrap().key.to_string())
            .collect()
            .await;
        assert_eq!(keys, ["f"]);
    }

    fn walkdir(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(root).unwrap();
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        out
    }
}
