//! The one transfer engine under `put_stream`, `cp`, `sync` and the Python writer.
//!
//! - [`upload_file`]: a file to a key. Parts are read with `pread` at their offsets and
//!   uploaded concurrently through the [`Writer`]; small files are one put.
//! - [`download_file`]: a key to a file. Parallel ranged GETs, each pinned to the ETag of the
//!   first response, write with `pwrite` into a preallocated temp file next to the target,
//!   which is fsynced and renamed into place. An interrupted range resumes at its offset.
//! - [`copy_object`]: store to store (any pair), ranged reads feeding ordered multipart parts.
//! - [`copy_many`] / [`transfer_tree`]: many objects at once between stores, bounded
//!   concurrency, streamed listings, failures recorded per item.
//! - [`upload_tree`] / [`download_tree`]: a local directory to a prefix and back, through the
//!   file paths above (what `cp -r` uses); a tree download syncs the filesystem once at the end
//!   instead of fsyncing every file.
//! - [`upload_many`]: files the caller lists (the CLI walks directories itself, following
//!   links to files and naming every file it cannot upload), through the same upload path.
//!
//! Memory: every buffered part and every small object held whole takes permits from one
//! budget per operation (default `concurrency × part_size`), so peak memory stays at that
//! plus a small constant for any object size or tree size. Downloads to files stream through
//! 1 MiB write buffers, one per range in flight.
//!
//! Where the object's metadata carries [`SHA256_META`] (recorded by the checksum layer), a
//! download or copy verifies the whole object and fails with
//! [`ErrorKind::Integrity`](crate::ErrorKind::Integrity) on a mismatch, writing nothing.
//! Where it carries none (an object written by another tool), the bytes cannot be checked:
//! the item is reported as [`Outcome::Unverified`](crate::ops::reporter::Outcome::Unverified),
//! never like a checked one (see [`TransferOptions::unverified`]).

pub mod aimd;
mod budget;
mod copy;
mod disk;
mod file;
mod many;
mod range;
mod writer;

pub(crate) use budget::Budget;
pub use copy::copy_object;
pub(crate) use copy::copy_one;
pub use file::{download_file, upload_file};
pub use many::{
    copy_many, download_tree, transfer_tree, upload_many, upload_tree, CopyItem, UploadItem,
};
pub(crate) use writer::Pending;
pub use writer::{part_size_for, put_stream, settle_aborts, Writer, WriterOptions};

use crate::store::{Metadata, ObjectMeta, PutOptions, Store};
use sha2::{Digest, Sha256};

/// The metadata entry holding an object's SHA-256, as written by the checksum layer
/// (hex; base64 is accepted too).
pub const SHA256_META: &str = "cairn-sha256";

/// Knobs for every transfer. `Default` is tuned for S3 over a fast network.
#[derive(Debug, Clone)]
pub struct TransferOptions {
    /// Bytes per multipart part and per ranged GET (raised to fit the store's limits).
    pub part_size: usize,
    /// Parts in flight at once for one large object.
    pub concurrency: usize,
    /// Objects of at least this many bytes use multipart uploads / parallel ranged GETs.
    pub multipart_threshold: u64,
    /// Objects in flight at once in [`copy_many`], [`transfer_tree`] and sync.
    pub object_concurrency: usize,
    /// How many times one interrupted range is resumed before the transfer fails.
    pub max_resumes: u32,
    /// Check [`SHA256_META`] after a download or copy, when the object has it; an object
    /// without it is then reported [`Unverified`](crate::ops::reporter::Outcome::Unverified).
    /// Off, nothing is checked and nothing is reported unverified (the caller opted out).
    pub verify: bool,
    /// Byte budget for buffered parts and whole small objects; `None` means
    /// `concurrency × part_size`. A single item larger than the budget still runs, alone.
    pub memory_limit: Option<u64>,
    /// Options for every put: mode, storage class, layer hints (`acl`), and content type and
    /// metadata that override the source's.
    pub put: PutOptions,
    /// Make downloaded files durable before reporting success: an fsync per file for
    /// [`download_file`], one filesystem sync at the end for [`download_tree`]. Off, files are
    /// still replaced atomically (temp file + rename), as cp(1) and rsync do by default.
    pub durable: bool,
}

impl Default for TransferOptions {
    fn default() -> Self {
        TransferOptions {
            part_size: 8 * 1024 * 1024,
            concurrency: 8,
            multipart_threshold: 16 * 1024 * 1024,
            object_concurrency: 32,
            max_resumes: 5,
            verify: true,
            memory_limit: None,
            put: PutOptions::default(),
            durable: true,
        }
    }
}

impl TransferOptions {
    pub(crate) fn budget(&self) -> Budget {
        let default = self.part_size.max(1) as u64 * self.concurrency.max(1) as u64;
        Budget::new(self.memory_limit.unwrap_or(default))
    }

    /// The SHA-256 a read of an object with `metadata` is checked against, if any.
    pub(crate) fn wanted_sha256(&self, meta: &ObjectMeta) -> Option<[u8; 32]> {
        self.verify.then(|| recorded_sha256(meta)).flatten()
    }

    /// Whether a download or client-side copy of the object with `meta`, read from `src`,
    /// moves bytes that nothing checked: verification is wanted ([`TransferOptions::verify`]),
    /// but no SHA-256 was recorded for the object (written by another tool: aws cli, boto3,
    /// s5cmd; or through a store with `checksum=false`). The engine reports such items as
    /// [`Outcome::Unverified`](crate::ops::reporter::Outcome::Unverified); a caller of
    /// [`download_file`] asks this of the metadata it returns.
    ///
    /// Not unverified: compressed or encrypted objects (their layers authenticate their own
    /// frames), and objects of a local store (`Capabilities::local`: a plain directory's files
    /// are the user's own, the source of truth, read straight from disk; an upload or a sync
    /// from a directory has nothing to check them against). Server-side copies, whose bytes
    /// never pass through cairn, are out of scope: the engine does not make them.
    pub fn unverified(&self, src: &dyn Store, meta: &ObjectMeta) -> bool {
        self.verify
            && !meta.is_transformed()
            && recorded_sha256(meta).is_none()
            && !src.capabilities().local
    }

    /// Options for a [`Writer`] of an object of `size` bytes (`None`: unknown, e.g. stdin).
    pub fn writer_options(&self, size: Option<u64>) -> WriterOptions {
        WriterOptions {
            part_size: self.part_size.max(1),
            concurrency: self.concurrency.max(1),
            size_hint: size,
        }
    }

    /// The put options for a copy of an object that had `content_type` and `metadata`:
    /// the caller's settings win; the source's cairn-internal entries are dropped (the
    /// destination's checksum layer records its own SHA-256).
    pub(crate) fn put_for(&self, content_type: Option<String>, metadata: &Metadata) -> PutOptions {
        let mut put = self.put.clone();
        let mut meta: Metadata = metadata
            .iter()
            // The destination's own layers record their metadata; they refuse it from callers.
            .filter(|(k, _)| !k.starts_with(crate::store::RESERVED_META_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        meta.extend(std::mem::take(&mut put.metadata));
        put.metadata = meta;
        put.content_type = put.content_type.or(content_type);
        put
    }
}

/// What one item's transfer moved, and whether its bytes went unchecked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Moved {
    pub bytes: u64,
    pub unverified: bool,
}

impl Moved {
    /// An item whose bytes were checked, or had nothing to be checked against (uploads).
    pub fn checked(bytes: u64) -> Self {
        Moved {
            bytes,
            unverified: false,
        }
    }

    pub fn outcome(self) -> crate::ops::reporter::Outcome<'static> {
        use crate::ops::reporter::Outcome;
        if self.unverified {
            Outcome::Unverified { bytes: self.bytes }
        } else {
            Outcome::Transferred { bytes: self.bytes }
        }
    }
}

/// The [`Moved`] of a download or copy of the object with `meta`, read from `src`.
pub(crate) fn moved(opts: &TransferOptions, src: &dyn Store, meta: &ObjectMeta) -> Moved {
    Moved {
        bytes: meta.size,
        unverified: opts.unverified(src, meta),
    }
}

/// Parses a recorded SHA-256 (64 hex digits or standard base64 of 32 bytes).
pub fn parse_sha256(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() == 64 {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        return Some(out);
    }
    use base64::Engine;
    let v = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    v.try_into().ok()
}

/// The SHA-256 of the object's content, if the checksum layer recorded one and the stored bytes
/// are the content.
pub fn recorded_sha256(meta: &ObjectMeta) -> Option<[u8; 32]> {
    // The checksum layer hashes the stored bytes; once compressed or encrypted they are not
    // the bytes a reader gets (those layers authenticate their own output instead).
    if meta.is_transformed() {
        return None;
    }
    meta.stored_sha256().and_then(parse_sha256)
}

/// Compares a computed digest with the recorded one; an `Integrity` error on mismatch.
pub(crate) fn check_digest(
    hasher: Sha256,
    want: &[u8; 32],
    store: &dyn std::fmt::Display,
    key: &crate::Key,
) -> crate::Result<()> {
    let got: [u8; 32] = hasher.finalize().into();
    if &got == want {
        return Ok(());
    }
    let m = crate::layer::checksum::ChecksumMismatch {
        expected: hex::encode(want),
        actual: hex::encode(got),
    };
    Err(crate::Error::new(
        crate::ErrorKind::Integrity,
        format!(
            "SHA-256 of the data read is {}, but {SHA256_META} recorded {}",
            hex::encode(got),
            hex::encode(want)
        ),
    )
    .with_operation("get")
    .with_store(store)
    .with_key(key.as_str())
    .with_source(m))
}

/// Splits `0..size` into ranges of `part` bytes.
pub(crate) fn split(size: u64, part: u64) -> Vec<std::ops::Range<u64>> {
    let part = part.max(1);
    (0..size.div_ceil(part))
        .map(|i| i * part..((i + 1) * part).min(size))
        .collect()
}

/// Runs a blocking filesystem call off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> crate::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        crate::Error::new(
            crate::ErrorKind::Unexpected,
            format!("blocking task failed: {e}"),
        )
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_exactly() {
        assert_eq!(split(0, 5), Vec::<std::ops::Range<u64>>::new());
        assert_eq!(split(5, 5), vec![0..5]);
        assert_eq!(split(6, 5), vec![0..5, 5..6]);
        assert_eq!(split(9, 5), vec![0..5, 5..9]);
        assert_eq!(split(10, 5), vec![0..5, 5..10]);
    }

    #[test]
    fn sha256_parses_hex_and_base64() {
        let d: [u8; 32] = Sha256::digest(b"abc").into();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(d);
        assert_eq!(parse_sha256(&hex::encode(d)), Some(d));
        assert_eq!(parse_sha256(&b64), Some(d));
        assert_eq!(parse_sha256("zz"), None);
        assert_eq!(parse_sha256(&hex::encode(&d[..31])), None);
    }

    #[test]
    fn put_for_keeps_user_metadata_only() {
        let mut src = Metadata::new();
        src.insert("owner".into(), "a".into());
        src.insert(SHA256_META.into(), "x".into());
        src.insert("cairn-compression".into(), "zstd".into());
        let mut opts = TransferOptions::default();
        opts.put.metadata.insert("owner".into(), "b".into());
        let put = opts.put_for(Some("text/csv".into()), &src);
        assert_eq!(put.metadata.get("owner").map(String::as_str), Some("b"));
        assert!(
            !put.metadata.contains_key(SHA256_META),
            "the destination records its own"
        );
        assert!(!put.metadata.contains_key("cairn-compression"));
        assert_eq!(put.content_type.as_deref(), Some("text/csv"));
    }
}
