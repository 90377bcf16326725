//! Many objects at once: bounded concurrency, streamed listings, per-item failures.

use super::copy::copy_one;
use super::TransferOptions;
use crate::error::{Error, Result};
use crate::key::{validate_prefix, Key};
use crate::ops::reporter::{Action, Item, Outcome, Reporter, Summary, Totals};
use crate::store::{Store, StoreExt};
use futures::stream::{BoxStream, StreamExt};
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
                    summary_ref.lock().unwrap().record_failure("", Action::Transfer, &e);
                    return;
                }
            };
            reporter.on_discovered(1, it.size.unwrap_or(0));
            let item = Item { key: &it.dst, action: Action::Transfer, size: it.size };
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
            let dst = Key::new(format!("{dp}{rel}")).map_err(|e: Error| e.with_operation("copy"))?;
            Ok(CopyItem { src: m.key, dst, size: Some(m.size) })
        })
        .boxed();
    Ok(copy_many(src, dst, items, opts, reporter).await)
}
