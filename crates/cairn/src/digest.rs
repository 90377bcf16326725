//! Content digests: what sync and `--checksum` compare, surviving compression and encryption.
//!
//! The checksum layer's `cairn-sha256` covers the *stored* bytes. Once a layer transforms them
//! (compression, encryption) two stores holding the same content store different bytes, so the
//! outermost transforming layer records a digest of the *content* in `cairn-content-digest`:
//! - `sha256:<hex>`: the SHA-256 of the content, for objects that are not encrypted;
//! - `hmac-sha256:<key id>:<hex>`: HMAC-SHA256 under a key derived from the encryption key, of
//!   the content's SHA-256, for encrypted objects. A plaintext hash in clear metadata would let
//!   anyone who can read metadata confirm a guess of the content; the keyed digest does not.
//!
//! An untransformed object needs no separate record: its content digest is `sha256:` of its
//! stored SHA-256. A store says which digest it records ([`DigestScheme`], from
//! [`Store::digest_scheme`](crate::Store::digest_scheme)), so a caller with the content's
//! SHA-256 (a local file it hashed) computes the same string and compares.

use std::fmt;

/// Metadata name of the content digest (see the module docs).
pub const CONTENT_DIGEST_META: &str = "cairn-content-digest";

/// How a store turns a content SHA-256 into the digest it records.
#[derive(Clone, Default)]
pub enum DigestScheme {
    /// `sha256:<hex>` of the content.
    #[default]
    Sha256,
    /// `hmac-sha256:<key id>:<hex>`: HMAC-SHA256 of the content's SHA-256 under `key`.
    HmacSha256 {
        /// Id of the encryption key the digest key derives from.
        key_id: String,
        /// The derived digest key (never the encryption key itself).
        key: [u8; 32],
    },
}

impl fmt::Debug for DigestScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigestScheme::Sha256 => f.write_str("Sha256"),
            DigestScheme::HmacSha256 { key_id, .. } => f
                .debug_struct("HmacSha256")
                .field("key_id", key_id)
                .field("key", &"***")
                .finish(),
        }
    }
}

impl DigestScheme {
    /// The digest string recorded for content whose SHA-256 is `sha256`.
    pub fn digest_of(&self, sha256: &[u8; 32]) -> String {
        match self {
            DigestScheme::Sha256 => format!("sha256:{}", hex::encode(sha256)),
            DigestScheme::HmacSha256 { key_id, key } => {
                use hmac::{Mac, SimpleHmac};
                let mut mac = <SimpleHmac<sha2::Sha256> as Mac>::new_from_slice(key)
                    .expect("HMAC takes keys of any length");
                mac.update(sha256);
                let tag = mac.finalize().into_bytes();
                format!("hmac-sha256:{key_id}:{}", hex::encode(tag))
            }
        }
    }
}

/// The content digest of an object described by `meta`, if one is known: the recorded
/// `cairn-content-digest`, or for an untransformed object `sha256:` of its stored SHA-256.
pub fn content_digest(meta: &crate::ObjectMeta) -> Option<String> {
    if let Some(d) = meta.layer_meta.get(CONTENT_DIGEST_META) {
        return Some(d.clone());
    }
    if meta.is_transformed() {
        return None;
    }
    crate::transfer::recorded_sha256(meta).map(|d| DigestScheme::Sha256.digest_of(&d))
}
