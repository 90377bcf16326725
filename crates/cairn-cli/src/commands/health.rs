//! `cairn health [URL]`: is the store reachable, are the credentials good, may we write? On
//! S3 it also tries both conditional puts on a probe object (deleted again) and says whether
//! the server enforces them, and whether the store's capabilities claim more than that.

use super::{open_existing, store_addr, Ctx};
use crate::args::HealthArgs;
use crate::error::{one_line, Result};
use cairn::backend::s3::admin::ConditionalWrites;
use cairn::ErrorKind;

pub async fn run(ctx: &Ctx, a: &HealthArgs) -> Result {
    let addr = store_addr(a.url.as_deref().unwrap_or("local://"), true)?;
    let store = open_existing(ctx, &addr).await?;
    let shown = store.to_string();
    let r = store.health_check().await;
    let p = &ctx.printer;
    let Err(e) = &r else {
        if !addr.url.starts_with("s3://") {
            if p.json() {
                p.json_line(&serde_json::json!({ "store": shown, "ok": true }))?;
            } else {
                p.line(format_args!("ok: {shown}"))?;
            }
            return Ok(());
        }
        let (adm, _) = cairn::open_admin(&addr.url, ctx.config.clone()).await?;
        let caps = store.capabilities();
        let probed = match adm.probe_conditional_writes(&addr.dir_prefix()).await {
            Ok(w) => Some(w),
            // A read-only key can still be healthy; say what could not be learnt.
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                p.warn(format_args!(
                    "conditional writes not probed (no write permission): {}",
                    one_line(&e)
                ));
                None
            }
            Err(e) => return Err(e.into()),
        };
        let stale = stale_uploads(&*store, &addr.dir_prefix()).await?;
        let word = |b: bool| if b { "enforced" } else { "ignored" };
        if p.json() {
            p.json_line(&serde_json::json!({
                "store": shown, "ok": true, "provider": adm.provider(),
                "stale_uploads": { "count": stale.0, "bytes": stale.1 },
                "if_none_match": probed.map(|w| word(w.if_none_match)),
                "if_match": probed.map(|w| word(w.if_match)),
                "claims": {
                    "conditional_create": caps.conditional_create,
                    "conditional_update": caps.conditional_update,
                    "conditional_update_multipart": caps.conditional_update_multipart,
                },
            }))?;
        } else {
            p.line(format_args!("ok: {shown}"))?;
            if let Some(w) = probed {
                p.line(format_args!(
                    "If-None-Match: {}, If-Match: {} (provider row: {})",
                    word(w.if_none_match),
                    word(w.if_match),
                    adm.provider()
                ))?;
            }
        }
        if let Some(w) = probed {
            warn_overstated(ctx, &w, caps.conditional_create, caps.conditional_update);
        }
        if stale.0 > 0 {
            p.warn(format_args!(
                "{} multipart uploads older than a day hold {} (and bill for it); \
                 `cairn multipart abort --older-than 1d {}` ends them",
                stale.0,
                crate::printer::human_bytes(stale.1),
                addr.shown
            ));
        }
        return Ok(());
    };
    if p.json() {
        p.json_line(&serde_json::json!({
            "store": shown, "ok": false, "error": one_line(e), "kind": e.kind().as_str(),
        }))?;
    }
    Ok(r?)
}

/// A claim the server does not back is a warning: create-only saves would overwrite.
fn warn_overstated(ctx: &Ctx, w: &ConditionalWrites, create: bool, update: bool) {
    for (claimed, enforced, what) in [
        (create, w.if_none_match, "create-only puts (If-None-Match)"),
        (update, w.if_match, "if-match puts (If-Match)"),
    ] {
        if claimed && !enforced {
            ctx.printer.warn(format_args!(
                "the provider row claims {what}, but this server ignores them; \
                 set provider=generic (or the server's own provider)"
            ));
        }
    }
}

/// Multipart uploads under `prefix` started over a day ago: count and bytes so far. A server
/// that does not list uploads has none to report.
async fn stale_uploads(store: &dyn cairn::Store, prefix: &str) -> Result<(u64, u64)> {
    use futures::TryStreamExt;
    let Some(server) = store.server_side() else {
        return Ok((0, 0));
    };
    let now = chrono::Utc::now();
    let day = std::time::Duration::from_secs(24 * 3600);
    let mut list = server.list_uploads(prefix);
    let (mut n, mut bytes) = (0, 0);
    loop {
        match list.try_next().await {
            Ok(Some(u)) if u.older_than(day, now) => {
                n += 1;
                bytes += u.size;
            }
            Ok(Some(_)) => {}
            Ok(None) => return Ok((n, bytes)),
            Err(e) if e.kind() == ErrorKind::Unsupported => return Ok((0, 0)),
            Err(e) => return Err(e.into()),
        }
    }
}
