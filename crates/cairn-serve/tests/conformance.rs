//! cairn's S3 store as the client of an in-process `cairn serve`, running the conformance
//! suite: both sides of the protocol at once. The gateway serves a local store, plain and
//! with zstd compression plus AES encryption.

mod common;

/// Leaks the gateway: it serves until the test process ends (nextest runs one per test).
async fn open(layered: bool, test: &str) -> cairn::DynStore {
    let g = common::start(layered, false).await;
    let store = common::client(&g, test).await;
    std::mem::forget(g);
    store
}

mod local {
    cairn::conformance_tests!(|name: &'static str| super::open(false, name));
}

mod local_zstd_aes {
    cairn::conformance_tests!(|name: &'static str| super::open(true, name));
}
