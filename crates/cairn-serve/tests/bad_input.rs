//! Requests the gateway must refuse, each with its exact S3 error code, writing nothing:
//! a wrong signature, a key with `..`, a body longer or shorter than declared, and an upload
//! cut off mid-body. Sent as raw HTTP so nothing on the client side repairs them. (An expired
//! presigned URL is tested from boto3, which signs it: crates/cairn-py/tests/test_serve.py.)

mod common;

use cairn::{Key, StoreExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `head` then `body`; closes the write side when `close` says so. Returns the status
/// and the `<Code>` of the error, if any ("" when the server closed without answering).
async fn send(g: &common::Gateway, head: &str, body: &[u8], close: bool) -> (u16, String) {
    let mut s = TcpStream::connect(g.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    if close {
        s.shutdown().await.unwrap();
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // One response is enough; the server may keep the connection open.
    loop {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("the gateway answers or closes within 10 s")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if text.contains("</Error>")
            || (text.contains("\r\n\r\n")
                && !text.contains("<?xml")
                && text.contains("Content-Length: 0"))
        {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let code = text
        .split("<Code>")
        .nth(1)
        .and_then(|r| r.split("</Code>").next())
        .unwrap_or("")
        .to_string();
    (status, code)
}

fn put_head(g: &common::Gateway, path: &str, len: usize, extra: &str) -> String {
    format!(
        "PUT {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {len}\r\n{extra}\r\n",
        g.addr
    )
}

/// Whether the gateway's bucket `data` holds anything at all.
async fn data_is_empty(g: &common::Gateway) -> bool {
    let store = cairn::open(&format!("file://{}", g.dir.join("data").display()))
        .await
        .unwrap();
    let mut s = store.list_objects("");
    futures::StreamExt::next(&mut s).await.is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_signature_is_signature_does_not_match() {
    let g = common::start(false, false).await;
    let now = chrono::Utc::now();
    let auth = format!(
        "Authorization: AWS4-HMAC-SHA256 Credential={}/{}/us-east-1/s3/aws4_request, \
         SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={}\r\n\
         x-amz-content-sha256: UNSIGNED-PAYLOAD\r\nx-amz-date: {}\r\n",
        common::ACCESS_KEY,
        now.format("%Y%m%d"),
        "0".repeat(64),
        now.format("%Y%m%dT%H%M%SZ"),
    );
    let (status, code) = send(
        &g,
        &put_head(&g, "/data/sig/obj", 5, &auth),
        b"hello",
        false,
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "SignatureDoesNotMatch"));
    // An unsigned request to a gateway without --anonymous is refused as well.
    let (status, code) = send(&g, &put_head(&g, "/data/sig/obj", 5, ""), b"hello", false).await;
    assert_eq!((status, code.as_str()), (403, "AccessDenied"));
    assert!(data_is_empty(&g).await, "nothing written");
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_dot_key_is_refused_and_nothing_written() {
    let g = common::start(false, true).await;
    for path in [
        "/data/a/../b",
        "/data/a/%2E%2E/b",
        "/data/x//y",
        "/data/dir/",
    ] {
        let (status, code) = send(&g, &put_head(&g, path, 5, ""), b"hello", false).await;
        assert_eq!((status, code.as_str()), (400, "InvalidArgument"), "{path}");
    }
    assert!(data_is_empty(&g).await, "nothing written");
    // Nothing escaped the bucket's directory either.
    assert!(!g.dir.join("b").exists() && !g.dir.join("data/b").exists());
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_longer_than_declared_is_refused() {
    let g = common::start(false, true).await;
    // 20 bytes sent, 10 declared: the server reads 10, whose SHA-256 is not the one declared.
    let body = b"0123456789abcdefghij";
    let sha = hex::encode(Sha256::digest(body));
    let extra = format!("x-amz-content-sha256: {sha}\r\n");
    let (status, code) = send(&g, &put_head(&g, "/data/long/obj", 10, &extra), body, false).await;
    assert_eq!((status, code.as_str()), (400, "XAmzContentSHA256Mismatch"));
    // The same with a declared checksum of the whole body.
    let extra = format!(
        "x-amz-checksum-sha256: {}\r\n",
        base64_std(&Sha256::digest(body))
    );
    let (status, code) = send(
        &g,
        &put_head(&g, "/data/long/obj2", 10, &extra),
        body,
        false,
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "BadDigest"));
    assert!(data_is_empty(&g).await, "nothing written");
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_shorter_than_declared_and_truncated_uploads_write_nothing() {
    let g = common::start(false, true).await;
    // 100 bytes declared, 50 sent, then the client closes its side: hyper sees the body end
    // early; the upload is refused as IncompleteBody (the answer may be lost with the socket).
    let (status, code) = send(
        &g,
        &put_head(&g, "/data/short/obj", 100, ""),
        &[7u8; 50],
        true,
    )
    .await;
    assert!(
        (status, code.as_str()) == (400, "IncompleteBody") || (status, code.as_str()) == (0, ""),
        "got {status} {code}"
    );
    // A large upload (past the writer's first part, so a multipart upload is under way in
    // the store) cut off mid-body.
    let big = vec![1u8; 12 * 1024 * 1024];
    let _ = send(
        &g,
        &put_head(&g, "/data/short/big", 20 * 1024 * 1024, ""),
        &big,
        true,
    )
    .await;
    // A multipart part cut off mid-body leaves no part.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(data_is_empty(&g).await, "nothing written");
    let store = common::client(&g, "").await;
    for k in ["short/obj", "short/big"] {
        let e = store.head(&Key::new(k).unwrap()).await.unwrap_err();
        assert_eq!(e.kind(), cairn::ErrorKind::NotFound, "{k}: {e}");
    }
    g.stop().await;
}

fn base64_std(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}
