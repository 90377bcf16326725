//! Many objects at once: bounded concurrency, streamed listings, per-item failures.

use super::copy::copy_one;
use super::file::{download_inner, upload_inner};
use super::{blocking, TransferOptions};
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
    let started = Instant::now();
    reporter.on_start(Totals::default());
    let budget = opts.budget();
    let summary = Mutex::new(Summary::default());
    let (budget, summary_ref) = (&budget, &summary);
    items
        .map(|it| async move {
            let it = match it {
                Ok(it) => it,
                Err(e) => {
                    summary_ref
                        .lock()
                        .unwrap()
                        .record_failure("", Action::Transfer, &e);
                    return;
                }
            };
            reporter.on_discovered(1, it.size.unwrap_or(0));
            let item = Item {
                key: &it.dst,
                action: Action::Transfer,
                size: it.size,
            };
            reporter.on_item_start(&item);
            let progress = |n: u64| reporter.on_progress(&it.dst, n);
            let r = copy_one(src, &it.src, dst, &it.dst, it.size, opts, budget, &progress).await;
            let outcome = match &r {
                Ok(bytes) => Outcome::Transferred { bytes: *bytes },
                Err(e) => Outcome::Failed(e),
            };
            reporter.on_item_done(&item, &outcome);
            summary_ref.lock().unwrap().record(&item, &outcome);
        })
        .buffer_unordered(opts.object_concurrency.max(1))
        .collect::<()>()
        .await;
    let mut summary = summary.into_inner().unwrap();
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    reporter.on_finish(&summary);
    summary
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
    let items = src
        .list_objects(&sp)
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

/// Runs one item per entry of `items`, `concurrency` at once, recording outcomes.
async fn run_items<'a, T, F, Fut>(
    items: BoxStream<'a, Result<T>>,
    concurrency: usize,
    summary: &Mutex<Summary>,
    work: F,
) where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let work = &work;
    items
        .map(|it| async move {
            match it {
                Ok(it) => work(it).await,
                Err(e) => summary
                    .lock()
                    .unwrap()
                    .record_failure("", Action::Transfer, &e),
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<()>()
        .await;
}

fn finish(summary: Mutex<Summary>, started: Instant, reporter: &dyn Reporter) -> Summary {
    let mut summary = summary.into_inner().unwrap();
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    reporter.on_finish(&summary);
    summary
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
    let started = Instant::now();
    reporter.on_start(Totals::default());
    let budget = opts.budget();
    let summary = Mutex::new(Summary::default());
    let items = walk.list_objects("").boxed();
    let (budget, summary_ref, root, dp) = (&budget, &summary, &root, &dp);
    run_items(
        items,
        opts.object_concurrency,
        summary_ref,
        |m| async move {
            let key = match Key::new(format!("{dp}{}", m.key)) {
                Ok(k) => k,
                Err(e) => {
                    return summary_ref.lock().unwrap().record_failure(
                        m.key.as_str(),
                        Action::Transfer,
                        &e,
                    )
                }
            };
            reporter.on_discovered(1, m.size);
            let item = Item {
                key: &key,
                action: Action::Transfer,
                size: Some(m.size),
            };
            reporter.on_item_start(&item);
            let path = root.join(m.key.as_str());
            let progress = |n: u64| reporter.on_progress(&key, n);
            let r = upload_inner(store, &key, &path, opts, Some(m.size), budget, &progress).await;
            let outcome = match &r {
                Ok((_, size)) => Outcome::Transferred { bytes: *size },
                Err(e) => Outcome::Failed(e),
            };
            reporter.on_item_done(&item, &outcome);
            summary_ref.lock().unwrap().record(&item, &outcome);
        },
    )
    .await;
    Ok(finish(summary, started, reporter))
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
    let started = Instant::now();
    reporter.on_start(Totals::default());
    let budget = opts.budget();
    let summary = Mutex::new(Summary::default());
    let (budget, summary_ref) = (&budget, &summary);
    run_items(
        items,
        opts.object_concurrency,
        summary_ref,
        |it: UploadItem| async move {
            reporter.on_discovered(1, it.size.unwrap_or(0));
            let item = Item {
                key: &it.key,
                action: Action::Transfer,
                size: it.size,
            };
            reporter.on_item_start(&item);
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
            let r = upload_inner(store, &it.key, &it.path, opts, it.size, budget, &progress).await;
            let outcome = match &r {
                Ok((_, size)) => Outcome::Transferred { bytes: *size },
                Err(e) => Outcome::Failed(e),
            };
            reporter.on_item_done(&item, &outcome);
            summary_ref.lock().unwrap().record(&item, &outcome);
        },
    )
    .await;
    finish(summary, started, reporter)
}

/// Downloads every object under the directory `prefix` of `store` into the local directory
/// `dir` (created if missing), keeping the relative paths.
///
/// Each object takes [`download_file`](super::download_file)'s path (parallel ranged GETs
/// pinned to the ETag, resumed on breaks, SHA-256 checked), written to a temp file and renamed
/// into place, so no reader sees a partial file. With [`TransferOptions::durable`], instead of
/// an fsync per file (milliseconds each), the destination filesystem is synced once at the
/// end, before this returns: when it returns, everything reported transferred is durable.
/// Items are reported under their keys.
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
    let started = Instant::now();
    reporter.on_start(Totals::default());
    let summary = Mutex::new(Summary::default());
    let items = store.list_objects(&sp).boxed();
    let (summary_ref, sp_ref) = (&summary, &sp);
    run_items(
        items,
        opts.object_concurrency,
        summary_ref,
        |m| async move {
            reporter.on_discovered(1, m.size);
            let item = Item {
                key: &m.key,
                action: Action::Transfer,
                size: Some(m.size),
            };
            reporter.on_item_start(&item);
            // Keys are validated (no `..`, not absolute), so the path stays inside `dir`.
            let path = dir.join(&m.key.as_str()[sp_ref.len()..]);
            let progress = |n: u64| reporter.on_progress(&m.key, n);
            let r = download_inner(store, &m.key, &path, opts, false, &progress).await;
            let outcome = match &r {
                Ok(meta) => Outcome::Transferred { bytes: meta.size },
                Err(e) => Outcome::Failed(e),
            };
            reporter.on_item_done(&item, &outcome);
            summary_ref.lock().unwrap().record(&item, &outcome);
        },
    )
    .await;
    let d = dir.to_path_buf();
    let sync_result = if opts.durable {
        blocking(move || syncfs(&d)).await
    } else {
        Ok(())
    };
    if let Err(e) = sync_result {
        summary
            .lock()
            .unwrap()
            .record_failure("", Action::Transfer, &e.with_operation("download"));
    }
    Ok(finish(summary, started, reporter))
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
