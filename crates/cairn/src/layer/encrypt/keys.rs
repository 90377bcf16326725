//! Key providers: where the 256-bit key comes from, and its printable id.
//!
//! `env:VAR` ([`EnvKeyProvider`]) or `file:PATH` ([`FileKeyProvider`]), 32 bytes as hex or
//! base64 (a file may also hold 32 raw bytes). A key id is a fingerprint of the key (`k1-` and
//! 16 hex digits of a SHA-256), never the key.

use crate::error::{Error, Result};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

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

#[cfg(test)]
mod tests {
    use super::*;

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
