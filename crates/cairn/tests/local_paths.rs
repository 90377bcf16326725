//! Path safety of the local store: a key never escapes the root. Not through `..`, absolute
//! keys or `\`, not through a symlink planted in the tree, and not through a directory swapped
//! for a symlink while operations run (check-then-use races).

use bytes::Bytes;
use cairn::backend::local::LocalStore;
use cairn::{ErrorKind, Key, PutOptions, Store, StoreExt};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn key(s: &str) -> Key {
    Key::new(s).unwrap()
}

/// Every file under `dir` with its bytes (links listed as their target).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                out.insert(format!("{rel}/"), vec![]);
                stack.push(p);
            } else if ft.is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                out.insert(rel, t.to_string_lossy().into_owned().into_bytes());
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn escaping_keys_cannot_be_built() {
    for bad in [
        "..",
        "../x",
        "a/../../x",
        "a/..",
        "/etc/passwd",
        "//x",
        "a\\..\\..\\x",
        "..\\x",
        "C:\\Windows\\x",
        "a/./b",
        "./a",
    ] {
        let e = Key::new(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}");
    }
    for bad in ["../", "/", "/abs/", "a\\b/"] {
        let e = cairn::key::validate_prefix(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}");
    }
}

/// A link in cairn's own folder (`.cairn/meta`, `.cairn/tmp`) pointing outside: nothing is
/// written there, and the error says why.
#[tokio::test]
async fn links_in_the_reserved_folder_are_refused() {
    let outside = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::new(root.path()).unwrap();
    std::fs::create_dir_all(root.path().join(".cairn")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join(".cairn/meta")).unwrap();
    let opts = PutOptions::default().meta("m", "1");
    let e = store
        .put_opts(&key("a/b"), Bytes::from_static(b"x"), opts)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("never follows links"), "{e}");
    assert!(
        snapshot(outside.path()).is_empty(),
        "nothing written outside"
    );

    std::fs::remove_file(root.path().join(".cairn/meta")).unwrap();
    std::fs::remove_dir_all(root.path().join(".cairn/tmp")).ok();
    std::os::unix::fs::symlink(outside.path(), root.path().join(".cairn/tmp")).unwrap();
    let e = store
        .put(&key("c"), Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(
        snapshot(outside.path()).is_empty(),
        "nothing written outside"
    );
}

/// A link to outside as the last name or on the way: reads, writes, deletes, renames and
/// copies fail with PermissionDenied and the outside tree is byte-for-byte unchanged.
#[tokio::test]
async fn planted_links_are_never_followed() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("f"), b"OUTSIDE").unwrap();
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::new(root.path()).unwrap();
    store
        .put(&key("in"), Bytes::from_static(b"in"))
        .await
        .unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("dir")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("f"), root.path().join("file")).unwrap();
    let before = snapshot(outside.path());
    for k in ["dir/f", "file"] {
        let k = key(k);
        for e in [
            store.get(&k).await.map(|_| ()).unwrap_err(),
            store.head(&k).await.map(|_| ()).unwrap_err(),
            store
                .put(&k, Bytes::from_static(b"x"))
                .await
                .map(|_| ())
                .unwrap_err(),
            store.copy(&k, &key("c")).await.unwrap_err(),
            store.copy(&key("in"), &k).await.unwrap_err(),
            store.rename(&k, &key("r")).await.unwrap_err(),
        ] {
            assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{k}: {e}");
        }
    }
    // Deleting through a link is refused; deleting the link itself removes only the link.
    let e = store.delete(&key("dir/f")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    store.delete(&key("file")).await.unwrap();
    assert!(!root.path().join("file").exists());
    assert_eq!(snapshot(outside.path()), before, "outside unchanged");
    // The link left is reported, not left out, and not listed through.
    let listed: Vec<_> =
        futures::TryStreamExt::try_collect::<Vec<_>>(store.list(cairn::ListOptions::recursive("")))
            .await
            .unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0].name(), "dir");
    assert!(
        matches!(&listed[0], cairn::ListEntry::Unlisted { reason, .. } if reason.contains("symbolic link")),
        "{listed:?}"
    );
    assert!(matches!(&listed[1], cairn::ListEntry::Object(m) if m.key.as_str() == "in"));
}

/// The check-then-use race: a thread keeps swapping a directory of the store for a symlink
/// to outside (atomically, with renameat2 RENAME_EXCHANGE) while puts, gets, heads, lists,
/// copies, renames and deletes run on keys under it. Nothing outside is read, written or
/// removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_directory_swapped_for_a_link_mid_operation_never_leads_outside() {
    let outside = tempfile::tempdir().unwrap();
    for i in 0..8 {
        std::fs::write(outside.path().join(format!("k{i}")), b"OUTSIDE").unwrap();
    }
    std::fs::write(outside.path().join("only-outside"), b"OUTSIDE").unwrap();
    let before = snapshot(outside.path());
    let root = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::new(root.path()).unwrap());
    for i in 0..8 {
        store
            .put(&key(&format!("d/k{i}")), Bytes::from_static(b"inside"))
            .await
            .unwrap();
    }
    // `lnk` is the link that trades places with `d` again and again.
    std::os::unix::fs::symlink(outside.path(), root.path().join("lnk")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let swapper = {
        let (stop, swaps, root) = (stop.clone(), swaps.clone(), root.path().to_path_buf());
        std::thread::spawn(move || {
            let dir = rustix::fs::open(
                &root,
                rustix::fs::OFlags::DIRECTORY,
                rustix::fs::Mode::empty(),
            )
            .unwrap();
            while !stop.load(Ordering::Relaxed) {
                // `d` may be missing for a moment (a delete pruned it); then nothing to swap.
                if rustix::fs::renameat_with(
                    &dir,
                    "d",
                    &dir,
                    "lnk",
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .is_ok()
                {
                    swaps.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::yield_now();
            }
        })
    };
    let deadline = Instant::now() + Duration::from_millis(2500);
    let ops = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (store, ops) = (store.clone(), ops.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < deadline {
                    i += 1;
                    let k = key(&format!("d/k{}", i % 8));
                    match (w + i) % 7 {
                        0 => {
                            let _ = store.put(&k, Bytes::from_static(b"inside")).await;
                        }
                        1 | 2 => {
                            if let Ok(b) = store.get(&k).await {
                                assert_eq!(&b[..], b"inside", "read {k}: never outside bytes");
                            }
                        }
                        3 => {
                            if let Ok(h) = store.head(&k).await {
                                assert_eq!(h.size, 6, "head {k}: never an outside file");
                            }
                        }
                        4 => {
                            let mut l = store.list(cairn::ListOptions::recursive("d/"));
                            while let Some(e) = futures::StreamExt::next(&mut l).await {
                                if let Ok(e) = e {
                                    assert_ne!(e.name(), "d/only-outside", "listed outside");
                                }
                            }
                        }
                        5 => {
                            let _ = store.copy(&k, &key(&format!("d/k{}", (i + 1) % 8))).await;
                            let _ = store.rename(&k, &key(&format!("d/k{}", (i + 3) % 8))).await;
                        }
                        _ => {
                            let _ = store.delete(&k).await;
                        }
                    }
                    ops.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    let (ops, swaps) = (ops.load(Ordering::Relaxed), swaps.load(Ordering::Relaxed));
    eprintln!("{ops} operations against {swaps} swaps");
    assert!(
        ops > 200 && swaps > 200,
        "the race ran: {ops} ops, {swaps} swaps"
    );
    assert_eq!(snapshot(outside.path()), before, "outside unchanged");
}
