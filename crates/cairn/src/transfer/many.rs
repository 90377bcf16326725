//! Many objects at once: bounded concurrency, streamed listings, per-item failures.

use super::copy::copy_one;
use super::file::{download_checked, upload_inner};
use super::{blocking, Moved, TransferOptions};
use crate::backend::local::LocalStore;
use crate::error::{Error, Result};
use crate::key::{validate_prefix, Key};
use crate::ops::reporter::{Action, Item, Outcome, Reporter, Summary, Totals};
use crate::store::{Store, StoreExt};
use futures::stream::{BoxStream, StreamExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// One object to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyItem {
    /// The key in the source store.
    pub src: Key,
    /// The key in the destination store.
    pub dst: Key,
    /// Its size, if known (from a listing); lets small objects skip a round trip.
    pub size: Option<u64>,
}

/// Copies every item of `items` from `src` to `dst`, up to
/// [`TransferOptions::object_concurrency`] at once, within one memory budget.
///
/// `items` is consumed as it is produced, so a listing of any length streams through. A
/// failed item (or a listing error, recorded with an empty key) is counted in the summary
/// with its reason; the rest go on. Every item is reported to `reporter` under its
/// destination key.
pub async fn copy_many(
    src: &dyn Store,
    dst: &dyn Store,
    items: BoxStream<'_, Result<CopyItem>>,
    opts: &TransferOptions,
    reporter: &dyn Reporter,
) -> Summary {
    let batch = Batch::start(reporter);
    let (budget, batch_ref) = (&opts.budget(), &batch);
    batch
        .run(items, opts.object_concurrency, |it: CopyItem| async move {
            let item = batch_ref.begin(&it.dst, it.size);
            let progress = |n: u64| reporter.on_progress(&it.dst, n);
            let r = copy_one(src, &it.src, dst, &it.dst, it.size, opts, budget, &progress).await;
            batch_ref.done(&item, &r);
        })
        .await;
    batch.finish()
}

/// `""` or a directory prefix ending in `/`.
pub(crate) fn dir_prefix(prefix: &str) -> Result<String> {
    let p = prefix.trim_matches('/');
    if p.is_empty() {
        return Ok(String::new());
    }
    validate_prefix(p)?;
    Ok(format!("{p}/"))
}

/// Copies every object under the directory `src_prefix` of `src` to the same relative key
/// under `dst_prefix` of `dst` (`""` means the whole store), streaming the listing.
///
/// Prefixes are directories: `data` copies `data/x` but not `database/x`. A bad prefix is an
/// `InvalidInput` error before anything is copied; per-item failures are in the summary.
pub async fn transfer_tree(
    src: &dyn Store,
    src_prefix: &str,
    dst: &dyn Store,
    dst_prefix: &str,
    opts: &TransferOptions,
    reporter: &dyn Reporter,
) -> Result<Summary> {
    let sp = dir_prefix(src_prefix)?;
    let dp = dir_prefix(dst_prefix)?;
    let strip = sp.len();
    let items = crate::listing::list_sorted(src, &sp)
        .map(move |r| {
            let m = r?;
            let rel = &m.key.as_str()[strip..];
            let dst =
                Key::new(format!("{dp}{rel}")).map_err(|e: Error| e.with_operation("copy"))?;
            Ok(CopyItem {
                src: m.key,
                dst,
                size: Some(m.size),
            })
        })
        .boxed();
    Ok(copy_many(src, dst, items, opts, reporter).await)
}

/// One many-object operation: its reporter, its summary and its clock.
struct Batch<'a> {
    reporter: &'a dyn Reporter,
    summary: Mutex<Summary>,
    started: Instant,
}

impl<'a> Batch<'a> {
    fn start(reporter: &'a dyn Reporter) -> Self {
        reporter.on_start(Totals::default());
        Batch {
            reporter,
            summary: Mutex::new(Summary::default()),
            started: Instant::now(),
        }
    }

    /// Runs `work` on each entry of `items`, `concurrency` at once; a stream error is recorded
    /// as a failure with an empty key and the rest go on.
    async fn run<T, F, Fut>(&self, items: BoxStream<'_, Result<T>>, concurrency: usize, work: F)
    where
        F: Fn(T) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let work = &work;
        items
            .map(|it| async move {
                match it {
                    Ok(it) => work(it).await,
                    Err(e) => self.fail("", &e),
                }
            })
            .buffer_unordered(concurrency.max(1))
            .collect::<()>()
            .await;
    }

    /// Announces one item and returns it, to pass to [`Batch::done`].
    fn begin<'k>(&self, key: &'k Key, size: Option<u64>) -> Item<'k> {
        self.reporter.on_discovered(1, size.unwrap_or(0));
        let item = Item {
            key,
            action: Action::Transfer,
            size,
        };
        self.reporter.on_item_start(&item);
        item
    }

    /// Reports and records how `item` ended (`Ok` holds the bytes moved, and whether they
    /// went unchecked).
    fn done(&self, item: &Item<'_>, r: &Result<Moved>) {
        let outcome = match r {
            Ok(m) => m.outcome(),
            Err(e) => Outcome::Failed(e),
        };
        self.reporter.on_item_done(item, &outcome);
        self.summary.lock().unwrap().record(item, &outcome);
    }

    fn fail(&self, key: &str, e: &Error) {
        self.summary
            .lock()
            .unwrap()
            .record_failure(key, Action::Transfer, e);
    }

    fn finish(self) -> Summary {
        let mut summary = self.summary.into_inner().unwrap();
        summary.elapsed_secs = self.started.elapsed().as_secs_f64();
        self.reporter.on_finish(&summary);
        summary
    }
}

/// Uploads every file under the local directory `dir` to `prefix` of `store` (`""` for the
/// root), keeping the relative paths, [`TransferOptions::object_concurrency`] files at once.
///
/// The walk is streamed in key order; symlinks are skipped (as the local store does). Each
/// file goes through [`upload_file`](super::upload_file)'s path: one put when small, a
/// concurrent multipart upload when large, all within one memory budget. A missing directory
/// is an `InvalidInput` error; per-file failures are in the summary. Items are reported under
/// their keys in `store`.
pub async fn upload_tree(
    dir: &Path,
    store: &dyn Store,
    prefix: &str,
    opts: &TransferOptions,
    reporter: &dyn Reporter,
) -> Result<Summary> {
    if !dir.is_dir() {
        return Err(
            Error::invalid(format!("{} is not a directory", dir.display()))
                .with_operation("upload"),
        );
    }
    let dp = dir_prefix(prefix)?;
    let root = dir.to_path_buf();
    let walk = LocalStore::new(dir)?;
    let batch = Batch::start(reporter);
    let items = walk.list_objects("").boxed();
    let (budget, batch_ref, root, dp) = (&opts.budget(), &batch, &root, &dp);
    batch
        .run(items, opts.object_concurrency, |m| async move {
            let key = match Key::new(format!("{dp}{}", m.key)) {
                Ok(k) => k,
                Err(e) => return batch_ref.fail(m.key.as_str(), &e),
            };
            let item = batch_ref.begin(&key, Some(m.size));
            let path = root.join(m.key.as_str());
            let progress = |n: u64| reporter.on_progress(&key, n);
            let r = upload_inner(store, &key, &path, opts, Some(m.size), budget, &progress).await;
            batch_ref.done(&item, &r.map(|(_, size)| Moved::checked(size)));
        })
        .await;
    Ok(batch.finish())
}

/// One local file to upload with [`upload_many`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadItem {
    /// The file.
    pub path: PathBuf,
    /// Where it goes in the store.
    pub key: Key,
    /// Its size, if known (from a directory walk); lets small files share the budget.
    pub size: Option<u64>,
    /// A content type for this file, used when [`TransferOptions::put`] sets none.
    pub content_type: Option<String>,
}

/// Uploads every file of `items`, [`TransferOptions::object_concurrency`] at once, within one
/// memory budget, each through [`upload_file`](super::upload_file)'s path.
///
/// For callers that walk directories themselves (the CLI follows links to files and names
/// every file it cannot upload). A failed item, or an error in the stream (recorded with an
/// empty key), is counted in the summary with its reason; the rest go on. Items are reported
/// under their keys.
pub async fn upload_many(
    store: &dyn Store,
    items: BoxStream<'_, Result<UploadItem>>,
    opts: &TransferOptions,
    reporter: &dyn Reporter,
) -> Summary {
    let batch = Batch::start(reporter);
    let (budget, batch_ref) = (&opts.budget(), &batch);
    batch
        .run(
            items,
            opts.object_concurrency,
            |it: UploadItem| async move {
                let item = batch_ref.begin(&it.key, it.size);
                let own;
                let opts = match &it.content_type {
                    Some(ct) if opts.put.content_type.is_none() => {
                        let mut o = opts.clone();
                        o.put.content_type = Some(ct.clone());
                        own = o;
                        &own
                    }
                    _ => opts,
                };
                let progress = |n: u64| reporter.on_progress(&it.key, n);
                let r =
                    upload_inner(store, &it.key, &it.path, opts, it.size, budget, &progress).await;
                batch_ref.done(&item, &r.map(|(_, size)| Moved::checked(size)));
            },
        )
        .await;
    batch.finish()
}

/// Downloads every object under the directory `prefix` of `store` into the local directory
/// `dir` (created if missing), keeping the relative paths.
///
/// Each object takes [`download_file`](super::download_file)'s path (parallel ranged GETs
/// pinned to the ETag, resumed on breaks, SHA-256 checked), written to a temp file and renamed
/// into place, so no reader sees a partial file. With [`TransferOptions::durable`], instead of
/// an fsync per file (milliseconds each), the destination filesystem is synced once at the
/// end, before this returns: when it returns, everything reported transferred is durable.
/// Items are reported under their keys; objects with no recorded SHA-256 are downloaded
/// unchecked and counted in [`Summary::unverified`].
pub async fn download_tree(
    store: &dyn Store,
    prefix: &str,
    dir: &Path,
    opts: &TransferOptions,
    reporter: &dyn Reporter,
) -> Result<Summary> {
    let sp = dir_prefix(prefix)?;
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::new(
            Error::from(e).kind(),
            format!("cannot create {}", dir.display()),
        )
        .with_operation("download")
    })?;
    let batch = Batch::start(reporter);
    let items = crate::listing::list_sorted(store, &sp);
    let (batch_ref, sp_ref) = (&batch, &sp);
    batch
        .run(items, opts.object_concurrency, |m| async move {
            let item = batch_ref.begin(&m.key, Some(m.size));
            // Keys are validated (no `..`, not absolute), so the path stays inside `dir`.
            let path = dir.join(&m.key.as_str()[sp_ref.len()..]);
            let progress = |n: u64| reporter.on_progress(&m.key, n);
            let r = download_checked(store, &m.key, &path, opts, false, &progress).await;
            batch_ref.done(&item, &r.map(|meta| super::moved(opts, store, &meta)));
        })
        .await;
    let d = dir.to_path_buf();
    let sync_result = if opts.durable {
        blocking(move || syncfs(&d)).await
    } else {
        Ok(())
    };
    if let Err(e) = sync_result {
        batch.fail("", &e.with_operation("download"));
    }
    Ok(batch.finish())
}

/// Flushes the filesystem holding `dir` (one syscall instead of one fsync per file).
fn syncfs(dir: &Path) -> Result<()> {
    let f = std::fs::File::open(dir)?;
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: the descriptor is open for the duration of the call.
        if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        drop(f);
        // SAFETY: sync(2) takes no arguments and cannot fail.
        unsafe { libc::sync() };
    }
    Ok(())
}
