//! Cancellation tokens and a bytes-per-second throttle.

use std::sync::atomic::{AtomicBool, Ordering};
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

/// A token bucket shared by the tasks of one job: at most `rate` bytes per second,
/// with a burst of one second. `None` means unlimited.
#[derive(Debug)]
pub struct Throttle {
    rate: Option<u64>,
    state: Mutex<(f64, Instant)>,
}

impl Throttle {
    pub fn new(rate: Option<u64>) -> Self {
        Throttle {
            rate: rate.filter(|r| *r > 0),
            state: Mutex::new((rate.unwrap_or(0) as f64, Instant::now())),
        }
    }

    /// Its rate in bytes per second (None: unlimited).
    pub fn rate(&self) -> Option<u64> {
        self.rate
    }

    /// Takes `bytes` from the bucket; returns how long to wait before using them.
    fn take(&self, bytes: u64) -> Duration {
        let Some(rate) = self.rate else {
            return Duration::ZERO;
        };
        let mut st = self.state.lock();
        let now = Instant::now();
        let refill = now.duration_since(st.1).as_secs_f64() * rate as f64;
        st.0 = (st.0 + refill).min(rate as f64);
        st.1 = now;
        st.0 -= bytes as f64;
        if st.0 >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-st.0 / rate as f64)
        }
    }

    /// Takes `bytes`, waiting (cancellably) until they are available.
    pub async fn acquire(&self, bytes: u64, cancel: &CancelToken) -> Result<()> {
        let wait = self.take(bytes);
        if wait.is_zero() {
            cancel.check()
        } else {
            cancel.sleep(wait).await
        }
    }

    /// [`Throttle::acquire`] for blocking threads (scans): sleeps in short steps,
    /// checking `cancel`.
    pub fn acquire_blocking(&self, bytes: u64, cancel: &CancelToken) -> Result<()> {
        let deadline = Instant::now() + self.take(bytes);
        loop {
            cancel.check()?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
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
        // The first second is the burst; 1.5 MB more must take about 1.5 s.
        for _ in 0..25 {
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
}
