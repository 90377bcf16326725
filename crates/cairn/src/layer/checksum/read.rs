//! Verified reads: small objects whole with re-reads, large ones streamed.

use super::*;
use crate::layer::stack::{Ctx, Decode};

impl<S: Store> ChecksumStore<S> {
    /// Reads a small object whole, verifies it, and hands over (the asked range of) verified
    /// bytes. A mismatch is read again; it is corruption (`Integrity`) once
    /// [`READS_BEFORE_CORRUPT`] reads returned the very same bad bytes (corruption at rest
    /// reads the same every time, a byte flipped in transit does not); after
    /// `3 * READS_BEFORE_CORRUPT` reads without that verdict the error is temporary. `first`
    /// is the reply to `opts`, reused when it is already the whole object.
    pub(super) async fn read_verified(
        &self,
        key: &Key,
        opts: GetOptions,
        first: GetResult,
        full: bool,
    ) -> Result<GetResult> {
        let whole = GetOptions {
            range: None,
            ..opts.clone()
        };
        let ctx = Ctx::new(self, key);
        let mut next = if full { Some(first) } else { None };
        let mut last: Option<Error> = None;
        let mut bad = BadReads::default();
        for read in 1..=3 * READS_BEFORE_CORRUPT {
            let r = match next.take() {
                Some(r) => r,
                None => self.fetch(key, whole.clone()).await?,
            };
            let (meta, range, vouched) = (r.meta.clone(), r.range.clone(), r.verified_sha256);
            let digest = self.to_verify(&GetResult {
                meta: meta.clone(),
                range: range.clone(),
                body: futures::stream::empty().boxed(),
                verified_sha256: vouched.clone(),
            });
            let body = GetResult {
                body: r.body,
                meta: meta.clone(),
                range: range.clone(),
                verified_sha256: None,
            }
            .bytes()
            .await;
            // A body cut off in transit: nothing was handed over, so read again.
            let body = match body {
                Ok(b) => b,
                Err(e) if e.is_temporary() => {
                    tracing::warn!(%key, read, error = %e, "body broke off; reading the object again");
                    last = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let actual: [u8; 32] = Sha256::digest(&body).into();
            let ok = match &digest {
                None => true,
                Some(d) => parse_digest(self.names.sha256, d, &ctx)? == actual,
            };
            if ok && body.len() as u64 == range.end - range.start {
                let want = match &opts.range {
                    Some(g) => g.resolve(meta.size).map_err(|e| {
                        e.with_operation("get")
                            .with_store(self)
                            .with_key(key.as_str())
                    })?,
                    None => 0..meta.size,
                };
                let part = body.slice(want.start as usize..want.end as usize);
                return Ok(GetResult {
                    meta,
                    range: want,
                    body: futures::stream::once(async move { Ok(part) }).boxed(),
                    verified_sha256: vouched,
                });
            }
            let m = ChecksumMismatch {
                expected: digest.unwrap_or_default(),
                actual: hex::encode(actual),
            };
            if bad.corrupt(actual) {
                return Err(ctx
                    .err(
                        ErrorKind::Integrity,
                        format!("{m} on each of {READS_BEFORE_CORRUPT} reads"),
                    )
                    .with_source(m));
            }
            tracing::warn!(%key, read, "checksum mismatch; reading the object again");
            last = Some(
                ctx.err(
                    ErrorKind::Network,
                    format!("reads differed from one another (faults in transit); last: {m}"),
                )
                .set_temporary(true),
            );
        }
        // No body came back bad the same way on enough reads: faults in transit, not
        // corruption; the question stays open (a temporary error).
        Err(last.expect("at least one read"))
    }
}

/// Ends `body` with a temporary Network error if it does not hold exactly `len` bytes: a
/// body cut short in transit must not pass for the object.
pub(super) fn length_checked(
    body: BoxStream<'static, Result<Bytes>>,
    len: u64,
    ctx: Ctx,
) -> BoxStream<'static, Result<Bytes>> {
    futures::stream::unfold(Some((body, 0u64)), move |st| {
        let ctx = ctx.clone();
        async move {
            let (mut body, seen) = st?;
            match body.next().await {
                Some(Ok(c)) => {
                    let seen = seen + c.len() as u64;
                    Some((Ok(c), Some((body, seen))))
                }
                Some(Err(e)) => Some((Err(e), None)),
                None if seen == len => None,
                None => {
                    let e = ctx
                        .err(
                            ErrorKind::Network,
                            format!("the body held {seen} bytes, the range {len}"),
                        )
                        .with_hint("the connection broke mid-body; retry");
                    Some((Err(e), None))
                }
            }
        }
    })
    .boxed()
}

/// The reads that came back bad, by the SHA-256 of what they returned: corruption at rest
/// returns the same bytes every time, faults in transit do not.
#[derive(Default)]
pub(super) struct BadReads(Option<([u8; 32], u32)>);

impl BadReads {
    /// Counts one bad read; true once [`READS_BEFORE_CORRUPT`] reads returned these bytes.
    pub(super) fn corrupt(&mut self, actual: [u8; 32]) -> bool {
        let n = match self.0 {
            Some((a, n)) if a == actual => n + 1,
            _ => 1,
        };
        self.0 = Some((actual, n));
        n >= READS_BEFORE_CORRUPT
    }
}

pub(super) fn parse_digest(name: &str, hex_digest: &str, ctx: &Ctx) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_digest.trim(), &mut out).map_err(|_| {
        ctx.err(
            ErrorKind::Integrity,
            format!("recorded {name} {hex_digest:?} is not a SHA-256"),
        )
    })?;
    Ok(out)
}

/// Hashes the body as it passes; fails at the end if the digest differs.
pub(super) struct Verify {
    pub(super) hasher: Sha256,
    pub(super) expected: [u8; 32],
    pub(super) queue: VecDeque<Bytes>,
    pub(super) checked: bool,
    pub(super) ctx: Ctx,
}

impl Decode for Verify {
    fn push(&mut self, input: Bytes) -> Result<()> {
        self.hasher.update(&input);
        self.queue.push_back(input);
        Ok(())
    }
    fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        Ok(self.queue.pop_front())
    }
    fn finish_chunk(&mut self) -> Result<Option<Bytes>> {
        if !self.checked {
            self.checked = true;
            let actual: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
            if actual != self.expected {
                let m = ChecksumMismatch {
                    expected: hex::encode(self.expected),
                    actual: hex::encode(actual),
                };
                return Err(self
                    .ctx
                    .err(ErrorKind::Integrity, m.to_string())
                    .with_source(m));
            }
        }
        Ok(self.queue.pop_front())
    }
}
