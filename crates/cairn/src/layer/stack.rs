//! The default layer stack ([`apply`]), and the plumbing the byte-changing layers share:
//! reserved metadata names, the hold-back stream pump, and the part re-chunker.

use super::checksum::ChecksumStore;
use super::compress::{CompressStore, Compression};
use super::encrypt::{key_provider, EncryptStore};
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::store::{
    Capabilities, DynStore, ListEntry, Metadata, MultipartUpload, PutOptions, RESERVED_META_PREFIX,
};
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use std::sync::Arc;

/// Wraps `store` in cairn's default layers, outermost first: compress → encrypt → checksum.
///
/// - checksum: on unless `config.checksum == Some(false)`;
/// - encryption: always present so encrypted objects are recognised; it encrypts new objects
///   only when `config.encryption_key` is set (`env:VAR` or `file:PATH`);
/// - compression: always present so compressed objects read back; it compresses new objects
///   only when `config.compression` is `zstd` or `gzip` (level from `compression_level`).
///
/// Apply it to the bare backend, under any [`PrefixStore`](super::PrefixStore), so the checksum
/// manifests of one bucket or root live in one place whatever prefix a URL names.
pub fn apply(store: DynStore, config: &Config) -> Result<DynStore> {
    let compression =
        Compression::from_config(config.compression.as_deref(), config.compression_level)?;
    let keys = config
        .encryption_key
        .as_deref()
        .map(key_provider)
        .transpose()?;
    let mut s = store;
    if config.checksum != Some(false) {
        s = Arc::new(ChecksumStore::new(s));
    }
    s = Arc::new(EncryptStore::new(s, keys));
    Ok(Arc::new(CompressStore::new(s, compression)))
}

/// The `layer_hints` entry through which layers tell the layers below which `cairn-*` metadata
/// names they set (comma separated). Internal: a user who sets it bypasses the reserved-name
/// check on purpose.
pub const LAYER_META_HINT: &str = "cairn.layer-meta";

/// Whether a metadata name is reserved for cairn's layers (`cairn-*`, any case).
pub fn is_reserved(name: &str) -> bool {
    name.len() >= RESERVED_META_PREFIX.len()
        && name[..RESERVED_META_PREFIX.len()].eq_ignore_ascii_case(RESERVED_META_PREFIX)
}

/// Removes the layers' `cairn-*` names, e.g. before re-putting metadata read from another object.
pub fn strip_reserved(meta: &mut Metadata) {
    meta.retain(|k, _| !is_reserved(k));
}

/// Rejects `cairn-*` metadata names a user set; names a layer above set (listed in
/// [`LAYER_META_HINT`]) pass.
pub(crate) fn check_reserved(opts: &PutOptions, key: &Key) -> Result<()> {
    let allowed = opts
        .layer_hints
        .get(LAYER_META_HINT)
        .map(String::as_str)
        .unwrap_or("");
    for name in opts.metadata.keys() {
        if is_reserved(name) && !allowed.split(',').any(|a| a == name) {
            return Err(Error::invalid(format!(
                "metadata name {name:?} is reserved: names starting with `{RESERVED_META_PREFIX}` \
                 belong to cairn's layers"
            ))
            .with_operation("put")
            .with_key(key.as_str())
            .with_hint("rename the metadata entry; nothing was written"));
        }
    }
    Ok(())
}

/// Sets a layer's own metadata entry and lists it in [`LAYER_META_HINT`].
pub(crate) fn set_layer_meta(opts: &mut PutOptions, name: &str, value: impl Into<String>) {
    opts.metadata.insert(name.to_string(), value.into());
    let hint = opts
        .layer_hints
        .entry(LAYER_META_HINT.to_string())
        .or_default();
    if !hint.split(',').any(|a| a == name) {
        if !hint.is_empty() {
            hint.push(',');
        }
        hint.push_str(name);
    }
}

/// Names the store and key in errors raised while a body streams.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub store: String,
    pub key: String,
}

impl Ctx {
    pub fn new(store: &impl std::fmt::Display, key: &Key) -> Self {
        Ctx {
            store: store.to_string(),
            key: key.to_string(),
        }
    }
    pub fn err(&self, kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::new(kind, message)
            .with_operation("get")
            .with_store(&self.store)
            .with_key(&self.key)
    }
}

/// Marks every object of a listing as of unknown logical size (a layer that transforms bytes).
pub(crate) fn sizes_unknown(
    list: BoxStream<'static, Result<ListEntry>>,
) -> BoxStream<'static, Result<ListEntry>> {
    list.map(|e| {
        e.map(|mut e| {
            if let ListEntry::Object(m) = &mut e {
                m.size_known = false;
            }
            e
        })
    })
    .boxed()
}

/// A pull-based body transform: input is pushed in, output is pulled out in bounded chunks.
pub(crate) trait Decode: Send + 'static {
    /// Takes the next input chunk.
    fn push(&mut self, input: Bytes) -> Result<()>;
    /// The next output chunk from the input so far, or None if more input is needed.
    fn next_chunk(&mut self) -> Result<Option<Bytes>>;
    /// After the input ended: the remaining output, one chunk per call, then None. Errors here
    /// (digest mismatch, truncation) are raised before the last chunk is released.
    fn finish_chunk(&mut self) -> Result<Option<Bytes>>;
    /// True once no more output is wanted (a range is complete): the pump stops reading.
    fn done(&self) -> bool {
        false
    }
}

/// Runs `dec` over `inner`, holding back one output chunk: the last chunk is released only after
/// the input ended and `finish_chunk` succeeded, so a failed check never hands over the tail.
pub(crate) fn pump<D: Decode>(
    inner: BoxStream<'static, Result<Bytes>>,
    dec: D,
) -> BoxStream<'static, Result<Bytes>> {
    struct St<D> {
        inner: BoxStream<'static, Result<Bytes>>,
        dec: D,
        pending: Option<Bytes>,
        ended: bool,
        verify: bool,
        done: bool,
    }
    let st = St {
        inner,
        dec,
        pending: None,
        ended: false,
        verify: true,
        done: false,
    };
    futures::stream::unfold(st, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            if !st.ended && st.dec.done() {
                // A range is complete: what follows is neither read nor checked.
                st.ended = true;
                st.verify = false;
            }
            let step = match (st.ended, st.verify) {
                (false, _) => st.dec.next_chunk(),
                (true, true) => st.dec.finish_chunk(),
                (true, false) => Ok(None),
            };
            match step {
                Err(e) => {
                    st.done = true;
                    st.pending = None;
                    return Some((Err(e), st));
                }
                Ok(Some(b)) if b.is_empty() => {}
                Ok(Some(b)) => {
                    if let Some(p) = st.pending.replace(b) {
                        return Some((Ok(p), st));
                    }
                }
                Ok(None) if st.ended => {
                    st.done = true;
                    let p = st.pending.take()?;
                    return Some((Ok(p), st));
                }
                Ok(None) => match st.inner.next().await {
                    Some(Ok(b)) => {
                        if let Err(e) = st.dec.push(b) {
                            st.done = true;
                            return Some((Err(e), st));
                        }
                    }
                    Some(Err(e)) => {
                        st.done = true;
                        return Some((Err(e), st));
                    }
                    None => st.ended = true,
                },
            }
        }
    })
    .boxed()
}

/// Skips `skip` output bytes of `dec`, then passes `take` bytes and stops.
pub(crate) struct Window<D> {
    pub dec: D,
    pub skip: u64,
    pub take: u64,
}

impl<D: Decode> Window<D> {
    fn cut(&mut self, chunk: Option<Bytes>) -> Option<Bytes> {
        let mut b = chunk?;
        let s = self.skip.min(b.len() as u64) as usize;
        self.skip -= s as u64;
        let b2 = b.split_off(s);
        b = b2;
        let t = self.take.min(b.len() as u64) as usize;
        self.take -= t as u64;
        b.truncate(t);
        Some(b)
    }
}

impl<D: Decode> Decode for Window<D> {
    fn push(&mut self, input: Bytes) -> Result<()> {
        self.dec.push(input)
    }
    fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        let c = self.dec.next_chunk()?;
        Ok(self.cut(c))
    }
    fn finish_chunk(&mut self) -> Result<Option<Bytes>> {
        let c = self.dec.finish_chunk()?;
        Ok(self.cut(c))
    }
    fn done(&self) -> bool {
        self.take == 0
    }
}

/// Regroups a transformed byte stream into parts the inner store accepts: every part but the
/// last at least the store's minimum, and no more parts than the caller's own.
pub(crate) struct Rechunk {
    pub inner: Box<dyn MultipartUpload>,
    buf: BytesMut,
    target: usize,
    min: usize,
    max: usize,
}

impl std::fmt::Debug for Rechunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rechunk")
            .field("inner", &self.inner)
            .field("target", &self.target)
            .finish()
    }
}

impl Rechunk {
    pub fn new(inner: Box<dyn MultipartUpload>, caps: &Capabilities) -> Self {
        Rechunk {
            inner,
            buf: BytesMut::new(),
            target: 0,
            min: caps.min_part_size.max(1) as usize,
            max: caps.max_part_size.max(1) as usize,
        }
    }

    /// Fixes the part size from the caller's first part (plus `slack` for growth), so the
    /// inner upload needs no more parts than the outer one.
    pub fn size_from(&mut self, first_part: usize, slack: usize) {
        if self.target == 0 {
            self.target = (first_part + slack).max(self.min).min(self.max);
        }
    }

    /// Buffers `data`, sending every full part.
    pub fn write(&mut self, data: &[u8]) -> Vec<BoxFuture<'static, Result<()>>> {
        self.buf.extend_from_slice(data);
        let mut futs = Vec::new();
        while self.target > 0 && self.buf.len() >= self.target {
            let part = self.buf.split_to(self.target).freeze();
            futs.push(self.inner.put_part(part));
        }
        futs
    }

    /// Sends what is left as the last part.
    pub fn flush(&mut self) -> Option<BoxFuture<'static, Result<()>>> {
        (!self.buf.is_empty()).then(|| self.inner.put_part(self.buf.split().freeze()))
    }
}

/// One future for many part futures.
pub(crate) fn join_parts(
    futs: Vec<BoxFuture<'static, Result<()>>>,
) -> BoxFuture<'static, Result<()>> {
    Box::pin(async move {
        futures::future::try_join_all(futs).await?;
        Ok(())
    })
}

/// The `layer_hints` entry through which the outermost transforming layer hands the content's
/// SHA-256 (hex) to the layers below, so the content is hashed once. In a multipart upload its
/// value is [`CONTENT_SHA256_TRAILING`]: the digest follows as trailing metadata under this
/// name, and the layer that records the content digest removes it (it is never stored).
pub(crate) const CONTENT_SHA256_HINT: &str = "cairn.content-sha256";
/// See [`CONTENT_SHA256_HINT`].
pub(crate) const CONTENT_SHA256_TRAILING: &str = "trailing";

/// Buffers below this are transformed inline: a blocking-pool hop costs more than the work.
const CPU_INLINE: usize = 64 * 1024;

/// Runs CPU work on a streamed part of `len` bytes where it must happen in call order (a
/// multipart upload's `put_part` is synchronous): on a multi-threaded runtime inside
/// `block_in_place`, so the worker's other tasks move to another thread while it works.
pub(crate) fn cpu_in_order<T>(len: usize, f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let multi =
        Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
    if len < CPU_INLINE || !multi {
        return f();
    }
    tokio::task::block_in_place(f)
}

/// Runs CPU work on a whole buffer of `len` bytes (compression, encryption, hashing) off the
/// async workers, on tokio's blocking pool, as object_store's `maybe_spawn_blocking` does.
pub(crate) async fn cpu<T: Send + 'static>(
    len: usize,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    if len < CPU_INLINE {
        return f();
    }
    crate::transfer::blocking(f).await
}
