//! Corruption on a real server (Garage checks signatures and checksums, unlike moto): bytes
//! flipped in the stored object are always caught, never handed over as good data.

use bytes::Bytes;
use cairn::layer::checksum::{verify, VerifyStatus};
use cairn::ops::reporter::NoReporter;
use cairn::transfer::{upload_file, TransferOptions};
use cairn::{Config, DynStore, ErrorKind, GetOptions, Key, PutOptions, StoreExt};
use futures::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start servers with scripts/servers/start.sh and source the env file")
    })
}

/// A store on Garage's bucket under `prefix`, reached through `endpoint` (Garage itself or a
/// proxy in front of it), with extra options.
async fn garage_store(prefix: &str, endpoint: &str, extra: &[(&str, &str)]) -> DynStore {
    let v = |k: &str| env(&format!("CAIRN_TEST_GARAGE_{k}"));
    let url = format!(
        "s3://{}/{prefix}?endpoint={endpoint}&region={}&path_style=true&provider=garage",
        v("BUCKET"),
        v("REGION"),
    );
    let (id, secret) = (v("ACCESS_KEY_ID"), v("SECRET_ACCESS_KEY"));
    let mut c = Config::from_pairs([
        ("access_key_id", id.as_str()),
        ("secret_access_key", secret.as_str()),
    ])
    .unwrap();
    for (k, val) in extra {
        c.set(k, val).unwrap();
    }
    cairn::open_with(&url, c).await.unwrap()
}

fn unique_prefix(test: &str) -> String {
    format!(
        "{}/integrity-{:08x}/{test}",
        env("CAIRN_TEST_RUN_ID"),
        rand::random::<u32>()
    )
}

/// The same Garage prefix opened twice: with the default layers, and bare (checksum off).
async fn stores(test: &str) -> (DynStore, DynStore) {
    let (prefix, endpoint) = (unique_prefix(test), env("CAIRN_TEST_GARAGE_ENDPOINT"));
    let layered = garage_store(&prefix, &endpoint, &[]).await;
    let bare = garage_store(&prefix, &endpoint, &[("checksum", "false")]).await;
    (layered, bare)
}

/// Rewrites the stored object with one byte flipped, keeping its metadata (digest included).
async fn flip_byte(bare: &DynStore, key: &Key, at: usize) {
    let raw = GetOptions {
        raw: true,
        ..Default::default()
    };
    let r = bare.get_opts(key, raw).await.unwrap();
    // The user's metadata and the layers' records, written back as they were.
    let mut meta = r.meta.metadata.clone();
    meta.extend(r.meta.layer_meta.clone());
    let content_type = r.meta.content_type.clone();
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
        // A stream must fail before its last chunk is released. An object up to
        // REREAD_LIMIT is read whole and verified (3 reads) before the stream opens, so it
        // fails there, with no byte handed over.
        if size as u64 <= cairn::layer::checksum::REREAD_LIMIT {
            let Err(e) = layered.get_stream(&key).await else {
                panic!("size {size}: a corrupt small object opened as a stream");
            };
            assert_eq!(e.kind(), ErrorKind::Integrity, "size {size}: {e}");
            assert!(
                e.to_string().contains("on each of 3 reads"),
                "size {size}: {e}"
            );
            assert!(
                matches!(
                    verify(&*layered, &key).await.unwrap(),
                    VerifyStatus::Corrupt { .. }
                ),
                "verify reports corrupt"
            );
            continue;
        }
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
    let (admin, bucket) = cairn::open_admin(&url, creds).await.unwrap();
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

/// A TCP proxy to `upstream` that flips one bit in the middle of every PUT body of at least
/// 1 KiB (object bodies and multipart parts; CompleteMultipartUpload is a POST). Returns its
/// `http://` endpoint and the number of bodies it corrupted.
async fn corrupting_proxy(upstream: &str) -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let upstream = upstream.trim_start_matches("http://").to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let flips = Arc::new(AtomicUsize::new(0));
    let counter = flips.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
            let (client_r, mut client_w) = client.into_split();
            let (mut server_r, mut server_w) = server.into_split();
            tokio::spawn(async move { tokio::io::copy(&mut server_r, &mut client_w).await });
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut r = BufReader::new(client_r);
                loop {
                    let mut head = Vec::new();
                    while !head.ends_with(b"\r\n\r\n") {
                        if r.read_until(b'\n', &mut head).await? == 0 {
                            return std::io::Result::Ok(());
                        }
                    }
                    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).await?;
                    if text.starts_with("put ") && len >= 1024 {
                        body[len / 2] ^= 0x01;
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    server_w.write_all(&head).await?;
                    server_w.write_all(&body).await?;
                }
            });
        }
    });
    (endpoint, flips)
}

#[tokio::test]
async fn a_body_corrupted_in_transit_is_refused_not_stored() {
    let garage = env("CAIRN_TEST_GARAGE_ENDPOINT");
    let (proxy, flips) = corrupting_proxy(&garage).await;
    let prefix = unique_prefix("transit");
    let direct = garage_store(&prefix, &garage, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, cairn::testkit::pattern(11 * 1024 * 1024, 7)).unwrap();
    let opts = TransferOptions {
        part_size: 5 * 1024 * 1024,
        multipart_threshold: 5 * 1024 * 1024,
        ..Default::default()
    };
    // `auto` over loopback: unsigned, CRC64-NVME checked by Garage. `always`: SigV4's hash.
    for mode in ["auto", "always"] {
        let via_proxy = garage_store(&prefix, &proxy, &[("payload_signing", mode)]).await;
        let before = flips.load(Ordering::SeqCst);
        let single = Key::new(format!("single-{mode}")).unwrap();
        let e = via_proxy
            .put(&single, cairn::testkit::pattern(64 * 1024, 1))
            .await
            .expect_err("a corrupted single PUT was accepted");
        assert_eq!(e.kind(), ErrorKind::Integrity, "{mode}: {e}");
        assert!(e.to_string().contains("nothing was stored"), "{mode}: {e}");
        let multi = Key::new(format!("multi-{mode}")).unwrap();
        let e = upload_file(&*via_proxy, &multi, &big, &opts, &NoReporter)
            .await
            .expect_err("a corrupted multipart upload was accepted");
        assert_eq!(e.kind(), ErrorKind::Integrity, "{mode}: {e}");
        assert!(
            flips.load(Ordering::SeqCst) >= before + 2,
            "{mode}: the proxy corrupted nothing"
        );
        for key in [&single, &multi] {
            let e = direct.head(key).await.unwrap_err();
            assert_eq!(
                e.kind(),
                ErrorKind::NotFound,
                "{mode}: {key} was stored: {e}"
            );
        }
    }
    let (admin, bucket) = cairn::open_admin(
        &format!(
            "s3://{}?endpoint={garage}&region={}&path_style=true&provider=garage",
            env("CAIRN_TEST_GARAGE_BUCKET"),
            env("CAIRN_TEST_GARAGE_REGION")
        ),
        Config::from_pairs([
            (
                "access_key_id",
                env("CAIRN_TEST_GARAGE_ACCESS_KEY_ID").as_str(),
            ),
            (
                "secret_access_key",
                env("CAIRN_TEST_GARAGE_SECRET_ACCESS_KEY").as_str(),
            ),
        ])
        .unwrap(),
    )
    .await
    .unwrap();
    let open = admin
        .sdk()
        .list_multipart_uploads()
        .bucket(bucket)
        .prefix(&prefix)
        .send()
        .await
        .unwrap();
    assert!(
        open.uploads().is_empty(),
        "uploads left open: {:?}",
        open.uploads()
    );

    // Control: with neither a signature nor a server checksum (moto's quirks say Garage checks
    // none), the proxy's corruption is stored, and cairn's SHA-256 catches it on the read.
    let unprotected = [("payload_signing", "never"), ("provider", "moto")];
    let via_proxy = garage_store(&prefix, &proxy, &unprotected).await;
    let key = Key::new("unprotected").unwrap();
    via_proxy
        .put(&key, cairn::testkit::pattern(64 * 1024, 2))
        .await
        .expect("nothing checks this body on the way");
    let reader = garage_store(&prefix, &garage, &[("provider", "moto")]).await;
    let e = reader.get(&key).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
}
