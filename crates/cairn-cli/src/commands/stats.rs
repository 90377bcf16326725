//! `cairn stats URL`: a `du` for stores, from one streamed listing.

use super::{open_existing, shown_key, store_addr, Ctx};
use crate::args::StatsArgs;
use crate::error::{CliError, Result};
use crate::printer::human_bytes;
use crate::progress::Progress;
use cairn::ops::Reporter;
use cairn::StoreExt;

/// Each object the listing counts moves the progress on by one object and its bytes.
struct Counted<'a>(&'a Progress);

impl Reporter for Counted<'_> {
    fn on_discovered(&self, _objects: u64, bytes: u64) {
        self.0.bytes(bytes);
        self.0.done();
    }
}

pub async fn run(ctx: &Ctx, a: &StatsArgs) -> Result {
    let addr = store_addr(&a.url, true)?;
    let store = open_existing(ctx, &addr).await?;
    let prefix = addr.dir_prefix();
    let progress = ctx.printer.progress("stats");
    let s = store
        .stats_reported(&prefix, a.depth, &Counted(&progress))
        .await;
    progress.finish();
    let s = s?;
    let p = &ctx.printer;
    if p.json() {
        p.json_line(&serde_json::json!({ "prefix": shown_key(&addr, &prefix), "stats": s }))?;
    } else {
        let row = |name: &str, t: &cairn::stats::Totals| {
            format!(
                "{:>10} objects  {:>10}  {name}",
                t.objects,
                human_bytes(t.bytes)
            )
        };
        p.line(row(
            &format!("total {}", shown_key(&addr, &prefix)),
            &s.total,
        ))?;
        for (class, t) in &s.by_class {
            p.line(row(&format!("class {class}"), t))?;
        }
        for (group, t) in &s.by_prefix {
            p.line(row(
                if group.is_empty() {
                    "(top level)"
                } else {
                    group
                },
                t,
            ))?;
        }
    }
    if s.unlisted > 0 {
        p.warn(format!(
            "{} entries cairn cannot name as keys were counted apart",
            s.unlisted
        ));
        return Err(CliError::Partial {
            failed: s.unlisted,
            total: s.total.objects + s.unlisted,
            noun: "entries",
        });
    }
    Ok(())
}
