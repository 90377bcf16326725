//! Error mapping, health checks, redaction, odd server-side keys and bucket administration,
//! against real servers (see `tests/conformance_s3.rs` for the environment).
//!
//! Reads CAIRN_TEST_RUN_ID, CAIRN_TEST_{MOTO,GARAGE}_{ENDPOINT,BUCKET,REGION,ACCESS_KEY_ID,
//! SECRET_ACCESS_KEY} and CAIRN_TEST_GARAGE_CONFIG (to add a key without permissions).

use bytes::Bytes;
use cairn::backend::s3::admin::{Encryption, LifecycleRule, PresignMethod, Transition, Versioning};
use cairn::{
    Config, DynStore, ErrorKind, Key, ListEntry, ListOptions, PutOptions, Store, StoreExt,
};
use futures::{StreamExt, TryStreamExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start servers with scripts/servers/start.sh and source the env file")
    })
}

fn var(server: &str, k: &str) -> String {
    env(&format!("CAIRN_TEST_{server}_{k}"))
}

/// The run id plus a value per test process, so reruns against the same servers start clean.
fn run_id() -> String {
    static N: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    N.get_or_init(|| format!("{}-{:08x}", env("CAIRN_TEST_RUN_ID"), rand::random::<u32>()))
        .clone()
}

/// A bucket name unique to this run and this call, so reruns never collide.
fn fresh_bucket(kind: &str) -> String {
    format!("cairn-{kind}-{}-{:08x}", run_id(), rand::random::<u32>())
}

/// The URL query for a server: endpoint, region, path style, provider.
fn query(server: &str) -> String {
    format!(
        "endpoint={}&region={}&path_style=true&provider={}",
        var(server, "ENDPOINT"),
        var(server, "REGION"),
        server.to_ascii_lowercase()
    )
}

fn creds(id: &str, secret: &str) -> Config {
    Config::from_pairs([("access_key_id", id), ("secret_access_key", secret)]).unwrap()
}

fn good_creds(server: &str) -> Config {
    creds(
        &var(server, "ACCESS_KEY_ID"),
        &var(server, "SECRET_ACCESS_KEY"),
    )
}

async fn open(url: &str, config: Config) -> DynStore {
    cairn::open_with(url, config)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"))
}

/// `s3://{bucket}/{run}/{test}` on a server with its own credentials.
async fn scoped(server: &str, test: &str) -> DynStore {
    let url = format!(
        "s3://{}/{}/{test}?{}",
        var(server, "BUCKET"),
        run_id(),
        query(server)
    );
    open(&url, good_creds(server)).await
}

fn key(s: &str) -> Key {
    Key::new(s).unwrap()
}

#[tokio::test]
async fn bad_credentials_are_unauthenticated() {
    let bucket = var("GARAGE", "BUCKET");
    let url = format!("s3://{bucket}/{}/badcreds?{}", run_id(), query("GARAGE"));
    // A wrong secret for a real key, then a key the server has never seen.
    for (id, secret) in [
        (var("GARAGE", "ACCESS_KEY_ID"), "0".repeat(64)),
        ("GK000000000000000000000000".to_string(), "0".repeat(64)),
    ] {
        let store = open(&url, creds(&id, &secret)).await;
        let e = store.health_check().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated, "health: {e}");
        assert!(!e.is_temporary(), "{e}");
        let e = store.get(&key("k")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated, "get: {e}");
        // HEAD's 403 has no body; cairn asks again with a GET to tell which.
        let e = store.head(&key("k")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated, "head: {e}");
        let e = store.put(&key("k"), &b"x"[..]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated, "put: {e}");
        let msg = e.to_string();
        assert!(
            msg.contains("put") && msg.contains("badcreds/k") && msg.contains("hint"),
            "{msg}"
        );
    }
}

#[tokio::test]
async fn missing_bucket_is_bucket_not_found() {
    for server in ["GARAGE", "MOTO"] {
        let url = format!("s3://cairn-missing-{}?{}", run_id(), query(server));
        let store = open(&url, good_creds(server)).await;
        let e = store.health_check().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BucketNotFound, "{server} health: {e}");
        let e = store.get(&key("k")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BucketNotFound, "{server} get: {e}");
        let e = store.put(&key("k"), &b"x"[..]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BucketNotFound, "{server} put: {e}");
        let e = store
            .list_objects("")
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BucketNotFound, "{server} list: {e}");
        assert!(
            e.to_string().contains("cairn mb"),
            "hint says what to do: {e}"
        );
    }
}

#[tokio::test]
async fn missing_permission_is_permission_denied() {
    // A Garage key with no rights on the test bucket, made with Garage's own CLI.
    let cfg = env("CAIRN_TEST_GARAGE_CONFIG");
    let id = format!("GK{:0>24}", run_id().replace('-', ""));
    let secret = "ab".repeat(32);
    let garage = std::env::var("CARGO_HOME")
        .map(|h| format!("{h}/bin/garage"))
        .ok()
        .filter(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| format!("{}/.cargo/bin/garage", env("HOME")));
    let out = std::process::Command::new(garage)
        .args([
            "-c",
            &cfg,
            "key",
            "import",
            "--yes",
            "-n",
            "cairn-noperm",
            &id,
            &secret,
        ])
        .output()
        .expect("run garage");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || stderr.contains("already exists"),
        "garage key import: {stderr}"
    );
    let url = format!("s3://{}?{}", var("GARAGE", "BUCKET"), query("GARAGE"));
    let store = open(&url, creds(&id, &secret)).await;
    let e = store.health_check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    let e = store.get(&key("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
}

/// A port nobody listens on: bind, read the port, close.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn unreachable_endpoint_is_network_after_bounded_retries() {
    let port = closed_port();
    let url = format!(
        "s3://cairn-test?endpoint=http://127.0.0.1:{port}&region=us-east-1&provider=moto&max_retries=2&retry_timeout=5s&connect_timeout=1s"
    );
    let store = open(&url, creds("AK", "secret")).await;
    let e = store.health_check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network, "{e}");
    // object_store's client retried it already: persistent, so nothing retries it again.
    assert!(e.is_persistent() && !e.is_temporary(), "{e}");
    assert!(
        e.to_string().contains("endpoint"),
        "hint names the endpoint: {e}"
    );
    let e = store.get(&key("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network, "{e}");
}

#[tokio::test]
async fn broken_connections_are_retried_a_bounded_number_of_times() {
    // A server that accepts and hangs up at once, counting connections.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    let server = tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(sock);
        }
    });
    for retries in [0usize, 2] {
        accepted.store(0, Ordering::SeqCst);
        let url = format!(
            "s3://cairn-test?endpoint=http://127.0.0.1:{port}&region=us-east-1&provider=moto&max_retries={retries}&retry_timeout=30s"
        );
        let store = open(&url, creds("AK", "secret")).await;
        let e = store.health_check().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Network, "{e}");
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            retries + 1,
            "attempts with max_retries={retries}"
        );
    }
    server.abort();
}

/// A one-object S3 endpoint: a GET without `Range` gets the whole object (200); every ranged
/// GET gets `503 SlowDown`, counted.
async fn ranges_always_503(size: usize) -> (u16, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let ranged = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&ranged);
    let server = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // One request head at a time (GETs carry no body).
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    buf.drain(..end);
                    let common = "etag: \"e1\"\r\nlast-modified: Tue, 01 Dec 2026 00:00:00 GMT\r\n";
                    let reply = if head.contains("\r\nrange:") {
                        count.fetch_add(1, Ordering::SeqCst);
                        let body =
                            "<Error><Code>SlowDown</Code><Message>slow down</Message></Error>";
                        format!(
                            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .into_bytes()
                    } else {
                        let mut r =
                            format!("HTTP/1.1 200 OK\r\n{common}content-length: {size}\r\n\r\n")
                                .into_bytes();
                        r.extend(std::iter::repeat_n(b'x', size));
                        r
                    };
                    if sock.write_all(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, ranged, server)
}

#[tokio::test]
async fn a_ranged_read_makes_the_configured_attempts_and_no_more() {
    let (size, part) = (64 * 1024, 16 * 1024);
    let (port, ranged, server) = ranges_always_503(size).await;
    let dir = tempfile::tempdir().unwrap();
    for retries in [0usize, 2] {
        ranged.store(0, Ordering::SeqCst);
        let mut config = creds("AK", "secret");
        for (k, v) in [
            ("endpoint", format!("http://127.0.0.1:{port}")),
            ("region", "us-east-1".into()),
            ("provider", "moto".into()),
            ("max_retries", retries.to_string()),
        ] {
            config.set(k, &v).unwrap();
        }
        // The S3 store alone: object_store's client is the only retry loop it has.
        let store = cairn::backend::s3::S3Store::new("b", &config)
            .await
            .unwrap();
        let opts = cairn::transfer::TransferOptions {
            part_size: part,
            multipart_threshold: part as u64,
            // One range at a time, so exactly one range meets the 503s.
            concurrency: 1,
            verify: false,
            ..Default::default()
        };
        let e = cairn::transfer::download_file(
            &store,
            &key("big"),
            &dir.path().join("big"),
            &opts,
            &cairn::ops::reporter::NoReporter,
        )
        .await
        .unwrap_err();
        assert_eq!(
            ranged.load(Ordering::SeqCst),
            retries + 1,
            "ranged GETs with max_retries={retries} (the downloader must not retry again)"
        );
        assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
        assert!(e.is_persistent() && !e.is_temporary(), "{e}");
    }
    server.abort();
}

#[tokio::test]
async fn secrets_never_appear_in_output() {
    let secret = "Sup3rS3cretValue-do-not-print-0123456789abcdef";
    let sse_key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // base64 of 32 bytes
    let url = format!(
        "s3://{}/{}/secrets?{}",
        var("GARAGE", "BUCKET"),
        run_id(),
        query("GARAGE")
    );
    let mut config = creds(&var("GARAGE", "ACCESS_KEY_ID"), secret);
    config
        .set("session_token", "T0kenT0kenT0ken-do-not-print")
        .unwrap();
    config.set("sse", "sse-c").unwrap();
    config.set("sse_customer_key", sse_key).unwrap();
    let store = open(&url, config.clone()).await;
    let mut seen = vec![
        format!("{store}"),
        format!("{store:?}"),
        format!("{config:?}"),
    ];
    for e in [
        store.health_check().await.unwrap_err(),
        store.put(&key("k"), &b"x"[..]).await.unwrap_err(),
        store.get(&key("k")).await.unwrap_err(),
    ] {
        seen.push(format!("{e}"));
        seen.push(format!("{e:?}"));
    }
    let (adm, _) = cairn::open_admin(&url, config).await.unwrap();
    seen.push(format!("{adm:?}"));
    seen.push(format!("{:?}", adm.bucket_exists().await));
    for s in &seen {
        for needle in [secret, "T0kenT0kenT0ken", sse_key] {
            assert!(!s.contains(needle), "secret leaked in: {s}");
        }
    }
    assert!(seen[0].starts_with("s3://"), "display: {}", seen[0]);
}

/// An aws-sdk-s3 client that can write keys cairn cannot express.
async fn raw_client(server: &str) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(var(server, "ENDPOINT"))
        .region(Region::new(var(server, "REGION")))
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .credentials_provider(Credentials::new(
            var(server, "ACCESS_KEY_ID"),
            var(server, "SECRET_ACCESS_KEY"),
            None,
            None,
            "test",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// A listing entry as `name` or `!name` (unlisted), for comparisons.
fn shown(e: &ListEntry) -> String {
    match e {
        ListEntry::Unlisted { name, reason } => {
            assert!(!reason.is_empty(), "{name}: a reason");
            format!("!{name}")
        }
        e => e.name().to_string(),
    }
}

#[tokio::test]
async fn listings_name_keys_cairn_cannot_represent() {
    for server in ["GARAGE", "MOTO"] {
        let raw = raw_client(server).await;
        let base = format!("{}/oddkeys", run_id());
        for k in [
            "weird/a//b",
            "weird/back\\slash",
            "weird/x/./y",
            "weird/dir/",
            "weird/dir/child",
            "weird/full/",
            "weird/full/c",
            "weird/ok",
            "weird/z/../q",
        ] {
            // An empty directory marker, as consoles and s3fs make them, and one with data
            // (object_store strips the `/`; a marker is told apart when children follow).
            let body: &'static [u8] = match k {
                "weird/dir/" => b"",
                "weird/full/" => b"bytes in a marker",
                _ => b"raw",
            };
            raw.put_object()
                .bucket(var(server, "BUCKET"))
                .key(format!("{base}/{k}"))
                .body(aws_sdk_s3::primitives::ByteStream::from_static(body))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{server}: raw put {k}: {e:?}"));
        }
        let store = scoped(server, "oddkeys").await;
        let all: Vec<ListEntry> = store
            .list(ListOptions::recursive("weird/"))
            .try_collect()
            .await
            .unwrap();
        assert_eq!(
            all.iter().map(shown).collect::<Vec<_>>(),
            [
                "!weird/a//b",
                "!weird/back\\slash",
                "weird/dir/child",
                "!weird/full/",
                "weird/full/c",
                "weird/ok",
                "!weird/x/./y",
                "!weird/z/../q",
            ],
            "{server}: every object is an entry, the ones cairn cannot name as unlisted"
        );
        // Objects only: each unlisted one is an error item of its own kind, and the
        // listing goes on after it.
        let items: Vec<cairn::Result<cairn::ObjectMeta>> =
            store.list_objects("weird/").collect().await;
        let got: Vec<String> = items
            .iter()
            .map(|r| match r {
                Ok(m) => m.key.to_string(),
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Unrepresentable, "{e}");
                    format!("!{}", e.key().unwrap())
                }
            })
            .collect();
        assert_eq!(got.len(), 8, "{server}: {got:?}");
        assert_eq!(got[2], "weird/dir/child", "{server}");
        let shallow: Vec<String> = store
            .list(ListOptions::shallow("weird/"))
            .map_ok(|e| shown(&e))
            .try_collect()
            .await
            .unwrap();
        assert_eq!(
            shallow,
            [
                "weird/a/",
                "!weird/back\\slash",
                "weird/dir/",
                "weird/full/",
                "weird/ok",
                "weird/x/",
                "weird/z/",
            ],
            "{server}"
        );
        // One level further, the bad name is a common prefix: unlisted with all below it.
        let below: Vec<String> = store
            .list(ListOptions::shallow("weird/a/"))
            .map_ok(|e| shown(&e))
            .try_collect()
            .await
            .unwrap();
        assert_eq!(below, ["!weird/a//"], "{server}");
        // The empty marker is its directory, not an object of it.
        let inside: Vec<String> = store
            .list_objects("weird/dir/")
            .map_ok(|m| m.key.to_string())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(inside, ["weird/dir/child"], "{server}");
        // Such a key cannot even be named: a clear InvalidInput, before any request.
        let e = Key::new("weird/a//b").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("empty segment"), "{e}");
    }
}

/// For docs/design.md: object_store's `Path::parse` keeps a `\` as it is (only `From<&str>`
/// would percent-encode it), so the S3 key really is `back\slash`. cairn's own `Key`
/// refuses it by choice, not because object_store could not carry it.
#[tokio::test]
async fn object_store_paths_carry_backslashes_verbatim() {
    use object_store::ObjectStoreExt;
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(var("MOTO", "ENDPOINT"))
        .with_bucket_name(var("MOTO", "BUCKET"))
        .with_region(var("MOTO", "REGION"))
        .with_access_key_id(var("MOTO", "ACCESS_KEY_ID"))
        .with_secret_access_key(var("MOTO", "SECRET_ACCESS_KEY"))
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .build()
        .unwrap();
    let raw = format!("{}/backslash/a\\b", run_id());
    let path = object_store::path::Path::parse(&raw).unwrap();
    assert_eq!(path.as_ref(), raw, "parse keeps the backslash");
    s3.put(&path, object_store::PutPayload::from_static(b"x"))
        .await
        .unwrap();
    let head = raw_client("MOTO")
        .await
        .head_object()
        .bucket(var("MOTO", "BUCKET"))
        .key(&raw)
        .send()
        .await;
    assert!(head.is_ok(), "the stored key is exactly {raw:?}: {head:?}");
    assert_eq!(
        s3.get(&path).await.unwrap().bytes().await.unwrap(),
        &b"x"[..]
    );
    s3.delete(&path).await.unwrap();
    // `a//b` and `x/../y` have no Path at all.
    assert!(object_store::path::Path::parse("a//b").is_err());
    assert!(object_store::path::Path::parse("x/../y").is_err());
}

#[tokio::test]
async fn an_unknown_endpoint_claims_no_conditional_puts() {
    // Garage without `provider=`: it accepts If-None-Match and overwrites anyway.
    let url = format!(
        "s3://{}/{}/generic?endpoint={}&region={}&path_style=true",
        var("GARAGE", "BUCKET"),
        run_id(),
        var("GARAGE", "ENDPOINT"),
        var("GARAGE", "REGION"),
    );
    let store = open(&url, good_creds("GARAGE")).await;
    let caps = store.capabilities();
    assert!(
        !caps.conditional_create && !caps.conditional_update,
        "{caps:?}"
    );
    assert!(!caps.conditional_update_multipart, "{caps:?}");
    let create = PutOptions::default().mode(cairn::PutMode::Create);
    let k = key(&format!("once-{:08x}", rand::random::<u32>()));
    store
        .put_opts(&k, Bytes::from_static(b"first"), create.clone())
        .await
        .unwrap();
    let e = store
        .put_opts(&k, Bytes::from_static(b"second"), create)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert_eq!(store.get(&k).await.unwrap(), &b"first"[..], "not replaced");
}

#[tokio::test]
async fn the_probe_finds_what_each_server_enforces() {
    for (server, enforced) in [("GARAGE", false), ("MOTO", true)] {
        let url = format!("s3://{}?{}", var(server, "BUCKET"), query(server));
        let (adm, _) = cairn::open_admin(&url, good_creds(server)).await.unwrap();
        let prefix = format!("{}/probe/", run_id());
        let w = adm.probe_conditional_writes(&prefix).await.unwrap();
        assert_eq!(
            (w.if_none_match, w.if_match),
            (enforced, enforced),
            "{server}"
        );
        let store = open(&url, good_creds(server)).await;
        let left: Vec<_> = store.list_objects(&prefix).try_collect().await.unwrap();
        assert!(
            left.is_empty(),
            "{server}: the probe object is deleted: {left:?}"
        );
    }
}

#[tokio::test]
async fn bad_metadata_names_are_invalid_input_and_nothing_is_written() {
    let store = scoped("GARAGE", "badmeta").await;
    let k = key("obj");
    let opts = cairn::PutOptions::default().meta("Bad Name", "x");
    let e = store
        .put_opts(&k, bytes::Bytes::from_static(b"x"), opts)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(!store.exists(&k).await.unwrap(), "nothing written");
}

fn admin_url(server: &str, bucket: &str) -> String {
    format!("s3://{bucket}?{}", query(server))
}

#[tokio::test]
async fn admin_create_and_delete_bucket_roundtrip() {
    for server in ["MOTO", "GARAGE"] {
        let bucket = fresh_bucket(&server.to_ascii_lowercase());
        let url = admin_url(server, &bucket);
        let (adm, name) = cairn::open_admin(&url, good_creds(server)).await.unwrap();
        assert_eq!(name, bucket);
        assert!(!adm.bucket_exists().await.unwrap(), "{server}: fresh name");
        adm.create_bucket()
            .await
            .unwrap_or_else(|e| panic!("{server}: create: {e}"));
        assert!(adm.bucket_exists().await.unwrap(), "{server}");
        // Creating it again: AlreadyExists, except where S3's legacy us-east-1 rule answers
        // success to the owner (moto follows it).
        match adm.create_bucket().await {
            Err(e) => assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{server}: {e}"),
            Ok(()) => {
                assert_eq!(
                    var(server, "REGION"),
                    "us-east-1",
                    "{server}: second create succeeded"
                )
            }
        }

        let store = open(&url, good_creds(server)).await;
        store.health_check().await.unwrap();
        store.put(&key("a/b"), &b"1"[..]).await.unwrap();
        let e = adm.delete_bucket(false).await.unwrap_err();
        assert_eq!(
            e.kind(),
            ErrorKind::PreconditionFailed,
            "{server}: not empty: {e}"
        );
        adm.delete_bucket(true)
            .await
            .unwrap_or_else(|e| panic!("{server}: force delete: {e}"));
        assert!(!adm.bucket_exists().await.unwrap(), "{server}: gone");
        let e = store.health_check().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BucketNotFound, "{server}: {e}");
    }
}

#[tokio::test]
async fn admin_versioning_encryption_lifecycle_on_moto() {
    let bucket = fresh_bucket("cfg");
    let url = admin_url("MOTO", &bucket);
    let (adm, _) = cairn::open_admin(&url, good_creds("MOTO")).await.unwrap();
    adm.create_bucket().await.unwrap();
    assert_eq!(adm.get_versioning().await.unwrap(), Versioning::Off);
    adm.put_versioning(true).await.unwrap();
    assert_eq!(adm.get_versioning().await.unwrap(), Versioning::Enabled);

    assert_eq!(adm.get_encryption().await.unwrap(), Encryption::None);
    adm.put_encryption_aes256().await.unwrap();
    assert!(
        matches!(adm.get_encryption().await.unwrap(), Encryption::Sse { ref algorithm, .. } if algorithm == "AES256")
    );

    assert!(adm.get_lifecycle().await.unwrap().is_empty());
    let rules = vec![
        LifecycleRule {
            id: "logs".into(),
            prefix: "logs/".into(),
            expiration_days: Some(30),
            transitions: vec![Transition {
                days: 7,
                storage_class: "STANDARD_IA".into(),
            }],
            abort_incomplete_multipart_days: Some(2),
            noncurrent_expiration_days: Some(10),
        },
        LifecycleRule {
            id: "tmp".into(),
            prefix: "tmp/".into(),
            expiration_days: Some(1),
            ..Default::default()
        },
    ];
    adm.put_lifecycle(&rules).await.unwrap();
    assert_eq!(adm.get_lifecycle().await.unwrap(), rules);
    let e = adm
        .put_lifecycle(&[LifecycleRule {
            id: "noop".into(),
            ..Default::default()
        }])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");

    let info = adm.info().await.unwrap();
    assert_eq!(info.versioning, Versioning::Enabled);
    assert_eq!(info.provider, "moto");

    // Two versions of one key: force delete must remove both.
    let store = open(&url, good_creds("MOTO")).await;
    store.put(&key("v"), &b"1"[..]).await.unwrap();
    store.put(&key("v"), &b"2"[..]).await.unwrap();
    adm.delete_bucket(true)
        .await
        .unwrap_or_else(|e| panic!("force delete of a versioned bucket: {e}"));
    assert!(!adm.bucket_exists().await.unwrap());
}

#[tokio::test]
async fn garage_admin_unsupported_is_reported() {
    let bucket = fresh_bucket("uns");
    let url = admin_url("GARAGE", &bucket);
    let (adm, _) = cairn::open_admin(&url, good_creds("GARAGE")).await.unwrap();
    adm.create_bucket().await.unwrap();
    let e = adm.put_versioning(true).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("put_bucket_versioning"), "{e}");
    let e = adm.put_encryption_aes256().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    let info = adm.info().await.unwrap();
    assert_eq!(info.provider, "garage");
    // Garage reads versioning (never on) but does not implement bucket encryption.
    assert_eq!(info.versioning, Versioning::Off);
    assert_eq!(info.encryption, Encryption::Unsupported);
    adm.delete_bucket(true).await.unwrap();
}

#[tokio::test]
async fn admin_for_rejects_non_s3_urls() {
    let e = cairn::open_admin("memory://", Config::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn sse_c_objects_need_their_key() {
    // Garage implements SSE-C (moto ignores it), so this shows the key really is sent.
    let url = format!(
        "s3://{}/{}/ssec?{}",
        var("GARAGE", "BUCKET"),
        run_id(),
        query("GARAGE")
    );
    let mut with_key = good_creds("GARAGE");
    with_key.set("sse", "sse-c").unwrap();
    with_key
        .set(
            "sse_customer_key",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )
        .unwrap();
    let store = open(&url, with_key).await;
    store.put(&key("secret.bin"), &b"sealed"[..]).await.unwrap();
    assert_eq!(store.get(&key("secret.bin")).await.unwrap(), &b"sealed"[..]);
    assert_eq!(store.head(&key("secret.bin")).await.unwrap().size, 6);
    let plain = open(&url, good_creds("GARAGE")).await;
    let e = plain.get(&key("secret.bin")).await.unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::InvalidInput,
        "reading without the key: {e}"
    );
    let mut bad = good_creds("GARAGE");
    bad.set("sse", "sse-c").unwrap();
    bad.set("sse_customer_key", "c2hvcnQ=").unwrap();
    let e = cairn::open_with(&url, bad).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(
        !e.to_string().contains("c2hvcnQ="),
        "the key is not echoed: {e}"
    );
}

#[tokio::test]
async fn canned_acl_is_applied_and_unknown_acl_writes_nothing() {
    let test = format!("acl-{:08x}", rand::random::<u32>());
    let store = scoped("MOTO", &test).await;
    let mut put = PutOptions::default();
    put.layer_hints.insert("acl".into(), "public-read".into());
    store
        .put_opts(&key("public.csv"), Bytes::from_static(b"a,b\n"), put)
        .await
        .unwrap();
    let acl = raw_client("MOTO")
        .await
        .get_object_acl()
        .bucket(var("MOTO", "BUCKET"))
        .key(format!("{}/{test}/public.csv", run_id()))
        .send()
        .await
        .unwrap();
    let public = acl.grants().iter().any(|g| {
        g.grantee()
            .and_then(|x| x.uri())
            .is_some_and(|u| u.ends_with("/global/AllUsers"))
            && g.permission().is_some_and(|p| p.as_str() == "READ")
    });
    assert!(
        public,
        "public-read grants AllUsers READ: {:?}",
        acl.grants()
    );

    let mut bad = PutOptions::default();
    bad.layer_hints
        .insert("acl".into(), "world-writable".into());
    let e = store
        .put_opts(&key("bad.csv"), Bytes::from_static(b"x"), bad)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(
        e.to_string().contains("public-read"),
        "the hint lists valid ACLs: {e}"
    );
    assert!(
        !store.exists(&key("bad.csv")).await.unwrap(),
        "nothing written"
    );
}

#[tokio::test]
async fn versions_presign_and_stats_through_a_prefixed_layered_store() {
    let bucket = fresh_bucket("pfx");
    let (adm, _) = cairn::open_admin(&admin_url("MOTO", &bucket), good_creds("MOTO"))
        .await
        .unwrap();
    adm.create_bucket().await.unwrap();
    adm.put_versioning(true).await.unwrap();
    // A store scoped to a prefix, with encryption: keys come back relative to it.
    let url = format!("s3://{bucket}/tenant/a?{}", query("MOTO"));
    std::env::set_var(
        "CAIRN_TEST_PFX_KEY",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    );
    let mut cfg = good_creds("MOTO");
    cfg.set("encryption_key", "env:CAIRN_TEST_PFX_KEY").unwrap();
    let store = open(&url, cfg).await;
    let k = key("2025/03/r.csv");
    store.put(&k, &b"id,v\n1,old\n"[..]).await.unwrap();
    store.put(&k, &b"id,v\n1,new\n"[..]).await.unwrap();
    store
        .put(&key("2025/04/s.csv"), &b"id\n"[..])
        .await
        .unwrap();

    let versions: Vec<_> = store.list_versions("2025/03/").try_collect().await.unwrap();
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert!(
        versions.iter().all(|v| v.key == "2025/03/r.csv"),
        "{versions:?}"
    );
    let old = versions.iter().find(|v| !v.is_latest).unwrap();
    assert_eq!(
        store.get_version(&k, &old.version_id).await.unwrap(),
        &b"id,v\n1,old\n"[..],
        "an old version reads back through the encryption layer"
    );
    let side = store.server_side().unwrap();
    assert_eq!(side.prefix(), "tenant/a/");
    side.restore_version(&k, &old.version_id).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap(), &b"id,v\n1,old\n"[..]);

    let e = store
        .presign(&k, PresignMethod::Get, Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    let plain = open(&url, good_creds("MOTO")).await;
    let signed = plain
        .presign(&k, PresignMethod::Get, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        signed.path().ends_with("/tenant/a/2025/03/r.csv"),
        "{signed}"
    );

    let stats = store.stats("", 2).await.unwrap();
    assert_eq!(stats.total.objects, 2, "current objects only: {stats:?}");
    let groups: Vec<&str> = stats.by_prefix.keys().map(String::as_str).collect();
    assert_eq!(groups, ["2025/03/", "2025/04/"]);
    adm.delete_bucket(true).await.unwrap();
}

#[tokio::test]
async fn local_and_memory_stores_have_no_versions_or_presigned_urls_but_have_stats() {
    for url in ["memory://"] {
        let store = open(url, Config::default()).await;
        store.put(&key("a/x"), &b"12345"[..]).await.unwrap();
        let e = store
            .presign(&key("a/x"), PresignMethod::Put, Duration::from_secs(60))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        assert!(
            format!("{e:#}").contains("s3://"),
            "the hint names the way out: {e:#}"
        );
        let e = store.get_version(&key("a/x"), "v1").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        let e = store.list_versions("").try_next().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        let s = store.stats("", 1).await.unwrap();
        assert_eq!((s.total.objects, s.total.bytes), (1, 5));
        assert!(s.by_class.is_empty());
        assert_eq!(s.by_prefix["a/"].objects, 1);
    }
}
