//! A request body as a stream for cairn's writer, checked on the way through: its length
//! against Content-Length, its bytes against `x-amz-checksum-*` (sent as headers or as
//! aws-chunked trailers) and Content-MD5. A mismatch is an error item *before* the end of the
//! stream, so the writer aborts and nothing is written.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};
use s3s::dto::StreamingBlob;
use s3s::{S3Error, S3ErrorCode};
use std::sync::{Arc, Mutex};

/// What the client declared about a body.
#[derive(Debug, Default, Clone)]
pub struct Declared {
    /// Content-Length (decoded length for aws-chunked bodies).
    pub length: Option<i64>,
    /// Content-MD5, base64.
    pub content_md5: Option<String>,
    /// `x-amz-checksum-*` values from headers.
    pub crc32: Option<String>,
    /// CRC32C.
    pub crc32c: Option<String>,
    /// SHA-1.
    pub sha1: Option<String>,
    /// SHA-256.
    pub sha256: Option<String>,
    /// CRC64/NVME.
    pub crc64nvme: Option<String>,
    /// `x-amz-sdk-checksum-algorithm` / `x-amz-checksum-algorithm`: a value comes in a trailer.
    pub algorithm: Option<String>,
    /// `x-amz-content-sha256` as hex, on an unsigned request (s3s checks signed ones).
    pub payload_sha256: Option<String>,
}

impl Declared {
    /// Takes `x-amz-content-sha256` from an unsigned request's headers, if it is a digest.
    pub fn payload_from(&mut self, headers: &http::HeaderMap, signed: bool) {
        if signed {
            return;
        }
        self.payload_sha256 = headers
            .get("x-amz-content-sha256")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_ascii_lowercase);
    }
}

/// What came through, once the stream ended.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Why the body was refused, if it was.
    pub error: Option<S3Error>,
    /// Hex MD5 of the bytes (S3's ETag of a single-part object or a part).
    pub md5: String,
    /// Bytes seen.
    pub size: u64,
}

/// Shared between the stream and the handler that reads the outcome after the put.
pub type Shared = Arc<Mutex<Outcome>>;

struct State {
    body: StreamingBlob,
    hasher: s3s::checksum::ChecksumHasher,
    md5: Md5,
    payload: Option<sha2::Sha256>,
    declared: Declared,
    trailers: Option<s3s::TrailingHeaders>,
    seen: u64,
    out: Shared,
    done: bool,
}

fn bad(code: S3ErrorCode, msg: String) -> S3Error {
    S3Error::with_message(code, msg)
}

impl State {
    fn finish(&mut self) -> Result<(), S3Error> {
        let d = &mut self.declared;
        if let Some(len) = d.length {
            if self.seen != len as u64 {
                return Err(bad(
                    S3ErrorCode::IncompleteBody,
                    format!(
                        "the body has {} bytes; Content-Length said {len}",
                        self.seen
                    ),
                ));
            }
        }
        if let Some(t) = self.trailers.take().and_then(|t| t.take()) {
            let get = |n: &str| t.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
            d.crc32 = d.crc32.take().or(get("x-amz-checksum-crc32"));
            d.crc32c = d.crc32c.take().or(get("x-amz-checksum-crc32c"));
            d.sha1 = d.sha1.take().or(get("x-amz-checksum-sha1"));
            d.sha256 = d.sha256.take().or(get("x-amz-checksum-sha256"));
            d.crc64nvme = d.crc64nvme.take().or(get("x-amz-checksum-crc64nvme"));
        }
        if let (Some(want), Some(h)) = (&d.payload_sha256, self.payload.take()) {
            if &hex::encode(h.finalize()) != want {
                let code = S3ErrorCode::from_bytes(b"XAmzContentSHA256Mismatch").expect("a code");
                let mut e = bad(
                    code,
                    "the body does not match its x-amz-content-sha256".into(),
                );
                e.set_status_code(http::StatusCode::BAD_REQUEST);
                return Err(e);
            }
        }
        let md5 = std::mem::take(&mut self.md5).finalize();
        if let Some(want) = &d.content_md5 {
            use base64::Engine;
            let got = base64::engine::general_purpose::STANDARD.encode(md5);
            if &got != want {
                return Err(bad(
                    S3ErrorCode::BadDigest,
                    "the body does not match its Content-MD5".into(),
                ));
            }
        }
        let hasher = std::mem::take(&mut self.hasher);
        let got = hasher.finalize();
        let pairs = [
            ("crc32", &d.crc32, &got.checksum_crc32),
            ("crc32c", &d.crc32c, &got.checksum_crc32c),
            ("sha1", &d.sha1, &got.checksum_sha1),
            ("sha256", &d.sha256, &got.checksum_sha256),
            ("crc64nvme", &d.crc64nvme, &got.checksum_crc64nvme),
        ];
        for (name, want, got) in pairs {
            if got.is_some() && want != got {
                return Err(bad(
                    S3ErrorCode::BadDigest,
                    format!(
                        "x-amz-checksum-{name} is {}, the body's is {}",
                        want.as_deref().unwrap_or("missing"),
                        got.as_deref().unwrap_or("")
                    ),
                ));
            }
        }
        self.out.lock().unwrap().md5 = hex::encode(md5);
        Ok(())
    }
}

/// The body as chunks for `cairn::transfer::put_stream`, checked against `declared`.
pub fn checked(
    body: StreamingBlob,
    declared: Declared,
    trailers: Option<s3s::TrailingHeaders>,
) -> Result<
    (
        impl Stream<Item = cairn::Result<Bytes>> + Send + Unpin,
        Shared,
    ),
    S3Error,
> {
    let mut hasher = s3s::checksum::ChecksumHasher::default();
    let has = |v: &Option<String>| v.is_some();
    let alg = declared.algorithm.as_deref().map(str::to_ascii_uppercase);
    let alg = alg.as_deref();
    if has(&declared.crc32) || alg == Some("CRC32") {
        hasher.crc32 = Some(Default::default());
    }
    if has(&declared.crc32c) || alg == Some("CRC32C") {
        hasher.crc32c = Some(Default::default());
    }
    if has(&declared.sha1) || alg == Some("SHA1") {
        hasher.sha1 = Some(Default::default());
    }
    if has(&declared.sha256) || alg == Some("SHA256") {
        hasher.sha256 = Some(Default::default());
    }
    if has(&declared.crc64nvme) || alg == Some("CRC64NVME") {
        hasher.crc64nvme = Some(Default::default());
    }
    if let Some(a) = alg {
        if !["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"].contains(&a) {
            return Err(bad(
                S3ErrorCode::InvalidArgument,
                format!("unknown checksum algorithm {a:?}"),
            ));
        }
    }
    let out = Shared::default();
    let payload = declared
        .payload_sha256
        .as_ref()
        .map(|_| sha2::Sha256::new());
    let state = State {
        body,
        hasher,
        md5: Md5::new(),
        payload,
        declared,
        trailers,
        seen: 0,
        out: out.clone(),
        done: false,
    };
    let stream = futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let fail = |st: &mut State, e: S3Error| {
            st.done = true;
            let msg = e.message().unwrap_or("refused").to_string();
            st.out.lock().unwrap().error = Some(e);
            Some(Err(cairn::Error::invalid(msg)))
        };
        match st.body.next().await {
            Some(Ok(chunk)) => {
                st.seen += chunk.len() as u64;
                st.md5.update(&chunk);
                st.hasher.update(&chunk);
                if let Some(p) = st.payload.as_mut() {
                    p.update(&chunk);
                }
                st.out.lock().unwrap().size = st.seen;
                Some((Ok(chunk), st))
            }
            Some(Err(e)) => {
                let err = bad(
                    S3ErrorCode::IncompleteBody,
                    format!("the request body broke off: {e}"),
                );
                let item = fail(&mut st, err).unwrap();
                Some((item, st))
            }
            None => match st.finish() {
                Ok(()) => None,
                Err(e) => {
                    let item = fail(&mut st, e).unwrap();
                    Some((item, st))
                }
            },
        }
    });
    Ok((Box::pin(stream), out))
}
