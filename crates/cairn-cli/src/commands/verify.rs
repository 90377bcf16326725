//! `cairn verify URL|PREFIX`: reads objects as stored and checks them against their recorded
//! SHA-256 (`cairn::layer::checksum::verify`). Exit 2 if any object is corrupt, unreadable,
//! unverifiable (no recorded digest) or unlisted (under a name cairn cannot represent): each
//! is named on its own line and again in the summary.

use super::{open_existing, shown_key, store_addr, Ctx};
use crate::args::VerifyArgs;
use crate::error::{one_line, CliError, Report, Result};
use cairn::layer::checksum::{self, VerifyStatus, MANIFEST_PREFIX};
use cairn::{ErrorKind, Key, Store, StoreExt};
use futures::StreamExt;

#[derive(Default)]
struct Totals {
    ok: u64,
    corrupt: u64,
    unverifiable: u64,
    unlisted: u64,
    failed: u64,
    /// Shown keys of the objects that were not ok, for the summary (the first few).
    named: Vec<String>,
}

/// Objects named again in the summary; the rest are counted.
const NAMED_IN_SUMMARY: usize = 20;

impl Totals {
    fn name(&mut self, what: &str, shown: &str) {
        if self.named.len() < NAMED_IN_SUMMARY {
            self.named.push(format!("{what} {shown}"));
        }
    }
}

pub async fn run(ctx: &Ctx, a: &VerifyArgs) -> Result {
    let addr = store_addr(&a.url, false)?;
    let store = open_existing(ctx, &addr).await?;
    let p = &ctx.printer;
    let mut t = Totals::default();
    let mut whole_prefix = addr.into || addr.path.is_empty() || addr.path.ends_with('/');
    let mut prefix = addr.path.clone();
    if !whole_prefix {
        let key = addr.key()?;
        match store.head(&key).await {
            Ok(_) => check(ctx, &addr, store.as_ref(), &key, &mut t).await?,
            // Like `aws s3 ls`, a name that is no object but has objects below it is a prefix.
            Err(e) if e.kind() == cairn::ErrorKind::NotFound => {
                let dir = format!("{}/", addr.path);
                if store.list_objects(&dir).next().await.is_none() {
                    // A missing object is an error of the command, not a line of its report.
                    return Err(e.into());
                }
                whole_prefix = true;
                prefix = dir;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if whole_prefix {
        let progress = p.progress("verify");
        let mut list = store.list_objects(&prefix);
        while let Some(m) = list.next().await {
            let m = match m {
                Ok(m) => m,
                // Nothing can read it, so nothing can check it: an outcome, not the end.
                Err(e) if e.kind() == ErrorKind::Unrepresentable => {
                    let name = e.key().unwrap_or_default().to_string();
                    let shown = shown_key(&addr, &name).escape_debug().to_string();
                    t.unlisted += 1;
                    t.name("unlisted", &shown);
                    if p.json() {
                        p.json_line(&serde_json::json!({
                            "key": name, "status": "unlisted", "reason": e.message(),
                        }))?;
                    } else {
                        p.line(format_args!("UNLISTED      {shown} ({})", e.message()))?;
                    }
                    progress.failed();
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            // Manifests are the checksum layer's bookkeeping, not user objects.
            if m.key.as_str().starts_with(MANIFEST_PREFIX) {
                continue;
            }
            let ok_before = t.ok;
            check(ctx, &addr, store.as_ref(), &m.key, &mut t).await?;
            progress.bytes(m.stored_size);
            if t.ok > ok_before {
                progress.done();
            } else {
                progress.failed();
            }
        }
        progress.finish();
    }
    let total = t.ok + t.corrupt + t.unverifiable + t.unlisted + t.failed;
    if p.json() {
        p.json_line(&serde_json::json!({ "summary": {
            "ok": t.ok, "corrupt": t.corrupt, "unverifiable": t.unverifiable,
            "unlisted": t.unlisted, "failed": t.failed, "total": total,
        }}))?;
    } else {
        p.info(format!(
            "{total} objects: {} ok, {} corrupt, {} unverifiable, {} unlisted, {} failed",
            t.ok, t.corrupt, t.unverifiable, t.unlisted, t.failed
        ));
        let bad = total - t.ok;
        for n in &t.named {
            p.info(format!("  {n}"));
        }
        if bad > t.named.len() as u64 {
            p.info(format!("  ... and {} more", bad - t.named.len() as u64));
        }
    }
    // An object that could not be checked is not a checked one: exit 2 for each kind.
    let bad = t.corrupt + t.failed + t.unverifiable + t.unlisted;
    if bad > 0 {
        return Err(CliError::Partial {
            failed: bad,
            total,
            noun: "objects",
        });
    }
    Ok(())
}

async fn check(
    ctx: &Ctx,
    addr: &crate::address::StoreAddr,
    store: &dyn Store,
    key: &Key,
    t: &mut Totals,
) -> Result {
    let p = &ctx.printer;
    let shown = shown_key(addr, key.as_str());
    match checksum::verify(store, key).await {
        Ok(VerifyStatus::Ok) => {
            t.ok += 1;
            if p.json() {
                p.json_line(&serde_json::json!({ "key": key.as_str(), "status": "ok" }))
            } else {
                p.line(format_args!("ok            {shown}"))
            }
        }
        Ok(VerifyStatus::Corrupt { expected, actual }) => {
            t.corrupt += 1;
            t.name("corrupt", &shown);
            if p.json() {
                p.json_line(&serde_json::json!({
                    "key": key.as_str(), "status": "corrupt",
                    "expected_sha256": expected, "actual_sha256": actual,
                }))
            } else {
                p.line(format_args!(
                    "CORRUPT       {shown} (recorded sha256 {expected}, stored bytes {actual})"
                ))
            }
        }
        Ok(VerifyStatus::Unverifiable) => {
            t.unverifiable += 1;
            t.name("unverifiable", &shown);
            if p.json() {
                p.json_line(&serde_json::json!({ "key": key.as_str(), "status": "unverifiable" }))
            } else {
                p.line(format_args!("unverifiable  {shown} (no recorded digest)"))
            }
        }
        Err(e) => {
            t.failed += 1;
            t.name("failed", &shown);
            if p.json() {
                p.json_line(&serde_json::json!({
                    "key": key.as_str(), "status": "error",
                    "error": one_line(&e), "kind": e.kind().as_str(),
                }))
            } else {
                p.error(&Report::new(format!("verify {shown}: {}", one_line(&e))));
                Ok(())
            }
        }
    }
}
