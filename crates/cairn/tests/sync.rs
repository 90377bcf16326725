//! `sync` between memory, local dirs, moto and Garage in every direction that matters:
//! idempotence, --delete, --dry-run, include/exclude, partial failure with reasons, checksum
//! comparison, ACL / storage-class pass-through and refusal of unsorted listings.

mod transfer_support;

use bytes::Bytes;
use cairn::backend::memory::MemoryStore;
use cairn::ops::{sync, Action, Compare, Recorder, SyncOptions};
use cairn::store::*;
use cairn::testkit::all_keys;
use cairn::transfer::{TransferOptions, SHA256_META};
use cairn::{DynStore, ErrorKind};
use std::sync::Arc;
use transfer_support::*;

/// One side of a sync; keeps its temp dir alive.
struct Side {
    store: Faulty,
    _dir: Option<tempfile::TempDir>,
}

// Every side goes through `cairn::open`, so it has the default layers (the checksum layer
// records each object's SHA-256), as users' stores do.
async fn memory(_test: &str) -> Side {
    Side {
        store: Faulty::new(cairn::open("memory://").await.unwrap()),
        _dir: None,
    }
}

async fn local(_test: &str) -> Side {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let store: DynStore = cairn::open(&url).await.unwrap();
    Side {
        store: Faulty::new(store),
        _dir: Some(dir),
    }
}

async fn moto(test: &str) -> Side {
    Side {
        store: Faulty::new(s3_store("MOTO", test).await.0),
        _dir: None,
    }
}

async fn garage(test: &str) -> Side {
    Side {
        store: Faulty::new(s3_store("GARAGE", test).await.0),
        _dir: None,
    }
}

fn opts() -> SyncOptions {
    SyncOptions {
        transfer: TransferOptions {
            part_size: 64 * 1024,
            multipart_threshold: 64 * 1024,
            concurrency: 3,
            object_concurrency: 8,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A small tree: nested dirs, an empty file, unicode, and one multipart-sized object.
fn tree() -> Vec<(String, Bytes)> {
    let mut t: Vec<(String, Bytes)> = (0..24)
        .map(|i| {
            (
                format!("d{}/sub{}/f{i}.csv", i % 3, i % 2),
                data(50 + i * 7, i as u64),
            )
        })
        .collect();
    t.push(("top.txt".into(), data(10, 100)));
    t.push(("empty".into(), Bytes::new()));
    t.push(("über/ファイル.bin".into(), data(33, 101)));
    t.push(("big/blob".into(), data(300 * 1024 + 3, 102)));
    t
}

async fn fill(store: &dyn Store, items: &[(String, Bytes)]) {
    for (key, b) in items {
        store
            .put(&k(key), b.clone())
            .await
            .unwrap_or_else(|e| panic!("{store}: put {key}: {e}"));
    }
}

/// Every object of a store as (key, bytes), sorted.
async fn contents(store: &dyn Store) -> Vec<(String, Bytes)> {
    let mut out = Vec::new();
    for key in all_keys(store, "").await {
        let b = store.get(&k(&key)).await.unwrap();
        out.push((key, b));
    }
    out
}

fn sorted(mut v: Vec<(String, Bytes)>) -> Vec<(String, Bytes)> {
    v.sort();
    v
}

/// The first run copies everything, the second transfers nothing, a changed file moves alone.
async fn idempotent(src: Side, dst: Side) {
    let (s, d) = (&src.store, &dst.store);
    let t = tree();
    fill(s, &t).await;
    let rec = Recorder::new();
    let first = sync(s, d, &opts(), &rec).await.unwrap();
    assert_eq!(
        (
            first.transferred,
            first.skipped,
            first.deleted,
            first.failed
        ),
        (t.len() as u64, 0, 0, 0),
        "{s} -> {d}: {first:?}"
    );
    assert_eq!(
        first.transferred_bytes,
        t.iter().map(|(_, b)| b.len() as u64).sum::<u64>()
    );
    assert!(
        contents(d).await == sorted(t.clone()),
        "{s} -> {d}: contents differ"
    );
    assert_eq!(rec.done().len(), t.len());

    let second = sync(s, d, &opts(), &Recorder::new()).await.unwrap();
    assert_eq!(
        (second.transferred, second.skipped, second.failed),
        (0, t.len() as u64, 0),
        "{s} -> {d}: second run: {second:?}"
    );

    s.put(&k("top.txt"), data(11, 7)).await.unwrap();
    let third = sync(s, d, &opts(), &Recorder::new()).await.unwrap();
    assert_eq!(
        (third.transferred, third.skipped),
        (1, t.len() as u64 - 1),
        "{s} -> {d}: {third:?}"
    );
    assert_eq!(d.get(&k("top.txt")).await.unwrap(), data(11, 7));
}

/// --dry-run reports the plan and changes nothing; --delete removes extras, without it they stay.
async fn delete_and_dry_run(src: Side, dst: Side) {
    let (s, d) = (&src.store, &dst.store);
    let t = tree();
    fill(s, &t).await;
    fill(
        d,
        &[
            ("extra/one".into(), data(5, 1)),
            ("zz-extra".into(), data(6, 2)),
            ("top.txt".into(), data(3, 3)),
        ],
    )
    .await;
    let before = contents(d).await;

    let dry = SyncOptions {
        dry_run: true,
        delete: true,
        ..opts()
    };
    let rec = Recorder::new();
    let plan = sync(s, d, &dry, &rec).await.unwrap();
    assert!(plan.dry_run);
    assert_eq!(
        (plan.transferred, plan.deleted, plan.failed),
        (t.len() as u64, 2, 0),
        "{s} -> {d}: {plan:?}"
    );
    assert!(
        contents(d).await == before,
        "{s} -> {d}: dry run changed the destination"
    );
    assert!(
        rec.done().iter().all(|(_, _, o)| o == "planned"),
        "{:?}",
        rec.done()
    );
    assert!(rec
        .done()
        .iter()
        .any(|(key, a, _)| key == "zz-extra" && *a == Action::Delete));

    let keep = sync(s, d, &opts(), &Recorder::new()).await.unwrap();
    assert_eq!(
        (keep.transferred, keep.deleted),
        (t.len() as u64, 0),
        "{keep:?}"
    );
    assert!(
        d.exists(&k("zz-extra")).await.unwrap(),
        "{d}: without --delete extras stay"
    );

    let del = SyncOptions {
        delete: true,
        ..opts()
    };
    let rec = Recorder::new();
    let gone = sync(s, d, &del, &rec).await.unwrap();
    assert_eq!(
        (gone.transferred, gone.deleted, gone.failed),
        (0, 2, 0),
        "{s} -> {d}: {gone:?}"
    );
    assert!(
        contents(d).await == sorted(t),
        "{s} -> {d}: after --delete the sides match"
    );
    assert!(rec
        .done()
        .contains(&("extra/one".into(), Action::Delete, "deleted".into())));
}

/// Globs pick source keys and protect excluded destination keys from --delete.
async fn include_exclude(src: Side, dst: Side) {
    let (s, d) = (&src.store, &dst.store);
    fill(
        s,
        &[
            ("a.csv".into(), data(1, 1)),
            ("b.txt".into(), data(2, 2)),
            ("skip/y.csv".into(), data(3, 3)),
            ("d/c.csv".into(), data(4, 4)),
        ],
    )
    .await;
    fill(
        d,
        &[
            ("old.csv".into(), data(5, 5)),
            ("keep.txt".into(), data(6, 6)),
            ("skip/x.csv".into(), data(7, 7)),
        ],
    )
    .await;
    let o = SyncOptions {
        include: vec!["*.csv".into()],
        exclude: vec!["skip/**".into()],
        delete: true,
        ..opts()
    };
    let r = sync(s, d, &o, &Recorder::new()).await.unwrap();
    assert_eq!(
        (r.transferred, r.deleted, r.failed),
        (2, 1, 0),
        "{s} -> {d}: {r:?}"
    );
    assert_eq!(
        all_keys(d, "").await,
        ["a.csv", "d/c.csv", "keep.txt", "skip/x.csv"],
        "{s} -> {d}"
    );
}

/// One key that cannot be written fails with its reason; the rest are copied; a later run
/// copies just that one.
async fn partial_failure(src: Side, dst: Side) {
    let (s, d) = (&src.store, &dst.store);
    let t = tree();
    fill(s, &t).await;
    *d.faults.fail_puts_for.lock().unwrap() = Some("d1/sub1/f7.csv".into());
    let rec = Recorder::new();
    let r = sync(s, d, &opts(), &rec).await.unwrap();
    assert!(!r.is_success());
    assert_eq!(
        (r.transferred, r.failed),
        (t.len() as u64 - 1, 1),
        "{s} -> {d}: {r:?}"
    );
    let f = &r.failures[0];
    assert_eq!(
        (f.key.as_str(), f.action, f.kind),
        (
            "d1/sub1/f7.csv",
            Action::Transfer,
            ErrorKind::PermissionDenied
        )
    );
    assert!(
        f.message.contains("injected: puts to this key fail"),
        "the reason is kept: {}",
        f.message
    );
    assert!(rec.done().contains(&(
        "d1/sub1/f7.csv".into(),
        Action::Transfer,
        "failed permission_denied".into()
    )));
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"kind\":\"permission_denied\""), "{json}");

    *d.faults.fail_puts_for.lock().unwrap() = None;
    let again = sync(s, d, &opts(), &Recorder::new()).await.unwrap();
    assert_eq!((again.transferred, again.failed), (1, 0), "{again:?}");
    assert!(contents(d).await == sorted(t));
}

/// Same size, different bytes, destination newer: size+time skips it, checksum copies it; after
/// that a checksum run skips everything.
async fn checksum_compare(src: Side, dst: Side) {
    let (s, d) = (&src.store, &dst.store);
    let key = k("same-size");
    s.put(&key, data(100, 1)).await.unwrap();
    d.put(&key, data(100, 2)).await.unwrap();
    let r = sync(s, d, &opts(), &Recorder::new()).await.unwrap();
    assert_eq!(
        (r.transferred, r.skipped),
        (0, 1),
        "{s} -> {d}: size+time cannot see it: {r:?}"
    );
    let by_sha = SyncOptions {
        compare: Compare::Checksum,
        ..opts()
    };
    let r = sync(s, d, &by_sha, &Recorder::new()).await.unwrap();
    assert_eq!(
        (r.transferred, r.skipped, r.failed),
        (1, 0, 0),
        "{s} -> {d}: {r:?}"
    );
    assert_eq!(d.get(&key).await.unwrap(), data(100, 1));
    // The destination's checksum layer recorded the copy's SHA-256 ...
    let h = d.head(&key).await.unwrap();
    assert_eq!(
        h.layer_meta.get(SHA256_META).map(String::len),
        Some(64),
        "{d}: the SHA-256 is recorded"
    );
    // ... so the next checksum run compares recorded digests and copies nothing.
    let r = sync(s, d, &by_sha, &Recorder::new()).await.unwrap();
    assert_eq!(
        (r.transferred, r.skipped, r.failed),
        (0, 1, 0),
        "{s} -> {d}: second checksum run: {r:?}"
    );
}

macro_rules! sync_tests {
    ($($name:ident: $src:ident -> $dst:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn idempotent() {
                super::idempotent(super::$src("idem-src").await, super::$dst("idem-dst").await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn delete_and_dry_run() {
                super::delete_and_dry_run(super::$src("del-src").await, super::$dst("del-dst").await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn include_exclude() {
                super::include_exclude(super::$src("glob-src").await, super::$dst("glob-dst").await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn partial_failure() {
                super::partial_failure(super::$src("fail-src").await, super::$dst("fail-dst").await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn checksum_compare() {
                super::checksum_compare(super::$src("sha-src").await, super::$dst("sha-dst").await).await
            }
        }
    )*};
}

sync_tests!(
    local_to_memory: local -> memory,
    memory_to_local: memory -> local,
    local_to_local: local -> local,
    local_to_moto: local -> moto,
    moto_to_local: moto -> local,
    local_to_garage: local -> garage,
    garage_to_local: garage -> local,
    moto_to_garage: moto -> garage,
);

/// --acl and --storage-class reach every put; an unknown ACL is refused before any write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_and_storage_class_pass_through() {
    let src = MemoryStore::new();
    fill(
        &src,
        &[
            ("a".into(), data(5, 1)),
            ("big".into(), data(200 * 1024, 2)),
        ],
    )
    .await;
    let dst = Faulty::new(Arc::new(MemoryStore::new()));
    let o = SyncOptions {
        acl: Some("public-read".into()),
        storage_class: Some("STANDARD_IA".into()),
        ..opts()
    };
    let r = sync(&src, &dst, &o, &Recorder::new()).await.unwrap();
    assert_eq!(r.transferred, 2);
    let puts = dst.faults.puts.lock().unwrap().clone();
    assert_eq!(puts.len(), 2, "{puts:?}");
    for (key, p) in &puts {
        assert_eq!(
            p.layer_hints.get("acl").map(String::as_str),
            Some("public-read"),
            "{key}"
        );
        assert_eq!(p.storage_class.as_deref(), Some("STANDARD_IA"), "{key}");
    }
    let bad = SyncOptions {
        acl: Some("public".into()),
        ..opts()
    };
    let other = MemoryStore::new();
    let e = sync(&src, &other, &bad, &Recorder::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(
        e.to_string().contains("public-read"),
        "the error lists valid ACLs: {e}"
    );
    assert!(all_keys(&other, "").await.is_empty(), "nothing written");
    let e = sync(
        &src,
        &other,
        &SyncOptions {
            include: vec!["[".into()],
            ..opts()
        },
        &Recorder::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}

/// A listing out of order stops the walk: reported as a failure, nothing past it is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsorted_listing_stops_the_walk() {
    let src = MemoryStore::new();
    let dst = Faulty::new(Arc::new(MemoryStore::new()));
    fill(
        &dst,
        &[
            ("k1".into(), data(1, 1)),
            ("k2".into(), data(1, 2)),
            ("k3".into(), data(1, 3)),
            ("k4".into(), data(1, 4)),
        ],
    )
    .await;
    *dst.faults.unsorted_list.lock().unwrap() = true;
    let o = SyncOptions {
        delete: true,
        ..opts()
    };
    let r = sync(&src, &dst, &o, &Recorder::new()).await.unwrap();
    assert_eq!(r.failed, 1, "{r:?}");
    assert!(
        r.failures[0].message.contains("not in ascending order"),
        "{}",
        r.failures[0].message
    );
    assert!(
        dst.exists(&k("k3")).await.unwrap() && dst.exists(&k("k4")).await.unwrap(),
        "nothing past the error is deleted"
    );
}

/// A sync of many objects runs in bounded concurrency and a budget far below the data size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_objects_under_a_small_budget() {
    let src = MemoryStore::new();
    let items: Vec<(String, Bytes)> = (0..2000)
        .map(|i| (format!("m/{:02}/{i:05}", i % 50), data(64, i as u64)))
        .collect();
    fill(&src, &items).await;
    fill(&src, &[("m/large".into(), data(1024 * 1024 + 1, 9))]).await;
    let dst = MemoryStore::new();
    let mut o = opts();
    o.transfer.memory_limit = Some(96 * 1024);
    let r = sync(&src, &dst, &o, &Recorder::new()).await.unwrap();
    assert_eq!((r.transferred, r.failed), (2001, 0), "{r:?}");
    let again = sync(&src, &dst, &o, &Recorder::new()).await.unwrap();
    assert_eq!((again.transferred, again.skipped), (0, 2001));
}
