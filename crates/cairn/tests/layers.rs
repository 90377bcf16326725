//! The layers: round trips through every stack, corruption, keys, metadata, compression choices.

use bytes::Bytes;
use cairn::backend::local::LocalStore;
use cairn::backend::memory::MemoryStore;
use cairn::layer::checksum::{self, manifest_key, VerifyStatus, MANIFEST_META, SHA256_META};
use cairn::layer::compress::{COMPRESSION_META, SIZE_META};
use cairn::layer::encrypt::{
    self, StaticKeyProvider, ENCRYPTION_META, HEADER_LEN, KEY_ID_META, SEGMENT,
};
use cairn::layer::{
    ChecksumLayer, ChecksumStore, CompressStore, Compression, EncryptStore, KeyProvider, Layer,
};
use cairn::testkit::pattern;
use cairn::transfer::{put_stream, WriterOptions};
use cairn::{
    Config, DynStore, ErrorKind, GetOptions, GetRange, Key, ListOptions, PutOptions, Store,
    StoreExt,
};
use futures::{StreamExt, TryStreamExt};
use proptest::prelude::*;
use std::sync::{Arc, OnceLock};

const KEY_A: [u8; 32] = [0xA5; 32];
const KEY_B: [u8; 32] = [0x5A; 32];
const CT_SEGMENT: usize = SEGMENT + 16;

fn k(s: &str) -> Key {
    Key::new(s).unwrap()
}

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// One layer stack: which layers write, over which inner store.
#[derive(Debug, Clone, Copy)]
struct Stack {
    checksum: bool,
    compression: Compression,
    key: Option<[u8; 32]>,
}

const COMPRESSIONS: [Compression; 3] = [
    Compression::None,
    Compression::Zstd(3),
    Compression::Gzip(6),
];

/// All twelve combinations: checksum on/off × none/zstd/gzip × encryption on/off.
fn all_stacks() -> Vec<Stack> {
    let mut v = Vec::new();
    for checksum in [true, false] {
        for compression in COMPRESSIONS {
            for key in [None, Some(KEY_A)] {
                v.push(Stack {
                    checksum,
                    compression,
                    key,
                });
            }
        }
    }
    v
}

fn provider(key: [u8; 32]) -> Arc<dyn KeyProvider> {
    Arc::new(StaticKeyProvider::new(key))
}

fn build(inner: DynStore, s: Stack) -> DynStore {
    let mut st = inner;
    if s.checksum {
        st = Arc::new(ChecksumLayer.layer(st));
    }
    st = Arc::new(EncryptStore::new(st, s.key.map(provider)));
    Arc::new(CompressStore::new(st, s.compression))
}

fn full_stack(inner: DynStore) -> DynStore {
    build(
        inner,
        Stack {
            checksum: true,
            compression: Compression::Zstd(3),
            key: Some(KEY_A),
        },
    )
}

/// Text-like bytes that compress well.
fn text(len: usize, seed: u64) -> Bytes {
    let words = [
        "cairn", "layer", "stream", "segment", "object", "bucket", "verify", "\n",
    ];
    let mut v = Vec::with_capacity(len + 16);
    let mut x = seed | 1;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(words[(x % words.len() as u64) as usize].as_bytes());
        v.push(b' ');
    }
    v.truncate(len);
    v.into()
}

async fn stream_put(
    store: &dyn Store,
    key: &Key,
    data: &Bytes,
    chunks: &[usize],
    part: usize,
    opts: PutOptions,
) -> cairn::Result<()> {
    let mut pieces = Vec::new();
    let (mut off, mut i) = (0, 0);
    while off < data.len() {
        let n = chunks[i % chunks.len()].max(1).min(data.len() - off);
        pieces.push(Ok(data.slice(off..off + n)));
        off += n;
        i += 1;
    }
    let wopts = WriterOptions {
        part_size: part,
        concurrency: 3,
        size_hint: None,
    };
    put_stream(store, key, futures::stream::iter(pieces), opts, wopts)
        .await
        .map(|_| ())
}

/// Reads stored bytes and metadata from below the layers, edits the bytes, writes them back.
async fn tamper(inner: &dyn Store, key: &Key, edit: impl FnOnce(&mut Vec<u8>)) {
    let r = inner.get_opts(key, GetOptions::default()).await.unwrap();
    let meta = r.meta.clone();
    let mut bytes = r.bytes().await.unwrap().to_vec();
    edit(&mut bytes);
    let opts = PutOptions {
        content_type: meta.content_type,
        ..Default::default()
    };
    inner
        .put_opts(
            key,
            bytes.into(),
            with_layer_meta(opts, meta.metadata, meta.layer_meta),
        )
        .await
        .unwrap();
}

/// Options that write `user` and the layers' `layer` metadata as they were read.
fn with_layer_meta(
    mut opts: PutOptions,
    user: cairn::Metadata,
    layer: cairn::Metadata,
) -> PutOptions {
    let names: Vec<&str> = layer.keys().map(String::as_str).collect();
    opts.layer_hints.insert(
        cairn::layer::stack::LAYER_META_HINT.to_string(),
        names.join(","),
    );
    opts.metadata = user;
    opts.metadata.extend(layer);
    opts
}

/// Collects a streaming get: the bytes released before the stream ended, and its error if any.
async fn drain(store: &dyn Store, key: &Key) -> (usize, Option<cairn::Error>) {
    let mut body = match store.get_stream(key).await {
        Ok(b) => b,
        Err(e) => return (0, Some(e)),
    };
    let mut n = 0;
    while let Some(c) = body.next().await {
        match c {
            Ok(c) => n += c.len(),
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

fn boundary_sizes() -> Vec<usize> {
    let mut v = vec![
        0,
        1,
        2,
        15,
        16,
        17,
        HEADER_LEN - 1,
        HEADER_LEN,
        HEADER_LEN + 1,
    ];
    for m in [1, 2, 3] {
        let s = m * SEGMENT;
        v.extend([s - 1, s, s + 1]);
    }
    v.extend([128 * 1024 - 1, 128 * 1024 + 1, 300_001]);
    v
}

/// A multipart, compressed upload records its logical size in the checksum manifest; with the
/// checksum layer off it is not known (documented in `layer::compress`).
fn size_known(meta: &cairn::Metadata) -> bool {
    !meta.contains_key(COMPRESSION_META) || meta.contains_key(SIZE_META)
}

/// Writes and reads back `data`; returns whether the logical size is known.
async fn round_trip(
    store: &dyn Store,
    s: Stack,
    key: &Key,
    data: &Bytes,
    streamed: Option<(&[usize], usize)>,
) -> bool {
    let opts = PutOptions::default()
        .meta("owner", "test")
        .content_type("text/plain");
    match streamed {
        Some((chunks, part)) => stream_put(store, key, data, chunks, part, opts)
            .await
            .unwrap(),
        None => {
            store.put_opts(key, data.clone(), opts).await.unwrap();
        }
    }
    let ctx = format!("{s:?} size {} streamed {}", data.len(), streamed.is_some());
    let got = store
        .get(key)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: get: {e}"));
    assert!(got == *data, "{ctx}: bytes differ");
    let h = store.head(key).await.unwrap();
    let known = size_known(&h.layer_meta);
    assert!(
        known || (!s.checksum && streamed.is_some()),
        "{ctx}: logical size lost"
    );
    if known {
        assert_eq!(h.size, data.len() as u64, "{ctx}: head size");
    }
    assert_eq!(
        h.metadata.get("owner").map(String::as_str),
        Some("test"),
        "{ctx}"
    );
    assert_eq!(h.content_type.as_deref(), Some("text/plain"), "{ctx}");
    let g = store.get_opts(key, GetOptions::default()).await.unwrap();
    if known {
        assert_eq!(g.meta.size, data.len() as u64, "{ctx}: get meta size");
        assert_eq!(g.range, 0..data.len() as u64, "{ctx}: get range");
    }
    assert_eq!(
        h.layer_meta.contains_key(ENCRYPTION_META),
        s.key.is_some(),
        "{ctx}"
    );
    let status = checksum::verify(store, key).await.unwrap();
    let want = if s.checksum {
        VerifyStatus::Ok
    } else {
        VerifyStatus::Unverifiable
    };
    assert_eq!(status, want, "{ctx}");
    known
}

#[test]
fn every_stack_round_trips_boundary_sizes() {
    rt().block_on(async {
        for s in all_stacks() {
            let store = build(Arc::new(MemoryStore::new()), s);
            for (i, size) in boundary_sizes().into_iter().enumerate() {
                for compressible in [false, true] {
                    let data = if compressible {
                        text(size, i as u64)
                    } else {
                        pattern(size, i as u64)
                    };
                    let key = k(&format!("b/{size}/{compressible}"));
                    round_trip(&*store, s, &key, &data, None).await;
                    round_trip(
                        &*store,
                        s,
                        &key,
                        &data,
                        Some((&[7777, 1, SEGMENT + 1], SEGMENT - 1)),
                    )
                    .await;
                }
            }
        }
    });
}

fn size_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![proptest::sample::select(boundary_sizes()), 0usize..400_000]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Any stack, any size, any chunking of a streamed put, any range: bytes come back.
    #[test]
    fn round_trips_and_ranges(
        stack in 0usize..12,
        size in size_strategy(),
        compressible in any::<bool>(),
        streamed in any::<bool>(),
        chunks in proptest::collection::vec(1usize..100_000, 1..6),
        part in 1usize..150_000,
        r0 in any::<u64>(),
        r1 in any::<u64>(),
        kind in 0u8..3,
        seed in any::<u64>(),
    ) {
        let s = all_stacks()[stack];
        // Within the store's 10,000 parts (more is an InvalidInput error: transfer::writer's tests).
        let part = part.max(size.div_ceil(5_000));
        rt().block_on(async {
            let store = build(Arc::new(MemoryStore::new()), s);
            let data = if compressible { text(size, seed) } else { pattern(size, seed) };
            let key = k("p/obj");
            let known = round_trip(&*store, s, &key, &data, streamed.then_some((&chunks[..], part))).await;
            let n = size as u64;
            let a = r0 % (n + 1);
            let (range, want) = match kind {
                0 => {
                    let b = a + r1 % (n - a + 1);
                    (GetRange::Bounded(a..b), a..b)
                }
                1 => (GetRange::Offset(a), a..n),
                _ => {
                    let t = r1 % (n + 2);
                    (GetRange::Suffix(t), n.saturating_sub(t)..n)
                }
            };
            let r = store.get_opts(&key, GetOptions { range: Some(range.clone()), ..Default::default() }).await;
            // Even where the logical size is not recorded (streamed, checksum layer off), the
            // seek table at the end of a compressed object gives it, so every range reads.
            let _ = known;
            let r = r.unwrap_or_else(|e| panic!("{s:?} {range:?} of {n}: {e}"));
            assert_eq!(r.range, want.clone(), "{s:?} {range:?}");
            assert_eq!(r.meta.size, n, "{s:?} {range:?}: meta.size is the logical size");
            let got = r.bytes().await.unwrap();
            assert!(got == data.slice(want.start as usize..want.end as usize), "{s:?} {range:?} of {n}: bytes differ");
        });
    }
}

#[tokio::test]
async fn flipped_bytes_in_memory_are_integrity_errors_never_bytes() {
    for s in all_stacks()
        .into_iter()
        .filter(|s| s.checksum || s.key.is_some())
    {
        for streamed in [false, true] {
            let inner = MemoryStore::new();
            let store = build(Arc::new(inner.clone()), s);
            let data = text(3 * SEGMENT + 100, 9);
            let key = k("c/obj");
            if streamed {
                stream_put(
                    &*store,
                    &key,
                    &data,
                    &[50_000],
                    70_000,
                    PutOptions::default(),
                )
                .await
                .unwrap();
            } else {
                store.put(&key, data.clone()).await.unwrap();
            }
            let stored = inner.get(&key).await.unwrap().len();
            for at in [0, stored / 2, stored - 1] {
                tamper(&inner, &key, |b| b[at] ^= 0x01).await;
                let e = store.get(&key).await.unwrap_err();
                assert_eq!(
                    e.kind(),
                    ErrorKind::Integrity,
                    "{s:?} streamed {streamed} flip at {at}: {e}"
                );
                let (released, err) = drain(&*store, &key).await;
                assert_eq!(
                    err.map(|e| e.kind()),
                    Some(ErrorKind::Integrity),
                    "{s:?} flip at {at}"
                );
                assert!(released < data.len(), "{s:?}: the whole body was released");
                if s.checksum {
                    let st = checksum::verify(&*store, &key).await.unwrap();
                    assert!(
                        matches!(st, VerifyStatus::Corrupt { .. }),
                        "{s:?}: verify says {st:?}"
                    );
                }
                tamper(&inner, &key, |b| b[at] ^= 0x01).await;
                assert!(
                    store.get(&key).await.unwrap() == data,
                    "{s:?}: restored bytes read again"
                );
            }
        }
    }
}

/// Flips one byte of a file in place, keeping its mtime (as bit rot does).
fn flip_on_disk(path: &std::path::Path, at: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    b[0] ^= 0x80;
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&b).unwrap();
    f.set_modified(mtime).unwrap();
}

#[tokio::test]
async fn flipped_bytes_on_local_disk_are_integrity_errors() {
    let stacks = [
        Stack {
            checksum: true,
            compression: Compression::None,
            key: None,
        },
        Stack {
            checksum: true,
            compression: Compression::Zstd(3),
            key: Some(KEY_A),
        },
        Stack {
            checksum: true,
            compression: Compression::Gzip(6),
            key: None,
        },
    ];
    for s in stacks {
        for streamed in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let store = build(Arc::new(LocalStore::new(dir.path()).unwrap()), s);
            // Over 256 KiB, the local store's read chunk, so the body streams in several chunks.
            let data = text(1024 * 1024 + 3, 4);
            let key = k("dir/file.bin");
            if streamed {
                stream_put(
                    &*store,
                    &key,
                    &data,
                    &[300_000],
                    400_000,
                    PutOptions::default(),
                )
                .await
                .unwrap();
                assert!(
                    store
                        .head(&key)
                        .await
                        .unwrap()
                        .layer_meta
                        .contains_key(MANIFEST_META),
                    "{s:?}"
                );
            } else {
                store.put(&key, data.clone()).await.unwrap();
            }
            let path = dir.path().join("dir/file.bin");
            let len = std::fs::metadata(&path).unwrap().len();
            for at in [0, len / 2, len - 1] {
                flip_on_disk(&path, at);
                let e = store.get(&key).await.unwrap_err();
                assert_eq!(
                    e.kind(),
                    ErrorKind::Integrity,
                    "{s:?} streamed {streamed} at {at}: {e}"
                );
                let (released, err) = drain(&*store, &key).await;
                assert_eq!(
                    err.map(|e| e.kind()),
                    Some(ErrorKind::Integrity),
                    "{s:?} at {at}"
                );
                assert!(
                    released < data.len(),
                    "{s:?} at {at}: released {released} of {}",
                    data.len()
                );
                match checksum::verify(&*store, &key).await.unwrap() {
                    VerifyStatus::Corrupt { expected, actual } => assert_ne!(expected, actual),
                    other => panic!("{s:?} at {at}: verify says {other:?}"),
                }
                flip_on_disk(&path, at);
                assert_eq!(
                    checksum::verify(&*store, &key).await.unwrap(),
                    VerifyStatus::Ok,
                    "{s:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn plain_checksum_stream_holds_back_the_last_chunk() {
    // Checksum only: stored bytes are the content, so any released byte is the user's data.
    // Five chunks: objects up to REREAD_LIMIT (four) are read whole before any byte is out.
    let dir = tempfile::tempdir().unwrap();
    let store = ChecksumStore::new(LocalStore::new(dir.path()).unwrap());
    let data = pattern(5 * 256 * 1024, 1);
    assert!(data.len() as u64 > checksum::REREAD_LIMIT);
    let key = k("held");
    store.put(&key, data.clone()).await.unwrap();
    flip_on_disk(&dir.path().join("held"), data.len() as u64 - 1);
    let mut body = store.get_stream(&key).await.unwrap();
    let mut seen = Vec::new();
    let err = loop {
        match body.next().await {
            Some(Ok(c)) => seen.extend_from_slice(&c),
            Some(Err(e)) => break e,
            None => panic!("stream ended without an error"),
        }
    };
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(err.to_string().contains("SHA-256 mismatch"), "{err}");
    assert_eq!(
        seen.len(),
        4 * 256 * 1024,
        "every chunk but the last is released"
    );
    assert!(seen[..] == data[..seen.len()]);
    assert!(body.next().await.is_none(), "nothing after the error");
}

#[tokio::test]
async fn wrong_key_is_an_integrity_error() {
    let inner = MemoryStore::new();
    let writer = build(
        Arc::new(inner.clone()),
        Stack {
            checksum: false,
            compression: Compression::None,
            key: Some(KEY_A),
        },
    );
    let reader = build(
        Arc::new(inner.clone()),
        Stack {
            checksum: false,
            compression: Compression::None,
            key: Some(KEY_B),
        },
    );
    let key = k("secret");
    writer.put(&key, text(100_000, 1)).await.unwrap();
    let e = reader.get(&key).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    assert!(
        e.to_string()
            .contains("decryption failed: wrong key or corrupt data"),
        "{e}"
    );
    assert!(
        e.to_string().contains(&encrypt::key_id(&KEY_A).0),
        "names the object's key id: {e}"
    );
    let e = reader.get_range(&key, 10..20).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "ranged: {e}");
    // Without the recorded id the wrong key is still caught, by authentication.
    tamper(&inner, &key, |_| {}).await;
    let h = inner.head(&key).await.unwrap();
    let mut m = h.layer_meta;
    m.remove(KEY_ID_META);
    let bytes = inner.get(&key).await.unwrap();
    inner
        .put_opts(
            &key,
            bytes,
            with_layer_meta(PutOptions::default(), h.metadata, m),
        )
        .await
        .unwrap();
    let e = reader.get(&key).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    assert!(
        e.to_string()
            .contains("decryption failed: wrong key or corrupt data"),
        "{e}"
    );
    assert!(
        writer.get(&key).await.unwrap() == text(100_000, 1),
        "the right key still reads it"
    );
}

#[tokio::test]
async fn missing_key_says_which_key_to_set() {
    let inner = MemoryStore::new();
    let writer = full_stack(Arc::new(inner.clone()));
    let reader = build(
        Arc::new(inner.clone()),
        Stack {
            checksum: true,
            compression: Compression::None,
            key: None,
        },
    );
    let key = k("enc");
    let data = text(200_000, 2);
    writer.put(&key, data.clone()).await.unwrap();
    for e in [
        reader.get(&key).await.unwrap_err(),
        reader.get_range(&key, 5..10).await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        let msg = e.to_string();
        let want = format!(
            "this object is encrypted with key id {}; set encryption_key",
            encrypt::key_id(&KEY_A)
        );
        assert!(msg.contains(&want), "{msg}");
    }
    assert_eq!(
        reader.head(&key).await.unwrap().size,
        data.len() as u64,
        "head needs no key"
    );
    assert_eq!(
        checksum::verify(&*reader, &key).await.unwrap(),
        VerifyStatus::Ok,
        "verify needs no key"
    );
}

#[tokio::test]
async fn truncated_reordered_and_extended_ciphertext_fail() {
    for checksum in [false, true] {
        let inner = MemoryStore::new();
        let s = Stack {
            checksum,
            compression: Compression::None,
            key: Some(KEY_A),
        };
        let store = build(Arc::new(inner.clone()), s);
        let key = k("t");
        let data = pattern(3 * SEGMENT + 10, 3);
        type Edit = Box<dyn Fn(&mut Vec<u8>)>;
        let edits: Vec<(&str, Edit)> = vec![
            (
                "cut at a segment boundary",
                Box::new(|b| b.truncate(HEADER_LEN + 2 * CT_SEGMENT)),
            ),
            (
                "cut mid-segment",
                Box::new(|b| b.truncate(HEADER_LEN + CT_SEGMENT + 100)),
            ),
            (
                "cut the last byte",
                Box::new(|b| {
                    b.pop();
                }),
            ),
            ("header only", Box::new(|b| b.truncate(HEADER_LEN))),
            ("half a header", Box::new(|b| b.truncate(HEADER_LEN / 2))),
            ("empty", Box::new(|b| b.clear())),
            (
                "segments 0 and 1 swapped",
                Box::new(|b| {
                    let (s0, s1) = (HEADER_LEN, HEADER_LEN + CT_SEGMENT);
                    let first = b[s0..s1].to_vec();
                    b.copy_within(s1..s1 + CT_SEGMENT, s0);
                    b[s1..s1 + CT_SEGMENT].copy_from_slice(&first);
                }),
            ),
            (
                "a segment appended",
                Box::new(|b| {
                    let seg = b[HEADER_LEN..HEADER_LEN + CT_SEGMENT].to_vec();
                    b.extend_from_slice(&seg);
                }),
            ),
            (
                "last segment dropped and the one before kept",
                Box::new(|b| {
                    b.truncate(HEADER_LEN + 3 * CT_SEGMENT);
                }),
            ),
            ("header salt changed", Box::new(|b| b[20] ^= 1)),
        ];
        for (what, edit) in edits {
            store.put(&key, data.clone()).await.unwrap();
            tamper(&inner, &key, |b| edit(b)).await;
            let e = store.get(&key).await.unwrap_err();
            assert_eq!(
                e.kind(),
                ErrorKind::Integrity,
                "checksum {checksum}, {what}: {e}"
            );
            let (released, err) = drain(&*store, &key).await;
            assert!(
                err.is_some() && released < data.len(),
                "checksum {checksum}, {what}"
            );
        }
    }
}

#[tokio::test]
async fn user_metadata_passes_every_stack_unchanged() {
    for s in all_stacks() {
        let store = build(Arc::new(MemoryStore::new()), s);
        let opts = PutOptions::default()
            .content_type("application/json")
            .meta("agent_id", "a-1")
            .meta("description", "snapshot ünïcode, with = and ;");
        for streamed in [false, true] {
            let key = k(&format!("m/{streamed}"));
            let data = text(150_000, 5);
            if streamed {
                stream_put(&*store, &key, &data, &[40_000], 60_000, opts.clone())
                    .await
                    .unwrap();
            } else {
                store
                    .put_opts(&key, data.clone(), opts.clone())
                    .await
                    .unwrap();
            }
            let h = store.head(&key).await.unwrap();
            let mut user = h.metadata.clone();
            cairn::layer::stack::strip_reserved(&mut user);
            assert_eq!(user, opts.metadata, "{s:?} streamed {streamed}");
            assert_eq!(h.content_type.as_deref(), Some("application/json"), "{s:?}");
            let g = store.get_opts(&key, GetOptions::default()).await.unwrap();
            assert_eq!(g.meta.metadata, h.metadata, "{s:?}: get and head agree");
            if s.checksum {
                assert_eq!(
                    h.layer_meta.get(SHA256_META).map(String::len),
                    Some(64),
                    "{s:?} streamed {streamed}"
                );
            }
            if s.compression != Compression::None && size_known(&h.layer_meta) {
                assert_eq!(
                    h.layer_meta.get(SIZE_META),
                    Some(&data.len().to_string()),
                    "{s:?} streamed {streamed}"
                );
            }
        }
    }
}

#[tokio::test]
async fn reserved_names_are_refused_and_nothing_is_written() {
    let mut stacks = all_stacks();
    stacks.retain(|s| s.checksum || s.key.is_some() || s.compression != Compression::None);
    for s in stacks {
        let store = build(Arc::new(MemoryStore::new()), s);
        for name in [
            "cairn-sha256",
            "cairn-compression",
            "Cairn-Key-Id",
            "cairn-anything",
        ] {
            let key = k("r/obj");
            let opts = PutOptions::default().meta(name, "x").meta("ok", "y");
            let e = store
                .put_opts(&key, Bytes::from_static(b"data"), opts.clone())
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{s:?} {name}: {e}");
            assert!(e.to_string().contains("reserved"), "{e}");
            let e = stream_put(
                &*store,
                &key,
                &pattern(300_000, 1),
                &[100_000],
                100_000,
                opts,
            )
            .await
            .unwrap_err();
            assert_eq!(
                e.kind(),
                ErrorKind::InvalidInput,
                "{s:?} {name} streamed: {e}"
            );
            assert!(!store.exists(&key).await.unwrap(), "{s:?}: nothing written");
        }
    }
}

#[tokio::test]
async fn compression_is_skipped_when_it_does_not_help() {
    let inner = MemoryStore::new();
    let store = build(
        Arc::new(inner.clone()),
        Stack {
            checksum: true,
            compression: Compression::Zstd(3),
            key: None,
        },
    );
    let cases: Vec<(&str, Bytes, PutOptions, Option<&str>)> = vec![
        (
            "compressible text",
            text(400_000, 1),
            PutOptions::default(),
            Some("zstd"),
        ),
        (
            "random bytes",
            pattern(400_000, 1),
            PutOptions::default(),
            None,
        ),
        (
            "small random",
            pattern(1000, 1),
            PutOptions::default(),
            None,
        ),
        (
            "a jpeg",
            text(400_000, 1),
            PutOptions::default().content_type("image/jpeg"),
            None,
        ),
        (
            "a gzip file",
            text(400_000, 1),
            PutOptions::default().content_type("application/gzip"),
            None,
        ),
        (
            "svg is text",
            text(400_000, 1),
            PutOptions::default().content_type("image/svg+xml"),
            Some("zstd"),
        ),
        (
            "hint none",
            text(400_000, 1),
            hint("compression", "none"),
            None,
        ),
        (
            "hint gzip",
            text(400_000, 1),
            hint("compression", "gzip"),
            Some("gzip"),
        ),
        (
            "hint forces even random",
            pattern(1000, 1),
            hint("compression", "zstd"),
            Some("zstd"),
        ),
    ];
    for (what, data, opts, want) in cases {
        let key = k("z/obj");
        store.put_opts(&key, data.clone(), opts).await.unwrap();
        let stored = inner.head(&key).await.unwrap();
        assert_eq!(
            stored.layer_meta.get(COMPRESSION_META).map(String::as_str),
            want,
            "{what}"
        );
        if want.is_some() && what != "hint forces even random" {
            assert!(
                stored.size < data.len() as u64 / 2,
                "{what}: stored {}",
                stored.size
            );
        }
        assert!(store.get(&key).await.unwrap() == data, "{what}");
        assert_eq!(
            store.head(&key).await.unwrap().size,
            data.len() as u64,
            "{what}"
        );
    }
    for (h, v) in [
        ("compression", "lz4"),
        ("compression_level", "fast"),
        ("compression_level", "99"),
    ] {
        let e = store
            .put_opts(&k("z/bad"), text(10, 1), hint(h, v))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{h}={v}: {e}");
    }
    assert!(!store.exists(&k("z/bad")).await.unwrap());
}

fn hint(k: &str, v: &str) -> PutOptions {
    let mut o = PutOptions::default();
    o.layer_hints.insert(k.into(), v.into());
    o
}

#[tokio::test]
async fn decompression_output_is_bounded() {
    // 256 MiB of zeros compress to a few KiB; reading them back must not allocate them at once.
    let inner = MemoryStore::new();
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    enc.include_checksum(true).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..256 {
        std::io::Write::write_all(&mut enc, &zeros).unwrap();
    }
    let packed = enc.finish().unwrap();
    assert!(packed.len() < 1 << 20);
    let opts = PutOptions::default()
        .meta(COMPRESSION_META, "zstd")
        .meta(SIZE_META, (256u64 << 20).to_string());
    inner
        .put_opts(&k("bomb"), packed.into(), opts)
        .await
        .unwrap();
    let store = CompressStore::new(inner, Compression::None);
    let mut body = store.get_stream(&k("bomb")).await.unwrap();
    let (mut total, mut biggest) = (0usize, 0usize);
    while let Some(c) = body.next().await {
        let c = c.unwrap();
        assert!(c.iter().all(|&b| b == 0));
        total += c.len();
        biggest = biggest.max(c.len());
    }
    assert_eq!(total, 256 << 20);
    assert!(biggest <= 256 * 1024, "a chunk of {biggest} bytes");
}

#[tokio::test]
async fn multipart_digests_live_in_hidden_manifests() {
    let inner = MemoryStore::new();
    let store = ChecksumStore::new(inner.clone());
    let data = pattern(500_000, 8);
    let key = k("mp/obj");
    stream_put(
        &store,
        &key,
        &data,
        &[64 * 1024],
        100_000,
        PutOptions::default(),
    )
    .await
    .unwrap();
    let h = store.head(&key).await.unwrap();
    let id = h
        .layer_meta
        .get(MANIFEST_META)
        .cloned()
        .expect("multipart objects carry a manifest id");
    let want = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data));
    assert_eq!(h.layer_meta.get(SHA256_META), Some(&want));
    assert!(inner.exists(&manifest_key(&key)).await.unwrap());
    // Hidden from listings at every level.
    let all: Vec<_> = store
        .list_objects("")
        .map_ok(|m| m.key.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all, ["mp/obj"]);
    let top: Vec<_> = store
        .list(ListOptions::shallow(""))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(top.len(), 1, "{top:?}");
    // Copy and rename carry the manifest; verify stays Ok.
    store.copy(&key, &k("mp/copy")).await.unwrap();
    store.rename(&k("mp/copy"), &k("mp/moved")).await.unwrap();
    assert_eq!(
        store.verify(&k("mp/moved")).await.unwrap(),
        VerifyStatus::Ok
    );
    assert!(
        !inner.exists(&manifest_key(&k("mp/copy"))).await.unwrap(),
        "rename removed the old manifest"
    );
    // A manifest of another upload is never applied: unverifiable, not corrupt.
    let other = format!(
        "{{\"version\":1,\"upload\":\"not-{id}\",\"key\":\"mp/obj\",\"sha256\":\"{}\",\"size\":1}}",
        "0".repeat(64)
    );
    inner
        .put(&manifest_key(&key), other.into_bytes())
        .await
        .unwrap();
    assert_eq!(
        store.verify(&key).await.unwrap(),
        VerifyStatus::Unverifiable
    );
    assert!(store.get(&key).await.unwrap() == data);
    // A lost manifest is unverifiable too.
    inner.delete(&manifest_key(&key)).await.unwrap();
    assert_eq!(
        store.verify(&key).await.unwrap(),
        VerifyStatus::Unverifiable
    );
    // Deletes take the manifest along, one by one and in bulk.
    store.delete(&k("mp/moved")).await.unwrap();
    assert!(!inner.exists(&manifest_key(&k("mp/moved"))).await.unwrap());
    stream_put(
        &store,
        &key,
        &data,
        &[64 * 1024],
        100_000,
        PutOptions::default(),
    )
    .await
    .unwrap();
    assert!(store.delete_many(vec![key.clone()]).await.is_empty());
    let left: Vec<_> = inner
        .list_objects("")
        .map_ok(|m| m.key.to_string())
        .try_collect()
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
    // The manifest prefix is reserved for writes.
    let mkey = manifest_key(&key);
    let e = store
        .put(&mkey, Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let failed = store.delete_many(vec![mkey.clone()]).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].1.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn verify_reports_ok_corrupt_and_unverifiable() {
    let inner = MemoryStore::new();
    let store = full_stack(Arc::new(inner.clone()));
    store.put(&k("v/ok"), text(10_000, 1)).await.unwrap();
    store.put(&k("v/bad"), text(10_000, 2)).await.unwrap();
    tamper(&inner, &k("v/bad"), |b| b[100] ^= 4).await;
    inner
        .put(
            &k("v/foreign"),
            Bytes::from_static(b"written without cairn"),
        )
        .await
        .unwrap();
    // A stack without the key verifies encrypted objects all the same.
    let keyless = build(
        Arc::new(inner.clone()),
        Stack {
            checksum: true,
            compression: Compression::None,
            key: None,
        },
    );
    for s in [&store, &keyless] {
        assert_eq!(
            checksum::verify(&**s, &k("v/ok")).await.unwrap(),
            VerifyStatus::Ok
        );
        assert!(matches!(
            checksum::verify(&**s, &k("v/bad")).await.unwrap(),
            VerifyStatus::Corrupt { .. }
        ));
        assert_eq!(
            checksum::verify(&**s, &k("v/foreign")).await.unwrap(),
            VerifyStatus::Unverifiable
        );
        assert_eq!(
            s.get(&k("v/foreign")).await.unwrap(),
            &b"written without cairn"[..]
        );
    }
    // Without a checksum layer in the stack, verify still hashes single-put objects itself.
    let bare = build(
        Arc::new(inner.clone()),
        Stack {
            checksum: false,
            compression: Compression::None,
            key: None,
        },
    );
    assert!(matches!(
        checksum::verify(&*bare, &k("v/bad")).await.unwrap(),
        VerifyStatus::Corrupt { .. }
    ));
    assert_eq!(
        checksum::verify(&*bare, &k("v/ok")).await.unwrap(),
        VerifyStatus::Ok
    );
}

#[tokio::test]
async fn unknown_formats_are_refused_not_passed_through() {
    let inner = MemoryStore::new();
    let store = full_stack(Arc::new(inner.clone()));
    inner
        .put_opts(
            &k("u/c"),
            Bytes::from_static(b"xx"),
            PutOptions::default().meta(COMPRESSION_META, "brotli"),
        )
        .await
        .unwrap();
    assert_eq!(
        store.get(&k("u/c")).await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    inner
        .put_opts(
            &k("u/e"),
            Bytes::from_static(b"xx"),
            PutOptions::default().meta(ENCRYPTION_META, "rot13"),
        )
        .await
        .unwrap();
    assert_eq!(
        store.get(&k("u/e")).await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

#[tokio::test]
async fn raw_reads_return_stored_bytes() {
    let inner = MemoryStore::new();
    let store = full_stack(Arc::new(inner.clone()));
    let data = text(300_000, 3);
    store.put(&k("raw"), data.clone()).await.unwrap();
    let raw = store
        .get_opts(
            &k("raw"),
            GetOptions {
                raw: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        raw.meta.size < data.len() as u64,
        "stored size is the compressed, encrypted size"
    );
    let raw = raw.bytes().await.unwrap();
    assert_eq!(raw, inner.get(&k("raw")).await.unwrap());
    let plain = cairn::layer::compress::decompress_bytes(
        "zstd",
        &encrypt::decrypt_bytes(&KEY_A, &raw).unwrap(),
    )
    .unwrap();
    assert!(plain[..] == data[..]);
}

#[test]
fn key_providers_read_env_and_files_and_never_show_keys() {
    let hex_key = hex::encode(KEY_B);
    std::env::set_var("CAIRN_TEST_LAYERS_KEY", &hex_key);
    let p = encrypt::key_provider("env:CAIRN_TEST_LAYERS_KEY").unwrap();
    assert_eq!(p.key(None).unwrap(), (encrypt::key_id(&KEY_B), KEY_B));
    assert!(!format!("{p:?}").contains(&hex_key));
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("k");
    std::fs::write(
        &f,
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, KEY_A),
    )
    .unwrap();
    let p = encrypt::key_provider(&format!("file:{}", f.display())).unwrap();
    assert_eq!(p.key(None).unwrap().1, KEY_A);
    std::env::set_var("CAIRN_TEST_LAYERS_SHORT", "deadbeef");
    for (spec, needle) in [
        ("env:CAIRN_TEST_LAYERS_UNSET", "not set"),
        ("env:CAIRN_TEST_LAYERS_SHORT", "32 bytes"),
        ("file:/nonexistent/key", "cannot read"),
        ("deadbeef", "env:VAR or file:PATH"),
    ] {
        let e = encrypt::key_provider(spec).unwrap_err();
        assert!(e.to_string().contains(needle), "{spec}: {e}");
        assert!(
            !e.to_string().contains("deadbeef") || spec == "deadbeef",
            "{e}"
        );
    }
}

#[test]
fn stack_config_errors_are_invalid_input() {
    let base: DynStore = Arc::new(MemoryStore::new());
    for c in [
        Config {
            compression: Some("lz4".into()),
            ..Default::default()
        },
        Config {
            compression: Some("zstd".into()),
            compression_level: Some(40),
            ..Default::default()
        },
        Config {
            compression: Some("gzip".into()),
            compression_level: Some(10),
            ..Default::default()
        },
        Config {
            encryption_key: Some("env:CAIRN_TEST_LAYERS_NEVER_SET".into()),
            ..Default::default()
        },
    ] {
        let e = cairn::layer::stack::apply(base.clone(), &c).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{c:?}: {e}");
    }
}

#[tokio::test]
async fn checksum_layer_is_on_by_default_and_off_on_request() {
    let inner = MemoryStore::new();
    let on = cairn::layer::stack::apply(Arc::new(inner.clone()), &Config::default()).unwrap();
    on.put(&k("d/on"), Bytes::from_static(b"x")).await.unwrap();
    assert!(inner
        .head(&k("d/on"))
        .await
        .unwrap()
        .layer_meta
        .contains_key(SHA256_META));
    let off = Config {
        checksum: Some(false),
        ..Default::default()
    };
    let off = cairn::layer::stack::apply(Arc::new(inner.clone()), &off).unwrap();
    off.put(&k("d/off"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert!(inner.head(&k("d/off")).await.unwrap().layer_meta.is_empty());
    // Compressed and encrypted objects read back through a default stack that writes neither.
    let full = full_stack(Arc::new(inner.clone()));
    full.put(&k("d/full"), text(50_000, 1)).await.unwrap();
    let with_key = build(
        Arc::new(inner.clone()),
        Stack {
            checksum: true,
            compression: Compression::None,
            key: Some(KEY_A),
        },
    );
    assert!(with_key.get(&k("d/full")).await.unwrap() == text(50_000, 1));
}

/// Counts the body bytes the store below the layers hands out.
#[derive(Debug)]
struct Counting {
    inner: MemoryStore,
    read: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Display for Counting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("counting")
    }
}

impl Counting {
    fn new() -> (Arc<Counting>, Arc<std::sync::atomic::AtomicU64>) {
        let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let c = Counting {
            inner: MemoryStore::new(),
            read: read.clone(),
        };
        (Arc::new(c), read)
    }
}

#[async_trait::async_trait]
impl Store for Counting {
    fn capabilities(&self) -> cairn::Capabilities {
        self.inner.capabilities()
    }
    async fn put_opts(
        &self,
        key: &Key,
        data: Bytes,
        opts: PutOptions,
    ) -> cairn::Result<cairn::PutResult> {
        self.inner.put_opts(key, data, opts).await
    }
    async fn put_multipart_opts(
        &self,
        key: &Key,
        opts: PutOptions,
    ) -> cairn::Result<Box<dyn cairn::MultipartUpload>> {
        self.inner.put_multipart_opts(key, opts).await
    }
    async fn get_opts(&self, key: &Key, opts: GetOptions) -> cairn::Result<cairn::GetResult> {
        let mut r = self.inner.get_opts(key, opts).await?;
        let read = self.read.clone();
        r.body = r
            .body
            .inspect_ok(move |b| {
                read.fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
            })
            .boxed();
        Ok(r)
    }
    async fn head(&self, key: &Key) -> cairn::Result<cairn::ObjectMeta> {
        self.inner.head(key).await
    }
    async fn delete(&self, key: &Key) -> cairn::Result<()> {
        self.inner.delete(key).await
    }
    fn list(
        &self,
        opts: ListOptions,
    ) -> futures::stream::BoxStream<'static, cairn::Result<cairn::ListEntry>> {
        self.inner.list(opts)
    }
    async fn copy_opts(&self, from: &Key, to: &Key, opts: cairn::CopyOptions) -> cairn::Result<()> {
        self.inner.copy_opts(from, to, opts).await
    }
    async fn health_check(&self) -> cairn::Result<()> {
        self.inner.health_check().await
    }
}

const MIB: usize = 1024 * 1024;

/// Bytes read below the layers for the last MiB of a 64 MiB object: O(range), not O(offset).
/// Before the seekable layout a compressed range decompressed the object from byte 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_at_the_end_reads_only_the_frames_it_needs() {
    use cairn::testkit::matrix::json_lines;
    let stacks = [
        ("zstd", Compression::Zstd(3), None),
        ("zstd+aes", Compression::Zstd(3), Some(KEY_A)),
        ("aes", Compression::None, Some(KEY_A)),
        ("gzip", Compression::Gzip(1), None),
    ];
    for (name, compression, key) in stacks {
        // gzip is slow in debug builds: 16 MiB still spans four frames.
        let size = if name == "gzip" { 16 * MIB } else { 64 * MIB };
        for (kind, data) in [("json", json_lines(size, 7)), ("random", pattern(size, 7))] {
            let (counting, read) = Counting::new();
            let store = build(
                counting.clone(),
                Stack {
                    checksum: true,
                    compression,
                    key,
                },
            );
            let key_ = k("big");
            let forced = PutOptions {
                layer_hints: [("compression".to_string(), "zstd".to_string())].into(),
                ..Default::default()
            };
            let opts = if kind == "random" && compression != Compression::None {
                forced
            } else {
                PutOptions::default()
            };
            store.put_opts(&key_, data.clone(), opts).await.unwrap();
            let stored = counting.inner.head(&key_).await.unwrap().size;
            read.store(0, std::sync::atomic::Ordering::Relaxed);
            let (a, b) = (size as u64 - MIB as u64, size as u64);
            let got = store.get_range(&key_, a..b).await.unwrap();
            assert!(
                got == data.slice(a as usize..),
                "{name} {kind}: bytes differ"
            );
            let n = read.load(std::sync::atomic::Ordering::Relaxed);
            // The range's frame (4 MiB of content at most), the seek table, cipher headers.
            let bound = MIB as u64 + 4 * MIB as u64 * stored / size as u64 + 256 * 1024;
            assert!(
                n <= bound,
                "{name} {kind}: read {n} stored bytes for a 1 MiB range of {stored} (bound {bound})"
            );
            if name != "aes" {
                let h = store.head(&key_).await.unwrap();
                assert!(h
                    .layer_meta
                    .contains_key(cairn::layer::compress::FRAMES_META));
            }
        }
    }
}

/// Every kind of range on compressed (and encrypted) objects, single and streamed, answers as
/// the memory store without layers does: same bytes, same refusals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_ranges_match_the_plain_store() {
    use cairn::testkit::matrix::{csv_rows, ranges_for};
    let plain = MemoryStore::new();
    let stacks = [
        Stack {
            checksum: true,
            compression: Compression::Zstd(3),
            key: None,
        },
        Stack {
            checksum: true,
            compression: Compression::Gzip(6),
            key: None,
        },
        Stack {
            checksum: true,
            compression: Compression::Zstd(3),
            key: Some(KEY_A),
        },
        Stack {
            checksum: false,
            compression: Compression::Zstd(3),
            key: None,
        },
    ];
    for s in stacks {
        let store = build(Arc::new(MemoryStore::new()), s);
        for size in [0, 1, 4 * MIB, 4 * MIB + 1, 9 * MIB + 77] {
            let data = csv_rows(size, size as u64);
            let key = k(&format!("r/{size}"));
            plain.put(&key, data.clone()).await.unwrap();
            for streamed in [false, true] {
                if streamed {
                    stream_put(
                        &*store,
                        &key,
                        &data,
                        &[MIB + 3],
                        5 * MIB,
                        Default::default(),
                    )
                    .await
                    .unwrap();
                } else {
                    store.put(&key, data.clone()).await.unwrap();
                }
                for range in ranges_for(size as u64) {
                    let ctx = format!("{s:?} size {size} streamed {streamed} {range:?}");
                    let want = plain.get_range(&key, range.clone()).await;
                    let got = store.get_range(&key, range.clone()).await;
                    match (want, got) {
                        (Ok(w), Ok(g)) => assert!(w == g, "{ctx}: bytes differ"),
                        (Err(w), Err(g)) => assert_eq!(w.kind(), g.kind(), "{ctx}: {g}"),
                        (w, g) => panic!("{ctx}: plain {w:?}, layered {g:?}"),
                    }
                }
            }
        }
    }
}

/// Objects written as one frame, before the seekable layout, still read whole and in ranges.
#[tokio::test]
async fn single_frame_objects_from_before_still_read() {
    use cairn::layer::stack::LAYER_META_HINT;
    let inner = Arc::new(MemoryStore::new());
    let store = build(
        inner.clone(),
        Stack {
            checksum: false,
            compression: Compression::Zstd(3),
            key: None,
        },
    );
    let data = text(6 * MIB, 3);
    for (alg, packed) in [
        ("zstd", zstd::encode_all(&data[..], 3).unwrap()),
        ("gzip", {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        }),
    ] {
        let key = k(&format!("old/{alg}"));
        let opts = PutOptions {
            layer_hints: [(
                LAYER_META_HINT.to_string(),
                format!("{COMPRESSION_META},{SIZE_META}"),
            )]
            .into(),
            ..Default::default()
        }
        .meta(COMPRESSION_META, alg)
        .meta(SIZE_META, data.len().to_string());
        inner.put_opts(&key, packed.into(), opts).await.unwrap();
        assert!(store.get(&key).await.unwrap() == data, "{alg}: full read");
        let r = 5 * MIB as u64..5 * MIB as u64 + 1000;
        let got = store.get_range(&key, r.clone()).await.unwrap();
        assert!(got == data.slice(r.start as usize..r.end as usize), "{alg}");
        let got = store.get_range(&key, GetRange::Suffix(10)).await.unwrap();
        assert!(got == data.slice(data.len() - 10..), "{alg}: suffix");
    }
}

/// The stored bytes stay a standard stream: every frame, and the seek table, decode with a
/// plain zstd or multi-member gzip reader to exactly the content.
#[tokio::test]
async fn seekable_objects_are_plain_zstd_and_gzip_streams() {
    use std::io::Read;
    let inner = Arc::new(MemoryStore::new());
    let data = text(9 * MIB + 5, 11);
    for c in [Compression::Zstd(3), Compression::Gzip(1)] {
        let store = build(
            inner.clone(),
            Stack {
                checksum: true,
                compression: c,
                key: None,
            },
        );
        let key = k("std");
        store.put(&key, data.clone()).await.unwrap();
        let raw = inner.get(&key).await.unwrap();
        let mut out = Vec::new();
        match c {
            Compression::Zstd(_) => {
                zstd::stream::read::Decoder::new(&raw[..])
                    .unwrap()
                    .read_to_end(&mut out)
                    .unwrap();
            }
            _ => {
                flate2::read::MultiGzDecoder::new(&raw[..])
                    .read_to_end(&mut out)
                    .unwrap();
            }
        }
        assert!(out == data, "{c:?}");
    }
}

fn sha(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// Every put through a transforming stack records a content digest that `content_digest`
/// finds on `head`: `sha256:` when compressed, keyed `hmac-sha256:` when encrypted, and the
/// stored SHA-256 itself when untransformed. No plaintext hash of an encrypted object is
/// stored anywhere, not even in the checksum manifest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_digests_survive_every_stack() {
    use cairn::digest::{content_digest, DigestScheme, CONTENT_DIGEST_META};
    use cairn::testkit::matrix::json_lines;
    for s in all_stacks() {
        let inner = Arc::new(MemoryStore::new());
        let store = build(inner.clone(), s);
        for (size, streamed) in [(0, false), (300_000, false), (11 * MIB, true), (1, true)] {
            let data = json_lines(size, 5);
            let key = k(&format!("d/{size}/{streamed}"));
            if streamed {
                stream_put(&*store, &key, &data, &[MIB], 5 * MIB, Default::default())
                    .await
                    .unwrap();
            } else {
                store.put(&key, data.clone()).await.unwrap();
            }
            let ctx = format!("{s:?} size {size} streamed {streamed}");
            let h = store.head(&key).await.unwrap();
            let want_scheme = match s.key {
                Some(key) => {
                    let scheme = store.digest_scheme();
                    assert!(
                        matches!(&scheme, DigestScheme::HmacSha256 { key_id, .. }
                            if *key_id == encrypt::key_id(&key).0),
                        "{ctx}: {scheme:?}"
                    );
                    scheme
                }
                None => DigestScheme::Sha256,
            };
            let want = want_scheme.digest_of(&sha(&data));
            let streamed_unrecorded = streamed && !s.checksum && h.is_transformed();
            if streamed_unrecorded {
                // Trailing metadata lives in the checksum manifest: without it, not recorded
                // (a short stream is one put, and records it).
                if let Some(d) = content_digest(&h) {
                    assert_eq!(d, want, "{ctx}");
                }
                continue;
            }
            if !s.checksum && !h.is_transformed() {
                assert_eq!(content_digest(&h), None, "{ctx}: nothing recorded it");
                continue;
            }
            assert_eq!(content_digest(&h).as_deref(), Some(&*want), "{ctx}");
            if !h.is_transformed() {
                assert!(
                    !h.layer_meta.contains_key(CONTENT_DIGEST_META),
                    "{ctx}: the stored SHA-256 already is the content digest"
                );
            }
            if s.key.is_some() {
                let plain_hex = hex::encode(sha(&data));
                let raw = inner.head(&key).await.unwrap();
                let all: Vec<&String> = raw
                    .layer_meta
                    .values()
                    .chain(raw.metadata.values())
                    .collect();
                assert!(
                    !all.iter().any(|v| v.contains(&plain_hex)),
                    "{ctx}: {all:?}"
                );
                if let Ok(m) = inner.get(&manifest_key(&key)).await {
                    let m = String::from_utf8_lossy(&m).to_string();
                    assert!(!m.contains(&plain_hex), "{ctx}: manifest {m}");
                }
            }
        }
    }
}

/// Compression runs on the blocking pool: on a one-thread runtime another task still runs
/// while a 16 MiB gzip put compresses (inline, the put finished in its first poll).
#[test]
fn a_compressing_put_leaves_the_async_worker_free() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for (c, key) in [
            (Compression::Gzip(6), None),
            (Compression::None, Some(KEY_A)),
        ] {
            let store = build(
                Arc::new(MemoryStore::new()),
                Stack {
                    checksum: false,
                    compression: c,
                    key,
                },
            );
            let data = text(16 * MIB, 1);
            let mut ticks = 0u64;
            let key_ = k("cpu");
            let put = store.put(&key_, data);
            tokio::pin!(put);
            loop {
                tokio::select! {
                    biased;
                    r = &mut put => { r.unwrap(); break; }
                    () = tokio::task::yield_now() => ticks += 1,
                }
            }
            assert!(ticks > 0, "{c:?} {key:?}: the put held the only worker");
        }
    });
}

/// A put that opts out of encryption on an encrypting store still records the plain content
/// digest of its compressed bytes.
#[tokio::test]
async fn an_unencrypted_put_on_an_encrypting_store_records_a_plain_digest() {
    let store = full_stack(Arc::new(MemoryStore::new()));
    let data = text(300_000, 9);
    let key = k("noenc");
    store
        .put_opts(&key, data.clone(), hint("encryption", "none"))
        .await
        .unwrap();
    let h = store.head(&key).await.unwrap();
    assert!(h.encryption_key_id().is_none());
    assert_eq!(h.compression(), Some("zstd"));
    let want = cairn::digest::DigestScheme::Sha256.digest_of(&sha(&data));
    assert_eq!(cairn::digest::content_digest(&h), Some(want));
}
