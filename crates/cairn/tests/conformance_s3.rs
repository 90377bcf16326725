//! The conformance suite against real S3 servers: moto and a single-node Garage.
//!
//! Servers come from `scripts/servers/start.sh ENVFILE`; `source ENVFILE` sets
//! CAIRN_TEST_RUN_ID and CAIRN_TEST_{MOTO,GARAGE}_{ENDPOINT,BUCKET,REGION,ACCESS_KEY_ID,
//! SECRET_ACCESS_KEY}. Missing variables fail the tests. Each test writes under
//! `{run id}/{process nonce}/{test name}` and opens its store through `cairn::open_with`, so URL and config
//! parsing are part of what is tested.

use cairn::{Config, DynStore};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start servers with scripts/servers/start.sh and source the env file")
    })
}

/// One value per test process, so rerunning against the same servers starts clean.
fn nonce() -> &'static str {
    static N: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    N.get_or_init(|| format!("{:08x}", rand::random::<u32>()))
}

/// Opens `s3://{bucket}/{run}/{nonce}/{test}` on the server whose env vars start with `server`.
async fn open(server: &str, provider: &str, test: &str) -> DynStore {
    let v = |k: &str| env(&format!("CAIRN_TEST_{server}_{k}"));
    let url = format!(
        "s3://{}/{}/{}/{test}?endpoint={}&region={}&path_style=true&provider={provider}",
        v("BUCKET"),
        env("CAIRN_TEST_RUN_ID"),
        nonce(),
        v("ENDPOINT"),
        v("REGION"),
    );
    let creds = Config::from_pairs([
        ("access_key_id", v("ACCESS_KEY_ID").as_str()),
        ("secret_access_key", v("SECRET_ACCESS_KEY").as_str()),
    ])
    .unwrap();
    let store = cairn::open_with(&url, creds)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
    assert!(
        store.capabilities().retries_internally,
        "{store}: S3 retries inside object_store"
    );
    assert!(
        !format!("{store:?}").contains("RetryStore"),
        "no second retry stacked: {store:?}"
    );
    store
}

mod moto {
    cairn::conformance_tests!(|name: &'static str| super::open("MOTO", "moto", name));
}

mod garage {
    cairn::conformance_tests!(|name: &'static str| super::open("GARAGE", "garage", name));
}

/// A key file for the full-stack runs (32 bytes as hex), written once per test process.
fn key_file() -> String {
    static P: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
        let path = dir.path().join("cairn-test.key");
        std::fs::write(&path, "11".repeat(32)).unwrap();
        path.display().to_string()
    })
    .clone()
}

/// Garage through every layer: checksum, zstd compression and client-side encryption.
async fn open_full_stack(test: &'static str) -> DynStore {
    let v = |k: &str| env(&format!("CAIRN_TEST_GARAGE_{k}"));
    let url = format!(
        "s3://{}/{}/{}/full/{test}?endpoint={}&region={}&path_style=true&provider=garage",
        v("BUCKET"),
        env("CAIRN_TEST_RUN_ID"),
        nonce(),
        v("ENDPOINT"),
        v("REGION"),
    );
    let key = format!("file:{}", key_file());
    let options = Config::from_pairs([
        ("access_key_id", v("ACCESS_KEY_ID").as_str()),
        ("secret_access_key", v("SECRET_ACCESS_KEY").as_str()),
        ("compression", "zstd"),
        ("encryption_key", key.as_str()),
    ])
    .unwrap();
    cairn::open_with(&url, options)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"))
}

mod garage_full_stack {
    cairn::conformance_tests!(super::open_full_stack);
}
