//! `cairn sync SRC DST` over `cairn::ops::sync`: both sides become stores (a plain directory is
//! a `file://` store opened through `open_with`, so the configured layers apply; a prefix is a
//! `PrefixStore`), and the library walks them. This file only draws progress and reports.

use super::{checksum_off, open, open_existing, partial_or_unverified, store_addr, Ctx};
use crate::address::{self, Addr, StoreAddr};
use crate::args::SyncArgs;
use crate::error::{one_line, Report, Result};
use crate::printer::{human_bytes, Printer};
use crate::progress::Progress;
use cairn::layer::PrefixStore;
use cairn::ops::reporter::{Action, Item, Outcome, Reporter};
use cairn::ops::{Compare, SyncOptions};
use cairn::transfer::TransferOptions;
use cairn::{DynStore, Key};
use std::sync::Arc;

pub async fn run(ctx: &Ctx, a: &SyncArgs) -> Result {
    let src_addr = side(&a.src, false)?;
    let dst_addr = side(&a.dst, true)?;
    let src = scoped(open_existing(ctx, &src_addr).await?, &src_addr)?;
    let dst = scoped(open(ctx, &dst_addr).await?, &dst_addr)?;
    let opts = SyncOptions {
        compare: if a.checksum {
            Compare::Checksum
        } else {
            Compare::SizeAndTime
        },
        delete: a.delete,
        dry_run: a.dry_run,
        include: a.include.clone(),
        exclude: a.exclude.clone(),
        acl: a.acl.clone(),
        storage_class: a.storage_class.clone(),
        transfer: {
            let mut t = TransferOptions {
                object_concurrency: a.concurrency.into(),
                ..Default::default()
            };
            a.transfer.apply(&mut t);
            // `-o checksum=false` on the source: nothing checked, nothing reported unverified.
            t.verify = !checksum_off(ctx, &src_addr);
            t
        },
    };
    let p = &ctx.printer;
    let verb = Verb::between(&src_addr, &dst_addr);
    let rep = SyncReporter::new(p, verb, a.list);
    let result = cairn::ops::sync(src.as_ref(), dst.as_ref(), &opts, &rep).await;
    rep.progress.finish();
    let sum = result?;
    if p.json() {
        p.json_line(&serde_json::json!({ "summary": sum }))?;
    } else {
        for f in &sum.failures {
            let what = match f.action {
                Action::Delete => "delete",
                _ => verb.now,
            };
            let key = if f.key.is_empty() {
                "(listing)"
            } else {
                &f.key
            };
            p.error(&Report::new(format!("{what} {key}: {}", f.message)));
        }
        let done = if sum.dry_run {
            format!("would {}", verb.now)
        } else {
            verb.done.to_string()
        };
        let del = if sum.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        let unverified = if sum.unverified > 0 {
            format!(", unverified {}", sum.unverified)
        } else {
            String::new()
        };
        p.info(format!(
            "{} → {}: {done} {} ({}), skipped {}, {del} {}, failed {}{unverified}",
            src_addr.shown,
            dst_addr.shown,
            sum.transferred,
            human_bytes(sum.transferred_bytes),
            sum.skipped,
            sum.deleted,
            sum.failed
        ));
    }
    // Keys are relative to the source's prefix; named in full, as the source shows them.
    let under = src_addr.path.trim_matches('/');
    let shown: Vec<String> = sum
        .unverified_keys
        .iter()
        .take(50)
        .map(|k| match under {
            "" => super::shown_key(&src_addr, k),
            p => super::shown_key(&src_addr, &format!("{p}/{k}")),
        })
        .collect();
    partial_or_unverified(
        p,
        sum.failed,
        sum.failed + sum.transferred + sum.deleted + sum.skipped,
        "objects",
        sum.unverified,
        &shown,
    )
}

/// One side as a store address; a missing destination directory is created.
fn side(raw: &str, is_dst: bool) -> Result<StoreAddr> {
    if let Addr::Fs(p) = address::parse(raw, true)? {
        if is_dst && !p.exists() {
            std::fs::create_dir_all(&p)
                .map_err(|e| Report::new(format!("creating {}: {e}", p.display())))?;
        }
    }
    store_addr(raw, true)
}

/// The store, scoped to the address's prefix if it has one.
fn scoped(store: DynStore, addr: &StoreAddr) -> Result<DynStore> {
    let prefix = addr.path.trim_matches('/');
    if prefix.is_empty() {
        return Ok(store);
    }
    Ok(Arc::new(PrefixStore::new(store, prefix)?))
}

/// What a sync does to each object, named from where it goes: a plain path is the user's
/// own files, anything else a store.
#[derive(Clone, Copy)]
struct Verb {
    now: &'static str,
    done: &'static str,
}

impl Verb {
    fn between(src: &StoreAddr, dst: &StoreAddr) -> Verb {
        let (now, done) = match (src.plain, dst.plain) {
            (true, false) => ("upload", "uploaded"),
            (false, true) => ("download", "downloaded"),
            _ => ("copy", "copied"),
        };
        Verb { now, done }
    }
}

/// Progress (bars, or timed lines in a pipe) and, where asked for, one line per change on
/// stdout.
struct SyncReporter<'a> {
    printer: &'a Printer,
    verb: Verb,
    progress: Progress,
    item_lines: bool,
}

impl<'a> SyncReporter<'a> {
    fn new(printer: &'a Printer, verb: Verb, list: bool) -> Self {
        SyncReporter {
            printer,
            verb,
            progress: printer.progress("sync"),
            item_lines: printer.item_lines(list),
        }
    }
}

impl Reporter for SyncReporter<'_> {
    fn on_discovered(&self, objects: u64, bytes: u64) {
        self.progress.discovered(objects, bytes);
    }

    fn on_progress(&self, _key: &Key, bytes: u64) {
        self.progress.bytes(bytes);
    }

    fn on_item_done(&self, item: &Item<'_>, outcome: &Outcome<'_>) {
        match outcome {
            Outcome::Failed(_) => self.progress.failed(),
            _ => self.progress.done(),
        }
        if !self.item_lines {
            return;
        }
        let verb = self.verb.now;
        let line = match (outcome, item.action) {
            (Outcome::Transferred { .. }, _) => format!("{verb} {}", item.key),
            (Outcome::Unverified { .. }, _) => {
                format!(
                    "{verb} {} (unverified: {})",
                    item.key,
                    super::UNVERIFIED_WHY
                )
            }
            (Outcome::Deleted, _) => format!("delete {}", item.key),
            (Outcome::Planned, Action::Transfer) => format!("(dry run) {verb} {}", item.key),
            (Outcome::Planned, Action::Delete) => format!("(dry run) delete {}", item.key),
            (Outcome::Failed(e), _) => {
                tracing::debug!(key = %item.key, error = %one_line(e), "sync item failed");
                return;
            }
            _ => return,
        };
        self.progress.suspend(|| {
            let _ = self.printer.line(&line);
        });
    }
}
