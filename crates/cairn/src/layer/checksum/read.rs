//! The pieces of a verified read: the streamed whole-object check, the length check, and
//! the count of bad reads that tells corruption at rest from faults in transit.

use super::*;
use crate::layer::stack::{Ctx, Decode};

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
/// returns the same bytes every time, faults in transit do not. Each digest counts apart,
/// because a parallel read of an object with several bad parts fails first on whichever
/// part lands first, so its verdicts alternate between the same few digests.
#[derive(Default)]
pub(super) struct BadReads(Vec<([u8; 32], u32)>);

impl BadReads {
    /// Counts one bad read; true once [`READS_BEFORE_CORRUPT`] reads returned these bytes.
    pub(super) fn corrupt(&mut self, actual: [u8; 32]) -> bool {
        let n = match self.0.iter_mut().find(|(a, _)| *a == actual) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.0.push((actual, 1));
                1
            }
        };
        n >= READS_BEFORE_CORRUPT
    }
}

/// Runs `read` (a whole read, collected before anything is handed over) again while it ends
/// in a digest mismatch, by the [`BadReads`] rule: the `Integrity` error stands once the same
/// bad bytes came back [`READS_BEFORE_CORRUPT`] times; after `3 * READS_BEFORE_CORRUPT` reads
/// that went wrong differently it is a temporary `Network` error (faults in transit).
pub(crate) async fn reread_on_mismatch<T, F, Fut>(
    op: &'static str,
    key: &Key,
    mut read: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut bad = BadReads::default();
    for attempt in 1..=3 * READS_BEFORE_CORRUPT {
        let e = match read().await {
            Err(e) if e.kind() == ErrorKind::Integrity => e,
            r => return r,
        };
        let Some(m) = mismatch_of(&e) else {
            return Err(e);
        };
        let mut actual = [0u8; 32];
        if hex::decode_to_slice(&m.actual, &mut actual).is_err() || bad.corrupt(actual) {
            return Err(e);
        }
        if attempt == 3 * READS_BEFORE_CORRUPT {
            return Err(Error::new(
                ErrorKind::Network,
                format!("reads differed from one another (faults in transit); last: {m}"),
            )
            .set_temporary(true)
            .with_operation(op)
            .with_key(key.as_str()));
        }
        tracing::warn!(%key, attempt, op, "bytes did not match the recorded SHA-256; reading them again");
    }
    unreachable!("the last attempt returns")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_reads_count_each_digest_apart() {
        // Two parts stored swapped: a parallel read fails on either first, in any order.
        let mut bad = BadReads::default();
        let verdicts: Vec<bool> = [[1u8; 32], [2; 32], [1; 32], [2; 32], [2; 32]]
            .into_iter()
            .map(|d| bad.corrupt(d))
            .collect();
        assert_eq!(verdicts, [false, false, false, false, true]);
        // Flips in transit never return the same bytes three times.
        let mut bad = BadReads::default();
        assert!((0..9u8).all(|i| !bad.corrupt([i; 32])));
    }
}
