//! Use case 000: a benchmark harness that archives its JSON reports and flags regressions.
//!
//! Reports go to `benchmarks/{repo-id}/{timestamp}-{run-type}.json`. Each run loads the latest
//! earlier report, compares it with `cairn bench --baseline`'s rule, and saves its own. The
//! reports stay in the archive: run.sh then charts them with `cairn bench history`. The store
//! comes from `CAIRN_URL`; credentials from the AWS chain (or the S3_* names the harness used
//! before).

use cairn::archive::{Archive, Filter};
use cairn::ops::bench::{compare, BenchOptions, BenchReport, BenchResult, MachineInfo};
use cairn::Metadata;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// One nightly run's report: put and get of 1 KiB objects at these rates.
fn report(put_ops: f64, commit: &str) -> BenchReport {
    let result = |op: &str, ops: f64| BenchResult {
        op: op.into(),
        size: 1024,
        ops: 200,
        objects_per_op: 1,
        concurrency: 16,
        seconds: 200.0 / ops,
        ops_per_sec: ops,
        mb_per_sec: ops * 1024.0 / 1e6,
        p50_ms: 6.0,
        p99_ms: 12.0,
    };
    BenchReport {
        schema_version: cairn::ops::bench::SCHEMA_VERSION,
        timestamp: chrono::Utc::now(),
        store: "s3://bench-target".into(),
        commit: Some(commit.into()),
        machine: MachineInfo::current(),
        options: BenchOptions::default(),
        results: vec![result("put", put_ops), result("get", 2400.0)],
    }
}

#[tokio::main]
async fn main() -> Res<()> {
    let url =
        std::env::var("CAIRN_URL").unwrap_or_else(|_| "local://examples/report_archive".into());
    let store = cairn::open(&url).await?;
    let archive =
        Archive::new(store).with_template("benchmarks/{name}/{timestamp}-{kind}.{ext}")?;
    let repo = "repo-42";
    let mut regressions = 0;
    for (i, value) in [1000.0, 1010.0, 700.0].into_iter().enumerate() {
        let previous = archive.latest(repo, Some("nightly")).await?;
        let commit = format!("c{i}");
        let md: Metadata = [("commit".to_string(), commit.clone())]
            .into_iter()
            .collect();
        let current = report(value, &commit);
        let saved = archive
            .save(
                repo,
                "nightly",
                current.to_json().into(),
                md,
                Some("application/json"),
            )
            .await?;
        assert!(
            saved.key.as_str().starts_with("benchmarks/repo-42/"),
            "{}",
            saved.key
        );
        assert!(
            saved.key.as_str().ends_with("-nightly.json"),
            "{}",
            saved.key
        );
        if let Some(prev) = previous {
            let before =
                BenchReport::from_json(std::str::from_utf8(&archive.load(&prev.key).await?)?)?;
            let found = compare(&before, &current, 15.0);
            for r in &found {
                println!("{} vs {}: REGRESSION {r}", saved.key, prev.key);
            }
            regressions += found.len();
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(
        regressions, 2,
        "the 700 ops/s run regressed in ops/s and MB/s"
    );
    let all = archive
        .list(&Filter {
            name: Some(repo.into()),
            ..Default::default()
        })
        .await?;
    assert_eq!(all.len(), 3);
    let latest = BenchReport::from_json(std::str::from_utf8(&archive.load(&all[0].key).await?)?)?;
    assert_eq!(latest.results[0].ops_per_sec, 700.0, "latest loads first");
    println!("report_archive: ok (3 reports archived; run.sh charts them)");
    Ok(())
}
