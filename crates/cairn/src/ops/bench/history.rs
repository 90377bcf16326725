//! `bench history`: many reports over time as one series per (op, size, metric), with the
//! change from the previous report, the median of the last N, and the `--baseline` rule
//! ([`compare`]) applied between neighbours, so a regression is flagged where it happened.

use super::report::{compare, human_size, BenchReport};
use crate::archive::{Archive, Filter};
use crate::error::Result;
use crate::key::Key;
use crate::store::{Store, StoreExt};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::Serialize;

/// The metrics a history follows; `p50_ms` is shown but, as with `--baseline`, never flagged.
pub const METRICS: [&str; 4] = ["ops_per_sec", "mb_per_sec", "p50_ms", "p99_ms"];

/// How a history is built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryOptions {
    /// Percent worse than the previous report that counts as a regression.
    pub regress_pct: f64,
    /// The rolling median covers this many reports (the current one included).
    pub window: usize,
}

impl Default for HistoryOptions {
    fn default() -> Self {
        HistoryOptions {
            regress_pct: 15.0,
            window: 5,
        }
    }
}

/// A report that was not used, named with the reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    /// Where it came from (file name, key or archive key).
    pub name: String,
    /// Why it was left out.
    pub reason: String,
    /// It could not be read at all (a failure, not just another file).
    pub unreadable: bool,
}

/// One report of the history, in time order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportInfo {
    /// Where it came from.
    pub name: String,
    /// When the run started.
    pub timestamp: DateTime<Utc>,
    /// The commit measured, if the report names one (schema 2 and later).
    pub commit: Option<String>,
    /// The machine's host name, if known.
    pub host: Option<String>,
    /// `os arch, N CPUs`.
    pub machine: String,
    /// The store measured.
    pub store: String,
}

/// One value of a series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// Index into [`History::reports`].
    pub report: usize,
    /// The metric's value in that report.
    pub value: f64,
    /// Change from the previous report's value in percent; `None` for the first point or a
    /// previous value of 0.
    pub change_pct: Option<f64>,
    /// Median of this value and up to `window - 1` earlier ones.
    pub median: f64,
    /// Worse than the previous report beyond `regress_pct` (the `--baseline` rule).
    pub regression: bool,
}

/// One metric of one (op, size) over time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// `put`, `get`, `large_download`, ...
    pub op: String,
    /// Object size in bytes.
    pub size: u64,
    /// One of [`METRICS`].
    pub metric: String,
    /// The values, oldest first; reports without this result have no point.
    pub points: Vec<Point>,
}

impl Series {
    /// `put 1KiB ops/s`: how charts and tables title it.
    pub fn title(&self) -> String {
        format!(
            "{} {} {}",
            self.op,
            human_size(self.size),
            unit(&self.metric)
        )
    }
}

/// The short name of a metric: `ops/s`, `MB/s`, `p50 ms`, `p99 ms`.
pub fn unit(metric: &str) -> &str {
    match metric {
        "ops_per_sec" => "ops/s",
        "mb_per_sec" => "MB/s",
        "p50_ms" => "p50 ms",
        "p99_ms" => "p99 ms",
        other => other,
    }
}

/// Every report, every series, and what was skipped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct History {
    /// The reports used, oldest first.
    pub reports: Vec<ReportInfo>,
    /// One per (op, size, metric), in the order the newest report lists its results.
    pub series: Vec<Series>,
    /// Reports left out, by name.
    pub skipped: Vec<Skipped>,
    /// The options it was built with.
    #[serde(skip)]
    pub options: HistoryOptions,
}

/// One point as a flat record: what `--json` prints per line and Python hands to pandas.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The report's name.
    pub report: String,
    /// When it ran.
    pub timestamp: DateTime<Utc>,
    /// Its commit, if named.
    pub commit: Option<String>,
    /// Its host, if known.
    pub host: Option<String>,
    /// The operation.
    pub op: String,
    /// The object size in bytes.
    pub size: u64,
    /// The metric.
    pub metric: String,
    /// The value.
    pub value: f64,
    /// Change from the previous report, in percent.
    pub change_pct: Option<f64>,
    /// Rolling median.
    pub median: f64,
    /// Flagged as a regression.
    pub regression: bool,
}

impl History {
    /// Builds the history from named report texts. Texts that are not reports, or have a
    /// schema this cairn does not read, are skipped by name; the rest are sorted by time.
    pub fn build(texts: Vec<(String, String)>, options: HistoryOptions) -> History {
        let mut skipped = Vec::new();
        let mut reports: Vec<(String, BenchReport)> = Vec::new();
        for (name, text) in texts {
            match BenchReport::from_json(&text) {
                Ok(r) => reports.push((name, r)),
                Err(e) => skipped.push(Skipped {
                    name,
                    reason: e.message().to_string(),
                    unreadable: false,
                }),
            }
        }
        reports.sort_by(|a, b| a.1.timestamp.cmp(&b.1.timestamp).then(a.0.cmp(&b.0)));
        let series = build_series(&reports, options);
        History {
            reports: reports.iter().map(|(n, r)| info(n, r)).collect(),
            series,
            skipped,
            options,
        }
    }

    /// Every point as a flat row, series by series, oldest first.
    pub fn rows(&self) -> Vec<Row> {
        let mut out = Vec::new();
        for s in &self.series {
            for p in &s.points {
                let r = &self.reports[p.report];
                out.push(Row {
                    report: r.name.clone(),
                    timestamp: r.timestamp,
                    commit: r.commit.clone(),
                    host: r.host.clone(),
                    op: s.op.clone(),
                    size: s.size,
                    metric: s.metric.clone(),
                    value: p.value,
                    change_pct: p.change_pct,
                    median: p.median,
                    regression: p.regression,
                });
            }
        }
        out
    }

    /// The flagged points, as rows.
    pub fn regressions(&self) -> Vec<Row> {
        self.rows().into_iter().filter(|r| r.regression).collect()
    }

    /// The flagged points of the newest report: what a CI job fails on.
    pub fn latest_regressions(&self) -> Vec<Row> {
        let Some(last) = self.reports.len().checked_sub(1) else {
            return Vec::new();
        };
        let name = &self.reports[last].name;
        self.regressions()
            .into_iter()
            .filter(|r| &r.report == name)
            .collect()
    }
}

fn info(name: &str, r: &BenchReport) -> ReportInfo {
    let m = &r.machine;
    ReportInfo {
        name: name.to_string(),
        timestamp: r.timestamp,
        commit: r.commit.clone(),
        host: m.hostname.clone(),
        machine: format!("{} {}, {} CPUs", m.os, m.arch, m.cpus),
        store: r.store.clone(),
    }
}

fn metric_value(r: &super::BenchResult, metric: &str) -> f64 {
    match metric {
        "ops_per_sec" => r.ops_per_sec,
        "mb_per_sec" => r.mb_per_sec,
        "p50_ms" => r.p50_ms,
        _ => r.p99_ms,
    }
}

fn median(vals: &[f64]) -> f64 {
    let mut v = vals.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn build_series(reports: &[(String, BenchReport)], opts: HistoryOptions) -> Vec<Series> {
    // Series keys in the order the newest report has them, then any only older ones had.
    let mut keys: Vec<(String, u64)> = Vec::new();
    for (_, r) in reports.iter().rev() {
        for res in &r.results {
            if !keys.iter().any(|(op, s)| *op == res.op && *s == res.size) {
                keys.push((res.op.clone(), res.size));
            }
        }
    }
    // Regressions by report index, judged against the previous report by `compare`.
    let flagged: Vec<Vec<super::Regression>> = (0..reports.len())
        .map(|i| match i {
            0 => Vec::new(),
            _ => compare(&reports[i - 1].1, &reports[i].1, opts.regress_pct),
        })
        .collect();
    let window = opts.window.max(1);
    let mut out = Vec::new();
    for (op, size) in keys {
        for metric in METRICS {
            let mut points: Vec<Point> = Vec::new();
            let mut values: Vec<f64> = Vec::new();
            for (i, (_, r)) in reports.iter().enumerate() {
                let Some(res) = r.results.iter().find(|x| x.op == op && x.size == size) else {
                    continue;
                };
                let value = metric_value(res, metric);
                let change_pct = values
                    .last()
                    .filter(|p| **p != 0.0)
                    .map(|p| (value - p) / p * 100.0);
                values.push(value);
                let from = values.len().saturating_sub(window);
                let regression = flagged[i]
                    .iter()
                    .any(|g| g.op == op && g.size == size && g.metric == metric);
                points.push(Point {
                    report: i,
                    value,
                    change_pct,
                    median: median(&values[from..]),
                    regression,
                });
            }
            // Operations without payload have MB/s 0 throughout: not a series worth drawing.
            if points.iter().all(|p| p.value == 0.0) {
                continue;
            }
            out.push(Series {
                op: op.clone(),
                size,
                metric: metric.to_string(),
                points,
            });
        }
    }
    out
}

/// Named report texts, and the names that could not be read.
type Loaded = (Vec<(String, String)>, Vec<Skipped>);

/// The report texts of a store prefix (a directory is a store too): every `.json` object
/// below it, named by key. Unreadable objects are skipped by name.
pub async fn load_prefix(store: &dyn Store, prefix: &str) -> Result<Loaded> {
    let keys: Vec<Key> = store
        .list_objects(prefix)
        .map_ok(|m| m.key)
        .try_filter(|k| futures::future::ready(k.as_str().ends_with(".json")))
        .try_collect()
        .await?;
    Ok(read_all(store, keys).await)
}

/// The report texts archived under `name` (kind `bench`), named by archive key.
pub async fn load_archive(archive: &Archive, name: &str) -> Result<Loaded> {
    let filter = Filter {
        name: Some(name.into()),
        kind: Some("bench".into()),
        ..Default::default()
    };
    let keys = archive.list(&filter).await?.into_iter().map(|e| e.key);
    Ok(read_all(archive.store().as_ref(), keys).await)
}

/// Reads each key as text; one that cannot be read is skipped by name, as a failure.
async fn read_all(store: &dyn Store, keys: impl IntoIterator<Item = Key>) -> Loaded {
    let mut texts = Vec::new();
    let mut skipped = Vec::new();
    for key in keys {
        match store.get(&key).await {
            Ok(b) => texts.push((key.to_string(), String::from_utf8_lossy(&b).into_owned())),
            Err(e) => skipped.push(Skipped {
                name: key.to_string(),
                reason: e.to_string(),
                unreadable: true,
            }),
        }
    }
    (texts, skipped)
}

/// Loads and builds in one call: `texts` plus the names already skipped while loading.
pub fn build_with_skipped((texts, mut skipped): Loaded, options: HistoryOptions) -> History {
    let mut h = History::build(texts, options);
    skipped.append(&mut h.skipped);
    h.skipped = skipped;
    h
}

#[cfg(test)]
mod tests {
    use super::super::{BenchOptions, BenchResult, MachineInfo, SCHEMA_VERSION};
    use super::*;
    use chrono::TimeZone;

    fn report(day: u32, put_ops: f64, commit: Option<&str>) -> BenchReport {
        let res = |op: &str, ops: f64, mb: f64, p99: f64| BenchResult {
            op: op.into(),
            size: 1024,
            ops: 100,
            objects_per_op: 1,
            concurrency: 8,
            seconds: 1.0,
            ops_per_sec: ops,
            mb_per_sec: mb,
            p50_ms: p99 / 2.0,
            p99_ms: p99,
        };
        BenchReport {
            schema_version: SCHEMA_VERSION,
            timestamp: Utc.with_ymd_and_hms(2026, 1, day, 12, 0, 0).unwrap(),
            store: "memory://".into(),
            commit: commit.map(String::from),
            machine: MachineInfo::current(),
            options: BenchOptions::default(),
            results: vec![
                res("put", put_ops, put_ops / 1000.0, 10.0),
                res("delete", 500.0, 0.0, 4.0),
            ],
        }
    }

    #[test]
    fn a_drop_is_flagged_where_it_happened_and_medians_roll() {
        let vals = [1000.0, 1010.0, 990.0, 700.0, 1000.0, 1005.0];
        let mut texts: Vec<(String, String)> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| {
                (
                    format!("r{i}.json"),
                    report(i as u32 + 1, *v, None).to_json(),
                )
            })
            .collect();
        texts.reverse(); // sorted by time, not by input order
        texts.push(("notes.json".into(), "{\"hello\": 1}".into()));
        let h = History::build(
            texts,
            HistoryOptions {
                regress_pct: 15.0,
                window: 3,
            },
        );
        assert_eq!(h.reports.len(), 6);
        assert_eq!(h.reports[0].name, "r0.json");
        assert_eq!(
            h.skipped,
            [Skipped {
                name: "notes.json".into(),
                reason: "not a bench report: no schema_version".into(),
                unreadable: false,
            }]
        );
        let titles: Vec<String> = h.series.iter().map(Series::title).collect();
        assert_eq!(
            titles,
            [
                "put 1KiB ops/s",
                "put 1KiB MB/s",
                "put 1KiB p50 ms",
                "put 1KiB p99 ms",
                "delete 1KiB ops/s",
                "delete 1KiB p50 ms",
                "delete 1KiB p99 ms"
            ],
            "MB/s of delete is 0 throughout and left out"
        );
        let put = &h.series[0];
        let flags: Vec<bool> = put.points.iter().map(|p| p.regression).collect();
        assert_eq!(flags, [false, false, false, true, false, false]);
        assert_eq!(put.points[0].change_pct, None);
        assert!((put.points[3].change_pct.unwrap() - (700.0 - 990.0) / 990.0 * 100.0).abs() < 1e-9);
        let medians: Vec<f64> = put.points.iter().map(|p| p.median).collect();
        assert_eq!(medians, [1000.0, 1005.0, 1000.0, 990.0, 990.0, 1000.0]);
        let regs = h.regressions();
        let names: Vec<(&str, &str)> = regs
            .iter()
            .map(|r| (r.report.as_str(), r.metric.as_str()))
            .collect();
        assert_eq!(
            names,
            [("r3.json", "ops_per_sec"), ("r3.json", "mb_per_sec")]
        );
        assert!(
            h.latest_regressions().is_empty(),
            "the newest report is fine"
        );
        assert_eq!(h.rows().len(), 7 * 6);
    }

    #[test]
    fn older_schemas_load_and_newer_ones_are_skipped_by_name() {
        let v2 = report(2, 1000.0, Some("abc1234"));
        let mut v1 = serde_json::to_value(report(1, 900.0, None)).unwrap();
        v1["schema_version"] = 1.into();
        v1.as_object_mut().unwrap().remove("commit");
        let mut v9 = serde_json::to_value(report(3, 100.0, None)).unwrap();
        v9["schema_version"] = 9.into();
        let h = History::build(
            vec![
                ("old.json".into(), v1.to_string()),
                ("new.json".into(), v2.to_json()),
                ("future.json".into(), v9.to_string()),
            ],
            HistoryOptions::default(),
        );
        let names: Vec<&str> = h.reports.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["old.json", "new.json"]);
        assert_eq!(h.reports[0].commit, None);
        assert_eq!(h.reports[1].commit.as_deref(), Some("abc1234"));
        assert_eq!(h.skipped.len(), 1);
        assert_eq!(h.skipped[0].name, "future.json");
        assert_eq!(
            h.skipped[0].reason,
            format!("bench report has schema_version 9; this cairn reads 1 to {SCHEMA_VERSION}")
        );
    }
}
