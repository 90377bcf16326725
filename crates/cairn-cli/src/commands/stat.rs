//! `cairn stat URL`: size, ETag, last-modified, content type and user metadata of one object.

use super::{open_existing, shown_key, store_addr, Ctx};
use crate::args::StatArgs;
use crate::error::Result;

pub async fn run(ctx: &Ctx, a: &StatArgs) -> Result {
    let addr = store_addr(&a.url, false)?;
    let key = addr.key()?;
    let store = open_existing(ctx, &addr).await?;
    let m = store.head(&key).await?;
    let p = &ctx.printer;
    if p.json() {
        return p.json_line(&serde_json::json!({
            "key": m.key.as_str(),
            "url": shown_key(&addr, key.as_str()),
            "size": m.size,
            "etag": m.etag,
            "last_modified": m.last_modified.to_rfc3339(),
            "content_type": m.content_type,
            "metadata": m.metadata,
            "version": m.version,
        }));
    }
    p.line(format_args!(
        "{:<14} {}",
        "url:",
        shown_key(&addr, key.as_str())
    ))?;
    p.line(format_args!("{:<14} {}", "size:", m.size))?;
    p.line(format_args!(
        "{:<14} {}",
        "etag:",
        m.etag.as_deref().unwrap_or("-")
    ))?;
    p.line(format_args!(
        "{:<14} {}",
        "last modified:",
        m.last_modified.format("%Y-%m-%d %H:%M:%S UTC")
    ))?;
    p.line(format_args!(
        "{:<14} {}",
        "content type:",
        m.content_type.as_deref().unwrap_or("-")
    ))?;
    if let Some(v) = &m.version {
        p.line(format_args!("{:<14} {v}", "version:"))?;
    }
    if m.metadata.is_empty() {
        p.line(format_args!("{:<14} -", "metadata:"))?;
    } else {
        p.line("metadata:")?;
        for (k, v) in &m.metadata {
            p.line(format_args!("  {k}: {v}"))?;
        }
    }
    Ok(())
}
