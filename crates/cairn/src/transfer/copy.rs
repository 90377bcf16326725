//! Store-to-store copies, and the ordered part pipeline shared with file uploads.

use super::range::{BufSink, Pinned};
use super::{check_digest, part_size_for, split, Budget, Moved, TransferOptions, Writer};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::ops::reporter::{Action, Item, Outcome, Reporter};
use crate::store::{GetOptions, GetRange, Store};
use bytes::Bytes;
use futures::channel::mpsc;
use futures::stream::{self, BoxStream, StreamExt};
use futures::{FutureExt, SinkExt};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::ops::Range;
use std::sync::Mutex;
use tokio::sync::OwnedSemaphorePermit;

/// Feeds `ranges`, fetched by `fetch`, in order into `writer`.
///
/// Each part takes its budget before its fetch starts, in order, so the earliest unwritten part
/// never waits on later ones (no deadlock, even with a budget shared by many objects). Up to
/// `concurrency` fetches run at once; a part's permit is released once the part is stored.
pub(crate) async fn pipe_parts<F, Fut>(
    writer: &mut Writer<'_>,
    ranges: Vec<Range<u64>>,
    budget: &Budget,
    concurrency: usize,
    fetch: F,
    hasher: Option<&mut Sha256>,
) -> Result<()>
where
    F: Fn(Range<u64>) -> Fut + Sync,
    Fut: Future<Output = Result<Bytes>> + Send,
{
    let (mut tx, mut rx) = mpsc::channel::<Result<(Bytes, OwnedSemaphorePermit)>>(0);
    let fetch = &fetch;
    // A compressing or encrypting stack holds copies of each part while it is in flight.
    let copies = 1 + writer.part_copies() as u64;
    let producer = async move {
        let parts = stream::iter(ranges)
            .then(|r| async move {
                let p = budget.acquire((r.end - r.start) * copies).await;
                (r, p)
            })
            .map(|(r, p)| async move { fetch(r).await.map(|b| (b, p)) })
            .buffered(concurrency.max(1));
        // Boxed: erases the closure types so the future stays provably Send.
        let mut parts: BoxStream<'_, Result<(Bytes, OwnedSemaphorePermit)>> = parts.boxed();
        while let Some(item) = parts.next().await {
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                break;
            }
        }
    };
    let mut hasher = hasher;
    // The consumer also drives the writer's in-flight parts while it waits for the next one:
    // their permits must come back even when the writer is not full, or the producer could
    // wait forever for budget that only a stored part releases.
    let consumer = async move {
        loop {
            tokio::select! {
                item = rx.next() => {
                    let Some(item) = item else { break };
                    let (bytes, permit) = item?;
                    if let Some(h) = hasher.as_mut() {
                        h.update(&bytes);
                    }
                    writer.write_part(bytes, permit).await?;
                }
                // The abort runs here, in the handler, where no other branch can cancel it.
                failed = writer.wait_one(), if writer.has_inflight() => {
                    if let Some(e) = failed {
                        return Err(writer.fail_with(e).await);
                    }
                }
            }
        }
        Ok::<(), Error>(())
    };
    // When the consumer stops (done or failed) the producer is dropped with it: a producer
    // waiting on budget held by the writer's parts must not keep us waiting.
    let mut producer = Box::pin(producer.fuse());
    let mut consumer = Box::pin(consumer.fuse());
    loop {
        futures::select! {
            () = producer => {}
            r = consumer => return r,
        }
    }
}

/// Copies one object between stores (the same store works too). See [`copy_object`]. The
/// bytes pass through cairn (a client-side copy), so they are checked against the source's
/// recorded SHA-256, or the copy is [`Moved::unverified`] when it has none: the destination's
/// checksum layer then records a digest of bytes nothing vouched for, which is why such a copy
/// must not be reported like a checked one.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn copy_one(
    src: &dyn Store,
    src_key: &Key,
    dst: &dyn Store,
    dst_key: &Key,
    size_hint: Option<u64>,
    opts: &TransferOptions,
    budget: &Budget,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Moved> {
    let large_hint = size_hint.is_some_and(|s| s > 0 && s >= opts.multipart_threshold);
    let early = match size_hint {
        Some(s) if !large_hint => Some(budget.acquire(s).await),
        _ => None,
    };
    let hinted_part = part_size_for(dst, &opts.writer_options(size_hint)) as u64;
    let first_opts = if large_hint {
        GetOptions {
            range: Some(GetRange::Bounded(0..hinted_part)),
            ..Default::default()
        }
    } else {
        GetOptions::default()
    };
    let first = src.get_opts(src_key, first_opts).await?;
    let meta = first.meta;
    let size = meta.size;
    let first_end = first.range.end;
    let pinned = Pinned::new(src, src_key, &meta, opts.max_resumes);
    let want = opts.wanted_sha256(&meta);
    let moved = super::moved(opts, src, &meta);
    let put = opts.put_for(meta.content_type.clone(), &meta.metadata);

    if size < opts.multipart_threshold {
        let _permit = match early {
            Some(p) => p,
            None => budget.acquire(size).await,
        };
        let mut buf = BufSink::new(size as usize);
        pinned
            .read_whole((first.body, first_end), &mut buf, want.as_ref(), progress)
            .await?;
        dst.put_opts(dst_key, buf.into_bytes(), put).await?;
        return Ok(moved);
    }
    drop(early);

    let mut writer = Writer::new(dst, dst_key.clone(), put, opts.writer_options(Some(size)));
    let part = writer.part_size() as u64;
    let first_body: Mutex<Option<(BoxStream<'static, Result<Bytes>>, u64)>> =
        Mutex::new(Some((first.body, first_end)));
    let pinned = &pinned;
    let first_body = &first_body;
    let fetch = |r: Range<u64>| async move {
        let first = if r.start == 0 {
            first_body.lock().unwrap().take()
        } else {
            None
        };
        let mut sink = BufSink::new((r.end - r.start) as usize);
        pinned.read(r, first, &mut sink, progress).await?;
        Ok(sink.into_bytes())
    };
    let mut hasher = want.map(|_| Sha256::new());
    let r = pipe_parts(
        &mut writer,
        split(size, part),
        budget,
        opts.concurrency,
        fetch,
        hasher.as_mut(),
    )
    .await
    .and_then(|()| match (&want, hasher) {
        (Some(w), Some(h)) => check_digest(h, w, src, src_key),
        _ => Ok(()),
    });
    match r {
        Ok(()) => {
            writer.finish().await?;
            Ok(moved)
        }
        Err(e) => {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(key = %dst_key, error = %abort, "abort of failed copy failed");
            }
            Err(e)
        }
    }
}

/// Copies `src_key` in `src` to `dst_key` in `dst`, any two stores, in bounded memory.
///
/// Small objects are one GET and one put. Objects of at least
/// [`TransferOptions::multipart_threshold`] bytes are read as parallel ranged GETs pinned to
/// the source's ETag and written as a multipart upload, aborted on failure. Content type and
/// user metadata are carried over. Returns the bytes copied.
///
/// A source object with no recorded SHA-256 (written by another tool) is copied unchecked and
/// reported to `reporter` as [`Outcome::Unverified`]; [`TransferOptions::unverified`] on a head
/// of the source says the same.
pub async fn copy_object(
    src: &dyn Store,
    src_key: &Key,
    dst: &dyn Store,
    dst_key: &Key,
    opts: &TransferOptions,
    reporter: &dyn Reporter,
) -> Result<u64> {
    let item = Item {
        key: dst_key,
        action: Action::Transfer,
        size: None,
    };
    reporter.on_item_start(&item);
    let progress = |n: u64| reporter.on_progress(dst_key, n);
    let r = copy_one(
        src,
        src_key,
        dst,
        dst_key,
        None,
        opts,
        &opts.budget(),
        &progress,
    )
    .await;
    match &r {
        Ok(m) => reporter.on_item_done(&item, &m.outcome()),
        Err(e) => reporter.on_item_done(&item, &Outcome::Failed(e)),
    }
    r.map(|m| m.bytes)
}
