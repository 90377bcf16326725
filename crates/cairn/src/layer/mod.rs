//! Layers: generic wrappers that add one concern to any [`Store`](crate::Store).
//!
//! # Order
//!
//! Outermost first: prefix → compress → encrypt → checksum → retry → observe → backend.
//! [`stack::apply`] builds compress → encrypt → checksum over the bare backend;
//! [`crate::open`] puts [`observe`] on the backend and the URL's prefix on top.
//!
//! - **compress before encrypt**: ciphertext does not compress.
//! - **checksum innermost, over the stored bytes**, rather than outermost over the plaintext:
//!   - `cairn verify` and operators can check any object without its key and without
//!     decompressing (a raw read, [`GetOptions::raw`](crate::GetOptions::raw));
//!   - the digest is of the very bytes S3 receives, the same thing its `x-amz-checksum-sha256`
//!     checks, so one hash runs from client to disk;
//!   - a SHA-256 of the plaintext in clear metadata would let anyone who can list a bucket
//!     confirm a guess of an encrypted object's content;
//!   - the logical content stays covered end to end: with neither compression nor encryption
//!     (the default) the stored bytes *are* the content; zstd frames carry a content checksum
//!     and gzip a CRC-32, checked on every decompression; AES-GCM authenticates every segment,
//!     their order and the end of the stream.
//! - **prefix outermost**: layers sit on the bare backend, so the checksum manifests of a
//!   bucket or root live in one place, whatever prefix a URL names.
//!
//! # Metadata
//!
//! Names starting with `cairn-` ([`RESERVED_META_PREFIX`](crate::RESERVED_META_PREFIX)) belong to
//! the layers: `cairn-sha256`, `cairn-manifest`, `cairn-compression`, `cairn-size`,
//! `cairn-frames`, `cairn-content-digest`, `cairn-encryption`, `cairn-key-id`. Backends hand them
//! back in [`ObjectMeta::layer_meta`](crate::ObjectMeta::layer_meta), apart from the user's
//! `metadata`, and the typed accessors read them; a put that sets one is refused with
//! `InvalidInput`. All other metadata passes through every layer unchanged.
//!
//! # Sizes
//!
//! `head` and `get` report the logical size, and `stored_size` apart. A listing has no metadata:
//! through a layer that compresses or encrypts new objects its sizes are stored sizes, marked
//! [`size_known`](crate::ObjectMeta::size_known)` = false`; `StoreExt::resolve_size` completes
//! one with a `head`.

pub mod checksum;
pub mod compress;
pub mod encrypt;
pub mod observe;
pub mod prefix;
pub mod retry;
pub mod stack;
pub mod tier;

pub use checksum::{ChecksumLayer, ChecksumStore, VerifyStatus};
pub use compress::{CompressLayer, CompressStore, Compression};
pub use encrypt::{EncryptLayer, EncryptStore, KeyProvider};
pub use observe::ObservedStore;
pub use prefix::PrefixStore;
pub use retry::{RetryLayer, RetryPolicy, RetryStore};
pub use tier::{TierPolicy, TierStats, TieredStore};

/// Wraps a store in another, tower-style.
pub trait Layer<S> {
    /// The wrapped store.
    type Store;
    /// Wraps `inner`.
    fn layer(&self, inner: S) -> Self::Store;
}
