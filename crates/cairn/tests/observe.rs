//! The observation layer on a real server (Garage): exact request, byte, error and HTTP
//! counters in the Prometheus text, and tracing spans with op, store, key, bytes and outcome,
//! never a secret. Each test is its own process under nextest, so the global recorder and
//! subscriber are this test's alone.

use cairn::{Config, ErrorKind, Key, StoreExt};
use futures::TryStreamExt;
use std::io::Write;
use std::sync::{Arc, Mutex};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start servers with scripts/servers/start.sh and source the env file")
    })
}

/// Everything the fmt subscriber writes, kept for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_calls_are_counted_exactly_and_traced_without_secrets() {
    let handle = cairn::metrics::install_prometheus(None).unwrap();
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("cairn=trace")
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let v = |k: &str| env(&format!("CAIRN_TEST_GARAGE_{k}"));
    let secret = v("SECRET_ACCESS_KEY");
    let prefix = format!("observe-{:08x}", rand::random::<u32>());
    let url = format!(
        "s3://{}/{}/{prefix}?endpoint={}&region={}&path_style=true&provider=garage",
        v("BUCKET"),
        env("CAIRN_TEST_RUN_ID"),
        v("ENDPOINT"),
        v("REGION"),
    );
    let c = Config::from_pairs([
        ("access_key_id", v("ACCESS_KEY_ID").as_str()),
        ("secret_access_key", secret.as_str()),
    ])
    .unwrap();
    let store = cairn::open_with(&url, c).await.unwrap();

    let bodies: [&[u8]; 3] = [b"{\"a\": 1}", b"id,name\n1,x\n", b"plain text, 24 bytes ok"];
    for (i, b) in bodies.iter().enumerate() {
        store
            .put(&Key::new(format!("o/{i}.json")).unwrap(), b.to_vec())
            .await
            .unwrap();
    }
    let got = store.get(&Key::new("o/1.json").unwrap()).await.unwrap();
    assert_eq!(&got[..], bodies[1]);
    let e = store
        .get(&Key::new("o/missing.json").unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let listed: Vec<_> = store.list_objects("o/").try_collect().await.unwrap();
    assert_eq!(listed.len(), 3);

    let m = cairn::testkit::prometheus_samples(&handle.render());
    let get = |k: &str| {
        m.get(k)
            .copied()
            .unwrap_or_else(|| panic!("no {k} in\n{m:#?}"))
    };
    let written: usize = bodies.iter().map(|b| b.len()).sum();
    assert_eq!(get(r#"cairn_requests_total{op="put",outcome="ok"}"#), 3.0);
    assert_eq!(
        get(r#"cairn_bytes_total{op="put",direction="written"}"#),
        written as f64
    );
    assert_eq!(get(r#"cairn_requests_total{op="get",outcome="ok"}"#), 1.0);
    assert_eq!(
        get(r#"cairn_bytes_total{op="get",direction="read"}"#),
        bodies[1].len() as f64
    );
    assert_eq!(
        get(r#"cairn_requests_total{op="get",outcome="not_found"}"#),
        1.0
    );
    assert_eq!(get(r#"cairn_errors_total{op="get",kind="not_found"}"#), 1.0);
    assert_eq!(get(r#"cairn_requests_total{op="list",outcome="ok"}"#), 1.0);
    assert_eq!(get(r#"cairn_request_seconds_count{op="put"}"#), 3.0);
    // Every HTTP request object_store sent: three PUTs, one GET found, one not found.
    assert_eq!(
        get(r#"cairn_http_requests_total{method="PUT",status="200"}"#),
        3.0
    );
    assert_eq!(
        get(r#"cairn_http_requests_total{method="GET",status="404"}"#),
        1.0
    );
    assert!(
        !m.keys().any(|k| k.starts_with("cairn_retries_total")),
        "no retries: {m:#?}"
    );

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let put = log
        .lines()
        .find(|l| l.contains(r#"/o/0.json""#) && l.contains(r#"op="put""#))
        .unwrap_or_else(|| panic!("no put span closed:\n{log}"));
    assert!(put.contains(&format!("bytes={}", bodies[0].len())), "{put}");
    assert!(put.contains(r#"outcome="ok""#), "{put}");
    assert!(
        put.contains(&format!("store=s3://{}", v("BUCKET"))),
        "{put}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains(r#"/o/missing.json""#) && l.contains(r#"outcome="not_found""#)),
        "{log}"
    );
    assert!(
        !log.contains(&secret),
        "the secret key is in a span or event"
    );
}
