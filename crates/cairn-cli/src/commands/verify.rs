//! `cairn verify URL|PREFIX`: reads objects as stored and checks them against their recorded
//! SHA-256 (`cairn::layer::checksum::verify`). Exit 2 if any is corrupt or unreadable.

use super::{open_existing, shown_key, store_addr, Ctx};
use crate::args::VerifyArgs;
use crate::error::{one_line, CliError, Report, Result};
use cairn::layer::checksum::{self, VerifyStatus, MANIFEST_PREFIX};
use cairn::{Key, Store, StoreExt};
use futures::StreamExt;

#[derive(Default)]
struct Totals {
    ok: u64,
    corrupt: u64,
    unverifiable: u64,
    failed: u64,
}

pub async fn run(ctx: &Ctx, a: &VerifyArgs) -> Result {
    let addr = store_addr(&a.url, false)?;
    let store = open_existing(ctx, &addr).await?;
    let p = &ctx.printer;
    let mut t = Totals::default();
    let whole_prefix = addr.into || addr.path.is_empty() || addr.path.ends_with('/');
    if !whole_prefix {
        let key = addr.key()?;
        // A missing object is an error of the command, not a line of its report.
        store.head(&key).await?;
        check(ctx, &addr, store.as_ref(), &key, &mut t).await?;
    } else {
        let prefix = addr.path.clone();
        let bar = p.items_bar("verify");
        let mut list = store.list_objects(&prefix);
        while let Some(m) = list.next().await {
            let m = m?;
            // Manifests are the checksum layer's bookkeeping, not user objects.
            if m.key.as_str().starts_with(MANIFEST_PREFIX) {
                continue;
            }
            check(ctx, &addr, store.as_ref(), &m.key, &mut t).await?;
            bar.inc(1);
        }
        bar.finish_and_clear();
    }
    let total = t.ok + t.corrupt + t.unverifiable + t.failed;
    if p.json() {
        p.json_line(&serde_json::json!({ "summary": {
            "ok": t.ok, "corrupt": t.corrupt, "unverifiable": t.unverifiable,
            "failed": t.failed, "total": total,
        }}))?;
    } else {
        p.info(format!(
            "{total} objects: {} ok, {} corrupt, {} unverifiable, {} failed",
            t.ok, t.corrupt, t.unverifiable, t.failed
        ));
    }
    let bad = t.corrupt + t.failed;
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
            if p.json() {
                p.json_line(&serde_json::json!({ "key": key.as_str(), "status": "unverifiable" }))
            } else {
                p.line(format_args!("unverifiable  {shown} (no recorded digest)"))
            }
        }
        Err(e) => {
            t.failed += 1;
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
