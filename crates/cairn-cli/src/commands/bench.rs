//! `cairn bench URL` over `cairn::ops::bench`: runs, writes the report (JSON, Markdown), compares
//! with a baseline (exit 1 on a regression) and archives it best effort.

use super::{cairn_store_addr, open, Ctx};
use crate::args::{parse_size, BenchArgs, BenchCommand};
use crate::error::{usage, CliError, Report, Result};
use cairn::archive::{Archive, Filter};
use cairn::ops::bench::{compare, run_bench, BenchOptions, BenchReport};
use cairn::ops::reporter::{Item, Outcome, Reporter};
use indicatif::ProgressBar;

fn sizes(list: &str) -> Result<Vec<u64>> {
    list.split(',')
        .map(|s| {
            parse_size(s).ok_or_else(|| {
                usage(
                    format!("--sizes: {s:?} is not a size"),
                    "write e.g. --sizes 1K,10K,1M",
                )
            })
        })
        .collect()
}

struct Bar(ProgressBar);

impl Reporter for Bar {
    fn on_item_done(&self, item: &Item<'_>, _: &Outcome<'_>) {
        self.0.set_message(item.key.to_string());
        self.0.inc(1);
    }
}

pub async fn run(ctx: &Ctx, a: &BenchArgs) -> Result {
    if let Some(BenchCommand::History(h)) = &a.command {
        return super::bench_history::run(ctx, h).await;
    }
    let url = a
        .url
        .as_deref()
        .expect("clap requires URL without a subcommand");
    let opts = BenchOptions {
        sizes: sizes(&a.sizes)?,
        ops: a.count,
        concurrency: a.concurrency.max(1),
        large_object_size: parse_size(&a.large).ok_or_else(|| {
            usage(
                format!("--large: {:?} is not a size", a.large),
                "write e.g. --large 64M",
            )
        })?,
        ..Default::default()
    };
    // Read the baseline first: a bad one should fail before minutes of measuring.
    let baseline = match &a.baseline {
        None => None,
        Some(b) => Some(load_baseline(ctx, a, b).await?),
    };
    let addr = cairn_store_addr(url)?;
    let store = open(ctx, &addr).await?;
    let bar = Bar(ctx.printer.items_bar("bench phase"));
    let result = run_bench(store.as_ref(), &opts, &bar).await;
    bar.0.finish_and_clear();
    let mut report = result?;
    report.commit = commit(a);
    let p = &ctx.printer;
    if let Some(path) = &a.report {
        write(path, &report.to_json())?;
    }
    if let Some(path) = &a.markdown {
        write(path, &report.to_markdown())?;
    }
    if p.json() {
        p.line(serde_json::to_string(&report).expect("reports serialize"))?;
    } else {
        p.line(report.to_markdown())?;
    }
    if let Some(name) = &a.archive {
        if let Err(e) = archive_save(ctx, a, name, &report).await {
            p.warn(format!(
                "bench report not archived (best effort): {}",
                e.one_line()
            ));
        }
    }
    if let Some(base) = baseline {
        let regressions = compare(&base, &report, a.regress_pct);
        if !regressions.is_empty() {
            for r in &regressions {
                p.error(&Report::new(format!("regression: {r}")));
            }
            return Err(CliError::Fail(
                Report::new(format!(
                    "{} metrics regressed by more than {}% against the baseline",
                    regressions.len(),
                    a.regress_pct
                ))
                .hint("a noisy machine can cause this; re-run, or raise --regress-pct"),
            ));
        }
        p.info(format!(
            "No regression beyond {}% against the baseline",
            a.regress_pct
        ));
    }
    Ok(())
}

/// The commit measured: the flag, the CI's variables, or the current directory's git HEAD.
fn commit(a: &BenchArgs) -> Option<String> {
    if let Some(c) = &a.commit {
        return Some(c.clone());
    }
    for var in ["CAIRN_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA"] {
        if let Some(v) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
            return Some(v);
        }
    }
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let sha = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !sha.is_empty()).then_some(sha)
}

fn write(path: &std::path::Path, text: &str) -> Result {
    std::fs::write(path, text)
        .map_err(|e| Report::new(format!("writing {}: {e}", path.display())).into())
}

async fn archive(ctx: &Ctx, a: &BenchArgs) -> Result<Archive> {
    let addr = cairn_store_addr(&a.archive_store)?;
    let store = open(ctx, &addr).await?;
    Ok(Archive::new(store).with_prefix(&addr.path)?)
}

async fn archive_save(ctx: &Ctx, a: &BenchArgs, name: &str, r: &BenchReport) -> Result {
    let ar = archive(ctx, a).await?;
    let e = ar
        .save(
            name,
            "bench",
            r.to_json().into(),
            Default::default(),
            Some("application/json"),
        )
        .await?;
    ctx.printer
        .info(format!("Archived the report as {}", e.key));
    Ok(())
}

async fn load_baseline(ctx: &Ctx, a: &BenchArgs, spec: &str) -> Result<BenchReport> {
    let text = if let Some(name) = spec.strip_prefix("archive:") {
        let ar = archive(ctx, a).await?;
        let filter = Filter {
            name: Some(name.into()),
            kind: Some("bench".into()),
            ..Default::default()
        };
        let Some(e) = ar.list(&filter).await?.into_iter().next() else {
            return Err(usage(
                format!("no bench report named {name:?} in {}", a.archive_store),
                "save one first with --archive NAME",
            ));
        };
        String::from_utf8_lossy(&ar.load(&e.key).await?).into_owned()
    } else {
        std::fs::read_to_string(spec).map_err(|e| Report::new(format!("--baseline {spec}: {e}")))?
    };
    Ok(BenchReport::from_json(&text)?)
}
