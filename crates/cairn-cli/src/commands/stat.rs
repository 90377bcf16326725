//! `cairn stat URL`: size (logical and as stored), ETag, last-modified, content type, what the
//! layers recorded (checksum, compression, encryption) and the user's metadata.

use super::{open_existing, shown_key, store_addr, Ctx};
use crate::args::StatArgs;
use crate::error::Result;
use cairn::layer::checksum::MANIFEST_META;
use cairn::layer::encrypt::ENCRYPTION_META;

pub async fn run(ctx: &Ctx, a: &StatArgs) -> Result {
    let addr = store_addr(&a.url, false)?;
    let key = addr.key()?;
    let store = open_existing(ctx, &addr).await?;
    let m = store.head(&key).await?;
    let stored = m.stored_size;
    let sha256 = m.stored_sha256().map(str::to_string);
    let checksum = match (&sha256, m.layer_meta.get(MANIFEST_META)) {
        (Some(_), Some(_)) => "sha256 (multipart manifest)",
        (Some(_), None) => "sha256",
        (None, _) => "none",
    };
    let compression = m.compression().map(str::to_string);
    let encryption = m.layer_meta.get(ENCRYPTION_META).cloned();
    let key_id = m.encryption_key_id().map(str::to_string);
    let user = &m.metadata;
    let p = &ctx.printer;
    if p.json() {
        return p.json_line(&serde_json::json!({
            "key": m.key.as_str(),
            "url": shown_key(&addr, key.as_str()),
            "size": m.size,
            "stored_size": stored,
            "etag": m.etag,
            "last_modified": m.last_modified.to_rfc3339(),
            "content_type": m.content_type,
            "checksum": { "kind": checksum, "sha256": sha256 },
            "compression": compression,
            "encryption": encryption.as_ref().map(|alg| serde_json::json!({
                "algorithm": alg, "key_id": key_id,
            })),
            "metadata": user,
            "version": m.version,
        }));
    }
    let row =
        |name: &str, value: &dyn std::fmt::Display| p.line(format_args!("{name:<14} {value}"));
    row("url:", &shown_key(&addr, key.as_str()))?;
    row("size:", &m.size)?;
    row("stored size:", &stored)?;
    row("etag:", &m.etag.as_deref().unwrap_or("-"))?;
    row(
        "last modified:",
        &m.last_modified.format("%Y-%m-%d %H:%M:%S UTC"),
    )?;
    row("content type:", &m.content_type.as_deref().unwrap_or("-"))?;
    match &sha256 {
        Some(h) => row("checksum:", &format!("{checksum} {h}"))?,
        None => row("checksum:", &"none")?,
    }
    row("compression:", &compression.as_deref().unwrap_or("none"))?;
    match &encryption {
        Some(alg) => row(
            "encryption:",
            &format!("{alg} (key id {})", key_id.as_deref().unwrap_or("?")),
        )?,
        None => row("encryption:", &"none")?,
    }
    if let Some(v) = &m.version {
        row("version:", v)?;
    }
    if user.is_empty() {
        row("metadata:", &"-")?;
    } else {
        p.line("metadata:")?;
        for (k, v) in user {
            p.line(format_args!("  {k}: {v}"))?;
        }
    }
    Ok(())
}
