//! `cairn versions ls|restore`: object versions, through the store (keys relative to it).

use super::{open_existing, shown_key, store_addr, Ctx};
use crate::args::{VersionsArgs, VersionsCommand};
use crate::error::Result;
use cairn::StoreExt;
use futures::TryStreamExt;
use serde_json::json;

pub async fn run(ctx: &Ctx, a: &VersionsArgs) -> Result {
    let p = &ctx.printer;
    match &a.command {
        VersionsCommand::Ls { url } => {
            let addr = store_addr(url, true)?;
            let store = open_existing(ctx, &addr).await?;
            let mut list = store.list_versions(&addr.path);
            while let Some(v) = list.try_next().await? {
                if p.json() {
                    p.json_line(&serde_json::to_value(&v).unwrap_or_default())?;
                } else {
                    let when = v
                        .last_modified
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default();
                    let what = if v.delete_marker {
                        "DELETED".to_string()
                    } else {
                        v.size.to_string()
                    };
                    let latest = if v.is_latest { "latest" } else { "" };
                    p.line(format!(
                        "{when}  {what:>12}  {:<34}  {latest:<6}  {}",
                        v.version_id, v.key
                    ))?;
                }
            }
            Ok(())
        }
        VersionsCommand::Restore { url, version } => {
            let addr = store_addr(url, false)?;
            let key = addr.key()?;
            let store = open_existing(ctx, &addr).await?;
            store
                .server("restoring a version")?
                .restore_version(&key, version)
                .await?;
            let shown = shown_key(&addr, key.as_str());
            if p.json() {
                p.json_line(&json!({ "restored": key.as_str(), "version_id": version }))
            } else {
                p.line(format!("Restored {shown} to version {version}"))
            }
        }
    }
}
