//! One module per command, plus what they share.

pub mod archive;
pub mod bench;
pub mod bench_history;
pub mod bucket;
pub mod bucket_settings;
pub mod cat;
pub mod copy;
pub mod cp;
pub mod health;
pub mod ls;
pub mod multipart;
pub mod presign;
pub mod rm;
#[cfg(feature = "serve")]
pub mod serve;
pub mod shell;
pub mod stat;
pub mod stats;
pub mod sync;
pub mod tier;
pub mod verify;
pub mod versions;

use crate::address::{self, Addr, StoreAddr};
use crate::args::Command;
use crate::error::{one_line, usage, CliError, Report, Result};
use crate::printer::Printer;
use crate::progress::Progress;
use cairn::DynStore;
use futures::future::{BoxFuture, FutureExt};
use std::sync::Mutex;

/// What every command gets: the printer and the store options from the global flags.
pub struct Ctx {
    pub printer: Printer,
    pub config: cairn::Config,
    /// The tiered stores the command opened, flushed before it exits ([`tier::settle`]).
    pub tiers: Mutex<Vec<cairn::Tiered>>,
}

/// Runs one command. Each arm is boxed as `Send` where its lifetimes are concrete, so the
/// whole can be spawned onto a worker (rustc cannot prove `Send` for some stream
/// combinators over borrowed arguments once the lifetimes are erased).
pub fn dispatch<'a>(ctx: &'a Ctx, cmd: &'a Command) -> BoxFuture<'a, Result> {
    match cmd {
        Command::Cp(a) => cp::run(ctx, a).boxed(),
        Command::Ls(a) => ls::run(ctx, a).boxed(),
        Command::Cat(a) => cat::run(ctx, a).boxed(),
        Command::Stat(a) => stat::run(ctx, a).boxed(),
        Command::Rm(a) => rm::run(ctx, a).boxed(),
        Command::Mb(a) => bucket::mb(ctx, a).boxed(),
        Command::Rb(a) => bucket::rb(ctx, a).boxed(),
        Command::Health(a) => health::run(ctx, a).boxed(),
        Command::Verify(a) => verify::run(ctx, a).boxed(),
        Command::Sync(a) => sync::run(ctx, a).boxed(),
        Command::Archive(a) => archive::run(ctx, a).boxed(),
        Command::Bench(a) => bench::run(ctx, a).boxed(),
        Command::Bucket(a) => bucket_settings::bucket(ctx, a).boxed(),
        Command::Setup(a) => bucket_settings::setup(ctx, a).boxed(),
        Command::Versions(a) => versions::run(ctx, a).boxed(),
        Command::Presign(a) => presign::run(ctx, a).boxed(),
        Command::Multipart(a) => multipart::run(ctx, a).boxed(),
        Command::Stats(a) => stats::run(ctx, a).boxed(),
        Command::Tier(a) => tier::run(ctx, a).boxed(),
        Command::Completions(a) => shell::completions(ctx, a).boxed(),
        Command::Man(a) => shell::man(ctx, a).boxed(),
        // Runs from run.rs, outside the cancel-on-signal wrapper: it shuts down gracefully.
        #[cfg(feature = "serve")]
        Command::Serve(a) => serve::run(ctx, a).boxed(),
    }
}

/// An address that must name something in a store; plain paths become `file://` stores.
pub fn store_addr(raw: &str, want_dir: bool) -> Result<StoreAddr> {
    match address::parse(raw, want_dir)? {
        Addr::Store(s) => Ok(s),
        Addr::Fs(p) => address::fs_as_store(&p, want_dir),
        Addr::Stdio => Err(usage(
            "`-` (stdin/stdout) only works with cp",
            "give a URL or a path",
        )),
    }
}

/// An address that names a store for cairn's own records (`archive --store`, `bench`): a
/// plain path there is a `file://` store, with checksums and metadata, since an archive keeps
/// both; it is never the user's data tree.
pub fn cairn_store_addr(raw: &str) -> Result<StoreAddr> {
    let mut addr = store_addr(raw, true)?;
    addr.plain = false;
    Ok(addr)
}

/// Opens the store of an address. A plain path is the user's directory, never a layered
/// store: files hold the logical bytes, and no `.cairn/` folder or sidecar is written.
pub async fn open(ctx: &Ctx, addr: &StoreAddr) -> Result<DynStore> {
    if addr.plain {
        if let Some(root) = file_root(&addr.url) {
            let dir = cairn::backend::dir::PlainDirStore::new(root)?;
            return Ok(std::sync::Arc::new(dir));
        }
    }
    if cairn::tier_url(&addr.url).is_some() {
        let t = cairn::open_tier(&addr.url, ctx.config.clone()).await?;
        let store = t.store.clone();
        ctx.tiers.lock().expect("tiers").push(t);
        return Ok(store);
    }
    Ok(cairn::open_with(&addr.url, ctx.config.clone()).await?)
}

/// Opens the store of an address that must already exist: a `file://` root is never created
/// by a command that only reads or deletes.
pub async fn open_existing(ctx: &Ctx, addr: &StoreAddr) -> Result<DynStore> {
    if let Some(root) = file_root(&addr.url) {
        if !root.is_dir() {
            return Err(CliError::Fail(
                Report::new(format!(
                    "{}: no such directory {}",
                    addr.shown,
                    root.display()
                ))
                .hint("check the path; `cairn mb file:///path` creates a store directory"),
            ));
        }
    }
    open(ctx, addr).await
}

/// The directory of a `file://` store URL.
pub fn file_root(url: &str) -> Option<std::path::PathBuf> {
    match cairn::StoreUrl::parse(url).ok()?.location {
        cairn::Location::Local {
            root: Some(root), ..
        } => Some(root),
        _ => None,
    }
}

/// How an object of `addr`'s store is shown: `s3://bucket/key`, `local://key`, ...
pub fn shown_key(addr: &StoreAddr, key: &str) -> String {
    let base = addr.url.split('?').next().unwrap_or(&addr.url);
    if base.ends_with("://") {
        format!("{base}{key}")
    } else {
        format!("{}/{key}", base.trim_end_matches('/'))
    }
}

/// The CLI side of a bulk operation: progress (bars or timed lines), per-item JSON lines,
/// and the failures listed at the end.
pub struct BulkReporter<'a> {
    printer: &'a Printer,
    progress: Progress,
    verb: &'static str,
    failures: Mutex<Vec<String>>,
    /// Objects copied unchecked (no recorded SHA-256), named at the end.
    unverified: Mutex<Vec<String>>,
}

/// Failures listed one per line at the end of a bulk command; the rest are counted.
const MAX_LISTED_FAILURES: usize = 50;

impl<'a> BulkReporter<'a> {
    pub fn new(printer: &'a Printer, verb: &'static str) -> Self {
        BulkReporter {
            printer,
            progress: printer.progress(verb),
            verb,
            failures: Mutex::new(Vec::new()),
            unverified: Mutex::new(Vec::new()),
        }
    }

    /// Ends the progress without printing the failures: the command ends with one error.
    pub fn abandon(&self) {
        self.progress.finish();
    }

    /// Ends the progress and prints the failures (human mode; JSON lines were printed as
    /// they came).
    pub fn finish(&self) {
        self.progress.finish();
        for f in self.failures.lock().unwrap().iter() {
            self.printer.error(&Report::new(f.clone()));
        }
    }
}

impl copy::Reporter for BulkReporter<'_> {
    fn bytes(&self, n: u64) {
        self.progress.bytes(n);
    }

    fn done(&self, rel: &str, size: u64) {
        self.progress.done();
        tracing::debug!(item = rel, size, "{} done", self.verb);
        if self.printer.json() {
            let line = match self.verb {
                "delete" => serde_json::json!({ "deleted": rel }),
                _ => serde_json::json!({ "copied": rel, "size": size, "outcome": "transferred" }),
            };
            let _ = self.printer.json_line(&line);
        }
    }

    fn unverified(&self, rel: &str, size: u64) {
        self.progress.done();
        if self.printer.json() {
            let _ = self.printer.json_line(&serde_json::json!({
                "copied": rel, "size": size, "outcome": "unverified",
            }));
        }
        let mut u = self.unverified.lock().unwrap();
        if u.len() < MAX_LISTED_FAILURES {
            u.push(rel.to_string());
        }
    }

    fn failed(&self, rel: &str, error: &cairn::Error) {
        self.progress.failed();
        if self.printer.json() {
            let _ = self.printer.json_line(&serde_json::json!({
                "key": rel,
                "error": one_line(error),
                "kind": error.kind().as_str(),
            }));
            return;
        }
        let mut f = self.failures.lock().unwrap();
        if f.len() < MAX_LISTED_FAILURES {
            f.push(format!("{} {rel}: {}", self.verb, one_line(error)));
        }
    }
}

/// Why an object is unverified, as the CLI says it.
pub const UNVERIFIED_WHY: &str =
    "no SHA-256 recorded: written by another tool; its bytes were not checked";

/// The report naming objects that were transferred unchecked: `N unverified: a, b (...)`,
/// at most `keys.len()` of `count` named.
pub fn unverified_report(count: u64, keys: &[String]) -> Report {
    let mut names = keys.join(", ");
    if (keys.len() as u64) < count {
        names.push_str(&format!(" and {} more", count - keys.len() as u64));
    }
    Report::new(format!("{count} unverified: {names} ({UNVERIFIED_WHY})")).hint(
        "check them another way (compare with the writer's own checksum), or pass \
         -o checksum=false to copy objects without checking them",
    )
}

/// The end of a transfer: exit 2 if some items failed (the failures were listed already) or
/// some objects were transferred unchecked (named here).
pub fn partial_or_unverified(
    printer: &Printer,
    failed: u64,
    total: u64,
    noun: &'static str,
    unverified: u64,
    keys: &[String],
) -> Result {
    let report = (unverified > 0).then(|| unverified_report(unverified, keys));
    if failed > 0 {
        if let Some(r) = &report {
            printer.error(r);
        }
        return Err(CliError::Partial {
            failed,
            total,
            noun,
        });
    }
    match report {
        Some(r) => Err(CliError::Unverified(r)),
        None => Ok(()),
    }
}

/// Whether the user turned the checksum layer off for `addr` (`-o checksum=false`, the URL's
/// `?checksum=false`, the environment or the config file): then downloads and copies from it
/// check nothing, and report nothing unverified (the user opted out).
pub fn checksum_off(ctx: &Ctx, addr: &StoreAddr) -> bool {
    let url = cairn::tier_url(&addr.url).unwrap_or(&addr.url);
    let Ok(parsed) = cairn::StoreUrl::parse(url) else {
        return false;
    };
    let mut config = ctx.config.clone().or(parsed.options);
    if let Ok(env) = cairn::Config::from_env() {
        config = config.or(env);
    }
    if let Ok(file) = cairn::Config::from_default_file() {
        config = config.or(file);
    }
    config.checksum == Some(false)
}

/// The end of a bulk command: a summary line, then exit 2 if some items failed or were
/// transferred unchecked.
pub fn finish_bulk(
    ctx: &Ctx,
    rep: &BulkReporter<'_>,
    sum: copy::Summary,
    noun: &'static str,
    summary: String,
) -> Result {
    rep.finish();
    if ctx.printer.json() {
        ctx.printer.json_line(&serde_json::json!({
            "summary": {
                "done": sum.done, "failed": sum.failed, "unlisted": sum.unlisted,
                "unverified": sum.unverified, "bytes": sum.bytes,
            }
        }))?;
    } else {
        ctx.printer.info(summary);
    }
    let keys = rep.unverified.lock().unwrap().clone();
    partial_or_unverified(
        &ctx.printer,
        sum.failed,
        sum.total(),
        noun,
        sum.unverified,
        &keys,
    )
}
