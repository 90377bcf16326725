//! `cairn multipart ls|abort`: unfinished multipart uploads, which hold (and bill) storage.

use super::{open_existing, store_addr, Ctx};
use crate::args::{MultipartArgs, MultipartCommand};
use crate::error::{usage, CliError, Result};
use crate::printer::human_bytes;
use cairn::StoreExt;
use futures::TryStreamExt;
use serde_json::json;

fn age(u: &cairn::backend::s3::admin::Upload, now: chrono::DateTime<chrono::Utc>) -> String {
    match u.initiated {
        Some(t) => humantime::format_duration(std::time::Duration::from_secs(
            (now - t).num_seconds().max(0) as u64,
        ))
        .to_string(),
        None => "?".into(),
    }
}

pub async fn run(ctx: &Ctx, a: &MultipartArgs) -> Result {
    let p = &ctx.printer;
    let now = chrono::Utc::now();
    let (url, older, dry) = match &a.command {
        MultipartCommand::Ls { url } => (url, None, true),
        MultipartCommand::Abort {
            url,
            older_than,
            dry_run,
        } => {
            let d = humantime::parse_duration(older_than).map_err(|e| {
                usage(
                    format!("--older-than {older_than:?}: {e}"),
                    "e.g. --older-than 1d, 12h or 0s",
                )
            })?;
            (url, Some(d), *dry_run)
        }
    };
    let addr = store_addr(url, true)?;
    let store = open_existing(ctx, &addr).await?;
    let server = store.server("listing multipart uploads")?;
    let mut uploads = server.list_uploads(&addr.path);
    let (mut listed, mut aborted, mut failed) = (0u64, 0u64, 0u64);
    let progress = p.progress(if older.is_some() {
        "abort"
    } else {
        "multipart"
    });
    while let Some(u) = uploads.try_next().await? {
        if older.is_some_and(|d| !u.older_than(d, now)) {
            continue;
        }
        listed += 1;
        let outcome = if older.is_none() {
            "open"
        } else if dry {
            "would abort"
        } else {
            match server.abort_upload(&u.key, &u.upload_id).await {
                Ok(()) => {
                    aborted += 1;
                    progress.bytes(u.size);
                    progress.done();
                    "aborted"
                }
                Err(e) => {
                    failed += 1;
                    progress.failed();
                    p.error(&crate::error::Report::from(e));
                    "failed"
                }
            }
        };
        if matches!(outcome, "open" | "would abort") {
            progress.done();
        }
        if p.json() {
            p.json_line(&json!({ "upload": u, "outcome": outcome, "age_secs": u.initiated.map(|t| (now - t).num_seconds()) }))?;
        } else {
            p.line(format!(
                "{outcome:<11}  {:>10}  {:>4} parts  {:>9}  {}  {}",
                age(&u, now),
                u.parts,
                human_bytes(u.size),
                u.upload_id,
                u.key
            ))?;
        }
    }
    progress.finish();
    if p.json() {
        p.json_line(
            &json!({ "summary": { "uploads": listed, "aborted": aborted, "failed": failed } }),
        )?;
    } else if older.is_some() {
        p.info(format!(
            "{listed} uploads matched; {aborted} aborted{}",
            if dry { " (dry run)" } else { "" }
        ));
    } else {
        p.info(format!("{listed} open uploads"));
    }
    if failed > 0 {
        return Err(CliError::Partial {
            failed,
            total: listed,
            noun: "uploads",
        });
    }
    Ok(())
}
