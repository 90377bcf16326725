//! Everything the CLI shows goes through [`Printer`]: results on stdout (human text or one JSON
//! object per line with `--json`), messages on stderr, and progress bars only where they belong.

use crate::error::{CliError, Report, Result};
use crate::progress::{Progress, ProgressMode, Shown};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{self, BufWriter, IsTerminal, Stdout, Write};
use std::sync::Mutex;
use std::time::Duration;

pub struct Printer {
    json: bool,
    quiet: bool,
    shown: Shown,
    interval: Duration,
    verbose: bool,
    out: Mutex<BufWriter<Stdout>>,
}

/// How the global flags asked for output to look.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    pub json: bool,
    pub quiet: bool,
    pub verbose: bool,
    pub progress: ProgressMode,
    pub interval: Duration,
}

impl Default for Look {
    fn default() -> Self {
        Look {
            json: false,
            quiet: false,
            verbose: false,
            progress: ProgressMode::Auto,
            interval: Duration::from_secs(10),
        }
    }
}

/// Maps a stdout write failure: a closed pipe ends the command quietly.
fn stdout_err(e: io::Error) -> CliError {
    if e.kind() == io::ErrorKind::BrokenPipe {
        CliError::BrokenPipe
    } else {
        CliError::Fail(Report::new(format!("writing to stdout: {e}")))
    }
}

impl Printer {
    pub fn new(look: Look) -> Self {
        // Bars only for a person watching: both streams on a terminal, not in CI, not asked away.
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        let tty = !ci && io::stdout().is_terminal() && io::stderr().is_terminal();
        let shown = Shown::resolve(look.progress, look.quiet, look.json, tty);
        Printer {
            json: look.json,
            quiet: look.quiet,
            shown,
            interval: look.interval,
            verbose: look.verbose,
            out: Mutex::new(BufWriter::new(io::stdout())),
        }
    }

    /// Progress for a long command: bars, timed lines or nothing, as the flags resolve.
    pub fn progress(&self, op: &'static str) -> Progress {
        Progress::start(op, self.shown, self.interval)
    }

    /// Whether bulk commands print one line per item: asked for (`--list`, `-v`), or a person
    /// at a terminal; never under `-q` or `--json`. In a pipe the timed lines and the summary
    /// say enough, where 100,000 item lines would bury them.
    pub fn item_lines(&self, asked: bool) -> bool {
        !self.quiet && !self.json && (asked || self.verbose || self.shown == Shown::Bars)
    }

    pub fn json(&self) -> bool {
        self.json
    }

    /// One line of results on stdout.
    pub fn line(&self, s: impl std::fmt::Display) -> Result {
        let mut out = self.out.lock().unwrap();
        writeln!(out, "{s}").map_err(stdout_err)
    }

    /// One JSON object on its own line on stdout.
    pub fn json_line(&self, v: &serde_json::Value) -> Result {
        self.line(v)
    }

    /// Raw bytes on stdout (`cat`, `cp X -`).
    pub fn bytes(&self, b: &[u8]) -> Result {
        self.out.lock().unwrap().write_all(b).map_err(stdout_err)
    }

    pub fn flush(&self) -> Result {
        self.out.lock().unwrap().flush().map_err(stdout_err)
    }

    /// A status message on stderr (summaries), unless `--quiet`.
    pub fn info(&self, s: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{s}");
        }
    }

    /// A warning on stderr (`warning: ...`), unless `--quiet`.
    pub fn warn(&self, s: impl std::fmt::Display) {
        if !self.quiet {
            let _ = self.out.lock().unwrap().flush();
            eprintln!("warning: {s}");
        }
    }

    /// An error report on stderr (always shown: `--quiet` silences chatter, not failures).
    pub fn error(&self, r: &Report) {
        // Flush results first so the error follows them when both streams go to one terminal.
        let _ = self.out.lock().unwrap().flush();
        eprintln!("{r}");
    }

    /// A progress bar counting items of unknown total, with a byte counter in the message.
    pub fn items_bar(&self, verb: &str) -> ProgressBar {
        if self.shown != Shown::Bars {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template(&format!("{{spinner}} {verb} {{pos}} {{msg}}"))
                .expect("valid template"),
        );
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

/// `1.5 MiB`-style sizes for summaries.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
