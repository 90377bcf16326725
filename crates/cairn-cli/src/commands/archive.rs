//! `cairn archive save|ls|latest|get|verify|prune` over `cairn::archive::Archive`. The store
//! comes from `--store URL` (default `local://archive`); the URL's path is the archive prefix.

use super::{cairn_store_addr, open, Ctx};
use crate::args::{
    ArchiveArgs, ArchiveCommand, ArchiveGetArgs, ArchiveLsArgs, ArchivePruneArgs, ArchiveSaveArgs,
};
use crate::error::{one_line, usage, CliError, Report, Result};
use cairn::archive::{Archive, Entry, Filter, Prune, Verified};
use cairn::Key;
use chrono::{DateTime, Utc};
use std::path::Path;

pub async fn run(ctx: &Ctx, a: &ArchiveArgs) -> Result {
    match &a.command {
        ArchiveCommand::Save(s) if s.best_effort => {
            // Best effort (use case 000): a failure warns on stderr, stdout and the exit code
            // stay as if nothing had been asked.
            if let Err(e) = save(ctx, a, s).await {
                let what = e.one_line();
                ctx.printer
                    .warn(format!("archive save skipped (best effort): {what}"));
            }
            Ok(())
        }
        ArchiveCommand::Save(s) => save(ctx, a, s).await,
        ArchiveCommand::Ls(l) => ls(ctx, &open_archive(ctx, a).await?, l).await,
        ArchiveCommand::Latest(l) => {
            let ar = open_archive(ctx, a).await?;
            let Some(e) = ar.latest(&l.name, l.kind.as_deref()).await? else {
                return Err(usage(
                    format!("no documents named {:?} in {}", l.name, a.store),
                    "check the name with `cairn archive ls`",
                ));
            };
            print_entry(ctx, &e)
        }
        ArchiveCommand::Get(g) => get(ctx, &open_archive(ctx, a).await?, g).await,
        ArchiveCommand::Verify(v) => {
            let ar = open_archive(ctx, a).await?;
            verify(ctx, &ar, v.name.clone()).await
        }
        ArchiveCommand::Prune(p) => prune(ctx, &open_archive(ctx, a).await?, p).await,
    }
}

async fn open_archive(ctx: &Ctx, a: &ArchiveArgs) -> Result<Archive> {
    let addr = cairn_store_addr(&a.store)?;
    let store = open(ctx, &addr).await?;
    let mut prefix = addr.path.trim_matches('/').to_string();
    if let Some(p) = a.prefix.as_deref().map(|p| p.trim_matches('/')) {
        if !p.is_empty() {
            prefix = if prefix.is_empty() {
                p.to_string()
            } else {
                format!("{prefix}/{p}")
            };
        }
    }
    let mut ar = Archive::new(store).with_prefix(&prefix)?;
    if let Some(t) = &a.template {
        ar = ar.with_template(t)?;
    }
    Ok(ar)
}

async fn save(ctx: &Ctx, a: &ArchiveArgs, s: &ArchiveSaveArgs) -> Result {
    let metadata = super::cp::parse_meta(&s.meta)?;
    let (data, guessed) = if s.file == "-" {
        use tokio::io::AsyncReadExt;
        let mut buf = Vec::new();
        tokio::io::stdin()
            .read_to_end(&mut buf)
            .await
            .map_err(|e| Report::new(format!("reading stdin: {e}")))?;
        (buf, None)
    } else {
        let path = Path::new(&s.file);
        let buf = tokio::fs::read(path)
            .await
            .map_err(|e| Report::new(format!("{}: {e}", s.file)))?;
        (buf, super::copy::guess_content_type(path))
    };
    let ar = open_archive(ctx, a).await?;
    let ct = s.content_type.as_deref().or(guessed);
    let e = ar.save(&s.name, &s.kind, data.into(), metadata, ct).await?;
    print_entry(ctx, &e)
}

fn print_entry(ctx: &Ctx, e: &Entry) -> Result {
    let p = &ctx.printer;
    if p.json() {
        p.json_line(&serde_json::to_value(e).expect("entries serialize"))
    } else {
        p.line(e.key.as_str())
    }
}

fn time(flag: &str, v: &Option<String>) -> Result<Option<DateTime<Utc>>> {
    v.as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    usage(
                        format!("{flag} {s:?}: {e}"),
                        "write e.g. 2026-11-01T00:00:00Z",
                    )
                })
        })
        .transpose()
}

async fn ls(ctx: &Ctx, ar: &Archive, l: &ArchiveLsArgs) -> Result {
    let filter = Filter {
        name: l.name.clone(),
        kind: l.kind.clone(),
        since: time("--since", &l.since)?,
        until: time("--until", &l.until)?,
        metadata: super::cp::parse_meta(&l.meta)?,
    };
    let p = &ctx.printer;
    for e in ar.list(&filter).await? {
        if p.json() {
            print_entry(ctx, &e)?;
        } else {
            p.line(format_args!(
                "{} {:>12} {:<20} {:<12} {}",
                e.timestamp.format("%Y-%m-%d %H:%M:%S"),
                e.size,
                e.name,
                e.kind,
                e.key
            ))?;
        }
    }
    Ok(())
}

async fn get(ctx: &Ctx, ar: &Archive, g: &ArchiveGetArgs) -> Result {
    let key = Key::new(g.key.as_str())?;
    match g.output.as_deref() {
        None | Some("-") => ctx.printer.bytes(&ar.load(&key).await?),
        Some(path) => {
            let n = ar.restore(&key, Path::new(path)).await?;
            ctx.printer
                .info(format!("Wrote {path} ({})", crate::printer::human_bytes(n)));
            Ok(())
        }
    }
}

async fn verify(ctx: &Ctx, ar: &Archive, name: Option<String>) -> Result {
    let p = &ctx.printer;
    let entries = ar
        .list(&Filter {
            name,
            ..Default::default()
        })
        .await?;
    let (mut bad, total) = (0u64, entries.len() as u64);
    for e in entries {
        let status = match ar.verify(&e.key).await {
            Ok(Verified::Ok) => "ok",
            Ok(Verified::Corrupt) => {
                bad += 1;
                "corrupt"
            }
            Ok(Verified::Unverifiable) => "unverifiable",
            Err(err) => {
                bad += 1;
                p.error(&Report::new(format!(
                    "verify {}: {}",
                    e.key,
                    one_line(&err)
                )));
                continue;
            }
        };
        if p.json() {
            p.json_line(&serde_json::json!({ "key": e.key.as_str(), "status": status }))?;
        } else {
            p.line(format_args!("{status:<13} {}", e.key))?;
        }
    }
    p.info(format!("{total} documents, {bad} corrupt or unreadable"));
    if bad > 0 {
        return Err(CliError::Partial {
            failed: bad,
            total,
            noun: "documents",
        });
    }
    Ok(())
}

async fn prune(ctx: &Ctx, ar: &Archive, a: &ArchivePruneArgs) -> Result {
    let older_than = a
        .older_than
        .as_deref()
        .map(|s| {
            humantime::parse_duration(s)
                .map_err(|e| usage(format!("--older-than {s:?}: {e}"), "write e.g. 30d or 12h"))
        })
        .transpose()?;
    let policy = Prune {
        keep_last: a.keep,
        older_than,
        dry_run: a.dry_run,
    };
    let filter = Filter {
        name: a.name.clone(),
        ..Default::default()
    };
    let gone = ar.prune(&filter, &policy).await?;
    let p = &ctx.printer;
    for e in &gone {
        if p.json() {
            p.json_line(&serde_json::json!({ "deleted": e.key.as_str(), "dry_run": a.dry_run }))?;
        } else if a.dry_run {
            p.line(format_args!("(dry run) delete {}", e.key))?;
        } else {
            p.line(format_args!("delete {}", e.key))?;
        }
    }
    let verb = if a.dry_run { "Would delete" } else { "Deleted" };
    p.info(format!("{verb} {} documents", gone.len()));
    Ok(())
}
