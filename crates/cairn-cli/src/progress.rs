//! One progress reporter for every long command (sync, cp -r, rm -r, verify, stats, multipart
//! abort): indicatif bars on a terminal; elsewhere (a pipe, a CI log) one timed line every N
//! seconds, as text or JSON, on stderr; nothing under `-q`. Counting is lock-free, and the
//! timed lines come from a thread of their own so a busy runtime cannot delay them.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `--progress`: how long work shows that it is moving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// Bars on a terminal; timed lines in a pipe or CI log.
    Auto,
    /// indicatif bars on stderr.
    Bars,
    /// One line of text every interval on stderr.
    Lines,
    /// One JSON object every interval on stderr.
    Json,
    /// No progress at all.
    None,
}

/// What a command's progress is drawn as, once `auto` and `-q` are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Bars,
    Lines,
    Json,
    Off,
}

impl Shown {
    /// `-q` shows nothing; `auto` is bars only for a person at a terminal (both streams on a
    /// TTY, not in CI, not `--json`), timed lines otherwise.
    pub fn resolve(mode: ProgressMode, quiet: bool, json: bool, tty: bool) -> Shown {
        if quiet {
            return Shown::Off;
        }
        match mode {
            ProgressMode::Auto if tty && !json => Shown::Bars,
            ProgressMode::Auto => Shown::Lines,
            ProgressMode::Bars => Shown::Bars,
            ProgressMode::Lines => Shown::Lines,
            ProgressMode::Json => Shown::Json,
            ProgressMode::None => Shown::Off,
        }
    }
}

/// The counters, shared with the ticker thread.
#[derive(Default)]
struct Counts {
    objects: AtomicU64,
    bytes: AtomicU64,
    failed: AtomicU64,
    objects_total: AtomicU64,
    bytes_total: AtomicU64,
    /// Totals are known (announced upfront or discovered so far).
    totals_known: AtomicBool,
    lines: AtomicU64,
}

/// One timed report, as `--progress=json` prints it (inside `{"progress": ...}`).
#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub op: &'static str,
    pub objects: u64,
    pub objects_total: Option<u64>,
    pub bytes: u64,
    pub bytes_total: Option<u64>,
    pub bytes_per_sec: f64,
    pub eta_secs: Option<f64>,
    pub failed: u64,
    pub elapsed_secs: f64,
    /// The last report, printed when the work ends.
    #[serde(rename = "final")]
    pub last: bool,
}

impl Snapshot {
    /// `sync: 1,234/5,000 objects, 1.2 GiB/3.0 GiB, 12.3 MiB/s, eta 2m 30s, 0 failed, 12s`
    pub fn line(&self) -> String {
        use crate::printer::human_bytes;
        let objects = match self.objects_total {
            Some(t) => format!("{}/{} objects", self.objects, t),
            None => format!("{} objects", self.objects),
        };
        let bytes = match self.bytes_total {
            Some(t) if t > 0 => format!("{}/{}", human_bytes(self.bytes), human_bytes(t)),
            _ => human_bytes(self.bytes),
        };
        let eta = match self.eta_secs {
            Some(s) => format!(
                ", eta {}",
                humantime::format_duration(Duration::from_secs(s.ceil() as u64))
            ),
            None => String::new(),
        };
        format!(
            "{}: {objects}, {bytes}, {}/s{eta}, {} failed, {:.0}s elapsed{}",
            self.op,
            human_bytes(self.bytes_per_sec as u64),
            self.failed,
            self.elapsed_secs,
            if self.last { " (done)" } else { "" }
        )
    }
}

struct Inner {
    op: &'static str,
    shown: Shown,
    counts: Counts,
    start: Instant,
    bar: ProgressBar,
    stop: AtomicBool,
}

impl Inner {
    fn snapshot(&self, last: bool) -> Snapshot {
        let c = &self.counts;
        let (objects, bytes) = (
            c.objects.load(Ordering::Relaxed),
            c.bytes.load(Ordering::Relaxed),
        );
        let known = c.totals_known.load(Ordering::Relaxed);
        let objects_total = known.then(|| c.objects_total.load(Ordering::Relaxed).max(objects));
        let bytes_total = known.then(|| c.bytes_total.load(Ordering::Relaxed).max(bytes));
        let elapsed = self.start.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 {
            bytes as f64 / elapsed
        } else {
            0.0
        };
        let obj_rate = if elapsed > 0.0 {
            objects as f64 / elapsed
        } else {
            0.0
        };
        // By bytes where they are known and moving, else by objects.
        let eta = match (bytes_total, objects_total) {
            _ if last => None,
            (Some(t), _) if t > 0 && rate > 0.0 => Some((t - bytes) as f64 / rate),
            (_, Some(t)) if obj_rate > 0.0 => Some((t - objects) as f64 / obj_rate),
            _ => None,
        };
        Snapshot {
            op: self.op,
            objects,
            objects_total,
            bytes,
            bytes_total,
            bytes_per_sec: rate,
            eta_secs: eta,
            failed: c.failed.load(Ordering::Relaxed),
            elapsed_secs: elapsed,
            last,
        }
    }

    fn emit(&self, last: bool) {
        let s = self.snapshot(last);
        match self.shown {
            Shown::Lines => eprintln!("{}", s.line()),
            Shown::Json => eprintln!("{}", serde_json::json!({ "progress": s })),
            Shown::Bars | Shown::Off => return,
        }
        self.counts.lines.fetch_add(1, Ordering::Relaxed);
    }
}

/// A long command's progress. Cheap to update from many tasks; `finish` ends it.
pub struct Progress {
    inner: Arc<Inner>,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

impl Progress {
    /// Starts showing progress for `op` (`sync`, `copy`, `verify`, ...), every `interval` for
    /// timed lines.
    pub fn start(op: &'static str, shown: Shown, interval: Duration) -> Progress {
        let bar = if shown == Shown::Bars {
            let bar = ProgressBar::new(0).with_style(
                ProgressStyle::with_template(&format!(
                    "{{spinner}} {op} {{bytes}}/{{total_bytes}} {{binary_bytes_per_sec}} eta {{eta}} {{msg}}"
                ))
                .expect("valid template"),
            );
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        } else {
            ProgressBar::hidden()
        };
        let inner = Arc::new(Inner {
            op,
            shown,
            counts: Counts::default(),
            start: Instant::now(),
            bar,
            stop: AtomicBool::new(false),
        });
        let ticker = matches!(shown, Shown::Lines | Shown::Json).then(|| {
            let inner = inner.clone();
            std::thread::spawn(move || loop {
                std::thread::park_timeout(interval);
                // park_timeout may wake early: only report once a whole interval has passed.
                let due = interval.as_secs_f64()
                    * (inner.counts.lines.load(Ordering::Relaxed) + 1) as f64;
                if inner.stop.load(Ordering::Acquire) {
                    return;
                }
                if inner.start.elapsed().as_secs_f64() >= due {
                    inner.emit(false);
                }
            })
        });
        Progress {
            inner,
            ticker: Mutex::new(ticker),
        }
    }

    /// The work's size, where it is known upfront or as listings find it.
    pub fn discovered(&self, objects: u64, bytes: u64) {
        let c = &self.inner.counts;
        c.totals_known.store(true, Ordering::Relaxed);
        c.objects_total.fetch_add(objects, Ordering::Relaxed);
        let total = c.bytes_total.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.inner.bar.set_length(total);
    }

    /// `n` more bytes moved (or read, or counted).
    pub fn bytes(&self, n: u64) {
        self.inner.counts.bytes.fetch_add(n, Ordering::Relaxed);
        self.inner.bar.inc(n);
    }

    /// One more object done.
    pub fn done(&self) {
        let n = self.inner.counts.objects.fetch_add(1, Ordering::Relaxed) + 1;
        self.message(n);
    }

    /// One more object failed.
    pub fn failed(&self) {
        self.inner.counts.failed.fetch_add(1, Ordering::Relaxed);
        let n = self.inner.counts.objects.fetch_add(1, Ordering::Relaxed) + 1;
        self.message(n);
    }

    fn message(&self, n: u64) {
        if self.inner.shown == Shown::Bars {
            let c = &self.inner.counts;
            let failed = c.failed.load(Ordering::Relaxed);
            let total = c.objects_total.load(Ordering::Relaxed).max(n);
            let f = if failed > 0 {
                format!(", {failed} failed")
            } else {
                String::new()
            };
            self.inner
                .bar
                .set_message(format!("{n}/{total} objects{f}"));
        }
    }

    /// Runs `f` (which prints a line) without tearing the bar.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.inner.bar.suspend(f)
    }

    /// Ends the progress: clears the bar, stops the ticker, and prints a last timed report
    /// (always as JSON, for the reader that waits for `final`; as a line only if earlier
    /// lines were printed, so a quick command ends with just its summary).
    pub fn finish(&self) {
        self.inner.bar.finish_and_clear();
        if self.stop_ticker() {
            let printed = self.inner.counts.lines.load(Ordering::Relaxed) > 0;
            if self.inner.shown == Shown::Json || printed {
                self.inner.emit(true);
            }
        }
    }

    /// Stops the timed-lines thread; whether one was running.
    fn stop_ticker(&self) -> bool {
        let Some(t) = self.ticker.lock().unwrap().take() else {
            return false;
        };
        self.inner.stop.store(true, Ordering::Release);
        t.thread().unpark();
        let _ = t.join();
        true
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // An error path that never called finish still stops the thread; no last line then.
        self.stop_ticker();
        self.inner.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_bars_for_a_person_and_lines_elsewhere() {
        use ProgressMode::*;
        assert_eq!(Shown::resolve(Auto, false, false, true), Shown::Bars);
        assert_eq!(Shown::resolve(Auto, false, false, false), Shown::Lines);
        assert_eq!(Shown::resolve(Auto, false, true, true), Shown::Lines);
        assert_eq!(Shown::resolve(Json, true, false, false), Shown::Off);
        assert_eq!(Shown::resolve(Json, false, false, true), Shown::Json);
        assert_eq!(Shown::resolve(None, false, false, true), Shown::Off);
    }

    #[test]
    fn snapshots_count_and_estimate() {
        let p = Progress::start("sync", Shown::Off, Duration::from_secs(3600));
        p.discovered(4, 400);
        p.bytes(100);
        p.done();
        p.failed();
        let s = p.inner.snapshot(false);
        assert_eq!(
            (s.objects, s.objects_total, s.bytes, s.bytes_total, s.failed),
            (2, Some(4), 100, Some(400), 1)
        );
        assert!(s.eta_secs.is_some());
        let last = p.inner.snapshot(true);
        assert_eq!(last.eta_secs, None);
        assert!(
            last.line().starts_with("sync: 2/4 objects, 100 B/400 B, "),
            "{}",
            last.line()
        );
        assert!(
            last.line().ends_with(", 1 failed, 0s elapsed (done)"),
            "{}",
            last.line()
        );
    }
}
