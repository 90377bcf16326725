//! Verified reads part by part: every part a read touches is read whole, checked against its
//! recorded SHA-256 and only then handed over, so a byte flipped in transit is read again
//! instead of reaching the caller, and a range is as verified as a full read.

use super::read::BadReads;
use super::*;
use crate::layer::stack::Ctx;
use bytes::BytesMut;
use std::ops::Range;

/// Parts larger than this are not buffered: such an object falls back to the streamed
/// whole-object check (full reads) or a length check (ranges). Bounds a read's memory.
pub const PART_BUFFER_LIMIT: u64 = 64 << 20;
/// A range of a single-put object larger than this is not served from a whole read (it
/// would cost the object per range): it falls back to a length check. The transfer engine's
/// default multipart threshold, so what it writes whole is at most this.
pub const SINGLE_PUT_RANGE_LIMIT: u64 = 16 << 20;

/// One part of the stored object: where it lies and its recorded SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) bytes: Range<u64>,
    pub(super) sha256: [u8; 32],
}

/// The parts of an object of `size` stored bytes, from a manifest's part list, or the whole
/// object as one part when it has only a whole digest. None if they cannot be used: a part
/// list that does not add up to the object (the object is then checked whole), a part over
/// [`PART_BUFFER_LIMIT`], or a digest that is not one.
pub(super) fn spans(size: u64, whole: &str, parts: Option<&[PartDigest]>) -> Option<Vec<Span>> {
    let digest = |h: &str| {
        let mut d = [0u8; 32];
        hex::decode_to_slice(h.trim(), &mut d).ok().map(|_| d)
    };
    let Some(parts) = parts else {
        if size > SINGLE_PUT_RANGE_LIMIT {
            return None;
        }
        return Some(vec![Span {
            bytes: 0..size,
            sha256: digest(whole)?,
        }]);
    };
    let mut out = Vec::with_capacity(parts.len());
    let mut at = 0u64;
    for p in parts {
        if p.size > PART_BUFFER_LIMIT {
            return None;
        }
        out.push(Span {
            bytes: at..at + p.size,
            sha256: digest(&p.sha256)?,
        });
        at += p.size;
    }
    (at == size && !out.is_empty()).then_some(out)
}

/// Serves `want` of an object part by part (see the module docs).
pub(super) struct PartReader<S> {
    pub(super) store: Arc<S>,
    pub(super) key: Key,
    /// The options of every read below: the caller's, pinned to the first reply's ETag.
    pub(super) opts: GetOptions,
    /// The parts `want` touches, in order, and the next one to serve.
    pub(super) spans: Vec<Span>,
    pub(super) next: usize,
    pub(super) want: Range<u64>,
    /// A body that continues at `pos` and ends at `end`: the first reply while it lines up
    /// with the parts, or one read covering all the parts left.
    pub(super) source: Option<Source>,
    /// Whether a read covering all the parts left was already tried.
    pub(super) widened: bool,
    pub(super) ctx: Ctx,
}

pub(super) struct Source {
    pub(super) body: BoxStream<'static, Result<Bytes>>,
    pub(super) pos: u64,
    pub(super) end: u64,
    pub(super) held: Option<Bytes>,
}

impl Source {
    /// The next `len` bytes, or None if the body broke off or ended first.
    async fn take(&mut self, len: u64) -> Option<Result<Bytes>> {
        let mut buf = BytesMut::new();
        while (buf.len() as u64) < len {
            let chunk = match self.held.take() {
                Some(c) => c,
                None => match self.body.next().await {
                    Some(Ok(c)) => c,
                    Some(Err(e)) => return Some(Err(e)),
                    None => return None,
                },
            };
            let need = (len - buf.len() as u64) as usize;
            let (now, rest) = if chunk.len() > need {
                (chunk.slice(..need), Some(chunk.slice(need..)))
            } else {
                (chunk, None)
            };
            self.held = rest;
            if buf.is_empty() && now.len() as u64 == len {
                self.pos += len;
                return Some(Ok(now));
            }
            buf.extend_from_slice(&now);
        }
        self.pos += len;
        Some(Ok(buf.freeze()))
    }
}

impl<S: Store> PartReader<S> {
    /// The next verified piece of `want`, None at its end. A part that mismatches is read
    /// again, alone; it is corrupt (`Integrity`) once [`READS_BEFORE_CORRUPT`] reads returned
    /// the very same bad bytes (corruption at rest reads the same every time, a flip in
    /// transit does not); after `3 * READS_BEFORE_CORRUPT` reads without that verdict the
    /// error is temporary.
    pub(super) async fn next_piece(&mut self) -> Result<Option<Bytes>> {
        let Some(span) = self.spans.get(self.next).cloned() else {
            return Ok(None);
        };
        let len = span.bytes.end - span.bytes.start;
        let mut bad = BadReads::default();
        let mut last: Option<Error> = None;
        for read in 1..=3 * READS_BEFORE_CORRUPT {
            let body = match self.read_part(&span).await {
                Ok(b) if b.len() as u64 == len => b,
                Ok(b) => {
                    last = Some(self.transit(format!(
                        "part at {} held {} bytes, not {len}",
                        span.bytes.start,
                        b.len()
                    )));
                    continue;
                }
                Err(e) if e.is_temporary() => {
                    tracing::warn!(key = %self.key, read, error = %e, "part broke off; reading it again");
                    last = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let actual: [u8; 32] = Sha256::digest(&body).into();
            if actual == span.sha256 {
                self.next += 1;
                let from = self.want.start.max(span.bytes.start) - span.bytes.start;
                let to = self.want.end.min(span.bytes.end) - span.bytes.start;
                return Ok(Some(body.slice(from as usize..to as usize)));
            }
            // A body that carried bad bytes is not trusted for the parts after this one.
            self.source = None;
            let m = ChecksumMismatch {
                expected: hex::encode(span.sha256),
                actual: hex::encode(actual),
            };
            let whose = if self.spans.len() == 1 && span.bytes.start == 0 {
                String::new()
            } else {
                format!(" (the part at byte {})", span.bytes.start)
            };
            if bad.corrupt(actual) {
                return Err(self
                    .ctx
                    .err(
                        ErrorKind::Integrity,
                        format!("{m}{whose} on each of {READS_BEFORE_CORRUPT} reads"),
                    )
                    .with_source(m));
            }
            tracing::warn!(key = %self.key, read, "checksum mismatch; reading the part again");
            last = Some(self.transit(format!(
                "reads differed from one another (faults in transit); last: {m}{whose}"
            )));
        }
        // No read came back bad the same way on enough reads: faults in transit, not
        // corruption; the question stays open (a temporary error).
        Err(last.expect("at least one read"))
    }

    fn transit(&self, message: String) -> Error {
        self.ctx
            .err(ErrorKind::Network, message)
            .set_temporary(true)
    }

    /// The bytes of `span`: from the current body if it is there and lines up, else from a
    /// read covering every part left (once), else from a read of this part alone.
    async fn read_part(&mut self, span: &Span) -> Result<Bytes> {
        let len = span.bytes.end - span.bytes.start;
        if self.source.is_none() && !self.widened {
            self.widened = true;
            let end = self.spans.last().expect("a part").bytes.end;
            let r = self.fetch(span.bytes.start..end).await?;
            self.source = Some(Source {
                body: r.body,
                pos: span.bytes.start,
                end,
                held: None,
            });
        }
        if let Some(src) = self.source.as_mut() {
            if src.pos == span.bytes.start && span.bytes.end <= src.end {
                match src.take(len).await {
                    Some(Ok(b)) => return Ok(b),
                    Some(Err(e)) => {
                        self.source = None;
                        return Err(e);
                    }
                    None => {
                        self.source = None;
                        return Err(
                            self.transit(format!("the body ended before byte {}", span.bytes.end))
                        );
                    }
                }
            }
            self.source = None;
        }
        self.fetch(span.bytes.clone()).await?.bytes().await
    }

    /// A read of `bytes` below (owning what it needs: the reader holds a body, not `Sync`).
    fn fetch(
        &self,
        bytes: Range<u64>,
    ) -> impl std::future::Future<Output = Result<GetResult>> + Send + 'static {
        let (store, key) = (self.store.clone(), self.key.clone());
        let opts = GetOptions {
            range: Some(GetRange::Bounded(bytes)),
            ..self.opts.clone()
        };
        async move { store.get_opts(&key, opts).await }
    }

    /// The parts `want` touches, out of all of them.
    pub(super) fn covering(all: Vec<Span>, want: &Range<u64>) -> Vec<Span> {
        if want.start == want.end {
            return Vec::new();
        }
        all.into_iter()
            .filter(|s| s.bytes.start < want.end && want.start < s.bytes.end)
            .collect()
    }

    /// The body: `first` (already verified) and then the pieces after it.
    pub(super) fn stream(self, first: Option<Bytes>) -> BoxStream<'static, Result<Bytes>> {
        let rest = futures::stream::try_unfold(self, |mut reader| async move {
            Ok(reader.next_piece().await?.map(|b| (b, reader)))
        });
        futures::stream::iter(first.map(Ok)).chain(rest).boxed()
    }
}
