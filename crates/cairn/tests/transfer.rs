//! The transfer engine against memory, a local temp dir, moto and Garage: multipart part
//! boundaries, abort on failure, resumed and ETag-pinned ranged downloads, SHA-256 checks,
//! store-to-store copies and many-object trees with partial failure.

mod transfer_support;

use cairn::backend::{local::LocalStore, memory::MemoryStore};
use cairn::ops::{Action, Recorder};
use cairn::store::*;
use cairn::transfer::*;
use cairn::{DynStore, ErrorKind, Key};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use transfer_support::*;

/// A store under test plus how to see its open multipart uploads.
struct Env {
    faulty: Faulty,
    kind: Kind,
}

enum Kind {
    Memory,
    Local(tempfile::TempDir),
    S3 {
        server: &'static str,
        prefix: String,
    },
}

impl Env {
    async fn open_uploads(&self, key: Key) -> Vec<String> {
        match &self.kind {
            // The memory store keeps parts inside the upload object: nothing outlives an abort.
            Kind::Memory => Vec::new(),
            Kind::Local(dir) => local_open_uploads(dir.path()),
            Kind::S3 { server, prefix } => {
                s3_open_uploads(server, &format!("{prefix}/{key}")).await
            }
        }
    }
}

async fn memory(_test: &str) -> Env {
    Env {
        faulty: Faulty::new(Arc::new(MemoryStore::new())),
        kind: Kind::Memory,
    }
}

async fn local(_test: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store: DynStore = Arc::new(LocalStore::new(dir.path()).unwrap());
    Env {
        faulty: Faulty::new(store),
        kind: Kind::Local(dir),
    }
}

async fn moto(test: &str) -> Env {
    // Bare backends, like memory and local here: these tests forge `cairn-sha256` metadata.
    let (store, prefix) = s3_store_with("MOTO", test, &[("checksum", "false")]).await;
    Env {
        faulty: Faulty::new(store),
        kind: Kind::S3 {
            server: "MOTO",
            prefix,
        },
    }
}

async fn garage(test: &str) -> Env {
    let (store, prefix) = s3_store_with("GARAGE", test, &[("checksum", "false")]).await;
    Env {
        faulty: Faulty::new(store),
        kind: Kind::S3 {
            server: "GARAGE",
            prefix,
        },
    }
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn sha_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Files in `dir` other than `keep` (temp files a failed download must not leave).
fn leftovers(dir: &Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

/// Uploads and downloads at 0, 1 and around the 5 MiB part boundaries: exactly 5 MiB is one
/// multipart part, ±1 byte moves the part count, ranged GETs line up with parts and carry the
/// ETag of the first response, and progress adds up to the size.
async fn roundtrip_part_boundaries(env: Env) {
    let store = &env.faulty;
    let m5 = 5 * MIB;
    let opts = TransferOptions {
        part_size: m5,
        concurrency: 3,
        multipart_threshold: m5 as u64,
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    for (i, size) in [0, 1, m5 - 1, m5, m5 + 1, 2 * m5 - 1, 2 * m5, 2 * m5 + 1]
        .into_iter()
        .enumerate()
    {
        let want = data(size, i as u64);
        let src = write_file(dir.path(), &format!("src{i}"), &want);
        let key = k(&format!("boundaries/{size}"));
        store.faults.reset_counts();
        let rec = Recorder::new();
        upload_file(store, &key, &src, &opts, &rec)
            .await
            .unwrap_or_else(|e| panic!("{store}: upload {size}: {e}"));
        let f = &store.faults;
        let parts = if size >= m5 { size.div_ceil(m5) } else { 0 };
        assert_eq!(
            f.multipart_started.load(Ordering::SeqCst),
            (size >= m5) as usize,
            "{store}: {size}: multipart?"
        );
        assert_eq!(
            f.parts.load(Ordering::SeqCst),
            parts,
            "{store}: {size}: part count"
        );
        assert_eq!(
            f.completes.load(Ordering::SeqCst),
            (size >= m5) as usize,
            "{store}: {size}"
        );
        assert_eq!(
            rec.progress_bytes(),
            size as u64,
            "{store}: {size}: upload progress"
        );
        assert!(
            store.get(&key).await.unwrap() == want,
            "{store}: {size}: stored bytes differ"
        );

        store.faults.reset_counts();
        let out = dir.path().join(format!("out{i}"));
        let rec = Recorder::new();
        let meta = download_file(store, &key, &out, &opts, &rec)
            .await
            .unwrap_or_else(|e| panic!("{store}: download {size}: {e}"));
        assert_eq!(meta.size, size as u64);
        assert!(
            std::fs::read(&out).unwrap() == want[..],
            "{store}: {size}: downloaded bytes differ"
        );
        assert_eq!(
            rec.progress_bytes(),
            size as u64,
            "{store}: {size}: download progress"
        );
        let gets = store.faults.gets();
        assert_eq!(gets[0].1, None, "{store}: {size}: first GET is a plain GET");
        let mut ranged: Vec<_> = gets[1..]
            .iter()
            .map(|g| (g.1.clone(), g.2.clone()))
            .collect();
        ranged.sort_by_key(|(r, _)| match r {
            Some(GetRange::Bounded(r)) => r.start,
            _ => u64::MAX,
        });
        let want_ranges: Vec<_> = if size >= m5 {
            (1..size.div_ceil(m5))
                .map(|p| (p * m5) as u64..((p + 1) * m5).min(size) as u64)
                .collect()
        } else {
            vec![]
        };
        let got_ranges: Vec<_> = ranged
            .iter()
            .map(|(r, _)| match r {
                Some(GetRange::Bounded(r)) => r.clone(),
                other => panic!("{store}: unexpected range {other:?}"),
            })
            .collect();
        assert_eq!(got_ranges, want_ranges, "{store}: {size}: ranged GETs");
        for (_, etag) in &ranged {
            assert!(
                etag.is_some() && *etag == meta.etag,
                "{store}: {size}: ranges pinned to {:?}, got {etag:?}",
                meta.etag
            );
        }
    }
    assert_eq!(
        leftovers(dir.path(), &[])
            .iter()
            .filter(|n| n.contains("cairn-tmp"))
            .count(),
        0
    );
}

/// The named check for "a failure mid-upload leaves no open upload": part 1 of 4 fails, the
/// upload is aborted, nothing is at the key, and `open_uploads(key)` (the server's view, e.g.
/// ListMultipartUploads) shows nothing left.
async fn failed_upload_leaves_no_open_upload<F, Fut>(store: &Faulty, open_uploads: F)
where
    F: Fn(Key) -> Fut,
    Fut: Future<Output = Vec<String>>,
{
    let m5 = 5 * MIB;
    let dir = tempfile::tempdir().unwrap();
    let src = write_file(dir.path(), "big", &data(3 * m5 + 10, 7));
    let key = k("abort/big");
    *store.faults.fail_part.lock().unwrap() = Some(1);
    let opts = TransferOptions {
        part_size: m5,
        concurrency: 2,
        multipart_threshold: m5 as u64,
        ..Default::default()
    };
    let e = upload_file(store, &key, &src, &opts, &Recorder::new())
        .await
        .unwrap_err();
    *store.faults.fail_part.lock().unwrap() = None;
    assert_eq!(
        e.kind(),
        ErrorKind::PermissionDenied,
        "{store}: the part's error comes back: {e}"
    );
    assert_eq!(
        store.faults.aborts.load(Ordering::SeqCst),
        1,
        "{store}: the upload was aborted"
    );
    assert_eq!(
        store.faults.completes.load(Ordering::SeqCst),
        0,
        "{store}: never completed"
    );
    assert!(
        !store.exists(&key).await.unwrap(),
        "{store}: nothing at the key"
    );
    let open = open_uploads(key).await;
    assert!(open.is_empty(), "{store}: uploads left open: {open:?}");
}

async fn failed_upload_aborts(env: Env) {
    failed_upload_leaves_no_open_upload(&env.faulty, |key| env.open_uploads(key)).await;
}

/// A writer dropped mid-upload (a cancelled task, Ctrl-C) still aborts: with parts in flight
/// the server shows the upload open; once the drop's abort settles nothing is open, nothing is
/// at the key, and it was aborted, never completed.
async fn dropped_writer_aborts(env: Env) {
    let store = &env.faulty;
    let m5 = 5 * MIB;
    let key = k("drop/writer");
    let opts = WriterOptions {
        part_size: m5,
        concurrency: 4,
        size_hint: None,
    };
    let mut w = Writer::new(store, key.clone(), PutOptions::default(), opts);
    w.write(data(3 * m5 + 10, 5)).await.unwrap();
    assert_eq!(store.faults.multipart_started.load(Ordering::SeqCst), 1);
    if !matches!(env.kind, Kind::Memory) {
        let open = env.open_uploads(key.clone()).await;
        assert_eq!(
            open.len(),
            1,
            "{store}: the upload is open mid-way: {open:?}"
        );
    }
    drop(w);
    settle_aborts().await;
    assert_aborted(&env, &key).await;
}

/// An `upload_file` cancelled (its future dropped) once parts are in flight leaves no open
/// upload, like a failed one.
async fn cancelled_upload_aborts(env: Env) {
    let store = &env.faulty;
    let m5 = 5 * MIB;
    let dir = tempfile::tempdir().unwrap();
    let src = write_file(dir.path(), "big", &data(5 * m5 + 10, 9));
    let key = k("cancel/big");
    let opts = TransferOptions {
        part_size: m5,
        concurrency: 2,
        multipart_threshold: m5 as u64,
        ..Default::default()
    };
    // Ready once two parts have started: every later part waits on a file read first, so the
    // upload cannot finish before this is polled again.
    let two_parts = std::future::poll_fn(|cx| {
        if store.faults.parts.load(Ordering::SeqCst) >= 2 {
            std::task::Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    });
    let rec = Recorder::new();
    tokio::select! {
        biased;
        () = two_parts => {}
        r = upload_file(store, &key, &src, &opts, &rec) => {
            panic!("{store}: the upload ended before it was cancelled: {r:?}")
        }
    }
    settle_aborts().await;
    assert_aborted(&env, &key).await;
}

/// One abort, no complete, no open upload and nothing at `key`.
async fn assert_aborted(env: &Env, key: &Key) {
    let store = &env.faulty;
    assert_eq!(
        store.faults.aborts.load(Ordering::SeqCst),
        1,
        "{store}: the upload was aborted"
    );
    assert_eq!(store.faults.completes.load(Ordering::SeqCst), 0);
    let open = env.open_uploads(key.clone()).await;
    assert!(open.is_empty(), "{store}: uploads left open: {open:?}");
    assert!(
        !store.exists(key).await.unwrap(),
        "{store}: nothing at the key"
    );
}

/// A body that breaks mid-way is resumed at its offset, pinned to the ETag; without resumes
/// allowed the download fails and leaves no file.
async fn resumed_download(env: Env) {
    let store = &env.faulty;
    let part = 64 * 1024;
    let size = 200 * 1024 + 7;
    let want = data(size, 11);
    let key = k("resume/obj");
    store.put(&key, want.clone()).await.unwrap();
    let etag = store.head(&key).await.unwrap().etag;
    let dir = tempfile::tempdir().unwrap();
    let opts = TransferOptions {
        part_size: part,
        multipart_threshold: part as u64,
        concurrency: 3,
        ..Default::default()
    };

    // Ranged path: one range past the first breaks after 1000 bytes.
    store.faults.reset_counts();
    *store.faults.break_body.lock().unwrap() = Some((part as u64, 1000));
    let out = dir.path().join("ranged");
    download_file(store, &key, &out, &opts, &Recorder::new())
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    assert!(
        std::fs::read(&out).unwrap() == want[..],
        "{store}: resumed bytes differ"
    );
    let resumed: Vec<_> = store
        .faults
        .gets()
        .into_iter()
        .filter(|g| matches!(&g.1, Some(GetRange::Bounded(r)) if r.start % part as u64 == 1000))
        .collect();
    assert_eq!(
        resumed.len(),
        1,
        "{store}: exactly one resumed GET: {:?}",
        store.faults.gets()
    );
    let Some(GetRange::Bounded(r)) = &resumed[0].1 else {
        unreachable!()
    };
    let range_start = r.start - 1000;
    assert_eq!(
        r.end,
        (range_start + part as u64).min(size as u64),
        "{store}: resumes to the end of its range"
    );
    assert_eq!(resumed[0].2, etag, "{store}: the resumed GET is pinned");

    // Single-GET path: the only body breaks after 100 bytes.
    store.faults.reset_counts();
    *store.faults.break_body.lock().unwrap() = Some((0, 100));
    let small = TransferOptions {
        multipart_threshold: u64::MAX,
        ..opts.clone()
    };
    let out = dir.path().join("single");
    download_file(store, &key, &out, &small, &Recorder::new())
        .await
        .unwrap();
    assert!(std::fs::read(&out).unwrap() == want[..], "{store}");
    let gets = store.faults.gets();
    assert_eq!(gets.len(), 2, "{store}: {gets:?}");
    assert_eq!(
        gets[1].1,
        Some(GetRange::Bounded(100..size as u64)),
        "{store}"
    );
    assert_eq!(gets[1].2, etag, "{store}");

    // No resumes allowed: the break is fatal, no file and no temp file remain.
    *store.faults.break_body.lock().unwrap() = Some((0, 100));
    let strict = TransferOptions {
        max_resumes: 0,
        ..small
    };
    let out = dir.path().join("strict");
    let e = download_file(store, &key, &out, &strict, &Recorder::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network, "{store}: {e}");
    assert_eq!(
        leftovers(dir.path(), &["ranged", "single"]),
        Vec::<String>::new(),
        "{store}"
    );
}

/// The object changes between the first response and a later range: PreconditionFailed,
/// nothing written (download and copy).
async fn etag_pinning(env: Env) {
    let store = &env.faulty;
    let part = 64 * 1024;
    let size = 200 * 1024;
    let key = k("pin/obj");
    store.put(&key, data(size, 1)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = TransferOptions {
        part_size: part,
        multipart_threshold: part as u64,
        concurrency: 2,
        ..Default::default()
    };
    *store.faults.change_before_range.lock().unwrap() = Some(data(size, 2));
    let out = dir.path().join("out");
    let e = download_file(store, &key, &out, &opts, &Recorder::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{store}: {e}");
    assert_eq!(
        leftovers(dir.path(), &[]),
        Vec::<String>::new(),
        "{store}: no file, no temp file"
    );

    let dst = MemoryStore::new();
    *store.faults.change_before_range.lock().unwrap() = Some(data(size, 3));
    let e = copy_object(store, &key, &dst, &key, &opts, &Recorder::new())
        .await
        .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::PreconditionFailed,
        "{store}: copy: {e}"
    );
    assert!(
        !dst.exists(&key).await.unwrap(),
        "{store}: the copy wrote nothing"
    );
}

/// A recorded SHA-256 is checked after downloads and copies, single-GET and ranged.
async fn checksum_verified(env: Env) {
    let store = &env.faulty;
    if !store.capabilities().metadata {
        panic!("{store}: every store under test keeps metadata");
    }
    let dir = tempfile::tempdir().unwrap();
    let part = 64 * 1024;
    let opts = TransferOptions {
        part_size: part,
        multipart_threshold: part as u64,
        concurrency: 2,
        ..Default::default()
    };
    for (i, size) in [1000usize, 200 * 1024].into_iter().enumerate() {
        let bytes = data(size, 40 + i as u64);
        let good = k(&format!("sha/{size}/good"));
        let bad = k(&format!("sha/{size}/bad"));
        // Forged on purpose (the documented bypass of the reserved-name check).
        let put = |sha: String| {
            let mut p = PutOptions::default().meta(SHA256_META, sha);
            p.layer_hints.insert(
                cairn::layer::stack::LAYER_META_HINT.into(),
                SHA256_META.into(),
            );
            p
        };
        store
            .put_opts(&good, bytes.clone(), put(sha_hex(&bytes)))
            .await
            .unwrap();
        store
            .put_opts(&bad, bytes.clone(), put(sha_hex(b"something else")))
            .await
            .unwrap();

        let out = dir.path().join(format!("good{size}"));
        download_file(store, &good, &out, &opts, &Recorder::new())
            .await
            .unwrap_or_else(|e| panic!("{store}: {e}"));
        assert!(std::fs::read(&out).unwrap() == bytes[..]);
        let out = dir.path().join(format!("bad{size}"));
        let e = download_file(store, &bad, &out, &opts, &Recorder::new())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "{store}: {size}: {e}");
        assert!(!out.exists(), "{store}: a corrupt download leaves no file");

        let dst = MemoryStore::new();
        copy_object(store, &good, &dst, &good, &opts, &Recorder::new())
            .await
            .unwrap();
        assert!(
            dst.get(&good).await.unwrap() == bytes,
            "{store}: verified copy"
        );
        let h = dst.head(&good).await.unwrap();
        assert_eq!(
            h.layer_meta.get(SHA256_META),
            None,
            "{store}: cairn-* metadata is the destination layers' to write"
        );
        let e = copy_object(store, &bad, &dst, &bad, &opts, &Recorder::new())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "{store}: copy {size}: {e}");
        assert!(
            !dst.exists(&bad).await.unwrap(),
            "{store}: a corrupt copy writes nothing"
        );
    }
    assert_eq!(
        leftovers(dir.path(), &["good1000", "good204800"]),
        Vec::<String>::new()
    );
}

/// A multipart object's ranges are checked against its recorded part digests on a parallel
/// download: a part corrupted, lost or reordered on the server fails it with `Integrity`
/// and leaves no file.
async fn parts_checked_on_download(env: Env) {
    use cairn::layer::checksum::{ChecksumStore, MANIFEST_META};
    let bare = env.faulty.inner.clone();
    let store = ChecksumStore::new(bare.clone());
    let dir = tempfile::tempdir().unwrap();
    // S3's smallest part.
    let part = 5 << 20;
    let opts = TransferOptions {
        part_size: part,
        multipart_threshold: part as u64,
        concurrency: 3,
        ..Default::default()
    };
    let bytes = data(3 * part + 100, 77);
    let key = k("parts/obj");
    let mut up = store
        .put_multipart_opts(&key, PutOptions::default())
        .await
        .unwrap();
    for c in bytes.chunks(part) {
        up.put_part(bytes.slice_ref(c)).await.unwrap();
    }
    up.complete().await.unwrap();
    let out = dir.path().join("obj");
    download_file(&store, &key, &out, &opts, &Recorder::new())
        .await
        .unwrap_or_else(|e| panic!("{store}: {e}"));
    assert!(std::fs::read(&out).unwrap() == bytes[..]);

    let id = bare.head(&key).await.unwrap().layer_meta[MANIFEST_META].clone();
    let (p0, p1, p2) = (&bytes[..part], &bytes[part..2 * part], &bytes[2 * part..]);
    let mut flipped = bytes.to_vec();
    flipped[2 * part + 9] ^= 4;
    let cases = [
        ("a corrupt part", flipped),
        ("a missing part", [p0, p2].concat()),
        ("reordered parts", [p1, p0, p2].concat()),
    ];
    for (what, stored) in cases {
        // Forged on purpose: the upload's id on other bytes, as a faulty server would hold.
        let mut put = PutOptions::default().meta(MANIFEST_META, id.clone());
        put.layer_hints.insert(
            cairn::layer::stack::LAYER_META_HINT.into(),
            MANIFEST_META.into(),
        );
        bare.put_opts(&key, stored.into(), put).await.unwrap();
        let out = dir.path().join("bad");
        let e = download_file(&store, &key, &out, &opts, &Recorder::new())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "{store}: {what}: {e}");
        assert!(
            !out.exists(),
            "{store}: {what}: a corrupt download leaves no file"
        );
    }
}

/// Copies between this store and memory, both ways, small and multipart, keep bytes,
/// content type and user metadata.
async fn copy_between_stores(env: Env) {
    let store = &env.faulty;
    let mem = MemoryStore::new();
    let opts = TransferOptions {
        part_size: 64 * 1024,
        multipart_threshold: 64 * 1024,
        concurrency: 3,
        ..Default::default()
    };
    for (i, size) in [10usize, 300 * 1024 + 1].into_iter().enumerate() {
        let key = k(&format!("copy/{size}"));
        let bytes = data(size, 60 + i as u64);
        let put = PutOptions::default()
            .content_type("text/csv")
            .meta("owner", "ops");
        store.put_opts(&key, bytes.clone(), put).await.unwrap();
        let rec = Recorder::new();
        let n = copy_object(store, &key, &mem, &key, &opts, &rec)
            .await
            .unwrap_or_else(|e| panic!("{store}: {e}"));
        assert_eq!(n, size as u64);
        assert_eq!(rec.progress_bytes(), size as u64, "{store}: progress");
        assert!(mem.get(&key).await.unwrap() == bytes, "{store}: {size}");
        let h = mem.head(&key).await.unwrap();
        assert_eq!(h.content_type.as_deref(), Some("text/csv"), "{store}");
        assert_eq!(
            h.metadata.get("owner").map(String::as_str),
            Some("ops"),
            "{store}"
        );
        let back = k(&format!("copy/back-{size}"));
        copy_object(&mem, &key, store, &back, &opts, &Recorder::new())
            .await
            .unwrap_or_else(|e| panic!("{store}: {e}"));
        assert!(
            store.get(&back).await.unwrap() == bytes,
            "{store}: back {size}"
        );
        assert_eq!(
            store
                .head(&back)
                .await
                .unwrap()
                .metadata
                .get("owner")
                .map(String::as_str),
            Some("ops")
        );
    }
}

/// A tree of many small objects and a few large ones copies under a tight memory budget
/// (many objects share it without deadlock), one failing key is reported and the rest go on,
/// and the prefix is a directory (`tree` does not take `treex/`).
async fn tree_with_partial_failure(env: Env) {
    let src = &env.faulty;
    let mut want = Vec::new();
    for i in 0..120 {
        let key = format!("tree/d{}/f{i:03}", i % 7);
        want.push((key, data(100 + i, i as u64)));
    }
    for i in 0..4 {
        want.push((
            format!("tree/large/{i}"),
            data(300 * 1024 + i, 500 + i as u64),
        ));
    }
    futures::future::try_join_all(
        want.iter()
            .map(|(key, b)| async move { src.put(&k(key), b.clone()).await }),
    )
    .await
    .unwrap();
    src.put(&k("treex/not-me"), data(5, 1)).await.unwrap();
    let dst = Faulty::new(Arc::new(MemoryStore::new()));
    *dst.faults.fail_puts_for.lock().unwrap() = Some("copy/d3/f010".into());
    let opts = TransferOptions {
        part_size: 64 * 1024,
        multipart_threshold: 64 * 1024,
        concurrency: 4,
        object_concurrency: 8,
        memory_limit: Some(128 * 1024),
        ..Default::default()
    };
    let rec = Recorder::new();
    let run = transfer_tree(src, "tree", &dst, "copy/", &opts, &rec);
    let summary = tokio::time::timeout(std::time::Duration::from_secs(300), run)
        .await
        .expect("the transfer hung (budget deadlock?)")
        .unwrap();
    assert_eq!(
        summary.transferred,
        want.len() as u64 - 1,
        "{src}: {summary:?}"
    );
    assert_eq!(summary.failed, 1, "{src}: {summary:?}");
    let f = &summary.failures[0];
    assert_eq!(
        (f.key.as_str(), f.action, f.kind),
        (
            "copy/d3/f010",
            Action::Transfer,
            ErrorKind::PermissionDenied
        )
    );
    assert!(
        f.message.contains("injected"),
        "the reason is kept: {}",
        f.message
    );
    for (key, bytes) in &want {
        let dkey = k(&key.replacen("tree/", "copy/", 1));
        if dkey.as_str() == "copy/d3/f010" {
            assert!(!dst.exists(&dkey).await.unwrap());
            continue;
        }
        assert!(dst.get(&dkey).await.unwrap() == bytes, "{src}: {dkey}");
    }
    assert!(
        !dst.exists(&k("copyx/not-me")).await.unwrap()
            && !dst.exists(&k("copy/x/not-me")).await.unwrap()
    );
    assert_eq!(rec.done().len(), want.len(), "one outcome per item");
}

/// A directory tree goes up and comes back byte for byte (small, empty, nested, multipart),
/// a failing key is reported while the rest go on, and `..`-free keys stay inside the target.
async fn directory_trees(env: Env) {
    let store = &env.faulty;
    let src = tempfile::tempdir().unwrap();
    let mut files = vec![
        ("empty".to_string(), Vec::new()),
        ("big/blob.bin".to_string(), data(300 * 1024 + 9, 5).to_vec()),
    ];
    for i in 0..60 {
        files.push((
            format!("d{}/s{}/f{i:02}.csv", i % 4, i % 3),
            data(20 + i, i as u64).to_vec(),
        ));
    }
    for (rel, b) in &files {
        let p = src.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b).unwrap();
    }
    let opts = TransferOptions {
        part_size: 64 * 1024,
        multipart_threshold: 64 * 1024,
        concurrency: 3,
        object_concurrency: 8,
        ..Default::default()
    };
    *store.faults.fail_puts_for.lock().unwrap() = Some("up/d1/s2/f05.csv".into());
    let rec = Recorder::new();
    let up = upload_tree(src.path(), store, "up", &opts, &rec)
        .await
        .unwrap();
    *store.faults.fail_puts_for.lock().unwrap() = None;
    assert_eq!(
        (up.transferred, up.failed),
        (files.len() as u64 - 1, 1),
        "{store}: {up:?}"
    );
    assert_eq!(up.failures[0].key, "up/d1/s2/f05.csv");
    assert_eq!(rec.done().len(), files.len());
    let again = upload_tree(src.path(), store, "up/", &opts, &Recorder::new())
        .await
        .unwrap();
    assert_eq!(
        (again.transferred, again.failed),
        (files.len() as u64, 0),
        "{store}: {again:?}"
    );

    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("copy");
    let down = download_tree(store, "up", &target, &opts, &Recorder::new())
        .await
        .unwrap();
    assert_eq!(
        (down.transferred, down.failed),
        (files.len() as u64, 0),
        "{store}: {down:?}"
    );
    assert_eq!(
        down.transferred_bytes,
        files.iter().map(|(_, b)| b.len() as u64).sum::<u64>()
    );
    for (rel, b) in &files {
        assert!(
            std::fs::read(target.join(rel)).unwrap() == *b,
            "{store}: {rel}"
        );
    }
    let mut n = 0;
    let mut stack = vec![target.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path())
            } else {
                n += 1
            }
        }
    }
    assert_eq!(n, files.len(), "{store}: no temp files or extras left");
    let e = upload_tree(
        &src.path().join("missing"),
        store,
        "",
        &opts,
        &Recorder::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}

macro_rules! transfer_tests {
    ($($backend:ident),*) => {$(
        mod $backend {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn roundtrip_part_boundaries() {
                super::roundtrip_part_boundaries(super::$backend("roundtrip").await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn failed_upload_aborts() {
                super::failed_upload_aborts(super::$backend("abort").await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dropped_writer_aborts() {
                super::dropped_writer_aborts(super::$backend("drop").await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cancelled_upload_aborts() {
                super::cancelled_upload_aborts(super::$backend("cancel").await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn resumed_download() {
                super::resumed_download(super::$backend("resume").await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn etag_pinning() {
                super::etag_pinning(super::$backend("pin").await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn checksum_verified() {
                super::checksum_verified(super::$backend("sha").await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn parts_checked_on_download() {
                super::parts_checked_on_download(super::$backend("parts").await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn copy_between_stores() {
                super::copy_between_stores(super::$backend("copy").await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn directory_trees() {
                super::directory_trees(super::$backend("dirs").await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn tree_with_partial_failure() {
                super::tree_with_partial_failure(super::$backend("tree").await).await
            }
        }
    )*};
}

transfer_tests!(memory, local, moto, garage);

/// Upload refuses directories with a clear InvalidInput.
#[tokio::test]
async fn upload_of_a_directory_is_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    let e = upload_file(
        &store,
        &k("x"),
        dir.path(),
        &TransferOptions::default(),
        &Recorder::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("not a regular file"), "{e}");
    assert!(!store.exists(&k("x")).await.unwrap());
}

/// `upload_many` uploads caller-chosen files, applies each item's content type unless the
/// options set one, and records a missing file as one failure under its key.
#[tokio::test]
async fn upload_many_uploads_items_and_records_failures() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_file(dir.path(), "a.txt", b"alpha");
    let big = vec![7u8; 40 * 1024];
    let b = write_file(dir.path(), "b.bin", &big);
    let store = MemoryStore::new();
    let item = |path: std::path::PathBuf, key: &str, ct: Option<&str>| {
        Ok(UploadItem {
            size: std::fs::metadata(&path).ok().map(|m| m.len()),
            path,
            key: k(key),
            content_type: ct.map(str::to_string),
        })
    };
    let items = vec![
        item(a, "up/a.txt", Some("text/plain")),
        item(b, "up/b.bin", None),
        item(dir.path().join("gone"), "up/gone", None),
    ];
    // Small parts so the second file is a concurrent multipart upload.
    let opts = TransferOptions {
        part_size: 8 * 1024,
        multipart_threshold: 16 * 1024,
        ..Default::default()
    };
    let rec = Recorder::new();
    use futures::StreamExt;
    let sum = upload_many(&store, futures::stream::iter(items).boxed(), &opts, &rec).await;
    assert_eq!((sum.transferred, sum.failed), (2, 1), "{sum:?}");
    assert_eq!(sum.transferred_bytes, 5 + big.len() as u64);
    assert_eq!(sum.failures[0].key, "up/gone");
    assert_eq!(rec.done().len(), 3);
    assert_eq!(rec.progress_bytes(), 5 + big.len() as u64);
    assert_eq!(store.get(&k("up/b.bin")).await.unwrap().to_vec(), big);
    let m = store.head(&k("up/a.txt")).await.unwrap();
    assert_eq!(m.content_type.as_deref(), Some("text/plain"));
    assert!(!store.exists(&k("up/gone")).await.unwrap());
    // Options that set a content type win over the item's.
    let opts = TransferOptions {
        put: PutOptions {
            content_type: Some("text/x-set".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let again = vec![item(
        dir.path().join("a.txt"),
        "up/a.txt",
        Some("text/plain"),
    )];
    let sum = upload_many(&store, futures::stream::iter(again).boxed(), &opts, &rec).await;
    assert_eq!(sum.transferred, 1, "{sum:?}");
    let m = store.head(&k("up/a.txt")).await.unwrap();
    assert_eq!(m.content_type.as_deref(), Some("text/x-set"));
}

/// A `/proc/self/status` figure in bytes (Linux).
fn proc_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// The same bound through zstd + AES on incompressible data: the layers' copies of each part
/// in flight ([`Capabilities::part_copies`]) are counted in the transfer's budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layered_transfer_memory_stays_within_the_budget() {
    // SAFETY: set before any other thread of this test process reads the environment.
    unsafe { std::env::set_var("CAIRN_TEST_MEMORY_KEY", "42".repeat(32)) };
    let (store, _prefix) = s3_store_with(
        "GARAGE",
        "memory-layers",
        &[
            ("compression", "zstd"),
            ("encryption_key", "env:CAIRN_TEST_MEMORY_KEY"),
        ],
    )
    .await;
    assert_eq!(store.capabilities().part_copies, 2);
    let dir = tempfile::tempdir().unwrap();
    let size: u64 = 320 << 20;
    let src = dir.path().join("random.bin");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&src).unwrap());
        for i in 0..(size >> 20) {
            f.write_all(&data(1 << 20, i + 1)).unwrap();
        }
    }
    let opts = TransferOptions {
        part_size: 8 << 20,
        concurrency: 4,
        ..Default::default()
    };
    let budget = 32u64 << 20;
    // The plain test's constant, plus the zstd encoder's and decoder's own state (a 4 MiB
    // window and its tables per stream): fixed per upload, whatever the object's size.
    let slack = 32u64 << 20;
    let base = proc_status_bytes("VmRSS:");
    let key = k("memory/random.bin");
    upload_file(&*store, &key, &src, &opts, &Recorder::new())
        .await
        .unwrap();
    let up = proc_status_bytes("VmHWM:").saturating_sub(base);
    let out = dir.path().join("back.bin");
    let meta = download_file(&*store, &key, &out, &opts, &Recorder::new())
        .await
        .unwrap();
    assert_eq!(meta.size, size);
    assert!(meta.stored_size > size, "encrypted: {}", meta.stored_size);
    assert_eq!(std::fs::metadata(&out).unwrap().len(), size);
    let grew = proc_status_bytes("VmHWM:").saturating_sub(base);
    assert!(
        grew <= budget + slack,
        "peak RSS grew by {} MiB ({} MiB by the end of the upload) for a {} MiB budget \
         (+{} MiB allowed)",
        grew >> 20,
        up >> 20,
        budget >> 20,
        slack >> 20
    );
}

/// Peak memory of a large upload and download through the real S3 client stays within the
/// budget (`concurrency × part_size`) plus a small constant, as issue 4 asks. nextest runs each
/// test in its own process, so the process's high-water mark is this test's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_transfer_memory_stays_within_the_budget() {
    let env = garage("memory").await;
    let store = &env.faulty;
    let dir = tempfile::tempdir().unwrap();
    let size: u64 = 320 << 20;
    let src = dir.path().join("big.bin");
    // Sparse: reads as zeros without writing 320 MiB to disk first.
    std::fs::File::create(&src).unwrap().set_len(size).unwrap();
    let opts = TransferOptions {
        part_size: 8 << 20,
        concurrency: 4,
        ..Default::default()
    };
    let budget = 32u64 << 20;
    let slack = 24u64 << 20;
    let base = proc_status_bytes("VmRSS:");
    let key = k("memory/big.bin");
    upload_file(store, &key, &src, &opts, &Recorder::new())
        .await
        .unwrap();
    let out = dir.path().join("back.bin");
    let meta = download_file(store, &key, &out, &opts, &Recorder::new())
        .await
        .unwrap();
    assert_eq!(meta.size, size);
    assert_eq!(std::fs::metadata(&out).unwrap().len(), size);
    let peak = proc_status_bytes("VmHWM:");
    let grew = peak.saturating_sub(base);
    assert!(
        grew <= budget + slack,
        "peak RSS grew by {} MiB for a {} MiB budget (+{} MiB allowed)",
        grew >> 20,
        budget >> 20,
        slack >> 20
    );
}

/// A single-put object above the checksum layer's re-read limit streams, so a byte flipped in
/// transit ends its stream with `Integrity`; the download went to a temp file, so it is
/// downloaded again. Corrupt at rest, it fails after the same bad bytes came back 3 times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flip_in_transit_on_a_streamed_download_is_downloaded_again() {
    use cairn::layer::checksum::{ChecksumStore, SHA256_META};
    use cairn::testkit::fault::{Fault, FaultStore, Rule};
    let s = ChecksumStore::new(FaultStore::new(MemoryStore::new(), 3));
    let bytes = data(3 << 20, 5);
    s.put(&k("f"), bytes.clone()).await.unwrap();
    s.inner().add_rule(Rule::new(Fault::FlipByte, 1.0).limit(1));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f");
    let opts = TransferOptions::default();
    download_file(&s, &k("f"), &out, &opts, &Recorder::new())
        .await
        .unwrap();
    assert!(std::fs::read(&out).unwrap() == bytes[..]);
    assert_eq!(s.inner().total_injected(), 1);

    // Other bytes at rest under the recorded digest.
    let mut bad = bytes.to_vec();
    bad[12345] ^= 1;
    let opts_put = PutOptions::default().meta(SHA256_META, sha_hex(&bytes));
    s.inner()
        .inner()
        .put_opts(&k("f"), bad.into(), opts_put)
        .await
        .unwrap();
    let gets = |s: &ChecksumStore<FaultStore<MemoryStore>>| s.inner().calls();
    let before = gets(&s);
    let e = download_file(&s, &k("f"), &dir.path().join("g"), &opts, &Recorder::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    assert_eq!(
        gets(&s) - before,
        3,
        "three downloads (one read each) returned the same bad bytes"
    );
    assert!(!dir.path().join("g").exists());
}
