//! From argv to an exit code: parse, set up logging and the runtime, run, report.

use crate::args::{Args, Global};
use crate::commands::{self, Ctx};
use crate::error::{usage, CliError, Report, Result};
use crate::printer::{Look, Printer};
use clap::Parser;
use std::ffi::OsString;
use std::process::ExitCode;

pub fn run(argv: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = match Args::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    init_tracing(args.global.verbose, args.global.quiet);
    let ctx = match store_config(&args.global) {
        Ok(config) => Ctx {
            printer: Printer::new(Look {
                json: args.global.json,
                quiet: args.global.quiet,
                verbose: args.global.verbose > 0,
                progress: args.global.progress,
                interval: args.global.progress_interval.into(),
            }),
            config,
            tiers: Default::default(),
        },
        Err(e) => return report(&Printer::new(Look::default()), e),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report(
                &ctx.printer,
                Report::new(format!("starting the runtime: {e}")).into(),
            )
        }
    };
    // `serve` handles SIGTERM itself: it stops accepting and lets requests finish.
    #[cfg(feature = "serve")]
    if let crate::args::Command::Serve(a) = &args.command {
        let r = rt.block_on(commands::serve::run(&ctx, a));
        rt.shutdown_timeout(crate::signal::BLOCKING);
        return match r.and_then(|()| ctx.printer.flush()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => report(&ctx.printer, e),
        };
    }
    // The command runs as a task on a worker, not inline in `block_on` on this thread: there
    // every socket event would cross threads to wake it (a futex pair per wake-up, a tenth
    // of a large download's CPU).
    if args.global.metrics_file.is_some() {
        if let Err(e) = cairn::metrics::install_prometheus(None) {
            return report(&ctx.printer, e.into());
        }
    }
    let ctx = std::sync::Arc::new(ctx);
    let work = {
        let (ctx, command) = (ctx.clone(), args.command);
        async move {
            let r = commands::dispatch(&ctx, &command).await;
            // What a write-back tier took in reaches its cold store before the exit, even
            // after a partial failure; a flush error is the command's error.
            let settled = commands::tier::settle(&ctx).await;
            r.and(settled)
        }
    };
    // Ctrl-C / SIGTERM drops the command's future; the aborts its writers start are waited for.
    let settle = cairn::transfer::settle_aborts();
    let result = match rt.block_on(crate::signal::run_cancellable(work, settle)) {
        Ok(r) => r.unwrap_or_else(|e| match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => Err(CliError::Fail(Report::new(format!(
                "the command was cancelled: {e}"
            )))),
        }),
        Err(sig) => {
            // Blocking file calls under way (a temp file's write and rename) end first.
            rt.shutdown_timeout(crate::signal::BLOCKING);
            ctx.printer.error(&Report::new("interrupted"));
            return ExitCode::from(sig.exit_code());
        }
    };
    // Blocking tasks (a directory walk, a file read) must not hold up the exit.
    rt.shutdown_background();
    // Metrics are written whatever the outcome: a failed run's errors are what they count.
    let result = match (&args.global.metrics_file, result) {
        (Some(path), r) => write_metrics(path).and(r),
        (None, r) => r,
    };
    match result.and_then(|()| ctx.printer.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&ctx.printer, e),
    }
}

/// The metrics as Prometheus text, written whole or not at all (temp file, then rename), so
/// a collector never reads half a file.
fn write_metrics(path: &std::path::Path) -> Result {
    let text = cairn::metrics::prometheus_text();
    let tmp = path.with_extension("prom.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Report::new(format!("--metrics-file {}: {e}", path.display())).into())
}

fn report(printer: &Printer, e: CliError) -> ExitCode {
    match &e {
        CliError::Fail(r) => printer.error(r),
        CliError::Partial {
            failed,
            total,
            noun,
        } => printer.error(&Report::new(format!("{failed} of {total} {noun} failed"))),
        CliError::Unverified(r) => printer.error(r),
        CliError::BrokenPipe => {}
    }
    e.exit_code()
}

/// Store options from the global flags, through `Config::set` like every other source.
fn store_config(g: &Global) -> Result<cairn::Config> {
    if let Some(path) = &g.config {
        // Validate now for a clear error; open_with then reads it in its place in the
        // precedence order (below flags, URL options and env).
        cairn::Config::from_file(path)?;
        std::env::set_var("CAIRN_CONFIG", path);
    }
    let mut c = cairn::Config::default();
    let flags = [
        ("endpoint", g.endpoint.as_deref()),
        ("region", g.region.as_deref()),
        ("profile", g.profile.as_deref()),
        ("timeout", g.timeout.as_deref()),
        ("max_retries", g.max_retries.as_deref()),
        ("path_style", g.path_style.then_some("true")),
    ];
    for (name, value) in flags {
        if let Some(v) = value {
            c.set(name, v)?;
        }
    }
    for o in &g.options {
        let Some((k, v)) = o.split_once('=') else {
            return Err(usage(
                format!("-o {o:?} is not KEY=VALUE"),
                "write -o pool_size=32",
            ));
        };
        c.set(k, v)?;
    }
    if let Some(root) = &g.root {
        c.root = Some(root.clone());
    }
    Ok(c)
}

/// Logs to stderr: cairn's warnings by default (an object it could not check or list must
/// not pass unseen), nothing with -q, -v for cairn's debug events, -vv for trace. RUST_LOG
/// replaces the default.
fn init_tracing(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = match verbose {
        0 => match std::env::var("RUST_LOG") {
            Ok(v) if !v.is_empty() => EnvFilter::new(v),
            _ if quiet => return,
            _ => EnvFilter::new("cairn=warn"),
        },
        1 => EnvFilter::new("warn,cairn=debug"),
        _ => EnvFilter::new("info,cairn=trace"),
    };
    // At -vv every store call ends in a line of its own: op, store, key, bytes, outcome, time.
    let spans = if verbose >= 2 {
        tracing_subscriber::fmt::format::FmtSpan::CLOSE
    } else {
        tracing_subscriber::fmt::format::FmtSpan::NONE
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(spans)
        // No escape codes in a pipe or a CI log.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        // A warning reads like the CLI's own lines; times and module paths are for -v.
        .without_time()
        .with_target(verbose > 0)
        .try_init();
}
