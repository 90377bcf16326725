//! One memory budget per operation: buffered parts and whole small objects take permits.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Permits count KiB, so a u32 covers budgets up to 4 TiB.
const UNIT: u64 = 1024;

/// A byte budget shared by everything in flight in one operation.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    sem: Arc<Semaphore>,
    units: u32,
}

impl Budget {
    /// A budget of `bytes` (at least one unit).
    pub(crate) fn new(bytes: u64) -> Self {
        let units = bytes.div_ceil(UNIT).clamp(1, u32::MAX as u64) as u32;
        Budget {
            sem: Arc::new(Semaphore::new(units as usize)),
            units,
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
}
