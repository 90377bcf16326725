//! A streaming writer over any store: buffers one part, then switches to a concurrent
//! multipart upload. It owns part size, concurrency and abort-on-failure, so backends only
//! implement the multipart primitives (object_store's `WriteMultipart` has the same split).
//!
//! A writer dropped before `finish` or `abort` (a cancelled task, Ctrl-C) still aborts its
//! upload: `Drop` spawns the abort on the runtime, and [`settle_aborts`] waits for such aborts
//! (the CLI does, bounded, before it exits).

use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::store::{MultipartUpload, PutOptions, PutResult, Store};
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, Stream, StreamExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;

/// Part size and concurrency for a [`Writer`].
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Bytes per part (raised to the store's minimum and to fit its part limit).
    pub part_size: usize,
    /// Parts in flight at once. Memory is bounded by `part_size * (concurrency + 1)`.
    pub concurrency: usize,
    /// Expected total size, if known, so part size can grow to stay under the part limit.
    pub size_hint: Option<u64>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            part_size: 8 * 1024 * 1024,
            concurrency: 8,
            size_hint: None,
        }
    }
}

/// Picks a part size within the store's limits that fits `size` in its part count.
pub fn part_size_for(store: &dyn Store, opts: &WriterOptions) -> usize {
    let caps = store.capabilities();
    let mut part = (opts.part_size as u64).max(caps.min_part_size);
    if let Some(size) = opts.size_hint {
        let needed = size.div_ceil(caps.max_parts as u64);
        part = part.max(needed);
    }
    part.min(caps.max_part_size) as usize
}

/// Writes one object from chunks of any size.
pub struct Writer<'a> {
    store: &'a dyn Store,
    key: Key,
    opts: Option<PutOptions>,
    part_size: usize,
    concurrency: usize,
    buf: BytesMut,
    upload: Option<Box<dyn MultipartUpload>>,
    inflight: FuturesUnordered<BoxFuture<'static, Result<()>>>,
    parts: usize,
    written: u64,
    /// Memory-budget permits for bytes still buffered in `buf` (released at finish/abort).
    held: Vec<tokio::sync::OwnedSemaphorePermit>,
    /// The runtime the upload started on, where `Drop` spawns its abort.
    runtime: Option<tokio::runtime::Handle>,
}

impl<'a> Writer<'a> {
    /// A writer for `key`.
    pub fn new(store: &'a dyn Store, key: Key, put: PutOptions, opts: WriterOptions) -> Self {
        let part_size = part_size_for(store, &opts);
        Writer {
            store,
            key,
            opts: Some(put),
            part_size,
            concurrency: opts.concurrency.max(1),
            buf: BytesMut::new(),
            upload: None,
            inflight: FuturesUnordered::new(),
            parts: 0,
            written: 0,
            held: Vec::new(),
            runtime: None,
        }
    }

    /// Bytes accepted so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends bytes, uploading full parts as they fill.
    pub async fn write(&mut self, mut data: Bytes) -> Result<()> {
        self.written += data.len() as u64;
        while !data.is_empty() {
            let room = self.part_size - self.buf.len();
            if self.buf.is_empty() && data.len() >= self.part_size {
                let part = data.split_to(self.part_size);
                self.send(part).await?;
                continue;
            }
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data.split_to(take));
            if self.buf.len() == self.part_size {
                let part = self.buf.split().freeze();
                self.send(part).await?;
            }
        }
        Ok(())
    }

    /// Part-sized copies the store's layers hold per part in flight
    /// ([`Capabilities::part_copies`](crate::Capabilities::part_copies)).
    pub(crate) fn part_copies(&self) -> u32 {
        self.store.capabilities().part_copies
    }

    /// The part size in use (after [`part_size_for`]).
    pub(crate) fn part_size(&self) -> usize {
        self.part_size
    }

    /// Appends one whole part whose memory is accounted by `permit`; the permit is released
    /// when that part is stored, so a shared budget bounds the bytes in flight.
    pub(crate) async fn write_part(
        &mut self,
        data: Bytes,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<()> {
        if self.buf.is_empty() && data.len() == self.part_size {
            self.written += data.len() as u64;
            return self.send_guarded(data, Some(permit)).await;
        }
        self.held.push(permit);
        self.write(data).await
    }

    /// Whether parts are being uploaded.
    pub(crate) fn has_inflight(&self) -> bool {
        !self.inflight.is_empty()
    }

    /// Waits until one in-flight part is stored (releasing its budget); returns its error if
    /// it failed. Cancel-safe (it only polls), so it can race in a `select!`: the caller must
    /// then call [`Writer::fail_with`] outside the select.
    pub(crate) async fn wait_one(&mut self) -> Option<Error> {
        match self.inflight.next().await {
            Some(Err(e)) => Some(e),
            _ => None,
        }
    }

    /// Aborts the upload because of `e` and returns `e` with the key.
    pub(crate) async fn fail_with(&mut self, e: Error) -> Error {
        match self.fail::<()>(e).await {
            Err(e) => e,
            Ok(()) => unreachable!("fail always returns an error"),
        }
    }

    async fn send(&mut self, part: Bytes) -> Result<()> {
        self.send_guarded(part, None).await
    }

    async fn send_guarded(
        &mut self,
        part: Bytes,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<()> {
        if self.upload.is_none() {
            let opts = self.opts.clone().unwrap_or_default();
            self.upload = Some(self.store.put_multipart_opts(&self.key, opts).await?);
            self.runtime = tokio::runtime::Handle::try_current().ok();
        }
        let caps = self.store.capabilities();
        if self.parts >= caps.max_parts as usize {
            return self
                .fail(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "more than {} parts of {} bytes",
                        caps.max_parts, self.part_size
                    ),
                ))
                .await;
        }
        while self.inflight.len() >= self.concurrency {
            if let Some(Err(e)) = self.inflight.next().await {
                return self.fail(e).await;
            }
        }
        let fut = self.upload.as_mut().expect("upload started").put_part(part);
        match permit {
            Some(p) => self.inflight.push(Box::pin(async move {
                let r = fut.await;
                drop(p);
                r
            })),
            None => self.inflight.push(fut),
        }
        self.parts += 1;
        Ok(())
    }

    async fn fail<T>(&mut self, e: Error) -> Result<T> {
        if let Err(abort) = self.abort_upload().await {
            tracing::warn!(key = %self.key, error = %abort, "abort of failed upload failed");
        }
        Err(e.with_key(self.key.as_str()))
    }

    /// Aborts the upload, if one started. It stays in `self` until the abort returns, so a
    /// caller cancelled mid-abort still leaves it to `Drop`.
    async fn abort_upload(&mut self) -> Result<()> {
        self.inflight.clear();
        let r = match self.upload.as_mut() {
            Some(up) => up.abort().await,
            None => Ok(()),
        };
        self.upload = None;
        r
    }

    /// Uploads the rest and commits the object.
    pub async fn finish(mut self) -> Result<PutResult> {
        if self.upload.is_none() {
            // Small object: one plain put.
            let opts = self.opts.take().unwrap_or_default();
            return self
                .store
                .put_opts(&self.key, self.buf.split().freeze(), opts)
                .await;
        }
        if !self.buf.is_empty() {
            let part = self.buf.split().freeze();
            self.send(part).await?;
        }
        while let Some(r) = self.inflight.next().await {
            if let Err(e) = r {
                return self.fail(e).await;
            }
        }
        // Kept in `self` while completing: cancelled here, `Drop` aborts it (an abort after a
        // complete that went through only fails with NoSuchUpload).
        let up = self.upload.as_mut().expect("upload started");
        match up.complete().await {
            Ok(r) => {
                self.upload = None;
                Ok(r)
            }
            Err(e) => {
                let _ = self.abort_upload().await;
                Err(e.with_key(self.key.as_str()))
            }
        }
    }

    /// Discards everything written.
    pub async fn abort(mut self) -> Result<()> {
        self.abort_upload().await
    }
}

impl Drop for Writer<'_> {
    /// Dropped mid-upload (a cancelled task): stop the parts and abort the upload in the
    /// background, so no multipart upload or temp file is left behind.
    fn drop(&mut self) {
        let Some(mut up) = self.upload.take() else {
            return;
        };
        self.inflight.clear();
        let runtime = tokio::runtime::Handle::try_current()
            .ok()
            .or_else(|| self.runtime.take());
        let Some(runtime) = runtime else {
            tracing::warn!(key = %self.key, "writer dropped outside a runtime: its upload stays open");
            return;
        };
        let (key, pending) = (self.key.clone(), Pending::new());
        runtime.spawn(async move {
            let _pending = pending;
            if let Err(e) = up.abort().await {
                tracing::warn!(key = %key, error = %e, "abort of a dropped upload failed");
            }
        });
    }
}

/// Aborts spawned by dropped writers and not yet done.
static PENDING: AtomicUsize = AtomicUsize::new(0);
static SETTLED: Notify = Notify::const_new();

/// One spawned abort (or an upload's creation that may need one), counted in [`PENDING`]
/// until it ends or its task is dropped.
pub(crate) struct Pending;

impl Pending {
    pub(crate) fn new() -> Pending {
        PENDING.fetch_add(1, Ordering::SeqCst);
        Pending
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if PENDING.fetch_sub(1, Ordering::SeqCst) == 1 {
            SETTLED.notify_waiters();
        }
    }
}

/// Waits until every abort started by a dropped, unfinished [`Writer`] has ended. A process
/// that cancels transfers (Ctrl-C) calls this, under a timeout, before it exits.
pub async fn settle_aborts() {
    loop {
        let settled = SETTLED.notified();
        tokio::pin!(settled);
        settled.as_mut().enable();
        if PENDING.load(Ordering::SeqCst) == 0 {
            return;
        }
        settled.await;
    }
}

/// Uploads a stream of chunks to `key` in bounded memory.
pub async fn put_stream<S>(
    store: &dyn Store,
    key: &Key,
    mut data: S,
    put: PutOptions,
    opts: WriterOptions,
) -> Result<PutResult>
where
    S: Stream<Item = Result<Bytes>> + Unpin + Send,
{
    let mut w = Writer::new(store, key.clone(), put, opts);
    while let Some(chunk) = data.next().await {
        match chunk {
            Ok(c) => w.write(c).await?,
            Err(e) => {
                let _ = w.abort().await;
                return Err(e);
            }
        }
    }
    w.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryStore;
    use crate::StoreExt;

    #[tokio::test]
    async fn a_stream_past_the_stores_part_limit_is_refused_and_writes_nothing() {
        let store = MemoryStore::new();
        let key = Key::new("many").unwrap();
        let max = store.capabilities().max_parts as usize;
        let pieces = (0..=max).map(|_| Ok(Bytes::from_static(b"x")));
        let opts = WriterOptions {
            part_size: 1,
            concurrency: 3,
            size_hint: None,
        };
        let e = put_stream(
            &store,
            &key,
            futures::stream::iter(pieces),
            PutOptions::default(),
            opts,
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(
            e.to_string().contains("more than 10000 parts of 1 bytes"),
            "{e}"
        );
        assert!(!store.exists(&key).await.unwrap());
    }
}
