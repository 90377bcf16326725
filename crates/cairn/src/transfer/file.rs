//! Files to keys and keys to files.

use super::copy::pipe_parts;
use super::range::{BufSink, Pinned, Sink};
use super::{blocking, check_digest, disk, split, Budget, TransferOptions, Writer};
use crate::backend::local::in_directory;
use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::layer::checksum::reread_on_mismatch;
use crate::ops::reporter::{Action, Item, Outcome, Reporter};
use crate::store::{GetOptions, ObjectMeta, PutResult, Store};
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
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
    let mut item = Item {
        key,
        action: Action::Transfer,
        size: None,
    };
    reporter.on_item_start(&item);
    let progress = |n: u64| reporter.on_progress(key, n);
    let r = upload_inner(store, key, path, opts, None, &opts.budget(), &progress).await;
    match &r {
        Ok((_, size)) => {
            item.size = Some(*size);
            reporter.on_item_done(&item, &Outcome::Transferred { bytes: *size })
        }
        Err(e) => reporter.on_item_done(&item, &Outcome::Failed(e)),
    }
    r.map(|(put, _)| put)
}

/// A file opened for upload: small ones are already read.
enum Opened {
    Small(Bytes),
    Large(Arc<File>, (u64, Option<SystemTime>)),
}

fn changed_error(path: &Path) -> Error {
    Error::new(
        ErrorKind::PreconditionFailed,
        format!("{} changed while it was being uploaded", path.display()),
    )
    .with_hint("upload it again once it is no longer being written")
}

/// Uploads one file; returns the put result and the file's size.
pub(crate) async fn upload_inner(
    store: &dyn Store,
    key: &Key,
    path: &Path,
    opts: &TransferOptions,
    size_hint: Option<u64>,
    budget: &Budget,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(PutResult, u64)> {
    let ctx = |e: Error| {
        e.with_operation("upload")
            .with_store(store)
            .with_key(key.as_str())
    };
    let p = path.to_path_buf();
    let threshold = opts.multipart_threshold;
    // One blocking hop for small files: open, stat, read, and stat again to catch a writer.
    let (opened, size, _permit) = {
        // Small files are held whole: take their budget first when the size is known (trees);
        // a single file has a budget of its own.
        let permit = match size_hint {
            Some(s) if s < threshold => Some(budget.acquire(s).await),
            _ => None,
        };
        let opened = blocking(move || {
            let f = File::open(&p).map_err(|e| io_err(e, "cannot open", &p))?;
            let m = f.metadata().map_err(|e| io_err(e, "cannot stat", &p))?;
            if !m.is_file() {
                return Err(
                    Error::invalid(format!("{} is not a regular file", p.display()))
                        .with_hint("pass a file, or copy a directory recursively"),
                );
            }
            let size = m.len();
            if size >= threshold {
                return Ok((Opened::Large(Arc::new(f), stamp(&m)), size));
            }
            let mut v = vec![0u8; size as usize];
            f.read_exact_at(&mut v, 0)
                .map_err(|e| io_err(e, "cannot read", &p))?;
            let after = f.metadata().map_err(|e| io_err(e, "cannot stat", &p))?;
            if stamp(&after) != stamp(&m) {
                return Err(changed_error(&p));
            }
            Ok((Opened::Small(Bytes::from(v)), size))
        })
        .await
        .map_err(ctx)?;
        (opened.0, opened.1, permit)
    };
    let (file, before) = match opened {
        Opened::Small(data) => {
            let r = store.put_opts(key, data, opts.put.clone()).await?;
            progress(size);
            return Ok((r, size));
        }
        Opened::Large(f, stamp) => (f, stamp),
    };
    let mut writer = Writer::new(
        store,
        key.clone(),
        opts.put.clone(),
        opts.writer_options(Some(size)),
    );
    let part = writer.part_size() as u64;
    let fetch = |r: std::ops::Range<u64>| {
        let f = file.clone();
        let p = path.to_path_buf();
        let len = (r.end - r.start) as usize;
        let mut buf = budget.buffer(len);
        async move {
            let b = blocking(move || {
                f.read_exact_at(buf.as_mut_slice(), r.start)
                    .map_err(|e| io_err(e, "cannot read", &p))?;
                Ok(buf.freeze())
            })
            .await?;
            progress(len as u64);
            Ok(b)
        }
    };
    let r = pipe_parts(
        &mut writer,
        split(size, part),
        budget,
        opts.concurrency,
        fetch,
        None,
    )
    .await;
    let r = match r {
        Ok(()) => {
            let f = file.clone();
            let now = blocking(move || f.metadata().map_err(Error::from)).await?;
            if stamp(&now) == before {
                Ok(())
            } else {
                Err(changed_error(path))
            }
        }
        Err(e) => Err(e),
    };
    match r {
        Ok(()) => Ok((writer.finish().await?, size)),
        Err(e) => {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(key = %key, error = %abort, "abort of failed upload failed");
            }
            Err(ctx(e))
        }
    }
}

/// Writes one range into the file, gathering the network's chunks into `WRITE_BUF`-sized
/// `pwritev` calls (no copy), and, for durable downloads, starting their writeback at once.
struct FileSink {
    file: Arc<File>,
    chunks: Vec<Bytes>,
    pending: usize,
    at: u64,
    writeback: bool,
}

impl FileSink {
    fn new(file: Arc<File>, writeback: bool) -> Self {
        FileSink {
            file,
            chunks: Vec::new(),
            pending: 0,
            at: 0,
            writeback,
        }
    }

    async fn flush(&mut self) -> Result<()> {
        if self.chunks.is_empty() {
            return Ok(());
        }
        let chunks = std::mem::take(&mut self.chunks);
        let (f, at, len) = (self.file.clone(), self.at, self.pending as u64);
        let writeback = self.writeback;
        self.at += len;
        self.pending = 0;
        blocking(move || {
            disk::write_all_at(&f, &chunks, at)?;
            if writeback {
                disk::start_writeback(&f, at..at + len);
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl Sink for FileSink {
    async fn write(&mut self, offset: u64, data: Bytes) -> Result<()> {
        if self.chunks.is_empty() {
            self.at = offset;
        }
        self.pending += data.len();
        self.chunks.push(data);
        if self.pending >= WRITE_BUF {
            self.flush().await?;
        }
        Ok(())
    }
}

/// Hashes the file's `ranges` in order as their downloads finish (`done` names each finished
/// range's index), so the whole-object check overlaps the download instead of following it.
async fn hash_in_order(
    file: Arc<File>,
    ranges: &[std::ops::Range<u64>],
    mut done: tokio::sync::mpsc::UnboundedReceiver<usize>,
) -> Result<Sha256> {
    let mut ready = vec![false; ranges.len()];
    let (mut next, mut hasher) = (0, Sha256::new());
    while next < ranges.len() {
        let i = done.recv().await.ok_or_else(|| {
            Error::new(
                ErrorKind::Unexpected,
                "the download ended before every range",
            )
        })?;
        ready[i] = true;
        let from = next;
        while next < ranges.len() && ready[next] {
            next += 1;
        }
        if next > from {
            let (f, span) = (file.clone(), ranges[from].start..ranges[next - 1].end);
            hasher = blocking(move || {
                disk::hash_range(&f, span, &mut hasher)?;
                Ok(hasher)
            })
            .await?;
        }
    }
    Ok(hasher)
}

/// A download's temp file, removed when the guard drops unless committed. The path sits in a
/// slot shared with the blocking calls that create and rename the file, each under its lock:
/// a future dropped while one of them runs (Ctrl-C) cannot leave a file behind, because the
/// slot is emptied once the file is removed or committed, and nothing is created after.
struct TempFile {
    slot: Arc<Mutex<Option<PathBuf>>>,
}

impl TempFile {
    fn new(path: PathBuf) -> Self {
        TempFile {
            slot: Arc::new(Mutex::new(Some(path))),
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(path) = slot.take() {
            let _ = fs::remove_file(path);
        }
    }
}

fn cancelled() -> Error {
    Error::new(ErrorKind::Unexpected, "the download was cancelled")
}

/// Where a download's temp file goes and how it is made final.
#[derive(Clone)]
struct Commit {
    tmp: PathBuf,
    target: PathBuf,
    dir: PathBuf,
    mtime: SystemTime,
    fsync: bool,
    slot: Arc<Mutex<Option<PathBuf>>>,
}

impl Commit {
    /// Creates the temp file (and the target's directory), unless the download was dropped.
    /// Temp files a killed cairn left in the directory go first (once per directory, here in
    /// the same blocking call rather than a thread hop of its own per file).
    fn create(&self) -> Result<File> {
        fs::create_dir_all(&self.dir)
            .map_err(|e| io_err(e, "cannot create directory", &self.dir))?;
        crate::tmpfile::sweep_once(&self.dir);
        let slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            return Err(cancelled());
        }
        in_directory(&self.tmp, || File::create_new(&self.tmp))
            .map_err(|e| io_err(e, "cannot create", &self.tmp))
    }

    /// Stamps the object's time on the written temp file, fsyncs it if asked, and renames it
    /// over the target (then fsyncs the directory, so the rename is durable too).
    fn run(&self, file: &File) -> Result<()> {
        let _ = file.set_modified(self.mtime);
        if self.fsync {
            file.sync_all()
                .map_err(|e| io_err(e, "cannot sync", &self.tmp))?;
        }
        {
            let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                return Err(cancelled());
            }
            in_directory(&self.tmp, || fs::rename(&self.tmp, &self.target))
                .map_err(|e| io_err(e, "cannot rename into", &self.target))?;
            *slot = None;
        }
        if self.fsync {
            if let Ok(d) = File::open(&self.dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
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
///
/// An object with no recorded SHA-256 (written by another tool) is downloaded unchecked: the
/// reporter hears [`Outcome::Unverified`], and [`TransferOptions::unverified`] on the returned
/// metadata says so to the caller.
pub async fn download_file(
    store: &dyn Store,
    key: &Key,
    path: &Path,
    opts: &TransferOptions,
    reporter: &dyn Reporter,
) -> Result<ObjectMeta> {
    let mut item = Item {
        key,
        action: Action::Transfer,
        size: None,
    };
    reporter.on_item_start(&item);
    let progress = |n: u64| reporter.on_progress(key, n);
    let r = download_checked(store, key, path, opts, opts.durable, &progress).await;
    match &r {
        Ok(m) => {
            item.size = Some(m.size);
            reporter.on_item_done(&item, &super::moved(opts, store, m).outcome())
        }
        Err(e) => reporter.on_item_done(&item, &Outcome::Failed(e)),
    }
    r
}

/// [`download_inner`], again when the bytes did not match the recorded SHA-256: they went to
/// a temp file, not to the caller, so a flip in transit can be read again (the checksum layer
/// re-reads parts itself; a single-put object above its re-read limit streams), by the
/// layer's rule ([`reread_on_mismatch`]).
pub(crate) async fn download_checked(
    store: &dyn Store,
    key: &Key,
    path: &Path,
    opts: &TransferOptions,
    fsync_each: bool,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ObjectMeta> {
    reread_on_mismatch("download", key, || {
        download_inner(store, key, path, opts, fsync_each, progress)
    })
    .await
}

/// Downloads one object; with `fsync_each` false the caller syncs the filesystem afterwards
/// (the rename is still atomic: readers see the old file or the whole new one).
async fn download_inner(
    store: &dyn Store,
    key: &Key,
    path: &Path,
    opts: &TransferOptions,
    fsync_each: bool,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ObjectMeta> {
    let name = path.file_name().ok_or_else(|| {
        Error::invalid(format!("{} does not name a file", path.display()))
            .with_operation("download")
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let first = store.get_opts(key, GetOptions::default()).await?;
    let meta = first.meta.clone();
    let size = meta.size;
    let tmp_path = dir.join(crate::tmpfile::name_for(&name.to_string_lossy()));
    let mut pinned = Pinned::new(store, key, &meta, opts.max_resumes);
    let want = opts.wanted_sha256(&meta);
    // The checksum layer checked the first reply part by part against the recorded part
    // digests: the ranges it serves are checked the same way, so there is nothing to read
    // back unless one of them comes without that check.
    let want_hex = want.map(hex::encode);
    let by_parts = want_hex
        .as_deref()
        .is_some_and(|w| super::range::vouched(&first, w));
    if by_parts {
        pinned.vouch = want_hex;
    }
    let part = opts.part_size.max(1) as u64;
    let single = size < opts.multipart_threshold || size <= part;
    let tmp = TempFile::new(tmp_path.clone());
    let commit = Commit {
        tmp: tmp_path,
        target: path.to_path_buf(),
        dir,
        mtime: SystemTime::from(meta.last_modified),
        fsync: fsync_each,
        slot: tmp.slot.clone(),
    };
    let ctx = |e: Error| e.with_operation("download").with_key(key.as_str());
    if single && size <= WRITE_BUF as u64 {
        // Small: read it whole, then create, write and rename in one blocking call.
        let mut buf = BufSink::new(size as usize);
        pinned
            .read_whole(
                (first.body, first.range.end),
                &mut buf,
                want.as_ref(),
                progress,
            )
            .await?;
        let data = buf.into_bytes();
        blocking(move || {
            // Removes the file on a failed write; dropped after a commit it does nothing.
            let _tmp = tmp;
            let f = commit.create()?;
            (&f).write_all(&data)
                .map_err(|e| io_err(e, "cannot write", &commit.tmp))?;
            commit.run(&f)
        })
        .await
        .map_err(ctx)?;
        return Ok(meta);
    }
    let file = {
        let commit = commit.clone();
        blocking(move || {
            let f = commit.create()?;
            f.set_len(size)
                .map_err(|e| io_err(e, "cannot allocate", &commit.tmp))?;
            Ok(Arc::new(f))
        })
        .await
        .map_err(ctx)?
    };

    if single {
        let mut fs_sink = FileSink::new(file.clone(), fsync_each);
        pinned
            .read_whole(
                (first.body, first.range.end),
                &mut fs_sink,
                want.as_ref(),
                progress,
            )
            .await?;
        fs_sink.flush().await?;
    } else {
        type First = Option<(BoxStream<'static, Result<Bytes>>, u64)>;
        let first_body: Mutex<First> = Mutex::new(Some((first.body, first.range.end)));
        let (pinned, first_body) = (&pinned, &first_body);
        let ranges = split(size, part);
        let (done_tx, done_rx) = tokio::sync::mpsc::unbounded_channel();
        let download = stream::iter(ranges.iter().cloned().enumerate())
            .map(|(i, r)| {
                let (file, done_tx) = (file.clone(), done_tx.clone());
                async move {
                    let first = if r.start == 0 {
                        first_body.lock().unwrap().take()
                    } else {
                        None
                    };
                    let mut sink = FileSink::new(file, fsync_each);
                    pinned.read(r, first, &mut sink, progress).await?;
                    sink.flush().await?;
                    // The hasher may be gone (no check wanted); nothing waits for it then.
                    let _ = done_tx.send(i);
                    Ok::<(), Error>(())
                }
            })
            .buffer_unordered(opts.concurrency.max(1))
            .try_collect::<()>();
        let hash = async {
            match want {
                Some(w) if !by_parts => Ok(Some((
                    hash_in_order(file.clone(), &ranges, done_rx).await?,
                    w,
                ))),
                _ => Ok::<_, Error>(None),
            }
        };
        let ((), hashed) = futures::try_join!(download, hash)?;
        if let Some((h, w)) = hashed {
            check_digest(h, &w, store, key)?;
        }
        if let (true, Some(w)) = (pinned.unvouched.load(Ordering::Relaxed), &want) {
            // A range came without the part check: read the file back after all.
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            (0..ranges.len()).for_each(|i| {
                let _ = tx.send(i);
            });
            drop(tx);
            check_digest(
                hash_in_order(file.clone(), &ranges, rx).await?,
                w,
                store,
                key,
            )?;
        }
    }
    blocking(move || commit.run(&file)).await.map_err(ctx)?;
    drop(tmp);
    Ok(meta)
}
