//! `cairn tier status|flush|evict|verify tier+URL`: the hot tier of a tiered store, and the
//! flush every command that wrote through a write-back tier ends with ([`settle`]).

use super::{store_addr, Ctx};
use crate::args::{TierArgs, TierCommand};
use crate::error::{usage, CliError, Report, Result};
use crate::printer::human_bytes;
use cairn::layer::tier::WriteMode;
use cairn::Tiered;

pub async fn run(ctx: &Ctx, a: &TierArgs) -> Result {
    match &a.command {
        TierCommand::Status { url } => status(ctx, url).await,
        TierCommand::Flush { url } => {
            let (t, _) = open(ctx, url, None).await?;
            let r = flush(ctx, &t).await;
            t.tier.save_stats();
            r
        }
        TierCommand::Evict { url, prefix } => evict(ctx, url, prefix.as_deref()).await,
        TierCommand::Verify { url, prefix } => verify(ctx, url, prefix.as_deref()).await,
    }
}

/// Opens the tier of `url` (which must be a tier+URL), and the tier's prefix for the path
/// the address names followed by `under`.
async fn open(ctx: &Ctx, url: &str, under: Option<&str>) -> Result<(Tiered, String)> {
    let addr = store_addr(url, true)?;
    if cairn::tier_url(&addr.url).is_none() {
        return Err(usage(
            format!("{url:?} is not a tiered store"),
            format!("write tier+{url}?hot=DIR, with the hot directory the store uses"),
        ));
    }
    let t = cairn::open_tier(&addr.url, ctx.config.clone()).await?;
    let path = match under {
        Some(u) => join(&addr.path, u.trim_start_matches('/')),
        None => addr.path.clone(),
    };
    cairn::key::validate_prefix(&path)?;
    let prefix = t.stored_prefix(&path);
    Ok((t, prefix))
}

/// `path` under the address's own path.
fn join(prefix: &str, path: &str) -> String {
    match (prefix.trim_end_matches('/'), path) {
        ("", p) => p.to_string(),
        (pre, "") => format!("{pre}/"),
        (pre, p) => format!("{pre}/{p}"),
    }
}

async fn status(ctx: &Ctx, url: &str) -> Result {
    let (t, _) = open(ctx, url, None).await?;
    let (tier, p) = (&t.tier, &ctx.printer);
    let s = tier.stats();
    let policy = tier.policy();
    let mode = match policy.mode {
        WriteMode::WriteThrough => "write-through",
        WriteMode::WriteBack => "write-back",
    };
    if p.json() {
        let mut v = serde_json::to_value(&s).expect("stats serialize");
        v["store"] = tier.to_string().into();
        v["hot_dir"] = tier.hot_dir().display().to_string().into();
        v["mode"] = mode.into();
        v["hot_max"] = policy.hot_max.into();
        v["hot_max_entries"] = policy.hot_max_entries.into();
        v["dirty_max"] = policy.dirty_max.into();
        return p.json_line(&v);
    }
    p.line(format_args!(
        "{tier} ({mode}, hot {})",
        tier.hot_dir().display()
    ))?;
    p.line(format_args!(
        "hot:     {} objects, {} (hot_max {})",
        s.entries,
        human_bytes(s.hot_bytes),
        human_bytes(policy.hot_max)
    ))?;
    p.line(format_args!(
        "dirty:   {} objects, {} (dirty_max {}), oldest {:.1}s",
        s.dirty_entries,
        human_bytes(s.dirty_bytes),
        human_bytes(policy.dirty_max),
        s.flush_lag_secs
    ))?;
    p.line(format_args!(
        "reads:   {} hits, {} misses, hit rate {:.1}%",
        s.hits,
        s.misses,
        s.hit_rate * 100.0
    ))?;
    p.line(format_args!(
        "moves:   {} fills, {} evictions, {} flushes, {} errors",
        s.fills, s.evictions, s.flushes, s.errors
    ))?;
    if let Some(e) = &s.last_error {
        p.line(format_args!("last flush error: {e}"))?;
    }
    Ok(())
}

/// Uploads what the tier owes cold, with progress; the error says where the writes wait.
async fn flush(ctx: &Ctx, t: &Tiered) -> Result {
    let before = t.tier.stats();
    let progress = ctx.printer.progress("flush");
    progress.discovered(before.dirty_entries, before.dirty_bytes);
    let r = t
        .tier
        .flush_reported(|n| {
            progress.bytes(n);
            progress.done();
        })
        .await;
    progress.finish();
    let after = t.tier.stats();
    let flushed = after.flushes - before.flushes;
    match r {
        Ok(()) => {
            let p = &ctx.printer;
            if p.json() {
                p.json_line(&serde_json::json!({
                    "store": t.tier.to_string(), "flushed": flushed, "dirty_entries": 0,
                }))
            } else {
                p.info(format!("flushed {flushed} objects to {}", t.tier.cold()));
                Ok(())
            }
        }
        Err(e) => Err(CliError::Fail(Report::from(e).hint(format!(
            "{} writes ({}) wait in the hot journal under {}; nothing is lost. \
                     Run `cairn tier flush` once the store is back",
            after.dirty_entries,
            human_bytes(after.dirty_bytes),
            t.tier.hot_dir().display()
        )))),
    }
}

/// Flushes every write-back tier a command wrote through, before it exits.
pub async fn settle(ctx: &Ctx) -> Result {
    let tiers: Vec<Tiered> = std::mem::take(&mut *ctx.tiers.lock().expect("tiers"));
    let mut result = Ok(());
    for t in tiers {
        // Hot copies filled after a reply are written before the exit.
        t.tier.settle().await;
        if result.is_ok() && t.tier.stats().dirty_entries > 0 {
            result = flush(ctx, &t).await;
        }
        // The next `cairn tier status` shows this run's hits and errors.
        t.tier.save_stats();
    }
    result
}

async fn evict(ctx: &Ctx, url: &str, under: Option<&str>) -> Result {
    let (t, prefix) = open(ctx, url, under).await?;
    let before = t.tier.stats();
    let n = t.tier.evict(&prefix).await?;
    t.tier.save_stats();
    let after = t.tier.stats();
    let p = &ctx.printer;
    let freed = before.hot_bytes.saturating_sub(after.hot_bytes);
    if p.json() {
        p.json_line(&serde_json::json!({
            "prefix": prefix, "evicted": n, "bytes": freed,
            "dirty_kept": after.dirty_entries,
        }))
    } else {
        p.info(format!(
            "evicted {n} hot copies ({}) under {:?}; {} dirty objects stay until flushed",
            human_bytes(freed),
            prefix,
            after.dirty_entries
        ));
        Ok(())
    }
}

async fn verify(ctx: &Ctx, url: &str, under: Option<&str>) -> Result {
    let (t, prefix) = open(ctx, url, under).await?;
    let v = t.tier.verify_under(&prefix).await?;
    let p = &ctx.printer;
    for (key, problem) in &v.problems {
        if p.json() {
            p.json_line(&serde_json::json!({ "key": key, "problem": problem }))?;
        } else {
            p.line(format_args!("DIFFERS  {key}: {problem}"))?;
        }
    }
    let bad = v.problems.len() as u64;
    if p.json() {
        p.json_line(&serde_json::json!({ "summary": {
            "checked": v.checked, "ok": v.checked - bad, "differ": bad,
        }}))?;
    } else {
        p.info(format!(
            "{} hot copies checked: {} ok, {bad} differ from the cold store",
            v.checked,
            v.checked - bad
        ));
        if bad > 0 {
            p.info(format!(
                "the next read refetches a stale copy; `cairn tier evict {url}` drops them now"
            ));
        }
    }
    if bad > 0 {
        return Err(CliError::Partial {
            failed: bad,
            total: v.checked,
            noun: "hot copies",
        });
    }
    Ok(())
}
