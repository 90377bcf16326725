//! Requests in flight under backpressure: additive increase, multiplicative decrease (AIMD).
//!
//! A [`Aimd`] limits how many requests run at once. Each request takes a [`Permit`] and ends
//! it as [`Permit::success`], [`Permit::throttled`] (the server said slow down: 503 SlowDown,
//! 429) or neither (dropped). A throttle cuts the limit to `BETA` × what was in flight (the
//! AWS SDKs' adaptive mode and CUBIC use 0.7), once per round: a throttle from a request that
//! started before the last cut is the same congestion, already answered. Each success adds
//! `1 / limit`, so a round of successes adds about one request, and only while the limit is
//! in use (half of it in flight or more; an idle limit does not grow). It starts at its ceiling, so nothing waits until a
//! server first pushes back.

use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The multiplicative decrease.
const BETA: f64 = 0.7;

/// A shared limit on requests in flight that follows the server's throttling.
#[derive(Debug)]
pub struct Aimd {
    state: Mutex<State>,
    freed: Notify,
    min: f64,
    max: f64,
}

#[derive(Debug)]
struct State {
    limit: f64,
    in_flight: usize,
    /// Counts the cuts; a permit remembers the round it started in.
    round: u64,
}

/// One request's slot; ends the request's part in the limit when consumed or dropped.
#[derive(Debug)]
pub struct Permit {
    aimd: Arc<Aimd>,
    round: u64,
    done: bool,
}

impl Aimd {
    /// A limit between `min` and `max` (at least 1), starting at `max`.
    pub fn new(min: usize, max: usize) -> Arc<Aimd> {
        let min = min.max(1) as f64;
        let max = (max as f64).max(min);
        Arc::new(Aimd {
            state: Mutex::new(State {
                limit: max,
                in_flight: 0,
                round: 0,
            }),
            freed: Notify::new(),
            min,
            max,
        })
    }

    /// Requests allowed in flight now.
    pub fn limit(&self) -> usize {
        self.state.lock().expect("aimd lock").limit as usize
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.state.lock().expect("aimd lock").in_flight
    }

    /// Waits for a slot under the limit.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a release in between is not missed.
            freed.as_mut().enable();
            if let Some(p) = self.try_acquire() {
                return p;
            }
            freed.await;
        }
    }

    /// A slot if one is free now.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        let mut s = self.state.lock().expect("aimd lock");
        if s.in_flight >= (s.limit as usize).max(1) {
            return None;
        }
        s.in_flight += 1;
        Some(Permit {
            aimd: self.clone(),
            round: s.round,
            done: false,
        })
    }

    fn end(&self, round: u64, outcome: Option<bool>) {
        let mut s = self.state.lock().expect("aimd lock");
        // In use: at least half the limit in flight (Linux's test for a cwnd-limited flow).
        let busy = 2 * s.in_flight >= s.limit as usize;
        match outcome {
            // Throttled, and the first of its round: cut from what was actually in flight.
            Some(false) if round == s.round => {
                s.limit = (s.limit.min(s.in_flight as f64) * BETA).max(self.min);
                s.round += 1;
                metrics::counter!("cairn_http_throttled_total").increment(1);
            }
            Some(false) => metrics::counter!("cairn_http_throttled_total").increment(1),
            Some(true) if busy => s.limit = (s.limit + 1.0 / s.limit).min(self.max),
            _ => {}
        }
        s.in_flight -= 1;
        metrics::gauge!("cairn_http_concurrency_limit").set(s.limit.floor());
        drop(s);
        self.freed.notify_waiters();
    }
}

impl Permit {
    /// The server handled the request (any answer but a throttle).
    pub fn success(mut self) {
        self.done = true;
        self.aimd.end(self.round, Some(true));
    }

    /// The server asked to slow down.
    pub fn throttled(mut self) {
        self.done = true;
        self.aimd.end(self.round, Some(false));
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done {
            self.aimd.end(self.round, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes `n` permits at once.
    fn take(a: &Arc<Aimd>, n: usize) -> Vec<Permit> {
        (0..n)
            .map(|_| a.try_acquire().expect("a free slot"))
            .collect()
    }

    #[test]
    fn starts_at_the_ceiling_and_gates_there() {
        let a = Aimd::new(1, 4);
        let p = take(&a, 4);
        assert!(a.try_acquire().is_none(), "the fifth waits");
        drop(p);
        assert_eq!((a.limit(), a.in_flight()), (4, 0));
    }

    #[test]
    fn a_throttle_cuts_once_per_round_from_what_was_in_flight() {
        let a = Aimd::new(1, 64);
        // 20 in flight under a limit of 64: the cut is from 20, not from 64.
        let mut p = take(&a, 20);
        p.pop().unwrap().throttled();
        assert_eq!(a.limit(), 14, "0.7 x 20");
        // The others started in the same round: their throttles are the same congestion.
        for q in p.drain(..5) {
            q.throttled();
        }
        assert_eq!(a.limit(), 14);
        // A request started after the cut is a new round.
        drop(p);
        let q = take(&a, 10);
        let mut q = q.into_iter();
        q.next().unwrap().throttled();
        assert_eq!(a.limit(), 7, "0.7 x 10");
        drop(q);
        // Never below the floor.
        for _ in 0..20 {
            a.try_acquire().unwrap().throttled();
        }
        assert_eq!(a.limit(), 1);
    }

    #[test]
    fn successes_raise_it_while_it_is_in_use() {
        let a = Aimd::new(1, 16);
        take(&a, 10).pop().unwrap().throttled();
        assert_eq!(a.limit(), 7);
        // Idle below the limit: successes do not grow it.
        for _ in 0..100 {
            a.try_acquire().unwrap().success();
        }
        assert_eq!(a.limit(), 7);
        // Busy at the limit: a round of `limit` successes (half of them with half the limit
        // in flight or more) adds about a half.
        let mut rounds = 0;
        while a.limit() < 16 {
            let p = take(&a, a.limit());
            for q in p {
                q.success();
            }
            rounds += 1;
            assert!(rounds < 20, "stuck at {}", a.limit());
        }
        assert_eq!(rounds, 18, "7 -> 16, about half a request per round");
        // Capped at the ceiling.
        for q in take(&a, 16) {
            q.success();
        }
        assert_eq!(a.limit(), 16);
    }

    #[test]
    fn dropped_permits_free_their_slot_and_change_nothing() {
        let a = Aimd::new(1, 2);
        let p = take(&a, 2);
        drop(p);
        assert_eq!((a.limit(), a.in_flight()), (2, 0));
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_a_slot_frees() {
        let a = Aimd::new(1, 1);
        let first = a.acquire().await;
        let a2 = a.clone();
        let waiter = tokio::spawn(async move { a2.acquire().await.success() });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        first.success();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
        assert_eq!(a.in_flight(), 0);
    }
}
