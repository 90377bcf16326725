//! Use case 000: a benchmark harness that archives its JSON reports and flags regressions.
//!
//! Reports go to `benchmarks/{repo-id}/{timestamp}-{run-type}.json`. Each run loads the latest
//! earlier report, compares, and saves its own. The store comes from `CAIRN_URL`; credentials
//! from the AWS chain (or the S3_* names the harness used before).

use bytes::Bytes;
use cairn::archive::{Archive, Filter};
use cairn::Metadata;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn report(ops_per_sec: f64) -> Bytes {
    serde_json::to_vec_pretty(&serde_json::json!({
        "schema_version": 1,
        "results": { "put_1KiB": { "ops_per_sec": ops_per_sec } }
    }))
    .unwrap()
    .into()
}

fn ops(b: &[u8]) -> f64 {
    let v: serde_json::Value = serde_json::from_slice(b).expect("report is JSON");
    v["results"]["put_1KiB"]["ops_per_sec"]
        .as_f64()
        .expect("metric present")
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
        let md: Metadata = [("commit".to_string(), format!("c{i}"))]
            .into_iter()
            .collect();
        let saved = archive
            .save(repo, "nightly", report(value), md, Some("application/json"))
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
            let before = ops(&archive.load(&prev.key).await?);
            let change = (value - before) / before * 100.0;
            let flag = change < -15.0;
            regressions += flag as u32;
            println!(
                "{} vs {}: {change:+.1}%{}",
                saved.key,
                prev.key,
                if flag { "  REGRESSION" } else { "" }
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(regressions, 1, "exactly the 700 ops/s run regressed");
    let all = archive
        .list(&Filter {
            name: Some(repo.into()),
            ..Default::default()
        })
        .await?;
    assert_eq!(all.len(), 3);
    assert_eq!(
        ops(&archive.load(&all[0].key).await?),
        700.0,
        "latest loads first"
    );
    for e in all {
        archive.delete(&e.key).await?;
    }
    println!("report_archive: ok");
    Ok(())
}
