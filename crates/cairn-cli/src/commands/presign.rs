//! `cairn presign URL`: a presigned URL on stdout (only the URL, for `$(...)`).

use super::{open_existing, store_addr, Ctx};
use crate::args::PresignArgs;
use crate::error::{usage, Result};
use cairn::backend::s3::admin::{check_expiry, PresignMethod};
use cairn::StoreExt;

pub async fn run(ctx: &Ctx, a: &PresignArgs) -> Result {
    let method: PresignMethod = a.method.parse()?;
    let expires = humantime::parse_duration(&a.expires).map_err(|e| {
        usage(
            format!("--expires {:?}: {e}", a.expires),
            "e.g. --expires 15m, 12h or 7d",
        )
    })?;
    check_expiry(expires)?;
    let addr = store_addr(&a.url, false)?;
    let key = addr.key()?;
    let store = open_existing(ctx, &addr).await?;
    let url = store.presign(&key, method, expires).await?;
    if ctx.printer.json() {
        ctx.printer.json_line(&serde_json::json!({
            "url": url.as_str(), "method": method, "expires_in_secs": expires.as_secs(),
        }))
    } else {
        ctx.printer.line(url)
    }
}
