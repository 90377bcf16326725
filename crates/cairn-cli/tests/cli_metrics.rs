//! `--metrics-file` and `-vv` on a real server (Garage): the counters of a small sync and of a
//! failed read, exactly, and one line per store call with its fields and no secret.

mod common;
use common::{var, Sandbox};

/// A sandbox with Garage's credentials in the env, the base URL, the query naming the
/// server, and the secret.
fn garage() -> (Sandbox, String, String, String) {
    let v = |k: &str| var(&format!("CAIRN_TEST_GARAGE_{k}"));
    let mut s = Sandbox::new();
    let secret = v("SECRET_ACCESS_KEY");
    s.env.push(("AWS_ACCESS_KEY_ID".into(), v("ACCESS_KEY_ID")));
    s.env.push(("AWS_SECRET_ACCESS_KEY".into(), secret.clone()));
    s.env.push(("AWS_REGION".into(), v("REGION")));
    let base = format!(
        "s3://{}/{}/cli-metrics-{:08x}",
        v("BUCKET"),
        var("CAIRN_TEST_RUN_ID"),
        std::process::id()
    );
    let query = format!(
        "?endpoint={}&path_style=true&provider=garage",
        v("ENDPOINT")
    );
    (s, base, query, secret)
}

#[test]
fn a_small_sync_and_a_failed_read_are_counted_exactly() {
    let (s, base, q, secret) = garage();
    let mut total = 0;
    for i in 0..5 {
        let body = format!("id,value\n{i},{}\n", i * i);
        total += body.len();
        s.write(&format!("src/{i}.csv"), body.as_bytes());
    }
    let dst = format!("{base}/data/{q}");
    s.ok(&["--metrics-file", "sync.prom", "sync", "src", &dst]);
    let text = std::fs::read_to_string(s.work.join("sync.prom")).unwrap();
    let m = cairn::testkit::prometheus_samples(&text);
    let get = |k: &str| {
        m.get(k)
            .copied()
            .unwrap_or_else(|| panic!("no {k} in\n{text}"))
    };
    assert_eq!(get(r#"cairn_requests_total{op="put",outcome="ok"}"#), 5.0);
    assert_eq!(
        get(r#"cairn_bytes_total{op="put",direction="written"}"#),
        total as f64
    );
    assert_eq!(
        get(r#"cairn_http_requests_total{method="PUT",status="200"}"#),
        5.0
    );
    assert!(
        !m.keys().any(|k| k.starts_with("cairn_errors_total")),
        "{text}"
    );

    // A read of a missing object: exit 1, and the error counted by kind.
    let missing = format!("{base}/data/nope.csv{q}");
    let r = s.run(&["--metrics-file", "cat.prom", "-vv", "cat", &missing]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let text = std::fs::read_to_string(s.work.join("cat.prom")).unwrap();
    let m = cairn::testkit::prometheus_samples(&text);
    assert_eq!(
        m.get(r#"cairn_errors_total{op="get",kind="not_found"}"#),
        Some(&1.0),
        "{text}"
    );
    assert_eq!(
        m.get(r#"cairn_http_requests_total{method="GET",status="404"}"#),
        Some(&1.0),
        "{text}"
    );
    // -vv: the call as one line with its fields; never the secret.
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains(r#"op="get""#) && l.contains("/data/nope.csv\""))
        .unwrap_or_else(|| panic!("no span line:\n{}", r.stderr));
    assert!(
        line.contains(r#"outcome="not_found""#) && line.contains("close"),
        "{line}"
    );
    assert!(!r.stderr.contains('\x1b'), "no escape codes in a pipe");
    assert!(!r.stderr.contains(&secret) && !text.contains(&secret));
}
