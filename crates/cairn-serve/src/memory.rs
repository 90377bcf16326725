//! One byte budget for the whole gateway: every upload's part buffers and every body s3s
//! reads whole take their bytes from it first, so RSS stays bounded however many requests
//! arrive; a request that does not fit waits (its body unread) until others finish.
//!
//! cairn's `transfer::Budget` is per operation and private to the library; this is the same
//! idea across requests.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

const UNIT: u64 = 1024;

/// The gateway's memory budget.
#[derive(Debug, Clone)]
pub struct Memory {
    sem: Arc<Semaphore>,
    units: u32,
}

/// Marks a request whose whole body s3s reads, already reserved by the front service: its
/// handler takes no second reservation (waiting for one while holding the first could
/// deadlock the budget), and the writer's copy of that body is bounded by it.
#[derive(Debug, Clone, Copy)]
pub struct Held;

/// Bytes held until dropped.
#[derive(Debug)]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
}

impl Memory {
    /// A budget of `bytes`.
    pub fn new(bytes: u64) -> Self {
        let units = (bytes / UNIT).clamp(1, u32::MAX as u64 / 2) as u32;
        Memory {
            sem: Arc::new(Semaphore::new(units as usize)),
            units,
        }
    }

    /// Waits for `bytes` (capped at the whole budget, so one request larger than it still
    /// runs, alone).
    pub async fn reserve(&self, bytes: u64) -> Reservation {
        let units = bytes.div_ceil(UNIT).clamp(1, self.units as u64) as u32;
        let permit = self
            .sem
            .clone()
            .acquire_many_owned(units)
            .await
            .expect("never closed");
        Reservation { _permit: permit }
    }
}
