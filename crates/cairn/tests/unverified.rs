//! Objects written by other tools carry no `cairn-sha256`: downloading or copying them through
//! cairn cannot check their bytes, and must say so (`Outcome::Unverified`, `Summary::unverified`)
//! instead of reporting them like checked ones. Against moto, with the foreign object put by
//! the AWS SDK (as the aws cli or boto3 would), beside one written through cairn.

mod transfer_support;

use cairn::backend::memory::MemoryStore;
use cairn::ops::reporter::{Action, Recorder};
use cairn::ops::SyncOptions;
use cairn::transfer::*;
use cairn::{DynStore, StoreExt};
use std::sync::Arc;
use transfer_support::*;

/// Puts `body` at `prefix/key` with the AWS SDK: no `cairn-sha256`, as any other tool writes.
async fn put_foreign(server: &str, prefix: &str, key: &str, body: bytes::Bytes) {
    sdk_client(server)
        .put_object()
        .bucket(env(server, "BUCKET"))
        .key(format!("{prefix}/{key}"))
        .body(body.to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{server}: foreign put: {e:?}"));
}

/// A cairn store (default layers) with a foreign object `foreign` and a cairn-written `own`,
/// both `len` bytes.
async fn setup(test: &str, len: usize) -> (DynStore, String, bytes::Bytes) {
    let (store, prefix) = s3_store("MOTO", test).await;
    let body = data(len, 7);
    put_foreign("MOTO", &prefix, "foreign", body.clone()).await;
    store.put(&k("own"), body.clone()).await.unwrap();
    (store, prefix, body)
}

fn outcome(rec: &Recorder, key: &str) -> String {
    let done = rec.done();
    let hits: Vec<_> = done.iter().filter(|(k, _, _)| k == key).collect();
    assert_eq!(hits.len(), 1, "one item_done for {key}: {done:?}");
    assert_eq!(hits[0].1, Action::Transfer);
    hits[0].2.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_download_file_of_a_foreign_object_is_unverified() {
    // Small (one GET) and past the multipart threshold (parallel ranged GETs).
    for (len, opts) in [
        (1000, TransferOptions::default()),
        (
            3 * MIB,
            TransferOptions {
                part_size: MIB,
                multipart_threshold: MIB as u64,
                ..Default::default()
            },
        ),
    ] {
        let (store, _prefix, body) = setup(&format!("dl-{len}"), len).await;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("f");

        let rec = Recorder::new();
        let meta = download_file(&*store, &k("foreign"), &out, &opts, &rec)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), body, "the bytes still arrive");
        assert_eq!(outcome(&rec, "foreign"), format!("unverified {len}"));
        assert!(
            opts.unverified(&*store, &meta),
            "the returned metadata says so"
        );

        let rec = Recorder::new();
        let meta = download_file(&*store, &k("own"), &out, &opts, &rec)
            .await
            .unwrap();
        assert_eq!(outcome(&rec, "own"), format!("transferred {len}"));
        assert!(!opts.unverified(&*store, &meta));

        // Verification off (the user opted out): nothing checked, nothing flagged.
        let off = TransferOptions {
            verify: false,
            ..opts.clone()
        };
        let rec = Recorder::new();
        let meta = download_file(&*store, &k("foreign"), &out, &off, &rec)
            .await
            .unwrap();
        assert_eq!(outcome(&rec, "foreign"), format!("transferred {len}"));
        assert!(!off.unverified(&*store, &meta));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_checksum_false_store_reports_no_unverified_when_verify_is_off() {
    // `-o checksum=false` in the CLI: a bare store, read with verification off.
    let (store, prefix, _) = setup("bare", 100).await;
    drop(store);
    let bucket = env("MOTO", "BUCKET");
    let mut config = cairn::Config::default();
    for (k, v) in [
        ("endpoint", env("MOTO", "ENDPOINT")),
        ("region", env("MOTO", "REGION")),
        ("access_key_id", env("MOTO", "ACCESS_KEY_ID")),
        ("secret_access_key", env("MOTO", "SECRET_ACCESS_KEY")),
        ("allow_http", "true".into()),
        ("path_style", "true".into()),
        ("provider", "moto".into()),
        ("checksum", "false".into()),
    ] {
        config.set(k, &v).unwrap();
    }
    let bare = cairn::open_with(&format!("s3://{bucket}/{prefix}"), config)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let off = TransferOptions {
        verify: false,
        ..Default::default()
    };
    let s = download_tree(&*bare, "", dir.path(), &off, &cairn::ops::NoReporter)
        .await
        .unwrap();
    assert_eq!((s.transferred, s.unverified, s.failed), (2, 0, 0));
    assert!(s.is_success());
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_download_tree_counts_and_names_unverified() {
    let (store, _prefix, _) = setup("tree", 2000).await;
    let dir = tempfile::tempdir().unwrap();
    let rec = Recorder::new();
    let s = download_tree(&*store, "", dir.path(), &TransferOptions::default(), &rec)
        .await
        .unwrap();
    assert_eq!((s.transferred, s.failed), (2, 0));
    assert_eq!(s.unverified, 1);
    assert_eq!(s.unverified_keys, vec!["foreign".to_string()]);
    assert!(
        !s.is_success(),
        "an unchecked object is not a silent success"
    );
    assert_eq!(outcome(&rec, "foreign"), "unverified 2000");
    assert_eq!(outcome(&rec, "own"), "transferred 2000");
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["unverified"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_copies_through_the_client_do_not_launder_foreign_objects() {
    let (store, _prefix, body) = setup("copy", 1500).await;
    let mem: DynStore = Arc::new(MemoryStore::new());
    let opts = TransferOptions::default();

    let rec = Recorder::new();
    copy_object(&*store, &k("foreign"), &*mem, &k("foreign"), &opts, &rec)
        .await
        .unwrap();
    assert_eq!(outcome(&rec, "foreign"), "unverified 1500");
    assert_eq!(mem.get(&k("foreign")).await.unwrap(), body);

    let rec = Recorder::new();
    let s = transfer_tree(&*store, "", &*mem, "t", &opts, &rec)
        .await
        .unwrap();
    assert_eq!((s.transferred, s.unverified, s.failed), (2, 1, 0));
    assert_eq!(s.unverified_keys, vec!["t/foreign".to_string()]);
    assert_eq!(outcome(&rec, "t/own"), "transferred 1500");

    // Sync store → store: the copy of the foreign object is unverified, the other checked.
    let dst: DynStore = Arc::new(MemoryStore::new());
    let rec = Recorder::new();
    let s = cairn::ops::sync(&*store, &*dst, &SyncOptions::default(), &rec)
        .await
        .unwrap();
    assert_eq!((s.transferred, s.unverified, s.failed), (2, 1, 0));
    assert_eq!(s.unverified_keys, vec!["foreign".to_string()]);
    assert_eq!(outcome(&rec, "own"), "transferred 1500");
    assert!(!s.is_success());

    // The other way, from a local (memory) store: its objects are the caller's own, and an
    // upload has nothing to check them against.
    let back = Recorder::new();
    let s = cairn::ops::sync(&*dst, &*mem, &SyncOptions::default(), &back)
        .await
        .unwrap();
    assert_eq!(s.unverified, 0);
    assert!(s.is_success());
}
