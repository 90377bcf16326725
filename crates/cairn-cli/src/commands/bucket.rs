//! `cairn mb` / `cairn rb`: make and remove buckets, or the directories of local stores.
//!
//! S3 bucket administration belongs to the library (aws-sdk-s3 behind `cairn::backend::s3`);
//! [`s3_admin`] is the one place the CLI reaches it.

use super::rm::delete_prefix;
use super::{open, BulkReporter, Ctx};
use crate::address::{self, Addr, StoreAddr};
use crate::args::{MbArgs, RbArgs};
use crate::error::{usage, CliError, Report, Result};
use cairn::{Config, Location, StoreExt};
use futures::TryStreamExt;
use std::path::PathBuf;

enum Target {
    S3 { bucket: String },
    Dir(PathBuf),
    Memory,
}

fn target(ctx: &Ctx, raw: &str, cmd: &str) -> Result<(StoreAddr, Target)> {
    let addr = match address::parse(raw, true)? {
        Addr::Store(s) => s,
        _ => {
            return Err(usage(
                format!("{cmd} takes a store URL, not {raw:?}"),
                format!("e.g. cairn {cmd} s3://bucket or cairn {cmd} file:///srv/store"),
            ))
        }
    };
    let parsed = cairn::StoreUrl::parse(&addr.url)?;
    let target = match parsed.location {
        Location::S3 { bucket, .. } => {
            if !addr.path.trim_end_matches('/').is_empty() {
                return Err(usage(
                    format!("{cmd} takes a bucket, not a key: {raw}"),
                    format!("write cairn {cmd} s3://{bucket}"),
                ));
            }
            Target::S3 { bucket }
        }
        Location::Local {
            root: Some(root), ..
        } => Target::Dir(root.join(&addr.path)),
        Location::Local { root: None, .. } => {
            // The same precedence open_with uses: flags > URL > env > config file > default.
            let merged = ctx
                .config
                .clone()
                .or(parsed.options)
                .or(Config::from_env()?)
                .or(Config::from_default_file()?);
            let root = merged
                .root
                .unwrap_or_else(cairn::backend::local::default_root);
            Target::Dir(root.join(&addr.path))
        }
        Location::Memory => Target::Memory,
    };
    Ok((addr, target))
}

fn memory_unsupported(cmd: &str) -> CliError {
    CliError::Fail(Report::new(format!(
        "{cmd}: memory:// stores live only while cairn runs; there is nothing to {}",
        if cmd == "mb" { "make" } else { "remove" }
    )))
}

pub async fn mb(ctx: &Ctx, a: &MbArgs) -> Result {
    let (addr, target) = target(ctx, &a.url, "mb")?;
    match target {
        Target::S3 { bucket } => s3_admin::create_bucket(ctx, &addr, &bucket).await?,
        Target::Dir(dir) => {
            if dir.exists() {
                return Err(CliError::Fail(Report::new(format!(
                    "mb {}: already exists ({})",
                    addr.shown,
                    dir.display()
                ))));
            }
            std::fs::create_dir_all(&dir).map_err(|e| super::copy::fs_err(e, "mb", &dir))?;
        }
        Target::Memory => return Err(memory_unsupported("mb")),
    }
    if ctx.printer.json() {
        ctx.printer
            .json_line(&serde_json::json!({ "created": addr.shown }))?;
    } else {
        ctx.printer.info(format!("Made {}", addr.shown));
    }
    Ok(())
}

pub async fn rb(ctx: &Ctx, a: &RbArgs) -> Result {
    let (addr, target) = target(ctx, &a.url, "rb")?;
    match target {
        Target::S3 { bucket } => s3_admin::delete_bucket(ctx, &addr, &bucket, a.force).await?,
        Target::Dir(dir) => {
            if !dir.is_dir() {
                return Err(CliError::Fail(Report::new(format!(
                    "rb {}: no such directory {}",
                    addr.shown,
                    dir.display()
                ))));
            }
            let store = open(ctx, &addr).await?;
            let prefix = addr.dir_prefix();
            let first = store.list_objects(&prefix).try_next().await?;
            if first.is_some() {
                if !a.force {
                    return Err(CliError::Fail(
                        Report::new(format!("rb {}: not empty", addr.shown))
                            .hint("`cairn rb --force` deletes its objects first"),
                    ));
                }
                let rep = BulkReporter::new(&ctx.printer, "delete");
                let sum = delete_prefix(store.as_ref(), &prefix, &rep).await;
                rep.finish();
                let sum = sum?;
                if sum.failed > 0 {
                    return Err(CliError::Partial {
                        failed: sum.failed,
                        total: sum.total(),
                        noun: "objects",
                    });
                }
            }
            drop(store);
            remove_store_dir(&addr, &dir)?;
        }
        Target::Memory => return Err(memory_unsupported("rb")),
    }
    if ctx.printer.json() {
        ctx.printer
            .json_line(&serde_json::json!({ "removed": addr.shown }))?;
    } else {
        ctx.printer.info(format!("Removed {}", addr.shown));
    }
    Ok(())
}

/// Removes an emptied store directory and cairn's own files in it.
fn remove_store_dir(addr: &StoreAddr, dir: &std::path::Path) -> Result {
    if !dir.exists() {
        return Ok(()); // deleting the last object pruned it
    }
    if addr.path.is_empty() {
        let own = dir.join(cairn::backend::local::RESERVED_DIR);
        if own.is_dir() {
            std::fs::remove_dir_all(&own).map_err(|e| super::copy::fs_err(e, "rb", &own))?;
        }
    }
    std::fs::remove_dir(dir).map_err(|e| {
        CliError::Fail(
            Report::from(super::copy::fs_err(e, "rb", dir))
                .hint("the directory holds files that are not objects (links, bad names); remove them by hand"),
        )
    })
}

/// The bridge to the library's S3 bucket administration (aws-sdk-s3, same config as the store).
mod s3_admin {
    use super::{Ctx, StoreAddr};

    pub async fn create_bucket(ctx: &Ctx, addr: &StoreAddr, _bucket: &str) -> cairn::Result<()> {
        let (admin, _) = cairn::open_admin(&addr.url, ctx.config.clone()).await?;
        admin.create_bucket().await
    }

    pub async fn delete_bucket(
        ctx: &Ctx,
        addr: &StoreAddr,
        _bucket: &str,
        force: bool,
    ) -> cairn::Result<()> {
        let (admin, _) = cairn::open_admin(&addr.url, ctx.config.clone()).await?;
        admin.delete_bucket(force).await
    }
}
