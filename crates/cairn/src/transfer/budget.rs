//! One memory budget per operation: buffered parts and whole small objects take permits, and
//! part buffers are reused.
//!
//! Reuse matters as much as the permits: freed multi-MiB buffers land in whichever thread's
//! malloc arena freed them and are not returned to the OS, so allocating a fresh buffer per part
//! let a 64 MiB budget reach twice that in RSS; fresh pages also cost a page fault each.

use bytes::Bytes;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Permits count KiB, so a u32 covers budgets up to 4 TiB.
const UNIT: u64 = 1024;

/// A byte budget shared by everything in flight in one operation.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    sem: Arc<Semaphore>,
    units: u32,
    pool: Arc<Pool>,
}

/// Idle part buffers, at most the budget's bytes of them.
#[derive(Debug)]
struct Pool {
    free: Mutex<Vec<Vec<u8>>>,
    limit: u64,
}

impl Pool {
    fn put(&self, buf: Vec<u8>) {
        let mut free = self.free.lock().unwrap();
        let held: u64 = free.iter().map(|b| b.capacity() as u64).sum();
        if held + buf.capacity() as u64 <= self.limit {
            free.push(buf);
        }
    }
}

/// A buffer from [`Budget::buffer`]: fill it, then [`freeze`](PartBuf::freeze) it. It goes
/// back to the pool when dropped, or, once frozen, when the last `Bytes` clone drops.
pub(crate) struct PartBuf {
    buf: Vec<u8>,
    pool: Arc<Pool>,
}

impl AsRef<[u8]> for PartBuf {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for PartBuf {
    fn drop(&mut self) {
        self.pool.put(std::mem::take(&mut self.buf));
    }
}

impl PartBuf {
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// The filled buffer as `Bytes`.
    pub(crate) fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl Budget {
    /// A budget of `bytes` (at least one unit).
    pub(crate) fn new(bytes: u64) -> Self {
        let units = bytes.div_ceil(UNIT).clamp(1, u32::MAX as u64) as u32;
        Budget {
            sem: Arc::new(Semaphore::new(units as usize)),
            units,
            pool: Arc::new(Pool {
                free: Mutex::new(Vec::new()),
                limit: bytes,
            }),
        }
    }

    /// A buffer of exactly `len` bytes, reused from an earlier part when one is big enough
    /// (its old contents are left in place: the caller overwrites all of it).
    pub(crate) fn buffer(&self, len: usize) -> PartBuf {
        let reused = {
            let mut free = self.pool.free.lock().unwrap();
            free.iter()
                .position(|b| b.capacity() >= len)
                .map(|i| free.swap_remove(i))
        };
        let mut buf = reused.unwrap_or_default();
        buf.resize(len, 0);
        PartBuf {
            buf,
            pool: self.pool.clone(),
        }
    }

    /// Waits until `bytes` fit. A request larger than the whole budget waits for all of it,
    /// so one oversized item runs alone instead of deadlocking.
    pub(crate) async fn acquire(&self, bytes: u64) -> OwnedSemaphorePermit {
        let want = bytes.div_ceil(UNIT).clamp(1, self.units as u64) as u32;
        self.sem
            .clone()
            .acquire_many_owned(want)
            .await
            .expect("the budget is never closed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn oversized_request_takes_everything_then_releases() {
        let b = Budget::new(10 * 1024);
        let p = b.acquire(1 << 30).await;
        assert_eq!(b.sem.available_permits(), 0);
        drop(p);
        assert_eq!(b.sem.available_permits(), 10);
        let _a = b.acquire(4 * 1024).await;
        let _c = b.acquire(1).await;
        assert_eq!(b.sem.available_permits(), 5);
    }

    #[test]
    fn buffers_come_back_when_the_last_clone_drops() {
        let b = Budget::new(100);
        let mut p = b.buffer(60);
        p.as_mut_slice().fill(7);
        let bytes = p.freeze();
        let clone = bytes.slice(10..20);
        drop(bytes);
        assert!(
            b.pool.free.lock().unwrap().is_empty(),
            "a clone still holds it"
        );
        assert_eq!(&clone[..], &[7u8; 10]);
        drop(clone);
        assert_eq!(b.pool.free.lock().unwrap().len(), 1);
        // Reused for a smaller part, at the requested length.
        let again = b.buffer(40);
        assert_eq!(again.buf.len(), 40);
        assert!(b.pool.free.lock().unwrap().is_empty());
        // More idle bytes than the budget are freed, not kept.
        drop(again.freeze());
        b.buffer(90).freeze();
        let held: usize = b
            .pool
            .free
            .lock()
            .unwrap()
            .iter()
            .map(|v| v.capacity())
            .sum();
        assert!(held <= 100, "pool holds {held} bytes");
    }
}
