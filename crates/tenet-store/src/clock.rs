//! Time sources and the hybrid logical clock that issues commit timestamps.
//!
//! Logic never reads the system time directly: it asks a [`Clock`], so tests can drive
//! time with [`ManualClock`]. [`Hlc`] turns physical milliseconds into strictly
//! increasing commit timestamps.
//!
//! # Crash consistency
//! The clock must never go backwards across restarts, even if the machine's clock does.
//! The store persists a *lease*: a millisecond bound that no issued ts reaches. Before
//! issuing a ts at or past the lease, the lease is extended (synchronously written).
//! After a restart the clock starts at the persisted lease, so every new ts is greater
//! than every ts issued before the crash. A clean close persists the lease as one
//! millisecond past the newest issued ts, so only a crash makes the clock jump ahead
//! (by at most [`LEASE_AHEAD_MILLIS`]).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::ts::Ts;

/// How far ahead of the newest issued ts the lease is pushed when extended.
pub const LEASE_AHEAD_MILLIS: u64 = 2_000;

/// A source of physical time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> u64;
}

/// The machine's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the system time
    fn now_millis(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(millis: u64) -> Self {
        ManualClock(AtomicU64::new(millis))
    }
    pub fn set(&self, millis: u64) {
        self.0.store(millis, Ordering::SeqCst);
    }
    pub fn advance(&self, millis: u64) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Hybrid logical clock state. Not thread-safe by itself: the store keeps it under its
/// commit lock.
#[derive(Debug)]
pub struct Hlc {
    last: Ts,
    lease_millis: u64,
}

impl Hlc {
    /// A clock resuming after a persisted lease (0 for a new store).
    pub fn resume(lease_millis: u64) -> Self {
        Hlc {
            last: Ts::from_millis(lease_millis),
            lease_millis,
        }
    }

    /// The newest ts issued (or the resume point).
    pub fn last(&self) -> Ts {
        self.last
    }

    /// The next ts for physical time `now_millis`. Returns the new lease to persist
    /// *before* the ts is used, when the lease must move.
    pub fn next(&mut self, now_millis: u64) -> (Ts, Option<u64>) {
        let ts = Ts::from_millis(now_millis).max(self.last.next());
        self.last = ts;
        if ts.millis() >= self.lease_millis {
            self.lease_millis = ts.millis() + LEASE_AHEAD_MILLIS;
            (ts, Some(self.lease_millis))
        } else {
            (ts, None)
        }
    }

    /// Makes every later ts greater than `ts` (used when a reader asks for a ts the clock
    /// has not issued yet). Returns a lease to persist, as [`Hlc::next`].
    pub fn observe(&mut self, ts: Ts) -> Option<u64> {
        if ts <= self.last {
            return None;
        }
        self.last = ts;
        if ts.millis() >= self.lease_millis {
            self.lease_millis = ts.millis() + LEASE_AHEAD_MILLIS;
            Some(self.lease_millis)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictly_increasing_even_when_time_stalls_or_goes_back() {
        let mut hlc = Hlc::resume(0);
        let (a, lease) = hlc.next(1000);
        assert_eq!(a, Ts::from_millis(1000));
        assert_eq!(lease, Some(1000 + LEASE_AHEAD_MILLIS));
        let (b, lease) = hlc.next(1000);
        assert_eq!(b, a.next());
        assert_eq!(lease, None);
        let (c, _) = hlc.next(500);
        assert!(c > b);
    }

    #[test]
    fn resume_starts_past_the_lease() {
        let mut hlc = Hlc::resume(0);
        let (a, lease) = hlc.next(1000);
        let mut resumed = Hlc::resume(lease.unwrap());
        let (b, _) = resumed.next(900);
        assert!(b > a);
        assert!(b.millis() >= 1000 + LEASE_AHEAD_MILLIS);
    }
}
