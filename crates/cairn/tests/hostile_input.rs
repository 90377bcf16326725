//! Hostile input: property tests over everything cairn parses or decodes from outside. No
//! input panics; stored bytes that were truncated, flipped or extended read as an `Integrity`
//! error, never as other bytes.
//!
//! Cases per property: `PROPTEST_CASES` (default 48, the test command's size);
//! `bench/reliability/proptest.sh` runs the long version. Failures are kept as seeds in
//! `hostile_input.proptest-regressions` beside this file.

use bytes::Bytes;
use cairn::archive::Template;
use cairn::backend::local::LocalStore;
use cairn::backend::memory::MemoryStore;
use cairn::layer::compress::{decompress_bytes, CompressStore, Compression};
use cairn::layer::encrypt::{decrypt_bytes, encrypt_bytes, EncryptStore, StaticKeyProvider};
use cairn::layer::stack::LAYER_META_HINT;
use cairn::{Config, ErrorKind, Key, PutOptions, Store, StoreExt, StoreUrl};
use proptest::prelude::*;
use std::sync::Arc;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(48);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A change to stored bytes.
#[derive(Debug, Clone)]
enum Mutation {
    None,
    Truncate(usize),
    Flip(usize, u8),
    Extend(Vec<u8>),
    Replace(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => Just(Mutation::None),
        3 => any::<usize>().prop_map(Mutation::Truncate),
        4 => (any::<usize>(), 1..=255u8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        2 => proptest::collection::vec(any::<u8>(), 1..64).prop_map(Mutation::Extend),
        1 => proptest::collection::vec(any::<u8>(), 0..256).prop_map(Mutation::Replace),
    ]
}

/// Applies `m` to `b`; whether the bytes changed.
fn apply(m: &Mutation, b: &[u8]) -> (Vec<u8>, bool) {
    let mut v = b.to_vec();
    match m {
        Mutation::None => {}
        Mutation::Truncate(n) => v.truncate(n % b.len().max(1)),
        Mutation::Flip(i, x) if !v.is_empty() => {
            let i = i % v.len();
            v[i] ^= x;
        }
        Mutation::Flip(..) => {}
        Mutation::Extend(e) => v.extend_from_slice(e),
        Mutation::Replace(r) => v = r.clone(),
    }
    let changed = v != b;
    (v, changed)
}

/// Plain data: compressible text or random bytes, from empty to a few segments.
fn plain() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        ("[a-z ]{0,40}", 0..400usize).prop_map(|(s, n)| s.repeat(n).into_bytes()),
    ]
}

/// Writes `bytes` at `k` in the raw store with `head`'s user metadata and `layer` as the
/// layers' own entries, as the layers would have.
async fn reput(
    raw: &MemoryStore,
    k: &Key,
    bytes: Bytes,
    head: &cairn::ObjectMeta,
    layer: cairn::Metadata,
) {
    let mut opts = PutOptions {
        metadata: head.metadata.clone(),
        content_type: head.content_type.clone(),
        ..Default::default()
    };
    let names: Vec<String> = layer.keys().cloned().collect();
    opts.metadata.extend(layer);
    opts.layer_hints
        .insert(LAYER_META_HINT.to_string(), names.join(","));
    raw.put_opts(k, bytes, opts).await.unwrap();
}

/// Stores `data` through `layered` (over `raw`), mutates the stored bytes of `k` in `raw`,
/// and reads it back through `layered`: the original bytes when nothing changed, else
/// `Integrity` (with `strict`; else the exact original bytes are also accepted), never other
/// bytes and never a panic.
async fn tamper_and_read(
    layered: &dyn Store,
    raw: &MemoryStore,
    data: &[u8],
    m: &Mutation,
    strict: bool,
) -> std::result::Result<(), TestCaseError> {
    let k = Key::new("obj").unwrap();
    layered.put(&k, Bytes::from(data.to_vec())).await.unwrap();
    let stored = raw.get(&k).await.unwrap();
    let head = raw.head(&k).await.unwrap();
    let (tampered, changed) = apply(m, &stored);
    // Stored as is (incompressible data, no frame to check): the checksum layer's case.
    if head.layer_meta.is_empty() {
        return Ok(());
    }
    reput(
        raw,
        &k,
        Bytes::from(tampered),
        &head,
        head.layer_meta.clone(),
    )
    .await;
    let whole = layered.get(&k).await;
    let ranged = layered.get_range(&k, 0..(data.len() as u64 / 2 + 1)).await;
    if !changed {
        prop_assert_eq!(&whole.unwrap()[..], data);
        return Ok(());
    }
    match whole {
        // Compressed objects have bytes no whole read depends on (gzip's MTIME, XFL and OS
        // header bytes; the zstd seek table): a flip there still reads the exact original.
        Ok(b) if !strict => prop_assert_eq!(&b[..], data, "tampered bytes read as other bytes"),
        Ok(b) => prop_assert!(false, "tampered bytes read back as {} bytes", b.len()),
        Err(e) => prop_assert_eq!(e.kind(), ErrorKind::Integrity, "{}", e),
    }
    // A range may lie wholly in an intact part; if it reads, it reads the original bytes.
    match ranged {
        Ok(b) => prop_assert_eq!(&b[..], &data[..b.len()]),
        Err(e) => prop_assert!(
            matches!(e.kind(), ErrorKind::Integrity | ErrorKind::InvalidInput),
            "{}",
            e
        ),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn urls_never_panic(s in "\\PC{0,80}") {
        let _ = StoreUrl::parse(&s);
    }

    #[test]
    fn structured_urls_never_panic(
        scheme in prop_oneof![
            proptest::sample::select(vec!["s3", "file", "memory", "local", "tier+s3", "gs"]).prop_map(String::from),
            "[a-z+]{0,8}",
        ],
        host in "[a-zA-Z0-9._%-]{0,20}",
        path in "[/a-zA-Z0-9._%~-]{0,30}",
        query in proptest::collection::vec(("[a-z_]{0,20}", "\\PC{0,20}"), 0..4),
    ) {
        let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let url = format!("{scheme}://{host}{path}?{}", q.join("&"));
        if let Ok(u) = StoreUrl::parse(&url) {
            // Whatever parses formats without panicking.
            let _ = format!("{u:?}");
        }
    }

    #[test]
    fn config_values_never_panic(
        key in prop_oneof![proptest::sample::select(cairn::config::KEYS.to_vec()).prop_map(String::from), "\\PC{0,20}"],
        value in "\\PC{0,40}",
    ) {
        let _ = Config::from_pairs([(key.as_str(), value.as_str())]);
        let _ = Config::from_env_with(|_| Some(value.clone()));
    }

    #[test]
    fn keys_never_escape(s in "\\PC{0,60}|[./\\\\a]{0,12}") {
        if let Ok(k) = Key::new(s.clone()) {
            let p = std::path::Path::new("/root").join(k.as_str());
            prop_assert!(p.starts_with("/root"));
            prop_assert!(p.components().all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::RootDir)));
            prop_assert!(!k.as_str().contains('\\'));
        }
        let _ = cairn::key::validate_prefix(&s);
    }

    #[test]
    fn decoders_never_panic_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..512), key in any::<[u8; 32]>()) {
        let _ = decompress_bytes("zstd", &bytes);
        let _ = decompress_bytes("gzip", &bytes);
        if let Ok(p) = decrypt_bytes(&key, &bytes) {
            prop_assert!(false, "garbage decrypted to {} bytes", p.len());
        }
    }

    #[test]
    fn tampered_ciphertext_is_never_plaintext(data in plain(), m in mutation(), key in any::<[u8; 32]>()) {
        let sealed = encrypt_bytes(&key, &data).unwrap();
        let (t, changed) = apply(&m, &sealed);
        match decrypt_bytes(&key, &t) {
            Ok(p) => { prop_assert!(!changed); prop_assert_eq!(p, data); }
            Err(e) => { prop_assert!(changed); prop_assert_eq!(e.kind(), ErrorKind::Integrity, "{}", e); }
        }
    }

    #[test]
    fn tampered_encrypted_objects_read_as_integrity(data in plain(), m in mutation()) {
        let raw = MemoryStore::new();
        let keys = Arc::new(StaticKeyProvider::new([7; 32]));
        let s = EncryptStore::new(raw.clone(), Some(keys));
        rt().block_on(tamper_and_read(&s, &raw, &data, &m, true))?;
    }

    #[test]
    fn tampered_compressed_objects_read_as_integrity(
        data in plain(),
        m in mutation(),
        algo in prop_oneof![Just("zstd"), Just("gzip")],
    ) {
        let raw = MemoryStore::new();
        let s = CompressStore::new(raw.clone(), Compression::from_config(Some(algo), None).unwrap());
        rt().block_on(tamper_and_read(&s, &raw, &data, &m, false))?;
    }

    /// A sidecar holding any bytes: the object still reads as its own bytes, with or without
    /// metadata; nothing panics.
    #[test]
    fn hostile_sidecars_never_panic(side in proptest::collection::vec(any::<u8>(), 0..256), json in "\\PC{0,120}") {
        let root = tempfile::tempdir().unwrap();
        let store = LocalStore::new(root.path()).unwrap();
        let k = Key::new("a/b").unwrap();
        rt().block_on(async {
            store.put_opts(&k, Bytes::from_static(b"data"), PutOptions::default().meta("m", "1")).await.unwrap();
            let meta = root.path().join(".cairn/meta/a/b.json");
            for body in [side.clone(), json.clone().into_bytes(), format!("{{\"current\":{json}}}").into_bytes()] {
                std::fs::write(&meta, &body).unwrap();
                prop_assert_eq!(&store.get(&k).await.unwrap()[..], b"data");
                let _ = store.head(&k).await.unwrap();
                let _ = cairn::testkit::all_keys(&store, "").await;
            }
            Ok(())
        })?;
    }

    /// Layer metadata is read back from the store: any value in any of its entries never
    /// panics and never yields other bytes.
    #[test]
    fn hostile_layer_metadata_never_yields_other_bytes(data in plain(), which in any::<usize>(), value in "\\PC{0,40}") {
        let raw = MemoryStore::new();
        let keys = Arc::new(StaticKeyProvider::new([9; 32]));
        let s = cairn::layer::ChecksumStore::new(EncryptStore::new(
            CompressStore::new(raw.clone(), Compression::from_config(Some("zstd"), None).unwrap()),
            Some(keys),
        ));
        let k = Key::new("obj").unwrap();
        rt().block_on(async {
            s.put(&k, Bytes::from(data.clone())).await.unwrap();
            let stored = raw.get(&k).await.unwrap();
            let head = raw.head(&k).await.unwrap();
            let mut meta = head.layer_meta.clone();
            let names: Vec<String> = meta.keys().cloned().collect();
            prop_assert!(!names.is_empty(), "the layers record their metadata");
            let name = &names[which % names.len()];
            let changed = meta.get(name) != Some(&value);
            meta.insert(name.clone(), value.clone());
            reput(&raw, &k, stored, &head, meta).await;
            match s.get(&k).await {
                Ok(b) => prop_assert_eq!(&b[..], &data[..], "entry {} = {:?} (changed: {})", name, value, changed),
                Err(e) => prop_assert!(changed, "unchanged metadata failed: {}", e),
            }
            Ok(())
        })?;
    }

    #[test]
    fn archive_templates_never_panic(
        src in "(\\{(name|timestamp|kind|ext|prefix|yyyy|mm|dd|x|)\\}|[a-z/._-]{0,4}|\\PC){0,10}",
        prefix in "[a-z/]{0,10}",
        name in "\\PC{0,20}",
        kind in "[a-z]{0,6}",
        ext in "[a-z.]{0,5}",
        key in "\\PC{0,60}",
    ) {
        if let Ok(t) = Template::parse(&src) {
            let at = chrono::Utc::now();
            if let Ok(k) = t.render(&prefix, &name, &kind, &ext, at) {
                prop_assert!(Key::new(k.as_str()).is_ok());
                let _ = t.parse_key(&prefix, k.as_str());
            }
            let _ = t.scan_prefix(&prefix, Some(&name));
            let _ = t.parse_key(&prefix, &key);
        }
    }

    #[test]
    fn archive_names_render_and_parse_back(name in "[A-Za-z0-9_-][A-Za-z0-9._ -]{0,20}") {
        let t = Template::parse("{prefix}/{name}/{yyyy}/{timestamp}-{kind}.{ext}").unwrap();
        let at = chrono::Utc::now();
        if let Ok(k) = t.render("arch", &name, "full", "tar", at) {
            let p = t.parse_key("arch", k.as_str());
            prop_assert!(p.is_some(), "{} did not parse back", k);
            prop_assert_eq!(p.unwrap().name, name);
        }
    }
}

#[test]
fn truncated_headers_are_integrity_errors() {
    let key = [1u8; 32];
    let sealed = encrypt_bytes(&key, b"hello").unwrap();
    for n in 0..sealed.len() {
        let e = decrypt_bytes(&key, &sealed[..n]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "{n}: {e}");
    }
    let e = decrypt_bytes(&[2u8; 32], &sealed).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "wrong key: {e}");
}
