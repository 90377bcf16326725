//! Client-side encryption: AES-256-GCM as a chunked streaming AEAD.
//!
//! **Format `aes-256-gcm-stream-v1`** (the STREAM construction, as in Tink and age):
//!
//! ```text
//! header   = "CAIRNENC" ‖ version 0x01 ‖ salt (32 B, random) ‖ nonce prefix (7 B, random)  (48 B)
//! subkey   = HKDF-SHA256(ikm = key, salt, info = "cairn aes-256-gcm-stream-v1" ‖ nonce prefix)
//! segment  = AES-256-GCM(subkey, nonce = prefix ‖ index (u32 BE) ‖ last (0x00|0x01), plaintext)
//! object   = header ‖ segment 0 ‖ … ‖ segment n-1          (64 KiB plaintext per segment)
//! ```
//!
//! - Every segment is authenticated before its plaintext is released. The index in the nonce
//!   authenticates order; the last-flag authenticates the end, so a truncated, extended or
//!   reordered object fails with [`ErrorKind::Integrity`]. An empty object is one empty final
//!   segment; a multiple of 64 KiB ends with a full final segment.
//! - A fresh salt per object gives each object its own subkey, so random nonce prefixes never
//!   need to be unique across objects. The object key is not bound in, so server-side copies
//!   and renames keep working.
//! - Memory is one segment plus the inner stream's chunk, whatever the object's size.
//! - Metadata: `cairn-encryption` = `aes-256-gcm-stream-v1`, `cairn-key-id` = the key's id.
//!   The logical size follows from the stored size (no metadata needed).
//! - Keys come from a [`KeyProvider`]: `env:VAR` ([`EnvKeyProvider`]) or `file:PATH`
//!   ([`FileKeyProvider`]), 32 bytes as hex or base64 (a file may also hold 32 raw bytes). A key
//!   id is a fingerprint of the key (`k1-` and 16 hex digits of a SHA-256), never the key.
//! - Errors: a key whose id differs from the object's, or any authentication failure, is
//!   "decryption failed: wrong key or corrupt data" ([`ErrorKind::Integrity`]); reading an
//!   encrypted object from a store opened without a key is [`ErrorKind::PermissionDenied`] with
//!   "this object is encrypted with key id X; set encryption_key".
//! - **Ranged reads** decrypt only the segments the range touches (two requests: the header,
//!   then the segments, pinned to one version by ETag where the store supports it).

use super::stack::{
    check_reserved, join_parts, pump, set_layer_meta, sizes_unknown, Ctx, Decode, Rechunk, Window,
};
use super::Layer;
use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::store::*;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use async_trait::async_trait;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Metadata name of the format.
pub const ENCRYPTION_META: &str = "cairn-encryption";
/// Metadata name of the key id.
pub const KEY_ID_META: &str = "cairn-key-id";
/// The format this layer writes.
pub const ALGORITHM: &str = "aes-256-gcm-stream-v1";
/// Plaintext bytes per segment.
pub const SEGMENT: usize = 64 * 1024;
/// Bytes of the header at the start of every encrypted object.
pub const HEADER_LEN: usize = 48;

const MAGIC: &[u8; 8] = b"CAIRNENC";
const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
const CT_SEGMENT: usize = SEGMENT + TAG_LEN;
const INFO: &[u8] = b"cairn aes-256-gcm-stream-v1";
const WRONG_KEY: &str = "decryption failed: wrong key or corrupt data";

/// A key's id: a fingerprint, safe to store and print.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(pub String);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of a 256-bit key: `k1-` and the first 16 hex digits of SHA-256("cairn key id" ‖ key).
pub fn key_id(key: &[u8; 32]) -> KeyId {
    let mut h = Sha256::new();
    h.update(b"cairn key id\0");
    h.update(key);
    KeyId(format!("k1-{}", &hex::encode(h.finalize())[..16]))
}

/// Where keys come from. Env and file providers hold one key; a KMS provider would look keys
/// up by id.
pub trait KeyProvider: Send + Sync + fmt::Debug {
    /// The key to write with (`id` = None), or the key for an object written with `id`.
    /// Providers with one key return it for any id; the layer compares ids.
    fn key(&self, id: Option<&str>) -> Result<(KeyId, [u8; 32])>;
}

/// One fixed key, for programs that hold the key themselves.
pub struct StaticKeyProvider {
    key: [u8; 32],
    id: KeyId,
}

impl StaticKeyProvider {
    /// A provider of `key`.
    pub fn new(key: [u8; 32]) -> Self {
        StaticKeyProvider {
            id: key_id(&key),
            key,
        }
    }
}

impl fmt::Debug for StaticKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StaticKeyProvider({})", self.id)
    }
}

impl KeyProvider for StaticKeyProvider {
    fn key(&self, _id: Option<&str>) -> Result<(KeyId, [u8; 32])> {
        Ok((self.id.clone(), self.key))
    }
}

/// The key in an environment variable (`env:VAR`), read once when the provider is made.
pub struct EnvKeyProvider {
    var: String,
    inner: StaticKeyProvider,
}

impl EnvKeyProvider {
    /// Reads `var`: 32 bytes as 64 hex digits or base64.
    pub fn new(var: &str) -> Result<Self> {
        let v = std::env::var(var).map_err(|_| {
            Error::invalid(format!("encryption_key env:{var}: the variable is not set"))
                .with_hint("export it with a 32-byte key as 64 hex digits or base64")
        })?;
        let key = parse_key(v.as_bytes(), false)
            .map_err(|why| Error::invalid(format!("encryption_key env:{var}: {why}")))?;
        Ok(EnvKeyProvider {
            var: var.to_string(),
            inner: StaticKeyProvider::new(key),
        })
    }
}

impl fmt::Debug for EnvKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnvKeyProvider(env:{}, {})", self.var, self.inner.id)
    }
}

impl KeyProvider for EnvKeyProvider {
    fn key(&self, id: Option<&str>) -> Result<(KeyId, [u8; 32])> {
        self.inner.key(id)
    }
}

/// The key in a file (`file:PATH`), read once when the provider is made.
pub struct FileKeyProvider {
    path: PathBuf,
    inner: StaticKeyProvider,
}

impl FileKeyProvider {
    /// Reads `path`: 32 raw bytes, or 32 bytes as 64 hex digits or base64.
    pub fn new(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let raw = std::fs::read(&path).map_err(|e| {
            Error::from(e).with_hint(format!(
                "encryption_key file:{}: cannot read the file",
                path.display()
            ))
        })?;
        let key = parse_key(&raw, true).map_err(|why| {
            Error::invalid(format!("encryption_key file:{}: {why}", path.display()))
        })?;
        Ok(FileKeyProvider {
            path,
            inner: StaticKeyProvider::new(key),
        })
    }
}

impl fmt::Debug for FileKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FileKeyProvider(file:{}, {})",
            self.path.display(),
            self.inner.id
        )
    }
}

impl KeyProvider for FileKeyProvider {
    fn key(&self, id: Option<&str>) -> Result<(KeyId, [u8; 32])> {
        self.inner.key(id)
    }
}

/// Parses 32 bytes from 64 hex digits or base64 (or, if `raw_ok`, exactly 32 raw bytes).
/// The error never repeats the input.
fn parse_key(input: &[u8], raw_ok: bool) -> std::result::Result<[u8; 32], String> {
    let text = std::str::from_utf8(input).map(str::trim).unwrap_or("");
    let mut key = [0u8; 32];
    if text.len() == 64 && hex::decode_to_slice(text, &mut key).is_ok() {
        return Ok(key);
    }
    let mut decoded_len = None;
    for engine in [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE,
    ] {
        match engine.decode(text) {
            Ok(b) if b.len() == 32 => {
                key.copy_from_slice(&b);
                return Ok(key);
            }
            Ok(b) if !text.is_empty() => decoded_len = Some(b.len()),
            _ => {}
        }
    }
    if raw_ok && input.len() == 32 {
        key.copy_from_slice(input);
        return Ok(key);
    }
    if let Some(n) = decoded_len {
        return Err(format!("the key decodes to {n} bytes; it must be 32 bytes"));
    }
    Err(
        "the key must be 32 bytes, written as 64 hex digits or base64 \
         (e.g. `openssl rand -base64 32`)"
            .into(),
    )
}

/// Parses an `encryption_key` setting: `env:VAR` or `file:PATH`.
pub fn key_provider(spec: &str) -> Result<Arc<dyn KeyProvider>> {
    let spec = spec.trim();
    if let Some(var) = spec.strip_prefix("env:") {
        return Ok(Arc::new(EnvKeyProvider::new(var)?));
    }
    if let Some(path) = spec.strip_prefix("file:") {
        return Ok(Arc::new(FileKeyProvider::new(path)?));
    }
    Err(
        Error::invalid("encryption_key must be env:VAR or file:PATH")
            .with_hint("keys are never written in config; put the key in a variable or a file"),
    )
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    for p in parts {
        inner.update(p);
    }
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// HKDF-SHA256 (RFC 5869) for one 32-byte output block.
fn hkdf32(salt: &[u8], ikm: &[u8], info: &[&[u8]]) -> [u8; 32] {
    let prk = hmac(salt, &[ikm]);
    let mut parts: Vec<&[u8]> = info.to_vec();
    parts.push(&[1u8]);
    hmac(&prk, &parts)
}

struct Header {
    salt: [u8; 32],
    prefix: [u8; 7],
}

impl Header {
    fn random() -> Self {
        Header {
            salt: rand::random(),
            prefix: rand::random(),
        }
    }
    fn bytes(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..8].copy_from_slice(MAGIC);
        h[8] = VERSION;
        h[9..41].copy_from_slice(&self.salt);
        h[41..48].copy_from_slice(&self.prefix);
        h
    }
    fn parse(b: &[u8]) -> std::result::Result<Self, &'static str> {
        if b.len() < HEADER_LEN || &b[..8] != MAGIC {
            return Err("not an encrypted cairn object (bad header)");
        }
        if b[8] != VERSION {
            return Err("encrypted with an unknown format version");
        }
        Ok(Header {
            salt: b[9..41].try_into().unwrap(),
            prefix: b[41..48].try_into().unwrap(),
        })
    }
    fn cipher(&self, key: &[u8; 32]) -> Aes256Gcm {
        let sub = hkdf32(&self.salt, key, &[INFO, &self.prefix]);
        Aes256Gcm::new((&sub).into())
    }
}

fn nonce(prefix: &[u8; 7], index: u64, last: bool) -> Option<[u8; 12]> {
    let i = u32::try_from(index).ok()?;
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&i.to_be_bytes());
    n[11] = last as u8;
    Some(n)
}

/// Stored bytes for `plain` bytes of plaintext.
pub fn ciphertext_len(plain: u64) -> u64 {
    let segments = plain.div_ceil(SEGMENT as u64).max(1);
    HEADER_LEN as u64 + plain + segments * TAG_LEN as u64
}

/// Segment layout of a stored object of `stored` bytes: (segments, plaintext bytes, stored
/// length of the last segment), or None if no encrypted object has that size.
fn layout(stored: u64) -> Option<(u64, u64, usize)> {
    let c = stored.checked_sub(HEADER_LEN as u64)?;
    let (full, rem) = (c / CT_SEGMENT as u64, (c % CT_SEGMENT as u64) as usize);
    match rem {
        0 if full > 0 => Some((full, full * SEGMENT as u64, CT_SEGMENT)),
        0 => None,
        r if r < TAG_LEN => None,
        r => Some((full + 1, full * SEGMENT as u64 + (r - TAG_LEN) as u64, r)),
    }
}

/// Plaintext bytes of an encrypted object of `stored` bytes, if that size is possible.
pub fn plaintext_len(stored: u64) -> Option<u64> {
    layout(stored).map(|(_, p, _)| p)
}

/// Encrypts a stream: push plaintext, take ciphertext; the last segment waits for `finish`.
pub struct Encryptor {
    cipher: Aes256Gcm,
    prefix: [u8; 7],
    index: u64,
    buf: Vec<u8>,
    header: Option<[u8; HEADER_LEN]>,
}

impl fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encryptor")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl Encryptor {
    /// A new stream under `key`, with a fresh salt and nonce prefix.
    pub fn new(key: &[u8; 32]) -> Self {
        let h = Header::random();
        Encryptor {
            cipher: h.cipher(key),
            prefix: h.prefix,
            index: 0,
            buf: Vec::new(),
            header: Some(h.bytes()),
        }
    }

    fn seal(&mut self, plain: &[u8], last: bool, out: &mut Vec<u8>) -> Result<()> {
        let n = nonce(&self.prefix, self.index, last)
            .ok_or_else(|| Error::invalid("object too large to encrypt (over 2^32 segments)"))?;
        let start = out.len();
        out.extend_from_slice(plain);
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&n), b"", &mut out[start..])
            .map_err(|_| Error::new(ErrorKind::Unexpected, "encryption failed"))?;
        out.extend_from_slice(&tag);
        self.index += 1;
        Ok(())
    }

    /// Encrypts what full segments `data` completes; returns the ciphertext produced.
    pub fn push(&mut self, mut data: &[u8]) -> Result<Vec<u8>> {
        let mut out =
            Vec::with_capacity(data.len() + data.len() / SEGMENT * TAG_LEN + HEADER_LEN + TAG_LEN);
        if let Some(h) = self.header.take() {
            out.extend_from_slice(&h);
        }
        // A segment is sealed as not-last only once a byte after it is known to exist.
        if !self.buf.is_empty() {
            let take = (SEGMENT - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if data.is_empty() {
                return Ok(out);
            }
            let seg = std::mem::take(&mut self.buf);
            self.seal(&seg, false, &mut out)?;
        }
        while data.len() > SEGMENT {
            self.seal(&data[..SEGMENT], false, &mut out)?;
            data = &data[SEGMENT..];
        }
        self.buf.extend_from_slice(data);
        Ok(out)
    }

    /// Seals the last segment; returns the rest of the ciphertext.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.buf.len() + HEADER_LEN + TAG_LEN);
        if let Some(h) = self.header.take() {
            out.extend_from_slice(&h);
        }
        let seg = std::mem::take(&mut self.buf);
        self.seal(&seg, true, &mut out)?;
        Ok(out)
    }
}

/// Encrypts a whole buffer.
pub fn encrypt_bytes(key: &[u8; 32], data: &[u8]) -> Result<Vec<u8>> {
    let mut e = Encryptor::new(key);
    let mut out = e.push(data)?;
    out.extend(e.finish()?);
    Ok(out)
}

/// Decrypts a whole buffer written by [`encrypt_bytes`] or the layer.
pub fn decrypt_bytes(key: &[u8; 32], data: &[u8]) -> Result<Vec<u8>> {
    let ctx = Ctx {
        store: String::new(),
        key: String::new(),
    };
    let (n, _, last_len) = layout(data.len() as u64)
        .ok_or_else(|| ctx.err(ErrorKind::Integrity, "encrypted object is truncated"))?;
    let mut d = Decrypt::new(*key, None, (0, n), n, last_len, ctx);
    d.push(Bytes::copy_from_slice(data))?;
    let mut out = Vec::new();
    while let Some(c) = d.next_chunk()? {
        out.extend_from_slice(&c);
    }
    while let Some(c) = d.finish_chunk()? {
        out.extend_from_slice(&c);
    }
    Ok(out)
}

/// Opens segments `index..end` of an object of `segments` segments (reading the header first
/// if `cipher` is None).
struct Decrypt {
    key: [u8; 32],
    cipher: Option<(Aes256Gcm, [u8; 7])>,
    index: u64,
    end: u64,
    segments: u64,
    last_len: usize,
    buf: BytesMut,
    ctx: Ctx,
}

impl Decrypt {
    fn new(
        key: [u8; 32],
        cipher: Option<(Aes256Gcm, [u8; 7])>,
        (index, end): (u64, u64),
        segments: u64,
        last_len: usize,
        ctx: Ctx,
    ) -> Self {
        Decrypt {
            key,
            cipher,
            index,
            end,
            segments,
            last_len,
            buf: BytesMut::new(),
            ctx,
        }
    }
}

impl Decode for Decrypt {
    fn push(&mut self, input: Bytes) -> Result<()> {
        self.buf.extend_from_slice(&input);
        Ok(())
    }
    fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        if self.cipher.is_none() {
            if self.buf.len() < HEADER_LEN {
                return Ok(None);
            }
            let h = Header::parse(&self.buf[..HEADER_LEN])
                .map_err(|why| self.ctx.err(ErrorKind::Integrity, why))?;
            let _ = self.buf.split_to(HEADER_LEN);
            self.cipher = Some((h.cipher(&self.key), h.prefix));
        }
        if self.index >= self.end {
            if !self.buf.is_empty() {
                return Err(self.ctx.err(
                    ErrorKind::Integrity,
                    "encrypted object has bytes after its last segment",
                ));
            }
            return Ok(None);
        }
        let last = self.index + 1 == self.segments;
        let len = if last { self.last_len } else { CT_SEGMENT };
        if self.buf.len() < len {
            return Ok(None);
        }
        let mut seg = self.buf.split_to(len);
        let (cipher, prefix) = self.cipher.as_ref().expect("header parsed");
        let n = nonce(prefix, self.index, last).ok_or_else(|| {
            self.ctx
                .err(ErrorKind::Integrity, "segment index out of range")
        })?;
        let tag = seg.split_off(len - TAG_LEN);
        cipher
            .decrypt_in_place_detached(Nonce::from_slice(&n), b"", &mut seg, Tag::from_slice(&tag))
            .map_err(|_| {
                self.ctx.err(
                    ErrorKind::Integrity,
                    format!("{WRONG_KEY} (segment {})", self.index),
                )
            })?;
        self.index += 1;
        Ok(Some(seg.freeze()))
    }
    fn finish_chunk(&mut self) -> Result<Option<Bytes>> {
        if let Some(c) = self.next_chunk()? {
            return Ok(Some(c));
        }
        if self.cipher.is_none() || self.index < self.end {
            return Err(self
                .ctx
                .err(ErrorKind::Integrity, "encrypted object is truncated"));
        }
        Ok(None)
    }
}

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
            meta,
            range: want,
            body: pump(r.body, window),
        })
    }
}

struct EncryptUpload {
    parts: Rechunk,
    enc: Option<Encryptor>,
    key: Key,
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
        match self.enc.as_mut().expect("upload not finished").push(&data) {
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
        self.parts.inner.complete().await
    }
    async fn abort(&mut self) -> Result<()> {
        self.parts.inner.abort().await
    }
    fn add_trailing_metadata(&mut self, metadata: Metadata) {
        self.parts.inner.add_trailing_metadata(metadata);
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: Store> Store for EncryptStore<S> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn put_opts(&self, key: &Key, data: Bytes, mut opts: PutOptions) -> Result<PutResult> {
        check_reserved(&opts, key).map_err(|e| e.with_store(self))?;
        let Some((id, k)) = self.write_key(key, &opts)? else {
            return self.inner.put_opts(key, data, opts).await;
        };
        let sealed = encrypt_bytes(&k, &data).map_err(|e| self.err(e, "put", key))?;
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
        set_layer_meta(&mut opts, KEY_ID_META, id.0);
        let caps = self.inner.capabilities();
        let inner = self.inner.put_multipart_opts(key, opts).await?;
        Ok(Box::new(EncryptUpload {
            parts: Rechunk::new(inner, &caps),
            enc: Some(Encryptor::new(&k)),
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

    async fn health_check(&self) -> Result<()> {
        self.inner.health_check().await
    }

    fn digest_scheme(&self) -> crate::digest::DigestScheme {
        self.inner.digest_scheme()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hkdf_matches_rfc5869_case_1() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let okm = hkdf32(&salt, &ikm, &[&info]);
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
    }

    #[test]
    fn layout_inverts_ciphertext_len() {
        for p in [
            0u64, 1, 15, 16, 17, 65535, 65536, 65537, 131071, 131072, 131073, 10_000_000,
        ] {
            let s = ciphertext_len(p);
            assert_eq!(plaintext_len(s), Some(p), "plain {p}");
            assert_eq!(
                encrypt_bytes(&[7; 32], &vec![1u8; p as usize])
                    .unwrap()
                    .len() as u64,
                s
            );
        }
        assert_eq!(plaintext_len(HEADER_LEN as u64 + 15), None);
        assert_eq!(plaintext_len(10), None);
    }

    #[test]
    fn keys_parse_from_hex_base64_and_raw() {
        let k = [0xabu8; 32];
        assert_eq!(parse_key(hex::encode(k).as_bytes(), false).unwrap(), k);
        let b64 = base64::engine::general_purpose::STANDARD.encode(k);
        assert_eq!(parse_key(format!("{b64}\n").as_bytes(), false).unwrap(), k);
        assert!(parse_key(&k, false).is_err());
        assert_eq!(parse_key(&k, true).unwrap(), k);
        let e = parse_key(b"c2hvcnQ=", false).unwrap_err();
        assert!(e.contains("5 bytes"), "{e}");
        assert!(!e.contains("c2hvcnQ"), "never echoes the key: {e}");
    }
}
