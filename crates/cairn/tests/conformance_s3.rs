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
    let store = cairn::open_with(&url, creds).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
    assert!(store.capabilities().retries_internally, "{store}: S3 retries inside object_store");
    assert!(!format!("{store:?}").contains("RetryStore"), "no second retry stacked: {store:?}");
    store
}

mod moto {
    cairn::conformance_tests!(|name: &'static str| super::open("MOTO", "moto", name));
}

mod garage {
    cairn::conformance_tests!(|name: &'static str| super::open("GARAGE", "garage", name));
}
