//! The bench report: its versioned JSON shape, the Markdown table, and the regression rule
//! (`compare`) that `--baseline` and `bench history` share.

use super::BenchOptions;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// The version of the JSON report's shape; bumped when fields change meaning.
/// 2 added `commit`; version 1 reports still load (without it).
pub const SCHEMA_VERSION: u32 = 2;

/// The machine a report was made on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MachineInfo {
    /// `linux`, `macos`, ...
    pub os: String,
    /// `x86_64`, `aarch64`, ...
    pub arch: String,
    /// Logical CPUs available to the process.
    pub cpus: usize,
    /// Total memory in bytes, if known.
    pub memory_bytes: Option<u64>,
    /// Host name, if known.
    pub hostname: Option<String>,
    /// cairn's version.
    pub cairn_version: String,
}

impl MachineInfo {
    /// Facts about this machine.
    pub fn current() -> Self {
        let memory_bytes = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        });
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        MachineInfo {
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            memory_bytes,
            hostname,
            cairn_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// One measured operation at one size.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BenchResult {
    /// `put`, `get`, `get_warm`, `list`, `delete`, `large_upload`, `large_download`.
    pub op: String,
    /// Object size in bytes.
    pub size: u64,
    /// Operations measured.
    pub ops: u64,
    /// Objects each operation covered (a list call covers many).
    pub objects_per_op: u64,
    /// Operations in flight at once.
    pub concurrency: usize,
    /// Wall time of the whole run in seconds.
    pub seconds: f64,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Payload MB (10^6 bytes) per second; 0 for operations without payload.
    pub mb_per_sec: f64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency in milliseconds (nearest rank).
    pub p99_ms: f64,
}

/// A whole benchmark run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BenchReport {
    /// Always [`SCHEMA_VERSION`] when written by this version.
    pub schema_version: u32,
    /// When the run started.
    pub timestamp: DateTime<Utc>,
    /// The store's display name (never holds secrets).
    pub store: String,
    /// The commit measured, when the caller names one (`cairn bench --commit`, or the CI's
    /// `GITHUB_SHA`); shown in history captions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Where it ran.
    pub machine: MachineInfo,
    /// What was asked for.
    pub options: BenchOptions,
    /// The measurements.
    pub results: Vec<BenchResult>,
}

/// A metric that got worse than allowed between two reports.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Regression {
    /// The operation.
    pub op: String,
    /// The object size.
    pub size: u64,
    /// `ops_per_sec`, `mb_per_sec` or `p99_ms`.
    pub metric: String,
    /// The baseline value.
    pub baseline: f64,
    /// The current value.
    pub current: f64,
    /// Signed change in percent (negative for a drop).
    pub change_pct: f64,
}

impl std::fmt::Display for Regression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {}: {:.3} -> {:.3} ({:+.1}%)",
            self.op,
            human_size(self.size),
            self.metric,
            self.baseline,
            self.current,
            self.change_pct
        )
    }
}

/// The metrics of `current` that are worse than `baseline` by more than `regress_pct` percent:
/// ops/s or MB/s dropped, or p99 latency rose. Results are matched by (op, size); ones only in
/// one report are not compared, and metrics that are 0 in the baseline are skipped.
pub fn compare(baseline: &BenchReport, current: &BenchReport, regress_pct: f64) -> Vec<Regression> {
    let mut out = Vec::new();
    let limit = regress_pct.max(0.0) / 100.0;
    for cur in &current.results {
        let Some(base) = baseline
            .results
            .iter()
            .find(|b| b.op == cur.op && b.size == cur.size)
        else {
            continue;
        };
        let mut check = |metric: &str, b: f64, c: f64, higher_is_better: bool| {
            if b.is_nan() || b <= 0.0 || !b.is_finite() || !c.is_finite() {
                return;
            }
            let worse = if higher_is_better {
                c < b * (1.0 - limit)
            } else {
                c > b * (1.0 + limit)
            };
            if worse {
                out.push(Regression {
                    op: cur.op.clone(),
                    size: cur.size,
                    metric: metric.into(),
                    baseline: b,
                    current: c,
                    change_pct: (c - b) / b * 100.0,
                });
            }
        };
        check("ops_per_sec", base.ops_per_sec, cur.ops_per_sec, true);
        check("mb_per_sec", base.mb_per_sec, cur.mb_per_sec, true);
        check("p99_ms", base.p99_ms, cur.p99_ms, false);
    }
    out
}

/// Sizes as reports name them: `1KiB`, `256MiB`, `1000B`.
pub fn human_size(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (u, name) in UNITS {
        if n >= u && n.is_multiple_of(u) {
            return format!("{}{name}", n / u);
        }
    }
    format!("{n}B")
}

impl BenchReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports serialize")
    }

    /// Parses a report, refusing other schema versions.
    pub fn from_json(text: &str) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::invalid(format!("not a bench report: {e}")))?;
        match v.get("schema_version").and_then(|s| s.as_u64()) {
            Some(n) if (1..=SCHEMA_VERSION as u64).contains(&n) => {}
            Some(n) => {
                return Err(Error::invalid(format!(
                    "bench report has schema_version {n}; this cairn reads 1 to {SCHEMA_VERSION}"
                ))
                .with_hint("re-run the baseline with this version of cairn"))
            }
            None => return Err(Error::invalid("not a bench report: no schema_version")),
        }
        serde_json::from_value(v).map_err(|e| Error::invalid(format!("bad bench report: {e}")))
    }

    /// The report as a Markdown table with a short header.
    pub fn to_markdown(&self) -> String {
        let m = &self.machine;
        let mut s = String::new();
        let _ = writeln!(s, "### cairn bench: {}\n", self.store);
        let _ = writeln!(
            s,
            "{} · cairn {} · {} {} · {} CPUs{}{}\n",
            self.timestamp.format("%Y-%m-%d %H:%M:%S UTC"),
            m.cairn_version,
            m.os,
            m.arch,
            m.cpus,
            m.memory_bytes
                .map(|b| format!(" · {:.1} GiB RAM", b as f64 / (1u64 << 30) as f64))
                .unwrap_or_default(),
            m.hostname
                .as_deref()
                .map(|h| format!(" · {h}"))
                .unwrap_or_default(),
        );
        let _ = writeln!(
            s,
            "| op | size | ops | conc | ops/s | MB/s | p50 ms | p99 ms |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for r in &self.results {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.1} | {:.2} | {:.2} | {:.2} |",
                r.op,
                human_size(r.size),
                r.ops,
                r.concurrency,
                r.ops_per_sec,
                r.mb_per_sec,
                r.p50_ms,
                r.p99_ms
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn res(op: &str, size: u64, ops_s: f64, mb_s: f64, p99: f64) -> BenchResult {
        BenchResult {
            op: op.into(),
            size,
            ops: 100,
            objects_per_op: 1,
            concurrency: 8,
            seconds: 1.0,
            ops_per_sec: ops_s,
            mb_per_sec: mb_s,
            p50_ms: p99 / 2.0,
            p99_ms: p99,
        }
    }

    fn report(results: Vec<BenchResult>) -> BenchReport {
        BenchReport {
            schema_version: SCHEMA_VERSION,
            commit: None,
            timestamp: Utc::now(),
            store: "memory://".into(),
            machine: MachineInfo::current(),
            options: BenchOptions::default(),
            results,
        }
    }

    #[test]
    fn compare_flags_drops_and_latency_rises_beyond_the_threshold() {
        let base = report(vec![
            res("put", 1024, 1000.0, 1.0, 10.0),
            res("get", 1024, 2000.0, 2.0, 5.0),
            res("list", 1024, 50.0, 0.0, 20.0),
        ]);
        let cur = report(vec![
            res("put", 1024, 800.0, 0.8, 10.0),   // -20% ops/s and MB/s
            res("get", 1024, 1900.0, 1.9, 6.0),   // -5% (fine), p99 +20%
            res("list", 1024, 50.0, 0.0, 20.0),   // unchanged
            res("delete", 1024, 1.0, 0.0, 999.0), // not in baseline
        ]);
        let regs = compare(&base, &cur, 15.0);
        let names: Vec<(String, String)> = regs
            .iter()
            .map(|r| (r.op.clone(), r.metric.clone()))
            .collect();
        assert_eq!(
            names,
            [
                ("put".to_string(), "ops_per_sec".to_string()),
                ("put".to_string(), "mb_per_sec".to_string()),
                ("get".to_string(), "p99_ms".to_string()),
            ]
        );
        assert!((regs[0].change_pct + 20.0).abs() < 1e-9, "{:?}", regs[0]);
        assert!((regs[2].change_pct - 20.0).abs() < 1e-9, "{:?}", regs[2]);
        assert!(
            regs[0].to_string().contains("put 1KiB ops_per_sec"),
            "{}",
            regs[0]
        );
    }

    #[test]
    fn compare_threshold_is_exclusive_and_improvements_pass() {
        let base = report(vec![res("put", 1, 100.0, 1.0, 10.0)]);
        let at_limit = report(vec![res("put", 1, 85.0, 0.85, 11.5)]);
        assert!(
            compare(&base, &at_limit, 15.0).is_empty(),
            "exactly 15% is allowed"
        );
        let better = report(vec![res("put", 1, 500.0, 5.0, 1.0)]);
        assert!(compare(&base, &better, 15.0).is_empty());
        let slightly_worse = report(vec![res("put", 1, 84.0, 1.0, 10.0)]);
        assert_eq!(compare(&base, &slightly_worse, 15.0).len(), 1);
        assert_eq!(compare(&base, &slightly_worse, 0.0).len(), 1);
        // Same result, different size: not matched.
        let other = report(vec![res("put", 2, 1.0, 0.0, 1e9)]);
        assert!(compare(&base, &other, 15.0).is_empty());
    }

    #[test]
    fn report_roundtrips_and_rejects_other_schemas() {
        let r = report(vec![res("put", 1024, 1.0, 2.0, 3.0)]);
        let json = r.to_json();
        assert!(json.contains("\"schema_version\": 2"), "{json}");
        assert_eq!(BenchReport::from_json(&json).unwrap(), r);
        let v1 = json.replace("\"schema_version\": 2", "\"schema_version\": 1");
        assert_eq!(BenchReport::from_json(&v1).unwrap().schema_version, 1);
        let v3 = json.replace("\"schema_version\": 2", "\"schema_version\": 3");
        let e = BenchReport::from_json(&v3).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            e.message(),
            "bench report has schema_version 3; this cairn reads 1 to 2"
        );
        assert!(BenchReport::from_json("{}").is_err());
        let md = r.to_markdown();
        assert!(md.contains("| put | 1KiB | 100 | 8 | 1.0 | 2.00 |"), "{md}");
    }
}
