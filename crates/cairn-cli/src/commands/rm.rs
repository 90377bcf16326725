//! `cairn rm URL` and `cairn rm -r URL`: one object, or everything under a prefix.

use super::copy::{is_fatal, Reporter, Summary};
use super::{open_existing, shown_key, BulkReporter, Ctx};
use crate::address::{self, Addr};
use crate::args::RmArgs;
use crate::error::{usage, Result};
use cairn::{Error, ErrorKind, Store, StoreExt};
use futures::future::ready;
use futures::StreamExt;
use std::sync::Mutex;

pub async fn run(ctx: &Ctx, a: &RmArgs) -> Result {
    let addr = match address::parse(&a.url, a.recursive)? {
        Addr::Store(s) => s,
        Addr::Fs(p) => {
            return Err(usage(
                format!("rm deletes from stores; {} is a plain path", p.display()),
                "use a URL such as s3://bucket/key, local://key or file:///dir/key",
            ))
        }
        Addr::Stdio => return Err(usage("cannot rm `-`", "give a store URL")),
    };
    let p = &ctx.printer;
    if !a.recursive {
        let key = addr.key()?;
        let store = open_existing(ctx, &addr).await?;
        let shown = shown_key(&addr, key.as_str());
        if let Some(v) = &a.version_id {
            store
                .server("deleting a version")?
                .delete_version(&key, v)
                .await?;
            if p.json() {
                p.json_line(&serde_json::json!({ "deleted": key.as_str(), "version_id": v }))?;
            } else {
                p.info(format!("Deleted version {v} of {shown}"));
            }
            return Ok(());
        }
        // Deleting is idempotent in stores; a typo should still not pass silently.
        store.head(&key).await?;
        store.delete(&key).await?;
        if p.json() {
            p.json_line(&serde_json::json!({ "deleted": key.as_str() }))?;
        } else {
            p.info(format!("Deleted {shown}"));
        }
        return Ok(());
    }
    let store = open_existing(ctx, &addr).await?;
    let prefix = addr.dir_prefix();
    let rep = BulkReporter::new(p, "delete");
    let sum = match delete_prefix(store.as_ref(), &prefix, &rep).await {
        Ok(s) => s,
        Err(e) => {
            rep.finish();
            return Err(e.into());
        }
    };
    let shown = shown_key(&addr, &prefix);
    let summary = if sum.total() == 0 {
        format!("Nothing to delete under {shown}")
    } else {
        format!(
            "Deleted {} of {} objects under {shown}",
            sum.done,
            sum.total()
        )
    };
    super::finish_bulk(ctx, &rep, sum, "objects", summary)
}

/// Deletes every object under `prefix` ("" or ending in `/`) in bounded memory: the listing
/// feeds the store's batched delete as it goes.
///
/// `Err` for a listing failure or a failure that dooms every item; other failures are counted
/// and reported one by one, objects under names cairn cannot represent among them (listed,
/// never deleted: no request can name them).
pub async fn delete_prefix(
    store: &dyn Store,
    prefix: &str,
    rep: &dyn Reporter,
) -> cairn::Result<Summary> {
    let list_err: Mutex<Option<Error>> = Mutex::new(None);
    let unlisted: Mutex<Vec<Error>> = Mutex::new(Vec::new());
    let keys = store
        .list_objects(prefix)
        .scan((), |_, r| {
            ready(match r {
                Ok(m) => Some(Some(m.key)),
                // The listing goes on past such an object.
                Err(e) if e.kind() == ErrorKind::Unrepresentable => {
                    unlisted.lock().unwrap().push(e);
                    Some(None)
                }
                Err(e) => {
                    *list_err.lock().unwrap() = Some(e);
                    None
                }
            })
        })
        .filter_map(ready)
        .boxed();
    let mut results = store.delete_stream(keys);
    let mut sum = Summary::default();
    while let Some((key, r)) = results.next().await {
        let rel = key.strip_prefix(prefix).unwrap_or(key.as_str()).to_string();
        match r {
            Ok(()) => {
                sum.done += 1;
                rep.done(&rel, 0);
            }
            Err(e) if is_fatal(&e, sum.done == 0) => return Err(e),
            Err(e) => {
                sum.failed += 1;
                rep.failed(&rel, &e);
            }
        }
    }
    drop(results);
    for e in unlisted.into_inner().unwrap() {
        let name = e.key().unwrap_or_default();
        let rel = name
            .strip_prefix(prefix)
            .unwrap_or(name)
            .escape_debug()
            .to_string();
        sum.failed += 1;
        sum.unlisted += 1;
        rep.failed(&rel, &Error::new(e.kind(), e.message()));
    }
    match list_err.into_inner().unwrap() {
        Some(e) => Err(e),
        None => Ok(sum),
    }
}
