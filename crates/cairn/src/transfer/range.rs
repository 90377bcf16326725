//! Reading one byte range of an object, pinned to its ETag, resuming where a body broke off.

use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::store::{GetOptions, GetRange, Store};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt};
use sha2::Digest;
use std::ops::Range;
use std::time::Duration;

/// Where the bytes of a range go, in order.
#[async_trait]
pub(crate) trait Sink: Send {
    /// Takes `data`, which starts at object offset `offset`.
    async fn write(&mut self, offset: u64, data: Bytes) -> Result<()>;
}

/// An object version as seen by the first response: every later range must match it.
pub(crate) struct Pinned<'a> {
    pub store: &'a dyn Store,
    pub key: &'a Key,
    pub etag: Option<String>,
    pub size: u64,
    pub max_resumes: u32,
    /// The recorded SHA-256 (hex) that every range's reply must be vouched for by the
    /// checksum layer (checked part by part), if the caller counts on that.
    pub vouch: Option<String>,
    /// Set once a range came back without that vouch: the caller must hash what it got.
    pub unvouched: std::sync::atomic::AtomicBool,
}

impl<'a> Pinned<'a> {
    /// The version of `key` that `meta` (the first response) describes.
    pub(crate) fn new(
        store: &'a dyn Store,
        key: &'a Key,
        meta: &crate::store::ObjectMeta,
        max_resumes: u32,
    ) -> Self {
        Pinned {
            store,
            key,
            etag: meta.etag.clone(),
            size: meta.size,
            max_resumes,
            vouch: None,
            unvouched: Default::default(),
        }
    }

    /// Reads the whole object into `sink`, starting with the first response's body, and
    /// checks it against `want` (the recorded SHA-256) when given.
    pub(crate) async fn read_whole(
        &self,
        first: (BoxStream<'static, Result<Bytes>>, u64),
        sink: &mut dyn Sink,
        want: Option<&[u8; 32]>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        let mut sink = HashSink {
            inner: sink,
            hasher: want.map(|_| sha2::Sha256::new()),
        };
        self.read(0..self.size, Some(first), &mut sink, progress)
            .await?;
        match (want, sink.hasher) {
            (Some(w), Some(h)) => super::check_digest(h, w, self.store, self.key),
            _ => Ok(()),
        }
    }

    fn changed(&self, what: String) -> Error {
        Error::new(
            ErrorKind::PreconditionFailed,
            format!("the object changed during the transfer: {what}"),
        )
        .with_operation("get")
        .with_store(self.store)
        .with_key(self.key.as_str())
        .with_hint("retry the transfer to get the new version")
    }

    async fn open(&self, range: Range<u64>) -> Result<BoxStream<'static, Result<Bytes>>> {
        let opts = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            if_match: self.etag.clone(),
            ..Default::default()
        };
        let r = self.store.get_opts(self.key, opts).await?;
        if let Some(w) = &self.vouch {
            if !vouched(&r, w) {
                self.unvouched
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        // Stores that ignore If-Match are caught here.
        if r.meta.size != self.size {
            return Err(self.changed(format!(
                "its size went from {} to {}",
                self.size, r.meta.size
            )));
        }
        if let (Some(want), Some(got)) = (&self.etag, &r.meta.etag) {
            if want != got {
                return Err(self.changed(format!("its ETag went from {want} to {got}")));
            }
        }
        if r.range.start != range.start {
            return Err(Error::new(
                ErrorKind::Unexpected,
                format!(
                    "asked for bytes from {} but the body starts at {}",
                    range.start, r.range.start
                ),
            )
            .with_operation("get")
            .with_store(self.store)
            .with_key(self.key.as_str()));
        }
        Ok(r.body)
    }

    /// Reads `range` into `sink`, starting from `first` if given: a body that begins at
    /// `range.start` and ends at the given offset (bytes past `range.end` are ignored; if it
    /// ends before `range.end` the rest is requested). A temporary error or an early end of a
    /// body re-requests the rest of the range, up to `max_resumes` times.
    pub(crate) async fn read(
        &self,
        range: Range<u64>,
        first: Option<(BoxStream<'static, Result<Bytes>>, u64)>,
        sink: &mut dyn Sink,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        let mut pos = range.start;
        let mut resumes = 0u32;
        let mut body = first;
        while pos < range.end {
            let (mut stream, body_end) = match body.take() {
                Some(b) => b,
                None => match self.open(pos..range.end).await {
                    Ok(b) => (b, range.end),
                    Err(e) if e.is_temporary() && resumes < self.max_resumes => {
                        resumes += 1;
                        backoff(resumes).await;
                        continue;
                    }
                    Err(e) => return Err(e),
                },
            };
            let broke = loop {
                if pos >= range.end {
                    break None;
                }
                match stream.next().await {
                    Some(Ok(mut chunk)) => {
                        let left = (range.end - pos) as usize;
                        if chunk.len() > left {
                            chunk.truncate(left);
                        }
                        let n = chunk.len() as u64;
                        if n == 0 {
                            continue;
                        }
                        sink.write(pos, chunk).await?;
                        pos += n;
                        progress(n);
                    }
                    Some(Err(e)) => break Some(e),
                    None if pos >= body_end => break None,
                    None => {
                        break Some(Error::new(
                            ErrorKind::Network,
                            format!("the body ended at byte {pos}, before byte {}", range.end),
                        ))
                    }
                }
            };
            drop(stream);
            if let Some(e) = broke {
                if e.is_temporary() && resumes < self.max_resumes {
                    resumes += 1;
                    tracing::debug!(key = %self.key, offset = pos, error = %e, "resuming range");
                    backoff(resumes).await;
                    continue;
                }
                return Err(e
                    .with_operation("get")
                    .with_store(self.store)
                    .with_key(self.key.as_str()));
            }
        }
        Ok(())
    }
}

/// Whether a layer checked `r`'s bytes as bytes of the object whose SHA-256 is `sha256` (hex).
pub(crate) fn vouched(r: &crate::store::GetResult, sha256: &str) -> bool {
    r.verified_sha256
        .as_deref()
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(sha256))
}

async fn backoff(attempt: u32) {
    let base = 50u64 << attempt.min(5);
    let jitter = rand::random::<u64>() % (base / 2 + 1);
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

/// Collects a range into memory; a single chunk covering the range is kept without a copy.
pub(crate) struct BufSink {
    len: usize,
    whole: Option<Bytes>,
    buf: BytesMut,
}

impl BufSink {
    pub(crate) fn new(len: usize) -> Self {
        BufSink {
            len,
            whole: None,
            buf: BytesMut::new(),
        }
    }
    pub(crate) fn into_bytes(self) -> Bytes {
        self.whole.unwrap_or_else(|| self.buf.freeze())
    }
}

#[async_trait]
impl Sink for BufSink {
    async fn write(&mut self, _offset: u64, data: Bytes) -> Result<()> {
        if self.whole.is_none() && self.buf.is_empty() && data.len() == self.len {
            self.whole = Some(data);
            return Ok(());
        }
        if let Some(w) = self.whole.take() {
            self.buf.extend_from_slice(&w);
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve(self.len);
        }
        self.buf.extend_from_slice(&data);
        Ok(())
    }
}

/// Hashes bytes on their way to another sink (ranges arrive in order).
struct HashSink<'s> {
    inner: &'s mut dyn Sink,
    hasher: Option<sha2::Sha256>,
}

#[async_trait]
impl Sink for HashSink<'_> {
    async fn write(&mut self, offset: u64, data: Bytes) -> Result<()> {
        if let Some(h) = self.hasher.as_mut() {
            h.update(&data);
        }
        self.inner.write(offset, data).await
    }
}
