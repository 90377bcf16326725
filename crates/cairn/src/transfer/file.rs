//! Files to keys and keys to files.

use super::copy::pipe_parts;
use super::range::{HashSink, Pinned, Sink};
use super::{blocking, check_digest, recorded_sha256, split, TransferOptions, Writer};
use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::ops::reporter::{Action, Item, Outcome, Reporter};
use crate::store::{GetOptions, ObjectMeta, PutResult, Store};
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Bytes gathered per `pwrite` when downloading.
const WRITE_BUF: usize = 1024 * 1024;

fn io_err(e: std::io::Error, what: &str, path: &Path) -> Error {
    let base = Error::from(e);
    Error::new(base.kind(), format!("{what} {}", path.display())).with_source(base)
}

/// What decides whether a file changed while it was read.
fn stamp(m: &fs::Metadata) -> (u64, Option<SystemTime>) {
    (m.len(), m.modified().ok())
}

/// Uploads the file at `path` to `key`.
///
/// Files under [`TransferOptions::multipart_threshold`] are one put. Larger files are read with
/// `pread` at each part's offset, several parts at once, and uploaded as a concurrent multipart
/// upload; memory stays within the options' budget. Any failure aborts the upload, so nothing
/// appears at `key`. If the file changes while it is read, the upload is aborted with
/// `PreconditionFailed`. Progress goes to `reporter` as one item.
pub async fn upload_file(
    store: &dyn Store,
    key: &Key,
    path: &Path,
    opts: &TransferOptions,
    reporter: &dyn Reporter,
) -> Result<PutResult> {
    let p = path.to_path_buf();
    let opened = blocking(move || {
        let f = File::open(&p).map_err(|e| io_err(e, "cannot open", &p))?;
        let m = f.metadata().map_err(|e| io_err(e, "cannot stat", &p))?;
        Ok((Arc::new(f), m))
    })
    .await;
    let (file, md) = opened.map_err(|e| e.with_operation("upload").with_store(store).with_key(key.as_str()))?;
    if !md.is_file() {
        return Err(Error::invalid(format!("{} is not a regular file", path.display()))
            .with_operation("upload")
            .with_hint("pass a file, or copy a directory recursively"));
    }
    let size = md.len();
    let item = Item { key, action: Action::Transfer, size: Some(size) };
    reporter.on_item_start(&item);
    let progress = |n: u64| reporter.on_progress(key, n);
    let r = upload_inner(store, key, path, file, stamp(&md), opts, &progress).await;
    match &r {
        Ok(_) => reporter.on_item_done(&item, &Outcome::Transferred { bytes: size }),
        Err(e) => reporter.on_item_done(&item, &Outcome::Failed(e)),
    }
    r
}

async fn upload_inner(
    store: &dyn Store,
    key: &Key,
    path: &Path,
    file: Arc<File>,
    before: (u64, Option<SystemTime>),
    opts: &TransferOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<PutResult> {
    let size = before.0;
    let unchanged = || async {
        let p = path.to_path_buf();
        let now = blocking(move || fs::metadata(&p).map_err(|e| io_err(e, "cannot stat", &p))).await?;
        if stamp(&now) == before {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::PreconditionFailed,
                format!("{} changed while it was being uploaded", path.display()),
            )
            .with_operation("upload")
            .with_store(store)
            .with_key(key.as_str())
            .with_hint("upload it again once it is no longer being written"))
        }
    };
    if size < opts.multipart_threshold {
        let f = file.clone();
        let p = path.to_path_buf();
        let data = blocking(move || {
            let mut v = vec![0u8; size as usize];
            f.read_exact_at(&mut v, 0).map_err(|e| io_err(e, "cannot read", &p))?;
            Ok(Bytes::from(v))
        })
        .await?;
        unchanged().await?;
        let r = store.put_opts(key, data, opts.put.clone()).await?;
        progress(size);
        return Ok(r);
    }
    let budget = opts.budget();
    let mut writer = Writer::new(store, key.clone(), opts.put.clone(), opts.writer_options(Some(size)));
    let part = writer.part_size() as u64;
    let fetch = |r: std::ops::Range<u64>| {
        let f = file.clone();
        let p = path.to_path_buf();
        async move {
            let len = (r.end - r.start) as usize;
            let b = blocking(move || {
                let mut v = vec![0u8; len];
                f.read_exact_at(&mut v, r.start).map_err(|e| io_err(e, "cannot read", &p))?;
                Ok(Bytes::from(v))
            })
            .await?;
            progress(len as u64);
            Ok(b)
        }
    };
    let r = pipe_parts(&mut writer, split(size, part), &budget, opts.concurrency, fetch, None).await;
    let r = match r {
        Ok(()) => unchanged().await,
        Err(e) => Err(e),
    };
    match r {
        Ok(()) => writer.finish().await,
        Err(e) => {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(key = %key, error = %abort, "abort of failed upload failed");
            }
            Err(e.with_operation("upload").with_store(store).with_key(key.as_str()))
        }
    }
}

/// Writes one range into the file with `pwrite`, gathering small chunks first.
struct FileSink {
    file: Arc<File>,
    buf: Vec<u8>,
    at: u64,
}

impl FileSink {
    fn new(file: Arc<File>) -> Self {
        FileSink { file, buf: Vec::new(), at: 0 }
    }

    async fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let (f, at) = (self.file.clone(), self.at);
        self.at += buf.len() as u64;
        blocking(move || f.write_all_at(&buf, at).map_err(Error::from)).await
    }
}

#[async_trait]
impl Sink for FileSink {
    async fn write(&mut self, offset: u64, data: Bytes) -> Result<()> {
        if self.buf.is_empty() {
            self.at = offset;
            if data.len() >= WRITE_BUF {
                let f = self.file.clone();
                return blocking(move || f.write_all_at(&data, offset).map_err(Error::from)).await;
            }
            self.buf.reserve(WRITE_BUF);
        }
        self.buf.extend_from_slice(&data);
        if self.buf.len() >= WRITE_BUF {
            self.flush().await?;
        }
        Ok(())
    }
}

/// A temp file next to the target, removed unless committed.
struct TempFile {
    path: PathBuf,
    committed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Downloads `key` to the file at `path`, replacing it atomically.
///
/// The first GET fetches the object and its metadata. Objects of at least
/// [`TransferOptions::multipart_threshold`] bytes continue as parallel ranged GETs, each pinned
/// to that response's ETag (a changed object fails with `PreconditionFailed` rather than mix
/// versions) and resumed at its offset if its body breaks off. Bytes go straight into a
/// preallocated temp file in the target's directory with `pwrite`; then the SHA-256 is checked
/// if the object carries [`super::SHA256_META`] (`Integrity` on mismatch), and the file is
/// fsynced, given the object's last-modified time, and renamed into place. On any failure the
/// temp file is removed and an existing target is left untouched. Returns the object's metadata.
pub async fn download_file(
    store: &dyn Store,
    key: &Key,
    path: &Path,
    opts: &TransferOptions,
    reporter: &dyn Reporter,
) -> Result<ObjectMeta> {
    let mut item = Item { key, action: Action::Transfer, size: None };
    reporter.on_item_start(&item);
    let progress = |n: u64| reporter.on_progress(key, n);
    let r = download_inner(store, key, path, opts, &progress).await;
    match &r {
        Ok(m) => {
            item.size = Some(m.size);
            reporter.on_item_done(&item, &Outcome::Transferred { bytes: m.size })
        }
        Err(e) => reporter.on_item_done(&item, &Outcome::Failed(e)),
    }
    r
}

async fn download_inner(
    store: &dyn Store,
    key: &Key,
    path: &Path,
    opts: &TransferOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ObjectMeta> {
    let name = path.file_name().ok_or_else(|| {
        Error::invalid(format!("{} does not name a file", path.display())).with_operation("download")
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let first = store.get_opts(key, GetOptions::default()).await?;
    let meta = first.meta.clone();
    let size = meta.size;
    let tmp_path = dir.join(format!(".{}.{:016x}.cairn-tmp", name.to_string_lossy(), rand::random::<u64>()));
    let mut tmp = TempFile { path: tmp_path.clone(), committed: false };
    let file = {
        let (dir, tmp_path) = (dir.clone(), tmp_path.clone());
        blocking(move || {
            fs::create_dir_all(&dir).map_err(|e| io_err(e, "cannot create directory", &dir))?;
            let f = File::create_new(&tmp_path).map_err(|e| io_err(e, "cannot create", &tmp_path))?;
            f.set_len(size).map_err(|e| io_err(e, "cannot allocate", &tmp_path))?;
            Ok(Arc::new(f))
        })
        .await
        .map_err(|e| e.with_operation("download").with_key(key.as_str()))?
    };
    let pinned = Pinned { store, key, etag: meta.etag.clone(), size, max_resumes: opts.max_resumes };
    let want = if opts.verify { recorded_sha256(&meta.metadata) } else { None };
    let part = opts.part_size.max(1) as u64;

    if size < opts.multipart_threshold || size <= part {
        let mut fs_sink = FileSink::new(file.clone());
        let mut sink = HashSink { inner: &mut fs_sink, hasher: want.map(|_| Sha256::new()) };
        pinned.read(0..size, Some((first.body, first.range.end)), &mut sink, progress).await?;
        let hasher = sink.hasher.take();
        fs_sink.flush().await?;
        if let (Some(w), Some(h)) = (&want, hasher) {
            check_digest(h, w, store, key)?;
        }
    } else {
        type First = Option<(BoxStream<'static, Result<Bytes>>, u64)>;
        let first_body: Mutex<First> = Mutex::new(Some((first.body, first.range.end)));
        let (pinned, first_body) = (&pinned, &first_body);
        stream::iter(split(size, part))
            .map(|r| {
                let file = file.clone();
                async move {
                    let first = if r.start == 0 { first_body.lock().unwrap().take() } else { None };
                    let mut sink = FileSink::new(file);
                    pinned.read(r, first, &mut sink, progress).await?;
                    sink.flush().await
                }
            })
            .buffer_unordered(opts.concurrency.max(1))
            .try_collect::<()>()
            .await?;
        if let Some(w) = want {
            let f = file.clone();
            let h = blocking(move || {
                let mut h = Sha256::new();
                let mut buf = vec![0u8; WRITE_BUF];
                let mut at = 0u64;
                while at < size {
                    let n = ((size - at) as usize).min(buf.len());
                    f.read_exact_at(&mut buf[..n], at)?;
                    h.update(&buf[..n]);
                    at += n as u64;
                }
                Ok(h)
            })
            .await?;
            check_digest(h, &w, store, key)?;
        }
    }
    let mtime = SystemTime::from(meta.last_modified);
    let target = path.to_path_buf();
    blocking(move || {
        file.sync_all().map_err(|e| io_err(e, "cannot sync", &tmp_path))?;
        let _ = file.set_modified(mtime);
        fs::rename(&tmp_path, &target).map_err(|e| io_err(e, "cannot rename into", &target))?;
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })
    .await
    .map_err(|e| e.with_operation("download").with_key(key.as_str()))?;
    tmp.committed = true;
    Ok(meta)
}
