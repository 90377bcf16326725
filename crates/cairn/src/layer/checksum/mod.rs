//! SHA-256 of every object, recorded on write and verified on every full read.
//!
//! - **What is hashed:** the bytes this layer hands to the store below it. In cairn's stack the
//!   checksum layer sits under compression and encryption, so this is the stored form; with
//!   neither on (the default) it is exactly the user's content. See [`crate::layer`] for why.
//! - **Single puts** carry the digest in metadata: `cairn-sha256` (lowercase hex).
//! - **Multipart uploads** fix metadata before the first byte is seen, so the digest cannot
//!   ride along. The upload is tagged with a random id (`cairn-manifest`), the parts are hashed in
//!   order as they pass, and after the store commits the object a small JSON manifest with the
//!   id, the digest, the size and any trailing metadata of the layers above (the logical size
//!   of a compressed stream) is written to [`manifest_key`]`(key)`. Reads merge the manifest into
//!   the object's metadata only if the ids match, so a manifest left by an older or a racing
//!   upload is never applied to the wrong bytes. This works on every store, needs no
//!   metadata-replacing copy (object_store cannot do one on S3) and no ETag arithmetic.
//!   A crash between commit and manifest leaves the object *unverifiable*, never falsely
//!   corrupt; a reply to the commit lost in transit does not (the object is headed: if it
//!   carries this upload's id, the manifest is written and the put acknowledged). Manifests live under `.cairn-manifests/` at this layer's root: listings hide them,
//!   deletes, copies and renames carry them along, writes to that prefix are refused.
//! - **Multipart uploads also record each part's size and SHA-256** in the manifest (the shape
//!   of S3's composite checksums). Parts hash in the part futures, so on any core.
//! - **Reads go part by part** ([`parts`]): every part a read touches is read whole, checked
//!   against its digest, and only then handed over; a single-put object is one part. On a
//!   mismatch or a body that breaks off the part is read again, [`READS_BEFORE_CORRUPT`] reads
//!   in all, and only a mismatch with the very same bytes on each is an
//!   [`ErrorKind::Integrity`] error (source: [`ChecksumMismatch`]): corruption at rest fails
//!   every read, a fault in transit does not. So a range is as verified as a full read; it
//!   costs the parts it touches (docs/design.md says why). Reads served this way carry
//!   [`GetResult::verified_sha256`], so a download need not read its file back. A part list
//!   that does not add up to the object is Integrity at once (a lost or added part).
//!   Manifests carry their own digest and are read the same way.
//! - **Full reads of single-put objects above [`REREAD_LIMIT`]** stream instead (buffering
//!   them would cost their size): the body is hashed as it streams and its last chunk is
//!   held back until the digest matches; on mismatch the stream ends with an Integrity error
//!   instead of that chunk. Bytes already handed over cannot be taken back, so the caller
//!   (e.g. a download, which verifies and re-fetches) decides.
//! - **Ranges left to a length check:** of objects without a usable part list (multipart
//!   manifests written before parts were recorded, parts over [`PART_BUFFER_LIMIT`], single
//!   puts over [`SINGLE_PUT_RANGE_LIMIT`]), and of compressed or encrypted objects (multipart,
//!   or single puts over [`TRANSFORMED_RANGE_LIMIT`]), whose layers check their own frames. A body shorter or longer than its
//!   range ends with a temporary [`ErrorKind::Network`] error; full reads stream as above; a
//!   download of such an object reads its file back and hashes it.
//! - Objects with no recorded digest (written without cairn, or with `checksum = false`) pass
//!   through; [`verify`] reports them as [`VerifyStatus::Unverifiable`].
//! - **Server checksums:** object_store 0.14 takes no caller-computed digest per request, so
//!   this layer's digest cannot double as the wire check. The S3 backend has object_store send
//!   one per request instead (each part of a multipart upload): CRC64-NVME with unsigned
//!   payloads over https or loopback, else SHA-256 from the SigV4 payload hash (the
//!   `payload_signing` option), so the server rejects a body corrupted in transit.

use super::stack::{check_reserved, pump, set_layer_meta, Ctx};
use super::Layer;
use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::store::*;
use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

mod manifest;
mod parts;
mod read;

use manifest::{ChecksumUpload, PartDigest};
use parts::{PartReader, Source};
pub use parts::{HOLD_LIMIT, PART_BUFFER_LIMIT, SINGLE_PUT_RANGE_LIMIT, TRANSFORMED_RANGE_LIMIT};
pub(crate) use read::reread_on_mismatch;
use read::{length_checked, parse_digest, Verify};

/// Metadata name of the hex SHA-256 digest (single puts; merged from the manifest on reads).
pub const SHA256_META: &str = "cairn-sha256";
/// Metadata name of the upload id that binds a multipart object to its manifest.
pub const MANIFEST_META: &str = "cairn-manifest";
/// Key prefix of the manifests, at the checksum layer's root.
pub const MANIFEST_PREFIX: &str = ".cairn-manifests/";
/// Single-put objects up to this many stored bytes are read whole and verified before any byte
/// is handed over on a full read too (ranges of larger ones are as well: see the module docs).
pub const REREAD_LIMIT: u64 = 1 << 20;
/// Reads of a part (or a small object), in all, before a mismatch is reported as corruption.
pub const READS_BEFORE_CORRUPT: u32 = 3;

/// The manifest of `key`: `.cairn-manifests/<hex SHA-256 of the key>` (fixed length, so any
/// valid key has one).
pub fn manifest_key(key: &Key) -> Key {
    RecordNames::DEFAULT.manifest_key(key)
}

/// The names a checksum layer records under. A second checksum layer in one stack (the
/// tiered store's check of its hot copies, under the user's layers) needs names of its own,
/// or the two would overwrite each other's upload ids and refuse each other's manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordNames {
    /// Metadata name of the hex digest.
    pub sha256: &'static str,
    /// Metadata name of the multipart upload id.
    pub manifest: &'static str,
    /// Key prefix of the manifests.
    pub manifest_prefix: &'static str,
}

impl RecordNames {
    /// The names of cairn's checksum layer: [`SHA256_META`], [`MANIFEST_META`],
    /// [`MANIFEST_PREFIX`].
    pub const DEFAULT: RecordNames = RecordNames {
        sha256: SHA256_META,
        manifest: MANIFEST_META,
        manifest_prefix: MANIFEST_PREFIX,
    };

    /// The manifest of `key` under these names.
    pub fn manifest_key(&self, key: &Key) -> Key {
        let h = hex::encode(Sha256::digest(key.as_str().as_bytes()));
        Key::new(format!("{}{h}", self.manifest_prefix)).expect("manifest keys are valid")
    }

    fn is_manifest(&self, key: &str) -> bool {
        key.starts_with(self.manifest_prefix)
    }
}

/// A stored object whose bytes do not match their recorded digest: the source of the
/// [`ErrorKind::Integrity`] error a verified read ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumMismatch {
    /// The recorded digest, hex.
    pub expected: String,
    /// The digest of the bytes read, hex.
    pub actual: String,
}

impl fmt::Display for ChecksumMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SHA-256 mismatch: recorded {}, read {}",
            self.expected, self.actual
        )
    }
}

impl std::error::Error for ChecksumMismatch {}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyStatus {
    /// The stored bytes match their recorded digest.
    Ok,
    /// They do not.
    Corrupt {
        /// The recorded digest, hex.
        expected: String,
        /// The digest of the bytes read, hex.
        actual: String,
    },
    /// No digest is recorded (written without cairn or with the checksum layer off).
    Unverifiable,
}

/// Reads `key` in full as stored (`GetOptions::raw`, so compression and encryption layers pass
/// the bytes through and no key is needed) and checks it against its recorded digest.
///
/// Works on any stack; put a [`ChecksumStore`] in it (the default) so that digests of
/// multipart objects, kept in manifests, are found.
pub async fn verify(store: &dyn Store, key: &Key) -> Result<VerifyStatus> {
    let opts = GetOptions {
        raw: true,
        ..Default::default()
    };
    let r = match store.get_opts(key, opts).await {
        Ok(r) => r,
        // A small object is verified before get_opts returns.
        Err(e) => {
            return match mismatch_of(&e) {
                Some(m) => Ok(VerifyStatus::Corrupt {
                    expected: m.expected,
                    actual: m.actual,
                }),
                None => Err(e),
            }
        }
    };
    let Some(expected) = r.meta.layer_meta.get(SHA256_META).cloned() else {
        return Ok(VerifyStatus::Unverifiable);
    };
    let mut hasher = Sha256::new();
    let mut body = r.body;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => hasher.update(&c),
            Err(e) => {
                return match mismatch_of(&e) {
                    Some(m) => Ok(VerifyStatus::Corrupt {
                        expected: m.expected,
                        actual: m.actual,
                    }),
                    None => Err(e),
                };
            }
        }
    }
    let actual = hex::encode(hasher.finalize());
    Ok(if actual.eq_ignore_ascii_case(&expected) {
        VerifyStatus::Ok
    } else {
        VerifyStatus::Corrupt { expected, actual }
    })
}

/// The digest mismatch behind an `Integrity` error, if that is what it is.
fn mismatch_of(e: &Error) -> Option<ChecksumMismatch> {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<ChecksumMismatch>())
        .cloned()
}

/// The `layer_hints` entry with the SHA-256 (hex) of a single put's body, computed in this
/// process by a checksum layer above. Hints never come from storage, unlike metadata.
pub(crate) const BODY_SHA256_HINT: &str = "cairn.body-sha256";

/// Records a SHA-256 of every object and verifies it on every full read (see the module docs).
#[derive(Debug)]
pub struct ChecksumStore<S> {
    inner: Arc<S>,
    names: RecordNames,
}

/// Builds [`ChecksumStore`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChecksumLayer;

impl<S: Store> Layer<S> for ChecksumLayer {
    type Store = ChecksumStore<S>;
    fn layer(&self, inner: S) -> ChecksumStore<S> {
        ChecksumStore::new(inner)
    }
}

impl<S: Store> ChecksumStore<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self::with_names(inner, RecordNames::DEFAULT)
    }

    /// Wraps `inner`, recording under `names` instead of the default ones.
    pub fn with_names(inner: S, names: RecordNames) -> Self {
        ChecksumStore {
            inner: Arc::new(inner),
            names,
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// [`verify`] through this store.
    pub async fn verify(&self, key: &Key) -> Result<VerifyStatus> {
        verify(self, key).await
    }

    fn refuse_reserved(&self, op: &'static str, key: &Key) -> Result<()> {
        if self.names.is_manifest(key.as_str()) {
            return Err(Error::invalid(format!(
                "keys under `{}` hold the checksum layer's manifests",
                self.names.manifest_prefix
            ))
            .with_operation(op)
            .with_store(self)
            .with_key(key.as_str())
            .with_hint("choose another key; nothing was changed"));
        }
        Ok(())
    }

    /// A get from the store below, with the manifest merged; also the manifest's part list.
    async fn fetch(
        &self,
        key: &Key,
        opts: GetOptions,
    ) -> Result<(GetResult, Option<Vec<PartDigest>>)> {
        let mut r = self.inner.get_opts(key, opts).await?;
        let parts = self
            .merge_manifest(key, &mut r.meta)
            .await
            .map_err(|e| e.with_operation("get"))?;
        Ok((r, parts))
    }

    /// The recorded digest to check this read against, unless a layer below vouched for it.
    fn to_verify(&self, r: &GetResult) -> Option<String> {
        let d = r.meta.layer_meta.get(self.names.sha256)?;
        let vouched = r
            .verified_sha256
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case(d.trim()));
        (!vouched).then(|| d.clone())
    }
}

impl<S: Store> fmt::Display for ChecksumStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.inner, f)
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: Store> Store for ChecksumStore<S> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn put_opts(&self, key: &Key, data: Bytes, mut opts: PutOptions) -> Result<PutResult> {
        self.refuse_reserved("put", key)?;
        check_reserved(&opts, key).map_err(|e| e.with_store(self))?;
        // A checksum layer above (the tier's hot copies sit under the user's) hashed these
        // very bytes in this process: reuse its digest rather than hash again.
        // cairn's own layer (default names) is the top one and always hashes.
        let above = opts
            .layer_hints
            .get(BODY_SHA256_HINT)
            .filter(|_| self.names != RecordNames::DEFAULT);
        let digest = match above {
            Some(d) => d.clone(),
            None => hex::encode(Sha256::digest(&data)),
        };
        opts.layer_hints
            .insert(BODY_SHA256_HINT.to_string(), digest.clone());
        set_layer_meta(&mut opts, self.names.sha256, digest);
        self.inner.put_opts(key, data, opts).await
    }

    async fn put_multipart_opts(
        &self,
        key: &Key,
        mut opts: PutOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.refuse_reserved("put", key)?;
        check_reserved(&opts, key).map_err(|e| e.with_store(self))?;
        let id = hex::encode(rand::random::<[u8; 16]>());
        set_layer_meta(&mut opts, self.names.manifest, id.clone());
        let inner = self.inner.put_multipart_opts(key, opts).await?;
        Ok(Box::new(ChecksumUpload {
            store: self.inner.clone(),
            names: self.names,
            inner,
            key: key.clone(),
            id,
            hasher: Sha256::new(),
            size: 0,
            trailing: Metadata::new(),
            parts: Default::default(),
        }))
    }

    async fn get_opts(&self, key: &Key, opts: GetOptions) -> Result<GetResult> {
        let (mut r, parts) = self.fetch(key, opts.clone()).await?;
        let ctx = Ctx::new(self, key);
        let full = r.range.start == 0 && r.range.end == r.meta.size;
        let Some(d) = self.to_verify(&r) else {
            let len = r.range.end - r.range.start;
            r.body = length_checked(r.body, len, ctx);
            return Ok(r);
        };
        // A full read of a large single-put object streams under the whole digest (buffering
        // it would cost its size in memory); everything else goes part by part.
        let size = r.meta.size;
        if let Some(p) = &parts {
            // The manifest belongs to this very upload, so parts that do not add up to the
            // object mean a part was lost or added at rest, not in transit.
            let sum: u64 = p.iter().map(|p| p.size).sum();
            if sum != size {
                return Err(ctx.err(
                    ErrorKind::Integrity,
                    format!(
                        "the object holds {size} bytes but its manifest records {} parts \
                         adding up to {sum}",
                        p.len()
                    ),
                ));
            }
        }
        // Compressed or encrypted objects are read through frames (a seek table, then the
        // frames a range needs), which follow neither the parts nor the object: checking the
        // parts around each would read up to two parts per range and double a download's
        // memory, and a single put would be read whole per range. So their partial ranges
        // are left to those layers' own frame checks (zstd checksums, gzip CRCs, AES-GCM
        // tags), except for small objects.
        let transformed_range = !full
            && r.meta.is_transformed()
            && size > REREAD_LIMIT
            && (parts.is_some() || size > TRANSFORMED_RANGE_LIMIT);
        let spans = match (&parts, full) {
            (None, true) if size > REREAD_LIMIT => None,
            _ if transformed_range => None,
            _ => parts::spans(size, &d, parts.as_deref()),
        };
        let Some(spans) = spans else {
            if full {
                let expected = parse_digest(self.names.sha256, &d, &ctx)?;
                let v = Verify {
                    hasher: Sha256::new(),
                    expected,
                    queue: VecDeque::new(),
                    checked: false,
                    ctx,
                };
                r.body = pump(r.body, v);
            } else {
                // No usable part list (a manifest from before parts were recorded, or a part
                // too large to hold): checked for length only. Downloads read such objects
                // back and hash them.
                let len = r.range.end - r.range.start;
                r.body = length_checked(r.body, len, ctx);
            }
            return Ok(r);
        };
        let want = r.range.clone();
        let spans = PartReader::<S>::covering(spans, &want);
        let pin = match (&opts.if_match, self.inner.capabilities().conditional_get) {
            (Some(m), _) => Some(m.clone()),
            (None, true) => r.meta.etag.clone(),
            (None, false) => None,
        };
        let body = std::mem::replace(&mut r.body, futures::stream::empty().boxed());
        // The reply serves the parts as long as it lines up with them.
        let source = spans
            .first()
            .is_some_and(|s| s.bytes.start == want.start)
            .then(|| Source {
                body,
                pos: want.start,
                end: want.end,
                held: None,
            });
        let mut reader = PartReader {
            store: self.inner.clone(),
            key: key.clone(),
            opts: GetOptions {
                range: None,
                if_match: pin,
                ..opts
            },
            spans,
            next: 0,
            want,
            source,
            widened: false,
            size: r.meta.size,
            ctx,
        };
        // The first item before returning, so a small object that cannot be read verified
        // fails here rather than mid-stream.
        let mut flow = None;
        let first = reader.next_item(&mut flow).await?;
        r.body = reader.stream(first, flow);
        r.verified_sha256 = Some(d);
        Ok(r)
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        let mut m = self.inner.head(key).await?;
        self.merge_manifest(key, &mut m)
            .await
            .map_err(|e| e.with_operation("head"))?;
        Ok(m)
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        self.refuse_reserved("delete", key)?;
        self.inner.delete(key).await?;
        self.inner.delete(&self.names.manifest_key(key)).await
    }

    fn delete_stream<'a>(&'a self, keys: BoxStream<'a, Key>) -> BoxStream<'a, (Key, Result<()>)> {
        // Each key's manifest goes in the same batch; its result is dropped (a manifest left
        // behind is inert: no object carries its id). Manifest keys named by the caller are
        // refused after the batch.
        let refused: Arc<std::sync::Mutex<Vec<Key>>> = Default::default();
        let r2 = refused.clone();
        let names = self.names;
        let both = keys
            .flat_map(move |k| {
                let items = if names.is_manifest(k.as_str()) {
                    r2.lock().unwrap().push(k);
                    vec![]
                } else {
                    vec![names.manifest_key(&k), k]
                };
                futures::stream::iter(items)
            })
            .boxed();
        let deleted = self
            .inner
            .delete_stream(both)
            .filter(move |(k, _)| futures::future::ready(!names.is_manifest(k.as_str())));
        let refusals = futures::stream::once(async move {
            let keys = std::mem::take(&mut *refused.lock().unwrap());
            futures::stream::iter(keys.into_iter().map(move |k| {
                let e = Error::invalid(format!(
                    "keys under `{}` are reserved",
                    names.manifest_prefix
                ))
                .with_operation("delete")
                .with_key(k.as_str());
                (k, Err(e))
            }))
        })
        .flatten();
        deleted.chain(refusals).boxed()
    }

    fn list(&self, opts: ListOptions) -> BoxStream<'static, Result<ListEntry>> {
        let names = self.names;
        self.inner
            .list(opts)
            .filter(move |e| {
                let hide = match e {
                    Ok(ListEntry::Object(m)) => names.is_manifest(m.key.as_str()),
                    Ok(ListEntry::Prefix(p)) => p == names.manifest_prefix,
                    Ok(ListEntry::Unlisted { .. }) | Err(_) => false,
                };
                futures::future::ready(!hide)
            })
            .boxed()
    }

    async fn copy_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        self.refuse_reserved("copy", to)?;
        self.inner.copy_opts(from, to, opts).await?;
        // Object first: a refused copy must not touch the destination's manifest.
        match self
            .inner
            .copy_opts(
                &self.names.manifest_key(from),
                &self.names.manifest_key(to),
                CopyOptions::default(),
            )
            .await
        {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    async fn rename_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        self.refuse_reserved("rename", from)?;
        self.refuse_reserved("rename", to)?;
        self.inner.rename_opts(from, to, opts).await?;
        // Object first, as in copy. The manifest binds by upload id, so until it follows the
        // object reads as unverifiable, never as corrupt.
        match self
            .inner
            .rename_opts(
                &self.names.manifest_key(from),
                &self.names.manifest_key(to),
                CopyOptions::default(),
            )
            .await
        {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(Error::new(
                e.kind(),
                "the object was renamed but its checksum manifest was not; it reads as \
                 unverifiable until written again",
            )
            .with_operation("rename")
            .with_store(self)
            .with_key(to.as_str())
            .with_source(e)),
            _ => Ok(()),
        }
    }

    async fn health_check(&self) -> Result<()> {
        self.inner.health_check().await
    }

    fn digest_scheme(&self) -> crate::digest::DigestScheme {
        self.inner.digest_scheme()
    }

    fn server_side(&self) -> Option<crate::server_side::ServerSide> {
        self.inner.server_side()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryStore;
    use crate::testkit::fault::{Fault, FaultStore, Rule};
    use crate::testkit::pattern;
    use crate::StoreExt;
    use futures::TryStreamExt;

    fn k(s: &str) -> Key {
        Key::new(s).unwrap()
    }

    /// A checksum layer over a fault layer over memory, holding `data` at "o".
    async fn faulty(data: &Bytes) -> ChecksumStore<FaultStore<MemoryStore>> {
        let s = ChecksumStore::new(FaultStore::new(MemoryStore::new(), 42));
        s.put(&k("o"), data.clone()).await.unwrap();
        s
    }

    #[tokio::test]
    async fn a_byte_flipped_once_in_transit_is_read_again() {
        let data = pattern(64 * 1024, 1);
        let s = faulty(&data).await;
        s.inner().add_rule(Rule::new(Fault::FlipByte, 1.0).limit(1));
        assert!(s.get(&k("o")).await.unwrap() == data);
        // A range of a small object is served from a verified whole read too.
        s.inner().add_rule(Rule::new(Fault::FlipByte, 1.0).limit(1));
        let got = s.get_range(&k("o"), 100..200).await.unwrap();
        assert!(got == data.slice(100..200));
        s.inner()
            .add_rule(Rule::new(Fault::ShortRead, 1.0).limit(1));
        assert!(s.get(&k("o")).await.unwrap() == data);
        assert_eq!(s.inner().total_injected(), 3);
    }

    #[tokio::test]
    async fn a_byte_flipped_differently_on_every_read_stays_a_temporary_error() {
        // Corruption at rest reads the same every time; flips in transit differ, so after the
        // bound the question stays open instead of calling the object corrupt.
        let data = pattern(1000, 2);
        let s = faulty(&data).await;
        s.inner().add_rule(Rule::new(Fault::FlipByte, 1.0));
        let e = s.get(&k("o")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Network, "{e}");
        assert!(e.is_temporary(), "{e}");
        assert_eq!(
            s.inner().injected()["flip_byte"],
            3 * READS_BEFORE_CORRUPT as u64
        );
    }

    #[tokio::test]
    async fn corruption_at_rest_is_integrity_on_get_and_corrupt_on_verify() {
        let data = pattern(1000, 3);
        let s = faulty(&data).await;
        // Other bytes stored under the recorded digest of `data`.
        let digest = hex::encode(Sha256::digest(&data));
        let mut bad = data.to_vec();
        bad[500] ^= 0x10;
        let opts = PutOptions::default().meta(SHA256_META, digest.clone());
        s.inner()
            .inner()
            .put_opts(&k("o"), bad.into(), opts)
            .await
            .unwrap();
        let e = s.get(&k("o")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
        let e = s.get_range(&k("o"), 0..10).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
        match s.verify(&k("o")).await.unwrap() {
            VerifyStatus::Corrupt { expected, .. } => assert_eq!(expected, digest),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.inner().total_injected(), 0);
    }

    #[tokio::test]
    async fn a_large_stream_ends_with_integrity_and_a_range_is_read_again() {
        let data = pattern(REREAD_LIMIT as usize + 1, 4);
        let s = faulty(&data).await;
        s.inner().add_rule(Rule::new(Fault::FlipByte, 1.0).limit(1));
        // Streamed: bytes may already be out, so no re-read; the stream ends in an error.
        let body = s.get_stream(&k("o")).await.unwrap();
        let e = body.try_collect::<Vec<_>>().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
        // `get` hands nothing over before the end, so it reads again.
        s.inner().add_rule(Rule::new(Fault::FlipByte, 1.0).limit(1));
        assert!(s.get(&k("o")).await.unwrap() == data);
        // A range is served from a verified read of the object, read again when cut short.
        s.inner()
            .add_rule(Rule::new(Fault::ShortRead, 1.0).limit(1));
        assert!(s.get_range(&k("o"), 10..5000).await.unwrap() == data.slice(10..5000));
        s.inner().add_rule(Rule::new(Fault::FlipByte, 1.0).limit(1));
        assert!(s.get_range(&k("o"), 10..5000).await.unwrap() == data.slice(10..5000));
        assert!(s.get(&k("o")).await.unwrap() == data);
        assert_eq!(s.inner().total_injected(), 4);
    }

    const PART: usize = 256 * 1024;

    /// A checksum layer over a fault layer over memory, holding `data` at "m" as a multipart
    /// upload of [`PART`]-sized parts.
    async fn multipart(data: &Bytes) -> ChecksumStore<FaultStore<MemoryStore>> {
        let s = ChecksumStore::new(FaultStore::new(MemoryStore::new(), 7));
        let mut up = s
            .put_multipart_opts(&k("m"), PutOptions::default())
            .await
            .unwrap();
        for c in data.chunks(PART) {
            up.put_part(data.slice_ref(c)).await.unwrap();
        }
        up.complete().await.unwrap();
        s
    }

    /// Stores `bytes` under "m" in place of the upload, keeping its manifest id: what a server
    /// that corrupted, lost or reordered the parts would hold.
    async fn replace_stored(s: &ChecksumStore<FaultStore<MemoryStore>>, bytes: Vec<u8>) {
        let below = s.inner().inner();
        let id = below.head(&k("m")).await.unwrap().layer_meta[MANIFEST_META].clone();
        let opts = PutOptions::default().meta(MANIFEST_META, id);
        below.put_opts(&k("m"), bytes.into(), opts).await.unwrap();
    }

    #[tokio::test]
    async fn multipart_parts_are_recorded_and_each_range_is_checked_against_its_part() {
        let data = pattern(5 * PART + 1000, 5);
        let s = multipart(&data).await;
        let m = s.read_manifest(&k("m")).await.unwrap().unwrap();
        let parts = m.parts.expect("parts recorded");
        assert_eq!(parts.len(), 6);
        assert_eq!(parts[5].size, 1000);
        assert_eq!(
            parts[1].sha256,
            hex::encode(Sha256::digest(&data[PART..2 * PART]))
        );
        // A flip in transit in a range, aligned or not, is read again, never handed over.
        for r in [PART as u64..2 * PART as u64, 5..7, 300_000..900_000] {
            s.inner().add_rule(Rule::new(Fault::FlipByte, 1.0).limit(1));
            let got = s.get_range(&k("m"), r.clone()).await.unwrap();
            assert!(got == data.slice(r.start as usize..r.end as usize), "{r:?}");
        }
        s.inner().add_rule(Rule::new(Fault::FlipByte, 1.0).limit(1));
        assert!(s.get(&k("m")).await.unwrap() == data);
        assert_eq!(s.inner().total_injected(), 4);
        // Every range and full read is vouched for, so a download need not read it back.
        let r = s
            .get_opts(
                &k("m"),
                GetOptions {
                    range: Some(GetRange::Bounded(5..7)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let whole = hex::encode(Sha256::digest(&data));
        assert_eq!(r.verified_sha256.as_deref(), Some(whole.as_str()));
    }

    #[tokio::test]
    async fn a_part_corrupt_at_rest_fails_its_ranges_and_spares_the_others() {
        let data = pattern(4 * PART, 6);
        let s = multipart(&data).await;
        let mut bad = data.to_vec();
        bad[2 * PART + 17] ^= 1;
        replace_stored(&s, bad).await;
        let e = s
            .get_range(&k("m"), 2 * PART as u64 + 5..2 * PART as u64 + 6)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
        assert!(
            e.to_string()
                .contains(&format!("the part at byte {}", 2 * PART)),
            "{e}"
        );
        let ok = s.get_range(&k("m"), 0..2 * PART as u64).await.unwrap();
        assert!(ok == data.slice(..2 * PART));
        let e = s.get(&k("m")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
        assert!(matches!(
            s.verify(&k("m")).await.unwrap(),
            VerifyStatus::Corrupt { .. }
        ));
    }

    #[tokio::test]
    async fn reordered_parts_are_integrity_errors() {
        let data = pattern(3 * PART, 8);
        let s = multipart(&data).await;
        let mut swapped = data[PART..2 * PART].to_vec();
        swapped.extend_from_slice(&data[..PART]);
        swapped.extend_from_slice(&data[2 * PART..]);
        replace_stored(&s, swapped).await;
        let e = s.get_range(&k("m"), 0..10).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
        let e = s.get(&k("m")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    }

    #[tokio::test]
    async fn a_missing_part_is_an_integrity_error_on_any_read() {
        let data = pattern(3 * PART, 9);
        let s = multipart(&data).await;
        let mut short = data[..PART].to_vec();
        short.extend_from_slice(&data[2 * PART..]);
        replace_stored(&s, short).await;
        for r in [Some(0..10u64), Some(PART as u64..PART as u64 + 1), None] {
            let e = match r {
                Some(r) => s.get_range(&k("m"), r).await.unwrap_err(),
                None => s.get(&k("m")).await.unwrap_err(),
            };
            assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
            assert!(e.to_string().contains("parts adding up to"), "{e}");
        }
    }
}
