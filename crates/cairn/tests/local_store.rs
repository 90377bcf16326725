//! Local-store guarantees beyond the conformance suite: a key never escapes the root,
//! writes are atomic, metadata never attaches to the wrong bytes.

use bytes::Bytes;
use cairn::backend::local::LocalStore;
use cairn::{ErrorKind, Key, PutMode, PutOptions, Store, StoreExt};
use futures::TryStreamExt;

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
    // Links are reported as what cairn cannot name, never listed through or left out.
    let listed: Vec<String> = store
        .list(cairn::ListOptions::recursive(""))
        .map_ok(|e| match e {
            cairn::ListEntry::Unlisted { name, reason } => format!("{name}: {reason}"),
            other => panic!("only the links are listed: {other:?}"),
        })
        .try_collect()
        .await
        .unwrap();
    let why = "a symbolic link: cairn does not follow links, so nothing outside the root is read";
    assert_eq!(
        listed,
        [format!("file-link: {why}"), format!("link: {why}")]
    );
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

/// A delete prunes the directories it empties; a put into the same directory at that moment
/// must still land (it re-creates the directory), with its metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn puts_survive_deletes_pruning_their_directory() {
    let root = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(LocalStore::new(root.path()).unwrap());
    let tasks: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..300 {
                    let k = key(&format!("d/e/{w}-{}", i % 3));
                    let opts = PutOptions::default().meta("n", i.to_string());
                    store
                        .put_opts(&k, Bytes::from(vec![w as u8; 10]), opts)
                        .await
                        .unwrap();
                    assert_eq!(store.head(&k).await.unwrap().metadata["n"], i.to_string());
                    store.delete(&k).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(!root.path().join("d").exists(), "the last delete prunes d/");
}

fn inode(p: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().ino()
}

fn temp_files(root: &std::path::Path) -> Vec<String> {
    match std::fs::read_dir(root.join(".cairn/tmp")) {
        Ok(d) => d
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => vec![],
    }
}

/// New bytes under an old sidecar (what a kill between the two renames of a commit, or a
/// concurrent writer, used to leave) read as an object without metadata: never as corrupt.
#[tokio::test]
async fn a_sidecar_never_describes_other_bytes_of_the_same_size() {
    let root = tempfile::tempdir().unwrap();
    let store = cairn::layer::ChecksumStore::new(LocalStore::new(root.path()).unwrap());
    let k = key("doc.json");
    let opts = PutOptions::default().content_type("application/json");
    store
        .put_opts(&k, Bytes::from_static(b"{\"v\":1}"), opts)
        .await
        .unwrap();
    assert_eq!(
        cairn::layer::checksum::verify(&store, &k).await.unwrap(),
        cairn::layer::checksum::VerifyStatus::Ok
    );
    // Another file of the same size takes the data's place; the sidecar stays.
    let other = root.path().join("other");
    std::fs::write(&other, b"{\"v\":2}").unwrap();
    std::fs::rename(&other, root.path().join("doc.json")).unwrap();

    assert_eq!(store.get(&k).await.unwrap(), &b"{\"v\":2}"[..]);
    let head = store.head(&k).await.unwrap();
    assert_eq!(
        head.content_type, None,
        "the old content type is not applied"
    );
    assert_eq!(head.stored_sha256(), None);
    assert_eq!(
        cairn::layer::checksum::verify(&store, &k).await.unwrap(),
        cairn::layer::checksum::VerifyStatus::Unverifiable
    );
}

/// Two same-size writes within one timestamp tick: the second gets its own ETag, and an
/// update conditioned on the first one's fails.
#[tokio::test]
async fn etags_differ_for_same_size_writes_in_one_tick() {
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::new(root.path()).unwrap();
    let k = key("e");
    let path = root.path().join("e");
    let first = store.put(&k, Bytes::from_static(b"aaaa")).await.unwrap();
    assert_eq!(first.etag, store.head(&k).await.unwrap().etag);
    let tick = std::fs::metadata(&path).unwrap().modified().unwrap();
    let second = store.put(&k, Bytes::from_static(b"bbbb")).await.unwrap();
    // The same tick: give the new file the old one's mtime.
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(tick)
        .unwrap();
    let now = store.head(&k).await.unwrap().etag;
    assert!(now.is_some());
    assert_ne!(now, first.etag, "same size, same mtime, another write");
    assert_ne!(second.etag, first.etag);
    let e = store
        .put_opts(
            &k,
            Bytes::from_static(b"cccc"),
            PutOptions::default().mode(PutMode::Update(first.etag.unwrap())),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{e}");
    assert_eq!(store.get(&k).await.unwrap(), &b"bbbb"[..]);
    store
        .put_opts(
            &k,
            Bytes::from_static(b"dddd"),
            PutOptions::default().mode(PutMode::Update(now.unwrap())),
        )
        .await
        .unwrap();
}

/// Temp files of killed writers go when a store opens, once they are old enough that no live
/// writer can own them; younger ones stay.
#[tokio::test]
async fn stale_temp_files_are_removed_on_open() {
    let root = tempfile::tempdir().unwrap();
    drop(LocalStore::new(root.path()).unwrap());
    let tmp = root.path().join(".cairn/tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let old = tmp.join("0000000000000001.tmp");
    let young = tmp.join("0000000000000002.tmp");
    std::fs::write(&old, b"killed writer").unwrap();
    std::fs::write(&young, b"live writer").unwrap();
    let age = cairn::backend::local::STALE_TMP_AGE + std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - age)
        .unwrap();
    let store = LocalStore::new(root.path()).unwrap();
    assert!(!old.exists(), "a stale temp file is removed on open");
    assert!(
        young.exists(),
        "a young temp file may belong to a live writer"
    );
    store
        .put(&key("k"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert_eq!(temp_files(root.path()), vec!["0000000000000002.tmp"]);
}

/// A multipart upload that is aborted, or dropped without complete, removes its temp file.
#[tokio::test]
async fn aborted_or_dropped_uploads_leave_no_temp_file() {
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::new(root.path()).unwrap();
    let k = key("big");
    let mut up = store
        .put_multipart_opts(&k, PutOptions::default())
        .await
        .unwrap();
    up.put_part(Bytes::from_static(b"part one")).await.unwrap();
    assert_eq!(temp_files(root.path()).len(), 1);
    up.abort().await.unwrap();
    assert!(temp_files(root.path()).is_empty(), "abort removes it");

    let mut up = store
        .put_multipart_opts(&k, PutOptions::default())
        .await
        .unwrap();
    up.put_part(Bytes::from_static(b"part one")).await.unwrap();
    drop(up);
    assert!(temp_files(root.path()).is_empty(), "drop removes it");
    assert!(!store.exists(&k).await.unwrap());

    let mut up = store
        .put_multipart_opts(&k, PutOptions::default())
        .await
        .unwrap();
    up.put_part(Bytes::from_static(b"whole")).await.unwrap();
    up.complete().await.unwrap();
    drop(up);
    assert_eq!(store.get(&k).await.unwrap(), &b"whole"[..]);
    assert!(temp_files(root.path()).is_empty());
}

/// A rename on the local store is rename(2): the same file (inode) under the new key, with its
/// metadata, and nothing left under the old one.
#[tokio::test]
async fn rename_moves_the_file_and_its_metadata() {
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::new(root.path()).unwrap();
    let (a, b) = (key("from/a.txt"), key("to/b.txt"));
    store
        .put_opts(
            &a,
            Bytes::from_static(b"hello"),
            PutOptions::default()
                .content_type("text/plain")
                .meta("m", "1"),
        )
        .await
        .unwrap();
    store
        .put(&b, Bytes::from_static(b"replaced"))
        .await
        .unwrap();
    let before = inode(&root.path().join("from/a.txt"));
    store.rename(&a, &b).await.unwrap();
    assert_eq!(
        inode(&root.path().join("to/b.txt")),
        before,
        "moved, not copied"
    );
    assert_eq!(store.get(&b).await.unwrap(), &b"hello"[..]);
    let h = store.head(&b).await.unwrap();
    assert_eq!(h.content_type.as_deref(), Some("text/plain"));
    assert_eq!(h.metadata.get("m").map(String::as_str), Some("1"));
    assert_eq!(store.get(&a).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert!(!root.path().join("from").exists(), "empty dirs pruned");
    assert!(!root.path().join(".cairn/meta/from").exists());
    let e = store.rename(&a, &b).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(store.get(&b).await.unwrap(), &b"hello"[..]);
}

/// JSON-lines-like bytes that compress well.
fn json_lines(len: usize, seed: u64) -> Bytes {
    let mut v = Vec::with_capacity(len + 64);
    let mut x = seed | 1;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(
            format!(
                "{{\"id\":{},\"name\":\"item-{}\",\"ok\":true}}\n",
                x % 10_000,
                x % 97
            )
            .as_bytes(),
        );
    }
    v.truncate(len);
    v.into()
}

/// Renames through the default layer stack (stack::apply) on the local store, plain, zstd and
/// zstd+AES, of a single put and of a multipart object: the same file moves (rename(2)), it
/// reads back as it was put, and verifies; a multipart object's manifest moves with it.
#[tokio::test]
async fn rename_through_the_default_stack_keeps_objects_verified() {
    use cairn::layer::checksum::{manifest_key, verify, VerifyStatus, MANIFEST_META};
    let keys = tempfile::tempdir().unwrap();
    let keyfile = keys.path().join("key");
    std::fs::write(&keyfile, "a5".repeat(32)).unwrap();
    for (name, compression, encrypt) in [
        ("plain", None, false),
        ("zstd", Some("zstd"), false),
        ("zstd+aes", Some("zstd"), true),
    ] {
        let root = tempfile::tempdir().unwrap();
        let config = cairn::Config {
            compression: compression.map(str::to_string),
            encryption_key: encrypt.then(|| format!("file:{}", keyfile.display())),
            ..Default::default()
        };
        let local = std::sync::Arc::new(LocalStore::new(root.path()).unwrap());
        let store = cairn::layer::stack::apply(local, &config).unwrap();
        let single = json_lines(100_000, 1);
        let multi = json_lines(3 << 20, 2);
        store
            .put_opts(
                &key("in/single.json"),
                single.clone(),
                PutOptions::default().content_type("application/json"),
            )
            .await
            .unwrap();
        let chunks: Vec<cairn::Result<Bytes>> = multi
            .chunks(300_000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let wopts = cairn::transfer::WriterOptions {
            part_size: 1 << 20,
            concurrency: 2,
            size_hint: None,
        };
        cairn::transfer::put_stream(
            &*store,
            &key("in/multi.json"),
            futures::stream::iter(chunks),
            PutOptions::default(),
            wopts,
        )
        .await
        .unwrap();
        let h = store.head(&key("in/multi.json")).await.unwrap();
        assert!(
            h.layer_meta.contains_key(MANIFEST_META),
            "{name}: multipart"
        );
        assert_eq!(compression.is_some(), h.compression().is_some(), "{name}");

        for (from, to, data) in [
            ("in/single.json", "out/single.json", &single),
            ("in/multi.json", "out/multi.json", &multi),
        ] {
            let (from, to) = (key(from), key(to));
            let ino = inode(&root.path().join(from.as_str()));
            store.rename(&from, &to).await.unwrap();
            assert_eq!(inode(&root.path().join(to.as_str())), ino, "{name}: moved");
            assert!(store.get(&to).await.unwrap() == data, "{name} {to}: bytes");
            assert_eq!(
                verify(&*store, &to).await.unwrap(),
                VerifyStatus::Ok,
                "{name} {to}"
            );
            assert_eq!(store.head(&to).await.unwrap().size, data.len() as u64);
            let e = store.head(&from).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotFound, "{name} {from}: {e}");
            assert!(!root.path().join(manifest_key(&from).as_str()).exists());
        }
        assert!(root
            .path()
            .join(manifest_key(&key("out/multi.json")).as_str())
            .exists());
        assert_eq!(
            store
                .head(&key("out/single.json"))
                .await
                .unwrap()
                .content_type
                .as_deref(),
            Some("application/json"),
            "{name}"
        );

        // Create-only onto an existing key moves nothing.
        let only_new = cairn::CopyOptions {
            if_not_exists: true,
        };
        let e = store
            .rename_opts(
                &key("out/single.json"),
                &key("out/multi.json"),
                only_new.clone(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{name}: {e}");
        assert!(store.get(&key("out/single.json")).await.unwrap() == single);
        assert!(store.get(&key("out/multi.json")).await.unwrap() == multi);
        assert_eq!(
            verify(&*store, &key("out/multi.json")).await.unwrap(),
            VerifyStatus::Ok
        );
        store
            .rename_opts(&key("out/multi.json"), &key("again/multi.json"), only_new)
            .await
            .unwrap();
        assert_eq!(
            verify(&*store, &key("again/multi.json")).await.unwrap(),
            VerifyStatus::Ok,
            "{name}"
        );

        // A copy keeps the layers' records too (compression, digest).
        store
            .copy(&key("out/single.json"), &key("copy/single.json"))
            .await
            .unwrap();
        assert!(
            store.get(&key("copy/single.json")).await.unwrap() == single,
            "{name}"
        );
        assert_eq!(
            verify(&*store, &key("copy/single.json")).await.unwrap(),
            VerifyStatus::Ok,
            "{name}"
        );
        assert!(temp_files(root.path()).is_empty(), "{name}");
    }
}
