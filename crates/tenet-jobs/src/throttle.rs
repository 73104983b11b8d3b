//! Cancellation tokens and a bytes-per-second throttle whose rate can change.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::{Error, Result};

/// Trips once; every clone sees it. Async waiters wake up at once.
#[derive(Clone, Debug, Default)]
pub struct CancelToken {
    inner: Arc<(AtomicBool, Notify)>,
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.inner.0.store(true, Ordering::Release);
        self.inner.1.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.0.load(Ordering::Acquire)
    }

    /// `Err(Cancelled)` once cancelled.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Resolves when cancelled.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.1.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// Sleeps for `d` unless cancelled first.
    pub async fn sleep(&self, d: Duration) -> Result<()> {
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = self.cancelled() => Err(Error::Cancelled),
        }
    }
}

/// A token bucket: at most `rate` bytes per second, with a burst of [`BURST`].
/// A rate of `None` means unlimited. The rate can change while tasks wait (the
/// pacer of `pacing.rs` changes the budget all jobs share), and it can be paused for
/// a moment. Large requests are taken in slices of a tenth of a second, so a change
/// of rate or a cancel takes effect within one slice.
#[derive(Debug)]
pub struct Throttle {
    /// Bytes per second; 0 means unlimited.
    rate: AtomicU64,
    state: Mutex<Bucket>,
    /// Bytes taken since it was made.
    taken: AtomicU64,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    paused_until: Option<Instant>,
}

/// How much of its rate a bucket lets through at once after a pause: little, so a
/// job that was waiting does not land on the foreground in a lump.
pub const BURST: Duration = Duration::from_millis(100);

/// The smallest slice a request is cut into...
const MIN_SLICE: u64 = 64 * 1024;
/// ...and the slice of an unlimited bucket.
const UNLIMITED_SLICE: u64 = 4 << 20;
/// How often a paused request looks again.
const PAUSE_POLL: Duration = Duration::from_millis(50);

impl Throttle {
    pub fn new(rate: Option<u64>) -> Self {
        let rate = rate.unwrap_or(0);
        Throttle {
            rate: AtomicU64::new(rate),
            state: Mutex::new(Bucket {
                tokens: rate as f64 * BURST.as_secs_f64(),
                at: Instant::now(),
                paused_until: None,
            }),
            taken: AtomicU64::new(0),
        }
    }

    /// Its rate in bytes per second (None: unlimited).
    pub fn rate(&self) -> Option<u64> {
        Some(self.rate.load(Ordering::Relaxed)).filter(|r| *r > 0)
    }

    /// Changes its rate (None: unlimited); waiters see it from their next slice.
    pub fn set_rate(&self, rate: Option<u64>) {
        let rate = rate.unwrap_or(0);
        let mut st = self.state.lock();
        let old = self.rate.load(Ordering::Relaxed);
        if st.tokens < 0.0 {
            // A debt run up at the old rate lasts as long at the new one.
            st.tokens = if old > 0 && rate > 0 {
                st.tokens * rate as f64 / old as f64
            } else {
                0.0
            };
        }
        st.tokens = st.tokens.min(rate as f64 * BURST.as_secs_f64());
        self.rate.store(rate, Ordering::Relaxed);
    }

    /// Lets nothing through until `until` or [`Throttle::resume`] (a probe of the
    /// foreground while quiet).
    pub fn pause_until(&self, until: Instant) {
        self.state.lock().paused_until = Some(until);
    }

    /// Ends a pause. Requests that already took their wait sleep it out, one slice.
    pub fn resume(&self) {
        self.state.lock().paused_until = None;
    }

    /// Bytes taken since it was made.
    pub fn taken(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }

    /// The slice a request is taken in at the current rate.
    fn slice(&self) -> u64 {
        match self.rate() {
            // Unlimited: slices still, so what was taken is what moved, within a slice.
            None => UNLIMITED_SLICE,
            Some(r) => (r / 10).max(MIN_SLICE),
        }
    }

    /// Takes `bytes` from the bucket and returns how long to wait before using them;
    /// while paused, takes nothing and says when to ask again.
    fn take(&self, bytes: u64) -> Result<Duration, Duration> {
        let mut st = self.state.lock();
        let now = Instant::now();
        if let Some(until) = st.paused_until.filter(|u| *u > now) {
            return Err((until - now).min(PAUSE_POLL));
        }
        self.taken.fetch_add(bytes, Ordering::Relaxed);
        let Some(rate) = self.rate() else {
            return Ok(Duration::ZERO);
        };
        let refill = now.duration_since(st.at).as_secs_f64() * rate as f64;
        st.tokens = (st.tokens + refill).min(rate as f64 * BURST.as_secs_f64()) - bytes as f64;
        st.at = now;
        Ok(Duration::from_secs_f64((-st.tokens).max(0.0) / rate as f64))
    }

    /// Takes `bytes`, waiting (cancellably) until they are available.
    pub async fn acquire(&self, bytes: u64, cancel: &CancelToken) -> Result<()> {
        let mut left = bytes;
        while left > 0 {
            let n = left.min(self.slice());
            match self.take(n) {
                Err(paused) => cancel.sleep(paused).await?,
                Ok(wait) => {
                    if wait.is_zero() {
                        cancel.check()?;
                    } else {
                        cancel.sleep(wait).await?;
                    }
                    left -= n;
                }
            }
        }
        Ok(())
    }

    /// [`Throttle::acquire`] for blocking threads (scans): sleeps in short steps,
    /// checking `cancel`.
    pub fn acquire_blocking(&self, bytes: u64, cancel: &CancelToken) -> Result<()> {
        let mut left = bytes;
        while left > 0 {
            let n = left.min(self.slice());
            let (wait, taken) = match self.take(n) {
                Ok(wait) => (wait, n),
                Err(paused) => (paused, 0),
            };
            let deadline = Instant::now() + wait;
            loop {
                cancel.check()?;
                let wait = deadline.saturating_duration_since(Instant::now());
                if wait.is_zero() {
                    break;
                }
                std::thread::sleep(wait.min(PAUSE_POLL));
            }
            left -= taken;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn throttle_limits_rate_and_wakes_on_cancel() {
        let t = Throttle::new(Some(1_000_000));
        let cancel = CancelToken::new();
        let start = Instant::now();
        // The first 0.1 s is the burst; 1.5 MB more must take about 1.5 s.
        for _ in 0..16 {
            t.acquire(100_000, &cancel).await.unwrap();
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(1400), "took {took:?}");

        let c2 = cancel.clone();
        let h = tokio::spawn(async move { t.acquire(50_000_000, &c2).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.cancel();
        let r = tokio::time::timeout(Duration::from_secs(2), h)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(r, Err(Error::Cancelled)));
    }

    #[tokio::test]
    async fn a_new_rate_or_a_pause_applies_to_a_request_already_waiting() {
        let t = Arc::new(Throttle::new(Some(100_000)));
        let cancel = CancelToken::new();
        // 2 MB at 100 kB/s would take 19 s; raised to unlimited after 0.3 s, it ends.
        let (t2, c2) = (t.clone(), cancel.clone());
        let h = tokio::spawn(async move { t2.acquire(2_000_000, &c2).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        t.set_rate(None);
        tokio::time::timeout(Duration::from_secs(2), h)
            .await
            .expect("the raised rate applies")
            .unwrap()
            .unwrap();
        assert_eq!(t.taken(), 2_000_000);
        // A pause holds even an unlimited bucket.
        t.pause_until(Instant::now() + Duration::from_millis(300));
        let start = Instant::now();
        t.acquire(1, &cancel).await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(250));
        assert_eq!(t.rate(), None);
    }
}
