//! `cairn bench` on the memory store with tiny sizes: reports, baselines, the archive.

mod common;
use common::Sandbox;

const TINY: [&str; 7] = [
    "bench",
    "memory://",
    "--sizes",
    "1K,2K",
    "--count",
    "3",
    "--large=0",
];

fn with(extra: &[&str]) -> Vec<String> {
    TINY.iter().chain(extra).map(|s| s.to_string()).collect()
}

fn run(s: &Sandbox, args: &[String]) -> common::Run {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    s.run(&a)
}

/// Scales every result's rates and latencies, for baselines far better or worse than now.
fn scaled(report: &serde_json::Value, rate: f64, latency: f64) -> serde_json::Value {
    let mut r = report.clone();
    for res in r["results"].as_array_mut().unwrap() {
        for (k, v) in res.as_object_mut().unwrap() {
            let f = if k.ends_with("_per_sec") {
                rate
            } else if k.ends_with("_ms") {
                latency
            } else {
                continue;
            };
            // Zeros stay zeros (compare skips them: list and delete move no bytes).
            let x = v.as_f64().unwrap() * f;
            *v = serde_json::json!(x);
        }
    }
    r
}

#[test]
fn report_baseline_and_archive() {
    let s = Sandbox::new();
    let r = run(
        &s,
        &with(&[
            "--report",
            "run.json",
            "--markdown",
            "run.md",
            "--commit",
            "abc1234",
        ]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.out().contains("| put | 1KiB |"), "{}", r.out());
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.work.join("run.json")).unwrap()).unwrap();
    assert_eq!(report["schema_version"], 2);
    assert_eq!(report["commit"], "abc1234");
    let ops: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["op"].as_str().unwrap())
        .collect();
    assert!(
        ops.contains(&"put") && ops.contains(&"get") && ops.contains(&"delete"),
        "{ops:?}"
    );
    assert!(std::fs::read_to_string(s.work.join("run.md"))
        .unwrap()
        .contains("| op |"));

    // A baseline no machine can reach: exit 1 with the regressions listed.
    let high = scaled(&report, 1e12, 1e-9);
    std::fs::write(s.work.join("high.json"), high.to_string()).unwrap();
    let r = run(&s, &with(&["--baseline", "high.json"]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("error: regression: put 1KiB ops_per_sec"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("regressed by more than 15%"),
        "{}",
        r.stderr
    );
    // A baseline far worse than now passes; so does the report against itself with a wide margin.
    let low = scaled(&report, 1e-9, 1e12);
    std::fs::write(s.work.join("low.json"), low.to_string()).unwrap();
    let r = run(&s, &with(&["--baseline", "low.json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("No regression"), "{}", r.stderr);
    let r = run(
        &s,
        &with(&["--baseline", "run.json", "--regress-pct", "1e12"]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A file that is not a report fails before measuring.
    std::fs::write(s.work.join("bad.json"), "{}").unwrap();
    let r = run(&s, &with(&["--baseline", "bad.json"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("schema_version"), "{}", r.stderr);

    // --archive saves the report; archive:NAME finds it as a baseline.
    let r = run(&s, &with(&["--archive", "ci"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("Archived the report as archive/ci/"),
        "{}",
        r.stderr
    );
    let listed = s
        .ok(&["archive", "ls", "--name", "ci", "--kind", "bench"])
        .lines();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let r = run(
        &s,
        &with(&["--baseline", "archive:ci", "--regress-pct", "1e12"]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&s, &with(&["--baseline", "archive:nobody"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no bench report named"), "{}", r.stderr);
}

#[test]
fn json_flag_prints_the_report() {
    let s = Sandbox::new();
    let mut a = vec!["--json".to_string()];
    a.extend(with(&[]));
    let r = run(&s, &a);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["schema_version"], 2);
    // No --commit, no CI variables, and the sandbox is no git checkout: no commit recorded.
    assert_eq!(r.json().get("commit"), None);
    let r = s.run(&["bench", "memory://", "--sizes", "1Q"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("--sizes"), "{}", r.stderr);
}
