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
        let word = |b: bool| if b { "enforced" } else { "ignored" };
        if p.json() {
            p.json_line(&serde_json::json!({
                "store": shown, "ok": true, "provider": adm.provider(),
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
