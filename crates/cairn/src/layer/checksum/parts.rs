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
/// A part whose asked bytes exceed this streams instead of being held: they go out as they
/// arrive, the last chunk held back until the part's digest matches, and a mismatch ends
/// the stream with `Integrity` (what went out cannot be read again; a download, writing to a
/// temp file, downloads again). Bounds a reader's memory to about a chunk, where holding
/// every part would cost `concurrency × part_size` per transfer. Smaller pieces are held
/// whole and re-read on a mismatch.
pub const HOLD_LIMIT: u64 = 1 << 20;
/// The same for a compressed or encrypted single put, whose ranges are read through frames
/// (a seek table, then the frames a range needs), so a whole read per range costs more.
pub const TRANSFORMED_RANGE_LIMIT: u64 = 2 << 20;

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
    /// The stored object's size: a read of all of it is asked for as a full read.
    pub(super) size: u64,
    pub(super) ctx: Ctx,
}

/// A part being streamed: how far it got, its hash so far, and the piece held back.
pub(super) struct Flow {
    span: Span,
    keep: Range<u64>,
    at: u64,
    hasher: Sha256,
    held: Option<Bytes>,
    src: Source,
}

pub(super) struct Source {
    pub(super) body: BoxStream<'static, Result<Bytes>>,
    pub(super) pos: u64,
    pub(super) end: u64,
    pub(super) held: Option<Bytes>,
}

impl Source {
    /// Hashes the next `len` bytes and keeps those at `keep` (offsets within them): only the
    /// bytes asked for are held while the part is checked. None if the body broke off or
    /// ended first.
    async fn take(&mut self, len: u64, keep: Range<u64>) -> Option<Result<([u8; 32], Bytes)>> {
        let mut hasher = Sha256::new();
        let (mut at, mut kept, mut whole) = (0u64, BytesMut::new(), None);
        while at < len {
            let chunk = match self.held.take() {
                Some(c) => c,
                None => match self.body.next().await {
                    Some(Ok(c)) => c,
                    Some(Err(e)) => return Some(Err(e)),
                    None => return None,
                },
            };
            let need = (len - at) as usize;
            let (now, rest) = if chunk.len() > need {
                (chunk.slice(..need), Some(chunk.slice(need..)))
            } else {
                (chunk, None)
            };
            self.held = rest;
            hasher.update(&now);
            let end = at + now.len() as u64;
            let (from, to) = (keep.start.clamp(at, end), keep.end.clamp(at, end));
            if from < to {
                let piece = now.slice((from - at) as usize..(to - at) as usize);
                // A chunk that holds all that is kept is kept without a copy.
                if from == keep.start && to == keep.end {
                    whole = Some(piece);
                } else {
                    kept.extend_from_slice(&piece);
                }
            }
            at = end;
        }
        self.pos += len;
        Some(Ok((
            hasher.finalize().into(),
            whole.unwrap_or_else(|| kept.freeze()),
        )))
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
        let mut bad = BadReads::default();
        let mut last: Option<Error> = None;
        let keep = self.want.start.max(span.bytes.start) - span.bytes.start
            ..self.want.end.min(span.bytes.end) - span.bytes.start;
        for read in 1..=3 * READS_BEFORE_CORRUPT {
            let actual = match self.read_part(&span, keep.clone()).await {
                Ok((actual, kept)) if actual == span.sha256 => {
                    self.next += 1;
                    return Ok(Some(kept));
                }
                Ok((actual, _)) => actual,
                Err(e) if e.is_temporary() => {
                    tracing::warn!(key = %self.key, read, error = %e, "part broke off; reading it again");
                    last = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
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

    /// The digest of `span` and its bytes at `keep`, from a body lined up with it.
    async fn read_part(&mut self, span: &Span, keep: Range<u64>) -> Result<([u8; 32], Bytes)> {
        let len = span.bytes.end - span.bytes.start;
        let mut src = self.source_for(span).await?;
        let r = match src.take(len, keep).await {
            Some(r) => r?,
            None => {
                return Err(self.transit(format!("the body ended before byte {}", span.bytes.end)))
            }
        };
        // What follows this part serves the next one.
        self.source = Some(src);
        Ok(r)
    }

    /// A body that starts at `span`: the current one if it lines up, else a read covering
    /// every part left (once), else a read of this part alone.
    async fn source_for(&mut self, span: &Span) -> Result<Source> {
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
        match self.source.take() {
            Some(src) if src.pos == span.bytes.start && span.bytes.end <= src.end => Ok(src),
            _ => Ok(Source {
                body: self.fetch(span.bytes.clone()).await?.body,
                pos: span.bytes.start,
                end: span.bytes.end,
                held: None,
            }),
        }
    }

    /// The bytes of `want` within `span`, as offsets in the part.
    fn keep_of(&self, span: &Span) -> Range<u64> {
        self.want.start.max(span.bytes.start) - span.bytes.start
            ..self.want.end.min(span.bytes.end) - span.bytes.start
    }

    /// The next item of the body: a held piece, a chunk of a streamed part, or the end.
    pub(super) async fn next_item(&mut self, flow: &mut Option<Flow>) -> Result<Option<Bytes>> {
        loop {
            let Some(f) = flow.as_mut() else {
                let Some(span) = self.spans.get(self.next).cloned() else {
                    return Ok(None);
                };
                let keep = self.keep_of(&span);
                if keep.end - keep.start <= HOLD_LIMIT {
                    return self.next_piece().await;
                }
                let src = self.source_for(&span).await?;
                *flow = Some(Flow {
                    span,
                    keep,
                    at: 0,
                    hasher: Sha256::new(),
                    held: None,
                    src,
                });
                continue;
            };
            let len = f.span.bytes.end - f.span.bytes.start;
            if f.at == len {
                let mut f = flow.take().expect("a part in flow");
                let actual: [u8; 32] = f.hasher.finalize().into();
                if actual != f.span.sha256 {
                    let m = ChecksumMismatch {
                        expected: hex::encode(f.span.sha256),
                        actual: hex::encode(actual),
                    };
                    let at = f.span.bytes.start;
                    return Err(self
                        .ctx
                        .err(ErrorKind::Integrity, format!("{m} (the part at byte {at})"))
                        .with_source(m));
                }
                self.next += 1;
                f.src.pos = f.span.bytes.end;
                self.source = Some(f.src);
                match f.held {
                    Some(last) => return Ok(Some(last)),
                    None => continue,
                }
            }
            let chunk = match f.src.held.take() {
                Some(c) => c,
                None => match f.src.body.next().await {
                    Some(Ok(c)) => c,
                    Some(Err(e)) => return Err(e),
                    None => {
                        let end = f.span.bytes.end;
                        return Err(self.transit(format!("the body ended before byte {end}")));
                    }
                },
            };
            let need = (len - f.at) as usize;
            let now = if chunk.len() > need {
                f.src.held = Some(chunk.slice(need..));
                chunk.slice(..need)
            } else {
                chunk
            };
            f.hasher.update(&now);
            let end = f.at + now.len() as u64;
            let (from, to) = (f.keep.start.clamp(f.at, end), f.keep.end.clamp(f.at, end));
            let piece =
                (from < to).then(|| now.slice((from - f.at) as usize..(to - f.at) as usize));
            f.at = end;
            // The last piece is held back until the part's digest is known.
            if let Some(prev) = piece.and_then(|p| f.held.replace(p)) {
                return Ok(Some(prev));
            }
        }
    }

    /// A read of `bytes` below (owning what it needs: the reader holds a body, not `Sync`).
    fn fetch(
        &self,
        bytes: Range<u64>,
    ) -> impl std::future::Future<Output = Result<GetResult>> + Send + 'static {
        let (store, key) = (self.store.clone(), self.key.clone());
        // All of it (a small single put): a full read, which a tier below can fill from.
        let whole = bytes.start == 0 && bytes.end >= self.size;
        let opts = GetOptions {
            range: (!whole).then_some(GetRange::Bounded(bytes)),
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

    /// The body: `first` (the first item, already read) and then the items after it.
    pub(super) fn stream(
        self,
        first: Option<Bytes>,
        flow: Option<Flow>,
    ) -> BoxStream<'static, Result<Bytes>> {
        let rest = futures::stream::try_unfold((self, flow), |(mut reader, mut flow)| async move {
            Ok(reader
                .next_item(&mut flow)
                .await?
                .map(|b| (b, (reader, flow))))
        });
        futures::stream::iter(first.map(Ok)).chain(rest).boxed()
    }
}
