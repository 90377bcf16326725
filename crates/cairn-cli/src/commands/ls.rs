//! `cairn ls [URL]`: one level (with `PRE dir/` lines, as the aws cli shows) or, with `-r`,
//! everything below. The prefix is a raw string prefix, as in S3: `ls s3://b/log` shows `log/`
//! as a prefix and `logo.png` as an object.
//!
//! An object stored under a name cairn cannot represent (`a//b`, `x/../y`, `back\slash`) is
//! named on stderr (a `{"unlisted": ...}` line with `--json`) and the command exits 2.

use super::{open_existing, shown_key, store_addr, Ctx};
use crate::args::LsArgs;
use crate::error::{CliError, Report, Result};
use cairn::{ListEntry, ListOptions, ObjectMeta, StoreExt};
use futures::StreamExt;

/// Width of `YYYY-MM-DD HH:MM:SS` plus a size column, so `PRE` lines line up with names.
const LONG_PAD: usize = 19 + 1 + 12;

pub async fn run(ctx: &Ctx, a: &LsArgs) -> Result {
    let addr = store_addr(a.url.as_deref().unwrap_or("local://"), false)?;
    let store = open_existing(ctx, &addr).await?;
    let prefix = addr.path.clone();
    let opts = if a.recursive {
        ListOptions::recursive(prefix.as_str())
    } else {
        ListOptions::shallow(prefix.as_str())
    };
    // One level shows names relative to the prefix's directory; -r shows full keys.
    let cut = if a.recursive {
        0
    } else {
        prefix.rfind('/').map_or(0, |i| i + 1)
    };
    let p = &ctx.printer;
    // Sizes shown (-l, --json) are logical: through compression or encryption a listing has
    // stored sizes, so such entries are completed with a head, 16 at a time, in order.
    let sizes = a.long || p.json();
    let mut entries = store
        .list(opts)
        .map(|e| {
            let store = store.clone();
            async move {
                match e {
                    Ok(ListEntry::Object(m)) if sizes && !m.size_known => {
                        store.resolve_size(m).await.map(ListEntry::Object)
                    }
                    other => other,
                }
            }
        })
        .buffered(16);
    let (mut listed, mut unlisted) = (0u64, 0u64);
    while let Some(entry) = entries.next().await {
        listed += 1;
        match entry? {
            ListEntry::Unlisted { name, reason } => {
                unlisted += 1;
                if p.json() {
                    p.json_line(&serde_json::json!({ "unlisted": name, "reason": reason }))?;
                } else {
                    p.error(
                        &Report::new(format!(
                            "cannot list {}: {reason}",
                            shown_key(&addr, &name).escape_debug()
                        ))
                        .hint(cairn::error::UNREPRESENTABLE_HINT),
                    );
                }
            }
            ListEntry::Prefix(pre) => {
                if p.json() {
                    p.json_line(&serde_json::json!({ "prefix": pre }))?;
                } else if a.long {
                    p.line(format_args!("{:>LONG_PAD$} PRE {}", "", &pre[cut..]))?;
                } else {
                    p.line(format_args!("PRE {}", &pre[cut..]))?;
                }
            }
            ListEntry::Object(m) => {
                if p.json() {
                    p.json_line(&object_json(&m))?;
                } else if a.long {
                    p.line(format_args!(
                        "{} {:>12} {} {}",
                        m.last_modified.format("%Y-%m-%d %H:%M:%S"),
                        m.size,
                        m.etag.as_deref().unwrap_or("-"),
                        &m.key.as_str()[cut..]
                    ))?;
                } else {
                    p.line(&m.key.as_str()[cut..])?;
                }
            }
        }
    }
    if unlisted > 0 {
        if p.json() {
            p.json_line(&serde_json::json!({ "summary": {
                "listed": listed - unlisted, "unlisted": unlisted,
            }}))?;
        }
        return Err(CliError::Partial {
            failed: unlisted,
            total: listed,
            noun: "entries",
        });
    }
    Ok(())
}

fn object_json(m: &ObjectMeta) -> serde_json::Value {
    serde_json::json!({
        "key": m.key.as_str(),
        "size": m.size,
        "last_modified": m.last_modified.to_rfc3339(),
        "etag": m.etag,
    })
}
