//! Local-store guarantees beyond the conformance suite: a key never escapes the root,
//! writes are atomic, metadata never attaches to the wrong bytes.

use bytes::Bytes;
use cairn::backend::local::LocalStore;
use cairn::{ErrorKind, Key, PutMode, PutOptions, Store, StoreExt};

fn key(s: &str) -> Key {
    Key::new(s).unwrap()
}

#[tokio::test]
async fn symlinks_never_lead_outside_the_root() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), b"top secret").unwrap();
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::new(root.path()).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        root.path().join("file-link"),
    )
    .unwrap();

    for k in ["link/secret.txt", "file-link"] {
        let e = store.get(&key(k)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{k}: {e}");
        assert!(!e.to_string().contains("top secret"));
        let e = store.head(&key(k)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{k}: {e}");
    }
    let e = store
        .put(&key("link/new.txt"), Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(
        !outside.path().join("new.txt").exists(),
        "nothing written through the link"
    );
    let e = store
        .put(&key("file-link"), Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert_eq!(
        std::fs::read(outside.path().join("secret.txt")).unwrap(),
        b"top secret"
    );
    let e = store.delete(&key("link/secret.txt")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(outside.path().join("secret.txt").exists());
    let listed = cairn::testkit::all_keys(&store, "").await;
    assert!(listed.is_empty(), "links are not listed: {listed:?}");
}

#[tokio::test]
async fn escaping_keys_cannot_be_built_and_reserved_keys_are_refused() {
    for bad in ["../x", "/etc/passwd", "a/../../b", "a/./b"] {
        assert_eq!(
            Key::new(bad).unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "{bad}"
        );
    }
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::new(root.path()).unwrap();
    let e = store
        .put(&key(".cairn/meta/x"), Bytes::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}

#[tokio::test]
async fn failed_conditional_put_leaves_no_temp_files_and_old_bytes() {
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::new(root.path()).unwrap();
    let k = key("a/b.txt");
    store.put(&k, Bytes::from_static(b"old")).await.unwrap();
    let create = PutOptions::default().mode(PutMode::Create);
    let e = store
        .put_opts(&k, Bytes::from_static(b"new"), create)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert_eq!(store.get(&k).await.unwrap(), &b"old"[..]);
    let tmp = root.path().join(".cairn/tmp");
    let leftovers = std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "temp files left behind");
}

#[tokio::test]
async fn stale_sidecar_is_ignored_and_deletes_prune_dirs() {
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::new(root.path()).unwrap();
    let k = key("deep/er/obj");
    store
        .put_opts(
            &k,
            Bytes::from_static(b"v1"),
            PutOptions::default().meta("m", "1"),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .head(&k)
            .await
            .unwrap()
            .metadata
            .get("m")
            .map(String::as_str),
        Some("1")
    );
    // Another program rewrites the file: the sidecar no longer describes it.
    std::thread::sleep(std::time::Duration::from_millis(5));
    std::fs::write(root.path().join("deep/er/obj"), b"changed by hand").unwrap();
    assert!(
        store.head(&k).await.unwrap().metadata.is_empty(),
        "stale metadata ignored"
    );
    store.delete(&k).await.unwrap();
    assert!(!root.path().join("deep").exists(), "empty data dirs pruned");
    assert!(
        !root.path().join(".cairn/meta/deep").exists(),
        "empty meta dirs pruned"
    );
}
