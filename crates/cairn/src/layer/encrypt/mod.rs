//! Client-side encryption: AES-256-GCM as a chunked streaming AEAD.
//!
//! - [`stream`]: the stored format `aes-256-gcm-stream-v1` (STREAM: 64 KiB segments, each
//!   authenticated, with order and end bound into the nonce).
//! - [`keys`]: key providers (`env:VAR`, `file:PATH`) and key ids.
//! - This module: the layer. The object key is not bound into the ciphertext, so server-side
//!   copies and renames keep working. Memory is one segment plus the inner stream's chunk,
//!   whatever the object's size.
//! - Metadata: `cairn-encryption` = `aes-256-gcm-stream-v1`, `cairn-key-id` = the key's id.
//!   The logical size follows from the stored size (no metadata needed).
//! - Errors: a key whose id differs from the object's, or any authentication failure, is
//!   "decryption failed: wrong key or corrupt data" ([`ErrorKind::Integrity`]); reading an
//!   encrypted object from a store opened without a key is [`ErrorKind::PermissionDenied`] with
//!   "this object is encrypted with key id X; set encryption_key".
//! - **Content digest**: an encrypted put records `cairn-content-digest` =
//!   `hmac-sha256:<key id>:<hex>`, HMAC-SHA256 of the content's SHA-256 under a digest key
//!   derived from the encryption key (HKDF, info `cairn content digest v1`), never a plaintext
//!   hash ([`crate::digest`]). The SHA-256 comes from the compression layer above when it
//!   hashed the content, else this layer hashes its plaintext.
//! - **Ranged reads** decrypt only the segments the range touches (two requests: the header,
//!   then the segments, pinned to one version by ETag where the store supports it).

pub mod keys;
pub mod stream;

pub use keys::{
    key_id, key_provider, EnvKeyProvider, FileKeyProvider, KeyId, KeyProvider, StaticKeyProvider,
};
pub use stream::{
    ciphertext_len, decrypt_bytes, encrypt_bytes, plaintext_len, Encryptor, HEADER_LEN, SEGMENT,
};

use super::stack::{
    check_reserved, cpu, cpu_in_order, join_parts, pump, set_layer_meta, sizes_unknown, Ctx,
    Rechunk, Window, CONTENT_SHA256_HINT, CONTENT_SHA256_TRAILING,
};
use super::Layer;
use crate::digest::{DigestScheme, CONTENT_DIGEST_META};
use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::store::*;
use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;
use stream::{layout, Decrypt, Header, CT_SEGMENT, WRONG_KEY};

/// Metadata name of the format.
pub const ENCRYPTION_META: &str = "cairn-encryption";
/// Metadata name of the key id.
pub const KEY_ID_META: &str = "cairn-key-id";
/// The format this layer writes.
pub const ALGORITHM: &str = "aes-256-gcm-stream-v1";

/// Encrypts new objects when it has a key, and decrypts encrypted objects on read.
#[derive(Debug)]
pub struct EncryptStore<S> {
    inner: S,
    keys: Option<Arc<dyn KeyProvider>>,
}

/// Builds [`EncryptStore`]s.
#[derive(Debug, Clone, Default)]
pub struct EncryptLayer {
    /// The key source; None: write plaintext, and refuse to read encrypted objects.
    pub keys: Option<Arc<dyn KeyProvider>>,
}

impl<S: Store> Layer<S> for EncryptLayer {
    type Store = EncryptStore<S>;
    fn layer(&self, inner: S) -> EncryptStore<S> {
        EncryptStore::new(inner, self.keys.clone())
    }
}

impl<S: Store> fmt::Display for EncryptStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

fn is_encrypted(meta: &ObjectMeta) -> bool {
    meta.layer_meta.contains_key(ENCRYPTION_META)
}

impl<S: Store> EncryptStore<S> {
    /// Wraps `inner`. With `keys`, new objects are encrypted unless a put says
    /// `encryption = none` in its layer hints.
    pub fn new(inner: S, keys: Option<Arc<dyn KeyProvider>>) -> Self {
        EncryptStore { inner, keys }
    }

    fn err(&self, e: Error, op: &'static str, key: &Key) -> Error {
        e.with_operation(op).with_store(self).with_key(key.as_str())
    }

    /// The key to write `key` with, or None to store plaintext.
    fn write_key(&self, key: &Key, opts: &PutOptions) -> Result<Option<(KeyId, [u8; 32])>> {
        let want = match opts
            .layer_hints
            .get("encryption")
            .map(|h| h.trim().to_ascii_lowercase())
        {
            None => self.keys.is_some(),
            Some(h) if h == "none" || h == "off" => false,
            Some(h) if h == "on" || h == ALGORITHM || h == "aes-256-gcm" => true,
            Some(h) => {
                return Err(self.err(
                    Error::invalid(format!(
                        "encryption hint must be none or {ALGORITHM}, not {h:?}"
                    )),
                    "put",
                    key,
                ))
            }
        };
        if !want {
            return Ok(None);
        }
        let Some(keys) = &self.keys else {
            return Err(self.err(
                Error::invalid("this put asks for encryption but the store has no key")
                    .with_hint("set encryption_key to env:VAR or file:PATH"),
                "put",
                key,
            ));
        };
        keys.key(None)
            .map(Some)
            .map_err(|e| self.err(e, "put", key))
    }

    /// The key that opens an object described by `meta`.
    fn read_key(&self, key: &Key, meta: &ObjectMeta) -> Result<[u8; 32]> {
        let alg = meta
            .layer_meta
            .get(ENCRYPTION_META)
            .map(String::as_str)
            .unwrap_or("");
        if alg != ALGORITHM {
            return Err(self.err(
                Error::unsupported(format!(
                    "object is encrypted with {alg:?}, which cairn cannot read"
                )),
                "get",
                key,
            ));
        }
        let stored_id = meta.layer_meta.get(KEY_ID_META).map(String::as_str);
        let shown = stored_id.unwrap_or("(not recorded)");
        let Some(keys) = &self.keys else {
            return Err(self.err(
                Error::new(
                    ErrorKind::PermissionDenied,
                    format!("this object is encrypted with key id {shown}; set encryption_key"),
                )
                .with_hint(
                    "open the store with encryption_key = env:VAR or file:PATH holding that key",
                ),
                "get",
                key,
            ));
        };
        let (id, k) = keys.key(stored_id).map_err(|e| self.err(e, "get", key))?;
        if let Some(want) = stored_id {
            if want != id.0 {
                return Err(self.err(
                    Error::new(
                        ErrorKind::Integrity,
                        format!("{WRONG_KEY}: the object was encrypted with key id {want}, the configured key is {id}"),
                    )
                    .with_hint("use the key the object was written with"),
                    "get",
                    key,
                ));
            }
        }
        Ok(k)
    }

    fn bad_size(&self, key: &Key, stored: u64) -> Error {
        self.err(
            Error::new(
                ErrorKind::Integrity,
                format!("encrypted object is truncated ({stored} bytes stored)"),
            ),
            "get",
            key,
        )
    }

    async fn get_range(&self, key: &Key, opts: GetOptions, range: GetRange) -> Result<GetResult> {
        // Header first: it carries the salt, and its answer gives the stored size and ETag.
        let head_opts = GetOptions {
            range: Some(GetRange::Bounded(0..HEADER_LEN as u64)),
            ..opts.clone()
        };
        let r = self.inner.get_opts(key, head_opts).await?;
        let pin = if self.inner.capabilities().conditional_get {
            r.meta.etag.clone()
        } else {
            None
        };
        if !is_encrypted(&r.meta) {
            drop(r.body);
            let again = GetOptions {
                range: Some(range),
                if_match: pin.or(opts.if_match),
                raw: false,
                version: opts.version.clone(),
            };
            return self.inner.get_opts(key, again).await;
        }
        let k = self.read_key(key, &r.meta)?;
        let stored = r.meta.size;
        let (segments, plain, last_len) =
            layout(stored).ok_or_else(|| self.bad_size(key, stored))?;
        let mut meta = r.meta.clone();
        let header = r.bytes().await?;
        let h = Header::parse(&header)
            .map_err(|why| self.err(Error::new(ErrorKind::Integrity, why), "get", key))?;
        let want = range.resolve(plain).map_err(|e| self.err(e, "get", key))?;
        meta.size = plain;
        if want.start == want.end {
            let body = futures::stream::empty().boxed();
            return Ok(GetResult {
                verified_sha256: None,
                meta,
                range: want,
                body,
            });
        }
        let first = want.start / SEGMENT as u64;
        let last = (want.end - 1) / SEGMENT as u64;
        let from = HEADER_LEN as u64 + first * CT_SEGMENT as u64;
        let to = (HEADER_LEN as u64 + (last + 1) * CT_SEGMENT as u64).min(stored);
        let seg_opts = GetOptions {
            range: Some(GetRange::Bounded(from..to)),
            if_match: pin.or(opts.if_match),
            raw: false,
            version: opts.version.clone(),
        };
        let r = self.inner.get_opts(key, seg_opts).await?;
        let ctx = Ctx::new(self, key);
        let dec = Decrypt::new(
            k,
            Some((h.cipher(&k), h.prefix)),
            (first, last + 1),
            segments,
            last_len,
            ctx,
        );
        let window = Window {
            dec,
            skip: want.start - first * SEGMENT as u64,
            take: want.end - want.start,
        };
        Ok(GetResult {
            verified_sha256: None,
            meta,
            range: want,
            body: pump(r.body, window),
        })
    }
}

struct EncryptUpload {
    parts: Rechunk,
    enc: Option<Encryptor>,
    /// Hashes the plaintext, unless a layer above sends its SHA-256 as trailing metadata.
    hasher: Option<Sha256>,
    sha_above: Option<[u8; 32]>,
    scheme: DigestScheme,
    key: Key,
}

/// The key content digests of objects under `key` are made with (never the key itself).
pub(crate) fn digest_scheme_for(id: &KeyId, key: &[u8; 32]) -> DigestScheme {
    DigestScheme::HmacSha256 {
        key_id: id.0.clone(),
        key: stream::hkdf32(None, key, &[DIGEST_INFO]),
    }
}

const DIGEST_INFO: &[u8] = b"cairn content digest v1";

fn parse_sha(hex_sha: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_sha.trim(), &mut out).ok()?;
    Some(out)
}

impl fmt::Debug for EncryptUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptUpload")
            .field("key", &self.key)
            .field("parts", &self.parts)
            .finish()
    }
}

#[async_trait]
impl MultipartUpload for EncryptUpload {
    fn put_part(&mut self, data: Bytes) -> BoxFuture<'static, Result<()>> {
        // Sealed in call order here; room for tags and the header keeps inner parts ≤ outer.
        self.parts
            .size_from(data.len(), data.len() / 64 + HEADER_LEN + CT_SEGMENT);
        let (hasher, enc) = (
            &mut self.hasher,
            self.enc.as_mut().expect("upload not finished"),
        );
        let sealed = cpu_in_order(data.len(), || {
            if let Some(h) = hasher {
                h.update(&data);
            }
            enc.push(&data)
        });
        match sealed {
            Ok(out) => join_parts(self.parts.write(&out)),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
    async fn complete(&mut self) -> Result<PutResult> {
        let enc = self
            .enc
            .take()
            .ok_or_else(|| Error::invalid("upload already completed"))?;
        let out = enc.finish()?;
        let mut futs = self.parts.write(&out);
        futs.extend(self.parts.flush());
        join_parts(futs).await?;
        let sha = match (self.sha_above, self.hasher.take()) {
            (Some(s), _) => Some(s),
            (None, Some(h)) => Some(h.finalize().into()),
            (None, None) => None,
        };
        if let Some(sha) = sha {
            let d = self.scheme.digest_of(&sha);
            let m = Metadata::from([(CONTENT_DIGEST_META.to_string(), d)]);
            self.parts.inner.add_trailing_metadata(m);
        }
        self.parts.inner.complete().await
    }
    async fn abort(&mut self) -> Result<()> {
        self.parts.inner.abort().await
    }
    fn add_trailing_metadata(&mut self, mut metadata: Metadata) {
        // A plaintext hash from above never goes further down: it becomes the keyed digest.
        if let Some(sha) = metadata.remove(CONTENT_SHA256_HINT) {
            self.sha_above = parse_sha(&sha);
        }
        metadata.remove(CONTENT_DIGEST_META);
        self.parts.inner.add_trailing_metadata(metadata);
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: Store> Store for EncryptStore<S> {
    fn capabilities(&self) -> Capabilities {
        let mut c = self.inner.capabilities();
        if self.keys.is_some() {
            c.part_copies += 1;
        }
        c
    }

    async fn put_opts(&self, key: &Key, data: Bytes, mut opts: PutOptions) -> Result<PutResult> {
        check_reserved(&opts, key).map_err(|e| e.with_store(self))?;
        let Some((id, k)) = self.write_key(key, &opts)? else {
            // Not encrypted after all (a per-put hint): the compressed content's plain digest.
            let compressed = opts
                .metadata
                .contains_key(super::compress::COMPRESSION_META);
            if let (true, Some(sha)) = (
                compressed && !opts.metadata.contains_key(CONTENT_DIGEST_META),
                opts.layer_hints
                    .get(CONTENT_SHA256_HINT)
                    .and_then(|s| parse_sha(s)),
            ) {
                let d = DigestScheme::Sha256.digest_of(&sha);
                set_layer_meta(&mut opts, CONTENT_DIGEST_META, d);
            }
            return self.inner.put_opts(key, data, opts).await;
        };
        let above = opts
            .layer_hints
            .remove(CONTENT_SHA256_HINT)
            .and_then(|s| parse_sha(&s));
        // Off the async workers; the content is hashed here only if no layer above did.
        let (sealed, sha) = cpu(data.len(), move || {
            let sha = above.unwrap_or_else(|| Sha256::digest(&data).into());
            Ok((encrypt_bytes(&k, &data)?, sha))
        })
        .await
        .map_err(|e| self.err(e, "put", key))?;
        let digest = digest_scheme_for(&id, &k).digest_of(&sha);
        set_layer_meta(&mut opts, CONTENT_DIGEST_META, digest);
        set_layer_meta(&mut opts, ENCRYPTION_META, ALGORITHM);
        set_layer_meta(&mut opts, KEY_ID_META, id.0);
        self.inner.put_opts(key, sealed.into(), opts).await
    }

    async fn put_multipart_opts(
        &self,
        key: &Key,
        mut opts: PutOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        check_reserved(&opts, key).map_err(|e| e.with_store(self))?;
        let Some((id, k)) = self.write_key(key, &opts)? else {
            return self.inner.put_multipart_opts(key, opts).await;
        };
        set_layer_meta(&mut opts, ENCRYPTION_META, ALGORITHM);
        set_layer_meta(&mut opts, KEY_ID_META, id.0.clone());
        let caps = self.inner.capabilities();
        let above = opts.layer_hints.remove(CONTENT_SHA256_HINT);
        let hasher = (above.as_deref() != Some(CONTENT_SHA256_TRAILING)).then(Sha256::new);
        let scheme = digest_scheme_for(&id, &k);
        let inner = self.inner.put_multipart_opts(key, opts).await?;
        Ok(Box::new(EncryptUpload {
            parts: Rechunk::new(inner, &caps),
            enc: Some(Encryptor::new(&k)),
            hasher,
            sha_above: None,
            scheme,
            key: key.clone(),
        }))
    }

    async fn get_opts(&self, key: &Key, opts: GetOptions) -> Result<GetResult> {
        if opts.raw {
            return self.inner.get_opts(key, opts).await;
        }
        if let Some(range) = opts.range.clone() {
            if self.keys.is_some() {
                return self.get_range(key, opts, range).await;
            }
        }
        // Without a key a ranged read can only succeed on plaintext: ask for it as given.
        let mut r = self.inner.get_opts(key, opts).await?;
        if !is_encrypted(&r.meta) {
            return Ok(r);
        }
        let k = self.read_key(key, &r.meta)?;
        let stored = r.meta.size;
        let (segments, plain, last_len) =
            layout(stored).ok_or_else(|| self.bad_size(key, stored))?;
        r.meta.size = plain;
        r.range = 0..plain;
        r.verified_sha256 = None;
        r.body = pump(
            r.body,
            Decrypt::new(
                k,
                None,
                (0, segments),
                segments,
                last_len,
                Ctx::new(self, key),
            ),
        );
        Ok(r)
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        let mut m = self.inner.head(key).await?;
        if is_encrypted(&m) {
            m.size = plaintext_len(m.size).unwrap_or(m.size);
        }
        Ok(m)
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        self.inner.delete(key).await
    }

    fn delete_stream<'a>(&'a self, keys: BoxStream<'a, Key>) -> BoxStream<'a, (Key, Result<()>)> {
        self.inner.delete_stream(keys)
    }

    fn list(&self, opts: ListOptions) -> BoxStream<'static, Result<ListEntry>> {
        // A listing has no metadata: with a key set, objects are probably encrypted, so their
        // listed (stored) sizes are not the logical ones. Without one, stored = logical is assumed;
        // an encrypted object is recognised at head or get.
        let inner = self.inner.list(opts);
        if self.keys.is_none() {
            return inner;
        }
        sizes_unknown(inner)
    }

    async fn copy_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, opts).await
    }

    async fn rename_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        // The stored bytes do not depend on the key, so they move as they are.
        self.inner.rename_opts(from, to, opts).await
    }

    async fn health_check(&self) -> Result<()> {
        self.inner.health_check().await
    }

    fn server_side(&self) -> Option<crate::server_side::ServerSide> {
        let s = self.inner.server_side()?;
        Some(match self.keys {
            Some(_) => s.transformed_by("encryption"),
            None => s,
        })
    }

    fn digest_scheme(&self) -> crate::digest::DigestScheme {
        match self.keys.as_ref().map(|p| p.key(None)) {
            Some(Ok((id, k))) => digest_scheme_for(&id, &k),
            _ => self.inner.digest_scheme(),
        }
    }
}
