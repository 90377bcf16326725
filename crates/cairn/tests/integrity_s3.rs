//! Corruption on a real server (Garage checks signatures and checksums, unlike moto): bytes
//! flipped in the stored object are always caught, never handed over as good data.

use bytes::Bytes;
use cairn::layer::checksum::{verify, VerifyStatus};
use cairn::{Config, DynStore, ErrorKind, GetOptions, Key, PutOptions, StoreExt};
use futures::StreamExt;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start servers with scripts/servers/start.sh and source the env file")
    })
}

/// The same Garage prefix opened twice: with the default layers, and bare (checksum off).
async fn stores(test: &str) -> (DynStore, DynStore) {
    let v = |k: &str| env(&format!("CAIRN_TEST_GARAGE_{k}"));
    let url = format!(
        "s3://{}/{}/integrity-{:08x}/{test}?endpoint={}&region={}&path_style=true&provider=garage",
        v("BUCKET"),
        env("CAIRN_TEST_RUN_ID"),
        rand::random::<u32>(),
        v("ENDPOINT"),
        v("REGION"),
    );
    let creds = [
        ("access_key_id", v("ACCESS_KEY_ID")),
        ("secret_access_key", v("SECRET_ACCESS_KEY")),
    ];
    let pairs = |extra: Option<(&'static str, &'static str)>| {
        let mut c = Config::from_pairs(creds.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
        if let Some((k, val)) = extra {
            c.set(k, val).unwrap();
        }
        c
    };
    let layered = cairn::open_with(&url, pairs(None)).await.unwrap();
    let bare = cairn::open_with(&url, pairs(Some(("checksum", "false"))))
        .await
        .unwrap();
    (layered, bare)
}

/// Rewrites the stored object with one byte flipped, keeping its metadata (digest included).
async fn flip_byte(bare: &DynStore, key: &Key, at: usize) {
    let raw = GetOptions {
        raw: true,
        ..Default::default()
    };
    let r = bare.get_opts(key, raw).await.unwrap();
    let (meta, content_type) = (r.meta.metadata.clone(), r.meta.content_type.clone());
    let mut bytes = r.bytes().await.unwrap().to_vec();
    bytes[at] ^= 0x01;
    let mut put = PutOptions {
        content_type,
        metadata: meta.clone(),
        ..Default::default()
    };
    // The documented bypass: this test forges layer metadata on purpose.
    let names: Vec<&str> = meta.keys().map(String::as_str).collect();
    put.layer_hints
        .insert(cairn::layer::stack::LAYER_META_HINT.into(), names.join(","));
    bare.put_opts(key, Bytes::from(bytes), put).await.unwrap();
}

#[tokio::test]
async fn flipped_byte_is_an_integrity_error_on_garage() {
    let (layered, bare) = stores("flip").await;
    for (i, size) in [1usize, 1000, 3 * 1024 * 1024].into_iter().enumerate() {
        let key = Key::new(format!("obj-{size}")).unwrap();
        let data = cairn::testkit::pattern(size, i as u64);
        layered.put(&key, data.clone()).await.unwrap();
        assert_eq!(
            layered.get(&key).await.unwrap(),
            data,
            "good bytes read back"
        );
        assert_eq!(verify(&*layered, &key).await.unwrap(), VerifyStatus::Ok);

        flip_byte(&bare, &key, size / 2).await;
        let e = layered.get(&key).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "size {size}: {e}");
        // A stream must fail before its last chunk is released.
        let mut body = layered.get_stream(&key).await.unwrap();
        let mut got = 0usize;
        let mut failed = false;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(c) => got += c.len(),
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Integrity);
                    failed = true;
                    break;
                }
            }
        }
        assert!(failed, "size {size}: the stream ended without an error");
        assert!(got < size, "size {size}: all {got} bytes were handed over");
        assert!(
            matches!(
                verify(&*layered, &key).await.unwrap(),
                VerifyStatus::Corrupt { .. }
            ),
            "verify reports corrupt"
        );
    }
}

#[tokio::test]
async fn garage_rejects_a_wrong_server_side_checksum() {
    // The S3 store sends x-amz-checksum-sha256 to servers that check it; a body that does not
    // match is refused by Garage (the request is signed, so only the checksum header is wrong
    // when we lie about the digest through the admin client).
    let v = |k: &str| env(&format!("CAIRN_TEST_GARAGE_{k}"));
    let url = format!(
        "s3://{}?endpoint={}&region={}&path_style=true&provider=garage",
        v("BUCKET"),
        v("ENDPOINT"),
        v("REGION")
    );
    let creds = Config::from_pairs([
        ("access_key_id", v("ACCESS_KEY_ID").as_str()),
        ("secret_access_key", v("SECRET_ACCESS_KEY").as_str()),
    ])
    .unwrap();
    let (admin, bucket) = cairn::backend::s3::admin::admin_for(&url, creds)
        .await
        .unwrap();
    let key = format!("{}/integrity-wrong-checksum", env("CAIRN_TEST_RUN_ID"));
    let wrong = base64_sha256(b"not the body");
    let r = admin
        .sdk()
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .checksum_sha256(wrong)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"the body"))
        .send()
        .await;
    assert!(
        r.is_err(),
        "Garage accepted a body whose SHA-256 did not match"
    );
    // Control: the same request with the right digest succeeds, so the refusal was the digest.
    admin
        .sdk()
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .checksum_sha256(base64_sha256(b"the body"))
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"the body"))
        .send()
        .await
        .expect("the right digest is accepted");
}

fn base64_sha256(b: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(b))
}
