//! `sync`: make a destination store hold what a source store holds, in bounded memory.
//!
//! Both sides are stores: a local directory is a [`LocalStore`](crate::backend::local::LocalStore),
//! a bucket prefix a [`PrefixStore`](crate::layer::PrefixStore) over the S3 store, so local → S3,
//! S3 → local and S3 → S3 are the same code. Keys are compared relative to each store's root.
//!
//! Both listings arrive in ascending byte order (every store lists that way), so sync walks them
//! side by side like a merge join: a key only in the source is copied, a key on both sides is
//! compared, a key only in the destination is deleted with `delete`. Nothing is collected, so a
//! tree of a million objects needs no more memory than one of ten. A listing that is not in
//! order, or that fails, stops the walk (no further deletes are planned from it) and is
//! reported as a failure.
//!
//! Comparing ([`Compare`]):
//! - `SizeAndTime`: skip when the sizes match and the destination's last-modified time is not
//!   older than the source's, both truncated to whole seconds (S3 keeps second precision, and
//!   its last-modified is the upload time, so an upload is never older than the file it came
//!   from). A change within the same second that keeps the size is missed: use `Checksum`.
//! - `Checksum`: skip when the contents match, by content digest ([`crate::digest`]): the
//!   recorded `cairn-content-digest` of a compressed or encrypted object, or the checksum
//!   layer's SHA-256 of an untransformed one. A keyed digest (encrypted objects) is compared by
//!   putting the other side's plain SHA-256 through the destination's key; a side with no
//!   digest is hashed if it is a local store, and otherwise the object is copied.
//! - Sizes are logical: a listing through a compressing or encrypting layer cannot know them
//!   ([`ObjectMeta::size_known`]), so such pairs are decided after a `head` of both sides.
//!
//! `acl` is passed to the destination as the put hint `layer_hints["acl"]`, for the S3 backend
//! to send as a canned ACL; stores without ACLs ignore it. `storage_class` goes to
//! [`PutOptions::storage_class`](crate::PutOptions::storage_class).

use crate::digest::content_digest;
use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::listing::list_sorted;
use crate::ops::reporter::{Action, Item, Outcome, Reporter, Summary, Totals};
use crate::store::{ObjectMeta, Store, StoreExt};
use crate::transfer::{copy_one, TransferOptions};
use futures::stream::{self, BoxStream, StreamExt};
use globset::{Glob, GlobSet, GlobSetBuilder};
use sha2::{Digest, Sha256};
use std::sync::Mutex;
use std::time::Instant;

/// How sync decides that a destination object is up to date.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compare {
    /// Same size, and the destination is not older than the source (to the second).
    #[default]
    SizeAndTime,
    /// Same SHA-256 (recorded, or computed for local stores).
    Checksum,
}

pub use crate::backend::s3::admin::CANNED_ACLS;

/// Options for [`sync()`].
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// How objects on both sides are compared.
    pub compare: Compare,
    /// Delete destination objects that are not in the source (only among included keys).
    pub delete: bool,
    /// Report what would be done; change nothing.
    pub dry_run: bool,
    /// Only keys matching one of these globs (all keys if empty). `*` matches across `/`.
    pub include: Vec<String>,
    /// Leave out keys matching any of these globs, on both sides (never deleted).
    pub exclude: Vec<String>,
    /// A canned ACL for every uploaded object (see [`CANNED_ACLS`]), as the put hint `acl`.
    pub acl: Option<String>,
    /// Storage class for every uploaded object.
    pub storage_class: Option<String>,
    /// Part size, concurrency, memory budget and put options of the copies.
    pub transfer: TransferOptions,
}

/// What a sync did: transferred, skipped, deleted and failed items, with reasons.
pub type SyncSummary = Summary;

struct Filter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

fn globs(patterns: &[String], what: &str) -> Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let g = Glob::new(p).map_err(|e| {
            Error::invalid(format!("{what} pattern {p:?} is not a valid glob: {e}"))
                .with_operation("sync")
                .with_hint("use globs like `*.csv`, `logs/**`, `data/{a,b}/*`")
        })?;
        b.add(g);
    }
    b.build()
        .map(Some)
        .map_err(|e| Error::invalid(format!("bad {what} patterns: {e}")))
}

impl Filter {
    fn new(opts: &SyncOptions) -> Result<Self> {
        Ok(Filter {
            include: globs(&opts.include, "include")?,
            exclude: globs(&opts.exclude, "exclude")?,
        })
    }
    fn wants(&self, key: &str) -> bool {
        self.include.as_ref().is_none_or(|g| g.is_match(key))
            && !self.exclude.as_ref().is_some_and(|g| g.is_match(key))
    }
}

/// One decision of the merge walk.
enum Plan {
    Copy(ObjectMeta),
    Compare(ObjectMeta, ObjectMeta),
}

const UNCHANGED_TIME: &str = "unchanged: same size, destination not older";
const UNCHANGED_SHA: &str = "unchanged: same SHA-256";

fn up_to_date(src: &ObjectMeta, dst: &ObjectMeta) -> bool {
    src.size == dst.size && dst.last_modified.timestamp() >= src.last_modified.timestamp()
}

/// A listing filtered by the include/exclude globs, checked to be strictly ascending.
struct Side<'a> {
    store: &'a dyn Store,
    list: BoxStream<'a, Result<ObjectMeta>>,
    last: Option<Key>,
    filter: &'a Filter,
    /// Where an object the listing could not name is recorded, as a failed item.
    summary: &'a Mutex<Summary>,
}

impl Side<'_> {
    /// A listing failure names what was being listed (the summary's item for it), unless
    /// it already names a key or prefix.
    fn named(&self, e: Error) -> Error {
        let store = self.store.to_string();
        e.with_key(format!("listing of {store}"))
    }

    async fn next(&mut self) -> Result<Option<ObjectMeta>> {
        loop {
            let m = match self.list.next().await {
                None => return Ok(None),
                // Named and counted, and the walk goes on: the object is neither copied nor
                // deleted, and the run exits 2. Unless the filters leave it out, as they would
                // an object of that name (`--exclude` is how to pass over links on purpose).
                Some(Err(e)) if e.kind() == ErrorKind::Unrepresentable => {
                    if e.key().is_some_and(|name| !self.filter.wants(name)) {
                        continue;
                    }
                    let mut s = self.summary.lock().unwrap_or_else(|p| p.into_inner());
                    s.record_failure("", Action::Transfer, &e);
                    continue;
                }
                Some(r) => r.map_err(|e| self.named(e))?,
            };
            if let Some(last) = &self.last {
                if m.key.as_str() <= last.as_str() {
                    return Err(Error::new(
                        ErrorKind::Unexpected,
                        format!(
                            "the listing is not in ascending order: {} came after {last}",
                            m.key
                        ),
                    )
                    .with_operation("list")
                    .with_store(self.store)
                    .with_hint(
                        "sync relies on sorted listings and stopped to avoid wrong deletes",
                    ))
                    .map_err(|e| self.named(e));
                }
            }
            self.last = Some(m.key.clone());
            if self.filter.wants(m.key.as_str()) {
                return Ok(Some(m));
            }
        }
    }
}

/// Makes `dst` match `src`. See the [module docs](self) for how objects are compared.
///
/// Invalid globs or ACL names are an `InvalidInput` error before anything is read. Every other
/// failure (an item, or a listing) is recorded in the summary with its reason and the rest
/// goes on; a second run over unchanged sides transfers nothing.
pub async fn sync(
    src: &dyn Store,
    dst: &dyn Store,
    opts: &SyncOptions,
    reporter: &dyn Reporter,
) -> Result<SyncSummary> {
    let filter = Filter::new(opts)?;
    let mut transfer = opts.transfer.clone();
    if let Some(acl) = &opts.acl {
        crate::backend::s3::admin::check_canned_acl(acl).map_err(|e| e.with_operation("sync"))?;
        transfer.put.layer_hints.insert("acl".into(), acl.clone());
    }
    if let Some(class) = &opts.storage_class {
        transfer.put.storage_class = Some(class.clone());
    }
    let started = Instant::now();
    reporter.on_start(Totals::default());
    let summary = Mutex::new(Summary {
        dry_run: opts.dry_run,
        ..Default::default()
    });
    let budget = transfer.budget();
    let workers = transfer.object_concurrency.max(1);
    let (work_tx, work_rx) = tokio::sync::mpsc::channel::<Plan>(workers * 2);
    let (del_tx, del_rx) = tokio::sync::mpsc::channel::<ObjectMeta>(1000);
    let (summary_ref, transfer, budget, filter) = (&summary, &transfer, &budget, &filter);
    let done = |item: &Item<'_>, outcome: &Outcome<'_>| {
        reporter.on_item_done(item, outcome);
        summary_ref.lock().unwrap().record(item, outcome);
    };
    let done = &done;

    let producer = async move {
        let mut s = Side {
            store: src,
            list: list_sorted(src, ""),
            last: None,
            filter,
            summary: summary_ref,
        };
        let mut d = Side {
            store: dst,
            list: list_sorted(dst, ""),
            last: None,
            filter,
            summary: summary_ref,
        };
        let r: Result<()> = async {
            // Both listings start at once: a local side reads its first directory whole
            // (to sort it) while the remote side waits on its first page.
            let (a, b) = futures::join!(s.next(), d.next());
            let (mut a, mut b) = (a?, b?);
            loop {
                let order = match (&a, &b) {
                    (None, None) => break,
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (Some(x), Some(y)) => x.key.as_str().cmp(y.key.as_str()),
                };
                match order {
                    std::cmp::Ordering::Less => {
                        let m = a.take().expect("source item");
                        reporter.on_discovered(1, m.size);
                        if work_tx.send(Plan::Copy(m)).await.is_err() {
                            break;
                        }
                        a = s.next().await?;
                    }
                    std::cmp::Ordering::Greater => {
                        let m = b.take().expect("destination item");
                        if opts.delete && del_tx.send(m).await.is_err() {
                            break;
                        }
                        b = d.next().await?;
                    }
                    std::cmp::Ordering::Equal => {
                        let (x, y) = (a.take().expect("source"), b.take().expect("destination"));
                        // A listing through a transforming layer does not know logical
                        // sizes: such pairs are decided by the workers, after a head.
                        let known = x.size_known && y.size_known;
                        let plan = match opts.compare {
                            Compare::SizeAndTime if known && up_to_date(&x, &y) => None,
                            _ if known && x.size != y.size => Some(Plan::Copy(x.clone())),
                            Compare::SizeAndTime if known => Some(Plan::Copy(x.clone())),
                            _ => Some(Plan::Compare(x.clone(), y)),
                        };
                        match plan {
                            None => {
                                let item = Item {
                                    key: &x.key,
                                    action: Action::Skip,
                                    size: Some(x.size),
                                };
                                reporter.on_item_start(&item);
                                done(
                                    &item,
                                    &Outcome::Skipped {
                                        reason: UNCHANGED_TIME,
                                    },
                                );
                            }
                            Some(p) => {
                                reporter.on_discovered(1, x.size);
                                if work_tx.send(p).await.is_err() {
                                    break;
                                }
                            }
                        }
                        a = s.next().await?;
                        b = d.next().await?;
                    }
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = r {
            summary_ref
                .lock()
                .unwrap()
                .record_failure("", Action::Transfer, &e);
        }
        drop(work_tx);
        drop(del_tx);
    };

    let work = receiver(work_rx)
        .map(|plan| async move {
            let (m, compared) = match plan {
                Plan::Copy(m) => (m, Ok(())),
                Plan::Compare(x, y) => match unchanged(src, &x, dst, &y, opts.compare).await {
                    Ok(Some(reason)) => {
                        let item = Item {
                            key: &x.key,
                            action: Action::Skip,
                            size: Some(x.size),
                        };
                        reporter.on_item_start(&item);
                        done(&item, &Outcome::Skipped { reason });
                        return;
                    }
                    Ok(None) => (x, Ok(())),
                    Err(e) => (x, Err(e)),
                },
            };
            let item = Item {
                key: &m.key,
                action: Action::Transfer,
                size: Some(m.size),
            };
            reporter.on_item_start(&item);
            if let Err(e) = compared {
                return done(&item, &Outcome::Failed(&e));
            }
            if opts.dry_run {
                return done(&item, &Outcome::Planned);
            }
            // The destination's checksum layer records the copy's SHA-256 itself (and refuses
            // callers' `cairn-*` metadata), so the next run compares without reading it back.
            let topts = transfer;
            let progress = |n: u64| reporter.on_progress(&m.key, n);
            let r = copy_one(
                src,
                &m.key,
                dst,
                &m.key,
                m.size_known.then_some(m.size),
                topts,
                budget,
                &progress,
            )
            .await;
            match r {
                // Unverified when the source object has no recorded SHA-256 to check.
                Ok(m) => done(&item, &m.outcome()),
                Err(e) => done(&item, &Outcome::Failed(&e)),
            }
        })
        .buffer_unordered(workers)
        .collect::<()>();

    let deletes = async move {
        if opts.dry_run {
            receiver(del_rx)
                .for_each(|m| async move {
                    let item = Item {
                        key: &m.key,
                        action: Action::Delete,
                        size: Some(m.size),
                    };
                    reporter.on_item_start(&item);
                    done(&item, &Outcome::Planned);
                })
                .await;
            return;
        }
        let keys = receiver(del_rx)
            .map(|m| {
                reporter.on_item_start(&Item {
                    key: &m.key,
                    action: Action::Delete,
                    size: Some(m.size),
                });
                m.key
            })
            .boxed();
        dst.delete_stream(keys)
            .for_each(|(k, r)| async move {
                let item = Item {
                    key: &k,
                    action: Action::Delete,
                    size: None,
                };
                match r {
                    Ok(()) => done(&item, &Outcome::Deleted),
                    Err(e) => done(&item, &Outcome::Failed(&e)),
                }
            })
            .await;
    };

    futures::join!(producer, work, deletes);
    let mut summary = summary.into_inner().unwrap();
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    reporter.on_finish(&summary);
    Ok(summary)
}

fn receiver<T: Send + 'static>(rx: tokio::sync::mpsc::Receiver<T>) -> BoxStream<'static, T> {
    stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) }).boxed()
}

/// Decides a pair the producer could not: `Some(reason)` if the destination is up to date.
/// Both sides are headed, so logical sizes are known whatever the layers.
async fn unchanged(
    src: &dyn Store,
    x: &ObjectMeta,
    dst: &dyn Store,
    y: &ObjectMeta,
    compare: Compare,
) -> Result<Option<&'static str>> {
    let (hx, hy) = futures::try_join!(src.head(&x.key), dst.head(&y.key))?;
    if hx.size != hy.size {
        return Ok(None);
    }
    Ok(match compare {
        Compare::SizeAndTime => up_to_date(&hx, &hy).then_some(UNCHANGED_TIME),
        Compare::Checksum => same_content(src, &hx, dst, &hy)
            .await?
            .then_some(UNCHANGED_SHA),
    })
}

/// Whether both objects hold the same content, by content digest ([`crate::digest`]).
///
/// Equal recorded digests settle it. Otherwise the plain SHA-256 of one side (from a `sha256:`
/// digest, or hashed if that side is local) is compared with the other's, or put through the
/// other side's [`DigestScheme`](crate::digest::DigestScheme), so a plain file compares with an
/// encrypted object's keyed digest without a plaintext hash ever being stored. A side with
/// neither counts as different: the object is copied.
async fn same_content(
    src: &dyn Store,
    x: &ObjectMeta,
    dst: &dyn Store,
    y: &ObjectMeta,
) -> Result<bool> {
    let (dx, dy) = (content_digest(x), content_digest(y));
    if let (Some(a), Some(b)) = (&dx, &dy) {
        if a == b {
            return Ok(true);
        }
    }
    let (mut rx, mut ry) = (plain_sha(dx.as_deref()), plain_sha(dy.as_deref()));
    if rx.is_none() {
        rx = hash_local(src, &x.key).await?;
    }
    if let (Some(a), Some(b)) = (&rx, &ry) {
        return Ok(a == b);
    }
    if let (Some(sha), Some(b)) = (&rx, &dy) {
        return Ok(dst.digest_scheme().digest_of(sha) == *b);
    }
    if ry.is_none() {
        ry = hash_local(dst, &y.key).await?;
    }
    if let (Some(a), Some(b)) = (&rx, &ry) {
        return Ok(a == b);
    }
    if let (Some(sha), Some(a)) = (&ry, &dx) {
        return Ok(src.digest_scheme().digest_of(sha) == *a);
    }
    Ok(false)
}

/// The content SHA-256 a `sha256:` digest names.
fn plain_sha(digest: Option<&str>) -> Option<[u8; 32]> {
    crate::transfer::parse_sha256(digest?.strip_prefix("sha256:")?)
}

/// The SHA-256 of a local object's content (a read through the layers gives the content);
/// None for remote stores, where reading the object costs as much as copying it.
async fn hash_local(store: &dyn Store, key: &Key) -> Result<Option<[u8; 32]>> {
    if !store.capabilities().local {
        return Ok(None);
    }
    let mut body = store.get_stream(key).await?;
    let mut h = Sha256::new();
    while let Some(chunk) = body.next().await {
        h.update(&chunk?);
    }
    Ok(Some(h.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn meta(size: u64, secs: i64, ms: u32) -> ObjectMeta {
        ObjectMeta::new(
            Key::new("k").unwrap(),
            size,
            Utc.timestamp_opt(secs, ms * 1_000_000).unwrap(),
        )
    }

    #[test]
    fn size_and_time_rule() {
        // Same second: an S3 upload truncated to the second still counts as not older.
        assert!(up_to_date(&meta(5, 100, 700), &meta(5, 100, 0)));
        assert!(up_to_date(&meta(5, 100, 0), &meta(5, 101, 0)));
        assert!(
            !up_to_date(&meta(5, 101, 0), &meta(5, 100, 999)),
            "destination older"
        );
        assert!(
            !up_to_date(&meta(5, 100, 0), &meta(6, 200, 0)),
            "size differs"
        );
    }

    #[test]
    fn filter_include_exclude() {
        let opts = SyncOptions {
            include: vec!["*.csv".into(), "logs/**".into()],
            exclude: vec!["tmp/*".into()],
            ..Default::default()
        };
        let f = Filter::new(&opts).unwrap();
        assert!(f.wants("a.csv"));
        assert!(f.wants("deep/dir/a.csv"), "* crosses /");
        assert!(f.wants("logs/x/y.txt"));
        assert!(!f.wants("a.txt"));
        assert!(!f.wants("tmp/a.csv"), "exclude wins");
        let bad = SyncOptions {
            exclude: vec!["a[".into()],
            ..Default::default()
        };
        let e = Filter::new(&bad).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("a["), "{e}");
    }
}
