//! What the proxy did: requests seen, and faults injected by kind.

use crate::plan::Fault;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    faults: [AtomicU64; Fault::ALL.len()],
}

impl Counters {
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn injected(&self, f: Fault) {
        self.faults[f.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Counts {
        Counts {
            requests: self.requests.load(Ordering::Relaxed),
            faults: Fault::ALL
                .into_iter()
                .map(|f| (f, self.faults[f.index()].load(Ordering::Relaxed)))
                .collect(),
        }
    }
}

/// A snapshot of the proxy's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Requests received (faulted or forwarded).
    pub requests: u64,
    /// Faults injected, by kind (every kind listed, zeros included).
    pub faults: BTreeMap<Fault, u64>,
}

impl Counts {
    /// Faults injected in all.
    pub fn total(&self) -> u64 {
        self.faults.values().sum()
    }

    /// Faults of one kind.
    pub fn of(&self, f: Fault) -> u64 {
        self.faults.get(&f).copied().unwrap_or(0)
    }
}

/// `requests=N faults=N reset=N 500=N ...`, one line.
impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "requests={} faults={}", self.requests, self.total())?;
        for (k, v) in &self.faults {
            write!(f, " {k}={v}")?;
        }
        Ok(())
    }
}
