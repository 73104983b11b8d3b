//! The foreground's latency, as background work needs to see it.
//!
//! Every commit of a user transaction ([`crate::Txn::commit`]) and one in
//! [`READ_SAMPLE`] point reads record how long they took into a [`LatencyMeter`]: a
//! histogram of atomic counters (log-linear buckets, eight per power of two, so a
//! quantile is exact to 12.5 %), cheap enough for the hot path and shared by every
//! thread without a lock. Jobs commit through the bulk interface of `bulk.rs`, not
//! through transactions (the one exception: a restore in place's undo snapshot, a
//! single commit), so what the meter sees is the tenants' own work. It also counts
//! the commits under way, so a commit stuck behind background work is seen before it
//! ends.
//!
//! One consumer — the job pacer in `tenet-jobs` — calls [`LatencyMeter::take`] on a
//! timer: it returns what was recorded since the last call and starts a new window.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sub-buckets per power of two.
const SUB: usize = 8;
/// Powers of two of microseconds covered: 1 µs to 2^27 µs (over 2 minutes).
const POWERS: usize = 28;
const BUCKETS: usize = SUB * POWERS;

/// One point read in this many is timed.
pub const READ_SAMPLE: u64 = 8;

/// A latency histogram filled from many threads and drained by one.
pub struct LatencyMeter {
    buckets: Box<[AtomicU64]>,
    sum_micros: AtomicU64,
}

impl Default for LatencyMeter {
    fn default() -> Self {
        LatencyMeter {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for LatencyMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyMeter").finish_non_exhaustive()
    }
}

/// The bucket of a latency of `micros` (at least 1).
fn bucket(micros: u64) -> usize {
    let m = micros.max(1);
    let power = 63 - m.leading_zeros() as usize;
    // The three bits below the leading one pick the sub-bucket.
    let sub = if power >= 3 {
        ((m >> (power - 3)) & 7) as usize
    } else {
        ((m << (3 - power)) & 7) as usize
    };
    (power * SUB + sub).min(BUCKETS - 1)
}

/// The upper bound of a bucket, in microseconds.
fn bucket_upper(b: usize) -> u64 {
    let (power, sub) = (b / SUB, (b % SUB) as u64);
    if power >= 3 {
        ((8 + sub + 1) << (power - 3)) - 1
    } else {
        ((8 + sub + 1) >> (3 - power)).max(1)
    }
}

impl LatencyMeter {
    /// Records one operation that took `d`.
    pub fn record(&self, d: Duration) {
        let micros = d.as_micros().min(u64::MAX as u128) as u64;
        self.buckets[bucket(micros)].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// What was recorded since the last call; starts a new window.
    pub fn take(&self) -> LatencyWindow {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.swap(0, Ordering::Relaxed))
            .collect();
        let sum = self.sum_micros.swap(0, Ordering::Relaxed);
        LatencyWindow { counts, sum }
    }
}

/// The operations of one window of a [`LatencyMeter`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LatencyWindow {
    counts: Vec<u64>,
    sum: u64,
}

impl LatencyWindow {
    /// Operations recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Their mean latency in microseconds (0 when there were none).
    pub fn mean_micros(&self) -> f64 {
        match self.count() {
            0 => 0.0,
            n => self.sum as f64 / n as f64,
        }
    }

    /// The latency `q` (0 to 1) of them were at or under, in microseconds: the upper
    /// bound of its bucket (0 when there were none).
    pub fn quantile_micros(&self, q: f64) -> u64 {
        let n = self.count();
        if n == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_upper(b);
            }
        }
        bucket_upper(BUCKETS - 1)
    }

    /// Adds `other`'s operations to these.
    pub fn merge(&mut self, other: &LatencyWindow) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum += other.sum;
    }
}

/// The foreground's meters: commits and (sampled) point reads, and the commits under
/// way (a commit stuck behind background work records its latency only when it ends).
#[derive(Debug, Default)]
pub struct Foreground {
    pub commits: LatencyMeter,
    pub reads: LatencyMeter,
    in_flight: AtomicU64,
}

/// A commit under way; records its latency when dropped.
pub(crate) struct CommitTimer<'a> {
    fg: &'a Foreground,
    started: std::time::Instant,
}

impl Drop for CommitTimer<'_> {
    fn drop(&mut self) {
        self.fg.commits.record(self.started.elapsed());
        self.fg.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Foreground {
    /// Times a commit from now until the timer is dropped.
    pub(crate) fn commit_timer(&self) -> CommitTimer<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        CommitTimer {
            fg: self,
            started: std::time::Instant::now(),
        }
    }

    /// Commits started and not yet ended.
    pub fn commits_in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Whether this point read is one of the sampled ones (counted per thread, so
    /// reading threads share no cache line for it).
    pub(crate) fn sample_read(&self) -> bool {
        thread_local! {
            static READS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
        }
        READS.with(|n| {
            let v = n.get();
            n.set(v.wrapping_add(1));
            v.is_multiple_of(READ_SAMPLE)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_bound_their_values() {
        let mut last = 0;
        for m in 1..100_000u64 {
            let b = bucket(m);
            assert!(b >= last, "bucket of {m} went down");
            last = b;
            assert!(bucket_upper(b) >= m, "{m} above its bucket's bound");
            // Exact to 12.5 % from 8 µs up.
            if m >= 8 {
                assert!(bucket_upper(b) as f64 <= m as f64 * 1.125 + 1.0, "{m}");
            }
        }
    }

    #[test]
    fn quantiles_and_mean_of_a_window() {
        let m = LatencyMeter::default();
        for _ in 0..99 {
            m.record(Duration::from_micros(100));
        }
        m.record(Duration::from_millis(50));
        let w = m.take();
        assert_eq!(w.count(), 100);
        let p50 = w.quantile_micros(0.5);
        assert!((100..=113).contains(&p50), "{p50}");
        assert!((100..=113).contains(&w.quantile_micros(0.99)));
        let max = w.quantile_micros(1.0);
        assert!((50_000..=56_250).contains(&max), "{max}");
        assert!((w.mean_micros() - 599.0).abs() < 1.0);
        // Taking starts a new window.
        assert_eq!(m.take().count(), 0);
        assert_eq!(LatencyWindow::default().quantile_micros(0.99), 0);
    }
}
