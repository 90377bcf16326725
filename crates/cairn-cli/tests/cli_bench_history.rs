//! `cairn bench history`: twelve generated reports with one planted regression, read from a
//! directory and from the archive; the table, the JSON, the SVG's structure, the PNG and the
//! HTML page.

mod common;
use common::Sandbox;
use serde_json::{json, Value};

/// A schema-2 report of day `day` (January 2026) with put/get at 1 KiB and a large download.
fn report(day: u32, put_ops: f64, commit: &str) -> Value {
    let res = |op: &str, size: u64, ops: f64, mb: f64, p99: f64| {
        json!({
            "op": op, "size": size, "ops": 100, "objects_per_op": 1, "concurrency": 8,
            "seconds": 1.0, "ops_per_sec": ops, "mb_per_sec": mb,
            "p50_ms": p99 / 2.0, "p99_ms": p99,
        })
    };
    json!({
        "schema_version": 2,
        "timestamp": format!("2026-01-{day:02}T12:00:00Z"),
        "store": "s3://bench-bucket",
        "commit": commit,
        "machine": {
            "os": "linux", "arch": "x86_64", "cpus": 2, "memory_bytes": 25_000_000_000u64,
            "hostname": "ci-runner-7", "cairn_version": "0.1.0",
        },
        "options": {
            "sizes": [1024], "ops": 100, "concurrency": 8, "large_object_size": 1048576,
            "cold_warm": false, "lists": 1,
        },
        "results": [
            res("put", 1024, put_ops, put_ops * 1024.0 / 1e6, 12.0),
            res("get", 1024, 2000.0 + day as f64, 2.0, 5.0),
            res("large_download", 1048576, 1.0, 95.0 + (day % 3) as f64, 11.0),
        ],
    })
}

/// Twelve reports in `dir`; the eighth (day 8) drops put ops/s by 40%, the rest vary by 1%.
fn twelve(s: &Sandbox, dir: &str) {
    for day in 1..=12u32 {
        let ops = if day == 8 {
            600.0
        } else {
            1000.0 + (day % 2) as f64 * 10.0
        };
        let r = report(day, ops, &format!("c{day:02}abcdef"));
        s.write(
            &format!("{dir}/run-{day:02}.json"),
            r.to_string().as_bytes(),
        );
    }
}

/// The series a report above makes: 3 results x 4 metrics, less `get`'s and `put`'s nothing
/// (all have MB/s) = 12 charts.
const SERIES: [&str; 12] = [
    "put 1KiB ops/s",
    "put 1KiB MB/s",
    "put 1KiB p50 ms",
    "put 1KiB p99 ms",
    "get 1KiB ops/s",
    "get 1KiB MB/s",
    "get 1KiB p50 ms",
    "get 1KiB p99 ms",
    "large_download 1MiB ops/s",
    "large_download 1MiB MB/s",
    "large_download 1MiB p50 ms",
    "large_download 1MiB p99 ms",
];

#[test]
fn twelve_reports_one_planted_regression_named_in_table_json_and_chart() {
    let s = Sandbox::new();
    twelve(&s, "reports");
    // Beside them: a file that is no report, one of a future schema, and a version 1 report.
    s.write("reports/notes.json", br#"{"what": "not a report"}"#);
    let mut future = report(13, 1000.0, "c13");
    future["schema_version"] = json!(9);
    s.write("reports/future.json", future.to_string().as_bytes());
    let mut v1 = report(1, 1005.0, "");
    v1["schema_version"] = json!(1);
    v1["timestamp"] = json!("2025-12-31T12:00:00Z");
    v1.as_object_mut().unwrap().remove("commit");
    s.write("reports/old-v1.json", v1.to_string().as_bytes());
    s.write("reports/readme.txt", b"ignored: not .json");

    let r = s.ok(&[
        "bench", "history", "reports", "--plot", "h.svg", "--html", "h.html",
    ]);
    let out = r.out();
    // The table: one block per series, the regression marked on day 8's put ops/s and MB/s.
    for title in SERIES {
        assert!(
            out.contains(&format!("{title}:\n")),
            "{title} missing:\n{out}"
        );
    }
    let marked: Vec<&str> = out.lines().filter(|l| l.ends_with("REGRESSION")).collect();
    assert_eq!(marked.len(), 2, "{out}");
    assert!(
        marked
            .iter()
            .all(|l| l.contains("2026-01-08 12:00  c08abcdef")),
        "{out}"
    );
    assert!(
        r.stderr.contains("regression: put 1KiB ops/s at 2026-01-08 12:00 (c08abcdef): 1010.000 -> 600.000 (-40.6%)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("warning: skipped notes.json: not a bench report: no schema_version"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("warning: skipped future.json: bench report has schema_version 9; this cairn reads 1 to 2"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(
            "13 reports, 12 series, 2 regressions beyond 15% (0 in the newest), 2 skipped"
        ),
        "{}",
        r.stderr
    );

    // The JSON: the same regressions, rows pandas can load, the v1 report first.
    let v = s.ok(&["--json", "bench", "history", "reports"]).json();
    let regs: Vec<(String, String)> = v["regressions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["report"].as_str().unwrap().to_string(),
                r["metric"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        regs,
        [
            ("run-08.json".to_string(), "ops_per_sec".to_string()),
            ("run-08.json".to_string(), "mb_per_sec".to_string())
        ]
    );
    assert_eq!(v["rows"].as_array().unwrap().len(), 12 * 13);
    assert_eq!(v["reports"][0]["name"], "old-v1.json");
    assert_eq!(v["reports"][0]["commit"], Value::Null);
    assert_eq!(v["reports"][12]["commit"], "c12abcdef");
    let skipped: Vec<&str> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["future.json", "notes.json"]);

    // The SVG: one chart per series (its title), one red ring per regression, and the
    // caption with the machine and the commits.
    let svg = std::fs::read_to_string(s.work.join("h.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("the SVG parses");
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect();
    for title in SERIES {
        assert_eq!(
            texts.iter().filter(|t| *t == title).count(),
            1,
            "{title}: {texts:?}"
        );
    }
    let red = format!("#{:02X}{:02X}{:02X}", 0xD6, 0x27, 0x28);
    let rings = doc
        .descendants()
        .filter(|n| n.has_tag_name("circle") && n.attribute("stroke") == Some(red.as_str()))
        .count();
    assert_eq!(rings, 2, "one ring per flagged point");
    let caption = texts
        .iter()
        .find(|t| t.starts_with("machine:"))
        .expect("a caption");
    assert_eq!(
        caption,
        "machine: ci-runner-7 (linux x86_64, 2 CPUs) · commits c01abcdef .. c12abcdef · 2 regressions marked (beyond 15%)"
    );
    let title = texts
        .iter()
        .find(|t| t.starts_with("cairn bench history"))
        .unwrap();
    assert_eq!(
        title,
        "cairn bench history: 13 reports, 2025-12-31 to 2026-01-12, store s3://bench-bucket"
    );

    // The page holds the same chart and one table row per value, flagged rows marked.
    let html = std::fs::read_to_string(s.work.join("h.html")).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert_eq!(html.matches("<svg").count(), 1);
    assert_eq!(html.matches("<tr class=reg>").count(), 2);
    assert_eq!(
        html.matches("<tr").count(),
        12 * 13 + 1,
        "rows plus the header"
    );
}

#[test]
fn png_charts_and_bad_plot_names() {
    let s = Sandbox::new();
    twelve(&s, "reports");
    s.ok(&["bench", "history", "reports", "--plot", "h.svg"]);
    s.ok(&["bench", "history", "reports", "--plot", "h.png"]);
    let png = std::fs::read(s.work.join("h.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // IHDR: twice the SVG's size (4 charts x 300 wide, 56 + 3 x 190 high).
    let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((w, h), (2 * 1200, 2 * (56 + 3 * 190)));
    let svg = std::fs::read_to_string(s.work.join("h.svg")).unwrap();
    assert!(
        svg.contains(r#"width="1200" height="626""#),
        "{}",
        &svg[..200]
    );

    let r = s.run(&["bench", "history", "reports", "--plot", "h.pdf"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("--plot h.pdf: the file must end in .svg or .png"),
        "{}",
        r.stderr
    );
    assert!(!s.work.join("h.pdf").exists());
    let r = s.run(&["bench", "history", "empty-dir-that-is-missing"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    s.write("empty/x.txt", b"");
    let r = s.run(&["bench", "history", "empty"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("no bench reports in empty"),
        "{}",
        r.stderr
    );
}

#[test]
fn archived_reports_and_a_regression_in_the_newest_exits_1() {
    let s = Sandbox::new();
    let store = format!("file://{}", s.work.join("arch").display());
    for (day, ops) in [(1, 1000.0), (2, 1010.0), (3, 500.0)] {
        let r = report(day, ops, &format!("c{day}"));
        let f = s.write(&format!("r{day}.json"), r.to_string().as_bytes());
        s.ok(&[
            "archive",
            "--store",
            &store,
            "save",
            "ci",
            "bench",
            f.to_str().unwrap(),
        ]);
    }
    let r = s.run(&["bench", "history", "archive:ci", "--archive-store", &store]);
    assert_eq!(r.code, 1, "{}\n{}", r.out(), r.stderr);
    assert!(
        r.stderr
            .contains("the newest report has 2 metrics worse than the one before by more than 15%"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("3 reports, 12 series, 2 regressions"),
        "{}",
        r.stderr
    );
    // A looser threshold passes.
    s.ok(&[
        "bench",
        "history",
        "archive:ci",
        "--archive-store",
        &store,
        "--regress-pct",
        "60",
    ]);
    let r = s.run(&[
        "bench",
        "history",
        "archive:nobody",
        "--archive-store",
        &store,
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("no bench reports in archive:nobody"),
        "{}",
        r.stderr
    );
}
