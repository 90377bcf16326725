//! `cairn bench history SOURCE` over `cairn::ops::bench::history`: loads the reports, prints
//! the table (or JSON), names the skipped ones and the regressions, and draws the charts.

use super::{cairn_store_addr, open_existing, Ctx};
use crate::args::BenchHistoryArgs;
use crate::chart;
use crate::error::{usage, CliError, Report, Result};
use cairn::archive::Archive;
use cairn::ops::bench::history::{self, History, HistoryOptions, Row};
use cairn::ops::bench::human_size;

pub async fn run(ctx: &Ctx, a: &BenchHistoryArgs) -> Result {
    // A bad output name fails before anything is read.
    if let Some(p) = &a.plot {
        chart::Format::of(p)?;
    }
    let opts = HistoryOptions {
        regress_pct: a.regress_pct,
        window: a.window.into(),
    };
    let loaded = if let Some(name) = a.source.strip_prefix("archive:") {
        let addr = cairn_store_addr(&a.archive_store)?;
        let ar = Archive::new(open_existing(ctx, &addr).await?).with_prefix(&addr.path)?;
        history::load_archive(&ar, name).await?
    } else {
        let addr = cairn_store_addr(&a.source)?;
        let store = open_existing(ctx, &addr).await?;
        history::load_prefix(store.as_ref(), &addr.path).await?
    };
    let mut h = history::build_with_skipped(loaded, opts);
    // Only the series asked for are shown, charted and judged.
    h.series.retain(|s| {
        (a.op.is_empty() || a.op.contains(&s.op))
            && (a.metric.is_empty() || a.metric.contains(&s.metric))
    });
    let p = &ctx.printer;
    if h.reports.is_empty() {
        for s in &h.skipped {
            p.warn(format!("skipped {}: {}", s.name, s.reason));
        }
        return Err(usage(
            format!("no bench reports in {}", a.source),
            "save some with `cairn bench URL --archive NAME` or `--report FILE`",
        ));
    }
    if let Some(path) = &a.plot {
        chart::write(path, &h)?;
        p.info(format!("Wrote the chart to {}", path.display()));
    }
    if let Some(path) = &a.html {
        std::fs::write(path, chart::html(&h)?)
            .map_err(|e| Report::new(format!("writing {}: {e}", path.display())))?;
        p.info(format!("Wrote the page to {}", path.display()));
    }
    let regressions = h.regressions();
    let latest = h.latest_regressions().len();
    if p.json() {
        p.json_line(&serde_json::json!({
            "reports": h.reports,
            "rows": h.rows(),
            "skipped": h.skipped,
            "regressions": regressions,
            "latest_regressions": latest,
        }))?;
    } else {
        print_table(ctx, &h)?;
        for s in &h.skipped {
            p.warn(format!("skipped {}: {}", s.name, s.reason));
        }
        for r in &regressions {
            p.error(&Report::new(format!("regression: {}", describe(r))));
        }
        p.info(format!(
            "{} reports, {} series, {} regressions beyond {}% ({} in the newest), {} skipped",
            h.reports.len(),
            h.series.len(),
            regressions.len(),
            a.regress_pct,
            latest,
            h.skipped.len()
        ));
    }
    let unreadable = h.skipped.iter().filter(|s| s.unreadable).count() as u64;
    if latest > 0 {
        return Err(CliError::Fail(
            Report::new(format!(
                "the newest report has {latest} metrics worse than the one before by more than {}%",
                a.regress_pct
            ))
            .hint("a noisy machine can cause this; re-run, or raise --regress-pct"),
        ));
    }
    if unreadable > 0 {
        return Err(CliError::Partial {
            failed: unreadable,
            total: unreadable + h.reports.len() as u64,
            noun: "reports",
        });
    }
    Ok(())
}

/// `put 1KiB ops/s at 2026-01-04 12:00 (abc1234): 990.000 -> 700.000 (-29.3%)`
fn describe(r: &Row) -> String {
    let commit = r
        .commit
        .as_deref()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    let prev = r
        .change_pct
        .map_or(f64::NAN, |c| r.value / (1.0 + c / 100.0));
    format!(
        "{} {} {} at {}{commit}: {prev:.3} -> {:.3} ({:+.1}%) in {}",
        r.op,
        human_size(r.size),
        history::unit(&r.metric),
        r.timestamp.format("%Y-%m-%d %H:%M"),
        r.value,
        r.change_pct.unwrap_or(0.0),
        r.report
    )
}

/// One block per series: a title line, then one line per report.
fn print_table(ctx: &Ctx, h: &History) -> Result {
    let p = &ctx.printer;
    let w = h.options.window;
    for s in &h.series {
        p.line(format!("{}:", s.title()))?;
        p.line(format!(
            "  {:<16}  {:<10}  {:>12}  {:>8}  {:>12}",
            "when",
            "commit",
            "value",
            "change",
            format!("median({w})")
        ))?;
        for pt in &s.points {
            let r = &h.reports[pt.report];
            let change = pt
                .change_pct
                .map(|c| format!("{c:+.1}%"))
                .unwrap_or_else(|| "-".into());
            p.line(format!(
                "  {:<16}  {:<10}  {:>12.3}  {:>8}  {:>12.3}{}",
                r.timestamp.format("%Y-%m-%d %H:%M"),
                r.commit.as_deref().map_or("-", |c| &c[..c.len().min(10)]),
                pt.value,
                change,
                pt.median,
                if pt.regression { "  REGRESSION" } else { "" }
            ))?;
        }
    }
    Ok(())
}
