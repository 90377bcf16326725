//! `cairn health [URL]`: is the store reachable, are the credentials good, may we write?

use super::{open_existing, store_addr, Ctx};
use crate::args::HealthArgs;
use crate::error::{one_line, Result};

pub async fn run(ctx: &Ctx, a: &HealthArgs) -> Result {
    let addr = store_addr(a.url.as_deref().unwrap_or("local://"), true)?;
    let store = open_existing(ctx, &addr).await?;
    let shown = store.to_string();
    let r = store.health_check().await;
    if ctx.printer.json() {
        ctx.printer.json_line(&match &r {
            Ok(()) => serde_json::json!({ "store": shown, "ok": true }),
            Err(e) => serde_json::json!({
                "store": shown, "ok": false, "error": one_line(e), "kind": e.kind().as_str(),
            }),
        })?;
    } else if r.is_ok() {
        ctx.printer.line(format_args!("ok: {shown}"))?;
    }
    Ok(r?)
}
