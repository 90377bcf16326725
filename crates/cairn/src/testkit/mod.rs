//! The conformance suite: shared async checks that every store and layer stack must pass.
//!
//! Each function takes an empty store (tests scope real servers to a random prefix) and
//! panics with a message naming the store on failure. Checks that need a capability read
//! [`Capabilities`](crate::Capabilities); none looks at a backend's name.
//! [`conformance_tests!`](crate::conformance_tests) stamps out one `#[tokio::test]` per check.

pub mod fault;
pub mod matrix;

use crate::store::*;
use crate::transfer::{put_stream, WriterOptions};
use crate::{ErrorKind, Key};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

/// Deterministic pseudo-random bytes (xorshift), so failures are reproducible.
pub fn pattern(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v.into()
}

fn k(s: &str) -> Key {
    Key::new(s).unwrap()
}

/// Every key below "" as strings, recursively, in listing order.
pub async fn all_keys(store: &dyn Store, prefix: &str) -> Vec<String> {
    store
        .list_objects(prefix)
        .map_ok(|m| m.key.into_string())
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{store}: list {prefix:?} failed: {e}"))
}

/// Objects of 0 B, 1 B, 5 MiB and 64 MiB (streamed) come back byte for byte.
pub async fn put_get_sizes(store: &dyn Store) {
    for (i, size) in [0usize, 1, 5 * 1024 * 1024].into_iter().enumerate() {
        let key = k(&format!("sizes/{size}"));
        let data = pattern(size, i as u64);
        store
            .put(&key, data.clone())
            .await
            .unwrap_or_else(|e| panic!("{store}: put {size}: {e}"));
        let got = store
            .get(&key)
            .await
            .unwrap_or_else(|e| panic!("{store}: get {size}: {e}"));
        assert_eq!(got.len(), size, "{store}: size {size}");
        assert!(got == data, "{store}: bytes differ at size {size}");
        assert_eq!(
            store.head(&key).await.unwrap().size,
            size as u64,
            "{store}: head size"
        );
    }
    let size = 64 * 1024 * 1024;
    let data = pattern(size, 64);
    let key = k("sizes/64MiB");
    let chunks = futures::stream::iter(
        data.chunks(1024 * 1024 + 17)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let opts = WriterOptions {
        part_size: 5 * 1024 * 1024,
        concurrency: 4,
        size_hint: None,
    };
    put_stream(store, &key, chunks, PutOptions::default(), opts)
        .await
        .unwrap_or_else(|e| panic!("{store}: streamed put of 64 MiB: {e}"));
    let mut body = store.get_stream(&key).await.unwrap();
    let mut off = 0usize;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap_or_else(|e| panic!("{store}: stream get: {e}"));
        assert!(
            chunk[..] == data[off..off + chunk.len()],
            "{store}: 64 MiB differs at {off}"
        );
        off += chunk.len();
    }
    assert_eq!(off, size, "{store}: 64 MiB length");
}

/// Multipart edge cases: exactly one minimum part, part boundaries, one byte over.
pub async fn multipart_boundaries(store: &dyn Store) {
    let min = store.capabilities().min_part_size.max(5 * 1024 * 1024) as usize;
    for (n, size) in [min, min + 1, 2 * min, 2 * min - 1].into_iter().enumerate() {
        let key = k(&format!("multipart/{size}"));
        let data = pattern(size, 100 + n as u64);
        let chunks =
            futures::stream::iter(vec![Ok(data.slice(..size / 3)), Ok(data.slice(size / 3..))]);
        let opts = WriterOptions {
            part_size: min,
            concurrency: 2,
            size_hint: None,
        };
        put_stream(
            store,
            &key,
            chunks,
            PutOptions::default().meta("part", "yes"),
            opts,
        )
        .await
        .unwrap_or_else(|e| panic!("{store}: multipart put {size}: {e}"));
        let got = store.get(&key).await.unwrap();
        assert!(got == data, "{store}: multipart {size} differs");
        if store.capabilities().metadata {
            let h = store.head(&key).await.unwrap();
            assert_eq!(
                h.metadata.get("part").map(String::as_str),
                Some("yes"),
                "{store}"
            );
        }
    }
}

/// Head reports size, ETag, last-modified, content type and user metadata.
pub async fn head_and_metadata(store: &dyn Store) {
    let key = k("meta/obj.json");
    let before = chrono::Utc::now() - chrono::Duration::seconds(300);
    let opts = PutOptions::default()
        .content_type("application/json")
        .meta("agent_id", "a-1")
        .meta("description", "snapshot ünïcode");
    let r = store
        .put_opts(&key, Bytes::from_static(b"{\"a\":1}"), opts)
        .await
        .unwrap();
    let h = store.head(&key).await.unwrap();
    assert_eq!(h.size, 7, "{store}");
    assert!(
        h.last_modified > before,
        "{store}: last_modified {}",
        h.last_modified
    );
    if r.etag.is_some() {
        assert_eq!(h.etag, r.etag, "{store}: head etag matches put etag");
    }
    if store.capabilities().metadata {
        assert_eq!(
            h.content_type.as_deref(),
            Some("application/json"),
            "{store}"
        );
        assert_eq!(
            h.metadata.get("agent_id").map(String::as_str),
            Some("a-1"),
            "{store}"
        );
        assert_eq!(
            h.metadata.get("description").map(String::as_str),
            Some("snapshot ünïcode"),
            "{store}"
        );
        let g = store.get_opts(&key, GetOptions::default()).await.unwrap();
        assert_eq!(
            g.meta.metadata, h.metadata,
            "{store}: get returns the same metadata"
        );
    }
}

/// Missing objects are NotFound for get and head, and `exists` says false.
pub async fn not_found(store: &dyn Store) {
    let key = k("missing/nothing-here");
    let e = store.get(&key).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{store}: get: {e}");
    assert!(!e.is_temporary(), "{store}: NotFound is permanent");
    let e = store.head(&key).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{store}: head: {e}");
    assert!(!store.exists(&key).await.unwrap(), "{store}");
}

/// Delete is idempotent; delete of many keys removes them all.
pub async fn delete_idempotent_and_many(store: &dyn Store) {
    let key = k("del/one");
    store.put(&key, Bytes::from_static(b"x")).await.unwrap();
    assert!(store.exists(&key).await.unwrap());
    store.delete(&key).await.unwrap();
    store
        .delete(&key)
        .await
        .unwrap_or_else(|e| panic!("{store}: second delete: {e}"));
    assert!(!store.exists(&key).await.unwrap());
    let keys: Vec<Key> = (0..25).map(|i| k(&format!("del/many/{i:02}"))).collect();
    futures::stream::iter(keys.clone())
        .map(|key| async move { store.put(&key, Bytes::from_static(b"y")).await })
        .buffer_unordered(8)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let mut with_missing = keys.clone();
    with_missing.push(k("del/many/never-existed"));
    let failed = store.delete_many(with_missing).await;
    assert!(
        failed.is_empty(),
        "{store}: delete_many failures: {failed:?}"
    );
    assert!(all_keys(store, "del/").await.is_empty(), "{store}");
}

/// Unicode, spaces and punctuation survive put, list and get.
pub async fn odd_keys(store: &dyn Store) {
    let keys = [
        "odd/über/ファイル.txt",
        "odd/with space/a+b=c&d.txt",
        "odd/émoji-🦀.bin",
        "odd/..dots../x",
        "odd/%41percent",
        "odd/semi;colon,comma@at!bang$(paren)",
    ];
    for (i, s) in keys.iter().enumerate() {
        store
            .put(&k(s), pattern(10 + i, i as u64))
            .await
            .unwrap_or_else(|e| panic!("{store}: put {s}: {e}"));
    }
    for (i, s) in keys.iter().enumerate() {
        assert_eq!(
            store.get(&k(s)).await.unwrap(),
            pattern(10 + i, i as u64),
            "{store}: {s}"
        );
    }
    let mut want: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(all_keys(store, "odd/").await, want, "{store}");
}

/// Recursive and delimiter listings, raw-string prefixes and start_after.
pub async fn listing(store: &dyn Store) {
    for s in [
        "ls/a.txt",
        "ls/a/1",
        "ls/a/2/x",
        "ls/a-b",
        "ls/b/1",
        "ls/c",
        "lsx/other",
    ] {
        store.put(&k(s), Bytes::from_static(b"1")).await.unwrap();
    }
    assert_eq!(
        all_keys(store, "ls/").await,
        ["ls/a-b", "ls/a.txt", "ls/a/1", "ls/a/2/x", "ls/b/1", "ls/c"],
        "{store}: recursive listing is in byte order"
    );
    assert_eq!(
        all_keys(store, "ls/a").await,
        ["ls/a-b", "ls/a.txt", "ls/a/1", "ls/a/2/x"],
        "{store}"
    );
    assert_eq!(
        all_keys(store, "ls").await.len(),
        7,
        "{store}: raw prefix matches lsx/"
    );
    let shallow: Vec<ListEntry> = store
        .list(ListOptions::shallow("ls/"))
        .try_collect()
        .await
        .unwrap();
    let names: Vec<String> = shallow.iter().map(|e| e.name().to_string()).collect();
    assert_eq!(
        names,
        ["ls/a-b", "ls/a.txt", "ls/a/", "ls/b/", "ls/c"],
        "{store}: delimiter listing"
    );
    let top: Vec<ListEntry> = store
        .list(ListOptions::shallow(""))
        .try_collect()
        .await
        .unwrap();
    assert!(
        top.contains(&ListEntry::Prefix("ls/".into())),
        "{store}: {top:?}"
    );
    let after: Vec<String> = store
        .list(ListOptions {
            start_after: Some("ls/a/2/x".into()),
            ..ListOptions::recursive("ls/")
        })
        .map_ok(|e| e.name().to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(after, ["ls/b/1", "ls/c"], "{store}: start_after");
    assert!(
        all_keys(store, "nothing-under-here/").await.is_empty(),
        "{store}"
    );
}

/// Listings page past 1000 keys (S3's page size) without losing or repeating any.
pub async fn list_pagination(store: &dyn Store) {
    let n = 1100;
    futures::stream::iter(0..n)
        .map(|i| async move { store.put(&k(&format!("page/{i:05}")), Bytes::new()).await })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_or_else(|e| panic!("{store}: put for pagination: {e}"));
    let keys = all_keys(store, "page/").await;
    let want: Vec<String> = (0..n).map(|i| format!("page/{i:05}")).collect();
    assert_eq!(keys.len(), n, "{store}: count");
    assert!(keys == want, "{store}: keys out of order or duplicated");
}

/// Byte ranges: bounded, open-ended, suffix, clamped past the end.
pub async fn ranges(store: &dyn Store) {
    let key = k("range/obj");
    let data = pattern(1000, 7);
    store.put(&key, data.clone()).await.unwrap();
    assert_eq!(
        store.get_range(&key, 10..20).await.unwrap(),
        data.slice(10..20),
        "{store}"
    );
    assert_eq!(
        store.get_range(&key, GetRange::Offset(990)).await.unwrap(),
        data.slice(990..),
        "{store}"
    );
    assert_eq!(
        store.get_range(&key, GetRange::Suffix(5)).await.unwrap(),
        data.slice(995..),
        "{store}"
    );
    assert_eq!(
        store.get_range(&key, 900..5000).await.unwrap(),
        data.slice(900..),
        "{store}: clamp"
    );
    let r = store.get_opts(
        &key,
        GetOptions {
            range: Some((100..200).into()),
            ..Default::default()
        },
    );
    let r = r.await.unwrap();
    assert_eq!(r.range, 100..200, "{store}");
    assert_eq!(r.meta.size, 1000, "{store}: meta.size is the whole object");
}

/// Create-only and if-match puts, gated by capabilities.
pub async fn conditional_put(store: &dyn Store) {
    let caps = store.capabilities();
    let key = k("cond/obj");
    let create = PutOptions::default().mode(PutMode::Create);
    let first = store
        .put_opts(&key, Bytes::from_static(b"1"), create.clone())
        .await
        .unwrap();
    if caps.conditional_create {
        let e = store
            .put_opts(&key, Bytes::from_static(b"2"), create)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{store}: {e}");
        assert_eq!(
            store.get(&key).await.unwrap(),
            &b"1"[..],
            "{store}: nothing written"
        );
    }
    if caps.conditional_update {
        let etag = first
            .etag
            .clone()
            .or(store.head(&key).await.unwrap().etag)
            .unwrap();
        let upd = PutOptions::default().mode(PutMode::Update(etag.clone()));
        store
            .put_opts(&key, Bytes::from_static(b"3"), upd.clone())
            .await
            .unwrap();
        let e = store
            .put_opts(&key, Bytes::from_static(b"4"), upd)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{store}: {e}");
        assert_eq!(store.get(&key).await.unwrap(), &b"3"[..], "{store}");
    }
    if caps.conditional_get {
        let etag = store.head(&key).await.unwrap().etag.unwrap();
        let ok = GetOptions {
            if_match: Some(etag),
            ..Default::default()
        };
        store.get_opts(&key, ok).await.unwrap();
        let bad = GetOptions {
            if_match: Some("\"nope\"".into()),
            ..Default::default()
        };
        let e = store.get_opts(&key, bad).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{store}: {e}");
    }
}

/// Copy keeps bytes and metadata; rename moves; copy of a missing key is NotFound.
pub async fn copy_and_rename(store: &dyn Store) {
    let (a, b, c) = (k("copy/a"), k("copy/b"), k("copy/c"));
    let opts = PutOptions::default().meta("origin", "a");
    store.put_opts(&a, pattern(300, 3), opts).await.unwrap();
    store
        .copy(&a, &b)
        .await
        .unwrap_or_else(|e| panic!("{store}: copy: {e}"));
    assert_eq!(store.get(&b).await.unwrap(), pattern(300, 3), "{store}");
    if store.capabilities().metadata {
        let h = store.head(&b).await.unwrap();
        assert_eq!(
            h.metadata.get("origin").map(String::as_str),
            Some("a"),
            "{store}"
        );
    }
    store.rename(&b, &c).await.unwrap();
    assert!(
        !store.exists(&b).await.unwrap(),
        "{store}: rename removed source"
    );
    assert_eq!(store.get(&c).await.unwrap(), pattern(300, 3), "{store}");
    let e = store.copy(&k("copy/missing"), &b).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{store}: {e}");
}

/// A failed stream aborts the upload: nothing appears at the key.
pub async fn failed_upload_leaves_nothing(store: &dyn Store) {
    let key = k("abort/obj");
    let min = store.capabilities().min_part_size.max(5 * 1024 * 1024) as usize;
    let chunks = futures::stream::iter(vec![
        Ok(pattern(min, 1)),
        Ok(pattern(min, 2)),
        Err(crate::Error::new(ErrorKind::Network, "source broke")),
    ]);
    let opts = WriterOptions {
        part_size: min,
        concurrency: 2,
        size_hint: None,
    };
    let e = put_stream(store, &key, chunks, PutOptions::default(), opts)
        .await
        .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Network,
        "{store}: the source error comes back"
    );
    assert!(
        !store.exists(&key).await.unwrap(),
        "{store}: aborted upload left an object"
    );
}

/// The store is healthy.
pub async fn health(store: &dyn Store) {
    store
        .health_check()
        .await
        .unwrap_or_else(|e| panic!("{store}: health: {e}"));
}

/// Stamps out one `#[tokio::test]` per conformance check for a store factory.
///
/// `$make` is an async expression yielding a `DynStore` (or any `Store`), fresh per test;
/// the test name is passed to it so real servers can scope each test to its own prefix.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            put_get_sizes, multipart_boundaries, head_and_metadata, not_found,
            delete_idempotent_and_many, odd_keys, listing, list_pagination, ranges,
            conditional_put, copy_and_rename, failed_upload_leaves_nothing, health);
    };
    (@each $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store = ($make)(stringify!($name)).await;
                $crate::testkit::$name(&store).await;
            }
        )*
    };
}

/// `name{labels} value` samples of a Prometheus text page, keyed by `name{labels}`.
pub fn prometheus_samples(text: &str) -> std::collections::BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}
